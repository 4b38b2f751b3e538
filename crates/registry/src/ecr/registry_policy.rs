//! The registry policy (Put/Get/DeleteRegistryPolicy): one IAM resource policy per
//! registry, that is per region and account, stored under `ecr/registry-policy`.
//!
//! It follows ECR's V1 registry policy scope: a registry policy may grant only
//! `ecr:ReplicateImage`, `ecr:BatchImportUpstreamImage` and `ecr:CreateRepository` (or
//! `ecr:*`), anything else is refused with InvalidParameterException, and it is
//! evaluated as the resource policy of exactly those actions (see `authz.rs`; ECR's V2
//! scope, which applies it to every action, is not offered).

use super::policies::policy_actions;
use super::*;
use crate::objects::REGISTRY_POLICY_KEY;
use std::sync::Arc;

/// The actions ECR's V1 scope lets a registry policy grant, and that it is enforced for.
pub(crate) const REGISTRY_ACTIONS: &[&str] = &[
    "ecr:ReplicateImage",
    "ecr:BatchImportUpstreamImage",
    "ecr:CreateRepository",
];
/// RegistryPolicyText's limit in botocore's model.
const MAX_POLICY_CHARS: usize = 10240;

/// The stored policy.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct RegistryPolicyRecord {
    /// The text as put.
    policy_text: String,
}

/// Checks a registry policy as PutRegistryPolicy does.
fn validate_registry_policy(text: &str) -> Result<(), RegistryError> {
    let bad = |why: &dyn std::fmt::Display| {
        invalid(format!("Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid registry policy provided': {why}"))
    };
    if text.trim().is_empty() || text.chars().count() > MAX_POLICY_CHARS {
        return bad(&format!(
            "the policy must be 1-{MAX_POLICY_CHARS} characters"
        ));
    }
    if let Err(e) = policy::Policy::parse(text, policy::PolicyKind::Resource) {
        return bad(&e);
    }
    for a in policy_actions(text) {
        // NotAction would grant every action it does not list, most of them ones a
        // registry policy may not grant.
        if a.negated {
            return bad(&"registry policies may not use NotAction");
        }
        let allowed = a.name.eq_ignore_ascii_case("ecr:*")
            || REGISTRY_ACTIONS
                .iter()
                .any(|r| r.eq_ignore_ascii_case(&a.name));
        if !allowed {
            return bad(&format!(
                "Invalid registry policy action '{}': a registry policy may only grant {}",
                a.name,
                REGISTRY_ACTIONS.join(", ")
            ));
        }
    }
    Ok(())
}

fn not_found(reg: &Registry) -> RegistryError {
    RegistryError::RegistryPolicyNotFound(format!(
        "Registry policy does not exist in the registry with id '{}'",
        reg.registry_id()
    ))
}

async fn stored(
    reg: &Registry,
) -> Result<Option<(RegistryPolicyRecord, store::Revision)>, RegistryError> {
    reg.objects()
        .get::<RegistryPolicyRecord>(REGISTRY_POLICY_KEY)
        .await
}

/// The registry policy, compiled, or `None` when there is none: the resource policy of
/// the actions in [`REGISTRY_ACTIONS`]. A stored policy that no longer parses grants
/// nothing and is logged. Compiled on each call: the actions it governs are rare.
pub(crate) async fn compiled(reg: &Registry) -> Result<Option<Arc<policy::Policy>>, RegistryError> {
    let Some((rec, _)) = stored(reg).await? else {
        return Ok(None);
    };
    match policy::Policy::parse(&rec.policy_text, policy::PolicyKind::Resource) {
        Ok(p) => Ok(Some(Arc::new(p.with_label("registry policy")))),
        Err(error) => {
            tracing::warn!(%error, "Stored registry policy no longer parses.");
            Ok(None)
        }
    }
}

pub(super) async fn put_registry_policy(
    reg: &Registry,
    req: PutRegistryPolicyRequest,
) -> Result<PutRegistryPolicyResponse, RegistryError> {
    validate_registry_policy(&req.policy_text)?;
    let rec = RegistryPolicyRecord {
        policy_text: req.policy_text.clone(),
    };
    reg.objects()
        .commit(Txn::new().put(REGISTRY_POLICY_KEY, encode(&rec)?))
        .await?;
    tracing::info!("Registry policy set.");
    Ok(PutRegistryPolicyResponse {
        registry_id: Some(reg.registry_id().to_owned()),
        policy_text: Some(req.policy_text),
    })
}

pub(super) async fn get_registry_policy(
    reg: &Registry,
    _req: GetRegistryPolicyRequest,
) -> Result<GetRegistryPolicyResponse, RegistryError> {
    let (rec, _) = stored(reg).await?.ok_or_else(|| not_found(reg))?;
    Ok(GetRegistryPolicyResponse {
        registry_id: Some(reg.registry_id().to_owned()),
        policy_text: Some(rec.policy_text),
    })
}

pub(super) async fn delete_registry_policy(
    reg: &Registry,
    _req: DeleteRegistryPolicyRequest,
) -> Result<DeleteRegistryPolicyResponse, RegistryError> {
    let old = reg
        .objects()
        .retry("the registry policy", || async {
            let (rec, rev) = stored(reg).await?.ok_or_else(|| not_found(reg))?;
            Ok(Step::Commit(
                Txn::new()
                    .when(REGISTRY_POLICY_KEY, rev)
                    .delete(REGISTRY_POLICY_KEY),
                rec.policy_text,
            ))
        })
        .await?;
    tracing::info!("Registry policy deleted.");
    Ok(DeleteRegistryPolicyResponse {
        registry_id: Some(reg.registry_id().to_owned()),
        policy_text: Some(old),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(actions: serde_json::Value, key: &str) -> String {
        serde_json::json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
            key: actions,
            "Resource": "arn:aws:ecr:us-east-1:000000000000:repository/*"
        }]})
        .to_string()
    }

    #[test]
    fn only_the_registry_level_actions_may_be_granted() {
        for (what, text, ok) in [
            ("replication", doc(serde_json::json!(["ecr:CreateRepository", "ecr:ReplicateImage"]), "Action"), true),
            ("pull through, any case", doc(serde_json::json!("ecr:batchimportupstreamimage"), "Action"), true),
            ("ecr:*", doc(serde_json::json!("ecr:*"), "Action"), true),
            ("a repository action", doc(serde_json::json!(["ecr:ReplicateImage", "ecr:BatchGetImage"]), "Action"), false),
            ("another service", doc(serde_json::json!("s3:GetObject"), "Action"), false),
            ("NotAction", doc(serde_json::json!("ecr:ReplicateImage"), "NotAction"), false),
            ("not JSON", "{nope".to_owned(), false),
            ("empty", String::new(), false),
            ("no principal", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:ReplicateImage","Resource":"*"}]}"#.to_owned(), false),
        ] {
            let got = validate_registry_policy(&text);
            assert_eq!(got.is_ok(), ok, "{what}: {got:?}");
            if let Err(e) = got {
                assert!(matches!(e, RegistryError::InvalidParameter(_)), "{what}: {e:?}");
            }
        }
    }
}
