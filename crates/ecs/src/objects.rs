//! How ECS objects sit in the store: the key layout and the records. Typed reads and
//! the compare-and-swap retry loop are [`store::Objects`].
//!
//! Layout (values are JSON):
//! - `ecs/cluster/<name>` → [`Cluster`](model::ecs::shapes::Cluster)
//! - `ecs/family/<family>` → [`FamilyRecord`]
//! - `ecs/taskdef/<family>/<revision, 10 digits>` → [`StoredTaskDefinition`]
//! - `ecs/instance/<cluster>/<id>` → [`ContainerInstance`](model::ecs::shapes::ContainerInstance)
//! - `ecs/setting/<principal ARN>/<name>` → [`Setting`](model::ecs::shapes::Setting)
//! - `ecs/task/<cluster>/<id>` → [`StoredTask`]
//! - `ecs/instance-task/<cluster>/<instance id>/<task id>` → empty: the tasks an instance
//!   holds resources for (until they are STOPPED), so its channel and accounting never
//!   scan the whole cluster
//! - `ecs/task-token/<cluster>/<clientToken>` → [`TokenRecord`]: RunTask idempotency
//! - `ecs/awsvpc-address/<IPv4>` → task ARN: an awsvpc task's address, server-wide
//!   (see `tasks::awsvpc`)

use crate::error::EcsError;
use model::ecs::shapes::{ContainerDefinition, ContainerInstance, Tag, Task, TaskDefinition};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
pub use store::Step;

/// Typed access to the store, answering [`EcsError`].
pub type Objects = store::Objects<EcsError>;

/// Key of a cluster.
pub fn cluster_key(name: &str) -> String {
    format!("ecs/cluster/{name}")
}
/// Key of a family's revision counter.
pub fn family_key(family: &str) -> String {
    format!("ecs/family/{family}")
}
/// Prefix of all revisions of a family.
pub fn taskdef_prefix(family: &str) -> String {
    format!("ecs/taskdef/{family}/")
}
/// Key of one task definition revision; zero-padded so key order is revision order.
pub fn taskdef_key(family: &str, revision: i32) -> String {
    format!("ecs/taskdef/{family}/{revision:010}")
}
/// Prefix of a cluster's container instances.
pub fn instance_prefix(cluster: &str) -> String {
    format!("ecs/instance/{cluster}/")
}
/// Prefix of every cluster's container instances.
pub const ALL_INSTANCES: &str = "ecs/instance/";
/// Key of a container instance.
pub fn instance_key(cluster: &str, id: &str) -> String {
    format!("ecs/instance/{cluster}/{id}")
}
/// Key of an account setting for a principal.
pub fn setting_key(principal: &str, name: &str) -> String {
    format!("ecs/setting/{principal}/{name}")
}

/// Key of a task.
pub fn task_key(cluster: &str, id: &str) -> String {
    format!("ecs/task/{cluster}/{id}")
}
/// Prefix of a cluster's tasks.
pub fn task_prefix(cluster: &str) -> String {
    format!("ecs/task/{cluster}/")
}
/// Prefix of the index of tasks holding resources on an instance.
pub fn instance_task_prefix(cluster: &str, instance_id: &str) -> String {
    format!("ecs/instance-task/{cluster}/{instance_id}/")
}
/// Index entry of a task on an instance.
pub fn instance_task_key(cluster: &str, instance_id: &str, task_id: &str) -> String {
    format!("ecs/instance-task/{cluster}/{instance_id}/{task_id}")
}
/// Key of a RunTask client token.
pub fn token_key(cluster: &str, token: &str) -> String {
    format!("ecs/task-token/{cluster}/{token}")
}

/// What the tasks on an instance hold: the books placement reads and RunTask and task
/// state changes write, always in the same transaction as the task records.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// CPU units reserved.
    pub cpu: i64,
    /// Memory MiB reserved.
    pub memory: i64,
    /// Static TCP host ports taken.
    #[serde(default)]
    pub tcp_ports: BTreeSet<u16>,
    /// Static UDP host ports taken.
    #[serde(default)]
    pub udp_ports: BTreeSet<u16>,
    /// GPU ids taken.
    #[serde(default)]
    pub gpus: BTreeSet<String>,
    /// Tasks per task group.
    #[serde(default)]
    pub groups: BTreeMap<String, u32>,
    /// Tasks not yet RUNNING.
    pub pending: u32,
    /// Tasks RUNNING.
    pub running: u32,
}

/// A stored container instance: the API shape plus its books.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredInstance {
    /// The instance as DescribeContainerInstances shows it (counts and remaining
    /// resources are recomputed from `usage` when shown).
    pub instance: ContainerInstance,
    /// What its tasks hold.
    #[serde(default)]
    pub usage: Usage,
    /// Hidden Fargate capacity, started by the server's provisioner: never shown to the
    /// user, never chosen for EC2 launches, the only choice for Fargate ones.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fargate: bool,
    /// Who registered it (`None`: registered before owners were recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<crate::ownership::InstanceOwner>,
    /// The replica and session holding its agent's channel while `agentConnected`
    /// (see [`crate::presence`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_session: Option<crate::presence::AgentSession>,
}

