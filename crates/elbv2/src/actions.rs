//! Listener and rule actions (`forward`, `fixed-response`, `redirect`) and rule
//! conditions (`path-pattern`, `host-header`, `http-header`, `http-request-method`,
//! `query-string`, `source-ip`): decoding and checking them, rendering them as AWS does,
//! and turning them into the data plane's [`model::lb`] shapes.
//!
//! Checks here need only the request; checks against other resources (the target group
//! exists, its protocol fits) are in `listeners`.

use crate::error::{invalid, Elbv2Error};
use crate::params::{int, one_of, required, uint};
use serde::{Deserialize, Serialize};
use wire::query::QueryView;
use wire::xml::Xml;

/// The most target groups one forward action may name.
pub const MAX_FORWARD_TARGET_GROUPS: usize = 5;
/// The most condition values one rule may carry in total.
pub const MAX_CONDITION_VALUES: usize = 5;
/// Content types a fixed response may declare.
const CONTENT_TYPES: &[&str] = &[
    "text/plain",
    "text/css",
    "text/html",
    "application/javascript",
    "application/json",
];

/// One action of a listener or rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionSpec {
    /// `Order`, when given.
    pub order: Option<u32>,
    /// What it does.
    pub kind: ActionKind,
}

/// What an action does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ActionKind {
    /// Forward to one or more target groups by weight.
    Forward {
        /// The groups and their weights (`None` = 1).
        target_groups: Vec<WeightedTg>,
        /// Stickiness across the groups, when configured.
        stickiness: Option<Stickiness>,
    },
    /// Answer directly.
    FixedResponse {
        /// `2XX`, `4XX` or `5XX`.
        status_code: String,
        /// One of [`CONTENT_TYPES`].
        content_type: Option<String>,
        /// Up to 1024 characters.
        message_body: Option<String>,
    },
    /// Redirect; each component may use `#{...}` placeholders.
    Redirect {
        /// `HTTP`, `HTTPS` or `#{protocol}`.
        protocol: String,
        /// A port or `#{port}`.
        port: String,
        /// A host or `#{host}`.
        host: String,
        /// A path starting with `/`.
        path: String,
        /// A query without `?`.
        query: String,
        /// `HTTP_301` or `HTTP_302`.
        status_code: String,
    },
}

/// A target group and its weight in a forward action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightedTg {
    /// The target group's ARN.
    pub arn: String,
    /// 0..=999; `None` shows and counts as 1.
    pub weight: Option<u32>,
}

/// `TargetGroupStickinessConfig`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stickiness {
    /// Whether requests stick to one group.
    pub enabled: bool,
    /// 1..=604800 seconds.
    pub duration: Option<u32>,
}

impl ActionSpec {
    /// Whether it forwards to the target group `arn`.
    pub fn forwards_to(&self, arn: &str) -> bool {
        self.target_group_arns().any(|a| a == arn)
    }

    /// The target groups it forwards to.
    pub fn target_group_arns(&self) -> impl Iterator<Item = &str> {
        let groups: &[WeightedTg] = match &self.kind {
            ActionKind::Forward { target_groups, .. } => target_groups,
            _ => &[],
        };
        groups.iter().map(|g| g.arn.as_str())
    }

