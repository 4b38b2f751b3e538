//! Container health from the agents (`PublishHealthRequest` on the channel) and the task
//! health ECS derives from it. Reports are idempotent: the same verdicts applied again
//! change nothing, so the agent may resend everything after a reconnect. Standalone tasks
//! are never stopped for being UNHEALTHY; services read `Task.health_status` from the
//! store to replace theirs.

use model::acs;
use model::ecs::shapes::{HealthStatus, Task};

use crate::error::EcsError;
use crate::objects::{encode, task_key, Step, StoredTask};
use crate::Ecs;
use store::Txn;

/// One container as the task-health rule sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContainerHealthInput {
    /// Whether its exit stops the task.
    pub essential: bool,
    /// Whether its definition declares a health check.
    pub has_check: bool,
    /// Its current verdict.
    pub status: HealthStatus,
}

/// ECS's rule: only essential containers with a health check count; any UNHEALTHY makes
/// the task UNHEALTHY, all HEALTHY make it HEALTHY, anything else (or none counting) is
/// UNKNOWN.
pub fn compute_task_health(containers: &[ContainerHealthInput]) -> HealthStatus {
    let counted: Vec<HealthStatus> = containers
        .iter()
        .filter(|c| c.essential && c.has_check)
        .map(|c| c.status)
        .collect();
    if counted.contains(&HealthStatus::Unhealthy) {
        HealthStatus::Unhealthy
    } else if !counted.is_empty() && counted.iter().all(|s| *s == HealthStatus::Healthy) {
        HealthStatus::Healthy
    } else {
        HealthStatus::Unknown
    }
}

fn parse_health(s: &str) -> Option<HealthStatus> {
    match s {
        "HEALTHY" => Some(HealthStatus::Healthy),
        "UNHEALTHY" => Some(HealthStatus::Unhealthy),
        "UNKNOWN" => Some(HealthStatus::Unknown),
        _ => None,
    }
}

/// Applies one task's report to `st`; returns whether anything changed. Containers
/// without a health check keep UNKNOWN whatever is reported for them.
pub(crate) fn apply_task_health(st: &mut StoredTask, report: &acs::TaskHealth) -> bool {
    let mut changed = false;
    let has_check = |name: &str| {
        st.containers
            .iter()
            .any(|d| d.name.as_deref() == Some(name) && d.health_check.is_some())
    };
    let checked: Vec<bool> = st
        .task
        .containers
        .iter()
        .flatten()
        .map(|c| has_check(c.name.as_deref().unwrap_or_default()))
        .collect();
    for (c, checked) in st.task.containers.iter_mut().flatten().zip(&checked) {
        let Some(r) = report
            .containers
            .iter()
            .find(|r| Some(r.container_name.as_str()) == c.name.as_deref())
        else {
            continue;
        };
        let Some(status) = parse_health(&r.health_status) else {
            continue;
        };
        if *checked && c.health_status != Some(status) {
            c.health_status = Some(status);
            changed = true;
        }
    }
    let task = compute_health_of(&st.task, st);
    if st.task.health_status != Some(task) {
        st.task.health_status = Some(task);
        changed = true;
    }
    changed
}

fn compute_health_of(task: &Task, st: &StoredTask) -> HealthStatus {
    let inputs: Vec<ContainerHealthInput> = task
        .containers
        .iter()
        .flatten()
        .map(|c| {
            let def = st
                .containers
                .iter()
                .find(|d| d.name.is_some() && d.name == c.name);
            ContainerHealthInput {
                essential: def.and_then(|d| d.essential).unwrap_or(true),
                has_check: def.is_some_and(|d| d.health_check.is_some()),
                status: c.health_status.unwrap_or(HealthStatus::Unknown),
            }
        })
        .collect();
    compute_task_health(&inputs)
}

impl Ecs {
    /// Records the health an instance's agent reports for its tasks. Tasks of other
    /// instances, unknown tasks and stopped tasks are skipped.
    pub(crate) async fn apply_health_report(
        &self,
        cluster: &str,
        instance_id: &str,
        report: &acs::PublishHealthRequest,
    ) -> Result<usize, EcsError> {
        let mut updated = 0;
        for th in &report.tasks {
            let Some(id) = self.task_id(cluster, &th.task_arn) else {
                continue;
            };
            let key = task_key(cluster, &id);
            let changed = self
                .objects
                .retry(&th.task_arn, || async {
                    let Some((mut st, rev)) = self.objects.get::<StoredTask>(&key).await? else {
                        return Ok(Step::Done(false));
                    };
                    if st.instance_id != instance_id
                        || st.released
                        || st.task.last_status == Some(model::ecs::status::TaskStatus::Stopped)
                        || !apply_task_health(&mut st, th)
                    {
                        return Ok(Step::Done(false));
                    }
                    st.task.version = Some(st.task.version.unwrap_or(0) + 1);
                    let txn = Txn::new()
                        .when(key.clone(), rev)
                        .put(key.clone(), encode(&st)?);
                    Ok(Step::Commit(txn, true))
                })
                .await?;
            if changed {
                updated += 1;
                tracing::debug!(cluster = %cluster, task = %th.task_arn, "Task health recorded.");
            }
        }
        Ok(updated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(essential: bool, has_check: bool, status: HealthStatus) -> ContainerHealthInput {
        ContainerHealthInput {
            essential,
            has_check,
            status,
        }
    }

    #[test]
    fn task_health_follows_the_essential_containers_with_a_check() {
        use HealthStatus::{Healthy, Unhealthy, Unknown};
        assert_eq!(compute_task_health(&[]), Unknown);
        assert_eq!(compute_task_health(&[c(true, false, Unknown)]), Unknown);
        assert_eq!(
            compute_task_health(&[c(true, true, Healthy), c(true, false, Unknown)]),
            Healthy
        );
        assert_eq!(
            compute_task_health(&[c(true, true, Healthy), c(true, true, Unknown)]),
            Unknown
        );
        assert_eq!(
            compute_task_health(&[c(true, true, Unknown), c(true, true, Unhealthy)]),
            Unhealthy
        );
        // A non-essential container's verdict does not count.
        assert_eq!(
            compute_task_health(&[c(true, true, Healthy), c(false, true, Unhealthy)]),
            Healthy
        );
        assert_eq!(compute_task_health(&[c(false, true, Healthy)]), Unknown);
    }
}
