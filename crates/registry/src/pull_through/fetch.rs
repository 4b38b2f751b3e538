//! The import: what happens before a pull (`/v2/` manifest GET/HEAD, BatchGetImage) of
//! a repository a rule covers. A repository that does not exist yet is created and the
//! image fetched upstream; an image missing from a cache repository is fetched; a tag
//! last compared with upstream longer ago than the refresh interval is compared again
//! (a `HEAD`) and fetched when it moved. Pulls by digest never refresh.
//!
//! An upstream that cannot be reached leaves the cache as it is: a cached image is
//! served, a missing one fails with UnableToGetUpstreamImageException.

use super::client::{Session, UpstreamError};
use super::rules::all_rules;
use super::validate::parse_upstream;
use super::{cache_repo_key, check_key, check_prefix, compute_match, secrets, CacheRepo, Checked};
use crate::access::Action;
use crate::error::RegistryError;
use crate::objects::{encode, repo_key, tag_key, TagRecord};
use crate::{now_secs, Registry};
use model::ecr::shapes::PullThroughCacheRule;
use oci::reference::Reference;
use oci::{Digest, Manifest};
use std::future::Future;
use std::pin::Pin;
use store::Txn;

/// Deepest index nesting followed.
const MAX_DEPTH: u32 = 4;

