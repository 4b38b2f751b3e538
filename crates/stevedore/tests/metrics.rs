//! `GET /metrics` from a real `stevedore server` process after signed ECS calls, and a
//! clean stop of the server and its loops on SIGTERM.

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KEY_ID: &str = "AKIDMETRICSTEST00001";
const SECRET: &str = "metrics-test-secret-0000000000000000000000";

struct Server {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = dir.path().join("server.log");
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_stevedore"))
            .args(["server", "--no-lb", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env("STEVEDORE_ADMIN_ACCESS_KEY_ID", KEY_ID)
            .env("STEVEDORE_ADMIN_SECRET_ACCESS_KEY", SECRET)
            .env("STEVEDORE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("the server starts");
        let server = Server {
            child,
            port,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while get(port, "/health").is_none() {
            assert!(Instant::now() < deadline, "not healthy: {}", server.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain GET: (head, body), `None` when nothing answers.
fn get(port: u16, path: &str) -> Option<(String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200")
        .then(|| (head.to_owned(), body.to_owned()))
}

fn client(port: u16) -> agent::ApiClient {
    agent::ApiClient::new(agent::ApiConfig::new(
        format!("http://127.0.0.1:{port}"),
        "us-east-1",
        agent::Credentials::new(KEY_ID, SECRET, None),
    ))
    .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_the_calls_made_and_sigterm_stops_everything() {
    let mut server = Server::start();
    let ecs = client(server.port);
    let _: Value = ecs
        .call("CreateCluster", &json!({"clusterName": "m"}))
        .await
        .expect("cluster");
    let _: Value = ecs
        .call(
            "RegisterTaskDefinition",
            &json!({"family": "web", "containerDefinitions": [{"name": "a", "image": "busybox", "memory": 32}]}),
        )
        .await
        .expect("task definition");
    // No instance: the placement fails for want of a candidate.
    let run: Value = ecs
        .call("RunTask", &json!({"cluster": "m", "taskDefinition": "web"}))
        .await
        .expect("run task answers");
    assert_eq!(run["failures"][0]["reason"], "MISSING");
    let missing = ecs
        .call::<_, Value>(
            "DescribeTaskDefinition",
            &json!({"taskDefinition": "nope:1"}),
        )
        .await
        .expect_err("unknown task definition");
    let code = missing.aws_type().expect("an AWS error").to_owned();

    let (head, text) = get(server.port, "/metrics").expect("/metrics answers 200 unsigned");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    for want in [
        r#"stevedore_api_requests_total{service="ecs",operation="CreateCluster",error_code=""} 1"#
            .to_owned(),
        format!(
            r#"stevedore_api_requests_total{{service="ecs",operation="DescribeTaskDefinition",error_code="{code}"}} 1"#
        ),
        r#"stevedore_api_request_duration_seconds_count{service="ecs",operation="RunTask"} 1"#
            .to_owned(),
        r#"stevedore_ecs_placement_failures_total{reason="MISSING"} 1"#.to_owned(),
        r#"stevedore_ecs_placements_total 0"#.to_owned(),
        r#"stevedore_ecs_tasks{status="RUNNING"} 0"#.to_owned(),
        "stevedore_store_commit_duration_seconds_bucket".to_owned(),
        "stevedore_store_commit_batch_transactions_count".to_owned(),
        "# TYPE stevedore_api_requests_total counter".to_owned(),
    ] {
        assert!(text.contains(&want), "missing {want} in\n{text}");
    }

    // The controller's first round comes after its first one-second tick.
    let deadline = Instant::now() + Duration::from_secs(10);
    let round = r#"stevedore_loop_rounds_total{loop="ecs_service_controller"}"#;
    while !get(server.port, "/metrics").is_some_and(|(_, t)| t.contains(round)) {
        assert!(Instant::now() < deadline, "no controller round counted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let pid = server.child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = server.log();
    assert!(status.success(), "exit {status:?}: {log}");
    for line in [
        "Background loop stopped.",
        "ecs_service_controller",
        "registry_maintenance",
        "logs_retention",
        "Stevedore server stopped.",
    ] {
        assert!(log.contains(line), "missing {line} in\n{log}");
    }
}
