//! `stevedore agent`: the real agent on this machine. It resolves its settings (flag, then
//! `STEVEDORE_AGENT_*` environment, then the `KEY=VALUE` config file in the style of ECS's
//! `ecs.config`, then defaults), loads credentials the AWS way, connects to Docker and
//! runs `agent::instance` until SIGINT or SIGTERM. `stevedore up` starts one in-process
//! through [`spawn_local`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ::agent::credentials::region_from_environment;
use ::agent::hollow::compute_availability_zone;
use ::agent::instance::{connect_docker, InstanceConfig};
use ::agent::{ApiClient, ApiConfig, Credentials};
use anyhow::Context;
use telemetry::{supervise_task, CancellationToken, LoopName};
use tokio::sync::watch;

/// The config file read when `--config` is not given (if it exists).
pub const DEFAULT_CONFIG: &str = "/etc/stevedore/agent.conf";

/// What to print when Docker does not answer.
pub const DOCKER_HINT: &str =
    "Docker is not running: start it with `sudo dockerd &` or `sudo systemctl start docker`";

/// Options of `stevedore agent`.
#[derive(clap::Args, Debug, Default)]
pub struct AgentArgs {
    /// Cluster to join (config file: ECS_CLUSTER; default `default`).
    #[arg(long, env = "STEVEDORE_AGENT_CLUSTER")]
    cluster: Option<String>,
    /// The control plane, e.g. http://127.0.0.1:4747 (config file: STEVEDORE_ENDPOINT).
    /// Several replicas on one etcd: a comma-separated list; the agent uses the first
    /// and fails over to the next when the one it talks to cannot be reached.
    #[arg(long, env = "STEVEDORE_AGENT_ENDPOINT")]
    endpoint: Option<String>,
    /// Region of the cluster to join: the agent signs for it, and the server serves each
    /// region's clusters apart (default: AWS_REGION, then AWS_DEFAULT_REGION, then
    /// us-east-1, the server's own default).
    #[arg(long)]
    region: Option<String>,
    /// Directory of the agent's durable state (config file: STEVEDORE_STATE_DIR; default
    /// /var/lib/stevedore/agent).
    #[arg(long, env = "STEVEDORE_AGENT_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// `ecs.availability-zone`; a single letter is appended to the region (config file:
    /// ECS_AVAILABILITY_ZONE; default `a`).
    #[arg(long, env = "STEVEDORE_AGENT_AVAILABILITY_ZONE")]
    availability_zone: Option<String>,
    /// Custom attribute `name=value`, repeatable (config file: ECS_INSTANCE_ATTRIBUTES, a
    /// JSON object).
    #[arg(
        long = "attribute",
        env = "STEVEDORE_AGENT_ATTRIBUTES",
        value_delimiter = ','
    )]
    attributes: Vec<String>,
    /// MiB of memory kept back from tasks (config file: ECS_RESERVED_MEMORY).
    #[arg(long, env = "STEVEDORE_AGENT_RESERVED_MEMORY")]
    reserved_memory: Option<i32>,
    /// Extra host ports kept back from tasks (config file: ECS_RESERVED_PORTS, a JSON array).
    #[arg(long, env = "STEVEDORE_AGENT_RESERVED_PORTS", value_delimiter = ',')]
    reserved_ports: Vec<u16>,
    /// How long stopped containers are kept, e.g. `3h`, `10m`, `30s` (config file:
    /// ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION; default 3h).
    #[arg(long, env = "STEVEDORE_AGENT_CONTAINER_CLEANUP_WAIT")]
    container_cleanup_wait: Option<String>,
    /// How often running containers' CPU and memory use is sampled and reported (the
    /// AWS/ECS metrics), e.g. `20s`, `1s` (config file: STEVEDORE_METRICS_INTERVAL;
    /// default 20s, as ECS's agent).
    #[arg(long, env = "STEVEDORE_AGENT_METRICS_INTERVAL")]
    metrics_interval: Option<String>,
    /// Preferred port of the task metadata endpoint; an ephemeral port is used when it
    /// is taken (config file: STEVEDORE_METADATA_PORT; default 51679).
    #[arg(long, env = "STEVEDORE_AGENT_METADATA_PORT")]
    metadata_port: Option<u16>,
    /// Image of awsvpc tasks' pause containers (config file: STEVEDORE_PAUSE_IMAGE;
    /// default: the agent's built-in image, imported into Docker on first use).
    #[arg(long, env = "STEVEDORE_AGENT_PAUSE_IMAGE")]
    pause_image: Option<String>,
    /// Address load balancers reach this machine's instance targets at, registered as the
    /// attribute `stevedore.host-address` (config file: STEVEDORE_HOST_ADDRESS; default:
    /// the local address of the route to the endpoint).
    #[arg(long, env = "STEVEDORE_AGENT_HOST_ADDRESS")]
    host_address: Option<std::net::IpAddr>,
    /// `KEY=VALUE` config file (default /etc/stevedore/agent.conf when it exists).
    #[arg(long, env = "STEVEDORE_AGENT_CONFIG")]
    config: Option<PathBuf>,
    /// One-time token from `stevedore join-token` (config file: STEVEDORE_JOIN_TOKEN): on
    /// first start it is redeemed for an instance identity kept in the state directory,
    /// and the agent signs with its instance profile's role instead of AWS keys.
    #[arg(long, env = "STEVEDORE_AGENT_JOIN_TOKEN", hide_env_values = true)]
    join_token: Option<String>,
    /// PEM file of the CA that an `https://` endpoint's certificate must chain to (config
    /// file: STEVEDORE_CA_FILE; default: the system's roots), e.g. the server's `ca.crt`.
    #[arg(long, env = "STEVEDORE_AGENT_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// `sha256:<hex>` of the server's own CA, as `stevedore join-token` prints it (config
    /// file: STEVEDORE_CA_CERT_HASH): without `--ca-file`, the CA the server presents
    /// with that hash is trusted (and kept as `ca.crt` in the state directory).
    #[arg(long, env = "STEVEDORE_AGENT_CA_CERT_HASH")]
    ca_cert_hash: Option<String>,
}

