//! What each ECR API operation needs permission for, as the Service Authorization
//! Reference lists it ("Actions, resources, and condition keys for Amazon Elastic
//! Container Registry"): `ecr:` actions on the repository ARN
//! (`arn:aws:ecr:REGION:ACCOUNT:repository/NAME`), `ecr:GetAuthorizationToken` and the
//! registry-level operations on `*`, request tags, and the repository's policy as the
//! resource policy evaluated beside the caller's identity policies — or, for the
//! registry-level actions a registry policy governs (CreateRepository), the registry
//! policy.
//!
//! (The `/v2/` side authorizes its routes itself, in the registry's own modules.)

use super::Operation;
use crate::Registry;
use serde::Deserialize;
use std::sync::Arc;
use wire::Access;

const ECR: &str = "ecr";

/// The request members authorization looks at.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Fields {
    repository_name: Option<String>,
    repository_names: Option<Vec<String>>,
    resource_arn: Option<String>,
    tags: Option<Vec<EcrTag>>,
    tag_keys: Option<Vec<String>>,
}

/// ECR's tag shape (`Key`/`Value`, capitalised unlike ECS's).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EcrTag {
    #[serde(rename = "Key")]
    key: Option<String>,
    #[serde(rename = "Value")]
    value: Option<String>,
}

/// An access and the repository whose policy applies to it, if any.
pub(crate) type Mapped = (Access, Option<String>);

/// What `op` with JSON `body` needs, each access with the repository it acts on.
pub(crate) fn map(region: &str, account: &str, op: Operation, body: &[u8]) -> Vec<Mapped> {
    use Operation as Op;
    let f: Fields = serde_json::from_slice(body).unwrap_or_default();
    let repo_arn = |name: &str| format!("arn:aws:ecr:{region}:{account}:repository/{name}");
    let on_repo = |name: &str| {
        (
            Access::new(ECR, op.name(), repo_arn(name)),
            Some(name.to_owned()),
        )
    };
    let anywhere = || (Access::any(ECR, op.name()), None);
    let mut out: Vec<Mapped> = match op {
        Op::GetAuthorizationToken
        | Op::DescribeRegistry
        | Op::GetRegistryPolicy
        | Op::PutRegistryPolicy
        | Op::DeleteRegistryPolicy
        | Op::GetRegistryScanningConfiguration
        | Op::PutRegistryScanningConfiguration => vec![anywhere()],
        Op::DescribeRepositories | Op::BatchGetRepositoryScanningConfiguration => {
            match f.repository_names.as_ref().filter(|n| !n.is_empty()) {
                Some(names) => names.iter().map(|n| on_repo(n)).collect(),
                None => vec![anywhere()],
            }
        }
        Op::TagResource | Op::UntagResource | Op::ListTagsForResource => {
            match f.resource_arn.as_deref() {
                Some(arn) => {
                    let name = arn.split_once(":repository/").map(|(_, n)| n.to_owned());
                    vec![(Access::new(ECR, op.name(), arn), name)]
                }
                None => vec![anywhere()],
            }
        }
        _ => match f.repository_name.as_deref() {
            Some(name) => vec![on_repo(name)],
            None => vec![anywhere()],
        },
    };
    let tags: Vec<(String, String)> = f
        .tags
        .iter()
        .flatten()
        .filter_map(|t| Some((t.key.clone()?, t.value.clone().unwrap_or_default())))
        .collect();
    for (access, _) in &mut out {
        if !tags.is_empty() {
            *access = access.clone().with_request_tags(tags.clone());
        }
        if let Some(keys) = &f.tag_keys {
            *access = access.clone().with_key(
                "aws:TagKeys",
                policy::ContextValue::strings(keys.iter().cloned()),
            );
        }
    }
    out
}

