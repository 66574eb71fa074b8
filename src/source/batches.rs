//! Cutting a source into batches of whole records, so that only one batch is in memory at
//! a time: row slices for Parquet and IPC, byte ranges for CSV (found by the record check)
//! and NDJSON (at line ends).

use super::{Opened, Source};
use crate::error::{Error, Result};
use crate::mapping::Format;
use polars::prelude::*;
use std::io::Read;

/// Byte offsets in a text source: `header` ends the header line (0 without one); each pair
/// of neighbouring `cuts` is one batch of whole records. Cuts still being found (a CSV
/// checked on another thread) arrive through `more`.
#[derive(Debug)]
pub(super) struct TextCuts {
    pub(super) header: u64,
    pub(super) cuts: Vec<u64>,
    /// The length of the text: where the last batch ends.
    pub(super) len: u64,
    pub(super) more: Option<std::sync::mpsc::Receiver<Result<u64>>>,
}

impl TextCuts {
    /// Cut `i`, waiting for it if it is still being found; `None` past the end.
    pub(super) fn get(&mut self, i: usize) -> Result<Option<u64>> {
        while self.cuts.len() <= i {
            let Some(rx) = &self.more else {
                return Ok(None);
            };
            match rx.recv() {
                Ok(cut) => self.cuts.push(cut?),
                Err(_) => self.more = None,
            }
        }
        Ok(Some(self.cuts[i]))
    }
}

/// The first line end at or after `at`, as the offset just past it.
fn next_line_in_file(file: &mut std::fs::File, at: u64) -> std::io::Result<Option<u64>> {
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::Start(at))?;
    let mut buf = [0u8; 64 << 10];
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
    /// NDJSON batches: cut at the first line end after each multiple of `batch_bytes`.
    pub(super) fn line_cuts(
        &self,
        text: Option<&[u8]>,
        len: u64,
        batch_bytes: u64,
    ) -> Result<TextCuts> {
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
        let mut cuts = vec![0];
        let mut at = batch_bytes.max(1);
        while at < len {
            match next_line(at).map_err(|e| Error::io(&self.path, e))? {
                Some(cut) if cut < len => cuts.push(cut),
                _ => break,
            }
            at = cuts[cuts.len() - 1] + batch_bytes.max(1);
        }
        cuts.push(len);
        Ok(TextCuts {
            header: 0,
            cuts,
            len,
            more: None,
        })
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
        let schema = whole.collect_schema().map_err(err)?;
        let plan = match (self.cuts.take(), source.format) {
            (Some(cuts), _) => BatchPlan::Text(cuts),
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
            schema,
            plan,
            next: 0,
            read_to: 0,
        })
    }
}

enum BatchPlan {
    /// Read whole (JSON arrays).
    Whole,
    /// Row slices (Parquet, IPC: the readers skip to a row cheaply), `step` rows from
    /// `offset` next.
    Rows { total: u64, step: u64, offset: u64 },
    /// Byte ranges of whole records (CSV, NDJSON), each scanned on its own.
    Text(TextCuts),
}

/// See [`Opened::batches`].
pub struct Batches<'o> {
    opened: &'o Opened<'o>,
    whole: LazyFrame,
    schema: SchemaRef,
    plan: BatchPlan,
    next: usize,
    /// For text sources: where the batches given so far end.
    read_to: u64,
}

impl Batches<'_> {
    /// The share of the source in the batches given so far, for a progress display.
    pub fn fraction(&self) -> f64 {
        let f = match &self.plan {
            BatchPlan::Whole => (self.next > 0) as u8 as f64,
            BatchPlan::Rows { total: 0, .. } => 1.0,
            BatchPlan::Rows { total, offset, .. } => *offset as f64 / *total as f64,
            BatchPlan::Text(cuts) if cuts.len == 0 => 1.0,
            BatchPlan::Text(cuts) => self.read_to as f64 / cuts.len as f64,
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
            BatchPlan::Text(cuts) => {
                let header = cuts.header;
                let range = match cuts.get(i).and_then(|s| Ok(s.zip(cuts.get(i + 1)?))) {
                    Ok(Some((start, end))) => start..end,
                    Ok(None) => return None,
                    Err(e) => return Some(Err(e)),
                };
                if range.is_empty() && i > 0 {
                    return None;
                }
                self.read_to = range.end;
                let mut bytes = Vec::with_capacity((header + range.end - range.start) as usize);
                Some(
                    self.opened
                        .bytes(0..header, &mut bytes)
                        .and_then(|()| self.opened.bytes(range, &mut bytes))
                        .and_then(|()| {
                            self.opened.scan_sources(
                                ScanSources::Buffers(vec![bytes.into()].into()),
                                &[],
                                Some(self.schema.clone()),
                            )
                        }),
                )
            }
        }
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
