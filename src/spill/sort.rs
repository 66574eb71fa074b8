//! Sorting a buffer of rows by user ID: integer keys from the ID's first 16 bytes decide
//! most comparisons, and short IDs from one system are sorted by an LSD radix sort over the
//! bits that vary, packed into one integer per row (or, when those do not fit, over the
//! bytes that vary).

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

    /// Whether the ID is longer than the prefix (its class is `LONG_ID`).
    fn long(&self) -> bool {
        self.tie >= LONG_ID << CLASS_SHIFT
    }
}

/// The encoded row at offset `at`, its length included.
fn row_at(arena: &[u8], at: usize) -> &[u8] {
    let mut pos = at;
    let len = get_varint(arena, &mut pos) as usize;
    &arena[at..pos + len]
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
    pub(super) fn write_sorted(self, out: &mut impl Write) -> io::Result<()> {
        let Buffer { arena, mut index } = self;
        let order = Order::sort(&arena, &mut index);
        // The index is not needed to lay the rows out: its memory goes before they are.
        drop(index);
        order.write(&arena, out)
    }
}

/// Where a buffer's rows are, in sorted order: arena offsets, in the low bits of each value.
pub(super) struct Order {
    at: Vec<u64>,
    mask: u64,
}

impl Order {
    /// Sorts `index`'s entries, given in the order pushed, by ID, then by position (that
    /// order). Short IDs, enough of them to count digits, are sorted by the digits that vary:
    /// packed into integers when they fit (see `packed_order`), else a pass per digit when
    /// few vary (see `radix_sort`). Other entries are compared (see `compare_sort`).
    pub(super) fn sort(arena: &[u8], index: &mut [Entry]) -> Order {
        let short = !index.iter().any(Entry::long);
        if short && index.len() >= RADIX_MIN {
            let varying = varying_digits(index);
            if let Some((at, at_bits)) = packed_order(arena.len(), index, &varying) {
                return Order {
                    at,
                    mask: (1 << at_bits) - 1,
                };
            }
            if !radix_sort(index, &varying) {
                compare_sort(arena, index, true);
            }
        } else {
            compare_sort(arena, index, short);
        }
        Order {
            at: index.iter().map(|e| e.at() as u64).collect(),
            mask: u64::MAX,
        }
    }

    /// Writes the rows in order.
    pub(super) fn write(&self, arena: &[u8], out: &mut impl Write) -> io::Result<()> {
        for &v in &self.at {
            out.write_all(row_at(arena, (v & self.mask) as usize))?;
        }
        Ok(())
    }
}

/// Digits of an entry's sort key, most significant first: the prefix's 16 bytes, then the
/// ID-length class (the arena offset, last in the key, is the order the entries come in).
const DIGITS: usize = PREFIX_BYTES + 1;

/// An entry's key as words: the prefix's two, then the ID-length class.
fn words(e: &Entry) -> [u64; 3] {
    [e.prefix[0], e.prefix[1], e.tie >> CLASS_SHIFT]
}

/// Where digit `d` is: which of `words` holds it, and how far up.
fn digit_place(d: usize) -> (usize, u32) {
    match d {
        0..8 => (0, 56 - 8 * d as u32),
        8..16 => (1, 56 - 8 * (d as u32 - 8)),
        _ => (2, 0),
    }
}

fn digit(e: &Entry, d: usize) -> u8 {
    let (word, shift) = digit_place(d);
    (words(e)[word] >> shift) as u8
}

/// Below this many entries a comparison sort is cheaper than counting digits.
const RADIX_MIN: usize = 1024;
/// Past this many varying digits a comparison sort is cheaper than a pass per digit.
const RADIX_PASSES: usize = 8;
/// Bits of the packed key sorted per pass: 2048 counters, which stay in the cache.
const PACKED_PASS_BITS: u32 = 11;

