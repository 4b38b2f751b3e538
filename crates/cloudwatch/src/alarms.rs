//! Metric alarms: their operations (PutMetricAlarm, DescribeAlarms,
//! DescribeAlarmsForMetric, DeleteAlarms, SetAlarmState, DescribeAlarmHistory,
//! Enable/DisableAlarmActions), their records in the region's state store, and the
//! evaluation round the alarm loop runs (the decision itself is [`crate::evaluate`]).
//!
//! Alarms are configuration, so they live in the state store, not in metrics.db:
//! - `cloudwatch/alarm/<name>` → [`StoredAlarm`]
//! - `cloudwatch/history/<epoch ms, 16 digits>-<seq>/<name>` → [`HistoryItem`]; time-ordered
//!   keys make the two-week expiry one range read. History outlives its alarm, as AWS's does.

use crate::codec::{lenient_bool, lenient_f64, lenient_i64, lenient_time, Out};
use crate::error::CloudWatchError;
use crate::evaluate::{self, Comparison, Context, Point, Rule, State, TreatMissing};
use crate::put::DimensionIn;
use crate::put::{check_dimensions, check_namespace, check_text, check_unit, invalid, missing};
use crate::series::{Dimension, SeriesKey};
use crate::stats::Statistic;
use crate::store::Range;
use ::store::{Objects, Step, Txn};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};

/// The state store layer, answering CloudWatch errors.
pub type AlarmObjects = Objects<CloudWatchError>;

const ALARM_PREFIX: &str = "cloudwatch/alarm/";
const HISTORY_PREFIX: &str = "cloudwatch/history/";
/// History is kept this long after it is written (AWS: two weeks).
pub const HISTORY_RETENTION_SECS: i64 = 14 * 86_400;
/// At most this many ARNs per action list.
const MAX_ACTIONS: usize = 5;
/// DescribeAlarms' and DescribeAlarmHistory's largest and default page.
const MAX_RECORDS: usize = 100;
/// The initial state reason.
pub const INITIAL_REASON: &str = "Unchecked: Initial alarm creation";

fn alarm_key(name: &str) -> String {
    format!("{ALARM_PREFIX}{name}")
}

/// Keeps history keys of one millisecond apart within this process.
static HISTORY_SEQ: AtomicU64 = AtomicU64::new(0);

fn history_key(ms: i64, name: &str) -> String {
    let seq = HISTORY_SEQ.fetch_add(1, Ordering::Relaxed) % 1_000_000;
    format!("{HISTORY_PREFIX}{ms:016}-{seq:06}/{name}")
}

/// An alarm as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredAlarm {
    /// `AlarmName`.
    pub name: String,
    /// `AlarmArn`.
    pub arn: String,
    /// `AlarmDescription`.
    pub description: Option<String>,
    /// `ActionsEnabled`.
    pub actions_enabled: bool,
    /// `OKActions`.
    pub ok_actions: Vec<String>,
    /// `AlarmActions`.
    pub alarm_actions: Vec<String>,
    /// `InsufficientDataActions`.
    pub insufficient_data_actions: Vec<String>,
    /// `Namespace`.
    pub namespace: String,
    /// `MetricName`.
    pub metric_name: String,
    /// `Dimensions` as (name, value), in the order given.
    pub dimensions: Vec<(String, String)>,
    /// `Statistic` (exclusive with `extended_statistic`).
    pub statistic: Option<String>,
    /// `ExtendedStatistic`.
    pub extended_statistic: Option<String>,
    /// `Period`, seconds.
    pub period: i64,
    /// `Unit`.
    pub unit: Option<String>,
    /// `EvaluationPeriods`.
    pub evaluation_periods: i64,
    /// `DatapointsToAlarm` as given.
    pub datapoints_to_alarm: Option<i64>,
    /// `Threshold`.
    pub threshold: f64,
    /// `ComparisonOperator`.
    pub comparison: Comparison,
    /// `TreatMissingData` as given (absent = `missing`).
    pub treat_missing: Option<TreatMissing>,
    /// `EvaluateLowSampleCountPercentile`.
    pub evaluate_low_sample_count_percentile: Option<String>,
    /// Tags given at creation.
    pub tags: Vec<(String, String)>,
    /// `AlarmConfigurationUpdatedTimestamp`, epoch ms.
    pub config_updated_ms: i64,
    /// `StateValue`.
    pub state: State,
    /// `StateReason`.
    pub state_reason: String,
    /// `StateReasonData`.
    pub state_reason_data: Option<String>,
    /// `StateUpdatedTimestamp`, epoch ms.
    pub state_updated_ms: i64,
    /// `StateTransitionedTimestamp`, epoch ms.
    pub state_transitioned_ms: i64,
}

