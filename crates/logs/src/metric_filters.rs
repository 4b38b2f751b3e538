//! Metric filters: PutMetricFilter, DescribeMetricFilters, DeleteMetricFilter and
//! TestMetricFilter, and turning the events PutLogEvents accepts into metric datapoints.
//!
//! Logs does not know CloudWatch: datapoints leave through the [`MetricSink`] port, which
//! the binary wires to the region's metric store (without a sink, filters are kept and
//! described but publish nothing). Each matching event gives one datapoint at the event's
//! timestamp: the transformation's `metricValue` (a number, `$.field` of a JSON message or
//! `$name` of a space-delimited pattern; an event whose value is missing or not a number
//! gives none, as AWS drops it), with dimensions read the same way. A batch in which no
//! event matches a filter that has a `defaultValue` gives one datapoint of that value at
//! the batch's last timestamp — AWS reports the default for a period with logs but no
//! match, and a batch is the nearest unit of ingestion here.
//!
//! Stored under `logs/metricfilter/<group>:<filter>` (filter names cannot hold `:`);
//! DeleteLogGroup deletes a group's filters with it.

use crate::error::{invalid, LogsError};
use crate::objects::{encode, metric_filter_key, metric_filter_prefix, METRIC_FILTER_PREFIX};
use crate::pagination::{page_size, paginate};
use crate::pattern::{is_reference, Extracted, FilterPattern};
use crate::{Empty, Logs};
use model::logs::names::check_log_group_name;
use model::logs::shapes::{
    DeleteMetricFilterRequest, DescribeMetricFiltersRequest, DescribeMetricFiltersResponse,
    MetricFilter, MetricFilterMatchRecord, MetricTransformation, PutMetricFilterRequest,
    TestMetricFilterRequest, TestMetricFilterResponse,
};
use serde::{Deserialize, Serialize};
use store::Txn;

/// The most metric filters one log group may have.
pub const MAX_FILTERS_PER_GROUP: usize = 100;
/// The most dimensions one transformation may have.
const MAX_DIMENSIONS: usize = 3;
/// The most filters one DescribeMetricFilters page holds.
const MAX_DESCRIBE: usize = 50;
/// The most messages one TestMetricFilter call may test.
const MAX_TEST_MESSAGES: usize = 50;

/// One datapoint a metric filter made from a log event.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricPoint {
    /// The transformation's namespace.
    pub namespace: String,
    /// The transformation's metric name.
    pub metric_name: String,
    /// Dimension name → value read from the event.
    pub dimensions: Vec<(String, String)>,
    /// A CloudWatch standard unit name (`None` when the filter named none).
    pub unit: String,
    /// The event's timestamp, epoch milliseconds.
    pub timestamp_ms: i64,
    /// The value.
    pub value: f64,
}

/// Where metric filters' datapoints go (the binary wires it to CloudWatch). `publish`
/// must not block: PutLogEvents calls it before answering.
pub trait MetricSink: Send + Sync {
    /// Takes one batch's datapoints.
    fn publish(&self, points: Vec<MetricPoint>);
}

/// A stored metric filter.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredMetricFilter {
    /// The pattern as written.
    pub filter_pattern: String,
    /// Exactly one transformation (AWS's model allows only one).
    pub transformations: Vec<MetricTransformation>,
    /// Creation time, epoch milliseconds.
    pub creation_time: i64,
}

/// A filter ready to evaluate events.
pub(crate) struct LiveFilter {
    pattern: FilterPattern,
    transformations: Vec<MetricTransformation>,
}

impl LiveFilter {
    /// The datapoints one batch of (timestamp, message) events gives.
    fn points(&self, events: &[(i64, String)], out: &mut Vec<MetricPoint>) {
        let mut matched = false;
        for (ts, message) in events {
            let Some(extracted) = self.pattern.extract(message) else {
                continue;
            };
            matched = true;
            for t in &self.transformations {
                if let Some(p) = point(t, message, &extracted, *ts) {
                    out.push(p);
                }
            }
        }
        if matched {
            return;
        }
        let Some((last_ts, _)) = events.last() else {
            return;
        };
        for t in &self.transformations {
            if let Some(value) = t.default_value {
                out.push(MetricPoint {
                    namespace: t.metric_namespace.clone(),
                    metric_name: t.metric_name.clone(),
                    dimensions: Vec::new(),
                    unit: unit_name(t),
                    timestamp_ms: *last_ts,
                    value,
                });
            }
        }
    }
}

