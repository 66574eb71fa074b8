//! The progress display on stderr (`--progress`): one line redrawn in place when stderr is
//! a terminal, JSON lines for schedulers, or nothing. A thread looks at the run's counters
//! a few times a second; the run itself only counts.

use aam_etl::progress::Progress;
use clap::ValueEnum;
use std::io::{IsTerminal, Write};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// A line on stderr when it is a terminal; nothing otherwise.
    Auto,
    /// A JSON object per line on stderr, at each phase and every second.
    Json,
    /// Nothing.
    Off,
}

/// How often the terminal line is redrawn.
const TICK: Duration = Duration::from_millis(100);
/// How often a JSON line is written within a phase.
const JSON_EVERY: Duration = Duration::from_secs(1);

/// The running display; dropping it stops it (the terminal line is cleared, the last JSON
/// line written).
pub struct Display {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Display {
    pub fn start(progress: Arc<Progress>, mode: ProgressMode, quiet: bool) -> Display {
        // `--quiet` silences the human display; JSON lines asked for by name still come.
        let json = match mode {
            ProgressMode::Off => return Display::none(),
            ProgressMode::Json => true,
            ProgressMode::Auto if quiet => return Display::none(),
            ProgressMode::Auto if std::io::stderr().is_terminal() => false,
            ProgressMode::Auto => return Display::none(),
        };
        if json {
            // Each phase as it starts, from the run's thread; the ticker adds one a second.
            progress.on_phase(|s| {
                let _ = writeln!(std::io::stderr().lock(), "{}", s.to_json());
            });
        }
        let (tx, rx) = channel::<()>();
        let thread = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || {
                let mut shown = (progress.phase(), Instant::now());
                loop {
                    let stopped = !matches!(rx.recv_timeout(TICK), Err(RecvTimeoutError::Timeout));
                    let s = progress.snapshot();
                    let mut err = std::io::stderr().lock();
                    if json {
                        // A phase's start has its line already.
                        if s.phase != shown.0 {
                            shown = (s.phase, Instant::now());
                        } else if shown.1.elapsed() >= JSON_EVERY && !stopped {
                            let _ = writeln!(err, "{}", s.to_json());
                            shown.1 = Instant::now();
                        }
                    } else if stopped {
                        let _ = write!(err, "\r\x1b[2K");
                    } else {
                        let _ = write!(err, "\r\x1b[2K{}", fit(&s.to_line()));
                    }
                    let _ = err.flush();
                    if stopped {
                        return;
                    }
                }
            })
            .ok();
        Display {
            stop: Some(tx),
            thread,
        }
    }

    fn none() -> Display {
        Display {
            stop: None,
            thread: None,
        }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The line cut to the terminal's width (`COLUMNS`, else 80): a line that wraps cannot be
/// redrawn in place.
fn fit(line: &str) -> &str {
    let width = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(80)
        .saturating_sub(1);
    match line.char_indices().nth(width) {
        Some((i, _)) => &line[..i],
        None => line,
    }
}
