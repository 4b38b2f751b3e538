//! The conformance suite every [`Store`] backend must pass.
//!
//! Each check is a `pub async fn` taking a fresh, empty store and panicking on a
//! violation. Checks only compare revisions relative to ones they observed, so a
//! backend whose history does not start at 0 (etcd) passes too. A backend's test file
//! runs each check on its own fresh store (see `tests/conformance.rs` for SQLite), or
//! calls [`run_all`] with a factory.
//!
//! [`temp_sqlite`] builds the SQLite fixture the crate's own tests use.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use tokio::task::JoinSet;

use crate::{
    KeyValue, SqliteConfig, SqliteStore, Store, StoreError, Txn, TxnOutcome, WatchEvent, Watcher,
};

/// A boxed conformance check, as listed in [`CHECKS`].
pub type Check = fn(Arc<dyn Store>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

macro_rules! checks {
    ($($name:ident),* $(,)?) => {
        /// Every check, by name, in a stable order.
        pub const CHECKS: &[(&str, Check)] = &[$((stringify!($name), |s| Box::pin($name(s)))),*];
    };
}

checks!(
    put_then_get_returns_value,
    get_of_missing_key_is_none,
    create_and_mod_revisions_track_writes,
    revision_grows_by_one_per_commit,
    txn_without_ops_keeps_revision,
    delete_then_recreate_resets_create_revision,
    delete_of_absent_key_commits,
    compare_zero_means_absent,
    conflicting_txn_writes_nothing,
    conflict_names_first_failing_key,
    later_op_on_same_key_wins,
    range_is_ordered_and_bounded_by_prefix,
    range_pages_with_start_after_and_limit,
    range_reports_current_revision,
    count_by_prefix,
    concurrent_cas_increments_lose_nothing,
    concurrent_creates_have_one_winner,
    large_values_round_trip,
    many_keys_round_trip,
    watch_replays_history_from_a_revision_in_order,
    watch_is_filtered_by_prefix,
    watch_delivers_live_events,
    watch_reports_deletes_of_existing_keys_only,
    watch_from_a_compacted_revision_fails,
    watch_delivers_all_ops_of_a_txn_with_its_revision,
);

/// Runs every check in [`CHECKS`], each on a fresh store from `make`.
///
/// `make` returns the store and a guard that keeps its backing resources (a temp dir,
/// a server) alive; the guard is dropped after the check, after the store.
pub async fn run_all<F, Fut, G>(mut make: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = (Arc<dyn Store>, G)>,
{
    for (name, check) in CHECKS {
        let (store, guard) = make().await;
        tracing::info!(check = name, "Running store conformance check.");
        check(store).await;
        drop(guard);
    }
}

/// A fresh [`SqliteStore`] in a new temporary directory; keep the directory alive as
/// long as the store.
///
/// # Errors
///
/// When the directory cannot be made or the store cannot open.
pub fn temp_sqlite() -> Result<(tempfile::TempDir, SqliteStore), StoreError> {
    let dir = tempfile::tempdir()
        .map_err(|e| StoreError::Backend(format!("could not make a temp dir: {e}")))?;
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("state.db")))?;
    Ok((dir, store))
}

// ----- helpers -------------------------------------------------------------------------

async fn commit(store: &dyn Store, txn: Txn) -> u64 {
    match store.txn(txn).await {
        Ok(TxnOutcome::Committed { revision }) => revision,
        other => panic!("expected a commit, got {other:?}"),
    }
}

