//! The task metadata endpoint, version 4: an HTTP server the agent binds on the Docker
//! bridge gateway (what bridge-mode containers reach the host by) and on 127.0.0.1 (for
//! host-mode containers), answering `GET /v4/<token>`, `/v4/<token>/task`,
//! `/v4/<token>/stats` and `/v4/<token>/task/stats` with AWS's documented shapes
//! ([`types`]). Every container gets `ECS_CONTAINER_METADATA_URI_V4` with its own
//! unguessable token (a UUID, saved in the state file so it survives restarts).
//!
//! Task actors stay the only writers of their task: after each step an actor publishes a
//! [`TaskView`] snapshot into the [`MetadataIndex`], and the server only reads snapshots.
//! The index's lock is never held across an await.
//!
//! The same server answers the container credentials endpoint (`GET /v2/credentials/<id>`,
//! legacy `/v1/credentials?id=<id>`) from [`TaskCredentials`], knowing each caller's
//! address; containers reach it at `169.254.170.2:80` through the agent's NAT rule.
//!
//! And the agent API's task scale-in protection endpoint, `GET`/`PUT
//! /api/<token>/task-protection/v1/state` ([`protection`]): containers get
//! `ECS_AGENT_URI` = `<base>/api/<token>` beside their metadata URI.

pub mod protection;
pub mod types;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::ApiClient;
use crate::runtime::Runtime;
use crate::task_credentials::{self, TaskCredentials};
pub use types::{AwsvpcView, ContainerView, PortView, TaskView};

/// The port ECS's agent serves its metadata and introspection on.
pub const DEFAULT_PORT: u16 = 51679;
/// The environment variable that carries a container's endpoint.
pub const ENV_V4: &str = "ECS_CONTAINER_METADATA_URI_V4";
/// The environment variable that carries a container's agent API base (task protection).
pub const ENV_AGENT_URI: &str = "ECS_AGENT_URI";

/// Published task snapshots, and which (task, container) each token belongs to.
#[derive(Debug, Default)]
pub struct MetadataIndex {
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    tasks: HashMap<String, TaskView>,
    tokens: HashMap<String, (String, String)>,
}

impl MetadataIndex {
    /// Replaces the snapshot of `view.arn` (and registers its tokens).
    pub fn publish(&self, view: TaskView) {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        for (container, token) in &view.tokens {
            inner
                .tokens
                .insert(token.clone(), (view.arn.clone(), container.clone()));
        }
        inner.tasks.insert(view.arn.clone(), view);
    }

    /// Forgets a task (after cleanup).
    pub fn remove(&self, arn: &str) {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        if let Some(view) = inner.tasks.remove(arn) {
            for token in view.tokens.values() {
                inner.tokens.remove(token);
            }
        }
    }

    /// Snapshots of the tasks whose known status is RUNNING.
    pub fn running(&self) -> Vec<TaskView> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner
            .tasks
            .values()
            .filter(|t| t.known_status == "RUNNING")
            .cloned()
            .collect()
    }

    /// The task snapshot and container name a token belongs to.
    pub fn lookup(&self, token: &str) -> Option<(TaskView, String)> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let (arn, container) = inner.tokens.get(token)?;
        Some((inner.tasks.get(arn)?.clone(), container.clone()))
    }
}

/// Where containers reach the endpoint.
#[derive(Clone, Debug)]
pub struct MetadataEndpoint {
    /// The snapshots served.
    pub index: Arc<MetadataIndex>,
    /// `http://<bridge gateway>:<port>` (bridge and none network modes).
    pub bridge_base: String,
    /// `http://127.0.0.1:<port>` (host network mode).
    pub host_base: String,
    /// The task role credentials it serves.
    pub credentials: Arc<TaskCredentials>,
    /// Whether containers reach it at `169.254.170.2:80` (the agent's NAT rule is in
    /// place); otherwise they are given its full URI.
    pub link_local: bool,
}

impl MetadataEndpoint {
    /// Where a container in `network_mode` reaches this server: loopback for host mode,
    /// the bridge gateway otherwise.
    fn base_for(&self, network_mode: &str) -> &str {
        if network_mode == "host" {
            &self.host_base
        } else {
            &self.bridge_base
        }
    }

    /// The `ECS_CONTAINER_METADATA_URI_V4` value for a container in `network_mode`.
    pub fn compute_uri(&self, network_mode: &str, token: &str) -> String {
        format!("{}/v4/{token}", self.base_for(network_mode))
    }

    /// The `ECS_AGENT_URI` value for a container in `network_mode`.
    pub fn compute_agent_uri(&self, network_mode: &str, token: &str) -> String {
        format!("{}/api/{token}", self.base_for(network_mode))
    }

