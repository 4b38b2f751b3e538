//! Task sets: the deployment units of a service whose deployments are driven from outside
//! ECS — the `EXTERNAL` deployment controller (an external deployer calls CreateTaskSet,
//! UpdateTaskSet, UpdateServicePrimaryTaskSet and DeleteTaskSet) and `CODE_DEPLOY` (the
//! service starts with one PRIMARY task set; AWS reserves the task-set writes for
//! CodeDeploy, which Stevedore does not have, so they are refused as AWS refuses them).
//!
//! Task sets live in the service record's `taskSets` member, so DescribeServices shows
//! them as AWS does and one compare-and-swap covers a service and its task sets. Each task
//! set runs `ceil(desiredCount × scale / 100)` tasks (its `computedDesiredCount`), tagged
//! with the task set's id as `startedBy` and registered with the task set's own target
//! groups. The controller reconciles each task set as a one-deployment service
//! ([`rounds`]), so placement, health, draining and events work as for any service.

pub(crate) mod api;
pub(crate) mod rounds;
#[cfg(test)]
mod tests;

use crate::error::{invalid, EcsError};
use model::ecs::shapes::{
    DeploymentControllerType, Scale, ScaleUnit, Service, StabilityStatus, TaskSet,
};

/// A task set serving production traffic (the service's configuration follows it).
pub(crate) const PRIMARY: &str = "PRIMARY";
/// A task set that is not the PRIMARY.
pub(crate) const ACTIVE: &str = "ACTIVE";
/// A deleted task set whose tasks are stopping; it leaves the service once they have.
pub(crate) const DRAINING: &str = "DRAINING";

/// The most task sets a service has at once (AWS counts them as deployments).
pub(crate) const MAX_TASK_SETS: usize = 5;

/// AWS's refusal of a task-set write on a service it does not let the caller drive.
pub(crate) const NOT_EXTERNAL: &str =
    "Amazon ECS only supports task set management on services configured to use external deployment controllers.";

/// The service's deployment controller type (ECS when unset).
pub(crate) fn controller_of(svc: &Service) -> DeploymentControllerType {
    svc.deployment_controller
        .as_ref()
        .map_or(DeploymentControllerType::Ecs, |c| c.type_)
}

/// The service's tasks come from task sets, not from ECS deployments.
pub(crate) fn is_task_set_driven(svc: &Service) -> bool {
    controller_of(svc) != DeploymentControllerType::Ecs
}

/// A scale as AWS stores it: unit PERCENT, value in 0–100.
pub(crate) fn parse_scale(scale: Option<&Scale>) -> Result<Scale, EcsError> {
    let Some(s) = scale else {
        // CreateTaskSet without a scale starts at 0 %: nothing runs until it is scaled.
        return Ok(Scale {
            value: Some(0.0),
            unit: Some(ScaleUnit::Percent),
        });
    };
    let value = s.value.unwrap_or(0.0);
    if !value.is_finite() || !(0.0..=100.0).contains(&value) {
        return invalid(format!(
            "Scale value must be between 0 and 100 percent; got {value}."
        ));
    }
    Ok(Scale {
        value: Some(value),
        unit: Some(s.unit.unwrap_or(ScaleUnit::Percent)),
    })
}

/// `computedDesiredCount`: the service's desired count times the scale, rounded up (AWS:
/// "The result is always rounded up"). A DRAINING task set wants nothing.
pub(crate) fn compute_desired_count(service_desired: i32, ts: &TaskSet) -> i32 {
    if ts.status.as_deref() == Some(DRAINING) {
        return 0;
    }
    let percent = ts.scale.as_ref().and_then(|s| s.value).unwrap_or(0.0);
    let exact = f64::from(service_desired.max(0)) * percent / 100.0;
    // 1e-9 absorbs binary rounding (e.g. 3 × 33.33… never becomes 1.0000000001 → 2).
    let count = (exact - 1e-9).ceil().max(0.0);
    // The product of a count ≤ 10000 and a percent ≤ 100 always fits.
    count.min(f64::from(i32::MAX)) as i32
}

/// Refreshes every task set's `computedDesiredCount` after the service's desired count
/// or a scale changed.
pub(crate) fn apply_desired_counts(svc: &mut Service) {
    let desired = svc.desired_count.unwrap_or(0);
    for ts in svc.task_sets.iter_mut().flatten() {
        ts.computed_desired_count = Some(compute_desired_count(desired, ts));
    }
}

/// The stability status a task set has with these counts: STEADY_STATE once it runs
/// exactly its computed count with nothing pending and nothing left to do (the scheduler's
/// `steady` covers health checks and draining), STABILIZING otherwise.
pub(crate) fn compute_stability(ts: &TaskSet, scheduler_steady: bool) -> StabilityStatus {
    let wanted = ts.computed_desired_count.unwrap_or(0);
    if scheduler_steady && ts.running_count == Some(wanted) && ts.pending_count.unwrap_or(0) == 0 {
        StabilityStatus::SteadyState
    } else {
        StabilityStatus::Stabilizing
    }
}

/// Sets the stability status, stamping the time only when it changes.
pub(crate) fn apply_stability(ts: &mut TaskSet, status: StabilityStatus, at: f64) {
    if ts.stability_status != Some(status) {
        ts.stability_status = Some(status);
        ts.stability_status_at = Some(at);
    }
}

/// The position of the task set a reference names: its id (`ecs-svc/…`) or its ARN.
pub(crate) fn position_of(svc: &Service, reference: &str) -> Option<usize> {
    svc.task_sets.iter().flatten().position(|ts| {
        ts.id.as_deref() == Some(reference) || ts.task_set_arn.as_deref() == Some(reference)
    })
}

/// What CreateService refuses for a service driven by task sets: DAEMON (task sets are
/// REPLICA only), and for EXTERNAL the members that belong to task sets (the service would
/// otherwise accept and never use them).
pub(crate) fn check_service_controller(
    controller: DeploymentControllerType,
    daemon: bool,
    req: &model::ecs::shapes::CreateServiceRequest,
) -> Result<(), EcsError> {
    if daemon {
        return invalid(format!(
            "The DAEMON scheduling strategy is not supported with the {} deployment controller.",
            controller.as_str()
        ));
    }
    if controller != DeploymentControllerType::External {
        return Ok(());
    }
    let owned_by_task_sets = [
        (req.task_definition.is_some(), "taskDefinition"),
        (
            req.load_balancers.as_ref().is_some_and(|l| !l.is_empty()),
            "loadBalancers",
        ),
        (req.network_configuration.is_some(), "networkConfiguration"),
    ];
    if let Some((_, what)) = owned_by_task_sets.iter().find(|(given, _)| *given) {
        return invalid(format!(
            "{what} cannot be specified for a service using the EXTERNAL deployment controller: each task set names its own (CreateTaskSet)."
        ));
    }
    Ok(())
}
