//! The registry's core operations, shared by `/v2/` and the ECR API: repositories,
//! manifests (put, get, delete), tags and blob commits. Every write is one
//! compare-and-swap transaction over everything it read.

use crate::error::RegistryError;
use crate::objects::{
    blob_key, encode, link_key, manifest_key, manifest_prefix, mbody_key, now, referrer_key,
    repo_key, tag_key, tag_prefix, upload_key, BlobRecord, LinkRecord, ManifestRecord, RepoRecord,
    Step, TagRecord,
};
use crate::Registry;
use bytes::Bytes;
use model::ecr::shapes::ImageTagMutability;
use oci::reference::Reference;
use oci::{Digest, Digester, Manifest};
use std::collections::BTreeSet;
use store::{Revision, Txn};

/// Who is putting a manifest: `docker push`-style re-pushes are fine, ECR's PutImage
/// refuses an identical image under the same tag.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PutMode {
    /// `/v2/` PUT.
    Distribution,
    /// ECR PutImage.
    PutImage,
}

/// Whether `tag` may not move in `repo`, by its mutability setting and exclusion
/// filters (wildcards: under `IMMUTABLE_WITH_EXCLUSION` matching tags stay mutable;
/// under `MUTABLE_WITH_EXCLUSION` matching tags are immutable).
pub(crate) fn tag_is_immutable(repo: &RepoRecord, tag: &str) -> bool {
    let matches = || {
        repo.repository
            .image_tag_mutability_exclusion_filters
            .iter()
            .flatten()
            .any(|f| crate::lifecycle_policy::wildcard(&f.filter, tag))
    };
    match repo.repository.image_tag_mutability {
        Some(ImageTagMutability::Immutable) => true,
        Some(ImageTagMutability::ImmutableWithExclusion) => !matches(),
        Some(ImageTagMutability::MutableWithExclusion) => matches(),
        Some(ImageTagMutability::Mutable) | None => false,
    }
}

impl Registry {
    /// Reads a repository or fails with `RepositoryNotFound`.
    pub(crate) async fn repo(&self, name: &str) -> Result<(RepoRecord, Revision), RegistryError> {
        self.objects()
            .get::<RepoRecord>(&repo_key(name))
            .await?
            .ok_or_else(|| {
                RegistryError::RepositoryNotFound(name.to_owned(), self.registry_id().to_owned())
            })
    }

    /// Resolves a tag or digest to a manifest record of `name`.
    pub(crate) async fn resolve(
        &self,
        name: &str,
        reference: &Reference,
    ) -> Result<ManifestRecord, RegistryError> {
        let digest = match reference {
            Reference::Digest(d) => d.clone(),
            Reference::Tag(t) => match self.objects().get::<TagRecord>(&tag_key(name, t)).await? {
                Some((rec, _)) => rec.digest,
                None => {
                    return Err(RegistryError::ImageNotFound(format!(
                        "The image tag '{t}' does not exist in the repository with name '{name}'"
                    )))
                }
            },
        };
        match self.objects().get::<ManifestRecord>(&manifest_key(name, &digest)).await? {
            Some((rec, _)) => Ok(rec),
            None => Err(RegistryError::ImageNotFound(format!("The image with digest '{digest}' does not exist in the repository with name '{name}'"))),
        }
    }

    /// The manifest's exact bytes.
    pub(crate) async fn manifest_bytes(
        &self,
        name: &str,
        digest: &Digest,
    ) -> Result<Bytes, RegistryError> {
        self.objects()
            .get_raw(&mbody_key(name, digest))
            .await?
            .map(|(b, _)| b)
            .ok_or_else(|| RegistryError::ImageNotFound(format!("The image with digest '{digest}' does not exist in the repository with name '{name}'")))
    }

