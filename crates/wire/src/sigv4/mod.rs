//! AWS Signature Version 4 verification: the one place that decides whether a request was
//! signed by the holder of an access key. It owns parsing the `Authorization` header and
//! presigned-URL parameters, the canonical request, key derivation, clock-skew and expiry
//! checks, and the AWS error each failure is reported as ([`SigV4Error`]).
//!
//! Verification follows AWS's published algorithm for every service but S3: the path is
//! normalised and percent-encoded a second time, the query decoded and re-encoded. Where AWS
//! signers are known to differ on an ambiguous input (a raw `+` in the query, a path with
//! `//` or dot segments, the payload hash of a non-S3 presigned URL), each reading they use
//! is tried, the standard one first; the extra readings cost time only when the first fails.

mod canonical;
mod error;
mod parse;
mod time;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub use error::SigV4Error;
pub use parse::{claimed_scope, parse_authorization, AuthorizationHeader, ClaimedScope};

use canonical::{CanonicalRequest, PathMode, PlusMode};
use parse::{AuthParts, Credential, PresignedParts, ALGORITHM};
use time::AmzDate;

type HmacSha256 = Hmac<Sha256>;

/// How far a request timestamp may be from the server's clock, either way.
pub const MAX_CLOCK_SKEW_SECS: i64 = 15 * 60;

/// The payload hash a client sends to leave the body out of the signature.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// A request as received, before any decoding.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// The HTTP method, e.g. `POST`.
    pub method: &'a str,
    /// The raw path exactly as on the request line, e.g. `/` or `/v2/a%2Fb/blobs/...`.
    pub path: &'a str,
    /// The raw query string without the `?`.
    pub query: Option<&'a str>,
    /// The request headers. `host` must be present (HTTP/2 servers: copy `:authority` into it).
    pub headers: &'a http::HeaderMap,
    /// The body, hashed for the payload hash unless `x-amz-content-sha256` is
    /// `UNSIGNED-PAYLOAD`.
    pub body: &'a [u8],
}

/// Who signed a request that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The access key id the request was signed with.
    pub access_key_id: String,
    /// The region from the credential scope.
    pub region: String,
    /// The signing name from the credential scope, e.g. `ecs`.
    pub service: String,
}

/// Verifies a SigV4-signed request, by `Authorization` header or presigned URL.
///
/// `secret_for` maps an access key id to its secret access key (`None`: unknown key); a
/// session token the request carries is ignored (see [`verify_with`] for temporary
/// credentials). `now_unix_secs` is the server's clock. Header-signed requests must be
/// within [`MAX_CLOCK_SKEW_SECS`] of it; presigned URLs must not be more than that in the
/// future and must not be past `X-Amz-Date + X-Amz-Expires` (reported as
/// [`SigV4Error::SignatureExpired`], `InvalidSignatureException`).
///
/// The checks run in this order, so the error names the first problem: authentication
/// present, its parts well formed, scope date, `host` signed (and `x-amz-target` and
/// `content-type` when sent), clock, access key, signature,
/// and last the body against a hex `x-amz-content-sha256`.
pub fn verify(
    req: &SignedRequest<'_>,
    secret_for: &dyn Fn(&str) -> Option<String>,
    now_unix_secs: i64,
) -> Result<Verified, SigV4Error> {
    let lookup = |id: &str, _token: Option<&str>| {
        secret_for(id)
            .map(|secret| (secret, ()))
            .ok_or(SigV4Error::UnrecognizedClient)
    };
    verify_with(req, lookup, now_unix_secs).map(|(verified, ())| verified)
}

