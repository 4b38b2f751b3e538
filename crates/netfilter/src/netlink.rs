//! Change batches spoken to the kernel over netlink (`NETLINK_NETFILTER`), without the
//! `nft` program: a change (a task comes or goes, so its address enters or leaves a
//! group's set and the two verdict maps; a rule is added to a group, so the chains of
//! the sets of groups holding it are rewritten) then costs one socket round trip, about
//! a millisecond, where running `nft` costs its start and a read-back of the table
//! (20–60 ms on a loaded host), more than the 20 ms a change may take.
//!
//! What goes this way: set and map elements, regular chains added, flushed and
//! deleted, and rules of the shapes [`compile`](crate::compile) writes into group,
//! listener and instance chains. Anything else (a table, a set, a base chain, a rule of
//! another shape) makes the whole batch go to `nft -f`. Hand-written rather than
//! through a crate: `rustables` is GPL-3.0 (this project is Apache-2.0) and `nftnl`
//! binds the C libraries libnftnl and libmnl (a system dependency for a handful of
//! message types). The messages are those of `linux/netfilter/nf_tables.h`, and rules
//! are the expressions `nft` itself emits for the same text (in an `inet` table, an
//! `ip` match depends on `meta nfproto ipv4`, a port match on `meta l4proto`), so
//! `nft list` shows them alike; one batch (`NFNL_MSG_BATCH_BEGIN` … `END`) is one
//! kernel transaction, all or nothing like `nft -f`, each message acknowledged.
//!
//! [`parse_batch`] is pure: it reads back the statements
//! [`compile_change`](crate::compile_change) writes.

use std::io::Read as _;
use std::net::Ipv4Addr;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// One element statement: `add`/`delete element inet <table> <set> { … }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetChange {
    /// Add (true) or delete.
    pub add: bool,
    /// The table (family `inet`).
    pub table: String,
    /// The set or map.
    pub set: String,
    /// Its elements.
    pub elements: Vec<Element>,
}

/// One element as this crate's tables hold them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Element {
    /// An address of an `ipv4_addr` set, or a key alone (a map element to delete).
    Address(Ipv4Addr),
    /// A socket mark of a `mark` set.
    Mark(u32),
    /// A verdict map element: the address jumps to the chain.
    Jump(Ipv4Addr, String),
}

/// One statement of a change batch that netlink can carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Statement {
    /// Set or map elements added or deleted.
    Elements(SetChange),
    /// `add chain inet <table> <chain>` (a regular chain, no hook).
    AddChain(String, String),
    /// `flush chain inet <table> <chain>`.
    FlushChain(String, String),
    /// `delete chain inet <table> <chain>`.
    DeleteChain(String, String),
    /// `add rule inet <table> <chain> …`, as expressions.
    AddRule(String, String, Vec<Expr>),
}

/// One nftables expression of a rule (register 1 throughout, verdicts to register 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// Load a meta key.
    Meta(u32),
    /// Compare the register with a value.
    CmpEq(Vec<u8>),
    /// Load `len` bytes at `offset` from the network (1) or transport (2) header.
    Payload(u32, u32, u32),
    /// Mask the register (`len` bytes).
    Mask(Vec<u8>),
    /// The register is in the named set.
    Lookup(String),
    /// The register lies in `from..=to`.
    Range(Vec<u8>, Vec<u8>),
    /// A verdict.
    Verdict(i32),
}

/// The statements of `batch` when netlink can carry every one, else `None` (the batch
/// needs `nft`).
pub fn parse_batch(batch: &str) -> Option<Vec<Statement>> {
    batch.lines().map(parse_statement).collect()
}

