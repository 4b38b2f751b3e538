//! Service-level tests: requests through `Elbv2::handle` over a real SQLite store, with an
//! injected clock, checking the XML botocore reads and the data plane's snapshot.

use super::*;
use std::sync::atomic::{AtomicI64, Ordering};

/// 2024-11-26T10:00:00Z.
const T0: i64 = 1_732_615_200_000;

struct Fixture {
    elb: Elbv2,
    now: Arc<AtomicI64>,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store::SqliteStore::open(store::SqliteConfig::new(dir.path().join("state.db")))
        .expect("store opens");
    let scope = ArnScope {
        region: "us-east-1".into(),
        account_id: "000000000000".into(),
    };
    let now = Arc::new(AtomicI64::new(T0));
    let clock_now = now.clone();
    let resolver: Resolver = Arc::new(|id: &str| (id == "i-0abc").then(|| "10.1.2.3".to_owned()));
    let elb = Elbv2::new(Arc::new(store), scope, Some(resolver))
        .with_clock(Arc::new(move || clock_now.load(Ordering::SeqCst)));
    Fixture {
        elb,
        now,
        _dir: dir,
    }
}

/// The text of the first `<name>` element.
fn first(xml: &str, name: &str) -> String {
    all(xml, name).into_iter().next().unwrap_or_default()
}

/// The texts of every `<name>` element, in order.
fn all(xml: &str, name: &str) -> Vec<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(after[..j].to_owned());
        rest = &after[j + close.len()..];
    }
    out
}

impl Fixture {
    fn advance(&self, ms: i64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }

    async fn call(&self, action: &str, params: &[(&str, &str)]) -> Result<String, wire::AwsError> {
        let mut body = format!("Action={action}&Version=2015-12-01");
        for (k, v) in params {
            body.push_str(&format!("&{k}={}", encode(v)));
        }
        let q = wire::query::parse_form(body.as_bytes()).expect("form");
        self.elb.handle(&q, "rid-1").await.map_err(|e| e.to_aws())
    }

    async fn ok(&self, action: &str, params: &[(&str, &str)]) -> String {
        match self.call(action, params).await {
            Ok(x) => x,
            Err(e) => panic!("{action} failed: {e}"),
        }
    }

    async fn code(&self, action: &str, params: &[(&str, &str)]) -> String {
        match self.call(action, params).await {
            Ok(x) => panic!("{action} succeeded unexpectedly: {x}"),
            Err(e) => {
                assert_eq!(e.status, 400, "{e}");
                e.code
            }
        }
    }

    async fn lb(&self, name: &str, kind: &str) -> String {
        first(
            &self
                .ok("CreateLoadBalancer", &[("Name", name), ("Type", kind)])
                .await,
            "LoadBalancerArn",
        )
    }

    async fn tg(&self, name: &str, protocol: &str, target_type: &str) -> String {
        first(
            &self
                .ok(
                    "CreateTargetGroup",
                    &[
                        ("Name", name),
                        ("Protocol", protocol),
                        ("Port", "8080"),
                        ("TargetType", target_type),
                    ],
                )
                .await,
            "TargetGroupArn",
        )
    }

