//! Replay protection through nonce counts (RFC 7616 §3.4 `nc`, §5.5).
//!
//! A client reusing a nonce must increase `nc` with each request, and the response hash covers `nc`, so a captured
//! request can only be replayed with its original `nc`. Remembering which counts were used per nonce therefore
//! defeats replay for as long as the nonce is valid; after that [`super::NonceFactory::check`] says `Stale`.
//!
//! Requests over UDP can arrive out of order (a client sends nc=2 and nc=3 on two transactions and the network
//! swaps them), and a correct request must not be refused for that. So, as IPsec's anti-replay window does
//! (RFC 4303 §3.4.3), each nonce keeps the highest count seen and a bitmap of the [`WINDOW`] counts below it: a
//! count is accepted once, in any order, as long as it is not more than [`WINDOW`] below the highest.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;

/// How far below the highest count seen a late count is still accepted (once).
pub const WINDOW: u32 = 64;

/// What [`NonceCounts::check_and_record`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceUse {
    /// A count never used with this nonce: accepted and recorded.
    Fresh,
    /// The count was used before by this very request (the same request identity): a retransmission, to be
    /// answered as the original was and not applied again.
    Retransmission,
    /// The count was used before by another request, or lies outside the window: a replay.
    Replay,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    highest_nc: u32,
    /// The identity of the request that used `highest_nc` (0: not given).
    by: u64,
    /// Bit `i` set: count `highest_nc - 1 - i` was used.
    below: u64,
    expires_at: u64,
}

impl Seen {
    /// Records `nc` if it was not used before and is inside the window; false for a replay.
    fn accept(&mut self, nc: u32) -> bool {
        if nc > self.highest_nc {
            let shift = nc - self.highest_nc;
            // The old highest becomes bit shift-1; everything moves down by `shift`.
            let moved = self.below.checked_shl(shift).unwrap_or(0);
            self.below = if shift > WINDOW { 0 } else { moved | (1u64 << (shift - 1)) };
            self.highest_nc = nc;
            return true;
        }
        let back = self.highest_nc - nc;
        if back == 0 || back > WINDOW {
            return false;
        }
        let bit = 1u64 << (back - 1);
        if self.below & bit != 0 {
            return false;
        }
        self.below |= bit;
        true
    }
}

/// Remembers, for each nonce in use, which nonce counts were accepted.
///
/// Entries are keyed by a 64-bit keyed hash of the nonce (a process-random SipHash key, so collisions cannot be
/// aimed at), which keeps an entry at a few dozen bytes: at 15,000 registrations a second the table holds hundreds
/// of thousands of nonces. When the table is full the oldest entry is evicted, and from then on any nonce issued
/// no later than an evicted one is refused unless it is still in the table: eviction fails closed (the client
/// re-authenticates with a fresh nonce) instead of letting an evicted nonce be replayed.
#[derive(Debug, Clone)]
pub struct NonceCounts {
    capacity: usize,
    lifetime_ms: u64,
    hasher: RandomState,
    entries: HashMap<u64, Seen>,
    /// First-use order: (key, expires_at, issued_at); each key in `entries` appears here exactly once.
    order: VecDeque<(u64, u64, u64)>,
    /// The latest issue time among nonces evicted for capacity.
    evicted_up_to: Option<u64>,
}

impl NonceCounts {
    /// `capacity` is the maximum number of nonces remembered (at least 1); `lifetime_ms` should equal the
    /// [`super::NonceFactory`] lifetime.
    pub fn new(capacity: usize, lifetime_ms: u64) -> Self {
        let capacity = capacity.max(1);
        NonceCounts {
            capacity,
            lifetime_ms,
            hasher: RandomState::new(),
            entries: HashMap::with_capacity(capacity.min(4096)),
            order: VecDeque::with_capacity(capacity.min(4096)),
            evicted_up_to: None,
        }
    }

    /// Accepts `nc` for `nonce` (issued at `issued_at`, as [`super::NonceFactory::check`] reported) only if that
    /// count was never accepted for that nonce and is no more than [`WINDOW`] below the highest accepted, and
    /// records it. A repeat is a replay (or a request so late the client must re-authenticate). `nc == 0` is
    /// never valid (counts start at 1).
    ///
    /// Retransmissions must be recognised before this is asked (the server's transaction layer, or its memory of
    /// stateless answers), so a repeated `nc` arriving here really is a new request reusing an old count.
    pub fn check_and_record(&mut self, nonce: &str, issued_at: u64, nc: u32, now_ms: u64) -> bool {
        self.use_count(nonce, issued_at, nc, 0, now_ms) == NonceUse::Fresh
    }

