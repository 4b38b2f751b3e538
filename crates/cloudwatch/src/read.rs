//! The read operations: GetMetricStatistics, GetMetricData (metric stats and metric
//! math, paged by MaxDatapoints) and ListMetrics, each validated as AWS validates it and
//! answered as an [`Out`] tree.

use crate::codec::{lenient_bool, lenient_i64, lenient_time, Out};
use crate::error::CloudWatchError;
use crate::math::{self, Series};
use crate::put::{
    check_dimensions, check_namespace, check_text, check_unit, invalid, missing, DimensionIn,
};
use crate::series::{DimensionFilter, SeriesKey};
use crate::stats::Statistic;
use crate::store::{MetricStore, Range};
use serde::Deserialize;
use std::collections::HashMap;

/// GetMetricStatistics answers at most this many datapoints.
pub const MAX_STATISTICS_POINTS: i64 = 1440;
/// GetMetricData takes at most this many queries.
pub const MAX_QUERIES: usize = 500;
/// GetMetricData's default (and largest) MaxDatapoints.
pub const MAX_DATA_POINTS: i64 = 100_800;
/// ListMetrics' page size.
pub const LIST_PAGE: usize = 500;
/// How deep expressions may refer to other expressions.
const MAX_EXPRESSION_DEPTH: usize = 20;
/// RecentlyActive's one value, in seconds.
const RECENTLY_ACTIVE_SECS: i64 = 3 * 3600;

/// A period AWS accepts: 1, 5, 10, 20 or 30 (high resolution) or a multiple of 60.
fn check_period(period: Option<i64>, name: &str) -> Result<i64, CloudWatchError> {
    let p = period.ok_or_else(|| missing(name))?;
    if p < 1 {
        return Err(invalid(p, name));
    }
    if !matches!(p, 1 | 5 | 10 | 20 | 30) && p % 60 != 0 {
        return Err(CloudWatchError::InvalidParameterValue(format!(
            "The parameter {name} must be 1, 5, 10, 20, 30 or a multiple of 60."
        )));
    }
    Ok(p)
}

#[allow(clippy::cast_possible_truncation)]
fn whole_secs(t: f64) -> i64 {
    t.floor() as i64
}

/// `GetMetricStatisticsInput`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetMetricStatisticsInput {
    namespace: Option<String>,
    metric_name: Option<String>,
    dimensions: Option<Vec<DimensionIn>>,
    #[serde(default, deserialize_with = "lenient_time")]
    start_time: Option<f64>,
    #[serde(default, deserialize_with = "lenient_time")]
    end_time: Option<f64>,
    #[serde(default, deserialize_with = "lenient_i64")]
    period: Option<i64>,
    statistics: Option<Vec<String>>,
    extended_statistics: Option<Vec<String>>,
    unit: Option<String>,
}

