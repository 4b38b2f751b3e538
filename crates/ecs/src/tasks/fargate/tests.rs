//! Fargate rules (pure) and Fargate launches through `Ecs::handle` over a real SQLite
//! store, with a provisioner whose capacity the test registers itself.

use super::*;
use crate::tests::call;
use crate::Ecs;
use serde_json::{json, Value};
use std::sync::Arc;

struct Provisioner;

impl FargateCapacity for Provisioner {
    fn marker(&self) -> &str {
        "s3cret"
    }
    fn sandbox(&self) -> &str {
        "runc"
    }
    fn unavailable(&self) -> Option<&str> {
        None
    }
    fn ensure(&self, _: &str) {}
}

/// A provisioner on a host without gVisor, not allowed to fall back to runc.
struct NoSandbox;

impl FargateCapacity for NoSandbox {
    fn marker(&self) -> &str {
        "s3cret"
    }
    fn sandbox(&self) -> &str {
        "runsc"
    }
    fn unavailable(&self) -> Option<&str> {
        Some("no gVisor here")
    }
    fn ensure(&self, _: &str) {
        unreachable!("no capacity is started when Fargate is unavailable");
    }
}

fn fixture() -> (Ecs, tempfile::TempDir) {
    let f = crate::tests::fixture();
    (f.ecs.with_fargate(Arc::new(Provisioner)), f._dir)
}

async fn refused(ecs: &Ecs, op: &str, body: Value) -> String {
    let e = call(ecs, op, body).await.expect_err("refused");
    e.message.clone()
}

fn register(cluster: &str, marker: Option<&str>) -> Value {
    let mut attrs = Vec::new();
    if let Some(m) = marker {
        attrs.push(json!({"name": MARKER_ATTRIBUTE, "value": m}));
    }
    json!({"cluster": cluster, "attributes": attrs, "totalResources": [
        {"name": "CPU", "type": "INTEGER", "integerValue": 8192},
        {"name": "MEMORY", "type": "INTEGER", "integerValue": 16384}]})
}

/// A cluster `c` with hidden capacity (agent connected), the FARGATE providers and a
/// Fargate task definition `web` (256 CPU, 512 MiB).
async fn cluster_with_capacity(ecs: &Ecs) {
    call(
        ecs,
        "CreateCluster",
        json!({"clusterName": "c", "capacityProviders": ["FARGATE", "FARGATE_SPOT"]}),
    )
    .await
    .expect("cluster");
    let inst = call(
        ecs,
        "RegisterContainerInstance",
        register("c", Some("s3cret")),
    )
    .await
    .expect("hidden capacity registers");
    let arn = inst["containerInstance"]["containerInstanceArn"]
        .as_str()
        .expect("arn")
        .to_owned();
    assert!(
        inst["containerInstance"]["attributes"]
            .as_array()
            .expect("attributes")
            .iter()
            .all(|a| a["name"] != MARKER_ATTRIBUTE),
        "the marker is never stored"
    );
    std::mem::forget(ecs.open_session("c", &arn).await.expect("agent connected"));
    call(
        ecs,
        "RegisterTaskDefinition",
        json!({"family": "web", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
               "cpu": "256", "memory": "512",
               "containerDefinitions": [{"name": "app", "image": "busybox", "essential": true}]}),
    )
    .await
    .expect("task definition");
}

fn network() -> Value {
    json!({"awsvpcConfiguration": {"subnets": ["subnet-1"], "assignPublicIp": "ENABLED"}})
}

fn item(p: &str, base: i32, weight: i32) -> CapacityProviderStrategyItem {
    CapacityProviderStrategyItem {
        capacity_provider: p.into(),
        base: Some(base),
        weight: Some(weight),
    }
}

#[test]
fn base_goes_first_then_weights_share_the_rest() {
    let s = [item(FARGATE, 2, 1), item(FARGATE_SPOT, 0, 3)];
    let got = split(&s, &[], 6);
    let n = |p: &str| got.iter().filter(|g| g.as_deref() == Some(p)).count();
    assert_eq!(got[0].as_deref(), Some(FARGATE));
    assert_eq!(got[1].as_deref(), Some(FARGATE));
    assert_eq!((n(FARGATE), n(FARGATE_SPOT)), (3, 3));
    // Existing tasks count toward the base and the shares.
    let more = split(&s, &[(FARGATE.into(), 2), (FARGATE_SPOT.into(), 0)], 4);
    assert_eq!(
        more.iter()
            .filter(|g| g.as_deref() == Some(FARGATE_SPOT))
            .count(),
        3
    );
    assert_eq!(split(&[], &[], 2), vec![None, None]);
}

