//! Mailbox PINs: 4 to 10 digits, stored as PBKDF2-HMAC-SHA256 (RFC 8018) with a random salt, never as digits.
//! Stored form: `pbkdf2-sha256$ITERATIONS$SALT_HEX$HASH_HEX`. A PIN has little entropy whatever the hash, so the
//! real defence is the lockout after wrong PINs; the hash keeps a leaked database from handing the PINs out.

use std::fmt::Write as _;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub const MIN_DIGITS: usize = 4;
pub const MAX_DIGITS: usize = 10;
const ITERATIONS: u32 = 10_000;
const SCHEME: &str = "pbkdf2-sha256";

/// Whether `pin` is a usable PIN; the error says why not.
pub fn check(pin: &str) -> Result<(), &'static str> {
    if !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err("a PIN is digits only");
    }
    if !(MIN_DIGITS..=MAX_DIGITS).contains(&pin.len()) {
        return Err("a PIN has 4 to 10 digits");
    }
    Ok(())
}

fn mac(pin: &str) -> Hmac<Sha256> {
    // HMAC zero-pads short keys to the block (RFC 2104 §2); a PIN is at most 10 bytes.
    let mut block = [0u8; 64];
    for (dst, src) in block.iter_mut().zip(pin.bytes()) {
        *dst = src;
    }
    Hmac::<Sha256>::new(&block.into())
}

/// PBKDF2 with one 32-byte block (RFC 8018 §5.2).
fn derive(pin: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    let key = mac(pin);
    let mut m = key.clone();
    m.update(salt);
    m.update(&1u32.to_be_bytes());
    let mut u: [u8; 32] = m.finalize().into_bytes().into();
    let mut t = u;
    for _ in 1..iterations {
        let mut m = key.clone();
        m.update(&u);
        u = m.finalize().into_bytes().into();
        for (a, b) in t.iter_mut().zip(u) {
            *a ^= b;
        }
    }
    t
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|p| u8::from_str_radix(p, 16).ok())).collect()
}

/// The stored form of `pin`, salted with `salt` (16 random bytes from the OS).
pub fn hash(pin: &str, salt: [u8; 16]) -> String {
    format!("{SCHEME}${ITERATIONS}${}${}", hex(&salt), hex(&derive(pin, &salt, ITERATIONS)))
}

/// The stored form of a new PIN, salted afresh from the OS; `Err` (a reason) if it is not a usable PIN or the OS
/// gives no randomness.
pub fn hash_new(pin: &str) -> Result<String, String> {
    check(pin)?;
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no randomness for the PIN's salt: {e}"))?;
    Ok(hash(pin, salt))
}

/// Whether `pin` matches `stored`. A stored value we cannot read matches nothing.
pub fn verify(pin: &str, stored: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some(SCHEME), Some(iterations), Some(salt), Some(want), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Ok(iterations), Some(salt), Some(want)) = (iterations.parse::<u32>(), unhex(salt), unhex(want)) else {
        return false;
    };
    if !(1..=10_000_000).contains(&iterations) || check(pin).is_err() {
        return false;
    }
    let got = derive(pin, &salt, iterations);
    // Constant time: every byte is compared whatever the first difference.
    got.len() == want.len() && got.iter().zip(&want).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pbkdf2_matches_the_rfc_7914_vector() {
        // RFC 7914 §11: PBKDF2-HMAC-SHA256, P="passwd", S="salt", c=1, first 32 bytes.
        let mut m = Hmac::<Sha256>::new_from_slice(b"passwd").unwrap();
        m.update(b"salt");
        m.update(&1u32.to_be_bytes());
        let direct: [u8; 32] = m.finalize().into_bytes().into();
        assert_eq!(hex(&direct[..8]), "55ac046e56e3089f");
        // Our padded-key path gives the same for a short key.
        assert_eq!(derive("passwd", b"salt", 1), direct);
    }

    #[test]
    fn hash_and_verify() {
        let stored = hash("4321", [7; 16]);
        assert!(stored.starts_with("pbkdf2-sha256$10000$07070707"), "{stored}");
        assert!(!stored.contains("4321"));
        assert!(verify("4321", &stored));
        for wrong in ["4320", "43210", "", "432", "abcd"] {
            assert!(!verify(wrong, &stored), "{wrong}");
        }
        assert_ne!(hash("4321", [8; 16]), stored, "the salt changes the hash");
        for junk in
            ["", "4321", "pbkdf2-sha256$x$00$00", "md5$1$00$00", "pbkdf2-sha256$1$0g$00", &format!("{stored}$x")]
        {
            assert!(!verify("4321", junk), "{junk}");
        }
    }

    #[test]
    fn new_hashes_are_salted_afresh_and_check_the_pin() {
        let (a, b) = (hash_new("975310").unwrap(), hash_new("975310").unwrap());
        assert_ne!(a, b);
        assert!(verify("975310", &a) && verify("975310", &b));
        assert_eq!(hash_new("12"), Err("a PIN has 4 to 10 digits".to_owned()));
    }

    #[test]
    fn pins_are_four_to_ten_digits() {
        for ok in ["0000", "1234567890"] {
            assert_eq!(check(ok), Ok(()));
        }
        assert_eq!(check("123"), Err("a PIN has 4 to 10 digits"));
        assert_eq!(check("12345678901"), Err("a PIN has 4 to 10 digits"));
        assert_eq!(check("12a4"), Err("a PIN is digits only"));
        assert_eq!(check("١٢٣٤"), Err("a PIN is digits only"));
    }
}
