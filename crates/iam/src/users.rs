//! IAM users: create, read, list, delete; their access keys; their inline and attached
//! policies.

use crate::error::IamError;
use crate::iam_api::{self, Answer, Change, ATTACHED_PER_PRINCIPAL};
use crate::records::{self, AccessKeyRecord, UserRecord, USER};
use crate::validate;
use crate::xml::{self, Xml};
use crate::Core;
use policy::size::InlineOwner;
use policy::{Policy, PolicyKind};
use wire::query::QueryView;
use wire::Caller;

/// The quota on access keys per user.
const KEYS_PER_USER: usize = 2;

fn no_user(name: &str) -> IamError {
    IamError::NoSuchEntity(format!("The user with name {name} cannot be found."))
}

fn user_name<'a>(q: &QueryView<'a>) -> Result<&'a str, IamError> {
    validate::name(q.get("UserName"), "userName", 64)
}

/// The user an access-key operation is about: `UserName`, else the caller's own.
fn subject_user(q: &QueryView<'_>, caller: &Caller) -> Result<String, IamError> {
    if q.has("UserName") {
        return Ok(user_name(q)?.to_owned());
    }
    match caller.principal().kind() {
        policy::PrincipalKind::User { name } => Ok(name.clone()),
        _ => Err(IamError::validation(
            "null",
            "userName",
            "Member must not be null (the root user's own access keys are managed outside Stevedore)",
        )),
    }
}

pub(crate) async fn create_user(core: &Core, q: &QueryView<'_>) -> Answer {
    let name = user_name(q)?;
    let path = validate::path(q.get("Path"), "path")?;
    let tags = iam_api::tags(q)?;
    let now = core.dir().now();
    let arn = format!("arn:aws:iam::{}:user{path}{name}", core.dir().account());
    let user = core
        .update(&records::key(USER, name), |current: Option<UserRecord>| {
            if current.is_some() {
                return Err(IamError::EntityAlreadyExists(format!(
                    "User with name {name} already exists."
                )));
            }
            let user = UserRecord {
                name: name.to_owned(),
                id: records::unique_id("AIDA"),
                path: path.to_owned(),
                arn: arn.clone(),
                created: now,
                inline: Default::default(),
                attached: Vec::new(),
                tags: tags.clone(),
                keys: Vec::new(),
            };
            Ok(Change::Put(user.clone(), user))
        })
        .await?;
    let mut x = Xml::new();
    x.el("User", |x| iam_api::write_user(x, &user));
    Ok(Some(x.finish()))
}

pub(crate) fn get_user(core: &Core, q: &QueryView<'_>, caller: &Caller) -> Answer {
    let mut x = Xml::new();
    if !q.has("UserName") && caller.is_root() {
        x.el("User", |x| {
            x.leaf("Path", "/")
                .leaf("UserName", "root")
                .leaf("UserId", caller.user_id())
                .leaf("Arn", caller.principal_arn())
                .leaf("CreateDate", &xml::iso8601_secs(0));
        });
        return Ok(Some(x.finish()));
    }
    let name = subject_user(q, caller)?;
    let user = core.dir().user(&name).ok_or_else(|| no_user(&name))?;
    x.el("User", |x| iam_api::write_user(x, &user));
    Ok(Some(x.finish()))
}

pub(crate) fn list_users(core: &Core, q: &QueryView<'_>) -> Answer {
    let prefix = q.get("PathPrefix").unwrap_or("/");
    let users: Vec<_> = core
        .dir()
        .users()
        .into_iter()
        .filter(|u| u.path.starts_with(prefix))
        .collect();
    let (users, next) = iam_api::page(q, users)?;
    let mut x = Xml::new();
    x.list("Users", users, |m, u| iam_api::write_user(m, &u));
    iam_api::truncation(&mut x, next);
    Ok(Some(x.finish()))
}

pub(crate) async fn delete_user(core: &Core, q: &QueryView<'_>) -> Answer {
    let name = user_name(q)?;
    core.update(&records::key(USER, name), |current: Option<UserRecord>| {
        let user = current.ok_or_else(|| no_user(name))?;
        if !user.keys.is_empty() {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must delete access keys first.".into(),
            ));
        }
        if !user.inline.is_empty() {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must delete policies first.".into(),
            ));
        }
        if !user.attached.is_empty() {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must detach all policies first.".into(),
            ));
        }
        Ok(Change::Delete(()))
    })
    .await?;
    Ok(None)
}

