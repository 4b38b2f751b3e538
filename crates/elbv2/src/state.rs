//! How ELBv2 state sits in the store, and the one write path every change goes through.
//!
//! Layout (values are JSON):
//! - `elb/loadbalancer/<name>` → [`StoredLoadBalancer`], with its listeners and their
//!   rules inside (they live and die with it, and listener ports must be checked against
//!   each other, so one object keeps those invariants in one compare-and-swap);
//! - `elb/targetgroup/<name>` → [`StoredTargetGroup`], with its registered targets;
//! - `elb/epoch` → empty: rewritten by every ELBv2 write.
//!
//! A write reads the whole ELBv2 state (a [`State`]), applies a pure change to a copy,
//! and commits the objects that differ *if `elb/epoch` has not moved*: ELBv2 writes are
//! therefore serializable, and cross-object rules (a target group in use cannot be
//! deleted, a listener port is unique on the bind address) can never be raced past.
//! Control-plane writes are rare and the state is small, so the serialization costs
//! nothing that matters; reads never wait.

use crate::actions::{ActionSpec, ConditionSpec};
use crate::error::Elbv2Error;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use store::{Revision, Step, Store, Txn};

/// Prefix of every ELBv2 key.
const PREFIX: &str = "elb/";
/// Prefix of load balancers.
const LB_PREFIX: &str = "elb/loadbalancer/";
/// Prefix of target groups.
const TG_PREFIX: &str = "elb/targetgroup/";
/// The key every write rewrites (see the module docs).
const EPOCH_KEY: &str = "elb/epoch";

/// Tags of a resource, by key.
pub type Tags = BTreeMap<String, String>;

/// `application` or `network`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LbType {
    /// Layer 7, HTTP listeners.
    Application,
    /// Layer 4, TCP listeners.
    Network,
}

impl LbType {
    /// The AWS `Type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Application => "application",
            Self::Network => "network",
        }
    }
    /// The kind segment of its ARNs.
    pub fn arn_kind(self) -> &'static str {
        match self {
            Self::Application => "app",
            Self::Network => "net",
        }
    }
    /// The one listener protocol Stevedore serves for it.
    pub fn listener_protocol(self) -> &'static str {
        match self {
            Self::Application => "HTTP",
            Self::Network => "TCP",
        }
    }
}

/// A stored load balancer with its listeners.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredLoadBalancer {
    /// Its ARN.
    pub arn: String,
    /// Its name.
    pub name: String,
    /// Application or network.
    pub kind: LbType,
    /// `internet-facing` or `internal` (recorded; both bind the same address).
    pub scheme: String,
    /// Subnets as given (echoed as availability zones).
    pub subnets: Vec<String>,
    /// Security groups as given (echoed).
    pub security_groups: Vec<String>,
    /// `ipv4` or `dualstack` (recorded).
    pub ip_address_type: String,
    /// Creation time, epoch milliseconds.
    pub created_ms: i64,
    /// Tags.
    #[serde(default)]
    pub tags: Tags,
    /// Attributes set by ModifyLoadBalancerAttributes (defaults are not stored).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Listeners, in creation order.
    #[serde(default)]
    pub listeners: Vec<StoredListener>,
}

/// A listener with its non-default rules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredListener {
    /// Its ARN.
    pub arn: String,
    /// The port bound on the load balancer's address.
    pub port: u16,
    /// `HTTP` or `TCP`.
    pub protocol: String,
    /// What happens when no rule matches (the default rule's actions).
    pub default_actions: Vec<ActionSpec>,
    /// The ARN DescribeRules shows for the default rule.
    pub default_rule_arn: String,
    /// Tags of the listener.
    #[serde(default)]
    pub tags: Tags,
    /// Tags of the default rule.
    #[serde(default)]
    pub default_rule_tags: Tags,
    /// Non-default rules, in creation order (sorted by priority when shown).
    #[serde(default)]
    pub rules: Vec<StoredRule>,
}

/// A non-default listener rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredRule {
    /// Its ARN.
    pub arn: String,
    /// 1..=50000, unique within the listener.
    pub priority: u32,
    /// Every condition must match.
    pub conditions: Vec<ConditionSpec>,
    /// Its actions.
    pub actions: Vec<ActionSpec>,
    /// Tags.
    #[serde(default)]
    pub tags: Tags,
}

