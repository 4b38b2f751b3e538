//! `stevedore lb`: the load balancer data plane alone, on a machine other than the
//! server's. It reads what to serve through the server's public ELBv2 API (the same
//! Describe* calls the AWS CLI makes, SigV4-signed with the standard AWS credentials),
//! rebuilds a [`model::lb::Config`] every poll interval, and runs [`::lb::DataPlane`]
//! over it. Instance targets are reached at the address their instance's agent
//! registered, read through ECS (ListClusters, ListContainerInstances,
//! DescribeContainerInstances) when some group has instance targets.
//!
//! Its health checks' verdicts go back to the server through Stevedore's own signed route
//! (ELBv2 has no public operation that writes health; see [`crate::health_reports`]), on
//! every change and every [`RESEND`] (so a restarted server learns them again), where
//! DescribeTargetHealth and ECS deployments read them. Run the server with `--no-lb` when
//! this role serves the listeners, since both bind the same ports.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::agent::credentials::region_from_environment;
use ::agent::{ApiClient, ApiConfig, ApiError, Credentials};
use ::lb::ConfigSource;
use anyhow::Context;
use model::lb::{Config, Health, HealthReport, TargetKey};
use telemetry::{supervise_task, CancellationToken, LoopName};
use tokio::sync::{watch, Notify};

use model::lb::health_reports::{Report, Reports};

/// How often every current verdict is sent again, changed or not.
pub const RESEND: Duration = Duration::from_secs(10);

use ::lb::describe;
pub use ::lb::describe::{fetch_config, QueryApi};

/// Options of `stevedore lb`.
#[derive(clap::Args, Debug)]
pub struct LbArgs {
    /// The server whose ELBv2 API describes what to serve, e.g. http://127.0.0.1:4747.
    /// Several replicas on one etcd: a comma-separated list; a poll that cannot reach
    /// one replica moves on to the next (every replica serves the same state).
    #[arg(long, env = "STEVEDORE_LB_ENDPOINT")]
    endpoint: String,
    /// Signing region (default: AWS_REGION, then AWS_DEFAULT_REGION, then us-east-1).
    #[arg(long, env = "STEVEDORE_LB_REGION")]
    region: Option<String>,
    /// How often the configuration is read again, e.g. `2s`, `500ms`, `1m`.
    #[arg(long, env = "STEVEDORE_LB_POLL_INTERVAL", default_value = "2s", value_parser = parse_interval)]
    poll_interval: Duration,
    /// Address every listener binds, instead of each load balancer's `DNSName`.
    #[arg(long, env = "STEVEDORE_LB_BIND_ADDRESS")]
    bind_address: Option<IpAddr>,
    /// Threads serving HTTP connections (0: one per core).
    #[arg(long, env = "STEVEDORE_LB_HTTP_WORKERS", default_value_t = 0)]
    http_workers: usize,
    /// PEM file of the CA that an `https://` endpoint's certificate must chain to
    /// (default: the system's roots), e.g. the server's `ca.crt`.
    #[arg(long, env = "STEVEDORE_LB_CA_FILE")]
    ca_file: Option<std::path::PathBuf>,
}

pub use ::lb::describe::LbRoleError;

/// A call that got no answer (connection, timeout, signing).
fn api_error(e: ApiError) -> LbRoleError {
    LbRoleError::Api(Box::new(e))
}

/// `500ms`, `2s`, `1m`, or plain seconds; at least 100 ms, since every poll costs the
/// server a handful of reads per load balancer and target group.
fn parse_interval(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let interval = match text.strip_suffix("ms") {
        Some(ms) => ms
            .trim()
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|e| format!("'{text}': {e}"))?,
        None => crate::agent::parse_duration(text).map_err(|e| format!("{e:#}"))?,
    };
    if interval < Duration::from_millis(100) {
        return Err(format!("'{text}' is too short; use at least 100ms"));
    }
    Ok(interval)
}

/// The server's ELBv2 API over HTTP.
#[derive(Clone)]
pub struct RemoteElb {
    api: ApiClient,
}

impl RemoteElb {
    /// A client of the ELBv2 API at `api`'s endpoint.
    pub fn new(api: ApiClient) -> Self {
        RemoteElb { api }
    }
}

#[async_trait::async_trait]
impl QueryApi for RemoteElb {
    async fn call(
        &self,
        operation: &'static str,
        params: &[(&str, &str)],
    ) -> Result<String, LbRoleError> {
        let form = encode_form(operation, params);
        let (status, body) = self
            .api
            .call_query(elbv2::SIGNING_NAME, operation, form)
            .await
            .map_err(api_error)?;
        let text = String::from_utf8(body.to_vec()).map_err(|_| LbRoleError::Decode {
            operation,
            reason: "not UTF-8".to_owned(),
        })?;
        if (200..300).contains(&status) {
            return Ok(text);
        }
        Err(describe::parse_error(operation, status, &text))
    }

    async fn instance_addresses(
        &self,
    ) -> Result<std::collections::HashMap<String, String>, LbRoleError> {
        instance_addresses(&self.api).await
    }
}