    /// Every tag of `name` with where it points, in tag order.
    pub(crate) async fn tags(&self, name: &str) -> Result<Vec<(String, TagRecord)>, RegistryError> {
        let prefix = tag_prefix(name);
        Ok(self
            .objects()
            .list::<TagRecord>(&prefix)
            .await?
            .into_iter()
            .map(|(k, v, _)| (k[prefix.len()..].to_owned(), v))
            .collect())
    }

    /// Every manifest of `name`.
    pub(crate) async fn manifests(&self, name: &str) -> Result<Vec<ManifestRecord>, RegistryError> {
        Ok(self
            .objects()
            .list::<ManifestRecord>(&manifest_prefix(name))
            .await?
            .into_iter()
            .map(|(_, v, _)| v)
            .collect())
    }

    /// Stores a manifest (exact bytes) and, when `tag` is given, points the tag at it.
    /// Refuses manifests whose blobs or child manifests are missing.
    pub(crate) async fn put_manifest(
        &self,
        name: &str,
        reference: &Reference,
        bytes: Bytes,
        content_type: Option<&str>,
        mode: PutMode,
    ) -> Result<ManifestRecord, RegistryError> {
        let record = self
            .put_manifest_txn(name, reference, bytes, content_type, mode)
            .await?;
        tracing::info!(repository = name, digest = %record.digest, reference = %reference, media_type = %record.media_type, "Manifest stored.");
        self.on_push(name, &record);
        self.replicate(name, &record);
        Ok(record)
    }

    /// Stores a replicated manifest as a `/v2/` push would (a tag moves unless it is
    /// immutable), scanned on push where the repository says so, never replicated again.
    pub(crate) async fn put_manifest_quietly(
        &self,
        name: &str,
        reference: &Reference,
        bytes: Bytes,
        content_type: Option<&str>,
    ) -> Result<ManifestRecord, RegistryError> {
        let record = self
            .put_manifest_txn(name, reference, bytes, content_type, PutMode::Distribution)
            .await?;
        self.on_push(name, &record);
        Ok(record)
    }

