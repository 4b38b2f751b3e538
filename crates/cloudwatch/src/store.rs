//! The time-series store: one SQLite file per region (`metrics.db` beside `logs.db`), WAL
//! with `synchronous=FULL`, so a PutMetricData is on disk when it is acknowledged and
//! survives `kill -9`; the file and its `-wal`/`-shm` are mode 0600.
//!
//! Data is kept per resolution tier, each with AWS's retention: 1-second buckets (only
//! for series put with StorageResolution 1) for 3 hours, 1-minute for 15 days, 5-minute
//! for 63 days and 1-hour for 455 days (a bucket holds a [`StatisticSet`] and a
//! percentile [`Sketch`]). A put writes only the fine tiers (1-second when asked, and
//! 1-minute): the 5-minute and 1-hour buckets are rolled up from the 1-minute ones by
//! the retention sweep, for whole buckets only, up to a per-tier watermark kept in the
//! database. A read of a rolled-up tier takes its rows below the watermark and the
//! 1-minute rows above it (they nest exactly), so answers are exact before the sweep
//! caught up; a put older than the watermark (PutMetricData accepts two weeks back) is
//! written into the rolled-up tiers directly. Writing one row per datapoint instead of
//! three is what lets ingestion reach its target (bench/README.md). Reads pick the
//! finest tier that divides the period and still covers the start time, as AWS's
//! retention rules say.
//!
//! Memory holds only the series index (key → row id and when it was last put, for
//! ListMetrics and RecentlyActive); datapoints are read from disk on demand, so memory
//! per series stays small whatever its history (measured by the bench).
//!
//! Two connections: one writes, one reads, so a read never waits for a write's fsync.
//! Calls block: the service runs them on blocking threads.

use crate::series::SeriesKey;
use crate::stats::{Sketch, StatisticSet};
use rusqlite::functions::FunctionFlags;
use rusqlite::{params, Connection, TransactionBehavior};
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, RwLock};

/// Mode of the database files: metric data is the account's.
const FILE_MODE: u32 = 0o600;

/// The resolution tiers: (bucket width, retention), both in seconds.
pub const TIERS: [(i64, i64); 4] = [
    (1, 3 * 3600),
    (60, 15 * 86_400),
    (300, 63 * 86_400),
    (3600, 455 * 86_400),
];

/// The tiers the retention sweep rolls up from the 1-minute tier (not written at ingest
/// while their buckets are newer than the watermark).
pub const ROLLED_UP: [i64; 2] = [300, 3600];

/// The tier the rolled-up tiers are made of.
const BASE_TIER: i64 = 60;