/// Settings after every source was consulted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub cluster: String,
    pub endpoint: String,
    /// The other replicas of the control plane, tried in turn when `endpoint` (or the
    /// one in use) cannot be reached.
    pub fallback_endpoints: Vec<String>,
    pub state_dir: PathBuf,
    pub availability_zone: String,
    pub attributes: Vec<(String, String)>,
    pub reserved_memory: i32,
    pub reserved_ports: Vec<u16>,
    pub cleanup_wait: Duration,
    /// How often container usage is sampled and reported.
    pub metrics_interval: Duration,
    pub metadata_port: u16,
    pub pause_image: Option<String>,
    /// `None`: found from the route to the endpoint when the agent starts.
    pub host_address: Option<std::net::IpAddr>,
    /// A join token to redeem when the state directory holds no instance identity.
    pub join_token: Option<String>,
    /// The CA file that `https://` endpoints are verified with (`None`: system roots).
    pub ca_file: Option<PathBuf>,
    /// The pinned hash of the server's CA, taken from the server when there is no CA file.
    pub ca_cert_hash: Option<String>,
    /// The Auto Scaling instance this agent is (config file: STEVEDORE_INSTANCE_ID and
    /// STEVEDORE_INSTANCE_TYPE, written by the server's `local` instance provider).
    pub declared: Option<::agent::instance::DeclaredIdentity>,
}

// The config file and duration parsers are the agent crate's (fuzzed there).
pub use ::agent::config_file::{parse_config_file, parse_duration};