async fn conflict(store: &dyn Store, txn: Txn) -> String {
    match store.txn(txn).await {
        Ok(TxnOutcome::Conflict { key }) => key,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

async fn get(store: &dyn Store, key: &str) -> Option<KeyValue> {
    match store.get(key).await {
        Ok(kv) => kv,
        Err(e) => panic!("get {key} failed: {e}"),
    }
}

async fn must_get(store: &dyn Store, key: &str) -> KeyValue {
    match get(store, key).await {
        Some(kv) => kv,
        None => panic!("{key} should exist"),
    }
}

async fn revision(store: &dyn Store) -> u64 {
    match store.revision().await {
        Ok(r) => r,
        Err(e) => panic!("revision failed: {e}"),
    }
}

async fn keys(
    store: &dyn Store,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
) -> (Vec<String>, bool) {
    match store.range(prefix, after, limit).await {
        Ok(page) => (page.items.into_iter().map(|kv| kv.key).collect(), page.more),
        Err(e) => panic!("range {prefix} failed: {e}"),
    }
}

async fn count(store: &dyn Store, prefix: &str) -> usize {
    match store.count(prefix).await {
        Ok(n) => n,
        Err(e) => panic!("count {prefix} failed: {e}"),
    }
}

async fn watch(store: &dyn Store, prefix: &str, from: u64) -> Box<dyn Watcher> {
    match store.watch(prefix, from).await {
        Ok(w) => w,
        Err(e) => panic!("watch {prefix} from {from} failed: {e}"),
    }
}

/// The next event, waiting at most a few seconds for it.
async fn next_event(watcher: &mut dyn Watcher) -> WatchEvent {
    match tokio::time::timeout(std::time::Duration::from_secs(5), watcher.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(other) => panic!("expected an event, got {other:?}"),
        Err(_) => panic!("no event within 5 s"),
    }
}

/// The next `n` events as (key, revision, value; None for a delete).
async fn next_events(watcher: &mut dyn Watcher, n: usize) -> Vec<(String, u64, Option<Bytes>)> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(match next_event(watcher).await {
            WatchEvent::Put(kv) => (kv.key, kv.mod_revision, Some(kv.value)),
            WatchEvent::Delete { key, revision } => (key, revision, None),
        });
    }
    out
}

/// Asserts that no event arrives within a short while.
async fn quiet(watcher: &mut dyn Watcher) {
    let wait = std::time::Duration::from_millis(100);
    if let Ok(got) = tokio::time::timeout(wait, watcher.next()).await {
        panic!("expected no event, got {got:?}");
    }
}

fn put(key: &str, rev: u64, value: &'static str) -> (String, u64, Option<Bytes>) {
    (
        key.to_owned(),
        rev,
        Some(Bytes::from_static(value.as_bytes())),
    )
}

// ----- checks --------------------------------------------------------------------------

/// A put is readable with its value and the revision it committed at.
pub async fn put_then_get_returns_value(store: Arc<dyn Store>) {
    let s = &*store;
    let rev = commit(s, Txn::new().put("a/1", "one")).await;
    let kv = must_get(s, "a/1").await;
    assert_eq!(kv.key, "a/1");
    assert_eq!(kv.value, Bytes::from_static(b"one"));
    assert_eq!(kv.create_revision, rev);
    assert_eq!(kv.mod_revision, rev);
    assert_eq!(revision(s).await, rev);
}

/// Reading a key that was never written gives `None`.
pub async fn get_of_missing_key_is_none(store: Arc<dyn Store>) {
    assert_eq!(get(&*store, "nope").await, None);
}

/// `create_revision` stays at the first write; `mod_revision` follows every write.
pub async fn create_and_mod_revisions_track_writes(store: Arc<dyn Store>) {
    let s = &*store;
    let r1 = commit(s, Txn::new().put("k", "v1")).await;
    let r2 = commit(s, Txn::new().put("k", "v2")).await;
    let kv = must_get(s, "k").await;
    assert_eq!((kv.create_revision, kv.mod_revision), (r1, r2));
    assert_eq!(kv.value, Bytes::from_static(b"v2"));
}