#[test]
fn capacity_resolution_follows_aws() {
    let cluster = Cluster {
        capacity_providers: Some(vec![FARGATE.into()]),
        ..Cluster::default()
    };
    let msg = |r: Result<Capacity, EcsError>| match r {
        Err(e) => e.to_aws().message,
        Ok(c) => panic!("accepted: {c:?}"),
    };
    assert_eq!(
        resolve_capacity(Some(LaunchType::Fargate), None, None, &cluster)
            .expect("ok")
            .fargate()
            .map(|f| f.platform_version.clone()),
        Some(PLATFORM_VERSION.to_owned())
    );
    assert_eq!(
        resolve_capacity(None, None, None, &cluster).expect("ok"),
        Capacity::Ec2
    );
    assert_eq!(
        msg(resolve_capacity(
            Some(LaunchType::Ec2),
            None,
            Some("LATEST"),
            &cluster
        )),
        "The platform version must be null when specifying an EC2 launch type."
    );
    assert_eq!(
        msg(resolve_capacity(
            Some(LaunchType::Fargate),
            None,
            Some("9.9.9"),
            &cluster
        )),
        "The specified platform version does not exist."
    );
    assert!(msg(resolve_capacity(
        Some(LaunchType::Fargate),
        Some(&[item(FARGATE, 0, 1)]),
        None,
        &cluster
    ))
    .starts_with("Specifying both a launchType and capacityProviderStrategy is not supported."));
    assert!(msg(resolve_capacity(
        None,
        Some(&[item(FARGATE_SPOT, 0, 1)]),
        None,
        &cluster
    ))
    .contains("not associated with the cluster"));
    assert!(msg(resolve_capacity(
        None,
        Some(&[item(FARGATE, 1, 1), item(FARGATE, 0, 1)]),
        None,
        &cluster
    ))
    .contains("duplicate"));
    let both = Cluster {
        capacity_providers: Some(vec![FARGATE.into(), FARGATE_SPOT.into()]),
        ..Cluster::default()
    };
    assert_eq!(
        msg(resolve_capacity(
            None,
            Some(&[item(FARGATE, 1, 1), item(FARGATE_SPOT, 1, 1)]),
            None,
            &both
        )),
        "Only one capacity provider in a capacity provider strategy can have a base defined."
    );
    assert!(msg(resolve_capacity(
        None,
        Some(&[item(FARGATE, 0, 0)]),
        None,
        &both
    ))
    .contains("weight greater than zero"));
    // The cluster's default strategy applies when the request names nothing.
    let defaulted = Cluster {
        default_capacity_provider_strategy: Some(vec![item(FARGATE_SPOT, 0, 1)]),
        ..both
    };
    assert!(resolve_capacity(None, None, None, &defaulted)
        .expect("ok")
        .fargate()
        .is_some());
}

