//! The service operations: validation, the stored record, and what DescribeServices shows.

use super::unsupported::{check_unhonoured, unhonoured_of};
use super::{deployment_id, service_key, service_prefix, StoredService, ALL_SERVICES};
use crate::error::{invalid, EcsError};
use crate::objects::{encode, Step};
use crate::pagination::{page_size, paginate};
use crate::{now, Caller, Ecs};
use model::ecs::shapes::{
    CreateServiceRequest, CreateServiceResponse, DeleteServiceRequest, DeleteServiceResponse,
    Deployment, DeploymentCircuitBreaker, DeploymentConfiguration, DeploymentController,
    DeploymentControllerType, DeploymentRolloutState, DescribeServicesRequest,
    DescribeServicesResponse, Failure, LaunchType, ListServicesRequest, ListServicesResponse,
    NetworkConfiguration, NetworkMode, SchedulingStrategy, Service, ServiceField,
    UpdateServiceRequest, UpdateServiceResponse,
};
use model::ecs::status::{DeploymentStatus, ServiceStatus};
use sha2::{Digest, Sha256};
use store::Txn;

/// Statuses a service goes through.
pub(crate) const ACTIVE: ServiceStatus = ServiceStatus::Active;
pub(crate) const DRAINING: ServiceStatus = ServiceStatus::Draining;
pub(crate) const INACTIVE: ServiceStatus = ServiceStatus::Inactive;

fn check_name(name: &str) -> Result<(), EcsError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        invalid("serviceName must be 1 to 255 letters, numbers, hyphens and underscores.")
    }
}

/// The deployment configuration with ECS's defaults filled in, validated.
pub(crate) fn deployment_config(
    given: Option<&DeploymentConfiguration>,
    base: Option<&DeploymentConfiguration>,
    daemon: bool,
) -> Result<DeploymentConfiguration, EcsError> {
    let (def_min, def_max) = if daemon { (0, 100) } else { (100, 200) };
    let mut c = base.cloned().unwrap_or_default();
    if let Some(g) = given {
        if g.minimum_healthy_percent.is_some() {
            c.minimum_healthy_percent = g.minimum_healthy_percent;
        }
        if g.maximum_percent.is_some() {
            c.maximum_percent = g.maximum_percent;
        }
        if g.deployment_circuit_breaker.is_some() {
            c.deployment_circuit_breaker = g.deployment_circuit_breaker.clone();
        }
        if g.alarms.is_some() {
            c.alarms = g.alarms.clone();
        }
    }
    let min = *c.minimum_healthy_percent.get_or_insert(def_min);
    let max = *c.maximum_percent.get_or_insert(def_max);
    c.deployment_circuit_breaker
        .get_or_insert(DeploymentCircuitBreaker {
            enable: false,
            rollback: false,
            ..Default::default()
        });
    if !(0..=100).contains(&min) {
        return invalid(format!(
            "deploymentConfiguration.minimumHealthyPercent must be between 0 and 100; got {min}."
        ));
    }
    if !(100..=200).contains(&max) {
        return invalid(format!(
            "deploymentConfiguration.maximumPercent must be between 100 and 200; got {max}."
        ));
    }
    Ok(c)
}

/// The ARN of CreateService's `role` (a name, a path and name, or an ARN). As on AWS,
/// the role is what registers a service's tasks with its load balancers, so it is only
/// valid with `loadBalancers`, and never for awsvpc tasks (whose targets are registered
/// by IP through the service-linked role).
fn compute_role_arn(
    role: &str,
    load_balanced: bool,
    awsvpc: bool,
    account: &str,
) -> Result<String, EcsError> {
    if role.is_empty() {
        return invalid("role cannot be empty: give a role name or ARN, or omit it.");
    }
    if !load_balanced {
        return invalid("The role parameter is only valid for services configured to use load balancers: add loadBalancers or omit role.");
    }
    if awsvpc {
        return invalid("You cannot specify an IAM role for services that require a service linked role: tasks using the awsvpc network mode are registered with the service-linked role. Omit role.");
    }
    if role.starts_with("arn:") {
        return Ok(role.to_owned());
    }
    Ok(format!(
        "arn:aws:iam::{account}:role/{}",
        role.trim_start_matches('/')
    ))
}

