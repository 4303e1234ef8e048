//! Stateless server nonces (RFC 7616 §3.3 and §5.4 suggest exactly this: a time-stamp plus a keyed hash).
//!
//! A nonce is `hex(issued_at_ms) || hex(unique) || hex(HMAC-SHA256(key, label || issued_at || unique || salt)[..16])`
//! (both numbers u64 big-endian): 64 lower-case hex characters. `unique` (a counter or random value from the
//! caller) keeps nonces issued within the same millisecond distinct, which replay tracking by nonce requires:
//! at thousands of challenges a second, time alone would hand two devices the same nonce. 64 hex characters are safe as a token and inside quotes. Nothing is stored per nonce, so any number of
//! challenges can be handed out (including to spoofed UDP sources) at no memory cost, and every node sharing the
//! key accepts every other node's nonces. Replay within the lifetime is [`super::NonceCounts`]' job.
//!
//! The `salt` binds a nonce to context chosen by the caller, typically the realm (so a nonce issued for one tenant
//! is `Invalid` for another) and possibly the source address.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::algorithm::{hex_val, to_hex};

/// How far in the future an issue time may lie before the nonce is treated as forged. Nodes of a cluster share the
/// nonce key, and their clocks are only NTP-close.
pub const MAX_FUTURE_SKEW_MS: u64 = 5_000;

/// Domain separation, so the key can never be confused with an HMAC over some other message format.
const LABEL: &[u8] = b"switchboard/sip-digest-nonce/v1\0";
const TIME_LEN: usize = 8;
/// 128-bit tag: forging one takes 2^128 work, and nonces are short-lived anyway.
const TAG_LEN: usize = 16;
const UNIQUE_LEN: usize = 8;
const NONCE_HEX_LEN: usize = 2 * (TIME_LEN + UNIQUE_LEN + TAG_LEN);

/// Result of [`NonceFactory::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceStatus {
    /// Ours, untampered and within its lifetime.
    Valid {
        /// When it was issued (Unix ms).
        issued_at: u64,
    },
    /// Ours and untampered, but older than the lifetime: re-challenge with `stale=true` (RFC 7616 §3.3) if the
    /// response was otherwise correct, so the device retries silently.
    Stale,
    /// Not ours: garbled, forged, issued for another salt, or dated too far in the future.
    Invalid,
}

/// Issues and checks stateless nonces.
#[derive(Clone)]
pub struct NonceFactory {
    mac: Hmac<Sha256>,
    lifetime_ms: u64,
}

impl fmt::Debug for NonceFactory {
    /// The key is never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceFactory").field("key", &"<redacted>").field("lifetime_ms", &self.lifetime_ms).finish()
    }
}

impl NonceFactory {
    /// `key` must be 32 random bytes from the OS, shared by all nodes that must accept each other's nonces.
    /// Changing it invalidates all outstanding nonces (devices get a fresh challenge, not an error).
    /// `lifetime_ms` is how long a nonce stays `Valid`; it should exceed the registration refresh cadence of chatty
    /// devices only if you want them to skip a challenge round trip — a few minutes is usual.
    pub fn new(key: [u8; 32], lifetime_ms: u64) -> Self {
        // HMAC zero-pads keys shorter than the hash block (RFC 2104 §2), so padding here gives the same MAC as
        // keying with the 32 bytes directly, via the infallible constructor.
        let mut block = [0u8; 64];
        for (dst, src) in block.iter_mut().zip(key) {
            *dst = src;
        }
        NonceFactory { mac: Hmac::<Sha256>::new(&block.into()), lifetime_ms }
    }

    /// The lifetime given at construction; [`super::NonceCounts`] should use the same.
    pub fn lifetime_ms(&self) -> u64 {
        self.lifetime_ms
    }

    fn tagger(&self, issued_at: u64, unique: u64, salt: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(LABEL);
        mac.update(&issued_at.to_be_bytes());
        mac.update(&unique.to_be_bytes());
        mac.update(salt);
        mac
    }

    /// Makes a nonce stamped with `now_ms`, made distinct by `unique` (never repeat it within a millisecond) and
    /// bound to `salt`.
    pub fn issue(&self, now_ms: u64, unique: u64, salt: &[u8]) -> String {
        let tag = self.tagger(now_ms, unique, salt).finalize().into_bytes();
        let mut nonce = to_hex(&now_ms.to_be_bytes());
        nonce.push_str(&to_hex(&unique.to_be_bytes()));
        nonce.push_str(&to_hex(tag.get(..TAG_LEN).unwrap_or_default()));
        nonce
    }

    /// Classifies a nonce received in credentials. The MAC is compared in constant time. Only the exact form we
    /// issue (64 lower-case hex digits) is accepted, so one nonce has exactly one spelling and replay tracking keyed
    /// by the string cannot be dodged by changing letter case.
    pub fn check(&self, nonce: &str, now_ms: u64, salt: &[u8]) -> NonceStatus {
        let Some((issued_at, unique, tag)) = decode(nonce) else {
            return NonceStatus::Invalid;
        };
        if self.tagger(issued_at, unique, salt).verify_truncated_left(&tag).is_err() {
            return NonceStatus::Invalid;
        }
        if issued_at > now_ms.saturating_add(MAX_FUTURE_SKEW_MS) {
            return NonceStatus::Invalid;
        }
        if now_ms.saturating_sub(issued_at) >= self.lifetime_ms {
            return NonceStatus::Stale;
        }
        NonceStatus::Valid { issued_at }
    }
}

