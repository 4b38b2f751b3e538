//! Serving the API router over TLS: an accept loop that runs each connection's handshake
//! on its own task (a slow or failed handshake never holds up the listener), then serves
//! HTTP/1.1 with upgrades (the agent channel) and the peer address as `ConnectInfo`.

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use telemetry::CancellationToken;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// A client that has not finished its handshake within this is dropped.
const HANDSHAKE_WITHIN: Duration = Duration::from_secs(10);
/// Time in-flight requests get once shutdown is asked for.
const DRAIN_WITHIN: Duration = Duration::from_secs(10);
/// The first byte of a TLS record carrying a handshake.
const TLS_HANDSHAKE: u8 = 0x16;
/// What a plain-HTTP client on the TLS port is told before it is closed.
const PLAIN_HTTP_REPLY: &[u8] = b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 61\r\n\r\nThis port serves TLS: use https:// and trust the server's CA.\n";

/// Serves `router` over TLS on `listener` until `stop` is cancelled, then lets in-flight
/// requests finish (at most [`DRAIN_WITHIN`]).
pub async fn serve(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    router: Router,
    stop: CancellationToken,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let mut connections = tokio::task::JoinSet::new();
    loop {
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
        connections.spawn(connection(
            tcp,
            peer,
            acceptor.clone(),
            router.clone(),
            stop.clone(),
        ));
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

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    router: Router,
    stop: CancellationToken,
) {
    if speaks_plain_http(&tcp).await {
        tracing::info!(%peer, "A plain-HTTP client reached the TLS port; told it to use https.");
        let mut tcp = tcp;
        let _ = tcp.write_all(PLAIN_HTTP_REPLY).await;
        let _ = tcp.shutdown().await;
        return;
    }
    let tls = match tokio::time::timeout(HANDSHAKE_WITHIN, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            // Usually a client that does not trust our CA; it is told by its own stack.
            tracing::info!(%peer, %error, "TLS handshake failed.");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out.");
            return;
        }
    };
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            tower::ServiceExt::oneshot(router.clone(), req)
        });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Some(Duration::from_secs(30)))
        .serve_connection(TokioIo::new(tls), service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "A TLS connection ended on an error.");
    }
}

/// Whether the client's first byte looks like an HTTP method rather than a TLS handshake.
async fn speaks_plain_http(tcp: &TcpStream) -> bool {
    let mut first = [0u8; 1];
    match tokio::time::timeout(HANDSHAKE_WITHIN, tcp.peek(&mut first)).await {
        Ok(Ok(1)) => first[0] != TLS_HANDSHAKE && first[0].is_ascii_uppercase(),
        _ => false,
    }
}
