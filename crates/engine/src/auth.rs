//! Digest authentication of requests from devices (RFC 3261 §22, RFC 7616, RFC 8760), with replay protection,
//! brute-force throttling and no user enumeration.
//!
//! No enumeration: an unknown Auth ID is verified against a dummy HA1 derived from a secret, so it takes the same
//! path and gets the same 401 (same headers, fresh nonce) as a wrong password; both count as failures.
//!
//! Per-device digest choice (`device add|edit --digest md5`): a device set to `md5` is challenged with MD5 alone,
//! so an endpoint that fails on a list holding SHA-256 registers at once. Offering MD5 alone to a request naming
//! that Auth ID would tell a prober which Auth IDs exist (and which are weak), so it is done only where the
//! prober could not be: from the address the device last authenticated from, or from a network the operator set
//! on the device (`--md5-from`, the office's address, which also covers the very first registration). From
//! anywhere else the `md5` device gets the same list as every Auth ID, existing or not; if it cannot answer it,
//! the per-registration legacy detection below still brings it in, and from then on its address is known.
//!
//! Only wrong credentials count as failures: a stale nonce, a reused nonce count, a nonce from elsewhere or an
//! algorithm we do not offer is challenged again without counting, so no amount of load, retransmission or
//! reordering can turn a device's correct password into a lock-out.
//!
//! Throttling keeps three counters:
//! - `auth_id@source_ip` (the configured limit): guessing one account from one place. The real device
//!   registering from its own address has its own key and is not locked out by guesses from elsewhere.
//! - `source_ip` (five times the limit), counting *distinct* Auth IDs that failed from the address: one host
//!   spraying many Auth IDs. An office puts many phones behind one NAT address, so a few misconfigured phones
//!   retrying their wrong passwords count once each, not once per attempt. While the address is blocked, an
//!   Auth ID that last authenticated from it is still let through: the office's working phones keep working.
//! - `auth_id` alone (three times the limit): a distributed guess at one account. While it is blocked, the
//!   account's last successful source address is still let through, so the real device keeps working.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use switchboard_sip_core::digest::{
    Algorithm, Credentials, DigestError, FailureThrottle, NonceCounts, NonceFactory, NonceStatus, NonceUse,
    challenge_header_value, verify,
};

use switchboard_model::{DigestMode, IpNet};

/// What the authenticator needs to know of an account (a device): its Auth ID, its HA1 per algorithm and its
/// digest setting. The daemon's device directory implements it; tests use plain records.
pub trait Account {
    fn auth_id(&self) -> &str;
    /// The realm the HA1 values were made for.
    fn realm(&self) -> &str;
    /// `H(auth_id ":" realm ":" password)` in hex for `alg`.
    fn ha1(&self, alg: Algorithm) -> &str;
    fn digest(&self) -> DigestMode;
    /// Networks from which an `md5` account is offered MD5 alone.
    fn md5_from(&self) -> &[IpNet];
}

/// The authenticator's settings (the daemon's `[auth]`, in milliseconds and parsed algorithms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    pub nonce_lifetime_ms: u64,
    /// Offered in this order.
    pub algorithms: Vec<Algorithm>,
    pub max_failures: u32,
    pub failure_window_ms: u64,
    pub cooldown_ms: u64,
    pub legacy_md5_fallback: bool,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            nonce_lifetime_ms: 300_000,
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            max_failures: 10,
            failure_window_ms: 60_000,
            cooldown_ms: 300_000,
            legacy_md5_fallback: true,
        }
    }
}

