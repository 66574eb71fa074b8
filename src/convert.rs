//! The main job: mapping + sources -> inbound files, with the reject threshold applied.

use crate::error::Result;
use crate::mapping::Mapping;
use crate::pipeline::{self, Conversion};
use crate::reject::Reject;
use crate::report::Receipt;
use crate::source::Source;
use crate::writer::Plan;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Options {
    pub out_dir: PathBuf,
    /// 10-digit UTC Unix time for the file names.
    pub timestamp: u64,
    pub force: bool,
    pub dry_run: bool,
    /// Fraction of rows (0.01 = 1%) that may be rejected before the run publishes nothing.
    pub max_reject_rate: f64,
    /// Set by a Ctrl-C handler: the run stops and removes what it had started to write.
    pub cancel: Arc<AtomicBool>,
}

/// What happened to the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Written,
    /// `--dry-run`: nothing written.
    DryRun,
    /// No user has a trait to send: no file is written (AAM does not process empty files).
    Empty,
    /// Too many rows rejected: nothing published.
    OverThreshold,
}

#[derive(Debug)]
pub struct Outcome {
    pub status: Status,
    pub receipt: Receipt,
    pub rejects: Vec<Reject>,
    pub plan: Plan,
    /// The first lines of output, for `--dry-run`.
    pub preview: Vec<String>,
}

/// Number of output lines shown by a dry run.
const PREVIEW_LINES: usize = 10;

pub fn run(mapping: &Mapping, sources: &[Source], opts: &Options) -> Result<Outcome> {
    let Conversion {
        mut receipt,
        rejects,
        body,
        users,
    } = pipeline::run(mapping, sources, &opts.cancel)?;
    let plan = Plan::new(&users, &mapping.output, opts.timestamp, &opts.out_dir);
    let preview = String::from_utf8_lossy(&body[..preview_len(&body)])
        .lines()
        .map(str::to_owned)
        .collect();
    let status = if receipt.reject_rate() > opts.max_reject_rate {
        Status::OverThreshold
    } else if plan.parts.is_empty() {
        Status::Empty
    } else if opts.dry_run {
        Status::DryRun
    } else {
        receipt.parts = plan.write(&body, opts.force, &opts.cancel)?;
        Status::Written
    };
    Ok(Outcome {
        status,
        receipt,
        rejects,
        plan,
        preview,
    })
}

fn preview_len(body: &[u8]) -> usize {
    body.iter()
        .enumerate()
        .filter(|(_, &b)| b == b'\n')
        .nth(PREVIEW_LINES - 1)
        .map_or(body.len(), |(i, _)| i + 1)
}
