//! The HTTP front door: `/health`, then for every API request SigV4 verification,
//! dispatch by `X-Amz-Target` (JSON protocols) or `Action` (query protocols), and the
//! AWS error envelope for whatever goes wrong. No request can make it answer 500 for the
//! caller's mistake, and none is read past the body limit.

use crate::credentials::AccessKey;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ecs::{Caller, Ecs};
use http::{HeaderMap, HeaderValue, StatusCode};
use model::ecs::arn::ArnScope;
use std::sync::Arc;
use store::Store;
use wire::{AwsError, JsonVersion, Target};

/// The largest API request body accepted. ECS's largest requests (task definitions) are
/// well under this; the registry streams its blobs and does not go through here.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// ECR's UploadLayerPart carries up to 20 MiB of layer data base64-encoded in JSON.
const MAX_LAYER_PART_BODY_BYTES: usize = 28 * 1024 * 1024;

/// Shared state of the HTTP layer.
pub struct App {
    ecs: Ecs,
    logs: logs::Logs,
    elb: elb::Elb,
    admin: AccessKey,
    principal: String,
    registry: Option<registry::Registry>,
}

impl App {
    pub fn new(store: Arc<dyn Store>, scope: ArnScope, admin: AccessKey, endpoint: String) -> Self {
        let principal = scope.root_principal();
        let elb = elb::Elb::new(store.clone(), scope.clone(), None);
        Self {
            logs: logs::Logs::new(store.clone(), scope.clone()),
            elb: elb.clone(),
            ecs: Ecs::new(store, scope, endpoint)
                .with_target_groups(Arc::new(crate::balancing::EcsTargets(elb))),
            admin,
            principal,
            registry: None,
        }
    }

    /// Runs Fargate tasks on `provisioner`'s hidden capacity.
    #[must_use]
    pub fn with_fargate(mut self, provisioner: Arc<crate::fargate::Provisioner>) -> Self {
        self.ecs = self.ecs.with_fargate(provisioner);
        self
    }

    /// Serves the registry (`/v2/` and the ECR API) too.
    #[must_use]
    pub fn with_registry(mut self, registry: registry::Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// The ECS service.
    pub fn ecs(&self) -> &Ecs {
        &self.ecs
    }

    /// The CloudWatch Logs service.
    pub fn logs(&self) -> &logs::Logs {
        &self.logs
    }

    /// The ELBv2 service (control side).
    pub fn elb(&self) -> &elb::Elb {
        &self.elb
    }

    fn secret_for(&self, access_key_id: &str) -> Option<String> {
        (access_key_id == self.admin.access_key_id).then(|| self.admin.secret_access_key.clone())
    }
}

pub fn router(app: Arc<App>) -> Router {
    let router = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(crate::metrics::scrape))
        .route("/ws", get(crate::channel::upgrade))
        .route("/stevedore/fargate/usage", get(crate::fargate::usage))
        .route(
            "/stevedore/fargate/spot-interruptions",
            axum::routing::post(crate::fargate::interrupt),
        )
        .route(
            crate::health_reports::PATH,
            axum::routing::post(crate::health_reports::receive),
        )
        .fallback(api)
        .with_state(app.clone());
    // The registry's `/v2/` routes authenticate with registry tokens, not SigV4, so they
    // sit beside the signed fallback rather than behind it.
    match &app.registry {
        Some(reg) => router.merge(reg.router()),
        None => router,
    }
}

async fn health() -> impl IntoResponse {
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        "{\"status\":\"ok\"}",
    )
}

/// How the caller expects errors to be encoded.
#[derive(Clone, Copy)]
enum Protocol {
    Json(JsonVersion),
    Query,
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn error_response(err: &AwsError, protocol: Protocol, rid: &str) -> Response {
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = match protocol {
        Protocol::Json(v) => {
            let mut r = Response::new(Body::from(err.json_body()));
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static(v.content_type()),
            );
            r
        }
        Protocol::Query => {
            let kind = if err.status >= 500 {
                "Receiver"
            } else {
                "Sender"
            };
            let body = format!(
                "<ErrorResponse><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>",
                xml_escape(&err.code),
                xml_escape(&err.message)
            );
            let mut r = Response::new(Body::from(body));
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/xml"),
            );
            r
        }
    };
    *resp.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(&err.code) {
        resp.headers_mut().insert("x-amzn-ErrorType", v);
    }
    if let Ok(v) = HeaderValue::from_str(rid) {
        resp.headers_mut().insert("x-amzn-RequestId", v);
    }
    resp
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn protocol_of(headers: &HeaderMap) -> Protocol {
    let ct = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with("application/x-www-form-urlencoded") {
        Protocol::Query
    } else if ct.starts_with("application/x-amz-json-1.0") {
        Protocol::Json(JsonVersion::V1_0)
    } else {
        Protocol::Json(JsonVersion::V1_1)
    }
}

