//! The standalone role's configuration must equal the server's in-process one: both are
//! built here from the same ELBv2 state, one through `Elbv2::lb_config`, the other through
//! the public API's XML (with one-item pages, so every `NextMarker` is followed).

use super::*;
use model::lb::{Action, Algorithm, Condition};
use std::collections::HashMap;

/// `elbv2::Elbv2` in memory, answering what the server's HTTP layer would.
struct Local {
    elb: elbv2::Elbv2,
    /// Asks for one-item pages on the paginated operations.
    tiny_pages: bool,
}

#[async_trait::async_trait]
impl QueryApi for Local {
    async fn call(
        &self,
        operation: &'static str,
        params: &[(&str, &str)],
    ) -> Result<String, LbRoleError> {
        let mut params = params.to_vec();
        let paginated = matches!(
            operation,
            "DescribeLoadBalancers"
                | "DescribeListeners"
                | "DescribeRules"
                | "DescribeTargetGroups"
        );
        if self.tiny_pages && paginated {
            params.push(("PageSize", "1"));
        }
        let form = encode_form(operation, &params);
        let q = wire::query::parse_form(form.as_bytes()).expect("our own form parses");
        self.elb.handle(&q, "rid").await.map_err(|e| {
            let aws = e.to_aws();
            LbRoleError::Service {
                operation,
                status: aws.status,
                code: aws.code,
                message: aws.message,
            }
        })
    }

    async fn instance_addresses(&self) -> Result<HashMap<String, String>, LbRoleError> {
        // What ECS would say: the agent of i-0fed registered 10.1.2.3; i-0abc's agent
        // registered no address.
        Ok(HashMap::from([
            ("i-0fed".to_owned(), "10.1.2.3".to_owned()),
            ("i-0999".to_owned(), "10.9.9.9".to_owned()),
        ]))
    }
}

fn local(dir: &tempfile::TempDir) -> Local {
    let store = store::SqliteStore::open(store::SqliteConfig::new(dir.path().join("state.db")))
        .expect("store opens");
    let scope = model::ecs::arn::ArnScope {
        region: "us-east-1".into(),
        account_id: "000000000000".into(),
    };
    Local {
        elb: elbv2::Elbv2::new(Arc::new(store), scope, None),
        tiny_pages: true,
    }
}

impl Local {
    async fn ok(&self, operation: &'static str, params: &[(&str, &str)]) -> String {
        match self.call(operation, params).await {
            Ok(xml) => xml,
            Err(e) => panic!("{operation}: {e}"),
        }
    }

    async fn field(&self, operation: &'static str, params: &[(&str, &str)], name: &str) -> String {
        let xml = self.ok(operation, params).await;
        let (open, close) = (format!("<{name}>"), format!("</{name}>"));
        let start = xml.find(&open).expect("field present") + open.len();
        let end = xml[start..].find(&close).expect("field closed") + start;
        xml[start..end].to_owned()
    }

    async fn tg(&self, name: &str, protocol: &str, target_type: &str) -> String {
        let p = [
            ("Name", name),
            ("Protocol", protocol),
            ("Port", "8080"),
            ("TargetType", target_type),
        ];
        self.field("CreateTargetGroup", &p, "TargetGroupArn").await
    }
}

