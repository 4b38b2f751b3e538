//! The typed layer every service writes through: JSON records under string keys, read
//! with their revision and written with compare-and-swap.
//!
//! [`Objects`] wraps an `Arc<dyn Store>` and adds
//! * typed reads ([`Objects::get`], [`Objects::list`], the cursor-paged
//!   [`Objects::list_page`]) that decode JSON and name the key that failed to decode;
//! * [`Objects::retry`], the read-modify-commit loop: each attempt re-reads what it
//!   needs and returns a [`Step`]; a lost race waits (see [`crate::retry`]) and runs the
//!   attempt again;
//! * commit hooks: a caller that must observe its own writes (a cache of what this
//!   process changed) registers a [`CommitHook`], called with the ops and revision of
//!   every transaction committed through this `Objects` (and its clones).
//!
//! Errors are [`ObjectsError`]; each service maps it into its own error enum with a
//! `From` impl and names its layer `Objects<ServiceError>`: every method then answers
//! the service's error, so `?` works at call sites and closures given to
//! [`Objects::retry`] need no annotations.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use bytes::Bytes;
use rand::Rng;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::retry::{Attempts, RetryPolicy, Verdict};
use crate::{KeyValue, Op, Revision, Store, StoreError, Txn, TxnOutcome};

/// How many keys one range read asks for when a read walks a whole prefix.
const RANGE_PAGE: usize = 1024;

/// Why a typed store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ObjectsError {
    /// The store itself failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A value could not be encoded as JSON.
    #[error("encoding failed: {source}")]
    Encode {
        /// What serde_json said.
        source: serde_json::Error,
    },
    /// A stored value does not decode as the record its key holds.
    #[error("stored object {key} is unreadable: {source}")]
    Decode {
        /// The key whose value is unreadable.
        key: String,
        /// What serde_json said.
        source: serde_json::Error,
    },
    /// Compare-and-swap kept losing to concurrent writers.
    #[error("too many concurrent updates to {what}")]
    Contention {
        /// The object the write was about (as given to [`Objects::retry`]).
        what: String,
    },
}

/// What one attempt of a write decided.
pub enum Step<R> {
    /// Nothing to write; answer with this.
    Done(R),
    /// Write this, then answer with the result.
    Commit(Txn, R),
}

/// Called after every transaction committed through an [`Objects`], with its ops and
/// the revision it created. Runs on the committing task: keep it short and never block.
pub type CommitHook = Arc<dyn Fn(&[Op], Revision) + Send + Sync>;

/// One page of decoded objects read in key order, and where the next page starts.
#[derive(Debug)]
pub struct ObjectPage<T> {
    /// `(key, record, mod_revision)` in key order.
    pub items: Vec<(String, T, Revision)>,
    /// The last key of this page when more keys follow; pass it as `after` to read on.
    pub next: Option<String>,
    /// The store revision the page was read at.
    pub revision: Revision,
}

/// Typed access to a [`Store`], answering errors as `E`. Cheap to clone; clones share
/// hooks.
pub struct Objects<E = ObjectsError> {
    store: Arc<dyn Store>,
    hooks: Arc<[CommitHook]>,
    policy: RetryPolicy,
    error: PhantomData<fn() -> E>,
}

impl<E> Clone for Objects<E> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            hooks: Arc::clone(&self.hooks),
            policy: self.policy,
            error: PhantomData,
        }
    }
}