/// Each committed txn with ops advances the store revision by exactly one, and all
/// keys written by one txn share its revision.
pub async fn revision_grows_by_one_per_commit(store: Arc<dyn Store>) {
    let s = &*store;
    let start = revision(s).await;
    for i in 1..=5u64 {
        let rev = commit(
            s,
            Txn::new()
                .put(format!("r/{i}"), "x")
                .put(format!("r/{i}b"), "y"),
        )
        .await;
        assert_eq!(rev, start + i);
        assert_eq!(revision(s).await, start + i);
        assert_eq!(must_get(s, &format!("r/{i}b")).await.mod_revision, rev);
    }
    // A conflict does not advance it.
    conflict(s, Txn::new().when("r/1", 0).put("r/1", "z")).await;
    assert_eq!(revision(s).await, start + 5);
}

/// A txn whose compares hold but that has no ops commits at the current revision
/// without creating a new one (etcd behaves the same).
pub async fn txn_without_ops_keeps_revision(store: Arc<dyn Store>) {
    let s = &*store;
    let rev = commit(s, Txn::new().put("k", "v")).await;
    assert_eq!(commit(s, Txn::new().when("k", rev)).await, rev);
    assert_eq!(commit(s, Txn::new()).await, rev);
    assert_eq!(revision(s).await, rev);
}

/// After a delete, the key is absent and a new put starts a fresh `create_revision`.
pub async fn delete_then_recreate_resets_create_revision(store: Arc<dyn Store>) {
    let s = &*store;
    let r1 = commit(s, Txn::new().put("k", "v1")).await;
    commit(s, Txn::new().put("k", "v2")).await;
    let rd = commit(s, Txn::new().delete("k")).await;
    assert!(rd > r1);
    assert_eq!(get(s, "k").await, None);
    let r3 = commit(s, Txn::new().when("k", 0).put("k", "v3")).await;
    let kv = must_get(s, "k").await;
    assert_eq!((kv.create_revision, kv.mod_revision), (r3, r3));
}

/// Deleting an absent key is not an error.
pub async fn delete_of_absent_key_commits(store: Arc<dyn Store>) {
    let s = &*store;
    commit(s, Txn::new().delete("ghost")).await;
    assert_eq!(get(s, "ghost").await, None);
}

/// Comparing against revision 0 means "absent": it holds for a missing or deleted key
/// and fails for an existing one.
pub async fn compare_zero_means_absent(store: Arc<dyn Store>) {
    let s = &*store;
    commit(s, Txn::new().when("k", 0).put("k", "first")).await;
    assert_eq!(
        conflict(s, Txn::new().when("k", 0).put("k", "second")).await,
        "k"
    );
    assert_eq!(must_get(s, "k").await.value, Bytes::from_static(b"first"));
    commit(s, Txn::new().delete("k")).await;
    commit(s, Txn::new().when("k", 0).put("k", "third")).await;
    // A non-zero compare fails for an absent key.
    assert_eq!(
        conflict(s, Txn::new().when("other", 1).put("other", "x")).await,
        "other"
    );
    assert_eq!(get(s, "other").await, None);
}

/// A txn with one failing compare applies none of its ops.
pub async fn conflicting_txn_writes_nothing(store: Arc<dyn Store>) {
    let s = &*store;
    let rev = commit(s, Txn::new().put("a", "1").put("b", "1")).await;
    let key = conflict(
        s,
        Txn::new()
            .when("a", rev)
            .when("b", rev + 100)
            .put("a", "2")
            .delete("b")
            .put("c", "2"),
    )
    .await;
    assert_eq!(key, "b");
    assert_eq!(must_get(s, "a").await.value, Bytes::from_static(b"1"));
    assert_eq!(must_get(s, "b").await.mod_revision, rev);
    assert_eq!(get(s, "c").await, None);
    assert_eq!(revision(s).await, rev);
}

/// The conflict names the first compare (in txn order) that failed.
pub async fn conflict_names_first_failing_key(store: Arc<dyn Store>) {
    let s = &*store;
    let rev = commit(s, Txn::new().put("x", "1")).await;
    let key = conflict(
        s,
        Txn::new()
            .when("x", rev)
            .when("y", 7)
            .when("x", 0)
            .put("z", "1"),
    )
    .await;
    assert_eq!(key, "y");
}

