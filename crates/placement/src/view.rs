//! The cluster view: what the candidates have left, as the plan so far leaves it.
//!
//! It is derived from a prepared [`Cluster`] for one task. Plan-independent filters (agent,
//! required attributes, memberOf expressions that read neither `runningTasksCount` nor
//! `task:group`) are decided here, once, into `gate`, using the cluster's interned
//! attribute columns. Candidates that pass the gate are *live*; only they can receive a
//! placement, so the mutable state is a struct of arrays indexed by *live slot*, dense
//! and in candidate order: the per-placement scan walks plain slices of integers with no
//! indirection, and applying a placement touches one slot. Candidates that fail the gate
//! never change during the plan, so their failure reason is computed once.

use crate::cluster::{Cluster, FastMap};
use crate::expression::{Columns, Expression, PlanDelta};
use crate::filter::{first_rejection, AgentFilter, AttributeFilter, MemberOfFilter};
use crate::types::{Instance, Reason, SpreadField, Strategy, TaskRequest};

/// One `spread(attribute:<name>)` strategy, resolved.
pub(crate) struct SpreadColumn<'c> {
    /// Attribute name.
    pub(crate) name: &'c str,
    /// Value id per live slot. Ids 0 (no attribute) and 1 (no value) are one value, `""`:
    /// their counts are kept equal.
    pub(crate) values: Vec<u32>,
    /// Tasks of the group per value id, across all candidates, plan included.
    pub(crate) counts: Vec<u64>,
}

/// See the module docs.
pub(crate) struct ClusterView<'c> {
    pub(crate) instances: &'c [Instance],
    pub(crate) task: &'c TaskRequest,
    /// Instance index of each candidate.
    pub(crate) index: &'c [usize],
    /// Per candidate: the reason it rejects any placement of this plan, for those that
    /// fail the gate (resources first, as for live ones); `None` for live ones.
    pub(crate) dead_reason: Vec<Option<Reason>>,
    /// Candidate of each live slot.
    pub(crate) live: Vec<usize>,
    // Per live slot from here on.
    pub(crate) rem_cpu: Vec<i64>,
    pub(crate) rem_mem: Vec<i64>,
    /// None of the task's TCP host ports is taken (always true when it asks for none).
    pub(crate) tcp_free: Vec<bool>,
    /// None of the task's UDP host ports is taken.
    pub(crate) udp_free: Vec<bool>,
    pub(crate) free_gpus: Vec<u32>,
    /// Plan-dependent memberOf expressions hold (all true when there are none).
    pub(crate) member_ok: Vec<bool>,
    /// Tasks of the group on the instance, plan included.
    pub(crate) group_count: Vec<u32>,
    /// Tasks this plan placed on the instance.
    pub(crate) planned: Vec<u32>,
    /// Rank of the instance id among the candidates: the final tie-breaker.
    pub(crate) id_rank: Vec<u32>,
    pub(crate) spread: Vec<SpreadColumn<'c>>,
    /// First filter rejecting the slot now; only the slot that receives a placement can
    /// change, so this is kept up to date instead of recomputed per scan.
    pub(crate) reason: Vec<Option<Reason>>,
    /// Live slots rejected now, per reason.
    pub(crate) rejected: [usize; Reason::ALL.len()],
    /// Feasible live slots (any order: the scan breaks ties by id, not position).
    pub(crate) feasible: Vec<usize>,
    /// Position of each slot in `feasible`, `usize::MAX` when absent.
    feasible_pos: Vec<usize>,
    /// Plan-dependent memberOf expressions, re-evaluated after each placement.
    dynamic: Vec<&'c Expression>,
    pub(crate) distinct: bool,
}

/// Marks the candidates on which any of `ports` is taken.
fn ports_free(n: usize, ports: &[u16], users: &FastMap<u16, Vec<usize>>) -> Vec<bool> {
    let mut free = vec![true; n];
    for p in ports {
        for &c in users.get(p).map(Vec::as_slice).unwrap_or(&[]) {
            free[c] = false;
        }
    }
    free
}

