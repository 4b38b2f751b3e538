//! Feasibility filters, one small type each, run in AWS's order: resources (CPU, MEMORY,
//! PORTS, PORTS_UDP, GPU), then AGENT, ATTRIBUTE, memberOf and distinctInstance. The first
//! filter that rejects names the reason.
//!
//! Filters whose answer cannot change while a plan is built (agent, required attributes,
//! memberOf expressions that read neither `runningTasksCount` nor `task:group`) look at the
//! [`Instance`] and run once per candidate when the view is built; their verdict is the
//! view's `gate`. The others read the view's integer columns and run on every scan.

use crate::expression::{Columns, Expression, PlanDelta};
use crate::types::{Instance, Reason};
use crate::view::ClusterView;

/// A filter that reads the cluster view, so it sees the plan's earlier placements.
pub(crate) trait Filter {
    /// The reason reported when this filter rejects.
    const REASON: Reason;
    /// Whether live slot `c` can take one more task of the view's task.
    fn admits(view: &ClusterView<'_>, c: usize) -> bool;
}

/// Enough remaining CPU units.
pub(crate) struct CpuFilter;
impl Filter for CpuFilter {
    const REASON: Reason = Reason::Cpu;
    #[inline]
    fn admits(view: &ClusterView<'_>, c: usize) -> bool {
        view.rem_cpu[c] >= view.task.cpu
    }
}

/// Enough remaining memory.
pub(crate) struct MemoryFilter;
impl Filter for MemoryFilter {
    const REASON: Reason = Reason::Memory;
    #[inline]
    fn admits(view: &ClusterView<'_>, c: usize) -> bool {
        view.rem_mem[c] >= view.task.memory
    }
}

/// None of the task's static TCP host ports reserved or used.
pub(crate) struct PortsFilter;
impl Filter for PortsFilter {
    const REASON: Reason = Reason::Ports;
    #[inline]
    fn admits(view: &ClusterView<'_>, c: usize) -> bool {
        view.tcp_free[c]
    }
}

/// None of the task's static UDP host ports reserved or used.
pub(crate) struct UdpPortsFilter;
impl Filter for UdpPortsFilter {
    const REASON: Reason = Reason::PortsUdp;
    #[inline]
    fn admits(view: &ClusterView<'_>, c: usize) -> bool {
        view.udp_free[c]
    }
}

/// Enough unassigned GPUs.
pub(crate) struct GpuFilter;
impl Filter for GpuFilter {
    const REASON: Reason = Reason::Gpu;
    #[inline]
    fn admits(view: &ClusterView<'_>, c: usize) -> bool {
        view.task.gpus == 0 || view.free_gpus[c] >= view.task.gpus
    }
}

/// The plan-dependent memberOf expressions hold (the plan-independent ones are in the gate).
pub(crate) struct PlanMemberOfFilter;
impl Filter for PlanMemberOfFilter {
    const REASON: Reason = Reason::MemberOf;
    #[inline]
    fn admits(view: &ClusterView<'_>, c: usize) -> bool {
        view.member_ok[c]
    }
}

/// With `distinctInstance`, no task of the group on the instance yet, plan included.
pub(crate) struct DistinctInstanceFilter;
impl Filter for DistinctInstanceFilter {
    const REASON: Reason = Reason::DistinctInstance;
    #[inline]
    fn admits(view: &ClusterView<'_>, c: usize) -> bool {
        !view.distinct || view.group_count[c] == 0
    }
}

/// Runs the chain in AWS's order on live slot `c` (whose gate passed); `None` when it is
/// feasible.
#[inline]
pub(crate) fn first_rejection(view: &ClusterView<'_>, c: usize) -> Option<Reason> {
    macro_rules! check {
        ($f:ty) => {
            if !<$f>::admits(view, c) {
                return Some(<$f>::REASON);
            }
        };
    }
    check!(CpuFilter);
    check!(MemoryFilter);
    check!(PortsFilter);
    check!(UdpPortsFilter);
    check!(GpuFilter);
    check!(PlanMemberOfFilter);
    check!(DistinctInstanceFilter);
    None
}

/// The agent is connected.
pub(crate) struct AgentFilter;
impl AgentFilter {
    /// Reports [`Reason::Agent`] when false.
    pub(crate) fn admits(agent_connected: bool) -> bool {
        agent_connected
    }
}

/// `requiresAttributes`: each name present and, when a value is required, equal to it.
pub(crate) struct AttributeFilter<'a> {
    required: &'a [(String, Option<String>)],
}
impl<'a> AttributeFilter<'a> {
    pub(crate) fn new(required: &'a [(String, Option<String>)]) -> Self {
        AttributeFilter { required }
    }
    /// Whether each candidate has the attributes (else [`Reason::Attribute`]), decided once
    /// per distinct value.
    pub(crate) fn admits_columns(&self, cols: &impl Columns) -> Vec<bool> {
        let mut ok = vec![true; cols.len()];
        for (name, want) in self.required {
            let Some((ids, dict)) = cols.attribute(name) else {
                return vec![false; cols.len()];
            };
            let table: Vec<bool> = dict
                .iter()
                .enumerate()
                .map(|(id, have)| match want {
                    _ if id == 0 => false,
                    None => true,
                    Some(w) => have.as_deref() == Some(w.as_str()),
                })
                .collect();
            for (o, id) in ok.iter_mut().zip(ids) {
                *o &= table[*id as usize];
            }
        }
        ok
    }
}

