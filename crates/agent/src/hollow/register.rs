//! What a hollow instance registers as: resources, attributes and capabilities like the
//! real agent's, so placement treats it as a real instance.

use model::ecs::shapes::{Attribute, RegisterContainerInstanceRequest, Resource, VersionInfo};

/// The agent version hollow instances report.
pub const SIM_AGENT_VERSION: &str = "1.0.0-stevedore-sim";

/// Ports the ECS agent reserves on every instance (SSH, Docker, the agent's own).
pub const RESERVED_PORTS: [&str; 5] = ["22", "2375", "2376", "51678", "51679"];

/// One instance's shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceSpec {
    /// Cluster name or ARN.
    pub cluster: String,
    /// CPU units (1024 per vCPU).
    pub cpu: i32,
    /// Memory, MiB.
    pub memory: i32,
    /// `ecs.instance-type`.
    pub instance_type: String,
    /// `ecs.availability-zone`, already expanded (`us-east-1a`).
    pub availability_zone: String,
}

/// `a` → `<region>a`; anything longer is taken as a full zone name.
pub fn compute_availability_zone(region: &str, zone: &str) -> String {
    let is_letter = zone.len() == 1 && zone.chars().all(|c| c.is_ascii_lowercase());
    if is_letter {
        format!("{region}{zone}")
    } else {
        zone.to_owned()
    }
}

/// The `RegisterContainerInstance` request for `spec`.
pub fn compute_registration(spec: &InstanceSpec) -> RegisterContainerInstanceRequest {
    let integer = |name: &str, value: i32| Resource {
        name: Some(name.to_owned()),
        type_: Some("INTEGER".to_owned()),
        integer_value: Some(value),
        ..Resource::default()
    };
    let string_set = |name: &str, values: Vec<String>| Resource {
        name: Some(name.to_owned()),
        type_: Some("STRINGSET".to_owned()),
        string_set_value: Some(values),
        ..Resource::default()
    };
    RegisterContainerInstanceRequest {
        cluster: Some(spec.cluster.clone()),
        total_resources: Some(vec![
            integer("CPU", spec.cpu),
            integer("MEMORY", spec.memory),
            string_set(
                "PORTS",
                RESERVED_PORTS.iter().map(|p| (*p).to_owned()).collect(),
            ),
            string_set("PORTS_UDP", Vec::new()),
        ]),
        version_info: Some(VersionInfo {
            agent_version: Some(SIM_AGENT_VERSION.to_owned()),
            agent_hash: Some("sim".to_owned()),
            docker_version: Some("none".to_owned()),
        }),
        attributes: Some(compute_attributes(spec)),
        ..RegisterContainerInstanceRequest::default()
    }
}

/// Platform attributes plus the capabilities the real agent advertises.
fn compute_attributes(spec: &InstanceSpec) -> Vec<Attribute> {
    let mut names: Vec<(String, Option<String>)> = vec![
        (
            "ecs.availability-zone".into(),
            Some(spec.availability_zone.clone()),
        ),
        ("ecs.instance-type".into(), Some(spec.instance_type.clone())),
        ("ecs.os-type".into(), Some("linux".into())),
        ("ecs.os-family".into(), Some("LINUX".into())),
        ("ecs.cpu-architecture".into(), Some("x86_64".into())),
    ];
    for minor in 17..=44 {
        names.push((
            format!("com.amazonaws.ecs.capability.docker-remote-api.1.{minor}"),
            None,
        ));
    }
    for cap in [
        "com.amazonaws.ecs.capability.logging-driver.awslogs",
        "com.amazonaws.ecs.capability.logging-driver.json-file",
        "com.amazonaws.ecs.capability.logging-driver.none",
        "com.amazonaws.ecs.capability.task-iam-role",
        "com.amazonaws.ecs.capability.task-iam-role-network-host",
        "ecs.capability.task-eni",
        "ecs.capability.container-health-check",
        "ecs.capability.container-ordering",
        "ecs.capability.task-cpu-mem-limit",
        "ecs.capability.network.container-port-range",
        "ecs.capability.execution-role-awslogs",
        "ecs.capability.docker-plugin.local",
    ] {
        names.push((cap.to_owned(), None));
    }
    names
        .into_iter()
        .map(|(name, value)| Attribute {
            name,
            value,
            target_type: None,
            target_id: None,
        })
        .collect()
}
