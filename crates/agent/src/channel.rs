//! The agent communication channel client: one SigV4-signed WebSocket to the control
//! plane's `/ws`, carrying `model::acs::Frame`s as JSON text messages.
//!
//! It owns the connection's whole life: signing the upgrade, answering heartbeats,
//! declaring the connection dead after a silence, reconnecting with capped exponential
//! backoff and jitter, and publishing whether it is connected (a `watch`). Payloads go to
//! the owner as [`Delivery`]s; the owner acknowledges each one *after* processing it, so
//! an `AckRequest` means "processed". Delivery is at least once: after a reconnect the
//! server re-sends what it has not seen acknowledged, and acks for a session that has
//! ended are dropped rather than sent on the next one.

use std::time::{Duration, SystemTime};

use futures_util::{SinkExt, StreamExt};
use model::acs::{
    AckRequest, Frame, HealthMetadata, HeartbeatAckRequest, IAMRoleCredentialsAckRequest,
    NackRequest, PayloadMessage, PublishHealthRequest,
};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rand::Rng;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::credentials::Credentials;
use crate::health::HealthBoard;
use crate::sign::compute_signature_headers;
use std::sync::Arc;

/// The channel protocol version sent in the query.
const PROTOCOL_VERSION: &str = "2";

/// Characters left unescaped in query values (RFC 3986 unreserved).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Everything needed to open and keep one instance's channel.
#[derive(Clone, Debug)]
pub struct ChannelConfig {
    /// The `endpoint` from `DiscoverPollEndpoint`, e.g. `http://127.0.0.1:4747/`.
    pub endpoint: String,
    /// Other replicas' endpoints: when a connect fails (the replica died), the next
    /// attempt goes to the next endpoint, round the list, so the channel fails over.
    /// Every replica serves the channel from the shared store, and delivery is at least
    /// once, so a task pending on the dead replica is sent again by the next.
    pub fallback_endpoints: Vec<String>,
    /// The instance's cluster ARN.
    pub cluster_arn: String,
    /// The instance's ARN.
    pub container_instance_arn: String,
    /// `agentVersion` query value.
    pub agent_version: String,
    /// `agentHash` query value.
    pub agent_hash: String,
    /// `dockerVersion` query value.
    pub docker_version: String,
    /// Signing credentials.
    pub credentials: Credentials,
    /// Signing region.
    pub region: String,
    /// Time allowed for TCP connect plus the upgrade handshake, and for each send.
    pub connect_timeout: Duration,
    /// A connection with no inbound frame for this long (plus jitter) is dead.
    pub idle_timeout: Duration,
    /// Upper bound of the random extra added to `idle_timeout` per connection.
    pub idle_jitter: Duration,
    /// First reconnect delay.
    pub backoff_min: Duration,
    /// Largest reconnect delay.
    pub backoff_max: Duration,
    /// The WebSocket read buffer per connection (small keeps many channels cheap).
    pub read_buffer_bytes: usize,
    /// Container health to publish (`PublishHealthRequest`): what changed as it changes,
    /// and everything again on each new session.
    pub health: Option<Arc<HealthBoard>>,
    /// Container usage to publish (`PublishMetricsRequest`): the latest report, when the
    /// sampler puts one.
    pub usage: Option<Arc<crate::usage::UsageBoard>>,
    /// Where refreshed task role credentials (`IAMRoleCredentialsMessage`) go; without
    /// it they are acknowledged and dropped.
    pub task_credentials: Option<Arc<crate::task_credentials::TaskCredentials>>,
}

impl ChannelConfig {
    /// A configuration with the defaults: 60 s idle timeout plus up to 30 s jitter,
    /// backoff from 250 ms to 30 s, 10 s connect timeout, 4 KiB read buffer.
    pub fn new(
        endpoint: impl Into<String>,
        cluster_arn: impl Into<String>,
        container_instance_arn: impl Into<String>,
        credentials: Credentials,
        region: impl Into<String>,
    ) -> Self {
        Self {
            endpoint: endpoint.into(),
            fallback_endpoints: Vec::new(),
            cluster_arn: cluster_arn.into(),
            container_instance_arn: container_instance_arn.into(),
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            agent_hash: "stevedore".to_owned(),
            docker_version: "none".to_owned(),
            credentials,
            region: region.into(),
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            idle_jitter: Duration::from_secs(30),
            backoff_min: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            read_buffer_bytes: 4096,
            health: None,
            usage: None,
            task_credentials: None,
        }
    }
}

