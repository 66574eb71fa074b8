//! gzip on all cores, the way pigz does it: the data is cut into fixed-size blocks, each
//! compressed on its own as a raw deflate stream by libdeflate (about a quarter less CPU than
//! zlib-rs at the same level, on the benchmark's output), at the mapping's level (6 unless it
//! says otherwise: a higher one trades time for size). Each stream but the last is then
//! reopened (`join`): its last block is no longer marked final and an empty stored block (a
//! sync flush) byte-aligns its end, so the streams concatenate into one ordinary gzip member
//! that any gunzip reads. libdeflate takes no dictionary, so a block cannot refer back into
//! the one before it: the output is about 0.7% larger than zlib-rs's with that priming.
//! Block boundaries depend only on the data, so the bytes are the same whatever the number
//! of threads.
//!
//! Blocks go to a pool of compression threads that stays busy while the caller produces the
//! next data; finished blocks are written in order, with a few in flight at a time.

mod join;

use flate2::Crc;
use libdeflater::{CompressionLvl, Compressor};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Uncompressed bytes per block.
pub const BLOCK: usize = 1 << 20;
/// Level 6, gzip's and pigz's default: `[output] gzip_level` when the mapping does not say.
/// libdeflate's levels run from 1 to 12; from 10 up it searches for the shortest encoding.
pub const DEFAULT_LEVEL: u8 = 6;
/// The levels a mapping may ask for (libdeflate's 0 stores the data uncompressed).
pub const LEVELS: std::ops::RangeInclusive<u8> = 1..=12;
/// gzip header: magic, deflate, no flags, no mtime (reproducible), no extra flags, OS unknown.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
/// An empty final block (fixed Huffman, BFINAL set): ends a deflate stream with no data.
const LAST_BLOCK: [u8; 2] = [0x03, 0x00];

/// A block compressor: libdeflate's state is large, so each thread keeps one.
fn deflater(level: u8) -> Compressor {
    Compressor::new(CompressionLvl::new(level.into()).expect("a level in LEVELS"))
}

/// One gzip member being written: feed it bytes, then `finish`.
pub struct Member<W: Write> {
    out: W,
    crc: Crc,
    /// The block being filled. A full block is sent only when more data comes, so that
    /// the last block, whatever its size, is the one that ends the stream.
    block: Vec<u8>,
    written: u64,
    /// None: compress on the caller's thread, with `deflater` (made on first use).
    pool: Option<Pool>,
    deflater: Option<Compressor>,
    level: u8,
}

impl<W: Write> Member<W> {
    /// A member compressed at `level` (one of `LEVELS`) on `threads` threads.
    pub fn new(mut out: W, threads: usize, level: u8) -> io::Result<Member<W>> {
        assert!(LEVELS.contains(&level), "gzip level {level}");
        out.write_all(&HEADER)?;
        Ok(Member {
            out,
            crc: Crc::new(),
            block: Vec::with_capacity(BLOCK),
            written: HEADER.len() as u64,
            pool: (threads > 1).then(|| Pool::new(threads, level)),
            deflater: None,
            level,
        })
    }

