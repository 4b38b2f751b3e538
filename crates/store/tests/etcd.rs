//! Runs the backend-neutral conformance suite against `EtcdStore` on a real etcd that
//! each test starts (free ports, a temp data dir, killed at the end), plus the etcd-only
//! behaviour: a watch that resumes after etcd restarts, calls that fail fast as
//! unavailable while etcd is down, and the lease-based leader election.
//!
//! Needs the `etcd` binary (Debian `etcd-server`). Without it the tests say so and pass,
//! except under `CI=true`, where a missing etcd fails them.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use store::etcd::{campaign, ElectionConfig, EtcdConfig, EtcdStore};
use store::testsuite;
use store::{Store, StoreError, Txn, TxnOutcome, WatchEvent};

/// One etcd member on loopback, killed (and its data dir removed) on drop.
struct Etcd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    name: String,
    client_port: u16,
    peer_port: u16,
    /// `--initial-cluster`: every member's name and peer URL.
    cluster: String,
}

fn free_port() -> u16 {
    match TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(addr) => addr.port(),
        Err(e) => panic!("no free port: {e}"),
    }
}

/// The etcd binary, or `None` (outside CI) when it is not installed.
fn etcd_binary() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("etcd"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI=true but no etcd binary on PATH (install Debian's etcd-server)"
        );
        eprintln!("etcd is not installed (Debian etcd-server); skipping this etcd test");
    }
    found
}

impl Etcd {
    fn start(binary: &Path) -> Self {
        match Self::start_cluster(binary, 1).pop() {
            Some(member) => member,
            None => panic!("a cluster of one has one member"),
        }
    }

    /// `n` members forming one cluster.
    fn start_cluster(binary: &Path, n: usize) -> Vec<Self> {
        let mut members: Vec<Self> = (0..n)
            .map(|i| Self {
                child: None,
                dir: match tempfile::tempdir() {
                    Ok(d) => d,
                    Err(e) => panic!("no temp dir: {e}"),
                },
                name: format!("m{i}"),
                client_port: free_port(),
                peer_port: free_port(),
                cluster: String::new(),
            })
            .collect();
        let cluster = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        for member in &mut members {
            member.cluster.clone_from(&cluster);
            member.spawn(binary);
        }
        members
    }

    fn spawn(&mut self, binary: &Path) {
        let client = format!("http://127.0.0.1:{}", self.client_port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = match std::fs::File::create(self.dir.path().join("etcd.log")) {
            Ok(f) => f,
            Err(e) => panic!("cannot create the etcd log: {e}"),
        };
        let child = Command::new(binary)
            .args(["--name", &self.name, "--data-dir"])
            .arg(self.dir.path().join("data"))
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &self.cluster])
            // Stevedore's multi-key txns and 1 MiB values exceed etcd's defaults.
            .args(["--max-txn-ops", "10000", "--max-request-bytes", "10485760"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn();
        self.child = Some(match child {
            Ok(c) => c,
            Err(e) => panic!("could not start etcd: {e}"),
        });
    }

    fn config(&self) -> EtcdConfig {
        EtcdConfig {
            endpoints: vec![format!("127.0.0.1:{}", self.client_port)],
            timeout: Some(Duration::from_secs(2)),
            ..EtcdConfig::default()
        }
    }

    /// Connects, waiting for etcd to come up.
    async fn store(&self) -> EtcdStore {
        let config = self.config();
        for _ in 0..100 {
            if let Ok(store) = EtcdStore::connect(&config).await {
                return store;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default();
        panic!("etcd did not come up within 10 s; its log:\n{log}");
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _killed = child.kill();
            let _reaped = child.wait();
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let Some(binary) = etcd_binary() else { return };
            let etcd = Etcd::start(&binary);
            let store: Arc<dyn Store> = Arc::new(etcd.store().await);
            testsuite::$name(store).await;
        }
    )*};
}

conformance!(
    put_then_get_returns_value,
    get_of_missing_key_is_none,
    create_and_mod_revisions_track_writes,
    revision_grows_by_one_per_commit,
    txn_without_ops_keeps_revision,
    delete_then_recreate_resets_create_revision,
    delete_of_absent_key_commits,
    compare_zero_means_absent,
    conflicting_txn_writes_nothing,
    conflict_names_first_failing_key,
    later_op_on_same_key_wins,
    range_is_ordered_and_bounded_by_prefix,
    range_pages_with_start_after_and_limit,
    range_reports_current_revision,
    count_by_prefix,
    concurrent_cas_increments_lose_nothing,
    concurrent_creates_have_one_winner,
    large_values_round_trip,
    many_keys_round_trip,
    watch_replays_history_from_a_revision_in_order,
    watch_is_filtered_by_prefix,
    watch_delivers_live_events,
    watch_reports_deletes_of_existing_keys_only,
    watch_from_a_compacted_revision_fails,
    watch_delivers_all_ops_of_a_txn_with_its_revision,
);

/// Keeps the list above in step with the suite.
#[test]
fn every_suite_check_is_run_here() {
    let source = include_str!("etcd.rs");
    for (name, _) in testsuite::CHECKS {
        assert!(
            source.contains(&format!("    {name},\n")),
            "{name} is not run against etcd"
        );
    }
}

/// The suite through the key prefix the server puts its state under.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_passes_under_a_prefix_of_a_shared_etcd() {
    let Some(binary) = etcd_binary() else { return };
    let etcd = Etcd::start(&binary);
    let inner: Arc<dyn Store> = Arc::new(etcd.store().await);
    let mut n = 0;
    testsuite::run_all(|| {
        n += 1;
        let view: Arc<dyn Store> = Arc::new(store::Prefixed::new(
            Arc::clone(&inner),
            format!("stevedore/{n}/"),
        ));
        async move { (view, ()) }
    })
    .await;
}

