//! `logs` owns the Amazon CloudWatch Logs API: log groups and log streams, durable in the
//! state store; their events, durable in an [`EventStore`] read on demand (see
//! [`event_store`] for why, and for the order of writes across the two); retention (enforced at read time and by a background
//! sweeper); tags on log groups; metric filters (datapoints leave through the
//! [`MetricSink`] port); resource policies; and the mapping of its errors to AWS's exceptions.
//!
//! It must not speak HTTP or SigV4 (the binary does, through `wire`), and must not reach
//! into other services: the awslogs driver and the aws CLI reach it over the wire.
//!
//! Times are epoch milliseconds throughout, as the Logs API uses them.

mod authz;
mod decode;
mod error;
pub mod event_store;
mod events;
mod filter;
mod groups;
pub mod insights;
pub mod metric_filters;
mod migrate;
mod objects;
mod operations;
mod pagination;
pub mod pattern;
mod queries;
mod resource_policies;
mod retention;
mod streams;
mod tags;

pub use error::LogsError;
pub use event_store::{EventStore, EventView, SqliteEventStore};
pub use metric_filters::{MetricPoint, MetricSink};
pub use operations::Operation;

use model::ecs::arn::ArnScope;
use objects::Objects;
use serde::Serialize;
use std::sync::Arc;
use store::Store;

/// The largest request body the binary should accept for Logs: a full PutLogEvents
/// batch is 1,048,576 bytes of messages (plus 26 per event) before JSON quoting and
/// per-event framing, so AWS's 1 MiB batch needs more than 1 MiB of JSON.
pub const MAX_REQUEST_BYTES: usize = 5 * 1024 * 1024;

/// A source of "now" in epoch milliseconds (the wall clock outside tests).
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The CloudWatch Logs service over a store.
#[derive(Clone)]
pub struct Logs {
    objects: Objects,
    events: Arc<dyn EventStore>,
    scope: ArnScope,
    clock: Clock,
    queries: Arc<queries::Queries>,
    /// Where metric filters' datapoints go (none: filters publish nothing).
    metric_sink: Option<Arc<dyn MetricSink>>,
}

/// The (empty) response of operations that have no output shape.
#[derive(Serialize)]
struct Empty {}

impl Logs {
    /// A Logs service whose ARNs use `scope`, with groups and streams in `store` and
    /// events in `events`, on the wall clock.
    pub fn new(store: Arc<dyn Store>, events: Arc<dyn EventStore>, scope: ArnScope) -> Self {
        Self {
            objects: Objects::new(store),
            events,
            scope,
            clock: Arc::new(wall_clock_ms),
            queries: Arc::new(queries::Queries::new()),
            metric_sink: None,
        }
    }

    /// The same service publishing metric filters' datapoints to `sink`.
    #[must_use]
    pub fn with_metric_sink(mut self, sink: Arc<dyn MetricSink>) -> Self {
        self.metric_sink = Some(sink);
        self
    }

    /// The same service reading time from `clock` (tests move time forward with it).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Runs the operation named `operation` on a JSON `body`; returns the JSON response.
    pub async fn handle(&self, operation: &str, body: &[u8]) -> Result<Vec<u8>, LogsError> {
        let Some(op) = Operation::from_name(operation) else {
            return Err(LogsError::UnknownOperation(operation.to_owned()));
        };
        self.execute(op, body).await
    }

    /// Enforces retention until `shutdown` fires: once a minute, deletes the events
    /// older than their group's retention period, and finishes purges of deleted streams.
    /// Reads already hide expired events, so the sweep only reclaims space.
    pub async fn run_retention(&self, shutdown: telemetry::CancellationToken) {
        retention::run(self, shutdown).await;
    }

    /// One retention sweep (what [`Logs::run_retention`] does each minute); returns how
    /// many events it deleted.
    pub async fn sweep_once(&self) -> Result<u64, LogsError> {
        retention::sweep(self).await
    }

    /// Runs `call` on the event store on a blocking thread: its calls wait for disk.
    pub(crate) async fn events<T, F>(&self, call: F) -> Result<T, LogsError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn EventStore) -> Result<T, store::StoreError> + Send + 'static,
    {
        let events = Arc::clone(&self.events);
        tokio::task::spawn_blocking(move || call(events.as_ref()))
            .await
            .map_err(|e| {
                LogsError::Store(store::StoreError::Backend(format!(
                    "log event store call did not finish: {e}"
                )))
            })?
            .map_err(LogsError::from)
    }

    /// Now, in epoch milliseconds.
    pub(crate) fn now_ms(&self) -> i64 {
        (self.clock)()
    }
}

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Milliseconds in a day.
pub(crate) const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// The oldest timestamp still retained under `retention_in_days` at `now`, if limited.
pub(crate) fn retention_floor(retention_in_days: Option<i32>, now: i64) -> Option<i64> {
    retention_in_days.map(|d| now.saturating_sub(i64::from(d).saturating_mul(DAY_MS)))
}

#[cfg(test)]
mod tests;