/// Every feature the data plane serves, in two load balancers and three groups.
async fn build_world(api: &Local) {
    let web = api
        .field("CreateLoadBalancer", &[("Name", "web")], "LoadBalancerArn")
        .await;
    let nlb = api
        .field(
            "CreateLoadBalancer",
            &[("Name", "tcp"), ("Type", "network")],
            "LoadBalancerArn",
        )
        .await;
    api.ok(
        "ModifyLoadBalancerAttributes",
        &[
            ("LoadBalancerArn", &web),
            ("Attributes.member.1.Key", "idle_timeout.timeout_seconds"),
            ("Attributes.member.1.Value", "120"),
        ],
    )
    .await;
    let app = api.tg("app", "HTTP", "instance").await;
    let canary = api.tg("canary", "HTTP", "ip").await;
    let raw = api.tg("raw", "TCP", "ip").await;
    api.ok(
        "ModifyTargetGroup",
        &[
            ("TargetGroupArn", &app),
            ("HealthCheckPath", "/healthz"),
            ("HealthCheckIntervalSeconds", "7"),
            ("Matcher.HttpCode", "200-204"),
        ],
    )
    .await;
    api.ok(
        "ModifyTargetGroupAttributes",
        &[
            ("TargetGroupArn", &app),
            ("Attributes.member.1.Key", "stickiness.enabled"),
            ("Attributes.member.1.Value", "true"),
            (
                "Attributes.member.2.Key",
                "stickiness.lb_cookie.duration_seconds",
            ),
            ("Attributes.member.2.Value", "600"),
        ],
    )
    .await;
    api.ok(
        "ModifyTargetGroupAttributes",
        &[
            ("TargetGroupArn", &canary),
            ("Attributes.member.1.Key", "load_balancing.algorithm.type"),
            ("Attributes.member.1.Value", "least_outstanding_requests"),
            (
                "Attributes.member.2.Key",
                "deregistration_delay.timeout_seconds",
            ),
            ("Attributes.member.2.Value", "45"),
        ],
    )
    .await;
    let listener = api
        .field(
            "CreateListener",
            &[
                ("LoadBalancerArn", &web),
                ("Port", "18080"),
                ("DefaultActions.member.1.Type", "forward"),
                ("DefaultActions.member.1.TargetGroupArn", &app),
            ],
            "ListenerArn",
        )
        .await;
    api.ok(
        "CreateListener",
        &[
            ("LoadBalancerArn", &nlb),
            ("Port", "18081"),
            ("Protocol", "TCP"),
            ("DefaultActions.member.1.Type", "forward"),
            ("DefaultActions.member.1.TargetGroupArn", &raw),
        ],
    )
    .await;
    let g = "Actions.member.1.ForwardConfig.TargetGroups.member";
    let (g1_arn, g1_w, g2_arn, g2_w) = (
        format!("{g}.1.TargetGroupArn"),
        format!("{g}.1.Weight"),
        format!("{g}.2.TargetGroupArn"),
        format!("{g}.2.Weight"),
    );
    api.ok(
        "CreateRule",
        &[
            ("ListenerArn", &listener),
            ("Priority", "20"),
            ("Conditions.member.1.Field", "path-pattern"),
            (
                "Conditions.member.1.PathPatternConfig.Values.member.1",
                "/api/*",
            ),
            ("Conditions.member.2.Field", "http-header"),
            (
                "Conditions.member.2.HttpHeaderConfig.HttpHeaderName",
                "X-Canary",
            ),
            (
                "Conditions.member.2.HttpHeaderConfig.Values.member.1",
                "y?s",
            ),
            ("Conditions.member.3.Field", "query-string"),
            (
                "Conditions.member.3.QueryStringConfig.Values.member.1.Key",
                "v",
            ),
            (
                "Conditions.member.3.QueryStringConfig.Values.member.1.Value",
                "2 & 3",
            ),
            (
                "Conditions.member.3.QueryStringConfig.Values.member.2.Value",
                "beta",
            ),
            ("Actions.member.1.Type", "forward"),
            (&g1_arn, &app),
            (&g1_w, "3"),
            (&g2_arn, &canary),
            (&g2_w, "1"),
        ],
    )
    .await;
    api.ok(
        "CreateRule",
        &[
            ("ListenerArn", &listener),
            ("Priority", "5"),
            ("Conditions.member.1.Field", "host-header"),
            (
                "Conditions.member.1.HostHeaderConfig.Values.member.1",
                "*.example.com",
            ),
            ("Conditions.member.2.Field", "http-request-method"),
            (
                "Conditions.member.2.HttpRequestMethodConfig.Values.member.1",
                "GET",
            ),
            ("Actions.member.1.Type", "fixed-response"),
            ("Actions.member.1.FixedResponseConfig.StatusCode", "418"),
            (
                "Actions.member.1.FixedResponseConfig.ContentType",
                "text/plain",
            ),
            (
                "Actions.member.1.FixedResponseConfig.MessageBody",
                "<short & stout>",
            ),
        ],
    )
    .await;
    api.ok(
        "CreateRule",
        &[
            ("ListenerArn", &listener),
            ("Priority", "9"),
            ("Conditions.member.1.Field", "source-ip"),
            (
                "Conditions.member.1.SourceIpConfig.Values.member.1",
                "10.0.0.0/8",
            ),
            ("Actions.member.1.Type", "redirect"),
            ("Actions.member.1.RedirectConfig.StatusCode", "HTTP_301"),
            ("Actions.member.1.RedirectConfig.Host", "new.example.com"),
        ],
    )
    .await;
    let register = |arn: String, ids: &'static [(&'static str, &'static str)]| async move {
        let mut p = vec![("TargetGroupArn".to_owned(), arn)];
        for (i, (id, port)) in ids.iter().enumerate() {
            p.push((format!("Targets.member.{}.Id", i + 1), (*id).to_owned()));
            p.push((format!("Targets.member.{}.Port", i + 1), (*port).to_owned()));
        }
        let p: Vec<(&str, &str)> = p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        api.ok("RegisterTargets", &p).await;
    };
    register(app.clone(), &[("i-0abc", "32768"), ("i-0def", "32769")]).await;
    // A service's task, registered by ECS with its agent's address.
    let key = TargetKey {
        id: "i-0fed".into(),
        port: 32770,
    };
    api.elb
        .register_targets_at(&app, &[(key, Some("10.1.2.3".into()))])
        .await
        .expect("registered at an address");
    register(
        canary.clone(),
        &[("10.0.0.7", "9000"), ("10.0.0.8", "9000")],
    )
    .await;
    register(raw, &[("127.0.0.1", "5432")]).await;
    // In use by a listener, so it drains for 45 s instead of leaving at once.
    api.ok(
        "DeregisterTargets",
        &[
            ("TargetGroupArn", &canary),
            ("Targets.member.1.Id", "10.0.0.8"),
            ("Targets.member.1.Port", "9000"),
        ],
    )
    .await;
}

