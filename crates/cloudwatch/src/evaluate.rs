//! One evaluation of a metric alarm, as AWS documents it, with no I/O: given the
//! alarm's rule, the datapoints of a window somewhat wider than its N evaluation periods
//! and its current state, the state it should be in, AWS's reason text and the
//! `StateReasonData` JSON that scaling policies read.
//!
//! The rule (CloudWatch user guide, "Evaluating an alarm" and "Configuring how alarms
//! treat missing data"): when the window holds at least N real datapoints, the newest N
//! are evaluated and TreatMissingData plays no part. Otherwise the last N periods are
//! evaluated with their gaps filled as TreatMissingData says (`breaching` and
//! `notBreaching` fill them; `missing` and `ignore` leave them out). At least M
//! breaching datapoints mean ALARM, otherwise OK; when every period is missing, `missing`
//! means INSUFFICIENT_DATA, `ignore` keeps the state, `breaching` ALARM and
//! `notBreaching` OK.

use serde::{Deserialize, Serialize};
use serde_json::json;

/// An alarm's state (`StateValue`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    /// `OK`.
    #[serde(rename = "OK")]
    Ok,
    /// `ALARM`.
    #[serde(rename = "ALARM")]
    Alarm,
    /// `INSUFFICIENT_DATA`.
    #[serde(rename = "INSUFFICIENT_DATA")]
    InsufficientData,
}

impl State {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "OK",
            State::Alarm => "ALARM",
            State::InsufficientData => "INSUFFICIENT_DATA",
        }
    }

    /// The state named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "OK" => Some(State::Ok),
            "ALARM" => Some(State::Alarm),
            "INSUFFICIENT_DATA" => Some(State::InsufficientData),
            _ => None,
        }
    }
}

/// A static-threshold comparison (`ComparisonOperator`; the anomaly-detection band
/// operators need metric math and are refused at PutMetricAlarm).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    /// `GreaterThanOrEqualToThreshold`.
    GreaterThanOrEqualToThreshold,
    /// `GreaterThanThreshold`.
    GreaterThanThreshold,
    /// `LessThanThreshold`.
    LessThanThreshold,
    /// `LessThanOrEqualToThreshold`.
    LessThanOrEqualToThreshold,
}

impl Comparison {
    /// The operator named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "GreaterThanOrEqualToThreshold" => Some(Self::GreaterThanOrEqualToThreshold),
            "GreaterThanThreshold" => Some(Self::GreaterThanThreshold),
            "LessThanThreshold" => Some(Self::LessThanThreshold),
            "LessThanOrEqualToThreshold" => Some(Self::LessThanOrEqualToThreshold),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GreaterThanOrEqualToThreshold => "GreaterThanOrEqualToThreshold",
            Self::GreaterThanThreshold => "GreaterThanThreshold",
            Self::LessThanThreshold => "LessThanThreshold",
            Self::LessThanOrEqualToThreshold => "LessThanOrEqualToThreshold",
        }
    }

    /// Whether `value` breaches `threshold`.
    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::GreaterThanOrEqualToThreshold => value >= threshold,
            Self::GreaterThanThreshold => value > threshold,
            Self::LessThanThreshold => value < threshold,
            Self::LessThanOrEqualToThreshold => value <= threshold,
        }
    }

    /// The words AWS's reasons use.
    fn words(self) -> &'static str {
        match self {
            Self::GreaterThanOrEqualToThreshold => "greater than or equal to",
            Self::GreaterThanThreshold => "greater than",
            Self::LessThanThreshold => "less than",
            Self::LessThanOrEqualToThreshold => "less than or equal to",
        }
    }
}

/// `TreatMissingData`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TreatMissing {
    /// `missing` (the default).
    #[serde(rename = "missing")]
    Missing,
    /// `ignore`.
    #[serde(rename = "ignore")]
    Ignore,
    /// `breaching`.
    #[serde(rename = "breaching")]
    Breaching,
    /// `notBreaching`.
    #[serde(rename = "notBreaching")]
    NotBreaching,
}

