//! Listener rule matching, pure: AWS's wildcard patterns, the six condition kinds, and
//! priority-ordered selection of a rule's action. Nothing here does I/O or knows how an
//! action is carried out; the action payload is a type parameter so the proxy can attach
//! its own runtime form (target groups with counters) while this module stays testable.

use std::net::IpAddr;

use http::HeaderMap;
use model::lb::{Condition, Listener};

/// Whether `text` matches an AWS wildcard `pattern`: `*` matches any run (also empty),
/// `?` exactly one character. With `fold_case`, ASCII letters compare case-insensitively
/// (hosts and header values); paths compare exactly.
///
/// Greedy with one backtrack point (the last `*`), so it is linear for typical patterns
/// and never worse than `O(pattern × text)`.
pub fn wildcard_match(pattern: &[u8], text: &[u8], fold_case: bool) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    // (pattern index after the last `*`, text index that `*` has swallowed up to).
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if let Some(&c) = pattern.get(p) {
            if c == b'*' {
                star = Some((p + 1, t));
                p += 1;
                continue;
            }
            if c == b'?' {
                p += 1;
                t = next_char(text, t);
                continue;
            }
            let same = if fold_case {
                c.eq_ignore_ascii_case(&text[t])
            } else {
                c == text[t]
            };
            if same {
                p += 1;
                t += 1;
                continue;
            }
        }
        match star {
            Some((after_star, swallowed)) => {
                // Let the `*` swallow one more character and retry from there.
                let next = next_char(text, swallowed);
                star = Some((after_star, next));
                p = after_star;
                t = next;
            }
            None => return false,
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

/// The index after the UTF-8 character starting at `i` (one byte for invalid input), so
/// `?` consumes a whole character as AWS documents.
fn next_char(text: &[u8], i: usize) -> usize {
    let width = match text[i] {
        b if b < 0x80 => 1,
        b if b >= 0xF0 => 4,
        b if b >= 0xE0 => 3,
        b if b >= 0xC0 => 2,
        _ => 1,
    };
    (i + width).min(text.len())
}

/// The host part of a `Host` header: without the port, and for `[v6]:port` the bracketed
/// address.
pub fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// What a condition can look at in one request. Borrowed, so building it costs nothing.
#[derive(Clone, Copy, Debug)]
pub struct RequestFacts<'a> {
    /// The method, as sent.
    pub method: &'a str,
    /// The host without its port, if the request named one.
    pub host: Option<&'a str>,
    /// The path, without the query string.
    pub path: &'a str,
    /// The query string, without the `?`.
    pub query: Option<&'a str>,
    /// All request headers.
    pub headers: Headers<'a>,
    /// The client's address (the TCP peer).
    pub source_ip: IpAddr,
}

/// A request's headers as either path holds them: hyper's map, or the raw headers the
/// HTTP/1.1 fast path parsed (no map is built there just to route).
#[derive(Clone, Copy, Debug)]
pub enum Headers<'a> {
    /// Parsed by hyper.
    Map(&'a HeaderMap),
    /// Parsed by httparse, names as sent.
    Raw(&'a [httparse::Header<'a>]),
}

impl Headers<'_> {
    /// Whether any value of header `name` satisfies `pred`.
    pub(crate) fn any_value(
        &self,
        name: &http::HeaderName,
        mut pred: impl FnMut(&[u8]) -> bool,
    ) -> bool {
        match self {
            Headers::Map(map) => map.get_all(name).iter().any(|v| pred(v.as_bytes())),
            Headers::Raw(raw) => raw
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case(name.as_str()))
                .any(|h| pred(h.value)),
        }
    }
}

/// An IP block from a `source-ip` condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d/n` or `v6/n` (a bare address is a /32 or /128); `None` if malformed.
    pub fn parse(text: &str) -> Option<Cidr> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (text.trim().parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    /// Whether `ip` lies in the block (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// A compiled wildcard pattern.
type Pattern = Box<[u8]>;

/// A condition prepared once per config snapshot so matching allocates nothing.
#[derive(Clone, Debug)]
enum CompiledCondition {
    Path(Vec<Box<[u8]>>),
    Host(Vec<Box<[u8]>>),
    Header {
        name: http::HeaderName,
        values: Vec<Box<[u8]>>,
    },
    Method(Vec<String>),
    Query(Vec<(Option<Pattern>, Pattern)>),
    SourceIp(Vec<Cidr>),
    /// A condition the API should have rejected (bad header name, bad CIDR): the rule can
    /// never match rather than matching too much.
    Never,
}

fn patterns(values: &[String]) -> Vec<Box<[u8]>> {
    values.iter().map(|v| v.as_bytes().into()).collect()
}

impl CompiledCondition {
    fn compile(condition: &Condition) -> CompiledCondition {
        match condition {
            Condition::PathPattern(v) => CompiledCondition::Path(patterns(v)),
            Condition::HostHeader(v) => CompiledCondition::Host(patterns(v)),
            Condition::HttpHeader { name, values } => {
                match http::HeaderName::from_bytes(name.as_bytes()) {
                    Ok(name) => CompiledCondition::Header {
                        name,
                        values: patterns(values),
                    },
                    Err(_) => CompiledCondition::Never,
                }
            }
            Condition::HttpRequestMethod(v) => CompiledCondition::Method(v.clone()),
            Condition::QueryString(pairs) => CompiledCondition::Query(
                pairs
                    .iter()
                    .map(|(k, v)| (k.as_ref().map(|k| k.as_bytes().into()), v.as_bytes().into()))
                    .collect(),
            ),
            Condition::SourceIp(blocks) => {
                let parsed: Option<Vec<Cidr>> = blocks.iter().map(|b| Cidr::parse(b)).collect();
                parsed.map_or(CompiledCondition::Never, CompiledCondition::SourceIp)
            }
        }
    }

    fn matches(&self, facts: &RequestFacts<'_>) -> bool {
        let any = |pats: &[Box<[u8]>], text: &[u8], fold: bool| {
            pats.iter().any(|p| wildcard_match(p, text, fold))
        };
        match self {
            CompiledCondition::Path(p) => any(p, facts.path.as_bytes(), false),
            CompiledCondition::Host(p) => facts.host.is_some_and(|h| any(p, h.as_bytes(), true)),
            CompiledCondition::Header { name, values } => {
                facts.headers.any_value(name, |v| any(values, v, true))
            }
            CompiledCondition::Method(m) => m.iter().any(|m| m == facts.method),
            CompiledCondition::Query(pairs) => {
                let Some(query) = facts.query else {
                    return false;
                };
                // Raw (still percent-encoded) keys and values, compared case-insensitively
                // as AWS documents for query-string conditions.
                query.split('&').filter(|kv| !kv.is_empty()).any(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    pairs.iter().any(|(pk, pv)| {
                        pk.as_ref()
                            .is_none_or(|pk| wildcard_match(pk, k.as_bytes(), true))
                            && wildcard_match(pv, v.as_bytes(), true)
                    })
                })
            }
            CompiledCondition::SourceIp(blocks) => {
                blocks.iter().any(|b| b.contains(facts.source_ip))
            }
            CompiledCondition::Never => false,
        }
    }
}

