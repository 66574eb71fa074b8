//! One run at a time per folder: a lock file that names its holder (pid, host, start time),
//! held with an advisory file lock. The operating system releases the file lock when its
//! process dies, however it dies (`kill -9` included), so a lock file left behind is known
//! to be stale the moment it can be locked again: it is taken over, and the run says so.

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lock file's name in the folder it guards.
pub const LOCK_FILE: &str = ".aam-etl.lock";

/// A held lock; dropping it removes the lock file and releases the lock.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
    file: File,
}

impl Lock {
    /// Locks `dir` (which must exist) for this process. `what` names the folder in messages
    /// ("output folder", "state folder"). Returns the lock, and the holder of a stale lock
    /// that was taken over, if any.
    pub fn acquire(dir: &Path, what: &str) -> Result<(Lock, Option<String>)> {
        let path = dir.join(LOCK_FILE);
        loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| Error::io(&path, e))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    return Err(Error::Locked {
                        path: dir.to_owned(),
                        what: what.to_owned(),
                        holder: holder_of(&mut file),
                    })
                }
                Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
            // The holder before us may have removed the file between our open and our lock:
            // then we locked a file nobody else will see, and must start again.
            if !same_file(&file, &path) {
                continue;
            }
            let stale = holder_of(&mut file).filter(|h| !h.is_empty());
            write_holder(&mut file).map_err(|e| Error::io(&path, e))?;
            return Ok((Lock { path, file }, stale));
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Removed while still locked, so that nobody takes over a lock that is going away.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// Whether `file` is the file at `path` now.
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// What a lock file says of its holder, on one line.
fn holder_of(file: &mut File) -> Option<String> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    Some(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn write_holder(file: &mut File) -> std::io::Result<()> {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    writeln!(
        file,
        "pid={} host={} started={started}",
        std::process::id(),
        host_name()
    )?;
    file.sync_all()
}

/// This machine's name, as the lock file records it.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Whether a file can be locked now, i.e. no live process holds it: how the leftovers of
/// a killed run (its spill folder) are told from those of a running one.
pub fn is_abandoned(path: &Path) -> bool {
    File::open(path).is_ok_and(|f| f.try_lock().is_ok())
}

/// Holds a file locked for as long as the process lives (or the value is dropped): marks a
/// folder as in use, for [`is_abandoned`].
#[derive(Debug)]
pub struct InUse {
    _file: File,
}

impl InUse {
    pub fn mark(path: &Path) -> std::io::Result<InUse> {
        // Locked under another name, then renamed: `path` is never seen unlocked.
        let fresh = path.with_extension("new");
        let file = File::create(&fresh)?;
        file.lock()?;
        std::fs::rename(&fresh, path)?;
        Ok(InUse { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_a_folder_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (first, stale) = Lock::acquire(dir.path(), "output folder").unwrap();
        assert_eq!(stale, None);
        let err = Lock::acquire(dir.path(), "output folder").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("in use by another aam-etl run"), "{msg}");
        assert!(
            msg.contains(&format!("pid={}", std::process::id())),
            "{msg}"
        );
        drop(first);
        assert!(!dir.path().join(LOCK_FILE).exists());
        let (_again, stale) = Lock::acquire(dir.path(), "output folder").unwrap();
        assert_eq!(stale, None);
    }

    #[test]
    fn a_lock_file_nobody_holds_is_taken_over_and_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(LOCK_FILE),
            "pid=999999 host=elsewhere started=1\n",
        )
        .unwrap();
        let (_lock, stale) = Lock::acquire(dir.path(), "output folder").unwrap();
        assert_eq!(
            stale.as_deref(),
            Some("pid=999999 host=elsewhere started=1")
        );
        let now = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert!(now.starts_with(&format!("pid={} ", std::process::id())));
    }

    #[test]
    fn a_marked_file_is_in_use_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let mark = InUse::mark(&path).unwrap();
        assert!(!is_abandoned(&path));
        drop(mark);
        assert!(is_abandoned(&path));
        assert!(!is_abandoned(&dir.path().join("missing")));
    }
}
