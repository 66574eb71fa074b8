//! Cutting a source into batches of whole records, so that only one batch is in memory at
//! a time: row slices for Parquet and IPC, byte ranges for CSV (pieces found by the record
//! check) and NDJSON (at line ends). CSV and NDJSON batches are [`TextBatch`]es.

use super::csv_batch::CsvParser;
use super::ndjson_batch::NdjsonParser;
use super::text_batch::{BufferPool, PieceParser, Text, TextBatch};
use super::{Opened, Source};
use crate::error::{Error, Result};
use crate::mapping::Format;
use polars::prelude::*;
use std::io::Read;
use std::ops::Range;
use std::sync::mpsc::Receiver;

/// Pieces of a text source, in order, each a byte range of whole records (without the CSV
/// header); a batch is the pieces that together span at least `batch_bytes` (or the rest).
/// Pieces still being found (a CSV checked on another thread) arrive through `more`.
#[derive(Debug)]
pub(super) struct TextPieces {
    pub(super) pieces: Vec<Range<u64>>,
    /// The length of the text: where the last batch ends.
    pub(super) len: u64,
    pub(super) batch_bytes: u64,
    pub(super) more: Option<Receiver<Result<Range<u64>>>>,
}

impl TextPieces {
    /// The pieces of a CSV file checked on another thread, arriving through `more`. A CSV
    /// batch is half `batch_bytes`: the columns rules read are read as text, which in memory
    /// (a 16-byte view per cell, and the text itself when longer than 12 bytes) outweighs
    /// the same cells in the file. Its pieces are parsed in parallel.
    pub(super) fn csv(
        len: u64,
        batch_bytes: u64,
        more: Receiver<Result<Range<u64>>>,
    ) -> TextPieces {
        TextPieces {
            pieces: Vec::new(),
            len,
            batch_bytes: batch_bytes / 2,
            more: Some(more),
        }
    }

    /// How long pieces are (the CSV record check's, NDJSON's at line ends): 16 to a batch,
    /// so that every core parses some of each batch.
    pub(super) fn piece_bytes(&self) -> u64 {
        (self.batch_bytes / 16).max(1)
    }

    /// Piece `i`, waiting for it if it is still being found; `None` past the end.
    pub(super) fn get(&mut self, i: usize) -> Result<Option<Range<u64>>> {
        while self.pieces.len() <= i {
            let Some(rx) = &self.more else {
                return Ok(None);
            };
            match rx.recv() {
                Ok(piece) => self.pieces.push(piece?),
                Err(_) => self.more = None,
            }
        }
        Ok(Some(self.pieces[i].clone()))
    }

    /// The batch whose first piece is piece `first`: its pieces (at least one), or `None`
    /// past the end.
    fn batch(&mut self, first: usize) -> Result<Option<&[Range<u64>]>> {
        let Some(start) = self.get(first)? else {
            return Ok(None);
        };
        let mut last = first;
        while self.pieces[last].end - start.start < self.batch_bytes.max(1)
            && self.get(last + 1)?.is_some()
        {
            last += 1;
        }
        Ok(Some(&self.pieces[first..=last]))
    }
}

/// The first line end at or after `at`, as the offset just past it.
fn next_line_in_file(file: &mut std::fs::File, at: u64) -> std::io::Result<Option<u64>> {
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::Start(at))?;
    let mut buf = [0u8; 8 << 10];
    let mut pos = at;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        if let Some(i) = buf[..n].iter().position(|&b| b == b'\n') {
            return Ok(Some(pos + i as u64 + 1));
        }
        pos += n as u64;
    }
}

