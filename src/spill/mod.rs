//! An external sort of converted rows by user ID, so that memory stays flat however large
//! the export: rows, reduced to (user ID, trait codes), are buffered up to a budget, then
//! sorted and written to a temporary file (a run, under TMPDIR); at the end what is still
//! buffered is sorted and laid out in order in memory, and the runs are merged: each user's
//! rows come out together, users in bytewise ID order. The output does not depend on the
//! budget or on whether anything was spilled.
//!
//! Every run is read front to back: the merge never reads rows scattered over a buffer,
//! which at millions of rows costs a cache miss per row.

mod codec;
mod merge;
mod sort;

pub use codec::CARRIED;
pub use merge::{Merge, UserRows};
pub(crate) use sort::prefix;

use crate::lock::{is_abandoned, InUse};
use merge::{Rows, Run};
use sort::{Buffer, Order, MAX_RESERVE};
use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom};
use std::path::Path;

/// Spill folders are `TMPDIR/aam-etl-XXXXXX`.
const PREFIX: &str = "aam-etl-";
/// The file a spill folder's run keeps locked while it lives.
const IN_USE: &str = "in-use";

/// A run's spill folder, marked in use (see [`remove_abandoned`]) and removed when dropped.
pub(crate) struct SpillDir {
    dir: tempfile::TempDir,
    _in_use: InUse,
}

impl SpillDir {
    fn new() -> io::Result<SpillDir> {
        let dir = tempfile::Builder::new().prefix(PREFIX).tempdir()?;
        let in_use = InUse::mark(&dir.path().join(IN_USE))?;
        Ok(SpillDir {
            dir,
            _in_use: in_use,
        })
    }
}

/// Removes the spill folders that runs killed outright (`kill -9`, out of memory) left in
/// TMPDIR: those whose in-use mark no process holds. Returns a note for each.
pub fn remove_abandoned() -> Vec<String> {
    let tmp = std::env::temp_dir();
    let Ok(entries) = std::fs::read_dir(&tmp) else {
        return Vec::new();
    };
    let mut abandoned: Vec<std::path::PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(PREFIX))
        .map(|e| e.path())
        .filter(|p| is_abandoned(&p.join(IN_USE)))
        .collect();
    abandoned.sort();
    abandoned
        .into_iter()
        .filter_map(|p| {
            let bytes = size_of_dir(&p);
            std::fs::remove_dir_all(&p).ok().map(|()| {
                format!(
                    "{}: removed a spill folder left by an earlier run that was stopped ({bytes} bytes)",
                    p.display()
                )
            })
        })
        .collect()
}

fn size_of_dir(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.len())
            .sum()
    })
}

pub struct Sorter {
    buffer: Buffer,
    budget: usize,
    runs: Vec<File>,
    /// The run being sorted and written on another thread while rows keep coming.
    writing: Option<std::thread::JoinHandle<io::Result<File>>>,
    dir: Option<SpillDir>,
}

impl Sorter {
    /// Keeps up to about `budget` bytes of rows in memory before writing a run (while a run
    /// is sorted and written, up to about two and a half times that: sorting takes up to
    /// the index's size again).
    pub fn new(budget: usize) -> Sorter {
        Sorter {
            buffer: Buffer::default(),
            budget,
            runs: Vec::new(),
            writing: None,
            dir: None,
        }
    }

    pub fn push(&mut self, id: &[u8], file: u32, row: u64, codes: &[u32]) -> io::Result<()> {
        let b = &mut self.buffer;
        if b.arena.capacity() == 0 {
            // Reserved, not touched: the arena grows without being copied.
            b.arena.reserve(self.budget.min(MAX_RESERVE));
        }
        b.push(id, file, row, codes);
        if b.bytes() > self.budget {
            self.wait()?;
            let mut run = self.new_run()?;
            let full = std::mem::take(&mut self.buffer);
            let writer = std::thread::Builder::new().name("sort".into());
            self.writing = Some(writer.spawn(move || {
                full.write_sorted(&mut run)?;
                run.into_inner().map_err(|e| e.into_error())
            })?);
        }
        Ok(())
    }

