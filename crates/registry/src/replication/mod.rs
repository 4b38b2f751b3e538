//! ECR private image replication: PutReplicationConfiguration / DescribeRegistry's
//! configuration, DescribeImageReplicationStatus, and the copy itself. A push to a
//! repository that a rule's filters select is copied — blobs, child manifests, the
//! manifest and the tags pointing at it — to every destination (region, account) of
//! this server, in the background, retrying with backoff; each destination's status goes
//! IN_PROGRESS → COMPLETE or FAILED (with a reason). The destination's registry is found
//! through [`Replicas`] (the binary builds a region on first use). Across accounts the
//! destination's registry policy must allow the source account `ecr:ReplicateImage`
//! (and `ecr:CreateRepository` when the repository does not exist there yet), as AWS
//! requires; a replicated image is not replicated again. A destination whose registry
//! id the destinations directory names is another Stevedore server (`external.rs`).
//!
//! As on AWS, only pushes made while a rule selects the repository replicate (images
//! already there stay where they are until a backfill sends them, `backfill.rs`), and
//! deleting an image is not replicated.

mod backfill;
mod external;

pub(crate) use backfill::{
    describe_replication_backfill_results, list_replication_backfills, start_replication_backfill,
    stop_replication_backfill, Running,
};

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;

use model::ecr::shapes::*;
use oci::reference::Reference;
use oci::Digest;
use serde::{Deserialize, Serialize};

use crate::error::RegistryError;
use crate::objects::{encode, now, ManifestRecord};
use crate::Registry;

/// The header a replication copy to another Stevedore server sends with each manifest
/// (its value: `<region>/<registryId>` of the source). The receiving server stores such
/// a manifest without replicating it again — AWS replicates one hop, so an image that
/// arrived by replication is not sent on by the destination's own rules — and accepts
/// the header only from a principal allowed `ecr:ReplicateImage` on the repository.
pub(crate) const REPLICA_HEADER: &str = "x-stevedore-replicated-from";

/// Finds (building it if needed) the registry of an account and region of this server.
pub type Replicas = Arc<
    dyn Fn(String, String) -> Pin<Box<dyn Future<Output = Option<Registry>> + Send>> + Send + Sync,
>;

/// Where the registry's replication configuration is kept.
const CONFIG_KEY: &str = "ecr/replication-config";
/// Where each image's replication statuses are kept.
const STATUS_PREFIX: &str = "ecr/replication-status/";
/// AWS's quotas: rules per configuration, distinct destinations across rules.
const MAX_RULES: usize = 10;
const MAX_DESTINATIONS: usize = 25;
/// Tries per destination before it is FAILED; the wait doubles from the first.
const ATTEMPTS: u32 = 5;
const FIRST_WAIT: Duration = Duration::from_millis(200);
/// Blobs of one manifest uploaded at once to another server.
const PARALLEL_UPLOADS: usize = 4;
/// How deep an index of indexes is followed.
const MAX_DEPTH: u32 = 4;

/// One destination's replication of one image.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusRecord {
    region: String,
    registry_id: String,
    status: ReplicationStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failure_code: Option<String>,
    updated_at: f64,
}

fn status_prefix(name: &str, digest: &Digest) -> String {
    format!("{STATUS_PREFIX}{name}@{digest}/")
}

fn status_key(name: &str, digest: &Digest, region: &str, registry: &str) -> String {
    format!("{}{region}/{registry}", status_prefix(name, digest))
}

fn validation(message: impl Into<String>) -> RegistryError {
    RegistryError::Validation(message.into())
}

