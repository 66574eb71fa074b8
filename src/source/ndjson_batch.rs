//! NDJSON pieces parsed straight from simd-json's tape into the columns a query uses.
//!
//! Polars' reader turns every line into a tree of values (a map per object, an owned key per
//! field) and then looks each column up in it: about 45% of an NDJSON run's CPU. Here a
//! line's tape is walked once. Only plain cases take this path: columns typed text, whole
//! numbers, decimals or booleans, each given a value of its own JSON type (or null), and
//! lists of text or of whole numbers given arrays of such values (or null). Any other line,
//! a nested value, a key twice, or a line that is not valid JSON sends the whole piece to
//! Polars' own parser (`parse_ndjson`, which Polars' NDJSON scan runs on each chunk), so
//! what Polars accepts, converts or refuses, and how it says so, is unchanged.

use super::columns::Builder;
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
    /// `items`: an array's elements (the nodes after it).
    fn push(&mut self, value: &Node, items: &[Node]) -> bool {
        match (self, value) {
            (column, Node::Static(StaticNode::Null)) => column.null(),
            (Builder::Text(b), Node::String(s)) => b.append_value(s),
            (Builder::Int(b), Node::Static(StaticNode::I64(v))) => b.append_value(*v),
            (Builder::Int(b), Node::Static(StaticNode::U64(v))) => match i64::try_from(*v) {
                Ok(v) => b.append_value(v),
                Err(_) => return false,
            },
            // Polars' `cast_f64`: whole numbers in a decimal column are converted.
            (Builder::Float(b), Node::Static(StaticNode::F64(v))) => b.append_value(*v),
            (Builder::Float(b), Node::Static(StaticNode::I64(v))) => b.append_value(*v as f64),
            (Builder::Float(b), Node::Static(StaticNode::U64(v))) => b.append_value(*v as f64),
            (Builder::Bool(b), Node::Static(StaticNode::Bool(v))) => b.append_value(*v),
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
                let whole = |n: &Node| match n {
                    Node::Static(StaticNode::I64(v)) => Some(*v),
                    Node::Static(StaticNode::U64(v)) => i64::try_from(*v).ok(),
                    _ => None,
                };
                if !items.iter().all(|n| whole(n).is_some()) {
                    return false;
                }
                b.append_values_iter(items.iter().filter_map(whole));
            }
            _ => return false,
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
    let names: Vec<&str> = projected.iter_names().map(|n| n.as_str()).collect();
    // simd-json unescapes strings in place: each line is copied into one small buffer and
    // parsed there. (A copy of the whole piece was a new allocation of megabytes for each
    // piece, its pages faulted in as it was written.)
    let mut work = Vec::new();
    let mut buffers = simd_json::Buffers::default();
    // One tape's storage for every line (each line's tape borrows that line's copy).
    let mut storage: Vec<Node<'static>> = Vec::new();
    // An export's lines mostly give their keys in the same order: at each place on a line,
    // the key seen there last and its column are tried before the search.
    let mut last: Vec<(String, Option<usize>)> = Vec::new();
    let mut height = 0;
    for (start, end) in starts.zip(ends) {
        let line = &piece[start..end];
        if line.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
            continue;
        }
        work.clear();
        work.extend_from_slice(line);
        let line = work.as_mut_slice();
        let mut tape = simd_json::Tape(reuse(std::mem::take(&mut storage)));
        simd_json::fill_tape(line, &mut buffers, &mut tape).ok()?;
        let nodes = &tape.0;
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
            let column = match last.get(k) {
                Some((known, c)) if same_key(known.as_bytes(), key.as_bytes()) => *c,
                _ => {
                    let c = names.iter().position(|n| n == key);
                    let entry = ((*key).to_owned(), c);
                    match last.get_mut(k) {
                        Some(place) => *place = entry,
                        None => last.push(entry),
                    }
                    c
                }
            };
            let Some(c) = column else {
                continue;
            };
            // A key given twice: which value Polars takes is its business.
            if seen & (1 << c) != 0 || !columns[c].push(value, items) {
                return None;
            }
            seen |= 1 << c;
        }
        for (c, column) in columns.iter_mut().enumerate() {
            if seen & (1 << c) == 0 {
                column.null();
            }
        }
        height += 1;
        storage = reuse(tape.0);
    }
    let columns = columns.into_iter().map(Builder::finish).collect();
    DataFrame::new(height, columns).ok()
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
