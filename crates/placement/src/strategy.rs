//! Strategies turn a feasible candidate into a sort key; smaller is better. Selection
//! compares the keys lexicographically in the order the strategies were given, then the
//! instance id, which is how ECS applies an ordered strategy list (a later strategy only
//! breaks ties of the earlier ones). Keys are plain `u64`s so the scan compares integers.

use crate::rng::random_key;
use crate::types::{Field, SpreadField, Strategy};
use crate::view::ClusterView;

/// One strategy resolved against a view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeySource {
    /// `binpack(cpu)`: CPU units left after the placement.
    RemainingCpu,
    /// `binpack(memory)`: MiB left after the placement.
    RemainingMemory,
    /// `spread(instanceId)`: tasks of the group on the instance.
    GroupOnInstance,
    /// `spread(attribute:…)`: tasks of the group on instances sharing the value; the index
    /// is the view's spread column.
    GroupOnValue(usize),
    /// `random`: a seeded hash of (seed, placement, instance index).
    Random,
}

impl KeySource {
    /// Resolves strategies against the view's spread columns.
    pub(crate) fn compile(strategies: &[Strategy], view: &ClusterView<'_>) -> Vec<KeySource> {
        strategies
            .iter()
            .map(|s| match s {
                Strategy::Binpack(Field::Cpu) => KeySource::RemainingCpu,
                Strategy::Binpack(Field::Memory) => KeySource::RemainingMemory,
                Strategy::Spread(SpreadField::InstanceId) => KeySource::GroupOnInstance,
                Strategy::Spread(SpreadField::Attribute(name)) => KeySource::GroupOnValue(
                    view.spread
                        .iter()
                        .position(|c| c.name == *name)
                        .unwrap_or(0),
                ),
                Strategy::Random => KeySource::Random,
            })
            .collect()
    }

    /// The key of feasible live slot `c` for placement number `placement`.
    #[inline]
    pub(crate) fn key(self, view: &ClusterView<'_>, c: usize, placement: u64, seed: u64) -> u64 {
        // Feasible means remaining ≥ demand, so these never go below zero.
        let left = |rem: i64, demand: i64| u64::try_from(rem.saturating_sub(demand)).unwrap_or(0);
        match self {
            KeySource::RemainingCpu => left(view.rem_cpu[c], view.task.cpu),
            KeySource::RemainingMemory => left(view.rem_mem[c], view.task.memory),
            KeySource::GroupOnInstance => u64::from(view.group_count[c]),
            KeySource::GroupOnValue(j) => {
                let col = &view.spread[j];
                col.counts[col.values[c] as usize]
            }
            KeySource::Random => random_key(seed, placement, view.index[view.live[c]] as u64),
        }
    }
}
