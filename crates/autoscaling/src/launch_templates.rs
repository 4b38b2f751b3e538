//! EC2 launch templates (CreateLaunchTemplate, DescribeLaunchTemplates,
//! DescribeLaunchTemplateVersions, DeleteLaunchTemplate): what an Auto Scaling group
//! launches, namely the instance type (whose resources ECS registers) and the user data
//! (whose `ECS_CLUSTER=` picks the cluster the instance joins).
//!
//! These are EC2 operations, spoken in EC2's query dialect: lists are `Name.N`, and the
//! response is `<XResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">` with a
//! `requestId` and lowerCamel members. The one entry is [`AutoScaling::serve_ec2_action`],
//! which the EC2 API's dispatcher falls through to (`None`: not a launch template
//! action).

use crate::error::AutoScalingError;
use crate::state::{StoredGroup, TEMPLATE_PREFIX};
use crate::AutoScaling;
use serde::{Deserialize, Serialize};
use store::{Step, Txn};
use wire::query::QueryParams;
use wire::xml::Xml;

/// The XML namespace of EC2 responses.
pub const EC2_NAMESPACE: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

/// The operations of EC2 served here.
pub const ACTIONS: [&str; 4] = [
    "CreateLaunchTemplate",
    "DescribeLaunchTemplates",
    "DescribeLaunchTemplateVersions",
    "DeleteLaunchTemplate",
];

/// One version of a template: the launch data Stevedore uses and echoes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateVersion {
    /// 1, 2, ...
    pub number: i64,
    /// `VersionDescription`.
    pub description: Option<String>,
    /// `InstanceType`.
    pub instance_type: Option<String>,
    /// `ImageId` (recorded: instances run `stevedore agent`, not an AMI).
    pub image_id: Option<String>,
    /// `UserData`, base64 as given.
    pub user_data: Option<String>,
    /// `IamInstanceProfile.Name` or `.Arn`.
    pub iam_instance_profile: Option<String>,
    /// `SecurityGroupIds`: the instances' security groups (their published host ports
    /// are filtered by them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_group_ids: Vec<String>,
    /// Created, epoch milliseconds.
    pub created_ms: i64,
}

/// A stored launch template with its versions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTemplate {
    /// `lt-` + 17 hex.
    pub id: String,
    /// Its name (unique in the region).
    pub name: String,
    /// Created, epoch milliseconds.
    pub created_ms: i64,
    /// Who created it (the caller's ARN).
    pub created_by: String,
    /// The default version number.
    pub default_version: i64,
    /// Versions, oldest first.
    pub versions: Vec<TemplateVersion>,
}

impl StoredTemplate {
    /// The version `spec` names (`$Default`, `$Latest`, a number; none is `$Default`).
    pub fn version(&self, spec: Option<&str>) -> Option<&TemplateVersion> {
        match spec.unwrap_or("$Default") {
            "$Default" => self
                .versions
                .iter()
                .find(|v| v.number == self.default_version),
            "$Latest" => self.versions.last(),
            n => {
                let n: i64 = n.parse().ok()?;
                self.versions.iter().find(|v| v.number == n)
            }
        }
    }
}

/// The values of EC2's flattened list `name.1`, `name.2`, … in numeric order.
pub(crate) fn ec2_list<'a>(params: &'a QueryParams, name: &str) -> Vec<&'a str> {
    let prefix = format!("{name}.");
    let mut items: Vec<(u64, &str)> = params
        .iter()
        .filter_map(|(k, v)| {
            let n = k.strip_prefix(&prefix)?.parse::<u64>().ok()?;
            Some((n, v))
        })
        .collect();
    items.sort_unstable_by_key(|&(n, _)| n);
    items.into_iter().map(|(_, v)| v).collect()
}

