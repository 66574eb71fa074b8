//! The command line: the default command (convert) and the subcommands, each of which owns
//! its arguments in its own file.

use crate::convert::ConvertArgs;
use crate::push::PushArgs;
use crate::validate::ValidateArgs;
use clap::{Parser, Subcommand};

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
    /// Upload an output folder to AAM's S3 location (validated first; idempotent).
    Push(PushArgs),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
