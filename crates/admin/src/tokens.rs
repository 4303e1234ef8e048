//! Management API tokens: 256 random bits, shown once as `sbt_` and 64 hex digits; only their SHA-256 is stored,
//! and a presented token is found by its hash. A token this long needs no slow hash: nothing can be guessed.

use sha2::{Digest, Sha256};

use crate::Error;

/// What every token starts with, so a leaked one is recognisable (and secret scanners can look for it).
pub const PREFIX: &str = "sbt_";

/// A new token and the hash to store.
pub fn generate() -> Result<(String, String), Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::NoRandomness(e.to_string()))?;
    let token = format!("{PREFIX}{}", hex(&bytes));
    let hash = hash(&token);
    Ok((token, hash))
}

/// A bare secret (64 hex digits, 256 bits: a session id or a one-time link) and its stored hash.
pub fn secret() -> Result<(String, String), Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::NoRandomness(e.to_string()))?;
    let secret = hex(&bytes);
    let hash = hash(&secret);
    Ok((secret, hash))
}

/// The stored form of `token`.
pub fn hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_stored_as_their_hash() {
        let (a, ha) = generate().unwrap();
        let (b, hb) = generate().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 64);
        assert_eq!((hash(&a), hash(&b)), (ha.clone(), hb));
        assert_eq!(ha.len(), 64);
        assert!(!ha.contains(&a[PREFIX.len()..]));
    }
}