/// How long a series is listed after its last put (ListMetrics: two weeks).
pub const LISTED_FOR_SECS: i64 = 14 * 86_400;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS series (
        id         INTEGER PRIMARY KEY,
        namespace  TEXT    NOT NULL,
        name       TEXT    NOT NULL,
        dimensions TEXT    NOT NULL,
        last_put   INTEGER NOT NULL,
        UNIQUE (namespace, name, dimensions)
    );
    CREATE TABLE IF NOT EXISTS points (
        sid    INTEGER NOT NULL,
        res    INTEGER NOT NULL,
        ts     INTEGER NOT NULL,
        unit   TEXT    NOT NULL,
        count  REAL    NOT NULL,
        sum    REAL    NOT NULL,
        min    REAL    NOT NULL,
        max    REAL    NOT NULL,
        sketch BLOB    NOT NULL,
        PRIMARY KEY (sid, res, ts, unit)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS points_by_age ON points (res, ts);
    CREATE TABLE IF NOT EXISTS rollup (
        res  INTEGER PRIMARY KEY,
        upto INTEGER NOT NULL
    );
";

/// One bucket merged in: a new one is inserted, a known one merged in place (count and
/// sum add up, min and max widen, the sketches merge through `sketch_merge`), which
/// spares a read and the delete-and-insert a REPLACE would cost in both the table and
/// its age index.
const UPSERT: &str = "INSERT INTO points (sid, res, ts, unit, count, sum, min, max, sketch)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
     ON CONFLICT (sid, res, ts, unit) DO UPDATE SET
       count = count + excluded.count,
       sum = sum + excluded.sum,
       min = min(min, excluded.min),
       max = max(max, excluded.max),
       sketch = sketch_merge(sketch, excluded.sketch)";

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum MetricStoreError {
    /// The database failed.
    #[error("metric store: could not {what}: {detail}")]
    Backend {
        /// What was being done.
        what: &'static str,
        /// The database's error.
        detail: String,
    },
}

fn backend(what: &'static str) -> impl Fn(rusqlite::Error) -> MetricStoreError {
    move |e| MetricStoreError::Backend {
        what,
        detail: e.to_string(),
    }
}

fn io(what: &'static str) -> impl Fn(std::io::Error) -> MetricStoreError {
    move |e| MetricStoreError::Backend {
        what,
        detail: e.to_string(),
    }
}

/// One datum to store: values already reduced to a StatisticSet (and a sketch of the raw
/// values, when there were some).
#[derive(Clone, Debug)]
pub struct Sample {
    /// The series.
    pub key: SeriesKey,
    /// The unit (`None` when the put named none).
    pub unit: String,
    /// Epoch seconds.
    pub timestamp: i64,
    /// SampleCount, Sum, Minimum, Maximum.
    pub set: StatisticSet,
    /// The raw values' distribution (empty for a StatisticSet put).
    pub sketch: Sketch,
    /// StorageResolution 1: also kept per second for 3 hours.
    pub high_resolution: bool,
}

/// One aggregated bucket read back.
#[derive(Clone, Debug, PartialEq)]
pub struct Bucket {
    /// Start of the period, epoch seconds.
    pub timestamp: i64,
    /// The unit of its data (`None` when it mixes units).
    pub unit: String,
    /// Its statistics.
    pub set: StatisticSet,
    /// Its distribution (empty unless asked for, or when only StatisticSets were put).
    pub sketch: Sketch,
}

/// What a read asks for.
#[derive(Clone, Copy, Debug)]
pub struct Range {
    /// Inclusive, epoch seconds.
    pub start: i64,
    /// Exclusive, epoch seconds.
    pub end: i64,
    /// Seconds per returned bucket.
    pub period: i64,
}

#[derive(Clone, Copy, Debug)]
struct SeriesMeta {
    id: i64,
    last_put: i64,
}

/// The store (see the module docs).
pub struct MetricStore {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    index: RwLock<HashMap<SeriesKey, SeriesMeta>>,
    /// Per [`ROLLED_UP`] tier, the watermark: its buckets before it are complete in the
    /// table, its data from it on is in the 1-minute tier only. Changed only with the
    /// writer held, after the commit that made it true.
    rolled: RwLock<[i64; ROLLED_UP.len()]>,
}

impl std::fmt::Debug for MetricStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricStore").finish_non_exhaustive()
    }
}

fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic mid-call leaves at most an open transaction, which the next
    // `transaction_with_behavior` refuses loudly rather than corrupting anything.
    conn.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn open_connection(path: &Path) -> Result<Connection, MetricStoreError> {
    let conn = Connection::open(path).map_err(backend("open the database"))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(backend("set the busy timeout"))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(backend("switch to WAL"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(MetricStoreError::Backend {
            what: "switch to WAL",
            detail: format!("the database answered journal mode {mode}"),
        });
    }
    // FULL: an acknowledged put is on disk (DESIGN.md: survives kill -9). A 16 MiB page
    // cache per connection (SQLite's default is 2 MiB) keeps the index pages of recent
    // buckets in memory once the file holds millions of rows; it is per store, not per
    // series.
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA cache_size = -16384;")
        .map_err(backend("set synchronous=FULL and the cache size"))?;
    conn.create_scalar_function(
        "sketch_merge",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let blob = |i| ctx.get_raw(i).as_blob().unwrap_or_default();
            let mut merged = Sketch::decode(blob(0));
            merged.merge(&Sketch::decode(blob(1)));
            Ok(merged.encode())
        },
    )
    .map_err(backend("register sketch_merge"))?;
    Ok(conn)
}