/// Splits a nonce into issue time, unique value and tag; `None` unless it is exactly our shape.
fn decode(nonce: &str) -> Option<(u64, u64, [u8; TAG_LEN])> {
    let bytes = nonce.as_bytes();
    if bytes.len() != NONCE_HEX_LEN || !bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut raw = [0u8; TIME_LEN + UNIQUE_LEN + TAG_LEN];
    for (dst, pair) in raw.iter_mut().zip(bytes.chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        *dst = (hex_val(*hi)? << 4) | hex_val(*lo)?;
    }
    let (time, rest) = raw.split_first_chunk::<TIME_LEN>()?;
    let (unique, tag) = rest.split_first_chunk::<UNIQUE_LEN>()?;
    Some((u64::from_be_bytes(*time), u64::from_be_bytes(*unique), tag.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIFE: u64 = 300_000;
    const T0: u64 = 1_700_000_000_000;

    fn factory() -> NonceFactory {
        NonceFactory::new([7u8; 32], LIFE)
    }

    #[test]
    fn issued_nonce_is_valid_token_safe_and_stamped() {
        let f = factory();
        let n = f.issue(T0, 7, b"realm-a");
        assert_eq!(n.len(), NONCE_HEX_LEN);
        assert!(n.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{n}");
        assert!(n.starts_with(&format!("{T0:016x}")));
        assert_eq!(f.check(&n, T0, b"realm-a"), NonceStatus::Valid { issued_at: T0 });
        assert_eq!(f.check(&n, T0 + LIFE - 1, b"realm-a"), NonceStatus::Valid { issued_at: T0 });
        // Deterministic for the same inputs, different for different times.
        assert_eq!(n, f.issue(T0, 7, b"realm-a"));
        assert_ne!(n, f.issue(T0 + 1, 7, b"realm-a"));
        // Two challenges in the same millisecond must not share a nonce (replay tracking is per nonce).
        let other = f.issue(T0, 8, b"realm-a");
        assert_ne!(n, other);
        assert_eq!(f.check(&other, T0, b"realm-a"), NonceStatus::Valid { issued_at: T0 });
    }

    #[test]
    fn stale_after_lifetime() {
        let f = factory();
        let n = f.issue(T0, 7, b"");
        assert_eq!(f.check(&n, T0 + LIFE, b""), NonceStatus::Stale);
        assert_eq!(f.check(&n, u64::MAX, b""), NonceStatus::Stale);
    }

    #[test]
    fn future_beyond_skew_is_invalid() {
        let f = factory();
        let n = f.issue(T0 + MAX_FUTURE_SKEW_MS, 7, b"");
        assert_eq!(f.check(&n, T0, b""), NonceStatus::Valid { issued_at: T0 + MAX_FUTURE_SKEW_MS });
        let n = f.issue(T0 + MAX_FUTURE_SKEW_MS + 1, 7, b"");
        assert_eq!(f.check(&n, T0, b""), NonceStatus::Invalid);
    }

    #[test]
    fn forged_or_rebound_nonces_are_invalid() {
        let f = factory();
        let n = f.issue(T0, 7, b"realm-a");
        assert_eq!(f.check(&n, T0, b"realm-b"), NonceStatus::Invalid, "salt is bound");
        assert_eq!(NonceFactory::new([8u8; 32], LIFE).check(&n, T0, b"realm-a"), NonceStatus::Invalid, "key");

        // Moving the time stamp (to extend the lifetime) breaks the MAC.
        let moved = format!("{:016x}{}", T0 + 1000, n.get(16..).unwrap_or_default());
        assert_eq!(f.check(&moved, T0 + 1000, b"realm-a"), NonceStatus::Invalid);

        // Flip each character of the tag in turn.
        for i in 16..n.len() {
            let mut forged: Vec<u8> = n.clone().into_bytes();
            if let Some(b) = forged.get_mut(i) {
                *b = if *b == b'0' { b'1' } else { b'0' };
            }
            let forged = String::from_utf8(forged).unwrap_or_default();
            assert_eq!(f.check(&forged, T0, b"realm-a"), NonceStatus::Invalid, "{forged}");
        }
    }

    #[test]
    fn garbled_nonces_are_invalid() {
        let f = factory();
        let n = f.issue(T0, 7, b"");
        for garbled in [
            String::new(),
            "zz".into(),
            n.to_ascii_uppercase(),
            format!("{n}0"),
            n.get(..47).unwrap_or_default().to_owned(),
            format!("{}\u{e9}", n.get(..46).unwrap_or_default()),
            "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v".into(),
        ] {
            assert_eq!(f.check(&garbled, T0, b""), NonceStatus::Invalid, "{garbled:?}");
        }
    }

    #[test]
    fn debug_hides_key() {
        let dbg = format!("{:?}", NonceFactory::new([0xab; 32], 1));
        assert!(!dbg.contains("171") && !dbg.to_ascii_lowercase().contains("ab, "), "{dbg}");
    }
}
