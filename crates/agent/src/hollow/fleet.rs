//! Many hollow instances in one process: registration with bounded concurrency, one
//! channel per instance, reporting with retries, and counters the caller can print.

use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use model::ecs::shapes::{DiscoverPollEndpointRequest, RegisterContainerInstanceRequest};
use rand::Rng;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::api::{ApiClient, ApiError};
use crate::channel::{Channel, ChannelConfig, Delivery};
use crate::hollow::register::{compute_registration, InstanceSpec, SIM_AGENT_VERSION};
use crate::hollow::report::Reporter;

/// What to run.
#[derive(Clone, Debug)]
pub struct FleetConfig {
    /// The signed API client all instances share (and its connection pool).
    pub api: ApiClient,
    /// With several replicas: one client per replica, each starting at its own and
    /// failing over to the others. Instance `i` uses `spread[i % len]`, so instances
    /// (and the channels DiscoverPollEndpoint sends them to) spread over the replicas.
    /// Empty: every instance uses `api`.
    pub spread: Vec<ApiClient>,
    /// Cluster name or ARN.
    pub cluster: String,
    /// How many instances.
    pub instances: usize,
    /// Availability zones, already expanded; instances take them round-robin.
    pub zones: Vec<String>,
    /// CPU units per instance.
    pub cpu: i32,
    /// Memory MiB per instance.
    pub memory: i32,
    /// `ecs.instance-type`.
    pub instance_type: String,
    /// At most this many registrations in flight.
    pub registration_concurrency: usize,
    /// Attempts per call before a transient failure counts as an error.
    pub max_attempts: u32,
    /// Channel silence after which a connection is dead (the jitter is half of it).
    pub idle_timeout: Duration,
}

impl FleetConfig {
    /// The client instance number `index` calls through.
    pub fn api_for(&self, index: usize) -> &ApiClient {
        if self.spread.is_empty() {
            &self.api
        } else {
            &self.spread[index % self.spread.len()]
        }
    }

    /// The spec of instance number `index`.
    pub fn instance_spec(&self, index: usize) -> InstanceSpec {
        let zone = if self.zones.is_empty() {
            String::new()
        } else {
            self.zones[index % self.zones.len()].clone()
        };
        InstanceSpec {
            cluster: self.cluster.clone(),
            cpu: self.cpu,
            memory: self.memory,
            instance_type: self.instance_type.clone(),
            availability_zone: zone,
        }
    }
}

/// Fleet-wide counters, updated by every instance.
#[derive(Debug, Default)]
pub struct Counters {
    registered: AtomicU64,
    registration_failed: AtomicU64,
    connected: AtomicI64,
    running_tasks: AtomicI64,
    reports_sent: AtomicU64,
    errors: AtomicU64,
}

/// A point-in-time copy of [`Counters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CountersSnapshot {
    /// Instances registered (and given a channel endpoint).
    pub registered: u64,
    /// Instances that gave up registering.
    pub registration_failed: u64,
    /// Channels connected now.
    pub connected: i64,
    /// Tasks reported RUNNING and not yet STOPPED.
    pub running_tasks: i64,
    /// State changes the server accepted.
    pub reports_sent: u64,
    /// Failed calls (after retries) of any kind.
    pub errors: u64,
}

