//! [`Prefixed`]: one store seen through a key prefix, so that several tenants (regions)
//! share one database while each service keeps its own key layout unchanged.
//!
//! Every key going in gets the prefix; every key coming out loses it; reads, counts and
//! watches only ever see keys under the prefix. Revisions are the inner store's, shared
//! by every view of it (a revision is a point in the one database's history).

use std::sync::Arc;

use async_trait::async_trait;

use crate::{
    Compare, KeyValue, Op, RangePage, Revision, Store, StoreError, Txn, TxnOutcome, WatchEvent,
    Watcher,
};

/// A [`Store`] whose keys all live under `prefix` in `inner`.
#[derive(Clone)]
pub struct Prefixed {
    inner: Arc<dyn Store>,
    prefix: String,
}

impl Prefixed {
    /// `inner` seen through `prefix` (e.g. `regions/us-east-2/`). The prefix should end
    /// in a separator so that one view's keys can never be another's.
    pub fn new(inner: Arc<dyn Store>, prefix: impl Into<String>) -> Self {
        Self {
            inner,
            prefix: prefix.into(),
        }
    }

    /// The prefix every key of this view carries in the inner store.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn inner_key(&self, key: &str) -> String {
        let mut full = String::with_capacity(self.prefix.len() + key.len());
        full.push_str(&self.prefix);
        full.push_str(key);
        full
    }

    /// The view's key for an inner key read under the prefix. Every inner key handed
    /// back by a prefix read starts with it; a backend breaking that is a bug, reported
    /// rather than silently passed through.
    fn outer_key(&self, key: String) -> Result<String, StoreError> {
        match key.strip_prefix(&self.prefix) {
            Some(rest) => Ok(rest.to_owned()),
            None => Err(StoreError::Backend(format!(
                "the store returned key '{key}' for a read under '{}'",
                self.prefix
            ))),
        }
    }

    fn outer_kv(&self, kv: KeyValue) -> Result<KeyValue, StoreError> {
        Ok(KeyValue {
            key: self.outer_key(kv.key)?,
            ..kv
        })
    }
}

#[async_trait]
impl Store for Prefixed {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        self.inner
            .get(&self.inner_key(key))
            .await?
            .map(|kv| self.outer_kv(kv))
            .transpose()
    }

    async fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<RangePage, StoreError> {
        let after = start_after.map(|k| self.inner_key(k));
        let page = self
            .inner
            .range(&self.inner_key(prefix), after.as_deref(), limit)
            .await?;
        Ok(RangePage {
            items: page
                .items
                .into_iter()
                .map(|kv| self.outer_kv(kv))
                .collect::<Result<_, _>>()?,
            more: page.more,
            revision: page.revision,
        })
    }

    async fn count(&self, prefix: &str) -> Result<usize, StoreError> {
        self.inner.count(&self.inner_key(prefix)).await
    }

    async fn txn(&self, txn: Txn) -> Result<TxnOutcome, StoreError> {
        let txn = Txn {
            compares: txn
                .compares
                .into_iter()
                .map(|c| match c {
                    Compare::ModRevision { key, revision } => Compare::ModRevision {
                        key: self.inner_key(&key),
                        revision,
                    },
                })
                .collect(),
            ops: txn
                .ops
                .into_iter()
                .map(|op| match op {
                    Op::Put { key, value } => Op::Put {
                        key: self.inner_key(&key),
                        value,
                    },
                    Op::Delete { key } => Op::Delete {
                        key: self.inner_key(&key),
                    },
                })
                .collect(),
        };
        match self.inner.txn(txn).await? {
            TxnOutcome::Conflict { key } => Ok(TxnOutcome::Conflict {
                key: self.outer_key(key)?,
            }),
            committed @ TxnOutcome::Committed { .. } => Ok(committed),
        }
    }

    async fn revision(&self) -> Result<Revision, StoreError> {
        self.inner.revision().await
    }

    async fn watch(&self, prefix: &str, from: Revision) -> Result<Box<dyn Watcher>, StoreError> {
        let inner = self.inner.watch(&self.inner_key(prefix), from).await?;
        Ok(Box::new(PrefixedWatcher {
            inner,
            view: self.clone(),
        }))
    }

    /// Compaction is of the one shared history: compacting through one view compacts
    /// every view of the inner store.
    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.inner.compact(revision).await
    }
}

struct PrefixedWatcher {
    inner: Box<dyn Watcher>,
    view: Prefixed,
}

#[async_trait]
impl Watcher for PrefixedWatcher {
    async fn next(&mut self) -> Option<Result<WatchEvent, StoreError>> {
        let event = match self.inner.next().await? {
            Ok(event) => event,
            Err(e) => return Some(Err(e)),
        };
        Some(match event {
            WatchEvent::Put(kv) => self.view.outer_kv(kv).map(WatchEvent::Put),
            WatchEvent::Delete { key, revision } => self
                .view
                .outer_key(key)
                .map(|key| WatchEvent::Delete { key, revision }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stores() -> (tempfile::TempDir, Arc<dyn Store>, Prefixed) {
        let dir = tempfile::tempdir().expect("temp dir");
        let inner: Arc<dyn Store> = Arc::new(
            crate::SqliteStore::open(crate::SqliteConfig::new(dir.path().join("s.db")))
                .expect("open"),
        );
        let view = Prefixed::new(inner.clone(), "regions/us-east-2/");
        (dir, inner, view)
    }

    #[tokio::test]
    async fn keys_outside_the_prefix_are_invisible_and_inside_keys_lose_it() {
        let (_dir, inner, view) = stores();
        inner
            .txn(Txn::new().put("ecs/cluster/a", "default-region"))
            .await
            .expect("txn");
        view.txn(Txn::new().put("ecs/cluster/b", "east-2"))
            .await
            .expect("txn");
        assert!(view.get("ecs/cluster/a").await.expect("get").is_none());
        let page = view.range("ecs/", None, 10).await.expect("range");
        let keys: Vec<_> = page.items.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["ecs/cluster/b"]);
        assert_eq!(view.count("").await.expect("count"), 1);
        // The unprefixed (default) view's service prefixes never include another view's.
        let default_keys = inner.range("ecs/", None, 10).await.expect("range");
        assert_eq!(default_keys.items.len(), 1);
        assert!(inner
            .get("regions/us-east-2/ecs/cluster/b")
            .await
            .expect("get")
            .is_some());
    }

    #[tokio::test]
    async fn conflicts_and_watch_events_name_the_views_keys() {
        let (_dir, inner, view) = stores();
        let mut watch = view.watch("ecs/", 0).await.expect("watch");
        view.txn(Txn::new().put("ecs/x", "1")).await.expect("txn");
        inner
            .txn(Txn::new().put("ecs/x", "other view"))
            .await
            .expect("txn");
        view.txn(Txn::new().delete("ecs/x")).await.expect("txn");
        let first = watch.next().await.expect("event").expect("ok");
        assert_eq!(first.key(), "ecs/x");
        assert!(matches!(first, WatchEvent::Put(_)));
        let second = watch.next().await.expect("event").expect("ok");
        assert!(matches!(second, WatchEvent::Delete { ref key, .. } if key == "ecs/x"));
        view.txn(Txn::new().put("ecs/y", "1")).await.expect("txn");
        match view
            .txn(Txn::new().when("ecs/y", 0).put("ecs/y", "2"))
            .await
        {
            Ok(TxnOutcome::Conflict { key }) => assert_eq!(key, "ecs/y"),
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
}
