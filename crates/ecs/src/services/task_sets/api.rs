//! The task-set operations (CreateTaskSet, DescribeTaskSets, UpdateTaskSet, DeleteTaskSet,
//! UpdateServicePrimaryTaskSet) and what CreateService and UpdateService do differently for
//! a service whose deployments are driven through task sets.

use super::{
    apply_desired_counts, compute_desired_count, controller_of, parse_scale, position_of,
    ACTIVE as TS_ACTIVE, DRAINING as TS_DRAINING, MAX_TASK_SETS, NOT_EXTERNAL, PRIMARY,
};
use crate::error::{invalid, EcsError};
use crate::objects::{encode, Step};
use crate::services::api::{apply_service_settings, deployment_config, ACTIVE};
use crate::services::unsupported::{check_unhonoured, Unhonoured};
use crate::services::{deployment_id, service_key, StoredService};
use crate::tasks::fargate::{resolve_capacity, Capacity};
use crate::{now, Caller, Ecs};
use model::ecs::shapes::{
    CreateTaskSetRequest, CreateTaskSetResponse, DeleteTaskSetRequest, DeleteTaskSetResponse,
    DeploymentControllerType, DescribeTaskSetsRequest, DescribeTaskSetsResponse, Failure,
    LaunchType, Scale, Service, StabilityStatus, TaskSet, TaskSetField,
    UpdateServicePrimaryTaskSetRequest, UpdateServicePrimaryTaskSetResponse, UpdateServiceRequest,
    UpdateTaskSetRequest, UpdateTaskSetResponse,
};

/// The write of one attempt (the record at `key`, if still at `rev`), answering `answer`.
fn commit<T>(key: &str, rev: u64, st: &StoredService, answer: T) -> Result<Step<T>, EcsError> {
    Ok(Step::Commit(
        store::Txn::new()
            .when(key.to_owned(), rev)
            .put(key.to_owned(), encode(st)?),
        answer,
    ))
}

/// Which task-set operations a caller may use on a service.
#[derive(Clone, Copy, PartialEq)]
enum Access {
    /// DescribeTaskSets: any service whose deployments are task sets.
    Read,
    /// The writes: EXTERNAL services only (CodeDeploy drives a CODE_DEPLOY service's).
    Write,
}

impl Ecs {
    /// Loads an ACTIVE service whose task sets the caller may read or write.
    async fn task_set_service(
        &self,
        cluster: &str,
        service: &str,
        access: Access,
    ) -> Result<(StoredService, u64), EcsError> {
        let Some((st, rev)) = self.load_service(cluster, service).await? else {
            return Err(EcsError::ServiceNotFound);
        };
        if st.service.status != Some(ACTIVE) {
            return Err(EcsError::ServiceNotActive);
        }
        let allowed = match controller_of(&st.service) {
            DeploymentControllerType::External => true,
            DeploymentControllerType::CodeDeploy => access == Access::Read,
            DeploymentControllerType::Ecs => false,
        };
        if !allowed {
            return invalid(NOT_EXTERNAL);
        }
        Ok((st, rev))
    }
}

/// A new task set of `svc` (status ACTIVE, STABILIZING until the controller has run it).
pub(crate) struct NewTaskSet<'a> {
    pub cluster: &'a str,
    pub task_definition: String,
    pub capacity: &'a Capacity,
    pub scale: Scale,
    pub request: &'a CreateTaskSetRequest,
}

