//! An external sort of converted rows by user ID, so that memory stays flat however large
//! the export: rows, reduced to (user ID, trait codes), are buffered up to a budget, then
//! sorted and written to a temporary file (a run, under TMPDIR); at the end what is still
//! buffered is sorted and laid out in order in memory, and the runs are merged: each user's
//! rows come out together, users in bytewise ID order. The output does not depend on the
//! budget or on whether anything was spilled.
//!
//! Every run is read front to back: the merge never reads rows scattered over a buffer,
//! which at millions of rows costs a cache miss per row.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};

/// The first 16 bytes of an ID as two big-endian integers (compared in order, they give the
/// bytes' order): they decide most comparisons (typical IDs are shorter) without touching
/// the bytes. Two u64 rather than a u128, so that an index entry takes 24 bytes, not 32.
fn prefix(id: &[u8]) -> [u64; 2] {
    let mut b = [0u8; PREFIX_BYTES];
    let n = id.len().min(PREFIX_BYTES);
    b[..n].copy_from_slice(&id[..n]);
    let (high, low) = b.split_at(8);
    [
        u64::from_be_bytes(high.try_into().expect("8 bytes")),
        u64::from_be_bytes(low.try_into().expect("8 bytes")),
    ]
}

/// Where a run's rows come from.
enum Rows {
    /// A run file, read into the run's buffer as the merge goes.
    File(File),
    /// Rows already in the run's buffer, whole: the last rows buffered, written out in
    /// order so that the merge reads them front to back, not all over the arena.
    Memory,
}

/// The bytes of an ID that `prefix` holds.
const PREFIX_BYTES: usize = 16;
/// IDs longer than the prefix: only two of these need their bytes compared.
const LONG_ID: u64 = PREFIX_BYTES as u64 + 1;
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

/// The most address space a buffer's arena reserves up front.
const MAX_RESERVE: usize = 256 << 20;

/// Bytes of index per buffered row, counted against the budget.
const INDEX_BYTES: usize = std::mem::size_of::<Entry>();

/// Rows in memory, encoded back to back, with an index to sort them by.
#[derive(Default)]
struct Buffer {
    arena: Vec<u8>,
    index: Vec<Entry>,
}

impl Buffer {
    /// Appends a row to the arena and its entry to the index.
    fn push(&mut self, id: &[u8], file: u32, row: u64, codes: &[u32]) {
        let start = self.arena.len();
        encode(&mut self.arena, id, file, row, codes);
        // Past 2^40 bytes of arena the offset would run into the class; no budget is that big.
        assert!(start < 1 << CLASS_SHIFT, "spill buffer over 1 TiB");
        let class = (id.len() as u64).min(LONG_ID);
        self.index.push(Entry {
            prefix: prefix(id),
            tie: class << CLASS_SHIFT | start as u64,
        });
    }

    fn bytes(&self) -> usize {
        self.arena.len() + self.index.len() * INDEX_BYTES
    }

    /// Writes the rows sorted by ID; rows of one ID stay in the order pushed.
    fn write_sorted(mut self, out: &mut impl Write) -> io::Result<()> {
        write_sorted(&self.arena, &mut self.index, out)
    }
}

/// Sorts `index` (see `sort_entries`) and writes its rows in that order.
fn write_sorted(arena: &[u8], index: &mut [Entry], out: &mut impl Write) -> io::Result<()> {
    sort_entries(arena, index);
    for e in index.iter() {
        out.write_all(e.row(arena))?;
    }
    Ok(())
}

/// Digits of an entry's sort key, most significant first: the prefix's 16 bytes, then the
/// ID-length class (the arena offset, last in the key, is the order the entries come in).
const DIGITS: usize = PREFIX_BYTES + 1;

fn digit(e: &Entry, d: usize) -> u8 {
    match d {
        0..8 => (e.prefix[0] >> (56 - 8 * d)) as u8,
        8..16 => (e.prefix[1] >> (56 - 8 * (d - 8))) as u8,
        _ => (e.tie >> CLASS_SHIFT) as u8,
    }
}

