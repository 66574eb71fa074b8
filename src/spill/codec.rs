//! How a row is stored in a buffer or a run file: varints, length first.

/// A row as stored: its length, then the ID (length and bytes), file, row and codes, all
/// varints; the length lets a run's reader decode a whole row from one buffer check.
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
    for &c in codes {
        put_varint(buf, u64::from(c));
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

pub(super) fn get_varint(data: &[u8], at: &mut usize) -> u64 {
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
