//! The unit tests' deterministic data: one xorshift64 generator for every test that needs
//! random-looking input.

/// xorshift64 (Marsaglia 2003, shifts 13, 7, 17).
#[derive(Clone, Debug)]
pub(crate) struct XorShift(u64);

impl XorShift {
    /// A generator for `seed` (any value, 0 included).
    pub(crate) fn new(seed: u64) -> Self {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// 32 of the better-mixed middle bits.
    pub(crate) fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 16) as u32
    }

    /// Uniform in [-1, 1), on a grid of 2^-52.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}
