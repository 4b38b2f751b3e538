//! The load balancer data plane's configuration and health reports: the contract between
//! the ELBv2 API (`elb`, which builds a [`Config`] from its stored state) and the data
//! plane (`lb`, which serves it and reports [`HealthReport`]s back). Plain data, no I/O.

use std::ops::RangeInclusive;
use std::time::Duration;

pub mod health_reports;

/// Everything the data plane serves, as one immutable snapshot. A new snapshot replaces
/// the old one whole; the data plane diffs it (listeners to bind or close, targets to add
/// or drain) so a change never drops established connections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Monotonic: a snapshot with a lower revision than the one being served is stale.
    pub revision: u64,
    /// Load balancers with their listeners.
    pub load_balancers: Vec<LoadBalancer>,
    /// Target groups with their registered targets, by ARN.
    pub target_groups: Vec<TargetGroup>,
}

impl Config {
    /// The target group with this ARN.
    pub fn target_group(&self, arn: &str) -> Option<&TargetGroup> {
        self.target_groups.iter().find(|tg| tg.arn == arn)
    }
}

/// The socket mark (`SO_MARK`) the data plane puts on every connection it opens for a
/// target group (proxied requests, TCP flows, health checks): the host's packet filter
/// recognises a load balancer's traffic by it, so a target's security group can admit
/// "the load balancer's group" (a target group belongs to one load balancer). A fixed
/// high byte (`0x5E`) keeps it apart from the low bits other tools mark with; the rest is
/// the FNV-1a hash of the ARN. Marks never leave the host.
pub fn socket_mark(target_group_arn: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in target_group_arn.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    0x5E00_0000 | (hash & 0x00FF_FFFF)
}

/// `application` (HTTP, layer 7) or `network` (TCP pass-through, layer 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadBalancerKind {
    /// `application`.
    Application,
    /// `network`.
    Network,
}

/// One load balancer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadBalancer {
    /// Its ARN.
    pub arn: String,
    /// Its name.
    pub name: String,
    /// Application or network.
    pub kind: LoadBalancerKind,
    /// The address its listeners bind (127.0.0.1 by default).
    pub bind_address: std::net::IpAddr,
    /// ALB's `idle_timeout.timeout_seconds` ([`DEFAULT_IDLE_TIMEOUT`] unless set): a client
    /// connection or WebSocket tunnel with no data either way for this long is closed, and
    /// a target has this long to answer.
    pub idle_timeout: std::time::Duration,
    /// Its listeners.
    pub listeners: Vec<Listener>,
}

/// ALB's default idle timeout (60 s).
pub const DEFAULT_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// A listener's protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenerProtocol {
    /// HTTP/1.1 (application load balancers).
    Http,
    /// TCP pass-through (network load balancers).
    Tcp,
}

/// One listener: a port, its rules and its default actions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    /// Its ARN.
    pub arn: String,
    /// The port it binds on the load balancer's address.
    pub port: u16,
    /// HTTP or TCP.
    pub protocol: ListenerProtocol,
    /// Rules other than the default, in ascending priority (lowest number first).
    pub rules: Vec<Rule>,
    /// What happens when no rule matches.
    pub default_actions: Vec<Action>,
}

/// A listener rule: every condition must match; then its actions apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Its ARN.
    pub arn: String,
    /// 1..=50000; lower is evaluated first.
    pub priority: u32,
    /// All must match (AND); within one condition, any value may match (OR).
    pub conditions: Vec<Condition>,
    /// The actions (the terminal one decides the response).
    pub actions: Vec<Action>,
}

/// A rule condition. Patterns use AWS's wildcards: `*` (any run) and `?` (one character);
/// host and header matches are case-insensitive, paths case-sensitive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// `path-pattern`: the request path (without the query string).
    PathPattern(Vec<String>),
    /// `host-header`: the Host header without the port.
    HostHeader(Vec<String>),
    /// `http-header`: the named header.
    HttpHeader {
        /// The header name.
        name: String,
        /// Patterns for its value.
        values: Vec<String>,
    },
    /// `http-request-method`: exact, case-sensitive method names.
    HttpRequestMethod(Vec<String>),
    /// `query-string`: key/value pairs (a `None` key matches any key).
    QueryString(Vec<(Option<String>, String)>),
    /// `source-ip`: CIDR blocks.
    SourceIp(Vec<String>),
}

