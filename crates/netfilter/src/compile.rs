//! From interfaces and security groups to the text of one nftables table (pure).
//!
//! Layout of the table:
//! - one set `sg_<id>` per group named as a peer, holding the current addresses of
//!   every interface that carries it (a group reference matches its members' private
//!   addresses, never imports their rules);
//! - two verdict maps, `egress` and `ingress`, from an interface's address to its chain;
//! - per interface, `out_<eni>` (egress: allow rules `return`, the last rule drops) and
//!   `in_<eni>` (ingress: allow rules `accept`, the last rule drops), holding the union of
//!   the rules of all its groups, since AWS unions them unordered;
//! - two base chains (`forward`, `input`) that pass established flows and send the rest
//!   through the maps. Traffic the host itself opens to a task (the load balancer's data
//!   plane, its health checks, an operator's curl) is not filtered: no `output` chain,
//!   since load balancer security groups are not modelled yet and the host stands in
//!   for them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::TABLE;

/// Everything the filter enforces: the interfaces and the groups they name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// The enforced interfaces.
    pub interfaces: Vec<Interface>,
    /// Groups by id (`sg-…`). A group an interface names but this map lacks grants
    /// nothing (no rule, no traffic).
    pub groups: BTreeMap<String, Group>,
}

/// One network interface (a task's ENI).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// `eni-…`.
    pub id: String,
    /// Its private IPv4 address.
    pub address: Ipv4Addr,
    /// The ids of its security groups.
    pub groups: Vec<String>,
}

/// One security group's rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Group {
    /// What may reach its members.
    pub ingress: Vec<Rule>,
    /// Where its members may send.
    pub egress: Vec<Rule>,
}

/// One allow rule: a protocol (with ports or ICMP type) and one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// What traffic.
    pub protocol: Protocol,
    /// From (ingress) or to (egress) whom.
    pub peer: Peer,
}

/// The traffic a rule admits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Every protocol (`-1`).
    All,
    /// TCP to destination ports `from..=to`.
    Tcp {
        /// First port.
        from: u16,
        /// Last port.
        to: u16,
    },
    /// UDP to destination ports `from..=to`.
    Udp {
        /// First port.
        from: u16,
        /// Last port.
        to: u16,
    },
    /// ICMP, of one type (`None`: all) and code (`None`: all).
    Icmp {
        /// The ICMP type.
        icmp_type: Option<u8>,
        /// The ICMP code.
        code: Option<u8>,
    },
    /// Another IP protocol by number, every packet of it.
    Number(u8),
}

/// The other end of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// An IPv4 block (canonical: host bits zero).
    Cidr(Ipv4Addr, u8),
    /// The members of a security group, by id.
    Group(String),
}

/// Traffic a task may always send, whatever its egress rules: the link-local block,
/// where the agent's task metadata and credentials endpoints answer (AWS does not filter
/// the instance metadata service with security groups either).
const ALWAYS_EGRESS: &str = "169.254.0.0/16";

/// The table as nft text (`table inet stevedore { … }`).
pub fn compile(rs: &Ruleset) -> String {
    let mut out = String::with_capacity(256 + rs.interfaces.len() * 256);
    let _ = writeln!(out, "table inet {TABLE} {{");
    for (group, members) in compute_members(rs) {
        let _ = write!(out, "\tset {} {{\n\t\ttype ipv4_addr\n", set_name(&group));
        if !members.is_empty() {
            let list: Vec<String> = members.iter().map(Ipv4Addr::to_string).collect();
            let _ = writeln!(out, "\t\telements = {{ {} }}", list.join(", "));
        }
        out.push_str("\t}\n");
    }
    for (map, prefix) in [("egress", "out"), ("ingress", "in")] {
        let _ = write!(out, "\tmap {map} {{\n\t\ttype ipv4_addr : verdict\n");
        let elements: Vec<String> = interfaces(rs)
            .map(|i| format!("{} : jump {}", i.address, chain_name(prefix, &i.id)))
            .collect();
        if !elements.is_empty() {
            let _ = writeln!(out, "\t\telements = {{ {} }}", elements.join(", "));
        }
        out.push_str("\t}\n");
    }
    for i in interfaces(rs) {
        write_chain(&mut out, rs, i, Direction::Egress);
        write_chain(&mut out, rs, i, Direction::Ingress);
    }
    for (hook, maps) in [
        (
            "forward",
            &["ip saddr vmap @egress", "ip daddr vmap @ingress"][..],
        ),
        ("input", &["ip saddr vmap @egress"][..]),
    ] {
        let _ = write!(
            out,
            "\tchain {hook} {{\n\t\ttype filter hook {hook} priority filter; policy accept;\n\t\tct state established,related accept\n"
        );
        for m in maps {
            let _ = writeln!(out, "\t\t{m}");
        }
        out.push_str("\t}\n");
    }
    out.push_str("}\n");
    out
}

