//! `store` owns Stevedore's durable state: a revisioned key-value space with
//! compare-and-swap transactions, shaped after etcd v3 so that an etcd backend can
//! sit behind the same trait later.
//!
//! Every key carries `create_revision` and `mod_revision`; the store keeps one global
//! revision that grows by one per committed transaction. A [`Txn`] commits only if all
//! of its [`Compare`]s hold, so two writers can never both win a race for the same
//! object. A write is acknowledged only once it is durable (fsync'd).
//!
//! A [`Store::watch`] streams the changes under a key prefix from a revision on, in
//! revision order, so a cache or another replica can follow the store without
//! re-reading it; history older than what the backend retains answers
//! [`StoreError::Compacted`] and the watcher re-lists.
//!
//! [`Objects`] is the typed layer the services write through (JSON records,
//! compare-and-swap retry with backoff, commit hooks).
//!
//! Backends: [`SqliteStore`] (embedded, the default) and, with the `etcd` feature,
//! [`etcd::EtcdStore`] (etcd v3, for several replicas). [`Leadership`] says whether this
//! process may run the controllers: always with SQLite, while it holds an etcd lease with
//! etcd ([`etcd::campaign`]).
//!
//! This crate must not know ECS: values are opaque bytes and keys are strings that the
//! services lay out.

use async_trait::async_trait;
use bytes::Bytes;

#[cfg(feature = "etcd")]
pub mod etcd;
pub mod fence;
pub mod leader;
pub mod objects;
mod prefixed;
pub mod retry;
mod sqlite;
pub use fence::{as_leader, Fenced};
pub use leader::Leadership;
pub use objects::{CommitHook, ObjectPage, Objects, ObjectsError, Step};
pub use prefixed::Prefixed;
pub use retry::RetryPolicy;
pub use sqlite::{SqliteConfig, SqliteStore};

#[cfg(feature = "testsuite")]
pub mod testsuite;

/// A point in the store's history. Revision 0 means "never existed".
pub type Revision = u64;

/// One stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    /// The key, as laid out by the owning service (for example `ecs/clusters/default`).
    pub key: String,
    /// Opaque value bytes.
    pub value: Bytes,
    /// Revision of the transaction that created this key (since its last deletion).
    pub create_revision: Revision,
    /// Revision of the transaction that last wrote this key.
    pub mod_revision: Revision,
}

/// A condition a transaction checks before it applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Compare {
    /// The key's `mod_revision` equals `revision`; `revision == 0` means the key must be absent.
    ModRevision {
        /// Key to check.
        key: String,
        /// Expected `mod_revision` (0 = absent).
        revision: Revision,
    },
}

/// One write in a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Create or replace a key.
    Put {
        /// Key to write.
        key: String,
        /// New value.
        value: Bytes,
    },
    /// Remove a key; removing an absent key is not an error.
    Delete {
        /// Key to remove.
        key: String,
    },
}

/// An atomic compare-and-swap transaction: if every compare holds, every op applies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Txn {
    /// Conditions that must all hold.
    pub compares: Vec<Compare>,
    /// Writes applied atomically when they do.
    pub ops: Vec<Op>,
}

impl Txn {
    /// An empty transaction.
    pub fn new() -> Self {
        Self::default()
    }
    /// Requires `key` to be at `revision` (0 = absent).
    #[must_use]
    pub fn when(mut self, key: impl Into<String>, revision: Revision) -> Self {
        self.compares.push(Compare::ModRevision {
            key: key.into(),
            revision,
        });
        self
    }
    /// Writes `value` at `key`.
    #[must_use]
    pub fn put(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.ops.push(Op::Put {
            key: key.into(),
            value: value.into(),
        });
        self
    }
    /// Deletes `key`.
    #[must_use]
    pub fn delete(mut self, key: impl Into<String>) -> Self {
        self.ops.push(Op::Delete { key: key.into() });
        self
    }
}

/// What a transaction did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnOutcome {
    /// All compares held; the writes are durable at this revision.
    Committed {
        /// The store revision this transaction created.
        revision: Revision,
    },
    /// A compare failed; nothing was written.
    Conflict {
        /// The first key whose compare failed.
        key: String,
    },
}

