//! Safety properties of the engine over generated clusters. Generators randomise only what
//! affects decisions: resources, ports, GPUs, zones, types, groups, status and the
//! constraint/strategy mix.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::strategy::Strategy as _;

use common::instance;
use placement::{
    parse_expression, place, Constraint, Field, Instance, Plan, SpreadField, Strategy, TaskRequest,
};

const GROUP: &str = "family:web";
const EXPRESSIONS: [&str; 6] = [
    "attribute:ecs.instance-type =~ m5.*",
    "attribute:ecs.availability-zone in [a, b]",
    "runningTasksCount < 3",
    "not(task:group == family:web)",
    "task:group == family:web or attribute:ecs.availability-zone == c",
    "attribute:stack not_exists and agentConnected == true",
];

fn arb_instance(n: u32) -> impl proptest::strategy::Strategy<Value = Instance> {
    (
        (0i64..5, 0i64..5, 0i64..3, 0i64..3),
        (
            any::<bool>(),
            any::<bool>(),
            prop::option::of(0usize..3),
            0usize..3,
        ),
        (
            prop::collection::btree_set(prop_oneof![Just(80u16), Just(443), Just(8080)], 0..2),
            prop::collection::btree_set(Just(53u16), 0..2),
        ),
        (0usize..3, 0usize..3, 0u32..3, 0u32..2, 0u8..10, 0u8..10),
    )
        .prop_map(
            move |(
                (cpu, mem, ucpu, umem),
                (tcp_reserved, _, zone, itype),
                (tcp, udp),
                (gpus, ugpus, group, other, active, agent),
            )| {
                let mut i = instance(n, cpu * 512, mem * 1024);
                i.used_cpu = ucpu * 256;
                i.used_memory = umem * 512;
                if tcp_reserved {
                    i.reserved_tcp_ports = tcp;
                } else {
                    i.used_tcp_ports = tcp;
                }
                i.used_udp_ports = udp;
                i.gpus = (0..gpus).map(|g| format!("GPU-{g}")).collect();
                i.used_gpus = (0..ugpus.min(gpus)).map(|g| format!("GPU-{g}")).collect();
                if let Some(z) = zone {
                    i.attributes.insert(
                        "ecs.availability-zone".into(),
                        Some(["a", "b", "c"][z].into()),
                    );
                }
                i.attributes.insert(
                    "ecs.instance-type".into(),
                    Some(["m5.large", "c5.large", "m5.xlarge"][itype].into()),
                );
                if group > 0 {
                    i.groups.insert(GROUP.into(), group);
                }
                if other > 0 {
                    i.groups.insert("family:db".into(), other);
                }
                i.running_tasks_count = group + other;
                i.active = active != 0;
                i.agent_connected = agent != 0;
                i
            },
        )
}

fn arb_cluster() -> impl proptest::strategy::Strategy<Value = Vec<Instance>> {
    (0usize..12).prop_flat_map(|n| (0..n as u32).map(arb_instance).collect::<Vec<_>>())
}

fn arb_task() -> impl proptest::strategy::Strategy<Value = TaskRequest> {
    (
        0usize..4,
        0usize..4,
        any::<bool>(),
        any::<bool>(),
        0u32..2,
        any::<bool>(),
    )
        .prop_map(|(cpu, mem, tcp, udp, gpus, needs_attr)| TaskRequest {
            cpu: [0, 128, 256, 1024][cpu],
            memory: [128, 512, 1024, 2048][mem],
            tcp_ports: if tcp { vec![8080] } else { vec![] },
            udp_ports: if udp { vec![53] } else { vec![] },
            gpus,
            group: GROUP.into(),
            required_attributes: if needs_attr {
                vec![("ecs.availability-zone".into(), None)]
            } else {
                vec![]
            },
        })
}

fn arb_constraints() -> impl proptest::strategy::Strategy<Value = Vec<Constraint>> {
    (
        any::<bool>(),
        prop::collection::vec(0usize..EXPRESSIONS.len(), 0..3),
    )
        .prop_map(|(distinct, exprs)| {
            let mut c: Vec<Constraint> = exprs
                .into_iter()
                .filter_map(|e| {
                    parse_expression(EXPRESSIONS[e])
                        .ok()
                        .map(Constraint::MemberOf)
                })
                .collect();
            if distinct {
                c.push(Constraint::DistinctInstance);
            }
            c
        })
}

