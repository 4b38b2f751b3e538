//! The agent communication channel (ACS): the frames the control plane and an instance's
//! agent exchange over a SigV4-signed WebSocket, in the shapes of the ECS agent's own ACS
//! model (`AmazonEC2ContainerAgentServiceV20141113`), so an unmodified amazon-ecs-agent
//! could one day connect.
//!
//! Every frame is `{"type": "<ShapeName>", "message": {...}}`. Member names below are the
//! ACS model's; only the members Stevedore sends or reads are typed, and unknown members
//! are ignored on input.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The `X-Amz-Target`-style prefix of ACS (used only in docs and logs: frames carry types).
pub const TARGET_PREFIX: &str = "AmazonEC2ContainerAgentServiceV20141113";

/// One frame on the channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "message")]
pub enum Frame {
    /// Server → agent: tasks and their desired status.
    PayloadMessage(PayloadMessage),
    /// Server → agent: all is well (sent more often than the agent's idle timeout).
    HeartbeatMessage(HeartbeatMessage),
    /// Server → agent: the server is closing the session.
    CloseMessage(CloseMessage),
    /// Server → agent: a request the agent sent was refused.
    ErrorMessage(ErrorMessage),
    /// Agent → server: a payload was received and processed.
    AckRequest(AckRequest),
    /// Agent → server: a heartbeat was received.
    HeartbeatAckRequest(HeartbeatAckRequest),
    /// Agent → server: a payload could not be processed.
    NackRequest(NackRequest),
    /// Agent → server: containers' health-check verdicts (TCS's `PublishHealthRequest`,
    /// carried on this channel because Stevedore has no separate telemetry socket).
    PublishHealthRequest(PublishHealthRequest),
    /// Agent → server: what its tasks' containers use (TCS `PublishMetricsRequest`).
    PublishMetricsRequest(PublishMetricsRequest),
    /// Server → agent: fresh credentials of a task's role, sent before the old ones expire.
    IAMRoleCredentialsMessage(IAMRoleCredentialsMessage),
    /// Agent → server: an [`IAMRoleCredentialsMessage`] was stored.
    IAMRoleCredentialsAckRequest(IAMRoleCredentialsAckRequest),
}

/// Tasks for one instance.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayloadMessage {
    /// The instance the tasks are for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_instance_arn: Option<String>,
    /// Its cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_arn: Option<String>,
    /// The tasks, each with its desired status.
    #[serde(default)]
    pub tasks: Vec<Task>,
    /// Epoch milliseconds when the server built the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated_at: Option<i64>,
    /// Id the agent echoes in its `AckRequest`.
    pub message_id: String,
    /// Monotonic per-session sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq_num: Option<i32>,
}

/// A task as the agent receives it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// Task ARN.
    pub arn: String,
    /// Cluster ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_cluster_arn: Option<String>,
    /// `RUNNING` or `STOPPED`.
    pub desired_status: String,
    /// Task definition family.
    #[serde(default)]
    pub family: String,
    /// Task definition revision, as a string.
    #[serde(default)]
    pub version: String,
    /// Task-level CPU in vCPUs (units / 1024), when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
    /// Task-level memory in MiB, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i32>,
    /// `bridge`, `host`, `awsvpc` or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    /// `EC2` or `FARGATE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<String>,
    /// The task group (`family:<f>`, `service:<s>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Service name for service tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// Volumes of the task definition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// The containers, overrides already applied.
    #[serde(default)]
    pub containers: Vec<Container>,
    /// The task's network interface (`awsvpc` tasks): the address and MAC the agent
    /// gives the task's network namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub elastic_network_interfaces: Vec<ElasticNetworkInterface>,
    /// Credentials of the task definition's `taskRoleArn`, served to its containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_credentials: Option<RoleCredentials>,
    /// Credentials of its `executionRoleArn`, used by the agent for the task's image
    /// pulls and log writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role_credentials: Option<RoleCredentials>,
}

/// Short-lived credentials of a role (ACS `IAMRoleCredentials`).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleCredentials {
    /// Id containers ask the credentials endpoint for (`/v2/credentials/<id>`); stable
    /// for a task and role across refreshes, unguessable.
    #[serde(default)]
    pub credentials_id: String,
    /// Access key id (`ASIA...`).
    #[serde(default)]
    pub access_key_id: String,
    /// Secret access key.
    #[serde(default)]
    pub secret_access_key: String,
    /// Session token.
    #[serde(default)]
    pub session_token: String,
    /// RFC 3339 UTC, `2026-12-07T03:04:05Z`.
    #[serde(default)]
    pub expiration: String,
    /// The role's ARN.
    #[serde(default)]
    pub role_arn: String,
}