/// Merges flags/environment (`args`) over the config file (`file`) over defaults.
pub fn resolve(args: &AgentArgs, file: &BTreeMap<String, String>) -> anyhow::Result<Resolved> {
    let get = |k: &str| file.get(k).filter(|v| !v.is_empty()).cloned();
    let cluster = args
        .cluster
        .clone()
        .or_else(|| get("ECS_CLUSTER"))
        .unwrap_or_else(|| "default".to_owned());
    let endpoints = args
        .endpoint
        .clone()
        .or_else(|| get("STEVEDORE_ENDPOINT"))
        .context("--endpoint (or STEVEDORE_AGENT_ENDPOINT, or STEVEDORE_ENDPOINT in the config file) is required")?;
    let mut endpoints = endpoints
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_owned);
    let endpoint = endpoints.next().context("--endpoint names no endpoint")?;
    let fallback_endpoints: Vec<String> = endpoints.collect();
    let state_dir = args
        .state_dir
        .clone()
        .or_else(|| get("STEVEDORE_STATE_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/var/lib/stevedore/agent"));
    let availability_zone = args
        .availability_zone
        .clone()
        .or_else(|| get("ECS_AVAILABILITY_ZONE"))
        .unwrap_or_else(|| "a".to_owned());
    let mut attributes = Vec::new();
    if let Some(json) = get("ECS_INSTANCE_ATTRIBUTES") {
        let map: BTreeMap<String, String> = serde_json::from_str(&json)
            .context("ECS_INSTANCE_ATTRIBUTES must be a JSON object of strings")?;
        attributes.extend(map);
    }
    for a in &args.attributes {
        let (k, v) = a
            .split_once('=')
            .with_context(|| format!("--attribute '{a}' must be name=value"))?;
        attributes.retain(|(name, _)| name != k);
        attributes.push((k.to_owned(), v.to_owned()));
    }
    let reserved_memory = match args.reserved_memory {
        Some(m) => m,
        None => get("ECS_RESERVED_MEMORY")
            .map(|v| v.parse::<i32>())
            .transpose()
            .context("ECS_RESERVED_MEMORY must be a number of MiB")?
            .unwrap_or(0),
    };
    let mut reserved_ports = args.reserved_ports.clone();
    if reserved_ports.is_empty() {
        if let Some(json) = get("ECS_RESERVED_PORTS") {
            reserved_ports = serde_json::from_str(&json)
                .context("ECS_RESERVED_PORTS must be a JSON array of ports")?;
        }
    }
    let cleanup_wait = match args
        .container_cleanup_wait
        .clone()
        .or_else(|| get("ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION"))
    {
        Some(s) => parse_duration(&s)?,
        None => Duration::from_secs(3 * 3600),
    };
    let metrics_interval = match args
        .metrics_interval
        .clone()
        .or_else(|| get("STEVEDORE_METRICS_INTERVAL"))
    {
        Some(s) => parse_duration(&s)?,
        None => ::agent::usage::DEFAULT_INTERVAL,
    };
    anyhow::ensure!(
        metrics_interval >= Duration::from_millis(100),
        "--metrics-interval must be at least 100ms"
    );
    let metadata_port = match args.metadata_port {
        Some(p) => p,
        None => match get("STEVEDORE_METADATA_PORT") {
            Some(s) => s
                .parse()
                .with_context(|| format!("STEVEDORE_METADATA_PORT {s:?} is not a port"))?,
            None => ::agent::metadata::DEFAULT_PORT,
        },
    };
    let pause_image = args
        .pause_image
        .clone()
        .or_else(|| get("STEVEDORE_PAUSE_IMAGE"));
    let host_address = match args.host_address {
        Some(ip) => Some(ip),
        None => get("STEVEDORE_HOST_ADDRESS")
            .map(|s| s.parse::<std::net::IpAddr>())
            .transpose()
            .context("STEVEDORE_HOST_ADDRESS must be an IP address")?,
    };
    let join_token = args
        .join_token
        .clone()
        .filter(|t| !t.is_empty())
        .or_else(|| get("STEVEDORE_JOIN_TOKEN"));
    let ca_file = args
        .ca_file
        .clone()
        .filter(|p| !p.as_os_str().is_empty())
        .or_else(|| get("STEVEDORE_CA_FILE").map(PathBuf::from));
    let ca_cert_hash = args
        .ca_cert_hash
        .clone()
        .filter(|h| !h.is_empty())
        .or_else(|| get("STEVEDORE_CA_CERT_HASH"));
    let declared = match (get("STEVEDORE_INSTANCE_ID"), get("STEVEDORE_INSTANCE_TYPE")) {
        (Some(instance_id), Some(instance_type)) => Some(::agent::instance::DeclaredIdentity {
            instance_id,
            instance_type,
        }),
        (None, None) => None,
        _ => anyhow::bail!("STEVEDORE_INSTANCE_ID and STEVEDORE_INSTANCE_TYPE go together"),
    };
    Ok(Resolved {
        declared,
        ca_file,
        ca_cert_hash,
        join_token,
        pause_image,
        host_address,
        cluster,
        endpoint,
        fallback_endpoints,
        state_dir,
        availability_zone,
        attributes,
        reserved_memory,
        reserved_ports,
        cleanup_wait,
        metrics_interval,
        metadata_port,
    })
}

