//! An external sort of converted rows by user ID, so that memory stays flat however large
//! the export: rows, reduced to (user ID, trait codes), are buffered up to a budget, then
//! sorted and written to a temporary file (a run, under TMPDIR); at the end the runs are
//! merged, and each user's rows come out together, users in bytewise ID order. The output
//! does not depend on the budget or on whether anything was spilled.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};

/// The first 16 bytes of an ID as two big-endian integers (compared in order, they give the
/// bytes' order): they decide most comparisons (typical IDs are shorter) without touching
/// the bytes. Two u64 rather than a u128, so that an index entry takes 24 bytes, not 32.
fn prefix(id: &[u8]) -> [u64; 2] {
    let mut b = [0u8; 16];
    let n = id.len().min(16);
    b[..n].copy_from_slice(&id[..n]);
    let (high, low) = b.split_at(8);
    [
        u64::from_be_bytes(high.try_into().expect("8 bytes")),
        u64::from_be_bytes(low.try_into().expect("8 bytes")),
    ]
}

/// A run being read back: a file, or half of the last buffer in memory.
type Reader = Box<dyn Read + Send>;

/// IDs longer than the prefix: only two of these need their bytes compared.
const LONG_ID: u64 = 17;
/// Where an entry's ID-length class starts in `Entry::tie`, above the arena offset.
const CLASS_SHIFT: u32 = 40;

/// A buffered row: ID prefix, then (ID-length class, arena offset) packed so that for IDs
/// of up to 16 bytes two integer comparisons give the bytewise ID order and, within one ID,
/// the order pushed (a shorter ID with the same padded prefix is a prefix of the longer).
/// The row's length is in the arena, not here, to keep the entry small.
#[derive(Clone, Copy)]
struct Entry {
    prefix: [u64; 2],
    tie: u64,
}

impl Entry {
    fn at(&self) -> usize {
        (self.tie & ((1 << CLASS_SHIFT) - 1)) as usize
    }

    /// The encoded row, its length included.
    fn row<'a>(&self, arena: &'a [u8]) -> &'a [u8] {
        let mut pos = self.at();
        let len = get_varint(arena, &mut pos) as usize;
        &arena[self.at()..pos + len]
    }
}

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
        for e in &self.index {
            out.write_all(e.row(&self.arena))?;
        }
        Ok(())
    }
}

