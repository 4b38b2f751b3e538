//! Container instances: the machines of a cluster. Registration records the resources
//! and attributes an agent reports; the instance's identity (its id) survives
//! re-registration so a restarted agent stays the same instance.

use crate::error::{invalid, EcsError};
use crate::objects::{encode, instance_key, instance_prefix, Step, StoredInstance};
use crate::pagination::{page_size, paginate};
use crate::{cluster_name, now, ownership, Caller, Ecs};
use model::ecs::arn::{short_name, EcsResource};
use model::ecs::shapes::{
    ContainerInstance, ContainerInstanceField, ContainerInstanceHealthStatus,
    ContainerInstanceStatus, DeregisterContainerInstanceRequest,
    DeregisterContainerInstanceResponse, DescribeContainerInstancesRequest,
    DescribeContainerInstancesResponse, Failure, InstanceHealthCheckState,
    ListContainerInstancesRequest, ListContainerInstancesResponse,
    RegisterContainerInstanceRequest, RegisterContainerInstanceResponse, Resource,
    UpdateContainerInstancesStateRequest, UpdateContainerInstancesStateResponse,
};
use model::ecs::status::ContainerInstanceStatus as InstanceStatus;
use store::Txn;

/// How many custom (non-ECS) attributes one instance may carry.
pub(crate) const MAX_CUSTOM_ATTRIBUTES: usize = 10;

/// Whether ECS or the agent owns an attribute name (those do not count toward the limit).
pub(crate) fn is_builtin_attribute(name: &str) -> bool {
    name.starts_with("ecs.") || name.starts_with("com.amazonaws.ecs.")
}

impl Ecs {
    /// The id an instance reference names, checking an ARN's cluster and account.
    pub(crate) fn instance_id(&self, cluster: &str, reference: &str) -> Option<String> {
        if reference.starts_with("arn:") {
            match self.scope.parse(reference) {
                Ok(EcsResource::ContainerInstance { cluster: c, id }) if c == cluster => Some(id),
                _ => None,
            }
        } else {
            Some(short_name(reference).to_owned())
        }
    }

    /// Loads an instance of `cluster` by ARN or id.
    pub(crate) async fn load_instance(
        &self,
        cluster: &str,
        reference: &str,
    ) -> Result<Option<(StoredInstance, u64, String)>, EcsError> {
        let Some(id) = self.instance_id(cluster, reference) else {
            return Ok(None);
        };
        let key = instance_key(cluster, &id);
        Ok(self
            .objects
            .get::<StoredInstance>(&key)
            .await?
            .map(|(i, r)| (i, r, key)))
    }
}

/// The instance as the API shows it: counts and remaining resources from its books.
pub(crate) fn show(si: &StoredInstance) -> ContainerInstance {
    let mut i = si.instance.clone();
    let u = &si.usage;
    i.running_tasks_count = Some(i32::try_from(u.running).unwrap_or(i32::MAX));
    i.pending_tasks_count = Some(i32::try_from(u.pending).unwrap_or(i32::MAX));
    let remaining = i
        .registered_resources
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|mut r| {
            match r.name.as_deref() {
                Some("CPU") => {
                    r.integer_value = r
                        .integer_value
                        .map(|v| v.saturating_sub(i32::try_from(u.cpu).unwrap_or(i32::MAX)))
                }
                Some("MEMORY") => {
                    r.integer_value = r
                        .integer_value
                        .map(|v| v.saturating_sub(i32::try_from(u.memory).unwrap_or(i32::MAX)))
                }
                Some("GPU") => {
                    if let Some(set) = r.string_set_value.as_mut() {
                        set.retain(|g| !u.gpus.contains(g));
                    }
                }
                Some(name @ ("PORTS" | "PORTS_UDP")) => {
                    let used = if name == "PORTS" {
                        &u.tcp_ports
                    } else {
                        &u.udp_ports
                    };
                    let set = r.string_set_value.get_or_insert_with(Vec::new);
                    for p in used {
                        let p = p.to_string();
                        if !set.contains(&p) {
                            set.push(p);
                        }
                    }
                }
                _ => {}
            }
            r
        })
        .collect();
    i.remaining_resources = Some(remaining);
    i
}

