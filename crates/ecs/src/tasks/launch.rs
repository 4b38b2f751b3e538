//! RunTask and StartTask: resolve the task definition, apply overrides, compute what the
//! task reserves, place it (RunTask) or check the named instances (StartTask), and commit
//! tasks and instance bookings in one compare-and-swap transaction.

use super::fargate::{self, Capacity};
use super::provisioning::{self, WaitSpec};
use super::{awsvpc, book};
use crate::error::{invalid, EcsError};
use crate::objects::{
    encode, instance_prefix, instance_task_key, task_key, token_key, Reservation, StoredTask,
    TokenRecord,
};
use crate::view::ClusterView;
use crate::{Caller, Ecs};
use model::ecs::shapes::{
    Container, ContainerDefinition, ContainerOverride, Failure, KeyValuePair, LaunchType,
    NetworkConfiguration, NetworkMode, PlacementConstraint, PlacementStrategy, PropagateTags,
    RunTaskRequest, RunTaskResponse, StartTaskRequest, StartTaskResponse, Tag, Task,
    TaskDefinition, TaskDefinitionStatus, TaskOverride, TransportProtocol,
};
use model::ecs::status::{ContainerStatus, TaskStatus};
use model::ecs::task_definition::{parse_task_cpu, parse_task_memory};
use placement::{Constraint, Plan, Strategy};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use store::Txn;

/// The most tasks one RunTask may start.
const MAX_COUNT: i32 = 10;
/// The most `failures` entries one launch reports.
const MAX_FAILURES: usize = 100;
/// How often a launch re-plans after losing a compare-and-swap race.
const MAX_ATTEMPTS: usize = 16;

/// Everything about the tasks to start that does not depend on where they go.
pub(crate) struct Launch {
    pub cluster: String,
    pub td: TaskDefinition,
    pub containers: Vec<ContainerDefinition>,
    pub overrides: TaskOverride,
    pub reservation: Reservation,
    pub request: placement::TaskRequest,
    pub task_cpu: Option<i64>,
    pub task_memory: Option<i64>,
    pub group: String,
    pub started_by: Option<String>,
    pub tags: Vec<Tag>,
    pub enable_execute_command: bool,
    /// awsvpc tasks: the first subnet of `networkConfiguration` (shown on the ENI).
    pub subnet: Option<String>,
    /// awsvpc tasks, with EC2 wired in: the subnet, block and groups EC2 resolved.
    pub network: Option<awsvpc::Network>,
    /// EC2 or Fargate (hidden capacity).
    pub capacity: Capacity,
}

/// Caller-supplied launch parameters shared by RunTask and StartTask.
pub(crate) struct LaunchParams<'a> {
    pub cluster: Option<&'a str>,
    pub task_definition: &'a str,
    pub overrides: Option<&'a TaskOverride>,
    pub group: Option<&'a str>,
    pub started_by: Option<&'a str>,
    pub tags: Option<&'a [Tag]>,
    pub propagate_tags: Option<PropagateTags>,
    pub network_configuration: Option<&'a NetworkConfiguration>,
    pub enable_execute_command: Option<bool>,
    /// EC2 or Fargate, resolved from launchType / capacityProviderStrategy.
    pub capacity: Capacity,
    /// `enableECSManagedTags`: the task gets `aws:ecs:clusterName` (and
    /// `aws:ecs:serviceName` when a service starts it).
    pub managed_tags: bool,
    /// The service starting the task, if any.
    pub service: Option<&'a str>,
}

/// The tags ECS itself puts on a task when managed tags are on: the cluster's name, and
/// the service's when a service starts it. They carry the reserved `aws:` prefix, so they
/// are added after the caller's tags are checked, and (as on AWS) do not count towards
/// the caller's limit of 50.
pub(crate) fn compute_managed_tags(cluster: &str, service: Option<&str>) -> Vec<Tag> {
    let tag = |k: &str, v: &str| Tag {
        key: Some(k.to_owned()),
        value: Some(v.to_owned()),
    };
    let mut tags = vec![tag("aws:ecs:clusterName", cluster)];
    if let Some(s) = service {
        tags.push(tag("aws:ecs:serviceName", s));
    }
    tags
}

/// RunTask and StartTask cannot attach EBS volumes at launch: there is no block storage
/// service here.
pub(crate) fn refuse_volume_configurations<T>(given: Option<&[T]>) -> Result<(), EcsError> {
    if given.is_some_and(|v| !v.is_empty()) {
        return invalid("volumeConfigurations is not supported by Stevedore: it configures Amazon EBS volumes attached at launch, and Stevedore has no block storage service. Use the task definition's volumes (bind mounts or Docker volumes) instead.");
    }
    Ok(())
}

fn check_started_by(s: &str) -> Result<(), EcsError> {
    let ok = s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_/".contains(&b));
    if ok {
        Ok(())
    } else {
        invalid("startedBy can be up to 128 letters (uppercase and lowercase), numbers, hyphens, underscores, and forward slashes.")
    }
}

