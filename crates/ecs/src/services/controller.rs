//! The service controller: a level-triggered loop that, for every service, observes the
//! service record, its tasks, the cluster's instances and its target groups, asks
//! [`plan_round`] what to do (pure), executes the plan (stops through the same path as
//! StopTask, starts through RunTask's placement and commit, target groups through the
//! `TargetGroups` port), and records the outcome — counts, rollouts, events — in the
//! service ([`apply_outcome`], pure).
//!
//! Nothing is remembered between rounds except a hint (when each instance's agent was
//! first seen disconnected); a restarted server simply runs the next round. A task chosen
//! to stop that waits for its targets to drain says so itself (DEACTIVATING).

use super::plan::{
    is_inactive, plan_round, seed_of, Act, Groups, LaunchInputs, Observed, RoundPlan, Starts,
    ELB_FAILED,
};
use super::record::{apply_outcome, placement_message, RoundReport};
use super::targets::TaskAddress;
use super::{service_key, StoredService};
use crate::error::EcsError;
use crate::objects::{decode, encode, task_prefix, Step, StoredTask};
use crate::tasks::launch::{parse_placement, Launch, LaunchParams};
use crate::{now, Ecs};
use model::ecs::shapes::{Deployment, PropagateTags, TaskStopCode};
use model::ecs::status::{ContainerInstanceStatus, TaskStatus};
use reconcile::{Actions, Health, InstanceStatus, Phase, StopReason};
use std::collections::{BTreeMap, HashMap};
use store::Txn;

/// How often every service is looked at even when nothing woke the controller.
const TICK: std::time::Duration = std::time::Duration::from_secs(1);
/// How long a wake-up waits for more of the same burst before a round.
const DEBOUNCE: std::time::Duration = std::time::Duration::from_millis(50);
/// A task key's decoded revision and, for a service task, its service, scheduling view
/// and reach.
pub(crate) type CachedTask = (u64, Option<(String, reconcile::Task, TaskAddress)>);

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

