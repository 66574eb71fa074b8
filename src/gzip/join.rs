//! Reopens a complete raw deflate stream so that another can follow it in the same gzip
//! member: its last block loses its BFINAL bit, and an empty stored block after its
//! end-of-block code byte-aligns the end, as zlib's sync flush does. Both need the exact bit
//! where the last block begins and ends, which only reading the whole stream finds: every
//! block's Huffman codes are read and every symbol is stepped over, its extra bits with it,
//! but nothing is inflated.

/// At most this many bytes are added by `reopen`.
pub const REOPEN_BYTES: usize = 5;

/// An empty stored block's lengths (LEN 0, NLEN !0), after its 3 header bits and padding.
const EMPTY_STORED: [u8; 4] = [0, 0, 0xff, 0xff];

/// Makes `stream`, a complete raw deflate stream, one that continues: its last block is no
/// longer final, and it ends at a byte boundary in an empty stored block.
pub fn reopen(stream: &mut Vec<u8>) -> Result<(), Invalid> {
    let ends = ends(stream)?;
    let bits = stream.len() as u64 * 8;
    if bits - ends.end >= 8 {
        return Err(Invalid("bytes follow the last block"));
    }
    let byte = |bit: u64| (bit / 8) as usize;
    stream[byte(ends.last_block)] &= !(1 << (ends.last_block % 8));
    // The stored block's header is three zero bits at `end`; then padding to a byte.
    if ends.end % 8 != 0 {
        stream[byte(ends.end)] &= (1u8 << (ends.end % 8)) - 1;
    }
    if bits - ends.end < 3 {
        stream.push(0);
    }
    stream.extend_from_slice(&EMPTY_STORED);
    Ok(())
}

/// Bit positions in a raw deflate stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ends {
    /// The first bit of the last block's header: its BFINAL bit.
    last_block: u64,
    /// The bit after the last block's end-of-block code.
    end: u64,
}

/// Why a stream could not be walked: it is not a complete, valid deflate stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid(pub &'static str);

/// Primary decoding tables are indexed by this many bits; longer codes are decoded slowly.
const FAST: u32 = 10;

/// What a fast-table entry holds: bits 0..6 the bits the walk skips for the symbol (its
/// code, and for a length or a distance its extra bits too), bits 6..10 the code's length,
/// bits 10..13 its kind, bits 16.. the symbol. A zero entry: a code longer than `FAST`.
const SKIP: u32 = 63;
const LEN_SHIFT: u32 = 6;
const KIND_SHIFT: u32 = 10;
const SYM_SHIFT: u32 = 16;
/// Kinds: a literal (or a code length, or a distance); a length, which a distance
/// follows; the end of the block; a symbol out of its alphabet's range.
const PLAIN: u32 = 1;
const LENGTH: u32 = 2;
const END: u32 = 3;
const OUT_OF_RANGE: u32 = 4;

/// Which of deflate's alphabets a code is for: it tells each symbol's kind and extra bits.
#[derive(Clone, Copy)]
enum Alphabet {
    LitLen,
    Distance,
    CodeLength,
}

impl Alphabet {
    /// A symbol's kind and its extra bits (none for a symbol out of range).
    fn class(self, sym: u16) -> (u32, u32) {
        let s = usize::from(sym);
        match self {
            Alphabet::LitLen => match s {
                0..=255 => (PLAIN, 0),
                256 => (END, 0),
                257..=285 => (LENGTH, u32::from(LENGTH_EXTRA[s - 257])),
                _ => (OUT_OF_RANGE, 0),
            },
            Alphabet::Distance => match DIST_EXTRA.get(s) {
                Some(&extra) => (PLAIN, u32::from(extra)),
                None => (OUT_OF_RANGE, 0),
            },
            Alphabet::CodeLength => (PLAIN, 0),
        }
    }
}