pub(crate) async fn create_access_key(core: &Core, q: &QueryView<'_>, caller: &Caller) -> Answer {
    let name = subject_user(q, caller)?;
    let now = core.dir().now();
    let (user_name, key) = core
        .update(&records::key(USER, &name), |current: Option<UserRecord>| {
            let mut user = current.ok_or_else(|| no_user(&name))?;
            if user.keys.len() >= KEYS_PER_USER {
                return Err(IamError::LimitExceeded(format!(
                    "Cannot exceed quota for AccessKeysPerUser: {KEYS_PER_USER}"
                )));
            }
            let key = AccessKeyRecord {
                id: records::access_key_id("AKIA"),
                secret: records::secret(),
                active: true,
                created: now,
            };
            user.keys.push(key.clone());
            let user_name = user.name.clone();
            Ok(Change::Put(user, (user_name, key)))
        })
        .await?;
    let mut x = Xml::new();
    x.el("AccessKey", |x| {
        x.leaf("UserName", &user_name)
            .leaf("AccessKeyId", &key.id)
            .leaf("Status", "Active")
            .leaf("SecretAccessKey", &key.secret)
            .leaf("CreateDate", &xml::iso8601_secs(key.created));
    });
    Ok(Some(x.finish()))
}

pub(crate) fn list_access_keys(core: &Core, q: &QueryView<'_>, caller: &Caller) -> Answer {
    let name = subject_user(q, caller)?;
    let user = core.dir().user(&name).ok_or_else(|| no_user(&name))?;
    let (keys, next) = iam_api::page(q, user.keys.clone())?;
    let mut x = Xml::new();
    x.list("AccessKeyMetadata", keys, |m, k| {
        m.leaf("UserName", &user.name)
            .leaf("AccessKeyId", &k.id)
            .leaf("Status", if k.active { "Active" } else { "Inactive" })
            .leaf("CreateDate", &xml::iso8601_secs(k.created));
    });
    iam_api::truncation(&mut x, next);
    Ok(Some(x.finish()))
}

fn no_key(id: &str) -> IamError {
    IamError::NoSuchEntity(format!("The Access Key with id {id} cannot be found."))
}

pub(crate) async fn update_access_key(core: &Core, q: &QueryView<'_>, caller: &Caller) -> Answer {
    let name = subject_user(q, caller)?;
    let id = q
        .get("AccessKeyId")
        .ok_or_else(|| IamError::missing("accessKeyId"))?;
    let active = match q.get("Status") {
        Some("Active") => true,
        Some("Inactive") => false,
        Some(other) => {
            return Err(IamError::validation(
                other,
                "status",
                "Member must satisfy enum value set: [Active, Inactive]",
            ))
        }
        None => return Err(IamError::missing("status")),
    };
    core.update(&records::key(USER, &name), |current: Option<UserRecord>| {
        let mut user = current.ok_or_else(|| no_user(&name))?;
        let key = user
            .keys
            .iter_mut()
            .find(|k| k.id == id)
            .ok_or_else(|| no_key(id))?;
        key.active = active;
        Ok(Change::Put(user, ()))
    })
    .await?;
    Ok(None)
}

pub(crate) async fn delete_access_key(core: &Core, q: &QueryView<'_>, caller: &Caller) -> Answer {
    let name = subject_user(q, caller)?;
    let id = q
        .get("AccessKeyId")
        .ok_or_else(|| IamError::missing("accessKeyId"))?;
    core.update(&records::key(USER, &name), |current: Option<UserRecord>| {
        let mut user = current.ok_or_else(|| no_user(&name))?;
        let before = user.keys.len();
        user.keys.retain(|k| k.id != id);
        if user.keys.len() == before {
            return Err(no_key(id));
        }
        Ok(Change::Put(user, ()))
    })
    .await?;
    Ok(None)
}

fn policy_name<'a>(q: &QueryView<'a>) -> Result<&'a str, IamError> {
    validate::name(q.get("PolicyName"), "policyName", 128)
}

