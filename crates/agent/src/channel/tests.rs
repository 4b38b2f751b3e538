use super::*;
use std::sync::{Arc, Mutex};

use model::acs::{HeartbeatMessage, Task};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use wire::sigv4::{verify, SignedRequest};

const AKID: &str = "AKIDCHAN";
const SECRET: &str = "chan-secret";
const CLUSTER: &str = "arn:aws:ecs:us-east-1:123456789012:cluster/sim";
const INSTANCE: &str = "arn:aws:ecs:us-east-1:123456789012:container-instance/sim/0123abcd";

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

/// What the fake server saw on one connection.
#[derive(Debug, Default, Clone)]
struct Conn {
    verified: Option<Result<String, String>>,
    query: String,
    received: Vec<Frame>,
}

type Log = Arc<Mutex<Vec<Conn>>>;

/// The script a fake server plays on each accepted connection (index from 0).
#[derive(Clone, Copy)]
enum Script {
    /// Send a payload and a heartbeat, then keep reading until the client goes.
    PayloadAndHeartbeat,
    /// Session 0: payload then close; later sessions: payload again and keep reading.
    PayloadThenCloseOnce,
    /// Say nothing.
    Silent,
    /// Twenty payloads at once, more than either queue holds.
    Burst,
}

fn payload(message_id: &str) -> Frame {
    Frame::PayloadMessage(PayloadMessage {
        container_instance_arn: Some(INSTANCE.into()),
        cluster_arn: Some(CLUSTER.into()),
        tasks: vec![Task {
            arn: "arn:aws:ecs:us-east-1:123456789012:task/sim/t1".into(),
            desired_status: "RUNNING".into(),
            family: "f".into(),
            version: "1".into(),
            ..Task::default()
        }],
        generated_at: None,
        message_id: message_id.into(),
        seq_num: Some(1),
    })
}

async fn fake_acs(script: Script) -> (String, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let log: Log = Arc::default();
    let log2 = log.clone();
    tokio::spawn(async move {
        let mut index = 0usize;
        while let Ok((tcp, _)) = listener.accept().await {
            let log = log2.clone();
            let slot = {
                let mut l = log.lock().expect("lock");
                l.push(Conn::default());
                l.len() - 1
            };
            let this = index;
            index += 1;
            tokio::spawn(async move {
                let log_cb = log.clone();
                #[allow(clippy::result_large_err)] // tungstenite's callback signature.
                let callback = move |req: &Request, resp: Response| {
                    let signed = SignedRequest {
                        method: req.method().as_str(),
                        path: req.uri().path(),
                        query: req.uri().query(),
                        headers: req.headers(),
                        body: b"",
                    };
                    let verified = verify(
                        &signed,
                        &|k| (k == AKID).then(|| SECRET.to_owned()),
                        now_secs(),
                    )
                    .map(|v| format!("{}/{}", v.access_key_id, v.service))
                    .map_err(|e| e.to_string());
                    let mut l = log_cb.lock().expect("lock");
                    l[slot].verified = Some(verified);
                    l[slot].query = req.uri().query().unwrap_or_default().to_owned();
                    Ok(resp)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
                    return;
                };
                let send = |f: Frame| Message::text(serde_json::to_string(&f).expect("json"));
                match script {
                    Script::PayloadAndHeartbeat => {
                        let _ = ws.send(send(payload("p1"))).await;
                        let hb = Frame::HeartbeatMessage(HeartbeatMessage {
                            healthy: true,
                            message_id: "h1".into(),
                        });
                        let _ = ws.send(send(hb)).await;
                        let _ = ws
                            .send(Message::text(
                                r#"{"type":"TaskManifestMessage","message":{}}"#,
                            ))
                            .await;
                    }
                    Script::PayloadThenCloseOnce if this == 0 => {
                        let _ = ws.send(send(payload("p1"))).await;
                        let _ = ws.close(None).await;
                        return;
                    }
                    Script::PayloadThenCloseOnce => {
                        let _ = ws.send(send(payload("p2"))).await;
                    }
                    Script::Silent => {}
                    Script::Burst => {
                        for i in 0..20 {
                            let _ = ws.send(send(payload(&format!("b{i}")))).await;
                        }
                    }
                }
                while let Some(Ok(msg)) = ws.next().await {
                    if let Message::Text(t) = msg {
                        if let Ok(f) = serde_json::from_str::<Frame>(t.as_str()) {
                            log.lock().expect("lock")[slot].received.push(f);
                        }
                    }
                }
            });
        }
    });
    (format!("http://{addr}/"), log)
}

