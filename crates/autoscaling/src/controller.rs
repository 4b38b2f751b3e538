//! The group controller: a level-triggered loop that makes every group's machines follow
//! its records. Each round, per group: observe every instance's machine through the
//! [`InstanceProvider`]; start Pending machines that are not there; finish terminations
//! the [`TerminationGate`] allows; then commit, in one compare-and-swap, the lifecycle
//! transitions and the launches or terminations that bring the live count to the desired
//! capacity, each with its scaling activity. A restart loses nothing: the next round
//! observes again.

use crate::groups::new_activity;
use crate::provider::{InstanceSpec, MachineState};
use crate::state::{
    group_key, GroupInstance, Lifecycle, LifecycleAction, LifecycleHook, PendingHook, StoredGroup,
};

/// The lifecycle transition of termination hooks.
pub(crate) const TERMINATING: &str = "autoscaling:EC2_INSTANCE_TERMINATING";
use crate::{AutoScaling, AutoScalingError};
use std::collections::{BTreeMap, HashMap, HashSet};
use store::Txn;
use telemetry::CancellationToken;

/// Decides when a Terminating instance's machine may go (ECS managed draining and
/// termination protection plug in here), and hears when it went.
#[async_trait::async_trait]
pub trait TerminationGate: Send + Sync + 'static {
    /// Whether the machine of `instance_id` in `group` may be terminated now (e.g. its
    /// container instance has drained). Called every round until it says yes; not asked
    /// while the group is being force-deleted (AWS terminates without waiting then).
    async fn ready(&self, group: &StoredGroup, instance_id: &str) -> bool;
    /// The machine of `instance_id` is gone (whatever it still ran went with it).
    async fn terminated(&self, group: &StoredGroup, instance_id: &str);
}

/// No gate: machines go at once.
#[derive(Debug, Default)]
pub struct NoGate;

#[async_trait::async_trait]
impl TerminationGate for NoGate {
    async fn ready(&self, _group: &StoredGroup, _instance_id: &str) -> bool {
        true
    }
    async fn terminated(&self, _group: &StoredGroup, _instance_id: &str) {}
}

/// What a round saw of the machines, by instance id.
#[derive(Debug, Default)]
pub struct Observed {
    /// Each instance's machine.
    pub states: HashMap<String, MachineState>,
    /// Terminating instances whose machine is gone now.
    pub terminated: HashSet<String>,
    /// Pending instances whose machine could not start, and why.
    pub start_failed: HashMap<String, String>,
}