impl StoredAlarm {
    /// The series the alarm watches.
    pub fn series(&self) -> SeriesKey {
        SeriesKey::new(
            self.namespace.clone(),
            self.metric_name.clone(),
            self.dimensions
                .iter()
                .map(|(name, value)| Dimension {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
        )
    }

    fn statistic_name(&self) -> &str {
        self.statistic
            .as_deref()
            .or(self.extended_statistic.as_deref())
            .unwrap_or("Average")
    }

    /// The evaluation rule.
    pub fn rule(&self) -> Rule {
        let n = usize::try_from(self.evaluation_periods).unwrap_or(1);
        Rule {
            comparison: self.comparison,
            threshold: self.threshold,
            evaluation_periods: n,
            datapoints_to_alarm: self
                .datapoints_to_alarm
                .and_then(|m| usize::try_from(m).ok())
                .unwrap_or(n),
            treat_missing: self.treat_missing.unwrap_or(TreatMissing::Missing),
        }
    }

    fn actions_for(&self, state: State) -> &[String] {
        match state {
            State::Ok => &self.ok_actions,
            State::Alarm => &self.alarm_actions,
            State::InsufficientData => &self.insufficient_data_actions,
        }
    }

    fn to_out(&self) -> Out {
        let strs = |v: &[String]| Out::List(v.iter().cloned().map(Out::Str).collect());
        let mut f: Vec<(&'static str, Out)> = vec![
            ("AlarmName", Out::Str(self.name.clone())),
            ("AlarmArn", Out::Str(self.arn.clone())),
        ];
        if let Some(d) = &self.description {
            f.push(("AlarmDescription", Out::Str(d.clone())));
        }
        f.push((
            "AlarmConfigurationUpdatedTimestamp",
            Out::Time(self.config_updated_ms / 1000),
        ));
        f.push(("ActionsEnabled", Out::Bool(self.actions_enabled)));
        f.push(("OKActions", strs(&self.ok_actions)));
        f.push(("AlarmActions", strs(&self.alarm_actions)));
        f.push((
            "InsufficientDataActions",
            strs(&self.insufficient_data_actions),
        ));
        f.push(("StateValue", Out::Str(self.state.as_str().into())));
        f.push(("StateReason", Out::Str(self.state_reason.clone())));
        if let Some(d) = &self.state_reason_data {
            f.push(("StateReasonData", Out::Str(d.clone())));
        }
        f.push((
            "StateUpdatedTimestamp",
            Out::Time(self.state_updated_ms / 1000),
        ));
        f.push(("MetricName", Out::Str(self.metric_name.clone())));
        f.push(("Namespace", Out::Str(self.namespace.clone())));
        if let Some(s) = &self.statistic {
            f.push(("Statistic", Out::Str(s.clone())));
        }
        if let Some(s) = &self.extended_statistic {
            f.push(("ExtendedStatistic", Out::Str(s.clone())));
        }
        f.push((
            "Dimensions",
            Out::List(
                self.dimensions
                    .iter()
                    .map(|(n, v)| {
                        Out::Obj(vec![
                            ("Name", Out::Str(n.clone())),
                            ("Value", Out::Str(v.clone())),
                        ])
                    })
                    .collect(),
            ),
        ));
        f.push(("Period", Out::Int(self.period)));
        if let Some(u) = &self.unit {
            f.push(("Unit", Out::Str(u.clone())));
        }
        f.push(("EvaluationPeriods", Out::Int(self.evaluation_periods)));
        if let Some(m) = self.datapoints_to_alarm {
            f.push(("DatapointsToAlarm", Out::Int(m)));
        }
        f.push(("Threshold", Out::F64(self.threshold)));
        f.push((
            "ComparisonOperator",
            Out::Str(self.comparison.as_str().into()),
        ));
        if let Some(t) = self.treat_missing {
            f.push(("TreatMissingData", Out::Str(t.as_str().into())));
        }
        if let Some(e) = &self.evaluate_low_sample_count_percentile {
            f.push(("EvaluateLowSampleCountPercentile", Out::Str(e.clone())));
        }
        f.push((
            "StateTransitionedTimestamp",
            Out::Time(self.state_transitioned_ms / 1000),
        ));
        Out::Obj(f)
    }
}

/// One alarm history item as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HistoryItem {
    /// `AlarmName`.
    pub alarm_name: String,
    /// Epoch ms.
    pub timestamp_ms: i64,
    /// `ConfigurationUpdate`, `StateUpdate` or `Action`.
    pub item_type: String,
    /// `HistorySummary`.
    pub summary: String,
    /// `HistoryData` (JSON text).
    pub data: String,
}

impl HistoryItem {
    fn to_out(&self) -> Out {
        Out::Obj(vec![
            ("AlarmName", Out::Str(self.alarm_name.clone())),
            ("AlarmType", Out::Str("MetricAlarm".into())),
            ("Timestamp", Out::Time(self.timestamp_ms / 1000)),
            ("HistoryItemType", Out::Str(self.item_type.clone())),
            ("HistorySummary", Out::Str(self.summary.clone())),
            ("HistoryData", Out::Str(self.data.clone())),
        ])
    }
}

/// Where alarm actions go: the evaluator calls it with the alarm, one action ARN and the
/// state that triggered it — every period while in ALARM for Application Auto Scaling
/// policy ARNs (`arn:aws:autoscaling:`), once per transition otherwise. An error is
/// recorded in the alarm's history as a failed action.
pub trait AlarmActions: Send + Sync {
    /// Invokes `action` for `alarm`, now in `state`.
    fn invoke(&self, alarm: &StoredAlarm, action: &str, state: State) -> Result<(), String>;
}

/// The actions port until Application Auto Scaling is served: it logs each call.
#[derive(Debug, Default)]
pub struct LoggedActions;

impl AlarmActions for LoggedActions {
    fn invoke(&self, alarm: &StoredAlarm, action: &str, state: State) -> Result<(), String> {
        tracing::info!(
            alarm = %alarm.name,
            action,
            state = state.as_str(),
            "Alarm action invoked (no Application Auto Scaling here yet; logged only)."
        );
        Ok(())
    }
}

/// `PutMetricAlarmInput` (the members this server serves; `Metrics` is refused).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutMetricAlarmInput {
    alarm_name: Option<String>,
    alarm_description: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    actions_enabled: Option<bool>,
    #[serde(rename = "OKActions")]
    ok_actions: Option<Vec<String>>,
    alarm_actions: Option<Vec<String>>,
    insufficient_data_actions: Option<Vec<String>>,
    metric_name: Option<String>,
    namespace: Option<String>,
    statistic: Option<String>,
    extended_statistic: Option<String>,
    dimensions: Option<Vec<DimensionIn>>,
    #[serde(default, deserialize_with = "lenient_i64")]
    period: Option<i64>,
    unit: Option<String>,
    #[serde(default, deserialize_with = "lenient_i64")]
    evaluation_periods: Option<i64>,
    #[serde(default, deserialize_with = "lenient_i64")]
    datapoints_to_alarm: Option<i64>,
    #[serde(default, deserialize_with = "lenient_f64")]
    threshold: Option<f64>,
    comparison_operator: Option<String>,
    treat_missing_data: Option<String>,
    evaluate_low_sample_count_percentile: Option<String>,
    metrics: Option<serde_json::Value>,
    tags: Option<Vec<TagIn>>,
    threshold_metric_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagIn {
    key: Option<String>,
    value: Option<String>,
}

fn check_actions(list: Option<Vec<String>>, name: &str) -> Result<Vec<String>, CloudWatchError> {
    let list = list.unwrap_or_default();
    if list.len() > MAX_ACTIONS {
        return Err(CloudWatchError::InvalidParameterValue(format!(
            "The collection {name} must not have a size greater than {MAX_ACTIONS}."
        )));
    }
    for (i, arn) in list.iter().enumerate() {
        if !arn.starts_with("arn:") || arn.len() > 1024 {
            return Err(invalid(arn, &format!("{name}.member.{}", i + 1)));
        }
    }
    Ok(list)
}

/// Validates a PutMetricAlarm request into the alarm's configuration (state fields
/// blank; the caller keeps or initialises them).
pub fn plan_alarm(
    input: PutMetricAlarmInput,
    arn_prefix: &str,
    now_ms: i64,
) -> Result<StoredAlarm, CloudWatchError> {
    let name = check_text(input.alarm_name.as_deref(), "AlarmName", 255)?.to_owned();
    if input.metrics.is_some() || input.threshold_metric_id.is_some() {
        return Err(CloudWatchError::InvalidParameterCombination(
            "Metric math alarms (Metrics, ThresholdMetricId) are not supported by this server; give MetricName, Namespace and Statistic or ExtendedStatistic.".into(),
        ));
    }
    if let Some(d) = &input.alarm_description {
        if d.chars().count() > 1024 {
            return Err(invalid(d, "AlarmDescription"));
        }
    }
    let metric_name = check_text(input.metric_name.as_deref(), "MetricName", 255)?.to_owned();
    let namespace = check_namespace(input.namespace.as_deref(), "Namespace")?;
    let dimensions = check_dimensions(input.dimensions.as_deref(), "Dimensions")?;
    match (&input.statistic, &input.extended_statistic) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(CloudWatchError::InvalidParameterCombination(
                "Exactly one of Statistic or ExtendedStatistic must be specified.".into(),
            ))
        }
        (Some(s), None) if Statistic::named(s).is_none() => return Err(invalid(s, "Statistic")),
        (None, Some(s)) if Statistic::percentile(s).is_none() => {
            return Err(invalid(s, "ExtendedStatistic"))
        }
        _ => {}
    }
    let period = input.period.ok_or_else(|| missing("Period"))?;
    if !(matches!(period, 10 | 20 | 30) || (period >= 60 && period % 60 == 0)) {
        return Err(CloudWatchError::InvalidParameterValue(
            "Period must be 10, 20, 30 or a multiple of 60.".into(),
        ));
    }
    let unit = check_unit(input.unit.as_deref(), "Unit")?;
    let n = input
        .evaluation_periods
        .ok_or_else(|| missing("EvaluationPeriods"))?;
    if n < 1 {
        return Err(invalid(n, "EvaluationPeriods"));
    }
    let window = period.saturating_mul(n);
    if window > 604_800 {
        return Err(CloudWatchError::InvalidParameterValue(
            "The evaluation period, calculated as Period multiplied by EvaluationPeriods, must not exceed one week (604,800 seconds).".into(),
        ));
    }
    if period < 3600 && window > 86_400 {
        return Err(CloudWatchError::InvalidParameterValue(
            "Metrics with a period of less than one hour cannot be evaluated over more than one day: Period multiplied by EvaluationPeriods must not exceed 86,400 seconds.".into(),
        ));
    }
    if let Some(m) = input.datapoints_to_alarm {
        if m < 1 {
            return Err(invalid(m, "DatapointsToAlarm"));
        }
        if m > n {
            return Err(CloudWatchError::Validation(
                "DatapointsToAlarm must be less than or equal to EvaluationPeriods.".into(),
            ));
        }
    }
    let threshold = input.threshold.ok_or_else(|| missing("Threshold"))?;
    if !threshold.is_finite() {
        return Err(invalid(threshold, "Threshold"));
    }
    let op = input
        .comparison_operator
        .as_deref()
        .ok_or_else(|| missing("ComparisonOperator"))?;
    let comparison = match Comparison::parse(op) {
        Some(c) => c,
        None if op.contains("LowerThreshold") || op.contains("UpperThreshold") => {
            return Err(CloudWatchError::InvalidParameterCombination(format!(
                "The ComparisonOperator {op} is for anomaly detection alarms, which need metric math (Metrics and ThresholdMetricId); this server does not support them."
            )))
        }
        None => return Err(invalid(op, "ComparisonOperator")),
    };
    let treat_missing = match input.treat_missing_data.as_deref() {
        None => None,
        Some(t) => Some(TreatMissing::parse(t).ok_or_else(|| invalid(t, "TreatMissingData"))?),
    };
    if let Some(e) = &input.evaluate_low_sample_count_percentile {
        if e != "evaluate" && e != "ignore" {
            return Err(invalid(e, "EvaluateLowSampleCountPercentile"));
        }
    }
    let mut tags = Vec::new();
    for (i, t) in input.tags.unwrap_or_default().into_iter().enumerate() {
        let at = format!("Tags.member.{}", i + 1);
        let k = check_text(t.key.as_deref(), &format!("{at}.Key"), 128)?.to_owned();
        let v = t.value.ok_or_else(|| missing(&format!("{at}.Value")))?;
        if v.chars().count() > 256 {
            return Err(invalid(&v, &format!("{at}.Value")));
        }
        tags.push((k, v));
    }
    Ok(StoredAlarm {
        arn: format!("{arn_prefix}{name}"),
        name,
        description: input.alarm_description,
        actions_enabled: input.actions_enabled.unwrap_or(true),
        ok_actions: check_actions(input.ok_actions, "OKActions")?,
        alarm_actions: check_actions(input.alarm_actions, "AlarmActions")?,
        insufficient_data_actions: check_actions(
            input.insufficient_data_actions,
            "InsufficientDataActions",
        )?,
        namespace,
        metric_name,
        dimensions: dimensions.into_iter().map(|d| (d.name, d.value)).collect(),
        statistic: input.statistic,
        extended_statistic: input.extended_statistic,
        period,
        unit,
        evaluation_periods: n,
        datapoints_to_alarm: input.datapoints_to_alarm,
        threshold,
        comparison,
        treat_missing,
        evaluate_low_sample_count_percentile: input.evaluate_low_sample_count_percentile,
        tags,
        config_updated_ms: now_ms,
        state: State::InsufficientData,
        state_reason: INITIAL_REASON.into(),
        state_reason_data: None,
        state_updated_ms: now_ms,
        state_transitioned_ms: now_ms,
    })
}

