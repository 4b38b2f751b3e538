//! Requests signed by the real `aws-sigv4` crate (the AWS SDK for Rust's signer) must verify,
//! and tampered ones must not.
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::borrow::Cow;
use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4::SigningParams;
use aws_smithy_runtime_api::client::identity::Identity;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS, NON_ALPHANUMERIC};
use proptest::prelude::*;
use wire::sigv4::{verify, verify_with, SigV4Error, SignedRequest, Verified};

const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
/// 20241126T103500Z
const NOW: i64 = 1_732_617_300;
const HOST: &str = "ecs.us-east-1.amazonaws.com";
const TARGET: &str = "AmazonEC2ContainerServiceV20141113.ListClusters";

fn secrets(akid: &str) -> Option<String> {
    (akid == AKID).then(|| SECRET.to_owned())
}

/// A request as the server would see it after the client signed it.
#[derive(Debug, Clone)]
struct Wire {
    method: String,
    path: String,
    query: Option<String>,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl Wire {
    fn verify_at(&self, now: i64) -> Result<Verified, SigV4Error> {
        let req = SignedRequest {
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            headers: &self.headers,
            body: &self.body,
        };
        verify(&req, &secrets, now)
    }

    fn verify(&self) -> Result<Verified, SigV4Error> {
        self.verify_at(NOW)
    }

    /// The session token the key lookup was given, once the signature verified.
    fn token_seen(&self) -> Result<Option<String>, SigV4Error> {
        let req = SignedRequest {
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            headers: &self.headers,
            body: &self.body,
        };
        let lookup = |akid: &str, token: Option<&str>| {
            let secret = secrets(akid).ok_or(SigV4Error::UnrecognizedClient)?;
            Ok((secret, token.map(str::to_owned)))
        };
        verify_with(&req, lookup, NOW).map(|(_, token)| token)
    }

    fn authorization(&self) -> String {
        self.headers["authorization"].to_str().unwrap().to_owned()
    }

    fn set_authorization(&mut self, value: &str) {
        self.headers.insert("authorization", value.parse().unwrap());
    }
}

struct Signer<'a> {
    service: &'a str,
    settings: SigningSettings,
    time: i64,
    body: Option<SignableBody<'a>>,
    credentials: Credentials,
}

impl<'a> Signer<'a> {
    fn new(service: &'a str) -> Self {
        Signer {
            service,
            settings: SigningSettings::default(),
            time: NOW,
            body: None,
            credentials: Credentials::new(AKID, SECRET, None, None, "test"),
        }
    }

    fn presigned(mut self, expires: u64) -> Self {
        self.settings.signature_location = SignatureLocation::QueryParams;
        self.settings.expires_in = Some(Duration::from_secs(expires));
        self
    }

