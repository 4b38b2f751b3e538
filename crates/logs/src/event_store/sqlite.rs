//! The SQLite [`EventStore`]: one database file (`logs.db` in the server's data dir),
//! WAL with `synchronous=FULL`, so an append is on disk when it returns.
//!
//! Two connections: one writes (appends and deletes, one at a time), one reads, so a
//! read never waits for a write's fsync (WAL readers see the last commit). Both sit
//! behind mutexes; callers run on blocking threads, never on the async runtime.
//!
//! A third kind of connection, one per running scan ([`EventStore::scan`], Logs Insights),
//! reads through a memory map so a long scan does not pay a system call per page.
//!
//! Tables: `streams` gives each stream incarnation a small integer id and holds its next
//! sequence number; `events` holds one row per event, clustered on its primary key
//! (stream id, timestamp, sequence) (`WITHOUT ROWID`): a stream's events in a time range
//! are neighbours on disk, so reads in both directions, time ranges, the merge of many
//! streams (one key range per stream) and retention deletes (a prefix of the key) walk
//! pages in order instead of looking every row up through a separate index. Databases
//! written before that (a rowid table plus the `events_by_place` index) are converted
//! when opened, in one transaction.

use super::{Appended, Event, EventStore, EventView, Place, Removed, StreamId};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use store::StoreError;

/// Mode of the database and its `-wal`/`-shm` files: it holds whatever tasks log.
const FILE_MODE: u32 = 0o600;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS streams (
        id          INTEGER PRIMARY KEY,
        grp         TEXT    NOT NULL,
        stream      TEXT    NOT NULL,
        incarnation INTEGER NOT NULL,
        next_seq    INTEGER NOT NULL,
        UNIQUE (grp, stream, incarnation)
    );
";

/// The columns and key of the `events` table (created under two names, see
/// [`CLUSTER_EVENTS`]).
const EVENTS_TABLE: &str = "(
        sid      INTEGER NOT NULL,
        ts       INTEGER NOT NULL,
        seq      INTEGER NOT NULL,
        ingested INTEGER NOT NULL,
        message  TEXT    NOT NULL,
        PRIMARY KEY (sid, ts, seq)
    ) WITHOUT ROWID";

/// Converts an `events` table of the first layout (rowid table + unique index on the
/// place) into `events_clustered` (created first, as [`EVENTS_TABLE`]), which then takes
/// its name. One transaction: a crash leaves the old table whole.
const CLUSTER_EVENTS: &str = "
    INSERT INTO events_clustered (sid, ts, seq, ingested, message)
        SELECT sid, ts, seq, ingested, message FROM events ORDER BY sid, ts, seq;
    DROP TABLE events;
    ALTER TABLE events_clustered RENAME TO events;
";

/// How much of the database a scan connection maps. Mapped pages are the kernel's page
/// cache, shared and reclaimable, but they count in the server's RSS (as file pages)
/// once touched, so the map is bounded. Over 10 million events (1.2 GiB) a 4 GiB map
/// scanned 1.4x faster than a 256 MiB one; 1 GiB covers about 8 million events.
const SCAN_MMAP_BYTES: i64 = 1 << 30;

/// The SQLite-backed [`EventStore`] (see the module docs).
pub struct SqliteEventStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    /// Idle connections for [`EventStore::scan`]: a long scan has its own, so it never
    /// holds up the short reads of GetLogEvents and FilterLogEvents on `reader`.
    scanners: Mutex<Vec<Connection>>,
}

/// Idle scan connections kept (one per Logs Insights worker is enough).
const IDLE_SCANNERS: usize = 4;

impl std::fmt::Debug for SqliteEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteEventStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn backend(what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| StoreError::Backend(format!("log events: could not {what}: {e}"))
}

fn io(what: &'static str) -> impl Fn(std::io::Error) -> StoreError {
    move |e| StoreError::Backend(format!("log events: could not {what}: {e}"))
}

/// SQLite integers are i64; incarnations are any u64, so they are stored bit for bit.
fn sql_incarnation(incarnation: u64) -> i64 {
    i64::from_be_bytes(incarnation.to_be_bytes())
}

fn from_sql_incarnation(stored: i64) -> u64 {
    u64::from_be_bytes(stored.to_be_bytes())
}

/// Sequence numbers stay far below i64::MAX (a position holds at most 10¹⁰ of them).
fn sql_seq(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::Backend(format!("sequence {seq} overflows")))
}

fn from_sql_seq(seq: i64) -> Result<u64, StoreError> {
    u64::try_from(seq).map_err(|_| {
        StoreError::Backend(format!("the event store holds a negative sequence {seq}"))
    })
}

