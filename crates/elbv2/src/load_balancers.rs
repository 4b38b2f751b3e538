//! Load balancers: create (idempotent for identical settings), describe, delete (with
//! their listeners and rules), their attributes, and the account limits.

use crate::arn;
use crate::error::{invalid, Elbv2Error};
use crate::params::{default_only, one_of, page, paginate, parse_bool, required, tags};
use crate::state::{LbType, StoredLoadBalancer, Tags};
use crate::Elbv2;
use std::collections::BTreeMap;
use wire::query::QueryView;
use wire::xml::{iso8601, Xml};

/// The VPC id shown when none applies (Stevedore has no VPCs).
pub const DEFAULT_VPC: &str = "vpc-00000000";
/// Most listeners per load balancer (AWS's default quota).
pub const MAX_LISTENERS: usize = 50;
/// Most non-default rules per load balancer (AWS's default quota).
pub const MAX_RULES: usize = 100;
/// Most targets per target group in Stevedore.
pub const MAX_TARGETS: usize = 1000;

/// Checks a load balancer name against AWS's rules.
pub fn check_lb_name(name: &str) -> Result<(), Elbv2Error> {
    if name.is_empty() || name.len() > 32 {
        return invalid(format!(
            "Load balancer name '{name}' is not valid: it must be 1 to 32 characters"
        ));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return invalid(format!(
            "Load balancer name '{name}' is not valid: use only letters, digits and hyphens"
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return invalid(format!(
            "Load balancer name '{name}' is not valid: it cannot begin or end with a hyphen"
        ));
    }
    if name.starts_with("internal-") {
        return invalid(format!(
            "Load balancer name '{name}' is not valid: it cannot begin with 'internal-'"
        ));
    }
    Ok(())
}

/// A parsed CreateLoadBalancer request.
struct NewLoadBalancer {
    name: String,
    kind: LbType,
    scheme: String,
    subnets: Vec<String>,
    security_groups: Vec<String>,
    ip_address_type: String,
    tags: Vec<(String, String)>,
}

fn parse_create(q: &QueryView<'_>) -> Result<NewLoadBalancer, Elbv2Error> {
    let name = required(q, "Name")?;
    check_lb_name(name)?;
    let kind =
        match one_of(q, "Type", &["application", "network", "gateway"])? {
            None | Some("application") => LbType::Application,
            Some("network") => LbType::Network,
            Some(_) => return Err(Elbv2Error::InvalidConfigurationRequest(
                "Gateway load balancers are not supported by Stevedore; use application or network"
                    .into(),
            )),
        };
    let scheme =
        one_of(q, "Scheme", &["internet-facing", "internal"])?.unwrap_or("internet-facing");
    let ip_address_type = one_of(
        q,
        "IpAddressType",
        &["ipv4", "dualstack", "dualstack-without-public-ipv4"],
    )?
    .unwrap_or("ipv4");
    let mut subnets: Vec<String> = q.list("Subnets").into_iter().map(str::to_owned).collect();
    for m in q.members("SubnetMappings") {
        subnets.push(required(&m, "SubnetId")?.to_owned());
    }
    let security_groups = parse_security_groups(q);
    Ok(NewLoadBalancer {
        name: name.to_owned(),
        kind,
        scheme: scheme.to_owned(),
        subnets,
        security_groups,
        ip_address_type: ip_address_type.to_owned(),
        tags: tags(q, "Tags")?,
    })
}

/// Refuses groups that do not exist, or any group when nothing could enforce them
/// (no EC2 wired): a group we accepted would have to act.
async fn check_security_groups(elb: &Elbv2, ids: &[String]) -> Result<(), Elbv2Error> {
    if ids.is_empty() {
        return Ok(());
    }
    let Some(groups) = elb.groups.get() else {
        return Err(Elbv2Error::InvalidSecurityGroup(
            "Security groups cannot be enforced by this Stevedore (no EC2 networking is wired to its load balancers)".into(),
        ));
    };
    groups.check(ids).await.map_err(|missing| {
        Elbv2Error::InvalidSecurityGroup(format!(
            "One or more security groups are invalid: {}",
            missing.join(", ")
        ))
    })
}

/// The `SecurityGroups` list, each id once, in the order given.
fn parse_security_groups(q: &QueryView<'_>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for id in q.list("SecurityGroups") {
        if !out.iter().any(|g| g == id) {
            out.push(id.to_owned());
        }
    }
    out
}

pub(crate) async fn create_load_balancer(
    elb: &Elbv2,
    q: &QueryView<'_>,
) -> Result<String, Elbv2Error> {
    let new = parse_create(q)?;
    check_security_groups(elb, &new.security_groups).await?;
    let arn = arn::load_balancer(&elb.scope, new.kind.arn_kind(), &new.name, &arn::new_id());
    let now = elb.now_ms();
    let lb = elb
        .objects
        .write("load balancer", |w| {
            if let Some(existing) = w.lbs.get(&new.name) {
                let same = existing.kind == new.kind
                    && existing.scheme == new.scheme
                    && existing.subnets == new.subnets
                    && existing.security_groups == new.security_groups;
                return if same {
                    Ok(existing.clone())
                } else {
                    Err(Elbv2Error::DuplicateLoadBalancerName(format!(
                        "A load balancer named '{}' already exists with different settings",
                        new.name
                    )))
                };
            }
            let lb = StoredLoadBalancer {
                arn: arn.clone(),
                name: new.name.clone(),
                kind: new.kind,
                scheme: new.scheme.clone(),
                subnets: new.subnets.clone(),
                security_groups: new.security_groups.clone(),
                ip_address_type: new.ip_address_type.clone(),
                created_ms: now,
                tags: new.tags.iter().cloned().collect::<Tags>(),
                attributes: BTreeMap::new(),
                listeners: Vec::new(),
            };
            w.lbs.insert(new.name.clone(), lb.clone());
            Ok(lb)
        })
        .await?;
    tracing::info!(load_balancer = %lb.arn, "Load balancer created.");
    let mut x = Xml::new();
    x.list("LoadBalancers", [&lb], |m, lb| render_lb(elb, m, lb));
    Ok(x.finish())
}

/// Writes a `LoadBalancer` structure's members.
fn render_lb(elb: &Elbv2, x: &mut Xml, lb: &StoredLoadBalancer) {
    let zone_letters = ['a', 'b', 'c', 'd', 'e', 'f'];
    let region = &elb.scope.region;
    x.leaf("LoadBalancerArn", &lb.arn)
        .leaf("DNSName", &elb.dns_name())
        .leaf(
            "CanonicalHostedZoneId",
            match lb.kind {
                LbType::Application => "Z35SXDOTRQ7X7K",
                LbType::Network => "Z26RNL4JYFTOTI",
            },
        )
        .leaf("CreatedTime", &iso8601(lb.created_ms))
        .leaf("LoadBalancerName", &lb.name)
        .leaf("Scheme", &lb.scheme)
        .leaf("VpcId", DEFAULT_VPC)
        .el("State", |s| {
            s.leaf("Code", "active");
        })
        .leaf("Type", lb.kind.as_str());
    let zones: Vec<(String, Option<&str>)> = if lb.subnets.is_empty() {
        vec![(format!("{region}a"), None)]
    } else {
        lb.subnets
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let letter = zone_letters[i % zone_letters.len()];
                (format!("{region}{letter}"), Some(s.as_str()))
            })
            .collect()
    };
    x.list("AvailabilityZones", zones, |z, (zone, subnet)| {
        z.leaf("ZoneName", &zone).opt("SubnetId", subnet);
        z.el("LoadBalancerAddresses", |_| {});
    });
    if lb.kind == LbType::Application || !lb.security_groups.is_empty() {
        x.strings("SecurityGroups", &lb.security_groups);
    }
    x.leaf("IpAddressType", &lb.ip_address_type);
}