/// Verifies a SigV4-signed request like [`verify`], looking the key up with `lookup`:
/// it gets the access key id and the session token the request carries
/// (`X-Amz-Security-Token` header, or query parameter of a presigned URL) and answers the
/// secret to check the signature with plus whatever the caller keeps of the key (`T`,
/// e.g. who it belongs to), or why the key or token is refused
/// ([`SigV4Error::UnrecognizedClient`], [`SigV4Error::InvalidSecurityToken`],
/// [`SigV4Error::ExpiredSecurityToken`]). It is called once, after the clock check.
pub fn verify_with<T>(
    req: &SignedRequest<'_>,
    lookup: impl FnOnce(&str, Option<&str>) -> Result<(String, T), SigV4Error>,
    now_unix_secs: i64,
) -> Result<(Verified, T), SigV4Error> {
    with_auth(req, now_unix_secs, |auth| {
        let (secret, found) = lookup(auth.credential.access_key_id, auth.security_token)?;
        Ok((check_signature(req, auth, &secret)?, found))
    })
}

/// A request whose authentication is well formed, current, signs the headers it must and
/// names a key `lookup` accepted: what is left to check needs the body
/// ([`verify_checked`]). It lets a server refuse an unknown key before reading the body.
pub struct KeyChecked<T> {
    secret: String,
    found: T,
}

/// The checks of [`verify_with`] that need no body, through the key lookup. `req.body` is
/// not read.
pub fn check_key<T>(
    req: &SignedRequest<'_>,
    lookup: impl FnOnce(&str, Option<&str>) -> Result<(String, T), SigV4Error>,
    now_unix_secs: i64,
) -> Result<KeyChecked<T>, SigV4Error> {
    with_auth(req, now_unix_secs, |auth| {
        let (secret, found) = lookup(auth.credential.access_key_id, auth.security_token)?;
        Ok(KeyChecked { secret, found })
    })
}

/// Finishes [`check_key`]'s verification once the body is in `req`: the signature and the
/// payload hash. The authentication parts are read again (borrowed, no allocation for a
/// header-signed request) rather than kept, so nothing borrows across the body read.
pub fn verify_checked<T>(
    req: &SignedRequest<'_>,
    checked: KeyChecked<T>,
    now_unix_secs: i64,
) -> Result<(Verified, T), SigV4Error> {
    let KeyChecked { secret, found } = checked;
    let verified = with_auth(req, now_unix_secs, |auth| {
        check_signature(req, auth, &secret)
    })?;
    Ok((verified, found))
}

/// Headers that, when sent, must be signed: they pick the operation, and with it how much
/// body the server reads, and how the body is decoded.
const MUST_SIGN_WHEN_SENT: [(&str, &str); 2] = [
    ("x-amz-target", "X-Amz-Target"),
    ("content-type", "Content-Type"),
];

