//! Security groups and their rules: create, describe, delete, authorize and revoke
//! (ingress and egress), and DescribeSecurityGroupRules. A request's `IpPermissions` fan
//! out into one rule per peer (AWS's `sgr-` rules); CIDRs are canonicalised; duplicates
//! are judged without descriptions.

use wire::query::{QueryParams, QueryView};
use wire::xml::Xml;

use crate::cidr::Cidr;
use crate::error::Ec2Error;
use crate::filters::{Filters, Matcher};
use crate::render;
use crate::state::{all_egress, new_id, Peer, SecurityGroup, SgRule, State};
use crate::vpcs::{parse_tag_specs, required};
use crate::Ec2;

/// AWS's default quota of inbound (and of outbound) rules per group.
const MAX_RULES: usize = 60;

/// Ingress or egress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Inbound rules.
    Ingress,
    /// Outbound rules.
    Egress,
}

impl Matcher for SecurityGroup {
    fn values(&self, name: &str) -> Vec<String> {
        let (rules, field) = match name.strip_prefix("egress.") {
            Some(f) => (&self.egress, f),
            None => (&self.ingress, name),
        };
        match field {
            "group-id" if !name.starts_with("egress.") => vec![self.id.clone()],
            "group-name" => vec![self.name.clone()],
            "vpc-id" => vec![self.vpc_id.clone()],
            "description" => vec![self.description.clone()],
            "ip-permission.cidr" => rules
                .iter()
                .filter_map(|r| match &r.peer {
                    Peer::Cidr(c) => Some(c.to_string()),
                    _ => None,
                })
                .collect(),
            "ip-permission.ipv6-cidr" => rules
                .iter()
                .filter_map(|r| match &r.peer {
                    Peer::Cidr6(c) => Some(c.clone()),
                    _ => None,
                })
                .collect(),
            "ip-permission.group-id" => rules
                .iter()
                .filter_map(|r| match &r.peer {
                    Peer::Group { group_id, .. } => Some(group_id.clone()),
                    _ => None,
                })
                .collect(),
            "ip-permission.protocol" => rules.iter().map(|r| r.protocol.clone()).collect(),
            "ip-permission.from-port" => rules
                .iter()
                .filter_map(|r| r.from_port.map(|p| p.to_string()))
                .collect(),
            "ip-permission.to-port" => rules
                .iter()
                .filter_map(|r| r.to_port.map(|p| p.to_string()))
                .collect(),
            _ => Vec::new(),
        }
    }
    fn tags(&self) -> Vec<(&str, &str)> {
        self.tag_pairs()
    }
}

/// A rule seen with its group, for DescribeSecurityGroupRules' filters.
struct RuleView<'a> {
    group: &'a SecurityGroup,
    rule: &'a SgRule,
}

impl Matcher for RuleView<'_> {
    fn values(&self, name: &str) -> Vec<String> {
        match name {
            "group-id" => vec![self.group.id.clone()],
            "security-group-rule-id" => vec![self.rule.id.clone()],
            _ => Vec::new(),
        }
    }
    fn tags(&self) -> Vec<(&str, &str)> {
        Vec::new()
    }
}

/// The group a request names by `GroupId`, or by `GroupName` in the default VPC only
/// (as AWS resolves names).
fn find_group<'s>(state: &'s State, q: &QueryParams) -> Result<&'s SecurityGroup, Ec2Error> {
    if let Some(id) = q.get("GroupId").filter(|s| !s.is_empty()) {
        return state
            .groups
            .get(id)
            .ok_or_else(|| Ec2Error::group_not_found(id));
    }
    let name = q
        .get("GroupName")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Ec2Error::MissingParameter("GroupId".into()))?;
    by_name_in_default_vpc(state, name)
}

fn by_name_in_default_vpc<'s>(state: &'s State, name: &str) -> Result<&'s SecurityGroup, Ec2Error> {
    let vpc = state
        .default_vpc()
        .map(|v| v.id.clone())
        .unwrap_or_default();
    state
        .groups
        .values()
        .find(|g| g.vpc_id == vpc && g.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            Ec2Error::GroupNotFound(format!(
                "The security group '{name}' does not exist in default VPC '{vpc}'"
            ))
        })
}

