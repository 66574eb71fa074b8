//! Checks of a file as a whole: its name, its folder and its size (SPEC: File names, File
//! sizes).

use super::{Checker, Rule};
use crate::inbound::{
    is_date_folder, FileName, FileNameError, IdType, MAX_COMPRESSED_BYTES, MAX_UNCOMPRESSED_BYTES,
    OPTIMAL_COMPRESSED_BYTES, OPTIMAL_PART_BYTES,
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
        match FileName::parse(&name) {
            Ok(f) => {
                self.mode = Some(f.mode);
                if let Some(device) = IdType::from_global_dpid(f.dpid) {
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
                    match self.opts.id_type {
                        Some(t) if t != device => self.report(
                            0,
                            Rule::MixedIdTypes,
                            format!(
                                "--id-type {} but DPID {} is the {} data source",
                                t.name(),
                                f.dpid,
                                device.name()
                            ),
                        ),
                        _ => self.id_type = Some(device),
                    }
                }
            }
            Err(e @ FileNameError::Timestamp(_)) => self.report(0, Rule::Timestamp, e.to_string()),
            Err(e) => self.report(0, Rule::FileName, e.to_string()),
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
                    format!("folder `{folder}` is not date=YYYY-MM-DD"),
                );
            }
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
