//! Property test: any sequence of txns gives the same outcomes and final state on
//! `SqliteStore` as on a plain `BTreeMap` model — both when submitted one at a time and
//! when queued all at once so that the writer evaluates them in shared batches — and
//! replaying the change feed from the start rebuilds exactly that final state.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use store::{Compare, KeyValue, Op, SqliteConfig, SqliteStore, Store, Txn, TxnOutcome, WatchEvent};

const KEYS: &[&str] = &["a", "a/1", "a/2", "b", "c"];

/// How a generated compare picks its expected revision.
#[derive(Clone, Debug)]
enum Expect {
    Absent,
    /// The key's revision in the model when the txn is applied (usually holds).
    Current,
    Literal(u64),
}

#[derive(Clone, Debug)]
struct GenTxn {
    compares: Vec<(usize, Expect)>,
    ops: Vec<(usize, Option<u8>)>,
}

fn gen_txn() -> impl Strategy<Value = GenTxn> {
    let expect = prop_oneof![1 => Just(Expect::Absent), 3 => Just(Expect::Current), 1 => (1u64..20).prop_map(Expect::Literal)];
    (
        prop::collection::vec((0..KEYS.len(), expect), 0..3),
        prop::collection::vec(
            (0..KEYS.len(), prop::option::weighted(0.75, any::<u8>())),
            0..4,
        ),
    )
        .prop_map(|(compares, ops)| GenTxn { compares, ops })
}

#[derive(Default)]
struct Model {
    map: BTreeMap<String, KeyValue>,
    revision: u64,
}

impl Model {
    fn mod_rev(&self, key: &str) -> u64 {
        self.map.get(key).map_or(0, |kv| kv.mod_revision)
    }

    /// Resolves `Expect::Current` against the model state the txn will see.
    fn concretize(&self, g: &GenTxn) -> Txn {
        let mut txn = Txn::new();
        for (k, expect) in &g.compares {
            let key = KEYS[*k];
            let rev = match expect {
                Expect::Absent => 0,
                Expect::Current => self.mod_rev(key),
                Expect::Literal(r) => *r,
            };
            txn = txn.when(key, rev);
        }
        for (k, value) in &g.ops {
            txn = match value {
                Some(v) => txn.put(KEYS[*k], vec![*v]),
                None => txn.delete(KEYS[*k]),
            };
        }
        txn
    }

    fn apply(&mut self, txn: &Txn) -> TxnOutcome {
        for Compare::ModRevision { key, revision } in &txn.compares {
            if self.mod_rev(key) != *revision {
                return TxnOutcome::Conflict { key: key.clone() };
            }
        }
        if txn.ops.is_empty() {
            return TxnOutcome::Committed {
                revision: self.revision,
            };
        }
        self.revision += 1;
        let rev = self.revision;
        for op in &txn.ops {
            match op {
                Op::Put { key, value } => {
                    let create_revision = self.map.get(key).map_or(rev, |kv| kv.create_revision);
                    self.map.insert(
                        key.clone(),
                        KeyValue {
                            key: key.clone(),
                            value: value.clone(),
                            create_revision,
                            mod_revision: rev,
                        },
                    );
                }
                Op::Delete { key } => {
                    self.map.remove(key);
                }
            }
        }
        TxnOutcome::Committed { revision: rev }
    }
}

async fn assert_same_state(store: &dyn Store, model: &Model) {
    assert_eq!(store.revision().await.ok(), Some(model.revision));
    let page = store.range("", None, 100).await.ok();
    let want: Vec<KeyValue> = model.map.values().cloned().collect();
    assert_eq!(page.map(|p| p.items), Some(want));
    for key in KEYS {
        assert_eq!(
            store.get(key).await.ok(),
            Some(model.map.get(*key).cloned())
        );
    }
    assert_eq!(
        store.count("a/").await.ok(),
        Some(model.map.keys().filter(|k| k.starts_with("a/")).count())
    );
}

/// Replays the whole change feed into a map and checks it equals the model: every put
/// and delete was reported, in revision order, at the right revision.
async fn assert_feed_rebuilds_state(store: &dyn Store, model: &Model) {
    // A sentinel commit marks the end of what the txns under test wrote.
    let end = match store.txn(Txn::new().put("~end", "")).await {
        Ok(TxnOutcome::Committed { revision }) => revision,
        other => panic!("sentinel failed: {other:?}"),
    };
    let mut watcher = match store.watch("", 1).await {
        Ok(w) => w,
        Err(e) => panic!("watch failed: {e}"),
    };
    let mut replayed: BTreeMap<String, KeyValue> = BTreeMap::new();
    let mut last = 0;
    loop {
        let event = match watcher.next().await {
            Some(Ok(event)) => event,
            other => panic!("the feed ended early: {other:?}"),
        };
        assert!(event.revision() >= last, "events out of revision order");
        last = event.revision();
        match event {
            WatchEvent::Put(kv) if kv.key == "~end" => {
                assert_eq!(kv.mod_revision, end);
                break;
            }
            WatchEvent::Put(kv) => {
                replayed.insert(kv.key.clone(), kv);
            }
            WatchEvent::Delete { key, .. } => {
                assert!(replayed.remove(&key).is_some(), "delete of absent {key}");
            }
        }
    }
    assert_eq!(replayed, model.map);
}

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("no runtime: {e}"),
    }
}

fn fresh() -> (tempfile::TempDir, SqliteStore) {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("no temp dir: {e}"),
    };
    match SqliteStore::open(SqliteConfig::new(dir.path().join("state.db"))) {
        Ok(store) => (dir, store),
        Err(e) => panic!("could not open: {e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn sequential_txns_match_model(txns in prop::collection::vec(gen_txn(), 1..40)) {
        runtime().block_on(async {
            let (_dir, store) = fresh();
            let mut model = Model::default();
            for g in &txns {
                let txn = model.concretize(g);
                let want = model.apply(&txn);
                assert_eq!(store.txn(txn).await.ok(), Some(want));
            }
            assert_same_state(&store, &model).await;
            assert_feed_rebuilds_state(&store, &model).await;
        });
    }

    /// All txns are queued before any is answered, so the writer batches them; the
    /// outcome must still equal applying them one by one in queue order.
    #[test]
    fn batched_txns_match_model(txns in prop::collection::vec(gen_txn(), 1..60), max_batch in 1usize..8) {
        runtime().block_on(async {
            let dir = match tempfile::tempdir() {
                Ok(dir) => dir,
                Err(e) => panic!("no temp dir: {e}"),
            };
            let mut config = SqliteConfig::new(dir.path().join("state.db"));
            config.max_batch = max_batch;
            let store = match SqliteStore::open(config) {
                Ok(store) => Arc::new(store),
                Err(e) => panic!("could not open: {e}"),
            };
            // `Current` compares are resolved against the sequential model, which is
            // exactly the state each txn sees in queue order.
            let mut model = Model::default();
            let mut handles = Vec::new();
            for g in &txns {
                let txn = model.concretize(g);
                let want = model.apply(&txn);
                let store = Arc::clone(&store);
                // The current-thread runtime polls spawned tasks in spawn order, and each
                // enqueues on its first poll, so queue order is spawn order.
                handles.push((want, tokio::spawn(async move { store.txn(txn).await.ok() })));
            }
            for (want, handle) in handles {
                assert_eq!(handle.await.ok().flatten(), Some(want));
            }
            assert_same_state(&*store, &model).await;
            assert_feed_rebuilds_state(&*store, &model).await;
        });
    }
}