fn read_config(args: &AgentArgs) -> anyhow::Result<BTreeMap<String, String>> {
    let (path, required) = match &args.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG), false),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_config_file(&text).with_context(|| format!("reading {}", path.display())),
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn instance_config(r: &Resolved, api: ApiClient) -> InstanceConfig {
    let zone = compute_availability_zone(api.region(), &r.availability_zone);
    let host_address = r
        .host_address
        .or_else(|| ::agent::instance::detect_host_address(api.host()));
    InstanceConfig {
        api,
        cluster: r.cluster.clone(),
        state_dir: r.state_dir.clone(),
        availability_zone: zone,
        attributes: r.attributes.clone(),
        reserved_memory: r.reserved_memory,
        reserved_ports: r.reserved_ports.clone(),
        cleanup_wait: r.cleanup_wait,
        metrics_interval: r.metrics_interval,
        metadata_port: r.metadata_port,
        pause_image: r.pause_image.clone(),
        sandbox_runtime: None,
        cpu_units: None,
        host_address,
        declared: r.declared.clone(),
    }
}

/// The server's CA with hash `pin`: the copy kept in the state directory when it still
/// has that hash (a restart does not depend on the server), else taken from the server
/// and kept there (0600).
async fn pinned_ca(endpoint: &str, pin: &str, state_dir: &Path) -> anyhow::Result<PathBuf> {
    let path = state_dir.join("ca.crt");
    if let Ok(kept) = std::fs::read(&path) {
        use rustls_pki_types::pem::PemObject;
        let first = rustls_pki_types::CertificateDer::pem_slice_iter(&kept).next();
        if let Some(Ok(der)) = first {
            if ::agent::tls_pin::ca_cert_hash(&der) == pin.trim().to_ascii_lowercase() {
                return Ok(path);
            }
        }
    }
    let pem = ::agent::tls_pin::fetch_pinned_ca(endpoint, pin)
        .await
        .context("--ca-cert-hash")?;
    ::agent::modes::write_private(&path, pem.as_bytes())
        .with_context(|| format!("keeping the server's CA in {}", path.display()))?;
    tracing::info!(path = %path.display(), hash = pin, "Trusting the server's CA, whose hash was pinned.");
    Ok(path)
}

/// Runs the agent until SIGINT or SIGTERM.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let file = read_config(&args)?;
    let resolved = resolve(&args, &file)?;
    let region = args.region.clone().unwrap_or_else(region_from_environment);
    // Its state (instance identity, task credentials' keys) is owner-only.
    ::agent::modes::private_dir(&resolved.state_dir)
        .with_context(|| format!("creating {}", resolved.state_dir.display()))?;
    if let Err(error) = ::agent::modes::tighten_tree(&resolved.state_dir) {
        tracing::warn!(state_dir = %resolved.state_dir.display(), %error, "Could not check the state directory's file modes.");
    }
    match (&resolved.ca_file, &resolved.ca_cert_hash) {
        (Some(ca), _) => ::agent::tls::trust_ca_file(ca).context("--ca-file")?,
        (None, Some(pin)) => {
            let ca = pinned_ca(&resolved.endpoint, pin, &resolved.state_dir).await?;
            ::agent::tls::trust_ca_file(&ca).context("the pinned CA")?;
        }
        (None, None) => {}
    }
    // A server whose certificate this host does not trust is not joined at all.
    ::agent::tls::verify_endpoint(&resolved.endpoint)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (tx, shutdown) = watch::channel(false);
    let credentials = agent_credentials(&resolved, &region, shutdown.clone()).await?;
    let mut api_config = ApiConfig::new(&resolved.endpoint, &region, credentials);
    api_config
        .fallback_endpoints
        .clone_from(&resolved.fallback_endpoints);
    let api = ApiClient::new(api_config).context("building the ECS client")?;
    let runtime = connect_docker()
        .await
        .map_err(|e| anyhow::anyhow!("{DOCKER_HINT} ({e})"))?;
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("Signal received; the agent stops (containers keep running).");
        tx.send_replace(true);
    });
    tracing::info!(cluster = %resolved.cluster, endpoint = %resolved.endpoint, state_dir = %resolved.state_dir.display(), "Stevedore agent starting.");
    ::agent::instance::run(instance_config(&resolved, api), runtime, shutdown).await?;
    Ok(())
}