    fn sign(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Wire {
        let uri = format!("https://{HOST}{path_and_query}");
        let mut all_headers: Vec<(&str, &str)> = vec![("host", HOST)];
        all_headers.extend_from_slice(headers);
        let signable_body = self.body.clone().unwrap_or(SignableBody::Bytes(body));
        let signable = SignableRequest::new(
            method,
            uri.clone(),
            all_headers.iter().copied(),
            signable_body,
        )
        .unwrap();
        let identity: Identity = self.credentials.clone().into();
        let params = SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name(self.service)
            .time(UNIX_EPOCH + Duration::from_secs(self.time as u64))
            .settings(self.settings.clone())
            .build()
            .unwrap()
            .into();
        let (instructions, _signature) = sign(signable, &params).unwrap().into_parts();

        let mut request = http::Request::builder().method(method).uri(&uri);
        for (name, value) in &all_headers {
            request = request.header(*name, *value);
        }
        let mut request = request.body(()).unwrap();
        instructions.apply_to_request_http1x(&mut request);
        Wire {
            method: method.to_owned(),
            path: request.uri().path().to_owned(),
            query: request.uri().query().map(str::to_owned),
            headers: request.headers().clone(),
            body: body.to_vec(),
        }
    }
}

fn ecs_post(body: &[u8]) -> Wire {
    Signer::new("ecs").sign(
        "POST",
        "/",
        &[
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", TARGET),
        ],
        body,
    )
}

#[test]
fn post_with_target_and_json_body() {
    let wire = ecs_post(br#"{"maxResults":10}"#);
    assert!(
        wire.authorization().contains("x-amz-target"),
        "{}",
        wire.authorization()
    );
    let verified = wire.verify().unwrap();
    assert_eq!(
        verified,
        Verified {
            access_key_id: AKID.into(),
            region: "us-east-1".into(),
            service: "ecs".into()
        }
    );
}

#[test]
fn changed_target_or_body_fails() {
    let wire = ecs_post(br#"{"maxResults":10}"#);
    let mut other = wire.clone();
    other.headers.insert(
        "x-amz-target",
        "AmazonEC2ContainerServiceV20141113.DeleteCluster"
            .parse()
            .unwrap(),
    );
    assert_eq!(other.verify(), Err(SigV4Error::SignatureMismatch));
    let mut other = wire.clone();
    other.body = br#"{"maxResults":11}"#.to_vec();
    assert_eq!(other.verify(), Err(SigV4Error::SignatureMismatch));
    let mut other = wire;
    other.method = "PUT".into();
    assert_eq!(other.verify(), Err(SigV4Error::SignatureMismatch));
}

#[test]
fn wrong_secret_fails() {
    let mut signer = Signer::new("ecs");
    signer.credentials = Credentials::new(AKID, "not-the-secret", None, None, "test");
    let wire = signer.sign("POST", "/", &[("x-amz-target", TARGET)], b"{}");
    assert_eq!(wire.verify(), Err(SigV4Error::SignatureMismatch));
}

#[test]
fn unknown_key_is_unrecognized_client() {
    let mut signer = Signer::new("ecs");
    signer.credentials = Credentials::new("AKIAUNKNOWN", SECRET, None, None, "test");
    let err = signer.sign("POST", "/", &[], b"{}").verify().unwrap_err();
    assert_eq!(err, SigV4Error::UnrecognizedClient);
    assert_eq!(err.aws_code(), "UnrecognizedClientException");
}

#[test]
fn session_token_is_signed_and_accepted() {
    let mut signer = Signer::new("ecs");
    signer.credentials = Credentials::new(AKID, SECRET, Some("session-token".into()), None, "test");
    let wire = signer.sign("POST", "/", &[("x-amz-target", TARGET)], b"{}");
    assert!(wire.authorization().contains("x-amz-security-token"));
    wire.verify().unwrap();
    assert_eq!(wire.token_seen().unwrap().as_deref(), Some("session-token"));
}

#[test]
fn a_presigned_urls_session_token_reaches_the_key_lookup() {
    let mut signer = Signer::new("ecr").presigned(300);
    signer.credentials = Credentials::new(AKID, SECRET, Some("tok/en+1".into()), None, "test");
    signer.body = Some(SignableBody::UnsignedPayload);
    let wire = signer.sign("GET", "/v2/r/blobs/x", &[], b"");
    assert!(wire
        .query
        .as_deref()
        .unwrap_or("")
        .contains("X-Amz-Security-Token"));
    assert_eq!(wire.token_seen().unwrap().as_deref(), Some("tok/en+1"));
}

#[test]
fn a_refused_token_is_the_lookups_error() {
    let mut signer = Signer::new("ecs");
    signer.credentials = Credentials::new(AKID, SECRET, Some("old".into()), None, "test");
    let wire = signer.sign("POST", "/", &[("x-amz-target", TARGET)], b"{}");
    let req = SignedRequest {
        method: &wire.method,
        path: &wire.path,
        query: wire.query.as_deref(),
        headers: &wire.headers,
        body: &wire.body,
    };
    let lookup = |_: &str, _: Option<&str>| -> Result<(String, ()), SigV4Error> {
        Err(SigV4Error::ExpiredSecurityToken)
    };
    let err = verify_with(&req, lookup, NOW).unwrap_err();
    assert_eq!(err.aws_code(), "ExpiredTokenException");
    assert_eq!(err.aws_query_code(), "ExpiredToken");
    assert_eq!(
        err.to_string(),
        "The security token included in the request is expired"
    );
}

#[test]
fn get_with_query_needing_encoding() {
    let wire = Signer::new("ecs").sign(
        "GET",
        "/?b=hello%20world&a=%E2%9C%93&c=x%2Fy&empty=&flag&a=0&Z=%7e&q=it's(1)*!",
        &[],
        b"",
    );
    wire.verify().unwrap();
    let mut other = wire.clone();
    other.query = Some(other.query.unwrap().replace("hello", "hellO"));
    assert_eq!(other.verify(), Err(SigV4Error::SignatureMismatch));
}

#[test]
fn raw_plus_in_query_is_read_as_aws_sigv4_reads_it() {
    Signer::new("ecs")
        .sign("GET", "/?q=a+b&r=c%2Bd", &[], b"")
        .verify()
        .unwrap();
}

#[test]
fn path_with_encoded_characters() {
    for path in [
        "/v2/my%2Frepo/blobs/sha256:9f86d081884c7d659a2feaa0c55ad015",
        "/v2/team/app%20x/manifests/v1.0~rc",
        "/a%25b/%C3%A9",
        "/a//b/./c/../d",
        "",
    ] {
        let wire = Signer::new("ecr").sign("GET", path, &[], b"");
        let verified = wire.verify().unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(verified.service, "ecr");
    }
    let wire = Signer::new("ecr").sign("GET", "/v2/my%2Frepo/tags/list", &[], b"");
    let mut other = wire;
    other.path = "/v2/my/repo/tags/list".into();
    assert_eq!(other.verify(), Err(SigV4Error::SignatureMismatch));
}

#[test]
fn presigned_url_verifies_until_it_expires() {
    let mut signer = Signer::new("ecr").presigned(300);
    signer.body = Some(SignableBody::UnsignedPayload);
    let wire = signer.sign("GET", "/v2/repo/blobs/sha256:ab?extra=1", &[], b"");
    assert!(!wire.headers.contains_key("authorization"));
    assert!(wire.query.as_deref().unwrap().contains("X-Amz-Signature="));
    wire.verify().unwrap();
    wire.verify_at(NOW + 300).unwrap();
    let err = wire.verify_at(NOW + 301).unwrap_err();
    assert_eq!(err.aws_code(), "InvalidSignatureException");
    assert!(
        err.to_string()
            .starts_with("Signature expired: 20241126T103500Z"),
        "{err}"
    );
    let err = wire.verify_at(NOW - 901).unwrap_err();
    assert!(
        err.to_string().starts_with("Signature not yet current"),
        "{err}"
    );

    let mut other = wire.clone();
    other.query = Some(other.query.unwrap().replace("extra=1", "extra=2"));
    assert_eq!(other.verify(), Err(SigV4Error::SignatureMismatch));
    let mut other = wire;
    other.query = Some(
        other
            .query
            .unwrap()
            .replace("X-Amz-Expires=300", "X-Amz-Expires=3000"),
    );
    assert_eq!(other.verify(), Err(SigV4Error::SignatureMismatch));
}

#[test]
fn presigned_url_with_body_hash_verifies() {
    // botocore presigns non-S3 requests with the hash of the (empty) body.
    let wire = Signer::new("sts").presigned(60).sign(
        "GET",
        "/?Action=GetCallerIdentity&Version=2011-06-15",
        &[],
        b"",
    );
    wire.verify().unwrap();
}

#[test]
fn content_sha256_header_is_checked_against_the_body() {
    let mut signer = Signer::new("ecr");
    signer.settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let wire = signer.sign("PUT", "/v2/repo/blobs/uploads/1", &[], b"layer bytes");
    assert!(wire.headers.contains_key("x-amz-content-sha256"));
    wire.verify().unwrap();
    let mut other = wire;
    other.body = b"other bytes".to_vec();
    let err = other.verify().unwrap_err();
    assert!(
        matches!(err, SigV4Error::ContentSha256Mismatch { .. }),
        "{err:?}"
    );
    assert_eq!(err.aws_code(), "InvalidSignatureException");
}

#[test]
fn unsigned_payload_header_skips_the_body() {
    let mut signer = Signer::new("ecr");
    signer.settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    signer.body = Some(SignableBody::UnsignedPayload);
    let mut wire = signer.sign("PUT", "/v2/repo/blobs/uploads/1", &[], b"anything");
    assert_eq!(wire.headers["x-amz-content-sha256"], "UNSIGNED-PAYLOAD");
    wire.verify().unwrap();
    wire.body = b"something else".to_vec();
    wire.verify().unwrap();
}

#[test]
fn clock_skew_is_fifteen_minutes() {
    let wire = ecs_post(b"{}");
    wire.verify_at(NOW + 900).unwrap();
    wire.verify_at(NOW - 900).unwrap();
    let err = wire.verify_at(NOW + 901).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Signature expired: 20241126T103500Z is now earlier than 20241126T103501Z \
         (20241126T105001Z - 15 min.)"
    );
    let err = wire.verify_at(NOW - 901).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Signature not yet current: 20241126T103500Z is still later than 20241126T103459Z \
         (20241126T101959Z + 15 min.)"
    );
}

#[test]
fn header_spacing_variants_verify() {
    let mut wire = ecs_post(b"{}");
    let auth = wire.authorization();
    for variant in [
        auth.replace(", ", ","),
        auth.replace(", ", " ,  "),
        format!("  {auth}  "),
    ] {
        wire.set_authorization(&variant);
        wire.verify().unwrap_or_else(|e| panic!("{variant}: {e}"));
    }
}

#[test]
fn host_must_be_signed_even_if_signature_is_right() {
    let mut wire = ecs_post(b"{}");
    let auth = wire.authorization().replace(
        "SignedHeaders=content-type;host;",
        "SignedHeaders=content-type;",
    );
    wire.set_authorization(&auth);
    assert_eq!(wire.verify(), Err(SigV4Error::HostNotSigned));
}

/// Query text as a client might send it: everything outside a few harmless characters
/// percent-encoded, sometimes with a raw `+` for a space.
const QUERY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'!')
    .remove(b'*')
    .remove(b'(')
    .remove(b')')
    .remove(b':')
    .remove(b'@');
