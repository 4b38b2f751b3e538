//! ECS capacity providers backed by Auto Scaling groups: Create, Describe, Update and
//! DeleteCapacityProvider, durable under `ecs/capacity-provider/<name>`, and the rules
//! that tie them to groups and clusters (a group serves one provider; a provider with
//! managed scaling joins one cluster). FARGATE and FARGATE_SPOT are listed as AWS lists
//! them, never stored.
//!
//! ECS reads the groups through [`AutoScalingGroups`], which the binary implements over
//! the Auto Scaling service (ECS must not depend on it).

use crate::error::{invalid, EcsError};
use crate::{Caller, Ecs};
use model::ecs::shapes::{
    AutoScalingGroupProvider, CapacityProvider, CapacityProviderStatus, CapacityProviderType,
    CapacityProviderUpdateStatus, CreateCapacityProviderRequest, CreateCapacityProviderResponse,
    DeleteCapacityProviderRequest, DeleteCapacityProviderResponse,
    DescribeCapacityProvidersRequest, DescribeCapacityProvidersResponse, Failure, ManagedDraining,
    ManagedScaling, ManagedScalingStatus, ManagedTerminationProtection,
    UpdateCapacityProviderRequest, UpdateCapacityProviderResponse,
};
use store::{Step, Txn};

/// Where capacity providers live.
pub(crate) const PREFIX: &str = "ecs/capacity-provider/";

/// What ECS needs to know of an Auto Scaling group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupFacts {
    /// Its name.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// Desired capacity and bounds.
    pub desired: i32,
    /// Minimum size.
    pub min: i32,
    /// Maximum size.
    pub max: i32,
    /// `NewInstancesProtectedFromScaleIn`.
    pub new_instances_protected: bool,
    /// Its instances that count toward capacity (Pending and InService), by EC2 id.
    pub instances: Vec<String>,
    /// The instance type it launches (from its launch template), if known: managed
    /// scaling sizes the instances waiting tasks need with it.
    pub instance_type: Option<String>,
    /// Whether it has ECS's managed draining termination hook
    /// ([`crate::capacity_scaling::DRAINING_HOOK`]).
    pub draining_hook: bool,
    /// Its instances in `Terminating:Wait` that the draining hook still holds.
    pub held: Vec<String>,
}

/// The Auto Scaling groups capacity providers name, as the binary wires them.
#[async_trait::async_trait]
pub trait AutoScalingGroups: Send + Sync + 'static {
    /// The group with this ARN (or name), if it exists.
    async fn group(&self, arn: &str) -> Option<GroupFacts>;
    /// Sets its desired capacity (managed scaling), with the cause its activity shows.
    async fn set_desired_capacity(
        &self,
        arn: &str,
        desired: i32,
        cause: &str,
    ) -> Result<(), String>;
    /// Adds (`present`) or removes ECS's managed draining termination hook on the group.
    async fn set_draining_hook(&self, arn: &str, present: bool) -> Result<(), String>;
    /// Completes with CONTINUE (`complete`) or heartbeats the draining hook's lifecycle
    /// action on `instance_id`.
    async fn draining_action(
        &self,
        arn: &str,
        instance_id: &str,
        complete: bool,
    ) -> Result<(), String>;
}

/// Puts ECS's draining hook on the group of `asg` when its managed draining is on,
/// removes it when off (as ECS does on CreateCapacityProvider / UpdateCapacityProvider /
/// DeleteCapacityProvider).
/// A failure is logged: the managed draining round sets the hook again (level-triggered).
pub(crate) async fn sync_draining_hook(ecs: &Ecs, asg: &AutoScalingGroupProvider, present: bool) {
    let Some(groups) = ecs.groups.clone() else {
        return;
    };
    let on = present && asg.managed_draining != Some(ManagedDraining::Disabled);
    if let Err(error) = groups
        .set_draining_hook(&asg.auto_scaling_group_arn, on)
        .await
    {
        tracing::warn!(%error, group = %asg.auto_scaling_group_arn, "The managed draining hook was not set; the next round retries.");
    }
}

/// A capacity provider's ARN.
pub(crate) fn provider_arn(ecs: &Ecs, name: &str) -> String {
    format!(
        "arn:aws:ecs:{}:{}:capacity-provider/{name}",
        ecs.scope.region, ecs.scope.account_id
    )
}

