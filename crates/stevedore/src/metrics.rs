//! `GET /metrics`: the Prometheus text exposition of everything the server counts (see
//! `docs/specs/instrumentation.md`), and the timing of API requests around the dispatch.
//!
//! Like `/health`, the route is unsigned: Prometheus cannot sign SigV4, and the text
//! holds counts, durations and resource names, never a secret. A server listening beyond
//! loopback exposes it to whoever can reach the port.

use crate::http::App;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::HeaderValue;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

/// Serves the exposition. Tasks by status are counted from the store now, so the gauge
/// is as fresh as the scrape.
pub async fn scrape(State(app): State<Arc<App>>) -> Response {
    match app.ecs().task_counts().await {
        Ok(counts) => telemetry::TaskCounts(&counts).emit(),
        Err(error) => tracing::warn!(%error, "Could not count tasks for /metrics."),
    }
    (
        [(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(telemetry::CONTENT_TYPE),
        )],
        telemetry::render(),
    )
        .into_response()
}

/// Runs `dispatch` on `req` and emits an [`telemetry::ApiRequest`] for it: the service and
/// operation from `X-Amz-Target` (query-protocol requests carry their action in the
/// body, so they count as `operation="unknown"` until the dispatch names it), the error
/// code from the answer's `x-amzn-ErrorType`.
pub async fn observed<F, Fut>(req: Request, dispatch: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let started = Instant::now();
    // A clone of the header shares its bytes: no allocation per request.
    let target = req.headers().get("x-amz-target").cloned();
    let query = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes()
                .starts_with(b"application/x-www-form-urlencoded")
        });
    let response = dispatch(req).await;
    let (service, operation) = classify(target.as_ref(), query);
    let error_code = response
        .headers()
        .get("x-amzn-ErrorType")
        .and_then(|v| v.to_str().ok());
    telemetry::ApiRequest {
        service,
        operation,
        error_code,
        elapsed: started.elapsed(),
    }
    .emit();
    response
}

/// (service, operation) of a request by its `X-Amz-Target` (`Prefix.Operation`).
fn classify(target: Option<&HeaderValue>, query: bool) -> (&'static str, &str) {
    let Some((prefix, operation)) = target
        .and_then(|t| t.to_str().ok())
        .and_then(|t| t.split_once('.'))
    else {
        return (if query { elb::SIGNING_NAME } else { "unknown" }, "unknown");
    };
    let service = match prefix {
        model::ecs::TARGET_PREFIX => model::ecs::SIGNING_NAME,
        model::ecr::TARGET_PREFIX => model::ecr::SIGNING_NAME,
        model::logs::TARGET_PREFIX => model::logs::SIGNING_NAME,
        _ => "unknown",
    };
    (service, operation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_classified_by_their_target() {
        let ecs = HeaderValue::from_static("AmazonEC2ContainerServiceV20141113.ListClusters");
        assert_eq!(classify(Some(&ecs), false), ("ecs", "ListClusters"));
        let logs = HeaderValue::from_static("Logs_20140328.PutLogEvents");
        assert_eq!(classify(Some(&logs), false), ("logs", "PutLogEvents"));
        assert_eq!(classify(None, true), ("elasticloadbalancing", "unknown"));
        assert_eq!(classify(None, false), ("unknown", "unknown"));
    }
}