/// Checks a configuration as AWS does; `own` is (region, account) of this registry.
fn check(cfg: &ReplicationConfiguration, own: (&str, &str)) -> Result<(), RegistryError> {
    if cfg.rules.len() > MAX_RULES {
        return Err(validation(format!(
            "A replication configuration can hold at most {MAX_RULES} rules, got {}.",
            cfg.rules.len()
        )));
    }
    let mut destinations = BTreeSet::new();
    for (i, rule) in cfg.rules.iter().enumerate() {
        if rule.destinations.is_empty() {
            return Err(validation(format!("Rule {i} has no destination.")));
        }
        if rule.delete_replication.as_ref().is_some_and(|d| d.enabled) {
            return Err(RegistryError::InvalidParameter(
                "deleteReplication is not supported by Stevedore: image deletions are not replicated; omit it or set enabled to false.".into(),
            ));
        }
        for d in &rule.destinations {
            if d.registry_id.len() != 12 || !d.registry_id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(validation(format!(
                    "Invalid registryId '{}' in a replication destination: it must be 12 digits.",
                    d.registry_id
                )));
            }
            if !model::region::valid(&d.region) {
                return Err(validation(format!(
                    "Invalid region '{}' in a replication destination.",
                    d.region
                )));
            }
            if (d.region.as_str(), d.registry_id.as_str()) == own {
                return Err(validation(format!(
                    "A replication destination cannot be the source registry itself (region {}, registry {}).",
                    d.region, d.registry_id
                )));
            }
            destinations.insert((d.region.clone(), d.registry_id.clone()));
        }
        for f in rule.repository_filters.iter().flatten() {
            let ok = (2..=256).contains(&f.filter.len())
                && f.filter
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b));
            if !ok {
                return Err(validation(format!(
                    "Invalid repository filter '{}': 2-256 characters of lowercase letters, digits, '.', '_', '-' and '/'.",
                    f.filter
                )));
            }
        }
    }
    if destinations.len() > MAX_DESTINATIONS {
        return Err(validation(format!(
            "A replication configuration can name at most {MAX_DESTINATIONS} distinct destinations, got {}.",
            destinations.len()
        )));
    }
    Ok(())
}

/// The destinations whose rules select repository `name`, each once.
fn destinations_for(cfg: &ReplicationConfiguration, name: &str) -> Vec<(String, String)> {
    let mut out = BTreeSet::new();
    for rule in &cfg.rules {
        let selected = match &rule.repository_filters {
            None => true,
            Some(filters) if filters.is_empty() => true,
            Some(filters) => filters.iter().any(|f| name.starts_with(&f.filter)),
        };
        if selected {
            for d in &rule.destinations {
                out.insert((d.region.clone(), d.registry_id.clone()));
            }
        }
    }
    out.into_iter().collect()
}

impl Registry {
    /// The replication configuration (no rules when none was put).
    pub(crate) async fn replication_config(
        &self,
    ) -> Result<ReplicationConfiguration, RegistryError> {
        Ok(self
            .objects()
            .get::<ReplicationConfiguration>(CONFIG_KEY)
            .await?
            .map_or(ReplicationConfiguration { rules: vec![] }, |(c, _)| c))
    }

    /// Starts replicating a pushed manifest to every destination that selects `name`.
    pub(crate) fn replicate(&self, name: &str, record: &ManifestRecord) {
        if self.replicas().is_none() && self.config().replication_destinations.is_none() {
            return;
        }
        let (reg, name, digest) = (self.clone(), name.to_owned(), record.digest.clone());
        // Fenced like the caller (a controller's term carries over; a push has none).
        store::fence::spawn(async move {
            let cfg = match reg.replication_config().await {
                Ok(cfg) => cfg,
                Err(error) => {
                    tracing::warn!(repository = %name, %error, "Could not read the replication configuration.");
                    return;
                }
            };
            for (region, registry) in destinations_for(&cfg, &name) {
                let (reg, name, digest) = (reg.clone(), name.clone(), digest.clone());
                store::fence::spawn(async move {
                    let _ = reg.replicate_to(&name, &digest, &region, &registry).await;
                });
            }
        });
    }