/// What to do with a request after looking at its credentials.
#[derive(Debug)]
pub enum AuthOutcome<D> {
    /// 401/407 with fresh challenges; `stale` when only the nonce was old (RFC 7616 §3.3).
    Challenge { stale: bool, why: Why },
    /// 403: the source or account is cooling down after too many failures.
    Throttled,
    /// 400: the credentials header is malformed.
    Malformed(&'static str),
    /// Correct credentials, with the algorithm they used.
    Authenticated(Arc<D>, Algorithm),
    /// Correct credentials on a retransmission of a request already applied (its nonce count is already
    /// recorded): answer as before, apply nothing.
    Retransmission(Arc<D>),
}

/// Why a request was challenged again: only [`Why::WrongCredentials`] counts toward the brute-force throttle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// No credentials for our realm (the first leg of every exchange).
    NoCredentials,
    /// A nonce we did not issue to this address (forged, garbled, another node's key, another source).
    UnknownNonce,
    /// An algorithm we do not offer.
    Algorithm,
    /// A wrong password, or an Auth ID that does not exist (indistinguishable to the client).
    WrongCredentials,
    /// Correct credentials on an expired nonce.
    Stale,
    /// Correct credentials with a nonce count already used: a replay, or a retransmission of a request that
    /// was not applied.
    Replay,
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
    /// Keys the Call-ID hashes of the legacy detection.
    call_hasher: std::collections::hash_map::RandomState,
}

/// The request being authenticated: its method, where it came from and its dialog identity.
#[derive(Debug, Clone, Copy)]
pub struct Asking<'a> {
    pub method: &'a str,
    pub source: SocketAddr,
    pub call_id: &'a str,
    /// A hash of the request's transaction identity, to tell its retransmissions from replays (0: none).
    pub request: u64,
}

/// Finds endpoints that cannot answer a challenge list holding algorithms other than MD5.
///
/// The evidence is one registration (same source and Call-ID, RFC 3261 §10.2.4 has a UA keep its Call-ID)
/// coming back without credentials after a challenge that offered more than MD5. Other requests from the same
/// address, such as the other lines of a PBX or a load generator's parallel registrations, are no evidence, and
/// retransmissions never get this far (they are answered from the memory of stateless answers).
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
    /// Registrations (source, hash of Call-ID) offered a non-MD5 challenge and not answered since, with when.
    pending: HashMap<(SocketAddr, u64), u64>,
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
    fn on_unanswered(&mut self, source: SocketAddr, call: u64, now: u64) {
        if let Some(at) = self.pending.remove(&(source, call))
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

    fn on_offered_non_md5(&mut self, source: SocketAddr, call: u64, now: u64) {
        if !self.enabled {
            return;
        }
        if self.pending.len() >= TRACKED {
            self.pending.retain(|_, at| now.saturating_sub(*at) <= ANSWER_WINDOW_MS);
        }
        if self.pending.len() < TRACKED {
            self.pending.insert((source, call), now);
        }
    }

    fn on_answered(&mut self, source: SocketAddr, call: u64) {
        self.pending.remove(&(source, call));
    }
}

const TRACKED: usize = 100_000;

