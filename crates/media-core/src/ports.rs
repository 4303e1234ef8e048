//! The relay's UDP ports: pairs from the configured range (an even RTP port and the odd RTCP port above it,
//! RFC 3550 §11), handed out least recently used first, so that late packets of an ended call do not reach the
//! next call that gets its ports.

use std::collections::{HashSet, VecDeque};

/// An RTP port and its RTCP port (`rtp + 1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortPair {
    pub rtp: u16,
}

impl PortPair {
    pub fn rtcp(self) -> u16 {
        self.rtp.saturating_add(1)
    }
}

#[derive(Debug)]
pub struct PortPool {
    free: VecDeque<PortPair>,
    in_use: HashSet<PortPair>,
}

impl PortPool {
    /// Every even port from `min` (rounded up to even) whose pair fits at or below `max`, except pairs holding
    /// a `reserved` port (the daemon's own listening ports, when the range covers them).
    pub fn new(min: u16, max: u16, reserved: &[u16]) -> Self {
        let first = min.saturating_add(min % 2);
        let free = (first..max)
            .step_by(2)
            .map(|rtp| PortPair { rtp })
            .filter(|p| !reserved.iter().any(|&r| r == p.rtp || r == p.rtcp()))
            .collect();
        PortPool { free, in_use: HashSet::new() }
    }

    /// The least recently used free pair, if any.
    pub fn allocate(&mut self) -> Option<PortPair> {
        let pair = self.free.pop_front()?;
        self.in_use.insert(pair);
        Some(pair)
    }

    /// Gives a pair back (to the end of the queue). Releasing a pair not in use does nothing.
    pub fn release(&mut self, pair: PortPair) {
        if self.in_use.remove(&pair) {
            self.free.push_back(pair);
        }
    }

    /// Takes a pair out of use for good (its port could not be bound: something else holds it).
    pub fn retire(&mut self, pair: PortPair) {
        self.in_use.remove(&pair);
    }

    pub fn in_use(&self) -> usize {
        self.in_use.len()
    }

    pub fn free(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_even_within_the_range_and_reused_last() {
        let mut p = PortPool::new(10_001, 10_008, &[]);
        assert_eq!(p.free(), 3, "10002, 10004, 10006 (10008 has no room for its RTCP port)");
        let a = p.allocate().unwrap();
        let b = p.allocate().unwrap();
        assert_eq!((a.rtp, a.rtcp(), b.rtp), (10_002, 10_003, 10_004));
        p.release(a);
        assert_eq!(p.allocate().unwrap().rtp, 10_006, "the longest free pair first");
        assert_eq!(p.allocate().unwrap().rtp, 10_002);
        assert_eq!(p.allocate(), None);
        assert_eq!(p.in_use(), 3);
        p.release(a);
        p.release(a);
        assert_eq!((p.in_use(), p.free()), (2, 1), "a double release is ignored");
        p.retire(b);
        assert_eq!((p.in_use(), p.free()), (1, 1));
    }

    /// A range covering the daemon's own SIP port never hands out the pair holding it, RTP or RTCP side.
    #[test]
    fn reserved_ports_are_never_handed_out() {
        let mut p = PortPool::new(16_250, 16_270, &[16_260, 16_265]);
        let all: Vec<u16> = std::iter::from_fn(|| p.allocate()).map(|x| x.rtp).collect();
        assert_eq!(all, vec![16_250, 16_252, 16_254, 16_256, 16_258, 16_262, 16_266, 16_268]);
    }

    /// Allocating and releasing many times never loses or duplicates a pair.
    #[test]
    fn nothing_leaks_over_many_calls() {
        let mut p = PortPool::new(20_000, 20_100, &[]);
        let total = p.free();
        for _ in 0..1000 {
            let got: Vec<PortPair> = std::iter::from_fn(|| p.allocate()).take(7).collect();
            for pair in got {
                p.release(pair);
            }
        }
        assert_eq!((p.free(), p.in_use()), (total, 0));
        let all: HashSet<PortPair> = std::iter::from_fn(|| p.allocate()).collect();
        assert_eq!(all.len(), total);
    }
}
