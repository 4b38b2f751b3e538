//! `registry` owns the container registry: the OCI distribution API under `/v2/`
//! ([`Registry::router`]), the Amazon ECR API ([`Registry::handle`]), authorization
//! tokens, lifecycle policies, image scanning and garbage collection.
//!
//! Metadata (repositories, manifests, tags, blob links, upload sessions) lives in the
//! transactional `store`; blob bytes live in a `blobstore`. This crate must not depend on
//! other services, must never buffer a blob in memory (uploads and downloads stream),
//! and maps its errors to the wire only in `error.rs`.

#![forbid(unsafe_code)]

mod access;
mod auth;
mod decode;
mod distribution;
mod ecr;
mod error;
mod gc;
mod images;
mod lifecycle_policy;
mod objects;
mod pull_through;
mod replication;
mod scanning;

pub use access::IdentityResolver;
pub use replication::Replicas;

/// Finds the registry of another account of this server (in the same region) by id.
pub type Peers = Arc<dyn Fn(&str) -> Option<Registry> + Send + Sync>;

/// A [`Registry`] handle that does not keep it alive.
#[derive(Clone)]
pub struct WeakRegistry(std::sync::Weak<Inner>);

impl WeakRegistry {
    /// The registry, if it still exists.
    pub fn upgrade(&self) -> Option<Registry> {
        self.0.upgrade().map(|inner| Registry { inner })
    }
}
pub use ecr::Operation;
pub use error::RegistryError;
pub use gc::GcReport;

use blobstore::BlobStore;
use objects::Objects;
use std::sync::Arc;
use std::time::Duration;
use store::Store;

/// How the registry presents itself and runs its background work.
#[derive(Clone, Debug)]
pub struct RegistryConfig {
    /// `host:port` clients reach the registry at (`repositoryUri` = this + `/` + name).
    pub host: String,
    /// `http` or `https`, for `proxyEndpoint`.
    pub scheme: String,
    /// Region of ARNs.
    pub region: String,
    /// Account id (= registry id).
    pub account_id: String,
    /// How often garbage collection and lifecycle policies run.
    pub gc_interval: Duration,
    /// How long an unreferenced blob or an idle upload is kept before collection, so a
    /// push in progress (layers first, manifest last) never loses its blobs.
    pub gc_grace: Duration,
    /// Largest blob accepted.
    pub max_blob_bytes: u64,
    /// Challenge clients with the bearer-token flow (`WWW-Authenticate: Bearer`, token
    /// endpoint `/v2/token`) instead of ECR's Basic; both kinds of credentials are
    /// accepted either way.
    pub bearer_challenge: bool,
    /// How long a pull-through cache tag is served before it is compared with upstream
    /// again (ECR: 24 hours).
    pub pull_through_refresh: Duration,
    /// Where the secrets pull-through cache rules name are read from (the local stand-in
    /// for Secrets Manager); none: rules with a `credentialArn` are refused.
    pub pull_through_secrets: Option<std::path::PathBuf>,
    /// Where replication destinations served by other Stevedore servers are described
    /// (`<registryId>.json`, owner-only files holding an endpoint and credentials); none:
    /// every destination is an account and region of this server.
    pub replication_destinations: Option<std::path::PathBuf>,
}

impl RegistryConfig {
    /// Defaults for a registry at `host` (`127.0.0.1:4747`), overridable through
    /// `STEVEDORE_REGISTRY_GC_INTERVAL_SECS` and `STEVEDORE_REGISTRY_GC_GRACE_SECS`; `STEVEDORE_REGISTRY_CHALLENGE=bearer`
    /// selects the bearer-token challenge. `STEVEDORE_PULL_THROUGH_REFRESH_SECS` (default
    /// 86400) and `STEVEDORE_PULL_THROUGH_SECRETS_DIR` configure the pull-through cache;
    /// `STEVEDORE_REPLICATION_DESTINATIONS_DIR` names the external replication destinations.
    pub fn new(host: String, region: String, account_id: String) -> Self {
        let secs = |var: &str, default: u64| {
            std::env::var(var)
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(default)
        };
        Self {
            host,
            scheme: "http".into(),
            region,
            account_id,
            gc_interval: Duration::from_secs(
                secs("STEVEDORE_REGISTRY_GC_INTERVAL_SECS", 3600).max(1),
            ),
            gc_grace: Duration::from_secs(secs("STEVEDORE_REGISTRY_GC_GRACE_SECS", 3600)),
            max_blob_bytes: 64 * 1024 * 1024 * 1024,
            bearer_challenge: std::env::var("STEVEDORE_REGISTRY_CHALLENGE")
                .is_ok_and(|v| v.eq_ignore_ascii_case("bearer")),
            pull_through_refresh: Duration::from_secs(secs(
                "STEVEDORE_PULL_THROUGH_REFRESH_SECS",
                24 * 3600,
            )),
            pull_through_secrets: std::env::var_os("STEVEDORE_PULL_THROUGH_SECRETS_DIR")
                .filter(|v| !v.is_empty())
                .map(std::path::PathBuf::from),
            replication_destinations: std::env::var_os("STEVEDORE_REPLICATION_DESTINATIONS_DIR")
                .filter(|v| !v.is_empty())
                .map(std::path::PathBuf::from),
        }
    }
}

