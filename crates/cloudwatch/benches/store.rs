//! The CloudWatch numbers of issue 16: PutMetricData ingestion (datapoints per second,
//! target ≥ 100,000), GetMetricData over 1,000 series × 1 day (p99 target ≤ 50 ms) and
//! memory per active series (target ≤ 2 KiB), on a real SQLite file in a temp dir.
//!
//! Groups:
//! - `put/single_value_1000`: one call's worth of 1,000 metrics with one value each,
//!   through the operation's validation and the store (throughput per datapoint);
//! - `put/values_150x1000`: 1,000 metrics with 150 values each (the largest call);
//! - `get_metric_data/1000_series_1_day`: 1,000 MetricStat queries (Average, period one
//!   hour) over a day of per-minute data, through the service's handler (two calls of
//!   500 queries: AWS's limit per call).
//!
//! The GetMetricData p99 and the memory per series are printed on stderr before the
//! criterion runs (criterion reports means, not tails).

// `criterion_group!` generates an undocumented pub function.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used)] // benchmark setup may unwrap

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudwatch::{CloudWatch, Dimension, MetricStore, Sample, SeriesKey, Sketch, StatisticSet};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use wire::{Call, Caller, Input, Service};

const SERIES: usize = 1_000;
const DAY_MINUTES: i64 = 1_440;

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn key(i: usize) -> SeriesKey {
    SeriesKey::new(
        "AWS/ECS",
        "CPUUtilization",
        vec![
            Dimension {
                name: "ClusterName".into(),
                value: "bench".into(),
            },
            Dimension {
                name: "ServiceName".into(),
                value: format!("service-{i:05}"),
            },
        ],
    )
}

fn sample(i: usize, ts: i64, values: usize) -> Sample {
    let mut sketch = Sketch::default();
    let mut set: Option<StatisticSet> = None;
    for v in 0..values {
        #[allow(clippy::cast_precision_loss)]
        let v = (v % 100) as f64 + 0.5;
        sketch.add(v, 1.0);
        match &mut set {
            Some(s) => s.merge(&StatisticSet::of(v, 1.0)),
            None => set = Some(StatisticSet::of(v, 1.0)),
        }
    }
    Sample {
        key: key(i),
        unit: "Percent".into(),
        timestamp: ts,
        set: set.unwrap(),
        sketch,
        high_resolution: false,
    }
}

