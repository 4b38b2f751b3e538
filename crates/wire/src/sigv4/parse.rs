//! Reading the signature's parts out of a request: the `Authorization` header and the
//! `X-Amz-*` parameters of a presigned URL. Parsing borrows from the request so the hot
//! path allocates nothing; [`AuthorizationHeader`] is the owned form for callers and fuzzing.

use std::borrow::Cow;

use super::SigV4Error;

/// The only signing algorithm accepted.
pub(crate) const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const TERMINATOR: &str = "aws4_request";
const CREDENTIAL_FORM: &str = "<AccessKeyId>/<YYYYMMDD>/<region>/<service>/aws4_request";

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationHeader {
    /// The access key id, first element of `Credential`.
    pub access_key_id: String,
    /// The scope date, `YYYYMMDD`.
    pub date: String,
    /// The scope region, e.g. `us-east-1`.
    pub region: String,
    /// The scope service (signing name), e.g. `ecs`.
    pub service: String,
    /// The `SignedHeaders` names, in the order given.
    pub signed_headers: Vec<String>,
    /// The `Signature` value as given (normally 64 lowercase hex digits).
    pub signature: String,
}

/// Parses the value of an `Authorization` header that uses `AWS4-HMAC-SHA256`.
///
/// Spaces around the comma-separated parameters are optional. The signature itself is not
/// checked here beyond being present; see [`super::verify`].
pub fn parse_authorization(value: &str) -> Result<AuthorizationHeader, SigV4Error> {
    let parts = AuthParts::parse(value)?;
    Ok(AuthorizationHeader {
        access_key_id: parts.credential.access_key_id.to_owned(),
        date: parts.credential.date.to_owned(),
        region: parts.credential.region.to_owned(),
        service: parts.credential.service.to_owned(),
        signed_headers: parts.signed_headers.split(';').map(str::to_owned).collect(),
        signature: parts.signature.to_owned(),
    })
}

/// The region and signing name of a request's credential scope, as claimed before the
/// signature is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedScope<'a> {
    /// The access key id that signed (claims to have signed) the request.
    pub access_key_id: Cow<'a, str>,
    /// The session token sent with it (temporary credentials), if any.
    pub session_token: Option<Cow<'a, str>>,
    /// The scope's region, e.g. `us-east-2`.
    pub region: Cow<'a, str>,
    /// The scope's signing name, e.g. `ecs`.
    pub service: Cow<'a, str>,
}

/// The credential scope a request claims, read before its signature is checked (a front
/// end picks the region's services with it; the signature, verified later against the
/// same scope, makes it binding). From the `Authorization` header, else a presigned
/// URL's `X-Amz-Credential`; `None` when neither parses (the dispatch then reports why).
/// Borrows from the header on the common path.
pub fn claimed_scope<'a>(
    query: Option<&'a str>,
    headers: &'a http::HeaderMap,
) -> Option<ClaimedScope<'a>> {
    if let Some(value) = headers.get(http::header::AUTHORIZATION) {
        let credential = AuthParts::parse(value.to_str().ok()?).ok()?.credential;
        return Some(ClaimedScope {
            access_key_id: Cow::Borrowed(credential.access_key_id),
            session_token: headers
                .get("x-amz-security-token")
                .and_then(|t| t.to_str().ok())
                .map(Cow::Borrowed),
            region: Cow::Borrowed(credential.region),
            service: Cow::Borrowed(credential.service),
        });
    }
    let query = query.filter(|q| query_has_algorithm(q))?;
    let parts = PresignedParts::parse(query).ok()?;
    let credential = Credential::parse(&parts.credential).ok()?;
    Some(ClaimedScope {
        access_key_id: Cow::Owned(credential.access_key_id.to_owned()),
        session_token: parts.security_token.clone(),
        region: Cow::Owned(credential.region.to_owned()),
        service: Cow::Owned(credential.service.to_owned()),
    })
}

/// The credential scope: `<AccessKeyId>/<date>/<region>/<service>/aws4_request`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Credential<'a> {
    pub(crate) access_key_id: &'a str,
    pub(crate) date: &'a str,
    pub(crate) region: &'a str,
    pub(crate) service: &'a str,
}