#[tokio::test]
async fn a_fargate_task_runs_on_capacity_the_user_never_sees() {
    let (ecs, _dir) = fixture();
    cluster_with_capacity(&ecs).await;
    let out = call(
        &ecs,
        "RunTask",
        json!({"cluster": "c", "taskDefinition": "web", "launchType": "FARGATE",
               "platformVersion": "LATEST", "networkConfiguration": network()}),
    )
    .await
    .expect("ran");
    let t = &out["tasks"][0];
    assert_eq!(t["launchType"], "FARGATE", "{out}");
    assert_eq!(t["platformVersion"], PLATFORM_VERSION);
    assert_eq!(t["platformFamily"], "Linux");
    assert!(t.get("containerInstanceArn").is_none(), "{t}");
    assert!(t["attributes"]
        .as_array()
        .expect("attributes")
        .iter()
        .any(|a| a["name"] == SANDBOX_ATTRIBUTE && a["value"] == "runc"));
    assert_eq!(t["attachments"][0]["type"], "ElasticNetworkInterface");
    let list = call(&ecs, "ListContainerInstances", json!({"cluster": "c"}))
        .await
        .expect("listed");
    assert_eq!(list["containerInstanceArns"], json!([]));
    let c = call(&ecs, "DescribeClusters", json!({"clusters": ["c"]}))
        .await
        .expect("described");
    assert_eq!(c["clusters"][0]["registeredContainerInstancesCount"], 0);
    assert_eq!(c["clusters"][0]["pendingTasksCount"], 1);
    // EC2 launches never land on hidden capacity.
    call(
        &ecs,
        "RegisterTaskDefinition",
        json!({"family": "ec2", "containerDefinitions": [{"name": "a", "image": "busybox", "memory": 32}]}),
    )
    .await
    .expect("registered");
    let ec2 = call(
        &ecs,
        "RunTask",
        json!({"cluster": "c", "taskDefinition": "ec2"}),
    )
    .await
    .expect("answered");
    assert_eq!(ec2["tasks"], json!([]));
    // A spot strategy names the provider; the usage report meters Fargate tasks only.
    let spot = call(
        &ecs,
        "RunTask",
        json!({"cluster": "c", "taskDefinition": "web", "count": 2, "networkConfiguration": network(),
               "capacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]}),
    )
    .await
    .expect("ran");
    assert_eq!(spot["tasks"][1]["capacityProviderName"], "FARGATE_SPOT");
    let stopped = ecs
        .interrupt_spot("c", &[], Some(1))
        .await
        .expect("interrupted");
    assert_eq!(stopped.len(), 1);
    let d = call(
        &ecs,
        "DescribeTasks",
        json!({"cluster": "c", "tasks": stopped}),
    )
    .await
    .expect("described");
    assert_eq!(d["tasks"][0]["stopCode"], "SpotInterruption");
    assert_eq!(d["tasks"][0]["desiredStatus"], "STOPPED");
    assert_eq!(ecs.fargate_usage(Some("c")).await.expect("usage").len(), 3);
}

#[tokio::test]
async fn fargate_launches_are_refused_with_aws_messages() {
    let (ecs, _dir) = fixture();
    cluster_with_capacity(&ecs).await;
    let run = |extra: Value| {
        let mut body = json!({"cluster": "c", "taskDefinition": "web", "launchType": "FARGATE",
                              "networkConfiguration": network()});
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        body
    };
    call(
        &ecs,
        "RegisterTaskDefinition",
        json!({"family": "bridge", "containerDefinitions": [{"name": "a", "image": "busybox", "memory": 32}]}),
    )
    .await
    .expect("registered");
    assert_eq!(
        refused(
            &ecs,
            "RunTask",
            run(json!({"taskDefinition": "bridge", "networkConfiguration": null}))
        )
        .await,
        "Task definition does not support launch_type FARGATE."
    );
    assert_eq!(
        refused(&ecs, "RunTask", run(json!({"networkConfiguration": null}))).await,
        "Network Configuration must be provided when networkMode 'awsvpc' is specified."
    );
    assert!(refused(
        &ecs,
        "RunTask",
        run(json!({"overrides": {"cpu": "256", "memory": "4096"}}))
    )
    .await
    .starts_with("No Fargate configuration exists for given values: 256 CPU, 4096 memory."));
    assert_eq!(
        refused(
            &ecs,
            "RunTask",
            run(json!({"placementStrategy": [{"type": "random"}]}))
        )
        .await,
        "Placement strategies are not supported with FARGATE launch type."
    );
    assert_eq!(
        refused(
            &ecs,
            "RunTask",
            run(json!({"placementConstraints": [{"type": "distinctInstance"}]}))
        )
        .await,
        "Task placement constraints are not supported with the FARGATE launch type."
    );
    assert_eq!(
        refused(
            &ecs,
            "RunTask",
            run(json!({"launchType": "EC2", "platformVersion": "1.4.0"}))
        )
        .await,
        "The platform version must be null when specifying an EC2 launch type."
    );
    // A Fargate task definition refuses an invalid size at registration, with AWS's text.
    assert!(refused(
        &ecs,
        "RegisterTaskDefinition",
        json!({"family": "big", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
               "cpu": "256", "memory": "4096",
               "containerDefinitions": [{"name": "a", "image": "busybox"}]})
    )
    .await
    .starts_with("No Fargate configuration exists for given values: 256 CPU, 4096 memory."));
    // No one but the provisioner registers hidden capacity.
    assert!(refused(
        &ecs,
        "RegisterContainerInstance",
        register("c", Some("guess"))
    )
    .await
    .contains("reserved"));
    // Services: same rules.
    assert_eq!(
        refused(
            &ecs,
            "CreateService",
            json!({"cluster": "c", "serviceName": "s", "taskDefinition": "bridge", "desiredCount": 1,
                   "launchType": "FARGATE"})
        )
        .await,
        "Task definition does not support launch_type FARGATE."
    );
    let svc = call(
        &ecs,
        "CreateService",
        json!({"cluster": "c", "serviceName": "s", "taskDefinition": "web", "desiredCount": 1,
               "launchType": "FARGATE", "networkConfiguration": network()}),
    )
    .await
    .expect("created");
    assert_eq!(svc["service"]["launchType"], "FARGATE");
    assert_eq!(svc["service"]["platformVersion"], PLATFORM_VERSION);
    assert_eq!(svc["service"]["deployments"][0]["launchType"], "FARGATE");
}

#[tokio::test]
async fn fargate_refuses_added_capabilities_but_sys_ptrace_privileged_mode_and_host_paths() {
    let (ecs, _dir) = fixture();
    cluster_with_capacity(&ecs).await;
    let fargate_def = |family: &str, container: Value, volumes: Value| {
        json!({"family": family, "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
               "cpu": "256", "memory": "512", "volumes": volumes,
               "containerDefinitions": [container]})
    };
    let caps = |add: Value| json!({"name": "app", "image": "busybox", "linuxParameters": {"capabilities": {"add": add}}});
    // Registration, when the definition requires FARGATE.
    assert_eq!(
        refused(&ecs, "RegisterTaskDefinition", fargate_def("a", caps(json!(["SYS_PTRACE", "NET_ADMIN"])), json!([]))).await,
        "Container 'app': linuxParameters.capabilities.add contains 'NET_ADMIN'; tasks launched on Fargate only support adding the 'SYS_PTRACE' kernel capability."
    );
    assert_eq!(
        refused(
            &ecs,
            "RegisterTaskDefinition",
            fargate_def(
                "a",
                json!({"name": "app", "image": "busybox", "privileged": true}),
                json!([])
            )
        )
        .await,
        "Container 'app': privileged mode is not supported on Fargate."
    );
    assert_eq!(
        refused(
            &ecs,
            "RegisterTaskDefinition",
            fargate_def(
                "a",
                json!({"name": "app", "image": "busybox"}),
                json!([{"name": "root", "host": {"sourcePath": "/"}}])
            )
        )
        .await,
        "Host volumes with a sourcePath are not supported on Fargate."
    );
    call(
        &ecs,
        "RegisterTaskDefinition",
        fargate_def("ptrace", caps(json!(["SYS_PTRACE"])), json!([])),
    )
    .await
    .expect("SYS_PTRACE is allowed");
    // RunTask, for a definition registered without requiring FARGATE that still
    // qualifies (awsvpc and a Fargate size).
    let mut ec2_only = fargate_def("admin", caps(json!(["SYS_ADMIN"])), json!([]));
    ec2_only["requiresCompatibilities"] = json!(["EC2"]);
    call(&ecs, "RegisterTaskDefinition", ec2_only)
        .await
        .expect("EC2 may add SYS_ADMIN");
    let run = |td: &str| {
        json!({"cluster": "c", "taskDefinition": td, "launchType": "FARGATE",
               "networkConfiguration": network()})
    };
    assert_eq!(
        refused(&ecs, "RunTask", run("admin")).await,
        "Container 'app': linuxParameters.capabilities.add contains 'SYS_ADMIN'; tasks launched on Fargate only support adding the 'SYS_PTRACE' kernel capability."
    );
    let mut privileged = fargate_def(
        "priv",
        json!({"name": "app", "image": "busybox", "privileged": true}),
        json!([]),
    );
    privileged["requiresCompatibilities"] = json!(["EC2"]);
    call(&ecs, "RegisterTaskDefinition", privileged)
        .await
        .expect("EC2 may be privileged");
    assert_eq!(
        refused(&ecs, "RunTask", run("priv")).await,
        "Container 'app': privileged mode is not supported on Fargate."
    );
}

#[tokio::test]
async fn without_a_sandbox_fargate_launches_are_refused_with_the_reason() {
    let f = crate::tests::fixture();
    let ecs = f.ecs.with_fargate(Arc::new(NoSandbox));
    call(&ecs, "CreateCluster", json!({"clusterName": "c"}))
        .await
        .expect("cluster");
    call(
        &ecs,
        "RegisterTaskDefinition",
        json!({"family": "web", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
               "cpu": "256", "memory": "512",
               "containerDefinitions": [{"name": "app", "image": "busybox"}]}),
    )
    .await
    .expect("task definition");
    let e = call(
        &ecs,
        "RunTask",
        json!({"cluster": "c", "taskDefinition": "web", "launchType": "FARGATE",
               "networkConfiguration": network()}),
    )
    .await
    .expect_err("refused");
    assert_eq!(e.code, "ClientException");
    assert_eq!(
        e.message,
        "Capacity is unavailable at this time: no gVisor here"
    );
}