/// The protocol as AWS stores it: names for TCP, UDP and ICMP (given by name or
/// number), `-1` for all, else the number.
fn parse_protocol(raw: &str) -> Result<String, Ec2Error> {
    let p = raw.to_ascii_lowercase();
    let known = match p.as_str() {
        "tcp" | "6" => "tcp",
        "udp" | "17" => "udp",
        "icmp" | "1" => "icmp",
        "-1" | "all" => "-1",
        n => match n.parse::<u8>() {
            Ok(_) => return Ok(n.to_owned()),
            Err(_) => {
                return Err(Ec2Error::InvalidParameterValue(format!(
                    "Invalid value '{raw}' for IP protocol. Unknown protocol."
                )))
            }
        },
    };
    Ok(known.to_owned())
}

fn parse_port(v: Option<&str>, what: &str) -> Result<Option<i32>, Ec2Error> {
    v.map(|s| {
        s.parse::<i32>().map_err(|_| {
            Ec2Error::InvalidParameterValue(format!("Invalid value '{s}' for {what}."))
        })
    })
    .transpose()
}

/// The ports of a rule: required and ordered for TCP/UDP, type and code (-1 for all) for
/// ICMP, none for the rest.
fn check_ports(
    protocol: &str,
    from: Option<i32>,
    to: Option<i32>,
) -> Result<(Option<i32>, Option<i32>), Ec2Error> {
    match protocol {
        "tcp" | "udp" => {
            let (Some(f), Some(t)) = (from, to) else {
                return Err(Ec2Error::InvalidParameterValue(
                    "Invalid value 'Must specify both from and to ports with TCP/UDP.' for portRange.".into(),
                ));
            };
            if !(0..=65535).contains(&f) || !(0..=65535).contains(&t) || f > t {
                return Err(Ec2Error::InvalidParameterValue(format!(
                    "Invalid TCP/UDP port range {f}-{t}: ports are 0 to 65535, from not above to."
                )));
            }
            Ok((Some(f), Some(t)))
        }
        "icmp" => {
            let f = from.unwrap_or(-1);
            let t = to.unwrap_or(-1);
            if !(-1..=255).contains(&f) || !(-1..=255).contains(&t) || (f == -1 && t != -1) {
                return Err(Ec2Error::InvalidParameterValue(format!(
                    "Invalid ICMP type/code {f}/{t}: each is -1 (all) or 0 to 255, and a code needs a type."
                )));
            }
            Ok((Some(f), Some(t)))
        }
        _ => Ok((None, None)),
    }
}

/// Reads one permission (an `IpPermissions.N` view, or the request itself for the
/// legacy top-level form) into its rules, one per peer.
fn parse_permission(
    view: &QueryView<'_>,
    legacy: bool,
    state: &State,
    account: &str,
) -> Result<Vec<SgRule>, Ec2Error> {
    let raw = view
        .get("IpProtocol")
        .ok_or_else(|| Ec2Error::MissingParameter("IpPermissions.IpProtocol".into()))?;
    let protocol = parse_protocol(raw)?;
    let (from, to) = check_ports(
        &protocol,
        parse_port(view.get("FromPort"), "FromPort")?,
        parse_port(view.get("ToPort"), "ToPort")?,
    )?;
    let rule = |peer: Peer, description: Option<&str>| SgRule {
        id: new_id("sgr"),
        protocol: protocol.clone(),
        from_port: from,
        to_port: to,
        peer,
        description: description.map(str::to_owned),
    };
    let cidr = |raw: &str| -> Result<Cidr, Ec2Error> {
        raw.parse()
            .map_err(|_| Ec2Error::InvalidParameterValue(format!("CIDR block {raw} is malformed")))
    };
    let mut rules = Vec::new();
    if legacy {
        if let Some(c) = view.get("CidrIp") {
            rules.push(rule(Peer::Cidr(cidr(c)?), None));
        }
        if let Some(name) = view.get("SourceSecurityGroupName") {
            let g = by_name_in_default_vpc(state, name)?;
            rules.push(rule(
                Peer::Group {
                    group_id: g.id.clone(),
                    user_id: account.to_owned(),
                },
                None,
            ));
        }
        return Ok(rules);
    }
    for r in view.flat_members("IpRanges") {
        let c = r
            .get("CidrIp")
            .ok_or_else(|| Ec2Error::MissingParameter("IpRanges.CidrIp".into()))?;
        rules.push(rule(Peer::Cidr(cidr(c)?), r.get("Description")));
    }
    for r in view.flat_members("Ipv6Ranges") {
        let c = r
            .get("CidrIpv6")
            .ok_or_else(|| Ec2Error::MissingParameter("Ipv6Ranges.CidrIpv6".into()))?;
        if !c.contains(':') || !c.contains('/') {
            return Err(Ec2Error::InvalidParameterValue(format!(
                "CIDR block {c} is malformed"
            )));
        }
        rules.push(rule(
            Peer::Cidr6(c.to_ascii_lowercase()),
            r.get("Description"),
        ));
    }
    for g in view.flat_members("Groups") {
        let group = match (g.get("GroupId"), g.get("GroupName")) {
            (Some(id), _) => state
                .groups
                .get(id)
                .ok_or_else(|| Ec2Error::group_not_found(id))?,
            (None, Some(name)) => by_name_in_default_vpc(state, name)?,
            (None, None) => {
                return Err(Ec2Error::MissingParameter("Groups.GroupId".into()));
            }
        };
        rules.push(rule(
            Peer::Group {
                group_id: group.id.clone(),
                user_id: g.get("UserId").unwrap_or(account).to_owned(),
            },
            g.get("Description"),
        ));
    }
    if !view.flat_members("PrefixListIds").is_empty() {
        return Err(Ec2Error::InvalidParameterValue(
            "Prefix lists are not supported by Stevedore yet; name CIDRs or groups.".into(),
        ));
    }
    Ok(rules)
}

