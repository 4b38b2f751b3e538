//! The embedded SQLite backend: Stevedore's default state store.
//!
//! It owns two copies of the keyspace that are kept equal:
//!
//! * the SQLite database (WAL, `synchronous=FULL`), which is the durable truth;
//! * an in-memory `BTreeMap` of every key, loaded at open, which serves every read
//!   (`get`, `range`, `count`, `revision`) without touching SQLite.
//!
//! All writes funnel through one writer thread (see `writer`), which group-commits
//! whatever transactions are queued — one fsync per batch — and only then publishes
//! the batch to the in-memory map and answers the callers. Readers therefore never see
//! a write that is not yet durable, and every acknowledged write is visible to every
//! later read.
//!
//! Semantics worth knowing:
//!
//! * A transaction with no ops whose compares hold answers `Committed` with the
//!   *current* revision and creates no new one (as etcd does). Every transaction with
//!   at least one op gets its own new revision, even if its ops change nothing (for
//!   example deleting an absent key).
//! * `range(.., limit = 0)` returns no items; `more` says whether any key matched.
//! * The database is opened in SQLite's exclusive locking mode, so a second store (in
//!   this or another process) on the same file fails to open instead of silently
//!   diverging from this one's in-memory copy.
//! * The request queue is unbounded: callers are never blocked by a send, and the
//!   writer drains up to `max_batch` per fsync, so a burst costs memory, not errors.
//! * Shutdown: [`SqliteStore::close`] drains the queued transactions, stops the writer
//!   and closes the database; later `txn` calls return [`StoreError::Closed`]. Dropping
//!   the store does the same but blocks the dropping thread until the writer has
//!   finished its current batch. Reads keep answering from memory after close.
//! * Watches are served from memory by the change feed (see `feed`): the last
//!   [`SqliteConfig::watch_history`] events or so, then live ones. History does not
//!   survive a restart: after opening, the oldest watchable revision is the next one.
//!   Closing the store ends every watcher's stream.

mod feed;
mod schema;
mod writer;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::{KeyValue, RangePage, Revision, Store, StoreError, Txn, TxnOutcome, Watcher};
use feed::Feed;

pub(crate) use schema::SCHEMA_VERSION;

/// Default for [`SqliteConfig::max_batch`].
const DEFAULT_MAX_BATCH: usize = 256;
/// Default for [`SqliteConfig::watch_history`].
const DEFAULT_WATCH_HISTORY: usize = 10_000;

/// Where and how to open a [`SqliteStore`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqliteConfig {
    /// The database file; its directory must exist. `-wal` and `-shm` files live beside it.
    pub path: PathBuf,
    /// The most transactions the writer commits with one fsync (values below 1 count as 1).
    pub max_batch: usize,
    /// About how many recent change events watches can replay from memory; a watch
    /// from further back answers [`StoreError::Compacted`].
    pub watch_history: usize,
}

impl SqliteConfig {
    /// A configuration for the database at `path`, with default tuning.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            max_batch: DEFAULT_MAX_BATCH,
            watch_history: DEFAULT_WATCH_HISTORY,
        }
    }
}

/// One key's state in memory.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) value: Bytes,
    pub(crate) create_rev: Revision,
    pub(crate) mod_rev: Revision,
}

/// The published, durable state that readers see.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub(crate) map: BTreeMap<String, Entry>,
    pub(crate) revision: Revision,
}

/// A transaction waiting for the writer, with the channel its outcome goes back on.
pub(crate) struct Request {
    pub(crate) txn: Txn,
    pub(crate) reply: oneshot::Sender<Result<TxnOutcome, StoreError>>,
}

