//! CSV pieces parsed into the columns a query uses. The record check has already found where
//! records start, so Polars' scan is not used: it first finds line starts in every buffer
//! with a quote-aware count, byte by byte on stable Rust, which was the largest single cost
//! of reading CSV (about 14% of a run's CPU).
//!
//! Pieces are split here, from separator to separator and from quote to quote with `memchr`
//! (Polars' field splitter also steps through every byte on stable Rust; its SIMD one needs
//! nightly). Only plain values take this path: text, whole numbers and decimals in their
//! plain spelling, `true` and `false`, empty fields (null), each quoted or not, and quoted
//! text without a doubled quote. Anything else sends the whole piece to Polars' own chunk
//! parser, so what Polars accepts, converts or refuses, and how it says so, is unchanged.

use super::columns::{whole, Builder};
use super::text_batch::{PieceParser, Projection};
use polars::io::csv::read::_csv_read_internal::{
    cast_columns, prepare_csv_schema, read_chunk, NullValuesCompiled,
};
use polars::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How every batch of one CSV source is parsed: the same options and schema as the scan of
/// the whole file.
pub(super) struct CsvParser {
    /// The scan's schema: every column of the file, in order, as the scan types them.
    output: SchemaRef,
    /// The schema Polars' parser reads with (types it cannot parse directly read as text).
    reader: SchemaRef,
    /// Columns read as text and cast to their type afterwards.
    to_cast: Vec<Field>,
    options: CsvParseOptions,
    nulls: Option<NullValuesCompiled>,
    /// The separator, where pieces may be split here: options whose every effect `plain`
    /// reproduces (no null values, comments or decimal commas; a quote that is not the
    /// separator or a line break).
    plain: Option<u8>,
    /// Bytes and rows parsed so far, to size each piece's column builders: a guess too
    /// large holds memory for rows that never come (it is not given back).
    parsed: [AtomicUsize; 2],
}

impl CsvParser {
    pub(super) fn new(output: SchemaRef, options: CsvParseOptions) -> PolarsResult<CsvParser> {
        let mut reader = output.clone();
        let mut to_cast = Vec::new();
        prepare_csv_schema(&mut reader, &mut to_cast)?;
        let nulls = options
            .null_values
            .clone()
            .map(|n| n.compile(&reader))
            .transpose()?;
        let o = &options;
        let plain = (nulls.is_none()
            && o.comment_prefix.is_none()
            && !o.decimal_comma
            && o.missing_is_null
            && o.eol_char == b'\n'
            && o.separator.is_ascii()
            && !matches!(o.separator, b'\n' | b'\r')
            && !matches!(o.quote_char, Some(q) if q == o.separator || q == b'\n' || q == b'\r'))
        .then_some(o.separator);
        Ok(CsvParser {
            output,
            reader,
            to_cast,
            options,
            nulls,
            plain,
            parsed: Default::default(),
        })
    }

    /// About how many rows `bytes` bytes hold, as far as the pieces parsed so far tell.
    fn rows_in(&self, bytes: usize) -> usize {
        let [seen_bytes, seen_rows] = self.parsed.each_ref().map(|a| a.load(Ordering::Relaxed));
        if seen_rows == 0 {
            return bytes / 128;
        }
        let rows = (bytes as u128 * seen_rows as u128 / seen_bytes.max(1) as u128) as usize;
        rows + rows / 32
    }

    /// The projected columns of a piece split here, or `None` where Polars must decide: a
    /// carriage return not before a line break, text that is not UTF-8, a field `split`
    /// leaves to Polars, a column type or a value `push_field` leaves to it.
    fn plain(&self, piece: &[u8], projection: &Projection, rows: usize) -> Option<DataFrame> {
        let sep = self.plain?;
        let mut returns = memchr::memchr_iter(b'\r', piece);
        if !returns.all(|at| matches!(piece.get(at + 1), Some(b'\n') | None)) {
            return None;
        }
        let text = simdutf8::basic::from_utf8(piece).ok()?;
        let mut slots = vec![None; self.reader.len()];
        let mut columns = Vec::with_capacity(projection.indices.len());
        for (&i, (name, dtype)) in projection.indices.iter().zip(projection.schema.iter()) {
            *slots.get_mut(i)? = Some(columns.len());
            columns.push(Builder::new(name, dtype, rows)?);
        }
        let height = split(text, sep, self.options.quote_char, &slots, &mut columns)?;
        DataFrame::new(height, columns.into_iter().map(Builder::finish).collect()).ok()
    }