/// The members of `LaunchTemplateData` an instance provider acts on (query names: the
/// EC2 protocol sends `SecurityGroupIds` as flat `SecurityGroupId.N`). Any other member
/// would be stored and never applied, so it is refused.
const SUPPORTED_DATA: [&str; 5] = [
    "InstanceType",
    "ImageId",
    "UserData",
    "IamInstanceProfile",
    "SecurityGroupId",
];

/// The first `LaunchTemplateData` member sent that no instance provider acts on.
fn unsupported_member(params: &QueryParams) -> Option<&str> {
    params.iter().find_map(|(key, _)| {
        let member = key.strip_prefix("LaunchTemplateData.")?;
        let top = member.split('.').next().unwrap_or(member);
        (!SUPPORTED_DATA.contains(&top)).then_some(top)
    })
}

fn not_found() -> AutoScalingError {
    AutoScalingError::Ec2(
        "InvalidLaunchTemplateName.NotFoundException",
        "At least one of the launch templates specified in the request does not exist.".into(),
    )
}

fn id_not_found(id: &str) -> AutoScalingError {
    AutoScalingError::Ec2(
        "InvalidLaunchTemplateId.NotFound",
        format!("The specified launch template, with template ID {id}, does not exist."),
    )
}

fn missing(name: &str) -> AutoScalingError {
    AutoScalingError::Ec2(
        "MissingParameter",
        format!("The request must contain the parameter {name}"),
    )
}

/// Template names: 3–128 of `[A-Za-z0-9()./_-]`.
fn check_name(name: &str) -> Result<(), AutoScalingError> {
    let ok = (3..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"()./_-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(AutoScalingError::Ec2(
            "InvalidLaunchTemplateName.MalformedException",
            "A launch template name must be between 3 and 128 characters, and may contain letters, numbers, and the following characters: - ( ) . / _.'".into(),
        ))
    }
}

impl AutoScaling {
    /// Serves the EC2 query-protocol request `params` if its `Action` is a launch
    /// template operation: the whole response document, or the error. `None`: not one of
    /// [`ACTIONS`] (the EC2 API answers it).
    pub async fn serve_ec2_action(
        &self,
        action: &str,
        params: &QueryParams,
        caller_arn: &str,
        request_id: &str,
    ) -> Option<Result<String, AutoScalingError>> {
        let body = match action {
            "CreateLaunchTemplate" => self.create_launch_template(params, caller_arn).await,
            "DescribeLaunchTemplates" => self.describe_launch_templates(params).await,
            "DescribeLaunchTemplateVersions" => {
                self.describe_launch_template_versions(params).await
            }
            "DeleteLaunchTemplate" => self.delete_launch_template(params).await,
            _ => return None,
        };
        Some(body.map(|body| {
            format!(
                "<{action}Response xmlns=\"{EC2_NAMESPACE}\"><requestId>{}</requestId>{body}</{action}Response>",
                request_id.replace(['<', '>', '&'], "")
            )
        }))
    }

    /// Every launch template.
    pub(crate) async fn templates(&self) -> Result<Vec<StoredTemplate>, AutoScalingError> {
        Ok(self
            .objects
            .list::<StoredTemplate>(TEMPLATE_PREFIX)
            .await?
            .into_iter()
            .map(|(_, t, _)| t)
            .collect())
    }

    /// The instance type `group` launches: its launch template version's, if set.
    pub async fn group_instance_type(
        &self,
        group: &StoredGroup,
    ) -> Result<Option<String>, AutoScalingError> {
        let template = self.find_template(Some(&group.template.id), None).await?;
        Ok(template
            .as_ref()
            .and_then(|t| t.version(Some(&group.template.version)))
            .and_then(|v| v.instance_type.clone()))
    }

    /// The template with `id` or `name` (the id wins when both are given).
    pub(crate) async fn find_template(
        &self,
        id: Option<&str>,
        name: Option<&str>,
    ) -> Result<Option<StoredTemplate>, AutoScalingError> {
        if let Some(id) = id {
            return Ok(self
                .objects
                .get::<StoredTemplate>(&format!("{TEMPLATE_PREFIX}{id}"))
                .await?
                .map(|(t, _)| t));
        }
        Ok(self
            .templates()
            .await?
            .into_iter()
            .find(|t| Some(t.name.as_str()) == name))
    }