/// Order-insensitive form: the data plane keys everything by ARN.
fn normalized(mut c: Config) -> Config {
    c.revision = 0;
    c.load_balancers.sort_by(|a, b| a.arn.cmp(&b.arn));
    c.target_groups.sort_by(|a, b| a.arn.cmp(&b.arn));
    for tg in &mut c.target_groups {
        tg.targets.sort_by(|a, b| a.key.cmp(&b.key));
    }
    c
}

#[tokio::test]
async fn config_read_through_the_api_equals_the_servers_own_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = local(&dir);
    build_world(&api).await;
    let expected = normalized(api.elb.lb_config().await.expect("in-process config"));
    let fetched = normalized(fetch_config(&api, None).await.expect("fetched"));
    assert_eq!(fetched, expected);
    // Spot checks, so the equality above cannot pass on two empty configs.
    assert_eq!(fetched.load_balancers.len(), 2);
    let web = fetched
        .load_balancers
        .iter()
        .find(|l| l.name == "web")
        .expect("web");
    assert_eq!(web.idle_timeout, std::time::Duration::from_secs(120));
    let rules = &web.listeners[0].rules;
    assert_eq!(
        rules.iter().map(|r| r.priority).collect::<Vec<_>>(),
        [5, 9, 20]
    );
    assert!(
        matches!(&rules[0].actions[0], Action::FixedResponse { status_code: 418, message_body: Some(b), .. } if b == "<short & stout>")
    );
    assert!(matches!(&rules[2].actions[0], Action::Forward(groups) if groups.len() == 2));
    assert!(rules[2].conditions.iter().any(
        |c| matches!(c, Condition::QueryString(p) if p.contains(&(Some("v".into()), "2 & 3".into())))
    ));
    let canary = fetched
        .target_groups
        .iter()
        .find(|t| t.name == "canary")
        .expect("canary");
    assert_eq!(canary.algorithm, Algorithm::LeastOutstandingRequests);
    assert_eq!(canary.deregistration_delay_seconds, 45);
    assert_eq!(canary.stickiness, None);
    let app = fetched
        .target_groups
        .iter()
        .find(|t| t.name == "app")
        .expect("app");
    assert_eq!(app.stickiness, Some(std::time::Duration::from_secs(600)));
    assert_eq!(
        app.targets
            .iter()
            .map(|t| (t.key.id.as_str(), t.host.as_str()))
            .collect::<Vec<_>>(),
        [
            ("i-0abc", "127.0.0.1"),
            ("i-0def", "127.0.0.1"),
            ("i-0fed", "10.1.2.3")
        ],
        "instance targets are reached where their agent said"
    );
    assert_eq!(
        canary
            .targets
            .iter()
            .map(|t| (t.key.id.as_str(), t.draining))
            .collect::<Vec<_>>(),
        [("10.0.0.7", false), ("10.0.0.8", true)]
    );
}

#[tokio::test]
async fn bind_override_replaces_every_dns_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut api = local(&dir);
    api.tiny_pages = false;
    build_world(&api).await;
    let addr: IpAddr = "0.0.0.0".parse().expect("ip");
    let fetched = fetch_config(&api, Some(addr)).await.expect("fetched");
    assert!(fetched
        .load_balancers
        .iter()
        .all(|l| l.bind_address == addr));
}

