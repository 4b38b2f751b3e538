//! The service controller: a level-triggered loop that, for every service, reads the
//! service record, its tasks and the cluster's instances, asks `reconcile` what to do,
//! does it (stops through the same path as StopTask, starts through RunTask's placement
//! and commit), and records the outcome — counts, rollouts, events — in the service.
//!
//! Nothing is remembered between rounds except a hint (when each instance's agent was
//! first seen disconnected); a restarted server simply runs the next round. A task chosen
//! to stop that waits for its targets to drain says so itself (DEACTIVATING).

use super::api::{push_primary, ACTIVE, DRAINING, INACTIVE};
use super::balancing::{verdict, LbVerdict, Reach, TargetGroups};
use super::{service_key, StoredService};
use crate::error::EcsError;
use crate::objects::{decode, encode, task_prefix, Step, StoredTask};
use crate::tasks::launch::{parse_placement, LaunchParams};
use crate::{now, Ecs};
use model::ecs::shapes::{
    Deployment, DeploymentRolloutState, PropagateTags, SchedulingStrategy, TaskStopCode,
};
use placement::{SpreadField, Strategy};
use reconcile::{Actions, Health, InstanceStatus, Phase, Rollout, StopReason};
use std::collections::{BTreeMap, HashMap};
use store::Txn;

/// How often every service is looked at even when nothing woke the controller.
const TICK: std::time::Duration = std::time::Duration::from_secs(1);
/// How long a wake-up waits for more of the same burst before a round.
const DEBOUNCE: std::time::Duration = std::time::Duration::from_millis(50);
/// The same placement-failure event is not repeated more often than this (seconds).
const EVENT_REPEAT_SECONDS: f64 = 300.0;

/// A task key's decoded revision and, for a service task, its service, scheduling view
/// and reach.
pub(crate) type CachedTask = (u64, Option<(String, reconcile::Task, Reach)>);
/// A target: id and port.
type Target = (String, u16);
/// Task id → (target group ARN, target) for each group the task is reachable for.
type TaskTargets = HashMap<String, Vec<(String, Target)>>;

/// A stop the controller means to make, with the `stoppedReason` it will carry.
#[derive(Clone, Debug)]
struct PlannedStop {
    stop: reconcile::Stop,
    message: String,
    /// The task is already DEACTIVATING (its code and reason are set).
    deactivating: bool,
}

/// Which stops wait for a drain, and which targets leave their groups now.
struct DrainPlan {
    /// Stops that may go ahead now.
    now: Vec<PlannedStop>,
    /// Stops waiting for their targets to drain.
    waiting: Vec<PlannedStop>,
    /// Target group → targets to deregister.
    leave: HashMap<String, Vec<(String, u16)>>,
    /// Tasks whose targets begin draining now.
    draining: usize,
}

/// How ECS words the `stoppedReason` of a task its load balancer found unhealthy.
const ELB_FAILED: &str = "Task failed ELB health checks in ";

fn elb_failed_message(target_group: &str) -> String {
    format!("{ELB_FAILED}(target-group {target_group})")
}

/// The controller's tunables and its one piece of memory.
pub(crate) struct ControllerState {
    /// Woken by anything that may change what a service should do.
    pub wake: tokio::sync::Notify,
    /// (cluster, instance id) → when its agent was first seen disconnected.
    pub disconnected: std::sync::Mutex<HashMap<(String, String), f64>>,
    /// Seconds after which a disconnected instance's service tasks are replaced.
    pub disconnect_timeout: std::sync::Mutex<f64>,
    /// Per cluster, each task key's last decoded revision and what the scheduler needs of
    /// it (its service, or `None` for a standalone task): a round decodes only the tasks
    /// that changed since the last, not all of them.
    pub tasks: tokio::sync::Mutex<HashMap<String, HashMap<String, CachedTask>>>,
}

impl Default for ControllerState {
    fn default() -> Self {
        Self {
            wake: tokio::sync::Notify::new(),
            disconnected: std::sync::Mutex::default(),
            disconnect_timeout: std::sync::Mutex::new(300.0),
            tasks: tokio::sync::Mutex::default(),
        }
    }
}

fn rollout_of(d: &Deployment) -> Rollout {
    match d.rollout_state {
        Some(DeploymentRolloutState::Completed) => Rollout::Completed,
        Some(DeploymentRolloutState::Failed) => Rollout::Failed,
        _ => Rollout::InProgress,
    }
}

fn rollout_state(r: Rollout) -> DeploymentRolloutState {
    match r {
        Rollout::Completed => DeploymentRolloutState::Completed,
        Rollout::Failed => DeploymentRolloutState::Failed,
        Rollout::InProgress => DeploymentRolloutState::InProgress,
    }
}

