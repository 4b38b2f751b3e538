//! The client connection loop of HTTP listeners. It reads each request head, routes it,
//! and forwards plain requests itself over a pooled upstream connection driven on this
//! same task (why: see [`crate::framing`]). At the first request it does not carry, the
//! connection, with the bytes read so far, goes to hyper for the rest of its life.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use http::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::balance::InFlight;
use crate::framing::{
    self, Body, ChunkedScanner, Request, RequestParse, ResponseHead, ResponseParse,
    MAX_REQUEST_HEADERS,
};
use crate::matching::{host_without_port, Headers, RequestFacts};
use crate::pool::{connect_raw, ConnectError, Upstream};
use crate::proxy::{decide, serve_connection, Canned, Conn, Decision};
use crate::sticky::StickyCookie;

/// Read granularity, for clients and targets alike.
const READ_SIZE: usize = 16 * 1024;

/// What routing a request head decided, kept past the borrow of the read buffer.
enum Step {
    /// `out` holds the load balancer's own response.
    Respond { close: bool },
    /// `out` holds the head to send to the target; the body follows in the buffer.
    Forward {
        in_flight: InFlight,
        idempotent: bool,
        head_request: bool,
        close: bool,
        upgrade: bool,
        sticky: Option<StickyCookie>,
    },
}

/// Whether the client connection goes on after an exchange.
enum Next {
    KeepOpen,
    Close,
    /// The target switched protocols: the connection becomes a tunnel to it.
    Tunnel(Upstream),
}

