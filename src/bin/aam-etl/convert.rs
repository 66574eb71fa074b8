//! The default command: convert an export into inbound files.

use crate::progress::{Display, ProgressMode};
use aam_etl::convert::{self, Status};
use aam_etl::mapping::{Format, Mapping};
use aam_etl::upload::{Destination, Downloads, UploadReport};
use anyhow::Result;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Convert an export into inbound files (the default command).
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The TOML mapping: user ID column and trait rules.
    #[arg(long, short, value_name = "FILE", required = true)]
    pub mapping: Option<PathBuf>,
    /// Input files or glob patterns (local, or `s3://bucket/path/*.parquet`); together they
    /// are one export.
    #[arg(value_name = "INPUT", required = true)]
    pub inputs: Vec<String>,
    /// Folder for the inbound files.
    #[arg(long, short, value_name = "DIR", default_value = "out")]
    pub out: PathBuf,
    /// UTC Unix time (10 digits) for the file names; default: now. Fix it for reproducible runs.
    #[arg(long, value_name = "SECONDS")]
    pub timestamp: Option<u64>,
    /// Source format for every input, overriding extensions and the mapping.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<Format>,
    /// Replace output files that already exist.
    #[arg(long)]
    pub force: bool,
    /// Print the plan and the first lines of output; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also write the summary as JSON to this file.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// Write every rejected row (file, row, user ID, reason, message) to this CSV file.
    #[arg(long, value_name = "FILE.csv")]
    pub rejects: Option<PathBuf>,
    /// Deliver only what changed since the last delivery, remembered in this folder (see
    /// the README's daily deliveries); the mapping's `[state] path` otherwise.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// With a state: send every user's whole set as `.overwrite` (a full refresh).
    #[arg(long)]
    pub full: bool,
    /// Upload the delivery to AAM's S3 location, `s3://<bucket>/<folder>/` (files go under
    /// `date=YYYY-MM-DD/`); the mapping's `[output] deliver` otherwise.
    #[arg(long, value_name = "S3_URL", value_parser = parse_destination)]
    pub deliver: Option<Destination>,
    /// The data source's trait list (AAM's API JSON, or CSV): rows that would send a trait
    /// ID that is not an onboarded trait of the data source are rejected; the mapping's
    /// `[taxonomy] path` otherwise.
    #[arg(long, value_name = "FILE")]
    pub traits: Option<PathBuf>,
    /// Progress on stderr: `auto` shows a line when stderr is a terminal, `json` writes a
    /// JSON object per line (each phase, and every second) for schedulers.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    pub progress: ProgressMode,
    /// No progress, and no summary on stdout; warnings and errors still go to stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Percentage of rows that may be rejected; above it nothing is published and the exit
    /// code is 1.
    #[arg(long, value_name = "PERCENT", default_value = "1", value_parser = parse_percent)]
    pub max_reject_rate: f64,
}

pub fn parse_destination(s: &str) -> Result<Destination, String> {
    Destination::parse(s).map_err(|e| e.to_string())
}

fn parse_percent(s: &str) -> Result<f64, String> {
    let n: f64 = s
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("`{s}` is not a percentage such as 1 or 0.5%"))?;
    if (0.0..=100.0).contains(&n) {
        Ok(n / 100.0)
    } else {
        Err(format!("`{s}` is not between 0 and 100"))
    }
}

pub fn run(args: ConvertArgs) -> Result<ExitCode> {
    let mapping_path = args.mapping.clone().unwrap_or_default();
    let mapping = Mapping::load(&mapping_path)?;
    // Locked only to print: the library's threads (and Polars') may write to stderr during
    // the run, and would wait for the lock forever.
    let mut err = std::io::stderr();
    for w in &mapping.warnings {
        writeln!(err, "warning: {}: {w}", mapping_path.display())?;
    }
    // S3 inputs are copied into a temporary folder for the run (removed when it ends).
    let (_downloads, inputs) = Downloads::fetch(&args.inputs)?;
    let sources = convert::sources(&mapping, &inputs, args.format)?;
    let timestamp = convert::timestamp(args.timestamp)?;
    let opts = convert::Options {
        out_dir: args.out.clone(),
        timestamp,
        force: args.force,
        dry_run: args.dry_run,
        max_reject_rate: args.max_reject_rate,
        report: args.report.clone(),
        rejects: args.rejects.clone(),
        state: args.state.clone(),
        full: args.full,
        deliver: args.deliver.clone(),
        traits: args.traits.clone(),
        progress: Arc::default(),
        cancel: crate::signals::install()?,
    };
    let display = Display::start(opts.progress.clone(), args.progress, args.quiet);
    let outcome = convert::run(&mapping, &sources, &opts);
    // The progress line goes before anything else is printed.
    drop(display);
    let outcome = outcome?;
    for note in &outcome.notes {
        writeln!(err, "note: {note}")?;
    }

    print_outcome(&outcome, &args, &mut err)
}

