//! PutMetricData: decoding, AWS's validation (scaling-facts §2) and reduction of each
//! datum to a store [`Sample`].

use crate::codec::{lenient_f64, lenient_f64_list, lenient_i64, lenient_time};
use crate::error::CloudWatchError;
use crate::series::{Dimension, SeriesKey};
use crate::stats::{Sketch, StatisticSet};
use crate::store::Sample;
use serde::Deserialize;

/// At most this many metrics per call.
pub const MAX_METRICS: usize = 1000;
/// At most this many dimensions per metric.
pub const MAX_DIMENSIONS: usize = 30;
/// At most this many `Values` (and `Counts`) per metric.
pub const MAX_VALUES: usize = 150;
/// Oldest accepted timestamp: two weeks back.
const MAX_AGE_SECS: f64 = 14.0 * 86_400.0;
/// Newest accepted timestamp: two hours ahead.
const MAX_AHEAD_SECS: f64 = 2.0 * 3600.0;

/// The units of the model's `StandardUnit`.
pub const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// `PutMetricDataInput`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutMetricDataInput {
    namespace: Option<String>,
    metric_data: Option<Vec<MetricDatum>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetricDatum {
    metric_name: Option<String>,
    dimensions: Option<Vec<DimensionIn>>,
    #[serde(default, deserialize_with = "lenient_time")]
    timestamp: Option<f64>,
    #[serde(default, deserialize_with = "lenient_f64")]
    value: Option<f64>,
    statistic_values: Option<StatisticValues>,
    #[serde(default, deserialize_with = "lenient_f64_list")]
    values: Option<Vec<f64>>,
    #[serde(default, deserialize_with = "lenient_f64_list")]
    counts: Option<Vec<f64>>,
    unit: Option<String>,
    #[serde(default, deserialize_with = "lenient_i64")]
    storage_resolution: Option<i64>,
}

/// A `Dimension` as sent (PutMetricData, GetMetricStatistics, GetMetricData).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DimensionIn {
    name: Option<String>,
    value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StatisticValues {
    #[serde(default, deserialize_with = "lenient_f64")]
    sample_count: Option<f64>,
    #[serde(default, deserialize_with = "lenient_f64")]
    sum: Option<f64>,
    #[serde(default, deserialize_with = "lenient_f64")]
    minimum: Option<f64>,
    #[serde(default, deserialize_with = "lenient_f64")]
    maximum: Option<f64>,
}

/// `The parameter X is required.`
pub fn missing(name: &str) -> CloudWatchError {
    CloudWatchError::MissingParameter(format!("The parameter {name} is required."))
}

/// `The value V for parameter X is not valid.`
pub fn invalid(value: impl std::fmt::Display, name: &str) -> CloudWatchError {
    CloudWatchError::InvalidParameterValue(format!(
        "The value {value} for parameter {name} is not valid."
    ))
}

fn too_many(name: &str, max: usize) -> CloudWatchError {
    CloudWatchError::InvalidParameterValue(format!(
        "The collection {name} must not have a size greater than {max}."
    ))
}

/// A name-like string: 1 to `max` characters.
pub fn check_text<'a>(
    value: Option<&'a str>,
    name: &str,
    max: usize,
) -> Result<&'a str, CloudWatchError> {
    let v = value.ok_or_else(|| missing(name))?;
    if v.is_empty() || v.chars().count() > max {
        return Err(invalid(v, name));
    }
    Ok(v)
}

/// Validates a namespace (1–255 characters, not starting with `:`).
pub fn check_namespace(value: Option<&str>, name: &str) -> Result<String, CloudWatchError> {
    let v = check_text(value, name, 255)?;
    if v.starts_with(':') {
        return Err(invalid(v, name));
    }
    Ok(v.to_owned())
}