impl RoleCredentials {
    /// The same credentials without their secret parts (id, role and expiry only), for
    /// anything that is written down.
    pub fn redacted(&self) -> Self {
        Self {
            credentials_id: self.credentials_id.clone(),
            expiration: self.expiration.clone(),
            role_arn: self.role_arn.clone(),
            ..Self::default()
        }
    }
}

// Never print secrets, not even in debug output.
impl std::fmt::Debug for RoleCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoleCredentials")
            .field("credentials_id", &"<redacted>")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .field("role_arn", &self.role_arn)
            .finish_non_exhaustive()
    }
}

/// Which of a task's roles credentials belong to (ACS `roleType`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RoleType {
    /// The task definition's `taskRoleArn`, served to containers.
    #[default]
    TaskApplication,
    /// The task definition's `executionRoleArn`, used by the agent.
    TaskExecution,
}

/// Refreshed credentials of one task role (ACS `IAMRoleCredentialsMessage`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IAMRoleCredentialsMessage {
    /// Id echoed in the ack.
    pub message_id: String,
    /// The task.
    pub task_arn: String,
    /// Which role.
    #[serde(default)]
    pub role_type: RoleType,
    /// The credentials.
    pub role_credentials: RoleCredentials,
}

/// Acknowledgement of an [`IAMRoleCredentialsMessage`] (ACS `IAMRoleCredentialsAckRequest`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IAMRoleCredentialsAckRequest {
    /// The message's id.
    pub message_id: String,
    /// Expiration of the stored credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
    /// Their id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_id: Option<String>,
}

/// A network interface for an `awsvpc` task (ACS `ElasticNetworkInterface`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ElasticNetworkInterface {
    /// The attachment's ARN (Stevedore: the attachment id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment_arn: Option<String>,
    /// `eni-...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ec2_id: Option<String>,
    /// MAC address, `aa:bb:cc:dd:ee:ff`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// Its IPv4 addresses; the primary one is the task's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipv4_addresses: Vec<IPv4AddressAssignment>,
    /// `ip-10-0-0-1.ec2.internal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_dns_name: Option<String>,
    /// The subnet's gateway with the prefix length, `10.200.0.1/16`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_gateway_ipv4_address: Option<String>,
}

impl ElasticNetworkInterface {
    /// The primary IPv4 address (the first one when none is marked primary).
    pub fn primary_ipv4(&self) -> Option<&str> {
        self.ipv4_addresses
            .iter()
            .find(|a| a.primary == Some(true))
            .or_else(|| self.ipv4_addresses.first())
            .and_then(|a| a.private_address.as_deref())
    }
}

/// One IPv4 address of an interface.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(clippy::upper_case_acronyms)]
pub struct IPv4AddressAssignment {
    /// The address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_address: Option<String>,
    /// Whether it is the interface's primary address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
}

/// A container as the agent receives it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// Container name.
    pub name: String,
    /// Container ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_arn: Option<String>,
    /// Image reference.
    #[serde(default)]
    pub image: String,
    /// CPU units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<i32>,
    /// Hard memory limit, MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i32>,
    /// Whether its exit stops the task.
    #[serde(default)]
    pub essential: bool,
    /// Command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Entry point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_point: Option<Vec<String>>,
    /// Environment, as a map (ACS's form, unlike the API's list).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
    /// Port mappings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<PortMapping>,
    /// Mount points.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mount_points: Vec<MountPoint>,
    /// Volumes from other containers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes_from: Vec<VolumeFrom>,
    /// Links (bridge mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<Vec<String>>,
    /// Start-order dependencies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<ContainerDependency>,
    /// Seconds to wait for dependencies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timeout: Option<i32>,
    /// Seconds between SIGTERM and SIGKILL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i32>,
    /// Privileged mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    /// Options with no field of their own, as Docker Engine API JSON strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_config: Option<DockerConfig>,
    /// `docker` when the container has a health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_type: Option<String>,
}

/// Docker Engine API fragments carried as JSON strings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerConfig {
    /// Docker API version the fragments target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `Config` fragment (labels, healthcheck, user, workdir, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// `HostConfig` fragment (log config, memory reservation, ulimits, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_config: Option<String>,
}

