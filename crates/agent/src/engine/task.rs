//! One task's actor: it alone owns the task's state, takes messages from its inbox
//! (payload updates) and, between them, polls Docker on a tick. Each pass asks
//! `lifecycle::next_step` what every container needs, performs it, then reports the
//! task's status upstream if it changed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lifecycle::{
    essential_exited, next_step, observe, task_status, Condition, ContainerStatus, Dependency,
    DesiredStatus, Known, Member as LMember, Step,
};
use model::acs;
use model::ecs::shapes::{
    ContainerStateChange, NetworkBinding, SubmitTaskStateChangeRequest, TransportProtocol,
};
use rand::Rng;
use tokio::sync::mpsc;

use super::spec::{
    compute_create_body, compute_docker_name, compute_network_name, compute_pause_body,
    compute_task_eni, parse_gateway_cidr, LABEL_NETWORK, PAUSE_CONTAINER_NAME,
};
use super::{Shared, SubmitError};
use crate::metadata::types::format_timestamp;
use crate::metadata::AwsvpcView;
use crate::metadata::{ContainerView, PortView, TaskView};
use crate::runtime::{ContainerInfo, NetworkSpec, Runtime, RuntimeError};

/// A message to a task actor.
#[derive(Debug)]
pub(crate) enum Msg {
    /// A new payload for the task.
    Update(Box<acs::Task>),
}

/// What the actor knows of one container.
#[derive(Debug)]
pub(crate) struct Member {
    pub spec: acs::Container,
    pub known: Known,
    pub id: Option<String>,
    pub reason: Option<String>,
    pub bindings: Vec<NetworkBinding>,
    /// What Docker last reported.
    pub info: Option<ContainerInfo>,
}

pub(crate) struct TaskActor<R: Runtime> {
    pub shared: Arc<Shared<R>>,
    pub task: acs::Task,
    pub desired: DesiredStatus,
    pub members: Vec<Member>,
    pub sent: Option<ContainerStatus>,
    pub reason: Option<String>,
    pub stopped_at: Option<u64>,
    /// Container name → task metadata endpoint token.
    pub metadata_tokens: BTreeMap<String, String>,
    pub pull_started_at: Option<SystemTime>,
    pub pull_stopped_at: Option<SystemTime>,
    /// The awsvpc task's pause container (it holds the task's network namespace).
    pub pause_id: Option<String>,
    /// Whether it was running when last seen.
    pub pause_running: bool,
}

fn epoch_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The desired status a payload asks for.
pub(crate) fn parse_desired(s: &str) -> DesiredStatus {
    if s == "STOPPED" {
        DesiredStatus::Stopped
    } else {
        DesiredStatus::Running
    }
}

/// What Docker's view of a container means for what is known of it.
pub(crate) fn apply_info(m: &mut Member, info: &ContainerInfo) {
    m.id = Some(info.id.clone());
    m.info = Some(info.clone());
    m.known.health = info.health;
    if info.running {
        observe(&mut m.known, ContainerStatus::Running);
    } else if info.started {
        m.known.exit_code = info.exit_code;
        if info.oom_killed && m.reason.is_none() {
            // ECS's words, which users search for.
            m.reason = Some("OutOfMemoryError: Container killed due to memory usage".into());
        }
        observe(&mut m.known, ContainerStatus::Stopped);
    } else {
        observe(&mut m.known, ContainerStatus::Created);
    }
    if !info.ports.is_empty() {
        m.bindings = info
            .ports
            .iter()
            .map(|p| NetworkBinding {
                bind_ip: Some(if p.host_ip.is_empty() {
                    "0.0.0.0".into()
                } else {
                    p.host_ip.clone()
                }),
                container_port: Some(i32::from(p.container_port)),
                host_port: Some(i32::from(p.host_port)),
                protocol: Some(if p.protocol == "udp" {
                    TransportProtocol::Udp
                } else {
                    TransportProtocol::Tcp
                }),
                ..NetworkBinding::default()
            })
            .collect();
    }
}

