//! A small signed client for the ECS JSON 1.1 API: the calls an instance agent makes
//! (`RegisterContainerInstance`, `DiscoverPollEndpoint`, `SubmitTaskStateChange`,
//! `SubmitContainerStateChange`, `CreateCluster`). It owns request signing, keep-alive
//! connections, per-call timeouts and the classification of failures into transient
//! (retry) and terminal ([`ApiError::is_transient`]). It does not retry by itself: the
//! caller decides how long a call is worth retrying.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use model::ecs::shapes::{
    CreateClusterRequest, CreateClusterResponse, DiscoverPollEndpointRequest,
    DiscoverPollEndpointResponse, RegisterContainerInstanceRequest,
    RegisterContainerInstanceResponse, SubmitContainerStateChangeRequest,
    SubmitContainerStateChangeResponse, SubmitTaskStateChangeRequest,
    SubmitTaskStateChangeResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::credentials::Credentials;
use crate::sign::{compute_signature_headers, Scope};

/// The `X-Amz-Target` prefix of the ECS API.
pub const TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113";

/// A JSON-protocol AWS service: its target prefix, signing name and content type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JsonService {
    /// `X-Amz-Target` prefix.
    pub target_prefix: &'static str,
    /// SigV4 signing name.
    pub signing_name: &'static str,
    /// `content-type` of requests.
    pub content_type: &'static str,
}

/// ECS.
pub const ECS_SERVICE: JsonService = JsonService {
    target_prefix: TARGET_PREFIX,
    signing_name: "ecs",
    content_type: "application/x-amz-json-1.1",
};

/// CloudWatch Logs.
pub const LOGS_SERVICE: JsonService = JsonService {
    target_prefix: "Logs_20140328",
    signing_name: "logs",
    content_type: "application/x-amz-json-1.1",
};

/// ECR (the registry API; signing name `ecr`).
pub const ECR_SERVICE: JsonService = JsonService {
    target_prefix: "AmazonEC2ContainerRegistry_V20150921",
    signing_name: "ecr",
    content_type: "application/x-amz-json-1.1",
};

/// The default time one call (connect, send, read the whole response) may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// The largest response body read; ECS responses the agent reads are far smaller.
const MAX_RESPONSE_BYTES: usize = 4 << 20;

/// How to reach and sign for the ECS API.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Base URL, e.g. `http://127.0.0.1:4747`. Only `http` is supported.
    pub endpoint: String,
    /// Other replicas of the same control plane (several `stevedore server`s on one
    /// etcd). A call that cannot reach the current endpoint moves the client on to the
    /// next, so the caller's retry reaches a live replica.
    pub fallback_endpoints: Vec<String>,
    /// Signing region.
    pub region: String,
    /// Signing credentials.
    pub credentials: Credentials,
    /// Time allowed for each call.
    pub timeout: Duration,
    /// Idle keep-alive connections kept per host.
    pub max_idle_connections: usize,
}

impl ApiConfig {
    /// A configuration with the default timeout and pool size.
    pub fn new(
        endpoint: impl Into<String>,
        region: impl Into<String>,
        credentials: Credentials,
    ) -> Self {
        Self {
            endpoint: endpoint.into(),
            fallback_endpoints: Vec::new(),
            region: region.into(),
            credentials,
            timeout: DEFAULT_TIMEOUT,
            max_idle_connections: 64,
        }
    }
}

/// A signed ECS API client; cheap to clone (clones share the connection pool).
#[derive(Clone, Debug)]
pub struct ApiClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// The endpoint and its fallbacks, in the order they are tried (never empty).
    targets: Arc<[Target]>,
    /// Index in `targets` of the endpoint calls go to now (shared by clones).
    current: Arc<AtomicUsize>,
    region: String,
    credentials: Credentials,
    timeout: Duration,
}

/// One endpoint requests can be posted to.
#[derive(Debug)]
struct Target {
    /// Absolute URI requests are posted to.
    uri: http::Uri,
    /// The `host` header value (the URI's authority).
    host: String,
}

