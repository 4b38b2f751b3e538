//! What several fuzz targets share: a per-process temporary directory, a current-thread
//! runtime, a real SQLite store and the default ARN scope. Targets build their service
//! once (in a `OnceLock`) so state accumulates across inputs, as in a running server.

use std::path::PathBuf;
use std::sync::Arc;

/// A fresh directory for this process's target `name`.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stevedore-fuzz-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A current-thread runtime with timers and I/O.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// A SQLite state store in `dir`.
pub fn sqlite_store(dir: &std::path::Path) -> Arc<store::SqliteStore> {
    Arc::new(store::SqliteStore::open(store::SqliteConfig::new(dir.join("state.db"))).expect("store"))
}

/// Region us-east-1, account 000000000000.
pub fn scope() -> model::ecs::arn::ArnScope {
    model::ecs::arn::ArnScope { region: "us-east-1".into(), account_id: "000000000000".into() }
}

/// Splits `data` into at most `n` parts at 0xFF bytes (missing parts are empty), so one
/// input drives several fields.
pub fn fields(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = data.splitn(n, |b| *b == 0xFF).collect();
    out.resize(n, &[]);
    out
}
