//! The service controller under supervision: a panic injected into one round is logged
//! and counted, and the rounds after it still converge services.

use crate::tests::{call, fixture};
use serde_json::json;
use std::time::Duration;

/// The value of one series in the exposition (0 when absent).
fn sample(series: &str) -> f64 {
    telemetry::render()
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

const PANICS: &str = "stevedore_loop_panics_total{loop=\"ecs_service_controller\"}";
const ROUNDS: &str = "stevedore_loop_rounds_total{loop=\"ecs_service_controller\"}";

/// Polls `done` every 20 ms for up to 10 s.
async fn eventually<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..500 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn a_panicking_controller_round_is_counted_and_the_next_rounds_still_place_tasks() {
    telemetry::install();
    let f = fixture();
    let ecs = f.ecs.clone();
    let (panics, rounds) = (sample(PANICS), sample(ROUNDS));
    ecs.inject_controller_panics(1);
    let shutdown = telemetry::CancellationToken::new();
    let controller = {
        let (ecs, stop) = (ecs.clone(), shutdown.clone());
        tokio::spawn(async move { ecs.run_services(stop).await })
    };
    ecs.wake_services();
    eventually("the injected panic to be counted", || async {
        sample(PANICS) == panics + 1.0
    })
    .await;
    // A service created after the panic still gets its task placed by a later round.
    call(&ecs, "CreateCluster", json!({"clusterName": "sup"}))
        .await
        .expect("cluster");
    let reg = json!({"cluster": "sup", "totalResources": [
        {"name": "CPU", "type": "INTEGER", "integerValue": 1024},
        {"name": "MEMORY", "type": "INTEGER", "integerValue": 1024}]});
    let inst = call(&ecs, "RegisterContainerInstance", reg)
        .await
        .expect("instance");
    let arn = inst["containerInstance"]["containerInstanceArn"]
        .as_str()
        .expect("arn")
        .to_owned();
    let session = ecs.open_session("sup", &arn).await.expect("agent connects");
    call(
        &ecs,
        "RegisterTaskDefinition",
        json!({"family": "web", "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 32}]}),
    )
    .await
    .expect("task definition");
    call(
        &ecs,
        "CreateService",
        json!({"cluster": "sup", "serviceName": "s", "taskDefinition": "web", "desiredCount": 1}),
    )
    .await
    .expect("service");
    ecs.wake_services();
    eventually("the service's task to be placed", || async {
        let listed = call(
            &ecs,
            "ListTasks",
            json!({"cluster": "sup", "serviceName": "s"}),
        )
        .await
        .expect("listed");
        listed["taskArns"].as_array().is_some_and(|a| a.len() == 1)
    })
    .await;
    // The panicked round and the one that placed the task are both counted.
    eventually("the round after the panic to be counted", || async {
        sample(ROUNDS) >= rounds + 2.0
    })
    .await;
    assert_eq!(
        sample(PANICS),
        panics + 1.0,
        "only the injected round panicked"
    );
    assert!(sample("stevedore_ecs_controller_actions_total{action=\"start_task\"}") >= 1.0);
    assert!(sample("stevedore_ecs_agent_sessions_open") >= 1.0);
    drop(session);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), controller)
        .await
        .expect("the controller stops when shutdown fires")
        .expect("joined");
}