/// EC2 instance id → host address, from every cluster's container instances (ACTIVE and
/// DRAINING: both still run tasks), through the ECS API.
async fn instance_addresses(
    api: &ApiClient,
) -> Result<std::collections::HashMap<String, String>, LbRoleError> {
    use model::ecs::shapes::{
        DescribeContainerInstancesRequest, DescribeContainerInstancesResponse, ListClustersRequest,
        ListClustersResponse, ListContainerInstancesRequest, ListContainerInstancesResponse,
    };
    let mut clusters = Vec::new();
    let mut token = None;
    loop {
        let page: ListClustersResponse = api
            .call(
                "ListClusters",
                &ListClustersRequest {
                    next_token: token.take(),
                    max_results: Some(100),
                },
            )
            .await
            .map_err(api_error)?;
        clusters.extend(page.cluster_arns.unwrap_or_default());
        match page.next_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    let mut out = std::collections::HashMap::new();
    for cluster in clusters {
        let mut token = None;
        loop {
            let page: ListContainerInstancesResponse = api
                .call(
                    "ListContainerInstances",
                    &ListContainerInstancesRequest {
                        cluster: Some(cluster.clone()),
                        next_token: token.take(),
                        max_results: Some(100),
                        ..ListContainerInstancesRequest::default()
                    },
                )
                .await
                .map_err(api_error)?;
            let arns = page.container_instance_arns.unwrap_or_default();
            if !arns.is_empty() {
                let described: DescribeContainerInstancesResponse = api
                    .call(
                        "DescribeContainerInstances",
                        &DescribeContainerInstancesRequest {
                            cluster: Some(cluster.clone()),
                            container_instances: arns,
                            include: None,
                        },
                    )
                    .await
                    .map_err(api_error)?;
                for ci in described.container_instances.unwrap_or_default() {
                    let address = ci.attributes.iter().flatten().find_map(|a| {
                        (a.name == model::ecs::names::HOST_ADDRESS_ATTRIBUTE)
                            .then(|| a.value.clone())
                            .flatten()
                    });
                    if let (Some(id), Some(address)) = (ci.ec2_instance_id, address) {
                        out.insert(id, address);
                    }
                }
            }
            match page.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
    }
    Ok(out)
}

/// The form body of a query-protocol request: `Action`, `Version`, then `params`.
fn encode_form(operation: &str, params: &[(&str, &str)]) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    // RFC 3986 unreserved characters stay as they are, as the AWS SDKs send them.
    const VALUE: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    let mut form = format!("Action={operation}&Version={}", elbv2::API_VERSION);
    for (key, value) in params {
        form.push('&');
        form.extend(utf8_percent_encode(key, VALUE));
        form.push('=');
        form.extend(utf8_percent_encode(value, VALUE));
    }
    form
}

/// The data plane's [`ConfigSource`]: snapshots the poller publishes, and the latest
/// health verdict per target, which [`PolledSource::report`] sends to the server.
pub struct PolledSource {
    config: watch::Sender<Arc<Config>>,
    health: Mutex<BTreeMap<(String, TargetKey), HealthReport>>,
    health_changed: Notify,
}

impl PolledSource {
    /// A source serving nothing until the first poll succeeds.
    pub fn new() -> Arc<Self> {
        Arc::new(PolledSource {
            config: watch::Sender::new(Arc::new(Config::default())),
            health: Mutex::new(BTreeMap::new()),
            health_changed: Notify::new(),
        })
    }

    fn health(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, TargetKey), HealthReport>> {
        self.health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every current verdict, in the route's wire form.
    pub fn current_reports(&self) -> Reports {
        Reports {
            reports: self.health().values().map(Report::from).collect(),
        }
    }

    /// Sends the verdicts to the server after each change and every [`RESEND`], forever.
    /// A failed send is retried at the next occasion (the server may be restarting).
    pub async fn report(&self, api: &ApiClient) {
        let mut failing = false;
        loop {
            tokio::select! {
                () = self.health_changed.notified() => {}
                () = tokio::time::sleep(RESEND) => {}
            }
            let reports = self.current_reports();
            if reports.reports.is_empty() {
                continue;
            }
            let body = match serde_json::to_vec(&reports) {
                Ok(body) => body,
                Err(error) => {
                    tracing::error!(%error, "Encoding health reports failed.");
                    continue;
                }
            };
            let sent = api
                .post_json(
                    elbv2::SIGNING_NAME,
                    crate::health_reports::PATH,
                    "ReportTargetHealth",
                    body,
                )
                .await;
            match sent {
                Ok((status, _)) if (200..300).contains(&status) => {
                    if failing {
                        tracing::info!("Reporting target health to the server works again.");
                        failing = false;
                    }
                }
                outcome => {
                    let error = match outcome {
                        Ok((status, body)) => {
                            format!("HTTP {status}: {}", String::from_utf8_lossy(&body))
                        }
                        Err(e) => e.to_string(),
                    };
                    if !failing {
                        tracing::warn!(%error, "Reporting target health to the server failed; will retry.");
                    }
                    failing = true;
                }
            }
        }
    }

    /// Publishes `next` if it differs from the snapshot served, under the next revision
    /// (revisions are this process's own: the data plane only needs them to increase).
    /// Returns whether it was published.
    pub fn offer(&self, mut next: Config) -> bool {
        let current = self.config.borrow().clone();
        next.revision = current.revision;
        if next == *current {
            return false;
        }
        next.revision = current.revision + 1;
        // Verdicts for targets no longer registered are not worth sending.
        self.health().retain(|(tg, key), _| {
            next.target_groups
                .iter()
                .any(|g| &g.arn == tg && g.targets.iter().any(|t| &t.key == key))
        });
        self.config.send_replace(Arc::new(next));
        true
    }

    /// Reads the configuration every `interval` until `shutdown`; a failed read keeps the
    /// last snapshot in service.
    pub async fn follow(
        &self,
        api: &dyn QueryApi,
        bind_override: Option<IpAddr>,
        interval: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut failing = false;
        loop {
            match fetch_config(api, bind_override).await {
                Ok(config) => {
                    if failing {
                        tracing::info!("Reading the load balancer configuration works again.");
                        failing = false;
                    }
                    let (lbs, tgs) = (config.load_balancers.len(), config.target_groups.len());
                    if self.offer(config) {
                        tracing::info!(
                            load_balancers = lbs,
                            target_groups = tgs,
                            revision = self.config.borrow().revision,
                            "Serving a new load balancer configuration."
                        );
                    }
                }
                // Warn once per outage, not once per poll.
                Err(error) if !failing => {
                    failing = true;
                    tracing::warn!(%error, "Reading the load balancer configuration failed; serving the last one.");
                }
                Err(error) => {
                    tracing::debug!(%error, "Reading the load balancer configuration failed again.")
                }
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(interval) => {}
            }
        }
    }
}

impl ConfigSource for PolledSource {
    fn config(&self) -> watch::Receiver<Arc<Config>> {
        self.config.subscribe()
    }

    fn report_health(&self, reports: Vec<HealthReport>) {
        for r in &reports {
            let (state, reason) = match &r.health {
                Health::Initial => ("initial", ""),
                Health::Healthy => ("healthy", ""),
                Health::Unhealthy { reason, .. } => ("unhealthy", reason.as_str()),
            };
            tracing::info!(
                target_group = %r.target_group_arn,
                target = %r.target.id,
                port = r.target.port,
                state,
                reason,
                "Target health changed."
            );
        }
        let mut health = self.health();
        for r in reports {
            health.insert((r.target_group_arn.clone(), r.target.clone()), r);
        }
        drop(health);
        self.health_changed.notify_one();
    }
}

/// Runs the role until SIGINT or SIGTERM.
pub async fn run(args: LbArgs) -> anyhow::Result<()> {
    let credentials = Credentials::from_environment().context("loading AWS credentials")?;
    let region = args.region.clone().unwrap_or_else(region_from_environment);
    if let Some(ca) = &args.ca_file {
        ::agent::tls::trust_ca_file(ca).context("--ca-file")?;
    }
    let mut endpoints = args
        .endpoint
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_owned);
    let first = endpoints.next().context("--endpoint names no endpoint")?;
    ::agent::tls::verify_endpoint(&first)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut config = ApiConfig::new(&first, &region, credentials);
    config.fallback_endpoints = endpoints.collect();
    let api = ApiClient::new(config).context("configuring the ELBv2 client")?;
    let remote = RemoteElb::new(api.clone());
    let source = PolledSource::new();
    let plane = ::lb::DataPlane::new(::lb::Options {
        http_workers: args.http_workers,
        ..::lb::Options::default()
    });
    tracing::info!(endpoint = %args.endpoint, poll_interval = ?args.poll_interval, "Stevedore load balancer starting.");
    // The data plane owns shutdown (it closes listeners and drains connections); the
    // poller simply stops being polled once the plane is done.
    let serving = plane.run(source.clone(), crate::server::shutdown_signal());
    // Supervised as the server's loops are: a panic costs one round, never the role.
    let stop = CancellationToken::new();
    let (bind_address, poll_interval) = (args.bind_address, args.poll_interval);
    let poller = supervise_task(LoopName::LbConfigPoller, stop.clone(), || {
        let (source, remote) = (source.clone(), remote.clone());
        async move {
            source
                .follow(&remote, bind_address, poll_interval, std::future::pending())
                .await;
        }
    });
    let reporter = supervise_task(LoopName::LbHealthReporter, stop.clone(), || {
        let (source, api) = (source.clone(), api.clone());
        async move { source.report(&api).await }
    });
    tokio::select! {
        served = serving => {
            stop.cancel();
            served.context("running the data plane")?;
        }
        _ = async { tokio::join!(poller, reporter) } => {}
    }
    tracing::info!("Stevedore load balancer stopped.");
    Ok(())
}