/// Every rule a request names, in order.
fn parse_rules(q: &QueryParams, state: &State, account: &str) -> Result<Vec<SgRule>, Ec2Error> {
    let v = q.view();
    let mut rules = Vec::new();
    for p in v.flat_members("IpPermissions") {
        rules.extend(parse_permission(&p, false, state, account)?);
    }
    if q.get("IpProtocol").is_some() {
        rules.extend(parse_permission(&v, true, state, account)?);
    }
    for (i, r) in rules.iter().enumerate() {
        if rules[..i].iter().any(|o| o.same_as(r)) {
            return Err(Ec2Error::InvalidParameterValue(
                "The same permission must not appear multiple times".into(),
            ));
        }
    }
    Ok(rules)
}

/// AWS's wording of a rule in InvalidPermission.Duplicate.
fn describe_rule(r: &SgRule) -> String {
    let peer = match &r.peer {
        Peer::Cidr(c) => c.to_string(),
        Peer::Cidr6(c) => c.clone(),
        Peer::Group { group_id, .. } => group_id.clone(),
    };
    match (r.protocol.as_str(), r.from_port, r.to_port) {
        ("-1", _, _) => format!("peer: {peer}, ALL, ALLOW"),
        (p, Some(f), Some(t)) => format!(
            "peer: {peer}, {}, from port: {f}, to port: {t}, ALLOW",
            p.to_ascii_uppercase()
        ),
        (p, _, _) => format!("peer: {peer}, {}, ALLOW", p.to_ascii_uppercase()),
    }
}

impl Ec2 {
    pub(crate) async fn create_security_group(&self, q: &QueryParams) -> Result<String, Ec2Error> {
        let name = required(q, "GroupName")?.to_owned();
        let description = required(q, "GroupDescription")?.to_owned();
        if name.len() > 255 || description.len() > 255 {
            return Err(Ec2Error::InvalidParameterValue(
                "Group names and descriptions may be at most 255 characters.".into(),
            ));
        }
        if name.to_ascii_lowercase().starts_with("sg-") {
            return Err(Ec2Error::InvalidParameterValue(format!(
                "Value ({name}) for parameter GroupName is invalid. Group names may not be in the format sg-*."
            )));
        }
        let tags = parse_tag_specs(q, "security-group")?;
        let vpc_arg = q.get("VpcId").map(str::to_owned);
        let (state, id) = self
            .update(|s| {
                let vpc_id = match &vpc_arg {
                    Some(v) => {
                        if !s.vpcs.contains_key(v) {
                            return Err(Ec2Error::VpcNotFound(v.clone()));
                        }
                        v.clone()
                    }
                    None => s
                        .default_vpc()
                        .map(|v| v.id.clone())
                        .ok_or_else(|| Ec2Error::VpcNotFound("default".into()))?,
                };
                if s.groups
                    .values()
                    .any(|g| g.vpc_id == vpc_id && g.name.eq_ignore_ascii_case(&name))
                {
                    return Err(Ec2Error::GroupDuplicate {
                        name: name.clone(),
                        vpc: vpc_id,
                    });
                }
                let group = SecurityGroup {
                    id: new_id("sg"),
                    name: name.clone(),
                    description: description.clone(),
                    vpc_id,
                    ingress: Vec::new(),
                    egress: vec![all_egress()],
                    tags: tags.clone(),
                };
                let id = group.id.clone();
                s.groups.insert(id.clone(), group);
                Ok(id)
            })
            .await?;
        let mut x = Xml::new();
        x.leaf("groupId", &id);
        if let Some(g) = state.groups.get(&id) {
            wire::ec2::tags(&mut x, "tagSet", g.tag_pairs());
            x.leaf("securityGroupArn", &self.group_arn(&id));
        }
        Ok(x.finish())
    }

