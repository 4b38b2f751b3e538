//! The single writer thread: group commit of queued transactions.
//!
//! One thread owns the SQLite connection. It blocks for the first queued transaction,
//! drains up to `max_batch` more without waiting, and then:
//!
//! 1. evaluates each transaction's compares against the published map plus an overlay
//!    of the earlier transactions of the same batch, giving each successful one with
//!    ops its own revision;
//! 2. writes the overlay (the batch's net effect per key) and the new revision in ONE
//!    SQLite transaction, so the whole batch costs one fsync;
//! 3. only after the commit, publishes the overlay into the shared map and each
//!    transaction's events into the change feed (see `feed`);
//! 4. answers every caller.
//!
//! If the commit fails, every transaction of the batch gets the error — even conflicts,
//! since they may have been judged against writes that never landed — and memory is
//! left as it was.

use std::collections::BTreeMap;
use std::sync::{mpsc, Arc, RwLock};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::feed::{Feed, TxnEvents};
use super::{backend, load, to_sql_rev, Entry, Request, Snapshot};
use crate::{Compare, Op, Revision, StoreError, TxnOutcome};

/// A batch's net effect on each key it touched: `None` = deleted.
type Overlay = BTreeMap<String, Option<Entry>>;

type Reply = oneshot::Sender<Result<TxnOutcome, StoreError>>;

pub(super) struct Writer {
    conn: Connection,
    state: Arc<RwLock<Snapshot>>,
    feed: Arc<Feed>,
    max_batch: usize,
    metrics: telemetry::StoreMetrics,
}

impl Writer {
    pub(super) fn new(
        conn: Connection,
        state: Arc<RwLock<Snapshot>>,
        feed: Arc<Feed>,
        max_batch: usize,
    ) -> Self {
        Self {
            conn,
            state,
            feed,
            max_batch,
            metrics: telemetry::StoreMetrics::new(),
        }
    }

