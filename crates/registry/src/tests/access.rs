//! Registry tokens bound to their principal and `/v2/` authorized per repository, through
//! the router as docker reaches it.

use super::{create, fixture, manifest, push_blob, Fixture};
use crate::auth::TokenSubject;
use crate::images::PutMode;
use crate::{now_secs, IdentityResolver, Registry};
use axum::body::Body;
use base64::Engine;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use oci::reference::Reference;
use std::sync::{Arc, Mutex};
use tower::ServiceExt;
use wire::Service;

const ALICE: &str = "arn:aws:iam::000000000000:user/alice";
const ALICE_ID: &str = "AIDAALICE";
const REPO_ARN: &str = "arn:aws:ecr:us-east-1:000000000000:repository/app";

/// IAM as the registry sees it: alice with whatever policies the test gives her now.
#[derive(Default)]
struct FakeIam {
    alice: Mutex<Option<Vec<policy::Policy>>>,
}

impl FakeIam {
    fn set(&self, docs: &[&str]) {
        let ps = docs
            .iter()
            .map(|d| policy::Policy::parse(d, policy::PolicyKind::Identity).expect("policy"))
            .collect();
        *self.alice.lock().expect("lock") = Some(ps);
    }
    fn delete(&self) {
        *self.alice.lock().expect("lock") = None;
    }
}

impl IdentityResolver for FakeIam {
    fn resolve(&self, arn: &str, user_id: &str) -> Option<wire::Caller> {
        let ps = self.alice.lock().expect("lock").clone()?;
        (arn == ALICE && user_id == ALICE_ID)
            .then(|| wire::Caller::new(policy::Principal::user(ALICE), ALICE_ID, ps.into()))
    }
}

fn alice_caller(docs: &[&str]) -> wire::Caller {
    let ps: Vec<policy::Policy> = docs
        .iter()
        .map(|d| policy::Policy::parse(d, policy::PolicyKind::Identity).expect("policy"))
        .collect();
    wire::Caller::new(policy::Principal::user(ALICE), ALICE_ID, ps.into())
}

fn allow(actions: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":{actions},"Resource":"*"}}]}}"#
    )
}

fn deny(actions: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Action":{actions},"Resource":"*"}}]}}"#
    )
}

fn repo_policy(effect: &str, principal: &str, actions: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"s","Effect":"{effect}","Principal":{{"AWS":"{principal}"}},"Action":{actions}}}]}}"#
    )
}

const PULL: &str =
    r#"["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability"]"#;

async fn set_repo_policy(
    reg: &Registry,
    name: &str,
    text: &str,
) -> Result<Vec<u8>, crate::RegistryError> {
    let body = serde_json::json!({"repositoryName": name, "policyText": text});
    reg.handle("SetRepositoryPolicy", body.to_string().as_bytes())
        .await
}

/// A registry with IAM attached and repository `app` holding image `app:v1`.
async fn with_image() -> (Fixture, Arc<FakeIam>) {
    let mut f = fixture(3600);
    let iam = Arc::new(FakeIam::default());
    f.reg = f.reg.clone().with_identity(iam.clone());
    create(&f.reg, "app").await;
    create(&f.reg, "other").await;
    let config = push_blob(&f.reg, "app", b"{}").await;
    let layer = push_blob(&f.reg, "app", b"layer").await;
    f.reg
        .put_manifest(
            "app",
            &Reference::Tag("v1".into()),
            manifest(&config, &[&layer]),
            None,
            PutMode::Distribution,
        )
        .await
        .expect("manifest");
    (f, iam)
}

async fn token(reg: &Registry, subject: &TokenSubject) -> String {
    reg.token_key()
        .await
        .expect("test value")
        .issue(now_secs(), subject, None)
        .0
}

fn alice() -> TokenSubject {
    TokenSubject::Principal {
        arn: ALICE.into(),
        user_id: ALICE_ID.into(),
    }
}