fn check_resources(resources: &[Resource]) -> Result<(), EcsError> {
    for name in ["CPU", "MEMORY"] {
        match resources.iter().find(|r| r.name.as_deref() == Some(name)) {
            Some(r) if r.integer_value.is_some_and(|v| v >= 0) => {}
            Some(_) => {
                return invalid(format!(
                    "Resource {name} must have type INTEGER and a non-negative integerValue."
                ))
            }
            None => {
                return invalid(format!(
                    "totalResources must include {name} (type INTEGER)."
                ))
            }
        }
    }
    for r in resources {
        if matches!(r.name.as_deref(), Some("PORTS" | "PORTS_UDP")) {
            for p in r.string_set_value.iter().flatten() {
                if p.parse::<u16>().map_or(true, |v| v == 0) {
                    return invalid(format!(
                        "Invalid port '{p}' in resource {}: ports are 1 to 65535.",
                        r.name.as_deref().unwrap_or("")
                    ));
                }
            }
            if r.string_set_value.as_ref().is_some_and(|s| s.len() > 100) {
                return invalid("A container instance can reserve at most 100 ports.");
            }
        }
    }
    Ok(())
}

/// Ports the ECS agent reserves on every instance when the caller names none (SSH,
/// Docker's API, the agent's introspection and credential endpoints).
const DEFAULT_RESERVED_PORTS: [&str; 5] = ["22", "2375", "2376", "51678", "51679"];

/// The resources to register: those given, with CPU and MEMORY derived from the
/// identity document's instance type when the caller leaves them out (as AWS derives
/// them from the instance it knows).
fn compute_registered_resources(
    given: Option<&[Resource]>,
    instance_type: Option<&str>,
) -> Result<Vec<Resource>, EcsError> {
    let mut resources = given.map(<[Resource]>::to_vec).unwrap_or_default();
    let missing = |rs: &[Resource], n: &str| !rs.iter().any(|r| r.name.as_deref() == Some(n));
    if !missing(&resources, "CPU") && !missing(&resources, "MEMORY") {
        return Ok(resources);
    }
    let Some(t) = instance_type else {
        return invalid("totalResources must include CPU and MEMORY (type INTEGER) when no instanceIdentityDocument names the instance type.");
    };
    let Some((cpu, memory)) = crate::instance_types::compute_instance_resources(t) else {
        return invalid(format!(
            "Stevedore does not know the resources of instance type '{t}': give totalResources with CPU and MEMORY (type INTEGER)."
        ));
    };
    let integer = |name: &str, v: i32| Resource {
        name: Some(name.to_owned()),
        type_: Some("INTEGER".to_owned()),
        integer_value: Some(v),
        ..Resource::default()
    };
    let string_set = |name: &str, v: Vec<String>| Resource {
        name: Some(name.to_owned()),
        type_: Some("STRINGSET".to_owned()),
        string_set_value: Some(v),
        ..Resource::default()
    };
    if missing(&resources, "CPU") {
        resources.push(integer("CPU", cpu));
    }
    if missing(&resources, "MEMORY") {
        resources.push(integer("MEMORY", memory));
    }
    if missing(&resources, "PORTS") {
        let ports = DEFAULT_RESERVED_PORTS
            .iter()
            .map(|p| (*p).to_owned())
            .collect();
        resources.push(string_set("PORTS", ports));
    }
    if missing(&resources, "PORTS_UDP") {
        resources.push(string_set("PORTS_UDP", Vec::new()));
    }
    Ok(resources)
}

/// Fields an EC2 instance identity document tells us, when the caller sends one.
#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct IdentityDocument {
    instance_id: Option<String>,
    availability_zone: Option<String>,
    instance_type: Option<String>,
}