/// Applies `containerOverrides` to the definition's containers.
fn compute_containers(
    td: &TaskDefinition,
    ov: Option<&TaskOverride>,
) -> Result<(Vec<ContainerDefinition>, Vec<ContainerOverride>), EcsError> {
    let mut containers = td.container_definitions.clone().unwrap_or_default();
    let given = ov
        .and_then(|o| o.container_overrides.clone())
        .unwrap_or_default();
    for o in &given {
        let name = o.name.as_deref().unwrap_or("");
        let Some(c) = containers
            .iter_mut()
            .find(|c| c.name.as_deref() == Some(name))
        else {
            return invalid(format!(
                "Container override '{name}' does not match any container in the task definition."
            ));
        };
        if let Some(cmd) = &o.command {
            c.command = Some(cmd.clone());
        }
        if let Some(env) = &o.environment {
            let list = c.environment.get_or_insert_with(Vec::new);
            for e in env {
                match list.iter_mut().find(|x| x.name == e.name) {
                    Some(x) => x.value = e.value.clone(),
                    None => list.push(e.clone()),
                }
            }
        }
        for (field, v) in [
            ("cpu", o.cpu),
            ("memory", o.memory),
            ("memoryReservation", o.memory_reservation),
        ] {
            if v.is_some_and(|v| v < 0) {
                return invalid(format!(
                    "Container override '{name}': {field} cannot be negative."
                ));
            }
        }
        if o.cpu.is_some() {
            c.cpu = o.cpu;
        }
        if o.memory.is_some() {
            c.memory = o.memory;
        }
        if o.memory_reservation.is_some() {
            c.memory_reservation = o.memory_reservation;
        }
        if let (Some(h), Some(s)) = (c.memory, c.memory_reservation) {
            if h <= s {
                return invalid(format!(
                    "Container override '{name}': memory must be greater than memoryReservation."
                ));
            }
        }
    }
    // AWS lists every container in the task's overrides, overridden or not.
    let shown = containers
        .iter()
        .map(|c| {
            given
                .iter()
                .find(|o| o.name == c.name)
                .cloned()
                .unwrap_or(ContainerOverride {
                    name: c.name.clone(),
                    ..ContainerOverride::default()
                })
        })
        .collect();
    Ok((containers, shown))
}

/// What the task reserves on an instance: task-level cpu/memory when set, else the sum of
/// its containers'; static host ports by protocol.
fn compute_reservation(
    mode: NetworkMode,
    containers: &[ContainerDefinition],
    cpu: Option<i64>,
    memory: Option<i64>,
) -> Reservation {
    let mut r = Reservation {
        gpu_count: containers.iter().map(container_gpus).sum(),
        cpu: cpu.unwrap_or_else(|| {
            containers
                .iter()
                .map(|c| i64::from(c.cpu.unwrap_or(0)))
                .sum()
        }),
        memory: memory.unwrap_or_else(|| {
            containers
                .iter()
                .map(|c| i64::from(c.memory_reservation.or(c.memory).unwrap_or(0)))
                .sum()
        }),
        ..Reservation::default()
    };
    for pm in containers
        .iter()
        .flat_map(|c| c.port_mappings.iter().flatten())
    {
        let port = match mode {
            NetworkMode::Bridge => pm.host_port.filter(|p| *p > 0),
            NetworkMode::Host => pm.host_port.or(pm.container_port).filter(|p| *p > 0),
            // awsvpc tasks have their own network namespace and address: no host port.
            NetworkMode::Awsvpc | NetworkMode::None => None,
        };
        if let Some(p) = port.and_then(|p| u16::try_from(p).ok()) {
            match pm.protocol.unwrap_or(TransportProtocol::Tcp) {
                TransportProtocol::Tcp => r.tcp_ports.push(p),
                TransportProtocol::Udp => r.udp_ports.push(p),
            }
        }
    }
    r
}