fn unit_name(t: &MetricTransformation) -> String {
    t.unit.map_or("None", |u| u.as_str()).to_owned()
}

/// The text a reference names in a matched event: `$name` from a delimited match, `$.x`
/// from the message as JSON (whatever kind of pattern matched it).
fn resolve(reference: &str, message: &str, extracted: &Extracted) -> Option<String> {
    if let Some(v) = extracted.lookup(reference) {
        return Some(v);
    }
    if reference.starts_with("$.") && !matches!(extracted, Extracted::Json(_)) {
        let json: serde_json::Value = serde_json::from_str(message.trim()).ok()?;
        return Extracted::Json(json).lookup(reference);
    }
    None
}

/// The datapoint of transformation `t` for one matched event, if its value and
/// dimensions are all there.
fn point(
    t: &MetricTransformation,
    message: &str,
    extracted: &Extracted,
    timestamp_ms: i64,
) -> Option<MetricPoint> {
    let value = if t.metric_value.starts_with('$') {
        resolve(&t.metric_value, message, extracted)?
            .trim()
            .parse::<f64>()
            .ok()?
    } else {
        t.metric_value.trim().parse::<f64>().ok()?
    };
    if !value.is_finite() {
        return None;
    }
    let mut dimensions = Vec::new();
    for (name, reference) in t.dimensions.iter().flatten() {
        let v = resolve(reference, message, extracted)?;
        if v.is_empty() {
            return None;
        }
        dimensions.push((name.clone(), v));
    }
    Some(MetricPoint {
        namespace: t.metric_namespace.clone(),
        metric_name: t.metric_name.clone(),
        dimensions,
        unit: unit_name(t),
        timestamp_ms,
        value,
    })
}

impl Logs {
    /// The metric filters of `group`, parsed, in name order (empty without a sink:
    /// nothing would receive their datapoints).
    pub(crate) async fn live_filters(&self, group: &str) -> Result<Vec<LiveFilter>, LogsError> {
        if self.metric_sink.is_none() {
            return Ok(Vec::new());
        }
        let stored = self
            .objects
            .list::<StoredMetricFilter>(&metric_filter_prefix(group))
            .await?;
        Ok(stored
            .into_iter()
            .filter_map(|(key, f, _)| match FilterPattern::parse(&f.filter_pattern) {
                Ok(pattern) => Some(LiveFilter {
                    pattern,
                    transformations: f.transformations,
                }),
                Err(error) => {
                    // PutMetricFilter parsed it; only a stored record from a later
                    // version's grammar could fail here.
                    tracing::warn!(%error, key, "A stored metric filter's pattern does not parse; it is skipped.");
                    None
                }
            })
            .collect())
    }

    /// Publishes what `filters` make of one accepted batch.
    pub(crate) fn publish_metrics(&self, filters: &[LiveFilter], events: &[(i64, String)]) {
        let Some(sink) = &self.metric_sink else {
            return;
        };
        let mut points = Vec::new();
        for f in filters {
            f.points(events, &mut points);
        }
        if !points.is_empty() {
            sink.publish(points);
        }
    }

    /// How many metric filters `group` has (DescribeLogGroups' `metricFilterCount`).
    pub(crate) async fn metric_filter_count(&self, group: &str) -> Result<i32, LogsError> {
        let n = self
            .objects
            .list::<StoredMetricFilter>(&metric_filter_prefix(group))
            .await?
            .len();
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }
}

