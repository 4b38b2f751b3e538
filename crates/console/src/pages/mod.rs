//! The console's routes and what every page handler shares: the signed-in context
//! ([`Ctx`], which sends a browser without a live session to sign-in), form decoding
//! with the CSRF check, and HTML responses with the console's security headers.

mod clusters;
mod ecr;
mod elb;
mod services;
mod signin;
mod task_definitions;
mod tasks;

use crate::client::{ApiError, Client, JsonService, QueryService};
use crate::session::{self, Session};
use crate::Console;
use axum::extract::{FromRequestParts, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::Markup;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

type Shared = State<Arc<Console>>;

pub(crate) fn routes() -> Router<Arc<Console>> {
    let m = |p: &str| format!("{}{p}", crate::MOUNT);
    Router::new()
        .route(crate::MOUNT, get(home))
        .route(&m("/"), get(home))
        .route(&m("/assets/{name}"), get(crate::assets::serve))
        .route(&m("/signin"), get(signin::form).post(signin::submit))
        .route(&m("/signout"), post(signin::signout))
        .route(&m("/clusters"), get(clusters::list_handler))
        .route(&m("/clusters/{cluster}"), get(clusters::show))
        .route(&m("/clusters/{cluster}/services"), post(services::create))
        .route(
            &m("/clusters/{cluster}/services/{service}"),
            get(services::show),
        )
        .route(
            &m("/clusters/{cluster}/services/{service}/{action}"),
            post(services::act),
        )
        .route(&m("/clusters/{cluster}/tasks/{task}"), get(tasks::show))
        .route(
            &m("/clusters/{cluster}/tasks/{task}/stop"),
            post(tasks::stop),
        )
        .route(
            &m("/clusters/{cluster}/tasks/{task}/logs/{container}"),
            get(tasks::logs),
        )
        .route(&m("/task-definitions"), get(task_definitions::families))
        .route(
            &m("/task-definitions/{family}"),
            get(task_definitions::revisions),
        )
        .route(
            &m("/task-definitions/{family}/new"),
            get(task_definitions::editor).post(task_definitions::register),
        )
        .route(
            &m("/task-definitions/{family}/{revision}"),
            get(task_definitions::show),
        )
        .route(
            &m("/task-definitions/{family}/{revision}/run"),
            post(task_definitions::run),
        )
        .route(&m("/repositories"), get(ecr::list_page))
        .route(&m("/repositories/view"), get(ecr::show))
        .route(
            &m("/repositories/lifecycle-policy"),
            post(ecr::put_lifecycle_policy),
        )
        .route(&m("/load-balancers"), get(elb::list))
        .route(&m("/load-balancers/view"), get(elb::show))
}

async fn home() -> Redirect {
    Redirect::to(&crate::view::url("/clusters"))
}

/// A signed-in request: the session, and how to call the API as its principal.
pub(crate) struct Ctx {
    console: Arc<Console>,
    pub session: Arc<Session>,
    cookie: String,
    peer: Option<std::net::SocketAddr>,
}

impl FromRequestParts<Arc<Console>> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        console: &Arc<Console>,
    ) -> Result<Self, Response> {
        let found = session::cookie(&parts.headers, session::COOKIE)
            .and_then(|id| console.sessions.get(id).map(|s| (id.to_owned(), s)));
        let Some((cookie, session)) = found else {
            return Err(to_signin(parts));
        };
        if parts.method == http::Method::POST && !same_origin(&parts.headers) {
            return Err(forbidden("The request came from another site."));
        }
        Ok(Self {
            console: console.clone(),
            session,
            cookie,
            peer: peer_of(parts),
        })
    }
}

