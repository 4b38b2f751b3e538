//! ECS capacity providers over Auto Scaling: ECS reads groups (and sets their desired
//! capacity) through [`ecs::capacity_providers::AutoScalingGroups`], implemented here
//! over the region's [`autoscaling::AutoScaling`]; neither service depends on the other.

use autoscaling::{AutoScaling, Lifecycle};
use ecs::capacity_providers::{AutoScalingGroups, GroupFacts};
use ecs::capacity_scaling::{DRAINING_HOOK, DRAINING_HOOK_HEARTBEAT};

/// The region's Auto Scaling groups, as ECS sees them.
pub struct EcsGroups(pub AutoScaling);

#[async_trait::async_trait]
impl AutoScalingGroups for EcsGroups {
    async fn group(&self, arn: &str) -> Option<GroupFacts> {
        let g = match self.0.group(arn).await {
            Ok(g) => g?,
            Err(error) => {
                tracing::warn!(%error, group = arn, "Auto Scaling group not readable.");
                return None;
            }
        };
        // A name finds the group too; an ARN must be this group's own (a deleted and
        // recreated group has a new ARN).
        if arn.starts_with("arn:") && arn != g.arn {
            return None;
        }
        let instance_type = match g.instances.iter().find(|i| !i.instance_type.is_empty()) {
            Some(i) => Some(i.instance_type.clone()),
            None => self.0.group_instance_type(&g).await.ok().flatten(),
        };
        Some(GroupFacts {
            instance_type,
            instances: g
                .instances
                .iter()
                .filter(|i| matches!(i.lifecycle, Lifecycle::Pending | Lifecycle::InService))
                .map(|i| i.id.clone())
                .collect(),
            draining_hook: g.hooks.iter().any(|h| h.name == DRAINING_HOOK),
            held: g
                .instances
                .iter()
                .filter(|i| {
                    i.lifecycle == Lifecycle::TerminatingWait
                        && i.action
                            .as_ref()
                            .is_some_and(|a| a.pending.iter().any(|p| p.hook == DRAINING_HOOK))
                })
                .map(|i| i.id.clone())
                .collect(),
            name: g.name,
            arn: g.arn,
            desired: g.desired,
            min: g.min,
            max: g.max,
            new_instances_protected: g.new_instances_protected,
        })
    }

    async fn set_desired_capacity(
        &self,
        arn: &str,
        desired: i32,
        cause: &str,
    ) -> Result<(), String> {
        self.0
            .set_desired_capacity(arn, desired, cause)
            .await
            .map(|_| self.0.wake())
            .map_err(|e| e.to_string())
    }

    async fn set_draining_hook(&self, arn: &str, present: bool) -> Result<(), String> {
        let name = self.name_of(arn).await?;
        self.0
            .ensure_termination_hook(
                &name,
                DRAINING_HOOK,
                DRAINING_HOOK_HEARTBEAT,
                "CONTINUE",
                present,
            )
            .await
            .map_err(|e| e.to_string())
    }

    async fn draining_action(
        &self,
        arn: &str,
        instance_id: &str,
        complete: bool,
    ) -> Result<(), String> {
        let name = self.name_of(arn).await?;
        self.0
            .lifecycle_action_for(
                &name,
                DRAINING_HOOK,
                instance_id,
                complete.then_some("CONTINUE"),
            )
            .await
            .map_err(|e| e.to_string())
    }
}

