//! Behaviour of the SQLite backend's change feed beyond the conformance suite: how
//! much history it keeps, what a lagging watcher gets, and restarts and shutdown.

mod common;

use common::{commit, open_with, temp};
use std::path::Path;
use std::time::Duration;

use store::{SqliteStore, Store, StoreError, Txn, WatchEvent, Watcher};

fn open(path: &Path, watch_history: usize) -> SqliteStore {
    open_with(path, |c| c.watch_history = watch_history)
}

async fn next(w: &mut dyn Watcher) -> Option<Result<WatchEvent, StoreError>> {
    match tokio::time::timeout(Duration::from_secs(5), w.next()).await {
        Ok(got) => got,
        Err(_) => panic!("the watcher did not answer within 5 s"),
    }
}

#[tokio::test]
async fn history_beyond_the_configured_size_is_compacted() {
    let dir = temp();
    let store = open(&dir.path().join("s.db"), 4);
    let mut revs = Vec::new();
    for i in 0..6 {
        revs.push(commit(&store, Txn::new().put(format!("k/{i}"), "v")).await);
    }
    // Four events fit: the first two transactions are gone.
    match store.watch("k/", revs[1]).await {
        Err(StoreError::Compacted { requested, oldest }) => {
            assert_eq!((requested, oldest), (revs[1], revs[2]));
        }
        Err(e) => panic!("expected Compacted, got {e}"),
        Ok(_) => panic!("expected Compacted, got a watcher"),
    }
    let mut w = match store.watch("k/", revs[2]).await {
        Ok(w) => w,
        Err(e) => panic!("watch failed: {e}"),
    };
    for want in &revs[2..] {
        match next(&mut *w).await {
            Some(Ok(event)) => assert_eq!(event.revision(), *want),
            other => panic!("expected an event, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_watcher_that_falls_behind_is_told_to_relist_and_never_slows_the_writer() {
    let dir = temp();
    let store = open(&dir.path().join("s.db"), 8);
    let mut slow = match store.watch("", 0).await {
        Ok(w) => w,
        Err(e) => panic!("watch failed: {e}"),
    };
    // The watcher reads nothing while far more commits than it may buffer go through.
    let writes = tokio::time::timeout(Duration::from_secs(10), async {
        for i in 0..50 {
            commit(&store, Txn::new().put(format!("k/{i}"), "v")).await;
        }
    })
    .await;
    assert!(writes.is_ok(), "the writer was held up by a slow watcher");
    match next(&mut *slow).await {
        Some(Err(StoreError::WatchLagged)) => {}
        other => panic!("expected WatchLagged, got {other:?}"),
    }
    // The stream has ended; a new watch from now works.
    assert!(next(&mut *slow).await.is_none());
    let mut fresh = match store.watch("", 0).await {
        Ok(w) => w,
        Err(e) => panic!("watch failed: {e}"),
    };
    let rev = commit(&store, Txn::new().put("k/new", "v")).await;
    match next(&mut *fresh).await {
        Some(Ok(event)) => assert_eq!((event.key(), event.revision()), ("k/new", rev)),
        other => panic!("expected an event, got {other:?}"),
    }
}

#[tokio::test]
async fn history_does_not_survive_a_restart() {
    let dir = temp();
    let path = dir.path().join("s.db");
    let store = open(&path, 100);
    let first = commit(&store, Txn::new().put("k", "1")).await;
    let last = commit(&store, Txn::new().put("k", "2")).await;
    store.close().await;
    drop(store);
    let store = open(&path, 100);
    match store.watch("", first).await {
        Err(StoreError::Compacted { oldest, .. }) => assert_eq!(oldest, last + 1),
        Err(e) => panic!("expected Compacted, got {e}"),
        Ok(_) => panic!("expected Compacted, got a watcher"),
    }
    assert!(store.watch("", last + 1).await.is_ok());
}

#[tokio::test]
async fn closing_the_store_ends_every_watch() {
    let dir = temp();
    let store = open(&dir.path().join("s.db"), 100);
    let rev = commit(&store, Txn::new().put("k", "1")).await;
    let mut w = match store.watch("", rev).await {
        Ok(w) => w,
        Err(e) => panic!("watch failed: {e}"),
    };
    store.close().await;
    // What was committed is still delivered, then the stream ends.
    assert!(matches!(next(&mut *w).await, Some(Ok(WatchEvent::Put(_)))));
    assert!(next(&mut *w).await.is_none());
}

#[tokio::test]
async fn txns_that_change_nothing_visible_do_not_use_up_the_history() {
    let dir = temp();
    let store = open(&dir.path().join("s.db"), 2);
    let first = commit(&store, Txn::new().put("k/a", "1")).await;
    for _ in 0..20 {
        commit(&store, Txn::new().delete("k/ghost")).await;
    }
    let last = commit(&store, Txn::new().put("k/b", "2")).await;
    let mut w = match store.watch("k/", first).await {
        Ok(w) => w,
        Err(e) => panic!("watch failed: {e}"),
    };
    for want in [first, last] {
        match next(&mut *w).await {
            Some(Ok(event)) => assert_eq!(event.revision(), want),
            other => panic!("expected an event, got {other:?}"),
        }
    }
}