pub(crate) async fn put_user_policy(core: &Core, q: &QueryView<'_>) -> Answer {
    let name = user_name(q)?;
    let policy = policy_name(q)?;
    let document = validate::document(q.get("PolicyDocument"), "policyDocument")?;
    Policy::parse(document, PolicyKind::Identity)?;
    core.update(&records::key(USER, name), |current: Option<UserRecord>| {
        let mut user = current.ok_or_else(|| no_user(name))?;
        user.inline.insert(policy.to_owned(), document.to_owned());
        policy::size::check_inline_aggregate(
            InlineOwner::User,
            &user.name,
            user.inline.values().map(String::as_str),
        )?;
        Ok(Change::Put(user, ()))
    })
    .await?;
    Ok(None)
}

pub(crate) fn get_user_policy(core: &Core, q: &QueryView<'_>) -> Answer {
    let name = user_name(q)?;
    let policy = policy_name(q)?;
    let user = core.dir().user(name).ok_or_else(|| no_user(name))?;
    let document = user.inline.get(policy).ok_or_else(|| {
        IamError::NoSuchEntity(format!(
            "The user policy with name {policy} cannot be found."
        ))
    })?;
    let mut x = Xml::new();
    x.leaf("UserName", &user.name)
        .leaf("PolicyName", policy)
        .leaf("PolicyDocument", &xml::policy_document(document));
    Ok(Some(x.finish()))
}

pub(crate) async fn delete_user_policy(core: &Core, q: &QueryView<'_>) -> Answer {
    let name = user_name(q)?;
    let policy = policy_name(q)?;
    core.update(&records::key(USER, name), |current: Option<UserRecord>| {
        let mut user = current.ok_or_else(|| no_user(name))?;
        if user.inline.remove(policy).is_none() {
            return Err(IamError::NoSuchEntity(format!(
                "The user policy with name {policy} cannot be found."
            )));
        }
        Ok(Change::Put(user, ()))
    })
    .await?;
    Ok(None)
}

pub(crate) fn list_user_policies(core: &Core, q: &QueryView<'_>) -> Answer {
    let name = user_name(q)?;
    let user = core.dir().user(name).ok_or_else(|| no_user(name))?;
    iam_api::list_inline(q, user.inline.keys().cloned())
}

pub(crate) async fn attach_user_policy(core: &Core, q: &QueryView<'_>) -> Answer {
    let name = user_name(q)?;
    let arn = q
        .get("PolicyArn")
        .ok_or_else(|| IamError::missing("policyArn"))?;
    iam_api::check_attachable(core.dir(), arn)?;
    core.update(&records::key(USER, name), |current: Option<UserRecord>| {
        let mut user = current.ok_or_else(|| no_user(name))?;
        if !user.attached.iter().any(|a| a == arn) {
            if user.attached.len() >= ATTACHED_PER_PRINCIPAL {
                return Err(IamError::LimitExceeded(format!(
                    "Cannot exceed quota for PoliciesPerUser: {ATTACHED_PER_PRINCIPAL}"
                )));
            }
            user.attached.push(arn.to_owned());
        }
        Ok(Change::Put(user, ()))
    })
    .await?;
    Ok(None)
}

pub(crate) async fn detach_user_policy(core: &Core, q: &QueryView<'_>) -> Answer {
    let name = user_name(q)?;
    let arn = q
        .get("PolicyArn")
        .ok_or_else(|| IamError::missing("policyArn"))?;
    core.update(&records::key(USER, name), |current: Option<UserRecord>| {
        let mut user = current.ok_or_else(|| no_user(name))?;
        let before = user.attached.len();
        user.attached.retain(|a| a != arn);
        if user.attached.len() == before {
            return Err(IamError::NoSuchEntity(format!(
                "Policy {arn} was not found."
            )));
        }
        Ok(Change::Put(user, ()))
    })
    .await?;
    Ok(None)
}

pub(crate) fn list_attached_user_policies(core: &Core, q: &QueryView<'_>) -> Answer {
    let name = user_name(q)?;
    let user = core.dir().user(name).ok_or_else(|| no_user(name))?;
    iam_api::list_attached(q, &user.attached)
}
