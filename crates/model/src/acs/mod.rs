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
    }
}
