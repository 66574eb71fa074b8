//! ID-synchronization file names (SPEC: File-based ID synchronization):
//! `adobe_id_<MASTER_DPID>_<DPID>[_<DPID>...]_<TIMESTAMP>.sync[.<SPLIT>][.gz]` and
//! `c2c_id_<DPUUID_DPID>_<HASHED_EMAIL_DPID>_<TIMESTAMP>.sync[.<SPLIT>][.gz]`.
//! Each line holds one TAB-separated ID per DPID of the name, in its order.

use super::filename::{is_digits, number, split_dots, FileNameError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdSyncKind {
    /// `adobe_id_`: the first column is the master, a device ID (AAM UUID for DPID 0).
    Adobe,
    /// `c2c_id_`: a CRM ID, then the SHA-256 of the person's normalized e-mail address.
    C2c,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdSyncName {
    pub kind: IdSyncKind,
    /// The data sources of the columns, in order (the master first for `adobe_id_`).
    pub dpids: Vec<u64>,
    pub timestamp: u64,
    pub split: Option<u32>,
    pub gzip: bool,
}

impl IdSyncName {
    /// What the files of one delivery share: `adobe_id_<MASTER>_<DPID>..._<TIMESTAMP>`.
    pub fn stem(&self) -> String {
        format!(
            "{}_{}",
            IdSyncName::series(self.kind, &self.dpids),
            self.timestamp
        )
    }

    /// What every delivery of the same data sources shares: `adobe_id_0_21`.
    pub fn series(kind: IdSyncKind, dpids: &[u64]) -> String {
        let prefix = match kind {
            IdSyncKind::Adobe => "adobe_id",
            IdSyncKind::C2c => "c2c_id",
        };
        let dpids: Vec<String> = dpids.iter().map(u64::to_string).collect();
        format!("{prefix}_{}", dpids.join("_"))
    }

    /// Whether `name` claims to be an ID-synchronization file (then [`IdSyncName::parse`]
    /// says whether it is a good one).
    pub fn is_claimed(name: &str) -> bool {
        name.starts_with("adobe_id_") || name.starts_with("c2c_id_")
    }

    pub fn parse(name: &str) -> Result<IdSyncName, FileNameError> {
        let pattern = "adobe_id_<MASTER_DPID>_<DPID>[_<DPID>...]_<TIMESTAMP>.sync[.<SPLIT>][.gz] or c2c_id_<DPUUID_DPID>_<HASHED_EMAIL_DPID>_<TIMESTAMP>.sync";
        let bad = |why: String| FileNameError::Pattern(format!("{why} (ID sync: {pattern})"));
        let (kind, rest) = if let Some(r) = name.strip_prefix("adobe_id_") {
            (IdSyncKind::Adobe, r)
        } else if let Some(r) = name.strip_prefix("c2c_id_") {
            (IdSyncKind::C2c, r)
        } else {
            return Err(bad("it must start with `adobe_id_` or `c2c_id_`".into()));
        };
        let (rest, gzip) = match rest.strip_suffix(".gz") {
            Some(r) => (r, true),
            None => (rest, false),
        };
        let (ids, ending, split) = split_dots(rest);
        match ending {
            Some("sync") => {}
            Some(other) => {
                return Err(bad(format!(
                    "`.{other}` where `.sync` belongs (ID sync files are always .sync)"
                )))
            }
            None => return Err(bad("no `.sync`".into())),
        }
        let split = split.map_err(bad)?;
        let parts: Vec<&str> = ids.split('_').collect();
        let columns = parts.len().saturating_sub(1);
        let columns_ok = match kind {
            IdSyncKind::Adobe => columns >= 2,
            IdSyncKind::C2c => columns == 2,
        };
        if parts.iter().any(|p| !is_digits(p)) || !columns_ok {
            return Err(bad(format!(
                "`{ids}` is not the DPIDs and timestamp in digits"
            )));
        }
        let ts = parts[parts.len() - 1];
        if ts.len() != 10 {
            return Err(FileNameError::Timestamp(ts.to_owned()));
        }
        Ok(IdSyncName {
            kind,
            dpids: parts[..columns].iter().map(|p| number(p)).collect(),
            timestamp: number(ts),
            split,
            gzip,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adobe_sample_names_parse() {
        let a = IdSyncName::parse("adobe_id_0_12345_1476312152.sync").unwrap();
        assert_eq!(a.kind, IdSyncKind::Adobe);
        assert_eq!(a.dpids, [0, 12345]);
        assert_eq!(a.timestamp, 1_476_312_152);
        let b = IdSyncName::parse("adobe_id_12345_67890_1477846458.sync").unwrap();
        assert_eq!(b.dpids, [12345, 67890]);
        let many = IdSyncName::parse("adobe_id_20914_1_2_3_1477846458.sync.2.gz").unwrap();
        assert_eq!(many.dpids, [20914, 1, 2, 3]);
        assert_eq!((many.split, many.gzip), (Some(2), true));
        let c = IdSyncName::parse("c2c_id_123_456_1477846458.sync").unwrap();
        assert_eq!(c.stem(), "c2c_id_123_456_1477846458");
        assert_eq!((c.kind, c.dpids), (IdSyncKind::C2c, vec![123, 456]));
        assert_eq!(many.stem(), "adobe_id_20914_1_2_3_1477846458");
    }

    #[test]
    fn bad_id_sync_names_say_why() {
        for bad in [
            "adobe_id_0_1476312152.sync",
            "adobe_id_0_12345_1476312152.overwrite",
            "adobe_id_0_x_1476312152.sync",
            "c2c_id_1_2_3_1476312152.sync",
            "adobe_id_0_1_1476312152.sync.1.2",
        ] {
            assert!(
                matches!(IdSyncName::parse(bad), Err(FileNameError::Pattern(_))),
                "{bad}"
            );
        }
        assert_eq!(
            IdSyncName::parse("adobe_id_0_1_147631215.sync"),
            Err(FileNameError::Timestamp("147631215".into()))
        );
        assert!(IdSyncName::is_claimed("c2c_id_1"));
        assert!(!IdSyncName::is_claimed("ftp_dpm_1_1476312152.sync"));
    }
}
