//! A store wrapper that records every transaction and can reject one: how a test checks
//! what a component wrote, and drives its compare-and-swap retry path on purpose.

use std::sync::{Arc, Mutex, PoisonError};
use store::{KeyValue, RangePage, Revision, Store, StoreError, Txn, TxnOutcome};

/// One transaction the wrapped store was asked to commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// The keys it wrote (put or deleted), in order.
    pub keys: Vec<String>,
    /// Whether it was committed (false: rejected, by a failed compare or on purpose).
    pub committed: bool,
    /// Whether the recorder rejected it on purpose.
    pub rejected: bool,
}

type Predicate = Box<dyn Fn(&Txn) -> bool + Send + Sync>;

/// Wraps a store; records each transaction and, when armed, answers the next matching
/// one with a conflict without applying it, exactly as a lost compare-and-swap race.
pub struct CommitRecorder {
    inner: Arc<dyn Store>,
    log: Mutex<Vec<Recorded>>,
    reject: Mutex<Option<Predicate>>,
}

impl CommitRecorder {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            log: Mutex::default(),
            reject: Mutex::default(),
        })
    }

    /// Rejects the next transaction that writes a key starting with `prefix`, once.
    pub fn reject_once_writing(&self, prefix: &str) {
        let prefix = prefix.to_owned();
        self.reject_once(move |txn| txn_keys(txn).iter().any(|k| k.starts_with(&prefix)));
    }

    /// Rejects the next transaction `matches` picks, once.
    pub fn reject_once(&self, matches: impl Fn(&Txn) -> bool + Send + Sync + 'static) {
        *self.reject.lock().unwrap_or_else(PoisonError::into_inner) = Some(Box::new(matches));
    }

    /// Every transaction so far.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many transactions the recorder rejected on purpose.
    pub fn rejections(&self) -> usize {
        self.recorded().iter().filter(|r| r.rejected).count()
    }

    fn take_rejection(&self, txn: &Txn) -> bool {
        let mut armed = self.reject.lock().unwrap_or_else(PoisonError::into_inner);
        if armed.as_ref().is_some_and(|m| m(txn)) {
            *armed = None;
            return true;
        }
        false
    }

    fn note(&self, keys: Vec<String>, committed: bool, rejected: bool) {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Recorded {
                keys,
                committed,
                rejected,
            });
    }
}

/// The keys a transaction writes.
fn txn_keys(txn: &Txn) -> Vec<String> {
    txn.ops
        .iter()
        .map(|op| match op {
            store::Op::Put { key, .. } | store::Op::Delete { key } => key.clone(),
        })
        .collect()
}

#[async_trait::async_trait]
impl Store for CommitRecorder {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
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

    async fn txn(&self, txn: Txn) -> Result<TxnOutcome, StoreError> {
        let keys = txn_keys(&txn);
        if self.take_rejection(&txn) {
            let key = keys.first().cloned().unwrap_or_default();
            self.note(keys, false, true);
            return Ok(TxnOutcome::Conflict { key });
        }
        let outcome = self.inner.txn(txn).await?;
        let committed = matches!(outcome, TxnOutcome::Committed { .. });
        self.note(keys, committed, false);
        Ok(outcome)
    }

    async fn revision(&self) -> Result<Revision, StoreError> {
        self.inner.revision().await
    }

    async fn watch(
        &self,
        prefix: &str,
        from: Revision,
    ) -> Result<Box<dyn store::Watcher>, StoreError> {
        self.inner.watch(prefix, from).await
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.inner.compact(revision).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TempStore;

    #[tokio::test]
    async fn a_rejected_commit_writes_nothing_and_the_retry_goes_through() {
        let t = TempStore::new().expect("store");
        let rec = CommitRecorder::new(t.store());
        rec.reject_once_writing("ecs/task/");
        let put = || Txn::new().put("ecs/task/c/1", "x");
        assert!(matches!(
            rec.txn(put()).await.expect("txn"),
            TxnOutcome::Conflict { .. }
        ));
        assert!(rec.get("ecs/task/c/1").await.expect("read").is_none());
        assert!(matches!(
            rec.txn(put()).await.expect("txn"),
            TxnOutcome::Committed { .. }
        ));
        assert_eq!(rec.rejections(), 1);
        assert_eq!(rec.recorded().len(), 2);
        assert!(rec.recorded()[1].committed);
    }
}
