//! `ecs` owns the Amazon ECS API: each operation's decoding, validation and effect on the
//! state store, and the mapping of its errors to AWS's exceptions.
//!
//! It must not speak HTTP or SigV4 (the binary does, through `wire`), and must not reach
//! into other services: what it needs from them it reads from the store.

mod account_settings;
mod attributes;
pub mod channel;
mod clusters;
mod container_instances;
mod decode;
mod error;
mod objects;
mod pagination;
mod services;
mod tags;
mod task_definitions;
mod tasks;
mod view;

pub use channel::Session;
pub use error::EcsError;
pub use services::balancing::{Registration, TargetGroupView, TargetGroups, TargetState};
pub use tasks::fargate::{FargateCapacity, TaskUsage, MARKER_ATTRIBUTE, SANDBOX_ATTRIBUTE};

use model::ecs::arn::ArnScope;
use objects::Objects;
use serde::Serialize;
use std::sync::Arc;
use store::Store;

/// Who is calling, as established by SigV4.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The principal's ARN (the account root for the admin key).
    pub principal_arn: String,
}

/// The ECS service over a store.
#[derive(Clone)]
pub struct Ecs {
    objects: Objects,
    scope: ArnScope,
    /// Where agents open their channel (DiscoverPollEndpoint's answer).
    endpoint: String,
    views: Arc<
        std::sync::Mutex<
            std::collections::HashMap<String, Arc<tokio::sync::Mutex<view::ClusterView>>>,
        >,
    >,
    channels: Arc<channel::Channels>,
    controller: Arc<services::controller::ControllerState>,
    balancers: Option<Arc<dyn services::balancing::TargetGroups>>,
    /// The source of hidden Fargate capacity (none: Fargate launches are refused).
    fargate: Option<Arc<dyn tasks::fargate::FargateCapacity>>,
    /// Each task's last status as of the last `/metrics` scrape (see `tasks::counts`).
    task_statuses: Arc<tasks::counts::StatusCache>,
    /// Service controller rounds still to panic on purpose (tests of supervision).
    #[cfg(any(test, feature = "fault-injection"))]
    round_panics: Arc<std::sync::atomic::AtomicUsize>,
}

macro_rules! operations {
    ($($name:ident => $handler:path),* $(,)?) => {
        /// Every ECS operation Stevedore serves.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Operation { $(
            #[doc = concat!("`", stringify!($name), "`")]
            $name,
        )* }

        impl Operation {
            /// Looks an operation up by its AWS name.
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $(stringify!($name) => Some(Self::$name),)* _ => None }
            }
            /// The AWS name.
            pub fn name(self) -> &'static str {
                match self { $(Self::$name => stringify!($name),)* }
            }
            /// Every operation.
            pub const ALL: &'static [Operation] = &[$(Self::$name),*];
        }

        impl Ecs {
            async fn execute(&self, op: Operation, body: &[u8], caller: &Caller) -> Result<Vec<u8>, EcsError> {
                match op { $(
                    Operation::$name => respond(&$handler(self, decode::parse_request(body)?, caller).await?),
                )* }
            }
        }
    };
}

operations! {
    CreateCluster => clusters::create_cluster,
    DescribeClusters => clusters::describe_clusters,
    ListClusters => clusters::list_clusters,
    UpdateCluster => clusters::update_cluster,
    UpdateClusterSettings => clusters::update_cluster_settings,
    DeleteCluster => clusters::delete_cluster,
    RegisterTaskDefinition => task_definitions::register_task_definition,
    DescribeTaskDefinition => task_definitions::describe_task_definition,
    ListTaskDefinitions => task_definitions::list_task_definitions,
    ListTaskDefinitionFamilies => task_definitions::list_task_definition_families,
    DeregisterTaskDefinition => task_definitions::deregister_task_definition,
    DeleteTaskDefinitions => task_definitions::delete_task_definitions,
    RegisterContainerInstance => container_instances::register_container_instance,
    DeregisterContainerInstance => container_instances::deregister_container_instance,
    DescribeContainerInstances => container_instances::describe_container_instances,
    ListContainerInstances => container_instances::list_container_instances,
    UpdateContainerInstancesState => container_instances::update_container_instances_state,
    PutAttributes => attributes::put_attributes,
    DeleteAttributes => attributes::delete_attributes,
    ListAttributes => attributes::list_attributes,
    TagResource => tags::tag_resource,
    UntagResource => tags::untag_resource,
    ListTagsForResource => tags::list_tags_for_resource,
    ListAccountSettings => account_settings::list_account_settings,
    PutAccountSetting => account_settings::put_account_setting,
    PutAccountSettingDefault => account_settings::put_account_setting_default,
    RunTask => tasks::launch::run_task,
    StartTask => tasks::launch::start_task,
    StopTask => tasks::report::stop_task,
    DescribeTasks => tasks::query::describe_tasks,
    ListTasks => tasks::query::list_tasks,
    SubmitTaskStateChange => tasks::report::submit_task_state_change,
    SubmitContainerStateChange => tasks::report::submit_container_state_change,
    DiscoverPollEndpoint => clusters::discover_poll_endpoint,
    CreateService => services::api::create_service,
    UpdateService => services::api::update_service,
    DeleteService => services::api::delete_service,
    DescribeServices => services::api::describe_services,
    ListServices => services::api::list_services,
    PutClusterCapacityProviders => clusters::put_cluster_capacity_providers,
}

fn respond<T: Serialize>(out: &T) -> Result<Vec<u8>, EcsError> {
    serde_json::to_vec(out).map_err(|e| {
        EcsError::Store(store::StoreError::Backend(format!(
            "response encoding failed: {e}"
        )))
    })
}

impl Ecs {
    /// An ECS service whose ARNs use `scope`, over `store`; agents are told to open their
    /// channel at `endpoint` (e.g. `http://127.0.0.1:4747/`).
    pub fn new(store: Arc<dyn Store>, scope: ArnScope, endpoint: String) -> Self {
        Self {
            objects: Objects::new(store),
            scope,
            endpoint,
            views: Arc::default(),
            channels: Arc::default(),
            controller: Arc::default(),
            balancers: None,
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
            return Err(EcsError::UnknownOperation(format!(
                "Operation {operation} is not supported by this Amazon ECS endpoint."
            )));
        };
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
mod supervision_tests;
#[cfg(test)]
mod tests;
