//! Authorization of one call: each [`Access`] a service says an operation needs is
//! evaluated with [`policy::evaluate`] against the caller's identity policies (and the
//! resource's policy where the service supplies one), with the global condition keys only
//! the dispatch knows: the time, the peer address and whether the request came over TLS.
//! The account root never gets here (the dispatch skips it: a fast path).

use crate::service::{Access, Caller};
use crate::AwsError;
use std::net::{IpAddr, SocketAddr};

/// The address a request came from, put in its extensions by the HTTP server so the
/// dispatch can fill `aws:SourceIp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// What the dispatch knows of a request's transport, for condition keys and the
/// denial's shape.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Transport {
    /// The peer's address (`aws:SourceIp`), when the server passed it.
    pub peer: Option<IpAddr>,
    /// Whether the request came over TLS (`aws:SecureTransport`).
    pub secure: bool,
    /// Whether denials are worded as query protocols word them.
    pub query: bool,
}

/// Evaluates every access; the first denied one answers AWS's access-denied error in the
/// protocol's shape. An empty list is refused too: nothing is silently allowed.
pub(crate) fn check(
    caller: &Caller,
    needs: Vec<Access>,
    transport: Transport,
    now_millis: i64,
) -> Result<(), AwsError> {
    if needs.is_empty() {
        return Err(AwsError::server(
            "InternalFailure",
            "The operation maps to no IAM action, so it is refused.",
        ));
    }
    let mut identity: Option<Vec<&policy::Policy>> = None;
    let allowed = caller.allowed();
    for need in needs {
        if need.is_public() || allowed.is_some_and(|memo| memo.allows(&need)) {
            continue;
        }
        let remember = allowed.filter(|_| !need.has_resource_policy());
        let (prefix, action) = (need.prefix(), need.action_name());
        let (mut req, resource_policy) = need.into_request(caller.shared_principal());
        req = req
            .at_epoch_millis(now_millis)
            .secure_transport(transport.secure);
        if let Some(ip) = transport.peer {
            req = req.source_ip(ip);
        }
        let resource: Vec<&policy::Policy> = resource_policy.as_deref().into_iter().collect();
        let set = policy::PolicySet {
            identity: identity.get_or_insert_with(|| caller.policies().iter().collect()),
            resource: &resource,
            session: None,
        };
        // A resource names its account in its ARN; `*` and non-ARNs are the caller's own.
        let owner = req
            .resource()
            .split(':')
            .nth(4)
            .filter(|a| !a.is_empty())
            .unwrap_or(caller.account())
            .to_owned();
        let decision = policy::evaluate_for(&req, set, &owner);
        if let Some(denied) = policy::AccessDenied::for_decision(&req, &decision) {
            tracing::debug!(
                principal = caller.principal_arn(),
                action = req.action(),
                resource = req.resource(),
                "Request denied by policy."
            );
            return Err(access_denied(&denied.to_string(), transport.query));
        }
        if let Some(memo) = remember {
            memo.remember(prefix, action, req.resource());
        }
    }
    Ok(())
}

/// Authorizes `needs` for `caller` on resources a service reached in another account
/// of this server (a repository shared by its policy): every access is evaluated, the
/// caller's root too, since another account's root is a stranger there and needs the
/// resource policy's allow. A denial answers `AccessDeniedException`.
pub fn authorize_foreign(
    caller: &Caller,
    needs: Vec<Access>,
    peer: Option<IpAddr>,
) -> Result<(), AwsError> {
    let transport = Transport {
        peer,
        secure: false,
        query: false,
    };
    check(caller, needs, transport, now_millis())
}

/// Authorizes `needs` for `caller` outside an API call (a route of Stevedore's own, such
/// as the agent channel's upgrade), as the dispatch would: the root passes, anyone else
/// needs every access allowed. A denial answers `AccessDeniedException`.
pub fn authorize(
    caller: &Caller,
    needs: Vec<Access>,
    peer: Option<IpAddr>,
) -> Result<(), AwsError> {
    if caller.is_root() {
        return Ok(());
    }
    let transport = Transport {
        peer,
        secure: false,
        query: false,
    };
    check(caller, needs, transport, now_millis())
}

/// AWS's denial: `AccessDenied` (403) in query protocols, `AccessDeniedException`
/// (400, as ECS, ECR and Logs answer it) in JSON and CBOR ones.
pub fn access_denied(message: &str, query: bool) -> AwsError {
    if query {
        AwsError::client("AccessDenied", message).with_status(403)
    } else {
        AwsError::client("AccessDeniedException", message)
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