    async fn listener(&self, lb: &str, port: &str, tg: &str) -> String {
        first(
            &self
                .ok(
                    "CreateListener",
                    &[
                        ("LoadBalancerArn", lb),
                        ("Port", port),
                        ("DefaultActions.member.1.Type", "forward"),
                        ("DefaultActions.member.1.TargetGroupArn", tg),
                    ],
                )
                .await,
            "ListenerArn",
        )
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn create_load_balancer_answers_in_the_query_envelope() {
    let f = fixture();
    let xml = f
        .ok(
            "CreateLoadBalancer",
            &[("Name", "web"), ("Subnets.member.1", "subnet-1")],
        )
        .await;
    assert!(xml.starts_with("<CreateLoadBalancerResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\"><CreateLoadBalancerResult>"), "{xml}");
    assert!(xml.ends_with("<ResponseMetadata><RequestId>rid-1</RequestId></ResponseMetadata></CreateLoadBalancerResponse>"));
    let arn = first(&xml, "LoadBalancerArn");
    assert!(
        arn.starts_with(
            "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/"
        ),
        "{arn}"
    );
    assert_eq!(arn.rsplit('/').next().map(str::len), Some(16));
    assert_eq!(first(&xml, "DNSName"), "127.0.0.1");
    assert_eq!(first(&xml, "Code"), "active");
    assert_eq!(first(&xml, "ZoneName"), "us-east-1a");
    assert_eq!(first(&xml, "SubnetId"), "subnet-1");
    assert_eq!(first(&xml, "CreatedTime"), "2024-11-26T10:00:00.000Z");
    // Same settings: the same load balancer; different settings: a duplicate.
    let again = f
        .ok(
            "CreateLoadBalancer",
            &[("Name", "web"), ("Subnets.member.1", "subnet-1")],
        )
        .await;
    assert_eq!(first(&again, "LoadBalancerArn"), arn);
    assert_eq!(
        f.code(
            "CreateLoadBalancer",
            &[("Name", "web"), ("Type", "network")]
        )
        .await,
        "DuplicateLoadBalancerName"
    );
    for bad in [
        "-web",
        "internal-x",
        "a_b",
        "x123456789012345678901234567890123",
    ] {
        assert_eq!(
            f.code("CreateLoadBalancer", &[("Name", bad)]).await,
            "ValidationError",
            "{bad}"
        );
    }
    assert_eq!(f.code("CreateLoadBalancer", &[]).await, "ValidationError");
    assert_eq!(f.code("Frobnicate", &[]).await, "InvalidAction");
}

#[tokio::test]
async fn describe_and_delete_load_balancers() {
    let f = fixture();
    let web = f.lb("web", "application").await;
    let net = f.lb("net", "network").await;
    let xml = f.ok("DescribeLoadBalancers", &[]).await;
    assert_eq!(all(&xml, "LoadBalancerName"), ["net", "web"]);
    let xml = f
        .ok("DescribeLoadBalancers", &[("Names.member.1", "net")])
        .await;
    assert_eq!(first(&xml, "Type"), "network");
    assert!(first(&xml, "LoadBalancerArn").contains(":loadbalancer/net/net/"));
    assert_eq!(
        f.code("DescribeLoadBalancers", &[("Names.member.1", "nope")])
            .await,
        "LoadBalancerNotFound"
    );
    let paged = f.ok("DescribeLoadBalancers", &[("PageSize", "1")]).await;
    let marker = first(&paged, "NextMarker");
    assert!(!marker.is_empty());
    let rest = f
        .ok(
            "DescribeLoadBalancers",
            &[("PageSize", "1"), ("Marker", &marker)],
        )
        .await;
    assert_eq!(all(&rest, "LoadBalancerName"), ["web"]);
    assert!(!rest.contains("NextMarker"));
    f.ok(
        "ModifyLoadBalancerAttributes",
        &[
            ("LoadBalancerArn", &web),
            ("Attributes.member.1.Key", "deletion_protection.enabled"),
            ("Attributes.member.1.Value", "true"),
        ],
    )
    .await;
    assert_eq!(
        f.code("DeleteLoadBalancer", &[("LoadBalancerArn", &web)])
            .await,
        "OperationNotPermitted"
    );
    // An attribute the data plane does not act on takes only its default.
    for (k, v) in [
        ("access_logs.s3.enabled", "true"),
        ("routing.http2.enabled", "false"),
    ] {
        let got = f
            .code(
                "ModifyLoadBalancerAttributes",
                &[
                    ("LoadBalancerArn", &web),
                    ("Attributes.member.1.Key", k),
                    ("Attributes.member.1.Value", v),
                ],
            )
            .await;
        assert_eq!(got, "ValidationError", "{k}={v}");
    }
    f.ok(
        "ModifyLoadBalancerAttributes",
        &[
            ("LoadBalancerArn", &web),
            ("Attributes.member.1.Key", "routing.http2.enabled"),
            ("Attributes.member.1.Value", "true"),
        ],
    )
    .await;
    f.ok("DeleteLoadBalancer", &[("LoadBalancerArn", &net)])
        .await;
    // Deleting again succeeds, as in AWS.
    f.ok("DeleteLoadBalancer", &[("LoadBalancerArn", &net)])
        .await;
    assert_eq!(
        f.code(
            "DescribeLoadBalancers",
            &[("LoadBalancerArns.member.1", &net)]
        )
        .await,
        "LoadBalancerNotFound"
    );
    assert_eq!(
        f.code("DeleteLoadBalancer", &[("LoadBalancerArn", "bogus")])
            .await,
        "ValidationError"
    );
}

#[tokio::test]
async fn target_groups_get_aws_defaults_and_range_checks() {
    let f = fixture();
    let xml = f
        .ok(
            "CreateTargetGroup",
            &[
                ("Name", "api"),
                ("Protocol", "HTTP"),
                ("Port", "80"),
                ("VpcId", "vpc-1"),
            ],
        )
        .await;
    assert_eq!(first(&xml, "HealthCheckIntervalSeconds"), "30");
    assert_eq!(first(&xml, "HealthCheckTimeoutSeconds"), "5");
    assert_eq!(first(&xml, "HealthyThresholdCount"), "5");
    assert_eq!(first(&xml, "UnhealthyThresholdCount"), "2");
    assert_eq!(first(&xml, "HealthCheckPath"), "/");
    assert_eq!(first(&xml, "HttpCode"), "200");
    assert_eq!(first(&xml, "HealthCheckPort"), "traffic-port");
    assert_eq!(first(&xml, "TargetType"), "instance");
    let tcp = f
        .ok(
            "CreateTargetGroup",
            &[("Name", "db"), ("Protocol", "TCP"), ("Port", "5432")],
        )
        .await;
    assert_eq!(first(&tcp, "HealthCheckProtocol"), "TCP");
    assert!(!tcp.contains("<Matcher>") && !tcp.contains("HealthCheckPath"));
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("Name", "x"), ("Protocol", "HTTP")], "ValidationError"),
        (&[("Name", "x"), ("Port", "80")], "ValidationError"),
        (
            &[("Name", "x"), ("Protocol", "HTTPS"), ("Port", "80")],
            "UnsupportedProtocol",
        ),
        (
            &[
                ("Name", "x"),
                ("Protocol", "HTTP"),
                ("Port", "80"),
                ("HealthCheckIntervalSeconds", "4"),
            ],
            "ValidationError",
        ),
        (
            &[
                ("Name", "x"),
                ("Protocol", "HTTP"),
                ("Port", "80"),
                ("HealthCheckTimeoutSeconds", "30"),
            ],
            "ValidationError",
        ),
        (
            &[
                ("Name", "x"),
                ("Protocol", "HTTP"),
                ("Port", "80"),
                ("Matcher.HttpCode", "600"),
            ],
            "ValidationError",
        ),
        (
            &[
                ("Name", "x"),
                ("Protocol", "HTTP"),
                ("Port", "80"),
                ("TargetType", "lambda"),
            ],
            "InvalidConfigurationRequest",
        ),
        (
            &[("Name", "api"), ("Protocol", "HTTP"), ("Port", "81")],
            "DuplicateTargetGroupName",
        ),
    ];
    for (params, code) in cases {
        assert_eq!(
            f.code("CreateTargetGroup", params).await,
            *code,
            "{params:?}"
        );
    }
    let arn = first(&xml, "TargetGroupArn");
    let m = f
        .ok(
            "ModifyTargetGroup",
            &[
                ("TargetGroupArn", &arn),
                ("HealthCheckPath", "/health"),
                ("Matcher.HttpCode", "200-299"),
            ],
        )
        .await;
    assert_eq!(
        (first(&m, "HealthCheckPath"), first(&m, "HttpCode")),
        ("/health".into(), "200-299".into())
    );
    let attrs = f
        .ok("DescribeTargetGroupAttributes", &[("TargetGroupArn", &arn)])
        .await;
    assert!(
        attrs.contains("<Key>deregistration_delay.timeout_seconds</Key><Value>300</Value>"),
        "{attrs}"
    );
    let attrs = f
        .ok(
            "ModifyTargetGroupAttributes",
            &[
                ("TargetGroupArn", &arn),
                ("Attributes.member.1.Key", "load_balancing.algorithm.type"),
                ("Attributes.member.1.Value", "least_outstanding_requests"),
                ("Attributes.member.2.Key", "stickiness.enabled"),
                ("Attributes.member.2.Value", "true"),
            ],
        )
        .await;
    assert!(attrs.contains(
        "<Key>load_balancing.algorithm.type</Key><Value>least_outstanding_requests</Value>"
    ));
    assert!(attrs.contains("<Key>stickiness.enabled</Key><Value>true</Value>"));
    for (k, v) in [
        ("deregistration_delay.timeout_seconds", "4000"),
        ("nope", "1"),
        ("stickiness.type", "source_ip"),
    ] {
        let code = f
            .code(
                "ModifyTargetGroupAttributes",
                &[
                    ("TargetGroupArn", &arn),
                    ("Attributes.member.1.Key", k),
                    ("Attributes.member.1.Value", v),
                ],
            )
            .await;
        assert_eq!(code, "ValidationError", "{k}={v}");
    }
    let page = f.ok("DescribeTargetGroups", &[("PageSize", "1")]).await;
    assert_eq!(all(&page, "TargetGroupName"), ["api"]);
    let missing = arn.replace("/api/", "/zzz/");
    assert_eq!(
        f.code(
            "DescribeTargetGroups",
            &[("TargetGroupArns.member.1", &missing)]
        )
        .await,
        "TargetGroupNotFound"
    );
}