/// Readies `reference` of repository `name` for a pull by `caller`: imports it from
/// upstream when a rule covers `name` and the cache lacks it or its tag is due for a
/// refresh. A repository no rule covers is left alone (the pull answers as usual).
pub(crate) async fn before_pull(
    reg: &Registry,
    caller: &wire::Caller,
    name: &str,
    reference: &Reference,
) -> Result<(), RegistryError> {
    let marker = reg
        .objects()
        .get::<CacheRepo>(&cache_repo_key(name))
        .await?;
    let exists = reg.objects().get_raw(&repo_key(name)).await?.is_some();
    let (rule, upstream_repo) = match (&marker, exists) {
        // An ordinary repository.
        (None, true) => return Ok(()),
        (Some((m, _)), true) => {
            let Some((rule, _)) = reg
                .objects()
                .get::<PullThroughCacheRule>(&super::rule_key(&m.rule))
                .await?
            else {
                // Its rule is gone: the cache stays and is served as it is.
                return Ok(());
            };
            (rule, m.upstream_repository.clone())
        }
        (_, false) => {
            let rules = all_rules(reg).await?;
            match compute_match(&rules, name) {
                Some((rule, upstream)) => (rule.clone(), upstream),
                None => return Ok(()),
            }
        }
    };
    if exists && !due(reg, name, reference).await? {
        return Ok(());
    }
    let _guard = reg.pull_lock(name).lock().await;
    // Another pull may have imported it while this one waited.
    let exists = reg.objects().get_raw(&repo_key(name)).await?.is_some();
    if exists && !due(reg, name, reference).await? {
        return Ok(());
    }
    authorize_import(reg, caller, name, exists).await?;
    let import = Import {
        reg,
        rule: &rule,
        name,
        upstream_repo: &upstream_repo,
    };
    match import.run(reference, exists).await {
        Ok(()) => Ok(()),
        Err(e) if exists && cached(reg, name, reference).await? => {
            tracing::warn!(repository = name, %reference, error = %e, "Upstream refresh failed; serving the cached image.");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Whether `reference` must be asked upstream: it is not cached, or it is a tag last
/// compared longer ago than the refresh interval.
async fn due(reg: &Registry, name: &str, reference: &Reference) -> Result<bool, RegistryError> {
    if !cached(reg, name, reference).await? {
        return Ok(true);
    }
    let Reference::Tag(tag) = reference else {
        return Ok(false);
    };
    let checked = reg.objects().get::<Checked>(&check_key(name, tag)).await?;
    let interval = i64::try_from(reg.config().pull_through_refresh.as_secs()).unwrap_or(i64::MAX);
    Ok(checked.is_none_or(|(c, _)| now_secs().saturating_sub(c.at) >= interval))
}

async fn cached(reg: &Registry, name: &str, reference: &Reference) -> Result<bool, RegistryError> {
    match reg.resolve(name, reference).await {
        Ok(_) => Ok(true),
        Err(RegistryError::ImageNotFound(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The caller needs `ecr:BatchImportUpstreamImage` on the repository (and
/// `ecr:CreateRepository` when the pull creates it), allowed by its identity policies
/// or the registry policy, as ECR requires.
async fn authorize_import(
    reg: &Registry,
    caller: &wire::Caller,
    name: &str,
    exists: bool,
) -> Result<(), RegistryError> {
    let policy = crate::ecr::registry_policy::compiled(reg).await?;
    reg.authorize(
        caller,
        name,
        policy.as_deref(),
        Action::BatchImportUpstreamImage,
    )?;
    if !exists {
        reg.authorize(caller, name, policy.as_deref(), Action::CreateRepository)?;
    }
    Ok(())
}

fn upstream_failed(e: &UpstreamError) -> RegistryError {
    RegistryError::UnableToGetUpstreamImage(format!(
        "Unable to get the image from the upstream registry: {e}"
    ))
}

/// One import of an image into a cache repository.
struct Import<'a> {
    reg: &'a Registry,
    rule: &'a PullThroughCacheRule,
    name: &'a str,
    upstream_repo: &'a str,
}

impl Import<'_> {
    async fn run(&self, reference: &Reference, exists: bool) -> Result<(), RegistryError> {
        let upstream = parse_upstream(
            self.rule
                .upstream_registry_url
                .as_deref()
                .unwrap_or_default(),
        )?;
        let credentials = match self.rule.credential_arn.as_deref() {
            Some(arn) => {
                Some(secrets::load(self.reg.config().pull_through_secrets.as_deref(), arn).await?)
            }
            None => None,
        };
        let mut session = Session::new(&upstream, self.upstream_repo.to_owned(), credentials);
        // A cached tag is compared first with a HEAD, which costs upstreams nothing.
        if let (true, Reference::Tag(tag)) = (exists, reference) {
            let local = self
                .reg
                .objects()
                .get::<TagRecord>(&tag_key(self.name, tag))
                .await?;
            let remote = session
                .head_manifest(tag)
                .await
                .map_err(|e| upstream_failed(&e))?;
            if let (Some((l, _)), Some(r)) = (local, remote) {
                if l.digest.to_string() == r {
                    tracing::debug!(
                        repository = self.name,
                        tag,
                        "Cached tag is current upstream."
                    );
                    return self.mark_checked(tag).await;
                }
            }
        }
        let fetched = session
            .manifest(&reference.to_string())
            .await
            .map_err(|e| upstream_failed(&e))?;
        if let Reference::Digest(d) = reference {
            let mut h = oci::Digester::new(d.algorithm());
            h.update(&fetched.bytes);
            if &h.finish() != d {
                return Err(RegistryError::UnableToGetUpstreamImage(format!(
                    "The upstream registry answered a manifest whose digest is not {d}."
                )));
            }
        }
        if !exists {
            self.create_repository().await?;
        }
        let manifest =
            Manifest::parse(&fetched.bytes, fetched.media_type.as_deref()).map_err(|e| {
                RegistryError::UnableToGetUpstreamImage(format!(
                    "The upstream manifest is invalid: {e}"
                ))
            })?;
        self.store_content(&mut session, &manifest, 0).await?;
        self.reg
            .put_manifest_quietly(
                self.name,
                reference,
                fetched.bytes,
                Some(&manifest.media_type),
            )
            .await?;
        tracing::info!(repository = self.name, upstream = %upstream.host, upstream_repository = self.upstream_repo, %reference, "Image imported from upstream.");
        if let Reference::Tag(tag) = reference {
            self.mark_checked(tag).await?;
        }
        Ok(())
    }

    /// Creates the cache repository (CreateRepository's defaults, as ECR without a
    /// creation template) and records that the rule made it.
    async fn create_repository(&self) -> Result<(), RegistryError> {
        match crate::ecr::create_repository_named(self.reg, self.name).await {
            Ok(()) | Err(RegistryError::RepositoryAlreadyExists(..)) => {}
            Err(e) => return Err(e),
        }
        let marker = CacheRepo {
            rule: self.rule.ecr_repository_prefix.clone().unwrap_or_default(),
            upstream_repository: self.upstream_repo.to_owned(),
        };
        self.reg
            .objects()
            .commit(Txn::new().put(cache_repo_key(self.name), encode(&marker)?))
            .await?;
        tracing::info!(repository = self.name, rule = %marker.rule, "Pull through cache repository created.");
        Ok(())
    }

    async fn mark_checked(&self, tag: &str) -> Result<(), RegistryError> {
        let rec = Checked { at: now_secs() };
        self.reg
            .objects()
            .commit(Txn::new().put(check_key(self.name, tag), encode(&rec)?))
            .await?;
        Ok(())
    }

    /// Stores what `manifest` references: child manifests (each with its own content)
    /// and blobs.
    fn store_content<'s>(
        &'s self,
        session: &'s mut Session<'_>,
        manifest: &'s Manifest,
        depth: u32,
    ) -> Pin<Box<dyn Future<Output = Result<(), RegistryError>> + Send + 's>> {
        Box::pin(async move {
            if depth > MAX_DEPTH {
                return Err(RegistryError::UnableToGetUpstreamImage(format!(
                    "The upstream image nests indexes deeper than {MAX_DEPTH}."
                )));
            }
            for child in &manifest.manifests {
                let d = &child.digest;
                if cached(self.reg, self.name, &Reference::Digest(d.clone())).await? {
                    continue;
                }
                let fetched = session
                    .manifest(&d.to_string())
                    .await
                    .map_err(|e| upstream_failed(&e))?;
                let inner =
                    Manifest::parse(&fetched.bytes, Some(&child.media_type)).map_err(|e| {
                        RegistryError::UnableToGetUpstreamImage(format!(
                            "The upstream manifest {d} is invalid: {e}"
                        ))
                    })?;
                self.store_content(session, &inner, depth + 1).await?;
                self.reg
                    .put_manifest_quietly(
                        self.name,
                        &Reference::Digest(d.clone()),
                        fetched.bytes,
                        Some(&inner.media_type),
                    )
                    .await?;
            }
            for blob in manifest.blobs() {
                self.store_blob(session, &blob.digest).await?;
            }
            Ok(())
        })
    }

    /// Streams blob `digest` from upstream into the blob store (verified on commit)
    /// unless the registry already holds it.
    async fn store_blob(
        &self,
        session: &mut Session<'_>,
        digest: &Digest,
    ) -> Result<(), RegistryError> {
        if self.reg.blob_in_repo(self.name, digest).await?.is_some()
            || self.reg.link_existing(self.name, digest).await?.is_some()
        {
            return Ok(());
        }
        let body = session
            .blob(digest)
            .await
            .map_err(|e| upstream_failed(&e))?;
        let id = format!("pullthrough-{}", uuid::Uuid::new_v4().simple());
        let blobs = self.reg.blobs();
        blobs.begin_upload(&id).await?;
        let stored = async {
            blobs
                .append(&id, 0, body.reader, self.reg.config().max_blob_bytes)
                .await?;
            self.reg.commit_upload(self.name, &id, digest).await
        }
        .await;
        if let Err(e) = &stored {
            if let Err(error) = blobs.remove_upload(&id).await {
                tracing::warn!(%error, upload = %id, "Could not remove a failed upstream blob download.");
            }
            return Err(match e {
                RegistryError::DigestInvalid(m) | RegistryError::UploadInvalid(m) => {
                    RegistryError::UnableToGetUpstreamImage(format!(
                        "Blob {digest} from the upstream registry was not stored: {m}"
                    ))
                }
                other => RegistryError::UnableToGetUpstreamImage(other.to_string()),
            });
        }
        Ok(())
    }
}

/// The pull-through keys of repository `name` (its marker and tag checks), for
/// DeleteRepository to remove with it.
pub(crate) async fn forget_repository(
    reg: &Registry,
    name: &str,
) -> Result<Vec<String>, RegistryError> {
    let mut keys = vec![cache_repo_key(name)];
    keys.extend(
        reg.objects()
            .keys(&check_prefix(name))
            .await?
            .into_iter()
            .map(|(k, _)| k),
    );
    Ok(keys)
}
