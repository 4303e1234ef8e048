//! Digest hash algorithms (RFC 7616 §3.2, RFC 8760 §2.2) and the small hex / comparison helpers shared by the
//! rest of the module.

use std::fmt;
use std::str::FromStr;

use md5::Md5;
use sha2::{Digest, Sha256, Sha512_256};

use super::{DigestError, clip};

/// A digest hash algorithm as named by the `algorithm` parameter.
///
/// Only the non-session forms exist: `-sess` is rejected at parse time (see the module docs for why).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// `MD5`: the RFC 2617 / RFC 3261 default, still what most deployed phones speak. Also what an absent
    /// `algorithm` parameter means (RFC 7616 §3.3).
    #[default]
    Md5,
    /// `SHA-256` (RFC 7616, RFC 8760).
    Sha256,
    /// `SHA-512-256`, i.e. SHA-512/256 from FIPS 180-4 (RFC 7616, RFC 8760).
    Sha512_256,
}

impl Algorithm {
    /// All algorithms, most preferred first (the order RFC 8760 §2.4 asks challenges to be listed in).
    pub const ALL: [Algorithm; 3] = [Algorithm::Sha512_256, Algorithm::Sha256, Algorithm::Md5];

    /// The wire name, e.g. `SHA-256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha512_256 => "SHA-512-256",
        }
    }

    /// Length in hex characters of this algorithm's digests (HA1, HA2, response).
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Md5 => 32,
            Algorithm::Sha256 | Algorithm::Sha512_256 => 64,
        }
    }

    /// `H(p0 ":" p1 ":" ...)` in lower-case hex: the only shape of hashing RFC 7616 §3.4 ever does.
    pub(crate) fn hash_hex(self, parts: &[&str]) -> String {
        match self {
            Algorithm::Md5 => hash_parts::<Md5>(parts),
            Algorithm::Sha256 => hash_parts::<Sha256>(parts),
            Algorithm::Sha512_256 => hash_parts::<Sha512_256>(parts),
        }
    }
}

fn hash_parts<D: Digest>(parts: &[&str]) -> String {
    let mut hasher = D::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update(b":");
        }
        hasher.update(part.as_bytes());
    }
    to_hex(&hasher.finalize())
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = DigestError;

    /// Parses a wire name case-insensitively (RFC 7616 §3.3: "case-insensitive"). `-sess` forms and anything
    /// unknown yield [`DigestError::UnsupportedAlgorithm`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL
            .into_iter()
            .find(|alg| alg.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| DigestError::UnsupportedAlgorithm(clip(s)))
    }
}

/// HA1 = `H(username ":" realm ":" password)` in lower-case hex (RFC 7616 §3.4.2, RFC 3261 §22.4).
///
/// This is what a registrar should store instead of the password: one HA1 per algorithm it offers. It is still a
/// password equivalent for that realm, so protect it like one.
pub fn ha1(alg: Algorithm, username: &str, realm: &str, password: &str) -> String {
    alg.hash_hex(&[username, realm, password])
}

/// Lower-case hex encoding.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    fn nibble(n: u8) -> char {
        char::from(if n < 10 { b'0' + n } else { b'a' + (n - 10) })
    }
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(nibble(b >> 4));
        out.push(nibble(b & 0x0f));
    }
    out
}

/// Value of one hex digit, either case.
pub(crate) fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Compares two byte strings without an early exit on the first difference, so the time taken does not tell an
/// attacker how many leading characters of a guessed response were right. Lengths are not secret (they follow from
/// the algorithm) and are compared directly.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip_case_insensitively() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.as_str().parse::<Algorithm>(), Ok(alg));
            assert_eq!(alg.as_str().to_ascii_lowercase().parse::<Algorithm>(), Ok(alg));
            assert_eq!(alg.to_string(), alg.as_str());
        }
        assert_eq!("sha-512-256".parse::<Algorithm>(), Ok(Algorithm::Sha512_256));
    }

    #[test]
    fn sess_and_unknown_algorithms_are_rejected() {
        for name in ["MD5-sess", "SHA-256-sess", "SHA-512-256-sess", "SHA1", "", "SHA-512"] {
            assert!(matches!(name.parse::<Algorithm>(), Err(DigestError::UnsupportedAlgorithm(_))), "{name}");
        }
    }

    #[test]
    fn hashes_match_known_vectors() {
        // RFC 1321 §A.5, FIPS 180-4 examples ("abc").
        assert_eq!(Algorithm::Md5.hash_hex(&["abc"]), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            Algorithm::Sha256.hash_hex(&["abc"]),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            Algorithm::Sha512_256.hash_hex(&["abc"]),
            "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"
        );
        // Parts are joined with ':'.
        assert_eq!(Algorithm::Md5.hash_hex(&["a", "b"]), Algorithm::Md5.hash_hex(&["a:b"]));
    }

    #[test]
    fn ha1_lengths_follow_algorithm() {
        for alg in Algorithm::ALL {
            assert_eq!(ha1(alg, "u", "r", "p").len(), alg.hex_len());
        }
        // RFC 2617 §3.5 example user.
        assert_eq!(
            ha1(Algorithm::Md5, "Mufasa", "testrealm@host.com", "Circle Of Life"),
            "939e7578ed9e3c518a452acee763bce9"
        );
    }

    #[test]
    fn hex_and_ct_eq() {
        assert_eq!(to_hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex_val(b'F'), Some(15));
        assert_eq!(hex_val(b'g'), None);
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
