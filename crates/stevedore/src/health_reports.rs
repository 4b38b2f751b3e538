//! Target health from a standalone data plane (`stevedore lb`) back to the server, so
//! DescribeTargetHealth and ECS deployments see its health checks' verdicts. ELBv2 has no
//! public operation that writes health, so this is one of Stevedore's own signed routes:
//! `POST /stevedore/elb/target-health` with [`Reports`] as JSON (its wire form is
//! `model::lb::health_reports`). This module owns the server's handler.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, Method, Uri};
use model::lb::health_reports::{Report, Reports};
use model::lb::HealthReport;

use crate::http::App;

pub use model::lb::health_reports::PATH;

/// `POST /stevedore/elb/target-health`: records the verdicts for targets that are still
/// registered (reports about others are dropped, so a late sender cannot resurrect a
/// deleted group's rows). Answers `{"accepted": n}`.
pub async fn receive(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Reports are about the load balancers of the region the sender signed for.
    let (reports, region): (Reports, _) = match crate::http::signed_json(
        &app,
        &method,
        &uri,
        &headers,
        &body,
        r#"{"reports": [{"targetGroupArn", "id", "port", "state", "reason"?, "description"?}]}"#,
    )
    .await
    {
        Ok(r) => r,
        Err(response) => return *response,
    };
    let reports: Vec<HealthReport> = match reports
        .reports
        .into_iter()
        .map(Report::into_health_report)
        .collect()
    {
        Ok(r) => r,
        Err(message) => return crate::http::client_error("InvalidParameterException", &message),
    };
    let registered = match region.elb.registered_targets().await {
        Ok(r) => r,
        Err(e) => return crate::http::aws_error(&e.to_aws()),
    };
    let known: Vec<HealthReport> = reports
        .into_iter()
        .filter(|r| registered.contains(&(r.target_group_arn.clone(), r.target.clone())))
        .collect();
    let accepted = known.len();
    region.elb.report_health(known);
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "accepted": accepted }).to_string(),
    )
        .into_response()
}
