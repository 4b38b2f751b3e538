//! Refusals at the front door, before routing or authentication: a path not in normal
//! form, and a listener over its in-flight cap. Each is answered in the shape the caller
//! expects: the Docker registry API's error document on `/v2/`, else the AWS protocol the
//! request's headers name.

use super::route::classify;
use crate::envelope;
use crate::AwsError;
use bytes::Bytes;
use http::HeaderMap;

/// Why the front door refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The path has empty, `.` or `..` segments or a percent-encoded `.`, `/` or `\`.
    PathNotNormal,
    /// The listener already serves its cap of requests.
    Overloaded,
}

/// Whether `path` is in the normal form every route is matched and signed on: it starts
/// with `/`, has no empty segment (`//`, except a lone trailing `/`), no `.` or `..`
/// segment, no backslash and no percent-encoded `.`, `/` or `\`.
///
/// Non-S3 SigV4 (ECS, IAM, STS, ECR, Logs, ELBv2) normalises the path before signing,
/// so `/a/../b` and `/b` carry the same signature; the verifier also accepts signers
/// that do not normalise. Routing on one reading while the signature covers the other
/// would let a signature checked on one path authorize another, so such paths are
/// refused outright rather than normalised: no SDK sends them (botocore and the Go and
/// Rust SDKs send `/` or a normal path), and the registry's names and references cannot
/// contain them either.
pub fn path_is_normal(path: &str) -> bool {
    let Some(inner) = path.strip_prefix('/') else {
        return false;
    };
    if inner.is_empty() {
        return true;
    }
    let inner = inner.strip_suffix('/').unwrap_or(inner);
    if path.contains('\\') || has_encoded_separator(path.as_bytes()) {
        return false;
    }
    inner
        .split('/')
        .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

/// `%2E`, `%2F` or `%5C` (either case): a dot, slash or backslash hidden from routing.
fn has_encoded_separator(path: &[u8]) -> bool {
    path.windows(3).any(|w| {
        w[0] == b'%'
            && matches!(
                (w[1], w[2].to_ascii_uppercase()),
                (b'2', b'E') | (b'2', b'F') | (b'5', b'C')
            )
    })
}

/// The response to a refused request.
///
/// Over the in-flight cap, AWS JSON and CBOR callers get `ThrottlingException` and
/// query callers (IAM, STS, ELBv2) `Throttling`, the codes those services answer when
/// they shed load, with status 503: botocore and the other SDKs retry both the codes and
/// the status with backoff. Registry clients get the distribution spec's
/// `TOOMANYREQUESTS` (429), which Docker retries. A path not in normal form is a client
/// error: `InvalidURI` (400), or the registry's `NAME_INVALID`.
pub fn refuse(refusal: Refusal, path: &str, headers: &HeaderMap) -> http::Response<Bytes> {
    if path == "/v2" || path.starts_with("/v2/") {
        return registry_error(refusal);
    }
    let addressed = classify(path, headers);
    let envelope = addressed.envelope();
    let err = match refusal {
        Refusal::Overloaded => {
            let code = if envelope == envelope::Envelope::Query {
                "Throttling"
            } else {
                "ThrottlingException"
            };
            AwsError::client(code, "Rate exceeded").with_status(503)
        }
        Refusal::PathNotNormal => path_refusal(),
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    envelope::error(envelope, &err, &request_id)
}

/// The AWS error for a path not in normal form.
pub fn path_refusal() -> AwsError {
    AwsError::client(
        "InvalidURI",
        "The request path must be in normal form: no empty, '.' or '..' segments and no \
         percent-encoded '.', '/' or '\\'.",
    )
}

fn registry_error(refusal: Refusal) -> http::Response<Bytes> {
    let (status, code, message) = match refusal {
        Refusal::Overloaded => (
            http::StatusCode::TOO_MANY_REQUESTS,
            "TOOMANYREQUESTS",
            "too many requests in flight; retry later",
        ),
        Refusal::PathNotNormal => (
            http::StatusCode::BAD_REQUEST,
            "NAME_INVALID",
            "the path must have no empty, '.' or '..' segments and no percent-encoded '.', '/' or '\\\\'",
        ),
    };
    let body = format!(r#"{{"errors":[{{"code":"{code}","message":"{message}","detail":null}}]}}"#);
    let mut response = http::Response::new(Bytes::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn normal_paths_pass_and_tricks_do_not() {
        for ok in [
            "/",
            "/v2/",
            "/v2/a/b/manifests/latest",
            "/v2/a/blobs/sha256:ab",
            "/service/S/operation/Op",
            "/health",
            "/a%20b",
            "/a%2",
        ] {
            assert!(path_is_normal(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "//",
            "/v2//a",
            "/v2/../ws",
            "/v2/./x",
            "/v2/a/..",
            "/v2/%2e%2e/ws",
            "/v2/a%2Fb/tags/list",
            "/v2/a%2fb",
            "/v2/a%5cb",
            "/v2/a\\b",
            "/x/.",
        ] {
            assert!(!path_is_normal(bad), "{bad}");
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, http::HeaderValue::from_static(v));
        }
        h
    }

    fn body(r: &http::Response<Bytes>) -> String {
        String::from_utf8(r.body().to_vec()).unwrap()
    }

    #[test]
    fn overload_is_answered_in_the_callers_protocol() {
        let json = refuse(
            Refusal::Overloaded,
            "/",
            &headers(&[("content-type", "application/x-amz-json-1.1")]),
        );
        assert_eq!(json.status(), 503);
        assert!(
            body(&json).contains("ThrottlingException"),
            "{}",
            body(&json)
        );
        let query = refuse(
            Refusal::Overloaded,
            "/",
            &headers(&[("content-type", "application/x-www-form-urlencoded")]),
        );
        assert_eq!(query.status(), 503);
        assert!(
            body(&query).contains("<Code>Throttling</Code>"),
            "{}",
            body(&query)
        );
        let registry = refuse(Refusal::Overloaded, "/v2/x/manifests/y", &HeaderMap::new());
        assert_eq!(registry.status(), 429);
        assert!(body(&registry).contains("TOOMANYREQUESTS"));
    }

    #[test]
    fn a_path_trick_is_a_client_error() {
        let r = refuse(Refusal::PathNotNormal, "/a/../", &HeaderMap::new());
        assert_eq!(r.status(), 400);
        assert!(body(&r).contains("InvalidURI"), "{}", body(&r));
        let r = refuse(Refusal::PathNotNormal, "/v2/../ws", &HeaderMap::new());
        assert_eq!(r.status(), 400);
        assert!(body(&r).contains("NAME_INVALID"));
    }
}