    async fn put_manifest_txn(
        &self,
        name: &str,
        reference: &Reference,
        bytes: Bytes,
        content_type: Option<&str>,
        mode: PutMode,
    ) -> Result<ManifestRecord, RegistryError> {
        let manifest = Manifest::parse(&bytes, content_type)
            .map_err(|e| RegistryError::ManifestInvalid(format!("manifest invalid: {e}")))?;
        let digest = match reference {
            Reference::Digest(d) => {
                let mut h = Digester::new(d.algorithm());
                h.update(&bytes);
                let actual = h.finish();
                if &actual != d {
                    return Err(RegistryError::DigestInvalid(format!(
                        "the manifest's digest is {actual}, not {d}"
                    )));
                }
                actual
            }
            Reference::Tag(_) => Digest::sha256_of(&bytes),
        };
        let tag = match reference {
            Reference::Tag(t) => Some(t.clone()),
            Reference::Digest(_) => None,
        };
        let blobs: BTreeSet<Digest> = manifest.blobs().map(|d| d.digest.clone()).collect();
        let children: BTreeSet<Digest> = manifest
            .manifests
            .iter()
            .map(|d| d.digest.clone())
            .collect();
        let t = now();
        let name_s = name.to_owned();
        self.objects()
            .retry(&format!("manifest {name}@{digest}"), || {
                let (manifest, digest, tag, blobs, children, bytes, name) =
                    (&manifest, &digest, &tag, &blobs, &children, &bytes, name_s.as_str());
                async move {
                    let (repo, repo_rev) = self.repo(name).await?;
                    let mut txn = Txn::new().when(repo_key(name), repo_rev);
                    for b in blobs {
                        let Some((mut rec, rev)) = self.objects().get::<BlobRecord>(&blob_key(b)).await? else {
                            return Err(RegistryError::ManifestBlobUnknown(format!("the manifest references blob {b}, which is not in the registry")));
                        };
                        // Rewriting the blob's key makes a concurrent collection of it lose its race.
                        rec.touched_at = t;
                        txn = txn.when(blob_key(b), rev).put(blob_key(b), encode(&rec)?);
                        let lk = link_key(name, b);
                        if self.objects().get_raw(&lk).await?.is_none() {
                            txn = txn.put(lk, encode(&LinkRecord { created_at: t })?);
                        }
                    }
                    for c in children {
                        let Some((_, rev)) = self.objects().get_raw(&manifest_key(name, c)).await? else {
                            return Err(RegistryError::ReferencedImagesNotFound(format!("the index references manifest {c}, which is not in repository {name}")));
                        };
                        txn = txn.when(manifest_key(name, c), rev);
                    }
                    let existing = self.objects().get::<ManifestRecord>(&manifest_key(name, digest)).await?;
                    if let Some(tag) = tag {
                        let current = self.objects().get::<TagRecord>(&tag_key(name, tag)).await?;
                        match &current {
                            Some((rec, _)) if &rec.digest == digest && mode == PutMode::PutImage => {
                                return Err(RegistryError::ImageAlreadyExists {
                                    digest: digest.to_string(),
                                    tag: tag.clone(),
                                    repository: name.to_owned(),
                                    registry: self.registry_id().to_owned(),
                                })
                            }
                            Some((rec, _)) if &rec.digest != digest && tag_is_immutable(&repo, tag) => {
                                return Err(RegistryError::TagImmutable { repository: name.to_owned(), tag: tag.clone() })
                            }
                            _ => {}
                        }
                        let rev = current.as_ref().map_or(0, |(_, r)| *r);
                        txn = txn.when(tag_key(name, tag), rev).put(tag_key(name, tag), encode(&TagRecord { digest: digest.clone(), updated_at: t })?);
                    }
                    let record = ManifestRecord {
                        digest: digest.clone(),
                        media_type: manifest.media_type.clone(),
                        size: bytes.len() as u64,
                        pushed_at: existing.as_ref().map_or(t, |(r, _)| r.pushed_at),
                        blobs: blobs.iter().cloned().collect(),
                        children: children.iter().cloned().collect(),
                        subject: manifest.subject.as_ref().map(|s| s.digest.clone()),
                        artifact_type: manifest.referrer_artifact_type(),
                        config_media_type: manifest.config.as_ref().map(|c| c.media_type.clone()),
                        annotations: manifest.annotations.clone(),
                        image_size: manifest.layers_size(),
                        last_pulled_at: existing.as_ref().and_then(|(r, _)| r.last_pulled_at),
                    };
                    txn = txn
                        .put(manifest_key(name, digest), encode(&record)?)
                        .put(mbody_key(name, digest), bytes.clone());
                    if let Some(s) = &record.subject {
                        txn = txn.put(referrer_key(name, s, digest), Bytes::from_static(b"{}"));
                    }
                    Ok(Step::Commit(txn, record))
                }
            })
            .await
    }

    /// Removes a tag; the manifest stays.
    pub(crate) async fn delete_tag(&self, name: &str, tag: &str) -> Result<Digest, RegistryError> {
        self.objects()
            .retry(&format!("tag {name}:{tag}"), || async move {
                let (_, repo_rev) = self.repo(name).await?;
                let Some((rec, rev)) = self.objects().get::<TagRecord>(&tag_key(name, tag)).await?
                else {
                    return Err(RegistryError::ImageNotFound(format!(
                        "The image tag '{tag}' does not exist in the repository with name '{name}'"
                    )));
                };
                let txn = Txn::new()
                    .when(repo_key(name), repo_rev)
                    .when(tag_key(name, tag), rev)
                    .delete(tag_key(name, tag));
                Ok(Step::Commit(txn, rec.digest))
            })
            .await
    }