fn check_desired(n: i32) -> Result<(), EcsError> {
    if !(0..=10_000).contains(&n) {
        return invalid(format!(
            "desiredCount must be between 0 and 10000; got {n}."
        ));
    }
    Ok(())
}

impl Ecs {
    /// Resolves a task definition reference to the ARN of an ACTIVE revision, checking the
    /// network configuration against its network mode as RunTask does.
    pub(crate) async fn service_task_definition(
        &self,
        reference: &str,
        network: Option<&NetworkConfiguration>,
    ) -> Result<String, EcsError> {
        let r = self.parse_task_def_ref(reference)?;
        let Some((stored, _)) = self.load_task_definition(&r).await? else {
            return Err(EcsError::Client("TaskDefinition not found.".into()));
        };
        let td = stored.task_definition;
        if td.status != Some(model::ecs::shapes::TaskDefinitionStatus::Active) {
            return Err(EcsError::Client("TaskDefinition is inactive".into()));
        }
        let awsvpc = td.network_mode == Some(NetworkMode::Awsvpc);
        match network {
            None if awsvpc => {
                return invalid("Network Configuration must be provided when networkMode 'awsvpc' is specified.")
            }
            Some(_) if !awsvpc => {
                return invalid("Network Configuration is not valid for the given networkMode of this task definition.")
            }
            _ => {}
        }
        Ok(td.task_definition_arn.unwrap_or_default())
    }

    /// Each `loadBalancers` entry names a container and port, and a target group that
    /// exists (when a load balancer service is wired in).
    pub(crate) async fn check_load_balancers(
        &self,
        lbs: &[model::ecs::shapes::LoadBalancer],
    ) -> Result<(), EcsError> {
        for lb in lbs {
            let (Some(arn), Some(_), Some(_)) =
                (&lb.target_group_arn, &lb.container_name, lb.container_port)
            else {
                return invalid(
                    "loadBalancers entries need targetGroupArn, containerName and containerPort.",
                );
            };
            if let Some(groups) = &self.balancers {
                let found = groups.describe(arn).await.map_err(|e| {
                    EcsError::InvalidParameter(format!(
                        "targetGroupArn '{arn}' cannot be used: {e}"
                    ))
                })?;
                if found.is_none() {
                    return invalid(format!(
                        "The target group with targetGroupArn '{arn}' does not exist."
                    ));
                }
            }
        }
        Ok(())
    }

    /// Loads a service by name or ARN.
    pub(crate) async fn load_service(
        &self,
        cluster: &str,
        reference: &str,
    ) -> Result<Option<(StoredService, u64)>, EcsError> {
        let name = model::ecs::arn::short_name(reference);
        if name.is_empty() {
            return Ok(None);
        }
        self.objects.get(&service_key(cluster, name)).await
    }
}

/// A cluster's services that count: ACTIVE or DRAINING, on EC2 or on Fargate
/// (DescribeClusters' statistics; DeleteCluster refuses while any is left).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServiceCensus {
    pub active_ec2: u64,
    pub active_fargate: u64,
    pub draining_ec2: u64,
    pub draining_fargate: u64,
}

impl ServiceCensus {
    /// ACTIVE services (the cluster's `activeServicesCount`).
    pub(crate) fn active(&self) -> u64 {
        self.active_ec2 + self.active_fargate
    }

    /// Whether any service is ACTIVE or DRAINING.
    pub(crate) fn any(&self) -> bool {
        self.active() + self.draining_ec2 + self.draining_fargate > 0
    }
}

/// A new PRIMARY deployment for `td`.
fn new_deployment(svc: &Service, td: &str, at: f64) -> Deployment {
    Deployment {
        id: Some(deployment_id()),
        status: Some(DeploymentStatus::Primary),
        task_definition: Some(td.to_owned()),
        desired_count: svc.desired_count,
        pending_count: Some(0),
        running_count: Some(0),
        failed_tasks: Some(0),
        created_at: Some(at),
        updated_at: Some(at),
        // A service with a capacity provider strategy has no launch type, and neither
        // have its deployments (AWS shows the strategy instead).
        launch_type: match &svc.capacity_provider_strategy {
            Some(s) if !s.is_empty() => None,
            _ => svc.launch_type.or(Some(LaunchType::Ec2)),
        },
        capacity_provider_strategy: svc.capacity_provider_strategy.clone(),
        platform_version: svc.platform_version.clone(),
        platform_family: svc.platform_family.clone(),
        network_configuration: svc.network_configuration.clone(),
        rollout_state: Some(DeploymentRolloutState::InProgress),
        rollout_state_reason: Some("ECS deployment ecs-svc in progress.".into()),
        ..Default::default()
    }
}

