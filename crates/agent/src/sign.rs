//! SigV4 signing of outbound requests (API calls and the channel's upgrade GET), over the
//! `aws-sigv4` crate. Owns only "which headers to add"; callers build the requests.

use std::time::SystemTime;

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;

use crate::credentials::Credentials;

/// The signing name of the ECS agent channel.
pub(crate) const SERVICE: &str = "ecs";

/// Who a signature is for: the service's signing name and the region.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scope<'a> {
    /// Signing name (`ecs`, `logs`).
    pub service: &'a str,
    /// Region.
    pub region: &'a str,
}

/// Why a request could not be signed.
#[derive(Debug, thiserror::Error)]
#[error("could not sign the request: {0}")]
pub struct SignError(String);

/// Returns the headers (`authorization`, `x-amz-date`, maybe `x-amz-security-token`) that
/// sign a request with the given method, absolute URI, headers (which must include
/// `host`) and body.
pub(crate) fn compute_signature_headers(
    credentials: &Credentials,
    scope: Scope<'_>,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    now: SystemTime,
) -> Result<Vec<(String, String)>, SignError> {
    let identity = credentials.identity();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(scope.region)
        .name(scope.service)
        .time(now)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| SignError(e.to_string()))?
        .into();
    let signable = SignableRequest::new(
        method,
        uri,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| SignError(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| SignError(e.to_string()))?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}
