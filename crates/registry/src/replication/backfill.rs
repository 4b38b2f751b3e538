//! Replication backfills (StartReplicationBackfill, StopReplicationBackfill,
//! ListReplicationBackfills, DescribeReplicationBackfillResults): on AWS a rule
//! replicates only what is pushed after it exists; a backfill is how a registry sends
//! the images it already holds to one destination of its configuration.
//!
//! A backfill goes PREPARING (listing the images the rules select for that
//! destination) → IN_PROGRESS (one image after another, each copied as a push would be,
//! with the same retries, and its DescribeImageReplicationStatus recorded) → COMPLETE,
//! or STOPPING → STOPPED when asked to stop, or FAILED when it could not list the
//! images, the server stopped under it, or (AWS's rule) half or more of its
//! replications failed once at least 100 were processed. Each image-and-tag pair is one replication,
//! an untagged image one more, as AWS counts them; a manifest an index of the same
//! repository lists travels with its index and is not counted alone.
//!
//! Stored objects: `ecr/replication-backfill/<id>` → [`BackfillRecord`]. Only the task
//! running a backfill writes its record; a stop request reaches it through a flag in
//! memory.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use model::ecr::shapes::*;
use oci::Digest;
use serde::{Deserialize, Serialize};

use super::{destinations_for, validation};
use crate::error::RegistryError;
use crate::objects::{encode, now, REPO_PREFIX};
use crate::Registry;

const PREFIX: &str = "ecr/replication-backfill/";
/// AWS's quota: backfills in progress at once per registry.
const MAX_RUNNING: usize = 10;
/// Replications a backfill processes before its failure rate can fail it (AWS's).
const FAIL_AFTER: i64 = 100;
/// AWS's page sizes.
const MAX_LIST_PAGE: i32 = 50;
const MAX_RESULTS_PAGE: i32 = 1000;

fn key(id: &str) -> String {
    format!("{PREFIX}{id}")
}

/// One backfill, as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BackfillRecord {
    id: String,
    destination: ReplicationDestination,
    status: ReplicationBackfillStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failure_code: Option<String>,
    started_at: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ended_at: Option<f64>,
    /// Known once PREPARING is over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    progress: Option<ReplicationBackfillProgress>,
    #[serde(default)]
    results: Vec<ReplicationBackfillResult>,
}

fn is_running(s: ReplicationBackfillStatus) -> bool {
    matches!(
        s,
        ReplicationBackfillStatus::Preparing
            | ReplicationBackfillStatus::InProgress
            | ReplicationBackfillStatus::Stopping
    )
}

/// The stop flags of the backfills this process runs, by id.
#[derive(Default)]
pub(crate) struct Running(std::sync::Mutex<std::collections::HashMap<String, Arc<AtomicBool>>>);