/// Makes `d` the PRIMARY deployment: the others become ACTIVE (being replaced).
pub(crate) fn push_primary(svc: &mut Service, mut d: Deployment) {
    let id = d.id.clone().unwrap_or_default();
    d.rollout_state_reason = Some(format!("ECS deployment {id} in progress."));
    let deps = svc.deployments.get_or_insert_with(Vec::new);
    for old in deps.iter_mut() {
        old.status = Some(DeploymentStatus::Active);
    }
    // DescribeServices lists the PRIMARY first.
    deps.insert(0, d);
}

/// The write of one attempt: the record at `key`, if still at `rev`; answers with the
/// service as stored.
pub(crate) fn save(key: &str, rev: u64, st: &StoredService) -> Result<Step<Service>, EcsError> {
    Ok(Step::Commit(
        Txn::new()
            .when(key.to_owned(), rev)
            .put(key.to_owned(), encode(st)?),
        st.service.clone(),
    ))
}

fn request_hash(req: &CreateServiceRequest) -> String {
    let mut r = req.clone();
    r.client_token = None;
    hex::encode(Sha256::digest(serde_json::to_vec(&r).unwrap_or_default()))
}

pub(crate) async fn create_service(
    ecs: &Ecs,
    req: CreateServiceRequest,
    caller: &Caller,
) -> Result<CreateServiceResponse, EcsError> {
    let (cluster, cluster_record, _) = ecs.active_cluster(req.cluster.as_deref()).await?;
    check_name(&req.service_name)?;
    let daemon = req.scheduling_strategy == Some(SchedulingStrategy::Daemon);
    let capacity = crate::tasks::fargate::resolve_capacity(
        req.launch_type,
        req.capacity_provider_strategy.as_deref(),
        req.platform_version.as_deref(),
        &cluster_record,
    )?;
    if daemon && capacity.fargate().is_some() {
        return invalid(
            "The daemon scheduling strategy is not supported with the FARGATE launch type.",
        );
    }
    let controller = req
        .deployment_controller
        .as_ref()
        .map_or(DeploymentControllerType::Ecs, |c| c.type_);
    let external = controller == DeploymentControllerType::External;
    let mut unhonoured = unhonoured_of!(req);
    if controller != DeploymentControllerType::Ecs {
        // Task-set driven: see `task_sets`.
        super::task_sets::check_service_controller(controller, daemon, &req)?;
        unhonoured.deployment_controller = None;
    }
    check_unhonoured(&unhonoured)?;
    let desired = match (daemon, req.desired_count) {
        (true, Some(_)) => {
            return invalid("The DAEMON scheduling strategy does not support a desired count; it runs one task on each instance.")
        }
        (true, None) => 0,
        (false, None) => {
            return invalid("desiredCount is required for a service with the REPLICA scheduling strategy.")
        }
        (false, Some(n)) => {
            check_desired(n)?;
            n
        }
    };
    if daemon
        && req
            .placement_strategy
            .as_ref()
            .is_some_and(|s| !s.is_empty())
    {
        return invalid(
            "Placement strategies are not supported with the DAEMON scheduling strategy.",
        );
    }
    // An EXTERNAL service has no task definition of its own: its task sets name theirs.
    let td = match req.task_definition.as_deref() {
        None if external => String::new(),
        None => {
            return invalid(format!(
            "taskDefinition must be specified for a service using the {} deployment controller.",
            controller.as_str()
        ))
        }
        Some(td_ref) => {
            let td = ecs
                .service_task_definition(td_ref, req.network_configuration.as_ref())
                .await?;
            ecs.check_service_definition(
                &capacity,
                &td,
                req.placement_constraints.as_deref(),
                req.placement_strategy.as_deref(),
            )
            .await?;
            td
        }
    };
    // Validate placement now so a bad expression is refused here, not in every round.
    crate::tasks::launch::parse_placement(
        &Default::default(),
        req.placement_constraints.as_deref(),
        req.placement_strategy.as_deref(),
    )?;
    let config = deployment_config(req.deployment_configuration.as_ref(), None, daemon)?;
    let tags = req.tags.clone().unwrap_or_default();
    model::ecs::names::check_tags(&tags).map_err(EcsError::InvalidParameter)?;
    if let Some(g) = req.health_check_grace_period_seconds {
        if !(0..=2_147_483_647).contains(&g) {
            return invalid("healthCheckGracePeriodSeconds must be between 0 and 2147483647.");
        }
        if req.load_balancers.as_ref().is_none_or(Vec::is_empty) {
            return invalid("Health check grace period is only valid for services configured to use load balancers.");
        }
    }
    ecs.check_load_balancers(req.load_balancers.as_deref().unwrap_or_default())
        .await?;
    let role_arn = match req.role.as_deref() {
        None => None,
        Some(r) => Some(compute_role_arn(
            r,
            req.load_balancers.as_ref().is_some_and(|l| !l.is_empty()),
            req.network_configuration.is_some(),
            &ecs.scope.account_id,
        )?),
    };
    // AWS shows a service's strategy (given or the cluster's default) instead of a
    // launchType.
    let strategy = capacity
        .fargate()
        .map(|f| f.strategy.clone())
        .or_else(|| capacity.groups().map(<[_]>::to_vec))
        .unwrap_or_default();
    let hash = request_hash(&req);
    let key = service_key(&cluster, &req.service_name);
    let at = now();
    let scheduling = if daemon {
        SchedulingStrategy::Daemon
    } else {
        SchedulingStrategy::Replica
    };
    let svc = ecs
        .objects
        .retry(&key, || async {
            let existing = ecs.objects.get::<StoredService>(&key).await?;
            let rev = match &existing {
                Some((s, _)) if s.service.status != Some(INACTIVE) => {
                    if req.client_token.is_some() && s.request_hash == hash {
                        return Ok(Step::Done(s.service.clone()));
                    }
                    return invalid("Creation of service was not idempotent.");
                }
                Some((_, rev)) => *rev,
                None => 0,
            };
            let service = Service {
                service_arn: Some(ecs.scope.service(&cluster, &req.service_name)),
                service_name: Some(req.service_name.clone()),
                cluster_arn: Some(ecs.scope.cluster(&cluster)),
                load_balancers: Some(req.load_balancers.clone().unwrap_or_default()),
                service_registries: Some(Vec::new()),
                role_arn: role_arn.clone(),
                availability_zone_rebalancing: req.availability_zone_rebalancing,
                status: Some(ACTIVE),
                desired_count: Some(desired),
                running_count: Some(0),
                pending_count: Some(0),
                launch_type: match &capacity {
                    _ if !strategy.is_empty() => None,
                    crate::tasks::fargate::Capacity::Ec2
                    | crate::tasks::fargate::Capacity::Groups(_) => Some(LaunchType::Ec2),
                    crate::tasks::fargate::Capacity::Fargate(_) => Some(LaunchType::Fargate),
                },
                capacity_provider_strategy: (!strategy.is_empty()).then(|| strategy.clone()),
                platform_version: capacity.fargate().map(|f| f.platform_version.clone()),
                platform_family: capacity.fargate().map(|_| "Linux".to_owned()),
                task_definition: (!external).then(|| td.clone()),
                deployment_configuration: Some(config.clone()),
                events: Some(Vec::new()),
                created_at: Some(at),
                placement_constraints: Some(req.placement_constraints.clone().unwrap_or_default()),
                placement_strategy: Some(req.placement_strategy.clone().unwrap_or_default()),
                network_configuration: req.network_configuration.clone(),
                health_check_grace_period_seconds: req.health_check_grace_period_seconds,
                scheduling_strategy: Some(scheduling),
                deployment_controller: Some(DeploymentController { type_: controller }),
                tags: Some(tags.clone()),
                created_by: Some(caller.principal_arn().to_owned()),
                enable_ecs_managed_tags: Some(req.enable_ecs_managed_tags.unwrap_or(false)),
                propagate_tags: Some(
                    req.propagate_tags
                        .unwrap_or(model::ecs::shapes::PropagateTags::None),
                ),
                enable_execute_command: Some(req.enable_execute_command.unwrap_or(false)),
                ..Default::default()
            };
            let d = new_deployment(&service, &td, at);
            let created_launch_type = service.launch_type;
            let mut stored = StoredService {
                service,
                request_hash: hash.clone(),
                completed: Vec::new(),
                steady: false,
                inactive_at: None,
                history: Default::default(),
                task_set_tokens: Vec::new(),
                created_launch_type,
            };
            match controller {
                DeploymentControllerType::Ecs => stored.deploy(&ecs.scope, d, at),
                _ => super::task_sets::api::apply_initial_task_sets(
                    ecs,
                    &cluster,
                    &mut stored,
                    &td,
                    &capacity,
                    at,
                ),
            }
            save(&key, rev, &stored)
        })
        .await?;
    ecs.wake_services();
    tracing::info!(cluster = %cluster, service = %req.service_name, "Service created.");
    Ok(CreateServiceResponse { service: Some(svc) })
}

