//! The task metadata endpoint's response shapes, with the field names of AWS's version 4
//! documentation, and the pure functions that build them from a published [`TaskView`].

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

/// What a task actor publishes of one container.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContainerView {
    /// Name in the task definition.
    pub name: String,
    /// Docker's id, once created.
    pub docker_id: Option<String>,
    /// Docker's name.
    pub docker_name: Option<String>,
    /// The image as the task definition names it.
    pub image: String,
    /// The image's id (`sha256:...`), once created.
    pub image_id: Option<String>,
    /// Docker labels.
    pub labels: HashMap<String, String>,
    /// `RUNNING` or `STOPPED`.
    pub desired_status: String,
    /// ECS's name for what is known (`PENDING`, `PULLED`, `CREATED`, `RUNNING`, ...).
    pub known_status: String,
    /// CPU units.
    pub cpu: Option<i32>,
    /// Memory MiB.
    pub memory: Option<i32>,
    /// RFC 3339.
    pub created_at: Option<String>,
    /// RFC 3339.
    pub started_at: Option<String>,
    /// The container's ARN, when the payload carried one.
    pub container_arn: Option<String>,
    /// `bridge`, `host` or `none`.
    pub network_mode: String,
    /// Its IPv4 addresses.
    pub ipv4_addresses: Vec<String>,
    /// The task's interface, for awsvpc tasks.
    pub awsvpc: Option<AwsvpcView>,
    /// Published ports.
    pub ports: Vec<PortView>,
    /// Exit code once stopped.
    pub exit_code: Option<i64>,
}

/// An awsvpc task's interface, as `Networks` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AwsvpcView {
    /// MAC address.
    pub mac_address: Option<String>,
    /// `10.200.0.0/16`.
    pub subnet_cidr: Option<String>,
    /// `ip-10-200-0-9.ec2.internal`.
    pub private_dns_name: Option<String>,
    /// `10.200.0.1/16`.
    pub gateway_cidr: Option<String>,
}

/// One published port.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortView {
    /// Port inside the container.
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// Port on the host.
    pub host_port: u16,
    /// Address bound on the host.
    pub host_ip: String,
}

/// What a task actor publishes of its task.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskView {
    /// Cluster ARN.
    pub cluster: String,
    /// Task ARN.
    pub arn: String,
    /// Task definition family.
    pub family: String,
    /// Task definition revision.
    pub revision: String,
    /// `RUNNING` or `STOPPED`.
    pub desired_status: String,
    /// ECS's name for the task's known status.
    pub known_status: String,
    /// Task-level vCPUs.
    pub cpu: Option<f64>,
    /// Task-level memory MiB.
    pub memory: Option<i32>,
    /// RFC 3339.
    pub pull_started_at: Option<String>,
    /// RFC 3339.
    pub pull_stopped_at: Option<String>,
    /// The instance's availability zone.
    pub availability_zone: String,
    /// Containers in task definition order.
    pub containers: Vec<ContainerView>,
    /// Container name → metadata token.
    pub tokens: BTreeMap<String, String>,
}

/// `Limits` of a container (`CPU` in units) or a task (`CPU` in vCPUs).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Limits {
    /// CPU.
    #[serde(rename = "CPU", skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
    /// Memory MiB.
    #[serde(rename = "Memory", skip_serializing_if = "Option::is_none")]
    pub memory: Option<i32>,
}

/// One entry of `Networks`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Network {
    /// `bridge`, `host`, ...
    #[serde(rename = "NetworkMode")]
    pub network_mode: String,
    /// The container's addresses.
    #[serde(rename = "IPv4Addresses")]
    pub ipv4_addresses: Vec<String>,
    /// awsvpc: the interface's index (always 0: one interface per task).
    #[serde(rename = "AttachmentIndex", skip_serializing_if = "Option::is_none")]
    pub attachment_index: Option<u32>,
    /// awsvpc: the interface's MAC address.
    #[serde(rename = "MACAddress", skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// awsvpc: the subnet.
    #[serde(
        rename = "IPv4SubnetCIDRBlock",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv4_subnet_cidr_block: Option<String>,
    /// awsvpc: the interface's DNS name.
    #[serde(rename = "PrivateDNSName", skip_serializing_if = "Option::is_none")]
    pub private_dns_name: Option<String>,
    /// awsvpc: the subnet's gateway with its prefix length.
    #[serde(
        rename = "SubnetGatewayIpv4Address",
        skip_serializing_if = "Option::is_none"
    )]
    pub subnet_gateway_ipv4_address: Option<String>,
}

/// One entry of `Ports`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Port {
    /// Port inside the container.
    #[serde(rename = "ContainerPort")]
    pub container_port: u16,
    /// `tcp` or `udp`.
    #[serde(rename = "Protocol")]
    pub protocol: String,
    /// Port on the host.
    #[serde(rename = "HostPort")]
    pub host_port: u16,
    /// Address bound on the host.
    #[serde(rename = "HostIp")]
    pub host_ip: String,
}