/// Reads the request's authentication parts, runs every check that needs neither key nor
/// body (form, scope date, signed headers, clock), then `then`.
fn with_auth<R>(
    req: &SignedRequest<'_>,
    now_unix_secs: i64,
    then: impl FnOnce(&Auth<'_>) -> Result<R, SigV4Error>,
) -> Result<R, SigV4Error> {
    let raw_query = req.query.unwrap_or("");
    let mut auth_headers = req.headers.get_all(http::header::AUTHORIZATION).iter();
    let auth_header = auth_headers.next();
    let presigned = parse::query_has_algorithm(raw_query);
    if auth_headers.next().is_some() || (auth_header.is_some() && presigned) {
        return Err(SigV4Error::ConflictingAuthentication);
    }

    // Presigned parameters are decoded into owned text that `auth` then borrows.
    let presigned_parts = match (auth_header, presigned) {
        (None, true) => Some(PresignedParts::parse(raw_query)?),
        _ => None,
    };
    let auth = match (auth_header, &presigned_parts) {
        (Some(value), _) => from_header(req.headers, value)?,
        (None, Some(parts)) => from_query(parts)?,
        (None, None) => return Err(SigV4Error::MissingAuthenticationToken),
    };
    let credential = &auth.credential;

    let amz_date = auth.timestamp.as_str();
    if credential.date != &amz_date[..8] {
        return Err(SigV4Error::ScopeDateMismatch {
            scope_date: credential.date.to_owned(),
            request_date: amz_date[..8].to_owned(),
            timestamp: amz_date.to_owned(),
        });
    }
    let signed = |name: &str| auth.signed_headers.split(';').any(|h| h == name);
    if !signed("host") {
        return Err(SigV4Error::HostNotSigned);
    }
    for (name, header) in MUST_SIGN_WHEN_SENT {
        if req.headers.contains_key(name) && !signed(name) {
            return Err(SigV4Error::HeaderNotSigned { header });
        }
    }
    check_clock(auth.unix_secs, auth.expires, now_unix_secs)?;
    then(&auth)
}

/// The signature and payload-hash checks, with the key's secret.
fn check_signature(
    req: &SignedRequest<'_>,
    auth: &Auth<'_>,
    secret: &str,
) -> Result<Verified, SigV4Error> {
    let raw_query = req.query.unwrap_or("");
    let credential = &auth.credential;
    let amz_date = auth.timestamp.as_str();
    let provided = decode_signature(auth.signature).ok_or(SigV4Error::SignatureMismatch)?;
    let signing_key = signing_key(secret, credential);

    let content_sha256 = content_sha256_header(req.headers)?;
    let presigned = auth.expires.is_some();
    let path_modes: &[PathMode] = if canonical::path_needs_normalizing(req.path) {
        &[PathMode::Normalized, PathMode::AsReceived]
    } else {
        &[PathMode::Normalized]
    };
    let literal_query = canonical::canonical_query(raw_query, PlusMode::Literal, presigned);
    let spaced_query = raw_query
        .contains('+')
        .then(|| canonical::canonical_query(raw_query, PlusMode::Space, presigned));
    let scope = Scope {
        amz_date,
        credential,
    };
    // Tries every reading of the path and query with one payload hash, standard first.
    let matches_with = |payload_hash: &str| {
        let queries = std::iter::once(&literal_query).chain(spaced_query.as_ref());
        queries.into_iter().any(|query| {
            path_modes.iter().any(|&path_mode| {
                let creq = CanonicalRequest {
                    method: req.method,
                    path: req.path,
                    path_mode,
                    query,
                    headers: req.headers,
                    signed_headers: auth.signed_headers,
                    payload_hash,
                };
                signature_matches(&signing_key, &scope, &creq, &provided)
            })
        })
    };
    let matched = match content_sha256 {
        Some(value) => matches_with(value),
        // S3-style signers presign with UNSIGNED-PAYLOAD, botocore presigns other
        // services with the body's hash.
        None if presigned => matches_with(UNSIGNED_PAYLOAD) || matches_with(&hex_sha256(req.body)),
        None => matches_with(&hex_sha256(req.body)),
    };
    if !matched {
        return Err(SigV4Error::SignatureMismatch);
    }

    if let Some(provided) = content_sha256.filter(|v| *v != UNSIGNED_PAYLOAD) {
        let computed = hex_sha256(req.body);
        if !provided.eq_ignore_ascii_case(&computed) {
            return Err(SigV4Error::ContentSha256Mismatch {
                provided: provided.to_owned(),
                computed,
            });
        }
    }

    Ok(Verified {
        access_key_id: credential.access_key_id.to_owned(),
        region: credential.region.to_owned(),
        service: credential.service.to_owned(),
    })
}

/// The signature's parts, from whichever place the request carried them.
struct Auth<'a> {
    credential: Credential<'a>,
    signed_headers: &'a str,
    signature: &'a str,
    timestamp: AmzDate,
    unix_secs: i64,
    /// `Some` for presigned URLs.
    expires: Option<i64>,
    /// The session token of temporary credentials.
    security_token: Option<&'a str>,
}