    /// Like [`Self::check_and_record`], and also tells a retransmission from a replay: `request` identifies the
    /// request (a hash of its transaction identity: Call-ID, CSeq, Via branch, source; never 0). When the count
    /// was last used by the same request, the answer is [`NonceUse::Retransmission`]. This does not depend on
    /// anything else having remembered the request, so a retransmission arriving late, after the device has
    /// registered again elsewhere, is still recognised.
    pub fn use_count(&mut self, nonce: &str, issued_at: u64, nc: u32, request: u64, now_ms: u64) -> NonceUse {
        self.purge_expired(now_ms);
        let key = self.hasher.hash_one(nonce);
        if let Some(seen) = self.entries.get_mut(&key) {
            // An entry that outlived its lifetime without being purged (time going backwards, or purge order
            // disturbed) belongs to a nonce that is stale anyway: refuse rather than restart the count.
            if now_ms >= seen.expires_at {
                return NonceUse::Replay;
            }
            if request != 0 && nc == seen.highest_nc && seen.by == request {
                return NonceUse::Retransmission;
            }
            if seen.accept(nc) {
                if nc == seen.highest_nc {
                    seen.by = request;
                }
                return NonceUse::Fresh;
            }
            return NonceUse::Replay;
        }
        if nc == 0 || self.evicted_up_to.is_some_and(|t| issued_at <= t) {
            return NonceUse::Replay;
        }
        while self.entries.len() >= self.capacity {
            let Some((oldest, _, oldest_issued)) = self.order.pop_front() else {
                break;
            };
            self.entries.remove(&oldest);
            self.evicted_up_to = Some(self.evicted_up_to.map_or(oldest_issued, |t| t.max(oldest_issued)));
        }
        let expires_at = now_ms.saturating_add(self.lifetime_ms);
        self.entries.insert(key, Seen { highest_nc: nc, by: request, below: 0, expires_at });
        self.order.push_back((key, expires_at, issued_at));
        NonceUse::Fresh
    }

