//! aam-etl turns customer exports (CSV, Parquet, JSON/NDJSON, Arrow IPC) into Adobe Audience
//! Manager inbound data files that AAM accepts without a rejected record.
//!
//! The data flow:
//!
//! ```text
//! mapping (TOML) --check--> Mapping ─┐
//! source files --source--> LazyFrame ┴─pipeline─> per-user traits ─deliver─> lines ─writer─> parts
//!                                          │             (plain, or the state's diff)         │
//!                                       rejects          inbound (render/parse)        publish (all or nothing)
//! ```
//!
//! - [`mapping`]: the TOML schema and its checks.
//! - [`source`]: the one place that opens input files.
//! - [`pipeline`]: rows to traits, grouped and ordered per user, handed to a [`pipeline::Deliver`].
//! - [`state`]: incremental delivery: what AAM holds, and the diff that sends only changes.
//! - [`inbound`]: the inbound format itself (IDs, traits, lines, file names, limits).
//! - [`writer`]: parts and gzip; [`publish`]: a run's files published together or not at all.
//! - [`report`] and [`reject`]: what was written and what was left out, and why.
//! - [`validate`]: lints any inbound file against SPEC, through the same format model.
//! - [`upload`]: delivery to AAM's S3 location (idempotent, verified), and S3 exports.

pub mod convert;
pub mod error;
mod fill;
pub mod gzip;
pub mod inbound;
pub mod lock;
pub mod mapping;
pub mod pipeline;
pub mod progress;
pub mod publish;
pub mod reject;
pub mod report;
pub mod source;
pub mod spill;
pub mod state;
pub mod taxonomy;
#[cfg(test)]
mod testing;
pub mod upload;
pub mod validate;
pub mod writer;

pub use error::{Error, Result};
