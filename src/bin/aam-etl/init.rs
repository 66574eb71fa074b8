//! `aam-etl init EXPORT`: a mapping to start from, guessed from the export.

use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The export to read the columns and a sample of the values of.
    pub input: PathBuf,
    /// Rows read to guess from.
    #[arg(long, default_value_t = 1000)]
    pub sample: usize,
}

pub fn run(args: InitArgs) -> anyhow::Result<ExitCode> {
    let text = aam_etl::mapping::init::guess(&args.input, args.sample)?;
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
