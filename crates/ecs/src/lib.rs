//! `ecs` owns the Amazon ECS API: each operation's decoding, validation and effect on the
//! state store, and the mapping of its errors to AWS's exceptions.
//!
//! It must not speak HTTP or SigV4 (the binary does, through `wire`), and must not reach
//! into other services: what it needs from them it reads from the store.

mod account_settings;
mod attributes;
mod authz;
pub mod capacity_providers;
pub mod capacity_scaling;
pub mod channel;
mod clusters;
mod container_instances;
mod decode;
mod error;
mod instance_types;
mod objects;
mod operations;
pub mod ownership;
mod pagination;
pub mod presence;
mod retention;
mod services;
mod tags;
mod task_definitions;
mod tasks;
mod view;

pub use channel::Session;
pub use error::EcsError;
pub use operations::Operation;
pub use retention::{Retention, Swept, DEFAULT_STOPPED_TASK_RETENTION};
pub use services::targets::{Registration, TargetGroupView, TargetGroups, TargetState};
pub use tasks::awsvpc::{Network, Networks, TaskEni};
pub use tasks::enis::{GuardedInstance, InterfaceInUse, SECURITY_GROUPS_ATTRIBUTE};
pub use tasks::fargate::{FargateCapacity, TaskUsage, MARKER_ATTRIBUTE, SANDBOX_ATTRIBUTE};
pub use tasks::provisioning::{WaitingTask, PROVISIONING_TIMEOUT};
pub use tasks::usage;
pub use wire::Caller;

use model::ecs::arn::ArnScope;
use objects::Objects;
use std::sync::Arc;
use store::Store;

/// The ECS service over a store.
#[derive(Clone)]
pub struct Ecs {
    objects: Objects,
    /// Instance keys this process wrote, fed by a commit hook on `objects`.
    changed: Arc<objects::ChangedInstances>,
    scope: ArnScope,
    /// Where agents open their channel (DiscoverPollEndpoint's answer).
    endpoint: String,
    views: Arc<
        std::sync::Mutex<
            std::collections::HashMap<String, Arc<tokio::sync::Mutex<view::ClusterView>>>,
        >,
    >,
    channels: Arc<channel::Channels>,
    presence: Arc<presence::PresenceState>,
    controller: Arc<services::controller::ControllerState>,
    balancers: Option<Arc<dyn services::targets::TargetGroups>>,
    /// The Auto Scaling groups capacity providers name (none: no such providers).
    groups: Option<Arc<dyn capacity_providers::AutoScalingGroups>>,
    /// EC2's subnets and groups, which awsvpc launches are checked against (none: the
    /// server-wide address pool, groups unchecked).
    networks: Option<Arc<dyn tasks::awsvpc::Networks>>,
    /// The source of hidden Fargate capacity (none: Fargate launches are refused).
    fargate: Option<Arc<dyn tasks::fargate::FargateCapacity>>,
    /// Each task's last status as of the last `/metrics` scrape (see `tasks::counts`).
    task_statuses: Arc<tasks::counts::StatusCache>,
    /// Service controller rounds still to panic on purpose (tests of supervision).
    #[cfg(any(test, feature = "fault-injection"))]
    round_panics: Arc<std::sync::atomic::AtomicUsize>,
}

impl Ecs {
    /// An ECS service whose ARNs use `scope`, over `store`; agents are told to open their
    /// channel at `endpoint` (e.g. `http://127.0.0.1:4747/`).
    pub fn new(store: Arc<dyn Store>, scope: ArnScope, endpoint: String) -> Self {
        let changed = Arc::new(objects::ChangedInstances::default());
        Self {
            objects: Objects::new(store).with_hook(changed.hook()),
            changed,
            scope,
            endpoint,
            views: Arc::default(),
            channels: Arc::default(),
            presence: Arc::default(),
            controller: Arc::default(),
            balancers: None,
            groups: None,
            networks: None,
            fargate: None,
            task_statuses: Arc::default(),
            #[cfg(any(test, feature = "fault-injection"))]
            round_panics: Arc::default(),
        }
    }

    /// Makes the next `rounds` service controller rounds panic at their start, to prove
    /// that supervision costs a round and not the loop.
    #[cfg(any(test, feature = "fault-injection"))]
    pub fn inject_controller_panics(&self, rounds: usize) {
        self.round_panics
            .store(rounds, std::sync::atomic::Ordering::SeqCst);
    }

    /// Panics if a test asked this controller round to (a no-op in a normal build).
    fn controller_fault_point(&self) {
        #[cfg(any(test, feature = "fault-injection"))]
        {
            use std::sync::atomic::Ordering;
            let take = |n: usize| n.checked_sub(1);
            if self
                .round_panics
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, take)
                .is_ok()
            {
                panic!("Injected fault: a service controller round panics.");
            }
        }
    }

    /// Runs the operation named `operation` on a JSON `body`; returns the JSON response.
    pub async fn handle(
        &self,
        operation: &str,
        body: &[u8],
        caller: &Caller,
    ) -> Result<Vec<u8>, EcsError> {
        let Some(op) = Operation::from_name(operation) else {
            return Err(EcsError::UnknownOperation(operation.to_owned()));
        };
        self.run(op, body, caller).await
    }

    /// Runs `op` on a JSON `body`, then wakes the service controller when the change may
    /// change what a service should do.
    async fn run(&self, op: Operation, body: &[u8], caller: &Caller) -> Result<Vec<u8>, EcsError> {
        let out = self.execute(op, body, caller).await;
        // What agents and operators change may change what a service should do.
        if out.is_ok()
            && matches!(
                op,
                Operation::SubmitTaskStateChange
                    | Operation::SubmitContainerStateChange
                    | Operation::UpdateContainerInstancesState
                    | Operation::DeregisterContainerInstance
                    | Operation::RegisterContainerInstance
                    | Operation::StopTask
                    | Operation::UpdateTaskProtection
            )
        {
            self.wake_services();
        }
        out
    }

    /// Lets services register their tasks with load balancers through `groups`.
    pub fn with_target_groups(mut self, groups: Arc<dyn TargetGroups>) -> Self {
        self.balancers = Some(groups);
        self
    }

    /// Capacity providers name the Auto Scaling groups `groups` knows.
    #[must_use]
    pub fn with_auto_scaling_groups(
        mut self,
        groups: Arc<dyn capacity_providers::AutoScalingGroups>,
    ) -> Self {
        self.groups = Some(groups);
        self
    }

    /// Checks awsvpc launches against EC2 and gives their interfaces addresses of their
    /// subnets.
    pub fn set_networks(&mut self, networks: Arc<dyn tasks::awsvpc::Networks>) {
        self.networks = Some(networks);
    }

    /// Runs Fargate tasks on the hidden capacity `provisioner` supplies.
    pub fn with_fargate(mut self, provisioner: Arc<dyn FargateCapacity>) -> Self {
        self.fargate = Some(provisioner);
        self
    }

    /// The ARN scope (region and account).
    pub fn scope(&self) -> &ArnScope {
        &self.scope
    }
}

/// Epoch seconds now, with millisecond precision as AWS returns.
pub(crate) fn now() -> f64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_millis() as f64) / 1000.0
}

/// The cluster a request names, defaulting to `default` as ECS does.
pub(crate) fn cluster_name(cluster: Option<&str>) -> &str {
    match cluster {
        Some(c) if !c.is_empty() => model::ecs::arn::short_name(c),
        _ => "default",
    }
}

#[cfg(test)]
mod ownership_tests;
#[cfg(test)]
mod retention_tests;
#[cfg(test)]
mod supervision_tests;
#[cfg(test)]
mod tests;
