//! `reconcile` owns the service scheduler's decisions, and nothing else: given what a
//! service wants ([`Spec`]) and what exists ([`Observed`]), [`compute`] says which tasks
//! to start and stop, how each deployment's rollout stands, and when to look again.
//!
//! It is pure and level-triggered: the same inputs give the same [`Actions`], nothing is
//! remembered between calls, so a restarted controller picks up exactly where the last one
//! was. Placement (where a start goes) and committing are the caller's job.
//!
//! Rules, as ECS documents them:
//! - A rolling deployment never lets healthy tasks drop below `minimumHealthyPercent` of
//!   the desired count (rounded up) nor lets live tasks exceed `maximumPercent` (rounded
//!   down). Old tasks are stopped only from the surplus above that floor, so with
//!   `minimumHealthyPercent` 100 an old task stops only once its replacement is healthy.
//! - Tasks that stop, sit on lost instances or fail their health checks are replaced.
//! - The circuit breaker fails a deployment after `clamp(ceil(desired / 2), 3, 200)` failed
//!   tasks and, with rollback, returns to the last completed deployment.
//! - DAEMON services run exactly one task on each eligible instance.
//! - A task under scale-in protection (`protected_until` still ahead) is never stopped by
//!   a scale-in or by a deployment retiring it: a lowered desired count stops unprotected
//!   tasks only, and an old deployment's protected tasks keep it alive (its replacements
//!   still start within `maximumPercent`) until protection is removed or expires.

#![forbid(unsafe_code)]

mod daemon;
mod replica;
#[cfg(test)]
mod tests;

/// REPLICA or DAEMON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheduling {
    /// Keep `desired` tasks, spread by placement.
    Replica,
    /// One task on every eligible instance.
    Daemon,
}

/// The circuit breaker's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CircuitBreaker {
    /// Return to the last completed deployment when one fails.
    pub rollback: bool,
}

/// What the service wants.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    /// REPLICA or DAEMON.
    pub scheduling: Scheduling,
    /// Desired tasks (REPLICA; ignored for DAEMON, where it is the eligible instances).
    pub desired: u32,
    /// `deploymentConfiguration.minimumHealthyPercent`.
    pub min_healthy_percent: u32,
    /// `deploymentConfiguration.maximumPercent`.
    pub max_percent: u32,
    /// `deploymentCircuitBreaker` when enabled.
    pub circuit_breaker: Option<CircuitBreaker>,
    /// `healthCheckGracePeriodSeconds`: unhealthy verdicts this soon after start are ignored.
    pub health_grace_seconds: f64,
    /// An instance whose agent has been disconnected this long counts as lost.
    pub disconnect_timeout_seconds: f64,
}

/// A deployment's rollout state (`rolloutState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rollout {
    /// `IN_PROGRESS`.
    InProgress,
    /// `COMPLETED`.
    Completed,
    /// `FAILED`.
    Failed,
}

/// One deployment of the service, newest last; the last is the PRIMARY.
#[derive(Clone, Debug, PartialEq)]
pub struct Deployment {
    /// `ecs-svc/…`, also its tasks' `startedBy`.
    pub id: String,
    /// Its rollout state as stored.
    pub rollout: Rollout,
}

/// Where a task is in its life, as far as scheduling cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Placed, not yet RUNNING (PROVISIONING..ACTIVATING) and meant to run.
    Pending,
    /// RUNNING and meant to run.
    Running,
    /// RUNNING, chosen to stop, and leaving its load balancers first: the controller stops
    /// it once its targets have drained. It no longer counts as running or healthy and is
    /// not stopped again, but its containers still run, so it holds room under the ceiling
    /// (else a revision failing its checks would start replacements faster than the drains
    /// end, without bound).
    Deactivating,
    /// Asked to stop (desiredStatus STOPPED) but not STOPPED yet.
    Stopping,
    /// STOPPED.
    Stopped,
}

/// A container health verdict summed up for the task (`healthStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// `HEALTHY`.
    Healthy,
    /// `UNHEALTHY`.
    Unhealthy,
    /// `UNKNOWN` (no verdict yet, or no health check).
    Unknown,
}

