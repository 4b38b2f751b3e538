//! Target groups: create (idempotent for identical settings), describe, modify their
//! health checks, delete (refused while a listener or rule forwards to them), and their
//! attributes (deregistration delay, algorithm, stickiness, ...).

use crate::arn;
use crate::error::{invalid, Elbv2Error};
use crate::load_balancers::DEFAULT_VPC;
use crate::params::{
    boolean, default_only, one_of, page, paginate, parse_bool, port, required, tags, uint,
};
use crate::state::{tg_not_found, HealthCheckSpec, State, StoredTargetGroup, Tags};
use crate::Elbv2;
use std::collections::BTreeMap;
use wire::query::QueryView;
use wire::xml::Xml;

/// Every `ProtocolEnum` value.
const PROTOCOLS: &[&str] = &[
    "HTTP", "HTTPS", "TCP", "TLS", "UDP", "TCP_UDP", "GENEVE", "QUIC", "TCP_QUIC",
];

/// Checks a target group name against AWS's rules.
pub fn check_tg_name(name: &str) -> Result<(), Elbv2Error> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        invalid(format!("Target group name '{name}' is not valid: use 1 to 32 letters, digits and hyphens, not beginning or ending with a hyphen"))
    }
}

/// The protocol Stevedore serves, or why not.
fn served_protocol(p: &str, what: &str) -> Result<(), Elbv2Error> {
    match p {
        "HTTP" | "TCP" => Ok(()),
        other => Err(Elbv2Error::UnsupportedProtocol(format!(
            "{what} protocol '{other}' is not supported by Stevedore; use HTTP or TCP"
        ))),
    }
}

/// The health check a CreateTargetGroup or ModifyTargetGroup request asks for, on top
/// of `base` (AWS's defaults for a new group, the current settings for a modification).
fn parse_health_check(
    q: &QueryView<'_>,
    tg_protocol: &str,
    base: Option<&HealthCheckSpec>,
) -> Result<HealthCheckSpec, Elbv2Error> {
    let protocol = match one_of(q, "HealthCheckProtocol", PROTOCOLS)? {
        Some(p) => {
            served_protocol(p, "Health check")?;
            if tg_protocol == "HTTP" && p != "HTTP" {
                return invalid(format!("Health check protocol '{p}' is not valid for a target group with protocol HTTP; use HTTP"));
            }
            p.to_owned()
        }
        None => base.map_or_else(|| tg_protocol.to_owned(), |b| b.protocol.clone()),
    };
    let http = protocol == "HTTP";
    let protocol_changed = base.is_some_and(|b| b.protocol != protocol);
    let hc_port = match q.get("HealthCheckPort") {
        Some("traffic-port") => "traffic-port".to_owned(),
        Some(p) if p.parse::<u16>().is_ok_and(|n| n >= 1) => p.to_owned(),
        Some(p) => {
            return invalid(format!(
                "Health check port '{p}' is not valid: use traffic-port or 1 to 65535"
            ))
        }
        None => base.map_or_else(|| "traffic-port".to_owned(), |b| b.port.clone()),
    };
    let path = match q.get("HealthCheckPath") {
        Some(_) if !http => {
            return invalid("HealthCheckPath applies only to HTTP health checks")
        }
        Some(p) if !p.starts_with('/') || p.len() > 1024 => {
            return invalid(format!("Health check path '{p}' is not valid: it must start with '/' and be at most 1024 characters"))
        }
        Some(p) => Some(p.to_owned()),
        None if !http => None,
        None => base
            .and_then(|b| b.path.clone())
            .filter(|_| !protocol_changed)
            .or_else(|| Some("/".to_owned())),
    };
    if q.get("Matcher.GrpcCode").is_some() {
        return invalid("Matcher.GrpcCode is not supported by Stevedore; use Matcher.HttpCode");
    }
    let matcher = match q.get("Matcher.HttpCode") {
        Some(_) if !http => return invalid("Matcher applies only to HTTP health checks"),
        Some(m) if model::lb::Matcher::parse(m).is_none() => {
            return invalid(format!("Matcher HttpCode '{m}' is not valid: use codes from 200 to 499 such as 200, 200,202 or 200-299"))
        }
        Some(m) => Some(m.to_owned()),
        None if !http => None,
        None => base
            .and_then(|b| b.matcher.clone())
            .filter(|_| !protocol_changed)
            .or_else(|| Some(if tg_protocol == "HTTP" { "200" } else { "200-399" }.to_owned())),
    };
    let interval = uint(q, "HealthCheckIntervalSeconds", 5, 300)?
        .unwrap_or_else(|| base.map_or(30, |b| b.interval_seconds));
    let timeout = uint(q, "HealthCheckTimeoutSeconds", 2, 120)?
        .unwrap_or_else(|| base.map_or(if http { 5 } else { 10 }, |b| b.timeout_seconds));
    if timeout >= interval {
        return invalid(format!(
            "Health check timeout ({timeout} s) must be smaller than the interval ({interval} s)"
        ));
    }
    Ok(HealthCheckSpec {
        enabled: boolean(q, "HealthCheckEnabled")?
            .unwrap_or_else(|| base.is_none_or(|b| b.enabled)),
        protocol,
        port: hc_port,
        path,
        interval_seconds: interval,
        timeout_seconds: timeout,
        healthy: uint(q, "HealthyThresholdCount", 2, 10)?
            .unwrap_or_else(|| base.map_or(5, |b| b.healthy)),
        unhealthy: uint(q, "UnhealthyThresholdCount", 2, 10)?
            .unwrap_or_else(|| base.map_or(2, |b| b.unhealthy)),
        matcher,
    })
}

