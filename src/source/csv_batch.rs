//! CSV pieces parsed by Polars' own chunk parser. The record check has already found where
//! records start, so Polars' scan is not used: it first finds line starts in every buffer
//! with a quote-aware count, byte by byte on stable Rust, which was the largest single cost
//! of reading CSV (about 14% of a run's CPU).

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

impl PieceParser for CsvParser {
    fn output(&self) -> &SchemaRef {
        &self.output
    }

    fn reader(&self) -> &SchemaRef {
        &self.reader
    }

    fn parse(&self, piece: &[u8], projection: &Projection) -> PolarsResult<DataFrame> {
        let df = read_chunk(
            piece,
            &self.options,
            &self.reader,
            false,
            &projection.indices,
            0,
            self.rows_in(piece.len()),
            self.nulls.as_ref(),
            usize::MAX,
            piece.len(),
            Some(0),
        )?;
        self.parsed[0].fetch_add(piece.len(), Ordering::Relaxed);
        self.parsed[1].fetch_add(df.height(), Ordering::Relaxed);
        Ok(df)
    }

    fn finish(&self, df: &mut DataFrame) -> PolarsResult<()> {
        cast_columns(df, &self.to_cast, false, false)
    }
}
