//! Checks of each line: its structure, its user ID, its traits, and the 200-lines rule
//! (SPEC: File contents, Trait forms, User IDs).

use super::{Checker, Rule};
use crate::error::{Error, Result};
use crate::inbound::{
    is_aam_uuid, is_uuid_shape, parse_line, ElementValue, IdProblem, IdTrait, IdType, LineError,
    Mode, ParsedLine, TraitError, MAX_LINES_PER_USER, MAX_LINE_BYTES,
};
use crate::taxonomy::Refusal;
use std::hash::BuildHasher;
use std::io::BufRead;

/// A line whose user count is still to be applied. The count table holds every user of the
/// file, so each lookup is a cache miss; looked up a few thousand at a time in a tight loop,
/// the misses overlap instead of stalling the parse of every line.
pub(super) struct PendingLine {
    n: u64,
    key: u64,
    /// Whether the line had failed already.
    failed: bool,
    /// The user ID, in `Checker::pending_ids`.
    id: std::ops::Range<usize>,
}

pub(super) const PENDING_LINES: usize = 4096;

impl Checker<'_> {
    /// Streams the lines; returns the uncompressed size.
    pub(super) fn check_lines(&mut self, mut reader: impl BufRead) -> Result<u64> {
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
        let Some(line) = self.line_text(n, raw) else {
            return;
        };
        if self.id_sync.is_some() {
            return self.check_sync_line(n, line);
        }
        let parsed = match parse_line(line) {
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
        self.check_traits(n, &parsed);
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

    /// What every line gets, inbound or ID sync: its break, its length, blank lines (not
    /// records), UTF-8. Returns the line without its break when there is more to check; a
    /// record that fails here is counted.
    fn line_text<'l>(&mut self, n: u64, raw: &'l [u8]) -> Option<&'l str> {
        self.line_failed = false;
        let mut line = raw.strip_suffix(b"\n").unwrap_or(raw);
        if let Some(l) = line.strip_suffix(b"\r") {
            self.report(n, Rule::Crlf, "CRLF line ending; use \\n".into());
            line = l;
        }
        // A blank line is not a record: nothing is lost.
        if line.is_empty() {
            self.report(n, Rule::EmptyLine, "empty line; not a record".into());
            return None;
        }
        self.receipt.records_received += 1;
        // Adobe's limit is 102,400 bytes and does not say whether the break counts: measured
        // without it, exactly the limit is ambiguous (the writer stays one byte under).
        let bytes = line.len();
        if bytes > MAX_LINE_BYTES {
            self.report(
                n,
                Rule::LineTooLong,
                format!(
                    "line is {bytes} bytes without its line break, over the {MAX_LINE_BYTES}-byte limit; AAM drops it"
                ),
            );
        } else if bytes == MAX_LINE_BYTES {
            self.report(
                n,
                Rule::LineAtLimit,
                format!(
                    "line is exactly {MAX_LINE_BYTES} bytes without its line break; AAM may count the break and drop it"
                ),
            );
        }
        let Ok(text) = std::str::from_utf8(line) else {
            self.report(n, Rule::NotUtf8, "the line is not valid UTF-8".into());
            self.end_line();
            return None;
        };
        Some(text)
    }

    /// Checks each trait element of a line.
    fn check_traits(&mut self, n: u64, line: &ParsedLine) {
        let (mut empty, mut others) = (0u32, 0u32);
        for (element, parsed) in line.elements() {
            if parsed == Err(TraitError::Empty) {
                empty += 1;
                continue;
            }
            others += 1;
            let p = match parsed {
                Ok(p) => p,
                Err(e) => {
                    let rule = match e {
                        TraitError::Empty => Rule::EmptyTrait,
                        TraitError::NotDigits(_) => Rule::InvalidTraitId,
                        TraitError::EmptyKey => Rule::EmptySignalKey,
                        TraitError::ControlChar => Rule::ControlChar,
                        TraitError::Quote | TraitError::BadQuoting(_) => Rule::BadQuoting,
                        // What the parser leaves to the writer.
                        TraitError::UnknownForm(_)
                        | TraitError::Comma
                        | TraitError::ReservedKey(_)
                        | TraitError::KeyChars(_) => Rule::UnknownTraitForm,
                    };
                    self.report(n, rule, e.to_string());
                    continue;
                }
            };
            self.receipt.signals += 1;
            self.kinds.add(p.value.kind(), 1);
            if p.quoted_prefix {
                self.report(
                    n,
                    Rule::QuotedPrefix,
                    format!(
                        "`{}` quotes a trait prefix or ID; Adobe shows `{}`, and whether AAM accepts quotes here is not documented",
                        element.trim(),
                        p.value.to_trait()
                    ),
                );
            }
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
            self.check_listed(n, &p.value);
            match p.value {
                ElementValue::Id(IdTrait::Unsid(id)) if self.mode == Some(Mode::Overwrite) => self
                    .report(
                        n,
                        Rule::UnsidInOverwrite,
                        format!("d_unsid={id} in an .overwrite file is ignored by AAM"),
                    ),
                ElementValue::Signal { key, .. } if key.starts_with('-') => self.report(
                    n,
                    Rule::DashKey,
                    format!("key `{key}` starts with `-`, which AAM strips"),
                ),
                _ => {}
            }
        }
        // An empty element carries nothing (Adobe's own sample has one); a line of nothing
        // but empty elements has no traits.
        if others == 0 {
            self.report(
                n,
                Rule::NoTraits,
                "line has only empty trait elements, no traits".into(),
            );
        } else if empty > 0 {
            self.report(
                n,
                Rule::EmptyTrait,
                format!("{empty} empty trait element(s), as in `a,,b`; AAM skips them"),
            );
        }
    }

    /// With a trait list: a trait ID must be an onboarded trait of the file's data source,
    /// and some rule-based trait of it should read a signal.
    fn check_listed(&mut self, n: u64, value: &ElementValue) {
        // Options outlive the checker: no borrow of `self` while reporting.
        let opts = self.opts;
        let (Some(list), Some(ds)) = (opts.traits.as_deref(), self.data_source) else {
            return;
        };
        // A signal's text is only built for a report.
        let target = match value {
            ElementValue::Id(_) => value.to_trait().target(),
            ElementValue::Signal { .. } => None,
        };
        if let Some((id, _)) = target {
            if let Err(refusal) = list.check_id(id, ds) {
                let rule = match refusal {
                    Refusal::Unknown => Rule::UnknownTrait,
                    Refusal::NotOnboarded(_) => Rule::TraitNotOnboarded,
                    Refusal::OtherDataSource(_) => Rule::TraitOtherDataSource,
                };
                self.receipt.traits_not_realized += 1;
                self.report(n, rule, refusal.describe(id, ds, list.path()));
            }
            return;
        }
        if let Some(key) = list.unrealized_key(ds, value) {
            self.receipt.unused_signals += 1;
            let text = value.to_trait().render();
            let what = match value {
                ElementValue::Id(IdTrait::Ic(ic) | IdTrait::IcPrefixed(ic)) => {
                    format!("no rule-based trait of data source {ds} reads ic == \"{ic}\"")
                }
                _ => format!("no rule-based trait of data source {ds} reads the key `{key}`"),
            };
            self.report(
                n,
                Rule::UnrealizedSignal,
                format!(
                    "`{text}`: {what} in {}; AAM counts it as unused",
                    list.path().display()
                ),
            );
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

    pub(super) fn end_line(&mut self) {
        if self.line_failed {
            self.receipt.format_errors += 1;
        } else {
            self.receipt.records_stored += 1;
        }
    }

    /// Checks the ID against the file's type; returns whether it is valid.
    fn check_user_id(&mut self, n: u64, id: &str) -> bool {
        if id.starts_with(char::is_whitespace) || id.ends_with(char::is_whitespace) {
            self.report(
                n,
                Rule::IdWhitespace,
                format!("user ID `{id}` starts or ends with whitespace; IDs match byte for byte, so this is not the ID that was synced"),
            );
        }
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
                // The name's DPID decides: the company's own data source, whose IDs may
                // take any shape (38 digits too).
                IdType::Dpuuid
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
}

fn shape_of(id: &str) -> &'static str {
    if is_aam_uuid(id) {
        return "AAM UUID";
    }
    if is_uuid_shape(id) {
        if id.bytes().any(|b| b.is_ascii_lowercase()) {
            "lowercase device"
        } else {
            "uppercase device"
        }
    } else {
        "DPUUID"
    }
}