impl Source {
    /// NDJSON pieces: cut at the first line end after each multiple of the piece size.
    pub(super) fn line_pieces(
        &self,
        text: Option<&[u8]>,
        len: u64,
        batch_bytes: u64,
    ) -> Result<TextPieces> {
        let mut file = None;
        let mut next_line = |at: u64| -> std::io::Result<Option<u64>> {
            match text {
                Some(t) => Ok(t[at as usize..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map(|i| at + i as u64 + 1)),
                None => {
                    let f = match &mut file {
                        Some(f) => f,
                        None => file.insert(std::fs::File::open(&self.path)?),
                    };
                    next_line_in_file(f, at)
                }
            }
        };
        let mut cut = TextPieces {
            pieces: Vec::new(),
            len,
            batch_bytes,
            more: None,
        };
        let step = cut.piece_bytes();
        let mut start = 0;
        while start + step < len {
            match next_line(start + step).map_err(|e| Error::io(&self.path, e))? {
                Some(end) if end < len => {
                    cut.pieces.push(start..end);
                    start = end;
                }
                _ => break,
            }
        }
        if start < len {
            cut.pieces.push(start..len);
        }
        Ok(cut)
    }
}

impl Opened<'_> {
    /// The source as lazy frames of whole records, in order, each about `batch_rows` rows
    /// (Parquet, IPC) or the `batch_bytes` given to `open` (CSV, NDJSON), all with the
    /// schema of `whole`, the caller's [`scan`](Self::scan) of the whole source. Only one
    /// batch needs to be in memory at a time.
    pub fn batches(&self, mut whole: LazyFrame, batch_rows: u64) -> Result<Batches<'_>> {
        let (source, opts) = (self.source, self.opts);
        let err = |e: PolarsError| source.polars_error(e, opts);
        let plan = match (self.pieces.take(), source.format) {
            (Some(pieces), format) => {
                let schema = whole.collect_schema().map_err(err)?;
                let parser: Arc<dyn PieceParser> = match format {
                    Format::Csv => {
                        Arc::new(CsvParser::new(schema, source.csv_options(opts)).map_err(err)?)
                    }
                    Format::Ndjson => Arc::new(NdjsonParser { schema }),
                    _ => unreachable!("only CSV and NDJSON sources are cut into pieces"),
                };
                BatchPlan::Text {
                    pieces,
                    first: 0,
                    parser,
                }
            }
            (None, Format::Parquet | Format::Ipc) => {
                let count = row_count(&whole).map_err(err)?;
                // Without the row count only the first batch would be read: never silently.
                let total = count.ok_or_else(|| {
                    Error::source(&source.path, "Polars gave no row count for the file")
                })?;
                BatchPlan::Rows {
                    total,
                    step: batch_rows.max(1),
                    offset: 0,
                }
            }
            (None, _) => BatchPlan::Whole,
        };
        Ok(Batches {
            opened: self,
            whole,
            plan,
            next: 0,
            read_to: 0,
            buffers: BufferPool::default(),
        })
    }
}

enum BatchPlan {
    /// Read whole (JSON arrays).
    Whole,
    /// Row slices (Parquet, IPC: the readers skip to a row cheaply), `step` rows from
    /// `offset` next.
    Rows { total: u64, step: u64, offset: u64 },
    /// Byte ranges of whole records (CSV, NDJSON), each parsed by `parser` (see
    /// [`TextBatch`]); the next batch starts at piece `first`.
    Text {
        pieces: TextPieces,
        first: usize,
        parser: Arc<dyn PieceParser>,
    },
}

/// See [`Opened::batches`].
pub struct Batches<'o> {
    opened: &'o Opened<'o>,
    whole: LazyFrame,
    plan: BatchPlan,
    next: usize,
    /// For text sources: where the batches given so far end.
    read_to: u64,
    /// For text sources: the batches' buffers, reused.
    buffers: BufferPool,
}

impl Batches<'_> {
    /// The share of the source in the batches given so far, for a progress display.
    pub fn fraction(&self) -> f64 {
        let f = match &self.plan {
            BatchPlan::Whole => (self.next > 0) as u8 as f64,
            BatchPlan::Rows { total: 0, .. } => 1.0,
            BatchPlan::Rows { total, offset, .. } => *offset as f64 / *total as f64,
            BatchPlan::Text { pieces, .. } if pieces.len == 0 => 1.0,
            BatchPlan::Text { pieces, .. } => self.read_to as f64 / pieces.len as f64,
        };
        f.min(1.0)
    }

    /// Told that a batch of `rows` rows took `bytes` in memory: later row slices are cut
    /// so that one takes about `target` bytes (wide rows, such as long text columns, make
    /// fewer rows per batch), never more rows than asked for at first.
    pub fn fit(&mut self, rows: usize, bytes: usize, target: u64) {
        if let BatchPlan::Rows { step, .. } = &mut self.plan {
            if rows > 0 && bytes as u64 > target {
                let fitting = (rows as u64 * target / bytes as u64).max(1);
                *step = (*step).min(fitting);
            }
        }
    }
}

impl Iterator for Batches<'_> {
    type Item = Result<LazyFrame>;

    fn next(&mut self) -> Option<Result<LazyFrame>> {
        let i = self.next;
        self.next += 1;
        match &mut self.plan {
            BatchPlan::Whole => (i == 0).then(|| Ok(self.whole.clone())),
            BatchPlan::Rows {
                total,
                step,
                offset,
            } => {
                let at = *offset;
                *offset += *step;
                // An empty file still yields one (empty) batch: its columns get checked.
                (at < *total || i == 0).then(|| {
                    Ok(self
                        .whole
                        .clone()
                        .slice(at as i64, (*step).min(IdxSize::MAX as u64) as IdxSize))
                })
            }
            BatchPlan::Text {
                pieces,
                first,
                parser,
            } => {
                let batch = match pieces.batch(*first) {
                    Ok(Some(batch)) => batch.to_vec(),
                    Ok(None) => return None,
                    Err(e) => return Some(Err(e)),
                };
                *first += batch.len();
                // Its own handle: `text_batch` borrows all of `self`, the plan with it.
                let parser = parser.clone();
                self.read_to = batch[batch.len() - 1].end;
                Some(self.text_batch(parser, &batch))
            }
        }
    }
}

