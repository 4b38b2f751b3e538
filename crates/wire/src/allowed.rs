//! What a caller was allowed, remembered for its next requests.
//!
//! Most requests repeat: a deploy pipeline calls DescribeTaskDefinition on `*` hundreds of
//! times with the same key. When every identity policy a caller holds is decided by the
//! principal, the action and the resource alone ([`policy::Policy::decided_by_principal`]:
//! no condition or variable reads the time, the source address, TLS, tags or service
//! keys), an allow is a pure function of (action, resource) for that caller, and
//! evaluating it again only costs. The memo lives in the caller's [`Caller`] and dies
//! with its policies: a changed policy builds a new caller, hence a new, empty memo, so
//! nothing is ever invalidated. Denials are not remembered (they are rare, and their
//! message names the statement, which the evaluation finds).
//!
//! [`Caller`]: crate::Caller

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use crate::Access;

/// Past this many remembered resources the memo starts over (a caller touching many
/// distinct ARNs gains little from it and must not grow it without bound).
const LIMIT: usize = 1024;

/// The (action, resource) pairs one caller was allowed.
#[derive(Debug, Default)]
pub(crate) struct Allowed {
    by_action: Mutex<Memo>,
}

#[derive(Debug, Default)]
struct Memo {
    resources: HashMap<(&'static str, &'static str), HashSet<Box<str>>>,
    len: usize,
}

impl Allowed {
    /// A memo for a caller holding `policies`, if their decisions can be remembered.
    pub(crate) fn for_policies(policies: &[policy::Policy]) -> Option<Self> {
        policies
            .iter()
            .all(policy::Policy::decided_by_principal)
            .then(Self::default)
    }

    /// Whether `access` was allowed before. An access carrying a resource policy is
    /// never answered from here: that policy is not the caller's and may change.
    pub(crate) fn allows(&self, access: &Access) -> bool {
        if access.has_resource_policy() {
            return false;
        }
        let memo = self
            .by_action
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        memo.resources
            .get(&(access.prefix(), access.action_name()))
            .is_some_and(|r| r.contains(access.resource()))
    }

    /// Remembers that `prefix:action` on `resource` was allowed, with no resource policy
    /// involved.
    pub(crate) fn remember(&self, prefix: &'static str, action: &'static str, resource: &str) {
        let mut memo = self
            .by_action
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if memo.len >= LIMIT {
            *memo = Memo::default();
        }
        let added = memo
            .resources
            .entry((prefix, action))
            .or_default()
            .insert(resource.into());
        memo.len += usize::from(added);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(statement: &str) -> policy::Policy {
        let doc = format!(r#"{{"Version":"2012-10-17","Statement":[{statement}]}}"#);
        policy::Policy::parse(&doc, policy::PolicyKind::Identity).expect("valid policy")
    }

    const READ: &str = r#"{"Effect":"Allow","Action":"ecs:Describe*","Resource":"*"}"#;

    #[test]
    fn a_policy_reading_a_request_key_gets_no_memo() {
        let from_office = r#"{"Effect":"Allow","Action":"ecs:*","Resource":"*",
            "Condition":{"IpAddress":{"aws:SourceIp":"192.0.2.0/24"}}}"#;
        assert!(Allowed::for_policies(&[policy(READ)]).is_some());
        assert!(Allowed::for_policies(&[policy(READ), policy(from_office)]).is_none());
    }

    #[test]
    fn only_the_remembered_action_and_resource_are_answered() {
        let memo = Allowed::for_policies(&[policy(READ)]).expect("memo");
        let td = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1";
        assert!(!memo.allows(&Access::any("ecs", "DescribeTaskDefinition")));
        memo.remember("ecs", "DescribeTaskDefinition", "*");
        assert!(memo.allows(&Access::any("ecs", "DescribeTaskDefinition")));
        assert!(!memo.allows(&Access::new("ecs", "DescribeTaskDefinition", td)));
        assert!(!memo.allows(&Access::any("ecs", "DescribeClusters")));
        assert!(!memo.allows(&Access::any("ecr", "DescribeTaskDefinition")));
    }

    #[test]
    fn an_access_with_a_resource_policy_is_never_answered_from_the_memo() {
        let memo = Allowed::for_policies(&[policy(READ)]).expect("memo");
        memo.remember("ecr", "BatchGetImage", "*");
        let repo_policy = std::sync::Arc::new(policy(READ));
        let access = Access::any("ecr", "BatchGetImage").with_resource_policy(repo_policy);
        assert!(!memo.allows(&access));
    }

    #[test]
    fn the_memo_starts_over_past_its_limit() {
        let memo = Allowed::for_policies(&[policy(READ)]).expect("memo");
        for i in 0..LIMIT {
            memo.remember("ecs", "DescribeTasks", &format!("task/{i}"));
        }
        assert!(memo.allows(&Access::new("ecs", "DescribeTasks", "task/0")));
        memo.remember("ecs", "DescribeTasks", "task/new");
        assert!(!memo.allows(&Access::new("ecs", "DescribeTasks", "task/0")));
        assert!(memo.allows(&Access::new("ecs", "DescribeTasks", "task/new")));
    }
}