/// Validates a metric's dimensions: at most 30, names 1–255 and values 1–1024 characters,
/// no name twice.
pub fn check_dimensions(
    dims: Option<&[DimensionIn]>,
    name: &str,
) -> Result<Vec<Dimension>, CloudWatchError> {
    let dims = dims.unwrap_or_default();
    if dims.len() > MAX_DIMENSIONS {
        return Err(too_many(name, MAX_DIMENSIONS));
    }
    let mut out: Vec<Dimension> = Vec::with_capacity(dims.len());
    for (i, d) in dims.iter().enumerate() {
        let at = format!("{name}.member.{}", i + 1);
        let n = check_text(d.name.as_deref(), &format!("{at}.Name"), 255)?;
        let v = check_text(d.value.as_deref(), &format!("{at}.Value"), 1024)?;
        if out.iter().any(|o| o.name == n) {
            return Err(CloudWatchError::InvalidParameterValue(format!(
                "No metric may have the same dimension name twice: {n} is given twice in {name}."
            )));
        }
        out.push(Dimension {
            name: n.to_owned(),
            value: v.to_owned(),
        });
    }
    Ok(out)
}

/// A unit from `StandardUnit`.
pub fn check_unit(unit: Option<&str>, name: &str) -> Result<Option<String>, CloudWatchError> {
    match unit {
        None => Ok(None),
        Some(u) if UNITS.contains(&u) => Ok(Some(u.to_owned())),
        Some(u) => Err(invalid(u, name)),
    }
}

/// A value CloudWatch accepts: finite, and 0 or of magnitude within [2^-260, 2^360].
fn check_value(v: f64, name: &str) -> Result<f64, CloudWatchError> {
    let ok =
        v.is_finite() && (v == 0.0 || (v.abs() <= 2f64.powi(360) && v.abs() >= 2f64.powi(-260)));
    if ok {
        Ok(v)
    } else {
        Err(invalid(v, name))
    }
}

/// Validates a PutMetricData request at `now` (epoch seconds) and reduces it to samples.
pub fn plan_put(input: PutMetricDataInput, now: f64) -> Result<Vec<Sample>, CloudWatchError> {
    let namespace = check_namespace(input.namespace.as_deref(), "Namespace")?;
    if namespace.starts_with("AWS/") {
        return Err(CloudWatchError::InvalidParameterValue(format!(
            "The value {namespace} for parameter Namespace is not valid: the AWS/ namespaces are reserved for AWS's own metrics."
        )));
    }
    let data = input.metric_data.ok_or_else(|| missing("MetricData"))?;
    if data.is_empty() {
        return Err(missing("MetricData"));
    }
    if data.len() > MAX_METRICS {
        return Err(too_many("MetricData", MAX_METRICS));
    }
    data.into_iter()
        .enumerate()
        .map(|(i, d)| plan_datum(&namespace, d, &format!("MetricData.member.{}", i + 1), now))
        .collect()
}

