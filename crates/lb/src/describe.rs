//! Reads a [`Config`] through the ELBv2 API: which Describe* calls to make (following
//! `NextMarker`), and how their XML answers map onto the data plane's shapes. The
//! mapping mirrors `elbv2::snapshot::compute_config`, so a standalone data plane
//! (`stevedore lb`) serves what the server's in-process one would (the binary's tests
//! check exactly that). It lives here, beside the data plane, rather than in the binary so
//! that the fuzz target `lb_describe_xml` can feed it arbitrary answers.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use model::lb::{
    Action, Algorithm, Condition, Config, HealthCheck, Listener, ListenerProtocol, LoadBalancer,
    LoadBalancerKind, Matcher, Rule, Target, TargetGroup, TargetKey, TargetProtocol,
    WeightedTargetGroup,
};
use roxmltree::{Document, Node};

/// Why reading the configuration from the server failed.
#[derive(Debug, thiserror::Error)]
pub enum LbRoleError {
    /// The request did not get an answer (connection, timeout, signing).
    #[error(transparent)]
    Api(Box<dyn std::error::Error + Send + Sync>),
    /// The server answered with an AWS error.
    #[error("{operation}: {code} (HTTP {status}): {message}")]
    Service {
        /// The operation.
        operation: &'static str,
        /// HTTP status.
        status: u16,
        /// AWS error code.
        code: String,
        /// AWS error message.
        message: String,
    },
    /// The answer is not the XML document the operation returns.
    #[error("{operation}: unreadable response: {reason}")]
    Decode {
        /// The operation.
        operation: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Where an instance target is reached when no agent registered an address for its
/// instance (a target registered by hand): the server's own data plane does the same.
const INSTANCE_HOST: &str = "127.0.0.1";

/// A query-protocol API answering XML documents: the server over HTTP, or an in-memory
/// `elbv2::Elbv2` in tests.
#[async_trait::async_trait]
pub trait QueryApi: Send + Sync {
    /// Runs `operation` with `params` (besides `Action` and `Version`) and returns the
    /// response document, or the AWS error it answered with.
    async fn call(
        &self,
        operation: &'static str,
        params: &[(&str, &str)],
    ) -> Result<String, LbRoleError>;

    /// EC2 instance id → the address its agent registered (the ECS container instance
    /// attribute [`model::ecs::names::HOST_ADDRESS_ATTRIBUTE`]): where instance targets
    /// are reached. ELBv2's API does not say; the server's own data plane keeps the address
    /// ECS registered each target with.
    async fn instance_addresses(&self) -> Result<HashMap<String, String>, LbRoleError>;
}

/// Everything the data plane serves, read with ELBv2 Describe* calls. `bind_override`
/// replaces each load balancer's `DNSName` as the address its listeners bind. The
/// revision is left at 0 for the caller to assign.
pub async fn fetch_config(
    api: &dyn QueryApi,
    bind_override: Option<IpAddr>,
) -> Result<Config, LbRoleError> {
    let mut load_balancers = paged(api, "DescribeLoadBalancers", &[], "LoadBalancers", |n| {
        parse_load_balancer(n, bind_override)
    })
    .await?;
    for lb in &mut load_balancers {
        let by_lb = [("LoadBalancerArn", lb.arn.as_str())];
        let attributes = call_doc(api, "DescribeLoadBalancerAttributes", &by_lb).await?;
        if let Some(seconds) = attribute(&attributes, "idle_timeout.timeout_seconds")? {
            lb.idle_timeout = std::time::Duration::from_secs(seconds.parse().map_err(|_| {
                LbRoleError::Decode {
                    operation: attributes.operation,
                    reason: format!("idle_timeout.timeout_seconds is not a number: {seconds}"),
                }
            })?);
        }
        lb.listeners = paged(api, "DescribeListeners", &by_lb, "Listeners", |n| {
            Ok(parse_listener(n))
        })
        .await?;
        for listener in &mut lb.listeners {
            let by_listener = [("ListenerArn", listener.arn.as_str())];
            let mut rules: Vec<Rule> = paged(api, "DescribeRules", &by_listener, "Rules", |n| {
                Ok(parse_rule(n))
            })
            .await?
            .into_iter()
            .flatten()
            .collect();
            rules.sort_by_key(|r| r.priority);
            listener.rules = rules;
        }
    }
    let mut target_groups = paged(api, "DescribeTargetGroups", &[], "TargetGroups", |n| {
        Ok(parse_target_group(n))
    })
    .await?;
    let mut addresses: Option<HashMap<String, String>> = None;
    for (tg, target_type) in &mut target_groups {
        let arn = tg.arn.clone();
        let by_tg = [("TargetGroupArn", arn.as_str())];
        let attributes = call_doc(api, "DescribeTargetGroupAttributes", &by_tg).await?;
        apply_attributes(tg, &attributes)?;
        let health = call_doc(api, "DescribeTargetHealth", &by_tg).await?;
        tg.targets = parse_targets(&health, target_type)?;
        if target_type == "instance" && !tg.targets.is_empty() {
            // Read once per poll, and only when some instance target needs it.
            let known = match &mut addresses {
                Some(known) => known,
                None => addresses.insert(api.instance_addresses().await?),
            };
            for t in &mut tg.targets {
                if let Some(address) = known.get(&t.key.id) {
                    t.host.clone_from(address);
                }
            }
        }
    }
    Ok(Config {
        revision: 0,
        load_balancers,
        target_groups: target_groups.into_iter().map(|(tg, _)| tg).collect(),
    })
}

/// A response document with the operation it answers, for error messages.
struct Answer {
    operation: &'static str,
    text: String,
}

impl Answer {
    fn document(&self) -> Result<Document<'_>, LbRoleError> {
        Document::parse(&self.text).map_err(|e| LbRoleError::Decode {
            operation: self.operation,
            reason: e.to_string(),
        })
    }

    /// The `<OpResult>` element.
    fn result<'a>(&self, doc: &'a Document<'_>) -> Result<Node<'a, 'a>, LbRoleError> {
        let want = format!("{}Result", self.operation);
        child(doc.root_element(), &want).ok_or_else(|| LbRoleError::Decode {
            operation: self.operation,
            reason: format!("no <{want}> element"),
        })
    }
}

