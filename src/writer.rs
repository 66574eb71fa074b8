//! Cuts the rendered lines into parts, names them (SPEC: File names), gzips them in
//! parallel and publishes them only complete: every part is written under a temporary name
//! and all are renamed at the end; on any failure the temporaries are removed.

use crate::error::{Error, Result};
use crate::inbound::{date_folder, FileName, MAX_COMPRESSED_BYTES};
use crate::mapping::OutputOptions;
use crate::pipeline::UserBlock;
use crate::report::PartReport;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// One output file to be written: a contiguous run of users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: FileName,
    /// Byte range of its lines in the conversion's body.
    pub bytes: Range<usize>,
    pub users: u64,
    pub lines: u64,
}

/// Where and what a run will write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub dir: PathBuf,
    pub gzip: bool,
    pub parts: Vec<Part>,
}

impl Plan {
    /// Groups users into parts of at most `max_part_bytes` uncompressed, in user order, a
    /// user's lines never split across parts. Split numbers only when there is more than one.
    pub fn new(users: &[UserBlock], opts: &OutputOptions, timestamp: u64, out_dir: &Path) -> Plan {
        let ranges = split(users, opts.max_part_bytes);
        let many = ranges.len() > 1;
        let parts = ranges
            .into_iter()
            .enumerate()
            .map(|(i, (bytes, users, lines))| Part {
                name: FileName {
                    dpid: opts.dpid,
                    target_dpid: opts.target_dpid,
                    timestamp,
                    mode: opts.mode,
                    split: many.then_some(i as u32 + 1),
                    gzip: opts.gzip,
                },
                bytes,
                users,
                lines,
            })
            .collect();
        let dir = if opts.date_folder {
            out_dir.join(date_folder(timestamp))
        } else {
            out_dir.to_owned()
        };
        Plan {
            dir,
            gzip: opts.gzip,
            parts,
        }
    }

    pub fn paths(&self) -> Vec<PathBuf> {
        self.parts
            .iter()
            .map(|p| self.dir.join(p.name.render()))
            .collect()
    }

    /// Writes every part, all or nothing. Existing files are an error unless `force`.
    pub fn write(&self, body: &[u8], force: bool, cancel: &AtomicBool) -> Result<Vec<PartReport>> {
        let finals = self.paths();
        if !force {
            if let Some(existing) = finals.iter().find(|p| p.exists()) {
                return Err(Error::OutputExists {
                    path: existing.clone(),
                });
            }
        }
        let created = create_dirs(&self.dir)?;
        let temps: Vec<PathBuf> = finals.iter().map(|p| temp_name(p)).collect();
        let result = self
            .write_temps(body, &temps, cancel)
            .and_then(|sizes| publish(&temps, &finals).map(|()| sizes));
        match result {
            Ok(sizes) => Ok(self
                .parts
                .iter()
                .zip(sizes)
                .map(|(p, bytes)| PartReport {
                    file: p.name.render(),
                    bytes,
                    uncompressed_bytes: p.bytes.len() as u64,
                    users: p.users,
                    lines: p.lines,
                })
                .collect()),
            Err(e) => {
                for t in &temps {
                    let _ = std::fs::remove_file(t);
                }
                // Leave the output folder as it was: remove the folders this run created.
                for dir in created.iter().rev() {
                    let _ = std::fs::remove_dir(dir);
                }
                Err(e)
            }
        }
    }

    /// Writes parts to their temporary names, compressing on all cores; returns file sizes.
    fn write_temps(&self, body: &[u8], temps: &[PathBuf], cancel: &AtomicBool) -> Result<Vec<u64>> {
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<Result<u64>>>> =
            Mutex::new((0..self.parts.len()).map(|_| None).collect());
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(self.parts.len())
            .max(1);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(part) = self.parts.get(i) else { break };
                    let r = write_file(&temps[i], &body[part.bytes.clone()], self.gzip, cancel);
                    let failed = r.is_err();
                    results.lock().expect("no panics while holding the lock")[i] = Some(r);
                    if failed {
                        // Stop handing out work; the run fails anyway.
                        next.store(usize::MAX / 2, Ordering::Relaxed);
                    }
                });
            }
        });
        let results = results
            .into_inner()
            .expect("no panics while holding the lock");
        let mut sizes = Vec::with_capacity(results.len());
        for (r, temp) in results.into_iter().zip(temps) {
            match r {
                Some(Ok(size)) => sizes.push(size),
                Some(Err(e)) => return Err(e),
                None => {
                    return Err(Error::io(
                        temp,
                        std::io::Error::other("not written: another part failed"),
                    ))
                }
            }
        }
        Ok(sizes)
    }
}

