//! `aam-etl validate`: checks inbound files against SPEC before upload and reports what AAM
//! would report. It parses through [`crate::inbound`], the same model the writer renders
//! with, and streams: memory is bounded by the number of distinct users in a file (one hashed
//! entry each, for the 200-lines rule), never by the file's size.

mod rules;

pub use rules::{Rule, Severity, RULES};

use crate::error::{Error, Result};
use crate::inbound::{
    is_uuid_shape, parse_line, ElementValue, FileName, FileNameError, IdProblem, IdTrait, IdType,
    LineError, Mode, TraitError, MAX_COMPRESSED_BYTES, MAX_LINES_PER_USER, MAX_LINE_BYTES,
    MAX_UNCOMPRESSED_BYTES, OPTIMAL_PART_BYTES,
};
use crate::report::FileReceipt;
use flate2::read::MultiGzDecoder;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Optimal gzip part size (SPEC: File sizes, 200-300 MB).
const OPTIMAL_COMPRESSED_BYTES: u64 = 300_000_000;

#[derive(Debug, Clone)]
pub struct Options {
    /// The ID type of every file; by default inferred from a device DPID in the name, else
    /// DPUUID (the company's own IDs; 38-digit AAM UUIDs are accepted among them).
    pub id_type: Option<IdType>,
    /// Also report style warnings (spaced traits).
    pub strict: bool,
    /// Diagnostics printed per rule and file; the rest are counted.
    pub max_per_rule: usize,
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

/// The files to check: files as given, folders walked recursively (sorted), hidden files
/// (such as a writer's temporaries) skipped inside folders.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| Error::io(p, e))?;
        if meta.is_dir() {
            walk(p, &mut files)?;
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, files)?;
        } else {
            files.push(p);
        }
    }
    Ok(())
}

/// Checks one file. Errors only when it cannot be opened or read at all.
pub fn validate_file(path: &Path, opts: &Options) -> Result<FileReport> {
    let mut c = Checker::new(path, opts);
    c.check_name();
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let file_bytes = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let is_gzip = reader
        .fill_buf()
        .map_err(|e| Error::io(path, e))?
        .starts_with(&[0x1f, 0x8b]);
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
            scope.spawn(move || decompress_into(MultiGzDecoder::new(reader), &tx));
            c.check_lines(BufReader::with_capacity(1 << 20, ChannelReader::new(rx)))
        })
    } else {
        c.check_lines(reader)
    }?;
    c.check_sizes(file_bytes, uncompressed, is_gzip);
    Ok(c.finish())
}

type Block = std::io::Result<Vec<u8>>;

