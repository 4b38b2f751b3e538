//! `awsvpc` tasks' network interfaces: each awsvpc task gets its own address and MAC at
//! placement, from its subnet's block when the binary wired EC2 in ([`Networks`]: the
//! subnets and security groups of `awsvpcConfiguration` are checked against EC2's state
//! and the interface carries the groups), else from one server-wide pool ([`SUBNET`]);
//! recorded the way AWS shows an ENI (`attachments[]` of type `ElasticNetworkInterface`,
//! `containers[].networkInterfaces`).
//!
//! Each taken address is a store key ([`address_key`]) written with a "must not exist"
//! compare in the same transaction that creates the task, and deleted in the one that
//! records it STOPPED; so two tasks never share an address, across restarts and racing
//! RunTasks alike (the loser of a race re-plans).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use model::acs;
use model::ecs::shapes::{Attachment, KeyValuePair, NetworkInterface, Task};
use serde::{Deserialize, Serialize};

/// The subnet every awsvpc task's address comes from (agents build their Docker network
/// from the gateway sent with each interface, so this is the only place it is set).
pub const SUBNET: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 200, 0, 0), 16);

/// Where an awsvpc task's interface goes, as EC2 resolved its `awsvpcConfiguration`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    /// The subnet (the first named).
    pub subnet_id: String,
    /// Its VPC.
    pub vpc_id: String,
    /// Its block: network address and prefix length.
    pub cidr: (Ipv4Addr, u8),
    /// The security groups the interface carries (the VPC's default when none named).
    pub security_groups: Vec<String>,
}

/// EC2's view of subnets and groups, as RunTask and CreateService check them.
#[async_trait::async_trait]
pub trait Networks: Send + Sync {
    /// Resolves `subnets` and `groups`; `Err` carries the message of the
    /// `InvalidParameterException` to answer (an unknown subnet or group, groups of
    /// another VPC, a host that cannot enforce groups).
    async fn resolve(&self, subnets: &[String], groups: &[String]) -> Result<Network, String>;
}

/// Prefix of the taken-address keys.
pub const ADDRESS_PREFIX: &str = "ecs/awsvpc-address/";

/// Key of one taken address; its value is the task ARN holding it.
pub fn address_key(address: &str) -> String {
    format!("{ADDRESS_PREFIX}{address}")
}

/// One task's network interface, as stored beside the task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskEni {
    /// The attachment's id (a UUID, as AWS shows it).
    pub attachment_id: String,
    /// `eni-` and 17 hex digits.
    pub eni_id: String,
    /// The task's private IPv4 address.
    pub address: String,
    /// Its MAC address.
    pub mac: String,
    /// The first subnet RunTask named.
    pub subnet_id: String,
    /// `ip-10-200-0-9.ec2.internal`.
    pub private_dns_name: String,
    /// The subnet's gateway with its prefix length (`172.31.0.1/20`); absent for
    /// interfaces of the server-wide pool ([`compute_gateway_cidr`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_cidr: Option<String>,
    /// Its security groups (none for interfaces of the server-wide pool).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<String>,
}

fn network_u32() -> u32 {
    block_network(SUBNET)
}

fn block_network((net, len): (Ipv4Addr, u8)) -> u32 {
    let len = u32::from(len.clamp(1, 32));
    u32::from(net) & (u32::MAX << (32 - len))
}

/// `block`'s gateway (its first address) with the prefix length, as ACS carries it.
pub fn compute_block_gateway_cidr(block: (Ipv4Addr, u8)) -> String {
    format!("{}/{}", Ipv4Addr::from(block_network(block) + 1), block.1)
}

/// The subnet's gateway (its first address), which the pool never hands out.
pub fn compute_gateway() -> Ipv4Addr {
    Ipv4Addr::from(network_u32() + 1)
}

/// `10.200.0.1/16`: the gateway with the prefix length, as ACS carries it.
pub fn compute_gateway_cidr() -> String {
    format!("{}/{}", compute_gateway(), SUBNET.1)
}

/// The first address after the gateway, and how many usable addresses follow it
/// (network, gateway and broadcast excluded).
#[cfg(test)]
fn usable() -> (u32, u32) {
    usable_in(SUBNET)
}

/// The usable addresses of `block`: AWS reserves the first four and the last of every
/// subnet; here the network, the gateway (the Docker bridge) and the broadcast address
/// are what cannot be handed out.
fn usable_in(block: (Ipv4Addr, u8)) -> (u32, u32) {
    let len = u32::from(block.1.clamp(1, 30));
    let size = 1u32 << (32 - len);
    (block_network(block) + 2, size.saturating_sub(3))
}