fn parse_create(elb: &Elbv2, q: &QueryView<'_>, now: i64) -> Result<StoredTargetGroup, Elbv2Error> {
    let name = required(q, "Name")?;
    check_tg_name(name)?;
    let target_type =
        one_of(q, "TargetType", &["instance", "ip", "lambda", "alb"])?.unwrap_or("instance");
    if matches!(target_type, "lambda" | "alb") {
        return Err(Elbv2Error::InvalidConfigurationRequest(format!(
            "Target type '{target_type}' is not supported by Stevedore; use instance or ip"
        )));
    }
    let Some(protocol) = one_of(q, "Protocol", PROTOCOLS)? else {
        return invalid(format!(
            "A protocol must be specified for target groups with target type '{target_type}'"
        ));
    };
    served_protocol(protocol, "Target group")?;
    let Some(tg_port) = port(q, "Port")? else {
        return invalid(format!(
            "A port must be specified for target groups with target type '{target_type}'"
        ));
    };
    let protocol_version = match (protocol, q.get("ProtocolVersion")) {
        ("HTTP", None | Some("HTTP1")) => Some("HTTP1".to_owned()),
        ("HTTP", Some(v)) => {
            return Err(Elbv2Error::UnsupportedProtocol(format!(
                "Protocol version '{v}' is not supported by Stevedore; use HTTP1"
            )))
        }
        (_, Some(_)) => return invalid("ProtocolVersion applies only to HTTP target groups"),
        (_, None) => None,
    };
    one_of(q, "IpAddressType", &["ipv4", "ipv6"])?;
    let health_check = parse_health_check(q, protocol, None)?;
    Ok(StoredTargetGroup {
        arn: arn::target_group(&elb.scope, name, &arn::new_id()),
        name: name.to_owned(),
        protocol: protocol.to_owned(),
        port: tg_port,
        vpc_id: q.get("VpcId").unwrap_or(DEFAULT_VPC).to_owned(),
        target_type: target_type.to_owned(),
        protocol_version,
        health_check,
        attributes: BTreeMap::new(),
        tags: tags(q, "Tags")?.into_iter().collect::<Tags>(),
        targets: Vec::new(),
        created_ms: now,
    })
}