/// The registry service.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    objects: Objects,
    blobs: Arc<dyn BlobStore>,
    config: RegistryConfig,
    token_key: tokio::sync::OnceCell<auth::TokenKey>,
    /// Resolves the principals of non-root tokens (set once by the binary).
    identity: std::sync::OnceLock<Arc<dyn IdentityResolver>>,
    /// The registries of the other accounts of this server in this region (set once by
    /// the binary): where a request naming another `registryId` is served.
    peers: std::sync::OnceLock<Peers>,
    /// Every registry of this server by account and region (set once by the binary):
    /// where replication copies to.
    replicas: std::sync::OnceLock<replication::Replicas>,
    /// Compiled repository policies.
    policies: access::PolicyCache,
    /// Serialises, per digest stripe, a blob's commit against its collection, so
    /// garbage collection never deletes a file a commit has just put in place.
    blob_locks: Vec<tokio::sync::Mutex<()>>,
    /// Serialises, per repository-name stripe, pull-through imports, so concurrent first
    /// pulls of one image fetch it upstream once.
    pull_locks: Vec<tokio::sync::Mutex<()>>,
    /// The vulnerability scanner (set once by the binary with its database).
    scanner: std::sync::OnceLock<scanning::Scanner>,
    /// The replication backfills this process runs (their stop flags).
    backfills: replication::Running,
}

