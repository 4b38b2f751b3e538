//! Set and map element changes spoken to the kernel over netlink (`NETLINK_NETFILTER`),
//! without the `nft` program: the common change (a task comes or goes, so its address
//! enters or leaves a group's set and the two verdict maps) then costs one socket round
//! trip, about a millisecond, where running `nft` costs its start and a read-back of
//! the table (20–60 ms on a loaded host), more than the 20 ms a change may take.
//!
//! Only element batches go this way; tables, chains and rules are still written by
//! `nft -f`. Hand-written rather than through a crate: `rustables` is GPL-3.0 (this
//! project is Apache-2.0) and `nftnl` binds the C libraries libnftnl and libmnl (a
//! system dependency for three message types). The messages are those of
//! `linux/netfilter/nf_tables.h`: one batch (`NFNL_MSG_BATCH_BEGIN` … `END`, one kernel
//! transaction, all or nothing like `nft -f`) of `NFT_MSG_NEWSETELEM` /
//! `NFT_MSG_DELSETELEM`, each acknowledged.
//!
//! [`parse_elements`] is pure: it reads back the element statements
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

/// The statements of `batch` when every one is an element statement, else `None` (the
/// batch needs `nft`).
pub fn parse_elements(batch: &str) -> Option<Vec<SetChange>> {
    let mut out = Vec::new();
    for line in batch.lines() {
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
        out.push(SetChange {
            add,
            table: table.to_owned(),
            set: set.to_owned(),
            elements,
        });
    }
    Some(out)
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
    #[error("the kernel refused the element batch: {0}")]
    Refused(std::io::Error),
    /// Not every message was answered in time.
    #[error("the kernel did not answer the element batch")]
    NoAnswer,
    /// The batch is larger than one write.
    #[error("the element batch is too large for one netlink write")]
    TooLarge,
}

/// The bytes of one batch: begin, one message per [`PER_MESSAGE`] elements, end.
/// Returns them and the number of messages that ask for an acknowledgement.
pub fn encode(changes: &[SetChange], seq: u32) -> (Vec<u8>, u32) {
    let mut out = Vec::with_capacity(256 + changes.len() * 128);
    let mut n = seq;
    batch_marker(&mut out, NFNL_MSG_BATCH_BEGIN, n);
    let mut acked = 0;
    for change in changes {
        for chunk in change.elements.chunks(PER_MESSAGE) {
            n = n.wrapping_add(1);
            acked += 1;
            let (kind, flags) = if change.add {
                (NFT_MSG_NEWSETELEM, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE)
            } else {
                (NFT_MSG_DELSETELEM, NLM_F_REQUEST | NLM_F_ACK)
            };
            let start = begin_message(
                &mut out,
                (NFNL_SUBSYS_NFTABLES << 8) | kind,
                flags,
                n,
                NFPROTO_INET,
            );
            attr_str(&mut out, NFTA_SET_ELEM_LIST_TABLE, &change.table);
            attr_str(&mut out, NFTA_SET_ELEM_LIST_SET, &change.set);
            let list = nest_start(&mut out, NFTA_SET_ELEM_LIST_ELEMENTS);
            for e in chunk {
                let item = nest_start(&mut out, NFTA_LIST_ELEM);
                let key = nest_start(&mut out, NFTA_SET_ELEM_KEY);
                match e {
                    Element::Address(a) | Element::Jump(a, _) => {
                        attr(&mut out, NFTA_DATA_VALUE, &a.octets());
                    }
                    // nft's `mark` type is a host-order integer.
                    Element::Mark(m) => attr(&mut out, NFTA_DATA_VALUE, &m.to_ne_bytes()),
                }
                nest_end(&mut out, key);
                if let (Element::Jump(_, chain), true) = (e, change.add) {
                    let data = nest_start(&mut out, NFTA_SET_ELEM_DATA);
                    let verdict = nest_start(&mut out, NFTA_DATA_VERDICT);
                    attr(&mut out, NFTA_VERDICT_CODE, &NFT_JUMP.to_be_bytes());
                    attr_str(&mut out, NFTA_VERDICT_CHAIN, chain);
                    nest_end(&mut out, verdict);
                    nest_end(&mut out, data);
                }
                nest_end(&mut out, item);
            }
            nest_end(&mut out, list);
            end_message(&mut out, start);
        }
    }
    batch_marker(&mut out, NFNL_MSG_BATCH_END, n.wrapping_add(1));
    (out, acked)
}

/// Sends `changes` as one transaction and waits for the kernel's verdict. Blocking.
pub fn apply_elements(changes: &[SetChange]) -> Result<(), NetlinkError> {
    let seq = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(1);
    let (bytes, mut pending) = encode(changes, seq);
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
                let code = i32::from_ne_bytes([
                    buf[at + 16],
                    buf[at + 17],
                    buf[at + 18],
                    buf[at + 19],
                ]);
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
            parse_elements("add element inet stevedore sg_a { 1.2.3.4 }\nflush chain inet stevedore in_sg_a\n"),
            None
        );
    }

    #[test]
    fn a_batch_is_framed_and_every_message_asks_for_an_answer() {
        let changes = vec![SetChange {
            add: true,
            table: "t".into(),
            set: "s".into(),
            elements: (0..300u32)
                .map(|i| Element::Address(Ipv4Addr::from(i)))
                .collect(),
        }];
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
