//! The pure part of dispatch: which protocol a request speaks and what it names, from its
//! path and headers alone (the query protocol names its operation in the body, read later).

use super::JsonVersion;
use crate::envelope::Envelope;
use http::HeaderMap;

/// What a request's path and headers say it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addressed<'a> {
    /// AWS JSON: the `X-Amz-Target` header as sent (`None`: absent or not text).
    Json {
        /// From the `Content-Type` (1.1 unless it says 1.0).
        version: JsonVersion,
        /// The raw `X-Amz-Target`.
        target: Option<&'a str>,
    },
    /// AWS query: a form body names `Action` and `Version`.
    Query,
    /// Smithy RPC v2 CBOR: `/service/<service>/operation/<operation>`.
    Cbor {
        /// The service shape name.
        service: &'a str,
        /// The operation name.
        operation: &'a str,
    },
}

impl Addressed<'_> {
    /// How errors are encoded until the service is known.
    pub fn envelope(self) -> Envelope {
        match self {
            Self::Json { version, .. } => Envelope::Json(version),
            Self::Query => Envelope::Query,
            Self::Cbor { .. } => Envelope::Cbor,
        }
    }
}

/// Classifies a request: the RPC v2 CBOR path first, then by `Content-Type` (a form is
/// the query protocol; anything else AWS JSON, 1.1 unless it says 1.0, as botocore and
/// the Go SDK always say which).
pub fn classify<'a>(path: &'a str, headers: &'a HeaderMap) -> Addressed<'a> {
    if let Some((service, operation)) = rpc_v2_path(path) {
        return Addressed::Cbor { service, operation };
    }
    let content_type = header(headers, http::header::CONTENT_TYPE.as_str()).unwrap_or("");
    if content_type.starts_with("application/x-www-form-urlencoded") {
        return Addressed::Query;
    }
    let version = if content_type.starts_with("application/x-amz-json-1.0") {
        JsonVersion::V1_0
    } else {
        JsonVersion::V1_1
    };
    Addressed::Json {
        version,
        target: header(headers, "x-amz-target"),
    }
}

/// `(service, operation)` of a `/service/<service>/operation/<operation>` path.
pub fn rpc_v2_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/service/")?;
    let (service, rest) = rest.split_once('/')?;
    let operation = rest.strip_prefix("operation/")?;
    let named = |s: &str| !s.is_empty() && !s.contains('/');
    (named(service) && named(operation)).then_some((service, operation))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn form_content_type_is_the_query_protocol() {
        let h = headers(&[(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )]);
        assert_eq!(classify("/", &h), Addressed::Query);
    }

    #[test]
    fn json_version_follows_the_content_type_and_defaults_to_1_1() {
        let h = headers(&[
            ("content-type", "application/x-amz-json-1.0"),
            ("x-amz-target", "Logs_20140328.PutLogEvents"),
        ]);
        assert_eq!(
            classify("/", &h),
            Addressed::Json {
                version: JsonVersion::V1_0,
                target: Some("Logs_20140328.PutLogEvents")
            }
        );
        assert_eq!(
            classify("/", &HeaderMap::new()),
            Addressed::Json {
                version: JsonVersion::V1_1,
                target: None
            }
        );
    }

    #[test]
    fn rpc_v2_paths_name_service_and_operation() {
        let h = headers(&[("content-type", "application/cbor")]);
        assert_eq!(
            classify(
                "/service/GraniteServiceVersion20100801/operation/PutMetricData",
                &h
            ),
            Addressed::Cbor {
                service: "GraniteServiceVersion20100801",
                operation: "PutMetricData"
            }
        );
        assert_eq!(rpc_v2_path("/service/X/operation/"), None);
        assert_eq!(rpc_v2_path("/service//operation/Y"), None);
        assert_eq!(rpc_v2_path("/service/X/operation/Y/Z"), None);
        assert_eq!(rpc_v2_path("/services/X/operation/Y"), None);
    }
}
