//! What a long run is doing, for a progress display: the library counts (atomics, touched
//! once per batch, per 4 MB of rendered users and per uploaded file, so counting costs
//! nothing measurable), and the binary decides whether and how to show it.

use serde::Serialize;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The phases of a run, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Starting,
    /// Reading the export and converting its rows; done and total are input bytes.
    Reading,
    /// Sorting what was read by user (the last runs to disk, the merge set up).
    Sorting,
    /// Merging users and writing their lines; done and total are rows.
    Writing,
    /// Sending the parts to S3; done and total are bytes.
    Uploading,
    Done,
}

impl Phase {
    const ALL: [Phase; 6] = [
        Phase::Starting,
        Phase::Reading,
        Phase::Sorting,
        Phase::Writing,
        Phase::Uploading,
        Phase::Done,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Reading => "reading",
            Phase::Sorting => "sorting",
            Phase::Writing => "writing",
            Phase::Uploading => "uploading",
            Phase::Done => "done",
        }
    }
}

/// Told of each phase as it starts (on the run's thread: it must be quick).
type PhaseHook = Box<dyn Fn(&Snapshot) + Send + Sync>;

/// A run's counters, shared between the run and whoever shows them.
pub struct Progress {
    started: Instant,
    on_phase: OnceLock<PhaseHook>,
    phase: AtomicU8,
    phase_started: Mutex<Instant>,
    done: AtomicU64,
    total: AtomicU64,
    rows_read: AtomicU64,
}

impl Default for Progress {
    fn default() -> Progress {
        let now = Instant::now();
        Progress {
            started: now,
            on_phase: OnceLock::new(),
            phase: AtomicU8::new(Phase::Starting as u8),
            phase_started: Mutex::new(now),
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            rows_read: AtomicU64::new(0),
        }
    }
}

impl Progress {
    /// Enters `phase`, whose work is `total` units (0: not known).
    pub fn start(&self, phase: Phase, total: u64) {
        self.done.store(0, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
        *self.phase_started.lock().expect("no panic while held") = Instant::now();
        self.phase.store(phase as u8, Ordering::Release);
        if let Some(hook) = self.on_phase.get() {
            hook(&self.snapshot());
        }
    }

    /// Calls `hook` at the start of every phase from now on (once per run: a second hook
    /// is ignored).
    pub fn on_phase(&self, hook: impl Fn(&Snapshot) + Send + Sync + 'static) {
        let _ = self.on_phase.set(Box::new(hook));
    }

    /// `n` more units of the phase's work done.
    pub fn add(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }

    /// Where the phase is, when that is known as a position rather than an increment.
    pub fn set(&self, done: u64) {
        self.done.store(done, Ordering::Relaxed);
    }

    pub fn add_rows(&self, rows: u64) {
        self.rows_read.fetch_add(rows, Ordering::Relaxed);
    }

    pub fn phase(&self) -> Phase {
        Phase::ALL[usize::from(self.phase.load(Ordering::Acquire))]
    }

    pub fn snapshot(&self) -> Snapshot {
        let phase = self.phase();
        let phase_elapsed = self
            .phase_started
            .lock()
            .expect("no panic while held")
            .elapsed();
        Snapshot {
            phase,
            elapsed: self.started.elapsed(),
            phase_elapsed,
            done: self.done.load(Ordering::Relaxed),
            total: self.total.load(Ordering::Relaxed),
            rows_read: self.rows_read.load(Ordering::Relaxed),
        }
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Progress").field(&self.snapshot()).finish()
    }
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    pub phase: Phase,
    pub elapsed: Duration,
    pub phase_elapsed: Duration,
    pub done: u64,
    /// 0: not known.
    pub total: u64,
    pub rows_read: u64,
}

/// Below this share of a phase an estimate of its end is mostly noise.
const MIN_FRACTION_FOR_ETA: f64 = 0.02;

impl Snapshot {
    /// The share of the phase done, when its size is known.
    pub fn fraction(&self) -> Option<f64> {
        (self.total > 0).then(|| (self.done as f64 / self.total as f64).min(1.0))
    }

    /// The phase's time left, at its rate so far.
    pub fn eta(&self) -> Option<Duration> {
        let f = self.fraction().filter(|&f| f >= MIN_FRACTION_FOR_ETA)?;
        Some(self.phase_elapsed.mul_f64((1.0 - f) / f))
    }

    /// Units of the phase per second so far.
    pub fn rate(&self) -> Option<f64> {
        let secs = self.phase_elapsed.as_secs_f64();
        (secs > 0.0 && self.done > 0).then(|| self.done as f64 / secs)
    }

    /// The unit the phase counts in.
    fn unit(&self) -> Unit {
        match self.phase {
            Phase::Reading | Phase::Uploading => Unit::Bytes,
            _ => Unit::Rows,
        }
    }

    /// One line for a terminal: `reading   42%  1.2 GB of 2.8 GB  4,210,000 rows  310 MB/s  ETA 5s`.
    pub fn to_line(&self) -> String {
        let mut s = format!("{:<9}", self.phase.name());
        if let Some(f) = self.fraction() {
            let _ = write!(s, " {:>3.0}%", f * 100.0);
        }
        let unit = self.unit();
        match (self.phase, self.total) {
            (Phase::Starting | Phase::Done, _) => {}
            (_, 0) if self.done > 0 => {
                let _ = write!(s, "  {}", unit.amount(self.done));
            }
            (_, 0) => {}
            (_, total) => {
                let _ = match unit {
                    Unit::Bytes => write!(s, "  {} of {}", bytes(self.done), bytes(total)),
                    Unit::Rows => write!(s, "  {} of {} rows", group(self.done), group(total)),
                };
            }
        }
        if matches!(self.phase, Phase::Reading | Phase::Sorting) && self.rows_read > 0 {
            let _ = write!(s, "  {} rows read", group(self.rows_read));
        }
        if let Some(rate) = self.rate() {
            let _ = match unit {
                Unit::Bytes => write!(s, "  {}/s", bytes(rate as u64)),
                Unit::Rows => write!(s, "  {} rows/s", compact(rate)),
            };
        }
        if let Some(eta) = self.eta() {
            let _ = write!(s, "  ETA {}", clock(eta));
        }
        let _ = write!(s, "  [{}]", clock(self.elapsed));
        s
    }