    /// Waits for the run being written, if any.
    fn wait(&mut self) -> io::Result<()> {
        if let Some(h) = self.writing.take() {
            let run = h.join().expect("the run writer does not panic")?;
            self.runs.push(run);
        }
        Ok(())
    }

    fn new_run(&mut self) -> io::Result<BufWriter<File>> {
        if self.dir.is_none() {
            self.dir = Some(SpillDir::new()?);
        }
        let dir = self.dir.as_ref().expect("created above").dir.path();
        let path = dir.join(format!("run{}", self.runs.len()));
        let file = File::options()
            .create_new(true)
            .read(true)
            .write(true)
            .open(path)?;
        Ok(BufWriter::with_capacity(1 << 20, file))
    }

    /// Whether rows went to disk (tests).
    pub fn spilled(&self) -> bool {
        !self.runs.is_empty() || self.writing.is_some()
    }

    /// Sorts what is buffered; returns all runs, earliest rows first.
    fn into_runs(mut self) -> io::Result<(Vec<Run>, Option<SpillDir>)> {
        // What is still buffered is sorted in two halves on two threads, each written out
        // in order in memory: two more runs, the first half's rows before the second's.
        let Buffer { arena, mut index } = std::mem::take(&mut self.buffer);
        let n = index.len();
        let (first, second) = index.split_at_mut(n / 2);
        let orders = std::thread::scope(|s| {
            let first = s.spawn(|| Order::sort(&arena, first));
            let second = Order::sort(&arena, second);
            [first.join().expect("sorting does not panic"), second]
        });
        // The index is not needed to lay the rows out: its memory goes before they are.
        drop(index);
        let sorted = |order: &Order| {
            // Room for the whole arena: pages never written are never resident.
            let mut rows = Vec::with_capacity(arena.len());
            order.write(&arena, &mut rows).map(|()| rows)
        };
        let in_memory = std::thread::scope(|s| {
            let first = s.spawn(|| sorted(&orders[0]));
            let second = sorted(&orders[1]);
            [
                first.join().expect("writing to memory does not panic"),
                second,
            ]
        });
        drop(arena);
        // Meanwhile the last full run may have been written.
        self.wait()?;
        let mut runs = Vec::new();
        for mut file in std::mem::take(&mut self.runs) {
            file.seek(SeekFrom::Start(0))?;
            runs.push(Run::new(Rows::File(file), Vec::new()));
        }
        for rows in in_memory {
            runs.push(Run::new(Rows::Memory, rows?));
        }
        Ok((runs, self.dir.take()))
    }
}

/// Sorts what the sorters buffer and starts the merge of all their runs.
pub fn merge(sorters: Vec<Sorter>) -> io::Result<Merge> {
    let mut runs = Vec::new();
    let mut dirs = Vec::new();
    for sorter in sorters {
        let (sorted, dir) = sorter.into_runs()?;
        dirs.extend(dir);
        for mut run in sorted {
            if run.advance()? {
                runs.push(run);
            }
        }
    }
    Ok(Merge { runs, _dirs: dirs })
}

