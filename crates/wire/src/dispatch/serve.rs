//! The one dispatch: picks the service a request is for, reads its body up to the
//! operation's limit, verifies SigV4 (the credential scope must name the service's signing
//! name), runs the operation and encodes the answer in the protocol's envelope. It knows
//! no concrete service: the binary registers them.

use super::authorize::{self, PeerAddr, Transport};
use super::route::{classify, Addressed};
use super::Target;
use crate::envelope::{self, Envelope};
use crate::service::{Call, Caller, Input, Service, ServiceError, ServiceSpec, DEFAULT_BODY_LIMIT};
use crate::{sigv4, AwsError, Protocol};
use bytes::Bytes;
use http::request::Parts;
use http_body_util::BodyExt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

/// Who holds an access key: its secret and the caller requests signed with it act as.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The secret access key (for temporary credentials: the session's secret).
    pub secret_access_key: String,
    /// Who the requests act as.
    pub caller: Caller,
}

/// Why a key lookup refused a request's credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// No such access key id (`UnrecognizedClientException` / `InvalidClientTokenId`).
    #[error("unknown access key id")]
    Unknown,
    /// The session token is forged, altered, not the key's, or missing for a session
    /// key (`InvalidClientTokenId`).
    #[error("invalid security token")]
    InvalidToken,
    /// The session token has expired (`ExpiredTokenException` / `ExpiredToken`).
    #[error("expired security token")]
    ExpiredToken,
}

impl From<KeyError> for sigv4::SigV4Error {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Unknown => Self::UnrecognizedClient,
            KeyError::InvalidToken => Self::InvalidSecurityToken,
            KeyError::ExpiredToken => Self::ExpiredSecurityToken,
        }
    }
}

/// Looks credentials up: an access key id and the session token the request carried, if
/// any. Called once per signed request, so it must answer from memory.
pub type Keys = Arc<dyn Fn(&str, Option<&str>) -> Result<Identity, KeyError> + Send + Sync>;

/// The services of one endpoint and the keys their callers sign with.
#[derive(Clone)]
pub struct Dispatch {
    services: Vec<Arc<dyn Registered>>,
    keys: Keys,
    observer: Option<Arc<dyn Observer>>,
}

/// Told about every request the dispatch answers, once its outcome is known: where
/// request metrics hook in without `wire` knowing how they are kept.
pub trait Observer: Send + Sync + 'static {
    /// One request was answered. `service` is the service's name and `operation` its
    /// name when the request named ones the dispatch knows; `error_code` is the AWS
    /// error code it was answered with, if any.
    fn served(
        &self,
        service: Option<&'static str>,
        operation: Option<&'static str>,
        error_code: Option<&str>,
        elapsed: std::time::Duration,
    );
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

type Handled<'a> = Pin<Box<dyn Future<Output = Result<Vec<u8>, ServiceError>> + Send + 'a>>;

/// A registered service with its operation type erased.
trait Registered: Send + Sync {
    fn spec(&self) -> ServiceSpec;
    /// The operation's canonical name and body limit.
    fn lookup(&self, operation: &str) -> Option<(&'static str, usize)>;
    /// Authorizes the call (unless the caller is root), then runs the handler.
    fn run<'a>(&'a self, operation: &str, call: Call<'a>, transport: Transport) -> Handled<'a>;
}

impl<S: Service> Registered for S {
    fn spec(&self) -> ServiceSpec {
        S::SPEC
    }
    fn lookup(&self, operation: &str) -> Option<(&'static str, usize)> {
        let op = (S::OPERATIONS.from_name)(operation)?;
        Some(((S::OPERATIONS.name)(op), self.body_limit(op)))
    }
    fn run<'a>(&'a self, operation: &str, call: Call<'a>, transport: Transport) -> Handled<'a> {
        match (S::OPERATIONS.from_name)(operation) {
            Some(op) => Box::pin(async move {
                // The root is unrestricted: no mapping, no evaluation, no allocation.
                if !call.caller.is_root() {
                    let mut needs = self.authorize(op, call).await?;
                    let caller_reads = call.caller.reads_resource_tags();
                    for need in &mut needs {
                        if need.wants_resource_tags(caller_reads) {
                            need.resource_tags = self.resource_tags(need.resource()).await;
                        }
                    }
                    authorize::check(call.caller, needs, transport, authorize::now_millis())?;
                }
                self.handle(op, call).await
            }),
            None => Box::pin(std::future::ready(Err(ServiceError::NotImplemented))),
        }
    }
}

/// What the dispatch learnt of a request by the time it answered.
struct Served {
    service: Option<&'static str>,
    operation: Option<&'static str>,
    envelope: Envelope,
    result: Result<Vec<u8>, AwsError>,
}

/// The service and operation a request names before its body is read.
struct Resolved<'s> {
    service: Option<&'s dyn Registered>,
    operation: Option<(&'static str, usize)>,
}

impl Dispatch {
    /// A dispatch with no services; requests signed with a key `keys` knows are served.
    pub fn new(keys: Keys) -> Self {
        Self {
            services: Vec::new(),
            keys,
            observer: None,
        }
    }

