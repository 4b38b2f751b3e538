//! Task scale-in protection: UpdateTaskProtection and GetTaskProtection.
//!
//! Protection is stored with the task (`StoredTask::protected_until`, epoch seconds) and
//! read against the clock, so it expires by itself: after its expiration date a task is
//! reported unprotected and the service controller may stop it again. Only a service's
//! tasks can be protected (a standalone task is a `TASK_NOT_VALID` failure), and a
//! service never holds more protected tasks than its desired count (`DEPLOYMENT_BLOCKED`),
//! as ECS documents ("Task scale-in protection considerations").

use crate::error::{invalid, EcsError};
use crate::objects::{encode, task_key, task_prefix, Step, StoredTask};
use crate::services::{service_key, StoredService};
use crate::{now, Caller, Ecs};
use model::ecs::shapes::{
    Failure, GetTaskProtectionRequest, GetTaskProtectionResponse, ProtectedTask,
    UpdateTaskProtectionRequest, UpdateTaskProtectionResponse,
};
use model::ecs::status::TaskStatus;
use store::Txn;

/// Tasks one UpdateTaskProtection may name.
const MAX_UPDATE_TASKS: usize = 10;
/// Tasks one GetTaskProtection may name.
const MAX_GET_TASKS: usize = 100;
/// Protection's length when the request gives none (two hours).
pub(crate) const DEFAULT_EXPIRES_IN_MINUTES: i32 = 120;
/// The longest protection (48 hours).
pub(crate) const MAX_EXPIRES_IN_MINUTES: i32 = 2880;

/// How long protection lasts, in minutes (`None`: protection is being removed), from
/// the request's `protectionEnabled` and `expiresInMinutes`.
pub(crate) fn compute_expiry_minutes(
    enabled: bool,
    expires_in_minutes: Option<i32>,
) -> Result<Option<i32>, EcsError> {
    if !enabled {
        return Ok(None);
    }
    let minutes = expires_in_minutes.unwrap_or(DEFAULT_EXPIRES_IN_MINUTES);
    if !(1..=MAX_EXPIRES_IN_MINUTES).contains(&minutes) {
        return invalid(format!(
            "expiresInMinutes must be between 1 and {MAX_EXPIRES_IN_MINUTES} minutes; {minutes} was given."
        ));
    }
    Ok(Some(minutes))
}

/// A task's protection as the API shows it at `now`: an expired protection is shown off,
/// with no expiration date.
fn shown(st: &StoredTask, now: f64) -> ProtectedTask {
    let until = st.protected_until.filter(|u| now < *u);
    ProtectedTask {
        task_arn: st.task.task_arn.clone(),
        protection_enabled: Some(until.is_some()),
        expiration_date: until,
    }
}

/// The service a task belongs to (its group is `service:<name>`), if any.
fn service_of(st: &StoredTask) -> Option<&str> {
    st.task.group.as_deref()?.strip_prefix("service:")
}

fn failure(arn: String, reason: &str, detail: &str) -> Failure {
    Failure {
        arn: Some(arn),
        reason: Some(reason.to_owned()),
        detail: Some(detail.to_owned()),
    }
}

pub(crate) async fn update_task_protection(
    ecs: &Ecs,
    req: UpdateTaskProtectionRequest,
    _: &Caller,
) -> Result<UpdateTaskProtectionResponse, EcsError> {
    let (cluster, _, _) = ecs.active_cluster(Some(&req.cluster)).await?;
    if req.tasks.is_empty() || req.tasks.len() > MAX_UPDATE_TASKS {
        return invalid(format!(
            "tasks must name between 1 and {MAX_UPDATE_TASKS} tasks."
        ));
    }
    let minutes = compute_expiry_minutes(req.protection_enabled, req.expires_in_minutes)?;
    let mut protected = Vec::new();
    let mut failures = Vec::new();
    for r in &req.tasks {
        match ecs.apply_protection(&cluster, r, minutes).await? {
            Ok(p) => protected.push(p),
            Err(f) => failures.push(f),
        }
    }
    tracing::info!(cluster = %cluster, enabled = req.protection_enabled, updated = protected.len(), failed = failures.len(), "Task protection updated.");
    Ok(UpdateTaskProtectionResponse {
        protected_tasks: Some(protected),
        failures: Some(failures),
    })
}

