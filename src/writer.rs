//! Cuts rendered lines into parts as they arrive, names them (SPEC: File names) and gzips
//! them on all cores. Every part is written under a temporary name; the finished parts are
//! handed to the run's [`Transaction`], which publishes them with the rest of the run or not
//! at all. Until then, dropping the writer removes the temporaries and the folders it
//! created.

use crate::error::{Error, Result};
use crate::gzip::Member;
use crate::inbound::{date_folder, PartLimit, PartName, Rendered, MAX_COMPRESSED_BYTES};
use crate::mapping::OutputOptions;
use crate::publish::{create_dirs, temp_name, Staged, Transaction};
use crate::report::PartReport;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// One output file: a run of users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: PartName,
    pub uncompressed_bytes: u64,
    /// Size on disk (compressed when gzip is on); 0 in a dry run.
    pub bytes: u64,
    pub users: u64,
    pub lines: u64,
}

/// Where and what a run writes (or, in a dry run, would write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub dir: PathBuf,
    pub parts: Vec<Part>,
}

impl Plan {
    pub fn paths(&self) -> Vec<PathBuf> {
        self.parts
            .iter()
            .map(|p| self.dir.join(p.name.render()))
            .collect()
    }

    /// The parts as the receipt lists them.
    pub fn reports(&self) -> Vec<PartReport> {
        self.parts
            .iter()
            .map(|p| PartReport {
                file: p.name.render(),
                bytes: p.bytes,
                uncompressed_bytes: p.uncompressed_bytes,
                users: p.users,
                lines: p.lines,
            })
            .collect()
    }
}

pub struct PartWriter<'o> {
    opts: &'o OutputOptions,
    /// The delivery's stem and this writer's ending (`sync`, `overwrite`).
    stem: String,
    ending: &'static str,
    dir: PathBuf,
    /// Count and cut, write nothing.
    dry_run: bool,
    threads: usize,
    /// Folders this run created, outermost first.
    created: Vec<PathBuf>,
    /// Closed parts, with their temporary files.
    closed: Vec<(Part, PathBuf)>,
    open: Option<OpenPart>,
    /// Handed to a transaction: no longer this writer's to clean up.
    handed_over: bool,
}

struct OpenPart {
    part: Part,
    temp: PathBuf,
    sink: Sink,
}

enum Sink {
    Plain(BufWriter<File>),
    Gzip(Member<BufWriter<File>>),
    Nothing,
}

impl<'o> PartWriter<'o> {
    /// Writes the parts `<stem>.<ending>[.N][.gz]` (a delivery may have a `.sync` and an
    /// `.overwrite` file).
    pub fn new(
        opts: &'o OutputOptions,
        (stem, ending): (String, &'static str),
        timestamp: u64,
        out_dir: &Path,
        dry_run: bool,
    ) -> PartWriter<'o> {
        PartWriter {
            opts,
            stem,
            ending,
            dir: delivery_dir(opts, timestamp, out_dir),
            dry_run,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            created: Vec::new(),
            closed: Vec::new(),
            open: None,
            handed_over: false,
        }
    }

    /// The name of the part `split`.
    fn name(&self, split: Option<u32>) -> PartName {
        PartName {
            stem: self.stem.clone(),
            ending: self.ending,
            split,
            gzip: self.opts.gzip,
        }
    }

    /// Adds users' lines: a part is closed when the next user would take it over
    /// `max_part_bytes`; a user's lines never straddle two parts.
    pub fn push(&mut self, r: &Rendered) -> Result<()> {
        let limit = PartLimit {
            max_bytes: self.opts.max_part_bytes,
        };
        let mut start = 0usize;
        let mut run_start = 0usize;
        for u in &r.users {
            let len = (u.end - start) as u64;
            if let Some(open) = &self.open {
                let part = &open.part;
                if limit.closes_before(part.uncompressed_bytes, part.users, len) {
                    self.write(&r.body[run_start..start])?;
                    run_start = start;
                    self.close()?;
                }
            }
            let part = &mut self.ensure_open()?.part;
            part.users += 1;
            part.lines += u64::from(u.lines);
            part.uncompressed_bytes += len;
            start = u.end;
        }
        self.write(&r.body[run_start..start])
    }

