//! Each filter rejects for its own reason, in AWS's order, and reports it as a failure.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::*;
use placement::{parse_constraint, place, Constraint, Failure, Reason, NO_INSTANCES_DETAIL};

fn only_failure_reason(plan: &placement::Plan) -> Vec<Reason> {
    plan.failures.iter().map(|f| f.reason).collect()
}

#[test]
fn memory_shortage_reports_resource_memory() {
    let inst = vec![instance(1, 4096, 256)];
    let plan = place(&inst, &task(128, 512), 1, &[], &[], 0);
    assert!(plan.placements.is_empty());
    assert_eq!(
        plan.failures,
        vec![Failure {
            arn: Some(inst[0].arn.clone()),
            reason: Reason::Memory,
            detail: None
        }]
    );
    assert_eq!(plan.failures[0].reason.as_str(), "RESOURCE:MEMORY");
}

#[test]
fn cpu_shortage_reports_resource_cpu_before_memory() {
    let inst = vec![instance(1, 100, 100)];
    let plan = place(&inst, &task(128, 512), 1, &[], &[], 0);
    assert_eq!(only_failure_reason(&plan), vec![Reason::Cpu]);
}

#[test]
fn used_resources_count_against_the_instance() {
    let mut i = instance(1, 1024, 1024);
    i.used_cpu = 1000;
    let plan = place(&[i], &task(128, 128), 1, &[], &[], 0);
    assert_eq!(only_failure_reason(&plan), vec![Reason::Cpu]);
}

#[test]
fn taken_tcp_port_reports_resource_ports() {
    let mut reserved = instance(1, 4096, 4096);
    reserved.reserved_tcp_ports.insert(22);
    let mut used = instance(2, 4096, 4096);
    used.used_tcp_ports.insert(80);
    let mut t = task(128, 128);
    t.tcp_ports = vec![80, 22];
    let plan = place(&[reserved, used], &t, 1, &[], &[], 0);
    assert_eq!(
        only_failure_reason(&plan),
        vec![Reason::Ports, Reason::Ports]
    );
    assert_eq!(Reason::Ports.as_str(), "RESOURCE:PORTS");
}

#[test]
fn taken_udp_port_reports_resource_ports_udp_and_tcp_does_not_conflict() {
    let mut i = instance(1, 4096, 4096);
    i.used_udp_ports.insert(53);
    let mut t = task(128, 128);
    t.tcp_ports = vec![53];
    assert_eq!(place(&[i.clone()], &t, 1, &[], &[], 0).placements, vec![0]);
    t.udp_ports = vec![53];
    let plan = place(&[i], &t, 1, &[], &[], 0);
    assert_eq!(only_failure_reason(&plan), vec![Reason::PortsUdp]);
    assert_eq!(Reason::PortsUdp.as_str(), "RESOURCE:PORTS_UDP");
}

#[test]
fn static_port_tasks_never_share_an_instance_within_a_plan() {
    let inst = vec![instance(1, 4096, 4096), instance(2, 4096, 4096)];
    let mut t = task(128, 128);
    t.tcp_ports = vec![8080];
    let plan = place(&inst, &t, 3, &[], &[], 0);
    assert_eq!(plan.placements.len(), 2);
    assert_ne!(plan.placements[0], plan.placements[1]);
    assert_eq!(
        only_failure_reason(&plan),
        vec![Reason::Ports, Reason::Ports]
    );
}

#[test]
fn gpu_shortage_reports_resource_gpu() {
    let mut i = instance(1, 4096, 4096);
    i.gpus = vec!["GPU-a".into(), "GPU-b".into()];
    i.used_gpus.insert("GPU-a".into());
    let mut t = task(128, 128);
    t.gpus = 1;
    let plan = place(&[i], &t, 2, &[], &[], 0);
    assert_eq!(plan.placements, vec![0]);
    assert_eq!(only_failure_reason(&plan), vec![Reason::Gpu]);
}

