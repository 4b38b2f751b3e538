//! `autoscaling` owns EC2 Auto Scaling: groups with their instances and scaling
//! activities, durable in the state store; the group controller that makes machines
//! follow the records ([`controller`]); the instance provider contract that turns an
//! instance record into a machine running `stevedore agent` ([`provider`]); and EC2
//! launch templates ([`launch_templates`]), which groups launch from.
//!
//! It speaks the AWS query protocol's decoded form ([`wire::query::QueryParams`] in, XML
//! out, namespace [`XML_NAMESPACE`]) but no HTTP or SigV4: the binary does that, and
//! supplies the provider (local agents, hollow instances) and the termination gate
//! (ECS managed draining). It must not depend on other services.
//!
//! Times are epoch milliseconds throughout.

#![forbid(unsafe_code)]

pub mod controller;
mod error;
mod groups;
mod hooks;
pub mod launch_templates;
pub mod provider;
mod state;

pub use controller::{NoGate, TerminationGate};
pub use error::AutoScalingError;
pub use model::autoscaling::operations::Operation;
pub use provider::{InstanceProvider, InstanceSpec, MachineState, ProviderError, RecordOnly};
pub use state::{
    Activity, GroupInstance, GroupTag, Lifecycle, LifecycleAction, LifecycleHook, PendingHook,
    StoredGroup, TemplateRef,
};

use model::ecs::arn::ArnScope;
use std::sync::Arc;
use std::time::Duration;
use wire::query::QueryParams;
use wire::{Access, Call, Input, OperationTable, Protocol, Service, ServiceError, ServiceSpec};

/// The query `Version` of the Auto Scaling API.
pub const API_VERSION: &str = "2011-01-01";
/// The XML namespace of its responses.
pub const XML_NAMESPACE: &str = "http://autoscaling.amazonaws.com/doc/2011-01-01/";
/// The SigV4 signing name.
pub const SIGNING_NAME: &str = "autoscaling";

/// A source of "now" in epoch milliseconds.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The Auto Scaling service over a store.
#[derive(Clone)]
pub struct AutoScaling {
    objects: store::Objects<AutoScalingError>,
    scope: ArnScope,
    clock: Clock,
    provider: Arc<dyn InstanceProvider>,
    gate: Arc<dyn TerminationGate>,
    wakeups: Arc<tokio::sync::Notify>,
    interval: Duration,
}

impl AutoScaling {
    /// Auto Scaling in `scope` over `store`, with record-only instances, no gate, the
    /// wall clock and a controller round every second.
    pub fn new(store: Arc<dyn store::Store>, scope: ArnScope) -> Self {
        Self {
            objects: store::Objects::new(store),
            scope,
            clock: Arc::new(wall_clock_ms),
            provider: Arc::new(RecordOnly),
            gate: Arc::new(NoGate),
            wakeups: Arc::new(tokio::sync::Notify::new()),
            interval: Duration::from_secs(1),
        }
    }

    /// The same service launching machines through `provider`.
    #[must_use]
    pub fn with_provider(mut self, provider: Arc<dyn InstanceProvider>) -> Self {
        self.provider = provider;
        self
    }

    /// The same service asking `gate` before terminating a machine.
    #[must_use]
    pub fn with_gate(mut self, gate: Arc<dyn TerminationGate>) -> Self {
        self.gate = gate;
        self
    }

    /// The same service reading time from `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The longest wait between two controller rounds.
    #[must_use]
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Asks the controller for a round now.
    pub fn wake(&self) {
        self.wakeups.notify_one();
    }