/// Whether the channel is up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelState {
    /// Opening a connection (first time or after a loss).
    Connecting,
    /// Upgraded and reading frames.
    Connected,
    /// Stopped for good (shutdown, or the owner dropped its receiver).
    Closed,
}

impl ChannelState {
    /// Whether frames can flow now.
    pub fn is_connected(self) -> bool {
        self == Self::Connected
    }
}

/// A payload to process, and the means to acknowledge it afterwards.
#[derive(Debug)]
pub struct Delivery {
    /// The payload as the server sent it.
    pub payload: Box<PayloadMessage>,
    reply: Reply,
}

#[derive(Debug)]
struct Reply {
    outbound: mpsc::UnboundedSender<Outbound>,
    session: u64,
}

/// What the owner asks the connection to send.
#[derive(Debug)]
enum Outbound {
    Ack {
        session: u64,
        message_id: String,
    },
    Nack {
        session: u64,
        message_id: String,
        reason: String,
    },
}

impl Delivery {
    /// Acknowledges the payload as processed. Dropped silently when the session it came
    /// on has ended (the server re-sends it on the next one). Never blocks: the ack queue
    /// is unbounded (it holds at most one entry per delivery), so a slow connection
    /// cannot deadlock with an owner that is acknowledging.
    pub fn ack(self) {
        let message_id = self.payload.message_id.clone();
        let _ = self.reply.outbound.send(Outbound::Ack {
            session: self.reply.session,
            message_id,
        });
    }

    /// Refuses the payload with a reason (same delivery rules as [`Delivery::ack`]).
    pub fn nack(self, reason: impl Into<String>) {
        let message_id = self.payload.message_id.clone();
        let _ = self.reply.outbound.send(Outbound::Nack {
            session: self.reply.session,
            message_id,
            reason: reason.into(),
        });
    }
}

/// A running channel: its state, and the task that drives it.
#[derive(Debug)]
pub struct Channel {
    state: watch::Receiver<ChannelState>,
    task: JoinHandle<()>,
}

impl Channel {
    /// Starts the channel. Payloads arrive on the returned receiver; the channel runs
    /// until `shutdown` turns true or the receiver is dropped.
    pub fn spawn(
        config: ChannelConfig,
        shutdown: watch::Receiver<bool>,
    ) -> (Self, mpsc::Receiver<Delivery>) {
        let (deliveries_tx, deliveries_rx) = mpsc::channel(4);
        let (state_tx, state) = watch::channel(ChannelState::Connecting);
        let task = tokio::spawn(run(config, deliveries_tx, state_tx, shutdown));
        (Self { state, task }, deliveries_rx)
    }

    /// Watches the connection state.
    pub fn state(&self) -> watch::Receiver<ChannelState> {
        self.state.clone()
    }

    /// Whether the channel is connected now.
    pub fn is_connected(&self) -> bool {
        self.state.borrow().is_connected()
    }

