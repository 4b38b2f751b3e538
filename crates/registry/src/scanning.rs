//! ECR basic scanning: the operations (StartImageScan, DescribeImageScanFindings,
//! Put/GetRegistryScanningConfiguration, BatchGetRepositoryScanningConfiguration), the
//! scan-on-push decision, and the background queue that runs scans. The scanning itself
//! (layers, packages, the OSV database, matching) is the `scan` crate's; this module
//! feeds it the image's blobs and keeps each image's result in the state store:
//!
//! - `ecr/scan/<name>#<digest>` → [`ScanRecord`]
//! - `ecr/scanning-configuration` → the registry's `RegistryScanningConfiguration`
//!
//! Scans run on tokio's blocking pool under a semaphore, so a burst of pushes queues
//! scans instead of starving the server, and a push never waits for its scan.

use crate::error::{invalid, RegistryError};
use crate::objects::{encode, now, ManifestRecord, RepoRecord, REPO_PREFIX};
use crate::Registry;
use model::ecr::shapes::*;
use oci::reference::Reference;
use oci::Digest;
use std::collections::BTreeMap;
use std::sync::Arc;
use store::Txn;

/// Scans at once per registry (each holds a blocking thread).
const CONCURRENT_SCANS: usize = 2;
/// AWS allows one basic scan per image per 24 hours (scan on push included).
const RESCAN_AFTER_SECS: f64 = 24.0 * 3600.0;
/// DescribeImageScanFindings' default and largest page.
const DEFAULT_FINDINGS_PAGE: i32 = 100;
const MAX_FINDINGS_PAGE: usize = 1000;

const COMPLETE: &str = "The scan was completed successfully.";
const IN_PROGRESS: &str = "The scan is in progress.";
const CONFIG_KEY: &str = "ecr/scanning-configuration";

/// Layer media types the scanner reads (tar, gzip-compressed or not).
const TAR_LAYERS: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

/// Key of an image's scan record.
pub(crate) fn scan_key(name: &str, d: &Digest) -> String {
    format!("{ALL_SCANS}{name}#{d}")
}

/// Prefix of every scan record.
const ALL_SCANS: &str = "ecr/scan/";

/// Prefix of a repository's scan records (deleted with the repository).
pub(crate) fn scan_prefix(name: &str) -> String {
    format!("{ALL_SCANS}{name}#")
}

/// One image's scan.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct ScanRecord {
    status: ScanStatus,
    description: String,
    /// When the scan was started (epoch seconds): the 24-hour limit counts from here.
    started_at: f64,
    completed_at: Option<f64>,
    /// The vulnerability database's date.
    source_updated_at: Option<f64>,
    #[serde(default)]
    findings: Vec<scan::Finding>,
}

impl ScanRecord {
    fn status(&self) -> ImageScanStatus {
        ImageScanStatus {
            status: Some(self.status),
            description: Some(self.description.clone()),
        }
    }

    fn counts(&self) -> Option<BTreeMap<String, i32>> {
        let mut counts: BTreeMap<String, i32> = BTreeMap::new();
        for f in &self.findings {
            *counts.entry(f.severity.clone()).or_default() += 1;
        }
        // AWS omits the member (not an empty map) when nothing was found.
        (!counts.is_empty()).then_some(counts)
    }

    /// `imageScanFindingsSummary` of DescribeImages (only once the scan has finished).
    fn summary(&self) -> Option<ImageScanFindingsSummary> {
        (self.status == ScanStatus::Complete).then(|| ImageScanFindingsSummary {
            image_scan_completed_at: self.completed_at,
            vulnerability_source_updated_at: self.source_updated_at,
            finding_severity_counts: self.counts(),
        })
    }
}

/// The scanner of one registry: its vulnerability database and its queue.
pub(crate) struct Scanner {
    db: Option<Arc<scan::Database>>,
    permits: Arc<tokio::sync::Semaphore>,
    limits: scan::Limits,
}

impl Scanner {
    pub(crate) fn new(db: Option<Arc<scan::Database>>) -> Self {
        Self {
            db,
            permits: Arc::new(tokio::sync::Semaphore::new(CONCURRENT_SCANS)),
            limits: scan::Limits::default(),
        }
    }
}

