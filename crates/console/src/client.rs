//! The console's AWS client: builds a request in the service's own protocol, signs it
//! with SigV4 as the signed-in principal, and hands it to the public endpoint ([`Api`]).
//! Answers come back as JSON values (JSON protocols) or XML documents (query protocols);
//! refusals as the AWS error code and message the endpoint sent.

use crate::session::Credentials;
use crate::Api;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use serde_json::Value;
use std::time::SystemTime;

/// An AWS error as the endpoint answered it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub(crate) struct ApiError {
    /// `AccessDeniedException`, `ClientException`, …
    pub code: String,
    pub message: String,
}

impl ApiError {
    fn local(message: impl Into<String>) -> Self {
        Self {
            code: "ConsoleError".into(),
            message: message.into(),
        }
    }

    /// Whether the credentials themselves were refused (deleted key, expired token): the
    /// session is then over.
    pub fn ends_session(&self) -> bool {
        matches!(
            self.code.as_str(),
            "UnrecognizedClientException"
                | "InvalidClientTokenId"
                | "ExpiredTokenException"
                | "ExpiredToken"
                | "InvalidSignatureException"
                | "SignatureDoesNotMatch"
        )
    }
}

/// A JSON-protocol service the console calls.
#[derive(Clone, Copy, Debug)]
pub(crate) struct JsonService {
    signing_name: &'static str,
    target_prefix: &'static str,
    content_type: &'static str,
}

/// Amazon ECS.
pub(crate) const ECS: JsonService = JsonService {
    signing_name: "ecs",
    target_prefix: "AmazonEC2ContainerServiceV20141113",
    content_type: "application/x-amz-json-1.1",
};
/// Amazon ECR.
pub(crate) const ECR: JsonService = JsonService {
    signing_name: "ecr",
    target_prefix: "AmazonEC2ContainerRegistry_V20150921",
    content_type: "application/x-amz-json-1.1",
};
/// CloudWatch Logs.
pub(crate) const LOGS: JsonService = JsonService {
    signing_name: "logs",
    target_prefix: "Logs_20140328",
    content_type: "application/x-amz-json-1.1",
};

/// A query-protocol service the console calls.
#[derive(Clone, Copy, Debug)]
pub(crate) struct QueryService {
    signing_name: &'static str,
    version: &'static str,
}

/// AWS STS.
pub(crate) const STS: QueryService = QueryService {
    signing_name: "sts",
    version: "2011-06-15",
};
/// Elastic Load Balancing v2.
pub(crate) const ELBV2: QueryService = QueryService {
    signing_name: "elasticloadbalancing",
    version: "2015-12-01",
};

/// Calls the API as one principal in one region.
pub(crate) struct Client<'a> {
    pub api: &'a dyn Api,
    pub credentials: &'a Credentials,
    pub region: &'a str,
    /// The browser's address, so `aws:SourceIp` conditions see it as they would the CLI's.
    pub peer: Option<std::net::SocketAddr>,
}

