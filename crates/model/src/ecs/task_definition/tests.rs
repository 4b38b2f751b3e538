use super::*;
use serde_json::json;

fn req(v: serde_json::Value) -> RegisterTaskDefinitionRequest {
    serde_json::from_value(v).expect("test request parses")
}

fn reg() -> Registration<'static> {
    Registration {
        revision: 1,
        arn: "arn:aws:ecs:us-east-1:0:task-definition/f:1".into(),
        now: 1.0,
        registered_by: "arn:aws:iam::0:root",
    }
}

fn err(v: serde_json::Value) -> String {
    match compute_task_definition(&req(v), &reg()) {
        Err(e) => e.0,
        Ok(_) => panic!("expected a refusal"),
    }
}

#[test]
fn minimal_ec2_definition_gets_ecs_defaults() {
    let td = compute_task_definition(
        &req(json!({"family": "web", "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 64}]})),
        &reg(),
    )
    .expect("valid");
    let c = &td.container_definitions.as_ref().expect("containers")[0];
    assert_eq!(c.essential, Some(true));
    assert_eq!(c.cpu, Some(0));
    assert_eq!(c.port_mappings.as_deref(), Some(&[][..]));
    assert_eq!(td.status, Some(TaskDefinitionStatus::Active));
    assert_eq!(td.compatibilities, Some(vec![Compatibility::Ec2]));
}

#[test]
fn ec2_container_without_memory_is_refused_unless_task_memory_is_set() {
    let m = err(json!({"family": "f", "containerDefinitions": [{"name": "a", "image": "i"}]}));
    assert!(
        m.contains("At least one of 'memory' or 'memoryReservation'"),
        "{m}"
    );
    let ok = req(
        json!({"family": "f", "memory": "512", "containerDefinitions": [{"name": "a", "image": "i"}]}),
    );
    assert!(compute_task_definition(&ok, &reg()).is_ok());
}

#[test]
fn memory_must_exceed_memory_reservation() {
    let m = err(
        json!({"family": "f", "containerDefinitions": [{"name": "a", "image": "i", "memory": 64, "memoryReservation": 64}]}),
    );
    assert!(
        m.contains("'memory' must be greater than 'memoryReservation'"),
        "{m}"
    );
}

#[test]
fn awsvpc_host_port_must_match_container_port() {
    let m = err(
        json!({"family": "f", "networkMode": "awsvpc", "containerDefinitions": [{"name": "a", "image": "i", "memory": 64, "portMappings": [{"containerPort": 80, "hostPort": 8080}]}]}),
    );
    assert!(m.contains("must match"), "{m}");
}

#[test]
fn fargate_requires_awsvpc_and_a_valid_size() {
    let base = |cpu: &str, mem: &str, mode: &str| json!({"family": "f", "requiresCompatibilities": ["FARGATE"], "networkMode": mode, "cpu": cpu, "memory": mem, "containerDefinitions": [{"name": "a", "image": "i"}]});
    assert!(err(base("256", "512", "bridge")).contains("awsvpc"));
    assert!(err(base("256", "4096", "awsvpc")).contains("No Fargate configuration exists"));
    let td =
        compute_task_definition(&req(base("1 vCPU", "2 GB", "awsvpc")), &reg()).expect("valid");
    assert_eq!(td.cpu.as_deref(), Some("1024"));
    assert_eq!(td.memory.as_deref(), Some("2048"));
    assert!(td
        .compatibilities
        .expect("set")
        .contains(&Compatibility::Fargate));
}

#[test]
fn duplicate_container_names_are_refused() {
    let m = err(
        json!({"family": "f", "containerDefinitions": [{"name": "a", "image": "i", "memory": 8}, {"name": "a", "image": "i", "memory": 8}]}),
    );
    assert!(m.contains("unique"), "{m}");
}

#[test]
fn family_with_invalid_characters_is_refused() {
    assert!(err(
        json!({"family": "a b", "containerDefinitions": [{"name": "a", "image": "i", "memory": 8}]})
    )
    .contains("Family"));
}

#[test]
fn a_definition_needs_an_essential_container() {
    let m = err(
        json!({"family": "f", "containerDefinitions": [{"name": "a", "image": "i", "memory": 8, "essential": false}]}),
    );
    assert!(m.contains("essential"), "{m}");
}

#[test]
fn depends_on_must_name_another_container() {
    let m = err(
        json!({"family": "f", "containerDefinitions": [{"name": "a", "image": "i", "memory": 8, "dependsOn": [{"containerName": "zz", "condition": "START"}]}]}),
    );
    assert!(m.contains("dependsOn"), "{m}");
}

#[test]
fn fargate_table_matches_aws() {
    assert!(fargate_size_is_valid(256, 512));
    assert!(!fargate_size_is_valid(256, 3072));
    assert!(fargate_size_is_valid(4096, 30720));
    assert!(!fargate_size_is_valid(8192, 18432));
    assert!(fargate_size_is_valid(16384, 122880));
    assert!(!fargate_size_is_valid(100, 512));
}

proptest::proptest! {
    #[test]
    fn cpu_and_memory_parsers_never_panic(s in ".{0,20}") {
        let _ = parse_task_cpu(&s);
        let _ = parse_task_memory(&s);
        let _ = parse_port_range(&s);
    }
}
