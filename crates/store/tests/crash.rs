//! Crash durability: a child process writes txns and reports each acknowledged one on
//! stdout; the parent SIGKILLs it mid-stream, reopens the database and checks that every
//! acknowledged write is there.
//!
//! The child is this same test binary re-executed on the `crash_child` test with an
//! environment variable naming the database; without the variable that test does nothing.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use store::{SqliteConfig, SqliteStore, Store, Txn, TxnOutcome};

const CHILD_DB: &str = "STORE_CRASH_CHILD_DB";
const WRITERS: usize = 8;
/// Acks the parent waits for before it kills the child.
const KILL_AFTER: usize = 400;

fn value_for(key: &str) -> Bytes {
    Bytes::from(format!("value of {key}"))
}

/// Child side: writes forever (bounded to 60 s in case the parent is gone), printing
/// `ACK <key> <counter> END` after each commit. Each txn creates a fresh key and bumps
/// its writer's counter with compare-and-swap.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_DB) else {
        return;
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("no runtime: {e}"),
    };
    rt.block_on(async move {
        let store = match SqliteStore::open(SqliteConfig::new(&path)) {
            Ok(store) => Arc::new(store),
            Err(e) => panic!("child could not open: {e}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut tasks = tokio::task::JoinSet::new();
        for w in 0..WRITERS {
            let store = Arc::clone(&store);
            tasks.spawn(async move {
                let counter = format!("counter/{w}");
                let mut counter_rev = 0;
                let mut i = 0u64;
                while Instant::now() < deadline {
                    i += 1;
                    let key = format!("w{w}/{i:08}");
                    let txn = Txn::new()
                        .when(counter.clone(), counter_rev)
                        .put(key.clone(), value_for(&key))
                        .put(counter.clone(), i.to_string());
                    match store.txn(txn).await {
                        Ok(TxnOutcome::Committed { revision }) => {
                            counter_rev = revision;
                            println!("ACK {key} {counter} {i} END");
                        }
                        other => panic!("child txn failed: {other:?}"),
                    }
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    });
}

#[test]
fn acknowledged_txns_survive_sigkill() {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("no temp dir: {e}"),
    };
    let path = dir.path().join("state.db");
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => panic!("no current exe: {e}"),
    };
    let mut child = match Command::new(exe)
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DB, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!("could not start the child: {e}"),
    };
    let Some(stdout) = child.stdout.take() else {
        panic!("child has no stdout")
    };

    let mut keys = Vec::new();
    let mut counters: BTreeMap<String, u64> = BTreeMap::new();
    let mut killed = false;
    // Lines the child wrote before it died are still in the pipe; read to EOF.
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let fields: Vec<&str> = line.split(' ').collect();
        // A line cut short by the kill lacks its END marker and was not fully reported.
        if let ["ACK", key, counter, n, "END"] = fields[..] {
            keys.push(key.to_owned());
            let n: u64 = n
                .parse()
                .unwrap_or_else(|e| panic!("bad counter in {line:?}: {e}"));
            let max = counters.entry(counter.to_owned()).or_default();
            *max = (*max).max(n);
        }
        if !killed && keys.len() >= KILL_AFTER {
            // SIGKILL on unix: no destructor, no clean close of SQLite.
            if let Err(e) = child.kill() {
                panic!("could not kill the child: {e}");
            }
            killed = true;
        }
    }
    let status = child.wait();
    assert!(
        killed,
        "the child stopped by itself after {} acks: {status:?}",
        keys.len()
    );

    check_acked(&path, &keys, &counters);
    eprintln!(
        "crash test: {} acknowledged txns survived SIGKILL",
        keys.len()
    );
}

fn check_acked(path: &Path, keys: &[String], counters: &BTreeMap<String, u64>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("no runtime: {e}"),
    };
    rt.block_on(async {
        let store = match SqliteStore::open(SqliteConfig::new(path)) {
            Ok(store) => store,
            Err(e) => panic!("reopen after crash failed: {e}"),
        };
        for key in keys {
            let got = store.get(key).await.ok().flatten().map(|kv| kv.value);
            assert_eq!(got, Some(value_for(key)), "acknowledged {key} lost");
        }
        for (counter, acked) in counters {
            let got = store.get(counter).await.ok().flatten().map(|kv| kv.value);
            let n: u64 = got
                .and_then(|v| String::from_utf8_lossy(&v).parse().ok())
                .unwrap_or_else(|| panic!("{counter} lost"));
            // Commits after the last ack may have landed too, never fewer.
            assert!(n >= *acked, "{counter} is {n}, below acknowledged {acked}");
        }
        // Every committed txn has its own revision, so the store has at least as many.
        let revision = store.revision().await.ok().unwrap_or_default();
        assert!(revision >= keys.len() as u64);
    });
}