fn short_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// The scheduler's view of one stored task.
fn observe_task(st: &StoredTask) -> reconcile::Task {
    let t = &st.task;
    let last = t.last_status.as_deref().unwrap_or("PENDING");
    let desired_stop = t.desired_status.as_deref() == Some("STOPPED");
    let phase = match last {
        "STOPPED" | "DELETED" => Phase::Stopped,
        _ if st.deactivating => Phase::Deactivating,
        _ if desired_stop => Phase::Stopping,
        "RUNNING" => Phase::Running,
        _ => Phase::Pending,
    };
    let health = match t.health_status.map(|h| h.as_str()) {
        Some("HEALTHY") => Health::Healthy,
        Some("UNHEALTHY") => Health::Unhealthy,
        _ => Health::Unknown,
    };
    let has_health_check = st
        .containers
        .iter()
        .any(|c| c.essential.unwrap_or(true) && c.health_check.is_some());
    let failed = phase == Phase::Stopped
        && (matches!(
            t.stop_code,
            Some(TaskStopCode::EssentialContainerExited | TaskStopCode::TaskFailedToStart)
        ) || t
            .stopped_reason
            .as_deref()
            .is_some_and(|r| r == StopReason::Unhealthy.message() || r.starts_with(ELB_FAILED)));
    reconcile::Task {
        id: t
            .task_arn
            .as_deref()
            .map(short_id)
            .unwrap_or_default()
            .to_owned(),
        deployment: t.started_by.clone().unwrap_or_default(),
        instance: st.instance_id.clone(),
        phase,
        health,
        has_health_check,
        started_at: t.started_at,
        stopped_at: t.stopped_at,
        failed,
    }
}

impl Ecs {
    /// Wakes the service controller (a service or a task changed).
    pub fn wake_services(&self) {
        self.controller.wake.notify_one();
    }

    /// Seconds after which a disconnected agent's service tasks are replaced elsewhere
    /// (default 300).
    pub fn set_disconnect_timeout(&self, seconds: f64) {
        *self
            .controller
            .disconnect_timeout
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = seconds;
    }

    /// Runs the service controller until `shutdown` fires. Each round is supervised: a
    /// panic costs that round (logged and counted as `ecs_service_controller`), never
    /// the loop.
    pub async fn run_services(&self, shutdown: telemetry::CancellationToken) {
        let wait = || async {
            tokio::select! {
                () = self.controller.wake.notified() => {
                    // Reports arrive in bursts: one round for the burst, not one each.
                    tokio::time::sleep(DEBOUNCE).await;
                }
                () = tokio::time::sleep(TICK) => {}
            }
        };
        let round = || async {
            self.controller_fault_point();
            if let Err(e) = self.reconcile_all().await {
                tracing::warn!(error = %e, "Service controller round failed; retrying.");
            }
        };
        telemetry::supervise(
            telemetry::LoopName::EcsServiceController,
            shutdown,
            wait,
            round,
        )
        .await;
    }

    /// One round over every service.
    pub(crate) async fn reconcile_all(&self) -> Result<(), EcsError> {
        let keys = self.all_service_keys().await?;
        let mut by_cluster: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for k in keys {
            if let Some((cluster, name)) = k
                .strip_prefix(super::ALL_SERVICES)
                .and_then(|r| r.split_once('/'))
            {
                by_cluster
                    .entry(cluster.to_owned())
                    .or_default()
                    .push(name.to_owned());
            }
        }
        for (cluster, names) in by_cluster {
            // Tasks are read once per cluster and shared by its services.
            let mut tasks = self.service_tasks(&cluster).await?;
            let instances = self.observe_instances(&cluster).await?;
            for name in names {
                let mine = tasks.remove(&name).unwrap_or_default();
                if let Err(e) = self
                    .reconcile_service(&cluster, &name, &mine, &instances)
                    .await
                {
                    tracing::warn!(cluster = %cluster, service = %name, error = %e, "Reconciling a service failed.");
                }
            }
        }
        Ok(())
    }

    /// The cluster's service tasks by service name, decoding only what changed.
    async fn service_tasks(
        &self,
        cluster: &str,
    ) -> Result<HashMap<String, Vec<(reconcile::Task, Reach)>>, EcsError> {
        let mut all = self.controller.tasks.lock().await;
        let cache = all.entry(cluster.to_owned()).or_default();
        let mut seen = std::collections::HashSet::with_capacity(cache.len());
        let mut out: HashMap<String, Vec<(reconcile::Task, Reach)>> = HashMap::new();
        for kv in self.objects.range_all(&task_prefix(cluster)).await? {
            let fresh = cache
                .get(&kv.key)
                .is_some_and(|(rev, _)| *rev == kv.mod_revision);
            if !fresh {
                let st: StoredTask = decode(&kv.key, &kv.value)?;
                let summary = st
                    .task
                    .group
                    .as_deref()
                    .and_then(|g| g.strip_prefix("service:"))
                    .map(|name| (name.to_owned(), observe_task(&st), Reach::of(&st.task)));
                cache.insert(kv.key.clone(), (kv.mod_revision, summary));
            }
            if let Some((_, Some((name, t, reach)))) = cache.get(&kv.key) {
                out.entry(name.clone())
                    .or_default()
                    .push((t.clone(), reach.clone()));
            }
            seen.insert(kv.key);
        }
        cache.retain(|k, _| seen.contains(k));
        Ok(out)
    }

    /// The cluster's instances as the scheduler sees them, with the placement engine's
    /// form kept for DAEMON eligibility.
    async fn observe_instances(
        &self,
        cluster: &str,
    ) -> Result<Vec<(reconcile::Instance, placement::Instance)>, EcsError> {
        let shared = self.view_for(cluster);
        let mut view = shared.lock().await;
        self.refresh_view(cluster, &mut view, false).await?;
        let at = now();
        let mut disconnected = self
            .controller
            .disconnected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let out = view
            .stored
            .iter()
            .zip(&view.instances)
            .map(|(si, engine)| {
                let status = match si.instance.status.as_deref() {
                    Some("ACTIVE") => InstanceStatus::Active,
                    Some("DRAINING") => InstanceStatus::Draining,
                    _ => InstanceStatus::Lost,
                };
                let key = (cluster.to_owned(), engine.id.clone());
                let since = if engine.agent_connected {
                    disconnected.remove(&key);
                    None
                } else {
                    Some(*disconnected.entry(key).or_insert(at))
                };
                (
                    reconcile::Instance {
                        id: engine.id.clone(),
                        status,
                        disconnected_since: since,
                        // DAEMON services never run on hidden Fargate capacity.
                        eligible: !si.fargate,
                    },
                    engine.clone(),
                )
            })
            .collect();
        Ok(out)
    }

