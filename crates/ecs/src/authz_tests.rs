//! The ECS authorization table: actions, resources, condition keys and PassRole.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::tests::{call, fixture};
use serde_json::json;
use wire::Service;

const ACCOUNT: &str = "000000000000";

fn scope() -> ArnScope {
    ArnScope {
        region: "us-east-1".into(),
        account_id: ACCOUNT.into(),
    }
}

fn mapped(op: Operation, body: serde_json::Value) -> Vec<Access> {
    let fields: Fields = serde_json::from_value(body).unwrap();
    map(&scope(), op, &fields, None)
}

fn summary(a: &[Access]) -> Vec<(String, String)> {
    a.iter()
        .map(|a| (a.action(), a.resource().to_owned()))
        .collect()
}

fn text(v: Option<&ContextValue>) -> String {
    match v {
        Some(ContextValue::One(policy::Scalar::String(s))) => s.clone(),
        other => format!("{other:?}"),
    }
}

#[test]
fn describe_clusters_needs_each_cluster_arn_and_defaults_to_default() {
    let a = mapped(
        Operation::DescribeClusters,
        json!({"clusters": ["web", "arn:aws:ecs:us-east-1:000000000000:cluster/db"]}),
    );
    assert_eq!(
        summary(&a),
        [
            (
                "ecs:DescribeClusters".into(),
                "arn:aws:ecs:us-east-1:000000000000:cluster/web".into()
            ),
            (
                "ecs:DescribeClusters".into(),
                "arn:aws:ecs:us-east-1:000000000000:cluster/db".into()
            ),
        ]
    );
    let a = mapped(Operation::DescribeClusters, json!({}));
    assert_eq!(
        a[0].resource(),
        "arn:aws:ecs:us-east-1:000000000000:cluster/default"
    );
}

#[test]
fn run_task_is_on_the_task_definition_with_the_cluster_key_and_request_tags() {
    let a = mapped(
        Operation::RunTask,
        json!({"cluster": "web", "taskDefinition": "app:3", "tags": [{"key": "team", "value": "a"}]}),
    );
    assert_eq!(
        summary(&a),
        [(
            "ecs:RunTask".into(),
            "arn:aws:ecs:us-east-1:000000000000:task-definition/app:3".into()
        )]
    );
    assert_eq!(
        text(a[0].key("ecs:cluster")),
        "arn:aws:ecs:us-east-1:000000000000:cluster/web"
    );
    assert_eq!(a[0].request_tags(), [("team".to_owned(), "a".to_owned())]);
}

#[test]
fn tasks_and_services_are_named_within_their_cluster() {
    let a = mapped(
        Operation::StopTask,
        json!({"cluster": "web", "task": "abc"}),
    );
    assert_eq!(
        a[0].resource(),
        "arn:aws:ecs:us-east-1:000000000000:task/web/abc"
    );
    let a = mapped(
        Operation::CreateService,
        json!({"cluster": "web", "serviceName": "api", "taskDefinition": "app:1"}),
    );
    assert_eq!(a[0].action(), "ecs:CreateService");
    assert_eq!(
        a[0].resource(),
        "arn:aws:ecs:us-east-1:000000000000:service/web/api"
    );
    assert_eq!(
        text(a[0].key("ecs:task-definition")),
        "arn:aws:ecs:us-east-1:000000000000:task-definition/app:1"
    );
    let a = mapped(Operation::ListClusters, json!({}));
    assert_eq!(summary(&a), [("ecs:ListClusters".into(), "*".into())]);
}

