//! `cloudwatch` owns the Amazon CloudWatch metrics API — PutMetricData,
//! GetMetricStatistics, GetMetricData (with metric math) and ListMetrics — and the
//! time-series store under it ([`MetricStore`]: AWS's resolutions and retention, durable
//! in SQLite). It serves the three protocols CloudWatch clients speak (AWS JSON 1.0 with
//! `x-amzn-query-mode`, the query protocol, Smithy RPC v2 CBOR) through one decoder and
//! one answer tree ([`codec`]).
//!
//! Later work builds on [`CloudWatch::put`] and [`CloudWatch::query`] (ECS and ELB
//! metrics, alarms, Application Auto Scaling); they take a [`SeriesKey`], a time range,
//! a period and statistics, and need no HTTP.
//!
//! Metric alarms ([`alarms`]) are configuration kept in the region's state store once
//! [`CloudWatch::with_alarms`] gives it one; [`CloudWatch::run_alarms`] evaluates them
//! every period (divided by the server's time scale) and hands actions to an
//! [`AlarmActions`] port.
//!
//! It must not speak HTTP or SigV4 (the binary does, through `wire`), nor reach into
//! other services.

pub mod alarms;
pub mod codec;
mod error;
pub mod evaluate;
pub mod math;
mod put;
mod read;
pub mod series;
pub mod stats;
pub mod store;

pub use alarms::{AlarmActions, LoggedActions, StoredAlarm};
pub use error::CloudWatchError;
pub use model::cloudwatch::operations::Operation;
pub use series::{Dimension, SeriesKey};
pub use stats::{Sketch, Statistic, StatisticSet};
pub use store::{Bucket, MetricStore, MetricStoreError, Range, Sample};

use codec::{Encoding, Out};
use model::ecs::arn::ArnScope;
use std::sync::Arc;
use std::time::Duration;
use wire::{
    Access, Call, JsonVersion, OperationTable, Protocol, Service, ServiceError, ServiceSpec,
};

/// The largest request body: a full PutMetricData (1,000 metrics of 150 values and 30
/// dimensions) is about 1 MB in JSON and more in the query protocol's form encoding.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// A source of "now" in epoch seconds (the wall clock outside tests).
pub type Clock = Arc<dyn Fn() -> f64 + Send + Sync>;

/// How often the retention sweep runs.
const SWEEP_EVERY: Duration = Duration::from_secs(300);

/// The CloudWatch metrics service of one region.
#[derive(Clone)]
pub struct CloudWatch {
    store: Arc<MetricStore>,
    scope: ArnScope,
    clock: Clock,
    alarms: Option<alarms::Alarms>,
    actions: Arc<dyn AlarmActions>,
    time_scale: f64,
}

impl std::fmt::Debug for CloudWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudWatch")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