/// A target group's health check settings, as shown by DescribeTargetGroups.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheckSpec {
    /// `HealthCheckEnabled`.
    pub enabled: bool,
    /// `HTTP` or `TCP`.
    pub protocol: String,
    /// `traffic-port` or a port number.
    pub port: String,
    /// Path for HTTP checks.
    pub path: Option<String>,
    /// Seconds between checks (stored as `interval`).
    #[serde(rename = "interval")]
    pub interval_seconds: u32,
    /// Seconds before a check fails (stored as `timeout`).
    #[serde(rename = "timeout")]
    pub timeout_seconds: u32,
    /// Successes before healthy.
    pub healthy: u32,
    /// Failures before unhealthy.
    pub unhealthy: u32,
    /// `Matcher.HttpCode` for HTTP checks.
    pub matcher: Option<String>,
}

/// A stored target group with its targets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredTargetGroup {
    /// Its ARN.
    pub arn: String,
    /// Its name.
    pub name: String,
    /// `HTTP` or `TCP`.
    pub protocol: String,
    /// The default target port.
    pub port: u16,
    /// The VPC id given (or the default one).
    pub vpc_id: String,
    /// `instance` or `ip`.
    pub target_type: String,
    /// `HTTP1` for HTTP groups.
    pub protocol_version: Option<String>,
    /// Health checks.
    pub health_check: HealthCheckSpec,
    /// Attributes set by ModifyTargetGroupAttributes (defaults are not stored).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Tags.
    #[serde(default)]
    pub tags: Tags,
    /// Registered and draining targets, in registration order.
    #[serde(default)]
    pub targets: Vec<StoredTarget>,
    /// Creation time, epoch milliseconds.
    pub created_ms: i64,
}

/// A registered (or draining) target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTarget {
    /// Instance id or IP address.
    pub id: String,
    /// The port traffic goes to.
    pub port: u16,
    /// `AvailabilityZone` as given.
    #[serde(default)]
    pub az: Option<String>,
    /// When it was (last) registered, epoch milliseconds.
    pub registered_ms: i64,
    /// When it was deregistered; it drains until the deregistration delay has passed.
    #[serde(default)]
    pub deregistered_ms: Option<i64>,
    /// Where an instance target is reached, when its registrar knew (ECS passes its
    /// container instance's host address); not part of the ELBv2 API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// The whole ELBv2 state, as one write sees it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    /// Load balancers by name.
    pub lbs: BTreeMap<String, StoredLoadBalancer>,
    /// Target groups by name.
    pub tgs: BTreeMap<String, StoredTargetGroup>,
}

impl State {
    /// The load balancer with this ARN (the name is parsed from it; the ARN must match).
    pub fn lb(&self, name: &str, arn: &str) -> Result<&StoredLoadBalancer, Elbv2Error> {
        self.lbs
            .get(name)
            .filter(|lb| lb.arn == arn)
            .ok_or_else(|| lb_not_found(arn))
    }

    /// Mutable [`State::lb`].
    pub fn lb_mut(&mut self, name: &str, arn: &str) -> Result<&mut StoredLoadBalancer, Elbv2Error> {
        self.lbs
            .get_mut(name)
            .filter(|lb| lb.arn == arn)
            .ok_or_else(|| lb_not_found(arn))
    }

    /// The target group with this ARN.
    pub fn tg(&self, name: &str, arn: &str) -> Result<&StoredTargetGroup, Elbv2Error> {
        self.tgs
            .get(name)
            .filter(|tg| tg.arn == arn)
            .ok_or_else(|| tg_not_found(arn))
    }

    /// Mutable [`State::tg`].
    pub fn tg_mut(&mut self, name: &str, arn: &str) -> Result<&mut StoredTargetGroup, Elbv2Error> {
        self.tgs
            .get_mut(name)
            .filter(|tg| tg.arn == arn)
            .ok_or_else(|| tg_not_found(arn))
    }

    /// The load balancers whose listeners or rules forward to the target group `tg_arn`.
    pub fn lbs_using(&self, tg_arn: &str) -> Vec<&StoredLoadBalancer> {
        self.lbs
            .values()
            .filter(|lb| {
                lb.listeners.iter().any(|l| {
                    l.default_actions.iter().any(|a| a.forwards_to(tg_arn))
                        || l.rules
                            .iter()
                            .any(|r| r.actions.iter().any(|a| a.forwards_to(tg_arn)))
                })
            })
            .collect()
    }
}