/// The alarm fields history's `HistoryData` shows for a configuration.
fn config_json(a: &StoredAlarm) -> serde_json::Value {
    json!({
        "alarmName": a.name,
        "namespace": a.namespace,
        "metricName": a.metric_name,
        "dimensions": a.dimensions.iter().map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>(),
        "statistic": a.statistic.as_deref().map(str::to_uppercase),
        "extendedStatistic": a.extended_statistic,
        "period": a.period,
        "evaluationPeriods": a.evaluation_periods,
        "datapointsToAlarm": a.datapoints_to_alarm,
        "threshold": a.threshold,
        "comparisonOperator": a.comparison.as_str(),
        "treatMissingData": a.treat_missing.map(TreatMissing::as_str),
        "actionsEnabled": a.actions_enabled,
        "alarmActions": a.alarm_actions,
        "okActions": a.ok_actions,
        "insufficientDataActions": a.insufficient_data_actions,
        "alarmDescription": a.description,
        "unit": a.unit,
    })
}

fn state_json(state: State, reason: &str, data: Option<&str>) -> serde_json::Value {
    let mut v = json!({ "stateValue": state.as_str(), "stateReason": reason });
    if let Some(d) = data.and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok()) {
        v["stateReasonData"] = d;
    }
    v
}

fn put_history(txn: Txn, item: &HistoryItem) -> Result<Txn, CloudWatchError> {
    Ok(txn.put(
        history_key(item.timestamp_ms, &item.alarm_name),
        ::store::objects::encode(item)?,
    ))
}

