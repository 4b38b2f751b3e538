//! ECR repository settings: tag mutability, scanning configuration, repository
//! policies, lifecycle policies and their previews, registry description, resource tags.

use super::*;

/// Applies `change` to repository `name`'s record in a compare-and-swap loop.
pub(super) async fn update_repo<R, F>(
    reg: &Registry,
    name: &str,
    change: F,
) -> Result<R, RegistryError>
where
    F: Fn(&mut RepoRecord) -> Result<R, RegistryError>,
{
    check_name(name)?;
    reg.objects()
        .retry(&format!("repository {name}"), || async {
            let (mut rec, rev) = reg.repo(name).await?;
            let out = change(&mut rec)?;
            Ok(Step::Commit(
                Txn::new()
                    .when(repo_key(name), rev)
                    .put(repo_key(name), encode(&rec)?),
                out,
            ))
        })
        .await
}

pub(super) async fn put_image_tag_mutability(
    reg: &Registry,
    req: PutImageTagMutabilityRequest,
) -> Result<PutImageTagMutabilityResponse, RegistryError> {
    check_registry(reg, req.registry_id.as_ref())?;
    let m = req.image_tag_mutability;
    let filters = req.image_tag_mutability_exclusion_filters.clone();
    update_repo(reg, &req.repository_name, |r| {
        r.repository.image_tag_mutability = Some(m);
        r.repository
            .image_tag_mutability_exclusion_filters
            .clone_from(&filters);
        Ok(())
    })
    .await?;
    Ok(PutImageTagMutabilityResponse {
        registry_id: Some(reg.registry_id().to_owned()),
        repository_name: Some(req.repository_name),
        image_tag_mutability: Some(m),
        image_tag_mutability_exclusion_filters: filters,
    })
}

pub(super) async fn put_image_scanning_configuration(
    reg: &Registry,
    req: PutImageScanningConfigurationRequest,
) -> Result<PutImageScanningConfigurationResponse, RegistryError> {
    check_registry(reg, req.registry_id.as_ref())?;
    let c = req.image_scanning_configuration.clone();
    update_repo(reg, &req.repository_name, |r| {
        r.repository.image_scanning_configuration = Some(c.clone());
        Ok(())
    })
    .await?;
    Ok(PutImageScanningConfigurationResponse {
        registry_id: Some(reg.registry_id().to_owned()),
        repository_name: Some(req.repository_name),
        image_scanning_configuration: Some(req.image_scanning_configuration),
    })
}

/// Checks a repository policy as SetRepositoryPolicy does: a resource policy IAM's
/// grammar accepts (every statement names a `Principal`), of at most 10,240 characters,
/// whose actions are all ECR's.
pub(super) fn validate_policy(text: &str) -> Result<(), RegistryError> {
    let bad = |why: &dyn std::fmt::Display| {
        invalid(format!("Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided': {why}"))
    };
    if text.trim().is_empty() || text.chars().count() > 10240 {
        return bad(&"the policy must be 1-10240 characters");
    }
    if let Err(e) = policy::Policy::parse(text, policy::PolicyKind::Resource) {
        return bad(&e);
    }
    if let Some(a) = policy_actions(text).iter().find(|a| {
        !a.name
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("ecr:"))
    }) {
        return bad(&format!(
            "Invalid repository policy action '{}': repository policies may only name ecr: actions",
            a.name
        ));
    }
    Ok(())
}

/// An action a policy statement names.
pub(super) struct PolicyAction {
    /// As written.
    pub(super) name: String,
    /// Listed under `NotAction`.
    pub(super) negated: bool,
}

/// The actions a policy's statements list under `Action` or `NotAction`; `text` has
/// already parsed as an IAM policy, so it is JSON with a Statement object or list.
pub(super) fn policy_actions(text: &str) -> Vec<PolicyAction> {
    let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let statements = match v.get("Statement") {
        Some(serde_json::Value::Array(a)) => a.iter().collect(),
        Some(o) => vec![o],
        None => Vec::new(),
    };
    let mut out = Vec::new();
    for st in statements {
        let (listed, negated) = match (st.get("Action"), st.get("NotAction")) {
            (Some(a), _) => (a, false),
            (None, Some(a)) => (a, true),
            (None, None) => continue,
        };
        let names: Vec<&str> = match listed {
            serde_json::Value::String(a) => vec![a.as_str()],
            serde_json::Value::Array(a) => a.iter().filter_map(|x| x.as_str()).collect(),
            _ => Vec::new(),
        };
        out.extend(names.into_iter().map(|n| PolicyAction {
            name: n.to_owned(),
            negated,
        }));
    }
    out
}

pub(super) async fn get_repository_policy(
    reg: &Registry,
    req: GetRepositoryPolicyRequest,
) -> Result<GetRepositoryPolicyResponse, RegistryError> {
    check_registry(reg, req.registry_id.as_ref())?;
    check_name(&req.repository_name)?;
    let (rec, _) = reg.repo(&req.repository_name).await?;
    let Some(p) = rec.policy else {
        return Err(RegistryError::PolicyNotFound(format!("Repository policy does not exist for the repository with name '{}' in the registry with id '{}'", req.repository_name, reg.registry_id())));
    };
    Ok(GetRepositoryPolicyResponse {
        registry_id: Some(reg.registry_id().to_owned()),
        repository_name: Some(req.repository_name),
        policy_text: Some(p),
    })
}

