//! The task engine: one actor (tokio task with an `mpsc` inbox) per task, each the only
//! writer of its task ([`task`]); the container create body is computed purely in
//! [`spec`]. [`Engine`] routes payload tasks to their actors and, on start, adopts the
//! containers Docker still has (restart safety: list by cluster label, match to the
//! saved tasks, resume each actor from what Docker reports, never recreate blindly).
//!
//! Unlike STYLE.md habit 4's sketch, an actor awaits its Docker calls itself rather than
//! spawning them: each call has a timeout, only that task waits, and payload updates
//! queue in its inbox meanwhile. Exits and health are polled (every `poll_interval`)
//! rather than read from Docker's event stream.

pub mod logs;
pub mod spec;
mod task;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lifecycle::{ContainerStatus, DesiredStatus};
use model::acs;
use model::ecs::shapes::SubmitTaskStateChangeRequest;
use tokio::sync::mpsc;

use crate::health::HealthBoard;
use crate::metadata::MetadataEndpoint;
use crate::registry_auth::EcrAuth;
use crate::runtime::{Runtime, RuntimeError};
use crate::state::{StateFile, TaskRecord};
use crate::task_credentials::TaskCredentials;
use spec::{LABEL_CLUSTER, LABEL_CONTAINER_NAME, LABEL_TASK_ARN, PAUSE_CONTAINER_NAME};
use task::{apply_info, new_member, parse_desired, Msg, TaskActor};

/// A state change the server did not accept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubmitError {
    /// What went wrong.
    pub message: String,
    /// Whether sending again may succeed.
    pub transient: bool,
}

/// Where task state changes go (the ECS API in the agent; a recorder in tests).
#[async_trait]
pub trait Submit: Send + Sync + 'static {
    /// Sends one `SubmitTaskStateChange`.
    async fn submit(&self, request: &SubmitTaskStateChangeRequest) -> Result<(), SubmitError>;
}

#[async_trait]
impl Submit for crate::ApiClient {
    async fn submit(&self, request: &SubmitTaskStateChangeRequest) -> Result<(), SubmitError> {
        self.submit_task_state_change(request)
            .await
            .map(|_| ())
            .map_err(|e| SubmitError {
                message: e.to_string(),
                transient: e.is_transient(),
            })
    }
}

/// Engine settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Cluster ARN (labels and reports).
    pub cluster: String,
    /// How long stopped containers are kept before removal (ECS: 3 h).
    pub cleanup_wait: Duration,
    /// How often each actor polls Docker for exits and health.
    pub poll_interval: Duration,
    /// SIGTERM → SIGKILL grace when a container sets no stopTimeout (ECS: 30 s).
    pub default_stop_timeout: Duration,
    /// The instance's availability zone (task metadata).
    pub availability_zone: String,
    /// The image of awsvpc tasks' pause containers; `None`: the agent's own
    /// ([`crate::pause::IMAGE`], imported on first use).
    pub pause_image: Option<String>,
    /// The Docker runtime of FARGATE tasks' containers (e.g. `runsc`); `None`: Docker's
    /// default. Pause containers keep the default: they only hold the namespace.
    pub sandbox_runtime: Option<String>,
}

impl EngineConfig {
    /// ECS's defaults for `cluster`.
    pub fn new(cluster: impl Into<String>) -> Self {
        Self {
            cluster: cluster.into(),
            cleanup_wait: Duration::from_secs(3 * 3600),
            poll_interval: Duration::from_secs(1),
            default_stop_timeout: Duration::from_secs(30),
            availability_zone: String::new(),
            pause_image: None,
            sandbox_runtime: None,
        }
    }
}

/// What every actor shares (read-only, or internally synchronised).
pub(crate) struct Shared<R: Runtime> {
    pub runtime: Arc<R>,
    pub submit: Arc<dyn Submit>,
    pub state: Arc<StateFile>,
    pub config: EngineConfig,
    pub logs: Option<Arc<dyn logs::LogSink>>,
    pub registry_auth: Option<Arc<EcrAuth>>,
    pub metadata: Option<MetadataEndpoint>,
    pub health: Option<Arc<HealthBoard>>,
    /// Task role and execution role credentials (memory only).
    pub credentials: Arc<TaskCredentials>,
}

/// What a resumed actor starts from.
#[derive(Debug, Default)]
struct Saved {
    sent: Option<ContainerStatus>,
    stopped_at: Option<u64>,
    tokens: std::collections::BTreeMap<String, String>,
    /// The awsvpc task's pause container, as Docker reports it.
    pause: Option<crate::runtime::ContainerInfo>,
}

