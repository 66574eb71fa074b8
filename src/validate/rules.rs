//! The validator's rules: stable codes grouped by what they check (F file, L line structure,
//! T traits, U user IDs). Codes are never renumbered; new rules get new codes. Every rule's
//! code, name, severity, summary and remedy are in one exhaustive `match`, so a new rule
//! cannot be left out of it.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    FileName,
    Timestamp,
    MissingTargetDpid,
    DateFolder,
    GzipCorrupt,
    NotUtf8,
    Bom,
    EmptyFile,
    SizeOverOptimal,
    SizeOverMaximum,
    HiddenFile,
    MissingTab,
    ExtraTab,
    LineTooLong,
    TrailingWhitespace,
    Crlf,
    EmptyTrait,
    NoTraits,
    EmptyLine,
    UnknownTraitForm,
    InvalidTraitId,
    BadQuoting,
    EmptySignalKey,
    UnsidInOverwrite,
    DashKey,
    SpacedStyle,
    ControlChar,
    MissingUserId,
    InvalidAamUuid,
    InvalidDeviceId,
    PiiUserId,
    InvalidUserId,
    MixedIdTypes,
    TooManyLines,
}

/// What a rule is: its stable code and name, how bad a finding is, what the rule checks, and
/// what to do about a finding (apart from each finding's own message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleInfo {
    pub code: &'static str,
    pub name: &'static str,
    pub severity: Severity,
    pub summary: &'static str,
    pub fix: &'static str,
}

impl Rule {
    /// Every rule, in code order.
    pub const ALL: [Rule; 34] = [
        Rule::FileName,
        Rule::Timestamp,
        Rule::MissingTargetDpid,
        Rule::DateFolder,
        Rule::GzipCorrupt,
        Rule::NotUtf8,
        Rule::Bom,
        Rule::EmptyFile,
        Rule::SizeOverOptimal,
        Rule::SizeOverMaximum,
        Rule::HiddenFile,
        Rule::MissingTab,
        Rule::ExtraTab,
        Rule::LineTooLong,
        Rule::TrailingWhitespace,
        Rule::Crlf,
        Rule::EmptyTrait,
        Rule::NoTraits,
        Rule::EmptyLine,
        Rule::UnknownTraitForm,
        Rule::InvalidTraitId,
        Rule::BadQuoting,
        Rule::EmptySignalKey,
        Rule::UnsidInOverwrite,
        Rule::DashKey,
        Rule::SpacedStyle,
        Rule::ControlChar,
        Rule::MissingUserId,
        Rule::InvalidAamUuid,
        Rule::InvalidDeviceId,
        Rule::PiiUserId,
        Rule::InvalidUserId,
        Rule::MixedIdTypes,
        Rule::TooManyLines,
    ];

