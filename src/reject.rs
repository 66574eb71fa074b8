//! Rejected rows: what was left out, where it came from and why (`--rejects FILE.csv`).
//! [`RejectReason`] is the one list of reason codes; the README's table lists exactly these.

use crate::error::{Error, Result};
use crate::inbound::{looks_like_email, IdProblem, UserTooLarge, WrapError};
use crate::taxonomy::Refusal;
use serde::Serialize;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Why a row (or a whole user) was left out. The codes are stable: scripts read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    MissingUserId,
    InvalidUserId,
    PiiUserId,
    NotAnEmail,
    InvalidDeviceId,
    DeviceIdCase,
    InvalidTraitId,
    InvalidFlag,
    UnmappedValue,
    InvalidSignalValue,
    InvalidSignalKey,
    CommaInValue,
    UnsupportedValue,
    TraitTooLong,
    TooManyLines,
    UserExceedsPartSize,
    UnknownTrait,
    TraitNotOnboarded,
    TraitOtherDataSource,
}

impl RejectReason {
    pub const ALL: [RejectReason; 19] = [
        RejectReason::MissingUserId,
        RejectReason::InvalidUserId,
        RejectReason::PiiUserId,
        RejectReason::NotAnEmail,
        RejectReason::InvalidDeviceId,
        RejectReason::DeviceIdCase,
        RejectReason::InvalidTraitId,
        RejectReason::InvalidFlag,
        RejectReason::UnmappedValue,
        RejectReason::InvalidSignalValue,
        RejectReason::InvalidSignalKey,
        RejectReason::CommaInValue,
        RejectReason::UnsupportedValue,
        RejectReason::TraitTooLong,
        RejectReason::TooManyLines,
        RejectReason::UserExceedsPartSize,
        RejectReason::UnknownTrait,
        RejectReason::TraitNotOnboarded,
        RejectReason::TraitOtherDataSource,
    ];

    /// The stable code, as in the rejects file, the report and the README.
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::MissingUserId => "missing-user-id",
            RejectReason::InvalidUserId => "invalid-user-id",
            RejectReason::PiiUserId => "pii-user-id",
            RejectReason::NotAnEmail => "not-an-email",
            RejectReason::InvalidDeviceId => "invalid-device-id",
            RejectReason::DeviceIdCase => "device-id-case",
            RejectReason::InvalidTraitId => "invalid-trait-id",
            RejectReason::InvalidFlag => "invalid-flag",
            RejectReason::UnmappedValue => "unmapped-value",
            RejectReason::InvalidSignalValue => "invalid-signal-value",
            RejectReason::InvalidSignalKey => "invalid-signal-key",
            RejectReason::CommaInValue => "comma-in-value",
            RejectReason::UnsupportedValue => "unsupported-value",
            RejectReason::TraitTooLong => "trait-too-long",
            RejectReason::TooManyLines => "too-many-lines",
            RejectReason::UserExceedsPartSize => "user-exceeds-part-size",
            RejectReason::UnknownTrait => "unknown-trait",
            RejectReason::TraitNotOnboarded => "trait-not-onboarded",
            RejectReason::TraitOtherDataSource => "trait-other-data-source",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for RejectReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl From<&IdProblem> for RejectReason {
    fn from(p: &IdProblem) -> RejectReason {
        match p {
            IdProblem::Empty => RejectReason::MissingUserId,
            IdProblem::Email => RejectReason::PiiUserId,
            IdProblem::Colon | IdProblem::ControlChar | IdProblem::PercentEncoded => {
                RejectReason::InvalidUserId
            }
            IdProblem::Format { .. } => RejectReason::InvalidDeviceId,
            IdProblem::Case { .. } => RejectReason::DeviceIdCase,
        }
    }
}

impl From<&WrapError> for RejectReason {
    fn from(e: &WrapError) -> RejectReason {
        match e {
            WrapError::TraitTooLong { .. } => RejectReason::TraitTooLong,
            WrapError::TooManyLines { .. } => RejectReason::TooManyLines,
        }
    }
}

impl From<&Refusal> for RejectReason {
    fn from(r: &Refusal) -> RejectReason {
        match r {
            Refusal::Unknown => RejectReason::UnknownTrait,
            Refusal::NotOnboarded(_) => RejectReason::TraitNotOnboarded,
            Refusal::OtherDataSource(_) => RejectReason::TraitOtherDataSource,
        }
    }
}

impl From<&UserTooLarge> for RejectReason {
    fn from(_: &UserTooLarge) -> RejectReason {
        RejectReason::UserExceedsPartSize
    }
}

/// One rejected row (or, for user-level problems, the first row of the rejected user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reject {
    pub file: String,
    /// 1-based record number within the file (header not counted).
    pub row: u64,
    /// The user ID as read, masked when it looks like PII.
    pub user_id: String,
    pub reason: RejectReason,
    pub message: String,
}