/// The UpdateService members that change the service itself and never start a
/// deployment (also those of a service driven by task sets): tasks started from now on
/// follow them.
pub(crate) fn apply_service_settings(s: &mut Service, req: &UpdateServiceRequest) {
    if let Some(c) = &req.placement_constraints {
        s.placement_constraints = Some(c.clone());
    }
    if let Some(p) = &req.placement_strategy {
        s.placement_strategy = Some(p.clone());
    }
    if let Some(g) = req.health_check_grace_period_seconds {
        s.health_check_grace_period_seconds = Some(g);
    }
    if let Some(e) = req.enable_execute_command {
        s.enable_execute_command = Some(e);
    }
    if let Some(p) = req.propagate_tags {
        s.propagate_tags = Some(p);
    }
    if let Some(m) = req.enable_ecs_managed_tags {
        s.enable_ecs_managed_tags = Some(m);
    }
    if let Some(a) = req.availability_zone_rebalancing {
        s.availability_zone_rebalancing = Some(a);
    }
}

/// What UpdateService's `capacityProviderStrategy` moves the service to, or `None` when
/// it is what the service has. AWS's transitions: a launch type to a strategy, a strategy
/// to another (Fargate and group providers either way), and an empty list back to the
/// launch type the service was created with (or the cluster's default strategy when it
/// had none); each change needs `forceNewDeployment`.
fn compute_capacity_update(
    s: &Service,
    given: &[model::ecs::shapes::CapacityProviderStrategyItem],
    created_launch_type: Option<LaunchType>,
    cluster: &model::ecs::shapes::Cluster,
    forced: bool,
    platform_version: Option<&str>,
) -> Result<Option<crate::tasks::fargate::Capacity>, EcsError> {
    let current = s.capacity_provider_strategy.clone().unwrap_or_default();
    let (launch_type, strategy) = if given.is_empty() {
        if current.is_empty() {
            return Ok(None);
        }
        match created_launch_type {
            Some(lt) => (Some(lt), Vec::new()),
            None => {
                let default = cluster
                    .default_capacity_provider_strategy
                    .clone()
                    .unwrap_or_default();
                if default.is_empty() {
                    return invalid("No launch type to fall back to for empty capacity provider strategy. Your service was not created with a launch type.");
                }
                (None, default)
            }
        }
    } else {
        (None, given.to_vec())
    };
    if launch_type.is_none() && strategy == current {
        return Ok(None);
    }
    if !forced {
        return invalid("When switching from launch type to capacity provider strategy on an existing service, or making a change to a capacity provider strategy on a service that is already using one, you must force a new deployment.");
    }
    // A Fargate service keeps its platform version unless the request names another.
    let version = platform_version.or(s.platform_version.as_deref());
    let strategy_is_fargate =
        !strategy.is_empty() && !crate::tasks::fargate::uses_groups(&strategy)?;
    let version = match launch_type {
        Some(LaunchType::Fargate) => version,
        None if strategy_is_fargate => version,
        _ => platform_version,
    };
    crate::tasks::fargate::resolve_capacity(
        launch_type,
        (!strategy.is_empty()).then_some(strategy.as_slice()),
        version,
        cluster,
    )
    .map(Some)
}