    /// Waits for the channel's task to end (after shutdown).
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

/// How a session ended.
enum SessionEnd {
    /// Lost or closed by the server: reconnect.
    Reconnect { healthy: bool },
    /// Shutdown or owner gone: stop.
    Stop,
}

/// The connection loop: connect, run a session, back off, repeat.
async fn run(
    mut config: ChannelConfig,
    deliveries: mpsc::Sender<Delivery>,
    state: watch::Sender<ChannelState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let endpoints: Vec<String> = std::iter::once(config.endpoint.clone())
        .chain(config.fallback_endpoints.iter().cloned())
        .collect();
    let mut which = 0;
    let (outbound_tx, mut outbound_rx) = mpsc::unbounded_channel();
    let mut backoff = config.backoff_min;
    let mut session: u64 = 0;
    let mut failures: u32 = 0;
    loop {
        if *shutdown.borrow() {
            break;
        }
        state.send_replace(ChannelState::Connecting);
        let connected = tokio::select! {
            r = connect(&config) => r,
            () = shutdown_requested(&mut shutdown) => break,
        };
        match connected {
            Ok(ws) => {
                session += 1;
                failures = 0;
                state.send_replace(ChannelState::Connected);
                tracing::debug!(instance = %config.container_instance_arn, session, "Channel connected.");
                let ctx = Session {
                    config: &config,
                    id: session,
                    deliveries: &deliveries,
                    outbound_tx: &outbound_tx,
                };
                match ctx.run(ws, &mut outbound_rx, &mut shutdown).await {
                    SessionEnd::Stop => break,
                    SessionEnd::Reconnect { healthy } => {
                        if healthy {
                            backoff = config.backoff_min;
                        }
                    }
                }
            }
            Err(error) => {
                // Warn once per outage: thousands of instances retrying would flood the log.
                failures += 1;
                if failures == 1 {
                    tracing::warn!(instance = %config.container_instance_arn, %error, "Channel connect failed; retrying.");
                } else {
                    tracing::debug!(instance = %config.container_instance_arn, %error, failures, "Channel connect failed again.");
                }
                // The next attempt goes to the next replica, if there is another.
                if endpoints.len() > 1 {
                    which = (which + 1) % endpoints.len();
                    if let Some(next) = endpoints.get(which) {
                        tracing::info!(instance = %config.container_instance_arn, endpoint = %next, "Channel fails over to another replica.");
                        config.endpoint.clone_from(next);
                    }
                }
            }
        }
        state.send_replace(ChannelState::Connecting);
        let delay = jittered(backoff);
        backoff = (backoff * 2).min(config.backoff_max);
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown_requested(&mut shutdown) => break,
        }
    }
    state.send_replace(ChannelState::Closed);
}

/// Resolves with true when the health board moved; never without a board.
async fn health_changed(rx: &mut Option<watch::Receiver<u64>>) -> bool {
    match rx {
        Some(rx) => rx.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}

/// Resolves once shutdown is requested (or its sender is gone, which means the same).
async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// Half to full of `d`, so many instances do not reconnect in lockstep.
fn jittered(d: Duration) -> Duration {
    let millis = u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(2);
    Duration::from_millis(rand::thread_rng().gen_range(millis / 2..=millis))
}

/// One connected session's borrowed context.
struct Session<'a> {
    config: &'a ChannelConfig,
    id: u64,
    deliveries: &'a mpsc::Sender<Delivery>,
    outbound_tx: &'a mpsc::UnboundedSender<Outbound>,
}

