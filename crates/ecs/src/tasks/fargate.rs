//! Fargate: the launch type whose capacity the user never sees.
//!
//! This module owns what a Fargate launch must satisfy (AWS's rules, with AWS's
//! messages), which capacity provider each task gets (`base`, then `weight`), how a
//! Fargate task looks in DescribeTasks, the port through which the server's provisioner
//! supplies hidden container instances ([`FargateCapacity`]), spot interruptions and
//! usage metering.
//!
//! Hidden capacity is an ordinary container instance of the user's cluster whose agent
//! registered with the provisioner's secret marker attribute: the store flags it
//! (`StoredInstance::fargate`), the API hides it, placement keeps EC2 and Fargate
//! launches apart. Keeping it in the user's cluster means tasks, channels and reports
//! need no second path.

use crate::error::{invalid, EcsError};
use crate::objects::{task_prefix, StoredTask};
use crate::view::ClusterView;
use crate::Ecs;
use model::ecs::shapes::{
    Attribute, CapacityProviderStrategyItem, Cluster, Compatibility, LaunchType,
    PlacementConstraint, PlacementStrategy, Service, Task, TaskDefinition, TaskStopCode,
};
use model::ecs::status::{ContainerInstanceStatus, TaskStatus};
use model::ecs::task_definition::{fargate_container_refusal, fargate_size_is_valid};
use placement::Plan;
use serde::Serialize;
use std::time::Duration;

/// The platform version `LATEST` resolves to (and the only Linux one Stevedore runs).
pub const PLATFORM_VERSION: &str = "1.4.0";
/// Platform versions a request may name.
const KNOWN_VERSIONS: &[&str] = &["LATEST", "1.4.0", "1.3.0"];
/// The attribute a provisioner's agent registers with; its value must be the
/// provisioner's secret, so no user-registered instance can pass for hidden capacity.
pub const MARKER_ATTRIBUTE: &str = "stevedore.fargate";
/// The task attribute that says which sandbox runs the task's containers.
pub const SANDBOX_ATTRIBUTE: &str = "stevedore.sandbox";
/// The capacity provider of on-demand Fargate capacity.
pub const FARGATE: &str = "FARGATE";
/// The capacity provider of interruptible Fargate capacity.
pub const FARGATE_SPOT: &str = "FARGATE_SPOT";
/// What AWS says on a task stopped by a spot interruption.
pub const SPOT_REASON: &str = "Your Spot Task was interrupted.";
/// How long a launch waits for the provisioner's agent to register.
const CAPACITY_WAIT: Duration = Duration::from_secs(30);

/// The server's source of hidden capacity (implemented by the binary, which starts
/// agents of its own against the local Docker).
pub trait FargateCapacity: Send + Sync {
    /// The secret value of [`MARKER_ATTRIBUTE`] its agents register with.
    fn marker(&self) -> &str;
    /// The sandbox its agents run task containers in (`runsc` or `runc`).
    fn sandbox(&self) -> &str;
    /// Why Fargate tasks cannot launch at all (no sandbox on this host and runc not
    /// allowed), or `None` when they can.
    fn unavailable(&self) -> Option<&str>;
    /// Starts hidden capacity for `cluster` unless it runs already; returns at once.
    fn ensure(&self, cluster: &str);
}

/// Where a launch's tasks run.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) enum Capacity {
    /// On the user's container instances.
    #[default]
    Ec2,
    /// On hidden capacity.
    Fargate(FargateLaunch),
    /// On the cluster's instances, through Auto Scaling group capacity providers: tasks
    /// that fit nowhere wait in PROVISIONING for their group to grow.
    Groups(Vec<CapacityProviderStrategyItem>),
}

/// A Fargate launch's platform and capacity providers.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FargateLaunch {
    /// The concrete platform version shown on tasks.
    pub platform_version: String,
    /// The providers to split tasks over; empty for `launchType: FARGATE`.
    pub strategy: Vec<CapacityProviderStrategyItem>,
}

impl Capacity {
    /// The Fargate part, if any.
    pub fn fargate(&self) -> Option<&FargateLaunch> {
        match self {
            Capacity::Ec2 | Capacity::Groups(_) => None,
            Capacity::Fargate(f) => Some(f),
        }
    }

    /// The Auto Scaling group providers' strategy, if the tasks run through them.
    pub fn groups(&self) -> Option<&[CapacityProviderStrategyItem]> {
        match self {
            Capacity::Groups(s) => Some(s),
            _ => None,
        }
    }

