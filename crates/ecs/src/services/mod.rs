//! Services: the API (CreateService, UpdateService, DeleteService, DescribeServices,
//! ListServices) and the controller that keeps each service's tasks where `reconcile`
//! says they should be.
//!
//! A service is one stored record (`ecs/service/<cluster>/<name>` → [`StoredService`]):
//! the API shape with its deployments and newest events, plus the history the controller
//! needs for rollbacks. Counts are never trusted from the record: each controller round
//! recomputes them from the tasks themselves, so a crash between launching tasks and
//! recording them repeats nothing.

pub(crate) mod api;
pub(crate) mod controller;
pub(crate) mod history;
pub(crate) mod history_api;
pub(crate) mod plan;
pub(crate) mod record;
#[cfg(test)]
mod scenarios;
mod target_plan;
pub mod targets;
pub(crate) mod task_sets;
pub(crate) mod unsupported;

use model::ecs::shapes::{Deployment, Service, ServiceEvent};
use serde::{Deserialize, Serialize};

/// Key of a service.
pub(crate) fn service_key(cluster: &str, name: &str) -> String {
    format!("ecs/service/{cluster}/{name}")
}
/// Prefix of a cluster's services.
pub(crate) fn service_prefix(cluster: &str) -> String {
    format!("ecs/service/{cluster}/")
}
/// Prefix of every service.
pub(crate) const ALL_SERVICES: &str = "ecs/service/";

/// The most events a service keeps (DescribeServices shows the newest 100).
pub(crate) const MAX_EVENTS: usize = 100;

/// A stored service.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct StoredService {
    /// The service as DescribeServices shows it.
    pub service: Service,
    /// Hash of the CreateService request (idempotent retries with the same parameters).
    #[serde(default)]
    pub request_hash: String,
    /// Deployments that completed, oldest first: (id, task definition ARN). A circuit
    /// breaker rollback returns to the newest one.
    #[serde(default)]
    pub completed: Vec<(String, String)>,
    /// Whether the last controller round found the service steady (events say so once).
    #[serde(default)]
    pub steady: bool,
    /// When it became INACTIVE (epoch seconds): it leaves the store a window later (see
    /// `retention`). `None` while it is ACTIVE or DRAINING.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inactive_at: Option<f64>,
    /// Service deployments and revisions (ListServiceDeployments and friends).
    #[serde(default)]
    pub history: history::History,
    /// CreateTaskSet client tokens and the task set each created (idempotent retries).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub task_set_tokens: Vec<(String, String)>,
    /// The launch type it was created with (none when created with a capacity provider
    /// strategy): what an UpdateService with an empty strategy returns it to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_launch_type: Option<model::ecs::shapes::LaunchType>,
}

impl StoredService {
    /// The service's name.
    pub fn name(&self) -> &str {
        self.service.service_name.as_deref().unwrap_or_default()
    }

    /// Makes `d` the PRIMARY deployment of a new service deployment, recording the
    /// revision it rolls out.
    pub fn deploy(&mut self, scope: &model::ecs::arn::ArnScope, d: Deployment, at: f64) {
        api::push_primary(&mut self.service, d.clone());
        self.history.started(scope, &self.service, &d, at);
        self.history.refresh(&mut self.service);
    }

    /// Adds an event (newest first), keeping the newest [`MAX_EVENTS`].
    pub fn event(&mut self, message: String, at: f64) {
        let events = self.service.events.get_or_insert_with(Vec::new);
        events.insert(
            0,
            ServiceEvent {
                id: Some(uuid::Uuid::new_v4().to_string()),
                created_at: Some(at),
                message: Some(message),
            },
        );
        events.truncate(MAX_EVENTS);
    }
}

/// A new deployment id, shaped like ECS's (`ecs-svc/` and 19 digits).
pub(crate) fn deployment_id() -> String {
    let n = uuid::Uuid::new_v4().as_u128() % 10_000_000_000_000_000_000;
    format!("ecs-svc/{n:019}")
}