/// The pure step of a round: the record transitions and the new launches and
/// terminations for `g`, given what was observed. `new_id` makes instance ids and
/// activity ids. Returns the ids of instances launched by this step.
pub fn plan_group(
    g: &mut StoredGroup,
    seen: &Observed,
    now_ms: i64,
    new_id: &mut dyn FnMut(&str) -> String,
) -> Vec<String> {
    let at = wire::xml::iso8601_secs(now_ms / 1000);
    let mut finished: Vec<(String, &'static str, Option<String>)> = Vec::new();
    let deleting = g.deleting;
    // A forced delete drops outstanding lifecycle actions, as AWS does.
    let hooks: Vec<LifecycleHook> = if g.deleting {
        Vec::new()
    } else {
        g.hooks
            .iter()
            .filter(|h| h.transition == TERMINATING)
            .cloned()
            .collect()
    };
    for i in &mut g.instances {
        let state = seen.states.get(&i.id).copied();
        match i.lifecycle {
            Lifecycle::Pending => {
                if let Some(why) = seen.start_failed.get(&i.id) {
                    i.lifecycle = Lifecycle::Terminated;
                    if let Some(a) = i.activity.take() {
                        finished.push((a, "Failed", Some(why.clone())));
                    }
                } else if state == Some(MachineState::Running) {
                    i.lifecycle = Lifecycle::InService;
                    if let Some(a) = i.activity.take() {
                        finished.push((a, "Successful", None));
                    }
                }
            }
            Lifecycle::InService if state == Some(MachineState::Gone) => {
                // As an EC2 health check: a machine that is gone is replaced.
                i.healthy = false;
                i.lifecycle = Lifecycle::Terminating;
                let id = new_id("activity");
                g.activities.insert(0, new_activity(
                    &id,
                    format!("Terminating EC2 instance: {}", i.id),
                    format!("At {at} an instance was taken out of service in response to an EC2 health check indicating it has been terminated or stopped."),
                    now_ms,
                    &i.zone,
                ));
                i.activity = Some(id);
            }
            Lifecycle::Terminating | Lifecycle::TerminatingProceed
                if seen.terminated.contains(&i.id) =>
            {
                i.lifecycle = Lifecycle::Terminated;
                if let Some(a) = i.activity.take() {
                    finished.push((a, "Successful", None));
                }
            }
            Lifecycle::Terminating if !hooks.is_empty() => {
                // The termination hooks hold it until each completes or times out.
                i.lifecycle = Lifecycle::TerminatingWait;
                i.action = Some(LifecycleAction {
                    token: new_id("token"),
                    pending: hooks
                        .iter()
                        .map(|h| PendingHook {
                            hook: h.name.clone(),
                            deadline_ms: now_ms + i64::from(h.heartbeat_timeout) * 1000,
                            global_deadline_ms: now_ms + i64::from(h.global_timeout()) * 1000,
                        })
                        .collect(),
                });
            }
            Lifecycle::TerminatingWait => {
                let action = i.action.get_or_insert_with(|| LifecycleAction {
                    token: String::new(),
                    pending: Vec::new(),
                });
                // A hook that timed out takes its default result: CONTINUE releases it,
                // ABANDON releases it from every hook (both terminate the instance).
                let mut abandon = deleting;
                action.pending.retain(|p| {
                    let live = now_ms < p.deadline_ms.min(p.global_deadline_ms)
                        && hooks.iter().any(|h| h.name == p.hook);
                    if !live {
                        abandon |= hooks
                            .iter()
                            .any(|h| h.name == p.hook && h.default_result == "ABANDON");
                    }
                    live
                });
                if abandon || action.pending.is_empty() {
                    i.lifecycle = Lifecycle::TerminatingProceed;
                    i.action = None;
                }
            }
            _ => {}
        }
    }
    for (id, status, message) in finished {
        g.finish(&id, status, message, now_ms);
    }
    g.instances.retain(|i| i.lifecycle != Lifecycle::Terminated);
    let live = i32::try_from(g.live().count()).unwrap_or(i32::MAX);
    let cause = g.pending_cause.take().unwrap_or_else(|| {
        format!("At {at} an instance was started in response to a difference between desired and actual capacity")
    });
    let mut launched = Vec::new();
    if live < g.desired && !g.deleting {
        for _ in live..g.desired {
            let zone = least_used_zone(g);
            let id = new_id("instance");
            let activity = new_id("activity");
            let instance_type = g.instances.first().map(|i| i.instance_type.clone());
            g.record(new_activity(
                &activity,
                format!("Launching a new EC2 instance: {id}"),
                format!("{cause}.  At {at} an instance was started in response to a difference between desired and actual capacity, increasing the capacity from {live} to {}.", g.desired),
                now_ms,
                &zone,
            ));
            g.instances.push(GroupInstance {
                id: id.clone(),
                // Filled in from the launch template by the round (see `AutoScaling::round`).
                instance_type: instance_type.unwrap_or_default(),
                zone,
                lifecycle: Lifecycle::Pending,
                healthy: true,
                protected: g.new_instances_protected,
                template: Some(g.template.clone()),
                launched_ms: now_ms,
                activity: Some(activity),
                action: None,
            });
            launched.push(id);
        }
    } else if live > g.desired {
        let mut excess = live - g.desired;
        while excess > 0 {
            let Some(victim) = pick_victim(g) else {
                break;
            };
            let activity = new_id("activity");
            let i = &mut g.instances[victim];
            i.lifecycle = Lifecycle::Terminating;
            i.activity = Some(activity.clone());
            let (iid, zone) = (i.id.clone(), i.zone.clone());
            g.record(new_activity(
                &activity,
                format!("Terminating EC2 instance: {iid}"),
                format!("{cause}.  At {at} an instance was taken out of service in response to a difference between desired and actual capacity, shrinking the capacity from {live} to {}.", g.desired),
                now_ms,
                &zone,
            ));
            excess -= 1;
        }
    }
    launched
}

/// The group's zone with the fewest live instances (the first such, in the group's order).
fn least_used_zone(g: &StoredGroup) -> String {
    let mut counts: BTreeMap<&str, usize> = g.zones.iter().map(|z| (z.as_str(), 0)).collect();
    for i in g.live() {
        if let Some(c) = counts.get_mut(i.zone.as_str()) {
            *c += 1;
        }
    }
    g.zones
        .iter()
        .min_by_key(|z| counts.get(z.as_str()).copied().unwrap_or(0))
        .cloned()
        .unwrap_or_default()
}

/// The instance the default termination policy takes: unprotected and live, in the zone
/// with the most live instances, the oldest there (AWS then prefers the oldest launch
/// template, which every instance here shares).
fn pick_victim(g: &StoredGroup) -> Option<usize> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for i in g.live() {
        *counts.entry(i.zone.as_str()).or_default() += 1;
    }
    g.instances
        .iter()
        .enumerate()
        .filter(|(_, i)| {
            !i.protected && matches!(i.lifecycle, Lifecycle::Pending | Lifecycle::InService)
        })
        .max_by_key(|(_, i)| {
            (
                counts.get(i.zone.as_str()).copied().unwrap_or(0),
                -i.launched_ms,
            )
        })
        .map(|(n, _)| n)
}

impl AutoScaling {
    /// Runs the group controller until `stop`: a round after every change through the
    /// API, and at least every [`AutoScaling::with_interval`].
    pub async fn run_groups(self, stop: CancellationToken) {
        loop {
            if let Err(error) = self.round().await {
                tracing::warn!(%error, "Auto Scaling round failed; retrying.");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.wakeups.notified() => {}
                () = tokio::time::sleep(self.interval) => {}
            }
        }
    }

