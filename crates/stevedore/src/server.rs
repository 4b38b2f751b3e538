//! The `server` role: opens the state store, loads the admin key, and serves every API on
//! one port until SIGINT or SIGTERM, which also stops every background loop.

use crate::credentials::{load_admin_key, KeySource};
use crate::http::{router, App};
use anyhow::Context;
use model::ecs::arn::ArnScope;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use telemetry::{supervise, supervise_task, CancellationToken, LoopName};

/// How long the background loops get to stop after the HTTP server has.
const LOOPS_STOP_WITHIN: Duration = Duration::from_secs(10);
/// How often the metrics exporter drains histogram samples between scrapes.
const METRICS_UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Options of `stevedore server` (and `stevedore up`).
#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// Address to serve every API on.
    #[arg(long, env = "STEVEDORE_LISTEN", default_value = "127.0.0.1:4747")]
    listen: SocketAddr,
    /// Directory holding the state database and the admin key.
    #[arg(long, env = "STEVEDORE_DATA_DIR", default_value = "./.stevedore")]
    data_dir: PathBuf,
    /// Region that ARNs and credential scopes use.
    #[arg(long, env = "STEVEDORE_REGION", default_value = "us-east-1")]
    region: String,
    /// Twelve-digit account id that ARNs use.
    #[arg(long, env = "STEVEDORE_ACCOUNT_ID", default_value = "000000000000")]
    account_id: String,
    /// Seconds a container instance's agent may stay disconnected before its service tasks
    /// are replaced elsewhere.
    #[arg(
        long,
        env = "STEVEDORE_AGENT_DISCONNECT_TIMEOUT",
        default_value_t = 300.0
    )]
    agent_disconnect_timeout: f64,
    /// Runs CloudWatch alarm periods this many times faster than AWS (2 halves every
    /// period; 1 is AWS's timing), so tests and demos see minute-long periods in seconds.
    /// Scaled periods shorter than a minute read high-resolution (StorageResolution 1)
    /// data.
    #[arg(long, env = "STEVEDORE_TIME_SCALE", default_value_t = 1.0)]
    time_scale: f64,
    /// How long STOPPED tasks (and INACTIVE services) stay visible before they leave the
    /// store: `1h` (AWS's documented floor), `30s`, `2m` or plain seconds.
    #[arg(long, env = "STEVEDORE_STOPPED_TASK_RETENTION", default_value = "1h",
          value_parser = parse_retention)]
    stopped_task_retention: Duration,
    /// Sandbox of Fargate tasks: `auto` (and `runsc`) use gVisor (Docker runtime
    /// `runsc`) and refuse Fargate launches when Docker lacks it; `runc` runs them
    /// without a sandbox.
    #[arg(long, env = "STEVEDORE_FARGATE_SANDBOX", value_enum, default_value_t)]
    fargate_sandbox: crate::fargate::SandboxChoice,
    /// Timeouts and caps of the API listener.
    #[command(flatten)]
    limits: crate::listener::Limits,
    /// The state store (`--store sqlite|etcd://...`) and its etcd options.
    #[command(flatten)]
    store: crate::store_choice::StoreArgs,
    /// Period of the load balancers' AWS/ApplicationELB metrics (AWS: `1m`); shorter,
    /// e.g. `2s`, for tests and demos. Periods are aligned to the clock.
    #[arg(long, env = "STEVEDORE_LB_METRICS_INTERVAL", default_value = "1m",
          value_parser = parse_retention)]
    lb_metrics_interval: Duration,
    /// Do not serve the ELBv2 listeners from this process (run `stevedore lb` instead).
    #[arg(long, env = "STEVEDORE_NO_LB", value_parser = clap::builder::BoolishValueParser::new())]
    no_lb: bool,
    /// How long a web console session lasts after sign-in (`12h`, `30m`, `5s`, plain seconds).
    #[arg(long, env = "STEVEDORE_CONSOLE_SESSION_TTL", default_value = "12h",
          value_parser = parse_retention)]
    console_session_ttl: Duration,
    /// Serve TLS (`--tls` or `--tls=true`); the default is on for a non-loopback listen
    /// address and off on loopback. `--tls=false` off a loopback address also needs
    /// `--insecure-http`.
    #[arg(long, env = "STEVEDORE_TLS", num_args = 0..=1, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    tls: Option<bool>,
    /// PEM certificate chain to serve instead of one from the server's own CA (with
    /// `--tls-key`; implies TLS).
    #[arg(long, env = "STEVEDORE_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of `--tls-cert`.
    #[arg(long, env = "STEVEDORE_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Extra names or addresses for the generated server certificate (repeat or
    /// comma-separate).
    #[arg(long, env = "STEVEDORE_TLS_SAN", value_delimiter = ',')]
    tls_san: Vec<String>,
    /// Allow plain HTTP on a non-loopback address (credentials and tokens then cross the
    /// network in clear).
    #[arg(long, env = "STEVEDORE_INSECURE_HTTP", value_parser = clap::builder::BoolishValueParser::new())]
    insecure_http: bool,
}