    fn ensure_open(&mut self) -> Result<&mut OpenPart> {
        if self.open.is_none() {
            let index = self.closed.len() as u32 + 1;
            let name = self.name(Some(index));
            // `.ftp_dpm_21_1700000000.sync.1.gz.4242.tmp`: hidden, and never a valid name.
            let temp = temp_name(&self.dir.join(name.render()));
            let sink = if self.dry_run {
                Sink::Nothing
            } else {
                if self.closed.is_empty() {
                    self.created = create_dirs(&self.dir)?;
                }
                let file = File::create(&temp).map_err(|e| Error::io(&temp, e))?;
                let out = BufWriter::with_capacity(1 << 20, file);
                if self.opts.gzip {
                    Sink::Gzip(
                        Member::new(out, self.threads, self.opts.gzip_level)
                            .map_err(|e| Error::io(&temp, e))?,
                    )
                } else {
                    Sink::Plain(out)
                }
            };
            self.open = Some(OpenPart {
                part: Part {
                    name,
                    uncompressed_bytes: 0,
                    bytes: 0,
                    users: 0,
                    lines: 0,
                },
                temp,
                sink,
            });
        }
        Ok(self.open.as_mut().expect("opened above"))
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let Some(open) = &mut self.open else {
            return Ok(());
        };
        let r = match &mut open.sink {
            Sink::Plain(w) => w.write_all(bytes),
            Sink::Gzip(m) => m.write(bytes),
            Sink::Nothing => Ok(()),
        };
        r.map_err(|e| Error::io(&open.temp, e))
    }

    /// Finishes the open part: flushed, synced (a full disk fails here, not later) and
    /// checked against AAM's size limit.
    fn close(&mut self) -> Result<()> {
        let Some(OpenPart { part, temp, sink }) = self.open.take() else {
            return Ok(());
        };
        let size = finish_sink(sink).map_err(|e| Error::io(&temp, e));
        // Registered before anything can fail, so that dropping the writer removes the file.
        self.closed.push((part, temp));
        let (part, temp) = self.closed.last_mut().expect("pushed above");
        part.bytes = size?;
        if self.opts.gzip && part.bytes > MAX_COMPRESSED_BYTES {
            return Err(Error::io(
                &*temp,
                std::io::Error::other(format!(
                    "compressed part is {} bytes, over AAM's 1 GB limit for gzip files; lower output.max_part_bytes",
                    part.bytes
                )),
            ));
        }
        Ok(())
    }

    /// Closes the last part and names the parts: split numbers only when there are several.
    pub fn finish(&mut self) -> Result<Plan> {
        self.close()?;
        let many = self.closed.len() > 1;
        for (part, _) in &mut self.closed {
            if !many {
                part.name.split = None;
            }
        }
        Ok(Plan {
            dir: self.dir.clone(),
            parts: self.closed.iter().map(|(p, _)| p.clone()).collect(),
        })
    }

    /// Hands the finished parts (and the folders made for them) to `tx`, which publishes
    /// them or, if the run fails, removes them.
    pub fn stage(mut self, plan: &Plan, tx: &mut Transaction) {
        for ((_, temp), path) in self.closed.iter().zip(plan.paths()) {
            tx.stage(Staged {
                temp: temp.clone(),
                path,
            });
        }
        tx.created(std::mem::take(&mut self.created));
        self.handed_over = true;
    }
}

/// Where a delivery's files go: the output folder, or its `date=` folder.
pub fn delivery_dir(opts: &OutputOptions, timestamp: u64, out_dir: &Path) -> PathBuf {
    if opts.date_folder {
        out_dir.join(date_folder(timestamp))
    } else {
        out_dir.to_owned()
    }
}