    /// The AWS `Type`.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            ActionKind::Forward { .. } => "forward",
            ActionKind::FixedResponse { .. } => "fixed-response",
            ActionKind::Redirect { .. } => "redirect",
        }
    }

    /// Writes the `Action` members.
    pub fn render(&self, x: &mut Xml) {
        x.leaf("Type", self.type_name());
        if let Some(o) = self.order {
            x.leaf("Order", &o.to_string());
        }
        match &self.kind {
            ActionKind::Forward {
                target_groups,
                stickiness,
            } => {
                if let [only] = target_groups.as_slice() {
                    x.leaf("TargetGroupArn", &only.arn);
                }
                x.el("ForwardConfig", |f| {
                    f.list("TargetGroups", target_groups, |m, g| {
                        m.leaf("TargetGroupArn", &g.arn)
                            .leaf("Weight", &g.weight.unwrap_or(1).to_string());
                    });
                    f.el("TargetGroupStickinessConfig", |s| match stickiness {
                        Some(st) => {
                            s.leaf("Enabled", bool_text(st.enabled));
                            if let Some(d) = st.duration {
                                s.leaf("DurationSeconds", &d.to_string());
                            }
                        }
                        None => {
                            s.leaf("Enabled", "false");
                        }
                    });
                });
            }
            ActionKind::FixedResponse {
                status_code,
                content_type,
                message_body,
            } => {
                x.el("FixedResponseConfig", |f| {
                    f.opt("MessageBody", message_body.as_deref())
                        .leaf("StatusCode", status_code)
                        .opt("ContentType", content_type.as_deref());
                });
            }
            ActionKind::Redirect {
                protocol,
                port,
                host,
                path,
                query,
                status_code,
            } => {
                x.el("RedirectConfig", |r| {
                    r.leaf("Protocol", protocol)
                        .leaf("Port", port)
                        .leaf("Host", host)
                        .leaf("Path", path)
                        .leaf("Query", query)
                        .leaf("StatusCode", status_code);
                });
            }
        }
    }

    /// The data plane's view of it.
    pub fn to_model(&self) -> model::lb::Action {
        match &self.kind {
            ActionKind::Forward { target_groups, .. } => model::lb::Action::Forward(
                target_groups
                    .iter()
                    .map(|g| model::lb::WeightedTargetGroup {
                        target_group_arn: g.arn.clone(),
                        weight: g.weight.unwrap_or(1),
                    })
                    .collect(),
            ),
            ActionKind::FixedResponse {
                status_code,
                content_type,
                message_body,
            } => model::lb::Action::FixedResponse {
                status_code: status_code.parse().unwrap_or(503),
                content_type: content_type.clone(),
                message_body: message_body.clone(),
            },
            ActionKind::Redirect {
                protocol,
                port,
                host,
                path,
                query,
                status_code,
            } => model::lb::Action::Redirect {
                protocol: protocol.clone(),
                host: host.clone(),
                port: port.clone(),
                path: path.clone(),
                query: query.clone(),
                status_code: if status_code == "HTTP_301" { 301 } else { 302 },
            },
        }
    }
}