impl<'c> ClusterView<'c> {
    /// Resolves everything plan-independent for this task, once: one pass over the
    /// candidates decides the gate and gathers the live slots' columns.
    pub(crate) fn build(
        cluster: &'c Cluster<'_>,
        task: &'c TaskRequest,
        member_of: &[&'c Expression],
        distinct: bool,
        strategies: &'c [Strategy],
    ) -> ClusterView<'c> {
        let n = cluster.len();
        let (dynamic, fixed): (Vec<&Expression>, Vec<&Expression>) =
            member_of.iter().copied().partition(|e| e.depends_on_plan());
        // Columns that are all-true in the common case stay `None`.
        let attributes_ok = (!task.required_attributes.is_empty())
            .then(|| AttributeFilter::new(&task.required_attributes).admits_columns(cluster));
        let member_fixed = fixed
            .iter()
            .map(|e| e.matches_columns(cluster))
            .reduce(|mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x &= y);
                a
            });
        let tcp_free = (!task.tcp_ports.is_empty())
            .then(|| ports_free(n, &task.tcp_ports, &cluster.tcp_users));
        let udp_free = (!task.udp_ports.is_empty())
            .then(|| ports_free(n, &task.udp_ports, &cluster.udp_users));
        let groups = cluster
            .groups
            .get(&task.group)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let group_all = (!groups.is_empty()).then(|| {
            let mut g = vec![0u32; n];
            groups.iter().for_each(|&(c, count)| g[c] = count);
            g
        });
        let (mut spread, spread_ids) = spread_columns(cluster, groups, strategies);

        let mut live = Vec::with_capacity(n);
        let mut dead_reason = Vec::with_capacity(n);
        let mut rem_cpu = Vec::with_capacity(n);
        let mut rem_mem = Vec::with_capacity(n);
        let mut tcp = Vec::with_capacity(n);
        let mut udp = Vec::with_capacity(n);
        let mut free_gpus = Vec::with_capacity(n);
        let mut group_count = Vec::with_capacity(n);
        let mut id_rank = Vec::with_capacity(n);
        let at = |col: &Option<Vec<bool>>, c: usize| col.as_ref().is_none_or(|v| v[c]);
        for c in 0..n {
            let gate = if !AgentFilter::admits(cluster.agent_connected[c]) {
                Some(Reason::Agent)
            } else if !at(&attributes_ok, c) {
                Some(Reason::Attribute)
            } else if !at(&member_fixed, c) {
                Some(Reason::MemberOf)
            } else {
                None
            };
            if let Some(g) = gate {
                // Resources are checked first, as for live candidates.
                dead_reason.push(Some(if cluster.rem_cpu[c] < task.cpu {
                    Reason::Cpu
                } else if cluster.rem_mem[c] < task.memory {
                    Reason::Memory
                } else if !at(&tcp_free, c) {
                    Reason::Ports
                } else if !at(&udp_free, c) {
                    Reason::PortsUdp
                } else if task.gpus > 0 && cluster.free_gpus[c] < task.gpus {
                    Reason::Gpu
                } else {
                    g
                }));
                continue;
            }
            dead_reason.push(None);
            live.push(c);
            rem_cpu.push(cluster.rem_cpu[c]);
            rem_mem.push(cluster.rem_mem[c]);
            tcp.push(at(&tcp_free, c));
            udp.push(at(&udp_free, c));
            free_gpus.push(cluster.free_gpus[c]);
            group_count.push(group_all.as_ref().map_or(0, |g| g[c]));
            id_rank.push(cluster.id_rank[c]);
            for (col, ids) in spread.iter_mut().zip(&spread_ids) {
                col.values.push(ids.map_or(0, |ids| ids[c]));
            }
        }
        let none = PlanDelta {
            tasks: 0,
            group: &task.group,
        };
        let member_ok = if dynamic.is_empty() {
            vec![true; live.len()]
        } else {
            let filter = MemberOfFilter::new(&dynamic);
            live.iter()
                .map(|&c| filter.admits(cluster.instance(c), &none))
                .collect()
        };
        let slots = live.len();
        let mut view = ClusterView {
            reason: Vec::with_capacity(slots),
            rejected: [0; Reason::ALL.len()],
            feasible: Vec::with_capacity(slots),
            feasible_pos: vec![usize::MAX; slots],
            instances: cluster.instances(),
            task,
            index: &cluster.index,
            rem_cpu,
            rem_mem,
            tcp_free: tcp,
            udp_free: udp,
            free_gpus,
            id_rank,
            spread,
            planned: vec![0; slots],
            member_ok,
            group_count,
            dead_reason,
            live,
            dynamic,
            distinct,
        };
        for k in 0..slots {
            let r = first_rejection(&view, k);
            view.reason.push(r);
            match r {
                Some(r) => view.rejected[r.index()] += 1,
                None => {
                    view.feasible_pos[k] = view.feasible.len();
                    view.feasible.push(k);
                }
            }
        }
        view
    }

    /// Records one placement on live slot `k`: resources, ports, GPUs, group counts, and
    /// the plan-dependent memberOf expressions of that one instance.
    pub(crate) fn apply(&mut self, k: usize) {
        let task = self.task;
        self.rem_cpu[k] = self.rem_cpu[k].saturating_sub(task.cpu);
        self.rem_mem[k] = self.rem_mem[k].saturating_sub(task.memory);
        if !task.tcp_ports.is_empty() {
            self.tcp_free[k] = false;
        }
        if !task.udp_ports.is_empty() {
            self.udp_free[k] = false;
        }
        self.free_gpus[k] = self.free_gpus[k].saturating_sub(task.gpus);
        self.group_count[k] = self.group_count[k].saturating_add(1);
        self.planned[k] = self.planned[k].saturating_add(1);
        for col in &mut self.spread {
            match col.values[k] {
                0 | 1 => {
                    col.counts[0] += 1;
                    col.counts[1] += 1;
                }
                v => col.counts[v as usize] += 1,
            }
        }
        if !self.dynamic.is_empty() {
            let delta = PlanDelta {
                tasks: self.planned[k],
                group: &task.group,
            };
            self.member_ok[k] = MemberOfFilter::new(&self.dynamic).admits(self.instance(k), &delta);
        }
        self.reclassify(k);
    }

    /// Re-runs the filters on slot `k` and moves it in or out of `feasible`.
    fn reclassify(&mut self, k: usize) {
        let new = first_rejection(self, k);
        let old = std::mem::replace(&mut self.reason[k], new);
        if old == new {
            return;
        }
        if let Some(r) = old {
            self.rejected[r.index()] -= 1;
        } else {
            let at = self.feasible_pos[k];
            self.feasible.swap_remove(at);
            if let Some(&moved) = self.feasible.get(at) {
                self.feasible_pos[moved] = at;
            }
            self.feasible_pos[k] = usize::MAX;
        }
        if let Some(r) = new {
            self.rejected[r.index()] += 1;
        } else {
            self.feasible_pos[k] = self.feasible.len();
            self.feasible.push(k);
        }
    }

    /// The instance behind live slot `k`.
    pub(crate) fn instance(&self, k: usize) -> &'c Instance {
        &self.instances[self.index[self.live[k]]]
    }

    /// Number of candidates.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }
}