impl MetricStore {
    /// Opens (creating if needed, mode 0600) the database at `path` and loads the series
    /// index; its directory must exist. Blocking.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, MetricStoreError> {
        let path = path.as_ref();
        // Created owner-only before SQLite opens it; SQLite gives -wal and -shm the
        // database file's mode.
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(FILE_MODE)
            .open(path)
            .map_err(io("create the database file"))?;
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
            .map_err(io("restrict the database file's mode"))?;
        drop(file);
        let writer = open_connection(path)?;
        writer
            .execute_batch(SCHEMA)
            .map_err(backend("create the schema"))?;
        let rolled = load_watermarks(&writer)?;
        let reader = open_connection(path)?;
        let index = load_index(&reader)?;
        Ok(Self {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            index: RwLock::new(index),
            rolled: RwLock::new(rolled),
        })
    }

    fn watermarks(&self) -> [i64; ROLLED_UP.len()] {
        *self
            .rolled
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores `samples` in one transaction: durable when this returns. Samples that fall
    /// in the same bucket are merged first, so a batch costs one row write per bucket.
    pub fn put(&self, samples: &[Sample]) -> Result<(), MetricStoreError> {
        type BucketKey<'a> = (&'a SeriesKey, &'a str, i64, i64);
        // The writer first: the watermarks cannot move until this put is committed.
        let mut conn = lock(&self.writer);
        let rolled = self.watermarks();
        let mut buckets: BTreeMap<BucketKey<'_>, (StatisticSet, Sketch)> = BTreeMap::new();
        let mut last_put: HashMap<&SeriesKey, i64> = HashMap::new();
        for s in samples {
            for (res, _) in TIERS {
                if res == 1 && !s.high_resolution {
                    continue;
                }
                let ts = s.timestamp.div_euclid(res) * res;
                // A rolled-up tier's bucket from the watermark on is made by the sweep.
                if let Some(i) = ROLLED_UP.iter().position(|&r| r == res) {
                    if ts >= rolled[i] {
                        continue;
                    }
                }
                match buckets.entry((&s.key, s.unit.as_str(), res, ts)) {
                    Entry::Vacant(v) => {
                        v.insert((s.set, s.sketch.clone()));
                    }
                    Entry::Occupied(mut o) => {
                        let (set, sketch) = o.get_mut();
                        set.merge(&s.set);
                        sketch.merge(&s.sketch);
                    }
                }
            }
            let last = last_put.entry(&s.key).or_insert(s.timestamp);
            *last = (*last).max(s.timestamp);
        }
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend("begin a write"))?;
        let mut ids: HashMap<&SeriesKey, i64> = HashMap::new();
        {
            let index = self
                .index
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO series (namespace, name, dimensions, last_put) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (namespace, name, dimensions)
                     DO UPDATE SET last_put = max(last_put, excluded.last_put)
                     RETURNING id",
                )
                .map_err(backend("prepare the series write"))?;
            for (key, last) in &last_put {
                let known = index.get(*key).filter(|m| m.last_put >= *last);
                let id = match known {
                    Some(meta) => meta.id,
                    None => insert
                        .query_row(
                            params![key.namespace, key.metric_name, key.dimensions_text(), last],
                            |row| row.get(0),
                        )
                        .map_err(backend("write a series"))?,
                };
                ids.insert(key, id);
            }
        }
        {
            // One statement per bucket (see UPSERT).
            let mut upsert = tx
                .prepare_cached(UPSERT)
                .map_err(backend("prepare the bucket write"))?;
            for ((key, unit, res, ts), (set, sketch)) in buckets {
                let sid = ids.get(key).copied().unwrap_or_default();
                upsert_bucket(&mut upsert, sid, res, ts, unit, &set, &sketch)?;
            }
        }
        tx.commit().map_err(backend("commit a put"))?;
        drop(conn);
        // The index learns of new series only once they are durable.
        let mut index = self
            .index
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (key, last) in last_put {
            let id = ids.get(key).copied().unwrap_or_default();
            let meta = index
                .entry(key.clone())
                .or_insert(SeriesMeta { id, last_put: last });
            meta.last_put = meta.last_put.max(last);
        }
        Ok(())
    }

    /// The buckets of `key` in `range`, aggregated per period (each bucket's timestamp is
    /// `start + k × period`); only data in `unit` when one is given. Empty when no tier
    /// both divides the period and still holds data from `range.start` at `now` (AWS
    /// returns no datapoints then). `sketches`: also merge the distributions (for
    /// percentiles; skipped otherwise, as decoding them costs).
    pub fn query(
        &self,
        key: &SeriesKey,
        unit: Option<&str>,
        range: Range,
        now: i64,
        sketches: bool,
    ) -> Result<Vec<Bucket>, MetricStoreError> {
        let Some(sid) = self.series_id(key) else {
            return Ok(Vec::new());
        };
        let Some(plan) = tier_for(range, now) else {
            return Ok(Vec::new());
        };
        let (start, res) = (plan.start, plan.resolution);
        let floor = start.max(now.saturating_sub(plan.retention));
        // A rolled-up tier holds whole buckets below its watermark; the rest of the range
        // is read from the 1-minute rows, which nest in its buckets exactly. The
        // watermark is read before the rows: one that moves meanwhile only rolled up rows
        // this read takes from the 1-minute tier, which keeps them.
        let split = ROLLED_UP
            .iter()
            .position(|&r| r == res)
            .map_or(range.end, |i| {
                self.watermarks()[i].clamp(floor, range.end.max(floor))
            });
        let parts = [(res, floor, split), (BASE_TIER, split, range.end)];
        let conn = lock(&self.reader);
        let mut stmt = conn
            .prepare_cached(
                "SELECT ts, unit, count, sum, min, max, CASE WHEN ?5 THEN sketch ELSE x'' END
                 FROM points WHERE sid = ?1 AND res = ?2 AND ts >= ?3 AND ts < ?4 ORDER BY ts",
            )
            .map_err(backend("prepare a read"))?;
        let mut out: Vec<Bucket> = Vec::new();
        // The coarse part's rows all come before the 1-minute part's: one ordered pass.
        for (res, from, to) in parts.into_iter().filter(|(_, from, to)| from < to) {
            let rows = stmt
                .query_map(params![sid, res, from, to, sketches], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        StatisticSet {
                            sample_count: row.get(2)?,
                            sum: row.get(3)?,
                            minimum: row.get(4)?,
                            maximum: row.get(5)?,
                        },
                        row.get::<_, Vec<u8>>(6)?,
                    ))
                })
                .map_err(backend("read points"))?;
            for row in rows {
                let (ts, row_unit, set, sketch) = row.map_err(backend("read a point"))?;
                if unit.is_some_and(|u| u != row_unit) {
                    continue;
                }
                let bucket_ts = start + (ts - start).div_euclid(range.period) * range.period;
                let sketch = if sketches {
                    Sketch::decode(&sketch)
                } else {
                    Sketch::default()
                };
                match out.last_mut() {
                    Some(b) if b.timestamp == bucket_ts => {
                        b.set.merge(&set);
                        b.sketch.merge(&sketch);
                        if b.unit != row_unit {
                            "None".clone_into(&mut b.unit);
                        }
                    }
                    _ => out.push(Bucket {
                        timestamp: bucket_ts,
                        unit: row_unit,
                        set,
                        sketch,
                    }),
                }
            }
        }
        Ok(out)
    }

    /// Every series put within [`LISTED_FOR_SECS`] of `now` that `admit` accepts, with
    /// when it was last put, sorted by key.
    pub fn list(&self, now: i64, admit: impl Fn(&SeriesKey, i64) -> bool) -> Vec<(SeriesKey, i64)> {
        let index = self
            .index
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out: Vec<(SeriesKey, i64)> = index
            .iter()
            .filter(|(k, m)| m.last_put >= now - LISTED_FOR_SECS && admit(k, m.last_put))
            .map(|(k, m)| (k.clone(), m.last_put))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// How many series the index holds.
    pub fn series_count(&self) -> usize {
        self.index.read().map_or(0, |i| i.len())
    }

    /// Approximate heap bytes of the in-memory index (keys, entries and table slots).
    pub fn index_heap_bytes(&self) -> usize {
        let index = self
            .index
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let slot = std::mem::size_of::<(SeriesKey, SeriesMeta)>() + 1;
        index.capacity() * slot + index.keys().map(SeriesKey::heap_bytes).sum::<usize>()
    }

    /// Rolls the 1-minute tier up into the [`ROLLED_UP`] tiers for every whole bucket
    /// ended by `now`, deletes every bucket past its tier's retention, and forgets series
    /// with no data left in any tier; returns how many buckets were deleted. One
    /// transaction: a crash leaves the watermarks and the rows they describe together.
    pub fn sweep(&self, now: i64) -> Result<u64, MetricStoreError> {
        let mut conn = lock(&self.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend("begin a sweep"))?;
        let mut rolled = self.watermarks();
        for (i, &res) in ROLLED_UP.iter().enumerate() {
            let upto = now.div_euclid(res) * res;
            if upto > rolled[i] {
                roll_up(&tx, res, rolled[i], upto)?;
                rolled[i] = upto;
            }
        }
        let mut deleted = 0u64;
        for (res, retention) in TIERS {
            let n = tx
                .execute(
                    "DELETE FROM points WHERE res = ?1 AND ts < ?2",
                    params![res, now - retention],
                )
                .map_err(backend("delete expired points"))?;
            deleted += n as u64;
        }
        let oldest_kept = now - TIERS[TIERS.len() - 1].1;
        tx.execute(
            "DELETE FROM series WHERE last_put < ?1",
            params![oldest_kept],
        )
        .map_err(backend("delete expired series"))?;
        tx.commit().map_err(backend("commit a sweep"))?;
        *self
            .rolled
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = rolled;
        self.index
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|_, m| m.last_put >= oldest_kept);
        Ok(deleted)
    }

    fn series_id(&self, key: &SeriesKey) -> Option<i64> {
        self.index
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key)
            .map(|m| m.id)
    }
}