    /// The variable and value that lead a container in `network_mode` to the
    /// credentials `id`: the relative URI behind `169.254.170.2` when the NAT rule is in
    /// place, else the full URI of this server.
    pub fn compute_credentials_env(&self, network_mode: &str, id: &str) -> (String, String) {
        let path = task_credentials::compute_path(id);
        if self.link_local {
            return (task_credentials::ENV_RELATIVE_URI.to_owned(), path);
        }
        (
            task_credentials::ENV_FULL_URI.to_owned(),
            format!("{}{path}", self.base_for(network_mode)),
        )
    }

    /// The address behind the bridge URL (`None` without a Docker bridge).
    pub fn bridge_addr(&self) -> Option<SocketAddr> {
        self.bridge_base.strip_prefix("http://")?.parse().ok()
    }

    /// The loopback address it listens on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.host_base.strip_prefix("http://")?.parse().ok()
    }
}

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// No address could be bound.
    #[error("could not bind the task metadata endpoint on {addr}: {error}")]
    Bind {
        /// The address tried last.
        addr: SocketAddr,
        /// The cause.
        error: std::io::Error,
    },
}

struct AppState {
    index: Arc<MetadataIndex>,
    runtime: Arc<dyn Runtime>,
    credentials: Arc<TaskCredentials>,
    /// The server calls the task protection endpoint makes (none: it answers 503).
    protection: Option<protection::ProtectionCalls>,
}

async fn bind_preferring(ip: IpAddr, port: u16) -> Result<TcpListener, MetadataError> {
    let preferred = SocketAddr::new(ip, port);
    match TcpListener::bind(preferred).await {
        Ok(l) => Ok(l),
        Err(error) if port != 0 => {
            tracing::info!(addr = %preferred, %error, "Metadata port taken; using an ephemeral port.");
            let any = SocketAddr::new(ip, 0);
            TcpListener::bind(any)
                .await
                .map_err(|error| MetadataError::Bind { addr: any, error })
        }
        Err(error) => Err(MetadataError::Bind {
            addr: preferred,
            error,
        }),
    }
}

/// Binds the endpoint on `gateway` (if any) and 127.0.0.1, preferring `port` (then the
/// gateway's port on 127.0.0.1), and serves until `shutdown` turns true. Task protection
/// calls go to the server through `api` (re-signed with each task's role).
pub async fn serve(
    runtime: Arc<dyn Runtime>,
    api: Option<ApiClient>,
    gateway: Option<Ipv4Addr>,
    port: u16,
    shutdown: watch::Receiver<bool>,
) -> Result<MetadataEndpoint, MetadataError> {
    let index = Arc::new(MetadataIndex::default());
    let credentials = TaskCredentials::global();
    let state = Arc::new(AppState {
        index: index.clone(),
        runtime,
        credentials: credentials.clone(),
        protection: api.map(|api| protection::ProtectionCalls { api }),
    });
    let mut listeners = Vec::new();
    let mut local_port = port;
    let mut bridge_base = None;
    if let Some(gw) = gateway {
        let l = bind_preferring(IpAddr::V4(gw), port).await?;
        let addr = l.local_addr().map_err(|error| MetadataError::Bind {
            addr: SocketAddr::new(IpAddr::V4(gw), port),
            error,
        })?;
        local_port = addr.port();
        bridge_base = Some(format!("http://{addr}"));
        listeners.push(l);
    }
    let local = bind_preferring(IpAddr::V4(Ipv4Addr::LOCALHOST), local_port).await?;
    let local_addr = local.local_addr().map_err(|error| MetadataError::Bind {
        addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), local_port),
        error,
    })?;
    let host_base = format!("http://{local_addr}");
    listeners.push(local);
    let router = compute_router(state);
    for listener in listeners {
        let addr = listener.local_addr().ok();
        let mut stop = shutdown.clone();
        let app = router.clone();
        tokio::spawn(async move {
            let graceful = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            let app = app.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(error) = axum::serve(listener, app)
                .with_graceful_shutdown(graceful)
                .await
            {
                tracing::error!(%error, "The task metadata endpoint stopped.");
            }
        });
        tracing::info!(addr = ?addr, "Task metadata endpoint listening.");
    }
    Ok(MetadataEndpoint {
        index,
        bridge_base: bridge_base.unwrap_or_else(|| host_base.clone()),
        host_base,
        credentials,
        link_local: false,
    })
}

