//! Behaviour specific to `SqliteStore`: persistence across reopen, schema versioning,
//! exclusive ownership of the file, shutdown, and failed commits.

mod common;

use common::{commit, open_with, temp};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use store::{SqliteConfig, SqliteStore, Store, StoreError, Txn, TxnOutcome};
use tokio::task::JoinSet;

fn open(path: &Path) -> SqliteStore {
    open_with(path, |_| {})
}

fn raw(path: &Path) -> rusqlite::Connection {
    match rusqlite::Connection::open(path) {
        Ok(conn) => conn,
        Err(e) => panic!("raw open failed: {e}"),
    }
}

#[tokio::test]
async fn reopen_after_drop_keeps_data_and_revision() {
    let dir = temp();
    let path = dir.path().join("state.db");
    let store = open(&path);
    commit(&store, Txn::new().put("a", "1").put("b", "2")).await;
    commit(&store, Txn::new().put("a", "3")).await;
    let rev = commit(
        &store,
        Txn::new()
            .delete("b")
            .put("c", Bytes::from_static(&[0, 255])),
    )
    .await;
    let before = store.range("", None, 100).await;
    drop(store);

    let store = open(&path);
    assert_eq!(store.revision().await.ok(), Some(rev));
    let after = store.range("", None, 100).await;
    assert_eq!(before.ok(), after.ok());
    // The revision keeps counting from where it was.
    assert_eq!(commit(&store, Txn::new().put("d", "4")).await, rev + 1);
}

#[tokio::test]
async fn reopen_after_close_keeps_data() {
    let dir = temp();
    let path = dir.path().join("state.db");
    let store = open(&path);
    let rev = commit(&store, Txn::new().put("k", "v")).await;
    store.close().await;
    store.close().await; // Harmless twice.
    drop(store);
    let store = open(&path);
    let kv = store.get("k").await.ok().flatten();
    assert_eq!(
        kv.map(|kv| (kv.value, kv.mod_revision)),
        Some((Bytes::from_static(b"v"), rev))
    );
}

#[tokio::test]
async fn fresh_database_records_current_schema_version() {
    let dir = temp();
    let path = dir.path().join("state.db");
    drop(open(&path));
    let version: u32 = raw(&path)
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap_or(0);
    assert!(version >= 1);
    // Reopening an up-to-date database migrates nothing and works.
    drop(open(&path));
    let again: u32 = raw(&path)
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap_or(0);
    assert_eq!(again, version);
}

