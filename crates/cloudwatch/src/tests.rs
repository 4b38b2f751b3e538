//! Unit tests of the store (tiers, rollup, retention, durability), the statistics and
//! percentile sketch, metric math and the protocol codec.
#![allow(clippy::unwrap_used)]

use crate::codec::{decode, Encoding, Out};
use crate::math;
use crate::series::{Dimension, SeriesKey};
use crate::stats::{Sketch, Statistic, StatisticSet};
use crate::store::{tier_for, MetricStore, Range, Sample};
use std::collections::BTreeMap;
use wire::xml::parse_iso8601;

const T0: i64 = 1_800_000_000; // a whole hour (divisible by 3600)

fn key(name: &str) -> SeriesKey {
    SeriesKey::new(
        "App",
        name,
        vec![Dimension {
            name: "Svc".into(),
            value: "web".into(),
        }],
    )
}

fn sample(name: &str, ts: i64, v: f64, high: bool) -> Sample {
    let mut sketch = Sketch::default();
    sketch.add(v, 1.0);
    Sample {
        key: key(name),
        unit: "Count".into(),
        timestamp: ts,
        set: StatisticSet::of(v, 1.0),
        sketch,
        high_resolution: high,
    }
}

fn open() -> (tempfile::TempDir, MetricStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = MetricStore::open(dir.path().join("metrics.db")).unwrap();
    (dir, store)
}

fn sums(
    store: &MetricStore,
    name: &str,
    start: i64,
    end: i64,
    period: i64,
    now: i64,
) -> Vec<(i64, f64)> {
    store
        .query(&key(name), None, Range { start, end, period }, now, false)
        .unwrap()
        .into_iter()
        .map(|b| (b.timestamp, b.set.sum))
        .collect()
}

#[test]
fn dimensions_are_a_set_in_the_series_key() {
    let a = SeriesKey::new(
        "N",
        "M",
        vec![
            Dimension {
                name: "B".into(),
                value: "2".into(),
            },
            Dimension {
                name: "A".into(),
                value: "1".into(),
            },
        ],
    );
    let b = SeriesKey::new(
        "N",
        "M",
        vec![
            Dimension {
                name: "A".into(),
                value: "1".into(),
            },
            Dimension {
                name: "B".into(),
                value: "2".into(),
            },
        ],
    );
    assert_eq!(a, b);
    assert_eq!(a.dimensions()[0].name, "A");
}

#[test]
fn buckets_roll_up_across_periods_and_tiers() {
    let (_d, store) = open();
    let samples: Vec<Sample> = (0..120)
        .map(|m| sample("m", T0 + m * 60 + 5, 1.0, false))
        .collect();
    store.put(&samples).unwrap();
    let now = T0 + 2 * 3600;
    // Per minute, per 5 minutes (read from the 5-minute tier: 300 divides it), per hour.
    assert_eq!(
        sums(&store, "m", T0, T0 + 180, 60, now),
        vec![(T0, 1.0), (T0 + 60, 1.0), (T0 + 120, 1.0)]
    );
    assert_eq!(
        sums(&store, "m", T0, T0 + 600, 300, now),
        vec![(T0, 5.0), (T0 + 300, 5.0)]
    );
    assert_eq!(
        sums(&store, "m", T0, T0 + 7200, 3600, now),
        vec![(T0, 60.0), (T0 + 3600, 60.0)]
    );
    // A period of 120 s aggregates two 1-minute buckets.
    assert_eq!(
        sums(&store, "m", T0, T0 + 240, 120, now),
        vec![(T0, 2.0), (T0 + 120, 2.0)]
    );
    // The start is rounded down to the tier and the end is exclusive.
    assert_eq!(
        sums(&store, "m", T0 + 30, T0 + 60, 60, now),
        vec![(T0, 1.0)]
    );
}