/// One task of the service.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    /// The task id.
    pub id: String,
    /// The deployment that started it (its `startedBy`).
    pub deployment: String,
    /// The container instance it is on; empty while it waits in PROVISIONING for
    /// capacity (placed later, so not lost).
    pub instance: String,
    /// Its phase.
    pub phase: Phase,
    /// Its health.
    pub health: Health,
    /// Whether any essential container has a health check (else RUNNING is healthy).
    pub has_health_check: bool,
    /// When it reached RUNNING (seconds), if it did.
    pub started_at: Option<f64>,
    /// When it stopped (seconds), if it did.
    pub stopped_at: Option<f64>,
    /// Stopped: whether it counts as a failure (it exited or failed to start on its own,
    /// or was stopped for failing health checks) rather than being stopped on purpose.
    pub failed: bool,
    /// Scale-in protection's expiry (seconds), if protection was set: the task is
    /// protected while `now` is before it.
    pub protected_until: Option<f64>,
}

impl Task {
    /// Whether scale-in protection holds the task at `now`.
    pub fn is_protected(&self, now: f64) -> bool {
        self.protected_until.is_some_and(|until| now < until)
    }
}

/// A container instance's standing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstanceStatus {
    /// ACTIVE: may take tasks.
    Active,
    /// DRAINING: its service tasks move elsewhere.
    Draining,
    /// Deregistered, missing, or disconnected beyond the timeout: its tasks are lost.
    Lost,
}

/// One container instance of the cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    /// Its id.
    pub id: String,
    /// ACTIVE, DRAINING or lost.
    pub status: InstanceStatus,
    /// Agent disconnected since (seconds), when it is.
    pub disconnected_since: Option<f64>,
    /// DAEMON: whether the service's constraints allow a task here.
    pub eligible: bool,
}

/// Everything that exists.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    /// The deployments, oldest first; the last one is PRIMARY.
    pub deployments: Vec<Deployment>,
    /// The service's tasks, including STOPPED ones still on record.
    pub tasks: Vec<Task>,
    /// The cluster's container instances.
    pub instances: Vec<Instance>,
    /// Now, in seconds.
    pub now: f64,
}

/// Why the scheduler stops a task (becomes its `stoppedReason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// Scaling in (desired count lowered, or an extra DAEMON task).
    ScaleIn,
    /// Replaced by a newer deployment.
    Deployment,
    /// Its instance is DRAINING.
    Draining,
    /// Its instance is gone or unreachable.
    InstanceLost,
    /// It failed its container health checks.
    Unhealthy,
}

impl StopReason {
    /// The `stoppedReason` ECS gives.
    pub fn message(self) -> &'static str {
        match self {
            StopReason::ScaleIn => "Scaling activity initiated by (deployment)",
            StopReason::Deployment => "Scaling activity initiated by (deployment)",
            StopReason::Draining => "Container instance is draining",
            StopReason::InstanceLost => "Container instance is unavailable",
            StopReason::Unhealthy => "Task failed container health checks",
        }
    }
}

/// A task to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Start {
    /// The deployment it belongs to (its `startedBy`, and its task definition).
    pub deployment: String,
    /// DAEMON: the instance it must go to; REPLICA: `None` (placement decides).
    pub instance: Option<String>,
}

/// A task to stop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stop {
    /// The task id.
    pub task: String,
    /// Why.
    pub reason: StopReason,
}

/// A change of a deployment's rollout state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RolloutChange {
    /// The deployment.
    pub deployment: String,
    /// Its new state.
    pub rollout: Rollout,
    /// `rolloutStateReason`.
    pub reason: String,
}

/// Counts DescribeServices shows, per deployment and in total.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Tasks RUNNING and meant to run.
    pub running: u32,
    /// Tasks placed, not yet RUNNING, meant to run.
    pub pending: u32,
    /// Stopped tasks counted as failures.
    pub failed: u32,
}

