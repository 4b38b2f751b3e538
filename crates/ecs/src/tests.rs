//! Service-level tests: operations through `Ecs::handle` over a real SQLite store.

use super::*;
use model::ecs::shapes::TaskStopCode;
use serde_json::{json, Value};

/// An `Ecs` over a real SQLite store in a temporary directory (gone with the fixture).
pub(crate) struct Fixture {
    pub(crate) ecs: Ecs,
    pub(crate) _dir: tempfile::TempDir,
}

pub(crate) fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store::SqliteStore::open(store::SqliteConfig::new(dir.path().join("state.db")))
        .expect("store opens");
    let scope = ArnScope {
        region: "us-east-1".into(),
        account_id: "000000000000".into(),
    };
    Fixture {
        ecs: Ecs::new(Arc::new(store), scope, "http://127.0.0.1:1/".into()),
        _dir: dir,
    }
}

fn caller() -> Caller {
    Caller::root("000000000000")
}

/// One operation through `Ecs::handle` as the root caller: the JSON answer or the AWS error.
pub(crate) async fn call(ecs: &Ecs, op: &str, body: Value) -> Result<Value, wire::AwsError> {
    let bytes = serde_json::to_vec(&body).expect("json");
    match ecs.handle(op, &bytes, &caller()).await {
        Ok(out) => Ok(serde_json::from_slice(&out).expect("response is JSON")),
        Err(e) => Err(e.to_aws()),
    }
}

/// Creates `cluster` with one container instance of `cpu` units and `memory` MiB; its ARN.
pub(crate) async fn cluster_with_instance(
    ecs: &Ecs,
    cluster: &str,
    cpu: i64,
    memory: i64,
) -> String {
    call(ecs, "CreateCluster", json!({ "clusterName": cluster }))
        .await
        .expect("created");
    let reg = json!({"cluster": cluster, "totalResources": [
        {"name": "CPU", "type": "INTEGER", "integerValue": cpu},
        {"name": "MEMORY", "type": "INTEGER", "integerValue": memory}]});
    let inst = call(ecs, "RegisterContainerInstance", reg)
        .await
        .expect("registered");
    inst["containerInstance"]["containerInstanceArn"]
        .as_str()
        .expect("arn")
        .to_owned()
}