/// A port mapping.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    /// Container port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_port: Option<i32>,
    /// Host port; 0 or absent = dynamic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<i32>,
    /// `first-last`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_port_range: Option<String>,
    /// `tcp` or `udp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// A mount point.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MountPoint {
    /// Volume name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_volume: Option<String>,
    /// Path in the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_path: Option<String>,
    /// Read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

/// Volumes from another container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeFrom {
    /// Source container name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_container: Option<String>,
    /// Read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

/// A start-order dependency.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDependency {
    /// The container depended on.
    #[serde(default)]
    pub container_name: String,
    /// `START`, `COMPLETE`, `SUCCESS` or `HEALTHY`.
    #[serde(default)]
    pub condition: String,
}

/// A task volume.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    /// Volume name.
    #[serde(default)]
    pub name: String,
    /// `host` or `docker`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Host path for bind mounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostVolumeProperties>,
}

/// A host path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostVolumeProperties {
    /// Path on the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_path: Option<String>,
}

/// Heartbeat.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatMessage {
    /// Always true from Stevedore.
    #[serde(default)]
    pub healthy: bool,
    /// Id echoed in the ack.
    pub message_id: String,
}

/// Session close.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseMessage {
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Error report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorMessage {
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Acknowledgement of a payload.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AckRequest {
    /// Cluster ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Instance ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_instance: Option<String>,
    /// The payload's message id.
    pub message_id: String,
}

/// Acknowledgement of a heartbeat.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatAckRequest {
    /// The heartbeat's message id.
    pub message_id: String,
}

/// Refusal of a payload.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NackRequest {
    /// Cluster ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Instance ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_instance: Option<String>,
    /// The payload's message id.
    pub message_id: String,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Health-check verdicts of tasks' containers (TCS `PublishHealthRequest`). The agent
/// sends one on every change and everything it knows again after a reconnect; applying
/// one twice changes nothing.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishHealthRequest {
    /// Who is reporting.
    #[serde(default)]
    pub metadata: HealthMetadata,
    /// The tasks.
    #[serde(default)]
    pub tasks: Vec<TaskHealth>,
    /// Epoch seconds when the agent built it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<f64>,
}

/// The reporter of a [`PublishHealthRequest`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthMetadata {
    /// Cluster ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Instance ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_instance: Option<String>,
    /// Unique per message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Last message of a batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fin: Option<bool>,
}

/// One task's container health.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskHealth {
    /// Task ARN.
    pub task_arn: String,
    /// Cluster ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_arn: Option<String>,
    /// Task definition family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_definition_family: Option<String>,
    /// Task definition revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_definition_version: Option<String>,
    /// Containers with a health check.
    #[serde(default)]
    pub containers: Vec<ContainerHealth>,
}

/// One container's verdict.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerHealth {
    /// Container name.
    pub container_name: String,
    /// `HEALTHY`, `UNHEALTHY` or `UNKNOWN`.
    pub health_status: String,
    /// Epoch seconds since which it has had this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_since: Option<f64>,
    /// Output of the last check, when useful.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
}

/// What an instance's running task containers use (TCS `PublishMetricsRequest`, its
/// shape kept): one statistic set per container since the last report. CPU is in CPU
/// units (1,024 per core) and memory in MiB, the units task definitions reserve in.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishMetricsRequest {
    /// Who is reporting.
    #[serde(default)]
    pub metadata: HealthMetadata,
    /// The tasks.
    #[serde(default)]
    pub task_metrics: Vec<TaskMetric>,
    /// Epoch seconds when the agent built it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<f64>,
}

/// One task's containers' usage.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskMetric {
    /// Task ARN.
    pub task_arn: String,
    /// Task definition family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_definition_family: Option<String>,
    /// Task definition revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_definition_version: Option<String>,
    /// Its running containers.
    #[serde(default)]
    pub container_metrics: Vec<ContainerMetric>,
}

/// One container's usage over the report's interval.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerMetric {
    /// Container name.
    pub container_name: String,
    /// CPU units used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_stats_set: Option<StatsSet>,
    /// Memory used, MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_stats_set: Option<StatsSet>,
}

/// A statistic set (TCS `CWStatsSet`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsSet {
    /// Least sample.
    pub min: f64,
    /// Greatest sample.
    pub max: f64,
    /// How many samples.
    pub sample_count: f64,
    /// Their sum.
    pub sum: f64,
}

impl StatsSet {
    /// The set of one sample.
    pub fn of(value: f64) -> Self {
        Self {
            min: value,
            max: value,
            sample_count: 1.0,
            sum: value,
        }
    }