impl TreatMissing {
    /// The value named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "missing" => Some(Self::Missing),
            "ignore" => Some(Self::Ignore),
            "breaching" => Some(Self::Breaching),
            "notBreaching" => Some(Self::NotBreaching),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Ignore => "ignore",
            Self::Breaching => "breaching",
            Self::NotBreaching => "notBreaching",
        }
    }
}

/// What an evaluation compares.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    /// The operator.
    pub comparison: Comparison,
    /// The threshold.
    pub threshold: f64,
    /// N.
    pub evaluation_periods: usize,
    /// M (≤ N).
    pub datapoints_to_alarm: usize,
    /// How gaps count.
    pub treat_missing: TreatMissing,
}

/// One period of the window: its start (epoch seconds), and its value and sample count
/// when it has data.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Start of the period, epoch seconds.
    pub timestamp: i64,
    /// `(value, sample count)`; `None` for a period without data.
    pub value: Option<(f64, f64)>,
}

/// What an evaluation decided.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// The state the alarm should be in.
    pub state: State,
    /// AWS's reason text (meaningful when `state` differs from the current one).
    pub reason: String,
    /// The `StateReasonData` JSON.
    pub reason_data: String,
}

/// What the reason data says besides the points.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// When the evaluation ran, epoch milliseconds.
    pub query_ms: i64,
    /// The statistic's name (`Average`, `p90`…).
    pub statistic: &'a str,
    /// The period in seconds, as configured.
    pub period: i64,
}