/// Past this many varying digits a comparison sort is cheaper.
const RADIX_PASSES: usize = 8;

/// Sorts entries of short IDs, given in the order pushed, by (prefix, tie) with a stable
/// LSD radix sort over the digits that vary, when few do: IDs from one system share most
/// of their bytes (`C000123456`), and a pass per varying byte beats ~20 comparisons per
/// entry. False, leaving `index` as it was, when the IDs vary in too many bytes.
fn radix_sort(index: &mut [Entry]) -> bool {
    let Some(first) = index.first().copied() else {
        return true;
    };
    // The bits that differ from the first entry anywhere, laid out as an entry.
    let mut diff = Entry {
        prefix: [0; 2],
        tie: 0,
    };
    for e in index.iter() {
        diff.prefix[0] |= e.prefix[0] ^ first.prefix[0];
        diff.prefix[1] |= e.prefix[1] ^ first.prefix[1];
        diff.tie |= e.tie ^ first.tie;
    }
    let passes: Vec<usize> = (0..DIGITS)
        .rev()
        .filter(|&d| digit(&diff, d) != 0)
        .collect();
    if passes.len() > RADIX_PASSES || index.len() < 1024 {
        return passes.is_empty();
    }
    // Every pass's counts in one read of the entries: where each digit value starts.
    let mut starts = vec![[0usize; 256]; passes.len()];
    for e in index.iter() {
        for (&d, count) in passes.iter().zip(&mut starts) {
            count[usize::from(digit(e, d))] += 1;
        }
    }
    for start in &mut starts {
        let mut sum = 0;
        for s in start.iter_mut() {
            (*s, sum) = (sum, sum + *s);
        }
    }
    let mut scratch = vec![first; index.len()];
    let (mut from, mut to) = (index, &mut scratch[..]);
    for (&d, start) in passes.iter().zip(&mut starts) {
        for e in from.iter() {
            let slot = &mut start[usize::from(digit(e, d))];
            to[*slot] = *e;
            *slot += 1;
        }
        std::mem::swap(&mut from, &mut to);
    }
    if passes.len() % 2 == 1 {
        // The sorted entries are in the scratch: back into the index.
        to.copy_from_slice(from);
    }
    true
}

