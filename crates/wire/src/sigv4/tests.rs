//! Unit tests: the AWS documentation vector and the failures that happen before any
//! signature is computed. Genuine signatures from the aws-sigv4 crate are exercised in
//! `crates/wire/tests/sigv4_aws.rs`.

use super::*;

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// 20150830T123600Z
const VECTOR_TIME: i64 = 1_440_938_160;
const VECTOR_SIG: &str = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";

fn secrets(akid: &str) -> Option<String> {
    (akid == AKID).then(|| SECRET.to_owned())
}

fn vector_headers(authorization: &str) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert(
        "content-type",
        "application/x-www-form-urlencoded; charset=utf-8"
            .parse()
            .unwrap(),
    );
    h.insert("host", "iam.amazonaws.com".parse().unwrap());
    h.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
    if !authorization.is_empty() {
        h.insert("authorization", authorization.parse().unwrap());
    }
    h
}

fn vector_auth(signature: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date, Signature={signature}"
    )
}

fn run(headers: &http::HeaderMap, query: Option<&str>, now: i64) -> Result<Verified, SigV4Error> {
    let req = SignedRequest {
        method: "GET",
        path: "/",
        query,
        headers,
        body: b"",
    };
    verify(&req, &secrets, now)
}

#[test]
fn aws_documentation_vector_canonical_request() {
    let headers = vector_headers("");
    let query = canonical::canonical_query(
        "Action=ListUsers&Version=2010-05-08",
        PlusMode::Literal,
        false,
    );
    let creq = CanonicalRequest {
        method: "GET",
        path: "/",
        path_mode: PathMode::Normalized,
        query: &query,
        headers: &headers,
        signed_headers: "content-type;host;x-amz-date",
        payload_hash: &hex_sha256(b""),
    };
    let mut text = Vec::new();
    creq.write(&mut text);
    let text = String::from_utf8(text).unwrap();
    assert_eq!(
        text,
        "GET\n/\nAction=ListUsers&Version=2010-05-08\n\
         content-type:application/x-www-form-urlencoded; charset=utf-8\nhost:iam.amazonaws.com\n\
         x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n\
         e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        hex_sha256(text.as_bytes()),
        "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
    );
}

#[test]
fn aws_documentation_vector_verifies() {
    let headers = vector_headers(&vector_auth(VECTOR_SIG));
    let v = run(
        &headers,
        Some("Action=ListUsers&Version=2010-05-08"),
        VECTOR_TIME,
    )
    .unwrap();
    assert_eq!(
        v,
        Verified {
            access_key_id: AKID.into(),
            region: "us-east-1".into(),
            service: "iam".into()
        }
    );
    // Also through the Date header instead of X-Amz-Date (same instant, same string to sign).
    let mut headers = headers;
    headers.remove("x-amz-date");
    headers.insert("date", "Sun, 30 Aug 2015 12:36:00 GMT".parse().unwrap());
    let auth = vector_auth(VECTOR_SIG).replace("x-amz-date", "date");
    headers.insert("authorization", auth.parse().unwrap());
    // The signed headers differ, so this signature no longer matches; but the date is accepted.
    assert_eq!(
        run(
            &headers,
            Some("Action=ListUsers&Version=2010-05-08"),
            VECTOR_TIME
        ),
        Err(SigV4Error::SignatureMismatch)
    );
}

#[test]
fn tampering_fails() {
    let headers = vector_headers(&vector_auth(VECTOR_SIG));
    for query in [
        "Action=ListUsers&Version=2010-05-09",
        "Action=ListUsers",
        "Action=ListUsers&Version=2010-05-08&x",
    ] {
        assert_eq!(
            run(&headers, Some(query), VECTOR_TIME),
            Err(SigV4Error::SignatureMismatch),
            "{query}"
        );
    }
    let mut bad = VECTOR_SIG.to_owned();
    bad.replace_range(0..1, "6");
    let headers = vector_headers(&vector_auth(&bad));
    assert_eq!(
        run(
            &headers,
            Some("Action=ListUsers&Version=2010-05-08"),
            VECTOR_TIME
        ),
        Err(SigV4Error::SignatureMismatch)
    );
    for sig in ["", "zz", &VECTOR_SIG[..62]] {
        let headers = vector_headers(&vector_auth(sig));
        let err = run(
            &headers,
            Some("Action=ListUsers&Version=2010-05-08"),
            VECTOR_TIME,
        )
        .unwrap_err();
        assert_eq!(err.aws_code(), "InvalidSignatureException");
        assert_eq!(err.status(false), 400);
        assert_eq!(err.aws_query_code(), "SignatureDoesNotMatch");
        assert_eq!(err.status(true), 403);
    }
}

