//! The group operations: Create/Describe/Update/DeleteAutoScalingGroup,
//! SetDesiredCapacity, DescribeAutoScalingInstances, TerminateInstanceInAutoScalingGroup,
//! SetInstanceProtection and DescribeScalingActivities. They change records only; the
//! group controller ([`crate::controller`]) makes machines follow.

use crate::error::{invalid, AutoScalingError};
use crate::state::{
    group_key, Activity, GroupInstance, GroupTag, Lifecycle, StoredGroup, TemplateRef, GROUP_PREFIX,
};
use crate::AutoScaling;
use store::{Step, Txn};
use wire::query::QueryView;
use wire::xml::Xml;

/// A group's name, or the error AWS gives for a missing one.
fn group_name<'a>(q: &QueryView<'a>) -> Result<&'a str, AutoScalingError> {
    match q.get("AutoScalingGroupName") {
        Some(n) if !n.is_empty() && n.len() <= 255 => Ok(n),
        Some(_) => invalid("1 validation error detected: Value at 'autoScalingGroupName' failed to satisfy constraint: Member must have length less than or equal to 255"),
        None => invalid("1 validation error detected: Value null at 'autoScalingGroupName' failed to satisfy constraint: Member must not be null"),
    }
}

fn int(q: &QueryView<'_>, name: &str) -> Result<Option<i32>, AutoScalingError> {
    q.get(name)
        .map(|v| {
            v.parse::<i32>().map_err(|_| {
                AutoScalingError::Validation(format!(
                    "Value '{v}' for parameter {name} is not an integer."
                ))
            })
        })
        .transpose()
}

fn boolean(q: &QueryView<'_>, name: &str) -> Option<bool> {
    q.get(name).map(|v| v.eq_ignore_ascii_case("true"))
}

pub(crate) fn not_found(name: &str) -> AutoScalingError {
    AutoScalingError::Validation(format!(
        "AutoScalingGroup name not found - AutoScalingGroup '{name}' not found"
    ))
}

/// Checks min ≤ desired ≤ max with AWS's messages.
fn check_bounds(min: i32, max: i32, desired: i32) -> Result<(), AutoScalingError> {
    if min < 0 || max < 0 {
        return invalid("MinSize and MaxSize must not be negative.");
    }
    if min > max {
        return invalid(format!(
            "Max bound, {max}, must be greater than or equal to min bound, {min}"
        ));
    }
    if desired < min || desired > max {
        return invalid(format!(
            "Desired capacity:{desired} must be between the specified min size:{min} and max size:{max}"
        ));
    }
    Ok(())
}

/// The zones of a group: those given, else one per subnet of `VPCZoneIdentifier` (the
/// region's zones `a`, `b`, `c`… in subnet order, since Stevedore's subnets carry no
/// zone of their own here).
fn compute_zones(
    region: &str,
    zones: &[&str],
    vpc: Option<&str>,
) -> Result<Vec<String>, AutoScalingError> {
    if !zones.is_empty() {
        for z in zones {
            if !z.starts_with(region) {
                return invalid(format!("The availability zone '{z}' is not legal"));
            }
        }
        return Ok(zones.iter().map(|z| (*z).to_owned()).collect());
    }
    let subnets: Vec<&str> = vpc
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if subnets.is_empty() {
        return invalid("At least one Availability Zone or VPC Subnet is required.");
    }
    Ok(subnets
        .iter()
        .enumerate()
        .map(|(i, _)| format!("{region}{}", char::from(b'a' + (i % 26) as u8)))
        .collect())
}

impl AutoScaling {
    /// Every group.
    pub async fn groups(&self) -> Result<Vec<StoredGroup>, AutoScalingError> {
        Ok(self
            .objects
            .list::<StoredGroup>(GROUP_PREFIX)
            .await?
            .into_iter()
            .map(|(_, g, _)| g)
            .collect())
    }

    /// The group named `name_or_arn` (its name, or its ARN as ECS capacity providers
    /// hold it).
    pub async fn group(&self, name_or_arn: &str) -> Result<Option<StoredGroup>, AutoScalingError> {
        let name = name_or_arn
            .rsplit_once(":autoScalingGroupName/")
            .map_or(name_or_arn, |(_, n)| n);
        Ok(self
            .objects
            .get::<StoredGroup>(&group_key(name))
            .await?
            .map(|(g, _)| g))
    }

