//! DAEMON: one task of the PRIMARY deployment on every ACTIVE, eligible instance; tasks on
//! other instances stop. Rolling replacement honours min/max percent of the eligible count.

use crate::replica::{stop, unhealthy_past_grace};
use crate::{
    ceiling, counts_healthy, floor, instance_status, live, Actions, InstanceStatus, Observed, Spec,
    Start, StopReason, Task,
};
use std::collections::BTreeMap;

pub(crate) fn compute(spec: &Spec, observed: &Observed) -> Actions {
    let status = instance_status(spec, observed);
    let eligible: Vec<&str> = observed
        .instances
        .iter()
        .filter(|i| i.eligible && status.get(i.id.as_str()) == Some(&InstanceStatus::Active))
        .map(|i| i.id.as_str())
        .collect();
    let desired = u32::try_from(eligible.len()).unwrap_or(u32::MAX);
    let mut a = Actions {
        desired,
        ..Actions::default()
    };
    let Some(primary) = observed.deployments.last().map(|d| d.id.as_str()) else {
        return a;
    };
    // Per eligible instance: its current task(s) and old ones.
    let mut per: BTreeMap<&str, (Vec<&Task>, Vec<&Task>)> = eligible
        .iter()
        .map(|i| (*i, (Vec::new(), Vec::new())))
        .collect();
    for t in observed.tasks.iter().filter(|t| live(t)) {
        match status.get(t.instance.as_str()).copied() {
            None | Some(InstanceStatus::Lost) => {
                a.stop.push(stop(t, StopReason::InstanceLost));
                continue;
            }
            Some(InstanceStatus::Draining) => {
                a.stop.push(stop(t, StopReason::Draining));
                continue;
            }
            Some(InstanceStatus::Active) => {}
        }
        if unhealthy_past_grace(spec, observed.now, t) {
            a.stop.push(stop(t, StopReason::Unhealthy));
            continue;
        }
        match per.get_mut(t.instance.as_str()) {
            // The instance no longer satisfies the constraints.
            None => a.stop.push(stop(t, StopReason::ScaleIn)),
            Some((cur, old)) => {
                if t.deployment == primary {
                    cur.push(t);
                } else {
                    old.push(t);
                }
            }
        }
    }
    for (cur, _) in per.values_mut() {
        if cur.len() > 1 {
            cur.sort_by(|x, y| {
                counts_healthy(y)
                    .cmp(&counts_healthy(x))
                    .then(x.id.cmp(&y.id))
            });
            for t in cur.drain(1..) {
                a.stop.push(stop(t, StopReason::ScaleIn));
            }
        }
    }
    let top = ceiling(desired, spec.max_percent) as usize;
    let bottom = floor(desired, spec.min_healthy_percent) as usize;
    let deactivating = observed
        .tasks
        .iter()
        .filter(|t| t.phase == crate::Phase::Deactivating)
        .count();
    let live_total: usize =
        per.values().map(|(c, o)| c.len() + o.len()).sum::<usize>() + deactivating;
    let mut room = top.saturating_sub(live_total);
    // Empty instances first, then ones still holding an old task.
    let mut needing: Vec<(&str, bool)> = per
        .iter()
        .filter(|(_, (c, _))| c.is_empty())
        .map(|(i, (_, o))| (*i, !o.is_empty()))
        .collect();
    needing.sort_by_key(|(i, has_old)| (*has_old, *i));
    for (inst, _) in needing {
        if room == 0 {
            break;
        }
        room -= 1;
        a.start.push(Start {
            deployment: primary.to_owned(),
            instance: Some(inst.to_owned()),
        });
    }
    let healthy_total = per
        .values()
        .map(|(c, o)| c.iter().chain(o).filter(|t| counts_healthy(t)).count())
        .sum::<usize>();
    let mut surplus = healthy_total.saturating_sub(bottom);
    // Old tasks whose instance already has a healthy replacement go first.
    let mut old: Vec<(bool, &Task)> = per
        .values()
        .flat_map(|(c, o)| {
            let replaced = c.iter().any(|t| counts_healthy(t));
            o.iter().map(move |t| (!replaced, *t))
        })
        .collect();
    old.sort_by(|(ra, x), (rb, y)| {
        counts_healthy(x)
            .cmp(&counts_healthy(y))
            .then(ra.cmp(rb))
            .then(x.id.cmp(&y.id))
    });
    for (_, t) in old {
        if counts_healthy(t) {
            if surplus == 0 {
                break;
            }
            surplus -= 1;
        }
        a.stop.push(stop(t, StopReason::Deployment));
    }
    a
}
