//! NDJSON pieces parsed straight into the columns a query uses.
//!
//! Polars' reader turns every line into a tree of values (a map per object, an owned key per
//! field) and then looks each column up in it: about 45% of an NDJSON run's CPU. Here the
//! plainest lines (`scan`: no escape, no nesting, whole numbers) are read in one pass over
//! their bytes, and any other line's simd-json tape is walked once. Only plain cases take
//! these paths: columns typed text, whole numbers, decimals or booleans, each given a value
//! of its own JSON type (or null), and lists of text or of whole numbers given arrays of
//! such values (or null). Any other line, a nested value, a key twice, or a line that is not
//! valid JSON sends the whole piece to Polars' own parser (`parse_ndjson`, which Polars'
//! NDJSON scan runs on each chunk), so what Polars accepts, converts or refuses, and how it
//! says so, is unchanged.

use super::columns::{whole, Builder};
use super::text_batch::{PieceParser, Projection};
use polars::io::ndjson::core::parse_ndjson;
use polars::prelude::*;
use simd_json::{Node, StaticNode};

/// How every batch of one NDJSON source is parsed: with the schema of the scan of the whole
/// file.
pub(super) struct NdjsonParser {
    pub(super) schema: SchemaRef,
}

impl PieceParser for NdjsonParser {
    fn output(&self) -> &SchemaRef {
        &self.schema
    }

    fn parse(&self, piece: &[u8], projection: &Projection) -> PolarsResult<DataFrame> {
        match fast(piece, &projection.schema) {
            Some(df) => Ok(df),
            None => parse_ndjson(piece, None, &projection.schema, false),
        }
    }
}

impl Builder {
    /// Appends `value` where it is what Polars would store unchanged; false otherwise.
    /// `items`: an array's elements (the nodes after it). A single value goes in by the
    /// scanner's rules (`takes`).
    fn push(&mut self, value: &Node, items: &[Node]) -> bool {
        match (self, value) {
            // Lists of plain values only: null items, mixed types and nesting are Polars'.
            (Builder::TextList(b), Node::Array { len, count }) if len == count => {
                if !items.iter().all(|n| matches!(n, Node::String(_))) {
                    return false;
                }
                b.append_values_iter(items.iter().map(|n| match n {
                    Node::String(s) => *s,
                    _ => "",
                }));
            }
            (Builder::IntList(b), Node::Array { len, count }) if len == count => {
                let whole = |n: &Node| match Plain::of(n) {
                    Some(Plain::Int(v)) => Some(v),
                    _ => None,
                };
                if !items.iter().all(|n| whole(n).is_some()) {
                    return false;
                }
                b.append_values_iter(items.iter().filter_map(whole));
            }
            (column, value) => match Plain::of(value) {
                Some(plain) if column.takes(&plain) => column.push_plain(plain),
                _ => return false,
            },
        }
        true
    }
}