    /// What a service's tasks run on, as its record says.
    pub fn of_service(svc: &Service) -> Self {
        let strategy = svc.capacity_provider_strategy.clone().unwrap_or_default();
        // A stored strategy was checked when it was set: it is all Fargate or all groups.
        if !strategy.is_empty() && uses_groups(&strategy).unwrap_or(false) {
            return Capacity::Groups(strategy);
        }
        if svc.launch_type == Some(LaunchType::Fargate) || !strategy.is_empty() {
            Capacity::Fargate(FargateLaunch {
                platform_version: svc
                    .platform_version
                    .clone()
                    .unwrap_or_else(|| PLATFORM_VERSION.to_owned()),
                strategy,
            })
        } else {
            Capacity::Ec2
        }
    }
}

/// Resolves a request's `launchType`, `capacityProviderStrategy` and `platformVersion`
/// against its cluster (whose default strategy applies when neither is given).
pub(crate) fn resolve_capacity(
    launch_type: Option<LaunchType>,
    strategy: Option<&[CapacityProviderStrategyItem]>,
    platform_version: Option<&str>,
    cluster: &Cluster,
) -> Result<Capacity, EcsError> {
    let strategy = strategy.unwrap_or_default();
    if launch_type.is_some() && !strategy.is_empty() {
        return invalid(
            "Specifying both a launchType and capacityProviderStrategy is not supported. Remove one and try again.",
        );
    }
    let strategy = match launch_type {
        Some(LaunchType::Fargate) => Vec::new(),
        Some(LaunchType::Ec2) => {
            if platform_version.is_some() {
                return invalid(
                    "The platform version must be null when specifying an EC2 launch type.",
                );
            }
            return Ok(Capacity::Ec2);
        }
        Some(other) => {
            return invalid(format!(
                "launchType {} is not supported by Stevedore; use EC2 or FARGATE.",
                other.as_str()
            ))
        }
        None if !strategy.is_empty() => strategy.to_vec(),
        None => {
            let default = cluster
                .default_capacity_provider_strategy
                .clone()
                .unwrap_or_default();
            if default.is_empty() {
                if platform_version.is_some() {
                    return invalid(
                        "The platform version must be null when specifying an EC2 launch type.",
                    );
                }
                return Ok(Capacity::Ec2);
            }
            default
        }
    };
    if !strategy.is_empty() {
        check_strategy(&strategy, cluster)?;
        if uses_groups(&strategy)? {
            // Auto Scaling group providers: the tasks run on the cluster's instances.
            if platform_version.is_some() {
                return invalid(
                    "The platform version must be null when specifying an EC2 launch type.",
                );
            }
            return Ok(Capacity::Groups(strategy));
        }
    }
    Ok(Capacity::Fargate(FargateLaunch {
        platform_version: resolve_platform_version(platform_version)?,
        strategy,
    }))
}

/// The Fargate platform version a request names (`LATEST` or none: the newest).
pub(crate) fn resolve_platform_version(given: Option<&str>) -> Result<String, EcsError> {
    match given {
        None | Some("LATEST") => Ok(PLATFORM_VERSION.to_owned()),
        Some(v) if KNOWN_VERSIONS.contains(&v) => Ok(v.to_owned()),
        Some(_) => invalid("The specified platform version does not exist."),
    }
}

/// A capacity provider strategy's own rules, and that each provider is the cluster's.
pub(crate) fn check_strategy(
    strategy: &[CapacityProviderStrategyItem],
    cluster: &Cluster,
) -> Result<(), EcsError> {
    let associated = cluster.capacity_providers.clone().unwrap_or_default();
    check_strategy_items(strategy, &|n| {
        is_provider(n) || associated.iter().any(|a| a == n)
    })?;
    if strategy
        .iter()
        .any(|i| !associated.contains(&i.capacity_provider))
    {
        return invalid("The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster. Associate the capacity provider with the cluster or specify a valid capacity provider and try again.");
    }
    Ok(())
}

/// Whether a strategy names Auto Scaling group providers (anything but FARGATE and
/// FARGATE_SPOT); one may not mix both kinds.
pub(crate) fn uses_groups(strategy: &[CapacityProviderStrategyItem]) -> Result<bool, EcsError> {
    let groups = strategy
        .iter()
        .filter(|i| !is_provider(&i.capacity_provider))
        .count();
    if groups > 0 && groups < strategy.len() {
        return invalid("A capacity provider strategy cannot contain a mix of capacity providers using Auto Scaling groups and Fargate providers. Specify one or the other and try again.");
    }
    Ok(groups > 0)
}