/// What to do now.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Actions {
    /// Tasks to start.
    pub start: Vec<Start>,
    /// Tasks to stop.
    pub stop: Vec<Stop>,
    /// Rollout state changes.
    pub rollouts: Vec<RolloutChange>,
    /// Old deployments with no task left: remove them from the service.
    pub retire: Vec<String>,
    /// The circuit breaker tripped with rollback: start a deployment like this earlier one.
    pub rollback_to: Option<String>,
    /// The desired count of the PRIMARY deployment (DAEMON: eligible instances).
    pub desired: u32,
    /// Counts per deployment id.
    pub counts: Vec<(String, Counts)>,
    /// No start, stop or pending change: the service is where it should be.
    pub steady: bool,
    /// Launches are held back after repeated failures until this time (seconds).
    pub backoff_until: Option<f64>,
    /// Tasks a scale-in or a deployment would have stopped but scale-in protection keeps
    /// (ids, sorted): the service cannot reach its steady state until they are released.
    pub protected_kept: Vec<String>,
}

impl Actions {
    /// The counts of one deployment.
    pub fn counts_of(&self, deployment: &str) -> Counts {
        self.counts
            .iter()
            .find(|(d, _)| d == deployment)
            .map(|(_, c)| c.clone())
            .unwrap_or_default()
    }
}

/// `minimumHealthyPercent` of `desired`, rounded up.
pub fn floor(desired: u32, min_percent: u32) -> u32 {
    let v = u64::from(desired) * u64::from(min_percent);
    u32::try_from(v.div_ceil(100)).unwrap_or(u32::MAX)
}

/// `maximumPercent` of `desired`, rounded down.
pub fn ceiling(desired: u32, max_percent: u32) -> u32 {
    let v = u64::from(desired) * u64::from(max_percent) / 100;
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// Failed tasks after which the circuit breaker trips a deployment.
pub fn breaker_threshold(desired: u32) -> u32 {
    desired.div_ceil(2).clamp(3, 200)
}

/// Seconds launches wait after `failures` consecutive failed tasks (no circuit breaker):
/// none for the first few, then doubling, capped, as ECS throttles a service that cannot
/// start its tasks.
pub fn backoff_seconds(failures: u32) -> f64 {
    if failures < 3 {
        return 0.0;
    }
    let exp = (failures - 3).min(5);
    (10.0 * f64::from(1u32 << exp)).min(300.0)
}

/// Whether a task counts toward the healthy floor: RUNNING and not failing its checks.
/// A task with checks but no verdict yet counts as healthy only within the grace period
/// (ECS treats it as healthy until the checks have had their chance).
pub(crate) fn counts_healthy(t: &Task) -> bool {
    t.phase == Phase::Running
        && match t.health {
            Health::Healthy => true,
            Health::Unhealthy => false,
            Health::Unknown => !t.has_health_check,
        }
}

/// Whether a task is meant to run (placed, not asked to stop).
pub(crate) fn live(t: &Task) -> bool {
    matches!(t.phase, Phase::Pending | Phase::Running)
}

/// The instance statuses by id, with disconnection beyond the timeout counting as lost.
pub(crate) fn instance_status<'a>(
    spec: &Spec,
    observed: &'a Observed,
) -> std::collections::HashMap<&'a str, InstanceStatus> {
    observed
        .instances
        .iter()
        .map(|i| {
            let lost = i
                .disconnected_since
                .is_some_and(|s| observed.now - s >= spec.disconnect_timeout_seconds);
            let status = if lost { InstanceStatus::Lost } else { i.status };
            (i.id.as_str(), status)
        })
        .collect()
}

/// Computes what to do. Pure: same inputs, same answer.
pub fn compute(spec: &Spec, observed: &Observed) -> Actions {
    let mut a = match spec.scheduling {
        Scheduling::Replica => replica::compute(spec, observed),
        Scheduling::Daemon => daemon::compute(spec, observed),
    };
    finish(spec, observed, &mut a);
    a
}

