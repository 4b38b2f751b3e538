//! Selection: place tasks one at a time, each with one linear scan over the live
//! candidates of the view, then record the placement in the view so the next scan sees it.

use std::borrow::Cow;

use crate::cluster::Cluster;
use crate::expression::Expression;
use crate::filter::first_rejection;
use crate::strategy::KeySource;
use crate::types::{
    Constraint, Explanation, Failure, Instance, Plan, Reason, SpreadField, Strategy, TaskRequest,
};
use crate::view::ClusterView;

/// The `detail` of the failure reported when the cluster has no ACTIVE instance.
pub const NO_INSTANCES_DETAIL: &str = "No Container Instances were found in your cluster.";

/// Places `count` copies of `task` on `instances`.
///
/// Tasks are placed one at a time against a view that includes this plan's earlier
/// placements (resources, ports, GPUs, group counts, `runningTasksCount`). Constraints are
/// binding; strategies (applied in order, then the instance id) only choose among feasible
/// instances. When a placement fails, placing stops: `failures` then lists every ACTIVE
/// instance with the first filter that rejected it, or a single `MISSING` failure when
/// there is no ACTIVE instance. The same inputs and `seed` always give the same plan.
///
/// The caller validates the request first (at most 10 constraints and 5 strategies, as
/// ECS does); the engine itself accepts any number.
///
/// This prepares a [`Cluster`] snapshot first, which dominates the cost on large clusters;
/// to place repeatedly on the same instances, prepare it once and use [`Cluster::place`].
pub fn place(
    instances: &[Instance],
    task: &TaskRequest,
    count: usize,
    constraints: &[Constraint],
    strategies: &[Strategy],
    seed: u64,
) -> Plan {
    if count == 0 {
        return Plan::default();
    }
    // Intern only the attributes this placement reads.
    let mut names: Vec<&str> = task
        .required_attributes
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    for c in constraints {
        if let Constraint::MemberOf(e) = c {
            e.attribute_names(&mut names);
        }
    }
    for s in strategies {
        if let Strategy::Spread(SpreadField::Attribute(name)) = s {
            names.push(name);
        }
    }
    names.sort_unstable();
    names.dedup();
    Cluster::build_with(
        Cow::Borrowed(instances),
        Some(&names),
        Some((&task.tcp_ports, &task.udp_ports)),
    )
    .place(task, count, constraints, strategies, seed)
}

/// [`place`] on a prepared snapshot.
pub(crate) fn place_on(
    cluster: &Cluster<'_>,
    task: &TaskRequest,
    count: usize,
    constraints: &[Constraint],
    strategies: &[Strategy],
    seed: u64,
) -> Plan {
    let mut plan = Plan::default();
    if count == 0 {
        return plan;
    }
    let member_of: Vec<&Expression> = constraints
        .iter()
        .filter_map(|c| match c {
            Constraint::MemberOf(e) => Some(e),
            Constraint::DistinctInstance => None,
        })
        .collect();
    let distinct = constraints.contains(&Constraint::DistinctInstance);
    let mut view = ClusterView::build(cluster, task, &member_of, distinct, strategies);
    if view.len() == 0 {
        plan.failures.push(Failure {
            arn: None,
            reason: Reason::Missing,
            detail: Some(NO_INSTANCES_DETAIL.to_owned()),
        });
        plan.explanations.push(Explanation {
            chosen: None,
            keys: Vec::new(),
            rejected: Vec::new(),
            feasible: 0,
        });
        return plan;
    }
    let keys = KeySource::compile(strategies, &view);
    // Candidates that failed the gate never receive a placement, so nothing about them
    // changes during the plan: count their reasons once.
    let mut gated = [0usize; Reason::ALL.len()];
    for r in view.dead_reason.iter().flatten() {
        gated[r.index()] += 1;
    }
    let mut best_keys = vec![0u64; keys.len()];
    let mut buffers = (Vec::new(), Vec::new());
    for p in 0..count {
        let scan = scan(&view, &keys, p as u64, seed, &mut best_keys, &mut buffers);
        let rejected = Reason::ALL
            .iter()
            .map(|r| (*r, scan.rejected[r.index()] + gated[r.index()]))
            .filter(|(_, n)| *n > 0)
            .collect();
        let chosen = scan.best.map(|k| view.index[view.live[k]]);
        plan.explanations.push(Explanation {
            chosen,
            keys: if chosen.is_some() {
                best_keys.clone()
            } else {
                Vec::new()
            },
            rejected,
            feasible: scan.feasible,
        });
        match (scan.best, chosen) {
            (Some(k), Some(i)) => {
                plan.placements.push(i);
                view.apply(k);
            }
            _ => {
                plan.failures = failures(&view);
                break;
            }
        }
    }
    plan
}