#[test]
fn coarse_tiers_are_rolled_up_by_the_sweep_and_read_exactly_before_and_after() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.db");
    let store = MetricStore::open(&path).unwrap();
    // Two hours of one value a minute, then ten minutes of the third hour.
    let samples: Vec<Sample> = (0..130)
        .map(|m| sample("m", T0 + m * 60 + 5, 1.0, false))
        .collect();
    store.put(&samples).unwrap();
    let now = T0 + 2 * 3600 + 630;
    let hourly = |store: &MetricStore| sums(store, "m", T0, T0 + 3 * 3600, 3600, now);
    let five = |store: &MetricStore| sums(store, "m", T0 + 6600, T0 + 7800, 300, now);
    let expected_hourly = vec![(T0, 60.0), (T0 + 3600, 60.0), (T0 + 7200, 10.0)];
    let expected_five = vec![
        (T0 + 6600, 5.0),
        (T0 + 6900, 5.0),
        (T0 + 7200, 5.0),
        (T0 + 7500, 5.0),
    ];
    // Nothing rolled up yet: the 1-minute rows answer.
    assert_eq!(hourly(&store), expected_hourly);
    assert_eq!(five(&store), expected_five);
    // The sweep rolls up the whole buckets (two hours; 5-minute ones up to 2 h 10 min);
    // the same answers, now from the coarse rows and the recent 1-minute ones.
    store.sweep(now).unwrap();
    assert_eq!(hourly(&store), expected_hourly);
    assert_eq!(five(&store), expected_five);
    // A late put into a rolled-up hour goes into the coarse tiers directly.
    store.put(&[sample("m", T0 + 30, 4.0, false)]).unwrap();
    assert_eq!(
        hourly(&store),
        vec![(T0, 64.0), (T0 + 3600, 60.0), (T0 + 7200, 10.0)]
    );
    assert_eq!(sums(&store, "m", T0, T0 + 300, 300, now), vec![(T0, 9.0)]);
    // The watermarks survive reopening: nothing is rolled up twice.
    drop(store);
    let store = MetricStore::open(&path).unwrap();
    store.sweep(now + 3600).unwrap();
    assert_eq!(
        sums(&store, "m", T0, T0 + 3 * 3600, 3600, now + 3600),
        vec![(T0, 64.0), (T0 + 3600, 60.0), (T0 + 7200, 10.0)]
    );
    // Past the 1-minute tier's retention only the rolled-up rows answer.
    let later = T0 + 16 * 86_400;
    store.sweep(later).unwrap();
    assert_eq!(
        sums(&store, "m", T0, T0 + 3 * 3600, 3600, later),
        vec![(T0, 64.0), (T0 + 3600, 60.0), (T0 + 7200, 10.0)]
    );
}

#[test]
fn retention_follows_aws_tiers_as_data_ages() {
    let (_d, store) = open();
    store
        .put(&[
            sample("m", T0 + 1, 2.0, true),
            sample("m", T0 + 61, 3.0, true),
        ])
        .unwrap();
    let day = 86_400;
    // Within 3 hours: 1-second data answers a 1 s period.
    assert_eq!(
        sums(&store, "m", T0, T0 + 62, 1, T0 + 3600),
        vec![(T0 + 1, 2.0), (T0 + 61, 3.0)]
    );
    // After 3 hours the 1-second tier no longer answers; the minute tier does.
    assert!(sums(&store, "m", T0, T0 + 62, 1, T0 + 4 * 3600).is_empty());
    assert_eq!(sums(&store, "m", T0, T0 + 120, 60, T0 + 4 * 3600).len(), 2);
    // After 15 days a 60 s period answers nothing; 300 s does (the 5-minute tier).
    assert!(sums(&store, "m", T0, T0 + 120, 60, T0 + 16 * day).is_empty());
    assert_eq!(
        sums(&store, "m", T0, T0 + 300, 300, T0 + 16 * day),
        vec![(T0, 5.0)]
    );
    // After 63 days only hourly data remains, until 455 days.
    assert!(sums(&store, "m", T0, T0 + 300, 300, T0 + 64 * day).is_empty());
    assert_eq!(
        sums(&store, "m", T0, T0 + 3600, 3600, T0 + 64 * day),
        vec![(T0, 5.0)]
    );
    assert!(sums(&store, "m", T0, T0 + 3600, 3600, T0 + 456 * day).is_empty());
    // The sweep deletes what reads already hide, tier by tier.
    let deleted = store.sweep(T0 + 16 * day).unwrap();
    assert_eq!(deleted, 4, "two 1-second and two 1-minute buckets");
    assert_eq!(
        sums(&store, "m", T0, T0 + 3600, 3600, T0 + 16 * day),
        vec![(T0, 5.0)]
    );
    store.sweep(T0 + 456 * day).unwrap();
    assert_eq!(store.series_count(), 0);
}