async fn call_doc(
    api: &dyn QueryApi,
    operation: &'static str,
    params: &[(&str, &str)],
) -> Result<Answer, LbRoleError> {
    let text = api.call(operation, params).await?;
    Ok(Answer { operation, text })
}

/// Every member of the list `list` across all pages of `operation`.
async fn paged<T>(
    api: &dyn QueryApi,
    operation: &'static str,
    params: &[(&str, &str)],
    list: &str,
    mut each: impl FnMut(Node<'_, '_>) -> Result<T, LbRoleError>,
) -> Result<Vec<T>, LbRoleError> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    // A server that kept answering the same marker would otherwise loop forever.
    for _ in 0..10_000 {
        let mut with_marker: Vec<(&str, &str)> = params.to_vec();
        if let Some(m) = &marker {
            with_marker.push(("Marker", m));
        }
        let answer = call_doc(api, operation, &with_marker).await?;
        let doc = answer.document()?;
        let result = answer.result(&doc)?;
        if let Some(items) = child(result, list) {
            for member in members(items) {
                out.push(each(member)?);
            }
        }
        match text(result, "NextMarker").filter(|m| !m.is_empty()) {
            Some(next) if marker.as_deref() != Some(next) => marker = Some(next.to_owned()),
            _ => return Ok(out),
        }
    }
    Err(LbRoleError::Decode {
        operation,
        reason: "pagination did not end".to_owned(),
    })
}

/// The AWS error of a failed call, from `<ErrorResponse><Error><Code>…`.
pub fn parse_error(operation: &'static str, status: u16, body: &str) -> LbRoleError {
    let parsed = Document::parse(body).ok().and_then(|doc| {
        let error = doc.descendants().find(|n| n.has_tag_name("Error"))?;
        Some((
            text(error, "Code").unwrap_or_default().to_owned(),
            text(error, "Message").unwrap_or_default().to_owned(),
        ))
    });
    let (code, message) = parsed.unwrap_or_else(|| {
        let excerpt: String = body.chars().take(256).collect();
        (String::new(), excerpt)
    });
    LbRoleError::Service {
        operation,
        status,
        code,
        message,
    }
}

