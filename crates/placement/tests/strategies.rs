//! Strategies order feasible instances lexicographically, then by instance id, and never
//! cause a failure.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::*;
use placement::{
    parse_constraint, parse_strategy, place, Cluster, Constraint, Field, SpreadField, Strategy,
};

fn spread_az() -> Strategy {
    Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".into()))
}

#[test]
fn binpack_memory_prefers_instance_with_least_remaining_memory() {
    let inst = vec![
        instance(1, 4096, 8192),
        instance(2, 4096, 1024),
        instance(3, 4096, 4096),
    ];
    let plan = place(
        &inst,
        &task(128, 512),
        1,
        &[],
        &[Strategy::Binpack(Field::Memory)],
        0,
    );
    assert_eq!(plan.placements, vec![1]);
    assert_eq!(plan.explanations[0].keys, vec![512]);
}

#[test]
fn binpack_fills_one_instance_before_the_next() {
    let inst = vec![instance(1, 4096, 2048), instance(2, 4096, 1536)];
    let plan = place(
        &inst,
        &task(128, 512),
        7,
        &[],
        &[Strategy::Binpack(Field::Memory)],
        0,
    );
    assert_eq!(plan.placements, vec![1, 1, 1, 0, 0, 0, 0]);
}

#[test]
fn binpack_cpu_prefers_instance_with_least_remaining_cpu() {
    let mut busy = instance(1, 4096, 4096);
    busy.used_cpu = 3072;
    let inst = vec![instance(2, 4096, 4096), busy];
    let plan = place(
        &inst,
        &task(256, 128),
        1,
        &[],
        &[Strategy::Binpack(Field::Cpu)],
        0,
    );
    assert_eq!(plan.placements, vec![1]);
}

#[test]
fn spread_az_balances_tasks_across_zones() {
    let zones = ["us-east-1a", "us-east-1b", "us-east-1c"];
    // Uneven: five instances in 1a, one each in 1b and 1c.
    let inst: Vec<_> = (0..7)
        .map(|n| in_zone(n, zones[if n < 5 { 0 } else { n as usize - 4 }]))
        .collect();
    let plan = place(&inst, &task(128, 128), 9, &[], &[spread_az()], 0);
    let by_zone = zone_counts(&inst, &plan.placements);
    assert_eq!(by_zone.values().copied().collect::<Vec<_>>(), vec![3, 3, 3]);
}

#[test]
fn spread_az_counts_existing_tasks_of_the_group() {
    let inst = vec![
        with_group(in_zone(1, "us-east-1a"), "family:web", 2),
        in_zone(2, "us-east-1b"),
        with_group(in_zone(3, "us-east-1c"), "family:other", 5),
    ];
    let plan = place(&inst, &task(128, 128), 4, &[], &[spread_az()], 0);
    let by_zone = zone_counts(&inst, &plan.placements);
    assert_eq!(by_zone.get("us-east-1a"), None);
    assert_eq!(by_zone["us-east-1b"], 2);
    assert_eq!(by_zone["us-east-1c"], 2);
}

#[test]
fn instances_without_the_spread_attribute_form_one_extra_value() {
    let inst = vec![
        in_zone(1, "us-east-1a"),
        instance(2, 4096, 4096),
        instance(3, 4096, 4096),
    ];
    let plan = place(&inst, &task(128, 128), 4, &[], &[spread_az()], 0);
    // Two values ("us-east-1a" and ""), so two tasks each; the two zone-less instances
    // share theirs.
    let c = counts(&plan.placements, 3);
    assert_eq!(c[0], 2);
    assert_eq!(c[1] + c[2], 2);
}

#[test]
fn spread_instance_id_puts_one_task_per_instance_before_doubling_up() {
    let inst: Vec<_> = (0..4).map(|n| instance(n, 4096, 4096)).collect();
    let spread = [Strategy::Spread(SpreadField::InstanceId)];
    let plan = place(&inst, &task(128, 128), 6, &[], &spread, 0);
    let c = counts(&plan.placements, 4);
    assert!(c.iter().all(|n| (1..=2).contains(n)), "{c:?}");
    assert_eq!(parse_strategy("spread", Some("host")).unwrap(), spread[0]);
}

#[test]
fn later_strategies_only_break_ties_of_earlier_ones() {
    // spread(az) first: the big-memory instance in the empty zone wins over binpack.
    let inst = vec![
        with_group(
            with_attr(instance(1, 4096, 600), "ecs.availability-zone", "a"),
            "family:web",
            1,
        ),
        with_attr(instance(2, 4096, 8192), "ecs.availability-zone", "b"),
        with_attr(instance(3, 4096, 4096), "ecs.availability-zone", "b"),
    ];
    let s = [spread_az(), Strategy::Binpack(Field::Memory)];
    let plan = place(&inst, &task(128, 512), 1, &[], &s, 0);
    assert_eq!(plan.placements, vec![2]);
    assert_eq!(plan.explanations[0].keys, vec![0, 4096 - 512]);
}

#[test]
fn equal_keys_are_broken_by_instance_id() {
    let inst = vec![
        instance(9, 4096, 4096),
        instance(3, 4096, 4096),
        instance(5, 4096, 4096),
    ];
    let plan = place(
        &inst,
        &task(128, 128),
        1,
        &[],
        &[Strategy::Binpack(Field::Memory)],
        0,
    );
    assert_eq!(plan.placements, vec![1]);
}

#[test]
fn random_is_seeded_and_varies_with_the_seed() {
    let inst: Vec<_> = (0..20).map(|n| instance(n, 4096, 4096)).collect();
    let r = [Strategy::Random];
    let a = place(&inst, &task(128, 128), 5, &[], &r, 7);
    assert_eq!(a, place(&inst, &task(128, 128), 5, &[], &r, 7));
    let firsts: std::collections::BTreeSet<usize> = (0..50)
        .map(|s| place(&inst, &task(128, 128), 1, &[], &r, s).placements[0])
        .collect();
    assert!(firsts.len() > 10, "{firsts:?}");
}

#[test]
fn strategies_never_cause_failures() {
    let inst = vec![instance(1, 4096, 1024)];
    let s = [
        spread_az(),
        Strategy::Spread(SpreadField::InstanceId),
        Strategy::Binpack(Field::Cpu),
        Strategy::Random,
    ];
    let plan = place(&inst, &task(128, 512), 2, &[], &s, 0);
    assert_eq!(plan.placements, vec![0, 0]);
    assert!(plan.failures.is_empty());
}

#[test]
fn prepared_cluster_places_like_place() {
    let zones = ["a", "b", "c"];
    let inst: Vec<_> = (0..30)
        .map(|n| {
            with_attr(
                instance(n, 4096, 1024 * (1 + i64::from(n % 4))),
                "ecs.availability-zone",
                zones[n as usize % 3],
            )
        })
        .collect();
    let c = [
        parse_constraint("memberOf", Some("attribute:ecs.availability-zone != c")).unwrap(),
        Constraint::DistinctInstance,
    ];
    let s = [spread_az(), Strategy::Binpack(Field::Memory)];
    let cluster = Cluster::new(&inst);
    for seed in 0..3 {
        assert_eq!(
            cluster.place(&task(128, 128), 12, &c, &s, seed),
            place(&inst, &task(128, 128), 12, &c, &s, seed)
        );
    }
    let owned = Cluster::from_owned(inst.clone());
    assert_eq!(
        owned.place(&task(128, 128), 3, &c, &s, 0),
        place(&inst, &task(128, 128), 3, &c, &s, 0)
    );
}
