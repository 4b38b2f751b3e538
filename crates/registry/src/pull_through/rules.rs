//! The rule operations: Create/Describe/Update/Delete/ValidatePullThroughCacheRule.

use super::client::Session;
use super::validate::{
    check_credential_arn, check_prefix, check_upstream_kind, parse_upstream, MAX_RULES,
};
use super::{rule_key, secrets, ROOT, RULE_PREFIX};
use crate::ecr::{check_registry, page};
use crate::error::RegistryError;
use crate::objects::{encode, now};
use crate::Registry;
use model::ecr::shapes::*;
use store::Txn;

fn not_found(reg: &Registry, prefix: &str) -> RegistryError {
    RegistryError::PullThroughCacheRuleNotFound(format!(
        "The pull through cache rule with prefix '{prefix}' does not exist in the registry with id '{}'",
        reg.registry_id()
    ))
}

/// Every rule of the registry, in prefix order.
pub(super) async fn all_rules(reg: &Registry) -> Result<Vec<PullThroughCacheRule>, RegistryError> {
    Ok(reg
        .objects()
        .list::<PullThroughCacheRule>(RULE_PREFIX)
        .await?
        .into_iter()
        .map(|(_, r, _)| r)
        .collect())
}

/// The rule with `prefix`, or PullThroughCacheRuleNotFoundException.
pub(super) async fn rule(
    reg: &Registry,
    prefix: &str,
) -> Result<(PullThroughCacheRule, store::Revision), RegistryError> {
    reg.objects()
        .get::<PullThroughCacheRule>(&rule_key(prefix))
        .await?
        .ok_or_else(|| not_found(reg, prefix))
}

/// Checks that a rule's secret can be read (as ECR checks the secret at Create/Update).
async fn check_secret(reg: &Registry, arn: Option<&str>) -> Result<(), RegistryError> {
    if let Some(arn) = arn {
        check_credential_arn(arn)?;
        secrets::load(reg.config().pull_through_secrets.as_deref(), arn).await?;
    }
    Ok(())
}

pub(crate) async fn create_pull_through_cache_rule(
    reg: &Registry,
    req: CreatePullThroughCacheRuleRequest,
) -> Result<CreatePullThroughCacheRuleResponse, RegistryError> {
    check_registry(reg, req.registry_id.as_ref())?;
    check_prefix("ecrRepositoryPrefix", &req.ecr_repository_prefix)?;
    if let Some(up) = &req.upstream_repository_prefix {
        check_prefix("upstreamRepositoryPrefix", up)?;
        if req.ecr_repository_prefix == ROOT && up != ROOT {
            return Err(RegistryError::InvalidParameter(
                "The upstream repository prefix can only be set when the ECR repository prefix is not ROOT.".into(),
            ));
        }
    }
    parse_upstream(&req.upstream_registry_url)?;
    check_upstream_kind(
        req.upstream_registry,
        req.credential_arn.as_deref(),
        req.custom_role_arn.as_deref(),
    )?;
    check_secret(reg, req.credential_arn.as_deref()).await?;
    if super::rules::all_rules(reg).await?.len() >= MAX_RULES {
        return Err(RegistryError::LimitExceeded(format!(
            "The number of pull through cache rules in the registry with id '{}' has reached its limit of {MAX_RULES}.",
            reg.registry_id()
        )));
    }
    let t = now();
    let rule = PullThroughCacheRule {
        ecr_repository_prefix: Some(req.ecr_repository_prefix.clone()),
        upstream_registry_url: Some(req.upstream_registry_url.clone()),
        created_at: Some(t),
        registry_id: Some(reg.registry_id().to_owned()),
        credential_arn: req.credential_arn.clone(),
        custom_role_arn: None,
        upstream_repository_prefix: req.upstream_repository_prefix.clone(),
        upstream_registry: req.upstream_registry,
        updated_at: Some(t),
    };
    let key = rule_key(&req.ecr_repository_prefix);
    let created = reg
        .objects()
        .commit(Txn::new().when(key.clone(), 0).put(key, encode(&rule)?))
        .await?;
    if !created {
        return Err(RegistryError::PullThroughCacheRuleAlreadyExists(format!(
            "A pull through cache rule with the prefix '{}' already exists in the registry with id '{}'",
            req.ecr_repository_prefix,
            reg.registry_id()
        )));
    }
    tracing::info!(prefix = %req.ecr_repository_prefix, upstream = %req.upstream_registry_url, "Pull through cache rule created.");
    Ok(CreatePullThroughCacheRuleResponse {
        ecr_repository_prefix: rule.ecr_repository_prefix,
        upstream_registry_url: rule.upstream_registry_url,
        created_at: rule.created_at,
        registry_id: rule.registry_id,
        upstream_registry: rule.upstream_registry,
        credential_arn: rule.credential_arn,
        custom_role_arn: None,
        upstream_repository_prefix: rule.upstream_repository_prefix,
    })
}