impl<'a> Credential<'a> {
    pub(crate) fn parse(value: &'a str) -> Result<Credential<'a>, SigV4Error> {
        let mut it = value.split('/');
        let (Some(access_key_id), Some(date), Some(region), Some(service), Some(terminator), None) = (
            it.next(),
            it.next(),
            it.next(),
            it.next(),
            it.next(),
            it.next(),
        ) else {
            return Err(malformed_credential(format!(
                "Credential must have the form {CREDENTIAL_FORM}, got '{value}'."
            )));
        };
        if access_key_id.is_empty() {
            return Err(malformed_credential(format!(
                "Credential must start with an access key id: {CREDENTIAL_FORM}, got '{value}'."
            )));
        }
        if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed_credential(format!(
                "Credential should be scoped to a valid date (YYYYMMDD), not '{date}'."
            )));
        }
        if region.is_empty() {
            return Err(malformed_credential(
                "Credential should be scoped to a valid region, not ''.".to_owned(),
            ));
        }
        if service.is_empty() {
            return Err(malformed_credential(
                "Credential should be scoped to a valid service, not ''.".to_owned(),
            ));
        }
        if terminator != TERMINATOR {
            return Err(malformed_credential(format!(
                "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{terminator}'."
            )));
        }
        Ok(Credential {
            access_key_id,
            date,
            region,
            service,
        })
    }
}

fn malformed_credential(reason: String) -> SigV4Error {
    SigV4Error::MalformedCredential { reason }
}

/// `SignedHeaders` must be non-empty lowercase header names: lowercase because the canonical
/// request uses them verbatim and AWS's signers always lowercase.
pub(crate) fn check_signed_headers(value: &str) -> Result<(), SigV4Error> {
    let valid_name = |name: &str| {
        !name.is_empty()
            && name.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
            })
    };
    if value.split(';').all(valid_name) {
        Ok(())
    } else {
        Err(SigV4Error::MalformedSignedHeaders {
            signed_headers: value.to_owned(),
        })
    }
}

/// The `Authorization` header, borrowed from the request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AuthParts<'a> {
    pub(crate) credential: Credential<'a>,
    pub(crate) signed_headers: &'a str,
    pub(crate) signature: &'a str,
}

impl<'a> AuthParts<'a> {
    pub(crate) fn parse(value: &'a str) -> Result<AuthParts<'a>, SigV4Error> {
        let value_trimmed = value.trim_matches(is_space);
        let (algorithm, params) = value_trimmed
            .split_once(is_space)
            .unwrap_or((value_trimmed, ""));
        if algorithm != ALGORITHM {
            return Err(SigV4Error::UnsupportedAlgorithm {
                algorithm: algorithm.to_owned(),
            });
        }
        let mut credential = None;
        let mut signed_headers = None;
        let mut signature = None;
        for pair in params.split(',') {
            let pair = pair.trim_matches(is_space);
            if pair.is_empty() {
                continue;
            }
            let Some((key, val)) = pair.split_once('=') else {
                return Err(SigV4Error::MalformedAuthorizationPair {
                    pair: pair.to_owned(),
                    authorization: value.to_owned(),
                });
            };
            let (slot, name) = match key.trim_end_matches(is_space) {
                "Credential" => (&mut credential, "Credential"),
                "SignedHeaders" => (&mut signed_headers, "SignedHeaders"),
                "Signature" => (&mut signature, "Signature"),
                // Unknown parameters are ignored, as AWS does.
                _ => continue,
            };
            if slot.replace(val.trim_start_matches(is_space)).is_some() {
                return Err(SigV4Error::DuplicateAuthorizationParameter {
                    parameter: name,
                    authorization: value.to_owned(),
                });
            }
        }
        let (Some(credential), Some(signed_headers), Some(signature)) =
            (credential, signed_headers, signature)
        else {
            let missing = [
                ("Credential", credential.is_none()),
                ("Signature", signature.is_none()),
                ("SignedHeaders", signed_headers.is_none()),
            ]
            .into_iter()
            .filter_map(|(name, absent)| absent.then_some(name))
            .collect();
            return Err(SigV4Error::MissingAuthorizationParameters {
                missing,
                authorization: value.to_owned(),
            });
        };
        let credential = Credential::parse(credential)?;
        check_signed_headers(signed_headers)?;
        Ok(AuthParts {
            credential,
            signed_headers,
            signature,
        })
    }
}

fn is_space(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// The `X-Amz-*` parameters of a presigned URL, percent-decoded.
#[derive(Debug)]
pub(crate) struct PresignedParts<'a> {
    pub(crate) credential: Cow<'a, str>,
    pub(crate) date: Cow<'a, str>,
    pub(crate) expires: Cow<'a, str>,
    pub(crate) signed_headers: Cow<'a, str>,
    pub(crate) signature: Cow<'a, str>,
    /// `X-Amz-Security-Token`: the session token of temporary credentials, if any.
    pub(crate) security_token: Option<Cow<'a, str>>,
}

/// Longest validity AWS allows a presigned URL: seven days.
pub(crate) const MAX_EXPIRES: i64 = 604_800;

impl<'a> PresignedParts<'a> {
    /// Reads the presigned parameters from a raw query string. The caller has already seen
    /// `X-Amz-Algorithm` in it.
    pub(crate) fn parse(query: &'a str) -> Result<PresignedParts<'a>, SigV4Error> {
        let mut algorithm = None;
        let mut credential = None;
        let mut date = None;
        let mut expires = None;
        let mut signed_headers = None;
        let mut signature = None;
        let mut security_token = None;
        for (key, val) in query_pairs(query) {
            let slot = match key.as_ref() {
                "X-Amz-Algorithm" => &mut algorithm,
                "X-Amz-Credential" => &mut credential,
                "X-Amz-Date" => &mut date,
                "X-Amz-Expires" => &mut expires,
                "X-Amz-SignedHeaders" => &mut signed_headers,
                "X-Amz-Signature" => &mut signature,
                "X-Amz-Security-Token" => &mut security_token,
                _ => continue,
            };
            if slot.is_some() {
                return Err(SigV4Error::MalformedPresignedQuery {
                    reason: format!("AWS query-string parameter '{key}' appears more than once."),
                });
            }
            *slot = Some(decode_component(val));
        }
        let require = |value: Option<Cow<'a, str>>, name: &str| {
            value.ok_or_else(|| SigV4Error::MalformedPresignedQuery {
                reason: format!("AWS query-string parameters must include '{name}'."),
            })
        };
        let algorithm = require(algorithm, "X-Amz-Algorithm")?;
        if algorithm != ALGORITHM {
            return Err(SigV4Error::MalformedPresignedQuery {
                reason: format!("X-Amz-Algorithm only supports '{ALGORITHM}', got '{algorithm}'."),
            });
        }
        let parts = PresignedParts {
            credential: require(credential, "X-Amz-Credential")?,
            date: require(date, "X-Amz-Date")?,
            expires: require(expires, "X-Amz-Expires")?,
            signed_headers: require(signed_headers, "X-Amz-SignedHeaders")?,
            signature: require(signature, "X-Amz-Signature")?,
            security_token,
        };
        check_signed_headers(&parts.signed_headers)?;
        Ok(parts)
    }

