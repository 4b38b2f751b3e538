//! `stevedore sim`: hollow instances (like kubemark's hollow nodes). It wires the
//! command line, credentials, the open-files limit and signals to `agent::hollow`, and
//! prints progress; the instances themselves live in the `agent` crate.

use std::sync::Arc;
use std::time::Duration;

use agent::credentials::region_from_environment;
use agent::hollow::{compute_availability_zone, run_fleet, Counters, FleetConfig};
use agent::{ApiClient, ApiConfig, Credentials};
use anyhow::Context;
use tokio::sync::watch;

/// Options of `stevedore sim`.
#[derive(clap::Args, Debug)]
pub struct SimArgs {
    /// Cluster the instances join (name or ARN).
    #[arg(long, env = "STEVEDORE_SIM_CLUSTER", default_value = "default")]
    cluster: String,
    /// The ECS endpoint, e.g. http://127.0.0.1:4747; with several replicas, all of them
    /// comma-separated: the instances spread over them and fail over among them.
    #[arg(
        long,
        env = "STEVEDORE_SIM_ENDPOINT",
        default_value = "http://127.0.0.1:4747"
    )]
    endpoint: String,
    /// How many hollow instances to run.
    #[arg(long, env = "STEVEDORE_SIM_INSTANCES", default_value_t = 10)]
    instances: usize,
    /// Availability zones, round-robin; a single letter is appended to the region.
    #[arg(
        long,
        env = "STEVEDORE_SIM_ZONES",
        value_delimiter = ',',
        default_value = "a,b,c"
    )]
    zones: Vec<String>,
    /// CPU units per instance.
    #[arg(long, env = "STEVEDORE_SIM_CPU", default_value_t = 4096)]
    cpu: i32,
    /// Memory MiB per instance.
    #[arg(long, env = "STEVEDORE_SIM_MEMORY", default_value_t = 16384)]
    memory: i32,
    /// `ecs.instance-type` attribute.
    #[arg(long, env = "STEVEDORE_SIM_INSTANCE_TYPE", default_value = "m5.xlarge")]
    instance_type: String,
    /// Registrations in flight at once.
    #[arg(
        long,
        env = "STEVEDORE_SIM_REGISTRATION_CONCURRENCY",
        default_value_t = 64
    )]
    registration_concurrency: usize,
    /// Seconds between progress lines.
    #[arg(long, env = "STEVEDORE_SIM_REPORT_INTERVAL", default_value_t = 10)]
    report_interval_secs: u64,
    /// PEM file of the CA that an `https://` endpoint's certificate must chain to (default:
    /// the system's roots), e.g. the server's generated `ca.crt`.
    #[arg(long, env = "STEVEDORE_SIM_CA_FILE")]
    ca_file: Option<std::path::PathBuf>,
}

/// Runs the hollow instances until SIGINT or SIGTERM.
pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    if args.instances == 0 {
        anyhow::bail!("--instances must be at least 1");
    }
    raise_open_files_limit();
    if let Some(ca) = &args.ca_file {
        ::agent::tls::trust_ca_file(ca).context("--ca-file")?;
    }
    let credentials = Credentials::from_environment().context("loading AWS credentials")?;
    let region = region_from_environment();
    let endpoints: Vec<&str> = args
        .endpoint
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    if endpoints.is_empty() {
        anyhow::bail!("--endpoint names no endpoint");
    }
    // One client per replica, each starting at its own and failing over to the others
    // in turn.
    let client_from = |first: usize| {
        let rotated: Vec<String> = (0..endpoints.len())
            .map(|k| endpoints[(first + k) % endpoints.len()].to_owned())
            .collect();
        let mut api_config = ApiConfig::new(&rotated[0], &region, credentials.clone());
        api_config.fallback_endpoints = rotated[1..].to_vec();
        api_config.max_idle_connections = args.registration_concurrency.max(1);
        ApiClient::new(api_config).context("building the ECS client")
    };
    let api = client_from(0)?;
    let spread = if endpoints.len() > 1 {
        (0..endpoints.len())
            .map(client_from)
            .collect::<anyhow::Result<Vec<_>>>()?
    } else {
        Vec::new()
    };
    let zones: Vec<String> = args
        .zones
        .iter()
        .map(|z| z.trim())
        .filter(|z| !z.is_empty())
        .map(|z| compute_availability_zone(&region, z))
        .collect();
    let config = FleetConfig {
        api,
        spread,
        cluster: args.cluster.clone(),
        instances: args.instances,
        zones,
        cpu: args.cpu,
        memory: args.memory,
        instance_type: args.instance_type.clone(),
        registration_concurrency: args.registration_concurrency.max(1),
        max_attempts: 8,
        idle_timeout: Duration::from_secs(60),
    };
    tracing::info!(instances = args.instances, cluster = %args.cluster, endpoint = %args.endpoint, "Starting hollow instances.");

    let counters = Arc::new(Counters::default());
    let (shutdown_tx, shutdown) = watch::channel(false);
    let fleet = tokio::spawn(run_fleet(config, counters.clone(), shutdown.clone()));
    let outcome = monitor(&args, &counters, shutdown_tx.clone()).await;
    shutdown_tx.send_replace(true);
    if tokio::time::timeout(Duration::from_secs(15), fleet)
        .await
        .is_err()
    {
        tracing::warn!("Hollow instances did not all stop within 15 s.");
    }
    let s = counters.snapshot();
    tracing::info!(
        registered = s.registered,
        reports_sent = s.reports_sent,
        errors = s.errors,
        "Hollow instances stopped."
    );
    outcome
}

/// Prints progress until a signal arrives (Ok) or no instance could register (Err).
async fn monitor(
    args: &SimArgs,
    counters: &Counters,
    shutdown_tx: watch::Sender<bool>,
) -> anyhow::Result<()> {
    let total = u64::try_from(args.instances).unwrap_or(u64::MAX);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let every = Duration::from_secs(args.report_interval_secs.max(1));
    let mut next_report = tokio::time::Instant::now() + every;
    let mut announced = false;
    let signal = wait_for_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = &mut signal => {
                tracing::info!("Signal received; stopping hollow instances.");
                shutdown_tx.send_replace(true);
                return Ok(());
            }
        }
        let s = counters.snapshot();
        let connected = u64::try_from(s.connected).unwrap_or(0);
        if !announced && s.registered == total && connected == total {
            announced = true;
            println!("All {total} hollow instances registered and connected.");
            tracing::info!(
                instances = total,
                "All hollow instances registered and connected."
            );
        }
        if s.registration_failed == total {
            anyhow::bail!("no hollow instance could register (see the errors above)");
        }
        if tokio::time::Instant::now() >= next_report {
            next_report += every;
            tracing::info!(
                registered = s.registered,
                connected = s.connected,
                running_tasks = s.running_tasks,
                reports_sent = s.reports_sent,
                errors = s.errors,
                "Hollow instances."
            );
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn wait_for_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "Cannot listen for SIGINT.");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
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
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Each instance holds a socket: lift the soft open-files limit to the hard limit.
fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "Open-files limit raised."),
        Err(error) => tracing::warn!(%error, "Could not raise the open-files limit."),
    }
}