    /// Copies one image to one destination, retrying with backoff, and records its
    /// status; the reason when it failed.
    async fn replicate_to(
        &self,
        name: &str,
        digest: &Digest,
        region: &str,
        registry: &str,
    ) -> Result<(), String> {
        self.set_status(
            name,
            digest,
            region,
            registry,
            ReplicationStatus::InProgress,
            None,
        )
        .await;
        let mut wait = FIRST_WAIT;
        let mut outcome = Err("not attempted".to_owned());
        for attempt in 1..=ATTEMPTS {
            outcome = self.attempt(name, digest, region, registry).await;
            match &outcome {
                Ok(()) => break,
                Err(reason) if attempt < ATTEMPTS => {
                    tracing::info!(repository = name, %digest, region, registry, attempt, reason = %reason, "Replication attempt failed; retrying.");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(_) => {}
            }
        }
        match &outcome {
            Ok(()) => {
                tracing::info!(repository = name, %digest, region, registry, "Image replicated.");
                self.set_status(
                    name,
                    digest,
                    region,
                    registry,
                    ReplicationStatus::Complete,
                    None,
                )
                .await;
            }
            Err(reason) => {
                tracing::warn!(repository = name, %digest, region, registry, reason = %reason, "Image replication failed.");
                self.set_status(
                    name,
                    digest,
                    region,
                    registry,
                    ReplicationStatus::Failed,
                    Some(reason.clone()),
                )
                .await;
            }
        }
        outcome
    }

    /// One try at copying image `digest` of `name` to (`region`, `registry`): another
    /// Stevedore server when the destinations directory names the registry, else an
    /// account and region of this server.
    async fn attempt(
        &self,
        name: &str,
        digest: &Digest,
        region: &str,
        registry: &str,
    ) -> Result<(), String> {
        if let Some(dir) = &self.config().replication_destinations {
            if let Some(dest) = external::load(dir, registry).await? {
                return self.copy_image_external(&dest, region, name, digest).await;
            }
        }
        let found = match self.replicas() {
            Some(replicas) => replicas(registry.to_owned(), region.to_owned()).await,
            None => None,
        };
        match found {
            Some(dst) => self.copy_image(&dst, name, digest).await,
            None => Err(format!(
                "The destination registry {registry} in {region} is not served by this server, and no destination file names it."
            )),
        }
    }

    /// Copies image `digest` of `name` (blobs the destination lacks, child manifests,
    /// the manifest and the tags pointing at it) to another Stevedore server.
    async fn copy_image_external(
        &self,
        dest: &external::Destination,
        region: &str,
        name: &str,
        digest: &Digest,
    ) -> Result<(), String> {
        let mut remote =
            external::Remote::new(dest, region, &self.config().region, self.registry_id())?;
        remote.ensure_repository(name).await?;
        remote.login().await?;
        let media_type = self
            .copy_manifest_external(&remote, name, digest, 0)
            .await?;
        let bytes = self
            .manifest_bytes(name, digest)
            .await
            .map_err(|e| e.to_string())?;
        for (tag, t) in self.tags(name).await.map_err(|e| e.to_string())? {
            if &t.digest == digest {
                remote
                    .put_manifest(name, &tag, bytes.clone(), &media_type)
                    .await?;
            }
        }
        Ok(())
    }

    /// Copies manifest `digest` (children first, then the blobs the destination lacks)
    /// to another server; its media type.
    fn copy_manifest_external<'a>(
        &'a self,
        remote: &'a external::Remote<'a>,
        name: &'a str,
        digest: &'a Digest,
        depth: u32,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>> {
        Box::pin(async move {
            if depth > MAX_DEPTH {
                return Err(format!(
                    "manifest {digest} nests indexes deeper than {MAX_DEPTH}"
                ));
            }
            let record = self
                .resolve(name, &Reference::Digest(digest.clone()))
                .await
                .map_err(|e| e.to_string())?;
            for child in &record.children {
                self.copy_manifest_external(remote, name, child, depth + 1)
                    .await?;
            }
            // Layers go up side by side over the one connection pool, each skipped when
            // the destination already has it (a HEAD).
            futures_util::stream::iter(record.blobs.iter().map(Ok))
                .try_for_each_concurrent(PARALLEL_UPLOADS, |blob| async move {
                    if remote.has_blob(name, blob).await? {
                        return Ok(());
                    }
                    let read = self
                        .blobs()
                        .read_chunks(blob, None, external::UPLOAD_CHUNK)
                        .await
                        .map_err(|e| format!("reading blob {blob}: {e}"))?;
                    remote.put_blob(name, blob, read).await
                })
                .await?;
            let bytes = self
                .manifest_bytes(name, digest)
                .await
                .map_err(|e| e.to_string())?;
            remote
                .put_manifest(name, &digest.to_string(), bytes, &record.media_type)
                .await?;
            Ok(record.media_type)
        })
    }

    async fn set_status(
        &self,
        name: &str,
        digest: &Digest,
        region: &str,
        registry: &str,
        status: ReplicationStatus,
        failure_code: Option<String>,
    ) {
        let rec = StatusRecord {
            region: region.to_owned(),
            registry_id: registry.to_owned(),
            status,
            failure_code,
            updated_at: now(),
        };
        let key = status_key(name, digest, region, registry);
        let written = match encode(&rec) {
            Ok(value) => self
                .objects()
                .commit(store::Txn::new().put(key, value))
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(error) = written {
            tracing::warn!(repository = name, %digest, %error, "Could not record a replication status.");
        }
    }

    /// Copies image `digest` of `name` (its blobs, child manifests, the manifest and its
    /// tags) into `dst`; the reason when it cannot.
    async fn copy_image(&self, dst: &Registry, name: &str, digest: &Digest) -> Result<(), String> {
        let cross_account = dst.registry_id() != self.registry_id();
        if cross_account && !self.may(dst, name, "ecr:ReplicateImage").await? {
            return Err(format!(
                "The registry policy of {} does not allow account {} ecr:ReplicateImage.",
                dst.registry_id(),
                self.registry_id()
            ));
        }
        match dst.repo(name).await {
            Ok(_) => {}
            Err(RegistryError::RepositoryNotFound(..)) => {
                if cross_account && !self.may(dst, name, "ecr:CreateRepository").await? {
                    return Err(format!(
                        "Repository {name} does not exist in registry {}, and its registry policy does not allow account {} ecr:CreateRepository.",
                        dst.registry_id(),
                        self.registry_id()
                    ));
                }
                let created = crate::ecr::create_repository_named(dst, name).await;
                match created {
                    Ok(()) | Err(RegistryError::RepositoryAlreadyExists(..)) => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
            Err(e) => return Err(e.to_string()),
        }
        self.copy_manifest(dst, name, digest, 0).await?;
        // The tags that point at it here, moved there (a replicated image keeps its tags).
        let manifest = self
            .resolve(name, &Reference::Digest(digest.clone()))
            .await
            .map_err(|e| e.to_string())?;
        let bytes = self
            .manifest_bytes(name, digest)
            .await
            .map_err(|e| e.to_string())?;
        for (tag, t) in self.tags(name).await.map_err(|e| e.to_string())? {
            if &t.digest == digest {
                let reference = Reference::Tag(tag);
                dst.put_manifest_quietly(
                    name,
                    &reference,
                    bytes.clone(),
                    Some(&manifest.media_type),
                )
                .await
                .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// Copies manifest `digest` (children first, then its blobs) into `dst`.
    fn copy_manifest<'a>(
        &'a self,
        dst: &'a Registry,
        name: &'a str,
        digest: &'a Digest,
        depth: u32,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            if depth > MAX_DEPTH {
                return Err(format!(
                    "manifest {digest} nests indexes deeper than {MAX_DEPTH}"
                ));
            }
            let record = self
                .resolve(name, &Reference::Digest(digest.clone()))
                .await
                .map_err(|e| e.to_string())?;
            for child in &record.children {
                self.copy_manifest(dst, name, child, depth + 1).await?;
            }
            for blob in &record.blobs {
                self.copy_blob(dst, name, blob).await?;
            }
            let bytes = self
                .manifest_bytes(name, digest)
                .await
                .map_err(|e| e.to_string())?;
            dst.put_manifest_quietly(
                name,
                &Reference::Digest(digest.clone()),
                bytes,
                Some(&record.media_type),
            )
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
        })
    }

    /// Copies blob `digest` into `dst`'s storage and links it into `name` there.
    async fn copy_blob(&self, dst: &Registry, name: &str, digest: &Digest) -> Result<(), String> {
        let text = |e: RegistryError| e.to_string();
        if dst
            .blob_in_repo(name, digest)
            .await
            .map_err(text)?
            .is_some()
            || dst
                .link_existing(name, digest)
                .await
                .map_err(text)?
                .is_some()
        {
            return Ok(());
        }
        let read = self
            .blobs()
            .read(digest, None)
            .await
            .map_err(|e| format!("reading blob {digest}: {e}"))?;
        let id = format!("replica-{}", uuid::Uuid::new_v4().simple());
        dst.blobs()
            .begin_upload(&id)
            .await
            .map_err(|e| format!("staging blob {digest}: {e}"))?;
        let copied = async {
            dst.blobs()
                .append(&id, 0, read.reader, read.size)
                .await
                .map_err(|e| format!("copying blob {digest}: {e}"))?;
            dst.commit_upload(name, &id, digest).await.map_err(text)
        }
        .await;
        if copied.is_err() {
            let _ = dst.blobs().remove_upload(&id).await;
        }
        copied.map(|_| ())
    }

    /// Whether `dst`'s registry policy lets this registry's account do `action` on
    /// repository `name` there.
    async fn may(&self, dst: &Registry, name: &str, action: &str) -> Result<bool, String> {
        let policy = crate::ecr::registry_policy::compiled(dst)
            .await
            .map_err(|e| e.to_string())?;
        let Some(policy) = policy else {
            return Ok(false);
        };
        let principal = Arc::new(policy::Principal::root(self.registry_id()));
        let req = policy::Request::new(principal, action, &dst.repository_arn(name));
        let set = policy::PolicySet {
            identity: &[],
            resource: &[&policy],
            session: None,
        };
        Ok(policy::evaluate_for(&req, set, dst.registry_id()).is_allowed())
    }
}

/// PutReplicationConfiguration.
pub(crate) async fn put_replication_configuration(
    reg: &Registry,
    req: PutReplicationConfigurationRequest,
) -> Result<PutReplicationConfigurationResponse, RegistryError> {
    let cfg = req.replication_configuration;
    check(&cfg, (&reg.config().region, reg.registry_id()))?;
    reg.objects()
        .commit(store::Txn::new().put(CONFIG_KEY, encode(&cfg)?))
        .await?;
    tracing::info!(rules = cfg.rules.len(), "Replication configuration put.");
    Ok(PutReplicationConfigurationResponse {
        replication_configuration: Some(cfg),
    })
}

/// DescribeImageReplicationStatus.
pub(crate) async fn describe_image_replication_status(
    reg: &Registry,
    req: DescribeImageReplicationStatusRequest,
) -> Result<DescribeImageReplicationStatusResponse, RegistryError> {
    crate::ecr::check_registry(reg, req.registry_id.as_ref())?;
    let name = &req.repository_name;
    reg.repo(name).await?;
    let reference = match (&req.image_id.image_digest, &req.image_id.image_tag) {
        (Some(d), _) => Reference::Digest(d.parse().map_err(|_| {
            RegistryError::InvalidParameter(format!("Invalid image digest '{d}'."))
        })?),
        (None, Some(t)) => Reference::Tag(t.clone()),
        (None, None) => {
            return Err(RegistryError::InvalidParameter(
                "imageId must name an imageDigest or an imageTag.".into(),
            ))
        }
    };
    let record = reg.resolve(name, &reference).await?;
    let statuses = reg
        .objects()
        .list::<StatusRecord>(&status_prefix(name, &record.digest))
        .await?
        .into_iter()
        .map(|(_, s, _)| ImageReplicationStatus {
            region: Some(s.region),
            registry_id: Some(s.registry_id),
            status: Some(s.status),
            failure_code: s.failure_code,
        })
        .collect();
    Ok(DescribeImageReplicationStatusResponse {
        repository_name: Some(name.clone()),
        image_id: Some(ImageIdentifier {
            image_digest: Some(record.digest.to_string()),
            image_tag: req.image_id.image_tag,
        }),
        replication_statuses: Some(statuses),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(region: &str, registry: &str) -> ReplicationDestination {
        ReplicationDestination {
            region: region.into(),
            registry_id: registry.into(),
        }
    }

    fn rule(dests: Vec<ReplicationDestination>, prefixes: &[&str]) -> ReplicationRule {
        ReplicationRule {
            destinations: dests,
            repository_filters: (!prefixes.is_empty()).then(|| {
                prefixes
                    .iter()
                    .map(|p| RepositoryFilter {
                        filter: (*p).into(),
                        filter_type: RepositoryFilterType::PrefixMatch,
                    })
                    .collect()
            }),
            delete_replication: None,
        }
    }

    const OWN: (&str, &str) = ("us-east-1", "111122223333");

    #[test]
    fn a_configuration_is_checked_as_aws_checks_it() {
        let ok = ReplicationConfiguration {
            rules: vec![rule(vec![dest("eu-west-1", "111122223333")], &["prod"])],
        };
        assert!(check(&ok, OWN).is_ok());
        let own = ReplicationConfiguration {
            rules: vec![rule(vec![dest("us-east-1", "111122223333")], &[])],
        };
        assert!(matches!(
            check(&own, OWN),
            Err(RegistryError::Validation(_))
        ));
        let bad_id = ReplicationConfiguration {
            rules: vec![rule(vec![dest("eu-west-1", "123")], &[])],
        };
        assert!(matches!(
            check(&bad_id, OWN),
            Err(RegistryError::Validation(_))
        ));
        let bad_region = ReplicationConfiguration {
            rules: vec![rule(vec![dest("mars", "111122223333")], &[])],
        };
        assert!(check(&bad_region, OWN).is_err());
        let too_many = ReplicationConfiguration {
            rules: (0..11)
                .map(|_| rule(vec![dest("eu-west-1", "111122223333")], &[]))
                .collect(),
        };
        assert!(check(&too_many, OWN).is_err());
        let mut deletes = rule(vec![dest("eu-west-1", "111122223333")], &[]);
        deletes.delete_replication = Some(DeleteReplication { enabled: true });
        assert!(matches!(
            check(
                &ReplicationConfiguration {
                    rules: vec![deletes]
                },
                OWN
            ),
            Err(RegistryError::InvalidParameter(_))
        ));
        let bad_filter = ReplicationConfiguration {
            rules: vec![rule(vec![dest("eu-west-1", "111122223333")], &["UPPER"])],
        };
        assert!(check(&bad_filter, OWN).is_err());
    }

    #[test]
    fn rules_select_repositories_by_prefix_and_name_each_destination_once() {
        let cfg = ReplicationConfiguration {
            rules: vec![
                rule(vec![dest("eu-west-1", "111122223333")], &["prod"]),
                rule(
                    vec![
                        dest("eu-west-1", "111122223333"),
                        dest("us-west-2", "444455556666"),
                    ],
                    &[],
                ),
            ],
        };
        assert_eq!(
            destinations_for(&cfg, "prod/app"),
            vec![
                ("eu-west-1".to_owned(), "111122223333".to_owned()),
                ("us-west-2".to_owned(), "444455556666".to_owned()),
            ]
        );
        let only_prod = ReplicationConfiguration {
            rules: vec![rule(vec![dest("eu-west-1", "111122223333")], &["prod"])],
        };
        assert!(destinations_for(&only_prod, "dev/app").is_empty());
    }
}
