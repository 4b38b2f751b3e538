//! VPCs, subnets, availability zones and tags: their operations over the state.

use wire::query::{QueryParams, QueryView};
use wire::xml::Xml;

use crate::cidr::Cidr;
use crate::error::Ec2Error;
use crate::filters::{Filters, Matcher};
use crate::render;
use crate::state::{new_id, State, Subnet, Tags, Vpc, ZONE_SUFFIXES};
use crate::Ec2;

/// The tags of `TagSpecification.N` entries for `resource_type` (`vpc`, `subnet`,
/// `security-group`); a specification for another type is refused as AWS refuses it.
pub fn parse_tag_specs(q: &QueryParams, resource_type: &str) -> Result<Tags, Ec2Error> {
    let mut tags = Tags::new();
    for spec in q.view().flat_members("TagSpecification") {
        let kind = spec.get("ResourceType").unwrap_or("");
        if kind != resource_type {
            return Err(Ec2Error::InvalidParameterValue(format!(
                "'{kind}' is not a valid taggable resource type for this operation."
            )));
        }
        tags.extend(parse_tags(&spec, "Tag")?);
    }
    Ok(tags)
}

/// `name.N.Key` / `name.N.Value` pairs.
pub fn parse_tags(view: &QueryView<'_>, name: &str) -> Result<Tags, Ec2Error> {
    let mut tags = Tags::new();
    for t in view.flat_members(name) {
        let key = t
            .get("Key")
            .ok_or_else(|| Ec2Error::MissingParameter("Tag.Key".into()))?;
        if key.is_empty() || key.len() > 127 || key.starts_with("aws:") {
            return Err(Ec2Error::InvalidParameterValue(format!(
                "Tag key '{key}' is invalid: keys are 1 to 127 characters and may not start with 'aws:'."
            )));
        }
        let value = t.get("Value").unwrap_or("");
        if value.len() > 255 {
            return Err(Ec2Error::InvalidParameterValue(
                "Tag values may be at most 255 characters.".into(),
            ));
        }
        tags.insert(key.to_owned(), value.to_owned());
    }
    Ok(tags)
}

/// A required parameter.
pub fn required<'a>(q: &'a QueryParams, name: &str) -> Result<&'a str, Ec2Error> {
    q.get(name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Ec2Error::MissingParameter(name.to_owned()))
}

