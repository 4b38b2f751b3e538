//! What a round leaves in the service record, decided without I/O: counts recomputed from
//! the tasks, rollout changes, a circuit-breaker rollback, retired deployments, events,
//! and the end of a DRAINING service. [`apply_outcome`] takes the round's plan and what
//! executing it did ([`RoundReport`]), so it runs again unchanged when the write loses a race.

use super::api::{push_primary, INACTIVE};
use super::plan::{is_active, is_daemon, is_draining, is_primary, rollout_of, rollout_state};
use super::StoredService;
use model::ecs::shapes::DeploymentRolloutState;
use reconcile::{Actions, Rollout};

/// The same placement-failure event is not repeated more often than this (seconds).
const EVENT_REPEAT_SECONDS: f64 = 300.0;

/// What a round decided and did besides the scheduler's actions: for the service's events.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RoundReport {
    /// Tasks started this round.
    pub started: Vec<String>,
    /// Tasks stopped this round.
    pub stopped: Vec<String>,
    /// (task, stoppedReason) of tasks chosen to stop for failing health checks.
    pub failed_checks: Vec<(String, String)>,
    /// Tasks still waiting for their targets to drain: an INACTIVE service is no longer
    /// reconciled, so a deleted service stays DRAINING until they have stopped.
    pub waiting: usize,
    /// Why placement could not start every task.
    pub placement_failure: Option<String>,
    /// Why the PRIMARY's launch could not be resolved.
    pub launch_error: Option<String>,
    /// (target group, count) registered this round.
    pub registered: Vec<(String, usize)>,
    /// (target group, count) deregistered this round.
    pub deregistered: Vec<(String, usize)>,
    /// Tasks whose targets began draining this round.
    pub draining: usize,
    /// Targets the balancer reports unhealthy: (task, target id, port, group, reason).
    pub unhealthy_targets: Vec<(String, String, u16, String, String)>,
}

/// The service event's wording of why placement found no instance.
pub(crate) fn placement_message(failures: &[model::ecs::shapes::Failure]) -> String {
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
pub(crate) fn apply_outcome(st: &mut StoredService, a: &Actions, notes: &RoundReport, at: f64) {
    let name = st.name().to_owned();
    let daemon = is_daemon(&st.service);
    let mut events = compute_round_events(&name, notes);
    let repeatable = compute_repeatable_events(&name, a, notes);
    let total = apply_counts(st, a);
    let rollback = apply_rollouts(st, a, at, &mut events);
    let deps = st.service.deployments.get_or_insert_with(Vec::new);
    // Retire drained old deployments (never the PRIMARY).
    deps.retain(|d| is_primary(d) || !a.retire.iter().any(|r| Some(r.as_str()) == d.id.as_deref()));
    if let Some((failed, old_id, td)) = rollback {
        let reason =
            format!("ECS deployment circuit breaker: rolling back to deploymentId {old_id}.");
        roll_back(st, &failed, &old_id, td, &reason, at, &mut events);
    }
    st.service.running_count = Some(i32::try_from(total.running).unwrap_or(i32::MAX));
    st.service.pending_count = Some(i32::try_from(total.pending).unwrap_or(i32::MAX));
    if daemon && is_active(&st.service) {
        st.service.desired_count = Some(i32::try_from(a.desired).unwrap_or(i32::MAX));
    }
    if is_draining(&st.service)
        && total.running == 0
        && total.pending == 0
        && a.stop.is_empty()
        && notes.waiting == 0
    {
        st.service.status = Some(INACTIVE);
        st.inactive_at = Some(at);
    }
    let steady_now = a.steady && is_active(&st.service);
    if steady_now && !st.steady {
        events.push(format!("(service {name}) has reached a steady state."));
    }
    st.steady = steady_now;
    for e in events {
        st.event(e, at);
    }
    // The history's counts follow this round's.
    st.history.refresh(&mut st.service);
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

/// The events of what the round did, in the order ECS words them.
fn compute_round_events(name: &str, notes: &RoundReport) -> Vec<String> {
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
    events
}

/// Events that are not repeated within [`EVENT_REPEAT_SECONDS`].
fn compute_repeatable_events(name: &str, a: &Actions, notes: &RoundReport) -> Vec<String> {
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
    if !a.protected_kept.is_empty() {
        // ECS says so when protected tasks keep a scale-in or a deployment from reaching
        // steady state ("Task scale-in protection considerations").
        let list: Vec<String> = a
            .protected_kept
            .iter()
            .map(|t| format!("(task {t})"))
            .collect();
        repeatable.push(format!(
            "(service {name}) was unable to scale in due to {} tasks under protection: {}.",
            a.protected_kept.len(),
            list.join(" ")
        ));
    }
    if a.backoff_until.is_some() {
        repeatable.push(format!(
            "(service {name}) is unable to consistently start tasks successfully. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."
        ));
    }
    repeatable
}

/// Each deployment's counts (and desired count) from the tasks; the service's totals.
fn apply_counts(st: &mut StoredService, a: &Actions) -> reconcile::Counts {
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
        if is_primary(d) {
            d.desired_count = Some(i32::try_from(a.desired).unwrap_or(i32::MAX));
        } else {
            d.desired_count = Some(0);
        }
    }
    total
}

/// Records rollout changes and their events; when one failed with rollback on, the
/// failed deployment and the completed one to roll back to (id, task definition).
fn apply_rollouts(
    st: &mut StoredService,
    a: &Actions,
    at: f64,
    events: &mut Vec<String>,
) -> Option<(String, String, String)> {
    let name = st.name().to_owned();
    let deps = st.service.deployments.get_or_insert_with(Vec::new);
    let mut rollback: Option<(String, String, String)> = None;
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
                st.history.completed(&r.deployment, at);
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
                st.history
                    .failed(&r.deployment, d.failed_tasks.unwrap_or(0), at);
                if wants_rollback {
                    rollback = st
                        .completed
                        .last()
                        .map(|(id, td)| (r.deployment.clone(), id.clone(), td.clone()));
                }
            }
            Rollout::InProgress => {}
        }
    }
    rollback
}

/// Rolls the deployment `failed` back: starts a deployment of the completed deployment
/// `old_id`'s task definition (`td`), `reason` saying why, and records it in the
/// service deployment of `failed` (the circuit breaker's rollback and
/// StopServiceDeployment's).
pub(crate) fn roll_back(
    st: &mut StoredService,
    failed: &str,
    old_id: &str,
    td: String,
    reason: &str,
    at: f64,
    events: &mut Vec<String>,
) {
    let name = st.name().to_owned();
    let primary = st
        .service
        .deployments
        .iter()
        .flatten()
        .find(|d| is_primary(d))
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
            nd.rollout_state_reason = Some(reason.to_owned());
        }
        st.history.rolling_back(failed, &new_id, old_id, reason, at);
        st.history.refresh(&mut st.service);
        st.service.task_definition = Some(td);
        events.push(format!(
            "(service {name}) (deployment {new_id}) rolling back to deployment {old_id}."
        ));
        st.steady = false;
    }
}