/// A listener or rule action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `forward` to one target group, or to several by weight.
    Forward(Vec<WeightedTargetGroup>),
    /// `fixed-response`.
    FixedResponse {
        /// 2XX, 4XX or 5XX.
        status_code: u16,
        /// `text/plain`, `text/css`, `text/html`, `application/javascript`, `application/json`.
        content_type: Option<String>,
        /// The body (up to 1024 characters).
        message_body: Option<String>,
    },
    /// `redirect`. Each component may use `#{protocol}`, `#{host}`, `#{port}`, `#{path}`
    /// (path without the leading `/`) and `#{query}`; AWS's defaults keep the original.
    Redirect {
        /// `HTTP`, `HTTPS` or `#{protocol}`.
        protocol: String,
        /// Host or `#{host}`.
        host: String,
        /// Port or `#{port}`.
        port: String,
        /// Path or `/#{path}`.
        path: String,
        /// Query or `#{query}`.
        query: String,
        /// 301 (`HTTP_301`) or 302 (`HTTP_302`).
        status_code: u16,
    },
}

/// A target group and its weight in a forward action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightedTargetGroup {
    /// The target group's ARN.
    pub target_group_arn: String,
    /// 0..=999; a group with weight 0 receives nothing.
    pub weight: u32,
}

/// A target group's protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetProtocol {
    /// HTTP.
    Http,
    /// TCP.
    Tcp,
}

/// How requests are spread over a group's healthy targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// `round_robin` (AWS's default).
    #[default]
    RoundRobin,
    /// `least_outstanding_requests`.
    LeastOutstandingRequests,
}

/// One target group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetGroup {
    /// Its ARN.
    pub arn: String,
    /// Its name.
    pub name: String,
    /// How the balancer talks to targets.
    pub protocol: TargetProtocol,
    /// Health checking.
    pub health_check: HealthCheck,
    /// `load_balancing.algorithm.type`.
    pub algorithm: Algorithm,
    /// `deregistration_delay.timeout_seconds` (AWS default 300).
    pub deregistration_delay_seconds: u32,
    /// Duration-based stickiness: how long an `AWSALB` cookie binds a client to a target
    /// (`stickiness.lb_cookie.duration_seconds`). `Some` only when `stickiness.enabled`
    /// is true and `stickiness.type` is `lb_cookie`; the API refuses to enable `app_cookie`
    /// and `source_ip` (not enforced), so they are `None` here.
    pub stickiness: Option<Duration>,
    /// Registered targets, including draining ones.
    pub targets: Vec<Target>,
}

/// AWS's default `stickiness.lb_cookie.duration_seconds` (one day).
pub const DEFAULT_STICKINESS_SECONDS: u64 = 86_400;

/// The data plane's stickiness from a target group's attribute values
/// (`stickiness.enabled`, `stickiness.type`, `stickiness.lb_cookie.duration_seconds`), as
/// stored or described: one function so the server's snapshot and a standalone data
/// plane reading the API agree. An unreadable duration falls back to AWS's default.
pub fn compute_stickiness(enabled: &str, kind: &str, duration_seconds: &str) -> Option<Duration> {
    if !enabled.trim().eq_ignore_ascii_case("true") || kind.trim() != "lb_cookie" {
        return None;
    }
    let seconds = duration_seconds
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|s| *s > 0)
        .unwrap_or(DEFAULT_STICKINESS_SECONDS);
    Some(Duration::from_secs(seconds))
}

/// Where a registered target is reached.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetKey {
    /// The target's id as registered (`i-…` instance id, or an IP address).
    pub id: String,
    /// The port traffic goes to.
    pub port: u16,
}

/// A registered target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Its id and port, as DescribeTargetHealth names it.
    pub key: TargetKey,
    /// The address to connect to (resolved from the instance id for `instance` targets).
    pub host: String,
    /// Deregistered: in-flight requests finish, no new ones are sent. The control side
    /// removes the target from the snapshot once the deregistration delay has passed.
    pub draining: bool,
}

/// A target group's health check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    /// Whether checks run at all; when disabled every target counts as healthy.
    pub enabled: bool,
    /// HTTP (GET on `path`, success on `matcher`) or TCP (connect).
    pub protocol: TargetProtocol,
    /// `None` = `traffic-port` (the target's own port).
    pub port: Option<u16>,
    /// Path for HTTP checks.
    pub path: String,
    /// Seconds between checks (5..=300).
    pub interval_seconds: u32,
    /// Seconds before a check fails (2..=120).
    pub timeout_seconds: u32,
    /// Consecutive successes before healthy (2..=10).
    pub healthy_threshold: u32,
    /// Consecutive failures before unhealthy (2..=10).
    pub unhealthy_threshold: u32,
    /// HTTP codes counted as success.
    pub matcher: Matcher,
}