pub(crate) async fn register_container_instance(
    ecs: &Ecs,
    req: RegisterContainerInstanceRequest,
    caller: &Caller,
) -> Result<RegisterContainerInstanceResponse, EcsError> {
    let (cluster, _, _) = ecs.active_cluster(req.cluster.as_deref()).await?;
    if let Some(tags) = &req.tags {
        model::ecs::names::check_tags(tags).map_err(EcsError::InvalidParameter)?;
    }
    let mut attributes = req.attributes.clone().unwrap_or_default();
    // The Fargate provisioner's agents prove themselves with a secret attribute.
    let fargate = ecs.take_fargate_marker(&mut attributes)?;
    for a in &attributes {
        if !is_builtin_attribute(&a.name) {
            model::ecs::names::check_attribute_name(&a.name).map_err(EcsError::InvalidParameter)?;
        }
    }
    if attributes
        .iter()
        .filter(|a| !is_builtin_attribute(&a.name))
        .count()
        > MAX_CUSTOM_ATTRIBUTES
    {
        return Err(EcsError::AttributeLimitExceeded(format!(
            "A container instance can have at most {MAX_CUSTOM_ATTRIBUTES} custom attributes."
        )));
    }
    let doc: IdentityDocument = match req.instance_identity_document.as_deref() {
        Some(d) if !d.trim().is_empty() => serde_json::from_str(d).map_err(|e| {
            EcsError::InvalidParameter(format!(
                "instanceIdentityDocument is not a valid identity document: {e}."
            ))
        })?,
        _ => IdentityDocument::default(),
    };
    let resources =
        compute_registered_resources(req.total_resources.as_deref(), doc.instance_type.as_deref())?;
    check_resources(&resources)?;
    for (name, value) in [
        ("ecs.availability-zone", &doc.availability_zone),
        ("ecs.instance-type", &doc.instance_type),
    ] {
        if let Some(v) = value {
            if !attributes.iter().any(|a| a.name == name) {
                attributes.push(model::ecs::shapes::Attribute {
                    name: name.into(),
                    value: Some(v.clone()),
                    target_type: None,
                    target_id: None,
                });
            }
        }
    }
    let id = match &req.container_instance_arn {
        Some(arn) => ecs.instance_id(&cluster, arn).ok_or_else(|| {
            EcsError::InvalidParameter(format!(
                "containerInstanceArn '{arn}' is not a container instance of cluster '{cluster}'."
            ))
        })?,
        None => uuid::Uuid::new_v4().simple().to_string(),
    };
    let key = instance_key(&cluster, &id);
    let instance = ecs
        .objects
        .retry(&key, || async {
            let existing = ecs.objects.get::<StoredInstance>(&key).await?;
            if req.container_instance_arn.is_some() && existing.is_none() {
                return invalid(format!(
                    "Container instance '{id}' is not registered in cluster '{cluster}'."
                ));
            }
            let rev = existing.as_ref().map_or(0, |(_, r)| *r);
            if let Some((si, _)) = &existing {
                ownership::check_owner(
                    caller,
                    si.owner.as_ref(),
                    "ecs:RegisterContainerInstance",
                    &ecs.scope.container_instance(&cluster, &id),
                    "the container instance was registered by another principal",
                )?;
            }
            let (prior, usage, owner) = match existing {
                Some((si, _)) => (Some(si.instance), si.usage, si.owner),
                None => (None, Default::default(), None),
            };
            // The first registration binds the instance; an ownerless (older) one is
            // bound by the caller that registers it again.
            let owner = owner.unwrap_or_else(|| ownership::InstanceOwner::of(caller));
            let instance = ContainerInstance {
                container_instance_arn: Some(ecs.scope.container_instance(&cluster, &id)),
                ec2_instance_id: caller
                    .instance_id()
                    .map(str::to_owned)
                    .or_else(|| doc.instance_id.clone())
                    .or_else(|| prior.as_ref().and_then(|p| p.ec2_instance_id.clone()))
                    .or_else(|| Some(format!("i-{}", &id[..17.min(id.len())]))),
                version: Some(prior.as_ref().and_then(|p| p.version).unwrap_or(0) + 1),
                version_info: req.version_info.clone(),
                remaining_resources: Some(resources.clone()),
                registered_resources: Some(resources.clone()),
                status: Some(InstanceStatus::Active),
                agent_connected: Some(false),
                running_tasks_count: Some(0),
                pending_tasks_count: Some(0),
                attributes: Some(attributes.clone()),
                registered_at: Some(
                    prior
                        .as_ref()
                        .and_then(|p| p.registered_at)
                        .unwrap_or_else(now),
                ),
                attachments: Some(Vec::new()),
                tags: Some(
                    req.tags
                        .clone()
                        .or_else(|| prior.as_ref().and_then(|p| p.tags.clone()))
                        .unwrap_or_default(),
                ),
                ..ContainerInstance::default()
            };
            let stored = StoredInstance {
                instance,
                usage: usage.clone(),
                fargate,
                owner: Some(owner),
                agent_session: None,
            };
            Ok(Step::Commit(
                Txn::new()
                    .when(key.clone(), rev)
                    .put(key.clone(), encode(&stored)?),
                show(&stored),
            ))
        })
        .await?;
    tracing::info!(cluster = %cluster, instance = %id, "Container instance registered.");
    Ok(RegisterContainerInstanceResponse {
        container_instance: Some(instance),
    })
}

