//! The server side of the agent channel: one [`Session`] per connected instance decides
//! which tasks the instance still has to be told about and turns them into ACS
//! `PayloadMessage`s. The binary pumps a session's payloads and acknowledgements over the
//! WebSocket; this module knows nothing of HTTP.
//!
//! Delivery is at least once: a task is sent until the agent acknowledges the payload
//! that carried it with its current desired status, and everything unacknowledged is sent
//! again on reconnect or after [`RESEND_AFTER`]. The agent treats repeats as no-ops.
//!
//! Tasks with a task role or an execution role carry fresh credentials of each
//! ([`crate::tasks::roles`]); the session remembers when each must be refreshed and
//! [`Session::due_credentials`] produces the `IAMRoleCredentialsMessage`s.

use crate::error::EcsError;
use crate::objects::{
    encode, instance_key, instance_task_prefix, task_key, StoredInstance, StoredTask,
};
use crate::presence::AgentSession;
pub use crate::tasks::roles::{
    cannot_assume_message, MintedCredentials, RoleSessionError, RoleSessions, SESSION_DURATION,
    TASKS_SERVICE,
};
use crate::tasks::roles::{compute_refresh_at, compute_role_credentials, compute_session_name};
use crate::{cluster_name, Caller, Ecs};
use model::acs;
use model::acs::RoleType;
use model::ecs::shapes::TaskStopCode;
use model::ecs::shapes::{ContainerDefinition, NetworkMode};
use model::ecs::status::{ContainerInstanceStatus, TaskStatus};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};
use store::{Step, Txn};
use tokio::sync::Notify;

/// How long a payload may stay unacknowledged before its tasks are sent again.
pub const RESEND_AFTER: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Entry {
    notify: Notify,
    generation: AtomicU64,
}

/// Wake-ups for connected instances: a placement or stop pokes the instance's session.
#[derive(Default)]
pub(crate) struct Channels {
    entries: Mutex<HashMap<(String, String), Arc<Entry>>>,
    /// Mints task role credentials; without it tasks get none (and a warning).
    roles: RwLock<Option<Arc<dyn RoleSessions>>>,
    /// Where AWS/ECS metrics from usage reports go; without it reports are dropped.
    usage: RwLock<Option<Arc<dyn crate::tasks::usage::UsageSink>>>,
}

impl Channels {
    fn entry(&self, cluster: &str, instance_id: &str) -> Arc<Entry> {
        let mut map = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        map.entry((cluster.to_owned(), instance_id.to_owned()))
            .or_default()
            .clone()
    }

    pub(crate) fn set_usage_sink(&self, sink: Arc<dyn crate::tasks::usage::UsageSink>) {
        *self.usage.write().unwrap_or_else(PoisonError::into_inner) = Some(sink);
    }

