//! The Amazon ECR API (AWS JSON 1.1): each operation decodes its request, validates it
//! by AWS's rules, and works through the registry core in `images.rs`.

use crate::error::{invalid, RegistryError};
use crate::images::PutMode;
use crate::objects::{
    encode, lifecycle_run_key, manifest_prefix, now, preview_key, repo_key, tag_prefix,
    ManifestRecord, PreviewRecord, RepoRecord, Step, REPO_PREFIX,
};
use crate::{distribution, lifecycle_policy, now_secs, Registry};
use base64::Engine;
use bytes::Bytes;
use model::ecr::shapes::*;
use oci::reference::{validate_name, validate_tag, Reference};
use oci::Digest;
use std::collections::BTreeMap;
use store::Txn;

/// Largest page DescribeRepositories/DescribeImages/ListImages return.
const MAX_PAGE: usize = 1000;
/// ECR's limit on tags per resource.
const MAX_TAGS: usize = 50;
/// ECR's largest layer part (UploadLayerPart) in bytes.
const MAX_PART: usize = 20 * 1024 * 1024;

mod layers;
mod operations;
mod policies;
pub(crate) mod registry_policy;

use operations::execute;
pub use operations::Operation;

/// Runs the ECR operation named `operation` on a JSON `body` as the account root.
pub(crate) async fn handle(
    reg: &Registry,
    operation: &str,
    body: &[u8],
) -> Result<Vec<u8>, RegistryError> {
    let root = wire::Caller::root(reg.registry_id());
    match Operation::from_name(operation) {
        Some(op) => execute(reg, op, body, &root).await,
        None => Err(RegistryError::UnknownOperation(operation.to_owned())),
    }
}

pub(crate) fn check_registry(reg: &Registry, id: Option<&String>) -> Result<(), RegistryError> {
    match id {
        Some(i) if i != reg.registry_id() => invalid(format!("Invalid parameter at 'registryId' failed to satisfy constraint: this registry's id is {}", reg.registry_id())),
        _ => Ok(()),
    }
}

/// ECR's name rule is stricter than distribution's: one `.`, `_` or `-` between
/// alphanumerics (no `__`, no `--`).
pub(crate) fn check_name(name: &str) -> Result<(), RegistryError> {
    let strict = if name.contains("__") || name.contains("--") {
        Err(())
    } else {
        Ok(())
    };
    validate_name(name).map_err(|_| ()).and(strict).map_err(|()| {
        RegistryError::InvalidParameter(format!(
            "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*'' and length 2-256 ('{}')",
            name.chars().take(300).collect::<String>()
        ))
    })
}

fn repository_arn(reg: &Registry, name: &str) -> String {
    format!(
        "arn:aws:ecr:{}:{}:repository/{name}",
        reg.config().region,
        reg.registry_id()
    )
}

fn name_from_arn<'a>(reg: &Registry, arn: &'a str) -> Result<&'a str, RegistryError> {
    let prefix = format!(
        "arn:aws:ecr:{}:{}:repository/",
        reg.config().region,
        reg.registry_id()
    );
    match arn.strip_prefix(&prefix) {
        Some(n) if validate_name(n).is_ok() => Ok(n),
        _ => invalid(format!("Invalid parameter at 'resourceArn' failed to satisfy constraint: '{arn}' is not a repository ARN of this registry")),
    }
}

fn check_tags(tags: &[Tag]) -> Result<(), RegistryError> {
    if tags.len() > MAX_TAGS {
        return Err(RegistryError::TooManyTags(format!(
            "A resource can have at most {MAX_TAGS} tags."
        )));
    }
    for t in tags {
        if t.key.is_empty()
            || t.key.chars().count() > 128
            || t.value.chars().count() > 256
            || t.key.starts_with("aws:")
        {
            return Err(RegistryError::InvalidTagParameter(format!("Invalid tag '{}': keys are 1-128 characters, values up to 256, and 'aws:' is reserved.", t.key)));
        }
    }
    Ok(())
}

fn merge_tags(existing: &mut Vec<Tag>, new: &[Tag]) {
    for t in new {
        match existing.iter_mut().find(|e| e.key == t.key) {
            Some(e) => e.value.clone_from(&t.value),
            None => existing.push(t.clone()),
        }
    }
}

