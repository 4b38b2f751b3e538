//! The request being authorized: who asks (the principal), what (`service:Operation`), on
//! what (a resource ARN or `*`), and the request context keys conditions test.
//!
//! Context keys compare case-insensitively, so they are stored lower-cased. The global
//! keys that follow from the principal (`aws:PrincipalArn`, `aws:PrincipalAccount`,
//! `aws:username`, `aws:userid`, `aws:PrincipalTag/*`) are computed once when the
//! principal is built and shared by every request it makes (a request holds the principal
//! behind an `Arc`: authorizing a call copies nothing of it); the ones only the caller
//! knows (time, source IP, TLS, request and resource tags) have setters. Nothing here
//! reads a clock: time comes in as a parameter.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

/// A context key, lower-cased: the global keys are static, tag keys are built.
type Key = Cow<'static, str>;

/// Whether `key` (any case) is one of the context keys that follow from the principal
/// alone (see [`Principal`]): a condition or variable reading only these decides the same
/// way for every request the principal makes on the same action and resource.
pub(crate) fn is_principal_key(key: &str) -> bool {
    const TAG: &str = "aws:principaltag/";
    [
        "aws:principalarn",
        "aws:principalaccount",
        "aws:username",
        "aws:userid",
    ]
    .iter()
    .any(|k| key.eq_ignore_ascii_case(k))
        || key
            .get(..TAG.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(TAG))
}

/// Whether `key` is a resource tag key: `aws:ResourceTag/KEY`, or a service's own
/// (`ecs:ResourceTag/KEY`), in any case.
pub(crate) fn is_resource_tag_key(key: &str) -> bool {
    const TAG: &str = "resourcetag/";
    key.split_once(':').is_some_and(|(_, rest)| {
        rest.get(..TAG.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(TAG))
    })
}

/// Services whose authorization reference defines their own `<prefix>:ResourceTag/KEY`
/// beside the global key, with the same value.
const SERVICE_RESOURCE_TAGS: [&str; 3] = ["ecs", "ecr", "elasticloadbalancing"];

/// What kind of principal makes the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    /// The account's root user (`arn:aws:iam::ACCOUNT:root`).
    Root,
    /// An IAM user; `name` is the last segment of its ARN.
    User {
        /// The user name (`aws:username`).
        name: String,
    },
    /// A role session (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`).
    AssumedRole {
        /// The role's own ARN, path included (`arn:aws:iam::ACCOUNT:role/PATH/ROLE`).
        role_arn: String,
    },
    /// An AWS service principal such as `ecs-tasks.amazonaws.com`.
    Service,
    /// A federated (web identity or SAML) principal.
    Federated,
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    arn: String,
    account: String,
    kind: PrincipalKind,
    userid: Option<String>,
    tags: Vec<(String, String)>,
    /// The context keys that follow from the fields above, kept in step by every
    /// constructor and builder.
    keys: Vec<(Key, ContextValue)>,
}

impl Principal {
    /// The root user of `account`.
    pub fn root(account: &str) -> Self {
        Self::with_kind(format!("arn:aws:iam::{account}:root"), PrincipalKind::Root)
    }

    /// An IAM user, by ARN (`arn:aws:iam::ACCOUNT:user/PATH/NAME`).
    pub fn user(arn: &str) -> Self {
        let name = arn.rsplit('/').next().unwrap_or(arn).to_owned();
        Self::with_kind(arn.to_owned(), PrincipalKind::User { name })
    }

    /// A role session by its STS ARN, with the ARN of the role it belongs to.
    pub fn assumed_role(session_arn: &str, role_arn: &str) -> Self {
        Self::with_kind(
            session_arn.to_owned(),
            PrincipalKind::AssumedRole {
                role_arn: role_arn.to_owned(),
            },
        )
    }

    /// An AWS service principal (`ecs-tasks.amazonaws.com`); it has no account.
    pub fn service(name: &str) -> Self {
        Self::new(name.to_owned(), String::new(), PrincipalKind::Service)
    }

    /// A federated principal (identity provider ARN or name).
    pub fn federated(provider: &str) -> Self {
        Self::new(provider.to_owned(), String::new(), PrincipalKind::Federated)
    }

    fn with_kind(arn: String, kind: PrincipalKind) -> Self {
        let account = arn.split(':').nth(4).unwrap_or("").to_owned();
        Self::new(arn, account, kind)
    }

    fn new(arn: String, account: String, kind: PrincipalKind) -> Self {
        let mut keys: Vec<(Key, ContextValue)> =
            vec![("aws:principalarn".into(), arn.as_str().into())];
        if !account.is_empty() {
            keys.push(("aws:principalaccount".into(), account.as_str().into()));
        }
        if let PrincipalKind::User { name } = &kind {
            keys.push(("aws:username".into(), name.as_str().into()));
        }
        Self {
            arn,
            account,
            kind,
            userid: None,
            tags: Vec::new(),
            keys,
        }
    }

    /// Sets the unique id (`aws:userid`: `AIDA...` for users, `AROA...:session` for roles).
    pub fn with_userid(mut self, userid: &str) -> Self {
        self.userid = Some(userid.to_owned());
        self.keys.retain(|(k, _)| k != "aws:userid");
        self.keys.push(("aws:userid".into(), userid.into()));
        self
    }