/// `LoadBalancerNotFound` for an ARN.
pub fn lb_not_found(arn: &str) -> Elbv2Error {
    Elbv2Error::LoadBalancerNotFound(format!("Load balancer '{arn}' not found"))
}

/// `TargetGroupNotFound` for an ARN or name.
pub fn tg_not_found(what: &str) -> Elbv2Error {
    Elbv2Error::TargetGroupNotFound(format!("Target group '{what}' not found"))
}

/// Reads and writes the [`State`] in the store, through [`store::Objects`].
#[derive(Clone)]
pub struct Objects {
    objects: store::Objects<Elbv2Error>,
}

impl Objects {
    /// Wraps a store; every committed write is announced on `changes` with its revision.
    pub fn new(store: Arc<dyn Store>, changes: Arc<tokio::sync::watch::Sender<u64>>) -> Self {
        let announce: store::CommitHook = Arc::new(move |_ops: &[store::Op], revision| {
            changes.send_replace(revision);
        });
        Self {
            objects: store::Objects::new(store).with_hook(announce),
        }
    }

    /// Reads the whole state, with the epoch's revision and the store revision read at.
    pub async fn load(&self) -> Result<(State, Revision, Revision), Elbv2Error> {
        let (kvs, at) = self.objects.range_all_at(PREFIX).await?;
        let mut world = State::default();
        let mut epoch = 0;
        for kv in &kvs {
            if kv.key == EPOCH_KEY {
                epoch = kv.mod_revision;
            } else if let Some(name) = kv.key.strip_prefix(LB_PREFIX) {
                world
                    .lbs
                    .insert(name.to_owned(), decode(&kv.key, &kv.value)?);
            } else if let Some(name) = kv.key.strip_prefix(TG_PREFIX) {
                world
                    .tgs
                    .insert(name.to_owned(), decode(&kv.key, &kv.value)?);
            }
        }
        Ok((world, epoch, at))
    }

    /// Applies `change` to the current state and commits what it changed, retrying on
    /// a lost race. `change` must be deterministic in its inputs (ids and times are
    /// chosen by the caller, once), since a retry runs it again on fresher state.
    pub async fn write<R>(
        &self,
        what: &str,
        change: impl Fn(&mut State) -> Result<R, Elbv2Error>,
    ) -> Result<R, Elbv2Error> {
        let change = &change;
        self.objects
            .retry(what, || async move {
                let (before, epoch, _) = self.load().await?;
                let mut after = before.clone();
                let out = change(&mut after)?;
                Ok(match diff(&before, &after, epoch)? {
                    None => Step::Done(out),
                    Some(txn) => Step::Commit(txn, out),
                })
            })
            .await
    }
}

/// The transaction turning `before` into `after`, or `None` when nothing changed.
fn diff(before: &State, after: &State, epoch: Revision) -> Result<Option<Txn>, Elbv2Error> {
    let mut txn = Txn::new().when(EPOCH_KEY, epoch);
    let mut changed = false;
    for (name, lb) in &after.lbs {
        if before.lbs.get(name) != Some(lb) {
            txn = txn.put(format!("{LB_PREFIX}{name}"), encode(lb)?);
            changed = true;
        }
    }
    for name in before.lbs.keys().filter(|n| !after.lbs.contains_key(*n)) {
        txn = txn.delete(format!("{LB_PREFIX}{name}"));
        changed = true;
    }
    for (name, tg) in &after.tgs {
        if before.tgs.get(name) != Some(tg) {
            txn = txn.put(format!("{TG_PREFIX}{name}"), encode(tg)?);
            changed = true;
        }
    }
    for name in before.tgs.keys().filter(|n| !after.tgs.contains_key(*n)) {
        txn = txn.delete(format!("{TG_PREFIX}{name}"));
        changed = true;
    }
    Ok(changed.then(|| txn.put(EPOCH_KEY, bytes::Bytes::new())))
}

/// JSON-encodes a value for the store.
fn encode<T: Serialize>(value: &T) -> Result<bytes::Bytes, Elbv2Error> {
    Ok(store::objects::encode(value)?)
}

/// Decodes a stored JSON value.
fn decode<T: DeserializeOwned>(key: &str, value: &[u8]) -> Result<T, Elbv2Error> {
    Ok(store::objects::decode(key, value)?)
}
