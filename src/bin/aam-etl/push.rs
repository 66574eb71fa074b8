//! `aam-etl push`: upload an existing output folder to AAM's S3 location, validating it
//! first.

use crate::convert::{parse_destination, print_upload};
use crate::progress::{Display, ProgressMode};
use aam_etl::inbound::IdType;
use aam_etl::progress::{Phase, Progress};
use aam_etl::upload::{self, Bucket, Destination};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Output folder (or files) of a conversion.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
    /// Where to upload: `s3://<bucket>/<folder>/`; files go under `date=YYYY-MM-DD/`.
    #[arg(long, value_name = "S3_URL", value_parser = parse_destination, required = true)]
    pub deliver: Destination,
    /// The ID type of the files, for validation; default: from the file names.
    #[arg(long, value_name = "TYPE")]
    pub id_type: Option<IdType>,
    /// Replace objects that are already there with different content.
    #[arg(long)]
    pub force: bool,
    /// List the keys that would be written; upload nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Progress on stderr, as for a conversion.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    pub progress: ProgressMode,
}

pub fn run(args: PushArgs) -> Result<ExitCode> {
    let files = aam_etl::validate::collect_files(&args.paths)?;
    if files.is_empty() {
        anyhow::bail!("nothing to upload: no file in {}", args.paths[0].display());
    }
    upload::check_delivery(&files, args.id_type)?;
    let bucket = Bucket::connect(&args.deliver)?;
    let progress = Arc::new(Progress::default());
    let display = Display::start(progress.clone(), args.progress, false);
    let report = bucket.upload(&files, args.force, args.dry_run, &progress);
    progress.start(Phase::Done, 0);
    drop(display);
    let report = report?;
    print_upload(&mut std::io::stdout().lock(), &report)?;
    Ok(ExitCode::SUCCESS)
}
