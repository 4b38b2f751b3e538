//! The compare-and-swap retry policy: how many lost races a write may suffer, and how
//! long it waits between them. Pure bookkeeping; [`crate::Objects::retry`] does the I/O.
//!
//! * **No wait before the first attempt**, and none after a commit: the uncontended
//!   path costs exactly one read-modify-commit.
//! * **Backoff with jitter between conflicts**: the n-th consecutive conflict waits a
//!   random time in `[d/2, d]` where `d = min(cap, start * 2^(n-1))`, so writers that
//!   collided once do not collide again in lockstep.
//! * **A budget that resets on progress.** A conflict means a compare failed, i.e. the
//!   key moved after the attempt read it. If the store's revision has moved past the
//!   one seen at the previous conflict, *other writers committed in between*: the system
//!   is making progress and we are merely losing races, so the stalled-attempt budget
//!   starts over. If the revision has not moved, nobody else committed, yet our compare
//!   still failed: the attempt keeps building its transaction from a stale read (a cache,
//!   a bug), and retrying cannot help, so those attempts spend the budget. A hard ceiling
//!   on total attempts keeps a pathological livelock from holding a request forever.

use std::time::Duration;

use crate::Revision;

/// Tuning of [`crate::Objects::retry`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Conflicts in a row without the store revision moving before giving up.
    pub stalled_attempts: u32,
    /// Attempts in total before giving up, however much progress others make.
    pub max_attempts: u32,
    /// The wait after the first conflict (before jitter).
    pub backoff_start: Duration,
    /// The longest wait between two attempts.
    pub backoff_cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            stalled_attempts: 16,
            max_attempts: 256,
            backoff_start: Duration::from_millis(1),
            backoff_cap: Duration::from_millis(50),
        }
    }
}

/// What to do after a conflict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Wait this long, then attempt again.
    Retry(Duration),
    /// The budget is spent: report contention.
    GiveUp,
}

/// The state of one retry loop.
#[derive(Debug)]
pub struct Attempts {
    policy: RetryPolicy,
    total: u32,
    stalled: u32,
    conflicts: u32,
    last_seen: Option<Revision>,
}

impl Attempts {
    /// A fresh loop under `policy`.
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            total: 0,
            stalled: 0,
            conflicts: 0,
            last_seen: None,
        }
    }

    /// Records a lost race, given the store revision read just after it, and decides
    /// whether to go on. `jitter` is a uniform draw in `[0, 1)`.
    pub fn conflict(&mut self, revision: Revision, jitter: f64) -> Verdict {
        self.total += 1;
        self.conflicts += 1;
        let progressed = self.last_seen.is_none_or(|seen| revision > seen);
        self.last_seen = Some(revision);
        self.stalled = if progressed { 1 } else { self.stalled + 1 };
        if self.total >= self.policy.max_attempts || self.stalled >= self.policy.stalled_attempts {
            return Verdict::GiveUp;
        }
        Verdict::Retry(self.backoff(jitter))
    }

    /// Attempts made so far that lost a race.
    pub fn conflicts(&self) -> u32 {
        self.conflicts
    }

    fn backoff(&self, jitter: f64) -> Duration {
        let doublings = self.conflicts.saturating_sub(1).min(16);
        let full = self
            .policy
            .backoff_start
            .saturating_mul(1 << doublings)
            .min(self.policy.backoff_cap);
        let jitter = jitter.clamp(0.0, 1.0);
        full.mul_f64(0.5 + jitter / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            stalled_attempts: 3,
            max_attempts: 10,
            ..RetryPolicy::default()
        }
    }

    fn wait(v: Verdict) -> Duration {
        match v {
            Verdict::Retry(d) => d,
            Verdict::GiveUp => panic!("gave up too early"),
        }
    }

    #[test]
    fn backoff_doubles_from_start_and_stops_at_the_cap() {
        let mut a = Attempts::new(RetryPolicy {
            stalled_attempts: 100,
            max_attempts: 100,
            ..RetryPolicy::default()
        });
        let waits: Vec<Duration> = (1..=10).map(|r| wait(a.conflict(r, 0.999_999))).collect();
        assert!(waits[0] <= Duration::from_millis(1));
        assert!(waits[1] > Duration::from_micros(1_900) && waits[1] <= Duration::from_millis(2));
        assert!(waits.windows(2).all(|w| w[0] <= w[1]));
        assert!(waits[9] <= Duration::from_millis(50));
        assert!(waits[9] > Duration::from_millis(49));
    }

    #[test]
    fn jitter_keeps_the_wait_between_half_and_full() {
        let mut low = Attempts::new(policy());
        let mut high = Attempts::new(policy());
        let (l, h) = (wait(low.conflict(1, 0.0)), wait(high.conflict(1, 0.999)));
        assert_eq!(l, Duration::from_micros(500));
        assert!(h > l && h <= Duration::from_millis(1));
    }

    #[test]
    fn conflicts_without_the_revision_moving_exhaust_the_budget() {
        let mut a = Attempts::new(policy());
        assert!(matches!(a.conflict(5, 0.5), Verdict::Retry(_)));
        assert!(matches!(a.conflict(5, 0.5), Verdict::Retry(_)));
        assert_eq!(a.conflict(5, 0.5), Verdict::GiveUp);
    }

    #[test]
    fn progress_by_others_resets_the_stalled_budget_until_the_ceiling() {
        let mut a = Attempts::new(policy());
        // Two stalls, then the revision moves: the budget starts over each time.
        let mut verdicts = Vec::new();
        for rev in [1, 1, 2, 2, 3, 3, 4, 4, 5] {
            verdicts.push(a.conflict(rev, 0.5));
        }
        assert!(verdicts.iter().all(|v| matches!(v, Verdict::Retry(_))));
        // The tenth attempt hits the hard ceiling even though others progressed.
        assert_eq!(a.conflict(6, 0.5), Verdict::GiveUp);
        assert_eq!(a.conflicts(), 10);
    }
}