/// Bits in the order deflate sends them (least significant first).
struct Bits<'a> {
    data: &'a [u8],
    /// The next byte to load into `buf`.
    next: usize,
    buf: u64,
    have: u32,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Bits<'a> {
        Bits {
            data,
            next: 0,
            buf: 0,
            have: 0,
        }
    }

    /// Makes sure at least `n` (at most 56) bits are held, unless the data runs out.
    #[inline]
    fn fill(&mut self, n: u32) {
        if self.have < n {
            self.refill();
        }
    }

    /// The next `FAST` bits, as they are held (`fill` first).
    #[inline]
    fn fast_index(&self) -> usize {
        (self.buf & ((1 << FAST) - 1)) as usize
    }

    /// Loads bytes until at least 56 bits are held or the data runs out.
    #[inline]
    fn refill(&mut self) {
        if let Some(word) = self.data.get(self.next..self.next + 8) {
            let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
            self.buf |= word << self.have;
            let took = (63 - self.have) / 8;
            self.next += took as usize;
            self.have += took * 8;
            return;
        }
        while self.have <= 56 {
            let Some(&b) = self.data.get(self.next) else {
                return;
            };
            self.buf |= u64::from(b) << self.have;
            self.next += 1;
            self.have += 8;
        }
    }

    /// The position of the next bit to read.
    fn position(&self) -> u64 {
        self.next as u64 * 8 - u64::from(self.have)
    }

    /// The next `n` (at most 32) bits without consuming them; missing bits read as zero.
    #[inline]
    fn peek(&mut self, n: u32) -> u32 {
        if self.have < n {
            self.refill();
        }
        (self.buf & ((1u64 << n) - 1)) as u32
    }

    #[inline]
    fn consume(&mut self, n: u32) -> Result<(), Invalid> {
        if self.have < n {
            return Err(Invalid("the stream ends inside a block"));
        }
        self.buf >>= n;
        self.have -= n;
        Ok(())
    }

    #[inline]
    fn take(&mut self, n: u32) -> Result<u32, Invalid> {
        let v = self.peek(n);
        self.consume(n)?;
        Ok(v)
    }

    /// Skips to the next byte boundary.
    fn align(&mut self) {
        let drop = self.have % 8;
        self.buf >>= drop;
        self.have -= drop;
    }

    /// Skips `n` whole bytes (only at a byte boundary).
    fn skip_bytes(&mut self, n: usize) -> Result<(), Invalid> {
        let held = (self.have / 8) as usize;
        if n <= held {
            return self.consume(n as u32 * 8);
        }
        let rest = n - held;
        if self.next + rest > self.data.len() {
            return Err(Invalid("a stored block runs past the end"));
        }
        self.next += rest;
        self.buf = 0;
        self.have = 0;
        Ok(())
    }
}

/// A canonical Huffman code: a table for codes up to `FAST` bits, and counts and symbols
/// for the rest (decoded bit by bit, as zlib's puff does).
struct Code {
    alphabet: Alphabet,
    /// Indexed by the next `FAST` bits (see `SKIP`); 0 for a longer code.
    fast: Vec<u32>,
    /// Codes of each length, and the symbols in canonical order.
    count: [u16; 16],
    symbol: Vec<u16>,
}

impl Code {
    fn new(alphabet: Alphabet) -> Code {
        Code {
            alphabet,
            fast: vec![0; 1 << FAST],
            count: [0; 16],
            symbol: Vec::with_capacity(288),
        }
    }

    /// Builds the code from each symbol's length (0: unused). Incomplete codes are allowed
    /// (deflate permits them for a single distance code); oversubscribed ones are not.
    fn build(&mut self, lengths: &[u8]) -> Result<(), Invalid> {
        self.count = [0; 16];
        for &l in lengths {
            self.count[l as usize] += 1;
        }
        self.count[0] = 0;
        let mut left: i32 = 1;
        for len in 1..16 {
            left = (left << 1) - i32::from(self.count[len]);
            if left < 0 {
                return Err(Invalid("a Huffman code is oversubscribed"));
            }
        }
        let mut offs = [0u16; 16];
        for len in 1..15 {
            offs[len + 1] = offs[len] + self.count[len];
        }
        self.symbol.clear();
        self.symbol.resize(lengths.len(), 0);
        for (sym, &l) in lengths.iter().enumerate() {
            if l != 0 {
                self.symbol[offs[l as usize] as usize] = sym as u16;
                offs[l as usize] += 1;
            }
        }
        self.fast.fill(0);
        let mut code: u32 = 0;
        let mut index = 0usize;
        for len in 1..=15u32 {
            for _ in 0..self.count[len as usize] {
                if len <= FAST {
                    let sym = self.symbol[index];
                    let (kind, extra) = self.alphabet.class(sym);
                    let entry = u32::from(sym) << SYM_SHIFT
                        | kind << KIND_SHIFT
                        | len << LEN_SHIFT
                        | (len + extra);
                    // Deflate sends a code's bits most significant first.
                    let rev = code.reverse_bits() >> (32 - len);
                    let mut i = rev as usize;
                    while i < 1 << FAST {
                        self.fast[i] = entry;
                        i += 1 << len;
                    }
                }
                code += 1;
                index += 1;
            }
            code <<= 1;
        }
        Ok(())
    }