fn config(endpoint: &str) -> ChannelConfig {
    let mut c = ChannelConfig::new(
        endpoint,
        CLUSTER,
        INSTANCE,
        Credentials::new(AKID, SECRET, None),
        "us-east-1",
    );
    c.connect_timeout = Duration::from_secs(2);
    c.backoff_min = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(100);
    c
}

async fn eventually(what: &str, check: impl Fn() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn upgrade_is_signed_and_carries_the_acs_query() {
    let (endpoint, log) = fake_acs(Script::PayloadAndHeartbeat).await;
    let (_shutdown_tx, shutdown) = watch::channel(false);
    let (channel, mut deliveries) = Channel::spawn(config(&endpoint), shutdown);
    let d = tokio::time::timeout(Duration::from_secs(5), deliveries.recv())
        .await
        .expect("in time")
        .expect("delivery");
    assert_eq!(d.payload.message_id, "p1");
    assert!(channel.is_connected());
    let conn = log.lock().expect("lock")[0].clone();
    assert_eq!(conn.verified, Some(Ok("AKIDCHAN/ecs".to_owned())));
    assert!(
        conn.query
            .contains("clusterArn=arn%3Aaws%3Aecs%3Aus-east-1%3A123456789012%3Acluster%2Fsim"),
        "{}",
        conn.query
    );
    assert!(
        conn.query.contains("containerInstanceArn=arn%3Aaws%3Aecs"),
        "{}",
        conn.query
    );
    assert!(
        conn.query.contains("seqNum=1&protocolVersion=2"),
        "{}",
        conn.query
    );
    assert!(
        conn.query.ends_with("sendCredentials=false"),
        "{}",
        conn.query
    );
}

#[tokio::test]
async fn heartbeats_are_answered_and_acks_follow_processing() {
    let (endpoint, log) = fake_acs(Script::PayloadAndHeartbeat).await;
    let (_shutdown_tx, shutdown) = watch::channel(false);
    let (_channel, mut deliveries) = Channel::spawn(config(&endpoint), shutdown);
    let d = tokio::time::timeout(Duration::from_secs(5), deliveries.recv())
        .await
        .expect("in time")
        .expect("delivery");
    eventually("heartbeat ack", || {
        log.lock().expect("lock")[0]
            .received
            .iter()
            .any(|f| matches!(f, Frame::HeartbeatAckRequest(h) if h.message_id == "h1"))
    })
    .await;
    // Not processed yet: no ack.
    assert!(!log.lock().expect("lock")[0]
        .received
        .iter()
        .any(|f| matches!(f, Frame::AckRequest(_))));
    d.ack();
    eventually("payload ack", || {
        log.lock().expect("lock")[0].received.iter().any(|f| {
            matches!(f, Frame::AckRequest(a) if a.message_id == "p1"
                && a.cluster.as_deref() == Some(CLUSTER)
                && a.container_instance.as_deref() == Some(INSTANCE))
        })
    })
    .await;
}

#[tokio::test]
async fn reconnects_after_close_and_drops_acks_of_the_old_session() {
    let (endpoint, log) = fake_acs(Script::PayloadThenCloseOnce).await;
    let (_shutdown_tx, shutdown) = watch::channel(false);
    let (_channel, mut deliveries) = Channel::spawn(config(&endpoint), shutdown);
    let first = deliveries.recv().await.expect("first");
    assert_eq!(first.payload.message_id, "p1");
    let second = tokio::time::timeout(Duration::from_secs(5), deliveries.recv())
        .await
        .expect("in time")
        .expect("second");
    assert_eq!(second.payload.message_id, "p2");
    first.ack();
    second.ack();
    eventually("ack on the new session", || {
        log.lock().expect("lock").get(1).is_some_and(|c| {
            c.received
                .iter()
                .any(|f| matches!(f, Frame::AckRequest(a) if a.message_id == "p2"))
        })
    })
    .await;
    let l = log.lock().expect("lock");
    assert!(!l[1]
        .received
        .iter()
        .any(|f| matches!(f, Frame::AckRequest(a) if a.message_id == "p1")));
}

/// An address nothing listens on (a port bound, then released).
async fn dead_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}/")
}

