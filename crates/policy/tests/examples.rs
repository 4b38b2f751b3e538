//! Table tests drawn from AWS's documented examples: the policy evaluation logic page,
//! the condition operators page, single- vs multivalued keys, NotAction with Deny.

use std::net::IpAddr;

use policy::{
    evaluate, AccessDenied, AllowedBy, ContextValue, Decision, Missing, Policy, PolicyKind,
    PolicySet, PolicySource, Principal, Request,
};

const ACCT: &str = "123456789012";
const ALICE: &str = "arn:aws:iam::123456789012:user/alice";
const TD: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:3";

fn identity(statements: &str) -> Policy {
    let doc = format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#);
    Policy::parse(&doc, PolicyKind::Identity).unwrap_or_else(|e| panic!("{e:?}: {doc}"))
}

fn resource(statements: &str) -> Policy {
    let doc = format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#);
    Policy::parse(&doc, PolicyKind::Resource).unwrap_or_else(|e| panic!("{e:?}: {doc}"))
}

fn alice(action: &str, res: &str) -> Request {
    Request::new(Principal::user(ALICE), action, res)
}

fn decide(req: &Request, id: &[&Policy]) -> Decision {
    evaluate(
        req,
        PolicySet {
            identity: id,
            ..PolicySet::default()
        },
    )
}

fn allowed(req: &Request, id: &[&Policy]) -> bool {
    decide(req, id).is_allowed()
}

/// One condition block on an `Allow *` statement, against requests: (request, allowed?).
fn condition_table(condition: &str, cases: Vec<(Request, bool)>) {
    let p = identity(&format!(
        r#"{{"Effect":"Allow","Action":"*","Resource":"*","Condition":{condition}}}"#
    ));
    for (i, (req, want)) in cases.iter().enumerate() {
        assert_eq!(allowed(req, &[&p]), *want, "case {i} of {condition}");
    }
}

