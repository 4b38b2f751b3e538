//! The container runtime behind a narrow [`Runtime`] trait, and its Docker Engine API
//! implementation ([`DockerRuntime`], bollard). Every call has a timeout; every error says
//! whether retrying can help ([`RuntimeError::is_transient`]) and carries the reason shown
//! to users (`CannotPullContainerError: ...`, `CannotCreateContainerError: ...`).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use bollard::auth::DockerCredentials;
use bollard::container::{
    Config, CreateContainerOptions, ListContainersOptions, RemoveContainerOptions,
    StopContainerOptions,
};
use bollard::image::CreateImageOptions;
use bollard::Docker;
use futures_util::StreamExt;
use lifecycle::Health;
use tokio::sync::mpsc;

/// Timeout of one ordinary Docker call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout of an image pull.
pub const PULL_TIMEOUT: Duration = Duration::from_secs(600);

/// What Docker reports of one container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerInfo {
    /// Docker's id.
    pub id: String,
    /// Name without the leading slash.
    pub name: String,
    /// Its labels.
    pub labels: HashMap<String, String>,
    /// Whether it runs now.
    pub running: bool,
    /// Whether it ever started (a created, never started container has not).
    pub started: bool,
    /// Exit code once it has exited.
    pub exit_code: Option<i64>,
    /// Health-check verdict.
    pub health: Health,
    /// Published ports: (container port, protocol, host ip, host port).
    pub ports: Vec<PortBinding>,
    /// The image's id (`sha256:...`).
    pub image_id: String,
    /// When Docker created it (RFC 3339, as Docker prints it).
    pub created_at: Option<String>,
    /// When it last started (RFC 3339), if it ever did.
    pub started_at: Option<String>,
    /// Its IPv4 address on each network it is attached to.
    pub ipv4_addresses: Vec<String>,
    /// Whether the kernel's OOM killer ended it (runc; gVisor reports only exit 137).
    pub oom_killed: bool,
}

/// One published port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortBinding {
    /// Port inside the container.
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// Address bound on the host.
    pub host_ip: String,
    /// Port on the host.
    pub host_port: u16,
}

/// Credentials for one registry, passed to Docker with a pull.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    /// User name (`AWS` for ECR-style tokens).
    pub username: String,
    /// Password or token.
    pub password: String,
    /// The registry's `host:port`.
    pub server_address: String,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("server_address", &self.server_address)
            .finish()
    }
}

/// A runtime failure.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The image is not present and could not be pulled.
    #[error("CannotPullContainerError: {0}")]
    CannotPull(String),
    /// Docker refused to create the container.
    #[error("CannotCreateContainerError: {0}")]
    CannotCreate(String),
    /// Docker refused to start the container.
    #[error("CannotStartContainerError: {0}")]
    CannotStart(String),
    /// The container does not exist.
    #[error("no such container: {0}")]
    NotFound(String),
    /// The call took longer than its timeout.
    #[error("Docker call {0} timed out")]
    Timeout(&'static str),
    /// Docker could not be reached or answered an error.
    #[error("Docker error in {operation}: {message}")]
    Docker {
        /// The call.
        operation: &'static str,
        /// What Docker said.
        message: String,
        /// Whether a retry may succeed.
        transient: bool,
    },
}

impl RuntimeError {
    /// Whether retrying the same call may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Timeout(_) => true,
            Self::Docker { transient, .. } => *transient,
            Self::CannotPull(_)
            | Self::CannotCreate(_)
            | Self::CannotStart(_)
            | Self::NotFound(_) => false,
        }
    }
}