/// GetMetricStatistics at `now` (epoch seconds).
pub fn get_metric_statistics(
    store: &MetricStore,
    input: GetMetricStatisticsInput,
    now: i64,
) -> Result<Out, CloudWatchError> {
    let namespace = check_namespace(input.namespace.as_deref(), "Namespace")?;
    let metric_name = check_text(input.metric_name.as_deref(), "MetricName", 255)?.to_owned();
    let dimensions = check_dimensions(input.dimensions.as_deref(), "Dimensions")?;
    let start = whole_secs(input.start_time.ok_or_else(|| missing("StartTime"))?);
    let end = whole_secs(input.end_time.ok_or_else(|| missing("EndTime"))?);
    let period = check_period(input.period, "Period")?;
    let unit = check_unit(input.unit.as_deref(), "Unit")?;
    let stats = input.statistics.unwrap_or_default();
    let extended = input.extended_statistics.unwrap_or_default();
    if stats.is_empty() == extended.is_empty() {
        return Err(CloudWatchError::InvalidParameterCombination(
            "Must specify either Statistics or ExtendedStatistics, but not both.".into(),
        ));
    }
    if stats.len() > 5 {
        return Err(CloudWatchError::InvalidParameterValue(
            "The collection Statistics must not have a size greater than 5.".into(),
        ));
    }
    if extended.len() > 10 {
        return Err(CloudWatchError::InvalidParameterValue(
            "The collection ExtendedStatistics must not have a size greater than 10.".into(),
        ));
    }
    let mut named = Vec::new();
    for (i, s) in stats.iter().enumerate() {
        let stat = Statistic::named(s)
            .ok_or_else(|| invalid(s, &format!("Statistics.member.{}", i + 1)))?;
        named.push((s.clone(), stat));
    }
    let mut percentiles = Vec::new();
    for (i, s) in extended.iter().enumerate() {
        let stat = Statistic::percentile(s)
            .ok_or_else(|| invalid(s, &format!("ExtendedStatistics.member.{}", i + 1)))?;
        percentiles.push((s.clone(), stat));
    }
    if start >= end {
        return Err(CloudWatchError::InvalidParameterValue(
            "The parameter StartTime must be less than the parameter EndTime.".into(),
        ));
    }
    let points = end.saturating_sub(start).saturating_add(period - 1) / period;
    if points > MAX_STATISTICS_POINTS {
        return Err(CloudWatchError::InvalidParameterCombination(format!(
            "You have requested up to {points} datapoints, which exceeds the limit of {MAX_STATISTICS_POINTS}. You may reduce the datapoints requested by increasing Period, or decreasing the time range."
        )));
    }
    let key = SeriesKey::new(namespace, metric_name.clone(), dimensions);
    let buckets = store.query(
        &key,
        unit.as_deref(),
        Range { start, end, period },
        now,
        !percentiles.is_empty(),
    )?;
    let datapoints = buckets
        .iter()
        .map(|b| {
            let mut fields = vec![("Timestamp", Out::Time(b.timestamp))];
            for (name, stat) in &named {
                if let Some(v) = stat.compute(&b.set, &b.sketch) {
                    fields.push((statistic_member(name), Out::F64(v)));
                }
            }
            fields.push(("Unit", Out::Str(b.unit.clone())));
            if !percentiles.is_empty() {
                let entries: Vec<(String, Out)> = percentiles
                    .iter()
                    .filter_map(|(name, stat)| {
                        stat.compute(&b.set, &b.sketch)
                            .map(|v| (name.clone(), Out::F64(v)))
                    })
                    .collect();
                fields.push(("ExtendedStatistics", Out::Map(entries)));
            }
            Out::Obj(fields)
        })
        .collect();
    Ok(Out::Obj(vec![
        ("Label", Out::Str(metric_name)),
        ("Datapoints", Out::List(datapoints)),
    ]))
}

fn statistic_member(name: &str) -> &'static str {
    match name {
        "SampleCount" => "SampleCount",
        "Average" => "Average",
        "Sum" => "Sum",
        "Minimum" => "Minimum",
        _ => "Maximum",
    }
}

/// `GetMetricDataInput`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetMetricDataInput {
    metric_data_queries: Option<Vec<MetricDataQuery>>,
    #[serde(default, deserialize_with = "lenient_time")]
    start_time: Option<f64>,
    #[serde(default, deserialize_with = "lenient_time")]
    end_time: Option<f64>,
    next_token: Option<String>,
    scan_by: Option<String>,
    #[serde(default, deserialize_with = "lenient_i64")]
    max_datapoints: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetricDataQuery {
    id: Option<String>,
    metric_stat: Option<MetricStat>,
    expression: Option<String>,
    label: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    return_data: Option<bool>,
    #[serde(default, deserialize_with = "lenient_i64")]
    period: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetricStat {
    metric: Option<MetricIn>,
    #[serde(default, deserialize_with = "lenient_i64")]
    period: Option<i64>,
    stat: Option<String>,
    unit: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetricIn {
    namespace: Option<String>,
    metric_name: Option<String>,
    dimensions: Option<Vec<DimensionIn>>,
}

/// One validated query.
enum Query {
    Stat {
        key: SeriesKey,
        period: i64,
        stat: Statistic,
        unit: Option<String>,
    },
    Expr {
        expr: math::Expr,
        period: Option<i64>,
    },
}

struct Planned {
    id: String,
    label: Option<String>,
    return_data: bool,
    query: Query,
}

fn validation(message: String) -> CloudWatchError {
    CloudWatchError::Validation(message)
}

fn plan_query(q: MetricDataQuery, at: &str) -> Result<Planned, CloudWatchError> {
    let id = q.id.ok_or_else(|| missing(&format!("{at}.Id")))?;
    let valid_id = id.len() <= 255
        && id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_id {
        return Err(validation(format!(
            "The value {id} for parameter {at}.Id is not valid: it must start with a lowercase letter and hold only letters, digits and underscores."
        )));
    }
    let query = match (q.metric_stat, q.expression) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(validation(format!(
                "Exactly one of {at}.MetricStat and {at}.Expression must be set."
            )))
        }
        (Some(ms), None) => {
            let m = ms
                .metric
                .ok_or_else(|| missing(&format!("{at}.MetricStat.Metric")))?;
            let namespace = check_namespace(
                m.namespace.as_deref(),
                &format!("{at}.MetricStat.Metric.Namespace"),
            )?;
            let name = check_text(
                m.metric_name.as_deref(),
                &format!("{at}.MetricStat.Metric.MetricName"),
                255,
            )?;
            let dims = check_dimensions(
                m.dimensions.as_deref(),
                &format!("{at}.MetricStat.Metric.Dimensions"),
            )?;
            let period = check_period(ms.period, &format!("{at}.MetricStat.Period"))?;
            let stat_name = ms
                .stat
                .ok_or_else(|| missing(&format!("{at}.MetricStat.Stat")))?;
            let stat = Statistic::parse(&stat_name)
                .ok_or_else(|| invalid(&stat_name, &format!("{at}.MetricStat.Stat")))?;
            let unit = check_unit(ms.unit.as_deref(), &format!("{at}.MetricStat.Unit"))?;
            Query::Stat {
                key: SeriesKey::new(namespace, name, dims),
                period,
                stat,
                unit,
            }
        }
        (None, Some(text)) => {
            if text.is_empty() || text.chars().count() > 2048 {
                return Err(invalid(&text, &format!("{at}.Expression")));
            }
            let expr = math::parse(&text)
                .map_err(|e| validation(format!("Error in expression {id}: {e}")))?;
            let period = q
                .period
                .map(|p| check_period(Some(p), &format!("{at}.Period")))
                .transpose()?;
            Query::Expr { expr, period }
        }
    };
    Ok(Planned {
        id,
        label: q.label,
        return_data: q.return_data.unwrap_or(true),
        query,
    })
}

