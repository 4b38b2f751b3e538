//! The one accept loop behind every API listener, plain or TLS: it owns what happens
//! before a request reaches the router. Each connection runs on its own task (a slow or
//! failed TLS handshake never holds up the listener) and serves HTTP/1.1 with upgrades
//! (the agent channel) and the peer address as `ConnectInfo`.
//!
//! The same edges hold on both transports: at most `max_connections` connections at once
//! (past that, new ones wait in the kernel's accept backlog), at most `max_in_flight`
//! requests at once (past that, requests are answered 503/429 in the caller's protocol
//! without being routed), a client that takes longer than `header_read` to send a
//! request's head is cut (slowloris), a keep-alive connection idle for `idle` is closed,
//! and a path not in normal form is refused before routing.

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use telemetry::CancellationToken;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// A client that has not finished its TLS handshake within this is dropped.
const HANDSHAKE_WITHIN: Duration = Duration::from_secs(10);
/// Time in-flight requests get once shutdown is asked for.
const DRAIN_WITHIN: Duration = Duration::from_secs(10);
/// The first byte of a TLS record carrying a handshake.
const TLS_HANDSHAKE: u8 = 0x16;
/// What a plain-HTTP client on the TLS port is told before it is closed.
const PLAIN_HTTP_REPLY: &[u8] = b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 61\r\n\r\nThis port serves TLS: use https:// and trust the server's CA.\n";

/// The edges of one listener (`stevedore server` flags).
#[derive(clap::Args, Clone, Debug)]
pub struct Limits {
    /// Seconds a client gets to send a request's line and headers once it has started
    /// one; slower clients are disconnected.
    #[arg(long, env = "STEVEDORE_HEADER_READ_TIMEOUT", default_value_t = 30.0, value_parser = positive_secs)]
    pub header_read_timeout: f64,
    /// Seconds a keep-alive connection may sit with no request before it is closed.
    #[arg(long, env = "STEVEDORE_IDLE_TIMEOUT", default_value_t = 60.0, value_parser = positive_secs)]
    pub idle_timeout: f64,
    /// Connections served at once; more wait in the accept backlog.
    #[arg(long, env = "STEVEDORE_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Requests served at once; more are answered 503 (ThrottlingException / Throttling)
    /// or, on the registry, 429 TOOMANYREQUESTS.
    #[arg(long, env = "STEVEDORE_MAX_IN_FLIGHT", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: u32,
}

fn positive_secs(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs < 1e9 => Ok(secs),
        _ => Err(format!(
            "expected a positive number of seconds, got '{text}'"
        )),
    }
}

/// Serves `router` on `listener` (over TLS when `tls` is given) until `stop` is
/// cancelled, then lets in-flight requests finish (at most [`DRAIN_WITHIN`]).
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: Router,
    limits: &Limits,
    stop: CancellationToken,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let edges = Arc::new(Edges {
        header_read: Duration::from_secs_f64(limits.header_read_timeout),
        idle: Duration::from_secs_f64(limits.idle_timeout),
        in_flight: Arc::new(Semaphore::new(limits.max_in_flight as usize)),
        router,
    });
    let connection_slots = Arc::new(Semaphore::new(limits.max_connections as usize));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        // A slot first: past the cap, clients wait in the kernel's backlog, not in ours.
        let slot = tokio::select! {
            slot = connection_slots.clone().acquire_owned() => slot,
            () = stop.cancelled() => break,
        };
        let Ok(slot) = slot else { break };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => break,
        };
        while connections.try_join_next().is_some() {}
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // Out of descriptors and the like: pause rather than spin.
                tracing::warn!(%error, "Accepting a connection failed.");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (edges, acceptor, stop) = (edges.clone(), acceptor.clone(), stop.clone());
        connections.spawn(async move {
            let _slot = slot;
            match acceptor {
                Some(acceptor) => tls_connection(tcp, peer, acceptor, edges, stop).await,
                None => connection(tcp, peer, edges, stop).await,
            }
        });
    }
    let drained = tokio::time::timeout(DRAIN_WITHIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            still_open = connections.len(),
            "Connections did not finish in time; closing them."
        );
    }
}