fn plan_datum(
    namespace: &str,
    d: MetricDatum,
    at: &str,
    now: f64,
) -> Result<Sample, CloudWatchError> {
    let metric_name =
        check_text(d.metric_name.as_deref(), &format!("{at}.MetricName"), 255)?.to_owned();
    let dimensions = check_dimensions(d.dimensions.as_deref(), &format!("{at}.Dimensions"))?;
    let unit =
        check_unit(d.unit.as_deref(), &format!("{at}.Unit"))?.unwrap_or_else(|| "None".into());
    let high_resolution = match d.storage_resolution {
        None | Some(60) => false,
        Some(1) => true,
        Some(other) => return Err(invalid(other, &format!("{at}.StorageResolution"))),
    };
    let timestamp = match d.timestamp {
        None => now,
        Some(t) if t < now - MAX_AGE_SECS => {
            return Err(CloudWatchError::InvalidParameterValue(format!(
                "The parameter {at}.Timestamp must specify a time within the past two weeks."
            )))
        }
        Some(t) if t > now + MAX_AHEAD_SECS => {
            return Err(CloudWatchError::InvalidParameterValue(format!(
                "The parameter {at}.Timestamp must specify a time no more than two hours in the future."
            )))
        }
        Some(t) => t,
    };
    let exclusive = |a: &str, b: &str| {
        CloudWatchError::InvalidParameterCombination(format!(
            "The parameters {at}.{a} and {at}.{b} are mutually exclusive and you have specified both."
        ))
    };
    if d.counts.is_some() && d.values.is_none() {
        return Err(CloudWatchError::InvalidParameterCombination(format!(
            "The parameter {at}.Counts may only be given with {at}.Values."
        )));
    }
    let (set, sketch) = match (d.value, d.statistic_values, d.values) {
        (Some(_), Some(_), _) => return Err(exclusive("Value", "StatisticValues")),
        (Some(_), _, Some(_)) => return Err(exclusive("Value", "Values")),
        (_, Some(_), Some(_)) => return Err(exclusive("StatisticValues", "Values")),
        (None, None, None) => {
            return Err(CloudWatchError::InvalidParameterCombination(format!(
                "At least one of the parameters {at}.Value, {at}.StatisticValues or {at}.Values must be specified."
            )))
        }
        (Some(v), None, None) => {
            let v = check_value(v, &format!("{at}.Value"))?;
            let mut sketch = Sketch::default();
            sketch.add(v, 1.0);
            (StatisticSet::of(v, 1.0), sketch)
        }
        (None, Some(s), None) => (statistic_set(&s, at)?, Sketch::default()),
        (None, None, Some(values)) => values_set(&values, d.counts.as_deref(), at)?,
    };
    // Whole seconds: the finest bucket is one second.
    #[allow(clippy::cast_possible_truncation)]
    let timestamp = timestamp.floor() as i64;
    Ok(Sample {
        key: SeriesKey::new(namespace, metric_name, dimensions),
        unit,
        timestamp,
        set,
        sketch,
        high_resolution,
    })
}

fn statistic_set(s: &StatisticValues, at: &str) -> Result<StatisticSet, CloudWatchError> {
    let field = |v: Option<f64>, name: &str| -> Result<f64, CloudWatchError> {
        let name = format!("{at}.StatisticValues.{name}");
        check_value(v.ok_or_else(|| missing(&name))?, &name)
    };
    let set = StatisticSet {
        sample_count: field(s.sample_count, "SampleCount")?,
        sum: field(s.sum, "Sum")?,
        minimum: field(s.minimum, "Minimum")?,
        maximum: field(s.maximum, "Maximum")?,
    };
    if set.sample_count <= 0.0 {
        return Err(invalid(
            set.sample_count,
            &format!("{at}.StatisticValues.SampleCount"),
        ));
    }
    if set.minimum > set.maximum {
        return Err(CloudWatchError::InvalidParameterValue(format!(
            "The parameter {at}.StatisticValues.Minimum must not be greater than {at}.StatisticValues.Maximum."
        )));
    }
    Ok(set)
}

fn values_set(
    values: &[f64],
    counts: Option<&[f64]>,
    at: &str,
) -> Result<(StatisticSet, Sketch), CloudWatchError> {
    if values.is_empty() {
        return Err(missing(&format!("{at}.Values")));
    }
    if values.len() > MAX_VALUES {
        return Err(too_many(&format!("{at}.Values"), MAX_VALUES));
    }
    if let Some(c) = counts {
        if c.len() != values.len() {
            return Err(CloudWatchError::InvalidParameterValue(format!(
                "The parameters {at}.Values and {at}.Counts must be of the same size."
            )));
        }
    }
    let mut set: Option<StatisticSet> = None;
    let mut sketch = Sketch::default();
    for (i, v) in values.iter().enumerate() {
        let v = check_value(*v, &format!("{at}.Values.member.{}", i + 1))?;
        let count = match counts {
            Some(c) => {
                let n = c[i];
                if !n.is_finite() || n < 0.0 {
                    return Err(invalid(n, &format!("{at}.Counts.member.{}", i + 1)));
                }
                n
            }
            None => 1.0,
        };
        if count == 0.0 {
            continue;
        }
        sketch.add(v, count);
        let one = StatisticSet::of(v, count);
        match &mut set {
            Some(s) => s.merge(&one),
            None => set = Some(one),
        }
    }
    let set = set.ok_or_else(|| {
        CloudWatchError::InvalidParameterValue(format!(
            "The parameter {at}.Counts must count at least one value."
        ))
    })?;
    Ok((set, sketch))
}
