//! IAM roles: trust policies, inline and attached policies, tags, and the ECS
//! service-linked role.

use crate::error::IamError;
use crate::iam_api::{self, Answer, Change, ATTACHED_PER_PRINCIPAL};
use crate::records::{self, RoleRecord, ROLE};
use crate::validate;
use crate::xml::{self, Xml};
use crate::Core;
use policy::size::InlineOwner;
use policy::{Policy, PolicyKind};
use wire::query::QueryView;

/// The default and bounds of `MaxSessionDuration`, seconds.
const SESSION_DEFAULT: i64 = 3600;
const SESSION_MAX: i64 = 43_200;

pub(crate) fn no_role(name: &str) -> IamError {
    IamError::NoSuchEntity(format!("The role with name {name} cannot be found."))
}

fn role_name<'a>(q: &QueryView<'a>) -> Result<&'a str, IamError> {
    validate::name(q.get("RoleName"), "roleName", 64)
}

/// Parses and size-checks a trust policy.
fn check_trust(document: &str) -> Result<(), IamError> {
    Policy::parse(document, PolicyKind::Trust)?;
    policy::size::check_trust_size(document, policy::size::TRUST_POLICY_DEFAULT)?;
    Ok(())
}

fn write_role_answer(role: &RoleRecord) -> Answer {
    let mut x = Xml::new();
    x.el("Role", |x| iam_api::write_role(x, role));
    Ok(Some(x.finish()))
}

/// Creates `role` unless a role of that name exists.
async fn insert(core: &Core, role: RoleRecord, taken: impl Fn(&str) -> IamError) -> Answer {
    let role = core
        .update(
            &records::key(ROLE, &role.name),
            |current: Option<RoleRecord>| {
                if current.is_some() {
                    return Err(taken(&role.name));
                }
                Ok(Change::Put(role.clone(), role.clone()))
            },
        )
        .await?;
    write_role_answer(&role)
}

pub(crate) async fn create_role(core: &Core, q: &QueryView<'_>) -> Answer {
    let name = role_name(q)?;
    let path = validate::path(q.get("Path"), "path")?;
    let trust = validate::document(
        q.get("AssumeRolePolicyDocument"),
        "assumeRolePolicyDocument",
    )?;
    check_trust(trust)?;
    let description = q.get("Description");
    if description.is_some_and(|d| d.chars().count() > 1000) {
        return Err(IamError::validation(
            "…",
            "description",
            "Member must have length less than or equal to 1000",
        ));
    }
    let max_session = validate::number(
        q.get("MaxSessionDuration"),
        "maxSessionDuration",
        SESSION_DEFAULT,
        SESSION_MAX,
    )?
    .unwrap_or(SESSION_DEFAULT);
    let role = RoleRecord {
        name: name.to_owned(),
        id: records::unique_id("AROA"),
        path: path.to_owned(),
        arn: format!("arn:aws:iam::{}:role{path}{name}", core.dir().account()),
        created: core.dir().now(),
        trust: trust.to_owned(),
        description: description.map(str::to_owned),
        max_session: u32::try_from(max_session).unwrap_or(3600),
        inline: Default::default(),
        attached: Vec::new(),
        tags: iam_api::tags(q)?,
    };
    insert(core, role, |n| {
        IamError::EntityAlreadyExists(format!("Role with name {n} already exists."))
    })
    .await
}

pub(crate) async fn create_service_linked_role(core: &Core, q: &QueryView<'_>) -> Answer {
    let service = q
        .get("AWSServiceName")
        .ok_or_else(|| IamError::missing("aWSServiceName"))?;
    if service != "ecs.amazonaws.com" {
        return Err(IamError::InvalidInput(format!(
            "Service name {service} is not supported by Stevedore: only ecs.amazonaws.com has a service-linked role."
        )));
    }
    let path = "/aws-service-role/ecs.amazonaws.com/";
    let name = "AWSServiceRoleForECS";
    let role = RoleRecord {
        name: name.to_owned(),
        id: records::unique_id("AROA"),
        path: path.to_owned(),
        arn: format!("arn:aws:iam::{}:role{path}{name}", core.dir().account()),
        created: core.dir().now(),
        trust: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#.to_owned(),
        description: q.get("Description").map(str::to_owned),
        max_session: 3600,
        inline: Default::default(),
        attached: vec![
            "arn:aws:iam::aws:policy/aws-service-role/AmazonECSServiceRolePolicy".to_owned(),
        ],
        tags: Vec::new(),
    };
    insert(core, role, |n| {
        IamError::InvalidInput(format!(
            "Service role name {n} has been taken in this account, please try a different suffix."
        ))
    })
    .await
}

pub(crate) fn get_role(core: &Core, q: &QueryView<'_>) -> Answer {
    let name = role_name(q)?;
    let role = core.dir().role(name).ok_or_else(|| no_role(name))?;
    write_role_answer(&role.record)
}

pub(crate) fn list_roles(core: &Core, q: &QueryView<'_>) -> Answer {
    let prefix = q.get("PathPrefix").unwrap_or("/");
    let roles: Vec<_> = core
        .dir()
        .roles()
        .into_iter()
        .filter(|r| r.record.path.starts_with(prefix))
        .collect();
    let (roles, next) = iam_api::page(q, roles)?;
    let mut x = Xml::new();
    x.list("Roles", roles, |m, r| iam_api::write_role(m, &r.record));
    iam_api::truncation(&mut x, next);
    Ok(Some(x.finish()))
}

