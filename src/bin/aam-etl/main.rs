//! The `aam-etl` binary: parses arguments, calls the library, turns the result into output
//! and an exit code: 0 ok, 1 ran but found data problems, 2 could not do its job.

mod cli;
mod convert;
mod init;
mod progress;
mod push;
mod signals;
mod validate;

use clap::Parser;
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        Some(cli::Command::Validate(args)) => validate::run(args),
        Some(cli::Command::Push(args)) => push::run(args),
        Some(cli::Command::Init(args)) => init::run(args),
        Some(cli::Command::Schema) => print_schema(),
        Some(cli::Command::Completions { shell }) => {
            use clap::CommandFactory;
            let mut cmd = cli::Cli::command();
            clap_complete::generate(shell, &mut cmd, "aam-etl", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        None => convert::run(cli.convert),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // A closed pipe (`aam-etl ... | head`) is not an error.
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            let interrupted = matches!(
                e.downcast_ref::<aam_etl::Error>(),
                Some(aam_etl::Error::Interrupted)
            );
            if interrupted {
                let (name, code) = signals::caught().unwrap_or(("a signal", 130));
                let _ = writeln!(
                    std::io::stderr(),
                    "error: stopped by {name}: nothing was published and the temporary files were removed"
                );
                return ExitCode::from(code);
            }
            let mut msg = format!("error: {e}");
            for cause in e.chain().skip(1) {
                let text = cause.to_string();
                if !msg.contains(&text) {
                    msg.push_str(&format!("\n  caused by: {text}"));
                }
            }
            let _ = writeln!(std::io::stderr(), "{msg}");
            ExitCode::from(2)
        }
    }
}

fn print_schema() -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &aam_etl::mapping::json_schema())?;
    writeln!(out)?;
    Ok(ExitCode::SUCCESS)
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == BrokenPipe)
            // serde_json's error does not list the I/O error among its sources.
            || c.downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(BrokenPipe)
    })
}
