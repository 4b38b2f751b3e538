//! Parsing and validating a policy document (IAM's JSON grammar) straight into its compiled
//! form: patterns tokenised, principals normalised, condition values typed.
//!
//! Three kinds of document validate differently: identity policies must not name a
//! principal and must name resources; resource policies (ECR repository policies) must
//! name a principal and may omit `Resource` (it is the resource they are attached to);
//! trust policies must name a principal, must not name resources and only allow STS
//! actions.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::condition::{self, Condition};
use crate::pattern::{ArnPattern, Pattern, PatternSet, Syntax};
use crate::PolicyError;

/// Which validation rules a document follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// Attached to a user, group or role (inline or managed), or a session policy.
    Identity,
    /// Attached to a resource (an ECR repository policy).
    Resource,
    /// A role's trust policy (`AssumeRolePolicyDocument`).
    Trust,
}

/// The policy language version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `2012-10-17`: policy variables are substituted.
    V2012_10_17,
    /// `2008-10-17`, or no `Version`: `${...}` is literal text.
    V2008_10_17,
}

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Grants, unless something denies.
    Allow,
    /// Denies, whatever allows.
    Deny,
}

/// A parsed, validated and compiled policy document, ready to evaluate.
#[derive(Debug, Clone)]
pub struct Policy {
    kind: PolicyKind,
    version: Version,
    id: Option<String>,
    label: Option<Arc<str>>,
    statements: Vec<Statement>,
}

/// One compiled statement.
#[derive(Debug, Clone)]
pub struct Statement {
    pub(crate) sid: Option<Arc<str>>,
    pub(crate) effect: Effect,
    pub(crate) principal: Option<PrincipalMatch>,
    pub(crate) action: Matcher<PatternSet>,
    /// `None`: a resource policy statement without `Resource` (its own resource).
    pub(crate) resource: Option<Matcher<Vec<ArnPattern>>>,
    pub(crate) conditions: Vec<Condition>,
}

/// What an element lists, or (for `Not...` elements) its complement.
#[derive(Debug, Clone)]
pub(crate) struct Matcher<T> {
    pub(crate) negated: bool,
    pub(crate) items: T,
}

/// `Principal` or `NotPrincipal`.
#[derive(Debug, Clone)]
pub(crate) struct PrincipalMatch {
    pub(crate) negated: bool,
    pub(crate) items: Vec<PrincipalSpec>,
}

/// One principal a statement names, normalised (`"123456789012"` is the account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PrincipalSpec {
    /// `"*"` or `{"AWS": "*"}`: anyone.
    Any,
    /// An account id (given as the id or as `arn:aws:iam::ID:root`).
    Account(String),
    /// A user, role or session ARN.
    Arn(String),
    /// An AWS service (`ecs-tasks.amazonaws.com`).
    Service(String),
    /// A federated identity provider.
    Federated(String),
    /// An S3 canonical user id (never matches an IAM principal).
    CanonicalUser(String),
}

impl Policy {
    /// Whether each of this identity policy's decisions follows from the principal, the
    /// action and the resource alone: no condition and no policy variable reads a key a
    /// request sets (time, source address, TLS, tags, service keys). The dispatch may
    /// then remember a caller's allowed (action, resource) pairs.
    pub fn decided_by_principal(&self) -> bool {
        self.keys_read().all(crate::context::is_principal_key)
    }

    /// Whether a statement reads a tag of the resource acted on (`aws:ResourceTag/KEY`, or a
    /// service's own `ecs:ResourceTag/KEY`), in a condition or a policy variable: the
    /// dispatch then asks the service for the resource's tags, a store read it spares every
    /// other call.
    pub fn reads_resource_tags(&self) -> bool {
        self.keys_read().any(crate::context::is_resource_tag_key)
    }

    /// Every context key a statement reads: in its conditions, and as policy variables in
    /// its actions and resources.
    fn keys_read(&self) -> impl Iterator<Item = &str> {
        self.statements.iter().flat_map(|st| {
            let resources = st.resource.iter().flat_map(|m| &m.items);
            st.action
                .items
                .variable_keys()
                .chain(resources.flat_map(ArnPattern::variable_keys))
                .chain(st.conditions.iter().flat_map(Condition::reads))
        })
    }

