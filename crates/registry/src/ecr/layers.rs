//! ECR's layer API (the JSON twin of `/v2/` blob uploads): availability checks,
//! initiate / upload part / complete, and download URLs.

use super::*;

pub(super) async fn batch_check_layer_availability(
    reg: &Registry,
    req: BatchCheckLayerAvailabilityRequest,
) -> Result<BatchCheckLayerAvailabilityResponse, RegistryError> {
    check_registry(reg, req.registry_id.as_ref())?;
    check_name(&req.repository_name)?;
    let name = req.repository_name.as_str();
    reg.repo(name).await?;
    if req.layer_digests.is_empty() || req.layer_digests.len() > 100 {
        return invalid("layerDigests must hold 1-100 digests.");
    }
    let (mut layers, mut failures) = (Vec::new(), Vec::new());
    for d in &req.layer_digests {
        let Ok(digest) = Digest::parse(d) else {
            failures.push(LayerFailure {
                layer_digest: Some(d.clone()),
                failure_code: Some(LayerFailureCode::InvalidLayerDigest),
                failure_reason: Some("Invalid layer digest".into()),
            });
            continue;
        };
        match reg.blob_in_repo(name, &digest).await? {
            Some(size) => layers.push(Layer {
                layer_digest: Some(d.clone()),
                layer_availability: Some(LayerAvailability::Available),
                layer_size: i64::try_from(size).ok(),
                media_type: None,
            }),
            None => failures.push(LayerFailure {
                layer_digest: Some(d.clone()),
                failure_code: Some(LayerFailureCode::MissingLayerDigest),
                failure_reason: Some("Requested layer not found".into()),
            }),
        }
    }
    Ok(BatchCheckLayerAvailabilityResponse {
        layers: Some(layers),
        failures: Some(failures),
    })
}

pub(super) async fn initiate_layer_upload(
    reg: &Registry,
    req: InitiateLayerUploadRequest,
) -> Result<InitiateLayerUploadResponse, RegistryError> {
    check_registry(reg, req.registry_id.as_ref())?;
    check_name(&req.repository_name)?;
    reg.repo(&req.repository_name).await?;
    let id = distribution::begin_session(reg, &req.repository_name).await?;
    Ok(InitiateLayerUploadResponse {
        upload_id: Some(id),
        part_size: Some(MAX_PART as i64),
    })
}

pub(super) async fn upload_layer_part(
    reg: &Registry,
    req: UploadLayerPartRequest,
) -> Result<UploadLayerPartResponse, RegistryError> {
    check_registry(reg, req.registry_id.as_ref())?;
    check_name(&req.repository_name)?;
    let name = req.repository_name.as_str();
    reg.repo(name).await?;
    distribution::session(reg, name, &req.upload_id).await?;
    let part = base64::engine::general_purpose::STANDARD
        .decode(req.layer_part_blob.as_bytes())
        .map_err(|_| {
            RegistryError::InvalidParameter("layerPartBlob is not valid base64.".into())
        })?;
    let size = reg.blobs().upload_size(&req.upload_id).await?;
    let bad = |message: String| RegistryError::InvalidLayerPart {
        message,
        last_valid: i64::try_from(size).unwrap_or(i64::MAX) - 1,
        upload_id: req.upload_id.clone(),
        repository: name.to_owned(),
        registry: reg.registry_id().to_owned(),
    };
    if part.is_empty() || part.len() > MAX_PART {
        return Err(bad(format!(
            "A layer part must hold 1 to {MAX_PART} bytes."
        )));
    }
    let expected_last = req.part_first_byte + part.len() as i64 - 1;
    if u64::try_from(req.part_first_byte).ok() != Some(size) || req.part_last_byte != expected_last
    {
        return Err(bad(format!(
            "The part covers bytes {}-{} but the upload has {size} bytes and the part {} bytes.",
            req.part_first_byte,
            req.part_last_byte,
            part.len()
        )));
    }
    let new_size = reg
        .blobs()
        .append(
            &req.upload_id,
            size,
            Box::pin(std::io::Cursor::new(part)),
            reg.config().max_blob_bytes,
        )
        .await?;
    Ok(UploadLayerPartResponse {
        registry_id: Some(reg.registry_id().to_owned()),
        repository_name: Some(name.to_owned()),
        upload_id: Some(req.upload_id.clone()),
        last_byte_received: Some(i64::try_from(new_size).unwrap_or(i64::MAX) - 1),
    })
}

pub(super) async fn complete_layer_upload(
    reg: &Registry,
    req: CompleteLayerUploadRequest,
) -> Result<CompleteLayerUploadResponse, RegistryError> {
    check_registry(reg, req.registry_id.as_ref())?;
    check_name(&req.repository_name)?;
    let name = req.repository_name.as_str();
    reg.repo(name).await?;
    distribution::session(reg, name, &req.upload_id).await?;
    let [d] = req.layer_digests.as_slice() else {
        return invalid("layerDigests must hold exactly one digest.");
    };
    let digest = Digest::parse(d)
        .map_err(|e| RegistryError::InvalidParameter(format!("Invalid layer digest: {e}")))?;
    if reg.blobs().upload_size(&req.upload_id).await? == 0 {
        return Err(RegistryError::EmptyUpload(format!(
            "The upload {} has no layer parts.",
            req.upload_id
        )));
    }
    if reg.blob_in_repo(name, &digest).await?.is_some() {
        reg.blobs().remove_upload(&req.upload_id).await?;
        reg.objects()
            .commit(Txn::new().delete(crate::objects::upload_key(&req.upload_id)))
            .await?;
        return Err(RegistryError::LayerAlreadyExists(format!(
            "The layer {digest} already exists in the repository with name '{name}'."
        )));
    }
    match reg.commit_upload(name, &req.upload_id, &digest).await {
        Ok(_) => {}
        Err(RegistryError::DigestInvalid(m)) => return Err(RegistryError::LayerDigestMismatch(m)),
        Err(e) => return Err(e),
    }
    Ok(CompleteLayerUploadResponse {
        registry_id: Some(reg.registry_id().to_owned()),
        repository_name: Some(name.to_owned()),
        upload_id: Some(req.upload_id.clone()),
        layer_digest: Some(digest.to_string()),
    })
}

pub(super) async fn get_download_url_for_layer(
    reg: &Registry,
    req: GetDownloadUrlForLayerRequest,
) -> Result<GetDownloadUrlForLayerResponse, RegistryError> {
    check_registry(reg, req.registry_id.as_ref())?;
    check_name(&req.repository_name)?;
    let name = req.repository_name.as_str();
    reg.repo(name).await?;
    let digest = Digest::parse(&req.layer_digest)
        .map_err(|e| RegistryError::InvalidParameter(format!("Invalid layer digest: {e}")))?;
    if reg.blob_in_repo(name, &digest).await?.is_none() {
        return Err(RegistryError::LayersNotFound(format!(
            "The layer {digest} does not exist in the repository with name '{name}'."
        )));
    }
    Ok(GetDownloadUrlForLayerResponse {
        download_url: Some(format!(
            "{}://{}/v2/{name}/blobs/{digest}",
            reg.config().scheme,
            reg.config().host
        )),
        layer_digest: Some(digest.to_string()),
    })
}
