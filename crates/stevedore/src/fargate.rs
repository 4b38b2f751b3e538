//! The Fargate provisioner: hidden capacity for every cluster that launches Fargate
//! tasks. Each such cluster gets one in-process agent of this server (the same agent as
//! `stevedore up`'s) against the local Docker, registered with a secret marker attribute
//! so the ECS API hides its container instance from the user.
//!
//! Capacity starts lazily, on a cluster's first Fargate launch (that launch waits for the
//! agent to register, well under a second); at server start the clusters that already
//! have hidden capacity get their agent back, so running Fargate tasks are adopted. The
//! sandbox is gVisor (`runsc`), detected once at start-up; a host without it refuses
//! Fargate launches (there is no silent fallback) unless the server was started with
//! `--fargate-sandbox runc`.
//!
//! This module also serves the admin routes of Fargate: the usage report and spot
//! interruptions, SigV4-signed with the admin key like every API call.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::agent::instance::{compute_machine_resources, connect_docker, InstanceConfig};
use ::agent::{ApiClient, ApiConfig, Credentials};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, Uri};
use tokio::sync::watch;

use crate::http::App;

/// How the Fargate sandbox is chosen (`STEVEDORE_FARGATE_SANDBOX`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum SandboxChoice {
    /// gVisor (`runsc`) when Docker offers it; without it Fargate launches are refused.
    #[default]
    Auto,
    /// gVisor (`runsc`); the same as `auto`, spelled out.
    Runsc,
    /// Plain runc, no sandbox: Fargate tasks share the host kernel like EC2 tasks.
    Runc,
}

/// The flag that allows Fargate tasks without gVisor, as logs and errors name it.
pub const RUNC_FLAG: &str = "--fargate-sandbox runc";

/// The sandbox Fargate tasks run in, or why they cannot run: the choice, and the runtimes
/// Docker offers (`None`: Docker did not answer at start-up).
fn choose_sandbox(
    choice: SandboxChoice,
    runtimes: Option<&[String]>,
) -> Result<&'static str, String> {
    let has_runsc = runtimes.is_some_and(|r| r.iter().any(|r| r == "runsc"));
    let why = if runtimes.is_some() {
        "Docker offers no runsc runtime"
    } else {
        "Docker did not answer when the server started"
    };
    match (choice, has_runsc) {
        (SandboxChoice::Runc, _) => Ok("runc"),
        (SandboxChoice::Auto | SandboxChoice::Runsc, true) => Ok("runsc"),
        (SandboxChoice::Auto | SandboxChoice::Runsc, false) => Err(format!(
            "this Stevedore server has no gVisor sandbox for Fargate tasks ({why}). Install \
             gVisor and register runsc with Docker, or restart the server with {RUNC_FLAG} to \
             run Fargate tasks without a sandbox."
        )),
    }
}

/// Hidden capacity, one in-process agent per cluster.
pub struct Provisioner {
    marker: String,
    sandbox: String,
    /// Why Fargate launches are refused (no sandbox and runc not allowed).
    unavailable: Option<String>,
    endpoint: String,
    region: String,
    credentials: Credentials,
    state_root: PathBuf,
    /// Clusters whose agent runs (or is starting).
    running: Mutex<HashSet<String>>,
    /// Keeps the agents' shutdown channel open for the life of the server.
    shutdown: watch::Receiver<bool>,
    keep: watch::Sender<bool>,
    /// Itself, for the agents' tasks (`ensure` only gets `&self`).
    me: std::sync::Weak<Provisioner>,
}

/// How many times the machine's CPU units hidden capacity registers: Fargate sizes are
/// NanoCpus limits here, not slices of a VM, so the tasks of a small machine may sum
/// to more vCPUs than it has (as on any overcommitted host).
const CPU_OVERCOMMIT: i32 = 4;

impl Provisioner {
    /// Detects the sandbox and prepares to start agents that call `endpoint` with the
    /// admin key.
    pub async fn detect(
        endpoint: String,
        region: String,
        key: &crate::credentials::AccessKey,
        state_root: PathBuf,
        choice: SandboxChoice,
    ) -> Arc<Self> {
        let runtimes = match connect_docker().await {
            Ok(docker) => match docker.runtimes().await {
                Ok(runtimes) => Some(runtimes),
                Err(error) => {
                    tracing::warn!(%error, "Docker did not list its runtimes.");
                    None
                }
            },
            Err(error) => {
                tracing::warn!(%error, "Docker does not answer: Fargate tasks cannot run until it does.");
                None
            }
        };
        let chosen = choose_sandbox(choice, runtimes.as_deref());
        match &chosen {
            Ok("runsc") => tracing::info!(
                runtimes = ?runtimes,
                "Fargate tasks run sandboxed in gVisor (Docker runtime runsc)."
            ),
            Ok(_) => tracing::warn!(
                runtimes = ?runtimes,
                "Fargate tasks run WITHOUT a sandbox (runc), as {RUNC_FLAG} asks: they share the host kernel."
            ),
            Err(reason) => tracing::warn!(
                runtimes = ?runtimes,
                "Fargate launches will be refused: {reason} gVisor: apt-get install runsc, then add it to /etc/docker/daemon.json with runtimeArgs [\"--network=host\"]."
            ),
        }
        let (sandbox, unavailable) = match chosen {
            Ok(sandbox) => (sandbox, None),
            Err(reason) => ("runsc", Some(reason)),
        };
        let (keep, shutdown) = watch::channel(false);
        Arc::new_cyclic(|me| Self {
            me: me.clone(),
            marker: uuid::Uuid::new_v4().simple().to_string(),
            sandbox: sandbox.to_owned(),
            unavailable,
            endpoint,
            region,
            credentials: Credentials::new(&key.access_key_id, &key.secret_access_key, None),
            state_root,
            running: Mutex::default(),
            shutdown,
            keep,
        })
    }