    /// Parses and validates `text` as a policy of `kind`.
    pub fn parse(text: &str, kind: PolicyKind) -> Result<Self, PolicyError> {
        let root: Value =
            serde_json::from_str(text).map_err(|e| PolicyError::syntax(e.to_string()))?;
        let root = root
            .as_object()
            .ok_or_else(|| PolicyError::syntax("document is not an object"))?;
        if let Some(unknown) = root
            .keys()
            .find(|k| !matches!(k.as_str(), "Version" | "Id" | "Statement"))
        {
            return Err(PolicyError::UnknownField(unknown.clone()));
        }
        let version = match root.get("Version") {
            None => Version::V2008_10_17,
            Some(Value::String(v)) if v == "2012-10-17" => Version::V2012_10_17,
            Some(Value::String(v)) if v == "2008-10-17" => Version::V2008_10_17,
            Some(Value::String(_)) => return Err(PolicyError::LegacyParsing),
            Some(_) => return Err(PolicyError::syntax("Version is not a string")),
        };
        let id = match root.get("Id") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(PolicyError::syntax("Id is not a string")),
        };
        let raw: Vec<&Value> = match root.get("Statement") {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(v @ Value::Object(_)) => vec![v],
            Some(_) => return Err(PolicyError::syntax("Statement is not an object or array")),
            None => return Err(PolicyError::syntax("missing Statement")),
        };
        let variables = version == Version::V2012_10_17;
        let statements = raw
            .into_iter()
            .map(|s| match s {
                Value::Object(obj) => parse_statement(obj, kind, variables),
                _ => Err(PolicyError::syntax("statement is not an object")),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            kind,
            version,
            id,
            label: None,
            statements,
        })
    }

    /// Names this policy (its ARN or name) so decisions can say which policy decided.
    pub fn with_label(mut self, label: &str) -> Self {
        self.label = Some(label.into());
        self
    }

    /// The label given by [`Policy::with_label`].
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    pub(crate) fn label_arc(&self) -> Option<Arc<str>> {
        self.label.clone()
    }

    /// The rules this document was validated under.
    pub fn kind(&self) -> PolicyKind {
        self.kind
    }

    /// The language version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The document's `Id`.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The statements, in document order.
    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }
}

impl Statement {
    /// The statement's `Sid`.
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    /// `Allow` or `Deny`.
    pub fn effect(&self) -> Effect {
        self.effect
    }
}

const STATEMENT_FIELDS: &[&str] = &[
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

fn parse_statement(
    obj: &Map<String, Value>,
    kind: PolicyKind,
    variables: bool,
) -> Result<Statement, PolicyError> {
    if let Some(unknown) = obj.keys().find(|k| !STATEMENT_FIELDS.contains(&k.as_str())) {
        return Err(PolicyError::UnknownField(unknown.clone()));
    }
    let sid = match obj.get("Sid") {
        None => None,
        Some(Value::String(s)) => {
            if kind != PolicyKind::Resource && !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(PolicyError::InvalidSid);
            }
            Some(Arc::from(s.as_str()))
        }
        Some(_) => return Err(PolicyError::syntax("Sid is not a string")),
    };
    let effect = match obj.get("Effect") {
        None => return Err(PolicyError::MissingEffect),
        Some(Value::String(e)) if e == "Allow" => Effect::Allow,
        Some(Value::String(e)) if e == "Deny" => Effect::Deny,
        Some(Value::String(e)) => return Err(PolicyError::InvalidEffect(e.clone())),
        Some(_) => return Err(PolicyError::syntax("Effect is not a string")),
    };
    let principal = parse_principal(obj, kind)?;
    let action = parse_actions(obj, kind, effect)?;
    let resource = parse_resources(obj, kind, variables)?;
    let conditions = match obj.get("Condition") {
        None => Vec::new(),
        Some(block) => condition::parse_block(block, variables)?,
    };
    Ok(Statement {
        sid,
        effect,
        principal,
        action,
        resource,
        conditions,
    })
}

/// `"x"` or `["x", ...]` as strings; `None` when the element is absent.
fn string_list<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<Vec<&'a str>>, PolicyError> {
    match obj.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(vec![s.as_str()])),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| PolicyError::syntax(format!("{field} holds a non-string")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(PolicyError::syntax(format!(
            "{field} is not a string or array"
        ))),
    }
}

/// Exactly one of `field` and `Not{field}`: (negated, values).
fn one_of<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<(bool, Vec<&'a str>)>, PolicyError> {
    let not = format!("Not{field}");
    match (string_list(obj, field)?, string_list(obj, &not)?) {
        (Some(_), Some(_)) => Err(PolicyError::syntax(format!("both {field} and {not}"))),
        (Some(v), None) => Ok(Some((false, v))),
        (None, Some(v)) => Ok(Some((true, v))),
        (None, None) => Ok(None),
    }
}

fn parse_actions(
    obj: &Map<String, Value>,
    kind: PolicyKind,
    effect: Effect,
) -> Result<Matcher<PatternSet>, PolicyError> {
    let (negated, actions) = match one_of(obj, "Action")? {
        Some((n, v)) if !v.is_empty() => (n, v),
        _ => return Err(PolicyError::MissingAction),
    };
    let syntax = Syntax {
        wildcards: true,
        variables: false,
        fold: true,
    };
    let mut items = Vec::with_capacity(actions.len());
    for a in actions {
        if a != "*" {
            match a.split(':').count() {
                1 => return Err(PolicyError::MissingVendor),
                2 if !a.starts_with(':') => {}
                2 => return Err(PolicyError::MissingVendor),
                _ => return Err(PolicyError::TooManyColons),
            }
        }
        let sts = a == "*" || a.to_ascii_lowercase().starts_with("sts:");
        if kind == PolicyKind::Trust && effect == Effect::Allow && !negated && !sts {
            return Err(PolicyError::TrustActionNotAllowed);
        }
        items.push(Pattern::new(a, syntax));
    }
    Ok(Matcher {
        negated,
        items: PatternSet::new(items),
    })
}

