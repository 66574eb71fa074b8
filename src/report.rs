//! The receipt: the counters AAM's own receipt uses, for what this run wrote, before upload
//! (SPEC: What AAM reports back). Printed as text, or written as JSON with `--report`.

use crate::reject::RejectReason;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What the summary calls what a file sends: traits, or the ID pairs of an ID-sync file.
struct Words {
    sent: &'static str,
    added: &'static str,
    removed: &'static str,
    kept: &'static str,
    kept_why: &'static str,
}

const TRAITS: Words = Words {
    sent: "traits",
    added: "traits added",
    removed: "traits removed",
    kept: "signals not retractable",
    kept_why: "left or lost every trait; AAM keeps their signals",
};

const PAIRS: Words = Words {
    sent: "ID pairs",
    added: "ID pairs added",
    removed: "ID pairs removed",
    kept: "pairs not retractable",
    kept_why: "left or lost pairs; AAM keeps the IDs synced",
};

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
    /// Total signals written; in an ID-sync run, the IDs synced to their master IDs.
    pub traits: u64,
    /// An ID-sync run: its lines carry ID pairs, not traits.
    pub id_sync: bool,
    /// d_sid, d_unsid, ic, key_value, removal.
    pub traits_by_kind: BTreeMap<String, u64>,
    /// Users' traits that were both added and removed: the addition was kept.
    pub conflicts: u64,
    /// User IDs whose letter case was normalized (`normalize_case`).
    pub ids_normalized: u64,
    /// DPUUIDs shaped like phone numbers (PII?): sent, but worth a look.
    pub ids_phone_like: u64,
    /// Values not in a `value_map` with `unmapped = "skip"`.
    pub values_skipped: u64,
    /// Those values by rule, each with how many cells held it (the first
    /// `UNMAPPED_LISTED` distinct values a converting thread met; the total is exact).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub unmapped_values: BTreeMap<String, BTreeMap<String, u64>>,
    /// `key_column` rows skipped by rule and key: a key not in `keys`, or none (`""`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub keys_skipped: BTreeMap<String, BTreeMap<String, u64>>,
    /// ID sync: rows without one of the IDs (nothing to sync; not an error).
    #[serde(skip_serializing_if = "is_zero")]
    pub rows_without_ids: u64,
    /// c2c: hashed e-mails of a CRM ID beyond the 10 most recent, not sent.
    #[serde(skip_serializing_if = "is_zero")]
    pub emails_dropped: u64,
    /// Key-value cells whose commas were replaced (`comma_replacement`).
    #[serde(skip_serializing_if = "is_zero")]
    pub commas_replaced: u64,
    /// With a state (`--state`): what the diff sent, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DiffCounts>,
    /// Rows whose `when` condition was NULL, by rule: neither the trait nor its removal.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub null_conditions: BTreeMap<String, u64>,
    /// With a trait list: signals written, by key, that no rule-based trait of the data
    /// source reads (AAM: unused signals).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub unrealized_signals: BTreeMap<String, u64>,
    pub parts: Vec<PartReport>,
}

/// What the diff found, for the summary, the report and the ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DiffCounts {
    /// In the export, not in the state: sent whole.
    pub users_new: u64,
    /// Sent a `.sync` line with what changed.
    pub users_changed: u64,
    /// Sent their whole set in the `.overwrite` file.
    pub users_overwritten: u64,
    /// Left the export: their trait IDs removed.
    pub users_gone: u64,
    /// Back after leaving.
    pub users_returned: u64,
    /// Nothing to send.
    pub users_unchanged: u64,
    /// Users who left or lost every trait while AAM keeps signals of theirs, which no file
    /// can take back (a full refresh does not list them either).
    pub users_with_signals_kept: u64,
    /// Trait elements that add (`d_sid`, signals) and that remove, in the delivery.
    pub traits_added: u64,
    pub traits_removed: u64,
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

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn count_listed(map: &mut BTreeMap<String, BTreeMap<String, u64>>, rule: &str, value: &str) {
    let values = map.entry(rule.to_owned()).or_default();
    if let Some(n) = values.get_mut(value) {
        *n += 1;
    } else if values.len() < UNMAPPED_LISTED {
        values.insert(value.to_owned(), 1);
    }
}