fn parse_statement(line: &str) -> Option<Statement> {
    let words: Vec<&str> = line.split(' ').collect();
    match words.as_slice() {
        ["add" | "delete", "element", ..] => parse_set_change(line).map(Statement::Elements),
        ["add", "chain", "inet", table, chain] => {
            Some(Statement::AddChain((*table).into(), (*chain).into()))
        }
        ["flush", "chain", "inet", table, chain] => {
            Some(Statement::FlushChain((*table).into(), (*chain).into()))
        }
        ["delete", "chain", "inet", table, chain] => {
            Some(Statement::DeleteChain((*table).into(), (*chain).into()))
        }
        ["add", "rule", "inet", table, chain, rule @ ..] => Some(Statement::AddRule(
            (*table).into(),
            (*chain).into(),
            parse_rule(rule)?,
        )),
        _ => None,
    }
}

const META_MARK: u32 = 3;
const META_NFPROTO: u32 = 15;
const META_L4PROTO: u32 = 16;
const NETWORK: u32 = 1;
const TRANSPORT: u32 = 2;
const NF_DROP: i32 = 0;
const NF_ACCEPT: i32 = 1;
const NFT_RETURN: i32 = -5;

/// A rule of the shapes compiled into group, listener and instance chains, as the
/// expressions nft emits for it; `None` for any other shape.
fn parse_rule(words: &[&str]) -> Option<Vec<Expr>> {
    let mut out = Vec::new();
    let mut ipv4 = false;
    let mut l4: Option<u8> = None;
    let mut rest = words;
    let mut need_l4 = |out: &mut Vec<Expr>, proto: u8| -> Option<()> {
        match l4 {
            Some(p) if p == proto => Some(()),
            Some(_) => None,
            None => {
                l4 = Some(proto);
                out.push(Expr::Meta(META_L4PROTO));
                out.push(Expr::CmpEq(vec![proto]));
                Some(())
            }
        }
    };
    loop {
        rest = match rest {
            [] => return None,
            [verdict] => {
                out.push(Expr::Verdict(match *verdict {
                    "accept" => NF_ACCEPT,
                    "drop" => NF_DROP,
                    "return" => NFT_RETURN,
                    _ => return None,
                }));
                return Some(out);
            }
            ["meta", "mark", set, more @ ..] => {
                out.push(Expr::Meta(META_MARK));
                out.push(Expr::Lookup(set.strip_prefix('@')?.into()));
                more
            }
            ["meta", "l4proto", proto, more @ ..] => {
                let n = match *proto {
                    "tcp" => 6,
                    "udp" => 17,
                    "icmp" => 1,
                    n => n.parse().ok()?,
                };
                need_l4(&mut out, n)?;
                more
            }
            ["ip", field @ ("saddr" | "daddr"), value, more @ ..] => {
                if !ipv4 {
                    ipv4 = true;
                    out.push(Expr::Meta(META_NFPROTO));
                    out.push(Expr::CmpEq(vec![2]));
                }
                let offset = if *field == "saddr" { 12 } else { 16 };
                out.push(Expr::Payload(NETWORK, offset, 4));
                if let Some(set) = value.strip_prefix('@') {
                    out.push(Expr::Lookup(set.into()));
                } else {
                    let (addr, len) = value.split_once('/').unwrap_or((value, "32"));
                    let addr: Ipv4Addr = addr.parse().ok()?;
                    let len: u32 = len.parse().ok().filter(|l| (1..=32).contains(l))?;
                    let mask = u32::MAX << (32 - len);
                    if len < 32 {
                        out.push(Expr::Mask(mask.to_be_bytes().to_vec()));
                    }
                    out.push(Expr::CmpEq((u32::from(addr) & mask).to_be_bytes().to_vec()));
                }
                more
            }
            [proto @ ("tcp" | "udp"), "dport", ports, more @ ..] => {
                need_l4(&mut out, if *proto == "tcp" { 6 } else { 17 })?;
                out.push(Expr::Payload(TRANSPORT, 2, 2));
                match ports.split_once('-') {
                    None => out.push(Expr::CmpEq(
                        ports.parse::<u16>().ok()?.to_be_bytes().to_vec(),
                    )),
                    Some((from, to)) => out.push(Expr::Range(
                        from.parse::<u16>().ok()?.to_be_bytes().to_vec(),
                        to.parse::<u16>().ok()?.to_be_bytes().to_vec(),
                    )),
                }
                more
            }
            ["icmp", field @ ("type" | "code"), value, more @ ..] => {
                need_l4(&mut out, 1)?;
                out.push(Expr::Payload(TRANSPORT, u32::from(*field == "code"), 1));
                out.push(Expr::CmpEq(vec![value.parse::<u8>().ok()?]));
                more
            }
            _ => return None,
        };
    }
}

