use super::*;
use std::sync::Mutex;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use model::ecs::shapes::{ContainerStateChange, NetworkBinding, Resource, TransportProtocol};
use wire::sigv4::{verify, SignedRequest};

const AKID: &str = "AKIDTEST";
const SECRET: &str = "secret-key";

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

/// What the fake server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    target: String,
    verified: Result<String, String>,
    body: serde_json::Value,
}

/// A fake ECS endpoint: verifies each request's signature with the server's own
/// verifier, records it, and answers with `respond(target)`.
async fn fake_ecs(respond: fn(&str) -> (u16, String)) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let seen = seen2.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.expect("body").to_bytes();
                        let signed = SignedRequest {
                            method: parts.method.as_str(),
                            path: parts.uri.path(),
                            query: parts.uri.query(),
                            headers: &parts.headers,
                            body: &body,
                        };
                        let verified = verify(
                            &signed,
                            &|k| (k == AKID).then(|| SECRET.to_owned()),
                            now_secs(),
                        )
                        .map(|v| format!("{}/{}/{}", v.access_key_id, v.region, v.service))
                        .map_err(|e| e.to_string());
                        let target = parts
                            .headers
                            .get("x-amz-target")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        let (status, text) = respond(&target);
                        seen.lock().expect("lock").push(Seen {
                            target,
                            verified,
                            body: serde_json::from_slice(&body).unwrap_or_default(),
                        });
                        Ok::<_, std::convert::Infallible>(
                            http::Response::builder()
                                .status(status)
                                .header("content-type", "application/x-amz-json-1.1")
                                .body(Full::new(Bytes::from(text)))
                                .expect("response"),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    (format!("http://{addr}"), seen)
}

fn client(endpoint: &str) -> ApiClient {
    let mut config = ApiConfig::new(endpoint, "us-east-1", Credentials::new(AKID, SECRET, None));
    config.timeout = Duration::from_secs(2);
    ApiClient::new(config).expect("client")
}

fn canned(target: &str) -> (u16, String) {
    match target.rsplit('.').next().unwrap_or_default() {
        "RegisterContainerInstance" => (
            200,
            r#"{"containerInstance":{"containerInstanceArn":"arn:aws:ecs:us-east-1:1:container-instance/c/abc","attributes":[{"name":"ecs.availability-zone","value":"us-east-1a"}]}}"#.into(),
        ),
        "DiscoverPollEndpoint" => (200, r#"{"endpoint":"http://127.0.0.1:1/","telemetryEndpoint":"http://127.0.0.1:1/"}"#.into()),
        "SubmitTaskStateChange" => (200, r#"{"acknowledgment":"ACK"}"#.into()),
        "SubmitContainerStateChange" => (
            400,
            r#"{"__type":"com.amazonaws.ecs.v20141113#ClusterNotFoundException","message":"Cluster not found."}"#.into(),
        ),
        "CreateCluster" => (400, r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.into()),
        _ => (500, r#"{"__type":"ServerException","message":"boom"}"#.into()),
    }
}

#[tokio::test]
async fn requests_are_signed_so_the_servers_verifier_accepts_them() {
    let (endpoint, seen) = fake_ecs(canned).await;
    let api = client(&endpoint);
    let request = RegisterContainerInstanceRequest {
        cluster: Some("c".into()),
        total_resources: Some(vec![Resource {
            name: Some("CPU".into()),
            type_: Some("INTEGER".into()),
            integer_value: Some(4096),
            ..Resource::default()
        }]),
        ..RegisterContainerInstanceRequest::default()
    };
    let out = api
        .register_container_instance(&request)
        .await
        .expect("registers");
    let arn = out
        .container_instance
        .and_then(|ci| ci.container_instance_arn);
    assert_eq!(
        arn.as_deref(),
        Some("arn:aws:ecs:us-east-1:1:container-instance/c/abc")
    );
    let poll = api
        .discover_poll_endpoint(&DiscoverPollEndpointRequest::default())
        .await
        .expect("discovers");
    assert_eq!(poll.endpoint.as_deref(), Some("http://127.0.0.1:1/"));

    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].target,
        "AmazonEC2ContainerServiceV20141113.RegisterContainerInstance"
    );
    assert_eq!(seen[0].verified.as_deref(), Ok("AKIDTEST/us-east-1/ecs"));
    assert_eq!(seen[0].body["totalResources"][0]["integerValue"], 4096);
    assert_eq!(seen[1].verified.as_deref(), Ok("AKIDTEST/us-east-1/ecs"));
}

#[tokio::test]
async fn session_token_is_signed_and_verifies() {
    let (endpoint, seen) = fake_ecs(canned).await;
    let mut config = ApiConfig::new(
        &endpoint,
        "eu-west-1",
        Credentials::new(AKID, SECRET, Some("tok")),
    );
    config.timeout = Duration::from_secs(2);
    let api = ApiClient::new(config).expect("client");
    api.submit_task_state_change(&SubmitTaskStateChangeRequest::default())
        .await
        .expect("submits");
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen[0].verified.as_deref(), Ok("AKIDTEST/eu-west-1/ecs"));
}

