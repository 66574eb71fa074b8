//! The merge of sorted runs: each user's rows come out together, users in bytewise ID
//! order, every run read front to back through its own buffer.

use super::codec::{decode_codes, get_varint, VARINT_MAX};
use super::sort::{prefix, PREFIX_BYTES};
use std::fs::File;
use std::io::{self, Read};

/// Where a run's rows come from.
pub(super) enum Rows {
    /// A run file, read into the run's buffer as the merge goes.
    File(File),
    /// Rows already in the run's buffer, whole: the last rows buffered, written out in
    /// order so that the merge reads them front to back, not all over the arena.
    Memory,
}

/// One sorted run and its current row, read through its own buffer: a row is decoded in
/// place, its ID and codes read from the buffer rather than copied out.
pub(super) struct Run {
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

impl Run {
    pub(super) fn new(rows: Rows, buf: Vec<u8>) -> Run {
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
        let (n, at) = self.codes;
        decode_codes(&self.buf, at, n, out);
    }

    /// Reads the next row; false at the end of the run.
    pub(super) fn advance(&mut self) -> io::Result<bool> {
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
    pub(super) runs: Vec<Run>,
    pub(super) _dirs: Vec<super::SpillDir>,
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