impl<E> std::fmt::Debug for Objects<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Objects")
            .field("hooks", &self.hooks.len())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<E: From<ObjectsError>> Objects<E> {
    /// Wraps a store, with no hooks and the default retry policy.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            hooks: Arc::new([]),
            policy: RetryPolicy::default(),
            error: PhantomData,
        }
    }

    /// Adds a hook called after every commit (see [`CommitHook`]).
    #[must_use]
    pub fn with_hook(mut self, hook: CommitHook) -> Self {
        let mut hooks: Vec<CommitHook> = self.hooks.iter().cloned().collect();
        hooks.push(hook);
        self.hooks = hooks.into();
        self
    }

    /// Replaces the retry policy.
    #[must_use]
    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The store itself, for raw reads.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// A shared handle on the store itself.
    pub fn shared_store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }

    /// Reads and decodes one object with its `mod_revision`.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<(T, Revision)>, E> {
        match self.store.get(key).await.map_err(ObjectsError::from)? {
            None => Ok(None),
            Some(kv) => Ok(Some((decode(&kv.key, &kv.value)?, kv.mod_revision))),
        }
    }

    /// Reads one value's raw bytes with its `mod_revision`.
    pub async fn get_raw(&self, key: &str) -> Result<Option<(Bytes, Revision)>, E> {
        Ok(self
            .store
            .get(key)
            .await
            .map_err(ObjectsError::from)?
            .map(|kv| (kv.value, kv.mod_revision)))
    }

    /// Reads and decodes every object under `prefix`, in key order.
    pub async fn list<T: DeserializeOwned>(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, T, Revision)>, E> {
        self.range_all(prefix)
            .await?
            .into_iter()
            .map(|kv| {
                let value = decode(&kv.key, &kv.value)?;
                Ok((kv.key, value, kv.mod_revision))
            })
            .collect()
    }

    /// Reads and decodes up to `limit` objects under `prefix` strictly after the key
    /// `after`, in key order, with the cursor of the next page.
    pub async fn list_page<T: DeserializeOwned>(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ObjectPage<T>, E> {
        let page = self
            .store
            .range(prefix, after, limit)
            .await
            .map_err(ObjectsError::from)?;
        let next = if page.more {
            page.items.last().map(|kv| kv.key.clone())
        } else {
            None
        };
        let items = page
            .items
            .into_iter()
            .map(|kv| {
                let value = decode(&kv.key, &kv.value)?;
                Ok((kv.key, value, kv.mod_revision))
            })
            .collect::<Result<_, E>>()?;
        Ok(ObjectPage {
            items,
            next,
            revision: page.revision,
        })
    }

    /// Every key under `prefix` with its `mod_revision`, in key order (for markers
    /// whose value says nothing).
    pub async fn keys(&self, prefix: &str) -> Result<Vec<(String, Revision)>, E> {
        Ok(self
            .range_all(prefix)
            .await?
            .into_iter()
            .map(|kv| (kv.key, kv.mod_revision))
            .collect())
    }

    /// Every key and undecoded value under `prefix`, in key order, read page by page.
    pub async fn range_all(&self, prefix: &str) -> Result<Vec<KeyValue>, E> {
        Ok(self.range_all_at(prefix).await?.0)
    }

    /// [`Objects::range_all`], with the store revision of the last page read. Pages
    /// are separate reads: a large prefix may mix revisions up to that one, so writers
    /// that need one consistent view compare-and-swap on a key they all rewrite.
    pub async fn range_all_at(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), E> {
        let mut out: Vec<KeyValue> = Vec::new();
        loop {
            let after = out.last().map(|kv| kv.key.as_str());
            let page = self
                .store
                .range(prefix, after, RANGE_PAGE)
                .await
                .map_err(ObjectsError::from)?;
            out.extend(page.items);
            if !page.more {
                return Ok((out, page.revision));
            }
        }
    }

    /// Commits `txn`; `Ok(false)` when a compare failed.
    pub async fn commit(&self, txn: Txn) -> Result<bool, E> {
        Ok(self.commit_at(txn).await?.is_some())
    }

    /// Commits `txn`; the revision it created (every key it wrote now has that
    /// `mod_revision`), or `None` when a compare failed. Hooks run after a commit.
    pub async fn commit_at(&self, txn: Txn) -> Result<Option<Revision>, E> {
        // The hooks need the ops after the store has consumed the txn; only pay for the
        // copy when someone listens.
        let ops = (!self.hooks.is_empty()).then(|| txn.ops.clone());
        match self.store.txn(txn).await.map_err(ObjectsError::from)? {
            TxnOutcome::Committed { revision } => {
                if let Some(ops) = ops {
                    for hook in self.hooks.iter() {
                        hook(&ops, revision);
                    }
                }
                Ok(Some(revision))
            }
            TxnOutcome::Conflict { .. } => Ok(None),
        }
    }

    /// Runs `attempt` until it commits: each attempt re-reads what it needs and returns
    /// either a finished result or a transaction plus the result to give once it
    /// commits. The first attempt runs at once; lost races back off with jitter, and the
    /// loop gives up with [`ObjectsError::Contention`] as [`crate::retry`] describes.
    pub async fn retry<R, F, Fut>(&self, what: &str, mut attempt: F) -> Result<R, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Step<R>, E>>,
    {
        let mut attempts = Attempts::new(self.policy);
        loop {
            let (txn, result) = match attempt().await? {
                Step::Done(r) => return Ok(r),
                Step::Commit(txn, r) => (txn, r),
            };
            if self.commit(txn).await? {
                return Ok(result);
            }
            let revision = self.store.revision().await.map_err(ObjectsError::from)?;
            let jitter: f64 = rand::thread_rng().gen();
            match attempts.conflict(revision, jitter) {
                Verdict::Retry(wait) => {
                    tracing::debug!(
                        object = what,
                        conflicts = attempts.conflicts(),
                        wait_us = wait.as_micros() as u64,
                        "Compare-and-swap lost a race; retrying."
                    );
                    tokio::time::sleep(wait).await;
                }
                Verdict::GiveUp => {
                    tracing::warn!(
                        object = what,
                        conflicts = attempts.conflicts(),
                        "Compare-and-swap kept losing; giving up."
                    );
                    return Err(ObjectsError::Contention {
                        what: what.to_owned(),
                    }
                    .into());
                }
            }
        }
    }
}