/// The `nft -f` script that makes the table exactly [`compile`]'s, in one transaction:
/// the table is declared (so the delete cannot fail), deleted, and written anew. With no
/// interface to enforce, the table is only removed: Stevedore leaves nothing behind.
pub fn compile_script(rs: &Ruleset) -> String {
    let mut out = format!("table inet {TABLE} {{}}\ndelete table inet {TABLE}\n");
    if interfaces(rs).next().is_some() {
        out.push_str(&compile(rs));
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Egress,
    Ingress,
}

/// The interfaces, each address once (the first wins: two interfaces cannot share an
/// address on one host, and a map with a duplicate key would fail the whole batch).
fn interfaces(rs: &Ruleset) -> impl Iterator<Item = &Interface> {
    let mut seen = BTreeSet::new();
    rs.interfaces.iter().filter(move |i| seen.insert(i.address))
}

/// The addresses of each group named as a peer by a rule of an enforced interface's
/// groups.
fn compute_members(rs: &Ruleset) -> BTreeMap<String, BTreeSet<Ipv4Addr>> {
    let mut members: BTreeMap<String, BTreeSet<Ipv4Addr>> = BTreeMap::new();
    for i in interfaces(rs) {
        for g in i.groups.iter().filter_map(|id| rs.groups.get(id)) {
            for rule in g.ingress.iter().chain(&g.egress) {
                if let Peer::Group(peer) = &rule.peer {
                    members.entry(peer.clone()).or_default();
                }
            }
        }
    }
    for i in interfaces(rs) {
        for id in &i.groups {
            if let Some(set) = members.get_mut(id) {
                set.insert(i.address);
            }
        }
    }
    members
}

fn write_chain(out: &mut String, rs: &Ruleset, i: &Interface, dir: Direction) {
    let (prefix, field, verdict) = match dir {
        Direction::Egress => ("out", "daddr", "return"),
        Direction::Ingress => ("in", "saddr", "accept"),
    };
    let _ = writeln!(out, "\tchain {} {{", chain_name(prefix, &i.id));
    if dir == Direction::Egress {
        let _ = writeln!(out, "\t\tip daddr {ALWAYS_EGRESS} return");
    }
    let mut written = BTreeSet::new();
    for g in i.groups.iter().filter_map(|id| rs.groups.get(id)) {
        let rules = match dir {
            Direction::Egress => &g.egress,
            Direction::Ingress => &g.ingress,
        };
        for rule in rules {
            let line = compute_rule(rule, field, verdict);
            // Two groups often share a rule (both allow all egress): write it once.
            if written.insert(line.clone()) {
                let _ = writeln!(out, "\t\t{line}");
            }
        }
    }
    out.push_str("\t\tdrop\n\t}\n");
}

/// One rule as an nft statement: the peer match, the protocol match, the verdict.
fn compute_rule(rule: &Rule, field: &str, verdict: &str) -> String {
    let mut parts = Vec::with_capacity(4);
    match &rule.peer {
        Peer::Cidr(_, 0) => {}
        Peer::Cidr(addr, len) => parts.push(format!("ip {field} {addr}/{len}")),
        Peer::Group(id) => parts.push(format!("ip {field} @{}", set_name(id))),
    }
    match rule.protocol {
        Protocol::All => {}
        Protocol::Tcp { from, to } => parts.push(port_match("tcp", from, to)),
        Protocol::Udp { from, to } => parts.push(port_match("udp", from, to)),
        Protocol::Icmp { icmp_type, code } => match (icmp_type, code) {
            (None, _) => parts.push("meta l4proto icmp".into()),
            (Some(t), None) => parts.push(format!("icmp type {t}")),
            (Some(t), Some(c)) => parts.push(format!("icmp type {t} icmp code {c}")),
        },
        Protocol::Number(n) => parts.push(format!("meta l4proto {n}")),
    }
    parts.push(verdict.to_owned());
    parts.join(" ")
}

fn port_match(proto: &str, from: u16, to: u16) -> String {
    match (from, to) {
        (0, 65535) => format!("meta l4proto {proto}"),
        (f, t) if f == t => format!("{proto} dport {f}"),
        (f, t) => format!("{proto} dport {f}-{t}"),
    }
}

/// `sg_0123abcd` for `sg-0123abcd`: nft identifiers take no `-`.
fn set_name(group: &str) -> String {
    sanitize(group)
}

/// `in_eni_0123` for `eni-0123`.
fn chain_name(prefix: &str, eni: &str) -> String {
    format!("{prefix}_{}", sanitize(eni))
}

/// Letters, digits and `_` only.
fn sanitize(id: &str) -> String {
    id.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

#[cfg(test)]
#[path = "compile_tests.rs"]
mod tests;
