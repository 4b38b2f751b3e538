//! The retention sweep through `Ecs` over a real SQLite store, on a clock the tests move:
//! stopped tasks, client tokens and INACTIVE services stay until their window ends, then
//! leave with everything keyed under them and answer as AWS answers for unknown ones.

use crate::objects::{instance_task_prefix, token_key, TokenRecord};
use crate::retention::{Retention, Swept, CLIENT_TOKEN_WINDOW};
use crate::tests::{call, cluster_with_instance, fixture, td};
use serde_json::{json, Value};
use testkit::FakeClock;

/// One sweep at the fake clock's time.
async fn sweep(ecs: &crate::Ecs, keep: &Retention, clock: &FakeClock) -> Swept {
    ecs.sweep_expired(keep, clock.now()).await.expect("sweep")
}

const HOUR: f64 = 3600.0;

/// A cluster `c` with one connected instance and the `web` definition; the instance ARN
/// and its session (dropping it disconnects the agent).
async fn cluster(ecs: &crate::Ecs) -> (String, crate::Session) {
    let arn = cluster_with_instance(ecs, "c", 4096, 4096).await;
    let session = ecs.open_session("c", &arn).await.expect("agent connects");
    call(ecs, "RegisterTaskDefinition", td("web"))
        .await
        .expect("task definition");
    (arn, session)
}

async fn run(ecs: &crate::Ecs, extra: Value) -> String {
    let mut req = json!({"cluster": "c", "taskDefinition": "web"});
    if let (Some(r), Some(e)) = (req.as_object_mut(), extra.as_object()) {
        r.extend(e.clone());
    }
    let out = call(ecs, "RunTask", req).await.expect("ran");
    out["tasks"][0]["taskArn"]
        .as_str()
        .expect("task arn")
        .to_owned()
}

async fn stop(ecs: &crate::Ecs, task: &str) {
    call(
        ecs,
        "SubmitTaskStateChange",
        json!({"cluster": "c", "task": task, "status": "STOPPED"}),
    )
    .await
    .expect("stopped");
}

async fn describe(ecs: &crate::Ecs, task: &str) -> Value {
    call(
        ecs,
        "DescribeTasks",
        json!({"cluster": "c", "tasks": [task]}),
    )
    .await
    .expect("described")
}