/// What a task reserves on its instance.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// CPU units.
    pub cpu: i64,
    /// GPU ids of the instance given to the task.
    #[serde(default)]
    pub gpus: Vec<String>,
    /// How many GPUs the task asks for (its containers' GPU resourceRequirements).
    #[serde(default)]
    pub gpu_count: u32,
    /// Memory MiB.
    pub memory: i64,
    /// Static TCP host ports.
    #[serde(default)]
    pub tcp_ports: Vec<u16>,
    /// Static UDP host ports.
    #[serde(default)]
    pub udp_ports: Vec<u16>,
}

/// A stored task.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredTask {
    /// The task as DescribeTasks shows it.
    pub task: Task,
    /// The instance it was placed on.
    pub instance_id: String,
    /// What it holds there until STOPPED.
    pub reservation: Reservation,
    /// The container definitions with the RunTask overrides applied: what the agent runs.
    pub containers: Vec<ContainerDefinition>,
    /// Whether the resources have been given back (the task reached STOPPED).
    #[serde(default)]
    pub released: bool,
    /// The definition's network mode (absent = bridge).
    #[serde(default)]
    pub network_mode: Option<model::ecs::shapes::NetworkMode>,
    /// The definition's volumes.
    #[serde(default)]
    pub volumes: Vec<model::ecs::shapes::Volume>,
    /// The network interface of an `awsvpc` task (its address is held until STOPPED).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eni: Option<crate::tasks::awsvpc::TaskEni>,
    /// Chosen by its service to stop, and waiting for its load balancer targets to drain
    /// first: the API shows desiredStatus STOPPED and lastStatus DEACTIVATING, as ECS does,
    /// while its agent keeps running it until the stop is requested.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deactivating: bool,
    /// Scale-in protection (UpdateTaskProtection): the epoch seconds it expires at. The
    /// task is protected while that is ahead; a lapsed value is the same as none, so
    /// expiry needs no sweeper.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected_until: Option<f64>,
}

/// A RunTask client token: the request it answered.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Hash of the request without the token.
    pub request_hash: String,
    /// The tasks it started.
    pub task_arns: Vec<String>,
    /// When it was recorded (epoch seconds): it expires a window later (see
    /// `retention`). `None`: recorded before this was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<f64>,
}

/// A family's bookkeeping: revisions are never reused, even after deletion.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FamilyRecord {
    /// Highest revision ever registered.
    pub last_revision: i32,
    /// Highest ACTIVE revision, which a bare family name resolves to.
    #[serde(default)]
    pub latest_active: Option<i32>,
}

/// A stored task definition and its tags (AWS returns them beside, not inside, it).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredTaskDefinition {
    /// The definition as DescribeTaskDefinition returns it.
    pub task_definition: TaskDefinition,
    /// Its tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// Instance keys this process has written since each cluster's placement view last looked:
/// lets a RunTask refresh only what changed instead of re-reading every instance. Only a
/// hint: another writer's changes are caught by compare-and-swap and a periodic full
/// refresh. Fed by a commit hook on [`Objects`] (see [`ChangedInstances::hook`]).
#[derive(Default)]
pub struct ChangedInstances {
    by_cluster: std::sync::Mutex<std::collections::HashMap<String, BTreeSet<String>>>,
}

impl ChangedInstances {
    /// A commit hook that records the instance keys each commit wrote or deleted.
    pub fn hook(self: &std::sync::Arc<Self>) -> store::CommitHook {
        let this = std::sync::Arc::clone(self);
        std::sync::Arc::new(move |ops: &[store::Op], _revision| {
            this.record(ops.iter().map(|op| match op {
                store::Op::Put { key, .. } | store::Op::Delete { key } => key.as_str(),
            }));
        })
    }

    fn record<'a>(&self, keys: impl IntoIterator<Item = &'a str>) {
        let mut map = self
            .by_cluster
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for key in keys {
            if let Some(cluster) = key
                .strip_prefix("ecs/instance/")
                .and_then(|r| r.split('/').next())
            {
                map.entry(cluster.to_owned())
                    .or_default()
                    .insert(key.to_owned());
            }
        }
    }

    /// Takes the keys recorded for `cluster`.
    pub fn take(&self, cluster: &str) -> BTreeSet<String> {
        let mut map = self
            .by_cluster
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(cluster).unwrap_or_default()
    }
}

/// JSON-encodes a value for the store.
pub fn encode<T: Serialize>(value: &T) -> Result<bytes::Bytes, EcsError> {
    Ok(store::objects::encode(value)?)
}

/// Decodes a stored value; a value that does not decode is a store failure naming its key.
pub fn decode<T: DeserializeOwned>(key: &str, value: &[u8]) -> Result<T, EcsError> {
    Ok(store::objects::decode(key, value)?)
}