/// SetSecurityGroups: replaces the load balancer's groups; the packet filter follows
/// within its next round. A network load balancer created without groups cannot get
/// any, as in AWS.
pub(crate) async fn set_security_groups(
    elb: &Elbv2,
    q: &QueryView<'_>,
) -> Result<String, Elbv2Error> {
    let arn = required(q, "LoadBalancerArn")?;
    let name = arn::load_balancer_name(&elb.scope, arn)?;
    let groups = parse_security_groups(q);
    let enforce = one_of(
        q,
        "EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic",
        &["on", "off"],
    )?;
    if enforce == Some("off") {
        return Err(Elbv2Error::InvalidConfigurationRequest(
            "EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic 'off' is not supported: Stevedore has no PrivateLink, and inbound rules apply to all traffic".into(),
        ));
    }
    check_security_groups(elb, &groups).await?;
    let lb = elb
        .objects
        .write("load balancer", |w| {
            let lb = w.lb_mut(&name, arn)?;
            if lb.kind == LbType::Network && lb.security_groups.is_empty() {
                return Err(Elbv2Error::InvalidConfigurationRequest(format!(
                    "Load balancer '{arn}' was created without security groups; a network load balancer cannot get them later"
                )));
            }
            if lb.kind == LbType::Application && groups.is_empty() {
                return invalid("An application load balancer needs at least one security group");
            }
            lb.security_groups = groups.clone();
            Ok(lb.clone())
        })
        .await?;
    tracing::info!(load_balancer = %lb.arn, groups = ?lb.security_groups, "Load balancer security groups set.");
    let mut x = Xml::new();
    x.strings("SecurityGroupIds", &lb.security_groups);
    if lb.kind == LbType::Network {
        x.leaf("EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic", "on");
    }
    Ok(x.finish())
}