    /// The hidden capacity of another region: the same sandbox (or the same reason to
    /// refuse Fargate), marker and key, agents signing for `region` and keeping their
    /// state under `state_root`.
    pub fn for_region(&self, region: &str, state_root: PathBuf) -> Arc<Self> {
        self.for_scope(region, state_root, self.credentials.clone())
    }

    /// The hidden capacity of another account (in `region`): agents sign with that
    /// account's root `key`, so their clusters and instances are the account's own.
    pub fn for_account(
        &self,
        region: &str,
        state_root: PathBuf,
        key: &crate::credentials::AccessKey,
    ) -> Arc<Self> {
        let credentials = Credentials::new(&key.access_key_id, &key.secret_access_key, None);
        self.for_scope(region, state_root, credentials)
    }

    fn for_scope(&self, region: &str, state_root: PathBuf, credentials: Credentials) -> Arc<Self> {
        let (keep, shutdown) = watch::channel(false);
        Arc::new_cyclic(|me| Self {
            me: me.clone(),
            marker: self.marker.clone(),
            sandbox: self.sandbox.clone(),
            unavailable: self.unavailable.clone(),
            endpoint: self.endpoint.clone(),
            region: region.to_owned(),
            credentials,
            state_root,
            running: Mutex::default(),
            shutdown,
            keep,
        })
    }

    /// Why Fargate launches are refused on this server, if they are.
    pub fn unavailable(&self) -> Option<&str> {
        self.unavailable.as_deref()
    }

