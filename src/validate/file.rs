//! Checks of a file as a whole: its name, its folder and its size (SPEC: File names, File
//! sizes).

use super::{Checker, Rule};
use crate::inbound::{
    is_date_folder, FileName, FileNameError, IdSyncName, IdType, MAX_COMPRESSED_BYTES,
    MAX_UNCOMPRESSED_BYTES, OPTIMAL_COMPRESSED_BYTES, OPTIMAL_PART_BYTES,
};
use crate::lock::LOCK_FILE;
use crate::publish::temporary_of;

impl Checker<'_> {
    /// Reports a hidden file (its content is not an inbound file's); true if it is one.
    pub(super) fn check_hidden(&mut self) -> bool {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !name.starts_with('.') {
            return false;
        }
        let why = if name == LOCK_FILE {
            "lock file of an aam-etl run: a run is writing to this folder, or was killed while it did".to_owned()
        } else if let Some(of) = temporary_of(&name) {
            format!("temporary file of an aam-etl run (for {of}) that is still writing or was stopped; it is not part of a delivery")
        } else {
            "hidden file; not an inbound file".to_owned()
        };
        self.report(0, Rule::HiddenFile, why);
        true
    }

    pub(super) fn check_name(&mut self) {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.name_gz = name.ends_with(".gz");
        if IdSyncName::is_claimed(&name) {
            match IdSyncName::parse(&name) {
                Ok(n) => self.id_sync = Some(n),
                Err(e) => self.report_name_error(e),
            }
        } else {
            match FileName::parse(&name) {
                Ok(f) => self.check_dpids(&f),
                Err(e) => self.report_name_error(e),
            }
        }
        let parent = self
            .path
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned());
        if let Some(folder) = parent.filter(|f| f.starts_with("date=")) {
            if !is_date_folder(&folder) {
                self.report(
                    0,
                    Rule::DateFolder,
                    format!("folder `{folder}` is not date=YYYY-MM-DD with a real calendar date"),
                );
            }
        }
    }

    fn report_name_error(&mut self, e: FileNameError) {
        let rule = match e {
            FileNameError::Timestamp(_) => Rule::Timestamp,
            FileNameError::DoubleCompression(_) => {
                // Encrypted all the same: the content is not readable.
                self.encrypted = true;
                Rule::DoubleCompression
            }
            FileNameError::Pattern(_) => Rule::FileName,
        };
        self.report(0, rule, e.to_string());
    }

    /// The name's DPIDs against each other and against `--id-type`; sets the file's ID type.
    fn check_dpids(&mut self, f: &FileName) {
        self.mode = Some(f.mode);
        self.data_source = Some(f.target_dpid.unwrap_or(f.dpid));
        if f.encrypted {
            self.encrypted = true;
            self.report(
                0,
                Rule::Encrypted,
                "PGP-encrypted; its content cannot be checked without the key (validate the file before encrypting it)".into(),
            );
        }
        if let Some(device) = f.target_dpid.and_then(IdType::from_global_dpid) {
            self.report(
                0,
                Rule::DeviceTargetDpid,
                format!(
                    "target DPID {} is the global {} data source; the target must be a data source the company owns",
                    f.target_dpid.unwrap_or_default(),
                    device.name()
                ),
            );
        }
        let named = IdType::from_global_dpid(f.dpid);
        if let Some(device) = named {
            if f.target_dpid.is_none() {
                self.report(
                    0,
                    Rule::MissingTargetDpid,
                    format!(
                        "DPID {} is the global {} data source; the name needs a target DPID: ftp_dpm_{}_<TARGET_DPID>_...",
                        f.dpid,
                        device.name(),
                        f.dpid
                    ),
                );
            }
        }
        // A device type belongs to its global DPID; the company's own DPID holds DPUUIDs or
        // AAM UUIDs.
        let contradiction = match (self.opts.id_type, named) {
            (Some(t), Some(device)) => t != device,
            (Some(t), None) => t.is_device(),
            (None, _) => false,
        };
        if contradiction {
            let t = self.opts.id_type.unwrap_or(IdType::Dpuuid);
            let named_as = named.map_or_else(
                || "the company's own data source (DPUUIDs or AAM UUIDs)".to_owned(),
                |d| format!("the global {} data source", d.name()),
            );
            let fix = t.global_dpid().map_or_else(String::new, |d| {
                format!(
                    "; {} files are named ftp_dpm_{d}_<TARGET_DPID>_...",
                    t.name()
                )
            });
            self.report(
                0,
                Rule::IdTypeContradictsName,
                format!(
                    "--id-type {} contradicts the file name: DPID {} is {named_as}{fix}",
                    t.name(),
                    f.dpid
                ),
            );
        } else if let Some(device) = named {
            self.id_type = Some(device);
        }
    }

    pub(super) fn check_sizes(&mut self, file_bytes: u64, uncompressed: u64, gzip: bool) {
        let gb = |b: u64| format!("{:.2} GB", b as f64 / 1e9);
        if uncompressed > MAX_UNCOMPRESSED_BYTES {
            self.report(
                0,
                Rule::SizeOverMaximum,
                format!("{} uncompressed, over AAM's 5 GB maximum", gb(uncompressed)),
            );
        } else if gzip && file_bytes > MAX_COMPRESSED_BYTES {
            self.report(
                0,
                Rule::SizeOverMaximum,
                format!(
                    "{} compressed, over AAM's 1 GB maximum for gzip files",
                    gb(file_bytes)
                ),
            );
        } else if gzip && file_bytes > OPTIMAL_COMPRESSED_BYTES {
            self.report(
                0,
                Rule::SizeOverOptimal,
                format!(
                    "{} compressed; 200-300 MB parts are optimal",
                    gb(file_bytes)
                ),
            );
        } else if !gzip && uncompressed > OPTIMAL_PART_BYTES {
            self.report(
                0,
                Rule::SizeOverOptimal,
                format!("{} uncompressed; 1 GB parts are optimal", gb(uncompressed)),
            );
        }
        self.receipt.bytes = file_bytes;
        self.receipt.uncompressed_bytes = uncompressed;
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_options as opts;
    use super::*;
    use std::path::Path;

    #[test]
    fn sizes_against_optimal_and_maximum() {
        let o = opts();
        let check = |bytes: u64, uncompressed: u64, gzip: bool| {
            let mut c = Checker::new(Path::new("f"), &o);
            c.check_sizes(bytes, uncompressed, gzip);
            c.diagnostics
                .iter()
                .map(|d| format!("{} {}", d.code, d.message))
                .collect::<Vec<_>>()
        };
        assert_eq!(check(200_000_000, 900_000_000, true), Vec::<String>::new());
        assert_eq!(
            check(350_000_000, 1_500_000_000, true),
            ["F009 0.35 GB compressed; 200-300 MB parts are optimal"]
        );
        assert_eq!(
            check(1_100_000_000, 4_000_000_000, true),
            ["F010 1.10 GB compressed, over AAM's 1 GB maximum for gzip files"]
        );
        assert_eq!(
            check(1_200_000_000, 1_200_000_000, false),
            ["F009 1.20 GB uncompressed; 1 GB parts are optimal"]
        );
        assert_eq!(
            check(5_100_000_000, 5_100_000_000, false),
            ["F010 5.10 GB uncompressed, over AAM's 5 GB maximum"]
        );
    }

    #[test]
    fn hidden_files_say_what_they_are() {
        let o = opts();
        let said = |name: &str| {
            let mut c = Checker::new(Path::new(name), &o);
            assert!(c.check_hidden(), "{name}");
            c.diagnostics[0].message.clone()
        };
        assert_eq!(
            said("out/.ftp_dpm_21_1700000000.sync.gz.4242.tmp"),
            "temporary file of an aam-etl run (for ftp_dpm_21_1700000000.sync.gz) that is still writing or was stopped; it is not part of a delivery"
        );
        assert_eq!(said("out/.DS_Store"), "hidden file; not an inbound file");
        let mut c = Checker::new(Path::new("out/ftp_dpm_21_1700000000.sync"), &o);
        assert!(!c.check_hidden());
    }
}