#[test]
fn identity_allow_deny_and_nothing() {
    let allow = identity(r#"{"Effect":"Allow","Action":"ecs:RunTask","Resource":"*"}"#);
    let deny = identity(r#"{"Sid":"NoRun","Effect":"Deny","Action":"ecs:RunTask","Resource":"*"}"#);
    let req = alice("ecs:RunTask", TD);
    assert!(allowed(&req, &[&allow]));
    let Decision::ExplicitDeny(by) = decide(&req, &[&allow, &deny]) else {
        panic!("deny must win");
    };
    assert_eq!(
        (by.source, by.policy, by.sid.as_deref()),
        (PolicySource::Identity, 1, Some("NoRun"))
    );
    assert_eq!(
        decide(&req, &[]),
        Decision::ImplicitDeny(Missing::IdentityAllow)
    );
}

#[test]
fn actions_ignore_case_and_resources_do_not() {
    let p = identity(
        r#"{"Effect":"Allow","Action":"ECS:run*","Resource":"arn:aws:ecs:*:*:task-definition/web:*"}"#,
    );
    assert!(allowed(&alice("ecs:RunTask", TD), &[&p]));
    assert!(!allowed(
        &alice("ecs:RunTask", &TD.replace("web", "Web")),
        &[&p]
    ));
    assert!(!allowed(&alice("ecs:StartTask", TD), &[&p]));
    // Actions without a resource type authorize on "*": ARN-only statements miss them.
    assert!(!allowed(&alice("ecs:RunTask", "*"), &[&p]));
}

#[test]
fn deny_with_not_action_denies_everything_but_the_list() {
    let p = identity(
        r#"{"Effect":"Allow","Action":"*","Resource":"*"},
           {"Effect":"Deny","NotAction":["iam:*","sts:GetCallerIdentity"],"Resource":"*",
            "Condition":{"BoolIfExists":{"aws:MultiFactorAuthPresent":"false"}}}"#,
    );
    assert!(allowed(&alice("iam:ListUsers", "*"), &[&p]));
    assert!(allowed(&alice("sts:GetCallerIdentity", "*"), &[&p]));
    assert!(!allowed(&alice("ecs:RunTask", TD), &[&p]));
    let with_mfa = alice("ecs:RunTask", TD).with("aws:MultiFactorAuthPresent", true);
    assert!(allowed(&with_mfa, &[&p]));
}

#[test]
fn allow_with_not_resource_covers_everything_else() {
    let p = identity(
        r#"{"Effect":"Allow","Action":"ecr:*","NotResource":"arn:aws:ecr:*:*:repository/secret"}"#,
    );
    assert!(allowed(
        &alice(
            "ecr:BatchGetImage",
            "arn:aws:ecr:us-east-1:123456789012:repository/app"
        ),
        &[&p]
    ));
    assert!(!allowed(
        &alice(
            "ecr:BatchGetImage",
            "arn:aws:ecr:us-east-1:123456789012:repository/secret"
        ),
        &[&p]
    ));
    assert!(allowed(&alice("ecr:GetAuthorizationToken", "*"), &[&p]));
}

#[test]
fn resource_policy_naming_the_caller_allows_without_identity_policy() {
    let repo = resource(
        r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"},"Action":"ecr:BatchGetImage"}"#,
    );
    let req = alice(
        "ecr:BatchGetImage",
        "arn:aws:ecr:us-east-1:123456789012:repository/app",
    );
    let set = PolicySet {
        resource: &[&repo],
        ..PolicySet::default()
    };
    let Decision::Allow(AllowedBy::Statement(by)) = evaluate(&req, set) else {
        panic!("resource policy must allow");
    };
    assert_eq!(by.source, PolicySource::Resource);
    let bob = Request::new(
        Principal::user("arn:aws:iam::123456789012:user/bob"),
        "ecr:BatchGetImage",
        req.resource(),
    );
    assert!(!evaluate(&bob, set).is_allowed());
}

#[test]
fn resource_policy_naming_the_account_only_delegates() {
    let repo =
        resource(r#"{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"ecr:*"}"#);
    let req = alice(
        "ecr:BatchGetImage",
        "arn:aws:ecr:us-east-1:123456789012:repository/app",
    );
    let alone = PolicySet {
        resource: &[&repo],
        ..PolicySet::default()
    };
    assert!(!evaluate(&req, alone).is_allowed());
    let id = identity(r#"{"Effect":"Allow","Action":"ecr:BatchGetImage","Resource":"*"}"#);
    let both = PolicySet {
        identity: &[&id],
        resource: &[&repo],
        session: None,
    };
    assert!(evaluate(&req, both).is_allowed());
}

#[test]
fn resource_policy_deny_beats_identity_allow_and_root() {
    let repo = resource(r#"{"Effect":"Deny","Principal":"*","Action":"ecr:DeleteRepository"}"#);
    let id = identity(r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#);
    let res = "arn:aws:ecr:us-east-1:123456789012:repository/app";
    let set = PolicySet {
        identity: &[&id],
        resource: &[&repo],
        session: None,
    };
    let d = evaluate(&alice("ecr:DeleteRepository", res), set);
    assert!(matches!(d, Decision::ExplicitDeny(ref r) if r.source == PolicySource::Resource));
    let root = Request::new(Principal::root(ACCT), "ecr:DeleteRepository", res);
    assert!(!evaluate(&root, set).is_allowed());
    let root_put = Request::new(Principal::root(ACCT), "ecr:PutImage", res);
    assert_eq!(
        evaluate(&root_put, PolicySet::default()),
        Decision::Allow(AllowedBy::Root)
    );
}

#[test]
fn trust_policy_lets_a_service_assume_the_role() {
    let trust = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        PolicyKind::Trust,
    )
    .expect("trust policy");
    let role = "arn:aws:iam::123456789012:role/app";
    let set = PolicySet {
        resource: &[&trust],
        ..PolicySet::default()
    };
    let ecs = Request::new(
        Principal::service("ecs-tasks.amazonaws.com"),
        "sts:AssumeRole",
        role,
    );
    assert!(evaluate(&ecs, set).is_allowed());
    let ec2 = Request::new(
        Principal::service("ec2.amazonaws.com"),
        "sts:AssumeRole",
        role,
    );
    assert!(!evaluate(&ec2, set).is_allowed());
}

#[test]
fn session_permissions_are_the_intersection_with_session_policies() {
    let role_arn = "arn:aws:iam::123456789012:role/app";
    let session =
        Principal::assumed_role("arn:aws:sts::123456789012:assumed-role/app/s1", role_arn);
    let role_policy = identity(r#"{"Effect":"Allow","Action":["ecs:*","ecr:*"],"Resource":"*"}"#);
    let session_policy = identity(r#"{"Effect":"Allow","Action":"ecs:List*","Resource":"*"}"#);
    let set = PolicySet {
        identity: &[&role_policy],
        resource: &[],
        session: Some(&[&session_policy]),
    };
    assert!(evaluate(&Request::new(session.clone(), "ecs:ListClusters", "*"), set).is_allowed());
    assert_eq!(
        evaluate(
            &Request::new(session.clone(), "ecr:BatchGetImage", "*"),
            set
        ),
        Decision::ImplicitDeny(Missing::SessionAllow)
    );
    // A resource policy naming the session itself is not capped; naming the role is.
    let res = "arn:aws:ecr:us-east-1:123456789012:repository/app";
    let by_role = resource(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"{role_arn}"}},"Action":"ecr:BatchGetImage"}}"#
    ));
    let by_session = resource(
        r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:sts::123456789012:assumed-role/app/s1"},"Action":"ecr:BatchGetImage"}"#,
    );
    let req = Request::new(session, "ecr:BatchGetImage", res);
    let capped = PolicySet {
        identity: &[],
        resource: &[&by_role],
        session: Some(&[&session_policy]),
    };
    assert!(!evaluate(&req, capped).is_allowed());
    let direct = PolicySet {
        identity: &[],
        resource: &[&by_session],
        session: Some(&[&session_policy]),
    };
    assert!(evaluate(&req, direct).is_allowed());
    let uncapped = PolicySet {
        identity: &[],
        resource: &[&by_role],
        session: None,
    };
    assert!(evaluate(&req, uncapped).is_allowed());
}

#[test]
fn string_operators() {
    let req = |user: &str| {
        Request::new(
            Principal::user(&format!("arn:aws:iam::123456789012:user/{user}")),
            "s3:GetObject",
            "*",
        )
    };
    // Several values for one key: any may match (OR).
    condition_table(
        r#"{"StringEquals":{"aws:username":["alice","bob"]}}"#,
        vec![
            (req("alice"), true),
            (req("bob"), true),
            (req("Alice"), false),
            (req("carol"), false),
        ],
    );
    condition_table(
        r#"{"StringEqualsIgnoreCase":{"aws:username":"ALICE"}}"#,
        vec![(req("alice"), true), (req("bob"), false)],
    );
    // Negated operator: none of the values may match; an absent key makes it true.
    condition_table(
        r#"{"StringNotEquals":{"aws:username":["alice","bob"]}}"#,
        vec![(req("alice"), false), (req("carol"), true)],
    );
    condition_table(
        r#"{"StringNotEquals":{"aws:RequestTag/env":"prod"}}"#,
        vec![
            (req("alice"), true),
            (req("alice").request_tags([("env", "prod")]), false),
        ],
    );
    condition_table(
        r#"{"StringLike":{"aws:username":["a*","?ob"]}}"#,
        vec![
            (req("alice"), true),
            (req("bob"), true),
            (req("bbob"), false),
        ],
    );
    condition_table(
        r#"{"StringNotLike":{"aws:username":"adm*"}}"#,
        vec![(req("admin"), false), (req("alice"), true)],
    );
    // Condition keys ignore case; keys in one block must all hold (AND).
    condition_table(
        r#"{"StringEquals":{"AWS:UserName":"alice","aws:PrincipalAccount":"123456789012"}}"#,
        vec![(req("alice"), true), (req("bob"), false)],
    );
    // Positive operators on an absent key are false.
    condition_table(
        r#"{"StringEquals":{"aws:RequestTag/env":"prod"}}"#,
        vec![(req("alice"), false)],
    );
}

#[test]
fn numeric_date_bool_binary_operators() {
    let base = || alice("ecs:RunTask", TD);
    condition_table(
        r#"{"NumericLessThanEquals":{"aws:MultiFactorAuthAge":"3600"}}"#,
        vec![
            (
                base().with("aws:MultiFactorAuthAge", ContextValue::number(100.0)),
                true,
            ),
            (base().with("aws:MultiFactorAuthAge", "3600"), true),
            (
                base().with("aws:MultiFactorAuthAge", ContextValue::number(3601.0)),
                false,
            ),
            (base(), false),
        ],
    );
    condition_table(
        r#"{"NumericNotEquals":{"s3:max-keys":"10"}}"#,
        vec![
            (base().with("s3:max-keys", "10"), false),
            (base().with("s3:max-keys", "11"), true),
        ],
    );
    // aws:CurrentTime against an ISO 8601 window, aws:EpochTime against epoch seconds.
    let at = |ms: i64| base().at_epoch_millis(ms);
    let cond = r#"{"DateGreaterThan":{"aws:CurrentTime":"2020-04-01T00:00:00Z"},"DateLessThan":{"aws:CurrentTime":"2020-06-30T23:59:59Z"}}"#;
    condition_table(
        cond,
        vec![
            (at(1_588_291_200_000), true),
            (at(1_577_836_800_000), false),
            (base(), false),
        ],
    );
    condition_table(
        r#"{"DateGreaterThanEquals":{"aws:EpochTime":"1585699200"}}"#,
        vec![
            (at(1_588_291_200_000), true),
            (at(1_577_836_800_000), false),
        ],
    );
    // Bool: a missing key is false, so Deny-if-not-TLS needs "false", not "true".
    condition_table(
        r#"{"Bool":{"aws:SecureTransport":"true"}}"#,
        vec![
            (base().secure_transport(true), true),
            (base().secure_transport(false), false),
            (base(), false),
        ],
    );
    condition_table(
        r#"{"BinaryEquals":{"custom:key":"QmluYXJ5VmFsdWVJbkJhc2U2NA=="}}"#,
        vec![
            (
                base().with(
                    "custom:key",
                    ContextValue::binary(b"BinaryValueInBase64".to_vec()),
                ),
                true,
            ),
            (
                base().with("custom:key", ContextValue::binary(b"other".to_vec())),
                false,
            ),
        ],
    );
}

#[test]
fn ip_address_operators() {
    let from = |ip: &str| alice("ecs:RunTask", TD).source_ip(ip.parse::<IpAddr>().expect("ip"));
    condition_table(
        r#"{"IpAddress":{"aws:SourceIp":["203.0.113.0/24","2001:DB8:1234:5678::/64"]}}"#,
        vec![
            (from("203.0.113.7"), true),
            (from("198.51.100.7"), false),
            (from("2001:db8:1234:5678::1"), true),
            (from("2001:db8:1234:5679::1"), false),
            (alice("ecs:RunTask", TD), false),
        ],
    );
    condition_table(
        r#"{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#,
        vec![
            (from("10.1.2.3"), false),
            (from("192.0.2.1"), true),
            (alice("ecs:RunTask", TD), true),
        ],
    );
}

#[test]
fn arn_operators_compare_segments() {
    let role = |arn: &str| {
        Request::new(
            Principal::assumed_role(arn, "arn:aws:iam::123456789012:role/x"),
            "ecs:RunTask",
            TD,
        )
    };
    condition_table(
        r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:sts::123456789012:assumed-role/deploy-*/*"}}"#,
        vec![
            (
                role("arn:aws:sts::123456789012:assumed-role/deploy-web/s1"),
                true,
            ),
            (
                role("arn:aws:sts::999999999999:assumed-role/deploy-web/s1"),
                false,
            ),
            (
                role("arn:aws:sts::123456789012:assumed-role/admin/s1"),
                false,
            ),
        ],
    );
    condition_table(
        r#"{"ArnNotEquals":{"aws:SourceArn":"arn:aws:ecs:us-east-1:123456789012:cluster/prod"}}"#,
        vec![
            (
                alice("ecs:RunTask", TD).with(
                    "aws:SourceArn",
                    "arn:aws:ecs:us-east-1:123456789012:cluster/prod",
                ),
                false,
            ),
            (
                alice("ecs:RunTask", TD).with(
                    "aws:SourceArn",
                    "arn:aws:ecs:us-east-1:123456789012:cluster/dev",
                ),
                true,
            ),
            (alice("ecs:RunTask", TD), true),
        ],
    );
}

#[test]
fn if_exists_holds_when_the_key_is_absent() {
    let cluster = "arn:aws:ecs:us-east-1:123456789012:cluster/prod";
    condition_table(
        &format!(r#"{{"StringEqualsIfExists":{{"ecs:cluster":"{cluster}"}}}}"#),
        vec![
            (alice("ecs:RunTask", TD), true),
            (alice("ecs:RunTask", TD).with("ecs:cluster", cluster), true),
            (
                alice("ecs:RunTask", TD).with(
                    "ecs:cluster",
                    "arn:aws:ecs:us-east-1:123456789012:cluster/dev",
                ),
                false,
            ),
        ],
    );
    condition_table(
        r#"{"NumericLessThanIfExists":{"ecs:task-cpu":"1024"}}"#,
        vec![
            (alice("ecs:RunTask", TD), true),
            (alice("ecs:RunTask", TD).with("ecs:task-cpu", "4096"), false),
        ],
    );
}

#[test]
fn set_operators_on_multivalued_keys() {
    let tags = |keys: &[&str]| {
        alice("ecs:TagResource", TD)
            .with("aws:TagKeys", ContextValue::strings(keys.iter().copied()))
    };
    let none = || alice("ecs:TagResource", TD);
    // ForAllValues: every request value in the list; true for an absent or empty set.
    condition_table(
        r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["environment","cost-center"]}}"#,
        vec![
            (tags(&["environment"]), true),
            (tags(&["environment", "cost-center"]), true),
            (tags(&["environment", "owner"]), false),
            (tags(&[]), true),
            (none(), true),
        ],
    );
    // ForAnyValue: at least one request value in the list; false for absent or empty.
    condition_table(
        r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["environment","cost-center"]}}"#,
        vec![
            (tags(&["owner", "environment"]), true),
            (tags(&["owner"]), false),
            (tags(&[]), false),
            (none(), false),
        ],
    );
    // The documented guard: ForAllValues with a Null check refuses an absent key.
    condition_table(
        r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["environment"]},"Null":{"aws:TagKeys":"false"}}"#,
        vec![(tags(&["environment"]), true), (none(), false)],
    );
    // A negated operator with ForAnyValue: some value outside the list.
    condition_table(
        r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["environment"]}}"#,
        vec![
            (tags(&["environment", "owner"]), true),
            (tags(&["environment"]), false),
        ],
    );
    // Request tags fill aws:TagKeys.
    let tagged = alice("ecs:TagResource", TD).request_tags([("environment", "prod")]);
    condition_table(
        r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["environment"]},"StringEquals":{"aws:RequestTag/environment":"prod"}}"#,
        vec![(tagged, true)],
    );
}

#[test]
fn null_tests_presence() {
    let with = alice("ecs:RunTask", TD).with("aws:TokenIssueTime", "2020-01-01T00:00:00Z");
    condition_table(
        r#"{"Null":{"aws:TokenIssueTime":"true"}}"#,
        vec![(alice("ecs:RunTask", TD), true), (with.clone(), false)],
    );
    condition_table(
        r#"{"Null":{"aws:TokenIssueTime":"false"}}"#,
        vec![(alice("ecs:RunTask", TD), false), (with, true)],
    );
}

#[test]
fn policy_variables_in_resources_and_conditions() {
    let p = identity(
        r#"{"Effect":"Allow","Action":"iam:*AccessKey*","Resource":"arn:aws:iam::*:user/${aws:username}"},
           {"Effect":"Allow","Action":"ecs:RunTask","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/team":"${aws:PrincipalTag/team}"}}}"#,
    );
    assert!(allowed(&alice("iam:CreateAccessKey", ALICE), &[&p]));
    assert!(!allowed(
        &alice("iam:CreateAccessKey", "arn:aws:iam::123456789012:user/bob"),
        &[&p]
    ));
    let tagged = |team: &str| {
        Request::new(
            Principal::user(ALICE).with_tag("team", "blue"),
            "ecs:RunTask",
            TD,
        )
        .resource_tags([("team", team)])
    };
    assert!(allowed(&tagged("blue"), &[&p]));
    assert!(!allowed(&tagged("red"), &[&p]));
    // An untagged principal: the variable has no value, so nothing matches.
    let untagged = alice("ecs:RunTask", TD).resource_tags([("team", "")]);
    assert!(!allowed(&untagged, &[&p]));
    // Version 2008-10-17 has no variables: the text is literal.
    let legacy = Policy::parse(
        r#"{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"iam:*","Resource":"arn:aws:iam::*:user/${aws:username}"}]}"#,
        PolicyKind::Identity,
    )
    .expect("legacy policy");
    assert!(!allowed(&alice("iam:CreateAccessKey", ALICE), &[&legacy]));
    assert!(allowed(
        &alice(
            "iam:CreateAccessKey",
            "arn:aws:iam::123456789012:user/${aws:username}"
        ),
        &[&legacy]
    ));
}

#[test]
fn access_denied_messages_read_as_aws_writes_them() {
    let req = alice("ecs:RunTask", TD);
    let implicit = decide(&req, &[]);
    assert_eq!(
        AccessDenied::for_decision(&req, &implicit).map(|m| m.to_string()).as_deref(),
        Some("User: arn:aws:iam::123456789012:user/alice is not authorized to perform: ecs:RunTask on resource: arn:aws:ecs:us-east-1:123456789012:task-definition/web:3 because no identity-based policy allows the ecs:RunTask action")
    );
    let deny = identity(r#"{"Effect":"Deny","Action":"ecs:*","Resource":"*"}"#);
    let explicit = decide(&req, &[&deny]);
    assert_eq!(
        AccessDenied::for_decision(&req, &explicit).map(|m| m.to_string()).as_deref(),
        Some("User: arn:aws:iam::123456789012:user/alice is not authorized to perform: ecs:RunTask on resource: arn:aws:ecs:us-east-1:123456789012:task-definition/web:3 with an explicit deny in an identity-based policy")
    );
    let repo = resource(r#"{"Effect":"Deny","Principal":"*","Action":"ecr:*"}"#);
    let pull = alice(
        "ecr:BatchGetImage",
        "arn:aws:ecr:us-east-1:123456789012:repository/app",
    );
    let d = evaluate(
        &pull,
        PolicySet {
            resource: &[&repo],
            ..PolicySet::default()
        },
    );
    let msg = AccessDenied::for_decision(&pull, &d)
        .map(|m| m.to_string())
        .unwrap_or_default();
    assert!(
        msg.ends_with("with an explicit deny in a resource-based policy"),
        "{msg}"
    );
    let allow = identity(r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#);
    assert!(AccessDenied::for_decision(&req, &decide(&req, &[&allow])).is_none());
}

#[test]
fn managed_policies_grant_what_their_names_say() {
    let get = |name: &str| {
        let m = policy::managed::by_name(name).expect("shipped");
        Policy::parse(m.document, PolicyKind::Identity)
            .expect("parses")
            .with_label(m.arn)
    };
    let exec = get("AmazonECSTaskExecutionRolePolicy");
    let repo = "arn:aws:ecr:us-east-1:123456789012:repository/app";
    assert!(allowed(&alice("ecr:BatchGetImage", repo), &[&exec]));
    assert!(!allowed(&alice("ecr:PutImage", repo), &[&exec]));
    let instance = get("AmazonEC2ContainerServiceforEC2Role");
    let cluster = "arn:aws:ecs:us-east-1:123456789012:cluster/default";
    assert!(allowed(
        &alice("ecs:SubmitTaskStateChange", cluster),
        &[&instance]
    ));
    assert!(!allowed(&alice("ecs:RunTask", TD), &[&instance]));
    assert!(allowed(
        &alice("ecs:TagResource", cluster).with("ecs:CreateAction", "CreateCluster"),
        &[&instance]
    ));
    assert!(!allowed(&alice("ecs:TagResource", cluster), &[&instance]));
    let full = get("AmazonECS_FullAccess");
    assert!(allowed(&alice("ecs:RunTask", TD), &[&full]));
    let pass = |svc: &str| {
        alice("iam:PassRole", "arn:aws:iam::123456789012:role/task")
            .with("iam:PassedToService", svc)
    };
    assert!(allowed(&pass("ecs-tasks.amazonaws.com"), &[&full]));
    assert!(!allowed(&pass("lambda.amazonaws.com"), &[&full]));
    let read = get("ReadOnlyAccess");
    assert!(allowed(&alice("ecs:DescribeServices", "*"), &[&read]));
    assert!(!allowed(&alice("ecs:RunTask", TD), &[&read]));
    let Decision::Allow(AllowedBy::Statement(by)) = decide(
        &alice("ecs:ListClusters", "*"),
        &[&get("AdministratorAccess")],
    ) else {
        panic!("admin allows");
    };
    assert_eq!(
        by.label.as_deref(),
        Some("arn:aws:iam::aws:policy/AdministratorAccess")
    );
}

/// AWS's cross-account rule: a resource of account A reached by a principal of account B
/// needs A's resource policy to name B (or the principal) and B's identity policies to
/// allow (B's root needs none); A's own principals are evaluated as within one account.
#[test]
fn across_accounts_both_the_resource_policy_and_the_callers_account_must_allow() {
    use policy::{evaluate_for, DenyReason};
    const B: &str = "222233334444";
    let res = "arn:aws:ecr:us-east-1:123456789012:repository/shared";
    let bob = || {
        Request::new(
            Principal::user("arn:aws:iam::222233334444:user/bob"),
            "ecr:BatchGetImage",
            res,
        )
    };
    let b_root = || Request::new(Principal::root(B), "ecr:BatchGetImage", res);
    let names_b = resource(
        r#"{"Effect":"Allow","Principal":{"AWS":"222233334444"},"Action":"ecr:BatchGetImage"}"#,
    );
    let names_bob = resource(
        r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222233334444:user/bob"},"Action":"ecr:*"}"#,
    );
    let bob_may = identity(r#"{"Effect":"Allow","Action":"ecr:BatchGetImage","Resource":"*"}"#);
    let ids = [&bob_may];
    let (only_b, only_bob) = ([&names_b], [&names_bob]);
    // No resource policy: even B's root is refused, and the message says which is missing.
    let d = evaluate_for(&b_root(), both(&[], &[]), ACCT);
    assert_eq!(d, Decision::ImplicitDeny(Missing::ResourceAllow));
    assert_eq!(DenyReason::of(&d), Some(DenyReason::NoResourcePolicy));
    assert!(!evaluate_for(&bob(), both(&ids, &[]), ACCT).is_allowed());
    // The account named: its root passes, its users need their own allow too.
    assert!(evaluate_for(&b_root(), both(&[], &only_b), ACCT).is_allowed());
    assert_eq!(
        evaluate_for(&bob(), both(&[], &only_b), ACCT),
        Decision::ImplicitDeny(Missing::IdentityAllow)
    );
    assert!(evaluate_for(&bob(), both(&ids, &only_b), ACCT).is_allowed());
    // Naming the user directly still needs B to allow it (unlike within one account).
    assert!(!evaluate_for(&bob(), both(&[], &only_bob), ACCT).is_allowed());
    assert!(evaluate_for(&bob(), both(&ids, &only_bob), ACCT).is_allowed());
    // Within the resource's own account nothing changes.
    let alice_req = alice("ecr:BatchGetImage", res);
    assert_eq!(
        evaluate_for(&alice_req, both(&ids, &[]), ACCT),
        evaluate(&alice_req, both(&ids, &[]))
    );
}

fn both<'a>(identity: &'a [&'a Policy], resource: &'a [&'a Policy]) -> PolicySet<'a> {
    PolicySet {
        identity,
        resource,
        session: None,
    }
}

/// A policy is "decided by the principal" exactly when nothing it reads varies between
/// two requests of one principal on one action and resource.
#[test]
fn decided_by_principal_only_when_no_request_key_is_read() {
    let cases: &[(&str, bool)] = &[
        (
            r#"{"Effect":"Allow","Action":"ecs:Describe*","Resource":"*"}"#,
            true,
        ),
        (
            r#"{"Effect":"Allow","Action":"ecs:*","Resource":"*",
               "Condition":{"StringEquals":{"aws:PrincipalAccount":"123456789012"}}}"#,
            true,
        ),
        (
            r#"{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/${aws:username}/*"}"#,
            true,
        ),
        (
            r#"{"Effect":"Allow","Action":"ecs:*","Resource":"*",
               "Condition":{"StringEquals":{"aws:PrincipalTag/team":"web"}}}"#,
            true,
        ),
        (
            r#"{"Effect":"Allow","Action":"ecs:*","Resource":"*",
               "Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}"#,
            false,
        ),
        (
            r#"{"Effect":"Deny","Action":"*","Resource":"*",
               "Condition":{"Bool":{"aws:SecureTransport":"false"}}}"#,
            false,
        ),
        (
            r#"{"Effect":"Allow","Action":"ecs:RunTask","Resource":"*",
               "Condition":{"ArnEquals":{"ecs:cluster":"arn:aws:ecs:*:*:cluster/${aws:username}"}}}"#,
            false,
        ),
        (
            r#"{"Effect":"Allow","Action":"ecs:*","Resource":"*",
               "Condition":{"StringEquals":{"aws:username":"${aws:RequestTag/owner}"}}}"#,
            false,
        ),
        (
            r#"{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/${aws:SourceIp}"}"#,
            false,
        ),
    ];
    for (statement, expected) in cases {
        assert_eq!(
            identity(statement).decided_by_principal(),
            *expected,
            "{statement}"
        );
    }
}

/// The dispatch reads a resource's tags only for policies that read them, in a condition
/// key or a variable, under `aws:` or a service's own prefix.
#[test]
fn reads_resource_tags_only_when_a_resource_tag_key_is_read() {
    let cases: &[(&str, bool)] = &[
        (
            r#"{"Effect":"Allow","Action":"ecs:*","Resource":"*"}"#,
            false,
        ),
        (
            r#"{"Effect":"Allow","Action":"ecs:*","Resource":"*",
               "Condition":{"StringEquals":{"aws:RequestTag/team":"web"}}}"#,
            false,
        ),
        (
            r#"{"Effect":"Allow","Action":"ecs:*","Resource":"*",
               "Condition":{"StringEquals":{"aws:ResourceTag/team":"web"}}}"#,
            true,
        ),
        (
            r#"{"Effect":"Allow","Action":"ecs:*","Resource":"*",
               "Condition":{"StringEquals":{"ECS:resourcetag/team":"web"}}}"#,
            true,
        ),
        (
            r#"{"Effect":"Allow","Action":"ecs:*","Resource":"*",
               "Condition":{"StringEquals":{"aws:PrincipalTag/team":"${aws:ResourceTag/team}"}}}"#,
            true,
        ),
    ];
    for (statement, expected) in cases {
        let p = identity(statement);
        assert_eq!(p.reads_resource_tags(), *expected, "{statement}");
        if *expected {
            assert!(!p.decided_by_principal(), "{statement}");
        }
    }
}

/// ECS, ECR and ELBv2 define `<prefix>:ResourceTag/KEY` beside the global key; Logs does
/// not, so a policy naming `logs:ResourceTag` finds no value.
#[test]
fn service_resource_tag_keys_carry_the_same_value() {
    let service = identity(
        r#"{"Effect":"Allow","Action":"*","Resource":"*",
            "Condition":{"StringEquals":{"ecs:ResourceTag/team":"blue"}}}"#,
    );
    let elb = identity(
        r#"{"Effect":"Allow","Action":"*","Resource":"*",
            "Condition":{"StringEquals":{"elasticloadbalancing:ResourceTag/team":"blue"}}}"#,
    );
    let logs = identity(
        r#"{"Effect":"Allow","Action":"*","Resource":"*",
            "Condition":{"StringEquals":{"logs:ResourceTag/team":"blue"}}}"#,
    );
    let tagged = |action: &str, team: &str| alice(action, TD).resource_tags([("team", team)]);
    assert!(allowed(&tagged("ecs:RunTask", "blue"), &[&service]));
    assert!(!allowed(&tagged("ecs:RunTask", "red"), &[&service]));
    assert!(allowed(
        &tagged("elasticloadbalancing:ModifyTargetGroup", "blue"),
        &[&elb]
    ));
    assert!(!allowed(
        &tagged("logs:DescribeLogStreams", "blue"),
        &[&logs]
    ));
}