impl Registry {
    fn scanner(&self) -> &Scanner {
        self.inner
            .scanner
            .get_or_init(|| Scanner::new(scan::Database::in_memory().ok().map(Arc::new)))
    }

    /// Scans with the vulnerability database `db` (the server's `scan.db`); without one,
    /// scans match against an empty database. The first database set stays.
    #[must_use]
    pub fn with_scan_database(self, db: Arc<scan::Database>) -> Self {
        if self.inner.scanner.set(Scanner::new(Some(db))).is_err() {
            tracing::warn!("Registry scanner already set; keeping the first.");
        }
        self
    }

    /// Imports OSV records into the vulnerability database (`stevedore scan-db import`).
    pub async fn import_vulnerabilities(
        &self,
        files: Vec<scan::db::SourceFile>,
    ) -> Result<scan::db::ImportReport, RegistryError> {
        let db = self.scanner().db.clone().ok_or_else(|| {
            RegistryError::Storage("the vulnerability database could not be opened".into())
        })?;
        let now = crate::now_secs();
        tokio::task::spawn_blocking(move || db.import(files, now))
            .await
            .map_err(|e| RegistryError::Storage(format!("the import stopped: {e}")))?
            .map_err(|e| RegistryError::Storage(e.to_string()))
    }

    /// Called once a manifest is stored: starts its scan in the background when the
    /// repository or the registry's rules ask for scan on push. Never waits for it.
    pub(crate) fn on_push(&self, name: &str, record: &ManifestRecord) {
        if !record.children.is_empty() {
            return; // an index: its images are scanned when they are pushed
        }
        let (reg, name, digest) = (self.clone(), name.to_owned(), record.digest.clone());
        tokio::spawn(async move {
            match reg.scans_on_push(&name).await {
                Ok(true) => {
                    if let Err(error) = reg.start_scan(&name, &digest, false).await {
                        tracing::warn!(repository = %name, %digest, %error, "Scan on push not started.");
                    }
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(repository = %name, %error, "Could not read the scanning configuration.")
                }
            }
        });
    }

    async fn registry_scanning(&self) -> Result<RegistryScanningConfiguration, RegistryError> {
        Ok(self
            .objects()
            .get::<RegistryScanningConfiguration>(CONFIG_KEY)
            .await?
            .map(|(c, _)| c)
            .unwrap_or_else(|| RegistryScanningConfiguration {
                scan_type: Some(ScanType::Basic),
                rules: Some(Vec::new()),
            }))
    }

    /// Scan frequency and the filters that chose it: the registry's rules decide once
    /// there are any, else the repository's own `scanOnPush`.
    async fn repository_scanning(
        &self,
        name: &str,
        repo: &RepoRecord,
    ) -> Result<(ScanFrequency, Vec<ScanningRepositoryFilter>), RegistryError> {
        let config = self.registry_scanning().await?;
        let rules = config.rules.unwrap_or_default();
        if rules.is_empty() {
            let on_push = repo
                .repository
                .image_scanning_configuration
                .as_ref()
                .and_then(|c| c.scan_on_push)
                .unwrap_or(false);
            let frequency = if on_push {
                ScanFrequency::ScanOnPush
            } else {
                ScanFrequency::Manual
            };
            return Ok((frequency, Vec::new()));
        }
        for rule in rules {
            let hits: Vec<ScanningRepositoryFilter> = rule
                .repository_filters
                .iter()
                .filter(|f| filter_matches(&f.filter, name))
                .cloned()
                .collect();
            if !hits.is_empty() {
                return Ok((rule.scan_frequency, hits));
            }
        }
        Ok((ScanFrequency::Manual, Vec::new()))
    }

    async fn scans_on_push(&self, name: &str) -> Result<bool, RegistryError> {
        let (repo, _) = self.repo(name).await?;
        let (frequency, _) = self.repository_scanning(name, &repo).await?;
        Ok(frequency == ScanFrequency::ScanOnPush)
    }