fn json_put(ts: i64, values: usize) -> Vec<u8> {
    let data: Vec<serde_json::Value> = (0..SERIES)
        .map(|i| {
            let mut m = serde_json::json!({
                "MetricName": "Requests",
                "Dimensions": [{"Name": "Service", "Value": format!("service-{i:05}")}],
                "Timestamp": ts,
                "Unit": "Count",
            });
            if values == 1 {
                m["Value"] = serde_json::json!(1.5);
            } else {
                m["Values"] = serde_json::json!((0..values).map(|v| v as f64).collect::<Vec<_>>());
            }
            m
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({"Namespace": "Bench", "MetricData": data})).unwrap()
}

fn call<'a>(caller: &'a Caller, body: &'a [u8]) -> Call<'a> {
    Call {
        input: Input::Json(body),
        caller,
        request_id: "bench",
    }
}

/// One GetMetricData call over series `from..from + 500` (a call takes at most 500
/// queries, so 1,000 series are two calls).
fn gmd_body(start: i64, end: i64, from: usize) -> Vec<u8> {
    let queries: Vec<serde_json::Value> = (from..from + SERIES / 2)
        .map(|i| {
            let k = key(i);
            let dims: Vec<serde_json::Value> = k
                .dimensions()
                .iter()
                .map(|d| serde_json::json!({"Name": d.name, "Value": d.value}))
                .collect();
            serde_json::json!({
                "Id": format!("m{i}"),
                "MetricStat": {
                    "Metric": {"Namespace": k.namespace, "MetricName": k.metric_name, "Dimensions": dims},
                    "Period": 3600,
                    "Stat": "Average",
                },
            })
        })
        .collect();
    serde_json::to_vec(
        &serde_json::json!({"MetricDataQueries": queries, "StartTime": start, "EndTime": end}),
    )
    .unwrap()
}

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn memory_per_series() {
    let dir = tempfile::tempdir().unwrap();
    let store = MetricStore::open(dir.path().join("metrics.db")).unwrap();
    let t = now() - 120;
    let before = rss_bytes();
    const N: usize = 100_000;
    for chunk in 0..N / SERIES {
        let samples: Vec<Sample> = (0..SERIES)
            .map(|i| sample(chunk * SERIES + i, t, 1))
            .collect();
        store.put(&samples).unwrap();
    }
    let after = rss_bytes();
    eprintln!(
        "memory per active series: index {} B/series (accounted heap), process RSS growth {} B/series over {N} series (includes SQLite's page cache)",
        store.index_heap_bytes() / store.series_count(),
        after.saturating_sub(before) / N
    );
}

fn bench(c: &mut Criterion) {
    memory_per_series();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MetricStore::open(dir.path().join("metrics.db")).unwrap());
    let scope = model::ecs::arn::ArnScope {
        region: "us-east-1".into(),
        account_id: "000000000000".into(),
    };
    let cw = CloudWatch::new(store.clone(), scope);
    let caller = Caller::root("000000000000");
    let put_op = cloudwatch::Operation::PutMetricData;

    let mut group = c.benchmark_group("put");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    let single = json_put(now() - 60, 1);
    group.throughput(Throughput::Elements(SERIES as u64));
    group.bench_function("single_value_1000", |b| {
        b.iter(|| {
            rt.block_on(cw.handle(put_op, call(&caller, black_box(&single))))
                .unwrap()
        });
    });
    let many = json_put(now() - 60, 150);
    group.throughput(Throughput::Elements((SERIES * 150) as u64));
    group.bench_function("values_150x1000", |b| {
        b.iter(|| {
            rt.block_on(cw.handle(put_op, call(&caller, black_box(&many))))
                .unwrap()
        });
    });
    group.finish();

    // A day of per-minute data for 1,000 series.
    let end = now() / 3600 * 3600;
    let start = end - 86_400;
    let filled = Instant::now();
    for m in 0..DAY_MINUTES {
        let samples: Vec<Sample> = (0..SERIES).map(|i| sample(i, start + m * 60, 1)).collect();
        store.put(&samples).unwrap();
    }
    eprintln!(
        "filled 1,000 series x 1 day (1.44M datapoints) in {:?}",
        filled.elapsed()
    );
    let gmd_op = cloudwatch::Operation::GetMetricData;
    let bodies = [gmd_body(start, end, 0), gmd_body(start, end, SERIES / 2)];
    let all_series = || {
        let mut points = 0;
        for body in &bodies {
            let out = rt.block_on(cw.handle(gmd_op, call(&caller, body))).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            points += v["MetricDataResults"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["Values"].as_array().unwrap().len())
                .sum::<usize>();
        }
        points
    };
    assert_eq!(
        all_series(),
        SERIES * 24,
        "every series answers 24 hourly points"
    );
    // Hourly buckets are rolled up by the retention sweep (every 5 minutes in the
    // server); until it has run past an hour, that hour is read from its 60 one-minute
    // rows. First that worst case (the last hour not rolled up), then the usual one.
    let p99 = |what: &str| {
        let mut times: Vec<Duration> = (0..100)
            .map(|_| {
                let t = Instant::now();
                black_box(all_series());
                t.elapsed()
            })
            .collect();
        times.sort();
        eprintln!(
            "GetMetricData 1,000 series x 1 day (period 3600, two calls of 500 queries), {what}: p50 {:?}, p99 {:?}",
            times[49], times[98]
        );
    };
    store.sweep(end - 1).unwrap();
    assert_eq!(all_series(), SERIES * 24);
    p99("last hour not rolled up yet");
    store.sweep(end).unwrap();
    assert_eq!(all_series(), SERIES * 24);
    p99("all rolled up");

    let mut group = c.benchmark_group("get_metric_data");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("1000_series_1_day", |b| b.iter(|| black_box(all_series())));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