/// A free address of the subnet, searching from `seed` (any number: it spreads
/// allocations so a released address is not handed out again at once, which gives the
/// agent time to free it in Docker). `None` when every address is taken.
#[cfg(test)]
pub fn plan_address(taken: &BTreeSet<Ipv4Addr>, seed: u64) -> Option<Ipv4Addr> {
    plan_address_in(SUBNET, taken, seed)
}

/// [`plan_address`] in `block` (a subnet's network address and prefix length).
pub fn plan_address_in(
    block: (Ipv4Addr, u8),
    taken: &BTreeSet<Ipv4Addr>,
    seed: u64,
) -> Option<Ipv4Addr> {
    let (first, count) = usable_in(block);
    if count == 0 {
        return None;
    }
    let start = u32::try_from(seed % u64::from(count)).unwrap_or(0);
    (0..count)
        .map(|i| Ipv4Addr::from(first + (start + i) % count))
        .find(|a| !taken.contains(a))
}

/// The taken addresses named by keys under [`ADDRESS_PREFIX`].
pub fn parse_taken<'a>(keys: impl IntoIterator<Item = &'a str>) -> BTreeSet<Ipv4Addr> {
    keys.into_iter()
        .filter_map(|k| k.strip_prefix(ADDRESS_PREFIX)?.parse().ok())
        .collect()
}