/// What every connection of a listener shares.
struct Edges {
    header_read: Duration,
    idle: Duration,
    in_flight: Arc<Semaphore>,
    router: Router,
}

async fn tls_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    edges: Arc<Edges>,
    stop: CancellationToken,
) {
    if speaks_plain_http(&tcp).await {
        tracing::info!(%peer, "A plain-HTTP client reached the TLS port; told it to use https.");
        let mut tcp = tcp;
        let _ = tcp.write_all(PLAIN_HTTP_REPLY).await;
        let _ = tcp.shutdown().await;
        return;
    }
    let within = HANDSHAKE_WITHIN.min(edges.header_read);
    match tokio::time::timeout(within, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => connection(tls, peer, edges, stop).await,
        Ok(Err(error)) => {
            // Usually a client that does not trust our CA; it is told by its own stack.
            tracing::info!(%peer, %error, "TLS handshake failed.");
        }
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out."),
    }
}

/// Serves HTTP/1.1 on one connection until the client closes it, a timeout cuts it, or
/// shutdown.
async fn connection<S>(stream: S, peer: SocketAddr, edges: Arc<Edges>, stop: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let clock = Arc::new(Clock::new());
    let io = Watched {
        inner: stream,
        clock: clock.clone(),
    };
    let service = {
        let (edges, clock) = (edges.clone(), clock.clone());
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            let (edges, clock) = (edges.clone(), clock.clone());
            async move {
                let _busy = clock.request_started();
                if !wire::dispatch::front::path_is_normal(req.uri().path()) {
                    tracing::debug!(%peer, path = req.uri().path(), "Refused a path not in normal form.");
                    return Ok(refusal(wire::dispatch::front::Refusal::PathNotNormal, &req));
                }
                let Ok(_permit) = edges.in_flight.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "Refused a request: the listener serves its cap of requests in flight.");
                    return Ok(refusal(wire::dispatch::front::Refusal::Overloaded, &req));
                };
                req.extensions_mut().insert(ConnectInfo(peer));
                tower::ServiceExt::oneshot(edges.router.clone(), req).await
            }
        })
    };
    // The timeouts are this module's (see `Clock`), not hyper's: hyper's header-read
    // timer also runs while a keep-alive connection waits, which would make the idle
    // timeout no longer than the header-read one.
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        cut = clock.expiry(edges.header_read, edges.idle) => {
            match cut {
                Cut::HeaderRead => tracing::info!(%peer, "Disconnected a client too slow to send its request headers."),
                Cut::Idle => tracing::debug!(%peer, "Closed an idle keep-alive connection."),
            }
            return;
        }
        () = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "A connection ended on an error.");
    }
}

fn refusal(
    why: wire::dispatch::front::Refusal,
    req: &hyper::Request<hyper::body::Incoming>,
) -> axum::response::Response {
    wire::dispatch::front::refuse(why, req.uri().path(), req.headers()).map(axum::body::Body::from)
}

/// Whether the client's first byte looks like an HTTP method rather than a TLS handshake.
async fn speaks_plain_http(tcp: &TcpStream) -> bool {
    let mut first = [0u8; 1];
    match tokio::time::timeout(HANDSHAKE_WITHIN, tcp.peek(&mut first)).await {
        Ok(Ok(1)) => first[0] != TLS_HANDSHAKE && first[0].is_ascii_uppercase(),
        _ => false,
    }
}

/// Why a connection was cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cut {
    HeaderRead,
    Idle,
}

/// No time recorded.
const NEVER: u64 = u64::MAX;

