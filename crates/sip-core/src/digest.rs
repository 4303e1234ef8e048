//! Sans-IO SIP digest authentication (RFC 3261 §22, RFC 7616, RFC 8760).
//!
//! Everything here is pure computation: no clock, no randomness, no I/O. Callers pass the current time as Unix
//! milliseconds and supply key material / client nonces as bytes they obtained from the OS.
//!
//! # Server flow (registrar / proxy)
//!
//! 1. No or unusable credentials: answer 401/407 with one `WWW-Authenticate` / `Proxy-Authenticate` header per
//!    offered algorithm, most preferred first (RFC 8760 §2.4: `SHA-512-256`, `SHA-256`, then `MD5` for legacy
//!    phones), each built by [`challenge_header_value`] around a nonce from [`NonceFactory::issue`].
//! 2. [`Credentials::parse`] the `Authorization` value. A parse error is a 400-class problem, not a wrong password:
//!    do not count it as an authentication failure.
//! 3. [`NonceFactory::check`] the nonce: `Invalid` → fresh challenge; `Stale` → fresh challenge with `stale=true`
//!    so the device retries without prompting for a password (RFC 7616 §3.3).
//! 4. Compare `creds.uri` with the Request-URI (RFC 7616 §3.4.6 leaves this to the server) and `creds.realm` with
//!    the realm you challenged for.
//! 5. Look up HA1 for `(creds.username, creds.realm, creds.algorithm)` and call [`verify`].
//! 6. On success, [`NonceCounts::use_count`] rejects replays (RFC 7616 §3.4 `nc`) and tells a retransmission of
//!    the same request from a replay.
//!
//! # Brute-force throttling and keying
//!
//! [`FailureThrottle`] counts failures per opaque string key. The registrar should keep **two** keys:
//!
//! * `"{auth_id}@{source_ip}"` with a low threshold (e.g. 5 failures / 60 s, 5 min cooldown). This is what stops
//!   password guessing against one account, and because the source address is part of the key, an attacker
//!   guessing from elsewhere cannot lock the real device out: the device's own key stays clean.
//! * `"{source_ip}"` with a much higher threshold (e.g. 50 failures / 10 min). This stops one host spraying many
//!   auth IDs. It can affect honest devices sharing a NAT with an attacker, hence the generous limit.
//!
//! Check both keys with [`FailureThrottle::is_blocked`] *before* verifying (and skip verification when blocked, so
//! a blocked attacker learns nothing), record failures against both, and on success call
//! [`FailureThrottle::record_success`] **only for the `auth_id@source_ip` key**: clearing the per-IP key on success
//! would let an attacker owning one valid account reset its counter between guesses at others. Never key by auth ID
//! alone — that hands any attacker a lock-out button for every device.
//!
//! # Algorithm choices
//!
//! The `-sess` variants (RFC 7616 §3.4.2) are **rejected** with [`DigestError::UnsupportedAlgorithm`]: SIP does not
//! use them, we never offer them, and a client must answer with the algorithm of the challenge it picked. `qop` is
//! limited to `auth`; `auth-int` (which hashes the body) is never offered and rejected when seen in credentials.

mod algorithm;
mod challenge;
mod credentials;
mod nonce;
mod params;
mod replay;
mod response;
mod throttle;

pub use algorithm::{Algorithm, ha1};
pub use challenge::{Challenge, challenge_header_value};
pub use credentials::{Credentials, QopAuth};
pub use nonce::{MAX_FUTURE_SKEW_MS, NonceFactory, NonceStatus};
pub use replay::{NonceCounts, NonceUse};
pub use response::{ClientAuth, ClientSecret, client_response, verify, verify_allow_rfc2069};
pub use throttle::FailureThrottle;

/// Everything that can go wrong while parsing or building digest header values.
///
/// Strings carried in variants come from untrusted input; they are clipped to a short prefix so an attacker cannot
/// make log lines arbitrarily long.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The header value does not use the `Digest` scheme (e.g. `Basic`, which SIP forbids: RFC 3261 §22.1).
    #[error("authentication scheme is not Digest")]
    NotDigest,
    /// The parameter list does not follow the RFC 3261 §25.1 `digest-response` / `digest-cln` grammar.
    #[error("malformed digest header at byte {at}: {reason}")]
    Syntax {
        /// Byte offset into the header value where parsing stopped.
        at: usize,
        /// What was expected there.
        reason: &'static str,
    },
    /// A parameter occurs twice (RFC 7235 §2.1: each parameter name only once).
    #[error("duplicate parameter `{0}`")]
    DuplicateParam(String),
    /// A parameter required by RFC 7616 §3.4 / RFC 3261 §22.4 is absent.
    #[error("missing required parameter `{0}`")]
    MissingParam(&'static str),
    /// More parameters than any legitimate client sends.
    #[error("too many parameters (limit {0})")]
    TooManyParams(usize),
    /// `algorithm` names something we do not implement (including all `-sess` variants).
    #[error("unsupported algorithm `{0}`")]
    UnsupportedAlgorithm(String),
    /// `qop` is something other than `auth`.
    #[error("unsupported qop `{0}`")]
    UnsupportedQop(String),
    /// `nc` is not exactly 8 lower-case hex digits, or is zero where a count is being produced.
    #[error("invalid nonce count `{0}`")]
    InvalidNonceCount(String),
    /// `cnonce` / `nc` sent without `qop` (RFC 2617 §3.2.2: MUST NOT be specified then).
    #[error("parameter `{0}` is not allowed without qop")]
    UnexpectedParam(&'static str),
    /// A value has a bad form (e.g. `userhash=maybe`) or contains characters that cannot go into a header.
    #[error("invalid value for `{0}`")]
    InvalidValue(&'static str),
}

/// Clips untrusted text for inclusion in an error (at most 64 bytes, on a char boundary).
fn clip(s: &str) -> String {
    s.get(..s.floor_char_boundary(64)).unwrap_or_default().to_owned()
}
