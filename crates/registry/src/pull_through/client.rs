//! The upstream side of the pull-through cache: a small OCI distribution client that
//! fetches manifests and streams blobs from any distribution registry, answering the
//! authentication challenge the upstream sends (`Bearer` token flow, or `Basic`).
//!
//! Every call has a timeout; a blob body streams straight into the blob store, never
//! into memory. Plain `http://` upstreams are only ever loopback addresses (checked when
//! the rule is created, see `validate.rs`).

use super::{Credentials, Upstream};
use base64::Engine;
use bytes::Bytes;
use futures_util::TryStreamExt;
use http::{header, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, BodyStream, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How long an upstream has to answer (headers, or a whole manifest or token).
const TIMEOUT: Duration = Duration::from_secs(30);
/// Largest token response read.
const MAX_TOKEN_BYTES: usize = 64 * 1024;
/// What a manifest request accepts: every manifest kind the registry stores.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// Why an upstream call failed; the message is what users see in
/// UnableToGetUpstreamImageException.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    /// The upstream could not be reached or did not answer in time.
    #[error("the upstream registry {host} could not be reached: {detail}")]
    Unreachable {
        /// Upstream host.
        host: String,
        /// What failed.
        detail: String,
    },
    /// The upstream refused the credentials (or demanded some and none were given).
    #[error("the upstream registry {0} refused the credentials of the pull through cache rule")]
    Unauthorized(String),
    /// The upstream has no such image.
    #[error("the image {0} was not found in the upstream registry")]
    NotFound(String),
    /// The upstream answered something that is not a distribution API answer.
    #[error("the upstream registry answered {0}")]
    Protocol(String),
}

/// A shared connection pool for every upstream of this process.
fn http() -> &'static HttpClient {
    static CLIENT: OnceLock<HttpClient> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(TIMEOUT));
        connector.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config())
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https)
    })
}

/// Upstreams are verified against the system's CA certificates.
#[allow(deprecated)]
pub(crate) fn tls_config() -> rustls::ClientConfig {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!(%error, "Could not load a system CA certificate.");
    }
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(b) => b.with_root_certificates(roots).with_no_client_auth(),
        // Not reachable with the ring provider, which has every default version.
        Err(error) => {
            tracing::error!(%error, "TLS protocol versions unavailable; upstream TLS will fail.");
            rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        }
    }
}

/// One upstream repository's session: the authorization it earned is reused for the
/// manifest and every blob of one pull.
pub(crate) struct Session<'a> {
    upstream: &'a Upstream,
    repository: String,
    credentials: Option<Credentials>,
    authorization: Option<HeaderValue>,
}

/// A manifest fetched upstream.
pub(crate) struct Fetched {
    /// Exact bytes.
    pub bytes: Bytes,
    /// Its `Content-Type`.
    pub media_type: Option<String>,
}

/// A blob body being streamed from upstream.
pub(crate) struct BlobBody {
    /// The body as a reader.
    pub reader: blobstore::BlobReader,
}

impl<'a> Session<'a> {
    /// A session on `repository` of `upstream`, authenticating with `credentials`.
    pub(crate) fn new(
        upstream: &'a Upstream,
        repository: String,
        credentials: Option<Credentials>,
    ) -> Self {
        Self {
            upstream,
            repository,
            credentials,
            authorization: None,
        }
    }

    fn url(&self, tail: &str) -> String {
        format!(
            "{}://{}/v2/{}/{tail}",
            self.upstream.scheme, self.upstream.host, self.repository
        )
    }

    fn unreachable(&self, detail: impl std::fmt::Display) -> UpstreamError {
        UpstreamError::Unreachable {
            host: self.upstream.host.clone(),
            detail: detail.to_string(),
        }
    }

    /// Sends one request, answering one authentication challenge on the way.
    async fn send(
        &mut self,
        method: Method,
        url: &str,
        accept: Option<&str>,
    ) -> Result<http::Response<hyper::body::Incoming>, UpstreamError> {
        for attempt in 0..2 {
            let mut req = Request::builder().method(method.clone()).uri(url);
            if let Some(a) = accept {
                req = req.header(header::ACCEPT, a);
            }
            if let Some(auth) = &self.authorization {
                req = req.header(header::AUTHORIZATION, auth.clone());
            }
            let req = req
                .body(Empty::new())
                .map_err(|e| UpstreamError::Protocol(format!("an unusable URL {url}: {e}")))?;
            let resp = tokio::time::timeout(TIMEOUT, http().request(req))
                .await
                .map_err(|_| self.unreachable("no answer within 30 seconds"))?
                .map_err(|e| self.unreachable(e))?;
            if resp.status() != StatusCode::UNAUTHORIZED || attempt == 1 {
                return Ok(resp);
            }
            let challenge = resp
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .unwrap_or_default();
            self.authorization = Some(self.answer(&challenge).await?);
        }
        Err(UpstreamError::Unauthorized(self.upstream.host.clone()))
    }