/// The first child element named `name` (namespaces ignored: the answer is in ELBv2's).
fn child<'a>(node: Node<'a, 'a>, name: &str) -> Option<Node<'a, 'a>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

/// The text of the child element `name`.
fn text<'a>(node: Node<'a, 'a>, name: &str) -> Option<&'a str> {
    child(node, name).map(|c| c.text().unwrap_or(""))
}

/// The `<member>` elements of a list element.
fn members<'a>(list: Node<'a, 'a>) -> impl Iterator<Item = Node<'a, 'a>> {
    list.children()
        .filter(|c| c.is_element() && c.tag_name().name() == "member")
}

/// The member texts of the list `name` under `node`.
fn strings(node: Node<'_, '_>, name: &str) -> Vec<String> {
    child(node, name)
        .map(|l| {
            members(l)
                .map(|m| m.text().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn number<T: std::str::FromStr>(node: Node<'_, '_>, name: &str) -> Option<T> {
    text(node, name).and_then(|t| t.trim().parse().ok())
}

fn missing(operation: &'static str, field: &str) -> LbRoleError {
    LbRoleError::Decode {
        operation,
        reason: format!("a member has no {field}"),
    }
}

fn parse_load_balancer(
    n: Node<'_, '_>,
    bind_override: Option<IpAddr>,
) -> Result<LoadBalancer, LbRoleError> {
    let op = "DescribeLoadBalancers";
    let arn = text(n, "LoadBalancerArn").ok_or_else(|| missing(op, "LoadBalancerArn"))?;
    // The server's DNSName is the address its listeners bind (see `elb`'s crate docs).
    let bind_address = bind_override
        .or_else(|| text(n, "DNSName").and_then(|d| d.parse().ok()))
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    Ok(LoadBalancer {
        arn: arn.to_owned(),
        name: text(n, "LoadBalancerName").unwrap_or_default().to_owned(),
        kind: match text(n, "Type") {
            Some("network") => LoadBalancerKind::Network,
            _ => LoadBalancerKind::Application,
        },
        bind_address,
        // Read with the load balancer's attributes, in `fetch_config`.
        idle_timeout: model::lb::DEFAULT_IDLE_TIMEOUT,
        listeners: Vec::new(),
    })
}

fn parse_listener(n: Node<'_, '_>) -> Listener {
    Listener {
        arn: text(n, "ListenerArn").unwrap_or_default().to_owned(),
        port: number(n, "Port").unwrap_or(0),
        protocol: match text(n, "Protocol") {
            Some("TCP") => ListenerProtocol::Tcp,
            _ => ListenerProtocol::Http,
        },
        rules: Vec::new(),
        default_actions: parse_actions(n, "DefaultActions"),
    }
}

/// A listener rule; `None` for the default rule, whose actions the listener carries.
fn parse_rule(n: Node<'_, '_>) -> Option<Rule> {
    if text(n, "IsDefault") == Some("true") {
        return None;
    }
    let priority = number(n, "Priority")?;
    Some(Rule {
        arn: text(n, "RuleArn").unwrap_or_default().to_owned(),
        priority,
        conditions: child(n, "Conditions")
            .map(|l| members(l).filter_map(parse_condition).collect())
            .unwrap_or_default(),
        actions: parse_actions(n, "Actions"),
    })
}

fn parse_actions(n: Node<'_, '_>, list: &str) -> Vec<Action> {
    let mut actions: Vec<(u32, Action)> = child(n, list)
        .map(|l| {
            members(l)
                .filter_map(|m| Some((number(m, "Order").unwrap_or(u32::MAX), parse_action(m)?)))
                .collect()
        })
        .unwrap_or_default();
    // AWS applies actions by ascending `Order`; the sort is stable for those without.
    actions.sort_by_key(|(order, _)| *order);
    actions.into_iter().map(|(_, a)| a).collect()
}

fn parse_action(m: Node<'_, '_>) -> Option<Action> {
    let kind = text(m, "Type").unwrap_or_default();
    let action = match kind {
        "forward" => {
            let groups = child(m, "ForwardConfig").and_then(|f| child(f, "TargetGroups"));
            let mut weighted: Vec<WeightedTargetGroup> = groups
                .map(|l| {
                    members(l)
                        .map(|g| WeightedTargetGroup {
                            target_group_arn: text(g, "TargetGroupArn")
                                .unwrap_or_default()
                                .to_owned(),
                            weight: number(g, "Weight").unwrap_or(1),
                        })
                        .collect()
                })
                .unwrap_or_default();
            if weighted.is_empty() {
                if let Some(arn) = text(m, "TargetGroupArn") {
                    weighted.push(WeightedTargetGroup {
                        target_group_arn: arn.to_owned(),
                        weight: 1,
                    });
                }
            }
            Action::Forward(weighted)
        }
        "fixed-response" => {
            let f = child(m, "FixedResponseConfig")?;
            Action::FixedResponse {
                status_code: number(f, "StatusCode").unwrap_or(503),
                content_type: text(f, "ContentType").map(str::to_owned),
                message_body: text(f, "MessageBody").map(str::to_owned),
            }
        }
        "redirect" => {
            let r = child(m, "RedirectConfig")?;
            let part = |name: &str, default: &str| text(r, name).unwrap_or(default).to_owned();
            Action::Redirect {
                protocol: part("Protocol", "#{protocol}"),
                host: part("Host", "#{host}"),
                port: part("Port", "#{port}"),
                path: part("Path", "/#{path}"),
                query: part("Query", "#{query}"),
                status_code: if text(r, "StatusCode") == Some("HTTP_301") {
                    301
                } else {
                    302
                },
            }
        }
        other => {
            // Authentication actions and the like: the data plane cannot carry them out.
            tracing::warn!(
                action = other,
                "Skipping an action the data plane does not serve."
            );
            return None;
        }
    };
    Some(action)
}

fn parse_condition(c: Node<'_, '_>) -> Option<Condition> {
    // Each field's values live in its `…Config`; the legacy top-level `Values` is the
    // fallback for path and host patterns.
    let values = |config: &str| {
        child(c, config)
            .map(|cfg| strings(cfg, "Values"))
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| strings(c, "Values"))
    };
    let condition = match text(c, "Field")? {
        "path-pattern" => Condition::PathPattern(values("PathPatternConfig")),
        "host-header" => Condition::HostHeader(values("HostHeaderConfig")),
        "http-header" => {
            let cfg = child(c, "HttpHeaderConfig")?;
            Condition::HttpHeader {
                name: text(cfg, "HttpHeaderName")?.to_owned(),
                values: strings(cfg, "Values"),
            }
        }
        "http-request-method" => Condition::HttpRequestMethod(values("HttpRequestMethodConfig")),
        "query-string" => {
            let cfg = child(c, "QueryStringConfig")?;
            let pairs = child(cfg, "Values")
                .map(|l| {
                    members(l)
                        .map(|p| {
                            (
                                text(p, "Key").map(str::to_owned),
                                text(p, "Value").unwrap_or_default().to_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            Condition::QueryString(pairs)
        }
        "source-ip" => Condition::SourceIp(values("SourceIpConfig")),
        other => {
            tracing::warn!(
                field = other,
                "Skipping a rule condition the data plane does not know."
            );
            return None;
        }
    };
    Some(condition)
}

fn protocol(p: Option<&str>) -> TargetProtocol {
    match p {
        Some("TCP") => TargetProtocol::Tcp,
        _ => TargetProtocol::Http,
    }
}

/// A target group without its targets and attributes (read by other calls), with its
/// `TargetType`.
fn parse_target_group(n: Node<'_, '_>) -> (TargetGroup, String) {
    let health_check = HealthCheck {
        enabled: text(n, "HealthCheckEnabled") != Some("false"),
        protocol: protocol(text(n, "HealthCheckProtocol")),
        // `traffic-port` (not a number) means the target's own port.
        port: number(n, "HealthCheckPort"),
        path: text(n, "HealthCheckPath").unwrap_or("/").to_owned(),
        interval_seconds: number(n, "HealthCheckIntervalSeconds").unwrap_or(30),
        timeout_seconds: number(n, "HealthCheckTimeoutSeconds").unwrap_or(5),
        healthy_threshold: number(n, "HealthyThresholdCount").unwrap_or(5),
        unhealthy_threshold: number(n, "UnhealthyThresholdCount").unwrap_or(2),
        // The same default the server's snapshot applies when no matcher was set.
        matcher: child(n, "Matcher")
            .and_then(|m| text(m, "HttpCode"))
            .and_then(Matcher::parse)
            .unwrap_or_else(|| Matcher(vec![200..=399])),
    };
    let tg = TargetGroup {
        arn: text(n, "TargetGroupArn").unwrap_or_default().to_owned(),
        name: text(n, "TargetGroupName").unwrap_or_default().to_owned(),
        protocol: protocol(text(n, "Protocol")),
        health_check,
        algorithm: Algorithm::RoundRobin,
        deregistration_delay_seconds: 300,
        stickiness: None,
        targets: Vec::new(),
    };
    (tg, text(n, "TargetType").unwrap_or("instance").to_owned())
}

/// The value of attribute `key` in a Describe*Attributes answer, if present.
fn attribute(answer: &Answer, key: &str) -> Result<Option<String>, LbRoleError> {
    let doc = answer.document()?;
    let result = answer.result(&doc)?;
    let Some(list) = child(result, "Attributes") else {
        return Ok(None);
    };
    let value = members(list)
        .find(|a| text(*a, "Key") == Some(key))
        .and_then(|a| text(a, "Value"))
        .map(|v| v.trim().to_owned());
    Ok(value)
}

/// Sets the balancing algorithm, deregistration delay and stickiness from the group's
/// attributes.
fn apply_attributes(tg: &mut TargetGroup, answer: &Answer) -> Result<(), LbRoleError> {
    let doc = answer.document()?;
    let result = answer.result(&doc)?;
    let Some(list) = child(result, "Attributes") else {
        return Ok(());
    };
    // Stickiness takes three attributes together; absent ones read as AWS's defaults.
    let (mut sticky, mut sticky_type, mut sticky_seconds) = ("false", "lb_cookie", "");
    for a in members(list) {
        match (text(a, "Key"), text(a, "Value")) {
            (Some("stickiness.enabled"), Some(v)) => sticky = v,
            (Some("stickiness.type"), Some(v)) => sticky_type = v,
            (Some("stickiness.lb_cookie.duration_seconds"), Some(v)) => sticky_seconds = v,
            (Some("load_balancing.algorithm.type"), Some("least_outstanding_requests")) => {
                tg.algorithm = Algorithm::LeastOutstandingRequests;
            }
            (Some("deregistration_delay.timeout_seconds"), Some(v)) => {
                if let Ok(seconds) = v.trim().parse() {
                    tg.deregistration_delay_seconds = seconds;
                }
            }
            _ => {}
        }
    }
    tg.stickiness = model::lb::compute_stickiness(sticky, sticky_type, sticky_seconds);
    Ok(())
}

/// The registered targets, from DescribeTargetHealth: every target still registered or
/// draining (the server drops draining ones once their delay has passed).
fn parse_targets(answer: &Answer, target_type: &str) -> Result<Vec<Target>, LbRoleError> {
    let doc = answer.document()?;
    let result = answer.result(&doc)?;
    let Some(list) = child(result, "TargetHealthDescriptions") else {
        return Ok(Vec::new());
    };
    let mut targets = Vec::new();
    for d in members(list) {
        let target = child(d, "Target").ok_or_else(|| missing(answer.operation, "Target"))?;
        let id = text(target, "Id").ok_or_else(|| missing(answer.operation, "Target.Id"))?;
        let port =
            number(target, "Port").ok_or_else(|| missing(answer.operation, "Target.Port"))?;
        let state = child(d, "TargetHealth").and_then(|h| text(h, "State"));
        targets.push(Target {
            key: TargetKey {
                id: id.to_owned(),
                port,
            },
            host: if target_type == "ip" {
                id.to_owned()
            } else {
                INSTANCE_HOST.to_owned()
            },
            draining: state == Some("draining"),
        });
    }
    Ok(targets)
}