/// Sends `method path` with `password` as docker does; returns status, OCI error code, body.
async fn send(reg: &Registry, method: &str, path: &str, password: &str) -> (StatusCode, String) {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("AWS:{password}"));
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Basic {basic}"))
        .body(Body::empty())
        .expect("test value");
    let resp = reg.router().oneshot(req).await.expect("test value");
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .expect("test value")
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn identity_policies_decide_pulls_and_their_removal_applies_to_live_tokens() {
    let (f, iam) = with_image().await;
    iam.set(&[]);
    let t = token(&f.reg, &alice()).await;
    let (status, body) = send(&f.reg, "GET", "/v2/app/manifests/v1", &t).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("DENIED"), "{body}");
    assert!(
        body.contains(&format!("User: {ALICE} is not authorized to perform: ecr:BatchGetImage on resource: {REPO_ARN} because no identity-based policy allows")),
        "{body}"
    );
    iam.set(&[&allow(PULL)]);
    assert_eq!(
        send(&f.reg, "GET", "/v2/app/manifests/v1", &t).await.0,
        StatusCode::OK
    );
    // Pull rights do not push.
    let (status, body) = send(&f.reg, "POST", "/v2/app/blobs/uploads/", &t).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("ecr:InitiateLayerUpload"), "{body}");
    // Taken away again: the same token stops at once.
    iam.set(&[]);
    assert_eq!(
        send(&f.reg, "GET", "/v2/app/manifests/v1", &t).await.0,
        StatusCode::FORBIDDEN
    );
    // A deleted principal's token no longer authenticates.
    iam.delete();
    let (status, body) = send(&f.reg, "GET", "/v2/", &t).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("no longer exists"), "{body}");
}

#[tokio::test]
async fn a_repository_policy_naming_the_principal_grants_on_its_own() {
    let (f, iam) = with_image().await;
    iam.set(&[]);
    let t = token(&f.reg, &alice()).await;
    set_repo_policy(&f.reg, "app", &repo_policy("Allow", ALICE, PULL))
        .await
        .expect("set");
    assert_eq!(
        send(&f.reg, "GET", "/v2/app/manifests/v1", &t).await.0,
        StatusCode::OK
    );
    // Only on that repository.
    let (status, _) = send(&f.reg, "GET", "/v2/other/tags/list", &t).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Naming only the account delegates to identity policies, which grant nothing here.
    set_repo_policy(
        &f.reg,
        "app",
        &repo_policy("Allow", "arn:aws:iam::000000000000:root", PULL),
    )
    .await
    .expect("set");
    assert_eq!(
        send(&f.reg, "GET", "/v2/app/manifests/v1", &t).await.0,
        StatusCode::FORBIDDEN
    );
    // Deleting the policy takes its grant away.
    set_repo_policy(&f.reg, "app", &repo_policy("Allow", ALICE, PULL))
        .await
        .expect("set");
    f.reg
        .handle("DeleteRepositoryPolicy", br#"{"repositoryName":"app"}"#)
        .await
        .expect("delete");
    assert_eq!(
        send(&f.reg, "GET", "/v2/app/manifests/v1", &t).await.0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn an_explicit_deny_in_either_policy_wins() {
    let (f, _iam) = with_image().await;
    let resource = f.reg.repository_arn("app");
    assert_eq!(resource, REPO_ARN);
    let grant = repo_policy("Allow", ALICE, PULL);
    let grant = policy::Policy::parse(&grant, policy::PolicyKind::Resource).expect("test value");
    let denying = repo_policy("Deny", "*", PULL);
    let denying =
        policy::Policy::parse(&denying, policy::PolicyKind::Resource).expect("test value");
    let pull = crate::access::Action::BatchGetImage;

    let identity_deny = alice_caller(&[&allow(PULL), &deny(r#""ecr:BatchGetImage""#)]);
    let err = f
        .reg
        .authorize(&identity_deny, "app", Some(&grant), pull)
        .expect_err("refused");
    assert!(
        err.to_string()
            .contains("with an explicit deny in an identity-based policy"),
        "{err}"
    );

    let allowed = alice_caller(&[&allow(PULL)]);
    assert!(f.reg.authorize(&allowed, "app", None, pull).is_ok());
    let err = f
        .reg
        .authorize(&allowed, "app", Some(&denying), pull)
        .expect_err("refused");
    assert!(
        err.to_string()
            .contains("with an explicit deny in a resource-based policy"),
        "{err}"
    );

    // Root is unrestricted by identity policies but not by a repository policy's Deny.
    let root = wire::Caller::root("000000000000");
    assert!(f.reg.authorize(&root, "app", Some(&grant), pull).is_ok());
    assert!(f.reg.authorize(&root, "app", Some(&denying), pull).is_err());
}

#[tokio::test]
async fn root_tokens_work_as_before_and_the_catalog_shows_what_a_principal_may_describe() {
    let (f, iam) = with_image().await;
    let root = token(&f.reg, &TokenSubject::Root).await;
    assert_eq!(send(&f.reg, "GET", "/v2/", &root).await.0, StatusCode::OK);
    assert_eq!(
        send(&f.reg, "GET", "/v2/app/manifests/v1", &root).await.0,
        StatusCode::OK
    );
    let (_, body) = send(&f.reg, "GET", "/v2/_catalog", &root).await;
    assert!(
        body.contains("\"app\"") && body.contains("\"other\""),
        "{body}"
    );

    iam.set(&[&format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"ecr:DescribeRepositories","Resource":"{REPO_ARN}"}}]}}"#
    )]);
    let t = token(&f.reg, &alice()).await;
    let (status, body) = send(&f.reg, "GET", "/v2/_catalog", &t).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("\"app\"") && !body.contains("\"other\""),
        "{body}"
    );
}

