//! HTTP listeners end to end: balancing, rules, fixed responses, redirects, forwarding
//! headers, error statuses and live config changes, over real sockets on 127.0.0.1.

mod common;

use std::time::Duration;

use common::*;
use model::lb::*;

#[tokio::test]
async fn round_robin_spreads_evenly_across_three_backends() {
    let backends = [
        HttpBackend::start("a").await,
        HttpBackend::start("b").await,
        HttpBackend::start("c").await,
    ];
    let targets = backends.iter().map(HttpBackend::target).collect();
    let config = alb(
        vec![],
        vec![forward("tg")],
        vec![group(
            "tg",
            targets,
            Algorithm::RoundRobin,
            health_check(false),
        )],
    );
    let lb = Running::start(config).await;
    let seen = tally(lb.addr(LISTENER), "/", 30).await;
    for b in &backends {
        assert_eq!(seen.get(&b.name), Some(&10), "{seen:?}");
        // One client connection is served by one worker, which reuses its upstream
        // keep-alive connection to each target.
        assert_eq!(
            b.accepted.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "{}",
            b.name
        );
    }
}

#[tokio::test]
async fn least_outstanding_sends_new_requests_away_from_a_busy_backend() {
    let backends = [
        HttpBackend::start("a").await,
        HttpBackend::start("b").await,
        HttpBackend::start("c").await,
    ];
    let targets = backends.iter().map(HttpBackend::target).collect();
    let config = alb(
        vec![],
        vec![forward("tg")],
        vec![group(
            "tg",
            targets,
            Algorithm::LeastOutstandingRequests,
            health_check(false),
        )],
    );
    let lb = Running::start(config).await;
    let addr = lb.addr(LISTENER);
    let slow = tokio::spawn(async move { get(addr, "/slow?ms=1500", &[]).await });
    let busy = tokio::time::timeout(LIMIT, async {
        loop {
            if let Some(b) = backends
                .iter()
                .find(|b| b.active.load(std::sync::atomic::Ordering::SeqCst) == 1)
            {
                return b.name.clone();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("slow request reached a backend");
    let seen = tally(addr, "/", 12).await;
    assert_eq!(
        seen.get(&busy),
        None,
        "busy backend {busy} got requests: {seen:?}"
    );
    assert_eq!(seen.values().sum::<usize>(), 12);
    let slow = slow.await.expect("slow request task");
    assert_eq!(
        (slow.status, slow.header("x-backend")),
        (200, busy.as_str())
    );
}

fn rule(priority: u32, conditions: Vec<Condition>, actions: Vec<Action>) -> Rule {
    Rule {
        arn: format!("rule/{priority}"),
        priority,
        conditions,
        actions,
    }
}

#[tokio::test]
async fn rules_route_by_path_host_and_header_in_priority_order() {
    let api = HttpBackend::start("api").await;
    let web = HttpBackend::start("web").await;
    let config = alb(
        vec![
            rule(
                5,
                vec![Condition::PathPattern(vec!["/api/*".into()])],
                vec![forward("api")],
            ),
            rule(
                2,
                vec![
                    Condition::PathPattern(vec!["/api/admin*".into()]),
                    Condition::HttpHeader {
                        name: "x-role".into(),
                        values: vec!["ADMIN".into()],
                    },
                ],
                vec![fixed(403, "admins go elsewhere")],
            ),
            rule(
                10,
                vec![Condition::HostHeader(vec!["*.EXAMPLE.com".into()])],
                vec![forward("web")],
            ),
        ],
        vec![fixed(404, "no route")],
        vec![
            group(
                "api",
                vec![api.target()],
                Algorithm::RoundRobin,
                health_check(false),
            ),
            group(
                "web",
                vec![web.target()],
                Algorithm::RoundRobin,
                health_check(false),
            ),
        ],
    );
    let lb = Running::start(config).await;
    let mut c = Client::connect(lb.addr(LISTENER)).await;
    let r = c.get("/api/users?x=1", &[]).await;
    assert_eq!((r.status, r.header("x-backend")), (200, "api"));
    assert_eq!(
        r.header("x-seen-path"),
        "/api/users?x=1",
        "path and query reach the target"
    );
    let r = c.get("/api/admin/x", &[("x-role", "admin")]).await;
    assert_eq!((r.status, r.body.as_str()), (403, "admins go elsewhere"));
    let r = c.get("/API/users", &[]).await;
    assert_eq!(
        r.header("x-backend"),
        "web",
        "paths are case-sensitive; host matched instead"
    );
    assert_eq!(
        r.header("x-seen-host"),
        "app.example.com",
        "Host is preserved"
    );
}

#[tokio::test]
async fn fixed_response_has_status_type_and_body() {
    let config = alb(vec![], vec![fixed(418, "short and stout")], vec![]);
    let lb = Running::start(config).await;
    let r = get(lb.addr(LISTENER), "/anything", &[]).await;
    assert_eq!(r.status, 418);
    assert_eq!(r.header("content-type"), "text/plain");
    assert_eq!(r.body, "short and stout");
}

#[tokio::test]
async fn redirect_substitutes_the_original_request() {
    let redirect = Action::Redirect {
        protocol: "HTTPS".into(),
        host: "#{host}".into(),
        port: "443".into(),
        path: "/v2/#{path}".into(),
        query: "#{query}".into(),
        status_code: 301,
    };
    let lb = Running::start(alb(vec![], vec![redirect], vec![])).await;
    let r = get(lb.addr(LISTENER), "/old/page?id=7", &[]).await;
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location"),
        "https://app.example.com/v2/old/page?id=7"
    );
}

#[tokio::test]
async fn forwarding_headers_are_added_and_appended() {
    let b = HttpBackend::start("a").await;
    let config = alb(
        vec![],
        vec![forward("tg")],
        vec![group(
            "tg",
            vec![b.target()],
            Algorithm::RoundRobin,
            health_check(false),
        )],
    );
    let lb = Running::start(config).await;
    let addr = lb.addr(LISTENER);
    let r = get(addr, "/", &[("x-forwarded-proto", "bogus")]).await;
    assert_eq!(r.header("x-seen-x-forwarded-for"), "127.0.0.1");
    assert_eq!(r.header("x-seen-x-forwarded-proto"), "http");
    assert_eq!(r.header("x-seen-x-forwarded-port"), addr.port().to_string());
    let r = get(addr, "/", &[("x-forwarded-for", "203.0.113.9")]).await;
    assert_eq!(r.header("x-seen-x-forwarded-for"), "203.0.113.9, 127.0.0.1");
}

#[tokio::test]
async fn empty_group_is_503_dead_target_is_502_slow_target_is_504() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_port = dead.local_addr().expect("addr").port();
    drop(dead);
    let slow = HttpBackend::start("slow").await;
    let target = |port| Target {
        key: TargetKey {
            id: "t".into(),
            port,
        },
        host: "127.0.0.1".into(),
        draining: false,
    };
    let config = alb(
        vec![
            rule(
                1,
                vec![Condition::PathPattern(vec!["/empty".into()])],
                vec![forward("empty")],
            ),
            rule(
                2,
                vec![Condition::PathPattern(vec!["/dead".into()])],
                vec![forward("dead")],
            ),
        ],
        vec![forward("slow")],
        vec![
            group("empty", vec![], Algorithm::RoundRobin, health_check(false)),
            group(
                "dead",
                vec![target(dead_port)],
                Algorithm::RoundRobin,
                health_check(false),
            ),
            group(
                "slow",
                vec![slow.target()],
                Algorithm::RoundRobin,
                health_check(false),
            ),
        ],
    );
    let mut options = lb::Options::default();
    options.timeouts.response = Duration::from_millis(300);
    let lb = Running::start_with(config, options).await;
    let mut c = Client::connect(lb.addr(LISTENER)).await;
    assert_eq!(c.get("/empty", &[]).await.status, 503);
    assert_eq!(c.get("/dead", &[]).await.status, 502);
    assert_eq!(c.get("/slow?ms=2000", &[]).await.status, 504);
    assert_eq!(
        c.get("/slow?ms=1", &[]).await.status,
        200,
        "the client connection survives"
    );
}

#[tokio::test]
async fn config_change_applies_live_on_an_open_keep_alive_connection() {
    let a = HttpBackend::start("a").await;
    let b = HttpBackend::start("b").await;
    let groups = vec![
        group(
            "a",
            vec![a.target()],
            Algorithm::RoundRobin,
            health_check(false),
        ),
        group(
            "b",
            vec![b.target()],
            Algorithm::RoundRobin,
            health_check(false),
        ),
    ];
    let mut lb = Running::start(alb(vec![], vec![forward("a")], groups.clone())).await;
    let addr = lb.addr(LISTENER);
    let mut c = Client::connect(addr).await;
    assert_eq!(c.get("/", &[]).await.header("x-backend"), "a");
    let with_rule = alb(
        vec![rule(
            1,
            vec![Condition::PathPattern(vec!["/b*".into()])],
            vec![forward("b")],
        )],
        vec![fixed(200, "v2")],
        groups,
    );
    lb.update(with_rule).await;
    assert_eq!(lb.addr(LISTENER), addr, "the listener was not rebound");
    assert_eq!(c.get("/", &[]).await.body, "v2");
    assert_eq!(c.get("/bee", &[]).await.header("x-backend"), "b");
    assert!(!c.task.is_finished(), "same client connection throughout");
}

#[tokio::test]
async fn listeners_are_added_and_removed_live_and_bind_failures_reported() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_port = taken.local_addr().expect("addr").port();
    let mut config = alb(vec![], vec![fixed(200, "one")], vec![]);
    let mut lb = Running::start(config.clone()).await;
    let first = lb.addr(LISTENER);
    let listeners = &mut config.load_balancers[0].listeners;
    listeners.push(Listener {
        arn: "listener/two".into(),
        port: 0,
        protocol: ListenerProtocol::Http,
        rules: vec![],
        default_actions: vec![fixed(200, "two")],
    });
    listeners.push(Listener {
        arn: "listener/taken".into(),
        port: taken_port,
        protocol: ListenerProtocol::Http,
        rules: vec![],
        default_actions: vec![fixed(200, "never")],
    });
    lb.update(config.clone()).await;
    let status = lb.status.borrow().clone();
    assert_eq!(status.bind_failures.len(), 1, "{status:?}");
    assert_eq!(status.bind_failures[0].listener_arn, "listener/taken");
    assert_eq!(get(first, "/", &[]).await.body, "one");
    assert_eq!(get(lb.addr("listener/two"), "/", &[]).await.body, "two");
    config.load_balancers[0].listeners.remove(0);
    lb.update(config).await;
    assert!(lb.status.borrow().addr_of(LISTENER).is_none());
    assert!(
        tokio::net::TcpStream::connect(first).await.is_err(),
        "removed listener is closed"
    );
    drop(taken);
}