pub(crate) async fn describe_load_balancers(
    elb: &Elbv2,
    q: &QueryView<'_>,
) -> Result<String, Elbv2Error> {
    let arns = q.list("LoadBalancerArns");
    let names = q.list("Names");
    if !arns.is_empty() && !names.is_empty() {
        return invalid("LoadBalancerArns and Names cannot be given together");
    }
    let (after, size) = page(q, "lb")?;
    let (world, _, _) = elb.objects.load().await?;
    let mut found: Vec<(String, &StoredLoadBalancer)> = Vec::new();
    if !arns.is_empty() {
        let mut missing = Vec::new();
        for a in &arns {
            let lb = arn::load_balancer_name(&elb.scope, a).and_then(|n| world.lb(&n, a));
            match lb {
                Ok(lb) => found.push((lb.name.clone(), lb)),
                Err(_) => missing.push(*a),
            }
        }
        if !missing.is_empty() {
            return Err(Elbv2Error::LoadBalancerNotFound(format!(
                "One or more load balancers not found: {}",
                missing.join(", ")
            )));
        }
    } else if !names.is_empty() {
        let missing: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| !world.lbs.contains_key(*n))
            .collect();
        if !missing.is_empty() {
            return Err(Elbv2Error::LoadBalancerNotFound(format!(
                "One or more load balancers not found: {}",
                missing.join(", ")
            )));
        }
        found.extend(
            names
                .iter()
                .filter_map(|n| world.lbs.get(*n))
                .map(|lb| (lb.name.clone(), lb)),
        );
    } else {
        found.extend(world.lbs.values().map(|lb| (lb.name.clone(), lb)));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found.dedup_by(|a, b| a.0 == b.0);
    let (items, next) = paginate("lb", found, after.as_deref(), size);
    let mut x = Xml::new();
    x.list("LoadBalancers", items, |m, lb| render_lb(elb, m, lb));
    x.opt("NextMarker", next.as_deref());
    Ok(x.finish())
}

