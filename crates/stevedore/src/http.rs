//! The HTTP front door, wiring only: `/health`, the agents' `/ws` channel, the registry's
//! `/v2/` routes, Stevedore's own routes, and everything else into the AWS API dispatch
//! ([`wire::Dispatch`]) of the region the request is signed for (see [`crate::regions`]),
//! which picks the service, limits the body, verifies SigV4 and encodes every error in
//! the caller's protocol.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::HeaderMap;
use std::sync::Arc;
use wire::envelope::{self, Envelope};
use wire::{AwsError, JsonVersion};

/// Shared state of the HTTP layer: the accounts, each with its IAM and regions.
pub struct App {
    accounts: Arc<crate::accounts::Accounts>,
    /// `sha256:<hex>` of the CA the server made for its certificates, if it did.
    ca_cert_hash: Option<String>,
}

impl App {
    /// Serves `accounts`; `ca_cert_hash` names the server's own CA (join tokens print it).
    pub fn new(accounts: Arc<crate::accounts::Accounts>, ca_cert_hash: Option<String>) -> Self {
        Self {
            accounts,
            ca_cert_hash,
        }
    }

    /// `sha256:<hex>` of the server's own CA, when it made its certificates.
    pub fn ca_cert_hash(&self) -> Option<&str> {
        self.ca_cert_hash.as_deref()
    }

    /// Every account, by id.
    pub fn accounts(&self) -> &crate::accounts::Accounts {
        &self.accounts
    }

    /// The account whose key signed a request (the first account when none did, or
    /// when no account knows the key: its dispatch then refuses the request).
    pub fn account_for(
        &self,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Arc<crate::accounts::Account> {
        match wire::sigv4::claimed_scope(query, headers) {
            Some(claimed) => self
                .accounts
                .owner(&claimed.access_key_id, claimed.session_token.as_deref()),
            None => self.accounts.first().clone(),
        }
    }

    /// The region a verified request was signed for in `account`, built on its first use
    /// (the request is authenticated, so building it is not something strangers can cause).
    pub async fn region_of(
        account: &crate::accounts::Account,
        verified: &wire::sigv4::Verified,
    ) -> Result<Arc<crate::regions::Regional>, AwsError> {
        if !crate::regions::valid_region(&verified.region) {
            return Err(crate::regions::invalid_region(false));
        }
        account
            .regions
            .get_or_build(&verified.region)
            .await
            .map_err(|error| {
                tracing::error!(account = %account.id, region = %verified.region, %error, "Could not bring a region into service.");
                AwsError::server("InternalFailure", "The region could not be brought into service.")
            })
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
            crate::accounts::ACCOUNTS_PATH,
            axum::routing::post(crate::accounts::create_route).get(crate::accounts::list_route),
        )
        .route(
            crate::scan_db::IMPORT_PATH,
            axum::routing::post(crate::scan_db::import).layer(
                axum::extract::DefaultBodyLimit::max(crate::scan_db::MAX_BODY),
            ),
        )
        .route(
            ::agent::instance_identity::IDENTITY_PATH,
            axum::routing::post(crate::instance_identity::redeem),
        )
        .route(
            ::agent::instance_identity::CREDENTIALS_PATH,
            axum::routing::post(crate::instance_identity::credentials),
        )
        .fallback(api);
    // The registry's `/v2/` routes authenticate with registry tokens, not SigV4, so they
    // sit beside the signed fallback rather than behind it; the token picks the region.
    let router = if app
        .accounts
        .first()
        .regions
        .default_region()
        .registry
        .is_some()
    {
        router
            .route("/v2", axum::routing::any(registry_entry))
            .route("/v2/", axum::routing::any(registry_entry))
            .route("/v2/{*rest}", axum::routing::any(registry_entry))
    } else {
        router
    };
    router.with_state(app)
}

/// A `/v2/` request, served by the registry of the region whose token it carries.
async fn registry_entry(State(app): State<Arc<App>>, req: Request) -> Response {
    use tower::ServiceExt;
    let authorization = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let region = app.accounts.registry_for(authorization).await;
    let Some(routes) = region.registry_routes.clone() else {
        return http::StatusCode::NOT_FOUND.into_response();
    };
    match routes.oneshot(req).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

async fn health() -> impl IntoResponse {
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        "{\"status\":\"ok\"}",
    )
}

pub(crate) async fn api(State(app): State<Arc<App>>, mut req: Request) -> Response {
    // The peer address fills `aws:SourceIp` (present when the server was started with
    // connect info, as `server` does).
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| wire::PeerAddr(c.0));
    if let Some(peer) = peer {
        req.extensions_mut().insert(peer);
    }
    let account = app.account_for(req.uri().query(), req.headers());
    let regions = &account.regions;
    let claimed = wire::sigv4::claimed_scope(req.uri().query(), req.headers());
    let region = match &claimed {
        // Unsigned, unreadable, or global (IAM, STS): the default region's dispatch serves
        // it or words the refusal.
        None => regions.default_region().clone(),
        Some(c) if GLOBAL_SERVICES.contains(&c.service.as_ref()) => {
            regions.default_region().clone()
        }
        Some(c) => match regions.get(&c.region) {
            Some(region) => region,
            None => {
                let name = c.region.clone().into_owned();
                return first_in_region(&account, req, &name).await;
            }
        },
    };
    region.dispatch.serve(req).await.map(Body::from)
}

