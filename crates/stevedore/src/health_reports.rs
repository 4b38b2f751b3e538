//! Target health from a standalone data plane (`stevedore lb`) back to the server, so
//! DescribeTargetHealth and ECS deployments see its health checks' verdicts. ELBv2 has no
//! public operation that writes health, so this is one of Stevedore's own signed routes:
//! `POST /stevedore/elb/target-health` with [`Reports`] as JSON. This module owns that
//! wire form (both ends use it) and the server's handler.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, Method, Uri};
use model::lb::{Health, HealthReport, TargetKey};
use serde::{Deserialize, Serialize};

use crate::http::App;

/// The route's path.
pub const PATH: &str = "/stevedore/elb/target-health";

/// AWS's `TargetHealthReasonEnum`, the reasons an `unhealthy` report may carry.
const REASONS: &[&str] = &[
    "Elb.RegistrationInProgress",
    "Elb.InitialHealthChecking",
    "Target.ResponseCodeMismatch",
    "Target.Timeout",
    "Target.FailedHealthChecks",
    "Target.NotRegistered",
    "Target.NotInUse",
    "Target.DeregistrationInProgress",
    "Target.InvalidState",
    "Target.IpUnusable",
    "Target.HealthCheckDisabled",
    "Elb.InternalError",
];

/// The request body: the sender's current verdict for every target it checks.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reports {
    /// One entry per target group and target.
    pub reports: Vec<Report>,
}

/// One target's verdict.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Report {
    /// The target group.
    pub target_group_arn: String,
    /// The target's id (instance id or IP address).
    pub id: String,
    /// The target's port.
    pub port: u16,
    /// `initial`, `healthy` or `unhealthy`.
    pub state: String,
    /// With `unhealthy`: a `TargetHealthReasonEnum` value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// With `unhealthy`: a sentence for DescribeTargetHealth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl From<&HealthReport> for Report {
    fn from(r: &HealthReport) -> Self {
        let (state, reason, description) = match &r.health {
            Health::Initial => ("initial", None, None),
            Health::Healthy => ("healthy", None, None),
            Health::Unhealthy {
                reason,
                description,
            } => ("unhealthy", Some(reason.clone()), Some(description.clone())),
        };
        Report {
            target_group_arn: r.target_group_arn.clone(),
            id: r.target.id.clone(),
            port: r.target.port,
            state: state.to_owned(),
            reason,
            description,
        }
    }
}

impl Report {
    /// The data plane's form, or why the report is not acceptable.
    fn into_health_report(self) -> Result<HealthReport, String> {
        let health = match (self.state.as_str(), self.reason) {
            ("initial", _) => Health::Initial,
            ("healthy", _) => Health::Healthy,
            ("unhealthy", Some(reason)) if REASONS.contains(&reason.as_str()) => {
                Health::Unhealthy {
                    reason,
                    description: self.description.unwrap_or_default(),
                }
            }
            ("unhealthy", reason) => {
                return Err(format!(
                    "An unhealthy report needs a reason from TargetHealthReasonEnum ({}); got {reason:?}.",
                    REASONS.join(", ")
                ))
            }
            (other, _) => {
                return Err(format!(
                    "state must be initial, healthy or unhealthy; got {other:?}."
                ))
            }
        };
        Ok(HealthReport {
            target_group_arn: self.target_group_arn,
            target: TargetKey {
                id: self.id,
                port: self.port,
            },
            health,
        })
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn report(state: &str, reason: Option<&str>) -> Report {
        Report {
            target_group_arn: "tg".into(),
            id: "i-1".into(),
            port: 80,
            state: state.into(),
            reason: reason.map(str::to_owned),
            description: None,
        }
    }

    #[test]
    fn reports_round_trip_and_bad_ones_are_refused() {
        for health in [
            Health::Initial,
            Health::Healthy,
            Health::Unhealthy {
                reason: "Target.Timeout".into(),
                description: "Request timed out".into(),
            },
        ] {
            let original = HealthReport {
                target_group_arn: "tg".into(),
                target: TargetKey {
                    id: "10.0.0.1".into(),
                    port: 8080,
                },
                health,
            };
            let json = serde_json::to_vec(&Reports {
                reports: vec![Report::from(&original)],
            })
            .expect("encode");
            let decoded: Reports = serde_json::from_slice(&json).expect("decode");
            let back = decoded
                .reports
                .into_iter()
                .next()
                .expect("one")
                .into_health_report()
                .expect("valid");
            assert_eq!(back, original);
        }
        assert!(report("sick", None).into_health_report().is_err());
        assert!(report("unhealthy", None).into_health_report().is_err());
        assert!(report("unhealthy", Some("Made.Up"))
            .into_health_report()
            .is_err());
    }
}