/// Routes payload tasks to per-task actors.
pub struct Engine<R: Runtime> {
    shared: Arc<Shared<R>>,
    actors: HashMap<String, mpsc::Sender<Msg>>,
    handles: Vec<tokio::task::JoinHandle<()>>,
}

impl<R: Runtime> Engine<R> {
    /// An engine with no actors yet.
    pub fn new(
        runtime: Arc<R>,
        submit: Arc<dyn Submit>,
        state: Arc<StateFile>,
        config: EngineConfig,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                runtime,
                submit,
                state,
                config,
                logs: None,
                registry_auth: None,
                metadata: None,
                health: None,
                credentials: TaskCredentials::global(),
            }),
            actors: HashMap::new(),
            handles: Vec::new(),
        }
    }

    /// Ships `awslogs` containers' output to `sink`. Call before starting any task.
    pub fn with_log_sink(mut self, sink: Arc<dyn logs::LogSink>) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.logs = Some(sink);
        }
        self
    }

    /// Pulls images on Stevedore's own registry with tokens from `auth`. Call before
    /// starting any task.
    pub fn with_registry_auth(mut self, auth: Arc<EcrAuth>) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.registry_auth = Some(auth);
        }
        self
    }

    /// Gives every container `ECS_CONTAINER_METADATA_URI_V4` and publishes task
    /// snapshots to `endpoint`. Call before starting any task.
    pub fn with_metadata(mut self, endpoint: MetadataEndpoint) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.metadata = Some(endpoint);
        }
        self
    }

    /// Publishes containers' health-check verdicts to `board` (the channel sends them
    /// upstream). Call before starting any task.
    pub fn with_health(mut self, board: Arc<HealthBoard>) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.health = Some(board);
        }
        self
    }

    /// Resumes every saved task from what Docker reports; returns how many.
    pub async fn adopt(&mut self) -> Result<usize, RuntimeError> {
        let found = self
            .shared
            .runtime
            .list_by_label(LABEL_CLUSTER, &self.shared.config.cluster)
            .await?;
        let doc = self.shared.state.snapshot();
        let mut adopted = 0;
        for (arn, record) in doc.tasks {
            let mut members: Vec<_> = record
                .task
                .containers
                .iter()
                .cloned()
                .map(new_member)
                .collect();
            for m in &mut members {
                let docker_name = record.docker_names.get(&m.spec.name);
                let info = found.iter().find(|i| {
                    Some(&i.name) == docker_name
                        || (i.labels.get(LABEL_TASK_ARN) == Some(&arn)
                            && i.labels.get(LABEL_CONTAINER_NAME) == Some(&m.spec.name))
                });
                match info {
                    Some(info) => {
                        lifecycle::observe(&mut m.known, ContainerStatus::Pulled);
                        apply_info(m, info);
                        if info.started {
                            logs::start_if_awslogs(&self.shared, &record.task, &m.spec, &info.id);
                        }
                    }
                    None if record.sent.is_some() => {
                        m.reason = Some("The container was gone when the agent restarted".into());
                        lifecycle::observe(&mut m.known, ContainerStatus::Stopped);
                    }
                    None => {}
                }
            }
            let sent = match record.sent.as_deref() {
                Some("RUNNING") => Some(ContainerStatus::Running),
                Some("STOPPED") => Some(ContainerStatus::Stopped),
                _ => None,
            };
            tracing::info!(task = %arn, "Adopting a task from the state directory.");
            let pause_name = record.docker_names.get(PAUSE_CONTAINER_NAME);
            let pause = found
                .iter()
                .find(|i| {
                    Some(&i.name) == pause_name
                        || (i.labels.get(LABEL_TASK_ARN) == Some(&arn)
                            && i.labels.get(LABEL_CONTAINER_NAME).map(String::as_str)
                                == Some(PAUSE_CONTAINER_NAME))
                })
                .cloned();
            let saved = Saved {
                sent,
                stopped_at: record.stopped_at,
                tokens: record.metadata_tokens.clone(),
                pause,
            };
            self.spawn(record.task.clone(), members, saved);
            adopted += 1;
        }
        Ok(adopted)
    }

    /// Hands a payload task to its actor, starting one for a new task. Returns once the
    /// actor has taken it (the payload may then be acknowledged).
    pub async fn apply(&mut self, task: acs::Task) {
        let task = take_credentials(&self.shared.credentials, task);
        if let Some(tx) = self.actors.get(&task.arn) {
            if tx.send(Msg::Update(Box::new(task.clone()))).await.is_ok() {
                return;
            }
            // The actor finished (task stopped and cleaned up): nothing left to do.
            self.actors.remove(&task.arn);
            return;
        }
        let record = TaskRecord {
            task: task.clone(),
            ..TaskRecord::default()
        };
        let arn = task.arn.clone();
        // Not waited for: what must be durable before an action (a container's Docker
        // name) is written with `update_durable`, which includes this.
        self.shared.state.update(|doc| {
            doc.tasks.entry(arn).or_insert(record);
        });
        let members = task.containers.iter().cloned().map(new_member).collect();
        self.spawn(task, members, Saved::default());
    }

    fn spawn(&mut self, task: acs::Task, members: Vec<task::Member>, saved: Saved) {
        let (tx, rx) = mpsc::channel(16);
        let desired: DesiredStatus = parse_desired(&task.desired_status);
        let arn = task.arn.clone();
        let actor = TaskActor {
            shared: self.shared.clone(),
            task,
            desired,
            members,
            sent: saved.sent,
            reason: (desired == DesiredStatus::Stopped).then(|| "Task stopped by user".to_owned()),
            stopped_at: saved.stopped_at,
            metadata_tokens: saved.tokens,
            pull_started_at: None,
            pull_stopped_at: None,
            pause_id: saved.pause.as_ref().map(|p| p.id.clone()),
            pause_running: saved.pause.as_ref().is_some_and(|p| p.running),
        };
        self.handles.push(tokio::spawn(actor.run(rx)));
        self.actors.insert(arn, tx);
    }

    /// Stores refreshed credentials of a task's role (an `IAMRoleCredentialsMessage`).
    pub fn refresh_credentials(&self, message: acs::IAMRoleCredentialsMessage) {
        self.shared.credentials.put(
            &message.task_arn,
            message.role_type,
            message.role_credentials,
        );
    }

    /// Closes every inbox and waits for the actors to return. Containers keep running.
    pub async fn shutdown(mut self) {
        self.actors.clear();
        for h in self.handles.drain(..) {
            let _ = h.await;
        }
    }
}