pub(super) async fn set_repository_policy(
    reg: &Registry,
    req: SetRepositoryPolicyRequest,
) -> Result<SetRepositoryPolicyResponse, RegistryError> {
    check_registry(reg, req.registry_id.as_ref())?;
    validate_policy(&req.policy_text)?;
    let p = req.policy_text.clone();
    update_repo(reg, &req.repository_name, |r| {
        r.policy = Some(p.clone());
        Ok(())
    })
    .await?;
    reg.forget_policy(&req.repository_name);
    Ok(SetRepositoryPolicyResponse {
        registry_id: Some(reg.registry_id().to_owned()),
        repository_name: Some(req.repository_name),
        policy_text: Some(req.policy_text),
    })
}

pub(super) async fn delete_repository_policy(
    reg: &Registry,
    req: DeleteRepositoryPolicyRequest,
) -> Result<DeleteRepositoryPolicyResponse, RegistryError> {
    check_registry(reg, req.registry_id.as_ref())?;
    let name = req.repository_name.clone();
    let old = update_repo(reg, &req.repository_name, |r| {
        r.policy.take().ok_or_else(|| {
            RegistryError::PolicyNotFound(format!(
                "Repository policy does not exist for the repository with name '{name}'"
            ))
        })
    })
    .await?;
    reg.forget_policy(&req.repository_name);
    Ok(DeleteRepositoryPolicyResponse {
        registry_id: Some(reg.registry_id().to_owned()),
        repository_name: Some(req.repository_name),
        policy_text: Some(old),
    })
}

pub(super) async fn put_lifecycle_policy(
    reg: &Registry,
    req: PutLifecyclePolicyRequest,
) -> Result<PutLifecyclePolicyResponse, RegistryError> {
    check_registry(reg, req.registry_id.as_ref())?;
    lifecycle_policy::parse_policy(&req.lifecycle_policy_text)?;
    let p = req.lifecycle_policy_text.clone();
    update_repo(reg, &req.repository_name, |r| {
        r.lifecycle_policy = Some(p.clone());
        r.lifecycle_updated_at = Some(now());
        Ok(())
    })
    .await?;
    Ok(PutLifecyclePolicyResponse {
        registry_id: Some(reg.registry_id().to_owned()),
        repository_name: Some(req.repository_name),
        lifecycle_policy_text: Some(req.lifecycle_policy_text),
    })
}

pub(super) fn no_lifecycle(reg: &Registry, name: &str) -> RegistryError {
    RegistryError::LifecyclePolicyNotFound(format!("Lifecycle policy does not exist for the repository with name '{name}' in the registry with id '{}'", reg.registry_id()))
}

pub(super) async fn get_lifecycle_policy(
    reg: &Registry,
    req: GetLifecyclePolicyRequest,
) -> Result<GetLifecyclePolicyResponse, RegistryError> {
    check_registry(reg, req.registry_id.as_ref())?;
    check_name(&req.repository_name)?;
    let (rec, _) = reg.repo(&req.repository_name).await?;
    let Some(p) = rec.lifecycle_policy else {
        return Err(no_lifecycle(reg, &req.repository_name));
    };
    Ok(GetLifecyclePolicyResponse {
        registry_id: Some(reg.registry_id().to_owned()),
        last_evaluated_at: lifecycle_policy::last_evaluated_at(reg, &req.repository_name).await?,
        repository_name: Some(req.repository_name),
        lifecycle_policy_text: Some(p),
    })
}

pub(super) async fn delete_lifecycle_policy(
    reg: &Registry,
    req: DeleteLifecyclePolicyRequest,
) -> Result<DeleteLifecyclePolicyResponse, RegistryError> {
    check_registry(reg, req.registry_id.as_ref())?;
    let name = req.repository_name.clone();
    let old = update_repo(reg, &req.repository_name, |r| {
        r.lifecycle_updated_at = None;
        r.lifecycle_policy
            .take()
            .ok_or_else(|| no_lifecycle(reg, &name))
    })
    .await?;
    let at = lifecycle_policy::last_evaluated_at(reg, &req.repository_name).await?;
    Ok(DeleteLifecyclePolicyResponse {
        registry_id: Some(reg.registry_id().to_owned()),
        repository_name: Some(req.repository_name),
        lifecycle_policy_text: Some(old),
        last_evaluated_at: at,
    })
}

