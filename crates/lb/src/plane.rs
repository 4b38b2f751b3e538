//! The data plane's supervisor: follows the [`ConfigSource`], diffs each snapshot against
//! what runs (listeners to bind, close or re-route; targets and checkers through
//! [`Targets`]), retries listeners that could not bind, forwards health verdicts to the
//! source, and tears everything down on shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use model::lb::{Config, HealthReport, Listener, ListenerProtocol};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::alb_metrics::{compute_points, period_start, until_boundary, Meters, MetricsSink};
use crate::balance::Group;
use crate::error::LbError;
use crate::proxy::{run_http_listener, Timeouts};
use crate::source::ConfigSource;
use crate::table::{compute_http_routes, compute_tcp_routes, HttpRoutes, Targets, TcpRoutes};
use crate::tcp::run_tcp_listener;
use crate::workers::Workers;

/// Tunables of the data plane.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Timeouts towards targets.
    pub timeouts: Timeouts,
    /// How often listeners that failed to bind are tried again.
    pub bind_retry: Duration,
    /// Threads serving HTTP connections (each with its own runtime and upstream pool);
    /// 0 means one per available core.
    pub http_workers: usize,
    /// The period of the AWS/ApplicationELB metrics handed to the sink (AWS: 60 s;
    /// shorter for tests and demos). Periods are aligned to the epoch.
    pub metrics_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeouts: Timeouts::default(),
            bind_retry: Duration::from_secs(5),
            http_workers: 0,
            metrics_interval: Duration::from_secs(60),
        }
    }
}

/// A listener that is accepting connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundListener {
    /// The listener.
    pub listener_arn: String,
    /// The address actually bound (the real port when the config asked for port 0).
    pub addr: SocketAddr,
}

/// A listener that could not bind; it is retried every [`Options::bind_retry`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindFailure {
    /// The listener.
    pub listener_arn: String,
    /// The address it wanted.
    pub addr: SocketAddr,
    /// Why binding failed.
    pub error: String,
}

/// What the data plane is serving, for the binary to surface and for tests to wait on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlaneStatus {
    /// The revision of the snapshot last applied (`None` before the first).
    pub revision: Option<u64>,
    /// Listeners accepting connections.
    pub listeners: Vec<BoundListener>,
    /// Listeners that could not bind.
    pub bind_failures: Vec<BindFailure>,
}

impl PlaneStatus {
    /// The bound address of a listener.
    pub fn addr_of(&self, listener_arn: &str) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|l| l.listener_arn == listener_arn)
            .map(|l| l.addr)
    }
}

/// The load balancer data plane. Construct it, keep a handle on [`DataPlane::status`],
/// and drive [`DataPlane::run`] on a task.
pub struct DataPlane {
    options: Options,
    status: watch::Sender<PlaneStatus>,
    /// Where AWS/ApplicationELB metrics go (none: they are not collected for anyone).
    sink: Option<Arc<dyn MetricsSink>>,
}

impl std::fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataPlane")
            .field("options", &self.options)
            .field("status", &self.status)
            .field("sink", &self.sink.is_some())
            .finish()
    }
}

enum Routes {
    Http(Arc<ArcSwap<HttpRoutes>>),
    Tcp(Arc<ArcSwap<TcpRoutes>>),
}

struct Running {
    wanted: (SocketAddr, ListenerProtocol),
    local: SocketAddr,
    routes: Routes,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

type Groups = HashMap<String, Arc<Group>>;

/// The supervisor's state while running.
struct Supervisor {
    workers: Arc<Workers>,
    timeouts: Timeouts,
    connect_timeout: Duration,
    root: CancellationToken,
    reports: mpsc::UnboundedSender<HealthReport>,
    targets: Targets,
    listeners: HashMap<String, Running>,
    failures: Vec<BindFailure>,
    /// The snapshot being served and its runtime target groups by ARN.
    served: Option<(Arc<Config>, Groups)>,
}

impl DataPlane {
    /// A data plane that serves nothing until [`DataPlane::run`].
    pub fn new(options: Options) -> Self {
        DataPlane {
            options,
            status: watch::Sender::new(PlaneStatus::default()),
            sink: None,
        }
    }