impl Running {
    fn start(&self, id: &str) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(false));
        self.lock().insert(id.to_owned(), flag.clone());
        flag
    }
    fn stop(&self, id: &str) -> bool {
        match self.lock().get(id) {
            Some(flag) => {
                flag.store(true, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }
    fn end(&self, id: &str) {
        self.lock().remove(id);
    }
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Arc<AtomicBool>>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One image to send: its repository, digest and tags.
struct Item {
    repository: String,
    digest: Digest,
    tags: Vec<String>,
}

impl Registry {
    async fn backfills(&self) -> Result<Vec<BackfillRecord>, RegistryError> {
        let mut all: Vec<BackfillRecord> = self
            .objects()
            .list::<BackfillRecord>(PREFIX)
            .await?
            .into_iter()
            .map(|(_, r, _)| r)
            .collect();
        all.sort_by(|a, b| {
            a.started_at
                .total_cmp(&b.started_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(all)
    }

    async fn backfill(&self, id: &str) -> Result<BackfillRecord, RegistryError> {
        self.objects()
            .get::<BackfillRecord>(&key(id))
            .await?
            .map(|(r, _)| r)
            .ok_or_else(|| {
                RegistryError::ReplicationBackfillNotFound(format!(
                    "The replication backfill with ID '{id}' does not exist in the registry with id '{}'.",
                    self.registry_id()
                ))
            })
    }

    async fn save_backfill(&self, rec: &BackfillRecord) {
        let written = match encode(rec) {
            Ok(v) => self
                .objects()
                .commit(store::Txn::new().put(key(&rec.id), v))
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(error) = written {
            tracing::warn!(backfill = %rec.id, %error, "Could not record a replication backfill.");
        }
    }

    /// Backfills a stopped server left running end FAILED: nothing runs them any more.
    pub(crate) async fn end_interrupted_backfills(&self) -> Result<usize, RegistryError> {
        let mut n = 0;
        for mut rec in self.backfills().await? {
            if is_running(rec.status) {
                rec.status = ReplicationBackfillStatus::Failed;
                rec.failure_code =
                    Some("The server stopped while the replication backfill ran.".into());
                rec.ended_at = Some(now());
                self.save_backfill(&rec).await;
                n += 1;
            }
        }
        Ok(n)
    }

    /// The images the configuration sends to `dest`, each index with its children.
    async fn compute_backfill_items(
        &self,
        dest: &ReplicationDestination,
    ) -> Result<Vec<Item>, RegistryError> {
        let cfg = self.replication_config().await?;
        let wanted = (dest.region.clone(), dest.registry_id.clone());
        let mut items = Vec::new();
        for (k, _) in self.objects().keys(REPO_PREFIX).await? {
            let name = &k[REPO_PREFIX.len()..];
            if !destinations_for(&cfg, name).contains(&wanted) {
                continue;
            }
            let manifests = self.manifests(name).await?;
            let children: HashSet<&Digest> =
                manifests.iter().flat_map(|m| m.children.iter()).collect();
            let mut tags: std::collections::HashMap<Digest, Vec<String>> = Default::default();
            for (tag, t) in self.tags(name).await? {
                tags.entry(t.digest).or_default().push(tag);
            }
            for m in &manifests {
                if children.contains(&m.digest) {
                    continue;
                }
                items.push(Item {
                    repository: name.to_owned(),
                    digest: m.digest.clone(),
                    tags: tags.remove(&m.digest).unwrap_or_default(),
                });
            }
        }
        Ok(items)
    }

    async fn run_backfill(&self, mut rec: BackfillRecord, stop: Arc<AtomicBool>) {
        let items = match self.compute_backfill_items(&rec.destination).await {
            Ok(items) => items,
            Err(error) => {
                rec.status = ReplicationBackfillStatus::Failed;
                rec.failure_code = Some(format!("Listing the images to replicate failed: {error}"));
                rec.ended_at = Some(now());
                self.save_backfill(&rec).await;
                return;
            }
        };
        let total: usize = items.iter().map(|i| i.tags.len().max(1)).sum();
        let mut progress = ReplicationBackfillProgress {
            total_replication_count: i32::try_from(total).unwrap_or(i32::MAX),
            ..Default::default()
        };
        rec.status = ReplicationBackfillStatus::InProgress;
        rec.progress = Some(progress.clone());
        self.save_backfill(&rec).await;
        let (region, registry) = (
            rec.destination.region.clone(),
            rec.destination.registry_id.clone(),
        );
        let mut codes = BTreeSet::new();
        for item in items {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let outcome = self
                .replicate_to(&item.repository, &item.digest, &region, &registry)
                .await;
            let ids: Vec<Option<String>> = if item.tags.is_empty() {
                vec![None]
            } else {
                item.tags.into_iter().map(Some).collect()
            };
            for tag in ids {
                let (status, failure_code) = match &outcome {
                    Ok(()) => {
                        progress.completed_replication_count += 1;
                        (ReplicationBackfillResultStatus::Complete, None)
                    }
                    Err(reason) => {
                        progress.failed_replication_count += 1;
                        codes.insert(reason.clone());
                        (
                            ReplicationBackfillResultStatus::Failed,
                            Some(reason.clone()),
                        )
                    }
                };
                rec.results.push(ReplicationBackfillResult {
                    repository_name: item.repository.clone(),
                    image_id: ImageIdentifier {
                        image_digest: Some(item.digest.to_string()),
                        image_tag: tag,
                    },
                    status,
                    failure_code,
                    sub_image_failure_codes: None,
                });
            }
            progress.failure_codes = codes.iter().cloned().collect();
            rec.progress = Some(progress.clone());
            if fails_backfill(
                progress.completed_replication_count,
                progress.failed_replication_count,
            ) {
                rec.failure_code = Some(format!(
                    "{} of the {} replications processed failed (a backfill fails once half or more of at least {FAIL_AFTER} have).",
                    progress.failed_replication_count,
                    progress.completed_replication_count + progress.failed_replication_count
                ));
                break;
            }
            self.save_backfill(&rec).await;
        }
        rec.status = if rec.failure_code.is_some() {
            ReplicationBackfillStatus::Failed
        } else if stop.load(Ordering::SeqCst) {
            ReplicationBackfillStatus::Stopped
        } else {
            ReplicationBackfillStatus::Complete
        };
        rec.ended_at = Some(now());
        self.save_backfill(&rec).await;
        tracing::info!(backfill = %rec.id, region, registry, status = %status_name(rec.status), completed = progress.completed_replication_count, failed = progress.failed_replication_count, "Replication backfill ended.");
    }
}

/// AWS's rule: a backfill fails on its own once 50 % or more of its replications have
/// failed, judged only when at least [`FAIL_AFTER`] have been processed.
fn fails_backfill(completed: i32, failed: i32) -> bool {
    let processed = i64::from(completed) + i64::from(failed);
    processed >= FAIL_AFTER && 2 * i64::from(failed) >= processed
}

fn summary(rec: &BackfillRecord) -> ReplicationBackfillSummary {
    ReplicationBackfillSummary {
        replication_backfill_id: rec.id.clone(),
        destination: rec.destination.clone(),
        status: rec.status,
        failure_code: rec.failure_code.clone(),
        progress: rec.progress.clone(),
        started_at: rec.started_at,
        ended_at: rec.ended_at,
    }
}

/// The status as the API spells it (`IN_PROGRESS`).
fn status_name(s: ReplicationBackfillStatus) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn check_page(max: Option<i32>, limit: i32) -> Result<(), RegistryError> {
    match max {
        Some(n) if !(1..=limit).contains(&n) => Err(RegistryError::InvalidParameter(format!(
            "Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must have value between 1 and {limit}' ({n})."
        ))),
        _ => Ok(()),
    }
}

fn check_id(id: &str) -> Result<(), RegistryError> {
    if uuid::Uuid::parse_str(id).is_ok() && id.len() == 36 {
        return Ok(());
    }
    Err(RegistryError::InvalidParameter(format!(
        "Invalid parameter at 'replicationBackfillId' failed to satisfy constraint: 'must be a UUID' ('{}').",
        id.chars().take(64).collect::<String>()
    )))
}

/// StartReplicationBackfill.
pub(crate) async fn start_replication_backfill(
    reg: &Registry,
    req: StartReplicationBackfillRequest,
) -> Result<StartReplicationBackfillResponse, RegistryError> {
    crate::ecr::check_registry(reg, req.registry_id.as_ref())?;
    let dest = req.destination;
    let cfg = reg.replication_config().await?;
    let configured = cfg.rules.iter().any(|r| {
        r.destinations
            .iter()
            .any(|d| d.region == dest.region && d.registry_id == dest.registry_id)
    });
    if !configured {
        return Err(validation(format!(
            "The destination (region {}, registry {}) is not in the registry's replication configuration.",
            dest.region, dest.registry_id
        )));
    }
    let running: Vec<BackfillRecord> = reg
        .backfills()
        .await?
        .into_iter()
        .filter(|b| is_running(b.status))
        .collect();
    if let Some(b) = running.iter().find(|b| b.destination.region == dest.region) {
        return Err(RegistryError::ReplicationBackfillInProgress(format!(
            "The replication backfill '{}' to region {} is in progress; only one can run per destination region.",
            b.id, dest.region
        )));
    }
    if running.len() >= MAX_RUNNING {
        return Err(RegistryError::LimitExceeded(format!(
            "At most {MAX_RUNNING} replication backfills can be in progress at once."
        )));
    }
    let rec = BackfillRecord {
        id: uuid::Uuid::new_v4().to_string(),
        destination: dest,
        status: ReplicationBackfillStatus::Preparing,
        failure_code: None,
        started_at: now(),
        ended_at: None,
        progress: None,
        results: Vec::new(),
    };
    reg.objects()
        .commit(store::Txn::new().put(key(&rec.id), encode(&rec)?))
        .await?;
    tracing::info!(backfill = %rec.id, region = %rec.destination.region, registry = %rec.destination.registry_id, "Replication backfill started.");
    let stop = reg.inner_backfills().start(&rec.id);
    let (worker, started) = (reg.clone(), rec.clone());
    store::fence::spawn(async move {
        let id = started.id.clone();
        worker.run_backfill(started, stop).await;
        worker.inner_backfills().end(&id);
    });
    Ok(StartReplicationBackfillResponse {
        replication_backfill_id: Some(rec.id),
        registry_id: Some(reg.registry_id().to_owned()),
        destination: Some(rec.destination),
        status: Some(rec.status),
        started_at: Some(rec.started_at),
    })
}

/// StopReplicationBackfill.
pub(crate) async fn stop_replication_backfill(
    reg: &Registry,
    req: StopReplicationBackfillRequest,
) -> Result<StopReplicationBackfillResponse, RegistryError> {
    crate::ecr::check_registry(reg, req.registry_id.as_ref())?;
    check_id(&req.replication_backfill_id)?;
    let mut rec = reg.backfill(&req.replication_backfill_id).await?;
    if !is_running(rec.status) {
        return Err(RegistryError::ReplicationBackfillInvalidStatus(format!(
            "The replication backfill '{}' is {} and cannot be stopped.",
            rec.id,
            status_name(rec.status)
        )));
    }
    if reg.inner_backfills().stop(&rec.id) {
        // The running task ends it after the image it is copying.
        rec.status = ReplicationBackfillStatus::Stopping;
    } else {
        rec.status = ReplicationBackfillStatus::Stopped;
        rec.ended_at = Some(now());
        reg.save_backfill(&rec).await;
    }
    Ok(StopReplicationBackfillResponse {
        registry_id: Some(reg.registry_id().to_owned()),
        replication_backfill_id: Some(rec.id),
        destination: Some(rec.destination),
        status: Some(rec.status),
        started_at: Some(rec.started_at),
    })
}

/// ListReplicationBackfills.
pub(crate) async fn list_replication_backfills(
    reg: &Registry,
    req: ListReplicationBackfillsRequest,
) -> Result<ListReplicationBackfillsResponse, RegistryError> {
    crate::ecr::check_registry(reg, req.registry_id.as_ref())?;
    check_page(req.max_results, MAX_LIST_PAGE)?;
    let all: Vec<ReplicationBackfillSummary> = reg.backfills().await?.iter().map(summary).collect();
    let (page, next) = crate::ecr::page(all, req.next_token.as_deref(), req.max_results)?;
    Ok(ListReplicationBackfillsResponse {
        registry_id: Some(reg.registry_id().to_owned()),
        backfills: Some(page),
        next_token: next,
    })
}

/// DescribeReplicationBackfillResults.
pub(crate) async fn describe_replication_backfill_results(
    reg: &Registry,
    req: DescribeReplicationBackfillResultsRequest,
) -> Result<DescribeReplicationBackfillResultsResponse, RegistryError> {
    crate::ecr::check_registry(reg, req.registry_id.as_ref())?;
    check_id(&req.replication_backfill_id)?;
    check_page(req.max_results, MAX_RESULTS_PAGE)?;
    let rec = reg.backfill(&req.replication_backfill_id).await?;
    // As on AWS, per-image results come once the backfill has ended.
    let results: Vec<ReplicationBackfillResult> = if is_running(rec.status) {
        Vec::new()
    } else {
        rec.results
            .iter()
            .filter(|r| req.result_status_filter.is_none_or(|f| r.status == f))
            .cloned()
            .collect()
    };
    let (page, next) = crate::ecr::page(results, req.next_token.as_deref(), req.max_results)?;
    Ok(DescribeReplicationBackfillResultsResponse {
        registry_id: Some(reg.registry_id().to_owned()),
        replication_backfill_id: Some(rec.id.clone()),
        destination: Some(rec.destination.clone()),
        status: Some(rec.status),
        failure_code: rec.failure_code.clone(),
        progress: rec.progress.clone(),
        results: Some(page),
        started_at: Some(rec.started_at),
        ended_at: rec.ended_at,
        next_token: next,
    })
}

#[cfg(test)]
mod tests {
    use super::fails_backfill;

    #[test]
    fn a_backfill_fails_at_half_its_replications_failed_once_a_hundred_are_done() {
        // Judged only from the hundredth replication on.
        assert!(!fails_backfill(0, 99));
        assert!(fails_backfill(0, 100));
        assert!(fails_backfill(50, 50));
        assert!(!fails_backfill(51, 49));
        assert!(fails_backfill(100, 100));
        assert!(!fails_backfill(1000, 999));
        assert!(!fails_backfill(i32::MAX, 0));
        assert!(fails_backfill(i32::MAX, i32::MAX));
    }
}
