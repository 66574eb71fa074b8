//! A run publishes all or nothing. Everything it writes (the parts, the rejects file, the
//! report) is staged under a temporary name beside its final path; [`Transaction::commit`]
//! checks every final name first, moves aside the files it replaces, renames everything in,
//! and undoes what it did if a rename fails. A transaction dropped before its commit removes
//! what it staged and the folders it created. The output folder is locked for the run, and
//! the temporaries of runs that were killed are removed, and named, when the next one starts.

use crate::error::{Error, Result};
use crate::inbound::PartName;
use crate::lock::{Lock, LOCK_FILE};
use std::fs::File;
use std::path::{Path, PathBuf};

/// A file written under a temporary name, `.<name>.<pid>.tmp` beside `path`: hidden, never
/// a valid inbound file name, and on the same file system, so the rename is atomic.
#[derive(Debug)]
pub struct Staged {
    pub temp: PathBuf,
    pub path: PathBuf,
}

impl Staged {
    pub fn new(path: &Path) -> Staged {
        Staged {
            temp: temp_name(path),
            path: path.to_owned(),
        }
    }

    /// Creates the temporary file: the folder must exist and be writable, which is how a
    /// report or rejects path that cannot be written is found before the export is read.
    pub fn create(path: &Path) -> Result<(Staged, File)> {
        let staged = Staged::new(path);
        let file = File::create(&staged.temp).map_err(|e| Error::io(path, e))?;
        Ok((staged, file))
    }
}

/// `.<name>.<pid>.tmp` beside `path`.
pub fn temp_name(path: &Path) -> PathBuf {
    with_hidden_suffix(path, "tmp")
}

fn with_hidden_suffix(path: &Path, suffix: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.{suffix}", std::process::id()))
}

/// The file name a temporary of this tool stands for (`.ftp_dpm_21_1700000000.sync.gz.42.tmp`
/// -> `ftp_dpm_21_1700000000.sync.gz`), if `name` is one.
pub fn temporary_of(name: &str) -> Option<&str> {
    let rest = name.strip_prefix('.')?;
    let rest = rest
        .strip_suffix(".tmp")
        .or_else(|| rest.strip_suffix(".old"))?;
    let (stem, pid) = rest.rsplit_once('.')?;
    (!pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())).then_some(stem)
}

/// What one run publishes, staged.
#[derive(Debug, Default)]
pub struct Transaction {
    staged: Vec<Staged>,
    /// Existing files this commit replaces: moved aside, then deleted once all is in place.
    replaced: Vec<PathBuf>,
    /// Folders created for this run, outermost first: removed (when empty) if it fails.
    created: Vec<PathBuf>,
    committed: bool,
}

impl Transaction {
    pub fn stage(&mut self, staged: Staged) {
        self.staged.push(staged);
    }

    /// Files the commit replaces, whether or not the new files have the same names (a
    /// delivery replaced by `--force` loses its parts the new one does not have).
    pub fn replace(&mut self, paths: impl IntoIterator<Item = PathBuf>) {
        self.replaced.extend(paths);
    }

    pub fn created(&mut self, dirs: impl IntoIterator<Item = PathBuf>) {
        self.created.extend(dirs);
    }

    /// The final paths of what is staged, in order.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.staged.iter().map(|s| s.path.as_path())
    }

    /// Publishes everything staged, or nothing: every final name is checked before the
    /// first rename, and a rename that fails takes back the ones before it.
    pub fn commit(mut self) -> Result<()> {
        for s in &self.staged {
            if s.path.exists() && !self.replaced.contains(&s.path) {
                return Err(Error::OutputExists {
                    path: s.path.clone(),
                });
            }
        }
        let mut aside = Vec::new();
        let result = self.swap_in(&mut aside);
        if result.is_ok() {
            self.committed = true;
            for (_, old) in &aside {
                let _ = std::fs::remove_file(old);
            }
        }
        result
    }

    /// Moves the replaced files aside and the staged ones in; on failure, puts every file
    /// back where it was.
    fn swap_in(&self, aside: &mut Vec<(PathBuf, PathBuf)>) -> Result<()> {
        let mut renamed = Vec::new();
        let result = (|| {
            for path in &self.replaced {
                if path.exists() {
                    let old = with_hidden_suffix(path, "old");
                    std::fs::rename(path, &old).map_err(|e| Error::io(path, e))?;
                    aside.push((path.clone(), old));
                }
            }
            for s in &self.staged {
                std::fs::rename(&s.temp, &s.path).map_err(|e| Error::io(&s.path, e))?;
                renamed.push(s);
            }
            Ok(())
        })();
        if result.is_err() {
            for s in renamed.iter().rev() {
                let _ = std::fs::rename(&s.path, &s.temp);
            }
            for (path, old) in aside.iter().rev() {
                let _ = std::fs::rename(old, path);
            }
            aside.clear();
        }
        result
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        for s in &self.staged {
            let _ = std::fs::remove_file(&s.temp);
        }
        for dir in self.created.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// The output folder, locked for the run. Dropping it releases the lock and removes the
/// folder if this run created it and left it empty.
#[derive(Debug)]
pub struct OutputFolder {
    lock: Option<Lock>,
    created: Vec<PathBuf>,
}

impl OutputFolder {
    /// Creates the folder if needed, locks it, and removes the temporaries of earlier runs
    /// that were killed. Returns the folder and what was found and done, for the user.
    pub fn open(root: &Path) -> Result<(OutputFolder, Vec<String>)> {
        let created = create_dirs(root)?;
        let mut folder = OutputFolder {
            lock: None,
            created,
        };
        let (lock, stale) = Lock::acquire(root, "output folder")?;
        folder.lock = Some(lock);
        let mut notes = Vec::new();
        if let Some(holder) = stale {
            notes.push(format!(
                "{}: took over a lock left by a run that is no longer running ({holder})",
                root.join(LOCK_FILE).display()
            ));
        }
        for leftover in leftovers(root) {
            std::fs::remove_file(&leftover).map_err(|e| Error::io(&leftover, e))?;
            notes.push(format!(
                "{}: removed a temporary file left by an earlier run that was stopped",
                leftover.display()
            ));
        }
        Ok((folder, notes))
    }
}

impl Drop for OutputFolder {
    fn drop(&mut self) {
        drop(self.lock.take());
        for dir in self.created.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// This tool's temporaries of inbound files in `root` and its `date=` folders.
pub fn leftovers(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_owned()];
    if let Ok(entries) = std::fs::read_dir(root) {
        dirs.extend(
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("date="))
                .map(|e| e.path())
                .filter(|p| p.is_dir()),
        );
    }
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut here: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                temporary_of(&name).is_some_and(|n| PartName::stem_of(n).is_some())
            })
            .map(|e| e.path())
            .collect();
        here.sort();
        found.extend(here);
    }
    found
}