impl EcsGroups {
    /// The name of the group `arn` (or name) names.
    async fn name_of(&self, arn: &str) -> Result<String, String> {
        match self.0.group(arn).await {
            Ok(Some(g)) => Ok(g.name),
            Ok(None) => Err(format!("Auto Scaling group {arn} not found")),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Managed draining as Auto Scaling's termination gate: a group instance's machine goes
/// only once its container instance has drained (see
/// [`ecs::Ecs::drain_for_termination`]).
pub struct EcsDraining(pub ecs::Ecs);

#[async_trait::async_trait]
impl autoscaling::TerminationGate for EcsDraining {
    async fn ready(&self, group: &autoscaling::StoredGroup, instance_id: &str) -> bool {
        // With ECS's hook on the group, draining happened in Terminating:Wait (the hook
        // was completed, or timed out): the machine goes, and whatever still runs on
        // it stops with it (see `terminated`).
        if group.hooks.iter().any(|h| h.name == DRAINING_HOOK) {
            return true;
        }
        match self.0.drain_for_termination(&group.arn, instance_id).await {
            Ok(ready) => ready,
            Err(error) => {
                tracing::warn!(%error, instance = instance_id, "Managed draining could not check the instance; it stays.");
                false
            }
        }
    }

    async fn terminated(&self, _group: &autoscaling::StoredGroup, instance_id: &str) {
        match self.0.instance_terminated(instance_id).await {
            Ok(0) => {}
            Ok(stopped) => {
                tracing::info!(
                    instance = instance_id,
                    stopped,
                    "Tasks of a terminated instance stopped."
                );
            }
            Err(error) => {
                tracing::warn!(%error, instance = instance_id, "The tasks of a terminated instance could not be stopped.");
            }
        }
    }
}

/// The namespace of `CapacityProviderReservation`.
const MANAGED_SCALING_NAMESPACE: &str = "AWS/ECS/ManagedScaling";

/// Managed scaling, once a minute of scaled time (`--time-scale`): for every cluster's
/// provider with managed scaling on, publishes `CapacityProviderReservation` and moves
/// its group's desired capacity toward the target (scale-out waits for the instance
/// warm-up of the last one); with managed termination protection, busy instances are
/// protected from scale in and idle ones released.
pub async fn run_managed_scaling(
    ecs: ecs::Ecs,
    groups: AutoScaling,
    metrics: cloudwatch::CloudWatch,
    time_scale: f64,
    stop: telemetry::CancellationToken,
) {
    use std::collections::HashMap;
    let scale = if time_scale > 0.0 { time_scale } else { 1.0 };
    let period = std::time::Duration::from_secs_f64((60.0 / scale).max(0.5));
    let mut scaled_out: HashMap<String, tokio::time::Instant> = HashMap::new();
    let mut low_rounds: HashMap<String, u32> = HashMap::new();
    // ECS's wait for capacity, in scaled time.
    let provisioning_timeout = ecs::PROVISIONING_TIMEOUT.div_f64(scale);
    loop {
        if let Err(error) = ecs.managed_draining_round().await {
            tracing::warn!(%error, "Managed draining round failed.");
        }
        if let Err(error) = ecs.expire_provisioning(provisioning_timeout).await {
            tracing::warn!(%error, "Tasks waiting too long for capacity could not be stopped.");
        }
        match ecs.managed_scaling_inputs().await {
            Ok(inputs) => {
                for input in inputs {
                    apply_managed_scaling(
                        &groups,
                        &metrics,
                        &input,
                        scale,
                        &mut scaled_out,
                        &mut low_rounds,
                    )
                    .await;
                }
            }
            Err(error) => tracing::warn!(%error, "Managed scaling could not read the providers."),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(period) => {}
        }
    }
}

async fn apply_managed_scaling(
    groups: &AutoScaling,
    metrics: &cloudwatch::CloudWatch,
    input: &ecs::capacity_scaling::ScalingInput,
    scale: f64,
    scaled_out: &mut std::collections::HashMap<String, tokio::time::Instant>,
    low_rounds: &mut std::collections::HashMap<String, u32>,
) {
    use cloudwatch::{Dimension, Sample, SeriesKey, Sketch, StatisticSet};
    let (m, n) = (input.compute_m(), input.group.instances.len());
    let reservation = ecs::capacity_scaling::compute_reservation(m, n);
    let mut sketch = Sketch::default();
    sketch.add(reservation, 1.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let sample = Sample {
        key: SeriesKey::new(
            MANAGED_SCALING_NAMESPACE,
            "CapacityProviderReservation".to_owned(),
            vec![
                Dimension {
                    name: "CapacityProviderName".into(),
                    value: input.provider.clone(),
                },
                Dimension {
                    name: "ClusterName".into(),
                    value: input.cluster.clone(),
                },
            ],
        ),
        unit: "Percent".into(),
        timestamp: now,
        set: StatisticSet::of(reservation, 1.0),
        sketch,
        high_resolution: scale > 1.0,
    };
    crate::usage_wiring::put_in_background(metrics, vec![sample], MANAGED_SCALING_NAMESPACE);
    if input.protection {
        let busy: Vec<&str> = input.busy.iter().map(String::as_str).collect();
        let idle: Vec<&str> = input.idle.iter().map(String::as_str).collect();
        for (ids, protect) in [(busy, true), (idle, false)] {
            if ids.is_empty() {
                continue;
            }
            if let Err(error) = groups
                .set_instance_protection(&input.group.name, &ids, protect)
                .await
            {
                tracing::warn!(%error, group = %input.group.name, "Managed termination protection not applied.");
            }
        }
    }
    let desired = ecs::capacity_scaling::plan_desired(m, n, &input.scaling, &input.group);
    let key = format!("{}/{}", input.cluster, input.provider);
    // Scale-in waits for the target tracking policy's low alarm: 15 evaluations in a
    // row below target (AWS's AlarmLow, 15 of 15 one-minute datapoints), so a task
    // being placed right now does not see its instance released under it.
    let low = low_rounds.entry(key.clone()).or_default();
    if desired < input.group.desired {
        *low += 1;
        if *low < ecs::capacity_scaling::SCALE_IN_EVALUATIONS {
            return;
        }
    } else {
        *low = 0;
    }
    if desired == input.group.desired {
        return;
    }
    if desired > input.group.desired {
        let warmup = f64::from(input.scaling.instance_warmup_period.unwrap_or(300)) / scale;
        if scaled_out
            .get(&key)
            .is_some_and(|t| t.elapsed().as_secs_f64() < warmup)
        {
            return;
        }
        scaled_out.insert(key, tokio::time::Instant::now());
    }
    let cause = format!(
        "a target tracking policy of capacity provider {} (CapacityProviderReservation {reservation:.0}, target {})",
        input.provider,
        input.scaling.target_capacity.unwrap_or(100)
    );
    match groups
        .set_desired_capacity(&input.group.name, desired, &cause)
        .await
    {
        Ok(_) => {
            groups.wake();
            tracing::info!(group = %input.group.name, from = input.group.desired, to = desired, reservation, "Managed scaling moved the group.");
        }
        Err(error) => {
            tracing::warn!(%error, group = %input.group.name, "Managed scaling could not move the group.")
        }
    }
}