/// HTTP codes a health check accepts: AWS's `HttpCode` syntax, e.g. `200`, `200,202`,
/// `200-299`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matcher(pub Vec<RangeInclusive<u16>>);

impl Matcher {
    /// Parses AWS's syntax; `None` if malformed or outside 200..=499.
    pub fn parse(text: &str) -> Option<Matcher> {
        let mut ranges = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            let (lo, hi) = match part.split_once('-') {
                Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
                None => {
                    let v: u16 = part.parse().ok()?;
                    (v, v)
                }
            };
            if !(200..=499).contains(&lo) || !(200..=499).contains(&hi) || lo > hi {
                return None;
            }
            ranges.push(lo..=hi);
        }
        Some(Matcher(ranges))
    }

    /// Whether a status code counts as success.
    pub fn accepts(&self, status: u16) -> bool {
        self.0.iter().any(|r| r.contains(&status))
    }
}

/// `TargetHealth.State` as DescribeTargetHealth shows it (`TargetHealthStateEnum`).
/// Not a lifecycle: a target moves between these in any direction, so there is no
/// order to rely on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TargetHealthState {
    /// Registered; not enough health checks yet.
    Initial,
    /// Passing its health checks.
    Healthy,
    /// Failing its health checks.
    Unhealthy,
    /// Not registered, or its group receives no traffic.
    Unused,
    /// Deregistered, its deregistration delay not over.
    Draining,
    /// Health checks are disabled.
    Unavailable,
}

impl TargetHealthState {
    /// Every value.
    pub const ALL: &'static [Self] = &[
        Self::Initial,
        Self::Healthy,
        Self::Unhealthy,
        Self::Unused,
        Self::Draining,
        Self::Unavailable,
    ];

    /// The AWS string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initial => "initial",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
            Self::Unused => "unused",
            Self::Draining => "draining",
            Self::Unavailable => "unavailable",
        }
    }

    /// Parses the AWS string; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.as_str() == s)
    }
}

/// What the data plane's health checks have concluded about one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// Not enough checks yet (`initial`, `Elb.InitialHealthChecking`).
    Initial,
    /// `healthy`.
    Healthy,
    /// `unhealthy` with AWS's reason code (`Target.ResponseCodeMismatch`,
    /// `Target.Timeout`, `Target.FailedHealthChecks`) and a description.
    Unhealthy {
        /// AWS's `TargetHealthReasonEnum` value.
        reason: String,
        /// A sentence for `TargetHealth.Description`.
        description: String,
    },
}

/// One target's health, as the data plane reports it to the control side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthReport {
    /// The target group.
    pub target_group_arn: String,
    /// The target.
    pub target: TargetKey,
    /// The verdict.
    pub health: Health,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_marks_are_stable_distinct_and_carry_the_fixed_high_byte() {
        let a = socket_mark("arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/a/1");
        let b = socket_mark("arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/b/1");
        assert_ne!(a, b);
        assert_eq!(
            a,
            socket_mark("arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/a/1")
        );
        assert_eq!(a >> 24, 0x5E);
        assert_eq!(b >> 24, 0x5E);
    }

    #[test]
    fn target_health_states_round_trip_through_their_aws_strings() {
        for s in TargetHealthState::ALL {
            assert_eq!(TargetHealthState::parse(s.as_str()), Some(*s));
        }
        assert_eq!(TargetHealthState::parse("Healthy"), None);
    }

    #[test]
    fn matcher_reads_aws_syntax() {
        let m = Matcher::parse("200,202-204").expect("valid");
        assert!(m.accepts(200) && m.accepts(203) && !m.accepts(201) && !m.accepts(500));
        assert!(Matcher::parse("200-299").expect("valid").accepts(250));
        for bad in ["", "abc", "300-200", "100", "200-600", "200,"] {
            assert_eq!(Matcher::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn stickiness_is_enforced_only_for_enabled_lb_cookie() {
        let day = Some(Duration::from_secs(DEFAULT_STICKINESS_SECONDS));
        assert_eq!(
            compute_stickiness("true", "lb_cookie", "600"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(compute_stickiness("true", "lb_cookie", ""), day);
        assert_eq!(compute_stickiness("true", "lb_cookie", "0"), day);
        assert_eq!(compute_stickiness("false", "lb_cookie", "600"), None);
        assert_eq!(compute_stickiness("true", "app_cookie", "600"), None);
        assert_eq!(compute_stickiness("true", "source_ip", "600"), None);
    }
}
