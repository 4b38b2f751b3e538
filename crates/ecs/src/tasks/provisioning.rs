//! Tasks waiting for capacity: with an Auto Scaling group capacity provider strategy, a
//! task that fits on no instance is not refused but recorded PROVISIONING (as ECS shows
//! it, with no container instance), counted by managed scaling, placed as soon as an
//! instance it fits on registers, and stopped with ECS's reason once ECS's timeout passes.
//!
//! Each waiting task has a record under [`PROVISIONING_PREFIX`] saying how to place it;
//! the record and the placement are one transaction with the task and the instance's
//! booking, so a task is placed at most once and a stopped task is never placed.

use super::{book, fargate};
use crate::error::EcsError;
use crate::objects::{encode, instance_task_key, task_key, StoredTask};
use crate::Ecs;
use model::ecs::shapes::{PlacementConstraint, PlacementStrategy, TaskStopCode};
use model::ecs::status::TaskStatus;
use placement::Strategy;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use store::Txn;

/// Where the waiting tasks' records live: `ecs/provisioning/<cluster>/<task id>`.
pub(crate) const PROVISIONING_PREFIX: &str = "ecs/provisioning/";
/// How long ECS lets a task wait in PROVISIONING for capacity before stopping it (at
/// a time scale of 1).
pub const PROVISIONING_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// The placement failure a task shows when no instance of the cluster could be tried.
const EMPTY: &str = "EMPTY CAPACITY PROVIDER";

/// Key of a waiting task's record.
pub(crate) fn provisioning_key(cluster: &str, task_id: &str) -> String {
    format!("{PROVISIONING_PREFIX}{cluster}/{task_id}")
}

/// How a launch whose tasks may wait places them (RunTask's or the service's
/// placement parameters, as given).
#[derive(Clone, Debug, Default)]
pub(crate) struct WaitSpec {
    /// How many tasks the launch wants.
    pub count: usize,
    /// The request's placement constraints (the definition's are read again).
    pub constraints: Vec<PlacementConstraint>,
    /// The request's placement strategies.
    pub strategies: Vec<PlacementStrategy>,
}

/// A waiting task's record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Waiting {
    /// The capacity provider the task is for.
    #[serde(default)]
    pub provider: Option<String>,
    /// What it reserves (for managed scaling's estimate of the instances it needs).
    pub cpu: i64,
    /// Memory it reserves, MiB.
    pub memory: i64,
    /// Placement constraints of the request.
    #[serde(default)]
    pub constraints: Vec<PlacementConstraint>,
    /// Placement strategies of the request.
    #[serde(default)]
    pub strategies: Vec<PlacementStrategy>,
    /// When it started waiting (epoch seconds).
    pub since: f64,
    /// Why the last placement attempt failed (AWS's failure reason).
    #[serde(default)]
    pub reason: Option<String>,
}

/// A waiting task, as managed scaling counts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitingTask {
    /// The capacity provider it waits for.
    pub provider: Option<String>,
    /// CPU units it reserves.
    pub cpu: i64,
    /// Memory it reserves, MiB.
    pub memory: i64,
}

/// Turns a freshly built task into one waiting for capacity: PROVISIONING on no
/// instance.
pub(crate) fn make_waiting(st: &mut StoredTask) {
    st.instance_id.clear();
    let t = &mut st.task;
    t.container_instance_arn = None;
    t.availability_zone = None;
    t.last_status = Some(TaskStatus::Provisioning);
}

/// The stopped reason of a task that waited too long: `TaskFailedToStart: ` and why it
/// last failed to place, as DescribeTasks shows it on ECS.
pub(crate) fn timeout_reason(last: Option<&str>) -> String {
    format!("TaskFailedToStart: {}", last.unwrap_or(EMPTY))
}

