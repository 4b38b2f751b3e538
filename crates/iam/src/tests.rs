//! Store-backed tests of IAM and STS: entities through the operations as the dispatch
//! runs them, the directory's key lookup, session tokens (expiry, deleted roles, policy
//! changes) and the server key shared through the store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::{Iam, IamOperation, Sts, StsOperation};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use testkit::TempStore;
use wire::query::parse_form;
use wire::{Call, Caller, Input, KeyError, Service, ServiceError};

pub(crate) const ACCOUNT: &str = "123456789012";
pub(crate) const NOW: i64 = 1_800_000_000;

pub(crate) struct Fixture {
    pub(crate) iam: Iam,
    sts: Sts,
    pub(crate) clock: Arc<AtomicI64>,
    _store: TempStore,
}

pub(crate) async fn fixture() -> Fixture {
    let store = TempStore::new().unwrap();
    let clock = Arc::new(AtomicI64::new(NOW));
    let c = clock.clone();
    let iam = Iam::open_with_clock(
        store.store(),
        ACCOUNT,
        Arc::new(move || c.load(Ordering::SeqCst)),
    )
    .await
    .unwrap();
    Fixture {
        sts: iam.sts(),
        iam,
        clock,
        _store: store,
    }
}

fn form(params: &[(&str, &str)]) -> Vec<u8> {
    let mut s = String::new();
    for (k, v) in params {
        if !s.is_empty() {
            s.push('&');
        }
        let v: String =
            percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        s.push_str(&format!("{k}={v}"));
    }
    s.into_bytes()
}

pub(crate) async fn iam_call(
    f: &Fixture,
    caller: &Caller,
    action: &str,
    params: &[(&str, &str)],
) -> Result<String, String> {
    let op = IamOperation::from_name(action).unwrap();
    let params = parse_form(&form(params)).unwrap();
    let call = Call {
        input: Input::Query(&params),
        caller,
        request_id: "r",
    };
    match f.iam.handle(op, call).await {
        Ok(b) => Ok(String::from_utf8(b).unwrap()),
        Err(ServiceError::Aws(e)) => Err(e.code),
        Err(ServiceError::NotImplemented) => Err("NotImplemented".into()),
    }
}

async fn sts_call(
    f: &Fixture,
    caller: &Caller,
    action: &str,
    params: &[(&str, &str)],
) -> Result<String, String> {
    let op = StsOperation::from_name(action).unwrap();
    let params = parse_form(&form(params)).unwrap();
    let call = Call {
        input: Input::Query(&params),
        caller,
        request_id: "r",
    };
    match f.sts.handle(op, call).await {
        Ok(b) => Ok(String::from_utf8(b).unwrap()),
        Err(ServiceError::Aws(e)) => Err(e.code),
        Err(ServiceError::NotImplemented) => Err("NotImplemented".into()),
    }
}

fn between<'a>(text: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start = text.find(&open).expect(tag) + open.len();
    let end = text[start..].find(&format!("</{tag}>")).expect(tag) + start;
    &text[start..end]
}

pub(crate) fn root() -> Caller {
    Caller::root(ACCOUNT)
}

const TRUST_ACCOUNT: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"sts:AssumeRole"}]}"#;
pub(crate) const TRUST_TASKS: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const ECS_READ: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:List*","Resource":"*"}]}"#;

/// Assumes `role` as root; returns (key id, secret, token).
async fn assume(f: &Fixture, role: &str) -> (String, String, String) {
    let arn = format!("arn:aws:iam::{ACCOUNT}:role/{role}");
    let out = sts_call(
        f,
        &root(),
        "AssumeRole",
        &[("RoleArn", &arn), ("RoleSessionName", "s1")],
    )
    .await
    .unwrap();
    (
        between(&out, "AccessKeyId").to_owned(),
        between(&out, "SecretAccessKey").to_owned(),
        between(&out, "SessionToken").to_owned(),
    )
}