#[test]
fn missing_authentication() {
    let err = run(&vector_headers(""), Some("Action=ListUsers"), VECTOR_TIME).unwrap_err();
    assert_eq!(err, SigV4Error::MissingAuthenticationToken);
    assert_eq!(err.aws_code(), "MissingAuthenticationTokenException");
    assert_eq!(err.to_string(), "Missing Authentication Token");
}

#[test]
fn unknown_access_key() {
    let auth = vector_auth(VECTOR_SIG).replace("AKIDEXAMPLE", "AKIDOTHER");
    let err = run(&vector_headers(&auth), None, VECTOR_TIME).unwrap_err();
    assert_eq!(err.aws_code(), "UnrecognizedClientException");
    assert_eq!(
        err.to_string(),
        "The security token included in the request is invalid."
    );
}

#[test]
fn signature_mismatch_message() {
    let err = SigV4Error::SignatureMismatch;
    assert_eq!(err.aws_code(), "InvalidSignatureException");
    assert_eq!(
        err.to_string(),
        "The request signature we calculated does not match the signature you provided. Check \
         your AWS Secret Access Key and signing method. Consult the service documentation for \
         details."
    );
}

#[test]
fn clock_skew() {
    let headers = vector_headers(&vector_auth(VECTOR_SIG));
    let q = Some("Action=ListUsers&Version=2010-05-08");
    // Exactly 15 minutes either way is still accepted.
    assert!(run(&headers, q, VECTOR_TIME + 900).is_ok());
    assert!(run(&headers, q, VECTOR_TIME - 900).is_ok());
    let err = run(&headers, q, VECTOR_TIME + 1800).unwrap_err();
    assert_eq!(err.aws_code(), "InvalidSignatureException");
    assert_eq!(
        err.to_string(),
        "Signature expired: 20150830T123600Z is now earlier than 20150830T125100Z \
         (20150830T130600Z - 15 min.)"
    );
    let err = run(&headers, q, VECTOR_TIME - 1800).unwrap_err();
    assert_eq!(err.aws_code(), "InvalidSignatureException");
    assert_eq!(
        err.to_string(),
        "Signature not yet current: 20150830T123600Z is still later than 20150830T122100Z \
         (20150830T120600Z + 15 min.)"
    );
    // Absurd clocks do not overflow.
    assert!(run(&headers, q, i64::MAX).is_err());
    assert!(run(&headers, q, i64::MIN).is_err());
}

#[test]
fn malformed_header_errors() {
    let cases = [
        ("AWS4-HMAC-SHA256 Signature=abc", "requires 'Credential' parameter"),
        ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam, SignedHeaders=host, Signature=abc", "Credential must have the form"),
        ("AWS4-HMAC-SHA512 Credential=x", "Unsupported AWS 'algorithm'"),
    ];
    for (auth, needle) in cases {
        let err = run(&vector_headers(auth), None, VECTOR_TIME).unwrap_err();
        assert_eq!(err.aws_code(), "IncompleteSignatureException", "{auth}");
        assert!(err.to_string().contains(needle), "{auth}: {err}");
    }
    let mut headers = vector_headers(&vector_auth(VECTOR_SIG));
    headers.insert("x-amz-date", "2015-08-30T12:36:00Z".parse().unwrap());
    let err = run(&headers, None, VECTOR_TIME).unwrap_err();
    assert_eq!(err.aws_code(), "IncompleteSignatureException");
    assert!(
        err.to_string()
            .starts_with("Invalid X-Amz-Date header '2015-08-30T12:36:00Z'"),
        "{err}"
    );

    headers.remove("x-amz-date");
    let err = run(&headers, None, VECTOR_TIME).unwrap_err();
    assert_eq!(err.aws_code(), "IncompleteSignatureException");
    assert!(
        err.to_string().starts_with(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        ),
        "{err}"
    );

    headers.insert("date", "30 Aug 2015".parse().unwrap());
    let err = run(&headers, None, VECTOR_TIME).unwrap_err();
    assert!(err.to_string().starts_with("Invalid Date header"), "{err}");

    let mut headers = vector_headers(&vector_auth(VECTOR_SIG));
    headers.insert("x-amz-date", "20150831T003600Z".parse().unwrap());
    let err = run(&headers, None, VECTOR_TIME).unwrap_err();
    assert_eq!(err.aws_code(), "IncompleteSignatureException");
    assert_eq!(
        err.to_string(),
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
         HTTP: '20150830' != '20150831', from '20150831T003600Z'."
    );
}