#[tokio::test]
async fn lb_cookie_stickiness_reaches_the_data_plane_config() {
    let f = fixture();
    let api = f.tg("api", "HTTP", "ip").await;
    let db = f.tg("db", "TCP", "ip").await;
    let set = |arn: String, attributes: &'static [(&'static str, &'static str)]| {
        let f = &f;
        async move {
            let mut p = vec![("TargetGroupArn".to_owned(), arn)];
            for (i, (k, v)) in attributes.iter().enumerate() {
                p.push((format!("Attributes.member.{}.Key", i + 1), (*k).to_owned()));
                p.push((
                    format!("Attributes.member.{}.Value", i + 1),
                    (*v).to_owned(),
                ));
            }
            let p: Vec<(&str, &str)> = p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            f.ok("ModifyTargetGroupAttributes", &p).await;
            f.elb.lb_config().await.expect("config")
        }
    };
    let sticky =
        |config: &model::lb::Config, arn: &str| config.target_group(arn).expect("group").stickiness;
    let config = f.elb.lb_config().await.expect("config");
    assert_eq!(sticky(&config, &api), None, "off by default");
    let config = set(api.clone(), &[("stickiness.enabled", "true")]).await;
    assert_eq!(
        sticky(&config, &api),
        Some(std::time::Duration::from_secs(86_400)),
        "AWS's default duration"
    );
    let config = set(
        api.clone(),
        &[("stickiness.lb_cookie.duration_seconds", "600")],
    )
    .await;
    assert_eq!(
        sticky(&config, &api),
        Some(std::time::Duration::from_secs(600))
    );
    // app_cookie and source_ip are not enforced by the data plane: refused while
    // stickiness is on, and nothing changes.
    let refused = |arn: String, k: &'static str, v: &'static str| {
        let f = &f;
        async move {
            f.code(
                "ModifyTargetGroupAttributes",
                &[
                    ("TargetGroupArn", &arn),
                    ("Attributes.member.1.Key", k),
                    ("Attributes.member.1.Value", v),
                ],
            )
            .await
        }
    };
    assert_eq!(
        refused(api.clone(), "stickiness.type", "app_cookie").await,
        "ValidationError"
    );
    assert_eq!(
        sticky(&f.elb.lb_config().await.expect("config"), &api),
        Some(std::time::Duration::from_secs(600))
    );
    // Attributes the data plane does not act on take only their default.
    assert_eq!(
        refused(api.clone(), "slow_start.duration_seconds", "30").await,
        "ValidationError"
    );
    set(api.clone(), &[("slow_start.duration_seconds", "0")]).await;
    let config = set(
        api.clone(),
        &[
            ("stickiness.type", "lb_cookie"),
            ("stickiness.enabled", "false"),
        ],
    )
    .await;
    assert_eq!(sticky(&config, &api), None);
    // Network groups' stickiness is source_ip: not enforced either, so it cannot be
    // turned on (turning it off, as Terraform does by default, is fine).
    assert_eq!(
        refused(db.clone(), "stickiness.enabled", "true").await,
        "ValidationError"
    );
    let config = set(db.clone(), &[("stickiness.enabled", "false")]).await;
    assert_eq!(sticky(&config, &db), None);
}