    /// A table more than logic: one arm per rule, kept in one `match` (long, on purpose)
    /// so that the compiler insists every rule has its entry.
    pub fn info(self) -> RuleInfo {
        use Severity::{Error, Warning};
        let (code, name, severity, summary, fix) = match self {
            Rule::FileName => (
                "F001",
                "file-name",
                Error,
                "the name does not follow ftp_dpm_<DPID>[_<TARGET>]_<TIMESTAMP>.sync|.overwrite[.<N>][.gz]",
                "rename the file to ftp_dpm_<DPID>[_<TARGET_DPID>]_<TIMESTAMP>.sync|.overwrite[.<N>][.gz]",
            ),
            Rule::Timestamp => (
                "F002",
                "timestamp",
                Error,
                "the timestamp is not 10 digits",
                "use a 10-digit UTC Unix time in seconds",
            ),
            Rule::MissingTargetDpid => (
                "F003",
                "missing-target-dpid",
                Error,
                "a device data source's file without a target DPID",
                "add the target DPID: ftp_dpm_<DPID>_<TARGET_DPID>_<TIMESTAMP>...",
            ),
            Rule::DateFolder => (
                "F004",
                "date-folder",
                Error,
                "the parent folder is date=... but not a valid date=YYYY-MM-DD",
                "put the file in date=YYYY-MM-DD, the UTC day of delivery",
            ),
            Rule::GzipCorrupt => (
                "F005",
                "gzip-corrupt",
                Error,
                "a .gz file that does not decompress, or a gzip file without .gz",
                "re-create the file; name it .gz exactly when it is gzip-compressed",
            ),
            Rule::NotUtf8 => (
                "F006",
                "not-utf8",
                Error,
                "a line that is not UTF-8",
                "convert the file to UTF-8 (or ASCII)",
            ),
            Rule::Bom => (
                "F007",
                "bom",
                Error,
                "the file starts with a UTF-8 byte order mark",
                "remove the byte order mark",
            ),
            Rule::EmptyFile => (
                "F008",
                "empty-file",
                Error,
                "the file has no records; AAM does not process it",
                "do not send the file",
            ),
            Rule::SizeOverOptimal => (
                "F009",
                "size-over-optimal",
                Warning,
                "larger than the optimal part size (1 GB uncompressed, 300 MB gzip)",
                "split the delivery into smaller parts (output.max_part_bytes)",
            ),
            Rule::SizeOverMaximum => (
                "F010",
                "size-over-maximum",
                Error,
                "larger than AAM's maximum (5 GB uncompressed, 1 GB gzip)",
                "split the delivery into smaller parts (output.max_part_bytes)",
            ),
            Rule::HiddenFile => (
                "F011",
                "hidden-file",
                Error,
                "a hidden file in a delivery folder: a temporary or lock file of an aam-etl run that is still writing or was stopped, or another file that is not an inbound file",
                "keep it out of the upload; the next aam-etl run into the folder removes its own leftovers",
            ),
            Rule::MissingTab => (
                "L001",
                "missing-tab",
                Error,
                "no TAB between user ID and traits",
                "separate the user ID from the traits with one TAB",
            ),
            Rule::ExtraTab => (
                "L002",
                "extra-tab",
                Error,
                "more than one TAB on the line",
                "keep TAB only between the user ID and the traits",
            ),
            Rule::LineTooLong => (
                "L003",
                "line-too-long",
                Error,
                "the line is over 102,400 bytes; AAM drops it whole",
                "wrap the user's traits onto several lines",
            ),
            Rule::TrailingWhitespace => (
                "L004",
                "trailing-whitespace",
                Error,
                "the line ends in a space or TAB; AAM does not process it",
                "remove the trailing spaces and TABs",
            ),
            Rule::Crlf => (
                "L005",
                "crlf",
                Warning,
                "a CRLF line ending",
                "use \\n line endings",
            ),
            Rule::EmptyTrait => (
                "L006",
                "empty-trait",
                Error,
                "an empty trait element, as in a,,b",
                "remove the empty element",
            ),
            Rule::NoTraits => (
                "L007",
                "no-traits",
                Error,
                "a user ID with no traits",
                "leave out users without traits",
            ),
            Rule::EmptyLine => (
                "L008",
                "empty-line",
                Error,
                "an empty line",
                "remove the empty line",
            ),
            Rule::UnknownTraitForm => (
                "T001",
                "unknown-trait-form",
                Error,
                "not one of SPEC's trait forms",
                "write d_sid=N, d_unsid=N, N:0, N:-1, N, ic=N or key=value",
            ),
            Rule::InvalidTraitId => (
                "T002",
                "invalid-trait-id",
                Error,
                "a trait ID that is not digits only",
                "use digits only for trait IDs",
            ),
            Rule::BadQuoting => (
                "T003",
                "bad-quoting",
                Error,
                "quotes that do not pair up",
                "pair the quotes around a key or value; a value cannot hold a double quote",
            ),
            Rule::EmptySignalKey => (
                "T004",
                "empty-signal-key",
                Error,
                "a key-value signal with an empty key",
                "give the signal a key",
            ),
            Rule::UnsidInOverwrite => (
                "T005",
                "unsid-in-overwrite",
                Warning,
                "d_unsid in an .overwrite file, where AAM ignores it",
                "send removals in a .sync file",
            ),
            Rule::DashKey => (
                "T006",
                "dash-key",
                Warning,
                "a key starting with -, which AAM strips",
                "remove the leading - from the key",
            ),
            Rule::SpacedStyle => (
                "T007",
                "spaced-style",
                Warning,
                "spaces around a trait or =; accepted by AAM (reported with --strict)",
                "write the compact form (key=value, d_sid=N)",
            ),
            Rule::ControlChar => (
                "T008",
                "control-char",
                Error,
                "a CR or other control character inside a trait",
                "remove control characters from keys and values",
            ),
            Rule::MissingUserId => (
                "U001",
                "missing-user-id",
                Error,
                "the line starts with a TAB",
                "put the user ID before the TAB",
            ),
            Rule::InvalidAamUuid => (
                "U002",
                "invalid-aam-uuid",
                Error,
                "an AAM UUID that is not 38 digits",
                "send 38-digit AAM UUIDs, or the IDs as DPUUIDs",
            ),
            Rule::InvalidDeviceId => (
                "U003",
                "invalid-device-id",
                Error,
                "a device ID that does not match its type's format or case",
                "send device IDs in their type's format and letter case",
            ),
            Rule::PiiUserId => (
                "U004",
                "pii-user-id",
                Error,
                "a user ID that looks like an e-mail address",
                "send a SHA-256 of the normalized address instead",
            ),
            Rule::InvalidUserId => (
                "U005",
                "invalid-user-id",
                Error,
                "a DPUUID with :, %3A, control characters or URL-encoding",
                "send the ID without :, %3A, control characters or URL-encoding",
            ),
            Rule::MixedIdTypes => (
                "U006",
                "mixed-id-types",
                Error,
                "IDs of more than one type in one file",
                "send each ID type in its own file",
            ),
            Rule::TooManyLines => (
                "U007",
                "too-many-lines",
                Error,
                "more than 200 lines for one user; AAM drops the rest",
                "send at most 200 lines per user in a file",
            ),
        };
        RuleInfo {
            code,
            name,
            severity,
            summary,
            fix,
        }
    }