    /// Records the scan as IN_PROGRESS and queues it; a `manual` scan (StartImageScan)
    /// is refused within 24 hours of the image's last one, and a scan already in
    /// progress is not queued twice.
    async fn start_scan(
        &self,
        name: &str,
        digest: &Digest,
        manual: bool,
    ) -> Result<ScanRecord, RegistryError> {
        let key = scan_key(name, digest);
        let started = now();
        let record = ScanRecord {
            status: ScanStatus::InProgress,
            description: IN_PROGRESS.into(),
            started_at: started,
            completed_at: None,
            source_updated_at: None,
            findings: Vec::new(),
        };
        let rec = record.clone();
        self.objects()
            .retry(&format!("scan {name}@{digest}"), || {
                let (key, rec) = (key.clone(), rec.clone());
                async move {
                    let previous = self.objects().get::<ScanRecord>(&key).await?;
                    let rev = match previous {
                        Some((p, _)) if manual && started - p.started_at < RESCAN_AFTER_SECS => {
                            return Err(RegistryError::LimitExceeded(
                                "The scan quota per image has been exceeded. Wait and try again."
                                    .into(),
                            ))
                        }
                        Some((p, _)) if p.status == ScanStatus::InProgress => {
                            return Ok(store::Step::Done(false))
                        }
                        Some((_, rev)) => rev,
                        None => 0,
                    };
                    let txn = Txn::new().when(key.clone(), rev).put(key, encode(&rec)?);
                    Ok(store::Step::Commit(txn, true))
                }
            })
            .await
            .map(|queued| {
                if queued {
                    let (reg, name, digest) = (self.clone(), name.to_owned(), digest.clone());
                    // Fenced like its caller: resumed by a leader, a scan writes only in its term.
                    store::fence::spawn(async move { reg.run_scan(name, digest, started).await });
                }
            })?;
        Ok(record)
    }

    /// Runs one queued scan and stores its outcome.
    async fn run_scan(self, name: String, digest: Digest, started: f64) {
        let permits = self.scanner().permits.clone();
        let Ok(_permit) = permits.acquire_owned().await else {
            return; // the semaphore is never closed
        };
        let outcome = self.scan_image(&name, &digest).await;
        let source_updated_at = match &self.scanner().db {
            Some(db) => {
                let db = db.clone();
                tokio::task::spawn_blocking(move || db.updated_at().ok().flatten())
                    .await
                    .ok()
                    .flatten()
                    .map(|t| t as f64)
            }
            None => None,
        };
        let (status, description, findings) = match outcome {
            Ok(report) => (ScanStatus::Complete, COMPLETE.to_owned(), report.findings),
            Err(ScanOutcome::Unsupported(why)) => (ScanStatus::UnsupportedImage, why, Vec::new()),
            Err(ScanOutcome::Failed(why)) => (ScanStatus::Failed, why, Vec::new()),
        };
        tracing::info!(repository = %name, %digest, status = ?status, findings = findings.len(), %description, "Image scan finished.");
        let record = ScanRecord {
            status,
            description,
            started_at: started,
            completed_at: Some(now()),
            source_updated_at,
            findings,
        };
        let key = scan_key(&name, &digest);
        let stored = match encode(&record) {
            Ok(body) => self.objects().commit(Txn::new().put(key, body)).await,
            Err(e) => Err(e),
        };
        if let Err(error) = stored {
            tracing::warn!(repository = %name, %digest, %error, "Could not store the scan's result.");
        }
    }