/// Resolves each spread attribute once: its value ids per candidate (to be gathered for
/// the live slots) and the group's task counts per value across all candidates.
fn spread_columns<'c>(
    cluster: &'c Cluster<'_>,
    groups: &[(usize, u32)],
    strategies: &'c [Strategy],
) -> (Vec<SpreadColumn<'c>>, Vec<Option<&'c [u32]>>) {
    let mut columns: Vec<SpreadColumn<'c>> = Vec::new();
    let mut all_ids = Vec::new();
    for s in strategies {
        let Strategy::Spread(SpreadField::Attribute(name)) = s else {
            continue;
        };
        if columns.iter().any(|c| c.name == name) {
            continue;
        }
        let attribute = cluster.attribute(name);
        let mut counts = vec![0u64; attribute.map_or(2, |(_, dict)| dict.len())];
        for &(c, g) in groups {
            counts[attribute.map_or(0, |(ids, _)| ids[c]) as usize] += u64::from(g);
        }
        let missing = counts[0] + counts[1];
        counts[0] = missing;
        counts[1] = missing;
        columns.push(SpreadColumn {
            name,
            values: Vec::with_capacity(cluster.len()),
            counts,
        });
        all_ids.push(attribute.map(|(ids, _)| ids));
    }
    (columns, all_ids)
}
