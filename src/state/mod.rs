//! Incremental delivery (`--state DIR`): the state folder remembers what AAM holds for each
//! user from this data source, so that a daily run on a full export sends only what changed
//! ([`diff`]), and after AAM applies the delivery its profiles equal the export.
//!
//! The folder holds `state.json` (the data source it is bound to, the current snapshot, the
//! last delivery), the snapshot (`users-<TIMESTAMP>.parquet`, see [`snapshot`]) and
//! `ledger.jsonl` (one line per delivery). A run writes its new snapshot beside the old one
//! and advances the state only once its delivery is complete: renaming the new `state.json`
//! into place is the one step that commits it. A run that fails, or is killed at any point,
//! leaves either the old state (the next run sends the same diff again, which is harmless)
//! or the new state with its delivery published. One run at a time holds the folder.

pub mod diff;
pub mod snapshot;

use crate::error::{Error, Result};
use crate::inbound::{date_folder, IdSyncName, IdType};
use crate::lock::Lock;
use crate::mapping::Mapping;
use crate::publish::{create_dirs, temp_name};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

const META: &str = "state.json";
const LEDGER: &str = "ledger.jsonl";
/// The version of the folder's layout.
const FORMAT: u32 = 1;

/// What the state folder says of itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub format: u32,
    /// The data source the state belongs to: a run for another one is refused.
    pub dpid: u64,
    pub target_dpid: Option<u64>,
    pub id_type: IdType,
    /// For the ID pairs sent in ID-sync files: what the files are (`adobe_id_0_21`); absent
    /// for inbound files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_sync: Option<String>,
    /// The current snapshot's file name in the folder.
    pub snapshot: String,
    /// The last delivery (its ledger entry), and the timestamp of the last full one.
    pub last: LedgerEntry,
    pub last_full: u64,
}

/// What an ID-sync mapping's files are, without their timestamp: `adobe_id_0_21`.
fn id_sync_kind(mapping: &Mapping) -> Option<String> {
    let sync = mapping.id_sync.as_ref()?;
    Some(IdSyncName::series(sync.kind, &sync.dpids))
}