/// Shows `capacity` on the service: a launch type or a strategy, never both.
fn apply_capacity(s: &mut Service, capacity: &crate::tasks::fargate::Capacity) {
    use crate::tasks::fargate::Capacity;
    match capacity {
        Capacity::Ec2 => {
            s.launch_type = Some(LaunchType::Ec2);
            s.capacity_provider_strategy = None;
        }
        Capacity::Groups(strategy) => {
            s.launch_type = None;
            s.capacity_provider_strategy = Some(strategy.clone());
        }
        Capacity::Fargate(f) if f.strategy.is_empty() => {
            s.launch_type = Some(LaunchType::Fargate);
            s.capacity_provider_strategy = None;
        }
        Capacity::Fargate(f) => {
            s.launch_type = None;
            s.capacity_provider_strategy = Some(f.strategy.clone());
        }
    }
    s.platform_version = capacity.fargate().map(|f| f.platform_version.clone());
    s.platform_family = capacity.fargate().map(|_| "Linux".to_owned());
}

pub(crate) async fn update_service(
    ecs: &Ecs,
    req: UpdateServiceRequest,
    _: &Caller,
) -> Result<UpdateServiceResponse, EcsError> {
    let (cluster, cluster_record, _) = ecs.active_cluster(req.cluster.as_deref()).await?;
    if let Some(n) = req.desired_count {
        check_desired(n)?;
    }
    check_unhonoured(&unhonoured_of!(req))?;
    crate::tasks::launch::parse_placement(
        &Default::default(),
        req.placement_constraints.as_deref(),
        req.placement_strategy.as_deref(),
    )?;
    let name = model::ecs::arn::short_name(&req.service).to_owned();
    let key = service_key(&cluster, &name);
    let svc = ecs
        .objects
        .retry(&key, || async {
            let Some((mut st, rev)) = ecs.load_service(&cluster, &name).await? else {
                return Err(EcsError::ServiceNotFound);
            };
            if st.service.status != Some(ACTIVE) {
                return Err(EcsError::ServiceNotActive);
            }
            if super::task_sets::is_task_set_driven(&st.service) {
                super::task_sets::api::apply_task_set_service_update(&mut st.service, &req)?;
                st.steady = false;
                return save(&key, rev, &st);
            }
            let s = &mut st.service;
            let daemon = s.scheduling_strategy == Some(SchedulingStrategy::Daemon);
            if let Some(n) = req.desired_count {
                if daemon {
                    return invalid(
                        "The DAEMON scheduling strategy does not support a desired count.",
                    );
                }
                s.desired_count = Some(n);
                if let Some(p) = s
                    .deployments
                    .iter_mut()
                    .flatten()
                    .find(|d| d.status == Some(DeploymentStatus::Primary))
                {
                    p.desired_count = Some(n);
                }
            }
            if daemon
                && req
                    .placement_strategy
                    .as_ref()
                    .is_some_and(|p| !p.is_empty())
            {
                return invalid(
                    "Placement strategies are not supported with the DAEMON scheduling strategy.",
                );
            }
            s.deployment_configuration = Some(deployment_config(
                req.deployment_configuration.as_ref(),
                s.deployment_configuration.as_ref(),
                daemon,
            )?);
            apply_service_settings(s, &req);
            if let Some(lbs) = &req.load_balancers {
                ecs.check_load_balancers(lbs).await?;
                s.load_balancers = Some(lbs.clone());
            }
            let mut redeploy = req.force_new_deployment.unwrap_or(false);
            if let Some(given) = &req.capacity_provider_strategy {
                let launch_type = st.created_launch_type;
                let s = &mut st.service;
                let td = s.task_definition.clone().unwrap_or_default();
                let capacity = compute_capacity_update(
                    s,
                    given,
                    launch_type,
                    &cluster_record,
                    redeploy,
                    req.platform_version.as_deref(),
                )?;
                if let Some(capacity) = capacity {
                    if daemon && capacity.fargate().is_some() {
                        return invalid(
                            "The daemon scheduling strategy is not supported with the FARGATE launch type.",
                        );
                    }
                    ecs.check_service_definition(&capacity, &td, None, None)
                        .await?;
                    apply_capacity(s, &capacity);
                }
            }
            let s = &mut st.service;
            if let Some(v) = req.platform_version.as_deref() {
                let Some(f) = crate::tasks::fargate::Capacity::of_service(s)
                    .fargate()
                    .cloned()
                else {
                    return invalid(
                        "The platform version must be null when specifying an EC2 launch type.",
                    );
                };
                let v = crate::tasks::fargate::resolve_platform_version(Some(v))?;
                if f.platform_version != v {
                    s.platform_version = Some(v);
                    redeploy = true;
                }
            }
            if let Some(nc) = &req.network_configuration {
                s.network_configuration = Some(nc.clone());
                redeploy = true;
            }
            let td_ref = req
                .task_definition
                .clone()
                .or_else(|| s.task_definition.clone())
                .unwrap_or_default();
            let td = ecs
                .service_task_definition(&td_ref, s.network_configuration.as_ref())
                .await?;
            if s.task_definition.as_deref() != Some(td.as_str()) {
                ecs.check_service_definition(
                    &crate::tasks::fargate::Capacity::of_service(s),
                    &td,
                    None,
                    None,
                )
                .await?;
                s.task_definition = Some(td.clone());
                redeploy = true;
            }
            if redeploy {
                let at = now();
                let d = new_deployment(s, &td, at);
                st.deploy(&ecs.scope, d, at);
                st.steady = false;
            }
            save(&key, rev, &st)
        })
        .await?;
    ecs.wake_services();
    tracing::info!(cluster = %cluster, service = %name, "Service updated.");
    Ok(UpdateServiceResponse { service: Some(svc) })
}

