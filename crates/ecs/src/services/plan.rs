//! One controller round for one service, decided without I/O: [`plan_round`] takes what
//! the round observed ([`Observed`]: the service record, its tasks, the cluster's
//! instances, its target groups, the PRIMARY's launch inputs) with the time and a seed,
//! and returns everything the round will do ([`RoundPlan`]): tasks to mark DEACTIVATING,
//! targets to deregister and register, tasks to stop, tasks to start (with what placement
//! needs), and the notes from which the service record and its events are written.
//!
//! Nothing here reads the store, the clock or a random source, so a round can be replayed
//! and tested from a snapshot. The controller observes, plans, then executes
//! (`controller.rs`); the record the round leaves behind is [`super::record`]'s job.

use super::api::{ACTIVE, DRAINING, INACTIVE};
use super::record::RoundReport;
use super::target_plan::Balanced;
use super::targets::{Registration, TargetGroupView, TaskAddress};
use super::StoredService;
use model::ecs::shapes::{
    Deployment, DeploymentRolloutState, LoadBalancer, SchedulingStrategy, Service,
};
use placement::{SpreadField, Strategy};
use reconcile::{Actions, Phase, Rollout, StopReason};
use std::collections::BTreeMap;

/// A target: id and port.
pub(crate) type Target = (String, u16);

/// How ECS words the `stoppedReason` of a task its load balancer found unhealthy.
pub(crate) const ELB_FAILED: &str = "Task failed ELB health checks in ";

fn elb_failed_message(target_group: &str) -> String {
    format!("{ELB_FAILED}(target-group {target_group})")
}

/// What a round saw of the service's target groups.
#[derive(Clone, Debug)]
pub(crate) enum Groups {
    /// The service has no load balancer, or no balancer service is wired in.
    None,
    /// Each `loadBalancers` entry whose group exists, with what the group holds.
    Read(Vec<(LoadBalancer, TargetGroupView)>),
    /// A group could not be read.
    Unreadable(String),
}

/// What placement needs to start the PRIMARY's tasks.
#[derive(Clone, Debug)]
pub(crate) struct LaunchInputs {
    /// What one task reserves, and its group.
    pub request: placement::TaskRequest,
    /// The definition's and the service's placement constraints.
    pub constraints: Vec<placement::Constraint>,
    /// The service's placement strategies (empty: ECS's REPLICA default).
    pub strategies: Vec<Strategy>,
    /// The service's placement constraints and strategies as given, for its tasks that
    /// wait for capacity (placed later, on their own).
    pub given: (
        Vec<model::ecs::shapes::PlacementConstraint>,
        Vec<model::ecs::shapes::PlacementStrategy>,
    ),
}

/// Everything one round knows about one service.
pub(crate) struct Observed<'a> {
    /// The service record.
    pub service: &'a StoredService,
    /// The service's tasks (its group's), with where each is reached.
    pub tasks: &'a [(reconcile::Task, TaskAddress)],
    /// The cluster's instances: the scheduler's view and the placement engine's.
    pub instances: &'a [(reconcile::Instance, placement::Instance)],
    /// The service's target groups.
    pub groups: Groups,
    /// The PRIMARY deployment's launch inputs, or why they could not be resolved (`None`:
    /// the service has no deployment).
    pub launch: Option<Result<LaunchInputs, String>>,
    /// An instance whose agent has been disconnected this long counts as lost.
    pub disconnect_timeout_seconds: f64,
}

/// A stop the controller means to make, with the `stoppedReason` it will carry.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PlannedStop {
    /// The task and why.
    pub stop: reconcile::Stop,
    /// Its `stoppedReason`.
    pub message: String,
    /// The task is already DEACTIVATING (its code and reason are set).
    pub deactivating: bool,
}

/// Tasks to start, with what placement needs beyond the launch.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Starts {
    /// How many.
    pub count: usize,
    /// DAEMON: the instance each start goes to; REPLICA: empty (placement chooses).
    pub on_instances: Vec<String>,
    /// The placement strategies, ECS's default filled in.
    pub strategies: Vec<Strategy>,
    /// The placement seed.
    pub seed: u64,
}

/// What a round does to one service.
#[derive(Debug)]
pub(crate) enum RoundPlan {
    /// Nothing: the service is INACTIVE.
    Idle,
    /// Nothing this round: blind to a target group's verdicts, every RUNNING task would
    /// look healthy on its container health alone, and healthy old tasks could be retired
    /// for new ones the balancer has not passed.
    Wait(String),
    /// Act as planned.
    Act(Box<Act>),
}

