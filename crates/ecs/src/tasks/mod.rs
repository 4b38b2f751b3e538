//! Tasks: launching them (RunTask, StartTask) through placement, stopping them, the
//! state the agents report, reading them back, and their scale-in protection.
//!
//! A task's resources are booked on its instance (`StoredInstance::usage`) in the same
//! transaction that creates it, and given back in the same transaction that records it
//! STOPPED. Statuses only move forward; repeated or late reports are acknowledged and
//! ignored.

pub(crate) mod awsvpc;
pub(crate) mod counts;
pub(crate) mod enis;
pub(crate) mod fargate;
pub(crate) mod group_capacity;
pub(crate) mod health;
pub(crate) mod launch;
pub(crate) mod protection;
pub mod provisioning;
pub(crate) mod query;
pub(crate) mod report;
pub(crate) mod roles;
#[cfg(test)]
mod roles_tests;
pub mod usage;

use crate::error::EcsError;
use crate::objects::{
    encode, instance_key, instance_task_key, task_key, Reservation, StoredInstance, StoredTask,
};
use crate::Ecs;
use model::ecs::arn::EcsResource;
use store::Txn;

impl Ecs {
    /// The task id a reference (ARN or id) names within `cluster`.
    pub(crate) fn task_id(&self, cluster: &str, reference: &str) -> Option<String> {
        if reference.starts_with("arn:") {
            match self.scope.parse(reference) {
                Ok(EcsResource::Task { cluster: c, id }) if c == cluster => Some(id),
                _ => None,
            }
        } else if !reference.is_empty() && !reference.contains('/') {
            Some(reference.to_owned())
        } else {
            None
        }
    }

    /// A task reference as an ARN (as given when it is one).
    pub(crate) fn task_arn_of(&self, cluster: &str, reference: &str) -> String {
        if reference.starts_with("arn:") {
            reference.to_owned()
        } else {
            self.scope.task(cluster, reference)
        }
    }

    /// The stored task a reference (ARN or id) names within `cluster`, if any.
    pub(crate) async fn find_task(
        &self,
        cluster: &str,
        reference: &str,
    ) -> Result<Option<StoredTask>, EcsError> {
        let Some(id) = self.task_id(cluster, reference) else {
            return Ok(None);
        };
        let found = self
            .objects
            .get::<StoredTask>(&task_key(cluster, &id))
            .await?;
        Ok(found.map(|(st, _)| st))
    }
}

/// Adds (`sign` = 1) or removes (`sign` = -1) a task's booking on an instance.
pub(crate) fn book(
    si: &mut StoredInstance,
    r: &Reservation,
    group: &str,
    sign: i64,
    was_running: bool,
) {
    let u = &mut si.usage;
    u.cpu = (u.cpu + sign * r.cpu).max(0);
    u.memory = (u.memory + sign * r.memory).max(0);
    if sign > 0 {
        u.tcp_ports.extend(r.tcp_ports.iter().copied());
        u.udp_ports.extend(r.udp_ports.iter().copied());
        u.gpus.extend(r.gpus.iter().cloned());
        *u.groups.entry(group.to_owned()).or_default() += 1;
        u.pending += 1;
    } else {
        for p in &r.tcp_ports {
            u.tcp_ports.remove(p);
        }
        for p in &r.udp_ports {
            u.udp_ports.remove(p);
        }
        for g in &r.gpus {
            u.gpus.remove(g);
        }
        if let Some(n) = u.groups.get_mut(group) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                u.groups.remove(group);
            }
        }
        if was_running {
            u.running = u.running.saturating_sub(1);
        } else {
            u.pending = u.pending.saturating_sub(1);
        }
    }
}

/// Adds to `txn` the release of a stopping task's booking: instance usage given back and
/// the instance's index entry removed. The caller has loaded the instance at `rev`.
pub(crate) fn release_into(
    txn: Txn,
    cluster: &str,
    task: &StoredTask,
    instance: Option<(StoredInstance, u64)>,
    was_running: bool,
) -> Result<Txn, EcsError> {
    let task_id = task
        .task
        .task_arn
        .as_deref()
        .and_then(|a| a.rsplit('/').next())
        .unwrap_or_default();
    let mut txn = txn.delete(instance_task_key(cluster, &task.instance_id, task_id));
    if let Some(eni) = &task.eni {
        txn = txn.delete(awsvpc::address_key(&eni.address));
    }
    if let Some((mut si, rev)) = instance {
        let key = instance_key(cluster, &task.instance_id);
        book(
            &mut si,
            &task.reservation,
            task.task.group.as_deref().unwrap_or(""),
            -1,
            was_running,
        );
        txn = txn.when(key.clone(), rev).put(key, encode(&si)?);
    }
    Ok(txn)
}