#[test]
fn reads_round_the_start_by_age_and_use_the_coarsest_tier_that_nests() {
    let r = |start, period| Range {
        start,
        end: start + period,
        period,
    };
    let tier =
        |start, period, now| tier_for(r(start, period), now).map(|p| (p.start, p.resolution));
    assert_eq!(tier(T0, 60, T0), Some((T0, 60)));
    assert_eq!(tier(T0 + 7, 10, T0 + 10), Some((T0 + 7, 1)));
    assert_eq!(tier(T0, 900, T0), Some((T0, 300)));
    assert_eq!(tier(T0, 7200, T0), Some((T0, 3600)));
    // A start not on the hour reads minutes (or 5 minutes) so the buckets stay AWS's.
    assert_eq!(tier(T0 + 300, 3600, T0 + 600), Some((T0 + 300, 300)));
    assert_eq!(tier(T0 + 60, 3600, T0 + 600), Some((T0 + 60, 60)));
    assert_eq!(tier(T0 + 59, 3600, T0 + 600), Some((T0, 3600)));
    // Older than 15 days: rounded to 5 minutes, and a 2-minute period answers nothing.
    assert_eq!(tier(T0 + 60, 120, T0 + 20 * 86_400), None);
    assert_eq!(tier(T0 + 60, 600, T0 + 20 * 86_400), Some((T0, 300)));
}

#[test]
fn statistic_sets_merge_and_units_filter() {
    let (_d, store) = open();
    let mut s = sample("m", T0, 0.0, false);
    s.set = StatisticSet {
        sample_count: 4.0,
        sum: 8.0,
        minimum: 1.0,
        maximum: 3.0,
    };
    s.sketch = Sketch::default();
    store.put(&[s, sample("m", T0 + 10, 10.0, false)]).unwrap();
    let [b] = store
        .query(
            &key("m"),
            Some("Count"),
            Range {
                start: T0,
                end: T0 + 60,
                period: 60,
            },
            T0,
            true,
        )
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(
        b.set,
        StatisticSet {
            sample_count: 5.0,
            sum: 18.0,
            minimum: 1.0,
            maximum: 10.0
        }
    );
    assert_eq!(Statistic::Average.compute(&b.set, &b.sketch), Some(3.6));
    // Only the raw value is in the distribution.
    let p50 = Statistic::Percentile(50.0)
        .compute(&b.set, &b.sketch)
        .unwrap();
    assert!((p50 - 10.0).abs() <= 0.1, "{p50}");
    assert!(store
        .query(
            &key("m"),
            Some("Seconds"),
            Range {
                start: T0,
                end: T0 + 60,
                period: 60
            },
            T0,
            false
        )
        .unwrap()
        .is_empty());
}

#[test]
fn puts_into_one_bucket_in_separate_calls_merge_in_the_database() {
    // The second call finds the bucket on disk: counts add up, min and max widen and the
    // distributions merge (`sketch_merge`), as if both had come in one call.
    let (_d, store) = open();
    store.put(&[sample("m", T0, 2.0, false)]).unwrap();
    store.put(&[sample("m", T0 + 10, 10.0, false)]).unwrap();
    store.put(&[sample("m", T0 + 20, 6.0, false)]).unwrap();
    let [b] = store
        .query(
            &key("m"),
            Some("Count"),
            Range {
                start: T0,
                end: T0 + 60,
                period: 60,
            },
            T0,
            true,
        )
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(
        b.set,
        StatisticSet {
            sample_count: 3.0,
            sum: 18.0,
            minimum: 2.0,
            maximum: 10.0
        }
    );
    let p50 = Statistic::Percentile(50.0)
        .compute(&b.set, &b.sketch)
        .unwrap();
    assert!((p50 - 6.0).abs() <= 0.1, "{p50}");
}

