//! Digest authentication of requests from devices (RFC 3261 §22, RFC 7616, RFC 8760), with replay protection,
//! brute-force throttling and no user enumeration.
//!
//! No enumeration: an unknown Auth ID is verified against a dummy HA1 derived from a secret, so it takes the same
//! path and gets the same 401 (same headers, fresh nonce) as a wrong password; both count as failures.
//!
//! Throttling keeps three counters:
//! - `auth_id@source_ip` (the configured limit): guessing one account from one place. The real device
//!   registering from its own address has its own key and is not locked out by guesses from elsewhere.
//! - `source_ip` (five times the limit): one host spraying many Auth IDs.
//! - `auth_id` alone (three times the limit): a distributed guess at one account. While it is blocked, the
//!   account's last successful source address is still let through, so the real device keeps working.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use switchboard_sip_core::digest::{
    Algorithm, Credentials, DigestError, FailureThrottle, NonceCounts, NonceFactory, NonceStatus,
    challenge_header_value, verify,
};

use crate::config::AuthConfig;
use crate::devices::CachedDevice;

/// What to do with a request after looking at its credentials.
#[derive(Debug)]
pub enum AuthOutcome {
    /// 401/407 with fresh challenges; `stale` when only the nonce was old (RFC 7616 §3.3).
    Challenge {
        stale: bool,
    },
    /// 403: the source or account is cooling down after too many failures.
    Throttled,
    /// 400: the credentials header is malformed.
    Malformed(&'static str),
    Authenticated(Arc<CachedDevice>),
    /// Correct credentials on a retransmission of a request already applied (its nonce count is already
    /// recorded): answer as before, apply nothing.
    Retransmission(Arc<CachedDevice>),
}

#[derive(Debug)]
pub struct Authenticator {
    realm: String,
    algorithms: Vec<Algorithm>,
    nonces: NonceFactory,
    counts: NonceCounts,
    per_account_source: FailureThrottle,
    per_source: FailureThrottle,
    per_account: FailureThrottle,
    /// Last source address each Auth ID authenticated from (bounded).
    last_good: HashMap<String, IpAddr>,
    dummy_key: [u8; 32],
    /// Counts nonces issued, so each is unique even within one millisecond.
    issued: u64,
    legacy: LegacySources,
}

/// Finds endpoints that cannot answer a challenge list holding algorithms other than MD5.
///
/// RFC 8760 has the server list its preferred algorithm first and the client use the first it supports, but some
/// widely deployed stacks fail outright when they meet an algorithm they do not know (SIPp 3.6 takes only the
/// first challenge; baresip 1.0's libre rejects the whole response if any challenge is not MD5). Such a client
/// never answers the challenge; it just tries again later without credentials. A source that does that right
/// after being offered SHA-256 is marked legacy for a day and offered MD5 alone. The mark is per source address
/// and port, never per account, so it reveals nothing about which Auth IDs exist. Someone who can forge a
/// device's source address can at most make it use MD5, which is what that device would use anyway if offered
/// MD5 first.
#[derive(Debug)]
struct LegacySources {
    enabled: bool,
    /// Sources offered a non-MD5 challenge that have not answered any challenge since, with when.
    pending: HashMap<SocketAddr, u64>,
    /// Sources to offer MD5 alone, until when.
    legacy: HashMap<SocketAddr, u64>,
}

/// How long a source stays marked legacy.
const LEGACY_FOR_MS: u64 = 24 * 3600 * 1000;
/// A retry without credentials this long after the challenge still counts as a failure to answer it.
const ANSWER_WINDOW_MS: u64 = 10 * 60 * 1000;

impl LegacySources {
    fn is_legacy(&self, source: SocketAddr, now: u64) -> bool {
        self.enabled && self.legacy.get(&source).is_some_and(|&until| until > now)
    }

