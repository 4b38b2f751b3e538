//! The wire form of target health sent by a standalone data plane (`stevedore lb`) to the
//! server: `POST /stevedore/elb/target-health` with [`Reports`] as JSON, one of
//! Stevedore's own signed routes (ELBv2 has no public operation that writes health). Both
//! ends use this module; the fuzz target `lb_target_health` decodes arbitrary bodies
//! with it.

use super::{Health, HealthReport, TargetKey};
use serde::{Deserialize, Serialize};

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
    pub fn into_health_report(self) -> Result<HealthReport, String> {
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
