//! A short memory of answers given without transaction state (RFC 3261 §8.2.7), so a retransmitted request gets
//! the very answer the original got.
//!
//! REGISTER is answered statelessly (the registrar would otherwise hold hundreds of thousands of transactions at
//! full load). Without a memory, a retransmission is answered afresh: a retransmitted unauthenticated REGISTER
//! would get a second challenge with another nonce, and a retransmitted authenticated one would be checked again,
//! its nonce count now used, and refused as a replay. Under load, when responses are late and retransmissions
//! common, that refused correct credentials. With the memory, the retransmission is recognised by what RFC 3261
//! §17.2.3 matches server transactions on (top Via branch and sent-by, plus Call-ID and CSeq) and the stored bytes
//! are sent again, at the cost of one hash probe.
//!
//! Memory is bounded twice: by age (`keep_ms`, normally 64*T1 as Timer J would keep a transaction) and by count
//! (the oldest answer goes first). At full load the count bound wins, and the memory still spans the first
//! retransmissions (T1 and 3*T1 after the original), which are nearly all of them.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash, Hasher};

use crate::{HeaderName, Headers};

/// Answers remembered, by a keyed hash of the request's identity.
#[derive(Debug)]
pub struct AnswerMemory {
    capacity: usize,
    keep_ms: u64,
    hasher: RandomState,
    answers: HashMap<u64, Box<[u8]>>,
    /// Insertion order: (key, forget_at).
    order: VecDeque<(u64, u64)>,
    recalled: u64,
}

impl AnswerMemory {
    /// Remembers at most `capacity` (at least 1) answers, each for at most `keep_ms`.
    pub fn new(capacity: usize, keep_ms: u64) -> Self {
        let capacity = capacity.max(1);
        AnswerMemory {
            capacity,
            keep_ms,
            hasher: RandomState::new(),
            answers: HashMap::with_capacity(capacity.min(4096)),
            order: VecDeque::with_capacity(capacity.min(4096)),
            recalled: 0,
        }
    }

    /// The identity of a request from `source`: its top Via line (branch and sent-by, as RFC 3261 §17.2.3 matches
    /// server transactions; the `received`/`rport` stamped on it depend only on the source), Call-ID and CSeq, and
    /// the source itself. Hashed from the header text, without parsing. `None` without a Via branch (an RFC 2543
    /// client, whose retransmissions cannot be told from new requests): such requests are not remembered.
    pub fn key(&self, source: impl Hash, headers: &Headers) -> Option<u64> {
        let via = headers.get(&HeaderName::Via)?;
        if !via.contains("branch=") {
            return None;
        }
        let mut h = self.hasher.build_hasher();
        source.hash(&mut h);
        via.hash(&mut h);
        headers.get(&HeaderName::CallId).hash(&mut h);
        headers.get(&HeaderName::CSeq).map(str::trim).hash(&mut h);
        Some(h.finish())
    }

    /// The answer given to the request with identity `key`, if still remembered at `now`.
    pub fn recall(&mut self, key: u64, now: u64) -> Option<&[u8]> {
        self.forget_old(now);
        let answer = self.answers.get(&key)?;
        self.recalled += 1;
        Some(answer)
    }

    /// Remembers `answer` for the request with identity `key`. A second answer to the same request (which the
    /// caller should not give) replaces the first without extending its life.
    pub fn remember(&mut self, key: u64, answer: impl Into<Box<[u8]>>, now: u64) {
        self.forget_old(now);
        if self.answers.insert(key, answer.into()).is_some() {
            return;
        }
        while self.answers.len() > self.capacity {
            match self.order.pop_front() {
                Some((old, _)) => {
                    self.answers.remove(&old);
                }
                None => break,
            }
        }
        self.order.push_back((key, now.saturating_add(self.keep_ms)));
    }

    /// Answers held now.
    pub fn len(&self) -> usize {
        self.answers.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }

    /// How many retransmissions were answered from memory so far.
    pub fn recalled(&self) -> u64 {
        self.recalled
    }

    fn forget_old(&mut self, now: u64) {
        while let Some(&(key, forget_at)) = self.order.front() {
            if forget_at > now {
                break;
            }
            self.answers.remove(&key);
            self.order.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(branch: &str, cseq: &str) -> Headers {
        let mut h = Headers::new();
        h.push(HeaderName::Via, format!("SIP/2.0/UDP 192.0.2.1:5060;branch={branch}"));
        h.push(HeaderName::CallId, "call-1@192.0.2.1");
        h.push(HeaderName::CSeq, cseq.to_owned());
        h
    }

    #[test]
    fn a_retransmission_recalls_the_answer_and_other_requests_do_not() {
        let mut m = AnswerMemory::new(10, 32_000);
        let src = "192.0.2.1:5060";
        let k = m.key(src, &headers("z9hG4bK1", "1 REGISTER")).unwrap();
        m.remember(k, &b"SIP/2.0 401 Unauthorized"[..], 0);
        assert_eq!(
            m.recall(m.key(src, &headers("z9hG4bK1", "1 REGISTER")).unwrap(), 500),
            Some(&b"SIP/2.0 401 Unauthorized"[..])
        );
        // The next request of the exchange (new branch, next CSeq), or the same from elsewhere, is new.
        assert_eq!(m.recall(m.key(src, &headers("z9hG4bK2", "2 REGISTER")).unwrap(), 500), None);
        assert_eq!(m.recall(m.key(src, &headers("z9hG4bK1", "2 REGISTER")).unwrap(), 500), None);
        assert_eq!(m.recall(m.key("192.0.2.9:5060", &headers("z9hG4bK1", "1 REGISTER")).unwrap(), 500), None);
        assert_eq!(m.recalled(), 1);
    }

    #[test]
    fn answers_are_forgotten_by_age_and_by_count() {
        let mut m = AnswerMemory::new(2, 1_000);
        m.remember(1, &b"a"[..], 0);
        m.remember(2, &b"b"[..], 500);
        assert!(m.recall(1, 999).is_some());
        assert!(m.recall(1, 1_000).is_none(), "aged out");
        m.remember(3, &b"c"[..], 1_000);
        m.remember(4, &b"d"[..], 1_001);
        assert_eq!(m.len(), 2);
        assert!(m.recall(2, 1_001).is_none(), "pushed out by count");
        assert!(m.recall(3, 1_001).is_some() && m.recall(4, 1_001).is_some());
    }

    #[test]
    fn requests_without_a_branch_are_not_remembered() {
        let m = AnswerMemory::new(2, 1_000);
        let mut h = Headers::new();
        h.push(HeaderName::Via, "SIP/2.0/UDP 192.0.2.1:5060");
        assert_eq!(m.key("x", &h), None);
    }
}