    /// Number of nonces currently remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops expired entries from the front of the first-use queue. Expiry times follow first use, so with a
    /// monotonic clock the queue is sorted and this stops at the first live entry: amortised O(1) per call.
    fn purge_expired(&mut self, now_ms: u64) {
        while let Some(&(key, expires_at, _)) = self.order.front() {
            if expires_at > now_ms {
                break;
            }
            self.entries.remove(&key);
            self.order.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIFE: u64 = 60_000;

    #[test]
    fn each_count_once() {
        let mut c = NonceCounts::new(10, LIFE);
        assert!(c.check_and_record("n1", 0, 1, 0));
        assert!(!c.check_and_record("n1", 1, 1, 1), "repeat");
        assert!(c.check_and_record("n1", 2, 2, 2));
        assert!(c.check_and_record("n1", 3, 5, 3), "gaps are fine");
        assert!(c.check_and_record("n1", 4, 4, 4), "a late count, first time");
        assert!(!c.check_and_record("n1", 4, 4, 4), "the late count again");
        assert!(!c.check_and_record("n1", 5, 5, 5), "repeat of highest");
        assert!(c.check_and_record("n1", 6, 3, 6), "the last gap filled");
        assert!(!c.check_and_record("n1", 6, 3, 6));
        assert!(c.check_and_record("n1", 6, u32::MAX, 6));
        assert!(!c.check_and_record("n1", 7, u32::MAX, 7));
        assert!(!c.check_and_record("n1", 7, 7, 7), "far below the highest: outside the window");
        // Other nonces are independent.
        assert!(c.check_and_record("n2", 8, 1, 8));
        assert_eq!(c.len(), 2);
    }

    /// Two requests on one nonce swapped by the network: both are accepted, and neither can be replayed.
    #[test]
    fn reordered_counts_are_accepted_once() {
        let mut c = NonceCounts::new(10, LIFE);
        assert!(c.check_and_record("n", 0, 3, 0));
        assert!(c.check_and_record("n", 0, 2, 1));
        assert!(c.check_and_record("n", 0, 1, 2));
        for nc in 1..=3 {
            assert!(!c.check_and_record("n", 0, nc, 3), "replay of {nc}");
        }
        // The window edge: WINDOW below the highest is still accepted, one more is not.
        assert!(c.check_and_record("n", 0, 3 + WINDOW, 4));
        assert!(!c.check_and_record("n", 0, 3, 5), "used, now at the window's edge");
        assert!(c.check_and_record("n", 0, 4, 5), "exactly WINDOW below, unused");
        assert!(c.check_and_record("n", 0, 4 + 2 * WINDOW, 6), "a jump past the window");
        assert!(!c.check_and_record("n", 0, 4 + WINDOW - 1, 7), "now outside the window");
        assert!(c.check_and_record("n", 0, 4 + WINDOW, 7), "the window's far edge, unused");
    }

    #[test]
    fn the_same_request_again_is_a_retransmission_and_another_is_a_replay() {
        let mut c = NonceCounts::new(10, LIFE);
        assert_eq!(c.use_count("n", 0, 1, 11, 0), NonceUse::Fresh);
        assert_eq!(c.use_count("n", 0, 1, 11, 500), NonceUse::Retransmission);
        assert_eq!(c.use_count("n", 0, 1, 12, 600), NonceUse::Replay, "another request reusing the count");
        assert_eq!(c.use_count("n", 0, 1, 0, 700), NonceUse::Replay, "no identity given");
        assert_eq!(c.use_count("n", 0, 2, 12, 800), NonceUse::Fresh);
        assert_eq!(c.use_count("n", 0, 2, 12, 900), NonceUse::Retransmission);
        assert_eq!(c.use_count("n", 0, 1, 11, 1_000), NonceUse::Replay, "only the latest use is remembered");
    }

    #[test]
    fn zero_is_never_accepted() {
        let mut c = NonceCounts::new(10, LIFE);
        assert!(!c.check_and_record("n", 0, 0, 0));
        assert!(c.is_empty());
    }

    #[test]
    fn entries_expire_after_lifetime() {
        let mut c = NonceCounts::new(10, LIFE);
        assert!(c.check_and_record("n1", 1_000, 3, 1_000));
        assert!(c.check_and_record("n2", 30_000, 1, 30_000));
        assert!(!c.check_and_record("n1", 1_000 + LIFE - 1, 3, 1_000 + LIFE - 1));
        // At expiry n1 is dropped; a real server would have rejected the nonce as stale before asking.
        assert!(c.check_and_record("n3", 1_000 + LIFE, 1, 1_000 + LIFE));
        assert_eq!(c.len(), 2);
        assert!(c.check_and_record("n4", 30_000 + LIFE, 1, 30_000 + LIFE));
        assert_eq!(c.len(), 2, "n2 expired, n3 and n4 live");
    }

    #[test]
    fn expired_but_unpurged_entry_is_refused() {
        let mut c = NonceCounts::new(10, LIFE);
        assert!(c.check_and_record("a", 100_000, 1, 100_000));
        assert!(c.check_and_record("b", 0, 1, 0), "clock stepped back");
        // "b" expired at LIFE but sits behind "a" in the queue, so it is not purged yet.
        assert!(!c.check_and_record("b", LIFE + 1, 2, LIFE + 1));
    }

    #[test]
    fn capacity_evicts_oldest() {
        let mut c = NonceCounts::new(2, LIFE);
        assert!(c.check_and_record("a", 0, 1, 0));
        assert!(c.check_and_record("b", 1, 1, 1));
        assert!(c.check_and_record("a", 2, 2, 2), "updates do not change first-use order");
        assert!(c.check_and_record("c", 3, 1, 3));
        assert_eq!(c.len(), 2);
        assert!(!c.check_and_record("b", 4, 1, 4), "b kept");
        assert!(!c.check_and_record("c", 4, 1, 4), "c kept");
        // "a" was evicted; it must not count as new again (that would let it be replayed): fail closed, and the
        // client re-authenticates with a fresh nonce.
        assert!(!c.check_and_record("a", 0, 1, 5));
        // Nonces issued after everything evicted so far are still welcome.
        assert!(c.check_and_record("d", 5, 1, 5));
        assert_eq!(NonceCounts::new(0, LIFE).capacity, 1);
    }
}