async fn api(state: State<Arc<App>>, req: Request) -> Response {
    crate::metrics::observed(req, |req| dispatch(state, req)).await
}

async fn dispatch(State(app): State<Arc<App>>, req: Request) -> Response {
    let rid = request_id();
    let (parts, body) = req.into_parts();
    let protocol = protocol_of(&parts.headers);
    let limit = match parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
    {
        Some(t) if t == format!("{}.UploadLayerPart", model::ecr::TARGET_PREFIX) => {
            MAX_LAYER_PART_BODY_BYTES
        }
        Some(t) if t == format!("{}.PutLogEvents", model::logs::TARGET_PREFIX) => {
            logs::MAX_REQUEST_BYTES
        }
        _ => MAX_BODY_BYTES,
    };
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        AwsError::client(
            "SerializationException",
            format!("The request body is larger than the {limit}-byte limit."),
        )
        .with_status(413)
    };
    if declared.is_some_and(|n| n > limit as u64) {
        return error_response(&too_large(), protocol, &rid);
    }
    let body: Bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => return error_response(&too_large(), protocol, &rid),
    };
    let verified =
        match check_signature(&app, &parts.method, &parts.uri, &parts.headers, &body, None) {
            Ok(v) => v,
            Err(err) => return error_response(&err, protocol, &rid),
        };
    let caller = Caller {
        principal_arn: app.principal.clone(),
    };
    if matches!(protocol, Protocol::Query) {
        if let Some(resp) = elb_query(&app, &verified, &body, &rid).await {
            return resp;
        }
    }
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(Target::parse);
    let result = match (target, protocol) {
        (Some(t), Protocol::Json(v)) if t.prefix == model::ecr::TARGET_PREFIX => match &app.registry {
            Some(_) if verified.service != model::ecr::SIGNING_NAME => Err(wrong_service(model::ecr::SIGNING_NAME)),
            Some(reg) => {
                let out = reg.handle(t.operation, &body).await.map_err(|e| e.to_aws());
                if let Err(e) = &out {
                    if e.status >= 500 {
                        tracing::error!(operation = t.operation, error = %e, "ECR operation failed.");
                    }
                }
                out.map(|b| (b, v))
            }
            None => Err(AwsError::client("UnknownOperationException", "This server does not run the registry.")),
        },
        (Some(t), Protocol::Json(_)) if t.prefix == model::logs::TARGET_PREFIX && verified.service != model::logs::SIGNING_NAME => {
            Err(wrong_service(model::logs::SIGNING_NAME))
        }
        (Some(t), Protocol::Json(v)) if t.prefix == model::logs::TARGET_PREFIX => {
            let out = app.logs.handle(t.operation, &body).await.map_err(|e| e.to_aws());
            if let Err(e) = &out {
                if e.status >= 500 {
                    tracing::error!(operation = t.operation, error = %e, "CloudWatch Logs operation failed.");
                }
            }
            out.map(|b| (b, v))
        }
        (Some(_), Protocol::Json(_)) if !scoped_to(&verified, target, model::ecs::TARGET_PREFIX, model::ecs::SIGNING_NAME) => {
            Err(wrong_service(model::ecs::SIGNING_NAME))
        }
        (Some(t), Protocol::Json(v)) if t.prefix == model::ecs::TARGET_PREFIX => {
            let out = app.ecs.handle(t.operation, &body, &caller).await.map_err(|e| e.to_aws());
            if let Err(e) = &out {
                if e.status >= 500 {
                    tracing::error!(operation = t.operation, error = %e, "ECS operation failed.");
                }
            }
            out.map(|b| (b, v))
        }
        (Some(t), Protocol::Json(_)) => Err(AwsError::client(
            "UnknownOperationException",
            format!("Operation {}.{} is not served by this endpoint (signed for service '{}').", t.prefix, t.operation, verified.service),
        )),
        (_, Protocol::Query) => Err(AwsError::client("InvalidAction", "This endpoint does not serve that query-protocol action yet.")),
        (None, Protocol::Json(_)) => Err(AwsError::client(
            "UnknownOperationException",
            "The request names no operation: send an X-Amz-Target header (AWS JSON protocols) or an Action parameter (query protocols).",
        )),
    };
    match result {
        Ok((bytes, version)) => {
            let mut resp = Response::new(Body::from(bytes));
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static(version.content_type()),
            );
            if let Ok(v) = HeaderValue::from_str(&rid) {
                resp.headers_mut().insert("x-amzn-RequestId", v);
            }
            resp
        }
        Err(e) => error_response(&e, protocol, &rid),
    }
}

