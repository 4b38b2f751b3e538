//! Logs Insights scan speed: the query language's evaluator over events held in memory
//! (the event store's reads are not measured here).
//!
//! Groups (throughput in events scanned per second, one core):
//! - `filter_stats_bin`: `filter @message like /ERROR/ | stats count(*) by bin(5m)`, the
//!   issue's target (≥ 5 million events/s);
//! - `filter_substring_stats_bin`: the same with a `like "ERROR"` substring;
//! - `json_field_filter`: `filter status >= 500 | stats count(*) by bin(5m)` over JSON
//!   messages, where every event's JSON is parsed.

// `criterion_group!` generates an undocumented pub function.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used)] // benchmark setup may unwrap

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use logs::insights::{parse_query, EventRef, Execution};
use std::hint::black_box;

const N: usize = 1_000_000;
const T0: i64 = 1_732_615_200_000;

fn text_events() -> Vec<String> {
    (0..N)
        .map(|i| {
            let level = if i % 10 == 0 { "ERROR" } else { "INFO" };
            format!(
                "2024-11-26T10:00:00Z {level} request id={i} path=/api/v1/items latency_ms={}",
                i % 97
            )
        })
        .collect()
}

fn json_events() -> Vec<String> {
    (0..N)
        .map(|i| {
            let status = if i % 10 == 0 { 500 } else { 200 };
            format!(
                r#"{{"status":{status},"path":"/api/v1/items","latency":{}}}"#,
                i % 97
            )
        })
        .collect()
}

fn scan(query: &str, messages: &[String]) -> usize {
    let mut exec = Execution::new(parse_query(query).unwrap(), 10_000);
    for (i, m) in messages.iter().enumerate() {
        exec.push(EventRef {
            timestamp: T0 + i as i64 * 10,
            ingestion_time: T0 + i as i64 * 10,
            message: m,
            log_stream: "ecs/app/0123456789abcdef",
            log: "000000000000:/ecs/app",
            seq: i as u64,
        });
    }
    exec.finish().len()
}

fn bench(c: &mut Criterion) {
    let text = text_events();
    let json = json_events();
    let mut g = c.benchmark_group("insights");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    g.bench_function("filter_stats_bin", |b| {
        b.iter(|| {
            black_box(scan(
                "filter @message like /ERROR/ | stats count(*) by bin(5m)",
                &text,
            ))
        });
    });
    g.bench_function("filter_substring_stats_bin", |b| {
        b.iter(|| {
            black_box(scan(
                "filter @message like 'ERROR' | stats count(*) by bin(5m)",
                &text,
            ))
        });
    });
    g.bench_function("json_field_filter", |b| {
        b.iter(|| {
            black_box(scan(
                "filter status >= 500 | stats count(*) by bin(5m)",
                &json,
            ))
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