pub(crate) async fn delete_load_balancer(
    elb: &Elbv2,
    q: &QueryView<'_>,
) -> Result<String, Elbv2Error> {
    let arn = required(q, "LoadBalancerArn")?;
    let name = arn::load_balancer_name(&elb.scope, arn)?;
    let deleted = elb
        .objects
        .write("load balancer", |w| {
            // Deleting a load balancer that is already gone succeeds, as in AWS.
            let Ok(lb) = w.lb(&name, arn) else {
                return Ok(false);
            };
            if attribute(lb, "deletion_protection.enabled") == "true" {
                return Err(Elbv2Error::OperationNotPermitted(format!(
                    "Load balancer '{arn}' cannot be deleted because deletion protection is enabled; set deletion_protection.enabled to false first"
                )));
            }
            w.lbs.remove(&name);
            Ok(true)
        })
        .await?;
    if deleted {
        tracing::info!(load_balancer = %arn, "Load balancer deleted.");
    }
    Ok(String::new())
}

/// Default attributes by load balancer type.
fn default_attributes(kind: LbType) -> Vec<(&'static str, &'static str)> {
    let mut out = vec![
        ("access_logs.s3.enabled", "false"),
        ("access_logs.s3.bucket", ""),
        ("access_logs.s3.prefix", ""),
        ("deletion_protection.enabled", "false"),
    ];
    match kind {
        LbType::Application => out.extend([
            ("idle_timeout.timeout_seconds", "60"),
            ("client_keep_alive.seconds", "3600"),
            ("routing.http2.enabled", "true"),
            ("routing.http.drop_invalid_header_fields.enabled", "false"),
            ("routing.http.preserve_host_header.enabled", "false"),
            ("routing.http.xff_header_processing.mode", "append"),
            (
                "routing.http.x_amzn_tls_version_and_cipher_suite.enabled",
                "false",
            ),
            ("routing.http.xff_client_port.enabled", "false"),
            ("routing.http.desync_mitigation_mode", "defensive"),
            ("waf.fail_open.enabled", "false"),
            ("load_balancing.cross_zone.enabled", "true"),
        ]),
        LbType::Network => out.extend([
            ("load_balancing.cross_zone.enabled", "false"),
            ("dns_record.client_routing_policy", "any_availability_zone"),
        ]),
    }
    out
}

/// An attribute's current value (stored, else default, else empty).
pub fn attribute(lb: &StoredLoadBalancer, key: &str) -> String {
    lb.attributes.get(key).cloned().unwrap_or_else(|| {
        default_attributes(lb.kind)
            .into_iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_owned())
            .unwrap_or_default()
    })
}

fn render_lb_attributes(x: &mut Xml, lb: &StoredLoadBalancer) {
    let keys: Vec<&str> = default_attributes(lb.kind)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    x.list("Attributes", keys, |m, k| {
        m.leaf("Key", k).leaf("Value", &attribute(lb, k));
    });
}

/// Checks one attribute change against its key's type.
fn check_lb_attribute(kind: LbType, key: &str, value: &str) -> Result<(), Elbv2Error> {
    if !default_attributes(kind).iter().any(|(k, _)| *k == key) {
        return invalid(format!(
            "Load balancer attribute key '{key}' is not recognized for {} load balancers",
            kind.as_str()
        ));
    }
    let int_in = |lo: i64, hi: i64| value.parse::<i64>().is_ok_and(|n| (lo..=hi).contains(&n));
    let ok = match key {
        k if k.ends_with(".enabled") => parse_bool(value).is_some(),
        "idle_timeout.timeout_seconds" => int_in(1, 4000),
        "client_keep_alive.seconds" => int_in(60, 604_800),
        "routing.http.xff_header_processing.mode" => {
            matches!(value, "append" | "preserve" | "remove")
        }
        "routing.http.desync_mitigation_mode" => {
            matches!(value, "monitor" | "defensive" | "strictest")
        }
        "dns_record.client_routing_policy" => matches!(
            value,
            "availability_zone_affinity"
                | "partial_availability_zone_affinity"
                | "any_availability_zone"
        ),
        _ => value.len() <= 1024,
    };
    if !ok {
        return invalid(format!(
            "Load balancer attribute '{key}' cannot be set to '{value}'"
        ));
    }
    Ok(())
}

