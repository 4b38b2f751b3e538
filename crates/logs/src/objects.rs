//! How log groups and streams sit in the state store: the key layout and the records.
//! Their events are not in the keyspace but in an [`crate::EventStore`].
//! Typed reads and the compare-and-swap retry loop are [`store::Objects`].
//!
//! Layout (values are JSON). Neither group nor stream names may contain `:`, so it
//! separates them unambiguously, and a group's or stream's keys form one prefix even
//! though names contain `/`:
//! - `logs/group/<group>` → [`StoredGroup`]
//! - `logs/stream/<group>:<stream>` → [`StoredStream`]
//! - `logs/purge/<group>:<stream>:<incarnation>` → empty: events left to delete from the
//!   event store after DeleteLogStream/DeleteLogGroup; written in the same transaction as
//!   the deletion, and removed once the events are gone (the retention sweeper finishes
//!   any purge a crash interrupted).
//! - `logs/metricfilter/<group>:<filter>` → [`crate::metric_filters::StoredMetricFilter`]
//!   (filter names cannot contain `:` either)
//! - `logs/resourcepolicy/<name>` → [`crate::resource_policies::StoredPolicy`] (account
//!   scope) and `logs/resourcepolicy-arn/<log group ARN>` (resource scope)

use crate::error::LogsError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
pub use store::Step;

/// Key of a log group.
pub fn group_key(group: &str) -> String {
    format!("logs/group/{group}")
}
/// Prefix of every log group.
pub const GROUP_PREFIX: &str = "logs/group/";
/// Key of a log stream.
pub fn stream_key(group: &str, stream: &str) -> String {
    format!("logs/stream/{group}:{stream}")
}
/// Prefix of a group's streams.
pub fn stream_prefix(group: &str) -> String {
    format!("logs/stream/{group}:")
}
/// Key of a purge marker.
pub fn purge_key(group: &str, stream: &str, incarnation: u64) -> String {
    format!("{PURGE_PREFIX}{group}:{stream}:{incarnation:020}")
}
/// Prefix of every purge marker.
pub const PURGE_PREFIX: &str = "logs/purge/";
/// Prefix of every metric filter.
pub const METRIC_FILTER_PREFIX: &str = "logs/metricfilter/";
/// Prefix of a group's metric filters.
pub fn metric_filter_prefix(group: &str) -> String {
    format!("{METRIC_FILTER_PREFIX}{group}:")
}
/// Key of a metric filter.
pub fn metric_filter_key(group: &str, filter: &str) -> String {
    format!("{METRIC_FILTER_PREFIX}{group}:{filter}")
}

/// A stored log group.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StoredGroup {
    /// Creation time, epoch milliseconds.
    pub creation_time: i64,
    /// Retention in days; `None` keeps events forever.
    #[serde(default)]
    pub retention_in_days: Option<i32>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The log group class asked for at creation (AWS's default is STANDARD).
    #[serde(default)]
    pub log_group_class: Option<model::logs::shapes::LogGroupClass>,
    /// The KMS key named at creation (recorded and shown, not used).
    #[serde(default)]
    pub kms_key_id: Option<String>,
    /// How many streams the group has. CreateLogStream and DeleteLogStream bump it, so
    /// DeleteLogGroup's compare-and-swap on the group also catches a stream created
    /// while it was reading the streams.
    #[serde(default)]
    pub stream_count: u64,
}

/// A stored log stream: its description plus the counters PutLogEvents maintains.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StoredStream {
    /// Creation time, epoch milliseconds.
    pub creation_time: i64,
    /// Chosen at creation; part of every event's key in the event store, so events of a
    /// deleted stream never show in one created later under the same name.
    pub incarnation: u64,
    /// Timestamp of the earliest event ever accepted.
    #[serde(default)]
    pub first_event_timestamp: Option<i64>,
    /// Timestamp of the latest event ever accepted.
    #[serde(default)]
    pub last_event_timestamp: Option<i64>,
    /// When the last batch was ingested, epoch milliseconds.
    #[serde(default)]
    pub last_ingestion_time: Option<i64>,
    /// Message bytes of the events currently stored.
    #[serde(default)]
    pub stored_bytes: i64,
    /// The next event's ingestion sequence number.
    #[serde(default)]
    pub next_seq: u64,
}

impl StoredStream {
    /// The upload sequence token AWS would show (ignored on input, as AWS now does).
    pub fn sequence_token(&self) -> String {
        sequence_token(self.next_seq)
    }
}

/// The upload sequence token of a stream whose next event gets sequence `next_seq`.
pub fn sequence_token(next_seq: u64) -> String {
    format!("{next_seq:056}")
}

/// Typed access to the store, answering [`LogsError`].
pub type Objects = store::Objects<LogsError>;

/// JSON-encodes a value for the store.
pub fn encode<T: Serialize>(value: &T) -> Result<bytes::Bytes, LogsError> {
    Ok(store::objects::encode(value)?)
}