/// A state change of `alarm` to (`state`, `reason`, `data`) at `now_ms`: the updated
/// record and its StateUpdate history item (`None` when the state stays: AWS then keeps
/// the old reason).
fn transition(
    alarm: &StoredAlarm,
    state: State,
    reason: String,
    data: Option<String>,
    now_ms: i64,
) -> Option<(StoredAlarm, HistoryItem)> {
    if alarm.state == state {
        return None;
    }
    let history = HistoryItem {
        alarm_name: alarm.name.clone(),
        timestamp_ms: now_ms,
        item_type: "StateUpdate".into(),
        summary: format!(
            "Alarm updated from {} to {}",
            alarm.state.as_str(),
            state.as_str()
        ),
        data: json!({
            "version": "1.0",
            "oldState": state_json(alarm.state, &alarm.state_reason, alarm.state_reason_data.as_deref()),
            "newState": state_json(state, &reason, data.as_deref()),
        })
        .to_string(),
    };
    let mut next = alarm.clone();
    next.state = state;
    next.state_reason = reason;
    next.state_reason_data = data;
    next.state_updated_ms = now_ms;
    next.state_transitioned_ms = now_ms;
    Some((next, history))
}

/// The alarm operations over the region's state store.
#[derive(Clone, Debug)]
pub struct Alarms {
    objects: AlarmObjects,
    arn_prefix: String,
}