#[test]
fn percentiles_stay_within_one_percent_and_merge() {
    let mut a = Sketch::default();
    let mut b = Sketch::default();
    for v in 1..=500 {
        a.add(f64::from(v), 1.0);
        b.add(f64::from(v + 500), 1.0);
    }
    a.merge(&b);
    let decoded = Sketch::decode(&a.encode());
    assert_eq!(decoded, a);
    for (p, exact) in [
        (10.0, 100.0),
        (50.0, 500.0),
        (90.0, 900.0),
        (99.0, 990.0),
        (99.9, 999.0),
    ] {
        let got = decoded.percentile(p, 1.0, 1000.0).unwrap();
        assert!(
            (got - exact).abs() <= exact * 0.0101,
            "p{p}: {got} vs {exact}"
        );
    }
    assert_eq!(decoded.percentile(100.0, 1.0, 1000.0), Some(1000.0));
    assert_eq!(decoded.percentile(0.0, 1.0, 1000.0), Some(1.0));
    let mut neg = Sketch::default();
    for v in [-5.0, -1.0, 0.0, 2.0] {
        neg.add(v, 1.0);
    }
    assert!((neg.percentile(25.0, -5.0, 2.0).unwrap() + 5.0).abs() < 0.06);
    assert_eq!(neg.percentile(75.0, -5.0, 2.0), Some(0.0));
    assert_eq!(Sketch::default().percentile(50.0, 0.0, 0.0), None);
}

#[test]
fn percentile_names_follow_aws_syntax() {
    assert_eq!(Statistic::parse("p99"), Some(Statistic::Percentile(99.0)));
    assert_eq!(
        Statistic::parse("p99.99"),
        Some(Statistic::Percentile(99.99))
    );
    assert_eq!(Statistic::parse("p100"), Some(Statistic::Percentile(100.0)));
    for bad in ["p", "p101", "p99.999", "p.5", "p5.", "P50", "p-1", "Median"] {
        assert_eq!(Statistic::parse(bad), None, "{bad}");
    }
}

#[test]
fn the_index_survives_reopening_and_lists_recent_series() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.db");
    {
        let store = MetricStore::open(&path).unwrap();
        store
            .put(&[
                sample("a", T0, 1.0, false),
                sample("b", T0 - 4 * 3600, 1.0, false),
            ])
            .unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let store = MetricStore::open(&path).unwrap();
    let names = |recent: bool| -> Vec<String> {
        store
            .list(T0, |_, last| !recent || last >= T0 - 3 * 3600)
            .into_iter()
            .map(|(k, _)| k.metric_name)
            .collect()
    };
    assert_eq!(names(false), ["a", "b"]);
    assert_eq!(names(true), ["a"]);
    assert_eq!(sums(&store, "a", T0, T0 + 60, 60, T0), vec![(T0, 1.0)]);
    // Two weeks after its last put a series is no longer listed.
    assert!(store.list(T0 + 15 * 86_400, |_, _| true).is_empty());
}

struct Fixture {
    series: BTreeMap<String, math::Series>,
    grid: Vec<i64>,
}

impl math::Context for Fixture {
    fn series(&mut self, id: &str) -> Result<math::Series, String> {
        self.series
            .get(id)
            .cloned()
            .ok_or_else(|| format!("Unrecognized identifier {id}"))
    }
    fn metrics(&mut self, filter: &str) -> Result<Vec<math::Series>, String> {
        Ok(self
            .series
            .iter()
            .filter(|(k, _)| k.contains(filter))
            .map(|(_, v)| v.clone())
            .collect())
    }
    fn grid(&self) -> &[i64] {
        &self.grid
    }
}

fn eval(text: &str) -> Result<math::Value, String> {
    let mut fx = Fixture {
        series: BTreeMap::from([
            (
                "m1".to_owned(),
                BTreeMap::from([(0, 1.0), (60, 2.0), (120, 3.0)]),
            ),
            ("m2".to_owned(), BTreeMap::from([(0, 10.0), (120, 30.0)])),
        ]),
        grid: vec![0, 60, 120],
    };
    math::eval(&math::parse(text)?, &mut fx)
}

fn series(pairs: &[(i64, f64)]) -> math::Value {
    math::Value::Series(pairs.iter().copied().collect())
}