/// Signing names of the services that are not regional: one instance serves every region.
const GLOBAL_SERVICES: [&str; 2] = ["iam", "sts"];

/// The first request signed for a region not served yet: the region is built only once
/// the request is authenticated (every region costs background loops). The default
/// region's dispatch checks it as it checks its own: the key before the body (an unknown
/// key never makes the server take a body), then the body, up to the default limit (a
/// first request is never a layer upload), and the signature.
async fn first_in_region(
    account: &crate::accounts::Account,
    req: Request,
    region: &str,
) -> Response {
    let (parts, body) = req.into_parts();
    let addressed = wire::dispatch::route::classify(parts.uri.path(), &parts.headers);
    let envelope = addressed.envelope();
    let query = envelope.is_xml();
    let refuse = |err: &AwsError| {
        let request_id = uuid::Uuid::new_v4().to_string();
        envelope::error(envelope, err, &request_id).map(Body::from)
    };
    if !crate::regions::valid_region(region) {
        return refuse(&crate::regions::invalid_region(query));
    }
    let default = account.regions.default_region();
    let limit = wire::service::DEFAULT_BODY_LIMIT;
    let (bytes, verified) = match default
        .dispatch
        .read_and_verify(&parts, body, limit, query)
        .await
    {
        Ok((bytes, verified, _)) => (bytes, verified),
        Err(err) => return refuse(&err),
    };
    match App::region_of(account, &verified).await {
        Ok(regional) => {
            let req = Request::from_parts(parts, Body::from(bytes));
            regional.dispatch.serve(req).await.map(Body::from)
        }
        Err(err) => refuse(&err),
    }
}

/// Who signed a request to a global route (IAM's own), checked as [`authenticate_request`]
/// checks it but without looking at its region.
pub fn authenticate_global(
    app: &App,
    method: &http::Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(wire::Caller, Arc<crate::accounts::Account>), AwsError> {
    let account = app.account_for(uri.query(), headers);
    let caller = account
        .regions
        .default_region()
        .dispatch
        .authenticate(method, uri, headers, body, None)
        .map(|(_, caller)| caller)?;
    Ok((caller, account))
}

/// Verifies a request outside the API dispatch (the channel upgrade, Stevedore's own
/// routes) and, when `service` is given, that its credential scope names that service;
/// who signed it and the region (of the signer's account) it was signed for, built on
/// its first use.
pub async fn authenticate_request(
    app: &App,
    method: &http::Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    body: &[u8],
    service: Option<&str>,
) -> Result<(wire::Caller, Arc<crate::regions::Regional>), AwsError> {
    let account = app.account_for(uri.query(), headers);
    let (verified, caller) = account
        .regions
        .default_region()
        .dispatch
        .authenticate(method, uri, headers, body, service)?;
    Ok((caller, App::region_of(&account, &verified).await?))
}

/// An AWS JSON 1.1 error response.
pub fn aws_error(err: &AwsError) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    envelope::error(Envelope::Json(JsonVersion::V1_1), err, &request_id).map(Body::from)
}

/// The JSON body of a signed request to one of Stevedore's own routes, and the region it
/// was signed for: the signature is checked, then the body decoded; `shape` says what
/// the body must look like when it does not (InvalidParameterException). `Err` is the
/// response to send.
pub async fn signed_json<T: serde::de::DeserializeOwned>(
    app: &App,
    method: &http::Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    body: &[u8],
    shape: &str,
) -> Result<(T, Arc<crate::regions::Regional>), Box<Response>> {
    let (_, region) = authenticate_request(app, method, uri, headers, body, None)
        .await
        .map_err(|e| Box::new(aws_error(&e)))?;
    let value = serde_json::from_slice(body).map_err(|e| {
        Box::new(client_error(
            "InvalidParameterException",
            &format!("The body must be {shape}: {e}"),
        ))
    })?;
    Ok((value, region))
}

/// A 400 AWS JSON 1.1 error response.
pub fn client_error(code: &str, message: &str) -> Response {
    aws_error(&AwsError::client(code, message))
}
