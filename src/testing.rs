//! What several modules' tests share.

/// A small deterministic generator (xorshift64*), so property tests need no crate and every
/// failure reproduces.
pub struct Gen(pub u64);

impl Gen {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The input options of a mapping without `[input]`: UTF-8 text with a header row, no null
/// markers, the format from the file's name.
pub fn input_options() -> crate::mapping::InputOptions {
    crate::mapping::InputOptions {
        format: None,
        delimiter: None,
        quote: None,
        has_header: true,
        null_values: Vec::new(),
        encoding: crate::mapping::Encoding::Utf8,
    }
}