/// The accesses of `op`, each carrying its resource policy: the registry policy for the
/// registry-level actions it governs (CreateRepository among the operations served),
/// else the repository's policy (a repository that does not exist has none: the handler
/// answers its error).
pub(crate) async fn accesses(reg: &Registry, op: Operation, body: &[u8]) -> Vec<Access> {
    let c = reg.config();
    let mut out = Vec::new();
    for (access, repo) in map(&c.region, &c.account_id, op, body) {
        let registry_level = crate::ecr::registry_policy::REGISTRY_ACTIONS
            .iter()
            .any(|a| a.strip_prefix("ecr:") == Some(op.name()));
        let policy = match repo {
            _ if registry_level => registry_policy(reg).await,
            Some(name) => repository_policy(reg, &name).await,
            None => None,
        };
        out.push(match policy {
            Some(p) => access.with_resource_policy(p),
            None => access,
        });
    }
    out
}

/// The accesses of `op` on another account's registry `peer`: as [`accesses`], with the
/// registry-level ones (on `*`) narrowed to the peer's repositories, so that only the
/// peer's policies could grant them (a repository policy never does: registry-level
/// operations stay the owner's).
pub(crate) async fn foreign_accesses(peer: &Registry, op: Operation, body: &[u8]) -> Vec<Access> {
    let c = peer.config();
    let every_repository = format!("arn:aws:ecr:{}:{}:repository/*", c.region, c.account_id);
    accesses(peer, op, body)
        .await
        .into_iter()
        .map(|a| {
            if a.resource() == "*" {
                Access::new(ECR, op.name(), every_repository.clone())
            } else {
                a
            }
        })
        .collect()
}

/// The registry policy, compiled; one that cannot be read grants nothing (logged).
async fn registry_policy(reg: &Registry) -> Option<Arc<policy::Policy>> {
    match crate::ecr::registry_policy::compiled(reg).await {
        Ok(p) => p,
        Err(error) => {
            tracing::warn!(%error, "Could not read the registry policy.");
            None
        }
    }
}

/// The repository's policy, compiled (cached by the registry; a missing repository has
/// none: the handler answers RepositoryNotFoundException).
async fn repository_policy(reg: &Registry, name: &str) -> Option<Arc<policy::Policy>> {
    reg.repository_policy(name).await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mapped(op: Operation, body: serde_json::Value) -> Vec<(String, String, Option<String>)> {
        let body = serde_json::to_vec(&body).unwrap_or_default();
        map("us-east-1", "000000000000", op, &body)
            .into_iter()
            .map(|(a, r)| (a.action(), a.resource().to_owned(), r))
            .collect()
    }

    #[test]
    fn get_authorization_token_is_on_any_resource() {
        assert_eq!(
            mapped(Operation::GetAuthorizationToken, json!({})),
            [("ecr:GetAuthorizationToken".into(), "*".into(), None)]
        );
    }

    #[test]
    fn image_operations_are_on_the_repository_and_use_its_policy() {
        assert_eq!(
            mapped(
                Operation::BatchGetImage,
                json!({"repositoryName": "team/app"})
            ),
            [(
                "ecr:BatchGetImage".into(),
                "arn:aws:ecr:us-east-1:000000000000:repository/team/app".into(),
                Some("team/app".into())
            )]
        );
        let tagged = mapped(
            Operation::TagResource,
            json!({"resourceArn": "arn:aws:ecr:us-east-1:000000000000:repository/x", "tags": []}),
        );
        assert_eq!(tagged[0].2.as_deref(), Some("x"));
    }

    #[tokio::test]
    async fn every_ecr_operation_needs_an_ecr_action() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = store::SqliteStore::open(store::SqliteConfig::new(dir.path().join("s.db")))
            .unwrap_or_else(|e| panic!("{e}"));
        let config = crate::RegistryConfig::new(
            "127.0.0.1:1".into(),
            "us-east-1".into(),
            "000000000000".into(),
        );
        let blobs = Arc::new(blobstore::MemoryBlobStore::new());
        let reg = Registry::new(Arc::new(store), blobs, config);
        let caller = wire::Caller::root("000000000000");
        let n = wire::conformance::every_operation_needs_access(
            &reg,
            wire::Input::Json(br#"{"repositoryName":"r"}"#),
            &caller,
            "ecr",
        )
        .await;
        assert!(n >= Operation::ALL.len());
    }
}
