//! Resource policies: PutResourcePolicy, DescribeResourcePolicies and
//! DeleteResourcePolicy, account-scoped (by name, at most 10) and resource-scoped (one per
//! log group, with a revision id guarding updates and deletes).
//!
//! They are stored and described, and their documents validated as IAM resource policies,
//! but never evaluated. AWS enforces a Logs resource policy only when an AWS service
//! principal (Route 53, EventBridge, …) calls `logs:PutLogEvents` or
//! `logs:CreateLogStream`, and ignores it for users, roles and other accounts. No AWS
//! service delivers logs to this server, so every caller that can reach it is one AWS
//! ignores these policies for; callers are authorized by their identity policies alone.

use crate::error::{invalid, LogsError};
use crate::objects::encode;
use crate::pagination::{page_size, paginate};
use crate::{Empty, Logs};
use model::logs::names::{log_group_arn, log_group_from_identifier};
use model::logs::shapes::{
    DeleteResourcePolicyRequest, DescribeResourcePoliciesRequest, DescribeResourcePoliciesResponse,
    PolicyScope, PutResourcePolicyRequest, PutResourcePolicyResponse, ResourcePolicy,
};
use serde::{Deserialize, Serialize};
use store::{Step, Txn};

/// The most account-scoped policies one account may have.
pub const MAX_ACCOUNT_POLICIES: usize = 10;
/// The longest policy document.
const MAX_DOCUMENT_LEN: usize = 5120;
/// The most policies one DescribeResourcePolicies page holds.
const MAX_DESCRIBE: usize = 50;
/// Prefix of account-scoped policies, by name.
const ACCOUNT_PREFIX: &str = "logs/resourcepolicy/";
/// Prefix of resource-scoped policies, by log group ARN.
const RESOURCE_PREFIX: &str = "logs/resourcepolicy-arn/";

/// A stored resource policy.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredPolicy {
    /// The name given (account-scoped policies always have one).
    #[serde(default)]
    pub name: Option<String>,
    /// The document as written.
    pub document: String,
    /// Epoch milliseconds.
    pub last_updated_time: i64,
    /// Resource-scoped policies: the log group ARN they are attached to.
    #[serde(default)]
    pub resource_arn: Option<String>,
    /// Resource-scoped policies: changes with every put.
    #[serde(default)]
    pub revision_id: Option<String>,
}

impl StoredPolicy {
    fn present(&self) -> ResourcePolicy {
        ResourcePolicy {
            policy_name: self.name.clone(),
            policy_document: Some(self.document.clone()),
            last_updated_time: Some(self.last_updated_time),
            policy_scope: Some(if self.resource_arn.is_some() {
                PolicyScope::Resource
            } else {
                PolicyScope::Account
            }),
            resource_arn: self.resource_arn.clone(),
            revision_id: self.revision_id.clone(),
        }
    }
}

/// The log group a resource-scoped request names, checked to be in this account and
/// Region; returns (key, canonical ARN, group name).
fn resource_of(logs: &Logs, arn: &str) -> Result<(String, String, String), LogsError> {
    let group = arn
        .strip_prefix("arn:")
        .and_then(|_| log_group_from_identifier(arn))
        .ok_or_else(|| {
            LogsError::InvalidParameter(format!(
                "resourceArn '{arn}' is not a log group ARN: only log groups can have resource-scoped policies."
            ))
        })?;
    let canonical = log_group_arn(&logs.scope.region, &logs.scope.account_id, group);
    if arn.trim_end_matches(":*") != canonical {
        return invalid(format!(
            "resourceArn '{arn}' is not a log group of this account and Region."
        ));
    }
    Ok((
        format!("{RESOURCE_PREFIX}{canonical}"),
        canonical,
        group.to_owned(),
    ))
}

/// The key of the resource-scoped policy of `group` (DeleteLogGroup removes it).
pub(crate) fn group_policy_key(logs: &Logs, group: &str) -> String {
    format!(
        "{RESOURCE_PREFIX}{}",
        log_group_arn(&logs.scope.region, &logs.scope.account_id, group)
    )
}

fn check_document(document: &str) -> Result<(), LogsError> {
    if document.is_empty() || document.chars().count() > MAX_DOCUMENT_LEN {
        return invalid(format!("1 validation error detected: Value at 'policyDocument' failed to satisfy constraint: Member must have length between 1 and {MAX_DOCUMENT_LEN}"));
    }
    policy::Policy::parse(document, policy::PolicyKind::Resource)
        .map(|_| ())
        .map_err(|e| LogsError::InvalidParameter(format!("Invalid policy document: {e}")))
}

