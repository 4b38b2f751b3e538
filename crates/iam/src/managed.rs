//! Managed policies: the account's own (with up to five versions) and AWS's, which come
//! from `policy::managed` under `arn:aws:iam::aws:policy/…`.

use crate::error::IamError;
use crate::iam_api::{self, Answer, Change};
use crate::records::{self, PolicyRecord, PolicyVersionRecord, POLICY};
use crate::validate;
use crate::xml::{self, Xml};
use crate::Core;
use policy::managed::ManagedPolicy;
use policy::{Policy, PolicyKind};
use sha2::{Digest, Sha256};
use wire::query::QueryView;

/// The quota on versions of one managed policy.
const VERSIONS: usize = 5;
/// The date Stevedore gives AWS's managed policies (they predate the account).
const AWS_POLICY_DATE: i64 = 1_430_000_000;

/// The path of a policy ARN (`/` or `/service-role/`).
pub(crate) fn path_of(arn: &str) -> &str {
    let rest = arn.split_once(":policy").map_or("/", |(_, r)| r);
    match rest.rfind('/') {
        Some(i) => &rest[..=i],
        None => "/",
    }
}

/// A policy as listed: the account's or AWS's.
enum Listed<'a> {
    Local(&'a PolicyRecord),
    Aws(&'static ManagedPolicy),
}

/// A stable `ANPA…` id for an AWS managed policy.
fn aws_policy_id(p: &ManagedPolicy) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let digest = Sha256::digest(p.arn.as_bytes());
    let tail: String = digest
        .iter()
        .take(17)
        .map(|b| char::from(ALPHABET[usize::from(b % 32)]))
        .collect();
    format!("ANPA{tail}")
}

fn write_policy(x: &mut Xml, p: Listed<'_>, attachments: usize) {
    let (name, id, arn, path, version, description, created, updated) = match p {
        Listed::Local(r) => (
            r.name.as_str(),
            r.id.clone(),
            r.arn.as_str(),
            r.path.as_str(),
            r.default_version.as_str(),
            r.description.as_deref(),
            r.created,
            r.updated,
        ),
        Listed::Aws(m) => (
            m.name,
            aws_policy_id(m),
            m.arn,
            m.path,
            m.version,
            Some(m.description),
            AWS_POLICY_DATE,
            AWS_POLICY_DATE,
        ),
    };
    x.leaf("PolicyName", name)
        .leaf("PolicyId", &id)
        .leaf("Arn", arn)
        .leaf("Path", path)
        .leaf("DefaultVersionId", version)
        .leaf("AttachmentCount", &attachments.to_string())
        .leaf("PermissionsBoundaryUsageCount", "0")
        .leaf("IsAttachable", "true")
        .opt("Description", description)
        .leaf("CreateDate", &xml::iso8601_secs(created))
        .leaf("UpdateDate", &xml::iso8601_secs(updated));
}

fn not_found(arn: &str) -> IamError {
    IamError::NoSuchEntity(format!("Policy {arn} was not found."))
}

/// The account's policy an ARN names.
fn local(core: &Core, arn: &str) -> Result<std::sync::Arc<PolicyRecord>, IamError> {
    let name = arn.rsplit('/').next().unwrap_or(arn);
    core.dir()
        .policy(name)
        .filter(|p| p.arn == arn)
        .ok_or_else(|| not_found(arn))
}

fn policy_arn<'a>(q: &QueryView<'a>) -> Result<&'a str, IamError> {
    let arn = q
        .get("PolicyArn")
        .ok_or_else(|| IamError::missing("policyArn"))?;
    if arn.len() < 20 || !arn.starts_with("arn:") {
        return Err(IamError::validation(
            arn,
            "policyArn",
            "Member must have length greater than or equal to 20",
        ));
    }
    Ok(arn)
}

pub(crate) async fn create_policy(core: &Core, q: &QueryView<'_>) -> Answer {
    let name = validate::name(q.get("PolicyName"), "policyName", 128)?;
    let path = validate::path(q.get("Path"), "path")?;
    let document = validate::document(q.get("PolicyDocument"), "policyDocument")?;
    Policy::parse(document, PolicyKind::Identity)?;
    policy::size::check_managed_size(document)?;
    let description = q.get("Description").map(str::to_owned);
    let now = core.dir().now();
    let arn = format!("arn:aws:iam::{}:policy{path}{name}", core.dir().account());
    let record = core
        .update(
            &records::key(POLICY, name),
            |current: Option<PolicyRecord>| {
                if current.is_some() {
                    return Err(IamError::EntityAlreadyExists(format!(
                        "A policy called {name} already exists. Duplicate names are not allowed."
                    )));
                }
                let record = PolicyRecord {
                    name: name.to_owned(),
                    id: records::unique_id("ANPA"),
                    path: path.to_owned(),
                    arn: arn.clone(),
                    description: description.clone(),
                    created: now,
                    updated: now,
                    default_version: "v1".into(),
                    versions: vec![PolicyVersionRecord {
                        id: "v1".into(),
                        document: document.to_owned(),
                        created: now,
                    }],
                    next_version: 2,
                };
                Ok(Change::Put(record.clone(), record))
            },
        )
        .await?;
    let mut x = Xml::new();
    x.el("Policy", |x| write_policy(x, Listed::Local(&record), 0));
    Ok(Some(x.finish()))
}