/// The credentials the agent signs with: its instance identity's (the identity file, or
/// the join token redeemed now), kept fresh in the background, else AWS keys found the
/// AWS way.
async fn agent_credentials(
    resolved: &Resolved,
    region: &str,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Credentials> {
    use ::agent::instance_identity::{compute_backoff, establish, fetch_credentials, keep_fresh};
    // Redemption and instance credentials are authenticated by their bodies, so this
    // client never signs; its placeholder key is never used.
    let mut bootstrap = ApiConfig::new(
        &resolved.endpoint,
        region,
        Credentials::new("ANONYMOUS", "-", None),
    );
    bootstrap
        .fallback_endpoints
        .clone_from(&resolved.fallback_endpoints);
    let bootstrap = ApiClient::new(bootstrap).context("building the client")?;
    tracing::debug!(
        has_join_token = resolved.join_token.is_some(),
        "Looking for an instance identity."
    );
    let identity = establish(
        &bootstrap,
        &resolved.state_dir,
        resolved.join_token.as_deref(),
    )
    .await
    .context("joining with the join token")?;
    let Some(identity) = identity else {
        return Credentials::from_environment().context("loading AWS credentials");
    };
    let mut attempt = 0;
    let (credentials, expires) = loop {
        match fetch_credentials(&bootstrap, &identity).await {
            Ok(c) => break c,
            Err(e) if e.is_transient() && attempt < 10 => {
                tracing::warn!(error = %e, "Instance credentials unavailable; retrying.");
                tokio::time::sleep(compute_backoff(attempt)).await;
                attempt += 1;
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "fetching the credentials of instance {}",
                        identity.instance_id
                    )
                })
            }
        }
    };
    tracing::info!(instance = %identity.instance_id, role = %identity.role_arn, "Signing as the instance profile's role.");
    tokio::spawn(keep_fresh(
        bootstrap,
        identity,
        credentials.clone(),
        expires,
        shutdown,
    ));
    Ok(credentials)
}