/// The SQLite-backed [`Store`]. See the module docs for its design and semantics.
pub struct SqliteStore {
    state: Arc<RwLock<Snapshot>>,
    feed: Arc<Feed>,
    /// `None` once closed. Held only for the (non-blocking) send, never across an await.
    requests: Mutex<Option<mpsc::Sender<Request>>>,
    /// Completes when the writer thread has closed the database.
    stopped: Mutex<Option<oneshot::Receiver<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

/// Maps a rusqlite error to [`StoreError::Backend`], saying what we were doing.
pub(crate) fn backend(what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| StoreError::Backend(format!("could not {what}: {e}"))
}

/// SQLite stores integers as i64; revisions are u64 that never get near i64::MAX.
pub(crate) fn to_sql_rev(rev: Revision) -> Result<i64, StoreError> {
    i64::try_from(rev).map_err(|_| StoreError::Backend(format!("revision {rev} overflows")))
}

fn from_sql_rev(rev: i64) -> Result<Revision, StoreError> {
    Revision::try_from(rev)
        .map_err(|_| StoreError::Backend(format!("the database holds a negative revision {rev}")))
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `config.path`, migrates its schema,
    /// loads the whole keyspace into memory and starts the writer thread.
    ///
    /// This is synchronous and does blocking I/O proportional to the database size;
    /// call it at startup or from `spawn_blocking`.
    ///
    /// # Errors
    ///
    /// [`StoreError::SchemaTooNew`] if a newer binary wrote the database;
    /// [`StoreError::Backend`] if SQLite fails, including when another store already
    /// holds the database open.
    pub fn open(config: SqliteConfig) -> Result<Self, StoreError> {
        let mut conn = Connection::open(&config.path).map_err(backend("open the database"))?;
        configure(&conn)?;
        let from_version = schema::migrate(&mut conn)?;
        let snapshot = load(&conn)?;
        let (revision, keys) = (snapshot.revision, snapshot.map.len());
        let state = Arc::new(RwLock::new(snapshot));
        let feed = Arc::new(Feed::new(revision, config.watch_history));

        let (requests, queue) = mpsc::channel();
        let (stopped_tx, stopped) = oneshot::channel();
        let writer = writer::Writer::new(
            conn,
            Arc::clone(&state),
            Arc::clone(&feed),
            config.max_batch.max(1),
        );
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                writer.run(&queue);
                // The connection is closed by now; `close` waits for this.
                let _ = stopped_tx.send(());
            })
            .map_err(|e| StoreError::Backend(format!("could not start the writer thread: {e}")))?;