/// Offset-based opaque pagination over a sorted list.
pub(crate) fn page<T>(
    items: Vec<T>,
    token: Option<&str>,
    max: Option<i32>,
) -> Result<(Vec<T>, Option<String>), RegistryError> {
    use wire::pagination as paging;
    let size = paging::page_size(max, MAX_PAGE).or_else(|e| {
        invalid(format!(
            "maxResults must be between 1 and {MAX_PAGE}; got {}.",
            e.requested
        ))
    })?;
    let start = match paging::start_after("v1", token) {
        Ok(None) => Some(0),
        Ok(Some(offset)) => offset.parse::<usize>().ok(),
        Err(_) => None,
    }
    .ok_or_else(|| {
        RegistryError::InvalidParameter(
            "Invalid nextToken: it was not returned by a previous call of this operation.".into(),
        )
    })?;
    let total = items.len();
    let out: Vec<T> = items.into_iter().skip(start).take(size).collect();
    let next = (start + out.len() < total)
        .then(|| paging::encode_token("v1", &(start + out.len()).to_string()));
    Ok((out, next))
}

/// Issues one password per registry id, bound to `caller` (see `auth`).
async fn get_authorization_token(
    reg: &Registry,
    caller: &wire::Caller,
    req: GetAuthorizationTokenRequest,
) -> Result<GetAuthorizationTokenResponse, RegistryError> {
    let ids = req
        .registry_ids
        .unwrap_or_else(|| vec![reg.registry_id().to_owned()]);
    if ids.is_empty()
        || ids.len() > 10
        || ids
            .iter()
            .any(|i| i.len() != 12 || !i.bytes().all(|b| b.is_ascii_digit()))
    {
        return invalid("registryIds must hold 1-10 twelve-digit registry ids.");
    }
    // A session's token ends with the session, so renewal can never outlive it.
    let not_after = caller.session_expiry();
    let endpoint = format!("{}://{}", reg.config().scheme, reg.config().host);
    let mut data = Vec::with_capacity(ids.len());
    for id in &ids {
        // Another account's registry of this server issues its own token (it verifies
        // it on pulls, against its repository policies); any other id gets this
        // registry's, as every registry of one server shares its host.
        let issuer = reg.peer(id).unwrap_or_else(|| reg.clone());
        let key = issuer.token_key().await?;
        let subject = crate::auth::TokenSubject::of(caller, issuer.registry_id());
        let (password, expires) = key.issue(now_secs(), &subject, not_after);
        data.push(AuthorizationData {
            authorization_token: Some(
                base64::engine::general_purpose::STANDARD.encode(format!("AWS:{password}")),
            ),
            expires_at: Some(expires as f64),
            proxy_endpoint: Some(endpoint.clone()),
        });
    }
    Ok(GetAuthorizationTokenResponse {
        authorization_data: Some(data),
    })
}

/// Creates repository `name` with CreateRepository's defaults (replication's destination
/// repositories, as AWS creates them).
pub(crate) async fn create_repository_named(
    reg: &Registry,
    name: &str,
) -> Result<(), RegistryError> {
    let req = CreateRepositoryRequest {
        repository_name: name.to_owned(),
        ..CreateRepositoryRequest::default()
    };
    create_repository(reg, req).await.map(|_| ())
}

async fn create_repository(
    reg: &Registry,
    req: CreateRepositoryRequest,
) -> Result<CreateRepositoryResponse, RegistryError> {
    check_registry(reg, req.registry_id.as_ref())?;
    check_name(&req.repository_name)?;
    let tags = req.tags.clone().unwrap_or_default();
    check_tags(&tags)?;
    let name = req.repository_name.clone();
    let repository = Repository {
        repository_arn: Some(repository_arn(reg, &name)),
        registry_id: Some(reg.registry_id().to_owned()),
        repository_name: Some(name.clone()),
        repository_uri: Some(format!("{}/{name}", reg.config().host)),
        created_at: Some(now()),
        image_tag_mutability: Some(
            req.image_tag_mutability
                .unwrap_or(ImageTagMutability::Mutable),
        ),
        image_tag_mutability_exclusion_filters: req.image_tag_mutability_exclusion_filters.clone(),
        image_scanning_configuration: Some(req.image_scanning_configuration.clone().unwrap_or(
            ImageScanningConfiguration {
                scan_on_push: Some(false),
            },
        )),
        encryption_configuration: Some(req.encryption_configuration.clone().unwrap_or(
            EncryptionConfiguration {
                encryption_type: EncryptionType::Aes256,
                kms_key: None,
            },
        )),
    };
    let rec = RepoRecord {
        repository: repository.clone(),
        tags,
        policy: None,
        lifecycle_policy: None,
        lifecycle_updated_at: None,
    };
    let key = repo_key(&name);
    if !reg
        .objects()
        .commit(Txn::new().when(key.clone(), 0).put(key, encode(&rec)?))
        .await?
    {
        return Err(RegistryError::RepositoryAlreadyExists(
            name,
            reg.registry_id().to_owned(),
        ));
    }
    tracing::info!(repository = %name, "Repository created.");
    Ok(CreateRepositoryResponse {
        repository: Some(repository),
    })
}