    /// One round over every group.
    pub async fn round(&self) -> Result<(), AutoScalingError> {
        for group in self.groups().await? {
            if let Err(error) = self.reconcile(&group).await {
                tracing::warn!(group = %group.name, %error, "Auto Scaling group not reconciled.");
            }
        }
        Ok(())
    }

    async fn spec(
        &self,
        g: &StoredGroup,
        i: &GroupInstance,
    ) -> Result<InstanceSpec, AutoScalingError> {
        let template = self.find_template(Some(&g.template.id), None).await?;
        let version = template
            .as_ref()
            .and_then(|t| t.version(Some(&g.template.version)));
        let user_data = version
            .and_then(|v| v.user_data.as_deref())
            .map(|ud| {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(ud)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        Ok(InstanceSpec {
            instance_id: i.id.clone(),
            group_name: g.name.clone(),
            instance_type: if i.instance_type.is_empty() {
                version
                    .and_then(|v| v.instance_type.clone())
                    .unwrap_or_default()
            } else {
                i.instance_type.clone()
            },
            availability_zone: i.zone.clone(),
            user_data,
            security_groups: version
                .map(|v| v.security_group_ids.clone())
                .unwrap_or_default(),
            tags: g
                .tags
                .iter()
                .filter(|t| t.propagate_at_launch)
                .map(|t| (t.key.clone(), t.value.clone()))
                .collect(),
        })
    }

    async fn reconcile(&self, group: &StoredGroup) -> Result<(), AutoScalingError> {
        let mut seen = Observed::default();
        for i in &group.instances {
            let state = self.provider.state(&i.id).await;
            seen.states.insert(i.id.clone(), state);
            match i.lifecycle {
                Lifecycle::Pending if state == MachineState::Gone => {
                    let spec = self.spec(group, i).await?;
                    if let Err(e) = self.provider.start(&spec).await {
                        seen.start_failed.insert(i.id.clone(), e.to_string());
                    }
                }
                // Held by termination hooks until it is Terminating:Proceed.
                Lifecycle::Terminating
                    if group.deleting
                        || !group.hooks.iter().any(|h| h.transition == TERMINATING) =>
                {
                    // A forced delete terminates "without waiting": no drain holds it.
                    if !group.deleting && !self.gate.ready(group, &i.id).await {
                        continue;
                    }
                    match self.provider.terminate(&i.id).await {
                        Ok(()) => {
                            self.gate.terminated(group, &i.id).await;
                            seen.terminated.insert(i.id.clone());
                        }
                        Err(error) => {
                            tracing::warn!(instance = %i.id, %error, "Instance not terminated yet.")
                        }
                    }
                }
                Lifecycle::TerminatingProceed => {
                    if !group.deleting && !self.gate.ready(group, &i.id).await {
                        continue;
                    }
                    match self.provider.terminate(&i.id).await {
                        Ok(()) => {
                            self.gate.terminated(group, &i.id).await;
                            seen.terminated.insert(i.id.clone());
                        }
                        Err(error) => {
                            tracing::warn!(instance = %i.id, %error, "Instance not terminated yet.")
                        }
                    }
                }
                _ => {}
            }
        }
        let now = self.now_ms();
        let template = self.find_template(Some(&group.template.id), None).await?;
        let instance_type = template
            .as_ref()
            .and_then(|t| t.version(Some(&group.template.version)))
            .and_then(|v| v.instance_type.clone())
            .unwrap_or_default();
        let mut launched = Vec::new();
        let committed = self
            .update_group(&group.name, |g| {
                let mut new_id = |kind: &str| match kind {
                    "instance" => format!("i-{}", &uuid::Uuid::new_v4().simple().to_string()[..17]),
                    _ => uuid::Uuid::new_v4().to_string(),
                };
                launched = plan_group(g, &seen, now, &mut new_id);
                for i in g
                    .instances
                    .iter_mut()
                    .filter(|i| i.instance_type.is_empty())
                {
                    i.instance_type.clone_from(&instance_type);
                }
                Ok(())
            })
            .await?;
        for i in committed
            .instances
            .iter()
            .filter(|i| launched.contains(&i.id))
        {
            let spec = self.spec(&committed, i).await?;
            tracing::info!(group = %committed.name, instance = %i.id, instance_type = %spec.instance_type, zone = %i.zone, provider = self.provider.name(), "Launching an Auto Scaling instance.");
            if let Err(error) = self.provider.start(&spec).await {
                // The next round sees the machine gone and records the failure.
                tracing::warn!(instance = %i.id, %error, "The instance did not start.");
            }
        }
        if committed.deleting && committed.instances.is_empty() {
            let key = group_key(&committed.name);
            if let Some((_, rev)) = self.objects.get::<StoredGroup>(&key).await? {
                self.objects
                    .commit(Txn::new().when(key.clone(), rev).delete(key))
                    .await?;
            }
        }
        Ok(())
    }
}