pub(crate) async fn describe_pull_through_cache_rules(
    reg: &Registry,
    req: DescribePullThroughCacheRulesRequest,
) -> Result<DescribePullThroughCacheRulesResponse, RegistryError> {
    check_registry(reg, req.registry_id.as_ref())?;
    let rules = match &req.ecr_repository_prefixes {
        Some(prefixes) => {
            if prefixes.is_empty() || prefixes.len() > 100 {
                return Err(RegistryError::InvalidParameter(
                    "ecrRepositoryPrefixes must hold 1-100 prefixes.".into(),
                ));
            }
            let mut out = Vec::new();
            for p in prefixes {
                check_prefix("ecrRepositoryPrefixes", p)?;
                out.push(rule(reg, p).await?.0);
            }
            out
        }
        None => all_rules(reg).await?,
    };
    let (rules, next) = page(rules, req.next_token.as_deref(), req.max_results)?;
    Ok(DescribePullThroughCacheRulesResponse {
        pull_through_cache_rules: Some(rules),
        next_token: next,
    })
}

pub(crate) async fn update_pull_through_cache_rule(
    reg: &Registry,
    req: UpdatePullThroughCacheRuleRequest,
) -> Result<UpdatePullThroughCacheRuleResponse, RegistryError> {
    check_registry(reg, req.registry_id.as_ref())?;
    check_prefix("ecrRepositoryPrefix", &req.ecr_repository_prefix)?;
    let (mut current, rev) = rule(reg, &req.ecr_repository_prefix).await?;
    check_upstream_kind(
        current.upstream_registry,
        req.credential_arn
            .as_deref()
            .or(current.credential_arn.as_deref()),
        req.custom_role_arn.as_deref(),
    )?;
    check_secret(reg, req.credential_arn.as_deref()).await?;
    if req.credential_arn.is_some() {
        current.credential_arn.clone_from(&req.credential_arn);
    }
    current.updated_at = Some(now());
    let key = rule_key(&req.ecr_repository_prefix);
    if !reg
        .objects()
        .commit(
            Txn::new()
                .when(key.clone(), rev)
                .put(key, encode(&current)?),
        )
        .await?
    {
        return Err(RegistryError::Contention(format!(
            "pull through cache rule {}",
            req.ecr_repository_prefix
        )));
    }
    tracing::info!(prefix = %req.ecr_repository_prefix, "Pull through cache rule updated.");
    Ok(UpdatePullThroughCacheRuleResponse {
        ecr_repository_prefix: current.ecr_repository_prefix,
        registry_id: current.registry_id,
        updated_at: current.updated_at,
        credential_arn: current.credential_arn,
        custom_role_arn: None,
        upstream_repository_prefix: current.upstream_repository_prefix,
    })
}

pub(crate) async fn delete_pull_through_cache_rule(
    reg: &Registry,
    req: DeletePullThroughCacheRuleRequest,
) -> Result<DeletePullThroughCacheRuleResponse, RegistryError> {
    check_registry(reg, req.registry_id.as_ref())?;
    check_prefix("ecrRepositoryPrefix", &req.ecr_repository_prefix)?;
    let (current, rev) = rule(reg, &req.ecr_repository_prefix).await?;
    let key = rule_key(&req.ecr_repository_prefix);
    // The repositories the rule created and their images stay, as on ECR.
    if !reg
        .objects()
        .commit(Txn::new().when(key.clone(), rev).delete(key))
        .await?
    {
        return Err(not_found(reg, &req.ecr_repository_prefix));
    }
    tracing::info!(prefix = %req.ecr_repository_prefix, "Pull through cache rule deleted.");
    Ok(DeletePullThroughCacheRuleResponse {
        ecr_repository_prefix: current.ecr_repository_prefix,
        upstream_registry_url: current.upstream_registry_url,
        created_at: current.created_at,
        registry_id: current.registry_id,
        credential_arn: current.credential_arn,
        custom_role_arn: None,
        upstream_repository_prefix: current.upstream_repository_prefix,
    })
}

/// Checks that the upstream answers the distribution API with the rule's credentials
/// (`GET /v2/`, answering its challenge), as ECR validates a rule.
pub(crate) async fn validate_pull_through_cache_rule(
    reg: &Registry,
    req: ValidatePullThroughCacheRuleRequest,
) -> Result<ValidatePullThroughCacheRuleResponse, RegistryError> {
    check_registry(reg, req.registry_id.as_ref())?;
    check_prefix("ecrRepositoryPrefix", &req.ecr_repository_prefix)?;
    let (current, _) = rule(reg, &req.ecr_repository_prefix).await?;
    let failure = match probe(reg, &current).await {
        Ok(()) => None,
        Err(e) => Some(e.to_string()),
    };
    Ok(ValidatePullThroughCacheRuleResponse {
        ecr_repository_prefix: current.ecr_repository_prefix,
        registry_id: current.registry_id,
        upstream_registry_url: current.upstream_registry_url,
        credential_arn: current.credential_arn,
        custom_role_arn: None,
        upstream_repository_prefix: current.upstream_repository_prefix,
        is_valid: Some(failure.is_none()),
        failure,
    })
}

async fn probe(reg: &Registry, rule: &PullThroughCacheRule) -> Result<(), RegistryError> {
    let upstream = parse_upstream(rule.upstream_registry_url.as_deref().unwrap_or_default())?;
    let credentials = match rule.credential_arn.as_deref() {
        Some(arn) => Some(secrets::load(reg.config().pull_through_secrets.as_deref(), arn).await?),
        None => None,
    };
    let mut session = Session::new(&upstream, String::new(), credentials);
    session
        .ping()
        .await
        .map_err(|e| RegistryError::UnableToGetUpstreamImage(e.to_string()))
}