impl ApiClient {
    /// A client for `config`; fails only on an unusable endpoint.
    pub fn new(config: ApiConfig) -> Result<Self, ApiError> {
        let targets = std::iter::once(&config.endpoint)
            .chain(&config.fallback_endpoints)
            .map(|e| parse_endpoint(e).map(|(uri, host)| Target { uri, host }))
            .collect::<Result<Vec<_>, _>>()?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(config.timeout));
        // `https://` endpoints are verified with the process's trust (crate::tls).
        connector.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*crate::tls::client_config()).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let http = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(config.max_idle_connections)
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                targets: targets.into(),
                current: Arc::new(AtomicUsize::new(0)),
                region: config.region,
                credentials: config.credentials,
                timeout: config.timeout,
            }),
        })
    }

    /// The same endpoint and connection pool, signing with `credentials` (a task's
    /// execution role).
    pub fn with_credentials(&self, credentials: Credentials) -> Self {
        let i = &self.inner;
        Self {
            inner: Arc::new(Inner {
                http: i.http.clone(),
                targets: i.targets.clone(),
                current: i.current.clone(),
                region: i.region.clone(),
                credentials,
                timeout: i.timeout,
            }),
        }
    }

    /// The signing region.
    pub fn region(&self) -> &str {
        &self.inner.region
    }

    /// The signing credentials.
    pub fn credentials(&self) -> &Credentials {
        &self.inner.credentials
    }

    /// The current endpoint's `host:port` (its URI authority), e.g. `127.0.0.1:4747`.
    pub fn host(&self) -> &str {
        &self.inner.target().1.host
    }

    /// Every endpoint this client may call (the first is the configured one), as
    /// `scheme://host:port/path`.
    pub fn endpoints(&self) -> Vec<String> {
        self.inner
            .targets
            .iter()
            .map(|t| t.uri.to_string())
            .collect()
    }

    /// `RegisterContainerInstance`.
    pub async fn register_container_instance(
        &self,
        request: &RegisterContainerInstanceRequest,
    ) -> Result<RegisterContainerInstanceResponse, ApiError> {
        self.call("RegisterContainerInstance", request).await
    }

    /// `DiscoverPollEndpoint`: where to open the agent channel.
    pub async fn discover_poll_endpoint(
        &self,
        request: &DiscoverPollEndpointRequest,
    ) -> Result<DiscoverPollEndpointResponse, ApiError> {
        self.call("DiscoverPollEndpoint", request).await
    }

    /// `SubmitTaskStateChange`.
    pub async fn submit_task_state_change(
        &self,
        request: &SubmitTaskStateChangeRequest,
    ) -> Result<SubmitTaskStateChangeResponse, ApiError> {
        self.call("SubmitTaskStateChange", request).await
    }

    /// `SubmitContainerStateChange`.
    pub async fn submit_container_state_change(
        &self,
        request: &SubmitContainerStateChangeRequest,
    ) -> Result<SubmitContainerStateChangeResponse, ApiError> {
        self.call("SubmitContainerStateChange", request).await
    }

    /// `CreateCluster`.
    pub async fn create_cluster(
        &self,
        request: &CreateClusterRequest,
    ) -> Result<CreateClusterResponse, ApiError> {
        self.call("CreateCluster", request).await
    }

    /// Any ECS operation by name: signs, posts, and decodes the response or the AWS error.
    pub async fn call<Req, Resp>(
        &self,
        operation: &'static str,
        request: &Req,
    ) -> Result<Resp, ApiError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        self.call_service(&ECS_SERVICE, operation, request).await
    }

    /// An operation of another JSON service on the same endpoint (e.g. CloudWatch Logs).
    pub async fn call_service<Req, Resp>(
        &self,
        service: &JsonService,
        operation: &'static str,
        request: &Req,
    ) -> Result<Resp, ApiError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let body = serde_json::to_vec(request).map_err(|e| ApiError::Encode {
            operation,
            error: e.to_string(),
        })?;
        let target = format!("{}.{operation}", service.target_prefix);
        let signing = Signing {
            service: service.signing_name,
            content_type: service.content_type,
            target: Some(&target),
            path: None,
            anonymous: false,
            method: "POST",
        };
        let req = self.build_request(&signing, body, SystemTime::now())?;
        let (status, header_type, body) = self.exchange(operation, req).await?;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&body).map_err(|e| ApiError::Decode {
                operation,
                error: e.to_string(),
            });
        }
        Err(parse_error(
            operation,
            status,
            header_type.as_deref(),
            &body,
        ))
    }

    /// A query-protocol operation (e.g. ELBv2): signs and posts the form-encoded `form`
    /// (which carries `Action` and `Version`), and returns the HTTP status and the body
    /// undecoded, since query services answer, and fail, in XML that the caller reads.
    /// Only transport failures and timeouts are errors here.
    pub async fn call_query(
        &self,
        signing_name: &'static str,
        operation: &'static str,
        form: String,
    ) -> Result<(u16, Bytes), ApiError> {
        let signing = Signing {
            service: signing_name,
            content_type: "application/x-www-form-urlencoded; charset=utf-8",
            target: None,
            path: None,
            anonymous: false,
            method: "POST",
        };
        let req = self.build_request(&signing, form.into_bytes(), SystemTime::now())?;
        let (status, _, body) = self.exchange(operation, req).await?;
        Ok((status, body))
    }

    /// A signed JSON `POST` to one of Stevedore's own routes (`path`, e.g.
    /// `/stevedore/elb/target-health`), signed for `signing_name`; returns the status and
    /// the body undecoded. `what` names the call in errors. Only transport failures and
    /// timeouts are errors here.
    pub async fn post_json(
        &self,
        signing_name: &'static str,
        path: &str,
        what: &'static str,
        body: Vec<u8>,
    ) -> Result<(u16, Bytes), ApiError> {
        let signing = Signing {
            service: signing_name,
            content_type: "application/json",
            target: None,
            path: Some(path),
            anonymous: false,
            method: "POST",
        };
        let req = self.build_request(&signing, body, SystemTime::now())?;
        let (status, _, body) = self.exchange(what, req).await?;
        Ok((status, body))
    }

    /// A signed `GET` of one of Stevedore's own routes (`path`, e.g. a listing): the
    /// status and body.
    pub async fn get_json(
        &self,
        signing_name: &'static str,
        path: &str,
        what: &'static str,
    ) -> Result<(u16, Bytes), ApiError> {
        let signing = Signing {
            service: signing_name,
            content_type: "application/json",
            target: None,
            path: Some(path),
            anonymous: false,
            method: "GET",
        };
        let req = self.build_request(&signing, Vec::new(), SystemTime::now())?;
        let (status, _, body) = self.exchange(what, req).await?;
        Ok((status, body))
    }

    /// An unsigned JSON `POST` to one of Stevedore's own routes whose body authenticates
    /// itself (redeeming a join token, fetching instance credentials), for an agent that
    /// holds no credentials yet. Like [`ApiClient::post_json`] otherwise.
    pub async fn post_json_anonymous(
        &self,
        path: &str,
        what: &'static str,
        body: Vec<u8>,
    ) -> Result<(u16, Bytes), ApiError> {
        let signing = Signing {
            service: "stevedore",
            content_type: "application/json",
            target: None,
            path: Some(path),
            anonymous: true,
            method: "POST",
        };
        let req = self.build_request(&signing, body, SystemTime::now())?;
        let (status, _, body) = self.exchange(what, req).await?;
        Ok((status, body))
    }

    /// Sends `req` and reads the whole answer within the call timeout: the status, the
    /// `x-amzn-ErrorType` header and the body.
    async fn exchange(
        &self,
        operation: &'static str,
        (req, target): (http::Request<Full<Bytes>>, usize),
    ) -> Result<(u16, Option<String>, Bytes), ApiError> {
        let result = self.exchange_with(operation, req).await;
        if matches!(
            result,
            Err(ApiError::Transport { .. } | ApiError::Timeout { .. })
        ) {
            self.inner.move_on(target);
        }
        result
    }

    async fn exchange_with(
        &self,
        operation: &'static str,
        req: http::Request<Full<Bytes>>,
    ) -> Result<(u16, Option<String>, Bytes), ApiError> {
        let timeout = self.inner.timeout;
        let req_uri = req.uri().clone();
        let exchange = async {
            let response = self
                .inner
                .http
                .request(req)
                .await
                .map_err(|e| ApiError::Transport {
                    operation,
                    // Names the endpoint: a TLS refusal is only actionable with it.
                    error: format!("{}: {}", req_uri, error_chain(&e)),
                })?;
            let status = response.status().as_u16();
            let header_type = response
                .headers()
                .get("x-amzn-errortype")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = http_body_util::Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| ApiError::Transport {
                    operation,
                    error: e.to_string(),
                })?
                .to_bytes();
            Ok::<_, ApiError>((status, header_type, body))
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| ApiError::Timeout {
                operation,
                after: timeout,
            })?
    }

    /// The request for the current endpoint, and that endpoint's index.
    fn build_request(
        &self,
        signing: &Signing<'_>,
        body: Vec<u8>,
        now: SystemTime,
    ) -> Result<(http::Request<Full<Bytes>>, usize), ApiError> {
        let inner = &*self.inner;
        let (index, target) = inner.target();
        let uri = match signing.path {
            None => target.uri.clone(),
            Some(path) => {
                let mut parts = target.uri.clone().into_parts();
                parts.path_and_query = Some(
                    path.parse()
                        .map_err(|e: http::uri::InvalidUri| ApiError::Signing(e.to_string()))?,
                );
                http::Uri::from_parts(parts).map_err(|e| ApiError::Signing(e.to_string()))?
            }
        };
        let uri_text = uri.to_string();
        let mut base: Vec<(&str, &str)> = vec![
            ("host", &target.host),
            ("content-type", signing.content_type),
        ];
        if let Some(target) = signing.target {
            base.push(("x-amz-target", target));
        }
        let signature = if signing.anonymous {
            Vec::new()
        } else {
            compute_signature_headers(
                &inner.credentials,
                Scope {
                    service: signing.service,
                    region: &inner.region,
                },
                signing.method,
                &uri_text,
                &base,
                &body,
                now,
            )
            .map_err(|e| ApiError::Signing(e.to_string()))?
        };
        let mut builder = http::Request::builder().method(signing.method).uri(uri);
        for (k, v) in base.iter().copied() {
            builder = builder.header(k, v);
        }
        for (k, v) in &signature {
            builder = builder.header(k.as_str(), v.as_str());
        }
        builder
            .body(Full::new(Bytes::from(body)))
            .map(|req| (req, index))
            .map_err(|e| ApiError::Signing(e.to_string()))
    }
}