fn wall_clock() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl CloudWatch {
    /// The service over `store`, for the region and account of `scope`, on the wall clock.
    pub fn new(store: Arc<MetricStore>, scope: ArnScope) -> Self {
        Self {
            store,
            scope,
            clock: Arc::new(wall_clock),
            alarms: None,
            actions: Arc::new(LoggedActions),
            time_scale: 1.0,
        }
    }

    /// The same service keeping alarms in the region's state `store`.
    #[must_use]
    pub fn with_alarms(mut self, store: Arc<dyn ::store::Store>) -> Self {
        self.alarms = Some(alarms::Alarms::new(
            ::store::Objects::new(store),
            &self.scope,
        ));
        self
    }

    /// The same service sending alarm actions to `actions`.
    #[must_use]
    pub fn with_actions(mut self, actions: Arc<dyn AlarmActions>) -> Self {
        self.actions = actions;
        self
    }

    /// The same service evaluating alarms `scale` times faster than AWS: every period is
    /// divided by it (the server's `--time-scale`; 1 is AWS's timing). Values below 1 are
    /// taken as 1.
    #[must_use]
    pub fn with_time_scale(mut self, scale: f64) -> Self {
        self.time_scale = if scale.is_finite() && scale >= 1.0 {
            scale
        } else {
            1.0
        };
        self
    }

    /// How many times faster than AWS alarm periods run (1: AWS's timing).
    pub fn time_scale(&self) -> f64 {
        self.time_scale
    }

    /// An alarm period as evaluated: `period` divided by the time scale, whole seconds,
    /// at least 1.
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    pub fn scaled_period(&self, period: i64) -> i64 {
        ((period as f64 / self.time_scale).round() as i64).max(1)
    }

    #[allow(clippy::cast_possible_truncation)]
    fn now_ms(&self) -> i64 {
        (self.now() * 1000.0).floor() as i64
    }

    /// Evaluates every alarm whose (scaled) period ended since it was last evaluated
    /// until `shutdown` fires (loop `alarm_evaluation`), and drops alarm history older
    /// than two weeks once an hour.
    pub async fn run_alarms(&self, shutdown: telemetry::CancellationToken) {
        let Some(alarms) = self.alarms.clone() else {
            return;
        };
        // Periods are at least 1 s once scaled: a tick of a fraction of the smallest
        // one evaluates each soon after its period ends.
        let tick = Duration::from_millis(250);
        let done = std::sync::Mutex::new(std::collections::HashMap::<String, i64>::new());
        let swept = std::sync::atomic::AtomicI64::new(0);
        let wait = || tokio::time::sleep(tick);
        let round = || async {
            if let Err(error) = self.alarm_round(&alarms, &done, &swept).await {
                tracing::warn!(%error, "Alarm evaluation round failed; retrying next tick.");
            }
        };
        telemetry::supervise(telemetry::LoopName::AlarmEvaluation, shutdown, wait, round).await;
    }

    async fn alarm_round(
        &self,
        alarms: &alarms::Alarms,
        done: &std::sync::Mutex<std::collections::HashMap<String, i64>>,
        swept: &std::sync::atomic::AtomicI64,
    ) -> Result<(), CloudWatchError> {
        use std::sync::atomic::Ordering;
        let now = self.now_secs();
        if now - swept.load(Ordering::Relaxed) >= 3600 {
            swept.store(now, Ordering::Relaxed);
            let deleted = alarms.sweep_history(now).await?;
            if deleted > 0 {
                tracing::info!(deleted, "Alarm history older than two weeks deleted.");
            }
        }
        let all = alarms.all().await?;
        {
            let mut done = done
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            done.retain(|name, _| all.iter().any(|a| &a.name == name));
        }
        for alarm in all {
            let period = self.scaled_period(alarm.period);
            // The last whole period ends here; the one in progress is still filling.
            let end = now.div_euclid(period) * period;
            let due = {
                let done = done
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                done.get(&alarm.name).is_none_or(|last| *last < end)
            };
            if !due {
                continue;
            }
            let range = alarms::window(&alarm, period, end);
            let percentiles = alarm.extended_statistic.is_some();
            let buckets = self
                .query(alarm.series(), alarm.unit.clone(), range, percentiles)
                .await?;
            let now_ms = self.now_ms();
            let verdict = alarms::judge(&alarm, &buckets, range, now_ms);
            alarms
                .apply(&alarm, verdict, self.actions.as_ref(), now_ms)
                .await?;
            done.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(alarm.name.clone(), end);
        }
        Ok(())
    }

    /// PutMetricAlarm for another service (Application Auto Scaling's target tracking
    /// alarms): `request` is the operation's input as JSON, validated as the API does.
    pub async fn put_alarm(&self, request: serde_json::Value) -> Result<(), CloudWatchError> {
        let alarms = self
            .alarms
            .as_ref()
            .ok_or_else(|| CloudWatchError::Internal("this CloudWatch keeps no alarms".into()))?;
        let input = serde_json::from_value(request)
            .map_err(|e| CloudWatchError::InvalidParameterValue(e.to_string()))?;
        alarms.put(input, self.now_ms()).await
    }

    /// DeleteAlarms for another service (the alarms a scaling policy owns); one that is
    /// already gone is not an error.
    pub async fn delete_alarms(&self, names: Vec<String>) -> Result<(), CloudWatchError> {
        let Some(alarms) = &self.alarms else {
            return Ok(());
        };
        for name in names {
            match alarms.delete(Some(vec![name])).await {
                Ok(()) | Err(CloudWatchError::ResourceNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The same service reading time from `clock` (tests move time with it).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    fn now(&self) -> f64 {
        (self.clock)()
    }

    #[allow(clippy::cast_possible_truncation)]
    fn now_secs(&self) -> i64 {
        self.now().floor() as i64
    }

    /// Stores samples (already validated: the other services' own metrics come here
    /// without the API's checks); durable when it returns.
    pub async fn put(&self, samples: Vec<Sample>) -> Result<(), CloudWatchError> {
        self.blocking(move |s| s.put(&samples)).await
    }

    /// The buckets of one series over `range` (see [`MetricStore::query`]); compute
    /// statistics from each with [`Statistic::compute`].
    pub async fn query(
        &self,
        key: SeriesKey,
        unit: Option<String>,
        range: Range,
        percentiles: bool,
    ) -> Result<Vec<Bucket>, CloudWatchError> {
        let now = self.now_secs();
        self.blocking(move |s| s.query(&key, unit.as_deref(), range, now, percentiles))
            .await
    }

    /// Runs `call` on the store on a blocking thread: its calls wait for disk.
    async fn blocking<T, F>(&self, call: F) -> Result<T, CloudWatchError>
    where
        T: Send + 'static,
        F: FnOnce(&MetricStore) -> Result<T, MetricStoreError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || call(&store))
            .await
            .map_err(|e| {
                CloudWatchError::Internal(format!("metric store call did not finish: {e}"))
            })?
            .map_err(CloudWatchError::from)
    }

    /// Deletes data past retention every few minutes until `shutdown` fires (loop
    /// `metrics_retention`; reads already ignore expired data, so a late sweep only
    /// delays reclaiming space).
    pub async fn run_retention(&self, shutdown: telemetry::CancellationToken) {
        let wait = || tokio::time::sleep(SWEEP_EVERY);
        let round = || async {
            let now = self.now_secs();
            match self.blocking(move |s| s.sweep(now)).await {
                Ok(0) => {}
                Ok(deleted) => {
                    tracing::info!(deleted, "Metric retention sweep deleted expired buckets.")
                }
                Err(error) => {
                    tracing::warn!(%error, "Metric retention sweep failed; retrying later.")
                }
            }
        };
        telemetry::supervise(telemetry::LoopName::MetricsRetention, shutdown, wait, round).await;
    }

    /// Runs `op` on a decoded request; the answer tree, or `None` for a Unit output.
    async fn execute(
        &self,
        op: Operation,
        request: serde_json::Value,
    ) -> Result<Option<Out>, ServiceError> {
        use Operation as Op;
        let now = self.now_secs();
        let aws = |e: CloudWatchError| ServiceError::Aws(e.to_aws());
        match op {
            Op::PutMetricData => {
                let samples = put::plan_put(parse(request)?, self.now()).map_err(aws)?;
                self.put(samples).await.map_err(aws)?;
                Ok(None)
            }
            Op::GetMetricStatistics => {
                let input = parse(request)?;
                self.blocking_op(move |s| read::get_metric_statistics(s, input, now))
                    .await
                    .map(Some)
            }
            Op::GetMetricData => {
                let input = parse(request)?;
                self.blocking_op(move |s| read::get_metric_data(s, input, now))
                    .await
                    .map(Some)
            }
            Op::ListMetrics => {
                let input = parse(request)?;
                self.blocking_op(move |s| read::list_metrics(s, input, now))
                    .await
                    .map(Some)
            }
            _ => self.alarm_op(op, request).await,
        }
    }

    /// The alarm operations (not implemented when no state store was given).
    async fn alarm_op(
        &self,
        op: Operation,
        request: serde_json::Value,
    ) -> Result<Option<Out>, ServiceError> {
        use Operation as Op;
        let Some(alarms) = &self.alarms else {
            return Err(ServiceError::NotImplemented);
        };
        let aws = |e: CloudWatchError| ServiceError::Aws(e.to_aws());
        let now_ms = self.now_ms();
        let names = |r| parse::<alarms::AlarmNamesInput>(r).map(|i| i.alarm_names);
        match op {
            Op::PutMetricAlarm => alarms.put(parse(request)?, now_ms).await.map(|()| None),
            Op::DescribeAlarms => alarms.describe(parse(request)?).await.map(Some),
            Op::DescribeAlarmsForMetric => alarms.for_metric(parse(request)?).await.map(Some),
            Op::DeleteAlarms => alarms.delete(names(request)?).await.map(|()| None),
            Op::SetAlarmState => alarms
                .set_state(parse(request)?, self.actions.as_ref(), now_ms)
                .await
                .map(|()| None),
            Op::DescribeAlarmHistory => alarms
                .history(parse(request)?, self.now_secs())
                .await
                .map(Some),
            Op::EnableAlarmActions => alarms
                .set_actions_enabled(names(request)?, true)
                .await
                .map(|()| None),
            Op::DisableAlarmActions => alarms
                .set_actions_enabled(names(request)?, false)
                .await
                .map(|()| None),
            _ => return Err(ServiceError::NotImplemented),
        }
        .map_err(aws)
    }

    async fn blocking_op<F>(&self, call: F) -> Result<Out, ServiceError>
    where
        F: FnOnce(&MetricStore) -> Result<Out, CloudWatchError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || call(&store))
            .await
            .map_err(|e| {
                CloudWatchError::Internal(format!("metric store call did not finish: {e}"))
            })
            .and_then(|r| r)
            .map_err(|e| ServiceError::Aws(e.to_aws()))
    }
}

