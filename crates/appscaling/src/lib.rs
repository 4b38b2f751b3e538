//! `appscaling` owns Application Auto Scaling (AWS JSON 1.1, `AnyScaleFrontendService`)
//! for ECS services (`ecs` / `service/<cluster>/<service>` / `ecs:service:DesiredCount`):
//! scalable targets, target tracking and step scaling policies, scheduled actions,
//! scaling activities and tags, kept in the region's state store under `appscaling/`.
//!
//! Policies act when a CloudWatch alarm names them: the alarm evaluator hands each
//! action to a [`TriggerSender`] (the binary adapts CloudWatch's actions port to it), and
//! [`AppScaling::run`] executes the queued triggers and the scheduled actions. What this
//! crate needs of other services goes through two narrow ports the binary implements:
//! [`EcsServices`] (read a service's counts, set its desired count through ECS's own
//! UpdateService) and [`MetricAlarms`] (create and delete the alarms target tracking
//! owns). It must not speak HTTP or SigV4, nor reach into other services' state.

mod error;
pub mod math;
mod policies;
mod records;
pub mod scaling;
pub mod schedule;
mod scheduled;
mod targets;

pub use error::AppScalingError;
pub use model::appscaling::operations::Operation;
pub use scaling::{trigger_channel, AlarmTrigger, TriggerReceiver, TriggerSender};

use model::ecs::arn::ArnScope;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use wire::{
    Access, Call, Input, JsonVersion, OperationTable, Protocol, Service, ServiceError, ServiceSpec,
};

/// The store layer, answering this service's errors.
pub type ScalingObjects = store::Objects<AppScalingError>;

/// An ECS service as scaling sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceCounts {
    /// `desiredCount`.
    pub desired: i64,
    /// `runningCount`.
    pub running: i64,
    /// Whether a deployment is in progress (scale-in waits for it, as AWS does).
    pub deploying: bool,
}

/// What scaling needs of ECS. Errors are messages for the scaling activity.
#[async_trait::async_trait]
pub trait EcsServices: Send + Sync {
    /// The counts of `service` in `cluster`; `None` when there is no such ACTIVE service.
    async fn counts(&self, cluster: &str, service: &str) -> Result<Option<ServiceCounts>, String>;
    /// Sets the desired count of `service` as UpdateService does (its validation holds).
    async fn set_desired_count(
        &self,
        cluster: &str,
        service: &str,
        count: i64,
    ) -> Result<(), String>;
}

/// One alarm target tracking creates (CloudWatch's PutMetricAlarm members).
#[derive(Clone, Debug, PartialEq)]
pub struct AlarmSpec {
    /// `AlarmName`.
    pub name: String,
    /// `AlarmDescription`.
    pub description: String,
    /// `Namespace`.
    pub namespace: String,
    /// `MetricName`.
    pub metric_name: String,
    /// `Dimensions` as (name, value).
    pub dimensions: Vec<(String, String)>,
    /// `Statistic`.
    pub statistic: String,
    /// `Unit`.
    pub unit: Option<String>,
    /// `Period`, seconds (AWS's, unscaled).
    pub period: i64,
    /// `EvaluationPeriods`.
    pub evaluation_periods: i64,
    /// `DatapointsToAlarm`.
    pub datapoints_to_alarm: i64,
    /// `Threshold`.
    pub threshold: f64,
    /// `ComparisonOperator`.
    pub comparison: &'static str,
    /// `AlarmActions`.
    pub alarm_actions: Vec<String>,
}

/// What scaling needs of CloudWatch alarms.
#[async_trait::async_trait]
pub trait MetricAlarms: Send + Sync {
    /// Creates or replaces an alarm.
    async fn put_alarm(&self, alarm: &AlarmSpec) -> Result<(), String>;
    /// Deletes alarms (names that do not exist are ignored).
    async fn delete_alarms(&self, names: &[String]) -> Result<(), String>;
}

/// A source of "now" in epoch milliseconds (the wall clock outside tests).
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Application Auto Scaling of one region.
#[derive(Clone)]
pub struct AppScaling {
    objects: ScalingObjects,
    scope: ArnScope,
    ecs: Arc<dyn EcsServices>,
    alarms: Arc<dyn MetricAlarms>,
    clock: Clock,
    time_scale: f64,
    /// Shared, not taken: [`AppScaling::run`] may run again (each term as leader).
    triggers: Arc<tokio::sync::Mutex<TriggerReceiver>>,
}

