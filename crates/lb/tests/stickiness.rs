//! `lb_cookie` stickiness end to end, on both HTTP paths: the fast path (plain HTTP/1.1
//! requests) and hyper (HTTP/1.0 here, which the fast path hands over). A response sets
//! `AWSALB` and `AWSALBCORS`; a request bringing the cookie back sticks to its target
//! until that target drains; a group without stickiness sets no cookie.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use common::*;
use model::lb::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TEN_MINUTES: Duration = Duration::from_secs(600);

/// Which of the data plane's two HTTP implementations serves the requests.
#[derive(Clone, Copy, Debug)]
enum Path {
    /// Plain HTTP/1.1 GETs: the fast path.
    Fast,
    /// HTTP/1.0 GETs, each on its own connection: hyper.
    Hyper,
}

/// What a client learns from one response.
#[derive(Debug)]
struct Answer {
    backend: String,
    set_cookies: Vec<String>,
}

impl Answer {
    /// The value of the `AWSALB` cookie the response set.
    fn token(&self) -> String {
        self.cookie("AWSALB").unwrap_or_default()
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies.iter().find_map(|c| {
            let value = c.strip_prefix(name)?.strip_prefix('=')?;
            Some(value.split(';').next().unwrap_or("").to_owned())
        })
    }
}

/// The part of a token that names the target (the rest is its expiry).
fn target_of(token: &str) -> &str {
    token.get(..16).unwrap_or(token)
}

async fn send(path: Path, addr: SocketAddr, cookie: Option<&str>) -> Answer {
    match path {
        Path::Fast => {
            let headers: Vec<(&str, &str)> = cookie.map(|c| ("cookie", c)).into_iter().collect();
            let reply = get(addr, "/", &headers).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            Answer {
                backend: reply.header("x-backend").to_owned(),
                set_cookies: reply
                    .headers
                    .get_all("set-cookie")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .map(str::to_owned)
                    .collect(),
            }
        }
        Path::Hyper => http_1_0_get(addr, cookie).await,
    }
}

/// One HTTP/1.0 request (which the fast path leaves to hyper), read until the load
/// balancer closes the connection.
async fn http_1_0_get(addr: SocketAddr, cookie: Option<&str>) -> Answer {
    let mut request = "GET / HTTP/1.0\r\nHost: app\r\n".to_owned();
    if let Some(c) = cookie {
        request.push_str(&format!("Cookie: {c}\r\n"));
    }
    request.push_str("\r\n");
    let raw = tokio::time::timeout(LIMIT, async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read");
        raw
    })
    .await
    .expect("response in time");
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let parsed = response.parse(&raw).expect("a response");
    assert!(parsed.is_complete(), "{}", String::from_utf8_lossy(&raw));
    assert_eq!(
        response.code,
        Some(200),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    let values = |name: &str| -> Vec<String> {
        response
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
            .collect()
    };
    Answer {
        backend: values("x-backend").into_iter().next().unwrap_or_default(),
        set_cookies: values("set-cookie"),
    }
}

fn config(targets: Vec<Target>, stickiness: Option<Duration>) -> Config {
    alb(
        vec![],
        vec![forward("tg")],
        vec![TargetGroup {
            stickiness,
            ..group("tg", targets, Algorithm::RoundRobin, health_check(false))
        }],
    )
}

/// Checks both cookies of a sticky response: the same token, expiring `TEN_MINUTES`
/// from now, with ALB's attributes.
fn assert_alb_cookies(answer: &Answer) {
    let token = answer.token();
    assert_eq!(token.len(), 32, "{answer:?}");
    assert_eq!(answer.set_cookies.len(), 2, "{answer:?}");
    let (alb, cors) = (&answer.set_cookies[0], &answer.set_cookies[1]);
    assert!(alb.ends_with("; Path=/"), "{alb}");
    assert_eq!(
        cors,
        &alb.replacen("AWSALB=", "AWSALBCORS=", 1)
            .replace("; Path=/", "; Path=/; SameSite=None")
    );
    let expires = alb
        .split("; ")
        .find_map(|a| a.strip_prefix("Expires="))
        .expect("an Expires attribute");
    let expires = httpdate::parse_http_date(expires).expect("an IMF-fixdate");
    let left = expires
        .duration_since(SystemTime::now())
        .expect("expires in the future");
    assert!(
        left > TEN_MINUTES - Duration::from_secs(30) && left <= TEN_MINUTES,
        "{left:?}"
    );
}

