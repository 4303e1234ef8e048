//! Replay protection through nonce counts (RFC 7616 §3.4 `nc`, §5.5).
//!
//! A client reusing a nonce must increase `nc` with each request, and the response hash covers `nc`, so a captured
//! request can only be replayed with its original `nc`. Remembering the highest `nc` per nonce therefore defeats
//! replay for as long as the nonce is valid; after that [`super::NonceFactory::check`] says `Stale`.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;

#[derive(Debug, Clone, Copy)]
struct Seen {
    highest_nc: u32,
    expires_at: u64,
}

/// Remembers, for each nonce in use, the highest nonce count accepted.
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

    /// Accepts `nc` for `nonce` (issued at `issued_at`, as [`super::NonceFactory::check`] reported) only if it is
    /// strictly greater than every count accepted before for that nonce, and records it. A repeat or lower value
    /// is a replay (or a badly out-of-order request, which the client recovers from by re-authenticating).
    /// `nc == 0` is never valid (counts start at 1).
    ///
    /// SIP retransmissions are absorbed by the transaction layer before they reach authentication, so a repeated
    /// `nc` arriving here really is a new request reusing an old count.
    pub fn check_and_record(&mut self, nonce: &str, issued_at: u64, nc: u32, now_ms: u64) -> bool {
        self.purge_expired(now_ms);
        let key = self.hasher.hash_one(nonce);
        if let Some(seen) = self.entries.get_mut(&key) {
            // An entry that outlived its lifetime without being purged (time going backwards, or purge order
            // disturbed) belongs to a nonce that is stale anyway: refuse rather than restart the count.
            if now_ms >= seen.expires_at || nc <= seen.highest_nc {
                return false;
            }
            seen.highest_nc = nc;
            return true;
        }
        if nc == 0 || self.evicted_up_to.is_some_and(|t| issued_at <= t) {
            return false;
        }
        while self.entries.len() >= self.capacity {
            let Some((oldest, _, oldest_issued)) = self.order.pop_front() else {
                break;
            };
            self.entries.remove(&oldest);
            self.evicted_up_to = Some(self.evicted_up_to.map_or(oldest_issued, |t| t.max(oldest_issued)));
        }
        let expires_at = now_ms.saturating_add(self.lifetime_ms);
        self.entries.insert(key, Seen { highest_nc: nc, expires_at });
        self.order.push_back((key, expires_at, issued_at));
        true
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
    fn strictly_increasing_counts_only() {
        let mut c = NonceCounts::new(10, LIFE);
        assert!(c.check_and_record("n1", 0, 1, 0));
        assert!(!c.check_and_record("n1", 1, 1, 1), "repeat");
        assert!(c.check_and_record("n1", 2, 2, 2));
        assert!(c.check_and_record("n1", 3, 5, 3), "gaps are fine");
        assert!(!c.check_and_record("n1", 4, 4, 4), "lower");
        assert!(!c.check_and_record("n1", 5, 5, 5), "repeat of highest");
        assert!(c.check_and_record("n1", 6, u32::MAX, 6));
        assert!(!c.check_and_record("n1", 7, u32::MAX, 7));
        // Other nonces are independent.
        assert!(c.check_and_record("n2", 8, 1, 8));
        assert_eq!(c.len(), 2);
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
