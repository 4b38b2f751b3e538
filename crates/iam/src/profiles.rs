//! Instance profiles: a named holder of (at most) one role, for agents' instance identity.

use crate::error::IamError;
use crate::iam_api::{self, Answer, Change};
use crate::records::{self, ProfileRecord, PROFILE};
use crate::validate;
use crate::xml::{self, Xml};
use crate::Core;
use wire::query::QueryView;

fn profile_name<'a>(q: &QueryView<'a>) -> Result<&'a str, IamError> {
    validate::name(q.get("InstanceProfileName"), "instanceProfileName", 128)
}

fn no_profile(name: &str) -> IamError {
    IamError::NoSuchEntity(format!("Instance Profile {name} cannot be found."))
}

fn write_profile(core: &Core, x: &mut Xml, p: &ProfileRecord) {
    x.el("InstanceProfile", |x| {
        x.leaf("Path", &p.path)
            .leaf("InstanceProfileName", &p.name)
            .leaf("InstanceProfileId", &p.id)
            .leaf("Arn", &p.arn)
            .leaf("CreateDate", &xml::iso8601_secs(p.created));
        let roles: Vec<_> = p.roles.iter().filter_map(|r| core.dir().role(r)).collect();
        x.list("Roles", roles, |m, r| iam_api::write_role(m, &r.record));
    });
}

pub(crate) async fn create_instance_profile(core: &Core, q: &QueryView<'_>) -> Answer {
    let name = profile_name(q)?;
    let path = validate::path(q.get("Path"), "path")?;
    let now = core.dir().now();
    let arn = format!(
        "arn:aws:iam::{}:instance-profile{path}{name}",
        core.dir().account()
    );
    let profile = core
        .update(
            &records::key(PROFILE, name),
            |current: Option<ProfileRecord>| {
                if current.is_some() {
                    return Err(IamError::EntityAlreadyExists(format!(
                        "Instance Profile {name} already exists."
                    )));
                }
                let p = ProfileRecord {
                    name: name.to_owned(),
                    id: records::unique_id("AIPA"),
                    path: path.to_owned(),
                    arn: arn.clone(),
                    created: now,
                    roles: Vec::new(),
                };
                Ok(Change::Put(p.clone(), p))
            },
        )
        .await?;
    let mut x = Xml::new();
    write_profile(core, &mut x, &profile);
    Ok(Some(x.finish()))
}

pub(crate) async fn add_role_to_instance_profile(core: &Core, q: &QueryView<'_>) -> Answer {
    let name = profile_name(q)?;
    let role = validate::name(q.get("RoleName"), "roleName", 64)?;
    let role = core
        .dir()
        .role(role)
        .ok_or_else(|| crate::roles::no_role(role))?
        .record
        .name
        .clone();
    core.update(
        &records::key(PROFILE, name),
        |current: Option<ProfileRecord>| {
            let mut p = current.ok_or_else(|| no_profile(name))?;
            if !p.roles.is_empty() {
                return Err(IamError::LimitExceeded(
                    "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1".into(),
                ));
            }
            p.roles.push(role.clone());
            Ok(Change::Put(p, ()))
        },
    )
    .await?;
    Ok(None)
}

pub(crate) fn get_instance_profile(core: &Core, q: &QueryView<'_>) -> Answer {
    let name = profile_name(q)?;
    let p = core.dir().profile(name).ok_or_else(|| no_profile(name))?;
    let mut x = Xml::new();
    write_profile(core, &mut x, &p);
    Ok(Some(x.finish()))
}