/// Builds the stored task set of a CreateTaskSet (or of CreateService for CODE_DEPLOY).
pub(crate) fn new_task_set(ecs: &Ecs, svc: &Service, n: &NewTaskSet<'_>, at: f64) -> TaskSet {
    let name = svc.service_name.as_deref().unwrap_or_default();
    let id = deployment_id();
    let strategy = n
        .capacity
        .fargate()
        .map(|f| f.strategy.clone())
        .unwrap_or_default();
    let mut ts = TaskSet {
        task_set_arn: Some(ecs.scope.task_set(n.cluster, name, &id)),
        id: Some(id),
        service_arn: svc.service_arn.clone(),
        cluster_arn: svc.cluster_arn.clone(),
        external_id: n.request.external_id.clone(),
        status: Some(TS_ACTIVE.to_owned()),
        task_definition: Some(n.task_definition.clone()),
        pending_count: Some(0),
        running_count: Some(0),
        created_at: Some(at),
        updated_at: Some(at),
        // As for services: a capacity provider strategy replaces the launch type.
        launch_type: match n.capacity {
            _ if !strategy.is_empty() => None,
            Capacity::Ec2 | crate::tasks::fargate::Capacity::Groups(_) => Some(LaunchType::Ec2),
            Capacity::Fargate(_) => Some(LaunchType::Fargate),
        },
        capacity_provider_strategy: (!strategy.is_empty()).then_some(strategy),
        platform_version: n.capacity.fargate().map(|f| f.platform_version.clone()),
        platform_family: n.capacity.fargate().map(|_| "Linux".to_owned()),
        network_configuration: n.request.network_configuration.clone(),
        load_balancers: Some(n.request.load_balancers.clone().unwrap_or_default()),
        service_registries: Some(Vec::new()),
        scale: Some(n.scale.clone()),
        stability_status: Some(StabilityStatus::Stabilizing),
        stability_status_at: Some(at),
        tags: Some(n.request.tags.clone().unwrap_or_default()),
        ..Default::default()
    };
    ts.computed_desired_count = Some(compute_desired_count(svc.desired_count.unwrap_or(0), &ts));
    ts
}

/// Validates what a task set launches: its capacity, task definition and load balancers.
/// Returns the task definition's ARN and the capacity.
pub(crate) async fn check_launch(
    ecs: &Ecs,
    svc: &Service,
    cluster_record: &model::ecs::shapes::Cluster,
    req: &CreateTaskSetRequest,
) -> Result<(String, Capacity), EcsError> {
    check_unhonoured(&Unhonoured {
        service_registries: req.service_registries.as_deref(),
        ..Default::default()
    })?;
    // Neither given: the task set runs where the service does.
    let (launch_type, strategy) =
        if req.launch_type.is_none() && req.capacity_provider_strategy.is_none() {
            (svc.launch_type, svc.capacity_provider_strategy.as_deref())
        } else {
            (req.launch_type, req.capacity_provider_strategy.as_deref())
        };
    let capacity = resolve_capacity(
        launch_type,
        strategy,
        req.platform_version.as_deref(),
        cluster_record,
    )?;
    let td = ecs
        .service_task_definition(&req.task_definition, req.network_configuration.as_ref())
        .await?;
    ecs.check_service_definition(
        &capacity,
        &td,
        svc.placement_constraints.as_deref(),
        svc.placement_strategy.as_deref(),
    )
    .await?;
    ecs.check_load_balancers(req.load_balancers.as_deref().unwrap_or_default())
        .await?;
    model::ecs::names::check_tags(req.tags.as_deref().unwrap_or_default())
        .map_err(EcsError::InvalidParameter)?;
    if req.external_id.as_ref().is_some_and(|e| e.len() > 255) {
        return invalid("externalId must be at most 255 characters.");
    }
    Ok((td, capacity))
}

