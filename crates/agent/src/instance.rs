//! The real agent on one machine: registers the machine's resources (keeping its
//! container instance ARN in the state directory, so a restart stays the same instance),
//! adopts the containers it left running, holds the ACS channel and hands each payload
//! task to the [`Engine`], acknowledging a payload once every task in it was taken.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use model::ecs::shapes::{
    Attribute, DiscoverPollEndpointRequest, RegisterContainerInstanceRequest, VersionInfo,
};
use tokio::sync::watch;

use crate::api::{ApiClient, ApiError};
use crate::channel::{Channel, ChannelConfig};
use crate::credentials_nat::{self, NatGuard};
use crate::engine::{Engine, EngineConfig};
use crate::health::HealthBoard;
use crate::hollow::fleet::{compute_cluster_arn, with_retries};
use crate::hollow::register::{compute_registration, InstanceSpec, RESERVED_PORTS};
use crate::metadata::{self, MetadataEndpoint};
use crate::registry_auth::EcrAuth;
use crate::runtime::{DockerRuntime, Runtime, RuntimeError};
use crate::state::{StateError, StateFile};
use crate::task_credentials::TaskCredentials;

/// The agent version reported to the control plane.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

pub use model::ecs::names::HOST_ADDRESS_ATTRIBUTE;

/// The local address this machine uses to reach `authority` (`host:port`, the server):
/// the interface a load balancer beside the server most likely reaches it back on. No
/// packet is sent; connecting a UDP socket only picks the route.
pub fn detect_host_address(authority: &str) -> Option<IpAddr> {
    let server = authority.to_socket_addrs().ok()?.next()?;
    let any: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = std::net::UdpSocket::bind(any).ok()?;
    socket.connect(server).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

/// What the agent needs to run.
#[derive(Clone, Debug)]
pub struct InstanceConfig {
    /// Signed ECS client.
    pub api: ApiClient,
    /// Cluster name or ARN.
    pub cluster: String,
    /// Where the state file lives.
    pub state_dir: PathBuf,
    /// `ecs.availability-zone`, already expanded.
    pub availability_zone: String,
    /// Extra custom attributes.
    pub attributes: Vec<(String, String)>,
    /// MiB kept back from tasks.
    pub reserved_memory: i32,
    /// Host ports kept back from tasks, in addition to the ECS agent's.
    pub reserved_ports: Vec<u16>,
    /// How long stopped containers are kept.
    pub cleanup_wait: Duration,
    /// Preferred port of the task metadata endpoint (an ephemeral one if it is taken).
    pub metadata_port: u16,
    /// Image of awsvpc tasks' pause containers; `None`: the agent's built-in one.
    pub pause_image: Option<String>,
    /// Docker runtime of FARGATE tasks' containers (e.g. `runsc`); `None`: the default.
    pub sandbox_runtime: Option<String>,
    /// CPU units to register instead of 1024 per core (hidden Fargate capacity
    /// overcommits: task sizes are limits there, not reservations of a real VM).
    pub cpu_units: Option<i32>,
    /// Registered as [`HOST_ADDRESS_ATTRIBUTE`] (unless an attribute of that name is
    /// given); `None` registers none, and balancers use 127.0.0.1.
    pub host_address: Option<IpAddr>,
    /// How often running containers' usage is sampled and reported (ECS: 20 s).
    pub metrics_interval: Duration,
    /// The EC2-style identity this machine declares (an Auto Scaling instance): it
    /// registers with an instance identity document naming it, and without CPU and
    /// MEMORY, so the server registers the instance type's resources, not the host's.
    pub declared: Option<DeclaredIdentity>,
}

/// What an Auto Scaling instance says it is (see [`InstanceConfig::declared`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeclaredIdentity {
    /// `i-…`, the id its group gave it.
    pub instance_id: String,
    /// `ecs.instance-type`, e.g. `t3.medium`.
    pub instance_type: String,
}

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    /// Docker is not reachable.
    #[error("Docker is not reachable: {0}")]
    Docker(#[from] RuntimeError),
    /// The state directory failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The control plane refused or failed a call.
    #[error("control plane: {0}")]
    Api(#[from] ApiError),
}

/// The machine's CPU units (1024 per core) and memory MiB.
pub fn compute_machine_resources() -> (i32, i32) {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let cpu = i32::try_from(cores * 1024).unwrap_or(i32::MAX);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| parse_mem_total_mib(&s))
        .unwrap_or(1024);
    (cpu, mem)
}

/// `MemTotal` of `/proc/meminfo`, in MiB.
pub fn parse_mem_total_mib(meminfo: &str) -> Option<i32> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    i32::try_from(kib / 1024).ok()
}