pub(crate) fn get_policy(core: &Core, q: &QueryView<'_>) -> Answer {
    let arn = policy_arn(q)?;
    let count = core.dir().attachment_count(arn);
    let mut x = Xml::new();
    if let Some(m) = policy::managed::by_arn(arn) {
        x.el("Policy", |x| write_policy(x, Listed::Aws(m), count));
    } else {
        let record = local(core, arn)?;
        x.el("Policy", |x| write_policy(x, Listed::Local(&record), count));
    }
    Ok(Some(x.finish()))
}

fn write_version(x: &mut Xml, document: &str, id: &str, default: bool, created: i64) {
    x.el("PolicyVersion", |x| {
        x.leaf("Document", &xml::policy_document(document))
            .leaf("VersionId", id)
            .leaf("IsDefaultVersion", if default { "true" } else { "false" })
            .leaf("CreateDate", &xml::iso8601_secs(created));
    });
}

pub(crate) fn get_policy_version(core: &Core, q: &QueryView<'_>) -> Answer {
    let arn = policy_arn(q)?;
    let version = q
        .get("VersionId")
        .ok_or_else(|| IamError::missing("versionId"))?;
    let missing = || {
        IamError::NoSuchEntity(format!(
            "Policy {arn} version {version} does not exist or is not attachable."
        ))
    };
    let mut x = Xml::new();
    if let Some(m) = policy::managed::by_arn(arn) {
        if m.version != version {
            return Err(missing());
        }
        write_version(&mut x, m.document, m.version, true, AWS_POLICY_DATE);
    } else {
        let record = local(core, arn)?;
        let v = record
            .versions
            .iter()
            .find(|v| v.id == version)
            .ok_or_else(missing)?;
        write_version(
            &mut x,
            &v.document,
            &v.id,
            v.id == record.default_version,
            v.created,
        );
    }
    Ok(Some(x.finish()))
}

pub(crate) async fn create_policy_version(core: &Core, q: &QueryView<'_>) -> Answer {
    let arn = policy_arn(q)?;
    let document = validate::document(q.get("PolicyDocument"), "policyDocument")?;
    Policy::parse(document, PolicyKind::Identity)?;
    policy::size::check_managed_size(document)?;
    let set_default = q.get("SetAsDefault") == Some("true");
    if policy::managed::by_arn(arn).is_some() {
        return Err(IamError::InvalidInput(format!(
            "Policy {arn} is an AWS managed policy and cannot be changed."
        )));
    }
    let name = local(core, arn)?.name.clone();
    let now = core.dir().now();
    let (version, is_default) = core
        .update(&records::key(POLICY, &name), |current: Option<PolicyRecord>| {
            let mut record = current.filter(|r| r.arn == arn).ok_or_else(|| not_found(arn))?;
            if record.versions.len() >= VERSIONS {
                return Err(IamError::LimitExceeded(format!(
                    "A managed policy can have up to {VERSIONS} versions. Before you create a new version, you must delete an existing version."
                )));
            }
            let id = format!("v{}", record.next_version);
            record.next_version += 1;
            record.versions.push(PolicyVersionRecord {
                id: id.clone(),
                document: document.to_owned(),
                created: now,
            });
            if set_default {
                record.default_version = id.clone();
                record.updated = now;
            }
            Ok(Change::Put(record, (id, set_default)))
        })
        .await?;
    let mut x = Xml::new();
    x.el("PolicyVersion", |x| {
        x.leaf("VersionId", &version)
            .leaf(
                "IsDefaultVersion",
                if is_default { "true" } else { "false" },
            )
            .leaf("CreateDate", &xml::iso8601_secs(now));
    });
    Ok(Some(x.finish()))
}

pub(crate) fn list_policies(core: &Core, q: &QueryView<'_>) -> Answer {
    let scope = q.get("Scope").unwrap_or("All");
    let (aws, local) = match scope {
        "All" => (true, true),
        "AWS" => (true, false),
        "Local" => (false, true),
        other => {
            return Err(IamError::validation(
                other,
                "scope",
                "Member must satisfy enum value set: [All, AWS, Local]",
            ))
        }
    };
    let only_attached = q.get("OnlyAttached") == Some("true");
    let prefix = q.get("PathPrefix").unwrap_or("/");
    let dir = core.dir();
    let locals = dir.policies();
    let mut listed: Vec<(Listed<'_>, usize)> = Vec::new();
    if aws {
        for m in policy::managed::AWS_MANAGED_POLICIES {
            listed.push((Listed::Aws(m), dir.attachment_count(m.arn)));
        }
    }
    if local {
        for r in &locals {
            listed.push((Listed::Local(r), dir.attachment_count(&r.arn)));
        }
    }
    listed.retain(|(p, count)| {
        let path = match p {
            Listed::Local(r) => r.path.as_str(),
            Listed::Aws(m) => m.path,
        };
        path.starts_with(prefix) && (!only_attached || *count > 0)
    });
    let (listed, next) = iam_api::page(q, listed)?;
    let mut x = Xml::new();
    x.list("Policies", listed, |m, (p, count)| {
        write_policy(m, p, count)
    });
    iam_api::truncation(&mut x, next);
    Ok(Some(x.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_paths_come_from_the_arn() {
        assert_eq!(path_of("arn:aws:iam::aws:policy/AdministratorAccess"), "/");
        assert_eq!(
            path_of("arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"),
            "/service-role/"
        );
    }
}