/// The rules a strategy obeys wherever it appears (including a cluster's default);
/// `known` says which provider names exist.
pub(crate) fn check_strategy_items(
    strategy: &[CapacityProviderStrategyItem],
    known: &dyn Fn(&str) -> bool,
) -> Result<(), EcsError> {
    if strategy.len() > 20 {
        return invalid("A capacity provider strategy can contain at most 20 capacity providers.");
    }
    let mut seen = Vec::new();
    for i in strategy {
        if !known(&i.capacity_provider) {
            return invalid(format!(
                "The specified capacity provider '{}' does not exist. Specify a valid capacity provider and try again.",
                i.capacity_provider
            ));
        }
        if seen.contains(&i.capacity_provider.as_str()) {
            return invalid("The specified capacity provider strategy cannot contain duplicate capacity providers.");
        }
        seen.push(&i.capacity_provider);
        if i.weight.is_some_and(|w| !(0..=1000).contains(&w)) {
            return invalid("The capacity provider strategy weight must be between 0 and 1000.");
        }
        if i.base.is_some_and(|b| !(0..=100_000).contains(&b)) {
            return invalid("The capacity provider strategy base must be between 0 and 100000.");
        }
    }
    if strategy.iter().filter(|i| i.base.unwrap_or(0) > 0).count() > 1 {
        return invalid(
            "Only one capacity provider in a capacity provider strategy can have a base defined.",
        );
    }
    if !strategy.is_empty() && strategy.iter().all(|i| i.weight.unwrap_or(0) == 0) {
        return invalid("At least one capacity provider in a capacity provider strategy must have a weight greater than zero.");
    }
    uses_groups(strategy)?;
    Ok(())
}

/// A cluster's capacity providers and default strategy (CreateCluster,
/// PutClusterCapacityProviders); `groups` names the Auto Scaling group providers that
/// exist.
pub(crate) fn check_cluster_providers(
    providers: &[String],
    default_strategy: &[CapacityProviderStrategyItem],
    groups: &[String],
) -> Result<(), EcsError> {
    for p in providers {
        if !is_provider(p) && !groups.contains(p) {
            return invalid(format!(
                "The specified capacity provider '{p}' does not exist. Specify a valid capacity provider and try again."
            ));
        }
    }
    check_strategy_items(default_strategy, &|n| {
        is_provider(n) || groups.iter().any(|g| g == n)
    })?;
    if default_strategy
        .iter()
        .any(|i| !providers.contains(&i.capacity_provider))
    {
        return invalid("The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster. Associate the capacity provider with the cluster or specify a valid capacity provider and try again.");
    }
    Ok(())
}

/// Whether `name` is a capacity provider Stevedore knows.
pub(crate) fn is_provider(name: &str) -> bool {
    name == FARGATE || name == FARGATE_SPOT
}

/// What a Fargate launch refuses in the task definition, the overrides and the request.
pub(crate) fn check_task(
    td: &TaskDefinition,
    task_cpu: Option<i64>,
    task_memory: Option<i64>,
    constraints: Option<&[PlacementConstraint]>,
    strategies: Option<&[PlacementStrategy]>,
) -> Result<(), EcsError> {
    let compatible = td
        .compatibilities
        .iter()
        .flatten()
        .any(|c| *c == Compatibility::Fargate);
    if !compatible {
        return invalid("Task definition does not support launch_type FARGATE.");
    }
    // A definition only becomes FARGATE-compatible with awsvpc and a valid size; the
    // overrides may still break the size.
    let (Some(cpu), Some(memory)) = (task_cpu, task_memory) else {
        return invalid("Fargate requires that 'cpu' and 'memory' be defined at the task level.");
    };
    if !fargate_size_is_valid(cpu, memory) {
        return invalid(format!("No Fargate configuration exists for given values: {cpu} CPU, {memory} memory. See the Amazon ECS documentation for the valid combinations of task CPU and memory."));
    }
    // A definition registered for EC2 only may still be launched on Fargate when it
    // happens to qualify: privileged mode and added capabilities are checked here too.
    for c in td.container_definitions.iter().flatten() {
        if let Some(refusal) = fargate_container_refusal(c) {
            return invalid(refusal);
        }
    }
    if td.volumes.iter().flatten().any(|v| {
        v.host
            .as_ref()
            .and_then(|h| h.source_path.as_ref())
            .is_some()
    }) {
        return invalid("Host volumes with a sourcePath are not supported on Fargate.");
    }
    if constraints.is_some_and(|c| !c.is_empty())
        || td
            .placement_constraints
            .as_ref()
            .is_some_and(|c| !c.is_empty())
    {
        return invalid(
            "Task placement constraints are not supported with the FARGATE launch type.",
        );
    }
    if strategies.is_some_and(|s| !s.is_empty()) {
        return invalid("Placement strategies are not supported with FARGATE launch type.");
    }
    Ok(())
}