/// How a read of `range` at `now` is served (see [`tier_for`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The start, rounded down as AWS rounds it (to the finest tier that holds it).
    pub start: i64,
    /// The tier whose rows are read.
    pub resolution: i64,
    /// That tier's retention, in seconds.
    pub retention: i64,
}

/// The tier a read of `range` uses at `now`. AWS rounds the start down by its age (to
/// the second within 3 h for sub-minute periods, else to the minute within 15 d, to
/// 5 minutes within 63 d, to the hour beyond) and answers nothing when the period is not
/// a multiple of that resolution. Rows are then read from the coarsest tier that divides
/// both the period and the rounded start: its buckets nest exactly in the period's, so the
/// answer is the same while far fewer rows are read (an hourly period over a day reads 24
/// rows per series, not 1,440).
pub fn tier_for(range: Range, now: i64) -> Option<Plan> {
    let age = now.saturating_sub(range.start);
    let fits = |res: i64| {
        if range.period < 60 {
            res == 1
        } else {
            res >= 60
        }
    };
    let (finest, _) = TIERS
        .into_iter()
        .find(|&(res, retention)| fits(res) && age <= retention)?;
    if range.period % finest != 0 {
        return None;
    }
    let start = range.start.div_euclid(finest) * finest;
    TIERS
        .into_iter()
        .rev()
        .find(|&(res, retention)| {
            fits(res)
                && res >= finest
                && range.period % res == 0
                && start % res == 0
                && age <= retention
        })
        .map(|(resolution, retention)| Plan {
            start,
            resolution,
            retention,
        })
}