    async fn reconcile_service(
        &self,
        cluster: &str,
        name: &str,
        tasks: &[(reconcile::Task, Reach)],
        instances: &[(reconcile::Instance, placement::Instance)],
    ) -> Result<(), EcsError> {
        let Some((st, _)) = self.load_service(cluster, name).await? else {
            return Ok(());
        };
        let svc = &st.service;
        if svc.status.as_deref() == Some(INACTIVE) {
            return Ok(());
        }
        let daemon = svc.scheduling_strategy == Some(SchedulingStrategy::Daemon);
        let draining = svc.status.as_deref() == Some(DRAINING);
        let cfg = svc.deployment_configuration.clone().unwrap_or_default();
        let breaker = cfg
            .deployment_circuit_breaker
            .as_ref()
            .filter(|b| b.enable)
            .map(|b| reconcile::CircuitBreaker {
                rollback: b.rollback,
            });
        let timeout = *self
            .controller
            .disconnect_timeout
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let spec = reconcile::Spec {
            scheduling: if daemon && !draining {
                reconcile::Scheduling::Daemon
            } else {
                reconcile::Scheduling::Replica
            },
            desired: u32::try_from(svc.desired_count.unwrap_or(0)).unwrap_or(0),
            min_healthy_percent: u32::try_from(cfg.minimum_healthy_percent.unwrap_or(100))
                .unwrap_or(100),
            max_percent: u32::try_from(cfg.maximum_percent.unwrap_or(200)).unwrap_or(200),
            circuit_breaker: breaker,
            health_grace_seconds: f64::from(svc.health_check_grace_period_seconds.unwrap_or(0)),
            disconnect_timeout_seconds: timeout,
        };
        // Oldest first for the scheduler; the record lists the PRIMARY first.
        let deployments: Vec<Deployment> =
            svc.deployments.iter().flatten().rev().cloned().collect();
        let ids: Vec<&str> = deployments.iter().filter_map(|d| d.id.as_deref()).collect();
        let mut observed_tasks: Vec<reconcile::Task> = tasks
            .iter()
            .map(|(t, _)| t.clone())
            .filter(|t| t.phase != Phase::Stopped || ids.contains(&t.deployment.as_str()))
            .collect();
        let balanced = match &self.balancers {
            Some(b) if !svc.load_balancers.as_ref().is_none_or(Vec::is_empty) => {
                match Balanced::load(
                    b.as_ref(),
                    svc.load_balancers.iter().flatten(),
                    tasks,
                    instances,
                )
                .await
                {
                    Ok(balanced) => Some(balanced),
                    // Blind to a group's verdicts, every RUNNING task would look healthy
                    // on its container health alone, and healthy old tasks could be
                    // retired for new ones the balancer has not passed: wait a round.
                    Err(error) => {
                        tracing::warn!(cluster, service = name, %error, "Reading a target group failed; the service waits for the next round.");
                        return Ok(());
                    }
                }
            }
            _ => None,
        };
        let lb_failed = balanced
            .as_ref()
            .map(|b| b.fold_health(&mut observed_tasks))
            .unwrap_or_default();
        let primary = deployments.last().cloned();
        // DAEMON eligibility: the service's constraints on each instance, resources aside.
        let mut inst: Vec<reconcile::Instance> = instances.iter().map(|(i, _)| i.clone()).collect();
        let prepared = match &primary {
            Some(p) => Some(self.prepare_service_launch(cluster, name, &st, p).await),
            None => None,
        };
        if daemon {
            if let Some(Ok((l, constraints))) = &prepared {
                let mut probe = l.request.clone();
                probe.cpu = 0;
                probe.memory = 0;
                probe.tcp_ports.clear();
                probe.udp_ports.clear();
                probe.gpus = 0;
                for (ri, (_, engine)) in inst.iter_mut().zip(instances) {
                    let mut e = engine.clone();
                    // A DAEMON task is never kept off an instance by its own group.
                    e.groups.clear();
                    ri.eligible = !placement::place(&[e], &probe, 1, constraints, &[], 0)
                        .placements
                        .is_empty();
                }
            }
        }
        let observed = reconcile::Observed {
            deployments: deployments
                .iter()
                .map(|d| reconcile::Deployment {
                    id: d.id.clone().unwrap_or_default(),
                    rollout: rollout_of(d),
                })
                .collect(),
            tasks: observed_tasks,
            instances: inst,
            now: now(),
        };
        let round = std::time::Instant::now();
        let mut actions = reconcile::compute(&spec, &observed);
        let mut notes = Notes::default();
        // The scheduler's stops, and the tasks already deactivating (their stop code and
        // reason are on the task already).
        let mut stops: Vec<PlannedStop> = actions
            .stop
            .iter()
            .map(|s| PlannedStop {
                message: match lb_failed.get(&s.task) {
                    Some(tg) if s.reason == StopReason::Unhealthy => elb_failed_message(tg),
                    _ => s.reason.message().to_owned(),
                },
                stop: s.clone(),
                deactivating: false,
            })
            .collect();
        stops.extend(
            observed
                .tasks
                .iter()
                .filter(|t| t.phase == Phase::Deactivating)
                .map(|t| PlannedStop {
                    stop: reconcile::Stop {
                        task: t.id.clone(),
                        reason: StopReason::Deployment,
                    },
                    message: String::new(),
                    deactivating: true,
                }),
        );
        // Failed checks are news when the stop is decided, drain or not.
        for p in &stops {
            if !p.deactivating && p.stop.reason == StopReason::Unhealthy {
                notes
                    .failed_checks
                    .push((p.stop.task.clone(), p.message.clone()));
            }
        }
        if let (Some(b), Some(groups)) = (&balanced, &self.balancers) {
            // Targets leave the balancer before their task stops: the task deactivates
            // and stops once its targets have drained.
            let plan = b.plan_drain(&stops);
            // Marked before the targets leave: after a crash in between, the next round
            // finds the task deactivating with live targets and deregisters them.
            for p in plan.waiting.iter().filter(|p| !p.deactivating) {
                if let Err(e) = self
                    .request_deactivate(
                        cluster,
                        &p.stop.task,
                        TaskStopCode::ServiceSchedulerInitiated,
                        &p.message,
                    )
                    .await
                {
                    tracing::warn!(task = %p.stop.task, error = %e, "Marking a task deactivating failed.");
                }
            }
            notes.draining += plan.draining;
            notes.waiting = plan.waiting.len();
            b.deregister(groups.as_ref(), plan.leave, &mut notes).await;
            b.register_running(groups.as_ref(), &stops, &mut notes)
                .await;
            // A deployment whose tasks still drain is not over yet (`services-stable` waits
            // for the drain, as on ECS).
            actions.retire.retain(|d| {
                !plan.waiting.iter().any(|p| {
                    observed
                        .tasks
                        .iter()
                        .any(|t| t.id == p.stop.task && &t.deployment == d)
                })
            });
            stops = plan.now;
        }
        for p in &stops {
            let s = &p.stop;
            match self
                .request_stop(
                    cluster,
                    &s.task,
                    TaskStopCode::ServiceSchedulerInitiated,
                    &p.message,
                )
                .await
            {
                Ok((_, instance)) => {
                    self.channels.notify(cluster, &instance);
                    notes.stopped.push(s.task.clone());
                }
                Err(e) => tracing::warn!(task = %s.task, error = %e, "Service task stop failed."),
            }
        }
        if !actions.start.is_empty() {
            match &prepared {
                Some(Ok((l, constraints))) => {
                    self.start_service_tasks(&st, l, constraints, &actions, &mut notes)
                        .await?;
                }
                Some(Err(e)) => notes.launch_error = Some(e.to_string()),
                None => {}
            }
        }
        let (started, stopped) = (notes.started.len(), notes.stopped.len());
        self.record(cluster, name, &actions, notes).await?;
        tracing::debug!(
            cluster,
            service = name,
            tasks = tasks.len(),
            started,
            stopped,
            steady = actions.steady,
            elapsed_ms = round.elapsed().as_millis() as u64,
            "Service reconciled."
        );
        Ok(())
    }