/// The load balancer attributes the data plane or the API acts on; every other one takes
/// only its default (which describes what the data plane does), so that no setting is
/// stored and silently ignored. Access logs' bucket and prefix are inert while access
/// logs stay off.
const ACTED_ON_LB_ATTRIBUTES: &[&str] = &[
    "idle_timeout.timeout_seconds",
    "deletion_protection.enabled",
    "access_logs.s3.bucket",
    "access_logs.s3.prefix",
];

/// Refuses a changed attribute the data plane would not honour (see
/// [`ACTED_ON_LB_ATTRIBUTES`]).
fn check_honoured(lb: &StoredLoadBalancer, changed: &[(String, String)]) -> Result<(), Elbv2Error> {
    let defaults = default_attributes(lb.kind);
    for (key, _) in changed {
        if ACTED_ON_LB_ATTRIBUTES.contains(&key.as_str()) {
            continue;
        }
        default_only("Load balancer", &defaults, key, &attribute(lb, key))?;
    }
    Ok(())
}

pub(crate) async fn describe_load_balancer_attributes(
    elb: &Elbv2,
    q: &QueryView<'_>,
) -> Result<String, Elbv2Error> {
    let arn = required(q, "LoadBalancerArn")?;
    let name = arn::load_balancer_name(&elb.scope, arn)?;
    let (world, _, _) = elb.objects.load().await?;
    let lb = world.lb(&name, arn)?;
    let mut x = Xml::new();
    render_lb_attributes(&mut x, lb);
    Ok(x.finish())
}

pub(crate) async fn modify_load_balancer_attributes(
    elb: &Elbv2,
    q: &QueryView<'_>,
) -> Result<String, Elbv2Error> {
    let arn = required(q, "LoadBalancerArn")?;
    let name = arn::load_balancer_name(&elb.scope, arn)?;
    let mut changes = Vec::new();
    for m in q.members("Attributes") {
        let key = required(&m, "Key")?;
        let value = m.get("Value").unwrap_or("");
        changes.push((key.to_owned(), value.to_owned()));
    }
    if changes.is_empty() {
        return invalid("At least one attribute must be given in Attributes");
    }
    let lb = elb
        .objects
        .write("load balancer", |w| {
            let lb = w.lb_mut(&name, arn)?;
            for (k, v) in &changes {
                check_lb_attribute(lb.kind, k, v)?;
                let v = if k.ends_with(".enabled") {
                    parse_bool(v).unwrap_or(false).to_string()
                } else {
                    v.clone()
                };
                lb.attributes.insert(k.clone(), v);
            }
            check_honoured(lb, &changes)?;
            Ok(lb.clone())
        })
        .await?;
    let mut x = Xml::new();
    render_lb_attributes(&mut x, &lb);
    Ok(x.finish())
}

pub(crate) async fn describe_account_limits(
    _elb: &Elbv2,
    q: &QueryView<'_>,
) -> Result<String, Elbv2Error> {
    let (after, size) = page(q, "limits")?;
    let limits: Vec<(String, (&str, String))> = [
        ("application-load-balancers", "50".to_owned()),
        (
            "condition-values-per-alb-rule",
            crate::actions::MAX_CONDITION_VALUES.to_string(),
        ),
        (
            "listeners-per-application-load-balancer",
            MAX_LISTENERS.to_string(),
        ),
        (
            "listeners-per-network-load-balancer",
            MAX_LISTENERS.to_string(),
        ),
        ("network-load-balancers", "50".to_owned()),
        ("rules-per-application-load-balancer", MAX_RULES.to_string()),
        ("target-groups", "3000".to_owned()),
        (
            "target-groups-per-action-on-application-load-balancer",
            crate::actions::MAX_FORWARD_TARGET_GROUPS.to_string(),
        ),
        ("targets-per-target-group", MAX_TARGETS.to_string()),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), (n, v)))
    .collect();
    let (items, next) = paginate("limits", limits, after.as_deref(), size);
    let mut x = Xml::new();
    x.list("Limits", items, |m, (name, max)| {
        m.leaf("Name", name).leaf("Max", &max);
    });
    x.opt("NextMarker", next.as_deref());
    Ok(x.finish())
}