/// The statements of `batch` when every one is an element statement, else `None`.
pub fn parse_elements(batch: &str) -> Option<Vec<SetChange>> {
    batch.lines().map(parse_set_change).collect()
}

fn parse_set_change(line: &str) -> Option<SetChange> {
    let (add, rest) = if let Some(r) = line.strip_prefix("add element inet ") {
        (true, r)
    } else {
        (false, line.strip_prefix("delete element inet ")?)
    };
    let (table, rest) = rest.split_once(' ')?;
    let (set, rest) = rest.split_once(' ')?;
    let list = rest.strip_prefix("{ ")?.strip_suffix(" }")?;
    let elements = list
        .split(", ")
        .map(parse_element)
        .collect::<Option<Vec<_>>>()?;
    Some(SetChange {
        add,
        table: table.to_owned(),
        set: set.to_owned(),
        elements,
    })
}

fn parse_element(text: &str) -> Option<Element> {
    if let Some((key, chain)) = text.split_once(" : jump ") {
        return Some(Element::Jump(key.parse().ok()?, chain.to_owned()));
    }
    if let Some(hex) = text.strip_prefix("0x") {
        return u32::from_str_radix(hex, 16).ok().map(Element::Mark);
    }
    text.parse().ok().map(Element::Address)
}

// linux/netlink.h, linux/netfilter/nfnetlink.h, linux/netfilter/nf_tables.h.
const NETLINK_NETFILTER: i32 = 12;
const AF_NETLINK: i32 = 16;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 0x2;
const NLA_F_NESTED: u16 = 0x8000;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_DELCHAIN: u16 = 5;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_DELRULE: u16 = 8;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;
const NFPROTO_INET: u8 = 1;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;
const NFT_JUMP: i32 = -3;
const NLM_F_APPEND: u16 = 0x800;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFT_REG_VERDICT: u32 = 0;
const NFT_REG_1: u32 = 1;
const NFT_CMP_EQ: u32 = 0;
const NFT_RANGE_EQ: u32 = 0;

/// Elements per message: keeps each message far below a page multiple the kernel
/// handles comfortably; a batch holds as many messages as needed.
const PER_MESSAGE: usize = 128;
/// A batch larger than this goes to `nft` instead (the socket's send buffer bounds one
/// netlink write; element changes of one round are far smaller).
pub(crate) const MAX_BATCH: usize = 128 * 1024;
/// How long to wait for the kernel's answers.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// Why a netlink batch failed.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The socket could not be opened, written or read.
    #[error("netlink socket: {0}")]
    Io(#[from] std::io::Error),
    /// The kernel refused a message (the whole batch was rolled back).
    #[error("the kernel refused the batch: {0}")]
    Refused(std::io::Error),
    /// Not every message was answered in time.
    #[error("the kernel did not answer the batch")]
    NoAnswer,
    /// The batch is larger than one write.
    #[error("the batch is too large for one netlink write")]
    TooLarge,
}