    /// Resolves the PRIMARY deployment's launch (task definition, overrides, tags) and the
    /// service's constraints.
    async fn prepare_service_launch(
        &self,
        cluster: &str,
        name: &str,
        st: &StoredService,
        d: &Deployment,
    ) -> Result<(crate::tasks::launch::Launch, Vec<placement::Constraint>), EcsError> {
        let svc = &st.service;
        let tags = match svc.propagate_tags {
            Some(PropagateTags::Service) => svc.tags.clone().unwrap_or_default(),
            _ => Vec::new(),
        };
        let propagate = match svc.propagate_tags {
            Some(PropagateTags::TaskDefinition) => Some(PropagateTags::TaskDefinition),
            _ => None,
        };
        let group = format!("service:{name}");
        let l = self
            .prepare_launch(&LaunchParams {
                cluster: Some(cluster),
                task_definition: d.task_definition.as_deref().unwrap_or_default(),
                overrides: None,
                group: Some(&group),
                started_by: d.id.as_deref(),
                tags: Some(&tags),
                propagate_tags: propagate,
                network_configuration: d.network_configuration.as_ref(),
                enable_execute_command: svc.enable_execute_command,
                capacity: crate::tasks::fargate::Capacity::of_service(svc),
            })
            .await?;
        let (constraints, _) = parse_placement(&l.td, svc.placement_constraints.as_deref(), None)?;
        Ok((l, constraints))
    }

    async fn start_service_tasks(
        &self,
        st: &StoredService,
        l: &crate::tasks::launch::Launch,
        constraints: &[placement::Constraint],
        actions: &Actions,
        notes: &mut Notes,
    ) -> Result<(), EcsError> {
        let svc = &st.service;
        let (_, strategies) = parse_placement(&l.td, None, svc.placement_strategy.as_deref())?;
        // ECS's default for REPLICA services: spread over zones, then instances.
        let strategies = if strategies.is_empty() {
            vec![
                Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".into())),
                Strategy::Spread(SpreadField::InstanceId),
            ]
        } else {
            strategies
        };
        let seed = u64::from(uuid::Uuid::new_v4().as_u128() as u32);
        let targets: Vec<String> = actions
            .start
            .iter()
            .filter_map(|s| s.instance.clone())
            .collect();
        let count = actions.start.len();
        let (tasks, failures) = if targets.is_empty() {
            self.launch(l, None, |view| {
                placement::place(
                    &view.instances,
                    &l.request,
                    count,
                    constraints,
                    &strategies,
                    seed,
                )
            })
            .await?
        } else {
            let wanted: Vec<(String, String)> =
                targets.iter().map(|t| (t.clone(), t.clone())).collect();
            self.launch(l, None, |view| {
                crate::tasks::launch::place_on_named(view, &wanted, &l.request)
            })
            .await?
        };
        notes.started = tasks
            .iter()
            .filter_map(|t| t.task_arn.as_deref().map(|a| short_id(a).to_owned()))
            .collect();
        if notes.started.len() < count {
            notes.placement_failure = Some(placement_message(&failures));
        }
        Ok(())
    }