/// The request's window and the store, shared by every query's evaluation.
struct Evaluation<'a> {
    store: &'a MetricStore,
    queries: &'a [Planned],
    start: i64,
    end: i64,
    now: i64,
    grid: Vec<i64>,
    done: HashMap<String, Series>,
    /// Ids being evaluated: a reference back to one is a cycle.
    stack: Vec<String>,
}

impl Evaluation<'_> {
    fn evaluate(&mut self, index: usize) -> Result<Series, CloudWatchError> {
        let queries = self.queries;
        let q = &queries[index];
        if let Some(s) = self.done.get(&q.id) {
            return Ok(s.clone());
        }
        let series = match &q.query {
            Query::Stat {
                key,
                period,
                stat,
                unit,
            } => {
                let range = Range {
                    start: self.start,
                    end: self.end,
                    period: *period,
                };
                let wants_sketch = matches!(stat, Statistic::Percentile(_));
                self.store
                    .query(key, unit.as_deref(), range, self.now, wants_sketch)?
                    .into_iter()
                    .filter_map(|b| stat.compute(&b.set, &b.sketch).map(|v| (b.timestamp, v)))
                    .collect()
            }
            Query::Expr { expr, period } => {
                if self.stack.contains(&q.id) {
                    return Err(validation(format!(
                        "Error in expression {}: circular reference",
                        q.id
                    )));
                }
                // Expressions referring to expressions recurse: bound the chain so no
                // request can exhaust a blocking thread's stack.
                if self.stack.len() >= MAX_EXPRESSION_DEPTH {
                    return Err(validation(format!(
                        "Error in expression {}: expressions refer to each other more than {MAX_EXPRESSION_DEPTH} deep",
                        q.id
                    )));
                }
                let step = period
                    .or_else(|| self.referenced_period(expr))
                    .unwrap_or(60);
                self.grid = grid(self.start, self.end, step);
                self.stack.push(q.id.clone());
                let id = q.id.clone();
                let value = math::eval(expr, self);
                self.stack.pop();
                match value.map_err(|e| validation(format!("Error in expression {id}: {e}")))? {
                    math::Value::Series(s) => s,
                    math::Value::Scalar(k) if k.is_finite() => {
                        self.grid.iter().map(|t| (*t, k)).collect()
                    }
                    math::Value::Scalar(_) => Series::new(),
                    math::Value::Array(_) => {
                        return Err(validation(format!(
                        "Error in expression {id}: the expression must return a single time series"
                    )))
                    }
                }
            }
        };
        self.done
            .insert(self.queries[index].id.clone(), series.clone());
        Ok(series)
    }

    /// The period of the first MetricStat an expression refers to (directly).
    fn referenced_period(&self, expr: &math::Expr) -> Option<i64> {
        let mut ids = Vec::new();
        math::references(expr, &mut ids);
        let metrics = ids.is_empty() || matches!(expr, math::Expr::Call(..));
        self.queries.iter().find_map(|q| match &q.query {
            Query::Stat { period, .. } if metrics || ids.contains(&q.id) => Some(*period),
            _ => None,
        })
    }
}