/// Greedy cut: (byte range, users, lines) per part.
fn split(users: &[UserBlock], max_part_bytes: u64) -> Vec<(Range<usize>, u64, u64)> {
    let mut parts = Vec::new();
    let mut start = 0usize;
    let mut prev_end = 0usize;
    let (mut n_users, mut n_lines) = (0u64, 0u64);
    for u in users {
        if n_users > 0 && (u.end - start) as u64 > max_part_bytes {
            parts.push((start..prev_end, n_users, n_lines));
            start = prev_end;
            n_users = 0;
            n_lines = 0;
        }
        n_users += 1;
        n_lines += u64::from(u.lines);
        prev_end = u.end;
    }
    if n_users > 0 {
        parts.push((start..prev_end, n_users, n_lines));
    }
    parts
}

fn temp_name(final_path: &Path) -> PathBuf {
    let name = final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    final_path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Creates `dir` and its missing parents; returns the ones it created, outermost first.
fn create_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
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

/// Writes in slices so that a Ctrl-C is noticed within a few megabytes.
const WRITE_SLICE: usize = 4 << 20;

fn write_file(path: &Path, data: &[u8], gzip: bool, cancel: &AtomicBool) -> Result<u64> {
    let io = |e| Error::io(path, e);
    let file = std::fs::File::create(path).map_err(io)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let write_all = |w: &mut dyn Write| -> Result<()> {
        for slice in data.chunks(WRITE_SLICE) {
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Interrupted);
            }
            w.write_all(slice).map_err(io)?;
        }
        Ok(())
    };
    if gzip {
        // flate2's zlib-rs backend; level 6 is gzip's and pigz's default.
        let mut gz = GzEncoder::new(&mut out, Compression::new(6));
        write_all(&mut gz)?;
        gz.finish().map_err(io)?;
    } else {
        write_all(&mut out)?;
    }
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    // A full disk must fail here, not leave a short file behind.
    file.sync_all().map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    if gzip && size > MAX_COMPRESSED_BYTES {
        return Err(Error::io(
            path,
            std::io::Error::other(format!(
                "compressed part is {size} bytes, over AAM's 1 GB limit for gzip files; lower output.max_part_bytes"
            )),
        ));
    }
    Ok(size)
}

/// Writes a small file (report, rejects) so that it appears only complete.
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    let temp = temp_name(path);
    let result = std::fs::write(&temp, contents)
        .and_then(|()| std::fs::rename(&temp, path))
        .map_err(|e| Error::io(path, e));
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

fn publish(temps: &[PathBuf], finals: &[PathBuf]) -> Result<()> {
    for (t, f) in temps.iter().zip(finals) {
        std::fs::rename(t, f).map_err(|e| Error::io(f, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(sizes: &[usize]) -> Vec<UserBlock> {
        let mut end = 0;
        sizes
            .iter()
            .map(|s| {
                end += s;
                UserBlock { end, lines: 1 }
            })
            .collect()
    }

    #[test]
    fn split_keeps_users_whole_and_parts_under_the_limit() {
        let b = blocks(&[40, 40, 30, 50, 10]);
        let parts = split(&b, 100);
        assert_eq!(
            parts,
            vec![(0..80, 2, 2), (80..170, 3, 3)]
                .into_iter()
                .map(|(r, u, l)| (r, u as u64, l as u64))
                .collect::<Vec<_>>()
        );
        assert!(parts.iter().all(|(r, _, _)| r.len() <= 100));
        assert_eq!(split(&b, 1000).len(), 1);
        assert_eq!(split(&[], 1000).len(), 0);
    }
}
