//! The task engine against the real Docker daemon: a recorder stands in for the control
//! plane. Needs Docker: skipped when it is absent, except under `CI=true`, where that
//! fails. Every container is labelled with a per-test cluster and removed at the end,
//! even on failure.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use agent::engine::{Engine, EngineConfig, Submit, SubmitError};
use agent::runtime::DockerRuntime;
use agent::state::StateFile;
use async_trait::async_trait;
use model::acs::{Container, PortMapping, Task};
use model::ecs::shapes::SubmitTaskStateChangeRequest;

const IMAGE: &str = "stevedore-agent-test:busybox";

fn docker_ok() -> bool {
    Command::new("timeout")
        .args(["20", "docker", "info"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether Docker is usable; panics under CI when it is not.
fn require_docker() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        if !docker_ok() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "Docker is required under CI=true but `docker info` fails"
            );
            eprintln!("skipping: Docker is not available");
            return false;
        }
        build_image();
        true
    })
}

fn build_image() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy("/bin/busybox", dir.path().join("busybox"))
        .expect("busybox-static at /bin/busybox");
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nCMD [\"/bin/busybox\",\"sh\",\"-c\",\"sleep 3600\"]\n",
    )
    .expect("dockerfile");
    let out = Command::new("timeout")
        .args(["120", "docker", "build", "-q", "-t", IMAGE])
        .arg(dir.path())
        .output()
        .expect("docker build");
    assert!(
        out.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Removes every container of `cluster` when dropped.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let ids = containers(&format!("com.amazonaws.ecs.cluster={}", self.0));
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f", "-v"])
                .args(&ids)
                .output();
        }
    }
}

fn containers(label: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--no-trunc",
            "--filter",
            &format!("label={label}"),
        ])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[derive(Default)]
struct Recorder(Mutex<Vec<SubmitTaskStateChangeRequest>>);

#[async_trait]
impl Submit for Recorder {
    async fn submit(&self, request: &SubmitTaskStateChangeRequest) -> Result<(), SubmitError> {
        self.0.lock().expect("lock").push(request.clone());
        Ok(())
    }
}

impl Recorder {
    fn reports(&self, arn: &str) -> Vec<SubmitTaskStateChangeRequest> {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .filter(|r| r.task.as_deref() == Some(arn))
            .cloned()
            .collect()
    }

    async fn wait(&self, arn: &str, status: &str, limit: Duration) -> SubmitTaskStateChangeRequest {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(r) = self
                .reports(arn)
                .into_iter()
                .find(|r| r.status.as_deref() == Some(status))
            {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "no {status} report for {arn}: {:?}",
                self.reports(arn)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), rand_suffix())
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now()) % 1_000_000
}

fn container(name: &str, cmd: &str) -> Container {
    Container {
        name: name.into(),
        image: IMAGE.into(),
        essential: true,
        memory: Some(64),
        command: Some(vec![
            "/bin/busybox".into(),
            "sh".into(),
            "-c".into(),
            cmd.into(),
        ]),
        stop_timeout: Some(2),
        ..Container::default()
    }
}

fn task(cluster: &str, id: &str, containers: Vec<Container>) -> Task {
    Task {
        arn: format!("arn:aws:ecs:us-east-1:000000000000:task/{cluster}/{id}"),
        desired_status: "RUNNING".into(),
        family: "agenttest".into(),
        version: "1".into(),
        network_mode: Some("bridge".into()),
        containers,
        ..Task::default()
    }
}

