//! Who may act as a container instance: the principal that registered it. An agent
//! joined with an instance profile signs with instance credentials that name its
//! instance (`wire::Caller::instance_id`), so its instance is bound to that id; other
//! registrations are bound to the registering principal's ARN. Opening the instance's
//! channel, re-registering it and reporting state for tasks placed on it need the
//! owner. The account root always passes; instances registered before owners were
//! recorded have none, and any caller the policies allowed passes for them.

use crate::error::EcsError;
use crate::Caller;
use serde::{Deserialize, Serialize};

/// The principal that registered a container instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceOwner {
    /// The registering principal's ARN.
    pub principal: String,
    /// The agent instance (`i-…`) its instance credentials named, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
}

impl InstanceOwner {
    /// The owner a registration by `caller` records.
    pub fn of(caller: &Caller) -> Self {
        Self {
            principal: caller.principal_arn().to_owned(),
            instance_id: caller.instance_id().map(str::to_owned),
        }
    }
}

/// Whether `caller` may act as the container instance `owner` registered.
pub fn is_owner(caller: &Caller, owner: Option<&InstanceOwner>) -> bool {
    if caller.is_root() {
        return true;
    }
    let Some(owner) = owner else {
        return true;
    };
    match &owner.instance_id {
        Some(id) => caller.instance_id() == Some(id.as_str()),
        None => caller.instance_id().is_none() && caller.principal_arn() == owner.principal,
    }
}

/// AWS's denial of `action` on `resource` to `caller`, saying `why`.
pub fn refusal(caller: &Caller, action: &str, resource: &str, why: &str) -> EcsError {
    EcsError::AccessDenied(format!(
        "User: {} is not authorized to perform: {action} on resource: {resource} because {why}",
        caller.principal_arn()
    ))
}

/// [`is_owner`], as the refusal to send when it does not hold.
pub fn check_owner(
    caller: &Caller,
    owner: Option<&InstanceOwner>,
    action: &str,
    resource: &str,
    why: &str,
) -> Result<(), EcsError> {
    if is_owner(caller, owner) {
        Ok(())
    } else {
        Err(refusal(caller, action, resource, why))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const ACCOUNT: &str = "123456789012";

    fn session(name: &str) -> Caller {
        let arn = format!("arn:aws:sts::{ACCOUNT}:assumed-role/ecsInstanceRole/{name}");
        let role = format!("arn:aws:iam::{ACCOUNT}:role/ecsInstanceRole");
        Caller::new(
            policy::Principal::assumed_role(&arn, &role),
            &format!("AROAX:{name}"),
            Arc::from(Vec::new()),
        )
    }

    fn instance(id: &str) -> Caller {
        session(id).with_instance_id(id)
    }

    fn user(name: &str) -> Caller {
        Caller::new(
            policy::Principal::user(&format!("arn:aws:iam::{ACCOUNT}:user/{name}")),
            "AIDAX",
            Arc::from(Vec::new()),
        )
    }

    #[test]
    fn an_instance_owns_only_what_it_registered() {
        let a = InstanceOwner::of(&instance("i-0000000000000000a"));
        assert_eq!(a.instance_id.as_deref(), Some("i-0000000000000000a"));
        assert!(is_owner(&instance("i-0000000000000000a"), Some(&a)));
        assert!(!is_owner(&instance("i-0000000000000000b"), Some(&a)));
    }

    #[test]
    fn a_session_named_like_the_instance_is_not_the_instance() {
        let a = InstanceOwner::of(&instance("i-0000000000000000a"));
        assert!(!is_owner(&session("i-0000000000000000a"), Some(&a)));
        assert!(!is_owner(&user("alice"), Some(&a)));
    }

    #[test]
    fn root_always_passes_and_ownerless_instances_admit_any_allowed_caller() {
        let a = InstanceOwner::of(&instance("i-0000000000000000a"));
        assert!(is_owner(&Caller::root(ACCOUNT), Some(&a)));
        assert!(is_owner(&user("alice"), None));
        assert!(is_owner(&instance("i-0000000000000000b"), None));
    }

    #[test]
    fn a_user_owns_its_registration_and_nobody_else_does() {
        let alice = InstanceOwner::of(&user("alice"));
        assert_eq!(alice.instance_id, None);
        assert!(is_owner(&user("alice"), Some(&alice)));
        assert!(!is_owner(&user("bob"), Some(&alice)));
        // Root's registrations belong to root only.
        let root = InstanceOwner::of(&Caller::root(ACCOUNT));
        assert!(!is_owner(&user("alice"), Some(&root)));
    }

    #[test]
    fn the_refusal_names_principal_action_resource_and_reason() {
        let e = refusal(
            &instance("i-0000000000000000b"),
            "ecs:SubmitTaskStateChange",
            "arn:aws:ecs:us-east-1:123456789012:task/c/t",
            "the task is not placed on the caller's container instance",
        );
        assert_eq!(e.to_aws().code, "AccessDeniedException");
        assert_eq!(
            e.to_string(),
            "User: arn:aws:sts::123456789012:assumed-role/ecsInstanceRole/i-0000000000000000b is not authorized to perform: ecs:SubmitTaskStateChange on resource: arn:aws:ecs:us-east-1:123456789012:task/c/t because the task is not placed on the caller's container instance"
        );
    }
}