    /// `X-Amz-Expires` in seconds, checked to be within 1..=604800.
    pub(crate) fn expires_secs(&self) -> Result<i64, SigV4Error> {
        let text = self.expires.as_ref();
        let valid = !text.is_empty() && text.len() <= 7 && text.bytes().all(|b| b.is_ascii_digit());
        match text.parse::<i64>() {
            Ok(secs) if valid && (1..=MAX_EXPIRES).contains(&secs) => Ok(secs),
            _ => Err(SigV4Error::MalformedPresignedQuery {
                reason: format!(
                    "X-Amz-Expires must be a whole number of seconds from 1 to {MAX_EXPIRES} \
                     (one week), got '{text}'."
                ),
            }),
        }
    }
}

/// Whether the raw query carries presigned-URL authentication.
pub(crate) fn query_has_algorithm(query: &str) -> bool {
    query_pairs(query).any(|(key, _)| key == "X-Amz-Algorithm")
}

/// Splits a raw query into `(decoded key, raw value)` pairs, skipping empty elements.
/// `a` without `=` has an empty value.
pub(crate) fn query_pairs(query: &str) -> impl Iterator<Item = (Cow<'_, str>, &str)> {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (key, val) = pair.split_once('=').unwrap_or((pair, ""));
        (decode_component(key), val)
    })
}