/// How the server listens, decided from the flags before anything starts.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Transport {
    Plain,
    Tls(crate::tls::CertSource),
}

/// TLS is on when asked for, when a certificate is given, or off loopback by default; plain
/// HTTP off loopback needs `--insecure-http`.
fn decide_transport(args: &ServerArgs) -> anyhow::Result<Transport> {
    let loopback = args.listen.ip().is_loopback();
    let user = args.tls_cert.clone().zip(args.tls_key.clone());
    let tls = match (args.tls, &user) {
        (Some(false), Some(_)) => {
            anyhow::bail!("--tls-cert/--tls-key were given but TLS is turned off (--tls=false)")
        }
        (Some(on), None) => on,
        (None, Some(_)) => true,
        (Some(true), Some(_)) => true,
        (None, None) => !loopback && !args.insecure_http,
    };
    if !tls && !loopback && !args.insecure_http {
        anyhow::bail!(
            "refusing plain HTTP on the non-loopback address {}: credentials and tokens would cross \
             the network in clear. Drop --tls=false to serve TLS with the server's own CA, or pass \
             --insecure-http if something in front of Stevedore terminates TLS",
            args.listen
        );
    }
    if !tls {
        return Ok(Transport::Plain);
    }
    Ok(Transport::Tls(match user {
        Some((cert, key)) => crate::tls::CertSource::User { cert, key },
        None => crate::tls::CertSource::Generated {
            data_dir: args.data_dir.clone(),
            sans: crate::tls::default_sans(args.listen, &args.tls_san),
        },
    }))
}

