//! The on-disk schema of the SQLite backend and its migrations.
//!
//! `PRAGMA user_version` records how many migrations a database has received. Opening
//! applies the missing ones, in order, inside one transaction, so a crash mid-upgrade
//! leaves the database at its old version rather than half-migrated.

use rusqlite::{Connection, TransactionBehavior};

use super::backend;
use crate::StoreError;

/// Migration `i` (0-based) brings a database from version `i` to version `i + 1`.
///
/// Append only: a released migration is never edited, because databases in the field
/// already ran it.
const MIGRATIONS: &[&str] = &[
    // 1: the keyspace and the global revision.
    "CREATE TABLE kv (
         key        TEXT    PRIMARY KEY NOT NULL,
         value      BLOB    NOT NULL,
         create_rev INTEGER NOT NULL,
         mod_rev    INTEGER NOT NULL
     );
     CREATE TABLE meta (
         name  TEXT    PRIMARY KEY NOT NULL,
         value INTEGER NOT NULL
     );
     INSERT INTO meta (name, value) VALUES ('revision', 0);",
];

/// The schema version this binary writes and understands.
pub(crate) const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Brings `conn` to [`SCHEMA_VERSION`], refusing databases written by a newer binary.
///
/// Returns the version the database had before.
pub(crate) fn migrate(conn: &mut Connection) -> Result<u32, StoreError> {
    // IMMEDIATE takes the write lock up front, so the version we read cannot change
    // under us before the migrations commit.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend("begin the schema migration"))?;
    let found: u32 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(backend("read the schema version"))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let to = index + 1;
        tx.execute_batch(sql)
            .map_err(backend("apply a schema migration"))?;
        // PRAGMA takes no bound parameters; `to` is an integer we computed.
        tx.execute_batch(&format!("PRAGMA user_version = {to}"))
            .map_err(backend("record the schema version"))?;
        tracing::info!(from = index, to, "State schema migrated.");
    }
    tx.commit()
        .map_err(backend("commit the schema migration"))?;
    Ok(found)
}