/// Ops apply in order, so the last op on a key decides its state.
pub async fn later_op_on_same_key_wins(store: Arc<dyn Store>) {
    let s = &*store;
    commit(s, Txn::new().put("k", "1").put("k", "2")).await;
    assert_eq!(must_get(s, "k").await.value, Bytes::from_static(b"2"));
    commit(s, Txn::new().put("k", "3").delete("k")).await;
    assert_eq!(get(s, "k").await, None);
    let rev = commit(s, Txn::new().delete("k").put("k", "4")).await;
    let kv = must_get(s, "k").await;
    assert_eq!(
        (kv.value, kv.create_revision),
        (Bytes::from_static(b"4"), rev)
    );
}

/// A range returns exactly the keys with the prefix, sorted bytewise.
pub async fn range_is_ordered_and_bounded_by_prefix(store: Arc<dyn Store>) {
    let s = &*store;
    let mut txn = Txn::new();
    for key in ["p/b", "p/a", "p/c/1", "p", "q/a", "o/z", "p0", "p/A"] {
        txn = txn.put(key, key);
    }
    commit(s, txn).await;
    let (got, more) = keys(s, "p/", None, 100).await;
    assert_eq!(got, ["p/A", "p/a", "p/b", "p/c/1"]);
    assert!(!more);
    let (all, _) = keys(s, "", None, 100).await;
    assert_eq!(all, ["o/z", "p", "p/A", "p/a", "p/b", "p/c/1", "p0", "q/a"]);
    assert!(keys(s, "zzz/", None, 10).await.0.is_empty());
}

/// `start_after` is exclusive, `limit` caps the page and `more` says whether keys
/// remain; walking pages visits every key once. `limit` 0 returns no items.
pub async fn range_pages_with_start_after_and_limit(store: Arc<dyn Store>) {
    let s = &*store;
    let mut txn = Txn::new().put("l/", "outside").put("m/0", "outside");
    for i in 0..10 {
        txn = txn.put(format!("l/{i:02}"), "v");
    }
    commit(s, txn).await;
    let (page, more) = keys(s, "l/", None, 3).await;
    assert_eq!(page, ["l/", "l/00", "l/01"]);
    assert!(more);
    let (page, more) = keys(s, "l/", Some("l/01"), 3).await;
    assert_eq!(page, ["l/02", "l/03", "l/04"]);
    assert!(more);
    // start_after need not exist, and may sort before the prefix.
    assert_eq!(keys(s, "l/", Some("l/045"), 1).await.0, ["l/05"]);
    assert_eq!(keys(s, "l/", Some("a"), 1).await.0, ["l/"]);
    // An exact fit reports no more.
    let (page, more) = keys(s, "l/", Some("l/06"), 3).await;
    assert_eq!(page, ["l/07", "l/08", "l/09"]);
    assert!(!more);
    assert_eq!(keys(s, "l/", Some("l/09"), 3).await, (vec![], false));
    assert_eq!(keys(s, "l/", None, 0).await, (vec![], true));
    // Full walk.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let (page, more) = keys(s, "l/", after.as_deref(), 4).await;
        after = page.last().cloned();
        seen.extend(page);
        if !more {
            break;
        }
    }
    assert_eq!(seen.len(), 11);
}

/// A page carries the revision it was read at.
pub async fn range_reports_current_revision(store: Arc<dyn Store>) {
    let s = &*store;
    let rev = commit(s, Txn::new().put("k", "v")).await;
    match s.range("", None, 10).await {
        Ok(page) => assert_eq!(page.revision, rev),
        Err(e) => panic!("range failed: {e}"),
    }
}

