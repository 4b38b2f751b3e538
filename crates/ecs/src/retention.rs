//! Retention: the sweeper that removes what ECS stops showing, so the store (and the
//! in-memory keyspace the SQLite backend serves reads from) stops growing with history.
//!
//! What leaves, and when (each window is a [`Retention`] field):
//! - STOPPED tasks, `stopped_tasks` after their `stoppedAt`. AWS documents that stopped
//!   tasks stay visible in DescribeTasks and ListTasks for at least one hour; after the
//!   sweep DescribeTasks answers `failures[].reason` `MISSING`, as it does for any unknown
//!   task. The task's index entry under its instance (`ecs/instance-task/…`) goes in the
//!   same transaction. Its awsvpc address key is not touched: it was given back when the
//!   task stopped and may belong to another task now.
//! - RunTask client tokens (`ecs/task-token/…`), `client_tokens` after they were recorded:
//!   AWS documents a 24 hour time to live for a RunTask client token. CreateService's
//!   token is the service record's request hash and leaves with the service; StartTask
//!   takes no token.
//! - INACTIVE services, `inactive_services` after they became INACTIVE. AWS documents
//!   only that INACTIVE services "may be cleaned up" later and then answer as missing; no
//!   window is documented, so the stopped-task retention is used: the one visibility
//!   window ECS documents. A service's deployments, events and deployment history (service
//!   deployments and revisions, `services::history`) live inside its record, so deleting
//!   the record removes them.
//! - Deregistered (INACTIVE) container instances stay: AWS documents no window for them.
//!
//! Every removal is a compare-and-swap on the record's revision: a record that changed
//! since the sweep read it (a late agent report, a service recreated under the same
//! name) is left for the next sweep to judge again. Removals are committed in bounded
//! batches; a batch that loses a race is retried record by record so one busy record
//! does not hold back the rest. Records written before their timestamp was kept (tokens,
//! INACTIVE services) are stamped with the sweep's time first and expire one window later.
//!
//! Time is a parameter ([`Ecs::sweep_expired`] takes `now`), so tests run on a fake clock.

use crate::error::EcsError;
use crate::objects::{decode, encode, instance_task_key, TokenRecord};
use crate::services::api::INACTIVE;
use crate::services::StoredService;
use crate::Ecs;
use bytes::Bytes;
use serde::Deserialize;
use store::{KeyValue, Txn};

/// Prefix of every cluster's tasks.
const ALL_TASKS: &str = "ecs/task/";
/// Prefix of every cluster's RunTask client tokens.
const ALL_TOKENS: &str = "ecs/task-token/";
/// Records read per store page while sweeping.
const PAGE: usize = 512;
/// Removals per transaction: bounds a transaction's size and the writer's batch.
const BATCH: usize = 128;

/// How long each kind of finished record is kept, in seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Retention {
    /// A STOPPED task, from its `stoppedAt`.
    pub stopped_tasks: f64,
    /// A RunTask client token, from when it was recorded.
    pub client_tokens: f64,
    /// An INACTIVE service, from when it became INACTIVE.
    pub inactive_services: f64,
}

/// AWS's one-hour floor for stopped tasks.
pub const DEFAULT_STOPPED_TASK_RETENTION: f64 = 3600.0;
/// AWS's documented 24-hour time to live of a RunTask client token.
pub const CLIENT_TOKEN_WINDOW: f64 = 86_400.0;

impl Default for Retention {
    fn default() -> Self {
        Self::with_stopped_tasks(DEFAULT_STOPPED_TASK_RETENTION)
    }
}

impl Retention {
    /// Stopped tasks and INACTIVE services kept `seconds`; client tokens their 24 hours.
    pub fn with_stopped_tasks(seconds: f64) -> Self {
        Self {
            stopped_tasks: seconds,
            client_tokens: CLIENT_TOKEN_WINDOW,
            inactive_services: seconds,
        }
    }

    /// How often to sweep: a quarter of the shortest window, between 1 and 30 seconds, so
    /// a record outlives its window by little and a long window costs few reads.
    pub fn sweep_every(&self) -> std::time::Duration {
        let shortest = self
            .stopped_tasks
            .min(self.client_tokens)
            .min(self.inactive_services);
        std::time::Duration::from_secs_f64((shortest / 4.0).clamp(1.0, 30.0))
    }
}

/// What one sweep removed (and stamped).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// STOPPED tasks removed.
    pub tasks: usize,
    /// RunTask client tokens removed.
    pub tokens: usize,
    /// INACTIVE services removed.
    pub services: usize,
    /// Records given the timestamp they lacked.
    pub stamped: usize,
}

/// What the sweep does with one record.
enum Verdict {
    /// Not expired.
    Keep,
    /// Rewrite it with this value (a timestamp it lacked).
    Stamp(Bytes),
    /// Delete it and these keys that belong to it.
    Expire(Vec<String>),
}

