//! StopTask and the agents' reports (SubmitTaskStateChange, SubmitContainerStateChange).
//!
//! Reports arrive at least once and possibly out of order: a status only ever moves
//! forward, so a duplicate or late report is acknowledged and changes nothing. Reaching
//! STOPPED gives the task's resources back to its instance in the same transaction.

use super::release_into;
use crate::error::{invalid, EcsError};
use crate::objects::{encode, instance_key, task_key, Step, StoredInstance, StoredTask};
use crate::{cluster_name, now, ownership, Caller, Ecs};
use model::ecs::shapes::{
    Container, ContainerStateChange, StopTaskRequest, StopTaskResponse,
    SubmitContainerStateChangeRequest, SubmitContainerStateChangeResponse,
    SubmitTaskStateChangeRequest, SubmitTaskStateChangeResponse, Task, TaskStopCode,
};
use model::ecs::status::{advance, ContainerInstanceStatus, ContainerStatus, TaskStatus};
use store::Txn;

fn not_found() -> EcsError {
    EcsError::InvalidParameter("The referenced task was not found.".into())
}

impl Ecs {
    async fn load_task(
        &self,
        cluster: &str,
        reference: &str,
    ) -> Result<(StoredTask, u64, String), EcsError> {
        let id = self.task_id(cluster, reference).ok_or_else(not_found)?;
        let key = task_key(cluster, &id);
        let (t, rev) = self
            .objects
            .get::<StoredTask>(&key)
            .await?
            .ok_or_else(not_found)?;
        Ok((t, rev, key))
    }

    async fn load_stored_instance(
        &self,
        cluster: &str,
        id: &str,
    ) -> Result<Option<(StoredInstance, u64)>, EcsError> {
        self.objects
            .get::<StoredInstance>(&instance_key(cluster, id))
            .await
    }

    /// Refuses `caller` (before anything is written) unless it owns the container
    /// instance the task `st` is placed on.
    async fn check_reporter(
        &self,
        caller: &Caller,
        cluster: &str,
        st: &StoredTask,
        action: &str,
    ) -> Result<(), EcsError> {
        if caller.is_root() {
            return Ok(());
        }
        let owner = self
            .load_stored_instance(cluster, &st.instance_id)
            .await?
            .and_then(|(si, _)| si.owner);
        ownership::check_owner(
            caller,
            owner.as_ref(),
            action,
            st.task.task_arn.as_deref().unwrap_or_default(),
            "the task is not placed on the caller's container instance",
        )
    }
}

/// Marks `st` STOPPED now (keeping an earlier stop code), and returns whether it had been
/// RUNNING (which side of the instance's books it was on).
fn mark_stopped(st: &mut StoredTask, code: TaskStopCode, reason: &str) -> bool {
    let t = &mut st.task;
    let was_running = t.last_status.is_some_and(TaskStatus::has_run);
    let now = now();
    t.last_status = Some(TaskStatus::Stopped);
    t.desired_status = Some(TaskStatus::Stopped);
    t.stopping_at.get_or_insert(now);
    t.stopped_at = Some(now);
    t.execution_stopped_at.get_or_insert(now);
    t.stop_code.get_or_insert(code);
    if t.stopped_reason.is_none() {
        t.stopped_reason = Some(reason.to_owned());
    }
    for c in t.containers.iter_mut().flatten() {
        c.last_status = Some(ContainerStatus::Stopped);
    }
    if st.eni.is_some() {
        super::awsvpc::apply_attachment_status(t, "DELETED");
    }
    st.released = true;
    st.deactivating = false;
    was_running
}

pub(crate) async fn stop_task(
    ecs: &Ecs,
    req: StopTaskRequest,
    _: &Caller,
) -> Result<StopTaskResponse, EcsError> {
    let (cluster, _, _) = ecs.active_cluster(req.cluster.as_deref()).await?;
    if req.reason.as_ref().is_some_and(|r| r.len() > 255) {
        return invalid("reason can be at most 255 characters.");
    }
    let reason = req
        .reason
        .clone()
        .unwrap_or_else(|| "Task stopped by user".to_owned());
    let (task, instance_id) = ecs
        .request_stop(&cluster, &req.task, TaskStopCode::UserInitiated, &reason)
        .await?;
    ecs.channels.notify(&cluster, &instance_id);
    tracing::info!(cluster = %cluster, task = %req.task, "Task stop requested.");
    Ok(StopTaskResponse { task: Some(task) })
}

