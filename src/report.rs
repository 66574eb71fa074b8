//! The receipt: the counters AAM's own receipt uses, for what this run wrote, before upload
//! (SPEC: What AAM reports back). Printed as text, or written as JSON with `--report`.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Receipt {
    pub files_read: u64,
    pub rows_read: u64,
    /// Rows left out, including the rows of rejected users.
    pub rows_rejected: u64,
    /// Rows and users rejected, by reason code.
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Users seen in accepted rows.
    pub users_read: u64,
    pub users_written: u64,
    /// Users rejected whole (too many lines, larger than a part).
    pub users_rejected: u64,
    /// Users whose accepted rows produced no trait: they get no line (it would be a format
    /// error in AAM's receipt).
    pub users_without_traits: u64,
    pub lines: u64,
    /// Total signals written.
    pub traits: u64,
    /// d_sid, d_unsid, ic, key_value, removal.
    pub traits_by_kind: BTreeMap<String, u64>,
    /// Users' traits that were both added and removed: the addition was kept.
    pub conflicts: u64,
    /// User IDs whose letter case was normalized (`normalize_case`).
    pub ids_normalized: u64,
    /// Values not in a `value_map` with `unmapped = "skip"`.
    pub values_skipped: u64,
    pub parts: Vec<PartReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartReport {
    pub file: String,
    /// Size of the file as written (compressed when gzip is on).
    pub bytes: u64,
    pub uncompressed_bytes: u64,
    pub users: u64,
    pub lines: u64,
}

impl Receipt {
    pub fn reject(&mut self, reason: &str, rows: u64) {
        self.rows_rejected += rows;
        *self
            .rejected_by_reason
            .entry(reason.to_owned())
            .or_default() += rows;
    }

    /// Share of rows read that were rejected (0 when nothing was read).
    pub fn reject_rate(&self) -> f64 {
        if self.rows_read == 0 {
            0.0
        } else {
            self.rows_rejected as f64 / self.rows_read as f64
        }
    }

    /// The human summary printed at the end of a run.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "files read            {}", self.files_read);
        let _ = writeln!(s, "rows read             {}", self.rows_read);
        let _ = writeln!(
            s,
            "rows rejected         {} ({:.2}%)",
            self.rows_rejected,
            self.reject_rate() * 100.0
        );
        for (reason, n) in &self.rejected_by_reason {
            let _ = writeln!(s, "  {reason:<20}{n}");
        }
        let _ = writeln!(s, "users read            {}", self.users_read);
        let _ = writeln!(s, "users written         {}", self.users_written);
        if self.users_rejected > 0 {
            let _ = writeln!(s, "users rejected        {}", self.users_rejected);
        }
        if self.users_without_traits > 0 {
            let _ = writeln!(
                s,
                "users without traits  {} (no line written)",
                self.users_without_traits
            );
        }
        let _ = writeln!(s, "lines                 {}", self.lines);
        let _ = writeln!(s, "traits                {}", self.traits);
        for (kind, n) in &self.traits_by_kind {
            let _ = writeln!(s, "  {kind:<20}{n}");
        }
        if self.conflicts > 0 {
            let _ = writeln!(
                s,
                "add/remove conflicts  {} (the addition was kept)",
                self.conflicts
            );
        }
        if self.ids_normalized > 0 {
            let _ = writeln!(s, "IDs case-normalized   {}", self.ids_normalized);
        }
        if self.values_skipped > 0 {
            let _ = writeln!(s, "unmapped values       {} (skipped)", self.values_skipped);
        }
        for p in &self.parts {
            let _ = writeln!(
                s,
                "part {}  {} bytes ({} uncompressed), {} users, {} lines",
                p.file, p.bytes, p.uncompressed_bytes, p.users, p.lines
            );
        }
        s
    }
}
