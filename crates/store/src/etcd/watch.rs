//! The change feed on etcd: one etcd watch over a key range, resumed from the next
//! undelivered revision whenever the connection drops, so a consumer sees every change
//! once and in order across etcd restarts and member failovers. When the revision to
//! resume from has been compacted meanwhile, the watcher reports
//! [`StoreError::Compacted`] and ends: the consumer re-lists (a full resync).

use std::collections::VecDeque;
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{EventType, GetOptions, WatchOptions, WatchResponse, WatchStream};

use super::{bounded, convert, from_etcd, prefix_end, range_start, to_etcd, EtcdStore};
use crate::{Revision, Store, StoreError, WatchEvent, Watcher};

/// Waits between attempts to re-open a dropped watch.
const REOPEN_BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(2));

/// How long to wait for etcd to say which revision a compacted watch could start from.
const LEARN_COMPACTION_WITHIN: Duration = Duration::from_secs(2);

pub(crate) struct EtcdWatcher {
    store: EtcdStore,
    start: Vec<u8>,
    end: Vec<u8>,
    /// The next revision to deliver: a re-opened watch starts here.
    next: Revision,
    stream: Option<WatchStream>,
    pending: VecDeque<WatchEvent>,
    finished: bool,
}

impl EtcdWatcher {
    pub(crate) async fn open(
        store: EtcdStore,
        prefix: &str,
        from: Revision,
    ) -> Result<Self, StoreError> {
        let (start, end) = (range_start(prefix), prefix_end(prefix.as_bytes()));
        let current = store.revision().await?;
        let from = if from == 0 { current + 1 } else { from };
        // etcd reports a compacted start only after the watch is created, as a separate
        // cancel; a read at that revision says so at once.
        if from <= current {
            let probe = GetOptions::new()
                .with_revision(to_etcd(from)?)
                .with_count_only()
                .with_limit(1);
            match store.get_raw(start.clone(), probe).await {
                Err(StoreError::Backend(msg)) if msg.contains("compacted") => {
                    let oldest = learn_compaction(&store, &start, &end, from).await?;
                    return Err(StoreError::Compacted {
                        requested: from,
                        oldest,
                    });
                }
                Err(e) => return Err(e),
                Ok(_) => {}
            }
        }
        let mut watcher = Self {
            stream: None,
            store,
            start,
            end,
            next: from,
            pending: VecDeque::new(),
            finished: false,
        };
        watcher.stream = Some(watcher.open_stream().await?);
        Ok(watcher)
    }

    /// Opens an etcd watch from `self.next` and waits until etcd has created it.
    async fn open_stream(&mut self) -> Result<WatchStream, StoreError> {
        let deadline = self.store.deadline;
        let options = WatchOptions::new()
            .with_range(self.end.clone())
            .with_start_revision(to_etcd(self.next)?);
        let mut client = self.store.client.watch_client();
        let mut stream = bounded(deadline, client.watch(self.start.clone(), Some(options))).await?;
        match bounded(deadline, stream.message()).await? {
            Some(first) => {
                if let Some(err) = self.absorb(first) {
                    return Err(err);
                }
                Ok(stream)
            }
            None => Err(StoreError::Unavailable(
                "etcd closed the watch as it opened".to_owned(),
            )),
        }
    }

    /// Queues a response's events; an error when it ends the watch.
    fn absorb(&mut self, resp: WatchResponse) -> Option<StoreError> {
        if resp.compact_revision() > 0 {
            return Some(StoreError::Compacted {
                requested: self.next,
                oldest: from_etcd(resp.compact_revision()),
            });
        }
        if resp.canceled() {
            return Some(StoreError::Backend(format!(
                "etcd cancelled the watch: {}",
                resp.cancel_reason()
            )));
        }
        for event in resp.events() {
            let Some(kv) = event.kv() else { continue };
            let converted = match event.event_type() {
                EventType::Put => convert(kv).map(WatchEvent::Put),
                EventType::Delete => convert(kv).map(|kv| WatchEvent::Delete {
                    key: kv.key,
                    revision: kv.mod_revision,
                }),
            };
            match converted {
                Ok(ev) => {
                    self.next = ev.revision() + 1;
                    self.pending.push_back(ev);
                }
                Err(e) => return Some(e),
            }
        }
        None
    }
}

/// The revision etcd says a watch from `from` could start at (its compaction point).
async fn learn_compaction(
    store: &EtcdStore,
    start: &[u8],
    end: &[u8],
    from: Revision,
) -> Result<Revision, StoreError> {
    let options = WatchOptions::new()
        .with_range(end.to_vec())
        .with_start_revision(to_etcd(from)?);
    let mut client = store.client.watch_client();
    let mut stream = bounded(store.deadline, client.watch(start.to_vec(), Some(options))).await?;
    let learnt = tokio::time::timeout(LEARN_COMPACTION_WITHIN, async {
        while let Ok(Some(resp)) = stream.message().await {
            if resp.compact_revision() > 0 {
                return Some(from_etcd(resp.compact_revision()));
            }
        }
        None
    })
    .await;
    // When etcd does not say, the next revision is a safe lower bound to resume from.
    Ok(learnt.ok().flatten().unwrap_or(from + 1))
}

#[async_trait]
impl Watcher for EtcdWatcher {
    async fn next(&mut self) -> Option<Result<WatchEvent, StoreError>> {
        let mut backoff = REOPEN_BACKOFF.0;
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Some(Ok(ev));
            }
            if self.finished {
                return None;
            }
            let Some(stream) = self.stream.as_mut() else {
                match self.open_stream().await {
                    Ok(stream) => {
                        tracing::info!(from = self.next, "Resumed the etcd watch.");
                        self.stream = Some(stream);
                    }
                    Err(StoreError::Unavailable(error)) => {
                        tracing::warn!(%error, from = self.next, "Could not resume the etcd watch; retrying.");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(REOPEN_BACKOFF.1);
                    }
                    Err(e) => {
                        self.finished = true;
                        return Some(Err(e));
                    }
                }
                continue;
            };
            match stream.message().await {
                Ok(Some(resp)) => {
                    if let Some(e) = self.absorb(resp) {
                        self.finished = true;
                        self.stream = None;
                        return Some(Err(e));
                    }
                }
                Ok(None) => {
                    tracing::warn!(from = self.next, "etcd closed the watch; resuming.");
                    self.stream = None;
                }
                Err(error) => {
                    tracing::warn!(%error, from = self.next, "The etcd watch failed; resuming.");
                    self.stream = None;
                }
            }
        }
    }
}