#[test]
fn math_follows_aws_semantics() {
    assert_eq!(eval("m1 + m2").unwrap(), series(&[(0, 11.0), (120, 33.0)]));
    assert_eq!(
        eval("(m1 + 1) * 2 - -1").unwrap(),
        series(&[(0, 5.0), (60, 7.0), (120, 9.0)])
    );
    assert_eq!(
        eval("SUM(METRICS())").unwrap(),
        series(&[(0, 11.0), (60, 2.0), (120, 33.0)])
    );
    assert_eq!(
        eval("MAX(METRICS(\"m2\"))").unwrap(),
        series(&[(0, 10.0), (120, 30.0)])
    );
    assert_eq!(eval("AVG(m1)").unwrap(), math::Value::Scalar(2.0));
    assert_eq!(
        eval("m1 / AVG(m1)").unwrap(),
        series(&[(0, 0.5), (60, 1.0), (120, 1.5)])
    );
    assert_eq!(
        eval("FILL(m2, 0)").unwrap(),
        series(&[(0, 10.0), (60, 0.0), (120, 30.0)])
    );
    assert_eq!(
        eval("FILL(m2, REPEAT)").unwrap(),
        series(&[(0, 10.0), (60, 10.0), (120, 30.0)])
    );
    assert_eq!(eval("m1 / 0").unwrap(), series(&[]));
    assert_eq!(eval("ABS(-m1)").unwrap(), eval("m1").unwrap());
}

#[test]
fn math_refuses_what_it_does_not_serve() {
    assert!(eval("ANOMALY_DETECTION_BAND(m1)")
        .unwrap_err()
        .contains("Unsupported function"));
    assert!(eval("m3")
        .unwrap_err()
        .contains("Unrecognized identifier m3"));
    assert!(eval("m1 +").is_err());
    assert!(eval("(m1").is_err());
    assert!(eval("m1 $ 2").is_err());
    assert!(eval(&"(".repeat(100))
        .unwrap_err()
        .contains("nested too deeply"));
    assert!(eval(&"-".repeat(100))
        .unwrap_err()
        .contains("nested too deeply"));
}

#[test]
fn query_parameters_flatten_to_the_json_shape() {
    let params = wire::query::parse_form(
        b"Action=PutMetricData&Version=2010-08-01&Namespace=N&MetricData.member.2.MetricName=b\
          &MetricData.member.1.MetricName=a&MetricData.member.1.Values.member.1=1.5\
          &MetricData.member.1.Dimensions.member.1.Name=K&Statistics=",
    )
    .unwrap();
    let v = decode(wire::Input::Query(&params)).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "Namespace": "N",
            "MetricData": [
                {"MetricName": "a", "Values": ["1.5"], "Dimensions": [{"Name": "K"}]},
                {"MetricName": "b"}
            ]
        })
    );
}

#[test]
fn hostile_inputs_are_refused_not_panicked_on() {
    let deep = format!("{}=1", vec!["a"; 1000].join("."));
    let params = wire::query::parse_form(deep.as_bytes()).unwrap();
    assert!(decode(wire::Input::Query(&params)).is_err());
    assert_eq!(parse_iso8601("99999999999-01-01T00:00:00Z"), None);
    let (_d, store) = open();
    let extreme = Range {
        start: i64::MIN,
        end: i64::MAX,
        period: 60,
    };
    assert!(store
        .query(&key("m"), None, extreme, i64::MAX, false)
        .unwrap()
        .is_empty());
    assert_eq!(tier_for(extreme, i64::MAX), None);
}

#[test]
fn iso8601_timestamps_parse_with_fractions_and_offsets() {
    assert_eq!(parse_iso8601("1970-01-01T00:00:00Z"), Some(0.0));
    assert_eq!(
        parse_iso8601("2027-01-15T08:00:00.5Z"),
        Some(1_800_000_000.5)
    );
    assert_eq!(parse_iso8601("1970-01-01T01:00:00+01:00"), Some(0.0));
    assert_eq!(parse_iso8601("not a date"), None);
    assert_eq!(parse_iso8601("2026-13-01T00:00:00Z"), None);
}