async fn a_cookie_keeps_a_client_on_its_target_until_it_drains(path: Path) {
    let backends = [
        HttpBackend::start("a").await,
        HttpBackend::start("b").await,
        HttpBackend::start("c").await,
    ];
    let targets: Vec<Target> = backends.iter().map(HttpBackend::target).collect();
    let mut lb = Running::start(config(targets.clone(), Some(TEN_MINUTES))).await;
    let addr = lb.addr(LISTENER);

    let first = send(path, addr, None).await;
    assert_alb_cookies(&first);
    let (home, token) = (first.backend.clone(), first.token());
    for cookie in [
        format!("AWSALB={token}"),
        format!("theme=dark; AWSALBCORS={token}"),
    ] {
        for i in 0..20 {
            let again = send(path, addr, Some(&cookie)).await;
            assert_eq!(again.backend, home, "request {i} with {cookie}");
            assert_eq!(target_of(&again.token()), target_of(&token), "refreshed");
            assert_alb_cookies(&again);
        }
    }

    // Without the cookie: round robin, each response naming its own target.
    let mut spread = std::collections::HashMap::new();
    let mut named = std::collections::HashSet::new();
    for _ in 0..6 {
        let fresh = send(path, addr, None).await;
        named.insert(target_of(&fresh.token()).to_owned());
        *spread.entry(fresh.backend).or_insert(0) += 1;
    }
    assert!(spread.values().all(|n| *n == 2), "{spread:?}");
    assert_eq!(named.len(), 3, "one token per target");

    // Once the target drains, its cookie is ignored: the request goes elsewhere and the
    // client is given a cookie for its new target, which then sticks.
    let mut draining = targets.clone();
    for t in &mut draining {
        t.draining = t.key.id == home;
    }
    lb.update(config(draining, Some(TEN_MINUTES))).await;
    let moved = send(path, addr, Some(&format!("AWSALB={token}"))).await;
    assert_ne!(moved.backend, home);
    assert_ne!(target_of(&moved.token()), target_of(&token));
    assert_alb_cookies(&moved);
    for _ in 0..5 {
        let again = send(path, addr, Some(&format!("AWSALB={}", moved.token()))).await;
        assert_eq!(again.backend, moved.backend);
    }
}

async fn a_group_without_stickiness_sets_no_cookie(path: Path) {
    let backends = [HttpBackend::start("a").await, HttpBackend::start("b").await];
    let targets: Vec<Target> = backends.iter().map(HttpBackend::target).collect();
    let sticky = Running::start(config(targets.clone(), Some(TEN_MINUTES))).await;
    let token = send(path, sticky.addr(LISTENER), None).await.token();
    drop(sticky);

    let lb = Running::start(config(targets, None)).await;
    let addr = lb.addr(LISTENER);
    let mut seen = std::collections::HashMap::new();
    for _ in 0..4 {
        let answer = send(path, addr, Some(&format!("AWSALB={token}"))).await;
        assert!(answer.set_cookies.is_empty(), "{answer:?}");
        *seen.entry(answer.backend).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 2, "a cookie binds nothing when off: {seen:?}");
}

#[tokio::test]
async fn fast_path_a_cookie_keeps_a_client_on_its_target_until_it_drains() {
    a_cookie_keeps_a_client_on_its_target_until_it_drains(Path::Fast).await;
}

#[tokio::test]
async fn hyper_path_a_cookie_keeps_a_client_on_its_target_until_it_drains() {
    a_cookie_keeps_a_client_on_its_target_until_it_drains(Path::Hyper).await;
}

#[tokio::test]
async fn fast_path_a_group_without_stickiness_sets_no_cookie() {
    a_group_without_stickiness_sets_no_cookie(Path::Fast).await;
}

#[tokio::test]
async fn hyper_path_a_group_without_stickiness_sets_no_cookie() {
    a_group_without_stickiness_sets_no_cookie(Path::Hyper).await;
}