fn top<'a>(
    map: &'a BTreeMap<String, BTreeMap<String, u64>>,
    rule: &str,
    n: usize,
) -> Vec<(&'a str, u64)> {
    let mut values: Vec<(&str, u64)> = map
        .get(rule)
        .into_iter()
        .flatten()
        .map(|(v, &c)| (v.as_str(), c))
        .collect();
    values.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    values.truncate(n);
    values
}

/// Distinct unmapped values counted per rule and thread: enough to show the common ones
/// without growing with a column of free text.
pub const UNMAPPED_LISTED: usize = 1000;

impl Receipt {
    /// A value a value map skipped (`unmapped = "skip"`), counted by rule and value.
    pub fn skip_value(&mut self, rule: &str, value: &str) {
        self.values_skipped += 1;
        count_listed(&mut self.unmapped_values, rule, value);
    }

    /// A `key_column` row whose key is not sent (`""`: it has none).
    pub fn skip_key(&mut self, rule: &str, key: &str) {
        count_listed(&mut self.keys_skipped, rule, key);
    }

    /// A rule's most common unmapped values, most common first (ties by value).
    pub fn top_unmapped(&self, rule: &str, n: usize) -> Vec<(&str, u64)> {
        top(&self.unmapped_values, rule, n)
    }

    /// A rule's most common skipped keys, most common first.
    pub fn top_keys_skipped(&self, rule: &str, n: usize) -> Vec<(&str, u64)> {
        top(&self.keys_skipped, rule, n)
    }

    pub fn reject(&mut self, reason: RejectReason, rows: u64) {
        self.rows_rejected += rows;
        *self
            .rejected_by_reason
            .entry(reason.code().to_owned())
            .or_default() += rows;
    }