/// A decoded request as `T`; a shape mismatch is the caller's mistake.
fn parse<T: serde::de::DeserializeOwned>(request: serde_json::Value) -> Result<T, ServiceError> {
    serde_path_to_error::deserialize(request).map_err(|e| {
        let path = e.path().to_string();
        ServiceError::Aws(
            CloudWatchError::InvalidParameterValue(format!(
                "The value for parameter {path} is not valid: {}",
                e.inner()
            ))
            .to_aws(),
        )
    })
}

impl Service for CloudWatch {
    type Operation = Operation;

    const SPEC: ServiceSpec = ServiceSpec {
        name: "cloudwatch",
        title: "Amazon CloudWatch",
        signing_name: model::cloudwatch::SIGNING_NAME,
        protocols: &[
            Protocol::AwsJson {
                version: JsonVersion::V1_0,
                target_prefix: model::cloudwatch::TARGET_PREFIX,
            },
            Protocol::AwsQuery {
                version: model::cloudwatch::API_VERSION,
            },
            Protocol::RpcV2Cbor {
                service: model::cloudwatch::TARGET_PREFIX,
            },
        ],
    };

    const OPERATIONS: OperationTable<Operation> = OperationTable {
        all: Operation::ALL,
        from_name: Operation::from_name,
        name: Operation::name,
        errors: Operation::errors,
    };

    fn body_limit(&self, op: Operation) -> usize {
        match op {
            Operation::PutMetricData => MAX_REQUEST_BYTES,
            _ => wire::service::DEFAULT_BODY_LIMIT,
        }
    }

    async fn authorize(&self, op: Operation, _call: Call<'_>) -> Result<Vec<Access>, ServiceError> {
        // CloudWatch's metric actions have no resource type (the Service Authorization
        // Reference lists `*`); the `cloudwatch:namespace` condition key is left for later.
        Ok(vec![Access::any("cloudwatch", Operation::name(op))])
    }

    async fn handle(&self, op: Operation, call: Call<'_>) -> Result<Vec<u8>, ServiceError> {
        let encoding = Encoding::of(call.input);
        let request = codec::decode(call.input).map_err(|e| ServiceError::Aws(e.to_aws()))?;
        let out = self.execute(op, request).await?;
        Ok(encoding.encode(Operation::name(op), out.as_ref(), call.request_id))
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod alarm_tests;