/// Changes the role named in the request with `change`.
async fn modify(
    core: &Core,
    name: &str,
    change: impl Fn(&mut RoleRecord) -> Result<(), IamError>,
) -> Answer {
    core.update(&records::key(ROLE, name), |current: Option<RoleRecord>| {
        let mut role = current.ok_or_else(|| no_role(name))?;
        change(&mut role)?;
        Ok(Change::Put(role, ()))
    })
    .await?;
    Ok(None)
}

pub(crate) async fn update_assume_role_policy(core: &Core, q: &QueryView<'_>) -> Answer {
    let name = role_name(q)?;
    let trust = validate::document(q.get("PolicyDocument"), "policyDocument")?;
    check_trust(trust)?;
    modify(core, name, |r| {
        r.trust = trust.to_owned();
        Ok(())
    })
    .await
}

pub(crate) async fn tag_role(core: &Core, q: &QueryView<'_>) -> Answer {
    let name = role_name(q)?;
    let tags = iam_api::tags(q)?;
    modify(core, name, |r| {
        iam_api::merge_tags(&mut r.tags, tags.clone());
        if r.tags.len() > 50 {
            return Err(IamError::LimitExceeded(
                "Cannot exceed quota for TagsPerRole: 50".into(),
            ));
        }
        Ok(())
    })
    .await
}

pub(crate) async fn delete_role(core: &Core, q: &QueryView<'_>) -> Answer {
    let name = role_name(q)?;
    let in_profile = core
        .dir()
        .profiles()
        .iter()
        .any(|p| p.roles.iter().any(|r| r.eq_ignore_ascii_case(name)));
    core.update(&records::key(ROLE, name), |current: Option<RoleRecord>| {
        let role = current.ok_or_else(|| no_role(name))?;
        if in_profile {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must remove roles from instance profile first.".into(),
            ));
        }
        if !role.inline.is_empty() {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must delete policies first.".into(),
            ));
        }
        if !role.attached.is_empty() {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must detach all policies first.".into(),
            ));
        }
        Ok(Change::Delete(()))
    })
    .await?;
    Ok(None)
}

fn policy_name<'a>(q: &QueryView<'a>) -> Result<&'a str, IamError> {
    validate::name(q.get("PolicyName"), "policyName", 128)
}

fn no_inline(policy: &str) -> IamError {
    IamError::NoSuchEntity(format!(
        "The role policy with name {policy} cannot be found."
    ))
}

pub(crate) async fn put_role_policy(core: &Core, q: &QueryView<'_>) -> Answer {
    let name = role_name(q)?;
    let policy = policy_name(q)?;
    let document = validate::document(q.get("PolicyDocument"), "policyDocument")?;
    Policy::parse(document, PolicyKind::Identity)?;
    modify(core, name, |r| {
        r.inline.insert(policy.to_owned(), document.to_owned());
        policy::size::check_inline_aggregate(
            InlineOwner::Role,
            &r.name,
            r.inline.values().map(String::as_str),
        )?;
        Ok(())
    })
    .await
}

pub(crate) fn get_role_policy(core: &Core, q: &QueryView<'_>) -> Answer {
    let name = role_name(q)?;
    let policy = policy_name(q)?;
    let role = core.dir().role(name).ok_or_else(|| no_role(name))?;
    let document = role
        .record
        .inline
        .get(policy)
        .ok_or_else(|| no_inline(policy))?;
    let mut x = Xml::new();
    x.leaf("RoleName", &role.record.name)
        .leaf("PolicyName", policy)
        .leaf("PolicyDocument", &xml::policy_document(document));
    Ok(Some(x.finish()))
}

pub(crate) async fn delete_role_policy(core: &Core, q: &QueryView<'_>) -> Answer {
    let name = role_name(q)?;
    let policy = policy_name(q)?;
    modify(core, name, |r| {
        r.inline
            .remove(policy)
            .map(|_| ())
            .ok_or_else(|| no_inline(policy))
    })
    .await
}

pub(crate) fn list_role_policies(core: &Core, q: &QueryView<'_>) -> Answer {
    let name = role_name(q)?;
    let role = core.dir().role(name).ok_or_else(|| no_role(name))?;
    iam_api::list_inline(q, role.record.inline.keys().cloned())
}

pub(crate) async fn attach_role_policy(core: &Core, q: &QueryView<'_>) -> Answer {
    let name = role_name(q)?;
    let arn = q
        .get("PolicyArn")
        .ok_or_else(|| IamError::missing("policyArn"))?;
    iam_api::check_attachable(core.dir(), arn)?;
    modify(core, name, |r| {
        if !r.attached.iter().any(|a| a == arn) {
            if r.attached.len() >= ATTACHED_PER_PRINCIPAL {
                return Err(IamError::LimitExceeded(format!(
                    "Cannot exceed quota for PoliciesPerRole: {ATTACHED_PER_PRINCIPAL}"
                )));
            }
            r.attached.push(arn.to_owned());
        }
        Ok(())
    })
    .await
}

pub(crate) async fn detach_role_policy(core: &Core, q: &QueryView<'_>) -> Answer {
    let name = role_name(q)?;
    let arn = q
        .get("PolicyArn")
        .ok_or_else(|| IamError::missing("policyArn"))?;
    modify(core, name, |r| {
        let before = r.attached.len();
        r.attached.retain(|a| a != arn);
        if r.attached.len() == before {
            return Err(IamError::NoSuchEntity(format!(
                "Policy {arn} was not found."
            )));
        }
        Ok(())
    })
    .await
}

pub(crate) fn list_attached_role_policies(core: &Core, q: &QueryView<'_>) -> Answer {
    let name = role_name(q)?;
    let role = core.dir().role(name).ok_or_else(|| no_role(name))?;
    iam_api::list_attached(q, &role.record.attached)
}