/// Prepares an in-process agent against a local server (for `stevedore up`): creates the
/// cluster if missing and returns the supervised agent, which runs until `shutdown`. Returns an error (with what to
/// do) when Docker does not answer.
pub async fn spawn_local(
    endpoint: String,
    region: String,
    credentials: Credentials,
    cluster: String,
    state_dir: &Path,
    shutdown: CancellationToken,
) -> anyhow::Result<impl std::future::Future<Output = ()>> {
    let runtime = connect_docker().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let api = ApiClient::new(ApiConfig::new(&endpoint, &region, credentials))
        .context("building the ECS client")?;
    let create = model::ecs::shapes::CreateClusterRequest {
        cluster_name: Some(cluster.clone()),
        ..Default::default()
    };
    api.create_cluster(&create)
        .await
        .context("creating the cluster")?;
    let resolved = Resolved {
        cluster,
        endpoint,
        fallback_endpoints: Vec::new(),
        state_dir: state_dir.to_owned(),
        availability_zone: "a".into(),
        attributes: Vec::new(),
        reserved_memory: 0,
        reserved_ports: Vec::new(),
        cleanup_wait: Duration::from_secs(3 * 3600),
        metrics_interval: ::agent::usage::DEFAULT_INTERVAL,
        metadata_port: ::agent::metadata::DEFAULT_PORT,
        pause_image: None,
        host_address: None,
        join_token: None,
        ca_file: None,
        ca_cert_hash: None,
        declared: None,
    };
    let config = instance_config(&resolved, api);
    // Supervised like the server's own loops: a panic restarts the agent, which adopts
    // its running containers as after any restart; the server's shutdown stops it.
    Ok(supervise_task(
        LoopName::LocalAgent,
        shutdown.clone(),
        move || {
            let (config, runtime, shutdown) = (config.clone(), runtime.clone(), shutdown.clone());
            async move {
                let (stop, stopped) = watch::channel(false);
                let run = ::agent::instance::run(config, runtime, stopped);
                tokio::pin!(run);
                let result = tokio::select! {
                    result = &mut run => result,
                    () = shutdown.cancelled() => {
                        stop.send_replace(true);
                        run.await
                    }
                };
                if let Err(error) = result {
                    tracing::error!(%error, "The in-process agent stopped.");
                }
            }
        },
    ))
}

async fn wait_for_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "Cannot listen for SIGTERM.");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        r = tokio::signal::ctrl_c() => {
            if let Err(error) = r {
                tracing::warn!(%error, "Cannot listen for SIGINT.");
                std::future::pending::<()>().await;
            }
        }
        () = term => {}
    }
}

/// For `stevedore up`: waits for the local server's `/health`, then starts the in-process
/// agent (cluster `default`, state in `state_dir`) and prints how to run a task; when
/// Docker does not answer, says what to do and leaves the server running alone.
pub async fn start_for_up(
    addr: std::net::SocketAddr,
    tls: bool,
    region: String,
    key: crate::credentials::AccessKey,
    state_dir: PathBuf,
    shutdown: CancellationToken,
) {
    let host = if addr.ip().is_unspecified() {
        std::net::SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    let endpoint = format!("{}://{host}", if tls { "https" } else { "http" });
    for _ in 0..100 {
        if health_ok(host, tls).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let credentials = Credentials::new(&key.access_key_id, &key.secret_access_key, None);
    let agent = spawn_local(
        endpoint,
        region,
        credentials,
        "default".into(),
        &state_dir,
        shutdown,
    );
    match agent.await {
        Ok(run) => {
            println!(
                "An agent runs on this machine in cluster `default` (state in {}). Try:",
                state_dir.display()
            );
            println!(
                r#"  aws ecs register-task-definition --family web --network-mode bridge --container-definitions '[{{"name":"web","image":"busybox:latest","memory":64,"essential":true,"command":["httpd","-f","-p","80"],"portMappings":[{{"containerPort":80,"hostPort":0}}]}}]'"#
            );
            println!("  aws ecs run-task --cluster default --task-definition web");
            println!("  aws ecs describe-tasks --cluster default --tasks <taskArn from run-task>   # networkBindings show the host port");
            run.await;
        }
        Err(error) if error.to_string().contains("Docker") => {
            tracing::warn!(error = %format!("{error:#}"), "No agent: Docker does not answer.");
            println!("{DOCKER_HINT}; the control plane is running without an agent.");
        }
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), "The in-process agent could not start.");
            println!("The agent could not start ({error:#}); the control plane is running without an agent.");
        }
    }
}