/// Percent-decodes one query component. Invalid UTF-8 is replaced rather than rejected: a
/// value that cannot be text can still fail the signature, which is the error that matters.
fn decode_component(raw: &str) -> Cow<'_, str> {
    if raw.contains('%') {
        match percent_encoding::percent_decode_str(raw).decode_utf8_lossy() {
            Cow::Borrowed(s) => Cow::Owned(s.to_owned()),
            Cow::Owned(s) => Cow::Owned(s),
        }
    } else {
        Cow::Borrowed(raw)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn parses_header_with_and_without_spaces() {
        let sig = "a".repeat(64);
        for value in [
            format!("AWS4-HMAC-SHA256 Credential=AKID/20241126/us-east-1/ecs/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature={sig}"),
            format!("AWS4-HMAC-SHA256 Credential=AKID/20241126/us-east-1/ecs/aws4_request,SignedHeaders=host;x-amz-date;x-amz-target,Signature={sig}"),
            format!("AWS4-HMAC-SHA256  Credential=AKID/20241126/us-east-1/ecs/aws4_request ,  SignedHeaders=host;x-amz-date;x-amz-target,   Signature={sig} "),
        ] {
            let h = parse_authorization(&value).unwrap();
            assert_eq!(h.access_key_id, "AKID");
            assert_eq!(h.date, "20241126");
            assert_eq!(h.region, "us-east-1");
            assert_eq!(h.service, "ecs");
            assert_eq!(h.signed_headers, ["host", "x-amz-date", "x-amz-target"]);
            assert_eq!(h.signature, sig);
        }
    }

    #[test]
    fn reports_every_missing_parameter() {
        let err = parse_authorization("AWS4-HMAC-SHA256 SignedHeaders=host").unwrap_err();
        assert_eq!(err.aws_code(), "IncompleteSignatureException");
        assert_eq!(
            err.to_string(),
            "Authorization header requires 'Credential' parameter. Authorization header \
             requires 'Signature' parameter. Authorization=AWS4-HMAC-SHA256 SignedHeaders=host"
        );
        let err = parse_authorization("AWS4-HMAC-SHA256").unwrap_err();
        assert!(
            err.to_string().contains("'SignedHeaders' parameter"),
            "{err}"
        );
    }

    #[test]
    fn rejects_malformed_parts() {
        let cases = [
            ("Bearer abc", "Unsupported AWS 'algorithm': 'Bearer'"),
            ("AWS4-HMAC-SHA256 Credential", "missing equal-sign"),
            (
                "AWS4-HMAC-SHA256 Credential=A/20241126/r/s/aws4_request, Credential=B, SignedHeaders=host, Signature=x",
                "'Credential' more than once",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=A/20241126/r/s, SignedHeaders=host, Signature=x",
                "Credential must have the form",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=A/2024112/r/s/aws4_request, SignedHeaders=host, Signature=x",
                "valid date (YYYYMMDD), not '2024112'",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=A/20241126//s/aws4_request, SignedHeaders=host, Signature=x",
                "valid region",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=A/20241126/r//aws4_request, SignedHeaders=host, Signature=x",
                "valid service",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=A/20241126/r/s/aws5_request, SignedHeaders=host, Signature=x",
                "valid terminator: 'aws4_request', not 'aws5_request'",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=/20241126/r/s/aws4_request, SignedHeaders=host, Signature=x",
                "access key id",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=A/20241126/r/s/aws4_request, SignedHeaders=Host;x, Signature=x",
                "lowercase header names",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=A/20241126/r/s/aws4_request, SignedHeaders=host;;x, Signature=x",
                "lowercase header names",
            ),
        ];
        for (value, needle) in cases {
            let err = parse_authorization(value).unwrap_err();
            assert_eq!(err.aws_code(), "IncompleteSignatureException", "{value}");
            assert!(err.to_string().contains(needle), "{value}: {err}");
        }
    }

    #[test]
    fn presigned_parts() {
        let q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20241126%2Fus-east-1%2Fecr%2Faws4_request&X-Amz-Date=20241126T103500Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature=abc&other";
        assert!(query_has_algorithm(q));
        let p = PresignedParts::parse(q).unwrap();
        assert_eq!(p.credential, "AKID/20241126/us-east-1/ecr/aws4_request");
        assert_eq!(p.expires_secs().unwrap(), 300);
        for bad in ["0", "604801", "-1", "abc", "", "99999999999999999999"] {
            let p = PresignedParts {
                expires: Cow::Borrowed(bad),
                ..PresignedParts::parse(q).unwrap()
            };
            assert!(p.expires_secs().is_err(), "{bad}");
        }
        let err = PresignedParts::parse("X-Amz-Algorithm=AWS4-HMAC-SHA256").unwrap_err();
        assert!(
            err.to_string().contains("must include 'X-Amz-Credential'"),
            "{err}"
        );
        let err = PresignedParts::parse("X-Amz-Algorithm=HMAC").unwrap_err();
        assert!(err.to_string().contains("only supports"), "{err}");
        assert!(!query_has_algorithm("a=b&X-Amz-Algorithmx=1"));
    }
}