/// `count` counts exactly the keys with the prefix.
pub async fn count_by_prefix(store: Arc<dyn Store>) {
    let s = &*store;
    assert_eq!(count(s, "").await, 0);
    commit(
        s,
        Txn::new()
            .put("c/1", "")
            .put("c/2", "")
            .put("c/3/x", "")
            .put("d/1", "")
            .put("c", ""),
    )
    .await;
    assert_eq!(count(s, "c/").await, 3);
    assert_eq!(count(s, "c").await, 4);
    assert_eq!(count(s, "").await, 5);
    assert_eq!(count(s, "e").await, 0);
    commit(s, Txn::new().delete("c/2")).await;
    assert_eq!(count(s, "c/").await, 2);
}

/// 16 tasks each increment a shared counter with compare-and-swap, retrying on
/// conflict; no increment is lost.
pub async fn concurrent_cas_increments_lose_nothing(store: Arc<dyn Store>) {
    const TASKS: u64 = 16;
    const EACH: u64 = 25;
    commit(&*store, Txn::new().put("counter", "0")).await;
    let mut tasks = JoinSet::new();
    for _ in 0..TASKS {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let mut conflicts = 0u64;
            for _ in 0..EACH {
                loop {
                    let kv = must_get(&*store, "counter").await;
                    let n: u64 = String::from_utf8_lossy(&kv.value)
                        .parse()
                        .unwrap_or_else(|e| panic!("the counter is not a number: {e}"));
                    let txn = Txn::new()
                        .when("counter", kv.mod_revision)
                        .put("counter", (n + 1).to_string());
                    match store.txn(txn).await {
                        Ok(TxnOutcome::Committed { .. }) => break,
                        Ok(TxnOutcome::Conflict { .. }) => conflicts += 1,
                        Err(e) => panic!("txn failed: {e}"),
                    }
                }
            }
            conflicts
        });
    }
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done {
            panic!("increment task failed: {e}");
        }
    }
    let kv = must_get(&*store, "counter").await;
    assert_eq!(kv.value, Bytes::from((TASKS * EACH).to_string()));
}

/// 16 tasks race to create the same key with compare-absent; exactly one wins and
/// its value is the one stored.
pub async fn concurrent_creates_have_one_winner(store: Arc<dyn Store>) {
    let mut tasks = JoinSet::new();
    for i in 0..16 {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let outcome = store
                .txn(Txn::new().when("leader", 0).put("leader", format!("{i}")))
                .await;
            (i, outcome)
        });
    }
    let mut winners = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((i, Ok(TxnOutcome::Committed { .. }))) => winners.push(i),
            Ok((_, Ok(TxnOutcome::Conflict { key }))) => assert_eq!(key, "leader"),
            Ok((_, Err(e))) => panic!("txn failed: {e}"),
            Err(e) => panic!("task failed: {e}"),
        }
    }
    assert_eq!(winners.len(), 1);
    let kv = must_get(&*store, "leader").await;
    assert_eq!(kv.value, Bytes::from(format!("{}", winners[0])));
}

/// 1 MiB values (binary, not UTF-8) round-trip byte for byte.
pub async fn large_values_round_trip(store: Arc<dyn Store>) {
    let s = &*store;
    let big: Vec<u8> = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let big = Bytes::from(big);
    commit(
        s,
        Txn::new()
            .put("big/1", big.clone())
            .put("big/2", big.slice(1..)),
    )
    .await;
    assert_eq!(must_get(s, "big/1").await.value, big);
    assert_eq!(must_get(s, "big/2").await.value, big.slice(1..));
    commit(s, Txn::new().put("big/1", Bytes::new())).await;
    assert!(must_get(s, "big/1").await.value.is_empty());
}

