//! The validator's rules: stable codes grouped by what they check (F file, L line structure,
//! T traits, U user IDs). Codes are never renumbered; new rules get new codes.

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

/// (rule, code, kebab name, severity, what it means).
pub const RULES: &[(Rule, &str, &str, Severity, &str)] = &[
    (
        Rule::FileName,
        "F001",
        "file-name",
        Severity::Error,
        "the name does not follow ftp_dpm_<DPID>[_<TARGET>]_<TIMESTAMP>.sync|.overwrite[.<N>][.gz]",
    ),
    (
        Rule::Timestamp,
        "F002",
        "timestamp",
        Severity::Error,
        "the timestamp is not 10 digits",
    ),
    (
        Rule::MissingTargetDpid,
        "F003",
        "missing-target-dpid",
        Severity::Error,
        "a device data source's file without a target DPID",
    ),
    (
        Rule::DateFolder,
        "F004",
        "date-folder",
        Severity::Error,
        "the parent folder is date=... but not a valid date=YYYY-MM-DD",
    ),
    (
        Rule::GzipCorrupt,
        "F005",
        "gzip-corrupt",
        Severity::Error,
        "a .gz file that does not decompress, or a gzip file without .gz",
    ),
    (
        Rule::NotUtf8,
        "F006",
        "not-utf8",
        Severity::Error,
        "a line that is not UTF-8",
    ),
    (
        Rule::Bom,
        "F007",
        "bom",
        Severity::Error,
        "the file starts with a UTF-8 byte order mark",
    ),
    (
        Rule::EmptyFile,
        "F008",
        "empty-file",
        Severity::Error,
        "the file has no records; AAM does not process it",
    ),
    (
        Rule::SizeOverOptimal,
        "F009",
        "size-over-optimal",
        Severity::Warning,
        "larger than the optimal part size (1 GB uncompressed, 300 MB gzip)",
    ),
    (
        Rule::SizeOverMaximum,
        "F010",
        "size-over-maximum",
        Severity::Error,
        "larger than AAM's maximum (5 GB uncompressed, 1 GB gzip)",
    ),
    (
        Rule::MissingTab,
        "L001",
        "missing-tab",
        Severity::Error,
        "no TAB between user ID and traits",
    ),
    (
        Rule::ExtraTab,
        "L002",
        "extra-tab",
        Severity::Error,
        "more than one TAB on the line",
    ),
    (
        Rule::LineTooLong,
        "L003",
        "line-too-long",
        Severity::Error,
        "the line is over 102,400 bytes; AAM drops it whole",
    ),
    (
        Rule::TrailingWhitespace,
        "L004",
        "trailing-whitespace",
        Severity::Error,
        "the line ends in a space or TAB; AAM does not process it",
    ),
    (
        Rule::Crlf,
        "L005",
        "crlf",
        Severity::Warning,
        "CRLF line ending; use \\n",
    ),
    (
        Rule::EmptyTrait,
        "L006",
        "empty-trait",
        Severity::Error,
        "an empty trait element, as in a,,b",
    ),
    (
        Rule::NoTraits,
        "L007",
        "no-traits",
        Severity::Error,
        "a user ID with no traits",
    ),
    (
        Rule::EmptyLine,
        "L008",
        "empty-line",
        Severity::Error,
        "an empty line",
    ),
    (
        Rule::UnknownTraitForm,
        "T001",
        "unknown-trait-form",
        Severity::Error,
        "not one of SPEC's trait forms",
    ),
    (
        Rule::InvalidTraitId,
        "T002",
        "invalid-trait-id",
        Severity::Error,
        "a trait ID that is not digits only",
    ),
    (
        Rule::BadQuoting,
        "T003",
        "bad-quoting",
        Severity::Error,
        "quotes that do not pair up",
    ),
    (
        Rule::EmptySignalKey,
        "T004",
        "empty-signal-key",
        Severity::Error,
        "a key-value signal with an empty key",
    ),
    (
        Rule::UnsidInOverwrite,
        "T005",
        "unsid-in-overwrite",
        Severity::Warning,
        "d_unsid in an .overwrite file, where AAM ignores it",
    ),
    (
        Rule::DashKey,
        "T006",
        "dash-key",
        Severity::Warning,
        "a key starting with -, which AAM strips",
    ),
    (
        Rule::SpacedStyle,
        "T007",
        "spaced-style",
        Severity::Warning,
        "spaces around a trait or =; accepted by AAM (reported with --strict)",
    ),
    (
        Rule::ControlChar,
        "T008",
        "control-char",
        Severity::Error,
        "a CR or other control character inside a trait",
    ),
    (
        Rule::MissingUserId,
        "U001",
        "missing-user-id",
        Severity::Error,
        "the line starts with a TAB",
    ),
    (
        Rule::InvalidAamUuid,
        "U002",
        "invalid-aam-uuid",
        Severity::Error,
        "an AAM UUID that is not 38 digits",
    ),
    (
        Rule::InvalidDeviceId,
        "U003",
        "invalid-device-id",
        Severity::Error,
        "a device ID that does not match its type's format or case",
    ),
    (
        Rule::PiiUserId,
        "U004",
        "pii-user-id",
        Severity::Error,
        "a user ID that looks like an e-mail address",
    ),
    (
        Rule::InvalidUserId,
        "U005",
        "invalid-user-id",
        Severity::Error,
        "a DPUUID with :, %3A, control characters or URL-encoding",
    ),
    (
        Rule::MixedIdTypes,
        "U006",
        "mixed-id-types",
        Severity::Error,
        "IDs of more than one type in one file",
    ),
    (
        Rule::TooManyLines,
        "U007",
        "too-many-lines",
        Severity::Error,
        "more than 200 lines for one user; AAM drops the rest",
    ),
];

impl Rule {
    fn entry(self) -> &'static (Rule, &'static str, &'static str, Severity, &'static str) {
        RULES
            .iter()
            .find(|r| r.0 == self)
            .expect("every rule is in RULES")
    }

    pub fn code(self) -> &'static str {
        self.entry().1
    }

    pub fn name(self) -> &'static str {
        self.entry().2
    }

    pub fn severity(self) -> Severity {
        self.entry().3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_are_unique() {
        let mut codes: Vec<&str> = RULES.iter().map(|r| r.1).collect();
        let mut names: Vec<&str> = RULES.iter().map(|r| r.2).collect();
        codes.sort_unstable();
        codes.dedup();
        names.sort_unstable();
        names.dedup();
        assert_eq!(codes.len(), RULES.len());
        assert_eq!(names.len(), RULES.len());
    }
}
