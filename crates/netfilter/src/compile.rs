//! From interfaces and security groups to the text of one nftables table (pure).
//!
//! Layout of the table:
//! - one set `sg_<id>` per group named as a peer, holding the current addresses of
//!   every interface that carries it (a group reference matches its members' private
//!   addresses, never imports their rules);
//! - two verdict maps, `egress` and `ingress`, from an interface's address to the chains
//!   of its set of groups;
//! - per distinct set of groups carried by an interface (not per interface: the tasks of
//!   a service share their groups, so a thousand interfaces may need ten chains),
//!   `out_<groups>` (egress: allow rules `return`, the last rule drops) and
//!   `in_<groups>` (ingress: allow rules `accept`, the last rule drops), holding the
//!   union of the rules of all the set's groups, since AWS unions them unordered; the
//!   name ends with a hash of the rules. An interface that comes or goes with a set
//!   already present is then only map and set elements, and a rule added to a group
//!   makes new chains for the sets holding it, which their members' map elements are
//!   pointed at;
//! - per guarded listener (a load balancer port whose load balancer has groups),
//!   `lb_<port>` with the union of the load balancer's groups' ingress rules (allow
//!   rules `accept`, the last rule drops);
//! - per group named as a peer and carried by a guarded load balancer, a set `sgm_<id>`
//!   of that load balancer's socket marks: the load balancer's own connections to its
//!   targets (it marks them), which a target's rule naming the group admits;
//! - per guarded container instance, `host_<id>` with the union of its groups' ingress
//!   rules, which new connections to its tasks' published host ports go through: in
//!   `input` (loopback clients, and Docker's userland proxy) and in `forward` (Docker's
//!   DNAT to the container: matched on the connection's original destination port);
//! - two base chains (`forward`, `input`) that pass established flows and send the rest
//!   through the maps; `input` also sends new connections to a guarded listener's
//!   address and port through its chain (loopback clients included: packets on `lo`
//!   traverse `input` too);
//! - when a guarded load balancer exists, an `output` chain that sends its marked
//!   connections to an interface through that interface's ingress chain. Other traffic
//!   the host opens to a task (a load balancer without groups, an operator's curl) is
//!   not filtered.

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
    /// The guarded load balancer listeners.
    pub listeners: Vec<Listener>,
    /// The guarded container instances (their published host ports).
    pub hosts: Vec<HostPorts>,
}

/// A container instance on this host with security groups: new connections to the host
/// ports its bridge and host tasks publish are admitted by its groups' ingress rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPorts {
    /// A stable id for its chain (the container instance id).
    pub id: String,
    /// Its groups.
    pub groups: Vec<String>,
    /// Published TCP host ports.
    pub tcp: Vec<u16>,
    /// Published UDP host ports.
    pub udp: Vec<u16>,
}