/// The digits (see `digit`) in which some entry differs from the first, most significant
/// first, each with the bits that differ: IDs from one system share most of their bytes
/// (`C000123456`).
fn varying_digits(index: &[Entry]) -> Vec<(usize, u8)> {
    let Some(first) = index.first() else {
        return Vec::new();
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
    (0..DIGITS)
        .map(|d| (d, digit(&diff, d)))
        .filter(|&(_, bits)| bits != 0)
        .collect()
}

/// Entries of short IDs (no longer than the prefix), given in the order pushed, in sorted
/// order as one integer each: the bits of the `varying` digits that vary (the low four of a
/// decimal digit), packed above the entry's arena offset, and the offset's width. A few
/// passes over 8-byte integers sort them, where sorting the 24-byte entries takes a pass
/// per varying digit. None when those bits and the offset do not fit in 64 bits.
fn packed_order(
    arena_len: usize,
    index: &[Entry],
    varying: &[(usize, u8)],
) -> Option<(Vec<u64>, u32)> {
    // Per varying digit, most significant first: (word, shift, width) of its varying bits,
    // taken as one field. Bits outside the field are the same in every entry, so the
    // fields, in turn, order the entries as the digits do.
    let fields: Vec<(usize, u32, u32)> = varying
        .iter()
        .map(|&(d, m)| {
            let (low, width) = (
                m.trailing_zeros(),
                8 - m.leading_zeros() - m.trailing_zeros(),
            );
            let (word, byte_shift) = digit_place(d);
            (word, byte_shift + low, width)
        })
        .collect();
    let key_bits: u32 = fields.iter().map(|&(_, _, width)| width).sum();
    let at_bits = (usize::BITS - arena_len.leading_zeros()).max(1);
    if key_bits + at_bits > u64::BITS {
        return None;
    }
    let mut keys: Vec<u64> = index
        .iter()
        .map(|e| {
            let words = words(e);
            let key = fields.iter().fold(0u64, |key, &(word, shift, width)| {
                key << width | (words[word] >> shift) & ((1 << width) - 1)
            });
            key << at_bits | e.at() as u64
        })
        .collect();
    // Passes of equal width, least significant first; entries of one key keep the order
    // they were pushed in, which is their offsets' order.
    let passes = key_bits.div_ceil(PACKED_PASS_BITS);
    if passes > 0 {
        let width = key_bits.div_ceil(passes);
        let shifts: Vec<u32> = (0..passes).map(|p| at_bits + p * width).collect();
        let mask = (1u64 << width) - 1;
        lsd_sort(&mut keys, 1 << width, &shifts, |v, &s| {
            ((v >> s) & mask) as usize
        });
    }
    Some((keys, at_bits))
}

/// A stable LSD radix sort: a counting pass per digit of `digits`, least significant
/// first, each digit's value (below `buckets`) given by `value`. Every pass's counts come
/// from one read of the items.
fn lsd_sort<T: Copy, D>(
    items: &mut [T],
    buckets: usize,
    digits: &[D],
    value: impl Fn(&T, &D) -> usize,
) {
    let Some(&first) = items.first() else {
        return;
    };
    let mut starts = vec![vec![0usize; buckets]; digits.len()];
    for x in items.iter() {
        for (d, count) in digits.iter().zip(&mut starts) {
            count[value(x, d)] += 1;
        }
    }
    for start in &mut starts {
        let mut sum = 0;
        for s in start.iter_mut() {
            (*s, sum) = (sum, sum + *s);
        }
    }
    let mut scratch = vec![first; items.len()];
    let (mut from, mut to) = (items, &mut scratch[..]);
    for (d, start) in digits.iter().zip(&mut starts) {
        for x in from.iter() {
            let slot = &mut start[value(x, d)];
            to[*slot] = *x;
            *slot += 1;
        }
        std::mem::swap(&mut from, &mut to);
    }
    if digits.len() % 2 == 1 {
        // The sorted items are in the scratch: back into the caller's slice.
        to.copy_from_slice(from);
    }
}

/// Sorts entries of short IDs, given in the order pushed, by (prefix, tie) with a stable
/// LSD radix sort over the `varying` digits, when few vary: a pass per varying byte beats
/// ~20 comparisons per entry. False, leaving `index` as it was, when too many vary.
fn radix_sort(index: &mut [Entry], varying: &[(usize, u8)]) -> bool {
    if varying.len() > RADIX_PASSES {
        return false;
    }
    let passes: Vec<usize> = varying.iter().rev().map(|&(d, _)| d).collect();
    lsd_sort(index, 256, &passes, |e, &d| usize::from(digit(e, d)));
    true
}

/// Sorts index entries, given in the order pushed, by ID, then by position (that order),
/// by comparing them. `short`: no ID is longer than its prefix (the caller has looked).
fn compare_sort(arena: &[u8], index: &mut [Entry], short: bool) {
    if short {
        // The integers alone decide.
        index.sort_unstable_by_key(|e| (e.prefix[0], e.prefix[1], e.tie));
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
            if a.long() && b.long() {
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

    /// 5000 IDs from `id`, given a pseudo-random number.
    fn ids(id: impl Fn(u64) -> String) -> Vec<String> {
        let mut x = 7u64;
        (0..5000)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                id(x >> 16)
            })
            .collect()
    }

    #[test]
    fn every_sort_gives_the_comparison_order() {
        // IDs that share most bytes, of several lengths, with repeats (packed); IDs of letters
        // and digits, whose varying bits do not fit beside the offset (a pass per byte); and
        // IDs that vary in too many bytes (compared).
        let shared = ids(|n| {
            // A last byte whose varying bits are not the lowest: 'A', 'Q', 'a', 'q'.
            let id = format!(
                "C{:06}{}",
                n % 700,
                ["A", "Q", "a", "q"][(n / 700 % 4) as usize]
            );
            if n % 7 == 0 {
                format!("{id}\0")
            } else {
                id
            }
        });
        let letters = ids(|n| {
            let a = |k: u64| {
                char::from(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[(n >> k) as usize % 36])
            };
            (0..8).map(|k| a(5 * k)).collect()
        });
        let varied = ids(|n| format!("{:016x}", n.wrapping_mul(0x9E3779B97F4A7C15)));
        for (ids, packed, radix) in [
            (shared, true, true),
            (letters, false, true),
            (varied, false, false),
        ] {
            let mut b = Buffer::default();
            for (i, id) in ids.iter().enumerate() {
                b.push(id.as_bytes(), 0, i as u64, &[]);
            }
            let key = |e: &Entry| (e.prefix, e.tie);
            let mut want = b.index.clone();
            want.sort_by_key(key);
            let want_at: Vec<u64> = want.iter().map(|e| e.at() as u64).collect();
            let varying = varying_digits(&b.index);
            assert_eq!(
                packed_order(b.arena.len(), &b.index, &varying).is_some(),
                packed
            );
            let mut got = b.index.clone();
            assert_eq!(radix_sort(&mut got, &varying), radix);
            if radix {
                assert!(got.iter().map(key).eq(want.iter().map(key)));
            } else {
                assert!(
                    got.iter().map(key).eq(b.index.iter().map(key)),
                    "left as it was"
                );
            }
            let order = Order::sort(&b.arena, &mut b.index.clone());
            let got_at: Vec<u64> = order.at.iter().map(|v| v & order.mask).collect();
            assert_eq!(got_at, want_at);
        }
    }
}