impl Inner {
    /// The endpoint calls go to now, with its index.
    fn target(&self) -> (usize, &Target) {
        let index = self.current.load(Ordering::Relaxed) % self.targets.len();
        (index, &self.targets[index])
    }

    /// After a call to `failed` could not reach it: later calls go to the next endpoint
    /// (unless another call has moved on already).
    fn move_on(&self, failed: usize) {
        let len = self.targets.len();
        if len < 2 {
            return;
        }
        let next = (failed + 1) % len;
        if self
            .current
            .compare_exchange(failed, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            tracing::warn!(
                unreachable = %self.targets[failed].uri,
                next = %self.targets[next].uri,
                "The control plane endpoint cannot be reached; trying the next replica."
            );
        }
    }
}

/// How one request is signed and labelled.
struct Signing<'a> {
    /// SigV4 signing name.
    service: &'static str,
    /// `content-type` of the request.
    content_type: &'static str,
    /// `X-Amz-Target` (JSON protocols only).
    target: Option<&'a str>,
    /// A path under the endpoint (Stevedore's own routes); `None` posts to the endpoint.
    path: Option<&'a str>,
    /// Sent without a signature (routes whose body is the proof, e.g. a join token).
    anonymous: bool,
    /// `POST`, or `GET` for Stevedore's own listings.
    method: &'static str,
}

