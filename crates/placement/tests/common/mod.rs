//! Builders shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;

use placement::{Instance, TaskRequest};

/// An ACTIVE, connected instance with the given id number and free resources.
pub fn instance(n: u32, cpu: i64, memory: i64) -> Instance {
    let id = format!("{n:032x}");
    Instance {
        arn: format!("arn:aws:ecs:us-east-1:000000000000:container-instance/test/{id}"),
        id,
        ec2_instance_id: format!("i-{n:08x}"),
        active: true,
        agent_connected: true,
        agent_version: Some("1.80.0".into()),
        registered_at: 1.7e9,
        cpu,
        memory,
        ..Instance::default()
    }
}

/// `instance` in an availability zone.
pub fn in_zone(n: u32, zone: &str) -> Instance {
    with_attr(instance(n, 4096, 16384), "ecs.availability-zone", zone)
}

pub fn with_attr(mut i: Instance, name: &str, value: &str) -> Instance {
    i.attributes.insert(name.to_owned(), Some(value.to_owned()));
    i
}

pub fn with_group(mut i: Instance, group: &str, count: u32) -> Instance {
    i.groups.insert(group.to_owned(), count);
    i.running_tasks_count += count;
    i
}

/// A small task of group `family:web`.
pub fn task(cpu: i64, memory: i64) -> TaskRequest {
    TaskRequest {
        cpu,
        memory,
        group: "family:web".into(),
        ..TaskRequest::default()
    }
}

pub fn counts(placements: &[usize], n: usize) -> Vec<usize> {
    let mut c = vec![0; n];
    for p in placements {
        c[*p] += 1;
    }
    c
}

pub fn zone_counts(instances: &[Instance], placements: &[usize]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for p in placements {
        let z = instances[*p].attributes["ecs.availability-zone"]
            .clone()
            .unwrap_or_default();
        *m.entry(z).or_insert(0) += 1;
    }
    m
}
