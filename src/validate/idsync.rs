//! Checks of ID-synchronization lines (SPEC: File-based ID synchronization): one TAB-separated
//! ID per DPID of the file name; the master first.

use super::{Checker, Rule};
use crate::inbound::{IdProblem, IdSyncKind, IdSyncName, IdType};

impl Checker<'_> {
    pub(super) fn check_sync_line(&mut self, n: u64, line: &str) {
        // Taken for the line (the checks below report through `self`), then put back.
        let Some(name) = self.id_sync.take() else {
            return;
        };
        self.check_sync_ids(n, line, &name);
        self.id_sync = Some(name);
        self.end_line();
    }

    fn check_sync_ids(&mut self, n: u64, line: &str, name: &IdSyncName) {
        if line.ends_with([' ', '\t']) {
            self.report(
                n,
                Rule::TrailingWhitespace,
                "line ends in a space or TAB, which AAM does not process".into(),
            );
            return;
        }
        let ids: Vec<&str> = line.split('\t').collect();
        if ids.len() != name.dpids.len() {
            self.report(
                n,
                Rule::IdSyncColumns,
                format!(
                    "{} TAB-separated IDs, but the file name has {} DPIDs ({})",
                    ids.len(),
                    name.dpids.len(),
                    name.dpids
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            return;
        }
        for (column, (&id, &dpid)) in ids.iter().zip(&name.dpids).enumerate() {
            let master = column == 0 && name.kind == IdSyncKind::Adobe;
            let problem = match (name.kind, column) {
                (IdSyncKind::C2c, 1) => check_email_sha256(id),
                _ => column_type(dpid).check(id).err().map(|p| match p {
                    IdProblem::Email => "an e-mail address (PII); send its SHA-256 instead".into(),
                    other => other.to_string(),
                }),
            };
            let problem = problem
                .or_else(|| (id.trim() != id).then(|| "starts or ends with whitespace".to_owned()));
            if let Some(why) = problem {
                let (rule, what) = if master {
                    (Rule::IdSyncMaster, format!("master ID (DPID {dpid})"))
                } else {
                    (Rule::IdSyncId, format!("ID of DPID {dpid}"))
                };
                self.report(
                    n,
                    rule,
                    format!("column {}, {what} `{id}`: {why}", column + 1),
                );
            }
        }
    }
}

/// The type of IDs a column's data source holds: AAM's own (DPID 0), a global device source,
/// else the company's (any ID AAM accepts: Adobe's sample syncs master 12345 this way).
fn column_type(dpid: u64) -> IdType {
    if dpid == 0 {
        IdType::AamUuid
    } else {
        IdType::from_global_dpid(dpid).unwrap_or(IdType::Dpuuid)
    }
}

/// `c2c_id_` files: the SHA-256 (lowercase hex) of the trimmed, lowercased address.
fn check_email_sha256(id: &str) -> Option<String> {
    if let Err(IdProblem::Email) = IdType::Dpuuid.check(id) {
        return Some("an e-mail address (PII); send its SHA-256 instead".into());
    }
    let hex = id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    (!hex).then(|| "not a SHA-256 in lowercase hex (64 characters)".into())
}
