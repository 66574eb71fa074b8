//! Rejected rows: what was left out, where it came from and why (`--rejects FILE.csv`).

use crate::inbound::looks_like_email;
use serde::Serialize;

/// One rejected row (or, for user-level problems, the first row of the rejected user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reject {
    pub file: String,
    /// 1-based record number within the file (header not counted).
    pub row: u64,
    /// The user ID as read, masked when it looks like PII.
    pub user_id: String,
    /// Stable reason code (README: Reason codes).
    pub reason: &'static str,
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
            reason: "invalid-trait-id",
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
}