    pub(crate) fn usage_sink(&self) -> Option<Arc<dyn crate::tasks::usage::UsageSink>> {
        self.usage
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn roles(&self) -> Option<Arc<dyn RoleSessions>> {
        self.roles
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Tells the instance's session (if any) that its tasks changed.
    pub(crate) fn notify(&self, cluster: &str, instance_id: &str) {
        let map = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = map.get(&(cluster.to_owned(), instance_id.to_owned())) {
            e.notify.notify_one();
        }
    }
}

/// One connected instance's view of the channel.
pub struct Session {
    ecs: Ecs,
    cluster: String,
    cluster_arn: String,
    instance_id: String,
    instance_arn: String,
    entry: Arc<Entry>,
    generation: u64,
    /// This session as the instance's record names it.
    session: AgentSession,
    /// Task id → desired status the agent has acknowledged.
    delivered: HashMap<String, TaskStatus>,
    /// Message id → (when sent, [(task id, desired status)]).
    in_flight: HashMap<String, (Instant, Vec<(String, TaskStatus)>)>,
    seq: i32,
    /// (Task id, role) → when its credentials must be sent again.
    refreshes: HashMap<(String, RoleType), Refresh>,
    /// Counts the session in `stevedore_ecs_agent_sessions_open` while it lives.
    _counted: telemetry::AgentSession,
}

/// A role whose credentials an agent holds, and when they must be replaced.
#[derive(Clone, Debug)]
struct Refresh {
    task_arn: String,
    role_arn: String,
    at: SystemTime,
}

/// What became of minting a task's credentials.
enum Minted {
    /// Attached (or nothing to attach).
    Ready,
    /// Not now; the task is sent on a later round.
    Later,
    /// A role cannot be assumed: the task was asked to stop.
    Stopped,
}

impl Ecs {
    /// Sets what mints task role and execution role credentials (the binary's IAM).
    pub fn set_role_sessions(&self, roles: Arc<dyn RoleSessions>) {
        *self
            .channels
            .roles
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(roles);
    }

    /// Opens the channel of an instance (cluster and instance by name, id or ARN) and marks
    /// its agent connected (in-process agents; remote ones go through
    /// [`Ecs::open_session_as`]).
    pub async fn open_session(&self, cluster: &str, instance: &str) -> Result<Session, EcsError> {
        let root = Caller::root(&self.scope.account_id);
        self.open_session_as(cluster, instance, &root).await
    }

    /// [`Ecs::open_session`] for `caller`, who must own the instance (see
    /// [`crate::ownership`]); a refusal changes nothing.
    pub async fn open_session_as(
        &self,
        cluster: &str,
        instance: &str,
        caller: &Caller,
    ) -> Result<Session, EcsError> {
        let name = cluster_name(Some(cluster)).to_owned();
        self.active_cluster(Some(&name)).await?;
        let Some(id) = self.instance_id(&name, instance) else {
            return Err(EcsError::InvalidParameter(format!(
                "'{instance}' is not a container instance of cluster '{name}'."
            )));
        };
        if !caller.is_root() {
            if let Some((si, _, _)) = self.load_instance(&name, &id).await? {
                crate::ownership::check_owner(
                    caller,
                    si.owner.as_ref(),
                    "ecs:Poll",
                    &self.scope.container_instance(&name, &id),
                    "the channel belongs to another principal's container instance",
                )?;
            }
        }
        // The record names this session, so that only its own close (or the leader,
        // once this replica is gone) marks the agent disconnected (crate::presence).
        let session = AgentSession::open_here();
        let key = instance_key(&name, &id);
        let found = self
            .objects
            .retry(&key, || async {
                let Some((mut si, rev)) = self.objects.get::<StoredInstance>(&key).await? else {
                    return Ok(Step::Done(false));
                };
                if si.instance.status == Some(ContainerInstanceStatus::Inactive) {
                    return Err(EcsError::Client(
                        "The container instance is deregistered; register it again.".into(),
                    ));
                }
                si.instance.agent_connected = Some(true);
                si.instance.version = Some(si.instance.version.unwrap_or(0) + 1);
                si.agent_session = Some(session.clone());
                let txn = Txn::new()
                    .when(key.clone(), rev)
                    .put(key.clone(), encode(&si)?);
                Ok(Step::Commit(crate::presence::mark_present(txn)?, true))
            })
            .await?;
        if found {
            self.presence.opened(&key, &session);
        }
        if !found {
            return Err(EcsError::InvalidParameter(format!(
                "Container instance '{instance}' not found in cluster '{name}'."
            )));
        }
        let entry = self.channels.entry(&name, &id);
        let generation = entry.generation.fetch_add(1, Ordering::SeqCst) + 1;
        tracing::info!(cluster = %name, instance = %id, "Agent connected.");
        let instance_arn = self.scope.container_instance(&name, &id);
        Ok(Session {
            ecs: self.clone(),
            cluster_arn: self.scope.cluster(&name),
            _counted: telemetry::AgentSession::open(&instance_arn),
            instance_arn,
            cluster: name,
            instance_id: id,
            entry,
            generation,
            session,
            delivered: HashMap::new(),
            in_flight: HashMap::new(),
            seq: 0,
            refreshes: HashMap::new(),
        })
    }

    /// The endpoint agents open their channel on.
    pub fn poll_endpoint(&self) -> &str {
        &self.endpoint
    }
}

impl Session {
    /// Waits until this instance's tasks may have changed.
    pub async fn changed(&self) {
        self.entry.notify.notified().await;
    }

    /// The instance's cluster ARN.
    pub fn cluster_arn(&self) -> &str {
        &self.cluster_arn
    }

    /// The instance's ARN.
    pub fn instance_arn(&self) -> &str {
        &self.instance_arn
    }

    /// The next payload to send: every task of the instance whose current desired status
    /// the agent has not acknowledged and that is not already in flight. `None` when the
    /// agent is up to date.
    pub async fn next_payload(&mut self) -> Result<Option<acs::PayloadMessage>, EcsError> {
        let now = Instant::now();
        self.in_flight
            .retain(|_, (sent, _)| now.duration_since(*sent) < RESEND_AFTER);
        let prefix = instance_task_prefix(&self.cluster, &self.instance_id);
        let page = self
            .ecs
            .objects
            .store()
            .range(&prefix, None, usize::MAX)
            .await?;
        let mut tasks = Vec::new();
        let mut carried = Vec::new();
        // Acknowledgements of tasks that left the instance's index (stopped, then
        // expired) are dropped, so a long session's memory does not grow with history.
        let held: std::collections::HashSet<&str> = page
            .items
            .iter()
            .map(|kv| kv.key.rsplit('/').next().unwrap_or_default())
            .collect();
        self.delivered.retain(|id, _| held.contains(id.as_str()));
        for kv in page.items {
            let task_id = kv.key.rsplit('/').next().unwrap_or_default().to_owned();
            let Some((st, _)) = self
                .ecs
                .objects
                .get::<StoredTask>(&task_key(&self.cluster, &task_id))
                .await?
            else {
                continue;
            };
            if st.released {
                continue;
            }
            // A deactivating task runs on until its drain ends and the stop is requested.
            let desired = match st.task.desired_status {
                _ if st.deactivating => TaskStatus::Running,
                Some(d) => d,
                None => TaskStatus::Running,
            };
            let acked = self.delivered.get(&task_id) == Some(&desired);
            let flying = self
                .in_flight
                .values()
                .any(|(_, l)| l.iter().any(|(t, d)| *t == task_id && *d == desired));
            if acked || flying {
                continue;
            }
            let mut task = payload_task(&st, &self.cluster_arn, desired);
            if desired == TaskStatus::Running {
                match self.attach_credentials(&mut task, &st, &task_id).await {
                    Minted::Ready => {}
                    Minted::Later | Minted::Stopped => continue,
                }
            } else {
                self.refreshes.retain(|(t, _), _| *t != task_id);
            }
            tasks.push(task);
            carried.push((task_id, desired));
        }
        if tasks.is_empty() {
            return Ok(None);
        }
        self.seq += 1;
        let message_id = uuid::Uuid::new_v4().to_string();
        self.in_flight.insert(message_id.clone(), (now, carried));
        let generated_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Ok(Some(acs::PayloadMessage {
            container_instance_arn: Some(self.instance_arn.clone()),
            cluster_arn: Some(self.cluster_arn.clone()),
            tasks,
            generated_at: Some(generated_at),
            message_id,
            seq_num: Some(self.seq),
        }))
    }

    /// The role ARNs of a task: its overrides first, then its task definition's.
    async fn role_arns(&self, st: &StoredTask) -> Result<[Option<String>; 2], EcsError> {
        let ov = st.task.overrides.as_ref();
        let (mut task_role, mut exec_role) = (
            ov.and_then(|o| o.task_role_arn.clone()),
            ov.and_then(|o| o.execution_role_arn.clone()),
        );
        if task_role.is_none() || exec_role.is_none() {
            if let Some(arn) = st.task.task_definition_arn.as_deref() {
                let r = self.ecs.parse_task_def_ref(arn)?;
                if let Some((td, _)) = self.ecs.load_task_definition(&r).await? {
                    let td = td.task_definition;
                    task_role = task_role.or(td.task_role_arn);
                    exec_role = exec_role.or(td.execution_role_arn);
                }
            }
        }
        let keep = |a: Option<String>| a.filter(|a| !a.is_empty());
        Ok([keep(task_role), keep(exec_role)])
    }

    /// Mints and attaches the credentials of the task's roles. A role that cannot be
    /// assumed stops the task with AWS's reason; a transient failure sends it later.
    async fn attach_credentials(
        &mut self,
        task: &mut acs::Task,
        st: &StoredTask,
        task_id: &str,
    ) -> Minted {
        let arns = match self.role_arns(st).await {
            Ok(arns) => arns,
            Err(error) => {
                tracing::warn!(task = %task.arn, %error, "Could not read the task's roles.");
                return Minted::Later;
            }
        };
        if arns.iter().all(Option::is_none) {
            return Minted::Ready;
        }
        let Some(roles) = self.ecs.channels.roles() else {
            tracing::warn!(task = %task.arn, "The task has a role but this server mints no role credentials; it runs without them.");
            return Minted::Ready;
        };
        let kinds = [RoleType::TaskApplication, RoleType::TaskExecution];
        for (kind, arn) in kinds.into_iter().zip(arns) {
            let Some(role_arn) = arn else { continue };
            match mint(roles.as_ref(), &task.arn, kind, &role_arn).await {
                Ok((creds, refresh)) => {
                    match kind {
                        RoleType::TaskApplication => task.role_credentials = Some(creds),
                        RoleType::TaskExecution => task.execution_role_credentials = Some(creds),
                    }
                    self.refreshes.insert((task_id.to_owned(), kind), refresh);
                }
                Err(RoleSessionError::CannotAssume { message, .. }) => {
                    self.stop_unassumable(task_id, &task.arn, &message).await;
                    return Minted::Stopped;
                }
                Err(error @ RoleSessionError::Unavailable { .. }) => {
                    tracing::warn!(task = %task.arn, %error, "Task credentials not minted; trying again later.");
                    return Minted::Later;
                }
            }
        }
        Minted::Ready
    }

    async fn stop_unassumable(&mut self, task_id: &str, task_arn: &str, reason: &str) {
        self.refreshes.retain(|(t, _), _| t != task_id);
        tracing::warn!(task = %task_arn, reason, "A task role cannot be assumed; stopping the task.");
        let reason: String = reason.chars().take(255).collect();
        match self
            .ecs
            .request_stop(
                &self.cluster,
                task_id,
                TaskStopCode::TaskFailedToStart,
                &reason,
            )
            .await
        {
            Ok(_) => self.entry.notify.notify_one(),
            Err(error) => {
                tracing::warn!(task = %task_arn, %error, "Could not stop a task whose role cannot be assumed.")
            }
        }
    }

    /// Fresh credentials for every role whose refresh is due at `now`, as
    /// `IAMRoleCredentialsMessage`s. A role that can no longer be assumed stops its task.
    pub async fn due_credentials(
        &mut self,
        now: SystemTime,
    ) -> Vec<acs::IAMRoleCredentialsMessage> {
        let Some(roles) = self.ecs.channels.roles() else {
            return Vec::new();
        };
        let due: Vec<_> = self
            .refreshes
            .iter()
            .filter(|(_, r)| crate::tasks::roles::is_refresh_due(now, r.at))
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect();
        let mut out = Vec::new();
        for ((task_id, kind), r) in due {
            let live = self
                .ecs
                .objects
                .get::<StoredTask>(&task_key(&self.cluster, &task_id))
                .await;
            match live {
                Ok(Some((st, _))) if !st.released => {}
                Ok(_) => {
                    self.refreshes.remove(&(task_id, kind));
                    continue;
                }
                Err(error) => {
                    tracing::warn!(task = %r.task_arn, %error, "Could not read a task to refresh its credentials.");
                    continue;
                }
            }
            match mint(roles.as_ref(), &r.task_arn, kind, &r.role_arn).await {
                Ok((creds, refresh)) => {
                    self.refreshes.insert((task_id, kind), refresh);
                    out.push(acs::IAMRoleCredentialsMessage {
                        message_id: uuid::Uuid::new_v4().to_string(),
                        task_arn: r.task_arn,
                        role_type: kind,
                        role_credentials: creds,
                    });
                }
                Err(RoleSessionError::CannotAssume { message, .. }) => {
                    self.stop_unassumable(&task_id, &r.task_arn, &message).await;
                }
                Err(error) => {
                    tracing::warn!(task = %r.task_arn, %error, "Task credentials not refreshed; trying again later.");
                }
            }
        }
        out
    }

    /// Records the agent's acknowledgement of a payload.
    pub fn ack(&mut self, message_id: &str) {
        if let Some((_, carried)) = self.in_flight.remove(message_id) {
            for (task, desired) in carried {
                self.delivered.insert(task, desired);
            }
        }
    }

    /// Records a refusal: the payload's tasks will be sent again.
    pub fn nack(&mut self, message_id: &str) {
        self.in_flight.remove(message_id);
    }

    /// Records the container health the agent reports for this instance's tasks
    /// (idempotent: the agent resends after reconnecting). Returns how many tasks changed.
    pub async fn publish_health(
        &self,
        report: &acs::PublishHealthRequest,
    ) -> Result<usize, EcsError> {
        self.ecs
            .apply_health_report(&self.cluster, &self.instance_id, report)
            .await
    }

    /// Turns the agent's container usage report into AWS/ECS metrics. Returns how many
    /// datapoints it made.
    pub async fn publish_usage(
        &self,
        report: &acs::PublishMetricsRequest,
    ) -> Result<usize, EcsError> {
        self.ecs
            .apply_usage_report(&self.cluster, &self.instance_id, report)
            .await
    }

    /// Closes the session; the agent counts as disconnected unless it already reconnected.
    pub async fn close(self) {
        if self.entry.generation.load(Ordering::SeqCst) != self.generation {
            return;
        }
        // Only if the record still names this session: the agent may have reconnected
        // to another replica meanwhile.
        let key = instance_key(&self.cluster, &self.instance_id);
        self.ecs.presence.closed(&key, &self.session);
        match self.ecs.end_session(&key, &self.session).await {
            Ok(false) => {
                tracing::info!(cluster = %self.cluster, instance = %self.instance_id, "Agent left; it holds a newer session (on another replica).")
            }
            Ok(true) => {
                tracing::info!(cluster = %self.cluster, instance = %self.instance_id, "Agent disconnected.")
            }
            Err(error) => {
                tracing::warn!(cluster = %self.cluster, instance = %self.instance_id, %error, "Could not record the agent's disconnection.")
            }
        }
    }
}

/// Mints one role's credentials for a task, with when to refresh them.
async fn mint(
    roles: &dyn RoleSessions,
    task_arn: &str,
    kind: RoleType,
    role_arn: &str,
) -> Result<(acs::RoleCredentials, Refresh), RoleSessionError> {
    let issued = SystemTime::now();
    let minted = roles
        .issue(role_arn, &compute_session_name(task_arn), SESSION_DURATION)
        .await?;
    let refresh = Refresh {
        task_arn: task_arn.to_owned(),
        role_arn: role_arn.to_owned(),
        at: compute_refresh_at(issued, minted.expiration),
    };
    let id = roles.credentials_id(task_arn, kind);
    Ok((compute_role_credentials(id, role_arn, minted), refresh))
}

fn ns(seconds: Option<i32>) -> Option<i64> {
    seconds.map(|s| i64::from(s) * 1_000_000_000)
}

/// Docker Engine API fragments for the options ACS has no member for.
fn docker_config(c: &ContainerDefinition) -> Option<acs::DockerConfig> {
    use serde_json::{json, Map, Value};
    let mut config = Map::new();
    if let Some(l) = &c.docker_labels {
        config.insert("Labels".into(), json!(l));
    }
    if let Some(h) = &c.health_check {
        config.insert(
            "Healthcheck".into(),
            json!({"Test": h.command, "Interval": ns(h.interval.or(Some(30))), "Timeout": ns(h.timeout.or(Some(5))), "Retries": h.retries.unwrap_or(3), "StartPeriod": ns(h.start_period)}),
        );
    }
    for (k, v) in [
        ("User", &c.user),
        ("WorkingDir", &c.working_directory),
        ("Hostname", &c.hostname),
    ] {
        if let Some(v) = v {
            config.insert(k.into(), json!(v));
        }
    }
    let mut host = Map::new();
    if let Some(lc) = &c.log_configuration {
        host.insert("LogConfig".into(), json!({"Type": lc.log_driver.as_str(), "Config": lc.options.clone().unwrap_or_default()}));
    }
    if let Some(r) = c.memory_reservation {
        host.insert(
            "MemoryReservation".into(),
            json!(i64::from(r) * 1024 * 1024),
        );
    }
    if let Some(u) = &c.ulimits {
        let list: Vec<Value> = u
            .iter()
            .map(|u| json!({"Name": u.name.as_str(), "Soft": u.soft_limit, "Hard": u.hard_limit}))
            .collect();
        host.insert("Ulimits".into(), Value::Array(list));
    }
    if let Some(lp) = &c.linux_parameters {
        if let Some(init) = lp.init_process_enabled {
            host.insert("Init".into(), json!(init));
        }
        if let Some(caps) = &lp.capabilities {
            host.insert("CapAdd".into(), json!(caps.add.clone().unwrap_or_default()));
            host.insert(
                "CapDrop".into(),
                json!(caps.drop.clone().unwrap_or_default()),
            );
        }
    }
    for (k, v) in [("ReadonlyRootfs", c.readonly_root_filesystem)] {
        if let Some(v) = v {
            host.insert(k.into(), json!(v));
        }
    }
    for (k, v) in [
        ("Dns", &c.dns_servers),
        ("DnsSearch", &c.dns_search_domains),
    ] {
        if let Some(v) = v {
            host.insert(k.into(), json!(v));
        }
    }
    if let Some(eh) = &c.extra_hosts {
        let list: Vec<String> = eh
            .iter()
            .map(|h| format!("{}:{}", h.hostname, h.ip_address))
            .collect();
        host.insert("ExtraHosts".into(), json!(list));
    }
    if config.is_empty() && host.is_empty() {
        return None;
    }
    Some(acs::DockerConfig {
        version: Some("1.41".into()),
        config: (!config.is_empty()).then(|| Value::Object(config).to_string()),
        host_config: (!host.is_empty()).then(|| Value::Object(host).to_string()),
    })
}

/// A stored task in the agent's form.
fn payload_task(st: &StoredTask, cluster_arn: &str, desired: TaskStatus) -> acs::Task {
    let t = &st.task;
    let (family, version) = t
        .task_definition_arn
        .as_deref()
        .and_then(|a| a.rsplit('/').next())
        .and_then(|fr| fr.rsplit_once(':'))
        .map(|(f, r)| (f.to_owned(), r.to_owned()))
        .unwrap_or_default();
    let arns: HashMap<&str, &str> = t
        .containers
        .iter()
        .flatten()
        .filter_map(|c| Some((c.name.as_deref()?, c.container_arn.as_deref()?)))
        .collect();
    let containers = st
        .containers
        .iter()
        .map(|c| {
            let name = c.name.clone().unwrap_or_default();
            acs::Container {
                container_arn: arns.get(name.as_str()).map(|a| (*a).to_owned()),
                image: c.image.clone().unwrap_or_default(),
                cpu: c.cpu,
                memory: c.memory,
                essential: c.essential.unwrap_or(true),
                command: c.command.clone(),
                entry_point: c.entry_point.clone(),
                environment: crate::tasks::launch::env_map(c.environment.as_deref()),
                port_mappings: c
                    .port_mappings
                    .iter()
                    .flatten()
                    .map(|p| acs::PortMapping {
                        container_port: p.container_port,
                        host_port: p.host_port,
                        container_port_range: p.container_port_range.clone(),
                        protocol: p.protocol.map(|p| p.as_str().to_owned()),
                    })
                    .collect(),
                mount_points: c
                    .mount_points
                    .iter()
                    .flatten()
                    .map(|m| acs::MountPoint {
                        source_volume: m.source_volume.clone(),
                        container_path: m.container_path.clone(),
                        read_only: m.read_only,
                    })
                    .collect(),
                volumes_from: c
                    .volumes_from
                    .iter()
                    .flatten()
                    .map(|v| acs::VolumeFrom {
                        source_container: v.source_container.clone(),
                        read_only: v.read_only,
                    })
                    .collect(),
                links: c.links.clone(),
                depends_on: c
                    .depends_on
                    .iter()
                    .flatten()
                    .map(|d| acs::ContainerDependency {
                        container_name: d.container_name.clone(),
                        condition: d.condition.as_str().to_owned(),
                    })
                    .collect(),
                start_timeout: c.start_timeout,
                stop_timeout: c.stop_timeout,
                privileged: c.privileged,
                docker_config: docker_config(c),
                health_check_type: c.health_check.as_ref().map(|_| "docker".to_owned()),
                name,
            }
        })
        .collect();
    acs::Task {
        arn: t.task_arn.clone().unwrap_or_default(),
        task_cluster_arn: Some(cluster_arn.to_owned()),
        desired_status: desired.as_str().to_owned(),
        family,
        version,
        cpu: t
            .cpu
            .as_deref()
            .and_then(|c| c.parse::<f64>().ok())
            .map(|c| c / 1024.0),
        memory: t.memory.as_deref().and_then(|m| m.parse().ok()),
        network_mode: Some(
            st.network_mode
                .unwrap_or(NetworkMode::Bridge)
                .as_str()
                .to_owned(),
        ),
        launch_type: t.launch_type.map(|l| l.as_str().to_owned()),
        group: t.group.clone(),
        service_name: t
            .group
            .as_deref()
            .and_then(|g| g.strip_prefix("service:"))
            .map(str::to_owned),
        volumes: st
            .volumes
            .iter()
            .map(|v| acs::Volume {
                name: v.name.clone().unwrap_or_default(),
                type_: Some(
                    if v.docker_volume_configuration.is_some() {
                        "docker"
                    } else {
                        "host"
                    }
                    .to_owned(),
                ),
                host: v.host.as_ref().map(|h| acs::HostVolumeProperties {
                    source_path: h.source_path.clone(),
                }),
            })
            .collect(),
        containers,
        elastic_network_interfaces: st
            .eni
            .iter()
            .map(crate::tasks::awsvpc::compute_acs_eni)
            .collect(),
        role_credentials: None,
        execution_role_credentials: None,
    }
}