impl Alarms {
    /// Alarms of the account and region of `scope`, kept in `objects`.
    pub fn new(objects: AlarmObjects, scope: &model::ecs::arn::ArnScope) -> Self {
        Self {
            objects,
            arn_prefix: format!(
                "arn:aws:cloudwatch:{}:{}:alarm:",
                scope.region, scope.account_id
            ),
        }
    }

    /// PutMetricAlarm: creates, or replaces the configuration keeping the state.
    pub async fn put(
        &self,
        input: PutMetricAlarmInput,
        now_ms: i64,
    ) -> Result<(), CloudWatchError> {
        let planned = plan_alarm(input, &self.arn_prefix, now_ms)?;
        let key = alarm_key(&planned.name);
        self.objects
            .retry(&key, || async {
                let old = self.objects.get::<StoredAlarm>(&key).await?;
                let mut alarm = planned.clone();
                let (txn, summary) = match &old {
                    Some((prev, rev)) => {
                        alarm.state = prev.state;
                        alarm.state_reason = prev.state_reason.clone();
                        alarm.state_reason_data = prev.state_reason_data.clone();
                        alarm.state_updated_ms = prev.state_updated_ms;
                        alarm.state_transitioned_ms = prev.state_transitioned_ms;
                        (
                            Txn::new().when(&key, *rev),
                            format!("Alarm \"{}\" updated", alarm.name),
                        )
                    }
                    None => (
                        Txn::new().when(&key, 0),
                        format!("Alarm \"{}\" created", alarm.name),
                    ),
                };
                let data = match &old {
                    Some((prev, _)) => json!({"version": "1.0", "type": "Update",
                        "originalConfiguration": config_json(prev),
                        "updatedConfiguration": config_json(&alarm)}),
                    None => json!({"version": "1.0", "type": "Create",
                        "createdAlarm": config_json(&alarm)}),
                };
                let item = HistoryItem {
                    alarm_name: alarm.name.clone(),
                    timestamp_ms: now_ms,
                    item_type: "ConfigurationUpdate".into(),
                    summary,
                    data: data.to_string(),
                };
                let txn = put_history(txn.put(&key, ::store::objects::encode(&alarm)?), &item)?;
                Ok(Step::Commit(txn, ()))
            })
            .await
    }

    /// Every alarm, in name order.
    pub async fn all(&self) -> Result<Vec<StoredAlarm>, CloudWatchError> {
        Ok(self
            .objects
            .list::<StoredAlarm>(ALARM_PREFIX)
            .await?
            .into_iter()
            .map(|(_, a, _)| a)
            .collect())
    }

    /// DescribeAlarms.
    pub async fn describe(&self, input: DescribeAlarmsInput) -> Result<Out, CloudWatchError> {
        let max = page_size(input.max_records)?;
        if input.alarm_names.is_some() && input.alarm_name_prefix.is_some() {
            return Err(CloudWatchError::InvalidParameterCombination(
                "AlarmNames and AlarmNamePrefix cannot be specified together.".into(),
            ));
        }
        let state = match input.state_value.as_deref() {
            None => None,
            Some(s) => Some(State::parse(s).ok_or_else(|| invalid(s, "StateValue"))?),
        };
        let types = input.alarm_types.unwrap_or_default();
        for (i, t) in types.iter().enumerate() {
            if !matches!(t.as_str(), "CompositeAlarm" | "MetricAlarm" | "LogAlarm") {
                return Err(invalid(t, &format!("AlarmTypes.member.{}", i + 1)));
            }
        }
        let metric_wanted = types.is_empty() || types.iter().any(|t| t == "MetricAlarm");
        let mut alarms: Vec<StoredAlarm> = if metric_wanted {
            self.all().await?
        } else {
            Vec::new()
        };
        alarms.retain(|a| {
            input
                .alarm_names
                .as_ref()
                .is_none_or(|n| n.contains(&a.name))
                && input
                    .alarm_name_prefix
                    .as_ref()
                    .is_none_or(|p| a.name.starts_with(p.as_str()))
                && state.is_none_or(|s| a.state == s)
                && input.action_prefix.as_ref().is_none_or(|p| {
                    a.ok_actions
                        .iter()
                        .chain(&a.alarm_actions)
                        .chain(&a.insufficient_data_actions)
                        .any(|x| x.starts_with(p.as_str()))
                })
        });
        let (page, next) = paginate(alarms, input.next_token.as_deref(), max, |a| &a.name)?;
        let mut out = vec![
            ("CompositeAlarms", Out::List(Vec::new())),
            (
                "MetricAlarms",
                Out::List(page.iter().map(StoredAlarm::to_out).collect()),
            ),
        ];
        if let Some(n) = next {
            out.push(("NextToken", Out::Str(n)));
        }
        Ok(Out::Obj(out))
    }

