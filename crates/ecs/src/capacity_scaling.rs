//! Managed scaling and safe scale-in of Auto Scaling group capacity providers, the ECS
//! side: what each provider's group holds in the cluster (busy and idle instances), the
//! `CapacityProviderReservation` arithmetic and the target-tracking step, and managed
//! draining (an instance leaving its group is set DRAINING and deregistered only once
//! its tasks are gone). The binary's loop feeds these to Auto Scaling and CloudWatch.
//!
//! Tasks waiting in PROVISIONING for a provider count in its M: the instances of the
//! group's instance type they need (first-fit over their reservations), beyond those
//! already launching.

use crate::capacity_providers::{stored, GroupFacts};
use crate::error::EcsError;
use crate::objects::{instance_prefix, StoredInstance};
use crate::{Caller, Ecs};
use model::ecs::shapes::{
    Cluster, ContainerInstanceStatus, DeregisterContainerInstanceRequest, ManagedDraining,
    ManagedScaling, ManagedScalingStatus, ManagedTerminationProtection, TaskStopCode,
    UpdateContainerInstancesStateRequest,
};

/// One provider of one cluster, as managed scaling sees it.
#[derive(Clone, Debug)]
pub struct ScalingInput {
    /// The cluster's name.
    pub cluster: String,
    /// The provider's name.
    pub provider: String,
    /// Its group.
    pub group: GroupFacts,
    /// Its managed scaling (defaults filled in).
    pub scaling: ManagedScaling,
    /// Whether managed termination protection is on.
    pub protection: bool,
    /// Group instances registered in the cluster that run or start tasks.
    pub busy: Vec<String>,
    /// Group instances registered in the cluster that run nothing.
    pub idle: Vec<String>,
    /// Tasks waiting in PROVISIONING for this provider.
    pub waiting: Vec<crate::WaitingTask>,
}

impl ScalingInput {
    /// M of `CapacityProviderReservation`: the instances the provider's tasks need. With
    /// no task waiting, the instances that run (or start) tasks; with tasks waiting, every
    /// instance of the group plus the new ones the waiting tasks need beyond those
    /// already launching (ECS's definition: M > N while tasks wait).
    pub fn compute_m(&self) -> usize {
        if self.waiting.is_empty() {
            return self.busy.len();
        }
        let n = self.group.instances.len();
        let registered = self.busy.len() + self.idle.len();
        let launching = n.saturating_sub(registered);
        let capacity = self
            .group
            .instance_type
            .as_deref()
            .and_then(crate::instance_types::compute_instance_resources)
            .map(|(cpu, mem)| (i64::from(cpu), i64::from(mem)));
        let needed = compute_instances_needed(&self.waiting, capacity);
        n + needed.saturating_sub(launching)
    }
}

/// How many new instances of `capacity` (CPU units, MiB) the waiting tasks need, first
/// fit in decreasing order of memory; one each when the instance type is unknown, and
/// one for a task larger than an instance (ECS scales out by at least one for it).
pub fn compute_instances_needed(
    waiting: &[crate::WaitingTask],
    capacity: Option<(i64, i64)>,
) -> usize {
    let Some((cpu, mem)) = capacity else {
        return waiting.len();
    };
    let mut sizes: Vec<(i64, i64)> = waiting.iter().map(|w| (w.memory, w.cpu)).collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    let mut bins: Vec<(i64, i64)> = Vec::new();
    for (m, c) in sizes {
        match bins
            .iter_mut()
            .find(|(bm, bc)| *bm + m <= mem && *bc + c <= cpu)
        {
            Some(b) => {
                b.0 += m;
                b.1 += c;
            }
            None => bins.push((m, c)),
        }
    }
    bins.len()
}

/// `CapacityProviderReservation`: M/N×100, where N is the group's instances and M the
/// instances its tasks need; an empty group with tasks needing room reads 200, an empty
/// group with nothing to run reads 100 (AWS's definitions).
pub fn compute_reservation(m: usize, n: usize) -> f64 {
    match (m, n) {
        (0, 0) => 100.0,
        (_, 0) => 200.0,
        (m, n) => m as f64 * 100.0 / n as f64,
    }
}