#[tokio::test]
async fn a_dead_replica_fails_over_to_the_next_endpoint() {
    let (live, log) = fake_acs(Script::PayloadAndHeartbeat).await;
    let mut c = config(&dead_endpoint().await);
    c.fallback_endpoints = vec![live];
    let (_shutdown_tx, shutdown) = watch::channel(false);
    let (_channel, mut deliveries) = Channel::spawn(c, shutdown);
    let delivered = tokio::time::timeout(Duration::from_secs(5), deliveries.recv())
        .await
        .expect("a delivery from the live replica in time")
        .expect("delivery");
    assert_eq!(delivered.payload.message_id, "p1");
    assert_eq!(
        log.lock().expect("lock").len(),
        1,
        "one session, on the live replica"
    );
}

#[tokio::test]
async fn a_burst_of_payloads_is_delivered_and_acked_without_stalling() {
    let (endpoint, log) = fake_acs(Script::Burst).await;
    let (_shutdown_tx, shutdown) = watch::channel(false);
    let (_channel, mut deliveries) = Channel::spawn(config(&endpoint), shutdown);
    for i in 0..20 {
        let d = tokio::time::timeout(Duration::from_secs(5), deliveries.recv())
            .await
            .expect("in time")
            .expect("delivery");
        assert_eq!(d.payload.message_id, format!("b{i}"));
        d.ack();
    }
    eventually("twenty acks", || {
        log.lock().expect("lock")[0]
            .received
            .iter()
            .filter(|f| matches!(f, Frame::AckRequest(_)))
            .count()
            == 20
    })
    .await;
}

#[tokio::test]
async fn silence_past_the_idle_timeout_means_reconnect() {
    let (endpoint, log) = fake_acs(Script::Silent).await;
    let (_shutdown_tx, shutdown) = watch::channel(false);
    let mut c = config(&endpoint);
    c.idle_timeout = Duration::from_millis(150);
    c.idle_jitter = Duration::ZERO;
    let (_channel, _deliveries) = Channel::spawn(c, shutdown);
    eventually("a second connection", || {
        log.lock().expect("lock").len() >= 2
    })
    .await;
}

#[tokio::test]
async fn state_follows_the_connection_and_shutdown_closes() {
    // Nothing listens on this port at first.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let (shutdown_tx, shutdown) = watch::channel(false);
    let (channel, _deliveries) =
        Channel::spawn(config(&format!("http://127.0.0.1:{port}")), shutdown);
    let state = channel.state();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(*state.borrow(), ChannelState::Connecting);
    shutdown_tx.send_replace(true);
    tokio::time::timeout(Duration::from_secs(2), channel.join())
        .await
        .expect("stops");
    assert_eq!(*state.borrow(), ChannelState::Closed);
}

#[test]
fn channel_url_switches_scheme_and_encodes_arns() {
    let c = config("http://10.0.0.1:4747");
    let url = compute_channel_url(&c).expect("url");
    assert!(
        url.starts_with("ws://10.0.0.1:4747/ws?clusterArn=arn%3Aaws%3A"),
        "{url}"
    );
    assert!(compute_channel_url(&config("https://x/"))
        .expect("tls")
        .starts_with("wss://x/ws?"));
    assert!(compute_channel_url(&config("ftp://x/")).is_err());
}
