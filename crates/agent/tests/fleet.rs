//! Hollow instances against a fake control plane: a signed-API fake and a channel fake on
//! two ports. Checks registration, one report per task and status even when payloads are
//! re-sent, and acks after reporting.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent::hollow::{run_fleet, Counters, FleetConfig};
use agent::{ApiClient, ApiConfig, Credentials};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use model::acs::{Container, Frame, PayloadMessage, PortMapping, Task};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

#[derive(Default)]
struct Fake {
    registrations: Vec<serde_json::Value>,
    reports: Vec<serde_json::Value>,
    acks: Vec<String>,
    connections: usize,
}

type Shared = Arc<Mutex<Fake>>;

fn task(arn: &str, desired: &str) -> Task {
    Task {
        arn: arn.into(),
        desired_status: desired.into(),
        family: "web".into(),
        version: "1".into(),
        containers: vec![Container {
            name: "app".into(),
            essential: true,
            port_mappings: vec![PortMapping {
                container_port: Some(80),
                host_port: Some(0),
                ..PortMapping::default()
            }],
            ..Container::default()
        }],
        ..Task::default()
    }
}

fn frame(f: &Frame) -> Message {
    Message::text(serde_json::to_string(f).expect("json"))
}

async fn fake_acs(shared: Shared) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let shared = shared.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                shared.lock().expect("lock").connections += 1;
                let t = "arn:aws:ecs:us-east-1:123456789012:task/sim/t-1";
                // The same RUNNING task twice (at-least-once delivery), then its stop.
                for (id, desired) in [("m1", "RUNNING"), ("m2", "RUNNING")] {
                    let p = PayloadMessage {
                        tasks: vec![task(t, desired)],
                        message_id: id.into(),
                        ..PayloadMessage::default()
                    };
                    let _ = ws.send(frame(&Frame::PayloadMessage(p))).await;
                }
                let mut stop_sent = false;
                while let Some(Ok(msg)) = ws.next().await {
                    let Message::Text(text) = msg else { continue };
                    let Ok(Frame::AckRequest(ack)) = serde_json::from_str::<Frame>(text.as_str())
                    else {
                        continue;
                    };
                    let acked = ack.message_id.clone();
                    shared.lock().expect("lock").acks.push(ack.message_id);
                    if acked == "m2" && !stop_sent {
                        stop_sent = true;
                        let p = PayloadMessage {
                            tasks: vec![task(t, "STOPPED")],
                            message_id: "m3".into(),
                            ..PayloadMessage::default()
                        };
                        let _ = ws.send(frame(&Frame::PayloadMessage(p))).await;
                    }
                }
            });
        }
    });
    format!("http://{addr}/")
}

async fn fake_ecs(shared: Shared, acs_endpoint: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let next_id = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let shared = shared.clone();
            let acs = acs_endpoint.clone();
            let next_id = next_id.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let shared = shared.clone();
                    let acs = acs.clone();
                    let next_id = next_id.clone();
                    async move {
                        let target = req
                            .headers()
                            .get("x-amz-target")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        let signed = req.headers().contains_key("authorization");
                        let body = req.into_body().collect().await.expect("body").to_bytes();
                        let body: serde_json::Value =
                            serde_json::from_slice(&body).unwrap_or_default();
                        let op = target.rsplit('.').next().unwrap_or_default().to_owned();
                        let answer = match (signed, op.as_str()) {
                            (false, _) => {
                                serde_json::json!({"__type": "MissingAuthenticationTokenException"})
                            }
                            (true, "RegisterContainerInstance") => {
                                shared.lock().expect("lock").registrations.push(body);
                                let n = next_id.fetch_add(1, Ordering::Relaxed);
                                serde_json::json!({"containerInstance": {"containerInstanceArn": format!("arn:aws:ecs:us-east-1:123456789012:container-instance/sim/{n:032x}")}})
                            }
                            (true, "DiscoverPollEndpoint") => serde_json::json!({"endpoint": acs}),
                            (true, "SubmitTaskStateChange") => {
                                shared.lock().expect("lock").reports.push(body);
                                serde_json::json!({"acknowledgment": "ACK"})
                            }
                            _ => serde_json::json!({"__type": "UnknownOperationException"}),
                        };
                        let status = if answer.get("__type").is_some() {
                            400
                        } else {
                            200
                        };
                        Ok::<_, std::convert::Infallible>(
                            http::Response::builder()
                                .status(status)
                                .body(Full::new(Bytes::from(answer.to_string())))
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
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hollow_instances_register_report_each_status_once_and_ack() {
    let shared: Shared = Arc::default();
    let acs = fake_acs(shared.clone()).await;
    let ecs = fake_ecs(shared.clone(), acs).await;
    let api = ApiClient::new(ApiConfig::new(
        ecs,
        "us-east-1",
        Credentials::new("AKID", "secret", None),
    ))
    .expect("client");
    let config = FleetConfig {
        api,
        spread: Vec::new(),
        cluster: "sim".into(),
        instances: 3,
        zones: vec!["us-east-1a".into(), "us-east-1b".into()],
        cpu: 4096,
        memory: 16384,
        instance_type: "m5.xlarge".into(),
        registration_concurrency: 2,
        max_attempts: 3,
        idle_timeout: Duration::from_secs(60),
    };
    let counters = Arc::new(Counters::default());
    let (shutdown_tx, shutdown) = watch::channel(false);
    let fleet = tokio::spawn(run_fleet(config, counters.clone(), shutdown));

    let mut done = false;
    for _ in 0..250 {
        if shared.lock().expect("lock").acks.len() >= 9 {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(done, "each of 3 instances acks m1, m2 and m3");
    let snap = counters.snapshot();
    assert_eq!(snap.registered, 3);
    assert_eq!(snap.connected, 3);
    assert_eq!(snap.errors, 0);

    {
        let fake = shared.lock().expect("lock");
        let zones: Vec<String> = fake
            .registrations
            .iter()
            .map(|r| {
                r["attributes"]
                    .as_array()
                    .expect("attrs")
                    .iter()
                    .find(|a| a["name"] == "ecs.availability-zone")
                    .and_then(|a| a["value"].as_str())
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        assert_eq!(zones.iter().filter(|z| *z == "us-east-1a").count(), 2);
        assert_eq!(zones.iter().filter(|z| *z == "us-east-1b").count(), 1);
        // Three instances each saw one task run then stop: 3 RUNNING + 3 STOPPED reports,
        // the duplicate RUNNING payload produced none.
        let running = fake
            .reports
            .iter()
            .filter(|r| r["status"] == "RUNNING")
            .count();
        let stopped = fake
            .reports
            .iter()
            .filter(|r| r["status"] == "STOPPED")
            .count();
        assert_eq!((running, stopped), (3, 3));
        let r = fake
            .reports
            .iter()
            .find(|r| r["status"] == "RUNNING")
            .expect("running");
        assert_eq!(
            r["cluster"],
            "arn:aws:ecs:us-east-1:123456789012:cluster/sim"
        );
        assert_eq!(r["containers"][0]["networkBindings"][0]["hostPort"], 49153);
    }
    assert_eq!(counters.snapshot().running_tasks, 0);

    shutdown_tx.send_replace(true);
    tokio::time::timeout(Duration::from_secs(5), fleet)
        .await
        .expect("fleet stops")
        .expect("joins");
    assert_eq!(counters.snapshot().connected, 0);
}
