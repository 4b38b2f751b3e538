//! HTTP listeners (application load balancers): accepts client connections (HTTP/1.1
//! keep-alive), evaluates the listener's rules for each request against the routing table
//! current at that moment, and carries out the action: forward through a keep-alive pool
//! of upstream connections, fixed response, or redirect.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::balance::InFlight;
use crate::http1;
use crate::matching::{
    compute_redirect_location, host_without_port, Headers, RedirectSource, RedirectSpec,
    RequestFacts,
};
use crate::pool::{connect, ConnectError, Sender};
use crate::sticky::{self, StickyCookie};
use crate::table::{HttpRoutes, RouteAction};
use crate::workers::Workers;

/// Timeouts for talking to targets.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Establishing a connection to a target (ALB: 10 s); past it the client gets 504.
    pub connect: Duration,
    /// Waiting for a target's response headers (ALB's idle timeout, 60 s by default);
    /// past it the client gets 504.
    pub response: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            response: Duration::from_secs(60),
        }
    }
}

/// The body sent back to clients: a target's streamed body (holding its in-flight slot
/// until the body ends) or one the load balancer made.
pub(crate) type ResponseBody = Either<TrackedBody, Full<Bytes>>;

/// A target's response body that keeps the request counted as outstanding on its target
/// until the body is done or dropped (least-outstanding and draining both rely on it),
/// and gives the upstream connection back to the pool once the body was read in full.
pub(crate) struct TrackedBody {
    inner: Incoming,
    in_flight: InFlight,
    sender: Option<Sender>,
    worker: usize,
}

