//! The controller's round for a service driven by task sets: each task set is reconciled
//! as a one-deployment service of its own ([`compute_task_set_view`]: the task set's task
//! definition, capacity, network and target groups, wanting its `computedDesiredCount`),
//! through the same planner and executor as every service. The round then writes each task
//! set's counts and stability, the service's totals and events, retires DRAINING task sets
//! whose tasks are gone, and ends a deleted service ([`apply_task_set_outcomes`], pure).

use super::{apply_stability, compute_desired_count, compute_stability, DRAINING as TS_DRAINING};
use crate::error::EcsError;
use crate::services::api::INACTIVE;
use crate::services::plan::{is_draining, plan_round, seed_of, Observed, RoundPlan};
use crate::services::record::apply_outcome;
use crate::services::targets::TaskAddress;
use crate::services::StoredService;
use crate::{now, Ecs};
use model::ecs::shapes::{
    Deployment, DeploymentRolloutState, SchedulingStrategy, ServiceEvent, TaskSet,
};
use model::ecs::status::DeploymentStatus;
use reconcile::Phase;

/// What one round did for one task set.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct TaskSetOutcome {
    /// The task set's id.
    pub id: String,
    /// Its RUNNING tasks.
    pub running: i32,
    /// Its tasks on their way to RUNNING.
    pub pending: i32,
    /// The scheduler found nothing left to do (healthy, nothing draining).
    pub steady: bool,
    /// Any of its tasks has not stopped yet.
    pub live: bool,
    /// Events the round wrote (newest first), as the service shows them.
    pub events: Vec<ServiceEvent>,
}

/// How ECS words the event of a service reaching its steady state (a task set's round
/// must not repeat it: the service says it once, when all its task sets are steady).
fn is_steady_event(e: &ServiceEvent) -> bool {
    e.message
        .as_deref()
        .is_some_and(|m| m.ends_with("has reached a steady state."))
}

/// The service as one task set sees it: a REPLICA service with a single completed
/// deployment (the task set's id, so its tasks carry it as `startedBy`) running the task
/// set's configuration, wanting the task set's computed count.
pub(crate) fn compute_task_set_view(st: &StoredService, ts: &TaskSet) -> StoredService {
    let mut svc = st.service.clone();
    let desired = compute_desired_count(svc.desired_count.unwrap_or(0), ts);
    svc.desired_count = Some(desired);
    svc.task_definition = ts.task_definition.clone();
    svc.load_balancers = ts.load_balancers.clone();
    svc.network_configuration = ts.network_configuration.clone();
    svc.launch_type = ts.launch_type;
    svc.capacity_provider_strategy = ts.capacity_provider_strategy.clone();
    svc.platform_version = ts.platform_version.clone();
    svc.platform_family = ts.platform_family.clone();
    svc.scheduling_strategy = Some(SchedulingStrategy::Replica);
    svc.task_sets = None;
    svc.deployments = Some(vec![Deployment {
        id: ts.id.clone(),
        status: Some(DeploymentStatus::Primary),
        task_definition: ts.task_definition.clone(),
        desired_count: Some(desired),
        pending_count: ts.pending_count,
        running_count: ts.running_count,
        failed_tasks: Some(0),
        launch_type: ts.launch_type,
        capacity_provider_strategy: ts.capacity_provider_strategy.clone(),
        platform_version: ts.platform_version.clone(),
        network_configuration: ts.network_configuration.clone(),
        // A task set scales; it never rolls out (no circuit breaker, no rollback).
        rollout_state: Some(DeploymentRolloutState::Completed),
        ..Default::default()
    }]);
    StoredService {
        service: svc,
        request_hash: String::new(),
        completed: Vec::new(),
        steady: st.steady,
        inactive_at: None,
        history: Default::default(),
        task_set_tokens: Vec::new(),
        created_launch_type: st.created_launch_type,
    }
}

