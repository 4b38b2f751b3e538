//! The IAM service: its operation table, the one match from operation to handler, and
//! what the handlers share (read-modify-write of one record, pagination, tags, the XML
//! of users and roles).

use crate::directory::Directory;
use crate::error::IamError;
use crate::records::{RoleRecord, Tag, UserRecord};
use crate::xml::{self, Xml};
use crate::{managed, profiles, roles, users, Core, Iam};
use model::iam::operations::{Operation, API_VERSION};
use serde::de::DeserializeOwned;
use serde::Serialize;
use store::{Step, Txn};
use wire::query::QueryView;
use wire::{
    Access, Call, Caller, Input, OperationTable, Protocol, Service, ServiceError, ServiceSpec,
};

/// What a handler answers: the `<OpResult>` content, or `None` for operations with no output.
pub(crate) type Answer = Result<Option<String>, IamError>;

/// What one attempt of a single-record write decided.
pub(crate) enum Change<T, R> {
    /// Write this record, then answer.
    Put(T, R),
    /// Delete the record, then answer.
    Delete(R),
}

impl Core {
    /// Reads the record at `key` (`None`: absent), lets `decide` change it, and writes the
    /// change with compare-and-swap on the revision read, retrying lost races.
    pub(crate) async fn update<T, R>(
        &self,
        key: &str,
        decide: impl Fn(Option<T>) -> Result<Change<T, R>, IamError>,
    ) -> Result<R, IamError>
    where
        T: Serialize + DeserializeOwned,
    {
        let decide = &decide;
        self.objects
            .retry(key, || async move {
                let current = self.objects.get::<T>(key).await?;
                let revision = current.as_ref().map_or(0, |(_, r)| *r);
                let txn = Txn::new().when(key, revision);
                Ok(match decide(current.map(|(v, _)| v))? {
                    Change::Put(v, r) => Step::Commit(txn.put(key, store::objects::encode(&v)?), r),
                    Change::Delete(r) => Step::Commit(txn.delete(key), r),
                })
            })
            .await
    }

    pub(crate) fn dir(&self) -> &Directory {
        &self.directory
    }
}

impl Iam {
    async fn execute(&self, op: Operation, q: &QueryView<'_>, caller: &Caller) -> Answer {
        use Operation as Op;
        let core = &*self.core;
        match op {
            Op::CreateUser => users::create_user(core, q).await,
            Op::GetUser => users::get_user(core, q, caller),
            Op::ListUsers => users::list_users(core, q),
            Op::DeleteUser => users::delete_user(core, q).await,
            Op::CreateAccessKey => users::create_access_key(core, q, caller).await,
            Op::ListAccessKeys => users::list_access_keys(core, q, caller),
            Op::UpdateAccessKey => users::update_access_key(core, q, caller).await,
            Op::DeleteAccessKey => users::delete_access_key(core, q, caller).await,
            Op::PutUserPolicy => users::put_user_policy(core, q).await,
            Op::GetUserPolicy => users::get_user_policy(core, q),
            Op::DeleteUserPolicy => users::delete_user_policy(core, q).await,
            Op::ListUserPolicies => users::list_user_policies(core, q),
            Op::AttachUserPolicy => users::attach_user_policy(core, q).await,
            Op::DetachUserPolicy => users::detach_user_policy(core, q).await,
            Op::ListAttachedUserPolicies => users::list_attached_user_policies(core, q),
            Op::CreateRole => roles::create_role(core, q).await,
            Op::GetRole => roles::get_role(core, q),
            Op::ListRoles => roles::list_roles(core, q),
            Op::UpdateAssumeRolePolicy => roles::update_assume_role_policy(core, q).await,
            Op::DeleteRole => roles::delete_role(core, q).await,
            Op::TagRole => roles::tag_role(core, q).await,
            Op::PutRolePolicy => roles::put_role_policy(core, q).await,
            Op::GetRolePolicy => roles::get_role_policy(core, q),
            Op::DeleteRolePolicy => roles::delete_role_policy(core, q).await,
            Op::ListRolePolicies => roles::list_role_policies(core, q),
            Op::AttachRolePolicy => roles::attach_role_policy(core, q).await,
            Op::DetachRolePolicy => roles::detach_role_policy(core, q).await,
            Op::ListAttachedRolePolicies => roles::list_attached_role_policies(core, q),
            Op::CreateServiceLinkedRole => roles::create_service_linked_role(core, q).await,
            Op::CreatePolicy => managed::create_policy(core, q).await,
            Op::GetPolicy => managed::get_policy(core, q),
            Op::GetPolicyVersion => managed::get_policy_version(core, q),
            Op::CreatePolicyVersion => managed::create_policy_version(core, q).await,
            Op::ListPolicies => managed::list_policies(core, q),
            Op::CreateInstanceProfile => profiles::create_instance_profile(core, q).await,
            Op::AddRoleToInstanceProfile => profiles::add_role_to_instance_profile(core, q).await,
            Op::GetInstanceProfile => profiles::get_instance_profile(core, q),
            _ => Err(IamError::Internal(NOT_SERVED.into())),
        }
    }
}