    /// Removes a manifest and every tag pointing to it; returns the tags removed.
    pub(crate) async fn delete_manifest(
        &self,
        name: &str,
        digest: &Digest,
    ) -> Result<Vec<String>, RegistryError> {
        self.objects()
            .retry(&format!("manifest {name}@{digest}"), || async move {
                let Some((rec, rev)) = self.objects().get::<ManifestRecord>(&manifest_key(name, digest)).await? else {
                    return Err(RegistryError::ImageNotFound(format!("The image with digest '{digest}' does not exist in the repository with name '{name}'")));
                };
                let mut txn = Txn::new()
                    .when(manifest_key(name, digest), rev)
                    .delete(manifest_key(name, digest))
                    .delete(mbody_key(name, digest))
                    // Its scan goes with it: a later push of the same digest starts afresh.
                    .delete(crate::scanning::scan_key(name, digest));
                if let Some(s) = &rec.subject {
                    txn = txn.delete(referrer_key(name, s, digest));
                }
                let mut removed = Vec::new();
                for (tag, t) in self.tags(name).await? {
                    if &t.digest == digest {
                        txn = txn.delete(tag_key(name, &tag));
                        removed.push(tag);
                    }
                }
                Ok(Step::Commit(txn, removed))
            })
            .await
    }

    /// Verifies and commits upload `id` as blob `digest` of repository `name`, records
    /// the blob and its link, and ends the session.
    pub(crate) async fn commit_upload(
        &self,
        name: &str,
        id: &str,
        digest: &Digest,
    ) -> Result<u64, RegistryError> {
        let _guard = self.blob_lock(digest).lock().await;
        let size = self.blobs().commit(id, digest).await?;
        self.record_blob(name, digest, size, Some(id)).await?;
        tracing::info!(repository = name, digest = %digest, size, "Blob upload committed.");
        Ok(size)
    }

    /// Records that `digest` (present in the blob store) belongs to `name`.
    pub(crate) async fn record_blob(
        &self,
        name: &str,
        digest: &Digest,
        size: u64,
        upload: Option<&str>,
    ) -> Result<(), RegistryError> {
        let t = now();
        self.objects()
            .retry(&format!("blob {digest}"), || async move {
                let existing = self.objects().get::<BlobRecord>(&blob_key(digest)).await?;
                let (rec, rev) = match existing {
                    Some((mut r, rev)) => {
                        r.touched_at = t;
                        (r, rev)
                    }
                    None => (
                        BlobRecord {
                            size,
                            created_at: t,
                            touched_at: t,
                        },
                        0,
                    ),
                };
                let mut txn = Txn::new()
                    .when(blob_key(digest), rev)
                    .put(blob_key(digest), encode(&rec)?);
                let lk = link_key(name, digest);
                if self.objects().get_raw(&lk).await?.is_none() {
                    txn = txn.put(lk, encode(&LinkRecord { created_at: t })?);
                }
                if let Some(id) = upload {
                    txn = txn.delete(upload_key(id));
                }
                Ok(Step::Commit(txn, ()))
            })
            .await
    }

    /// The size of blob `digest` if it is linked into `name` and present.
    pub(crate) async fn blob_in_repo(
        &self,
        name: &str,
        digest: &Digest,
    ) -> Result<Option<u64>, RegistryError> {
        if self
            .objects()
            .get_raw(&link_key(name, digest))
            .await?
            .is_none()
        {
            return Ok(None);
        }
        Ok(self.blobs().stat(digest).await?)
    }

    /// Links an existing blob into `name` (cross-repository mount, or an upload of a
    /// blob the registry already holds). `None` when the blob is not in the registry.
    pub(crate) async fn link_existing(
        &self,
        name: &str,
        digest: &Digest,
    ) -> Result<Option<u64>, RegistryError> {
        let _guard = self.blob_lock(digest).lock().await;
        let Some((rec, _)) = self.objects().get::<BlobRecord>(&blob_key(digest)).await? else {
            return Ok(None);
        };
        if self.blobs().stat(digest).await?.is_none() {
            return Ok(None);
        }
        self.record_blob(name, digest, rec.size, None).await?;
        Ok(Some(rec.size))
    }
}