/// Writes a round's outcomes into the service record: each task set's counts and
/// stability, the service's totals and new events; DRAINING task sets whose tasks have all
/// stopped leave; a DRAINING service whose task sets have no task left becomes INACTIVE.
pub(crate) fn apply_task_set_outcomes(
    st: &mut StoredService,
    outcomes: &[TaskSetOutcome],
    at: f64,
) {
    let desired = st.service.desired_count.unwrap_or(0);
    let (mut running, mut pending, mut live) = (0i32, 0i32, false);
    let mut all_steady = true;
    let mut events: Vec<ServiceEvent> = Vec::new();
    for ts in st.service.task_sets.iter_mut().flatten() {
        let computed = compute_desired_count(desired, ts);
        ts.computed_desired_count = Some(computed);
        let Some(o) = outcomes
            .iter()
            .find(|o| ts.id.as_deref() == Some(o.id.as_str()))
        else {
            // Created after the round observed the service: the next round runs it.
            all_steady = false;
            continue;
        };
        ts.running_count = Some(o.running);
        ts.pending_count = Some(o.pending);
        let status = compute_stability(ts, o.steady);
        all_steady &= status == model::ecs::shapes::StabilityStatus::SteadyState;
        apply_stability(ts, status, at);
        running = running.saturating_add(o.running);
        pending = pending.saturating_add(o.pending);
        live |= o.live;
        events.extend(o.events.iter().cloned());
    }
    let gone: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.live && o.running == 0 && o.pending == 0)
        .map(|o| o.id.clone())
        .collect();
    if let Some(sets) = st.service.task_sets.as_mut() {
        sets.retain(|ts| {
            ts.status.as_deref() != Some(TS_DRAINING)
                || !gone.iter().any(|g| ts.id.as_deref() == Some(g.as_str()))
        });
        let ids: Vec<String> = sets.iter().filter_map(|t| t.id.clone()).collect();
        st.task_set_tokens.retain(|(_, id)| ids.contains(id));
    }
    st.service.running_count = Some(running);
    st.service.pending_count = Some(pending);
    // Newest first, as the round wrote them.
    events.sort_by(|a, b| {
        b.created_at
            .unwrap_or(0.0)
            .total_cmp(&a.created_at.unwrap_or(0.0))
    });
    let mut merged = events;
    merged.extend(st.service.events.take().unwrap_or_default());
    merged.truncate(crate::services::MAX_EVENTS);
    st.service.events = Some(merged);
    if is_draining(&st.service) && !live && running == 0 && pending == 0 {
        st.service.status = Some(INACTIVE);
        st.inactive_at = Some(at);
    }
    let steady_now = all_steady && !is_draining(&st.service) && st.service.status != Some(INACTIVE);
    if steady_now && !st.steady {
        let name = st.name().to_owned();
        st.event(format!("(service {name}) has reached a steady state."), at);
    }
    st.steady = steady_now;
}

impl Ecs {
    /// One round of a service driven by task sets: plan and execute each task set as a
    /// service of its own, then record every outcome in one write.
    pub(crate) async fn reconcile_task_sets(
        &self,
        cluster: &str,
        name: &str,
        st: &StoredService,
        tasks: &[(reconcile::Task, TaskAddress)],
        instances: &[(reconcile::Instance, placement::Instance)],
    ) -> Result<(), EcsError> {
        let mut outcomes = Vec::new();
        let known: Vec<ServiceEvent> = st.service.events.clone().unwrap_or_default();
        for ts in st.service.task_sets.iter().flatten() {
            let id = ts.id.clone().unwrap_or_default();
            let mut view = compute_task_set_view(st, ts);
            view.service.events = Some(known.clone());
            let mine: Vec<(reconcile::Task, TaskAddress)> = tasks
                .iter()
                .filter(|(t, _)| t.deployment == id)
                .cloned()
                .collect();
            let deployment = view
                .service
                .deployments
                .iter()
                .flatten()
                .next()
                .cloned()
                .unwrap_or_default();
            let groups = self.observe_groups(&view.service).await;
            let prepared = self
                .prepare_service_launch(cluster, name, &view, &deployment)
                .await;
            let observed = Observed {
                service: &view,
                tasks: &mine,
                instances,
                groups,
                launch: Some(
                    prepared
                        .as_ref()
                        .map(|(_, i)| i.clone())
                        .map_err(|e| e.to_string()),
                ),
                disconnect_timeout_seconds: self.disconnect_timeout(),
            };
            let seed = seed_of(st.service.service_arn.as_deref().unwrap_or(name), &id);
            let act = match plan_round(&observed, now(), seed) {
                RoundPlan::Idle => continue,
                RoundPlan::Wait(error) => {
                    tracing::warn!(cluster, service = name, task_set = %id, %error, "Reading a target group failed; the task set waits for the next round.");
                    continue;
                }
                RoundPlan::Act(act) => *act,
            };
            let launch = prepared.ok();
            let (actions, notes) = self.execute_plan(cluster, act, launch.as_ref()).await?;
            apply_outcome(&mut view, &actions, &notes, now());
            let fresh: Vec<ServiceEvent> = view
                .service
                .events
                .take()
                .unwrap_or_default()
                .into_iter()
                .filter(|e| !known.iter().any(|k| k.id == e.id) && !is_steady_event(e))
                .collect();
            let count = |p: Phase| {
                let n = mine.iter().filter(|(t, _)| t.phase == p).count();
                i32::try_from(n).unwrap_or(i32::MAX)
            };
            outcomes.push(TaskSetOutcome {
                id,
                running: count(Phase::Running),
                pending: count(Phase::Pending),
                steady: actions.steady && notes.started.is_empty() && notes.stopped.is_empty(),
                live: mine.iter().any(|(t, _)| t.phase != Phase::Stopped),
                events: fresh,
            });
        }
        self.record_task_sets(cluster, name, &outcomes).await
    }

    /// Writes the round's outcomes into the service (retrying on races with the API).
    async fn record_task_sets(
        &self,
        cluster: &str,
        name: &str,
        outcomes: &[TaskSetOutcome],
    ) -> Result<(), EcsError> {
        self.rewrite_service(cluster, name, |st| {
            apply_task_set_outcomes(st, outcomes, now())
        })
        .await
    }
}
