//! The data plane's errors.

use std::net::SocketAddr;

/// What can go wrong serving load balancers.
#[derive(Debug, thiserror::Error)]
pub enum LbError {
    /// A listener's address could not be bound.
    #[error("cannot bind listener {listener_arn} on {addr}: {source}")]
    Bind {
        /// The listener.
        listener_arn: String,
        /// The address it wanted.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A target's `host:port` is not a valid URI authority.
    #[error("target {host}:{port} is not a valid address: {source}")]
    TargetAddress {
        /// The configured host.
        host: String,
        /// The port.
        port: u16,
        /// Why.
        source: http::uri::InvalidUri,
    },
    /// The HTTP worker threads could not start.
    #[error("cannot start the HTTP worker threads: {0}")]
    Workers(std::io::Error),
}
