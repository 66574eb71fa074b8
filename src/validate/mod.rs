//! `aam-etl validate`: checks inbound files against SPEC before upload and reports what AAM
//! would report. It parses through [`crate::inbound`], the same model the writer renders
//! with, and streams: memory is bounded by the number of distinct users in a file (one hashed
//! entry each, for the 200-lines rule), never by the file's size.

mod decompress;
mod file;
mod idsync;
mod lines;
mod rules;
mod walk;

pub use rules::{Rule, RuleInfo, Severity};
pub use walk::collect_files;

use crate::error::{Error, Result};
use crate::inbound::{IdSyncName, IdType, KindCounts, Mode};
use crate::report::FileReceipt;
use crate::taxonomy::Taxonomy;
use flate2::read::MultiGzDecoder;
use lines::{PendingLine, PENDING_LINES};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Options {
    /// The ID type of every file; by default inferred from a device DPID in the name, else
    /// DPUUID (the company's own IDs; 38-digit AAM UUIDs are accepted among them).
    pub id_type: Option<IdType>,
    /// Also report style warnings (spaced traits).
    pub strict: bool,
    /// Diagnostics printed per rule and file; the rest are counted.
    pub max_per_rule: usize,
    /// The trait list (`--traits`): trait IDs and signals are checked against the file's
    /// data source's traits.
    pub traits: Option<std::sync::Arc<Taxonomy>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub path: String,
    /// 1-based line; 0 for the file as a whole.
    pub line: u64,
    pub severity: Severity,
    pub code: &'static str,
    pub name: &'static str,
    pub message: String,
}

impl Diagnostic {
    /// `path:line: error CODE message`
    pub fn to_text(&self) -> String {
        format!(
            "{}:{}: {} {} {}",
            self.path,
            self.line,
            self.severity.name(),
            self.code,
            self.message
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub path: String,
    pub diagnostics: Vec<Diagnostic>,
    /// Diagnostics not listed (over `max_per_rule`), by rule code.
    pub not_listed: BTreeMap<&'static str, u64>,
    pub receipt: FileReceipt,
}

/// Checks one file. Errors only when it cannot be opened or read at all.
pub fn validate_file(path: &Path, opts: &Options) -> Result<FileReport> {
    let mut c = Checker::new(path, opts);
    if c.check_hidden() {
        return Ok(c.finish());
    }
    c.check_name();
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let file_bytes = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if c.encrypted {
        c.receipt.bytes = file_bytes;
        return Ok(c.finish());
    }
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let head = reader.fill_buf().map_err(|e| Error::io(path, e))?;
    if head.starts_with(b"PK\x03\x04") {
        c.report(
            0,
            Rule::Zip,
            "a ZIP archive: zip is not supported; use gzip".into(),
        );
        c.receipt.bytes = file_bytes;
        return Ok(c.finish());
    }
    let is_gzip = head.starts_with(&[0x1f, 0x8b]);
    let named_gz = c.name_gz;
    if named_gz && !is_gzip && file_bytes > 0 {
        c.report(
            0,
            Rule::GzipCorrupt,
            "named .gz but not gzip-compressed".into(),
        );
    } else if !named_gz && is_gzip {
        c.report(
            0,
            Rule::GzipCorrupt,
            "gzip-compressed but not named .gz".into(),
        );
    }
    let uncompressed = if is_gzip {
        // Decompress on a second thread while this one checks lines.
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel(4);
            scope.spawn(move || decompress::decompress_into(MultiGzDecoder::new(reader), &tx));
            c.check_lines(BufReader::with_capacity(
                1 << 20,
                decompress::ChannelReader::new(rx),
            ))
        })
    } else {
        c.check_lines(reader)
    }?;
    c.check_sizes(file_bytes, uncompressed, is_gzip);
    Ok(c.finish())
}

struct Checker<'o> {
    path: PathBuf,
    display: String,
    opts: &'o Options,
    name_gz: bool,
    /// Named `.pgp`/`.gpg`: the content is not readable.
    encrypted: bool,
    /// An ID-synchronization file, checked by its own rules.
    id_sync: Option<IdSyncName>,
    mode: Option<Mode>,
    /// The data source of the file's traits (from its name: the target DPID, else the DPID).
    data_source: Option<u64>,
    id_type: Option<IdType>,
    diagnostics: Vec<Diagnostic>,
    per_rule: HashMap<Rule, u64>,
    receipt: FileReceipt,
    /// Lines per user, keyed by a 64-bit hash of the ID: bounded memory for the 200-line rule.
    lines_per_user: HashMap<u64, u32, foldhash::fast::RandomState>,
    id_hasher: foldhash::quality::RandomState,
    /// ID shapes seen (for files whose type is not known), with the first line of each.
    shapes: BTreeMap<&'static str, u64>,
    /// Whether the current line has an error already.
    line_failed: bool,
    /// Lines waiting for their user count, and their user IDs back to back.
    pending: Vec<PendingLine>,
    pending_ids: String,
    /// Valid traits by kind.
    kinds: KindCounts,
}