#[tokio::test]
async fn listeners_check_ports_protocols_and_target_group_use() {
    let f = fixture();
    let web = f.lb("web", "application").await;
    let other = f.lb("other", "application").await;
    let api = f.tg("api", "HTTP", "ip").await;
    let db = f.tg("db", "TCP", "ip").await;
    let listener = f.listener(&web, "8081", &api).await;
    assert!(listener.contains(":listener/app/web/"), "{listener}");
    let tgs = f
        .ok("DescribeTargetGroups", &[("LoadBalancerArn", &web)])
        .await;
    assert_eq!(all(&tgs, "TargetGroupName"), ["api"]);
    assert_eq!(
        first(&tgs, "LoadBalancerArns"),
        format!("<member>{web}</member>")
    );
    let fwd = |lb: &str, port: &str, tg: &str| {
        vec![
            ("LoadBalancerArn".to_owned(), lb.to_owned()),
            ("Port".to_owned(), port.to_owned()),
            (
                "DefaultActions.member.1.Type".to_owned(),
                "forward".to_owned(),
            ),
            (
                "DefaultActions.member.1.TargetGroupArn".to_owned(),
                tg.to_owned(),
            ),
        ]
    };
    let fr = &f;
    let call = |p: Vec<(String, String)>| async move {
        let p: Vec<(&str, &str)> = p.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        fr.code("CreateListener", &p).await
    };
    assert_eq!(call(fwd(&web, "8081", &db)).await, "DuplicateListener");
    assert_eq!(call(fwd(&other, "8081", &api)).await, "DuplicateListener");
    assert_eq!(call(fwd(&web, "8082", &db)).await, "IncompatibleProtocols");
    assert_eq!(
        call(fwd(&other, "8083", &api)).await,
        "TargetGroupAssociationLimit"
    );
    assert_eq!(
        call(fwd(&web, "8084", &api.replace("/api/", "/nope/"))).await,
        "TargetGroupNotFound"
    );
    let mut tcp = fwd(&web, "8085", &api);
    tcp.push(("Protocol".into(), "TCP".into()));
    assert_eq!(call(tcp).await, "IncompatibleProtocols");
    assert_eq!(
        f.code("DeleteTargetGroup", &[("TargetGroupArn", &api)])
            .await,
        "ResourceInUse"
    );
    let fixed = f
        .ok(
            "ModifyListener",
            &[
                ("ListenerArn", &listener),
                ("DefaultActions.member.1.Type", "fixed-response"),
                (
                    "DefaultActions.member.1.FixedResponseConfig.StatusCode",
                    "404",
                ),
                (
                    "DefaultActions.member.1.FixedResponseConfig.ContentType",
                    "text/plain",
                ),
                (
                    "DefaultActions.member.1.FixedResponseConfig.MessageBody",
                    "none <here>",
                ),
            ],
        )
        .await;
    assert!(
        fixed.contains("<MessageBody>none &lt;here&gt;</MessageBody>"),
        "{fixed}"
    );
    f.ok("DeleteTargetGroup", &[("TargetGroupArn", &api)]).await;
    let described = f
        .ok("DescribeListeners", &[("LoadBalancerArn", &web)])
        .await;
    assert_eq!(all(&described, "Port"), ["8081"]);
    assert_eq!(f.code("DescribeListeners", &[]).await, "ValidationError");
    f.ok("DeleteListener", &[("ListenerArn", &listener)]).await;
    assert_eq!(
        f.code("DeleteListener", &[("ListenerArn", &listener)])
            .await,
        "ListenerNotFound"
    );
    assert_eq!(
        f.code("DescribeListeners", &[("ListenerArns.member.1", &listener)])
            .await,
        "ListenerNotFound"
    );
}

