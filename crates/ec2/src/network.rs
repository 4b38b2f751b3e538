//! Network interfaces: the ones other services create (ECS task ENIs, reported through
//! [`crate::Interfaces`]) as DescribeNetworkInterfaces shows them, and the resolution of
//! an awsvpc task's subnets and groups against the state ([`Ec2::resolve_network`]).

use wire::query::QueryParams;
use wire::xml::Xml;

use crate::cidr::Cidr;
use crate::error::Ec2Error;
use crate::filters::{Filters, Matcher};
use crate::render;
use crate::state::State;
use crate::Ec2;

/// One network interface in use (an ECS task's ENI).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkInterface {
    /// `eni-…`.
    pub id: String,
    /// The subnet it sits in.
    pub subnet_id: String,
    /// Its private IPv4 address.
    pub address: String,
    /// Its MAC address.
    pub mac: String,
    /// `ip-….ec2.internal`.
    pub private_dns_name: String,
    /// Its security groups.
    pub groups: Vec<String>,
    /// What made it (`arn:aws:ecs:…:attachment/…`), shown as its description.
    pub description: String,
    /// The attachment id.
    pub attachment_id: String,
}

/// Where an awsvpc task's interface goes: its subnet (with the VPC and block the address
/// comes from) and the groups it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedNetwork {
    /// The subnet chosen (the first named).
    pub subnet_id: String,
    /// Its VPC.
    pub vpc_id: String,
    /// Its block.
    pub cidr: Cidr,
    /// Its zone.
    pub availability_zone: String,
    /// The groups: those named, or the VPC's default group when none were.
    pub security_groups: Vec<String>,
}

impl Ec2 {
    /// Checks an awsvpc configuration against the state, as ECS does when it creates a
    /// task's ENI: every subnet exists and all share one VPC, every group exists in that
    /// VPC; no group means the VPC's default group. The interface goes in the first
    /// subnet.
    pub async fn resolve_network(
        &self,
        subnets: &[String],
        groups: &[String],
    ) -> Result<ResolvedNetwork, Ec2Error> {
        let state = self.snapshot().await?;
        compute_network(&state, subnets, groups)
    }

    pub(crate) async fn describe_network_interfaces(
        &self,
        q: &QueryParams,
    ) -> Result<String, Ec2Error> {
        let v = q.view();
        let ids = v.flat_list("NetworkInterfaceId");
        let filters = Filters::parse(
            &v,
            "Filter",
            &[
                "network-interface-id",
                "subnet-id",
                "vpc-id",
                "availability-zone",
                "private-ip-address",
                "addresses.private-ip-address",
                "group-id",
                "group-name",
                "mac-address",
                "status",
                "description",
                "interface-type",
                "requester-managed",
            ],
        )?;
        let state = self.snapshot().await?;
        let all = self.list_interfaces().await?;
        for id in &ids {
            if !all.iter().any(|i| i.id == *id) {
                return Err(Ec2Error::InterfaceNotFound((*id).to_owned()));
            }
        }
        let chosen: Vec<&NetworkInterface> = all
            .iter()
            .filter(|i| ids.is_empty() || ids.contains(&i.id.as_str()))
            .filter(|i| filters.matches(&InterfaceView { i, state: &state }))
            .collect();
        let mut x = Xml::new();
        wire::ec2::items(&mut x, "networkInterfaceSet", chosen, |x, i| {
            render::interface(x, i, &state, &self.account);
        });
        Ok(x.finish())
    }
}

struct InterfaceView<'a> {
    i: &'a NetworkInterface,
    state: &'a State,
}

impl Matcher for InterfaceView<'_> {
    fn values(&self, name: &str) -> Vec<String> {
        let subnet = self.state.subnets.get(&self.i.subnet_id);
        match name {
            "network-interface-id" => vec![self.i.id.clone()],
            "subnet-id" => vec![self.i.subnet_id.clone()],
            "vpc-id" => subnet.map(|s| s.vpc_id.clone()).into_iter().collect(),
            "availability-zone" => subnet
                .map(|s| s.availability_zone.clone())
                .into_iter()
                .collect(),
            "private-ip-address" | "addresses.private-ip-address" => vec![self.i.address.clone()],
            "group-id" => self.i.groups.clone(),
            "group-name" => self
                .i
                .groups
                .iter()
                .filter_map(|g| self.state.groups.get(g).map(|g| g.name.clone()))
                .collect(),
            "mac-address" => vec![self.i.mac.clone()],
            "status" => vec!["in-use".into()],
            "description" => vec![self.i.description.clone()],
            "interface-type" => vec!["interface".into()],
            "requester-managed" => vec!["true".into()],
            _ => Vec::new(),
        }
    }
    fn tags(&self) -> Vec<(&str, &str)> {
        Vec::new()
    }
}

/// The pure half of [`Ec2::resolve_network`].
pub fn compute_network(
    state: &State,
    subnets: &[String],
    groups: &[String],
) -> Result<ResolvedNetwork, Ec2Error> {
    let mut chosen = None;
    for id in subnets {
        let subnet = state
            .subnets
            .get(id)
            .ok_or_else(|| Ec2Error::SubnetNotFound(id.clone()))?;
        match chosen {
            None => chosen = Some(subnet),
            Some(first) if first.vpc_id != subnet.vpc_id => {
                return Err(Ec2Error::InvalidParameterValue(format!(
                    "The subnets {} and {} belong to different VPCs; an interface's subnets must share one.",
                    first.id, subnet.id
                )))
            }
            Some(_) => {}
        }
    }
    let subnet = chosen.ok_or_else(|| Ec2Error::MissingParameter("subnets".into()))?;
    let mut security_groups = Vec::new();
    for id in groups {
        let group = state
            .groups
            .get(id)
            .ok_or_else(|| Ec2Error::group_not_found(id))?;
        if group.vpc_id != subnet.vpc_id {
            return Err(Ec2Error::InvalidParameterValue(format!(
                "Security group {} and subnet {} belong to different networks.",
                group.id, subnet.id
            )));
        }
        if !security_groups.contains(id) {
            security_groups.push(id.clone());
        }
    }
    if security_groups.is_empty() {
        let default = state.default_group(&subnet.vpc_id).ok_or_else(|| {
            Ec2Error::Internal(format!("the VPC {} has no default group", subnet.vpc_id))
        })?;
        security_groups.push(default.id.clone());
    }
    Ok(ResolvedNetwork {
        subnet_id: subnet.id.clone(),
        vpc_id: subnet.vpc_id.clone(),
        cidr: subnet.cidr,
        availability_zone: subnet.availability_zone.clone(),
        security_groups,
    })
}