/// The `projected` columns of the lines of `piece`, or `None` where Polars must decide.
fn fast(piece: &[u8], projected: &Schema) -> Option<DataFrame> {
    // Which columns a line has given a value: a bit each.
    if projected.is_empty() || projected.len() > 64 {
        return None;
    }
    // Lines as Polars' reader takes them: split at `\n`, blank ones (spaces, tabs, `\r`)
    // left out.
    let breaks: Vec<usize> = memchr::memchr_iter(b'\n', piece).collect();
    let starts = std::iter::once(0).chain(breaks.iter().map(|&b| b + 1));
    let ends = breaks.iter().copied().chain([piece.len()]);
    let mut columns = projected
        .iter()
        .map(|(name, dtype)| Builder::new(name, dtype, breaks.len() + 1))
        .collect::<Option<Vec<_>>>()?;
    // simd-json unescapes strings in place: each line is copied into one small buffer and
    // parsed there. (A copy of the whole piece was a new allocation of megabytes for each
    // piece, its pages faulted in as it was written.)
    let mut work = Vec::new();
    let mut buffers = simd_json::Buffers::default();
    // One tape's storage for every line (each line's tape borrows that line's copy).
    let mut storage: Vec<Node<'static>> = Vec::new();
    let mut keys = Keys {
        names: projected.iter_names().map(|n| n.as_str()).collect(),
        last: Vec::new(),
    };
    // The scanner reads valid UTF-8 only: a piece that is not is left to simd-json.
    let text = simdutf8::basic::from_utf8(piece).ok();
    let mut values = Vec::new();
    let mut height = 0;
    for (start, end) in starts.zip(ends) {
        let line = &piece[start..end];
        if line.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
            continue;
        }
        let scanned = text.and_then(|text| {
            values.clear();
            let seen = scan(text, start, end, &mut keys, &columns, &mut values)?;
            for (c, value) in values.drain(..) {
                columns[c].push_plain(value);
            }
            Some(seen)
        });
        let seen = match scanned {
            Some(seen) => seen,
            None => {
                work.clear();
                work.extend_from_slice(line);
                let mut tape = simd_json::Tape(reuse(std::mem::take(&mut storage)));
                simd_json::fill_tape(&mut work, &mut buffers, &mut tape).ok()?;
                let seen = from_tape(&tape.0, &mut keys, &mut columns)?;
                storage = reuse(tape.0);
                seen
            }
        };
        for (c, column) in columns.iter_mut().enumerate() {
            if seen & (1 << c) == 0 {
                column.null();
            }
        }
        height += 1;
    }
    let columns = columns.into_iter().map(Builder::finish).collect();
    DataFrame::new(height, columns).ok()
}

/// The columns asked for, by name, and the key last seen at each place on a line with its
/// column: an export's lines mostly give their keys in the same order, so that key is tried
/// before the search.
struct Keys<'n> {
    names: Vec<&'n str>,
    last: Vec<Known>,
}

struct Known {
    key: String,
    column: Option<usize>,
    /// Without `"`, `\` or a control character: as the key is written on a line.
    plain: bool,
}

impl Keys<'_> {
    /// The column of the `k`th key of a line, if it is asked for.
    #[inline]
    fn column(&mut self, k: usize, key: &str) -> Option<usize> {
        match self.last.get(k) {
            Some(known) if same_key(known.key.as_bytes(), key.as_bytes()) => known.column,
            _ => {
                let column = self.names.iter().position(|n| *n == key);
                let plain = !key.bytes().any(ends_text);
                let known = Known {
                    key: key.to_owned(),
                    column,
                    plain,
                };
                match self.last.get_mut(k) {
                    Some(place) => *place = known,
                    None => self.last.push(known),
                }
                column
            }
        }
    }

    /// When the text at `line[from..]` is the plain key last seen at place `k` and its
    /// closing `"`: where that `"` is, and the key's column. The scanner then need not look
    /// for the key's end.
    #[inline]
    fn as_last(&self, k: usize, line: &[u8], from: usize) -> Option<(usize, Option<usize>)> {
        let known = self.last.get(k).filter(|known| known.plain)?;
        let close = from + known.key.len();
        (line.get(close) == Some(&b'"') && same_key(known.key.as_bytes(), &line[from..close]))
            .then_some((close, known.column))
    }
}

/// One line's values from simd-json's tape into `columns`; which columns it gave, or `None`
/// where Polars must decide.
fn from_tape(nodes: &[Node], keys: &mut Keys, columns: &mut [Builder]) -> Option<u64> {
    let Some(Node::Object { len, .. }) = nodes.first() else {
        return None;
    };
    let mut seen = 0u64;
    let mut i = 1;
    for k in 0..*len {
        let Node::String(key) = nodes.get(i)? else {
            return None;
        };
        let value = nodes.get(i + 1)?;
        let inner = match value {
            Node::Object { count, .. } | Node::Array { count, .. } => *count,
            _ => 0,
        };
        let items = nodes.get(i + 2..i + 2 + inner)?;
        i += 2 + inner;
        let Some(c) = keys.column(k, key) else {
            continue;
        };
        // A key given twice: which value Polars takes is its business.
        if seen & (1 << c) != 0 || !columns[c].push(value, items) {
            return None;
        }
        seen |= 1 << c;
    }
    Some(seen)
}

/// A single JSON value, as the scanner reads it or simd-json's tape holds it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Plain<'a> {
    Null,
    Text(&'a str),
    /// A whole number that fits an `i64`.
    Int(i64),
    /// A decimal, or a whole number too large for an `i64`.
    Float(f64),
    Bool(bool),
}

