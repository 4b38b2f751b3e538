//! The XML of EC2's output shapes (lowerCamel `locationName`s of botocore's model,
//! `<item>` lists), one function per shape.

use wire::ec2::{items, tags};
use wire::xml::Xml;

use crate::network::NetworkInterface;
use crate::state::{Peer, SecurityGroup, SgRule, State, Subnet, Vpc};

fn tag_set(x: &mut Xml, t: &crate::state::Tags) {
    tags(x, "tagSet", t.iter().map(|(k, v)| (k.as_str(), v.as_str())));
}

/// A `Vpc`.
pub fn vpc(x: &mut Xml, v: &Vpc, account: &str) {
    let cidr = v.cidr.to_string();
    x.leaf("ownerId", account)
        .leaf("instanceTenancy", "default");
    items(x, "cidrBlockAssociationSet", [()], |x, ()| {
        x.leaf("associationId", &v.association_id)
            .leaf("cidrBlock", &cidr)
            .el("cidrBlockState", |x| {
                x.leaf("state", "associated");
            });
    });
    x.leaf("isDefault", if v.is_default { "true" } else { "false" });
    tag_set(x, &v.tags);
    x.leaf("vpcId", &v.id)
        .leaf("state", "available")
        .leaf("cidrBlock", &cidr)
        .leaf("dhcpOptionsId", "dopt-00000000000000000");
}

/// A `Subnet`; `used` addresses are taken by interfaces.
pub fn subnet(x: &mut Xml, s: &Subnet, account: &str, used: usize) {
    // AWS reserves five addresses of every subnet (network, router, DNS, future, broadcast).
    let free = s.cidr.size().saturating_sub(5).saturating_sub(used as u64);
    let zone_index = s
        .availability_zone
        .chars()
        .last()
        .map_or(1, |c| u32::from(c).saturating_sub(u32::from('a')) + 1);
    let region = s
        .availability_zone
        .get(..s.availability_zone.len().saturating_sub(1))
        .unwrap_or("");
    x.leaf(
        "availabilityZoneId",
        &format!("{}-az{zone_index}", zone_id_prefix(region)),
    )
    .leaf("ownerId", account)
    .leaf("assignIpv6AddressOnCreation", "false");
    items(
        x,
        "ipv6CidrBlockAssociationSet",
        Vec::<()>::new(),
        |_, ()| {},
    );
    tag_set(x, &s.tags);
    x.leaf(
        "subnetArn",
        &format!("arn:aws:ec2:{region}:{account}:subnet/{}", s.id),
    )
    .leaf("enableDns64", "false")
    .leaf("ipv6Native", "false")
    .el("privateDnsNameOptionsOnLaunch", |x| {
        x.leaf("hostnameType", "ip-name")
            .leaf("enableResourceNameDnsARecord", "false")
            .leaf("enableResourceNameDnsAAAARecord", "false");
    })
    .leaf("subnetId", &s.id)
    .leaf("state", "available")
    .leaf("vpcId", &s.vpc_id)
    .leaf("cidrBlock", &s.cidr.to_string())
    .leaf("availableIpAddressCount", &free.to_string())
    .leaf("availabilityZone", &s.availability_zone)
    .leaf(
        "defaultForAz",
        if s.default_for_az { "true" } else { "false" },
    )
    .leaf(
        "mapPublicIpOnLaunch",
        if s.default_for_az { "true" } else { "false" },
    );
}

/// `use1` for `us-east-1`: AWS's zone id prefix (geography, first letter of the
/// direction, number).
pub fn zone_id_prefix(region: &str) -> String {
    let parts: Vec<&str> = region.split('-').collect();
    match parts.as_slice() {
        [geo, dir, num] => {
            let d = dir.chars().next().map(String::from).unwrap_or_default();
            format!("{geo}{d}{num}")
        }
        _ => region.replace('-', ""),
    }
}

/// Rules of one protocol and port range, folded into an `IpPermission`.
pub struct Permission<'a> {
    protocol: &'a str,
    from: Option<i32>,
    to: Option<i32>,
    rules: Vec<&'a SgRule>,
}

/// Folds rules into permissions (one per protocol and port range, in first-seen order),
/// as DescribeSecurityGroups shows them.
pub fn permissions(rules: &[SgRule]) -> Vec<Permission<'_>> {
    let mut out: Vec<Permission<'_>> = Vec::new();
    for r in rules {
        match out
            .iter_mut()
            .find(|p| p.protocol == r.protocol && p.from == r.from_port && p.to == r.to_port)
        {
            Some(p) => p.rules.push(r),
            None => out.push(Permission {
                protocol: &r.protocol,
                from: r.from_port,
                to: r.to_port,
                rules: vec![r],
            }),
        }
    }
    out
}

/// An `IpPermission`: ports are left out of `-1` rules, as AWS leaves them out.
pub fn permission(x: &mut Xml, p: &Permission<'_>, account: &str) {
    x.leaf("ipProtocol", p.protocol);
    if p.protocol != "-1" {
        if let Some(f) = p.from {
            x.leaf("fromPort", &f.to_string());
        }
        if let Some(t) = p.to {
            x.leaf("toPort", &t.to_string());
        }
    }
    let groups = p.rules.iter().filter_map(|r| match &r.peer {
        Peer::Group { group_id, user_id } => Some((*r, group_id, user_id)),
        _ => None,
    });
    items(x, "groups", groups, |x, (r, group_id, user_id)| {
        x.opt("description", r.description.as_deref())
            .leaf("userId", if user_id.is_empty() { account } else { user_id })
            .leaf("groupId", group_id);
    });
    let v4 = p.rules.iter().filter_map(|r| match &r.peer {
        Peer::Cidr(c) => Some((*r, c.to_string())),
        _ => None,
    });
    items(x, "ipRanges", v4, |x, (r, c)| {
        x.opt("description", r.description.as_deref())
            .leaf("cidrIp", &c);
    });
    let v6 = p.rules.iter().filter_map(|r| match &r.peer {
        Peer::Cidr6(c) => Some((*r, c)),
        _ => None,
    });
    items(x, "ipv6Ranges", v6, |x, (r, c)| {
        x.opt("description", r.description.as_deref())
            .leaf("cidrIpv6", c);
    });
    items(x, "prefixListIds", Vec::<()>::new(), |_, ()| {});
}