/// The files already in `dir` that belong to the delivery of `stem` (for inbound files:
/// the same data source, target and timestamp), any mode, part or compression.
pub fn existing_delivery(dir: &Path, stem: &str) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    // Files only: a folder with such a name is in the way, and the commit says so.
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| PartName::stem_of(&e.file_name().to_string_lossy()).as_deref() == Some(stem))
        .map(|e| e.path())
        .collect();
    found.sort();
    Ok(found)
}

/// Creates `dir` and its missing parents; returns the ones it created, outermost first.
pub fn create_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut d = Some(dir);
    while let Some(p) = d {
        if p.as_os_str().is_empty() || p.exists() {
            break;
        }
        missing.push(p.to_owned());
        d = p.parent();
    }
    missing.reverse();
    for p in &missing {
        std::fs::create_dir(p).map_err(|e| Error::io(p, e))?;
    }
    Ok(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(dir: &Path, name: &str, text: &str) -> Staged {
        let s = Staged::new(&dir.join(name));
        std::fs::write(&s.temp, text).unwrap();
        s
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut n: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    }

    #[test]
    fn a_commit_replaces_the_whole_earlier_delivery() {
        let dir = tempfile::tempdir().unwrap();
        for n in 1..=3 {
            std::fs::write(
                dir.path()
                    .join(format!("ftp_dpm_21_1700000000.sync.{n}.gz")),
                "old",
            )
            .unwrap();
        }
        let old = existing_delivery(dir.path(), "ftp_dpm_21_1700000000").unwrap();
        assert_eq!(old.len(), 3);
        let mut tx = Transaction::default();
        tx.stage(stage(dir.path(), "ftp_dpm_21_1700000000.sync.gz", "new"));
        tx.replace(old);
        tx.commit().unwrap();
        assert_eq!(names(dir.path()), ["ftp_dpm_21_1700000000.sync.gz"]);
    }

    #[test]
    fn a_failed_rename_takes_back_the_ones_before_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("report.json"), "old report").unwrap();
        let mut tx = Transaction::default();
        tx.stage(stage(dir.path(), "report.json", "new report"));
        tx.replace([dir.path().join("report.json")]);
        tx.stage(stage(dir.path(), "ftp_dpm_21_1700000000.sync.1", "part 1"));
        // A folder in the way of part 2: its rename fails.
        let part2 = stage(dir.path(), "ftp_dpm_21_1700000000.sync.2", "part 2");
        std::fs::create_dir(&part2.path).unwrap();
        std::fs::write(part2.path.join("x"), "").unwrap();
        tx.stage(part2);
        assert!(tx.commit().is_err());
        assert_eq!(
            names(dir.path()),
            ["ftp_dpm_21_1700000000.sync.2", "report.json"]
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("report.json")).unwrap(),
            "old report"
        );
    }

    #[test]
    fn a_name_taken_by_another_file_stops_the_commit_before_any_rename() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b"), "someone else's").unwrap();
        let mut tx = Transaction::default();
        tx.stage(stage(dir.path(), "a", "mine"));
        tx.stage(stage(dir.path(), "b", "mine"));
        let err = tx.commit().unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(names(dir.path()), ["b"]);
    }

    #[test]
    fn temporaries_are_recognised_by_name() {
        assert_eq!(
            temporary_of(".ftp_dpm_21_1700000000.sync.gz.4242.tmp"),
            Some("ftp_dpm_21_1700000000.sync.gz")
        );
        assert_eq!(
            temporary_of(".ftp_dpm_21_1700000000.sync.1.77.old"),
            Some("ftp_dpm_21_1700000000.sync.1")
        );
        assert_eq!(temporary_of(".hidden"), None);
        assert_eq!(temporary_of("ftp_dpm_21_1700000000.sync.gz"), None);
        assert_eq!(temporary_of(".x.abc.tmp"), None);
    }
}
