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
use std::net::IpAddr;
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
        }
    }

    /// The WWW-Authenticate (or Proxy-Authenticate) values for a challenge, most preferred algorithm first.
    pub fn challenges(&mut self, stale: bool, now: u64) -> Vec<String> {
        self.issued = self.issued.wrapping_add(1);
        let nonce = self.nonces.issue(now, self.issued, self.realm.as_bytes());
        self.algorithms.iter().map(|&alg| challenge_header_value(&self.realm, &nonce, alg, stale, None)).collect()
    }

    /// Checks the credentials among `values` (Authorization header values) for `method` from `source`.
    pub fn check<'a>(
        &mut self,
        values: impl Iterator<Item = &'a str>,
        method: &str,
        source: IpAddr,
        lookup: impl Fn(&str) -> Option<Arc<CachedDevice>>,
        now: u64,
    ) -> AuthOutcome {
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
            return AuthOutcome::Challenge { stale: false };
        };
        let account_source = format!("{}@{}", creds.username, source);
        if self.per_account_source.is_blocked(&account_source, now)
            || (self.per_account.is_blocked(&creds.username, now)
                && self.last_good.get(&creds.username) != Some(&source))
        {
            return AuthOutcome::Throttled;
        }
        let issued_at = match self.nonces.check(&creds.nonce, now, self.realm.as_bytes()) {
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
        let nc = creds.qop.as_ref().map_or(0, |q| q.nc);
        if !self.counts.check_and_record(&creds.nonce, issued_at, nc, now) {
            return AuthOutcome::Challenge { stale: true };
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

fn ha1_for(d: &CachedDevice, alg: Algorithm) -> &str {
    let c = &d.device.credentials;
    match alg {
        Algorithm::Md5 => &c.ha1_md5,
        Algorithm::Sha256 => &c.ha1_sha256,
        Algorithm::Sha512_256 => &c.ha1_sha512_256,
    }
}
