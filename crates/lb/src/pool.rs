//! Idle keep-alive connections to one target, one stack per HTTP worker thread, so a
//! connection is only ever reused by the thread whose runtime drives it (no cross-thread
//! wake-ups) and a checkout is a pop under an uncontended lock, with no hashing. Two
//! kinds are pooled: hyper's client connections (for requests hyper serves) and raw
//! sockets (for the fast path, which drives them on the client connection's task).

use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::BytesMut;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The sending half of one upstream HTTP/1.1 connection driven by hyper.
pub(crate) type Sender = hyper::client::conn::http1::SendRequest<Incoming>;

/// One upstream connection the fast path drives itself, with its read buffer.
#[derive(Debug)]
pub(crate) struct Upstream {
    pub(crate) stream: TcpStream,
    pub(crate) buf: BytesMut,
}

/// A pooled connection that can tell whether it is still worth reusing.
pub(crate) trait Idle {
    fn usable(&mut self) -> bool;
}

impl Idle for Sender {
    fn usable(&mut self) -> bool {
        !self.is_closed()
    }
}

impl Idle for Upstream {
    /// A target that closed an idle connection shows as read readiness; only then is a
    /// syscall spent finding out (a live idle connection has nothing to read).
    fn usable(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        match self.stream.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                matches!(self.stream.try_read(&mut probe),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            }
        }
    }
}

/// Beyond this many idle connections per worker and target, returned ones are closed.
const MAX_IDLE: usize = 512;

/// A target's idle connections, per worker.
#[derive(Debug)]
pub(crate) struct Pools<T>(Box<[Mutex<Vec<T>>]>);

impl<T: Idle> Pools<T> {
    pub(crate) fn new(workers: usize) -> Self {
        Pools(
            (0..workers.max(1))
                .map(|_| Mutex::new(Vec::new()))
                .collect(),
        )
    }

    fn slot(&self, worker: usize) -> &Mutex<Vec<T>> {
        &self.0[worker % self.0.len()]
    }

    /// The most recently returned connection that is still open (warmest first).
    pub(crate) fn checkout(&self, worker: usize) -> Option<T> {
        let mut idle = self.slot(worker).lock().unwrap_or_else(|e| e.into_inner());
        while let Some(mut conn) = idle.pop() {
            if conn.usable() {
                return Some(conn);
            }
        }
        None
    }

    /// Gives a connection back once its response has been read in full.
    pub(crate) fn checkin(&self, worker: usize, mut conn: T) {
        if !conn.usable() {
            return;
        }
        let mut idle = self.slot(worker).lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }
}

/// Why a new upstream connection could not be made.
#[derive(Debug)]
pub(crate) enum ConnectError {
    /// Not established within the connect timeout (→ 504).
    Timeout,
    /// Refused, unreachable, or the handshake failed (→ 502).
    Failed(String),
}

/// Opens a TCP connection to `host:port` carrying the socket mark `mark`
/// ([`model::lb::socket_mark`]), so that targets' security groups can recognise the load
/// balancer. Setting a mark needs CAP_NET_ADMIN: without it the connection is opened
/// unmarked (the packet filter, which needs the same privilege, is then not running
/// either). A host that is a name, not an address, is resolved and connected unmarked.
pub(crate) async fn open_marked(host: &str, port: u16, mark: u32) -> std::io::Result<TcpStream> {
    let Ok(ip) = host.parse::<std::net::IpAddr>() else {
        return TcpStream::connect((host, port)).await;
    };
    let socket = if ip.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    if let Err(error) = socket2::SockRef::from(&socket).set_mark(mark) {
        tracing::trace!(%error, "The connection to a target is not marked.");
    }
    socket.connect(std::net::SocketAddr::new(ip, port)).await
}

/// Opens a TCP connection to `host:port` with the socket mark `mark`.
async fn dial(
    authority: &http::uri::Authority,
    timeout: Duration,
    mark: u32,
) -> Result<TcpStream, ConnectError> {
    let host = authority.host().trim_matches(['[', ']']);
    let port = authority.port_u16().unwrap_or(80);
    let stream = match tokio::time::timeout(timeout, open_marked(host, port, mark)).await {
        Err(_) => return Err(ConnectError::Timeout),
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::TimedOut => {
            return Err(ConnectError::Timeout)
        }
        Ok(Err(error)) => return Err(ConnectError::Failed(error.to_string())),
        Ok(Ok(stream)) => stream,
    };
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Opens a connection for the fast path.
pub(crate) async fn connect_raw(
    authority: &http::uri::Authority,
    timeout: Duration,
    mark: u32,
) -> Result<Upstream, ConnectError> {
    Ok(Upstream {
        stream: dial(authority, timeout, mark).await?,
        buf: BytesMut::new(),
    })
}

/// Opens a connection and drives it with hyper on the current (worker) runtime.
pub(crate) async fn connect(
    authority: &http::uri::Authority,
    timeout: Duration,
    mark: u32,
) -> Result<Sender, ConnectError> {
    let stream = dial(authority, timeout, mark).await?;
    let (sender, conn) = hyper::client::conn::http1::Builder::new()
        .writev(false)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|e| ConnectError::Failed(e.to_string()))?;
    tokio::spawn(async move {
        if let Err(error) = conn.await {
            tracing::debug!(%error, "Upstream connection ended with an error.");
        }
    });
    Ok(sender)
}