pub(crate) async fn create_task_set(
    ecs: &Ecs,
    req: CreateTaskSetRequest,
    _: &Caller,
) -> Result<CreateTaskSetResponse, EcsError> {
    let (cluster, cluster_record, _) = ecs.active_cluster(Some(req.cluster.as_str())).await?;
    let (first, _) = ecs
        .task_set_service(&cluster, &req.service, Access::Write)
        .await?;
    let scale = parse_scale(req.scale.as_ref())?;
    let (td, capacity) = check_launch(ecs, &first.service, &cluster_record, &req).await?;
    let name = first.name().to_owned();
    let key = service_key(&cluster, &name);
    let at = now();
    let ts = ecs
        .objects
        .retry(&key, || async {
            let (mut st, rev) = ecs
                .task_set_service(&cluster, &name, Access::Write)
                .await?;
            if let Some(token) = &req.client_token {
                let earlier = st
                    .task_set_tokens
                    .iter()
                    .find(|(t, _)| t == token)
                    .and_then(|(_, id)| position_of(&st.service, id));
                if let Some(i) = earlier {
                    let ts = st.service.task_sets.iter().flatten().nth(i).cloned();
                    return Ok(Step::Done(ts.unwrap_or_default()));
                }
            }
            let sets = st.service.task_sets.get_or_insert_with(Vec::new);
            if sets.len() >= MAX_TASK_SETS {
                return invalid(format!(
                    "{} deployments exist on the service. Unable to create new TaskSet since this exceeds the maximum limit.",
                    sets.len()
                ));
            }
            let ts = new_task_set(
                ecs,
                &st.service,
                &NewTaskSet {
                    cluster: &cluster,
                    task_definition: td.clone(),
                    capacity: &capacity,
                    scale: scale.clone(),
                    request: &req,
                },
                at,
            );
            st.service.task_sets.get_or_insert_with(Vec::new).push(ts.clone());
            if let Some(token) = &req.client_token {
                st.task_set_tokens
                    .push((token.clone(), ts.id.clone().unwrap_or_default()));
            }
            st.steady = false;
            commit(&key, rev, &st, ts)
        })
        .await?;
    ecs.wake_services();
    tracing::info!(cluster = %cluster, service = %name, task_set = ts.id.as_deref().unwrap_or_default(), "Task set created.");
    Ok(CreateTaskSetResponse { task_set: Some(ts) })
}

pub(crate) async fn describe_task_sets(
    ecs: &Ecs,
    req: DescribeTaskSetsRequest,
    _: &Caller,
) -> Result<DescribeTaskSetsResponse, EcsError> {
    let (cluster, _, _) = ecs.active_cluster(Some(req.cluster.as_str())).await?;
    let (st, _) = ecs
        .task_set_service(&cluster, &req.service, Access::Read)
        .await?;
    let with_tags = req
        .include
        .as_ref()
        .is_some_and(|i| i.contains(&TaskSetField::Tags));
    let all: Vec<TaskSet> = st.service.task_sets.clone().unwrap_or_default();
    let mut found = Vec::new();
    let mut failures = Vec::new();
    match req.task_sets.as_ref().filter(|t| !t.is_empty()) {
        None => found = all,
        Some(refs) => {
            for r in refs {
                match position_of(&st.service, r) {
                    Some(i) => found.push(all[i].clone()),
                    None => failures.push(Failure {
                        arn: Some(r.clone()),
                        reason: Some("MISSING".into()),
                        detail: None,
                    }),
                }
            }
        }
    }
    if !with_tags {
        for ts in &mut found {
            ts.tags = None;
        }
    }
    Ok(DescribeTaskSetsResponse {
        task_sets: Some(found),
        failures: Some(failures),
    })
}

/// Applies `change` to the task set `reference` names in an EXTERNAL service and answers
/// with it as stored.
async fn change_task_set<F>(
    ecs: &Ecs,
    cluster: &str,
    service: &str,
    reference: &str,
    change: F,
) -> Result<TaskSet, EcsError>
where
    F: Fn(&mut Service, usize, f64) -> Result<(), EcsError>,
{
    let (first, _) = ecs
        .task_set_service(cluster, service, Access::Write)
        .await?;
    let name = first.name().to_owned();
    let key = service_key(cluster, &name);
    let ts = ecs
        .objects
        .retry(&key, || async {
            let (mut st, rev) = ecs.task_set_service(cluster, &name, Access::Write).await?;
            let Some(i) = position_of(&st.service, reference) else {
                return Err(EcsError::TaskSetNotFound);
            };
            change(&mut st.service, i, now())?;
            apply_desired_counts(&mut st.service);
            st.steady = false;
            let ts = st
                .service
                .task_sets
                .iter()
                .flatten()
                .nth(i)
                .cloned()
                .unwrap_or_default();
            commit(&key, rev, &st, ts)
        })
        .await?;
    ecs.wake_services();
    Ok(ts)
}

