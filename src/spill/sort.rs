//! Sorting a buffer of rows by user ID: integer keys from the ID's first 16 bytes decide
//! most comparisons, and short IDs from one system are sorted by an LSD radix sort over the
//! bytes that vary.

use super::codec::{encode, get_varint};
use std::io::{self, Write};

/// The first 16 bytes of an ID as two big-endian integers (compared in order, they give the
/// bytes' order): they decide most comparisons (typical IDs are shorter) without touching
/// the bytes. Two u64 rather than a u128, so that an index entry takes 24 bytes, not 32.
pub(crate) fn prefix(id: &[u8]) -> [u64; 2] {
    let mut b = [0u8; PREFIX_BYTES];
    let n = id.len().min(PREFIX_BYTES);
    b[..n].copy_from_slice(&id[..n]);
    let (high, low) = b.split_at(8);
    [
        u64::from_be_bytes(high.try_into().expect("8 bytes")),
        u64::from_be_bytes(low.try_into().expect("8 bytes")),
    ]
}

/// The bytes of an ID that `prefix` holds.
pub(super) const PREFIX_BYTES: usize = 16;
/// IDs longer than the prefix: only two of these need their bytes compared.
const LONG_ID: u64 = PREFIX_BYTES as u64 + 1;
/// Where an entry's ID-length class starts in `Entry::tie`, above the arena offset.
const CLASS_SHIFT: u32 = 40;

/// A buffered row: ID prefix, then (ID-length class, arena offset) packed so that for IDs
/// of up to 16 bytes two integer comparisons give the bytewise ID order and, within one ID,
/// the order pushed (a shorter ID with the same padded prefix is a prefix of the longer).
/// The row's length is in the arena, not here, to keep the entry small.
#[derive(Clone, Copy)]
pub(super) struct Entry {
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
pub(super) const MAX_RESERVE: usize = 256 << 20;

/// Bytes of index per buffered row, counted against the budget.
const INDEX_BYTES: usize = std::mem::size_of::<Entry>();

/// Rows in memory, encoded back to back, with an index to sort them by.
#[derive(Default)]
pub(super) struct Buffer {
    pub(super) arena: Vec<u8>,
    pub(super) index: Vec<Entry>,
}

impl Buffer {
    /// Appends a row to the arena and its entry to the index.
    pub(super) fn push(&mut self, id: &[u8], file: u32, row: u64, codes: &[u32]) {
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

    pub(super) fn bytes(&self) -> usize {
        self.arena.len() + self.index.len() * INDEX_BYTES
    }

    /// Writes the rows sorted by ID; rows of one ID stay in the order pushed.
    pub(super) fn write_sorted(mut self, out: &mut impl Write) -> io::Result<()> {
        write_sorted(&self.arena, &mut self.index, out)
    }
}

/// Sorts `index` (see `sort_entries`) and writes its rows in that order.
pub(super) fn write_sorted(
    arena: &[u8],
    index: &mut [Entry],
    out: &mut impl Write,
) -> io::Result<()> {
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
}