#[test]
fn disconnected_agent_reports_agent_after_resources() {
    let mut ok_resources = instance(1, 4096, 4096);
    ok_resources.agent_connected = false;
    let mut short = instance(2, 4096, 64);
    short.agent_connected = false;
    let plan = place(&[ok_resources, short], &task(128, 128), 1, &[], &[], 0);
    assert_eq!(
        only_failure_reason(&plan),
        vec![Reason::Agent, Reason::Memory]
    );
}

#[test]
fn missing_required_attribute_reports_attribute() {
    let with = with_attr(
        instance(1, 4096, 4096),
        "com.amazonaws.ecs.capability.ecr-auth",
        "",
    );
    let other_value = with_attr(instance(2, 4096, 4096), "ecs.os-type", "windows");
    let without = instance(3, 4096, 4096);
    let mut t = task(128, 128);
    t.required_attributes = vec![("com.amazonaws.ecs.capability.ecr-auth".into(), None)];
    let plan = place(&[without.clone(), with.clone()], &t, 1, &[], &[], 0);
    assert_eq!(plan.placements, vec![1]);
    t.required_attributes = vec![("ecs.os-type".into(), Some("linux".into()))];
    let plan = place(&[other_value, without], &t, 1, &[], &[], 0);
    assert_eq!(
        only_failure_reason(&plan),
        vec![Reason::Attribute, Reason::Attribute]
    );
}

#[test]
fn member_of_rejects_non_matching_instances() {
    let inst = vec![
        with_attr(instance(1, 4096, 4096), "ecs.instance-type", "t2.small"),
        with_attr(instance(2, 4096, 4096), "ecs.instance-type", "m5.large"),
    ];
    let c = [parse_constraint("memberOf", Some("attribute:ecs.instance-type =~ m5.*")).unwrap()];
    let plan = place(&inst, &task(128, 128), 1, &c, &[], 0);
    assert_eq!(plan.placements, vec![1]);
    let c =
        [parse_constraint("memberOf", Some("attribute:ecs.instance-type == c5.large")).unwrap()];
    let plan = place(&inst, &task(128, 128), 1, &c, &[], 0);
    assert_eq!(
        only_failure_reason(&plan),
        vec![Reason::MemberOf, Reason::MemberOf]
    );
    assert_eq!(
        Reason::MemberOf.as_str(),
        "MemberOf placement constraint unsatisfied."
    );
}

#[test]
fn member_of_on_running_tasks_count_sees_earlier_placements() {
    let inst = vec![instance(1, 4096, 4096), instance(2, 4096, 4096)];
    let c = [parse_constraint("memberOf", Some("runningTasksCount < 2")).unwrap()];
    let plan = place(&inst, &task(128, 128), 5, &c, &[], 0);
    assert_eq!(counts(&plan.placements, 2), vec![2, 2]);
    assert_eq!(
        only_failure_reason(&plan),
        vec![Reason::MemberOf, Reason::MemberOf]
    );
}

#[test]
fn task_group_affinity_follows_the_groups_own_first_placement() {
    // Only instances already hosting the group qualify; the plan's own tasks count too.
    let inst = vec![
        instance(1, 4096, 4096),
        with_group(instance(2, 4096, 4096), "family:web", 1),
    ];
    let c = [parse_constraint("memberOf", Some("task:group == family:web")).unwrap()];
    let plan = place(&inst, &task(128, 128), 3, &c, &[], 0);
    assert_eq!(plan.placements, vec![1, 1, 1]);
    let anti = [parse_constraint("memberOf", Some("not(task:group == family:web)")).unwrap()];
    let plan = place(&inst, &task(128, 128), 2, &anti, &[], 0);
    assert_eq!(plan.placements, vec![0]);
    assert_eq!(
        only_failure_reason(&plan),
        vec![Reason::MemberOf, Reason::MemberOf]
    );
}

#[test]
fn distinct_instance_never_places_two_of_a_group_on_one_instance() {
    let inst = vec![
        instance(1, 4096, 4096),
        with_group(instance(2, 4096, 4096), "family:web", 1),
        with_group(instance(3, 4096, 4096), "family:other", 1),
    ];
    let plan = place(
        &inst,
        &task(128, 128),
        3,
        &[Constraint::DistinctInstance],
        &[],
        0,
    );
    let mut placed = plan.placements.clone();
    placed.sort_unstable();
    assert_eq!(placed, vec![0, 2]);
    assert_eq!(
        only_failure_reason(&plan),
        vec![Reason::DistinctInstance; 3]
    );
    assert_eq!(
        Reason::DistinctInstance.as_str(),
        "DistinctInstance placement constraint unsatisfied."
    );
}

