//! The HTTP worker threads: each runs its own single-threaded tokio runtime with its own
//! upstream connection pool, and serves whole client connections handed to it by the
//! accept loops. A request and the upstream connection carrying it then live on one
//! thread, so forwarding costs no cross-thread wake-ups (the multi-threaded scheduler's
//! futex traffic was the largest cost per request) — the same shape as nginx's workers.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

/// Work for a worker: given the worker's index (which picks its connection pools), the
/// future to run there.
pub(crate) type Job = Box<dyn FnOnce(usize) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// Handles to the worker threads; dropping it lets them finish.
pub(crate) struct Workers {
    senders: Vec<mpsc::UnboundedSender<Job>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers")
            .field("count", &self.senders.len())
            .finish()
    }
}

impl Workers {
    /// Starts `count` workers (at least one).
    pub(crate) fn start(count: usize) -> std::io::Result<Workers> {
        let mut senders = Vec::new();
        for index in 0..count.max(1) {
            let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            std::thread::Builder::new()
                .name(format!("lb-worker-{index}"))
                .spawn(move || {
                    runtime.block_on(async move {
                        while let Some(job) = rx.recv().await {
                            tokio::spawn(job(index));
                        }
                    });
                })?;
            senders.push(tx);
        }
        Ok(Workers {
            senders,
            next: AtomicUsize::new(0),
        })
    }

    /// How many workers there are.
    pub(crate) fn count(&self) -> usize {
        self.senders.len()
    }

    /// Hands a job to the next worker in turn.
    pub(crate) fn dispatch(&self, job: Job) {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.senders.len();
        if self.senders[index].send(job).is_err() {
            tracing::warn!(
                worker = index,
                "An HTTP worker has stopped; dropping a connection."
            );
        }
    }
}