    /// Changes group `name` with `change` in one compare-and-swap; returns the group as
    /// committed.
    pub(crate) async fn update_group<F>(
        &self,
        name: &str,
        mut change: F,
    ) -> Result<StoredGroup, AutoScalingError>
    where
        F: FnMut(&mut StoredGroup) -> Result<(), AutoScalingError>,
    {
        // A plain loop rather than `Objects::retry`: `change` is a synchronous FnMut the
        // retried future could not borrow. Group writes are rare; a lost race retries.
        let key = group_key(name);
        for _ in 0..50 {
            let Some((mut group, rev)) = self.objects.get::<StoredGroup>(&key).await? else {
                return Err(not_found(name));
            };
            let before = group.clone();
            change(&mut group)?;
            if group == before {
                return Ok(group);
            }
            let txn = Txn::new()
                .when(key.clone(), rev)
                .put(key.clone(), store::objects::encode(&group)?);
            if self.objects.commit(txn).await? {
                return Ok(group);
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        Err(AutoScalingError::Store(store::ObjectsError::Contention {
            what: key,
        }))
    }

    /// Sets the desired capacity of `name` within its bounds, recording `cause` as the
    /// reason of the activities that follow (SetDesiredCapacity, managed scaling).
    pub async fn set_desired_capacity(
        &self,
        name: &str,
        desired: i32,
        cause: &str,
    ) -> Result<StoredGroup, AutoScalingError> {
        let now = self.now_ms();
        self.update_group(name, |g| {
            if desired > g.max {
                return invalid(format!("New SetDesiredCapacity value {desired} is above max value {} for the AutoScalingGroup.", g.max));
            }
            if desired < g.min {
                return invalid(format!("New SetDesiredCapacity value {desired} is below min value {} for the AutoScalingGroup.", g.min));
            }
            if desired != g.desired {
                g.pending_cause = Some(format!(
                    "At {} {cause} changing the desired capacity from {} to {desired}.",
                    wire::xml::iso8601_secs(now / 1000),
                    g.desired
                ));
                g.desired = desired;
            }
            Ok(())
        })
        .await
    }

    /// Sets `protected` on instances `ids` of group `name`; an id not in the group is refused.
    pub async fn set_instance_protection(
        &self,
        name: &str,
        ids: &[&str],
        protected: bool,
    ) -> Result<(), AutoScalingError> {
        self.update_group(name, |g| {
            for id in ids {
                let Some(i) = g.instances.iter_mut().find(|i| i.id == *id) else {
                    return invalid(format!(
                        "The instance {id} is not part of Auto Scaling group {name}."
                    ));
                };
                i.protected = protected;
            }
            Ok(())
        })
        .await
        .map(|_| ())
    }

    pub(crate) async fn create_auto_scaling_group(
        &self,
        q: &QueryView<'_>,
    ) -> Result<String, AutoScalingError> {
        let name = group_name(q)?.to_owned();
        let lt = q.structure("LaunchTemplate");
        if !q.has("LaunchTemplate") {
            if q.has("LaunchConfigurationName")
                || q.has("InstanceId")
                || q.has("MixedInstancesPolicy")
            {
                return invalid("Stevedore launches Auto Scaling instances from launch templates only: give LaunchTemplate (LaunchConfigurationName, InstanceId and MixedInstancesPolicy are not supported yet).");
            }
            return invalid("Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter.");
        }
        let (lt_id, lt_name) = (lt.get("LaunchTemplateId"), lt.get("LaunchTemplateName"));
        if lt_id.is_some() == lt_name.is_some() {
            return invalid(
                "Valid requests must contain either launchTemplateId or LaunchTemplateName",
            );
        }
        let template = self.find_template(lt_id, lt_name).await?.ok_or_else(|| {
            AutoScalingError::Validation(match lt_id {
                Some(id) => format!("You must use a valid fully-formed launch template. The specified launch template, with template ID {id}, does not exist."),
                None => format!("You must use a valid fully-formed launch template. The specified launch template, with template name {}, does not exist.", lt_name.unwrap_or("")),
            })
        })?;
        let version = lt.get("Version").unwrap_or("$Default").to_owned();
        let Some(ver) = template.version(Some(&version)) else {
            return invalid(format!("You must use a valid fully-formed launch template. The specified launch template version {version} does not exist."));
        };
        if ver.instance_type.is_none() {
            return invalid("You must use a valid fully-formed launch template. The launch template does not specify an instance type.");
        }
        let (Some(min), Some(max)) = (int(q, "MinSize")?, int(q, "MaxSize")?) else {
            return invalid("1 validation error detected: Value null at 'minSize' or 'maxSize' failed to satisfy constraint: Member must not be null");
        };
        let desired = int(q, "DesiredCapacity")?.unwrap_or(min);
        check_bounds(min, max, desired)?;
        let zones = compute_zones(
            &self.scope.region,
            &q.list("AvailabilityZones"),
            q.get("VPCZoneIdentifier"),
        )?;
        let mut tags = Vec::new();
        for t in q.members("Tags") {
            let Some(key) = t.get("Key") else {
                return invalid("Tag key must not be null.");
            };
            tags.push(GroupTag {
                key: key.to_owned(),
                value: t.get("Value").unwrap_or("").to_owned(),
                propagate_at_launch: boolean(&t, "PropagateAtLaunch").unwrap_or(false),
            });
        }
        let now = self.now_ms();
        let group = StoredGroup {
            arn: format!(
                "arn:aws:autoscaling:{}:{}:autoScalingGroup:{}:autoScalingGroupName/{name}",
                self.scope.region,
                self.scope.account_id,
                uuid::Uuid::new_v4()
            ),
            name: name.clone(),
            min,
            max,
            desired,
            template: TemplateRef {
                id: template.id.clone(),
                name: template.name.clone(),
                version,
            },
            zones,
            vpc_zone_identifier: q.get("VPCZoneIdentifier").map(str::to_owned),
            new_instances_protected: boolean(q, "NewInstancesProtectedFromScaleIn").unwrap_or(false),
            default_cooldown: int(q, "DefaultCooldown")?.unwrap_or(300),
            health_check_type: q.get("HealthCheckType").unwrap_or("EC2").to_owned(),
            health_check_grace_period: int(q, "HealthCheckGracePeriod")?.unwrap_or(0),
            termination_policies: {
                let p: Vec<String> = q.list("TerminationPolicies").into_iter().map(str::to_owned).collect();
                if p.is_empty() { vec!["Default".to_owned()] } else { p }
            },
            target_group_arns: q.list("TargetGroupARNs").into_iter().map(str::to_owned).collect(),
            tags,
            created_ms: now,
            deleting: false,
            instances: Vec::new(),
            activities: Vec::new(),
            hooks: Vec::new(),
            pending_cause: (desired > 0).then(|| {
                format!(
                    "At {} a user request created an AutoScalingGroup changing the desired capacity from 0 to {desired}.",
                    wire::xml::iso8601_secs(now / 1000)
                )
            }),
        };
        let key = group_key(&name);
        let value = store::objects::encode(&group)?;
        let committed = self
            .objects
            .commit(Txn::new().when(key.clone(), 0).put(key, value))
            .await?;
        if !committed {
            return Err(AutoScalingError::AlreadyExists(format!(
                "AutoScalingGroup by this name already exists - A group with the name {name} already exists"
            )));
        }
        self.wake();
        Ok(String::new())
    }

    pub(crate) async fn describe_auto_scaling_groups(
        &self,
        q: &QueryView<'_>,
    ) -> Result<String, AutoScalingError> {
        let names = q.list("AutoScalingGroupNames");
        let groups: Vec<StoredGroup> = self
            .groups()
            .await?
            .into_iter()
            .filter(|g| names.is_empty() || names.contains(&g.name.as_str()))
            .collect();
        let mut x = Xml::new();
        x.list("AutoScalingGroups", &groups, write_group);
        Ok(x.finish())
    }

    pub(crate) async fn update_auto_scaling_group(
        &self,
        q: &QueryView<'_>,
    ) -> Result<String, AutoScalingError> {
        let name = group_name(q)?.to_owned();
        let (min, max, desired) = (
            int(q, "MinSize")?,
            int(q, "MaxSize")?,
            int(q, "DesiredCapacity")?,
        );
        let template = if q.has("LaunchTemplate") {
            let lt = q.structure("LaunchTemplate");
            let t = self
                .find_template(lt.get("LaunchTemplateId"), lt.get("LaunchTemplateName"))
                .await?
                .ok_or_else(|| AutoScalingError::Validation("You must use a valid fully-formed launch template. The specified launch template does not exist.".into()))?;
            Some(TemplateRef {
                id: t.id,
                name: t.name,
                version: lt.get("Version").unwrap_or("$Default").to_owned(),
            })
        } else {
            None
        };
        let protect = boolean(q, "NewInstancesProtectedFromScaleIn");
        let zones = q.list("AvailabilityZones");
        let vpc = q.get("VPCZoneIdentifier");
        let region = self.scope.region.clone();
        let now = self.now_ms();
        self.update_group(&name, |g| {
            let new_min = min.unwrap_or(g.min);
            let new_max = max.unwrap_or(g.max);
            // As AWS: a new min above the desired capacity raises it, a new max below
            // lowers it, when DesiredCapacity is not given.
            let new_desired = desired.unwrap_or_else(|| g.desired.clamp(new_min.min(new_max), new_max));
            check_bounds(new_min, new_max, new_desired)?;
            if new_desired != g.desired {
                g.pending_cause = Some(format!(
                    "At {} a user request update of AutoScalingGroup constraints to min: {new_min}, max: {new_max}, desired: {new_desired} changing the desired capacity from {} to {new_desired}.",
                    wire::xml::iso8601_secs(now / 1000),
                    g.desired
                ));
            }
            (g.min, g.max, g.desired) = (new_min, new_max, new_desired);
            if let Some(t) = &template {
                g.template = t.clone();
            }
            if let Some(p) = protect {
                g.new_instances_protected = p;
            }
            if !zones.is_empty() || vpc.is_some() {
                g.zones = compute_zones(&region, &zones, vpc)?;
                g.vpc_zone_identifier = vpc.map(str::to_owned).or(g.vpc_zone_identifier.take());
            }
            Ok(())
        })
        .await?;
        self.wake();
        Ok(String::new())
    }

    pub(crate) async fn delete_auto_scaling_group(
        &self,
        q: &QueryView<'_>,
    ) -> Result<String, AutoScalingError> {
        let name = group_name(q)?.to_owned();
        let force = boolean(q, "ForceDelete").unwrap_or(false);
        let key = group_key(&name);
        self.objects
            .retry(&key, || async {
                let Some((mut g, rev)) = self.objects.get::<StoredGroup>(&key).await? else {
                    return Err(not_found(&name));
                };
                if g.instances.is_empty() {
                    return Ok(Step::Commit(Txn::new().when(key.clone(), rev).delete(key.clone()), ()));
                }
                if !force {
                    return Err(AutoScalingError::ResourceInUse(
                        "You cannot delete an AutoScalingGroup while there are instances or pending Spot instance request(s) still in the group.".into(),
                    ));
                }
                // The controller terminates every instance, then removes the group.
                g.deleting = true;
                (g.min, g.max, g.desired) = (0, 0, 0);
                for i in &mut g.instances {
                    i.protected = false;
                }
                Ok(Step::Commit(Txn::new().when(key.clone(), rev).put(key.clone(), store::objects::encode(&g)?), ()))
            })
            .await?;
        self.wake();
        Ok(String::new())
    }

    pub(crate) async fn set_desired_capacity_op(
        &self,
        q: &QueryView<'_>,
    ) -> Result<String, AutoScalingError> {
        let name = group_name(q)?;
        let Some(desired) = int(q, "DesiredCapacity")? else {
            return invalid("1 validation error detected: Value null at 'desiredCapacity' failed to satisfy constraint: Member must not be null");
        };
        self.set_desired_capacity(
            name,
            desired,
            "a user request explicitly set group desired capacity",
        )
        .await?;
        self.wake();
        Ok(String::new())
    }

    pub(crate) async fn describe_auto_scaling_instances(
        &self,
        q: &QueryView<'_>,
    ) -> Result<String, AutoScalingError> {
        let ids = q.list("InstanceIds");
        let groups = self.groups().await?;
        let mut x = Xml::new();
        x.el("AutoScalingInstances", |x| {
            for g in &groups {
                for i in &g.instances {
                    if !ids.is_empty() && !ids.contains(&i.id.as_str()) {
                        continue;
                    }
                    x.el("member", |x| {
                        x.leaf("InstanceId", &i.id)
                            .leaf("InstanceType", &i.instance_type)
                            .leaf("AutoScalingGroupName", &g.name)
                            .leaf("AvailabilityZone", &i.zone)
                            .leaf("LifecycleState", i.lifecycle.as_str())
                            .leaf(
                                "HealthStatus",
                                if i.healthy { "HEALTHY" } else { "UNHEALTHY" },
                            );
                        write_template_ref(x, i.template.as_ref());
                        x.leaf(
                            "ProtectedFromScaleIn",
                            if i.protected { "true" } else { "false" },
                        );
                    });
                }
            }
        });
        Ok(x.finish())
    }

    pub(crate) async fn terminate_instance_op(
        &self,
        q: &QueryView<'_>,
    ) -> Result<String, AutoScalingError> {
        let Some(id) = q.get("InstanceId") else {
            return invalid("1 validation error detected: Value null at 'instanceId' failed to satisfy constraint: Member must not be null");
        };
        let Some(decrement) = boolean(q, "ShouldDecrementDesiredCapacity") else {
            return invalid("1 validation error detected: Value null at 'shouldDecrementDesiredCapacity' failed to satisfy constraint: Member must not be null");
        };
        let groups = self.groups().await?;
        let Some(group) = groups
            .iter()
            .find(|g| g.instances.iter().any(|i| i.id == id))
        else {
            return invalid(format!(
                "Instance Id not found - No managed instance found for instance ID: {id}"
            ));
        };
        let now = self.now_ms();
        let activity_id = uuid::Uuid::new_v4().to_string();
        let committed = self
            .update_group(&group.name, |g| {
                if decrement && g.desired - 1 < g.min {
                    return invalid(format!("Currently, desiredSize equals minSize ({}). Terminating instance without replacement will violate group's min size constraint. Either set shouldDecrementDesiredCapacity flag to false or lower group's min size.", g.min));
                }
                let Some(i) = g.instances.iter_mut().find(|i| i.id == id) else {
                    return invalid(format!("Instance Id not found - No managed instance found for instance ID: {id}"));
                };
                if matches!(i.lifecycle, Lifecycle::Pending | Lifecycle::InService) {
                    i.lifecycle = Lifecycle::Terminating;
                    i.activity = Some(activity_id.clone());
                    let cause = if decrement {
                        format!("At {} instance {id} was taken out of service in response to a user request, shrinking the capacity from {} to {}.", wire::xml::iso8601_secs(now / 1000), g.desired, g.desired - 1)
                    } else {
                        format!("At {} instance {id} was taken out of service in response to a user request.", wire::xml::iso8601_secs(now / 1000))
                    };
                    let zone = i.zone.clone();
                    if decrement {
                        g.desired -= 1;
                    }
                    g.record(new_activity(&activity_id, format!("Terminating EC2 instance: {id}"), cause, now, &zone));
                }
                Ok(())
            })
            .await?;
        self.wake();
        let mut x = Xml::new();
        if let Some(a) = committed.activities.iter().find(|a| a.id == activity_id) {
            x.el("Activity", |x| write_activity(x, &committed.name, a));
        }
        Ok(x.finish())
    }

    pub(crate) async fn set_instance_protection_op(
        &self,
        q: &QueryView<'_>,
    ) -> Result<String, AutoScalingError> {
        let name = group_name(q)?;
        let ids = q.list("InstanceIds");
        if ids.len() > 50 {
            return invalid("The maximum number of instance IDs is 50.");
        }
        let Some(protected) = boolean(q, "ProtectedFromScaleIn") else {
            return invalid("1 validation error detected: Value null at 'protectedFromScaleIn' failed to satisfy constraint: Member must not be null");
        };
        self.set_instance_protection(name, &ids, protected).await?;
        Ok(String::new())
    }

    pub(crate) async fn describe_scaling_activities(
        &self,
        q: &QueryView<'_>,
    ) -> Result<String, AutoScalingError> {
        let ids = q.list("ActivityIds");
        let groups = match q.get("AutoScalingGroupName") {
            Some(name) => vec![self.group(name).await?.ok_or_else(|| not_found(name))?],
            None => self.groups().await?,
        };
        let max =
            usize::try_from(int(q, "MaxRecords")?.unwrap_or(100).clamp(1, 100)).unwrap_or(100);
        let mut all: Vec<(&str, &Activity)> = groups
            .iter()
            .flat_map(|g| g.activities.iter().map(move |a| (g.name.as_str(), a)))
            .filter(|(_, a)| ids.is_empty() || ids.contains(&a.id.as_str()))
            .collect();
        all.sort_by_key(|a| std::cmp::Reverse(a.1.start_ms));
        all.truncate(max);
        let mut x = Xml::new();
        x.list("Activities", all, |x, (g, a)| write_activity(x, g, a));
        Ok(x.finish())
    }
}

/// A new InProgress activity in `zone`.
pub(crate) fn new_activity(
    id: &str,
    description: String,
    cause: String,
    now_ms: i64,
    zone: &str,
) -> Activity {
    Activity {
        id: id.to_owned(),
        description,
        cause,
        start_ms: now_ms,
        end_ms: None,
        status: "InProgress".to_owned(),
        status_message: None,
        progress: 50,
        details: format!("{{\"Availability Zone\":\"{zone}\"}}"),
    }
}

fn write_template_ref(x: &mut Xml, t: Option<&TemplateRef>) {
    if let Some(t) = t {
        x.el("LaunchTemplate", |x| {
            x.leaf("LaunchTemplateId", &t.id)
                .leaf("LaunchTemplateName", &t.name)
                .leaf("Version", &t.version);
        });
    }
}

fn write_activity(x: &mut Xml, group: &str, a: &Activity) {
    x.leaf("ActivityId", &a.id)
        .leaf("AutoScalingGroupName", group)
        .leaf("Description", &a.description)
        .leaf("Cause", &a.cause)
        .leaf("StartTime", &wire::xml::iso8601(a.start_ms))
        .opt("EndTime", a.end_ms.map(wire::xml::iso8601).as_deref())
        .leaf("StatusCode", &a.status)
        .opt("StatusMessage", a.status_message.as_deref())
        .leaf("Progress", &a.progress.to_string())
        .leaf("Details", &a.details);
}

fn write_group(x: &mut Xml, g: &StoredGroup) {
    x.leaf("AutoScalingGroupName", &g.name)
        .leaf("AutoScalingGroupARN", &g.arn);
    write_template_ref(x, Some(&g.template));
    x.leaf("MinSize", &g.min.to_string())
        .leaf("MaxSize", &g.max.to_string())
        .leaf("DesiredCapacity", &g.desired.to_string())
        .leaf("DefaultCooldown", &g.default_cooldown.to_string())
        .strings("AvailabilityZones", &g.zones)
        .strings("LoadBalancerNames", Vec::<String>::new())
        .strings("TargetGroupARNs", &g.target_group_arns)
        .leaf("HealthCheckType", &g.health_check_type)
        .leaf("HealthCheckGracePeriod", &g.health_check_grace_period.to_string())
        .list("Instances", &g.instances, |x, i: &GroupInstance| {
            x.leaf("InstanceId", &i.id)
                .leaf("InstanceType", &i.instance_type)
                .leaf("AvailabilityZone", &i.zone)
                .leaf("LifecycleState", i.lifecycle.as_str())
                .leaf("HealthStatus", if i.healthy { "Healthy" } else { "Unhealthy" });
            write_template_ref(x, i.template.as_ref());
            x.leaf("ProtectedFromScaleIn", if i.protected { "true" } else { "false" });
        })
        .leaf("CreatedTime", &wire::xml::iso8601(g.created_ms))
        .strings("SuspendedProcesses", Vec::<String>::new())
        .opt("VPCZoneIdentifier", g.vpc_zone_identifier.as_deref())
        .strings("EnabledMetrics", Vec::<String>::new())
        .opt("Status", g.deleting.then_some("Delete in progress"))
        .list("Tags", &g.tags, |x, t: &GroupTag| {
            x.leaf("ResourceId", &g.name)
                .leaf("ResourceType", "auto-scaling-group")
                .leaf("Key", &t.key)
                .leaf("Value", &t.value)
                .leaf("PropagateAtLaunch", if t.propagate_at_launch { "true" } else { "false" });
        })
        .strings("TerminationPolicies", &g.termination_policies)
        .leaf("NewInstancesProtectedFromScaleIn", if g.new_instances_protected { "true" } else { "false" })
        .leaf(
            "ServiceLinkedRoleARN",
            &format!(
                "arn:aws:iam::{}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling",
                g.arn.split(':').nth(4).unwrap_or("")
            ),
        );
}
