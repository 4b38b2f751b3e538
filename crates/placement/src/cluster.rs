//! A prepared snapshot of the cluster's instances: everything that does not depend on the
//! task being placed, resolved once into columns indexed by candidate (ACTIVE instance).
//!
//! Building it costs `O(n · a)` hashing for `n` instances with `a` attributes each, and it
//! walks every instance's heap data (ids, attribute maps, port sets). That walk, not the
//! placement scan, dominates a cold `place` call on a large cluster, so a caller placing
//! repeatedly on an unchanged snapshot (a service scheduler tick, a batch of RunTask calls
//! between store revisions) builds a `Cluster` once and calls [`Cluster::place`] on it.
//! Each call then costs `O(n)` over compact arrays plus one scan per placement.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::expression::Columns;
use crate::types::{Constraint, Instance, Plan, Strategy, TaskRequest};

/// One attribute across all candidates.
pub(crate) struct AttributeColumn {
    /// Value id per candidate (0: lacks the attribute, 1: has it without a value).
    pub(crate) ids: Vec<u32>,
    /// Value per id.
    pub(crate) dict: Vec<Option<String>>,
    /// Id per value.
    lookup: FastMap<String, u32>,
}

/// A snapshot of container instances prepared for placement. See the module docs.
pub struct Cluster<'a> {
    instances: Cow<'a, [Instance]>,
    /// Instance index of each candidate.
    pub(crate) index: Vec<usize>,
    pub(crate) rem_cpu: Vec<i64>,
    pub(crate) rem_mem: Vec<i64>,
    pub(crate) free_gpus: Vec<u32>,
    pub(crate) agent_connected: Vec<bool>,
    /// Rank of each candidate's instance id among all candidates (then its position, for
    /// duplicate ids): the final tie-breaker as one integer compare.
    pub(crate) id_rank: Vec<u32>,
    pub(crate) attributes: FastMap<String, AttributeColumn>,
    /// Candidates hosting tasks of each group, with their counts.
    pub(crate) groups: FastMap<String, Vec<(usize, u32)>>,
    /// Candidates on which each TCP port is reserved or used.
    pub(crate) tcp_users: FastMap<u16, Vec<usize>>,
    /// Candidates on which each UDP port is reserved or used.
    pub(crate) udp_users: FastMap<u16, Vec<usize>>,
}

/// Ranks candidates by instance id, then position. Sorting on a 16-byte big-endian prefix
/// (which orders like the string) keeps most comparisons to one integer compare.
fn id_ranks(instances: &[Instance], index: &[usize]) -> Vec<u32> {
    // Callers usually keep instances in id order (the store's key order): then the rank
    // is the position, and the sort is skipped.
    if index
        .windows(2)
        .all(|w| instances[w[0]].id <= instances[w[1]].id)
    {
        return (0..index.len())
            .map(|r| u32::try_from(r).unwrap_or(u32::MAX))
            .collect();
    }
    let prefixes: Vec<u128> = index.iter().map(|&i| id_prefix(&instances[i].id)).collect();
    let mut order: Vec<usize> = (0..index.len()).collect();
    order.sort_unstable_by(|&a, &b| {
        prefixes[a]
            .cmp(&prefixes[b])
            .then_with(|| instances[index[a]].id.cmp(&instances[index[b]].id))
            .then(a.cmp(&b))
    });
    let mut rank = vec![0u32; index.len()];
    for (r, c) in order.into_iter().enumerate() {
        rank[c] = u32::try_from(r).unwrap_or(u32::MAX);
    }
    rank
}

fn id_prefix(id: &str) -> u128 {
    let mut buf = [0u8; 16];
    let b = id.as_bytes();
    let n = b.len().min(16);
    buf[..n].copy_from_slice(&b[..n]);
    u128::from_be_bytes(buf)
}

impl<'a> Cluster<'a> {
    /// Prepares a borrowed slice of instances.
    pub fn new(instances: &'a [Instance]) -> Cluster<'a> {
        Self::build(Cow::Borrowed(instances))
    }

    /// Prepares an owned list, for a snapshot kept across calls.
    pub fn from_owned(instances: Vec<Instance>) -> Cluster<'static> {
        Cluster::build(Cow::Owned(instances))
    }

    /// The instances, in the order given; plan indices point into this slice.
    pub fn instances(&self) -> &[Instance] {
        &self.instances
    }

    /// Places `count` copies of `task`; see [`crate::place`], which this is with the
    /// snapshot already prepared.
    pub fn place(
        &self,
        task: &TaskRequest,
        count: usize,
        constraints: &[Constraint],
        strategies: &[Strategy],
        seed: u64,
    ) -> Plan {
        crate::engine::place_on(self, task, count, constraints, strategies, seed)
    }