#[test]
fn launches_pass_the_task_definitions_roles_and_a_services_role() {
    let launched = LaunchedDefinition {
        arn: "arn:aws:ecs:us-east-1:000000000000:task-definition/app:2".into(),
        task_role: Some("arn:aws:iam::000000000000:role/app".into()),
        execution_role: Some("arn:aws:iam::000000000000:role/exec".into()),
    };
    let fields: Fields = serde_json::from_value(json!({"taskDefinition": "app"})).unwrap();
    let a = map(&scope(), Operation::RunTask, &fields, Some(&launched));
    assert_eq!(
        summary(&a),
        [
            ("ecs:RunTask".into(), launched.arn.clone()),
            (
                "iam:PassRole".into(),
                "arn:aws:iam::000000000000:role/app".into()
            ),
            (
                "iam:PassRole".into(),
                "arn:aws:iam::000000000000:role/exec".into()
            ),
        ]
    );
    assert_eq!(
        text(a[1].key("iam:PassedToService")),
        "ecs-tasks.amazonaws.com"
    );
    let fields: Fields =
        serde_json::from_value(json!({"serviceName": "s", "role": "lb-role"})).unwrap();
    let a = map(&scope(), Operation::CreateService, &fields, None);
    assert_eq!(a[1].resource(), "arn:aws:iam::000000000000:role/lb-role");
    assert_eq!(text(a[1].key("iam:PassedToService")), "ecs.amazonaws.com");
}

#[tokio::test]
async fn run_task_resolves_a_bare_family_to_its_latest_revision_and_its_roles() {
    let f = fixture();
    call(
        &f.ecs,
        "RegisterTaskDefinition",
        json!({
            "family": "app",
            "taskRoleArn": "arn:aws:iam::000000000000:role/app",
            "containerDefinitions": [{"name": "c", "image": "busybox", "memory": 64}]
        }),
    )
    .await
    .unwrap();
    let body = serde_json::to_vec(&json!({"taskDefinition": "app"})).unwrap();
    let a = f.ecs.accesses(Operation::RunTask, &body).await.unwrap();
    assert_eq!(
        summary(&a),
        [
            (
                "ecs:RunTask".into(),
                "arn:aws:ecs:us-east-1:000000000000:task-definition/app:1".into()
            ),
            (
                "iam:PassRole".into(),
                "arn:aws:iam::000000000000:role/app".into()
            ),
        ]
    );
}

#[tokio::test]
async fn every_ecs_operation_needs_an_ecs_action() {
    let f = fixture();
    let caller = wire::Caller::root(ACCOUNT);
    for input in [&b"{}"[..], b"not json"] {
        let n = wire::conformance::every_operation_needs_access(
            &f.ecs,
            wire::Input::Json(input),
            &caller,
            "ecs",
        )
        .await;
        assert!(n >= Operation::ALL.len());
    }
    let _ = <Ecs as Service>::SPEC;
}

#[test]
fn operations_mapped_without_their_body_read_none_of_its_fields() {
    let full = json!({
        "cluster": "c", "clusterName": "c", "clusters": ["c"], "taskDefinition": "f:1",
        "taskDefinitions": ["f:1"], "task": "t", "tasks": ["t"], "service": "s",
        "serviceName": "s", "services": ["s"], "containerInstance": "i",
        "containerInstances": ["i"], "resourceArn": "arn:aws:ecs:us-east-1:000000000000:cluster/c",
        "tags": [{"key": "k", "value": "v"}], "tagKeys": ["k"], "role": "r",
        "attributes": [{"targetId": "i"}]
    });
    for op in [
        Operation::DescribeTaskDefinition,
        Operation::ListClusters,
        Operation::ListTaskDefinitions,
        Operation::ListTaskDefinitionFamilies,
    ] {
        assert!(reads_no_fields(op));
        let (empty, filled) = (mapped(op, json!({})), mapped(op, full.clone()));
        assert_eq!(summary(&empty), summary(&filled), "{op:?}");
        assert_eq!(format!("{empty:?}"), format!("{filled:?}"), "{op:?}");
    }
}

#[test]
fn task_protection_needs_each_task_arn_in_its_cluster() {
    for op in [
        Operation::UpdateTaskProtection,
        Operation::GetTaskProtection,
    ] {
        let a = mapped(op, json!({"cluster": "web", "tasks": ["t1", "t2"]}));
        let name = op.name();
        assert_eq!(
            summary(&a),
            [
                (
                    format!("ecs:{name}"),
                    "arn:aws:ecs:us-east-1:000000000000:task/web/t1".into()
                ),
                (
                    format!("ecs:{name}"),
                    "arn:aws:ecs:us-east-1:000000000000:task/web/t2".into()
                ),
            ]
        );
        assert_eq!(
            text(a[0].key("ecs:cluster")),
            "arn:aws:ecs:us-east-1:000000000000:cluster/web"
        );
    }
}