    /// `arn:aws:ec2:<region>:<account>:security-group/<id>`.
    pub(crate) fn group_arn(&self, id: &str) -> String {
        format!(
            "arn:aws:ec2:{}:{}:security-group/{id}",
            self.region, self.account
        )
    }

    pub(crate) async fn describe_security_groups(
        &self,
        q: &QueryParams,
    ) -> Result<String, Ec2Error> {
        let v = q.view();
        let ids = v.flat_list("GroupId");
        let names = v.flat_list("GroupName");
        let filters = Filters::parse(
            &v,
            "Filter",
            &[
                "group-id",
                "group-name",
                "vpc-id",
                "description",
                "owner-id",
                "ip-permission.cidr",
                "ip-permission.ipv6-cidr",
                "ip-permission.group-id",
                "ip-permission.protocol",
                "ip-permission.from-port",
                "ip-permission.to-port",
                "egress.ip-permission.cidr",
                "egress.ip-permission.ipv6-cidr",
                "egress.ip-permission.group-id",
                "egress.ip-permission.protocol",
                "egress.ip-permission.from-port",
                "egress.ip-permission.to-port",
            ],
        )?;
        let state = self.snapshot().await?;
        let mut wanted: Vec<&str> = Vec::new();
        for id in &ids {
            if !state.groups.contains_key(*id) {
                return Err(Ec2Error::group_not_found(id));
            }
            wanted.push(id);
        }
        for name in &names {
            wanted.push(by_name_in_default_vpc(&state, name)?.id.as_str());
        }
        let chosen = state
            .groups
            .values()
            .filter(|g| wanted.is_empty() || wanted.contains(&g.id.as_str()))
            .filter(|g| filters.matches(*g));
        let mut x = Xml::new();
        wire::ec2::items(&mut x, "securityGroupInfo", chosen, |x, g| {
            render::group(x, g, &self.account, &self.group_arn(&g.id));
        });
        Ok(x.finish())
    }

    pub(crate) async fn delete_security_group(&self, q: &QueryParams) -> Result<String, Ec2Error> {
        let interfaces = self.list_interfaces().await?;
        let held = self.groups_in_use().await?;
        let (_, id) = self
            .update(|s| {
                let g = find_group(s, q)?;
                let id = g.id.clone();
                if g.name == "default" {
                    return Err(Ec2Error::CannotDelete { id });
                }
                let referenced = s.groups.values().filter(|o| o.id != id).any(|o| {
                    o.ingress
                        .iter()
                        .chain(&o.egress)
                        .any(|r| matches!(&r.peer, Peer::Group { group_id, .. } if *group_id == id))
                });
                // A task's interface, a load balancer or an instance holding it.
                let in_use = interfaces.iter().any(|i| i.groups.contains(&id))
                    || held.iter().any(|groups| groups.contains(&id));
                if referenced || in_use {
                    return Err(Ec2Error::DependencyViolation(format!(
                        "resource {id} has a dependent object"
                    )));
                }
                s.groups.remove(&id);
                Ok(id)
            })
            .await?;
        let mut x = Xml::new();
        x.leaf("return", "true").leaf("groupId", &id);
        Ok(x.finish())
    }

    pub(crate) async fn authorize(
        &self,
        q: &QueryParams,
        dir: Direction,
    ) -> Result<String, Ec2Error> {
        let account = self.account.clone();
        let (_, (group_id, added)) = self
            .update(|s| {
                let group_id = find_group(s, q)?.id.clone();
                let new = parse_rules(q, s, &account)?;
                if new.is_empty() {
                    return Err(Ec2Error::MissingParameter("IpPermissions".into()));
                }
                let Some(group) = s.groups.get_mut(&group_id) else {
                    return Err(Ec2Error::group_not_found(&group_id));
                };
                let rules = match dir {
                    Direction::Ingress => &mut group.ingress,
                    Direction::Egress => &mut group.egress,
                };
                for r in &new {
                    if rules.iter().any(|o| o.same_as(r)) {
                        return Err(Ec2Error::PermissionDuplicate(describe_rule(r)));
                    }
                }
                if rules.len() + new.len() > MAX_RULES {
                    return Err(Ec2Error::RulesLimit);
                }
                rules.extend(new.iter().cloned());
                Ok((group_id, new))
            })
            .await?;
        let mut x = Xml::new();
        x.leaf("return", "true");
        wire::ec2::items(&mut x, "securityGroupRuleSet", &added, |x, r| {
            render::rule(
                x,
                &group_id,
                &self.account,
                r,
                dir == Direction::Egress,
                &self.rule_arn(&r.id),
            );
        });
        Ok(x.finish())
    }