/// One delivery, as the ledger records it: what was sent, why, and from what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub timestamp: u64,
    /// UTC day of the timestamp (`date=YYYY-MM-DD`).
    pub date: String,
    pub full: bool,
    pub files: Vec<String>,
    pub users: LedgerUsers,
    pub traits_added: u64,
    pub traits_removed: u64,
    /// Users AAM keeps signals of that no file can take back.
    pub users_with_signals_kept: u64,
    pub inputs: Vec<LedgerInput>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerUsers {
    pub new: u64,
    pub changed: u64,
    pub overwritten: u64,
    pub gone: u64,
    pub returned: u64,
    pub unchanged: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerInput {
    pub path: String,
    pub bytes: u64,
}

/// A state folder, locked for the run.
#[derive(Debug)]
pub struct State {
    dir: PathBuf,
    _lock: Lock,
    pub meta: Option<Meta>,
    /// The new snapshot, written under a temporary name until the commit.
    next_snapshot: Option<PathBuf>,
    /// Notes for the user (a stale lock taken over).
    pub notes: Vec<String>,
}

impl State {
    /// Opens (creating) the folder, locks it, reads what it holds and checks that it belongs
    /// to the mapping's data source.
    pub fn open(dir: &Path, mapping: &Mapping) -> Result<State> {
        create_dirs(dir)?;
        let (lock, stale) = Lock::acquire(dir, "state folder")?;
        let mut notes = Vec::new();
        if let Some(holder) = stale {
            notes.push(format!(
                "{}: took over a lock left by a run that is no longer running ({holder})",
                dir.join(crate::lock::LOCK_FILE).display()
            ));
        }
        let meta_path = dir.join(META);
        let meta: Option<Meta> = match std::fs::read(&meta_path) {
            Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| {
                Error::source(
                    &meta_path,
                    format!("not a state file this version reads: {e}"),
                )
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(&meta_path, e)),
        };
        let state = State {
            dir: dir.to_owned(),
            _lock: lock,
            meta,
            next_snapshot: None,
            notes,
        };
        state.check_binding(mapping)?;
        state.repair_ledger()?;
        state.remove_leftovers();
        Ok(state)
    }

    /// A state belongs to one data source, target and ID type.
    fn check_binding(&self, mapping: &Mapping) -> Result<()> {
        let Some(meta) = &self.meta else {
            return Ok(());
        };
        if meta.format != FORMAT {
            return Err(Error::source(
                self.dir.join(META),
                format!(
                    "state format {} is not the {FORMAT} this version reads",
                    meta.format
                ),
            ));
        }
        let out = &mapping.output;
        let was = (meta.dpid, meta.target_dpid, meta.id_type);
        let now = (out.dpid, out.target_dpid, mapping.user_id.id_type);
        let sync = id_sync_kind(mapping);
        if meta.id_sync != sync {
            let show = |s: &Option<String>| match s {
                Some(kind) => format!("the ID pairs of {kind}_* files"),
                None => "inbound traits".to_owned(),
            };
            return Err(Error::Usage(format!(
                "{}: this state holds {}, but the mapping sends {}; use a state folder of its own",
                self.dir.display(),
                show(&meta.id_sync),
                show(&sync)
            )));
        }
        if was != now {
            let show = |(d, t, i): (u64, Option<u64>, IdType)| {
                let t = t.map_or(String::new(), |t| format!(", target DPID {t}"));
                format!("DPID {d}{t}, {} IDs", i.name())
            };
            return Err(Error::Usage(format!(
                "{}: this state belongs to {}, but the mapping sends {}; use the state folder of that data source, or a new one",
                self.dir.display(),
                show(was),
                show(now)
            )));
        }
        Ok(())
    }

    /// The path of the current snapshot, if there is one.
    pub fn snapshot(&self) -> Option<PathBuf> {
        self.meta.as_ref().map(|m| self.dir.join(&m.snapshot))
    }

    /// Whether this run is a full refresh: asked for, or due (`refresh_days`).
    pub fn refresh_due(&self, mapping: &Mapping, timestamp: u64) -> bool {
        match (&self.meta, mapping.state.refresh_days) {
            (Some(meta), Some(days)) => timestamp >= meta.last_full + days * 86_400,
            _ => false,
        }
    }

    /// The file the new snapshot is written to, until the commit.
    pub fn new_snapshot(&mut self) -> PathBuf {
        let path = temp_name(&self.dir.join("users.parquet"));
        self.next_snapshot = Some(path.clone());
        path
    }

    /// Advances the state to the new snapshot, once the delivery it describes is
    /// complete: the snapshot gets its own name, then `state.json` is replaced (the commit),
    /// then the ledger gets its line and the old snapshot goes.
    pub fn commit(&mut self, mapping: &Mapping, entry: LedgerEntry) -> Result<()> {
        let Some(written) = self.next_snapshot.take() else {
            return Ok(());
        };
        let name = format!("users-{}.parquet", entry.timestamp);
        let final_path = self.dir.join(&name);
        std::fs::rename(&written, &final_path).map_err(|e| Error::io(&final_path, e))?;
        let old = self.snapshot().filter(|p| *p != final_path);
        let last_full = match &self.meta {
            Some(m) if !entry.full => m.last_full,
            _ => entry.timestamp,
        };
        let meta = Meta {
            format: FORMAT,
            dpid: mapping.output.dpid,
            target_dpid: mapping.output.target_dpid,
            id_type: mapping.user_id.id_type,
            id_sync: id_sync_kind(mapping),
            snapshot: name,
            last: entry,
            last_full,
        };
        let meta_path = self.dir.join(META);
        let temp = temp_name(&meta_path);
        let json = serde_json::to_vec_pretty(&meta).map_err(std::io::Error::other);
        json.and_then(|j| write_synced(&temp, &j))
            .and_then(|()| std::fs::rename(&temp, &meta_path))
            .map_err(|e| Error::io(&meta_path, e))?;
        self.meta = Some(meta);
        self.repair_ledger()?;
        if let Some(old) = old {
            let _ = std::fs::remove_file(old);
        }
        Ok(())
    }

    /// The ledger's last line is the last delivery: appended after each commit, and here
    /// again if a run was stopped between the commit and the append.
    fn repair_ledger(&self) -> Result<()> {
        let Some(meta) = &self.meta else {
            return Ok(());
        };
        let path = self.dir.join(LEDGER);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let last: Option<LedgerEntry> = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .and_then(|l| serde_json::from_str(l).ok());
        if last.as_ref() == Some(&meta.last) {
            return Ok(());
        }
        let mut line = serde_json::to_vec(&meta.last)
            .map_err(|e| Error::io(&path, std::io::Error::other(e)))?;
        line.push(b'\n');
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        file.write_all(&line)
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io(&path, e))
    }

    /// Temporaries of runs that were stopped, and snapshots no `state.json` names.
    fn remove_leftovers(&self) {
        let current = self.meta.as_ref().map(|m| m.snapshot.clone());
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for e in entries.filter_map(|e| e.ok()) {
            let name = e.file_name().to_string_lossy().into_owned();
            let stale_temp = name.starts_with('.') && name.ends_with(".tmp");
            let stale_snapshot = name.starts_with("users-")
                && name.ends_with(".parquet")
                && current.as_deref() != Some(name.as_str());
            if stale_temp || stale_snapshot {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

impl Drop for State {
    fn drop(&mut self) {
        // Not committed: the state stays as it was.
        if let Some(p) = self.next_snapshot.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// A ledger entry for a delivery.
pub fn ledger_entry(
    timestamp: u64,
    full: bool,
    files: Vec<String>,
    counts: &crate::report::DiffCounts,
    inputs: &[PathBuf],
) -> LedgerEntry {
    LedgerEntry {
        timestamp,
        date: date_folder(timestamp)["date=".len()..].to_owned(),
        full,
        files,
        users: LedgerUsers {
            new: counts.users_new,
            changed: counts.users_changed,
            overwritten: counts.users_overwritten,
            gone: counts.users_gone,
            returned: counts.users_returned,
            unchanged: counts.users_unchanged,
        },
        traits_added: counts.traits_added,
        traits_removed: counts.traits_removed,
        users_with_signals_kept: counts.users_with_signals_kept,
        inputs: inputs
            .iter()
            .map(|p| LedgerInput {
                path: p.display().to_string(),
                bytes: std::fs::metadata(p).map_or(0, |m| m.len()),
            })
            .collect(),
    }
}