fn tag_pairs(tags: &Tags) -> Vec<(&str, &str)> {
    tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

impl Matcher for Vpc {
    fn values(&self, name: &str) -> Vec<String> {
        match name {
            "vpc-id" => vec![self.id.clone()],
            "cidr" | "cidr-block-association.cidr-block" | "cidrBlock" => {
                vec![self.cidr.to_string()]
            }
            "is-default" | "isDefault" => vec![self.is_default.to_string()],
            "state" => vec!["available".into()],
            _ => Vec::new(),
        }
    }
    fn tags(&self) -> Vec<(&str, &str)> {
        tag_pairs(&self.tags)
    }
}

impl Matcher for Subnet {
    fn values(&self, name: &str) -> Vec<String> {
        match name {
            "subnet-id" => vec![self.id.clone()],
            "vpc-id" | "vpcId" => vec![self.vpc_id.clone()],
            "cidr-block" | "cidr" | "cidrBlock" => vec![self.cidr.to_string()],
            "availability-zone" | "availabilityZone" => vec![self.availability_zone.clone()],
            "default-for-az" | "defaultForAz" => vec![self.default_for_az.to_string()],
            "state" => vec!["available".into()],
            _ => Vec::new(),
        }
    }
    fn tags(&self) -> Vec<(&str, &str)> {
        tag_pairs(&self.tags)
    }
}

impl Ec2 {
    pub(crate) async fn create_vpc(&self, q: &QueryParams) -> Result<String, Ec2Error> {
        let raw = required(q, "CidrBlock")?;
        let cidr: Cidr = raw.parse().map_err(|_| {
            Ec2Error::InvalidParameterValue(format!(
                "Value ({raw}) for parameter cidrBlock is invalid. This is not a valid CIDR block."
            ))
        })?;
        if !(16..=28).contains(&cidr.len()) {
            return Err(Ec2Error::VpcRange(raw.to_owned()));
        }
        let tags = parse_tag_specs(q, "vpc")?;
        let account = self.account.clone();
        let (state, id) = self
            .update(|s| {
                let id = s.add_vpc(cidr, false, &account);
                if let Some(v) = s.vpcs.get_mut(&id) {
                    v.tags = tags.clone();
                }
                Ok(id)
            })
            .await?;
        let mut x = Xml::new();
        if let Some(vpc) = state.vpcs.get(&id) {
            x.el("vpc", |x| render::vpc(x, vpc, &self.account));
        }
        Ok(x.finish())
    }

    pub(crate) async fn describe_vpcs(&self, q: &QueryParams) -> Result<String, Ec2Error> {
        let v = q.view();
        let ids = v.flat_list("VpcId");
        let filters = Filters::parse(
            &v,
            "Filter",
            &[
                "vpc-id",
                "cidr",
                "cidr-block-association.cidr-block",
                "is-default",
                "state",
                "owner-id",
            ],
        )?;
        let state = self.snapshot().await?;
        for id in &ids {
            if !state.vpcs.contains_key(*id) {
                return Err(Ec2Error::VpcNotFound((*id).to_owned()));
            }
        }
        let mut x = Xml::new();
        let chosen = state
            .vpcs
            .values()
            .filter(|vpc| ids.is_empty() || ids.contains(&vpc.id.as_str()))
            .filter(|vpc| filters.matches(*vpc));
        wire::ec2::items(&mut x, "vpcSet", chosen, |x, vpc| {
            render::vpc(x, vpc, &self.account);
        });
        Ok(x.finish())
    }

    pub(crate) async fn delete_vpc(&self, q: &QueryParams) -> Result<String, Ec2Error> {
        let id = required(q, "VpcId")?.to_owned();
        self.update(|s| {
            if !s.vpcs.contains_key(&id) {
                return Err(Ec2Error::VpcNotFound(id.clone()));
            }
            let has_dependent = s.subnets.values().any(|n| n.vpc_id == id)
                || s.groups
                    .values()
                    .any(|g| g.vpc_id == id && g.name != "default");
            if has_dependent {
                return Err(Ec2Error::DependencyViolation(format!(
                    "The vpc '{id}' has dependencies and cannot be deleted."
                )));
            }
            s.vpcs.remove(&id);
            s.groups.retain(|_, g| g.vpc_id != id);
            Ok(())
        })
        .await?;
        Ok("<return>true</return>".into())
    }

    pub(crate) async fn create_subnet(&self, q: &QueryParams) -> Result<String, Ec2Error> {
        let vpc_id = required(q, "VpcId")?.to_owned();
        let raw = required(q, "CidrBlock")?.to_owned();
        let cidr: Cidr = raw.parse().map_err(|_| {
            Ec2Error::InvalidParameterValue(format!(
                "Value ({raw}) for parameter cidrBlock is invalid. This is not a valid CIDR block."
            ))
        })?;
        let tags = parse_tag_specs(q, "subnet")?;
        let zones: Vec<String> = ZONE_SUFFIXES
            .iter()
            .map(|z| format!("{}{z}", self.region))
            .collect();
        let zone = match q.get("AvailabilityZone") {
            Some(z) if zones.iter().any(|k| k == z) => z.to_owned(),
            Some(z) => {
                return Err(Ec2Error::InvalidParameterValue(format!(
                    "Value ({z}) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: {}.",
                    zones.join(", ")
                )))
            }
            None => zones.first().cloned().unwrap_or_default(),
        };
        let (state, id) = self
            .update(|s| {
                let vpc = s
                    .vpcs
                    .get(&vpc_id)
                    .ok_or_else(|| Ec2Error::VpcNotFound(vpc_id.clone()))?;
                if !(16..=28).contains(&cidr.len()) || !vpc.cidr.contains(cidr) {
                    return Err(Ec2Error::SubnetRange(raw.clone()));
                }
                if s.subnets
                    .values()
                    .any(|n| n.vpc_id == vpc_id && n.cidr.overlaps(cidr))
                {
                    return Err(Ec2Error::SubnetConflict(raw.clone()));
                }
                let subnet = Subnet {
                    id: new_id("subnet"),
                    vpc_id: vpc_id.clone(),
                    cidr,
                    availability_zone: zone.clone(),
                    default_for_az: false,
                    tags: tags.clone(),
                };
                let id = subnet.id.clone();
                s.subnets.insert(id.clone(), subnet);
                Ok(id)
            })
            .await?;
        let mut x = Xml::new();
        if let Some(subnet) = state.subnets.get(&id) {
            x.el("subnet", |x| render::subnet(x, subnet, &self.account, 0));
        }
        Ok(x.finish())
    }

    pub(crate) async fn describe_subnets(&self, q: &QueryParams) -> Result<String, Ec2Error> {
        let v = q.view();
        let ids = v.flat_list("SubnetId");
        let filters = Filters::parse(
            &v,
            "Filter",
            &[
                "subnet-id",
                "vpc-id",
                "cidr-block",
                "cidr",
                "availability-zone",
                "default-for-az",
                "state",
                "owner-id",
            ],
        )?;
        let state = self.snapshot().await?;
        for id in &ids {
            if !state.subnets.contains_key(*id) {
                return Err(Ec2Error::SubnetNotFound((*id).to_owned()));
            }
        }
        let interfaces = self.list_interfaces().await?;
        let mut x = Xml::new();
        let chosen = state
            .subnets
            .values()
            .filter(|n| ids.is_empty() || ids.contains(&n.id.as_str()))
            .filter(|n| filters.matches(*n));
        wire::ec2::items(&mut x, "subnetSet", chosen, |x, n| {
            let used = interfaces.iter().filter(|i| i.subnet_id == n.id).count();
            render::subnet(x, n, &self.account, used);
        });
        Ok(x.finish())
    }

    pub(crate) async fn delete_subnet(&self, q: &QueryParams) -> Result<String, Ec2Error> {
        let id = required(q, "SubnetId")?.to_owned();
        let interfaces = self.list_interfaces().await?;
        if interfaces.iter().any(|i| i.subnet_id == id) {
            return Err(Ec2Error::DependencyViolation(format!(
                "The subnet '{id}' has dependencies and cannot be deleted."
            )));
        }
        self.update(|s| {
            s.subnets
                .remove(&id)
                .map(|_| ())
                .ok_or_else(|| Ec2Error::SubnetNotFound(id.clone()))
        })
        .await?;
        Ok("<return>true</return>".into())
    }

    pub(crate) fn describe_availability_zones(&self, q: &QueryParams) -> Result<String, Ec2Error> {
        let v = q.view();
        let names = v.flat_list("ZoneName");
        let ids = v.flat_list("ZoneId");
        let filters = Filters::parse(
            &v,
            "Filter",
            &[
                "zone-name",
                "zone-id",
                "region-name",
                "state",
                "zone-type",
                "group-name",
                "opt-in-status",
            ],
        )?;
        let zones: Vec<Zone> = ZONE_SUFFIXES
            .iter()
            .enumerate()
            .map(|(i, s)| Zone {
                name: format!("{}{s}", self.region),
                id: format!("{}-az{}", render::zone_id_prefix(&self.region), i + 1),
                region: self.region.clone(),
            })
            .collect();
        for n in &names {
            if !zones.iter().any(|z| z.name == *n) {
                return Err(Ec2Error::InvalidParameterValue(format!(
                    "The zone '{n}' does not exist."
                )));
            }
        }
        let chosen = zones
            .iter()
            .filter(|z| names.is_empty() || names.contains(&z.name.as_str()))
            .filter(|z| ids.is_empty() || ids.contains(&z.id.as_str()))
            .filter(|z| filters.matches(*z));
        let mut x = Xml::new();
        wire::ec2::items(&mut x, "availabilityZoneInfo", chosen, |x, z| {
            x.leaf("optInStatus", "opt-in-not-required");
            wire::ec2::items(x, "messageSet", Vec::<()>::new(), |_, ()| {});
            x.leaf("regionName", &z.region)
                .leaf("zoneName", &z.name)
                .leaf("zoneId", &z.id)
                .leaf("groupName", &z.region)
                .leaf("networkBorderGroup", &z.region)
                .leaf("zoneType", "availability-zone")
                .leaf("zoneState", "available");
        });
        Ok(x.finish())
    }

    pub(crate) async fn create_tags(
        &self,
        q: &QueryParams,
        delete: bool,
    ) -> Result<String, Ec2Error> {
        let v = q.view();
        let ids: Vec<String> = v
            .flat_list("ResourceId")
            .into_iter()
            .map(str::to_owned)
            .collect();
        if ids.is_empty() {
            return Err(Ec2Error::MissingParameter("ResourceId".into()));
        }
        // DeleteTags takes keys with optional values: a value given must match.
        let mut pairs: Vec<(String, Option<String>)> = Vec::new();
        for t in v.flat_members("Tag") {
            let key = t
                .get("Key")
                .ok_or_else(|| Ec2Error::MissingParameter("Tag.Key".into()))?;
            pairs.push((key.to_owned(), t.get("Value").map(str::to_owned)));
        }
        let new = if delete {
            Tags::new()
        } else {
            parse_tags(&v, "Tag")?
        };
        self.update(|s| {
            for id in &ids {
                let tags = tags_of(s, id).ok_or_else(|| Ec2Error::InvalidId(id.clone()))?;
                if delete {
                    if pairs.is_empty() {
                        tags.clear();
                    }
                    for (k, want) in &pairs {
                        if want.as_ref().is_none_or(|w| tags.get(k) == Some(w)) {
                            tags.remove(k);
                        }
                    }
                } else {
                    tags.extend(new.clone());
                    if tags.len() > 50 {
                        return Err(Ec2Error::InvalidParameterValue(
                            "A resource may have at most 50 tags.".into(),
                        ));
                    }
                }
            }
            Ok(())
        })
        .await?;
        Ok("<return>true</return>".into())
    }
}

/// The tags of the VPC, subnet or group `id`.
fn tags_of<'s>(s: &'s mut State, id: &str) -> Option<&'s mut Tags> {
    if let Some(v) = s.vpcs.get_mut(id) {
        return Some(&mut v.tags);
    }
    if let Some(n) = s.subnets.get_mut(id) {
        return Some(&mut n.tags);
    }
    s.groups.get_mut(id).map(|g| &mut g.tags)
}

struct Zone {
    name: String,
    id: String,
    region: String,
}

impl Matcher for Zone {
    fn values(&self, name: &str) -> Vec<String> {
        match name {
            "zone-name" => vec![self.name.clone()],
            "zone-id" => vec![self.id.clone()],
            "region-name" | "group-name" => vec![self.region.clone()],
            "state" => vec!["available".into()],
            "zone-type" => vec!["availability-zone".into()],
            "opt-in-status" => vec!["opt-in-not-required".into()],
            _ => Vec::new(),
        }
    }
    fn tags(&self) -> Vec<(&str, &str)> {
        Vec::new()
    }
}