/// Applies `change` to one instance with compare-and-swap; `None` if it does not exist.
pub(crate) async fn modify_instance(
    ecs: &Ecs,
    cluster: &str,
    reference: &str,
    change: impl Fn(&mut ContainerInstance) -> Result<(), EcsError>,
) -> Result<Option<ContainerInstance>, EcsError> {
    ecs.objects
        .retry(reference, || async {
            let Some((mut si, rev, key)) = ecs.load_instance(cluster, reference).await? else {
                return Ok(Step::Done(None));
            };
            change(&mut si.instance)?;
            si.instance.version = Some(si.instance.version.unwrap_or(0) + 1);
            Ok(Step::Commit(
                Txn::new().when(key.clone(), rev).put(key, encode(&si)?),
                Some(show(&si)),
            ))
        })
        .await
}

pub(crate) async fn deregister_container_instance(
    ecs: &Ecs,
    req: DeregisterContainerInstanceRequest,
    _: &Caller,
) -> Result<DeregisterContainerInstanceResponse, EcsError> {
    let (cluster, _, _) = ecs.active_cluster(req.cluster.as_deref()).await?;
    let i = modify_instance(ecs, &cluster, &req.container_instance, |i| {
        if i.status == Some(InstanceStatus::Inactive) {
            return invalid("The container instance is already deregistered.");
        }
        i.status = Some(InstanceStatus::Inactive);
        i.agent_connected = Some(false);
        Ok(())
    })
    .await?
    .ok_or_else(|| {
        EcsError::InvalidParameter(format!(
            "Container instance '{}' not found in cluster '{cluster}'.",
            req.container_instance
        ))
    })?;
    tracing::info!(cluster = %cluster, instance = %req.container_instance, "Container instance deregistered.");
    Ok(DeregisterContainerInstanceResponse {
        container_instance: Some(i),
    })
}

fn present(mut i: ContainerInstance, include: &[ContainerInstanceField]) -> ContainerInstance {
    if !include.contains(&ContainerInstanceField::Tags) {
        i.tags = None;
    }
    if include.contains(&ContainerInstanceField::ContainerInstanceHealth) {
        // No health checks run against instances yet, so there is nothing to report.
        i.health_status = Some(ContainerInstanceHealthStatus {
            overall_status: Some(InstanceHealthCheckState::InsufficientData),
            details: Some(Vec::new()),
        });
    }
    i
}

pub(crate) async fn describe_container_instances(
    ecs: &Ecs,
    req: DescribeContainerInstancesRequest,
    _: &Caller,
) -> Result<DescribeContainerInstancesResponse, EcsError> {
    let (cluster, _, _) = ecs.active_cluster(req.cluster.as_deref()).await?;
    if req.container_instances.is_empty() || req.container_instances.len() > 100 {
        return invalid("containerInstances must name between 1 and 100 container instances.");
    }
    let include = req.include.clone().unwrap_or_default();
    let mut out = Vec::new();
    let mut failures = Vec::new();
    for r in &req.container_instances {
        match ecs.load_instance(&cluster, r).await? {
            // Hidden Fargate capacity does not exist for the user.
            Some((si, _, _)) if !si.fargate => out.push(present(show(&si), &include)),
            Some(_) | None => failures.push(Failure {
                arn: Some(if r.starts_with("arn:") {
                    r.clone()
                } else {
                    ecs.scope.container_instance(&cluster, r)
                }),
                reason: Some("MISSING".into()),
                detail: None,
            }),
        }
    }
    Ok(DescribeContainerInstancesResponse {
        container_instances: Some(out),
        failures: Some(failures),
    })
}