    pub fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if self.block.len() == BLOCK {
                self.send(false)?;
            }
            let take = (BLOCK - self.block.len()).min(data.len());
            self.block.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(())
    }

    /// Compresses what is left, ends the stream and writes the trailer; returns the writer
    /// and the member's size in bytes.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        if self.block.is_empty() {
            self.out.write_all(&LAST_BLOCK)?;
            self.written += LAST_BLOCK.len() as u64;
        } else {
            self.send(true)?;
        }
        while let Some(done) = self.pool.as_mut().and_then(Pool::next_done) {
            self.put(done)?;
        }
        self.out.write_all(&self.crc.sum().to_le_bytes())?;
        // ISIZE is the length modulo 2^32 (RFC 1952).
        self.out.write_all(&(self.crc.amount()).to_le_bytes())?;
        self.written += 8;
        drop(self.pool.take());
        Ok((self.out, self.written))
    }

    /// Hands the current block over for compression (`last` ends the deflate stream), and
    /// writes whatever the pool has finished in order, waiting when too many are in flight.
    fn send(&mut self, last: bool) -> io::Result<()> {
        let fresh = match &mut self.pool {
            Some(pool) => pool.recycled.pop().unwrap_or_default(),
            None => Vec::new(),
        };
        let block = std::mem::replace(&mut self.block, fresh);
        let job = Job { last, block };
        let Some(pool) = &mut self.pool else {
            let level = self.level;
            let done = job.run(self.deflater.get_or_insert_with(|| deflater(level)));
            return self.put(done);
        };
        pool.submit(job);
        while let Some(done) = self.pool.as_mut().and_then(Pool::next_ready) {
            self.put(done)?;
        }
        Ok(())
    }

    fn put(&mut self, done: Done) -> io::Result<()> {
        let deflated = done.deflated?;
        self.out.write_all(&deflated)?;
        self.written += deflated.len() as u64;
        self.crc.combine(&done.crc);
        if let Some(pool) = &mut self.pool {
            pool.recycled.push(done.block);
        }
        Ok(())
    }
}

/// A block to compress; `last` ends the deflate stream.
struct Job {
    block: Vec<u8>,
    last: bool,
}

/// A compressed block; the input buffer comes back for reuse.
struct Done {
    deflated: io::Result<Vec<u8>>,
    crc: Crc,
    block: Vec<u8>,
}

impl Job {
    fn run(self, deflater: &mut Compressor) -> Done {
        let (deflated, crc) = compress_block(deflater, &self.block, self.last);
        let mut block = self.block;
        block.clear();
        Done {
            deflated,
            crc,
            block,
        }
    }
}

/// Compression threads, fed blocks in sequence; results are put back in sequence.
struct Pool {
    jobs: Option<SyncSender<(u64, Job)>>,
    results: Receiver<(u64, Done)>,
    workers: Vec<JoinHandle<()>>,
    /// Sequence numbers: of the next block sent, and of the next to be written.
    sent: u64,
    next: u64,
    /// Finished out of order, waiting for earlier blocks.
    early: BTreeMap<u64, Done>,
    /// Emptied input buffers.
    recycled: Vec<Vec<u8>>,
    /// Blocks in flight before `submit` waits: enough to keep every thread busy while the
    /// caller writes.
    depth: u64,
}