#[test]
fn host_must_be_signed() {
    let auth =
        vector_auth(VECTOR_SIG).replace("content-type;host;x-amz-date", "content-type;x-amz-date");
    let err = run(&vector_headers(&auth), None, VECTOR_TIME).unwrap_err();
    assert_eq!(err, SigV4Error::HostNotSigned);
    assert_eq!(err.aws_code(), "InvalidSignatureException");
    assert!(err.to_string().contains("'Host'"));
}

#[test]
fn target_and_content_type_must_be_signed_when_sent() {
    // content-type is sent but not signed.
    let auth = vector_auth(VECTOR_SIG).replace("content-type;host;x-amz-date", "host;x-amz-date");
    let err = run(&vector_headers(&auth), None, VECTOR_TIME).unwrap_err();
    assert_eq!(
        err,
        SigV4Error::HeaderNotSigned {
            header: "Content-Type"
        }
    );
    assert_eq!(err.aws_code(), "InvalidSignatureException");
    // x-amz-target is sent but not signed; the check comes before the key lookup.
    let mut headers = vector_headers(&vector_auth(VECTOR_SIG));
    headers.insert(
        "x-amz-target",
        "AmazonEC2ContainerServiceV20141113.ListClusters"
            .parse()
            .unwrap(),
    );
    let req = SignedRequest {
        method: "GET",
        path: "/",
        query: None,
        headers: &headers,
        body: b"",
    };
    let lookup = |_: &str, _: Option<&str>| -> Result<(String, ()), SigV4Error> {
        panic!("no key is looked up for a request that leaves x-amz-target unsigned")
    };
    let err = check_key(&req, lookup, VECTOR_TIME).err().unwrap();
    assert_eq!(
        err,
        SigV4Error::HeaderNotSigned {
            header: "X-Amz-Target"
        }
    );
    // Without the headers, nothing more is asked.
    headers.remove("x-amz-target");
    headers.remove("content-type");
    let auth = vector_auth(VECTOR_SIG).replace("content-type;host;x-amz-date", "host;x-amz-date");
    headers.insert("authorization", auth.parse().unwrap());
    assert_eq!(
        run(&headers, None, VECTOR_TIME).unwrap_err(),
        SigV4Error::SignatureMismatch
    );
}

#[test]
fn the_key_is_checked_before_the_body_and_the_signature_after() {
    let headers = vector_headers(&vector_auth(VECTOR_SIG));
    let query = Some("Action=ListUsers&Version=2010-05-08");
    let req = |body: &'static [u8]| SignedRequest {
        method: "GET",
        path: "/",
        query,
        headers: &headers,
        body,
    };
    let lookup = |id: &str, _: Option<&str>| {
        secrets(id)
            .map(|s| (s, id.len()))
            .ok_or(SigV4Error::UnrecognizedClient)
    };
    let checked = check_key(&req(b""), lookup, VECTOR_TIME).unwrap();
    let (verified, found) = verify_checked(&req(b""), checked, VECTOR_TIME).unwrap();
    assert_eq!(verified.access_key_id, AKID);
    assert_eq!(found, AKID.len());
    // An unknown key is refused by the first step, with no body in sight.
    let unknown = vector_headers(&vector_auth(VECTOR_SIG).replace(AKID, "AKIDUNKNOWN"));
    let req = SignedRequest {
        method: "GET",
        path: "/",
        query,
        headers: &unknown,
        body: b"",
    };
    assert_eq!(
        check_key(&req, lookup, VECTOR_TIME).err().unwrap(),
        SigV4Error::UnrecognizedClient
    );
}

#[test]
fn conflicting_authentication() {
    let mut headers = vector_headers(&vector_auth(VECTOR_SIG));
    let err = run(
        &headers,
        Some("X-Amz-Algorithm=AWS4-HMAC-SHA256"),
        VECTOR_TIME,
    )
    .unwrap_err();
    assert_eq!(err, SigV4Error::ConflictingAuthentication);
    headers.append("authorization", vector_auth(VECTOR_SIG).parse().unwrap());
    let err = run(&headers, None, VECTOR_TIME).unwrap_err();
    assert_eq!(err, SigV4Error::ConflictingAuthentication);
}

