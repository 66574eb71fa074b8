//! Text that Polars cannot read from the file as it is: gzip-compressed, or in a single-byte
//! encoding; it is decoded into memory as UTF-8.

use super::Source;
use crate::error::{Error, Result};
use crate::mapping::Encoding;
use flate2::read::MultiGzDecoder;
use std::io::Read;

impl Source {
    /// The file's text as UTF-8 bytes: gunzipped and decoded from `encoding` when needed.
    pub(super) fn read_text(&self, encoding: Encoding) -> Result<Vec<u8>> {
        let file = std::fs::File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        let mut bytes = Vec::new();
        let read = if self.gzip {
            MultiGzDecoder::new(std::io::BufReader::new(file)).read_to_end(&mut bytes)
        } else {
            std::io::BufReader::new(file).read_to_end(&mut bytes)
        };
        read.map_err(|e| {
            if self.gzip {
                Error::source(&self.path, format!("not a valid gzip file: {e}"))
            } else {
                Error::io(&self.path, e)
            }
        })?;
        Ok(match encoding {
            Encoding::Utf8 => bytes,
            Encoding::Latin1 => decode_single_byte(&bytes, char::from),
            Encoding::Windows1252 => decode_single_byte(&bytes, windows_1252),
        })
    }
}

fn decode_single_byte(bytes: &[u8], map: impl Fn(u8) -> char) -> Vec<u8> {
    let mut out = String::with_capacity(bytes.len() + bytes.len() / 8);
    for &b in bytes {
        out.push(if b.is_ascii() { char::from(b) } else { map(b) });
    }
    out.into_bytes()
}

/// Windows-1252 differs from Latin-1 only in 0x80..=0x9F.
fn windows_1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž',
        '\u{8f}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}',
        'ž', 'Ÿ',
    ];
    match b {
        0x80..=0x9f => HIGH[usize::from(b - 0x80)],
        _ => char::from(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_byte_encodings_decode() {
        assert_eq!(
            decode_single_byte(b"Z\xfcrich", char::from),
            "Zürich".as_bytes()
        );
        assert_eq!(
            decode_single_byte(b"\x80 \x93x\x94", windows_1252),
            "€ “x”".as_bytes()
        );
    }
}