/// The part of a stored task the sweep reads.
#[derive(Deserialize)]
struct TaskExpiry {
    task: TaskTimes,
    instance_id: String,
}

#[derive(Deserialize)]
struct TaskTimes {
    #[serde(rename = "taskArn", default)]
    task_arn: Option<String>,
    #[serde(rename = "lastStatus", default)]
    last_status: Option<String>,
    #[serde(rename = "stoppedAt", default)]
    stopped_at: Option<f64>,
    #[serde(rename = "createdAt", default)]
    created_at: Option<f64>,
}

/// Removal counts of one prefix.
#[derive(Default)]
struct Tally {
    expired: usize,
    stamped: usize,
}

impl Ecs {
    /// Sweeps every expired record as of `now` (epoch seconds).
    pub async fn sweep_expired(&self, keep: &Retention, now: f64) -> Result<Swept, EcsError> {
        let tasks = self
            .sweep_prefix(ALL_TASKS, |kv| judge_task(kv, now - keep.stopped_tasks))
            .await?;
        let tokens = self
            .sweep_prefix(ALL_TOKENS, |kv| judge_token(kv, now, keep.client_tokens))
            .await?;
        let services = self
            .sweep_prefix(crate::services::ALL_SERVICES, |kv| {
                judge_service(kv, now, keep.inactive_services)
            })
            .await?;
        Ok(Swept {
            tasks: tasks.expired,
            tokens: tokens.expired,
            services: services.expired,
            stamped: tasks.stamped + tokens.stamped + services.stamped,
        })
    }

    /// Sweeps every `keep.sweep_every()` until `shutdown` fires. Supervised: a failed or
    /// panicking sweep costs that sweep, never the loop.
    pub async fn run_retention(&self, keep: Retention, shutdown: telemetry::CancellationToken) {
        let every = keep.sweep_every();
        let wait = || tokio::time::sleep(every);
        let round = || async {
            match self.sweep_expired(&keep, crate::now()).await {
                Ok(s) if s != Swept::default() => {
                    tracing::info!(
                        tasks = s.tasks,
                        tokens = s.tokens,
                        services = s.services,
                        stamped = s.stamped,
                        "Expired ECS records removed."
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "ECS retention sweep failed; retrying."),
            }
        };
        telemetry::supervise(telemetry::LoopName::EcsRetention, shutdown, wait, round).await;
    }

    /// Judges every record under `prefix`, page by page, and commits the verdicts.
    async fn sweep_prefix(
        &self,
        prefix: &str,
        judge: impl Fn(&KeyValue) -> Result<Verdict, EcsError>,
    ) -> Result<Tally, EcsError> {
        let mut tally = Tally::default();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .objects
                .store()
                .range(prefix, after.as_deref(), PAGE)
                .await
                .map_err(store::objects::ObjectsError::from)?;
            after = page.items.last().map(|kv| kv.key.clone());
            let mut due = Vec::new();
            for kv in &page.items {
                match judge(kv) {
                    Ok(Verdict::Keep) => {}
                    Ok(v) => due.push((kv.key.clone(), kv.mod_revision, v)),
                    // One unreadable record must not stop the rest from expiring.
                    Err(e) => {
                        tracing::warn!(key = %kv.key, error = %e, "A record the retention sweep cannot read is kept.")
                    }
                }
            }
            for chunk in due.chunks(BATCH) {
                self.commit_verdicts(chunk, &mut tally).await?;
            }
            if !page.more {
                return Ok(tally);
            }
        }
    }

    /// Commits a batch of verdicts in one transaction; if any record changed since it was
    /// read, commits them one by one so only the changed ones are left.
    async fn commit_verdicts(
        &self,
        chunk: &[(String, u64, Verdict)],
        tally: &mut Tally,
    ) -> Result<(), EcsError> {
        let txn = chunk.iter().fold(Txn::new(), with_verdict);
        if self.objects.commit(txn).await? {
            for (_, _, v) in chunk {
                count(tally, v);
            }
            return Ok(());
        }
        for v in chunk {
            if self.objects.commit(with_verdict(Txn::new(), v)).await? {
                count(tally, &v.2);
            }
        }
        Ok(())
    }
}

fn count(tally: &mut Tally, v: &Verdict) {
    match v {
        Verdict::Keep => {}
        Verdict::Stamp(_) => tally.stamped += 1,
        Verdict::Expire(_) => tally.expired += 1,
    }
}

/// Adds one verdict to `txn`, guarded by the record's revision.
fn with_verdict(txn: Txn, (key, rev, v): &(String, u64, Verdict)) -> Txn {
    let txn = txn.when(key.clone(), *rev);
    match v {
        Verdict::Keep => txn,
        Verdict::Stamp(value) => txn.put(key.clone(), value.clone()),
        Verdict::Expire(also) => also
            .iter()
            .fold(txn.delete(key.clone()), |t, k| t.delete(k.clone())),
    }
}

