//! The CLI tests: every test runs the real `aam-etl` binary in a temporary folder and
//! compares whole outputs (gunzipped) with golden files reviewed by eye. Set
//! `UPDATE_GOLDEN=1` to rewrite the golden files, then review the diff.

// Test code may unwrap: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

mod convert;
mod guardrails;
mod harness;
mod idsync;
mod incremental;
mod mapping;
mod progress;
mod s3;
mod taxonomy;
mod tooling;
mod transaction;
mod validate;