/// The marker of an operation Stevedore does not serve.
const NOT_SERVED: &str = "not served";

impl Service for Iam {
    type Operation = Operation;

    const SPEC: ServiceSpec = ServiceSpec {
        name: "iam",
        title: "AWS Identity and Access Management",
        signing_name: "iam",
        protocols: &[Protocol::AwsQuery {
            version: API_VERSION,
        }],
    };

    const OPERATIONS: OperationTable<Operation> = OperationTable {
        all: Operation::ALL,
        from_name: Operation::from_name,
        name: Operation::name,
        errors: Operation::errors,
    };

    async fn authorize(&self, op: Operation, call: Call<'_>) -> Result<Vec<Access>, ServiceError> {
        let Input::Query(params) = call.input else {
            return Err(ServiceError::NotImplemented);
        };
        let account = self.core.dir().account().to_owned();
        Ok(crate::authz::iam_accesses(
            &account,
            op,
            &params.view(),
            call.caller,
        ))
    }

    async fn handle(&self, op: Operation, call: Call<'_>) -> Result<Vec<u8>, ServiceError> {
        let Input::Query(params) = call.input else {
            return Err(ServiceError::NotImplemented);
        };
        match self.execute(op, &params.view(), call.caller).await {
            Ok(result) => Ok(xml::envelope(
                xml::IAM_NAMESPACE,
                op.name(),
                call.request_id,
                result.as_deref(),
            )
            .into_bytes()),
            Err(IamError::Internal(m)) if m == NOT_SERVED => Err(ServiceError::NotImplemented),
            Err(e) => {
                if matches!(e, IamError::Store(_) | IamError::Internal(_)) {
                    tracing::error!(operation = op.name(), error = %e, "IAM operation failed.");
                }
                Err(ServiceError::Aws(e.to_aws()))
            }
        }
    }
}

/// A page of `items` after `Marker`, at most `MaxItems` (default 100): the page, and the
/// marker of the next one.
pub(crate) fn page<T>(
    q: &QueryView<'_>,
    items: Vec<T>,
) -> Result<(Vec<T>, Option<String>), IamError> {
    let max = crate::validate::number(q.get("MaxItems"), "maxItems", 1, 1000)?.unwrap_or(100);
    let start: usize = match q.get("Marker") {
        Some(m) => m
            .parse()
            .map_err(|_| IamError::InvalidInput("Invalid Marker.".into()))?,
        None => 0,
    };
    let max = usize::try_from(max).unwrap_or(100);
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(max).collect();
    let end = start.saturating_add(page.len());
    Ok((page, (end < total).then(|| end.to_string())))
}

/// `<IsTruncated>` and `<Marker>` after a list.
pub(crate) fn truncation(x: &mut Xml, next: Option<String>) {
    x.leaf("IsTruncated", if next.is_some() { "true" } else { "false" });
    x.opt("Marker", next.as_deref());
}

