//! gzip on all cores, the way pigz does it: the data is cut into fixed-size blocks, each
//! compressed as raw deflate on its own (primed with the previous block's last 32 KiB, so the
//! ratio barely changes) and ended with a sync flush. The blocks concatenate into one ordinary
//! gzip member that any gunzip reads. Block boundaries depend only on the data, so the bytes
//! are the same whatever the number of threads.

use flate2::{Compress, Compression, Crc, FlushCompress};
use std::io::{self, Write};

/// Uncompressed bytes per block.
pub const BLOCK: usize = 1 << 20;
/// Deflate's window: what a block may refer back to.
const WINDOW: usize = 32 << 10;
/// Level 6: gzip's and pigz's default.
const LEVEL: u32 = 6;
/// gzip header: magic, deflate, no flags, no mtime (reproducible), no extra flags, OS unknown.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
/// An empty final block (fixed Huffman, BFINAL set): ends a deflate stream with no data.
const LAST_BLOCK: [u8; 2] = [0x03, 0x00];

/// One gzip member being written: feed it bytes, then `finish`.
pub struct Member<W: Write> {
    out: W,
    threads: usize,
    crc: Crc,
    /// Bytes not yet compressed; full blocks are compressed a batch at a time.
    pending: Vec<u8>,
    /// The last `WINDOW` bytes before `pending`: the first pending block's dictionary.
    window: Vec<u8>,
    written: u64,
}

impl<W: Write> Member<W> {
    pub fn new(mut out: W, threads: usize) -> io::Result<Member<W>> {
        out.write_all(&HEADER)?;
        Ok(Member {
            out,
            threads: threads.max(1),
            crc: Crc::new(),
            pending: Vec::new(),
            window: Vec::new(),
            written: HEADER.len() as u64,
        })
    }

    pub fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        let batch = BLOCK * self.threads * 2;
        while !data.is_empty() {
            let take = (batch - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() == batch {
                self.compress_pending(false)?;
            }
        }
        Ok(())
    }

    /// Compresses what is pending, ends the stream and writes the trailer; returns the writer
    /// and the member's size in bytes.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        if self.pending.is_empty() {
            self.out.write_all(&LAST_BLOCK)?;
            self.written += LAST_BLOCK.len() as u64;
        } else {
            self.compress_pending(true)?;
        }
        self.out.write_all(&self.crc.sum().to_le_bytes())?;
        // ISIZE is the length modulo 2^32 (RFC 1952).
        self.out.write_all(&(self.crc.amount()).to_le_bytes())?;
        self.written += 8;
        Ok((self.out, self.written))
    }

    /// Compresses the pending blocks; with `last`, the final one ends the deflate stream.
    fn compress_pending(&mut self, last: bool) -> io::Result<()> {
        let n = self.pending.len().div_ceil(BLOCK);
        let blocks: Vec<(&[u8], &[u8], bool)> = self
            .pending
            .chunks(BLOCK)
            .enumerate()
            .map(|(i, block)| {
                let dict = if i == 0 {
                    &self.window[..]
                } else {
                    let start = i * BLOCK;
                    &self.pending[start - WINDOW..start]
                };
                (dict, block, last && i + 1 == n)
            })
            .collect();
        let compressed = parallel_map(&blocks, self.threads, |&(dict, block, end)| {
            compress_block(dict, block, end)
        });
        for (deflated, crc) in compressed {
            let deflated = deflated?;
            self.out.write_all(&deflated)?;
            self.written += deflated.len() as u64;
            self.crc.combine(&crc);
        }
        let keep = self.pending.len().min(WINDOW);
        self.window.clear();
        self.window
            .extend_from_slice(&self.pending[self.pending.len() - keep..]);
        self.pending.clear();
        Ok(())
    }
}