fn compute_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v4/{token}", get(container_metadata))
        .route("/v4/{token}/task", get(task_metadata))
        .route("/v4/{token}/stats", get(container_stats))
        .route("/v4/{token}/task/stats", get(task_stats))
        .route("/v2/credentials", get(credentials_without_id))
        .route("/v2/credentials/", get(credentials_without_id))
        .route("/v2/credentials/{id}", get(credentials_v2))
        .route("/v1/credentials", get(credentials_v1))
        .route(
            "/api/{token}/task-protection/v1/state",
            get(protection_state).put(put_protection_state),
        )
        .with_state(state)
}

fn answer_credentials(state: &AppState, id: Option<&str>, peer: SocketAddr) -> Response {
    let now = std::time::SystemTime::now();
    match state.credentials.compute_answer(id, peer.ip(), now) {
        Ok(body) => json(&body),
        Err(refusal) => {
            let (status, body) = refusal.compute_response();
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            match serde_json::to_vec(&body) {
                Ok(b) => (status, [(header::CONTENT_TYPE, "application/json")], b).into_response(),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
            }
        }
    }
}

async fn credentials_v2(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> Response {
    answer_credentials(&state, Some(&id), peer)
}

async fn credentials_without_id(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    answer_credentials(&state, None, peer)
}

async fn credentials_v1(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    answer_credentials(&state, query.get("id").map(String::as_str), peer)
}

fn json<T: serde::Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "message": message }).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn unknown_token() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "Unable to generate metadata: unknown container token.",
    )
}

async fn container_metadata(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
) -> Response {
    let Some((task, name)) = state.index.lookup(&token) else {
        return unknown_token();
    };
    match task.containers.iter().find(|c| c.name == name) {
        Some(c) => json(&types::compute_container_metadata(c)),
        None => unknown_token(),
    }
}

async fn task_metadata(State(state): State<Arc<AppState>>, Path(token): Path<String>) -> Response {
    match state.index.lookup(&token) {
        Some((task, _)) => json(&types::compute_task_metadata(&task)),
        None => unknown_token(),
    }
}

async fn container_stats(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
) -> Response {
    let Some((task, name)) = state.index.lookup(&token) else {
        return unknown_token();
    };
    let Some(id) = task
        .containers
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| c.docker_id.clone())
    else {
        return error(
            StatusCode::NOT_FOUND,
            "The container has not been created yet.",
        );
    };
    match state.runtime.stats(&id).await {
        Ok(stats) => json(&stats),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn task_stats(State(state): State<Arc<AppState>>, Path(token): Path<String>) -> Response {
    let Some((task, _)) = state.index.lookup(&token) else {
        return unknown_token();
    };
    let mut out = serde_json::Map::new();
    for id in task.containers.iter().filter_map(|c| c.docker_id.clone()) {
        let stats = state
            .runtime
            .stats(&id)
            .await
            .unwrap_or(serde_json::Value::Null);
        out.insert(id, stats);
    }
    json(&out)
}

async fn protection_state(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
) -> Response {
    answer_protection(&state, &token, None).await
}

async fn put_protection_state(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    answer_protection(&state, &token, Some(body)).await
}

/// Answers the task protection endpoint for the container holding `token`; `body` is a
/// `PUT`'s.
async fn answer_protection(state: &AppState, token: &str, body: Option<Bytes>) -> Response {
    let Some((task, _)) = state.index.lookup(token) else {
        return unknown_token();
    };
    let (status, answer) = match (&state.protection, body) {
        (None, _) => (
            503,
            protection::StateResponse {
                error: Some(protection::ErrorBody {
                    arn: task.arn.clone(),
                    code: "ServerException".into(),
                    message: "This agent has no connection to the server for task protection."
                        .into(),
                }),
                ..Default::default()
            },
        ),
        (Some(_), Some(b)) if b.len() > protection::MAX_BODY_BYTES => (
            413,
            protection::StateResponse {
                error: Some(protection::ErrorBody {
                    arn: task.arn.clone(),
                    code: "InvalidParameterException".into(),
                    message: format!(
                        "The request body is larger than {} bytes.",
                        protection::MAX_BODY_BYTES
                    ),
                }),
                ..Default::default()
            },
        ),
        (Some(calls), Some(b)) => match protection::parse_put_state(&task.arn, &b) {
            Ok(put) => {
                calls
                    .answer(&state.credentials, &task.cluster, &task.arn, Some(put))
                    .await
            }
            Err(refusal) => *refusal,
        },
        (Some(calls), None) => {
            calls
                .answer(&state.credentials, &task.cluster, &task.arn, None)
                .await
        }
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match serde_json::to_vec(&answer) {
        Ok(b) => (status, [(header::CONTENT_TYPE, "application/json")], b).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}
