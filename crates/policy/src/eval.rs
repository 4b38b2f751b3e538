//! AWS's policy evaluation logic within one account.
//!
//! 1. A matching `Deny` in any policy (identity, session or resource) is final.
//! 2. The account's root user is otherwise allowed.
//! 3. A resource policy `Allow` that names the caller (its ARN, `*`, or for a role
//!    session the role's ARN) allows on its own; one that names only the account delegates
//!    to the account's identity policies and grants nothing by itself.
//! 4. Otherwise an identity policy `Allow` allows; when the caller is a session with
//!    session policies, they must allow too (the permissions are the intersection).
//! 5. Otherwise the request is implicitly denied.
//!
//! Across accounts ([`evaluate_for`] with a resource of another account than the
//! caller's), both sides must allow: the resource policy must name the caller or its
//! account, and the caller's own account must allow it (its identity policies; its root
//! needs none). A Deny anywhere is still final.

use std::sync::Arc;

use crate::context::{Principal, PrincipalKind, Request};
use crate::document::{Effect, Policy, PrincipalMatch, PrincipalSpec, Statement};

/// The policies that apply to one request.
#[derive(Debug, Clone, Copy, Default)]
pub struct PolicySet<'a> {
    /// The caller's identity policies (inline, attached, and its groups').
    pub identity: &'a [&'a Policy],
    /// The target resource's policy (a repository policy, a role's trust policy).
    pub resource: &'a [&'a Policy],
    /// Session policies of a role session, if it was given any: `Some(&[])` denies all.
    pub session: Option<&'a [&'a Policy]>,
}

/// Which kind of policy a statement came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicySource {
    /// An identity-based policy.
    Identity,
    /// A resource-based policy.
    Resource,
    /// A session policy.
    Session,
}

/// The statement that decided, for messages and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRef {
    /// Where the policy came from.
    pub source: PolicySource,
    /// Index of the policy in its [`PolicySet`] slice.
    pub policy: usize,
    /// The policy's label ([`Policy::with_label`]).
    pub label: Option<Arc<str>>,
    /// Index of the statement in its policy.
    pub statement: usize,
    /// The statement's `Sid`.
    pub sid: Option<Arc<str>>,
}

/// Why a request is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedBy {
    /// The caller is the account's root user.
    Root,
    /// This `Allow` statement.
    Statement(StatementRef),
}

/// Which `Allow` an implicitly denied request lacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// No identity-based (or resource-based) policy allows.
    IdentityAllow,
    /// Identity policies allow, but no session policy does.
    SessionAllow,
    /// Across accounts: no resource-based policy allows the caller.
    ResourceAllow,
}

/// The outcome of evaluating a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A `Deny` statement matched.
    ExplicitDeny(StatementRef),
    /// Allowed.
    Allow(AllowedBy),
    /// Nothing allowed.
    ImplicitDeny(Missing),
}

impl Decision {
    /// Whether the request may proceed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allow(_))
    }
}

/// How a resource policy statement's principal reaches the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Reach {
    /// Names the caller's account only: delegates to identity policies.
    Account,
    /// Names the role the caller's session belongs to.
    ViaRole,
    /// Names the caller (or anyone).
    Direct,
}

/// Evaluates `req` against `set`, the resource being in the caller's own account.
pub fn evaluate(req: &Request, set: PolicySet<'_>) -> Decision {
    let found = match gather(req, set) {
        Ok(found) => found,
        Err(deny) => return Decision::ExplicitDeny(deny),
    };
    if *req.principal().kind() == PrincipalKind::Root {
        return Decision::Allow(AllowedBy::Root);
    }
    let session_ok = set.session.is_none() || found.session_allow.is_some();
    match found.resource_allow {
        Some((Reach::Direct, r)) => return Decision::Allow(AllowedBy::Statement(r)),
        Some((Reach::ViaRole, r)) if session_ok => return Decision::Allow(AllowedBy::Statement(r)),
        _ => {}
    }
    match found.identity_allow {
        Some(_) if !session_ok => Decision::ImplicitDeny(Missing::SessionAllow),
        Some(r) => Decision::Allow(AllowedBy::Statement(r)),
        None => Decision::ImplicitDeny(Missing::IdentityAllow),
    }
}

/// Evaluates `req` against `set` for a resource owned by `resource_account`: within the
/// caller's account as [`evaluate`]; across accounts, the resource policy and the
/// caller's own account must both allow.
pub fn evaluate_for(req: &Request, set: PolicySet<'_>, resource_account: &str) -> Decision {
    if resource_account == req.principal().account() {
        return evaluate(req, set);
    }
    let found = match gather(req, set) {
        Ok(found) => found,
        Err(deny) => return Decision::ExplicitDeny(deny),
    };
    let Some((_, by_resource)) = found.resource_allow else {
        return Decision::ImplicitDeny(Missing::ResourceAllow);
    };
    if *req.principal().kind() == PrincipalKind::Root {
        return Decision::Allow(AllowedBy::Statement(by_resource));
    }
    let session_ok = set.session.is_none() || found.session_allow.is_some();
    match found.identity_allow {
        Some(_) if !session_ok => Decision::ImplicitDeny(Missing::SessionAllow),
        Some(r) => Decision::Allow(AllowedBy::Statement(r)),
        None => Decision::ImplicitDeny(Missing::IdentityAllow),
    }
}