/// Splits an endpoint URL into the URI to post to and its `host` header.
fn parse_endpoint(endpoint: &str) -> Result<(http::Uri, String), ApiError> {
    let invalid = |reason: &str| ApiError::InvalidEndpoint {
        endpoint: endpoint.to_owned(),
        reason: reason.to_owned(),
    };
    let uri: http::Uri = endpoint.parse().map_err(|_| invalid("not a URL"))?;
    let scheme = match uri.scheme_str() {
        Some("http") => "http",
        Some("https") => "https",
        _ => return Err(invalid("the scheme must be http or https")),
    };
    let host = uri
        .authority()
        .ok_or_else(|| invalid("no host"))?
        .as_str()
        .to_owned();
    let path = match uri.path() {
        "" => "/",
        p => p,
    };
    let uri = format!("{scheme}://{host}{path}")
        .parse()
        .map_err(|_| invalid("not a URL"))?;
    Ok((uri, host))
}

/// Reads the AWS JSON error envelope (`__type`, `message`), falling back on the
/// `x-amzn-ErrorType` header and the status code.
fn parse_error(
    operation: &'static str,
    status: u16,
    header_type: Option<&str>,
    body: &[u8],
) -> ApiError {
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(rename = "__type")]
        type_: Option<String>,
        #[serde(alias = "Message")]
        message: Option<String>,
    }
    let envelope: Option<Envelope> = serde_json::from_slice(body).ok();
    let raw_type = envelope
        .as_ref()
        .and_then(|e| e.type_.clone())
        .or_else(|| header_type.map(str::to_owned))
        .unwrap_or_default();
    let message = envelope
        .and_then(|e| e.message)
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned());
    ApiError::Service {
        operation,
        status,
        aws_type: short_error_type(&raw_type).to_owned(),
        message,
    }
}