    pub fn code(self) -> &'static str {
        self.info().code
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    pub fn severity(self) -> Severity {
        self.info().severity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_are_unique_and_in_order() {
        let codes: Vec<&str> = Rule::ALL.iter().map(|r| r.code()).collect();
        let mut sorted = codes.clone();
        sorted.sort_unstable_by_key(|c| ("FLTU".find(&c[..1]), *c));
        sorted.dedup();
        assert_eq!(codes, sorted, "codes unique and grouped F, L, T, U");
        let mut names: Vec<&str> = Rule::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Rule::ALL.len());
    }

    /// The README's rule table lists every rule with its code, name, severity, summary and
    /// remedy, in code order.
    #[test]
    fn the_readme_rule_table_lists_every_rule() {
        let readme = include_str!("../../README.md");
        let got: Vec<Vec<String>> = readme
            .lines()
            .filter_map(|l| l.strip_prefix("| ")?.strip_suffix(" |"))
            .map(|l| {
                // Code spans and escaped pipes are markdown, not part of the text.
                l.split(" | ")
                    .map(|c| c.replace('`', "").replace("\\|", "|"))
                    .collect::<Vec<_>>()
            })
            .filter(|cells| Rule::ALL.iter().any(|r| r.code() == cells[0]))
            .collect();
        let want: Vec<Vec<String>> = Rule::ALL
            .iter()
            .map(|r| {
                let i = r.info();
                [i.code, i.name, i.severity.name(), i.summary, i.fix]
                    .map(str::to_owned)
                    .to_vec()
            })
            .collect();
        assert_eq!(got, want);
    }
}