impl Ctx {
    fn client(&self) -> Client<'_> {
        Client {
            api: self.console.api.as_ref(),
            credentials: &self.session.credentials,
            region: &self.session.region,
            peer: self.peer,
        }
    }

    /// Calls a JSON-protocol operation as the signed-in principal. Credentials the API no
    /// longer takes end the session (the next page asks to sign in again).
    pub async fn call(
        &self,
        service: JsonService,
        op: &str,
        input: Value,
    ) -> Result<Value, ApiError> {
        let result = self.client().json(service, op, &input).await;
        self.note(result)
    }

    /// Calls a query-protocol action as the signed-in principal.
    pub async fn query(
        &self,
        service: QueryService,
        action: &str,
        params: &[(&str, &str)],
    ) -> Result<String, ApiError> {
        let result = self.client().query(service, action, params).await;
        self.note(result)
    }

    fn note<T>(&self, result: Result<T, ApiError>) -> Result<T, ApiError> {
        if let Err(e) = &result {
            if e.ends_session() {
                tracing::info!(code = %e.code, "Console session ended: the API refused its credentials.");
                self.console.sessions.remove(&self.cookie);
            }
        }
        result
    }

    /// A form posted by a page, once its CSRF token proved it came from one.
    pub fn form(&self, body: &[u8]) -> Result<Form, Box<Response>> {
        let form = Form::parse(body);
        if session::tokens_match(form.get("csrf"), &self.session.csrf) {
            Ok(form)
        } else {
            Err(Box::new(forbidden(
                "The form's CSRF token is missing or stale: reload the page and try again.",
            )))
        }
    }

    /// A full page of this session.
    pub fn page(&self, title: &str, section: crate::view::Section, body: Markup) -> Response {
        html(crate::view::page(
            title,
            Some(section),
            Some(&self.session),
            body,
        ))
    }
}

/// Where a browser without a session goes: the sign-in page, then back here. htmx
/// requests are told with `HX-Redirect`, so the whole page moves, not one fragment.
fn to_signin(parts: &http::request::Parts) -> Response {
    let here = parts
        .uri
        .path_and_query()
        .map_or(crate::MOUNT, http::uri::PathAndQuery::as_str);
    let target = format!(
        "{}?next={}",
        crate::view::url("/signin"),
        percent_encoding::utf8_percent_encode(here, percent_encoding::NON_ALPHANUMERIC)
    );
    if parts.headers.contains_key("hx-request") {
        ([("hx-redirect", target)], "").into_response()
    } else {
        Redirect::to(&target).into_response()
    }
}

/// Whether a POST came from this site: browsers send `Origin` on every POST, and it must
/// name the host the request was sent to (a second line behind SameSite and the token).
fn same_origin(headers: &http::HeaderMap) -> bool {
    let Some(origin) = headers
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return true;
    };
    let host = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest == host)
}

fn peer_of(parts: &http::request::Parts) -> Option<std::net::SocketAddr> {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0)
}

/// An HTML response with the console's headers: a strict CSP (no inline script or
/// style), no framing, no caching of pages that show account data.
pub(crate) fn html(markup: Markup) -> Response {
    (
        [
            (http::header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                http::header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                 frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
            ),
            (http::header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (http::header::REFERRER_POLICY, "same-origin"),
            (http::header::CACHE_CONTROL, "no-store"),
        ],
        markup.into_string(),
    )
        .into_response()
}

fn forbidden(why: &str) -> Response {
    (http::StatusCode::FORBIDDEN, why.to_owned()).into_response()
}

/// After a POST that worked: back to `path` (POST-redirect-GET).
pub(crate) fn see_other(path: &str) -> Response {
    Redirect::to(&crate::view::url(path)).into_response()
}

/// A decoded `application/x-www-form-urlencoded` body.
#[derive(Debug, Default)]
pub(crate) struct Form(HashMap<String, String>);

impl Form {
    fn parse(body: &[u8]) -> Self {
        let decode = |s: &str| {
            let spaced = s.replace('+', " ");
            percent_encoding::percent_decode_str(&spaced)
                .decode_utf8_lossy()
                .into_owned()
        };
        let text = String::from_utf8_lossy(body);
        Self(
            text.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }

    /// A field's value, or "".
    pub fn get(&self, key: &str) -> &str {
        self.0.get(key).map_or("", String::as_str)
    }
}

/// Percent-encodes one path segment of a console URL.
pub(crate) fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, crate::client::UNRESERVED_KEPT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_plus_and_percent() {
        let f = Form::parse(b"a=1+2&b=%2Fx%3D&c&csrf=t");
        assert_eq!(f.get("a"), "1 2");
        assert_eq!(f.get("b"), "/x=");
        assert_eq!(f.get("c"), "");
        assert_eq!(f.get("missing"), "");
    }

    #[test]
    fn a_post_from_another_origin_is_refused() {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::HOST,
            "127.0.0.1:4747".parse().expect("header"),
        );
        assert!(same_origin(&h));
        h.insert(
            http::header::ORIGIN,
            "http://127.0.0.1:4747".parse().expect("header"),
        );
        assert!(same_origin(&h));
        h.insert(
            http::header::ORIGIN,
            "https://evil.example".parse().expect("header"),
        );
        assert!(!same_origin(&h));
    }
}