impl Ecs {
    /// One pass over the tasks waiting for capacity: each that now fits somewhere is
    /// placed (its booking, the task and the end of its wait in one transaction), and
    /// the records of tasks stopped meanwhile are dropped.
    pub(crate) async fn place_provisioning(&self) -> Result<(), EcsError> {
        let records = self.objects.list::<Waiting>(PROVISIONING_PREFIX).await?;
        if records.is_empty() {
            return Ok(());
        }
        // Each provider's group instances, read once per pass (not once per task).
        let members = self
            .provider_members(records.iter().filter_map(|(_, w, _)| w.provider.as_deref()))
            .await?;
        for (key, w, rev) in records {
            let Some((cluster, id)) = key
                .strip_prefix(PROVISIONING_PREFIX)
                .and_then(|r| r.split_once('/'))
            else {
                continue;
            };
            let own = w.provider.as_deref().and_then(|p| members.get(p));
            if let Err(error) = self.place_waiting(cluster, id, &key, rev, &w, own).await {
                tracing::warn!(%error, cluster, task = id, "A task waiting for capacity could not be placed.");
            }
        }
        Ok(())
    }

    async fn place_waiting(
        &self,
        cluster: &str,
        id: &str,
        wkey: &str,
        wrev: u64,
        w: &Waiting,
        members: Option<&std::collections::HashSet<String>>,
    ) -> Result<(), EcsError> {
        let tkey = task_key(cluster, id);
        let found = self.objects.get::<StoredTask>(&tkey).await?;
        let Some((mut st, trev)) = found.filter(|(st, _)| {
            !st.released
                && st.task.desired_status != Some(TaskStatus::Stopped)
                && st.instance_id.is_empty()
        }) else {
            // Stopped (by StopTask, its service or the timeout) or gone: no longer waits.
            self.objects
                .commit(Txn::new().when(wkey, wrev).delete(wkey))
                .await?;
            return Ok(());
        };
        let td_ref = st.task.task_definition_arn.clone().unwrap_or_default();
        let Some((td, _)) = self
            .load_task_definition(&self.parse_task_def_ref(&td_ref)?)
            .await?
        else {
            return Ok(());
        };
        let td = td.task_definition;
        let (constraints, strategies) = super::launch::parse_placement(
            &td,
            Some(w.constraints.as_slice()),
            Some(w.strategies.as_slice()),
        )?;
        let strategies = if strategies.is_empty() {
            vec![Strategy::Random]
        } else {
            strategies
        };
        let group = st.task.group.clone().unwrap_or_default();
        let request = placement::TaskRequest {
            cpu: st.reservation.cpu,
            memory: st.reservation.memory,
            tcp_ports: st.reservation.tcp_ports.clone(),
            udp_ports: st.reservation.udp_ports.clone(),
            gpus: st.reservation.gpu_count,
            group: group.clone(),
            required_attributes: td
                .requires_attributes
                .iter()
                .flatten()
                .map(|a| (a.name.clone(), a.value.clone()))
                .collect(),
        };
        let shared = self.view_for(cluster);
        let mut view = shared.lock().await;
        self.refresh_view(cluster, &mut view, false).await?;
        let seed =
            u64::try_from(uuid::Uuid::new_v4().as_u128() & u128::from(u64::MAX)).unwrap_or(0);
        let choose = |v: &crate::view::ClusterView| {
            placement::place(&v.instances, &request, 1, &constraints, &strategies, seed)
        };
        // Tasks of group providers run on their group's instances, never on hidden
        // capacity (a record without a provider: on any of the user's instances).
        // Only the instances of the provider's own group are eligible (as on ECS).
        let plan = match (members, fargate::restrict(&view, false)) {
            (Some(members), _) => {
                let (sub, map) = super::group_capacity::restrict_to_members(&view, members);
                fargate::widen(choose(&sub), &map)
            }
            (None, Some((sub, map))) => fargate::widen(choose(&sub), &map),
            (None, None) => choose(&view),
        };
        let Some(&idx) = plan.placements.first() else {
            let reason = plan
                .failures
                .iter()
                .map(|f| f.reason)
                .find(|r| *r != placement::Reason::Missing)
                .map_or(EMPTY, placement::Reason::as_str);
            drop(view);
            if w.reason.as_deref() != Some(reason) {
                let mut w = w.clone();
                w.reason = Some(reason.to_owned());
                self.objects
                    .commit(Txn::new().when(wkey, wrev).put(wkey, encode(&w)?))
                    .await?;
            }
            return Ok(());
        };
        let inst = view.instances[idx].clone();
        let mut si = view.stored[idx].clone();
        st.instance_id.clone_from(&inst.id);
        let t = &mut st.task;
        t.container_instance_arn = Some(inst.arn.clone());
        t.availability_zone = inst
            .attributes
            .get("ecs.availability-zone")
            .cloned()
            .flatten();
        if let Some(arch) = inst
            .attributes
            .get("ecs.cpu-architecture")
            .cloned()
            .flatten()
        {
            for a in t.attributes.iter_mut().flatten() {
                if a.name == "ecs.cpu-architecture" {
                    a.value = Some(arch.clone());
                }
            }
        }
        // An awsvpc task stays PROVISIONING while its agent sets up its network, as
        // one placed at once does; the others wait for their agent in PENDING.
        if st.eni.is_none() {
            t.last_status = Some(TaskStatus::Pending);
        }
        t.version = Some(t.version.unwrap_or(0) + 1);
        super::launch::assign_gpus(&mut st, &inst);
        book(&mut si, &st.reservation, &group, 1, false);
        super::launch::book_engine(&mut view.instances[idx], &st.reservation, &group);
        let ikey = view.keys[idx].clone();
        let before = view.revisions[idx];
        let txn = Txn::new()
            .when(tkey.clone(), trev)
            .when(wkey, wrev)
            .when(ikey.clone(), before)
            .put(ikey, encode(&si)?)
            .put(tkey, encode(&st)?)
            .put(
                instance_task_key(cluster, &inst.id, id),
                bytes::Bytes::new(),
            )
            .delete(wkey);
        match self.objects.commit_at(txn).await? {
            Some(revision) => {
                view.stored[idx] = si;
                view.revisions[idx] = revision;
                drop(view);
                tracing::info!(cluster, task = id, instance = %inst.id, "A task waiting for capacity was placed.");
                self.channels.notify(cluster, &inst.id);
            }
            None => {
                // The booking in the view is wrong now: read everything next time.
                view.full_at = None;
                if let Some(r) = view.revisions.get_mut(idx) {
                    *r = 0;
                }
            }
        }
        Ok(())
    }