pub(crate) async fn get_task_protection(
    ecs: &Ecs,
    req: GetTaskProtectionRequest,
    _: &Caller,
) -> Result<GetTaskProtectionResponse, EcsError> {
    let (cluster, _, _) = ecs.active_cluster(Some(&req.cluster)).await?;
    let tasks = req.tasks.unwrap_or_default();
    if tasks.is_empty() || tasks.len() > MAX_GET_TASKS {
        return invalid(format!(
            "tasks must name between 1 and {MAX_GET_TASKS} tasks."
        ));
    }
    let at = now();
    let mut protected = Vec::new();
    let mut failures = Vec::new();
    for r in &tasks {
        let arn = ecs.task_arn_of(&cluster, r);
        match ecs.find_task(&cluster, r).await? {
            None => failures.push(failure(arn, "MISSING", "The task was not found.")),
            Some(st) if service_of(&st).is_none() => failures.push(failure(
                arn,
                "TASK_NOT_VALID",
                "The task does not belong to a service.",
            )),
            Some(st) => protected.push(shown(&st, at)),
        }
    }
    Ok(GetTaskProtectionResponse {
        protected_tasks: Some(protected),
        failures: Some(failures),
    })
}

impl Ecs {
    /// Sets (`minutes` given) or removes one task's protection. The inner `Err` is the
    /// task's entry in `failures`.
    async fn apply_protection(
        &self,
        cluster: &str,
        reference: &str,
        minutes: Option<i32>,
    ) -> Result<Result<ProtectedTask, Failure>, EcsError> {
        let arn = self.task_arn_of(cluster, reference);
        let Some(id) = self.task_id(cluster, reference) else {
            return Ok(Err(failure(arn, "MISSING", "The task was not found.")));
        };
        let key = task_key(cluster, &id);
        self.objects
            .retry(&key, || async {
                let Some((mut st, rev)) = self.objects.get::<StoredTask>(&key).await? else {
                    return Ok(Step::Done(Err(failure(
                        arn.clone(),
                        "MISSING",
                        "The task was not found.",
                    ))));
                };
                let Some(service) = service_of(&st).map(str::to_owned) else {
                    return Ok(Step::Done(Err(failure(
                        arn.clone(),
                        "TASK_NOT_VALID",
                        "The task does not belong to a service.",
                    ))));
                };
                let at = now();
                if minutes.is_some() {
                    if st.task.desired_status == Some(TaskStatus::Stopped)
                        || st.deactivating
                        || st.task.last_status == Some(TaskStatus::Stopped)
                    {
                        return Ok(Step::Done(Err(failure(
                            arn.clone(),
                            "TASK_NOT_VALID",
                            "The task is stopping or stopped and cannot be protected.",
                        ))));
                    }
                    if self
                        .protection_would_block(cluster, &service, &id, at)
                        .await?
                    {
                        return Ok(Step::Done(Err(failure(
                            arn.clone(),
                            "DEPLOYMENT_BLOCKED",
                            "The service would have more protected tasks than its desired count.",
                        ))));
                    }
                }
                st.protected_until = minutes.map(|m| at + f64::from(m) * 60.0);
                let txn = Txn::new()
                    .when(key.clone(), rev)
                    .put(key.clone(), encode(&st)?);
                Ok(Step::Commit(txn, Ok(shown(&st, at))))
            })
            .await
    }

    /// Whether protecting task `id` of `service` would leave the service with more
    /// protected tasks than its desired count.
    async fn protection_would_block(
        &self,
        cluster: &str,
        service: &str,
        id: &str,
        at: f64,
    ) -> Result<bool, EcsError> {
        let Some((svc, _)) = self
            .objects
            .get::<StoredService>(&service_key(cluster, service))
            .await?
        else {
            return Ok(false);
        };
        let desired = usize::try_from(svc.service.desired_count.unwrap_or(0)).unwrap_or(0);
        let group = format!("service:{service}");
        let others = self
            .objects
            .list::<StoredTask>(&task_prefix(cluster))
            .await?
            .into_iter()
            .filter(|(_, t, _)| t.task.group.as_deref() == Some(group.as_str()))
            .filter(|(_, t, _)| t.task.last_status != Some(TaskStatus::Stopped))
            .filter(|(_, t, _)| t.protected_until.is_some_and(|u| at < u))
            .filter(|(_, t, _)| {
                t.task
                    .task_arn
                    .as_deref()
                    .and_then(|a| a.rsplit('/').next())
                    != Some(id)
            })
            .count();
        Ok(others + 1 > desired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protection_defaults_to_two_hours_and_allows_one_to_2880_minutes() {
        assert_eq!(compute_expiry_minutes(true, None).ok().flatten(), Some(120));
        assert_eq!(
            compute_expiry_minutes(true, Some(1)).ok().flatten(),
            Some(1)
        );
        assert_eq!(
            compute_expiry_minutes(true, Some(2880)).ok().flatten(),
            Some(2880)
        );
        for bad in [0, -5, 2881] {
            assert!(matches!(
                compute_expiry_minutes(true, Some(bad)),
                Err(EcsError::InvalidParameter(_))
            ));
        }
    }

    #[test]
    fn removing_protection_ignores_the_expiry() {
        assert_eq!(compute_expiry_minutes(false, Some(9999)).ok(), Some(None));
    }
}