async fn describe_repositories(
    reg: &Registry,
    req: DescribeRepositoriesRequest,
) -> Result<DescribeRepositoriesResponse, RegistryError> {
    check_registry(reg, req.registry_id.as_ref())?;
    let repos: Vec<Repository> = match &req.repository_names {
        Some(names) => {
            let mut out = Vec::new();
            for n in names {
                check_name(n)?;
                out.push(reg.repo(n).await?.0.repository);
            }
            out
        }
        None => reg
            .objects()
            .list::<RepoRecord>(REPO_PREFIX)
            .await?
            .into_iter()
            .map(|(_, r, _)| r.repository)
            .collect(),
    };
    if req.repository_names.is_some() && (req.next_token.is_some() || req.max_results.is_some()) {
        return invalid("maxResults and nextToken cannot be used with repositoryNames.");
    }
    let (repos, next) = page(repos, req.next_token.as_deref(), req.max_results)?;
    Ok(DescribeRepositoriesResponse {
        repositories: Some(repos),
        next_token: next,
    })
}

async fn delete_repository(
    reg: &Registry,
    req: DeleteRepositoryRequest,
) -> Result<DeleteRepositoryResponse, RegistryError> {
    check_registry(reg, req.registry_id.as_ref())?;
    check_name(&req.repository_name)?;
    let name = req.repository_name.as_str();
    let force = req.force.unwrap_or(false);
    let repo = reg
        .objects()
        .retry(&format!("repository {name}"), || async move {
            let (rec, rev) = reg.repo(name).await?;
            let manifests = reg.objects().keys(&manifest_prefix(name)).await?;
            if !manifests.is_empty() && !force {
                return Err(RegistryError::RepositoryNotEmpty(
                    name.to_owned(),
                    reg.registry_id().to_owned(),
                ));
            }
            let mut txn = Txn::new()
                .when(repo_key(name), rev)
                .delete(repo_key(name))
                .delete(preview_key(name))
                .delete(lifecycle_run_key(name));
            for k in crate::pull_through::forget_repository(reg, name).await? {
                txn = txn.delete(k);
            }
            for prefix in [
                manifest_prefix(name),
                tag_prefix(name),
                format!("ecr/mbody/{name}#"),
                format!("ecr/link/{name}#"),
                format!("ecr/referrer/{name}#"),
                crate::scanning::scan_prefix(name),
            ] {
                for (k, _) in reg.objects().keys(&prefix).await? {
                    txn = txn.delete(k);
                }
            }
            Ok(Step::Commit(txn, rec.repository))
        })
        .await?;
    tracing::info!(repository = %name, force, "Repository deleted.");
    Ok(DeleteRepositoryResponse {
        repository: Some(repo),
    })
}

/// Tags per digest.
pub(crate) async fn tags_by_digest(
    reg: &Registry,
    name: &str,
) -> Result<BTreeMap<Digest, Vec<String>>, RegistryError> {
    let mut m: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
    for (tag, rec) in reg.tags(name).await? {
        m.entry(rec.digest).or_default().push(tag);
    }
    Ok(m)
}

fn status_admits(status: Option<TagStatus>, tagged: bool) -> bool {
    match status {
        None | Some(TagStatus::Any) => true,
        Some(TagStatus::Tagged) => tagged,
        Some(TagStatus::Untagged) => !tagged,
    }
}