impl Pool {
    fn new(threads: usize, level: u8) -> Pool {
        let (jobs, queue) = sync_channel::<(u64, Job)>(threads);
        let queue = Arc::new(Mutex::new(queue));
        let (done, results) = channel();
        let workers = (0..threads)
            .map(|_| {
                let queue = Arc::clone(&queue);
                let done: Sender<(u64, Done)> = done.clone();
                std::thread::Builder::new()
                    .name("gzip".into())
                    .spawn(move || {
                        let mut deflater = deflater(level);
                        loop {
                            let next = queue.lock().map(|q| q.recv());
                            let Ok(Ok((seq, job))) = next else { return };
                            // A panic becomes this block's error rather than a block that
                            // never arrives.
                            let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                                job.run(&mut deflater)
                            }))
                            .unwrap_or_else(|_| Done {
                                deflated: Err(io::Error::other("a compression thread panicked")),
                                crc: Crc::new(),
                                block: Vec::new(),
                            });
                            if done.send((seq, result)).is_err() {
                                return;
                            }
                        }
                    })
                    .expect("a thread can be started")
            })
            .collect();
        Pool {
            jobs: Some(jobs),
            results,
            workers,
            sent: 0,
            next: 0,
            early: BTreeMap::new(),
            recycled: Vec::new(),
            depth: 2 * threads as u64,
        }
    }

    fn submit(&mut self, job: Job) {
        let jobs = self.jobs.as_ref().expect("open until dropped");
        // The workers only stop when this sender is dropped.
        jobs.send((self.sent, job))
            .expect("compression threads run");
        self.sent += 1;
    }

    /// The next block in sequence if it is done, waiting for it only while too many are in
    /// flight.
    fn next_ready(&mut self) -> Option<Done> {
        while let Ok((seq, done)) = self.results.try_recv() {
            self.early.insert(seq, done);
        }
        if self.sent - self.next >= self.depth {
            return self.next_done();
        }
        let done = self.early.remove(&self.next)?;
        self.next += 1;
        Some(done)
    }

    /// The next block in sequence, waiting for it; None when every block sent is written.
    fn next_done(&mut self) -> Option<Done> {
        if self.next == self.sent {
            return None;
        }
        while !self.early.contains_key(&self.next) {
            let (seq, done) = self.results.recv().expect("compression threads run");
            self.early.insert(seq, done);
        }
        let done = self.early.remove(&self.next).expect("checked above");
        self.next += 1;
        Some(done)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing the queue stops the workers after their current block.
        drop(self.jobs.take());
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// Raw deflate of one block and its CRC. Every block but the last is reopened so that the
/// next one can follow it.
fn compress_block(
    deflater: &mut Compressor,
    block: &[u8],
    last: bool,
) -> (io::Result<Vec<u8>>, Crc) {
    let mut crc = Crc::new();
    crc.update(block);
    let mut out = vec![0; deflater.deflate_compress_bound(block.len()) + join::REOPEN_BYTES];
    let result = match deflater.deflate_compress(block, &mut out) {
        Ok(n) => {
            out.truncate(n);
            match last {
                true => Ok(out),
                false => join::reopen(&mut out).map(|()| out).map_err(|e| {
                    io::Error::other(format!("a gzip block cannot be joined: {}", e.0))
                }),
            }
        }
        Err(e) => Err(io::Error::other(format!("libdeflate: {e:?}"))),
    };
    (result, crc)
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
        gzip_at(data, threads, write_size, DEFAULT_LEVEL)
    }

    fn gzip_at(data: &[u8], threads: usize, write_size: usize, level: u8) -> Vec<u8> {
        let mut m = Member::new(Vec::new(), threads, level).unwrap();
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

    /// libdeflate's own gzip writer, all data in one stream.
    fn libdeflate_gzip(data: &[u8]) -> Vec<u8> {
        let mut c = deflater(DEFAULT_LEVEL);
        let mut out = vec![0; c.gzip_compress_bound(data.len())];
        let n = c.gzip_compress(data, &mut out).unwrap();
        out.truncate(n);
        out
    }

    #[test]
    fn one_block_is_exactly_what_libdeflates_gzip_writer_writes() {
        let data = sample(50_000);
        assert_eq!(gzip(&data, 2, 999), libdeflate_gzip(&data));
    }

    #[test]
    fn every_level_gives_the_same_data_back_and_higher_ones_fewer_bytes() {
        let data = sample(3 * BLOCK + 999);
        let size = |level| {
            let one = gzip_at(&data, 1, data.len(), level);
            assert!(gunzip(&one) == data, "level {level}");
            assert_eq!(
                gzip_at(&data, 2, 70_001, level),
                one,
                "level {level}, 2 threads"
            );
            one.len()
        };
        let sizes: Vec<usize> = LEVELS.map(size).collect();
        let at = |level: u8| sizes[usize::from(level - LEVELS.start())];
        // What a mapping trades: each step of 1, 6, 9, 12 is smaller than the one before.
        assert!(
            at(1) > at(DEFAULT_LEVEL) && at(DEFAULT_LEVEL) > at(9) && at(9) > at(12),
            "{sizes:?}"
        );
    }

    #[test]
    fn compresses_about_as_well_as_one_stream() {
        let data = sample(4 * BLOCK);
        let ours = gzip(&data, 2, data.len()).len();
        let theirs = libdeflate_gzip(&data).len();
        assert!(
            (ours as f64) < theirs as f64 * 1.01,
            "{ours} bytes vs {theirs} from a single stream"
        );
    }
}
