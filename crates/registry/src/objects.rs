//! How registry objects sit in the store: the key layout and the records. Typed reads
//! and the compare-and-swap retry loop are [`store::Objects`].
//!
//! Layout (`#` separates a repository name from what follows, because names contain
//! `/` but never `#`, so one repository's prefix never matches another's):
//! - `ecr/repo/<name>` → [`RepoRecord`]
//! - `ecr/manifest/<name>#<digest>` → [`ManifestRecord`]; `ecr/mbody/<name>#<digest>` →
//!   the manifest's exact bytes
//! - `ecr/tag/<name>#<tag>` → [`TagRecord`]
//! - `ecr/referrer/<name>#<subject digest>#<digest>` → `{}` (referrers index)
//! - `ecr/blob/<digest>` → [`BlobRecord`]: the blob is committed in the blob store.
//!   Writers that start to depend on a blob (manifest puts, mounts, commits) rewrite
//!   this key, so garbage collection's compare-and-swap on it loses to them.
//! - `ecr/link/<name>#<digest>` → [`LinkRecord`]: the blob was pushed to or mounted in
//!   the repository
//! - `ecr/upload/<id>` → [`UploadRecord`]
//! - `ecr/secret` → the HMAC key of authorization tokens (hex)
//! - `ecr/preview/<name>` → a lifecycle policy preview
//! - `ecr/lifecycle-run/<name>` → when the lifecycle policy last ran for the repository
//! - `ecr/registry-policy` → the registry's permissions policy text

use crate::error::RegistryError;
use model::ecr::shapes::{LifecyclePolicyPreviewResult, Repository, Tag};
use oci::Digest;
use serde::{Deserialize, Serialize};
pub use store::Step;

/// Key of a repository.
pub fn repo_key(name: &str) -> String {
    format!("ecr/repo/{name}")
}
/// Prefix of every repository.
pub const REPO_PREFIX: &str = "ecr/repo/";
/// Key of a manifest record.
pub fn manifest_key(name: &str, d: &Digest) -> String {
    format!("ecr/manifest/{name}#{d}")
}
/// Prefix of a repository's manifests.
pub fn manifest_prefix(name: &str) -> String {
    format!("ecr/manifest/{name}#")
}
/// Prefix of every manifest of every repository.
pub const ALL_MANIFESTS: &str = "ecr/manifest/";
/// Key of a manifest's bytes.
pub fn mbody_key(name: &str, d: &Digest) -> String {
    format!("ecr/mbody/{name}#{d}")
}
/// Key of a tag.
pub fn tag_key(name: &str, tag: &str) -> String {
    format!("ecr/tag/{name}#{tag}")
}
/// Prefix of a repository's tags.
pub fn tag_prefix(name: &str) -> String {
    format!("ecr/tag/{name}#")
}
/// Key of a referrer entry.
pub fn referrer_key(name: &str, subject: &Digest, d: &Digest) -> String {
    format!("ecr/referrer/{name}#{subject}#{d}")
}
/// Prefix of a subject's referrers.
pub fn referrer_prefix(name: &str, subject: &Digest) -> String {
    format!("ecr/referrer/{name}#{subject}#")
}
/// Key of a committed blob.
pub fn blob_key(d: &Digest) -> String {
    format!("ecr/blob/{d}")
}
/// Prefix of every blob.
pub const ALL_BLOBS: &str = "ecr/blob/";
/// Key of a blob's link into a repository.
pub fn link_key(name: &str, d: &Digest) -> String {
    format!("ecr/link/{name}#{d}")
}
/// Prefix of every link.
pub const ALL_LINKS: &str = "ecr/link/";
/// Key of an upload session.
pub fn upload_key(id: &str) -> String {
    format!("ecr/upload/{id}")
}
/// Prefix of every upload session.
pub const ALL_UPLOADS: &str = "ecr/upload/";
/// Key of the token-signing secret.
pub const SECRET_KEY: &str = "ecr/secret";
/// Key of a lifecycle policy preview.
pub fn preview_key(name: &str) -> String {
    format!("ecr/preview/{name}")
}

/// Key of a repository's last lifecycle run.
pub fn lifecycle_run_key(name: &str) -> String {
    format!("ecr/lifecycle-run/{name}")
}
/// Key of the registry policy (one per registry, that is per region and account).
pub const REGISTRY_POLICY_KEY: &str = "ecr/registry-policy";

/// A repository and what ECR keeps beside it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RepoRecord {
    /// The repository as DescribeRepositories returns it.
    pub repository: Repository,
    /// Resource tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Repository policy text.
    #[serde(default)]
    pub policy: Option<String>,
    /// Lifecycle policy text.
    #[serde(default)]
    pub lifecycle_policy: Option<String>,
    /// When the lifecycle policy was last set (epoch seconds).
    #[serde(default)]
    pub lifecycle_updated_at: Option<f64>,
}

/// A stored manifest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ManifestRecord {
    /// Its digest.
    pub digest: Digest,
    /// The media type it is served as.
    pub media_type: String,
    /// Bytes of the manifest itself.
    pub size: u64,
    /// When it was pushed (epoch seconds).
    pub pushed_at: f64,
    /// Config and layer blobs.
    pub blobs: Vec<Digest>,
    /// Child manifests (indexes).
    #[serde(default)]
    pub children: Vec<Digest>,
    /// Subject (referrers).
    #[serde(default)]
    pub subject: Option<Digest>,
    /// Artifact type reported by the referrers API.
    #[serde(default)]
    pub artifact_type: Option<String>,
    /// The config's media type (ECR's `artifactMediaType`).
    #[serde(default)]
    pub config_media_type: Option<String>,
    /// Annotations, copied into referrers lists.
    #[serde(default)]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
    /// Sum of layer sizes.
    pub image_size: i64,
    /// Last pull (epoch seconds).
    #[serde(default)]
    pub last_pulled_at: Option<f64>,
}

/// Where a tag points.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TagRecord {
    /// The manifest digest.
    pub digest: Digest,
    /// When the tag was last moved.
    pub updated_at: f64,
}

/// A committed blob.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BlobRecord {
    /// Size in bytes.
    pub size: u64,
    /// When it was first committed.
    pub created_at: f64,
    /// When a writer last started to depend on it.
    pub touched_at: f64,
}

/// A blob's presence in a repository.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LinkRecord {
    /// When it was linked.
    pub created_at: f64,
}

/// An upload session.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UploadRecord {
    /// The repository it uploads to.
    pub repository: String,
    /// When it started.
    pub created_at: f64,
}

/// A stored lifecycle preview.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PreviewRecord {
    /// The policy text previewed.
    pub policy: String,
    /// Images it would expire.
    pub results: Vec<LifecyclePolicyPreviewResult>,
}

/// Typed access to the store, answering [`RegistryError`].
pub type Objects = store::Objects<RegistryError>;

/// JSON-encodes a value for the store.
pub fn encode<T: Serialize>(value: &T) -> Result<bytes::Bytes, RegistryError> {
    Ok(store::objects::encode(value)?)
}

/// Epoch seconds now, with millisecond precision as AWS returns.
pub fn now() -> f64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_millis() as f64) / 1000.0
}
