//! Sign-in and sign-out. The credentials prove themselves with a signed STS
//! `GetCallerIdentity` through the public endpoint (AWS answers it whatever the
//! principal's policies say); only then is a session minted.

use super::{html, Ctx, Form, Shared};
use crate::client::{xml_text, ApiError, Client, STS};
use crate::session::{self, Credentials, NewSession};
use crate::view::{self, url};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use std::collections::HashMap;
use std::time::Duration;

/// How long the sign-in form's double-submit token lives.
const FORM_TTL: Duration = Duration::from_secs(3600);

/// `GET /console/signin`.
pub(crate) async fn form(
    State(console): Shared,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let next = q.get("next").map_or("", String::as_str);
    render(&console, next, "", None)
}

fn render(
    console: &crate::Console,
    next: &str,
    key_id: &str,
    error: Option<&ApiError>,
) -> Response {
    let token = session::random_token();
    let body = html! {
        form.signin method="post" action=(url("/signin")) {
            h1 { "Sign in to Stevedore" }
            p.muted { "Use an access key of this server's IAM: the admin key it printed at first start, or a user's key from "
                code { "aws iam create-access-key" } "." }
            @if let Some(e) = error { (view::error(e)) }
            input type="hidden" name="csrf" value=(token);
            input type="hidden" name="next" value=(next);
            label for="access_key_id" { "Access key ID" }
            input #access_key_id name="access_key_id" value=(key_id) autocomplete="username" required autofocus;
            label for="secret_access_key" { "Secret access key" }
            input #secret_access_key type="password" name="secret_access_key" autocomplete="current-password" required;
            label for="session_token" { "Session token " span.muted { "(temporary credentials only)" } }
            input #session_token type="password" name="session_token" autocomplete="off";
            label for="region" { "Region" }
            input #region name="region" value=(console.api.default_region()) required;
            button type="submit" { "Sign in" }
        }
    };
    let mut resp = html(view::page("Sign in", None, None, body));
    let cookie = session::set_cookie(
        session::SIGNIN_COOKIE,
        &token,
        FORM_TTL,
        console.options.tls,
    );
    if let Ok(v) = http::HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(http::header::SET_COOKIE, v);
    }
    if error.is_some() {
        *resp.status_mut() = http::StatusCode::UNAUTHORIZED;
    }
    resp
}

/// `POST /console/signin`.
pub(crate) async fn submit(
    State(console): Shared,
    headers: http::HeaderMap,
    body: bytes::Bytes,
) -> Response {
    let form = Form::parse(&body);
    let expected = session::cookie(&headers, session::SIGNIN_COOKIE).unwrap_or("");
    if expected.is_empty() || !session::tokens_match(form.get("csrf"), expected) {
        return (
            http::StatusCode::FORBIDDEN,
            "The sign-in form is stale or came from another site: reload it and try again.",
        )
            .into_response();
    }
    let credentials = Credentials {
        access_key_id: form.get("access_key_id").trim().to_owned(),
        secret_access_key: form.get("secret_access_key").trim().to_owned(),
        session_token: Some(form.get("session_token").trim())
            .filter(|t| !t.is_empty())
            .map(str::to_owned),
    };
    let region = form.get("region").trim().to_owned();
    let client = Client {
        api: console.api.as_ref(),
        credentials: &credentials,
        region: &region,
        peer: None,
    };
    let next = safe_next(form.get("next"));
    let identity = client.query(STS, "GetCallerIdentity", &[]).await;
    let (principal_arn, account) = match identity.as_deref().map(roxmltree::Document::parse) {
        Ok(Ok(doc)) => (
            xml_text(doc.root(), "Arn").unwrap_or("").to_owned(),
            xml_text(doc.root(), "Account").unwrap_or("").to_owned(),
        ),
        Ok(Err(e)) => {
            let e = ApiError {
                code: "InternalFailure".into(),
                message: format!("STS answered a document that does not parse: {e}"),
            };
            return render(&console, &next, &credentials.access_key_id, Some(&e));
        }
        Err(e) => {
            tracing::info!(code = %e.code, "Console sign-in refused.");
            return render(&console, &next, &credentials.access_key_id, Some(e));
        }
    };
    tracing::info!(principal = %principal_arn, "Console sign-in.");
    let ttl = console.options.session_ttl;
    let id = console.sessions.create(
        NewSession {
            credentials,
            region,
            principal_arn,
            account,
        },
        ttl,
    );
    let mut resp = axum::response::Redirect::to(&next).into_response();
    let tls = console.options.tls;
    for cookie in [
        session::set_cookie(session::COOKIE, &id, ttl, tls),
        session::set_cookie(session::SIGNIN_COOKIE, "", Duration::ZERO, tls),
    ] {
        if let Ok(v) = http::HeaderValue::from_str(&cookie) {
            resp.headers_mut().append(http::header::SET_COOKIE, v);
        }
    }
    resp
}

/// Only console paths are followed after sign-in (an open redirect would otherwise send
/// a fresh session's browser anywhere).
fn safe_next(next: &str) -> String {
    let inside = next.starts_with(&format!("{}/", crate::MOUNT))
        && !next.contains("//")
        && !next.contains('\\');
    if inside {
        next.to_owned()
    } else {
        url("/clusters")
    }
}

/// `POST /console/signout`.
pub(crate) async fn signout(ctx: Ctx, body: bytes::Bytes) -> Response {
    if let Err(refused) = ctx.form(&body) {
        return *refused;
    }
    ctx.console.sessions.remove(&ctx.cookie);
    let mut resp = axum::response::Redirect::to(&url("/signin")).into_response();
    let cookie = session::set_cookie(session::COOKIE, "", Duration::ZERO, ctx.console.options.tls);
    if let Ok(v) = http::HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(http::header::SET_COOKIE, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_console_paths_are_followed_after_sign_in() {
        assert_eq!(
            super::safe_next("/console/clusters/x"),
            "/console/clusters/x"
        );
        assert_eq!(
            super::safe_next("https://evil.example/"),
            "/console/clusters"
        );
        assert_eq!(
            super::safe_next("/console//evil.example"),
            "/console/clusters"
        );
        assert_eq!(super::safe_next(""), "/console/clusters");
    }
}
