//! Serves one application load balancer from the command line: one HTTP listener whose
//! default action forwards to one target group. For benchmarks and trying things out,
//! until the `stevedore` binary embeds the data plane.
//!
//!   cargo run -p lb --release --example serve -- --listen 127.0.0.1:8080 \
//!       --target 127.0.0.1:9001 --target 127.0.0.1:9002 [--algorithm least_outstanding_requests] \
//!       [--health-check /health] [--sticky SECONDS]

use std::net::SocketAddr;
use std::sync::Arc;

use lb::{DataPlane, Options, WatchSource};
use model::lb::*;

fn usage() -> String {
    "usage: serve --listen ADDR --target HOST:PORT [--target ...] \
     [--algorithm round_robin|least_outstanding_requests] [--health-check PATH] \
     [--sticky SECONDS]"
        .into()
}

fn parse_config() -> Result<Config, String> {
    let mut listen: Option<SocketAddr> = None;
    let mut targets = Vec::new();
    let mut algorithm = Algorithm::RoundRobin;
    let mut check_path: Option<String> = None;
    let mut stickiness = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(usage)?;
        match flag.as_str() {
            "--listen" => listen = Some(value.parse().map_err(|e| format!("--listen: {e}"))?),
            "--target" => {
                let (host, port) = value.rsplit_once(':').ok_or_else(usage)?;
                let port: u16 = port.parse().map_err(|e| format!("--target: {e}"))?;
                targets.push(Target {
                    key: TargetKey {
                        id: value.clone(),
                        port,
                    },
                    host: host.to_owned(),
                    draining: false,
                });
            }
            "--algorithm" => {
                algorithm = match value.as_str() {
                    "round_robin" => Algorithm::RoundRobin,
                    "least_outstanding_requests" => Algorithm::LeastOutstandingRequests,
                    _ => return Err(usage()),
                }
            }
            "--health-check" => check_path = Some(value),
            "--sticky" => {
                let seconds = value.parse().map_err(|e| format!("--sticky: {e}"))?;
                stickiness = Some(std::time::Duration::from_secs(seconds));
            }
            _ => return Err(usage()),
        }
    }
    let listen = listen.ok_or_else(usage)?;
    if targets.is_empty() {
        return Err(usage());
    }
    Ok(Config {
        revision: 1,
        load_balancers: vec![LoadBalancer {
            arn: "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/serve/1"
                .into(),
            name: "serve".into(),
            kind: LoadBalancerKind::Application,
            bind_address: listen.ip(),
            idle_timeout: model::lb::DEFAULT_IDLE_TIMEOUT,
            listeners: vec![Listener {
                arn: "listener/app/serve/1/1".into(),
                port: listen.port(),
                protocol: ListenerProtocol::Http,
                rules: vec![],
                default_actions: vec![Action::Forward(vec![WeightedTargetGroup {
                    target_group_arn: "tg".into(),
                    weight: 1,
                }])],
            }],
        }],
        target_groups: vec![TargetGroup {
            arn: "tg".into(),
            name: "serve".into(),
            protocol: TargetProtocol::Http,
            health_check: HealthCheck {
                enabled: check_path.is_some(),
                protocol: TargetProtocol::Http,
                port: None,
                path: check_path.unwrap_or_else(|| "/".into()),
                interval_seconds: 5,
                timeout_seconds: 2,
                healthy_threshold: 2,
                unhealthy_threshold: 2,
                matcher: Matcher(vec![200..=399]),
            },
            algorithm,
            deregistration_delay_seconds: 300,
            stickiness,
            targets,
        }],
    })
}

#[tokio::main]
async fn main() -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STEVEDORE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = parse_config()?;
    let source = Arc::new(WatchSource::new(config));
    let plane = DataPlane::new(Options::default());
    let mut status = plane.status();
    tokio::spawn(async move {
        while status.changed().await.is_ok() {
            let failures = status.borrow().bind_failures.clone();
            for f in failures {
                eprintln!(
                    "serve: listener {} on {} failed: {}",
                    f.listener_arn, f.addr, f.error
                );
            }
        }
    });
    plane
        .run(source, async {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => return std::future::pending().await,
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        })
        .await
        .map_err(|e| e.to_string())
}
