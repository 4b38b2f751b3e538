//! Health checks and draining end to end: a dead backend is found unhealthy and loses its
//! traffic; a draining or removed target finishes what it has and gets nothing new.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use model::lb::*;

#[tokio::test]
async fn health_check_marks_a_dead_backend_unhealthy_and_traffic_stops_going_there() {
    let backends = [
        HttpBackend::start("a").await,
        HttpBackend::start("b").await,
        HttpBackend::start("c").await,
    ];
    let targets: Vec<Target> = backends.iter().map(HttpBackend::target).collect();
    let config = alb(
        vec![],
        vec![forward("tg")],
        vec![group(
            "tg",
            targets.clone(),
            Algorithm::RoundRobin,
            health_check(true),
        )],
    );
    let lb = Running::start(config).await;
    for t in &targets {
        lb.wait_health("tg", &t.key, |h| *h == Health::Healthy)
            .await;
    }
    backends[2].kill();
    lb.wait_health(
        "tg",
        &targets[2].key,
        |h| matches!(h, Health::Unhealthy { reason, .. } if reason == "Target.FailedHealthChecks"),
    )
    .await;
    let seen = tally(lb.addr(LISTENER), "/", 12).await;
    assert_eq!(seen.get("c"), None, "{seen:?}");
    assert_eq!(seen.get("a"), Some(&6));
    assert_eq!(seen.get("b"), Some(&6));
}

#[tokio::test]
async fn wrong_status_is_a_response_code_mismatch_and_recovery_is_reported() {
    let a = HttpBackend::start("a").await;
    a.health_status.store(500, Ordering::SeqCst);
    let config = alb(
        vec![],
        vec![forward("tg")],
        vec![group(
            "tg",
            vec![a.target()],
            Algorithm::RoundRobin,
            health_check(true),
        )],
    );
    let lb = Running::start(config).await;
    let key = a.target().key;
    lb.wait_health("tg", &key, |h| {
        matches!(h, Health::Unhealthy { reason, description }
            if reason == "Target.ResponseCodeMismatch" && description.contains("[500]"))
    })
    .await;
    // Fails open: the only target still gets traffic while unhealthy.
    assert_eq!(get(lb.addr(LISTENER), "/", &[]).await.status, 200);
    a.health_status.store(200, Ordering::SeqCst);
    lb.wait_health("tg", &key, |h| *h == Health::Healthy).await;
}

#[tokio::test]
async fn draining_target_finishes_its_in_flight_request_while_new_ones_go_elsewhere() {
    let backends = [
        HttpBackend::start("a").await,
        HttpBackend::start("b").await,
        HttpBackend::start("c").await,
    ];
    let targets: Vec<Target> = backends.iter().map(HttpBackend::target).collect();
    let build = |targets: Vec<Target>| {
        alb(
            vec![],
            vec![forward("tg")],
            vec![group(
                "tg",
                targets,
                Algorithm::RoundRobin,
                health_check(false),
            )],
        )
    };
    let mut lb = Running::start(build(targets.clone())).await;
    let addr = lb.addr(LISTENER);
    let slow = tokio::spawn(async move { get(addr, "/slow?ms=1500", &[]).await });
    let busy = tokio::time::timeout(LIMIT, async {
        loop {
            if let Some(i) = backends
                .iter()
                .position(|b| b.active.load(Ordering::SeqCst) == 1)
            {
                return i;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("slow request reached a backend");
    let name = backends[busy].name.clone();

    let mut draining = targets.clone();
    draining[busy].draining = true;
    lb.update(build(draining)).await;
    let seen = tally(addr, "/", 10).await;
    assert_eq!(
        seen.get(&name),
        None,
        "draining {name} got new requests: {seen:?}"
    );

    // After the deregistration delay the control side drops it from the config; the
    // request in flight still completes.
    let mut removed = targets.clone();
    removed.remove(busy);
    lb.update(build(removed)).await;
    let seen = tally(addr, "/", 10).await;
    assert_eq!(seen.get(&name), None, "{seen:?}");
    let slow = slow.await.expect("slow request task");
    assert_eq!(
        (slow.status, slow.header("x-backend")),
        (200, name.as_str())
    );
}

#[tokio::test]
async fn all_targets_draining_is_503() {
    let a = HttpBackend::start("a").await;
    let mut t = a.target();
    t.draining = true;
    let config = alb(
        vec![],
        vec![forward("tg")],
        vec![group(
            "tg",
            vec![t],
            Algorithm::RoundRobin,
            health_check(false),
        )],
    );
    let lb = Running::start(config).await;
    assert_eq!(get(lb.addr(LISTENER), "/", &[]).await.status, 503);
    assert_eq!(a.hits.load(Ordering::SeqCst), 0);
}