    /// Writes the round's outcome into the service record (retrying on races with the API).
    async fn record(
        &self,
        cluster: &str,
        name: &str,
        a: &Actions,
        notes: Notes,
    ) -> Result<(), EcsError> {
        let key = service_key(cluster, name);
        self.objects
            .retry(&key, || async {
                let Some((mut st, rev)) = self.load_service(cluster, name).await? else {
                    return Ok(Step::Done(()));
                };
                let before = encode(&st)?;
                apply_outcome(&mut st, a, &notes, now());
                let after = encode(&st)?;
                if before == after {
                    return Ok(Step::Done(()));
                }
                Ok(Step::Commit(
                    Txn::new().when(key.clone(), rev).put(key.clone(), after),
                    (),
                ))
            })
            .await
    }
}

/// What a round did besides computing: for the service's events.
#[derive(Default)]
struct Notes {
    started: Vec<String>,
    /// Tasks stopped this round.
    stopped: Vec<String>,
    /// (task, stoppedReason) of tasks chosen to stop for failing health checks.
    failed_checks: Vec<(String, String)>,
    /// Tasks still waiting for their targets to drain: an INACTIVE service is no longer
    /// reconciled, so a deleted service stays DRAINING until they have stopped.
    waiting: usize,
    placement_failure: Option<String>,
    launch_error: Option<String>,
    /// (target group, count) registered this round.
    registered: Vec<(String, usize)>,
    /// (target group, count) deregistered this round.
    deregistered: Vec<(String, usize)>,
    /// Tasks whose targets began draining this round.
    draining: usize,
    /// Targets the balancer reports unhealthy: (task, target id, port, group, reason).
    unhealthy_targets: Vec<(String, String, u16, String, String)>,
}

fn placement_message(failures: &[model::ecs::shapes::Failure]) -> String {
    let reasons: Vec<&str> = failures
        .iter()
        .filter_map(|f| f.reason.as_deref())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if reasons.is_empty() || reasons == ["MISSING"] {
        "No Container Instances were found in your cluster.".into()
    } else {
        format!(
            "The closest matching container-instance lacks: {}.",
            reasons.join(", ")
        )
    }
}

