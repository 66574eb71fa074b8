//! The one place that opens sources: expands globs, detects formats, applies the mapping's
//! CSV/encoding options and hands back Polars `LazyFrame`s.

mod batches;
mod columns;
mod csv_batch;
mod csv_check;
mod encoding;
mod ndjson_batch;
mod text_batch;

pub use batches::Batches;
pub(crate) use columns::digits;

use crate::error::{Error, Result};
use crate::mapping::{Encoding, Format, InputOptions, Mapping};
pub use batches::row_count;
use batches::TextPieces;
use csv_check::check_csv;
use polars::prelude::*;
use std::path::PathBuf;

/// One input file and how to read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub path: PathBuf,
    pub format: Format,
    /// gzip-compressed (`.csv.gz`, `.ndjson.gz`, `.json.gz`).
    pub gzip: bool,
    /// TAB-separated by its extension (`.tsv`).
    pub tsv: bool,
}

/// Expands the command line's inputs (paths and glob patterns) into sources, in the order
/// given, each glob's matches sorted. Several inputs are one logical export.
pub fn resolve(inputs: &[String], format: Option<Format>) -> Result<Vec<Source>> {
    let mut sources = Vec::new();
    for input in inputs {
        let paths = if input.contains(['*', '?', '[']) {
            let mut matched: Vec<PathBuf> = glob::glob(input)
                .map_err(|e| Error::Usage(format!("{input}: bad glob pattern: {e}")))?
                .filter_map(|p| p.ok())
                .filter(|p| p.is_file())
                .collect();
            if matched.is_empty() {
                return Err(Error::Usage(format!(
                    "{input}: the pattern matches no file"
                )));
            }
            matched.sort();
            matched
        } else {
            let path = PathBuf::from(input);
            if !path.is_file() {
                let why = if path.exists() {
                    "is not a file"
                } else {
                    "no such file"
                };
                return Err(Error::source(&path, why));
            }
            vec![path]
        };
        for path in paths {
            sources.push(Source::detect(path, format)?);
        }
    }
    if sources.is_empty() {
        return Err(Error::Usage("no input files given".into()));
    }
    Ok(sources)
}

