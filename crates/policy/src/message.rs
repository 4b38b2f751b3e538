//! AWS's `AccessDenied` message: "User: ARN is not authorized to perform: ACTION on
//! resource: RESOURCE because no identity-based policy allows the ACTION action", or
//! "... with an explicit deny in an identity-based policy" (resource-based, session).
//!
//! AWS sometimes appends the denying policy's ARN or an authorization id; this builder
//! writes the plain form, which every AWS service uses.

use std::fmt;

use crate::context::Request;
use crate::eval::{Decision, Missing, PolicySource};

/// Why a request was denied, as the message words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// "because no identity-based policy allows the ACTION action".
    NoIdentityPolicy,
    /// "because no resource-based policy allows the ACTION action".
    NoResourcePolicy,
    /// "because no session policy allows the ACTION action".
    NoSessionPolicy,
    /// "with an explicit deny in a(n) ... policy".
    ExplicitDeny(PolicySource),
}

impl DenyReason {
    /// The reason for a denying decision; `None` when it allows.
    pub fn of(decision: &Decision) -> Option<Self> {
        match decision {
            Decision::Allow(_) => None,
            Decision::ExplicitDeny(r) => Some(Self::ExplicitDeny(r.source)),
            Decision::ImplicitDeny(Missing::IdentityAllow) => Some(Self::NoIdentityPolicy),
            Decision::ImplicitDeny(Missing::SessionAllow) => Some(Self::NoSessionPolicy),
            Decision::ImplicitDeny(Missing::ResourceAllow) => Some(Self::NoResourcePolicy),
        }
    }
}

/// An `AccessDenied` message; `Display` writes AWS's wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessDenied<'a> {
    /// The caller's ARN (`arn:aws:sts::ACCT:assumed-role/R/S` for sessions).
    pub principal_arn: &'a str,
    /// The action, as `service:Operation`.
    pub action: &'a str,
    /// The resource ARN, or `*`.
    pub resource: &'a str,
    /// Why.
    pub reason: DenyReason,
}

impl<'a> AccessDenied<'a> {
    /// The message for `req` denied by `decision`; `None` when `decision` allows.
    pub fn for_decision(req: &'a Request, decision: &Decision) -> Option<Self> {
        Some(Self {
            principal_arn: req.principal().arn(),
            action: req.action(),
            resource: req.resource(),
            reason: DenyReason::of(decision)?,
        })
    }
}

impl fmt::Display for AccessDenied<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "User: {} is not authorized to perform: {} on resource: {} ",
            self.principal_arn, self.action, self.resource
        )?;
        let because = |kind: &str, f: &mut fmt::Formatter<'_>| {
            write!(
                f,
                "because no {kind} policy allows the {} action",
                self.action
            )
        };
        match self.reason {
            DenyReason::NoIdentityPolicy => because("identity-based", f),
            DenyReason::NoResourcePolicy => because("resource-based", f),
            DenyReason::NoSessionPolicy => because("session", f),
            DenyReason::ExplicitDeny(PolicySource::Identity) => {
                f.write_str("with an explicit deny in an identity-based policy")
            }
            DenyReason::ExplicitDeny(PolicySource::Resource) => {
                f.write_str("with an explicit deny in a resource-based policy")
            }
            DenyReason::ExplicitDeny(PolicySource::Session) => {
                f.write_str("with an explicit deny in a session policy")
            }
        }
    }
}
