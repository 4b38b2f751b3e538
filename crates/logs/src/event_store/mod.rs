//! Where log events live: a store read on demand, outside the state store's keyspace.
//!
//! The state store keeps every key in memory, so events kept there made the server's
//! memory grow with every log line. Events now go to an [`EventStore`] (the real one is
//! [`SqliteEventStore`], a `logs.db` file beside `state.db`) and are read from disk when
//! asked for; only groups, streams (with their counters) and purge markers stay in the
//! keyspace, and those are bounded by the number of streams, not of events.
//!
//! Events are keyed by (group, stream, incarnation, timestamp, ingestion sequence): the
//! incarnation is chosen when a stream is created, so events of a deleted stream that were
//! not purged yet never show in a stream created later under the same name. The event
//! store hands out the sequence numbers itself, inside the transaction that stores the
//! batch, so sequence order is commit order, as it was when one keyspace transaction did
//! both.
//!
//! # Two stores, one order of writes
//!
//! PutLogEvents checks the stream in the keyspace, then
//!
//! 1. appends the batch to the event store (durable: `synchronous=FULL`), then
//! 2. updates the stream's counters in the keyspace (`storedBytes`, first/last event
//!    timestamps, `lastIngestionTime`, the next sequence number), and only then
//! 3. answers the caller.
//!
//! A crash after 1 and before 3 leaves events that were stored but never acknowledged:
//! they are real, and readable (reads come from the event store alone and do not trust
//! the counters to bound them), exactly like any write whose answer was lost; the client
//! retries, as it would after any failed call. It never loses an acknowledged event,
//! because nothing is acknowledged before step 1 is durable, and it never shows a phantom
//! event, because events are only ever shown from the event store. What such a crash can
//! leave wrong is the counters (`storedBytes` and the event timestamps miss that batch
//! until the next one); the next sequence number heals itself because the event store
//! never hands out a number twice. The reverse order would have shown counters, and
//! handed out sequence numbers, for events that never landed.
//!
//! Deletes go the other way: DeleteLogStream/DeleteLogGroup remove the stream from the
//! keyspace and leave a purge marker in the same transaction, then delete the events
//! here in batches, then drop the marker. A crash in between leaves invisible events
//! (no stream refers to their incarnation) that the retention sweep purges; the sweep
//! also purges any incarnation it finds here that the keyspace no longer knows (a
//! PutLogEvents racing a delete). Retention deletes events here first, then lowers
//! `storedBytes` in the keyspace; a crash in between leaves `storedBytes` too high until
//! the counter is next corrected by a sweep of other events — never an event shown.
//!
//! # What this means for an etcd/HA backend (issue 20)
//!
//! This store is local to one server's disk. With the keyspace in etcd and several
//! servers, the groups and streams would be shared but the events would not: each server
//! would only see the events written through it, and a failover would lose sight of them
//! (not lose them: they stay on the old server's disk). An HA deployment needs an
//! [`EventStore`] every server reaches — a shared database, or events replicated or
//! forwarded to the stream's owner — and sequence numbers handed out by that shared store.
//! Nothing of that is built; the trait is the seam where it goes.

mod sqlite;

pub use sqlite::SqliteEventStore;

use store::StoreError;

/// One incarnation of one log stream: the events' partition.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId {
    /// The log group's name.
    pub group: String,
    /// The log stream's name.
    pub stream: String,
    /// The stream's incarnation (see the module docs).
    pub incarnation: u64,
}

impl StreamId {
    /// The id of `incarnation` of `group`'s `stream`.
    pub fn new(group: &str, stream: &str, incarnation: u64) -> Self {
        Self {
            group: group.to_owned(),
            stream: stream.to_owned(),
            incarnation,
        }
    }
}

/// A place in a stream: (timestamp, ingestion sequence), ordered that way.
pub type Place = (i64, u64);

/// One stored event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Timestamp, epoch milliseconds.
    pub timestamp: i64,
    /// Ingestion sequence within the stream incarnation.
    pub seq: u64,
    /// When it was ingested, epoch milliseconds.
    pub ingestion_time: i64,
    /// The message.
    pub message: String,
}

/// One stored event lent to an [`EventStore::scan`] visitor, its message borrowed from
/// the store's read buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventView<'a> {
    /// Timestamp, epoch milliseconds.
    pub timestamp: i64,
    /// Ingestion sequence within the stream incarnation.
    pub seq: u64,
    /// When it was ingested, epoch milliseconds.
    pub ingestion_time: i64,
    /// The message.
    pub message: &'a str,
}

/// What [`EventStore::append`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The sequence number of the batch's first event.
    pub first_seq: u64,
    /// The sequence number the next batch will start at.
    pub next_seq: u64,
}

/// What one bounded delete removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Removed {
    /// Events deleted.
    pub events: u64,
    /// Their message bytes.
    pub bytes: i64,
    /// Whether more events matching the delete remain.
    pub more: bool,
}

/// Durable storage of log events, read on demand.
///
/// Calls block on disk I/O: callers on an async runtime run them with
/// `spawn_blocking` (see `Logs::events`). Every write is durable when it returns.
pub trait EventStore: Send + Sync + 'static {
    /// Stores `events` (timestamp, message; chronological) in `stream` with ingestion
    /// time `ingestion_time`, numbering them from the stream's next sequence number, or
    /// from `seq_floor` if that is higher (the keyspace's count, for streams whose
    /// events predate this store).
    fn append(
        &self,
        stream: &StreamId,
        seq_floor: u64,
        ingestion_time: i64,
        events: &[(i64, String)],
    ) -> Result<Appended, StoreError>;

    /// At most `limit` events of `stream` strictly between `after` and `before`, in
    /// ascending order: the first ones when `newest` is false, the last ones when true.
    fn read(
        &self,
        stream: &StreamId,
        after: Option<Place>,
        before: Option<Place>,
        newest: bool,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError>;

    /// Visits `stream`'s events strictly between `after` and `before` in ascending order
    /// until `visit` returns false. Unlike [`EventStore::read`] nothing is copied, which
    /// is what a long scan (a Logs Insights query) wants.
    fn scan(
        &self,
        stream: &StreamId,
        after: Option<Place>,
        before: Option<Place>,
        visit: &mut dyn FnMut(EventView<'_>) -> bool,
    ) -> Result<(), StoreError>;

    /// Deletes up to `batch` of `stream`'s events with timestamps below `floor`
    /// (oldest first); every event when `floor` is `None`.
    fn remove(
        &self,
        stream: &StreamId,
        floor: Option<i64>,
        batch: usize,
    ) -> Result<Removed, StoreError>;

    /// Every stream incarnation holding events (or that held some), in order.
    fn streams(&self) -> Result<Vec<StreamId>, StoreError>;

    /// Forgets a stream incarnation that [`EventStore::remove`] emptied.
    fn forget(&self, stream: &StreamId) -> Result<(), StoreError>;

    /// Stores events carried over with their own places and ingestion times (from the
    /// keyspace of an older server); events already here are skipped, so an interrupted
    /// import can simply run again. The stream's next sequence number moves past them.
    fn import(&self, stream: &StreamId, events: &[Event]) -> Result<(), StoreError>;
}
