//! The `server` role: opens the state store, loads the admin key, and serves every API on
//! one port until SIGINT or SIGTERM.

use crate::credentials::{load_admin_key, KeySource};
use crate::http::{router, App};
use anyhow::Context;
use model::ecs::arn::ArnScope;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

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
    /// Sandbox of Fargate tasks: `auto` uses gVisor (Docker runtime `runsc`) when Docker
    /// offers it, else runc.
    #[arg(long, env = "STEVEDORE_FARGATE_SANDBOX", value_enum, default_value_t)]
    fargate_sandbox: crate::fargate::SandboxChoice,
    /// Do not serve the ELBv2 listeners from this process (run `stevedore lb` instead).
    #[arg(long, env = "STEVEDORE_NO_LB", value_parser = clap::builder::BoolishValueParser::new())]
    no_lb: bool,
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
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating data directory {}", args.data_dir.display()))?;
    let (key, source) = load_admin_key(
        &args.data_dir,
        std::env::var("STEVEDORE_ADMIN_ACCESS_KEY_ID").ok(),
        std::env::var("STEVEDORE_ADMIN_SECRET_ACCESS_KEY").ok(),
    )?;
    let db = args.data_dir.join("state.db");
    let store =
        tokio::task::spawn_blocking(move || store::SqliteStore::open(store::SqliteConfig::new(db)))
            .await
            .context("opening the state store")?
            .context("opening the state store")?;
    let scope = ArnScope {
        region: args.region.clone(),
        account_id: args.account_id.clone(),
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    let store: Arc<dyn store::Store> = Arc::new(store);
    let blobs = blobstore::FsBlobStore::open(args.data_dir.join("blobs"))
        .context("opening the registry's blob storage")?;
    let registry = registry::Registry::new(
        store.clone(),
        Arc::new(blobs),
        registry::RegistryConfig::new(
            addr.to_string(),
            args.region.clone(),
            args.account_id.clone(),
        ),
    );
    tokio::spawn(registry.clone().run_background());
    let agent_key = quick_start.then(|| key.clone());
    // Fargate: hidden capacity is agents of this process calling this server.
    let loopback = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    let provisioner = crate::fargate::Provisioner::detect(
        format!("http://{loopback}"),
        args.region.clone(),
        &key,
        args.data_dir.join("fargate"),
        args.fargate_sandbox,
    )
    .await;
    let app = Arc::new(
        App::new(store, scope, key, format!("http://{addr}/"))
            .with_registry(registry)
            .with_fargate(provisioner.clone()),
    );
    tokio::spawn(crate::fargate::resume(app.ecs().clone(), provisioner));
    // CloudWatch Logs retention: the sweep only reclaims space (reads already hide expired
    // events), so it simply stops with the process.
    let logs = app.logs().clone();
    tokio::spawn(async move { logs.run_retention(std::future::pending()).await });
    // ELBv2: ends target draining on time (a committed write the data plane hears of).
    let elb = app.elb().clone();
    tokio::spawn(async move { elb.run_sweeper(std::future::pending()).await });
    // The load balancer data plane serves the ELBv2 listeners from this process.
    let lb_source = crate::balancing::ElbSource::new(app.elb().clone());
    let plane = Arc::new(lb::DataPlane::new(lb::Options::default()));
    if !args.no_lb {
        tokio::spawn(lb_source.clone().follow());
        tokio::spawn(async move {
            if let Err(e) = plane.run(lb_source, std::future::pending()).await {
                tracing::error!(error = %e, "The load balancer data plane stopped.");
            }
        });
    }
    // The service controller is level-triggered: stopping it mid-round loses nothing.
    let ecs = app.ecs().clone();
    ecs.set_disconnect_timeout(args.agent_disconnect_timeout);
    tokio::spawn(async move { ecs.run_services(std::future::pending()).await });
    tracing::info!(listen = %addr, data_dir = %args.data_dir.display(), region = %args.region, "Stevedore server ready.");
    print_banner(&addr, &args, &source, quick_start);
    if let Some(key) = agent_key {
        let (region, state_dir) = (args.region.clone(), args.data_dir.join("agent"));
        tokio::spawn(crate::agent::start_for_up(addr, region, key, state_dir));
    }
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP")?;
    tracing::info!("Stevedore server stopped.");
    Ok(())
}

fn print_banner(addr: &SocketAddr, args: &ServerArgs, source: &KeySource, quick_start: bool) {
    let creds = match source {
        KeySource::Environment => "the admin key is the one in STEVEDORE_ADMIN_ACCESS_KEY_ID / STEVEDORE_ADMIN_SECRET_ACCESS_KEY".to_owned(),
        KeySource::DataDir(p) => {
            let abs = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
            format!("export AWS_SHARED_CREDENTIALS_FILE={}", abs.display())
        }
    };
    println!("Stevedore is serving the ECS API on http://{addr}");
    println!("  {creds}");
    println!(
        "  export AWS_ENDPOINT_URL=http://{addr} AWS_DEFAULT_REGION={}",
        args.region
    );
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