async fn list_images(
    reg: &Registry,
    req: ListImagesRequest,
) -> Result<ListImagesResponse, RegistryError> {
    check_registry(reg, req.registry_id.as_ref())?;
    check_name(&req.repository_name)?;
    let name = req.repository_name.as_str();
    reg.repo(name).await?;
    let status = req.filter.as_ref().and_then(|f| f.tag_status);
    let tags = tags_by_digest(reg, name).await?;
    let mut ids = Vec::new();
    for m in reg.manifests(name).await? {
        match tags.get(&m.digest) {
            Some(ts) if status_admits(status, true) => {
                ids.extend(ts.iter().map(|t| ImageIdentifier {
                    image_digest: Some(m.digest.to_string()),
                    image_tag: Some(t.clone()),
                }))
            }
            None if status_admits(status, false) => ids.push(ImageIdentifier {
                image_digest: Some(m.digest.to_string()),
                image_tag: None,
            }),
            _ => {}
        }
    }
    let (ids, next) = page(ids, req.next_token.as_deref(), req.max_results)?;
    Ok(ListImagesResponse {
        image_ids: Some(ids),
        next_token: next,
    })
}

fn detail(
    reg: &Registry,
    name: &str,
    m: &ManifestRecord,
    tags: Option<&Vec<String>>,
) -> ImageDetail {
    ImageDetail {
        registry_id: Some(reg.registry_id().to_owned()),
        repository_name: Some(name.to_owned()),
        image_digest: Some(m.digest.to_string()),
        image_tags: tags.cloned(),
        image_size_in_bytes: Some(m.image_size),
        image_pushed_at: Some(m.pushed_at),
        image_manifest_media_type: Some(m.media_type.clone()),
        artifact_media_type: m.config_media_type.clone(),
        last_recorded_pull_time: m.last_pulled_at,
        subject_manifest_digest: m.subject.as_ref().map(ToString::to_string),
        image_status: Some(ImageStatus::Active),
        ..Default::default()
    }
}

/// ImageNotFoundException's message for an image id.
pub(crate) fn image_not_found(reg: &Registry, name: &str, id: &ImageIdentifier) -> String {
    format!(
        "The image with imageId {{imageDigest:'{}', imageTag:'{}'}} does not exist within the repository with name '{name}' in the registry with id '{}'",
        id.image_digest.as_deref().unwrap_or("null"),
        id.image_tag.as_deref().unwrap_or("null"),
        reg.registry_id()
    )
}

