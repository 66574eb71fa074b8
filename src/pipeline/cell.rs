//! Cell values as rules see them: the few physical types rules understand, the pieces of a
//! cell (list elements, split text, trimmed), and the readings every rule shares (trait IDs,
//! flags).

use super::RowReject;
use crate::reject::RejectReason;
use polars::prelude::*;
use std::fmt::Write as _;

/// One cell value, as the rules see it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Cell<'a> {
    Str(&'a str),
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
}

impl Cell<'_> {
    /// The value as text, for value maps and signals: text as it is, numbers written into
    /// `buf` (integral floats without `.0`), so the hot path allocates nothing.
    pub(super) fn text<'c>(&'c self, buf: &'c mut String) -> &'c str {
        buf.clear();
        let _ = match *self {
            Cell::Str(s) => return s,
            Cell::Int(i) => write!(buf, "{i}"),
            Cell::UInt(u) => write!(buf, "{u}"),
            Cell::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => write!(buf, "{}", f as i64),
            Cell::Float(f) => write!(buf, "{f}"),
            Cell::Bool(b) => write!(buf, "{b}"),
        };
        buf
    }

    pub(super) fn describe(&self) -> String {
        match self {
            Cell::Str(s) => format!("\"{s}\""),
            other => other.text(&mut String::new()).to_owned(),
        }
    }
}

/// A column's values in one of the few physical types rules understand.
pub(super) enum Cells {
    Str(StringChunked),
    Int(Int64Chunked),
    UInt(UInt64Chunked),
    Float(Float64Chunked),
    Bool(BooleanChunked),
    List(ListChunked),
    Null,
}

impl Cells {
    pub(super) fn from_series(s: &Series) -> PolarsResult<Cells> {
        let dtype = s.dtype();
        Ok(match dtype {
            DataType::Null => Cells::Null,
            DataType::Boolean => Cells::Bool(s.bool()?.clone()),
            DataType::String => Cells::Str(s.str()?.clone()),
            DataType::List(_) => Cells::List(s.list()?.clone()),
            d if d.is_unsigned_integer() => Cells::UInt(s.cast(&DataType::UInt64)?.u64()?.clone()),
            d if d.is_integer() => Cells::Int(s.cast(&DataType::Int64)?.i64()?.clone()),
            d if d.is_float() => Cells::Float(s.cast(&DataType::Float64)?.f64()?.clone()),
            _ => Cells::Str(s.cast(&DataType::String)?.str()?.clone()),
        })
    }

    fn len(&self) -> usize {
        match self {
            Cells::Str(c) => c.len(),
            Cells::Int(c) => c.len(),
            Cells::UInt(c) => c.len(),
            Cells::Float(c) => c.len(),
            Cells::Bool(c) => c.len(),
            Cells::List(c) => c.len(),
            Cells::Null => 0,
        }
    }

    /// Row `row`'s value, one at a time (the loops over whole columns are faster); `None`
    /// for NULL, and for a list, which is not one value.
    pub(super) fn get(&self, row: usize) -> Option<Cell<'_>> {
        match self {
            Cells::Str(c) => c.get(row).map(Cell::Str),
            Cells::Int(c) => c.get(row).map(Cell::Int),
            Cells::UInt(c) => c.get(row).map(Cell::UInt),
            Cells::Float(c) => c.get(row).map(Cell::Float),
            Cells::Bool(c) => c.get(row).map(Cell::Bool),
            Cells::List(_) | Cells::Null => None,
        }
    }

    /// Calls `f` for each non-empty value in row `row` (see `pieces`); used for the elements
    /// of a list cell, where rows are few.
    fn visit(&self, row: usize, split: Option<&str>, f: &mut CellFn) -> Result<(), RowReject> {
        if let Cells::List(c) = self {
            return c.get_as_series(row).map_or(Ok(()), |s| list(&s, split, f));
        }
        let mut f = f;
        self.get(row)
            .map_or(Ok(()), |cell| pieces(cell, split, &mut f))
    }
}

pub(super) type CellFn<'f> = dyn FnMut(Cell) -> Result<(), RowReject> + 'f;

/// Calls `f` for each element of a list cell (see `pieces`).
pub(super) fn list(inner: &Series, split: Option<&str>, f: &mut CellFn) -> Result<(), RowReject> {
    let inner = Cells::from_series(inner)
        .map_err(|e| RowReject::new(RejectReason::UnsupportedValue, e.to_string()))?;
    (0..inner.len()).try_for_each(|i| inner.visit(i, split, f))
}

/// Calls `f` for each non-empty value in a cell: the cell itself, or each non-empty piece
/// of a string split on `split`. Text is trimmed; empty strings produce nothing.
pub(super) fn pieces(
    cell: Cell,
    split: Option<&str>,
    f: &mut impl FnMut(Cell) -> Result<(), RowReject>,
) -> Result<(), RowReject> {
    let Cell::Str(s) = cell else {
        return f(cell);
    };
    let mut each = |piece: &str| {
        let piece = trim(piece);
        if piece.is_empty() {
            Ok(())
        } else {
            f(Cell::Str(piece))
        }
    };
    match split.map(str::as_bytes) {
        // A one-byte separator (the usual `|`) is found byte by byte: faster than a string
        // search on short values.
        Some(&[sep]) if sep.is_ascii() => {
            let mut start = 0;
            for (i, &b) in s.as_bytes().iter().enumerate() {
                if b == sep {
                    each(&s[start..i])?;
                    start = i + 1;
                }
            }
            each(&s[start..])
        }
        Some(_) => s.split(split.unwrap_or_default()).try_for_each(each),
        None => each(s),
    }
}