    /// Adds a sample.
    pub fn add(&mut self, value: f64) {
        if self.sample_count == 0.0 {
            *self = Self::of(value);
            return;
        }
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.sample_count += 1.0;
        self.sum += value;
    }

    /// The mean (0 for an empty set).
    pub fn average(&self) -> f64 {
        if self.sample_count > 0.0 {
            self.sum / self.sample_count
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_use_the_type_and_message_envelope() {
        let f = Frame::AckRequest(AckRequest {
            cluster: None,
            container_instance: None,
            message_id: "m1".into(),
        });
        let v = serde_json::to_value(&f).expect("json");
        assert_eq!(v["type"], "AckRequest");
        assert_eq!(v["message"]["messageId"], "m1");
        let back: Frame = serde_json::from_value(v).expect("parses");
        assert_eq!(back, f);
    }

    #[test]
    fn payload_tasks_parse_with_unknown_members_ignored() {
        let raw = r#"{"type":"PayloadMessage","message":{"messageId":"x","seqNum":3,"tasks":[{"arn":"a","desiredStatus":"RUNNING","family":"f","version":"1","roleCredentials":{},"containers":[{"name":"c","image":"i","essential":true,"environment":{"K":"V"},"portMappings":[{"containerPort":80,"hostPort":0,"protocol":"tcp"}]}]}]}}"#;
        let f: Frame = serde_json::from_str(raw).expect("parses");
        let Frame::PayloadMessage(p) = f else {
            panic!("payload expected")
        };
        assert_eq!(p.tasks[0].containers[0].environment["K"], "V");
        assert_eq!(p.seq_num, Some(3));
        assert!(p.tasks[0].elastic_network_interfaces.is_empty());
    }

    #[test]
    fn enis_and_health_use_the_acs_and_tcs_member_names() {
        let raw = r#"{"arn":"a","desiredStatus":"RUNNING","elasticNetworkInterfaces":[{"ec2Id":"eni-1","macAddress":"02:00:00:00:00:01","ipv4Addresses":[{"privateAddress":"10.200.0.9","primary":true}],"subnetGatewayIpv4Address":"10.200.0.1/16","privateDnsName":"ip-10-200-0-9.ec2.internal"}]}"#;
        let t: Task = serde_json::from_str(raw).expect("parses");
        assert_eq!(
            t.elastic_network_interfaces[0].primary_ipv4(),
            Some("10.200.0.9")
        );
        let f = Frame::PublishHealthRequest(PublishHealthRequest {
            tasks: vec![TaskHealth {
                task_arn: "t".into(),
                containers: vec![ContainerHealth {
                    container_name: "c".into(),
                    health_status: "HEALTHY".into(),
                    status_since: Some(1.5),
                    status_message: None,
                }],
                ..TaskHealth::default()
            }],
            ..PublishHealthRequest::default()
        });
        let v = serde_json::to_value(&f).expect("json");
        assert_eq!(v["type"], "PublishHealthRequest");
        assert_eq!(
            v["message"]["tasks"][0]["containers"][0]["healthStatus"],
            "HEALTHY"
        );
        assert_eq!(serde_json::from_value::<Frame>(v).expect("parses"), f);
    }

    #[test]
    fn role_credentials_use_the_acs_member_names_and_hide_secrets_in_debug() {
        let raw = r#"{"type":"IAMRoleCredentialsMessage","message":{"messageId":"m","taskArn":"t","roleType":"TaskExecution","roleCredentials":{"credentialsId":"c","accessKeyId":"ASIA1","secretAccessKey":"s3cr3t","sessionToken":"tok","expiration":"2026-12-07T03:04:05Z","roleArn":"arn:aws:iam::1:role/r"}}}"#;
        let f: Frame = serde_json::from_str(raw).expect("parses");
        let Frame::IAMRoleCredentialsMessage(m) = f else {
            panic!("credentials message expected")
        };
        assert_eq!(m.role_type, RoleType::TaskExecution);
        assert_eq!(m.role_credentials.secret_access_key, "s3cr3t");
        let debug = format!("{:?}", m.role_credentials);
        assert!(!debug.contains("s3cr3t") && !debug.contains("tok"));
        let redacted = m.role_credentials.redacted();
        assert!(redacted.secret_access_key.is_empty() && redacted.session_token.is_empty());
        assert_eq!(redacted.credentials_id, "c");
    }
}
