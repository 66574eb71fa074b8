//! The command line: the default command (convert) and the subcommands, each of which owns
//! its arguments in its own file.

use crate::convert::ConvertArgs;
use crate::init::InitArgs;
use crate::push::PushArgs;
use crate::validate::ValidateArgs;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "aam-etl",
    version,
    about = "Turn CSV, Parquet and JSON exports into Adobe Audience Manager inbound data files",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub convert: ConvertArgs,
}

/// What `--help` says after the options: how runs end, and where mappings are described.
const AFTER_HELP: &str = "\
Exit codes:
  0         output published (or nothing to write, or a dry run)
  1         more rows rejected than --max-reject-rate allows: no inbound file published
  2         could not run (bad mapping, unreadable input, I/O error, failed upload):
            nothing published, or, after a failed upload, the local delivery only
  129, 130, 143
            stopped by SIGHUP, SIGINT or SIGTERM: temporaries removed, nothing published

Mappings: start with `aam-etl init EXPORT > mapping.toml`, or copy a template from
mappings/ (one per kind of export). Every key is described in README.md, \"The mapping\";
`aam-etl schema` prints the JSON Schema editors use to complete and check them.";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check inbound files against AAM's rules and report what AAM would report.
    Validate(ValidateArgs),
    /// Upload an output folder to AAM's S3 location (validated first; idempotent).
    Push(PushArgs),
    /// Write a commented mapping to start from, guessed from an export's columns and values.
    Init(InitArgs),
    /// Print the mapping's JSON Schema (for editors: Taplo, Even Better TOML).
    Schema,
    /// Print shell completions: `aam-etl completions bash > /etc/bash_completion.d/aam-etl`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
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