/// The stored providers.
pub(crate) async fn stored(ecs: &Ecs) -> Result<Vec<CapacityProvider>, EcsError> {
    Ok(ecs
        .objects
        .list::<CapacityProvider>(PREFIX)
        .await?
        .into_iter()
        .map(|(_, p, _)| p)
        .collect())
}

/// The names of the stored (Auto Scaling group) providers.
pub(crate) async fn stored_names(ecs: &Ecs) -> Result<Vec<String>, EcsError> {
    Ok(stored(ecs)
        .await?
        .into_iter()
        .filter_map(|p| p.name)
        .collect())
}

fn fargate_listing(ecs: &Ecs, name: &str, kind: CapacityProviderType) -> CapacityProvider {
    CapacityProvider {
        capacity_provider_arn: Some(provider_arn(ecs, name)),
        name: Some(name.to_owned()),
        status: Some(CapacityProviderStatus::Active),
        tags: Some(Vec::new()),
        type_: Some(kind),
        ..CapacityProvider::default()
    }
}

/// Checks a new provider's name as AWS does.
fn check_name(name: &str) -> Result<(), EcsError> {
    let valid = (1..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return invalid("The specified capacity provider name is invalid. Up to 255 characters are allowed, including letters (upper and lowercase), numbers, underscores, and hyphens.");
    }
    let lower = name.to_ascii_lowercase();
    if ["aws", "ecs", "fargate"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        return Err(EcsError::Client(
            "The specified capacity provider name is invalid. Capacity provider names cannot be prefixed with \"aws\", \"ecs\", or \"fargate\".".into(),
        ));
    }
    Ok(())
}

/// Managed scaling with AWS's defaults filled in, and its ranges checked.
fn complete_scaling(given: Option<&ManagedScaling>) -> Result<ManagedScaling, EcsError> {
    let g = given.cloned().unwrap_or_default();
    let out = ManagedScaling {
        status: Some(g.status.unwrap_or(ManagedScalingStatus::Disabled)),
        target_capacity: Some(g.target_capacity.unwrap_or(100)),
        minimum_scaling_step_size: Some(g.minimum_scaling_step_size.unwrap_or(1)),
        maximum_scaling_step_size: Some(g.maximum_scaling_step_size.unwrap_or(10_000)),
        instance_warmup_period: Some(g.instance_warmup_period.unwrap_or(300)),
    };
    let within = |v: Option<i32>, lo: i32, hi: i32| v.is_some_and(|v| (lo..=hi).contains(&v));
    if !within(out.target_capacity, 1, 100) {
        return invalid("The managed scaling target capacity must be between 1 and 100.");
    }
    if !within(out.minimum_scaling_step_size, 1, 10_000)
        || !within(out.maximum_scaling_step_size, 1, 10_000)
    {
        return invalid("The managed scaling step sizes must be between 1 and 10000.");
    }
    if out.minimum_scaling_step_size > out.maximum_scaling_step_size {
        return invalid("The managed scaling minimum scaling step size cannot be greater than the maximum scaling step size.");
    }
    if !within(out.instance_warmup_period, 0, 10_000) {
        return invalid("The managed scaling instance warmup period must be between 0 and 10000.");
    }
    Ok(out)
}

/// Managed termination protection needs managed scaling and a group protecting new
/// instances from scale in.
fn check_protection(
    provider: &AutoScalingGroupProvider,
    group: &GroupFacts,
) -> Result<(), EcsError> {
    if provider.managed_termination_protection != Some(ManagedTerminationProtection::Enabled) {
        return Ok(());
    }
    let scaling = provider.managed_scaling.as_ref().and_then(|s| s.status)
        == Some(ManagedScalingStatus::Enabled);
    if !scaling || !group.new_instances_protected {
        return Err(EcsError::Client("The managed termination protection setting for the capacity provider is invalid. To enable managed termination protection for a capacity provider, the Auto Scaling group must have instance protection from scale in enabled and managed scaling must be enabled.".into()));
    }
    Ok(())
}

