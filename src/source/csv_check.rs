//! The CSV record check: every record's field count and UTF-8, read ahead of Polars' parse
//! (on a thread of its own for files on disk), which also finds where batches may start.

use super::{utf8_hint, Source};
use crate::error::Error;
use crate::error::Result;
use crate::mapping::InputOptions;
use std::io::Read;

/// Reads every record (field counts, UTF-8) and sends where pieces of about `piece_bytes`
/// start (always at a record start, never inside a quoted field): first the end of the header,
/// then each cut, then the end of the data; or the first error. Batches are made of pieces,
/// which are parsed in parallel.
pub(super) fn check_csv(
    source: &Source,
    reader: impl Read,
    text: Option<&[u8]>,
    opts: &InputOptions,
    piece_bytes: u64,
    tx: &std::sync::mpsc::Sender<Result<u64>>,
) {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(source.separator(opts))
        .quote(opts.quote.unwrap_or(b'"'))
        .buffer_capacity(1 << 20)
        .from_reader(reader);
    let mut record = csv::StringRecord::new();
    let mut last: Option<u64> = None;
    let mut index = 0u64;
    loop {
        match csv.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let _ = tx.send(Err(source.csv_error(e, text, opts)));
                return;
            }
        }
        let start = record.position().map_or(0, |p| p.byte());
        index += 1;
        if index == 1 && opts.has_header {
            // Polars would rename a second `segment_id` to `segment_id_duplicated_0`, and
            // a rule on it would silently read only the first.
            if let Some(e) = duplicate_column(&record) {
                let _ = tx.send(Err(Error::source(&source.path, e)));
                return;
            }
            continue;
        }
        let cut = match last {
            None => true,
            Some(l) => start >= l + piece_bytes.max(1),
        };
        if cut {
            // A failed send: the reading side stopped; so does the check.
            if tx.send(Ok(start)).is_err() {
                return;
            }
            last = Some(start);
        }
    }
    let end = csv.position().byte();
    if last.is_none() {
        // No data rows: the header, then an empty batch.
        let _ = tx.send(Ok(end));
    }
    let _ = tx.send(Ok(end));
}

/// A column name the header holds twice, with both positions (1-based).
fn duplicate_column(header: &csv::StringRecord) -> Option<String> {
    let names: Vec<&str> = header.iter().collect();
    names.iter().enumerate().find_map(|(i, name)| {
        let j = names[..i].iter().position(|n| n == name)?;
        Some(format!(
            "line 1: the header names column `{name}` twice (columns {} and {}); rename one of them",
            j + 1,
            i + 1
        ))
    })
}

impl Source {
    /// A bad CSV record (not UTF-8, or a field count unlike the first row's), with its line.
    fn csv_error(&self, e: csv::Error, text: Option<&[u8]>, opts: &InputOptions) -> Error {
        let line = e.position().map_or(0, |p| {
            self.record_line(text, p.byte()).unwrap_or_else(|| p.line())
        });
        let message = match e.kind() {
            csv::ErrorKind::Utf8 { .. } => format!("line {line}: {}", utf8_hint(opts)),
            csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            } => format!(
                "line {line}: {len} fields where the {} has {expected_len}; check the delimiter and quoting",
                if opts.has_header { "header" } else { "first row" }
            ),
            csv::ErrorKind::Io(io) => return Error::io(&self.path, std::io::Error::new(io.kind(), io.to_string())),
            _ => format!("line {line}: {e}"),
        };
        Error::source(&self.path, message)
    }

    /// The line on which the record at byte `start` begins: one more than the line breaks
    /// before it. (csv's own count is one short after a CRLF: it places the next record at
    /// the `\n` of the break, which is why the byte at `start` counts too.) Read again from
    /// the text in memory or the file: this is the error path only.
    fn record_line(&self, text: Option<&[u8]>, start: u64) -> Option<u64> {
        let count = |bytes: &[u8]| bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        let upto = usize::try_from(start).ok()?.checked_add(1)?;
        let breaks = match text {
            Some(t) => count(&t[..upto.min(t.len())]),
            None => {
                let file = std::fs::File::open(&self.path).ok()?;
                let mut head = Vec::new();
                file.take(upto as u64).read_to_end(&mut head).ok()?;
                count(&head)
            }
        };
        Some(1 + breaks)
    }
}