impl Session<'_> {
    async fn run(
        &self,
        mut ws: WebSocketStream<Box<dyn crate::tls::Io>>,
        outbound: &mut mpsc::UnboundedReceiver<Outbound>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> SessionEnd {
        let config = self.config;
        let idle_limit = config.idle_timeout + random_up_to(config.idle_jitter);
        let idle = tokio::time::sleep(idle_limit);
        tokio::pin!(idle);
        let mut healthy = false;
        // A new session starts with everything: the server may have missed the last report.
        let mut health_rx = config.health.as_ref().map(|b| {
            let mut rx = b.subscribe();
            rx.mark_changed();
            rx
        });
        let mut health_sent = 0u64;
        let mut usage_rx = config.usage.as_ref().map(|b| b.subscribe());
        loop {
            tokio::select! {
                true = health_changed(&mut usage_rx) => {
                    if let Some(tasks) = config.usage.as_ref().and_then(|b| b.take()) {
                        if let Err(end) = self.send(&mut ws, &self.compute_metrics_frame(tasks)).await {
                            return end;
                        }
                        tracing::debug!(instance = %config.container_instance_arn, "Container usage published.");
                    }
                }
                true = health_changed(&mut health_rx) => {
                    if let Some(board) = &config.health {
                        let (tasks, generation) = board.changed_since(health_sent);
                        if !tasks.is_empty() {
                            if let Err(end) = self.send(&mut ws, &self.compute_health_frame(tasks)).await {
                                return end;
                            }
                            tracing::debug!(instance = %config.container_instance_arn, "Container health published.");
                        }
                        health_sent = generation;
                    }
                }
                inbound = ws.next() => {
                    let text = match inbound {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Close(_))) | None => {
                            tracing::debug!(instance = %config.container_instance_arn, "Channel closed by the server.");
                            return SessionEnd::Reconnect { healthy };
                        }
                        Some(Ok(_)) => {
                            idle.as_mut().reset(tokio::time::Instant::now() + idle_limit);
                            continue;
                        }
                        Some(Err(error)) => {
                            tracing::warn!(instance = %config.container_instance_arn, %error, "Channel read failed.");
                            return SessionEnd::Reconnect { healthy };
                        }
                    };
                    idle.as_mut().reset(tokio::time::Instant::now() + idle_limit);
                    healthy = true;
                    match self.handle_frame(&mut ws, text.as_str()).await {
                        Ok(true) => {}
                        Ok(false) => return SessionEnd::Stop,
                        Err(end) => return end,
                    }
                }
                Some(out) = outbound.recv() => {
                    let frame = match out {
                        Outbound::Ack { session, message_id } if session == self.id => {
                            Frame::AckRequest(AckRequest {
                                cluster: Some(config.cluster_arn.clone()),
                                container_instance: Some(config.container_instance_arn.clone()),
                                message_id,
                            })
                        }
                        Outbound::Nack { session, message_id, reason } if session == self.id => {
                            Frame::NackRequest(NackRequest {
                                cluster: Some(config.cluster_arn.clone()),
                                container_instance: Some(config.container_instance_arn.clone()),
                                message_id,
                                reason: Some(reason),
                            })
                        }
                        _ => continue,
                    };
                    if let Err(end) = self.send(&mut ws, &frame).await {
                        return end;
                    }
                }
                () = &mut idle => {
                    tracing::warn!(instance = %config.container_instance_arn, silent_for = ?idle_limit, "Channel silent too long; reconnecting.");
                    return SessionEnd::Reconnect { healthy: false };
                }
                () = shutdown_requested(shutdown) => {
                    close_gracefully(&mut ws).await;
                    return SessionEnd::Stop;
                }
            }
        }
    }

    fn compute_metrics_frame(&self, tasks: Vec<model::acs::TaskMetric>) -> Frame {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Frame::PublishMetricsRequest(model::acs::PublishMetricsRequest {
            metadata: HealthMetadata {
                cluster: Some(self.config.cluster_arn.clone()),
                container_instance: Some(self.config.container_instance_arn.clone()),
                message_id: Some(uuid::Uuid::new_v4().to_string()),
                fin: Some(true),
            },
            task_metrics: tasks,
            timestamp: Some(now),
        })
    }

    fn compute_health_frame(&self, tasks: Vec<model::acs::TaskHealth>) -> Frame {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Frame::PublishHealthRequest(PublishHealthRequest {
            metadata: HealthMetadata {
                cluster: Some(self.config.cluster_arn.clone()),
                container_instance: Some(self.config.container_instance_arn.clone()),
                message_id: Some(uuid::Uuid::new_v4().to_string()),
                fin: Some(true),
            },
            tasks,
            timestamp: Some(now),
        })
    }

    /// Acts on one inbound text frame. `Ok(false)`: the owner is gone.
    async fn handle_frame(
        &self,
        ws: &mut WebSocketStream<Box<dyn crate::tls::Io>>,
        text: &str,
    ) -> Result<bool, SessionEnd> {
        let config = self.config;
        let frame: Frame = match serde_json::from_str(text) {
            Ok(frame) => frame,
            Err(error) => {
                let kind = frame_type(text);
                tracing::debug!(instance = %config.container_instance_arn, frame_type = %kind, %error, "Channel frame ignored.");
                return Ok(true);
            }
        };
        match frame {
            Frame::PayloadMessage(payload) => {
                let delivery = Delivery {
                    payload: Box::new(payload),
                    reply: Reply {
                        outbound: self.outbound_tx.clone(),
                        session: self.id,
                    },
                };
                if self.deliveries.send(delivery).await.is_err() {
                    return Ok(false);
                }
            }
            Frame::HeartbeatMessage(hb) => {
                let ack = Frame::HeartbeatAckRequest(HeartbeatAckRequest {
                    message_id: hb.message_id,
                });
                self.send(ws, &ack).await?;
            }
            Frame::CloseMessage(close) => {
                tracing::info!(instance = %config.container_instance_arn, reason = close.message.as_deref().unwrap_or(""), "Channel close requested by the server.");
                return Err(SessionEnd::Reconnect { healthy: true });
            }
            Frame::ErrorMessage(e) => {
                tracing::warn!(instance = %config.container_instance_arn, message = e.message.as_deref().unwrap_or(""), "Channel error message received.");
            }
            Frame::IAMRoleCredentialsMessage(message) => {
                let ack = Frame::IAMRoleCredentialsAckRequest(IAMRoleCredentialsAckRequest {
                    message_id: message.message_id.clone(),
                    expiration: Some(message.role_credentials.expiration.clone()),
                    credentials_id: Some(message.role_credentials.credentials_id.clone()),
                });
                if let Some(store) = &config.task_credentials {
                    store.put(
                        &message.task_arn,
                        message.role_type,
                        message.role_credentials,
                    );
                    tracing::debug!(task = %message.task_arn, role = ?message.role_type, "Task credentials refreshed.");
                }
                self.send(ws, &ack).await?;
            }
            Frame::AckRequest(_)
            | Frame::IAMRoleCredentialsAckRequest(_)
            | Frame::HeartbeatAckRequest(_)
            | Frame::NackRequest(_)
            | Frame::PublishHealthRequest(_)
            | Frame::PublishMetricsRequest(_) => {
                tracing::debug!(instance = %config.container_instance_arn, "Channel agent-side frame from the server ignored.");
            }
        }
        Ok(true)
    }

    async fn send(
        &self,
        ws: &mut WebSocketStream<Box<dyn crate::tls::Io>>,
        frame: &Frame,
    ) -> Result<(), SessionEnd> {
        let text = match serde_json::to_string(frame) {
            Ok(text) => text,
            Err(error) => {
                tracing::error!(%error, "Channel frame could not be encoded.");
                return Ok(());
            }
        };
        match tokio::time::timeout(self.config.connect_timeout, ws.send(Message::text(text))).await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => {
                tracing::warn!(instance = %self.config.container_instance_arn, %error, "Channel write failed.");
                Err(SessionEnd::Reconnect { healthy: false })
            }
            Err(_) => {
                tracing::warn!(instance = %self.config.container_instance_arn, "Channel write timed out.");
                Err(SessionEnd::Reconnect { healthy: false })
            }
        }
    }
}

