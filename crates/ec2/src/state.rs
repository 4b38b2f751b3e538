//! EC2 networking state of one (account, region) and the one write path every change
//! goes through.
//!
//! The whole state (VPCs, subnets, security groups with their rules and tags) is one JSON
//! document at [`STATE_KEY`]. A write reads it with its revision, applies a pure change
//! to a copy, and commits it only if the revision has not moved (else it re-reads and
//! retries): EC2 writes are serializable, so cross-object rules (a subnet's CIDR does not
//! overlap another's, a group in use by another group's rule cannot be deleted) can
//! never be raced past. The state is small (AWS's own limits keep it so) and writes are
//! rare next to reads.
//!
//! The default VPC, its subnets and its default group are written by the first access,
//! as AWS gives every account one per region.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use store::{Store, Txn, TxnOutcome};

use crate::cidr::Cidr;
use crate::error::Ec2Error;

/// Where the state document lives in the region's store.
pub const STATE_KEY: &str = "ec2/state";

/// How many times a write re-reads after losing a race before giving up.
const MAX_ATTEMPTS: usize = 16;

/// Tags by key.
pub type Tags = BTreeMap<String, String>;

/// The availability zone suffixes every region has here (AWS regions have three or more).
pub const ZONE_SUFFIXES: [&str; 3] = ["a", "b", "c"];

/// The default VPC's block, as AWS creates it.
pub const DEFAULT_VPC_CIDR: &str = "172.31.0.0/16";

/// Everything EC2 networking holds in one region.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// VPCs by id.
    #[serde(default)]
    pub vpcs: BTreeMap<String, Vpc>,
    /// Subnets by id.
    #[serde(default)]
    pub subnets: BTreeMap<String, Subnet>,
    /// Security groups by id.
    #[serde(default)]
    pub groups: BTreeMap<String, SecurityGroup>,
}

/// A VPC.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Vpc {
    /// `vpc-…`.
    pub id: String,
    /// Its IPv4 block.
    pub cidr: Cidr,
    /// The region's default VPC.
    #[serde(default)]
    pub is_default: bool,
    /// `cidrBlockAssociationSet`'s one association id.
    pub association_id: String,
    /// Tags.
    #[serde(default)]
    pub tags: Tags,
}

/// A subnet.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Subnet {
    /// `subnet-…`.
    pub id: String,
    /// Its VPC.
    pub vpc_id: String,
    /// Its block, inside the VPC's.
    pub cidr: Cidr,
    /// `us-east-1a`.
    pub availability_zone: String,
    /// One of the default VPC's subnets.
    #[serde(default)]
    pub default_for_az: bool,
    /// Tags.
    #[serde(default)]
    pub tags: Tags,
}

/// A security group.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SecurityGroup {
    /// `sg-…`.
    pub id: String,
    /// Unique per VPC, case-insensitively.
    pub name: String,
    /// `GroupDescription`.
    pub description: String,
    /// Its VPC.
    pub vpc_id: String,
    /// Inbound rules, one per peer (AWS's `sgr-` rules).
    #[serde(default)]
    pub ingress: Vec<SgRule>,
    /// Outbound rules.
    #[serde(default)]
    pub egress: Vec<SgRule>,
    /// Tags.
    #[serde(default)]
    pub tags: Tags,
}

/// One security group rule: a protocol, ports and one peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SgRule {
    /// `sgr-…`.
    pub id: String,
    /// `-1`, `tcp`, `udp`, `icmp` or another protocol's number, as AWS shows it.
    pub protocol: String,
    /// First port (or ICMP type); `None` where the protocol takes none (`-1`).
    pub from_port: Option<i32>,
    /// Last port (or ICMP code).
    pub to_port: Option<i32>,
    /// The other end.
    pub peer: Peer,
    /// Free text; not part of the rule's identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl SgRule {
    /// Whether two rules admit the same traffic (descriptions and ids aside): AWS's
    /// duplicate test.
    pub fn same_as(&self, other: &SgRule) -> bool {
        self.protocol == other.protocol
            && self.from_port == other.from_port
            && self.to_port == other.to_port
            && self.peer == other.peer
    }
}

/// The other end of a rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Peer {
    /// An IPv4 block.
    Cidr(Cidr),
    /// An IPv6 block (kept and shown; the filter has no IPv6 yet).
    Cidr6(String),
    /// Another group's members.
    Group {
        /// `sg-…`.
        group_id: String,
        /// The group's account.
        user_id: String,
    },
}

/// A new id: `prefix-` and 17 hex digits, as AWS's long ids.
pub fn new_id(prefix: &str) -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &hex[..17])
}

impl State {
    /// The default VPC, if the region has one.
    pub fn default_vpc(&self) -> Option<&Vpc> {
        self.vpcs.values().find(|v| v.is_default)
    }