/// JSON-encodes a value for the store.
pub fn encode<T: Serialize>(value: &T) -> Result<Bytes, ObjectsError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|source| ObjectsError::Encode { source })
}

/// Decodes a stored JSON value; a value that does not decode names its key.
pub fn decode<T: DeserializeOwned>(key: &str, value: &[u8]) -> Result<T, ObjectsError> {
    serde_json::from_slice(value).map_err(|source| ObjectsError::Decode {
        key: key.to_owned(),
        source,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::{SqliteConfig, SqliteStore};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    fn fixture() -> (tempfile::TempDir, Objects<TestError>) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(SqliteConfig::new(dir.path().join("s.db"))).unwrap();
        (dir, Objects::new(Arc::new(store)))
    }

    #[derive(Debug, thiserror::Error)]
    enum TestError {
        #[error("{0}")]
        Objects(#[from] ObjectsError),
    }

    async fn increment(objects: &Objects<TestError>, key: &str) -> Result<u64, TestError> {
        objects
            .retry("counter", || async {
                let (n, rev) = objects.get::<u64>(key).await?.unwrap_or((0, 0));
                Ok(Step::Commit(
                    Txn::new().when(key, rev).put(key, encode(&(n + 1))?),
                    n + 1,
                ))
            })
            .await
    }

    #[tokio::test(start_paused = true)]
    async fn uncontended_retry_commits_first_time_without_sleeping() {
        let (_dir, objects) = fixture();
        let before = tokio::time::Instant::now();
        for want in 1..=20 {
            assert_eq!(increment(&objects, "c").await.unwrap(), want);
        }
        // With time paused, any sleep would have advanced the clock.
        assert_eq!(tokio::time::Instant::now(), before);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_race_backs_off_then_commits() {
        let (_dir, objects) = fixture();
        objects.commit(Txn::new().put("c", "0")).await.unwrap();
        let calls = AtomicU32::new(0);
        let before = tokio::time::Instant::now();
        let out = objects
            .retry("c", || async {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                let (_, rev) = objects.get::<u64>("c").await?.unwrap();
                if n == 0 {
                    // Someone else commits between our read and our commit.
                    objects.commit(Txn::new().put("c", "5")).await?;
                }
                Ok(Step::Commit(Txn::new().when("c", rev).put("c", "6"), n))
            })
            .await;
        assert_eq!(out.unwrap(), 1);
        assert!(tokio::time::Instant::now() > before);
        assert_eq!(objects.get::<u64>("c").await.unwrap().unwrap().0, 6);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stale_read_that_never_wins_gives_up_with_contention() {
        let (_dir, objects) = fixture();
        objects.commit(Txn::new().put("c", "0")).await.unwrap();
        let out = objects
            .retry("stale thing", || async {
                // Always compares against a revision that is not the key's.
                Ok(Step::Commit(Txn::new().when("c", 999).put("c", "1"), ()))
            })
            .await;
        match out {
            Err(TestError::Objects(ObjectsError::Contention { what })) => {
                assert_eq!(what, "stale thing");
            }
            other => panic!("expected contention, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn done_steps_write_nothing() {
        let (_dir, objects) = fixture();
        let out = objects.retry("x", || async { Ok(Step::Done(7)) }).await;
        assert_eq!(out.unwrap(), 7);
        assert_eq!(objects.store().revision().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn hooks_see_every_commit_with_its_ops_and_revision() {
        let (_dir, objects) = fixture();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let objects = objects.with_hook(Arc::new(move |ops: &[Op], rev| {
            sink.lock().unwrap().push((ops.len(), rev));
        }));
        let clone = objects.clone();
        let r1 = objects
            .commit_at(Txn::new().put("a", "1").put("b", "2"))
            .await
            .unwrap()
            .unwrap();
        // A conflict is not a commit.
        assert!(!clone
            .commit(Txn::new().when("a", 0).put("a", "x"))
            .await
            .unwrap());
        let r2 = clone
            .commit_at(Txn::new().delete("a"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(*seen.lock().unwrap(), vec![(2, r1), (1, r2)]);
    }

    #[tokio::test]
    async fn typed_reads_decode_and_name_the_unreadable_key() {
        let (_dir, objects) = fixture();
        let mut txn = Txn::new().put("p/bad", "not json");
        for i in 0..5u32 {
            txn = txn.put(format!("p/{i}"), encode(&i).unwrap());
        }
        objects.commit(txn).await.unwrap();
        let page = objects.list_page::<u32>("p/", None, 3).await.unwrap();
        assert_eq!(
            page.items.iter().map(|(_, v, _)| *v).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert_eq!(page.next.as_deref(), Some("p/2"));
        let page = objects
            .list_page::<u32>("p/", page.next.as_deref(), 2)
            .await
            .unwrap();
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.next.as_deref(), Some("p/4"));
        match objects.list::<u32>("p/").await {
            Err(TestError::Objects(e @ ObjectsError::Decode { .. })) => {
                assert!(e
                    .to_string()
                    .starts_with("stored object p/bad is unreadable"));
            }
            other => panic!("expected a decode error, got {other:?}"),
        }
        let keys = objects.keys("p/").await.unwrap();
        assert_eq!(keys.len(), 6);
        assert_eq!(objects.get::<u32>("p/3").await.unwrap().unwrap().0, 3);
        assert!(objects.get::<u32>("p/none").await.unwrap().is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_increments_through_retry_lose_nothing() {
        let (_dir, objects) = fixture();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let objects = objects.clone();
            tasks.spawn(async move {
                for _ in 0..10 {
                    increment(&objects, "n").await.unwrap();
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        assert_eq!(objects.get::<u64>("n").await.unwrap().unwrap().0, 80);
    }
}