    /// DescribeAlarmsForMetric.
    pub async fn for_metric(
        &self,
        input: DescribeAlarmsForMetricInput,
    ) -> Result<Out, CloudWatchError> {
        let metric_name = check_text(input.metric_name.as_deref(), "MetricName", 255)?;
        let namespace = check_namespace(input.namespace.as_deref(), "Namespace")?;
        let dims = check_dimensions(input.dimensions.as_deref(), "Dimensions")?;
        let want = SeriesKey::new(namespace, metric_name, dims);
        let alarms: Vec<Out> = self
            .all()
            .await?
            .into_iter()
            .filter(|a| {
                a.series() == want
                    && input
                        .statistic
                        .as_ref()
                        .is_none_or(|s| a.statistic.as_ref() == Some(s))
                    && input
                        .extended_statistic
                        .as_ref()
                        .is_none_or(|s| a.extended_statistic.as_ref() == Some(s))
                    && input.period.is_none_or(|p| a.period == p)
                    && input
                        .unit
                        .as_ref()
                        .is_none_or(|u| a.unit.as_ref() == Some(u))
            })
            .map(|a| a.to_out())
            .collect();
        Ok(Out::Obj(vec![("MetricAlarms", Out::List(alarms))]))
    }

    /// DeleteAlarms: all or nothing; an unknown name is ResourceNotFound.
    pub async fn delete(&self, names: Option<Vec<String>>) -> Result<(), CloudWatchError> {
        let names = names.ok_or_else(|| missing("AlarmNames"))?;
        if names.len() > 100 {
            return Err(CloudWatchError::InvalidParameterValue(
                "The collection AlarmNames must not have a size greater than 100.".into(),
            ));
        }
        self.objects
            .retry("DeleteAlarms", || async {
                let mut txn = Txn::new();
                for name in &names {
                    let key = alarm_key(name);
                    let Some((_, rev)) = self.objects.get::<StoredAlarm>(&key).await? else {
                        return Err(CloudWatchError::ResourceNotFound(format!(
                            "Alarm {name} does not exist."
                        )));
                    };
                    txn = txn.when(&key, rev).delete(key);
                }
                Ok(Step::Commit(txn, ()))
            })
            .await
    }

    /// SetAlarmState.
    pub async fn set_state(
        &self,
        input: SetAlarmStateInput,
        actions: &dyn AlarmActions,
        now_ms: i64,
    ) -> Result<(), CloudWatchError> {
        let name = check_text(input.alarm_name.as_deref(), "AlarmName", 255)?.to_owned();
        let s = input
            .state_value
            .as_deref()
            .ok_or_else(|| missing("StateValue"))?;
        let state = State::parse(s).ok_or_else(|| invalid(s, "StateValue"))?;
        let reason = input.state_reason.ok_or_else(|| missing("StateReason"))?;
        if reason.chars().count() > 1023 {
            return Err(invalid(&reason, "StateReason"));
        }
        if let Some(d) = &input.state_reason_data {
            if d.len() > 4000
                || !serde_json::from_str::<serde_json::Value>(d).is_ok_and(|v| v.is_object())
            {
                return Err(CloudWatchError::InvalidFormat(
                    "StateReasonData must be a JSON object of at most 4000 characters.".into(),
                ));
            }
        }
        let changed = self
            .change_state(
                &name,
                None,
                state,
                &reason,
                input.state_reason_data.as_deref(),
                now_ms,
            )
            .await?;
        if let Some(alarm) = changed {
            self.fire(&alarm, actions, true, now_ms).await?;
        }
        Ok(())
    }

    /// Enable/DisableAlarmActions.
    pub async fn set_actions_enabled(
        &self,
        names: Option<Vec<String>>,
        enabled: bool,
    ) -> Result<(), CloudWatchError> {
        let names = names.ok_or_else(|| missing("AlarmNames"))?;
        for name in names {
            let key = alarm_key(&name);
            self.objects
                .retry(&key, || async {
                    // AWS ignores names it does not know here.
                    let Some((mut alarm, rev)) = self.objects.get::<StoredAlarm>(&key).await?
                    else {
                        return Ok(Step::Done(()));
                    };
                    if alarm.actions_enabled == enabled {
                        return Ok(Step::Done(()));
                    }
                    alarm.actions_enabled = enabled;
                    let txn = Txn::new()
                        .when(&key, rev)
                        .put(&key, ::store::objects::encode(&alarm)?);
                    Ok(Step::Commit(txn, ()))
                })
                .await?;
        }
        Ok(())
    }

    /// DescribeAlarmHistory at `now` (epoch seconds).
    pub async fn history(
        &self,
        input: DescribeAlarmHistoryInput,
        now: i64,
    ) -> Result<Out, CloudWatchError> {
        let max = page_size(input.max_records)?;
        if let Some(t) = &input.history_item_type {
            if !matches!(
                t.as_str(),
                "ConfigurationUpdate"
                    | "StateUpdate"
                    | "Action"
                    | "AlarmContributorStateUpdate"
                    | "AlarmContributorAction"
            ) {
                return Err(invalid(t, "HistoryItemType"));
            }
        }
        let ascending = match input.scan_by.as_deref() {
            None | Some("TimestampDescending") => false,
            Some("TimestampAscending") => true,
            Some(s) => return Err(invalid(s, "ScanBy")),
        };
        let types = input.alarm_types.unwrap_or_default();
        let metric_wanted = types.is_empty() || types.iter().any(|t| t == "MetricAlarm");
        let cutoff = now
            .saturating_sub(HISTORY_RETENTION_SECS)
            .saturating_mul(1000);
        let mut items: Vec<(String, HistoryItem)> = self
            .objects
            .list::<HistoryItem>(HISTORY_PREFIX)
            .await?
            .into_iter()
            .filter(|(_, h, _)| {
                metric_wanted
                    && h.timestamp_ms >= cutoff
                    && input.alarm_name.as_ref().is_none_or(|n| &h.alarm_name == n)
                    && input
                        .history_item_type
                        .as_ref()
                        .is_none_or(|t| &h.item_type == t)
                    && input
                        .start_date
                        .is_none_or(|s| h.timestamp_ms as f64 >= s * 1000.0)
                    && input
                        .end_date
                        .is_none_or(|e| (h.timestamp_ms as f64) <= e * 1000.0)
            })
            .map(|(k, h, _)| (k, h))
            .collect();
        if !ascending {
            items.reverse();
        }
        let (page, next) = paginate(items, input.next_token.as_deref(), max, |(k, _)| k)?;
        let mut out = vec![(
            "AlarmHistoryItems",
            Out::List(page.iter().map(|(_, h)| h.to_out()).collect()),
        )];
        if let Some(n) = next {
            out.push(("NextToken", Out::Str(n)));
        }
        Ok(Out::Obj(out))
    }