/// A STOPPED task expires `cutoff` seconds after it stopped (or, lacking `stoppedAt`,
/// was created), with its instance index entry.
fn judge_task(kv: &KeyValue, cutoff: f64) -> Result<Verdict, EcsError> {
    let t: TaskExpiry = decode(&kv.key, &kv.value)?;
    if t.task.last_status.as_deref() != Some("STOPPED") {
        return Ok(Verdict::Keep);
    }
    let Some(at) = t.task.stopped_at.or(t.task.created_at) else {
        return Ok(Verdict::Keep);
    };
    if at > cutoff {
        return Ok(Verdict::Keep);
    }
    // `ecs/task/<cluster>/<id>`
    let mut parts = kv.key.splitn(4, '/').skip(2);
    let (Some(cluster), Some(id)) = (parts.next(), parts.next()) else {
        return Ok(Verdict::Expire(Vec::new()));
    };
    let id = t
        .task
        .task_arn
        .as_deref()
        .and_then(|a| a.rsplit('/').next())
        .unwrap_or(id);
    Ok(Verdict::Expire(vec![instance_task_key(
        cluster,
        &t.instance_id,
        id,
    )]))
}

/// A client token expires `window` seconds after it was recorded.
fn judge_token(kv: &KeyValue, now: f64, window: f64) -> Result<Verdict, EcsError> {
    let mut rec: TokenRecord = decode(&kv.key, &kv.value)?;
    match rec.created_at {
        Some(at) if at + window <= now => Ok(Verdict::Expire(Vec::new())),
        Some(_) => Ok(Verdict::Keep),
        None => {
            rec.created_at = Some(now);
            Ok(Verdict::Stamp(encode(&rec)?))
        }
    }
}

/// An INACTIVE service expires `window` seconds after it became INACTIVE.
fn judge_service(kv: &KeyValue, now: f64, window: f64) -> Result<Verdict, EcsError> {
    let mut st: StoredService = decode(&kv.key, &kv.value)?;
    if st.service.status != Some(INACTIVE) {
        return Ok(Verdict::Keep);
    }
    match st.inactive_at {
        Some(at) if at + window <= now => Ok(Verdict::Expire(Vec::new())),
        Some(_) => Ok(Verdict::Keep),
        None => {
            st.inactive_at = Some(now);
            Ok(Verdict::Stamp(encode(&st)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::fixture;

    async fn put(ecs: &Ecs, key: &str, value: &'static [u8]) {
        let txn = Txn::new().put(key.to_owned(), Bytes::from_static(value));
        assert!(ecs.objects.commit(txn).await.expect("written"));
    }

    #[tokio::test]
    async fn a_record_that_changed_since_it_was_judged_is_kept_and_the_rest_of_its_batch_goes() {
        let f = fixture();
        let (a, b) = ("ecs/task-token/c/a", "ecs/task-token/c/b");
        put(&f.ecs, a, b"{}").await;
        put(&f.ecs, b, b"{}").await;
        let read = |key: &'static str| {
            let ecs = f.ecs.clone();
            async move {
                ecs.objects
                    .get_raw(key)
                    .await
                    .expect("read")
                    .expect("present")
                    .1
            }
        };
        let (rev_a, rev_b) = (read(a).await, read(b).await);
        // `a` changes after the sweep judged it expired.
        put(&f.ecs, a, b"{\"changed\":true}").await;
        let batch = [
            (a.to_owned(), rev_a, Verdict::Expire(Vec::new())),
            (b.to_owned(), rev_b, Verdict::Expire(Vec::new())),
        ];
        let mut tally = Tally::default();
        f.ecs
            .commit_verdicts(&batch, &mut tally)
            .await
            .expect("committed");
        assert_eq!(tally.expired, 1);
        let kept = f.ecs.objects.get_raw(a).await.expect("read");
        assert_eq!(
            kept.map(|(v, _)| v),
            Some(Bytes::from_static(b"{\"changed\":true}"))
        );
        assert!(f.ecs.objects.get_raw(b).await.expect("read").is_none());
    }

    #[test]
    fn sweeps_run_often_enough_for_short_windows_and_rarely_for_long_ones() {
        use std::time::Duration;
        assert_eq!(
            Retention::with_stopped_tasks(2.0).sweep_every(),
            Duration::from_secs(1)
        );
        assert_eq!(
            Retention::with_stopped_tasks(60.0).sweep_every(),
            Duration::from_secs(15)
        );
        assert_eq!(Retention::default().sweep_every(), Duration::from_secs(30));
    }
}