/// AWS's checks of a filter name (`[^:*]*`, 1–512 characters).
fn check_filter_name(name: &str, member: &str) -> Result<(), LogsError> {
    let len = name.chars().count();
    if !(1..=512).contains(&len) {
        return invalid(format!("1 validation error detected: Value '{name}' at '{member}' failed to satisfy constraint: Member must have length between 1 and 512"));
    }
    if name.contains([':', '*']) {
        return invalid(format!("1 validation error detected: Value '{name}' at '{member}' failed to satisfy constraint: Member must satisfy regular expression pattern: [^:*]*"));
    }
    Ok(())
}

/// AWS's checks of a metric name or namespace (`[^:*$]*`, at most 255 characters).
fn check_metric_word(value: &str, member: &str) -> Result<(), LogsError> {
    if value.chars().count() > 255 {
        return invalid(format!("1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: Member must have length less than or equal to 255"));
    }
    if value.contains([':', '*', '$']) {
        return invalid(format!("1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: Member must satisfy regular expression pattern: [^:*$]*"));
    }
    Ok(())
}

/// Checks one transformation against the pattern it reads from.
fn check_transformation(
    t: &MetricTransformation,
    pattern: &FilterPattern,
) -> Result<(), LogsError> {
    let member = "metricTransformations.1.member";
    if t.metric_name.is_empty() || t.metric_namespace.is_empty() {
        return invalid(
            "Invalid metric transformation: metricName and metricNamespace must not be empty.",
        );
    }
    check_metric_word(&t.metric_name, &format!("{member}.metricName"))?;
    check_metric_word(&t.metric_namespace, &format!("{member}.metricNamespace"))?;
    if t.metric_value.chars().count() > 100 {
        return invalid(format!("1 validation error detected: Value '{}' at '{member}.metricValue' failed to satisfy constraint: Member must have length less than or equal to 100", t.metric_value));
    }
    let known = |reference: &str| {
        reference.starts_with("$.")
            || pattern
                .field_names()
                .iter()
                .any(|n| reference.strip_prefix('$') == Some(*n))
    };
    let value = t.metric_value.trim();
    if value.starts_with('$') {
        if !is_reference(value) || !known(value) {
            return invalid(format!("Invalid metric value: '{value}' is not a number, a JSON selector ($.field) or a field of the space-delimited filter pattern ($name)."));
        }
    } else if !value.parse::<f64>().is_ok_and(f64::is_finite) {
        return invalid(format!("Invalid metric value: '{value}' is not a number, a JSON selector ($.field) or a field of the space-delimited filter pattern ($name)."));
    }
    if let Some(dims) = &t.dimensions {
        if dims.len() > MAX_DIMENSIONS {
            return invalid(format!("A metric transformation can have at most {MAX_DIMENSIONS} dimensions; {} were given.", dims.len()));
        }
        if !dims.is_empty() && t.default_value.is_some() {
            return invalid(
                "A metric transformation cannot have both dimensions and a defaultValue.",
            );
        }
        for (name, reference) in dims {
            if name.is_empty() || name.chars().count() > 255 || reference.chars().count() > 255 {
                return invalid(format!(
                    "Invalid dimension '{name}': names and values must be 1 to 255 characters."
                ));
            }
            if !is_reference(reference) || !known(reference) {
                return invalid(format!("Invalid dimension value '{reference}' for dimension '{name}': it must name a field of the filter pattern ($.field or $name)."));
            }
        }
    }
    if t.default_value.is_some_and(|v| !v.is_finite()) {
        return invalid("Invalid metric transformation: defaultValue must be a finite number.");
    }
    Ok(())
}