    async fn scan_image(&self, name: &str, digest: &Digest) -> Result<scan::Report, ScanOutcome> {
        let failed = |e: RegistryError| ScanOutcome::Failed(e.to_string());
        let rec = self
            .resolve(name, &Reference::Digest(digest.clone()))
            .await
            .map_err(failed)?;
        let bytes = self.manifest_bytes(name, digest).await.map_err(failed)?;
        let manifest = oci::Manifest::parse(&bytes, Some(&rec.media_type))
            .map_err(|e| ScanOutcome::Failed(format!("the manifest is unreadable: {e}")))?;
        if let Some(l) = manifest
            .layers
            .iter()
            .find(|l| !TAR_LAYERS.contains(&l.media_type.as_str()))
        {
            return Err(ScanOutcome::Unsupported(format!(
                "UnsupportedImageError: layer media type {} is not supported.",
                l.media_type
            )));
        }
        let layers: Vec<Digest> = manifest.layers.iter().map(|l| l.digest.clone()).collect();
        let (blobs, handle) = (self.blobs().clone(), tokio::runtime::Handle::current());
        let scanner = self.scanner();
        let (db, limits) = (scanner.db.clone(), scanner.limits.clone());
        let work = tokio::task::spawn_blocking(move || {
            let Some(db) = db else {
                return Err(scan::ScanError::Limit(
                    "the vulnerability database could not be opened".into(),
                ));
            };
            let open = layers.iter().map(|d| {
                let blob = handle
                    .block_on(blobs.read(d, None))
                    .map_err(|e| scan::ScanError::Layer(d.to_string(), e.to_string()))?;
                let reader =
                    tokio_util::io::SyncIoBridge::new_with_handle(blob.reader, handle.clone());
                Ok((d.to_string(), reader))
            });
            let fs = scan::read_layers(open, &limits)?;
            scan::scan(&fs, &db)
        });
        match work.await {
            Ok(Ok(report)) => Ok(report),
            Ok(Err(e @ (scan::ScanError::NoPackages | scan::ScanError::Unsupported(_)))) => {
                Err(ScanOutcome::Unsupported(match e {
                    scan::ScanError::Unsupported(why) => format!("UnsupportedImageError: {why}"),
                    e => e.to_string(),
                }))
            }
            Ok(Err(e)) => Err(ScanOutcome::Failed(e.to_string())),
            Err(e) => Err(ScanOutcome::Failed(format!("the scan stopped: {e}"))),
        }
    }

    /// Queues again the scans a stopped server left IN_PROGRESS (run once at start), so
    /// none stays in progress for ever.
    pub(crate) async fn resume_scans(&self) -> Result<usize, RegistryError> {
        let mut resumed = 0;
        for (key, rec, _) in self.objects().list::<ScanRecord>(ALL_SCANS).await? {
            if rec.status != ScanStatus::InProgress {
                continue;
            }
            let parsed = key
                .strip_prefix(ALL_SCANS)
                .and_then(|k| k.rsplit_once('#'))
                .and_then(|(name, d)| Some((name.to_owned(), Digest::parse(d).ok()?)));
            let Some((name, digest)) = parsed else {
                tracing::warn!(%key, "Unreadable scan key; skipped.");
                continue;
            };
            let reg = self.clone();
            // The leader resumes scans: each writes only while its term holds.
            store::fence::spawn(async move { reg.run_scan(name, digest, rec.started_at).await });
            resumed += 1;
        }
        Ok(resumed)
    }

    /// The scan of an image, if it has one (DescribeImages).
    pub(crate) async fn scan_of(
        &self,
        name: &str,
        digest: &Digest,
    ) -> Result<Option<(ImageScanStatus, Option<ImageScanFindingsSummary>)>, RegistryError> {
        Ok(self
            .objects()
            .get::<ScanRecord>(&scan_key(name, digest))
            .await?
            .map(|(r, _)| (r.status(), r.summary())))
    }
}

enum ScanOutcome {
    Unsupported(String),
    Failed(String),
}

/// A registry rule's filter: with `*` a glob over the whole name, without one a
/// substring.
fn filter_matches(filter: &str, name: &str) -> bool {
    if filter.contains('*') {
        crate::lifecycle_policy::wildcard(filter, name)
    } else {
        name.contains(filter)
    }
}

fn image_id(rec: &ManifestRecord, asked: &ImageIdentifier) -> ImageIdentifier {
    ImageIdentifier {
        image_digest: Some(rec.digest.to_string()),
        image_tag: asked.image_tag.clone(),
    }
}