    /// A request from `source` came without credentials for us.
    fn on_unanswered(&mut self, source: SocketAddr, now: u64) {
        if let Some(at) = self.pending.remove(&source)
            && now.saturating_sub(at) <= ANSWER_WINDOW_MS
        {
            if self.legacy.len() >= TRACKED {
                self.legacy.retain(|_, until| *until > now);
            }
            if self.legacy.len() < TRACKED {
                tracing::info!(%source, "source did not answer a SHA-256 challenge; offering it MD5 alone");
                self.legacy.insert(source, now + LEGACY_FOR_MS);
            }
        }
    }

    fn on_offered_non_md5(&mut self, source: SocketAddr, now: u64) {
        if !self.enabled {
            return;
        }
        if self.pending.len() >= TRACKED {
            self.pending.retain(|_, at| now.saturating_sub(*at) <= ANSWER_WINDOW_MS);
        }
        if self.pending.len() < TRACKED {
            self.pending.insert(source, now);
        }
    }

    fn on_answered(&mut self, source: SocketAddr) {
        self.pending.remove(&source);
    }
}

const TRACKED: usize = 100_000;

impl Authenticator {
    /// `keys` are two independent random secrets: one for nonce MACs, one for dummy HA1s.
    pub fn new(realm: &str, cfg: &AuthConfig, nonce_key: [u8; 32], dummy_key: [u8; 32]) -> Self {
        let lifetime = cfg.nonce_lifetime_secs * 1000;
        let window = cfg.failure_window_secs * 1000;
        let cooldown = cfg.cooldown_secs * 1000;
        let algorithms = cfg.algorithms.iter().filter_map(|a| a.parse().ok()).collect();
        Authenticator {
            realm: realm.to_owned(),
            algorithms,
            nonces: NonceFactory::new(nonce_key, lifetime),
            counts: NonceCounts::new(TRACKED * 4, lifetime),
            per_account_source: FailureThrottle::new(cfg.max_failures, window, cooldown, TRACKED),
            per_source: FailureThrottle::new(cfg.max_failures.saturating_mul(5), window, cooldown, TRACKED),
            per_account: FailureThrottle::new(cfg.max_failures.saturating_mul(3), window, cooldown, TRACKED),
            last_good: HashMap::new(),
            dummy_key,
            issued: 0,
            legacy: LegacySources { enabled: cfg.legacy_md5_fallback, pending: HashMap::new(), legacy: HashMap::new() },
        }
    }

    /// Nonces whose counts are remembered for replay protection.
    pub fn nonces_tracked(&self) -> usize {
        self.counts.len()
    }

    /// The WWW-Authenticate (or Proxy-Authenticate) values for a challenge to `source`, most preferred algorithm
    /// first (MD5 alone for a source found unable to handle more). `first` says the request carried no
    /// credentials: only a first challenge left unanswered shows a legacy client (a retry after failed
    /// credentials is a password or provisioning problem, not an algorithm problem).
    pub fn challenges(&mut self, stale: bool, first: bool, source: SocketAddr, now: u64) -> Vec<String> {
        self.issued = self.issued.wrapping_add(1);
        let nonce = self.nonces.issue(now, self.issued, &nonce_salt(&self.realm, source.ip()));
        let md5_only = self.legacy.is_legacy(source, now) && self.algorithms.contains(&Algorithm::Md5);
        let offered: Vec<Algorithm> =
            self.algorithms.iter().copied().filter(|&a| !md5_only || a == Algorithm::Md5).collect();
        if first && offered.iter().any(|&a| a != Algorithm::Md5) {
            self.legacy.on_offered_non_md5(source, now);
        }
        offered.into_iter().map(|alg| challenge_header_value(&self.realm, &nonce, alg, stale, None)).collect()
    }

