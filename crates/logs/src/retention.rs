//! The retention sweeper: deletes events older than their group's retention period, and
//! finishes the event purges of deleted streams that a crash interrupted.
//!
//! Reads never show expired events whether or not the sweep has run (they filter by the
//! same floor), so the sweep only reclaims space; it can run late or be repeated.

use crate::error::LogsError;
use crate::objects::{
    decode, encode, event_prefix, parse_event_suffix, stream_key, stream_prefix, Step, StoredEvent,
    StoredGroup, StoredStream, GROUP_PREFIX, PURGE_PREFIX,
};
use crate::{retention_floor, Logs};
use std::time::Duration;
use store::Txn;

/// How often the sweeper runs.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Events deleted per transaction.
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
    let now = logs.now_ms();
    for (gkey, g, _) in logs.objects.list::<StoredGroup>(GROUP_PREFIX).await? {
        let Some(floor) = retention_floor(g.retention_in_days, now) else {
            continue;
        };
        let group = &gkey[GROUP_PREFIX.len()..];
        let base = stream_prefix(group);
        for (skey, s, _) in logs.objects.list::<StoredStream>(&base).await? {
            if s.first_event_timestamp.is_some_and(|t| t >= floor) {
                continue;
            }
            let stream = &skey[base.len()..];
            deleted += expire_stream(logs, group, stream, s.incarnation, floor).await?;
        }
    }
    Ok(deleted)
}

/// Deletes a stream's events older than `floor`, in batches, keeping its byte count.
async fn expire_stream(
    logs: &Logs,
    group: &str,
    stream: &str,
    incarnation: u64,
    floor: i64,
) -> Result<u64, LogsError> {
    let prefix = event_prefix(group, stream, incarnation);
    let skey = stream_key(group, stream);
    let mut deleted = 0u64;
    loop {
        let done = logs
            .objects
            .retry(&skey, || async {
                let Some((mut s, rev)) = logs.objects.get::<StoredStream>(&skey).await? else {
                    return Ok(Step::Done(None));
                };
                if s.incarnation != incarnation {
                    return Ok(Step::Done(None));
                }
                let page = logs.objects.store().range(&prefix, None, BATCH).await?;
                let mut txn = Txn::new().when(skey.as_str(), rev);
                let mut n = 0u64;
                let mut complete = !page.more;
                for kv in &page.items {
                    match parse_event_suffix(&kv.key[prefix.len()..]) {
                        Some((ts, _)) if ts < floor => {
                            let e: StoredEvent = decode(&kv.key, &kv.value)?;
                            s.stored_bytes -= i64::try_from(e.message.len()).unwrap_or(0);
                            txn = txn.delete(kv.key.as_str());
                            n += 1;
                        }
                        _ => {
                            complete = true;
                            break;
                        }
                    }
                }
                if n == 0 {
                    return Ok(Step::Done(None));
                }
                s.stored_bytes = s.stored_bytes.max(0);
                let txn = txn.put(skey.as_str(), encode(&s)?);
                Ok(Step::Commit(txn, Some((n, complete))))
            })
            .await?;
        match done {
            Some((n, complete)) => {
                deleted += n;
                if complete {
                    return Ok(deleted);
                }
            }
            None => return Ok(deleted),
        }
    }
}