    /// The next symbol, its code consumed (not its extra bits).
    #[inline]
    fn decode(&self, bits: &mut Bits) -> Result<u16, Invalid> {
        let e = self.fast[bits.peek(FAST) as usize];
        if e != 0 {
            bits.consume(e >> LEN_SHIFT & 15)?;
            return Ok((e >> SYM_SHIFT) as u16);
        }
        self.decode_slow(bits)
    }

    /// Skips the next symbol with its extra bits; returns its kind. `bits` must hold the
    /// bits (`fill`): a length with its distance takes at most 48.
    #[inline]
    fn skip(&self, bits: &mut Bits) -> Result<u32, Invalid> {
        let e = self.fast[bits.fast_index()];
        if e == 0 {
            return self.skip_slow(bits);
        }
        bits.consume(e & SKIP)?;
        Ok(e >> KIND_SHIFT & 7)
    }

    /// `skip` for a code longer than `FAST` bits.
    #[inline(never)]
    fn skip_slow(&self, bits: &mut Bits) -> Result<u32, Invalid> {
        let sym = self.decode_slow(bits)?;
        let (kind, extra) = self.alphabet.class(sym);
        bits.take(extra)?;
        Ok(kind)
    }

    fn decode_slow(&self, bits: &mut Bits) -> Result<u16, Invalid> {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for len in 1..16 {
            code |= bits.take(1)? as i32;
            let count = i32::from(self.count[len]);
            if code - count < first {
                return Ok(self.symbol[(index + code - first) as usize]);
            }
            index += count;
            first += count;
            first <<= 1;
            code <<= 1;
        }
        Err(Invalid("a code is not in the block's Huffman code"))
    }
}

/// Extra bits of length symbols 257..=285, and of distance symbols 0..=29.
const LENGTH_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];
/// The order in which code length code lengths are sent.
const CLEN_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// Walks `stream`, a complete raw deflate stream, to its last block.
fn ends(stream: &[u8]) -> Result<Ends, Invalid> {
    let mut bits = Bits::new(stream);
    let mut lit = Code::new(Alphabet::LitLen);
    let mut dist = Code::new(Alphabet::Distance);
    let mut clen = Code::new(Alphabet::CodeLength);
    let mut lengths = [0u8; 320];
    loop {
        let start = bits.position();
        let last = bits.take(1)? == 1;
        match bits.take(2)? {
            0 => {
                bits.align();
                let len = bits.take(16)?;
                let nlen = bits.take(16)?;
                if len != !nlen & 0xffff {
                    return Err(Invalid("a stored block's length is corrupt"));
                }
                bits.skip_bytes(len as usize)?;
            }
            1 => {
                lengths[..144].fill(8);
                lengths[144..256].fill(9);
                lengths[256..280].fill(7);
                lengths[280..288].fill(8);
                lit.build(&lengths[..288])?;
                dist.build(&[5; 30])?;
                symbols(&mut bits, &lit, &dist)?;
            }
            2 => {
                let nlit = bits.take(5)? as usize + 257;
                let ndist = bits.take(5)? as usize + 1;
                let nclen = bits.take(4)? as usize + 4;
                if nlit > 286 || ndist > 30 {
                    return Err(Invalid("a block has too many codes"));
                }
                let mut cl = [0u8; 19];
                for &i in &CLEN_ORDER[..nclen] {
                    cl[i] = bits.take(3)? as u8;
                }
                clen.build(&cl)?;
                let mut i = 0;
                while i < nlit + ndist {
                    let sym = clen.decode(&mut bits)?;
                    let (value, repeat) = match sym {
                        0..=15 => (sym as u8, 1),
                        16 => {
                            let Some(&prev) = i.checked_sub(1).map(|p| &lengths[p]) else {
                                return Err(Invalid("a repeat has no length to repeat"));
                            };
                            (prev, 3 + bits.take(2)? as usize)
                        }
                        17 => (0, 3 + bits.take(3)? as usize),
                        _ => (0, 11 + bits.take(7)? as usize),
                    };
                    if i + repeat > nlit + ndist {
                        return Err(Invalid("code lengths run past the codes"));
                    }
                    lengths[i..i + repeat].fill(value);
                    i += repeat;
                }
                if lengths[256] == 0 {
                    return Err(Invalid("a block has no end-of-block code"));
                }
                lit.build(&lengths[..nlit])?;
                dist.build(&lengths[nlit..nlit + ndist])?;
                symbols(&mut bits, &lit, &dist)?;
            }
            _ => return Err(Invalid("a block has the reserved type 3")),
        }
        if last {
            return Ok(Ends {
                last_block: start,
                end: bits.position(),
            });
        }
    }
}

