//! The laws of evaluation, over generated policies and requests: an explicit deny
//! dominates; adding an Allow never removes access; statement order and the way
//! statements are split into policies do not matter; no statements deny.

use proptest::prelude::*;
use serde_json::{json, Value};

use policy::{evaluate, Decision, Policy, PolicyKind, PolicySet, Principal, Request};

const ACTIONS: &[&str] = &[
    "ecs:RunTask",
    "ecs:Describe*",
    "ecs:*",
    "ECS:runtask",
    "ecr:BatchGetImage",
    "ecr:Get*",
    "logs:PutLogEvents",
    "*",
];
const RESOURCES: &[&str] = &[
    "*",
    "arn:aws:ecs:us-east-1:123456789012:cluster/*",
    "arn:aws:ecs:*:*:task-definition/web:*",
    "arn:aws:ecr:us-east-1:123456789012:repository/app",
    "arn:aws:iam::*:user/${aws:username}",
];
const CONDITIONS: &[&str] = &[
    r#"{"StringEquals":{"aws:username":"alice"}}"#,
    r#"{"Bool":{"aws:SecureTransport":"true"}}"#,
    r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#,
    r#"{"StringLike":{"aws:PrincipalTag/team":"b*"}}"#,
    r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["env"]}}"#,
    r#"{"StringNotEqualsIfExists":{"ecs:cluster":"prod"}}"#,
];
const REQ_ACTIONS: &[&str] = &[
    "ecs:RunTask",
    "ecs:DescribeClusters",
    "ecr:BatchGetImage",
    "ecr:GetAuthorizationToken",
    "logs:PutLogEvents",
    "iam:CreateUser",
];
const REQ_RESOURCES: &[&str] = &[
    "*",
    "arn:aws:ecs:us-east-1:123456789012:cluster/prod",
    "arn:aws:ecs:us-east-1:123456789012:task-definition/web:3",
    "arn:aws:ecr:us-east-1:123456789012:repository/app",
    "arn:aws:iam::123456789012:user/alice",
];

fn statement(effect: &'static str) -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(prop::sample::select(ACTIONS), 1..3),
        any::<bool>(),
        prop::collection::vec(prop::sample::select(RESOURCES), 1..3),
        any::<bool>(),
        prop::option::of(prop::sample::select(CONDITIONS)),
    )
        .prop_map(
            move |(actions, not_action, resources, not_resource, cond)| {
                let mut s = json!({ "Effect": effect });
                s[if not_action { "NotAction" } else { "Action" }] = json!(actions);
                s[if not_resource {
                    "NotResource"
                } else {
                    "Resource"
                }] = json!(resources);
                if let Some(c) = cond {
                    s["Condition"] = serde_json::from_str(c).expect("condition JSON");
                }
                s
            },
        )
}

fn any_statement() -> impl Strategy<Value = Value> {
    prop_oneof![statement("Allow"), statement("Deny")]
}

fn request() -> impl Strategy<Value = Request> {
    (
        prop::sample::select(&["alice", "bob"][..]),
        prop::sample::select(REQ_ACTIONS),
        prop::sample::select(REQ_RESOURCES),
        prop::option::of(any::<bool>()),
        prop::sample::select(&["10.1.2.3", "192.0.2.1"][..]),
        prop::option::of(prop::sample::select(&["blue", "red"][..])),
        prop::option::of(prop::collection::vec(
            prop::sample::select(&["env", "owner"][..]),
            0..3,
        )),
    )
        .prop_map(|(user, action, res, tls, ip, team, tag_keys)| {
            let mut p = Principal::user(&format!("arn:aws:iam::123456789012:user/{user}"));
            if let Some(t) = team {
                p = p.with_tag("team", t);
            }
            let mut r = Request::new(p, action, res).source_ip(ip.parse().expect("ip"));
            if let Some(tls) = tls {
                r = r.secure_transport(tls);
            }
            if let Some(keys) = tag_keys {
                r = r.with("aws:TagKeys", policy::ContextValue::strings(keys));
            }
            r
        })
}

fn policy(statements: &[Value]) -> Policy {
    let doc = json!({ "Version": "2012-10-17", "Statement": statements }).to_string();
    Policy::parse(&doc, PolicyKind::Identity).expect("generated policy parses")
}

fn decide(req: &Request, policies: &[&Policy]) -> Decision {
    evaluate(
        req,
        PolicySet {
            identity: policies,
            ..PolicySet::default()
        },
    )
}

/// The decision without the statement that made it.
fn kind(d: &Decision) -> &'static str {
    match d {
        Decision::Allow(_) => "allow",
        Decision::ExplicitDeny(_) => "explicit deny",
        Decision::ImplicitDeny(_) => "implicit deny",
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn an_explicit_deny_dominates(
        stmts in prop::collection::vec(any_statement(), 0..6),
        deny in statement("Deny"),
        req in request(),
    ) {
        let alone = policy(std::slice::from_ref(&deny));
        if matches!(decide(&req, &[&alone]), Decision::ExplicitDeny(_)) {
            let mut all = stmts.clone();
            all.push(deny);
            prop_assert!(matches!(decide(&req, &[&policy(&all)]), Decision::ExplicitDeny(_)));
            prop_assert!(matches!(decide(&req, &[&policy(&stmts), &alone]), Decision::ExplicitDeny(_)));
        }
    }

    #[test]
    fn adding_an_allow_never_removes_access(
        stmts in prop::collection::vec(any_statement(), 0..6),
        allow in statement("Allow"),
        req in request(),
    ) {
        let before = decide(&req, &[&policy(&stmts)]);
        let mut all = stmts.clone();
        all.push(allow);
        let after = decide(&req, &[&policy(&all)]);
        if before.is_allowed() {
            prop_assert!(after.is_allowed());
        }
        if matches!(before, Decision::ExplicitDeny(_)) {
            prop_assert!(matches!(after, Decision::ExplicitDeny(_)));
        }
    }

    #[test]
    fn statement_order_and_policy_split_do_not_matter(
        stmts in prop::collection::vec(any_statement(), 0..7),
        seed in any::<u64>(),
        split in 0usize..7,
        req in request(),
    ) {
        let want = kind(&decide(&req, &[&policy(&stmts)]));
        let mut shuffled = stmts.clone();
        // Deterministic Fisher-Yates from the seed, so failures reproduce.
        let mut s = seed;
        for i in (1..shuffled.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (s >> 33) as usize % (i + 1));
        }
        prop_assert_eq!(kind(&decide(&req, &[&policy(&shuffled)])), want);
        let at = split.min(stmts.len());
        let (a, b) = stmts.split_at(at);
        prop_assert_eq!(kind(&decide(&req, &[&policy(b), &policy(a)])), want);
    }

    #[test]
    fn no_statements_deny(req in request()) {
        prop_assert!(matches!(decide(&req, &[&policy(&[])]), Decision::ImplicitDeny(_)));
        prop_assert!(matches!(decide(&req, &[]), Decision::ImplicitDeny(_)));
    }

    #[test]
    fn a_resource_policy_allow_never_removes_access(
        stmts in prop::collection::vec(any_statement(), 0..5),
        req in request(),
    ) {
        let id = policy(&stmts);
        let repo = Policy::parse(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/bob"},"Action":"*"}]}"#,
            PolicyKind::Resource,
        ).expect("repository policy");
        let before = decide(&req, &[&id]);
        let after = evaluate(&req, PolicySet { identity: &[&id], resource: &[&repo], session: None });
        if before.is_allowed() {
            prop_assert!(after.is_allowed());
        }
    }
}