#[tokio::test]
async fn rules_keep_priorities_unique_and_show_the_default_last() {
    let f = fixture();
    let web = f.lb("web", "application").await;
    let api = f.tg("api", "HTTP", "ip").await;
    let listener = f.listener(&web, "9001", &api).await;
    let fr = &f;
    let rule = |prio: &'static str, path: &'static str| {
        let listener = listener.clone();
        let api = api.clone();
        async move {
            let p = [
                ("ListenerArn", listener.as_str()),
                ("Priority", prio),
                ("Conditions.member.1.Field", "path-pattern"),
                (
                    "Conditions.member.1.PathPatternConfig.Values.member.1",
                    path,
                ),
                ("Actions.member.1.Type", "forward"),
                (
                    "Actions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn",
                    api.as_str(),
                ),
                (
                    "Actions.member.1.ForwardConfig.TargetGroups.member.1.Weight",
                    "3",
                ),
            ];
            fr.call("CreateRule", &p).await
        }
    };
    let r10 = first(&rule("10", "/a/*").await.expect("rule 10"), "RuleArn");
    let r20 = first(&rule("20", "/b/*").await.expect("rule 20"), "RuleArn");
    assert_eq!(
        rule("10", "/c").await.expect_err("taken").code,
        "PriorityInUse"
    );
    assert_eq!(
        rule("11", "bad path").await.expect_err("invalid").code,
        "ValidationError"
    );
    let described = f.ok("DescribeRules", &[("ListenerArn", &listener)]).await;
    assert_eq!(all(&described, "Priority"), ["10", "20", "default"]);
    assert_eq!(all(&described, "IsDefault"), ["false", "false", "true"]);
    assert!(described.contains("<Field>path-pattern</Field><Values><member>/a/*</member></Values><PathPatternConfig><Values><member>/a/*</member></Values></PathPatternConfig>"), "{described}");
    let swapped = f
        .ok(
            "SetRulePriorities",
            &[
                ("RulePriorities.member.1.RuleArn", &r10),
                ("RulePriorities.member.1.Priority", "20"),
                ("RulePriorities.member.2.RuleArn", &r20),
                ("RulePriorities.member.2.Priority", "10"),
            ],
        )
        .await;
    assert_eq!(all(&swapped, "RuleArn").len(), 2);
    let described = f.ok("DescribeRules", &[("ListenerArn", &listener)]).await;
    assert_eq!(all(&described, "RuleArn")[..2], [r20.clone(), r10.clone()]);
    let default_rule = all(&described, "RuleArn")[2].clone();
    assert_eq!(
        f.code("DeleteRule", &[("RuleArn", &default_rule)]).await,
        "OperationNotPermitted"
    );
    let modified = f
        .ok(
            "ModifyRule",
            &[
                ("RuleArn", &r10),
                ("Conditions.member.1.Field", "http-header"),
                (
                    "Conditions.member.1.HttpHeaderConfig.HttpHeaderName",
                    "X-Env",
                ),
                (
                    "Conditions.member.1.HttpHeaderConfig.Values.member.1",
                    "blue",
                ),
            ],
        )
        .await;
    assert!(
        modified.contains("<HttpHeaderName>X-Env</HttpHeaderName>"),
        "{modified}"
    );
    // The snapshot lists rules in ascending priority with their weights.
    let config = f.elb.lb_config().await.expect("config");
    let l = &config.load_balancers[0].listeners[0];
    assert_eq!(
        l.rules.iter().map(|r| r.priority).collect::<Vec<_>>(),
        [10, 20]
    );
    assert_eq!(
        l.rules[1].actions,
        [model::lb::Action::Forward(vec![
            model::lb::WeightedTargetGroup {
                target_group_arn: api.clone(),
                weight: 3
            }
        ])]
    );
    assert!(
        matches!(&l.rules[1].conditions[0], model::lb::Condition::HttpHeader { name, .. } if name == "X-Env")
    );
    f.ok("DeleteRule", &[("RuleArn", &r10)]).await;
    assert_eq!(
        f.code("DeleteRule", &[("RuleArn", &r10)]).await,
        "RuleNotFound"
    );
}