impl Client<'_> {
    /// Calls `operation` of a JSON-protocol service with `input`.
    pub async fn json(
        &self,
        service: JsonService,
        operation: &str,
        input: &Value,
    ) -> Result<Value, ApiError> {
        let body = serde_json::to_vec(input).map_err(|e| ApiError::local(e.to_string()))?;
        let target = format!("{}.{operation}", service.target_prefix);
        let headers = [
            ("content-type", service.content_type),
            ("x-amz-target", target.as_str()),
        ];
        let (status, body) = self
            .send(service.signing_name, &headers, Bytes::from(body))
            .await?;
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(value);
        }
        let code = value
            .get("__type")
            .and_then(Value::as_str)
            .map(|t| t.rsplit('#').next().unwrap_or(t).to_owned())
            .unwrap_or_else(|| format!("HTTP{}", status.as_u16()));
        let message = value
            .get("message")
            .or_else(|| value.get("Message"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        Err(ApiError { code, message })
    }

    /// Calls `action` of a query-protocol service with `params`; the XML document.
    pub async fn query(
        &self,
        service: QueryService,
        action: &str,
        params: &[(&str, &str)],
    ) -> Result<String, ApiError> {
        let mut form = format!("Action={action}&Version={}", service.version);
        for (k, v) in params {
            form.push('&');
            form.push_str(&encode(k));
            form.push('=');
            form.push_str(&encode(v));
        }
        let headers = [(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )];
        let (status, body) = self
            .send(service.signing_name, &headers, Bytes::from(form))
            .await?;
        let text = String::from_utf8_lossy(&body).into_owned();
        if status.is_success() {
            return Ok(text);
        }
        let doc = roxmltree::Document::parse(&text).ok();
        let field = |name: &str| {
            doc.as_ref()
                .and_then(|d| d.descendants().find(|n| n.has_tag_name(name)))
                .and_then(|n| n.text())
                .map(str::to_owned)
        };
        Err(ApiError {
            code: field("Code").unwrap_or_else(|| format!("HTTP{}", status.as_u16())),
            message: field("Message").unwrap_or_default(),
        })
    }

    /// Signs and sends one POST to `/`.
    async fn send(
        &self,
        signing_name: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<(http::StatusCode, Bytes), ApiError> {
        // The endpoint checks the signature against the headers it receives, host
        // included; the name itself does not matter to it.
        let host = "console.stevedore.internal";
        let mut all: Vec<(&str, &str)> = vec![("host", host)];
        all.extend_from_slice(headers);
        let signature = self.sign(signing_name, host, &all, &body)?;
        let mut builder = http::Request::post("/");
        for (k, v) in all.iter().copied() {
            builder = builder.header(k, v);
        }
        for (k, v) in &signature {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let mut req = builder
            .body(body)
            .map_err(|e| ApiError::local(e.to_string()))?;
        if let Some(peer) = self.peer {
            req.extensions_mut().insert(Peer(peer));
        }
        let resp = self.api.call(req).await;
        Ok((resp.status(), resp.into_body()))
    }

    fn sign(
        &self,
        signing_name: &str,
        host: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Vec<(String, String)>, ApiError> {
        let creds = aws_credential_types::Credentials::new(
            &self.credentials.access_key_id,
            &self.credentials.secret_access_key,
            self.credentials.session_token.clone(),
            None,
            "stevedore-console",
        );
        let identity: aws_smithy_runtime_api::client::identity::Identity = creds.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(self.region)
            .name(signing_name)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| ApiError::local(format!("could not sign: {e}")))?
            .into();
        let uri = format!("http://{host}/");
        let signable = SignableRequest::new(
            "POST",
            uri.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| ApiError::local(format!("could not sign: {e}")))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| ApiError::local(format!("could not sign: {e}")))?
            .into_parts();
        Ok(instructions
            .headers()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect())
    }
}

/// The browser's address, carried on the console's API requests for the server to turn
/// into its own peer-address extension.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub std::net::SocketAddr);

/// Everything but RFC 3986's unreserved characters, which stay as they are.
pub(crate) const UNRESERVED_KEPT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Form encoding as SigV4's canonical query reads it (RFC 3986 unreserved kept).
fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, UNRESERVED_KEPT).to_string()
}

/// The text of the first element named `name` under `node`.
pub(crate) fn xml_text<'a>(node: roxmltree::Node<'a, 'a>, name: &str) -> Option<&'a str> {
    node.descendants()
        .find(|n| n.has_tag_name(name))
        .and_then(|n| n.text())
}

/// The `<member>` elements of the first list element named `list`.
pub(crate) fn xml_members<'a>(
    doc: &'a roxmltree::Document<'a>,
    list: &str,
) -> Vec<roxmltree::Node<'a, 'a>> {
    doc.descendants()
        .find(|n| n.has_tag_name(list))
        .map(|l| l.children().filter(|n| n.has_tag_name("member")).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_are_percent_encoded_except_unreserved() {
        assert_eq!(encode("a b/c~d"), "a%20b%2Fc~d");
        assert_eq!(encode("arn:aws:x"), "arn%3Aaws%3Ax");
    }

    #[test]
    fn refused_credentials_end_the_session_and_denials_do_not() {
        let e = |code: &str| ApiError {
            code: code.into(),
            message: String::new(),
        };
        assert!(e("UnrecognizedClientException").ends_session());
        assert!(e("ExpiredToken").ends_session());
        assert!(!e("AccessDeniedException").ends_session());
    }
}
