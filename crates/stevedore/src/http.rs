//! The HTTP front door, wiring only: `/health`, the agents' `/ws` channel, the registry's
//! `/v2/` routes, Stevedore's own routes, and everything else into the one AWS API
//! dispatch ([`wire::Dispatch`]), which picks the service, limits the body, verifies
//! SigV4 and encodes every error in the caller's protocol.

use crate::credentials::AccessKey;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ecs::Ecs;
use http::HeaderMap;
use model::ecs::arn::ArnScope;
use std::sync::Arc;
use store::Store;
use wire::envelope::{self, Envelope};
use wire::{AwsError, Dispatch, JsonVersion, Keys};

/// Shared state of the HTTP layer.
pub struct App {
    ecs: Ecs,
    logs: logs::Logs,
    elb: elbv2::Elbv2,
    registry: Option<registry::Registry>,
    iam: Option<iam::Iam>,
    admin: AccessKey,
    keys: Keys,
    dispatch: Dispatch,
}

impl App {
    pub fn new(
        store: Arc<dyn Store>,
        events: Arc<dyn logs::EventStore>,
        scope: ArnScope,
        admin: AccessKey,
        endpoint: String,
    ) -> Self {
        // The admin key is the account's root.
        let keys: Keys = iam::admin_only_keys(
            &scope.account_id,
            admin.access_key_id.clone(),
            admin.secret_access_key.clone(),
        );
        let elb = elbv2::Elbv2::new(store.clone(), scope.clone(), None);
        Self {
            logs: logs::Logs::new(store.clone(), events, scope.clone()),
            elb: elb.clone(),
            ecs: Ecs::new(store, scope, endpoint)
                .with_target_groups(Arc::new(crate::lb_wiring::EcsTargets(elb))),
            registry: None,
            iam: None,
            admin,
            dispatch: Dispatch::new(keys.clone()),
            keys,
        }
        .wired()
    }

    /// Runs Fargate tasks on `provisioner`'s hidden capacity.
    #[must_use]
    pub fn with_fargate(mut self, provisioner: Arc<crate::fargate::Provisioner>) -> Self {
        self.ecs = self.ecs.with_fargate(provisioner);
        self.wired()
    }

    /// Serves the registry (`/v2/` and the ECR API) too.
    #[must_use]
    pub fn with_registry(mut self, registry: registry::Registry) -> Self {
        self.registry = Some(registry);
        self.wired()
    }

    /// Serves IAM and STS too; every signed request's key is then looked up in IAM's
    /// directory (the admin key stays the account root).
    #[must_use]
    pub fn with_iam(mut self, iam: iam::Iam) -> Self {
        self.keys = iam.keys(
            self.admin.access_key_id.clone(),
            self.admin.secret_access_key.clone(),
        );
        self.iam = Some(iam);
        self.wired()
    }

    /// Registers every AWS API with the dispatch, as configured now.
    fn wired(mut self) -> Self {
        let dispatch = Dispatch::new(self.keys.clone())
            .with_observer(Arc::new(crate::metrics::RequestMetrics))
            .register(self.ecs.clone())
            .register(self.logs.clone())
            .register(self.elb.clone());
        let dispatch = match &self.registry {
            Some(reg) => dispatch.register(reg.clone()),
            None => dispatch,
        };
        self.dispatch = match &self.iam {
            Some(iam) => dispatch.register(iam.clone()).register(iam.sts()),
            None => dispatch,
        };
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
    pub fn elb(&self) -> &elbv2::Elbv2 {
        &self.elb
    }

    /// IAM, when the server serves it.
    pub fn iam(&self) -> Option<&iam::Iam> {
        self.iam.as_ref()
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
        .route(
            ::agent::instance_identity::JOIN_TOKENS_PATH,
            axum::routing::post(crate::instance_identity::mint),
        )
        .route(
            ::agent::instance_identity::IDENTITY_PATH,
            axum::routing::post(crate::instance_identity::redeem),
        )
        .route(
            ::agent::instance_identity::CREDENTIALS_PATH,
            axum::routing::post(crate::instance_identity::credentials),
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

async fn api(State(app): State<Arc<App>>, mut req: Request) -> Response {
    // The peer address fills `aws:SourceIp` (present when the server was started with
    // connect info, as `server` does).
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| wire::PeerAddr(c.0));
    if let Some(peer) = peer {
        req.extensions_mut().insert(peer);
    }
    app.dispatch.serve(req).await.map(Body::from)
}

/// Verifies a request outside the API dispatch (the channel upgrade, Stevedore's own
/// routes) and, when `service` is given, that its credential scope names that service.
pub fn verify_request(
    app: &App,
    method: &http::Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    body: &[u8],
    service: Option<&str>,
) -> Result<wire::sigv4::Verified, AwsError> {
    app.dispatch
        .authenticate(method, uri, headers, body, service)
        .map(|(verified, _)| verified)
}

/// [`verify_request`], answering who signed the request.
pub fn authenticate_request(
    app: &App,
    method: &http::Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    body: &[u8],
    service: Option<&str>,
) -> Result<wire::Caller, AwsError> {
    app.dispatch
        .authenticate(method, uri, headers, body, service)
        .map(|(_, caller)| caller)
}

/// An AWS JSON 1.1 error response.
pub fn aws_error(err: &AwsError) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    envelope::error(Envelope::Json(JsonVersion::V1_1), err, &request_id).map(Body::from)
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