    /// Checks the credentials among `values` (Authorization header values) for `method` from `source`.
    pub fn check<'a>(
        &mut self,
        values: impl Iterator<Item = &'a str>,
        method: &str,
        from: SocketAddr,
        lookup: impl Fn(&str) -> Option<Arc<CachedDevice>>,
        is_retransmission: impl Fn(&CachedDevice) -> bool,
        now: u64,
    ) -> AuthOutcome {
        let source = from.ip();
        if self.per_source.is_blocked(&source.to_string(), now) {
            return AuthOutcome::Throttled;
        }
        // Several Authorization headers may be present, one per realm (RFC 3261 §22.2): take ours.
        let mut creds = None;
        for v in values {
            match Credentials::parse(v) {
                Ok(c) if c.realm == self.realm => {
                    creds = Some(c);
                    break;
                }
                Ok(_) => {}
                // Credentials in a scheme we do not know are ignored, and the request is challenged (RFC 4475
                // §3.3.7, regaut01).
                Err(DigestError::NotDigest) => {}
                Err(_) => return AuthOutcome::Malformed("Malformed Authorization Header"),
            }
        }
        let Some(creds) = creds else {
            self.legacy.on_unanswered(from, now);
            return AuthOutcome::Challenge { stale: false };
        };
        self.legacy.on_answered(from);
        let account_source = format!("{}@{}", creds.username, source);
        if self.per_account_source.is_blocked(&account_source, now)
            || (self.per_account.is_blocked(&creds.username, now)
                && self.last_good.get(&creds.username) != Some(&source))
        {
            return AuthOutcome::Throttled;
        }
        // Nonces are bound to the address they were issued to: a guess sent from a forged source address carries
        // a nonce that was never issued there, is refused as invalid, and counts as nobody's failure, so nobody
        // can lock a device out without receiving traffic at its address.
        let issued_at = match self.nonces.check(&creds.nonce, now, &nonce_salt(&self.realm, source)) {
            NonceStatus::Invalid => return AuthOutcome::Challenge { stale: false },
            NonceStatus::Stale => None,
            NonceStatus::Valid { issued_at } => Some(issued_at),
        };
        if !self.algorithms.contains(&creds.algorithm) {
            return AuthOutcome::Challenge { stale: false };
        }
        let device = lookup(&creds.username);
        let ha1 = match &device {
            Some(d) if d.device.credentials.realm == self.realm => ha1_for(d, creds.algorithm).to_owned(),
            _ => self.dummy_ha1(&creds.username, creds.algorithm),
        };
        if !verify(&creds, method, &ha1) || device.is_none() {
            self.per_account_source.record_failure(&account_source, now);
            self.per_source.record_failure(&source.to_string(), now);
            self.per_account.record_failure(&creds.username, now);
            tracing::info!(auth_id = %creds.username, %source, "digest authentication failed");
            return AuthOutcome::Challenge { stale: false };
        }
        let Some(issued_at) = issued_at else {
            return AuthOutcome::Challenge { stale: true };
        };
        // A correct response with a reused nonce count is a replay (or a confused client): make it start over
        // with a fresh nonce, without counting a failure.
        // The exception is a retransmission of a request already applied (REGISTER is answered statelessly, see
        // the core): it carries the same count by nature, and is answered without being applied again.
        let nc = creds.qop.as_ref().map_or(0, |q| q.nc);
        if !self.counts.check_and_record(&creds.nonce, issued_at, nc, now) {
            return match device {
                Some(d) if is_retransmission(&d) => AuthOutcome::Retransmission(d),
                _ => AuthOutcome::Challenge { stale: true },
            };
        }
        self.per_account_source.record_success(&account_source);
        if self.last_good.len() >= TRACKED && !self.last_good.contains_key(&creds.username) {
            self.last_good.clear();
        }
        self.last_good.insert(creds.username.clone(), source);
        match device {
            Some(d) => AuthOutcome::Authenticated(d),
            None => AuthOutcome::Challenge { stale: false },
        }
    }