async fn health_ok(addr: std::net::SocketAddr, tls: bool) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
        let mut s: Box<dyn agent::tls::Io> = if tls {
            agent::tls::connect(tcp, &addr.ip().to_string())
                .await
                .ok()?
        } else {
            Box::new(tcp)
        };
        s.write_all(b"GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await
            .ok()?;
        let mut buf = [0u8; 16];
        let n = s.read(&mut buf).await.ok()?;
        Some(buf[..n].starts_with(b"HTTP/1.1 200") || buf[..n].starts_with(b"HTTP/1.0 200"))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Some(true))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_config_file_which_wins_over_defaults() {
        let file = parse_config_file(
            "# ecs.config style\nECS_CLUSTER=prod\nSTEVEDORE_ENDPOINT=\"http://10.0.0.1:4747\"\nECS_RESERVED_MEMORY=256\nECS_RESERVED_PORTS=[8080, 9090]\nECS_INSTANCE_ATTRIBUTES={\"stack\":\"blue\",\"tier\":\"web\"}\nECS_ENGINE_TASK_CLEANUP_WAIT_DURATION=10m\n",
        )
        .expect("parses");
        let args = AgentArgs {
            cluster: Some("dev".into()),
            attributes: vec!["tier=db".into()],
            ..AgentArgs::default()
        };
        let r = resolve(&args, &file).expect("resolves");
        assert_eq!(r.cluster, "dev");
        assert_eq!(r.endpoint, "http://10.0.0.1:4747");
        assert_eq!(r.reserved_memory, 256);
        assert_eq!(r.reserved_ports, vec![8080, 9090]);
        assert_eq!(r.cleanup_wait, Duration::from_secs(600));
        assert_eq!(r.metadata_port, ::agent::metadata::DEFAULT_PORT);
        assert_eq!(
            r.attributes,
            vec![
                ("stack".to_owned(), "blue".to_owned()),
                ("tier".to_owned(), "db".to_owned())
            ]
        );
        assert_eq!(r.availability_zone, "a");
        assert_eq!(r.pause_image, None);
        let file =
            parse_config_file("STEVEDORE_ENDPOINT=http://x\nSTEVEDORE_PAUSE_IMAGE=my/pause:1\n")
                .expect("parses");
        let r = resolve(&AgentArgs::default(), &file).expect("resolves");
        assert_eq!(r.pause_image.as_deref(), Some("my/pause:1"));
    }

    #[test]
    fn host_address_comes_from_the_flag_or_file_and_is_found_otherwise() {
        let file =
            parse_config_file("STEVEDORE_ENDPOINT=http://x\nSTEVEDORE_HOST_ADDRESS=10.1.2.3\n")
                .expect("parses");
        let r = resolve(&AgentArgs::default(), &file).expect("resolves");
        assert_eq!(r.host_address, "10.1.2.3".parse().ok());
        let bad = parse_config_file("STEVEDORE_ENDPOINT=http://x\nSTEVEDORE_HOST_ADDRESS=nope\n")
            .expect("parses");
        assert!(resolve(&AgentArgs::default(), &bad).is_err());
        // Found from the route to the server: loopback for a local one.
        assert_eq!(
            ::agent::instance::detect_host_address("127.0.0.1:4747"),
            "127.0.0.1".parse().ok()
        );
        assert_eq!(
            ::agent::instance::detect_host_address("no such host:1"),
            None
        );
    }

    #[test]
    fn the_join_token_comes_from_the_flag_or_the_config_file() {
        let file =
            parse_config_file("STEVEDORE_ENDPOINT=http://x\nSTEVEDORE_JOIN_TOKEN=stvjoin-file\n")
                .expect("parses");
        let r = resolve(&AgentArgs::default(), &file).expect("resolves");
        assert_eq!(r.join_token.as_deref(), Some("stvjoin-file"));
        let args = AgentArgs {
            join_token: Some("stvjoin-flag".into()),
            ..AgentArgs::default()
        };
        let r = resolve(&args, &file).expect("resolves");
        assert_eq!(r.join_token.as_deref(), Some("stvjoin-flag"));
        let plain = parse_config_file("STEVEDORE_ENDPOINT=http://x\n").expect("parses");
        assert_eq!(
            resolve(&AgentArgs::default(), &plain)
                .expect("resolves")
                .join_token,
            None
        );
    }

    #[test]
    fn the_endpoint_is_required_and_durations_need_units() {
        assert!(resolve(&AgentArgs::default(), &BTreeMap::new()).is_err());
        assert_eq!(
            parse_duration("1h30m").expect("ok"),
            Duration::from_secs(5400)
        );
        assert_eq!(parse_duration("45").expect("ok"), Duration::from_secs(45));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("1h5").is_err());
    }
}
