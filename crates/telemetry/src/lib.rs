//! What the server tells about itself.
//!
//! - [`names`]: every metric's name, kind and help text, as enum variants named after
//!   the series they produce (`stevedore_<subsystem>_<name>_<unit>[_total]`);
//! - [`events`]: typed events whose `emit()` writes the log line and the metric together,
//!   with handles resolved ahead of the hot paths;
//! - [`exporter`]: the process-wide Prometheus recorder and the text it renders for
//!   `GET /metrics`;
//! - [`supervise`]: named background loops where a panic costs one round, never the loop,
//!   and that all stop when the shutdown token fires.
//!
//! This crate is the only place allowed to call the `metrics` macros (see `clippy.toml`):
//! everything else goes through a named event, so a series cannot be misspelt or
//! half-labelled at a call site.
#![allow(
    clippy::disallowed_macros,
    reason = "the telemetry crate is where the raw metric macros are wrapped into typed events"
)]

pub mod events;
pub mod exporter;
pub mod names;
pub mod supervise;

pub use events::{
    AgentSession, ApiRequest, ControllerAction, LbRequests, PlacementDecided, RegistryBytes,
    StoreCommit, StoreMetrics, TaskCounts,
};
pub use exporter::{install, render, CONTENT_TYPE};
pub use names::{LoopName, Metric};
pub use supervise::{supervise, supervise_round, supervise_task};
pub use tokio_util::sync::CancellationToken;