fn short_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// The scheduler's view of one stored task.
fn observe_task(st: &StoredTask) -> reconcile::Task {
    let t = &st.task;
    let last = t.last_status.unwrap_or(TaskStatus::Pending);
    let desired_stop = t.desired_status == Some(TaskStatus::Stopped);
    let phase = match last {
        TaskStatus::Stopped | TaskStatus::Deleted => Phase::Stopped,
        _ if st.deactivating => Phase::Deactivating,
        _ if desired_stop => Phase::Stopping,
        TaskStatus::Running => Phase::Running,
        TaskStatus::Provisioning
        | TaskStatus::Pending
        | TaskStatus::Activating
        | TaskStatus::Deactivating
        | TaskStatus::Stopping
        | TaskStatus::Deprovisioning => Phase::Pending,
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
        protected_until: st.protected_until,
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
            // Tasks waiting for capacity first: those placed now count as pending.
            if let Err(e) = self.place_provisioning().await {
                tracing::warn!(error = %e, "Placing tasks waiting for capacity failed; retrying.");
            }
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
    ) -> Result<HashMap<String, Vec<(reconcile::Task, TaskAddress)>>, EcsError> {
        let mut all = self.controller.tasks.lock().await;
        let cache = all.entry(cluster.to_owned()).or_default();
        let mut seen = std::collections::HashSet::with_capacity(cache.len());
        let mut out: HashMap<String, Vec<(reconcile::Task, TaskAddress)>> = HashMap::new();
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
                    .map(|name| {
                        (
                            name.to_owned(),
                            observe_task(&st),
                            TaskAddress::of(&st.task),
                        )
                    });
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
                let status = match si.instance.status {
                    Some(ContainerInstanceStatus::Active) => InstanceStatus::Active,
                    Some(ContainerInstanceStatus::Draining) => InstanceStatus::Draining,
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

    /// One service's round: observe, plan, execute.
    async fn reconcile_service(
        &self,
        cluster: &str,
        name: &str,
        tasks: &[(reconcile::Task, TaskAddress)],
        instances: &[(reconcile::Instance, placement::Instance)],
    ) -> Result<(), EcsError> {
        let Some((st, _)) = self.load_service(cluster, name).await? else {
            return Ok(());
        };
        let svc = &st.service;
        if is_inactive(svc) {
            return Ok(());
        }
        if super::task_sets::is_task_set_driven(svc) {
            return self
                .reconcile_task_sets(cluster, name, &st, tasks, instances)
                .await;
        }
        let groups = self.observe_groups(svc).await;
        // The record lists the PRIMARY first.
        let primary = svc.deployments.iter().flatten().next();
        let prepared = match primary {
            Some(p) => Some(self.prepare_service_launch(cluster, name, &st, p).await),
            None => None,
        };
        let observed = Observed {
            service: &st,
            tasks,
            instances,
            groups,
            launch: prepared.as_ref().map(|r| {
                r.as_ref()
                    .map(|(_, i)| i.clone())
                    .map_err(|e| e.to_string())
            }),
            disconnect_timeout_seconds: self.disconnect_timeout(),
        };
        let seed = seed_of(
            svc.service_arn.as_deref().unwrap_or(name),
            primary.and_then(|d| d.id.as_deref()).unwrap_or_default(),
        );
        let round = std::time::Instant::now();
        let act = match plan_round(&observed, now(), seed) {
            RoundPlan::Idle => return Ok(()),
            RoundPlan::Wait(error) => {
                tracing::warn!(cluster, service = name, %error, "Reading a target group failed; the service waits for the next round.");
                return Ok(());
            }
            RoundPlan::Act(act) => *act,
        };
        let steady = act.actions.steady;
        let launch = prepared.and_then(Result::ok);
        let notes = self
            .execute_round(cluster, name, act, launch.as_ref())
            .await?;
        tracing::debug!(
            cluster,
            service = name,
            tasks = tasks.len(),
            started = notes.started.len(),
            stopped = notes.stopped.len(),
            steady,
            elapsed_ms = round.elapsed().as_millis() as u64,
            "Service reconciled."
        );
        Ok(())
    }

    pub(super) fn disconnect_timeout(&self) -> f64 {
        *self
            .controller
            .disconnect_timeout
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The service's target groups as the balancer describes them. A group that cannot be
    /// read makes the whole view unreadable; a group that does not exist is left out.
    pub(super) async fn observe_groups(&self, svc: &model::ecs::shapes::Service) -> Groups {
        let Some(b) = &self.balancers else {
            return Groups::None;
        };
        let lbs = svc.load_balancers.as_deref().unwrap_or_default();
        if lbs.is_empty() {
            return Groups::None;
        }
        let mut groups = Vec::new();
        for lb in lbs {
            let Some(arn) = lb.target_group_arn.as_deref() else {
                continue;
            };
            match b.describe(arn).await {
                Ok(Some(view)) => groups.push((lb.clone(), view)),
                Ok(None) => tracing::warn!(
                    target_group = arn,
                    "A service's target group does not exist."
                ),
                Err(error) => return Groups::Unreadable(error),
            }
        }
        Groups::Read(groups)
    }

    /// Carries out a round's plan in order, then writes what it did into the service
    /// record. A step that fails is logged and the rest go ahead: the next round, level-
    /// triggered, sees what did not happen and plans it again.
    async fn execute_round(
        &self,
        cluster: &str,
        name: &str,
        act: Act,
        launch: Option<&(Launch, LaunchInputs)>,
    ) -> Result<RoundReport, EcsError> {
        let (actions, notes) = self.execute_plan(cluster, act, launch).await?;
        self.record(cluster, name, &actions, &notes).await?;
        Ok(notes)
    }

    /// The effects of a round's plan, in order (deactivations, target changes, stops,
    /// starts); answers with the scheduler's actions and what was done, for the record.
    pub(super) async fn execute_plan(
        &self,
        cluster: &str,
        act: Act,
        launch: Option<&(Launch, LaunchInputs)>,
    ) -> Result<(Actions, RoundReport), EcsError> {
        let Act {
            actions,
            deactivate,
            deregister,
            register,
            stop,
            start,
            mut notes,
        } = act;
        // Marked before the targets leave: after a crash in between, the next round
        // finds the task deactivating with live targets and deregisters them.
        for p in &deactivate {
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
        if let Some(b) = &self.balancers {
            // Deregistered targets drain for their group's deregistration delay.
            for (tg, targets) in deregister {
                match b.deregister(&tg, &targets).await {
                    Ok(()) => notes.deregistered.push((tg, targets.len())),
                    Err(e) => {
                        tracing::warn!(target_group = %tg, error = %e, "Deregistering targets failed.")
                    }
                }
            }
            for (tg, targets) in register {
                match b.register(&tg, &targets).await {
                    Ok(()) => notes.registered.push((tg, targets.len())),
                    Err(e) => {
                        tracing::warn!(target_group = %tg, error = %e, "Registering targets failed.")
                    }
                }
            }
        }
        for p in &stop {
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
        if let (Some(s), Some((l, inputs))) = (&start, launch) {
            self.start_service_tasks(l, inputs, s, &mut notes).await?;
        }
        Ok((actions, notes))
    }

    /// Resolves the PRIMARY deployment's launch (task definition, overrides, tags) and
    /// what placement needs for it.
    pub(super) async fn prepare_service_launch(
        &self,
        cluster: &str,
        name: &str,
        st: &StoredService,
        d: &Deployment,
    ) -> Result<(Launch, LaunchInputs), EcsError> {
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
                managed_tags: svc.enable_ecs_managed_tags.unwrap_or(false),
                service: Some(name),
            })
            .await?;
        let (constraints, strategies) = parse_placement(
            &l.td,
            svc.placement_constraints.as_deref(),
            svc.placement_strategy.as_deref(),
        )?;
        let inputs = LaunchInputs {
            request: l.request.clone(),
            constraints,
            strategies,
            given: (
                svc.placement_constraints.clone().unwrap_or_default(),
                svc.placement_strategy.clone().unwrap_or_default(),
            ),
        };
        Ok((l, inputs))
    }

    /// Places and commits the planned starts (RunTask's path: one placement plan, one
    /// transaction with the instances' bookings, re-planned when it loses a race).
    async fn start_service_tasks(
        &self,
        l: &Launch,
        inputs: &LaunchInputs,
        s: &Starts,
        notes: &mut RoundReport,
    ) -> Result<(), EcsError> {
        let (tasks, failures) = if s.on_instances.is_empty() {
            // Through group providers, what fits nowhere waits in PROVISIONING (and
            // counts as pending, so the next round does not start it again).
            let wait = crate::tasks::provisioning::WaitSpec {
                count: s.count,
                constraints: inputs.given.0.clone(),
                strategies: inputs.given.1.clone(),
            };
            self.launch(l, None, Some(&wait), |view, count| {
                placement::place(
                    &view.instances,
                    &l.request,
                    count,
                    &inputs.constraints,
                    &s.strategies,
                    s.seed,
                )
            })
            .await?
        } else {
            let wanted: Vec<(String, String)> = s
                .on_instances
                .iter()
                .map(|t| (t.clone(), t.clone()))
                .collect();
            self.launch(l, None, None, |view, _| {
                crate::tasks::launch::place_on_named(view, &wanted, &l.request)
            })
            .await?
        };
        notes.started = tasks
            .iter()
            .filter_map(|t| t.task_arn.as_deref().map(|a| short_id(a).to_owned()))
            .collect();
        if notes.started.len() < s.count {
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
        notes: &RoundReport,
    ) -> Result<(), EcsError> {
        self.rewrite_service(cluster, name, |st| apply_outcome(st, a, notes, now()))
            .await
    }

    /// Applies `change` to the stored service and writes it back when it changed,
    /// retrying on races with the API; a service that is gone is left alone.
    pub(super) async fn rewrite_service(
        &self,
        cluster: &str,
        name: &str,
        change: impl Fn(&mut StoredService),
    ) -> Result<(), EcsError> {
        let key = service_key(cluster, name);
        self.objects
            .retry(&key, || async {
                let Some((mut st, rev)) = self.load_service(cluster, name).await? else {
                    return Ok(Step::Done(()));
                };
                let before = encode(&st)?;
                change(&mut st);
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