/// One load balancer listener whose load balancer carries security groups: new
/// connections to it are admitted by its groups' ingress rules only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    /// The address it binds; `None` (bound on every address) matches any destination.
    pub address: Option<Ipv4Addr>,
    /// Its TCP port.
    pub port: u16,
    /// Its load balancer's groups.
    pub groups: Vec<String>,
    /// The socket marks of the load balancer's connections to its targets: a target
    /// whose rule names one of `groups` as the source admits traffic with these marks.
    pub marks: Vec<u32>,
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
    let cx = Context {
        rs,
        marks: compute_marks(rs),
    };
    for (group, marks) in &cx.marks {
        let list: Vec<String> = marks.iter().map(|m| format!("{m:#010x}")).collect();
        let _ = write!(
            out,
            "\tset {} {{\n\t\ttype mark\n\t\telements = {{ {} }}\n\t}}\n",
            mark_set_name(group),
            list.join(", ")
        );
    }
    let all_marks: BTreeSet<u32> = listeners(rs)
        .flat_map(|l| l.marks.iter().copied())
        .collect();
    if !all_marks.is_empty() {
        let list: Vec<String> = all_marks.iter().map(|m| format!("{m:#010x}")).collect();
        let _ = write!(
            out,
            "\tset lb_marks {{\n\t\ttype mark\n\t\telements = {{ {} }}\n\t}}\n",
            list.join(", ")
        );
    }
    // Each set's chains, egress then ingress, named before the maps that jump to them.
    let chains: BTreeMap<Vec<String>, [(String, String); 2]> = group_sets(rs)
        .into_iter()
        .map(|groups| {
            let pair = [
                set_chain_text(&cx, &groups, Direction::Egress),
                set_chain_text(&cx, &groups, Direction::Ingress),
            ];
            (groups, pair)
        })
        .collect();
    for (map, side) in [("egress", 0), ("ingress", 1)] {
        let _ = write!(out, "\tmap {map} {{\n\t\ttype ipv4_addr : verdict\n");
        let elements: Vec<String> = interfaces(rs)
            .filter_map(|i| {
                let name = &chains.get(&canonical(&i.groups))?[side].0;
                Some(format!("{} : jump {name}", i.address))
            })
            .collect();
        if !elements.is_empty() {
            let _ = writeln!(out, "\t\telements = {{ {} }}", elements.join(", "));
        }
        out.push_str("\t}\n");
    }
    for pair in chains.values() {
        for (name, body) in pair {
            let _ = write!(out, "\tchain {name} {{\n{body}\t}}\n");
        }
    }
    let listeners: Vec<&Listener> = listeners(rs).collect();
    for l in &listeners {
        let _ = writeln!(out, "\tchain lb_{} {{", l.port);
        write_rules(&mut out, &cx, &l.groups, Direction::Ingress);
        out.push_str("\t\tdrop\n\t}\n");
    }
    for h in hosts(rs) {
        let _ = writeln!(out, "\tchain {} {{", chain_name("host", &h.id));
        write_rules(&mut out, &cx, &h.groups, Direction::Ingress);
        out.push_str("\t\tdrop\n\t}\n");
    }
    let mut host_input = Vec::new();
    let mut host_forward = Vec::new();
    for h in hosts(rs) {
        let chain = chain_name("host", &h.id);
        for (proto, ports) in [("tcp", &h.tcp), ("udp", &h.udp)] {
            if ports.is_empty() {
                continue;
            }
            let list = port_set(ports);
            host_input.push(format!("{proto} dport {list} jump {chain}"));
            host_forward.push(format!(
                "meta l4proto {proto} ct status dnat ct original proto-dst {list} jump {chain}"
            ));
        }
    }
    let guards: Vec<String> = listeners
        .iter()
        .map(|l| match l.address {
            Some(a) => format!("ip daddr {a} tcp dport {} jump lb_{}", l.port, l.port),
            None => format!("tcp dport {} jump lb_{}", l.port, l.port),
        })
        .collect();
    let forward: Vec<String> = [
        "ip saddr vmap @egress".to_owned(),
        "ip daddr vmap @ingress".to_owned(),
    ]
    .into_iter()
    .chain(host_forward)
    .collect();
    let input: Vec<String> = std::iter::once("ip saddr vmap @egress".to_owned())
        .chain(guards)
        .chain(host_input)
        .collect();
    let output: Vec<String> = if all_marks.is_empty() {
        Vec::new()
    } else {
        vec!["meta mark @lb_marks ip daddr vmap @ingress".to_owned()]
    };
    let hooks = [
        ("forward", &forward[..]),
        ("input", &input[..]),
        ("output", &output[..]),
    ];
    for (hook, lines) in hooks.into_iter().filter(|(_, l)| !l.is_empty()) {
        let _ = write!(
            out,
            "\tchain {hook} {{\n\t\ttype filter hook {hook} priority filter; policy accept;\n\t\tct state established,related accept\n"
        );
        for m in lines {
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
    if interfaces(rs).next().is_some() || !rs.listeners.is_empty() || hosts(rs).next().is_some() {
        out.push_str(&compile(rs));
    }
    out
}

/// What every chain's rules are written from: the rule set and, computed once, the
/// marks of the load balancers carrying each group.
struct Context<'a> {
    rs: &'a Ruleset,
    marks: BTreeMap<String, BTreeSet<u32>>,
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

/// The guarded instances that publish a port, each id once.
fn hosts(rs: &Ruleset) -> impl Iterator<Item = &HostPorts> {
    let mut seen = BTreeSet::new();
    rs.hosts
        .iter()
        .filter(|h| !h.tcp.is_empty() || !h.udp.is_empty())
        .filter(move |h| seen.insert(h.id.clone()))
}

/// `{ 32768, 32769 }`: ports sorted, each once.
fn port_set(ports: &[u16]) -> String {
    let set: BTreeSet<u16> = ports.iter().copied().collect();
    let list: Vec<String> = set.iter().map(u16::to_string).collect();
    format!("{{ {} }}", list.join(", "))
}

/// The listeners, each port once (the first wins: one port has one listener, and a
/// duplicate chain would fail the whole batch).
fn listeners(rs: &Ruleset) -> impl Iterator<Item = &Listener> {
    let mut seen = BTreeSet::new();
    rs.listeners.iter().filter(move |l| seen.insert(l.port))
}

/// The addresses of each group named as a peer by a rule of an enforced interface's or
/// a guarded listener's groups.
fn compute_members(rs: &Ruleset) -> BTreeMap<String, BTreeSet<Ipv4Addr>> {
    let mut members: BTreeMap<String, BTreeSet<Ipv4Addr>> = BTreeMap::new();
    let carriers = interfaces(rs)
        .map(|i| &i.groups)
        .chain(listeners(rs).map(|l| &l.groups))
        .chain(rs.hosts.iter().map(|h| &h.groups));
    for groups in carriers {
        for g in groups.iter().filter_map(|id| rs.groups.get(id)) {
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

/// The socket marks of the load balancers carrying each group that some rule names as
/// a peer (groups no guarded load balancer carries are absent).
fn compute_marks(rs: &Ruleset) -> BTreeMap<String, BTreeSet<u32>> {
    let named = compute_members(rs);
    let mut marks: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    for l in listeners(rs).filter(|l| !l.marks.is_empty()) {
        for g in l.groups.iter().filter(|g| named.contains_key(*g)) {
            marks.entry(g.clone()).or_default().extend(&l.marks);
        }
    }
    marks
}

/// The distinct sets of groups the interfaces carry, each sorted and without repeats.
fn group_sets(rs: &Ruleset) -> BTreeSet<Vec<String>> {
    interfaces(rs).map(|i| canonical(&i.groups)).collect()
}

/// A set of groups in one spelling: sorted, each once (AWS unions a set's rules
/// unordered, so two interfaces listing the same groups in another order share chains).
fn canonical(groups: &[String]) -> Vec<String> {
    let set: BTreeSet<&String> = groups.iter().collect();
    set.into_iter().cloned().collect()
}

/// A set of groups' chain in direction `dir`: its name and its rule lines. The name is
/// the set's ([`set_chain`]) and a hash of the rules: a rule change makes a new chain
/// that the maps' elements are pointed at, and the old one is deleted afterwards, so
/// the change itself deletes no rule (a transaction deleting any rule took 10–25 ms on
/// the development VM, more than a change may take).
fn set_chain_text(cx: &Context<'_>, groups: &[String], dir: Direction) -> (String, String) {
    let prefix = match dir {
        Direction::Egress => "out",
        Direction::Ingress => "in",
    };
    let mut body = String::new();
    if dir == Direction::Egress {
        let _ = writeln!(body, "\t\tip daddr {ALWAYS_EGRESS} return");
    }
    write_rules(&mut body, cx, groups, dir);
    body.push_str("\t\tdrop\n");
    let name = format!(
        "{}_{:012x}",
        set_chain(prefix, groups),
        fnv1a(&body) & 0xffff_ffff_ffff
    );
    (name, body)
}

/// 64-bit FNV-1a: a stable hash (the same from one run to the next, unlike std's).
fn fnv1a(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The union of `groups`' rules in direction `dir`, each line once.
fn write_rules(out: &mut String, cx: &Context<'_>, groups: &[String], dir: Direction) {
    let (rs, marks) = (cx.rs, &cx.marks);
    let (field, verdict) = match dir {
        Direction::Egress => ("daddr", "return"),
        Direction::Ingress => ("saddr", "accept"),
    };
    let mut written = BTreeSet::new();
    for g in groups.iter().filter_map(|id| rs.groups.get(id)) {
        let rules = match dir {
            Direction::Egress => &g.egress,
            Direction::Ingress => &g.ingress,
        };
        for rule in rules {
            let mut lines = vec![compute_rule(rule, field, verdict)];
            // A source group a load balancer carries also matches that load balancer's
            // marked connections (its source address is the host's, in no set).
            if let (Direction::Ingress, Peer::Group(id)) = (dir, &rule.peer) {
                if marks.contains_key(id) {
                    let by_mark = Rule {
                        protocol: rule.protocol,
                        peer: Peer::Cidr(Ipv4Addr::UNSPECIFIED, 0),
                    };
                    let line = compute_rule(&by_mark, field, verdict);
                    lines.push(format!("meta mark @{} {line}", mark_set_name(id)));
                }
            }
            for line in lines {
                // Two groups often share a rule (both allow all egress): write it once.
                if written.insert(line.clone()) {
                    let _ = writeln!(out, "\t\t{line}");
                }
            }
        }
    }
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

/// `sgm_0123abcd` for `sg-0123abcd`: the set of load balancer marks.
fn mark_set_name(group: &str) -> String {
    format!(
        "sgm_{}",
        sanitize(group.strip_prefix("sg-").unwrap_or(group))
    )
}

/// `host_0123` for instance `0123`.
fn chain_name(prefix: &str, id: &str) -> String {
    format!("{prefix}_{}", sanitize(id))
}

/// The name stem of a set of groups' chains: `in_sg_0a_sg_0b` for `sg-0a` and `sg-0b`,
/// readable in `nft list`; a set whose name would pass nft's 256-byte limit for chain
/// names is named by a 64-bit FNV-1a hash of its ids instead (`in_h0123456789abcdef`),
/// stable from one run to the next as the incremental changes need.
pub(crate) fn set_chain(prefix: &str, groups: &[String]) -> String {
    let groups = canonical(groups);
    let name = format!("{prefix}_{}", sanitize(&groups.join("_")));
    if name.len() <= 200 {
        return name;
    }
    format!("{prefix}_h{:016x}", fnv1a(&groups.join(",")))
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