/// Target group `tg`, HTTP, checks on, round robin, with `targets`.
fn sample_group(targets: Vec<model::lb::Target>) -> model::lb::TargetGroup {
    model::lb::TargetGroup {
        arn: "tg".into(),
        name: "tg".into(),
        protocol: model::lb::TargetProtocol::Http,
        health_check: model::lb::HealthCheck {
            enabled: true,
            protocol: model::lb::TargetProtocol::Http,
            port: None,
            path: "/".into(),
            interval_seconds: 30,
            timeout_seconds: 5,
            healthy_threshold: 5,
            unhealthy_threshold: 2,
            matcher: model::lb::Matcher(vec![200..=399]),
        },
        algorithm: Algorithm::RoundRobin,
        deregistration_delay_seconds: 300,
        stickiness: None,
        targets,
    }
}

#[test]
fn offer_publishes_only_changes_under_increasing_revisions() {
    let source = PolledSource::new();
    let rx = source.config();
    assert!(
        !source.offer(Config::default()),
        "same as the initial empty one"
    );
    let mut one = Config::default();
    one.target_groups.push(sample_group(vec![]));
    assert!(source.offer(one.clone()));
    assert_eq!(rx.borrow().revision, 1);
    assert!(!source.offer(one), "unchanged");
    assert!(source.offer(Config::default()));
    assert_eq!(rx.borrow().revision, 2);
}

#[test]
fn form_encoding_round_trips_through_the_servers_parser() {
    let form = encode_form("DescribeRules", &[("ListenerArn", "arn:a/b c&d=e+f~ü")]);
    let q = wire::query::parse_form(form.as_bytes()).expect("parses");
    assert_eq!(q.action(), Some("DescribeRules"));
    assert_eq!(q.version(), Some(elbv2::API_VERSION));
    assert_eq!(q.get("ListenerArn"), Some("arn:a/b c&d=e+f~ü"));
}

#[test]
fn aws_errors_are_read_from_the_query_error_document() {
    let body = "<ErrorResponse xmlns=\"x\"><Error><Type>Sender</Type><Code>LoadBalancerNotFound</Code>\
                <Message>One or more load balancers not found</Message></Error><RequestId>r</RequestId></ErrorResponse>";
    match describe::parse_error("DescribeListeners", 400, body) {
        LbRoleError::Service {
            code,
            message,
            status,
            ..
        } => {
            assert_eq!((code.as_str(), status), ("LoadBalancerNotFound", 400));
            assert_eq!(message, "One or more load balancers not found");
        }
        other => panic!("unexpected {other:?}"),
    }
    match describe::parse_error("DescribeListeners", 502, "Bad Gateway") {
        LbRoleError::Service { code, message, .. } => {
            assert_eq!((code.as_str(), message.as_str()), ("", "Bad Gateway"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn poll_interval_accepts_milliseconds_seconds_and_minutes() {
    assert_eq!(parse_interval("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_interval("2s"), Ok(Duration::from_secs(2)));
    assert_eq!(parse_interval("1m"), Ok(Duration::from_secs(60)));
    assert_eq!(parse_interval("3"), Ok(Duration::from_secs(3)));
    assert!(parse_interval("10ms").is_err());
    assert!(parse_interval("soon").is_err());
}

#[test]
fn health_verdicts_are_kept_per_target_and_dropped_with_the_target() {
    let source = PolledSource::new();
    let key = |port| model::lb::TargetKey {
        id: "10.0.0.1".into(),
        port,
    };
    let with_targets = |ports: &[u16]| {
        let mut config = Config::default();
        config.target_groups.push(sample_group(
            ports
                .iter()
                .map(|&p| model::lb::Target {
                    key: key(p),
                    host: "10.0.0.1".into(),
                    draining: false,
                })
                .collect(),
        ));
        config
    };
    assert!(source.offer(with_targets(&[80, 81])));
    let report = |port, health| HealthReport {
        target_group_arn: "tg".into(),
        target: key(port),
        health,
    };
    source.report_health(vec![
        report(80, Health::Initial),
        report(81, Health::Healthy),
    ]);
    source.report_health(vec![report(80, Health::Healthy)]);
    let states = |s: &PolledSource| -> Vec<(u16, String)> {
        s.current_reports()
            .reports
            .into_iter()
            .map(|r| (r.port, r.state))
            .collect()
    };
    assert_eq!(
        states(&source),
        vec![(80, "healthy".to_owned()), (81, "healthy".to_owned())],
        "the latest verdict per target"
    );
    assert!(source.offer(with_targets(&[81])));
    assert_eq!(states(&source), vec![(81, "healthy".to_owned())]);
}