/// The actions of a round, in the order they are executed.
#[derive(Debug)]
pub(crate) struct Act {
    /// What the scheduler decided (retirements adjusted for drains still under way).
    pub actions: Actions,
    /// Tasks to mark DEACTIVATING before their targets are deregistered.
    pub deactivate: Vec<PlannedStop>,
    /// Target group → targets to deregister (they drain).
    pub deregister: BTreeMap<String, Vec<Target>>,
    /// Target group → targets of RUNNING tasks to register.
    pub register: BTreeMap<String, Vec<Registration>>,
    /// Tasks to stop now.
    pub stop: Vec<PlannedStop>,
    /// Tasks to start, when any can be.
    pub start: Option<Starts>,
    /// What the record will say; execution adds what it did.
    pub notes: RoundReport,
}

/// `status` is INACTIVE: the service is gone and no longer reconciled.
pub(crate) fn is_inactive(svc: &Service) -> bool {
    svc.status == Some(INACTIVE)
}

/// `status` is DRAINING: the service was deleted and its tasks are leaving.
pub(crate) fn is_draining(svc: &Service) -> bool {
    svc.status == Some(DRAINING)
}

/// `status` is ACTIVE.
pub(crate) fn is_active(svc: &Service) -> bool {
    svc.status == Some(ACTIVE)
}

/// The deployment is the service's PRIMARY (the one it rolls toward).
pub(crate) fn is_primary(d: &Deployment) -> bool {
    d.status == Some(model::ecs::status::DeploymentStatus::Primary)
}

/// The service schedules one task per instance.
pub(crate) fn is_daemon(svc: &Service) -> bool {
    svc.scheduling_strategy == Some(SchedulingStrategy::Daemon)
}

/// A deployment's stored rollout state as the scheduler sees it.
pub(crate) fn rollout_of(d: &Deployment) -> Rollout {
    match d.rollout_state {
        Some(DeploymentRolloutState::Completed) => Rollout::Completed,
        Some(DeploymentRolloutState::Failed) => Rollout::Failed,
        _ => Rollout::InProgress,
    }
}

/// The scheduler's rollout as stored.
pub(crate) fn rollout_state(r: Rollout) -> DeploymentRolloutState {
    match r {
        Rollout::Completed => DeploymentRolloutState::Completed,
        Rollout::Failed => DeploymentRolloutState::Failed,
        Rollout::InProgress => DeploymentRolloutState::InProgress,
    }
}

