//! Wall-clock milliseconds derived from tokio's clock, so that tests with a paused tokio clock move registration
//! expiry and keepalives in virtual time.

use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base_unix_ms: u64,
    base: Instant,
}

impl Clock {
    pub fn new() -> Self {
        let base_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Clock { base_unix_ms, base: Instant::now() }
    }

    /// Unix time in milliseconds.
    pub fn now(&self) -> u64 {
        self.base_unix_ms + u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The tokio instant the clock started at.
    pub fn start(&self) -> Instant {
        self.base
    }

    /// The tokio instant at which Unix time `ms` is reached.
    pub fn instant_at(&self, ms: u64) -> Instant {
        self.base + std::time::Duration::from_millis(ms.saturating_sub(self.base_unix_ms))
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}
