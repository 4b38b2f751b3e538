//! TCP listeners end to end: bytes pass through to a target chosen per connection.

mod common;

use std::collections::HashSet;

use common::*;
use model::lb::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn nlb(targets: Vec<Target>, health: HealthCheck) -> Config {
    Config {
        revision: 1,
        load_balancers: vec![LoadBalancer {
            arn: "loadbalancer/net/db".into(),
            name: "db".into(),
            kind: LoadBalancerKind::Network,
            bind_address: "127.0.0.1".parse().expect("ip"),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            listeners: vec![Listener {
                arn: "listener/net/db/1".into(),
                port: 0,
                protocol: ListenerProtocol::Tcp,
                rules: vec![],
                default_actions: vec![forward("tg")],
            }],
        }],
        target_groups: vec![TargetGroup {
            protocol: TargetProtocol::Tcp,
            ..group("tg", targets, Algorithm::RoundRobin, health)
        }],
    }
}

async fn roundtrip(addr: std::net::SocketAddr, payload: &[u8]) -> String {
    tokio::time::timeout(LIMIT, async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(payload).await.expect("write");
        let mut buf = vec![0u8; 256];
        let n = s.read(&mut buf).await.expect("read");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    })
    .await
    .expect("echo in time")
}

#[tokio::test]
async fn tcp_listener_passes_bytes_through_and_spreads_connections() {
    let x = TcpEcho::start("x").await;
    let y = TcpEcho::start("y").await;
    let lb = Running::start(nlb(vec![x.target(), y.target()], health_check(false))).await;
    let addr = lb.addr("listener/net/db/1");
    let mut who = HashSet::new();
    for _ in 0..4 {
        let reply = roundtrip(addr, b"ping").await;
        let (name, rest) = reply.split_once(':').expect("name prefix");
        assert_eq!(rest, "ping");
        who.insert(name.to_owned());
    }
    assert_eq!(who, HashSet::from(["x".to_owned(), "y".to_owned()]));
}

#[tokio::test]
async fn tcp_health_check_connects_to_the_target() {
    let x = TcpEcho::start("x").await;
    let check = HealthCheck {
        protocol: TargetProtocol::Tcp,
        ..health_check(true)
    };
    let lb = Running::start(nlb(vec![x.target()], check)).await;
    lb.wait_health("tg", &x.target().key, |h| *h == Health::Healthy)
        .await;
    assert_eq!(roundtrip(lb.addr("listener/net/db/1"), b"hi").await, "x:hi");
}