/// Evaluates `rule` over `window` (periods oldest first, wider than N) for an alarm now
/// in `current`.
pub fn evaluate(rule: &Rule, window: &[Point], current: State, ctx: Context<'_>) -> Verdict {
    let n = rule.evaluation_periods.max(1);
    let m = rule.datapoints_to_alarm.clamp(1, n);
    let real: Vec<&Point> = window.iter().filter(|p| p.value.is_some()).collect();
    // The evaluated points, newest first (AWS lists them so); `None` = a missing period.
    let evaluated: Vec<Point> = if real.len() >= n {
        real.iter().rev().take(n).map(|p| **p).collect()
    } else {
        window.iter().rev().take(n).copied().collect()
    };
    let values: Vec<f64> = evaluated
        .iter()
        .filter_map(|p| p.value.map(|v| v.0))
        .collect();
    let missing = evaluated.len() - values.len();
    let mut breaching = values
        .iter()
        .filter(|v| rule.comparison.breaches(**v, rule.threshold))
        .count();
    let mut not_breaching = values.len() - breaching;
    match rule.treat_missing {
        TreatMissing::Breaching => breaching += missing,
        TreatMissing::NotBreaching => not_breaching += missing,
        TreatMissing::Missing | TreatMissing::Ignore => {}
    }
    let state = if breaching >= m {
        State::Alarm
    } else if values.is_empty() {
        match rule.treat_missing {
            TreatMissing::Missing => State::InsufficientData,
            TreatMissing::Ignore => current,
            TreatMissing::Breaching => State::Alarm,
            TreatMissing::NotBreaching => State::Ok,
        }
    } else {
        State::Ok
    };
    let reason = match state {
        State::InsufficientData => format!(
            "Insufficient Data: {} {} unknown.",
            plural(missing, "datapoint", "datapoints"),
            if missing == 1 { "was" } else { "were" }
        ),
        State::Alarm | State::Ok => {
            let (count, negated, needed) = if state == State::Alarm {
                (breaching, "", m)
            } else {
                // The fewest non-breaching points that rule ALARM out.
                (not_breaching, "not ", n + 1 - m)
            };
            let listed: Vec<String> = evaluated
                .iter()
                .filter_map(|p| {
                    p.value
                        .map(|(v, _)| format!("{} ({})", java_double(v), reason_date(p.timestamp)))
                })
                .collect();
            format!(
                "Threshold Crossed: {count} out of the last {} {} [{}] {} {negated}{} the threshold ({}) (minimum {} for {} -> {} transition).",
                evaluated.len(),
                if evaluated.len() == 1 { "datapoint" } else { "datapoints" },
                listed.join(", "),
                if count == 1 { "was" } else { "were" },
                rule.comparison.words(),
                java_double(rule.threshold),
                plural(needed, "datapoint", "datapoints"),
                current.as_str(),
                state.as_str(),
            )
        }
    };
    let recent: Vec<f64> = values.clone();
    let start = evaluated.last().map_or(0, |p| p.timestamp);
    let data = json!({
        "version": "1.0",
        "queryDate": reason_data_date(ctx.query_ms),
        "startDate": reason_data_date(start.saturating_mul(1000)),
        "statistic": ctx.statistic,
        "period": ctx.period,
        "recentDatapoints": recent,
        "threshold": rule.threshold,
        "evaluatedDatapoints": evaluated.iter().map(|p| match p.value {
            Some((v, count)) => json!({
                "timestamp": reason_data_date(p.timestamp.saturating_mul(1000)),
                "sampleCount": count,
                "value": v,
            }),
            None => json!({ "timestamp": reason_data_date(p.timestamp.saturating_mul(1000)) }),
        }).collect::<Vec<_>>(),
    });
    Verdict {
        state,
        reason,
        reason_data: data.to_string(),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A double as Java prints it (AWS's reasons do): `70.0`, `75.1`.
pub fn java_double(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e7 {
        format!("{v:.1}")
    } else {
        v.to_string()
    }
}

/// `dd/MM/yy HH:mm:ss`, the reasons' datapoint timestamps.
fn reason_date(secs: i64) -> String {
    let iso = wire::xml::iso8601_secs(secs);
    // `YYYY-MM-DDTHH:MM:SSZ`
    let (y, rest) = iso.split_at(4);
    format!(
        "{}/{}/{} {}",
        &rest[4..6],
        &rest[1..3],
        &y[2..4],
        &rest[7..15]
    )
}

/// `2026-12-06T21:04:10.123+0000`, the reason data's dates.
pub fn reason_data_date(ms: i64) -> String {
    let iso = wire::xml::iso8601(ms);
    format!("{}+0000", iso.trim_end_matches('Z'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rule(c: Comparison, m: usize, n: usize, t: TreatMissing) -> Rule {
        Rule {
            comparison: c,
            threshold: 70.0,
            evaluation_periods: n,
            datapoints_to_alarm: m,
            treat_missing: t,
        }
    }
    const BASE: i64 = 1_796_590_980; // 2026-12-06T21:03:00Z
    fn window(values: &[Option<f64>]) -> Vec<Point> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Point {
                timestamp: BASE + 60 * i as i64,
                value: v.map(|v| (v, 1.0)),
            })
            .collect()
    }
    fn ctx() -> Context<'static> {
        Context {
            query_ms: BASE * 1000 + 300_123,
            statistic: "Average",
            period: 60,
        }
    }
    fn eval(r: Rule, w: &[Option<f64>], current: State) -> Verdict {
        evaluate(&r, &window(w), current, ctx())
    }
    use Comparison::*;
    use TreatMissing as T;

    #[test]
    fn three_of_three_breaching_alarms_with_aws_wording() {
        let v = eval(
            rule(GreaterThanThreshold, 3, 3, T::Missing),
            &[None, None, Some(75.1), Some(80.0), Some(90.5)],
            State::Ok,
        );
        assert_eq!(v.state, State::Alarm);
        assert_eq!(
            v.reason,
            "Threshold Crossed: 3 out of the last 3 datapoints [90.5 (06/12/26 21:07:00), 80.0 (06/12/26 21:06:00), 75.1 (06/12/26 21:05:00)] were greater than the threshold (70.0) (minimum 3 datapoints for OK -> ALARM transition)."
        );
        let data: serde_json::Value = serde_json::from_str(&v.reason_data).unwrap();
        assert_eq!(data["version"], "1.0");
        assert_eq!(data["threshold"], 70.0);
        assert_eq!(data["recentDatapoints"], json!([90.5, 80.0, 75.1]));
        assert_eq!(data["queryDate"], "2026-12-06T21:08:00.123+0000");
        assert_eq!(data["evaluatedDatapoints"][0]["sampleCount"], 1.0);
    }

    #[test]
    fn m_of_n_counts_breaching_points() {
        let r = rule(GreaterThanThreshold, 2, 3, T::Missing);
        let s = |w: &[Option<f64>]| eval(r, w, State::Ok).state;
        assert_eq!(s(&[Some(71.0), Some(10.0), Some(72.0)]), State::Alarm);
        assert_eq!(s(&[Some(71.0), Some(10.0), Some(10.0)]), State::Ok);
        let ok = eval(r, &[Some(71.0), Some(10.0), Some(10.0)], State::Alarm);
        assert_eq!(
            ok.reason,
            "Threshold Crossed: 2 out of the last 3 datapoints [10.0 (06/12/26 21:05:00), 10.0 (06/12/26 21:04:00), 71.0 (06/12/26 21:03:00)] were not greater than the threshold (70.0) (minimum 2 datapoints for ALARM -> OK transition)."
        );
    }

    #[test]
    fn enough_real_points_skip_the_gaps_and_ignore_treat_missing() {
        // Five periods, three real: the newest three real points are evaluated even
        // though gaps sit between them; `breaching` fills nothing.
        let r = rule(LessThanThreshold, 3, 3, T::Breaching);
        let v = eval(
            r,
            &[Some(90.0), None, Some(95.0), None, Some(99.0)],
            State::Alarm,
        );
        assert_eq!(v.state, State::Ok);
    }

    #[test]
    fn treat_missing_data_each_value_when_everything_is_missing() {
        let all = [None, None, None, None, None];
        let s = |t, cur| eval(rule(GreaterThanThreshold, 3, 3, t), &all, cur);
        let v = s(T::Missing, State::Ok);
        assert_eq!(v.state, State::InsufficientData);
        assert_eq!(v.reason, "Insufficient Data: 3 datapoints were unknown.");
        assert_eq!(s(T::Ignore, State::Alarm).state, State::Alarm);
        assert_eq!(s(T::Ignore, State::Ok).state, State::Ok);
        assert_eq!(s(T::Breaching, State::Ok).state, State::Alarm);
        assert_eq!(s(T::NotBreaching, State::Alarm).state, State::Ok);
        let one = eval(
            rule(GreaterThanThreshold, 1, 1, T::Missing),
            &[None],
            State::Ok,
        );
        assert_eq!(one.reason, "Insufficient Data: 1 datapoint was unknown.");
    }

    #[test]
    fn treat_missing_data_fills_partial_gaps() {
        // Last 3 periods: one real breaching point, two gaps.
        let w = [None, None, None, None, Some(80.0)];
        let s = |t| eval(rule(GreaterThanThreshold, 2, 3, t), &w, State::Ok).state;
        assert_eq!(s(T::Breaching), State::Alarm);
        assert_eq!(s(T::NotBreaching), State::Ok);
        assert_eq!(s(T::Missing), State::Ok);
        assert_eq!(s(T::Ignore), State::Ok);
        let one = eval(rule(GreaterThanThreshold, 1, 3, T::Missing), &w, State::Ok);
        assert_eq!(one.state, State::Alarm);
    }

    #[test]
    fn comparison_operators_at_the_threshold() {
        let at = |c| eval(rule(c, 1, 1, T::Missing), &[Some(70.0)], State::Ok).state;
        assert_eq!(at(GreaterThanOrEqualToThreshold), State::Alarm);
        assert_eq!(at(GreaterThanThreshold), State::Ok);
        assert_eq!(at(LessThanOrEqualToThreshold), State::Alarm);
        assert_eq!(at(LessThanThreshold), State::Ok);
        let low = eval(
            rule(LessThanThreshold, 1, 1, T::Missing),
            &[Some(1.5)],
            State::InsufficientData,
        );
        assert_eq!(
            low.reason,
            "Threshold Crossed: 1 out of the last 1 datapoint [1.5 (06/12/26 21:03:00)] was less than the threshold (70.0) (minimum 1 datapoint for INSUFFICIENT_DATA -> ALARM transition)."
        );
    }
}