        tracing::info!(
            path = %config.path.display(),
            revision,
            keys,
            schema_from = from_version,
            schema = SCHEMA_VERSION,
            "State store opened."
        );
        Ok(Self {
            state,
            feed,
            requests: Mutex::new(Some(requests)),
            stopped: Mutex::new(Some(stopped)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Stops accepting transactions, lets the writer commit and answer every one
    /// already queued, and waits until the database is closed.
    ///
    /// Later `txn` calls return [`StoreError::Closed`]; reads keep answering from memory.
    /// Calling it again is harmless.
    pub async fn close(&self) {
        // Dropping the last sender lets the writer drain the queue and exit.
        drop(
            self.requests
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        );
        let stopped = self
            .stopped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(stopped) = stopped {
            // An error means the writer thread died without signalling; join reports it.
            let _ = stopped.await;
        }
        // The writer has signalled (or died), so this join does not wait on I/O.
        self.join_writer();
        self.feed.close();
    }

    fn join_writer(&self) {
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            if thread.join().is_err() {
                tracing::error!("State store writer thread panicked.");
            }
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Snapshot> {
        // The writer's critical section is plain map inserts and removes, which cannot
        // panic short of allocation failure (an abort), so a poisoned lock is still sound.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        drop(
            self.requests
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        );
        // Waits for the writer's current batch: the database must be closed before
        // anyone (a test, a restarted server) opens it again.
        self.join_writer();
        self.feed.close();
    }
}

/// Per-connection settings. Order matters: the locking mode must be set before WAL
/// is first used so that SQLite never creates the shared-memory index.
fn configure(conn: &Connection) -> Result<(), StoreError> {
    // Only a store that is still shutting down may hold the file; don't wait long for it.
    conn.busy_timeout(std::time::Duration::from_secs(1))
        .map_err(backend("set the busy timeout"))?;
    conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
        .map_err(backend("set the locking mode"))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(backend("switch to WAL"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!(
            "the database refused WAL mode (got {mode})"
        )));
    }
    // FULL: every commit fsyncs the WAL, so an acknowledged txn survives power loss.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(backend("set synchronous=FULL"))?;
    Ok(())
}

/// Reads the whole keyspace and the global revision.
fn load(conn: &Connection) -> Result<Snapshot, StoreError> {
    let revision: i64 = conn
        .query_row(
            "SELECT value FROM meta WHERE name = 'revision'",
            [],
            |row| row.get(0),
        )
        .map_err(backend("read the revision"))?;
    let mut snapshot = Snapshot {
        map: BTreeMap::new(),
        revision: from_sql_rev(revision)?,
    };
    let mut stmt = conn
        .prepare("SELECT key, value, create_rev, mod_rev FROM kv")
        .map_err(backend("read the keyspace"))?;
    let mut rows = stmt.query([]).map_err(backend("read the keyspace"))?;
    while let Some(row) = rows.next().map_err(backend("read the keyspace"))? {
        let key: String = row.get(0).map_err(backend("read a key"))?;
        let value: Vec<u8> = row.get(1).map_err(backend("read a value"))?;
        let create_rev = from_sql_rev(row.get(2).map_err(backend("read a revision"))?)?;
        let mod_rev = from_sql_rev(row.get(3).map_err(backend("read a revision"))?)?;
        snapshot.map.insert(
            key,
            Entry {
                value: Bytes::from(value),
                create_rev,
                mod_rev,
            },
        );
    }
    Ok(snapshot)
}

fn key_value(key: &str, entry: &Entry) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: entry.value.clone(),
        create_revision: entry.create_rev,
        mod_revision: entry.mod_rev,
    }
}

/// Keys starting with `prefix`, strictly after `start_after` when given, in order.
fn matching<'a>(
    map: &'a BTreeMap<String, Entry>,
    prefix: &'a str,
    start_after: Option<&'a str>,
) -> impl Iterator<Item = (&'a String, &'a Entry)> + 'a {
    let lower = match start_after {
        Some(after) if after >= prefix => Bound::Excluded(after),
        _ => Bound::Included(prefix),
    };
    map.range::<str, _>((lower, Bound::Unbounded))
        .take_while(move |(k, _)| k.starts_with(prefix))
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        Ok(self.read().map.get(key).map(|e| key_value(key, e)))
    }

    async fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<RangePage, StoreError> {
        let state = self.read();
        let mut iter = matching(&state.map, prefix, start_after);
        let items: Vec<KeyValue> = iter
            .by_ref()
            .take(limit)
            .map(|(k, e)| key_value(k, e))
            .collect();
        let more = iter.next().is_some();
        Ok(RangePage {
            items,
            more,
            revision: state.revision,
        })
    }

    async fn count(&self, prefix: &str) -> Result<usize, StoreError> {
        let state = self.read();
        if prefix.is_empty() {
            return Ok(state.map.len());
        }
        Ok(matching(&state.map, prefix, None).count())
    }

    async fn txn(&self, txn: Txn) -> Result<TxnOutcome, StoreError> {
        let (reply, outcome) = oneshot::channel();
        {
            let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
            let sender = requests.as_ref().ok_or(StoreError::Closed)?;
            sender
                .send(Request { txn, reply })
                .map_err(|_| StoreError::Closed)?;
        }
        // The writer answers every txn it takes from the queue before it exits, so a
        // dropped reply means it stopped (or panicked) without committing this one.
        outcome.await.map_err(|_| StoreError::Closed)?
    }

    async fn revision(&self) -> Result<Revision, StoreError> {
        Ok(self.read().revision)
    }

    async fn watch(&self, prefix: &str, from: Revision) -> Result<Box<dyn Watcher>, StoreError> {
        Ok(Box::new(self.feed.watch(prefix, from)?))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.feed.compact(revision)
    }
}