fn arb_strategies() -> impl proptest::strategy::Strategy<Value = Vec<Strategy>> {
    prop::collection::vec(
        prop_oneof![
            Just(Strategy::Binpack(Field::Cpu)),
            Just(Strategy::Binpack(Field::Memory)),
            Just(Strategy::Spread(SpreadField::InstanceId)),
            Just(Strategy::Spread(SpreadField::Attribute(
                "ecs.availability-zone".into()
            ))),
            Just(Strategy::Random),
        ],
        0..4,
    )
}

/// The instance as the plan leaves it after `k` placements of `task` on it.
fn with_planned(i: &Instance, task: &TaskRequest, k: u32) -> Instance {
    let mut i = i.clone();
    i.used_cpu += task.cpu * i64::from(k);
    i.used_memory += task.memory * i64::from(k);
    i.running_tasks_count += k;
    if k > 0 {
        *i.groups.entry(task.group.clone()).or_insert(0) += k;
        i.used_tcp_ports.extend(task.tcp_ports.iter().copied());
        i.used_udp_ports.extend(task.udp_ports.iter().copied());
    }
    i
}

fn free_gpus(i: &Instance) -> i64 {
    i.gpus.iter().filter(|g| !i.used_gpus.contains(*g)).count() as i64
}

fn eligible(i: &Instance, task: &TaskRequest) -> bool {
    i.active
        && i.agent_connected
        && task
            .required_attributes
            .iter()
            .all(|(n, _)| i.attributes.contains_key(n))
}

/// How many copies of the task fit on the instance, ignoring constraints.
fn capacity(i: &Instance, task: &TaskRequest) -> usize {
    if !eligible(i, task) {
        return 0;
    }
    let fits = |rem: i64, need: i64| {
        if need == 0 {
            if rem >= 0 {
                usize::MAX
            } else {
                0
            }
        } else {
            (rem.max(-1) / need).max(0) as usize
        }
    };
    let mut k = fits(i.cpu - i.used_cpu, task.cpu).min(fits(i.memory - i.used_memory, task.memory));
    if rem_negative(i) {
        k = 0;
    }
    if task.gpus > 0 {
        k = k.min((free_gpus(i) / i64::from(task.gpus)) as usize);
    }
    let taken =
        |want: &[u16], a: &std::collections::BTreeSet<u16>, b: &std::collections::BTreeSet<u16>| {
            want.iter().any(|p| a.contains(p) || b.contains(p))
        };
    if !task.tcp_ports.is_empty() || !task.udp_ports.is_empty() {
        if taken(&task.tcp_ports, &i.reserved_tcp_ports, &i.used_tcp_ports)
            || taken(&task.udp_ports, &i.reserved_udp_ports, &i.used_udp_ports)
        {
            k = 0;
        }
        k = k.min(1);
    }
    k
}

fn rem_negative(i: &Instance) -> bool {
    i.cpu - i.used_cpu < 0 || i.memory - i.used_memory < 0
}