async fn commit(store: &dyn Store, txn: Txn) -> u64 {
    match store.txn(txn).await {
        Ok(TxnOutcome::Committed { revision }) => revision,
        other => panic!("expected a commit, got {other:?}"),
    }
}

/// The suite on a three-member cluster (through all three endpoints); then, with one
/// member killed, the other two still commit and read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_passes_on_a_three_member_cluster_that_survives_losing_one() {
    let Some(binary) = etcd_binary() else { return };
    let mut members = Etcd::start_cluster(&binary, 3);
    let config = EtcdConfig {
        endpoints: members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.client_port))
            .collect(),
        timeout: Some(Duration::from_secs(2)),
        ..EtcdConfig::default()
    };
    // Every member answers once the cluster has a leader.
    for m in &members {
        drop(m.store().await);
    }
    let inner: Arc<dyn Store> = match EtcdStore::connect(&config).await {
        Ok(s) => Arc::new(s),
        Err(e) => panic!("could not connect to the cluster: {e}"),
    };
    let mut n = 0;
    testsuite::run_all(|| {
        n += 1;
        let view: Arc<dyn Store> = Arc::new(store::Prefixed::new(
            Arc::clone(&inner),
            format!("three/{n}/"),
        ));
        async move { (view, ()) }
    })
    .await;
    members[0].kill();
    let mut committed = None;
    for _ in 0..40 {
        if let Ok(TxnOutcome::Committed { revision }) =
            inner.txn(Txn::new().put("after/kill", "x")).await
        {
            committed = Some(revision);
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let Some(revision) = committed else {
        panic!("two of three members did not commit within 10 s");
    };
    match inner.get("after/kill").await {
        Ok(Some(kv)) => assert_eq!(kv.mod_revision, revision),
        other => panic!("expected the key, got {other:?}"),
    }
}

/// etcd down: calls fail within the deadline as `Unavailable`; etcd back: they work
/// again, and a watch opened before resumes from where it was, losing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_fail_fast_while_etcd_is_down_and_the_watch_resumes_after() {
    let Some(binary) = etcd_binary() else { return };
    let mut etcd = Etcd::start(&binary);
    let store = etcd.store().await;
    let r1 = commit(&store, Txn::new().put("w/1", "a")).await;
    let mut watcher = match store.watch("w/", r1).await {
        Ok(w) => w,
        Err(e) => panic!("watch failed: {e}"),
    };
    etcd.kill();
    let started = std::time::Instant::now();
    match store.get("w/1").await {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    etcd.spawn(&binary);
    let again = etcd.store().await;
    let r2 = commit(&again, Txn::new().put("w/2", "b")).await;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(15), watcher.next()).await {
            Ok(Some(Ok(WatchEvent::Put(kv)))) => seen.push((kv.key, kv.mod_revision)),
            other => panic!("expected a put, got {other:?}"),
        }
    }
    assert_eq!(seen, [("w/1".to_owned(), r1), ("w/2".to_owned(), r2)]);
    // The first store recovers by itself too (its channel redials with a backoff).
    let mut last = None;
    for _ in 0..40 {
        match store.get("w/2").await {
            Ok(Some(_)) => return,
            other => last = Some(other),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the first store did not recover within 10 s: {last:?}");
}

/// Two candidates: exactly one leads; when it stops, the other takes over within the
/// lease TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_at_a_time_and_the_other_takes_over() {
    let Some(binary) = etcd_binary() else { return };
    let etcd = Etcd::start(&binary);
    let store = etcd.store().await;
    let config = |who: &str| ElectionConfig {
        key: "stevedore/leader".to_owned(),
        identity: who.to_owned(),
        ttl: Duration::from_secs(2),
    };
    let (stop_a, stop_b) = (
        telemetry::CancellationToken::new(),
        telemetry::CancellationToken::new(),
    );
    let mut a = campaign(store.client(), config("a"), stop_a.clone());
    let first = match tokio::time::timeout(Duration::from_secs(10), a.acquired()).await {
        Ok(Some(term)) => term,
        other => panic!("a never led: {other:?}"),
    };
    let b = campaign(store.client(), config("b"), stop_b.clone());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(a.term(), Some(first), "a must keep leading");
    assert_eq!(b.term(), None, "b must not lead while a does");
    stop_a.cancel();
    let mut b2 = b.clone();
    let second = match tokio::time::timeout(Duration::from_secs(5), b2.acquired()).await {
        Ok(Some(term)) => term,
        other => panic!("b never took over: {other:?}"),
    };
    assert!(second > first);
    assert_eq!(a.term(), None);
    stop_b.cancel();
}