fn from_header<'a>(
    headers: &'a http::HeaderMap,
    value: &'a http::HeaderValue,
) -> Result<Auth<'a>, SigV4Error> {
    let text = value
        .to_str()
        .map_err(|_| SigV4Error::UnsupportedAlgorithm {
            algorithm: String::from_utf8_lossy(value.as_bytes())
                .chars()
                .take(32)
                .collect(),
        })?;
    let parts = AuthParts::parse(text)?;
    let secs = if let Some(date) = headers.get("x-amz-date") {
        let date = date.to_str().unwrap_or("");
        time::parse_amz_date(date).ok_or_else(|| invalid_amz_date("X-Amz-Date header", date))?
    } else if let Some(date) = headers.get(http::header::DATE) {
        let date = date.to_str().unwrap_or("");
        time::parse_http_date(date).ok_or_else(|| SigV4Error::InvalidDate {
            source_name: "Date header",
            value: date.to_owned(),
            expected: "the RFC 7231 form 'Tue, 26 Nov 2024 10:35:00 GMT'",
        })?
    } else {
        return Err(SigV4Error::MissingDate {
            authorization: text.to_owned(),
        });
    };
    Ok(Auth {
        credential: parts.credential,
        signed_headers: parts.signed_headers,
        signature: parts.signature,
        timestamp: AmzDate::from_unix(secs),
        unix_secs: secs,
        expires: None,
        // A token that is not text cannot be one we issued: an empty one is refused.
        security_token: headers
            .get("x-amz-security-token")
            .map(|v| v.to_str().unwrap_or("")),
    })
}

fn from_query<'a>(parts: &'a PresignedParts<'_>) -> Result<Auth<'a>, SigV4Error> {
    let credential = Credential::parse(&parts.credential)?;
    let secs = time::parse_amz_date(&parts.date)
        .ok_or_else(|| invalid_amz_date("X-Amz-Date query parameter", &parts.date))?;
    let expires = parts.expires_secs()?;
    Ok(Auth {
        credential,
        signed_headers: &parts.signed_headers,
        signature: &parts.signature,
        timestamp: AmzDate::from_unix(secs),
        unix_secs: secs,
        expires: Some(expires),
        security_token: parts.security_token.as_deref(),
    })
}

fn invalid_amz_date(source_name: &'static str, value: &str) -> SigV4Error {
    SigV4Error::InvalidDate {
        source_name,
        value: value.to_owned(),
        expected: "the ISO 8601 basic form YYYYMMDD'T'HHMMSS'Z', e.g. 20241126T103500Z",
    }
}

fn check_clock(request: i64, expires: Option<i64>, now: i64) -> Result<(), SigV4Error> {
    let latest = now.saturating_add(MAX_CLOCK_SKEW_SECS);
    if request > latest {
        return Err(SigV4Error::SignatureNotYetCurrent {
            timestamp: AmzDate::from_unix(request).to_string(),
            limit: AmzDate::from_unix(latest).to_string(),
            now: AmzDate::from_unix(now).to_string(),
        });
    }
    let (allowance_secs, allowance) = match expires {
        Some(secs) => (secs, format!("{secs} sec")),
        None => (MAX_CLOCK_SKEW_SECS, "15 min".to_owned()),
    };
    let earliest = now.saturating_sub(allowance_secs);
    if request < earliest {
        return Err(SigV4Error::SignatureExpired {
            timestamp: AmzDate::from_unix(request).to_string(),
            limit: AmzDate::from_unix(earliest).to_string(),
            now: AmzDate::from_unix(now).to_string(),
            allowance,
        });
    }
    Ok(())
}

/// The `x-amz-content-sha256` header, if sent, checked to be a form SigV4 allows here.
fn content_sha256_header(headers: &http::HeaderMap) -> Result<Option<&str>, SigV4Error> {
    let Some(value) = headers.get("x-amz-content-sha256") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(v)
            if v == UNSIGNED_PAYLOAD
                || (v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())) =>
        {
            Ok(Some(v))
        }
        _ => Err(SigV4Error::InvalidContentSha256 {
            value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
        }),
    }
}

fn decode_signature(hex_text: &str) -> Option<[u8; 32]> {
    // AWS signs with lowercase hex and compares strings: an uppercased signature is not
    // the signature, even though it decodes to the same bytes.
    if hex_text.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut out).ok()?;
    Some(out)
}

