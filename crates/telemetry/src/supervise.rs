//! Supervised background loops: a panic inside one round is caught, logged with the
//! loop's name and counted, and the next round runs; every loop stops when the shutdown
//! token fires.

use crate::names::{LoopName, Metric};
use futures_util::FutureExt;
use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How long a long-running task that panicked waits before it is started again.
const RESTART_AFTER: Duration = Duration::from_secs(1);

/// Runs one round of `name`, catching a panic. Returns the round's output, or `None`
/// when it panicked.
///
/// The round is timed and counted (`stevedore_loop_rounds_total`,
/// `stevedore_loop_round_duration_seconds`); a panic is logged with the loop's name and
/// counted in `stevedore_loop_panics_total`.
pub async fn supervise_round<T, F: Future<Output = T>>(name: LoopName, round: F) -> Option<T> {
    let started = Instant::now();
    // The round's state is rebuilt from the store next round, so whatever a panic left
    // half-updated in memory is either reread or guarded by a lock that does not poison.
    let outcome = AssertUnwindSafe(round).catch_unwind().await;
    let labels = [("loop", name.as_str())];
    metrics::counter!(Metric::LoopRoundsTotal.name(), &labels).increment(1);
    metrics::histogram!(Metric::LoopRoundDurationSeconds.name(), &labels)
        .record(started.elapsed().as_secs_f64());
    match outcome {
        Ok(out) => Some(out),
        Err(payload) => {
            metrics::counter!(Metric::LoopPanicsTotal.name(), &labels).increment(1);
            tracing::error!(
                r#loop = %name,
                panic = %panic_message(payload.as_ref()),
                "A background loop's round panicked; the next round runs as usual."
            );
            None
        }
    }
}

/// Runs `round` after each `wait` until `shutdown` fires, each round supervised by
/// [`supervise_round`]. A round still running when `shutdown` fires is dropped at its
/// next await: every loop this drives is level-triggered over the store, so stopping
/// mid-round loses nothing a later start does not redo.
pub async fn supervise<W, WF, R, RF>(
    name: LoopName,
    shutdown: CancellationToken,
    mut wait: W,
    mut round: R,
) where
    W: FnMut() -> WF,
    WF: Future<Output = ()>,
    R: FnMut() -> RF,
    RF: Future<Output = ()>,
{
    tracing::debug!(r#loop = %name, "Background loop started.");
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            () = wait() => {}
        }
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            _ = supervise_round(name, round()) => {}
        }
    }
    tracing::info!(r#loop = %name, "Background loop stopped.");
}

/// Runs a long-running `task` until it returns or `shutdown` fires; if it panics, the
/// panic is logged and counted like a round's and the task starts again after a second.
pub async fn supervise_task<T, TF>(name: LoopName, shutdown: CancellationToken, mut task: T)
where
    T: FnMut() -> TF,
    TF: Future<Output = ()>,
{
    loop {
        let completed = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            completed = supervise_round(name, task()) => completed.is_some(),
        };
        if completed {
            break;
        }
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(RESTART_AFTER) => {}
        }
    }
    tracing::info!(r#loop = %name, "Background task stopped.");
}

/// The text of a panic's payload (`panic!` gives a `&str` or a `String`).
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a panic without a message)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    /// A tracing writer that keeps what was logged.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log buffer").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The tests that panic under `LoopName::Test` take turns, so each sees its own count.
    static PANICKING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    fn sample(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }

    #[tokio::test]
    async fn a_panicking_round_is_logged_counted_and_the_next_round_runs() {
        let _turn = PANICKING.lock().await;
        crate::install();
        let logs = Captured::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let before = sample(
            &crate::render(),
            "stevedore_loop_panics_total{loop=\"test\"}",
        );
        let rounds = Arc::new(AtomicUsize::new(0));
        let shutdown = CancellationToken::new();
        let (r, stop) = (rounds.clone(), shutdown.clone());
        supervise(
            LoopName::Test,
            shutdown.clone(),
            tokio::task::yield_now,
            move || {
                let (r, stop) = (r.clone(), stop.clone());
                async move {
                    match r.fetch_add(1, Ordering::SeqCst) {
                        0 => panic!("injected for the test"),
                        _ => stop.cancel(),
                    }
                }
            },
        )
        .await;
        assert_eq!(
            rounds.load(Ordering::SeqCst),
            2,
            "the round after the panic ran"
        );
        let after = sample(
            &crate::render(),
            "stevedore_loop_panics_total{loop=\"test\"}",
        );
        assert_eq!(after - before, 1.0);
        let logged = String::from_utf8(logs.0.lock().expect("log buffer").clone()).expect("utf-8");
        assert!(
            logged.contains("loop=test") && logged.contains("injected for the test"),
            "{logged}"
        );
    }

    #[tokio::test]
    async fn every_loop_stops_when_shutdown_fires() {
        let shutdown = CancellationToken::new();
        let looping = tokio::spawn(supervise(
            LoopName::Test,
            shutdown.clone(),
            || tokio::time::sleep(Duration::from_millis(5)),
            || async {},
        ));
        let task = tokio::spawn(supervise_task(LoopName::Test, shutdown.clone(), || {
            std::future::pending::<()>()
        }));
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), async {
            looping.await.expect("loop joined");
            task.await.expect("task joined");
        })
        .await
        .expect("both stopped");
    }

    #[tokio::test]
    async fn a_panicking_task_starts_again() {
        let _turn = PANICKING.lock().await;
        let starts = Arc::new(AtomicUsize::new(0));
        let s = starts.clone();
        supervise_task(LoopName::Test, CancellationToken::new(), move || {
            let s = s.clone();
            async move {
                if s.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("first start fails");
                }
            }
        })
        .await;
        assert_eq!(starts.load(Ordering::SeqCst), 2);
    }
}
