//! The engine's own input and output types. They are plain data, independent of the wire
//! shapes in `model`, so the engine does not care how ECS spells things on the wire; the
//! caller (the RunTask handler, the service scheduler) fills them from the store.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::expression::Expression;

/// A container instance that might receive tasks, with what it has and what is used.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Instance {
    /// 32-hex-digit container instance id; the final tie-breaker between equal instances.
    pub id: String,
    /// Container instance ARN, reported in failures.
    pub arn: String,
    /// EC2 instance id (`ec2InstanceId` in expressions).
    pub ec2_instance_id: String,
    /// Status is ACTIVE. DRAINING and INACTIVE instances are never candidates.
    pub active: bool,
    /// The agent is connected; a disconnected agent rejects with `AGENT`.
    pub agent_connected: bool,
    /// Agent version (`agentVersion` in expressions), e.g. `1.80.0`.
    pub agent_version: Option<String>,
    /// Registration time, epoch seconds (`registeredAt` in expressions).
    pub registered_at: f64,
    /// Attributes by name, e.g. `ecs.availability-zone` → `us-east-1a`. Some attributes
    /// (capabilities) have no value.
    pub attributes: BTreeMap<String, Option<String>>,
    /// Registered CPU units (vCPUs × 1024).
    pub cpu: i64,
    /// Registered memory, MiB.
    pub memory: i64,
    /// TCP ports the agent reserved at registration.
    pub reserved_tcp_ports: BTreeSet<u16>,
    /// UDP ports the agent reserved at registration.
    pub reserved_udp_ports: BTreeSet<u16>,
    /// Registered GPU ids.
    pub gpus: Vec<String>,
    /// CPU units reserved by tasks on the instance that are not yet STOPPED.
    pub used_cpu: i64,
    /// Memory (MiB) reserved by tasks on the instance that are not yet STOPPED.
    pub used_memory: i64,
    /// Static TCP host ports of tasks on the instance that are not yet STOPPED.
    pub used_tcp_ports: BTreeSet<u16>,
    /// Static UDP host ports of tasks on the instance that are not yet STOPPED.
    pub used_udp_ports: BTreeSet<u16>,
    /// GPU ids assigned to tasks on the instance that are not yet STOPPED.
    pub used_gpus: BTreeSet<String>,
    /// `runningTasksCount` as ECS reports it.
    pub running_tasks_count: u32,
    /// Tasks not yet STOPPED on the instance, counted per task group.
    pub groups: BTreeMap<String, u32>,
}

/// What one task needs; the caller computes the amounts from the task definition and
/// overrides (container sums or task-level values).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskRequest {
    /// CPU units to reserve.
    pub cpu: i64,
    /// Memory to reserve, MiB (memoryReservation, else memory).
    pub memory: i64,
    /// Static TCP host ports.
    pub tcp_ports: Vec<u16>,
    /// Static UDP host ports.
    pub udp_ports: Vec<u16>,
    /// GPUs to reserve.
    pub gpus: u32,
    /// Task group, e.g. `family:web` or `service:api`.
    pub group: String,
    /// `requiresAttributes`: the name must exist and, when a value is given, equal it.
    pub required_attributes: Vec<(String, Option<String>)>,
}

/// A binding placement constraint.
#[derive(Clone, Debug, PartialEq)]
pub enum Constraint {
    /// No two tasks of the task's group on one instance, counting tasks already there and
    /// earlier placements of the same plan.
    DistinctInstance,
    /// Only instances matching the cluster query expression.
    MemberOf(Expression),
}

/// The resource a `binpack` strategy packs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// CPU units.
    Cpu,
    /// Memory.
    Memory,
}

/// What a `spread` strategy balances over.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SpreadField {
    /// Each instance is its own value (`instanceId`, alias `host`).
    InstanceId,
    /// The value of an attribute (`attribute:ecs.availability-zone`). Instances lacking
    /// the attribute (or having it without a value) together form one extra value, `""`.
    Attribute(String),
}

/// A best-effort placement strategy; the list is applied in order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// Prefer the instance with the least remaining amount of the field.
    Binpack(Field),
    /// Prefer the value (instance, attribute value) hosting the fewest tasks of the group.
    Spread(SpreadField),
    /// A seeded pseudo-random order.
    Random,
}

/// Why an instance could not take a task. The AWS strings are [`Reason::as_str`]; the
/// variants are listed in the order the filters run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// Not enough remaining CPU units.
    Cpu,
    /// Not enough remaining memory.
    Memory,
    /// A static TCP host port is taken.
    Ports,
    /// A static UDP host port is taken.
    PortsUdp,
    /// Not enough free GPUs.
    Gpu,
    /// The agent is disconnected.
    Agent,
    /// A required attribute is missing or has another value.
    Attribute,
    /// A memberOf expression does not match.
    MemberOf,
    /// The instance already hosts a task of the group.
    DistinctInstance,
    /// No candidate instance at all.
    Missing,
}

impl Reason {
    /// Every reason, in filter order.
    pub const ALL: [Reason; 10] = [
        Reason::Cpu,
        Reason::Memory,
        Reason::Ports,
        Reason::PortsUdp,
        Reason::Gpu,
        Reason::Agent,
        Reason::Attribute,
        Reason::MemberOf,
        Reason::DistinctInstance,
        Reason::Missing,
    ];

    /// The AWS `reason` string of a `Failure`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Cpu => "RESOURCE:CPU",
            Reason::Memory => "RESOURCE:MEMORY",
            Reason::Ports => "RESOURCE:PORTS",
            Reason::PortsUdp => "RESOURCE:PORTS_UDP",
            Reason::Gpu => "RESOURCE:GPU",
            Reason::Agent => "AGENT",
            Reason::Attribute => "ATTRIBUTE",
            Reason::MemberOf => "MemberOf placement constraint unsatisfied.",
            Reason::DistinctInstance => "DistinctInstance placement constraint unsatisfied.",
            Reason::Missing => "MISSING",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A placement that could not be made, in the shape of ECS's `Failure`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The rejecting instance's ARN; `None` when there was no candidate at all.
    pub arn: Option<String>,
    /// Why (see [`Reason`]).
    pub reason: Reason,
    /// Extra text, set only for [`Reason::Missing`].
    pub detail: Option<String>,
}

/// Why one placement went where it did, for the API and the logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// Index into `instances` of the chosen instance; `None` when nothing was feasible.
    pub chosen: Option<usize>,
    /// The winner's strategy keys, in strategy order (smaller is better).
    pub keys: Vec<u64>,
    /// How many candidates each filter rejected (non-zero counts only, filter order).
    pub rejected: Vec<(Reason, usize)>,
    /// How many candidates were feasible.
    pub feasible: usize,
}

/// The result of [`crate::place`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Index into `instances` for each placed task, in placement order.
    pub placements: Vec<usize>,
    /// Set when fewer tasks than asked were placed: each candidate instance with the reason
    /// it rejected the first placement that failed, or one `MISSING` failure.
    pub failures: Vec<Failure>,
    /// One per attempted placement, including the failed one if any.
    pub explanations: Vec<Explanation>,
}
