//! Join tokens, instance identities and instance credentials, over a real store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::instances::{InstanceIdentityError, JOIN_TOKEN_PREFIX};
use crate::tests::{fixture, iam_call, root, Fixture, ACCOUNT, NOW, TRUST_TASKS};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use wire::Caller;

const TRUST_EC2: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const HOUR: Duration = Duration::from_secs(3600);

/// Runs an IAM action as the root; it must succeed.
async fn call(f: &Fixture, action: &str, params: &[(&str, &str)]) {
    iam_call(f, &root(), action, params).await.unwrap();
}

/// A profile `agents` holding role `ecsInstanceRole` with `trust`.
async fn profile(f: &Fixture, trust: &str) {
    call(
        f,
        "CreateRole",
        &[
            ("RoleName", "ecsInstanceRole"),
            ("AssumeRolePolicyDocument", trust),
        ],
    )
    .await;
    call(
        f,
        "CreateInstanceProfile",
        &[("InstanceProfileName", "agents")],
    )
    .await;
    call(
        f,
        "AddRoleToInstanceProfile",
        &[
            ("InstanceProfileName", "agents"),
            ("RoleName", "ecsInstanceRole"),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_join_token_is_redeemed_once_for_an_instance_whose_credentials_name_it() {
    let f = fixture().await;
    let iam = &f.iam;
    profile(&f, TRUST_EC2).await;
    let token = iam
        .mint_join_token(&Caller::root(ACCOUNT), "agents", HOUR)
        .await
        .unwrap();
    assert!(token.token.starts_with(JOIN_TOKEN_PREFIX));
    assert!(token.token.len() >= JOIN_TOKEN_PREFIX.len() + 64);
    let identity = iam.redeem_join_token(&token.token).await.unwrap();
    assert!(identity.instance_id.starts_with("i-"));
    assert_eq!(identity.instance_id.len(), 19);
    assert_eq!(
        identity.role_arn,
        format!("arn:aws:iam::{ACCOUNT}:role/ecsInstanceRole")
    );
    assert!(matches!(
        iam.redeem_join_token(&token.token).await,
        Err(InstanceIdentityError::UsedToken)
    ));
    let creds = iam
        .instance_credentials(&identity.instance_id, &identity.instance_secret)
        .await
        .unwrap();
    let caller = iam
        .directory()
        .lookup(&creds.access_key_id, Some(&creds.session_token))
        .unwrap()
        .caller;
    assert_eq!(
        caller.principal_arn(),
        format!(
            "arn:aws:sts::{ACCOUNT}:assumed-role/ecsInstanceRole/{}",
            identity.instance_id
        )
    );
    assert_eq!(caller.instance_id(), Some(identity.instance_id.as_str()));
    assert_eq!(
        creds.expiration_iso8601(),
        crate::xml::iso8601_secs(NOW + 3600)
    );
    assert!(matches!(
        iam.instance_credentials(&identity.instance_id, "wrong")
            .await,
        Err(InstanceIdentityError::BadInstance)
    ));
}

#[tokio::test]
async fn a_role_session_named_like_an_instance_is_not_that_instance() {
    let f = fixture().await;
    let iam = &f.iam;
    profile(&f, TRUST_EC2).await;
    let arn = format!("arn:aws:iam::{ACCOUNT}:role/ecsInstanceRole");
    let creds = iam
        .issue_role_session(&arn, "i-0123456789abcdef0", "ec2.amazonaws.com", HOUR)
        .await
        .unwrap();
    let caller = iam
        .directory()
        .lookup(&creds.access_key_id, Some(&creds.session_token))
        .unwrap()
        .caller;
    assert_eq!(caller.instance_id(), None);
}

#[tokio::test]
async fn concurrent_redemptions_of_one_token_have_one_winner() {
    let f = fixture().await;
    let iam = &f.iam;
    profile(&f, TRUST_EC2).await;
    let token = iam
        .mint_join_token(&Caller::root(ACCOUNT), "agents", HOUR)
        .await
        .unwrap()
        .token;
    let (a, b) = tokio::join!(iam.redeem_join_token(&token), iam.redeem_join_token(&token));
    assert_eq!(u8::from(a.is_ok()) + u8::from(b.is_ok()), 1, "{a:?} {b:?}");
}

#[tokio::test]
async fn expired_unknown_and_untrusting_profiles_are_refused_with_what_to_do() {
    let f = fixture().await;
    let (iam, clock) = (&f.iam, &f.clock);
    profile(&f, TRUST_TASKS).await;
    let root = Caller::root(ACCOUNT);
    let err = iam
        .mint_join_token(&root, "agents", HOUR)
        .await
        .unwrap_err();
    assert!(
        matches!(err, InstanceIdentityError::Untrusted(_)),
        "{err:?}"
    );
    assert!(err.to_string().contains("ec2.amazonaws.com"));
    let err = iam.mint_join_token(&root, "nope", HOUR).await.unwrap_err();
    assert!(matches!(err, InstanceIdentityError::NoProfile(_)));
    call(
        &f,
        "UpdateAssumeRolePolicy",
        &[
            ("RoleName", "ecsInstanceRole"),
            ("PolicyDocument", TRUST_EC2),
        ],
    )
    .await;
    let token = iam.mint_join_token(&root, "agents", HOUR).await.unwrap();
    clock.fetch_add(3600, Ordering::SeqCst);
    assert!(matches!(
        iam.redeem_join_token(&token.token).await,
        Err(InstanceIdentityError::ExpiredToken)
    ));
    let err = iam.redeem_join_token("stvjoin-0000").await.unwrap_err();
    assert!(matches!(err, InstanceIdentityError::UnknownToken));
    assert!(err.to_string().contains("stevedore join-token"));
}

#[tokio::test]
async fn minting_needs_pass_role_and_a_removed_role_stops_the_refresh() {
    let f = fixture().await;
    let iam = &f.iam;
    profile(&f, TRUST_EC2).await;
    let nobody = Caller::new(
        policy::Principal::user(&format!("arn:aws:iam::{ACCOUNT}:user/bob")),
        "AIDABOB",
        Arc::from(Vec::new()),
    );
    let err = iam
        .mint_join_token(&nobody, "agents", HOUR)
        .await
        .unwrap_err();
    assert!(matches!(err, InstanceIdentityError::AccessDenied(_)));
    assert!(err.to_string().contains("iam:PassRole"), "{err}");
    let token = iam
        .mint_join_token(&Caller::root(ACCOUNT), "agents", HOUR)
        .await
        .unwrap();
    let identity = iam.redeem_join_token(&token.token).await.unwrap();
    // No API removes a role from a profile yet: the role's record goes, as if deleted.
    assert!(iam
        .core
        .objects
        .commit(store::Txn::new().delete("iam/role/ecsinstancerole"))
        .await
        .unwrap());
    let err = iam
        .instance_credentials(&identity.instance_id, &identity.instance_secret)
        .await;
    assert!(
        matches!(err, Err(InstanceIdentityError::NoRole(_))),
        "{err:?}"
    );
}