struct Fixture {
    cluster: String,
    _cleanup: Cleanup,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let cluster = format!(
            "arn:aws:ecs:us-east-1:000000000000:cluster/{}",
            unique("agent-test")
        );
        Self {
            _cleanup: Cleanup(cluster.clone()),
            cluster,
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    async fn engine(&self, recorder: Arc<Recorder>) -> Engine<DockerRuntime> {
        self.engine_with(recorder, Duration::from_secs(3600)).await
    }

    async fn engine_with(
        &self,
        recorder: Arc<Recorder>,
        cleanup_wait: Duration,
    ) -> Engine<DockerRuntime> {
        let runtime = DockerRuntime::connect().await.expect("docker");
        let state = Arc::new(StateFile::open(self.dir.path()).expect("state"));
        let mut config = EngineConfig::new(self.cluster.clone());
        config.poll_interval = Duration::from_millis(200);
        config.cleanup_wait = cleanup_wait;
        Engine::new(Arc::new(runtime), recorder, state, config)
    }
}

async fn http_get(port: i32) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let attempt = async {
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", u16::try_from(port).ok()?))
                .await
                .ok()?;
            s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
                .await
                .ok()?;
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).await.ok()?;
            let text = String::from_utf8_lossy(&buf).into_owned();
            text.starts_with("HTTP/").then_some(text)
        };
        if let Ok(Some(text)) = tokio::time::timeout(Duration::from_secs(3), attempt).await {
            return text;
        }
        assert!(Instant::now() < deadline, "nothing answered on port {port}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_runs_with_a_dynamic_port_and_stops_when_asked() {
    if !require_docker() {
        return;
    }
    let fx = Fixture::new();
    let recorder = Arc::new(Recorder::default());
    let mut engine = fx.engine(recorder.clone()).await;
    let mut web = container("web", "");
    web.command = Some(vec![
        "/bin/busybox".into(),
        "httpd".into(),
        "-f".into(),
        "-p".into(),
        "80".into(),
    ]);
    web.port_mappings = vec![PortMapping {
        container_port: Some(80),
        host_port: Some(0),
        protocol: Some("tcp".into()),
        ..PortMapping::default()
    }];
    web.environment = BTreeMap::from([("GREETING".to_owned(), "hi".to_owned())]);
    let mut t = task(&fx.cluster, "web1", vec![web]);
    engine.apply(t.clone()).await;

    let running = recorder
        .wait(&t.arn, "RUNNING", Duration::from_secs(60))
        .await;
    let c = &running.containers.as_ref().expect("containers")[0];
    let runtime_id = c.runtime_id.clone().expect("runtime id");
    let binding = &c.network_bindings.as_ref().expect("bindings")[0];
    assert_eq!(binding.container_port, Some(80));
    let port = binding.host_port.expect("host port");
    assert!(port > 0);
    let answer = http_get(port).await;
    assert!(answer.starts_with("HTTP/1."), "{answer}");
    let labelled = containers(&format!("com.amazonaws.ecs.task-arn={}", t.arn));
    assert_eq!(labelled, vec![runtime_id.clone()]);

    t.desired_status = "STOPPED".into();
    engine.apply(t.clone()).await;
    let stopped = recorder
        .wait(&t.arn, "STOPPED", Duration::from_secs(60))
        .await;
    let c = &stopped.containers.as_ref().expect("containers")[0];
    assert_eq!(c.status.as_deref(), Some("STOPPED"));
    assert!(c.exit_code.is_some(), "{stopped:?}");
    assert_eq!(recorder.reports(&t.arn).len(), 2, "one report per status");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn essential_container_exit_stops_the_task_with_its_exit_code() {
    if !require_docker() {
        return;
    }
    let fx = Fixture::new();
    let recorder = Arc::new(Recorder::default());
    let mut engine = fx.engine(recorder.clone()).await;
    let app = container("app", "sleep 3; exit 3");
    let mut side = container("side", "sleep 3600");
    side.essential = false;
    side.stop_timeout = Some(1);
    let t = task(&fx.cluster, "ess1", vec![app, side]);
    engine.apply(t.clone()).await;
    recorder
        .wait(&t.arn, "RUNNING", Duration::from_secs(60))
        .await;
    let stopped = recorder
        .wait(&t.arn, "STOPPED", Duration::from_secs(60))
        .await;
    assert_eq!(
        stopped.reason.as_deref(),
        Some("Essential container in task exited")
    );
    let cs = stopped.containers.expect("containers");
    let app = cs
        .iter()
        .find(|c| c.container_name.as_deref() == Some("app"))
        .expect("app");
    assert_eq!(app.exit_code, Some(3));
    let side = cs
        .iter()
        .find(|c| c.container_name.as_deref() == Some("side"))
        .expect("side");
    assert_eq!(side.status.as_deref(), Some("STOPPED"));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpullable_image_stops_the_task_with_cannot_pull() {
    if !require_docker() {
        return;
    }
    let fx = Fixture::new();
    let recorder = Arc::new(Recorder::default());
    let mut engine = fx.engine(recorder.clone()).await;
    let mut c = container("app", "true");
    c.image = "127.0.0.1:1/stevedore/nope:latest".into();
    let t = task(&fx.cluster, "pull1", vec![c]);
    engine.apply(t.clone()).await;
    let stopped = recorder
        .wait(&t.arn, "STOPPED", Duration::from_secs(60))
        .await;
    let reason = stopped.containers.expect("containers")[0]
        .reason
        .clone()
        .expect("reason");
    assert!(reason.starts_with("CannotPullContainerError:"), "{reason}");
    assert!(recorder
        .reports(&t.arn)
        .iter()
        .all(|r| r.status.as_deref() != Some("RUNNING")));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_engine_adopts_running_containers_and_reports_exited_ones() {
    if !require_docker() {
        return;
    }
    let fx = Fixture::new();
    let first = Arc::new(Recorder::default());
    let mut engine = fx.engine(first.clone()).await;
    let keep = task(&fx.cluster, "keep1", vec![container("app", "sleep 3600")]);
    let gone = task(&fx.cluster, "gone1", vec![container("app", "sleep 3600")]);
    engine.apply(keep.clone()).await;
    engine.apply(gone.clone()).await;
    let keep_id = first
        .wait(&keep.arn, "RUNNING", Duration::from_secs(60))
        .await
        .containers
        .expect("c")[0]
        .runtime_id
        .clone()
        .expect("id");
    let gone_id = first
        .wait(&gone.arn, "RUNNING", Duration::from_secs(60))
        .await
        .containers
        .expect("c")[0]
        .runtime_id
        .clone()
        .expect("id");
    // The agent goes away (its actors end; containers stay), one container exits meanwhile.
    engine.shutdown().await;
    let out = Command::new("docker")
        .args(["kill", &gone_id])
        .output()
        .expect("docker kill");
    assert!(out.status.success());

    let second = Arc::new(Recorder::default());
    let mut engine = fx.engine(second.clone()).await;
    assert_eq!(engine.adopt().await.expect("adopt"), 2);
    let stopped = second
        .wait(&gone.arn, "STOPPED", Duration::from_secs(30))
        .await;
    let c = &stopped.containers.expect("c")[0];
    assert_eq!(c.runtime_id.as_deref(), Some(gone_id.as_str()));
    assert_eq!(c.exit_code, Some(137));
    // The running one is adopted: same container, no twin, nothing new to report.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        containers(&format!("com.amazonaws.ecs.task-arn={}", keep.arn)),
        vec![keep_id]
    );
    assert!(second.reports(&keep.arn).is_empty());
    // A re-delivered payload for it changes nothing either.
    engine.apply(keep.clone()).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(second.reports(&keep.arn).is_empty());
    assert_eq!(
        containers(&format!("com.amazonaws.ecs.task-arn={}", keep.arn)).len(),
        1
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_containers_are_removed_after_the_cleanup_wait() {
    if !require_docker() {
        return;
    }
    let fx = Fixture::new();
    let recorder = Arc::new(Recorder::default());
    let mut engine = fx
        .engine_with(recorder.clone(), Duration::from_secs(1))
        .await;
    let t = task(
        &fx.cluster,
        "clean1",
        vec![container("app", "sleep 2; exit 0")],
    );
    engine.apply(t.clone()).await;
    let stopped = recorder
        .wait(&t.arn, "STOPPED", Duration::from_secs(60))
        .await;
    assert_eq!(stopped.containers.expect("c")[0].exit_code, Some(0));
    let label = format!("com.amazonaws.ecs.task-arn={}", t.arn);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !containers(&label).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the stopped container was not removed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let state = StateFile::open(fx.dir.path()).expect("state");
    assert!(!state.snapshot().tasks.contains_key(&t.arn));
    engine.shutdown().await;
}

async fn http_get_path(base: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = base.trim_start_matches("http://").to_owned();
    let request = format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n");
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(authority.as_str())
            .await
            .ok()?;
        s.write_all(request.as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        Some(String::from_utf8_lossy(&buf).into_owned())
    };
    tokio::time::timeout(Duration::from_secs(10), attempt)
        .await
        .ok()
        .flatten()
        .expect("the metadata endpoint answers")
}

fn docker_logs(id: &str) -> String {
    let out = Command::new("timeout")
        .args(["30", "docker", "logs", id])
        .output()
        .expect("docker logs");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_read_their_task_from_the_metadata_endpoint() {
    if !require_docker() {
        return;
    }
    let fx = Fixture::new();
    let recorder = Arc::new(Recorder::default());
    let runtime: Arc<dyn agent::runtime::Runtime> =
        Arc::new(DockerRuntime::connect().await.expect("docker"));
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    // Loopback only, on an ephemeral port: the task runs in host network mode.
    let endpoint = agent::metadata::serve(runtime, None, None, 0, shutdown)
        .await
        .expect("metadata endpoint");
    let host_base = endpoint.host_base.clone();
    let mut engine = fx.engine(recorder.clone()).await.with_metadata(endpoint);
    let app = container(
        "app",
        "echo \"TASK=$(/bin/busybox wget -qO- $ECS_CONTAINER_METADATA_URI_V4/task)\"; exec sleep 3600",
    );
    let mut t = task(&fx.cluster, "meta1", vec![app]);
    t.network_mode = Some("host".into());
    engine.apply(t.clone()).await;
    let running = recorder
        .wait(&t.arn, "RUNNING", Duration::from_secs(60))
        .await;
    let id = running.containers.expect("containers")[0]
        .runtime_id
        .clone()
        .expect("runtime id");
    let deadline = Instant::now() + Duration::from_secs(30);
    let line = loop {
        let logs = docker_logs(&id);
        if let Some(l) = logs.lines().find(|l| l.starts_with("TASK={")) {
            break l.trim_start_matches("TASK=").to_owned();
        }
        assert!(Instant::now() < deadline, "no metadata in the logs: {logs}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let meta: serde_json::Value = serde_json::from_str(&line).expect("task metadata JSON");
    assert_eq!(meta["TaskARN"], t.arn.as_str());
    assert_eq!(meta["Cluster"], fx.cluster.as_str());
    assert_eq!(meta["Family"], "agenttest");
    assert_eq!(meta["Containers"][0]["Name"], "app");
    assert_eq!(meta["Containers"][0]["Networks"][0]["NetworkMode"], "host");

    let unknown = http_get_path(&host_base, "/v4/not-a-token/task").await;
    assert!(
        unknown.starts_with("HTTP/1.0 404") || unknown.starts_with("HTTP/1.1 404"),
        "{unknown}"
    );

    t.desired_status = "STOPPED".into();
    engine.apply(t.clone()).await;
    recorder
        .wait(&t.arn, "STOPPED", Duration::from_secs(60))
        .await;
    engine.shutdown().await;
    stop.send_replace(true);
}