/// The registration of this machine.
pub fn compute_machine_registration(
    config: &InstanceConfig,
    saved_arn: Option<String>,
    docker_version: &str,
) -> RegisterContainerInstanceRequest {
    let (cpu, mem) = compute_machine_resources();
    let cpu = config.cpu_units.unwrap_or(cpu);
    let spec = InstanceSpec {
        cluster: config.cluster.clone(),
        cpu,
        memory: (mem - config.reserved_memory).max(0),
        instance_type: "stevedore-local".into(),
        availability_zone: config.availability_zone.clone(),
    };
    let mut req = compute_registration(&spec);
    let arch = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        other => other,
    };
    let mut ports: Vec<String> = RESERVED_PORTS.iter().map(|p| (*p).to_owned()).collect();
    ports.extend(config.reserved_ports.iter().map(u16::to_string));
    ports.dedup();
    for r in req.total_resources.iter_mut().flatten() {
        if r.name.as_deref() == Some("PORTS") {
            r.string_set_value = Some(ports.clone());
        }
    }
    let attrs = req.attributes.get_or_insert_with(Vec::new);
    for a in attrs.iter_mut() {
        if a.name == "ecs.cpu-architecture" {
            a.value = Some(arch.to_owned());
        }
    }
    for (k, v) in &config.attributes {
        attrs.push(Attribute {
            name: k.clone(),
            value: Some(v.clone()),
            target_type: None,
            target_id: None,
        });
    }
    if let Some(ip) = config.host_address {
        if !attrs.iter().any(|a| a.name == HOST_ADDRESS_ATTRIBUTE) {
            attrs.push(Attribute {
                name: HOST_ADDRESS_ATTRIBUTE.to_owned(),
                value: Some(ip.to_string()),
                target_type: None,
                target_id: None,
            });
        }
    }
    req.version_info = Some(VersionInfo {
        agent_version: Some(AGENT_VERSION.to_owned()),
        agent_hash: Some("stevedore".to_owned()),
        docker_version: Some(format!("DockerVersion: {docker_version}")),
    });
    if let Some(declared) = &config.declared {
        for a in attrs.iter_mut() {
            if a.name == "ecs.instance-type" {
                a.value = Some(declared.instance_type.clone());
            }
        }
        // The server derives CPU and MEMORY from the declared type.
        if let Some(resources) = req.total_resources.as_mut() {
            resources.retain(|r| !matches!(r.name.as_deref(), Some("CPU" | "MEMORY")));
        }
        req.instance_identity_document = Some(
            serde_json::json!({
                "instanceId": declared.instance_id,
                "instanceType": declared.instance_type,
                "availabilityZone": config.availability_zone,
            })
            .to_string(),
        );
    }
    req.container_instance_arn = saved_arn;
    req
}

/// Connects to Docker (the first thing the agent needs).
pub async fn connect_docker() -> Result<DockerRuntime, RuntimeError> {
    DockerRuntime::connect().await
}