pub async fn run(args: ServerArgs, quick_start: bool) -> anyhow::Result<()> {
    if args.account_id.len() != 12 || !args.account_id.bytes().all(|b| b.is_ascii_digit()) {
        anyhow::bail!("--account-id must be 12 digits, got '{}'", args.account_id);
    }
    if args.region.is_empty()
        || !args
            .region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        anyhow::bail!(
            "--region must look like an AWS region (e.g. us-east-1), got '{}'",
            args.region
        );
    }
    let transport = decide_transport(&args)?;
    // First, so that every metric handle resolved from here on reaches the exporter.
    telemetry::install();
    let shutdown = CancellationToken::new();
    let mut loops = tokio::task::JoinSet::new();
    agent::modes::private_dir(&args.data_dir)
        .with_context(|| format!("creating data directory {}", args.data_dir.display()))?;
    // Secrets left readable by others (an older version, a copy, a wide umask) are narrowed.
    if let Err(error) = agent::modes::tighten_tree(&args.data_dir) {
        tracing::warn!(data_dir = %args.data_dir.display(), %error, "Could not check the data directory's file modes.");
    }
    let server_tls = match &transport {
        Transport::Plain => None,
        Transport::Tls(source) => Some(crate::tls::load(source).context("preparing TLS")?),
    };
    if let Some(ca) = server_tls.as_ref().and_then(|t| t.ca_file.as_ref()) {
        // This process's own clients (the quick-start agent, Fargate's agents) trust it.
        agent::tls::trust_ca_file(ca).context("trusting the server's own CA")?;
    }
    let console = console::Options {
        tls: server_tls.is_some(),
        session_ttl: args.console_session_ttl,
    };
    let scheme = if server_tls.is_some() {
        "https"
    } else {
        "http"
    };
    let (key, source) = load_admin_key(
        &args.data_dir,
        std::env::var("STEVEDORE_ADMIN_ACCESS_KEY_ID").ok(),
        std::env::var("STEVEDORE_ADMIN_SECRET_ACCESS_KEY").ok(),
    )?;
    let opened = args
        .store
        .open(&args.data_dir, &args.listen.to_string(), &shutdown)
        .await?;
    let scope = ArnScope {
        region: args.region.clone(),
        account_id: args.account_id.clone(),
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    let store = opened.store;
    let agent_key = quick_start.then(|| key.clone());
    // Fargate: hidden capacity is agents of this process calling this server (each
    // region's sign for their region).
    let loopback = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    let provisioner = crate::fargate::Provisioner::detect(
        format!("{scheme}://{loopback}"),
        args.region.clone(),
        &key,
        args.data_dir.join("fargate"),
        args.fargate_sandbox,
    )
    .await;
    let template = crate::accounts::Template {
        registry: Some((addr.to_string(), scheme.to_owned())),
        fargate: Some(provisioner.clone()),
        disconnect_timeout: args.agent_disconnect_timeout,
        time_scale: args.time_scale,
        retention: ecs::Retention::with_stopped_tasks(args.stopped_task_retention.as_secs_f64()),
        serve_lb: !args.no_lb,
        lb_metrics_interval: args.lb_metrics_interval,
        shutdown: shutdown.clone(),
        instances_endpoint: Some(format!("{scheme}://{loopback}")),
        leadership: opened.leadership,
    };
    let accounts = crate::accounts::Accounts::open(
        (store, args.data_dir.clone()),
        &scope,
        format!("{scheme}://{addr}/"),
        &key,
        Some(template),
    )
    .await?;
    // Accounts and regions other than the first that hold state keep being reconciled.
    accounts
        .resume()
        .await
        .context("bringing the accounts back")?;
    let ca_cert_hash = server_tls.as_ref().and_then(|t| t.ca_cert_hash.clone());
    let accounts = Arc::new(accounts);
    accounts.bind();
    let app = Arc::new(App::new(accounts.clone(), ca_cert_hash));
    crate::vpc_wiring::start_packet_filter(&mut loops, accounts, &shutdown).await;
    loops.spawn(supervise(
        LoopName::MetricsUpkeep,
        shutdown.clone(),
        || tokio::time::sleep(METRICS_UPKEEP_EVERY),
        || async { telemetry::exporter::upkeep() },
    ));
    tracing::info!(listen = %addr, data_dir = %args.data_dir.display(), region = %args.region, store = %opened.describe, "Stevedore server ready.");
    print_banner(
        &addr,
        &args,
        &source,
        server_tls.as_ref(),
        provisioner.unavailable(),
        quick_start,
    );
    if let Some(key) = agent_key {
        let (region, state_dir) = (args.region.clone(), args.data_dir.join("agent"));
        loops.spawn(crate::agent::start_for_up(
            addr,
            server_tls.is_some(),
            region,
            key,
            state_dir,
            shutdown.clone(),
        ));
    }
    let stop = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        stop.cancel();
    });
    crate::listener::serve(
        listener,
        server_tls.map(|tls| tls.config),
        router(app.clone()).merge(crate::console_wiring::routes(app.clone(), console)),
        &args.limits,
        shutdown.clone(),
    )
    .await;
    // Also when serving failed: no loop outlives the server.
    shutdown.cancel();
    // Every account's regions' Fargate agents and loops, then the server's own.
    let regional_left = app.accounts().stop(LOOPS_STOP_WITHIN).await;
    let stopped = tokio::time::timeout(LOOPS_STOP_WITHIN, async {
        while loops.join_next().await.is_some() {}
    })
    .await;
    if stopped.is_err() || regional_left > 0 {
        tracing::warn!(
            still_running = loops.len() + regional_left,
            "Background loops did not stop in time; leaving them."
        );
    }
    tracing::info!("Stevedore server stopped.");
    Ok(())
}

/// Starts one region's load balancer data plane and the source that follows its ELBv2
/// state, each restarted if it panics, both stopping with `shutdown`.
pub(crate) fn spawn_data_plane(
    loops: &mut tokio::task::JoinSet<()>,
    (elb, cloudwatch): (&elbv2::Elbv2, &cloudwatch::CloudWatch),
    metrics_interval: Duration,
    shutdown: &CancellationToken,
) {
    let source = crate::lb_wiring::ElbSource::new(elb.clone());
    let options = lb::Options {
        metrics_interval,
        ..lb::Options::default()
    };
    // The load balancers' AWS/ApplicationELB metrics go to the region's CloudWatch.
    let sink = Arc::new(crate::lb_metrics_wiring::CloudWatchLbMetrics(
        cloudwatch.clone(),
    ));
    let plane = Arc::new(lb::DataPlane::new(options).with_metrics_sink(sink));
    let follower = source.clone();
    loops.spawn(supervise_task(
        LoopName::LbConfigFollower,
        shutdown.clone(),
        move || follower.clone().follow(),
    ));
    let stop = shutdown.clone();
    loops.spawn(supervise_task(
        LoopName::LbDataPlane,
        shutdown.clone(),
        move || {
            let (plane, source, stop) = (plane.clone(), source.clone(), stop.clone());
            async move {
                if let Err(e) = plane.run(source, stop.cancelled_owned()).await {
                    tracing::error!(error = %e, "The load balancer data plane stopped.");
                }
            }
        },
    ));
}

