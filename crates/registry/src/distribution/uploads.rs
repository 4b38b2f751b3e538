//! Blob upload sessions: start (with cross-repository mount, monolithic upload and the
//! "already here" short-circuit), chunked PATCH with `Content-Range`, closing PUT with
//! digest verification, status and cancel. Bodies stream straight into the blob store.

use super::*;

pub(super) fn body_reader(body: Body) -> blobstore::BlobReader {
    let stream = body
        .into_data_stream()
        .inspect_ok(|chunk| telemetry::RegistryBytes::Received(chunk.len()).emit())
        .map_err(std::io::Error::other);
    Box::pin(tokio_util::io::StreamReader::new(stream))
}

pub(super) fn upload_location(name: &str, id: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

pub(super) fn blob_created(name: &str, digest: &Digest) -> Response {
    reply(
        StatusCode::CREATED,
        vec![
            ("location", format!("/v2/{name}/blobs/{digest}")),
            ("docker-content-digest", digest.to_string()),
            ("content-length", "0".into()),
        ],
        Body::empty(),
    )
}

/// Starts an upload session; returns its id.
pub(crate) async fn begin_session(reg: &Registry, name: &str) -> Result<String, RegistryError> {
    let id = uuid::Uuid::new_v4().to_string();
    reg.blobs().begin_upload(&id).await?;
    let rec = UploadRecord {
        repository: name.to_owned(),
        created_at: now(),
    };
    reg.objects()
        .commit(
            Txn::new()
                .when(upload_key(&id), 0)
                .put(upload_key(&id), encode(&rec)?),
        )
        .await?;
    Ok(id)
}

/// Checks upload `id` exists and belongs to `name`.
pub(crate) async fn session(
    reg: &Registry,
    name: &str,
    id: &str,
) -> Result<UploadRecord, RegistryError> {
    match reg.objects().get::<UploadRecord>(&upload_key(id)).await? {
        Some((rec, _)) if rec.repository == name => Ok(rec),
        _ => Err(RegistryError::UploadUnknown(format!(
            "upload {id} is unknown to repository {name}"
        ))),
    }
}

pub(super) async fn start_upload(
    reg: &Registry,
    name: &str,
    q: &HashMap<String, String>,
    req: Request,
) -> Result<Response, RegistryError> {
    if let (Some(mount), Some(from)) = (q.get("mount"), q.get("from")) {
        let digest = parse_digest(mount)?;
        if validate_name(from).is_ok()
            && reg.blob_in_repo(from, &digest).await?.is_some()
            && reg.link_existing(name, &digest).await?.is_some()
        {
            return Ok(blob_created(name, &digest));
        }
    }
    if let Some(d) = q.get("digest") {
        let digest = parse_digest(d)?;
        // The blob is already here: link it without reading the body again.
        if reg.link_existing(name, &digest).await?.is_some() {
            return Ok(blob_created(name, &digest));
        }
        let id = begin_session(reg, name).await?;
        let result = async {
            reg.blobs()
                .append(
                    &id,
                    0,
                    body_reader(req.into_body()),
                    reg.config().max_blob_bytes,
                )
                .await?;
            reg.commit_upload(name, &id, &digest).await
        }
        .await;
        if let Err(e) = result {
            drop_session(reg, &id).await;
            return Err(e);
        }
        return Ok(blob_created(name, &digest));
    }
    let id = begin_session(reg, name).await?;
    Ok(reply(
        StatusCode::ACCEPTED,
        vec![
            ("location", upload_location(name, &id)),
            ("range", "0-0".into()),
            ("docker-upload-uuid", id.clone()),
            ("content-length", "0".into()),
        ],
        Body::empty(),
    ))
}

pub(super) async fn drop_session(reg: &Registry, id: &str) {
    if let Err(error) = reg.blobs().remove_upload(id).await {
        tracing::warn!(%error, upload = id, "Could not remove a failed upload's data.");
    }
    if let Err(error) = reg
        .objects()
        .commit(Txn::new().delete(upload_key(id)))
        .await
    {
        tracing::warn!(%error, upload = id, "Could not remove a failed upload's session.");
    }
}

pub(super) fn upload_accepted(name: &str, id: &str, size: u64) -> Response {
    reply(
        StatusCode::ACCEPTED,
        vec![
            ("location", upload_location(name, id)),
            ("range", range_value(size)),
            ("docker-upload-uuid", id.to_owned()),
            ("content-length", "0".into()),
        ],
        Body::empty(),
    )
}

pub(super) async fn patch_upload(
    reg: &Registry,
    name: &str,
    id: &str,
    req: Request,
) -> Result<Response, RegistryError> {
    session(reg, name, id).await?;
    let size = reg.blobs().upload_size(id).await?;
    let offset = match header_str(req.headers(), header::CONTENT_RANGE) {
        Some(h) => {
            let r = range::parse_content_range(h).map_err(|_| RegistryError::RangeInvalid {
                message: format!("invalid Content-Range '{h}'"),
                size,
            })?;
            if r.start != size {
                return Err(RegistryError::RangeInvalid {
                    message: format!(
                        "the chunk starts at byte {} but {size} bytes have been received",
                        r.start
                    ),
                    size,
                });
            }
            r.start
        }
        None => size,
    };
    let new_size = reg
        .blobs()
        .append(
            id,
            offset,
            body_reader(req.into_body()),
            reg.config().max_blob_bytes,
        )
        .await?;
    Ok(upload_accepted(name, id, new_size))
}

pub(super) async fn put_upload(
    reg: &Registry,
    name: &str,
    id: &str,
    q: &HashMap<String, String>,
    req: Request,
) -> Result<Response, RegistryError> {
    session(reg, name, id).await?;
    let Some(d) = q.get("digest") else {
        return Err(RegistryError::DigestInvalid(
            "closing an upload needs a digest parameter".into(),
        ));
    };
    let digest = parse_digest(d)?;
    let size = reg.blobs().upload_size(id).await?;
    if let Some(h) = header_str(req.headers(), header::CONTENT_RANGE) {
        let r = range::parse_content_range(h).map_err(|_| RegistryError::RangeInvalid {
            message: format!("invalid Content-Range '{h}'"),
            size,
        })?;
        if r.start != size {
            return Err(RegistryError::RangeInvalid {
                message: format!(
                    "the chunk starts at byte {} but {size} bytes have been received",
                    r.start
                ),
                size,
            });
        }
    }
    reg.blobs()
        .append(
            id,
            size,
            body_reader(req.into_body()),
            reg.config().max_blob_bytes,
        )
        .await?;
    match reg.commit_upload(name, id, &digest).await {
        Ok(_) => Ok(blob_created(name, &digest)),
        Err(e @ RegistryError::DigestInvalid(_)) => {
            // A mismatched upload cannot become valid; drop it as distribution does.
            drop_session(reg, id).await;
            Err(e)
        }
        Err(e) => Err(e),
    }
}

pub(super) async fn upload_status(
    reg: &Registry,
    name: &str,
    id: &str,
) -> Result<Response, RegistryError> {
    session(reg, name, id).await?;
    let size = reg.blobs().upload_size(id).await?;
    let mut r = upload_accepted(name, id, size);
    *r.status_mut() = StatusCode::NO_CONTENT;
    Ok(r)
}

pub(super) async fn cancel_upload(
    reg: &Registry,
    name: &str,
    id: &str,
) -> Result<Response, RegistryError> {
    session(reg, name, id).await?;
    drop_session(reg, id).await;
    Ok(reply(StatusCode::NO_CONTENT, vec![], Body::empty()))
}
