//! How a row is stored in a buffer or a run file: varints, length first.

/// A code with this bit set carries bytes: the next code is their length, then come the
/// bytes, four to a code (little-endian, the last one zero-padded). They are stored as the
/// bytes themselves, not as varints: carried values are mostly text, whose codes would take
/// five varint bytes for every four.
pub const CARRIED: u32 = 1 << 31;

/// A row as stored: its length, then the ID (length and bytes), file, row and codes, all
/// varints but carried bytes; the length lets a run's reader decode a whole row from one
/// buffer check.
pub(super) fn encode(buf: &mut Vec<u8>, id: &[u8], file: u32, row: u64, codes: &[u32]) {
    // The body is written after a one-byte length, the usual size; a longer body moves
    // over to make room for its length.
    let start = buf.len();
    buf.push(0);
    put_varint(buf, id.len() as u64);
    buf.extend_from_slice(id);
    put_varint(buf, u64::from(file));
    put_varint(buf, row);
    put_varint(buf, codes.len() as u64);
    let mut i = 0;
    while i < codes.len() {
        let c = codes[i];
        put_varint(buf, u64::from(c));
        i += 1;
        if c & CARRIED != 0 {
            let len = codes[i] as usize;
            put_varint(buf, len as u64);
            let words = &codes[i + 1..i + 1 + len.div_ceil(4)];
            let start = buf.len();
            buf.extend(words.iter().flat_map(|w| w.to_le_bytes()));
            buf.truncate(start + len);
            i += 1 + words.len();
        }
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

pub(super) fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push(v as u8 | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Reads the varint at `at`. Trait codes and lengths mostly take one or two bytes: those
/// are read without the loop.
#[inline]
pub(super) fn get_varint(data: &[u8], at: &mut usize) -> u64 {
    let b0 = data[*at];
    if b0 < 0x80 {
        *at += 1;
        return u64::from(b0);
    }
    if let Some(&b1) = data.get(*at + 1).filter(|&&b| b < 0x80) {
        *at += 2;
        return u64::from(b0 & 0x7f) | u64::from(b1) << 7;
    }
    get_long_varint(data, at)
}

fn get_long_varint(data: &[u8], at: &mut usize) -> u64 {
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

/// The most bytes a varint takes.
pub(super) const VARINT_MAX: usize = 10;

/// Appends the `n` codes stored at `at` (see `encode`) to `out`.
pub(super) fn decode_codes(data: &[u8], mut at: usize, n: usize, out: &mut Vec<u32>) {
    let end = out.len() + n;
    while out.len() < end {
        let c = get_varint(data, &mut at) as u32;
        out.push(c);
        if c & CARRIED != 0 {
            let len = get_varint(data, &mut at) as usize;
            out.push(len as u32);
            let bytes = &data[at..at + len];
            out.extend(bytes.chunks(4).map(|b| {
                let mut word = [0u8; 4];
                word[..b.len()].copy_from_slice(b);
                u32::from_le_bytes(word)
            }));
            at += len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_carried_bytes_come_back_as_they_went() {
        let text = b"New York, 10001";
        let mut codes = vec![7, 300_000, CARRIED | 2, text.len() as u32];
        codes.extend(text.chunks(4).map(|b| {
            let mut w = [0u8; 4];
            w[..b.len()].copy_from_slice(b);
            u32::from_le_bytes(w)
        }));
        codes.extend([CARRIED | 5, 0, u32::MAX >> 1]);
        let mut buf = vec![0xAA];
        encode(&mut buf, b"user", 3, 99, &codes);
        let mut at = 1;
        let len = get_varint(&buf, &mut at) as usize;
        assert_eq!(at + len, buf.len());
        let id_len = get_varint(&buf, &mut at) as usize;
        assert_eq!(&buf[at..at + id_len], b"user");
        at += id_len;
        assert_eq!(
            (get_varint(&buf, &mut at), get_varint(&buf, &mut at)),
            (3, 99)
        );
        let n = get_varint(&buf, &mut at) as usize;
        let mut out = vec![1];
        decode_codes(&buf, at, n, &mut out);
        assert_eq!(out[1..], codes[..]);
        // The carried text is stored as it is, not as five bytes per four.
        assert!(buf.windows(text.len()).any(|w| w == text));
    }

    #[test]
    fn varints_of_every_length_come_back() {
        let values = [
            0,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            (1 << 21) - 1,
            1 << 21,
            u64::from(u32::MAX),
            u64::MAX,
        ];
        let mut buf = Vec::new();
        let mut ends = Vec::new();
        for &v in &values {
            put_varint(&mut buf, v);
            ends.push(buf.len());
        }
        let mut at = 0;
        for (&v, &end) in values.iter().zip(&ends) {
            assert_eq!((get_varint(&buf, &mut at), at), (v, end));
        }
        // A two-byte varint that ends the data.
        assert_eq!(get_varint(&[0x80 | 5, 1], &mut 0), 128 + 5);
    }
}