pub(crate) async fn put_metric_filter(
    logs: &Logs,
    req: PutMetricFilterRequest,
) -> Result<Empty, LogsError> {
    check_log_group_name(&req.log_group_name).map_err(LogsError::InvalidParameter)?;
    check_filter_name(&req.filter_name, "filterName")?;
    let pattern = FilterPattern::parse(&req.filter_pattern)?;
    if req.metric_transformations.len() != 1 {
        return invalid(format!("1 validation error detected: Value at 'metricTransformations' failed to satisfy constraint: Member must have length between 1 and 1 (got {})", req.metric_transformations.len()));
    }
    for t in &req.metric_transformations {
        check_transformation(t, &pattern)?;
    }
    // Nothing accepted is dropped: these need log transformers, field indexes or
    // centralized logging, none of which this server has.
    if req.apply_on_transformed_logs == Some(true) {
        return invalid(
            "applyOnTransformedLogs is not supported: this server has no log transformers.",
        );
    }
    if req
        .field_selection_criteria
        .as_deref()
        .is_some_and(|c| !c.is_empty())
    {
        return invalid("fieldSelectionCriteria is not supported by this server.");
    }
    if req
        .emit_system_field_dimensions
        .as_ref()
        .is_some_and(|d| !d.is_empty())
    {
        return invalid("emitSystemFieldDimensions is not supported by this server: it has no centralized log groups.");
    }
    let group = req.log_group_name;
    let key = metric_filter_key(&group, &req.filter_name);
    let now = logs.now_ms();
    let record = |creation_time| StoredMetricFilter {
        filter_pattern: req.filter_pattern.clone(),
        transformations: req.metric_transformations.clone(),
        creation_time,
    };
    logs.objects
        .retry(&key, || async {
            // The group's revision guards the count: a filter added concurrently, or
            // the group deleted, makes the commit retry.
            let (g, grev) = logs.load_group(&group).await?;
            let existing = logs
                .objects
                .list::<StoredMetricFilter>(&metric_filter_prefix(&group))
                .await?;
            let current = existing.iter().find(|(k, _, _)| *k == key);
            let txn = match current {
                Some((_, f, rev)) => Txn::new()
                    .when(key.as_str(), *rev)
                    .put(key.as_str(), encode(&record(f.creation_time))?),
                None => {
                    if existing.len() >= MAX_FILTERS_PER_GROUP {
                        return Err(LogsError::LimitExceeded(format!(
                            "Resource limit exceeded: a log group can have at most {MAX_FILTERS_PER_GROUP} metric filters."
                        )));
                    }
                    // Rewriting the group bumps its revision, so two concurrent creations
                    // cannot both pass the count above.
                    let gkey = crate::objects::group_key(&group);
                    Txn::new()
                        .when(gkey.as_str(), grev)
                        .put(gkey.as_str(), encode(&g)?)
                        .when(key.as_str(), 0)
                        .put(key.as_str(), encode(&record(now))?)
                }
            };
            Ok(store::Step::Commit(txn, ()))
        })
        .await?;
    tracing::info!(log_group = %group, filter = %req.filter_name, "Metric filter put.");
    Ok(Empty {})
}

pub(crate) async fn delete_metric_filter(
    logs: &Logs,
    req: DeleteMetricFilterRequest,
) -> Result<Empty, LogsError> {
    check_log_group_name(&req.log_group_name).map_err(LogsError::InvalidParameter)?;
    check_filter_name(&req.filter_name, "filterName")?;
    logs.load_group(&req.log_group_name).await?;
    let key = metric_filter_key(&req.log_group_name, &req.filter_name);
    logs.objects
        .retry(&key, || async {
            let Some((_, rev)) = logs.objects.get::<StoredMetricFilter>(&key).await? else {
                return Err(LogsError::ResourceNotFound(
                    "The specified metric filter does not exist.".into(),
                ));
            };
            Ok(store::Step::Commit(
                Txn::new().when(key.as_str(), rev).delete(key.as_str()),
                (),
            ))
        })
        .await?;
    tracing::info!(log_group = %req.log_group_name, filter = %req.filter_name, "Metric filter deleted.");
    Ok(Empty {})
}