/// Raw deflate of one block and its CRC. A block is ended with a sync flush (byte-aligned,
/// not final) so the next one can follow; the last block ends the stream.
fn compress_block(dict: &[u8], block: &[u8], last: bool) -> (io::Result<Vec<u8>>, Crc) {
    let mut crc = Crc::new();
    crc.update(block);
    let mut c = Compress::new(Compression::new(LEVEL), false);
    let result = (|| {
        if !dict.is_empty() {
            c.set_dictionary(dict).map_err(io::Error::other)?;
        }
        let mut out = Vec::with_capacity(block.len() / 2 + 1024);
        loop {
            if out.capacity() - out.len() < 1024 {
                out.reserve(out.capacity());
            }
            let consumed = c.total_in() as usize;
            let flush = if last {
                FlushCompress::Finish
            } else {
                FlushCompress::Sync
            };
            let status = c
                .compress_vec(&block[consumed..], &mut out, flush)
                .map_err(io::Error::other)?;
            let all_in = c.total_in() as usize == block.len();
            // A sync flush is complete once all input is in and output space was left over.
            if (last && status == flate2::Status::StreamEnd)
                || (!last && all_in && out.len() < out.capacity())
            {
                return Ok(out);
            }
        }
    })();
    (result, crc)
}

/// `f` over `items` on up to `threads` threads; results in order.
fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    if threads <= 1 || items.len() <= 1 {
        return items.iter().map(f).collect();
    }
    let per = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(per)
            .map(|chunk| {
                std::thread::Builder::new()
                    .name("gzip".into())
                    .spawn_scoped(s, || chunk.iter().map(&f).collect::<Vec<R>>())
                    .expect("a thread can be started")
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("compression threads do not panic"))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn sample(n: usize) -> Vec<u8> {
        // Text with repeats near and far, like inbound lines.
        let mut s = Vec::new();
        let mut i = 0u64;
        while s.len() < n {
            i = i
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            s.extend_from_slice(
                format!(
                    "{:x}\td_sid={},city=Paris,age={}\n",
                    i >> 40,
                    i % 997,
                    i % 90
                )
                .as_bytes(),
            );
        }
        s.truncate(n);
        s
    }

    fn gzip(data: &[u8], threads: usize, write_size: usize) -> Vec<u8> {
        let mut m = Member::new(Vec::new(), threads).unwrap();
        for piece in data.chunks(write_size.max(1)) {
            m.write(piece).unwrap();
        }
        let (out, size) = m.finish().unwrap();
        assert_eq!(size, out.len() as u64);
        out
    }

    #[test]
    fn round_trips_and_does_not_depend_on_threads_or_write_sizes() {
        for n in [
            0,
            1,
            100,
            BLOCK - 1,
            BLOCK,
            3 * BLOCK + 12_345,
            9 * BLOCK + 7,
        ] {
            let data = sample(n);
            let one = gzip(&data, 1, data.len());
            assert_eq!(gunzip(&one), data, "{n} bytes");
            assert_eq!(gzip(&data, 2, 70_001), one, "{n} bytes, 2 threads");
            assert_eq!(gzip(&data, 3, BLOCK), one, "{n} bytes, 3 threads");
        }
    }

    #[test]
    fn one_block_is_exactly_what_a_plain_gzip_encoder_writes() {
        let data = sample(50_000);
        let mut plain = flate2::write::GzEncoder::new(Vec::new(), Compression::new(6));
        plain.write_all(&data).unwrap();
        assert_eq!(gzip(&data, 2, 999), plain.finish().unwrap());
    }

    #[test]
    fn compresses_about_as_well_as_one_stream() {
        let data = sample(4 * BLOCK);
        let ours = gzip(&data, 2, data.len()).len();
        let mut plain = flate2::write::GzEncoder::new(Vec::new(), Compression::new(6));
        plain.write_all(&data).unwrap();
        let theirs = plain.finish().unwrap().len();
        assert!(
            (ours as f64) < theirs as f64 * 1.01,
            "{ours} bytes vs {theirs} from a single stream"
        );
    }
}