fn per_instance(plan: &Plan, n: usize) -> Vec<u32> {
    let mut c = vec![0u32; n];
    for p in &plan.placements {
        c[*p] += 1;
    }
    c
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn never_overcommits_cpu_memory_ports_or_gpus(
        inst in arb_cluster(), task in arb_task(), count in 1usize..10,
        c in arb_constraints(), s in arb_strategies(), seed in any::<u64>(),
    ) {
        let plan = place(&inst, &task, count, &c, &s, seed);
        for (i, k) in inst.iter().zip(per_instance(&plan, inst.len())) {
            if k == 0 { continue; }
            let after = with_planned(i, &task, k);
            prop_assert!(after.used_cpu <= i.cpu, "cpu overcommitted");
            prop_assert!(after.used_memory <= i.memory, "memory overcommitted");
            prop_assert!(i64::from(task.gpus) * i64::from(k) <= free_gpus(i), "gpus overcommitted");
            if !task.tcp_ports.is_empty() || !task.udp_ports.is_empty() {
                prop_assert_eq!(k, 1, "a static port was bound twice");
                for p in &task.tcp_ports {
                    prop_assert!(!i.reserved_tcp_ports.contains(p) && !i.used_tcp_ports.contains(p));
                }
                for p in &task.udp_ports {
                    prop_assert!(!i.reserved_udp_ports.contains(p) && !i.used_udp_ports.contains(p));
                }
            }
        }
    }

    #[test]
    fn every_placement_satisfies_every_constraint_at_that_moment(
        inst in arb_cluster(), task in arb_task(), count in 1usize..10,
        c in arb_constraints(), s in arb_strategies(), seed in any::<u64>(),
    ) {
        let plan = place(&inst, &task, count, &c, &s, seed);
        let mut planned: BTreeMap<usize, u32> = BTreeMap::new();
        for &p in &plan.placements {
            let k = planned.get(&p).copied().unwrap_or(0);
            let now = with_planned(&inst[p], &task, k);
            for constraint in &c {
                match constraint {
                    Constraint::DistinctInstance => {
                        prop_assert_eq!(now.groups.get(GROUP).copied().unwrap_or(0), 0, "distinctInstance violated");
                    }
                    Constraint::MemberOf(e) => prop_assert!(e.matches(&now), "memberOf({}) violated", e),
                }
            }
            *planned.entry(p).or_insert(0) += 1;
        }
    }

    #[test]
    fn never_places_on_inactive_disconnected_or_unattributed_instances(
        inst in arb_cluster(), task in arb_task(), count in 1usize..10,
        s in arb_strategies(), seed in any::<u64>(),
    ) {
        let plan = place(&inst, &task, count, &[], &s, seed);
        for &p in &plan.placements {
            prop_assert!(eligible(&inst[p], &task));
        }
    }

    #[test]
    fn same_seed_and_inputs_give_the_same_plan(
        inst in arb_cluster(), task in arb_task(), count in 1usize..10,
        c in arb_constraints(), s in arb_strategies(), seed in any::<u64>(),
    ) {
        prop_assert_eq!(place(&inst, &task, count, &c, &s, seed), place(&inst, &task, count, &c, &s, seed));
    }

    #[test]
    fn without_constraints_places_min_of_count_and_capacity(
        inst in arb_cluster(), task in arb_task(), count in 1usize..10,
        s in arb_strategies(), seed in any::<u64>(),
    ) {
        let plan = place(&inst, &task, count, &[], &s, seed);
        let cap = inst.iter().map(|i| capacity(i, &task)).fold(0usize, usize::saturating_add);
        prop_assert_eq!(plan.placements.len(), count.min(cap));
        prop_assert_eq!(plan.failures.is_empty(), plan.placements.len() == count);
    }

    #[test]
    fn failures_name_every_active_instance_once_when_a_placement_fails(
        inst in arb_cluster(), task in arb_task(), count in 1usize..10,
        c in arb_constraints(), s in arb_strategies(), seed in any::<u64>(),
    ) {
        let plan = place(&inst, &task, count, &c, &s, seed);
        if plan.placements.len() < count {
            let active = inst.iter().filter(|i| i.active).count();
            prop_assert_eq!(plan.failures.len(), active.max(1));
        } else {
            prop_assert!(plan.failures.is_empty());
        }
    }
}

proptest! {
    #[test]
    fn extreme_numbers_never_panic(
        cpu in any::<i64>(), memory in any::<i64>(), used in any::<i64>(),
        demand in any::<i64>(), gpus in any::<u32>(), running in any::<u32>(), count in 0usize..4,
    ) {
        let mut i = instance(1, cpu, memory);
        i.used_cpu = used;
        i.used_memory = used;
        i.running_tasks_count = running;
        let task = TaskRequest { cpu: demand, memory: demand, gpus, group: GROUP.into(), ..TaskRequest::default() };
        let c = [Constraint::MemberOf(parse_expression("runningTasksCount > 3").unwrap())];
        let s = [Strategy::Binpack(Field::Cpu), Strategy::Binpack(Field::Memory), Strategy::Random];
        let _ = place(&[i.clone(), i], &task, count, &c, &s, 0);
    }
}