/// Applies a round's results to the record: counts, rollouts, rollback, retirement,
/// events, and the end of a DRAINING service.
fn apply_outcome(st: &mut StoredService, a: &Actions, notes: &Notes, at: f64) {
    let name = st.name().to_owned();
    let daemon = st.service.scheduling_strategy == Some(SchedulingStrategy::Daemon);
    let mut events: Vec<String> = Vec::new();
    if !notes.started.is_empty() {
        let list: Vec<String> = notes
            .started
            .iter()
            .map(|t| format!("(task {t})"))
            .collect();
        events.push(format!(
            "(service {name}) has started {} tasks: {}.",
            notes.started.len(),
            list.join(" ")
        ));
    }
    for (t, message) in &notes.failed_checks {
        // "Task failed container health checks" / "Task failed ELB health checks in …"
        let what = message.strip_prefix("Task ").unwrap_or(message);
        events.push(format!("(service {name}) (task {t}) {what}."));
    }
    if !notes.stopped.is_empty() {
        let list: Vec<String> = notes
            .stopped
            .iter()
            .map(|t| format!("(task {t})"))
            .collect();
        events.push(format!(
            "(service {name}) has stopped {} running tasks: {}.",
            notes.stopped.len(),
            list.join(" ")
        ));
    }
    for (tg, n) in &notes.registered {
        events.push(format!(
            "(service {name}) registered {n} targets in (target-group {tg})"
        ));
    }
    if notes.draining > 0 {
        events.push(format!(
            "(service {name}) has begun draining connections on {} tasks.",
            notes.draining
        ));
    }
    for (tg, n) in &notes.deregistered {
        events.push(format!(
            "(service {name}) deregistered {n} targets in (target-group {tg})"
        ));
    }
    let mut repeatable: Vec<String> = Vec::new();
    for (_, id, port, tg, reason) in &notes.unhealthy_targets {
        let what = if id.starts_with("i-") {
            "instance"
        } else {
            "ip"
        };
        repeatable.push(format!(
            "(service {name}) ({what} {id}) (port {port}) is unhealthy in (target-group {tg}) due to (reason {reason})."
        ));
    }
    if let Some(why) = &notes.placement_failure {
        repeatable.push(format!(
            "(service {name}) was unable to place a task because no container instance met all of its requirements. Reason: {why}"
        ));
    }
    if let Some(e) = &notes.launch_error {
        repeatable.push(format!("(service {name}) failed to launch a task: {e}"));
    }
    if a.backoff_until.is_some() {
        repeatable.push(format!(
            "(service {name}) is unable to consistently start tasks successfully. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."
        ));
    }
    let mut total = reconcile::Counts::default();
    let deps = st.service.deployments.get_or_insert_with(Vec::new);
    for d in deps.iter_mut() {
        let id = d.id.clone().unwrap_or_default();
        let c = a.counts_of(&id);
        total.running += c.running;
        total.pending += c.pending;
        d.running_count = Some(i32::try_from(c.running).unwrap_or(i32::MAX));
        d.pending_count = Some(i32::try_from(c.pending).unwrap_or(i32::MAX));
        d.failed_tasks = Some(i32::try_from(c.failed).unwrap_or(i32::MAX));
        if d.status.as_deref() == Some("PRIMARY") {
            d.desired_count = Some(i32::try_from(a.desired).unwrap_or(i32::MAX));
        } else {
            d.desired_count = Some(0);
        }
    }
    let mut rollback: Option<(String, String)> = None;
    for r in &a.rollouts {
        let Some(d) = deps
            .iter_mut()
            .find(|d| d.id.as_deref() == Some(r.deployment.as_str()))
        else {
            continue;
        };
        if rollout_of(d) == r.rollout {
            continue;
        }
        d.rollout_state = Some(rollout_state(r.rollout));
        d.rollout_state_reason = Some(r.reason.clone());
        d.updated_at = Some(at);
        match r.rollout {
            Rollout::Completed => {
                events.push(format!(
                    "(service {name}) (deployment {}) deployment completed.",
                    r.deployment
                ));
                st.completed.push((
                    r.deployment.clone(),
                    d.task_definition.clone().unwrap_or_default(),
                ));
                if st.completed.len() > 10 {
                    st.completed.remove(0);
                }
            }
            Rollout::Failed => {
                events.push(format!(
                    "(service {name}) (deployment {}) deployment failed: tasks failed to start.",
                    r.deployment
                ));
                let wants_rollback = st
                    .service
                    .deployment_configuration
                    .as_ref()
                    .and_then(|c| c.deployment_circuit_breaker.as_ref())
                    .is_some_and(|b| b.enable && b.rollback);
                if wants_rollback {
                    rollback = st.completed.last().cloned();
                }
            }
            Rollout::InProgress => {}
        }
    }
    // Retire drained old deployments (never the PRIMARY).
    deps.retain(|d| {
        d.status.as_deref() == Some("PRIMARY")
            || !a.retire.iter().any(|r| Some(r.as_str()) == d.id.as_deref())
    });
    if let Some((old_id, td)) = rollback {
        let primary = st
            .service
            .deployments
            .iter()
            .flatten()
            .find(|d| d.status.as_deref() == Some("PRIMARY"))
            .cloned();
        if let Some(p) = primary {
            let mut d = p.clone();
            d.id = Some(super::deployment_id());
            d.task_definition = Some(td.clone());
            d.rollout_state = Some(DeploymentRolloutState::InProgress);
            d.created_at = Some(at);
            d.updated_at = Some(at);
            d.running_count = Some(0);
            d.pending_count = Some(0);
            d.failed_tasks = Some(0);
            let new_id = d.id.clone().unwrap_or_default();
            push_primary(&mut st.service, d);
            if let Some(nd) = st.service.deployments.iter_mut().flatten().next() {
                nd.rollout_state_reason = Some(format!(
                    "ECS deployment circuit breaker: rolling back to deploymentId {old_id}."
                ));
            }
            st.service.task_definition = Some(td);
            events.push(format!(
                "(service {name}) (deployment {new_id}) rolling back to deployment {old_id}."
            ));
            st.steady = false;
        }
    }
    st.service.running_count = Some(i32::try_from(total.running).unwrap_or(i32::MAX));
    st.service.pending_count = Some(i32::try_from(total.pending).unwrap_or(i32::MAX));
    if daemon && st.service.status.as_deref() == Some(ACTIVE) {
        st.service.desired_count = Some(i32::try_from(a.desired).unwrap_or(i32::MAX));
    }
    if st.service.status.as_deref() == Some(DRAINING)
        && total.running == 0
        && total.pending == 0
        && a.stop.is_empty()
        && notes.waiting == 0
    {
        st.service.status = Some(INACTIVE.into());
    }
    let steady_now = a.steady && st.service.status.as_deref() == Some(ACTIVE);
    if steady_now && !st.steady {
        events.push(format!("(service {name}) has reached a steady state."));
    }
    st.steady = steady_now;
    for e in events {
        st.event(e, at);
    }
    for e in repeatable {
        let recent = st.service.events.iter().flatten().any(|x| {
            x.message.as_deref() == Some(e.as_str())
                && at - x.created_at.unwrap_or(0.0) < EVENT_REPEAT_SECONDS
        });
        if !recent {
            st.event(e, at);
        }
    }
}

/// EC2 instance id → the address its agent registered
/// ([`model::ecs::names::HOST_ADDRESS_ATTRIBUTE`]), for the instances that have one.
fn instance_addresses<'a>(
    instances: impl Iterator<Item = &'a placement::Instance>,
) -> HashMap<String, String> {
    instances
        .filter_map(|e| {
            let address = e
                .attributes
                .get(model::ecs::names::HOST_ADDRESS_ATTRIBUTE)?
                .clone()?;
            Some((e.ec2_instance_id.clone(), address))
        })
        .collect()
}