pub(crate) fn td(family: &str) -> Value {
    json!({"family": family, "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 32}]})
}

#[tokio::test]
async fn concurrent_registrations_of_one_family_get_distinct_revisions() {
    let f = fixture();
    let mut handles = Vec::new();
    for _ in 0..16 {
        let ecs = f.ecs.clone();
        handles.push(tokio::spawn(async move {
            call(&ecs, "RegisterTaskDefinition", td("race")).await
        }));
    }
    let mut revisions = Vec::new();
    for h in handles {
        let v = h.await.expect("joined").expect("registered");
        revisions.push(v["taskDefinition"]["revision"].as_i64().expect("revision"));
    }
    revisions.sort_unstable();
    assert_eq!(revisions, (1..=16).collect::<Vec<_>>());
}

#[tokio::test]
async fn bare_family_resolves_to_latest_active_revision() {
    let f = fixture();
    for _ in 0..3 {
        call(&f.ecs, "RegisterTaskDefinition", td("web"))
            .await
            .expect("registered");
    }
    call(
        &f.ecs,
        "DeregisterTaskDefinition",
        json!({"taskDefinition": "web:3"}),
    )
    .await
    .expect("deregistered");
    let v = call(
        &f.ecs,
        "DescribeTaskDefinition",
        json!({"taskDefinition": "web"}),
    )
    .await
    .expect("described");
    assert_eq!(v["taskDefinition"]["revision"], 2);
    let v = call(
        &f.ecs,
        "DescribeTaskDefinition",
        json!({"taskDefinition": "web:3"}),
    )
    .await
    .expect("described");
    assert_eq!(v["taskDefinition"]["status"], "INACTIVE");
}

#[tokio::test]
async fn revisions_are_never_reused_after_deletion() {
    let f = fixture();
    call(&f.ecs, "RegisterTaskDefinition", td("once"))
        .await
        .expect("registered");
    call(
        &f.ecs,
        "DeregisterTaskDefinition",
        json!({"taskDefinition": "once:1"}),
    )
    .await
    .expect("deregistered");
    let v = call(
        &f.ecs,
        "DeleteTaskDefinitions",
        json!({"taskDefinitions": ["once:1"]}),
    )
    .await
    .expect("deleted");
    assert_eq!(v["taskDefinitions"][0]["status"], "DELETE_IN_PROGRESS");
    let v = call(&f.ecs, "RegisterTaskDefinition", td("once"))
        .await
        .expect("registered");
    assert_eq!(v["taskDefinition"]["revision"], 2);
}

#[tokio::test]
async fn delete_cluster_is_refused_while_instances_are_registered() {
    let f = fixture();
    let arn = cluster_with_instance(&f.ecs, "c", 2048, 4096).await;
    let err = call(&f.ecs, "DeleteCluster", json!({"cluster": "c"}))
        .await
        .expect_err("refused");
    assert_eq!(err.code, "ClusterContainsContainerInstancesException");
    call(
        &f.ecs,
        "DeregisterContainerInstance",
        json!({"cluster": "c", "containerInstance": arn}),
    )
    .await
    .expect("deregistered");
    let v = call(&f.ecs, "DeleteCluster", json!({"cluster": "c"}))
        .await
        .expect("deleted");
    assert_eq!(v["cluster"]["status"], "INACTIVE");
    let v = call(&f.ecs, "DescribeClusters", json!({"clusters": ["c"]}))
        .await
        .expect("described");
    assert_eq!(v["clusters"][0]["status"], "INACTIVE");
}

#[tokio::test]
async fn custom_attribute_limit_is_enforced_per_instance() {
    let f = fixture();
    let arn = cluster_with_instance(&f.ecs, "default", 1024, 1024).await;
    for batch in 0..2 {
        let attrs: Vec<Value> = (0..5)
            .map(|i| json!({"name": format!("a{batch}{i}"), "value": "v", "targetId": arn}))
            .collect();
        call(&f.ecs, "PutAttributes", json!({"attributes": attrs}))
            .await
            .expect("put");
    }
    let err = call(
        &f.ecs,
        "PutAttributes",
        json!({"attributes": [{"name": "one-more", "targetId": arn}]}),
    )
    .await
    .expect_err("limit");
    assert_eq!(err.code, "AttributeLimitExceededException");
    let v = call(
        &f.ecs,
        "ListAttributes",
        json!({"targetType": "container-instance", "attributeName": "a00"}),
    )
    .await
    .expect("listed");
    assert_eq!(v["attributes"][0]["targetId"], arn.as_str());
}

#[tokio::test]
async fn unknown_operation_is_reported_as_such() {
    let f = fixture();
    let err = call(&f.ecs, "LaunchRockets", json!({}))
        .await
        .expect_err("unknown");
    assert_eq!(err.code, "UnknownOperationException");
}

#[tokio::test]
async fn gpus_are_booked_by_id_refused_when_short_and_given_back_on_stop() {
    let f = fixture();
    call(&f.ecs, "CreateCluster", json!({"clusterName": "g"}))
        .await
        .expect("created");
    let reg = json!({"cluster": "g", "totalResources": [
        {"name": "CPU", "type": "INTEGER", "integerValue": 4096},
        {"name": "MEMORY", "type": "INTEGER", "integerValue": 8192},
        {"name": "GPU", "type": "STRINGSET", "stringSetValue": ["gpu-0", "gpu-1", "gpu-2"]}]});
    let inst = call(&f.ecs, "RegisterContainerInstance", reg)
        .await
        .expect("registered");
    let arn = inst["containerInstance"]["containerInstanceArn"]
        .as_str()
        .expect("arn")
        .to_owned();
    let _session = f
        .ecs
        .open_session("g", &arn)
        .await
        .expect("agent connected");
    let td = json!({"family": "gpu", "containerDefinitions": [{"name": "ml", "image": "i", "memory": 64,
        "resourceRequirements": [{"type": "GPU", "value": "2"}]}]});
    call(&f.ecs, "RegisterTaskDefinition", td)
        .await
        .expect("registered");
    let out = call(
        &f.ecs,
        "RunTask",
        json!({"cluster": "g", "taskDefinition": "gpu", "count": 2}),
    )
    .await
    .expect("ran");
    assert_eq!(out["tasks"].as_array().map(Vec::len), Some(1));
    assert_eq!(out["failures"][0]["reason"], "RESOURCE:GPU");
    let ids = out["tasks"][0]["containers"][0]["gpuIds"]
        .as_array()
        .expect("gpu ids")
        .len();
    assert_eq!(ids, 2);
    let task = out["tasks"][0]["taskArn"]
        .as_str()
        .expect("task")
        .to_owned();
    let d = call(
        &f.ecs,
        "DescribeContainerInstances",
        json!({"cluster": "g", "containerInstances": [arn.clone()]}),
    )
    .await
    .expect("described");
    let gpu = d["containerInstances"][0]["remainingResources"]
        .as_array()
        .expect("res")
        .iter()
        .find(|r| r["name"] == "GPU")
        .cloned()
        .expect("gpu");
    assert_eq!(gpu["stringSetValue"].as_array().map(Vec::len), Some(1));
    call(
        &f.ecs,
        "SubmitTaskStateChange",
        json!({"cluster": "g", "task": task, "status": "STOPPED"}),
    )
    .await
    .expect("stopped");
    let again = call(
        &f.ecs,
        "RunTask",
        json!({"cluster": "g", "taskDefinition": "gpu"}),
    )
    .await
    .expect("ran");
    assert_eq!(again["tasks"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn awsvpc_tasks_get_distinct_addresses_held_until_stopped_and_health_is_recorded() {
    let f = fixture();
    call(&f.ecs, "CreateCluster", json!({"clusterName": "v"}))
        .await
        .expect("created");
    let reg = json!({"cluster": "v", "totalResources": [
        {"name": "CPU", "type": "INTEGER", "integerValue": 4096},
        {"name": "MEMORY", "type": "INTEGER", "integerValue": 8192}],
        "attributes": [{"name": "ecs.capability.task-eni"},
                       {"name": "ecs.capability.container-health-check"},
                       {"name": "com.amazonaws.ecs.capability.docker-remote-api.1.24"}]});
    let inst = call(&f.ecs, "RegisterContainerInstance", reg)
        .await
        .expect("registered");
    let arn = inst["containerInstance"]["containerInstanceArn"]
        .as_str()
        .expect("arn")
        .to_owned();
    let mut session = f
        .ecs
        .open_session("v", &arn)
        .await
        .expect("agent connected");
    let td = json!({"family": "vpc", "networkMode": "awsvpc", "containerDefinitions": [
        {"name": "web", "image": "i", "memory": 64,
         "healthCheck": {"command": ["CMD-SHELL", "true"]}},
        {"name": "side", "image": "i", "memory": 64}]});
    call(&f.ecs, "RegisterTaskDefinition", td)
        .await
        .expect("registered");
    let out = call(
        &f.ecs,
        "RunTask",
        json!({"cluster": "v", "taskDefinition": "vpc", "count": 3,
               "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}}),
    )
    .await
    .expect("ran");
    let tasks = out["tasks"].as_array().expect("tasks").clone();
    assert_eq!(tasks.len(), 3);
    let ip_of = |t: &Value| -> String {
        t["attachments"][0]["details"]
            .as_array()
            .expect("details")
            .iter()
            .find(|d| d["name"] == "privateIPv4Address")
            .and_then(|d| d["value"].as_str())
            .expect("ip")
            .to_owned()
    };
    let ips: std::collections::BTreeSet<String> = tasks.iter().map(ip_of).collect();
    assert_eq!(ips.len(), 3, "{ips:?}");
    let prefix = tasks::awsvpc::ADDRESS_PREFIX;
    assert_eq!(f.ecs.objects.store().count(prefix).await.expect("count"), 3);

    let payload = session
        .next_payload()
        .await
        .expect("payload")
        .expect("some");
    for t in &payload.tasks {
        let eni = &t.elastic_network_interfaces[0];
        assert!(ips.contains(eni.primary_ipv4().expect("ip")));
        assert_eq!(
            eni.subnet_gateway_ipv4_address.as_deref(),
            Some("10.200.0.1/16")
        );
    }

    let first = tasks[0]["taskArn"].as_str().expect("arn").to_owned();
    let report = |status: &str| model::acs::PublishHealthRequest {
        tasks: vec![model::acs::TaskHealth {
            task_arn: first.clone(),
            containers: vec![
                model::acs::ContainerHealth {
                    container_name: "web".into(),
                    health_status: status.into(),
                    ..Default::default()
                },
                model::acs::ContainerHealth {
                    container_name: "side".into(),
                    health_status: "UNHEALTHY".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }],
        ..Default::default()
    };
    assert_eq!(
        session
            .publish_health(&report("HEALTHY"))
            .await
            .expect("ok"),
        1
    );
    assert_eq!(
        session
            .publish_health(&report("HEALTHY"))
            .await
            .expect("ok"),
        0
    );
    let d = call(
        &f.ecs,
        "DescribeTasks",
        json!({"cluster": "v", "tasks": [first.clone()]}),
    )
    .await
    .expect("described");
    let t = &d["tasks"][0];
    assert_eq!(t["healthStatus"], "HEALTHY");
    assert_eq!(t["containers"][0]["healthStatus"], "HEALTHY");
    // No health check: what the agent says of it does not count.
    assert_eq!(t["containers"][1]["healthStatus"], "UNKNOWN");
    session
        .publish_health(&report("UNHEALTHY"))
        .await
        .expect("ok");

    call(
        &f.ecs,
        "SubmitTaskStateChange",
        json!({"cluster": "v", "task": first, "status": "STOPPED"}),
    )
    .await
    .expect("stopped");
    assert_eq!(f.ecs.objects.store().count(prefix).await.expect("count"), 2);
    let d = call(
        &f.ecs,
        "DescribeTasks",
        json!({"cluster": "v", "tasks": [first]}),
    )
    .await
    .expect("described");
    assert_eq!(d["tasks"][0]["attachments"][0]["status"], "DELETED");
    assert_eq!(d["tasks"][0]["healthStatus"], "UNHEALTHY");
}

#[tokio::test]
async fn a_deactivating_task_shows_as_ecs_shows_it_and_keeps_its_reason_through_the_stop() {
    let f = fixture();
    let arn = cluster_with_instance(&f.ecs, "d", 1024, 1024).await;
    let _session = f.ecs.open_session("d", &arn).await.expect("connected");
    call(&f.ecs, "RegisterTaskDefinition", td("web"))
        .await
        .expect("registered");
    let out = call(
        &f.ecs,
        "RunTask",
        json!({"cluster": "d", "taskDefinition": "web"}),
    )
    .await
    .expect("ran");
    let task = out["tasks"][0]["taskArn"]
        .as_str()
        .expect("task")
        .to_owned();
    let report = |status: &str| json!({"cluster": "d", "task": task, "status": status});
    call(&f.ecs, "SubmitTaskStateChange", report("RUNNING"))
        .await
        .expect("running");
    let reason = "Task failed ELB health checks in (target-group arn:x)";
    f.ecs
        .request_deactivate("d", &task, TaskStopCode::ServiceSchedulerInitiated, reason)
        .await
        .expect("deactivating");
    let describe = || async {
        call(
            &f.ecs,
            "DescribeTasks",
            json!({"cluster": "d", "tasks": [task.clone()]}),
        )
        .await
        .expect("described")["tasks"][0]
            .clone()
    };
    let t = describe().await;
    assert_eq!(
        (
            &t["lastStatus"],
            &t["desiredStatus"],
            &t["stopCode"],
            &t["stoppedReason"]
        ),
        (
            &json!("DEACTIVATING"),
            &json!("STOPPED"),
            &json!("ServiceSchedulerInitiated"),
            &json!(reason)
        )
    );
    let ecs = &f.ecs;
    let listed = |desired: &'static str| async move {
        call(
            ecs,
            "ListTasks",
            json!({"cluster": "d", "desiredStatus": desired}),
        )
        .await
        .expect("listed")["taskArns"]
            .as_array()
            .map(Vec::len)
    };
    assert_eq!(listed("RUNNING").await, Some(0));
    assert_eq!(listed("STOPPED").await, Some(1));
    // A late RUNNING report does not take it back.
    call(&f.ecs, "SubmitTaskStateChange", report("RUNNING"))
        .await
        .expect("reported");
    assert_eq!(describe().await["lastStatus"], "DEACTIVATING");
    // Deactivating again is a no-op; the stop keeps the reason and moves to STOPPING.
    f.ecs
        .request_deactivate("d", &task, TaskStopCode::UserInitiated, "other")
        .await
        .expect("no-op");
    f.ecs
        .request_stop("d", &task, TaskStopCode::UserInitiated, "other")
        .await
        .expect("stop requested");
    let t = describe().await;
    assert_eq!(t["lastStatus"], "STOPPING");
    assert_eq!(t["stoppedReason"], reason);
    call(&f.ecs, "SubmitTaskStateChange", report("STOPPED"))
        .await
        .expect("stopped");
    let t = describe().await;
    assert_eq!(
        (&t["lastStatus"], &t["stopCode"], &t["stoppedReason"]),
        (
            &json!("STOPPED"),
            &json!("ServiceSchedulerInitiated"),
            &json!(reason)
        )
    );
}

#[tokio::test]
async fn every_modelled_operation_runs_a_handler_or_answers_not_implemented() {
    let f = fixture();
    let caller = wire::Caller::root("000000000000");
    // The decoder's codes answer a body that does not fit the shape.
    let answered = wire::conformance::every_operation_answers(
        &f.ecs,
        wire::Input::Json(b"{}"),
        &caller,
        &["SerializationException", "InvalidParameterException"],
    )
    .await;
    assert_eq!(answered.served, 55, "operations served");
}
