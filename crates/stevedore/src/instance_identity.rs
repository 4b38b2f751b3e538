//! The server's side of instance identity (Stevedore's own routes, wire forms in
//! `agent::instance_identity`): minting a join token (SigV4-signed, authorized as
//! `iam:PassRole` on the profile's role), redeeming it (the token is the proof) and
//! serving an instance's credentials (its id and secret are the proof). The logic is
//! `iam::instances`'; this module only decodes, calls and answers.

use std::sync::Arc;
use std::time::Duration;

use ::agent::instance_identity::{
    ImdsCredentials, InstanceCredentialsRequest, JoinTokenRequest, JoinTokenResponse, RedeemRequest,
};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, Method, Uri};
use iam::instances::InstanceIdentityError;
use wire::AwsError;

use crate::http::{aws_error, client_error, App};

/// The default life of a join token.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

fn refusal(e: &InstanceIdentityError) -> Response {
    let (code, status) = e.code();
    if status >= 500 {
        tracing::warn!(error = %e, "Instance identity request failed.");
    }
    aws_error(&AwsError::client(code, e.to_string()).with_status(status))
}

fn no_iam() -> Response {
    client_error(
        "InvalidAction",
        "This server does not serve IAM, so agents cannot join with instance profiles.",
    )
}

fn json<T: serde::Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => ([(http::header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => aws_error(&AwsError::server("InternalFailure", e.to_string())),
    }
}

fn body<T: serde::de::DeserializeOwned>(bytes: &[u8], shape: &str) -> Result<T, Box<Response>> {
    serde_json::from_slice(bytes).map_err(|e| {
        Box::new(client_error(
            "InvalidParameterException",
            &format!("The body must be {shape}: {e}"),
        ))
    })
}

/// `POST /stevedore/join-tokens`.
pub async fn mint(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let (caller, account) =
        match crate::http::authenticate_global(&app, &method, &uri, &headers, &bytes) {
            Ok(c) => c,
            Err(e) => return aws_error(&e),
        };
    let req: JoinTokenRequest = match body(&bytes, r#"{"instanceProfileName", "ttlSeconds"?}"#) {
        Ok(r) => r,
        Err(response) => return *response,
    };
    let ttl = req.ttl_seconds.map_or(DEFAULT_TTL, Duration::from_secs);
    match account
        .iam
        .mint_join_token(&caller, &req.instance_profile_name, ttl)
        .await
    {
        Ok(t) => json(&JoinTokenResponse {
            join_token: t.token,
            instance_profile_name: t.profile,
            expiration: wire::xml::iso8601_secs(t.expires),
            ca_cert_hash: app.ca_cert_hash().map(str::to_owned),
        }),
        Err(e) => refusal(&e),
    }
}

/// `POST /stevedore/instance-identity`.
pub async fn redeem(State(app): State<Arc<App>>, bytes: Bytes) -> Response {
    let req: RedeemRequest = match body(&bytes, r#"{"joinToken"}"#) {
        Ok(r) => r,
        Err(response) => return *response,
    };
    // The token is the proof; the account whose IAM minted it redeems it.
    let mut refused = None;
    for account in app.accounts().all() {
        match account.iam.redeem_join_token(&req.join_token).await {
            Ok(identity) => return json(&identity),
            Err(e) => {
                refused.get_or_insert(e);
            }
        }
    }
    refused.map_or_else(no_iam, |e| refusal(&e))
}

/// `POST /stevedore/instance-credentials`.
pub async fn credentials(State(app): State<Arc<App>>, bytes: Bytes) -> Response {
    let req: InstanceCredentialsRequest = match body(&bytes, r#"{"instanceId", "instanceSecret"}"#)
    {
        Ok(r) => r,
        Err(response) => return *response,
    };
    // The instance belongs to the account whose IAM knows it.
    let mut refused = None;
    for account in app.accounts().all() {
        let iam = &account.iam;
        match iam
            .instance_credentials(&req.instance_id, &req.instance_secret)
            .await
        {
            Ok(c) => {
                return json(&ImdsCredentials {
                    code: "Success".into(),
                    expiration: c.expiration_iso8601(),
                    last_updated: wire::xml::iso8601_secs(iam.directory().now()),
                    access_key_id: c.access_key_id,
                    secret_access_key: c.secret_access_key,
                    token: c.session_token,
                    kind: "AWS-HMAC".into(),
                });
            }
            Err(e) => {
                refused.get_or_insert(e);
            }
        }
    }
    refused.map_or_else(no_iam, |e| {
        tracing::info!(instance = %req.instance_id, error = %e, "Instance credentials refused.");
        refusal(&e)
    })
}