/// The `i`th task set (present: `position_of` found it).
fn nth(svc: &mut Service, i: usize) -> Result<&mut TaskSet, EcsError> {
    svc.task_sets
        .iter_mut()
        .flatten()
        .nth(i)
        .ok_or(EcsError::TaskSetNotFound)
}

fn refuse_draining(ts: &TaskSet) -> Result<(), EcsError> {
    if ts.status.as_deref() == Some(TS_DRAINING) {
        return invalid(format!(
            "The task set {} is being deleted (DRAINING) and cannot be changed.",
            ts.id.as_deref().unwrap_or_default()
        ));
    }
    Ok(())
}

pub(crate) async fn update_task_set(
    ecs: &Ecs,
    req: UpdateTaskSetRequest,
    _: &Caller,
) -> Result<UpdateTaskSetResponse, EcsError> {
    let (cluster, _, _) = ecs.active_cluster(Some(req.cluster.as_str())).await?;
    let scale = parse_scale(Some(&req.scale))?;
    let ts = change_task_set(ecs, &cluster, &req.service, &req.task_set, |svc, i, at| {
        let ts = nth(svc, i)?;
        refuse_draining(ts)?;
        ts.scale = Some(scale.clone());
        ts.updated_at = Some(at);
        Ok(())
    })
    .await?;
    tracing::info!(cluster = %cluster, service = %req.service, task_set = %req.task_set, "Task set scaled.");
    Ok(UpdateTaskSetResponse { task_set: Some(ts) })
}

pub(crate) async fn delete_task_set(
    ecs: &Ecs,
    req: DeleteTaskSetRequest,
    _: &Caller,
) -> Result<DeleteTaskSetResponse, EcsError> {
    let (cluster, _, _) = ecs.active_cluster(Some(req.cluster.as_str())).await?;
    let force = req.force.unwrap_or(false);
    let ts = change_task_set(ecs, &cluster, &req.service, &req.task_set, |svc, i, at| {
        let ts = nth(svc, i)?;
        if ts.status.as_deref() == Some(TS_DRAINING) {
            return Ok(());
        }
        let percent = ts.scale.as_ref().and_then(|s| s.value).unwrap_or(0.0);
        if !force && percent > 0.0 {
            return invalid(format!(
                "The task set {} cannot be deleted while its scale is above 0 percent; scale it to 0 with UpdateTaskSet first, or delete it with force.",
                ts.id.as_deref().unwrap_or_default()
            ));
        }
        ts.status = Some(TS_DRAINING.to_owned());
        ts.updated_at = Some(at);
        Ok(())
    })
    .await?;
    tracing::info!(cluster = %cluster, service = %req.service, task_set = %req.task_set, "Task set deleted (draining).");
    Ok(DeleteTaskSetResponse { task_set: Some(ts) })
}

pub(crate) async fn update_service_primary_task_set(
    ecs: &Ecs,
    req: UpdateServicePrimaryTaskSetRequest,
    _: &Caller,
) -> Result<UpdateServicePrimaryTaskSetResponse, EcsError> {
    let (cluster, _, _) = ecs.active_cluster(Some(req.cluster.as_str())).await?;
    let ts = change_task_set(
        ecs,
        &cluster,
        &req.service,
        &req.primary_task_set,
        |svc, i, at| {
            refuse_draining(nth(svc, i)?)?;
            apply_primary(svc, i, at);
            Ok(())
        },
    )
    .await?;
    tracing::info!(cluster = %cluster, service = %req.service, task_set = %req.primary_task_set, "Primary task set switched.");
    Ok(UpdateServicePrimaryTaskSetResponse { task_set: Some(ts) })
}

