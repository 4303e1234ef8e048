//! Brute-force throttling of digest authentication failures.
//!
//! Keys are opaque strings; see the [module docs](super) for the recommended `auth_id@source_ip` plus `source_ip`
//! keying and why success only clears the former.

use std::collections::{BTreeMap, HashMap, VecDeque};

/// How many of the least recently touched entries eviction looks at to find one that is not blocked.
const EVICTION_SCAN: usize = 16;

#[derive(Debug, Clone)]
struct Entry {
    /// Times of recent failures, oldest first; never more than `max_failures` long.
    failures: VecDeque<u64>,
    /// Blocked while `now < blocked_until`.
    blocked_until: u64,
    /// Position in `FailureThrottle::order` (last touch).
    seq: u64,
}

/// Counts failures per key in a sliding window and blocks a key for a cooldown once it reaches the limit.
///
/// Memory is bounded by `capacity` keys (each holding at most `max_failures` time stamps). When full, the least
/// recently touched key that is not currently blocked is evicted; blocked keys found on the way are moved to the
/// back. That way a flood of fresh keys (e.g. spoofed UDP sources) pushes out other one-off failures rather than
/// the blocks that matter. Only if everything scanned is blocked does the oldest block go.
///
/// Failures recorded while a key is blocked are ignored: the caller should not even verify credentials then, and
/// not extending the block lets a misconfigured real device recover after one cooldown.
#[derive(Debug, Clone)]
pub struct FailureThrottle {
    max_failures: u32,
    window_ms: u64,
    cooldown_ms: u64,
    capacity: usize,
    entries: HashMap<String, Entry>,
    /// Last-touch order: `seq -> key`, oldest first.
    order: BTreeMap<u64, String>,
    next_seq: u64,
}

impl FailureThrottle {
    /// Blocks a key for `cooldown_ms` once it has `max_failures` (at least 1) failures within any `window_ms`.
    /// At most `capacity` (at least 1) keys are tracked.
    pub fn new(max_failures: u32, window_ms: u64, cooldown_ms: u64, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        FailureThrottle {
            max_failures: max_failures.max(1),
            window_ms,
            cooldown_ms,
            capacity,
            entries: HashMap::with_capacity(capacity.min(4096)),
            order: BTreeMap::new(),
            next_seq: 0,
        }
    }

    /// Records one failed authentication for `key`, and returns how many failures `key` now has within the
    /// window (1 for its first; 0 when the key was already blocked and nothing was recorded). The count lets a
    /// caller feed a wider key only with what is new, e.g. one failure per distinct account for a source.
    pub fn record_failure(&mut self, key: &str, now_ms: u64) -> u32 {
        if self.is_blocked(key, now_ms) {
            return 0;
        }
        if !self.entries.contains_key(key) {
            self.make_room(now_ms);
        }
        let seq = self.bump_seq();
        let entry = self.entries.entry(key.to_owned()).or_insert_with(|| Entry {
            failures: VecDeque::new(),
            blocked_until: 0,
            seq,
        });
        let old_seq = std::mem::replace(&mut entry.seq, seq);
        while entry.failures.front().is_some_and(|&t| now_ms.saturating_sub(t) >= self.window_ms) {
            entry.failures.pop_front();
        }
        entry.failures.push_back(now_ms);
        let count = u32::try_from(entry.failures.len()).unwrap_or(u32::MAX);
        if count >= self.max_failures {
            entry.blocked_until = now_ms.saturating_add(self.cooldown_ms);
            entry.failures.clear();
        }
        self.order.remove(&old_seq);
        self.order.insert(seq, key.to_owned());
        count
    }

    /// True while `key` is in its cooldown.
    pub fn is_blocked(&self, key: &str, now_ms: u64) -> bool {
        self.entries.get(key).is_some_and(|e| now_ms < e.blocked_until)
    }

    /// Forgets `key` entirely (failures and any block). Call it for the per-credential key after a successful
    /// authentication — not for a per-source key (see the module docs).
    pub fn record_success(&mut self, key: &str) {
        if let Some(entry) = self.entries.remove(key) {
            self.order.remove(&entry.seq);
        }
    }