fn hex_sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// An HMAC-SHA256 keyed with `key`. RFC 2104 zero-pads keys up to the block size and
/// hashes longer ones first; doing that here gives the same MAC through the infallible
/// fixed-size constructor.
fn keyed_mac(key: &[u8]) -> HmacSha256 {
    let mut block = hmac::digest::Key::<HmacSha256>::default();
    if key.len() <= block.len() {
        block[..key.len()].copy_from_slice(key);
    } else {
        block[..32].copy_from_slice(&Sha256::digest(key));
    }
    <HmacSha256 as KeyInit>::new(&block)
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = keyed_mac(key);
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// kSigning, remembered: it changes only with the secret, the day, the region and the
/// service, so a client's requests of one day share it, and deriving it (four HMACs) was a
/// visible part of every request's cost.
fn signing_key(secret: &str, credential: &Credential<'_>) -> [u8; 32] {
    use std::collections::hash_map::DefaultHasher;
    use std::collections::HashMap;
    use std::hash::{Hash, Hasher};
    use std::sync::{LazyLock, Mutex, PoisonError};

    /// The scope a key was derived for, and the key; compared whole on a hit, so a hash
    /// collision can never hand out another secret's key.
    struct Derived {
        scope: [Box<str>; 4],
        key: [u8; 32],
    }
    /// Past this many keys the cache starts over (clients × days × regions × services).
    const LIMIT: usize = 4096;
    static DERIVED: LazyLock<Mutex<HashMap<u64, Derived>>> =
        LazyLock::new(|| Mutex::new(HashMap::new()));

    let parts = [
        secret,
        credential.date,
        credential.region,
        credential.service,
    ];
    let mut hasher = DefaultHasher::new();
    parts.hash(&mut hasher);
    let slot = hasher.finish();
    let same = |d: &Derived| d.scope.iter().zip(parts).all(|(a, b)| **a == *b);
    {
        let cache = DERIVED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(d) = cache.get(&slot).filter(|d| same(d)) {
            return d.key;
        }
    }
    let key = derive_signing_key(secret, credential);
    let mut cache = DERIVED.lock().unwrap_or_else(PoisonError::into_inner);
    if cache.len() >= LIMIT {
        cache.clear();
    }
    cache.insert(
        slot,
        Derived {
            scope: parts.map(Box::from),
            key,
        },
    );
    key
}

/// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").
fn derive_signing_key(secret: &str, credential: &Credential<'_>) -> [u8; 32] {
    let mut k_secret = Vec::with_capacity(4 + secret.len());
    k_secret.extend_from_slice(b"AWS4");
    k_secret.extend_from_slice(secret.as_bytes());
    let k_date = hmac(&k_secret, credential.date.as_bytes());
    let k_region = hmac(&k_date, credential.region.as_bytes());
    let k_service = hmac(&k_region, credential.service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

struct Scope<'a> {
    amz_date: &'a str,
    credential: &'a Credential<'a>,
}

/// Computes the signature of `creq` and compares it with `provided` in constant time.
fn signature_matches(
    signing_key: &[u8; 32],
    scope: &Scope<'_>,
    creq: &CanonicalRequest<'_>,
    provided: &[u8; 32],
) -> bool {
    let mut hasher = Sha256::new();
    creq.write(&mut hasher);
    let creq_hash = hasher.finalize();
    let mut hex_hash = [0u8; 64];
    // 32 bytes always fit 64 hex digits.
    if hex::encode_to_slice(creq_hash, &mut hex_hash).is_err() {
        return false;
    }
    let mut mac = keyed_mac(signing_key);
    let c = scope.credential;
    for piece in [
        ALGORITHM.as_bytes(),
        b"\n",
        scope.amz_date.as_bytes(),
        b"\n",
        c.date.as_bytes(),
        b"/",
        c.region.as_bytes(),
        b"/",
        c.service.as_bytes(),
        b"/aws4_request\n",
        &hex_hash,
    ] {
        mac.update(piece);
    }
    mac.verify_slice(provided).is_ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests;