impl Authenticator {
    /// `keys` are two independent random secrets: one for nonce MACs, one for dummy HA1s.
    pub fn new(realm: &str, cfg: &AuthSettings, nonce_key: [u8; 32], dummy_key: [u8; 32]) -> Self {
        let lifetime = cfg.nonce_lifetime_ms;
        let window = cfg.failure_window_ms;
        let cooldown = cfg.cooldown_ms;
        Authenticator {
            realm: realm.to_owned(),
            algorithms: cfg.algorithms.clone(),
            nonces: NonceFactory::new(nonce_key, lifetime),
            counts: NonceCounts::new(TRACKED * 4, lifetime),
            per_account_source: FailureThrottle::new(cfg.max_failures, window, cooldown, TRACKED),
            per_source: FailureThrottle::new(cfg.max_failures.saturating_mul(5), window, cooldown, TRACKED),
            per_account: FailureThrottle::new(cfg.max_failures.saturating_mul(3), window, cooldown, TRACKED),
            last_good: HashMap::new(),
            dummy_key,
            issued: 0,
            legacy: LegacySources { enabled: cfg.legacy_md5_fallback, pending: HashMap::new(), legacy: HashMap::new() },
            call_hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    /// Nonces whose counts are remembered for replay protection.
    pub fn nonces_tracked(&self) -> usize {
        self.counts.len()
    }

    /// Remembers where a device last authenticated from (at start, from the store), so a restart does not
    /// forget which addresses have proven themselves.
    pub fn seed_last_good(&mut self, auth_id: &str, source: IpAddr) {
        if self.last_good.len() < TRACKED {
            self.last_good.insert(auth_id.to_owned(), source);
        }
    }

    /// Whether a request naming `device` from `source` may be offered MD5 alone (see the module docs).
    fn md5_alone_for<D: Account>(&self, device: Option<&D>, source: IpAddr) -> bool {
        let Some(d) = device.filter(|d| d.digest() == DigestMode::Md5) else { return false };
        self.last_good.get(d.auth_id()) == Some(&source) || d.md5_from().iter().any(|n| n.contains(source))
    }

    /// The WWW-Authenticate (or Proxy-Authenticate) values for a challenge to `source`, most preferred algorithm
    /// first (MD5 alone for a registration found unable to handle more, or for an `md5` device named by the
    /// request (`named`) at an address where that reveals nothing). `first` says the request carried no
    /// credentials: only a first challenge left unanswered shows a legacy client (a retry after failed
    /// credentials is a password or provisioning problem, not an algorithm problem).
    pub fn challenges<D: Account>(
        &mut self,
        stale: bool,
        first: bool,
        req: Asking<'_>,
        named: Option<&D>,
        now: u64,
    ) -> Vec<String> {
        let source = req.source;
        self.issued = self.issued.wrapping_add(1);
        let nonce = self.nonces.issue(now, self.issued, &nonce_salt(&self.realm, source.ip()));
        let md5_only = (self.legacy.is_legacy(source, now) || self.md5_alone_for(named, source.ip()))
            && self.algorithms.contains(&Algorithm::Md5);
        let offered: Vec<Algorithm> =
            self.algorithms.iter().copied().filter(|&a| !md5_only || a == Algorithm::Md5).collect();
        if first && offered.iter().any(|&a| a != Algorithm::Md5) {
            let call = self.call_hasher.hash_one(req.call_id);
            self.legacy.on_offered_non_md5(source, call, now);
        }
        offered.into_iter().map(|alg| challenge_header_value(&self.realm, &nonce, alg, stale, None)).collect()
    }

    /// Checks the credentials among `values` (Authorization header values) for `req`.
    pub fn check<'a, D: Account>(
        &mut self,
        values: impl Iterator<Item = &'a str>,
        req: Asking<'_>,
        lookup: impl Fn(&str) -> Option<Arc<D>>,
        is_retransmission: impl Fn(&D) -> bool,
        now: u64,
    ) -> AuthOutcome<D> {
        let (method, from) = (req.method, req.source);
        let source = from.ip();
        let source_key = source.to_string();
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
        let call = self.call_hasher.hash_one(req.call_id);
        let Some(creds) = creds else {
            // A blocked address is still challenged: the devices that proved themselves there need a nonce to
            // prove themselves again.
            self.legacy.on_unanswered(from, call, now);
            return AuthOutcome::Challenge { stale: false, why: Why::NoCredentials };
        };
        self.legacy.on_answered(from, call);
        let account_source = format!("{}@{}", creds.username, source);
        let proven_here = self.last_good.get(&creds.username) == Some(&source);
        if self.per_account_source.is_blocked(&account_source, now)
            || (self.per_source.is_blocked(&source_key, now) && !proven_here)
            || (self.per_account.is_blocked(&creds.username, now) && !proven_here)
        {
            return AuthOutcome::Throttled;
        }
        // Nonces are bound to the address they were issued to: a guess sent from a forged source address carries
        // a nonce that was never issued there, is refused as invalid, and counts as nobody's failure, so nobody
        // can lock a device out without receiving traffic at its address.
        let issued_at = match self.nonces.check(&creds.nonce, now, &nonce_salt(&self.realm, source)) {
            NonceStatus::Invalid => return AuthOutcome::Challenge { stale: false, why: Why::UnknownNonce },
            NonceStatus::Stale => None,
            NonceStatus::Valid { issued_at } => Some(issued_at),
        };
        if !self.algorithms.contains(&creds.algorithm) {
            return AuthOutcome::Challenge { stale: false, why: Why::Algorithm };
        }
        let device = lookup(&creds.username);
        let ha1 = match &device {
            Some(d) if d.realm() == self.realm => d.ha1(creds.algorithm).to_owned(),
            _ => self.dummy_ha1(&creds.username, creds.algorithm),
        };
        if !verify(&creds, method, &ha1) || device.is_none() {
            // The address counts each account once per window, however often that account retries.
            if self.per_account_source.record_failure(&account_source, now) == 1 {
                self.per_source.record_failure(&source_key, now);
            }
            self.per_account.record_failure(&creds.username, now);
            tracing::info!(auth_id = %creds.username, %source, "digest authentication failed");
            return AuthOutcome::Challenge { stale: false, why: Why::WrongCredentials };
        }
        let Some(issued_at) = issued_at else {
            return AuthOutcome::Challenge { stale: true, why: Why::Stale };
        };
        // A correct response with a reused nonce count is a replay (or a confused client): make it start over
        // with a fresh nonce, without counting a failure.
        // The exception is a retransmission of a request already applied (REGISTER is answered statelessly, see
        // the core): it carries the same count by nature, and is answered without being applied again.
        let nc = creds.qop.as_ref().map_or(0, |q| q.nc);
        match self.counts.use_count(&creds.nonce, issued_at, nc, req.request, now) {
            NonceUse::Fresh => {}
            NonceUse::Retransmission => {
                if let Some(d) = device {
                    return AuthOutcome::Retransmission(d);
                }
            }
            NonceUse::Replay => {
                return match device {
                    Some(d) if is_retransmission(&d) => AuthOutcome::Retransmission(d),
                    _ => AuthOutcome::Challenge { stale: true, why: Why::Replay },
                };
            }
        }
        self.per_account_source.record_success(&account_source);
        if self.last_good.len() >= TRACKED && !self.last_good.contains_key(&creds.username) {
            self.last_good.clear();
        }
        self.last_good.insert(creds.username.clone(), source);
        match device {
            Some(d) => AuthOutcome::Authenticated(d, creds.algorithm),
            None => AuthOutcome::Challenge { stale: false, why: Why::WrongCredentials },
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

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sip_core::digest::{Challenge, ClientAuth, ClientSecret, client_response, ha1};

    /// An account as a test writes it.
    #[derive(Debug, Clone)]
    struct Phone {
        auth_id: String,
        ha1: [String; 3],
        digest: DigestMode,
        md5_from: Vec<IpNet>,
    }

    impl Account for Phone {
        fn auth_id(&self) -> &str {
            &self.auth_id
        }
        fn realm(&self) -> &str {
            "realm"
        }
        fn ha1(&self, alg: Algorithm) -> &str {
            match alg {
                Algorithm::Md5 => &self.ha1[0],
                Algorithm::Sha256 => &self.ha1[1],
                Algorithm::Sha512_256 => &self.ha1[2],
            }
        }
        fn digest(&self) -> DigestMode {
            self.digest
        }
        fn md5_from(&self) -> &[IpNet] {
            &self.md5_from
        }
    }

    fn auth() -> Authenticator {
        Authenticator::new("realm", &AuthSettings::default(), [1; 32], [2; 32])
    }

    fn algorithms(values: &[String]) -> Vec<&str> {
        values.iter().map(|v| if v.contains("SHA-256") { "SHA-256" } else { "MD5" }).collect()
    }

    const SRC: &str = "192.0.2.10:5060";

    fn ask(source: &str, call_id: &'static str) -> Asking<'static> {
        Asking { method: "REGISTER", source: source.parse().unwrap(), call_id, request: 0 }
    }

    fn device(_id: i64, auth_id: &str, password: &str) -> Arc<Phone> {
        let h = |alg| ha1(alg, auth_id, "realm", password);
        Arc::new(Phone {
            auth_id: auth_id.into(),
            ha1: [h(Algorithm::Md5), h(Algorithm::Sha256), h(Algorithm::Sha512_256)],
            digest: DigestMode::Modern,
            md5_from: Vec::new(),
        })
    }

    /// The Authorization a phone sends for the MD5 challenge among `challenges`.
    fn answer_md5(challenges: &[String], auth_id: &str, password: &str) -> String {
        let ch = Challenge::parse(challenges.iter().find(|c| c.contains("MD5")).unwrap()).unwrap();
        let auth = ClientAuth {
            username: auth_id,
            secret: ClientSecret::Password(password),
            method: "REGISTER",
            uri: "sip:realm",
            cnonce: b"0123456789abcdef",
            nc: 1,
        };
        client_response(&ch, &auth).unwrap()
    }

    /// One REGISTER exchange: challenge, then credentials with `password`, as a phone at `source` would.
    fn attempt(
        a: &mut Authenticator,
        devices: &[Arc<Phone>],
        source: &str,
        auth_id: &str,
        password: &str,
        now: u64,
    ) -> AuthOutcome<Phone> {
        let req = ask(source, "call-1");
        let header = answer_md5(&a.challenges(false, true, req, None::<&Phone>, now), auth_id, password);
        let lookup = |id: &str| devices.iter().find(|d| d.auth_id == id).cloned();
        a.check([header.as_str()].into_iter(), req, lookup, |_| false, now)
    }

    #[test]
    fn a_registration_that_never_answers_the_first_challenge_is_offered_md5_alone() {
        let mut a = auth();
        assert_eq!(algorithms(&a.challenges(false, true, ask(SRC, "c1"), None::<&Phone>, 1_000)), ["SHA-256", "MD5"]);
        // It comes back without credentials: it could not use what it was offered.
        let out = a.check(std::iter::empty(), ask(SRC, "c1"), |_| None::<Arc<Phone>>, |_| false, 31_000);
        assert!(matches!(out, AuthOutcome::Challenge { stale: false, why: Why::NoCredentials }));
        assert_eq!(algorithms(&a.challenges(false, true, ask(SRC, "c1"), None::<&Phone>, 31_000)), ["MD5"]);
        // Other sources are unaffected.
        assert_eq!(
            algorithms(&a.challenges(false, true, ask("192.0.2.10:5062", "c9"), None::<&Phone>, 31_000)),
            ["SHA-256", "MD5"]
        );
    }

    /// A PBX registering several lines from one port (or a load generator) sends other registrations without
    /// credentials while the first is being challenged: that is no sign it cannot use SHA-256.
    #[test]
    fn parallel_registrations_from_one_address_are_not_taken_for_a_legacy_client() {
        let mut a = auth();
        a.challenges(false, true, ask(SRC, "line-1"), None::<&Phone>, 1_000);
        let out = a.check(std::iter::empty(), ask(SRC, "line-2"), |_| None::<Arc<Phone>>, |_| false, 1_001);
        assert!(matches!(out, AuthOutcome::Challenge { .. }));
        assert_eq!(
            algorithms(&a.challenges(false, true, ask(SRC, "line-2"), None::<&Phone>, 1_001)),
            ["SHA-256", "MD5"]
        );
    }

    #[test]
    fn a_source_that_answers_and_fails_is_not_downgraded() {
        let mut a = auth();
        a.challenges(false, true, ask(SRC, "c1"), None::<&Phone>, 1_000);
        // It answered (with wrong credentials), was challenged again, and starts over later.
        let creds = r#"Digest username="u", realm="realm", nonce="00", uri="sip:x", response="00", qop=auth, nc=00000001, cnonce="c""#;
        let out = a.check([creds].into_iter(), ask(SRC, "c1"), |_| None::<Arc<Phone>>, |_| false, 2_000);
        assert!(matches!(out, AuthOutcome::Challenge { .. }));
        a.challenges(false, false, ask(SRC, "c1"), None::<&Phone>, 2_000);
        a.check(std::iter::empty(), ask(SRC, "c1"), |_| None::<Arc<Phone>>, |_| false, 30_000);
        assert_eq!(algorithms(&a.challenges(false, true, ask(SRC, "c1"), None::<&Phone>, 30_000)), ["SHA-256", "MD5"]);
    }

    #[test]
    fn fallback_can_be_switched_off() {
        let cfg = AuthSettings { legacy_md5_fallback: false, ..AuthSettings::default() };
        let mut a = Authenticator::new("realm", &cfg, [1; 32], [2; 32]);
        a.challenges(false, true, ask(SRC, "c1"), None::<&Phone>, 1_000);
        a.check(std::iter::empty(), ask(SRC, "c1"), |_| None::<Arc<Phone>>, |_| false, 31_000);
        assert_eq!(algorithms(&a.challenges(false, true, ask(SRC, "c1"), None::<&Phone>, 31_000)), ["SHA-256", "MD5"]);
    }

    /// An office behind one NAT address: 5 phones with wrong passwords retry again and again, 20 phones have the
    /// right one. The bad phones are refused; the good ones keep registering.
    #[test]
    fn misconfigured_phones_behind_one_address_do_not_lock_out_the_others() {
        let mut a = auth();
        let good: Vec<_> = (0..20).map(|i| device(i, &format!("good{i}"), "right")).collect();
        let bad: Vec<_> = (20..25).map(|i| device(i, &format!("bad{i}"), "right")).collect();
        let all: Vec<_> = good.iter().chain(&bad).cloned().collect();
        let mut now = 1_000;
        for round in 0..40u16 {
            for (i, d) in good.iter().enumerate() {
                now += 10;
                let out = attempt(&mut a, &all, &format!("203.0.113.7:{}", 5060 + i), &d.auth_id, "right", now);
                assert!(matches!(out, AuthOutcome::Authenticated(..)), "round {round}, {}: {out:?}", d.auth_id);
            }
            for (i, d) in bad.iter().enumerate() {
                now += 10;
                let src = format!("203.0.113.7:{}", 6060 + i);
                let out = attempt(&mut a, &all, &src, &d.auth_id, "wrong", now);
                assert!(!matches!(out, AuthOutcome::Authenticated(..)));
            }
        }
        // The bad phones themselves end up refused.
        let out = attempt(&mut a, &all, "203.0.113.7:6060", "bad20", "wrong", now + 1);
        assert!(matches!(out, AuthOutcome::Throttled), "{out:?}");
    }

    /// A host spraying many Auth IDs gets its address blocked; an account that proved itself from that address
    /// before keeps working, and anyone else there is refused.
    #[test]
    fn a_spraying_address_is_blocked_except_for_accounts_proven_there() {
        let mut a = auth();
        let phone = device(1, "phone", "right");
        let devices = vec![phone.clone()];
        let src = "198.51.100.5:5060";
        assert!(matches!(attempt(&mut a, &devices, src, "phone", "right", 1_000), AuthOutcome::Authenticated(..)));
        // 50 distinct unknown Auth IDs (five times max_failures) from the same address.
        for i in 0..50 {
            let out = attempt(&mut a, &devices, "198.51.100.5:40000", &format!("guess{i}"), "x", 2_000 + i);
            assert!(matches!(out, AuthOutcome::Challenge { why: Why::WrongCredentials, .. }), "{i}: {out:?}");
        }
        let out = attempt(&mut a, &devices, "198.51.100.5:40000", "guess-more", "x", 3_000);
        assert!(matches!(out, AuthOutcome::Throttled), "{out:?}");
        assert!(matches!(attempt(&mut a, &devices, src, "phone", "right", 3_001), AuthOutcome::Authenticated(..)));
        // Without credentials the address is still challenged, so the phone can answer.
        let out = a.check(std::iter::empty(), ask(src, "c2"), |_| None::<Arc<Phone>>, |_| false, 3_002);
        assert!(matches!(out, AuthOutcome::Challenge { why: Why::NoCredentials, .. }));
    }

    /// Correct credentials whose nonce count was already used are challenged again (stale), never counted as a
    /// failure: a flood of them cannot lock the device out.
    #[test]
    fn replayed_correct_credentials_never_count_as_failures() {
        let mut a = auth();
        let phone = device(1, "phone", "right");
        let devices = vec![phone];
        let req = ask(SRC, "c1");
        let header = answer_md5(&a.challenges(false, true, req, None::<&Phone>, 1_000), "phone", "right");
        let lookup = |id: &str| devices.iter().find(|d| d.auth_id == id).cloned();
        assert!(matches!(
            a.check([header.as_str()].into_iter(), req, lookup, |_| false, 1_001),
            AuthOutcome::Authenticated(..)
        ));
        for i in 0..1_000 {
            let out = a.check([header.as_str()].into_iter(), req, lookup, |_| false, 1_002 + i);
            assert!(matches!(out, AuthOutcome::Challenge { stale: true, why: Why::Replay }), "{out:?}");
        }
        assert!(matches!(attempt(&mut a, &devices, SRC, "phone", "right", 5_000), AuthOutcome::Authenticated(..)));
    }

    fn md5_device(id: i64, auth_id: &str, from: &[&str]) -> Arc<Phone> {
        let mut d = (*device(id, auth_id, "right")).clone();
        d.digest = DigestMode::Md5;
        d.md5_from = from.iter().map(|n| n.parse().unwrap()).collect();
        Arc::new(d)
    }

    /// What a prober sees must not depend on whether the Auth ID exists or is set to MD5; the device itself, at
    /// its known address or network, gets MD5 alone.
    #[test]
    fn md5_alone_only_where_it_reveals_nothing() {
        let mut a = auth();
        let ata = md5_device(1, "ata", &["203.0.113.0/24"]);
        let phone = device(2, "phone", "right");
        let offered = |a: &mut Authenticator, src: &str, named: Option<&Phone>| {
            algorithms(&a.challenges(false, true, ask(src, "c"), named, 1_000)).join(",")
        };
        // A stranger naming the ATA, a modern device, or nobody: the same list.
        assert_eq!(offered(&mut a, "192.0.2.1:5060", Some(&ata)), "SHA-256,MD5");
        assert_eq!(offered(&mut a, "192.0.2.1:5060", Some(&phone)), "SHA-256,MD5");
        assert_eq!(offered(&mut a, "192.0.2.1:5060", None), "SHA-256,MD5");
        // From the office network set on the device: MD5 alone, even before it ever registered.
        assert_eq!(offered(&mut a, "203.0.113.9:5060", Some(&ata)), "MD5");
        assert_eq!(offered(&mut a, "203.0.113.9:5060", Some(&phone)), "SHA-256,MD5");
        // An md5 device without a network: MD5 alone from where it last authenticated, once it has.
        let home = md5_device(3, "home", &[]);
        assert_eq!(offered(&mut a, "198.51.100.4:5060", Some(&home)), "SHA-256,MD5");
        let devices = vec![home.clone()];
        let out = attempt(&mut a, &devices, "198.51.100.4:5060", "home", "right", 2_000);
        assert!(matches!(out, AuthOutcome::Authenticated(_, Algorithm::Md5)), "{out:?}");
        assert_eq!(offered(&mut a, "198.51.100.4:5062", Some(&home)), "MD5");
        assert_eq!(offered(&mut a, "198.51.100.5:5060", Some(&home)), "SHA-256,MD5", "another address");
        // The same after a restart, from what the store remembered.
        let mut restarted = auth();
        restarted.seed_last_good("home", "198.51.100.4".parse().unwrap());
        assert_eq!(offered(&mut restarted, "198.51.100.4:5060", Some(&home)), "MD5");
    }

    #[test]
    fn md5_alone_needs_md5_in_the_configured_list() {
        let cfg = AuthSettings { algorithms: vec![Algorithm::Sha256], ..AuthSettings::default() };
        let mut a = Authenticator::new("realm", &cfg, [1; 32], [2; 32]);
        let ata = md5_device(1, "ata", &["203.0.113.0/24"]);
        let list = a.challenges(false, true, ask("203.0.113.9:5060", "c"), Some(&*ata), 1_000);
        assert_eq!(algorithms(&list), ["SHA-256"]);
    }
}