/// Serves a query-protocol request for ELBv2 (`Version=2015-12-01`) with an XML answer;
/// `None` when the request is for another query service.
async fn elb_query(
    app: &App,
    verified: &wire::sigv4::Verified,
    body: &[u8],
    rid: &str,
) -> Option<Response> {
    let params = match wire::query::parse_form(body) {
        Ok(p) => p,
        Err(e) => {
            let err = AwsError::client(e.aws_code(), e.to_string());
            return Some(error_response(&err, Protocol::Query, rid));
        }
    };
    if params.version() != Some(elb::API_VERSION) {
        return None;
    }
    if verified.service != elb::SIGNING_NAME {
        return Some(error_response(
            &wrong_service(elb::SIGNING_NAME),
            Protocol::Query,
            rid,
        ));
    }
    match app.elb.handle(&params, rid).await {
        Ok(xml) => {
            let mut resp = Response::new(Body::from(xml));
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/xml"),
            );
            if let Ok(v) = HeaderValue::from_str(rid) {
                resp.headers_mut().insert("x-amzn-RequestId", v);
            }
            Some(resp)
        }
        Err(e) => {
            let err = e.to_aws();
            if err.status >= 500 {
                tracing::error!(action = params.action().unwrap_or(""), error = %err, "ELBv2 operation failed.");
            }
            Some(error_response(&err, Protocol::Query, rid))
        }
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Verifies a request's SigV4 signature and, when `service` is given, that its credential
/// scope names that service.
fn check_signature(
    app: &App,
    method: &http::Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    body: &[u8],
    service: Option<&str>,
) -> Result<wire::sigv4::Verified, AwsError> {
    let signed = wire::sigv4::SignedRequest {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query(),
        headers,
        body,
    };
    match wire::sigv4::verify(&signed, &|id| app.secret_for(id), now_secs()) {
        Ok(v) if service.is_some_and(|s| s != v.service) => {
            Err(wrong_service(service.unwrap_or_default()))
        }
        Ok(v) => Ok(v),
        Err(e) => {
            tracing::debug!(error = %e, "Request refused by signature verification.");
            let status = if e.aws_code() == "MissingAuthenticationTokenException" {
                403
            } else {
                400
            };
            Err(AwsError::client(e.aws_code(), e.to_string()).with_status(status))
        }
    }
}

/// Verifies a request outside the JSON dispatch (the channel upgrade).
pub fn verify_request(
    app: &App,
    method: &http::Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    body: &[u8],
    service: Option<&str>,
) -> Result<wire::sigv4::Verified, AwsError> {
    check_signature(app, method, uri, headers, body, service)
}

/// True unless the request targets `prefix` but was signed for another service.
fn scoped_to(
    v: &wire::sigv4::Verified,
    target: Option<Target<'_>>,
    prefix: &str,
    signing_name: &str,
) -> bool {
    target.is_none_or(|t| t.prefix != prefix || v.service == signing_name)
}

fn wrong_service(expected: &str) -> AwsError {
    AwsError::client(
        "InvalidSignatureException",
        format!("Credential should be scoped to correct service: '{expected}'."),
    )
}

/// An AWS JSON 1.1 error response.
pub fn aws_error(err: &AwsError) -> Response {
    error_response(err, Protocol::Json(JsonVersion::V1_1), &request_id())
}

/// The JSON body of a signed request to one of Stevedore's own routes: the signature is
/// checked, then the body decoded; `shape` says what the body must look like when it
/// does not (InvalidParameterException). `Err` is the response to send.
pub fn signed_json<T: serde::de::DeserializeOwned>(
    app: &App,
    method: &http::Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    body: &[u8],
    shape: &str,
) -> Result<T, Box<Response>> {
    verify_request(app, method, uri, headers, body, None).map_err(|e| Box::new(aws_error(&e)))?;
    serde_json::from_slice(body).map_err(|e| {
        Box::new(client_error(
            "InvalidParameterException",
            &format!("The body must be {shape}: {e}"),
        ))
    })
}

/// A 400 AWS JSON 1.1 error response.
pub fn client_error(code: &str, message: &str) -> Response {
    aws_error(&AwsError::client(code, message))
}