const PATH_ENCODE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'\\')
    .add(b'^')
    .add(b'|')
    .add(b'[')
    .add(b']');

fn encode_query(params: &[(String, String)], plus_for_space: bool) -> String {
    let enc = |s: &str| {
        let e: Cow<'_, str> = utf8_percent_encode(s, QUERY_ENCODE).into();
        if plus_for_space {
            e.replace("%20", "+")
        } else {
            e.into_owned()
        }
    };
    params
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn aws_signed_requests_verify_and_tampering_fails(
        body in proptest::collection::vec(any::<u8>(), 0..300),
        action in "[A-Za-z]{1,24}",
        params in proptest::collection::vec(("\\PC{0,8}", "\\PC{0,8}"), 0..5),
        plus_for_space in any::<bool>(),
        segments in proptest::collection::vec("\\PC{1,8}", 0..4),
        flip_at in any::<proptest::sample::Index>(),
        flip_with in 1u8..=255,
    ) {
        let target = format!("AmazonEC2ContainerServiceV20141113.{action}");
        let path: String = segments
            .iter()
            .map(|s| format!("/{}", utf8_percent_encode(s, PATH_ENCODE)))
            .collect();
        let path = if path.is_empty() { "/".to_owned() } else { path };
        let query = encode_query(&params, plus_for_space);
        let path_and_query = if query.is_empty() { path } else { format!("{path}?{query}") };
        let wire = Signer::new("ecs").sign(
            "POST",
            &path_and_query,
            &[("content-type", "application/x-amz-json-1.1"), ("x-amz-target", &target)],
            &body,
        );
        prop_assert!(wire.verify().is_ok(), "{:?}: {:?}", wire, wire.verify());

        // Any change to the body fails.
        let mut tampered = wire.clone();
        if tampered.body.is_empty() {
            tampered.body.push(flip_with);
        } else {
            let i = flip_at.index(tampered.body.len());
            tampered.body[i] ^= flip_with;
        }
        prop_assert_eq!(tampered.verify(), Err(SigV4Error::SignatureMismatch));

        // Any change to the signature fails.
        let auth = wire.authorization();
        let sig_start = auth.rfind("Signature=").unwrap() + "Signature=".len();
        let i = sig_start + flip_at.index(auth.len() - sig_start);
        let mut bytes = auth.clone().into_bytes();
        bytes[i] ^= flip_with;
        if let Ok(value) = http::HeaderValue::from_bytes(&bytes) {
            let mut tampered = wire.clone();
            tampered.headers.insert("authorization", value);
            prop_assert!(tampered.verify().is_err());
        }
    }

    #[test]
    fn presigned_requests_verify(
        params in proptest::collection::vec(("[A-Za-z0-9]\\PC{0,8}", "\\PC{0,8}"), 0..5),
        expires in 1u64..=604_800,
        elapsed in 0i64..=604_800,
    ) {
        let query = encode_query(&params, false);
        let path_and_query = if query.is_empty() { "/v2/r/blobs/x".to_owned() } else { format!("/v2/r/blobs/x?{query}") };
        let mut signer = Signer::new("ecr").presigned(expires);
        signer.body = Some(SignableBody::UnsignedPayload);
        let wire = signer.sign("GET", &path_and_query, &[], b"");
        let result = wire.verify_at(NOW + elapsed);
        if elapsed as u64 <= expires {
            prop_assert!(result.is_ok(), "{:?}: {:?}", wire, result);
        } else {
            prop_assert!(
                matches!(result, Err(SigV4Error::SignatureExpired { .. })),
                "{:?}",
                result
            );
        }
    }
}