/// A `SecurityGroup`.
pub fn group(x: &mut Xml, g: &SecurityGroup, account: &str, arn: &str) {
    x.leaf("groupId", &g.id);
    items(x, "ipPermissionsEgress", permissions(&g.egress), |x, p| {
        permission(x, &p, account);
    });
    tag_set(x, &g.tags);
    x.leaf("vpcId", &g.vpc_id)
        .leaf("securityGroupArn", arn)
        .leaf("ownerId", account)
        .leaf("groupName", &g.name)
        .leaf("groupDescription", &g.description);
    items(x, "ipPermissions", permissions(&g.ingress), |x, p| {
        permission(x, &p, account);
    });
}

fn ports(r: &SgRule) -> (String, String) {
    (
        r.from_port.unwrap_or(-1).to_string(),
        r.to_port.unwrap_or(-1).to_string(),
    )
}

/// A `SecurityGroupRule`.
pub fn rule(x: &mut Xml, group_id: &str, account: &str, r: &SgRule, egress: bool, arn: &str) {
    let (from, to) = ports(r);
    x.leaf("securityGroupRuleId", &r.id)
        .leaf("groupId", group_id)
        .leaf("groupOwnerId", account)
        .leaf("isEgress", if egress { "true" } else { "false" })
        .leaf("ipProtocol", &r.protocol)
        .leaf("fromPort", &from)
        .leaf("toPort", &to);
    match &r.peer {
        Peer::Cidr(c) => {
            x.leaf("cidrIpv4", &c.to_string());
        }
        Peer::Cidr6(c) => {
            x.leaf("cidrIpv6", c);
        }
        Peer::Group { group_id, user_id } => {
            x.el("referencedGroupInfo", |x| {
                x.leaf("groupId", group_id).leaf("userId", user_id);
            });
        }
    }
    x.opt("description", r.description.as_deref());
    items(x, "tagSet", Vec::<()>::new(), |_, ()| {});
    x.leaf("securityGroupRuleArn", arn);
}

/// A `RevokedSecurityGroupRule`.
pub fn revoked_rule(x: &mut Xml, group_id: &str, r: &SgRule, egress: bool) {
    let (from, to) = ports(r);
    x.leaf("securityGroupRuleId", &r.id)
        .leaf("groupId", group_id)
        .leaf("isEgress", if egress { "true" } else { "false" })
        .leaf("ipProtocol", &r.protocol)
        .leaf("fromPort", &from)
        .leaf("toPort", &to);
    match &r.peer {
        Peer::Cidr(c) => {
            x.leaf("cidrIpv4", &c.to_string());
        }
        Peer::Cidr6(c) => {
            x.leaf("cidrIpv6", c);
        }
        Peer::Group { group_id, .. } => {
            x.leaf("referencedGroupId", group_id);
        }
    }
    x.opt("description", r.description.as_deref());
}

/// A `NetworkInterface` (an ECS task's ENI: requester-managed, in use).
pub fn interface(x: &mut Xml, i: &NetworkInterface, state: &State, account: &str) {
    let subnet = state.subnets.get(&i.subnet_id);
    let zone = subnet.map_or("", |s| s.availability_zone.as_str());
    let vpc = subnet.map_or("", |s| s.vpc_id.as_str());
    x.el("attachment", |x| {
        x.leaf(
            "attachmentId",
            &format!(
                "ela-attach-{}",
                i.attachment_id.replace('-', "").get(..17).unwrap_or("")
            ),
        )
        .leaf("deleteOnTermination", "true")
        .leaf("deviceIndex", "1")
        .leaf("networkCardIndex", "0")
        .leaf("instanceOwnerId", "amazon-aws")
        .leaf("status", "attached");
    })
    .leaf("availabilityZone", zone)
    .leaf("description", &i.description);
    items(x, "groupSet", &i.groups, |x, g| {
        x.leaf("groupId", g).leaf(
            "groupName",
            state.groups.get(g).map_or("", |g| g.name.as_str()),
        );
    });
    x.leaf("interfaceType", "interface");
    items(x, "ipv6AddressesSet", Vec::<()>::new(), |_, ()| {});
    x.leaf("macAddress", &i.mac)
        .leaf("networkInterfaceId", &i.id)
        .leaf("ownerId", account)
        .leaf("privateDnsName", &i.private_dns_name)
        .leaf("privateIpAddress", &i.address);
    items(x, "privateIpAddressesSet", [()], |x, ()| {
        x.leaf("privateDnsName", &i.private_dns_name)
            .leaf("primary", "true")
            .leaf("privateIpAddress", &i.address);
    });
    x.leaf("requesterId", "578734482556")
        .leaf("requesterManaged", "true")
        .leaf("sourceDestCheck", "true")
        .leaf("status", "in-use")
        .leaf("subnetId", &i.subnet_id);
    items(x, "tagSet", Vec::<()>::new(), |_, ()| {});
    x.leaf("vpcId", vpc);
}