/// The desired capacity target tracking asks for: enough instances that M is
/// `target`% of them, moved by at least the minimum and at most the maximum step size,
/// within the group's bounds.
pub fn plan_desired(m: usize, n: usize, scaling: &ManagedScaling, group: &GroupFacts) -> i32 {
    let target = f64::from(scaling.target_capacity.unwrap_or(100).clamp(1, 100));
    let want = (m as f64 * 100.0 / target).ceil() as i64;
    let n = n as i64;
    let min_step = i64::from(scaling.minimum_scaling_step_size.unwrap_or(1));
    let max_step = i64::from(scaling.maximum_scaling_step_size.unwrap_or(10_000));
    let delta = want - n;
    let step = if delta > 0 {
        delta.clamp(min_step, max_step)
    } else if delta < 0 {
        -((-delta).clamp(min_step.min(-delta), max_step))
    } else {
        0
    };
    let desired = (n + step).clamp(i64::from(group.min), i64::from(group.max));
    i32::try_from(desired).unwrap_or(group.max)
}

impl Ecs {
    /// Every (cluster, provider) with managed scaling on, with what its group holds.
    pub async fn managed_scaling_inputs(&self) -> Result<Vec<ScalingInput>, EcsError> {
        let Some(groups) = self.groups.clone() else {
            return Ok(Vec::new());
        };
        let providers = stored(self).await?;
        let clusters = self.objects.list::<Cluster>("ecs/cluster/").await?;
        let mut out = Vec::new();
        for (_, cluster, _) in clusters {
            let Some(name) = cluster.cluster_name.clone() else {
                continue;
            };
            let associated = cluster.capacity_providers.clone().unwrap_or_default();
            let instances = self
                .objects
                .list::<StoredInstance>(&instance_prefix(&name))
                .await?;
            let waiting = self.waiting_tasks(&name).await?;
            for p in providers
                .iter()
                .filter(|p| p.name.as_ref().is_some_and(|n| associated.contains(n)))
            {
                let Some(asg) = &p.auto_scaling_group_provider else {
                    continue;
                };
                let Some(scaling) = asg.managed_scaling.clone() else {
                    continue;
                };
                if scaling.status != Some(ManagedScalingStatus::Enabled) {
                    continue;
                }
                let Some(group) = groups.group(&asg.auto_scaling_group_arn).await else {
                    continue;
                };
                let (mut busy, mut idle) = (Vec::new(), Vec::new());
                for (_, si, _) in &instances {
                    let Some(ec2) = si.instance.ec2_instance_id.clone() else {
                        continue;
                    };
                    if !group.instances.contains(&ec2) {
                        continue;
                    }
                    if si.usage.running + si.usage.pending > 0 {
                        busy.push(ec2);
                    } else {
                        idle.push(ec2);
                    }
                }
                out.push(ScalingInput {
                    waiting: waiting
                        .iter()
                        .filter(|w| w.provider.is_some() && w.provider == p.name)
                        .cloned()
                        .collect(),
                    cluster: name.clone(),
                    provider: p.name.clone().unwrap_or_default(),
                    protection: asg.managed_termination_protection
                        == Some(ManagedTerminationProtection::Enabled),
                    group,
                    scaling,
                    busy,
                    idle,
                });
            }
        }
        Ok(out)
    }

    /// The container instances (with their cluster's name), in any cluster, that run on
    /// the machine `ec2_instance_id`.
    async fn on_host(
        &self,
        ec2_instance_id: &str,
    ) -> Result<Vec<(String, StoredInstance)>, EcsError> {
        let mut out = Vec::new();
        for (_, cluster, _) in self.objects.list::<Cluster>("ecs/cluster/").await? {
            let Some(name) = cluster.cluster_name else {
                continue;
            };
            for (_, si, _) in self
                .objects
                .list::<StoredInstance>(&instance_prefix(&name))
                .await?
            {
                if si.instance.ec2_instance_id.as_deref() == Some(ec2_instance_id) {
                    out.push((name.clone(), si));
                }
            }
        }
        Ok(out)
    }

    /// Managed draining for the group instance `ec2_instance_id` about to be terminated:
    /// its container instance (in any cluster) is set DRAINING so services move their
    /// tasks, and deregistered once it runs none. True when the machine may go (no
    /// container instance, or a drained one, or its provider turns draining off).
    pub async fn drain_for_termination(
        &self,
        group_arn: &str,
        ec2_instance_id: &str,
    ) -> Result<bool, EcsError> {
        let draining = stored(self).await?.iter().any(|p| {
            p.auto_scaling_group_provider.as_ref().is_some_and(|a| {
                a.auto_scaling_group_arn == group_arn
                    && a.managed_draining != Some(ManagedDraining::Disabled)
            })
        });
        let root = Caller::root(&self.scope.account_id);
        for (name, si) in self.on_host(ec2_instance_id).await? {
            let Some(arn) = si.instance.container_instance_arn.clone() else {
                continue;
            };
            let tasks = si.usage.running + si.usage.pending;
            if draining && tasks > 0 {
                if si.instance.status != Some(model::ecs::status::ContainerInstanceStatus::Draining)
                {
                    tracing::info!(cluster = %name, instance = ec2_instance_id, "Managed draining: the instance drains before it is terminated.");
                    crate::container_instances::update_container_instances_state(
                        self,
                        UpdateContainerInstancesStateRequest {
                            cluster: Some(name.clone()),
                            container_instances: vec![arn],
                            status: ContainerInstanceStatus::Draining,
                        },
                        &root,
                    )
                    .await?;
                }
                return Ok(false);
            }
            crate::container_instances::deregister_container_instance(
                self,
                DeregisterContainerInstanceRequest {
                    cluster: Some(name.clone()),
                    container_instance: arn,
                    force: Some(true),
                },
                &root,
            )
            .await?;
        }
        Ok(true)
    }
}