/// `com.amazonaws.ecs#ClusterNotFoundException:http://...` → `ClusterNotFoundException`.
fn short_error_type(raw: &str) -> &str {
    let after_hash = raw.rsplit_once('#').map_or(raw, |(_, t)| t);
    after_hash
        .split_once(':')
        .map_or(after_hash, |(t, _)| t)
        .trim()
}

/// The error with its sources, for a transport failure's message.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The endpoint URL cannot be used.
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The URL given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The request could not be signed or built.
    #[error("{0}")]
    Signing(String),
    /// The request could not be serialised.
    #[error("{operation}: could not encode the request: {error}")]
    Encode {
        /// The operation.
        operation: &'static str,
        /// The serde error.
        error: String,
    },
    /// Connecting, sending or reading failed.
    #[error("{operation}: transport error: {error}")]
    Transport {
        /// The operation.
        operation: &'static str,
        /// What failed.
        error: String,
    },
    /// The call took longer than its timeout.
    #[error("{operation}: no response within {after:?}")]
    Timeout {
        /// The operation.
        operation: &'static str,
        /// The timeout.
        after: Duration,
    },
    /// The service answered with an AWS error.
    #[error("{operation}: {aws_type} (HTTP {status}): {message}")]
    Service {
        /// The operation.
        operation: &'static str,
        /// HTTP status.
        status: u16,
        /// The AWS error code (`__type` without its namespace).
        aws_type: String,
        /// The AWS error message.
        message: String,
    },
    /// A success response did not decode as the operation's output.
    #[error("{operation}: could not decode the response: {error}")]
    Decode {
        /// The operation.
        operation: &'static str,
        /// The serde error.
        error: String,
    },
}

impl ApiError {
    /// Whether retrying the same call later may succeed: 5xx, timeouts, connection
    /// errors, `ThrottlingException`, `ServerException` and `LimitExceededException`.
    /// Other 4xx errors, bad endpoints and undecodable responses are terminal.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport { .. } | Self::Timeout { .. } => true,
            Self::Service {
                status, aws_type, ..
            } => {
                *status >= 500
                    || matches!(
                        aws_type.as_str(),
                        "ThrottlingException" | "ServerException" | "LimitExceededException"
                    )
            }
            Self::InvalidEndpoint { .. }
            | Self::Signing(_)
            | Self::Encode { .. }
            | Self::Decode { .. } => false,
        }
    }

    /// The AWS error code, for a service error.
    pub fn aws_type(&self) -> Option<&str> {
        match self {
            Self::Service { aws_type, .. } => Some(aws_type),
            _ => None,
        }
    }

    /// The AWS error message, for a service error.
    pub fn aws_message(&self) -> Option<&str> {
        match self {
            Self::Service { message, .. } => Some(message),
            _ => None,
        }
    }

    /// Whether the error says the cluster does not exist (as the ECS agent reads it: the
    /// code `ClusterNotFoundException` or a message containing `Cluster not found.`).
    pub fn is_cluster_not_found(&self) -> bool {
        self.aws_type() == Some("ClusterNotFoundException")
            || self
                .aws_message()
                .is_some_and(|m| m.contains("Cluster not found."))
    }
}

#[cfg(test)]
mod tests;