#[derive(Debug)]
struct CompiledRule<A> {
    priority: u32,
    conditions: Vec<CompiledCondition>,
    action: A,
}

/// A listener's rules prepared for matching, each carrying an action payload `A`.
#[derive(Debug)]
pub struct CompiledRules<A> {
    rules: Vec<CompiledRule<A>>,
    default: A,
}

impl<A> CompiledRules<A> {
    /// Prepares a listener's rules; `action` turns a rule's (or the default) action list
    /// into the payload. Rules are sorted by priority here, whatever order they came in.
    pub fn compile(listener: &Listener, mut action: impl FnMut(&[model::lb::Action]) -> A) -> Self {
        let mut rules: Vec<CompiledRule<A>> = listener
            .rules
            .iter()
            .map(|r| CompiledRule {
                priority: r.priority,
                conditions: r
                    .conditions
                    .iter()
                    .map(CompiledCondition::compile)
                    .collect(),
                action: action(&r.actions),
            })
            .collect();
        rules.sort_by_key(|r| r.priority);
        CompiledRules {
            rules,
            default: action(&listener.default_actions),
        }
    }

    /// The payload of the first rule (lowest priority number) whose every condition
    /// matches, or the default actions' payload.
    pub fn select(&self, facts: &RequestFacts<'_>) -> &A {
        self.rules
            .iter()
            .find(|r| r.conditions.iter().all(|c| c.matches(facts)))
            .map_or(&self.default, |r| &r.action)
    }
}

/// The parts of the original request a redirect may refer to.
#[derive(Clone, Copy, Debug)]
pub struct RedirectSource<'a> {
    /// `HTTP` (the listener's protocol, as AWS spells it).
    pub protocol: &'a str,
    /// The host without the port.
    pub host: &'a str,
    /// The listener's port.
    pub port: u16,
    /// The path (with its leading `/`).
    pub path: &'a str,
    /// The query string without `?`, if any.
    pub query: Option<&'a str>,
}

/// The redirect target pieces, as configured (each may hold `#{…}` placeholders).
#[derive(Clone, Copy, Debug)]
pub struct RedirectSpec<'a> {
    /// Protocol.
    pub protocol: &'a str,
    /// Host.
    pub host: &'a str,
    /// Port.
    pub port: &'a str,
    /// Path.
    pub path: &'a str,
    /// Query.
    pub query: &'a str,
}

/// The `Location` for a redirect action: placeholders substituted, the port left out when
/// it is the protocol's default, an empty query dropped.
pub fn compute_redirect_location(spec: &RedirectSpec<'_>, from: &RedirectSource<'_>) -> String {
    let port = from.port.to_string();
    let subst = |s: &str| {
        if !s.contains("#{") {
            return s.to_owned();
        }
        s.replace("#{protocol}", from.protocol)
            .replace("#{host}", from.host)
            .replace("#{port}", &port)
            .replace("#{path}", from.path.strip_prefix('/').unwrap_or(from.path))
            .replace("#{query}", from.query.unwrap_or(""))
    };
    let scheme = subst(spec.protocol).to_ascii_lowercase();
    let host = subst(spec.host);
    let port = subst(spec.port);
    let mut path = subst(spec.path);
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    let query = subst(spec.query);
    let default_port = match scheme.as_str() {
        "https" => "443",
        _ => "80",
    };
    let mut location = format!("{scheme}://{host}");
    if !port.is_empty() && port != default_port {
        location.push(':');
        location.push_str(&port);
    }
    location.push_str(&path);
    if !query.is_empty() {
        location.push('?');
        location.push_str(&query);
    }
    location
}

#[cfg(test)]
mod tests;