impl Source {
    /// The format from the extension unless one is given (mapping or `--format`).
    pub fn detect(path: PathBuf, format: Option<Format>) -> Result<Source> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let (stem, gzip) = match name.strip_suffix(".gz") {
            Some(stem) => (stem.to_owned(), true),
            None => (name.clone(), false),
        };
        let ext = stem.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
        let tsv = ext == "tsv";
        let format = match format {
            Some(f) => f,
            None => match ext {
                "csv" | "tsv" | "txt" => Format::Csv,
                "parquet" | "pq" => Format::Parquet,
                "json" => Format::Json,
                "ndjson" | "jsonl" => Format::Ndjson,
                "arrow" | "feather" | "ipc" => Format::Ipc,
                _ => {
                    return Err(Error::source(
                        &path,
                        format!(
                            "cannot tell the format from the extension; set `format` under [input] or pass --format ({})",
                            Format::NAMES
                        ),
                    ))
                }
            },
        };
        if gzip && matches!(format, Format::Parquet | Format::Ipc) {
            return Err(Error::source(
                &path,
                "gzip-compressed Parquet/Arrow files are not supported; decompress the file first",
            ));
        }
        Ok(Source {
            path,
            format,
            gzip,
            tsv,
        })
    }

    /// Opens this source once: checks it is not empty, decodes compressed or non-UTF-8 text
    /// into memory and checks CSV records, noting where to cut it into batches of about
    /// `batch_bytes`. The result can be scanned more than once without reading or checking
    /// the file again.
    pub fn open<'s>(&'s self, opts: &'s InputOptions, batch_bytes: u64) -> Result<Opened<'s>> {
        let len = std::fs::metadata(&self.path)
            .map_err(|e| Error::io(&self.path, e))?
            .len();
        if len == 0 {
            return Err(Error::source(&self.path, "the file is empty"));
        }
        // Compressed or non-UTF-8 text is decoded into memory; plain files are read by path.
        // Polars has no lazy reader for a JSON array: it is read whole.
        let in_memory = self.gzip || opts.encoding != Encoding::Utf8 || self.format == Format::Json;
        let text = if in_memory && self.format != Format::Parquet && self.format != Format::Ipc {
            Some(self.read_text(opts.encoding)?)
        } else {
            None
        };
        let len = text.as_ref().map_or(len, |t| t.len() as u64);
        let pieces = match self.format {
            // Polars pads short rows with nulls; a row with a wrong field count is an error.
            Format::Csv => {
                let (tx, rx) = std::sync::mpsc::channel();
                let mut pieces = TextPieces::csv(len, batch_bytes, rx);
                let piece_bytes = pieces.piece_bytes();
                match &text {
                    Some(bytes) => check_csv(self, bytes.as_slice(), opts, piece_bytes, &tx),
                    None => {
                        // A file on disk is checked on a thread of its own, ahead of the
                        // batches Polars parses.
                        let file = std::fs::File::open(&self.path)
                            .map_err(|e| Error::io(&self.path, e))?;
                        let (source, opts) = (self.clone(), opts.clone());
                        std::thread::Builder::new()
                            .name("check".into())
                            .spawn(move || check_csv(&source, file, &opts, piece_bytes, &tx))
                            .map_err(|e| Error::io(&self.path, e))?;
                    }
                }
                // The first piece is checked before anything else reads the file, so a
                // broken row near the top is reported as such, not as Polars' parse error.
                pieces.get(0)?;
                Some(pieces)
            }
            Format::Ndjson => Some(self.line_pieces(text.as_deref(), len, batch_bytes)?),
            _ => None,
        };
        Ok(Opened {
            source: self,
            opts,
            text: text.map(|t| ScanSources::Buffers(vec![t.into()].into())),
            pieces: std::cell::RefCell::new(pieces),
        })
    }

    /// How Polars parses this CSV file: the same for the scan of the whole file and for
    /// each batch.
    fn csv_options(&self, opts: &InputOptions) -> CsvParseOptions {
        let nulls = (!opts.null_values.is_empty())
            .then(|| NullValues::AllColumns(opts.null_values.iter().map(|s| s.into()).collect()));
        CsvParseOptions::default()
            .with_separator(
                opts.delimiter
                    .unwrap_or(if self.tsv { b'\t' } else { b',' }),
            )
            .with_quote_char(Some(opts.quote.unwrap_or(b'"')))
            .with_null_values(nulls)
    }

    /// Polars' own message, made specific where we can: JSON syntax errors get their line.
    pub fn polars_error(&self, e: PolarsError, opts: &InputOptions) -> Error {
        let text = e.to_string();
        // A read that failed says why itself; parsing the file again would only find what
        // it holds now.
        let io = matches!(e, PolarsError::IO { .. });
        if matches!(self.format, Format::Json | Format::Ndjson) && !io {
            if let Some(located) = self.locate_json_error(opts) {
                return Error::source(&self.path, located);
            }
        }
        if text.to_lowercase().contains("utf-8") || text.to_lowercase().contains("utf8") {
            return Error::source(&self.path, utf8_hint(opts));
        }
        Error::source(&self.path, text)
    }

    /// Re-reads a JSON/NDJSON file that Polars could not parse, to name the bad line.
    fn locate_json_error(&self, opts: &InputOptions) -> Option<String> {
        let text = self.read_text(opts.encoding).ok()?;
        if std::str::from_utf8(&text).is_err() {
            return Some(utf8_hint(opts));
        }
        let located = |line: usize, e: serde_json::Error| {
            format!(
                "line {line}, column {}: invalid JSON: {}",
                e.column(),
                strip_position(&e.to_string())
            )
        };
        match self.format {
            Format::Json => serde_json::from_slice::<serde_json::Value>(&text)
                .err()
                .map(|e| located(e.line(), e)),
            _ => text
                .split(|&b| b == b'\n')
                .enumerate()
                .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
                .find_map(|(i, l)| {
                    serde_json::from_slice::<serde_json::Value>(l)
                        .err()
                        .map(|e| located(i + 1, e))
                }),
        }
    }

    fn pl_path(&self) -> Result<PlRefPath> {
        PlRefPath::try_from_path(&self.path).map_err(|e| Error::source(&self.path, e))
    }
}

fn utf8_hint(opts: &InputOptions) -> String {
    match opts.encoding {
        Encoding::Utf8 => "invalid UTF-8; if the file is Latin-1 or Windows-1252, set `encoding = \"latin-1\"` or `\"windows-1252\"` under [input]".to_owned(),
        _ => "invalid text after decoding".to_owned(),
    }
}

/// serde_json appends " at line L column C"; we say the line ourselves.
fn strip_position(msg: &str) -> &str {
    msg.rfind(" at line ").map_or(msg, |i| &msg[..i])
}