    /// Deletes history older than two weeks.
    pub async fn sweep_history(&self, now: i64) -> Result<usize, CloudWatchError> {
        let cutoff = now
            .saturating_sub(HISTORY_RETENTION_SECS)
            .saturating_mul(1000);
        let old: Vec<String> = self
            .objects
            .keys(HISTORY_PREFIX)
            .await?
            .into_iter()
            .map(|(k, _)| k)
            .take_while(|k| {
                k[HISTORY_PREFIX.len()..]
                    .get(..16)
                    .and_then(|ms| ms.parse::<i64>().ok())
                    .is_some_and(|ms| ms < cutoff)
            })
            .collect();
        let count = old.len();
        for chunk in old.chunks(128) {
            let txn = chunk.iter().fold(Txn::new(), |t, k| t.delete(k.clone()));
            self.objects.commit(txn).await?;
        }
        Ok(count)
    }

    /// Applies an evaluation's verdict to `name` (if the alarm still has the
    /// configuration it was evaluated with) and runs its actions.
    pub async fn apply(
        &self,
        evaluated: &StoredAlarm,
        verdict: evaluate::Verdict,
        actions: &dyn AlarmActions,
        now_ms: i64,
    ) -> Result<(), CloudWatchError> {
        let changed = self
            .change_state(
                &evaluated.name,
                Some(evaluated.config_updated_ms),
                verdict.state,
                &verdict.reason,
                Some(&verdict.reason_data),
                now_ms,
            )
            .await?;
        match changed {
            Some(alarm) => self.fire(&alarm, actions, true, now_ms).await,
            None if verdict.state == State::Alarm && evaluated.state == State::Alarm => {
                // Still in ALARM: scaling policies are invoked again every period, with
                // this evaluation's datapoints (the stored reason keeps the transition's,
                // as AWS's does): a target tracking policy scales on the metric as it is
                // now, not as it was when the alarm fired, or a scale-in would stop short.
                let mut current = evaluated.clone();
                current.state_reason_data = Some(verdict.reason_data);
                self.fire(&current, actions, false, now_ms).await
            }
            None => Ok(()),
        }
    }

    /// Moves alarm `name` to `state` with its reason and data, writing the StateUpdate
    /// history item in the same transaction; the new record when the state changed.
    /// `config`: the configuration stamp an evaluation used; when the alarm has been
    /// reconfigured (or deleted) since, nothing changes and the next round evaluates
    /// the new rule. `None` (SetAlarmState): an absent alarm is ResourceNotFound.
    async fn change_state(
        &self,
        name: &str,
        config: Option<i64>,
        state: State,
        reason: &str,
        data: Option<&str>,
        now_ms: i64,
    ) -> Result<Option<StoredAlarm>, CloudWatchError> {
        let key = alarm_key(name);
        self.objects
            .retry(&key, || async {
                let Some((alarm, rev)) = self.objects.get::<StoredAlarm>(&key).await? else {
                    return match config {
                        Some(_) => Ok(Step::Done(None)),
                        None => Err(CloudWatchError::ResourceNotFound(format!(
                            "Alarm {name} does not exist."
                        ))),
                    };
                };
                if config.is_some_and(|c| c != alarm.config_updated_ms) {
                    return Ok(Step::Done(None));
                }
                let Some((next, item)) = transition(
                    &alarm,
                    state,
                    reason.to_owned(),
                    data.map(str::to_owned),
                    now_ms,
                ) else {
                    return Ok(Step::Done(None));
                };
                let txn = Txn::new()
                    .when(&key, rev)
                    .put(&key, ::store::objects::encode(&next)?);
                Ok(Step::Commit(put_history(txn, &item)?, Some(next)))
            })
            .await
    }

