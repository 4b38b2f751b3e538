//! The built-in pause image against the real Docker daemon: imported from the program
//! the agent carries, it runs (and keeps running) with no other file in the image, and
//! `docker rm -f` ends it. Skipped without Docker, except under `CI=true`.

use std::process::Command;
use std::time::Duration;

use agent::runtime::{DockerRuntime, NetworkSpec, Runtime};

fn docker_ok() -> bool {
    Command::new("timeout")
        .args(["20", "docker", "info"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn require_docker() -> bool {
    if docker_ok() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "Docker is required under CI=true but `docker info` fails"
    );
    eprintln!("skipping: Docker is not available");
    false
}

/// Removes the container when dropped, even on failure.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_pause_image_runs_until_removed() {
    if !require_docker() {
        return;
    }
    let rt = DockerRuntime::connect().await.expect("docker");
    let tag = format!("stevedore/pause-test:{}", std::process::id());
    let program = agent::pause::compute_program(std::env::consts::ARCH).expect("this arch");
    let tar = agent::pause::compute_rootfs_tar(agent::pause::PROGRAM_PATH, &program);
    rt.import_image(&tag, tar, &["CMD [\"/pause\"]"])
        .await
        .expect("import");
    assert!(rt.has_image(&tag).await.expect("inspect"));

    let name = format!("stevedore-pause-test-{}", std::process::id());
    let _cleanup = Cleanup(name.clone());
    let id = rt
        .create(
            &name,
            serde_json::json!({"Image": tag, "HostConfig": {"NetworkMode": "none"}}),
        )
        .await
        .expect("create");
    rt.start(&id).await.expect("start");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let info = rt.inspect(&id).await.expect("inspect");
    assert!(info.running, "the pause program exited: {info:?}");

    let out = Command::new("docker")
        .args(["rm", "-f", &id])
        .output()
        .expect("docker rm");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(rt.inspect(&id).await.is_err(), "removed");
    let _ = Command::new("docker").args(["rmi", &tag]).output();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensuring_the_network_twice_at_once_is_idempotent() {
    if !require_docker() {
        return;
    }
    let rt = DockerRuntime::connect().await.expect("docker");
    let name = format!("stevedore-net-test-{}", std::process::id());
    let spec = NetworkSpec {
        name: name.clone(),
        subnet: "10.201.0.0/24".into(),
        gateway: "10.201.0.1".into(),
        labels: [("io.stevedore.network".to_owned(), "test".to_owned())].into(),
    };
    let (a, b) = tokio::join!(rt.ensure_network(&spec), rt.ensure_network(&spec));
    let _ = Command::new("docker")
        .args(["network", "rm", &name])
        .output();
    a.expect("first");
    b.expect("second");
}