/// Thousands of keys, written in multi-op txns, are all counted, ranged and readable.
pub async fn many_keys_round_trip(store: Arc<dyn Store>) {
    const KEYS: usize = 5_000;
    let s = &*store;
    for chunk in 0..KEYS / 250 {
        let mut txn = Txn::new();
        for i in chunk * 250..(chunk + 1) * 250 {
            txn = txn.put(format!("many/{i:05}"), format!("value-{i}"));
        }
        commit(s, txn).await;
    }
    assert_eq!(count(s, "many/").await, KEYS);
    let mut seen = 0;
    let mut after: Option<String> = None;
    loop {
        let page = match s.range("many/", after.as_deref(), 1_000).await {
            Ok(page) => page,
            Err(e) => panic!("range failed: {e}"),
        };
        for kv in &page.items {
            assert_eq!(kv.key, format!("many/{seen:05}"));
            assert_eq!(kv.value, Bytes::from(format!("value-{seen}")));
            seen += 1;
        }
        after = page.items.last().map(|kv| kv.key.clone());
        if !page.more {
            break;
        }
    }
    assert_eq!(seen, KEYS);
    assert_eq!(
        must_get(s, "many/04999").await.value,
        Bytes::from_static(b"value-4999")
    );
}

/// A watch from a past revision replays every change since, in revision order, then
/// goes on with what is committed later.
pub async fn watch_replays_history_from_a_revision_in_order(store: Arc<dyn Store>) {
    let s = &*store;
    let r1 = commit(s, Txn::new().put("w/a", "1")).await;
    let r2 = commit(s, Txn::new().put("w/b", "2")).await;
    let r3 = commit(s, Txn::new().put("w/a", "3")).await;
    let mut all = watch(s, "w/", r1).await;
    assert_eq!(
        next_events(&mut *all, 3).await,
        [
            put("w/a", r1, "1"),
            put("w/b", r2, "2"),
            put("w/a", r3, "3")
        ]
    );
    let mut later = watch(s, "w/", r2).await;
    assert_eq!(
        next_events(&mut *later, 2).await,
        [put("w/b", r2, "2"), put("w/a", r3, "3")]
    );
    quiet(&mut *later).await;
    let r4 = commit(s, Txn::new().put("w/c", "4")).await;
    assert_eq!(next_events(&mut *all, 1).await, [put("w/c", r4, "4")]);
    assert_eq!(next_events(&mut *later, 1).await, [put("w/c", r4, "4")]);
    // A put event carries the key's create revision too.
    let mut again = watch(s, "w/a", r3).await;
    match next_event(&mut *again).await {
        WatchEvent::Put(kv) => assert_eq!((kv.create_revision, kv.mod_revision), (r1, r3)),
        other => panic!("expected a put, got {other:?}"),
    }
}

/// A watch sees only keys that start with its prefix.
pub async fn watch_is_filtered_by_prefix(store: Arc<dyn Store>) {
    let s = &*store;
    let start = revision(s).await + 1;
    let r1 = commit(
        s,
        Txn::new()
            .put("f/1", "in")
            .put("g/1", "out")
            .put("f", "out"),
    )
    .await;
    let r2 = commit(s, Txn::new().put("g/2", "out")).await;
    let r3 = commit(s, Txn::new().put("f/2", "in")).await;
    assert!(r1 < r2 && r2 < r3);
    let mut w = watch(s, "f/", start).await;
    assert_eq!(
        next_events(&mut *w, 2).await,
        [put("f/1", r1, "in"), put("f/2", r3, "in")]
    );
    commit(s, Txn::new().put("g/3", "out").put("ff", "out")).await;
    quiet(&mut *w).await;
    let mut everything = watch(s, "", start).await;
    assert_eq!(next_events(&mut *everything, 3).await.len(), 3);
}