/// How many evaluations in a row must ask for fewer instances before managed scaling
/// scales in (the low alarm of ECS's target tracking policy: 15 of 15 datapoints).
pub const SCALE_IN_EVALUATIONS: u32 = 15;

/// The termination lifecycle hook ECS owns on the group of every provider with managed
/// draining on (AWS's name): it holds an instance leaving the group in
/// `Terminating:Wait` while ECS drains it.
pub const DRAINING_HOOK: &str = "ecs-managed-draining-termination-hook";
/// Its heartbeat timeout, seconds; ECS heartbeats while tasks remain, so an instance
/// waits at most the hook's global timeout (48 hours) for standalone tasks.
pub const DRAINING_HOOK_HEARTBEAT: i32 = 3600;

impl Ecs {
    /// One round of managed draining over every provider with it on: its group has
    /// [`DRAINING_HOOK`] (put back if removed); each instance the hook holds in
    /// `Terminating:Wait` is set DRAINING (services move their tasks), heartbeated while
    /// tasks remain on it, and once none remains deregistered, its lifecycle action
    /// completed with CONTINUE (so the group terminates it). Returns the instances
    /// released.
    pub async fn managed_draining_round(&self) -> Result<usize, EcsError> {
        let Some(groups) = self.groups.clone() else {
            return Ok(0);
        };
        let mut released = 0;
        for p in stored(self).await? {
            let Some(asg) = &p.auto_scaling_group_provider else {
                continue;
            };
            if asg.managed_draining == Some(ManagedDraining::Disabled) {
                continue;
            }
            let Some(group) = groups.group(&asg.auto_scaling_group_arn).await else {
                continue;
            };
            if !group.draining_hook {
                crate::capacity_providers::sync_draining_hook(self, asg, true).await;
                continue;
            }
            for instance in &group.held {
                let drained = self.drain_for_termination(&group.arn, instance).await?;
                match groups.draining_action(&group.arn, instance, drained).await {
                    Ok(()) if drained => {
                        released += 1;
                        tracing::info!(group = %group.name, instance = %instance, "Managed draining: the instance drained; its termination proceeds.");
                    }
                    Ok(()) => {}
                    Err(error) => {
                        tracing::warn!(%error, group = %group.name, instance = %instance, "Managed draining could not act on the lifecycle action.");
                    }
                }
            }
        }
        Ok(released)
    }

