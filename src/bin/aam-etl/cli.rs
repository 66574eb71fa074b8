//! Command-line arguments.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "aam-etl",
    version,
    about = "Turn CSV, Parquet and JSON exports into Adobe Audience Manager inbound data files",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub convert: ConvertArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check inbound files against AAM's rules and report what AAM would report.
    Validate(ValidateArgs),
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Inbound files, or folders to check recursively.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
    /// The ID type of the files; default: from a device DPID in the name, else DPUUID.
    #[arg(long, value_name = "TYPE", value_parser = ["aam_uuid", "dpuuid", "idfa", "gaid", "rida", "maid", "tifa", "fire_tv", "lgudid", "vizio"])]
    pub id_type: Option<String>,
    /// Also report style warnings (spaces around traits and `=`).
    #[arg(long)]
    pub strict: bool,
    /// Output format.
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    /// Diagnostics listed per rule and file; the rest are counted.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub max_per_rule: usize,
}

/// Convert an export into inbound files (the default command).
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The TOML mapping: user ID column and trait rules.
    #[arg(long, short, value_name = "FILE", required = true)]
    pub mapping: Option<PathBuf>,
    /// Input files or glob patterns; together they are one export.
    #[arg(value_name = "INPUT", required = true)]
    pub inputs: Vec<String>,
    /// Folder for the inbound files.
    #[arg(long, short, value_name = "DIR", default_value = "out")]
    pub out: PathBuf,
    /// UTC Unix time (10 digits) for the file names; default: now. Fix it for reproducible runs.
    #[arg(long, value_name = "SECONDS")]
    pub timestamp: Option<u64>,
    /// Source format for every input, overriding extensions and the mapping.
    #[arg(long, value_name = "FORMAT", value_parser = ["csv", "parquet", "json", "ndjson", "ipc"])]
    pub format: Option<String>,
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
    /// Percentage of rows that may be rejected; above it nothing is published and the exit
    /// code is 1.
    #[arg(long, value_name = "PERCENT", default_value = "1", value_parser = parse_percent)]
    pub max_reject_rate: f64,
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
