//! `ec2` owns EC2's networking API for one (account, region): VPCs, subnets, security
//! groups and their rules, tags, availability zones, and the network interfaces other
//! services create (ECS task ENIs), durable in the state store ([`state`]). It also
//! answers the questions other parts of Stevedore ask of that state: which subnet and
//! groups an awsvpc task gets ([`Ec2::resolve_network`]), and every group's rules for
//! the packet filter ([`Ec2::snapshot`]).
//!
//! It speaks EC2's query dialect ([`wire::ec2`]: form parameters in, `<item>` XML out)
//! but no HTTP or SigV4: the binary does that. It must not depend on other services:
//! ECS's interfaces reach it through the [`Interfaces`] trait the binary implements, and
//! EC2 actions it does not serve (launch templates) go to a [`Fallback`] if one is set.

mod cidr;
mod error;
mod filters;
mod groups;
mod model_names;
mod network;
mod operations;
mod render;
pub mod state;
mod vpcs;

pub use cidr::Cidr;
pub use error::Ec2Error;
pub use network::{NetworkInterface, ResolvedNetwork};
pub use operations::Operation;
pub use state::{Peer, SecurityGroup, SgRule, State};

use std::sync::Arc;

use store::Store;
use wire::query::QueryParams;

/// The SigV4 signing name (credential scope service) of EC2.
pub const SIGNING_NAME: &str = "ec2";

/// Where the network interfaces other services made come from (ECS's task ENIs): the
/// binary implements it over ECS.
#[async_trait::async_trait]
pub trait Interfaces: Send + Sync {
    /// Every interface in use in this region, as it stands.
    async fn list(&self) -> Result<Vec<NetworkInterface>, String>;
}

/// Who else holds security groups (load balancers, container instances): DeleteSecurityGroup
/// refuses a group any of them still names. The binary implements it over ELBv2 and ECS.
#[async_trait::async_trait]
pub trait GroupUsers: Send + Sync {
    /// The group ids each user holds, as they stand.
    async fn groups_in_use(&self) -> Result<Vec<Vec<String>>, String>;
}

/// What serves the EC2 actions this crate does not (launch templates live with auto
/// scaling): given the action, the parameters and the request id, `Some` answer (the
/// response document, or an error) or `None` when it does not serve the action either.
#[async_trait::async_trait]
pub trait Fallback: Send + Sync {
    /// Serves `action`, or `None`.
    async fn serve(
        &self,
        action: &str,
        params: &QueryParams,
        caller_arn: &str,
        request_id: &str,
    ) -> Option<Result<Vec<u8>, wire::AwsError>>;
}

/// The EC2 networking service of one (account, region).
#[derive(Clone)]
pub struct Ec2 {
    store: Arc<dyn Store>,
    region: String,
    account: String,
    interfaces: Option<Arc<dyn Interfaces>>,
    users: Option<Arc<dyn GroupUsers>>,
    fallback: Option<Arc<dyn Fallback>>,
    changes: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Ec2 {
    /// EC2 for `account` in `region`, over the region's `store`.
    pub fn new(store: Arc<dyn Store>, region: &str, account: &str) -> Self {
        Self {
            store,
            region: region.to_owned(),
            account: account.to_owned(),
            interfaces: None,
            users: None,
            fallback: None,
            changes: Arc::new(tokio::sync::watch::channel(0).0),
        }
    }

    /// Reads network interfaces from `source`.
    pub fn set_interfaces(&mut self, source: Arc<dyn Interfaces>) {
        self.interfaces = Some(source);
    }

    /// Asks `users` which groups load balancers and instances hold.
    pub fn set_group_users(&mut self, users: Arc<dyn GroupUsers>) {
        self.users = Some(users);
    }

    /// Sends the actions this crate does not serve to `fallback`.
    #[must_use]
    pub fn with_fallback(mut self, fallback: Arc<dyn Fallback>) -> Self {
        self.fallback = Some(fallback);
        self
    }

    /// The region.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The account.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// A receiver that sees a new value after every committed change to groups, rules or
    /// subnets (the packet filter waits on it).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The state as it stands (the defaults created on first access).
    pub async fn snapshot(&self) -> Result<State, Ec2Error> {
        state::load(self.store.as_ref(), &self.region, &self.account).await
    }

    /// Commits `change` to the state and tells subscribers.
    async fn update<T>(
        &self,
        change: impl FnMut(&mut State) -> Result<T, Ec2Error>,
    ) -> Result<(State, T), Ec2Error> {
        let out = state::update(self.store.as_ref(), &self.region, &self.account, change).await?;
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        Ok(out)
    }

    /// The interfaces in use, from the source the binary set (none without one).
    async fn list_interfaces(&self) -> Result<Vec<NetworkInterface>, Ec2Error> {
        match &self.interfaces {
            None => Ok(Vec::new()),
            Some(source) => source.list().await.map_err(Ec2Error::Internal),
        }
    }
    /// The groups load balancers and instances hold (none without a source).
    async fn groups_in_use(&self) -> Result<Vec<Vec<String>>, Ec2Error> {
        match &self.users {
            None => Ok(Vec::new()),
            Some(source) => source.groups_in_use().await.map_err(Ec2Error::Internal),
        }
    }
}

#[cfg(test)]
mod tests;
