//! The one place answers are put on the wire: success bodies with their content type, and
//! [`AwsError`]s in each protocol's error envelope, every one carrying `x-amzn-RequestId`.
//!
//! - AWS JSON 1.0/1.1: `{"__type": code, "message": text, ...}` and `x-amzn-ErrorType`.
//! - AWS query: `<ErrorResponse><Error><Type>Sender|Receiver</Type><Code>…</Code>
//!   <Message>…</Message></Error><RequestId>…</RequestId></ErrorResponse>`, `Receiver`
//!   for 5xx.
//! - Smithy RPC v2 CBOR: a CBOR map `{"__type", "message"}` (the smallest encoder that
//!   says what went wrong). A successful CBOR answer with no body (a Unit output) has no
//!   `Content-Type` either, as the protocol requires.
//! - Errors of `awsQueryCompatible` services (CloudWatch) also carry
//!   `x-amzn-query-error: <query code>;Sender|Receiver` in JSON and CBOR, and their query
//!   code as the query protocol's `Code`.

use crate::{AwsError, JsonVersion, Protocol};
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};

/// How an answer is encoded: the protocol of the request (or of the service, once known).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Envelope {
    /// AWS JSON 1.0 or 1.1.
    Json(JsonVersion),
    /// AWS query (XML answers).
    Query,
    /// EC2's query dialect (XML answers, its own error document).
    Ec2,
    /// Smithy RPC v2 CBOR.
    Cbor,
}

impl From<Protocol> for Envelope {
    fn from(p: Protocol) -> Self {
        match p {
            Protocol::AwsJson { version, .. } => Self::Json(version),
            Protocol::AwsQuery { .. } => Self::Query,
            Protocol::Ec2Query { .. } => Self::Ec2,
            Protocol::RpcV2Cbor { .. } => Self::Cbor,
        }
    }
}

impl Envelope {
    /// Whether answers are XML (the query protocol and EC2's dialect of it).
    pub fn is_xml(self) -> bool {
        matches!(self, Self::Query | Self::Ec2)
    }

    /// The `Content-Type` of answers.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json(v) => v.content_type(),
            Self::Query | Self::Ec2 => "text/xml",
            Self::Cbor => "application/cbor",
        }
    }
}

/// A successful answer: `body` as the service encoded it.
pub fn success(envelope: Envelope, body: Vec<u8>, request_id: &str) -> Response<Bytes> {
    respond(envelope, StatusCode::OK, Bytes::from(body), request_id)
}

/// `err` in `envelope`'s error shape, with its status (400 when the status is not valid).
pub fn error(envelope: Envelope, err: &AwsError, request_id: &str) -> Response<Bytes> {
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST);
    let body = match envelope {
        Envelope::Json(_) => err.json_body(),
        Envelope::Query => query_error_body(err, request_id).into_bytes(),
        Envelope::Ec2 => crate::ec2::error_body(err, request_id).into_bytes(),
        Envelope::Cbor => cbor_error_body(err),
    };
    let mut resp = respond(envelope, status, Bytes::from(body), request_id);
    if let Ok(v) = HeaderValue::from_str(&err.code) {
        resp.headers_mut().insert("x-amzn-ErrorType", v);
    }
    if let Some(code) = err.query_code.as_deref().filter(|_| !envelope.is_xml()) {
        let value = format!("{code};{}", query_fault(err.status));
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert("x-amzn-query-error", v);
        }
    }
    resp
}

fn respond(
    envelope: Envelope,
    status: StatusCode,
    body: Bytes,
    request_id: &str,
) -> Response<Bytes> {
    // Smithy RPC v2 CBOR: a Unit output is sent with no body and no Content-Type.
    let typed = !(envelope == Envelope::Cbor && body.is_empty());
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    if typed {
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(envelope.content_type()),
        );
    }
    if envelope == Envelope::Cbor {
        resp.headers_mut()
            .insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert("x-amzn-RequestId", v);
    }
    resp
}

/// `Sender` for the caller's mistakes, `Receiver` for server faults (5xx).
pub fn query_fault(status: u16) -> &'static str {
    if status >= 500 {
        "Receiver"
    } else {
        "Sender"
    }
}

fn query_error_body(err: &AwsError, request_id: &str) -> String {
    format!(
        "<ErrorResponse><Error><Type>{}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        query_fault(err.status),
        xml_escape(err.query_code.as_deref().unwrap_or(&err.code)),
        xml_escape(&err.message),
        xml_escape(request_id),
    )
}

/// Escapes text for an XML element or attribute.
pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `{"__type": code, "message": text}` as a definite-length CBOR map.
fn cbor_error_body(err: &AwsError) -> Vec<u8> {
    let mut out = Vec::new();
    cbor_head(&mut out, 5, 2);
    for text in ["__type", err.code.as_str(), "message", err.message.as_str()] {
        cbor_head(&mut out, 3, text.len() as u64);
        out.extend_from_slice(text.as_bytes());
    }
    out
}