fn lock<T>(conn: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic mid-call leaves at most an open SQLite transaction, which the next
    // `transaction_with_behavior` refuses loudly rather than corrupting anything.
    conn.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SqliteEventStore {
    /// Opens (creating if needed, mode 0600) the event database at `path`; its
    /// directory must exist. Blocking: call at startup or from `spawn_blocking`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_owned();
        // Created owner-only before SQLite opens it; SQLite gives -wal and -shm the
        // database file's mode.
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(FILE_MODE)
            .open(&path)
            .map_err(io("create the database file"))?;
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
            .map_err(io("restrict the database file's mode"))?;
        drop(file);
        let mut writer = Connection::open(&path).map_err(backend("open the database"))?;
        writer
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(backend("set the busy timeout"))?;
        let mode: String = writer
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(backend("switch to WAL"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!(
                "log events: the database refused WAL mode (got {mode})"
            )));
        }
        // FULL: every commit fsyncs the WAL, so an acknowledged batch survives power loss.
        writer
            .pragma_update(None, "synchronous", "FULL")
            .map_err(backend("set synchronous=FULL"))?;
        writer
            .execute_batch(&format!(
                "{SCHEMA} CREATE TABLE IF NOT EXISTS events {EVENTS_TABLE};"
            ))
            .map_err(backend("create the schema"))?;
        cluster_events(&mut writer)?;
        let reader = open_reader(&path)?;
        tracing::info!(path = %path.display(), "Log event store opened.");
        Ok(Self {
            path,
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            scanners: Mutex::new(Vec::new()),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Converts an `events` table of the first layout, if that is what the file holds.
fn cluster_events(conn: &mut Connection) -> Result<(), StoreError> {
    let sql: String = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'",
            [],
            |row| row.get(0),
        )
        .map_err(backend("read the events table's layout"))?;
    if sql.contains("WITHOUT ROWID") {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend("begin the events table's conversion"))?;
    tx.execute_batch(&format!(
        "CREATE TABLE events_clustered {EVENTS_TABLE}; {CLUSTER_EVENTS}"
    ))
    .map_err(backend("convert the events table"))?;
    tx.commit()
        .map_err(backend("commit the events table's conversion"))?;
    tracing::info!(
        took_ms = started.elapsed().as_millis() as u64,
        "Log events clustered by stream and time (a one-time conversion)."
    );
    Ok(())
}

/// A read-only connection to the database at `path`.
fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let reader = Connection::open(path).map_err(backend("open a reader"))?;
    reader
        .busy_timeout(std::time::Duration::from_secs(5))
        .map_err(backend("set the busy timeout"))?;
    reader
        .pragma_update(None, "query_only", true)
        .map_err(backend("make the reader read-only"))?;
    Ok(reader)
}

/// SQL bounds of the places strictly between `after` and `before`:
/// (after ts, after seq, before ts, before seq).
fn bounds(after: Option<Place>, before: Option<Place>) -> Result<[i64; 4], StoreError> {
    let (after_ts, after_seq) = match after {
        Some((ts, seq)) => (ts, sql_seq(seq)?),
        // Every stored sequence number is at least 0.
        None => (i64::MIN, -1),
    };
    let (before_ts, before_seq) = match before {
        Some((ts, seq)) => (ts, sql_seq(seq)?),
        None => (i64::MAX, i64::MAX),
    };
    Ok([after_ts, after_seq, before_ts, before_seq])
}

/// Visits the events of `stream` between `after` and `before` on `conn` (one statement,
/// one read snapshot, messages borrowed from SQLite's row buffer).
fn scan_on(
    conn: &Connection,
    stream: &StreamId,
    after: Option<Place>,
    before: Option<Place>,
    visit: &mut dyn FnMut(EventView<'_>) -> bool,
) -> Result<(), StoreError> {
    let Some((sid, _)) = stream_row(conn, stream)? else {
        return Ok(());
    };
    let [after_ts, after_seq, before_ts, before_seq] = bounds(after, before)?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT ts, seq, ingested, message FROM events
             WHERE sid = ?1 AND (ts, seq) > (?2, ?3) AND (ts, seq) < (?4, ?5)
             ORDER BY ts, seq",
        )
        .map_err(backend("prepare a scan"))?;
    let mut rows = stmt
        .query(params![sid, after_ts, after_seq, before_ts, before_seq])
        .map_err(backend("scan events"))?;
    while let Some(row) = rows.next().map_err(backend("scan an event"))? {
        let message = row
            .get_ref(3)
            .and_then(|v| v.as_str().map_err(rusqlite::Error::from))
            .map_err(backend("read a scanned message"))?;
        let view = EventView {
            timestamp: row.get(0).map_err(backend("read a scanned event"))?,
            seq: from_sql_seq(row.get(1).map_err(backend("read a scanned event"))?)?,
            ingestion_time: row.get(2).map_err(backend("read a scanned event"))?,
            message,
        };
        if !visit(view) {
            break;
        }
    }
    Ok(())
}

/// The id of `stream`'s row, if it has one.
fn stream_row(conn: &Connection, stream: &StreamId) -> Result<Option<(i64, u64)>, StoreError> {
    conn.prepare_cached(
        "SELECT id, next_seq FROM streams WHERE grp = ?1 AND stream = ?2 AND incarnation = ?3",
    )
    .map_err(backend("prepare a stream lookup"))?
    .query_row(
        params![
            stream.group,
            stream.stream,
            sql_incarnation(stream.incarnation)
        ],
        |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)),
    )
    .optional()
    .map_err(backend("look up a stream"))?
    .map(|(id, next)| Ok((id, from_sql_seq(next)?)))
    .transpose()
}