/// The `Tags.member.N` of a request (at most 50).
pub(crate) fn tags(q: &QueryView<'_>) -> Result<Vec<Tag>, IamError> {
    let members = q.members("Tags");
    if members.len() > 50 {
        return Err(IamError::validation(
            "tags",
            "tags",
            "Member must have length less than or equal to 50",
        ));
    }
    members
        .iter()
        .map(|m| {
            let key = m
                .get("Key")
                .ok_or_else(|| IamError::missing("tags.member.key"))?;
            if key.is_empty() || key.chars().count() > 128 {
                return Err(IamError::validation(
                    key,
                    "tags.member.key",
                    "Member must have length less than or equal to 128",
                ));
            }
            Ok(Tag {
                key: key.to_owned(),
                value: m.get("Value").unwrap_or("").to_owned(),
            })
        })
        .collect()
}

/// Merges `new` into `tags`, replacing values of keys already there (keys compare
/// without case, as IAM's do).
pub(crate) fn merge_tags(tags: &mut Vec<Tag>, new: Vec<Tag>) {
    for t in new {
        match tags.iter_mut().find(|o| o.key.eq_ignore_ascii_case(&t.key)) {
            Some(o) => *o = t,
            None => tags.push(t),
        }
    }
}

pub(crate) fn write_tags(x: &mut Xml, tags: &[Tag]) {
    if !tags.is_empty() {
        x.list("Tags", tags, |m, t| {
            m.leaf("Key", &t.key).leaf("Value", &t.value);
        });
    }
}

pub(crate) fn write_user(x: &mut Xml, u: &UserRecord) {
    x.leaf("Path", &u.path)
        .leaf("UserName", &u.name)
        .leaf("UserId", &u.id)
        .leaf("Arn", &u.arn)
        .leaf("CreateDate", &xml::iso8601_secs(u.created));
    write_tags(x, &u.tags);
}

pub(crate) fn write_role(x: &mut Xml, r: &RoleRecord) {
    x.leaf("Path", &r.path)
        .leaf("RoleName", &r.name)
        .leaf("RoleId", &r.id)
        .leaf("Arn", &r.arn)
        .leaf("CreateDate", &xml::iso8601_secs(r.created))
        .leaf("AssumeRolePolicyDocument", &xml::policy_document(&r.trust))
        .opt("Description", r.description.as_deref())
        .leaf("MaxSessionDuration", &r.max_session.to_string());
    write_tags(x, &r.tags);
}

/// The names of a user's or role's inline policies, paged.
pub(crate) fn list_inline(q: &QueryView<'_>, names: impl Iterator<Item = String>) -> Answer {
    let (names, next) = page(q, names.collect())?;
    let mut x = Xml::new();
    x.strings("PolicyNames", &names);
    truncation(&mut x, next);
    Ok(Some(x.finish()))
}

/// The managed policies attached to a user or role, paged.
pub(crate) fn list_attached(q: &QueryView<'_>, arns: &[String]) -> Answer {
    let prefix = q.get("PathPrefix").unwrap_or("/");
    let attached: Vec<&String> = arns
        .iter()
        .filter(|a| managed::path_of(a).starts_with(prefix))
        .collect();
    let (arns, next) = page(q, attached)?;
    let mut x = Xml::new();
    x.list("AttachedPolicies", arns, |m, arn| {
        m.leaf("PolicyName", arn.rsplit('/').next().unwrap_or(arn))
            .leaf("PolicyArn", arn);
    });
    truncation(&mut x, next);
    Ok(Some(x.finish()))
}

/// Checks that a managed policy ARN names a policy that exists.
pub(crate) fn check_attachable(dir: &Directory, arn: &str) -> Result<(), IamError> {
    if dir.managed_document(arn).is_some() {
        Ok(())
    } else {
        Err(IamError::NoSuchEntity(format!(
            "Policy {arn} does not exist or is not attachable."
        )))
    }
}

/// The quota on managed policies attached to one user or role.
pub(crate) const ATTACHED_PER_PRINCIPAL: usize = 10;