    pub(crate) fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    async fn execute(&self, op: Operation, q: &QueryParams) -> Result<String, AutoScalingError> {
        use Operation as Op;
        let v = q.view();
        match op {
            Op::CreateAutoScalingGroup => self.create_auto_scaling_group(&v).await,
            Op::DescribeAutoScalingGroups => self.describe_auto_scaling_groups(&v).await,
            Op::UpdateAutoScalingGroup => self.update_auto_scaling_group(&v).await,
            Op::DeleteAutoScalingGroup => self.delete_auto_scaling_group(&v).await,
            Op::SetDesiredCapacity => self.set_desired_capacity_op(&v).await,
            Op::DescribeAutoScalingInstances => self.describe_auto_scaling_instances(&v).await,
            Op::TerminateInstanceInAutoScalingGroup => self.terminate_instance_op(&v).await,
            Op::SetInstanceProtection => self.set_instance_protection_op(&v).await,
            Op::DescribeScalingActivities => self.describe_scaling_activities(&v).await,
            Op::PutLifecycleHook => self.put_lifecycle_hook(&v).await,
            Op::DescribeLifecycleHooks => self.describe_lifecycle_hooks(&v).await,
            Op::DeleteLifecycleHook => self.delete_lifecycle_hook(&v).await,
            Op::CompleteLifecycleAction => self.lifecycle_action(&v, true).await,
            Op::RecordLifecycleActionHeartbeat => self.lifecycle_action(&v, false).await,
            other => Err(AutoScalingError::NotImplemented(other.name())),
        }
    }

    /// Runs `op` on `params`; the XML response document with `request_id`. Operations
    /// without output (Create, Update, Delete, SetDesiredCapacity, ...) still answer an
    /// empty result element, as AWS does not, but botocore accepts both.
    pub async fn run(
        &self,
        op: Operation,
        params: &QueryParams,
        request_id: &str,
    ) -> Result<String, AutoScalingError> {
        let result = self.execute(op, params).await?;
        // Operations whose model has an (empty) output structure answer an empty result
        // element: botocore's parser requires it for them.
        let empty_output = matches!(
            op,
            Operation::PutLifecycleHook
                | Operation::DeleteLifecycleHook
                | Operation::CompleteLifecycleAction
                | Operation::RecordLifecycleActionHeartbeat
        );
        let result = (!result.is_empty() || empty_output).then_some(result.as_str());
        Ok(wire::xml::envelope(
            XML_NAMESPACE,
            op.name(),
            request_id,
            result,
        ))
    }
}

impl Service for AutoScaling {
    type Operation = Operation;

    const SPEC: ServiceSpec = ServiceSpec {
        name: "autoscaling",
        title: "Auto Scaling 2011-01-01",
        signing_name: SIGNING_NAME,
        protocols: &[Protocol::AwsQuery {
            version: API_VERSION,
        }],
    };

    const OPERATIONS: OperationTable<Operation> = OperationTable {
        all: Operation::ALL,
        from_name: Operation::from_name,
        name: Operation::name,
        errors: Operation::errors,
    };

    async fn authorize(&self, op: Operation, call: Call<'_>) -> Result<Vec<Access>, ServiceError> {
        // Describe operations have no resource type; the others act on the group named.
        let resource = match call.input {
            Input::Query(q) if !op.name().starts_with("Describe") => q
                .get("AutoScalingGroupName")
                .map(|n| {
                    format!(
                        "arn:aws:autoscaling:{}:{}:autoScalingGroup:*:autoScalingGroupName/{n}",
                        self.scope.region, self.scope.account_id
                    )
                })
                .unwrap_or_else(|| "*".to_owned()),
            _ => "*".to_owned(),
        };
        Ok(vec![Access::new("autoscaling", op.name(), resource)])
    }

    async fn handle(&self, op: Operation, call: Call<'_>) -> Result<Vec<u8>, ServiceError> {
        let Input::Query(params) = call.input else {
            return Err(ServiceError::NotImplemented);
        };
        match self.run(op, params, call.request_id).await {
            Ok(xml) => Ok(xml.into_bytes()),
            Err(AutoScalingError::NotImplemented(_)) => Err(ServiceError::NotImplemented),
            Err(e) => Err(ServiceError::Aws(e.to_aws())),
        }
    }
}

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
