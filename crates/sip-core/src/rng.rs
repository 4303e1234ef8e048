//! A fast non-cryptographic generator (xorshift64*) for tags, Call-IDs, branches and call tokens. These values
//! must be unique, not secret; secrets (nonce keys) come from the OS, through the server.

#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    /// Any seed will do (zero is made odd: xorshift would stay at zero).
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A 16-hex-digit token.
    pub fn token(&mut self) -> String {
        format!("{:016x}", self.next_u64())
    }
}