/// Reads a compressed block's symbols up to and including its end-of-block code. Each
/// symbol is skipped with its extra bits in one step: only where the block ends matters.
fn symbols(bits: &mut Bits, lit: &Code, dist: &Code) -> Result<(), Invalid> {
    loop {
        // A length code with its extra bits takes at most 20 bits, a distance 28.
        bits.fill(48);
        match lit.skip(bits)? {
            PLAIN => {}
            LENGTH => {
                if dist.skip(bits)? == OUT_OF_RANGE {
                    return Err(Invalid("a distance code is out of range"));
                }
            }
            END => return Ok(()),
            _ => return Err(Invalid("a length code is out of range")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
    use libdeflater::{CompressionLvl, Compressor};

    /// Text with near and far repeats, random bytes (stored blocks) and runs.
    fn inputs() -> Vec<Vec<u8>> {
        let mut x = 88172645463325252u64;
        let mut rand = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let text: Vec<u8> = (0..300_000)
            .flat_map(|_| {
                format!("{:x}\td_sid={},city=Paris\n", rand() >> 44, rand() % 997).into_bytes()
            })
            .collect();
        let noise: Vec<u8> = (0..200_000).map(|_| rand() as u8).collect();
        vec![
            Vec::new(),
            b"a".to_vec(),
            vec![b'x'; 100_000],
            text[..5_000].to_vec(),
            text,
            noise,
        ]
    }

    fn libdeflate(level: i32, data: &[u8]) -> Vec<u8> {
        let mut c = Compressor::new(CompressionLvl::new(level).unwrap());
        let mut out = vec![0; c.deflate_compress_bound(data.len())];
        let n = c.deflate_compress(data, &mut out).unwrap();
        out.truncate(n);
        out
    }

    /// zlib's raw deflate of `a` then `b`, with a sync flush between: returns the stream
    /// and the byte where `b`'s blocks begin.
    fn zlib(level: u32, a: &[u8], b: &[u8]) -> (Vec<u8>, usize) {
        let mut c = Compress::new(Compression::new(level), false);
        let mut out = Vec::with_capacity(2 * (a.len() + b.len()) + 1024);
        c.compress_vec(a, &mut out, FlushCompress::Sync).unwrap();
        let split = out.len();
        let status = c.compress_vec(b, &mut out, FlushCompress::Finish).unwrap();
        assert_eq!(status, Status::StreamEnd);
        (out, split)
    }

    fn inflate(stream: &[u8], size: usize) -> Vec<u8> {
        let mut d = Decompress::new(false);
        let mut out = Vec::with_capacity(size + 1);
        let status = d
            .decompress_vec(stream, &mut out, FlushDecompress::Finish)
            .unwrap();
        assert_eq!(status, Status::StreamEnd);
        assert_eq!(
            d.total_in(),
            stream.len() as u64,
            "the stream is read to its end"
        );
        out
    }

    #[test]
    fn finds_the_last_block_zlib_began_and_its_end() {
        // zlib at level 0 writes stored blocks, at 1 fixed Huffman ones, at 6 and 9 dynamic
        // ones. After a sync flush, a short tail is one final block starting at a byte.
        for level in [0, 1, 6, 9] {
            for data in inputs() {
                let tail = &data[..data.len().min(3_000)];
                let (stream, split) = zlib(level, &data, tail);
                let ends = ends(&stream).unwrap();
                assert_eq!(
                    ends.last_block,
                    split as u64 * 8,
                    "level {level}, {} bytes",
                    data.len()
                );
                let bits = stream.len() as u64 * 8;
                assert!(
                    bits - ends.end < 8,
                    "level {level}: end {} of {bits} bits",
                    ends.end
                );
            }
        }
    }

    #[test]
    fn reopened_streams_join_into_one() {
        for level in [0, 1, 6, 12] {
            let mut joined = Vec::new();
            let mut plain = Vec::new();
            let inputs = inputs();
            for (i, data) in inputs.iter().enumerate() {
                let mut stream = libdeflate(level, data);
                if i + 1 < inputs.len() {
                    let before = stream.len();
                    reopen(&mut stream).unwrap();
                    assert!(stream.len() - before <= REOPEN_BYTES);
                }
                joined.extend_from_slice(&stream);
                plain.extend_from_slice(data);
            }
            assert!(inflate(&joined, plain.len()) == plain, "level {level}");
        }
        // zlib's streams too, whose ends fall anywhere in a byte.
        let mut joined = Vec::new();
        let mut plain = Vec::new();
        for data in inputs() {
            for level in [1, 6] {
                let (mut stream, _) = zlib(level, &data, b"");
                reopen(&mut stream).unwrap();
                joined.extend_from_slice(&stream);
                plain.extend_from_slice(&data);
            }
        }
        joined.extend_from_slice(&libdeflate(6, b"end"));
        plain.extend_from_slice(b"end");
        assert!(inflate(&joined, plain.len()) == plain);
    }

    #[test]
    fn refuses_what_is_not_one_complete_stream() {
        let stream = libdeflate(6, &inputs()[4]);
        for cut in [1, 100, stream.len() / 2, stream.len() - 1] {
            assert_eq!(
                reopen(&mut stream[..cut].to_vec()),
                Err(Invalid("the stream ends inside a block")),
                "cut at {cut}"
            );
        }
        let mut extra = stream;
        extra.push(0);
        assert_eq!(
            reopen(&mut extra),
            Err(Invalid("bytes follow the last block"))
        );
        assert_eq!(
            ends(&[0x07]),
            Err(Invalid("a block has the reserved type 3"))
        );
    }

    /// A final fixed-Huffman block: literal `a`, then `symbols` (each a code of `(value,
    /// bits)`, sent most significant bit first), then the end-of-block code.
    fn fixed_block(symbols: &[(u32, u32)]) -> Vec<u8> {
        let mut bits: Vec<bool> = vec![true, true, false]; // BFINAL, then BTYPE 01 (LSB first)
        let a = (0x30 + u32::from(b'a'), 8);
        for &(value, n) in std::iter::once(&a).chain(symbols).chain(&[(0, 7)]) {
            bits.extend((0..n).rev().map(|i| value >> i & 1 == 1));
        }
        bits.chunks(8)
            .map(|byte| byte.iter().rev().fold(0, |acc, &b| acc << 1 | u8::from(b)))
            .collect()
    }

    #[test]
    fn refuses_codes_outside_their_alphabet() {
        // Fixed codes: length 257 is 0000001, 286 is 11000110; distance 0 is 00000, 30 is 11110.
        let good = fixed_block(&[(0b000_0001, 7), (0, 5)]);
        assert_eq!(inflate(&good, 4), b"aaaa");
        assert_eq!(ends(&good).unwrap().last_block, 0);
        assert_eq!(
            ends(&fixed_block(&[(0b1100_0110, 8)])),
            Err(Invalid("a length code is out of range"))
        );
        // The fixed distance code has 30 codes (a dynamic one at most 30): 11110 is none.
        assert_eq!(
            ends(&fixed_block(&[(0b000_0001, 7), (0b11110, 5), (0, 16)])),
            Err(Invalid("a code is not in the block's Huffman code"))
        );
    }
}
