//! Documents IAM refuses, and the `MalformedPolicyDocument` message each one gets.

use policy::{Policy, PolicyError, PolicyKind};

fn refuse(doc: &str, kind: PolicyKind) -> PolicyError {
    match Policy::parse(doc, kind) {
        Ok(_) => panic!("accepted: {doc}"),
        Err(e) => e,
    }
}

fn message(doc: &str, kind: PolicyKind) -> String {
    refuse(doc, kind).to_string()
}

const ID: PolicyKind = PolicyKind::Identity;

#[test]
fn each_malformed_document_gets_iams_message() {
    let cases: &[(&str, PolicyKind, &str)] = &[
        ("{not json", ID, "Syntax errors in policy."),
        ("[]", ID, "Syntax errors in policy."),
        (r#"{"Version":"2012-10-17"}"#, ID, "Syntax errors in policy."),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","NotAction":"s3:Get*","Resource":"*"}]}"#,
            ID,
            "Syntax errors in policy.",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEqualz":{"aws:username":"x"}}}]}"#,
            ID,
            "Syntax errors in policy.",
        ),
        (
            r#"{"Version":"2012-10-18","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
            ID,
            "The policy failed legacy parsing",
        ),
        (
            r#"{"Version":"2012-10-17","Statment":[]}"#,
            ID,
            "Unknown field Statment",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Actions":"s3:*","Resource":"*"}]}"#,
            ID,
            "Unknown field Actions",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}]}"#,
            ID,
            "Policy document should not specify a principal.",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}"#,
            PolicyKind::Trust,
            "Missing required field Principal",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:BatchGetImage"}]}"#,
            PolicyKind::Resource,
            "Missing required field Principal",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Action":"s3:*","Resource":"*"}]}"#,
            ID,
            "Missing required field Effect",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allowed","Action":"s3:*","Resource":"*"}]}"#,
            ID,
            "Invalid effect: Allowed",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Resource":"*"}]}"#,
            ID,
            "Policy statement must contain actions.",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*"}]}"#,
            ID,
            "Policy statement must contain resources.",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"my-bucket"}]}"#,
            ID,
            "Resource my-bucket must be in ARN format or \"*\".",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"RunTask","Resource":"*"}]}"#,
            ID,
            "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:Run:Task","Resource":"*"}]}"#,
            ID,
            "Actions/Condition can contain only one colon.",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"my statement","Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
            ID,
            "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole","Resource":"*"}]}"#,
            PolicyKind::Trust,
            "Has prohibited field Resource",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"ecs:RunTask"}]}"#,
            PolicyKind::Trust,
            "AssumeRole policy may only specify STS AssumeRole actions.",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"alice"},"Action":"ecr:BatchGetImage"}]}"#,
            PolicyKind::Resource,
            r#"Invalid principal in policy: "AWS":"alice""#,
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/*"},"Action":"ecr:BatchGetImage"}]}"#,
            PolicyKind::Resource,
            r#"Invalid principal in policy: "AWS":"arn:aws:iam::123456789012:user/*""#,
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Robot":"x"},"Action":"sts:AssumeRole"}]}"#,
            PolicyKind::Trust,
            r#"Invalid principal in policy: "Robot":"x""#,
        ),
    ];
    for (doc, kind, want) in cases {
        assert_eq!(message(doc, *kind), *want, "document {doc}");
        assert_eq!(refuse(doc, *kind).code(), "MalformedPolicyDocument");
    }
}

#[test]
fn every_documented_element_shape_is_accepted() {
    let docs = [
        // Statement as an object, Action and Resource as strings, no Version.
        r#"{"Statement":{"Effect":"Allow","Action":"ecs:ListClusters","Resource":"*"}}"#,
        // Id, Sid, arrays, NotAction/NotResource, every condition value type.
        r#"{"Version":"2012-10-17","Id":"p1","Statement":[
            {"Sid":"A1","Effect":"Deny","NotAction":["iam:*","sts:*"],"NotResource":["arn:aws:iam::*:user/${aws:username}"],
             "Condition":{"NumericLessThan":{"aws:MultiFactorAuthAge":3600},"Bool":{"aws:SecureTransport":false},
                          "ForAnyValue:StringLike":{"aws:TagKeys":["env*"]},"Null":{"aws:TokenIssueTime":"true"}}}]}"#,
        r#"{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
    ];
    for d in docs {
        assert!(
            Policy::parse(d, ID).is_ok(),
            "{d}: {:?}",
            Policy::parse(d, ID).err()
        );
    }
    let trust = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Principal":{"Service":["ecs-tasks.amazonaws.com","ec2.amazonaws.com"]},"Action":"sts:AssumeRole"},
        {"Effect":"Allow","Principal":{"AWS":["123456789012","arn:aws:iam::123456789012:role/admin"]},"Action":["sts:AssumeRole","sts:TagSession"]},
        {"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},"Action":"sts:AssumeRoleWithWebIdentity"}]}"#;
    assert!(Policy::parse(trust, PolicyKind::Trust).is_ok());
    let repo = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Allow pull","Effect":"Allow",
        "Principal":{"AWS":"arn:aws:iam::222233334444:root"},
        "Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability"]}]}"#;
    let parsed = Policy::parse(repo, PolicyKind::Resource).expect("repository policy parses");
    assert_eq!(parsed.statements()[0].sid(), Some("Allow pull"));
}