/// A locally administered unicast MAC derived from the address: unique as long as the
/// address is, and stable for the task.
pub fn compute_mac(address: Ipv4Addr) -> String {
    let [a, b, c, d] = address.octets();
    format!("0e:ec:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
}

/// `ip-10-200-0-9.ec2.internal` in us-east-1, `ip-...<region>.compute.internal` elsewhere.
pub fn compute_private_dns_name(address: Ipv4Addr, region: &str) -> String {
    let host = address.to_string().replace('.', "-");
    if region == "us-east-1" {
        format!("ip-{host}.ec2.internal")
    } else {
        format!("ip-{host}.{region}.compute.internal")
    }
}

/// A new interface at `address` in `network`'s subnet, carrying its groups.
pub fn compute_network_eni(address: Ipv4Addr, network: &Network, region: &str) -> TaskEni {
    TaskEni {
        gateway_cidr: Some(compute_block_gateway_cidr(network.cidr)),
        security_groups: network.security_groups.clone(),
        ..compute_eni(address, &network.subnet_id, region)
    }
}

/// A new interface at `address` in `subnet_id`.
pub fn compute_eni(address: Ipv4Addr, subnet_id: &str, region: &str) -> TaskEni {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    TaskEni {
        attachment_id: uuid::Uuid::new_v4().to_string(),
        eni_id: format!("eni-{}", &hex[..17]),
        address: address.to_string(),
        mac: compute_mac(address),
        subnet_id: subnet_id.to_owned(),
        private_dns_name: compute_private_dns_name(address, region),
        gateway_cidr: None,
        security_groups: Vec::new(),
    }
}

/// Shows `eni` on the task: its attachment (`status` as given) and every container's
/// network interface.
pub fn apply_eni(task: &mut Task, eni: &TaskEni, status: &str) {
    let kv = |name: &str, value: &str| KeyValuePair {
        name: Some(name.to_owned()),
        value: Some(value.to_owned()),
    };
    task.attachments = Some(vec![Attachment {
        id: Some(eni.attachment_id.clone()),
        type_: Some("ElasticNetworkInterface".into()),
        status: Some(status.to_owned()),
        details: Some(vec![
            kv("subnetId", &eni.subnet_id),
            kv("networkInterfaceId", &eni.eni_id),
            kv("macAddress", &eni.mac),
            kv("privateDNSName", &eni.private_dns_name),
            kv("privateIPv4Address", &eni.address),
        ]),
    }]);
    for c in task.containers.iter_mut().flatten() {
        c.network_interfaces = Some(vec![NetworkInterface {
            attachment_id: Some(eni.attachment_id.clone()),
            private_ipv4_address: Some(eni.address.clone()),
            ipv6_address: None,
        }]);
    }
}

/// Marks the task's ENI attachment with `status` (`DELETED` once the task stopped).
pub fn apply_attachment_status(task: &mut Task, status: &str) {
    for a in task.attachments.iter_mut().flatten() {
        if a.type_.as_deref() == Some("ElasticNetworkInterface") {
            a.status = Some(status.to_owned());
        }
    }
}

/// The interface in the agent's (ACS) form.
pub fn compute_acs_eni(eni: &TaskEni) -> acs::ElasticNetworkInterface {
    acs::ElasticNetworkInterface {
        attachment_arn: Some(eni.attachment_id.clone()),
        ec2_id: Some(eni.eni_id.clone()),
        mac_address: Some(eni.mac.clone()),
        ipv4_addresses: vec![acs::IPv4AddressAssignment {
            private_address: Some(eni.address.clone()),
            primary: Some(true),
        }],
        private_dns_name: Some(eni.private_dns_name.clone()),
        subnet_gateway_ipv4_address: Some(
            eni.gateway_cidr
                .clone()
                .unwrap_or_else(compute_gateway_cidr),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::ecs::shapes::Container;

    #[test]
    fn the_pool_skips_network_gateway_and_broadcast_and_wraps_around() {
        let none = BTreeSet::new();
        assert_eq!(plan_address(&none, 0), Some(Ipv4Addr::new(10, 200, 0, 2)));
        // The last usable address is .255.254; the seed wraps.
        let (_, count) = usable();
        assert_eq!(count, 65_533);
        assert_eq!(
            plan_address(&none, u64::from(count) - 1),
            Some(Ipv4Addr::new(10, 200, 255, 254))
        );
        assert_eq!(
            plan_address(&none, u64::from(count)),
            Some(Ipv4Addr::new(10, 200, 0, 2))
        );
        let taken: BTreeSet<_> = [Ipv4Addr::new(10, 200, 255, 254)].into();
        assert_eq!(
            plan_address(&taken, u64::from(count) - 1),
            Some(Ipv4Addr::new(10, 200, 0, 2))
        );
        assert_eq!(compute_gateway_cidr(), "10.200.0.1/16");
    }

    #[test]
    fn taken_addresses_are_never_handed_out_and_released_ones_come_back() {
        let mut taken = BTreeSet::new();
        for seed in 0..50u64 {
            let a = plan_address(&taken, seed * 7).expect("room");
            assert!(taken.insert(a), "{a} handed out twice");
        }
        let keys: Vec<String> = taken.iter().map(|a| address_key(&a.to_string())).collect();
        assert_eq!(parse_taken(keys.iter().map(String::as_str)), taken);
        let released = *taken.iter().next().expect("one");
        taken.remove(&released);
        let (_, count) = usable();
        let full: BTreeSet<Ipv4Addr> = (0..count)
            .map(|i| Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 200, 0, 2)) + i))
            .filter(|a| *a != released)
            .collect();
        assert_eq!(plan_address(&full, 12_345), Some(released));
        let mut all = full;
        all.insert(released);
        assert_eq!(plan_address(&all, 1), None);
    }

    #[test]
    fn the_eni_shows_as_an_aws_attachment_and_container_interfaces() {
        let eni = compute_eni(Ipv4Addr::new(10, 200, 3, 4), "subnet-1", "us-east-1");
        assert_eq!(eni.mac, "0e:ec:0a:c8:03:04");
        assert_eq!(eni.eni_id.len(), 4 + 17);
        assert_eq!(eni.private_dns_name, "ip-10-200-3-4.ec2.internal");
        let mut t = Task {
            containers: Some(vec![Container::default()]),
            ..Task::default()
        };
        apply_eni(&mut t, &eni, "ATTACHED");
        let v = serde_json::to_value(&t).expect("json");
        let a = &v["attachments"][0];
        assert_eq!(a["type"], "ElasticNetworkInterface");
        assert_eq!(a["status"], "ATTACHED");
        let details = a["details"].as_array().expect("details");
        assert!(details
            .iter()
            .any(|d| d["name"] == "privateIPv4Address" && d["value"] == "10.200.3.4"));
        assert_eq!(
            v["containers"][0]["networkInterfaces"][0]["privateIpv4Address"],
            "10.200.3.4"
        );
        apply_attachment_status(&mut t, "DELETED");
        assert_eq!(
            t.attachments.as_ref().and_then(|a| a[0].status.as_deref()),
            Some("DELETED")
        );
        let acs = compute_acs_eni(&eni);
        assert_eq!(acs.primary_ipv4(), Some("10.200.3.4"));
        assert_eq!(
            acs.subnet_gateway_ipv4_address.as_deref(),
            Some("10.200.0.1/16")
        );
    }
}