/// One round's view of the service's target groups.
struct Balanced {
    /// How many `loadBalancers` entries have an existing group.
    entries: usize,
    /// Each task's targets: task id → (group ARN, target), for every entry it is reachable for.
    targets: TaskTargets,
    /// Task phases by id.
    phases: HashMap<String, Phase>,
    /// Each group's registered targets by (id, port): looked up per task and target.
    states: HashMap<String, HashMap<Target, super::balancing::TargetState>>,
    /// EC2 instance id → the address its agent registered, for instance targets.
    addresses: HashMap<String, String>,
}

impl Balanced {
    async fn load<'a>(
        b: &dyn TargetGroups,
        lbs: impl Iterator<Item = &'a model::ecs::shapes::LoadBalancer>,
        tasks: &[(reconcile::Task, Reach)],
        instances: &[(reconcile::Instance, placement::Instance)],
    ) -> Result<Balanced, String> {
        let ec2: HashMap<&str, &str> = instances
            .iter()
            .map(|(_, e)| (e.id.as_str(), e.ec2_instance_id.as_str()))
            .collect();
        let addresses = instance_addresses(instances.iter().map(|(_, e)| e));
        let mut groups = Vec::new();
        for lb in lbs {
            let Some(arn) = lb.target_group_arn.as_deref() else {
                continue;
            };
            match b.describe(arn).await? {
                Some(view) => groups.push((lb.clone(), view)),
                None => tracing::warn!(
                    target_group = arn,
                    "A service's target group does not exist."
                ),
            }
        }
        let mut targets: TaskTargets = HashMap::new();
        let mut phases = HashMap::new();
        for (t, reach) in tasks {
            phases.insert(t.id.clone(), t.phase);
            let id = ec2.get(t.instance.as_str()).copied().unwrap_or_default();
            for (lb, view) in &groups {
                if let Some(target) = reach.target(lb, &view.target_type, id) {
                    let arn = lb.target_group_arn.clone().unwrap_or_default();
                    targets.entry(t.id.clone()).or_default().push((arn, target));
                }
            }
        }
        let states = groups
            .iter()
            .map(|(lb, view)| {
                let by_target = view
                    .targets
                    .iter()
                    .map(|t| ((t.id.clone(), t.port), t.clone()))
                    .collect();
                (lb.target_group_arn.clone().unwrap_or_default(), by_target)
            })
            .collect();
        Ok(Balanced {
            entries: groups.len(),
            targets,
            phases,
            states,
            addresses,
        })
    }

    fn state(&self, tg: &str, target: &Target) -> Option<&super::balancing::TargetState> {
        self.states
            .get(tg)
            .and_then(|by_target| by_target.get(target))
    }

    /// A RUNNING task counts as healthy only once every target of it is healthy. Returns
    /// the tasks some target group found unhealthy: task id → that group.
    fn fold_health(&self, tasks: &mut [reconcile::Task]) -> HashMap<String, String> {
        let mut failed = HashMap::new();
        for t in tasks.iter_mut().filter(|t| t.phase == Phase::Running) {
            let mine = self
                .targets
                .get(&t.id)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let mut states: Vec<Option<&super::balancing::TargetState>> = mine
                .iter()
                .map(|(tg, target)| self.state(tg, target))
                .collect();
            // A group the task is not reachable for yet (no binding reported) is pending.
            for _ in mine.len()..self.entries {
                states.push(None);
            }
            match verdict(&states) {
                LbVerdict::Healthy => {}
                LbVerdict::Pending => {
                    if t.health != Health::Unhealthy {
                        t.health = Health::Unknown;
                    }
                    t.has_health_check = true;
                }
                LbVerdict::Unhealthy => {
                    t.health = Health::Unhealthy;
                    t.has_health_check = true;
                    if let Some((tg, _)) = mine.iter().find(|(tg, target)| {
                        self.state(tg, target)
                            .is_some_and(|st| st.state == "unhealthy")
                    }) {
                        failed.insert(t.id.clone(), tg.clone());
                    }
                }
            }
        }
        failed
    }

    /// Splits the stops into those that may go ahead now (their targets are gone, or
    /// their instance is lost and draining is moot) and those that wait for their targets
    /// to drain, and lists the targets to deregister: those of tasks to stop, and of tasks
    /// that stopped on their own.
    fn plan_drain(&self, stops: &[PlannedStop]) -> DrainPlan {
        let mut plan = DrainPlan {
            now: Vec::new(),
            waiting: Vec::new(),
            leave: HashMap::new(),
            draining: 0,
        };
        for p in stops {
            let mine = self
                .targets
                .get(&p.stop.task)
                .map(Vec::as_slice)
                .unwrap_or_default();
            // Registered: some target is still in a group (draining or not); live: some
            // target still takes new requests and starts draining now.
            let (mut registered, mut live) = (false, false);
            for (tg, target) in mine {
                match self.state(tg, target).map(|st| st.state.as_str()) {
                    None => {}
                    Some("draining") => registered = true,
                    Some(_) => {
                        plan.leave
                            .entry(tg.clone())
                            .or_default()
                            .push(target.clone());
                        registered = true;
                        live = true;
                    }
                }
            }
            if registered && p.stop.reason != StopReason::InstanceLost {
                if live {
                    plan.draining += 1;
                }
                plan.waiting.push(p.clone());
            } else {
                plan.now.push(p.clone());
            }
        }
        for (task, mine) in &self.targets {
            if matches!(
                self.phases.get(task),
                Some(Phase::Stopped | Phase::Stopping)
            ) {
                for (tg, target) in mine {
                    if self
                        .state(tg, target)
                        .is_some_and(|st| st.state != "draining")
                    {
                        plan.leave
                            .entry(tg.clone())
                            .or_default()
                            .push(target.clone());
                    }
                }
            }
        }
        plan
    }

    /// Deregisters targets: they drain for their group's deregistration delay.
    async fn deregister(
        &self,
        b: &dyn TargetGroups,
        leave: HashMap<String, Vec<(String, u16)>>,
        notes: &mut Notes,
    ) {
        for (tg, targets) in leave {
            match b.deregister(&tg, &targets).await {
                Ok(()) => notes.deregistered.push((tg, targets.len())),
                Err(e) => {
                    tracing::warn!(target_group = %tg, error = %e, "Deregistering targets failed.")
                }
            }
        }
    }

    /// Registers the targets of RUNNING tasks not being stopped; notes unhealthy ones.
    async fn register_running(
        &self,
        b: &dyn TargetGroups,
        stops: &[PlannedStop],
        notes: &mut Notes,
    ) {
        let mut join: HashMap<String, Vec<super::balancing::Registration>> = HashMap::new();
        for (task, mine) in &self.targets {
            if self.phases.get(task) != Some(&Phase::Running)
                || stops.iter().any(|p| &p.stop.task == task)
            {
                continue;
            }
            for (tg, target) in mine {
                match self.state(tg, target) {
                    None => {
                        join.entry(tg.clone())
                            .or_default()
                            .push(super::balancing::Registration {
                                id: target.0.clone(),
                                port: target.1,
                                address: self.addresses.get(&target.0).cloned(),
                            })
                    }
                    Some(st) if st.state == "unhealthy" => notes.unhealthy_targets.push((
                        task.clone(),
                        target.0.clone(),
                        target.1,
                        tg.clone(),
                        st.reason
                            .clone()
                            .unwrap_or_else(|| "Target.FailedHealthChecks".into()),
                    )),
                    Some(_) => {}
                }
            }
        }
        for (tg, targets) in join {
            match b.register(&tg, &targets).await {
                Ok(()) => notes.registered.push((tg, targets.len())),
                Err(e) => {
                    tracing::warn!(target_group = %tg, error = %e, "Registering targets failed.")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_targets_take_the_address_their_agent_registered() {
        let instance = |ec2: &str, address: Option<&str>| {
            let mut i = placement::Instance {
                ec2_instance_id: ec2.into(),
                ..Default::default()
            };
            if let Some(a) = address {
                i.attributes.insert(
                    model::ecs::names::HOST_ADDRESS_ATTRIBUTE.into(),
                    Some(a.into()),
                );
            }
            i.attributes
                .insert("ecs.availability-zone".into(), Some("us-east-1a".into()));
            i
        };
        let all = [
            instance("i-1", Some("10.0.0.5")),
            instance("i-2", None),
            instance("i-3", Some("192.0.2.9")),
        ];
        let addresses = instance_addresses(all.iter());
        assert_eq!(addresses.len(), 2);
        assert_eq!(addresses["i-1"], "10.0.0.5");
        assert_eq!(addresses["i-3"], "192.0.2.9");
    }
}

#[cfg(test)]
mod balanced_tests {
    use super::*;
    use crate::services::balancing::{Registration, TargetGroupView, TargetState};

    /// Target groups that answer `view`, or fail to be read.
    struct Groups(Result<TargetGroupView, String>);

    #[async_trait::async_trait]
    impl TargetGroups for Groups {
        async fn describe(&self, _: &str) -> Result<Option<TargetGroupView>, String> {
            self.0.clone().map(Some)
        }
        async fn register(&self, _: &str, _: &[Registration]) -> Result<(), String> {
            Ok(())
        }
        async fn deregister(&self, _: &str, _: &[(String, u16)]) -> Result<(), String> {
            Ok(())
        }
    }

    fn running(id: &str) -> (reconcile::Task, Reach) {
        let task = reconcile::Task {
            id: id.into(),
            deployment: "d".into(),
            instance: "ci".into(),
            phase: Phase::Running,
            health: Health::Unknown,
            has_health_check: false,
            started_at: Some(0.0),
            stopped_at: None,
            failed: false,
        };
        let reach = Reach {
            bindings: vec![("web".into(), 80, 32768)],
            private_ip: None,
        };
        (task, reach)
    }

    #[tokio::test]
    async fn a_group_that_cannot_be_read_leaves_nothing_judged() {
        let lb = model::ecs::shapes::LoadBalancer {
            target_group_arn: Some("tg".into()),
            container_name: Some("web".into()),
            container_port: Some(80),
            ..Default::default()
        };
        let tasks = [running("t1")];
        let failing = Groups(Err("database is locked".into()));
        assert!(Balanced::load(&failing, [&lb].into_iter(), &tasks, &[])
            .await
            .is_err());
        // Read, with the target not yet judged: pending, so not healthy.
        let view = TargetGroupView {
            target_type: "instance".into(),
            targets: vec![TargetState {
                id: String::new(),
                port: 32768,
                state: "initial".into(),
                reason: None,
            }],
        };
        let b = Balanced::load(&Groups(Ok(view)), [&lb].into_iter(), &tasks, &[])
            .await
            .expect("read");
        let mut observed = vec![tasks[0].0.clone()];
        b.fold_health(&mut observed);
        assert!(observed[0].has_health_check);
        assert_eq!(observed[0].health, Health::Unknown);
    }
}
