//! The default command: convert an export into inbound files.

use crate::cli::ConvertArgs;
use aam_etl::convert::{self, Status};
use aam_etl::mapping::{Format, Mapping};
use aam_etl::{reject, source, writer};
use anyhow::Result;
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub fn run(args: ConvertArgs) -> Result<ExitCode> {
    let mapping_path = args.mapping.clone().unwrap_or_default();
    let mapping = Mapping::load(&mapping_path)?;
    let mut err = std::io::stderr().lock();
    for w in &mapping.warnings {
        writeln!(err, "warning: {}: {w}", mapping_path.display())?;
    }
    let format = args
        .format
        .as_deref()
        .and_then(Format::from_name)
        .or(mapping.input.format);
    let sources = source::resolve(&args.inputs, format)?;
    let timestamp = match args.timestamp {
        Some(t) if aam_etl::inbound::TIMESTAMP_RANGE.contains(&t) => t,
        Some(t) => anyhow::bail!("--timestamp {t} is not a 10-digit UTC Unix time in seconds"),
        None => SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs(),
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cancel);
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::Relaxed) {
            // A second Ctrl-C: the first one's cleanup is taking too long.
            std::process::exit(130);
        }
    })?;
    let opts = convert::Options {
        out_dir: args.out.clone(),
        timestamp,
        force: args.force,
        dry_run: args.dry_run,
        max_reject_rate: args.max_reject_rate,
        cancel,
    };
    let outcome = convert::run(&mapping, &sources, &opts)?;

    if let Some(path) = &args.rejects {
        let mut buf = Vec::new();
        reject::write_csv(&outcome.rejects, &mut buf)?;
        writer::write_atomically(path, &buf)?;
    }
    if let Some(path) = &args.report {
        let mut json = serde_json::to_vec_pretty(&outcome.receipt)?;
        json.push(b'\n');
        writer::write_atomically(path, &json)?;
    }

    let mut out = std::io::stdout().lock();
    out.write_all(outcome.receipt.to_text().as_bytes())?;
    let code = match outcome.status {
        Status::Written => {
            for p in outcome.plan.paths() {
                writeln!(out, "wrote {}", p.display())?;
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
            writeln!(out, "first lines:")?;
            for line in &outcome.preview {
                writeln!(out, "  {}", line.replace('\t', "<TAB>"))?;
            }
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
