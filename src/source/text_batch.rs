//! A batch of CSV or NDJSON text as a lazy frame whose scan parses only the columns the
//! query uses, piece by piece on all cores, each piece of a file read by the thread that
//! parses it. How a piece becomes columns is the format's [`PieceParser`] (csv_batch.rs,
//! ndjson_batch.rs).

use polars::prelude::*;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};
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

/// Where a batch's records are.
pub(super) enum Text {
    /// In memory (a decoded source): the batch's bytes, the pieces' ranges relative to them.
    Bytes(Vec<u8>),
    /// In the file, the pieces' ranges its offsets: each parsing thread reads the pieces it
    /// parses into a buffer of its own, so that a piece is parsed while it is still in the
    /// cache. (Reading a whole batch on one thread first cost the kernel's copy out of the
    /// page cache about three times what the same copy costs apart: the batch, larger than
    /// the cache, was written to memory and read back by the parsers.)
    File(PathBuf),
}

/// One batch: whole records (no CSV header), and its pieces (ranges of the text, each from
/// a record's start to a record's end). Its buffers go back to `pool` when it is dropped.
pub(super) struct TextBatch {
    pub(super) parser: Arc<dyn PieceParser>,
    pub(super) text: Text,
    pub(super) pieces: Vec<Range<u64>>,
    pub(super) pool: BufferPool,
}

impl Drop for TextBatch {
    fn drop(&mut self) {
        if let Text::Bytes(bytes) = &mut self.text {
            self.pool.give(std::mem::take(bytes));
        }
    }
}

/// The byte buffers of one source's batches and pieces, reused from batch to batch. A new
/// buffer for each (megabytes, which the allocator maps fresh) cost a page fault for every
/// 4 KB the file was read into, and unmapping it after: about a third of the run's system
/// time. The pool holds no more buffers than were in use at once (one per parsing thread,
/// or one batch's); they are freed with the source's batches.
#[derive(Clone, Default)]
pub(super) struct BufferPool(Arc<Mutex<Vec<Vec<u8>>>>);

impl BufferPool {
    /// An empty buffer with room for `len` bytes.
    pub(super) fn take(&self, len: usize) -> Vec<u8> {
        let mut buf = self.lock().pop().unwrap_or_default();
        buf.clear();
        buf.reserve(len);
        buf
    }

    fn give(&self, buf: Vec<u8>) {
        if buf.capacity() > 0 {
            self.lock().push(buf);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        // A batch that panicked while holding the lock left the list whole.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What one parsing thread reads a batch's file pieces with: the file, opened at its first
/// piece, and a buffer from the pool, taken then.
#[derive(Default)]
struct PieceReader {
    file: Option<File>,
    buf: Vec<u8>,
}

impl PieceReader {
    /// Bytes `range` of the file at `path`. A file cut short since its pieces were found is
    /// an error, not fewer rows.
    fn read(&mut self, path: &Path, range: &Range<u64>, pool: &BufferPool) -> io::Result<&[u8]> {
        let len = range.end - range.start;
        if self.buf.capacity() == 0 {
            self.buf = pool.take(len as usize);
        }
        let f = match &mut self.file {
            Some(f) => f,
            None => self.file.insert(File::open(path)?),
        };
        f.seek(SeekFrom::Start(range.start))?;
        self.buf.clear();
        let read = f.take(len).read_to_end(&mut self.buf)?;
        if (read as u64) < len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the file ended at byte {} while bytes up to {} were read: did it change during the run?",
                    range.start + read as u64,
                    range.end
                ),
            ));
        }
        Ok(&self.buf)
    }
}

impl TextBatch {
    /// The batch as a lazy frame whose scan reads only the columns the query uses.
    pub(super) fn lazy(self) -> PolarsResult<LazyFrame> {
        LazyFrame::anonymous_scan(Arc::new(self), Default::default())
    }