/// Checks the request's registry and repository and resolves its image id, failing with
/// RepositoryNotFoundException or ImageNotFoundException in ECR's words.
async fn image(
    reg: &Registry,
    registry_id: Option<&String>,
    name: &str,
    id: &ImageIdentifier,
) -> Result<ManifestRecord, RegistryError> {
    crate::ecr::check_registry(reg, registry_id)?;
    crate::ecr::check_name(name)?;
    reg.repo(name).await?;
    match crate::ecr::resolve_id(reg, name, id).await? {
        Ok(rec) => Ok(rec),
        Err(f) => match f.failure_code {
            Some(ImageFailureCode::InvalidImageDigest | ImageFailureCode::InvalidImageTag) => {
                invalid(f.failure_reason.unwrap_or_default())
            }
            _ => Err(RegistryError::ImageNotFound(crate::ecr::image_not_found(
                reg, name, id,
            ))),
        },
    }
}

pub(crate) async fn start_image_scan(
    reg: &Registry,
    req: StartImageScanRequest,
) -> Result<StartImageScanResponse, RegistryError> {
    let name = req.repository_name.as_str();
    let rec = image(reg, req.registry_id.as_ref(), name, &req.image_id).await?;
    if !rec.children.is_empty() {
        return Err(RegistryError::Unsupported(
            "The image is a manifest list or image index, which basic scanning does not scan."
                .into(),
        ));
    }
    let scan = reg.start_scan(name, &rec.digest, true).await?;
    Ok(StartImageScanResponse {
        registry_id: Some(reg.registry_id().to_owned()),
        repository_name: Some(name.to_owned()),
        image_id: Some(image_id(&rec, &req.image_id)),
        image_scan_status: Some(scan.status()),
    })
}

pub(crate) async fn describe_image_scan_findings(
    reg: &Registry,
    req: DescribeImageScanFindingsRequest,
) -> Result<DescribeImageScanFindingsResponse, RegistryError> {
    let name = req.repository_name.as_str();
    let rec = image(reg, req.registry_id.as_ref(), name, &req.image_id).await?;
    let Some((scan, _)) = reg
        .objects()
        .get::<ScanRecord>(&scan_key(name, &rec.digest))
        .await?
    else {
        return Err(RegistryError::ScanNotFound(format!(
            "Image scan does not exist for the image with '{{imageDigest:'{}', imageTag:'{}'}}' in the repository with name '{name}' in the registry with id '{}'",
            rec.digest,
            req.image_id.image_tag.as_deref().unwrap_or("null"),
            reg.registry_id()
        )));
    };
    if req
        .max_results
        .is_some_and(|m| m < 1 || usize::try_from(m).unwrap_or(usize::MAX) > MAX_FINDINGS_PAGE)
    {
        return invalid(format!(
            "maxResults must be between 1 and {MAX_FINDINGS_PAGE}."
        ));
    }
    let findings: Vec<ImageScanFinding> = scan.findings.iter().map(finding).collect();
    let (page, next) = crate::ecr::page(
        findings,
        req.next_token.as_deref(),
        Some(req.max_results.unwrap_or(DEFAULT_FINDINGS_PAGE)),
    )?;
    let finished = scan.status == ScanStatus::Complete;
    Ok(DescribeImageScanFindingsResponse {
        registry_id: Some(reg.registry_id().to_owned()),
        repository_name: Some(name.to_owned()),
        image_id: Some(image_id(&rec, &req.image_id)),
        image_scan_status: Some(scan.status()),
        image_scan_findings: finished.then(|| ImageScanFindings {
            image_scan_completed_at: scan.completed_at,
            vulnerability_source_updated_at: scan.source_updated_at,
            finding_severity_counts: scan.counts(),
            findings: Some(page),
            enhanced_findings: None,
        }),
        next_token: next,
    })
}

fn finding(f: &scan::Finding) -> ImageScanFinding {
    let severity = serde_json::from_value(serde_json::Value::String(f.severity.clone()))
        .unwrap_or(FindingSeverity::Undefined);
    ImageScanFinding {
        name: Some(f.name.clone()),
        description: f.description.clone(),
        uri: f.uri.clone(),
        severity: Some(severity),
        attributes: Some(vec![
            Attribute {
                key: "package_version".into(),
                value: Some(f.package_version.clone()),
            },
            Attribute {
                key: "package_name".into(),
                value: Some(f.package_name.clone()),
            },
        ]),
    }
}