pub(crate) async fn delete_service(
    ecs: &Ecs,
    req: DeleteServiceRequest,
    _: &Caller,
) -> Result<DeleteServiceResponse, EcsError> {
    let (cluster, _, _) = ecs.active_cluster(req.cluster.as_deref()).await?;
    let name = model::ecs::arn::short_name(&req.service).to_owned();
    let key = service_key(&cluster, &name);
    let force = req.force.unwrap_or(false);
    let svc = ecs
        .objects
        .retry(&key, || async {
            let Some((mut st, rev)) = ecs.load_service(&cluster, &name).await? else {
                return Err(EcsError::ServiceNotFound);
            };
            match st.service.status {
                Some(ACTIVE) => {}
                Some(DRAINING) => return Ok(Step::Done(st.service)),
                _ => return Err(EcsError::ServiceNotActive),
            }
            let replica = st.service.scheduling_strategy != Some(SchedulingStrategy::Daemon);
            if replica && !force && st.service.desired_count.unwrap_or(0) > 0 {
                return invalid("The service cannot be stopped while it is scaled above 0.");
            }
            st.service.status = Some(DRAINING);
            st.service.desired_count = Some(0);
            for d in st.service.deployments.iter_mut().flatten() {
                d.desired_count = Some(0);
            }
            st.steady = false;
            save(&key, rev, &st)
        })
        .await?;
    ecs.wake_services();
    tracing::info!(cluster = %cluster, service = %name, "Service deleted (draining).");
    Ok(DeleteServiceResponse { service: Some(svc) })
}