/// A source scanned for a mapping ([`Opened::scan_for`]).
pub struct Scan {
    pub lf: LazyFrame,
    /// The source's column names.
    pub names: Vec<String>,
    /// The CSV columns the mapping reads, which are read as text, whose inferred type is
    /// not text: conditions and filters see them with that type.
    pub text_columns: Vec<(String, DataType)>,
}

/// The user ID column must hold text or whole numbers: a float would be written as `1.0` or
/// `1e+20`, a struct or list as one merged value, a date as whatever its text happens to be.
fn check_user_id_type(schema: &Schema, column: &str) -> Result<(), crate::error::Problem> {
    let Some(dtype) = column_type(schema, column) else {
        return Ok(());
    };
    let fits = matches!(dtype, DataType::String | DataType::Null)
        || dtype.is_integer()
        || dtype.is_categorical()
        || dtype.is_enum();
    if fits {
        return Ok(());
    }
    Err(crate::error::Problem::new(
        "user_id.column",
        format!(
            "column `{column}` holds {dtype} values; a user ID must be text or a whole number: cast it to text (or integers) in the export"
        ),
    ))
}

/// The type of a column, or of a field inside a struct column (`profile.id`).
fn column_type(schema: &Schema, name: &str) -> Option<DataType> {
    if let Some(d) = schema.get(name) {
        return Some(d.clone());
    }
    let mut parts = name.split('.');
    let mut dtype = schema.get(parts.next()?)?.clone();
    for field in parts {
        let DataType::Struct(fields) = dtype else {
            return None;
        };
        dtype = fields.iter().find(|f| f.name() == field)?.dtype().clone();
    }
    Some(dtype)
}

/// A source opened and checked by [`Source::open`], ready to scan.
pub struct Opened<'s> {
    source: &'s Source,
    opts: &'s InputOptions,
    /// The decoded text, when it could not be read from the file as it is, held the way
    /// Polars scans it: one shared buffer, not a copy per scan.
    text: Option<ScanSources>,
    /// For CSV and NDJSON: the pieces batches are made of (taken by `batches`).
    pieces: std::cell::RefCell<Option<TextPieces>>,
}