pub(crate) async fn describe_metric_filters(
    logs: &Logs,
    req: DescribeMetricFiltersRequest,
) -> Result<DescribeMetricFiltersResponse, LogsError> {
    let size = page_size(req.limit, MAX_DESCRIBE)?;
    if req.filter_name_prefix.is_some() && req.log_group_name.is_none() {
        return invalid("If you specify filterNamePrefix, you must also specify logGroupName.");
    }
    if req.metric_name.is_some() != req.metric_namespace.is_some() {
        return invalid("metricName and metricNamespace must be specified together.");
    }
    if let Some(p) = &req.filter_name_prefix {
        check_filter_name(p, "filterNamePrefix")?;
    }
    if let Some(n) = &req.metric_name {
        check_metric_word(n, "metricName")?;
    }
    if let Some(n) = &req.metric_namespace {
        check_metric_word(n, "metricNamespace")?;
    }
    let prefix = match &req.log_group_name {
        Some(group) => {
            check_log_group_name(group).map_err(LogsError::InvalidParameter)?;
            logs.load_group(group).await?;
            format!(
                "{}{}",
                metric_filter_prefix(group),
                req.filter_name_prefix.as_deref().unwrap_or("")
            )
        }
        None => METRIC_FILTER_PREFIX.to_owned(),
    };
    let mut items: Vec<(String, MetricFilter)> = logs
        .objects
        .list::<StoredMetricFilter>(&prefix)
        .await?
        .into_iter()
        .filter_map(|(key, f, _)| {
            let (group, name) = key[METRIC_FILTER_PREFIX.len()..].rsplit_once(':')?;
            let wanted = match (&req.metric_name, &req.metric_namespace) {
                (Some(n), Some(ns)) => f
                    .transformations
                    .iter()
                    .any(|t| t.metric_name == *n && t.metric_namespace == *ns),
                _ => true,
            };
            wanted.then(|| {
                (
                    // ASCII order by filter name, as AWS sorts; the group breaks ties.
                    format!("{name}\u{1}{group}"),
                    MetricFilter {
                        filter_name: Some(name.to_owned()),
                        filter_pattern: Some(f.filter_pattern),
                        metric_transformations: Some(f.transformations),
                        creation_time: Some(f.creation_time),
                        log_group_name: Some(group.to_owned()),
                        apply_on_transformed_logs: Some(false),
                        ..MetricFilter::default()
                    },
                )
            })
        })
        .collect();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let page = paginate(
        "metricfilters",
        items,
        req.next_token.as_deref(),
        size,
        false,
    )?;
    Ok(DescribeMetricFiltersResponse {
        metric_filters: Some(page.items),
        next_token: page.next_token,
    })
}

