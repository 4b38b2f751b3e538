//! Logs Insights end to end: events stored through PutLogEvents in the real SQLite event
//! store, then queries run through StartQuery and polled with GetQueryResults until
//! `Complete`, as a client sees them. This is what issue 21's numbers are about; the
//! `insights` bench measures the evaluator alone.
//!
//! Prints, for `filter @message like /ERROR/ | stats count(*) by bin(5m)`:
//! - query latency (StartQuery until GetQueryResults says Complete): p50, p99, max over
//!   `INSIGHTS_RUNS` runs (default 30) — target p99 ≤ 1 s for 1 million events;
//! - events scanned per second (recordsScanned over the latency) — target ≥ 5 million/s.
//!
//! `INSIGHTS_EVENTS` sets how many events (default 1,000,000; the scan figure is
//! for 10,000,000), spread over `INSIGHTS_STREAMS` streams (default 10). Run with
//! `cargo bench -p logs --bench insights_e2e`.

#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark setup may unwrap

use logs::{Logs, SqliteEventStore};
use model::ecs::arn::ArnScope;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

const GROUP: &str = "/bench/insights";
const QUERY: &str = "filter @message like /ERROR/ | stats count(*) by bin(5m)";
/// Events per PutLogEvents call: under AWS's 1 MiB batch limit for these messages.
const BATCH: usize = 8_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

async fn call(logs: &Logs, op: &str, body: Value) -> Value {
    let out = logs
        .handle(op, body.to_string().as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{op}: {e}"));
    if out.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&out).unwrap()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn run() {
    let events = env_usize("INSIGHTS_EVENTS", 1_000_000);
    let streams = env_usize("INSIGHTS_STREAMS", 10).max(1);
    let runs = env_usize("INSIGHTS_RUNS", 30).max(1);
    let dir = tempfile::tempdir().unwrap();
    let store =
        store::SqliteStore::open(store::SqliteConfig::new(dir.path().join("state.db"))).unwrap();
    let event_store = SqliteEventStore::open(dir.path().join("logs.db")).unwrap();
    let scope = ArnScope {
        region: "us-east-1".into(),
        account_id: "000000000000".into(),
    };
    let logs = Logs::new(Arc::new(store), Arc::new(event_store), scope);
    call(&logs, "CreateLogGroup", json!({"logGroupName": GROUP})).await;
    for s in 0..streams {
        call(
            &logs,
            "CreateLogStream",
            json!({"logGroupName": GROUP, "logStreamName": format!("ecs/app/{s:016x}")}),
        )
        .await;
    }

    // One event per millisecond, round robin over the streams, ending a minute ago:
    // inside the window PutLogEvents accepts and the query covers.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let t0 = now - 60_000 - events as i64;
    let loading = Instant::now();
    let per_stream = events.div_ceil(streams);
    for s in 0..streams {
        let name = format!("ecs/app/{s:016x}");
        let mut i = 0;
        while i < per_stream {
            let batch: Vec<Value> = (i..per_stream.min(i + BATCH))
                .map(|k| k * streams + s)
                .filter(|&n| n < events)
                .map(|n| {
                    let level = if n % 10 == 0 { "ERROR" } else { "INFO" };
                    json!({
                        "timestamp": t0 + n as i64,
                        "message": format!(
                            "2024-11-26T10:00:00Z {level} request id={n} path=/api/v1/items latency_ms={}",
                            n % 97
                        ),
                    })
                })
                .collect();
            i += BATCH;
            if batch.is_empty() {
                continue;
            }
            call(
                &logs,
                "PutLogEvents",
                json!({"logGroupName": GROUP, "logStreamName": name, "logEvents": batch}),
            )
            .await;
        }
    }
    println!(
        "loaded {events} events over {streams} streams in {:.1} s",
        loading.elapsed().as_secs_f64()
    );

    let (start, end) = (t0 / 1000 - 1, now / 1000 + 1);
    let mut latencies = Vec::with_capacity(runs);
    let mut scanned = 0.0;
    // One warm-up run fills the page cache, as a server that has been up a while has it.
    for round in 0..=runs {
        let began = Instant::now();
        let id = call(
            &logs,
            "StartQuery",
            json!({"logGroupName": GROUP, "startTime": start, "endTime": end, "queryString": QUERY}),
        )
        .await["queryId"]
            .as_str()
            .unwrap()
            .to_owned();
        let result = loop {
            let r = call(&logs, "GetQueryResults", json!({"queryId": id})).await;
            match r["status"].as_str() {
                Some("Complete") => break r,
                Some("Scheduled" | "Running") => tokio::time::sleep(Duration::from_millis(2)).await,
                other => panic!("query ended {other:?}: {r}"),
            }
        };
        let took = began.elapsed();
        let records = result["statistics"]["recordsScanned"].as_f64().unwrap();
        assert_eq!(records as usize, events, "every event scanned");
        let errors: f64 = result["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|row| {
                row.as_array()?.iter().find(|f| f["field"] == "count(*)")?["value"]
                    .as_str()?
                    .parse::<f64>()
                    .ok()
            })
            .sum();
        assert_eq!(errors as usize, events.div_ceil(10), "every ERROR counted");
        if round > 0 {
            latencies.push(took);
            scanned += records;
        }
    }
    latencies.sort();
    let total: Duration = latencies.iter().sum();
    println!("query: {QUERY}");
    println!(
        "latency over {runs} runs: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        percentile(&latencies, 50.0).as_secs_f64() * 1e3,
        percentile(&latencies, 99.0).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
    );
    println!(
        "scanned: {:.2} M events/s (recordsScanned / latency, mean over runs)",
        scanned / total.as_secs_f64() / 1e6
    );
}

fn main() {
    // `cargo bench` passes `--bench`; this harness takes no arguments.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run());
}