    /// The default group of `vpc_id`.
    pub fn default_group(&self, vpc_id: &str) -> Option<&SecurityGroup> {
        self.groups
            .values()
            .find(|g| g.vpc_id == vpc_id && g.name == "default")
    }

    /// Adds a VPC with its default security group (AWS creates one with every VPC: all
    /// inbound from its own members, all outbound).
    pub fn add_vpc(&mut self, cidr: Cidr, is_default: bool, account: &str) -> String {
        let vpc = Vpc {
            id: new_id("vpc"),
            cidr,
            is_default,
            association_id: new_id("vpc-cidr-assoc"),
            tags: Tags::new(),
        };
        let id = vpc.id.clone();
        self.vpcs.insert(id.clone(), vpc);
        let group_id = new_id("sg");
        let group = SecurityGroup {
            id: group_id.clone(),
            name: "default".into(),
            description: "default VPC security group".into(),
            vpc_id: id.clone(),
            ingress: vec![SgRule {
                id: new_id("sgr"),
                protocol: "-1".into(),
                from_port: None,
                to_port: None,
                peer: Peer::Group {
                    group_id: group_id.clone(),
                    user_id: account.to_owned(),
                },
                description: None,
            }],
            egress: vec![all_egress()],
            tags: Tags::new(),
        };
        self.groups.insert(group_id, group);
        id
    }

    /// The default VPC (172.31.0.0/16), one /20 default subnet per zone and its default
    /// group, when the region has no default VPC yet. Returns whether anything changed.
    pub fn ensure_defaults(&mut self, region: &str, account: &str) -> bool {
        if self.default_vpc().is_some() {
            return false;
        }
        let Ok(cidr) = DEFAULT_VPC_CIDR.parse::<Cidr>() else {
            return false;
        };
        let vpc_id = self.add_vpc(cidr, true, account);
        for (i, zone) in ZONE_SUFFIXES.iter().enumerate() {
            let base =
                u32::from(Ipv4Addr::new(172, 31, 0, 0)) + (u32::try_from(i).unwrap_or(0) << 12);
            let subnet = Subnet {
                id: new_id("subnet"),
                vpc_id: vpc_id.clone(),
                cidr: Cidr::new(Ipv4Addr::from(base), 20),
                availability_zone: format!("{region}{zone}"),
                default_for_az: true,
                tags: Tags::new(),
            };
            self.subnets.insert(subnet.id.clone(), subnet);
        }
        true
    }
}

/// The outbound rule every new group starts with: all traffic to 0.0.0.0/0.
pub fn all_egress() -> SgRule {
    SgRule {
        id: new_id("sgr"),
        protocol: "-1".into(),
        from_port: None,
        to_port: None,
        peer: Peer::Cidr(Cidr::new(Ipv4Addr::UNSPECIFIED, 0)),
        description: None,
    }
}

/// Reads the state (with the defaults written on first access) and its revision.
pub async fn load(store: &dyn Store, region: &str, account: &str) -> Result<State, Ec2Error> {
    let (state, _) = read(store).await?;
    if state.default_vpc().is_some() {
        return Ok(state);
    }
    update(store, region, account, |_| Ok(()))
        .await
        .map(|(s, ())| s)
}

async fn read(store: &dyn Store) -> Result<(State, u64), Ec2Error> {
    match store.get(STATE_KEY).await? {
        None => Ok((State::default(), 0)),
        Some(kv) => {
            let state = serde_json::from_slice(&kv.value).map_err(|e| {
                Ec2Error::Internal(format!("the stored EC2 state does not decode: {e}"))
            })?;
            Ok((state, kv.mod_revision))
        }
    }
}

/// Applies `change` to the state (defaults included) and commits it, retrying on a
/// concurrent write. Returns the state as committed and what `change` returned.
pub async fn update<T>(
    store: &dyn Store,
    region: &str,
    account: &str,
    mut change: impl FnMut(&mut State) -> Result<T, Ec2Error>,
) -> Result<(State, T), Ec2Error> {
    for _ in 0..MAX_ATTEMPTS {
        let (mut state, revision) = read(store).await?;
        state.ensure_defaults(region, account);
        let out = change(&mut state)?;
        let value = serde_json::to_vec(&state)
            .map_err(|e| Ec2Error::Internal(format!("the EC2 state does not encode: {e}")))?;
        let txn = Txn::new().when(STATE_KEY, revision).put(STATE_KEY, value);
        match store.txn(txn).await? {
            TxnOutcome::Committed { .. } => return Ok((state, out)),
            TxnOutcome::Conflict { .. } => continue,
        }
    }
    Err(Ec2Error::Internal(
        "the EC2 state kept changing under this write; retry".into(),
    ))
}