impl<'a> Plain<'a> {
    /// A tape's single value; `None` for an array, an object or a 128-bit number.
    fn of(node: &Node<'a>) -> Option<Plain<'a>> {
        Some(match node {
            Node::String(s) => Plain::Text(s),
            Node::Static(StaticNode::Null) => Plain::Null,
            Node::Static(StaticNode::Bool(v)) => Plain::Bool(*v),
            Node::Static(StaticNode::I64(v)) => Plain::Int(*v),
            Node::Static(StaticNode::U64(v)) => match i64::try_from(*v) {
                Ok(v) => Plain::Int(v),
                Err(_) => Plain::Float(*v as f64),
            },
            Node::Static(StaticNode::F64(v)) => Plain::Float(*v),
            // Arrays, objects, and 128-bit numbers (Polars' to read or refuse).
            _ => return None,
        })
    }
}

impl Builder {
    /// Whether `value` goes into this column as Polars would store it unchanged: a value of
    /// the column's own type, or null; whole numbers in a decimal column too (Polars'
    /// `cast_f64` converts them).
    #[inline]
    fn takes(&self, value: &Plain) -> bool {
        matches!(
            (self, value),
            (_, Plain::Null)
                | (Builder::Text(_), Plain::Text(_))
                | (Builder::Int(_), Plain::Int(_))
                | (Builder::Float(_), Plain::Int(_) | Plain::Float(_))
                | (Builder::Bool(_), Plain::Bool(_))
        )
    }