pub(crate) async fn create_target_group(
    elb: &Elbv2,
    q: &QueryView<'_>,
) -> Result<String, Elbv2Error> {
    let new = parse_create(elb, q, elb.now_ms())?;
    let (tg, lbs) = elb
        .objects
        .write("target group", |w| {
            if let Some(existing) = w.tgs.get(&new.name) {
                let same = existing.protocol == new.protocol
                    && existing.port == new.port
                    && existing.vpc_id == new.vpc_id
                    && existing.target_type == new.target_type
                    && existing.health_check == new.health_check;
                return if same {
                    Ok((existing.clone(), lb_arns(w, &existing.arn)))
                } else {
                    Err(Elbv2Error::DuplicateTargetGroupName(format!(
                        "A target group named '{}' already exists with different settings",
                        new.name
                    )))
                };
            }
            w.tgs.insert(new.name.clone(), new.clone());
            Ok((new.clone(), Vec::new()))
        })
        .await?;
    tracing::info!(target_group = %tg.arn, "Target group created.");
    let mut x = Xml::new();
    x.list("TargetGroups", [(&tg, lbs)], |m, (tg, lbs)| {
        render_tg(m, tg, &lbs)
    });
    Ok(x.finish())
}

/// ARNs of the load balancers forwarding to a target group.
fn lb_arns(w: &State, tg_arn: &str) -> Vec<String> {
    w.lbs_using(tg_arn)
        .into_iter()
        .map(|lb| lb.arn.clone())
        .collect()
}

/// Writes a `TargetGroup` structure's members.
fn render_tg(x: &mut Xml, tg: &StoredTargetGroup, lbs: &[String]) {
    let hc = &tg.health_check;
    x.leaf("TargetGroupArn", &tg.arn)
        .leaf("TargetGroupName", &tg.name)
        .leaf("Protocol", &tg.protocol)
        .leaf("Port", &tg.port.to_string())
        .leaf("VpcId", &tg.vpc_id)
        .leaf("HealthCheckProtocol", &hc.protocol)
        .leaf("HealthCheckPort", &hc.port)
        .leaf("HealthCheckEnabled", crate::actions::bool_text(hc.enabled))
        .leaf(
            "HealthCheckIntervalSeconds",
            &hc.interval_seconds.to_string(),
        )
        .leaf("HealthCheckTimeoutSeconds", &hc.timeout_seconds.to_string())
        .leaf("HealthyThresholdCount", &hc.healthy.to_string())
        .leaf("UnhealthyThresholdCount", &hc.unhealthy.to_string())
        .opt("HealthCheckPath", hc.path.as_deref());
    if let Some(m) = &hc.matcher {
        x.el("Matcher", |mm| {
            mm.leaf("HttpCode", m);
        });
    }
    x.strings("LoadBalancerArns", lbs)
        .leaf("TargetType", &tg.target_type)
        .opt("ProtocolVersion", tg.protocol_version.as_deref())
        .leaf("IpAddressType", "ipv4");
}

pub(crate) async fn describe_target_groups(
    elb: &Elbv2,
    q: &QueryView<'_>,
) -> Result<String, Elbv2Error> {
    let lb_arn = q.get("LoadBalancerArn");
    let arns = q.list("TargetGroupArns");
    let names = q.list("Names");
    let given = usize::from(lb_arn.is_some())
        + usize::from(!arns.is_empty())
        + usize::from(!names.is_empty());
    if given > 1 {
        return invalid("Give only one of LoadBalancerArn, TargetGroupArns and Names");
    }
    let (after, size) = page(q, "tg")?;
    let (world, _, _) = elb.objects.load().await?;
    let mut found: Vec<&StoredTargetGroup> = Vec::new();
    if let Some(lb_arn) = lb_arn {
        let lb = world.lb(&arn::load_balancer_name(&elb.scope, lb_arn)?, lb_arn)?;
        found.extend(world.tgs.values().filter(|tg| {
            lb.listeners.iter().any(|l| {
                l.default_actions.iter().any(|a| a.forwards_to(&tg.arn))
                    || l.rules
                        .iter()
                        .any(|r| r.actions.iter().any(|a| a.forwards_to(&tg.arn)))
            })
        }));
    } else if !arns.is_empty() {
        let mut missing = Vec::new();
        for a in &arns {
            match arn::target_group_name(&elb.scope, a).and_then(|n| world.tg(&n, a)) {
                Ok(tg) => found.push(tg),
                Err(_) => missing.push(*a),
            }
        }
        if !missing.is_empty() {
            return Err(Elbv2Error::TargetGroupNotFound(format!(
                "One or more target groups not found: {}",
                missing.join(", ")
            )));
        }
    } else if !names.is_empty() {
        let missing: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| !world.tgs.contains_key(*n))
            .collect();
        if !missing.is_empty() {
            return Err(Elbv2Error::TargetGroupNotFound(format!(
                "One or more target groups not found: {}",
                missing.join(", ")
            )));
        }
        found.extend(names.iter().filter_map(|n| world.tgs.get(*n)));
    } else {
        found.extend(world.tgs.values());
    }
    let mut keyed: Vec<(String, &StoredTargetGroup)> =
        found.into_iter().map(|tg| (tg.name.clone(), tg)).collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.dedup_by(|a, b| a.0 == b.0);
    let (items, next) = paginate("tg", keyed, after.as_deref(), size);
    let mut x = Xml::new();
    x.list("TargetGroups", items, |m, tg| {
        render_tg(m, tg, &lb_arns(&world, &tg.arn))
    });
    x.opt("NextMarker", next.as_deref());
    Ok(x.finish())
}