impl Ecs {
    /// Asks a task to stop (desiredStatus STOPPED with `code` and `reason`), or marks it
    /// STOPPED at once when its instance is gone and no agent will ever stop it. Returns
    /// the task and its instance id; the caller notifies the instance's channel.
    pub(crate) async fn request_stop(
        &self,
        cluster: &str,
        reference: &str,
        code: TaskStopCode,
        reason: &str,
    ) -> Result<(model::ecs::shapes::Task, String), EcsError> {
        self.objects
            .retry(reference, || async {
                let (mut st, rev, key) = self.load_task(cluster, reference).await?;
                // A deactivating task already has its stop code and reason.
                let deactivating = std::mem::take(&mut st.deactivating);
                let instance = self.load_stored_instance(cluster, &st.instance_id).await?;
                let gone = instance.as_ref().is_none_or(|(si, _)| {
                    si.instance.status == Some(ContainerInstanceStatus::Inactive)
                });
                // A task already asked to stop is done, unless its instance is gone
                // before its agent reported it stopped: then no report will come.
                if st.task.desired_status == Some(TaskStatus::Stopped)
                    && !deactivating
                    && (!gone || st.released)
                {
                    return Ok(Step::Done((st.task, st.instance_id)));
                }
                let mut txn = Txn::new().when(key.clone(), rev);
                if gone {
                    // No agent will ever stop it: the task is stopped here and now.
                    let was_running = mark_stopped(&mut st, code, reason);
                    st.task.version = Some(st.task.version.unwrap_or(0) + 1);
                    txn = release_into(txn, cluster, &st, instance, was_running)?;
                } else {
                    let t = &mut st.task;
                    if deactivating {
                        advance(&mut t.last_status, TaskStatus::Stopping);
                    } else {
                        ask_to_stop(t, code, reason);
                    }
                    t.version = Some(t.version.unwrap_or(0) + 1);
                }
                txn = txn.put(key, encode(&st)?);
                Ok(Step::Commit(txn, (st.task, st.instance_id)))
            })
            .await
            .inspect(|_| {
                if code == TaskStopCode::ServiceSchedulerInitiated {
                    telemetry::ControllerAction::StopTask.emit(1);
                }
            })
    }

    /// Marks a RUNNING service task as leaving through its load balancers' drain:
    /// desiredStatus STOPPED and lastStatus DEACTIVATING with `code` and `reason`, while
    /// its agent keeps it running until [`Ecs::request_stop`]. A task already asked to
    /// stop is left as it is.
    pub(crate) async fn request_deactivate(
        &self,
        cluster: &str,
        reference: &str,
        code: TaskStopCode,
        reason: &str,
    ) -> Result<(), EcsError> {
        self.objects
            .retry(reference, || async {
                let (mut st, rev, key) = self.load_task(cluster, reference).await?;
                if st.task.desired_status == Some(TaskStatus::Stopped) || st.released {
                    return Ok(Step::Done(()));
                }
                st.deactivating = true;
                let t = &mut st.task;
                ask_to_stop(t, code, reason);
                advance(&mut t.last_status, TaskStatus::Deactivating);
                t.version = Some(t.version.unwrap_or(0) + 1);
                let txn = Txn::new().when(key.clone(), rev).put(key, encode(&st)?);
                Ok(Step::Commit(txn, ()))
            })
            .await
    }
}

/// desiredStatus STOPPED, with the stop's code, reason and time.
fn ask_to_stop(t: &mut Task, code: TaskStopCode, reason: &str) {
    t.desired_status = Some(TaskStatus::Stopped);
    t.stopping_at = Some(now());
    t.stop_code = Some(code);
    t.stopped_reason = Some(reason.to_owned());
}

/// Parses the container statuses of agent reports before anything is applied, so a
/// report naming a status ECS does not know is refused whole.
fn container_statuses(
    changes: &[ContainerStateChange],
) -> Result<Vec<Option<ContainerStatus>>, EcsError> {
    changes
        .iter()
        .map(|ch| {
            ch.status
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(str::parse::<ContainerStatus>)
                .transpose()
                .map_err(|e| EcsError::InvalidParameter(format!("Invalid container status: {e}.")))
        })
        .collect()
}

/// Applies container reports (with their statuses parsed by [`container_statuses`]); true
/// when anything changed.
fn apply_containers(
    containers: &mut [Container],
    changes: &[ContainerStateChange],
    statuses: &[Option<ContainerStatus>],
) -> bool {
    let mut changed = false;
    for (ch, status) in changes.iter().zip(statuses) {
        let Some(c) = containers
            .iter_mut()
            .find(|c| c.name.as_deref() == ch.container_name.as_deref())
        else {
            continue;
        };
        let forward = status.is_some_and(|s| advance(&mut c.last_status, s));
        changed |= forward;
        if forward || c.runtime_id.is_none() {
            for (dst, src) in [
                (&mut c.runtime_id, &ch.runtime_id),
                (&mut c.image_digest, &ch.image_digest),
                (&mut c.reason, &ch.reason),
            ] {
                if src.is_some() && dst != src {
                    dst.clone_from(src);
                    changed = true;
                }
            }
            if ch.exit_code.is_some() && c.exit_code != ch.exit_code {
                c.exit_code = ch.exit_code;
                changed = true;
            }
            if ch.network_bindings.as_ref().is_some_and(|b| !b.is_empty())
                && c.network_bindings != ch.network_bindings
            {
                c.network_bindings.clone_from(&ch.network_bindings);
                changed = true;
            }
        }
    }
    changed
}

const ACK: &str = "ACK";

