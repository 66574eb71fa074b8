//! The columns the text fast paths fill themselves (csv_batch.rs, ndjson_batch.rs): the few
//! types they build as Polars' readers build them; any other type is left to Polars.

use polars::prelude::*;

/// A column being filled.
pub(super) enum Builder {
    Text(StringChunkedBuilder),
    Int(PrimitiveChunkedBuilder<Int64Type>),
    Float(PrimitiveChunkedBuilder<Float64Type>),
    Bool(BooleanChunkedBuilder),
    TextList(ListStringChunkedBuilder),
    IntList(ListPrimitiveChunkedBuilder<Int64Type>),
}

impl Builder {
    /// An empty column of `dtype` with room for `rows` rows; `None` for a type the fast
    /// paths leave to Polars.
    pub(super) fn new(name: &PlSmallStr, dtype: &DataType, rows: usize) -> Option<Builder> {
        let name = name.clone();
        Some(match dtype {
            DataType::String => Builder::Text(StringChunkedBuilder::new(name, rows)),
            DataType::Int64 => Builder::Int(PrimitiveChunkedBuilder::new(name, rows)),
            DataType::Float64 => Builder::Float(PrimitiveChunkedBuilder::new(name, rows)),
            DataType::Boolean => Builder::Bool(BooleanChunkedBuilder::new(name, rows)),
            DataType::List(inner) => match **inner {
                DataType::String => {
                    Builder::TextList(ListStringChunkedBuilder::new(name, rows, rows))
                }
                DataType::Int64 => Builder::IntList(ListPrimitiveChunkedBuilder::new(
                    name,
                    rows,
                    rows,
                    DataType::Int64,
                )),
                _ => return None,
            },
            _ => return None,
        })
    }

    pub(super) fn null(&mut self) {
        match self {
            Builder::Text(b) => b.append_null(),
            Builder::Int(b) => b.append_null(),
            Builder::Float(b) => b.append_null(),
            Builder::Bool(b) => b.append_null(),
            Builder::TextList(b) => b.append_null(),
            Builder::IntList(b) => b.append_null(),
        }
    }

    pub(super) fn finish(self) -> Column {
        match self {
            Builder::Text(b) => b.finish().into_column(),
            Builder::Int(b) => b.finish().into_column(),
            Builder::Float(b) => b.finish().into_column(),
            Builder::Bool(b) => b.finish().into_column(),
            Builder::TextList(mut b) => b.finish().into_column(),
            Builder::IntList(mut b) => b.finish().into_column(),
        }
    }
}

/// `[0-9]{1,max}` as a number, read in one pass; `None` for anything else. `max` is at most
/// 19, so that it cannot overflow. CSV's whole numbers and the pipeline's trait IDs are read
/// with it, on every cell of their columns.
pub(crate) fn digits(s: &[u8], max: usize) -> Option<u64> {
    debug_assert!(max <= 19, "{max} digits can overflow a u64");
    if s.is_empty() || s.len() > max {
        return None;
    }
    s.iter().try_fold(0u64, |v, &b| {
        let d = b.wrapping_sub(b'0');
        (d < 10).then(|| v * 10 + u64::from(d))
    })
}

/// `-?[0-9]{1,18}`, which cannot overflow, as a number; `None` for anything else (`+1`,
/// spaces, more digits), which the fast paths leave to Polars or simd-json. CSV's whole
/// numbers and NDJSON's are read with it.
#[inline]
pub(super) fn whole(s: &[u8]) -> Option<i64> {
    let (negative, unsigned) = match s {
        [b'-', rest @ ..] => (true, rest),
        all => (false, all),
    };
    let v = digits(unsigned, 18)? as i64;
    Some(if negative { -v } else { v })
}

/// A schema of `fields`, for the fast paths' tests.
#[cfg(test)]
pub(super) fn schema(fields: &[(&str, DataType)]) -> Schema {
    fields
        .iter()
        .map(|(n, t)| Field::new((*n).into(), t.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::whole;

    /// Whole numbers read here: up to 18 digits, with a minus sign or without; 19 digits,
    /// a plus sign, a lone `-` or anything not a digit are not.
    #[test]
    fn whole_numbers_up_to_18_digits() {
        let whole = |s: &str| whole(s.as_bytes());
        assert_eq!(whole("0"), Some(0));
        assert_eq!(whole("-42"), Some(-42));
        assert_eq!(whole("999999999999999999"), Some(999_999_999_999_999_999));
        assert_eq!(whole("-999999999999999999"), Some(-999_999_999_999_999_999));
        for other in [
            "1000000000000000000",
            "+1",
            "-",
            "",
            "1.0",
            "1e3",
            " 1",
            "1:",
        ] {
            assert_eq!(whole(other), None, "{other:?}");
        }
    }
}