    /// `arn:aws:ec2:<region>:<account>:security-group-rule/<id>`.
    pub(crate) fn rule_arn(&self, id: &str) -> String {
        format!(
            "arn:aws:ec2:{}:{}:security-group-rule/{id}",
            self.region, self.account
        )
    }

    pub(crate) async fn revoke(&self, q: &QueryParams, dir: Direction) -> Result<String, Ec2Error> {
        let account = self.account.clone();
        let rule_ids: Vec<String> = q
            .view()
            .flat_list("SecurityGroupRuleId")
            .into_iter()
            .map(str::to_owned)
            .collect();
        let (_, (group_id, revoked, unknown)) = self
            .update(|s| {
                let group = find_group(s, q)?;
                let group_id = group.id.clone();
                let in_default_vpc = s.default_vpc().is_some_and(|v| v.id == group.vpc_id);
                let wanted = if rule_ids.is_empty() {
                    parse_rules(q, s, &account)?
                } else {
                    Vec::new()
                };
                let Some(group) = s.groups.get_mut(&group_id) else {
                    return Err(Ec2Error::group_not_found(&group_id));
                };
                let rules = match dir {
                    Direction::Ingress => &mut group.ingress,
                    Direction::Egress => &mut group.egress,
                };
                let mut revoked = Vec::new();
                let mut unknown = Vec::new();
                for id in &rule_ids {
                    match rules.iter().position(|r| r.id == *id) {
                        Some(i) => revoked.push(rules.remove(i)),
                        None => {
                            return Err(Ec2Error::InvalidParameterValue(format!(
                                "The security group rule ID '{id}' does not exist"
                            )))
                        }
                    }
                }
                for w in wanted {
                    match rules.iter().position(|r| r.same_as(&w)) {
                        Some(i) => revoked.push(rules.remove(i)),
                        None => unknown.push(w),
                    }
                }
                if !unknown.is_empty() && !in_default_vpc {
                    return Err(Ec2Error::PermissionNotFound);
                }
                if revoked.is_empty() && unknown.is_empty() {
                    return Err(Ec2Error::MissingParameter("IpPermissions".into()));
                }
                Ok((group_id, revoked, unknown))
            })
            .await?;
        let mut x = Xml::new();
        x.leaf("return", "true");
        let unknown_groups = render::permissions(&unknown);
        wire::ec2::items(&mut x, "unknownIpPermissionSet", &unknown_groups, |x, p| {
            render::permission(x, p, &self.account);
        });
        wire::ec2::items(&mut x, "revokedSecurityGroupRuleSet", &revoked, |x, r| {
            render::revoked_rule(x, &group_id, r, dir == Direction::Egress);
        });
        Ok(x.finish())
    }

    pub(crate) async fn describe_security_group_rules(
        &self,
        q: &QueryParams,
    ) -> Result<String, Ec2Error> {
        let v = q.view();
        let ids = v.flat_list("SecurityGroupRuleId");
        let filters = Filters::parse(&v, "Filter", &["group-id", "security-group-rule-id"])?;
        let state = self.snapshot().await?;
        let mut chosen = Vec::new();
        for g in state.groups.values() {
            for (rules, egress) in [(&g.ingress, false), (&g.egress, true)] {
                for r in rules {
                    if (ids.is_empty() || ids.contains(&r.id.as_str()))
                        && filters.matches(&RuleView { group: g, rule: r })
                    {
                        chosen.push((g, r, egress));
                    }
                }
            }
        }
        for id in &ids {
            if !chosen.iter().any(|(_, r, _)| r.id == *id) {
                return Err(Ec2Error::InvalidParameterValue(format!(
                    "The security group rule ID '{id}' does not exist"
                )));
            }
        }
        let mut x = Xml::new();
        wire::ec2::items(
            &mut x,
            "securityGroupRuleSet",
            chosen,
            |x, (g, r, egress)| {
                render::rule(x, &g.id, &self.account, r, egress, &self.rule_arn(&r.id));
            },
        );
        Ok(x.finish())
    }
}

impl SecurityGroup {
    /// Its tags as pairs.
    pub fn tag_pairs(&self) -> Vec<(&str, &str)> {
        self.tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}