/// The allowing statements of each kind that match a request.
struct Found {
    identity_allow: Option<StatementRef>,
    session_allow: Option<StatementRef>,
    resource_allow: Option<(Reach, StatementRef)>,
}

/// Every statement of `set` that matches `req`: the first matching Deny (as `Err`), else
/// the allowing statements of each kind (the resource one reaching the caller best).
fn gather(req: &Request, set: PolicySet<'_>) -> Result<Found, StatementRef> {
    let mut identity_allow = None;
    let mut session_allow = None;
    let mut resource_allow: Option<(Reach, StatementRef)> = None;

    for (source, policies) in [
        (PolicySource::Identity, set.identity),
        (PolicySource::Session, set.session.unwrap_or(&[])),
    ] {
        for (pi, policy) in policies.iter().enumerate() {
            for (si, st) in policy.statements().iter().enumerate() {
                if !applies(st, req) {
                    continue;
                }
                let r = || statement_ref(source, pi, policy, si, st);
                match (st.effect, source) {
                    (Effect::Deny, _) => return Err(r()),
                    (Effect::Allow, PolicySource::Session) => {
                        session_allow = session_allow.or_else(|| Some(r()))
                    }
                    (Effect::Allow, _) => identity_allow = identity_allow.or_else(|| Some(r())),
                }
            }
        }
    }
    for (pi, policy) in set.resource.iter().enumerate() {
        for (si, st) in policy.statements().iter().enumerate() {
            let Some(reach) = principal_reach(st.principal.as_ref(), req.principal()) else {
                continue;
            };
            if !applies(st, req) {
                continue;
            }
            let r = statement_ref(PolicySource::Resource, pi, policy, si, st);
            if st.effect == Effect::Deny {
                return Err(r);
            }
            if resource_allow
                .as_ref()
                .is_none_or(|(best, _)| reach > *best)
            {
                resource_allow = Some((reach, r));
            }
        }
    }

    Ok(Found {
        identity_allow,
        session_allow,
        resource_allow,
    })
}

fn statement_ref(
    source: PolicySource,
    policy: usize,
    p: &Policy,
    statement: usize,
    st: &Statement,
) -> StatementRef {
    StatementRef {
        source,
        policy,
        label: p.label_arc(),
        statement,
        sid: st.sid.clone(),
    }
}

/// Whether a statement's action, resource and conditions match (principal aside).
fn applies(st: &Statement, req: &Request) -> bool {
    let action = req.action_lower();
    let hit = st.action.items.matches(action, req);
    if hit == st.action.negated {
        return false;
    }
    if let Some(res) = &st.resource {
        let hit = res.items.iter().any(|p| p.matches(req.resource(), req));
        if hit == res.negated {
            return false;
        }
    }
    st.conditions.iter().all(|c| c.holds(req))
}

/// How a resource policy statement's `Principal`/`NotPrincipal` reaches `p`, if at all.
fn principal_reach(m: Option<&PrincipalMatch>, p: &Principal) -> Option<Reach> {
    let m = m?;
    let best = m.items.iter().filter_map(|s| spec_reach(s, p)).max();
    match (m.negated, best) {
        (false, best) => best,
        (true, None) => Some(Reach::Direct),
        (true, Some(_)) => None,
    }
}

fn spec_reach(spec: &PrincipalSpec, p: &Principal) -> Option<Reach> {
    let kind = p.kind();
    match spec {
        PrincipalSpec::Any => Some(Reach::Direct),
        PrincipalSpec::Account(a) => {
            (*a == p.account() && !matches!(kind, PrincipalKind::Service)).then_some(Reach::Account)
        }
        PrincipalSpec::Arn(arn) if *arn == p.arn() => Some(Reach::Direct),
        PrincipalSpec::Arn(arn) => match kind {
            PrincipalKind::AssumedRole { role_arn } if role_arn == arn => Some(Reach::ViaRole),
            _ => None,
        },
        PrincipalSpec::Service(s) => (matches!(kind, PrincipalKind::Service)
            && s.eq_ignore_ascii_case(p.arn()))
        .then_some(Reach::Direct),
        PrincipalSpec::Federated(f) => {
            (matches!(kind, PrincipalKind::Federated) && *f == p.arn()).then_some(Reach::Direct)
        }
        PrincipalSpec::CanonicalUser(_) => None,
    }
}