#[test]
fn invalid_content_sha256_header() {
    let mut headers = vector_headers(&vector_auth(VECTOR_SIG));
    headers.insert(
        "x-amz-content-sha256",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD".parse().unwrap(),
    );
    let err = run(
        &headers,
        Some("Action=ListUsers&Version=2010-05-08"),
        VECTOR_TIME,
    )
    .unwrap_err();
    assert_eq!(err.aws_code(), "InvalidSignatureException");
    assert!(
        err.to_string()
            .contains("UNSIGNED-PAYLOAD or the hex SHA-256"),
        "{err}"
    );
}

#[test]
fn presigned_errors() {
    let mut h = vector_headers("");
    // Only `host` is presigned: the request carries nothing else that must be signed.
    h.remove("content-type");
    let base = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fiam%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Signature=00";
    let err = run(&h, Some(base), VECTOR_TIME).unwrap_err();
    assert_eq!(err.aws_code(), "IncompleteSignatureException");
    assert_eq!(
        err.to_string(),
        "AWS query-string parameters must include 'X-Amz-Expires'. Re-examine the query-string parameters."
    );
    let err = run(
        &h,
        Some(&format!("{base}&X-Amz-Expires=604801")),
        VECTOR_TIME,
    )
    .unwrap_err();
    assert!(err.to_string().contains("X-Amz-Expires must be"), "{err}");
    let q = format!("{base}&X-Amz-Expires=60");
    let err = run(&h, Some(&q), VECTOR_TIME + 61).unwrap_err();
    assert_eq!(err.aws_code(), "InvalidSignatureException");
    assert_eq!(
        err.to_string(),
        "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z \
         (20150830T123701Z - 60 sec.)"
    );
    let err = run(&h, Some(&q), VECTOR_TIME - 901).unwrap_err();
    assert!(
        err.to_string().starts_with("Signature not yet current"),
        "{err}"
    );
    // Within its validity, a wrong signature is just that.
    assert_eq!(
        run(&h, Some(&q), VECTOR_TIME + 60),
        Err(SigV4Error::SignatureMismatch)
    );
}

#[test]
fn hmac_matches_rfc_4231() {
    // RFC 4231 test case 2, and case 6 (key longer than the block size).
    assert_eq!(
        hex::encode(hmac(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    assert_eq!(
        hex::encode(hmac(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First"
        )),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
}

#[test]
fn uppercased_signature_is_not_the_signature() {
    let upper = VECTOR_SIG.to_ascii_uppercase();
    let headers = vector_headers(&vector_auth(&upper));
    assert_eq!(
        run(
            &headers,
            Some("Action=ListUsers&Version=2010-05-08"),
            VECTOR_TIME
        ),
        Err(SigV4Error::SignatureMismatch)
    );
}

#[test]
fn a_remembered_signing_key_is_the_derived_one_and_never_another_secrets() {
    let scope = |service| Credential {
        access_key_id: "AKIDEXAMPLE",
        date: "20150830",
        region: "us-east-1",
        service,
    };
    for (secret, service) in [("a", "ecs"), ("b", "ecs"), ("a", "ecs"), ("a", "logs")] {
        let c = scope(service);
        assert_eq!(signing_key(secret, &c), derive_signing_key(secret, &c));
    }
    assert_ne!(
        signing_key("a", &scope("ecs")),
        signing_key("b", &scope("ecs"))
    );
}

#[test]
fn the_claimed_scope_comes_from_the_header_or_the_presigned_credential() {
    let region = |q: Option<&str>, h: &http::HeaderMap| {
        claimed_scope(q, h).map(|c| (c.region.into_owned(), c.service.into_owned()))
    };
    let h = vector_headers(&vector_auth(VECTOR_SIG));
    assert_eq!(region(None, &h), Some(("us-east-1".into(), "iam".into())));
    let bare = vector_headers("");
    let presigned = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Feu-west-3%2Fecs%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=00";
    assert_eq!(
        region(Some(presigned), &bare),
        Some(("eu-west-3".into(), "ecs".into()))
    );
    // Unsigned or unreadable: no claim; the dispatch words the refusal.
    assert_eq!(region(None, &bare), None);
    assert_eq!(region(Some("a=b"), &bare), None);
    let garbled = vector_headers("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/2015");
    assert_eq!(region(None, &garbled), None);
}