fn parse_resources(
    obj: &Map<String, Value>,
    kind: PolicyKind,
    variables: bool,
) -> Result<Option<Matcher<Vec<ArnPattern>>>, PolicyError> {
    let found = one_of(obj, "Resource")?;
    let (negated, resources) = match (kind, found) {
        (PolicyKind::Trust, Some(_)) => return Err(PolicyError::ResourceNotAllowed),
        (PolicyKind::Identity, None) => return Err(PolicyError::MissingResource),
        (PolicyKind::Identity, Some((_, v))) if v.is_empty() => {
            return Err(PolicyError::MissingResource)
        }
        (_, None) => return Ok(None),
        (_, Some(found)) => found,
    };
    let mut items = Vec::with_capacity(resources.len());
    for r in resources {
        if r != "*" && !r.starts_with("arn:") {
            return Err(PolicyError::ResourceNotArn(r.to_owned()));
        }
        items.push(ArnPattern::new(r, variables));
    }
    Ok(Some(Matcher { negated, items }))
}

fn parse_principal(
    obj: &Map<String, Value>,
    kind: PolicyKind,
) -> Result<Option<PrincipalMatch>, PolicyError> {
    let (negated, raw) = match (obj.get("Principal"), obj.get("NotPrincipal")) {
        (Some(_), Some(_)) => return Err(PolicyError::syntax("both Principal and NotPrincipal")),
        (Some(p), None) => (false, p),
        (None, Some(p)) => (true, p),
        (None, None) if kind == PolicyKind::Identity => return Ok(None),
        (None, None) => return Err(PolicyError::MissingPrincipal),
    };
    if kind == PolicyKind::Identity {
        return Err(PolicyError::PrincipalNotAllowed);
    }
    let items = match raw {
        Value::String(s) if s == "*" => vec![PrincipalSpec::Any],
        Value::String(s) => return Err(PolicyError::InvalidPrincipal(format!("\"{s}\""))),
        Value::Object(map) => {
            let mut items = Vec::new();
            for (ty, ids) in map {
                let ids = match ids {
                    Value::String(s) => vec![s.as_str()],
                    Value::Array(a) => a
                        .iter()
                        .map(|v| v.as_str().ok_or_else(|| invalid(ty, &v.to_string())))
                        .collect::<Result<_, _>>()?,
                    other => return Err(invalid(ty, &other.to_string())),
                };
                for id in ids {
                    items.push(principal_spec(ty, id)?);
                }
            }
            items
        }
        _ => return Err(PolicyError::syntax("Principal is not a string or object")),
    };
    Ok(Some(PrincipalMatch { negated, items }))
}

fn invalid(ty: &str, id: &str) -> PolicyError {
    PolicyError::InvalidPrincipal(format!("\"{ty}\":\"{id}\""))
}

fn principal_spec(ty: &str, id: &str) -> Result<PrincipalSpec, PolicyError> {
    let wild = id.contains(['*', '?']);
    match ty {
        "AWS" if id == "*" => Ok(PrincipalSpec::Any),
        "AWS" if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(PrincipalSpec::Account(id.to_owned()))
        }
        "AWS" if !wild => {
            let parts: Vec<&str> = id.splitn(6, ':').collect();
            match parts.as_slice() {
                ["arn", _, "iam", "", acct, "root"] if is_account(acct) => {
                    Ok(PrincipalSpec::Account((*acct).to_owned()))
                }
                ["arn", _, "iam", "", acct, res]
                    if is_account(acct)
                        && (res.starts_with("user/") || res.starts_with("role/")) =>
                {
                    Ok(PrincipalSpec::Arn(id.to_owned()))
                }
                ["arn", _, "sts", "", acct, res]
                    if is_account(acct)
                        && (res.starts_with("assumed-role/")
                            || res.starts_with("federated-user/")) =>
                {
                    Ok(PrincipalSpec::Arn(id.to_owned()))
                }
                _ => Err(invalid(ty, id)),
            }
        }
        "Service"
            if !wild && (id.ends_with(".amazonaws.com") || id.ends_with(".amazonaws.com.cn")) =>
        {
            Ok(PrincipalSpec::Service(id.to_owned()))
        }
        "Federated" if !wild && !id.is_empty() => Ok(PrincipalSpec::Federated(id.to_owned())),
        "CanonicalUser" if !wild && !id.is_empty() => {
            Ok(PrincipalSpec::CanonicalUser(id.to_owned()))
        }
        _ => Err(invalid(ty, id)),
    }
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}
