//! Decompression on a thread of its own, while the checker parses lines.

use std::io::Read;

pub(super) type Block = std::io::Result<Vec<u8>>;

/// Sends the decompressed data in blocks of about 1 MB, then any error, then hangs up.
pub(super) fn decompress_into(mut gz: impl Read, tx: &std::sync::mpsc::SyncSender<Block>) {
    loop {
        let mut block = vec![0u8; 1 << 20];
        let (filled, error) = crate::fill::fill(&mut gz, &mut block);
        block.truncate(filled);
        let done = filled == 0 || error.is_some();
        // A send fails only when the checker stopped reading.
        if filled > 0 && tx.send(Ok(block)).is_err() {
            return;
        }
        if let Some(e) = error {
            let _ = tx.send(Err(e));
        }
        if done {
            return;
        }
    }
}

/// Reads the blocks another thread decompresses.
pub(super) struct ChannelReader {
    rx: std::sync::mpsc::Receiver<Block>,
    block: Vec<u8>,
    pos: usize,
}

impl ChannelReader {
    pub(super) fn new(rx: std::sync::mpsc::Receiver<Block>) -> ChannelReader {
        ChannelReader {
            rx,
            block: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.block.len() {
            match self.rx.recv() {
                Ok(Ok(block)) => {
                    self.block = block;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0), // the decompressor finished
            }
        }
        let n = out.len().min(self.block.len() - self.pos);
        out[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