    /// Appends a value `takes` accepted.
    #[inline]
    fn push_plain(&mut self, value: Plain) {
        match (self, value) {
            (Builder::Text(b), Plain::Text(s)) => b.append_value(s),
            (Builder::Int(b), Plain::Int(v)) => b.append_value(v),
            (Builder::Float(b), Plain::Int(v)) => b.append_value(v as f64),
            (Builder::Float(b), Plain::Float(v)) => b.append_value(v),
            (Builder::Bool(b), Plain::Bool(v)) => b.append_value(v),
            (column, _) => column.null(),
        }
    }
}

/// The line `text[start..end]` read without simd-json, for the plainest lines: an object
/// whose keys and text values hold no escape and no control character, whose numbers are
/// whole numbers of up to 18 digits (or, where no column asks for them, decimals without an
/// exponent), with `true`, `false` and `null`, and spaces between them. The values asked for
/// go to `values`; the answer is which columns they fill. `None` for any other line (nested
/// values, an escape, a tab, a key twice, a value a column does not take as it is, anything
/// not JSON): simd-json reads it as before, and decides.
fn scan<'a>(
    text: &'a str,
    start: usize,
    end: usize,
    keys: &mut Keys,
    columns: &[Builder],
    values: &mut Vec<(usize, Plain<'a>)>,
) -> Option<u64> {
    let b = text.as_bytes();
    // JSON's whitespace after the object: `\r` of a CRLF line, mostly.
    let end = start
        + b[start..end]
            .iter()
            .rposition(|&c| !matches!(c, b' ' | b'\t' | b'\r'))?
        + 1;
    let line = &b[..end];
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    // Spaces between tokens are rare: one comparison where there are none.
    let spaces = |mut i: usize| {
        while at(i) == b' ' {
            i += 1;
        }
        i
    };
    let mut i = spaces(start);
    if at(i) != b'{' {
        return None;
    }
    i = spaces(i + 1);
    let mut seen = 0u64;
    if at(i) == b'}' {
        return (spaces(i + 1) == end).then_some(seen);
    }
    for k in 0.. {
        if at(i) != b'"' {
            return None;
        }
        let column = match keys.as_last(k, line, i + 1) {
            Some((close, column)) => {
                i = close + 1;
                column
            }
            None => {
                let close = string_end(line, i + 1)?;
                let column = keys.column(k, &text[i + 1..close]);
                i = close + 1;
                column
            }
        };
        i = spaces(i);
        if at(i) != b':' {
            return None;
        }
        i = spaces(i + 1);
        let value = match at(i) {
            b'"' => {
                let close = string_end(line, i + 1)?;
                let value = Plain::Text(&text[i + 1..close]);
                i = close + 1;
                value
            }
            b'n' if line[i..].starts_with(b"null") => {
                i += 4;
                Plain::Null
            }
            b't' if line[i..].starts_with(b"true") => {
                i += 4;
                Plain::Bool(true)
            }
            b'f' if line[i..].starts_with(b"false") => {
                i += 5;
                Plain::Bool(false)
            }
            b'-' | b'0'..=b'9' => {
                let (value, next) = number(line, i, column.is_none())?;
                i = next;
                value
            }
            _ => return None,
        };
        if let Some(c) = column {
            if seen & (1 << c) != 0 || !columns[c].takes(&value) {
                return None;
            }
            seen |= 1 << c;
            values.push((c, value));
        }
        i = spaces(i);
        match at(i) {
            b',' => i = spaces(i + 1),
            b'}' => break,
            _ => return None,
        }
    }
    (spaces(i + 1) == end).then_some(seen)
}

/// The number at `line[i..]` and where it ends: a whole number of up to 18 digits (what
/// simd-json reads as an `I64` or `U64`), or, when `skipped`, a decimal without an exponent
/// (its value is not needed). `None` for anything else, leading zeros and exponents among
/// them.
fn number(line: &[u8], i: usize, skipped: bool) -> Option<(Plain<'static>, usize)> {
    let digits = |mut i: usize| {
        while line.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let from = i + usize::from(line[i] == b'-');
    let end = digits(from);
    // JSON has no leading zeros (`01`), which CSV's `whole` reads.
    if end > from + 1 && line[from] == b'0' {
        return None;
    }
    let value = whole(&line[i..end])?;
    match line.get(end) {
        Some(b'.') if skipped => {
            let fraction = end + 1;
            let after = digits(fraction);
            if after == fraction || matches!(line.get(after), Some(b'e' | b'E')) {
                return None;
            }
            Some((Plain::Null, after))
        }
        Some(b'.' | b'e' | b'E') => None,
        _ => Some((Plain::Int(value), end)),
    }
}

/// Where the text that starts at `line[i]` ends (its closing `"`), read eight bytes at a
/// time; `None` when an escape or a control character (which JSON refuses unescaped) comes
/// first, or the line ends.
#[inline]
fn string_end(line: &[u8], mut i: usize) -> Option<usize> {
    let (b, end) = (line, line.len());
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while i + 8 <= end {
        let w = u64::from_le_bytes(b[i..i + 8].try_into().expect("8"));
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        // A byte flagged is `"`, `\` or under 0x20, or lies above one that is: the lowest
        // flag is always a true one.
        let found = ((quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (w.wrapping_sub(ONES * 0x20) & !w))
            & HIGH;
        if found != 0 {
            let at = i + (found.trailing_zeros() / 8) as usize;
            return (b[at] == b'"').then_some(at);
        }
        i += 8;
    }
    while i < end {
        if ends_text(b[i]) {
            return (b[i] == b'"').then_some(i);
        }
        i += 1;
    }
    None
}

/// A byte JSON text cannot hold as it stands: its closing `"`, an escape's `\`, or a control
/// character.
#[inline]
fn ends_text(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20
}

/// `a == b`, for the keys of every line, without a call to `memcmp`: for up to 16 bytes,
/// two loads that overlap (or, under 4 bytes, three bytes) cover every byte.
#[inline]
fn same_key(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8"));
    let half = |s: &[u8], at: usize| u32::from_le_bytes(s[at..at + 4].try_into().expect("4"));
    match n {
        0 => true,
        1..4 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..8 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        _ => a == b,
    }
}

/// An emptied vector of nodes with another lifetime, keeping its allocation (collecting
/// an emptied `into_iter` reuses it in place).
fn reuse<'a>(mut nodes: Vec<Node<'_>>) -> Vec<Node<'a>> {
    nodes.clear();
    nodes
        .into_iter()
        .map(|_| Node::Static(StaticNode::Null))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::columns::schema;

    /// Keys compared as `==` compares them, at every length up to 17 and at each place a
    /// byte can differ.
    #[test]
    fn keys_compare_like_eq() {
        for n in 0..=17usize {
            let a: Vec<u8> = (0..n as u8).map(|i| b'a' + i).collect();
            assert!(same_key(&a, &a.clone()), "{n}");
            assert!(!same_key(&a, &a[..n.saturating_sub(1)]) || n == 0, "{n}");
            for at in 0..n {
                let mut b = a.clone();
                b[at] ^= 0x20;
                assert!(!same_key(&a, &b), "{n} {at}");
            }
        }
    }

    /// Where a text ends, as a search byte by byte finds it: at every length up to 20, with
    /// a `"`, a `\`, a control character or none at each place (and a `"` at the end), among
    /// bytes near the ones looked for (space, `!`, DEL, UTF-8).
    #[test]
    fn finds_text_ends_as_a_plain_search_does() {
        let naive = |line: &[u8], i: usize| match line[i..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        {
            Some(at) if line[i + at] == b'"' => Some(i + at),
            _ => None,
        };
        let fillers: [&[u8]; 3] = [b" !#[]", "é~\x7f".as_bytes(), b"abcdefgh"];
        for n in 0..=20usize {
            for filler in fillers {
                let base: Vec<u8> = filler.iter().copied().cycle().take(n).collect();
                assert_eq!(string_end(&base, 0), None, "{n}");
                for at in 0..n {
                    for special in [b'"', b'\\', 0x00, 0x1f, b'\t'] {
                        // With a `"` after it, so that a character missed is seen.
                        let mut line = base.clone();
                        line[at] = special;
                        if at + 1 < n {
                            line[n - 1] = b'"';
                        }
                        for from in 0..=at {
                            assert_eq!(
                                string_end(&line, from),
                                naive(&line, from),
                                "{line:?} from {from}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// The lines the scanner reads itself, and what it gives; the lines it leaves to
    /// simd-json (`None`).
    #[test]
    fn scans_only_the_plainest_lines() {
        let projected = schema(&[
            ("id", DataType::String),
            ("n", DataType::Int64),
            ("x", DataType::Float64),
            ("ok", DataType::Boolean),
        ]);
        let columns: Vec<Builder> = projected
            .iter()
            .map(|(name, dtype)| Builder::new(name, dtype, 1).unwrap())
            .collect();
        let scanned = |line: &'static str| {
            let mut keys = Keys {
                names: projected.iter_names().map(|n| n.as_str()).collect(),
                last: Vec::new(),
            };
            let mut values = Vec::new();
            let seen = scan(line, 0, line.len(), &mut keys, &columns, &mut values)?;
            Some((seen, values))
        };
        use Plain::*;
        type Case = (&'static str, u64, Vec<(usize, Plain<'static>)>);
        let read: [Case; 8] = [
            (
                r#"{"id":"u1","n":-12,"x":7,"ok":true,"skip":"a","w":1.25}"#,
                0b1111,
                vec![(0, Text("u1")), (1, Int(-12)), (2, Int(7)), (3, Bool(true))],
            ),
            (
                r#" { "ok" : false , "id" : "é" , "n" : null }  "#,
                0b1011,
                vec![(3, Bool(false)), (0, Text("é")), (1, Null)],
            ),
            ("{\"n\":0,\"skip\":-0.5}\r", 0b10, vec![(1, Int(0))]),
            (r#"{"n":-0}"#, 0b10, vec![(1, Int(0))]),
            (
                r#"{"n":999999999999999999}"#,
                0b10,
                vec![(1, Int(999_999_999_999_999_999))],
            ),
            (r#"{}"#, 0, vec![]),
            (r#"{"id":""}"#, 1, vec![(0, Text(""))]),
            (r#"{"skip":null}"#, 0, vec![]),
        ];
        for (line, seen, values) in read {
            assert_eq!(scanned(line), Some((seen, values)), "{line}");
        }
        let left = [
            r#"{"id":"a\"b"}"#,             // an escape
            r#"{"i\u0064":"a"}"#,           // an escaped key
            "{\"id\":\"a\tb\"}",            // a control character in text
            "{\"id\":\t\"a\"}",             // a tab between tokens
            r#"{"n":01}"#,                  // a leading zero
            r#"{"n":1e3}"#,                 // an exponent
            r#"{"x":1.5}"#,                 // a decimal asked for
            r#"{"skip":1.5e3}"#,            // an exponent not asked for
            r#"{"skip":1.}"#,               // a decimal without digits
            r#"{"n":1234567890123456789}"#, // 19 digits
            r#"{"n":-}"#,                   // a sign alone
            r#"{"skip":[1]}"#,              // nested, not asked for
            r#"{"skip":{"a":1}}"#,          // nested, not asked for
            r#"{"id":"a","id":"b"}"#,       // a key twice
            r#"{"id":1}"#,                  // a value of another type
            r#"{"n":"1"}"#,                 // a value of another type
            r#"{"ok":1}"#,                  // a value of another type
            r#"{"ok":tru}"#,                // not JSON
            r#"{"id":"a"} x"#,              // something after the object
            r#"{"id":"a" "n":1}"#,          // no comma
            r#"{"id":"a",}"#,               // a comma before the end
            r#"{"id":"a"#,                  // text cut short
            r#"["a"]"#,                     // not an object
        ];
        for line in left {
            assert_eq!(scanned(line), None, "{line}");
        }
    }

    /// What the scanner reads is what Polars reads: spaces, CRLF, `-0` and whole numbers in
    /// a decimal column, decimals and text not asked for, empty objects, keys in another
    /// order than the line before.
    #[test]
    fn scanned_lines_read_as_polars_does() {
        let text = b"{ \"id\" : \"u1\" , \"n\" : -0 , \"x\" : -0 , \"w\" : 2.50 }\r\n\
            {\"x\":123456789012345678,\"id\":\"\xc3\xa9\",\"n\":999999999999999999,\"s\":\"t\"}\r\n\
            {}\n\
            {\"n\":-7,\"x\":null,\"id\":null,\"ok\":false}";
        let projected = schema(&[
            ("id", DataType::String),
            ("n", DataType::Int64),
            ("x", DataType::Float64),
            ("ok", DataType::Boolean),
        ]);
        let ours = fast(text, &projected).expect("plain lines take the fast path");
        let polars = parse_ndjson(text, None, &projected, false).unwrap();
        assert_eq!(ours.height(), 4);
        assert!(ours.equals_missing(&polars), "{ours}\n{polars}");
        let x: Vec<Option<f64>> = ours.column("x").unwrap().f64().unwrap().iter().collect();
        assert_eq!(x, [Some(0.0), Some(1.2345678901234568e17), None, None]);
    }

    /// A key simd-json read with an escape is not taken as written when the next line
    /// writes its unescaped text, which is not JSON: the piece goes to Polars, which refuses
    /// it.
    #[test]
    fn a_key_read_unescaped_is_not_matched_as_written() {
        let projected = schema(&[("a\"b", DataType::String)]);
        left_to_polars(&projected, &[b"{\"a\\\"b\":\"1\"}\n{\"a\"b\":\"2\"}"]);
    }

    /// Lines of plain values read as Polars' parser reads them: text with escapes, whole
    /// numbers and decimals (whole numbers in a decimal column), booleans, lists of text and
    /// of whole numbers (empty ones too), nulls, missing keys, keys in any order, nested
    /// values of columns not asked for, blank lines.
    #[test]
    fn reads_plain_lines_as_polars_does() {
        let text = br#"{"id":"u1","n":1,"x":2.5,"ok":true,"skip":{"a":[1,{"b":2}]},"s":"a\"b\u00e9","tags":["a","b\u00e9"],"segs":[1,-2]}
{"s":null,"x":3,"id":"u2","ok":false,"skip":[1,2,3],"tags":[],"segs":null}

   
{"segs":[],"id":"u3","n":-7,"x":null,"ok":null,"s":"","tags":null}
{"id":"u4","tags":["x"],"segs":[9223372036854775807]}"#;
        let projected = schema(&[
            ("id", DataType::String),
            ("n", DataType::Int64),
            ("x", DataType::Float64),
            ("ok", DataType::Boolean),
            ("s", DataType::String),
            ("tags", DataType::List(Box::new(DataType::String))),
            ("segs", DataType::List(Box::new(DataType::Int64))),
        ]);
        let ours = fast(text, &projected).expect("plain lines take the fast path");
        let polars = parse_ndjson(text, None, &projected, false).unwrap();
        assert_eq!(ours.height(), 4);
        assert!(ours.equals_missing(&polars), "{ours}\n{polars}");
        assert_eq!(
            ours.column("s").unwrap().str().unwrap().get(0),
            Some("a\"bé")
        );
        let tags = ours.column("tags").unwrap().list().unwrap();
        let lengths: Vec<Option<usize>> = tags
            .amortized_iter()
            .map(|l| l.map(|l| l.as_ref().len()))
            .collect();
        assert_eq!(lengths, [Some(2), Some(0), None, Some(1)]);
    }

    /// A key is matched by its name wherever it stands, when the line before had the same
    /// keys in the same places or another key there (of the same length, or not asked for).
    #[test]
    fn matches_keys_by_name_in_any_place() {
        let text = br#"{"a":"1","b":"2","c":"x"}
{"a":"3","b":"4","c":"x"}
{"b":"5","a":"6","c":"x"}
{"c":"x","a":"7","b":"8"}
{"a":"9","c":"x","b":"10"}
{"a":"11","b":"12"}"#;
        let projected = schema(&[("a", DataType::String), ("b", DataType::String)]);
        let ours = fast(text, &projected).expect("plain lines take the fast path");
        let polars = parse_ndjson(text, None, &projected, false).unwrap();
        assert!(ours.equals_missing(&polars), "{ours}\n{polars}");
        let column = |name: &str| -> Vec<Option<&str>> {
            ours.column(name).unwrap().str().unwrap().iter().collect()
        };
        assert_eq!(column("a"), ["1", "3", "6", "7", "9", "11"].map(Some));
        assert_eq!(column("b"), ["2", "4", "5", "8", "10", "12"].map(Some));
    }

    /// Each text is declined by the fast path, and the parser answers with Polars' frame or
    /// Polars' error.
    fn left_to_polars(projected: &Schema, texts: &[&[u8]]) {
        let parser = NdjsonParser {
            schema: Arc::new(projected.clone()),
        };
        let all = Projection::new(projected, (0..projected.len()).collect());
        for text in texts {
            assert!(fast(text, projected).is_none(), "{text:?}");
            let polars = parse_ndjson(text, None, projected, false);
            match (parser.parse(text, &all), polars) {
                (Ok(a), Ok(b)) => assert!(a.equals_missing(&b), "{text:?}"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                (a, b) => panic!("{text:?}: {a:?} against {b:?}"),
            }
        }
    }

    /// What the fast path leaves to Polars: a value of another type (Polars converts it or
    /// refuses it), a nested value asked for, a key twice, a line that is not an object,
    /// broken JSON, a column type it does not build. The parser's answer is Polars' own.
    #[test]
    fn leaves_everything_else_to_polars() {
        let projected = schema(&[("id", DataType::String), ("n", DataType::Int64)]);
        let cases: [&[u8]; 7] = [
            br#"{"id":1,"n":1}"#,
            br#"{"id":"u","n":1.5}"#,
            br#"{"id":"u","n":"1"}"#,
            br#"{"id":["u"],"n":1}"#,
            br#"{"id":"u","id":"v","n":1}"#,
            br#"["u",1]"#,
            br#"{"id":"u","n":"#,
        ];
        left_to_polars(&projected, &cases);
        // Lists: a null item, mixed or nested items, a single value, a decimal in a list
        // of whole numbers, a list of decimals.
        let listed = schema(&[
            ("t", DataType::List(Box::new(DataType::String))),
            ("w", DataType::List(Box::new(DataType::Int64))),
        ]);
        let lists: [&[u8]; 6] = [
            br#"{"t":["a",null]}"#,
            br#"{"t":["a",1]}"#,
            br#"{"t":[["a"]]}"#,
            br#"{"t":"a"}"#,
            br#"{"w":[1,2.5]}"#,
            br#"{"w":[1,{"a":1}]}"#,
        ];
        left_to_polars(&listed, &lists);
        let decimals = schema(&[("f", DataType::List(Box::new(DataType::Float64)))]);
        assert!(fast(br#"{"f":[1.5]}"#, &decimals).is_none());
    }
}
