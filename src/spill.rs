//! An external sort of converted rows by user ID, so that memory stays flat however large
//! the export: rows, reduced to (user ID, trait codes), are buffered up to a budget, then
//! sorted and written to a temporary file (a run, under TMPDIR); at the end the runs are
//! merged, and each user's rows come out together, users in bytewise ID order. The output
//! does not depend on the budget or on whether anything was spilled.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};

/// The first 16 bytes of an ID as a big-endian integer: decides most comparisons (typical
/// IDs are shorter) without touching the bytes.
fn prefix(id: &[u8]) -> u128 {
    let mut b = [0u8; 16];
    let n = id.len().min(16);
    b[..n].copy_from_slice(&id[..n]);
    u128::from_be_bytes(b)
}

/// (ID prefix, offset in the arena, encoded length) of a buffered row.
type Entry = (u128, usize, u32);
/// Bytes of index per buffered row, counted against the budget.
const INDEX_BYTES: usize = std::mem::size_of::<Entry>();

/// Rows in memory, encoded back to back, with an index to sort them by.
#[derive(Default)]
struct Buffer {
    arena: Vec<u8>,
    index: Vec<Entry>,
}

impl Buffer {
    fn bytes(&self) -> usize {
        self.arena.len() + self.index.len() * INDEX_BYTES
    }

    /// Writes the rows sorted by ID; rows of one ID stay in the order pushed.
    fn write_sorted(mut self, out: &mut impl Write) -> io::Result<()> {
        sort_entries(&self.arena, &mut self.index);
        for &(_, at, len) in &self.index {
            out.write_all(&self.arena[at..at + len as usize])?;
        }
        Ok(())
    }
}

/// Sorts index entries by ID, then by position (the order pushed).
fn sort_entries(arena: &[u8], index: &mut [Entry]) {
    let id_at = |at: usize| {
        let mut pos = at;
        let len = get_varint(arena, &mut pos) as usize;
        &arena[pos..pos + len]
    };
    index.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| id_at(a.1).cmp(id_at(b.1)))
            .then(a.1.cmp(&b.1))
    });
}

/// Reads the rows of a sorted slice of a buffer's index, as a run file would hold them.
struct SortedReader {
    buffer: std::sync::Arc<Buffer>,
    entries: std::ops::Range<usize>,
    /// Bytes of the current row already read.
    within: usize,
}

impl Read for SortedReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < out.len() && !self.entries.is_empty() {
            let (_, at, len) = self.buffer.index[self.entries.start];
            let row = &self.buffer.arena[at + self.within..at + len as usize];
            let take = row.len().min(out.len() - n);
            out[n..n + take].copy_from_slice(&row[..take]);
            n += take;
            self.within += take;
            if self.within == len as usize {
                self.entries.start += 1;
                self.within = 0;
            }
        }
        Ok(n)
    }
}

pub struct Sorter {
    buffer: Buffer,
    budget: usize,
    runs: Vec<File>,
    /// The run being sorted and written on another thread while rows keep coming.
    writing: Option<std::thread::JoinHandle<io::Result<File>>>,
    dir: Option<tempfile::TempDir>,
}

impl Sorter {
    /// Keeps up to about `budget` bytes of rows in memory before writing a run (while a run
    /// is written, up to twice that).
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
        let start = b.arena.len();
        encode(&mut b.arena, id, file, row, codes);
        let len = (b.arena.len() - start) as u32;
        b.index.push((prefix(id), start, len));
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
            self.dir = Some(tempfile::Builder::new().prefix("aam-etl-").tempdir()?);
        }
        let dir = self.dir.as_ref().expect("created above").path();
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

    /// Sorts what is buffered and starts the merge of all runs.
    pub fn finish(mut self) -> io::Result<Merge> {
        let mut in_memory: Vec<Box<dyn Read + Send>> = Vec::new();
        // What is still buffered is sorted in two halves on two threads and read in place:
        // two more runs, the first half's rows before the second's.
        let mut buffer = std::mem::take(&mut self.buffer);
        let n = buffer.index.len();
        let (first, second) = buffer.index.split_at_mut(n / 2);
        let arena = &buffer.arena;
        std::thread::scope(|s| {
            s.spawn(|| sort_entries(arena, first));
            sort_entries(arena, second);
        });
        let buffer = std::sync::Arc::new(buffer);
        for entries in [0..n / 2, n / 2..n] {
            in_memory.push(Box::new(SortedReader {
                buffer: buffer.clone(),
                entries,
                within: 0,
            }));
        }
        // Meanwhile the last full run may have been written.
        self.wait()?;
        let mut readers: Vec<Box<dyn Read + Send>> = Vec::new();
        for mut run in std::mem::take(&mut self.runs) {
            run.seek(SeekFrom::Start(0))?;
            readers.push(Box::new(run));
        }
        readers.extend(in_memory);
        let mut runs = Vec::new();
        for r in readers {
            let mut run = Run::new(r);
            if run.advance()? {
                runs.push(run);
            }
        }
        let mut order: Vec<usize> = (0..runs.len()).collect();
        order.sort_by(|&a, &b| runs[a].id.cmp(&runs[b].id).then(a.cmp(&b)));
        Ok(Merge {
            runs,
            order,
            _dir: self.dir.take(),
        })
    }
}