    /// The projected columns of a piece, as Polars' chunk parser reads them.
    fn polars(
        &self,
        piece: &[u8],
        projection: &Projection,
        rows: usize,
    ) -> PolarsResult<DataFrame> {
        read_chunk(
            piece,
            &self.options,
            &self.reader,
            false,
            &projection.indices,
            0,
            rows,
            self.nulls.as_ref(),
            usize::MAX,
            piece.len(),
            Some(0),
        )
    }
}

/// Splits `text`, records of fields, and appends field `i` of each record to
/// `columns[slots[i]]`. A field that starts with `quote` is the text up to the next quote
/// (separators and line breaks included), which must end the field; one with a doubled
/// quote is left to Polars. A record's last field ends before `\r\n` or `\n`. The number
/// of records; `None` where one has other than `slots.len()` fields or a field or value is
/// left to Polars.
fn split(
    text: &str,
    sep: u8,
    quote: Option<u8>,
    slots: &[Option<usize>],
    columns: &mut [Builder],
) -> Option<usize> {
    let bytes = text.as_bytes();
    let ends = FieldEnds::new(sep);
    let (mut field, mut start, mut records) = (0, 0, 0);
    loop {
        // The field's value, whether it was quoted, and where the field ends (a separator,
        // a line break, or the end of the text).
        let (value, quoted, end) = match quote {
            Some(q) if bytes.get(start) == Some(&q) => {
                let close = start + 1 + memchr::memchr(q, &bytes[start + 1..])?;
                (&text[start + 1..close], true, close + 1)
            }
            _ => {
                let end = ends
                    .find(&bytes[start..])
                    .map_or(bytes.len(), |n| start + n);
                (&text[start..end], false, end)
            }
        };
        // After a closing quote: a separator, a line break (`\r\n` too) or the end.
        let end = match (quoted, &bytes[end..]) {
            (false, _) | (true, [] | [b'\n', ..]) => end,
            (true, [b'\r', b'\n', ..] | [b'\r']) => end + 1,
            (true, [b, ..]) if *b == sep => end,
            (true, _) => return None,
        };
        let record_ends = bytes.get(end).is_none_or(|&b| b == b'\n');
        if let Some(&Some(c)) = slots.get(field) {
            let value = match (quoted, record_ends) {
                (false, true) => value.strip_suffix('\r').unwrap_or(value),
                _ => value,
            };
            if !columns[c].push_field(value, quoted) {
                return None;
            }
        }
        if !record_ends {
            field += 1;
            start = end + 1;
            continue;
        }
        if field + 1 != slots.len() {
            return None;
        }
        records += 1;
        field = 0;
        start = end + 1;
        if start >= bytes.len() {
            return Some(records);
        }
    }
}

/// Where an unquoted field ends: the next separator or line break. `memchr2` picks its
/// implementation and readies its two bytes on every call, once per field here; a searcher
/// made once per piece does that once (x86-64 with AVX2; elsewhere `memchr2`).
struct FieldEnds {
    sep: u8,
    #[cfg(target_arch = "x86_64")]
    avx2: Option<memchr::arch::x86_64::avx2::memchr::Two>,
}

impl FieldEnds {
    fn new(sep: u8) -> FieldEnds {
        FieldEnds {
            sep,
            #[cfg(target_arch = "x86_64")]
            avx2: memchr::arch::x86_64::avx2::memchr::Two::new(sep, b'\n'),
        }
    }

    #[inline]
    fn find(&self, haystack: &[u8]) -> Option<usize> {
        #[cfg(target_arch = "x86_64")]
        if let Some(two) = &self.avx2 {
            return two.find(haystack);
        }
        memchr::memchr2(self.sep, b'\n', haystack)
    }
}

