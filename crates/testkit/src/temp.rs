//! A real SQLite store in a temporary directory that disappears with it.

use std::sync::Arc;
use store::{SqliteConfig, SqliteStore, Store, StoreError};

/// A store over a fresh database in its own temporary directory. Reopening the same
/// directory (see [`TempStore::reopen`]) is how a test restarts a server.
pub struct TempStore {
    store: Arc<SqliteStore>,
    dir: tempfile::TempDir,
}

impl TempStore {
    /// A fresh, empty store.
    pub fn new() -> Result<Self, StoreError> {
        let dir = tempfile::tempdir()
            .map_err(|e| StoreError::Backend(format!("temporary directory: {e}")))?;
        let store = Arc::new(SqliteStore::open(SqliteConfig::new(Self::file(&dir)))?);
        Ok(Self { store, dir })
    }

    fn file(dir: &tempfile::TempDir) -> std::path::PathBuf {
        dir.path().join("state.db")
    }

    /// The store, as every service takes it.
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// Closes the database and opens it again from disk: what survives is only what was
    /// committed, as after a restart.
    pub async fn reopen(&mut self) -> Result<Arc<dyn Store>, StoreError> {
        self.store.close().await;
        self.store = Arc::new(SqliteStore::open(SqliteConfig::new(Self::file(&self.dir)))?);
        Ok(self.store())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn what_was_committed_survives_a_reopen() {
        let mut t = TempStore::new().expect("store");
        let s = t.store();
        let txn = store::Txn::new().put("k", "v");
        assert!(matches!(
            s.txn(txn).await.expect("txn"),
            store::TxnOutcome::Committed { .. }
        ));
        let s = t.reopen().await.expect("reopened");
        let kv = s.get("k").await.expect("read").expect("present");
        assert_eq!(&kv.value[..], b"v");
    }
}