pub(crate) async fn create_capacity_provider(
    ecs: &Ecs,
    req: CreateCapacityProviderRequest,
    _: &Caller,
) -> Result<CreateCapacityProviderResponse, EcsError> {
    check_name(&req.name)?;
    if req.managed_instances_provider.is_some() {
        return invalid("Stevedore serves capacity providers backed by Auto Scaling groups only: give autoScalingGroupProvider (managedInstancesProvider is not supported yet).");
    }
    let Some(mut asg) = req.auto_scaling_group_provider.clone() else {
        return invalid("The autoScalingGroupProvider parameter is required.");
    };
    let Some(groups) = ecs.groups.clone() else {
        return Err(EcsError::Client(
            "This server has no Auto Scaling groups.".into(),
        ));
    };
    let Some(group) = groups.group(&asg.auto_scaling_group_arn).await else {
        return Err(EcsError::Client(format!(
            "The specified Auto Scaling group ARN {} is not valid. Specify a valid Auto Scaling group ARN and try again.",
            asg.auto_scaling_group_arn
        )));
    };
    asg.auto_scaling_group_arn.clone_from(&group.arn);
    asg.managed_scaling = Some(complete_scaling(asg.managed_scaling.as_ref())?);
    asg.managed_termination_protection = Some(
        asg.managed_termination_protection
            .unwrap_or(ManagedTerminationProtection::Disabled),
    );
    asg.managed_draining = Some(asg.managed_draining.unwrap_or(ManagedDraining::Enabled));
    check_protection(&asg, &group)?;
    if let Some(tags) = &req.tags {
        model::ecs::names::check_tags(tags).map_err(EcsError::InvalidParameter)?;
    }
    let provider = CapacityProvider {
        capacity_provider_arn: Some(provider_arn(ecs, &req.name)),
        name: Some(req.name.clone()),
        status: Some(CapacityProviderStatus::Active),
        auto_scaling_group_provider: Some(asg),
        tags: Some(req.tags.clone().unwrap_or_default()),
        type_: Some(CapacityProviderType::Ec2Autoscaling),
        ..CapacityProvider::default()
    };
    let key = format!("{PREFIX}{}", req.name);
    let value = store::objects::encode(&provider).map_err(EcsError::from)?;
    ecs.objects
        .retry(&key, || async {
            let all = stored(ecs).await?;
            if all.iter().any(|p| p.name.as_deref() == Some(req.name.as_str())) {
                return Err(EcsError::Client(format!(
                    "The specified capacity provider '{}' already exists. To change the configuration of an existing capacity provider, update the capacity provider.",
                    req.name
                )));
            }
            let used = all.iter().any(|p| {
                p.auto_scaling_group_provider
                    .as_ref()
                    .is_some_and(|a| a.auto_scaling_group_arn == group.arn)
            });
            if used {
                return Err(EcsError::Client(format!(
                    "The specified Auto Scaling group ARN is already being used by another capacity provider. Specify a unique Auto Scaling group ARN and try again. ({})",
                    group.arn
                )));
            }
            Ok(Step::Commit(
                Txn::new().when(key.clone(), 0).put(key.clone(), value.clone()),
                (),
            ))
        })
        .await?;
    if let Some(asg) = &provider.auto_scaling_group_provider {
        sync_draining_hook(ecs, asg, true).await;
    }
    Ok(CreateCapacityProviderResponse {
        capacity_provider: Some(provider),
    })
}

pub(crate) async fn describe_capacity_providers(
    ecs: &Ecs,
    req: DescribeCapacityProvidersRequest,
    _: &Caller,
) -> Result<DescribeCapacityProvidersResponse, EcsError> {
    let mut all = vec![
        fargate_listing(
            ecs,
            crate::tasks::fargate::FARGATE,
            CapacityProviderType::Fargate,
        ),
        fargate_listing(
            ecs,
            crate::tasks::fargate::FARGATE_SPOT,
            CapacityProviderType::FargateSpot,
        ),
    ];
    all.extend(stored(ecs).await?);
    let Some(wanted) = req.capacity_providers.filter(|w| !w.is_empty()) else {
        return Ok(DescribeCapacityProvidersResponse {
            capacity_providers: Some(all),
            failures: Some(Vec::new()),
            next_token: None,
        });
    };
    let mut found = Vec::new();
    let mut failures = Vec::new();
    for w in wanted {
        match all.iter().find(|p| {
            p.name.as_deref() == Some(w.as_str())
                || p.capacity_provider_arn.as_deref() == Some(w.as_str())
        }) {
            Some(p) => found.push(p.clone()),
            None => failures.push(Failure {
                arn: Some(if w.starts_with("arn:") {
                    w.clone()
                } else {
                    provider_arn(ecs, &w)
                }),
                reason: Some("MISSING".into()),
                detail: None,
            }),
        }
    }
    Ok(DescribeCapacityProvidersResponse {
        capacity_providers: Some(found),
        failures: Some(failures),
        next_token: None,
    })
}