#[tokio::test]
async fn deregistered_targets_drain_for_the_delay_then_vanish() {
    let f = fixture();
    let mut changes = f.elb.subscribe();
    let web = f.lb("web", "application").await;
    let api = f.tg("api", "HTTP", "instance").await;
    let key = TargetKey {
        id: "i-0abc".into(),
        port: 8080,
    };
    f.elb
        .register_targets(&api, std::slice::from_ref(&key))
        .await
        .expect("register");
    assert_eq!(
        f.elb.target_health(&api).await.expect("health"),
        [(key.clone(), model::lb::TargetHealthState::Unused)]
    );
    f.listener(&web, "9002", &api).await;
    assert!(changes.has_changed().expect("sender alive"));
    let health = f
        .ok("DescribeTargetHealth", &[("TargetGroupArn", &api)])
        .await;
    assert_eq!(
        (first(&health, "State"), first(&health, "Reason")),
        ("initial".into(), "Elb.RegistrationInProgress".into())
    );
    assert_eq!(first(&health, "HealthCheckPort"), "8080");
    f.elb.report_health(vec![model::lb::HealthReport {
        target_group_arn: api.clone(),
        target: key.clone(),
        health: model::lb::Health::Healthy,
    }]);
    let health = f
        .ok("DescribeTargetHealth", &[("TargetGroupArn", &api)])
        .await;
    assert_eq!(first(&health, "State"), "healthy");
    assert!(!health.contains("<Reason>"));
    let config = f.elb.lb_config().await.expect("config");
    let target = &config.target_group(&api).expect("group").targets[0];
    assert_eq!((target.host.as_str(), target.draining), ("10.1.2.3", false));

    changes.mark_unchanged();
    f.elb
        .deregister_targets(&api, std::slice::from_ref(&key))
        .await
        .expect("deregister");
    assert!(changes.has_changed().expect("sender alive"));
    let health = f
        .ok("DescribeTargetHealth", &[("TargetGroupArn", &api)])
        .await;
    assert_eq!(first(&health, "State"), "draining");
    let before = f.elb.lb_config().await.expect("config");
    assert!(before.target_group(&api).expect("group").targets[0].draining);
    f.advance(299_999);
    assert_eq!(f.elb.target_health(&api).await.expect("health").len(), 1);
    f.advance(1);
    let health = f
        .ok("DescribeTargetHealth", &[("TargetGroupArn", &api)])
        .await;
    assert!(!health.contains("<member>"), "{health}");
    let asked = f
        .ok(
            "DescribeTargetHealth",
            &[("TargetGroupArn", &api), ("Targets.member.1.Id", "i-0abc")],
        )
        .await;
    assert_eq!(
        (first(&asked, "State"), first(&asked, "Reason")),
        ("unused".into(), "Target.NotRegistered".into())
    );
    changes.mark_unchanged();
    let after = f.elb.lb_config().await.expect("config");
    assert!(after.target_group(&api).expect("group").targets.is_empty());
    assert!(after.revision > before.revision);
    assert!(
        changes.has_changed().expect("sender alive"),
        "expiry is a committed change"
    );
    assert_eq!(
        f.code(
            "DescribeTargetHealth",
            &[
                ("TargetGroupArn", &api),
                ("Targets.member.1.Id", "10.0.0.1")
            ]
        )
        .await,
        "InvalidTarget"
    );
    assert_eq!(
        f.code(
            "DeregisterTargets",
            &[("TargetGroupArn", &api), ("Targets.member.1.Id", "i-0abc")]
        )
        .await,
        "InvalidTarget"
    );
}

