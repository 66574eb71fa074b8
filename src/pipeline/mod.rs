//! Sources + mapping -> every user's de-duplicated traits, rendered as lines, plus rejects.
//!
//! Two phases, so that memory stays flat however large the export:
//! 1. Each source is read in batches (Polars projects the mapping's columns and evaluates its
//!    SQL conditions and filters; a second thread reads the next batch while this one is
//!    converted). Each batch is cut into one slice per converting thread; each row becomes
//!    (user ID, trait codes), computed column by column, with traits interned as integers.
//!    Each converter sorts its rows by user ID, in runs spilled to disk past its share of the
//!    budget (`spill`).
//! 2. The runs are merged; each user's rows come out together and the user's lines are
//!    rendered once, on one thread while the writer compresses on the others. Users are in
//!    bytewise ID order; traits by form then ID or text.

mod cell;
mod deliver;
mod intern;
mod render;
mod rows;
mod select;

pub use deliver::{Chunk, Deliver, Effect, Lines, Plain, UserTraits};
// `init` drafts flag rules for the columns this reads as flags.
pub(crate) use cell::flag_text;

use crate::error::{Error, Result};
use crate::inbound::{KindCounts, PartLimit};
use crate::mapping::Mapping;
use crate::progress::{Phase, Progress};
use crate::reject::{RejectLog, RejectReason};
use crate::report::Receipt;
use crate::source::Source;
use crate::spill;
use crate::taxonomy::{Refusal, Taxonomy};
use intern::Interner;
use polars::prelude::DataFrame;
use render::{RenderContext, Tally};
use rows::Converter;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::sync_channel;
use std::sync::Mutex;

/// How big the pieces are. The output does not depend on these, only memory and speed do.
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    /// Rows per batch for Parquet and IPC.
    pub batch_rows: u64,
    /// Bytes per batch for NDJSON; CSV batches are half as many bytes (their columns are
    /// read as text, larger in memory than in the file). The reading thread keeps a batch's
    /// buffer for the next while it waits for the converters (see `BufferPool`): 48 MB,
    /// against 64 MB when each batch had a new buffer, keeps peak memory lower than then.
    pub batch_bytes: u64,
    /// Bytes of converted rows held in memory before they are spilled to TMPDIR.
    pub spill_budget: usize,
    /// Threads converting rows, each over its share of every batch.
    pub threads: usize,
    /// Rows each converting thread turns into codes at a time (see `Converter::add_frame`).
    pub block_rows: usize,
    /// Distinct values of one key-value rule each converting thread interns; further new
    /// values are carried in their rows (see `intern::INLINE`).
    pub signal_cache: usize,
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning {
            batch_rows: 1 << 20,
            batch_bytes: 48 << 20,
            spill_budget: 256 << 20,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            block_rows: 4096,
            signal_cache: 1 << 14,
        }
    }
}

/// The trait list the run's trait IDs are checked against, and the data source of its files
/// (the target DPID when there is one).
#[derive(Clone, Copy)]
pub struct TraitCheck<'t> {
    pub list: &'t Taxonomy,
    pub data_source: u64,
}

impl TraitCheck<'_> {
    fn refuses(&self, t: &crate::inbound::Trait) -> Option<Refusal> {
        self.list.check(t, self.data_source).err()
    }
}

/// A row-level problem: the row is left out, counted and reported.
struct RowReject {
    reason: RejectReason,
    message: String,
}

impl RowReject {
    fn new(reason: RejectReason, message: impl Into<String>) -> RowReject {
        RowReject {
            reason,
            message: message.into(),
        }
    }
}