pub(crate) async fn put_registry_scanning_configuration(
    reg: &Registry,
    req: PutRegistryScanningConfigurationRequest,
) -> Result<PutRegistryScanningConfigurationResponse, RegistryError> {
    let scan_type = req.scan_type.unwrap_or(ScanType::Basic);
    if scan_type == ScanType::Enhanced {
        return invalid(
            "scanType ENHANCED (Amazon Inspector) is not available on this registry; use BASIC.",
        );
    }
    let rules = req.rules.unwrap_or_default();
    if rules.len() > 2 {
        return invalid("rules may hold at most 2 scanning rules.");
    }
    for rule in &rules {
        if rule.scan_frequency != ScanFrequency::ScanOnPush {
            return invalid(format!(
                "scanFrequency {} is not supported for scanType BASIC; use SCAN_ON_PUSH.",
                rule.scan_frequency.as_str()
            ));
        }
        if rule.repository_filters.is_empty() || rule.repository_filters.len() > 100 {
            return invalid("repositoryFilters must hold 1-100 filters.");
        }
        for f in &rule.repository_filters {
            let ok = !f.filter.is_empty()
                && f.filter.len() <= 256
                && f.filter
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/*".contains(&b));
            if !ok {
                return invalid(format!(
                    "Invalid parameter at 'filter' failed to satisfy constraint: 'must satisfy regular expression '^[a-z0-9*](?:[._\\-/a-z0-9*]?[a-z0-9*]+)*$'' ('{}')",
                    f.filter
                ));
            }
        }
    }
    let config = RegistryScanningConfiguration {
        scan_type: Some(scan_type),
        rules: Some(rules),
    };
    reg.objects()
        .commit(Txn::new().put(CONFIG_KEY, encode(&config)?))
        .await?;
    Ok(PutRegistryScanningConfigurationResponse {
        registry_scanning_configuration: Some(config),
    })
}

pub(crate) async fn get_registry_scanning_configuration(
    reg: &Registry,
    _req: GetRegistryScanningConfigurationRequest,
) -> Result<GetRegistryScanningConfigurationResponse, RegistryError> {
    Ok(GetRegistryScanningConfigurationResponse {
        registry_id: Some(reg.registry_id().to_owned()),
        scanning_configuration: Some(reg.registry_scanning().await?),
    })
}

pub(crate) async fn batch_get_repository_scanning_configuration(
    reg: &Registry,
    req: BatchGetRepositoryScanningConfigurationRequest,
) -> Result<BatchGetRepositoryScanningConfigurationResponse, RegistryError> {
    if req.repository_names.is_empty() || req.repository_names.len() > 25 {
        return invalid("repositoryNames must hold 1-25 repository names.");
    }
    let (mut configs, mut failures) = (Vec::new(), Vec::new());
    for name in &req.repository_names {
        crate::ecr::check_name(name)?;
        let Some((repo, _)) = reg
            .objects()
            .get::<RepoRecord>(&format!("{REPO_PREFIX}{name}"))
            .await?
        else {
            failures.push(RepositoryScanningConfigurationFailure {
                repository_name: Some(name.clone()),
                failure_code: Some(ScanningConfigurationFailureCode::RepositoryNotFound),
                failure_reason: Some("REPOSITORY_NOT_FOUND".into()),
            });
            continue;
        };
        let (frequency, filters) = reg.repository_scanning(name, &repo).await?;
        configs.push(RepositoryScanningConfiguration {
            repository_arn: repo.repository.repository_arn.clone(),
            repository_name: Some(name.clone()),
            scan_on_push: Some(frequency == ScanFrequency::ScanOnPush),
            scan_frequency: Some(frequency),
            applied_scan_filters: Some(filters),
        });
    }
    Ok(BatchGetRepositoryScanningConfigurationResponse {
        scanning_configurations: Some(configs),
        failures: Some(failures),
    })
}

#[cfg(test)]
mod tests {
    use super::filter_matches;

    #[test]
    fn filters_are_substrings_without_a_wildcard_and_globs_with_one() {
        assert!(filter_matches("app", "team/app-api"));
        assert!(!filter_matches("web", "team/app"));
        assert!(filter_matches("team/*", "team/app"));
        assert!(!filter_matches("team/*", "other/team/app"));
        assert!(filter_matches("*", "anything"));
    }
}
