//! Dispatch decisions end to end over two fake services (one AWS JSON 1.1, one query),
//! with requests signed by the AWS SDK's own signer.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::service::{
    Access, Call, Caller, Input, OperationTable, Service, ServiceError, ServiceSpec,
};
use crate::{AwsError, JsonVersion, Protocol};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4::SigningParams;
use bytes::Bytes;
use http_body_util::Full;
use std::sync::Arc;
use std::time::SystemTime;

const AKID: &str = "AKIDTEST";
const SECRET: &str = "secret/key";
const SESSION_KEY: &str = "ASIATEST";
/// A user allowed `fake:Echo` anywhere, `fake:Big` only from 10.0.0.0/8.
const USER_KEY: &str = "AKIDUSER";
/// A user allowed `fake:*` and `fakeq:*` but explicitly denied `fake:Echo`.
const DENIED_KEY: &str = "AKIDDENIED";
const USER_ARN: &str = "arn:aws:iam::1:user/alice";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum JsonOp {
    Echo,
    Big,
    Fail,
    Later,
}

impl JsonOp {
    const ALL: &'static [JsonOp] = &[Self::Echo, Self::Big, Self::Fail, Self::Later];
    fn name(self) -> &'static str {
        match self {
            Self::Echo => "Echo",
            Self::Big => "Big",
            Self::Fail => "Fail",
            Self::Later => "Later",
        }
    }
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|o| o.name() == name)
    }
    fn errors(self) -> &'static [&'static str] {
        &[]
    }
}

/// A JSON 1.1 service: `Echo` answers its body (and who called), `Big` accepts 4 KiB,
/// `Fail` is a server fault, `Later` is in the model but not implemented.
struct JsonService;