/// The container operations the task engine needs.
#[async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// Docker's version string.
    async fn version(&self) -> Result<String, RuntimeError>;
    /// Makes `image` present locally. Without `auth`: uses it if there, pulls it
    /// anonymously otherwise. With `auth` (an image on Stevedore's own registry): pulls
    /// with those credentials, falling back to a local copy when the pull fails (ECS's
    /// `default` pull behaviour).
    async fn ensure_image(
        &self,
        image: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<(), RuntimeError>;
    /// Creates a container named `name` from a Docker Engine API create body; returns its id.
    async fn create(&self, name: &str, body: serde_json::Value) -> Result<String, RuntimeError>;
    /// Starts a created container.
    async fn start(&self, id: &str) -> Result<(), RuntimeError>;
    /// Stops a container: SIGTERM, then SIGKILL after `grace`.
    async fn stop(&self, id: &str, grace: Duration) -> Result<(), RuntimeError>;
    /// Removes a container (and its anonymous volumes).
    async fn remove(&self, id: &str) -> Result<(), RuntimeError>;
    /// Inspects a container by id or name.
    async fn inspect(&self, id: &str) -> Result<ContainerInfo, RuntimeError>;
    /// One sample of a container's resource statistics, in Docker's stats JSON.
    async fn stats(&self, id: &str) -> Result<serde_json::Value, RuntimeError>;
    /// The gateway address of Docker's default `bridge` network (how containers reach
    /// the host), if there is one.
    async fn bridge_gateway(&self) -> Result<Option<String>, RuntimeError>;
    /// Makes sure a bridge network `spec.name` with `spec.subnet` and `spec.gateway`
    /// exists. Idempotent and safe when several agents on one daemon race to create it.
    async fn ensure_network(&self, spec: &NetworkSpec) -> Result<(), RuntimeError>;
    /// Whether `image` is present locally.
    async fn has_image(&self, image: &str) -> Result<bool, RuntimeError>;
    /// Imports a root filesystem tar as image `reference`, applying Dockerfile
    /// instructions `changes` (e.g. `CMD ["/pause"]`).
    async fn import_image(
        &self,
        reference: &str,
        rootfs_tar: Vec<u8>,
        changes: &[&str],
    ) -> Result<(), RuntimeError>;
    /// Every container (running or not) carrying label `key=value`.
    async fn list_by_label(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Vec<ContainerInfo>, RuntimeError>;
    /// Follows a container's stdout and stderr from `since_secs` (epoch seconds) until it
    /// exits; lines arrive on the returned channel.
    fn follow_logs(
        &self,
        id: &str,
        since_secs: i64,
    ) -> mpsc::Receiver<Result<LogLine, RuntimeError>>;
}

/// A user-defined bridge network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkSpec {
    /// Its name.
    pub name: String,
    /// `10.200.0.0/16`.
    pub subnet: String,
    /// `10.200.0.1`.
    pub gateway: String,
    /// Labels (so tests and operators can find it).
    pub labels: HashMap<String, String>,
}

/// One line a container wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// When Docker received it, epoch nanoseconds.
    pub timestamp_ns: u64,
    /// The line, without its newline.
    pub message: String,
}

/// `2026-11-26T13:46:58.073143739Z` → epoch nanoseconds.
pub fn parse_timestamp_ns(s: &str) -> Option<u64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-');
    let (y, m, day): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':');
    let (hh, mm, ss): (i64, i64, i64) = (
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
    );
    // Days from the civil date (H. Hinnant's algorithm).
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()?;
    let digits: String = frac.chars().take(9).collect();
    let nanos: u64 = format!("{digits:0<9}").parse().ok()?;
    Some(secs * 1_000_000_000 + nanos)
}

/// [`Runtime`] over the local Docker daemon.
#[derive(Clone, Debug)]
pub struct DockerRuntime {
    docker: Docker,
}

impl DockerRuntime {
    /// Connects to the local daemon (`DOCKER_HOST` or the default socket) and negotiates
    /// the API version with it.
    pub async fn connect() -> Result<Self, RuntimeError> {
        let docker = Docker::connect_with_local_defaults().map_err(|e| classify("connect", &e))?;
        let docker = timed(
            "negotiate_version",
            CALL_TIMEOUT,
            docker.negotiate_version(),
        )
        .await?;
        let me = Self { docker };
        me.version().await?;
        Ok(me)
    }

    /// The names of the OCI runtimes the daemon offers (`docker info`'s Runtimes), to
    /// find a sandbox such as `runsc`.
    pub async fn runtimes(&self) -> Result<Vec<String>, RuntimeError> {
        let info = timed("info", CALL_TIMEOUT, self.docker.info()).await?;
        Ok(info.runtimes.unwrap_or_default().into_keys().collect())
    }