impl EventStore for SqliteEventStore {
    fn append(
        &self,
        stream: &StreamId,
        seq_floor: u64,
        ingestion_time: i64,
        events: &[(i64, String)],
    ) -> Result<Appended, StoreError> {
        let mut conn = lock(&self.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend("begin an append"))?;
        let (sid, next) = match stream_row(&tx, stream)? {
            Some((sid, next)) => (sid, next.max(seq_floor)),
            None => {
                tx.prepare_cached(
                    "INSERT INTO streams (grp, stream, incarnation, next_seq) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(backend("prepare a stream insert"))?
                .execute(params![
                    stream.group,
                    stream.stream,
                    sql_incarnation(stream.incarnation),
                    sql_seq(seq_floor)?
                ])
                .map_err(backend("add a stream"))?;
                (tx.last_insert_rowid(), seq_floor)
            }
        };
        let first_seq = next;
        let mut seq = next;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO events (sid, ts, seq, ingested, message) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(backend("prepare an event insert"))?;
            for (timestamp, message) in events {
                insert
                    .execute(params![
                        sid,
                        timestamp,
                        sql_seq(seq)?,
                        ingestion_time,
                        message
                    ])
                    .map_err(backend("store an event"))?;
                seq += 1;
            }
        }
        tx.prepare_cached("UPDATE streams SET next_seq = ?2 WHERE id = ?1")
            .map_err(backend("prepare a sequence update"))?
            .execute(params![sid, sql_seq(seq)?])
            .map_err(backend("advance the sequence"))?;
        tx.commit().map_err(backend("commit an append"))?;
        Ok(Appended {
            first_seq,
            next_seq: seq,
        })
    }