    /// Adds the counts of another receipt for the same run (one converting thread's).
    pub fn absorb(&mut self, other: Receipt) {
        let Receipt {
            files_read,
            rows_read,
            rows_rejected,
            rejected_by_reason,
            users_read,
            users_written,
            users_rejected,
            users_without_traits,
            lines,
            traits,
            id_sync,
            traits_by_kind,
            conflicts,
            ids_normalized,
            ids_phone_like,
            values_skipped,
            unmapped_values,
            keys_skipped,
            rows_without_ids,
            emails_dropped,
            commas_replaced,
            null_conditions,
            unrealized_signals,
            delivery: _,
            parts,
        } = other;
        self.files_read += files_read;
        self.rows_read += rows_read;
        self.rows_rejected += rows_rejected;
        for (reason, n) in rejected_by_reason {
            *self.rejected_by_reason.entry(reason).or_default() += n;
        }
        self.users_read += users_read;
        self.users_written += users_written;
        self.users_rejected += users_rejected;
        self.users_without_traits += users_without_traits;
        self.lines += lines;
        self.traits += traits;
        self.id_sync |= id_sync;
        for (kind, n) in traits_by_kind {
            *self.traits_by_kind.entry(kind).or_default() += n;
        }
        self.conflicts += conflicts;
        self.ids_normalized += ids_normalized;
        self.ids_phone_like += ids_phone_like;
        self.values_skipped += values_skipped;
        for (mine, theirs) in [
            (&mut self.unmapped_values, unmapped_values),
            (&mut self.keys_skipped, keys_skipped),
        ] {
            for (rule, values) in theirs {
                let mine = mine.entry(rule).or_default();
                for (value, n) in values {
                    *mine.entry(value).or_default() += n;
                }
            }
        }
        self.commas_replaced += commas_replaced;
        self.rows_without_ids += rows_without_ids;
        self.emails_dropped += emails_dropped;
        for (rule, n) in null_conditions {
            *self.null_conditions.entry(rule).or_default() += n;
        }
        for (key, n) in unrealized_signals {
            *self.unrealized_signals.entry(key).or_default() += n;
        }
        self.parts.extend(parts);
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
        let mut row = |label: &str, value: String| {
            // A long label (a rule's key path) keeps a space before its value.
            let _ = writeln!(s, "{label:<25} {value}");
        };
        row("files read", self.files_read.to_string());
        row("rows read", self.rows_read.to_string());
        row(
            "rows rejected",
            format!(
                "{} ({:.2}%)",
                self.rows_rejected,
                self.reject_rate() * 100.0
            ),
        );
        for (reason, n) in &self.rejected_by_reason {
            row(&format!("  {reason}"), n.to_string());
        }
        row("users read", self.users_read.to_string());
        row("users written", self.users_written.to_string());
        if self.users_rejected > 0 {
            row("users rejected", self.users_rejected.to_string());
        }
        if self.users_without_traits > 0 {
            row(
                "users without traits",
                format!("{} (no line written)", self.users_without_traits),
            );
        }
        row("lines", self.lines.to_string());
        let words = if self.id_sync { &PAIRS } else { &TRAITS };
        row(words.sent, self.traits.to_string());
        for (kind, n) in &self.traits_by_kind {
            row(&format!("  {kind}"), n.to_string());
        }
        if self.conflicts > 0 {
            row(
                "add/remove conflicts",
                format!("{} (the addition was kept)", self.conflicts),
            );
        }
        if self.ids_normalized > 0 {
            row("IDs case-normalized", self.ids_normalized.to_string());
        }
        if self.values_skipped > 0 {
            row(
                "unmapped values",
                format!("{} (skipped)", self.values_skipped),
            );
            for rule in self.unmapped_values.keys() {
                let top: Vec<String> = self
                    .top_unmapped(rule, 5)
                    .iter()
                    .map(|(v, n)| format!("\"{v}\" x{n}"))
                    .collect();
                row(&format!("  {rule}"), top.join(", "));
            }
        }
        for rule in self.keys_skipped.keys() {
            let top: Vec<String> = self
                .top_keys_skipped(rule, 5)
                .iter()
                .map(|(k, n)| match *k {
                    "" => format!("(no key) x{n}"),
                    k => format!("{k} x{n}"),
                })
                .collect();
            row(&format!("keys skipped {rule}"), top.join(", "));
        }
        if self.rows_without_ids > 0 {
            row(
                "rows without an ID",
                format!("{} (nothing to sync)", self.rows_without_ids),
            );
        }
        if self.emails_dropped > 0 {
            row(
                "e-mails over 10 per ID",
                format!(
                    "{} (older ones not sent; AAM keeps the 10 most recent)",
                    self.emails_dropped
                ),
            );
        }
        if self.commas_replaced > 0 {
            row(
                "values with commas",
                format!("{} (commas replaced)", self.commas_replaced),
            );
        }
        if let Some(d) = &self.delivery {
            let rows = [
                ("users new", d.users_new),
                ("users changed (.sync)", d.users_changed),
                ("users overwritten", d.users_overwritten),
                ("users gone (removed)", d.users_gone),
                ("users returned", d.users_returned),
                ("users unchanged", d.users_unchanged),
                (words.added, d.traits_added),
                (words.removed, d.traits_removed),
            ];
            for (label, n) in rows {
                row(label, n.to_string());
            }
            if d.users_with_signals_kept > 0 {
                row(
                    words.kept,
                    format!("{} users ({})", d.users_with_signals_kept, words.kept_why),
                );
            }
        }
        for (rule, n) in &self.null_conditions {
            let what = if rule.ends_with(".remove_when") {
                "added, not removed"
            } else {
                "neither added nor removed"
            };
            row(
                &format!("NULL condition {rule}"),
                format!("{n} rows ({what}; see COALESCE in the README)"),
            );
        }
        for p in &self.parts {
            row(
                "part",
                format!(
                    "{}  {} bytes ({} uncompressed), {} users, {} lines",
                    p.file, p.bytes, p.uncompressed_bytes, p.users, p.lines
                ),
            );
        }
        for (key, n) in &self.unrealized_signals {
            let _ = writeln!(
                s,
                "warning: {n} signal{} with key `{key}` will not realize any trait: no rule-based trait of the data source in the trait list reads {}",
                if *n == 1 { "" } else { "s" },
                if key == "ic" { "the value" } else { "the key" }
            );
        }
        if self.ids_phone_like > 0 {
            let _ = writeln!(
                s,
                "warning: {} user IDs look like phone numbers; AAM must not receive PII",
                self.ids_phone_like
            );
        }
        s
    }
}

