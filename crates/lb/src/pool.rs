//! Idle keep-alive connections to one target, one stack per HTTP worker thread, so a
//! connection is only ever reused by the thread whose runtime drives it (no cross-thread
//! wake-ups) and a checkout is a pop under an uncontended lock, with no hashing.

use std::sync::Mutex;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The sending half of one upstream HTTP/1.1 connection.
pub(crate) type Sender = hyper::client::conn::http1::SendRequest<Incoming>;

/// Beyond this many idle connections per worker and target, returned ones are closed.
const MAX_IDLE: usize = 512;

/// A target's idle connections, per worker.
#[derive(Debug)]
pub(crate) struct Pools(Box<[Mutex<Vec<Sender>>]>);

impl Pools {
    pub(crate) fn new(workers: usize) -> Self {
        Pools(
            (0..workers.max(1))
                .map(|_| Mutex::new(Vec::new()))
                .collect(),
        )
    }

    fn slot(&self, worker: usize) -> &Mutex<Vec<Sender>> {
        &self.0[worker % self.0.len()]
    }

    /// The most recently returned connection that is still open (warmest first).
    pub(crate) fn checkout(&self, worker: usize) -> Option<Sender> {
        let mut idle = self.slot(worker).lock().unwrap_or_else(|e| e.into_inner());
        while let Some(sender) = idle.pop() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    /// Gives a connection back once its response has been read in full.
    pub(crate) fn checkin(&self, worker: usize, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.slot(worker).lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(sender);
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

/// Opens a connection to `host:port` and drives it on the current (worker) runtime.
pub(crate) async fn connect(
    authority: &http::uri::Authority,
    timeout: Duration,
) -> Result<Sender, ConnectError> {
    let host = authority.host().trim_matches(['[', ']']);
    let port = authority.port_u16().unwrap_or(80);
    let stream = match tokio::time::timeout(timeout, TcpStream::connect((host, port))).await {
        Err(_) => return Err(ConnectError::Timeout),
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::TimedOut => {
            return Err(ConnectError::Timeout)
        }
        Ok(Err(error)) => return Err(ConnectError::Failed(error.to_string())),
        Ok(Ok(stream)) => stream,
    };
    let _ = stream.set_nodelay(true);
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