    /// The bytes of piece `range`: in the batch, or read from the file by `reader`.
    fn piece<'r>(
        &'r self,
        range: &Range<u64>,
        reader: &'r mut PieceReader,
    ) -> PolarsResult<&'r [u8]> {
        match &self.text {
            Text::Bytes(bytes) => Ok(&bytes[range.start as usize..range.end as usize]),
            Text::File(path) => Ok(reader.read(path, range, &self.pool)?),
        }
    }

    /// Every piece, parsed on as many threads as there are cores, in order.
    fn parse_all(&self, projection: &Projection) -> PolarsResult<Vec<DataFrame>> {
        let pieces: Vec<&Range<u64>> = self.pieces.iter().filter(|p| !p.is_empty()).collect();
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(pieces.len());
        let next = AtomicUsize::new(0);
        let mut parsed: Vec<(usize, PolarsResult<DataFrame>)> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        let mut done = Vec::new();
                        let mut reader = PieceReader::default();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(&range) = pieces.get(i) else {
                                break;
                            };
                            let piece = self.piece(range, &mut reader);
                            done.push((i, piece.and_then(|p| self.parser.parse(p, projection))));
                        }
                        self.pool.give(reader.buf);
                        done
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

    fn ndjson_batch(text: Text, pieces: Vec<Range<u64>>, pool: &BufferPool) -> TextBatch {
        let schema = Schema::from_iter([Field::new("a".into(), DataType::Int64)]);
        TextBatch {
            parser: Arc::new(super::super::ndjson_batch::NdjsonParser {
                schema: Arc::new(schema),
            }),
            text,
            pieces,
            pool: pool.clone(),
        }
    }

    /// The buffers of the pool, by address.
    fn held(pool: &BufferPool) -> Vec<usize> {
        let mut at: Vec<usize> = pool.lock().iter().map(|b| b.as_ptr() as usize).collect();
        at.sort_unstable();
        at
    }

    /// A dropped batch's buffer is the next batch's, emptied.
    #[test]
    fn batch_buffers_are_reused() {
        let pool = BufferPool::default();
        let mut bytes = pool.take(64);
        bytes.extend_from_slice(b"{\"a\":1}\n");
        let at = bytes.as_ptr();
        drop(ndjson_batch(
            Text::Bytes(bytes),
            std::iter::once(0..8).collect(),
            &pool,
        ));
        let again = pool.take(32);
        assert_eq!((again.as_ptr(), again.len()), (at, 0));
        assert!(again.capacity() >= 64);
    }

    /// Pieces read from the file give the rows the same text gives in memory; each parsing
    /// thread reads into a buffer of the pool, which the next batch's threads use again.
    #[test]
    fn pieces_read_from_the_file_parse_like_the_same_bytes() {
        let text: String = (0..300).map(|i| format!("{{\"a\":{i}}}\n")).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.ndjson");
        std::fs::write(&path, &text).unwrap();
        // Pieces of 30 lines, cut at line ends.
        let ends: Vec<u64> = text
            .match_indices('\n')
            .map(|(i, _)| i as u64 + 1)
            .collect();
        let pieces: Vec<Range<u64>> = std::iter::once(0)
            .chain(ends.iter().copied().skip(29).step_by(30))
            .zip(ends.iter().copied().skip(29).step_by(30))
            .map(|(start, end)| start..end)
            .collect();
        assert_eq!((pieces.len(), pieces[9].end), (10, text.len() as u64));
        let projection = Projection::new(
            &Schema::from_iter([Field::new("a".into(), DataType::Int64)]),
            vec![0],
        );
        let parse = |batch: &TextBatch| -> DataFrame {
            let mut parts = batch.parse_all(&projection).unwrap().into_iter();
            let mut df = parts.next().unwrap();
            for part in parts {
                df.vstack_mut_owned(part).unwrap();
            }
            df
        };
        let pool = BufferPool::default();
        let bytes = ndjson_batch(Text::Bytes(text.into_bytes()), pieces.clone(), &pool);
        let from_bytes = parse(&bytes);
        drop(bytes);
        let expected: Vec<Option<i64>> = (0..300).map(Some).collect();
        let a = |df: &DataFrame| df.column("a").unwrap().i64().unwrap().to_vec();
        assert_eq!(a(&from_bytes), expected);
        // That batch's buffer, given back: the file's pieces may read into it.
        let file = ndjson_batch(Text::File(path.clone()), pieces.clone(), &pool);
        assert!(parse(&file).equals(&from_bytes));
        let first = held(&pool);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert!((1..=threads.max(1)).contains(&first.len()), "{first:?}");
        let again = ndjson_batch(Text::File(path), pieces, &pool);
        assert!(parse(&again).equals(&from_bytes));
        assert_eq!(held(&pool), first);
    }

    /// A file cut short after its pieces were found: an error that says so, not fewer rows.
    #[test]
    fn a_file_cut_short_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.ndjson");
        std::fs::write(&path, "{\"a\":1}\n{\"a\":2}\n").unwrap();
        let (mut reader, pool) = (PieceReader::default(), BufferPool::default());
        assert_eq!(reader.read(&path, &(8..16), &pool).unwrap(), b"{\"a\":2}\n");
        let e = reader.read(&path, &(8..30), &pool).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(
            e.to_string(),
            "the file ended at byte 16 while bytes up to 30 were read: did it change during the run?"
        );
        let batch = ndjson_batch(Text::File(path), vec![0..8, 8..30], &BufferPool::default());
        let projection = Projection::new(&batch.parser.output().clone(), vec![0]);
        let parsed = batch.parse_all(&projection);
        assert!(parsed
            .unwrap_err()
            .to_string()
            .contains("the file ended at byte 16"));
    }
}