impl<R: Runtime> TaskActor<R> {
    /// Runs until the task is stopped, reported and cleaned up, or the inbox closes
    /// (agent shutdown: containers keep running).
    pub async fn run(mut self, mut inbox: mpsc::Receiver<Msg>) {
        loop {
            self.progress().await;
            self.report().await;
            self.publish();
            if self.sent == Some(ContainerStatus::Stopped) && self.cleanup_if_due().await {
                if let Some(metadata) = &self.shared.metadata {
                    metadata.index.remove(&self.task.arn);
                }
                self.shared.credentials.remove_task(&self.task.arn);
                if let Some(board) = &self.shared.health {
                    board.remove(&self.task.arn);
                }
                return;
            }
            tokio::select! {
                msg = inbox.recv() => match msg {
                    Some(Msg::Update(t)) => self.apply_update(*t),
                    None => return,
                },
                () = tokio::time::sleep(self.shared.config.poll_interval) => {}
            }
            self.poll().await;
            self.record_health();
        }
    }

    fn is_awsvpc(&self) -> bool {
        self.task.network_mode.as_deref() == Some("awsvpc")
    }

    /// Puts the verdicts of the containers with a health check on the health board
    /// (the channel sends what changed).
    fn record_health(&self) {
        let Some(board) = &self.shared.health else {
            return;
        };
        let verdicts: Vec<(&str, &str)> = self
            .members
            .iter()
            .filter(|m| m.spec.health_check_type.is_some())
            .map(|m| {
                let status = match m.known.health {
                    lifecycle::Health::Healthy => "HEALTHY",
                    lifecycle::Health::Unhealthy => "UNHEALTHY",
                    lifecycle::Health::Unknown => "UNKNOWN",
                };
                (m.spec.name.as_str(), status)
            })
            .collect();
        if verdicts.is_empty() {
            return;
        }
        let key = crate::health::TaskKey {
            arn: &self.task.arn,
            cluster: &self.shared.config.cluster,
            family: &self.task.family,
            version: &self.task.version,
        };
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        if board.record(&key, &verdicts, now) {
            tracing::info!(task = %self.task.arn, ?verdicts, "Container health changed.");
        }
    }

    /// The pause container's id, after making it exist and run: the shared network, the
    /// pause image, then the container at the task's address (created once: its name is
    /// saved first, so a restarted agent finds it instead of making a twin).
    async fn ensure_pause(&mut self) -> Result<String, RuntimeError> {
        if let (Some(id), true) = (&self.pause_id, self.pause_running) {
            return Ok(id.clone());
        }
        let rt = self.shared.runtime.clone();
        let (eni, _) = compute_task_eni(&self.task).map_err(RuntimeError::CannotCreate)?;
        let (subnet, gateway) = eni
            .subnet_gateway_ipv4_address
            .as_deref()
            .and_then(parse_gateway_cidr)
            .ok_or_else(|| {
                RuntimeError::CannotCreate(
                    "the task's network interface has no valid subnetGatewayIpv4Address".into(),
                )
            })?;
        rt.ensure_network(&NetworkSpec {
            name: compute_network_name(eni),
            subnet,
            gateway,
            labels: [(LABEL_NETWORK.to_owned(), "awsvpc".to_owned())].into(),
        })
        .await?;
        let image = self.ensure_pause_image().await?;
        let id = match self.pause_id.clone() {
            Some(id) => id,
            None => {
                let name = self.reserve_docker_name(PAUSE_CONTAINER_NAME).await?;
                let body = compute_pause_body(&self.shared.config.cluster, &self.task, &image)
                    .map_err(RuntimeError::CannotCreate)?;
                let id = match rt.create(&name, body).await {
                    Ok(id) => id,
                    // Created before a crash: adopt it.
                    Err(e) => match rt.inspect(&name).await {
                        Ok(info) => info.id,
                        Err(_) => return Err(e),
                    },
                };
                self.pause_id = Some(id.clone());
                id
            }
        };
        let info = rt.inspect(&id).await?;
        if !info.running {
            rt.start(&id).await?;
        }
        self.pause_running = true;
        tracing::info!(task = %self.task.arn, pause = %id, "Pause container running.");
        Ok(id)
    }