/// The bytes of one batch: begin, the statements' messages (a set change as one message
/// per [`PER_MESSAGE`] elements), end. Returns them and the number of messages that ask
/// for an acknowledgement.
pub fn encode(statements: &[Statement], seq: u32) -> (Vec<u8>, u32) {
    let mut out = Vec::with_capacity(256 + statements.len() * 256);
    let mut n = seq;
    batch_marker(&mut out, NFNL_MSG_BATCH_BEGIN, n);
    let mut acked = 0;
    let mut message = |out: &mut Vec<u8>, kind: u16, flags: u16| {
        n = n.wrapping_add(1);
        acked += 1;
        begin_message(
            out,
            (NFNL_SUBSYS_NFTABLES << 8) | kind,
            NLM_F_REQUEST | NLM_F_ACK | flags,
            n,
            NFPROTO_INET,
        )
    };
    for statement in statements {
        match statement {
            Statement::Elements(change) => {
                for chunk in change.elements.chunks(PER_MESSAGE) {
                    let start = if change.add {
                        message(&mut out, NFT_MSG_NEWSETELEM, NLM_F_CREATE)
                    } else {
                        message(&mut out, NFT_MSG_DELSETELEM, 0)
                    };
                    encode_elements(&mut out, change, chunk);
                    end_message(&mut out, start);
                }
            }
            Statement::AddChain(table, chain) | Statement::DeleteChain(table, chain) => {
                let start = if matches!(statement, Statement::AddChain(..)) {
                    message(&mut out, NFT_MSG_NEWCHAIN, NLM_F_CREATE)
                } else {
                    message(&mut out, NFT_MSG_DELCHAIN, 0)
                };
                attr_str(&mut out, NFTA_CHAIN_TABLE, table);
                attr_str(&mut out, NFTA_CHAIN_NAME, chain);
                end_message(&mut out, start);
            }
            Statement::FlushChain(table, chain) => {
                // DELRULE naming a chain and no rule: every rule of the chain.
                let start = message(&mut out, NFT_MSG_DELRULE, 0);
                attr_str(&mut out, NFTA_RULE_TABLE, table);
                attr_str(&mut out, NFTA_RULE_CHAIN, chain);
                end_message(&mut out, start);
            }
            Statement::AddRule(table, chain, exprs) => {
                let start = message(&mut out, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
                attr_str(&mut out, NFTA_RULE_TABLE, table);
                attr_str(&mut out, NFTA_RULE_CHAIN, chain);
                let list = nest_start(&mut out, NFTA_RULE_EXPRESSIONS);
                for e in exprs {
                    encode_expr(&mut out, e);
                }
                nest_end(&mut out, list);
                end_message(&mut out, start);
            }
        }
    }
    batch_marker(&mut out, NFNL_MSG_BATCH_END, n.wrapping_add(1));
    (out, acked)
}

fn encode_elements(out: &mut Vec<u8>, change: &SetChange, chunk: &[Element]) {
    attr_str(out, NFTA_SET_ELEM_LIST_TABLE, &change.table);
    attr_str(out, NFTA_SET_ELEM_LIST_SET, &change.set);
    let list = nest_start(out, NFTA_SET_ELEM_LIST_ELEMENTS);
    for e in chunk {
        let item = nest_start(out, NFTA_LIST_ELEM);
        let key = nest_start(out, NFTA_SET_ELEM_KEY);
        match e {
            Element::Address(a) | Element::Jump(a, _) => {
                attr(out, NFTA_DATA_VALUE, &a.octets());
            }
            // nft's `mark` type is a host-order integer.
            Element::Mark(m) => attr(out, NFTA_DATA_VALUE, &m.to_ne_bytes()),
        }
        nest_end(out, key);
        if let (Element::Jump(_, chain), true) = (e, change.add) {
            let data = nest_start(out, NFTA_SET_ELEM_DATA);
            encode_verdict(out, NFT_JUMP, Some(chain));
            nest_end(out, data);
        }
        nest_end(out, item);
    }
    nest_end(out, list);
}

fn encode_verdict(out: &mut Vec<u8>, code: i32, chain: Option<&str>) {
    let verdict = nest_start(out, NFTA_DATA_VERDICT);
    attr(out, NFTA_VERDICT_CODE, &code.to_be_bytes());
    if let Some(chain) = chain {
        attr_str(out, NFTA_VERDICT_CHAIN, chain);
    }
    nest_end(out, verdict);
}

fn data(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let at = nest_start(out, kind);
    attr(out, NFTA_DATA_VALUE, value);
    nest_end(out, at);
}

fn be32(out: &mut Vec<u8>, kind: u16, value: u32) {
    attr(out, kind, &value.to_be_bytes());
}

/// One expression as `NFTA_LIST_ELEM { NFTA_EXPR_NAME, NFTA_EXPR_DATA { … } }`.
fn encode_expr(out: &mut Vec<u8>, e: &Expr) {
    let item = nest_start(out, NFTA_LIST_ELEM);
    let name = match e {
        Expr::Meta(_) => "meta",
        Expr::CmpEq(_) => "cmp",
        Expr::Payload(..) => "payload",
        Expr::Mask(_) => "bitwise",
        Expr::Lookup(_) => "lookup",
        Expr::Range(..) => "range",
        Expr::Verdict(_) => "immediate",
    };
    attr_str(out, NFTA_EXPR_NAME, name);
    let body = nest_start(out, NFTA_EXPR_DATA);
    // Attribute numbers per expression: nf_tables.h's NFTA_META_*, NFTA_CMP_*, ….
    match e {
        Expr::Meta(key) => {
            be32(out, 1, NFT_REG_1); // NFTA_META_DREG
            be32(out, 2, *key); // NFTA_META_KEY
        }
        Expr::CmpEq(value) => {
            be32(out, 1, NFT_REG_1); // NFTA_CMP_SREG
            be32(out, 2, NFT_CMP_EQ); // NFTA_CMP_OP
            data(out, 3, value); // NFTA_CMP_DATA
        }
        Expr::Payload(base, offset, len) => {
            be32(out, 1, NFT_REG_1); // NFTA_PAYLOAD_DREG
            be32(out, 2, *base); // NFTA_PAYLOAD_BASE
            be32(out, 3, *offset); // NFTA_PAYLOAD_OFFSET
            be32(out, 4, *len); // NFTA_PAYLOAD_LEN
        }
        Expr::Mask(mask) => {
            be32(out, 1, NFT_REG_1); // NFTA_BITWISE_SREG
            be32(out, 2, NFT_REG_1); // NFTA_BITWISE_DREG
            be32(out, 3, u32::try_from(mask.len()).unwrap_or(4)); // NFTA_BITWISE_LEN
            data(out, 4, mask); // NFTA_BITWISE_MASK
            data(out, 5, &vec![0; mask.len()]); // NFTA_BITWISE_XOR
        }
        Expr::Lookup(set) => {
            attr_str(out, 1, set); // NFTA_LOOKUP_SET
            be32(out, 2, NFT_REG_1); // NFTA_LOOKUP_SREG
        }
        Expr::Range(from, to) => {
            be32(out, 1, NFT_REG_1); // NFTA_RANGE_SREG
            be32(out, 2, NFT_RANGE_EQ); // NFTA_RANGE_OP
            data(out, 3, from); // NFTA_RANGE_FROM_DATA
            data(out, 4, to); // NFTA_RANGE_TO_DATA
        }
        Expr::Verdict(code) => {
            be32(out, 1, NFT_REG_VERDICT); // NFTA_IMMEDIATE_DREG
            let at = nest_start(out, 2); // NFTA_IMMEDIATE_DATA
            encode_verdict(out, *code, None);
            nest_end(out, at);
        }
    }
    nest_end(out, body);
    nest_end(out, item);
}

/// Sends `changes` as one transaction and waits for the kernel's verdict. Blocking.
pub fn apply_elements(changes: &[SetChange]) -> Result<(), NetlinkError> {
    let statements: Vec<Statement> = changes.iter().cloned().map(Statement::Elements).collect();
    apply_batch(&statements)
}

/// Sends `statements` as one transaction and waits for the kernel's verdict. Blocking.
pub fn apply_batch(statements: &[Statement]) -> Result<(), NetlinkError> {
    let seq = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(1);
    let (bytes, mut pending) = encode(statements, seq);
    if bytes.len() > MAX_BATCH {
        return Err(NetlinkError::TooLarge);
    }
    let socket = Socket::new(
        Domain::from(AF_NETLINK),
        Type::RAW,
        Some(Protocol::from(NETLINK_NETFILTER)),
    )?;
    socket.set_read_timeout(Some(ANSWER_WITHIN))?;
    // An unconnected netlink socket sends to the kernel (port 0).
    socket.send(&bytes)?;
    let mut buf = vec![0u8; 64 * 1024];
    while pending > 0 {
        let len = match (&socket).read(&mut buf) {
            Ok(0) => return Err(NetlinkError::NoAnswer),
            Ok(len) => len,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(NetlinkError::NoAnswer)
            }
            Err(e) => return Err(e.into()),
        };
        let mut at = 0;
        while at + 16 <= len {
            let msg_len = u32_at(&buf, at) as usize;
            let kind = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
            if msg_len < 16 || at + msg_len > len {
                break;
            }
            if kind == NLMSG_ERROR && msg_len >= 20 {
                let code =
                    i32::from_ne_bytes([buf[at + 16], buf[at + 17], buf[at + 18], buf[at + 19]]);
                if code != 0 {
                    return Err(NetlinkError::Refused(std::io::Error::from_raw_os_error(
                        -code,
                    )));
                }
                pending -= 1;
            }
            at += align(msg_len);
        }
    }
    Ok(())
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

fn batch_marker(out: &mut Vec<u8>, kind: u16, seq: u32) {
    let start = begin_message(out, kind, NLM_F_REQUEST, seq, 0);
    // The batch's res_id names the subsystem (big-endian), written by begin_message as
    // zero: patch it.
    let res = start + 18;
    out[res..res + 2].copy_from_slice(&NFNL_SUBSYS_NFTABLES.to_be_bytes());
    end_message(out, start);
}

/// Writes an `nlmsghdr` (length patched by [`end_message`]) and an `nfgenmsg`.
fn begin_message(out: &mut Vec<u8>, kind: u16, flags: u16, seq: u32, family: u8) -> usize {
    let start = out.len();
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    // nfgenmsg: family, version NFNETLINK_V0, res_id.
    out.extend_from_slice(&[family, 0, 0, 0]);
    start
}

fn end_message(out: &mut [u8], start: usize) {
    let len = u32::try_from(out.len() - start).unwrap_or(u32::MAX);
    out[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

fn attr(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let len = u16::try_from(4 + value.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(align(out.len()), 0);
}

/// A NUL-terminated string attribute, as the kernel's `NLA_STRING` policy reads names.
fn attr_str(out: &mut Vec<u8>, kind: u16, value: &str) {
    let mut bytes = Vec::with_capacity(value.len() + 1);
    bytes.extend_from_slice(value.as_bytes());
    bytes.push(0);
    attr(out, kind, &bytes);
}

fn nest_start(out: &mut Vec<u8>, kind: u16) -> usize {
    let start = out.len();
    out.extend_from_slice(&0u16.to_ne_bytes());
    out.extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
    start
}

fn nest_end(out: &mut [u8], start: usize) {
    let len = u16::try_from(out.len() - start).unwrap_or(u16::MAX);
    out[start..start + 2].copy_from_slice(&len.to_ne_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_statements_parse_and_anything_else_needs_nft() {
        let batch = "add element inet stevedore sg_a { 172.31.0.6, 172.31.0.7 }\n\
                     add element inet stevedore ingress { 172.31.0.6 : jump in_sg_a }\n\
                     delete element inet stevedore egress { 172.31.0.9 }\n\
                     add element inet stevedore sgm_lb { 0x5e000009 }\n";
        let changes = parse_elements(batch).expect("elements only");
        assert_eq!(changes.len(), 4);
        assert_eq!(
            changes[1].elements,
            [Element::Jump(
                Ipv4Addr::new(172, 31, 0, 6),
                "in_sg_a".into()
            )]
        );
        assert!(!changes[2].add);
        assert_eq!(changes[3].elements, [Element::Mark(0x5e00_0009)]);
        assert_eq!(parse_elements(""), Some(Vec::new()));
        assert_eq!(
            parse_elements(
                "add element inet stevedore sg_a { 1.2.3.4 }\nflush chain inet stevedore in_sg_a\n"
            ),
            None
        );
    }

    #[test]
    fn compiled_rules_parse_to_nfts_expressions_and_other_statements_need_nft() {
        let batch = "flush chain inet t in_sg_a\n\
                     add rule inet t in_sg_a ip saddr 10.1.0.0/16 tcp dport 80-90 accept\n\
                     add rule inet t in_sg_a meta mark @sgm_lb tcp dport 80 accept\n\
                     add rule inet t out_sg_a ip daddr @sg_b icmp type 8 icmp code 0 return\n\
                     add rule inet t in_sg_a drop\n";
        let statements = parse_batch(batch).expect("netlink carries it");
        let Statement::AddRule(_, _, first) = &statements[1] else {
            panic!("{statements:?}")
        };
        assert_eq!(
            first,
            &[
                Expr::Meta(META_NFPROTO),
                Expr::CmpEq(vec![2]),
                Expr::Payload(NETWORK, 12, 4),
                Expr::Mask(vec![255, 255, 0, 0]),
                Expr::CmpEq(vec![10, 1, 0, 0]),
                Expr::Meta(META_L4PROTO),
                Expr::CmpEq(vec![6]),
                Expr::Payload(TRANSPORT, 2, 2),
                Expr::Range(vec![0, 80], vec![0, 90]),
                Expr::Verdict(NF_ACCEPT),
            ]
        );
        let Statement::AddRule(_, _, icmp) = &statements[3] else {
            panic!("{statements:?}")
        };
        // One protocol dependency for both ICMP matches.
        assert_eq!(
            icmp.iter()
                .filter(|e| **e == Expr::Meta(META_L4PROTO))
                .count(),
            1
        );
        for other in [
            "add set inet t sg_c { type ipv4_addr; }",
            "add chain inet t forward { type filter hook forward priority filter; policy accept; }",
            "add rule inet t forward ip saddr vmap @egress",
            "add rule inet t in_sg_a tcp dport 80 udp dport 53 accept",
            "delete table inet t",
        ] {
            assert_eq!(parse_batch(other), None, "{other}");
        }
    }

    #[test]
    fn a_batch_is_framed_and_every_message_asks_for_an_answer() {
        let changes = vec![Statement::Elements(SetChange {
            add: true,
            table: "t".into(),
            set: "s".into(),
            elements: (0..300u32)
                .map(|i| Element::Address(Ipv4Addr::from(i)))
                .collect(),
        })];
        let (bytes, acked) = encode(&changes, 7);
        assert_eq!(acked, 3, "300 elements in messages of {PER_MESSAGE}");
        // Walk the messages: begin, three element messages, end; lengths add up.
        let mut at = 0;
        let mut kinds = Vec::new();
        while at < bytes.len() {
            let len = u32_at(&bytes, at) as usize;
            kinds.push(u16::from_ne_bytes([bytes[at + 4], bytes[at + 5]]));
            at += align(len);
        }
        assert_eq!(at, bytes.len());
        let elem = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSETELEM;
        assert_eq!(
            kinds,
            [NFNL_MSG_BATCH_BEGIN, elem, elem, elem, NFNL_MSG_BATCH_END]
        );
    }
}
