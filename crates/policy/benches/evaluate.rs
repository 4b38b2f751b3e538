//! Cost of one authorization decision on the request path, against compiled policies.
//!
//! Groups:
//! - `ten_statements`: a 10-statement identity policy (wildcard actions, ARN patterns,
//!   a policy variable, String/Bool/IpAddress/Date/ForAllValues conditions) with requests
//!   that are allowed by the last statement, explicitly denied, and implicitly denied (so
//!   every statement is tried);
//! - `managed`: `AmazonECS_FullAccess` (114 actions in one statement) plus a repository
//!   policy;
//! - `parse`: parsing and compiling the 10-statement document (done once per policy).

// `criterion_group!` generates an undocumented pub function.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used)] // benchmark setup may unwrap

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use policy::{evaluate, Policy, PolicyKind, PolicySet, Principal, Request};

const TEN: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "S1", "Effect": "Allow", "Action": ["ecs:Describe*", "ecs:List*"], "Resource": "*"},
    {"Sid": "S2", "Effect": "Allow", "Action": "ecr:*", "Resource": "arn:aws:ecr:us-east-1:123456789012:repository/team-*"},
    {"Sid": "S3", "Effect": "Deny", "Action": "ecs:DeleteCluster", "Resource": "*"},
    {"Sid": "S4", "Effect": "Allow", "Action": "iam:*AccessKey*", "Resource": "arn:aws:iam::*:user/${aws:username}"},
    {"Sid": "S5", "Effect": "Allow", "Action": "logs:*", "Resource": "arn:aws:logs:*:*:log-group:/ecs/*",
     "Condition": {"Bool": {"aws:SecureTransport": "true"}}},
    {"Sid": "S6", "Effect": "Deny", "NotAction": ["ecs:*", "ecr:*", "logs:*", "iam:*", "sts:*"], "Resource": "*"},
    {"Sid": "S7", "Effect": "Allow", "Action": "ecs:TagResource", "Resource": "*",
     "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}}},
    {"Sid": "S8", "Effect": "Deny", "Action": "*", "Resource": "*",
     "Condition": {"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]}}},
    {"Sid": "S9", "Effect": "Allow", "Action": "ecs:UpdateService", "Resource": "arn:aws:ecs:*:*:service/prod/*",
     "Condition": {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}},
    {"Sid": "S10", "Effect": "Allow", "Action": ["ecs:RunTask", "ecs:StartTask"],
     "Resource": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:*",
     "Condition": {"StringEquals": {"ecs:cluster": "arn:aws:ecs:us-east-1:123456789012:cluster/prod"},
                   "StringLike": {"aws:PrincipalTag/team": "web*"}}}
  ]
}"#;

fn request(action: &str, resource: &str) -> Request {
    let alice = Principal::user("arn:aws:iam::123456789012:user/alice").with_tag("team", "web");
    Request::new(alice, action, resource)
        .source_ip("10.1.2.3".parse().unwrap())
        .secure_transport(true)
        .at_epoch_millis(1_780_000_000_000)
        .with(
            "ecs:cluster",
            "arn:aws:ecs:us-east-1:123456789012:cluster/prod",
        )
}

fn ten_statements(c: &mut Criterion) {
    let p = Policy::parse(TEN, PolicyKind::Identity).unwrap();
    let set = PolicySet {
        identity: &[&p],
        ..PolicySet::default()
    };
    let allowed = request(
        "ecs:RunTask",
        "arn:aws:ecs:us-east-1:123456789012:task-definition/web:7",
    );
    let denied = request(
        "ecs:DeleteCluster",
        "arn:aws:ecs:us-east-1:123456789012:cluster/prod",
    );
    let implicit = request(
        "ecs:StopTask",
        "arn:aws:ecs:us-east-1:123456789012:task/prod/abc",
    );
    assert!(evaluate(&allowed, set).is_allowed());
    assert!(!evaluate(&denied, set).is_allowed());
    assert!(!evaluate(&implicit, set).is_allowed());
    let mut g = c.benchmark_group("ten_statements");
    g.bench_function("allowed_by_last", |b| {
        b.iter(|| evaluate(black_box(&allowed), set))
    });
    g.bench_function("explicit_deny", |b| {
        b.iter(|| evaluate(black_box(&denied), set))
    });
    g.bench_function("implicit_deny", |b| {
        b.iter(|| evaluate(black_box(&implicit), set))
    });
    g.bench_function("build_request_and_evaluate", |b| {
        b.iter(|| {
            let r = request(
                black_box("ecs:RunTask"),
                "arn:aws:ecs:us-east-1:123456789012:task-definition/web:7",
            );
            evaluate(&r, set)
        })
    });
    g.finish();
}

fn managed(c: &mut Criterion) {
    let full = policy::managed::by_name("AmazonECS_FullAccess").unwrap();
    let full = Policy::parse(full.document, PolicyKind::Identity).unwrap();
    let repo = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},
            "Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability"]}]}"#,
        PolicyKind::Resource,
    )
    .unwrap();
    let set = PolicySet {
        identity: &[&full],
        resource: &[&repo],
        session: None,
    };
    let pass = request("iam:PassRole", "arn:aws:iam::123456789012:role/task")
        .with("iam:PassedToService", "ecs-tasks.amazonaws.com");
    assert!(evaluate(&pass, set).is_allowed());
    let pull = request(
        "ecr:BatchGetImage",
        "arn:aws:ecr:us-east-1:123456789012:repository/app",
    );
    assert!(!evaluate(&pull, set).is_allowed());
    let mut g = c.benchmark_group("managed");
    g.bench_function("ecs_full_access_pass_role", |b| {
        b.iter(|| evaluate(black_box(&pass), set))
    });
    g.bench_function("ecs_full_access_plus_repo_policy_denied", |b| {
        b.iter(|| evaluate(black_box(&pull), set))
    });
    g.finish();
}

fn parse(c: &mut Criterion) {
    c.bench_function("parse/ten_statements", |b| {
        b.iter(|| Policy::parse(black_box(TEN), PolicyKind::Identity).unwrap())
    });
}

criterion_group!(benches, ten_statements, managed, parse);
criterion_main!(benches);