#[tokio::test]
async fn targets_of_unused_groups_leave_at_once_and_bad_ids_are_invalid() {
    let f = fixture();
    let api = f.tg("api", "HTTP", "ip").await;
    let p = [
        ("TargetGroupArn", api.as_str()),
        ("Targets.member.1.Id", "10.0.0.7"),
        ("Targets.member.1.Port", "81"),
    ];
    f.ok("RegisterTargets", &p).await;
    f.ok("RegisterTargets", &p).await;
    assert_eq!(f.elb.target_health(&api).await.expect("health").len(), 1);
    assert_eq!(
        f.code(
            "RegisterTargets",
            &[("TargetGroupArn", &api), ("Targets.member.1.Id", "i-123")]
        )
        .await,
        "InvalidTarget"
    );
    assert_eq!(
        f.code("RegisterTargets", &[("TargetGroupArn", &api)]).await,
        "ValidationError"
    );
    f.ok(
        "DeregisterTargets",
        &[
            ("TargetGroupArn", &api),
            ("Targets.member.1.Id", "10.0.0.7"),
        ],
    )
    .await;
    assert!(f.elb.target_health(&api).await.expect("health").is_empty());
    let gone = api.replace("/api/", "/gone/");
    assert_eq!(
        f.code(
            "RegisterTargets",
            &[
                ("TargetGroupArn", &gone),
                ("Targets.member.1.Id", "10.0.0.7")
            ]
        )
        .await,
        "TargetGroupNotFound"
    );
}

#[tokio::test]
async fn tags_are_added_described_and_removed() {
    let f = fixture();
    let web = f.lb("web", "application").await;
    let api = f.tg("api", "HTTP", "ip").await;
    f.ok(
        "AddTags",
        &[
            ("ResourceArns.member.1", &web),
            ("ResourceArns.member.2", &api),
            ("Tags.member.1.Key", "env"),
            ("Tags.member.1.Value", "prod"),
        ],
    )
    .await;
    let d = f
        .ok(
            "DescribeTags",
            &[
                ("ResourceArns.member.1", &web),
                ("ResourceArns.member.2", &api),
            ],
        )
        .await;
    assert_eq!(all(&d, "Key"), ["env", "env"]);
    f.ok(
        "RemoveTags",
        &[("ResourceArns.member.1", &web), ("TagKeys.member.1", "env")],
    )
    .await;
    let d = f
        .ok("DescribeTags", &[("ResourceArns.member.1", &web)])
        .await;
    assert!(all(&d, "Key").is_empty());
    let dup = [
        ("ResourceArns.member.1", web.as_str()),
        ("Tags.member.1.Key", "a"),
        ("Tags.member.2.Key", "a"),
    ];
    assert_eq!(f.code("AddTags", &dup).await, "DuplicateTagKeys");
    let keys: Vec<(String, String)> = (1..=51)
        .map(|i| (format!("Tags.member.{i}.Key"), format!("k{i}")))
        .collect();
    let mut p: Vec<(&str, &str)> = keys.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    p.push(("ResourceArns.member.1", &web));
    assert_eq!(f.code("AddTags", &p).await, "TooManyTags");
    let missing = web.replace("/web/", "/nope/");
    assert_eq!(
        f.code("DescribeTags", &[("ResourceArns.member.1", &missing)])
            .await,
        "LoadBalancerNotFound"
    );
}

#[tokio::test]
async fn network_load_balancers_forward_tcp_only() {
    let f = fixture();
    let net = f.lb("net", "network").await;
    let db = f.tg("db", "TCP", "ip").await;
    let listener = f.listener(&net, "9003", &db).await;
    assert!(listener.contains(":listener/net/net/"));
    let described = f
        .ok("DescribeListeners", &[("ListenerArns.member.1", &listener)])
        .await;
    assert_eq!(first(&described, "Protocol"), "TCP");
    let redirect = [
        ("LoadBalancerArn", net.as_str()),
        ("Port", "9004"),
        ("DefaultActions.member.1.Type", "redirect"),
        (
            "DefaultActions.member.1.RedirectConfig.StatusCode",
            "HTTP_301",
        ),
        ("DefaultActions.member.1.RedirectConfig.Protocol", "HTTPS"),
    ];
    assert_eq!(
        f.code("CreateListener", &redirect).await,
        "InvalidLoadBalancerAction"
    );
    let config = f.elb.lb_config().await.expect("config");
    assert_eq!(
        config.load_balancers[0].kind,
        model::lb::LoadBalancerKind::Network
    );
    assert_eq!(
        config.load_balancers[0].listeners[0].protocol,
        model::lb::ListenerProtocol::Tcp
    );
    assert_eq!(
        config
            .target_group(&db)
            .expect("group")
            .health_check
            .protocol,
        model::lb::TargetProtocol::Tcp
    );
}