pub(crate) async fn modify_target_group(
    elb: &Elbv2,
    q: &QueryView<'_>,
) -> Result<String, Elbv2Error> {
    let arn = required(q, "TargetGroupArn")?;
    let name = arn::target_group_name(&elb.scope, arn)?;
    let (tg, lbs) = elb
        .objects
        .write("target group", |w| {
            let tg = w.tg_mut(&name, arn)?;
            tg.health_check = parse_health_check(q, &tg.protocol.clone(), Some(&tg.health_check))?;
            let tg = tg.clone();
            Ok((tg, lb_arns(w, arn)))
        })
        .await?;
    let mut x = Xml::new();
    x.list("TargetGroups", [(&tg, lbs)], |m, (tg, lbs)| {
        render_tg(m, tg, &lbs)
    });
    Ok(x.finish())
}

pub(crate) async fn delete_target_group(
    elb: &Elbv2,
    q: &QueryView<'_>,
) -> Result<String, Elbv2Error> {
    let arn = required(q, "TargetGroupArn")?;
    let name = arn::target_group_name(&elb.scope, arn)?;
    let deleted = elb
        .objects
        .write("target group", |w| {
            // Deleting a target group that is already gone succeeds, as in AWS.
            if w.tg(&name, arn).is_err() {
                return Ok(false);
            }
            if let Some(lb) = w.lbs_using(arn).first() {
                return Err(Elbv2Error::ResourceInUse(format!(
                    "Target group '{arn}' is currently in use by a listener or a rule of load balancer '{}'; remove it from their actions first",
                    lb.arn
                )));
            }
            w.tgs.remove(&name);
            Ok(true)
        })
        .await?;
    if deleted {
        elb.forget_health(arn);
        tracing::info!(target_group = %arn, "Target group deleted.");
    }
    Ok(String::new())
}

/// Default attributes of a target group.
fn default_attributes(tg: &StoredTargetGroup) -> Vec<(&'static str, &'static str)> {
    let mut out = vec![
        ("deregistration_delay.timeout_seconds", "300"),
        ("stickiness.enabled", "false"),
    ];
    if tg.protocol == "HTTP" {
        out.extend([
            ("stickiness.type", "lb_cookie"),
            ("stickiness.lb_cookie.duration_seconds", "86400"),
            ("stickiness.app_cookie.cookie_name", ""),
            ("stickiness.app_cookie.duration_seconds", "86400"),
            ("load_balancing.algorithm.type", "round_robin"),
            ("load_balancing.algorithm.anomaly_mitigation", "off"),
            ("slow_start.duration_seconds", "0"),
        ]);
    } else {
        out.extend([
            ("stickiness.type", "source_ip"),
            (
                "deregistration_delay.connection_termination.enabled",
                "false",
            ),
            (
                "preserve_client_ip.enabled",
                if tg.target_type == "instance" {
                    "true"
                } else {
                    "false"
                },
            ),
            ("proxy_protocol_v2.enabled", "false"),
            (
                "target_health_state.unhealthy.connection_termination.enabled",
                "true",
            ),
            (
                "target_health_state.unhealthy.draining_interval_seconds",
                "0",
            ),
        ]);
    }
    out.extend([
        (
            "load_balancing.cross_zone.enabled",
            "use_load_balancer_configuration",
        ),
        (
            "target_group_health.dns_failover.minimum_healthy_targets.count",
            "1",
        ),
        (
            "target_group_health.dns_failover.minimum_healthy_targets.percentage",
            "off",
        ),
        (
            "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count",
            "1",
        ),
        (
            "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage",
            "off",
        ),
    ]);
    out
}