    fn read(
        &self,
        stream: &StreamId,
        after: Option<Place>,
        before: Option<Place>,
        newest: bool,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let conn = lock(&self.reader);
        let Some((sid, _)) = stream_row(&conn, stream)? else {
            return Ok(Vec::new());
        };
        let [after_ts, after_seq, before_ts, before_seq] = bounds(after, before)?;
        let sql = if newest {
            "SELECT ts, seq, ingested, message FROM events
             WHERE sid = ?1 AND (ts, seq) > (?2, ?3) AND (ts, seq) < (?4, ?5)
             ORDER BY ts DESC, seq DESC LIMIT ?6"
        } else {
            "SELECT ts, seq, ingested, message FROM events
             WHERE sid = ?1 AND (ts, seq) > (?2, ?3) AND (ts, seq) < (?4, ?5)
             ORDER BY ts, seq LIMIT ?6"
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = conn
            .prepare_cached(sql)
            .map_err(backend("prepare a read"))?;
        let rows = stmt
            .query_map(
                params![sid, after_ts, after_seq, before_ts, before_seq, limit],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, String>(3)?,
                    ))
                },
            )
            .map_err(backend("read events"))?;
        let mut out = Vec::new();
        for row in rows {
            let (timestamp, seq, ingestion_time, message) =
                row.map_err(backend("read an event"))?;
            out.push(Event {
                timestamp,
                seq: from_sql_seq(seq)?,
                ingestion_time,
                message,
            });
        }
        if newest {
            out.reverse();
        }
        Ok(out)
    }

    fn scan(
        &self,
        stream: &StreamId,
        after: Option<Place>,
        before: Option<Place>,
        visit: &mut dyn FnMut(EventView<'_>) -> bool,
    ) -> Result<(), StoreError> {
        let idle = lock(&self.scanners).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let conn = open_reader(&self.path)?;
                // Best effort: without a map the scan reads pages the ordinary way.
                if let Err(e) = conn.pragma_update(None, "mmap_size", SCAN_MMAP_BYTES) {
                    tracing::debug!(error = %e, "No memory map for log event scans.");
                }
                conn
            }
        };
        let scanned = scan_on(&conn, stream, after, before, visit);
        let mut idle = lock(&self.scanners);
        if idle.len() < IDLE_SCANNERS {
            idle.push(conn);
        }
        scanned
    }

    fn remove(
        &self,
        stream: &StreamId,
        floor: Option<i64>,
        batch: usize,
    ) -> Result<Removed, StoreError> {
        let conn = lock(&self.writer);
        let Some((sid, _)) = stream_row(&conn, stream)? else {
            return Ok(Removed::default());
        };
        let batch = i64::try_from(batch).unwrap_or(i64::MAX);
        let mut stmt = conn
            .prepare_cached(
                "DELETE FROM events WHERE (sid, ts, seq) IN (
                     SELECT sid, ts, seq FROM events WHERE sid = ?1 AND ts < ?2 ORDER BY ts, seq LIMIT ?3)
                 RETURNING length(CAST(message AS BLOB))",
            )
            .map_err(backend("prepare a delete"))?;
        let sizes = stmt
            .query_map(params![sid, floor.unwrap_or(i64::MAX), batch], |row| {
                row.get::<_, i64>(0)
            })
            .map_err(backend("delete events"))?;
        let mut removed = Removed::default();
        for size in sizes {
            removed.events += 1;
            removed.bytes += size.map_err(backend("delete an event"))?;
        }
        removed.more = i64::try_from(removed.events).is_ok_and(|n| n == batch);
        Ok(removed)
    }

    fn streams(&self) -> Result<Vec<StreamId>, StoreError> {
        let conn = lock(&self.reader);
        let mut stmt = conn
            .prepare_cached("SELECT grp, stream, incarnation FROM streams ORDER BY grp, stream")
            .map_err(backend("prepare the stream list"))?;
        let rows = stmt
            .query_map([], |row| {
                Ok(StreamId {
                    group: row.get(0)?,
                    stream: row.get(1)?,
                    incarnation: from_sql_incarnation(row.get(2)?),
                })
            })
            .map_err(backend("list streams"))?;
        rows.collect::<Result<_, _>>()
            .map_err(backend("list a stream"))
    }

    fn import(&self, stream: &StreamId, events: &[Event]) -> Result<(), StoreError> {
        let Some(last) = events.iter().map(|e| e.seq).max() else {
            return Ok(());
        };
        let mut conn = lock(&self.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend("begin an import"))?;
        let sid = match stream_row(&tx, stream)? {
            Some((sid, _)) => sid,
            None => {
                tx.prepare_cached(
                    "INSERT INTO streams (grp, stream, incarnation, next_seq) VALUES (?1, ?2, ?3, 0)",
                )
                .map_err(backend("prepare a stream insert"))?
                .execute(params![
                    stream.group,
                    stream.stream,
                    sql_incarnation(stream.incarnation)
                ])
                .map_err(backend("add a stream"))?;
                tx.last_insert_rowid()
            }
        };
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO events (sid, ts, seq, ingested, message) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(backend("prepare an event import"))?;
            for e in events {
                insert
                    .execute(params![
                        sid,
                        e.timestamp,
                        sql_seq(e.seq)?,
                        e.ingestion_time,
                        e.message
                    ])
                    .map_err(backend("import an event"))?;
            }
        }
        tx.prepare_cached("UPDATE streams SET next_seq = MAX(next_seq, ?2) WHERE id = ?1")
            .map_err(backend("prepare a sequence update"))?
            .execute(params![sid, sql_seq(last.saturating_add(1))?])
            .map_err(backend("advance the sequence"))?;
        tx.commit().map_err(backend("commit an import"))
    }

    fn forget(&self, stream: &StreamId) -> Result<(), StoreError> {
        let conn = lock(&self.writer);
        // Only an emptied row goes: an append that raced the purge keeps its events
        // findable for the next purge.
        conn.prepare_cached(
            "DELETE FROM streams WHERE grp = ?1 AND stream = ?2 AND incarnation = ?3
                 AND NOT EXISTS (SELECT 1 FROM events WHERE sid = streams.id)",
        )
        .map_err(backend("prepare a stream delete"))?
        .execute(params![
            stream.group,
            stream.stream,
            sql_incarnation(stream.incarnation)
        ])
        .map_err(backend("forget a stream"))?;
        Ok(())
    }
}