/// Sorts index entries, given in the order pushed, by ID, then by position (that order).
fn sort_entries(arena: &[u8], index: &mut [Entry]) {
    let long = LONG_ID << CLASS_SHIFT;
    if index.iter().all(|e| e.tie < long) {
        // No ID is longer than its prefix: the integers alone decide.
        if !radix_sort(index) {
            index.sort_unstable_by_key(|e| (e.prefix[0], e.prefix[1], e.tie));
        }
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
    /// is sorted and written, up to about two and a half times that: the radix sort's
    /// scratch is a copy of the index).
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

    /// Sorts what is buffered; returns all runs, earliest rows first.
    fn into_runs(mut self) -> io::Result<(Vec<Run>, Option<tempfile::TempDir>)> {
        // What is still buffered is sorted in two halves on two threads, each written out
        // in order in memory: two more runs, the first half's rows before the second's.
        let mut buffer = std::mem::take(&mut self.buffer);
        let n = buffer.index.len();
        let (first, second) = buffer.index.split_at_mut(n / 2);
        let arena = &buffer.arena;
        let sorted = |index: &mut [Entry]| {
            // Room for the whole arena: pages never written are never resident.
            let mut rows = Vec::with_capacity(arena.len());
            write_sorted(arena, index, &mut rows).map(|()| rows)
        };
        let in_memory = std::thread::scope(|s| {
            let first = s.spawn(|| sorted(first));
            let second = sorted(second);
            [first.join().expect("sorting does not panic"), second]
        });
        drop(buffer);
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

/// A row as stored: its length, then the ID (length and bytes), file, row and codes, all
/// varints; the length lets a run's reader decode a whole row from one buffer check.
fn encode(buf: &mut Vec<u8>, id: &[u8], file: u32, row: u64, codes: &[u32]) {
    // The body is written after a one-byte length, the usual size; a longer body moves
    // over to make room for its length.
    let start = buf.len();
    buf.push(0);
    put_varint(buf, id.len() as u64);
    buf.extend_from_slice(id);
    put_varint(buf, u64::from(file));
    put_varint(buf, row);
    put_varint(buf, codes.len() as u64);
    for &c in codes {
        put_varint(buf, u64::from(c));
    }
    let body = buf.len() - start - 1;
    if body < 0x80 {
        buf[start] = body as u8;
    } else {
        let mut len = Vec::with_capacity(VARINT_MAX);
        put_varint(&mut len, body as u64);
        buf.splice(start..start + 1, len);
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

/// One sorted run and its current row, read through its own buffer: a row is decoded in
/// place, its ID and codes read from the buffer rather than copied out.
struct Run {
    rows: Rows,
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
    fn new(rows: Rows, buf: Vec<u8>) -> Run {
        Run {
            rows,
            buf,
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
    #[inline]
    fn fill(&mut self, n: usize) -> io::Result<usize> {
        let have = self.buf.len() - self.pos;
        if have >= n {
            return Ok(have);
        }
        self.refill(n)
    }

    /// `fill`'s slow path: moves what is left to the front and reads more.
    #[inline(never)]
    fn refill(&mut self, n: usize) -> io::Result<usize> {
        let Rows::File(file) = &mut self.rows else {
            return Ok(self.buf.len() - self.pos);
        };
        self.buf.drain(..self.pos);
        self.pos = 0;
        let want = n.max(1 << 20);
        while self.buf.len() < want {
            let have = self.buf.len();
            self.buf.resize(want, 0);
            let got = file.read(&mut self.buf[have..])?;
            self.buf.truncate(have + got);
            if got == 0 {
                break;
            }
        }
        Ok(self.buf.len())
    }

    fn id(&self) -> &[u8] {
        &self.buf[self.id.clone()]
    }

    /// Whether the current row's ID is `id`, given that their prefixes are equal: IDs of
    /// the same length that fit in the prefix are then equal, without comparing bytes.
    fn has_id(&self, id: &[u8]) -> bool {
        self.id.len() == id.len() && (id.len() <= PREFIX_BYTES || self.id() == id)
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
            while run.key == key && run.has_id(&user.id) {
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

    #[test]
    fn radix_sort_gives_the_comparison_order() {
        // IDs that share most bytes (the radix case), of several lengths, with repeats;
        // then IDs that differ in too many bytes, which are left for the comparison sort.
        let mut x = 7u64;
        let mut next = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x >> 33
        };
        let shared: Vec<String> = (0..5000)
            .map(|_| {
                let n = next();
                let id = format!("C{:06}", n % 3000);
                if n % 7 == 0 {
                    format!("{id}\0")
                } else {
                    id
                }
            })
            .collect();
        let varied: Vec<String> = (0..5000)
            .map(|_| format!("{:08x}{:08x}", next(), next()))
            .collect();
        for (ids, radix) in [(shared, true), (varied, false)] {
            let mut b = Buffer::default();
            for (i, id) in ids.iter().enumerate() {
                b.push(id.as_bytes(), 0, i as u64, &[]);
            }
            let key = |e: &Entry| (e.prefix, e.tie);
            let mut want = b.index.clone();
            want.sort_by_key(key);
            let mut got = b.index.clone();
            assert_eq!(radix_sort(&mut got), radix);
            if radix {
                assert!(got.iter().map(key).eq(want.iter().map(key)));
            } else {
                assert!(
                    got.iter().map(key).eq(b.index.iter().map(key)),
                    "left as it was"
                );
            }
        }
    }

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
