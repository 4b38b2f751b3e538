//! Test fixtures: tiny HTTP and TCP backends on 127.0.0.1 with free ports, config
//! builders, a data plane running on a task, and a small HTTP client.

#![allow(dead_code, missing_docs)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use lb::{DataPlane, Options, PlaneStatus, WatchSource};
use model::lb::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Every wait in these tests is bounded by this.
pub const LIMIT: Duration = Duration::from_secs(10);

/// An HTTP backend: answers with its name, echoes the forwarding headers, `/slow?ms=N`
/// waits first, `/health` answers `health_status`.
pub struct HttpBackend {
    pub name: String,
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    pub active: Arc<AtomicUsize>,
    pub health_status: Arc<AtomicU16>,
    /// Connections accepted.
    pub accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl HttpBackend {
    pub async fn start(name: &str) -> HttpBackend {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind backend");
        let addr = listener.local_addr().expect("addr");
        let hits = Arc::new(AtomicUsize::new(0));
        let active = Arc::new(AtomicUsize::new(0));
        let health_status = Arc::new(AtomicU16::new(200));
        let (n, h, a, hs) = (
            name.to_owned(),
            hits.clone(),
            active.clone(),
            health_status.clone(),
        );
        let accepted = Arc::new(AtomicUsize::new(0));
        let acc = accepted.clone();
        let task = tokio::spawn(async move {
            // Connections live in the set, so killing the backend closes them too.
            let mut conns = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                acc.fetch_add(1, Ordering::SeqCst);
                let (n, h, a, hs) = (n.clone(), h.clone(), a.clone(), hs.clone());
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (n, h, a, hs) = (n.clone(), h.clone(), a.clone(), hs.clone());
                        async move { Ok::<_, Infallible>(answer(req, &n, &h, &a, &hs).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        HttpBackend {
            name: name.to_owned(),
            addr,
            hits,
            active,
            health_status,
            accepted,
            task,
        }
    }

    /// Stops listening and closes every connection.
    pub fn kill(&self) {
        self.task.abort();
    }

    pub fn target(&self) -> Target {
        Target {
            key: TargetKey {
                id: self.name.clone(),
                port: self.addr.port(),
            },
            host: "127.0.0.1".into(),
            draining: false,
        }
    }
}

impl Drop for HttpBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    req: Request<Incoming>,
    name: &str,
    hits: &AtomicUsize,
    active: &AtomicUsize,
    health: &AtomicU16,
) -> Response<Full<Bytes>> {
    if req.uri().path() == "/health" {
        let status = health.load(Ordering::SeqCst);
        return Response::builder()
            .status(status)
            .body(Full::new(Bytes::new()))
            .expect("response");
    }
    hits.fetch_add(1, Ordering::SeqCst);
    active.fetch_add(1, Ordering::SeqCst);
    if req.uri().path() == "/slow" {
        let ms = req
            .uri()
            .query()
            .and_then(|q| q.strip_prefix("ms="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let mut response = Response::builder().header("x-backend", name);
    for h in [
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-port",
        "host",
    ] {
        if let Some(v) = req.headers().get(h) {
            response = response.header(format!("x-seen-{h}"), v.clone());
        }
    }
    response = response.header("x-seen-path", req.uri().to_string());
    let _ = req.into_body().collect().await;
    active.fetch_sub(1, Ordering::SeqCst);
    response
        .body(Full::new(Bytes::from(name.to_owned())))
        .expect("response")
}

/// A TCP backend that prefixes every chunk it echoes with its name.
pub struct TcpEcho {
    pub name: String,
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl TcpEcho {
    pub async fn start(name: &str) -> TcpEcho {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
        let addr = listener.local_addr().expect("addr");
        let n = name.to_owned();
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    continue;
                };
                let n = n.clone();
                conns.spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(k) = s.read(&mut buf).await {
                        if k == 0 {
                            break;
                        }
                        let mut out = format!("{n}:").into_bytes();
                        out.extend_from_slice(&buf[..k]);
                        if s.write_all(&out).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        TcpEcho {
            name: name.to_owned(),
            addr,
            task,
        }
    }

    pub fn target(&self) -> Target {
        Target {
            key: TargetKey {
                id: self.name.clone(),
                port: self.addr.port(),
            },
            host: "127.0.0.1".into(),
            draining: false,
        }
    }
}

impl Drop for TcpEcho {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn health_check(enabled: bool) -> HealthCheck {
    HealthCheck {
        enabled,
        protocol: TargetProtocol::Http,
        port: None,
        path: "/health".into(),
        interval_seconds: 1,
        timeout_seconds: 1,
        healthy_threshold: 2,
        unhealthy_threshold: 2,
        matcher: Matcher(vec![200..=299]),
    }
}

pub fn group(
    arn: &str,
    targets: Vec<Target>,
    algorithm: Algorithm,
    hc: HealthCheck,
) -> TargetGroup {
    TargetGroup {
        arn: arn.into(),
        name: arn.into(),
        protocol: TargetProtocol::Http,
        health_check: hc,
        algorithm,
        deregistration_delay_seconds: 300,
        stickiness: None,
        targets,
    }
}

pub fn forward(tg: &str) -> Action {
    Action::Forward(vec![WeightedTargetGroup {
        target_group_arn: tg.into(),
        weight: 1,
    }])
}

pub fn fixed(status: u16, body: &str) -> Action {
    Action::FixedResponse {
        status_code: status,
        content_type: Some("text/plain".into()),
        message_body: Some(body.into()),
    }
}

pub const LISTENER: &str = "listener/app/web/1";

/// One application load balancer with one HTTP listener on an ephemeral port.
pub fn alb(rules: Vec<Rule>, default_actions: Vec<Action>, groups: Vec<TargetGroup>) -> Config {
    Config {
        revision: 1,
        load_balancers: vec![LoadBalancer {
            arn: "loadbalancer/app/web".into(),
            name: "web".into(),
            kind: LoadBalancerKind::Application,
            bind_address: "127.0.0.1".parse().expect("ip"),
            idle_timeout: model::lb::DEFAULT_IDLE_TIMEOUT,
            listeners: vec![Listener {
                arn: LISTENER.into(),
                port: 0,
                protocol: ListenerProtocol::Http,
                rules,
                default_actions,
            }],
        }],
        target_groups: groups,
    }
}

/// A data plane running on its own task, stopped on drop.
pub struct Running {
    pub source: Arc<WatchSource>,
    pub status: tokio::sync::watch::Receiver<PlaneStatus>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Running {
    pub async fn start(config: Config) -> Running {
        Running::start_with(config, Options::default()).await
    }

    pub async fn start_with(config: Config, options: Options) -> Running {
        let source = Arc::new(WatchSource::new(config));
        let plane = DataPlane::new(options);
        let status = plane.status();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let s = source.clone();
        let task = tokio::spawn(async move {
            plane
                .run(s, async {
                    let _ = stopped.await;
                })
                .await
                .expect("data plane runs");
        });
        let mut running = Running {
            source,
            status,
            stop: Some(stop),
            task,
        };
        running.wait_revision(1).await;
        running
    }

    /// Publishes `config` (its revision bumped past the current) and waits until served.
    pub async fn update(&mut self, mut config: Config) {
        config.revision = self.source.current().revision + 1;
        let revision = config.revision;
        self.source.set(config);
        self.wait_revision(revision).await;
    }

    pub async fn wait_revision(&mut self, revision: u64) {
        tokio::time::timeout(
            LIMIT,
            self.status
                .wait_for(|s| s.revision.is_some_and(|r| r >= revision)),
        )
        .await
        .expect("config applied in time")
        .expect("data plane running");
    }

    pub fn addr(&self, listener_arn: &str) -> SocketAddr {
        self.status
            .borrow()
            .addr_of(listener_arn)
            .expect("listener bound")
    }

    /// Waits until `pred` holds for the reported health of `(group, target)`.
    pub async fn wait_health(&self, tg: &str, key: &TargetKey, pred: impl Fn(&Health) -> bool) {
        let mut reports = self.source.subscribe_reports();
        tokio::time::timeout(LIMIT, async {
            loop {
                if self.source.health(tg, key).as_ref().is_some_and(&pred) {
                    return;
                }
                let _ = reports.changed().await;
            }
        })
        .await
        .expect("health reported in time");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// A keep-alive client connection.
pub struct Client {
    sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    pub task: JoinHandle<()>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        Client { sender, task }
    }

    pub async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Reply {
        tokio::time::timeout(LIMIT, async {
            self.sender.ready().await.expect("connection still open");
            let mut req = Request::get(path).header("host", "app.example.com");
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let response = self
                .sender
                .send_request(req.body(Empty::new()).expect("request"))
                .await
                .expect("response");
            let (parts, body) = response.into_parts();
            let body = body.collect().await.expect("body").to_bytes();
            Reply {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            }
        })
        .await
        .expect("request finished in time")
    }
}

/// One request on a fresh connection.
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut client = Client::connect(addr).await;
    client.get(path, headers).await
}

/// Which backend (by `x-backend`) answered each of `n` requests.
pub async fn tally(addr: SocketAddr, path: &str, n: usize) -> HashMap<String, usize> {
    let mut client = Client::connect(addr).await;
    let mut seen = HashMap::new();
    for _ in 0..n {
        let reply = client.get(path, &[]).await;
        assert_eq!(reply.status, 200, "body: {}", reply.body);
        *seen
            .entry(reply.header("x-backend").to_owned())
            .or_insert(0) += 1;
    }
    seen
}