pub(crate) async fn list_container_instances(
    ecs: &Ecs,
    req: ListContainerInstancesRequest,
    _: &Caller,
) -> Result<ListContainerInstancesResponse, EcsError> {
    let cluster = cluster_name(req.cluster.as_deref()).to_owned();
    ecs.active_cluster(Some(&cluster)).await?;
    let size = page_size(req.max_results, 100)?;
    let filter = match req
        .filter
        .as_deref()
        .map(str::trim)
        .filter(|f| !f.is_empty())
    {
        Some(f) => Some(
            placement::parse_expression(f)
                .map_err(|e| EcsError::InvalidParameter(e.to_string()))?,
        ),
        None => None,
    };
    let status = req.status.map(ContainerInstanceStatus::as_str);
    let items = ecs
        .objects
        .list::<StoredInstance>(&instance_prefix(&cluster))
        .await?
        .into_iter()
        .filter(|(_, si, _)| !si.fargate)
        .filter(|(_, si, _)| match status {
            Some(s) => si.instance.status.map(InstanceStatus::as_str) == Some(s),
            None => si.instance.status != Some(InstanceStatus::Inactive),
        })
        .filter(|(_, si, _)| {
            filter
                .as_ref()
                .is_none_or(|f| f.matches(&crate::view::to_engine(si)))
        })
        .map(|(k, si, _)| (k, si.instance.container_instance_arn.unwrap_or_default()))
        .collect();
    let page = paginate(items, req.next_token.as_deref(), size, false)?;
    Ok(ListContainerInstancesResponse {
        container_instance_arns: Some(page.items),
        next_token: page.next_token,
    })
}

pub(crate) async fn update_container_instances_state(
    ecs: &Ecs,
    req: UpdateContainerInstancesStateRequest,
    _: &Caller,
) -> Result<UpdateContainerInstancesStateResponse, EcsError> {
    let (cluster, _, _) = ecs.active_cluster(req.cluster.as_deref()).await?;
    let target = match req.status {
        ContainerInstanceStatus::Active => InstanceStatus::Active,
        ContainerInstanceStatus::Draining => InstanceStatus::Draining,
        other => {
            return invalid(format!(
                "Container instance status can only be set to ACTIVE or DRAINING, not {}.",
                other.as_str()
            ))
        }
    };
    if req.container_instances.is_empty() || req.container_instances.len() > 10 {
        return invalid("containerInstances must name between 1 and 10 container instances.");
    }
    let mut out = Vec::new();
    let mut failures = Vec::new();
    for r in &req.container_instances {
        let changed = modify_instance(ecs, &cluster, r, |i| {
            if i.status == Some(InstanceStatus::Inactive) {
                return invalid(format!(
                    "Container instance '{r}' is deregistered; its state cannot change."
                ));
            }
            i.status = Some(target);
            Ok(())
        })
        .await?;
        match changed {
            Some(i) => out.push(present(i, &[])),
            None => failures.push(Failure {
                arn: Some(r.clone()),
                reason: Some("MISSING".into()),
                detail: None,
            }),
        }
    }
    Ok(UpdateContainerInstancesStateResponse {
        container_instances: Some(out),
        failures: Some(failures),
    })
}

#[cfg(test)]
mod resource_tests {
    use super::*;

    fn value(rs: &[Resource], name: &str) -> Option<i32> {
        rs.iter()
            .find(|r| r.name.as_deref() == Some(name))
            .and_then(|r| r.integer_value)
    }

    #[test]
    fn given_resources_win_over_the_instance_type() {
        let given = [Resource {
            name: Some("CPU".into()),
            integer_value: Some(512),
            ..Resource::default()
        }];
        let rs = compute_registered_resources(Some(&given), Some("m5.large")).unwrap_or_default();
        assert_eq!(value(&rs, "CPU"), Some(512));
        assert_eq!(value(&rs, "MEMORY"), Some(8192));
        assert!(check_resources(&rs).is_ok());
    }

    #[test]
    fn no_resources_and_no_known_type_is_refused() {
        assert!(compute_registered_resources(None, None).is_err());
        assert!(compute_registered_resources(None, Some("z1.big")).is_err());
        let rs = compute_registered_resources(None, Some("t3.small")).unwrap_or_default();
        assert_eq!(value(&rs, "CPU"), Some(2048));
        assert!(check_resources(&rs).is_ok());
    }
}