    /// Pulls `image`, with `auth` when given.
    async fn pull(&self, image: &str, auth: Option<&RegistryAuth>) -> Result<(), RuntimeError> {
        let options = CreateImageOptions {
            from_image: image.to_owned(),
            ..CreateImageOptions::default()
        };
        let credentials = auth.map(|a| DockerCredentials {
            username: Some(a.username.clone()),
            password: Some(a.password.clone()),
            serveraddress: Some(a.server_address.clone()),
            ..DockerCredentials::default()
        });
        let pull = async {
            let mut stream = self.docker.create_image(Some(options), None, credentials);
            while let Some(item) = stream.next().await {
                item?;
            }
            Ok::<(), bollard::errors::Error>(())
        };
        match tokio::time::timeout(PULL_TIMEOUT, pull).await {
            Ok(Ok(())) => {
                tracing::info!(%image, authenticated = auth.is_some(), "Image pulled.");
                Ok(())
            }
            Ok(Err(e)) => Err(RuntimeError::CannotPull(format!("pull image {image}: {e}"))),
            Err(_) => Err(RuntimeError::CannotPull(format!(
                "pull image {image}: timed out after {}s",
                PULL_TIMEOUT.as_secs()
            ))),
        }
    }
}

impl DockerRuntime {
    /// Whether network `spec.name` exists with `spec.subnet`; an error when it exists
    /// with another subnet (tasks' addresses would not fit it).
    async fn network_matches(&self, spec: &NetworkSpec) -> Result<bool, RuntimeError> {
        let network = match timed(
            "inspect_network",
            CALL_TIMEOUT,
            self.docker.inspect_network::<String>(&spec.name, None),
        )
        .await
        {
            Ok(n) => n,
            Err(RuntimeError::NotFound(_)) => return Ok(false),
            Err(e) => return Err(e),
        };
        let subnets: Vec<String> = network
            .ipam
            .and_then(|i| i.config)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|c| c.subnet)
            .collect();
        if subnets.contains(&spec.subnet) {
            Ok(true)
        } else {
            Err(RuntimeError::CannotCreate(format!(
                "Docker network {} exists with subnets {subnets:?}, not {}; remove it or free the name",
                spec.name, spec.subnet
            )))
        }
    }
}