    /// Runs the actions of `alarm`'s current state: all of them on a transition, only
    /// Auto Scaling policies otherwise. Failures (and SNS, which this server does not
    /// serve) become Action history items.
    async fn fire(
        &self,
        alarm: &StoredAlarm,
        actions: &dyn AlarmActions,
        transition: bool,
        now_ms: i64,
    ) -> Result<(), CloudWatchError> {
        if !alarm.actions_enabled {
            return Ok(());
        }
        let mut txn = Txn::new();
        for arn in alarm.actions_for(alarm.state) {
            let scaling = arn.starts_with("arn:aws:autoscaling:");
            if !scaling && !transition {
                continue;
            }
            let result = if scaling {
                actions.invoke(alarm, arn, alarm.state)
            } else if arn.starts_with("arn:aws:sns:") {
                Err("Amazon SNS is not served by this server, so the notification was not delivered.".to_owned())
            } else {
                Err("This server does not execute this kind of alarm action.".to_owned())
            };
            let (summary, data) = match &result {
                Ok(()) if transition => (
                    format!("Successfully executed action {arn}"),
                    json!({"actionState": "Succeeded", "stateUpdateTimestamp": now_ms}),
                ),
                Ok(()) => continue,
                Err(error) => {
                    tracing::warn!(alarm = %alarm.name, action = %arn, %error, "Alarm action failed.");
                    (
                        format!("Failed to execute action {arn}"),
                        json!({"actionState": "Failed", "stateUpdateTimestamp": now_ms, "error": error}),
                    )
                }
            };
            let item = HistoryItem {
                alarm_name: alarm.name.clone(),
                timestamp_ms: now_ms,
                item_type: "Action".into(),
                summary,
                data: data.to_string(),
            };
            txn = put_history(txn, &item)?;
        }
        if !txn.ops.is_empty() {
            self.objects.commit(txn).await?;
        }
        Ok(())
    }
}

/// Evaluates `alarm` over `buckets` (the effective period's buckets of the window
/// `[start, end)`), at `now_ms`.
pub fn judge(
    alarm: &StoredAlarm,
    buckets: &[crate::store::Bucket],
    range: Range,
    now_ms: i64,
) -> evaluate::Verdict {
    let stat = Statistic::parse(alarm.statistic_name()).unwrap_or(Statistic::Average);
    let mut window = Vec::new();
    let mut t = range.start;
    while t < range.end {
        let value = buckets.iter().find(|b| b.timestamp == t).and_then(|b| {
            stat.compute(&b.set, &b.sketch)
                .map(|v| (v, b.set.sample_count))
        });
        window.push(Point {
            timestamp: t,
            value,
        });
        t += range.period;
    }
    evaluate::evaluate(
        &alarm.rule(),
        &window,
        alarm.state,
        Context {
            query_ms: now_ms,
            statistic: alarm.statistic_name(),
            period: alarm.period,
        },
    )
}

/// The evaluation window of `alarm` ending at `end` with `period` (the scaled period):
/// N + 2 periods, wider than N as AWS fetches.
pub fn window(alarm: &StoredAlarm, period: i64, end: i64) -> Range {
    let periods = alarm.evaluation_periods.saturating_add(2);
    Range {
        start: end.saturating_sub(period.saturating_mul(periods)),
        end,
        period,
    }
}

fn page_size(max: Option<i64>) -> Result<usize, CloudWatchError> {
    match max {
        None => Ok(MAX_RECORDS),
        Some(m) if (1..=100).contains(&m) => Ok(usize::try_from(m).unwrap_or(MAX_RECORDS)),
        Some(m) => Err(invalid(m, "MaxRecords")),
    }
}

/// A page of `items` after the token (the last key handed out), and the next token.
fn paginate<T>(
    items: Vec<T>,
    token: Option<&str>,
    max: usize,
    key: impl Fn(&T) -> &String,
) -> Result<(Vec<T>, Option<String>), CloudWatchError> {
    let skip = match token {
        None => 0,
        Some(t) => {
            items.iter().position(|i| key(i) == t).ok_or_else(|| {
                CloudWatchError::InvalidNextToken("The NextToken is not valid.".into())
            })? + 1
        }
    };
    let rest: Vec<T> = items.into_iter().skip(skip).collect();
    let more = rest.len() > max;
    let page: Vec<T> = rest.into_iter().take(max).collect();
    let next = if more {
        page.last().map(|i| key(i).clone())
    } else {
        None
    };
    Ok((page, next))
}

/// `DescribeAlarmsInput`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeAlarmsInput {
    alarm_names: Option<Vec<String>>,
    alarm_name_prefix: Option<String>,
    alarm_types: Option<Vec<String>>,
    state_value: Option<String>,
    action_prefix: Option<String>,
    #[serde(default, deserialize_with = "lenient_i64")]
    max_records: Option<i64>,
    next_token: Option<String>,
}

/// `DescribeAlarmsForMetricInput`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeAlarmsForMetricInput {
    metric_name: Option<String>,
    namespace: Option<String>,
    statistic: Option<String>,
    extended_statistic: Option<String>,
    dimensions: Option<Vec<DimensionIn>>,
    #[serde(default, deserialize_with = "lenient_i64")]
    period: Option<i64>,
    unit: Option<String>,
}

/// `DescribeAlarmHistoryInput`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeAlarmHistoryInput {
    alarm_name: Option<String>,
    alarm_types: Option<Vec<String>>,
    history_item_type: Option<String>,
    #[serde(default, deserialize_with = "lenient_time")]
    start_date: Option<f64>,
    #[serde(default, deserialize_with = "lenient_time")]
    end_date: Option<f64>,
    #[serde(default, deserialize_with = "lenient_i64")]
    max_records: Option<i64>,
    next_token: Option<String>,
    scan_by: Option<String>,
}

/// `SetAlarmStateInput`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SetAlarmStateInput {
    alarm_name: Option<String>,
    state_value: Option<String>,
    state_reason: Option<String>,
    state_reason_data: Option<String>,
}

/// `DeleteAlarmsInput` / `EnableAlarmActionsInput` / `DisableAlarmActionsInput`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AlarmNamesInput {
    /// `AlarmNames`.
    pub alarm_names: Option<Vec<String>>,
}