/// The summary on stdout, and what became of the output on stderr; the exit code.
fn print_outcome(
    outcome: &convert::Outcome,
    args: &ConvertArgs,
    err: &mut impl Write,
) -> Result<ExitCode> {
    let mut out: Box<dyn Write> = if args.quiet {
        Box::new(std::io::sink())
    } else {
        Box::new(std::io::stdout().lock())
    };
    out.write_all(outcome.receipt.to_text().as_bytes())?;
    let code = match outcome.status {
        Status::Written => {
            for p in outcome.plan.paths() {
                writeln!(out, "wrote {}", p.display())?;
            }
            if let Some(upload) = &outcome.upload {
                print_upload(&mut out, upload)?;
            }
            ExitCode::SUCCESS
        }
        Status::DryRun => {
            writeln!(out, "dry run: nothing written; would write:")?;
            for (path, part) in outcome.plan.paths().iter().zip(&outcome.plan.parts) {
                writeln!(
                    out,
                    "  {}  ({} bytes uncompressed, {} users, {} lines)",
                    path.display(),
                    part.uncompressed_bytes,
                    part.users,
                    part.lines
                )?;
            }
            if let Some(upload) = &outcome.upload {
                print_upload(&mut out, upload)?;
            }
            writeln!(out, "first lines:")?;
            for line in &outcome.preview {
                writeln!(out, "  {}", line.replace('\t', "<TAB>"))?;
            }
            ExitCode::SUCCESS
        }
        Status::NoChanges(last) => {
            writeln!(
                out,
                "no changes since the last delivery ({}, {last}): no file written",
                &aam_etl::inbound::date_folder(last)["date=".len()..]
            )?;
            ExitCode::SUCCESS
        }
        Status::Empty => {
            writeln!(
                err,
                "no file written: no user has a trait to send (AAM does not process empty files)"
            )?;
            ExitCode::SUCCESS
        }
        Status::OverThreshold => {
            writeln!(
                err,
                "error: {:.2}% of rows were rejected, over --max-reject-rate {}%; no file written{}",
                outcome.receipt.reject_rate() * 100.0,
                args.max_reject_rate * 100.0,
                if args.rejects.is_some() {
                    ""
                } else {
                    " (pass --rejects FILE.csv to see every rejected row)"
                }
            )?;
            ExitCode::from(1)
        }
    };
    if outcome.status != Status::OverThreshold && outcome.receipt.rows_rejected > 0 {
        let see = if args.rejects.is_some() {
            "see the rejects file"
        } else {
            "pass --rejects FILE.csv to see them"
        };
        writeln!(
            err,
            "note: {} rows rejected; {see}",
            outcome.receipt.rows_rejected
        )?;
    }
    Ok(code)
}

/// The keys written to S3 (or that would be), bytes and time.
pub fn print_upload(out: &mut impl Write, report: &UploadReport) -> Result<()> {
    use aam_etl::upload::Action;
    for o in &report.objects {
        let what = match o.action {
            Action::Uploaded => "uploaded",
            Action::AlreadyThere => "already there (same size and MD5), skipped",
            Action::WouldUpload => "would upload",
        };
        writeln!(
            out,
            "s3 {what}: s3://{}/{}",
            bucket_of(&report.destination),
            o.key
        )?;
    }
    let sent = report
        .objects
        .iter()
        .filter(|o| o.action == Action::Uploaded)
        .count();
    if report
        .objects
        .iter()
        .all(|o| o.action != Action::WouldUpload)
    {
        writeln!(
            out,
            "s3: {sent} of {} files uploaded, {} bytes in {:.1} s",
            report.objects.len(),
            report.bytes_sent,
            report.seconds
        )?;
    }
    Ok(())
}

fn bucket_of(url: &str) -> &str {
    let rest = url.trim_start_matches("s3://");
    rest.split('/').next().unwrap_or(rest)
}