    /// Serves `queue` until every sender is gone and the queue is drained, then closes
    /// the database.
    pub(super) fn run(self, queue: &mpsc::Receiver<Request>) {
        let mut batch = Vec::with_capacity(self.max_batch);
        // `recv` keeps returning queued requests after the senders are dropped, so a
        // close never strands a transaction that was already submitted.
        while let Ok(first) = queue.recv() {
            batch.push(first);
            while batch.len() < self.max_batch {
                match queue.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            self.commit_batch(std::mem::take(&mut batch));
        }
        match self.conn.close() {
            Ok(()) => tracing::info!("State store closed."),
            Err((_, e)) => tracing::error!(error = %e, "State store did not close cleanly."),
        }
    }

    fn commit_batch(&self, batch: Vec<Request>) {
        let size = batch.len();
        let (overlay, answers, revision, events) = self.evaluate(batch);
        let conflicts = answers
            .iter()
            .filter(|(_, o)| matches!(o, TxnOutcome::Conflict { .. }))
            .count();
        let mut event = telemetry::StoreCommit {
            transactions: size,
            conflicts,
            revision,
            commit: None,
        };
        if overlay.is_empty() {
            // Only conflicts and op-less txns: nothing to make durable.
            event.emit(&self.metrics);
            answer(answers);
            return;
        }
        let started = std::time::Instant::now();
        match self.persist(&overlay, revision) {
            Ok(()) => {
                event.commit = Some(started.elapsed());
                self.publish(overlay, revision);
                self.feed.publish(events);
                event.emit(&self.metrics);
                answer(answers);
            }
            Err(error) => {
                tracing::error!(%error, size, "State batch failed to commit; nothing was applied.");
                self.resync();
                for (reply, _) in answers {
                    let _ = reply.send(Err(StoreError::Backend(error.to_string())));
                }
            }
        }
    }

    /// Decides every txn of the batch in queue order, without touching SQLite.
    fn evaluate(
        &self,
        batch: Vec<Request>,
    ) -> (Overlay, Vec<(Reply, TxnOutcome)>, Revision, Vec<TxnEvents>) {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        let mut revision = state.revision;
        let mut overlay = Overlay::new();
        let mut answers = Vec::with_capacity(batch.len());
        let mut events = Vec::new();
        for Request { txn, reply } in batch {
            let current = |overlay: &Overlay, key: &str| -> Option<(Revision, Revision)> {
                let entry = match overlay.get(key) {
                    Some(staged) => staged.as_ref(),
                    None => state.map.get(key),
                };
                entry.map(|e| (e.create_rev, e.mod_rev))
            };
            let failed = txn.compares.iter().find_map(|compare| match compare {
                Compare::ModRevision {
                    key,
                    revision: want,
                } => {
                    let have = current(&overlay, key).map_or(0, |(_, m)| m);
                    (have != *want).then(|| key.clone())
                }
            });
            if let Some(key) = failed {
                answers.push((reply, TxnOutcome::Conflict { key }));
                continue;
            }
            if txn.ops.is_empty() {
                answers.push((reply, TxnOutcome::Committed { revision }));
                continue;
            }
            revision += 1;
            // Each key the txn touches, and whether it existed before: its events.
            let mut touched = BTreeMap::new();
            for op in txn.ops {
                let (Op::Put { key, .. } | Op::Delete { key }) = &op;
                if !touched.contains_key(key) {
                    touched.insert(key.clone(), current(&overlay, key).is_some());
                }
                match op {
                    Op::Put { key, value } => {
                        let create_rev = current(&overlay, &key).map_or(revision, |(c, _)| c);
                        overlay.insert(
                            key,
                            Some(Entry {
                                value,
                                create_rev,
                                mod_rev: revision,
                            }),
                        );
                    }
                    Op::Delete { key } => {
                        overlay.insert(key, None);
                    }
                }
            }
            events.push(TxnEvents::new(
                revision,
                touched.iter().map(|(key, existed)| {
                    let after = overlay.get(key).and_then(Option::as_ref);
                    (key.as_str(), *existed, after)
                }),
            ));
            answers.push((reply, TxnOutcome::Committed { revision }));
        }
        (overlay, answers, revision, events)
    }

    /// Makes the batch durable: one SQLite transaction, one fsync.
    fn persist(&self, overlay: &Overlay, revision: Revision) -> Result<(), StoreError> {
        // Deferred is enough: the exclusive locking mode means no one else can write.
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(backend("begin a batch"))?;
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT INTO kv (key, value, create_rev, mod_rev) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value,
                         create_rev = excluded.create_rev, mod_rev = excluded.mod_rev",
                )
                .map_err(backend("prepare a put"))?;
            let mut delete = tx
                .prepare_cached("DELETE FROM kv WHERE key = ?1")
                .map_err(backend("prepare a delete"))?;
            for (key, staged) in overlay {
                match staged {
                    Some(e) => {
                        let (c, m) = (to_sql_rev(e.create_rev)?, to_sql_rev(e.mod_rev)?);
                        put.execute(rusqlite::params![key, &e.value[..], c, m])
                            .map_err(backend("write a key"))?;
                    }
                    None => {
                        delete.execute([key]).map_err(backend("delete a key"))?;
                    }
                }
            }
            tx.execute(
                "UPDATE meta SET value = ?1 WHERE name = 'revision'",
                [to_sql_rev(revision)?],
            )
            .map_err(backend("write the revision"))?;
        }
        // Dropping `tx` on an error above rolls the batch back.
        tx.commit().map_err(backend("commit a batch"))
    }

    fn publish(&self, overlay: Overlay, revision: Revision) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        for (key, staged) in overlay {
            match staged {
                Some(entry) => {
                    state.map.insert(key, entry);
                }
                None => {
                    state.map.remove(&key);
                }
            }
        }
        state.revision = revision;
    }

    /// After a failed commit, makes sure memory still equals disk.
    ///
    /// SQLite rolls a failed commit back, so this normally finds nothing to do; but if
    /// the database says otherwise (a commit reported as failed that did land), the
    /// disk is the truth and memory is reloaded from it.
    fn resync(&self) {
        let on_disk: Result<i64, _> =
            self.conn
                .query_row("SELECT value FROM meta WHERE name = 'revision'", [], |r| {
                    r.get(0)
                });
        let in_memory = self
            .state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .revision;
        match on_disk {
            Ok(rev) if to_sql_rev(in_memory).is_ok_and(|m| m == rev) => {}
            Ok(_) => match load(&self.conn) {
                Ok(snapshot) => {
                    tracing::warn!(
                        revision = snapshot.revision,
                        "State batch landed despite its error; memory reloaded from disk."
                    );
                    let revision = snapshot.revision;
                    *self.state.write().unwrap_or_else(|e| e.into_inner()) = snapshot;
                    self.feed.reset(revision);
                }
                Err(error) => tracing::error!(%error, "State could not be reloaded from disk."),
            },
            Err(error) => tracing::error!(%error, "State revision could not be read back."),
        }
    }
}

fn answer(answers: Vec<(Reply, TxnOutcome)>) {
    for (reply, outcome) in answers {
        // The caller may have given up (its future was dropped); the txn stands anyway.
        let _ = reply.send(Ok(outcome));
    }
}