    /// Tells `observer` about every request answered.
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Serves `service` too.
    #[must_use]
    pub fn register<S: Service>(mut self, service: S) -> Self {
        self.services.push(Arc::new(service));
        self
    }

    /// The registered services' specs, in registration order.
    pub fn specs(&self) -> Vec<ServiceSpec> {
        self.services.iter().map(|s| s.spec()).collect()
    }

    /// Answers one API request. Never fails: every refusal is an AWS error in the
    /// request's protocol, and no body is read past its limit.
    pub async fn serve<B>(&self, req: http::Request<B>) -> http::Response<Bytes>
    where
        B: http_body::Body,
        B::Error: Into<BoxError>,
    {
        let started = Instant::now();
        let request_id = uuid::Uuid::new_v4().to_string();
        let (parts, body) = req.into_parts();
        let served = self.run(&parts, body, &request_id).await;
        // The one place where service, operation, error code and elapsed time are all
        // known: request metrics hook in here.
        let error_code = served.result.as_ref().err().map(|e| e.code.as_str());
        let elapsed = started.elapsed();
        tracing::debug!(
            service = served.service.unwrap_or("unknown"),
            operation = served.operation.unwrap_or("unknown"),
            error_code = error_code.unwrap_or(""),
            elapsed_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            request_id = %request_id,
            "API request served."
        );
        if let Some(observer) = &self.observer {
            observer.served(served.service, served.operation, error_code, elapsed);
        }
        let (service, operation) = (served.service, served.operation);
        match served.result {
            Ok(body) => envelope::success(served.envelope, body, &request_id),
            Err(e) => {
                if e.status >= 500 {
                    tracing::error!(
                        service = service.unwrap_or("unknown"),
                        operation = operation.unwrap_or("unknown"),
                        error = %e,
                        "API operation failed."
                    );
                }
                envelope::error(served.envelope, &e, &request_id)
            }
        }
    }

    async fn run<B>(&self, parts: &Parts, body: B, request_id: &str) -> Served
    where
        B: http_body::Body,
        B::Error: Into<BoxError>,
    {
        let addressed = classify(parts.uri.path(), &parts.headers);
        if !super::front::path_is_normal(parts.uri.path()) {
            // The front door refuses these before routing; a dispatch served some other
            // way must not route on one reading of a path signed as another either.
            return Served {
                service: None,
                operation: None,
                envelope: addressed.envelope(),
                result: Err(super::front::path_refusal()),
            };
        }
        let resolved = self.resolve(addressed);
        let envelope = resolved
            .service
            .and_then(|s| protocol_for(&s.spec(), addressed))
            .map_or(addressed.envelope(), Envelope::from);
        let served = |result| Served {
            service: resolved.service.map(|s| s.spec().name),
            operation: resolved.operation.map(|(name, _)| name),
            envelope,
            result,
        };
        let limit = resolved.operation.map_or(DEFAULT_BODY_LIMIT, |(_, l)| l);
        let query = envelope.is_xml();
        let transport = Transport {
            peer: parts.extensions.get::<PeerAddr>().map(|p| p.0.ip()),
            secure: false,
            query,
        };
        if let Addressed::Cbor { .. } = addressed {
            if let Err(e) = check_rpc_v2_headers(&parts.headers) {
                return served(Err(e));
            }
        }
        let (body, verified, caller) = match self.read_and_verify(parts, body, limit, query).await {
            Ok(v) => v,
            Err(e) => return served(Err(e)),
        };
        // The signature covers the body as sent; the operation reads it decoded.
        let body = match decode_content(&parts.headers, body, limit) {
            Ok(b) => b,
            Err(e) => return served(Err(e)),
        };
        let call = |input| Call {
            input,
            caller: &caller,
            request_id,
        };
        match addressed {
            Addressed::Query => {
                self.run_query(&body, &verified, &caller, request_id, transport)
                    .await
            }
            Addressed::Json { target, .. } => {
                let call = call(Input::Json(&body));
                served(
                    self.run_named(
                        &resolved,
                        (target, target_name(target)),
                        &verified,
                        call,
                        transport,
                    )
                    .await,
                )
            }
            Addressed::Cbor { operation, .. } => {
                let call = call(Input::Cbor(&body));
                served(
                    self.run_named(
                        &resolved,
                        (None, Some(operation)),
                        &verified,
                        call,
                        transport,
                    )
                    .await,
                )
            }
        }
    }