#[test]
fn filters_report_the_first_rejecting_reason_in_aws_order() {
    let mut i = instance(1, 64, 64);
    i.agent_connected = false;
    let c = [parse_constraint("memberOf", Some("attribute:x == y")).unwrap()];
    let plan = place(&[i.clone()], &task(128, 128), 1, &c, &[], 0);
    assert_eq!(only_failure_reason(&plan), vec![Reason::Cpu]);
    i.cpu = 4096;
    i.memory = 4096;
    let plan = place(&[i.clone()], &task(128, 128), 1, &c, &[], 0);
    assert_eq!(only_failure_reason(&plan), vec![Reason::Agent]);
    i.agent_connected = true;
    let plan = place(&[i], &task(128, 128), 1, &c, &[], 0);
    assert_eq!(only_failure_reason(&plan), vec![Reason::MemberOf]);
}

#[test]
fn inactive_and_draining_instances_are_never_candidates_nor_reported() {
    let mut draining = instance(1, 4096, 4096);
    draining.active = false;
    let short = instance(2, 64, 64);
    let plan = place(&[draining.clone(), short], &task(128, 128), 1, &[], &[], 0);
    assert_eq!(plan.failures.len(), 1);
    assert_eq!(plan.failures[0].arn.as_deref(), Some(plan_arn(2).as_str()));
    let plan = place(&[draining], &task(128, 128), 1, &[], &[], 0);
    assert_eq!(plan.failures[0].reason, Reason::Missing);
}

fn plan_arn(n: u32) -> String {
    instance(n, 0, 0).arn
}

#[test]
fn empty_cluster_reports_one_missing_failure() {
    let plan = place(&[], &task(128, 128), 2, &[], &[], 0);
    assert_eq!(
        plan.failures,
        vec![Failure {
            arn: None,
            reason: Reason::Missing,
            detail: Some(NO_INSTANCES_DETAIL.to_owned()),
        }]
    );
    assert_eq!(
        NO_INSTANCES_DETAIL,
        "No Container Instances were found in your cluster."
    );
    assert_eq!(Reason::Missing.as_str(), "MISSING");
}

#[test]
fn partial_placement_reports_failures_for_the_placement_that_failed() {
    let inst = vec![instance(1, 4096, 1024), instance(2, 4096, 512)];
    let plan = place(&inst, &task(128, 512), 5, &[], &[], 0);
    assert_eq!(plan.placements.len(), 3);
    assert_eq!(
        only_failure_reason(&plan),
        vec![Reason::Memory, Reason::Memory]
    );
    assert_eq!(plan.explanations.len(), 4);
    assert_eq!(plan.explanations[3].chosen, None);
    assert_eq!(plan.explanations[3].rejected, vec![(Reason::Memory, 2)]);
}

#[test]
fn explanation_counts_rejections_per_reason_and_names_the_winner() {
    let mut off = instance(1, 4096, 4096);
    off.agent_connected = false;
    let inst = vec![off, instance(2, 64, 4096), instance(3, 4096, 4096)];
    let plan = place(
        &inst,
        &task(128, 128),
        1,
        &[],
        &[placement::Strategy::Binpack(placement::Field::Memory)],
        0,
    );
    let e = &plan.explanations[0];
    assert_eq!(e.chosen, Some(2));
    assert_eq!(e.feasible, 1);
    assert_eq!(e.rejected, vec![(Reason::Cpu, 1), (Reason::Agent, 1)]);
    assert_eq!(e.keys, vec![4096 - 128]);
}

#[test]
fn zero_count_places_nothing_and_reports_nothing() {
    let plan = place(&[], &task(1, 1), 0, &[], &[], 0);
    assert_eq!(plan, placement::Plan::default());
}