/// Masks a value that looks like an e-mail address so the rejects file holds no PII:
/// `jane.doe@example.com` -> `j***@example.com`.
pub fn mask_pii(user_id: &str) -> String {
    if !looks_like_email(user_id) {
        return user_id.to_owned();
    }
    let trimmed = user_id.trim();
    let (local, domain) = trimmed.split_once('@').unwrap_or((trimmed, ""));
    let first: String = local.chars().take(1).collect();
    format!("{first}***@{domain}")
}

/// How many rejects a run keeps in memory (for its outcome); the rest only go to the file.
pub const SAMPLE: usize = 1000;

/// Where a run's rejects go as they happen: the rejects file (CSV: file,row,user_id,reason,
/// message), if one was asked for, and a bounded sample in memory, so that a run that
/// rejects every row does not hold them all.
pub struct RejectLog {
    out: Option<(csv::Writer<std::io::BufWriter<File>>, PathBuf)>,
    written: u64,
    sample: Vec<Reject>,
}

impl RejectLog {
    /// `file` is where the CSV goes, and the path to name in errors.
    pub fn new(file: Option<(File, PathBuf)>) -> RejectLog {
        RejectLog {
            out: file.map(|(f, path)| {
                let w = csv::Writer::from_writer(std::io::BufWriter::with_capacity(1 << 16, f));
                (w, path)
            }),
            written: 0,
            sample: Vec::new(),
        }
    }

    pub fn push(&mut self, r: Reject) -> Result<()> {
        if let Some((w, path)) = &mut self.out {
            w.serialize(&r).map_err(|e| csv_error(path, e))?;
        }
        self.written += 1;
        if self.sample.len() < SAMPLE {
            self.sample.push(r);
        }
        Ok(())
    }

    /// Ends the file (a header alone when nothing was rejected, so that it is never empty)
    /// and returns the first rejects.
    pub fn finish(mut self) -> Result<Vec<Reject>> {
        if let Some((mut w, path)) = self.out.take() {
            if self.written == 0 {
                w.write_record(["file", "row", "user_id", "reason", "message"])
                    .map_err(|e| csv_error(&path, e))?;
            }
            let file = w
                .into_inner()
                .map_err(|e| Error::io(&path, std::io::Error::other(e.to_string())))?
                .into_inner()
                .map_err(|e| Error::io(&path, e.into_error()))?;
            file.sync_all().map_err(|e| Error::io(&path, e))?;
        }
        Ok(self.sample)
    }
}

fn csv_error(path: &Path, e: csv::Error) -> Error {
    Error::io(path, std::io::Error::other(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_only_pii() {
        assert_eq!(mask_pii("jane.doe@example.com"), "j***@example.com");
        assert_eq!(mask_pii("CRM-001"), "CRM-001");
    }

    #[test]
    fn csv_has_a_header_and_quotes_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rejects.csv");
        let r = Reject {
            file: "a.csv".into(),
            row: 3,
            user_id: "u1".into(),
            reason: RejectReason::InvalidTraitId,
            message: "traits[0]: `12a`, not digits".into(),
        };
        let file = File::create(&path).unwrap();
        let mut log = RejectLog::new(Some((file, path.clone())));
        log.push(r.clone()).unwrap();
        assert_eq!(log.finish().unwrap(), [r]);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "file,row,user_id,reason,message\na.csv,3,u1,invalid-trait-id,\"traits[0]: `12a`, not digits\"\n"
        );
        let log = RejectLog::new(Some((File::create(&path).unwrap(), path.clone())));
        assert_eq!(log.finish().unwrap(), []);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "file,row,user_id,reason,message\n"
        );
    }

    /// The README's "Rejected rows" table lists exactly the reasons, in this order.
    #[test]
    fn the_readme_reason_table_lists_every_reason() {
        let readme = include_str!("../README.md");
        let section = readme
            .split("## Rejected rows")
            .nth(1)
            .expect("README has a Rejected rows section");
        let table: Vec<&str> = section
            .lines()
            .skip_while(|l| !l.starts_with("| code |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .filter_map(|l| l.split('`').nth(1))
            .collect();
        let codes: Vec<&str> = RejectReason::ALL.iter().map(|r| r.code()).collect();
        assert_eq!(table, codes);
    }

    #[test]
    fn id_problems_map_to_their_reasons() {
        let expected = [
            (IdProblem::Empty, "missing-user-id"),
            (IdProblem::Email, "pii-user-id"),
            (IdProblem::Colon, "invalid-user-id"),
            (IdProblem::Format { expected: "x" }, "invalid-device-id"),
            (IdProblem::Case { expected: "x" }, "device-id-case"),
        ];
        for (p, code) in expected {
            assert_eq!(RejectReason::from(&p).code(), code, "{p:?}");
        }
    }
}