pub(crate) async fn test_metric_filter(
    _logs: &Logs,
    req: TestMetricFilterRequest,
) -> Result<TestMetricFilterResponse, LogsError> {
    let pattern = FilterPattern::parse(&req.filter_pattern)?;
    let n = req.log_event_messages.len();
    if !(1..=MAX_TEST_MESSAGES).contains(&n) {
        return invalid(format!("1 validation error detected: Value at 'logEventMessages' failed to satisfy constraint: Member must have length between 1 and {MAX_TEST_MESSAGES}"));
    }
    if req.log_event_messages.iter().any(String::is_empty) {
        return invalid("1 validation error detected: Value at 'logEventMessages' failed to satisfy constraint: Member must satisfy constraint: [Member must have length greater than or equal to 1]");
    }
    let matches = req
        .log_event_messages
        .into_iter()
        .zip(1i64..)
        .filter_map(|(message, number)| {
            let extracted = pattern.extract(&message)?;
            Some(MetricFilterMatchRecord {
                event_number: Some(number),
                extracted_values: Some(extracted.values()),
                event_message: Some(message),
            })
        })
        .collect();
    Ok(TestMetricFilterResponse {
        matches: Some(matches),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn transformation(value: &str, dims: &[(&str, &str)]) -> MetricTransformation {
        MetricTransformation {
            metric_name: "M".into(),
            metric_namespace: "NS".into(),
            metric_value: value.into(),
            default_value: None,
            dimensions: (!dims.is_empty()).then(|| {
                dims.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect::<BTreeMap<_, _>>()
            }),
            unit: None,
        }
    }

    fn live(pattern: &str, t: MetricTransformation) -> LiveFilter {
        let pattern = FilterPattern::parse(pattern).expect("parses");
        check_transformation(&t, &pattern).expect("valid transformation");
        LiveFilter {
            pattern,
            transformations: vec![t],
        }
    }

    fn points(f: &LiveFilter, events: &[(i64, &str)]) -> Vec<MetricPoint> {
        let events: Vec<(i64, String)> =
            events.iter().map(|(t, m)| (*t, (*m).to_owned())).collect();
        let mut out = Vec::new();
        f.points(&events, &mut out);
        out
    }

    #[test]
    fn a_constant_value_counts_matching_events() {
        let f = live("ERROR", transformation("1", &[]));
        let p = points(&f, &[(1, "ERROR a"), (2, "ok"), (3, "ERROR b")]);
        assert_eq!(
            p.iter()
                .map(|p| (p.timestamp_ms, p.value))
                .collect::<Vec<_>>(),
            [(1, 1.0), (3, 1.0)]
        );
        assert_eq!(p[0].unit, "None");
    }

    #[test]
    fn values_and_dimensions_come_from_json_and_delimited_fields() {
        let f = live(
            "{ $.latency > 0 }",
            transformation("$.latency", &[("Service", "$.svc")]),
        );
        let p = points(
            &f,
            &[
                (5, r#"{"latency": 12.5, "svc": "web"}"#),
                (6, r#"{"latency": 3}"#),
            ],
        );
        // The second event has no `svc`: no datapoint.
        assert_eq!(p.len(), 1);
        assert_eq!(
            (p[0].value, p[0].dimensions.clone()),
            (12.5, vec![("Service".into(), "web".into())])
        );
        let f = live(
            "[ip, user, status, bytes]",
            transformation("$bytes", &[("Status", "$status")]),
        );
        let p = points(
            &f,
            &[(1, "1.2.3.4 bob 200 512"), (2, "1.2.3.4 bob 200 n/a")],
        );
        assert_eq!(
            p.len(),
            1,
            "a value that is not a number gives no datapoint"
        );
        assert_eq!((p[0].value, p[0].dimensions[0].1.as_str()), (512.0, "200"));
    }

    #[test]
    fn a_terms_pattern_may_still_read_json_fields() {
        let f = live("timeout", transformation("$.ms", &[]));
        let p = points(&f, &[(1, r#"{"msg": "timeout", "ms": 30}"#)]);
        assert_eq!(p[0].value, 30.0);
    }

    #[test]
    fn the_default_value_marks_a_batch_without_matches() {
        let mut t = transformation("1", &[]);
        t.default_value = Some(0.0);
        let f = live("ERROR", t);
        let p = points(&f, &[(1, "ok"), (9, "fine")]);
        assert_eq!(
            p.iter()
                .map(|p| (p.timestamp_ms, p.value))
                .collect::<Vec<_>>(),
            [(9, 0.0)]
        );
        assert_eq!(points(&f, &[(1, "ERROR")]).len(), 1);
    }

    #[test]
    fn transformations_are_checked_against_their_pattern() {
        let p = FilterPattern::parse("[ip, bytes]").expect("parses");
        assert!(check_transformation(&transformation("$bytes", &[]), &p).is_ok());
        assert!(check_transformation(&transformation("$size", &[]), &p).is_err());
        assert!(check_transformation(&transformation("abc", &[]), &p).is_err());
        assert!(check_transformation(
            &transformation(
                "1",
                &[("a", "$ip"), ("b", "$ip"), ("c", "$ip"), ("d", "$ip")]
            ),
            &p
        )
        .is_err());
        assert!(check_transformation(&transformation("1", &[("a", "literal")]), &p).is_err());
        let mut t = transformation("1", &[("a", "$ip")]);
        t.default_value = Some(0.0);
        assert!(check_transformation(&t, &p).is_err());
        let mut t = transformation("1", &[]);
        t.metric_name = "a:b".into();
        assert!(check_transformation(&t, &p).is_err());
    }
}