impl Ecs {
    /// Resolves and validates everything about a launch that does not depend on placement.
    pub(crate) async fn prepare_launch(&self, p: &LaunchParams<'_>) -> Result<Launch, EcsError> {
        let (cluster, _, _) = self.active_cluster(p.cluster).await?;
        let r = self.parse_task_def_ref(p.task_definition)?;
        let Some((stored, _)) = self.load_task_definition(&r).await? else {
            return Err(EcsError::Client("TaskDefinition not found.".into()));
        };
        let td = stored.task_definition;
        if td.status != Some(TaskDefinitionStatus::Active) {
            return Err(EcsError::Client("TaskDefinition is inactive".into()));
        }
        let mode = td.network_mode.unwrap_or(NetworkMode::Bridge);
        match (mode, p.network_configuration) {
            (NetworkMode::Awsvpc, None) => return invalid("Network Configuration must be provided when networkMode 'awsvpc' is specified."),
            (NetworkMode::Awsvpc, Some(nc)) if nc.awsvpc_configuration.as_ref().is_none_or(|a| a.subnets.is_empty()) => {
                return invalid("networkConfiguration.awsvpcConfiguration.subnets must name at least one subnet.")
            }
            (m, Some(_)) if m != NetworkMode::Awsvpc => {
                return invalid("Network Configuration is not valid for the given networkMode of this task definition.")
            }
            _ => {}
        }
        let network = self.resolve_network(mode, p).await?;
        if let Some(s) = p.started_by {
            check_started_by(s)?;
        }
        if let Some(g) = p.group {
            if g.is_empty() || g.len() > 255 {
                return invalid("group must be 1 to 255 characters.");
            }
        }
        let mut tags = p.tags.map(<[Tag]>::to_vec).unwrap_or_default();
        match p.propagate_tags {
            Some(PropagateTags::TaskDefinition) => {
                model::ecs::names::merge_tags(&mut tags, &stored.tags)
            }
            Some(PropagateTags::Service) => {
                return invalid("propagateTags SERVICE is only valid for tasks a service starts.")
            }
            _ => {}
        }
        model::ecs::names::check_tags(&tags).map_err(EcsError::InvalidParameter)?;
        if p.managed_tags {
            tags.extend(compute_managed_tags(&cluster, p.service));
        }
        let (containers, container_overrides) = compute_containers(&td, p.overrides)?;
        let parse = |s: &Option<String>,
                     f: fn(&str) -> Option<i64>,
                     what: &str|
         -> Result<Option<i64>, EcsError> {
            match s {
                Some(v) => f(v).map(Some).ok_or_else(|| {
                    EcsError::InvalidParameter(format!("Invalid task {what} override '{v}'."))
                }),
                None => Ok(None),
            }
        };
        let ov = p.overrides.cloned().unwrap_or_default();
        let task_cpu = match parse(&ov.cpu, parse_task_cpu, "cpu")? {
            Some(c) => Some(c),
            None => td.cpu.as_deref().and_then(parse_task_cpu),
        };
        let task_memory = match parse(&ov.memory, parse_task_memory, "memory")? {
            Some(m) => Some(m),
            None => td.memory.as_deref().and_then(parse_task_memory),
        };
        if p.capacity.fargate().is_some() {
            fargate::check_task(&td, task_cpu, task_memory, None, None)?;
        }
        let reservation = compute_reservation(mode, &containers, task_cpu, task_memory);
        let group = p
            .group
            .map(str::to_owned)
            .unwrap_or_else(|| format!("family:{}", td.family.as_deref().unwrap_or("")));
        let request = placement::TaskRequest {
            cpu: reservation.cpu,
            memory: reservation.memory,
            tcp_ports: reservation.tcp_ports.clone(),
            udp_ports: reservation.udp_ports.clone(),
            gpus: reservation.gpu_count,
            group: group.clone(),
            // The Fargate platform version provides every capability a definition can
            // require; hidden capacity need not advertise them.
            required_attributes: if p.capacity.fargate().is_some() {
                Vec::new()
            } else {
                td.requires_attributes
                    .iter()
                    .flatten()
                    .map(|a| (a.name.clone(), a.value.clone()))
                    .collect()
            },
        };
        Ok(Launch {
            cluster,
            containers,
            overrides: TaskOverride {
                container_overrides: Some(container_overrides),
                ..ov
            },
            reservation,
            request,
            task_cpu,
            task_memory,
            group,
            started_by: p.started_by.map(str::to_owned),
            tags,
            enable_execute_command: p.enable_execute_command.unwrap_or(false),
            subnet: p
                .network_configuration
                .and_then(|n| n.awsvpc_configuration.as_ref())
                .and_then(|a| a.subnets.first().cloned()),
            network,
            td,
            capacity: p.capacity.clone(),
        })
    }

    /// An awsvpc launch's subnets and groups, checked against EC2 when the binary wired
    /// it in (`None` otherwise, and for other network modes). `assignPublicIp` ENABLED is
    /// refused outside Fargate, as ECS refuses it; on Fargate it is accepted and changes
    /// nothing here: no public address exists, and tasks reach outside through the host's
    /// NAT either way.
    async fn resolve_network(
        &self,
        mode: NetworkMode,
        p: &LaunchParams<'_>,
    ) -> Result<Option<awsvpc::Network>, EcsError> {
        let Some(vpc) = p
            .network_configuration
            .and_then(|n| n.awsvpc_configuration.as_ref())
            .filter(|_| mode == NetworkMode::Awsvpc)
        else {
            return Ok(None);
        };
        if vpc.assign_public_ip == Some(model::ecs::shapes::AssignPublicIp::Enabled)
            && p.capacity.fargate().is_none()
        {
            return invalid("Assign public IP is not supported for this launch type.");
        }
        let Some(networks) = &self.networks else {
            return Ok(None);
        };
        let groups = vpc.security_groups.clone().unwrap_or_default();
        networks
            .resolve(&vpc.subnets, &groups)
            .await
            .map(Some)
            .map_err(EcsError::InvalidParameter)
    }

    /// The task record for one placement of `l` on `inst`.
    fn build_task(
        &self,
        l: &Launch,
        inst: &placement::Instance,
        now: f64,
        provider: Option<String>,
    ) -> StoredTask {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let task_arn = self.scope.task(&l.cluster, &id);
        let awsvpc = l.td.network_mode == Some(NetworkMode::Awsvpc);
        let last = if awsvpc {
            TaskStatus::Provisioning
        } else {
            TaskStatus::Pending
        };
        let containers = l
            .containers
            .iter()
            .map(|c| Container {
                container_arn: Some(format!(
                    "arn:aws:ecs:{}:{}:container/{}/{}/{}",
                    self.scope.region,
                    self.scope.account_id,
                    l.cluster,
                    id,
                    uuid::Uuid::new_v4()
                )),
                task_arn: Some(task_arn.clone()),
                name: c.name.clone(),
                image: c.image.clone(),
                last_status: Some(ContainerStatus::Pending),
                network_interfaces: Some(Vec::new()),
                health_status: Some(model::ecs::shapes::HealthStatus::Unknown),
                cpu: c.cpu.map(|v| v.to_string()),
                memory: c.memory.map(|v| v.to_string()),
                memory_reservation: c.memory_reservation.map(|v| v.to_string()),
                ..Container::default()
            })
            .collect();
        let mut task = Task {
            attachments: Some(Vec::new()),
            attributes: Some(vec![model::ecs::shapes::Attribute {
                name: "ecs.cpu-architecture".into(),
                value: inst
                    .attributes
                    .get("ecs.cpu-architecture")
                    .cloned()
                    .flatten()
                    .or_else(|| Some("x86_64".into())),
                target_type: None,
                target_id: None,
            }]),
            availability_zone: inst
                .attributes
                .get("ecs.availability-zone")
                .cloned()
                .flatten(),
            cluster_arn: Some(self.scope.cluster(&l.cluster)),
            connectivity: Some(model::ecs::shapes::Connectivity::Connected),
            connectivity_at: Some(now),
            container_instance_arn: Some(inst.arn.clone()),
            containers: Some(containers),
            cpu: l.task_cpu.map(|v| v.to_string()),
            created_at: Some(now),
            desired_status: Some(TaskStatus::Running),
            enable_execute_command: Some(l.enable_execute_command),
            group: Some(l.group.clone()),
            health_status: Some(model::ecs::shapes::HealthStatus::Unknown),
            last_status: Some(last),
            launch_type: Some(LaunchType::Ec2),
            memory: l.task_memory.map(|v| v.to_string()),
            overrides: Some(l.overrides.clone()),
            started_by: l.started_by.clone(),
            tags: Some(l.tags.clone()),
            task_arn: Some(task_arn),
            task_definition_arn: l.td.task_definition_arn.clone(),
            version: Some(1),
            ..Task::default()
        };
        if let Some(f) = l.capacity.fargate() {
            fargate::apply_to_task(&mut task, f, provider, self.fargate_sandbox());
        } else if l.capacity.groups().is_some() {
            task.capacity_provider_name = provider;
        }
        StoredTask {
            task,
            instance_id: inst.id.clone(),
            reservation: l.reservation.clone(),
            containers: l.containers.clone(),
            released: false,
            network_mode: l.td.network_mode,
            volumes: l.td.volumes.clone().unwrap_or_default(),
            eni: None,
            deactivating: false,
            protected_until: None,
        }
    }