pub(crate) async fn submit_task_state_change(
    ecs: &Ecs,
    req: SubmitTaskStateChangeRequest,
    caller: &Caller,
) -> Result<SubmitTaskStateChangeResponse, EcsError> {
    let cluster = cluster_name(req.cluster.as_deref()).to_owned();
    let Some(task_ref) = req.task.clone() else {
        return invalid("task is required.");
    };
    let status = match req.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match s.parse::<TaskStatus>() {
            Ok(status) => Some(status),
            Err(_) => return invalid(format!("Invalid task status '{s}'.")),
        },
    };
    let container_statuses = container_statuses(req.containers.as_deref().unwrap_or_default())?;
    ecs.objects
        .retry(&task_ref, || async {
            let (mut st, rev, key) = ecs.load_task(&cluster, &task_ref).await?;
            ecs.check_reporter(caller, &cluster, &st, "ecs:SubmitTaskStateChange")
                .await?;
            let mut changed = apply_containers(
                st.task.containers.as_deref_mut().unwrap_or_default(),
                req.containers.as_deref().unwrap_or_default(),
                &container_statuses,
            );
            let t = &mut st.task;
            for (dst, src) in [
                (&mut t.pull_started_at, req.pull_started_at),
                (&mut t.pull_stopped_at, req.pull_stopped_at),
            ] {
                if src.is_some() && dst.is_none() {
                    *dst = src;
                    changed = true;
                }
            }
            let cur = t.last_status;
            let mut txn = Txn::new().when(key.clone(), rev);
            let forward = status.filter(|s| cur.is_none_or(|c| *s > c));
            if let (Some(status), false) = (forward, st.released) {
                changed = true;
                if status == TaskStatus::Stopped {
                    let was_running = cur.is_some_and(TaskStatus::has_run);
                    let (code, default_reason) =
                        if st.task.desired_status == Some(TaskStatus::Stopped) {
                            (TaskStopCode::UserInitiated, "Task stopped by user")
                        } else if was_running {
                            (
                                TaskStopCode::EssentialContainerExited,
                                "Essential container in task exited",
                            )
                        } else {
                            (TaskStopCode::TaskFailedToStart, "Task failed to start")
                        };
                    if st.task.stopped_reason.is_none() {
                        st.task.stopped_reason = req
                            .reason
                            .clone()
                            .or_else(|| Some(default_reason.to_owned()));
                    }
                    st.task.execution_stopped_at =
                        req.execution_stopped_at.or(st.task.execution_stopped_at);
                    mark_stopped(&mut st, code, default_reason);
                    let instance = ecs.load_stored_instance(&cluster, &st.instance_id).await?;
                    txn = release_into(txn, &cluster, &st, instance, was_running)?;
                } else {
                    let t = &mut st.task;
                    t.last_status = Some(status);
                    if status == TaskStatus::Running {
                        t.started_at.get_or_insert_with(now);
                        if let Some((mut si, irev)) =
                            ecs.load_stored_instance(&cluster, &st.instance_id).await?
                        {
                            si.usage.pending = si.usage.pending.saturating_sub(1);
                            si.usage.running += 1;
                            let ikey = instance_key(&cluster, &st.instance_id);
                            txn = txn.when(ikey.clone(), irev).put(ikey, encode(&si)?);
                        }
                    }
                }
            }
            if !changed {
                return Ok(Step::Done(()));
            }
            st.task.version = Some(st.task.version.unwrap_or(0) + 1);
            Ok(Step::Commit(txn.put(key, encode(&st)?), ()))
        })
        .await?;
    Ok(SubmitTaskStateChangeResponse {
        acknowledgment: Some(ACK.into()),
    })
}

pub(crate) async fn submit_container_state_change(
    ecs: &Ecs,
    req: SubmitContainerStateChangeRequest,
    caller: &Caller,
) -> Result<SubmitContainerStateChangeResponse, EcsError> {
    let cluster = cluster_name(req.cluster.as_deref()).to_owned();
    let Some(task_ref) = req.task.clone() else {
        return invalid("task is required.");
    };
    let change = ContainerStateChange {
        container_name: req.container_name.clone(),
        image_digest: None,
        runtime_id: req.runtime_id.clone(),
        exit_code: req.exit_code,
        network_bindings: req.network_bindings.clone(),
        reason: req.reason.clone(),
        status: req.status.clone(),
    };
    let statuses = container_statuses(std::slice::from_ref(&change))?;
    ecs.objects
        .retry(&task_ref, || async {
            let (mut st, rev, key) = ecs.load_task(&cluster, &task_ref).await?;
            ecs.check_reporter(caller, &cluster, &st, "ecs:SubmitContainerStateChange")
                .await?;
            if !apply_containers(
                st.task.containers.as_deref_mut().unwrap_or_default(),
                std::slice::from_ref(&change),
                &statuses,
            ) {
                return Ok(Step::Done(()));
            }
            st.task.version = Some(st.task.version.unwrap_or(0) + 1);
            Ok(Step::Commit(
                Txn::new().when(key.clone(), rev).put(key, encode(&st)?),
                (),
            ))
        })
        .await?;
    Ok(SubmitContainerStateChangeResponse {
        acknowledgment: Some(ACK.into()),
    })
}
