//! Fencing: a controller's writes commit only while the term it runs in still holds.
//!
//! Stopping the loops when a term ends ([`Leadership::lost`](crate::Leadership::lost))
//! is not enough on its own: a replica paused (GC, swap, a stopped VM) past its lease
//! can wake up and commit a write it decided as leader, after another replica has
//! started leading. So every write a controller makes carries its term, and the store
//! checks the term in the same transaction as the write: [`Fenced`] adds to each
//! transaction a compare on the election key's revision. The election key is created
//! once per term, bound to the leader's lease, and never rewritten, so its
//! `mod_revision` *is* the term (see `etcd::campaign`). When the lease expires etcd
//! deletes the key and the next leader creates it again at a later revision: the old
//! term's compare fails and its write is refused with [`StoreError::NotLeader`],
//! atomically, whatever the replicas' clocks say.
//!
//! The term travels with the controller's task ([`as_leader`], a tokio task-local), so
//! the API requests the same replica serves (on other tasks) are never fenced: any
//! replica serves the APIs whether or not it leads. A task a controller spawns does not
//! inherit a task-local, so controllers spawn with [`spawn`], which carries the term
//! into the new task (a scan a leader resumes, a replication it starts): such a task
//! outlives its spawner and may still be writing after the term ended.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;

use crate::leader::Term;
use crate::{Compare, RangePage, Revision, Store, StoreError, Txn, TxnOutcome, Watcher};

tokio::task_local! {
    static TERM: Term;
}

/// Runs `work` as the leader of `term`: the transactions it commits through a
/// [`Fenced`] store apply only while `term` is still the current one.
pub async fn as_leader<F: Future>(term: Term, work: F) -> F::Output {
    TERM.scope(term, work).await
}

/// The term the current task acts in, if it runs under [`as_leader`].
pub fn current_term() -> Option<Term> {
    TERM.try_with(|term| *term).ok()
}

/// `tokio::spawn` for code that controllers may call: the new task acts in the term of
/// the task that spawns it (when there is one), so its writes are fenced like its
/// spawner's. Spawned from an API request (no term), it runs unfenced, as the request.
pub fn spawn<F>(work: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match current_term() {
        Some(term) => tokio::spawn(as_leader(term, work)),
        None => tokio::spawn(work),
    }
}

/// A store whose transactions made under [`as_leader`] also require the election key
/// to be at the term's revision. Everything else passes through unchanged.
pub struct Fenced {
    inner: Arc<dyn Store>,
    election_key: String,
}

impl Fenced {
    /// Fences `inner`'s transactions by `election_key`, a key of `inner`'s own keyspace
    /// (the one `etcd::campaign` holds).
    pub fn new(inner: Arc<dyn Store>, election_key: impl Into<String>) -> Self {
        Self {
            inner,
            election_key: election_key.into(),
        }
    }
}

#[async_trait]
impl Store for Fenced {
    async fn get(&self, key: &str) -> Result<Option<crate::KeyValue>, StoreError> {
        self.inner.get(key).await
    }

    async fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<RangePage, StoreError> {
        self.inner.range(prefix, start_after, limit).await
    }

    async fn count(&self, prefix: &str) -> Result<usize, StoreError> {
        self.inner.count(prefix).await
    }

    async fn txn(&self, mut txn: Txn) -> Result<TxnOutcome, StoreError> {
        let Some(term) = current_term() else {
            return self.inner.txn(txn).await;
        };
        // First, so that a stale term is what a failing txn reports (the backends name
        // the first compare that failed) rather than a data conflict worth a retry.
        txn.compares.insert(
            0,
            Compare::ModRevision {
                key: self.election_key.clone(),
                revision: term,
            },
        );
        match self.inner.txn(txn).await? {
            TxnOutcome::Conflict { key } if key == self.election_key => {
                tracing::warn!(
                    term,
                    "A controller write of an ended term was refused (another replica leads)."
                );
                Err(StoreError::NotLeader { term })
            }
            outcome => Ok(outcome),
        }
    }

    async fn revision(&self) -> Result<Revision, StoreError> {
        self.inner.revision().await
    }

    async fn watch(&self, prefix: &str, from: Revision) -> Result<Box<dyn Watcher>, StoreError> {
        self.inner.watch(prefix, from).await
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.inner.compact(revision).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SqliteConfig, SqliteStore};