/// `true`/`false`.
pub fn bool_text(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// Decodes and checks the action list `name` (`DefaultActions` or `Actions`).
pub fn parse_actions(q: &QueryView<'_>, name: &str) -> Result<Vec<ActionSpec>, Elbv2Error> {
    let members = q.members(name);
    if members.is_empty() {
        return invalid(format!(
            "At least one action must be given in '{name}' (forward, redirect or fixed-response)"
        ));
    }
    let mut out = Vec::new();
    for a in &members {
        out.push(parse_action(a)?);
    }
    if out.len() > 1 {
        return Err(Elbv2Error::TooManyActions(format!(
            "{} actions were given, but only one terminal action (forward, redirect or fixed-response) is allowed, and Stevedore serves no authentication actions",
            out.len()
        )));
    }
    Ok(out)
}

fn parse_action(a: &QueryView<'_>) -> Result<ActionSpec, Elbv2Error> {
    let kind = required(a, "Type")?;
    let order = uint(a, "Order", 1, 50_000)?;
    let kind = match kind {
        "forward" => parse_forward(a)?,
        "fixed-response" => parse_fixed_response(a)?,
        "redirect" => parse_redirect(a)?,
        "authenticate-oidc" | "authenticate-cognito" | "jwt-validation" => {
            return Err(Elbv2Error::InvalidLoadBalancerAction(format!(
                "Action type '{kind}' is not supported by Stevedore; use forward, redirect or fixed-response"
            )))
        }
        other => {
            return invalid(format!(
                "1 validation error detected: Value '{other}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [forward, authenticate-oidc, authenticate-cognito, redirect, fixed-response, jwt-validation]"
            ))
        }
    };
    Ok(ActionSpec { order, kind })
}

fn parse_forward(a: &QueryView<'_>) -> Result<ActionKind, Elbv2Error> {
    let single = a.get("TargetGroupArn").filter(|s| !s.is_empty());
    let mut groups = Vec::new();
    for m in a.members("ForwardConfig.TargetGroups") {
        let arn = required(&m, "TargetGroupArn")?;
        let weight = uint(&m, "Weight", 0, 999)?;
        if groups.iter().any(|g: &WeightedTg| g.arn == arn) {
            return invalid(format!(
                "Target group '{arn}' appears more than once in the forward action"
            ));
        }
        groups.push(WeightedTg {
            arn: arn.to_owned(),
            weight,
        });
    }
    match (single, groups.len()) {
        (None, 0) => {
            return invalid(
                "A forward action must name a target group: give TargetGroupArn or ForwardConfig.TargetGroups",
            )
        }
        (Some(arn), 0) => groups.push(WeightedTg {
            arn: arn.to_owned(),
            weight: None,
        }),
        (Some(arn), 1) if groups[0].arn == arn => {}
        (Some(_), _) => {
            return Err(Elbv2Error::InvalidLoadBalancerAction(
                "TargetGroupArn and ForwardConfig were both given but name different target groups; give only ForwardConfig to forward to several groups".into(),
            ))
        }
        (None, _) => {}
    }
    if groups.len() > MAX_FORWARD_TARGET_GROUPS {
        return Err(Elbv2Error::TooManyTargetGroups(format!(
            "A forward action can name at most {MAX_FORWARD_TARGET_GROUPS} target groups; {} were given",
            groups.len()
        )));
    }
    let stickiness = if a.has("ForwardConfig.TargetGroupStickinessConfig") {
        let s = a.structure("ForwardConfig.TargetGroupStickinessConfig");
        Some(Stickiness {
            enabled: crate::params::boolean(&s, "Enabled")?.unwrap_or(false),
            duration: uint(&s, "DurationSeconds", 1, 604_800)?,
        })
    } else {
        None
    };
    Ok(ActionKind::Forward {
        target_groups: groups,
        stickiness,
    })
}

fn parse_fixed_response(a: &QueryView<'_>) -> Result<ActionKind, Elbv2Error> {
    let c = a.structure("FixedResponseConfig");
    let status = required(&c, "StatusCode")?;
    let ok = status.len() == 3
        && status.starts_with(['2', '4', '5'])
        && status.bytes().all(|b| b.is_ascii_digit());
    if !ok {
        return invalid(format!(
            "Fixed response status code '{status}' is not valid: use a 2XX, 4XX or 5XX code"
        ));
    }
    let content_type = one_of(&c, "ContentType", CONTENT_TYPES)?;
    let body = c.get("MessageBody");
    if body.is_some_and(|b| b.chars().count() > 1024) {
        return invalid("A fixed response message body can be at most 1024 characters");
    }
    Ok(ActionKind::FixedResponse {
        status_code: status.to_owned(),
        content_type: content_type.map(str::to_owned),
        message_body: body.map(str::to_owned),
    })
}

fn parse_redirect(a: &QueryView<'_>) -> Result<ActionKind, Elbv2Error> {
    let c = a.structure("RedirectConfig");
    required(&c, "StatusCode")?;
    let status = one_of(&c, "StatusCode", &["HTTP_301", "HTTP_302"])?.unwrap_or("HTTP_302");
    let protocol = c.get("Protocol").unwrap_or("#{protocol}");
    if !matches!(protocol, "HTTP" | "HTTPS" | "#{protocol}") {
        return invalid(format!(
            "Redirect protocol '{protocol}' is not valid: use HTTP, HTTPS or #{{protocol}}"
        ));
    }
    let port = c.get("Port").unwrap_or("#{port}");
    if port != "#{port}" && !port.parse::<u16>().is_ok_and(|p| p >= 1) {
        return invalid(format!(
            "Redirect port '{port}' is not valid: use 1 to 65535 or #{{port}}"
        ));
    }
    let host = c.get("Host").unwrap_or("#{host}");
    if host.is_empty() || host.len() > 128 {
        return invalid("A redirect host must be 1 to 128 characters");
    }
    let path = c.get("Path").unwrap_or("/#{path}");
    if !path.starts_with('/') || path.len() > 128 {
        return invalid(format!(
            "Redirect path '{path}' is not valid: it must start with '/' and be at most 128 characters"
        ));
    }
    let query = c.get("Query").unwrap_or("#{query}");
    if query.len() > 128 {
        return invalid("A redirect query can be at most 128 characters");
    }
    if protocol == "#{protocol}"
        && port == "#{port}"
        && host == "#{host}"
        && path == "/#{path}"
        && query == "#{query}"
    {
        return Err(Elbv2Error::InvalidLoadBalancerAction(
            "The redirect would send every request back to itself: change at least one of protocol, port, host, path or query".into(),
        ));
    }
    Ok(ActionKind::Redirect {
        protocol: protocol.to_owned(),
        port: port.to_owned(),
        host: host.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        status_code: status.to_owned(),
    })
}

/// A rule condition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "field", rename_all = "kebab-case")]
pub enum ConditionSpec {
    /// Request path patterns.
    PathPattern {
        /// Patterns.
        values: Vec<String>,
    },
    /// Host header patterns.
    HostHeader {
        /// Patterns.
        values: Vec<String>,
    },
    /// A named header's value patterns.
    HttpHeader {
        /// Header name.
        name: String,
        /// Patterns.
        values: Vec<String>,
    },
    /// Request methods.
    HttpRequestMethod {
        /// Method names.
        values: Vec<String>,
    },
    /// Query string key/value patterns.
    QueryString {
        /// `(key, value)`; no key matches any key.
        pairs: Vec<(Option<String>, String)>,
    },
    /// Client address blocks.
    SourceIp {
        /// CIDR blocks.
        values: Vec<String>,
    },
}

impl ConditionSpec {
    /// The AWS `Field`.
    pub fn field(&self) -> &'static str {
        match self {
            Self::PathPattern { .. } => "path-pattern",
            Self::HostHeader { .. } => "host-header",
            Self::HttpHeader { .. } => "http-header",
            Self::HttpRequestMethod { .. } => "http-request-method",
            Self::QueryString { .. } => "query-string",
            Self::SourceIp { .. } => "source-ip",
        }
    }

    /// How many values it counts toward [`MAX_CONDITION_VALUES`].
    fn value_count(&self) -> usize {
        match self {
            Self::PathPattern { values }
            | Self::HostHeader { values }
            | Self::HttpHeader { values, .. }
            | Self::HttpRequestMethod { values }
            | Self::SourceIp { values } => values.len(),
            Self::QueryString { pairs } => pairs.len(),
        }
    }

    /// Writes the `RuleCondition` members: `Field`, the legacy `Values` for path and host
    /// conditions, and the `*Config` structure.
    pub fn render(&self, x: &mut Xml) {
        x.leaf("Field", self.field());
        match self {
            Self::PathPattern { values } => {
                x.strings("Values", values).el("PathPatternConfig", |c| {
                    c.strings("Values", values);
                });
            }
            Self::HostHeader { values } => {
                x.strings("Values", values).el("HostHeaderConfig", |c| {
                    c.strings("Values", values);
                });
            }
            Self::HttpHeader { name, values } => {
                x.el("HttpHeaderConfig", |c| {
                    c.leaf("HttpHeaderName", name).strings("Values", values);
                });
            }
            Self::HttpRequestMethod { values } => {
                x.el("HttpRequestMethodConfig", |c| {
                    c.strings("Values", values);
                });
            }
            Self::QueryString { pairs } => {
                x.el("QueryStringConfig", |c| {
                    c.list("Values", pairs, |m, (k, v)| {
                        m.opt("Key", k.as_deref()).leaf("Value", v);
                    });
                });
            }
            Self::SourceIp { values } => {
                x.el("SourceIpConfig", |c| {
                    c.strings("Values", values);
                });
            }
        }
    }

    /// The data plane's view of it.
    pub fn to_model(&self) -> model::lb::Condition {
        use model::lb::Condition as C;
        match self {
            Self::PathPattern { values } => C::PathPattern(values.clone()),
            Self::HostHeader { values } => C::HostHeader(values.clone()),
            Self::HttpHeader { name, values } => C::HttpHeader {
                name: name.clone(),
                values: values.clone(),
            },
            Self::HttpRequestMethod { values } => C::HttpRequestMethod(values.clone()),
            Self::QueryString { pairs } => C::QueryString(pairs.clone()),
            Self::SourceIp { values } => C::SourceIp(values.clone()),
        }
    }
}