/// Sorts index entries by ID, then by position (the order pushed).
fn sort_entries(arena: &[u8], index: &mut [Entry]) {
    let long = LONG_ID << CLASS_SHIFT;
    if index.iter().all(|e| e.tie < long) {
        // No ID is longer than its prefix: the integers alone decide.
        index.sort_unstable_by_key(|e| (e.prefix, e.tie));
        return;
    }
    let id_at = |at: usize| {
        let mut pos = at;
        get_varint(arena, &mut pos); // the row's length
        let len = get_varint(arena, &mut pos) as usize;
        &arena[pos..pos + len]
    };
    index.sort_unstable_by(|a, b| {
        a.prefix.cmp(&b.prefix).then_with(|| {
            if a.tie >= long && b.tie >= long {
                id_at(a.at()).cmp(id_at(b.at())).then(a.tie.cmp(&b.tie))
            } else {
                a.tie.cmp(&b.tie)
            }
        })
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
            let e = self.buffer.index[self.entries.start];
            let whole = e.row(&self.buffer.arena);
            let len = whole.len();
            let row = &whole[self.within..];
            let take = row.len().min(out.len() - n);
            out[n..n + take].copy_from_slice(&row[..take]);
            n += take;
            self.within += take;
            if self.within == len {
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
        // Past 2^40 bytes of arena the offset would run into the class; no budget is that big.
        assert!(start < 1 << CLASS_SHIFT, "spill buffer over 1 TiB");
        let class = (id.len() as u64).min(LONG_ID);
        b.index.push(Entry {
            prefix: prefix(id),
            tie: class << CLASS_SHIFT | start as u64,
        });
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

    /// Sorts what is buffered; returns readers of all runs, earliest rows first.
    fn into_runs(mut self) -> io::Result<(Vec<Reader>, Option<tempfile::TempDir>)> {
        let mut in_memory: Vec<Reader> = Vec::new();
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
        let mut readers: Vec<Reader> = Vec::new();
        for mut run in std::mem::take(&mut self.runs) {
            run.seek(SeekFrom::Start(0))?;
            readers.push(Box::new(run));
        }
        readers.extend(in_memory);
        Ok((readers, self.dir.take()))
    }
}

/// Sorts what the sorters buffer and starts the merge of all their runs.
pub fn merge(sorters: Vec<Sorter>) -> io::Result<Merge> {
    let mut runs = Vec::new();
    let mut dirs = Vec::new();
    for sorter in sorters {
        let (readers, dir) = sorter.into_runs()?;
        dirs.extend(dir);
        for r in readers {
            let mut run = Run::new(r);
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

/// A row as stored: its length, then the ID (length and bytes), file, row and codes, all
/// varints; the length lets a run's reader decode a whole row from one buffer check.
fn encode(buf: &mut Vec<u8>, id: &[u8], file: u32, row: u64, codes: &[u32]) {
    let body = varint_len(id.len() as u64)
        + id.len()
        + varint_len(u64::from(file))
        + varint_len(row)
        + varint_len(codes.len() as u64)
        + codes
            .iter()
            .map(|&c| varint_len(u64::from(c)))
            .sum::<usize>();
    put_varint(buf, body as u64);
    put_varint(buf, id.len() as u64);
    buf.extend_from_slice(id);
    put_varint(buf, u64::from(file));
    put_varint(buf, row);
    put_varint(buf, codes.len() as u64);
    for &c in codes {
        put_varint(buf, u64::from(c));
    }
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
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

/// One sorted run and its current row. Reads through its own buffer: a row is decoded in
/// place, its ID and codes read from the buffer rather than copied out.
struct Run {
    reader: Reader,
    buf: Vec<u8>,
    /// Where the next row starts in `buf`.
    pos: usize,
    /// The current row's ID, in `buf`.
    id: std::ops::Range<usize>,
    /// `prefix(id)`, so that most comparisons between runs skip the bytes.
    key: [u64; 2],
    /// No rows left.
    ended: bool,
    file: u32,
    row: u64,
    /// The current row's number of codes, and where their varints start in `buf`.
    codes: (usize, usize),
}

/// The most bytes a varint takes.
const VARINT_MAX: usize = 10;

impl Run {
    fn new(reader: Reader) -> Run {
        Run {
            reader,
            buf: Vec::new(),
            pos: 0,
            id: 0..0,
            key: [0; 2],
            ended: false,
            file: 0,
            row: 0,
            codes: (0, 0),
        }
    }

    /// Makes at least `n` bytes available after `pos`, unless the run ends first. Moves
    /// what is left of the buffer: positions of the current row are stale afterwards.
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

    fn id(&self) -> &[u8] {
        &self.buf[self.id.clone()]
    }

    /// The current row's ID, for comparisons: the prefix decides most of them.
    fn id_key(&self) -> ([u64; 2], &[u8]) {
        (self.key, self.id())
    }

    /// Appends the current row's codes to `out`.
    fn codes_into(&self, out: &mut Vec<u32>) {
        let (n, mut at) = self.codes;
        out.extend((0..n).map(|_| get_varint(&self.buf, &mut at) as u32));
    }

    /// Reads the next row; false at the end of the run.
    fn advance(&mut self) -> io::Result<bool> {
        if self.fill(VARINT_MAX)? == 0 {
            return Ok(false);
        }
        let len = get_varint(&self.buf, &mut self.pos) as usize;
        if self.fill(len)? < len {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let mut at = self.pos;
        self.pos += len;
        let id_len = get_varint(&self.buf, &mut at) as usize;
        self.id = at..at + id_len;
        at += id_len;
        self.key = prefix(self.id());
        self.file = get_varint(&self.buf, &mut at) as u32;
        self.row = get_varint(&self.buf, &mut at);
        let n = get_varint(&self.buf, &mut at) as usize;
        self.codes = (n, at);
        Ok(true)
    }
}

/// The runs, merged: users in ID order.
pub struct Merge {
    /// Runs with a current row.
    runs: Vec<Run>,
    _dirs: Vec<tempfile::TempDir>,
}

/// One user's rows, gathered.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UserRows {
    pub id: Vec<u8>,
    pub rows: u64,
    /// The user's earliest row (input order): the one named in messages.
    pub first_file: u32,
    pub first_row: u64,
    /// Every row's codes, concatenated.
    pub codes: Vec<u32>,
}

impl Merge {
    /// Fills `user` with the next user's rows; false when there are no more.
    pub fn next_user(&mut self, user: &mut UserRows) -> io::Result<bool> {
        // Runs are few: a scan for the least ID costs less than keeping them ordered.
        let mut least: Option<&Run> = None;
        let mut from = 0;
        for (i, r) in self.runs.iter().enumerate() {
            if least.is_none_or(|l| r.id_key() < l.id_key()) {
                least = Some(r);
                from = i;
            }
        }
        let Some(least) = least else {
            return Ok(false);
        };
        let key = least.key;
        user.id.clear();
        user.id.extend_from_slice(least.id());
        user.rows = 0;
        (user.first_file, user.first_row) = (u32::MAX, u64::MAX);
        user.codes.clear();
        let mut ended = false;
        // Runs before `from` hold greater IDs; in each run the user's rows are together.
        for run in &mut self.runs[from..] {
            while run.key == key && run.id() == user.id {
                user.rows += 1;
                // Several sorters' runs interleave in input order: the earliest row is the least.
                if (run.file, run.row) < (user.first_file, user.first_row) {
                    (user.first_file, user.first_row) = (run.file, run.row);
                }
                run.codes_into(&mut user.codes);
                if !run.advance()? {
                    run.ended = true;
                    ended = true;
                    break;
                }
            }
        }
        if ended {
            self.runs.retain(|r| !r.ended);
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
        let mut m = merge(vec![s]).unwrap();
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
