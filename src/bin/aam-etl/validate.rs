//! `aam-etl validate`: lint inbound files; exit 0 clean, 1 errors found, 2 could not read.

use aam_etl::inbound::IdType;
use aam_etl::report::FileReceipt;
use aam_etl::taxonomy::Taxonomy;
use aam_etl::validate::{self, FileReport};
use anyhow::Result;
use clap::{Args, ValueEnum};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Inbound files, or folders to check recursively.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
    /// The ID type of the files; default: from a device DPID in the name, else DPUUID.
    #[arg(long, value_name = "TYPE")]
    pub id_type: Option<IdType>,
    /// Also report style warnings (spaces around traits and `=`).
    #[arg(long)]
    pub strict: bool,
    /// Output format.
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub format: OutputFormat,
    /// Diagnostics listed per rule and file; the rest are counted.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub max_per_rule: usize,
    /// The data source's trait list (AAM's API JSON, or CSV): also check that trait IDs are
    /// onboarded traits of each file's data source and that signals feed a rule-based trait.
    #[arg(long, value_name = "FILE")]
    pub traits: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

pub fn run(args: ValidateArgs) -> Result<ExitCode> {
    let opts = validate::Options {
        id_type: args.id_type,
        strict: args.strict,
        max_per_rule: args.max_per_rule,
        traits: match &args.traits {
            Some(path) => Some(std::sync::Arc::new(Taxonomy::load(path)?)),
            None => None,
        },
    };
    let files = validate::collect_files(&args.paths)?;
    let mut out = std::io::stdout().lock();
    let mut reports = Vec::new();
    let mut total = FileReceipt::default();
    for f in &files {
        let report = validate::validate_file(f, &opts)?;
        total.add(&report.receipt);
        if args.format == OutputFormat::Text {
            print_text(&mut out, &report)?;
        }
        reports.push(report);
    }
    if args.format == OutputFormat::Json {
        let json = serde_json::json!({ "files": reports, "total": total });
        serde_json::to_writer_pretty(&mut out, &json)?;
        writeln!(out)?;
    } else if files.len() > 1 {
        out.write_all(
            total
                .to_text(&format!("total ({} files)", files.len()))
                .as_bytes(),
        )?;
    }
    if files.is_empty() {
        writeln!(std::io::stderr(), "no files to check")?;
    }
    Ok(if total.errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_text(out: &mut impl Write, report: &FileReport) -> Result<()> {
    for d in &report.diagnostics {
        writeln!(out, "{}", d.to_text())?;
    }
    for (code, n) in &report.not_listed {
        writeln!(
            out,
            "{}: {n} more {code} diagnostics not listed (--max-per-rule)",
            report.path
        )?;
    }
    out.write_all(
        report
            .receipt
            .to_text(&format!("receipt {}", report.path))
            .as_bytes(),
    )?;
    Ok(())
}