impl TrackedBody {
    fn release(&mut self) {
        if let Some(sender) = self.sender.take() {
            self.in_flight.pools().checkin(self.worker, sender);
        }
    }
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.release();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for TrackedBody {
    fn drop(&mut self) {
        // A body dropped half-read leaves the connection unusable; hyper closes it.
        if self.inner.is_end_stream() {
            self.release();
        }
    }
}

/// Per-connection context, shared by the connection's requests.
pub(crate) struct Conn {
    pub(crate) routes: Arc<ArcSwap<HttpRoutes>>,
    pub(crate) worker: usize,
    pub(crate) timeouts: Timeouts,
    pub(crate) peer: SocketAddr,
    /// The peer's address as an `X-Forwarded-For` value, formatted once per connection.
    pub(crate) peer_header: HeaderValue,
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Accepts connections until `stop` and hands each to a worker; there it is served and,
/// when `stop` fires, finishes its in-flight request and closes.
pub(crate) async fn run_http_listener(
    listener: TcpListener,
    routes: Arc<ArcSwap<HttpRoutes>>,
    workers: Arc<Workers>,
    timeouts: Timeouts,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted.and_then(|(s, peer)| Ok((s.into_std()?, peer))) {
            Ok(accepted) => accepted,
            Err(error) => {
                // Usually EMFILE: back off a little instead of spinning.
                tracing::warn!(%error, "Accepting a connection failed.");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let (routes, stop) = (routes.clone(), stop.clone());
        workers.dispatch(Box::new(move |worker| {
            Box::pin(async move {
                // Re-register the socket with the worker's own reactor.
                match TcpStream::from_std(stream) {
                    Ok(stream) => {
                        let conn = Conn::new(routes, worker, timeouts, peer);
                        http1::serve(stream, conn, stop).await
                    }
                    Err(error) => tracing::warn!(%error, "Adopting a connection failed."),
                }
            })
        }));
    }
}

/// Serves a connection with hyper: the fast path's fallback for requests it does not
/// carry itself, from that request on.
pub(crate) async fn serve_connection<IO>(io: IO, conn: Conn, stop: CancellationToken)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let peer = conn.peer;
    // An idle client connection closes after ALB's idle timeout, which is also the
    // response timeout. Equal durations matter for speed: every timer armed per request
    // then expires after all pending ones, so arming it never has to wake the worker's
    // timer driver (an eventfd write). hyper's default (30 s) against the 60 s response
    // timeout cost such a write about every fifth request.
    let idle = conn.timeouts.response;
    let conn = Arc::new(conn);
    let service = hyper::service::service_fn(move |req| {
        let conn = conn.clone();
        async move { Ok::<_, Infallible>(conn.handle(req).await) }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(idle)
        // Pipelined requests get their responses in one write instead of one each.
        .pipeline_flush(true)
        // Small messages: one contiguous write beats a vectored one.
        .writev(false)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(served);
    let result = tokio::select! {
        result = served.as_mut() => result,
        _ = stop.cancelled() => {
            served.as_mut().graceful_shutdown();
            served.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, %peer, "Client connection ended with an error.");
    }
}

impl Conn {
    pub(crate) fn new(
        routes: Arc<ArcSwap<HttpRoutes>>,
        worker: usize,
        mut timeouts: Timeouts,
        peer: SocketAddr,
    ) -> Self {
        // The load balancer's idle timeout, unless the plane's own cap is shorter.
        timeouts.response = timeouts.response.min(routes.load().idle);
        let peer_header = HeaderValue::from_str(&peer.ip().to_canonical().to_string())
            .unwrap_or(HeaderValue::from_static("unknown"));
        Conn {
            routes,
            worker,
            timeouts,
            peer,
            peer_header,
        }
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<ResponseBody> {
        // Decide under the current routing table, then let it go before any await so a
        // config swap is never held up by a slow request.
        let decision = {
            let routes = self.routes.load();
            let host = req
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .or_else(|| req.uri().authority().map(|a| a.as_str()));
            let facts = RequestFacts {
                method: req.method().as_str(),
                host: host.map(host_without_port),
                path: req.uri().path(),
                query: req.uri().query(),
                headers: Headers::Map(req.headers()),
                source_ip: self.peer.ip(),
            };
            decide(&routes, &facts)
        };
        match decision {
            Decision::Forward {
                in_flight,
                port_header,
                sticky,
            } => self.forward(req, in_flight, port_header, sticky).await,
            Decision::Respond(canned) => canned.into_response(),
        }
    }

    async fn forward(
        &self,
        req: Request<Incoming>,
        in_flight: InFlight,
        port_header: HeaderValue,
        sticky: Option<StickyCookie>,
    ) -> Response<ResponseBody> {
        // Edited in place: taking the request apart and back together moves its ~250
        // bytes of parts twice per request for nothing.
        let mut request = req;
        let headers = request.headers_mut();
        strip_hop_by_hop(headers);
        let forwarded_for = match headers.get(&X_FORWARDED_FOR) {
            Some(previous) => {
                let mut joined = Vec::with_capacity(previous.len() + 2 + self.peer_header.len());
                joined.extend_from_slice(previous.as_bytes());
                joined.extend_from_slice(b", ");
                joined.extend_from_slice(self.peer_header.as_bytes());
                HeaderValue::from_bytes(&joined).unwrap_or_else(|_| self.peer_header.clone())
            }
            None => self.peer_header.clone(),
        };
        headers.insert(X_FORWARDED_FOR, forwarded_for);
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
        headers.insert(X_FORWARDED_PORT, port_header);
        if !headers.contains_key(header::HOST) {
            let authority = in_flight.backend().authority.as_str();
            if let Ok(host) = HeaderValue::from_str(authority) {
                headers.insert(header::HOST, host);
            }
        }
        if request.uri().scheme().is_some() {
            // Absolute-form from the client: targets get origin-form.
            let origin = request.uri().path_and_query().map_or("/", |p| p.as_str());
            match Uri::try_from(origin) {
                Ok(uri) => *request.uri_mut() = uri,
                Err(_) => return lb_response(StatusCode::BAD_REQUEST),
            }
        }
        *request.version_mut() = http::Version::HTTP_11;
        let started = Instant::now();
        let exchange = self.exchange(request, &in_flight);
        match tokio::time::timeout(self.timeouts.response, exchange).await {
            Ok(Ok((mut response, sender))) => {
                in_flight.backend().record(
                    self.worker,
                    response.status().as_u16(),
                    Some(started.elapsed()),
                );
                strip_hop_by_hop(response.headers_mut());
                if let Some(cookie) = sticky {
                    cookie.append_to(response.headers_mut());
                }
                response.map(|inner| {
                    Either::Left(TrackedBody {
                        inner,
                        in_flight,
                        sender: Some(sender),
                        worker: self.worker,
                    })
                })
            }
            Ok(Err(status)) => status_response(status, &in_flight, self.worker),
            Err(_) => status_response(StatusCode::GATEWAY_TIMEOUT, &in_flight, self.worker),
        }
    }

    /// Sends the request on a pooled connection (or a new one) and waits for the
    /// response head. A pooled connection that turns out closed before the request was
    /// written is skipped; failures map to the status the client gets.
    async fn exchange(
        &self,
        mut request: Request<Incoming>,
        in_flight: &InFlight,
    ) -> Result<(Response<Incoming>, Sender), StatusCode> {
        let pools = in_flight.pools();
        loop {
            let (mut sender, fresh) = match pools.checkout(self.worker) {
                Some(sender) => (sender, false),
                // Boxed: connecting is rare, and its large future would otherwise be
                // copied around with every request's future.
                None => match Box::pin(connect(
                    &in_flight.backend().authority,
                    self.timeouts.connect,
                    in_flight.backend().mark,
                ))
                .await
                {
                    Ok(sender) => (sender, true),
                    Err(ConnectError::Timeout) => return Err(StatusCode::GATEWAY_TIMEOUT),
                    Err(ConnectError::Failed(error)) => {
                        tracing::debug!(%error, target = %in_flight.backend().key.id, "Connecting to a target failed.");
                        return Err(StatusCode::BAD_GATEWAY);
                    }
                },
            };
            if sender.ready().await.is_err() {
                if fresh {
                    return Err(StatusCode::BAD_GATEWAY);
                }
                continue;
            }
            match sender.try_send_request(request).await {
                Ok(response) => return Ok((response, sender)),
                Err(mut error) => match error.take_message() {
                    Some(unsent) if !fresh => request = unsent,
                    _ => {
                        let error = error.into_error();
                        tracing::debug!(%error, target = %in_flight.backend().key.id, "Target request failed.");
                        return Err(StatusCode::BAD_GATEWAY);
                    }
                },
            }
        }
    }
}

/// What to do with a request, decided under one routing table.
pub(crate) enum Decision {
    /// Send it to this target.
    Forward {
        in_flight: InFlight,
        port_header: HeaderValue,
        /// The stickiness cookie for the target's response (sticky groups only).
        sticky: Option<StickyCookie>,
    },
    /// Answer it from the load balancer.
    Respond(Canned),
}

/// A response the load balancer makes itself, before it takes either wire form.
pub(crate) struct Canned {
    pub(crate) status: StatusCode,
    pub(crate) content_type: Option<HeaderValue>,
    pub(crate) location: Option<HeaderValue>,
    pub(crate) body: Bytes,
}

impl Canned {
    /// ALB's own error pages (503, 502, 504...): short HTML.
    pub(crate) fn error(status: StatusCode) -> Canned {
        let body = format!(
            "<html><body><h1>{} {}</h1></body></html>\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        Canned {
            status,
            content_type: Some(HeaderValue::from_static("text/html")),
            location: None,
            body: Bytes::from(body),
        }
    }

    fn into_response(self) -> Response<ResponseBody> {
        let mut response = Response::new(Either::Right(Full::new(self.body)));
        *response.status_mut() = self.status;
        if let Some(ct) = self.content_type {
            response.headers_mut().insert(header::CONTENT_TYPE, ct);
        }
        if let Some(location) = self.location {
            response.headers_mut().insert(header::LOCATION, location);
        }
        response
    }

    /// The HTTP/1.1 bytes of this response, for the fast path.
    pub(crate) fn write_http1(&self, out: &mut Vec<u8>, head_request: bool, close: bool) {
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(self.status.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.status.canonical_reason().unwrap_or("").as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in [
            ("content-type", &self.content_type),
            ("location", &self.location),
        ] {
            if let Some(value) = value {
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(value.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(self.body.len().to_string().as_bytes());
        if close {
            out.extend_from_slice(b"\r\nconnection: close");
        }
        out.extend_from_slice(b"\r\n\r\n");
        if !head_request {
            out.extend_from_slice(&self.body);
        }
    }
}

/// Chooses what a request gets: the first matching rule's action (or the default).
pub(crate) fn decide(routes: &HttpRoutes, facts: &RequestFacts<'_>) -> Decision {
    match routes.rules.select(facts) {
        RouteAction::Forward(forward) => {
            let Some(group) = forward.pick_group() else {
                return Decision::Respond(Canned::error(StatusCode::SERVICE_UNAVAILABLE));
            };
            // Without stickiness nothing else is looked at: no cookie scan, no clock.
            let picked = match group.stickiness() {
                None => group.pick().map(|b| (b, None)),
                Some(duration) => sticky::pick(group, duration, &facts.headers, sticky::unix_now())
                    .map(|(b, cookie)| (b, Some(cookie))),
            };
            match picked {
                Some((backend, sticky)) => Decision::Forward {
                    in_flight: InFlight::start(backend.clone()),
                    port_header: routes.port_header.clone(),
                    sticky,
                },
                None => {
                    tracing::debug!(target_group = %group.arn, "No target can take the request.");
                    Decision::Respond(Canned::error(StatusCode::SERVICE_UNAVAILABLE))
                }
            }
        }
        RouteAction::Fixed {
            status,
            content_type,
            body,
        } => Decision::Respond(Canned {
            status: *status,
            content_type: content_type.clone(),
            location: None,
            body: body.clone(),
        }),
        RouteAction::Redirect {
            protocol,
            host,
            port,
            path,
            query,
            status,
        } => {
            let spec = RedirectSpec {
                protocol,
                host,
                port,
                path,
                query,
            };
            let from = RedirectSource {
                protocol: "HTTP",
                host: facts.host.unwrap_or(""),
                port: routes.port,
                path: facts.path,
                query: facts.query,
            };
            match HeaderValue::from_str(&compute_redirect_location(&spec, &from)) {
                Ok(location) => Decision::Respond(Canned {
                    status: *status,
                    content_type: None,
                    location: Some(location),
                    body: Bytes::new(),
                }),
                Err(_) => Decision::Respond(Canned::error(StatusCode::BAD_REQUEST)),
            }
        }
        RouteAction::Unavailable => {
            Decision::Respond(Canned::error(StatusCode::SERVICE_UNAVAILABLE))
        }
    }
}

fn status_response(
    status: StatusCode,
    in_flight: &InFlight,
    worker: usize,
) -> Response<ResponseBody> {
    in_flight.backend().record(worker, status.as_u16(), None);
    let target = &in_flight.backend().key;
    tracing::debug!(status = status.as_u16(), target = %target.id, port = target.port, "Target did not answer.");
    lb_response(status)
}

/// Removes connection-level headers, which belong to one hop only.
fn strip_hop_by_hop(headers: &mut http::HeaderMap) {
    // Most messages carry none of them: one pass of cheap name comparisons (standard
    // names compare by tag) instead of six hashed removals per message.
    let hop = |name: &HeaderName| {
        name == header::CONNECTION
            || name == header::TE
            || name == header::TRAILER
            || name == header::UPGRADE
            || name == KEEP_ALIVE
            || name == PROXY_CONNECTION
    };
    if !headers.keys().any(hop) {
        return;
    }
    if let Some(connection) = headers.remove(header::CONNECTION) {
        if let Ok(names) = connection.to_str() {
            for name in names.split(',') {
                if let Ok(name) = HeaderName::from_bytes(name.trim().as_bytes()) {
                    headers.remove(name);
                }
            }
        }
    }
    for name in [KEEP_ALIVE, PROXY_CONNECTION] {
        headers.remove(name);
    }
    headers.remove(header::TE);
    headers.remove(header::TRAILER);
    headers.remove(header::UPGRADE);
}

fn lb_response(status: StatusCode) -> Response<ResponseBody> {
    Canned::error(status).into_response()
}