impl Builder {
    /// Appends a field (without its quotes) as Polars' parser reads it with the options
    /// `plain` allows: an empty field is null, but quoted empty text is empty text. False
    /// where Polars must decide: a value it would read another way or refuse, or a column
    /// type CSV does not have.
    fn push_field(&mut self, field: &str, quoted: bool) -> bool {
        match self {
            Builder::Text(b) if field.is_empty() && !quoted => b.append_null(),
            Builder::Text(b) => b.append_value(field),
            _ if field.is_empty() => self.null(),
            Builder::Int(b) => match whole(field.as_bytes()) {
                Some(v) => b.append_value(v),
                None => return false,
            },
            Builder::Float(b) => match decimal(field) {
                Some(v) => b.append_value(v),
                None => return false,
            },
            Builder::Bool(b) if field.eq_ignore_ascii_case("true") => b.append_value(true),
            Builder::Bool(b) if field.eq_ignore_ascii_case("false") => b.append_value(false),
            _ => return false,
        }
        true
    }
}

/// `-?[0-9]+(.[0-9]+)?`, read to the nearest `f64` as Polars' `fast_float2` reads it. Other
/// spellings (exponents, `.5`, `inf`, spaces) are Polars'.
fn decimal(field: &str) -> Option<f64> {
    let unsigned = field.strip_prefix('-').unwrap_or(field);
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(int) && digits(frac)) {
        return None;
    }
    field.parse().ok()
}

impl PieceParser for CsvParser {
    fn output(&self) -> &SchemaRef {
        &self.output
    }

    fn reader(&self) -> &SchemaRef {
        &self.reader
    }

    fn parse(&self, piece: &[u8], projection: &Projection) -> PolarsResult<DataFrame> {
        let rows = self.rows_in(piece.len());
        let df = match self.plain(piece, projection, rows) {
            Some(df) => df,
            None => self.polars(piece, projection, rows)?,
        };
        self.parsed[0].fetch_add(piece.len(), Ordering::Relaxed);
        self.parsed[1].fetch_add(df.height(), Ordering::Relaxed);
        Ok(df)
    }