    /// The `Authorization` header that answers `challenge`.
    async fn answer(&self, challenge: &str) -> Result<HeaderValue, UpstreamError> {
        let refused = || UpstreamError::Unauthorized(self.upstream.host.clone());
        match parse_challenge(challenge) {
            Some(Challenge::Basic) => {
                let c = self.credentials.as_ref().ok_or_else(refused)?;
                HeaderValue::from_str(&basic(c)).map_err(|_| refused())
            }
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                // A challenge without a scope (the `/v2/` probe) asks for none.
                let scope = scope.or_else(|| {
                    (!self.repository.is_empty())
                        .then(|| format!("repository:{}:pull", self.repository))
                });
                let token = self
                    .token(&realm, service.as_deref(), scope.as_deref())
                    .await?;
                HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| refused())
            }
            None => Err(UpstreamError::Protocol(format!(
                "401 with an authentication challenge this registry does not understand ({challenge:?})"
            ))),
        }
    }

    /// The token-endpoint leg of the bearer flow (anonymous when the rule has no
    /// credentials, as public registries allow).
    async fn token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
    ) -> Result<String, UpstreamError> {
        let realm_uri: http::Uri = realm
            .parse()
            .map_err(|_| UpstreamError::Protocol(format!("an unusable token realm {realm:?}")))?;
        // A realm may send the credentials elsewhere: only where TLS protects them, or
        // to the upstream's own loopback host.
        let same_host =
            realm_uri.authority().map(|a| a.as_str()) == Some(self.upstream.host.as_str());
        if realm_uri.scheme_str() != Some("https") && !same_host {
            return Err(UpstreamError::Protocol(format!(
                "a token realm {realm} that is neither https nor the upstream itself"
            )));
        }
        let mut query = Vec::new();
        if let Some(s) = service {
            query.push(format!("service={}", encode_query(s)));
        }
        if let Some(s) = scope {
            query.push(format!("scope={}", encode_query(s)));
        }
        let joiner = if realm.contains('?') { '&' } else { '?' };
        let url = if query.is_empty() {
            realm.to_owned()
        } else {
            format!("{realm}{joiner}{}", query.join("&"))
        };
        let mut req = Request::builder().method(Method::GET).uri(&url);
        if let Some(c) = &self.credentials {
            req = req.header(header::AUTHORIZATION, basic(c));
        }
        let req = req
            .body(Empty::new())
            .map_err(|e| UpstreamError::Protocol(format!("an unusable token URL: {e}")))?;
        let resp = tokio::time::timeout(TIMEOUT, http().request(req))
            .await
            .map_err(|_| self.unreachable("the token endpoint did not answer within 30 seconds"))?
            .map_err(|e| self.unreachable(e))?;
        if resp.status() == StatusCode::UNAUTHORIZED || resp.status() == StatusCode::FORBIDDEN {
            return Err(UpstreamError::Unauthorized(self.upstream.host.clone()));
        }
        if !resp.status().is_success() {
            return Err(UpstreamError::Protocol(format!(
                "{} from its token endpoint",
                resp.status()
            )));
        }
        let body = read_limited(resp.into_body(), MAX_TOKEN_BYTES)
            .await
            .map_err(|e| self.unreachable(e))?;
        #[derive(serde::Deserialize)]
        struct TokenReply {
            token: Option<String>,
            access_token: Option<String>,
        }
        let reply: TokenReply = serde_json::from_slice(&body).map_err(|e| {
            UpstreamError::Protocol(format!("a token response that is not JSON: {e}"))
        })?;
        reply
            .token
            .or(reply.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| UpstreamError::Protocol("a token response without a token".into()))
    }

    /// Checks the upstream speaks the distribution API and accepts the credentials
    /// (`GET /v2/`).
    pub(crate) async fn ping(&mut self) -> Result<(), UpstreamError> {
        let url = format!("{}://{}/v2/", self.upstream.scheme, self.upstream.host);
        let resp = self.send(Method::GET, &url, None).await?;
        self.check(resp.status(), "/v2/")
    }

    /// The digest `reference` points to upstream now (a `HEAD`, which registries do not
    /// count against pull limits).
    pub(crate) async fn head_manifest(
        &mut self,
        reference: &str,
    ) -> Result<Option<String>, UpstreamError> {
        let url = self.url(&format!("manifests/{reference}"));
        let resp = self.send(Method::HEAD, &url, Some(ACCEPT)).await?;
        self.check(resp.status(), reference)?;
        Ok(resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned))
    }

    /// The manifest `reference` names upstream.
    pub(crate) async fn manifest(&mut self, reference: &str) -> Result<Fetched, UpstreamError> {
        let url = self.url(&format!("manifests/{reference}"));
        let resp = self.send(Method::GET, &url, Some(ACCEPT)).await?;
        self.check(resp.status(), reference)?;
        let media_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = tokio::time::timeout(
            TIMEOUT,
            read_limited(resp.into_body(), oci::manifest::MAX_MANIFEST_BYTES),
        )
        .await
        .map_err(|_| self.unreachable("the manifest did not arrive within 30 seconds"))?
        .map_err(|e| self.unreachable(e))?;
        Ok(Fetched { bytes, media_type })
    }

    /// Opens blob `digest` upstream for streaming.
    pub(crate) async fn blob(&mut self, digest: &oci::Digest) -> Result<BlobBody, UpstreamError> {
        let url = self.url(&format!("blobs/{digest}"));
        // Registries commonly redirect blobs to storage; follow a few hops without
        // forwarding credentials (the redirect target is pre-signed).
        let mut resp = self.send(Method::GET, &url, None).await?;
        for _ in 0..3 {
            if !resp.status().is_redirection() {
                break;
            }
            let Some(location) = resp
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
            else {
                break;
            };
            let target = absolute(&url, &location);
            let req = Request::builder()
                .method(Method::GET)
                .uri(&target)
                .body(Empty::new())
                .map_err(|e| UpstreamError::Protocol(format!("an unusable redirect: {e}")))?;
            resp = tokio::time::timeout(TIMEOUT, http().request(req))
                .await
                .map_err(|_| self.unreachable("a blob redirect did not answer within 30 seconds"))?
                .map_err(|e| self.unreachable(e))?;
        }
        self.check(resp.status(), &digest.to_string())?;
        let stream = BodyStream::new(resp.into_body())
            .try_filter_map(|frame| async move { Ok(frame.into_data().ok()) })
            .map_err(std::io::Error::other);
        Ok(BlobBody {
            reader: Box::pin(tokio_util::io::StreamReader::new(stream)),
        })
    }

    fn check(&self, status: StatusCode, what: &str) -> Result<(), UpstreamError> {
        match status {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND => Err(UpstreamError::NotFound(format!(
                "{}/{}:{what}",
                self.upstream.host, self.repository
            ))),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Err(UpstreamError::Unauthorized(self.upstream.host.clone()))
            }
            s => Err(UpstreamError::Protocol(s.to_string())),
        }
    }
}