async fn stopped_arns(ecs: &crate::Ecs) -> Vec<Value> {
    call(
        ecs,
        "ListTasks",
        json!({"cluster": "c", "desiredStatus": "STOPPED"}),
    )
    .await
    .expect("listed")["taskArns"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_stopped_task_is_visible_until_its_retention_then_missing_with_its_index() {
    let f = fixture();
    let (instance, _session) = cluster(&f.ecs).await;
    let gone = run(&f.ecs, json!({})).await;
    let running = run(&f.ecs, json!({})).await;
    stop(&f.ecs, &gone).await;
    let clock = FakeClock::at(crate::now());
    let keep = Retention::default();

    // Just short of an hour after it stopped: still there, in Describe and List.
    clock.advance(HOUR - 60.0);
    let swept = sweep(&f.ecs, &keep, &clock).await;
    assert_eq!(swept.tasks, 0);
    let d = describe(&f.ecs, &gone).await;
    assert_eq!(d["tasks"][0]["lastStatus"], "STOPPED");
    assert_eq!(stopped_arns(&f.ecs).await, vec![json!(gone)]);

    // Past the hour: gone, and DescribeTasks answers as for any unknown task.
    clock.advance(120.0);
    let swept = sweep(&f.ecs, &keep, &clock).await;
    assert_eq!(swept.tasks, 1);
    let d = describe(&f.ecs, &gone).await;
    assert_eq!(d["tasks"], json!([]));
    assert_eq!(
        d["failures"],
        json!([{"arn": gone, "reason": "MISSING"}]),
        "a swept task is an unknown task"
    );
    assert!(stopped_arns(&f.ecs).await.is_empty());
    // The running task is untouched, and its index entry is the only one left.
    let d = describe(&f.ecs, &running).await;
    assert_eq!(d["tasks"][0]["taskArn"], json!(running));
    let id = model::ecs::arn::short_name(&instance).to_owned();
    let index = f
        .ecs
        .objects
        .keys(&instance_task_prefix("c", &id))
        .await
        .expect("index");
    let running_id = running.rsplit('/').next().expect("id");
    assert_eq!(index.len(), 1);
    assert!(index[0].0.ends_with(running_id), "{index:?}");

    // A second sweep finds nothing more.
    let again = sweep(&f.ecs, &keep, &clock).await;
    assert_eq!(again, Swept::default());
}

#[tokio::test]
async fn the_retention_is_what_the_server_was_told() {
    let f = fixture();
    let (_instance, _session) = cluster(&f.ecs).await;
    let task = run(&f.ecs, json!({})).await;
    stop(&f.ecs, &task).await;
    let clock = FakeClock::at(crate::now());
    let keep = Retention::with_stopped_tasks(30.0);
    clock.advance(20.0);
    assert_eq!(sweep(&f.ecs, &keep, &clock).await.tasks, 0);
    clock.advance(11.0);
    assert_eq!(sweep(&f.ecs, &keep, &clock).await.tasks, 1);
    assert_eq!(
        describe(&f.ecs, &task).await["failures"][0]["reason"],
        "MISSING"
    );
}

#[tokio::test]
async fn many_stopped_tasks_leave_in_batches() {
    let f = fixture();
    let (_instance, _session) = cluster(&f.ecs).await;
    // More than one commit batch (128) and one read page (512) would need far more
    // tasks than a unit test should start; 300 crosses two batches.
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let out = call(
            &f.ecs,
            "RunTask",
            json!({"cluster": "c", "taskDefinition": "web", "count": 10}),
        )
        .await
        .expect("ran");
        for t in out["tasks"].as_array().expect("tasks") {
            tasks.push(t["taskArn"].as_str().expect("arn").to_owned());
        }
    }
    for t in &tasks {
        stop(&f.ecs, t).await;
    }
    let swept = f
        .ecs
        .sweep_expired(&Retention::with_stopped_tasks(1.0), crate::now() + 2.0)
        .await
        .expect("sweep");
    assert_eq!(swept.tasks, tasks.len());
    assert!(stopped_arns(&f.ecs).await.is_empty());
}

#[tokio::test]
async fn a_client_token_answers_retries_for_its_window_then_is_forgotten() {
    let f = fixture();
    let (_instance, _session) = cluster(&f.ecs).await;
    let first = run(&f.ecs, json!({"clientToken": "tok-1"})).await;
    let clock = FakeClock::at(crate::now());
    // Tasks kept longer than the token, so only the token's window is under test.
    let keep = Retention {
        stopped_tasks: 2.0 * CLIENT_TOKEN_WINDOW,
        ..Retention::default()
    };
    clock.advance(CLIENT_TOKEN_WINDOW - 60.0);
    let swept = sweep(&f.ecs, &keep, &clock).await;
    assert_eq!(swept.tokens, 0);
    assert_eq!(run(&f.ecs, json!({"clientToken": "tok-1"})).await, first);

    clock.advance(120.0);
    let swept = sweep(&f.ecs, &keep, &clock).await;
    assert_eq!(swept.tokens, 1);
    let key = token_key("c", "tok-1");
    assert!(f
        .ecs
        .objects
        .get::<TokenRecord>(&key)
        .await
        .expect("read")
        .is_none());
    // The token is free again: the same request starts a new task.
    assert_ne!(run(&f.ecs, json!({"clientToken": "tok-1"})).await, first);
}

#[tokio::test]
async fn a_token_recorded_without_a_time_is_stamped_then_expires_a_window_later() {
    let f = fixture();
    let (_instance, _session) = cluster(&f.ecs).await;
    let key = token_key("c", "old");
    let legacy = TokenRecord {
        request_hash: "h".into(),
        task_arns: Vec::new(),
        created_at: None,
    };
    let txn = store::Txn::new().put(key.clone(), crate::objects::encode(&legacy).expect("json"));
    assert!(f.ecs.objects.commit(txn).await.expect("written"));
    let clock = FakeClock::at(crate::now());
    let keep = Retention::default();
    let swept = sweep(&f.ecs, &keep, &clock).await;
    assert_eq!((swept.tokens, swept.stamped), (0, 1));
    let (rec, _) = f
        .ecs
        .objects
        .get::<TokenRecord>(&key)
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(rec.created_at, Some(clock.now()));
    clock.advance(CLIENT_TOKEN_WINDOW);
    let swept = sweep(&f.ecs, &keep, &clock).await;
    assert_eq!(swept.tokens, 1);
}

#[tokio::test]
async fn an_inactive_service_stays_describable_for_the_window_then_is_missing() {
    let f = fixture();
    let (_instance, _session) = cluster(&f.ecs).await;
    let create =
        json!({"cluster": "c", "serviceName": "s", "taskDefinition": "web", "desiredCount": 0});
    call(&f.ecs, "CreateService", create.clone())
        .await
        .expect("service");
    call(
        &f.ecs,
        "DeleteService",
        json!({"cluster": "c", "service": "s"}),
    )
    .await
    .expect("deleted");
    // A controller round with nothing left to drain makes it INACTIVE.
    f.ecs.reconcile_all().await.expect("round");
    let describe = || async {
        call(
            &f.ecs,
            "DescribeServices",
            json!({"cluster": "c", "services": ["s"]}),
        )
        .await
        .expect("described")
    };
    assert_eq!(describe().await["services"][0]["status"], "INACTIVE");
    let clock = FakeClock::at(crate::now());
    let keep = Retention::default();
    clock.advance(HOUR - 60.0);
    let swept = sweep(&f.ecs, &keep, &clock).await;
    assert_eq!(swept.services, 0);
    assert_eq!(describe().await["services"][0]["status"], "INACTIVE");

    clock.advance(120.0);
    let swept = sweep(&f.ecs, &keep, &clock).await;
    assert_eq!(swept.services, 1);
    let d = describe().await;
    assert_eq!(d["services"], json!([]));
    assert_eq!(d["failures"][0]["reason"], "MISSING");
    // The name can be used again.
    let again = call(&f.ecs, "CreateService", create)
        .await
        .expect("recreated");
    assert_eq!(again["service"]["status"], "ACTIVE");
}

#[tokio::test]
async fn a_swept_service_takes_its_deployment_history_with_it() {
    let f = fixture();
    let (_instance, _session) = cluster(&f.ecs).await;
    let create =
        json!({"cluster": "c", "serviceName": "h", "taskDefinition": "web", "desiredCount": 0});
    let created = call(&f.ecs, "CreateService", create.clone())
        .await
        .expect("service");
    let deployment = created["service"]["currentServiceDeployment"]
        .as_str()
        .expect("a service deployment")
        .to_owned();
    let describe_deployment = || async {
        call(
            &f.ecs,
            "DescribeServiceDeployments",
            json!({"serviceDeploymentArns": [deployment.clone()]}),
        )
        .await
        .expect("described")
    };
    call(
        &f.ecs,
        "DeleteService",
        json!({"cluster": "c", "service": "h"}),
    )
    .await
    .expect("deleted");
    f.ecs.reconcile_all().await.expect("round");
    // Still there while the INACTIVE service is.
    assert_eq!(
        describe_deployment().await["serviceDeployments"][0]["serviceDeploymentArn"],
        deployment.as_str()
    );
    let clock = FakeClock::at(crate::now());
    clock.advance(HOUR + 60.0);
    let swept = sweep(&f.ecs, &Retention::default(), &clock).await;
    assert_eq!(swept.services, 1);
    let d = describe_deployment().await;
    assert_eq!(d["serviceDeployments"], json!([]));
    assert_eq!(d["failures"][0]["reason"], "MISSING");
    // A service recreated under the name starts a history of its own.
    call(&f.ecs, "CreateService", create)
        .await
        .expect("recreated");
    let listed = call(
        &f.ecs,
        "ListServiceDeployments",
        json!({"cluster": "c", "service": "h"}),
    )
    .await
    .expect("listed");
    let listed = listed["serviceDeployments"].as_array().expect("a list");
    assert_eq!(listed.len(), 1);
    assert_ne!(listed[0]["serviceDeploymentArn"], deployment.as_str());
}

#[tokio::test]
async fn active_and_draining_services_never_expire() {
    let f = fixture();
    let (_instance, _session) = cluster(&f.ecs).await;
    call(
        &f.ecs,
        "CreateService",
        json!({"cluster": "c", "serviceName": "s", "taskDefinition": "web", "desiredCount": 0}),
    )
    .await
    .expect("service");
    call(
        &f.ecs,
        "CreateService",
        json!({"cluster": "c", "serviceName": "d", "taskDefinition": "web", "desiredCount": 0}),
    )
    .await
    .expect("service");
    // Deleted but not yet drained by a controller round: DRAINING.
    call(
        &f.ecs,
        "DeleteService",
        json!({"cluster": "c", "service": "d"}),
    )
    .await
    .expect("deleted");
    let swept = f
        .ecs
        .sweep_expired(
            &Retention::with_stopped_tasks(1.0),
            crate::now() + 10.0 * HOUR,
        )
        .await
        .expect("sweep");
    assert_eq!(swept, Swept::default());
    let d = call(
        &f.ecs,
        "DescribeServices",
        json!({"cluster": "c", "services": ["s", "d"]}),
    )
    .await
    .expect("described");
    let statuses: Vec<&Value> = d["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|s| &s["status"])
        .collect();
    assert_eq!(statuses, [&json!("ACTIVE"), &json!("DRAINING")]);
}