    fn build(instances: Cow<'a, [Instance]>) -> Cluster<'a> {
        Self::build_with(instances, None, None)
    }

    /// Builds the snapshot, interning every attribute, or only `names` when the caller
    /// knows which ones the placement reads (a one-shot [`crate::place`]).
    pub(crate) fn build_with(
        instances: Cow<'a, [Instance]>,
        names: Option<&[&str]>,
        ports: Option<(&[u16], &[u16])>,
    ) -> Cluster<'a> {
        let index: Vec<usize> = instances
            .iter()
            .enumerate()
            .filter(|(_, i)| i.active)
            .map(|(i, _)| i)
            .collect();
        let n = index.len();
        let mut cl = Cluster {
            rem_cpu: Vec::with_capacity(n),
            rem_mem: Vec::with_capacity(n),
            free_gpus: Vec::with_capacity(n),
            agent_connected: Vec::with_capacity(n),
            id_rank: Vec::new(),
            attributes: FastMap::default(),
            groups: FastMap::default(),
            tcp_users: FastMap::default(),
            udp_users: FastMap::default(),
            index: Vec::new(),
            instances: Cow::Borrowed(&[]),
        };
        for (c, &i) in index.iter().enumerate() {
            let inst = &instances[i];
            cl.rem_cpu.push(inst.cpu.saturating_sub(inst.used_cpu));
            cl.rem_mem
                .push(inst.memory.saturating_sub(inst.used_memory));
            let free = if inst.gpus.is_empty() {
                0
            } else {
                inst.gpus
                    .iter()
                    .filter(|g| !inst.used_gpus.contains(*g))
                    .count()
            };
            cl.free_gpus.push(u32::try_from(free).unwrap_or(u32::MAX));
            cl.agent_connected.push(inst.agent_connected);
            match names {
                None => {
                    for (name, value) in &inst.attributes {
                        cl.intern(n, c, name, value.as_deref());
                    }
                }
                Some(names) => {
                    for name in names {
                        if let Some(value) = inst.attributes.get(*name) {
                            cl.intern(n, c, name, value.as_deref());
                        }
                    }
                }
            }
            for (group, count) in &inst.groups {
                if *count == 0 {
                    continue;
                }
                match cl.groups.get_mut(group.as_str()) {
                    Some(list) => list.push((c, *count)),
                    None => {
                        cl.groups.insert(group.clone(), vec![(c, *count)]);
                    }
                }
            }
            match ports {
                // A one-off snapshot only needs the ports its task asks for: walking every
                // instance's reserved ports would cost more than the placement itself.
                Some((tcp, udp)) => {
                    for p in tcp {
                        if inst.reserved_tcp_ports.contains(p) || inst.used_tcp_ports.contains(p) {
                            cl.tcp_users.entry(*p).or_default().push(c);
                        }
                    }
                    for p in udp {
                        if inst.reserved_udp_ports.contains(p) || inst.used_udp_ports.contains(p) {
                            cl.udp_users.entry(*p).or_default().push(c);
                        }
                    }
                }
                None => {
                    for p in inst.reserved_tcp_ports.union(&inst.used_tcp_ports) {
                        cl.tcp_users.entry(*p).or_default().push(c);
                    }
                    for p in inst.reserved_udp_ports.union(&inst.used_udp_ports) {
                        cl.udp_users.entry(*p).or_default().push(c);
                    }
                }
            }
        }
        cl.id_rank = id_ranks(&instances, &index);
        cl.index = index;
        cl.instances = instances;
        cl
    }

    /// Records that candidate `c` (of `n`) has attribute `name` with `value`.
    fn intern(&mut self, n: usize, c: usize, name: &str, value: Option<&str>) {
        let column = match self.attributes.get_mut(name) {
            Some(col) => col,
            None => self
                .attributes
                .entry(name.to_owned())
                .or_insert_with(|| AttributeColumn {
                    ids: vec![0; n],
                    dict: vec![None, None],
                    lookup: FastMap::default(),
                }),
        };
        column.ids[c] = match value {
            // An empty value reads like no value (ECS does not allow empty ones).
            None | Some("") => 1,
            Some(v) => match column.lookup.get(v) {
                Some(id) => *id,
                None => {
                    let id = u32::try_from(column.dict.len()).unwrap_or(u32::MAX);
                    column.dict.push(Some(v.to_owned()));
                    column.lookup.insert(v.to_owned(), id);
                    id
                }
            },
        };
    }
}

/// A `HashMap` with a multiply-rotate hasher (the Fx hash used inside rustc). SipHash's
/// flooding resistance buys nothing here: keys are attribute names and values of the
/// operator's own instances, bounded by ECS's limits, and the map lives for one snapshot.
/// Hashing short strings is most of the cost of preparing a snapshot, and this is several
/// times cheaper.
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// See [`FastMap`].
#[derive(Default)]
pub(crate) struct FastHasher(u64);

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl Columns for Cluster<'_> {
    fn len(&self) -> usize {
        self.index.len()
    }
    fn instance(&self, c: usize) -> &Instance {
        &self.instances[self.index[c]]
    }
    fn attribute(&self, name: &str) -> Option<(&[u32], &[Option<String>])> {
        self.attributes
            .get(name)
            .map(|col| (col.ids.as_slice(), col.dict.as_slice()))
    }
}