/// Merges one bucket into the table (inserted when new, merged in place otherwise).
fn upsert_bucket(
    upsert: &mut rusqlite::CachedStatement<'_>,
    sid: i64,
    res: i64,
    ts: i64,
    unit: &str,
    set: &StatisticSet,
    sketch: &Sketch,
) -> Result<(), MetricStoreError> {
    upsert
        .execute(params![
            sid,
            res,
            ts,
            unit,
            set.sample_count,
            set.sum,
            set.minimum,
            set.maximum,
            sketch.encode()
        ])
        .map_err(backend("write a bucket"))?;
    Ok(())
}

/// Aggregates the 1-minute rows of `[from, to)` (whole `res` buckets) into tier `res`
/// and moves its watermark to `to`.
fn roll_up(
    tx: &rusqlite::Transaction<'_>,
    res: i64,
    from: i64,
    to: i64,
) -> Result<(), MetricStoreError> {
    let mut buckets: BTreeMap<(i64, String, i64), (StatisticSet, Sketch)> = BTreeMap::new();
    {
        let mut read = tx
            .prepare_cached(
                "SELECT sid, unit, ts, count, sum, min, max, sketch FROM points
                 WHERE res = ?1 AND ts >= ?2 AND ts < ?3",
            )
            .map_err(backend("prepare a roll-up read"))?;
        let rows = read
            .query_map(params![BASE_TIER, from, to], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                    StatisticSet {
                        sample_count: row.get(3)?,
                        sum: row.get(4)?,
                        minimum: row.get(5)?,
                        maximum: row.get(6)?,
                    },
                    Sketch::decode(row.get_ref(7)?.as_blob().unwrap_or_default()),
                ))
            })
            .map_err(backend("read rows to roll up"))?;
        for row in rows {
            let (sid, unit, ts, set, sketch) = row.map_err(backend("read a row to roll up"))?;
            match buckets.entry((sid, unit, ts.div_euclid(res) * res)) {
                Entry::Vacant(v) => {
                    v.insert((set, sketch));
                }
                Entry::Occupied(mut o) => {
                    let (s, k) = o.get_mut();
                    s.merge(&set);
                    k.merge(&sketch);
                }
            }
        }
    }
    let mut upsert = tx
        .prepare_cached(UPSERT)
        .map_err(backend("prepare the roll-up write"))?;
    for ((sid, unit, ts), (set, sketch)) in buckets {
        upsert_bucket(&mut upsert, sid, res, ts, &unit, &set, &sketch)?;
    }
    tx.execute(
        "INSERT INTO rollup (res, upto) VALUES (?1, ?2)
         ON CONFLICT (res) DO UPDATE SET upto = excluded.upto",
        params![res, to],
    )
    .map_err(backend("move a roll-up watermark"))?;
    Ok(())
}

