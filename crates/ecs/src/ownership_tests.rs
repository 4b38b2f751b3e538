//! The owner rule through the operations: an agent instance reports only for its own
//! tasks, opens only its own channel and re-registers only its own container instance.

use crate::tests::{call, fixture};
use crate::{Caller, Ecs};
use serde_json::{json, Value};
use std::sync::Arc;

fn instance(id: &str) -> Caller {
    let arn = format!("arn:aws:sts::000000000000:assumed-role/ecsInstanceRole/{id}");
    let role = "arn:aws:iam::000000000000:role/ecsInstanceRole";
    Caller::new(
        policy::Principal::assumed_role(&arn, role),
        &format!("AROAX:{id}"),
        Arc::from(Vec::new()),
    )
    .with_instance_id(id)
}

async fn call_as(
    ecs: &Ecs,
    caller: &Caller,
    op: &str,
    body: Value,
) -> Result<Value, wire::AwsError> {
    let bytes = serde_json::to_vec(&body).expect("json");
    match ecs.handle(op, &bytes, caller).await {
        Ok(out) => Ok(serde_json::from_slice(&out).expect("response is JSON")),
        Err(e) => Err(e.to_aws()),
    }
}

fn registration(arn: Option<&str>) -> Value {
    let mut reg = json!({"cluster": "own", "totalResources": [
        {"name": "CPU", "type": "INTEGER", "integerValue": 1024},
        {"name": "MEMORY", "type": "INTEGER", "integerValue": 1024}]});
    if let Some(arn) = arn {
        reg["containerInstanceArn"] = json!(arn);
    }
    reg
}

#[tokio::test]
async fn another_instance_cannot_report_for_open_the_channel_of_or_reregister_an_instance() {
    let f = fixture();
    let (a, b) = (
        instance("i-0000000000000000a"),
        instance("i-0000000000000000b"),
    );
    call(&f.ecs, "CreateCluster", json!({"clusterName": "own"}))
        .await
        .expect("created");
    let reg = call_as(&f.ecs, &a, "RegisterContainerInstance", registration(None))
        .await
        .expect("registered");
    let ci = &reg["containerInstance"];
    assert_eq!(ci["ec2InstanceId"], "i-0000000000000000a");
    let arn = ci["containerInstanceArn"].as_str().expect("arn").to_owned();
    let _session = f
        .ecs
        .open_session_as("own", &arn, &a)
        .await
        .expect("the owner connects");
    let td = json!({"family": "own", "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 32}]});
    call(&f.ecs, "RegisterTaskDefinition", td)
        .await
        .expect("registered");
    let run = call(
        &f.ecs,
        "RunTask",
        json!({"cluster": "own", "taskDefinition": "own"}),
    )
    .await
    .expect("ran");
    let task = run["tasks"][0]["taskArn"]
        .as_str()
        .expect("task")
        .to_owned();
    let report = json!({"cluster": "own", "task": task, "status": "RUNNING"});

    let err = call_as(&f.ecs, &b, "SubmitTaskStateChange", report.clone())
        .await
        .expect_err("refused");
    assert_eq!(err.code, "AccessDeniedException");
    assert!(
        err.message.contains("i-0000000000000000b"),
        "{}",
        err.message
    );
    assert!(err.message.contains("ecs:SubmitTaskStateChange"));
    assert!(err.message.contains(&task));
    assert!(err
        .message
        .contains("not placed on the caller's container instance"));
    let container =
        json!({"cluster": "own", "task": task, "containerName": "app", "status": "RUNNING"});
    let err = call_as(&f.ecs, &b, "SubmitContainerStateChange", container)
        .await
        .expect_err("refused");
    assert_eq!(err.code, "AccessDeniedException");
    let described = call(
        &f.ecs,
        "DescribeTasks",
        json!({"cluster": "own", "tasks": [task]}),
    )
    .await
    .expect("described");
    assert_ne!(
        described["tasks"][0]["lastStatus"], "RUNNING",
        "nothing changed"
    );

    let err = f
        .ecs
        .open_session_as("own", &arn, &b)
        .await
        .err()
        .expect("refused");
    assert_eq!(err.to_aws().code, "AccessDeniedException");
    let err = call_as(
        &f.ecs,
        &b,
        "RegisterContainerInstance",
        registration(Some(&arn)),
    )
    .await
    .expect_err("refused");
    assert_eq!(err.code, "AccessDeniedException");

    call_as(&f.ecs, &a, "SubmitTaskStateChange", report)
        .await
        .expect("the owner reports");
    let described = call(
        &f.ecs,
        "DescribeTasks",
        json!({"cluster": "own", "tasks": [task]}),
    )
    .await
    .expect("described");
    assert_eq!(described["tasks"][0]["lastStatus"], "RUNNING");
    call_as(
        &f.ecs,
        &a,
        "RegisterContainerInstance",
        registration(Some(&arn)),
    )
    .await
    .expect("the owner re-registers");
}
