//! A clock tests move by hand: pure code takes `now` as a parameter, and a scenario
//! advances this one between rounds.

use std::sync::atomic::{AtomicU64, Ordering};

/// Epoch seconds, set and advanced by the test. Shared by reference across threads.
#[derive(Debug)]
pub struct FakeClock {
    /// Milliseconds, so the time stays exact in an atomic.
    millis: AtomicU64,
}

impl FakeClock {
    /// A clock reading `seconds` (millisecond precision, as AWS timestamps).
    pub fn at(seconds: f64) -> Self {
        Self {
            millis: AtomicU64::new(to_millis(seconds)),
        }
    }

    /// The time now, in epoch seconds.
    pub fn now(&self) -> f64 {
        self.millis.load(Ordering::SeqCst) as f64 / 1000.0
    }

    /// Moves the clock forward by `seconds`; returns the new time.
    pub fn advance(&self, seconds: f64) -> f64 {
        self.millis.fetch_add(to_millis(seconds), Ordering::SeqCst);
        self.now()
    }
}

impl Default for FakeClock {
    /// 2024-01-01T00:00:00Z: a time well clear of zero, so "seconds since" never wraps.
    fn default() -> Self {
        Self::at(1_704_067_200.0)
    }
}

fn to_millis(seconds: f64) -> u64 {
    (seconds.max(0.0) * 1000.0).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_now_by_exactly_that_much() {
        let c = FakeClock::at(100.0);
        assert_eq!(c.advance(2.5), 102.5);
        assert_eq!(c.now(), 102.5);
    }
}