fn print_banner(
    addr: &SocketAddr,
    args: &ServerArgs,
    source: &KeySource,
    tls: Option<&crate::tls::ServerTls>,
    fargate_unavailable: Option<&str>,
    quick_start: bool,
) {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let creds = match source {
        KeySource::Environment => "the admin key is the one in STEVEDORE_ADMIN_ACCESS_KEY_ID / STEVEDORE_ADMIN_SECRET_ACCESS_KEY".to_owned(),
        KeySource::DataDir(p) => {
            let abs = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
            format!("export AWS_SHARED_CREDENTIALS_FILE={}", abs.display())
        }
    };
    println!("Stevedore is serving the ECS API on {scheme}://{addr}");
    println!("  {creds}");
    println!(
        "  export AWS_ENDPOINT_URL={scheme}://{addr} AWS_DEFAULT_REGION={}",
        args.region
    );
    if let Some(ca) = tls.and_then(|t| t.ca_file.as_ref()) {
        let ca = std::fs::canonicalize(ca).unwrap_or_else(|_| ca.clone());
        println!("  export AWS_CA_BUNDLE={}", ca.display());
        println!(
            "  # Docker: trust the registry on this port (as root), then docker login/push/pull:"
        );
        println!(
            "  sudo mkdir -p /etc/docker/certs.d/{addr} && sudo cp {} /etc/docker/certs.d/{addr}/ca.crt",
            ca.display()
        );
        println!(
            "  # Agents on other hosts: stevedore agent --endpoint https://<this host>:{} --ca-file <copy of ca.crt>",
            addr.port()
        );
    }
    if let Some(reason) = fargate_unavailable {
        println!("  Fargate launches are refused: {reason}");
    }
    println!("  aws ecs create-cluster --cluster-name demo");
    if quick_start {
        println!("  (starting an agent on this machine in cluster `default`...)");
    }
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "Could not listen for Ctrl-C.");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "Could not listen for SIGTERM.");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("Shutdown requested; finishing in-flight requests.");
}

/// A retention of at least one second (`1h`, `2m`, `30s`, plain seconds).
fn parse_retention(text: &str) -> Result<Duration, String> {
    let d = crate::agent::parse_duration(text).map_err(|e| format!("{e:#}"))?;
    if d < Duration::from_secs(1) {
        return Err(format!("'{text}' is too short; use at least 1s"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: ServerArgs,
    }

    fn decide(argv: &[&str]) -> anyhow::Result<Transport> {
        let mut full = vec!["server"];
        full.extend_from_slice(argv);
        decide_transport(&Cli::try_parse_from(full)?.args)
    }

    #[test]
    fn loopback_is_plain_unless_tls_is_asked_for() {
        assert_eq!(
            decide(&["--listen", "127.0.0.1:1"]).expect("ok"),
            Transport::Plain
        );
        assert!(matches!(
            decide(&["--listen", "127.0.0.1:1", "--tls"]).expect("ok"),
            Transport::Tls(crate::tls::CertSource::Generated { .. })
        ));
    }

    #[test]
    fn other_addresses_serve_tls_by_default_and_plain_http_needs_the_insecure_flag() {
        assert!(matches!(
            decide(&["--listen", "0.0.0.0:1"]).expect("ok"),
            Transport::Tls(_)
        ));
        let err = decide(&["--listen", "0.0.0.0:1", "--tls=false"]).expect_err("refused");
        assert!(err.to_string().contains("--insecure-http"), "{err}");
        assert_eq!(
            decide(&["--listen", "0.0.0.0:1", "--insecure-http"]).expect("ok"),
            Transport::Plain
        );
    }

    #[test]
    fn a_user_certificate_implies_tls_and_needs_its_key() {
        assert!(matches!(
            decide(&["--tls-cert", "c.pem", "--tls-key", "k.pem"]).expect("ok"),
            Transport::Tls(crate::tls::CertSource::User { .. })
        ));
        assert!(decide(&["--tls-cert", "c.pem"]).is_err());
        assert!(decide(&["--tls=false", "--tls-cert", "c.pem", "--tls-key", "k.pem"]).is_err());
    }
}
