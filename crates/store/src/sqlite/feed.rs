//! The SQLite backend's change feed: what [`crate::Store::watch`] reads.
//!
//! The writer thread knows every committed batch; after making one durable it hands
//! the batch's events here, grouped per transaction, *before* answering the callers, so
//! a caller that watches from the revision its commit returned always finds it. The
//! feed keeps
//!
//! * a bounded in-memory history (a ring of the most recent transactions, capped by
//!   event count), from which a new watcher replays; anything older answers
//!   [`StoreError::Compacted`];
//! * a live broadcast of each new transaction. Publishing never blocks: a watcher that
//!   falls more than the channel's capacity behind gets [`StoreError::WatchLagged`] and
//!   must re-list, so a slow watcher can never slow the writer.
//!
//! Replay and subscription happen under the same lock as publication, so a watcher
//! sees every transaction from its start revision exactly once, in order.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::broadcast;

use super::Entry;
use crate::{KeyValue, Revision, StoreError, WatchEvent, Watcher};

/// The most transactions the live channel buffers for the slowest watcher; a smaller
/// history buffers as many transactions as it keeps events.
const LIVE_CAPACITY: usize = 4096;

/// The events of one committed transaction, in key order.
#[derive(Debug)]
pub(crate) struct TxnEvents {
    pub(crate) revision: Revision,
    pub(crate) events: Vec<WatchEvent>,
}

impl TxnEvents {
    /// The events of the transaction at `revision`, from the keys it touched (in key
    /// order, each once, with whether it existed before) and each key's state after it.
    pub(crate) fn new<'a>(
        revision: Revision,
        touched: impl IntoIterator<Item = (&'a str, bool, Option<&'a Entry>)>,
    ) -> Self {
        let events = touched
            .into_iter()
            .filter_map(|(key, existed, after)| match after {
                Some(e) => Some(WatchEvent::Put(KeyValue {
                    key: key.to_owned(),
                    value: e.value.clone(),
                    create_revision: e.create_rev,
                    mod_revision: e.mod_rev,
                })),
                // Deleting what was not there changes nothing a watcher could see.
                None => existed.then(|| WatchEvent::Delete {
                    key: key.to_owned(),
                    revision,
                }),
            })
            .collect();
        Self { revision, events }
    }
}

/// What the live channel carries.
#[derive(Clone, Debug)]
enum Item {
    Txn(Arc<TxnEvents>),
    /// The history was thrown away (memory reloaded from disk): every watcher re-lists.
    Reset {
        oldest: Revision,
    },
}

#[derive(Debug)]
struct History {
    txns: VecDeque<Arc<TxnEvents>>,
    events: usize,
    capacity: usize,
    /// The oldest revision a watch may start from.
    oldest: Revision,
    /// The last revision published.
    current: Revision,
    /// `None` once the store has closed.
    live: Option<broadcast::Sender<Item>>,
}

/// The change feed shared by the store (watchers) and its writer (publisher).
#[derive(Debug)]
pub(crate) struct Feed {
    history: Mutex<History>,
}

impl Feed {
    /// An empty feed for a store at `revision`, keeping about `capacity` events.
    pub(crate) fn new(revision: Revision, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let (live, _) = broadcast::channel(capacity.min(LIVE_CAPACITY));
        Self {
            history: Mutex::new(History {
                txns: VecDeque::new(),
                events: 0,
                capacity,
                oldest: revision + 1,
                current: revision,
                live: Some(live),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, History> {
        // Every critical section leaves the history consistent before anything that
        // could panic, so a poisoned lock is still sound.
        self.history.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records committed transactions (in revision order) and sends them to watchers.
    pub(crate) fn publish(&self, txns: Vec<TxnEvents>) {
        let mut h = self.lock();
        for txn in txns {
            h.current = h.current.max(txn.revision);
            if txn.events.is_empty() {
                // Only deletes of absent keys: nothing to tell, nothing to keep (the
                // history is bounded by events, so empty entries would pile up).
                continue;
            }
            let txn = Arc::new(txn);
            if let Some(live) = &h.live {
                // An error only means nobody is watching.
                let _ = live.send(Item::Txn(Arc::clone(&txn)));
            }
            h.events += txn.events.len();
            h.txns.push_back(txn);
        }
        while h.events > h.capacity {
            let Some(old) = h.txns.pop_front() else { break };
            h.events -= old.events.len();
            h.oldest = old.revision + 1;
        }
    }

    /// Forgets all history (memory was reloaded at `revision`); live watchers error.
    pub(crate) fn reset(&self, revision: Revision) {
        let mut h = self.lock();
        h.txns.clear();
        h.events = 0;
        h.current = revision;
        h.oldest = revision + 1;
        if let Some(live) = &h.live {
            let _ = live.send(Item::Reset {
                oldest: revision + 1,
            });
        }
    }

    /// Ends every watcher's stream: the store has shut down.
    pub(crate) fn close(&self) {
        self.lock().live = None;
    }

    /// Forgets history before `revision`.
    pub(crate) fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        let mut h = self.lock();
        if revision > h.current {
            return Err(StoreError::FutureRevision {
                requested: revision,
                current: h.current,
            });
        }
        while h.txns.front().is_some_and(|t| t.revision < revision) {
            if let Some(old) = h.txns.pop_front() {
                h.events -= old.events.len();
            }
        }
        h.oldest = h.oldest.max(revision);
        Ok(())
    }

    /// A watcher of `prefix` from `from` (0 = the next commit).
    pub(crate) fn watch(&self, prefix: &str, from: Revision) -> Result<FeedWatcher, StoreError> {
        let h = self.lock();
        let from = if from == 0 { h.current + 1 } else { from };
        if from < h.oldest {
            return Err(StoreError::Compacted {
                requested: from,
                oldest: h.oldest,
            });
        }
        let live = h.live.as_ref().map(broadcast::Sender::subscribe);
        let start = h.txns.partition_point(|t| t.revision < from);
        let pending = h
            .txns
            .range(start..)
            .flat_map(|t| t.events.iter())
            .filter(|e| e.key().starts_with(prefix))
            .cloned()
            .collect();
        Ok(FeedWatcher {
            prefix: prefix.to_owned(),
            next_revision: from.max(h.current + 1),
            pending,
            live,
        })
    }
}

/// One watch on the feed.
pub(crate) struct FeedWatcher {
    prefix: String,
    /// Live transactions before this one were replayed already (or precede `from`).
    next_revision: Revision,
    pending: VecDeque<WatchEvent>,
    /// `None` once the stream has ended.
    live: Option<broadcast::Receiver<Item>>,
}

#[async_trait]
impl Watcher for FeedWatcher {
    async fn next(&mut self) -> Option<Result<WatchEvent, StoreError>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            let live = self.live.as_mut()?;
            let failure = match live.recv().await {
                Ok(Item::Txn(txn)) => {
                    if txn.revision >= self.next_revision {
                        self.next_revision = txn.revision + 1;
                        let prefix = &self.prefix;
                        self.pending.extend(
                            txn.events
                                .iter()
                                .filter(|e| e.key().starts_with(prefix.as_str()))
                                .cloned(),
                        );
                    }
                    continue;
                }
                Ok(Item::Reset { oldest }) => StoreError::Compacted {
                    requested: self.next_revision,
                    oldest,
                },
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        prefix = %self.prefix,
                        missed,
                        "Store watcher fell behind; it must re-list."
                    );
                    StoreError::WatchLagged
                }
                Err(broadcast::error::RecvError::Closed) => {
                    self.live = None;
                    return None;
                }
            };
            self.live = None;
            return Some(Err(failure));
        }
    }
}