#[test]
fn cbor_requests_decode_with_tagged_timestamps_and_answers_encode_them() {
    use ciborium::Value as C;
    let request = C::Map(vec![
        (
            C::Text("StartTime".into()),
            C::Tag(1, Box::new(C::Float(1.5))),
        ),
        (C::Text("Skip".into()), C::Null),
    ]);
    let mut body = Vec::new();
    ciborium::into_writer(&request, &mut body).unwrap();
    let v = decode(wire::Input::Cbor(&body)).unwrap();
    assert_eq!(v, serde_json::json!({"StartTime": 1.5}));
    assert!(decode(wire::Input::Cbor(&[0xff])).is_err());
    let out = Out::Obj(vec![("Timestamps", Out::List(vec![Out::Time(7)]))]);
    let bytes = Encoding::Cbor.encode("GetMetricData", Some(&out), "rid");
    let back: C = ciborium::from_reader(bytes.as_slice()).unwrap();
    assert_eq!(
        back,
        C::Map(vec![(
            C::Text("Timestamps".into()),
            C::Array(vec![C::Tag(1, Box::new(C::Integer(7.into())))])
        )])
    );
    assert!(Encoding::Cbor
        .encode("PutMetricData", None, "rid")
        .is_empty());
    let xml = String::from_utf8(Encoding::Query.encode(
        "ListMetrics",
        Some(&Out::Obj(vec![("Metrics", Out::List(vec![]))])),
        "r1",
    ))
    .unwrap();
    assert!(xml.starts_with("<ListMetricsResponse xmlns=\"http://monitoring.amazonaws.com/doc/2010-08-01/\"><ListMetricsResult><Metrics></Metrics>"), "{xml}");
}

fn service() -> (tempfile::TempDir, crate::CloudWatch) {
    let (dir, store) = open();
    let scope = model::ecs::arn::ArnScope {
        region: "us-east-1".into(),
        account_id: "000000000000".into(),
    };
    (
        dir,
        crate::CloudWatch::new(std::sync::Arc::new(store), scope),
    )
}

#[tokio::test]
async fn every_operation_answers_a_modelled_error_or_not_implemented() {
    let (_d, cw) = service();
    let caller = wire::Caller::root("000000000000");
    let answered = wire::conformance::every_operation_answers(
        &cw,
        wire::Input::Json(b"{}"),
        &caller,
        // What an empty body gets from operations whose model lists no such error.
        &[
            "MissingRequiredParameterException",
            "InvalidParameterValueException",
        ],
    )
    .await;
    assert_eq!(answered.served, 4);
}

#[tokio::test]
async fn every_operation_needs_a_cloudwatch_permission() {
    let (_d, cw) = service();
    let caller = wire::Caller::root("000000000000");
    let n = wire::conformance::every_operation_needs_access(
        &cw,
        wire::Input::Json(b"{}"),
        &caller,
        "cloudwatch",
    )
    .await;
    assert_eq!(n, crate::Operation::ALL.len());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// What the fuzz target checks, in miniature: any body, any operation, any protocol
    /// answers a body or a 4xx AWS error, never a panic or a 5xx.
    #[test]
    fn any_body_answers_without_panicking(op in 0usize..64, protocol in 0u8..3, body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
        use wire::Service;
        let (_d, cw) = service();
        let caller = wire::Caller::root("000000000000");
        let op = crate::Operation::ALL[op % crate::Operation::ALL.len()];
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let form;
        let params;
        let input = match protocol {
            0 => wire::Input::Cbor(&body),
            1 => wire::Input::Json(&body),
            _ => {
                form = [format!("Action={}&Version=2010-08-01&", op.name()).into_bytes(), body.clone()].concat();
                match wire::query::parse_form(&form) {
                    Ok(p) => {
                        params = p;
                        wire::Input::Query(&params)
                    }
                    Err(_) => return Ok(()),
                }
            }
        };
        let call = wire::Call { input, caller: &caller, request_id: "prop" };
        if let Err(wire::ServiceError::Aws(e)) = rt.block_on(cw.handle(op, call)) {
            proptest::prop_assert!(e.status < 500, "{e}");
        }
    }
}
