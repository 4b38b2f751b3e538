//! `elb` owns the Elastic Load Balancing v2 API's control side: load balancers,
//! listeners, rules, target groups, target registration and tags, durable in the state
//! store; the mapping of its errors to AWS's codes; and the contract with the data plane
//! ([`model::lb`]): a [`Config`](model::lb::Config) snapshot of what to serve, a change
//! notification, and a health table the data plane reports into and DescribeTargetHealth
//! reads.
//!
//! It speaks the AWS query protocol's decoded form ([`wire::query::QueryParams`] in, XML
//! out) but no HTTP or SigV4: the binary does that. It must not depend on other services
//! (ECS registers targets through [`Elbv2::register_targets`], wired by the binary).
//!
//! Where load balancers are reached: every listener binds its port on one address, the
//! bind address (127.0.0.1 unless [`Elbv2::with_bind_address`] says otherwise), and that
//! address is each load balancer's `DNSName`. A client reaches a listener at
//! `DNSName:Port`. Since all load balancers share the address, a port can be used by only
//! one listener across all of them.
//!
//! Times are epoch milliseconds throughout.

mod actions;
mod arn;
mod authz;
mod error;
mod health;
mod listeners;
mod load_balancers;
mod operations;
mod params;
mod rules;
mod snapshot;
mod state;
mod tags;
mod target_groups;
mod targets;

pub use error::Elbv2Error;
pub use model::lb::TargetKey;
pub use operations::Operation;

use model::ecs::arn::ArnScope;
use state::Objects;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use wire::query::QueryParams;

/// The query `Version` of the ELBv2 API.
pub const API_VERSION: &str = "2015-12-01";

/// The XML namespace of its responses.
pub const XML_NAMESPACE: &str = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/";

/// The SigV4 signing name (credential scope service) of ELBv2.
pub const SIGNING_NAME: &str = "elasticloadbalancing";

/// A source of "now" in epoch milliseconds (the wall clock outside tests).
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Resolves an `instance` target's id (`i-…`) to the address the data plane connects
/// to; `None` falls back to 127.0.0.1.
pub type Resolver = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Checks security group ids against EC2 (wired by the binary: this crate depends on no
/// other service). `Err` carries the ids that do not exist.
#[async_trait::async_trait]
pub trait SecurityGroups: Send + Sync {
    /// `Ok` when every id in `ids` names an existing group of this account and region.
    async fn check(&self, ids: &[String]) -> Result<(), Vec<String>>;
}

/// A listener whose load balancer has security groups: the packet filter admits new
/// connections to it by those groups' ingress rules only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuardedListener {
    /// The load balancer's ARN.
    pub load_balancer_arn: String,
    /// The address the listener binds.
    pub address: IpAddr,
    /// Its port.
    pub port: u16,
    /// The load balancer's groups.
    pub security_groups: Vec<String>,
    /// The target groups its actions forward to (default actions and rules): the data
    /// plane marks their connections ([`model::lb::socket_mark`]).
    pub target_groups: Vec<String>,
}

/// The health the data plane last reported, by target group ARN and target.
type HealthTable = HashMap<(String, TargetKey), model::lb::Health>;

/// The ELBv2 service over a store.
#[derive(Clone)]
pub struct Elbv2 {
    objects: Objects,
    scope: ArnScope,
    clock: Clock,
    resolver: Option<Resolver>,
    bind_address: IpAddr,
    changes: Arc<tokio::sync::watch::Sender<u64>>,
    health: Arc<Mutex<HealthTable>>,
    /// Set once, after EC2 exists (it is built after this service); unset, security
    /// groups are refused since nothing could enforce them.
    groups: Arc<std::sync::OnceLock<Arc<dyn SecurityGroups>>>,
}

impl Elbv2 {
    /// An ELBv2 service whose ARNs use `scope`, over `store`, on the wall clock, binding
    /// 127.0.0.1. `resolver` maps instance ids to addresses for the data plane.
    pub fn new(store: Arc<dyn store::Store>, scope: ArnScope, resolver: Option<Resolver>) -> Self {
        let (tx, _) = tokio::sync::watch::channel(0);
        let changes = Arc::new(tx);
        Self {
            objects: Objects::new(store, changes.clone()),
            scope,
            clock: Arc::new(wall_clock_ms),
            resolver,
            bind_address: IpAddr::from([127, 0, 0, 1]),
            changes,
            health: Arc::new(Mutex::new(HashMap::new())),
            groups: Arc::new(std::sync::OnceLock::new()),
        }
    }

    /// Wires the security group check (every clone of this service sees it). A second
    /// call is ignored.
    pub fn set_security_groups(&self, groups: Arc<dyn SecurityGroups>) {
        let _ = self.groups.set(groups);
    }

    /// The security groups of each load balancer that has some (EC2 refuses to delete
    /// a group a load balancer holds).
    pub async fn load_balancer_groups(&self) -> Result<Vec<Vec<String>>, Elbv2Error> {
        let (world, _, _) = self.objects.load().await?;
        Ok(world
            .lbs
            .values()
            .filter(|lb| !lb.security_groups.is_empty())
            .map(|lb| lb.security_groups.clone())
            .collect())
    }

    /// Every listener of a load balancer that has security groups.
    pub async fn guarded_listeners(&self) -> Result<Vec<GuardedListener>, Elbv2Error> {
        let (world, _, _) = self.objects.load().await?;
        Ok(world
            .lbs
            .values()
            .filter(|lb| !lb.security_groups.is_empty())
            .flat_map(|lb| {
                lb.listeners.iter().map(|l| {
                    let mut target_groups: Vec<String> = l
                        .default_actions
                        .iter()
                        .chain(l.rules.iter().flat_map(|r| &r.actions))
                        .flat_map(|a| a.target_group_arns())
                        .map(str::to_owned)
                        .collect();
                    target_groups.sort();
                    target_groups.dedup();
                    GuardedListener {
                        load_balancer_arn: lb.arn.clone(),
                        address: self.bind_address,
                        port: l.port,
                        security_groups: lb.security_groups.clone(),
                        target_groups,
                    }
                })
            })
            .collect())
    }

    /// The same service reading time from `clock` (tests move time forward with it).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The same service with listeners bound on `address`, which also becomes every
    /// load balancer's `DNSName`.
    #[must_use]
    pub fn with_bind_address(mut self, address: IpAddr) -> Self {
        self.bind_address = address;
        self
    }

    /// Runs the query-protocol request `params` (its `Action` names the operation) and
    /// returns the XML response document, whose `RequestId` is `request_id`.
    pub async fn handle(
        &self,
        params: &QueryParams,
        request_id: &str,
    ) -> Result<String, Elbv2Error> {
        let action = params.action().unwrap_or("");
        let Some(op) = Operation::from_name(action) else {
            return Err(Elbv2Error::InvalidAction(action.to_owned()));
        };
        self.run(op, params, request_id).await
    }

    /// A receiver whose value changes (to the store revision of the write) after every
    /// committed ELBv2 write, including draining targets expiring: the data plane
    /// re-reads [`Elbv2::lb_config`] when it fires.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Now, in epoch milliseconds.
    pub(crate) fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    /// The bind address as `DNSName` shows it.
    pub(crate) fn dns_name(&self) -> String {
        self.bind_address.to_string()
    }
}

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