    /// Adds a principal tag (`aws:PrincipalTag/KEY`).
    pub fn with_tag(mut self, key: &str, value: &str) -> Self {
        self.tags.push((key.to_owned(), value.to_owned()));
        let context_key = format!("aws:principaltag/{}", key.to_ascii_lowercase());
        // A later tag with the same key (any case) wins, as the earlier code's lookup
        // found the first: keep the first, as before.
        if !self.keys.iter().any(|(k, _)| *k == context_key) {
            self.keys.push((context_key.into(), value.into()));
        }
        self
    }

    /// The principal's ARN (a service principal's name for services).
    pub fn arn(&self) -> &str {
        &self.arn
    }

    /// The 12-digit account (empty for service principals).
    pub fn account(&self) -> &str {
        &self.account
    }

    /// What kind of principal this is.
    pub fn kind(&self) -> &PrincipalKind {
        &self.kind
    }
}

/// One typed value of a context key.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// Text.
    String(String),
    /// `true`/`false`.
    Bool(bool),
    /// A number.
    Number(f64),
    /// An instant, in milliseconds since the Unix epoch.
    Date(i64),
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
    /// Raw bytes (compared base64-encoded, as `BinaryEquals` does).
    Binary(Vec<u8>),
}

impl Scalar {
    /// The value as text, as string operators see it.
    pub(crate) fn text(&self) -> Cow<'_, str> {
        match self {
            Self::String(s) => Cow::Borrowed(s),
            Self::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            Self::Number(n) => Cow::Owned(n.to_string()),
            Self::Date(ms) => Cow::Owned(crate::time::format_iso8601(*ms)),
            Self::Ip(ip) => Cow::Owned(ip.to_string()),
            Self::Binary(b) => {
                use base64::Engine as _;
                Cow::Owned(base64::engine::general_purpose::STANDARD.encode(b))
            }
        }
    }

    pub(crate) fn number(&self) -> Option<f64> {
        match self {
            Self::Number(n) => Some(*n),
            Self::String(s) => s.trim().parse().ok(),
            Self::Date(ms) => Some(*ms as f64 / 1000.0),
            _ => None,
        }
    }

    pub(crate) fn date_millis(&self) -> Option<i64> {
        match self {
            Self::Date(ms) => Some(*ms),
            Self::Number(n) => Some((*n * 1000.0) as i64),
            Self::String(s) => crate::time::parse_date_millis(s),
            _ => None,
        }
    }

    pub(crate) fn bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            Self::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Self::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }

    pub(crate) fn ip(&self) -> Option<IpAddr> {
        match self {
            Self::Ip(ip) => Some(*ip),
            Self::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

/// The value of a context key: one value, or a set (multivalued keys like `aws:TagKeys`).
#[derive(Debug, Clone, PartialEq)]
pub enum ContextValue {
    /// A single-valued key.
    One(Scalar),
    /// A multivalued key; may be empty.
    Many(Vec<Scalar>),
}

impl ContextValue {
    /// A set of strings.
    pub fn strings<S: Into<String>>(items: impl IntoIterator<Item = S>) -> Self {
        Self::Many(
            items
                .into_iter()
                .map(|s| Scalar::String(s.into()))
                .collect(),
        )
    }

    /// A number.
    pub fn number(n: f64) -> Self {
        Self::One(Scalar::Number(n))
    }

    /// An instant in milliseconds since the Unix epoch.
    pub fn date_millis(ms: i64) -> Self {
        Self::One(Scalar::Date(ms))
    }

    /// Bytes (for `BinaryEquals`).
    pub fn binary(bytes: Vec<u8>) -> Self {
        Self::One(Scalar::Binary(bytes))
    }

    pub(crate) fn items(&self) -> &[Scalar] {
        match self {
            Self::One(s) => std::slice::from_ref(s),
            Self::Many(v) => v,
        }
    }
}

impl From<&str> for ContextValue {
    fn from(s: &str) -> Self {
        Self::One(Scalar::String(s.to_owned()))
    }
}

impl From<String> for ContextValue {
    fn from(s: String) -> Self {
        Self::One(Scalar::String(s))
    }
}

impl From<bool> for ContextValue {
    fn from(b: bool) -> Self {
        Self::One(Scalar::Bool(b))
    }
}

impl From<IpAddr> for ContextValue {
    fn from(ip: IpAddr) -> Self {
        Self::One(Scalar::Ip(ip))
    }
}

/// One request to authorize.
#[derive(Debug, Clone)]
pub struct Request {
    principal: Arc<Principal>,
    action: String,
    action_lc: String,
    resource: String,
    /// The keys set on this request; the principal's own keys are read from it.
    context: Vec<(Key, ContextValue)>,
}

impl Request {
    /// A request by `principal` to perform `action` (`service:Operation`) on `resource` (an
    /// ARN, or `*` for actions without a resource type). The principal's keys come with it.
    pub fn new(principal: impl Into<Arc<Principal>>, action: &str, resource: &str) -> Self {
        Self {
            action: action.to_owned(),
            action_lc: action.to_ascii_lowercase(),
            resource: resource.to_owned(),
            context: Vec::with_capacity(8),
            principal: principal.into(),
        }
    }

    /// Sets context key `key` (any case) to `value`, replacing an earlier value.
    pub fn set(&mut self, key: &str, value: impl Into<ContextValue>) {
        self.set_lower(key.to_ascii_lowercase().into(), value.into());
    }

    /// Sets a key already in lower case (the global keys' setters: no allocation).
    fn set_lower(&mut self, key: Key, value: ContextValue) {
        match self.context.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.context.push((key, value)),
        }
    }

    /// [`Request::set`], builder style.
    pub fn with(mut self, key: &str, value: impl Into<ContextValue>) -> Self {
        self.set(key, value);
        self
    }

    /// The request time: sets `aws:CurrentTime` and `aws:EpochTime`.
    pub fn at_epoch_millis(mut self, ms: i64) -> Self {
        self.set_lower("aws:currenttime".into(), ContextValue::date_millis(ms));
        self.set_lower(
            "aws:epochtime".into(),
            ContextValue::number((ms / 1000) as f64),
        );
        self
    }

    /// The caller's address: `aws:SourceIp`.
    pub fn source_ip(mut self, ip: IpAddr) -> Self {
        self.set_lower("aws:sourceip".into(), ip.into());
        self
    }

    /// Whether the request came over TLS: `aws:SecureTransport`.
    pub fn secure_transport(mut self, tls: bool) -> Self {
        self.set_lower("aws:securetransport".into(), tls.into());
        self
    }

    /// Tags the request sets: `aws:RequestTag/KEY` each, and `aws:TagKeys`.
    pub fn request_tags<'a>(mut self, tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut keys = Vec::new();
        for (k, v) in tags {
            self.set(&format!("aws:RequestTag/{k}"), v);
            keys.push(k.to_owned());
        }
        self.with("aws:TagKeys", ContextValue::strings(keys))
    }

    /// Tags of the resource acted on: `aws:ResourceTag/KEY` each, and the service's own
    /// `<prefix>:ResourceTag/KEY` where it defines one (ECS, ECR, ELBv2).
    pub fn resource_tags<'a>(mut self, tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let prefix = self
            .action()
            .split_once(':')
            .map(|(p, _)| p.to_owned())
            .filter(|p| {
                SERVICE_RESOURCE_TAGS
                    .iter()
                    .any(|s| p.eq_ignore_ascii_case(s))
            });
        for (k, v) in tags {
            self.set(&format!("aws:ResourceTag/{k}"), v);
            if let Some(p) = &prefix {
                self.set(&format!("{p}:ResourceTag/{k}"), v);
            }
        }
        self
    }

    /// The value of context key `key` (any case).
    pub fn get(&self, key: &str) -> Option<&ContextValue> {
        if key.bytes().any(|b| b.is_ascii_uppercase()) {
            return self.get_lower(&key.to_ascii_lowercase());
        }
        self.get_lower(key)
    }

    pub(crate) fn get_lower(&self, key: &str) -> Option<&ContextValue> {
        // A key set on the request overrides the principal's (as `set` replaced it).
        self.context
            .iter()
            .chain(self.principal.keys.iter())
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// A policy variable's value: single-valued keys only.
    pub(crate) fn variable(&self, key_lc: &str) -> Option<Cow<'_, str>> {
        match self.get_lower(key_lc)? {
            ContextValue::One(s) => Some(s.text()),
            ContextValue::Many(_) => None,
        }
    }

    /// Who asks.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The action as given (`ecs:RunTask`).
    pub fn action(&self) -> &str {
        &self.action
    }

    pub(crate) fn action_lower(&self) -> &str {
        &self.action_lc
    }

    /// The resource ARN, or `*`.
    pub fn resource(&self) -> &str {
        &self.resource
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_keys_are_filled_in_and_keys_ignore_case() {
        let p = Principal::user("arn:aws:iam::123456789012:user/dev/alice")
            .with_userid("AIDAEXAMPLE")
            .with_tag("Team", "blue");
        let r = Request::new(p, "ecs:RunTask", "*");
        assert_eq!(r.get("AWS:USERNAME"), Some(&ContextValue::from("alice")));
        assert_eq!(
            r.get("aws:principalaccount"),
            Some(&ContextValue::from("123456789012"))
        );
        assert_eq!(
            r.get("aws:PrincipalTag/team"),
            Some(&ContextValue::from("blue"))
        );
        assert_eq!(
            r.get("aws:userid"),
            Some(&ContextValue::from("AIDAEXAMPLE"))
        );
    }

    #[test]
    fn a_role_session_has_no_username() {
        let p = Principal::assumed_role(
            "arn:aws:sts::123456789012:assumed-role/app/s1",
            "arn:aws:iam::123456789012:role/app",
        );
        let r = Request::new(p, "ecs:ListClusters", "*");
        assert_eq!(r.get("aws:username"), None);
        assert_eq!(r.principal().account(), "123456789012");
    }
}