/// `GET ${ECS_CONTAINER_METADATA_URI_V4}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ContainerMetadata {
    /// Docker's id.
    #[serde(rename = "DockerId")]
    pub docker_id: String,
    /// Name in the task definition.
    #[serde(rename = "Name")]
    pub name: String,
    /// Docker's name.
    #[serde(rename = "DockerName")]
    pub docker_name: String,
    /// The image.
    #[serde(rename = "Image")]
    pub image: String,
    /// The image id.
    #[serde(rename = "ImageID")]
    pub image_id: String,
    /// Docker labels.
    #[serde(rename = "Labels")]
    pub labels: BTreeMap<String, String>,
    /// Desired status.
    #[serde(rename = "DesiredStatus")]
    pub desired_status: String,
    /// Known status.
    #[serde(rename = "KnownStatus")]
    pub known_status: String,
    /// Exit code once stopped.
    #[serde(rename = "ExitCode", skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// CPU units and memory MiB.
    #[serde(rename = "Limits")]
    pub limits: Limits,
    /// RFC 3339.
    #[serde(rename = "CreatedAt", skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// RFC 3339.
    #[serde(rename = "StartedAt", skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// Always `NORMAL` (no agent-internal containers here).
    #[serde(rename = "Type")]
    pub container_type: &'static str,
    /// The container's ARN.
    #[serde(rename = "ContainerARN", skip_serializing_if = "Option::is_none")]
    pub container_arn: Option<String>,
    /// Its networks.
    #[serde(rename = "Networks")]
    pub networks: Vec<Network>,
    /// Published ports.
    #[serde(rename = "Ports", skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
}

/// `GET ${ECS_CONTAINER_METADATA_URI_V4}/task`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskMetadata {
    /// Cluster ARN.
    #[serde(rename = "Cluster")]
    pub cluster: String,
    /// Task ARN.
    #[serde(rename = "TaskARN")]
    pub task_arn: String,
    /// Family.
    #[serde(rename = "Family")]
    pub family: String,
    /// Revision.
    #[serde(rename = "Revision")]
    pub revision: String,
    /// Desired status.
    #[serde(rename = "DesiredStatus")]
    pub desired_status: String,
    /// Known status.
    #[serde(rename = "KnownStatus")]
    pub known_status: String,
    /// Every container of the task.
    #[serde(rename = "Containers")]
    pub containers: Vec<ContainerMetadata>,
    /// Task-level vCPUs and memory MiB.
    #[serde(rename = "Limits", skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// RFC 3339.
    #[serde(rename = "PullStartedAt", skip_serializing_if = "Option::is_none")]
    pub pull_started_at: Option<String>,
    /// RFC 3339.
    #[serde(rename = "PullStoppedAt", skip_serializing_if = "Option::is_none")]
    pub pull_stopped_at: Option<String>,
    /// The instance's availability zone.
    #[serde(rename = "AvailabilityZone")]
    pub availability_zone: String,
    /// Always `EC2`.
    #[serde(rename = "LaunchType")]
    pub launch_type: &'static str,
}

/// The container metadata of `c`.
pub fn compute_container_metadata(c: &ContainerView) -> ContainerMetadata {
    ContainerMetadata {
        docker_id: c.docker_id.clone().unwrap_or_default(),
        name: c.name.clone(),
        docker_name: c.docker_name.clone().unwrap_or_default(),
        image: c.image.clone(),
        image_id: c.image_id.clone().unwrap_or_default(),
        labels: c
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        desired_status: c.desired_status.clone(),
        known_status: c.known_status.clone(),
        exit_code: c.exit_code,
        limits: Limits {
            cpu: Some(f64::from(c.cpu.unwrap_or(0))),
            memory: c.memory,
        },
        created_at: c.created_at.clone(),
        started_at: c.started_at.clone(),
        container_type: "NORMAL",
        container_arn: c.container_arn.clone(),
        networks: vec![Network {
            network_mode: c.network_mode.clone(),
            ipv4_addresses: c.ipv4_addresses.clone(),
            attachment_index: c.awsvpc.as_ref().map(|_| 0),
            mac_address: c.awsvpc.as_ref().and_then(|a| a.mac_address.clone()),
            ipv4_subnet_cidr_block: c.awsvpc.as_ref().and_then(|a| a.subnet_cidr.clone()),
            private_dns_name: c.awsvpc.as_ref().and_then(|a| a.private_dns_name.clone()),
            subnet_gateway_ipv4_address: c.awsvpc.as_ref().and_then(|a| a.gateway_cidr.clone()),
        }],
        ports: c
            .ports
            .iter()
            .map(|p| Port {
                container_port: p.container_port,
                protocol: p.protocol.clone(),
                host_port: p.host_port,
                host_ip: if p.host_ip.is_empty() {
                    "0.0.0.0".to_owned()
                } else {
                    p.host_ip.clone()
                },
            })
            .collect(),
    }
}

/// The task metadata of `t`.
pub fn compute_task_metadata(t: &TaskView) -> TaskMetadata {
    let limits = (t.cpu.is_some() || t.memory.is_some()).then_some(Limits {
        cpu: t.cpu,
        memory: t.memory,
    });
    TaskMetadata {
        cluster: t.cluster.clone(),
        task_arn: t.arn.clone(),
        family: t.family.clone(),
        revision: t.revision.clone(),
        desired_status: t.desired_status.clone(),
        known_status: t.known_status.clone(),
        containers: t
            .containers
            .iter()
            .map(compute_container_metadata)
            .collect(),
        limits,
        pull_started_at: t.pull_started_at.clone(),
        pull_stopped_at: t.pull_stopped_at.clone(),
        availability_zone: t.availability_zone.clone(),
        launch_type: "EC2",
    }
}

/// `time` as RFC 3339 in UTC with nanoseconds, the way Docker and ECS print it.
pub fn format_timestamp(time: std::time::SystemTime) -> String {
    let d = time
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since the epoch (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}