impl Service for JsonService {
    type Operation = JsonOp;
    const SPEC: ServiceSpec = ServiceSpec {
        name: "fake",
        title: "Fake JSON",
        signing_name: "fake",
        protocols: &[Protocol::AwsJson {
            version: JsonVersion::V1_1,
            target_prefix: "Fake_20240101",
        }],
    };
    const OPERATIONS: OperationTable<JsonOp> = OperationTable {
        all: JsonOp::ALL,
        from_name: JsonOp::from_name,
        name: JsonOp::name,
        errors: JsonOp::errors,
    };
    fn body_limit(&self, op: JsonOp) -> usize {
        match op {
            JsonOp::Big => 4096,
            _ => 64,
        }
    }
    async fn authorize(&self, op: JsonOp, _: Call<'_>) -> Result<Vec<Access>, ServiceError> {
        if op == JsonOp::Later {
            return Ok(vec![Access::public("fake", "Later")]);
        }
        Ok(vec![Access::new(
            "fake",
            op.name(),
            "arn:aws:fake::1:thing/t",
        )])
    }
    async fn handle(&self, op: JsonOp, call: Call<'_>) -> Result<Vec<u8>, ServiceError> {
        let Input::Json(body) = call.input else {
            return Err(AwsError::server("Wrong", "not JSON").into());
        };
        match op {
            JsonOp::Echo | JsonOp::Big => {
                let mut out = body.to_vec();
                out.extend_from_slice(call.caller.principal_arn().as_bytes());
                Ok(out)
            }
            JsonOp::Fail => Err(AwsError::server("ServerException", "boom").into()),
            JsonOp::Later => Err(ServiceError::NotImplemented),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct QueryOp;

/// A query service with one operation, `Ping`, answering its request id.
struct QueryService;

impl Service for QueryService {
    type Operation = QueryOp;
    const SPEC: ServiceSpec = ServiceSpec {
        name: "fakeq",
        title: "Fake Query 2020-01-01",
        signing_name: "fakeq",
        protocols: &[Protocol::AwsQuery {
            version: "2020-01-01",
        }],
    };
    const OPERATIONS: OperationTable<QueryOp> = OperationTable {
        all: &[QueryOp],
        from_name: |n| (n == "Ping").then_some(QueryOp),
        name: |_| "Ping",
        errors: |_| &[],
    };
    async fn authorize(&self, _: QueryOp, _: Call<'_>) -> Result<Vec<Access>, ServiceError> {
        Ok(vec![Access::any("fakeq", "Ping")])
    }
    async fn handle(&self, _: QueryOp, call: Call<'_>) -> Result<Vec<u8>, ServiceError> {
        Ok(format!("<PingResponse>{}</PingResponse>", call.request_id).into_bytes())
    }
}

fn dispatch() -> Dispatch {
    let keys: Keys = Arc::new(|id: &str, token: Option<&str>| match (id, token) {
        (AKID, _) => Ok(Identity {
            secret_access_key: SECRET.into(),
            caller: Caller::root("1"),
        }),
        (SESSION_KEY, Some("good")) => Ok(Identity {
            secret_access_key: SECRET.into(),
            caller: Caller::new(
                policy::Principal::assumed_role(
                    "arn:aws:sts::1:assumed-role/r/s",
                    "arn:aws:iam::1:role/r",
                ),
                "AROAEXAMPLE:s",
                user(&[r#"{"Effect":"Allow","Action":"fake:*","Resource":"*"}"#])
                    .caller
                    .policies()
                    .into(),
            ),
        }),
        (USER_KEY, _) => Ok(user(&[
            r#"{"Effect":"Allow","Action":"fake:Echo","Resource":"arn:aws:fake::1:thing/*"}"#,
            r#"{"Effect":"Allow","Action":"fake:Big","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}"#,
        ])),
        (DENIED_KEY, _) => Ok(user(&[
            r#"{"Effect":"Allow","Action":["fake:*","fakeq:*"],"Resource":"*"}"#,
            r#"{"Effect":"Deny","Action":"fake:Echo","Resource":"*"}"#,
        ])),
        (SESSION_KEY, Some("expired")) => Err(KeyError::ExpiredToken),
        (SESSION_KEY, _) => Err(KeyError::InvalidToken),
        _ => Err(KeyError::Unknown),
    });
    Dispatch::new(keys)
        .register(JsonService)
        .register(QueryService)
}

/// The identity of `alice`, holding one policy with `statements`.
fn user(statements: &[&str]) -> Identity {
    let doc = format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        statements.join(",")
    );
    let policy = policy::Policy::parse(&doc, policy::PolicyKind::Identity).unwrap();
    Identity {
        secret_access_key: SECRET.into(),
        caller: Caller::new(
            policy::Principal::user(USER_ARN),
            "AIDAALICE",
            Arc::from(vec![policy]),
        ),
    }
}

fn signed(service: &str, headers: &[(&str, &str)], body: &[u8]) -> http::Request<Full<Bytes>> {
    signed_at("/", service, headers, body)
}

fn signed_at(
    path: &str,
    service: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> http::Request<Full<Bytes>> {
    let creds = Credentials::new(AKID, SECRET, None, None, "test");
    signed_as(creds, path, service, headers, body)
}

fn signed_as(
    creds: Credentials,
    path: &str,
    service: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> http::Request<Full<Bytes>> {
    let uri = format!("http://localhost{path}");
    let mut all: Vec<(&str, &str)> = vec![("host", "localhost")];
    all.extend_from_slice(headers);
    let signable =
        SignableRequest::new("POST", &uri, all.iter().copied(), SignableBody::Bytes(body)).unwrap();
    let identity = creds.into();
    let params = SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut req = http::Request::builder().method("POST").uri(&uri);
    for (k, v) in &all {
        req = req.header(*k, *v);
    }
    let mut req = req.body(Full::new(Bytes::copy_from_slice(body))).unwrap();
    instructions.apply_to_request_http1x(&mut req);
    req
}

fn json(target: &str, body: &[u8]) -> http::Request<Full<Bytes>> {
    signed(
        "fake",
        &[
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", target),
        ],
        body,
    )
}

fn query(service: &str, form: &str) -> http::Request<Full<Bytes>> {
    signed(
        service,
        &[(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )],
        form.as_bytes(),
    )
}

fn header<'a>(r: &'a http::Response<Bytes>, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn json_code(r: &http::Response<Bytes>) -> String {
    let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
    v["__type"].as_str().unwrap_or("").to_owned()
}

fn text(r: &http::Response<Bytes>) -> &str {
    std::str::from_utf8(r.body()).unwrap()
}

#[tokio::test]
async fn json_target_reaches_its_service_with_the_caller() {
    let r = dispatch().serve(json("Fake_20240101.Echo", b"{}")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "application/x-amz-json-1.1");
    assert_eq!(text(&r), "{}arn:aws:iam::1:root");
    assert!(!header(&r, "x-amzn-RequestId").is_empty());
}

#[tokio::test]
async fn unknown_target_prefix_and_unknown_operation_are_unknown_operation_exception() {
    let d = dispatch();
    let r = d.serve(json("Other_1.Echo", b"{}")).await;
    assert_eq!(
        (r.status().as_u16(), json_code(&r)),
        (400, "UnknownOperationException".into())
    );
    let r = d.serve(json("Fake_20240101.Nope", b"{}")).await;
    assert_eq!(json_code(&r), "UnknownOperationException");
    assert!(text(&r).contains("Fake JSON"), "{}", text(&r));
    let r = d
        .serve(signed(
            "fake",
            &[("content-type", "application/x-amz-json-1.1")],
            b"{}",
        ))
        .await;
    assert_eq!(json_code(&r), "UnknownOperationException");
}

#[tokio::test]
async fn an_operation_in_the_model_but_not_served_says_not_implemented() {
    let r = dispatch().serve(json("Fake_20240101.Later", b"{}")).await;
    assert_eq!(r.status(), 400);
    assert_eq!(json_code(&r), "UnknownOperationException");
    assert!(text(&r).contains("not implemented"), "{}", text(&r));
}

#[tokio::test]
async fn credential_scope_must_name_the_services_signing_name() {
    let req = signed(
        "ecs",
        &[
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "Fake_20240101.Echo"),
        ],
        b"{}",
    );
    let r = dispatch().serve(req).await;
    assert_eq!(r.status(), 400);
    assert_eq!(json_code(&r), "InvalidSignatureException");
    assert!(text(&r).contains("Credential should be scoped to correct service: 'fake'"));
    let r = dispatch()
        .serve(query("ecs", "Action=Ping&Version=2020-01-01"))
        .await;
    assert_eq!(r.status(), 400);
    assert!(
        text(&r).contains("<Code>InvalidSignatureException</Code>"),
        "{}",
        text(&r)
    );
}

#[tokio::test]
async fn unsigned_requests_are_403_and_bad_signatures_400() {
    let req = http::Request::builder()
        .method("POST")
        .uri("/")
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", "Fake_20240101.Echo")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let r = dispatch().serve(req).await;
    assert_eq!(r.status(), 403);
    assert_eq!(json_code(&r), "MissingAuthenticationTokenException");
    let mut req = json("Fake_20240101.Echo", b"{}");
    *req.body_mut() = Full::new(Bytes::from_static(b"{\"x\":1}"));
    let r = dispatch().serve(req).await;
    assert_eq!(r.status(), 400);
    assert_eq!(json_code(&r), "InvalidSignatureException");
}

#[tokio::test]
async fn body_limit_is_the_operations_and_answers_413() {
    let d = dispatch();
    let big = vec![b' '; 1000];
    let r = d.serve(json("Fake_20240101.Echo", &big)).await;
    assert_eq!(r.status(), 413);
    assert_eq!(json_code(&r), "SerializationException");
    let r = d.serve(json("Fake_20240101.Big", &big)).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn server_faults_keep_their_status() {
    let r = dispatch().serve(json("Fake_20240101.Fail", b"{}")).await;
    assert_eq!(r.status(), 500);
    assert_eq!(header(&r, "x-amzn-ErrorType"), "ServerException");
}

#[tokio::test]
async fn query_version_picks_the_service_and_action_the_operation() {
    let d = dispatch();
    let r = d
        .serve(query("fakeq", "Action=Ping&Version=2020-01-01"))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "text/xml");
    assert!(text(&r).contains(header(&r, "x-amzn-RequestId")));
    let r = d
        .serve(query("fakeq", "Action=Pong&Version=2020-01-01"))
        .await;
    assert_eq!(r.status(), 400);
    assert!(
        text(&r).contains("<Type>Sender</Type><Code>InvalidAction</Code>"),
        "{}",
        text(&r)
    );
    assert!(text(&r).contains(&format!(
        "<RequestId>{}</RequestId>",
        header(&r, "x-amzn-RequestId")
    )));
    let r = d
        .serve(query("fakeq", "Action=Ping&Version=1999-01-01"))
        .await;
    assert!(
        text(&r).contains("<Code>InvalidAction</Code>"),
        "{}",
        text(&r)
    );
    let r = d.serve(query("fakeq", "Action=Ping&a=%zz")).await;
    assert!(
        text(&r).contains("<Code>MalformedQueryString</Code>"),
        "{}",
        text(&r)
    );
}

#[tokio::test]
async fn rpc_v2_cbor_requests_get_a_cbor_error_until_a_service_speaks_it() {
    let req = signed_at(
        "/service/GraniteServiceVersion20100801/operation/PutMetricData",
        "monitoring",
        &[
            ("content-type", "application/cbor"),
            ("smithy-protocol", "rpc-v2-cbor"),
        ],
        b"",
    );
    let r = dispatch().serve(req).await;
    assert_eq!(r.status(), 400);
    assert_eq!(header(&r, "content-type"), "application/cbor");
    assert_eq!(header(&r, "x-amzn-ErrorType"), "UnknownOperationException");
}

#[tokio::test]
async fn rpc_v2_cbor_requests_must_say_smithy_protocol_and_not_name_a_target() {
    let path = "/service/GraniteServiceVersion20100801/operation/PutMetricData";
    for headers in [
        &[("content-type", "application/cbor")][..],
        &[
            ("content-type", "application/cbor"),
            ("smithy-protocol", "rpc-v2-cbor"),
            (
                "x-amz-target",
                "GraniteServiceVersion20100801.PutMetricData",
            ),
        ][..],
    ] {
        let r = dispatch()
            .serve(signed_at(path, "monitoring", headers, b""))
            .await;
        assert_eq!(r.status(), 400);
        assert_eq!(header(&r, "x-amzn-ErrorType"), "SerializationException");
        assert_eq!(header(&r, "smithy-protocol"), "rpc-v2-cbor");
    }
}

#[test]
fn registered_specs_are_listed_in_order() {
    let names: Vec<_> = dispatch().specs().iter().map(|s| s.name).collect();
    assert_eq!(names, ["fake", "fakeq"]);
}

fn session(token: &str, target: &str) -> http::Request<Full<Bytes>> {
    let creds = Credentials::new(SESSION_KEY, SECRET, Some(token.to_owned()), None, "test");
    signed_as(
        creds,
        "/",
        "fake",
        &[
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", target),
        ],
        b"{}",
    )
}

fn session_query(token: &str) -> http::Request<Full<Bytes>> {
    let creds = Credentials::new(SESSION_KEY, SECRET, Some(token.to_owned()), None, "test");
    signed_as(
        creds,
        "/",
        "fakeq",
        &[(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )],
        b"Action=Ping&Version=2020-01-01",
    )
}

#[tokio::test]
async fn a_session_token_reaches_the_key_lookup_and_its_caller_is_the_session() {
    let r = dispatch()
        .serve(session("good", "Fake_20240101.Echo"))
        .await;
    assert_eq!(r.status(), 200, "{}", text(&r));
    assert!(
        text(&r).contains("arn:aws:sts::1:assumed-role/r/s"),
        "{}",
        text(&r)
    );
}

#[tokio::test]
async fn expired_and_forged_tokens_are_refused_with_each_protocols_code() {
    let d = dispatch();
    let r = d.serve(session("expired", "Fake_20240101.Echo")).await;
    assert_eq!(r.status(), 400);
    assert_eq!(json_code(&r), "ExpiredTokenException");
    let r = d.serve(session("forged", "Fake_20240101.Echo")).await;
    assert_eq!(r.status(), 403);
    assert_eq!(json_code(&r), "InvalidClientTokenId");
    let r = d.serve(session_query("expired")).await;
    assert_eq!(r.status(), 403);
    assert!(
        text(&r).contains("<Code>ExpiredToken</Code>"),
        "{}",
        text(&r)
    );
    assert!(
        text(&r).contains("The security token included in the request is expired"),
        "{}",
        text(&r)
    );
    let r = d.serve(session_query("forged")).await;
    assert_eq!(r.status(), 403);
    assert!(
        text(&r).contains("<Code>InvalidClientTokenId</Code>"),
        "{}",
        text(&r)
    );
}

#[tokio::test]
async fn an_unknown_key_is_unrecognized_client_for_json_and_invalid_client_token_id_for_query() {
    let d = dispatch();
    let creds = Credentials::new("AKIAUNKNOWN", SECRET, None, None, "test");
    let r = d
        .serve(signed_as(
            creds.clone(),
            "/",
            "fake",
            &[
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", "Fake_20240101.Echo"),
            ],
            b"{}",
        ))
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(json_code(&r), "UnrecognizedClientException");
    let r = d
        .serve(signed_as(
            creds,
            "/",
            "fakeq",
            &[(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )],
            b"Action=Ping&Version=2020-01-01",
        ))
        .await;
    assert_eq!(r.status(), 403);
    assert!(
        text(&r).contains("<Code>InvalidClientTokenId</Code>"),
        "{}",
        text(&r)
    );
}

fn as_key(
    key: &str,
    service: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> http::Request<Full<Bytes>> {
    let creds = Credentials::new(key, SECRET, None, None, "test");
    signed_as(creds, "/", service, headers, body)
}

fn json_as(key: &str, target: &str) -> http::Request<Full<Bytes>> {
    let headers = [
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", target),
    ];
    as_key(key, "fake", &headers, b"{}")
}

#[tokio::test]
async fn a_user_is_allowed_what_its_policy_allows() {
    let r = dispatch()
        .serve(json_as(USER_KEY, "Fake_20240101.Echo"))
        .await;
    assert_eq!(r.status(), 200, "{}", text(&r));
    assert_eq!(text(&r), format!("{{}}{USER_ARN}"));
}

#[tokio::test]
async fn remembered_allows_answer_the_same_as_evaluation_request_after_request() {
    // The same dispatch keeps the user's memo between requests: what was allowed stays
    // allowed, what was denied stays denied, in any order.
    let d = dispatch();
    for _ in 0..3 {
        let r = d.serve(json_as(USER_KEY, "Fake_20240101.Echo")).await;
        assert_eq!(r.status(), 200, "{}", text(&r));
        let r = d.serve(json_as(USER_KEY, "Fake_20240101.Fail")).await;
        assert_eq!(json_code(&r), "AccessDeniedException");
    }
}

#[tokio::test]
async fn a_user_is_denied_what_no_policy_allows_with_aws_message_and_the_handler_never_runs() {
    // `Fail` would answer a server fault if its handler ran.
    let r = dispatch()
        .serve(json_as(USER_KEY, "Fake_20240101.Fail"))
        .await;
    assert_eq!(
        (r.status().as_u16(), json_code(&r)),
        (400, "AccessDeniedException".to_owned())
    );
    let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
    assert_eq!(
        v["message"],
        "User: arn:aws:iam::1:user/alice is not authorized to perform: fake:Fail on resource: \
         arn:aws:fake::1:thing/t because no identity-based policy allows the fake:Fail action"
    );
}

#[tokio::test]
async fn an_explicit_deny_beats_an_allow() {
    let d = dispatch();
    let r = d.serve(json_as(DENIED_KEY, "Fake_20240101.Echo")).await;
    assert_eq!(json_code(&r), "AccessDeniedException");
    assert!(
        text(&r).contains("with an explicit deny in an identity-based policy"),
        "{}",
        text(&r)
    );
    let r = d.serve(json_as(DENIED_KEY, "Fake_20240101.Fail")).await;
    assert_eq!(
        (r.status().as_u16(), json_code(&r)),
        (500, "ServerException".to_owned())
    );
}

#[tokio::test]
async fn query_denials_are_access_denied_403_in_the_query_shape() {
    let form = b"Action=Ping&Version=2020-01-01";
    let headers = [(
        "content-type",
        "application/x-www-form-urlencoded; charset=utf-8",
    )];
    let r = dispatch()
        .serve(as_key(USER_KEY, "fakeq", &headers, form))
        .await;
    assert_eq!(r.status(), 403);
    assert!(
        text(&r).contains("<Type>Sender</Type><Code>AccessDenied</Code>"),
        "{}",
        text(&r)
    );
    assert!(
        text(&r).contains("User: arn:aws:iam::1:user/alice is not authorized to perform: fakeq:Ping on resource: *"),
        "{}",
        text(&r)
    );
    let r = dispatch()
        .serve(as_key(DENIED_KEY, "fakeq", &headers, form))
        .await;
    assert_eq!(r.status(), 200, "{}", text(&r));
}

#[tokio::test]
async fn the_peer_address_fills_aws_source_ip() {
    let d = dispatch();
    let from = |ip: [u8; 4]| {
        let mut req = json_as(USER_KEY, "Fake_20240101.Big");
        req.extensions_mut()
            .insert(PeerAddr(std::net::SocketAddr::from((ip, 40000))));
        req
    };
    assert_eq!(d.serve(from([10, 1, 2, 3])).await.status(), 200);
    let r = d.serve(from([192, 168, 1, 1])).await;
    assert_eq!(json_code(&r), "AccessDeniedException");
    let r = d.serve(json_as(USER_KEY, "Fake_20240101.Big")).await;
    assert_eq!(json_code(&r), "AccessDeniedException");
}

#[tokio::test]
async fn the_root_is_never_evaluated() {
    // The root key reaches `Fail`'s handler, which no policy allows.
    let r = dispatch().serve(json("Fake_20240101.Fail", b"{}")).await;
    assert_eq!(json_code(&r), "ServerException");
}

#[tokio::test]
async fn a_public_access_needs_no_policy() {
    // `Later` needs no permission: the user with no policy for it reaches its handler.
    let r = dispatch()
        .serve(json_as(USER_KEY, "Fake_20240101.Later"))
        .await;
    assert_eq!(json_code(&r), "UnknownOperationException", "{}", text(&r));
}

/// A body that must never be read: polling it fails the test.
struct Untouched;

impl http_body::Body for Untouched {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        panic!("the body was read before the request was authenticated")
    }
}

/// `req` with its body swapped for one that must not be read, declared `length` long.
fn unread(req: http::Request<Full<Bytes>>, length: u64) -> http::Request<Untouched> {
    let (mut parts, _) = req.into_parts();
    parts
        .headers
        .insert(http::header::CONTENT_LENGTH, length.into());
    http::Request::from_parts(parts, Untouched)
}

#[tokio::test]
async fn an_unknown_key_is_refused_before_the_body_is_read() {
    let creds = Credentials::new("AKIAUNKNOWN", SECRET, None, None, "test");
    let req = signed_as(
        creds,
        "/",
        "fake",
        &[
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "Fake_20240101.Big"),
        ],
        b"{}",
    );
    let r = dispatch().serve(unread(req, 1 << 40)).await;
    assert_eq!(r.status(), 400);
    assert_eq!(json_code(&r), "UnrecognizedClientException");
}

#[tokio::test]
async fn an_unsigned_target_or_content_type_is_refused_before_the_body_is_read() {
    // Signed for Echo's 64-byte limit without the target, then pointed at Big.
    let mut req = signed(
        "fake",
        &[("content-type", "application/x-amz-json-1.1")],
        b"{}",
    );
    req.headers_mut()
        .insert("x-amz-target", "Fake_20240101.Big".parse().unwrap());
    let r = dispatch().serve(unread(req, 4096)).await;
    assert_eq!(r.status(), 400);
    assert_eq!(json_code(&r), "InvalidSignatureException");
    assert!(
        text(&r).contains("'X-Amz-Target' must be a 'SignedHeader'"),
        "{}",
        text(&r)
    );
    let mut req = signed("fakeq", &[], b"Action=Ping&Version=2020-01-01");
    req.headers_mut().insert(
        "content-type",
        "application/x-www-form-urlencoded".parse().unwrap(),
    );
    let r = dispatch().serve(unread(req, 30)).await;
    // A query service reports a signature failure as SignatureDoesNotMatch, with 403.
    assert_eq!(r.status(), 403);
    assert!(text(&r).contains("SignatureDoesNotMatch"), "{}", text(&r));
    assert!(
        text(&r).contains("'Content-Type' must be a 'SignedHeader'"),
        "{}",
        text(&r)
    );
}

#[tokio::test]
async fn a_known_key_over_the_operations_limit_is_refused_without_reading_the_body() {
    let req = json("Fake_20240101.Echo", b"{}");
    let r = dispatch().serve(unread(req, 1 << 40)).await;
    assert_eq!(r.status(), 413);
    assert_eq!(json_code(&r), "SerializationException");
}

#[tokio::test]
async fn paths_not_in_normal_form_are_refused_even_when_signed_as_sent() {
    for path in ["/a/../", "//", "/./", "/%2e%2e/", "/service%2FFake"] {
        let req = signed_at(
            path,
            "fake",
            &[
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", "Fake_20240101.Echo"),
            ],
            b"{}",
        );
        let r = dispatch().serve(req).await;
        assert_eq!(r.status(), 400, "{path}");
        assert_eq!(json_code(&r), "InvalidURI", "{path}");
    }
}

#[test]
fn gzip_bodies_are_inflated_within_the_limit_and_other_encodings_refused() {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&[b'x'; 100]).unwrap();
    let packed = Bytes::from(gz.finish().unwrap());
    let mut h = http::HeaderMap::new();
    assert_eq!(decode_content(&h, packed.clone(), 10).unwrap(), packed);
    h.insert("content-encoding", http::HeaderValue::from_static("gzip"));
    assert_eq!(decode_content(&h, packed.clone(), 100).unwrap().len(), 100);
    assert_eq!(
        decode_content(&h, packed.clone(), 99).unwrap_err().status,
        413
    );
    assert_eq!(
        decode_content(&h, Bytes::from_static(b"not gzip"), 100)
            .unwrap_err()
            .code,
        "SerializationException"
    );
    h.insert("content-encoding", http::HeaderValue::from_static("br"));
    assert_eq!(decode_content(&h, packed, 100).unwrap_err().status, 415);
}