    /// Stops every hidden agent cleanly (their containers keep running; the agents take
    /// their NAT rules away) and waits up to `within` for them to finish.
    pub async fn stop(&self, within: Duration) {
        let _ = self.keep.send(true);
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            let idle = self
                .running
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .is_empty();
            if idle {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tracing::warn!("Fargate capacity did not stop in time.");
    }

    fn forget(&self, cluster: &str) {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(cluster);
    }

    async fn run_agent(self: Arc<Self>, cluster: String) {
        let result = async {
            let runtime = connect_docker().await.map_err(|e| e.to_string())?;
            let api = ApiClient::new(ApiConfig::new(
                &self.endpoint,
                &self.region,
                self.credentials.clone(),
            ))
            .map_err(|e| e.to_string())?;
            let (cpu, _) = compute_machine_resources();
            let config = InstanceConfig {
                availability_zone: ::agent::hollow::compute_availability_zone(&self.region, "a"),
                api,
                cluster: cluster.clone(),
                // One state directory per cluster: a restart adopts the cluster's tasks.
                state_dir: self.state_root.join(sanitize(&cluster)),
                attributes: vec![(ecs::MARKER_ATTRIBUTE.to_owned(), self.marker.clone())],
                reserved_memory: 0,
                reserved_ports: Vec::new(),
                cleanup_wait: Duration::from_secs(3600),
                metadata_port: ::agent::metadata::DEFAULT_PORT,
                pause_image: None,
                sandbox_runtime: (self.sandbox == "runsc").then(|| "runsc".to_owned()),
                cpu_units: Some(cpu.saturating_mul(CPU_OVERCOMMIT)),
                // Fargate tasks are awsvpc: balancers reach them as ip targets.
                host_address: None,
                metrics_interval: ::agent::usage::DEFAULT_INTERVAL,
                declared: None,
            };
            tracing::info!(%cluster, sandbox = %self.sandbox, "Fargate capacity starting.");
            ::agent::instance::run(config, runtime, self.shutdown.clone())
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        if let Err(error) = result {
            tracing::error!(%cluster, %error, "Fargate capacity stopped; the next Fargate launch starts it again.");
        }
        self.forget(&cluster);
    }
}

/// A cluster name as a directory name (names are letters, digits, `-` and `_` already;
/// this only guards against surprises).
fn sanitize(cluster: &str) -> String {
    cluster
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl ecs::FargateCapacity for Provisioner {
    fn marker(&self) -> &str {
        &self.marker
    }

    fn sandbox(&self) -> &str {
        &self.sandbox
    }

    fn unavailable(&self) -> Option<&str> {
        self.unavailable.as_deref()
    }

    fn ensure(&self, cluster: &str) {
        let fresh = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(cluster.to_owned());
        if !fresh {
            return;
        }
        let Some(me) = self.me.upgrade() else { return };
        tokio::spawn(me.run_agent(cluster.to_owned()));
    }
}

/// Gives back their agent to the clusters that have hidden capacity (a restarted server
/// adopts the Fargate tasks still running). Not on a server that refuses Fargate: its
/// agents would have no sandbox to run tasks in.
pub async fn resume(ecs: ecs::Ecs, provisioner: Arc<Provisioner>) {
    if let Some(reason) = provisioner.unavailable() {
        tracing::warn!("Fargate capacity is not resumed: {reason}");
        return;
    }
    match ecs.fargate_clusters().await {
        Ok(clusters) => {
            for c in clusters {
                ecs::FargateCapacity::ensure(provisioner.as_ref(), &c);
            }
        }
        Err(error) => tracing::warn!(%error, "Could not list the clusters with Fargate capacity."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_runsc_only_the_runc_flag_allows_fargate() {
        let with = ["runc".to_owned(), "runsc".to_owned()];
        let without = ["runc".to_owned()];
        assert_eq!(
            choose_sandbox(SandboxChoice::Auto, Some(&with)),
            Ok("runsc")
        );
        assert_eq!(
            choose_sandbox(SandboxChoice::Runsc, Some(&with)),
            Ok("runsc")
        );
        assert_eq!(choose_sandbox(SandboxChoice::Runc, Some(&with)), Ok("runc"));
        assert_eq!(
            choose_sandbox(SandboxChoice::Runc, Some(&without)),
            Ok("runc")
        );
        assert_eq!(choose_sandbox(SandboxChoice::Runc, None), Ok("runc"));
        for choice in [SandboxChoice::Auto, SandboxChoice::Runsc] {
            let reason = choose_sandbox(choice, Some(&without)).expect_err("refused");
            assert!(reason.contains(RUNC_FLAG), "{reason}");
            assert!(reason.contains("no runsc runtime"), "{reason}");
            let reason = choose_sandbox(choice, None).expect_err("refused");
            assert!(reason.contains("did not answer"), "{reason}");
        }
    }
}

/// `?cluster=` of the admin routes.
#[derive(serde::Deserialize, Default)]
pub struct AdminQuery {
    cluster: Option<String>,
}

/// The body of a spot interruption: which tasks (none: every spot task of the cluster,
/// up to `count`).
#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Interruption {
    cluster: String,
    #[serde(default)]
    tasks: Vec<String>,
    count: Option<usize>,
}

fn json_response(status: http::StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [(http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn admin_error(e: &ecs::EcsError) -> Response {
    crate::http::aws_error(&e.to_aws())
}

/// `GET /stevedore/fargate/usage[?cluster=]`: vCPU-seconds and GB-seconds per Fargate
/// task, and the totals.
pub async fn usage(
    State(app): State<Arc<App>>,
    Query(q): Query<AdminQuery>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let region =
        match crate::http::authenticate_request(&app, &method, &uri, &headers, b"", None).await {
            Ok((_, region)) => region,
            Err(e) => return crate::http::aws_error(&e),
        };
    match region.ecs.fargate_usage(q.cluster.as_deref()).await {
        Ok(tasks) => {
            let vcpu: f64 = tasks.iter().map(|t| t.vcpu_seconds).sum();
            let gb: f64 = tasks.iter().map(|t| t.gb_seconds).sum();
            json_response(
                http::StatusCode::OK,
                &serde_json::json!({"tasks": tasks, "totalVcpuSeconds": vcpu, "totalGbSeconds": gb}),
            )
        }
        Err(e) => admin_error(&e),
    }
}

/// `POST /stevedore/fargate/spot-interruptions` with `{"cluster", "tasks"?, "count"?}`:
/// reclaims FARGATE_SPOT capacity (SIGTERM, the task's stopTimeout, stopCode
/// SpotInterruption).
pub async fn interrupt(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (req, region): (Interruption, _) = match crate::http::signed_json(
        &app,
        &method,
        &uri,
        &headers,
        &body,
        r#"{"cluster": ..., "tasks": [...], "count": n}"#,
    )
    .await
    {
        Ok(r) => r,
        Err(response) => return *response,
    };
    match region
        .ecs
        .interrupt_spot(&req.cluster, &req.tasks, req.count)
        .await
    {
        Ok(arns) => json_response(
            http::StatusCode::OK,
            &serde_json::json!({"interrupted": arns}),
        ),
        Err(e) => admin_error(&e),
    }
}