/// Sends the decompressed data in blocks of about 1 MB, then any error, then hangs up.
fn decompress_into(mut gz: impl Read, tx: &std::sync::mpsc::SyncSender<Block>) {
    loop {
        let mut block = vec![0u8; 1 << 20];
        let mut filled = 0;
        let mut error = None;
        while filled < block.len() {
            match gz.read(&mut block[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        block.truncate(filled);
        let done = filled == 0 || error.is_some();
        // A send fails only when the checker stopped reading.
        if filled > 0 && tx.send(Ok(block)).is_err() {
            return;
        }
        if let Some(e) = error {
            let _ = tx.send(Err(e));
        }
        if done {
            return;
        }
    }
}

/// Reads the blocks another thread decompresses.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<Block>,
    block: Vec<u8>,
    pos: usize,
}

impl ChannelReader {
    fn new(rx: std::sync::mpsc::Receiver<Block>) -> ChannelReader {
        ChannelReader {
            rx,
            block: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.block.len() {
            match self.rx.recv() {
                Ok(Ok(block)) => {
                    self.block = block;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0), // the decompressor finished
            }
        }
        let n = out.len().min(self.block.len() - self.pos);
        out[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A line whose user count is still to be applied. The count table holds every user of the
/// file, so each lookup is a cache miss; looked up a few thousand at a time in a tight loop,
/// the misses overlap instead of stalling the parse of every line.
struct PendingLine {
    n: u64,
    key: u64,
    /// Whether the line had failed already.
    failed: bool,
    /// The user ID, in `Checker::pending_ids`.
    id: std::ops::Range<usize>,
}

const PENDING_LINES: usize = 4096;

struct Checker<'o> {
    path: PathBuf,
    display: String,
    opts: &'o Options,
    name_gz: bool,
    mode: Option<Mode>,
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
    /// Valid traits by kind (see `inbound::KINDS`).
    kinds: [u64; 5],
}

impl<'o> Checker<'o> {
    fn new(path: &Path, opts: &'o Options) -> Checker<'o> {
        Checker {
            path: path.to_owned(),
            display: path.display().to_string(),
            opts,
            name_gz: false,
            mode: None,
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
            kinds: [0; 5],
        }
    }

    fn report(&mut self, line: u64, rule: Rule, message: String) {
        if rule.severity() == Severity::Error {
            self.line_failed = true;
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

    fn check_name(&mut self) {
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
            if !valid_date(&folder["date=".len()..]) {
                self.report(
                    0,
                    Rule::DateFolder,
                    format!("folder `{folder}` is not date=YYYY-MM-DD"),
                );
            }
        }
    }

    /// Streams the lines; returns the uncompressed size.
    fn check_lines(&mut self, mut reader: impl BufRead) -> Result<u64> {
        let first = self.diagnostics.len();
        let mut buf = Vec::with_capacity(1 << 16);
        let mut line_no = 0u64;
        let mut total = 0u64;
        loop {
            buf.clear();
            let n = match reader.read_until(b'\n', &mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e)
                    if e.kind() == std::io::ErrorKind::InvalidInput
                        || e.kind() == std::io::ErrorKind::InvalidData
                        || e.kind() == std::io::ErrorKind::UnexpectedEof =>
                {
                    self.report(
                        line_no + 1,
                        Rule::GzipCorrupt,
                        format!("gzip data is corrupt or truncated: {e}"),
                    );
                    break;
                }
                Err(e) => return Err(Error::io(&self.path, e)),
            };
            total += n as u64;
            line_no += 1;
            let mut line: &[u8] = &buf;
            if line_no == 1 {
                if let Some(rest) = line.strip_prefix(b"\xef\xbb\xbf") {
                    self.report(
                        1,
                        Rule::Bom,
                        "the file starts with a UTF-8 byte order mark".into(),
                    );
                    line = rest;
                }
            }
            self.check_line(line_no, line);
        }
        self.count_users();
        // Counting in batches reports the 200-lines rule a little late: back in line order.
        self.diagnostics[first..].sort_by_key(|d| d.line);
        if self.receipt.records_received == 0 {
            self.report(
                0,
                Rule::EmptyFile,
                "no records; AAM does not process empty files".into(),
            );
        }
        Ok(total)
    }

    fn check_line(&mut self, n: u64, raw: &[u8]) {
        self.line_failed = false;
        self.receipt.records_received += 1;
        let mut line = raw.strip_suffix(b"\n").unwrap_or(raw);
        if let Some(l) = line.strip_suffix(b"\r") {
            self.report(n, Rule::Crlf, "CRLF line ending; use \\n".into());
            line = l;
        }
        if line.len() + 1 > MAX_LINE_BYTES {
            self.report(
                n,
                Rule::LineTooLong,
                format!(
                    "line is {} bytes, over the {MAX_LINE_BYTES}-byte limit; AAM drops it",
                    line.len() + 1
                ),
            );
        }
        if line.is_empty() {
            self.report(n, Rule::EmptyLine, "empty line".into());
            return self.end_line();
        }
        let Ok(text) = std::str::from_utf8(line) else {
            self.report(n, Rule::NotUtf8, "the line is not valid UTF-8".into());
            return self.end_line();
        };
        let parsed = match parse_line(text) {
            Ok(p) => p,
            Err(e) => {
                let rule = match e {
                    LineError::NoTab => Rule::MissingTab,
                    LineError::ExtraTab => Rule::ExtraTab,
                    LineError::EmptyUserId => Rule::MissingUserId,
                    LineError::NoTraits => Rule::NoTraits,
                    LineError::TrailingWhitespace => Rule::TrailingWhitespace,
                };
                self.report(n, rule, e.to_string());
                return self.end_line();
            }
        };
        let id_ok = self.check_user_id(n, parsed.user_id);
        for (element, parsed) in parsed.elements() {
            match parsed {
                Ok(p) => {
                    self.receipt.signals += 1;
                    self.kinds[p.value.kind_index()] += 1;
                    if p.spaced && self.opts.strict {
                        self.report(
                            n,
                            Rule::SpacedStyle,
                            format!(
                                "`{}` has spaces; the compact form is `{}`",
                                element,
                                p.value.to_trait()
                            ),
                        );
                    }
                    match p.value {
                        ElementValue::Id(IdTrait::Unsid(id))
                            if self.mode == Some(Mode::Overwrite) =>
                        {
                            self.report(
                                n,
                                Rule::UnsidInOverwrite,
                                format!("d_unsid={id} in an .overwrite file is ignored by AAM"),
                            )
                        }
                        ElementValue::Signal { key, .. } if key.starts_with('-') => self.report(
                            n,
                            Rule::DashKey,
                            format!("key `{key}` starts with `-`, which AAM strips"),
                        ),
                        _ => {}
                    }
                }
                Err(e) => {
                    let rule = match e {
                        TraitError::Empty => Rule::EmptyTrait,
                        TraitError::NotDigits(_) => Rule::InvalidTraitId,
                        TraitError::EmptyKey => Rule::EmptySignalKey,
                        TraitError::ControlChar => Rule::ControlChar,
                        TraitError::Quote | TraitError::BadQuoting(_) => Rule::BadQuoting,
                        TraitError::UnknownForm(_) => Rule::UnknownTraitForm,
                    };
                    self.report(n, rule, e.to_string());
                }
            }
        }
        if id_ok {
            // Counted in batches (see `PendingLine`).
            let key = self.id_hasher.hash_one(parsed.user_id);
            let start = self.pending_ids.len();
            self.pending_ids.push_str(parsed.user_id);
            self.pending.push(PendingLine {
                n,
                key,
                failed: self.line_failed,
                id: start..self.pending_ids.len(),
            });
            if self.pending.len() == PENDING_LINES {
                self.count_users();
            }
        } else {
            self.end_line();
        }
    }

    /// Applies the pending lines' user counts (the 200-lines rule), in line order.
    fn count_users(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        for p in &pending {
            let count = self.lines_per_user.entry(p.key).or_default();
            *count += 1;
            let count = *count;
            self.line_failed = p.failed;
            if count == 1 {
                self.receipt.users += 1;
            }
            if count as usize > MAX_LINES_PER_USER {
                if count as usize == MAX_LINES_PER_USER + 1 {
                    self.report(
                        p.n,
                        Rule::TooManyLines,
                        format!(
                            "user `{}` has more than {MAX_LINES_PER_USER} lines; AAM keeps the first {MAX_LINES_PER_USER} and drops this and later ones",
                            &self.pending_ids[p.id.clone()]
                        ),
                    );
                } else {
                    self.line_failed = true;
                }
            }
            self.end_line();
        }
        self.pending = pending;
        self.pending.clear();
        self.pending_ids.clear();
    }

    fn end_line(&mut self) {
        if self.line_failed {
            self.receipt.format_errors += 1;
        } else {
            self.receipt.records_stored += 1;
        }
    }

    /// Checks the ID against the file's type; returns whether it is valid.
    fn check_user_id(&mut self, n: u64, id: &str) -> bool {
        let id_type = match self.id_type {
            Some(t) => t,
            None => {
                let shape = shape_of(id);
                if !self.shapes.contains_key(shape) {
                    if let Some((other, first)) = self.shapes.iter().next().map(|(s, l)| (*s, *l)) {
                        self.report(
                            n,
                            Rule::MixedIdTypes,
                            format!("mixed ID types: {shape} here, {other} on line {first}; never mix ID types in one file"),
                        );
                    }
                    self.shapes.insert(shape, n);
                }
                if shape == "AAM UUID" {
                    IdType::AamUuid
                } else {
                    IdType::Dpuuid
                }
            }
        };
        let Err(problem) = id_type.check(id) else {
            return true;
        };
        let rule = match (&problem, id_type) {
            (IdProblem::Empty, _) => Rule::MissingUserId,
            (IdProblem::Email, _) => Rule::PiiUserId,
            (IdProblem::Format { .. } | IdProblem::Case { .. }, IdType::AamUuid) => {
                self.receipt.invalid_aam_ids += 1;
                Rule::InvalidAamUuid
            }
            (IdProblem::Format { .. } | IdProblem::Case { .. }, _) => {
                self.receipt.invalid_device_ids += 1;
                Rule::InvalidDeviceId
            }
            _ => Rule::InvalidUserId,
        };
        let message = match problem {
            IdProblem::Email => "user ID looks like an e-mail address (PII); send a SHA-256 of the normalized address instead".to_owned(),
            IdProblem::Case { expected } => format!("{} ID `{id}` must be {expected}", id_type.name()),
            IdProblem::Format { expected } => format!("`{id}` is not {expected} ({})", id_type.name()),
            other => format!("`{id}`: {other}"),
        };
        self.report(n, rule, message);
        false
    }

    fn check_sizes(&mut self, file_bytes: u64, uncompressed: u64, gzip: bool) {
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

    fn finish(mut self) -> FileReport {
        self.receipt.files = 1;
        self.receipt.traits_by_kind = crate::report::by_kind(&self.kinds);
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

fn shape_of(id: &str) -> &'static str {
    let b = id.as_bytes();
    if b.len() == 38 && b.iter().all(u8::is_ascii_digit) {
        return "AAM UUID";
    }
    if is_uuid_shape(id) {
        if b.iter().any(u8::is_ascii_lowercase) {
            "lowercase device"
        } else {
            "uppercase device"
        }
    } else {
        "DPUUID"
    }
}

fn valid_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return false;
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return false;
    }
    let (Ok(y), Ok(m), Ok(d)) = (y.parse::<u32>(), m.parse::<u32>(), d.parse::<u32>()) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> Options {
        Options {
            id_type: None,
            strict: false,
            max_per_rule: 100,
        }
    }

    fn codes(name: &str, text: &str, o: &Options) -> Vec<(u64, &'static str)> {
        validate_text(name, text, o)
            .diagnostics
            .iter()
            .map(|d| (d.line, d.code))
            .collect()
    }

    #[test]
    fn valid_dates() {
        assert!(valid_date("2024-02-29"));
        assert!(!valid_date("2023-02-29"));
        assert!(!valid_date("2024-13-01"));
        assert!(!valid_date("24-01-01"));
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
}
