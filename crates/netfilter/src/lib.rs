//! `netfilter` owns security-group enforcement on a Linux host: the pure compilation of
//! network interfaces (an address and its groups) and the groups' rules into one
//! nftables table ([`compile`]), and applying that table with the `nft` tool or its
//! changes over netlink ([`apply`]). It knows nothing of EC2's API or of ECS: the binary hands it plain
//! [`Ruleset`]s.
//!
//! The table is Stevedore's own, `inet stevedore` ([`TABLE`]); nothing here reads or
//! writes any other table. A rebuild replaces the whole table in one `nft -f` batch
//! (create, delete, recreate: one kernel transaction), so stale rules cannot survive
//! it; a change to a table already written is the smaller batch of what differs
//! ([`compile_change`]), also one transaction, so a change never shows a half-written
//! rule set. Change batches of elements, regular chains and group rules go to the kernel
//! over netlink ([`apply_batch`]) instead of through `nft`, whose start alone costs
//! more than a change may take.
//!
//! How traffic is matched (the host has `br_netfilter`: bridged IPv4 frames traverse
//! the `inet` hooks, with conntrack):
//! - `forward`: task to task (same bridge or routed) and task to the outside;
//! - `input`: a task to the host itself.
//!
//! - `input` also guards load balancer listeners: a new connection to a listener whose
//!   load balancer has groups must be admitted by their ingress rules.
//!
//! What the host itself opens to a task (the load balancer, health checks) is not
//! filtered yet.
//!
//! In each hook, established and related flows pass (groups are stateful), then the
//! sender's egress chain runs (its allow rules `return`, anything else is dropped), then
//! the receiver's ingress chain (allow rules `accept`, anything else dropped). Traffic
//! between addresses that are no interface of the rule set is not touched.

mod apply;
mod change;
mod compile;
mod netlink;

pub use apply::{apply, probe, ApplyError};
pub use change::{compile_change, compile_change_parts, compile_update, compile_update_parts};
pub use compile::{
    compile, compile_script, Group, HostPorts, Interface, Listener, Peer, Protocol, Rule, Ruleset,
};
pub use netlink::{
    apply_batch, apply_elements, parse_batch, parse_elements, Element, Expr, NetlinkError,
    SetChange, Statement,
};

/// The nftables table Stevedore creates, owns and removes (family `inet`).
pub const TABLE: &str = "stevedore";