impl Drop for Sorter {
    fn drop(&mut self) {
        // Not left running against a temporary folder that is about to go.
        if let Some(h) = self.writing.take() {
            let _ = h.join();
        }
    }
}

fn encode(buf: &mut Vec<u8>, id: &[u8], file: u32, row: u64, codes: &[u32]) {
    put_varint(buf, id.len() as u64);
    buf.extend_from_slice(id);
    put_varint(buf, u64::from(file));
    put_varint(buf, row);
    put_varint(buf, codes.len() as u64);
    for &c in codes {
        put_varint(buf, u64::from(c));
    }
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push(v as u8 | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn get_varint(data: &[u8], at: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = data[*at];
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return v;
        }
        shift += 7;
    }
}

/// One sorted run and its current row. Reads through its own buffer: a record is decoded
/// from memory, not a byte at a time through the reader.
struct Run {
    reader: Box<dyn Read + Send>,
    buf: Vec<u8>,
    pos: usize,
    id: Vec<u8>,
    file: u32,
    row: u64,
    codes: Vec<u32>,
}

/// The most bytes a varint takes.
const VARINT_MAX: usize = 10;

impl Run {
    fn new(reader: Box<dyn Read + Send>) -> Run {
        Run {
            reader,
            buf: Vec::new(),
            pos: 0,
            id: Vec::new(),
            file: 0,
            row: 0,
            codes: Vec::new(),
        }
    }

    /// Makes at least `n` bytes available after `pos`, unless the run ends first.
    fn fill(&mut self, n: usize) -> io::Result<usize> {
        if self.buf.len() - self.pos < n {
            self.buf.drain(..self.pos);
            self.pos = 0;
            let want = n.max(1 << 20);
            while self.buf.len() < want {
                let have = self.buf.len();
                self.buf.resize(want, 0);
                let got = self.reader.read(&mut self.buf[have..])?;
                self.buf.truncate(have + got);
                if got == 0 {
                    break;
                }
            }
        }
        Ok(self.buf.len() - self.pos)
    }

    fn varint(&mut self) -> io::Result<u64> {
        if self.fill(VARINT_MAX)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(get_varint(&self.buf, &mut self.pos))
    }

    /// Reads the next row; false at the end of the run.
    fn advance(&mut self) -> io::Result<bool> {
        if self.fill(VARINT_MAX)? == 0 {
            return Ok(false);
        }
        let len = self.varint()? as usize;
        if self.fill(len)? < len {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.id.clear();
        self.id
            .extend_from_slice(&self.buf[self.pos..self.pos + len]);
        self.pos += len;
        self.file = self.varint()? as u32;
        self.row = self.varint()?;
        let n = self.varint()?;
        self.codes.clear();
        for _ in 0..n {
            let c = self.varint()? as u32;
            self.codes.push(c);
        }
        Ok(true)
    }
}

/// The runs, merged: users in ID order.
pub struct Merge {
    runs: Vec<Run>,
    /// Runs with a current row, by (current ID, run): earlier runs hold earlier rows.
    order: Vec<usize>,
    _dir: Option<tempfile::TempDir>,
}

/// One user's rows, gathered.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UserRows {
    pub id: Vec<u8>,
    pub rows: u64,
    /// The first row (input order): the one named in messages.
    pub first_file: u32,
    pub first_row: u64,
    /// Every row's codes, concatenated.
    pub codes: Vec<u32>,
}

impl Merge {
    /// Fills `user` with the next user's rows; false when there are no more.
    pub fn next_user(&mut self, user: &mut UserRows) -> io::Result<bool> {
        let Some(&first) = self.order.first() else {
            return Ok(false);
        };
        let r = &self.runs[first];
        user.id.clear();
        user.id.extend_from_slice(&r.id);
        user.rows = 0;
        user.first_file = r.file;
        user.first_row = r.row;
        user.codes.clear();
        while let Some(&i) = self.order.first() {
            if self.runs[i].id != user.id {
                break;
            }
            let run = &mut self.runs[i];
            user.rows += 1;
            user.codes.extend_from_slice(&run.codes);
            let more = run.advance()?;
            self.order.remove(0);
            if more {
                // Back in its place: runs are few, so a binary search and a shift are cheap.
                let runs = &self.runs;
                let at = self
                    .order
                    .partition_point(|&j| (&runs[j].id, j) < (&runs[i].id, i));
                self.order.insert(at, i);
            }
        }
        Ok(true)
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
        let mut m = s.finish().unwrap();
        let mut out = Vec::new();
        let mut u = UserRows::default();
        while m.next_user(&mut u).unwrap() {
            out.push(u.clone());
        }
        (spilled, out)
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
    }
}