    async fn create_launch_template(
        &self,
        params: &QueryParams,
        caller_arn: &str,
    ) -> Result<String, AutoScalingError> {
        let v = params.view();
        let name = v
            .get("LaunchTemplateName")
            .ok_or_else(|| missing("LaunchTemplateName"))?;
        check_name(name)?;
        if !v.has("LaunchTemplateData") {
            return Err(missing("LaunchTemplateData"));
        }
        let data = v.structure("LaunchTemplateData");
        if let Some(ud) = data.get("UserData") {
            use base64::Engine;
            if base64::engine::general_purpose::STANDARD
                .decode(ud)
                .is_err()
            {
                return Err(AutoScalingError::Ec2(
                    "InvalidUserData.Malformed",
                    "Invalid BASE64 encoding of user data.".into(),
                ));
            }
        }
        // Groups by name would need the EC2 API's names resolved at launch; refused
        // rather than stored and never applied.
        if data.has("SecurityGroup") {
            return Err(AutoScalingError::Ec2(
                "InvalidParameterValue",
                "LaunchTemplateData.SecurityGroups (group names) is not supported by Stevedore: give the groups' IDs in SecurityGroupIds.".into(),
            ));
        }
        if let Some(member) = unsupported_member(params) {
            return Err(AutoScalingError::Ec2(
                "InvalidParameterValue",
                format!(
                    "LaunchTemplateData.{member} is not supported by Stevedore, whose instances take only {}: remove it from the template.",
                    SUPPORTED_DATA.join(", ")
                ),
            ));
        }
        let now = self.now_ms();
        let id = format!("lt-{}", &uuid::Uuid::new_v4().simple().to_string()[..17]);
        let profile = data.structure("IamInstanceProfile");
        let template = StoredTemplate {
            id: id.clone(),
            name: name.to_owned(),
            created_ms: now,
            created_by: caller_arn.to_owned(),
            default_version: 1,
            versions: vec![TemplateVersion {
                number: 1,
                description: v.get("VersionDescription").map(str::to_owned),
                instance_type: data.get("InstanceType").map(str::to_owned),
                image_id: data.get("ImageId").map(str::to_owned),
                user_data: data.get("UserData").map(str::to_owned),
                iam_instance_profile: profile
                    .get("Name")
                    .or_else(|| profile.get("Arn"))
                    .map(str::to_owned),
                security_group_ids: data
                    .flat_list("SecurityGroupId")
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
                created_ms: now,
            }],
        };
        let key = format!("{TEMPLATE_PREFIX}{id}");
        let value = store::objects::encode(&template)?;
        let created = self
            .objects
            .retry(&key, || async {
                if self.templates().await?.iter().any(|t| t.name == name) {
                    return Err(AutoScalingError::Ec2(
                        "InvalidLaunchTemplateName.AlreadyExistsException",
                        "Launch template name already in use.".to_owned(),
                    ));
                }
                Ok(Step::Commit(
                    Txn::new()
                        .when(key.clone(), 0)
                        .put(key.clone(), value.clone()),
                    template.clone(),
                ))
            })
            .await?;
        let mut x = Xml::new();
        x.el("launchTemplate", |x| write_template(x, &created));
        Ok(x.finish())
    }

    async fn selected_templates(
        &self,
        params: &QueryParams,
    ) -> Result<Vec<StoredTemplate>, AutoScalingError> {
        let ids = ec2_list(params, "LaunchTemplateId");
        let names = ec2_list(params, "LaunchTemplateName");
        let all = self.templates().await?;
        if ids.is_empty() && names.is_empty() {
            return Ok(all);
        }
        let mut out = Vec::new();
        for id in ids {
            out.push(
                all.iter()
                    .find(|t| t.id == id)
                    .cloned()
                    .ok_or_else(|| id_not_found(id))?,
            );
        }
        for name in names {
            out.push(
                all.iter()
                    .find(|t| t.name == name)
                    .cloned()
                    .ok_or_else(not_found)?,
            );
        }
        Ok(out)
    }