pub(crate) async fn describe_services(
    ecs: &Ecs,
    req: DescribeServicesRequest,
    _: &Caller,
) -> Result<DescribeServicesResponse, EcsError> {
    let (cluster, _, _) = ecs.active_cluster(req.cluster.as_deref()).await?;
    if req.services.is_empty() || req.services.len() > 10 {
        return invalid("services must name between 1 and 10 services.");
    }
    let with_tags = req
        .include
        .as_ref()
        .is_some_and(|i| i.contains(&ServiceField::Tags));
    let mut services = Vec::new();
    let mut failures = Vec::new();
    for r in &req.services {
        match ecs.load_service(&cluster, r).await? {
            Some((st, _)) => {
                let mut s = st.service;
                if !with_tags {
                    s.tags = None;
                }
                services.push(s);
            }
            None => failures.push(Failure {
                arn: Some(if r.starts_with("arn:") {
                    r.clone()
                } else {
                    ecs.scope.service(&cluster, r)
                }),
                reason: Some("MISSING".into()),
                detail: None,
            }),
        }
    }
    Ok(DescribeServicesResponse {
        services: Some(services),
        failures: Some(failures),
    })
}

pub(crate) async fn list_services(
    ecs: &Ecs,
    req: ListServicesRequest,
    _: &Caller,
) -> Result<ListServicesResponse, EcsError> {
    let (cluster, _, _) = ecs.active_cluster(req.cluster.as_deref()).await?;
    let size = page_size(req.max_results, 100)?;
    let items: Vec<(String, String)> = ecs
        .objects
        .list::<StoredService>(&service_prefix(&cluster))
        .await?
        .into_iter()
        .filter(|(_, st, _)| st.service.status != Some(INACTIVE))
        .filter(|(_, st, _)| {
            req.launch_type
                .is_none_or(|l| st.service.launch_type == Some(l))
        })
        .filter(|(_, st, _)| {
            req.scheduling_strategy
                .is_none_or(|s| st.service.scheduling_strategy == Some(s))
        })
        // Every service here is the customer's: ECS manages none of its own.
        .filter(|(_, st, _)| {
            req.resource_management_type.is_none_or(|t| {
                st.service
                    .resource_management_type
                    .unwrap_or(model::ecs::shapes::ResourceManagementType::Customer)
                    == t
            })
        })
        .map(|(k, st, _)| (k, st.service.service_arn.unwrap_or_default()))
        .collect();
    let page = paginate(items, req.next_token.as_deref(), size, false)?;
    Ok(ListServicesResponse {
        service_arns: Some(page.items),
        next_token: page.next_token,
    })
}