/// `str::trim`, with a shortcut for the usual value that starts and ends with a visible
/// ASCII character.
pub(super) fn trim(s: &str) -> &str {
    match s.as_bytes() {
        [first, .., last] if first.is_ascii_graphic() && last.is_ascii_graphic() => s,
        [only] if only.is_ascii_graphic() => s,
        _ => s.trim(),
    }
}

/// A trait ID from a cell: digits, or an integral number (`123.0` from a float column).
pub(super) fn trait_id(cell: Cell) -> Result<u64, String> {
    match cell {
        Cell::UInt(u) => Ok(u),
        Cell::Int(i) if i >= 0 => Ok(i as u64),
        Cell::Float(f) if f >= 0.0 && f.fract() == 0.0 && f < 9.0e15 => Ok(f as u64),
        Cell::Str(s) => {
            // The usual text, read in one pass. Searching for a `.` first, then checking
            // and parsing, cost about five times as much on every cell of the column.
            if let Some(id) = crate::source::digits(s.as_bytes(), 19) {
                return Ok(id);
            }
            // "123" or, from a float column exported as text, "123.0".
            let digits = match s.split_once('.') {
                Some((int, frac)) if !frac.is_empty() && frac.bytes().all(|b| b == b'0') => int,
                _ => s,
            };
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                digits.parse().map_err(|_| "too large".to_owned())
            } else {
                Err("not digits only".to_owned())
            }
        }
        _ => Err("not a whole non-negative number".to_owned()),
    }
}

/// The spellings accepted for true/false in a flag column.
pub(super) fn flag(cell: Cell) -> Option<bool> {
    match cell {
        Cell::Bool(b) => Some(b),
        Cell::Int(1) | Cell::UInt(1) => Some(true),
        Cell::Int(0) | Cell::UInt(0) => Some(false),
        Cell::Float(1.0) => Some(true),
        Cell::Float(0.0) => Some(false),
        Cell::Str(s) => flag_text(s),
        _ => None,
    }
}

/// A flag's text spellings, in any case. Compared in place: a flag column is read on every
/// row, and lowering each value into a new string cost an allocation per row.
pub(crate) fn flag_text(s: &str) -> Option<bool> {
    let is = |word: &str| s.eq_ignore_ascii_case(word);
    match s.len() {
        1 => match s.as_bytes()[0].to_ascii_lowercase() {
            b't' | b'y' | b'1' => Some(true),
            b'f' | b'n' | b'0' => Some(false),
            _ => None,
        },
        2 if is("no") => Some(false),
        3 if is("yes") => Some(true),
        4 if is("true") => Some(true),
        5 if is("false") => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trait_ids_from_cells() {
        assert_eq!(trait_id(Cell::Int(24)), Ok(24));
        assert_eq!(trait_id(Cell::Float(123.0)), Ok(123));
        assert_eq!(trait_id(Cell::Str("123.0")), Ok(123));
        assert_eq!(trait_id(Cell::Str("0042")), Ok(42));
        assert!(trait_id(Cell::Str("12a")).is_err());
        assert!(trait_id(Cell::Str("1.5")).is_err());
        assert!(trait_id(Cell::Float(1.5)).is_err());
        assert!(trait_id(Cell::Int(-3)).is_err());
        // The one-pass digits and the slower spellings meet at 19 and 20 digits.
        assert_eq!(trait_id(Cell::Str("7")), Ok(7));
        assert_eq!(
            trait_id(Cell::Str("9999999999999999999")),
            Ok(9_999_999_999_999_999_999)
        );
        assert_eq!(trait_id(Cell::Str("18446744073709551615")), Ok(u64::MAX));
        assert_eq!(
            trait_id(Cell::Str("18446744073709551616")),
            Err("too large".to_owned())
        );
        assert_eq!(
            trait_id(Cell::Str("12/4")),
            Err("not digits only".to_owned())
        );
        assert!(trait_id(Cell::Str("")).is_err());
        assert!(trait_id(Cell::Str("1.")).is_err());
        assert!(trait_id(Cell::Str(".0")).is_err());
        assert!(trait_id(Cell::Str(" 1")).is_err());
        assert!(trait_id(Cell::Str("1:")).is_err());
        assert!(trait_id(Cell::Bool(true)).is_err());
    }

    #[test]
    fn flag_spellings() {
        for t in ["true", "TRUE", "Y", "yes", "1", "t"] {
            assert_eq!(flag(Cell::Str(t)), Some(true), "{t}");
        }
        for f in ["false", "N", "no", "0", "F"] {
            assert_eq!(flag(Cell::Str(f)), Some(false), "{f}");
        }
        assert_eq!(flag(Cell::Str("maybe")), None);
        assert_eq!(flag(Cell::Str("tru")), None);
        assert_eq!(flag(Cell::Str("yes ")), None);
        assert_eq!(flag(Cell::Str("Ｙ")), None);
        assert_eq!(flag(Cell::Int(2)), None);
        assert_eq!(flag(Cell::Bool(true)), Some(true));
    }

    #[test]
    fn cell_text_prints_integral_floats_plainly() {
        let mut buf = String::new();
        assert_eq!(Cell::Float(3.0).text(&mut buf), "3");
        assert_eq!(Cell::Float(3.5).text(&mut buf), "3.5");
        assert_eq!(Cell::Int(-2).text(&mut buf), "-2");
        assert_eq!(Cell::Str("x y").text(&mut buf), "x y");
    }
}