impl Drop for Sorter {
    fn drop(&mut self) {
        // Not left running against a temporary folder that is about to go.
        if let Some(h) = self.writing.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(budget: usize, rows: &[(String, Vec<u32>)]) -> (bool, Vec<UserRows>) {
        let mut s = Sorter::new(budget);
        for (i, (id, codes)) in rows.iter().enumerate() {
            s.push(id.as_bytes(), (i % 3) as u32, i as u64 + 1, codes)
                .unwrap();
        }
        let spilled = s.spilled();
        let mut m = merge(vec![s]).unwrap();
        let mut out = Vec::new();
        let mut u = UserRows::default();
        while m.next_user(&mut u).unwrap() {
            out.push(u.clone());
        }
        (spilled, out)
    }

    #[test]
    fn rows_longer_than_a_one_byte_length_come_back_whole() {
        // Bodies of 128 bytes and more take a two-byte length (`encode` moves them over).
        let long_id = "L".repeat(300);
        let rows: Vec<(String, Vec<u32>)> = (0..50u32)
            .map(|i| {
                let id = if i % 2 == 0 {
                    long_id.clone()
                } else {
                    format!("u{i}")
                };
                (id, (0..i * 3).map(|c| c * 70_001).collect())
            })
            .collect();
        for budget in [1, usize::MAX] {
            let (_, users) = users(budget, &rows);
            let long = users.iter().find(|u| u.id == long_id.as_bytes()).unwrap();
            let want: Vec<u32> = rows
                .iter()
                .filter(|(id, _)| *id == long_id)
                .flat_map(|(_, codes)| codes.clone())
                .collect();
            assert_eq!((long.rows, &long.codes), (25, &want), "budget {budget}");
            let u49 = users.iter().find(|u| u.id == b"u49").unwrap();
            assert_eq!(u49.codes, rows[49].1, "budget {budget}");
        }
    }

    #[test]
    fn users_come_out_sorted_and_whole_whether_spilled_or_not() {
        let ids = [
            "b",
            "a",
            "abcdefghZ",
            "abcdefgh",
            "abcdefghA",
            "",
            "B",
            "é",
            "abcdefgh\0",
        ];
        let rows: Vec<(String, Vec<u32>)> = (0..3000u32)
            .map(|i| {
                (
                    ids[(i * 7 % 9) as usize].to_owned(),
                    (0..i % 4).map(|c| c * 1000 + i).collect(),
                )
            })
            .collect();
        let (in_memory, expected) = users(usize::MAX, &rows);
        assert!(!in_memory);
        let mut sorted: Vec<&str> = ids.to_vec();
        sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let got: Vec<&[u8]> = expected.iter().map(|u| &u.id[..]).collect();
        let want: Vec<&[u8]> = sorted.iter().map(|s| s.as_bytes()).collect();
        assert_eq!(got, want);
        for u in &expected {
            // Every row of the user, in input order; the first one named.
            let mine: Vec<usize> = (0..rows.len())
                .filter(|&i| rows[i].0.as_bytes() == u.id)
                .collect();
            assert_eq!(u.rows, mine.len() as u64);
            assert_eq!(u.first_row, mine[0] as u64 + 1);
            assert_eq!(u.first_file, (mine[0] % 3) as u32);
            let codes: Vec<u32> = mine.iter().flat_map(|&i| rows[i].1.clone()).collect();
            assert_eq!(u.codes, codes);
        }
        for budget in [1, 500, 20_000] {
            let (spilled, got) = users(budget, &rows);
            assert!(spilled, "budget {budget}");
            assert_eq!(got, expected, "budget {budget}");
        }
        // Rows dealt out to two sorters, as the converting threads do: the same users, each
        // named by its earliest row, with the same codes in some order.
        for budget in [1, usize::MAX] {
            let mut two = [Sorter::new(budget), Sorter::new(budget)];
            for (i, (id, codes)) in rows.iter().enumerate() {
                two[(i / 10) % 2]
                    .push(id.as_bytes(), (i % 3) as u32, i as u64 + 1, codes)
                    .unwrap();
            }
            let mut m = merge(two.into()).unwrap();
            let mut u = UserRows::default();
            for want in &expected {
                assert!(m.next_user(&mut u).unwrap());
                let mut codes = u.codes.clone();
                codes.sort_unstable();
                let mut want_codes = want.codes.clone();
                want_codes.sort_unstable();
                assert_eq!(
                    (&u.id, u.rows, u.first_file, u.first_row, codes),
                    (
                        &want.id,
                        want.rows,
                        want.first_file,
                        want.first_row,
                        want_codes
                    )
                );
            }
            assert!(!m.next_user(&mut u).unwrap());
        }
    }
}