pub(crate) async fn put_resource_policy(
    logs: &Logs,
    req: PutResourcePolicyRequest,
) -> Result<PutResourcePolicyResponse, LogsError> {
    let Some(document) = req.policy_document else {
        return invalid("policyDocument is required.");
    };
    check_document(&document)?;
    let now = logs.now_ms();
    let Some(arn) = req.resource_arn else {
        let Some(name) = req.policy_name.filter(|n| !n.is_empty()) else {
            return invalid("policyName is required for an account-scoped resource policy.");
        };
        if req.expected_revision_id.is_some() {
            return invalid("expectedRevisionId applies only to resource-scoped policies.");
        }
        let key = format!("{ACCOUNT_PREFIX}{name}");
        let stored = StoredPolicy {
            name: Some(name),
            document,
            last_updated_time: now,
            resource_arn: None,
            revision_id: None,
        };
        logs.objects
            .retry(ACCOUNT_PREFIX, || async {
                let all = logs.objects.list::<StoredPolicy>(ACCOUNT_PREFIX).await?;
                let existing = all.iter().find(|(k, _, _)| *k == key).map(|(_, _, r)| *r);
                if existing.is_none() && all.len() >= MAX_ACCOUNT_POLICIES {
                    return Err(LogsError::LimitExceeded(format!(
                        "Resource limit exceeded: an account can have at most {MAX_ACCOUNT_POLICIES} resource policies."
                    )));
                }
                let mut txn = Txn::new()
                    .when(key.as_str(), existing.unwrap_or(0))
                    .put(key.as_str(), encode(&stored)?);
                // Every other policy must be unchanged too, so two creations cannot both
                // pass the count.
                for (k, _, rev) in &all {
                    if *k != key {
                        txn = txn.when(k.as_str(), *rev);
                    }
                }
                Ok(Step::Commit(txn, ()))
            })
            .await?;
        tracing::info!(policy = ?stored.name, "Logs resource policy put (stored, not evaluated).");
        return Ok(PutResourcePolicyResponse {
            resource_policy: Some(stored.present()),
            revision_id: None,
        });
    };
    let (key, canonical, group) = resource_of(logs, &arn)?;
    logs.load_group(&group).await?;
    let revision = uuid::Uuid::new_v4().to_string();
    let stored = StoredPolicy {
        name: req.policy_name.filter(|n| !n.is_empty()),
        document,
        last_updated_time: now,
        resource_arn: Some(canonical),
        revision_id: Some(revision.clone()),
    };
    logs.objects
        .retry(&key, || async {
            let current = logs.objects.get::<StoredPolicy>(&key).await?;
            let expected = req.expected_revision_id.as_deref();
            let rev = match &current {
                Some((p, rev)) => {
                    if expected.is_some_and(|e| Some(e) != p.revision_id.as_deref()) {
                        return Err(LogsError::OperationAborted(
                            "The expectedRevisionId does not match the policy's current revisionId.".into(),
                        ));
                    }
                    *rev
                }
                None => {
                    if expected.is_some() {
                        return Err(LogsError::ResourceNotFound(
                            "No resource policy is attached to this log group, so there is no revision to expect.".into(),
                        ));
                    }
                    0
                }
            };
            Ok(Step::Commit(
                Txn::new()
                    .when(key.as_str(), rev)
                    .put(key.as_str(), encode(&stored)?),
                (),
            ))
        })
        .await?;
    tracing::info!(resource = ?stored.resource_arn, "Logs resource policy put (stored, not evaluated).");
    Ok(PutResourcePolicyResponse {
        resource_policy: Some(stored.present()),
        revision_id: Some(revision),
    })
}

pub(crate) async fn describe_resource_policies(
    logs: &Logs,
    req: DescribeResourcePoliciesRequest,
) -> Result<DescribeResourcePoliciesResponse, LogsError> {
    let size = page_size(req.limit, MAX_DESCRIBE)?;
    let items: Vec<(String, ResourcePolicy)> = match (&req.resource_arn, req.policy_scope) {
        (Some(arn), None | Some(PolicyScope::Resource)) => {
            let (key, _, _) = resource_of(logs, arn)?;
            logs.objects
                .get::<StoredPolicy>(&key)
                .await?
                .map(|(p, _)| (key, p.present()))
                .into_iter()
                .collect()
        }
        (Some(_), Some(PolicyScope::Account)) => {
            return invalid("resourceArn cannot be given with policyScope ACCOUNT.")
        }
        (None, scope) => {
            let prefix = match scope {
                Some(PolicyScope::Resource) => RESOURCE_PREFIX,
                None | Some(PolicyScope::Account) => ACCOUNT_PREFIX,
            };
            logs.objects
                .list::<StoredPolicy>(prefix)
                .await?
                .into_iter()
                .map(|(k, p, _)| (k, p.present()))
                .collect()
        }
    };
    let page = paginate("policies", items, req.next_token.as_deref(), size, false)?;
    Ok(DescribeResourcePoliciesResponse {
        resource_policies: Some(page.items),
        next_token: page.next_token,
    })
}

pub(crate) async fn delete_resource_policy(
    logs: &Logs,
    req: DeleteResourcePolicyRequest,
) -> Result<Empty, LogsError> {
    let (key, expected) = match (&req.resource_arn, &req.policy_name) {
        (Some(arn), _) => {
            let (key, _, _) = resource_of(logs, arn)?;
            let Some(expected) = req.expected_revision_id.as_deref() else {
                return invalid(
                    "expectedRevisionId is required to delete a resource-scoped policy.",
                );
            };
            (key, Some(expected))
        }
        (None, Some(name)) if !name.is_empty() => (format!("{ACCOUNT_PREFIX}{name}"), None),
        (None, _) => return invalid("policyName is required."),
    };
    logs.objects
        .retry(&key, || async {
            let Some((p, rev)) = logs.objects.get::<StoredPolicy>(&key).await? else {
                return Err(LogsError::ResourceNotFound(match &req.policy_name {
                    Some(name) if req.resource_arn.is_none() => {
                        format!("Policy with name [{name}] does not exist")
                    }
                    _ => "No resource policy is attached to this log group.".into(),
                }));
            };
            if expected.is_some_and(|e| Some(e) != p.revision_id.as_deref()) {
                return Err(LogsError::OperationAborted(
                    "The expectedRevisionId does not match the policy's current revisionId.".into(),
                ));
            }
            Ok(Step::Commit(
                Txn::new().when(key.as_str(), rev).delete(key.as_str()),
                (),
            ))
        })
        .await?;
    Ok(Empty {})
}