/// The capacity provider of each of `n` new tasks: `base` tasks first to the provider
/// that has one, the rest in proportion to the weights. `existing` counts the tasks each
/// provider already runs (a service's), so repeated launches converge on the ratio.
pub(crate) fn split(
    strategy: &[CapacityProviderStrategyItem],
    existing: &[(String, u32)],
    n: usize,
) -> Vec<Option<String>> {
    if strategy.is_empty() {
        return vec![None; n];
    }
    let mut counts: Vec<u64> = strategy
        .iter()
        .map(|i| {
            existing
                .iter()
                .find(|(p, _)| *p == i.capacity_provider)
                .map_or(0, |(_, c)| u64::from(*c))
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let base = strategy
            .iter()
            .enumerate()
            .find(|(k, i)| u64::try_from(i.base.unwrap_or(0)).unwrap_or(0) > counts[*k]);
        let k = match base {
            Some((k, _)) => k,
            None => {
                // Beyond the base, each provider's share of the rest follows its weight:
                // pick the one furthest below its share after this task.
                let based: Vec<u64> = strategy
                    .iter()
                    .zip(&counts)
                    .map(|(i, c)| c.saturating_sub(u64::try_from(i.base.unwrap_or(0)).unwrap_or(0)))
                    .collect();
                let mut best: Option<(usize, f64)> = None;
                for (k, i) in strategy.iter().enumerate() {
                    let w = i.weight.unwrap_or(0);
                    if w <= 0 {
                        continue;
                    }
                    let load = (based[k] + 1) as f64 / f64::from(w);
                    if best.is_none_or(|(_, b)| load < b) {
                        best = Some((k, load));
                    }
                }
                best.map_or(0, |(k, _)| k)
            }
        };
        counts[k] += 1;
        out.push(Some(strategy[k].capacity_provider.clone()));
    }
    out
}

/// Shows `task` as a Fargate task: no instance, the platform, the provider, the sandbox.
pub(crate) fn apply_to_task(
    task: &mut Task,
    f: &FargateLaunch,
    provider: Option<String>,
    sandbox: &str,
) {
    task.launch_type = Some(LaunchType::Fargate);
    task.platform_version = Some(f.platform_version.clone());
    task.platform_family = Some("Linux".into());
    task.capacity_provider_name = provider;
    // AWS shows no container instance for a Fargate task.
    task.container_instance_arn = None;
    task.attributes
        .get_or_insert_with(Vec::new)
        .push(Attribute {
            name: SANDBOX_ATTRIBUTE.into(),
            value: Some(sandbox.to_owned()),
            target_type: None,
            target_id: None,
        });
}

/// The instances a launch may use: Fargate launches only hidden capacity, the others
/// only the user's. `None` when that is every instance of the view (the common case
/// of a cluster without Fargate), so nothing is copied.
pub(crate) fn restrict(view: &ClusterView, fargate: bool) -> Option<(ClusterView, Vec<usize>)> {
    if !fargate && !view.stored.iter().any(|s| s.fargate) {
        return None;
    }
    let mut sub = ClusterView::default();
    let mut map = Vec::new();
    for (k, s) in view.stored.iter().enumerate() {
        if s.fargate == fargate {
            sub.instances.push(view.instances[k].clone());
            map.push(k);
        }
    }
    Some((sub, map))
}

/// Maps a plan over a [`restrict`]ed view back to the full view's indices.
pub(crate) fn widen(mut plan: Plan, map: &[usize]) -> Plan {
    plan.placements = plan
        .placements
        .iter()
        .filter_map(|k| map.get(*k).copied())
        .collect();
    plan
}

/// One task's metered usage.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TaskUsage {
    /// The task.
    pub task_arn: String,
    /// Its cluster's name.
    pub cluster: String,
    /// FARGATE or FARGATE_SPOT when a strategy placed it.
    pub capacity_provider_name: Option<String>,
    /// Its lastStatus now.
    pub last_status: String,
    /// Task-level vCPUs.
    pub vcpu: f64,
    /// Task-level memory, GB (GiB, as Fargate bills).
    pub memory_gb: f64,
    /// Seconds from startedAt to stoppedAt (or now).
    pub seconds: f64,
    /// `vcpu` × `seconds`.
    pub vcpu_seconds: f64,
    /// `memory_gb` × `seconds`.
    pub gb_seconds: f64,
}