impl Ecs {
    /// The cluster's ACTIVE and DRAINING services, by whether they run on Fargate.
    pub(crate) async fn service_census(&self, cluster: &str) -> Result<ServiceCensus, EcsError> {
        let mut c = ServiceCensus::default();
        for (_, s, _) in self
            .objects
            .list::<StoredService>(&service_prefix(cluster))
            .await?
        {
            let fargate = crate::tasks::fargate::Capacity::of_service(&s.service)
                .fargate()
                .is_some();
            let slot = match (s.service.status, fargate) {
                (Some(ACTIVE), false) => &mut c.active_ec2,
                (Some(ACTIVE), true) => &mut c.active_fargate,
                (Some(DRAINING), false) => &mut c.draining_ec2,
                (Some(DRAINING), true) => &mut c.draining_fargate,
                _ => continue,
            };
            *slot += 1;
        }
        Ok(c)
    }

    /// Every stored service key, across clusters.
    pub(crate) async fn all_service_keys(&self) -> Result<Vec<String>, EcsError> {
        Ok(self
            .objects
            .range_all(ALL_SERVICES)
            .await?
            .into_iter()
            .map(|kv| kv.key)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_become_arns_and_arns_stay() {
        let arn = compute_role_arn("ecsServiceRole", true, false, "123456789012");
        assert_eq!(
            arn.ok().as_deref(),
            Some("arn:aws:iam::123456789012:role/ecsServiceRole")
        );
        let path = compute_role_arn("/ops/lb", true, false, "1");
        assert_eq!(path.ok().as_deref(), Some("arn:aws:iam::1:role/ops/lb"));
        let given = "arn:aws:iam::1:role/x";
        assert_eq!(
            compute_role_arn(given, true, false, "2").ok().as_deref(),
            Some(given)
        );
    }

    #[test]
    fn role_needs_load_balancers_and_no_awsvpc() {
        assert!(compute_role_arn("r", false, false, "1").is_err());
        assert!(compute_role_arn("r", true, true, "1").is_err());
        assert!(compute_role_arn("", true, false, "1").is_err());
    }

    #[test]
    fn census_counts_active_and_any() {
        let c = ServiceCensus {
            active_ec2: 1,
            active_fargate: 2,
            ..Default::default()
        };
        assert_eq!(c.active(), 3);
        assert!(c.any());
        let draining = ServiceCensus {
            draining_fargate: 1,
            ..Default::default()
        };
        assert_eq!(draining.active(), 0);
        assert!(draining.any());
        assert!(!ServiceCensus::default().any());
    }
}