    /// Stops the tasks that have waited for capacity longer than `timeout` (ECS's
    /// [`PROVISIONING_TIMEOUT`], divided by the server's time scale) with ECS's stop
    /// code and reason.
    pub async fn expire_provisioning(&self, timeout: Duration) -> Result<usize, EcsError> {
        let records = self.objects.list::<Waiting>(PROVISIONING_PREFIX).await?;
        let now = crate::now();
        let mut stopped = 0;
        for (key, w, _) in records {
            if now - w.since < timeout.as_secs_f64() {
                continue;
            }
            let Some((cluster, id)) = key
                .strip_prefix(PROVISIONING_PREFIX)
                .and_then(|r| r.split_once('/'))
            else {
                continue;
            };
            let reason = timeout_reason(w.reason.as_deref());
            match self
                .request_stop(cluster, id, TaskStopCode::TaskFailedToStart, &reason)
                .await
            {
                Ok(_) => {
                    stopped += 1;
                    tracing::info!(cluster, task = id, %reason, "A task waited for capacity too long and stopped.");
                }
                Err(error) => {
                    tracing::warn!(%error, cluster, task = id, "A task waiting too long could not be stopped.")
                }
            }
        }
        if stopped > 0 {
            // Their services start replacements (which wait again) on the next round.
            self.controller.wake.notify_one();
        }
        Ok(stopped)
    }

    /// The tasks waiting for capacity in `cluster`.
    pub(crate) async fn waiting_tasks(&self, cluster: &str) -> Result<Vec<WaitingTask>, EcsError> {
        let prefix = format!("{PROVISIONING_PREFIX}{cluster}/");
        Ok(self
            .objects
            .list::<Waiting>(&prefix)
            .await?
            .into_iter()
            .map(|(_, w, _)| WaitingTask {
                provider: w.provider,
                cpu: w.cpu,
                memory: w.memory,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_reason_names_the_last_placement_failure() {
        assert_eq!(
            timeout_reason(Some("RESOURCE:MEMORY")),
            "TaskFailedToStart: RESOURCE:MEMORY"
        );
        assert_eq!(
            timeout_reason(None),
            "TaskFailedToStart: EMPTY CAPACITY PROVIDER"
        );
    }
}