/// Makes the `i`th task set the PRIMARY (the former PRIMARY becomes ACTIVE); the service's
/// own configuration follows the PRIMARY's, as on AWS.
pub(crate) fn apply_primary(svc: &mut Service, i: usize, at: f64) {
    for (j, ts) in svc.task_sets.iter_mut().flatten().enumerate() {
        if j == i {
            if ts.status.as_deref() != Some(PRIMARY) {
                ts.status = Some(PRIMARY.to_owned());
                ts.updated_at = Some(at);
            }
        } else if ts.status.as_deref() == Some(PRIMARY) {
            ts.status = Some(TS_ACTIVE.to_owned());
            ts.updated_at = Some(at);
        }
    }
    if let Some(p) = svc.task_sets.iter().flatten().nth(i).cloned() {
        svc.task_definition = p.task_definition;
        svc.launch_type = p.launch_type;
        svc.capacity_provider_strategy = p.capacity_provider_strategy;
        svc.platform_version = p.platform_version;
        svc.platform_family = p.platform_family;
        svc.network_configuration = p.network_configuration;
    }
}

/// UpdateService on a service driven by task sets: what belongs to the service changes;
/// what belongs to a deployment (task definition, network, load balancers, platform) is
/// the task sets' and is refused, as AWS refuses it.
pub(crate) fn apply_task_set_service_update(
    svc: &mut Service,
    req: &UpdateServiceRequest,
) -> Result<(), EcsError> {
    let controller = controller_of(svc).as_str();
    let deployment_member = [
        (req.task_definition.is_some(), "task definition"),
        (req.network_configuration.is_some(), "network configuration"),
        (req.load_balancers.is_some(), "load balancers"),
        (req.platform_version.is_some(), "platform version"),
        (
            req.capacity_provider_strategy.is_some(),
            "capacity provider strategy",
        ),
        (
            req.force_new_deployment == Some(true),
            "force new deployment",
        ),
    ]
    .into_iter()
    .find_map(|(given, what)| given.then_some(what));
    if let Some(what) = deployment_member {
        let how = if controller == "CODE_DEPLOY" {
            "Use AWS CodeDeploy to trigger a new deployment (Stevedore has no CodeDeploy: use the EXTERNAL deployment controller and task sets instead)."
        } else {
            "Create a task set with CreateTaskSet instead."
        };
        return invalid(format!(
            "Unable to update {what} on services with a {controller} deployment controller. {how}"
        ));
    }
    if let Some(n) = req.desired_count {
        svc.desired_count = Some(n);
    }
    svc.deployment_configuration = Some(deployment_config(
        req.deployment_configuration.as_ref(),
        svc.deployment_configuration.as_ref(),
        false,
    )?);
    apply_service_settings(svc, req);
    apply_desired_counts(svc);
    Ok(())
}

/// The task sets a new service starts with: none for EXTERNAL (the deployer creates them);
/// for CODE_DEPLOY, the PRIMARY task set at 100 % that CreateService makes on AWS.
pub(crate) fn apply_initial_task_sets(
    ecs: &Ecs,
    cluster: &str,
    st: &mut StoredService,
    td: &str,
    capacity: &Capacity,
    at: f64,
) {
    if controller_of(&st.service) != DeploymentControllerType::CodeDeploy {
        st.service.task_sets = Some(Vec::new());
        return;
    }
    let req = CreateTaskSetRequest {
        service: st.name().to_owned(),
        cluster: cluster.to_owned(),
        task_definition: td.to_owned(),
        network_configuration: st.service.network_configuration.clone(),
        load_balancers: st.service.load_balancers.clone(),
        ..Default::default()
    };
    let full = Scale {
        value: Some(100.0),
        unit: Some(model::ecs::shapes::ScaleUnit::Percent),
    };
    let mut ts = new_task_set(
        ecs,
        &st.service,
        &NewTaskSet {
            cluster,
            task_definition: td.to_owned(),
            capacity,
            scale: full,
            request: &req,
        },
        at,
    );
    ts.status = Some(PRIMARY.to_owned());
    st.service.task_sets = Some(vec![ts]);
}
