//! `GET /metrics`: the Prometheus text exposition of everything the server counts (see
//! `docs/specs/instrumentation.md`), and the timing of API requests around the dispatch.
//!
//! Like `/health`, the route is unsigned: Prometheus cannot sign SigV4, and the text
//! holds counts, durations and resource names, never a secret. A server listening beyond
//! loopback exposes it to whoever can reach the port.

use crate::http::App;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::HeaderValue;
use std::sync::Arc;

/// Serves the exposition. Tasks by status are counted from the store now (summed over
/// every region), so the gauge is as fresh as the scrape.
pub async fn scrape(State(app): State<Arc<App>>) -> Response {
    let mut counts = std::collections::HashMap::<String, u64>::new();
    let mut counted = true;
    for region in app.accounts().regions() {
        match region.ecs.task_counts().await {
            Ok(region_counts) => {
                for (status, n) in region_counts {
                    *counts.entry(status).or_default() += n;
                }
            }
            Err(error) => {
                counted = false;
                tracing::warn!(%error, region = %region.scope.region, "Could not count tasks for /metrics.");
            }
        }
    }
    if counted {
        telemetry::TaskCounts(&counts).emit();
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

/// Counts every API request the dispatch answers as a [`telemetry::ApiRequest`]: by the
/// service's name, the operation and the AWS error code, all as the dispatch
/// resolved them (query-protocol actions included).
pub struct RequestMetrics;

impl wire::Observer for RequestMetrics {
    fn served(
        &self,
        service: Option<&'static str>,
        operation: Option<&'static str>,
        error_code: Option<&str>,
        elapsed: std::time::Duration,
    ) {
        telemetry::ApiRequest {
            service: service.unwrap_or("unknown"),
            operation: operation.unwrap_or("unknown"),
            error_code,
            elapsed,
        }
        .emit();
    }
}