/// Resolves an ECR image id to a manifest, or an `ImageFailure`.
pub(crate) async fn resolve_id(
    reg: &Registry,
    name: &str,
    id: &ImageIdentifier,
) -> Result<Result<ManifestRecord, ImageFailure>, RegistryError> {
    let fail = |code: ImageFailureCode, reason: String| {
        Ok(Err(ImageFailure {
            image_id: Some(id.clone()),
            failure_code: Some(code),
            failure_reason: Some(reason),
        }))
    };
    let digest = match &id.image_digest {
        Some(d) => match Digest::parse(d) {
            Ok(d) => Some(d),
            Err(_) => {
                return fail(
                    ImageFailureCode::InvalidImageDigest,
                    "Invalid image digest".into(),
                )
            }
        },
        None => None,
    };
    if let Some(t) = &id.image_tag {
        if validate_tag(t).is_err() {
            return fail(
                ImageFailureCode::InvalidImageTag,
                "Invalid image tag".into(),
            );
        }
    }
    let reference = match (&digest, &id.image_tag) {
        (Some(d), _) => Reference::Digest(d.clone()),
        (None, Some(t)) => Reference::Tag(t.clone()),
        (None, None) => {
            return fail(
                ImageFailureCode::MissingDigestAndTag,
                "Missing image digest and tag".into(),
            )
        }
    };
    let rec = match reg.resolve(name, &reference).await {
        Ok(r) => r,
        Err(RegistryError::ImageNotFound(_)) => {
            return fail(
                ImageFailureCode::ImageNotFound,
                "Requested image not found".into(),
            )
        }
        Err(e) => return Err(e),
    };
    if let (Some(_), Some(t)) = (&digest, &id.image_tag) {
        match reg.resolve(name, &Reference::Tag(t.clone())).await {
            Ok(by_tag) if by_tag.digest == rec.digest => {}
            Ok(_) => {
                return fail(
                    ImageFailureCode::ImageTagDoesNotMatchDigest,
                    "Image tag does not match digest".into(),
                )
            }
            Err(RegistryError::ImageNotFound(_)) => {
                return fail(
                    ImageFailureCode::ImageNotFound,
                    "Requested image not found".into(),
                )
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Ok(rec))
}

async fn describe_images(
    reg: &Registry,
    req: DescribeImagesRequest,
) -> Result<DescribeImagesResponse, RegistryError> {
    check_registry(reg, req.registry_id.as_ref())?;
    check_name(&req.repository_name)?;
    let name = req.repository_name.as_str();
    reg.repo(name).await?;
    let tags = tags_by_digest(reg, name).await?;
    let details: Vec<ImageDetail> = match &req.image_ids {
        Some(ids) => {
            let mut out = Vec::new();
            for id in ids {
                match resolve_id(reg, name, id).await? {
                    Ok(m) => {
                        if !out.iter().any(|d: &ImageDetail| {
                            d.image_digest.as_deref() == Some(&m.digest.to_string())
                        }) {
                            out.push(detail(reg, name, &m, tags.get(&m.digest)));
                        }
                    }
                    Err(_) => {
                        return Err(RegistryError::ImageNotFound(image_not_found(reg, name, id)))
                    }
                }
            }
            out
        }
        None => {
            let status = req.filter.as_ref().and_then(|f| f.tag_status);
            reg.manifests(name)
                .await?
                .iter()
                .filter(|m| status_admits(status, tags.contains_key(&m.digest)))
                .map(|m| detail(reg, name, m, tags.get(&m.digest)))
                .collect()
        }
    };
    let (mut details, next) = page(details, req.next_token.as_deref(), req.max_results)?;
    for d in &mut details {
        let digest = d
            .image_digest
            .as_deref()
            .and_then(|d| Digest::parse(d).ok());
        if let Some(digest) = digest {
            if let Some((status, summary)) = reg.scan_of(name, &digest).await? {
                d.image_scan_status = Some(status);
                d.image_scan_findings_summary = summary;
            }
        }
    }
    Ok(DescribeImagesResponse {
        image_details: Some(details),
        next_token: next,
    })
}

async fn batch_get_image(
    reg: &Registry,
    caller: &wire::Caller,
    req: BatchGetImageRequest,
) -> Result<BatchGetImageResponse, RegistryError> {
    check_registry(reg, req.registry_id.as_ref())?;
    check_name(&req.repository_name)?;
    let name = req.repository_name.as_str();
    // A pull-through cache repository is filled (or refreshed) from upstream first.
    for id in &req.image_ids {
        let reference = match (&id.image_digest, &id.image_tag) {
            (Some(d), _) => Digest::parse(d).ok().map(Reference::Digest),
            (None, Some(t)) => validate_tag(t).ok().map(|()| Reference::Tag(t.clone())),
            (None, None) => None,
        };
        if let Some(r) = reference {
            crate::pull_through::before_pull(reg, caller, name, &r).await?;
        }
    }
    reg.repo(name).await?;
    if req.image_ids.is_empty() || req.image_ids.len() > 100 {
        return invalid("imageIds must hold 1-100 image identifiers.");
    }
    let (mut images, mut failures) = (Vec::new(), Vec::new());
    for id in &req.image_ids {
        match resolve_id(reg, name, id).await? {
            Ok(m) => {
                if let Some(accepted) = &req.accepted_media_types {
                    if !accepted.iter().any(|a| a == &m.media_type) {
                        failures.push(ImageFailure {
                            image_id: Some(id.clone()),
                            failure_code: Some(ImageFailureCode::ImageNotFound),
                            failure_reason: Some(format!(
                                "The image's media type {} is not among the accepted media types",
                                m.media_type
                            )),
                        });
                        continue;
                    }
                }
                let bytes = reg.manifest_bytes(name, &m.digest).await?;
                images.push(Image {
                    registry_id: Some(reg.registry_id().to_owned()),
                    repository_name: Some(name.to_owned()),
                    image_id: Some(ImageIdentifier {
                        image_digest: Some(m.digest.to_string()),
                        image_tag: id.image_tag.clone(),
                    }),
                    image_manifest: Some(String::from_utf8_lossy(&bytes).into_owned()),
                    image_manifest_media_type: Some(m.media_type.clone()),
                });
            }
            Err(f) => failures.push(f),
        }
    }
    Ok(BatchGetImageResponse {
        images: Some(images),
        failures: Some(failures),
    })
}

async fn batch_delete_image(
    reg: &Registry,
    req: BatchDeleteImageRequest,
) -> Result<BatchDeleteImageResponse, RegistryError> {
    check_registry(reg, req.registry_id.as_ref())?;
    check_name(&req.repository_name)?;
    let name = req.repository_name.as_str();
    reg.repo(name).await?;
    if req.image_ids.is_empty() || req.image_ids.len() > 100 {
        return invalid("imageIds must hold 1-100 image identifiers.");
    }
    let (mut deleted, mut failures) = (Vec::new(), Vec::new());
    for id in &req.image_ids {
        let m = match resolve_id(reg, name, id).await? {
            Ok(m) => m,
            Err(f) => {
                failures.push(f);
                continue;
            }
        };
        let parents = reg
            .manifests(name)
            .await?
            .into_iter()
            .filter(|p| p.children.contains(&m.digest))
            .count();
        let last_tag = id.image_tag.is_some()
            && id.image_digest.is_none()
            && reg
                .tags(name)
                .await?
                .iter()
                .filter(|(_, t)| t.digest == m.digest)
                .count()
                <= 1;
        if parents > 0 && (id.image_tag.is_none() || id.image_digest.is_some() || last_tag) {
            failures.push(ImageFailure {
                image_id: Some(id.clone()),
                failure_code: Some(ImageFailureCode::ImageReferencedByManifestList),
                failure_reason: Some(format!(
                    "Requested image referenced by {parents} manifest list(s)"
                )),
            });
            continue;
        }
        match (&id.image_tag, &id.image_digest) {
            // A tag alone removes the tag; the image goes only when it was its last tag.
            (Some(tag), None) => {
                reg.delete_tag(name, tag).await?;
                let still_tagged = reg
                    .tags(name)
                    .await?
                    .iter()
                    .any(|(_, t)| t.digest == m.digest);
                if !still_tagged {
                    reg.delete_manifest(name, &m.digest).await?;
                }
                deleted.push(ImageIdentifier {
                    image_digest: Some(m.digest.to_string()),
                    image_tag: Some(tag.clone()),
                });
            }
            _ => {
                let removed = reg.delete_manifest(name, &m.digest).await?;
                if removed.is_empty() {
                    deleted.push(ImageIdentifier {
                        image_digest: Some(m.digest.to_string()),
                        image_tag: None,
                    });
                }
                for t in removed {
                    deleted.push(ImageIdentifier {
                        image_digest: Some(m.digest.to_string()),
                        image_tag: Some(t),
                    });
                }
            }
        }
    }
    Ok(BatchDeleteImageResponse {
        image_ids: Some(deleted),
        failures: Some(failures),
    })
}

async fn put_image(
    reg: &Registry,
    req: PutImageRequest,
) -> Result<PutImageResponse, RegistryError> {
    check_registry(reg, req.registry_id.as_ref())?;
    check_name(&req.repository_name)?;
    let name = req.repository_name.as_str();
    // A missing repository is reported before anything about the manifest, as ECR does.
    reg.repo(name).await?;
    let bytes = Bytes::from(req.image_manifest.clone().into_bytes());
    let given = match &req.image_digest {
        Some(d) => Some(Digest::parse(d).map_err(|e| {
            RegistryError::InvalidParameter(format!("Invalid parameter at 'imageDigest': {e}"))
        })?),
        None => None,
    };
    if let Some(d) = &given {
        let mut digester = oci::Digester::new(d.algorithm());
        digester.update(&bytes);
        let actual = digester.finish();
        if &actual != d {
            return Err(RegistryError::ImageDigestDoesNotMatch(format!(
                "The image digest {d} does not match the digest {actual} calculated for the image manifest."
            )));
        }
    }
    let reference = match (&req.image_tag, given) {
        (Some(t), _) => {
            validate_tag(t).map_err(|e| RegistryError::InvalidParameter(e.to_string()))?;
            Reference::Tag(t.clone())
        }
        (None, Some(d)) => Reference::Digest(d),
        (None, None) => Reference::Digest(Digest::sha256_of(&bytes)),
    };
    let rec = reg
        .put_manifest(
            name,
            &reference,
            bytes,
            req.image_manifest_media_type.as_deref(),
            PutMode::PutImage,
        )
        .await?;
    Ok(PutImageResponse {
        image: Some(Image {
            registry_id: Some(reg.registry_id().to_owned()),
            repository_name: Some(name.to_owned()),
            image_id: Some(ImageIdentifier {
                image_digest: Some(rec.digest.to_string()),
                image_tag: req.image_tag.clone(),
            }),
            image_manifest: Some(req.image_manifest),
            image_manifest_media_type: Some(rec.media_type),
        }),
    })
}
