//! Per-placement cost of the engine at cluster sizes from 100 to 50,000 instances, with
//! the constraint and strategies of a typical service: memberOf on instance type, spread
//! over availability zones, spread over instances, binpack on memory.
//!
//! Groups:
//! - `cold_K_per_call`: `place` on raw instances, K tasks per call, so the snapshot is
//!   prepared on every call (amortised over K placements);
//! - `prepared_K_per_call`: `Cluster::place` on a snapshot prepared once, as a scheduler
//!   placing repeatedly on one store revision would;
//! - `prepare_snapshot`: `Cluster::new` alone.
//!
//! Throughput is reported per placement (per instance for `prepare_snapshot`).

// `criterion_group!` generates an undocumented pub function.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used)] // benchmark setup may unwrap

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use placement::{
    parse_constraint, parse_strategy, place, Cluster, Constraint, Instance, Strategy, TaskRequest,
};

const TYPES: [&str; 6] = [
    "m5.large",
    "m5.xlarge",
    "c5.large",
    "r5.large",
    "m5.2xlarge",
    "t3.medium",
];
const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];
const SIZES: [usize; 4] = [100, 1_000, 10_000, 50_000];

fn cluster(n: usize) -> Vec<Instance> {
    (0..n)
        .map(|i| {
            let mut attributes = BTreeMap::new();
            for (k, v) in [
                ("ecs.availability-zone", ZONES[i % 3]),
                ("ecs.instance-type", TYPES[(i / 3) % TYPES.len()]),
                ("ecs.os-type", "linux"),
                ("ecs.cpu-architecture", "x86_64"),
                ("ecs.ami-id", "ami-0123456789abcdef0"),
                ("ecs.vpc-id", "vpc-0123456789"),
            ] {
                attributes.insert(k.to_owned(), Some(v.to_owned()));
            }
            attributes.insert(
                "com.amazonaws.ecs.capability.docker-remote-api.1.44".into(),
                None,
            );
            let id = format!(
                "{:032x}",
                (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834)
            );
            let mut groups = BTreeMap::new();
            if i % 7 == 0 {
                groups.insert("service:web".to_owned(), 1);
            }
            Instance {
                arn: format!("arn:aws:ecs:us-east-1:000000000000:container-instance/bench/{id}"),
                id,
                ec2_instance_id: format!("i-{i:017x}"),
                active: i % 50 != 49,
                agent_connected: true,
                agent_version: Some("1.80.0".into()),
                registered_at: 1.7e9,
                attributes,
                cpu: 2048,
                memory: 8192,
                used_cpu: ((i % 4) * 256) as i64,
                used_memory: ((i % 5) * 1024) as i64,
                running_tasks_count: (i % 4) as u32,
                groups,
                ..Instance::default()
            }
        })
        .collect()
}

fn setup() -> (TaskRequest, Vec<Constraint>, Vec<Strategy>) {
    let task = TaskRequest {
        cpu: 256,
        memory: 512,
        group: "service:web".into(),
        ..TaskRequest::default()
    };
    let constraints =
        vec![parse_constraint("memberOf", Some("attribute:ecs.instance-type =~ m5.*")).unwrap()];
    let strategies = vec![
        parse_strategy("spread", Some("attribute:ecs.availability-zone")).unwrap(),
        parse_strategy("spread", Some("instanceId")).unwrap(),
        parse_strategy("binpack", Some("memory")).unwrap(),
    ];
    (task, constraints, strategies)
}

fn bench(c: &mut Criterion) {
    let (task, constraints, strategies) = setup();
    for per_call in [10usize, 1] {
        let mut g = c.benchmark_group(format!("cold_{per_call}_per_call"));
        for n in SIZES {
            let instances = cluster(n);
            g.throughput(Throughput::Elements(per_call as u64));
            g.bench_with_input(BenchmarkId::from_parameter(n), &instances, |b, inst| {
                let mut seed = 0u64;
                b.iter(|| {
                    seed += 1;
                    let plan = place(
                        black_box(inst),
                        &task,
                        per_call,
                        &constraints,
                        &strategies,
                        seed,
                    );
                    assert_eq!(plan.placements.len(), per_call);
                    plan
                })
            });
        }
        g.finish();
    }
    for per_call in [10usize, 1] {
        let mut g = c.benchmark_group(format!("prepared_{per_call}_per_call"));
        for n in SIZES {
            let instances = cluster(n);
            let prepared = Cluster::new(&instances);
            g.throughput(Throughput::Elements(per_call as u64));
            g.bench_with_input(BenchmarkId::from_parameter(n), &prepared, |b, cl| {
                let mut seed = 0u64;
                b.iter(|| {
                    seed += 1;
                    let plan =
                        black_box(cl).place(&task, per_call, &constraints, &strategies, seed);
                    assert_eq!(plan.placements.len(), per_call);
                    plan
                })
            });
        }
        g.finish();
    }
    let mut g = c.benchmark_group("prepare_snapshot");
    for n in [1_000usize, 10_000] {
        let instances = cluster(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &instances, |b, inst| {
            b.iter(|| Cluster::new(black_box(inst)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