/// Every memberOf expression matches.
pub(crate) struct MemberOfFilter<'e, 'a> {
    expressions: &'e [&'a Expression],
}
impl<'e, 'a> MemberOfFilter<'e, 'a> {
    pub(crate) fn new(expressions: &'e [&'a Expression]) -> Self {
        MemberOfFilter { expressions }
    }
    /// Reports [`Reason::MemberOf`] when false.
    pub(crate) fn admits(&self, inst: &Instance, delta: &PlanDelta<'_>) -> bool {
        self.expressions.iter().all(|e| e.matches_with(inst, delta))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::cluster::Cluster;
    use crate::types::TaskRequest;

    fn inst(cpu: i64, memory: i64) -> Instance {
        Instance {
            id: "0".repeat(32),
            active: true,
            agent_connected: true,
            cpu,
            memory,
            ..Instance::default()
        }
    }

    /// Runs `check` on the only live slot of a one-instance view.
    fn admits<F: Filter>(i: Instance, task: &TaskRequest) -> bool {
        let instances = [i];
        let cluster = Cluster::new(&instances);
        let view = ClusterView::build(&cluster, task, &[], true, &[]);
        F::admits(&view, 0)
    }

    fn task(cpu: i64, memory: i64) -> TaskRequest {
        TaskRequest {
            cpu,
            memory,
            group: "family:web".into(),
            ..TaskRequest::default()
        }
    }

    #[test]
    fn cpu_filter_admits_exactly_the_remaining_units() {
        assert!(admits::<CpuFilter>(inst(1024, 0), &task(1024, 0)));
        assert!(!admits::<CpuFilter>(inst(1023, 0), &task(1024, 0)));
    }

    #[test]
    fn memory_filter_admits_exactly_the_remaining_mib() {
        let mut i = inst(0, 2048);
        i.used_memory = 1024;
        assert!(admits::<MemoryFilter>(i.clone(), &task(0, 1024)));
        assert!(!admits::<MemoryFilter>(i, &task(0, 1025)));
    }

    #[test]
    fn ports_filters_reject_reserved_and_used_ports_per_protocol() {
        let mut i = inst(1, 1);
        i.reserved_tcp_ports.insert(22);
        i.used_udp_ports.insert(53);
        let mut t = task(0, 0);
        t.tcp_ports = vec![22];
        assert!(!admits::<PortsFilter>(i.clone(), &t));
        assert!(admits::<UdpPortsFilter>(i.clone(), &t));
        t.tcp_ports = vec![53];
        t.udp_ports = vec![53];
        assert!(admits::<PortsFilter>(i.clone(), &t));
        assert!(!admits::<UdpPortsFilter>(i, &t));
    }

    #[test]
    fn gpu_filter_counts_only_unassigned_gpus() {
        let mut i = inst(1, 1);
        i.gpus = vec!["a".into(), "b".into()];
        i.used_gpus.insert("a".into());
        let mut t = task(0, 0);
        t.gpus = 1;
        assert!(admits::<GpuFilter>(i.clone(), &t));
        t.gpus = 2;
        assert!(!admits::<GpuFilter>(i, &t));
    }

    #[test]
    fn distinct_instance_filter_rejects_an_instance_hosting_the_group() {
        let mut i = inst(1, 1);
        assert!(admits::<DistinctInstanceFilter>(i.clone(), &task(0, 0)));
        i.groups.insert("family:web".into(), 1);
        assert!(!admits::<DistinctInstanceFilter>(i.clone(), &task(0, 0)));
        i.groups.insert("family:web".into(), 0);
        assert!(admits::<DistinctInstanceFilter>(i, &task(0, 0)));
    }

    #[test]
    fn attribute_filter_needs_the_name_and_the_value_when_given() {
        let mut i = inst(1, 1);
        i.attributes
            .insert("ecs.os-type".into(), Some("linux".into()));
        i.attributes.insert("cap".into(), None);
        let instances = [i];
        let cluster = Cluster::new(&instances);
        let req = |r: &[(&str, Option<&str>)]| -> Vec<(String, Option<String>)> {
            r.iter()
                .map(|(n, v)| ((*n).to_owned(), v.map(str::to_owned)))
                .collect()
        };
        let ok =
            |r: Vec<(String, Option<String>)>| AttributeFilter::new(&r).admits_columns(&cluster)[0];
        assert!(ok(req(&[("cap", None), ("ecs.os-type", Some("linux"))])));
        assert!(!ok(req(&[("ecs.os-type", Some("windows"))])));
        assert!(!ok(req(&[("missing", None)])));
        assert!(!ok(req(&[("cap", Some("x"))])));
    }

    #[test]
    fn agent_filter_rejects_disconnected_agents() {
        assert!(AgentFilter::admits(true));
        assert!(!AgentFilter::admits(false));
    }
}