#[tokio::test]
async fn newer_schema_is_refused() {
    let dir = temp();
    let path = dir.path().join("state.db");
    drop(open(&path));
    let current: u32 = raw(&path)
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap_or(0);
    if let Err(e) = raw(&path).execute_batch("PRAGMA user_version = 99") {
        panic!("could not bump the version: {e}");
    }
    match SqliteStore::open(SqliteConfig::new(&path)) {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (99, current));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[tokio::test]
async fn database_is_in_wal_mode() {
    let dir = temp();
    let path = dir.path().join("state.db");
    let store = open(&path);
    commit(&store, Txn::new().put("k", "v")).await;
    drop(store);
    let mode: String = raw(&path)
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap_or_default();
    assert_eq!(mode.to_ascii_lowercase(), "wal");
}

#[tokio::test]
async fn second_store_on_same_file_is_refused() {
    let dir = temp();
    let path = dir.path().join("state.db");
    let store = open(&path);
    commit(&store, Txn::new().put("k", "v")).await;
    match SqliteStore::open(SqliteConfig::new(&path)) {
        Err(StoreError::Backend(_)) => {}
        other => panic!("a second store must not open the same file, got {other:?}"),
    }
    // The first store is unharmed.
    commit(&store, Txn::new().put("k", "w")).await;
}

#[tokio::test]
async fn missing_directory_is_a_backend_error() {
    let dir = temp();
    match SqliteStore::open(SqliteConfig::new(dir.path().join("no/such/dir/state.db"))) {
        Err(StoreError::Backend(_)) => {}
        other => panic!("expected a backend error, got {other:?}"),
    }
}

#[tokio::test]
async fn txn_after_close_is_closed_but_reads_still_work() {
    let dir = temp();
    let store = open(&dir.path().join("state.db"));
    commit(&store, Txn::new().put("k", "v")).await;
    store.close().await;
    assert!(matches!(
        store.txn(Txn::new().put("k", "w")).await,
        Err(StoreError::Closed)
    ));
    let kv = store.get("k").await.ok().flatten();
    assert_eq!(kv.map(|kv| kv.value), Some(Bytes::from_static(b"v")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_answers_every_queued_txn() {
    let dir = temp();
    let path = dir.path().join("state.db");
    let store = Arc::new(open(&path));
    let mut tasks = JoinSet::new();
    for i in 0..200 {
        let store = Arc::clone(&store);
        tasks.spawn(async move { (i, store.txn(Txn::new().put(format!("k/{i:03}"), "v")).await) });
    }
    tokio::task::yield_now().await;
    store.close().await;
    let mut committed = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((i, Ok(TxnOutcome::Committed { .. }))) => committed.push(format!("k/{i:03}")),
            Ok((_, Err(StoreError::Closed))) => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    drop(store);
    let store = open(&path);
    for key in &committed {
        assert!(
            store.get(key).await.ok().flatten().is_some(),
            "{key} was acknowledged"
        );
    }
    assert_eq!(store.count("k/").await.ok(), Some(committed.len()));
}

/// A batch whose SQLite commit fails answers every txn in it with an error and leaves
/// memory and disk as they were; the store keeps working afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_batch_leaves_memory_untouched() {
    let dir = temp();
    let path = dir.path().join("state.db");
    let store = open(&path);
    let base = commit(&store, Txn::new().put("ok/0", "v")).await;
    drop(store);
    // Any batch that writes the key `poison` fails inside SQLite.
    if let Err(e) = raw(&path).execute_batch(
        "CREATE TRIGGER poison BEFORE INSERT ON kv WHEN NEW.key = 'poison'
         BEGIN SELECT RAISE(ABORT, 'poisoned'); END;",
    ) {
        panic!("could not install the trigger: {e}");
    }
    let store = Arc::new(open(&path));

    let mut tasks = JoinSet::new();
    for i in 1..=20 {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let key = if i == 10 {
                "poison".to_owned()
            } else {
                format!("ok/{i}")
            };
            (key.clone(), store.txn(Txn::new().put(key, "v")).await)
        });
    }
    let mut committed = 0;
    while let Some(done) = tasks.join_next().await {
        let (key, outcome) = match done {
            Ok(pair) => pair,
            Err(e) => panic!("task failed: {e}"),
        };
        let visible = store.get(&key).await.ok().flatten().is_some();
        match outcome {
            Ok(TxnOutcome::Committed { .. }) => {
                assert!(visible, "{key} committed but is not visible");
                committed += 1;
            }
            Err(StoreError::Backend(_)) => assert!(!visible, "{key} failed but is visible"),
            other => panic!("unexpected outcome for {key}: {other:?}"),
        }
    }
    assert!(committed < 20, "the poisoned txn must fail");
    assert_eq!(store.revision().await.ok(), Some(base + committed));
    // The store still works and its revision did not skip.
    assert_eq!(
        commit(&*store, Txn::new().put("after", "v")).await,
        base + committed + 1
    );
    drop(tasks);
    let count = store.count("").await.ok();
    let store = match Arc::try_unwrap(store) {
        Ok(store) => store,
        Err(_) => panic!("store still shared"),
    };
    drop(store);
    let store = open(&path);
    assert_eq!(store.count("").await.ok(), count);
    assert_eq!(store.revision().await.ok(), Some(base + committed + 1));
}