/// The name in `name_or_arn`.
fn provider_name(name_or_arn: &str) -> &str {
    name_or_arn
        .rsplit_once(":capacity-provider/")
        .map_or(name_or_arn, |(_, n)| n)
}

fn not_found(name: &str) -> EcsError {
    EcsError::Client(format!("The specified capacity provider '{name}' does not exist. Specify a valid name or ARN and try again."))
}

pub(crate) async fn update_capacity_provider(
    ecs: &Ecs,
    req: UpdateCapacityProviderRequest,
    _: &Caller,
) -> Result<UpdateCapacityProviderResponse, EcsError> {
    let name = provider_name(&req.name).to_owned();
    let Some(update) = req.auto_scaling_group_provider.clone() else {
        return invalid("The autoScalingGroupProvider parameter is required.");
    };
    let key = format!("{PREFIX}{name}");
    let groups = ecs.groups.clone();
    let updated = ecs
        .objects
        .retry(&key, || async {
            let Some((mut p, rev)) = ecs.objects.get::<CapacityProvider>(&key).await? else {
                return Err(not_found(&name));
            };
            let Some(asg) = p.auto_scaling_group_provider.as_mut() else {
                return Err(not_found(&name));
            };
            if let Some(s) = &update.managed_scaling {
                asg.managed_scaling = Some(complete_scaling(Some(s))?);
            }
            if let Some(t) = update.managed_termination_protection {
                asg.managed_termination_protection = Some(t);
            }
            if let Some(d) = update.managed_draining {
                asg.managed_draining = Some(d);
            }
            if let Some(g) = &groups {
                if let Some(facts) = g.group(&asg.auto_scaling_group_arn).await {
                    check_protection(asg, &facts)?;
                }
            }
            p.update_status = Some(CapacityProviderUpdateStatus::UpdateComplete);
            Ok(Step::Commit(
                Txn::new().when(key.clone(), rev).put(
                    key.clone(),
                    store::objects::encode(&p).map_err(EcsError::from)?,
                ),
                p,
            ))
        })
        .await?;
    if let Some(asg) = &updated.auto_scaling_group_provider {
        sync_draining_hook(ecs, asg, true).await;
    }
    Ok(UpdateCapacityProviderResponse {
        capacity_provider: Some(updated),
    })
}

pub(crate) async fn delete_capacity_provider(
    ecs: &Ecs,
    req: DeleteCapacityProviderRequest,
    _: &Caller,
) -> Result<DeleteCapacityProviderResponse, EcsError> {
    let name = provider_name(&req.capacity_provider).to_owned();
    if name == crate::tasks::fargate::FARGATE || name == crate::tasks::fargate::FARGATE_SPOT {
        return Err(EcsError::Client(format!(
            "The specified capacity provider '{name}' is reserved and cannot be deleted."
        )));
    }
    let key = format!("{PREFIX}{name}");
    let clusters = ecs
        .objects
        .list::<model::ecs::shapes::Cluster>(&crate::objects::cluster_key(""))
        .await?;
    // A deleted (INACTIVE) cluster keeps its record, not its providers.
    if let Some((_, c, _)) = clusters.iter().find(|(_, c, _)| {
        c.status.as_deref() != Some("INACTIVE")
            && c.capacity_providers
                .as_ref()
                .is_some_and(|ps| ps.contains(&name))
    }) {
        return Err(EcsError::Client(format!(
            "The specified capacity provider is in use and cannot be removed. The capacity provider is associated with cluster {}. Remove it from the cluster and try again.",
            c.cluster_name.as_deref().unwrap_or("")
        )));
    }
    let Some((mut p, rev)) = ecs.objects.get::<CapacityProvider>(&key).await? else {
        return Err(not_found(&name));
    };
    ecs.objects
        .commit(Txn::new().when(key.clone(), rev).delete(key))
        .await?;
    if let Some(asg) = &p.auto_scaling_group_provider {
        sync_draining_hook(ecs, asg, false).await;
    }
    p.status = Some(CapacityProviderStatus::Inactive);
    p.update_status = Some(CapacityProviderUpdateStatus::DeleteComplete);
    Ok(DeleteCapacityProviderResponse {
        capacity_provider: Some(p),
    })
}