/// A CBOR item head: major type and argument in the shortest form (RFC 8949 §3).
fn cbor_head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let m = major << 5;
    match arg {
        0..=23 => out.push(m | arg as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, arg as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(arg as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(arg as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&arg.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(r: &'a Response<Bytes>, name: &str) -> &'a str {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    #[test]
    fn json_errors_carry_type_message_error_type_header_and_the_version_content_type() {
        for (v, ct) in [
            (JsonVersion::V1_0, "application/x-amz-json-1.0"),
            (JsonVersion::V1_1, "application/x-amz-json-1.1"),
        ] {
            let r = error(
                Envelope::Json(v),
                &AwsError::client("ClusterNotFoundException", "Cluster not found."),
                "rid-1",
            );
            assert_eq!(r.status(), 400);
            assert_eq!(header(&r, "content-type"), ct);
            assert_eq!(header(&r, "x-amzn-ErrorType"), "ClusterNotFoundException");
            assert_eq!(header(&r, "x-amzn-RequestId"), "rid-1");
            let v: serde_json::Value = serde_json::from_slice(r.body()).expect("json");
            assert_eq!(v["__type"], "ClusterNotFoundException");
            assert_eq!(v["message"], "Cluster not found.");
        }
    }

    #[test]
    fn query_errors_are_sender_for_4xx_and_receiver_for_5xx_with_the_request_id() {
        for (status, kind) in [
            (400, "Sender"),
            (403, "Sender"),
            (413, "Sender"),
            (500, "Receiver"),
            (503, "Receiver"),
        ] {
            let err = AwsError::client("ValidationError", "a < b & c").with_status(status);
            let r = error(Envelope::Query, &err, "rid-2");
            assert_eq!(r.status().as_u16(), status);
            assert_eq!(header(&r, "content-type"), "text/xml");
            let body = std::str::from_utf8(r.body()).expect("utf-8");
            assert_eq!(
                body,
                format!("<ErrorResponse><Error><Type>{kind}</Type><Code>ValidationError</Code><Message>a &lt; b &amp; c</Message></Error><RequestId>rid-2</RequestId></ErrorResponse>")
            );
        }
    }

    #[test]
    fn cbor_errors_are_a_two_entry_cbor_map() {
        let r = error(Envelope::Cbor, &AwsError::client("X", "m"), "rid");
        assert_eq!(header(&r, "content-type"), "application/cbor");
        assert_eq!(header(&r, "smithy-protocol"), "rpc-v2-cbor");
        let expected: &[u8] = &[
            0xa2, 0x66, b'_', b'_', b't', b'y', b'p', b'e', 0x61, b'X', 0x67, b'm', b'e', b's',
            b's', b'a', b'g', b'e', 0x61, b'm',
        ];
        assert_eq!(r.body().as_ref(), expected);
    }

    #[test]
    fn cbor_lengths_use_the_shortest_head() {
        let mut out = Vec::new();
        cbor_head(&mut out, 3, 24);
        cbor_head(&mut out, 3, 300);
        cbor_head(&mut out, 3, 70_000);
        assert_eq!(
            out,
            [0x78, 24, 0x79, 0x01, 0x2c, 0x7a, 0x00, 0x01, 0x11, 0x70]
        );
    }

    #[test]
    fn query_compatible_errors_carry_their_query_code() {
        let err = AwsError::client(
            "com.amazonaws.cloudwatch#InvalidParameterValueException",
            "m",
        )
        .with_query_code("InvalidParameterValue");
        for env in [Envelope::Json(JsonVersion::V1_0), Envelope::Cbor] {
            let r = error(env, &err, "rid");
            assert_eq!(
                header(&r, "x-amzn-query-error"),
                "InvalidParameterValue;Sender"
            );
        }
        let r = error(Envelope::Query, &err, "rid");
        assert_eq!(header(&r, "x-amzn-query-error"), "");
        let body = std::str::from_utf8(r.body()).expect("utf-8");
        assert!(
            body.contains("<Code>InvalidParameterValue</Code>"),
            "{body}"
        );
    }

    #[test]
    fn an_empty_cbor_answer_has_no_content_type() {
        let r = success(Envelope::Cbor, Vec::new(), "rid");
        assert!(r.headers().get("content-type").is_none());
        assert_eq!(header(&r, "smithy-protocol"), "rpc-v2-cbor");
    }

    #[test]
    fn an_invalid_status_is_sent_as_400() {
        let r = error(
            Envelope::Json(JsonVersion::V1_1),
            &AwsError::client("X", "m").with_status(42),
            "r",
        );
        assert_eq!(r.status(), 400);
    }
}