    /// Gives each awsvpc task of `tasks` a free address of the pool, adding to `txn` the
    /// keys that hold them (written only if still absent: a concurrent launch that took
    /// one makes this commit fail and re-plan).
    async fn allocate_enis(
        &self,
        l: &Launch,
        tasks: &mut [&mut StoredTask],
        mut txn: Txn,
    ) -> Result<Txn, EcsError> {
        if l.td.network_mode != Some(NetworkMode::Awsvpc) || tasks.is_empty() {
            return Ok(txn);
        }
        let page = self
            .objects
            .store()
            .range(awsvpc::ADDRESS_PREFIX, None, usize::MAX)
            .await?;
        let mut taken = awsvpc::parse_taken(page.items.iter().map(|kv| kv.key.as_str()));
        let subnet = l.subnet.clone().unwrap_or_default();
        for t in tasks.iter_mut() {
            let seed =
                u64::try_from(uuid::Uuid::new_v4().as_u128() & u128::from(u64::MAX)).unwrap_or(0);
            let block = l.network.as_ref().map_or(awsvpc::SUBNET, |n| n.cidr);
            let Some(address) = awsvpc::plan_address_in(block, &taken, seed) else {
                return Err(EcsError::Client(format!(
                    "No free address is left in the awsvpc subnet {}/{}.",
                    block.0, block.1
                )));
            };
            taken.insert(address);
            let eni = match &l.network {
                Some(n) => awsvpc::compute_network_eni(address, n, &self.scope.region),
                None => awsvpc::compute_eni(address, &subnet, &self.scope.region),
            };
            awsvpc::apply_eni(&mut t.task, &eni, "ATTACHED");
            let key = awsvpc::address_key(&eni.address);
            let arn = t.task.task_arn.clone().unwrap_or_default();
            txn = txn
                .when(key.clone(), 0)
                .put(key, bytes::Bytes::from(arn.into_bytes()));
            t.eni = Some(eni);
        }
        Ok(txn)
    }

    /// Brings a cluster's placement view up to date: only the instances this process
    /// changed since the last look, or every instance when the view is new, old, or just
    /// lost a race.
    pub(crate) async fn refresh_view(
        &self,
        cluster: &str,
        view: &mut ClusterView,
        force_full: bool,
    ) -> Result<(), EcsError> {
        let changed = self.changed.take(cluster);
        if !force_full && !view.needs_full() {
            let mut kvs = Vec::with_capacity(changed.len());
            for key in changed {
                let kv = self.objects.store().get(&key).await?;
                kvs.push((key, kv));
            }
            if view.apply_changed(kvs)? {
                return Ok(());
            }
        }
        let page = self
            .objects
            .store()
            .range(&instance_prefix(cluster), None, usize::MAX)
            .await?;
        view.refresh(page.items)?;
        view.full_at = Some(std::time::Instant::now());
        Ok(())
    }

    pub(crate) fn view_for(
        &self,
        cluster: &str,
    ) -> std::sync::Arc<tokio::sync::Mutex<ClusterView>> {
        let mut views = self
            .views
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        views.entry(cluster.to_owned()).or_default().clone()
    }