    /// One JSON object, for schedulers (`--progress json`).
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Line {
            phase: Phase,
            elapsed_s: f64,
            done: u64,
            total: Option<u64>,
            unit: &'static str,
            fraction: Option<f64>,
            rows_read: u64,
            rate_per_s: Option<f64>,
            eta_s: Option<f64>,
        }
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        let line = Line {
            phase: self.phase,
            elapsed_s: round(self.elapsed.as_secs_f64()),
            done: self.done,
            total: (self.total > 0).then_some(self.total),
            unit: self.unit().name(),
            fraction: self.fraction().map(round),
            rows_read: self.rows_read,
            rate_per_s: self.rate().map(round),
            eta_s: self.eta().map(|d| round(d.as_secs_f64())),
        };
        serde_json::to_string(&line).unwrap_or_default()
    }
}

#[derive(Clone, Copy)]
enum Unit {
    Bytes,
    Rows,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Bytes => "bytes",
            Unit::Rows => "rows",
        }
    }

    fn amount(self, n: u64) -> String {
        match self {
            Unit::Bytes => bytes(n),
            Unit::Rows => format!("{} rows", group(n)),
        }
    }
}

/// `1.2 GB`, `310 MB`, `12 kB`, `512 B` (decimal units).
fn bytes(n: u64) -> String {
    let units = [(1e9, "GB"), (1e6, "MB"), (1e3, "kB")];
    for (size, name) in units {
        let x = n as f64 / size;
        if x >= 1.0 {
            return if x < 10.0 {
                format!("{x:.1} {name}")
            } else {
                format!("{x:.0} {name}")
            };
        }
    }
    format!("{n} B")
}

/// `2.6M`, `310k`, `42`.
fn compact(x: f64) -> String {
    match x {
        x if x >= 1e6 => format!("{:.1}M", x / 1e6),
        x if x >= 1e3 => format!("{:.0}k", x / 1e3),
        x => format!("{x:.0}"),
    }
}

/// `4,210,000`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `5s`, `2m05s`, `1h02m`.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s / 60 % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(phase: Phase, done: u64, total: u64, secs: u64) -> Snapshot {
        Snapshot {
            phase,
            elapsed: Duration::from_secs(secs + 1),
            phase_elapsed: Duration::from_secs(secs),
            done,
            total,
            rows_read: 4_210_000,
        }
    }

    #[test]
    fn a_line_says_phase_share_amounts_rate_and_time_left() {
        assert_eq!(
            snap(Phase::Reading, 1_200_000_000, 2_800_000_000, 4).to_line(),
            "reading    43%  1.2 GB of 2.8 GB  4,210,000 rows read  300 MB/s  ETA 5s  [5s]"
        );
        assert_eq!(
            snap(Phase::Writing, 500, 10_000_000, 100).to_line(),
            "writing     0%  500 of 10,000,000 rows  5 rows/s  [1m41s]",
            "no estimate below 2%"
        );
        assert_eq!(
            snap(Phase::Sorting, 0, 0, 0).to_line(),
            "sorting    4,210,000 rows read  [1s]"
        );
    }

    #[test]
    fn a_json_line_has_every_field() {
        let v: serde_json::Value =
            serde_json::from_str(&snap(Phase::Uploading, 50, 200, 2).to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "phase": "uploading", "elapsed_s": 3.0, "done": 50, "total": 200,
                "unit": "bytes", "fraction": 0.25, "rows_read": 4_210_000,
                "rate_per_s": 25.0, "eta_s": 6.0
            })
        );
    }

    #[test]
    fn counters_follow_the_phases() {
        let p = Progress::default();
        assert_eq!(p.phase(), Phase::Starting);
        p.start(Phase::Reading, 1000);
        p.add(300);
        p.set(400);
        p.add_rows(7);
        let s = p.snapshot();
        assert_eq!(
            (s.phase, s.done, s.total, s.rows_read),
            (Phase::Reading, 400, 1000, 7)
        );
        let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        p.on_phase(move |s| log.lock().unwrap().push((s.phase, s.total)));
        p.start(Phase::Writing, 7);
        let s = p.snapshot();
        assert_eq!(
            (s.phase, s.done, s.total, s.rows_read),
            (Phase::Writing, 0, 7, 7)
        );
        p.start(Phase::Done, 0);
        assert_eq!(
            *seen.lock().unwrap(),
            [(Phase::Writing, 7), (Phase::Done, 0)]
        );
    }

    #[test]
    fn numbers_read_like_numbers() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1_000), "1,000");
        assert_eq!(group(12_345_678), "12,345,678");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(12_345), "12 kB");
        assert_eq!(bytes(1_500_000), "1.5 MB");
        assert_eq!(compact(2_607_123.0), "2.6M");
        assert_eq!(compact(310_400.0), "310k");
        assert_eq!(clock(Duration::from_secs(125)), "2m05s");
        assert_eq!(clock(Duration::from_secs(3720)), "1h02m");
    }
}
