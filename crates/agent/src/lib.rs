//! `agent` is the instance side of Stevedore: what runs on (or simulates) a container
//! instance. It owns the signed ECS API client ([`api`]), the agent communication channel
//! client ([`channel`]), credential lookup ([`credentials`]), joining with an instance identity
//! ([`instance_identity`]), hollow instances
//! ([`hollow`]) that register and report like real ones without running containers, and
//! the real agent: the Docker runtime behind a narrow trait ([`runtime`]), registry
//! tokens for images on Stevedore's own registry ([`registry_auth`]), one actor per
//! task ([`engine`]), the task metadata endpoint v4 ([`metadata`]), health-check verdicts bound upstream ([`health`]),
//! the built-in pause image of awsvpc tasks ([`pause`]), the durable state file ([`state`]), task role credentials in memory ([`task_credentials`]) and the NAT rule that serves them at 169.254.170.2 ([`credentials_nat`]) and the registration/channel
//! loop that ties them together ([`instance`]).
//!
//! It reaches the control plane only over the wire protocols (ECS JSON 1.1 and the ACS
//! WebSocket); it must never depend on `store`, `ecs` or `registry`.
#![forbid(unsafe_code)]

pub mod api;
pub mod channel;
pub mod config_file;
pub mod credentials;
pub mod credentials_nat;
pub mod engine;
pub mod health;
pub mod hollow;
pub mod instance;
pub mod instance_identity;
pub mod metadata;
pub mod modes;
pub mod pause;
pub mod registry_auth;
pub mod runtime;
mod sign;
pub mod state;
pub mod task_credentials;
pub mod tls;
pub mod tls_pin;
pub mod usage;

pub use api::{ApiClient, ApiConfig, ApiError};
pub use credentials::{Credentials, CredentialsError};