/// A target group attribute's current value (stored, else default, else empty).
pub fn attribute(tg: &StoredTargetGroup, key: &str) -> String {
    tg.attributes.get(key).cloned().unwrap_or_else(|| {
        default_attributes(tg)
            .into_iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_owned())
            .unwrap_or_default()
    })
}

/// `deregistration_delay.timeout_seconds` in milliseconds.
pub fn deregistration_delay_ms(tg: &StoredTargetGroup) -> i64 {
    attribute(tg, "deregistration_delay.timeout_seconds")
        .parse::<i64>()
        .unwrap_or(300)
        .saturating_mul(1000)
}

/// Checks one attribute change against its key's type.
fn check_tg_attribute(tg: &StoredTargetGroup, key: &str, value: &str) -> Result<(), Elbv2Error> {
    if !default_attributes(tg).iter().any(|(k, _)| *k == key) {
        return invalid(format!(
            "Target group attribute key '{key}' is not recognized for {} target groups",
            tg.protocol
        ));
    }
    let int_in = |lo: i64, hi: i64| value.parse::<i64>().is_ok_and(|n| (lo..=hi).contains(&n));
    let ok = match key {
        k if k.ends_with(".enabled") && k != "load_balancing.cross_zone.enabled" => {
            parse_bool(value).is_some()
        }
        "load_balancing.cross_zone.enabled" => {
            matches!(value, "true" | "false" | "use_load_balancer_configuration")
        }
        "deregistration_delay.timeout_seconds" => int_in(0, 3600),
        "stickiness.lb_cookie.duration_seconds" | "stickiness.app_cookie.duration_seconds" => {
            int_in(1, 604_800)
        }
        "stickiness.type" if tg.protocol == "HTTP" => matches!(value, "lb_cookie" | "app_cookie"),
        "stickiness.type" => value == "source_ip",
        "load_balancing.algorithm.type" => {
            if value == "weighted_random" {
                return invalid("load_balancing.algorithm.type 'weighted_random' is not supported by Stevedore; use round_robin or least_outstanding_requests");
            }
            matches!(value, "round_robin" | "least_outstanding_requests")
        }
        "load_balancing.algorithm.anomaly_mitigation" => matches!(value, "on" | "off"),
        "slow_start.duration_seconds" => value == "0" || int_in(30, 900),
        "target_health_state.unhealthy.draining_interval_seconds" => int_in(0, 360_000),
        k if k.ends_with(".count") => int_in(1, 1_000_000),
        k if k.ends_with(".percentage") => value == "off" || int_in(1, 100),
        _ => value.len() <= 1024,
    };
    if !ok {
        return invalid(format!(
            "Target group attribute '{key}' cannot be set to '{value}'"
        ));
    }
    Ok(())
}

/// Attributes the data plane does not act on (slow start, anomaly mitigation, proxy
/// protocol, connection termination, DNS failover and unhealthy-state routing thresholds):
/// only their default is accepted, so that no setting is stored and silently ignored
/// (Terraform and the console send the defaults, which describe what the data plane does).
const INERT_TG_ATTRIBUTES: &[&str] = &[
    "load_balancing.algorithm.anomaly_mitigation",
    "slow_start.duration_seconds",
    "deregistration_delay.connection_termination.enabled",
    "proxy_protocol_v2.enabled",
    "target_health_state.unhealthy.connection_termination.enabled",
    "target_health_state.unhealthy.draining_interval_seconds",
    "target_group_health.dns_failover.minimum_healthy_targets.count",
    "target_group_health.dns_failover.minimum_healthy_targets.percentage",
    "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count",
    "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage",
];