impl std::fmt::Debug for AppScaling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppScaling")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl AppScaling {
    /// The service over `store` for `scope`'s region and account, acting on ECS through
    /// `ecs`, keeping its alarms through `alarms`, and executing the alarm actions that
    /// arrive on `triggers` once [`AppScaling::run`] runs.
    pub fn new(
        store: Arc<dyn store::Store>,
        scope: ArnScope,
        (ecs, alarms): (Arc<dyn EcsServices>, Arc<dyn MetricAlarms>),
        triggers: TriggerReceiver,
    ) -> Self {
        Self {
            objects: store::Objects::new(store),
            scope,
            ecs,
            alarms,
            clock: Arc::new(wall_clock_ms),
            time_scale: 1.0,
            triggers: Arc::new(tokio::sync::Mutex::new(triggers)),
        }
    }

    /// The same service running cooldowns and rate schedules `scale` times faster than
    /// AWS (the server's `--time-scale`; values below 1 are taken as 1).
    #[must_use]
    pub fn with_time_scale(mut self, scale: f64) -> Self {
        self.time_scale = if scale.is_finite() && scale >= 1.0 {
            scale
        } else {
            1.0
        };
        self
    }

    /// The same service reading time from `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    /// `secs` of AWS time as this server runs it, in milliseconds.
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    fn scaled_ms(&self, secs: i64) -> i64 {
        (secs as f64 * 1000.0 / self.time_scale).round() as i64
    }

    async fn execute(&self, op: Operation, body: &[u8]) -> Result<serde_json::Value, ServiceError> {
        use Operation as Op;
        let aws = |e: AppScalingError| ServiceError::Aws(e.to_aws());
        let out = match op {
            Op::RegisterScalableTarget => self.register_target(parse(body)?).await,
            Op::DescribeScalableTargets => self.describe_targets(parse(body)?).await,
            Op::DeregisterScalableTarget => self.deregister_target(parse(body)?).await,
            Op::PutScalingPolicy => self.put_policy(parse(body)?).await,
            Op::DescribeScalingPolicies => self.describe_policies(parse(body)?).await,
            Op::DeleteScalingPolicy => self.delete_policy(parse(body)?).await,
            Op::DescribeScalingActivities => self.describe_activities(parse(body)?).await,
            Op::PutScheduledAction => self.put_scheduled(parse(body)?).await,
            Op::DescribeScheduledActions => self.describe_scheduled(parse(body)?).await,
            Op::DeleteScheduledAction => self.delete_scheduled(parse(body)?).await,
            Op::TagResource => self.tag(parse(body)?).await,
            Op::UntagResource => self.untag(parse(body)?).await,
            Op::ListTagsForResource => self.list_tags(parse(body)?).await,
            Op::GetPredictiveScalingForecast => return Err(ServiceError::NotImplemented),
        };
        out.map_err(aws)
    }
}

/// A JSON body as `T`; a shape mismatch is the caller's mistake.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ServiceError> {
    let body = if body.is_empty() {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| {
        ServiceError::Aws(
            AppScalingError::Serialization(format!("The request body is not valid: {e}")).to_aws(),
        )
    })
}

impl Service for AppScaling {
    type Operation = Operation;

    const SPEC: ServiceSpec = ServiceSpec {
        name: "application-autoscaling",
        title: "Application Auto Scaling",
        signing_name: model::appscaling::SIGNING_NAME,
        protocols: &[Protocol::AwsJson {
            version: JsonVersion::V1_1,
            target_prefix: model::appscaling::TARGET_PREFIX,
        }],
    };

    const OPERATIONS: OperationTable<Operation> = OperationTable {
        all: Operation::ALL,
        from_name: Operation::from_name,
        name: Operation::name,
        errors: Operation::errors,
    };

    async fn authorize(&self, op: Operation, _call: Call<'_>) -> Result<Vec<Access>, ServiceError> {
        // Application Auto Scaling's actions take `*` except the tag operations and
        // RegisterScalableTarget on a target's ARN; resource-level checks are left for
        // later, as for CloudWatch's metric actions.
        Ok(vec![Access::any(
            "application-autoscaling",
            Operation::name(op),
        )])
    }

    async fn handle(&self, op: Operation, call: Call<'_>) -> Result<Vec<u8>, ServiceError> {
        let Input::Json(body) = call.input else {
            return Err(ServiceError::NotImplemented);
        };
        let out = self.execute(op, body).await?;
        serde_json::to_vec(&out).map_err(|e| {
            ServiceError::Aws(
                AppScalingError::Internal(format!("response encoding failed: {e}")).to_aws(),
            )
        })
    }
}

#[cfg(test)]
mod tests;