    /// The service and operation named by the target header or the CBOR path.
    fn resolve(&self, addressed: Addressed<'_>) -> Resolved<'_> {
        let (service, operation) = match addressed {
            Addressed::Query => (None, None),
            Addressed::Json { target, .. } => match target.and_then(Target::parse) {
                Some(t) => (self.by_target_prefix(t.prefix), Some(t.operation)),
                None => (None, None),
            },
            Addressed::Cbor { service, operation } => (
                self.find(|p| matches!(p, Protocol::RpcV2Cbor { service: s } if s == service)),
                Some(operation),
            ),
        };
        Resolved {
            service,
            operation: service.zip(operation).and_then(|(s, op)| s.lookup(op)),
        }
    }

    fn by_target_prefix(&self, prefix: &str) -> Option<&dyn Registered> {
        self.find(
            |p| matches!(p, Protocol::AwsJson { target_prefix, .. } if target_prefix == prefix),
        )
    }

    fn find(&self, speaks: impl Fn(Protocol) -> bool) -> Option<&dyn Registered> {
        self.services
            .iter()
            .find(|s| s.spec().protocols.iter().any(|p| speaks(*p)))
            .map(|s| s.as_ref())
    }

    /// Reads a request's body (at most `limit` bytes) and verifies its signature: the key,
    /// clock and signed headers are checked before any body is read, so an unknown key
    /// never makes the server take a body. For a server that must know who signed a
    /// request before it picks the dispatch to serve it; `query` words failures as query
    /// protocols do.
    pub async fn read_and_verify<B>(
        &self,
        parts: &Parts,
        body: B,
        limit: usize,
        query: bool,
    ) -> Result<(Bytes, sigv4::Verified, Caller), AwsError>
    where
        B: http_body::Body,
        B::Error: Into<BoxError>,
    {
        let too_large = || {
            AwsError::client(
                "SerializationException",
                format!("The request body is larger than the {limit}-byte limit."),
            )
            .with_status(413)
        };
        // The key, the clock and the signed headers are checked before any body is read:
        // an unknown key never makes the server take a body, and the limit below (from
        // the operation `x-amz-target` names) is trusted only once that header is known
        // to be signed.
        let checked = sigv4::check_key(
            &signed_request(parts, &[]),
            |id, token| self.lookup(id, token),
            now_secs(),
        )
        .map_err(|e| refused(&e, query))?;
        let declared = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let body = http_body_util::Limited::new(body, limit)
            .collect()
            .await
            .map_err(|_| too_large())?
            .to_bytes();
        let (verified, caller) =
            sigv4::verify_checked(&signed_request(parts, &body), checked, now_secs())
                .map_err(|e| refused(&e, query))?;
        Ok((body, verified, caller))
    }

    /// Verifies a request's SigV4 signature and, when `signing_name` is given, that its
    /// credential scope names that service; the caller it identifies. Failures are worded
    /// as JSON protocols word them.
    pub fn authenticate(
        &self,
        method: &http::Method,
        uri: &http::Uri,
        headers: &http::HeaderMap,
        body: &[u8],
        signing_name: Option<&str>,
    ) -> Result<(sigv4::Verified, Caller), AwsError> {
        let (verified, caller) = self.verify(method, uri, headers, body, false)?;
        if let Some(expected) = signing_name {
            check_scope(&verified, expected)?;
        }
        Ok((verified, caller))
    }

    /// Verifies a request's signature; `query` words failures as query protocols do.
    fn verify(
        &self,
        method: &http::Method,
        uri: &http::Uri,
        headers: &http::HeaderMap,
        body: &[u8],
        query: bool,
    ) -> Result<(sigv4::Verified, Caller), AwsError> {
        let signed = sigv4::SignedRequest {
            method: method.as_str(),
            path: uri.path(),
            query: uri.query(),
            headers,
            body,
        };
        sigv4::verify_with(&signed, |id, token| self.lookup(id, token), now_secs())
            .map_err(|e| refused(&e, query))
    }

    /// The secret and caller of an access key (and session token).
    fn lookup(&self, id: &str, token: Option<&str>) -> Result<(String, Caller), sigv4::SigV4Error> {
        (self.keys)(id, token)
            .map(|i| (i.secret_access_key, i.caller))
            .map_err(sigv4::SigV4Error::from)
    }

    /// A JSON or CBOR request, whose service and operation were resolved from its headers
    /// or path.
    async fn run_named(
        &self,
        resolved: &Resolved<'_>,
        (target, operation): (Option<&str>, Option<&str>),
        verified: &sigv4::Verified,
        call: Call<'_>,
        transport: Transport,
    ) -> Result<Vec<u8>, AwsError> {
        let Some(service) = resolved.service else {
            return Err(no_service(target, call.input, verified));
        };
        let spec = service.spec();
        check_scope(verified, spec.signing_name)?;
        let name = operation.unwrap_or_default();
        if resolved.operation.is_none() {
            return Err(unknown_operation(&spec, name));
        }
        answer(&spec, name, service.run(name, call, transport).await)
    }

    /// A query request: its service and operation are named in the form body.
    async fn run_query(
        &self,
        body: &[u8],
        verified: &sigv4::Verified,
        caller: &Caller,
        request_id: &str,
        transport: Transport,
    ) -> Served {
        let mut served = Served {
            service: None,
            operation: None,
            envelope: Envelope::Query,
            result: Ok(Vec::new()),
        };
        let params = match crate::query::parse_form(body) {
            Ok(p) => p,
            Err(e) => {
                served.result = Err(AwsError::client(e.aws_code(), e.to_string()));
                return served;
            }
        };
        let version = params.version();
        let named = |p: Protocol| match p {
            Protocol::AwsQuery { version: v } | Protocol::Ec2Query { version: v } => {
                Some(v) == version
            }
            _ => false,
        };
        let Some(service) = self.find(named) else {
            served.result = Err(AwsError::client(
                "InvalidAction",
                "This endpoint does not serve that query-protocol action yet.",
            ));
            return served;
        };
        let spec = service.spec();
        served.service = Some(spec.name);
        if let Some(p) = spec.protocols.iter().copied().find(|p| named(*p)) {
            served.envelope = Envelope::from(p);
        }
        let action = params.action().unwrap_or("");
        served.result = match (
            check_scope(verified, spec.signing_name),
            service.lookup(action),
        ) {
            (Err(e), _) => Err(e),
            (Ok(()), None) => Err(unknown_operation(&spec, action)),
            (Ok(()), Some((name, _))) => {
                served.operation = Some(name);
                let call = Call {
                    input: Input::Query(&params),
                    caller,
                    request_id,
                };
                answer(&spec, name, service.run(name, call, transport).await)
            }
        };
        served
    }
}

/// The body with its `Content-Encoding` undone: `gzip` (what botocore sends for models
/// with `requestcompression`, e.g. CloudWatch PutMetricData over 10 KB) is inflated up to
/// `limit` bytes; `identity` or none passes through; anything else is refused.
fn decode_content(headers: &http::HeaderMap, body: Bytes, limit: usize) -> Result<Bytes, AwsError> {
    use std::io::Read;
    let encoding = headers
        .get(http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or("");
    if encoding.is_empty() || encoding.eq_ignore_ascii_case("identity") {
        return Ok(body);
    }
    if !encoding.eq_ignore_ascii_case("gzip") {
        return Err(AwsError::client(
            "SerializationException",
            format!("The Content-Encoding {encoding} is not supported: send gzip or none."),
        )
        .with_status(415));
    }
    let mut out = Vec::new();
    let limit_u64 = u64::try_from(limit).unwrap_or(u64::MAX);
    flate2::read::GzDecoder::new(body.as_ref())
        .take(limit_u64.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| {
            AwsError::client(
                "SerializationException",
                format!("The gzip request body does not decode: {e}"),
            )
        })?;
    if out.len() > limit {
        return Err(AwsError::client(
            "SerializationException",
            format!("The request body is larger than the {limit}-byte limit."),
        )
        .with_status(413));
    }
    Ok(Bytes::from(out))
}

/// Smithy RPC v2 CBOR requests must say `Smithy-Protocol: rpc-v2-cbor` and must not carry
/// `X-Amz-Target` (the protocol's rules: a client mixing protocols is refused, not guessed).
fn check_rpc_v2_headers(headers: &http::HeaderMap) -> Result<(), AwsError> {
    let protocol = headers.get("smithy-protocol").and_then(|v| v.to_str().ok());
    if protocol != Some("rpc-v2-cbor") {
        return Err(AwsError::client(
            "SerializationException",
            "Smithy RPC v2 CBOR requests must carry the header Smithy-Protocol: rpc-v2-cbor.",
        ));
    }
    if headers.contains_key("x-amz-target") {
        return Err(AwsError::client(
            "SerializationException",
            "Smithy RPC v2 CBOR requests must not carry X-Amz-Target.",
        ));
    }
    Ok(())
}

/// The request as the signature verifier reads it, with `body`.
fn signed_request<'a>(parts: &'a Parts, body: &'a [u8]) -> sigv4::SignedRequest<'a> {
    sigv4::SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        body,
    }
}

/// A signature refusal as an AWS error; `query` words it as query protocols do.
fn refused(e: &sigv4::SigV4Error, query: bool) -> AwsError {
    tracing::debug!(error = %e, "Request refused by signature verification.");
    let code = if query {
        e.aws_query_code()
    } else {
        e.aws_code()
    };
    AwsError::client(code, e.to_string()).with_status(e.status(query))
}

/// The operation named by an `X-Amz-Target` value.
fn target_name(target: Option<&str>) -> Option<&str> {
    target.and_then(Target::parse).map(|t| t.operation)
}

/// The protocol of `spec` a request addressed this way speaks.
fn protocol_for(spec: &ServiceSpec, addressed: Addressed<'_>) -> Option<Protocol> {
    spec.protocols.iter().copied().find(|p| {
        matches!(
            (p, addressed),
            (Protocol::AwsJson { .. }, Addressed::Json { .. })
                | (Protocol::AwsQuery { .. }, Addressed::Query)
                | (Protocol::Ec2Query { .. }, Addressed::Query)
                | (Protocol::RpcV2Cbor { .. }, Addressed::Cbor { .. })
        )
    })
}

fn answer(
    spec: &ServiceSpec,
    operation: &str,
    result: Result<Vec<u8>, ServiceError>,
) -> Result<Vec<u8>, AwsError> {
    result.map_err(|e| match e {
        ServiceError::Aws(e) => e,
        ServiceError::NotImplemented => not_implemented(spec, operation),
    })
}

fn check_scope(verified: &sigv4::Verified, signing_name: &str) -> Result<(), AwsError> {
    if verified.service == signing_name {
        Ok(())
    } else {
        Err(wrong_service(signing_name))
    }
}

/// The error for a request signed for another service than the one it names.
pub fn wrong_service(expected: &str) -> AwsError {
    AwsError::client(
        "InvalidSignatureException",
        format!("Credential should be scoped to correct service: '{expected}'."),
    )
}

fn uses_query(spec: &ServiceSpec) -> bool {
    spec.protocols
        .iter()
        .all(|p| matches!(p, Protocol::AwsQuery { .. } | Protocol::Ec2Query { .. }))
}

/// A name the service's model does not have: `InvalidAction` for query services,
/// `UnknownOperationException` otherwise, as AWS answers.
pub fn unknown_operation(spec: &ServiceSpec, operation: &str) -> AwsError {
    if uses_query(spec) {
        AwsError::client(
            "InvalidAction",
            format!(
                "The action '{operation}' is not valid for this web service ({} as served by Stevedore).",
                spec.title
            ),
        )
    } else {
        AwsError::client(
            "UnknownOperationException",
            format!(
                "Operation {operation} is not supported by this {} endpoint.",
                spec.title
            ),
        )
    }
}

/// An operation the service's model has but Stevedore does not serve: the same codes as
/// an unknown name (clients and compat tests expect them), saying so.
pub fn not_implemented(spec: &ServiceSpec, operation: &str) -> AwsError {
    let message = format!(
        "Operation {operation} of {} is not implemented by Stevedore yet.",
        spec.title
    );
    let code = if uses_query(spec) {
        "InvalidAction"
    } else {
        "UnknownOperationException"
    };
    AwsError::client(code, message)
}

/// A JSON or CBOR request naming no registered service.
fn no_service(target: Option<&str>, input: Input<'_>, verified: &sigv4::Verified) -> AwsError {
    match (input, target.and_then(Target::parse)) {
        (Input::Cbor(_), _) => AwsError::client(
            "UnknownOperationException",
            "This endpoint serves no service over the Smithy RPC v2 CBOR protocol yet.",
        ),
        (_, None) => AwsError::client(
            "UnknownOperationException",
            "The request names no operation: send an X-Amz-Target header (AWS JSON protocols) or an Action parameter (query protocols).",
        ),
        (_, Some(t)) => AwsError::client(
            "UnknownOperationException",
            format!(
                "Operation {}.{} is not served by this endpoint (signed for service '{}').",
                t.prefix, t.operation, verified.service
            ),
        ),
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