    /// Hands the AWS/ApplicationELB metrics to `sink` every [`Options::metrics_interval`].
    pub fn with_metrics_sink(mut self, sink: Arc<dyn MetricsSink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Follows what is being served.
    pub fn status(&self) -> watch::Receiver<PlaneStatus> {
        self.status.subscribe()
    }

    /// Listeners that could not bind right now.
    pub fn bind_failures(&self) -> Vec<BindFailure> {
        self.status.borrow().bind_failures.clone()
    }

    /// Serves the source's configuration, following every change, until `shutdown`
    /// completes; then closes every listener, ends connections and stops health checks.
    /// Fails only if the worker threads cannot start.
    pub async fn run<S>(
        &self,
        source: Arc<S>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), LbError>
    where
        S: ConfigSource + ?Sized,
    {
        let count = match self.options.http_workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let workers = match Workers::start(count) {
            Ok(workers) => Arc::new(workers),
            Err(error) => {
                tracing::error!(%error, "Cannot start the HTTP worker threads.");
                return Err(LbError::Workers(error));
            }
        };
        let (reports, reports_rx) = mpsc::unbounded_channel();
        let reporter = tokio::spawn(forward_reports(source.clone(), reports_rx));
        let meters = Arc::new(Meters::new(workers.count()));
        let root = CancellationToken::new();
        if let Some(sink) = &self.sink {
            tokio::spawn(publish_metrics(
                meters.clone(),
                sink.clone(),
                self.options.metrics_interval,
                root.clone(),
            ));
        }
        let mut sup = Supervisor {
            workers: workers.clone(),
            timeouts: self.options.timeouts,
            connect_timeout: self.options.timeouts.connect,
            root,
            reports,
            targets: Targets::new(workers.count(), meters),
            listeners: HashMap::new(),
            failures: Vec::new(),
            served: None,
        };
        let mut config = source.config();
        let first = config.borrow_and_update().clone();
        sup.apply_config(first).await;
        self.publish(&sup);
        let mut retry = tokio::time::interval(self.options.bind_retry);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut source_open = true;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                changed = config.changed(), if source_open => {
                    if changed.is_err() {
                        // The source is gone: keep serving the last snapshot.
                        source_open = false;
                        continue;
                    }
                    let next = config.borrow_and_update().clone();
                    sup.apply_config(next).await;
                    self.publish(&sup);
                }
                _ = retry.tick(), if !sup.failures.is_empty() => {
                    sup.apply_listeners().await;
                    self.publish(&sup);
                }
            }
        }
        sup.shutdown().await;
        drop(sup);
        // Checkers hold report senders; once they are cancelled the reporter drains.
        let _ = tokio::time::timeout(Duration::from_secs(1), reporter).await;
        self.status.send_modify(|s| {
            s.listeners.clear();
        });
        Ok(())
    }

    fn publish(&self, sup: &Supervisor) {
        let mut listeners: Vec<BoundListener> = sup
            .listeners
            .iter()
            .map(|(arn, r)| BoundListener {
                listener_arn: arn.clone(),
                addr: r.local,
            })
            .collect();
        listeners.sort_by(|a, b| a.listener_arn.cmp(&b.listener_arn));
        let status = PlaneStatus {
            revision: sup.served.as_ref().map(|(c, _)| c.revision),
            listeners,
            bind_failures: sup.failures.clone(),
        };
        self.status.send_replace(status);
    }
}

/// Every period (aligned to the epoch), drains the target groups' counters and hands
/// their AWS/ApplicationELB points to `sink`, until `stop`.
async fn publish_metrics(
    meters: Arc<Meters>,
    sink: Arc<dyn MetricsSink>,
    every: Duration,
    stop: CancellationToken,
) {
    // Below a second the store's finest resolution is crossed for nothing.
    let every = every.max(Duration::from_secs(1));
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
    };
    telemetry::supervise(
        telemetry::LoopName::LbMetrics,
        stop,
        || tokio::time::sleep(until_boundary(now(), every)),
        || {
            let (meters, sink) = (meters.clone(), sink.clone());
            async move {
                let points = compute_points(&meters.collect(), period_start(now(), every));
                if !points.is_empty() {
                    sink.publish(points);
                }
            }
        },
    )
    .await;
}

/// Batches health verdicts to the source: whatever has queued up goes in one call.
async fn forward_reports<S: ConfigSource + ?Sized>(
    source: Arc<S>,
    mut rx: mpsc::UnboundedReceiver<HealthReport>,
) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 256).await > 0 {
        source.report_health(std::mem::take(&mut batch));
    }
}

