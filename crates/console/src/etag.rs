//! ETags on the console's pages, so the fragments htmx polls every two seconds come back
//! as an empty `304 Not Modified` while nothing changed: the browser then keeps the DOM as
//! it is (no re-render, focus and scroll untouched) and the reply carries no body.
//!
//! The tag is a hash of the rendered HTML, so it changes exactly when what the page would
//! show changes. The server still makes its API calls to render it: pages hold no state
//! of their own to know that nothing changed without asking.

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};

/// The strong ETag of a rendered page.
pub(crate) fn tag(body: &[u8]) -> String {
    format!("\"{}\"", hex::encode(&Sha256::digest(body)[..16]))
}

/// Whether an `If-None-Match` header value names `tag` (RFC 9110 §13.1.2: a list of
/// tags, weak comparison, or `*`).
pub(crate) fn matches(if_none_match: &str, tag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    if_none_match
        .split(',')
        .any(|t| t.trim() == "*" || bare(t) == bare(tag))
}

/// Middleware: tags every successful HTML answer to a GET, and answers 304 when the
/// request's `If-None-Match` names that tag already.
pub(crate) async fn layer(req: Request, next: Next) -> Response {
    let is_get = req.method() == http::Method::GET;
    let asked = req
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let resp = next.run(req).await;
    let is_html = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html"));
    if !is_get || resp.status() != http::StatusCode::OK || !is_html {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = match body.collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            tracing::warn!(error = %e, "Console page body could not be read for its ETag.");
            return http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let tag = tag(&bytes);
    let Ok(value) = http::HeaderValue::from_str(&tag) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    if asked.as_deref().is_some_and(|a| matches(a, &tag)) {
        let mut not_modified = http::StatusCode::NOT_MODIFIED.into_response();
        let h = not_modified.headers_mut();
        h.insert(ETAG, value);
        if let Some(cc) = parts.headers.get(CACHE_CONTROL) {
            h.insert(CACHE_CONTROL, cc.clone());
        }
        return not_modified;
    }
    parts.headers.insert(ETAG, value);
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_the_content_and_match_lists_weak_forms_and_star() {
        let a = tag(b"<p>1</p>");
        assert_eq!(a, tag(b"<p>1</p>"));
        assert_ne!(a, tag(b"<p>2</p>"));
        assert!(matches(&a, &a));
        assert!(matches(&format!("\"x\", W/{a}"), &a));
        assert!(matches("*", &a));
        assert!(!matches("\"x\"", &a));
    }
}
