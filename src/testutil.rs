//! Helpers for the crate's unit tests.

/// A tiny deterministic generator (xorshift64), so randomised tests
/// reproduce from their seed.
pub struct XorShift(pub u64);

impl XorShift {
    /// A generator for `seed` (any value; zero is avoided internally).
    pub fn seeded(seed: u64) -> Self {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