impl Counters {
    /// Reads every counter.
    pub fn snapshot(&self) -> CountersSnapshot {
        CountersSnapshot {
            registered: self.registered.load(Ordering::Relaxed),
            registration_failed: self.registration_failed.load(Ordering::Relaxed),
            connected: self.connected.load(Ordering::Relaxed),
            running_tasks: self.running_tasks.load(Ordering::Relaxed),
            reports_sent: self.reports_sent.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

/// Runs `config.instances` hollow instances until `shutdown` turns true, then waits for
/// each to close its channel.
pub async fn run_fleet(
    config: FleetConfig,
    counters: Arc<Counters>,
    shutdown: watch::Receiver<bool>,
) {
    let config = Arc::new(config);
    let gate = Arc::new(Semaphore::new(config.registration_concurrency.max(1)));
    let mut set = JoinSet::new();
    for index in 0..config.instances {
        set.spawn(run_instance(
            index,
            config.clone(),
            gate.clone(),
            counters.clone(),
            shutdown.clone(),
        ));
    }
    while set.join_next().await.is_some() {}
}

/// Where an instance's channel goes, once registered.
struct Registered {
    instance_arn: String,
    cluster_arn: String,
    endpoint: String,
}

async fn run_instance(
    index: usize,
    config: Arc<FleetConfig>,
    gate: Arc<Semaphore>,
    counters: Arc<Counters>,
    mut shutdown: watch::Receiver<bool>,
) {
    let permit = tokio::select! {
        p = gate.acquire_owned() => p,
        () = shutdown_requested(&mut shutdown) => return,
    };
    let registered = register_instance(index, &config, &mut shutdown).await;
    drop(permit);
    let registered = match registered {
        Ok(r) => r,
        Err(error) => {
            if !*shutdown.borrow() {
                counters.registration_failed.fetch_add(1, Ordering::Relaxed);
                counters.errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(index, %error, "Hollow instance could not register.");
            }
            return;
        }
    };
    counters.registered.fetch_add(1, Ordering::Relaxed);
    serve(
        &config,
        config.api_for(index),
        registered,
        &counters,
        shutdown,
    )
    .await;
}

/// Runs one hollow instance registering with `request` (its own shape: e.g. an Auto
/// Scaling instance's, with an instance identity document naming its id, type and zone)
/// into `config.cluster` until `shutdown` turns true. `config.instances`, `zones`, `cpu`,
/// `memory` and `instance_type` are not used. Returns false when it never registered.
pub async fn run_registered(
    config: Arc<FleetConfig>,
    request: RegisterContainerInstanceRequest,
    counters: Arc<Counters>,
    mut shutdown: watch::Receiver<bool>,
) -> bool {
    let registered = match register_with(&request, &config.api, &config, &mut shutdown).await {
        Ok(r) => r,
        Err(error) => {
            if !*shutdown.borrow() {
                counters.registration_failed.fetch_add(1, Ordering::Relaxed);
                counters.errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(%error, "Hollow instance could not register.");
            }
            return false;
        }
    };
    counters.registered.fetch_add(1, Ordering::Relaxed);
    serve(&config, &config.api, registered, &counters, shutdown).await;
    true
}

async fn register_instance(
    index: usize,
    config: &FleetConfig,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Registered, ApiError> {
    let request = compute_registration(&config.instance_spec(index));
    register_with(&request, config.api_for(index), config, shutdown).await
}

async fn register_with(
    request: &RegisterContainerInstanceRequest,
    api: &ApiClient,
    config: &FleetConfig,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Registered, ApiError> {
    let response = with_retries(config.max_attempts, shutdown, || {
        api.register_container_instance(request)
    })
    .await?;
    let instance_arn = response
        .container_instance
        .and_then(|ci| ci.container_instance_arn)
        .ok_or_else(|| ApiError::Decode {
            operation: "RegisterContainerInstance",
            error: "the response has no containerInstanceArn".to_owned(),
        })?;
    let cluster_arn = compute_cluster_arn(&config.cluster, &instance_arn);
    let discover = DiscoverPollEndpointRequest {
        container_instance: Some(instance_arn.clone()),
        cluster: Some(cluster_arn.clone()),
    };
    let poll = with_retries(config.max_attempts, shutdown, || {
        api.discover_poll_endpoint(&discover)
    })
    .await?;
    let endpoint = poll.endpoint.ok_or_else(|| ApiError::Decode {
        operation: "DiscoverPollEndpoint",
        error: "the response has no endpoint".to_owned(),
    })?;
    Ok(Registered {
        instance_arn,
        cluster_arn,
        endpoint,
    })
}

/// The cluster's ARN: the one given, or built from the instance ARN
/// (`arn:...:container-instance/<cluster>/<id>` → `arn:...:cluster/<cluster>`).
pub fn compute_cluster_arn(cluster: &str, instance_arn: &str) -> String {
    if cluster.starts_with("arn:") {
        return cluster.to_owned();
    }
    match instance_arn.split_once(":container-instance/") {
        Some((prefix, rest)) => match rest.split_once('/') {
            Some((name, _id)) => format!("{prefix}:cluster/{name}"),
            None => cluster.to_owned(),
        },
        None => cluster.to_owned(),
    }
}

/// Holds the channel and answers payloads until shutdown.
async fn serve(
    config: &FleetConfig,
    api: &ApiClient,
    registered: Registered,
    counters: &Counters,
    mut shutdown: watch::Receiver<bool>,
) {
    // The other replicas this client knows: the channel fails over to them.
    let fallback_endpoints: Vec<String> = api
        .endpoints()
        .into_iter()
        .filter(|e| !crate::instance::same_authority(e, &registered.endpoint))
        .collect();
    let mut channel_config = ChannelConfig::new(
        registered.endpoint,
        registered.cluster_arn.clone(),
        registered.instance_arn,
        api.credentials().clone(),
        api.region().to_owned(),
    );
    channel_config.fallback_endpoints = fallback_endpoints;
    channel_config.agent_version = SIM_AGENT_VERSION.to_owned();
    channel_config.idle_timeout = config.idle_timeout;
    channel_config.idle_jitter = config.idle_timeout / 2;
    // Hollow instances read a few small frames a minute; a small buffer keeps 10,000 of
    // them within budget (it grows for a larger frame).
    channel_config.read_buffer_bytes = 1024;
    let (channel, mut deliveries) = Channel::spawn(channel_config, shutdown.clone());
    let mut state = channel.state();
    let mut connected = false;
    let mut reporter = Reporter::new(registered.cluster_arn);
    loop {
        tokio::select! {
            delivery = deliveries.recv() => {
                let Some(delivery) = delivery else { break };
                let before = reporter.running();
                process(api, config.max_attempts, &mut reporter, delivery, counters, &mut shutdown).await;
                counters.running_tasks.fetch_add(gauge_delta(before, reporter.running()), Ordering::Relaxed);
            }
            changed = state.changed() => {
                if changed.is_err() {
                    break;
                }
                let now = state.borrow_and_update().is_connected();
                if now != connected {
                    counters.connected.fetch_add(if now { 1 } else { -1 }, Ordering::Relaxed);
                    connected = now;
                }
            }
            () = shutdown_requested(&mut shutdown) => break,
        }
    }
    if connected {
        counters.connected.fetch_sub(1, Ordering::Relaxed);
    }
    counters
        .running_tasks
        .fetch_add(gauge_delta(reporter.running(), 0), Ordering::Relaxed);
    drop(deliveries);
    channel.join().await;
}

fn gauge_delta(before: usize, after: usize) -> i64 {
    i64::try_from(after).unwrap_or(i64::MAX) - i64::try_from(before).unwrap_or(i64::MAX)
}

/// Reports what one payload calls for, then acknowledges it (or refuses it when a report
/// could not be delivered, so the server sends it again).
async fn process(
    api: &ApiClient,
    max_attempts: u32,
    reporter: &mut Reporter,
    delivery: Delivery,
    counters: &Counters,
    shutdown: &mut watch::Receiver<bool>,
) {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let mut delivered_all = true;
    for task in &delivery.payload.tasks {
        let Some(report) = reporter.plan(task, now) else {
            continue;
        };
        match with_retries(max_attempts, shutdown, || {
            api.submit_task_state_change(&report.request)
        })
        .await
        {
            Ok(_) => {
                counters.reports_sent.fetch_add(1, Ordering::Relaxed);
                reporter.record(&report.arn, report.status);
            }
            Err(error) if !error.is_transient() => {
                // Retrying cannot help; remember it so duplicates do not hammer the server.
                counters.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(task = %report.arn, %error, "Task state change refused.");
                reporter.record(&report.arn, report.status);
            }
            Err(error) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(task = %report.arn, %error, "Task state change not delivered.");
                delivered_all = false;
            }
        }
    }
    if delivered_all {
        delivery.ack();
    } else {
        delivery.nack("a task state change could not be delivered");
    }
}

/// Calls `f` until it succeeds, fails terminally, `max_attempts` is reached or shutdown
/// is requested, backing off (100 ms doubling to 10 s, jittered) between attempts.
pub async fn with_retries<T, F, Fut>(
    max_attempts: u32,
    shutdown: &mut watch::Receiver<bool>,
    mut f: F,
) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let mut delay = Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if !e.is_transient() || attempt >= max_attempts || *shutdown.borrow() => {
                return Err(e)
            }
            Err(error) => {
                tracing::debug!(attempt, %error, "Retrying after a transient error.");
                let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX).max(2);
                let sleep =
                    Duration::from_millis(rand::thread_rng().gen_range(millis / 2..=millis));
                tokio::select! {
                    () = tokio::time::sleep(sleep) => {}
                    () = shutdown_requested(shutdown) => return Err(error),
                }
                delay = (delay * 2).min(Duration::from_secs(10));
                attempt += 1;
            }
        }
    }
}

async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}
