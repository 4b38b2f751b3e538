//! Whether this process may run the controllers now.
//!
//! With one process on SQLite it always may ([`Leadership::always`]). With several
//! replicas on etcd exactly one holds a lease-backed key at a time
//! (`etcd::campaign`); the others serve the APIs and wait. A [`Leadership`] is a cheap
//! clone of a `watch` receiver: the loops that must run on one replica only wait for
//! [`Leadership::acquired`] and stop at [`Leadership::lost`].

use tokio::sync::watch;

/// A term of leadership: the store revision at which this process became leader
/// (0 for the single-process case, where there is no election).
pub type Term = u64;

/// Follows whether this process is the leader.
#[derive(Clone, Debug)]
pub struct Leadership {
    state: watch::Receiver<Option<Term>>,
}

impl Leadership {
    /// Leader from the start and for ever: the single-process (SQLite) case.
    pub fn always() -> Self {
        let (tx, rx) = watch::channel(Some(0));
        // The receiver keeps the last value after the sender is gone.
        drop(tx);
        Self { state: rx }
    }

    /// A leadership whose state `sender` publishes (`Some(term)` while leader).
    pub fn channel() -> (watch::Sender<Option<Term>>, Self) {
        let (tx, rx) = watch::channel(None);
        (tx, Self { state: rx })
    }

    /// The current term when this process is leader now.
    pub fn term(&self) -> Option<Term> {
        *self.state.borrow()
    }

    /// Waits until this process is leader and returns the term. Returns `None` when the
    /// election has ended (its task stopped) without this process leading.
    pub async fn acquired(&mut self) -> Option<Term> {
        match self.state.wait_for(Option::is_some).await {
            Ok(term) => *term,
            Err(_) => None,
        }
    }

    /// Waits until the term `term` ends (leadership lost, or another term began). When
    /// the election task has stopped, the last published state is final: a leader stays
    /// leader (the single-process case), anyone else is told the term ended.
    pub async fn lost(&mut self, term: Term) {
        if self.state.wait_for(|now| *now != Some(term)).await.is_err()
            && *self.state.borrow() == Some(term)
        {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn always_is_leader_and_never_loses() {
        let mut l = Leadership::always();
        assert_eq!(l.acquired().await, Some(0));
        let lost = tokio::time::timeout(Duration::from_millis(50), l.lost(0)).await;
        assert!(
            lost.is_err(),
            "the single process must never lose leadership"
        );
    }

    #[tokio::test]
    async fn a_term_ends_when_the_sender_says_so() {
        let (tx, mut l) = Leadership::channel();
        assert_eq!(l.term(), None);
        tx.send_replace(Some(7));
        assert_eq!(l.acquired().await, Some(7));
        tx.send_replace(None);
        tokio::time::timeout(Duration::from_secs(1), l.lost(7))
            .await
            .expect("the term should have ended");
        drop(tx);
        assert_eq!(l.acquired().await, None);
    }
}