    fn finish(&self, df: &mut DataFrame) -> PolarsResult<()> {
        cast_columns(df, &self.to_cast, false, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::columns::schema;

    fn parser(fields: &[(&str, DataType)], options: CsvParseOptions) -> CsvParser {
        CsvParser::new(Arc::new(schema(fields)), options).unwrap()
    }

    fn typed() -> Vec<(&'static str, DataType)> {
        vec![
            ("id", DataType::String),
            ("n", DataType::Int64),
            ("x", DataType::Float64),
            ("ok", DataType::Boolean),
            ("s", DataType::String),
            ("last", DataType::String),
        ]
    }

    /// Plain pieces split here read as Polars' parser reads them: every type, empty fields,
    /// negative numbers, leading zeros, the largest whole numbers taken, booleans in any
    /// case, spaces and other text in text fields, `\r\n` line ends, quoted fields of every
    /// type (empty, with separators and line breaks inside, last on their line), quotes
    /// inside a field that does not start with one, all columns or some, a tab as
    /// separator, and quotes where quotes mean nothing.
    #[test]
    fn splits_plain_pieces_as_polars_reads_them() {
        let text = "u1,1,2.5,true,héllo wörld,zzz\n\
                    u2,-42,-0.125,FALSE, spaced ,\r\n\
                    u3,,,,,last\r\n\
                    u4,007,3,True,a;b|c,x\n\
                    u5,999999999999999999,12345678901234567.89,false,,y\r\n\
                    \"u6\",\"-3\",\"0.5\",\"true\",\"a,b\r\nc\",\"\"\r\n\
                    u7,\"\",,\"\",say \"hi\",\"q\"\n\
                    \"\",1,1,false,\"\",\"\n\"\r";
        let comma = parser(&typed(), CsvParseOptions::default());
        let tab = parser(&typed(), CsvParseOptions::default().with_separator(b'\t'));
        let unquoted = parser(&typed(), CsvParseOptions::default().with_quote_char(None));
        let tabbed = text.replace(',', "\t");
        // Where quotes mean nothing: the lines without quoted numbers, quotes in text.
        let plain_lines = text.lines().take(5).collect::<Vec<_>>().join("\n");
        let literal = plain_lines.replace("héllo", "\"héllo\"");
        for (p, text) in [(&comma, text), (&tab, &tabbed), (&unquoted, &literal)] {
            for columns in [vec![0, 1, 2, 3, 4, 5], vec![4, 1, 3], vec![5]] {
                let projection = Projection::new(&p.reader, columns);
                let ours = p
                    .plain(text.as_bytes(), &projection, 2)
                    .expect("a plain piece is split here");
                let polars = p.polars(text.as_bytes(), &projection, 2).unwrap();
                assert!(ours.equals_missing(&polars), "{ours}\n{polars}");
            }
        }
        let all = Projection::new(&comma.reader, (0..6).collect());
        let df = comma.plain(text.as_bytes(), &all, 2).unwrap();
        assert_eq!(df.height(), 8);
        let column = |name: &str| df.column(name).unwrap().as_materialized_series().clone();
        let n: Vec<Option<i64>> = column("n").i64().unwrap().iter().collect();
        let largest = Some(999_999_999_999_999_999);
        let expected = [
            Some(1),
            Some(-42),
            None,
            Some(7),
            largest,
            Some(-3),
            None,
            Some(1),
        ];
        assert_eq!(n, expected);
        let last = column("last");
        let last: Vec<Option<&str>> = last.str().unwrap().iter().collect();
        assert_eq!(last[1], None, "an empty field is null");
        let expected = ["last", "x", "y", "", "q", "\n"].map(Some);
        assert_eq!(last[0], Some("zzz"));
        assert_eq!(last[2..], expected, "quoted empty text is empty text");
        let (t, f) = (Some(true), Some(false));
        let ok: Vec<Option<bool>> = column("ok").bool().unwrap().iter().collect();
        assert_eq!(ok, [t, f, None, t, f, t, None, f]);
        let s = column("s");
        let s: Vec<Option<&str>> = s.str().unwrap().iter().collect();
        assert_eq!(s[1], Some(" spaced "));
        let expected = ["a,b\r\nc", "say \"hi\"", ""].map(Some);
        assert_eq!(s[5..], expected);
    }

    /// What the split leaves to Polars: a doubled quote, text after a closing quote, a quote
    /// never closed, numbers in other spellings (which Polars reads or refuses), other
    /// boolean words, a carriage return inside a line, a line with fewer or more fields, text
    /// that is not UTF-8. The parser's answer is Polars' own.
    #[test]
    fn leaves_everything_else_to_polars() {
        let p = parser(&typed()[..4], CsvParseOptions::default());
        let all = Projection::new(&p.reader, (0..4).collect());
        let cases: [&[u8]; 20] = [
            b"\"u\"\"v\",1,1.0,true",
            b"\"u\"v,1,1.0,true",
            b"\"u\"x1,1.0,true",
            b"u,\"1,1.0,true",
            b"u,\" 1\",1.0,true",
            b"u,+1,1.0,true",
            b"u, 1,1.0,true",
            b"u,1234567890123456789,1,true",
            b"u,12a,1,true",
            b"u,1,1e3,true",
            b"u,1,.5,true",
            b"u,1,1.,true",
            b"u,1,inf,true",
            b"u,1,1,yes",
            b"u,1,1, true",
            b"u\r,1,1,true",
            b"u,1,1\nv,1,1,true",
            b"u,1,1,true,extra",
            b"u\xff,1,1,true",
            b"u,1,1,true\r\r\nv,1,1,true",
        ];
        for case in cases {
            assert!(p.plain(case, &all, 1).is_none(), "{case:?}");
            match (p.parse(case, &all), p.polars(case, &all, 1)) {
                (Ok(a), Ok(b)) => assert!(a.equals_missing(&b), "{case:?}"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                (a, b) => panic!("{case:?}: {a:?} against {b:?}"),
            }
        }
        // Options whose effect the split does not reproduce, and quotes it cannot tell apart.
        let nulls = NullValues::AllColumnsSingle("NA".into());
        for options in [
            CsvParseOptions::default().with_null_values(Some(nulls)),
            CsvParseOptions::default().with_comment_prefix(Some("#")),
            CsvParseOptions::default().with_decimal_comma(true),
            CsvParseOptions::default().with_missing_is_null(false),
            CsvParseOptions::default().with_quote_char(Some(b',')),
            CsvParseOptions::default().with_quote_char(Some(b'\n')),
        ] {
            assert!(parser(&typed(), options).plain.is_none());
        }
    }
}