/// What AAM's receipt would say of one inbound file (or, summed, of several): the
/// validator's counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FileReceipt {
    pub files: u64,
    pub bytes: u64,
    pub uncompressed_bytes: u64,
    pub records_received: u64,
    /// Records with an error of any kind (AAM: format errors, invalid IDs, dropped lines).
    pub format_errors: u64,
    pub invalid_aam_ids: u64,
    pub invalid_device_ids: u64,
    /// Records AAM would store.
    pub records_stored: u64,
    /// Distinct user IDs (per file; summed over files in a total).
    pub users: u64,
    /// Trait elements in a valid form.
    pub signals: u64,
    pub traits_by_kind: BTreeMap<String, u64>,
    /// With a trait list: trait IDs AAM cannot realize (unknown, not onboarded, of another
    /// data source), and signals no rule-based trait reads.
    #[serde(skip_serializing_if = "is_zero")]
    pub traits_not_realized: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub unused_signals: u64,
    pub errors: u64,
    pub warnings: u64,
}

impl FileReceipt {
    pub fn add(&mut self, other: &FileReceipt) {
        self.files += other.files;
        self.bytes += other.bytes;
        self.uncompressed_bytes += other.uncompressed_bytes;
        self.records_received += other.records_received;
        self.format_errors += other.format_errors;
        self.invalid_aam_ids += other.invalid_aam_ids;
        self.invalid_device_ids += other.invalid_device_ids;
        self.records_stored += other.records_stored;
        self.users += other.users;
        self.signals += other.signals;
        self.traits_not_realized += other.traits_not_realized;
        self.unused_signals += other.unused_signals;
        for (k, v) in &other.traits_by_kind {
            *self.traits_by_kind.entry(k.clone()).or_default() += v;
        }
        self.errors += other.errors;
        self.warnings += other.warnings;
    }

    pub fn to_text(&self, title: &str) -> String {
        let mut s = format!("{title}\n");
        let rows = [
            ("records received", self.records_received),
            ("format errors", self.format_errors),
            ("invalid AAM IDs", self.invalid_aam_ids),
            ("invalid device IDs", self.invalid_device_ids),
            ("records stored", self.records_stored),
            ("users", self.users),
            ("total signals", self.signals),
        ];
        for (label, n) in rows {
            let _ = writeln!(s, "  {label:<24}{n}");
        }
        for (kind, n) in &self.traits_by_kind {
            let _ = writeln!(s, "    {kind:<22}{n}");
        }
        if self.traits_not_realized > 0 || self.unused_signals > 0 {
            let _ = writeln!(
                s,
                "  {:<24}{}",
                "traits not realized", self.traits_not_realized
            );
            let _ = writeln!(s, "  {:<24}{}", "unused signals", self.unused_signals);
        }
        let _ = writeln!(
            s,
            "  {:<24}{} errors, {} warnings",
            "diagnostics", self.errors, self.warnings
        );
        s
    }
}
