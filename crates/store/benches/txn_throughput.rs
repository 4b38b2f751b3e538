//! Rough throughput probe, not a regression gate: 16 concurrent writers doing durable
//! CAS txns against a fresh `SqliteStore`, then 16 concurrent readers.
//!
//! Run with `cargo bench -p store --bench txn_throughput`. Set `STORE_BENCH_SECS` to
//! change the duration of each phase (default 3). Results depend heavily on how fast
//! the disk's fsync is.

use std::sync::Arc;
use std::time::{Duration, Instant};

use store::{SqliteConfig, SqliteStore, Store, Txn, TxnOutcome};

const CLIENTS: usize = 16;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn main() {
    // `cargo bench` passes `--bench`; anything else (e.g. `cargo test --benches`) just
    // checks that this builds and runs briefly.
    let quick = !std::env::args().any(|a| a == "--bench");
    let secs: u64 = std::env::var("STORE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let phase = if quick {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(secs)
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("no runtime: {e}"),
    };
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("no temp dir: {e}"),
    };
    let store = match SqliteStore::open(SqliteConfig::new(dir.path().join("bench.db"))) {
        Ok(store) => Arc::new(store),
        Err(e) => panic!("could not open: {e}"),
    };
    rt.block_on(async move {
        // Writes: each client creates fresh keys and bumps its own counter with CAS.
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for c in 0..CLIENTS {
            let store = Arc::clone(&store);
            tasks.spawn(async move {
                let counter = format!("bench/counter/{c}");
                let (mut rev, mut i, mut latencies) = (0, 0u64, Vec::new());
                let value = vec![b'x'; 512];
                while start.elapsed() < phase {
                    i += 1;
                    let txn = Txn::new()
                        .when(counter.clone(), rev)
                        .put(counter.clone(), i.to_string())
                        .put(format!("bench/obj/{c}/{i:08}"), value.clone());
                    let t = Instant::now();
                    match store.txn(txn).await {
                        Ok(TxnOutcome::Committed { revision }) => rev = revision,
                        other => panic!("bench txn failed: {other:?}"),
                    }
                    latencies.push(t.elapsed());
                }
                latencies
            });
        }
        let mut latencies = Vec::new();
        while let Some(done) = tasks.join_next().await {
            latencies.extend(done.unwrap_or_default());
        }
        let elapsed = start.elapsed().as_secs_f64();
        latencies.sort();
        println!(
            "writes: {CLIENTS} clients, {} txns in {elapsed:.2}s = {:.0} txn/s, p50 {:?}, p99 {:?}, max {:?}",
            latencies.len(),
            latencies.len() as f64 / elapsed,
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
            latencies.last().copied().unwrap_or_default(),
        );

        // Reads: gets and small ranges over what was just written.
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for c in 0..CLIENTS {
            let store = Arc::clone(&store);
            tasks.spawn(async move {
                let mut n = 0u64;
                let prefix = format!("bench/obj/{c}/");
                while start.elapsed() < phase {
                    n += 1;
                    let ok = if n & 3 == 0 {
                        store.range(&prefix, None, 100).await.is_ok()
                    } else {
                        store.get(&format!("bench/counter/{c}")).await.is_ok()
                    };
                    assert!(ok);
                    if n & 63 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                n
            });
        }
        let mut reads = 0;
        while let Some(done) = tasks.join_next().await {
            reads += done.unwrap_or_default();
        }
        let elapsed = start.elapsed().as_secs_f64();
        println!(
            "reads: {CLIENTS} clients, {reads} reads (3/4 get, 1/4 range of 100) in {elapsed:.2}s = {:.0} reads/s",
            reads as f64 / elapsed
        );
    });
}
