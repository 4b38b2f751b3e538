//! Setup shared by the SQLite backend's integration tests.

use std::path::Path;

use store::{SqliteConfig, SqliteStore, Store, Txn, TxnOutcome};

/// Opens (or reopens) the store at `path` with `config`'s other settings at defaults.
pub fn open_with(path: &Path, configure: impl FnOnce(&mut SqliteConfig)) -> SqliteStore {
    let mut config = SqliteConfig::new(path);
    configure(&mut config);
    match SqliteStore::open(config) {
        Ok(store) => store,
        Err(e) => panic!("could not open {}: {e}", path.display()),
    }
}

/// A temporary directory for one test's database.
pub fn temp() -> tempfile::TempDir {
    match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("no temp dir: {e}"),
    }
}

/// Commits `txn`, which must succeed; its revision.
pub async fn commit(store: &dyn Store, txn: Txn) -> u64 {
    match store.txn(txn).await {
        Ok(TxnOutcome::Committed { revision }) => revision,
        other => panic!("expected a commit, got {other:?}"),
    }
}