/// vCPU-seconds and GB-seconds of a Fargate task from its start to its stop (or `now`).
pub(crate) fn meter(task: &Task, cluster: &str, now: f64) -> Option<TaskUsage> {
    if task.launch_type != Some(LaunchType::Fargate) {
        return None;
    }
    let vcpu = task.cpu.as_deref()?.parse::<f64>().ok()? / 1024.0;
    let memory_gb = task.memory.as_deref()?.parse::<f64>().ok()? / 1024.0;
    let seconds = match task.started_at {
        Some(start) => (task.stopped_at.unwrap_or(now) - start).max(0.0),
        None => 0.0,
    };
    Some(TaskUsage {
        task_arn: task.task_arn.clone().unwrap_or_default(),
        cluster: cluster.to_owned(),
        capacity_provider_name: task.capacity_provider_name.clone(),
        last_status: task
            .last_status
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        vcpu,
        memory_gb,
        seconds,
        vcpu_seconds: vcpu * seconds,
        gb_seconds: memory_gb * seconds,
    })
}

impl Ecs {
    /// Makes sure `cluster` has hidden capacity registered, starting it if needed and
    /// waiting for its agent to register (the first Fargate launch of a cluster pays
    /// this once; the provisioner starts capacity lazily, per cluster).
    pub(crate) async fn ensure_fargate_capacity(&self, cluster: &str) -> Result<(), EcsError> {
        let Some(provisioner) = self.fargate.clone() else {
            return Err(EcsError::Client(
                "Fargate capacity is not available: this Stevedore server runs no Fargate provisioner.".into(),
            ));
        };
        if let Some(reason) = provisioner.unavailable() {
            // AWS answers RunTask with "Capacity is unavailable at this time" when Fargate
            // has no room; the code it uses is not in the API model, so the refusal is the
            // modelled ClientException (like a server without a provisioner), not a 5xx
            // that SDKs would retry: retrying cannot help until the host changes.
            return Err(EcsError::Client(format!(
                "Capacity is unavailable at this time: {reason}"
            )));
        }
        let shared = self.view_for(cluster);
        let deadline = tokio::time::Instant::now() + CAPACITY_WAIT;
        let mut asked = false;
        loop {
            {
                let mut view = shared.lock().await;
                self.refresh_view(cluster, &mut view, asked).await?;
                // Ready once its agent is registered AND connected: placement refuses an
                // instance whose channel is not open yet (AGENT), and the channel opens a
                // moment after registration.
                let ready = view.stored.iter().any(|s| {
                    s.fargate
                        && s.instance.status == Some(ContainerInstanceStatus::Active)
                        && s.instance.agent_connected == Some(true)
                });
                if ready {
                    return Ok(());
                }
            }
            if !asked {
                provisioner.ensure(cluster);
                asked = true;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(EcsError::Client(format!(
                    "Fargate capacity for cluster {cluster} did not come up within {} seconds; see the server's log.",
                    CAPACITY_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A Fargate service's task definition must run on Fargate (checked at CreateService
    /// and whenever UpdateService changes it, not in every controller round).
    pub(crate) async fn check_service_definition(
        &self,
        capacity: &Capacity,
        reference: &str,
        constraints: Option<&[PlacementConstraint]>,
        strategies: Option<&[PlacementStrategy]>,
    ) -> Result<(), EcsError> {
        if capacity.fargate().is_none() {
            return Ok(());
        }
        let r = self.parse_task_def_ref(reference)?;
        let Some((stored, _)) = self.load_task_definition(&r).await? else {
            return Err(EcsError::Client("TaskDefinition not found.".into()));
        };
        let td = stored.task_definition;
        let cpu = td
            .cpu
            .as_deref()
            .and_then(model::ecs::task_definition::parse_task_cpu);
        let memory = td
            .memory
            .as_deref()
            .and_then(model::ecs::task_definition::parse_task_memory);
        check_task(&td, cpu, memory, constraints, strategies)
    }

    /// The sandbox hidden capacity runs tasks in (`runc` without a provisioner).
    pub(crate) fn fargate_sandbox(&self) -> &str {
        self.fargate.as_deref().map_or("runc", |p| p.sandbox())
    }

    /// Whether a registering instance is the provisioner's: the marker attribute is
    /// removed either way; a wrong value is refused.
    pub(crate) fn take_fargate_marker(
        &self,
        attributes: &mut Vec<Attribute>,
    ) -> Result<bool, EcsError> {
        let Some(pos) = attributes.iter().position(|a| a.name == MARKER_ATTRIBUTE) else {
            return Ok(false);
        };
        let a = attributes.remove(pos);
        match (&self.fargate, a.value) {
            (Some(p), Some(v)) if v == p.marker() => Ok(true),
            _ => invalid(format!(
                "The attribute name '{MARKER_ATTRIBUTE}' is reserved for Stevedore's Fargate capacity."
            )),
        }
    }

    /// Reclaims FARGATE_SPOT capacity: each chosen running task (all of the cluster's
    /// spot tasks, or the named ones) is told to stop with stopCode `SpotInterruption`;
    /// its agent sends SIGTERM and waits its stopTimeout (at most the two-minute
    /// warning) before SIGKILL. Services replace the tasks as any stopped task.
    pub async fn interrupt_spot(
        &self,
        cluster: &str,
        tasks: &[String],
        limit: Option<usize>,
    ) -> Result<Vec<String>, EcsError> {
        let (cluster, _, _) = self.active_cluster(Some(cluster)).await?;
        let all = self
            .objects
            .list::<StoredTask>(&task_prefix(&cluster))
            .await?;
        let mut chosen = Vec::new();
        for (_, st, _) in all {
            let t = &st.task;
            let arn = t.task_arn.clone().unwrap_or_default();
            let named = tasks.is_empty()
                || tasks
                    .iter()
                    .any(|r| *r == arn || arn.rsplit('/').next() == Some(r.as_str()));
            if named
                && t.capacity_provider_name.as_deref() == Some(FARGATE_SPOT)
                && t.desired_status == Some(TaskStatus::Running)
            {
                chosen.push((arn, st.instance_id.clone()));
            }
        }
        if let Some(n) = limit {
            chosen.truncate(n);
        }
        let mut out = Vec::new();
        for (arn, instance) in chosen {
            self.request_stop(&cluster, &arn, TaskStopCode::SpotInterruption, SPOT_REASON)
                .await?;
            self.channels.notify(&cluster, &instance);
            tracing::info!(cluster = %cluster, task = %arn, "FARGATE_SPOT task interrupted.");
            out.push(arn);
        }
        if !out.is_empty() {
            self.wake_services();
        }
        Ok(out)
    }

    /// The clusters that have hidden capacity registered (to restart its agents).
    pub async fn fargate_clusters(&self) -> Result<Vec<String>, EcsError> {
        let mut out = Vec::new();
        for (_, c, _) in self.objects.list::<Cluster>("ecs/cluster/").await? {
            let Some(name) = c
                .cluster_name
                .filter(|_| c.status.as_deref() == Some("ACTIVE"))
            else {
                continue;
            };
            let instances = self
                .objects
                .list::<crate::objects::StoredInstance>(&crate::objects::instance_prefix(&name))
                .await?;
            if instances.iter().any(|(_, si, _)| {
                si.fargate && si.instance.status == Some(ContainerInstanceStatus::Active)
            }) {
                out.push(name);
            }
        }
        Ok(out)
    }

    /// Metered usage of every Fargate task of `cluster` (every cluster when `None`) still
    /// in the store.
    pub async fn fargate_usage(&self, cluster: Option<&str>) -> Result<Vec<TaskUsage>, EcsError> {
        let clusters = match cluster {
            Some(c) => vec![self.active_cluster(Some(c)).await?.0],
            None => self
                .objects
                .list::<Cluster>("ecs/cluster/")
                .await?
                .into_iter()
                .filter(|(_, c, _)| c.status.as_deref() == Some("ACTIVE"))
                .filter_map(|(_, c, _)| c.cluster_name)
                .collect(),
        };
        let now = crate::now();
        let mut out = Vec::new();
        for c in clusters {
            for (_, st, _) in self.objects.list::<StoredTask>(&task_prefix(&c)).await? {
                out.extend(meter(&st.task, &c, now));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