/// Runs the mapping over all sources (one logical export): every user's traits go, in user
/// order, to `deliver`, which decides what lines to write; the lines go to `sink` about 4 MB
/// at a time; every rejected row goes to `rejects`, in input order (rows, then whole
/// users). With a trait list (`check`), rows that would send a trait ID it refuses are
/// rejected, and signals no rule-based trait reads are counted. `cancel` is checked between batches and every few thousand rows (a signal).
#[allow(clippy::too_many_arguments)] // the run's inputs and outputs, each once
pub fn run(
    mapping: &Mapping,
    sources: &[Source],
    tuning: Tuning,
    run_time: u64,
    check: Option<TraitCheck>,
    cancel: &AtomicBool,
    progress: &Progress,
    rejects: &mut RejectLog,
    deliver: &mut dyn Deliver,
    sink: &mut dyn FnMut(&Chunk) -> Result<()>,
) -> Result<Receipt> {
    let interner = Mutex::new(Interner::default());
    let threads = tuning.threads.max(1);
    let mut converters: Vec<Converter> = (0..threads)
        .map(|_| {
            Converter::new(
                mapping,
                &interner,
                tuning.spill_budget / threads,
                tuning.signal_cache,
                check,
            )
        })
        .collect();
    let mut receipt = Receipt::default();
    // Reading is measured in bytes on disk: a file's share of the export is its size.
    let sizes: Vec<u64> = sources
        .iter()
        .map(|s| std::fs::metadata(&s.path).map_or(0, |m| m.len()))
        .collect();
    progress.start(Phase::Reading, sizes.iter().sum());
    std::thread::scope(|s| -> Result<()> {
        let (tx, rx) = sync_channel(1);
        let reader = std::thread::Builder::new().name("read".into());
        reader
            .spawn_scoped(s, move || {
                for (file, source) in sources.iter().enumerate() {
                    let before: u64 = sizes[..file].iter().sum();
                    let read = select::read_source(
                        mapping,
                        source,
                        tuning,
                        run_time,
                        cancel,
                        &mut |first_row, df, fraction| {
                            progress.set(before + (sizes[file] as f64 * fraction) as u64);
                            progress.add_rows(df.height() as u64);
                            // A closed channel: the converting side stopped (and reports why).
                            tx.send(Ok((file, first_row, df))).is_ok()
                        },
                    );
                    if let Err(e) = read {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            })
            .expect("a thread can be started");
        for batch in rx {
            let (file, first_row, df) = batch?;
            convert_frame(
                &mut converters,
                &df,
                tuning.block_rows,
                file,
                first_row,
                &sources[file],
                cancel,
            )?;
            // In input order: each converter took the rows after the previous one's.
            for c in &mut converters {
                for r in c.rejects.drain(..) {
                    rejects.push(r)?;
                }
            }
        }
        Ok(())
    })?;
    let mut sorters = Vec::new();
    for c in converters {
        receipt.absorb(c.receipt);
        sorters.push(c.sorter);
    }
    receipt.files_read = sources.len() as u64;
    let interner = interner.into_inner().expect("no converter panicked");
    let part = PartLimit {
        max_bytes: mapping.output.max_part_bytes,
    };
    let ctx = RenderContext::new(&interner.traits, mapping, part, sources, check);
    progress.start(Phase::Sorting, 0);
    let merge = spill::merge(sorters).map_err(spill_error)?;
    // Every accepted row is merged into its user once.
    progress.start(
        Phase::Writing,
        receipt.rows_read.saturating_sub(receipt.rows_rejected),
    );
    let tally = Tally {
        receipt,
        rejects,
        kinds: KindCounts::default(),
    };
    ctx.render(merge, tally, cancel, progress, deliver, sink)
}

fn spill_error(e: std::io::Error) -> Error {
    Error::io(std::env::temp_dir(), e)
}

/// Converts one batch, cut into as many row ranges as there are converters, on that many
/// threads.
fn convert_frame(
    converters: &mut [Converter],
    df: &DataFrame,
    block_rows: usize,
    file: usize,
    first_row: u64,
    source: &Source,
    cancel: &AtomicBool,
) -> Result<()> {
    let per = df.height().div_ceil(converters.len()).max(1);
    std::thread::scope(|s| {
        let mut pieces = converters.iter_mut().enumerate().map(|(k, c)| {
            let offset = k * per;
            let piece = df.slice(offset as i64, per);
            let first = first_row + offset as u64;
            move || c.add_frame(&piece, block_rows, file, first, source, cancel)
        });
        let mut mine = pieces.next().expect("at least one converter");
        let others: Vec<_> = pieces
            .map(|work| {
                std::thread::Builder::new()
                    .name("convert".into())
                    .spawn_scoped(s, work)
                    .expect("a thread can be started")
            })
            .collect();
        // The first error in row order is the one reported.
        let mut result = mine();
        for h in others {
            let r = h.join().expect("converters do not panic");
            result = result.and(r);
        }
        result
    })
}