    async fn committed(store: &dyn Store, txn: Txn) -> Revision {
        match store.txn(txn).await {
            Ok(TxnOutcome::Committed { revision }) => revision,
            other => panic!("expected a commit, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn writes_of_the_current_term_commit_and_of_an_ended_one_do_not() {
        let dir = tempfile::tempdir().expect("temp dir");
        let raw: Arc<dyn Store> =
            Arc::new(SqliteStore::open(SqliteConfig::new(dir.path().join("s.db"))).expect("open"));
        let fenced = Fenced::new(raw.clone(), "_leader");
        let term = committed(&*raw, Txn::new().when("_leader", 0).put("_leader", "a")).await;

        let wrote = as_leader(term, fenced.txn(Txn::new().put("x", "1"))).await;
        assert!(
            matches!(wrote, Ok(TxnOutcome::Committed { .. })),
            "{wrote:?}"
        );

        // Another term begins (the old lease expired and another replica took the key).
        committed(&*raw, Txn::new().delete("_leader")).await;
        let next = committed(&*raw, Txn::new().when("_leader", 0).put("_leader", "b")).await;
        let stale = as_leader(term, fenced.txn(Txn::new().put("x", "2"))).await;
        assert!(
            matches!(stale, Err(StoreError::NotLeader { term: t }) if t == term),
            "{stale:?}"
        );
        let now = as_leader(next, fenced.txn(Txn::new().put("x", "3"))).await;
        assert!(matches!(now, Ok(TxnOutcome::Committed { .. })), "{now:?}");
        // Outside any term (an API request) writes are not fenced.
        let api = fenced.txn(Txn::new().put("y", "1")).await;
        assert!(matches!(api, Ok(TxnOutcome::Committed { .. })), "{api:?}");
        let x = raw.get("x").await.expect("get").expect("x");
        assert_eq!(&x.value[..], b"3", "the stale write must not have applied");
    }

    /// A task a controller spawned is still pending when the term ends (the replica was
    /// deposed): its write must be refused, as the controller's own would be.
    #[tokio::test]
    async fn a_task_spawned_by_a_controller_is_fenced_by_its_term() {
        let dir = tempfile::tempdir().expect("temp dir");
        let raw: Arc<dyn Store> =
            Arc::new(SqliteStore::open(SqliteConfig::new(dir.path().join("s.db"))).expect("open"));
        let fenced: Arc<dyn Store> = Arc::new(Fenced::new(raw.clone(), "_leader"));
        let term = committed(&*raw, Txn::new().when("_leader", 0).put("_leader", "a")).await;

        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let store = fenced.clone();
        // Spawned while acting in `term` (what a controller's loop does).
        let pending = TERM.sync_scope(term, || {
            spawn(async move {
                let _ = wait.await;
                store.txn(Txn::new().put("x", "stale")).await
            })
        });
        // The term ends and another begins before the spawned task writes.
        committed(&*raw, Txn::new().delete("_leader")).await;
        committed(&*raw, Txn::new().when("_leader", 0).put("_leader", "b")).await;
        let _ = go.send(());
        let wrote = pending.await.expect("the spawned task ran");
        assert!(
            matches!(wrote, Err(StoreError::NotLeader { term: t }) if t == term),
            "{wrote:?}"
        );
        assert!(
            raw.get("x").await.expect("get").is_none(),
            "nothing applied"
        );

        // Spawned outside any term (an API request), the task is not fenced.
        let store = fenced.clone();
        let api = spawn(async move { store.txn(Txn::new().put("y", "1")).await })
            .await
            .expect("the spawned task ran");
        assert!(matches!(api, Ok(TxnOutcome::Committed { .. })), "{api:?}");
    }

    #[tokio::test]
    async fn a_data_conflict_stays_a_conflict() {
        let dir = tempfile::tempdir().expect("temp dir");
        let raw: Arc<dyn Store> =
            Arc::new(SqliteStore::open(SqliteConfig::new(dir.path().join("s.db"))).expect("open"));
        let fenced = Fenced::new(raw.clone(), "_leader");
        let term = committed(&*raw, Txn::new().put("_leader", "a")).await;
        committed(&*raw, Txn::new().put("x", "1")).await;
        let raced = as_leader(term, fenced.txn(Txn::new().when("x", 0).put("x", "2"))).await;
        assert!(
            matches!(&raced, Ok(TxnOutcome::Conflict { key }) if key == "x"),
            "{raced:?}"
        );
    }
}