impl Registry {
    /// A registry over `store` (metadata) and `blobs` (content).
    pub fn new(store: Arc<dyn Store>, blobs: Arc<dyn BlobStore>, config: RegistryConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                objects: Objects::new(store),
                blobs,
                config,
                token_key: tokio::sync::OnceCell::new(),
                identity: std::sync::OnceLock::new(),
                peers: std::sync::OnceLock::new(),
                replicas: std::sync::OnceLock::new(),
                policies: access::PolicyCache::default(),
                blob_locks: (0..64).map(|_| tokio::sync::Mutex::new(())).collect(),
                pull_locks: (0..16).map(|_| tokio::sync::Mutex::new(())).collect(),
                scanner: std::sync::OnceLock::new(),
                backfills: replication::Running::default(),
            }),
        }
    }

    /// Resolves the principals registry tokens are issued to through `resolver` (IAM):
    /// without one, only the account root's tokens are accepted. The first resolver set
    /// stays.
    #[must_use]
    pub fn with_identity(self, resolver: Arc<dyn IdentityResolver>) -> Self {
        if self.inner.identity.set(resolver).is_err() {
            tracing::warn!("Registry identity resolver already set; keeping the first.");
        }
        self
    }

    /// Repository `name`'s policy, compiled (cached until the policy text changes), or
    /// `None` when it has none; what the ECR API's authorization evaluates as the
    /// resource policy.
    pub async fn repository_policy(
        &self,
        name: &str,
    ) -> Result<Option<Arc<policy::Policy>>, RegistryError> {
        let (rec, _) = self.repo(name).await?;
        Ok(self.compiled_policy(name, rec.policy.as_deref()))
    }

    pub(crate) fn compiled_policy(
        &self,
        name: &str,
        text: Option<&str>,
    ) -> Option<Arc<policy::Policy>> {
        self.inner.policies.compiled(name, text)
    }

    pub(crate) fn forget_policy(&self, name: &str) {
        self.inner.policies.invalidate(name);
    }

    fn identity(&self) -> Option<&Arc<dyn IdentityResolver>> {
        self.inner.identity.get()
    }

    /// Lets requests naming another account's `registryId` reach that account's registry
    /// (in this region), authorized there by its repository policies as on AWS. The first
    /// finder set stays.
    #[must_use]
    pub fn with_peers(self, peers: Peers) -> Self {
        if self.inner.peers.set(peers).is_err() {
            tracing::warn!("Registry peers already set; keeping the first.");
        }
        self
    }

    /// The registry of account `registry_id` when it is another account of this server.
    pub(crate) fn peer(&self, registry_id: &str) -> Option<Registry> {
        if registry_id == self.registry_id() {
            return None;
        }
        self.inner.peers.get().and_then(|find| find(registry_id))
    }

    /// Lets pushes replicate to the registries `replicas` finds (building a region on
    /// first use). The first finder set stays.
    #[must_use]
    pub fn with_replicas(self, replicas: Replicas) -> Self {
        if self.inner.replicas.set(replicas).is_err() {
            tracing::warn!("Registry replicas already set; keeping the first.");
        }
        self
    }

    pub(crate) fn replicas(&self) -> Option<&Replicas> {
        self.inner.replicas.get()
    }

    /// A handle that does not keep the registry alive (for finders the registry itself
    /// holds, which would otherwise keep each other alive).
    pub fn downgrade(&self) -> WeakRegistry {
        WeakRegistry(Arc::downgrade(&self.inner))
    }

    /// The `/v2/` router (it authenticates with registry tokens, not SigV4).
    pub fn router(&self) -> axum::Router {
        distribution::router(self.clone())
    }

    /// Whether this registry issued the live token an `Authorization` header (Basic or
    /// Bearer) carries: each registry signs its tokens with its own key, so a server
    /// with one registry per region finds the region a `/v2/` request is for this way.
    pub async fn issued(&self, authorization: Option<&str>) -> bool {
        match self.token_key().await {
            Ok(key) => key.verify_header(authorization, now_secs()).is_ok(),
            Err(error) => {
                tracing::warn!(%error, "Could not load the registry's token key.");
                false
            }
        }
    }

    /// Runs an ECR operation on a JSON body; returns the JSON response.
    pub async fn handle(&self, operation: &str, body: &[u8]) -> Result<Vec<u8>, RegistryError> {
        ecr::handle(self, operation, body).await
    }

    /// Queues again the image scans a stopped server left in progress, then runs garbage
    /// collection and lifecycle policies every `gc_interval` until `shutdown` fires; a
    /// panic costs one run (loop `registry_maintenance`).
    pub async fn run_background(self, shutdown: telemetry::CancellationToken) {
        match self.resume_scans().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(scans = n, "Interrupted image scans queued again."),
            Err(error) => tracing::warn!(%error, "Could not resume interrupted image scans."),
        }
        match self.end_interrupted_backfills().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                backfills = n,
                "Interrupted replication backfills ended FAILED."
            ),
            Err(error) => {
                tracing::warn!(%error, "Could not end interrupted replication backfills.")
            }
        }
        let every = self.inner.config.gc_interval;
        let wait = || tokio::time::sleep(every);
        let round = || self.maintain();
        telemetry::supervise(
            telemetry::LoopName::RegistryMaintenance,
            shutdown,
            wait,
            round,
        )
        .await;
    }

    /// One maintenance run: lifecycle policies, then garbage collection.
    async fn maintain(&self) {
        if let Err(error) = lifecycle_policy::apply_all(self).await {
            tracing::warn!(%error, "Lifecycle policy run failed.");
        }
        match self.collect_garbage().await {
            Ok(r) => tracing::info!(
                blobs_deleted = r.blobs_deleted,
                uploads_deleted = r.uploads_deleted,
                "Registry garbage collection finished."
            ),
            Err(error) => tracing::warn!(%error, "Registry garbage collection failed."),
        }
    }

    /// Deletes blobs no manifest references and abandoned uploads (older than the grace
    /// period), online.
    pub async fn collect_garbage(&self) -> Result<GcReport, RegistryError> {
        gc::collect(self).await
    }

    pub(crate) fn objects(&self) -> &Objects {
        &self.inner.objects
    }
    pub(crate) fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.inner.blobs
    }
    pub(crate) fn config(&self) -> &RegistryConfig {
        &self.inner.config
    }
    pub(crate) async fn token_key(&self) -> Result<&auth::TokenKey, RegistryError> {
        self.inner
            .token_key
            .get_or_try_init(|| auth::TokenKey::load(&self.inner.objects))
            .await
    }
    pub(crate) fn blob_lock(&self, d: &oci::Digest) -> &tokio::sync::Mutex<()> {
        let i = usize::from(u8::from_str_radix(d.hex().get(..2).unwrap_or("0"), 16).unwrap_or(0))
            % self.inner.blob_locks.len();
        &self.inner.blob_locks[i]
    }
    pub(crate) fn pull_lock(&self, name: &str) -> &tokio::sync::Mutex<()> {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let h = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .hash_one(name);
        let i = usize::try_from(h % self.inner.pull_locks.len() as u64).unwrap_or(0);
        &self.inner.pull_locks[i]
    }
    pub(crate) fn inner_backfills(&self) -> &replication::Running {
        &self.inner.backfills
    }
    pub(crate) fn registry_id(&self) -> &str {
        &self.inner.config.account_id
    }
}

/// Epoch seconds now (whole).
pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