impl math::Context for Evaluation<'_> {
    fn series(&mut self, id: &str) -> Result<Series, String> {
        let index = self
            .queries
            .iter()
            .position(|q| q.id == id)
            .ok_or_else(|| format!("Unrecognized identifier {id}"))?;
        let grid = self.grid.clone();
        let out = self.evaluate(index).map_err(|e| e.to_string());
        self.grid = grid;
        out
    }
    fn metrics(&mut self, filter: &str) -> Result<Vec<Series>, String> {
        let ids: Vec<String> = self
            .queries
            .iter()
            .filter(|q| matches!(q.query, Query::Stat { .. }) && q.id.contains(filter))
            .map(|q| q.id.clone())
            .collect();
        ids.iter().map(|id| self.series(id)).collect()
    }
    fn grid(&self) -> &[i64] {
        &self.grid
    }
}

fn grid(start: i64, end: i64, step: i64) -> Vec<i64> {
    let step = step.max(1);
    let first = start.div_euclid(step) * step;
    // Checked: outside input picks the start, end and step.
    std::iter::successors(Some(first), |t| t.checked_add(step))
        .take_while(|t| *t < end)
        .take(usize::try_from(MAX_DATA_POINTS).unwrap_or(usize::MAX))
        .collect()
}

/// GetMetricData at `now`.
pub fn get_metric_data(
    store: &MetricStore,
    input: GetMetricDataInput,
    now: i64,
) -> Result<Out, CloudWatchError> {
    let raw = input
        .metric_data_queries
        .ok_or_else(|| missing("MetricDataQueries"))?;
    if raw.is_empty() {
        return Err(missing("MetricDataQueries"));
    }
    if raw.len() > MAX_QUERIES {
        return Err(validation(format!(
            "The collection MetricDataQueries must not have a size greater than {MAX_QUERIES}."
        )));
    }
    let start = whole_secs(input.start_time.ok_or_else(|| missing("StartTime"))?);
    let end = whole_secs(input.end_time.ok_or_else(|| missing("EndTime"))?);
    if start >= end {
        return Err(validation(
            "The parameter StartTime must be less than the parameter EndTime.".into(),
        ));
    }
    let descending = match input.scan_by.as_deref() {
        None | Some("TimestampDescending") => true,
        Some("TimestampAscending") => false,
        Some(other) => return Err(invalid(other, "ScanBy")),
    };
    let max = input.max_datapoints.unwrap_or(MAX_DATA_POINTS);
    if !(1..=MAX_DATA_POINTS).contains(&max) {
        return Err(invalid(max, "MaxDatapoints"));
    }
    let offset = match input.next_token.as_deref().filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => wire::pagination::decode_token("GetMetricData", t)
            .ok()
            .and_then(|p| p.parse::<usize>().ok())
            .ok_or_else(|| {
                CloudWatchError::InvalidNextToken("The NextToken is not valid.".into())
            })?,
    };
    let queries: Vec<Planned> = raw
        .into_iter()
        .enumerate()
        .map(|(i, q)| plan_query(q, &format!("MetricDataQueries.member.{}", i + 1)))
        .collect::<Result<_, _>>()?;
    for (i, q) in queries.iter().enumerate() {
        if queries[..i].iter().any(|p| p.id == q.id) {
            return Err(validation(format!(
                "The value {} for parameter MetricDataQueries.member.{}.Id is not unique.",
                q.id,
                i + 1
            )));
        }
    }
    if !queries.iter().any(|q| q.return_data) {
        return Err(validation(
            "At least one MetricDataQuery must have ReturnData set to true.".into(),
        ));
    }
    let mut eval = Evaluation {
        store,
        queries: &queries,
        start,
        end,
        now,
        grid: Vec::new(),
        done: HashMap::new(),
        stack: Vec::new(),
    };
    let mut results: Vec<(usize, Vec<(i64, f64)>)> = Vec::new();
    for (i, q) in queries.iter().enumerate() {
        if q.return_data {
            let mut points: Vec<(i64, f64)> = eval.evaluate(i)?.into_iter().collect();
            if descending {
                points.reverse();
            }
            results.push((i, points));
        }
    }
    Ok(page(
        &queries,
        results,
        offset,
        usize::try_from(max).unwrap_or(usize::MAX),
    ))
}

