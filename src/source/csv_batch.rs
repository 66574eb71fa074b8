//! A CSV batch parsed by Polars' own chunk parser, piece by piece on all cores. The record
//! check has already found where records start, so Polars' scan is not used: it first
//! finds line starts in every buffer with a quote-aware count, byte by byte on stable Rust,
//! which was the largest single cost of reading CSV (about 14% of a run's CPU).

use polars::io::csv::read::_csv_read_internal::{
    cast_columns, prepare_csv_schema, read_chunk, NullValuesCompiled,
};
use polars::prelude::*;
use std::ops::Range;
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
        Ok(CsvParser {
            output,
            reader,
            to_cast,
            options,
            nulls,
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
}

/// One batch: whole records without the header, and its pieces (ranges of `bytes`, each
/// from a record's start to a record's end; blank lines fall between them).
pub(super) struct CsvBatch {
    pub(super) parser: Arc<CsvParser>,
    pub(super) bytes: Vec<u8>,
    pub(super) pieces: Vec<Range<usize>>,
}

impl CsvBatch {
    /// The batch as a lazy frame whose scan reads only the columns the query uses.
    pub(super) fn lazy(self) -> PolarsResult<LazyFrame> {
        LazyFrame::anonymous_scan(Arc::new(self), Default::default())
    }

    fn pieces(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.pieces
            .iter()
            .map(|p| &self.bytes[p.clone()])
            .filter(|p| !p.is_empty())
    }

    /// Columns `projection` (sorted indices into the reader schema) of one piece.
    fn parse(&self, piece: &[u8], projection: &[usize]) -> PolarsResult<DataFrame> {
        let p = &self.parser;
        let df = read_chunk(
            piece,
            &p.options,
            &p.reader,
            false,
            projection,
            0,
            p.rows_in(piece.len()),
            p.nulls.as_ref(),
            usize::MAX,
            piece.len(),
            Some(0),
        )?;
        p.parsed[0].fetch_add(piece.len(), Ordering::Relaxed);
        p.parsed[1].fetch_add(df.height(), Ordering::Relaxed);
        Ok(df)
    }

    /// Every piece, parsed on as many threads as there are cores, in order.
    fn parse_all(&self, projection: &[usize]) -> PolarsResult<Vec<DataFrame>> {
        let pieces: Vec<&[u8]> = self.pieces().collect();
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(pieces.len());
        let next = AtomicUsize::new(0);
        let mut parsed: Vec<(usize, PolarsResult<DataFrame>)> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(piece) = pieces.get(i) else {
                                return done;
                            };
                            done.push((i, self.parse(piece, projection)));
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("a parsing thread does not panic"))
                .collect()
        });
        parsed.sort_unstable_by_key(|(i, _)| *i);
        parsed.into_iter().map(|(_, df)| df).collect()
    }
}

impl AnonymousScan for CsvBatch {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn schema(&self, _infer_schema_length: Option<usize>) -> PolarsResult<SchemaRef> {
        Ok(self.parser.output.clone())
    }

    fn allows_projection_pushdown(&self) -> bool {
        true
    }

    fn scan(&self, args: AnonymousScanArgs) -> PolarsResult<DataFrame> {
        let p = &self.parser;
        let names: Vec<PlSmallStr> = match &args.with_columns {
            Some(names) => names.to_vec(),
            None => p.output.iter_names().cloned().collect(),
        };
        // A query that reads no column still needs the row count: read the first column.
        let wanted = if names.is_empty() {
            vec![0]
        } else {
            names
                .iter()
                .map(|n| {
                    p.reader.index_of(n).ok_or_else(
                        || polars_err!(ColumnNotFound: "{n} is not a column of the file"),
                    )
                })
                .collect::<PolarsResult<Vec<usize>>>()?
        };
        let mut projection = wanted;
        projection.sort_unstable();
        projection.dedup();
        let mut df = match self.parse_all(&projection)? {
            parts if parts.is_empty() => DataFrame::empty_with_schema(
                &projection
                    .iter()
                    .filter_map(|&i| p.reader.get_at_index(i))
                    .map(|(name, dtype)| Field::new(name.clone(), dtype.clone()))
                    .collect::<Schema>(),
            ),
            parts => {
                let mut parts = parts.into_iter();
                let mut df = parts.next().expect("not empty");
                for part in parts {
                    df.vstack_mut_owned(part)?;
                }
                df
            }
        };
        cast_columns(&mut df, &p.to_cast, false, false)?;
        if names.is_empty() {
            return Ok(DataFrame::empty_with_height(df.height()));
        }
        df.select(names)
    }
}