impl Supervisor {
    async fn apply_config(&mut self, config: Arc<Config>) {
        if let Some((served, _)) = &self.served {
            if config.revision < served.revision {
                tracing::debug!(
                    revision = config.revision,
                    serving = served.revision,
                    "Ignoring a stale load balancer config."
                );
                return;
            }
        }
        let groups = self
            .targets
            .apply_config(&config, &self.reports, &self.root);
        self.served = Some((config, groups));
        self.apply_listeners().await;
    }

    /// Closes listeners no longer wanted (or moved), re-routes the others, binds the
    /// missing ones.
    async fn apply_listeners(&mut self) {
        let Some((config, groups)) = &self.served else {
            return;
        };
        let (config, groups) = (config.clone(), groups.clone());
        let mut wanted: HashMap<&str, (SocketAddr, &Listener, Duration)> = HashMap::new();
        for lb in &config.load_balancers {
            for listener in &lb.listeners {
                let addr = SocketAddr::new(lb.bind_address, listener.port);
                wanted.insert(listener.arn.as_str(), (addr, listener, lb.idle_timeout));
            }
        }
        // Close first, so a port moving between listeners is free to bind below.
        let stale: Vec<String> = self
            .listeners
            .iter()
            .filter(|(arn, r)| {
                wanted
                    .get(arn.as_str())
                    .is_none_or(|(addr, l, _)| r.wanted != (*addr, l.protocol))
            })
            .map(|(arn, _)| arn.clone())
            .collect();
        for arn in stale {
            if let Some(running) = self.listeners.remove(&arn) {
                running.stop.cancel();
                let _ = running.task.await;
                tracing::info!(listener = %arn, addr = %running.local, "Listener closed.");
            }
        }
        self.failures.clear();
        let mut arns: Vec<&str> = wanted.keys().copied().collect();
        arns.sort_unstable();
        for arn in arns {
            let Some(&(addr, listener, idle)) = wanted.get(arn) else {
                continue;
            };
            if let Some(running) = self.listeners.get(arn) {
                match &running.routes {
                    Routes::Http(r) => {
                        let routes =
                            compute_http_routes(listener, running.local.port(), idle, &groups);
                        r.store(Arc::new(routes));
                    }
                    Routes::Tcp(r) => r.store(Arc::new(compute_tcp_routes(listener, &groups))),
                }
                continue;
            }
            match self.start_listener(addr, listener, idle, &groups).await {
                Ok(running) => {
                    tracing::info!(listener = %arn, addr = %running.local, "Listener bound.");
                    self.listeners.insert(arn.to_owned(), running);
                }
                Err(error) => {
                    tracing::error!(%error, "Listener could not bind; will retry.");
                    self.failures.push(BindFailure {
                        listener_arn: arn.to_owned(),
                        addr,
                        error: error.to_string(),
                    });
                }
            }
        }
    }

    async fn start_listener(
        &self,
        addr: SocketAddr,
        listener: &Listener,
        idle: Duration,
        groups: &HashMap<String, Arc<Group>>,
    ) -> Result<Running, LbError> {
        let bind_error = |source| LbError::Bind {
            listener_arn: listener.arn.clone(),
            addr,
            source,
        };
        let socket = TcpListener::bind(addr).await.map_err(bind_error)?;
        let local = socket.local_addr().map_err(bind_error)?;
        let stop = self.root.child_token();
        let (routes, task) = match listener.protocol {
            ListenerProtocol::Http => {
                let routes = Arc::new(ArcSwap::from_pointee(compute_http_routes(
                    listener,
                    local.port(),
                    idle,
                    groups,
                )));
                let task = tokio::spawn(run_http_listener(
                    socket,
                    routes.clone(),
                    self.workers.clone(),
                    self.timeouts,
                    stop.clone(),
                ));
                (Routes::Http(routes), task)
            }
            ListenerProtocol::Tcp => {
                let routes = Arc::new(ArcSwap::from_pointee(compute_tcp_routes(listener, groups)));
                let task = tokio::spawn(run_tcp_listener(
                    socket,
                    routes.clone(),
                    self.connect_timeout,
                    stop.clone(),
                    self.root.clone(),
                ));
                (Routes::Tcp(routes), task)
            }
        };
        Ok(Running {
            wanted: (addr, listener.protocol),
            local,
            routes,
            stop,
            task,
        })
    }

    async fn shutdown(&mut self) {
        self.root.cancel();
        self.targets.stop_all();
        for (_, running) in self.listeners.drain() {
            let _ = running.task.await;
        }
    }
}