impl Opened<'_> {
    /// A lazy scan of the whole source with the mapping's input options applied. In CSV
    /// files the `text_columns` are read as text whatever they look like.
    fn scan(&self, text_columns: &[String]) -> Result<LazyFrame> {
        let sources = match &self.text {
            Some(text) => text.clone(),
            None => ScanSources::Paths(vec![self.source.pl_path()?].into()),
        };
        self.scan_sources(sources, text_columns)
    }

    /// The first `rows` rows (`aam-etl init`): CSV columns as text, others with their type.
    pub fn sample(&self, rows: usize) -> Result<DataFrame> {
        let err = |e| self.source.polars_error(e, self.opts);
        if self.source.format != Format::Csv {
            return self.scan(&[])?.limit(rows as u32).collect().map_err(err);
        }
        let schema = self.scan(&[])?.collect_schema().map_err(err)?;
        let text: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
        // Polars reads a blank line as a row of nulls; conversion never sees one (the record
        // check leaves blank lines out), and neither should the sample.
        let filled: Vec<Expr> = text.iter().map(|n| col(n.as_str()).is_not_null()).collect();
        let not_blank = any_horizontal(filled).map_err(err)?;
        self.scan(&text)?
            .filter(not_blank)
            .limit(rows as u32)
            .collect()
            .map_err(err)
    }

    /// A scan of the whole source for `mapping`, after checking that the source has every
    /// column the mapping names and that the user ID column is text or whole numbers. In
    /// CSV files the columns the mapping reads are read as text (IDs keep leading zeros, bad
    /// cells become counted rejects rather than parse failures); conditions and filters see
    /// every column with its inferred type (see [`Scan::text_columns`]).
    pub fn scan_for(&self, mapping: &Mapping) -> Result<Scan> {
        let mut lf = self.scan(&[])?;
        let schema = lf
            .collect_schema()
            .map_err(|e| self.source.polars_error(e, self.opts))?;
        let names: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
        let columns_error = |problems| Error::Columns {
            path: self.source.path.clone(),
            problems,
        };
        mapping.check_columns(&names).map_err(columns_error)?;
        for c in std::iter::once(&mapping.user_id.column).chain(&mapping.user_id.fallback) {
            check_user_id_type(&schema, c).map_err(|p| columns_error(vec![p]))?;
        }
        // A list holds no one value to order rows by.
        for (key, c) in &mapping.latest_by {
            if let Some(dtype @ DataType::List(_)) = column_type(&schema, c) {
                return Err(columns_error(vec![crate::error::Problem::new(
                    key,
                    format!("column `{c}` holds {dtype} values; latest_by needs one value per row, such as a date or a number"),
                )]));
            }
        }
        let mut text_columns = Vec::new();
        if self.source.format == Format::Csv {
            // Once each: two rules may read one column.
            let mut text: Vec<String> = Vec::new();
            for (_, c) in mapping.columns() {
                if !text.iter().any(|t| t == c) {
                    text.push(c.to_owned());
                }
            }
            text_columns = text
                .iter()
                .filter_map(|c| Some((c.clone(), schema.get(c.as_str())?.clone())))
                .filter(|(_, dtype)| *dtype != DataType::String)
                .collect();
            lf = self.scan(&text)?;
        }
        Ok(Scan {
            lf,
            names,
            text_columns,
        })
    }

    fn scan_sources(&self, sources: ScanSources, text_columns: &[String]) -> Result<LazyFrame> {
        let (source, opts) = (self.source, self.opts);
        let err = |e: PolarsError| source.polars_error(e, opts);
        match source.format {
            Format::Csv => {
                let overwrite = (!text_columns.is_empty()).then(|| {
                    Arc::new(Schema::from_iter(
                        text_columns
                            .iter()
                            .map(|c| Field::new(c.as_str().into(), DataType::String)),
                    ))
                });
                let parse = source.csv_options(opts);
                LazyCsvReader::new_with_sources(sources)
                    .with_has_header(opts.has_header)
                    .map_parse_options(|_| parse.clone())
                    .with_dtype_overwrite(overwrite)
                    .finish()
                    .map_err(err)
            }
            Format::Ndjson => LazyJsonLineReader::new_with_sources(sources)
                .finish()
                .map_err(err),
            Format::Json => {
                let text = self.text().unwrap_or_default();
                JsonReader::new(std::io::Cursor::new(text))
                    .with_json_format(JsonFormat::Json)
                    .finish()
                    .map(IntoLazy::lazy)
                    .map_err(err)
            }
            Format::Parquet => LazyFrame::scan_parquet_sources(
                sources,
                ScanArgsParquet {
                    hive_options: HiveOptions::new_disabled(),
                    ..Default::default()
                },
            )
            .map_err(err),
            Format::Ipc => {
                LazyFrame::scan_ipc_sources(sources, Default::default(), Default::default())
                    .map_err(err)
            }
        }
    }

    fn text(&self) -> Option<&[u8]> {
        match &self.text {
            Some(ScanSources::Buffers(b)) => b.first().map(|b| &b[..]),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failed read says why; an NDJSON file that Polars could not parse is read again to
    /// name its bad line.
    #[test]
    fn a_read_error_is_not_taken_for_bad_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.ndjson");
        std::fs::write(&path, "{\"a\":1}\n{\"a\":").unwrap();
        let source = Source::detect(path, None).unwrap();
        let opts = crate::testing::input_options();
        let io = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the file ended");
        let e = source
            .polars_error(PolarsError::from(io), &opts)
            .to_string();
        assert!(e.ends_with("in.ndjson: the file ended"), "{e}");
        let parse = polars_err!(ComputeError: "error parsing ndjson");
        let e = source.polars_error(parse, &opts).to_string();
        assert!(
            e.contains("in.ndjson: line 2, column 5: invalid JSON"),
            "{e}"
        );
    }

    #[test]
    fn formats_from_extensions() {
        let f = |name: &str| Source::detect(PathBuf::from(name), None).map(|s| (s.format, s.gzip));
        assert_eq!(f("a.csv").unwrap(), (Format::Csv, false));
        assert_eq!(f("a.CSV.gz").unwrap(), (Format::Csv, true));
        assert_eq!(f("a.parquet").unwrap(), (Format::Parquet, false));
        assert_eq!(f("a.jsonl").unwrap(), (Format::Ndjson, false));
        assert_eq!(f("a.ndjson.gz").unwrap(), (Format::Ndjson, true));
        assert_eq!(f("a.feather").unwrap(), (Format::Ipc, false));
        assert_eq!(f("a.json").unwrap(), (Format::Json, false));
        assert!(f("a.xlsx")
            .unwrap_err()
            .to_string()
            .contains("cannot tell the format"));
        assert!(f("a.parquet.gz").is_err());
        let forced = Source::detect(PathBuf::from("export.dat"), Some(Format::Csv)).unwrap();
        assert_eq!(forced.format, Format::Csv);
    }
}