/// Refuses a changed attribute whose value the data plane would not honour: an inert
/// attribute off its default, cross-zone load balancing turned off (one data plane node
/// reaches every zone's targets), or stickiness enabled with a type other than
/// `lb_cookie` (application-cookie and source-IP stickiness are not enforced).
fn check_honoured(tg: &StoredTargetGroup, changed: &[(String, String)]) -> Result<(), Elbv2Error> {
    let defaults = default_attributes(tg);
    for (key, _) in changed {
        let value = attribute(tg, key);
        if INERT_TG_ATTRIBUTES.contains(&key.as_str()) {
            default_only("Target group", &defaults, key, &value)?;
        }
        if key == "load_balancing.cross_zone.enabled" && value == "false" {
            return invalid("Target group attribute 'load_balancing.cross_zone.enabled' cannot be set to 'false' on Stevedore: its single load balancer node reaches the targets of every zone");
        }
    }
    let stickiness_changed = changed
        .iter()
        .any(|(k, _)| k == "stickiness.enabled" || k == "stickiness.type");
    let kind = attribute(tg, "stickiness.type");
    if stickiness_changed && attribute(tg, "stickiness.enabled") == "true" && kind != "lb_cookie" {
        return invalid(format!(
            "Stickiness type '{kind}' is not supported by Stevedore: its load balancer enforces duration-based 'lb_cookie' stickiness only (HTTP target groups)"
        ));
    }
    Ok(())
}

fn render_tg_attributes(x: &mut Xml, tg: &StoredTargetGroup) {
    let keys: Vec<&str> = default_attributes(tg).into_iter().map(|(k, _)| k).collect();
    x.list("Attributes", keys, |m, k| {
        m.leaf("Key", k).leaf("Value", &attribute(tg, k));
    });
}

pub(crate) async fn describe_target_group_attributes(
    elb: &Elbv2,
    q: &QueryView<'_>,
) -> Result<String, Elbv2Error> {
    let arn = required(q, "TargetGroupArn")?;
    let name = arn::target_group_name(&elb.scope, arn)?;
    let (world, _, _) = elb.objects.load().await?;
    let tg = world
        .tgs
        .get(&name)
        .filter(|tg| tg.arn == arn)
        .ok_or_else(|| tg_not_found(arn))?;
    let mut x = Xml::new();
    render_tg_attributes(&mut x, tg);
    Ok(x.finish())
}

pub(crate) async fn modify_target_group_attributes(
    elb: &Elbv2,
    q: &QueryView<'_>,
) -> Result<String, Elbv2Error> {
    let arn = required(q, "TargetGroupArn")?;
    let name = arn::target_group_name(&elb.scope, arn)?;
    let mut changes = Vec::new();
    for m in q.members("Attributes") {
        changes.push((
            required(&m, "Key")?.to_owned(),
            m.get("Value").unwrap_or("").to_owned(),
        ));
    }
    if changes.is_empty() {
        return invalid("At least one attribute must be given in Attributes");
    }
    let tg = elb
        .objects
        .write("target group", |w| {
            let tg = w.tg_mut(&name, arn)?;
            for (k, v) in &changes {
                check_tg_attribute(tg, k, v)?;
                let v = match parse_bool(v) {
                    Some(b)
                        if k.ends_with(".enabled") && k != "load_balancing.cross_zone.enabled" =>
                    {
                        b.to_string()
                    }
                    _ => v.clone(),
                };
                tg.attributes.insert(k.clone(), v);
            }
            check_honoured(tg, &changes)?;
            Ok(tg.clone())
        })
        .await?;
    let mut x = Xml::new();
    render_tg_attributes(&mut x, &tg);
    Ok(x.finish())
}