#[tokio::test]
async fn a_users_access_key_is_looked_up_with_its_secret_and_policies() {
    let f = fixture().await;
    iam_call(&f, &root(), "CreateUser", &[("UserName", "alice")])
        .await
        .unwrap();
    iam_call(
        &f,
        &root(),
        "PutUserPolicy",
        &[
            ("UserName", "alice"),
            ("PolicyName", "p"),
            ("PolicyDocument", ECS_READ),
        ],
    )
    .await
    .unwrap();
    iam_call(
        &f,
        &root(),
        "AttachUserPolicy",
        &[
            ("UserName", "alice"),
            ("PolicyArn", "arn:aws:iam::aws:policy/ReadOnlyAccess"),
        ],
    )
    .await
    .unwrap();
    let out = iam_call(&f, &root(), "CreateAccessKey", &[("UserName", "alice")])
        .await
        .unwrap();
    let (id, secret) = (
        between(&out, "AccessKeyId"),
        between(&out, "SecretAccessKey"),
    );
    let identity = f.iam.directory().lookup(id, None).unwrap();
    assert_eq!(identity.secret_access_key, secret);
    assert_eq!(
        identity.caller.principal_arn(),
        format!("arn:aws:iam::{ACCOUNT}:user/alice")
    );
    assert!(identity.caller.user_id().starts_with("AIDA"));
    assert!(!identity.caller.is_root());
    assert_eq!(identity.caller.policies().len(), 2);
    iam_call(
        &f,
        &root(),
        "UpdateAccessKey",
        &[
            ("UserName", "alice"),
            ("AccessKeyId", id),
            ("Status", "Inactive"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        f.iam.directory().lookup(id, None).err(),
        Some(KeyError::Unknown)
    );
    assert_eq!(
        f.iam.directory().lookup("AKIANOSUCHKEY0000000", None).err(),
        Some(KeyError::Unknown)
    );
}

#[tokio::test]
async fn the_admin_key_is_the_account_root() {
    let f = fixture().await;
    let keys = f.iam.keys("AKIAADMIN".into(), "secret".into());
    let identity = keys("AKIAADMIN", None).unwrap();
    assert!(identity.caller.is_root());
    assert_eq!(
        identity.caller.principal_arn(),
        format!("arn:aws:iam::{ACCOUNT}:root")
    );
    assert_eq!(keys("AKIAOTHER", None).err(), Some(KeyError::Unknown));
}

#[tokio::test]
async fn a_session_token_acts_as_the_role_until_it_expires() {
    let f = fixture().await;
    iam_call(
        &f,
        &root(),
        "CreateRole",
        &[
            ("RoleName", "app"),
            ("AssumeRolePolicyDocument", TRUST_ACCOUNT),
        ],
    )
    .await
    .unwrap();
    let (id, secret, token) = assume(&f, "app").await;
    assert!(id.starts_with("ASIA"));
    let identity = f.iam.directory().lookup(&id, Some(&token)).unwrap();
    assert_eq!(identity.secret_access_key, secret);
    assert_eq!(
        identity.caller.principal_arn(),
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/app/s1")
    );
    assert!(identity.caller.user_id().ends_with(":s1"));
    assert_eq!(
        f.iam.directory().lookup(&id, None).err(),
        Some(KeyError::InvalidToken)
    );
    // The identity is remembered for its key and token only: another token for the same
    // key id is opened (and refused) on its own.
    let again = f.iam.directory().lookup(&id, Some(&token)).unwrap();
    assert_eq!(
        again.caller.principal_arn(),
        identity.caller.principal_arn()
    );
    let forged = format!("{token}x");
    assert_eq!(
        f.iam.directory().lookup(&id, Some(&forged)).err(),
        Some(KeyError::InvalidToken)
    );
    f.clock.store(NOW + 3600, Ordering::SeqCst);
    assert_eq!(
        f.iam.directory().lookup(&id, Some(&token)).err(),
        Some(KeyError::ExpiredToken)
    );
}

#[tokio::test]
async fn role_policy_changes_and_deletion_reach_existing_sessions() {
    let f = fixture().await;
    iam_call(
        &f,
        &root(),
        "CreateRole",
        &[
            ("RoleName", "app"),
            ("AssumeRolePolicyDocument", TRUST_ACCOUNT),
        ],
    )
    .await
    .unwrap();
    let (id, _, token) = assume(&f, "app").await;
    let dir = f.iam.directory();
    assert!(dir
        .lookup(&id, Some(&token))
        .unwrap()
        .caller
        .policies()
        .is_empty());
    iam_call(
        &f,
        &root(),
        "PutRolePolicy",
        &[
            ("RoleName", "app"),
            ("PolicyName", "p"),
            ("PolicyDocument", ECS_READ),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        dir.lookup(&id, Some(&token))
            .unwrap()
            .caller
            .policies()
            .len(),
        1
    );
    iam_call(
        &f,
        &root(),
        "DeleteRolePolicy",
        &[("RoleName", "app"), ("PolicyName", "p")],
    )
    .await
    .unwrap();
    iam_call(&f, &root(), "DeleteRole", &[("RoleName", "app")])
        .await
        .unwrap();
    assert_eq!(
        dir.lookup(&id, Some(&token)).err(),
        Some(KeyError::InvalidToken)
    );
    // A role recreated under the same name is another role: old sessions stay invalid.
    iam_call(
        &f,
        &root(),
        "CreateRole",
        &[
            ("RoleName", "app"),
            ("AssumeRolePolicyDocument", TRUST_ACCOUNT),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        dir.lookup(&id, Some(&token)).err(),
        Some(KeyError::InvalidToken)
    );
}

#[tokio::test]
async fn assume_role_checks_trust_duration_and_chaining() {
    let f = fixture().await;
    iam_call(
        &f,
        &root(),
        "CreateRole",
        &[
            ("RoleName", "tasks"),
            ("AssumeRolePolicyDocument", TRUST_TASKS),
        ],
    )
    .await
    .unwrap();
    let arn = format!("arn:aws:iam::{ACCOUNT}:role/tasks");
    let denied = sts_call(
        &f,
        &root(),
        "AssumeRole",
        &[("RoleArn", &arn), ("RoleSessionName", "s1")],
    )
    .await;
    assert_eq!(denied.err().as_deref(), Some("AccessDenied"));
    let missing = format!("arn:aws:iam::{ACCOUNT}:role/nope");
    let denied = sts_call(
        &f,
        &root(),
        "AssumeRole",
        &[("RoleArn", &missing), ("RoleSessionName", "s1")],
    )
    .await;
    assert_eq!(denied.err().as_deref(), Some("AccessDenied"));
    iam_call(
        &f,
        &root(),
        "CreateRole",
        &[
            ("RoleName", "long"),
            ("AssumeRolePolicyDocument", TRUST_ACCOUNT),
            ("MaxSessionDuration", "7200"),
        ],
    )
    .await
    .unwrap();
    let long = format!("arn:aws:iam::{ACCOUNT}:role/long");
    let ok = sts_call(
        &f,
        &root(),
        "AssumeRole",
        &[
            ("RoleArn", &long),
            ("RoleSessionName", "s1"),
            ("DurationSeconds", "7200"),
        ],
    )
    .await;
    assert!(ok.is_ok(), "{ok:?}");
    let over = sts_call(
        &f,
        &root(),
        "AssumeRole",
        &[
            ("RoleArn", &long),
            ("RoleSessionName", "s1"),
            ("DurationSeconds", "7201"),
        ],
    )
    .await;
    assert_eq!(over.err().as_deref(), Some("ValidationError"));
    // Role chaining: a session may assume a role for an hour at most.
    let assume_any = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}"#;
    iam_call(
        &f,
        &root(),
        "PutRolePolicy",
        &[
            ("RoleName", "long"),
            ("PolicyName", "p"),
            ("PolicyDocument", assume_any),
        ],
    )
    .await
    .unwrap();
    let (id, _, token) = assume(&f, "long").await;
    let session = f.iam.directory().lookup(&id, Some(&token)).unwrap().caller;
    let chained = sts_call(
        &f,
        &session,
        "AssumeRole",
        &[
            ("RoleArn", &long),
            ("RoleSessionName", "s2"),
            ("DurationSeconds", "3601"),
        ],
    )
    .await;
    assert_eq!(chained.err().as_deref(), Some("ValidationError"));
    let chained = sts_call(
        &f,
        &session,
        "AssumeRole",
        &[("RoleArn", &long), ("RoleSessionName", "s2")],
    )
    .await;
    assert!(chained.is_ok(), "{chained:?}");
}

#[tokio::test]
async fn role_sessions_for_services_need_the_service_in_the_trust_policy() {
    let f = fixture().await;
    iam_call(
        &f,
        &root(),
        "CreateRole",
        &[
            ("RoleName", "task"),
            ("AssumeRolePolicyDocument", TRUST_TASKS),
        ],
    )
    .await
    .unwrap();
    let arn = format!("arn:aws:iam::{ACCOUNT}:role/task");
    let hour = std::time::Duration::from_secs(3600);
    let creds = f
        .iam
        .issue_role_session(&arn, "task-1", "ecs-tasks.amazonaws.com", hour)
        .await
        .unwrap();
    let identity = f
        .iam
        .directory()
        .lookup(&creds.access_key_id, Some(&creds.session_token))
        .unwrap();
    assert_eq!(identity.secret_access_key, creds.secret_access_key);
    assert_eq!(
        identity.caller.principal_arn(),
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/task/task-1")
    );
    assert_eq!(
        creds.expiration_iso8601(),
        crate::xml::iso8601_secs(NOW + 3600)
    );
    let err = f
        .iam
        .issue_role_session(&arn, "task-1", "ec2.amazonaws.com", hour)
        .await;
    assert!(
        matches!(err, Err(crate::IamError::AccessDenied(_))),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_server_key_and_the_directory_survive_a_restart() {
    let mut store = TempStore::new().unwrap();
    let iam = Iam::open(store.store(), ACCOUNT).await.unwrap();
    let f = Fixture {
        sts: iam.sts(),
        iam,
        clock: Arc::new(AtomicI64::new(0)),
        _store: TempStore::new().unwrap(),
    };
    iam_call(&f, &root(), "CreateUser", &[("UserName", "bob")])
        .await
        .unwrap();
    let out = iam_call(&f, &root(), "CreateAccessKey", &[("UserName", "bob")])
        .await
        .unwrap();
    let key = between(&out, "AccessKeyId").to_owned();
    iam_call(
        &f,
        &root(),
        "CreateRole",
        &[
            ("RoleName", "app"),
            ("AssumeRolePolicyDocument", TRUST_ACCOUNT),
        ],
    )
    .await
    .unwrap();
    let arn = format!("arn:aws:iam::{ACCOUNT}:role/app");
    let out = sts_call(
        &f,
        &root(),
        "AssumeRole",
        &[("RoleArn", &arn), ("RoleSessionName", "s1")],
    )
    .await
    .unwrap();
    let (id, token) = (
        between(&out, "AccessKeyId").to_owned(),
        between(&out, "SessionToken").to_owned(),
    );
    drop(f);
    let reopened = Iam::open(store.reopen().await.unwrap(), ACCOUNT)
        .await
        .unwrap();
    assert!(reopened.directory().lookup(&key, None).is_ok());
    assert!(reopened.directory().lookup(&id, Some(&token)).is_ok());
}

#[tokio::test]
async fn iam_refuses_duplicates_conflicts_and_quotas_with_aws_codes() {
    let f = fixture().await;
    iam_call(&f, &root(), "CreateUser", &[("UserName", "carol")])
        .await
        .unwrap();
    let dup = iam_call(&f, &root(), "CreateUser", &[("UserName", "CAROL")]).await;
    assert_eq!(dup.err().as_deref(), Some("EntityAlreadyExists"));
    for _ in 0..2 {
        iam_call(&f, &root(), "CreateAccessKey", &[("UserName", "carol")])
            .await
            .unwrap();
    }
    let third = iam_call(&f, &root(), "CreateAccessKey", &[("UserName", "carol")]).await;
    assert_eq!(third.err().as_deref(), Some("LimitExceeded"));
    let conflict = iam_call(&f, &root(), "DeleteUser", &[("UserName", "carol")]).await;
    assert_eq!(conflict.err().as_deref(), Some("DeleteConflict"));
    let bad = iam_call(
        &f,
        &root(),
        "PutUserPolicy",
        &[
            ("UserName", "carol"),
            ("PolicyName", "p"),
            ("PolicyDocument", "{"),
        ],
    )
    .await;
    assert_eq!(bad.err().as_deref(), Some("MalformedPolicyDocument"));
    let missing = iam_call(&f, &root(), "GetUser", &[("UserName", "nobody")]).await;
    assert_eq!(missing.err().as_deref(), Some("NoSuchEntity"));
    let unserved = iam_call(&f, &root(), "ListGroups", &[]).await;
    assert_eq!(unserved.err().as_deref(), Some("NotImplemented"));
}

#[tokio::test]
async fn every_operation_answers_and_needs_an_iam_or_sts_access() {
    let f = fixture().await;
    let caller = Caller::root(ACCOUNT);
    let iam_form = parse_form(b"Version=2010-05-08").expect("form");
    let sts_form = parse_form(b"Version=2011-06-15").expect("form");
    // ValidationError is the query protocol's unmodelled parameter error.
    let iam = wire::conformance::every_operation_answers(
        &f.iam,
        Input::Query(&iam_form),
        &caller,
        &["ValidationError"],
    )
    .await;
    assert!(iam.served >= 30, "IAM operations served: {iam:?}");
    let sts = wire::conformance::every_operation_answers(
        &f.sts,
        Input::Query(&sts_form),
        &caller,
        &["ValidationError"],
    )
    .await;
    assert_eq!(sts.served, 3, "STS operations served");
    let n = wire::conformance::every_operation_needs_access(
        &f.iam,
        Input::Query(&iam_form),
        &caller,
        "iam",
    )
    .await;
    assert!(n >= IamOperation::ALL.len());
    let n = wire::conformance::every_operation_needs_access(
        &f.sts,
        Input::Query(&sts_form),
        &caller,
        "sts",
    )
    .await;
    assert!(n >= StsOperation::ALL.len());
}

#[tokio::test]
async fn get_session_token_refuses_session_credentials_even_a_users_own() {
    let f = fixture().await;
    iam_call(&f, &root(), "CreateUser", &[("UserName", "alice")])
        .await
        .unwrap();
    let out = iam_call(&f, &root(), "CreateAccessKey", &[("UserName", "alice")])
        .await
        .unwrap();
    let alice = f
        .iam
        .directory()
        .lookup(between(&out, "AccessKeyId"), None)
        .unwrap()
        .caller;
    assert!(!alice.is_temporary());
    let session = sts_call(&f, &alice, "GetSessionToken", &[]).await.unwrap();
    let (id, token) = (
        between(&session, "AccessKeyId"),
        between(&session, "SessionToken"),
    );
    let as_session = f.iam.directory().lookup(id, Some(token)).unwrap().caller;
    assert!(as_session.is_temporary());
    assert_eq!(
        as_session.principal_arn(),
        format!("arn:aws:iam::{ACCOUNT}:user/alice")
    );
    assert_eq!(
        sts_call(&f, &as_session, "GetSessionToken", &[])
            .await
            .err(),
        Some("AccessDenied".to_owned())
    );
    // Root's session credentials too.
    let root_session = sts_call(&f, &root(), "GetSessionToken", &[]).await.unwrap();
    let as_root_session = f
        .iam
        .directory()
        .lookup(
            between(&root_session, "AccessKeyId"),
            Some(between(&root_session, "SessionToken")),
        )
        .unwrap()
        .caller;
    assert_eq!(
        sts_call(&f, &as_root_session, "GetSessionToken", &[])
            .await
            .err(),
        Some("AccessDenied".to_owned())
    );
}