/// Moves a payload task's credentials into `store`, leaving only their id, role and
/// expiry on the task (which is written to the state file).
pub(crate) fn take_credentials(store: &TaskCredentials, mut task: acs::Task) -> acs::Task {
    let kinds = [
        (acs::RoleType::TaskApplication, task.role_credentials.take()),
        (
            acs::RoleType::TaskExecution,
            task.execution_role_credentials.take(),
        ),
    ];
    for (kind, creds) in kinds {
        let Some(creds) = creds else { continue };
        let redacted = creds.redacted();
        if !creds.access_key_id.is_empty() {
            store.put(&task.arn, kind, creds);
        }
        match kind {
            acs::RoleType::TaskApplication => task.role_credentials = Some(redacted),
            acs::RoleType::TaskExecution => task.execution_role_credentials = Some(redacted),
        }
    }
    task
}

#[cfg(test)]
mod credentials_tests {
    use super::*;

    #[test]
    fn payload_credentials_go_to_memory_and_only_their_id_stays_on_the_task() {
        let store = TaskCredentials::default();
        let creds = acs::RoleCredentials {
            credentials_id: "id1".into(),
            access_key_id: "ASIA1".into(),
            secret_access_key: "s3cr3t-value".into(),
            session_token: "tok-value".into(),
            expiration: "2026-12-07T03:00:00Z".into(),
            role_arn: "arn:aws:iam::1:role/app".into(),
        };
        let task = acs::Task {
            arn: "t1".into(),
            role_credentials: Some(creds.clone()),
            execution_role_credentials: Some(acs::RoleCredentials {
                credentials_id: "ex1".into(),
                ..creds.clone()
            }),
            ..acs::Task::default()
        };
        let task = take_credentials(&store, task);
        let kept = task.role_credentials.expect("id kept");
        assert_eq!(kept.credentials_id, "id1");
        assert!(kept.secret_access_key.is_empty() && kept.session_token.is_empty());
        let written = serde_json::to_string(&task.execution_role_credentials).expect("json");
        assert!(!written.contains("s3cr3t-value") && !written.contains("tok-value"));
        assert_eq!(store.get("t1", acs::RoleType::TaskApplication), Some(creds));
        assert!(store.get("t1", acs::RoleType::TaskExecution).is_some());
    }
}