/// Fencing: a write made in a term that has ended is refused by etcd itself, both while
/// no one leads and after another replica took over, whatever the deposed leader still
/// believes; the current leader's writes and unfenced (API) writes commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_leaders_write_is_refused() {
    let Some(binary) = etcd_binary() else { return };
    let etcd = Etcd::start(&binary);
    let raw = etcd.store().await;
    let key = "stevedore/_leader";
    let fenced = store::Fenced::new(Arc::new(raw.clone()) as Arc<dyn Store>, key);
    let config = |who: &str| ElectionConfig {
        key: key.to_owned(),
        identity: who.to_owned(),
        ttl: Duration::from_secs(2),
    };
    let stop_a = telemetry::CancellationToken::new();
    let mut a = campaign(raw.client(), config("a"), stop_a.clone());
    let first = match tokio::time::timeout(Duration::from_secs(10), a.acquired()).await {
        Ok(Some(term)) => term,
        other => panic!("a never led: {other:?}"),
    };
    let wrote = store::as_leader(first, fenced.txn(Txn::new().put("s/x", "a1"))).await;
    assert!(
        matches!(wrote, Ok(TxnOutcome::Committed { .. })),
        "{wrote:?}"
    );

    // a's lease ends (here given back; a paused process's would expire).
    stop_a.cancel();
    let mut gone = false;
    for _ in 0..40 {
        if matches!(raw.get(key).await, Ok(None)) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the election key outlived a's lease");
    let between = store::as_leader(first, fenced.txn(Txn::new().put("s/x", "a2"))).await;
    assert!(
        matches!(between, Err(StoreError::NotLeader { term }) if term == first),
        "a write of an ended term must be refused while no one leads: {between:?}"
    );

    let stop_b = telemetry::CancellationToken::new();
    let mut b = campaign(raw.client(), config("b"), stop_b.clone());
    let second = match tokio::time::timeout(Duration::from_secs(10), b.acquired()).await {
        Ok(Some(term)) => term,
        other => panic!("b never led: {other:?}"),
    };
    assert!(second > first);
    let stale = store::as_leader(first, fenced.txn(Txn::new().put("s/x", "a3"))).await;
    assert!(
        matches!(stale, Err(StoreError::NotLeader { term }) if term == first),
        "a deposed leader's write must be refused once another leads: {stale:?}"
    );
    let current = store::as_leader(second, fenced.txn(Txn::new().put("s/x", "b1"))).await;
    assert!(
        matches!(current, Ok(TxnOutcome::Committed { .. })),
        "{current:?}"
    );
    let api = fenced.txn(Txn::new().put("s/y", "api")).await;
    assert!(matches!(api, Ok(TxnOutcome::Committed { .. })), "{api:?}");
    match raw.get("s/x").await {
        Ok(Some(kv)) => assert_eq!(&kv.value[..], b"b1", "no stale write applied"),
        other => panic!("expected s/x, got {other:?}"),
    }
    stop_b.cancel();
}
