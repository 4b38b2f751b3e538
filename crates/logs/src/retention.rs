//! The retention sweeper: deletes events older than their group's retention period, and
//! finishes the event purges of deleted streams that a crash interrupted.
//!
//! Reads never show expired events whether or not the sweep has run (they filter by the
//! same floor), so the sweep only reclaims space; it can run late or be repeated.

use crate::error::LogsError;
use crate::event_store::StreamId;
use crate::objects::{
    encode, stream_key, stream_prefix, Step, StoredGroup, StoredStream, GROUP_PREFIX, PURGE_PREFIX,
};
use crate::{retention_floor, Logs};
use std::time::Duration;
use store::Txn;

/// How often the sweeper runs.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Events deleted per event-store call: a sweep never holds the writer for long.
const BATCH: usize = 1000;

/// Sweeps every [`SWEEP_EVERY`] until `shutdown` fires; a panic costs one sweep (loop
/// `logs_retention`).
pub(crate) async fn run(logs: &Logs, shutdown: telemetry::CancellationToken) {
    let wait = || tokio::time::sleep(SWEEP_EVERY);
    let round = || async {
        match sweep(logs).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "Retention sweep deleted expired log events."),
            Err(error) => tracing::warn!(%error, "Retention sweep failed; retrying next minute."),
        }
    };
    telemetry::supervise(telemetry::LoopName::LogsRetention, shutdown, wait, round).await;
}

/// One sweep; returns how many events it deleted.
pub(crate) async fn sweep(logs: &Logs) -> Result<u64, LogsError> {
    let mut deleted = 0;
    for (key, _) in logs.objects.keys(PURGE_PREFIX).await? {
        let rest = &key[PURGE_PREFIX.len()..];
        let mut parts = rest.split(':');
        if let (Some(group), Some(stream), Some(inc), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        {
            if let Ok(inc) = inc.parse::<u64>() {
                deleted += logs.purge_events(group, stream, inc).await?;
            }
        }
    }
    deleted += purge_orphans(logs).await?;
    let now = logs.now_ms();
    for (gkey, g, _) in logs.objects.list::<StoredGroup>(GROUP_PREFIX).await? {
        let Some(floor) = retention_floor(g.retention_in_days, now) else {
            continue;
        };
        let group = &gkey[GROUP_PREFIX.len()..];
        let base = stream_prefix(group);
        // Every stream is asked (one index lookup each): its counters may miss a batch
        // whose PutLogEvents a crash cut short (see `crate::event_store`).
        for (skey, s, _) in logs.objects.list::<StoredStream>(&base).await? {
            let stream = &skey[base.len()..];
            let id = StreamId::new(group, stream, s.incarnation);
            deleted += expire_stream(logs, &id, floor).await?;
        }
    }
    Ok(deleted)
}

/// Purges the event-store incarnations no stream in the keyspace refers to any more
/// (a PutLogEvents that raced a delete, or a purge lost with its marker). Streams are
/// created in the keyspace before any of their events are stored, so an incarnation the
/// keyspace does not know is dead for good.
async fn purge_orphans(logs: &Logs) -> Result<u64, LogsError> {
    let mut deleted = 0;
    for id in logs.events(|store| store.streams()).await? {
        let live = logs
            .objects
            .get::<StoredStream>(&stream_key(&id.group, &id.stream))
            .await?
            .is_some_and(|(s, _)| s.incarnation == id.incarnation);
        if !live {
            deleted += logs
                .purge_events(&id.group, &id.stream, id.incarnation)
                .await?;
        }
    }
    Ok(deleted)
}

/// Deletes a stream's events older than `floor` in bounded batches; after each batch
/// (events first, see `crate::event_store`) lowers the stream's byte count.
async fn expire_stream(logs: &Logs, id: &StreamId, floor: i64) -> Result<u64, LogsError> {
    let skey = stream_key(&id.group, &id.stream);
    let mut deleted = 0u64;
    loop {
        let target = id.clone();
        let removed = logs
            .events(move |store| store.remove(&target, Some(floor), BATCH))
            .await?;
        if removed.events == 0 {
            return Ok(deleted);
        }
        deleted += removed.events;
        let alive = logs
            .objects
            .retry(&skey, || async {
                let Some((mut s, rev)) = logs.objects.get::<StoredStream>(&skey).await? else {
                    return Ok(Step::Done(false));
                };
                if s.incarnation != id.incarnation {
                    return Ok(Step::Done(false));
                }
                s.stored_bytes = (s.stored_bytes - removed.bytes).max(0);
                let txn = Txn::new()
                    .when(skey.as_str(), rev)
                    .put(skey.as_str(), encode(&s)?);
                Ok(Step::Commit(txn, true))
            })
            .await?;
        if !alive || !removed.more {
            return Ok(deleted);
        }
    }
}