/// Runs the agent until `shutdown` turns true. Containers keep running after it returns.
pub async fn run(
    config: InstanceConfig,
    runtime: DockerRuntime,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), InstanceError> {
    let docker_version = runtime.version().await?;
    let state = Arc::new(StateFile::open(&config.state_dir)?);
    let api = config.api.clone();
    let saved = state.snapshot().container_instance_arn;
    let mut request = compute_machine_registration(&config, saved.clone(), &docker_version);
    let response = match with_retries(u32::MAX, &mut shutdown, || {
        api.register_container_instance(&request)
    })
    .await
    {
        Ok(r) => r,
        Err(e) if saved.is_some() && !e.is_transient() => {
            tracing::warn!(error = %e, "The saved container instance was refused; registering anew.");
            request.container_instance_arn = None;
            with_retries(u32::MAX, &mut shutdown, || {
                api.register_container_instance(&request)
            })
            .await?
        }
        Err(e) => return Err(e.into()),
    };
    let instance_arn = response
        .container_instance
        .and_then(|ci| ci.container_instance_arn)
        .ok_or_else(|| ApiError::Decode {
            operation: "RegisterContainerInstance",
            error: "the response has no containerInstanceArn".to_owned(),
        })?;
    let arn = instance_arn.clone();
    state
        .update_durable(|doc| doc.container_instance_arn = Some(arn))
        .await?;
    let cluster_arn = compute_cluster_arn(&config.cluster, &instance_arn);
    tracing::info!(instance = %instance_arn, cluster = %cluster_arn, "Agent registered.");

    let mut engine_config = EngineConfig::new(cluster_arn.clone());
    engine_config.cleanup_wait = config.cleanup_wait;
    engine_config.availability_zone = config.availability_zone.clone();
    engine_config.pause_image = config.pause_image.clone();
    engine_config.sandbox_runtime = config.sandbox_runtime.clone();
    let health = Arc::new(HealthBoard::new());
    let mut metadata = start_metadata(
        &runtime,
        api.clone(),
        config.metadata_port,
        shutdown.clone(),
    )
    .await;
    let nat = match metadata.as_mut() {
        Some(endpoint) => start_credentials_nat(endpoint).await,
        None => None,
    };
    let runtime = Arc::new(runtime);
    let usage = Arc::new(crate::usage::UsageBoard::new());
    match &metadata {
        // The running tasks' containers are read from the metadata index.
        Some(endpoint) => {
            tokio::spawn(crate::usage::run_sampler(
                runtime.clone(),
                endpoint.index.clone(),
                usage.clone(),
                config.metrics_interval,
                shutdown.clone(),
            ));
        }
        None => tracing::warn!("No task metadata index: container usage is not reported."),
    }
    let mut engine = Engine::new(runtime, Arc::new(api.clone()), state.clone(), engine_config)
        .with_log_sink(Arc::new(api.clone()))
        .with_registry_auth(Arc::new(EcrAuth::new(api.clone())))
        .with_health(health.clone());
    if let Some(endpoint) = metadata {
        engine = engine.with_metadata(endpoint);
    }
    let adopted = engine.adopt().await?;
    tracing::info!(adopted, "Saved tasks resumed.");

    let discover = DiscoverPollEndpointRequest {
        container_instance: Some(instance_arn.clone()),
        cluster: Some(cluster_arn.clone()),
    };
    let poll = with_retries(u32::MAX, &mut shutdown, || {
        api.discover_poll_endpoint(&discover)
    })
    .await?;
    let endpoint = poll.endpoint.ok_or_else(|| ApiError::Decode {
        operation: "DiscoverPollEndpoint",
        error: "the response has no endpoint".to_owned(),
    })?;
    let mut channel_config = ChannelConfig::new(
        endpoint,
        cluster_arn,
        instance_arn,
        api.credentials().clone(),
        api.region().to_owned(),
    );
    // The other replicas the agent was given: the channel fails over to them when the
    // replica that answered DiscoverPollEndpoint dies.
    channel_config.fallback_endpoints = api
        .endpoints()
        .into_iter()
        .filter(|e| !same_authority(e, &channel_config.endpoint))
        .collect();
    channel_config.agent_version = AGENT_VERSION.to_owned();
    channel_config.docker_version = docker_version;
    channel_config.health = Some(health);
    channel_config.usage = Some(usage);
    channel_config.task_credentials = Some(TaskCredentials::global());
    let (channel, mut deliveries) = Channel::spawn(channel_config, shutdown.clone());
    loop {
        tokio::select! {
            delivery = deliveries.recv() => {
                let Some(delivery) = delivery else { break };
                for task in delivery.payload.tasks.clone() {
                    engine.apply(task).await;
                }
                delivery.ack();
            }
            () = shutdown_requested(&mut shutdown) => break,
        }
    }
    drop(deliveries);
    channel.join().await;
    engine.shutdown().await;
    if let Some(guard) = nat {
        guard.remove().await;
    }
    Ok(())
}

/// Leads `169.254.170.2:80` to the endpoint; says loudly when it cannot (containers then
/// get the endpoint's full URI).
async fn start_credentials_nat(endpoint: &mut MetadataEndpoint) -> Option<NatGuard> {
    let local = endpoint.local_addr()?;
    let rules = credentials_nat::compute_rules(endpoint.bridge_addr(), local);
    match credentials_nat::install(rules).await {
        Ok(guard) => {
            endpoint.link_local = true;
            tracing::info!(target_addr = %endpoint.bridge_base, "Task credentials served at 169.254.170.2:80.");
            Some(guard)
        }
        Err(error) => {
            tracing::error!(%error, full_uri_base = %endpoint.bridge_base, "COULD NOT ROUTE 169.254.170.2 TO THE AGENT (run it as root with iptables): containers get AWS_CONTAINER_CREDENTIALS_FULL_URI instead, which SDKs accept only on loopback or link-local hosts.");
            None
        }
    }
}

/// Starts the task metadata endpoint on the bridge gateway and loopback; without it
/// (nothing could be bound) tasks still run, without `ECS_CONTAINER_METADATA_URI_V4`.
async fn start_metadata(
    runtime: &DockerRuntime,
    api: ApiClient,
    port: u16,
    shutdown: watch::Receiver<bool>,
) -> Option<MetadataEndpoint> {
    let gateway = match runtime.bridge_gateway().await {
        Ok(g) => g.and_then(|g| g.parse::<Ipv4Addr>().ok()),
        Err(error) => {
            tracing::warn!(%error, "Could not read the bridge network's gateway; metadata on loopback only.");
            None
        }
    };
    let rt: Arc<dyn Runtime> = Arc::new(runtime.clone());
    match metadata::serve(rt, Some(api), gateway, port, shutdown).await {
        Ok(endpoint) => {
            tracing::info!(bridge = %endpoint.bridge_base, host = %endpoint.host_base, "Task metadata endpoint started.");
            Some(endpoint)
        }
        Err(error) => {
            tracing::warn!(%error, "No task metadata endpoint; containers run without one.");
            None
        }
    }
}

async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// Whether two endpoint URLs name the same `host:port`.
pub(crate) fn same_authority(a: &str, b: &str) -> bool {
    let authority = |u: &str| {
        u.parse::<http::Uri>()
            .ok()
            .and_then(|u| u.authority().map(|a| a.as_str().to_owned()))
    };
    authority(a).is_some_and(|x| Some(x) == authority(b))
}
