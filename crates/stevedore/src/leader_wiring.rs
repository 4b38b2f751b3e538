//! Runs a region's controllers only while this replica leads.
//!
//! Every replica serves the APIs; the periodic loops (service controller, retention,
//! alarms, draining sweeper, registry background work, Fargate agents) run on the leader
//! alone. Each term gets its own cancellation token: when the term ends the loops are
//! told to stop, and whatever has not stopped within [`STOP_GRACE`] is aborted, so a
//! former leader stops acting a margin before its lease can expire on etcd and before
//! another replica can take it (see `store::etcd::campaign`). With SQLite the single
//! process leads from the start and never loses, so nothing changes there.

use std::time::Duration;

use store::leader::Term;
use store::Leadership;
use telemetry::CancellationToken;
use tokio::task::JoinSet;

/// How long a term's loops get to stop cleanly before they are aborted. Well under the
/// lease margin (a third of the TTL, at least 2/3 s).
const STOP_GRACE: Duration = Duration::from_millis(500);

/// The loops of one term: each runs as the term's leader ([`store::as_leader`]), so
/// its writes are fenced by the term and refused once another replica leads.
pub(crate) struct TermLoops {
    term: Term,
    set: JoinSet<()>,
}

impl TermLoops {
    /// Spawns `work` as one of the term's loops.
    pub(crate) fn spawn(&mut self, work: impl std::future::Future<Output = ()> + Send + 'static) {
        self.set.spawn(store::as_leader(self.term, work));
    }
}

/// Spawns into `loops` a supervisor that calls `start` at the beginning of every term
/// this replica leads, with the term's stop token, and stops what it started when the
/// term ends or `shutdown` fires.
pub(crate) fn while_leader(
    loops: &mut JoinSet<()>,
    mut leadership: Leadership,
    shutdown: CancellationToken,
    start: impl Fn(&mut TermLoops, &CancellationToken) + Send + 'static,
) {
    loops.spawn(async move {
        loop {
            let term = tokio::select! {
                () = shutdown.cancelled() => return,
                term = leadership.acquired() => match term {
                    Some(term) => term,
                    None => return,
                },
            };
            let stop = shutdown.child_token();
            let mut term_loops = TermLoops {
                term,
                set: JoinSet::new(),
            };
            start(&mut term_loops, &stop);
            let mut running = term_loops.set;
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = leadership.lost(term) => {
                    tracing::warn!(term, "Leadership lost; stopping this region's controllers.");
                }
            }
            stop.cancel();
            if tokio::time::timeout(STOP_GRACE, async {
                while running.join_next().await.is_some() {}
            })
            .await
            .is_err()
            {
                tracing::warn!(
                    still_running = running.len(),
                    "Controllers did not stop in time; aborting them."
                );
                running.abort_all();
                while running.join_next().await.is_some() {}
            }
            if shutdown.is_cancelled() {
                return;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn loops_run_only_during_terms() {
        let (tx, leadership) = Leadership::channel();
        let shutdown = CancellationToken::new();
        let running = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(AtomicUsize::new(0));
        let in_term = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut loops = JoinSet::new();
        let (r, s, t) = (running.clone(), started.clone(), in_term.clone());
        while_leader(
            &mut loops,
            leadership,
            shutdown.clone(),
            move |set, stop| {
                let (r, t, stop) = (r.clone(), t.clone(), stop.clone());
                s.fetch_add(1, Ordering::SeqCst);
                set.spawn(async move {
                    // The loop's writes are fenced by the term it was started in.
                    t.store(store::fence::current_term().unwrap_or(0), Ordering::SeqCst);
                    r.fetch_add(1, Ordering::SeqCst);
                    stop.cancelled().await;
                    r.fetch_sub(1, Ordering::SeqCst);
                });
            },
        );
        let settle = || tokio::time::sleep(Duration::from_millis(50));
        settle().await;
        assert_eq!(running.load(Ordering::SeqCst), 0, "no loop before leading");
        tx.send_replace(Some(1));
        settle().await;
        assert_eq!(running.load(Ordering::SeqCst), 1);
        assert_eq!(in_term.load(Ordering::SeqCst), 1, "loops run as term 1");
        tx.send_replace(None);
        settle().await;
        assert_eq!(
            running.load(Ordering::SeqCst),
            0,
            "loops stop with the term"
        );
        tx.send_replace(Some(2));
        settle().await;
        assert_eq!(started.load(Ordering::SeqCst), 2);
        assert_eq!(in_term.load(Ordering::SeqCst), 2, "loops run as term 2");
        shutdown.cancel();
        while loops.join_next().await.is_some() {}
        assert_eq!(running.load(Ordering::SeqCst), 0);
    }
}
