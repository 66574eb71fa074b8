//! The validator's rules: stable codes grouped by what they check (F file, L line structure,
//! T traits, U user IDs, S ID-synchronization files, X traits against the trait list of
//! `--traits`). Codes are never renumbered; new rules get new codes. Every rule's code, name,
//! severity, summary and remedy are in one exhaustive `match`, so a new rule cannot be left
//! out of it.

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
    Encrypted,
    Zip,
    IdTypeContradictsName,
    DeviceTargetDpid,
    DoubleCompression,
    MissingTab,
    ExtraTab,
    LineTooLong,
    TrailingWhitespace,
    Crlf,
    EmptyTrait,
    NoTraits,
    EmptyLine,
    LineAtLimit,
    UnknownTraitForm,
    InvalidTraitId,
    BadQuoting,
    EmptySignalKey,
    UnsidInOverwrite,
    DashKey,
    SpacedStyle,
    ControlChar,
    QuotedPrefix,
    MissingUserId,
    InvalidAamUuid,
    InvalidDeviceId,
    PiiUserId,
    InvalidUserId,
    MixedIdTypes,
    TooManyLines,
    IdWhitespace,
    IdSyncColumns,
    IdSyncMaster,
    IdSyncId,
    UnknownTrait,
    TraitNotOnboarded,
    TraitOtherDataSource,
    UnrealizedSignal,
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
    pub const ALL: [Rule; 49] = [
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
        Rule::Encrypted,
        Rule::Zip,
        Rule::IdTypeContradictsName,
        Rule::DeviceTargetDpid,
        Rule::DoubleCompression,
        Rule::MissingTab,
        Rule::ExtraTab,
        Rule::LineTooLong,
        Rule::TrailingWhitespace,
        Rule::Crlf,
        Rule::EmptyTrait,
        Rule::NoTraits,
        Rule::EmptyLine,
        Rule::LineAtLimit,
        Rule::UnknownTraitForm,
        Rule::InvalidTraitId,
        Rule::BadQuoting,
        Rule::EmptySignalKey,
        Rule::UnsidInOverwrite,
        Rule::DashKey,
        Rule::SpacedStyle,
        Rule::ControlChar,
        Rule::QuotedPrefix,
        Rule::MissingUserId,
        Rule::InvalidAamUuid,
        Rule::InvalidDeviceId,
        Rule::PiiUserId,
        Rule::InvalidUserId,
        Rule::MixedIdTypes,
        Rule::TooManyLines,
        Rule::IdWhitespace,
        Rule::IdSyncColumns,
        Rule::IdSyncMaster,
        Rule::IdSyncId,
        Rule::UnknownTrait,
        Rule::TraitNotOnboarded,
        Rule::TraitOtherDataSource,
        Rule::UnrealizedSignal,
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
            Rule::Encrypted => (
                "F012",
                "encrypted",
                Warning,
                "a PGP-encrypted file (.pgp, .gpg): its content cannot be checked without the key",
                "validate the file before encrypting it",
            ),
            Rule::Zip => (
                "F013",
                "zip",
                Error,
                "a ZIP archive: AAM accepts gzip only",
                "zip is not supported; use gzip",
            ),
            Rule::IdTypeContradictsName => (
                "F014",
                "id-type-contradicts-name",
                Error,
                "--id-type names another ID type than the file name's DPID",
                "name device-ID files with their type's global DPID, or fix --id-type",
            ),
            Rule::DeviceTargetDpid => (
                "F015",
                "device-target-dpid",
                Error,
                "the target DPID is a global device data source, not one the company owns",
                "use the company's own data source as the target DPID",
            ),
            Rule::DoubleCompression => (
                "F016",
                "double-compression",
                Error,
                "an encrypted file that is also gzipped (.gz.pgp); PGP compresses already",
                "encrypt the uncompressed file: name.sync.pgp, never name.sync.gz.pgp",
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
                "the line is over 102,400 bytes without its line break; AAM drops it whole",
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
                Warning,
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
                Warning,
                "an empty line: not a record, nothing is lost",
                "remove the empty line",
            ),
            Rule::LineAtLimit => (
                "L009",
                "line-at-limit",
                Warning,
                "the line is exactly 102,400 bytes without its line break; Adobe does not say whether the break counts",
                "wrap the user's traits so lines stay under 102,400 bytes",
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
                "a key-value signal with an empty key (or only -, which AAM strips)",
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
                "a CR, NUL or other control character inside a trait",
                "remove control characters from keys and values",
            ),
            Rule::QuotedPrefix => (
                "T009",
                "quoted-prefix",
                Warning,
                "a trait prefix or trait ID in quotes (d_sid=\"24\", \"ic\"=5); Adobe shows them unquoted",
                "write d_sid=N, d_unsid=N and ic=N without quotes",
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
                "a DPUUID with :, %3A, control characters (NUL included) or URL-encoding",
                "send the ID without :, %3A, control characters or URL-encoding",
            ),
            Rule::MixedIdTypes => (
                "U006",
                "mixed-id-types",
                Warning,
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
            Rule::IdWhitespace => (
                "U008",
                "id-whitespace",
                Warning,
                "a user ID that starts or ends with whitespace: IDs match byte for byte, so this is not the user that was synced",
                "trim the user ID",
            ),
            Rule::IdSyncColumns => (
                "S001",
                "id-sync-columns",
                Error,
                "an ID-sync line whose TAB-separated columns do not match the DPIDs in the file name",
                "write one ID per DPID of the name, in its order, separated by TABs",
            ),
            Rule::IdSyncMaster => (
                "S002",
                "id-sync-master",
                Error,
                "an ID-sync line whose first column is not a device ID of the master DPID (an AAM UUID for master 0)",
                "put the master data source's device ID first",
            ),
            Rule::IdSyncId => (
                "S003",
                "id-sync-id",
                Error,
                "an ID in an ID-sync line that is empty, PII, URL-encoded, holds : or control characters, or is not its data source's format (c2c: the SHA-256 hex of the e-mail)",
                "send each ID as its data source expects it: never an e-mail address, never URL-encoded",
            ),
            Rule::UnknownTrait => (
                "X001",
                "unknown-trait",
                Error,
                "with --traits: a trait ID that the trait list does not have (AAM: \"No Trait Realized\")",
                "create the trait in AAM, correct the ID, or export the trait list again",
            ),
            Rule::TraitNotOnboarded => (
                "X002",
                "trait-not-onboarded",
                Error,
                "with --traits: a trait ID that is a rule-based trait or a segment, not an onboarded trait",
                "send the onboarded trait's ID; rule-based traits qualify users from signals",
            ),
            Rule::TraitOtherDataSource => (
                "X003",
                "trait-other-data-source",
                Error,
                "with --traits: an onboarded trait of another data source (AAM: \"Traits failed validation\")",
                "send the file under the trait's data source, or use this data source's trait",
            ),
            Rule::UnrealizedSignal => (
                "X004",
                "unrealized-signal",
                Warning,
                "with --traits: a signal (key, or ic value) that no rule-based trait of the data source reads (AAM: unused signals)",
                "create a rule-based trait on the key in AAM, or stop sending it",
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

    /// Whether an error of this rule costs AAM the record. A trait AAM cannot realize is
    /// left out (and counted in its receipt) while the line's other traits still count.
    pub fn fails_record(self) -> bool {
        !matches!(
            self,
            Rule::UnknownTrait | Rule::TraitNotOnboarded | Rule::TraitOtherDataSource
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_are_unique_and_in_order() {
        let codes: Vec<&str> = Rule::ALL.iter().map(|r| r.code()).collect();
        let mut sorted = codes.clone();
        sorted.sort_unstable_by_key(|c| ("FLTUSX".find(&c[..1]), *c));
        sorted.dedup();
        assert_eq!(codes, sorted, "codes unique and grouped F, L, T, U, S, X");
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
