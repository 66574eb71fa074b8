//! Reading a stream in blocks of a fixed size, for the threads that read ahead of their
//! consumers (the CSV record check, the validator's decompression).

use std::io::{self, Read};

/// Fills `buf` as far as `reader` goes: the bytes read (0 at the end) and the error that
/// stopped it, if one did; the bytes before an error are still in `buf`.
pub(crate) fn fill(reader: &mut impl Read, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (filled, Some(e)),
        }
    }
    (filled, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that gives a few bytes at a time, is interrupted once, then fails.
    struct Trickle(Vec<io::Result<Vec<u8>>>);

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.pop() {
                None => Ok(0),
                Some(Ok(bytes)) => {
                    buf[..bytes.len()].copy_from_slice(&bytes);
                    Ok(bytes.len())
                }
                Some(Err(e)) => Err(e),
            }
        }
    }

    #[test]
    fn fills_across_short_reads_and_keeps_what_came_before_an_error() {
        let mut buf = [0u8; 8];
        let mut whole = Trickle(vec![
            Ok(b"fgh".to_vec()),
            Err(io::ErrorKind::Interrupted.into()),
            Ok(b"cde".to_vec()),
            Ok(b"ab".to_vec()),
        ]);
        assert_eq!(fill(&mut whole, &mut buf).0, 8);
        assert_eq!(&buf, b"abcdefgh");
        let mut broken = Trickle(vec![Err(io::ErrorKind::Other.into()), Ok(b"xy".to_vec())]);
        let (n, e) = fill(&mut broken, &mut buf);
        assert_eq!((n, &buf[..n]), (2, &b"xy"[..]));
        assert_eq!(e.map(|e| e.kind()), Some(io::ErrorKind::Other));
        let (n, e) = fill(&mut Trickle(Vec::new()), &mut buf);
        assert!(n == 0 && e.is_none());
    }
}