/// Serves one client connection until it closes, idles out, or `stop` fires.
pub(crate) async fn serve(mut client: TcpStream, conn: Conn, stop: CancellationToken) {
    // Small responses should leave at once rather than wait for Nagle.
    let _ = client.set_nodelay(true);
    // The connection's own token: waiting on it locks only this connection's node, not
    // the listener's, which every connection would contend for.
    let stop = stop.child_token();
    let cancelled = stop.clone().cancelled_owned();
    tokio::pin!(cancelled);
    let mut buf = BytesMut::with_capacity(READ_SIZE);
    let mut out = Vec::with_capacity(1024);
    let mut response = Vec::with_capacity(1024);
    // Stickiness cookie lines; allocated only once a sticky group is used.
    let mut cookies = Vec::new();
    loop {
        out.clear();
        let step = {
            let mut headers = [httparse::EMPTY_HEADER; MAX_REQUEST_HEADERS];
            match framing::parse_request(&buf, &mut headers) {
                RequestParse::Partial => None,
                RequestParse::Unsupported => {
                    let io = Prefixed {
                        prefix: buf.freeze(),
                        inner: client,
                    };
                    return serve_connection(io, conn, stop).await;
                }
                RequestParse::Malformed => {
                    Canned::error(StatusCode::BAD_REQUEST).write_http1(&mut out, false, true);
                    let _ = client.write_all(&out).await;
                    return;
                }
                RequestParse::Ready(req) => {
                    Some((route(&conn, &req, &mut out), req.head_len, req.body_len))
                }
            }
        };
        let Some((step, head_len, body_len)) = step else {
            // An idle connection ends at ALB's idle timeout (equal to the response
            // timeout: see `proxy::serve_connection` for why equal durations matter).
            let read = tokio::select! {
                read = tokio::time::timeout(conn.timeouts.response, fill(&mut client, &mut buf)) => read,
                _ = &mut cancelled, if buf.is_empty() => return,
            };
            match read {
                Ok(Ok(n)) if n > 0 => continue,
                _ => return,
            }
        };
        // The whole body is read before anything is sent (it is at most
        // `MAX_BUFFERED_BODY`), so a failed attempt can be made again.
        let total = head_len + body_len;
        while buf.len() < total {
            match tokio::time::timeout(conn.timeouts.response, fill(&mut client, &mut buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
        }
        let next = match step {
            Step::Respond { close } => {
                buf.advance(total);
                if client.write_all(&out).await.is_err() || close {
                    return;
                }
                Next::KeepOpen
            }
            Step::Forward {
                in_flight,
                idempotent,
                head_request,
                close,
                upgrade,
                sticky,
            } => {
                out.extend_from_slice(&buf[head_len..total]);
                buf.advance(total);
                let extra: &[u8] = match sticky {
                    None => &[],
                    Some(cookie) => {
                        cookies.clear();
                        cookie.write_http1(&mut cookies);
                        &cookies
                    }
                };
                let exchange = Exchange {
                    conn: &conn,
                    in_flight: &in_flight,
                    idempotent,
                    head_request,
                    close,
                    upgrade,
                    extra,
                };
                let next = exchange.run(&mut client, &out, &mut response).await;
                if let Next::Tunnel(mut upstream) = next {
                    // Still counted in flight on its target, as ALB counts WebSockets.
                    let idle = conn.timeouts.response;
                    tunnel(&mut client, &buf, &mut upstream, idle, cancelled.as_mut()).await;
                    return;
                }
                next
            }
        };
        if matches!(next, Next::Close) || stop.is_cancelled() {
            return;
        }
    }
}

/// Routes one request under the current table and writes what is to be sent: the
/// target's request head, or the load balancer's own response.
fn route(conn: &Conn, req: &Request<'_, '_>, out: &mut Vec<u8>) -> Step {
    let decision = {
        let routes = conn.routes.load();
        let facts = RequestFacts {
            method: req.method,
            host: Some(host_without_port(req.host)),
            path: req.path(),
            query: req.query(),
            headers: Headers::Raw(req.headers),
            source_ip: conn.peer.ip(),
        };
        decide(&routes, &facts)
    };
    let head_request = req.method == "HEAD";
    match decision {
        Decision::Forward {
            in_flight,
            port_header,
            sticky,
        } => {
            framing::write_request_head(
                out,
                req,
                conn.peer_header.as_bytes(),
                port_header.as_bytes(),
            );
            Step::Forward {
                in_flight,
                idempotent: req.idempotent(),
                head_request,
                close: req.close,
                upgrade: req.upgrade.is_some(),
                sticky,
            }
        }
        Decision::Respond(canned) => {
            canned.write_http1(out, head_request, req.close);
            Step::Respond { close: req.close }
        }
    }
}

/// Reads more from `stream` into `buf`, making room first.
async fn fill(stream: &mut TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    if buf.capacity() - buf.len() < READ_SIZE / 4 {
        buf.reserve(READ_SIZE);
    }
    stream.read_buf(buf).await
}

/// Why an attempt on an upstream connection failed.
enum Failure {
    /// Writing the request failed: the target never read it.
    Unsent,
    /// The connection closed before any byte of a response.
    NoResponse,
    /// Anything else: the response was bad or broke off.
    Broken,
}

/// One request's trip to its target and back.
struct Exchange<'a> {
    conn: &'a Conn,
    in_flight: &'a InFlight,
    idempotent: bool,
    head_request: bool,
    close: bool,
    /// A WebSocket handshake: a 101 is the expected answer.
    upgrade: bool,
    /// Header lines added to the response head (stickiness cookies).
    extra: &'a [u8],
}

impl Exchange<'_> {
    async fn run(&self, client: &mut TcpStream, request: &[u8], response: &mut Vec<u8>) -> Next {
        let timeouts = self.conn.timeouts;
        let pools = self.in_flight.raw_pools();
        let backend = self.in_flight.backend();
        // Target response time: from sending the request to the response head.
        let started = Instant::now();
        // A pooled connection the target has closed meanwhile fails the first attempt;
        // the request goes again on the next one (at worst a fresh one, which is final).
        let (mut upstream, head) = loop {
            let (mut upstream, reused) = match pools.checkout(self.conn.worker) {
                Some(upstream) => (upstream, true),
                None => match connect_raw(&backend.authority, timeouts.connect, backend.mark).await
                {
                    Ok(upstream) => (upstream, false),
                    Err(ConnectError::Timeout) => {
                        return self.fail(client, StatusCode::GATEWAY_TIMEOUT).await
                    }
                    Err(ConnectError::Failed(error)) => {
                        tracing::debug!(%error, target = %backend.key.id, "Connecting to a target failed.");
                        return self.fail(client, StatusCode::BAD_GATEWAY).await;
                    }
                },
            };
            let attempt = self.send(&mut upstream, request, response);
            match tokio::time::timeout(timeouts.response, attempt).await {
                Ok(Ok(head)) => break (upstream, head),
                Ok(Err(Failure::Unsent)) if reused => continue,
                Ok(Err(Failure::NoResponse)) if reused && self.idempotent => continue,
                Ok(Err(_)) => {
                    tracing::debug!(target = %backend.key.id, "Target request failed.");
                    return self.fail(client, StatusCode::BAD_GATEWAY).await;
                }
                Err(_) => return self.fail(client, StatusCode::GATEWAY_TIMEOUT).await,
            }
        };
        backend.record(self.conn.worker, head.status, Some(started.elapsed()));
        if head.body == Body::Tunnel {
            // The 101 goes with whatever the target already sent past it.
            response.extend_from_slice(&upstream.buf);
            upstream.buf.clear();
            return match client.write_all(response).await {
                Ok(()) => Next::Tunnel(upstream),
                Err(_) => Next::Close,
            };
        }
        match self.relay(client, &mut upstream, head, response).await {
            Ok(reusable) => {
                if reusable {
                    pools.checkin(self.conn.worker, upstream);
                }
                if head.close_client {
                    Next::Close
                } else {
                    Next::KeepOpen
                }
            }
            Err(()) => Next::Close,
        }
    }

    /// Writes the request and reads up to the final response head, which `response`
    /// then holds in the client's form.
    async fn send(
        &self,
        upstream: &mut Upstream,
        request: &[u8],
        response: &mut Vec<u8>,
    ) -> Result<ResponseHead, Failure> {
        upstream.buf.clear();
        upstream
            .stream
            .write_all(request)
            .await
            .map_err(|_| Failure::Unsent)?;
        let mut received = false;
        loop {
            response.clear();
            let parsed = framing::parse_response(
                &upstream.buf,
                self.head_request,
                self.close,
                self.upgrade,
                self.extra,
                response,
            );
            match parsed {
                ResponseParse::Ready(head) => {
                    upstream.buf.advance(head.head_len);
                    return Ok(head);
                }
                ResponseParse::Interim(len) => upstream.buf.advance(len),
                ResponseParse::Invalid => return Err(Failure::Broken),
                ResponseParse::Partial => match fill(&mut upstream.stream, &mut upstream.buf).await
                {
                    Ok(n) if n > 0 => received = true,
                    _ if received => return Err(Failure::Broken),
                    _ => return Err(Failure::NoResponse),
                },
            }
        }
    }

    /// Sends the response head and body on to the client; `Ok(true)` when the upstream
    /// connection ended cleanly and can carry another request.
    async fn relay(
        &self,
        client: &mut TcpStream,
        upstream: &mut Upstream,
        head: ResponseHead,
        response: &mut Vec<u8>,
    ) -> Result<bool, ()> {
        let idle = self.conn.timeouts.response;
        let mut left = match head.body {
            Body::Empty => 0,
            Body::Length(n) => n,
            Body::Chunked | Body::UntilClose | Body::Tunnel => u64::MAX,
        };
        let mut chunked = (head.body == Body::Chunked).then(ChunkedScanner::default);
        // The head goes with whatever body came with it, in one write.
        let mut first = true;
        loop {
            let take = match (&mut chunked, head.body) {
                (Some(scanner), _) => match scanner.scan(&upstream.buf) {
                    Ok(Some(end)) => {
                        left = 0;
                        end
                    }
                    Ok(None) => upstream.buf.len(),
                    Err(_) => return Err(()),
                },
                _ => upstream
                    .buf
                    .len()
                    .min(usize::try_from(left).unwrap_or(usize::MAX)),
            };
            if head.body != Body::UntilClose && chunked.is_none() {
                left -= take as u64;
            }
            let chunk = &upstream.buf[..take];
            let written = if first {
                first = false;
                response.extend_from_slice(chunk);
                client.write_all(response).await
            } else if take > 0 {
                client.write_all(chunk).await
            } else {
                Ok(())
            };
            upstream.buf.advance(take);
            if written.is_err() {
                return Err(());
            }
            if left == 0 {
                // Bytes beyond the response mean the connection is out of step.
                return Ok(head.reusable && upstream.buf.is_empty());
            }
            upstream.buf.clear();
            match tokio::time::timeout(idle, fill(&mut upstream.stream, &mut upstream.buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                Ok(Ok(_)) if head.body == Body::UntilClose => return Ok(false),
                _ => return Err(()),
            }
        }
    }

    /// Answers the client with the load balancer's error page for `status`.
    async fn fail(&self, client: &mut TcpStream, status: StatusCode) -> Next {
        self.in_flight
            .backend()
            .record(self.conn.worker, status.as_u16(), None);
        let target = &self.in_flight.backend().key;
        tracing::debug!(status = status.as_u16(), target = %target.id, port = target.port, "Target did not answer.");
        let mut out = Vec::with_capacity(128);
        Canned::error(status).write_http1(&mut out, self.head_request, self.close);
        match client.write_all(&out).await {
            Ok(()) if !self.close => Next::KeepOpen,
            _ => Next::Close,
        }
    }
}

/// Carries a switched (WebSocket) connection both ways until either side closes, no data
/// has moved either way for `idle` (ALB's idle timeout), or the listener stops; what the
/// client sent past its handshake goes first.
async fn tunnel(
    client: &mut TcpStream,
    early: &[u8],
    upstream: &mut Upstream,
    idle: std::time::Duration,
    mut stop: Pin<&mut WaitForCancellationFutureOwned>,
) {
    if !early.is_empty() && upstream.stream.write_all(early).await.is_err() {
        return;
    }
    // Reads on either side note the time; the timer is only checked when it fires, so a
    // busy tunnel costs no timer work per read.
    let start = tokio::time::Instant::now();
    let last = AtomicU64::new(0);
    let mut a = Active {
        inner: client,
        start,
        last: &last,
    };
    let mut b = Active {
        inner: &mut upstream.stream,
        start,
        last: &last,
    };
    let copy = tokio::io::copy_bidirectional(&mut a, &mut b);
    tokio::pin!(copy);
    let timer = tokio::time::sleep(idle);
    tokio::pin!(timer);
    loop {
        tokio::select! {
            copied = &mut copy => {
                if let Err(error) = copied {
                    tracing::debug!(%error, "A WebSocket tunnel ended with an error.");
                }
                return;
            }
            () = &mut stop => return,
            () = &mut timer => {
                let active = start + std::time::Duration::from_millis(last.load(Ordering::Relaxed));
                let deadline = active + idle;
                if tokio::time::Instant::now() >= deadline {
                    tracing::debug!(?idle, "A WebSocket tunnel reached the idle timeout.");
                    return;
                }
                timer.as_mut().reset(deadline);
            }
        }
    }
}

/// A tunnel end that notes when it last read data (milliseconds since `start`).
struct Active<'a, S> {
    inner: &'a mut S,
    start: tokio::time::Instant,
    last: &'a AtomicU64,
}

impl<S: AsyncRead + Unpin> AsyncRead for Active<'_, S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut *self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.last.store(ms, Ordering::Relaxed);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Active<'_, S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_shutdown(cx)
    }
}

/// A client connection handed to hyper, replaying the bytes the fast path already read.
struct Prefixed {
    prefix: Bytes,
    inner: TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