/// One page of results: the points after `offset` (counted over every result in order),
/// at most `max` of them; results cut short say PartialData and a NextToken follows.
fn page(
    queries: &[Planned],
    results: Vec<(usize, Vec<(i64, f64)>)>,
    offset: usize,
    max: usize,
) -> Out {
    let mut skip = offset;
    let mut room = max;
    let mut truncated = false;
    let mut out = Vec::new();
    for (i, points) in results {
        let q = &queries[i];
        let from = skip.min(points.len());
        skip -= from;
        let take = room.min(points.len() - from);
        room -= take;
        let partial = from + take < points.len();
        truncated |= partial;
        let slice = &points[from..from + take];
        let label = q.label.clone().unwrap_or_else(|| match &q.query {
            Query::Stat { key, .. } => key.metric_name.clone(),
            Query::Expr { .. } => q.id.clone(),
        });
        out.push(Out::Obj(vec![
            ("Id", Out::Str(q.id.clone())),
            ("Label", Out::Str(label)),
            (
                "Timestamps",
                Out::List(slice.iter().map(|(t, _)| Out::Time(*t)).collect()),
            ),
            (
                "Values",
                Out::List(slice.iter().map(|(_, v)| Out::F64(*v)).collect()),
            ),
            (
                "StatusCode",
                Out::Str(if partial { "PartialData" } else { "Complete" }.into()),
            ),
        ]));
    }
    let mut fields = vec![
        ("MetricDataResults", Out::List(out)),
        ("Messages", Out::List(Vec::new())),
    ];
    if truncated {
        let token = wire::pagination::encode_token(
            "GetMetricData",
            &offset.saturating_add(max).to_string(),
        );
        fields.push(("NextToken", Out::Str(token)));
    }
    Out::Obj(fields)
}

/// `ListMetricsInput`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListMetricsInput {
    namespace: Option<String>,
    metric_name: Option<String>,
    dimensions: Option<Vec<DimensionFilterIn>>,
    next_token: Option<String>,
    recently_active: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DimensionFilterIn {
    name: Option<String>,
    value: Option<String>,
}

/// ListMetrics at `now`.
pub fn list_metrics(
    store: &MetricStore,
    input: ListMetricsInput,
    now: i64,
) -> Result<Out, CloudWatchError> {
    let recent = match input.recently_active.as_deref() {
        None => false,
        Some("PT3H") => true,
        Some(other) => return Err(invalid(other, "RecentlyActive")),
    };
    let filters = input.dimensions.unwrap_or_default();
    if filters.len() > 10 {
        return Err(CloudWatchError::InvalidParameterValue(
            "The collection Dimensions must not have a size greater than 10.".into(),
        ));
    }
    let filters: Vec<DimensionFilter> = filters
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let name = check_text(
                f.name.as_deref(),
                &format!("Dimensions.member.{}.Name", i + 1),
                255,
            )?;
            Ok(DimensionFilter {
                name: name.to_owned(),
                value: f.value,
            })
        })
        .collect::<Result<_, CloudWatchError>>()?;
    let offset = match input.next_token.as_deref().filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => wire::pagination::decode_token("ListMetrics", t)
            .ok()
            .and_then(|p| p.parse::<usize>().ok())
            .ok_or_else(|| invalid(t, "NextToken"))?,
    };
    let all = store.list(now, |key, last_put| {
        input.namespace.as_ref().is_none_or(|n| *n == key.namespace)
            && input
                .metric_name
                .as_ref()
                .is_none_or(|n| *n == key.metric_name)
            && filters.iter().all(|f| f.admits(key))
            && (!recent || last_put >= now - RECENTLY_ACTIVE_SECS)
    });
    let metrics: Vec<Out> = all
        .iter()
        .skip(offset)
        .take(LIST_PAGE)
        .map(|(key, _)| metric_out(key))
        .collect();
    let mut fields = vec![("Metrics", Out::List(metrics))];
    if all.len() > offset.saturating_add(LIST_PAGE) {
        fields.push((
            "NextToken",
            Out::Str(wire::pagination::encode_token(
                "ListMetrics",
                &(offset.saturating_add(LIST_PAGE)).to_string(),
            )),
        ));
    }
    Ok(Out::Obj(fields))
}

fn metric_out(key: &SeriesKey) -> Out {
    let dims = key
        .dimensions()
        .iter()
        .map(|d| {
            Out::Obj(vec![
                ("Name", Out::Str(d.name.clone())),
                ("Value", Out::Str(d.value.clone())),
            ])
        })
        .collect();
    Out::Obj(vec![
        ("Namespace", Out::Str(key.namespace.clone())),
        ("MetricName", Out::Str(key.metric_name.clone())),
        ("Dimensions", Out::List(dims)),
    ])
}