    /// Places and commits: the heart of RunTask. `choose` turns a fresh view into a plan
    /// for a number of tasks (`wait`'s count, or each provider's share of it; named
    /// placements ignore it). With `wait` (a launch through Auto Scaling group
    /// providers), each provider's share is placed on its own group's instances only,
    /// and what fits nowhere there is created PROVISIONING and waits for that provider.
    pub(crate) async fn launch(
        &self,
        l: &Launch,
        token: Option<(&str, &str)>,
        wait: Option<&WaitSpec>,
        choose: impl Fn(&ClusterView, usize) -> Plan,
    ) -> Result<(Vec<Task>, Vec<Failure>), EcsError> {
        let asked = wait.map_or(0, |w| w.count);
        let wait = wait.filter(|_| l.capacity.groups().is_some());
        let members = match (wait, l.capacity.groups()) {
            (Some(_), Some(strategy)) => Some(
                self.provider_members(strategy.iter().map(|i| i.capacity_provider.as_str()))
                    .await?,
            ),
            _ => None,
        };
        let shared = self.view_for(&l.cluster);
        let fargate = l.capacity.fargate();
        if fargate.is_some() {
            self.ensure_fargate_capacity(&l.cluster).await?;
        }
        for attempt in 0..MAX_ATTEMPTS {
            if let Some((t, hash)) = token {
                if let Some(existing) = self.replay_token(&l.cluster, t, hash).await? {
                    return Ok((existing, Vec::new()));
                }
            }
            // Plan under the cluster's lock, commit after releasing it: the plan's bookings
            // are written into the engine's view first, so the next RunTask plans around
            // them instead of racing for the same room while this commit is in flight.
            let mut view = shared.lock().await;
            self.refresh_view(&l.cluster, &mut view, attempt > 0)
                .await?;
            let (plan, placed_providers, waiting_providers) = match (wait, &members) {
                (Some(w), Some(members)) => split_over_groups(
                    &view,
                    l.capacity.groups().unwrap_or_default(),
                    members,
                    // A service's deployment converges on the strategy over all its
                    // tasks; a RunTask splits only the tasks it starts, as on AWS.
                    (
                        l.started_by
                            .as_deref()
                            .is_some_and(|s| s.starts_with("ecs-svc/"))
                            .then_some(l.group.as_str()),
                        w.count,
                    ),
                    &choose,
                ),
                _ => {
                    // Hidden Fargate capacity and the user's instances never mix.
                    let plan = match fargate::restrict(&view, fargate.is_some()) {
                        Some((sub, map)) => fargate::widen(choose(&sub, asked), &map),
                        None => choose(&view, asked),
                    };
                    let providers = fargate::split(
                        fargate
                            .map(|f| f.strategy.as_slice())
                            .or(l.capacity.groups())
                            .unwrap_or_default(),
                        &[],
                        plan.placements.len(),
                    );
                    (plan, providers, Vec::new())
                }
            };
            let now = crate::now();
            let mut per_instance: BTreeMap<usize, Vec<StoredTask>> = BTreeMap::new();
            for (&idx, provider) in plan.placements.iter().zip(placed_providers) {
                let Some(inst) = view.instances.get(idx) else {
                    continue;
                };
                per_instance
                    .entry(idx)
                    .or_default()
                    .push(self.build_task(l, inst, now, provider));
            }
            let mut unplaced: Vec<(StoredTask, Option<String>)> = waiting_providers
                .into_iter()
                .map(|provider| {
                    let mut t =
                        self.build_task(l, &placement::Instance::default(), now, provider.clone());
                    provisioning::make_waiting(&mut t);
                    (t, provider)
                })
                .collect();
            let mut txn = {
                let mut all: Vec<&mut StoredTask> = per_instance
                    .values_mut()
                    .flatten()
                    .chain(unplaced.iter_mut().map(|(t, _)| t))
                    .collect();
                self.allocate_enis(l, &mut all, Txn::new()).await?
            };
            let mut tasks = Vec::new();
            for (t, provider) in &unplaced {
                let id = t
                    .task
                    .task_arn
                    .as_deref()
                    .and_then(|a| a.rsplit('/').next())
                    .unwrap_or_default();
                let record = provisioning::Waiting {
                    provider: provider.clone(),
                    cpu: t.reservation.cpu,
                    memory: t.reservation.memory,
                    constraints: wait.map(|w| w.constraints.clone()).unwrap_or_default(),
                    strategies: wait.map(|w| w.strategies.clone()).unwrap_or_default(),
                    since: now,
                    reason: plan
                        .failures
                        .iter()
                        .map(|f| f.reason)
                        .find(|r| *r != placement::Reason::Missing)
                        .map(|r| r.as_str().to_owned()),
                };
                txn = txn.put(task_key(&l.cluster, id), encode(t)?).put(
                    provisioning::provisioning_key(&l.cluster, id),
                    encode(&record)?,
                );
                tasks.push(t.task.clone());
            }
            let mut written = Vec::new();
            for (idx, list) in &mut per_instance {
                // The stored value is what the store holds: bookings of other in-flight
                // plans are not in it, so a lost race never leaks their reservations.
                let mut si = view.stored[*idx].clone();
                for t in list.iter_mut() {
                    assign_gpus(t, &view.instances[*idx]);
                    book(&mut si, &t.reservation, &l.group, 1, false);
                    book_engine(&mut view.instances[*idx], &t.reservation, &l.group);
                    let id = t
                        .task
                        .task_arn
                        .as_deref()
                        .and_then(|a| a.rsplit('/').next())
                        .unwrap_or_default();
                    txn = txn.put(task_key(&l.cluster, id), encode(t)?).put(
                        instance_task_key(&l.cluster, &t.instance_id, id),
                        bytes::Bytes::new(),
                    );
                    tasks.push(t.task.clone());
                }
                txn = txn
                    .when(view.keys[*idx].clone(), view.revisions[*idx])
                    .put(view.keys[*idx].clone(), encode(&si)?);
                written.push((*idx, view.revisions[*idx], si));
            }
            drop(view);
            if let Some((t, hash)) = token {
                let rec = TokenRecord {
                    request_hash: hash.to_owned(),
                    task_arns: tasks.iter().filter_map(|t| t.task_arn.clone()).collect(),
                    created_at: Some(crate::now()),
                };
                let key = token_key(&l.cluster, t);
                txn = txn.when(key.clone(), 0).put(key, encode(&rec)?);
            }
            if !tasks.is_empty() || token.is_some() {
                let committed = self.objects.commit_at(txn).await;
                let Ok(Some(revision)) = committed else {
                    // The optimistic bookings are wrong now: read everything next time,
                    // and forget the decoded records of the instances this plan booked.
                    // Their revision in the view may equal the store's (the race was lost
                    // on another instance, or a concurrent commit was adopted since), and
                    // a refresh only re-decodes what moved: without this the phantom
                    // bookings would stay until the instance next changes.
                    let mut view = shared.lock().await;
                    view.full_at = None;
                    for (idx, _, _) in &written {
                        if let Some(r) = view.revisions.get_mut(*idx) {
                            *r = 0;
                        }
                    }
                    drop(view);
                    committed?;
                    tracing::debug!(cluster = %l.cluster, "Placement lost a compare-and-swap race; re-planning.");
                    continue;
                };
                // The view already holds these bookings; adopt the committed records so the
                // next refresh finds them current instead of fetching and decoding them.
                let mut view = shared.lock().await;
                for (idx, before, si) in written {
                    if view.revisions.get(idx) == Some(&before) {
                        view.stored[idx] = si;
                        view.revisions[idx] = revision;
                    }
                }
            }
            telemetry::PlacementDecided {
                cluster: &l.cluster,
                placed: tasks.len(),
                failure_reasons: plan.failures.iter().map(|f| f.reason.as_str()),
            }
            .emit();
            if l.group.starts_with("service:") && !tasks.is_empty() {
                telemetry::ControllerAction::StartTask.emit(tasks.len());
            }
            for ex in plan.explanations.iter().take(3) {
                tracing::debug!(cluster = %l.cluster, feasible = ex.feasible, chosen = ?ex.chosen, rejected = ?ex.rejected, keys = ?ex.keys, "Placement decided.");
            }
            let instance_ids: Vec<String> = per_instance
                .values()
                .filter_map(|l| l.first())
                .map(|t| t.instance_id.clone())
                .collect();
            for id in instance_ids {
                self.channels.notify(&l.cluster, &id);
            }
            if !unplaced.is_empty() {
                tracing::info!(cluster = %l.cluster, waiting = unplaced.len(), "Tasks wait in PROVISIONING for capacity.");
            }
            // A failed placement names every instance it tried; a few are enough to act on.
            // Tasks that wait for capacity did not fail.
            let failures = plan
                .failures
                .iter()
                .filter(|_| unplaced.is_empty())
                .take(MAX_FAILURES)
                .map(|f| Failure {
                    // Hidden capacity has no ARN the user may see.
                    arn: if fargate.is_some() {
                        None
                    } else {
                        f.arn.clone()
                    },
                    reason: Some(f.reason.as_str().to_owned()),
                    detail: f.detail.clone(),
                })
                .collect();
            return Ok((tasks, failures));
        }
        Err(EcsError::Contention(format!("cluster {}", l.cluster)))
    }