impl Drop for PartWriter<'_> {
    fn drop(&mut self) {
        if self.handed_over {
            return;
        }
        if let Some(open) = self.open.take() {
            drop(open.sink);
            let _ = std::fs::remove_file(&open.temp);
        }
        for (_, temp) in &self.closed {
            let _ = std::fs::remove_file(temp);
        }
        // Leave the output folder as it was: remove the folders this run created.
        for dir in self.created.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Ends a part's file; returns its size (0 in a dry run).
fn finish_sink(sink: Sink) -> std::io::Result<u64> {
    let file = match sink {
        Sink::Plain(w) => w.into_inner().map_err(|e| e.into_error())?,
        Sink::Gzip(m) => m.finish()?.0.into_inner().map_err(|e| e.into_error())?,
        Sink::Nothing => return Ok(0),
    };
    file.sync_all()?;
    Ok(file.metadata()?.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::{Mode, UserBlock};

    fn stem() -> (String, &'static str) {
        ("ftp_dpm_21_1700000000".into(), "sync")
    }

    fn rendered(sizes: &[usize]) -> Rendered {
        let mut r = Rendered::default();
        for (i, &s) in sizes.iter().enumerate() {
            let line = format!("{i}\t{}\n", "x".repeat(s - 3 - i.to_string().len() + 1));
            let line = &line[..s];
            r.body.extend_from_slice(line.as_bytes());
            r.users.push(UserBlock {
                end: r.body.len(),
                lines: 1,
            });
        }
        r
    }

    fn opts(max_part_bytes: u64, gzip: bool) -> OutputOptions {
        OutputOptions {
            dpid: 21,
            target_dpid: None,
            mode: Mode::Sync,
            gzip,
            gzip_level: crate::gzip::DEFAULT_LEVEL,
            date_folder: false,
            max_part_bytes,
            deliver: None,
        }
    }

    fn part_sizes(plan: &Plan) -> Vec<(u64, u64)> {
        plan.parts
            .iter()
            .map(|p| (p.uncompressed_bytes, p.users))
            .collect()
    }

    #[test]
    fn parts_keep_users_whole_and_stay_under_the_limit() {
        let o = opts(100, false);
        let dir = tempfile::tempdir().unwrap();
        let mut w = PartWriter::new(&o, stem(), 1_700_000_000, dir.path(), true);
        // Pushed in two pieces: the cut does not depend on how users arrive.
        let r = rendered(&[40, 40, 30]);
        w.push(&r).unwrap();
        w.push(&rendered(&[50, 10])).unwrap();
        let plan = w.finish().unwrap();
        assert_eq!(part_sizes(&plan), vec![(80, 2), (90, 3)]);
        assert_eq!(plan.parts[0].name.split, Some(1));
        assert_eq!(plan.parts[1].name.split, Some(2));
        // Dry run: nothing on disk.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn one_part_has_no_split_number_and_files_appear_only_when_published() {
        let o = opts(1000, true);
        let dir = tempfile::tempdir().unwrap();
        let r = rendered(&[40, 40, 30]);
        let mut w = PartWriter::new(&o, stem(), 1_700_000_000, dir.path(), false);
        w.push(&r).unwrap();
        let plan = w.finish().unwrap();
        assert_eq!(part_sizes(&plan), vec![(110, 3)]);
        let visible = || {
            std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| !n.starts_with('.'))
                .count()
        };
        assert_eq!(visible(), 0);
        let mut tx = Transaction::default();
        w.stage(&plan, &mut tx);
        assert_eq!(visible(), 0);
        tx.commit().unwrap();
        let path = dir.path().join("ftp_dpm_21_1700000000.sync.gz");
        let mut text = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(File::open(path).unwrap()),
            &mut text,
        )
        .unwrap();
        assert_eq!(text, r.body);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_dropped_writer_leaves_nothing_behind() {
        let o = opts(50, false);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("new/deeper");
        let mut w = PartWriter::new(&o, stem(), 1_700_000_000, &out, false);
        w.push(&rendered(&[40, 40, 30])).unwrap();
        assert!(out.exists());
        drop(w);
        assert!(!dir.path().join("new").exists());
    }
}
