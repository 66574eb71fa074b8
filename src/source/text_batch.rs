//! A batch of CSV or NDJSON text as a lazy frame whose scan parses only the columns the
//! query uses, piece by piece on all cores. How a piece becomes columns is the format's
//! [`PieceParser`] (csv_batch.rs, ndjson_batch.rs).

use polars::prelude::*;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// How the pieces of one source's batches are parsed.
pub(super) trait PieceParser: Send + Sync + 'static {
    /// The scan's schema: every column of the source, in order, as the scan of the whole
    /// source types them.
    fn output(&self) -> &SchemaRef;
    /// The schema `parse` reads with (CSV reads some columns as text, then casts them).
    fn reader(&self) -> &SchemaRef {
        self.output()
    }
    /// The projected columns of one piece of whole records.
    fn parse(&self, piece: &[u8], projection: &Projection) -> PolarsResult<DataFrame>;
    /// The stacked pieces, as `output` types them.
    fn finish(&self, _df: &mut DataFrame) -> PolarsResult<()> {
        Ok(())
    }
}

/// The columns a query reads: sorted indices into the parser's `reader` schema, and those
/// columns as a schema (made once per batch, not per piece).
pub(super) struct Projection {
    pub(super) indices: Vec<usize>,
    pub(super) schema: Schema,
}

impl Projection {
    pub(super) fn new(reader: &Schema, mut indices: Vec<usize>) -> Projection {
        indices.sort_unstable();
        indices.dedup();
        let schema = indices
            .iter()
            .filter_map(|&i| reader.get_at_index(i))
            .map(|(name, dtype)| Field::new(name.clone(), dtype.clone()))
            .collect();
        Projection { indices, schema }
    }
}

/// One batch: whole records (no CSV header), and its pieces (ranges of `bytes`, each from a
/// record's start to a record's end). Its bytes go back to `pool` when it is dropped.
pub(super) struct TextBatch {
    pub(super) parser: Arc<dyn PieceParser>,
    pub(super) bytes: Vec<u8>,
    pub(super) pieces: Vec<Range<usize>>,
    pub(super) pool: BufferPool,
}

impl Drop for TextBatch {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.bytes));
    }
}

/// The byte buffers of one source's batches, reused from batch to batch. A new buffer for
/// each batch (tens of MB, which the allocator maps fresh) cost a page fault for every 4 KB
/// the file was read into, and unmapping it after: about a third of the run's system time.
/// A kept buffer stays in memory while the reading thread waits for the converters, which
/// is why batches are smaller than before (`Tuning::batch_bytes`). A batch is dropped
/// before the next is read, so the pool holds one buffer; it is freed with the source's
/// batches.
#[derive(Clone, Default)]
pub(super) struct BufferPool(Arc<Mutex<Vec<Vec<u8>>>>);

impl BufferPool {
    /// Kept at most: more would be memory no batch uses.
    const KEEP: usize = 2;

    /// An empty buffer with room for `len` bytes.
    pub(super) fn take(&self, len: usize) -> Vec<u8> {
        let mut buf = self.lock().pop().unwrap_or_default();
        buf.clear();
        buf.reserve(len);
        buf
    }

    fn give(&self, buf: Vec<u8>) {
        let mut pool = self.lock();
        if pool.len() < Self::KEEP && buf.capacity() > 0 {
            pool.push(buf);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        // A batch that panicked while holding the lock left the list whole.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl TextBatch {
    /// The batch as a lazy frame whose scan reads only the columns the query uses.
    pub(super) fn lazy(self) -> PolarsResult<LazyFrame> {
        LazyFrame::anonymous_scan(Arc::new(self), Default::default())
    }

    /// Every piece, parsed on as many threads as there are cores, in order.
    fn parse_all(&self, projection: &Projection) -> PolarsResult<Vec<DataFrame>> {
        let pieces: Vec<&[u8]> = self
            .pieces
            .iter()
            .map(|p| &self.bytes[p.clone()])
            .filter(|p| !p.is_empty())
            .collect();
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
                            done.push((i, self.parser.parse(piece, projection)));
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

impl AnonymousScan for TextBatch {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn schema(&self, _infer_schema_length: Option<usize>) -> PolarsResult<SchemaRef> {
        Ok(self.parser.output().clone())
    }

    fn allows_projection_pushdown(&self) -> bool {
        true
    }

    fn scan(&self, args: AnonymousScanArgs) -> PolarsResult<DataFrame> {
        let (output, reader) = (self.parser.output(), self.parser.reader());
        let names: Vec<PlSmallStr> = match &args.with_columns {
            Some(names) => names.to_vec(),
            None => output.iter_names().cloned().collect(),
        };
        // A query that reads no column still needs the row count: read the first column.
        let wanted = if names.is_empty() {
            vec![0]
        } else {
            names
                .iter()
                .map(|n| {
                    reader.index_of(n).ok_or_else(
                        || polars_err!(ColumnNotFound: "{n} is not a column of the file"),
                    )
                })
                .collect::<PolarsResult<Vec<usize>>>()?
        };
        let projection = Projection::new(reader, wanted);
        let mut df = match self.parse_all(&projection)? {
            parts if parts.is_empty() => DataFrame::empty_with_schema(&projection.schema),
            parts => {
                let mut parts = parts.into_iter();
                let mut df = parts.next().expect("not empty");
                for part in parts {
                    df.vstack_mut_owned(part)?;
                }
                df
            }
        };
        self.parser.finish(&mut df)?;
        if names.is_empty() {
            return Ok(DataFrame::empty_with_height(df.height()));
        }
        df.select(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dropped batch's buffer is the next batch's, emptied; no more than `KEEP` are kept.
    #[test]
    fn batch_buffers_are_reused() {
        let pool = BufferPool::default();
        let mut bytes = pool.take(64);
        bytes.extend_from_slice(b"{\"a\":1}\n");
        let at = bytes.as_ptr();
        let batch = TextBatch {
            parser: Arc::new(super::super::ndjson_batch::NdjsonParser {
                schema: Arc::new(Schema::default()),
            }),
            bytes,
            pieces: std::iter::once(0..8).collect(),
            pool: pool.clone(),
        };
        drop(batch);
        let again = pool.take(32);
        assert_eq!((again.as_ptr(), again.len()), (at, 0));
        assert!(again.capacity() >= 64);
        for _ in 0..4 {
            pool.give(vec![0; 8]);
        }
        assert_eq!(pool.lock().len(), BufferPool::KEEP);
    }
}