/// Decodes and checks the condition list `Conditions`.
pub fn parse_conditions(q: &QueryView<'_>) -> Result<Vec<ConditionSpec>, Elbv2Error> {
    let mut out: Vec<ConditionSpec> = Vec::new();
    for c in q.members("Conditions") {
        let cond = parse_condition(&c)?;
        let repeatable = matches!(
            cond,
            ConditionSpec::HttpHeader { .. } | ConditionSpec::QueryString { .. }
        );
        if !repeatable && out.iter().any(|o| o.field() == cond.field()) {
            return invalid(format!(
                "A rule can have only one '{}' condition; put all its values in one condition",
                cond.field()
            ));
        }
        out.push(cond);
    }
    if out.is_empty() {
        return invalid("A rule must have at least one condition");
    }
    let total: usize = out.iter().map(ConditionSpec::value_count).sum();
    if total > MAX_CONDITION_VALUES {
        return invalid(format!(
            "A rule can have at most {MAX_CONDITION_VALUES} condition values in total; {total} were given"
        ));
    }
    Ok(out)
}

fn parse_condition(c: &QueryView<'_>) -> Result<ConditionSpec, Elbv2Error> {
    let field = required(c, "Field")?;
    let legacy: Vec<String> = c.list("Values").into_iter().map(str::to_owned).collect();
    let config = |name: &str| -> Vec<String> {
        c.list(&format!("{name}.Values"))
            .into_iter()
            .map(str::to_owned)
            .collect()
    };
    let only_config = |name: &str| -> Result<Vec<String>, Elbv2Error> {
        if !legacy.is_empty() {
            return invalid(format!(
                "Condition '{field}' takes its values in {name}, not in Values"
            ));
        }
        Ok(config(name))
    };
    let either = |name: &str| -> Result<Vec<String>, Elbv2Error> {
        let cfg = config(name);
        match (legacy.is_empty(), cfg.is_empty()) {
            (false, false) => invalid(format!(
                "Condition '{field}' has values in both Values and {name}; give only one"
            )),
            (true, _) => Ok(cfg),
            (false, true) => Ok(legacy.clone()),
        }
    };
    let spec = match field {
        "path-pattern" => ConditionSpec::PathPattern {
            values: either("PathPatternConfig")?,
        },
        "host-header" => ConditionSpec::HostHeader {
            values: either("HostHeaderConfig")?,
        },
        "http-header" => ConditionSpec::HttpHeader {
            name: required(c, "HttpHeaderConfig.HttpHeaderName")?.to_owned(),
            values: only_config("HttpHeaderConfig")?,
        },
        "http-request-method" => ConditionSpec::HttpRequestMethod {
            values: only_config("HttpRequestMethodConfig")?,
        },
        "query-string" => {
            if !legacy.is_empty() {
                return invalid("Condition 'query-string' takes its values in QueryStringConfig, not in Values");
            }
            let mut pairs = Vec::new();
            for p in c.members("QueryStringConfig.Values") {
                let value = required(&p, "Value")?;
                pairs.push((p.get("Key").map(str::to_owned), value.to_owned()));
            }
            ConditionSpec::QueryString { pairs }
        }
        "source-ip" => ConditionSpec::SourceIp {
            values: only_config("SourceIpConfig")?,
        },
        other => {
            return invalid(format!(
                "Condition field '{other}' is not valid: use path-pattern, host-header, http-header, http-request-method, query-string or source-ip"
            ))
        }
    };
    if c.has("RegexValues") || c.has(&format!("{}.RegexValues", config_name(&spec))) {
        return invalid("Regular-expression condition values are not supported by Stevedore; use Values with * and ? wildcards");
    }
    check_condition(&spec)?;
    Ok(spec)
}