    /// Number of keys currently tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn bump_seq(&mut self) -> u64 {
        self.next_seq = self.next_seq.wrapping_add(1);
        self.next_seq
    }

    /// Evicts until there is room for one more key.
    fn make_room(&mut self, now_ms: u64) {
        while self.entries.len() >= self.capacity {
            let mut victim: Option<(u64, String)> = None;
            let mut requeue: Vec<(u64, String)> = Vec::new();
            for (&seq, key) in self.order.iter().take(EVICTION_SCAN) {
                if self.is_blocked(key, now_ms) {
                    requeue.push((seq, key.clone()));
                } else {
                    victim = Some((seq, key.clone()));
                    break;
                }
            }
            let (seq, key) = match victim {
                Some(v) => v,
                None => match self.order.first_key_value() {
                    Some((&seq, key)) => (seq, key.clone()),
                    None => return,
                },
            };
            self.order.remove(&seq);
            self.entries.remove(&key);
            for (old_seq, key) in requeue {
                if old_seq == seq {
                    continue;
                }
                let new_seq = self.bump_seq();
                self.order.remove(&old_seq);
                if let Some(entry) = self.entries.get_mut(&key) {
                    entry.seq = new_seq;
                }
                self.order.insert(new_seq, key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: u64 = 60_000;
    const COOLDOWN: u64 = 300_000;

    fn throttle(capacity: usize) -> FailureThrottle {
        FailureThrottle::new(3, WINDOW, COOLDOWN, capacity)
    }

    #[test]
    fn blocks_after_max_failures_within_window_for_cooldown() {
        let mut t = throttle(100);
        let k = "alice@192.0.2.1";
        assert_eq!(t.record_failure(k, 0), 1);
        assert_eq!(t.record_failure(k, 10_000), 2);
        assert!(!t.is_blocked(k, 10_000));
        assert_eq!(t.record_failure(k, 20_000), 3);
        assert!(t.is_blocked(k, 20_000));
        assert_eq!(t.record_failure(k, 20_001), 0, "nothing recorded while blocked");
        assert!(t.is_blocked(k, 20_000 + COOLDOWN - 1));
        assert!(!t.is_blocked(k, 20_000 + COOLDOWN));
        assert!(!t.is_blocked("alice@198.51.100.7", 20_000), "other keys unaffected");
    }

    #[test]
    fn window_slides() {
        let mut t = throttle(100);
        t.record_failure("k", 0);
        t.record_failure("k", 30_000);
        // The first failure has left the window by now, so this is only the 2nd within it.
        t.record_failure("k", WINDOW);
        assert!(!t.is_blocked("k", WINDOW));
        t.record_failure("k", WINDOW + 1);
        assert!(t.is_blocked("k", WINDOW + 1));
    }

    #[test]
    fn failures_while_blocked_do_not_extend_and_count_restarts() {
        let mut t = throttle(100);
        for now in [0, 1, 2] {
            t.record_failure("k", now);
        }
        t.record_failure("k", COOLDOWN);
        assert!(!t.is_blocked("k", 2 + COOLDOWN), "not extended");
        t.record_failure("k", 2 + COOLDOWN);
        t.record_failure("k", 3 + COOLDOWN);
        assert!(!t.is_blocked("k", 3 + COOLDOWN), "pre-block failures were cleared");
        t.record_failure("k", 4 + COOLDOWN);
        assert!(t.is_blocked("k", 4 + COOLDOWN));
    }

    #[test]
    fn success_resets_the_key() {
        let mut t = throttle(100);
        t.record_failure("k", 0);
        t.record_failure("k", 1);
        t.record_success("k");
        t.record_failure("k", 2);
        t.record_failure("k", 3);
        assert!(!t.is_blocked("k", 3));
        t.record_failure("k", 4);
        assert!(t.is_blocked("k", 4));
        t.record_success("k");
        assert!(!t.is_blocked("k", 5), "success also lifts a block");
        assert!(t.is_empty());
        t.record_success("never-seen");
    }

    #[test]
    fn capacity_evicts_least_recently_touched() {
        let mut t = throttle(2);
        t.record_failure("a", 0);
        t.record_failure("b", 1);
        t.record_failure("a", 2);
        t.record_failure("c", 3);
        assert_eq!(t.len(), 2);
        // "b" was least recently touched and went; "a" kept its two failures.
        t.record_failure("a", 4);
        assert!(t.is_blocked("a", 4));
        assert!(t.entries.contains_key("c") && !t.entries.contains_key("b"));
    }

    #[test]
    fn eviction_prefers_unblocked_keys() {
        let mut t = throttle(3);
        for now in [0, 1, 2] {
            t.record_failure("attacker@203.0.113.9", now);
        }
        // A flood of fresh keys (spoofed sources) does not push the block out.
        for i in 0..50u64 {
            t.record_failure(&format!("spoof-{i}"), 3 + i);
            assert!(t.len() <= 3);
            assert_eq!(t.order.len(), t.entries.len());
        }
        assert!(t.is_blocked("attacker@203.0.113.9", 100));
    }

    #[test]
    fn all_blocked_evicts_oldest() {
        let mut t = FailureThrottle::new(1, WINDOW, COOLDOWN, 2);
        t.record_failure("a", 0);
        t.record_failure("b", 1);
        t.record_failure("c", 2);
        assert_eq!(t.len(), 2);
        assert!(!t.is_blocked("a", 3) && t.is_blocked("b", 3) && t.is_blocked("c", 3));
        assert_eq!(t.order.len(), t.entries.len());
    }

    #[test]
    fn degenerate_parameters_are_clamped() {
        let mut t = FailureThrottle::new(0, 0, 10, 0);
        assert!(!t.is_blocked("k", 0));
        t.record_failure("k", 0);
        assert!(t.is_blocked("k", 9));
        t.record_failure("j", 0);
        assert_eq!(t.len(), 1);
    }
}