/// Closes the session and waits (at most 2 s) until the server drops the connection,
/// so that when shutdown returns the server has seen the agent go (`agentConnected`).
async fn close_gracefully(ws: &mut WebSocketStream<Box<dyn crate::tls::Io>>) {
    let drain = async {
        let _ = ws.close(None).await;
        // The server's close reply, then the end of the stream.
        while let Some(Ok(_)) = ws.next().await {}
        let conn = ws.get_mut();
        let mut buf = [0u8; 256];
        while let Ok(n) = tokio::io::AsyncReadExt::read(conn, &mut buf).await {
            if n == 0 {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
}

/// The `type` of a frame that did not parse, for the log.
fn frame_type(text: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Typed {
        #[serde(rename = "type")]
        type_: String,
    }
    serde_json::from_str::<Typed>(text).map_or_else(|_| "unparseable".to_owned(), |t| t.type_)
}

fn random_up_to(d: Duration) -> Duration {
    let millis = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if millis == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(rand::thread_rng().gen_range(0..=millis))
}

/// Why a connection attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The endpoint cannot be used.
    #[error("invalid channel endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// Signing the upgrade failed.
    #[error("{0}")]
    Signing(String),
    /// TCP connect failed.
    #[error("connect to {address} failed: {error}")]
    Connect {
        /// host:port.
        address: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The TLS handshake failed (e.g. the certificate is not from a trusted CA).
    #[error("TLS handshake with {address} failed: {error}")]
    Tls {
        /// host:port.
        address: String,
        /// What rustls said.
        error: String,
    },
    /// The upgrade was refused or broke.
    #[error("upgrade failed: {0}")]
    Upgrade(String),
    /// Connect plus upgrade took too long.
    #[error("no connection within {0:?}")]
    Timeout(Duration),
}

/// The channel URL for `config`: `ws://host:port/<path>ws?clusterArn=...`.
pub fn compute_channel_url(config: &ChannelConfig) -> Result<String, ChannelError> {
    let invalid = |reason: &str| ChannelError::InvalidEndpoint {
        endpoint: config.endpoint.clone(),
        reason: reason.to_owned(),
    };
    let uri: http::Uri = config.endpoint.parse().map_err(|_| invalid("not a URL"))?;
    let scheme = match uri.scheme_str() {
        Some("http" | "ws") => "ws",
        Some("https" | "wss") => "wss",
        _ => return Err(invalid("the scheme must be http or https")),
    };
    let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
    let mut path = uri.path().to_owned();
    if !path.ends_with('/') {
        path.push('/');
    }
    let enc = |v: &str| utf8_percent_encode(v, QUERY_VALUE).to_string();
    Ok(format!(
        "{scheme}://{authority}{path}ws?clusterArn={}&containerInstanceArn={}&agentHash={}&agentVersion={}&seqNum=1&protocolVersion={PROTOCOL_VERSION}&dockerVersion={}&sendCredentials=false",
        enc(&config.cluster_arn),
        enc(&config.container_instance_arn),
        enc(&config.agent_hash),
        enc(&config.agent_version),
        enc(&config.docker_version),
    ))
}

/// Opens the TCP connection and performs the signed upgrade, within `connect_timeout`.
async fn connect(
    config: &ChannelConfig,
) -> Result<WebSocketStream<Box<dyn crate::tls::Io>>, ChannelError> {
    let url = compute_channel_url(config)?;
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| ChannelError::Upgrade(e.to_string()))?;
    let host = request
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    // The signature covers the same path and query, with an http scheme as AWS signs it.
    let tls = url.starts_with("wss://");
    let sign_uri = if tls {
        url.replacen("wss://", "https://", 1)
    } else {
        url.replacen("ws://", "http://", 1)
    };
    let signature = compute_signature_headers(
        &config.credentials,
        crate::sign::Scope {
            service: crate::sign::SERVICE,
            region: &config.region,
        },
        "GET",
        &sign_uri,
        &[("host", host.as_str())],
        b"",
        SystemTime::now(),
    )
    .map_err(|e| ChannelError::Signing(e.to_string()))?;
    for (k, v) in signature {
        let name = http::HeaderName::from_bytes(k.as_bytes())
            .map_err(|e| ChannelError::Signing(e.to_string()))?;
        let value =
            http::HeaderValue::from_str(&v).map_err(|e| ChannelError::Signing(e.to_string()))?;
        request.headers_mut().insert(name, value);
    }
    let server_name = request.uri().host().map(str::to_owned).unwrap_or_default();
    let address = request
        .uri()
        .authority()
        .map(|a| {
            if a.port().is_some() {
                a.as_str().to_owned()
            } else {
                format!("{}:{}", a.host(), if tls { 443 } else { 80 })
            }
        })
        .unwrap_or_default();
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(config.read_buffer_bytes)
        .write_buffer_size(0)
        .max_message_size(Some(16 << 20));
    let attempt = async {
        let tcp = TcpStream::connect(&address)
            .await
            .map_err(|error| ChannelError::Connect {
                address: address.clone(),
                error,
            })?;
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn crate::tls::Io> = if tls {
            crate::tls::connect(tcp, &server_name)
                .await
                .map_err(|e| ChannelError::Tls {
                    address: address.clone(),
                    error: e.to_string(),
                })?
        } else {
            Box::new(tcp)
        };
        let (ws, _response) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(ws_config))
                .await
                .map_err(|e| ChannelError::Upgrade(e.to_string()))?;
        Ok(ws)
    };
    tokio::time::timeout(config.connect_timeout, attempt)
        .await
        .map_err(|_| ChannelError::Timeout(config.connect_timeout))?
}

#[cfg(test)]
mod tests;