/// The `*Config` member name of a condition.
fn config_name(spec: &ConditionSpec) -> &'static str {
    match spec {
        ConditionSpec::PathPattern { .. } => "PathPatternConfig",
        ConditionSpec::HostHeader { .. } => "HostHeaderConfig",
        ConditionSpec::HttpHeader { .. } => "HttpHeaderConfig",
        ConditionSpec::HttpRequestMethod { .. } => "HttpRequestMethodConfig",
        ConditionSpec::QueryString { .. } => "QueryStringConfig",
        ConditionSpec::SourceIp { .. } => "SourceIpConfig",
    }
}

/// Checks a condition's values against AWS's character sets and lengths.
pub fn check_condition(spec: &ConditionSpec) -> Result<(), Elbv2Error> {
    let field = spec.field();
    let check_all = |values: &[String], ok: &dyn Fn(&str) -> bool, what: &str| {
        if values.is_empty() {
            return invalid(format!("Condition '{field}' needs at least one value"));
        }
        for v in values {
            if v.is_empty() || v.chars().count() > 128 || !ok(v) {
                return invalid(format!(
                    "Value '{v}' of condition '{field}' is not valid: {what}"
                ));
            }
        }
        Ok(())
    };
    match spec {
        ConditionSpec::PathPattern { values } => check_all(
            values,
            &|v| {
                v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.$/~\"'@:+&*?".contains(c))
            },
            "use up to 128 of A-Z a-z 0-9 _ - . $ / ~ \" ' @ : + & and the wildcards * and ?",
        ),
        ConditionSpec::HostHeader { values } => check_all(
            values,
            &|v| {
                v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.*?".contains(c))
            },
            "use up to 128 of A-Z a-z 0-9 - . and the wildcards * and ?",
        ),
        ConditionSpec::HttpHeader { name, values } => {
            let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
            if name.is_empty() || name.len() > 40 || !name.chars().all(token) {
                return invalid(format!("HTTP header name '{name}' is not valid: use up to 40 characters of a header token"));
            }
            check_all(
                values,
                &|v| !v.chars().any(char::is_control),
                "use up to 128 printable characters",
            )
        }
        ConditionSpec::HttpRequestMethod { values } => check_all(
            values,
            &|v| {
                v.len() <= 40
                    && v.chars()
                        .all(|c| c.is_ascii_uppercase() || c == '_' || c == '-')
            },
            "use up to 40 of A-Z - _ (methods are case-sensitive)",
        ),
        ConditionSpec::QueryString { pairs } => {
            if pairs.is_empty() {
                return invalid("Condition 'query-string' needs at least one key/value pair");
            }
            for (k, v) in pairs {
                let bad = |s: &str| s.chars().count() > 128 || s.chars().any(char::is_control);
                if v.is_empty() || bad(v) || k.as_deref().is_some_and(|k| k.is_empty() || bad(k)) {
                    return invalid(format!("Query-string pair '{}={v}' is not valid: keys and values are 1 to 128 printable characters", k.as_deref().unwrap_or("")));
                }
            }
            Ok(())
        }
        ConditionSpec::SourceIp { values } => check_all(
            values,
            &is_cidr,
            "use a CIDR block such as 192.0.2.0/24 or 2001:db8::/32",
        ),
    }
}

/// Whether `v` is an IPv4 or IPv6 CIDR block.
fn is_cidr(v: &str) -> bool {
    let Some((ip, bits)) = v.split_once('/') else {
        return false;
    };
    let Ok(bits) = bits.parse::<u8>() else {
        return false;
    };
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => bits <= 32,
        Ok(std::net::IpAddr::V6(_)) => bits <= 128,
        Err(_) => false,
    }
}

/// Checks an `Order`-free integer (used by callers that read bare priorities).
pub fn priority(q: &QueryView<'_>, name: &str) -> Result<Option<u32>, Elbv2Error> {
    Ok(int(q, name, 1, 50_000)?.and_then(|n| u32::try_from(n).ok()))
}