/// The placement seed of a service's deployment: the same service and deployment always
/// place alike, and nothing random enters a round.
pub(crate) fn seed_of(service_arn: &str, deployment: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(service_arn.as_bytes())
        .chain_update([0])
        .chain_update(deployment.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

/// What the service wants, as the scheduler reads it.
fn compute_spec(svc: &Service, disconnect_timeout_seconds: f64) -> reconcile::Spec {
    let cfg = svc.deployment_configuration.clone().unwrap_or_default();
    let breaker = cfg
        .deployment_circuit_breaker
        .as_ref()
        .filter(|b| b.enable)
        .map(|b| reconcile::CircuitBreaker {
            rollback: b.rollback,
        });
    reconcile::Spec {
        scheduling: if is_daemon(svc) && !is_draining(svc) {
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
        disconnect_timeout_seconds,
    }
}

/// DAEMON eligibility: whether the service's constraints allow a task on each instance,
/// resources aside.
fn compute_eligibility(
    instances: &[(reconcile::Instance, placement::Instance)],
    launch: &LaunchInputs,
) -> Vec<reconcile::Instance> {
    let mut probe = launch.request.clone();
    probe.cpu = 0;
    probe.memory = 0;
    probe.tcp_ports.clear();
    probe.udp_ports.clear();
    probe.gpus = 0;
    instances
        .iter()
        .map(|(ri, engine)| {
            let mut e = engine.clone();
            // A DAEMON task is never kept off an instance by its own group.
            e.groups.clear();
            let mut ri = ri.clone();
            ri.eligible = !placement::place(&[e], &probe, 1, &launch.constraints, &[], 0)
                .placements
                .is_empty();
            ri
        })
        .collect()
}

/// Decides one round for one service. Pure: the same observation, time and seed give the
/// same plan.
pub(crate) fn plan_round(observed: &Observed<'_>, now: f64, seed: u64) -> RoundPlan {
    let svc = &observed.service.service;
    if is_inactive(svc) {
        return RoundPlan::Idle;
    }
    let spec = compute_spec(svc, observed.disconnect_timeout_seconds);
    // Oldest first for the scheduler; the record lists the PRIMARY first.
    let deployments: Vec<&Deployment> = svc.deployments.iter().flatten().rev().collect();
    let ids: Vec<&str> = deployments.iter().filter_map(|d| d.id.as_deref()).collect();
    let mut tasks: Vec<reconcile::Task> = observed
        .tasks
        .iter()
        .map(|(t, _)| t.clone())
        .filter(|t| t.phase != Phase::Stopped || ids.contains(&t.deployment.as_str()))
        .collect();
    let balanced = match &observed.groups {
        Groups::None => None,
        Groups::Read(groups) => Some(Balanced::new(groups, observed.tasks, observed.instances)),
        Groups::Unreadable(error) => return RoundPlan::Wait(error.clone()),
    };
    let lb_failed = balanced
        .as_ref()
        .map(|b| b.fold_health(&mut tasks))
        .unwrap_or_default();
    let launch = observed.launch.as_ref();
    let instances = match launch {
        Some(Ok(l)) if is_daemon(svc) => compute_eligibility(observed.instances, l),
        _ => observed.instances.iter().map(|(i, _)| i.clone()).collect(),
    };
    let sched = reconcile::Observed {
        deployments: deployments
            .iter()
            .map(|d| reconcile::Deployment {
                id: d.id.clone().unwrap_or_default(),
                rollout: rollout_of(d),
            })
            .collect(),
        tasks,
        instances,
        now,
    };
    let mut actions = reconcile::compute(&spec, &sched);
    let mut notes = RoundReport::default();
    let stops = compute_stops(&actions, &sched.tasks, &lb_failed, &mut notes);
    let mut act = Act {
        deactivate: Vec::new(),
        deregister: BTreeMap::new(),
        register: BTreeMap::new(),
        stop: stops,
        start: None,
        notes,
        actions: Actions::default(),
    };
    if let Some(b) = &balanced {
        // Targets leave the balancer before their task stops: the task deactivates and
        // stops once its targets have drained.
        let drain = b.plan_drain(&act.stop);
        act.register = b.plan_registrations(&act.stop, &mut act.notes);
        act.deactivate = drain
            .waiting
            .iter()
            .filter(|p| !p.deactivating)
            .cloned()
            .collect();
        act.deregister = drain.leave;
        act.notes.draining += drain.draining;
        act.notes.waiting = drain.waiting.len();
        // A deployment whose tasks still drain is not over yet (`services-stable` waits
        // for the drain, as on ECS).
        actions.retire.retain(|d| {
            !drain.waiting.iter().any(|p| {
                sched
                    .tasks
                    .iter()
                    .any(|t| t.id == p.stop.task && &t.deployment == d)
            })
        });
        act.stop = drain.now;
    }
    if !actions.start.is_empty() {
        match launch {
            Some(Ok(l)) => act.start = Some(compute_starts(&actions, l, &sched.tasks, seed)),
            Some(Err(e)) => act.notes.launch_error = Some(e.clone()),
            None => {}
        }
    }
    act.actions = actions;
    RoundPlan::Act(Box::new(act))
}

/// The scheduler's stops with their messages, and the tasks already deactivating (their
/// stop code and reason are on the task already). RoundReport failed checks: they are news
/// when the stop is decided, drain or not.
fn compute_stops(
    actions: &Actions,
    tasks: &[reconcile::Task],
    lb_failed: &std::collections::HashMap<String, String>,
    notes: &mut RoundReport,
) -> Vec<PlannedStop> {
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
        tasks
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
    for p in &stops {
        if !p.deactivating && p.stop.reason == StopReason::Unhealthy {
            notes
                .failed_checks
                .push((p.stop.task.clone(), p.message.clone()));
        }
    }
    stops
}

/// The starts and what placement needs for them. The seed moves with the deployment's
/// tasks so far, so successive batches of one deployment do not repeat one another.
fn compute_starts(
    actions: &Actions,
    launch: &LaunchInputs,
    tasks: &[reconcile::Task],
    seed: u64,
) -> Starts {
    // ECS's default for REPLICA services: spread over zones, then instances.
    let strategies = if launch.strategies.is_empty() {
        vec![
            Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".into())),
            Strategy::Spread(SpreadField::InstanceId),
        ]
    } else {
        launch.strategies.clone()
    };
    let deployment = actions
        .start
        .first()
        .map(|s| s.deployment.as_str())
        .unwrap_or_default();
    let so_far = tasks.iter().filter(|t| t.deployment == deployment).count() as u64;
    Starts {
        count: actions.start.len(),
        on_instances: actions
            .start
            .iter()
            .filter_map(|s| s.instance.clone())
            .collect(),
        strategies,
        seed: seed.wrapping_add(so_far.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
    }
}