impl Batches<'_> {
    /// The records of `pieces` (byte ranges, in order).
    fn text_batch(&self, parser: Arc<dyn PieceParser>, pieces: &[Range<u64>]) -> Result<LazyFrame> {
        let (text, pieces) = match self.opened.text() {
            Some(t) => {
                let (start, end) = (pieces[0].start, pieces[pieces.len() - 1].end);
                let mut bytes = self.buffers.take((end - start) as usize);
                bytes.extend_from_slice(&t[start as usize..end as usize]);
                let pieces = pieces.iter().map(|p| p.start - start..p.end - start);
                (Text::Bytes(bytes), pieces.collect())
            }
            None => (Text::File(self.opened.source.path.clone()), pieces.to_vec()),
        };
        let batch = TextBatch {
            parser,
            text,
            pieces,
            pool: self.buffers.clone(),
        };
        let (source, opts) = (self.opened.source, self.opened.opts);
        batch.lazy().map_err(|e| source.polars_error(e, opts))
    }
}

/// The rows of a lazy frame (Parquet and IPC know it from their metadata); `None` when Polars
/// gives no count.
pub fn row_count(lf: &LazyFrame) -> PolarsResult<Option<u64>> {
    lf.clone()
        .select([len()])
        .collect()?
        .column("len")
        .and_then(|c| c.get(0).map(|v| v.extract::<u64>()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::InputOptions;

    /// CSV batches, cut into pieces of whole records by the record check and parsed piece
    /// by piece, hold exactly what Polars reads from the whole file: quoted separators,
    /// line breaks and quotes inside fields, CRLF, empty cells, a null marker, numbers, and
    /// a last line without a line break. Blank lines are not rows: the batches of a file
    /// with blank lines hold what Polars reads from the same file without them.
    #[test]
    fn csv_pieces_read_like_the_whole_file() {
        let mut csv = String::from("id,n,x,note\r\n");
        let mut blanks = Vec::new();
        for i in 0..60 {
            let note = match i % 5 {
                0 => "\"a, b\"".to_string(),
                1 => "\"two\nlines\"".to_string(),
                2 => "\"say \"\"hi\"\"\"".to_string(),
                3 => String::new(),
                _ => "NA".to_string(),
            };
            let n = if i % 7 == 0 {
                String::new()
            } else {
                i.to_string()
            };
            csv.push_str(&format!("u{i},{n},{}.5,{note}\r\n", i % 3));
            if i % 11 == 0 {
                blanks.push(csv.len());
            }
        }
        csv.push_str("last,1,2.5,end");
        let mut blank = csv.clone();
        for (k, at) in blanks.iter().enumerate().rev() {
            blank.insert_str(*at, ["\r\n", "\n\n\r\n", "\r\n\r\n"][k % 3]);
        }
        blank.insert_str("id,n,x,note\r\n".len(), "\r\n\r\n");
        blank.push_str("\r\n\r\n");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        std::fs::write(&path, &blank).unwrap();
        let clean = dir.path().join("clean.csv");
        std::fs::write(&clean, &csv).unwrap();
        let source = Source::detect(path, None).unwrap();
        let opts = InputOptions {
            null_values: vec!["NA".into()],
            ..crate::testing::input_options()
        };
        let whole = {
            let clean = Source::detect(clean, None).unwrap();
            let opened = clean.open(&opts, 1 << 20).unwrap();
            opened.scan(&[]).unwrap().collect().unwrap()
        };
        assert_eq!(whole.height(), 61);
        assert_eq!(whole.column("n").unwrap().dtype(), &DataType::Int64);
        assert_eq!(whole.column("note").unwrap().null_count(), 24);
        // Every batch through `query`, stacked.
        let read = |batch_bytes: u64, query: &dyn Fn(LazyFrame) -> LazyFrame| {
            let opened = source.open(&opts, batch_bytes).unwrap();
            let mut batches = opened.batches(opened.scan(&[]).unwrap(), 1).unwrap();
            let mut first = batches
                .next()
                .unwrap()
                .map(query)
                .unwrap()
                .collect()
                .unwrap();
            let mut count = 1;
            for batch in batches {
                first
                    .vstack_mut_owned(batch.map(query).unwrap().collect().unwrap())
                    .unwrap();
                count += 1;
            }
            assert!(count > 5, "{count} batches of {batch_bytes} bytes");
            first
        };
        let note = whole.select(["note"]).unwrap();
        // Polars hands the scan of a batch the columns a query uses, and no others.
        let opened = source.open(&opts, 400).unwrap();
        let mut batches = opened.batches(opened.scan(&[]).unwrap(), 1).unwrap();
        let batch = batches.next().unwrap().unwrap();
        let plan = batch.select([col("note")]).describe_optimized_plan();
        assert!(plan.unwrap().contains("PROJECT 1/4 COLUMNS"));
        // 400: batches of 200 bytes, pieces of 12 (each one record); 1: a record a batch.
        for batch_bytes in [400, 1] {
            let all = read(batch_bytes, &|lf| lf);
            assert!(all.equals_missing(&whole), "{batch_bytes}: {all}\n{whole}");
            // A query of one column gets all of it, in order.
            let one = read(batch_bytes, &|lf| lf.select([col("note")]));
            assert!(one.equals_missing(&note), "{batch_bytes}: {one}");
        }
    }
}