#[tokio::test]
async fn forged_and_expired_tokens_are_unauthorized_with_a_way_out() {
    let (f, _iam) = with_image().await;
    let key = f.reg.token_key().await.expect("test value");
    let (expired, _) = key.issue(now_secs() - 100, &TokenSubject::Root, Some(now_secs() - 1));
    let (status, body) = send(&f.reg, "GET", "/v2/app/manifests/v1", &expired).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body.contains("UNAUTHORIZED")
            && body.contains("expired")
            && body.contains("get-login-password"),
        "{body}"
    );
    let good = token(&f.reg, &alice()).await;
    let forged = good.replacen(&alice_subject_field(&good), "root", 1);
    let (status, body) = send(&f.reg, "GET", "/v2/app/manifests/v1", &forged).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("not issued by this registry"), "{body}");
}

fn alice_subject_field(token: &str) -> String {
    token.split('.').nth(3).expect("test value").to_owned()
}

/// ECR GetAuthorizationToken's answer to `caller`.
async fn authorization_token(f: &Fixture, caller: &wire::Caller) -> serde_json::Value {
    let call = wire::Call {
        input: wire::Input::Json(b"{}"),
        caller,
        request_id: "r",
    };
    let out = Service::handle(&f.reg, crate::Operation::GetAuthorizationToken, call)
        .await
        .expect("token");
    serde_json::from_slice(&out).expect("test value")
}

#[tokio::test]
async fn get_authorization_token_binds_the_token_to_its_caller() {
    let (f, iam) = with_image().await;
    iam.set(&[]);
    let v = authorization_token(&f, &alice_caller(&[])).await;
    let token = v["authorizationData"][0]["authorizationToken"]
        .as_str()
        .expect("test value");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token)
        .expect("test value");
    let password = String::from_utf8(decoded).expect("test value");
    let password = password.strip_prefix("AWS:").expect("test value");
    let grant = f
        .reg
        .token_key()
        .await
        .expect("test value")
        .verify(password, now_secs())
        .expect("test value");
    assert_eq!(grant.subject, alice());
    // Acting as alice: no pull rights.
    assert_eq!(
        send(&f.reg, "GET", "/v2/app/manifests/v1", password)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn repository_policies_are_validated_as_resource_policies_of_ecr() {
    let (f, _iam) = with_image().await;
    let no_principal =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:BatchGetImage"}]}"#;
    let err = set_repo_policy(&f.reg, "app", no_principal)
        .await
        .expect_err("refused");
    assert_eq!(err.to_aws().code, "InvalidParameterException");
    assert!(
        err.to_string()
            .contains("Invalid repository policy provided"),
        "{err}"
    );
    let s3 = repo_policy("Allow", ALICE, r#""s3:GetObject""#);
    let err = set_repo_policy(&f.reg, "app", &s3)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("s3:GetObject"), "{err}");
    assert!(set_repo_policy(&f.reg, "app", "not json").await.is_err());
    assert!(f
        .reg
        .repository_policy("app")
        .await
        .expect("test value")
        .is_none());
    set_repo_policy(&f.reg, "app", &repo_policy("Allow", ALICE, PULL))
        .await
        .expect("valid");
    let p = f
        .reg
        .repository_policy("app")
        .await
        .expect("test value")
        .expect("compiled");
    assert_eq!(p.statements().len(), 1);
    let again = f
        .reg
        .repository_policy("app")
        .await
        .expect("test value")
        .expect("cached");
    assert!(Arc::ptr_eq(&p, &again));
}

#[tokio::test]
async fn a_sessions_registry_token_expires_with_the_session() {
    let (f, iam) = with_image().await;
    iam.set(&[]);
    let session_ends = now_secs() + 900;
    let caller = alice_caller(&[]).with_session_expiry(session_ends);
    let v = authorization_token(&f, &caller).await;
    let expires_at = v["authorizationData"][0]["expiresAt"]
        .as_f64()
        .expect("expiresAt is a timestamp");
    assert_eq!(expires_at as i64, session_ends);
}