    /// The machine of the group instance `ec2_instance_id` is gone (scale-in after its
    /// drain, or a forced group delete that did not wait): as ECS does when a container
    /// instance's host terminates, its container instance is deregistered and every task
    /// still on it stops, with the reason ECS gives. Returns how many tasks stopped.
    pub async fn instance_terminated(&self, ec2_instance_id: &str) -> Result<usize, EcsError> {
        let root = Caller::root(&self.scope.account_id);
        let reason = format!("Host EC2 (instance {ec2_instance_id}) stopped/terminated.");
        let mut stopped = 0;
        for (name, si) in self.on_host(ec2_instance_id).await? {
            if si.fargate {
                continue;
            }
            let Some(arn) = si.instance.container_instance_arn.clone() else {
                continue;
            };
            if si.instance.status != Some(model::ecs::status::ContainerInstanceStatus::Inactive) {
                crate::container_instances::deregister_container_instance(
                    self,
                    DeregisterContainerInstanceRequest {
                        cluster: Some(name.clone()),
                        container_instance: arn.clone(),
                        force: Some(true),
                    },
                    &root,
                )
                .await?;
            }
            let id = arn.rsplit('/').next().unwrap_or_default();
            let on_it = self
                .objects
                .store()
                .range(
                    &crate::objects::instance_task_prefix(&name, id),
                    None,
                    usize::MAX,
                )
                .await?;
            for entry in on_it.items {
                let Some(task) = entry.key.rsplit('/').next() else {
                    continue;
                };
                // Its instance is INACTIVE now: the task is STOPPED at once.
                let (t, _) = self
                    .request_stop(&name, task, TaskStopCode::TerminationNotice, &reason)
                    .await?;
                if t.stopped_at.is_some() {
                    stopped += 1;
                }
            }
        }
        if stopped > 0 {
            // Their services start replacements.
            self.controller.wake.notify_one();
        }
        Ok(stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(min: i32, max: i32) -> GroupFacts {
        GroupFacts {
            name: "g".into(),
            arn: "arn".into(),
            desired: 0,
            min,
            max,
            new_instances_protected: true,
            instances: Vec::new(),
            instance_type: Some("t3.medium".into()),
            draining_hook: false,
            held: Vec::new(),
        }
    }

    fn scaling(target: i32, min_step: i32, max_step: i32) -> ManagedScaling {
        ManagedScaling {
            status: Some(ManagedScalingStatus::Enabled),
            target_capacity: Some(target),
            minimum_scaling_step_size: Some(min_step),
            maximum_scaling_step_size: Some(max_step),
            instance_warmup_period: Some(300),
        }
    }

    fn waiting(cpu: i64, memory: i64) -> crate::WaitingTask {
        crate::WaitingTask {
            provider: Some("cp".into()),
            cpu,
            memory,
        }
    }

    #[test]
    fn waiting_tasks_need_instances_of_the_group_type() {
        let cap = Some((2048, 4096));
        // Two tasks of 3,000 MiB: one t3.medium each; four of 1,000 MiB share one.
        assert_eq!(
            compute_instances_needed(&[waiting(0, 3000), waiting(0, 3000)], cap),
            2
        );
        let many = |n, cpu, mem| std::iter::repeat_n(waiting(cpu, mem), n).collect::<Vec<_>>();
        assert_eq!(compute_instances_needed(&many(4, 0, 1000), cap), 1);
        // CPU binds too; unknown type: one instance per task.
        assert_eq!(compute_instances_needed(&many(3, 1024, 10), cap), 2);
        assert_eq!(compute_instances_needed(&many(3, 1, 1), None), 3);
    }

    #[test]
    fn m_counts_waiting_tasks_beyond_the_instances_already_launching() {
        let mut input = ScalingInput {
            cluster: "c".into(),
            provider: "cp".into(),
            group: group(0, 3),
            scaling: scaling(100, 1, 10_000),
            protection: false,
            busy: Vec::new(),
            idle: Vec::new(),
            waiting: vec![waiting(0, 3000), waiting(0, 3000)],
        };
        // An empty group with two tasks needing an instance each: M 2, N 0 (200%).
        assert_eq!(input.compute_m(), 2);
        assert_eq!(compute_reservation(input.compute_m(), 0), 200.0);
        // Both instances launching, not registered yet: M stays at N (no second step).
        input.group.instances = vec!["i-1".into(), "i-2".into()];
        assert_eq!(input.compute_m(), 2);
        // Placed: nothing waits, both busy.
        input.waiting.clear();
        input.busy = vec!["i-1".into(), "i-2".into()];
        assert_eq!(input.compute_m(), 2);
    }

    #[test]
    fn reservation_follows_aws_definitions_for_empty_groups() {
        assert_eq!(compute_reservation(0, 0), 100.0);
        assert_eq!(compute_reservation(3, 0), 200.0);
        assert_eq!(compute_reservation(1, 2), 50.0);
        assert_eq!(compute_reservation(2, 2), 100.0);
    }

    #[test]
    fn target_tracking_sizes_the_group_to_the_target_within_steps_and_bounds() {
        // Two busy instances at target 100 need two; at target 50, four.
        assert_eq!(
            plan_desired(2, 3, &scaling(100, 1, 10_000), &group(0, 10)),
            2
        );
        assert_eq!(
            plan_desired(2, 2, &scaling(50, 1, 10_000), &group(0, 10)),
            4
        );
        // Steps: at most 1 per move, at least 3 per move.
        assert_eq!(plan_desired(5, 0, &scaling(100, 1, 1), &group(0, 10)), 1);
        assert_eq!(plan_desired(1, 0, &scaling(100, 3, 10), &group(0, 10)), 3);
        // Bounds win.
        assert_eq!(plan_desired(9, 0, &scaling(100, 1, 100), &group(0, 3)), 3);
        assert_eq!(plan_desired(0, 2, &scaling(100, 1, 100), &group(1, 3)), 1);
    }
}