    /// Answers a repeated RunTask: the same token with the same request returns its tasks.
    async fn replay_token(
        &self,
        cluster: &str,
        token: &str,
        hash: &str,
    ) -> Result<Option<Vec<Task>>, EcsError> {
        let Some((rec, _)) = self
            .objects
            .get::<TokenRecord>(&token_key(cluster, token))
            .await?
        else {
            return Ok(None);
        };
        if rec.request_hash != hash {
            return Err(EcsError::Conflict {
                message: "The clientToken was already used by a RunTask request with different parameters.".into(),
                resource_ids: rec.task_arns,
            });
        }
        let mut tasks = Vec::new();
        for arn in &rec.task_arns {
            if let Some(id) = self.task_id(cluster, arn) {
                if let Some((t, _)) = self
                    .objects
                    .get::<StoredTask>(&task_key(cluster, &id))
                    .await?
                {
                    tasks.push(t.task);
                }
            }
        }
        Ok(Some(tasks))
    }
}

/// Gives a task the specific GPU ids it needs from the instance's free ones (placement
/// has already checked there are enough), and shows them on its containers.
pub(crate) fn assign_gpus(t: &mut StoredTask, inst: &placement::Instance) {
    let n = usize::try_from(t.reservation.gpu_count).unwrap_or(0);
    if n == 0 {
        return;
    }
    let free: Vec<String> = inst
        .gpus
        .iter()
        .filter(|g| !inst.used_gpus.contains(*g))
        .take(n)
        .cloned()
        .collect();
    let mut rest = free.iter();
    for (c, def) in t.task.containers.iter_mut().flatten().zip(&t.containers) {
        let want = container_gpus(def);
        let ids: Vec<String> = rest
            .by_ref()
            .take(usize::try_from(want).unwrap_or(0))
            .cloned()
            .collect();
        if !ids.is_empty() {
            c.gpu_ids = Some(ids);
        }
    }
    t.reservation.gpus = free;
}

/// GPUs one container asks for.
fn container_gpus(c: &ContainerDefinition) -> u32 {
    c.resource_requirements
        .iter()
        .flatten()
        .filter(|r| r.type_ == model::ecs::shapes::ResourceType::Gpu)
        .filter_map(|r| {
            r.value
                .as_deref()
                .and_then(|v| v.trim().parse::<u32>().ok())
        })
        .sum()
}