#[tokio::test]
async fn instance_targets_are_reached_at_the_address_their_registrar_gave() {
    let f = fixture();
    let api = f.tg("addr", "HTTP", "instance").await;
    let key = |id: &str| TargetKey {
        id: id.into(),
        port: 8080,
    };
    f.elb
        .register_targets_at(
            &api,
            &[
                (key("i-0def"), Some("10.9.8.7".into())),
                (key("i-0bbb"), None),
            ],
        )
        .await
        .expect("register");
    // The public RegisterTargets says nothing of addresses: the known one stays.
    f.ok(
        "RegisterTargets",
        &[
            ("TargetGroupArn", &api),
            ("Targets.member.1.Id", "i-0def"),
            ("Targets.member.1.Port", "8080"),
        ],
    )
    .await;
    let config = f.elb.lb_config().await.expect("config");
    let hosts: std::collections::BTreeMap<String, String> = config
        .target_group(&api)
        .expect("group")
        .targets
        .iter()
        .map(|t| (t.key.id.clone(), t.host.clone()))
        .collect();
    assert_eq!(hosts["i-0def"], "10.9.8.7");
    assert_eq!(
        hosts["i-0bbb"], "127.0.0.1",
        "no address, no resolver entry"
    );
    let described = f
        .ok("DescribeTargetHealth", &[("TargetGroupArn", &api)])
        .await;
    assert!(
        !described.contains("10.9.8.7"),
        "the address is Stevedore's own, not part of the API: {described}"
    );
}

#[tokio::test]
async fn every_modelled_operation_runs_a_handler_or_answers_not_implemented() {
    let f = fixture();
    let form = wire::query::parse_form(b"Version=2015-12-01").expect("form");
    let caller = wire::Caller::root("000000000000");
    // ValidationError is the query protocol's unmodelled parameter error.
    let answered = wire::conformance::every_operation_answers(
        &f.elb,
        wire::Input::Query(&form),
        &caller,
        &["ValidationError"],
    )
    .await;
    assert_eq!(answered.served, 28, "operations served");
}

#[tokio::test]
async fn every_elbv2_operation_needs_an_elasticloadbalancing_action() {
    let f = fixture();
    let caller = wire::Caller::root("000000000000");
    let form = wire::query::parse_form(b"").expect("form");
    let n = wire::conformance::every_operation_needs_access(
        &f.elb,
        wire::Input::Query(&form),
        &caller,
        "elasticloadbalancing",
    )
    .await;
    assert!(n >= Operation::ALL.len());
}

/// A fake EC2 that knows the groups `sg-known` and `sg-other`.
struct KnownGroups;

#[async_trait::async_trait]
impl SecurityGroups for KnownGroups {
    async fn check(&self, ids: &[String]) -> Result<(), Vec<String>> {
        let missing: Vec<String> = ids
            .iter()
            .filter(|id| !matches!(id.as_str(), "sg-known" | "sg-other"))
            .cloned()
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing)
        }
    }
}

#[tokio::test]
async fn security_groups_are_refused_when_nothing_could_enforce_them() {
    let f = fixture();
    let code = f
        .code(
            "CreateLoadBalancer",
            &[("Name", "web"), ("SecurityGroups.member.1", "sg-known")],
        )
        .await;
    assert_eq!(code, "InvalidSecurityGroup");
    assert!(f
        .elb
        .guarded_listeners()
        .await
        .expect("listeners")
        .is_empty());
}

#[tokio::test]
async fn set_security_groups_replaces_the_groups_that_guard_the_listeners() {
    let f = fixture();
    f.elb.set_security_groups(Arc::new(KnownGroups));
    let code = f
        .code(
            "CreateLoadBalancer",
            &[("Name", "web"), ("SecurityGroups.member.1", "sg-missing")],
        )
        .await;
    assert_eq!(code, "InvalidSecurityGroup");
    let lb = first(
        &f.ok(
            "CreateLoadBalancer",
            &[("Name", "web"), ("SecurityGroups.member.1", "sg-known")],
        )
        .await,
        "LoadBalancerArn",
    );
    let tg = f.tg("tg", "HTTP", "ip").await;
    f.listener(&lb, "8080", &tg).await;
    let guarded = f.elb.guarded_listeners().await.expect("listeners");
    assert_eq!(guarded.len(), 1);
    assert_eq!(
        (
            guarded[0].port,
            &guarded[0].security_groups,
            &guarded[0].target_groups
        ),
        (8080, &vec!["sg-known".to_owned()], &vec![tg.clone()])
    );
    let out = f
        .ok(
            "SetSecurityGroups",
            &[
                ("LoadBalancerArn", &lb),
                ("SecurityGroups.member.1", "sg-other"),
            ],
        )
        .await;
    assert_eq!(all(&out, "member"), ["sg-other"]);
    let guarded = f.elb.guarded_listeners().await.expect("listeners");
    assert_eq!(guarded[0].security_groups, ["sg-other"]);
    let code = f
        .code(
            "SetSecurityGroups",
            &[
                ("LoadBalancerArn", &lb),
                ("SecurityGroups.member.1", "sg-missing"),
            ],
        )
        .await;
    assert_eq!(code, "InvalidSecurityGroup");
    // A network load balancer made without groups cannot get them later.
    let nlb = f.lb("net", "network").await;
    let code = f
        .code(
            "SetSecurityGroups",
            &[
                ("LoadBalancerArn", &nlb),
                ("SecurityGroups.member.1", "sg-known"),
            ],
        )
        .await;
    assert_eq!(code, "InvalidConfigurationRequest");
}