    async fn describe_launch_templates(
        &self,
        params: &QueryParams,
    ) -> Result<String, AutoScalingError> {
        let templates = self.selected_templates(params).await?;
        let mut x = Xml::new();
        x.el("launchTemplates", |x| {
            for t in &templates {
                x.el("item", |x| write_template(x, t));
            }
        });
        Ok(x.finish())
    }

    async fn describe_launch_template_versions(
        &self,
        params: &QueryParams,
    ) -> Result<String, AutoScalingError> {
        let v = params.view();
        let template = self
            .find_template(v.get("LaunchTemplateId"), v.get("LaunchTemplateName"))
            .await?
            .ok_or_else(not_found)?;
        let wanted = ec2_list(params, "LaunchTemplateVersion");
        let versions: Vec<&TemplateVersion> = if wanted.is_empty() {
            template.versions.iter().rev().collect()
        } else {
            wanted
                .iter()
                .filter_map(|w| template.version(Some(w)))
                .collect()
        };
        let mut x = Xml::new();
        x.el("launchTemplateVersionSet", |x| {
            for ver in versions {
                x.el("item", |x| {
                    x.leaf("launchTemplateId", &template.id)
                        .leaf("launchTemplateName", &template.name)
                        .leaf("versionNumber", &ver.number.to_string())
                        .opt("versionDescription", ver.description.as_deref())
                        .leaf("createTime", &wire::xml::iso8601(ver.created_ms))
                        .leaf("createdBy", &template.created_by)
                        .leaf(
                            "defaultVersion",
                            if ver.number == template.default_version {
                                "true"
                            } else {
                                "false"
                            },
                        )
                        .el("launchTemplateData", |x| {
                            x.opt("instanceType", ver.instance_type.as_deref())
                                .opt("imageId", ver.image_id.as_deref())
                                .opt("userData", ver.user_data.as_deref());
                            if let Some(p) = &ver.iam_instance_profile {
                                x.el("iamInstanceProfile", |x| {
                                    let tag = if p.starts_with("arn:") { "arn" } else { "name" };
                                    x.leaf(tag, p);
                                });
                            }
                            if !ver.security_group_ids.is_empty() {
                                x.el("securityGroupIdSet", |x| {
                                    for id in &ver.security_group_ids {
                                        x.leaf("item", id);
                                    }
                                });
                            }
                        });
                });
            }
        });
        Ok(x.finish())
    }

    async fn delete_launch_template(
        &self,
        params: &QueryParams,
    ) -> Result<String, AutoScalingError> {
        let v = params.view();
        let (id, name) = (v.get("LaunchTemplateId"), v.get("LaunchTemplateName"));
        if id.is_none() && name.is_none() {
            return Err(missing("LaunchTemplateId or LaunchTemplateName"));
        }
        let template = self
            .find_template(id, name)
            .await?
            .ok_or_else(|| id.map_or_else(not_found, id_not_found))?;
        self.objects
            .commit(Txn::new().delete(format!("{TEMPLATE_PREFIX}{}", template.id)))
            .await?;
        let mut x = Xml::new();
        x.el("launchTemplate", |x| write_template(x, &template));
        Ok(x.finish())
    }
}

fn write_template(x: &mut Xml, t: &StoredTemplate) {
    let latest = t.versions.last().map_or(1, |v| v.number);
    x.leaf("launchTemplateId", &t.id)
        .leaf("launchTemplateName", &t.name)
        .leaf("createTime", &wire::xml::iso8601(t.created_ms))
        .leaf("createdBy", &t.created_by)
        .leaf("defaultVersionNumber", &t.default_version.to_string())
        .leaf("latestVersionNumber", &latest.to_string());
}