async fn timed<T, F>(operation: &'static str, limit: Duration, f: F) -> Result<T, RuntimeError>
where
    F: std::future::Future<Output = Result<T, bollard::errors::Error>>,
{
    match tokio::time::timeout(limit, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(classify(operation, &e)),
        Err(_) => Err(RuntimeError::Timeout(operation)),
    }
}

fn classify(operation: &'static str, e: &bollard::errors::Error) -> RuntimeError {
    use bollard::errors::Error as E;
    match e {
        E::DockerResponseServerError {
            status_code,
            message,
        } => {
            if *status_code == 404 {
                RuntimeError::NotFound(message.clone())
            } else {
                RuntimeError::Docker {
                    operation,
                    message: message.clone(),
                    transient: *status_code >= 500,
                }
            }
        }
        other => RuntimeError::Docker {
            operation,
            message: other.to_string(),
            transient: true,
        },
    }
}

#[async_trait]
impl Runtime for DockerRuntime {
    async fn version(&self) -> Result<String, RuntimeError> {
        let v = timed("version", CALL_TIMEOUT, self.docker.version()).await?;
        Ok(v.version.unwrap_or_default())
    }

    async fn ensure_image(
        &self,
        image: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<(), RuntimeError> {
        let local = match timed(
            "inspect_image",
            CALL_TIMEOUT,
            self.docker.inspect_image(image),
        )
        .await
        {
            Ok(_) => true,
            Err(RuntimeError::NotFound(_)) => false,
            Err(e) => return Err(e),
        };
        if local && auth.is_none() {
            return Ok(());
        }
        match self.pull(image, auth).await {
            Ok(()) => Ok(()),
            Err(error) if local => {
                tracing::warn!(%image, %error, "Pull failed; using the local copy of the image.");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn create(&self, name: &str, body: serde_json::Value) -> Result<String, RuntimeError> {
        let config: Config<String> = serde_json::from_value(body).map_err(|e| {
            RuntimeError::CannotCreate(format!("invalid container configuration: {e}"))
        })?;
        let options = CreateContainerOptions {
            name: name.to_owned(),
            platform: None,
        };
        match timed(
            "create_container",
            CALL_TIMEOUT,
            self.docker.create_container(Some(options), config),
        )
        .await
        {
            Ok(r) => Ok(r.id),
            Err(RuntimeError::Docker {
                message,
                transient: false,
                ..
            }) => Err(RuntimeError::CannotCreate(message)),
            Err(e) => Err(e),
        }
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        match timed(
            "start_container",
            CALL_TIMEOUT,
            self.docker.start_container::<String>(id, None),
        )
        .await
        {
            Err(RuntimeError::Docker {
                message,
                transient: false,
                ..
            }) => Err(RuntimeError::CannotStart(message)),
            other => other,
        }
    }

    async fn stop(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        let t = i64::try_from(grace.as_secs()).unwrap_or(30);
        let limit = grace + CALL_TIMEOUT;
        match timed(
            "stop_container",
            limit,
            self.docker
                .stop_container(id, Some(StopContainerOptions { t })),
        )
        .await
        {
            // 304: already stopped.
            Err(RuntimeError::Docker { message, .. }) if message.contains("not modified") => Ok(()),
            other => other,
        }
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        let options = RemoveContainerOptions {
            v: true,
            force: true,
            link: false,
        };
        match timed(
            "remove_container",
            CALL_TIMEOUT,
            self.docker.remove_container(id, Some(options)),
        )
        .await
        {
            Err(RuntimeError::NotFound(_)) => Ok(()),
            other => other,
        }
    }

    async fn inspect(&self, id: &str) -> Result<ContainerInfo, RuntimeError> {
        let c = timed(
            "inspect_container",
            CALL_TIMEOUT,
            self.docker.inspect_container(id, None),
        )
        .await?;
        Ok(compute_info(c))
    }

    async fn stats(&self, id: &str) -> Result<serde_json::Value, RuntimeError> {
        let options = bollard::container::StatsOptions {
            stream: false,
            one_shot: true,
        };
        let sample = async {
            let mut stream = self.docker.stats(id, Some(options));
            stream.next().await.transpose()
        };
        match timed("stats", CALL_TIMEOUT, sample).await? {
            Some(stats) => serde_json::to_value(stats).map_err(|e| RuntimeError::Docker {
                operation: "stats",
                message: e.to_string(),
                transient: false,
            }),
            None => Err(RuntimeError::NotFound(id.to_owned())),
        }
    }

    async fn bridge_gateway(&self) -> Result<Option<String>, RuntimeError> {
        let network = match timed(
            "inspect_network",
            CALL_TIMEOUT,
            self.docker.inspect_network::<String>("bridge", None),
        )
        .await
        {
            Ok(n) => n,
            Err(RuntimeError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let configs = network.ipam.and_then(|i| i.config).unwrap_or_default();
        let explicit = configs
            .iter()
            .filter_map(|c| c.gateway.clone())
            .find(|g| g.parse::<std::net::Ipv4Addr>().is_ok());
        // The default bridge often lists only its subnet; Docker then gives the bridge
        // the subnet's first address.
        Ok(explicit.or_else(|| {
            configs
                .iter()
                .filter_map(|c| c.subnet.as_deref())
                .find_map(compute_first_host)
        }))
    }

    async fn ensure_network(&self, spec: &NetworkSpec) -> Result<(), RuntimeError> {
        if self.network_matches(spec).await? {
            return Ok(());
        }
        let options = bollard::network::CreateNetworkOptions {
            name: spec.name.clone(),
            check_duplicate: true,
            driver: "bridge".to_owned(),
            ipam: bollard::models::Ipam {
                driver: Some("default".to_owned()),
                config: Some(vec![bollard::models::IpamConfig {
                    subnet: Some(spec.subnet.clone()),
                    gateway: Some(spec.gateway.clone()),
                    ..bollard::models::IpamConfig::default()
                }]),
                options: None,
            },
            labels: spec.labels.clone(),
            ..bollard::network::CreateNetworkOptions::default()
        };
        match timed(
            "create_network",
            CALL_TIMEOUT,
            self.docker.create_network(options),
        )
        .await
        {
            Ok(_) => {
                tracing::info!(network = %spec.name, subnet = %spec.subnet, "Docker network created.");
                Ok(())
            }
            // Another agent won the race (name taken, or its pool overlaps ours): use its.
            // Docker reserves the pool before the name shows, so look for a moment.
            Err(error) => {
                for _ in 0..20 {
                    if self.network_matches(spec).await? {
                        return Ok(());
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(RuntimeError::CannotCreate(format!(
                    "network {} ({}): {error}",
                    spec.name, spec.subnet
                )))
            }
        }
    }

    async fn has_image(&self, image: &str) -> Result<bool, RuntimeError> {
        match timed(
            "inspect_image",
            CALL_TIMEOUT,
            self.docker.inspect_image(image),
        )
        .await
        {
            Ok(_) => Ok(true),
            Err(RuntimeError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn import_image(
        &self,
        reference: &str,
        rootfs_tar: Vec<u8>,
        changes: &[&str],
    ) -> Result<(), RuntimeError> {
        let (repo, tag) = match reference.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r, t),
            _ => (reference, "latest"),
        };
        let options = CreateImageOptions {
            from_src: "-",
            repo,
            tag,
            changes: changes.to_vec(),
            ..CreateImageOptions::default()
        };
        let import = async {
            let mut stream =
                self.docker
                    .create_image(Some(options), Some(bytes::Bytes::from(rootfs_tar)), None);
            while let Some(item) = stream.next().await {
                item?;
            }
            Ok::<(), bollard::errors::Error>(())
        };
        timed("import_image", CALL_TIMEOUT, import).await?;
        tracing::info!(image = %reference, "Image imported.");
        Ok(())
    }

    async fn list_by_label(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let mut filters = HashMap::new();
        filters.insert("label".to_owned(), vec![format!("{key}={value}")]);
        let options = ListContainersOptions {
            all: true,
            filters,
            ..ListContainersOptions::default()
        };
        let list = timed(
            "list_containers",
            CALL_TIMEOUT,
            self.docker.list_containers(Some(options)),
        )
        .await?;
        let mut out = Vec::new();
        for summary in list {
            let Some(id) = summary.id else { continue };
            match self.inspect(&id).await {
                Ok(info) => out.push(info),
                Err(RuntimeError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    fn follow_logs(
        &self,
        id: &str,
        since_secs: i64,
    ) -> mpsc::Receiver<Result<LogLine, RuntimeError>> {
        let (tx, rx) = mpsc::channel(256);
        let docker = self.docker.clone();
        let id = id.to_owned();
        tokio::spawn(async move {
            let options = bollard::container::LogsOptions::<String> {
                follow: true,
                stdout: true,
                stderr: true,
                since: since_secs,
                timestamps: true,
                ..Default::default()
            };
            let mut stream = docker.logs(&id, Some(options));
            let mut pending = String::new();
            while let Some(item) = stream.next().await {
                let chunk = match item {
                    Ok(out) => out.to_string(),
                    Err(e) => {
                        let _ = tx.send(Err(classify("logs", &e))).await;
                        return;
                    }
                };
                pending.push_str(&chunk);
                while let Some(pos) = pending.find('\n') {
                    let line: String = pending.drain(..=pos).collect();
                    if let Some(l) = split_log_line(&line) {
                        if tx.send(Ok(l)).await.is_err() {
                            return;
                        }
                    }
                }
            }
            if let Some(l) = split_log_line(&pending) {
                let _ = tx.send(Ok(l)).await;
            }
        });
        rx
    }
}

/// The first host address of an IPv4 subnet (`172.17.0.0/16` → `172.17.0.1`).
pub fn compute_first_host(subnet: &str) -> Option<String> {
    let (addr, len) = subnet.split_once('/')?;
    let addr: std::net::Ipv4Addr = addr.parse().ok()?;
    let len: u32 = len.parse().ok()?;
    if !(1..=30).contains(&len) {
        return None;
    }
    let mask = u32::MAX << (32 - len);
    let first = (u32::from(addr) & mask) + 1;
    Some(std::net::Ipv4Addr::from(first).to_string())
}

fn split_log_line(raw: &str) -> Option<LogLine> {
    let (ts, msg) = raw.split_once(' ').unwrap_or((raw, ""));
    Some(LogLine {
        timestamp_ns: parse_timestamp_ns(ts)?,
        message: msg.trim_end_matches(['\n', '\r']).to_owned(),
    })
}

fn compute_info(c: bollard::models::ContainerInspectResponse) -> ContainerInfo {
    use bollard::models::HealthStatusEnum;
    let state = c.state.unwrap_or_default();
    let running = state.running.unwrap_or(false);
    let started = running
        || state
            .started_at
            .as_deref()
            .is_some_and(|s| !s.is_empty() && !s.starts_with("0001-"));
    let health = match state.health.and_then(|h| h.status) {
        Some(HealthStatusEnum::HEALTHY) => Health::Healthy,
        Some(HealthStatusEnum::UNHEALTHY) => Health::Unhealthy,
        _ => Health::Unknown,
    };
    let mut ports = Vec::new();
    let mut ipv4_addresses: Vec<String> = c
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .map(|nets| {
            nets.values()
                .filter_map(|e| e.ip_address.clone())
                .filter(|ip| !ip.is_empty())
                .collect()
        })
        .unwrap_or_default();
    ipv4_addresses.sort();
    let started_at = state
        .started_at
        .clone()
        .filter(|s| !s.is_empty() && !s.starts_with("0001-"));
    if let Some(map) = c.network_settings.and_then(|n| n.ports) {
        for (key, bindings) in map {
            let (port, protocol) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
            let Ok(container_port) = port.parse::<u16>() else {
                continue;
            };
            for b in bindings.unwrap_or_default() {
                let Some(host_port) = b.host_port.and_then(|p| p.parse::<u16>().ok()) else {
                    continue;
                };
                ports.push(PortBinding {
                    container_port,
                    protocol: protocol.to_owned(),
                    host_ip: b.host_ip.unwrap_or_default(),
                    host_port,
                });
            }
        }
    }
    ports.sort_by(|a, b| (a.container_port, &a.host_ip).cmp(&(b.container_port, &b.host_ip)));
    // Docker publishes the same host port on 0.0.0.0 and on ::; ECS reports one binding
    // per mapping, so keep the IPv4 one when both exist.
    let v4: std::collections::BTreeSet<(u16, String, u16)> = ports
        .iter()
        .filter(|p| !p.host_ip.contains(':'))
        .map(|p| (p.container_port, p.protocol.clone(), p.host_port))
        .collect();
    ports.retain(|p| {
        !p.host_ip.contains(':')
            || !v4.contains(&(p.container_port, p.protocol.clone(), p.host_port))
    });
    ContainerInfo {
        id: c.id.unwrap_or_default(),
        name: c
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_owned(),
        labels: c.config.and_then(|cfg| cfg.labels).unwrap_or_default(),
        running,
        started,
        exit_code: if running || !started {
            None
        } else {
            state.exit_code
        },
        health,
        ports,
        image_id: c.image.unwrap_or_default(),
        created_at: c.created,
        started_at,
        ipv4_addresses,
        oom_killed: state.oom_killed.unwrap_or(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bridge_without_a_listed_gateway_uses_its_subnets_first_address() {
        assert_eq!(
            compute_first_host("172.17.0.0/16").as_deref(),
            Some("172.17.0.1")
        );
        assert_eq!(
            compute_first_host("10.1.2.128/25").as_deref(),
            Some("10.1.2.129")
        );
        assert_eq!(compute_first_host("fd00::/64"), None);
        assert_eq!(compute_first_host("10.0.0.0/32"), None);
    }

    #[test]
    fn docker_timestamps_parse_to_epoch_nanoseconds() {
        assert_eq!(
            parse_timestamp_ns("1970-01-01T00:00:01.5Z"),
            Some(1_500_000_000)
        );
        assert_eq!(
            parse_timestamp_ns("2026-11-26T13:46:58.073143739Z"),
            Some(1_795_700_818_073_143_739)
        );
        assert_eq!(parse_timestamp_ns("garbage"), None);
    }
}
