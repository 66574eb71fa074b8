//! The CSV record check: every record's field count and UTF-8, read ahead of Polars' parse
//! (on a thread of its own for files on disk), which also finds the pieces Polars parses.
//!
//! Records are found with the csv crate's rules (csv_core): a quote opens a quoted field
//! only at the start of a field, `""` inside one is a quote, and `\r`, `\n` or `\r\n` ends
//! a record. Lines with nothing on them are not records. The scan jumps from separator to
//! line break with `memchr` instead of stepping through a state machine byte by byte: the
//! check reads the whole file on one thread, ahead of everything else.

use super::{utf8_hint, Source};
use crate::error::Error;
use crate::error::Result;
use crate::mapping::InputOptions;
use std::io::Read;
use std::ops::{ControlFlow, Range};

/// Bytes read at a time.
const BUFFER: usize = 1 << 20;

/// Reads every record (field counts, UTF-8) and sends the pieces of whole records Polars
/// parses, in order: each about `piece_bytes` long, from the start of its first record to
/// the end of its last (without the line break). Blank lines fall between pieces, so that
/// Polars, which reads a blank line as a row of nulls, never sees one. A file without data
/// rows has no pieces. The first error ends the check.
pub(super) fn check_csv(
    source: &Source,
    mut reader: impl Read,
    opts: &InputOptions,
    piece_bytes: u64,
    tx: &std::sync::mpsc::Sender<Result<Range<u64>>>,
) {
    let fail = |e: Error| drop(tx.send(Err(e)));
    // The separator and quote Polars parses the pieces with.
    let parse = source.csv_options(opts);
    let mut scan = Scanner::new(parse.separator, parse.quote_char.unwrap_or(b'"'));
    let mut pieces = Pieces {
        piece_bytes,
        open: None,
        tx,
    };
    // Until the header has ended: the bytes read, for its column names.
    let mut head = opts.has_header.then(Vec::new);
    let mut utf8 = Utf8::default();
    let mut buf = vec![0u8; BUFFER];
    let mut base = 0u64;
    loop {
        let n = match crate::fill::fill(&mut reader, &mut buf) {
            (n, None) => n,
            (_, Some(e)) => return fail(Error::io(&source.path, e)),
        };
        // Invalid UTF-8: the records before it are checked first (a wrong field count
        // above it is the first error), then the record it is in is named.
        let bad_utf8 = utf8.check(&buf[..n], base, n == 0);
        let upto = bad_utf8.map_or(n, |at| (at.saturating_sub(base) as usize).min(n));
        if let Some(h) = &mut head {
            h.extend_from_slice(&buf[..upto]);
        }
        let mut header = Ok(());
        let flow = scan.scan(
            &buf[..upto],
            base,
            n == 0,
            &mut |record, gap| match head.take() {
                Some(h) => {
                    header = check_header(&h[record.start as usize..record.end as usize]);
                    if header.is_ok() {
                        ControlFlow::Continue(())
                    } else {
                        ControlFlow::Break(())
                    }
                }
                None => pieces.add(record, gap),
            },
        );
        match (flow, header) {
            (Err(bad), _) => return fail(source.csv_error(bad, opts)),
            (_, Err(e)) => return fail(Error::source(&source.path, e)),
            (Ok(flow), _) if flow.is_break() => return,
            _ => {}
        }
        if bad_utf8.is_some() {
            return fail(source.csv_error(Bad::Utf8 { line: scan.line() }, opts));
        }
        if n == 0 {
            break;
        }
        base += n as u64;
    }
    pieces.finish();
}

/// The pieces found so far: the one being extended, sent when the next one starts.
struct Pieces<'t> {
    piece_bytes: u64,
    open: Option<Range<u64>>,
    tx: &'t std::sync::mpsc::Sender<Result<Range<u64>>>,
}