    /// The pause image, made present: the configured one is pulled if missing; the
    /// built-in one is imported from the program this agent carries.
    async fn ensure_pause_image(&self) -> Result<String, RuntimeError> {
        let rt = &self.shared.runtime;
        if let Some(image) = &self.shared.config.pause_image {
            rt.ensure_image(image, None).await?;
            return Ok(image.clone());
        }
        let image = crate::pause::IMAGE;
        if !rt.has_image(image).await? {
            let program = crate::pause::compute_program(std::env::consts::ARCH)
                .map_err(|e| RuntimeError::CannotPull(e.to_string()))?;
            let tar = crate::pause::compute_rootfs_tar(crate::pause::PROGRAM_PATH, &program);
            let cmd = format!("CMD [\"{}\"]", crate::pause::PROGRAM_PATH);
            rt.import_image(image, tar, &[cmd.as_str()]).await?;
        }
        Ok(image.to_owned())
    }

    /// Stops the pause container once every task container has stopped, so Docker frees
    /// the task's address before the server (told STOPPED) hands it out again.
    async fn stop_pause(&mut self) {
        let Some(id) = self.pause_id.clone().filter(|_| self.pause_running) else {
            return;
        };
        match self.shared.runtime.stop(&id, Duration::ZERO).await {
            Ok(()) | Err(RuntimeError::NotFound(_)) => {
                tracing::info!(task = %self.task.arn, pause = %id, "Pause container stopped.");
            }
            Err(error) => {
                tracing::warn!(task = %self.task.arn, %error, "Could not stop the pause container.");
            }
        }
        self.pause_running = false;
    }

    /// The Docker name saved for `cname`, choosing and saving a new one first if needed.
    async fn reserve_docker_name(&self, cname: &str) -> Result<String, RuntimeError> {
        let arn = self.task.arn.clone();
        if let Some(n) = self
            .shared
            .state
            .snapshot()
            .tasks
            .get(&arn)
            .and_then(|r| r.docker_names.get(cname).cloned())
        {
            return Ok(n);
        }
        let random: String = rand::thread_rng()
            .sample_iter(&rand::distributions::Alphanumeric)
            .take(12)
            .map(|b| char::from(b).to_ascii_lowercase())
            .collect();
        let name = compute_docker_name(&self.task, cname, &random);
        let (c2, n2) = (cname.to_owned(), name.clone());
        self.shared
            .state
            .update_durable(|doc| {
                if let Some(r) = doc.tasks.get_mut(&arn) {
                    r.docker_names.insert(c2, n2);
                }
            })
            .await
            .map_err(|e| RuntimeError::CannotCreate(e.to_string()))?;
        Ok(name)
    }

    fn apply_update(&mut self, task: acs::Task) {
        let wanted = parse_desired(&task.desired_status);
        self.desired = self.desired.advance(wanted);
        if wanted == DesiredStatus::Stopped && self.reason.is_none() {
            self.reason = Some("Task stopped by user".into());
        }
        let arn = self.task.arn.clone();
        let saved = task.clone();
        self.persist(move |r| r.task = saved, &arn);
        self.task = task;
    }

    /// Records a change to the task's saved record; the writer thread writes it soon (and
    /// logs a failure).
    fn persist(&self, f: impl FnOnce(&mut crate::state::TaskRecord), arn: &str) {
        self.shared.state.update(|doc| {
            if let Some(r) = doc.tasks.get_mut(arn) {
                f(r);
            }
        });
    }