    /// An HA1 nobody knows the password for, stable per username, so unknown users cost the same as known ones.
    fn dummy_ha1(&self, username: &str, alg: Algorithm) -> String {
        let mut h = Sha256::new();
        h.update(self.dummy_key);
        h.update(username.as_bytes());
        let tag = h.finalize();
        let hex: String = tag.iter().chain(tag.iter()).map(|b| format!("{b:02x}")).collect();
        hex.chars().take(alg.hex_len()).collect()
    }
}

/// What a nonce is bound to: the realm and the client's IP address.
fn nonce_salt(realm: &str, ip: IpAddr) -> Vec<u8> {
    let mut salt = Vec::with_capacity(realm.len() + 17);
    salt.extend_from_slice(realm.as_bytes());
    salt.push(0);
    match ip {
        IpAddr::V4(v4) => salt.extend_from_slice(&v4.octets()),
        IpAddr::V6(v6) => salt.extend_from_slice(&v6.octets()),
    }
    salt
}

fn ha1_for(d: &CachedDevice, alg: Algorithm) -> &str {
    let c = &d.device.credentials;
    match alg {
        Algorithm::Md5 => &c.ha1_md5,
        Algorithm::Sha256 => &c.ha1_sha256,
        Algorithm::Sha512_256 => &c.ha1_sha512_256,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AuthConfig;

    fn auth() -> Authenticator {
        Authenticator::new("realm", &AuthConfig::default(), [1; 32], [2; 32])
    }

    fn algorithms(values: &[String]) -> Vec<&str> {
        values.iter().map(|v| if v.contains("SHA-256") { "SHA-256" } else { "MD5" }).collect()
    }

    const SRC: &str = "192.0.2.10:5060";

    #[test]
    fn a_source_that_never_answers_the_first_challenge_is_offered_md5_alone() {
        let mut a = auth();
        let src: SocketAddr = SRC.parse().unwrap();
        assert_eq!(algorithms(&a.challenges(false, true, src, 1_000)), ["SHA-256", "MD5"]);
        // It comes back without credentials: it could not use what it was offered.
        let out = a.check(std::iter::empty(), "REGISTER", src, |_| None, |_| false, 31_000);
        assert!(matches!(out, AuthOutcome::Challenge { stale: false }));
        assert_eq!(algorithms(&a.challenges(false, true, src, 31_000)), ["MD5"]);
        // Other sources are unaffected.
        let other: SocketAddr = "192.0.2.10:5062".parse().unwrap();
        assert_eq!(algorithms(&a.challenges(false, true, other, 31_000)), ["SHA-256", "MD5"]);
    }

    #[test]
    fn a_source_that_answers_and_fails_is_not_downgraded() {
        let mut a = auth();
        let src: SocketAddr = SRC.parse().unwrap();
        a.challenges(false, true, src, 1_000);
        // It answered (with wrong credentials), was challenged again, and starts over later.
        let creds = r#"Digest username="u", realm="realm", nonce="00", uri="sip:x", response="00", qop=auth, nc=00000001, cnonce="c""#;
        let out = a.check([creds].into_iter(), "REGISTER", src, |_| None, |_| false, 2_000);
        assert!(matches!(out, AuthOutcome::Challenge { .. }));
        a.challenges(false, false, src, 2_000);
        a.check(std::iter::empty(), "REGISTER", src, |_| None, |_| false, 30_000);
        assert_eq!(algorithms(&a.challenges(false, true, src, 30_000)), ["SHA-256", "MD5"]);
    }

    #[test]
    fn fallback_can_be_switched_off() {
        let cfg = AuthConfig { legacy_md5_fallback: false, ..AuthConfig::default() };
        let mut a = Authenticator::new("realm", &cfg, [1; 32], [2; 32]);
        let src: SocketAddr = SRC.parse().unwrap();
        a.challenges(false, true, src, 1_000);
        a.check(std::iter::empty(), "REGISTER", src, |_| None, |_| false, 31_000);
        assert_eq!(algorithms(&a.challenges(false, true, src, 31_000)), ["SHA-256", "MD5"]);
    }
}