impl<'o> Checker<'o> {
    fn new(path: &Path, opts: &'o Options) -> Checker<'o> {
        Checker {
            path: path.to_owned(),
            display: path.display().to_string(),
            opts,
            name_gz: false,
            encrypted: false,
            id_sync: None,
            mode: None,
            data_source: None,
            id_type: opts.id_type,
            diagnostics: Vec::new(),
            per_rule: HashMap::new(),
            receipt: FileReceipt::default(),
            lines_per_user: HashMap::default(),
            id_hasher: Default::default(),
            shapes: BTreeMap::new(),
            line_failed: false,
            pending: Vec::with_capacity(PENDING_LINES),
            pending_ids: String::new(),
            kinds: KindCounts::default(),
        }
    }

    fn report(&mut self, line: u64, rule: Rule, message: String) {
        if rule.severity() == Severity::Error {
            self.line_failed |= rule.fails_record();
            self.receipt.errors += 1;
        } else {
            self.receipt.warnings += 1;
        }
        let n = self.per_rule.entry(rule).or_default();
        *n += 1;
        if *n as usize <= self.opts.max_per_rule {
            self.diagnostics.push(Diagnostic {
                path: self.display.clone(),
                line,
                severity: rule.severity(),
                code: rule.code(),
                name: rule.name(),
                message,
            });
        }
    }

    fn finish(mut self) -> FileReport {
        self.receipt.files = 1;
        self.receipt.traits_by_kind = self.kinds.by_name();
        // A file AAM will not pick up (bad name, folder, compression) stores nothing.
        if self
            .diagnostics
            .iter()
            .any(|d| d.line == 0 && d.severity == Severity::Error)
            || self.per_rule.contains_key(&Rule::GzipCorrupt)
        {
            self.receipt.records_stored = 0;
        }
        let max = self.opts.max_per_rule as u64;
        let not_listed = self
            .per_rule
            .iter()
            .filter(|(_, &n)| n > max)
            .map(|(r, &n)| (r.code(), n - max))
            .collect();
        FileReport {
            path: self.display,
            diagnostics: self.diagnostics,
            not_listed,
            receipt: self.receipt,
        }
    }
}

/// Validates `text` as a file named `name` (in a temporary folder): for tests.
#[cfg(test)]
fn validate_text(name: &str, text: &str, opts: &Options) -> FileReport {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    let mut r = validate_file(&path, opts).unwrap();
    for d in &mut r.diagnostics {
        d.path = name.to_owned();
    }
    r
}

/// Options for tests: every diagnostic listed, nothing strict.
#[cfg(test)]
fn test_options() -> Options {
    Options {
        id_type: None,
        strict: false,
        max_per_rule: 100,
        traits: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> Options {
        test_options()
    }

    fn codes(name: &str, text: &str, o: &Options) -> Vec<(u64, &'static str)> {
        validate_text(name, text, o)
            .diagnostics
            .iter()
            .map(|d| (d.line, d.code))
            .collect()
    }

    #[test]
    fn spec_examples_validate_clean_and_spaced_ones_warn_only_when_strict() {
        let name = "ftp_dpm_21_1700000000.sync";
        for line in [
            "59767559181262060060278870901087098252\td_sid=24,d_sid=26,d_sid=27,d_unsid=28,d_unsid=29",
            "59767559181262060060278870901087098252\t28:0,29:0",
            "DBwFoc3dhfMNCFBh2M4F9ZkJEXMNnRDh2PXvnI1\t30608,50354,50338,50352,30626",
            "DBwFoc3dhfMNCFBh2M4F9ZkJEXMNnRDh2PXvnI1\tic=52,ic=55",
            "59767559181262060060278870901087098252\t\"gender\"=\"female\",\"luxury_shopper\"=\"yes\"",
        ] {
            assert_eq!(codes(name, &format!("{line}\n"), &opts()), [], "{line}");
        }
        let gaid = "ftp_dpm_20914_21_1700000000.sync";
        let idfa = "ftp_dpm_20915_21_1700000000.sync";
        let spaced_gaid =
            "e4fe9bde-caa0-47b6-908d-ffba3fa184f2\tproduct = tablet, product = phone\n";
        let spaced_idfa = "6D92078A-8246-4BA4-AE5B-76104861E7DC\t\"product\" = \"tablet\", \"product\" = \"phone\"\n";
        assert_eq!(codes(gaid, spaced_gaid, &opts()), []);
        assert_eq!(codes(idfa, spaced_idfa, &opts()), []);
        let strict = Options {
            strict: true,
            ..opts()
        };
        assert_eq!(
            codes(gaid, spaced_gaid, &strict),
            [(1, "T007"), (1, "T007")]
        );
    }
}