/// The rolled-up tiers' watermarks, recording them on first open. A database that has
/// none yet was either just created (nothing to roll up: from the start of time) or
/// written by a version that filled every tier at ingest: its buckets up to the end of
/// the current one are then complete, and later ones are rolled up.
fn load_watermarks(conn: &Connection) -> Result<[i64; ROLLED_UP.len()], MetricStoreError> {
    let has_points: bool = conn
        .query_row("SELECT EXISTS (SELECT 1 FROM points)", [], |row| row.get(0))
        .map_err(backend("look for stored points"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let mut out = [0; ROLLED_UP.len()];
    for (i, &res) in ROLLED_UP.iter().enumerate() {
        let stored: Option<i64> = conn
            .query_row("SELECT upto FROM rollup WHERE res = ?1", [res], |row| {
                row.get(0)
            })
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })
            .map_err(backend("read a roll-up watermark"))?;
        out[i] = match stored {
            Some(upto) => upto,
            None => {
                let upto = if has_points {
                    (now.div_euclid(res) + 1) * res
                } else {
                    i64::MIN / 2
                };
                conn.execute(
                    "INSERT INTO rollup (res, upto) VALUES (?1, ?2)",
                    params![res, upto],
                )
                .map_err(backend("record a roll-up watermark"))?;
                upto
            }
        };
    }
    Ok(out)
}

fn load_index(conn: &Connection) -> Result<HashMap<SeriesKey, SeriesMeta>, MetricStoreError> {
    let mut stmt = conn
        .prepare("SELECT id, namespace, name, dimensions, last_put FROM series")
        .map_err(backend("prepare the index load"))?;
    let rows = stmt
        .query_map([], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, i64>(4)?,
            ))
        })
        .map_err(backend("load the index"))?;
    let mut index = HashMap::new();
    for row in rows {
        let (id, namespace, name, dims, last_put) = row.map_err(backend("load a series"))?;
        let Some(dimensions) = SeriesKey::parse_dimensions(&dims) else {
            tracing::warn!(
                id,
                "Skipping a stored series whose dimensions do not parse."
            );
            continue;
        };
        index.insert(
            SeriesKey::new(namespace, name, dimensions),
            SeriesMeta { id, last_put },
        );
    }
    Ok(index)
}