/// A watch from the next revision (or 0, "from now") waits for and reports commits
/// made after it started.
pub async fn watch_delivers_live_events(store: Arc<dyn Store>) {
    let s = &*store;
    commit(s, Txn::new().put("l/old", "x")).await;
    let mut from_now = watch(s, "l/", 0).await;
    let mut from_next = watch(s, "l/", revision(s).await + 1).await;
    quiet(&mut *from_now).await;
    let writer = Arc::clone(&store);
    let pending = tokio::spawn(async move {
        let mut revs = Vec::new();
        for i in 0..20 {
            revs.push(commit(&*writer, Txn::new().put(format!("l/{i:02}"), "v")).await);
        }
        revs
    });
    let got_now = next_events(&mut *from_now, 20).await;
    let got_next = next_events(&mut *from_next, 20).await;
    let revs = match pending.await {
        Ok(revs) => revs,
        Err(e) => panic!("writer failed: {e}"),
    };
    let want: Vec<(String, u64)> = revs
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("l/{i:02}"), *r))
        .collect();
    let strip = |v: Vec<(String, u64, Option<Bytes>)>| -> Vec<(String, u64)> {
        v.into_iter().map(|(k, r, _)| (k, r)).collect()
    };
    assert_eq!(strip(got_now), want);
    assert_eq!(strip(got_next), want);
}

/// Deleting a key reports a delete at the deleting revision; deleting an absent key
/// reports nothing.
pub async fn watch_reports_deletes_of_existing_keys_only(store: Arc<dyn Store>) {
    let s = &*store;
    let r1 = commit(s, Txn::new().put("d/k", "v")).await;
    let mut w = watch(s, "d/", r1).await;
    assert_eq!(next_events(&mut *w, 1).await, [put("d/k", r1, "v")]);
    commit(s, Txn::new().delete("d/ghost")).await;
    let r3 = commit(s, Txn::new().delete("d/k")).await;
    assert_eq!(
        next_events(&mut *w, 1).await,
        [("d/k".to_owned(), r3, None)]
    );
    quiet(&mut *w).await;
}

/// After a compaction, a watch from before it answers `Compacted` (re-list), one from
/// the compacted revision works, and compacting the future is refused.
pub async fn watch_from_a_compacted_revision_fails(store: Arc<dyn Store>) {
    let s = &*store;
    let r1 = commit(s, Txn::new().put("c/1", "a")).await;
    let r2 = commit(s, Txn::new().put("c/2", "b")).await;
    let r3 = commit(s, Txn::new().put("c/3", "c")).await;
    if let Err(e) = s.compact(r2).await {
        panic!("compact failed: {e}");
    }
    match s.watch("c/", r1).await {
        Err(StoreError::Compacted { requested, oldest }) => {
            assert_eq!(requested, r1);
            assert!(oldest > r1 && oldest <= r2);
        }
        Err(e) => panic!("expected Compacted, got {e}"),
        Ok(_) => panic!("expected Compacted, got a watcher"),
    }
    let mut w = watch(s, "c/", r2).await;
    assert_eq!(
        next_events(&mut *w, 2).await,
        [put("c/2", r2, "b"), put("c/3", r3, "c")]
    );
    match s.compact(r3 + 10).await {
        Err(StoreError::FutureRevision { requested, .. }) => assert_eq!(requested, r3 + 10),
        other => panic!("expected FutureRevision, got {other:?}"),
    }
}

/// A txn with several ops reports one event per key it changed, all at its revision.
pub async fn watch_delivers_all_ops_of_a_txn_with_its_revision(store: Arc<dyn Store>) {
    let s = &*store;
    commit(s, Txn::new().put("m/gone", "x")).await;
    let from = revision(s).await + 1;
    let rev = commit(
        s,
        Txn::new()
            .put("m/b", "2")
            .put("m/a", "1")
            .delete("m/gone")
            .put("m/c", "first")
            .put("m/c", "3"),
    )
    .await;
    let mut w = watch(s, "m/", from).await;
    assert_eq!(
        next_events(&mut *w, 4).await,
        [
            put("m/a", rev, "1"),
            put("m/b", rev, "2"),
            put("m/c", rev, "3"),
            ("m/gone".to_owned(), rev, None),
        ]
    );
    quiet(&mut *w).await;
}