/// An authentication challenge (`WWW-Authenticate`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// `Basic realm=...`
    Basic,
    /// `Bearer realm=...,service=...,scope=...`
    Bearer {
        /// Token endpoint.
        realm: String,
        /// `service` parameter.
        service: Option<String>,
        /// `scope` parameter.
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` value (one challenge; quoted parameters may hold commas).
pub(crate) fn parse_challenge(value: &str) -> Option<Challenge> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = std::collections::HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => val.extend(chars.next()),
                    '"' => break,
                    c => val.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                val.push(c);
                chars.next();
            }
        }
        params.insert(key.trim().to_ascii_lowercase(), val);
    }
    Some(Challenge::Bearer {
        realm: params.remove("realm")?,
        service: params.remove("service"),
        scope: params.remove("scope"),
    })
}

fn basic(c: &Credentials) -> String {
    let pair = format!("{}:{}", c.username, c.access_token);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `location` resolved against `base` (absolute, or an absolute path on its host).
pub(crate) fn absolute(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_owned();
    }
    let origin_end = base
        .find("://")
        .and_then(|i| base[i + 3..].find('/').map(|j| i + 3 + j))
        .unwrap_or(base.len());
    format!("{}{location}", &base[..origin_end])
}

/// Reads a body of at most `limit` bytes.
async fn read_limited(body: hyper::body::Incoming, limit: usize) -> Result<Bytes, String> {
    let limited = http_body_util::Limited::new(body, limit);
    limited
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| format!("reading the body failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_keep_quoted_commas_and_unquoted_values() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge("bearer realm=http://127.0.0.1:5000/v2/token"),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:5000/v2/token".into(),
                service: None,
                scope: None
            })
        );
    }

    #[test]
    fn basic_and_unknown_challenges() {
        assert_eq!(
            parse_challenge(r#"Basic realm="https://x/""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate abc"), None);
        assert_eq!(parse_challenge("Bearer service=\"x\""), None);
        assert_eq!(parse_challenge(""), None);
    }

    #[test]
    fn redirects_resolve_against_the_origin() {
        assert_eq!(
            absolute("https://r.example/v2/a/blobs/x", "/storage/x?sig=1"),
            "https://r.example/storage/x?sig=1"
        );
        assert_eq!(
            absolute("https://r.example/v2/a", "https://cdn.example/y"),
            "https://cdn.example/y"
        );
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            encode_query("repository:a/b:pull"),
            "repository%3Aa%2Fb%3Apull"
        );
    }
}