impl Pieces<'_> {
    /// Adds a data record (its bytes, without the line break); `gap`: blank lines come
    /// before it. Breaks when the reading side has stopped, and so should the check.
    fn add(&mut self, record: Range<u64>, gap: bool) -> ControlFlow<()> {
        match &mut self.open {
            Some(p) if !gap && record.start < p.start + self.piece_bytes => p.end = record.end,
            open => {
                if let Some(done) = open.replace(record) {
                    if self.tx.send(Ok(done)).is_err() {
                        return ControlFlow::Break(());
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// Sends the last piece, if there is one.
    fn finish(&mut self) {
        if let Some(last) = self.open.take() {
            let _ = self.tx.send(Ok(last));
        }
    }
}

/// A column name the header holds twice, with both positions (1-based): Polars would
/// rename a second `segment_id` to `segment_id_duplicated_0`, and a rule on it would
/// silently read only the first.
fn check_header(bytes: &[u8]) -> std::result::Result<(), String> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes);
    let mut header = csv::ByteRecord::new();
    if !csv.read_byte_record(&mut header).unwrap_or(false) {
        return Ok(());
    }
    let names: Vec<&[u8]> = header.iter().collect();
    let twice = names.iter().enumerate().find_map(|(i, name)| {
        let j = names[..i].iter().position(|n| n == name)?;
        Some((String::from_utf8_lossy(name).into_owned(), j + 1, i + 1))
    });
    match twice {
        Some((name, j, i)) => Err(format!(
            "line 1: the header names column `{name}` twice (columns {j} and {i}); rename one of them"
        )),
        None => Ok(()),
    }
}

/// A record the check refuses, with the line it starts on.
#[derive(Debug, PartialEq)]
enum Bad {
    Utf8 {
        line: u64,
    },
    LoneCr {
        line: u64,
    },
    Fields {
        line: u64,
        expected: u64,
        found: u64,
    },
}

impl Source {
    fn csv_error(&self, bad: Bad, opts: &InputOptions) -> Error {
        let message = match bad {
            Bad::Utf8 { line } => format!("line {line}: {}", utf8_hint(opts)),
            Bad::LoneCr { line } => format!(
                "line {line}: the line ends in a carriage return alone (\\r, as in old Mac files), which is not read as a line end; convert the file's line ends to \\n or \\r\\n"
            ),
            Bad::Fields {
                line,
                expected,
                found,
            } => format!(
                "line {line}: {found} fields where the {} has {expected}; check the delimiter and quoting",
                if opts.has_header { "header" } else { "first row" }
            ),
        };
        Error::source(&self.path, message)
    }
}

/// UTF-8 checked buffer by buffer; a character cut by a buffer's end is checked whole with
/// the next.
#[derive(Default)]
struct Utf8 {
    /// The start of a character the last buffer ended in, and its bytes.
    carry: Vec<u8>,
    carry_at: u64,
}

impl Utf8 {
    /// Where the first invalid byte of `data` (at offset `base`) is, if any; `eof`: no more
    /// data comes.
    fn check(&mut self, data: &[u8], base: u64, eof: bool) -> Option<u64> {
        let mut skip = 0;
        if !self.carry.is_empty() {
            let width = match self.carry[0] {
                0xF0.. => 4,
                0xE0.. => 3,
                _ => 2,
            };
            skip = (width - self.carry.len()).min(data.len());
            self.carry.extend_from_slice(&data[..skip]);
            match std::str::from_utf8(&self.carry) {
                Ok(_) => self.carry.clear(),
                Err(e) if e.error_len().is_none() && !eof => return None,
                Err(_) => return Some(self.carry_at),
            }
        }
        // The usual valid buffer takes simdutf8's vectorised check; std's finds where the
        // first invalid byte is.
        if simdutf8::basic::from_utf8(&data[skip..]).is_ok() {
            return None;
        }
        match std::str::from_utf8(&data[skip..]) {
            Ok(_) => None,
            Err(e) => {
                let at = skip + e.valid_up_to();
                if e.error_len().is_none() && !eof {
                    self.carry = data[at..].to_vec();
                    self.carry_at = base + at as u64;
                    None
                } else {
                    Some(base + at as u64)
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    /// Between records: line breaks are skipped.
    StartRecord,
    /// After a separator: a quote here opens a quoted field.
    StartField,
    InField,
    InQuoted,
    /// After a quote that may close the quoted field (or be the first of `""`).
    AfterQuote,
}

/// How many times `byte` is in `data`: in runs of 255, each summed in bytes, which the
/// compiler turns into 16 or 32 comparisons at a time.
fn count(data: &[u8], byte: u8) -> u64 {
    data.chunks(255)
        .map(|run| {
            let n = run
                .iter()
                .fold(0u8, |n, &b| n.wrapping_add(u8::from(b == byte)));
            u64::from(n)
        })
        .sum()
}

/// A line `Scanner::whole_line` read: the record it ended, and where the next begins.
struct Line {
    record: Option<Range<u64>>,
    after: usize,
}

/// Finds records and counts their fields, across buffers.
struct Scanner {
    sep: u8,
    quote: u8,
    state: State,
    /// The record being read: where it starts, the line it starts on, its fields so far.
    start: u64,
    line: u64,
    fields: u64,
    /// The first record's field count: every record must have it.
    expected: Option<u64>,
    /// Line breaks before the current position.
    breaks: u64,
    /// The line break that ended the last record, and how many were skipped since.
    ended_by: u8,
    skipped: u64,
    /// Blank lines were skipped since the last record; and before the current one.
    blank: bool,
    gap: bool,
    /// A `\r` outside quotes whose `\n` has not come yet: where, and on which line.
    cr: Option<(u64, u64)>,
}

impl Scanner {
    fn new(sep: u8, quote: u8) -> Scanner {
        Scanner {
            sep,
            quote,
            state: State::StartRecord,
            start: 0,
            line: 0,
            fields: 0,
            expected: None,
            breaks: 0,
            ended_by: b'\n',
            skipped: 0,
            blank: false,
            gap: false,
            cr: None,
        }
    }

    /// The line of the record being read, or of the one the next byte begins.
    fn line(&self) -> u64 {
        match self.state {
            State::StartRecord => self.breaks + 1,
            _ => self.line,
        }
    }

    /// Scans `data`, at offset `base` (nothing, with `eof`, at the end of the file),
    /// handing each record that ends to `on_record` with whether blank lines came before it.
    fn scan(
        &mut self,
        data: &[u8],
        base: u64,
        eof: bool,
        on_record: &mut impl FnMut(Range<u64>, bool) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, Bad> {
        let mut i = 0;
        while i < data.len() {
            if self.state == State::InQuoted {
                let end = memchr::memchr(self.quote, &data[i..]).map_or(data.len(), |k| i + k);
                self.breaks += memchr::memchr_iter(b'\n', &data[i..end]).count() as u64;
                // Files that quote every field: `","` goes straight to the next one.
                if data.get(end + 1) == Some(&self.sep) && data.get(end + 2) == Some(&self.quote) {
                    self.fields += 1;
                    i = end + 3;
                    continue;
                }
                if end < data.len() {
                    self.state = State::AfterQuote;
                }
                i = end + 1;
                continue;
            }
            // Outside quotes: every separator and line break up to the next quote.
            let end = memchr::memchr(self.quote, &data[i..]).map_or(data.len(), |k| i + k);
            let mut pos = i;
            'lines: loop {
                while let Some(next) = self.whole_line(&data[..end], pos, base)? {
                    if let Some(record) = next.record {
                        if on_record(record, self.gap).is_break() {
                            return Ok(ControlFlow::Break(()));
                        }
                    }
                    pos = next.after;
                }
                let from = pos;
                for k in memchr::memchr3_iter(self.sep, b'\n', b'\r', &data[from..end]) {
                    let j = from + k;
                    if j > pos {
                        self.content(base + pos as u64)?;
                    }
                    if let Some(record) = self.hit(data[j], base + j as u64)? {
                        if on_record(record, self.gap).is_break() {
                            return Ok(ControlFlow::Break(()));
                        }
                    }
                    pos = j + 1;
                    // Between records again (after a quoted one, say): whole lines may follow.
                    if self.between_records() {
                        continue 'lines;
                    }
                }
                break;
            }
            if end > pos {
                self.content(base + pos as u64)?;
            }
            if end < data.len() {
                self.quote_at(base + end as u64)?;
            }
            i = end + 1;
        }
        if eof && self.state != State::StartRecord {
            let record = self.end_record(base)?;
            return Ok(on_record(record, self.gap));
        }
        Ok(ControlFlow::Continue(()))
    }

    /// A whole record on one line from `pos` (a record's start) to a line break in `data`,
    /// with no quote, no `\r` but one before the `\n`, and something on it: its fields are
    /// its separators plus one, counted in one pass instead of a stop at each separator. It
    /// goes through the same steps as byte by byte; anything else is left to the caller.
    fn whole_line(&mut self, data: &[u8], pos: usize, base: u64) -> Result<Option<Line>, Bad> {
        if !self.between_records() {
            return Ok(None);
        }
        let Some(nl) = memchr::memchr(b'\n', &data[pos..]).map(|k| pos + k) else {
            return Ok(None);
        };
        let line = &data[pos..nl];
        let crlf = line.last() == Some(&b'\r');
        let content = &line[..line.len() - usize::from(crlf)];
        if content.is_empty() || memchr::memchr(b'\r', content).is_some() {
            return Ok(None);
        }
        self.begin(base + pos as u64);
        self.fields += count(content, self.sep);
        self.state = State::InField;
        let record = if crlf {
            let record = self.hit(b'\r', base + nl as u64 - 1)?;
            self.hit(b'\n', base + nl as u64)?;
            record
        } else {
            self.hit(b'\n', base + nl as u64)?
        };
        Ok(Some(Line {
            record,
            after: nl + 1,
        }))
    }

    /// At a record's start with no `\r` waiting for its `\n`: where whole lines are tried.
    fn between_records(&self) -> bool {
        self.state == State::StartRecord && self.cr.is_none()
    }

    fn begin(&mut self, at: u64) {
        self.gap = std::mem::take(&mut self.blank);
        self.start = at;
        self.line = self.breaks + 1;
        self.fields = 1;
    }

    /// Bytes that are neither separators, line breaks nor quotes, from `at`.
    fn content(&mut self, at: u64) -> Result<(), Bad> {
        self.no_lone_cr(at, 0)?;
        if self.state == State::StartRecord {
            self.begin(at);
        }
        self.state = State::InField;
        Ok(())
    }

    /// csv_core ends a record at a `\r` alone (old Mac line ends), Polars does not: such a
    /// file would be parsed as one long line, so it is refused. `b` is the byte at `at`.
    fn no_lone_cr(&mut self, at: u64, b: u8) -> Result<(), Bad> {
        match self.cr.take() {
            Some((cr, line)) if !(b == b'\n' && at == cr + 1) => Err(Bad::LoneCr { line }),
            _ => Ok(()),
        }
    }

    fn quote_at(&mut self, at: u64) -> Result<(), Bad> {
        self.no_lone_cr(at, self.quote)?;
        self.state = match self.state {
            State::StartRecord => {
                self.begin(at);
                State::InQuoted
            }
            State::StartField | State::AfterQuote => State::InQuoted,
            State::InField => State::InField,
            State::InQuoted => State::AfterQuote,
        };
        Ok(())
    }

    /// A separator or line break, outside quotes, at `at`; the record it ends.
    fn hit(&mut self, b: u8, at: u64) -> Result<Option<Range<u64>>, Bad> {
        self.no_lone_cr(at, b)?;
        match b {
            b'\n' => self.breaks += 1,
            b'\r' => self.cr = Some((at, self.breaks + 1)),
            _ => {}
        }
        if self.state == State::StartRecord {
            if b != self.sep {
                // A CRLF's `\n` is part of the break; anything more is a blank line.
                if !(self.skipped == 0 && self.ended_by == b'\r' && b == b'\n') {
                    self.blank = true;
                }
                self.skipped += 1;
                return Ok(None);
            }
            self.begin(at);
        }
        if b == self.sep {
            self.fields += 1;
            self.state = State::StartField;
            return Ok(None);
        }
        self.ended_by = b;
        self.end_record(at).map(Some)
    }

    /// The record being read ends at `at` (its line break, or the end of the file).
    fn end_record(&mut self, at: u64) -> Result<Range<u64>, Bad> {
        let expected = *self.expected.get_or_insert(self.fields);
        if self.fields != expected {
            return Err(Bad::Fields {
                line: self.line,
                expected,
                found: self.fields,
            });
        }
        self.state = State::StartRecord;
        self.skipped = 0;
        Ok(self.start..at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The records the scanner finds in `text` fed `chunk` bytes at a time: each one's
    /// bytes, and whether blank lines came before it.
    fn scan(text: &[u8], chunk: usize) -> Result<Vec<(Vec<u8>, bool)>, Bad> {
        let mut scanner = Scanner::new(b',', b'"');
        let mut found = Vec::new();
        let mut base = 0;
        for piece in text.chunks(chunk).chain([&[][..]]) {
            let eof = piece.is_empty();
            let flow = scanner.scan(piece, base, eof, &mut |r: Range<u64>, gap| {
                found.push((text[r.start as usize..r.end as usize].to_vec(), gap));
                ControlFlow::Continue(())
            })?;
            assert!(flow.is_continue());
            base += piece.len() as u64;
        }
        Ok(found)
    }

    fn csv_records(text: &[u8]) -> Vec<csv::ByteRecord> {
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text);
        csv.byte_records().map(|r| r.unwrap()).collect()
    }

    /// Whatever the buffer sizes, the scanner finds the records the csv crate reads, each
    /// whole: quoted separators and line breaks, `""`, a quote inside a field (literal),
    /// text after a closing quote, empty fields, CRLF, blank lines, no last line break, a
    /// quote left open at the end.
    #[test]
    fn finds_the_records_csv_reads() {
        let texts: [&[u8]; 11] = [
            b"a,b\nc,d\n",
            b"a,b\r\nc,d\r\n",
            b"a,b\r\n\r\nc,d",
            b"\n\na,b\n\n\nc,d\n\n",
            b"\"x,y\",z\n\"two\nlines\",\"q\"\"q\"\nab\"c,d\n",
            b"\"a\"b,c\n\"\",\"\"\n",
            b",\n,\n,\",\"\n",
            b"a,\"b\nc",
            b"\xc3\xa9t\xc3\xa9,\xe2\x82\xac\n\"\xc3\xa9\",x\n",
            b"\r\n\r\n",
            b"",
        ];
        for text in texts {
            let expected = csv_records(text);
            for chunk in [1, 2, 3, 5, 7, 1 << 20] {
                let what = format!("{:?} in chunks of {chunk}", String::from_utf8_lossy(text));
                let found = scan(text, chunk).expect(&what);
                assert_eq!(found.len(), expected.len(), "{what}");
                for ((bytes, _), record) in found.iter().zip(&expected) {
                    // Each record's bytes, read on their own, are that record.
                    assert_eq!(csv_records(bytes), std::slice::from_ref(record), "{what}");
                }
            }
        }
    }

    /// Random text of separators, quotes, line breaks and letters, where whole lines take
    /// the one-pass count: the records, gaps and errors are those found one byte at a time
    /// (in chunks of one byte, no line is ever whole), whatever the chunk size.
    #[test]
    fn whole_lines_read_as_byte_by_byte() {
        let mut g = crate::testing::Gen(0x9e37_79b9_7f4a_7c15);
        // Mostly lines of three plain fields, so that whole ones are common; quotes, `\r`,
        // other field counts and blank lines now and then.
        let line = |g: &mut crate::testing::Gen| -> Vec<u8> {
            let fields = match g.below(20) {
                0 => 0,
                1 => 2,
                2 => 4,
                _ => 3,
            };
            let mut l = Vec::new();
            for f in 0..fields {
                if f > 0 {
                    l.push(b',');
                }
                let alphabet: &[u8] = if g.below(12) == 0 { b"a\"\r" } else { b"ab" };
                l.extend(
                    (0..g.below(4)).map(|_| alphabet[g.below(alphabet.len() as u64) as usize]),
                );
            }
            l.extend_from_slice(if g.below(3) == 0 { b"\r\n" } else { b"\n" });
            l
        };
        let (mut whole, mut failed) = (0, 0);
        for _ in 0..3000 {
            let text: Vec<u8> = (0..1 + g.below(12)).flat_map(|_| line(&mut g)).collect();
            let want = scan(&text, 1);
            failed += usize::from(want.is_err());
            for chunk in [4, 16, 1 << 20] {
                assert_eq!(
                    scan(&text, chunk),
                    want,
                    "{:?}",
                    String::from_utf8_lossy(&text)
                );
            }
            // The fast path did read some of them (a whole line's record as the test sees it).
            whole += usize::from(want.is_ok_and(|r| r.iter().any(|(b, _)| !b.contains(&b'"'))));
        }
        assert!(
            whole > 800 && failed > 300,
            "{whole} read, {failed} refused"
        );
    }

    /// A record follows blank lines when more than one line break (CRLF counts as one)
    /// comes before it.
    #[test]
    fn tells_which_records_follow_blank_lines() {
        let text = b"a,1\r\nb,2\r\n\r\nc,3\nd,4\n\ne,5\n\r\nf,6\r\n\"g\r\n\n\",7\nh,8";
        let gaps = |chunk| -> Vec<(String, bool)> {
            scan(text, chunk)
                .unwrap()
                .into_iter()
                .map(|(b, gap)| (String::from_utf8(b).unwrap(), gap))
                .collect()
        };
        let want = [
            ("a,1", false),
            ("b,2", false),
            ("c,3", true),
            ("d,4", false),
            ("e,5", true),
            ("f,6", true),
            ("\"g\r\n\n\",7", false),
            ("h,8", false),
        ];
        let want: Vec<(String, bool)> = want.iter().map(|(s, g)| (s.to_string(), *g)).collect();
        for chunk in [3, 1 << 20] {
            assert_eq!(gaps(chunk), want, "in chunks of {chunk}");
        }
    }

    /// A record with another field count is refused with the line it starts on, counting
    /// line breaks inside quoted fields and blank lines.
    #[test]
    fn names_the_line_of_a_record_with_other_fields() {
        for chunk in [1, 4, 1 << 20] {
            let bad = |text: &[u8]| scan(text, chunk).unwrap_err();
            assert_eq!(
                bad(b"a,b\nc,d\n\ne\n"),
                Bad::Fields {
                    line: 4,
                    expected: 2,
                    found: 1
                }
            );
            assert_eq!(
                bad(b"a,b\r\n\"x\ny\",1\r\n1,2,3\r\n"),
                Bad::Fields {
                    line: 4,
                    expected: 2,
                    found: 3
                }
            );
            // The last line, without a line break.
            assert_eq!(
                bad(b"a,b\nc"),
                Bad::Fields {
                    line: 2,
                    expected: 2,
                    found: 1
                }
            );
        }
    }

    /// A `\r` that ends a line alone (outside quotes) is refused with its line; inside
    /// quotes, or before `\n`, it is not.
    #[test]
    fn refuses_line_ends_of_a_carriage_return_alone() {
        for chunk in [1, 2, 1 << 20] {
            for text in [
                &b"a,b\nc,d\re,f\n"[..],
                b"a,b\nc,d\r\"e\",f",
                b"a,b\nc,d\r,f",
            ] {
                assert_eq!(scan(text, chunk), Err(Bad::LoneCr { line: 2 }), "{text:?}");
            }
            assert!(scan(b"a,b\r\n\"c\rd\",e\r\n", chunk).is_ok());
        }
    }

    /// Characters cut by a buffer's end are checked whole; an invalid byte is found where
    /// it is, and a character cut by the end of the file is invalid.
    #[test]
    fn checks_utf8_across_buffers() {
        let check = |text: &[u8], chunk: usize| {
            let mut utf8 = Utf8::default();
            let mut base = 0;
            for piece in text.chunks(chunk).chain([&[][..]]) {
                if let Some(at) = utf8.check(piece, base, piece.is_empty()) {
                    return Some(at);
                }
                base += piece.len() as u64;
            }
            None
        };
        let good = "é,€,𝄞,x\n".as_bytes();
        let cases: [(&[u8], Option<u64>); 5] = [
            (good, None),
            (b"ab\xc3(", Some(2)),
            (b"ab\xe2\x82", Some(2)),
            (b"\xff", Some(0)),
            (b"a\xf0\x9d\x84\x9e\xc3", Some(5)),
        ];
        for (text, want) in cases {
            for chunk in 1..=text.len() {
                assert_eq!(check(text, chunk), want, "{text:?} in chunks of {chunk}");
            }
        }
    }

    /// The pieces sent: the header left out, blank lines between pieces, a piece at most
    /// one record past `piece_bytes`; a file of only a header has none.
    #[test]
    fn sends_pieces_of_whole_records() {
        let source = Source::detect("in.csv".into(), None).unwrap();
        let opts = crate::testing::input_options();
        let pieces = |text: &str, piece_bytes: u64| {
            let (tx, rx) = std::sync::mpsc::channel();
            check_csv(&source, text.as_bytes(), &opts, piece_bytes, &tx);
            drop(tx);
            rx.iter()
                .map(|p| {
                    let p = p.unwrap();
                    text[p.start as usize..p.end as usize].to_string()
                })
                .collect::<Vec<_>>()
        };
        let text = "id,n\r\n\r\na,1\r\nb,2\r\nc,3\r\n\r\nd,4\ne,5\n\n";
        assert_eq!(pieces(text, 100), ["a,1\r\nb,2\r\nc,3", "d,4\ne,5"]);
        assert_eq!(pieces(text, 6), ["a,1\r\nb,2", "c,3", "d,4\ne,5"]);
        assert!(pieces("id,n\n", 100).is_empty());
        assert!(pieces("id,n", 100).is_empty());
        assert!(pieces("id,n\n\r\n\n", 100).is_empty());
    }
}
