//! `lb` is the load balancer data plane: it serves the listeners, rules and target groups
//! of a [`model::lb::Config`] — HTTP listeners (application load balancers) with AWS rule
//! semantics and a keep-alive upstream pool, TCP pass-through listeners (network load
//! balancers) — runs active health checks, honours draining, and reports target health.
//!
//! It learns its configuration from a [`ConfigSource`] (the `stevedore` binary implements
//! one over the store; [`WatchSource`] is the in-memory one) and applies every change
//! live: the hot path reads an immutable routing table swapped atomically (arc-swap), so
//! requests never take a lock and established connections survive a change.
//!
//! ```no_run
//! # async fn example(config: model::lb::Config) {
//! use std::sync::Arc;
//! let source = Arc::new(lb::WatchSource::new(config));
//! let plane = lb::DataPlane::new(lb::Options::default());
//! plane.run(source, async { let _ = tokio::signal::ctrl_c().await; }).await.expect("workers start");
//! # }
//! ```

#![forbid(unsafe_code)]

pub mod alb_metrics;
mod balance;
pub mod describe;
mod error;
pub mod framing;
pub mod health;
mod http1;
pub mod matching;
mod plane;
mod pool;
mod proxy;
mod source;
mod sticky;
mod table;
mod tcp;
mod workers;

pub use alb_metrics::{MetricPoint, MetricsSink, PointValue};
pub use error::LbError;
pub use plane::{BindFailure, BoundListener, DataPlane, Options, PlaneStatus};
pub use proxy::Timeouts;
pub use source::{ConfigSource, WatchSource};