/// Every candidate with the first filter that rejects it, in instance order.
fn failures(view: &ClusterView<'_>) -> Vec<Failure> {
    let mut live = view.live.iter().enumerate().peekable();
    (0..view.len())
        .filter_map(|c| {
            let reason = match live.peek() {
                Some(&(k, &lc)) if lc == c => {
                    live.next();
                    first_rejection(view, k)
                }
                _ => view.dead_reason[c],
            };
            reason.map(|reason| Failure {
                arn: Some(view.instances[view.index[c]].arn.clone()),
                reason,
                detail: None,
            })
        })
        .collect()
}

struct Scan {
    best: Option<usize>,
    rejected: [usize; Reason::ALL.len()],
    feasible: usize,
}

/// Selects the best feasible live slot. Feasibility itself is kept up to date by the
/// view, so no filter runs here.
///
/// Lexicographic selection is done key by key: each pass narrows the tie set to the slots
/// with the smallest value of one key, so the first pass walks every feasible slot and
/// later passes only the ties left (a third of the cluster after a spread over three
/// zones, usually a handful after binpack). Each pass is a monomorphised loop over one
/// array, which is what keeps the per-instance cost at a few nanoseconds.
fn scan(
    view: &ClusterView<'_>,
    keys: &[KeySource],
    placement: u64,
    seed: u64,
    best_keys: &mut [u64],
    buffers: &mut (Vec<usize>, Vec<usize>),
) -> Scan {
    let (ties, next) = buffers;
    ties.clear();
    ties.extend_from_slice(&view.feasible);
    for k in keys {
        if ties.len() <= 1 {
            break;
        }
        // Raw columns order like the keys (binpack's key is the column minus a constant).
        match *k {
            KeySource::RemainingCpu => narrow(ties, next, |c| view.rem_cpu[c]),
            KeySource::RemainingMemory => narrow(ties, next, |c| view.rem_mem[c]),
            KeySource::GroupOnInstance => narrow(ties, next, |c| view.group_count[c]),
            KeySource::GroupOnValue(s) => {
                let col = &view.spread[s];
                narrow(ties, next, |c| col.counts[col.values[c] as usize])
            }
            KeySource::Random => narrow(ties, next, |c| k.key(view, c, placement, seed)),
        }
        std::mem::swap(ties, next);
    }
    // The instance id breaks the remaining ties; ranks are unique, so one slot is left.
    let best = ties.iter().copied().min_by_key(|&c| view.id_rank[c]);
    if let Some(b) = best {
        for (out, k) in best_keys.iter_mut().zip(keys) {
            *out = k.key(view, b, placement, seed);
        }
    }
    Scan {
        best,
        rejected: view.rejected,
        feasible: view.feasible.len(),
    }
}

/// Keeps in `out` the slots of `src` with the smallest key.
#[inline]
fn narrow<K: Ord + Copy + Bounded>(src: &[usize], out: &mut Vec<usize>, key: impl Fn(usize) -> K) {
    out.clear();
    let mut min = K::MAX;
    for &c in src {
        let k = key(c);
        if k < min {
            min = k;
            out.clear();
        }
        if k == min {
            out.push(c);
        }
    }
}

/// The largest value of a key column type.
trait Bounded {
    const MAX: Self;
}
impl Bounded for i64 {
    const MAX: i64 = i64::MAX;
}
impl Bounded for u32 {
    const MAX: u32 = u32::MAX;
}
impl Bounded for u64 {
    const MAX: u64 = u64::MAX;
}