#[tokio::test]
async fn aws_errors_carry_type_and_message_and_are_classified() {
    let (endpoint, _seen) = fake_ecs(canned).await;
    let api = client(&endpoint);
    let err = api
        .submit_container_state_change(&SubmitContainerStateChangeRequest::default())
        .await
        .expect_err("fails");
    assert_eq!(err.aws_type(), Some("ClusterNotFoundException"));
    assert_eq!(err.aws_message(), Some("Cluster not found."));
    assert!(err.is_cluster_not_found());
    assert!(!err.is_transient());

    let err = api
        .create_cluster(&CreateClusterRequest::default())
        .await
        .expect_err("throttled");
    assert_eq!(err.aws_type(), Some("ThrottlingException"));
    assert!(err.is_transient());

    let err = api
        .call::<_, serde_json::Value>("ListClusters", &serde_json::json!({}))
        .await
        .expect_err("5xx");
    assert_eq!(err.aws_type(), Some("ServerException"));
    assert!(err.is_transient());
}

#[tokio::test]
async fn connection_refused_is_transient() {
    // Bind then drop to get a port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let api = client(&format!("http://127.0.0.1:{port}"));
    let err = api
        .submit_task_state_change(&SubmitTaskStateChangeRequest::default())
        .await
        .expect_err("refused");
    assert!(matches!(err, ApiError::Transport { .. }), "{err}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_as_transient() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let _hold = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            conns.push(tcp);
        }
    });
    let mut config = ApiConfig::new(
        format!("http://{addr}"),
        "us-east-1",
        Credentials::new(AKID, SECRET, None),
    );
    config.timeout = Duration::from_millis(200);
    let api = ApiClient::new(config).expect("client");
    let err = api
        .submit_task_state_change(&SubmitTaskStateChangeRequest::default())
        .await
        .expect_err("times out");
    assert!(matches!(err, ApiError::Timeout { .. }), "{err}");
    assert!(err.is_transient());
}

#[test]
fn error_types_lose_their_namespace_and_suffix() {
    assert_eq!(
        short_error_type("com.amazonaws.ecs#ClientException"),
        "ClientException"
    );
    assert_eq!(
        short_error_type("InvalidParameterException:http://internal"),
        "InvalidParameterException"
    );
    assert_eq!(short_error_type("ServerException"), "ServerException");
}

#[test]
fn errors_without_a_json_body_fall_back_on_the_header() {
    let e = parse_error("X", 400, Some("AccessDeniedException"), b"not json");
    assert_eq!(e.aws_type(), Some("AccessDeniedException"));
    assert!(!e.is_transient());
    let e = parse_error("X", 503, None, b"");
    assert!(e.is_transient());
}

#[test]
fn https_endpoints_are_accepted_and_other_schemes_refused_with_a_reason() {
    let creds = || Credentials::new(AKID, SECRET, None);
    ApiClient::new(ApiConfig::new("https://x:4747", "us-east-1", creds())).expect("https");
    let err = ApiClient::new(ApiConfig::new("ftp://x", "us-east-1", creds())).expect_err("ftp");
    assert!(err.to_string().contains("http or https"), "{err}");
}

#[test]
fn state_change_shapes_round_trip_with_aws_member_names() {
    let req = SubmitTaskStateChangeRequest {
        cluster: Some("c".into()),
        task: Some("arn:t".into()),
        status: Some("RUNNING".into()),
        containers: Some(vec![ContainerStateChange {
            container_name: Some("web".into()),
            runtime_id: Some("sim-1".into()),
            status: Some("RUNNING".into()),
            network_bindings: Some(vec![NetworkBinding {
                bind_ip: Some("0.0.0.0".into()),
                container_port: Some(80),
                host_port: Some(49153),
                protocol: Some(TransportProtocol::Tcp),
                ..NetworkBinding::default()
            }]),
            ..ContainerStateChange::default()
        }]),
        pull_started_at: Some(1.5),
        ..SubmitTaskStateChangeRequest::default()
    };
    let v = serde_json::to_value(&req).expect("json");
    assert_eq!(v["containers"][0]["containerName"], "web");
    assert_eq!(
        v["containers"][0]["networkBindings"][0]["bindIP"],
        "0.0.0.0"
    );
    assert_eq!(v["containers"][0]["networkBindings"][0]["protocol"], "tcp");
    let back: SubmitTaskStateChangeRequest = serde_json::from_value(v).expect("parses");
    assert_eq!(back, req);
}

/// With a dead replica first: the call that cannot reach it fails as transient (the
/// caller retries), and the retry goes to the live replica, signed for its host.
#[tokio::test]
async fn a_call_that_cannot_reach_a_replica_moves_the_client_to_the_next() {
    let (live, seen) = fake_ecs(canned).await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", l.local_addr().expect("addr"))
    };
    let mut config = ApiConfig::new(&dead, "us-east-1", Credentials::new(AKID, SECRET, None));
    config.timeout = Duration::from_secs(2);
    config.fallback_endpoints = vec![live.clone()];
    let api = ApiClient::new(config).expect("client");
    let request = SubmitTaskStateChangeRequest::default();
    let first = api.submit_task_state_change(&request).await;
    assert!(
        first.as_ref().is_err_and(ApiError::is_transient),
        "{first:?}"
    );
    let again = api
        .submit_task_state_change(&request)
        .await
        .expect("the retry reaches the live replica");
    assert_eq!(again.acknowledgment.as_deref(), Some("ACK"));
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.len(), 1);
    assert!(seen[0].verified.is_ok(), "{:?}", seen[0].verified);
    assert!(
        live.contains(api.host()),
        "{} is now the current host",
        api.host()
    );
}
