//! REPLICA: keep `desired` tasks of the PRIMARY deployment on ACTIVE instances, retiring
//! older deployments' tasks and tasks on DRAINING instances within min/max percent.

use crate::{
    ceiling, counts_healthy, floor, instance_status, live, Actions, Health, InstanceStatus,
    Observed, Phase, Spec, Start, Stop, StopReason, Task,
};

pub(crate) fn compute(spec: &Spec, observed: &Observed) -> Actions {
    let status = instance_status(spec, observed);
    let desired = spec.desired;
    let mut a = Actions {
        desired,
        ..Actions::default()
    };
    let Some(primary) = observed.deployments.last().map(|d| d.id.as_str()) else {
        return a;
    };
    let mut current: Vec<&Task> = Vec::new();
    let mut retiring: Vec<(&Task, StopReason)> = Vec::new();
    // Unhealthy tasks being stopped, and tasks deactivating, still run until they stop (a
    // load balancer drains them first, for its deregistration delay): they hold room under
    // the ceiling, or replacements would pile up faster than the drains end.
    let mut stopping_unhealthy = observed
        .tasks
        .iter()
        .filter(|t| t.phase == Phase::Deactivating)
        .count();
    for t in observed.tasks.iter().filter(|t| live(t)) {
        let inst = status.get(t.instance.as_str()).copied();
        // A task waiting for capacity is on no instance yet; it is not lost.
        if !t.instance.is_empty() && matches!(inst, None | Some(InstanceStatus::Lost)) {
            a.stop.push(stop(t, StopReason::InstanceLost));
            continue;
        }
        if unhealthy_past_grace(spec, observed.now, t) {
            a.stop.push(stop(t, StopReason::Unhealthy));
            stopping_unhealthy += 1;
            continue;
        }
        if inst == Some(InstanceStatus::Draining) {
            retiring.push((t, StopReason::Draining));
        } else if t.deployment != primary {
            retiring.push((t, StopReason::Deployment));
        } else {
            current.push(t);
        }
    }
    // Scale in: the newest and least advanced unprotected tasks go first; protected
    // tasks are never chosen, so with too many of them the service stays above its
    // desired count until their protection ends.
    if current.len() > desired as usize {
        current.sort_by(|x, y| {
            x.is_protected(observed.now)
                .cmp(&y.is_protected(observed.now))
                .then((x.phase == Phase::Running).cmp(&(y.phase == Phase::Running)))
                .then(
                    y.started_at
                        .partial_cmp(&x.started_at)
                        .unwrap_or(std::cmp::Ordering::Equal),
                )
                .then(x.id.cmp(&y.id))
        });
        let excess = current.len() - desired as usize;
        let unprotected = current
            .iter()
            .take_while(|t| !t.is_protected(observed.now))
            .count();
        for t in current.drain(..excess.min(unprotected)) {
            a.stop.push(stop(t, StopReason::ScaleIn));
        }
        if excess > unprotected {
            a.protected_kept.extend(
                current
                    .iter()
                    .filter(|t| t.is_protected(observed.now))
                    .map(|t| t.id.clone()),
            );
        }
    }
    let top = ceiling(desired, spec.max_percent);
    let bottom = floor(desired, spec.min_healthy_percent);
    let live_total = current.len() + retiring.len() + stopping_unhealthy;
    let want = (desired as usize).saturating_sub(current.len());
    let room = (top as usize).saturating_sub(live_total);
    for _ in 0..want.min(room) {
        a.start.push(Start {
            deployment: primary.to_owned(),
            instance: None,
        });
    }
    // Retiring tasks that are not healthy hold nothing up: stop them now. Healthy ones
    // stop only from the surplus above the floor.
    let healthy_total = current.iter().filter(|t| counts_healthy(t)).count()
        + retiring.iter().filter(|(t, _)| counts_healthy(t)).count();
    let mut surplus = healthy_total.saturating_sub(bottom as usize);
    retiring.sort_by(|(x, _), (y, _)| {
        counts_healthy(x)
            .cmp(&counts_healthy(y))
            .then(x.id.cmp(&y.id))
    });
    for (t, why) in retiring {
        // A deployment never stops a protected task (a draining instance still does: that
        // is not a scale-in).
        if why == StopReason::Deployment && t.is_protected(observed.now) {
            a.protected_kept.push(t.id.clone());
            continue;
        }
        if counts_healthy(t) {
            if surplus == 0 {
                break;
            }
            surplus -= 1;
        }
        a.stop.push(stop(t, why));
    }
    a
}

pub(crate) fn stop(t: &Task, reason: StopReason) -> Stop {
    Stop {
        task: t.id.clone(),
        reason,
    }
}

/// A RUNNING task whose checks say UNHEALTHY after the grace period.
pub(crate) fn unhealthy_past_grace(spec: &Spec, now: f64, t: &Task) -> bool {
    t.phase == Phase::Running
        && t.health == Health::Unhealthy
        && t.started_at
            .is_none_or(|s| now - s >= spec.health_grace_seconds)
}