/// Records a booking in the engine's view (not in the store).
pub(crate) fn book_engine(inst: &mut placement::Instance, r: &Reservation, group: &str) {
    inst.used_gpus.extend(r.gpus.iter().cloned());
    inst.used_cpu += r.cpu;
    inst.used_memory += r.memory;
    inst.used_tcp_ports.extend(r.tcp_ports.iter().copied());
    inst.used_udp_ports.extend(r.udp_ports.iter().copied());
    *inst.groups.entry(group.to_owned()).or_default() += 1;
}

pub(crate) fn parse_placement(
    td: &TaskDefinition,
    constraints: Option<&[PlacementConstraint]>,
    strategies: Option<&[PlacementStrategy]>,
) -> Result<(Vec<Constraint>, Vec<Strategy>), EcsError> {
    let mut out = Vec::new();
    for c in td.placement_constraints.iter().flatten() {
        let kind = c.type_.map(|t| t.as_str()).unwrap_or("memberOf");
        out.push(
            placement::parse_constraint(kind, c.expression.as_deref())
                .map_err(|e| EcsError::InvalidParameter(e.to_string()))?,
        );
    }
    for c in constraints.unwrap_or_default() {
        out.push(
            placement::parse_constraint_shape(c)
                .map_err(|e| EcsError::InvalidParameter(e.to_string()))?,
        );
    }
    if out.len() > 10 {
        return invalid(
            "At most 10 placement constraints are allowed, counting the task definition's.",
        );
    }
    let strategies = strategies.unwrap_or_default();
    if strategies.len() > 5 {
        return invalid("At most 5 placement strategies are allowed.");
    }
    let strategies = strategies
        .iter()
        .map(|s| {
            placement::parse_strategy_shape(s)
                .map_err(|e| EcsError::InvalidParameter(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((out, strategies))
}

fn check_client_token(t: &str) -> Result<(), EcsError> {
    if t.is_empty() || t.len() > 64 || !t.bytes().all(|b| (33..=126).contains(&b)) {
        return invalid("clientToken must be 1 to 64 printable ASCII characters.");
    }
    Ok(())
}

fn seed_of(token: Option<&str>) -> u64 {
    let bytes = match token {
        Some(t) => Sha256::digest(t.as_bytes()),
        None => Sha256::digest(uuid::Uuid::new_v4().as_bytes()),
    };
    u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8]))
}

pub(crate) async fn run_task(
    ecs: &Ecs,
    req: RunTaskRequest,
    _: &Caller,
) -> Result<RunTaskResponse, EcsError> {
    let count = req.count.unwrap_or(1);
    if !(1..=MAX_COUNT).contains(&count) {
        return invalid(format!(
            "count must be between 1 and {MAX_COUNT}; got {count}."
        ));
    }
    refuse_volume_configurations(req.volume_configurations.as_deref())?;
    let (_, cluster, _) = ecs.active_cluster(req.cluster.as_deref()).await?;
    let capacity = fargate::resolve_capacity(
        req.launch_type,
        req.capacity_provider_strategy.as_deref(),
        req.platform_version.as_deref(),
        &cluster,
    )?;
    if let Some(t) = &req.client_token {
        check_client_token(t)?;
    }
    let l = ecs
        .prepare_launch(&LaunchParams {
            cluster: req.cluster.as_deref(),
            task_definition: &req.task_definition,
            overrides: req.overrides.as_ref(),
            group: req.group.as_deref(),
            started_by: req.started_by.as_deref(),
            tags: req.tags.as_deref(),
            propagate_tags: req.propagate_tags,
            network_configuration: req.network_configuration.as_ref(),
            enable_execute_command: req.enable_execute_command,
            capacity,
            managed_tags: req.enable_ecs_managed_tags.unwrap_or(false),
            service: None,
        })
        .await?;
    if l.capacity.fargate().is_some() {
        fargate::check_task(
            &l.td,
            l.task_cpu,
            l.task_memory,
            req.placement_constraints.as_deref(),
            req.placement_strategy.as_deref(),
        )?;
    }
    let (constraints, strategies) = parse_placement(
        &l.td,
        req.placement_constraints.as_deref(),
        req.placement_strategy.as_deref(),
    )?;
    // With no strategy ECS spreads RunTask's tasks randomly; the seed makes it replayable.
    let strategies = if strategies.is_empty() {
        vec![Strategy::Random]
    } else {
        strategies
    };
    let hash = req.client_token.as_ref().map(|_| {
        let mut r = req.clone();
        r.client_token = None;
        hex::encode(Sha256::digest(serde_json::to_vec(&r).unwrap_or_default()))
    });
    let token = req.client_token.as_deref().zip(hash.as_deref());
    let seed = seed_of(req.client_token.as_deref());
    let count = usize::try_from(count).unwrap_or(1);
    let wait = WaitSpec {
        count,
        constraints: req.placement_constraints.clone().unwrap_or_default(),
        strategies: req.placement_strategy.clone().unwrap_or_default(),
    };
    let (tasks, failures) = ecs
        .launch(&l, token, Some(&wait), |view, count| {
            placement::place(
                &view.instances,
                &l.request,
                count,
                &constraints,
                &strategies,
                seed,
            )
        })
        .await?;
    tracing::info!(cluster = %l.cluster, placed = tasks.len(), failed = failures.len(), seed, "RunTask placed tasks.");
    Ok(RunTaskResponse {
        tasks: Some(tasks),
        failures: Some(failures),
    })
}

pub(crate) async fn start_task(
    ecs: &Ecs,
    req: StartTaskRequest,
    _: &Caller,
) -> Result<StartTaskResponse, EcsError> {
    if req.container_instances.is_empty() || req.container_instances.len() > 10 {
        return invalid("containerInstances must name between 1 and 10 container instances.");
    }
    refuse_volume_configurations(req.volume_configurations.as_deref())?;
    let l = ecs
        .prepare_launch(&LaunchParams {
            cluster: req.cluster.as_deref(),
            task_definition: &req.task_definition,
            overrides: req.overrides.as_ref(),
            group: req.group.as_deref(),
            started_by: req.started_by.as_deref(),
            tags: req.tags.as_deref(),
            propagate_tags: req.propagate_tags,
            network_configuration: req.network_configuration.as_ref(),
            enable_execute_command: req.enable_execute_command,
            capacity: Capacity::Ec2,
            managed_tags: req.enable_ecs_managed_tags.unwrap_or(false),
            service: None,
        })
        .await?;
    let mut wanted = Vec::new();
    let mut failures = Vec::new();
    for r in &req.container_instances {
        match ecs.instance_id(&l.cluster, r) {
            // Each instance once: the per-instance check below does not accumulate.
            Some(id) if wanted.iter().any(|(_, w)| *w == id) => {}
            Some(id) => wanted.push((r.clone(), id)),
            None => failures.push(Failure {
                arn: Some(r.clone()),
                reason: Some("MISSING".into()),
                detail: None,
            }),
        }
    }
    let (tasks, more) = ecs
        .launch(&l, None, None, |view, _| {
            place_on_named(view, &wanted, &l.request)
        })
        .await?;
    failures.extend(more);
    Ok(StartTaskResponse {
        tasks: Some(tasks),
        failures: Some(failures),
    })
}

/// One task on each named instance (reference as the caller gave it, instance id), each
/// checked on its own: StartTask and DAEMON services skip the scheduler's strategies.
pub(crate) fn place_on_named(
    view: &ClusterView,
    wanted: &[(String, String)],
    request: &placement::TaskRequest,
) -> Plan {
    let mut plan = Plan::default();
    for (reference, id) in wanted {
        let Some(idx) = view.instances.iter().position(|i| &i.id == id) else {
            plan.failures.push(placement::Failure {
                arn: Some(reference.clone()),
                reason: placement::Reason::Missing,
                detail: None,
            });
            continue;
        };
        let single = [view.instances[idx].clone()];
        let p = placement::place(&single, request, 1, &[], &[], 0);
        if p.placements.is_empty() {
            plan.failures.extend(p.failures);
        } else {
            plan.placements.push(idx);
        }
    }
    plan
}

/// Environment as the agent's map form.
pub(crate) fn env_map(env: Option<&[KeyValuePair]>) -> BTreeMap<String, String> {
    env.unwrap_or_default()
        .iter()
        .filter_map(|e| Some((e.name.clone()?, e.value.clone().unwrap_or_default())))
        .collect()
}

/// The plan of a launch through Auto Scaling group providers: the strategy splits the
/// `count` new tasks over its providers, counting, for a service's task `group`, the
/// tasks each provider already runs (so a service scaled out step by step converges on
/// the strategy's base and weights, as on AWS); each provider's share is placed over its own
/// group's instances (`members`). Returns the plan (placements in the full view's
/// indices), the provider of each placement, and the provider of each task that fits
/// nowhere and waits.
fn split_over_groups(
    view: &ClusterView,
    strategy: &[model::ecs::shapes::CapacityProviderStrategyItem],
    members: &super::group_capacity::Members,
    (group, count): (Option<&str>, usize),
    choose: &impl Fn(&ClusterView, usize) -> Plan,
) -> (Plan, Vec<Option<String>>, Vec<Option<String>>) {
    let existing = group
        .map(|g| running_per_provider(view, strategy, members, g))
        .unwrap_or_default();
    let split = fargate::split(strategy, &existing, count);
    let none = std::collections::HashSet::new();
    let mut plan = Plan::default();
    let (mut placed, mut waiting) = (Vec::new(), Vec::new());
    for (provider, n) in super::group_capacity::compute_shares(&split) {
        let own = provider
            .as_deref()
            .and_then(|p| members.get(p))
            .unwrap_or(&none);
        let (sub, map) = super::group_capacity::restrict_to_members(view, own);
        let part = fargate::widen(choose(&sub, n), &map);
        let fitted = part.placements.len().min(n);
        placed.extend(std::iter::repeat_n(provider.clone(), fitted));
        waiting.extend(std::iter::repeat_n(provider, n - fitted));
        plan.placements
            .extend(part.placements.into_iter().take(fitted));
        plan.failures.extend(part.failures);
        plan.explanations.extend(part.explanations);
    }
    (plan, placed, waiting)
}

/// How many tasks of `group` not yet stopped each provider of `strategy` runs on its
/// group's instances (tasks still waiting in PROVISIONING hold no instance, so they are
/// not counted).
fn running_per_provider(
    view: &ClusterView,
    strategy: &[model::ecs::shapes::CapacityProviderStrategyItem],
    members: &super::group_capacity::Members,
    group: &str,
) -> Vec<(String, u32)> {
    strategy
        .iter()
        .map(|item| {
            let n = members.get(&item.capacity_provider).map_or(0, |own| {
                view.stored
                    .iter()
                    .zip(&view.instances)
                    .filter(|(s, _)| super::group_capacity::is_member(s, own))
                    .map(|(_, i)| i.groups.get(group).copied().unwrap_or(0))
                    .sum()
            });
            (item.capacity_provider.clone(), n)
        })
        .collect()
}