/// A page of keys in key order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangePage {
    /// Matching objects, sorted by key.
    pub items: Vec<KeyValue>,
    /// True when more keys match after the last one returned.
    pub more: bool,
    /// The store revision this page was read at.
    pub revision: Revision,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend's database failed.
    #[error("the state database failed: {0}")]
    Backend(String),
    /// The backend cannot be reached now (a remote store such as etcd is down or
    /// partitioned away); the request may succeed when retried later.
    #[error("the state store is unavailable: {0}")]
    Unavailable(String),
    /// The stored schema is newer than this binary understands.
    #[error("the state database has schema version {found}, newer than the {supported} this binary supports")]
    SchemaTooNew {
        /// Version found on disk.
        found: u32,
        /// Highest version this binary knows.
        supported: u32,
    },
    /// A controller's write was made in a term of leadership that has ended (its lease
    /// expired and another replica may lead): it was not applied. See [`fence`].
    #[error(
        "this replica's term {term} as leader has ended; the controller write was not applied"
    )]
    NotLeader {
        /// The ended term the write was made in.
        term: Revision,
    },
    /// The store has been closed (shutdown in progress).
    #[error("the state store is shut down")]
    Closed,
    /// A watch asked for history the store no longer keeps; read the current state
    /// and watch from the revision it was read at plus one.
    #[error("revision {requested} is compacted; the oldest revision still watchable is {oldest}")]
    Compacted {
        /// The revision asked for.
        requested: Revision,
        /// The oldest revision a watch may start from now.
        oldest: Revision,
    },
    /// A watcher fell so far behind the live changes that some were dropped for it;
    /// read the current state and watch again.
    #[error("the watcher fell too far behind the store's changes")]
    WatchLagged,
    /// A revision after the store's current one was given where only the past makes sense.
    #[error("revision {requested} is in the future; the store is at {current}")]
    FutureRevision {
        /// The revision asked for.
        requested: Revision,
        /// The store's current revision.
        current: Revision,
    },
}

/// One change a watch reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchEvent {
    /// The key was created or replaced; its `mod_revision` is the transaction's revision.
    Put(KeyValue),
    /// The key was deleted by the transaction at `revision`.
    Delete {
        /// The deleted key.
        key: String,
        /// The revision of the deleting transaction.
        revision: Revision,
    },
}

impl WatchEvent {
    /// The key the event is about.
    pub fn key(&self) -> &str {
        match self {
            Self::Put(kv) => &kv.key,
            Self::Delete { key, .. } => key,
        }
    }
    /// The revision of the transaction that made the change.
    pub fn revision(&self) -> Revision {
        match self {
            Self::Put(kv) => kv.mod_revision,
            Self::Delete { revision, .. } => *revision,
        }
    }
}

/// A stream of [`WatchEvent`]s, as [`Store::watch`] returns it.
#[async_trait]
pub trait Watcher: Send {
    /// The next change, in revision order (the changes of one transaction share its
    /// revision and come in key order). `None` once the store has shut down. After an
    /// error ([`StoreError::WatchLagged`], [`StoreError::Compacted`]) the stream ends:
    /// re-list and watch again.
    async fn next(&mut self) -> Option<Result<WatchEvent, StoreError>>;
}

/// A revisioned key-value store with compare-and-swap transactions.
///
/// Reads are linearizable with respect to acknowledged writes: once `txn` returns
/// `Committed`, every later read sees it.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reads one key.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;
    /// Reads up to `limit` keys starting with `prefix`, in key order, strictly after
    /// `start_after` when given.
    ///
    /// `limit == 0` returns no items (it does not mean "unlimited" as in etcd); `more`
    /// then says whether any key matches.
    async fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<RangePage, StoreError>;
    /// Counts the keys starting with `prefix`.
    async fn count(&self, prefix: &str) -> Result<usize, StoreError>;
    /// Applies `txn` atomically if its compares hold; returns once durable.
    ///
    /// A txn with at least one op gets its own new revision. A txn with no ops whose
    /// compares hold commits at the current revision without creating a new one (as
    /// etcd does).
    async fn txn(&self, txn: Txn) -> Result<TxnOutcome, StoreError>;
    /// The latest committed revision.
    async fn revision(&self) -> Result<Revision, StoreError>;
    /// Streams the changes to keys starting with `prefix` made at `from` and after,
    /// first those already committed, then live ones. `from == 0` means "from the next
    /// commit on". A transaction whose op deletes an absent key reports nothing for it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Compacted`] when `from` is older than the history the store
    /// keeps: read the current state, then watch from its revision plus one.
    async fn watch(&self, prefix: &str, from: Revision) -> Result<Box<dyn Watcher>, StoreError>;
    /// Forgets the change history before `revision`: later watches from an older
    /// revision answer [`StoreError::Compacted`]. Live watchers are not affected.
    ///
    /// # Errors
    ///
    /// [`StoreError::FutureRevision`] when `revision` is after the current revision.
    async fn compact(&self, revision: Revision) -> Result<(), StoreError>;
}
