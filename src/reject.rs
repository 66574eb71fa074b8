//! Rejected rows: what was left out, where it came from and why (`--rejects FILE.csv`).
//! [`RejectReason`] is the one list of reason codes; the README's table lists exactly these.

use crate::inbound::{looks_like_email, IdProblem, UserTooLarge, WrapError};
use serde::Serialize;
use std::fmt;

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
    UnsupportedValue,
    TraitTooLong,
    TooManyLines,
    UserExceedsPartSize,
}

impl RejectReason {
    pub const ALL: [RejectReason; 14] = [
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
        RejectReason::UnsupportedValue,
        RejectReason::TraitTooLong,
        RejectReason::TooManyLines,
        RejectReason::UserExceedsPartSize,
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
            RejectReason::UnsupportedValue => "unsupported-value",
            RejectReason::TraitTooLong => "trait-too-long",
            RejectReason::TooManyLines => "too-many-lines",
            RejectReason::UserExceedsPartSize => "user-exceeds-part-size",
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

/// Writes the rejects as CSV: file,row,user_id,reason,message.
pub fn write_csv(rejects: &[Reject], out: impl std::io::Write) -> csv::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    for r in rejects {
        w.serialize(r)?;
    }
    if rejects.is_empty() {
        w.write_record(["file", "row", "user_id", "reason", "message"])?;
    }
    w.flush()?;
    Ok(())
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
        let mut out = Vec::new();
        let r = Reject {
            file: "a.csv".into(),
            row: 3,
            user_id: "u1".into(),
            reason: RejectReason::InvalidTraitId,
            message: "traits[0]: `12a`, not digits".into(),
        };
        write_csv(&[r], &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "file,row,user_id,reason,message\na.csv,3,u1,invalid-trait-id,\"traits[0]: `12a`, not digits\"\n"
        );
        let mut empty = Vec::new();
        write_csv(&[], &mut empty).unwrap();
        assert_eq!(
            String::from_utf8(empty).unwrap(),
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