/// The parts every strategy shares once starts and stops are known: counts, the circuit
/// breaker, completion of the primary, retirement of drained deployments, backoff.
fn finish(spec: &Spec, observed: &Observed, a: &mut Actions) {
    a.protected_kept.sort();
    let stopping: std::collections::HashSet<&str> =
        a.stop.iter().map(|s| s.task.as_str()).collect();
    for d in &observed.deployments {
        let mut c = Counts::default();
        for t in observed.tasks.iter().filter(|t| t.deployment == d.id) {
            match t.phase {
                Phase::Running if !stopping.contains(t.id.as_str()) => c.running += 1,
                Phase::Pending if !stopping.contains(t.id.as_str()) => c.pending += 1,
                Phase::Stopped if t.failed => c.failed += 1,
                _ => {}
            }
        }
        a.counts.push((d.id.clone(), c));
    }
    let Some(primary) = observed.deployments.last() else {
        a.steady = a.start.is_empty() && a.stop.is_empty();
        return;
    };
    let pc = a.counts_of(&primary.id);
    // Circuit breaker on the PRIMARY while it rolls out.
    if let (Some(cb), Rollout::InProgress) = (spec.circuit_breaker, primary.rollout) {
        if pc.failed >= breaker_threshold(a.desired) {
            a.rollouts.push(RolloutChange {
                deployment: primary.id.clone(),
                rollout: Rollout::Failed,
                reason: "ECS deployment circuit breaker: tasks failed to start.".into(),
            });
            a.start.retain(|s| s.deployment != primary.id);
            if cb.rollback {
                a.rollback_to = observed.deployments[..observed.deployments.len() - 1]
                    .iter()
                    .rev()
                    .find(|d| d.rollout == Rollout::Completed)
                    .map(|d| d.id.clone());
            }
        }
    }
    if primary.rollout == Rollout::Failed {
        // A failed deployment launches nothing more; its running tasks stay.
        a.start.retain(|s| s.deployment != primary.id);
    }
    // Backoff where no circuit breaker watches the rollout (none configured, or the
    // deployment already finished): consecutive failures since the last healthy start.
    if spec.circuit_breaker.is_none() || primary.rollout != Rollout::InProgress {
        let last_good = observed
            .tasks
            .iter()
            .filter(|t| t.deployment == primary.id && !t.failed)
            .filter_map(|t| t.started_at)
            .fold(f64::NEG_INFINITY, f64::max);
        let recent: Vec<f64> = observed
            .tasks
            .iter()
            .filter(|t| t.deployment == primary.id && t.failed)
            .filter_map(|t| t.stopped_at)
            .filter(|s| *s > last_good)
            .collect();
        let wait = backoff_seconds(u32::try_from(recent.len()).unwrap_or(u32::MAX));
        if wait > 0.0 {
            let last = recent.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if observed.now < last + wait {
                a.backoff_until = Some(last + wait);
                a.start.retain(|s| s.deployment != primary.id);
            }
        }
    }
    // Retire old deployments with nothing left running or pending.
    for d in &observed.deployments[..observed.deployments.len() - 1] {
        let c = a.counts_of(&d.id);
        let stopping_left = observed.tasks.iter().any(|t| {
            t.deployment == d.id && matches!(t.phase, Phase::Stopping | Phase::Deactivating)
        });
        if c.running == 0 && c.pending == 0 && !stopping_left {
            a.retire.push(d.id.clone());
        }
    }
    // The PRIMARY completes when it alone runs the desired count, all healthy.
    let healthy_primary = observed
        .tasks
        .iter()
        .filter(|t| t.deployment == primary.id && counts_healthy(t))
        .filter(|t| !stopping.contains(t.id.as_str()))
        .count();
    let others_left = observed.deployments.len() - 1 > a.retire.len();
    let done = a.start.is_empty()
        && a.stop.is_empty()
        && pc.pending == 0
        && u32::try_from(healthy_primary).unwrap_or(u32::MAX) == a.desired
        && pc.running == a.desired
        && !others_left;
    if done && primary.rollout == Rollout::InProgress {
        a.rollouts.push(RolloutChange {
            deployment: primary.id.clone(),
            rollout: Rollout::Completed,
            reason: "ECS deployment completed.".into(),
        });
    }
    a.steady = done && a.backoff_until.is_none();
}