    fn dependencies_of(&self, i: usize) -> Vec<Dependency<'_>> {
        self.members[i]
            .spec
            .depends_on
            .iter()
            .filter_map(|d| {
                let condition = Condition::parse(&d.condition)?;
                let other = self
                    .members
                    .iter()
                    .find(|m| m.spec.name == d.container_name)?;
                Some(Dependency {
                    name: &other.spec.name,
                    condition,
                    known: &other.known,
                })
            })
            .collect()
    }

    fn dependents_of(&self, i: usize) -> Vec<(&str, &Known)> {
        let name = &self.members[i].spec.name;
        self.members
            .iter()
            .filter(|m| m.spec.depends_on.iter().any(|d| &d.container_name == name))
            .map(|m| (m.spec.name.as_str(), &m.known))
            .collect()
    }

    /// Applies next steps until nothing more can happen now.
    async fn progress(&mut self) {
        for _pass in 0..(self.members.len() * 4 + 4) {
            self.check_essential();
            let steps: Vec<(usize, Step)> = (0..self.members.len())
                .map(|i| {
                    let deps = self.dependencies_of(i);
                    let dependents = self.dependents_of(i);
                    (
                        i,
                        next_step(&self.members[i].known, self.desired, &deps, &dependents),
                    )
                })
                .collect();
            let mut changed = false;
            for (i, step) in steps {
                match step {
                    Step::Act(target) => changed |= self.act(i, target).await,
                    Step::Mark(target) => {
                        if self.members[i].reason.is_none()
                            && self.desired == DesiredStatus::Running
                        {
                            self.members[i].reason = Some("Dependency can no longer be met".into());
                        }
                        changed |= observe(&mut self.members[i].known, target);
                    }
                    Step::Wait(_) | Step::Done => {}
                }
            }
            if !changed {
                break;
            }
        }
    }

    fn check_essential(&mut self) {
        if self.desired == DesiredStatus::Running {
            let members: Vec<LMember<'_>> = self
                .members
                .iter()
                .map(|m| LMember {
                    essential: m.spec.essential,
                    known: &m.known,
                })
                .collect();
            if essential_exited(&members) {
                self.desired = DesiredStatus::Stopped;
                if self.reason.is_none() {
                    self.reason = Some("Essential container in task exited".into());
                }
            }
        }
    }

    /// Fails the container for good: it is recorded STOPPED with `error` as its reason,
    /// and the task stops.
    fn fail(&mut self, i: usize, error: &RuntimeError) {
        tracing::warn!(task = %self.task.arn, container = %self.members[i].spec.name, %error, "Container failed.");
        self.members[i].reason = Some(error.to_string());
        observe(&mut self.members[i].known, ContainerStatus::Stopped);
        self.desired = DesiredStatus::Stopped;
        if self.reason.is_none() {
            self.reason = Some(error.to_string());
        }
    }

    /// Performs the effect toward `target`; returns whether the container moved.
    async fn act(&mut self, i: usize, target: ContainerStatus) -> bool {
        let rt = self.shared.runtime.clone();
        if target == ContainerStatus::Running {
            // Its metadata must answer from the container's first instruction.
            self.publish();
        }
        let result = match target {
            ContainerStatus::Pulled => self.pull(i).await,
            ContainerStatus::Created => self.create(i).await,
            ContainerStatus::Running => match self.members[i].id.clone() {
                Some(id) => match rt.start(&id).await {
                    Ok(()) => match rt.inspect(&id).await {
                        Ok(info) => {
                            apply_info(&mut self.members[i], &info);
                            super::logs::start_if_awslogs(
                                &self.shared,
                                &self.task,
                                &self.members[i].spec,
                                &id,
                            );
                            return true;
                        }
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                },
                None => Err(RuntimeError::NotFound("container was never created".into())),
            },
            ContainerStatus::Stopped => match self.members[i].id.clone() {
                Some(id) => {
                    let grace = Duration::from_secs(
                        self.members[i]
                            .spec
                            .stop_timeout
                            .and_then(|t| u64::try_from(t).ok())
                            .unwrap_or(self.shared.config.default_stop_timeout.as_secs()),
                    );
                    match rt.stop(&id, grace).await.and(rt.inspect(&id).await) {
                        Ok(info) => {
                            apply_info(&mut self.members[i], &info);
                            observe(&mut self.members[i].known, ContainerStatus::Stopped);
                            return true;
                        }
                        Err(RuntimeError::NotFound(_)) => Ok(()),
                        Err(e) => Err(e),
                    }
                }
                None => Ok(()),
            },
            ContainerStatus::None => Ok(()),
        };
        match result {
            Ok(()) => observe(&mut self.members[i].known, target),
            Err(e) if e.is_transient() => {
                tracing::debug!(task = %self.task.arn, error = %e, "Transient runtime error; retrying on the next tick.");
                false
            }
            Err(e) => {
                if target == ContainerStatus::Stopped {
                    observe(&mut self.members[i].known, ContainerStatus::Stopped);
                    self.members[i].reason = Some(e.to_string());
                } else {
                    self.fail(i, &e);
                }
                true
            }
        }
    }

    /// Makes the container's image present, with registry credentials when the image
    /// lives on Stevedore's own registry.
    async fn pull(&mut self, i: usize) -> Result<(), RuntimeError> {
        self.pull_started_at.get_or_insert_with(SystemTime::now);
        let result = self.pull_image(i).await;
        if result.is_ok() {
            self.pull_stopped_at = Some(SystemTime::now());
        }
        result
    }

    async fn pull_image(&self, i: usize) -> Result<(), RuntimeError> {
        let image = &self.members[i].spec.image;
        // As on ECS: the execution role (not the instance's) pulls the task's images.
        let execution = self.task.execution_role_credentials.as_ref().and_then(|_| {
            self.shared
                .credentials
                .get(&self.task.arn, model::acs::RoleType::TaskExecution)
        });
        let role_provider = match (&self.shared.registry_auth, execution) {
            (Some(provider), Some(c)) => {
                Some(provider.with_credentials(crate::task_credentials::to_signing(&c)))
            }
            _ => None,
        };
        let provider = role_provider
            .as_ref()
            .or(self.shared.registry_auth.as_deref());
        let auth = match provider {
            Some(provider) => match provider.auth_for(image).await {
                Ok(auth) => auth,
                Err(error) if error.is_transient() => {
                    return Err(RuntimeError::Docker {
                        operation: "get_authorization_token",
                        message: error.to_string(),
                        transient: true,
                    })
                }
                Err(error) => {
                    return Err(RuntimeError::CannotPull(format!(
                        "pull image {image}: {error}"
                    )))
                }
            },
            None => None,
        };
        self.shared.runtime.ensure_image(image, auth.as_ref()).await
    }

    /// Records the Docker name, then creates (or, after a restart, finds) the container.
    async fn create(&mut self, i: usize) -> Result<(), RuntimeError> {
        let arn = self.task.arn.clone();
        let cname = self.members[i].spec.name.clone();
        let existing = self
            .shared
            .state
            .snapshot()
            .tasks
            .get(&arn)
            .map(|r| r.docker_names.clone())
            .unwrap_or_default();
        let mut names: BTreeMap<String, String> = existing;
        let new_name = (!names.contains_key(&cname)).then(|| {
            let random: String = rand::thread_rng()
                .sample_iter(&rand::distributions::Alphanumeric)
                .take(12)
                .map(|b| char::from(b).to_ascii_lowercase())
                .collect();
            compute_docker_name(&self.task, &cname, &random)
        });
        let new_token = (self.shared.metadata.is_some()
            && !self.metadata_tokens.contains_key(&cname))
        .then(|| uuid::Uuid::new_v4().simple().to_string());
        if new_name.is_some() || new_token.is_some() {
            let (c2, n2, t2) = (cname.clone(), new_name.clone(), new_token.clone());
            // Intent first: a restart must find this name (never create a twin) and the
            // metadata token the container was given.
            self.shared
                .state
                .update_durable(|doc| {
                    if let Some(r) = doc.tasks.get_mut(&arn) {
                        if let Some(t) = t2 {
                            r.metadata_tokens.insert(c2.clone(), t);
                        }
                        if let Some(n) = n2 {
                            r.docker_names.insert(c2, n);
                        }
                    }
                })
                .await
                .map_err(|e| RuntimeError::CannotCreate(e.to_string()))?;
        }
        if let Some(n) = new_name {
            names.insert(cname.clone(), n);
        }
        if let Some(t) = new_token {
            self.metadata_tokens.insert(cname.clone(), t);
        }
        let docker_name = names.get(&cname).cloned().unwrap_or_default();
        let env = self.compute_metadata_env(&cname);
        let pause = if self.is_awsvpc() {
            Some(self.ensure_pause().await?)
        } else {
            None
        };
        let body = compute_create_body(
            &self.shared.config.cluster,
            &self.task,
            &self.members[i].spec,
            &names,
            &env,
            pause.as_deref(),
        )
        .map_err(RuntimeError::CannotCreate)?;
        let mut body = body;
        if self.task.launch_type.as_deref() == Some("FARGATE") {
            crate::engine::spec::apply_fargate_limits(
                &mut body,
                &self.task,
                self.shared.config.sandbox_runtime.as_deref(),
                crate::engine::spec::host_cpus(),
            );
        }
        let rt = self.shared.runtime.clone();
        match rt.create(&docker_name, body).await {
            Ok(id) => {
                // Docker's name and image id for the metadata endpoint, before start.
                if let Ok(info) = rt.inspect(&id).await {
                    self.members[i].info = Some(info);
                }
                self.members[i].id = Some(id);
                Ok(())
            }
            Err(e) => match rt.inspect(&docker_name).await {
                // Created before a crash: adopt it.
                Ok(info) => {
                    apply_info(&mut self.members[i], &info);
                    Ok(())
                }
                Err(_) => Err(e),
            },
        }
    }

    /// Reads what Docker says of the containers that may have moved on their own.
    async fn poll(&mut self) {
        let rt = self.shared.runtime.clone();
        for m in &mut self.members {
            if m.known.status != ContainerStatus::Running {
                continue;
            }
            let Some(id) = m.id.clone() else { continue };
            match rt.inspect(&id).await {
                Ok(info) => apply_info(m, &info),
                Err(RuntimeError::NotFound(_)) => {
                    m.reason = Some("The container disappeared from Docker".into());
                    observe(&mut m.known, ContainerStatus::Stopped);
                }
                Err(error) => tracing::debug!(%error, "Could not inspect a container."),
            }
        }
    }

    /// `ECS_CONTAINER_METADATA_URI_V4` and `ECS_AGENT_URI` for container `name`, when the
    /// endpoint runs.
    fn compute_metadata_env(&self, name: &str) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        if let (Some(metadata), Some(token)) =
            (&self.shared.metadata, self.metadata_tokens.get(name))
        {
            let mode = self.task.network_mode.as_deref().unwrap_or("bridge");
            env.insert(
                crate::metadata::ENV_V4.to_owned(),
                metadata.compute_uri(mode, token),
            );
            env.insert(
                crate::metadata::ENV_AGENT_URI.to_owned(),
                metadata.compute_agent_uri(mode, token),
            );
        }
        if let Some(creds) = &self.task.role_credentials {
            match &self.shared.metadata {
                Some(metadata) => {
                    let mode = self.task.network_mode.as_deref().unwrap_or("bridge");
                    let (k, v) = metadata.compute_credentials_env(mode, &creds.credentials_id);
                    env.insert(k, v);
                }
                None => {
                    tracing::warn!(task = %self.task.arn, "The task has a role but the agent has no credentials endpoint; its containers get no credentials.");
                }
            }
        }
        env
    }

    /// Publishes this task's snapshot to the metadata endpoint, if there is one.
    fn publish(&self) {
        let Some(metadata) = &self.shared.metadata else {
            return;
        };
        let view = self.compute_view();
        if self.task.role_credentials.is_some() {
            self.shared
                .credentials
                .set_sources(&self.task.arn, compute_sources(&view));
        }
        metadata.index.publish(view);
    }

    fn compute_view(&self) -> TaskView {
        let desired = match self.desired {
            DesiredStatus::Stopped => "STOPPED",
            DesiredStatus::Running => "RUNNING",
        };
        let mode = self
            .task
            .network_mode
            .clone()
            .filter(|m| !m.is_empty() && m != "default")
            .unwrap_or_else(|| "bridge".to_owned());
        let eni = self
            .is_awsvpc()
            .then(|| compute_task_eni(&self.task).ok())
            .flatten();
        let containers = self
            .members
            .iter()
            .map(|m| {
                let info = m.info.as_ref();
                let ipv4_addresses = match eni {
                    // Joined to the pause namespace, Docker shows no network of its own.
                    Some((_, address)) => vec![address.to_owned()],
                    None => info.map(|i| i.ipv4_addresses.clone()).unwrap_or_default(),
                };
                let awsvpc = eni.map(|(e, _)| AwsvpcView {
                    mac_address: e.mac_address.clone(),
                    subnet_cidr: e
                        .subnet_gateway_ipv4_address
                        .as_deref()
                        .and_then(parse_gateway_cidr)
                        .map(|(s, _)| s),
                    private_dns_name: e.private_dns_name.clone(),
                    gateway_cidr: e.subnet_gateway_ipv4_address.clone(),
                });
                ContainerView {
                    name: m.spec.name.clone(),
                    docker_id: m.id.clone(),
                    docker_name: info.map(|i| i.name.clone()),
                    image: m.spec.image.clone(),
                    image_id: info.map(|i| i.image_id.clone()),
                    labels: info.map(|i| i.labels.clone()).unwrap_or_default(),
                    desired_status: desired.to_owned(),
                    known_status: lifecycle::ecs_status(m.known.status).to_owned(),
                    cpu: m.spec.cpu,
                    memory: m.spec.memory,
                    created_at: info.and_then(|i| i.created_at.clone()),
                    started_at: info.and_then(|i| i.started_at.clone()),
                    container_arn: m.spec.container_arn.clone(),
                    network_mode: mode.clone(),
                    ipv4_addresses,
                    awsvpc,
                    ports: info
                        .map(|i| {
                            i.ports
                                .iter()
                                .map(|p| PortView {
                                    container_port: p.container_port,
                                    protocol: p.protocol.clone(),
                                    host_port: p.host_port,
                                    host_ip: p.host_ip.clone(),
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    exit_code: m.known.exit_code,
                }
            })
            .collect();
        TaskView {
            cluster: self.shared.config.cluster.clone(),
            arn: self.task.arn.clone(),
            family: self.task.family.clone(),
            revision: self.task.version.clone(),
            desired_status: desired.to_owned(),
            known_status: lifecycle::ecs_status(self.compute_status()).to_owned(),
            cpu: self.task.cpu,
            memory: self.task.memory,
            pull_started_at: self.pull_started_at.map(format_timestamp),
            pull_stopped_at: self.pull_stopped_at.map(format_timestamp),
            availability_zone: self.shared.config.availability_zone.clone(),
            containers,
            tokens: self.metadata_tokens.clone(),
        }
    }

    fn compute_status(&self) -> ContainerStatus {
        let members: Vec<LMember<'_>> = self
            .members
            .iter()
            .map(|m| LMember {
                essential: m.spec.essential,
                known: &m.known,
            })
            .collect();
        task_status(&members)
    }

    fn compute_request(&self, status: ContainerStatus) -> SubmitTaskStateChangeRequest {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let stopped = status == ContainerStatus::Stopped;
        let containers = self
            .members
            .iter()
            .map(|m| ContainerStateChange {
                container_name: Some(m.spec.name.clone()),
                runtime_id: m.id.clone(),
                status: Some(lifecycle::ecs_status(m.known.status).to_owned()),
                exit_code: m.known.exit_code.and_then(|c| i32::try_from(c).ok()),
                network_bindings: Some(m.bindings.clone()),
                reason: m.reason.clone(),
                ..ContainerStateChange::default()
            })
            .collect();
        SubmitTaskStateChangeRequest {
            cluster: Some(self.shared.config.cluster.clone()),
            task: Some(self.task.arn.clone()),
            status: Some(lifecycle::ecs_status(status).to_owned()),
            reason: if stopped { self.reason.clone() } else { None },
            containers: Some(containers),
            pull_started_at: if stopped { None } else { Some(now) },
            pull_stopped_at: if stopped { None } else { Some(now) },
            execution_stopped_at: if stopped { Some(now) } else { None },
            ..SubmitTaskStateChangeRequest::default()
        }
    }

    /// Sends the task's status if it moved past what the server has; a failed send is
    /// retried on the next tick.
    async fn report(&mut self) {
        let status = self.compute_status();
        let due = match status {
            ContainerStatus::Running => self.sent.is_none(),
            ContainerStatus::Stopped => self.sent != Some(ContainerStatus::Stopped),
            _ => false,
        };
        if !due {
            return;
        }
        if status == ContainerStatus::Stopped {
            self.stop_pause().await;
        }
        let request = self.compute_request(status);
        let accepted = match self.shared.submit.submit(&request).await {
            Ok(()) => true,
            Err(SubmitError { message, transient }) => {
                tracing::warn!(task = %self.task.arn, error = %message, transient, "Task state change not delivered.");
                !transient
            }
        };
        if accepted {
            tracing::info!(task = %self.task.arn, status = lifecycle::ecs_status(status), "Task state reported.");
            self.sent = Some(status);
            let sent = lifecycle::ecs_status(status).to_owned();
            let stopped_at = (status == ContainerStatus::Stopped).then(epoch_secs);
            if stopped_at.is_some() {
                self.stopped_at = stopped_at;
            }
            let arn = self.task.arn.clone();
            self.persist(
                move |r| {
                    r.sent = Some(sent);
                    if stopped_at.is_some() {
                        r.stopped_at = stopped_at;
                    }
                },
                &arn,
            );
        }
    }

    /// Removes the stopped task's containers once the cleanup wait has passed; returns
    /// whether the task is gone.
    async fn cleanup_if_due(&mut self) -> bool {
        let stopped_at = *self.stopped_at.get_or_insert_with(epoch_secs);
        if epoch_secs() < stopped_at.saturating_add(self.shared.config.cleanup_wait.as_secs()) {
            return false;
        }
        let rt = self.shared.runtime.clone();
        for m in &self.members {
            if let Some(id) = &m.id {
                if let Err(error) = rt.remove(id).await {
                    tracing::warn!(%error, "Could not remove a stopped container; retrying later.");
                    return false;
                }
            }
        }
        // The namespace's owner goes last: the task's containers were joined to it.
        if let Some(id) = &self.pause_id {
            if let Err(error) = rt.remove(id).await {
                tracing::warn!(%error, "Could not remove the pause container; retrying later.");
                return false;
            }
        }
        let arn = self.task.arn.clone();
        if let Err(error) = self
            .shared
            .state
            .update_durable(|doc| doc.tasks.remove(&arn))
            .await
        {
            tracing::error!(%error, "Could not write the agent state.");
        }
        tracing::info!(task = %arn, "Stopped task cleaned up.");
        true
    }
}

/// A fresh member for a payload container.
pub(crate) fn new_member(spec: acs::Container) -> Member {
    Member {
        spec,
        known: Known::new(),
        id: None,
        reason: None,
        bindings: Vec::new(),
        info: None,
    }
}

/// Who may read a task's credentials: anyone on the instance for host mode (the task
/// has the instance's addresses), else the addresses of its containers.
pub(crate) fn compute_sources(view: &TaskView) -> crate::task_credentials::Sources {
    use crate::task_credentials::Sources;
    if view.containers.iter().any(|c| c.network_mode == "host") {
        return Sources::Any;
    }
    let mut list: Vec<std::net::IpAddr> = view
        .containers
        .iter()
        .flat_map(|c| c.ipv4_addresses.iter())
        .filter_map(|a| a.parse().ok())
        .collect();
    list.sort_unstable();
    list.dedup();
    Sources::Only(list)
}