/// One connection's timeline, in milliseconds since it opened, kept in atomics so the
/// I/O wrapper and the request path update it without locks or allocation.
struct Clock {
    opened: Instant,
    /// The last byte read or written, or request started or finished.
    last_activity: AtomicU64,
    /// When the first byte of a request head arrived while no request was being served
    /// ([`NEVER`]: none is arriving).
    head_started: AtomicU64,
    /// Requests being served (the handler has not answered yet).
    in_flight: AtomicUsize,
}

impl Clock {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            last_activity: AtomicU64::new(0),
            head_started: AtomicU64::new(NEVER),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(NEVER - 1)
    }

    fn read(&self) {
        let now = self.now();
        self.last_activity.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            // Only the first byte of a head starts its timer.
            let _ = self.head_started.compare_exchange(
                NEVER,
                now,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    fn wrote(&self) {
        self.last_activity.store(self.now(), Ordering::Relaxed);
    }

    /// The head is complete and a handler runs until the guard drops.
    fn request_started(&self) -> Busy<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_started.store(NEVER, Ordering::Relaxed);
        self.wrote();
        Busy(self)
    }

    /// What to do now: cut the connection, or check again after this many milliseconds.
    fn verdict(&self, header_read: u64, idle: u64) -> Result<u64, Cut> {
        let now = self.now();
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Ok(idle);
        }
        let head = self.head_started.load(Ordering::Relaxed);
        if head != NEVER {
            let due = head.saturating_add(header_read);
            return if now >= due {
                Err(Cut::HeaderRead)
            } else {
                Ok(due - now)
            };
        }
        let due = self
            .last_activity
            .load(Ordering::Relaxed)
            .saturating_add(idle);
        if now >= due {
            Err(Cut::Idle)
        } else {
            Ok(due - now)
        }
    }

    /// Resolves when the connection should be cut.
    async fn expiry(&self, header_read: Duration, idle: Duration) -> Cut {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(NEVER - 1).max(1);
        let (header_read, idle) = (ms(header_read), ms(idle));
        loop {
            match self.verdict(header_read, idle) {
                Err(cut) => return cut,
                Ok(wait) => tokio::time::sleep(Duration::from_millis(wait)).await,
            }
        }
    }
}

/// A request being served; dropping it marks the request finished.
struct Busy<'a>(&'a Clock);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.wrote();
    }
}

/// A connection's stream, telling its [`Clock`] of every byte that moves.
struct Watched<S> {
    inner: S,
    clock: Arc<Clock>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.clock.read();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.clock.wrote();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.clock.wrote();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_that_started_is_cut_after_the_header_timeout() {
        let clock = Clock::new();
        clock.head_started.store(0, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(clock.verdict(1, 10_000), Err(Cut::HeaderRead));
        assert!(
            clock.verdict(60_000, 1).is_ok(),
            "the idle timer does not apply mid-head"
        );
    }

    #[test]
    fn a_quiet_connection_is_cut_after_the_idle_timeout_but_not_mid_request() {
        let clock = Clock::new();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(clock.verdict(10_000, 1), Err(Cut::Idle));
        let busy = clock.request_started();
        std::thread::sleep(Duration::from_millis(5));
        assert!(clock.verdict(1, 1).is_ok());
        drop(busy);
        assert!(
            clock.verdict(1, 10_000).is_ok(),
            "finishing a request is activity"
        );
    }

    #[test]
    fn bytes_read_between_requests_start_the_head_timer_once() {
        let clock = Clock::new();
        clock.read();
        let first = clock.head_started.load(Ordering::Relaxed);
        assert_ne!(first, NEVER);
        std::thread::sleep(Duration::from_millis(3));
        clock.read();
        assert_eq!(clock.head_started.load(Ordering::Relaxed), first);
        let _busy = clock.request_started();
        assert_eq!(clock.head_started.load(Ordering::Relaxed), NEVER);
        clock.read();
        assert_eq!(
            clock.head_started.load(Ordering::Relaxed),
            NEVER,
            "body bytes are not a head"
        );
    }
}