pub(super) async fn start_lifecycle_policy_preview(
    reg: &Registry,
    req: StartLifecyclePolicyPreviewRequest,
) -> Result<StartLifecyclePolicyPreviewResponse, RegistryError> {
    check_registry(reg, req.registry_id.as_ref())?;
    check_name(&req.repository_name)?;
    let name = req.repository_name.as_str();
    let (rec, _) = reg.repo(name).await?;
    let text = match req.lifecycle_policy_text.clone().or(rec.lifecycle_policy) {
        Some(t) => t,
        None => return Err(no_lifecycle(reg, name)),
    };
    let policy = lifecycle_policy::parse_policy(&text)?;
    let results = lifecycle_policy::plan(reg, name, &policy, now()).await?;
    let preview = PreviewRecord {
        policy: text.clone(),
        results,
    };
    reg.objects()
        .commit(Txn::new().put(preview_key(name), encode(&preview)?))
        .await?;
    Ok(StartLifecyclePolicyPreviewResponse {
        registry_id: Some(reg.registry_id().to_owned()),
        repository_name: Some(name.to_owned()),
        lifecycle_policy_text: Some(text),
        status: Some(LifecyclePolicyPreviewStatus::InProgress),
    })
}

/// GetLifecyclePolicyPreview's largest page (its own limit, below the other lists').
const MAX_PREVIEW_PAGE: i32 = 100;

pub(super) async fn get_lifecycle_policy_preview(
    reg: &Registry,
    req: GetLifecyclePolicyPreviewRequest,
) -> Result<GetLifecyclePolicyPreviewResponse, RegistryError> {
    check_registry(reg, req.registry_id.as_ref())?;
    check_name(&req.repository_name)?;
    if req
        .max_results
        .is_some_and(|n| !(1..=MAX_PREVIEW_PAGE).contains(&n))
    {
        return invalid(format!("Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must have value between 1 and {MAX_PREVIEW_PAGE}'"));
    }
    if req.image_ids.is_some() && (req.max_results.is_some() || req.next_token.is_some()) {
        return invalid("maxResults and nextToken cannot be used with imageIds.");
    }
    let name = req.repository_name.as_str();
    reg.repo(name).await?;
    let Some((preview, _)) = reg
        .objects()
        .get::<PreviewRecord>(&preview_key(name))
        .await?
    else {
        return Err(RegistryError::LifecyclePreviewNotFound(format!(
            "Lifecycle policy preview does not exist for the repository with name '{name}' in the registry with id '{}'",
            reg.registry_id()
        )));
    };
    let count = i32::try_from(preview.results.len()).unwrap_or(i32::MAX);
    let status = req.filter.as_ref().and_then(|f| f.tag_status);
    let wanted = |r: &LifecyclePolicyPreviewResult| {
        let tags = r.image_tags.as_deref().unwrap_or_default();
        let named = req.image_ids.as_ref().is_none_or(|ids| {
            ids.iter().any(|id| {
                id.image_digest.is_some() && id.image_digest == r.image_digest
                    || id.image_tag.as_ref().is_some_and(|t| tags.contains(t))
            })
        });
        named && status_admits(status, !tags.is_empty())
    };
    let results: Vec<_> = preview.results.into_iter().filter(wanted).collect();
    let (results, next) = page(results, req.next_token.as_deref(), req.max_results)?;
    Ok(GetLifecyclePolicyPreviewResponse {
        registry_id: Some(reg.registry_id().to_owned()),
        repository_name: Some(name.to_owned()),
        lifecycle_policy_text: Some(preview.policy),
        // The preview is computed before StartLifecyclePolicyPreview answers, so
        // it is complete by the first Get.
        status: Some(LifecyclePolicyPreviewStatus::Complete),
        next_token: next,
        preview_results: Some(results),
        summary: Some(LifecyclePolicyPreviewSummary {
            expiring_image_total_count: Some(count),
            transitioning_image_total_counts: None,
        }),
    })
}

pub(super) async fn describe_registry(
    reg: &Registry,
    _req: DescribeRegistryRequest,
) -> Result<DescribeRegistryResponse, RegistryError> {
    Ok(DescribeRegistryResponse {
        registry_id: Some(reg.registry_id().to_owned()),
        replication_configuration: Some(reg.replication_config().await?),
    })
}

pub(super) async fn tag_resource(
    reg: &Registry,
    req: TagResourceRequest,
) -> Result<TagResourceResponse, RegistryError> {
    let name = name_from_arn(reg, &req.resource_arn)?;
    check_tags(&req.tags)?;
    update_repo(reg, name, |r| {
        merge_tags(&mut r.tags, &req.tags);
        check_tags(&r.tags)
    })
    .await?;
    Ok(TagResourceResponse {})
}

pub(super) async fn untag_resource(
    reg: &Registry,
    req: UntagResourceRequest,
) -> Result<UntagResourceResponse, RegistryError> {
    let name = name_from_arn(reg, &req.resource_arn)?;
    update_repo(reg, name, |r| {
        r.tags.retain(|t| !req.tag_keys.contains(&t.key));
        Ok(())
    })
    .await?;
    Ok(UntagResourceResponse {})
}

pub(super) async fn list_tags_for_resource(
    reg: &Registry,
    req: ListTagsForResourceRequest,
) -> Result<ListTagsForResourceResponse, RegistryError> {
    let name = name_from_arn(reg, &req.resource_arn)?;
    let (rec, _) = reg.repo(name).await?;
    Ok(ListTagsForResourceResponse {
        tags: Some(rec.tags),
    })
}
