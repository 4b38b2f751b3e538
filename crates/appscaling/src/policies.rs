//! PutScalingPolicy, DescribeScalingPolicies and DeleteScalingPolicy, and the alarms a
//! target tracking policy creates and owns: named, configured and described as AWS's
//! (`TargetTracking-<resource id>-AlarmHigh-<uuid>`: metric above the target for 3 of 3
//! one-minute periods; `…-AlarmLow-<uuid>`: below 90 % of it for 15 of 15; no AlarmLow
//! when scale-in is disabled).

use crate::error::AppScalingError;
use crate::math::{check_steps, AdjustmentType, Step};
use crate::records::{
    alarms_json, check_target_names, no_target, policy_key, required, split_service, Listing,
    PolicyRecord, StepPolicy, TrackingPolicy, DIMENSION, NAMESPACE, POLICY_PREFIX,
};
use crate::{AlarmSpec, AppScaling};
use serde::Deserialize;
use serde_json::{json, Value};
use store::{Step as TxnStep, Txn};

/// AWS's default cooldown for ECS policies, seconds.
pub const DEFAULT_COOLDOWN: i64 = 300;
/// AWS's limit of scaling policies per scalable target.
const MAX_POLICIES: usize = 50;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutPolicyInput {
    policy_name: Option<String>,
    service_namespace: Option<String>,
    resource_id: Option<String>,
    scalable_dimension: Option<String>,
    policy_type: Option<String>,
    step_scaling_policy_configuration: Option<Value>,
    target_tracking_scaling_policy_configuration: Option<Value>,
    predictive_scaling_policy_configuration: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StepConfigIn {
    adjustment_type: Option<String>,
    step_adjustments: Option<Vec<StepIn>>,
    min_adjustment_magnitude: Option<i64>,
    cooldown: Option<i64>,
    metric_aggregation_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StepIn {
    metric_interval_lower_bound: Option<f64>,
    metric_interval_upper_bound: Option<f64>,
    scaling_adjustment: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TrackingConfigIn {
    target_value: Option<f64>,
    predefined_metric_specification: Option<PredefinedIn>,
    customized_metric_specification: Option<CustomizedIn>,
    scale_out_cooldown: Option<i64>,
    scale_in_cooldown: Option<i64>,
    disable_scale_in: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PredefinedIn {
    predefined_metric_type: Option<String>,
    resource_label: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CustomizedIn {
    metric_name: Option<String>,
    namespace: Option<String>,
    dimensions: Option<Vec<DimensionIn>>,
    statistic: Option<String>,
    unit: Option<String>,
    metrics: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DimensionIn {
    name: Option<String>,
    value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribePoliciesInput {
    policy_names: Option<Vec<String>>,
    service_namespace: Option<String>,
    resource_id: Option<String>,
    scalable_dimension: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeletePolicyInput {
    policy_name: Option<String>,
    service_namespace: Option<String>,
    resource_id: Option<String>,
    scalable_dimension: Option<String>,
}

fn invalid(message: impl Into<String>) -> AppScalingError {
    AppScalingError::Validation(message.into())
}

fn config<T: serde::de::DeserializeOwned>(v: &Value, member: &str) -> Result<T, AppScalingError> {
    serde_json::from_value(v.clone()).map_err(|e| invalid(format!("{member} is not valid: {e}")))
}

fn check_cooldown(v: Option<i64>, member: &str) -> Result<i64, AppScalingError> {
    match v {
        None => Ok(DEFAULT_COOLDOWN),
        Some(c) if (0..=86_400).contains(&c) => Ok(c),
        Some(c) => Err(invalid(format!(
            "{member} must be between 0 and 86400 seconds, not {c}."
        ))),
    }
}

/// Validates a step scaling configuration.
fn plan_step(v: &Value) -> Result<StepPolicy, AppScalingError> {
    let c: StepConfigIn = config(v, "StepScalingPolicyConfiguration")?;
    let kind_name = c
        .adjustment_type
        .as_deref()
        .ok_or_else(|| invalid("AdjustmentType is required for a step scaling policy."))?;
    let kind = AdjustmentType::parse(kind_name)
        .ok_or_else(|| invalid(format!("AdjustmentType {kind_name} is not valid: use ChangeInCapacity, PercentChangeInCapacity or ExactCapacity.")))?;
    let mut steps = Vec::new();
    for s in c.step_adjustments.unwrap_or_default() {
        steps.push(Step {
            lower: s.metric_interval_lower_bound,
            upper: s.metric_interval_upper_bound,
            adjustment: s.scaling_adjustment.ok_or_else(|| {
                invalid("ScalingAdjustment is required in every step adjustment.")
            })?,
        });
    }
    check_steps(&steps, kind).map_err(invalid)?;
    if let Some(m) = c.min_adjustment_magnitude {
        if kind != AdjustmentType::PercentChangeInCapacity {
            return Err(invalid("MinAdjustmentMagnitude may only be specified when AdjustmentType is PercentChangeInCapacity."));
        }
        if m < 1 {
            return Err(invalid(
                "MinAdjustmentMagnitude must be greater than or equal to 1.",
            ));
        }
    }
    if let Some(a) = &c.metric_aggregation_type {
        if !matches!(a.as_str(), "Average" | "Minimum" | "Maximum") {
            return Err(invalid(format!(
                "MetricAggregationType {a} is not valid: use Average, Minimum or Maximum."
            )));
        }
    }
    Ok(StepPolicy {
        adjustment_type: kind,
        steps,
        min_adjustment_magnitude: c.min_adjustment_magnitude,
        cooldown_secs: check_cooldown(c.cooldown, "Cooldown")?,
        aggregation: c.metric_aggregation_type,
    })
}

/// The metric a target tracking policy watches.
struct TrackedMetric {
    namespace: String,
    metric_name: String,
    dimensions: Vec<(String, String)>,
    statistic: String,
    unit: Option<String>,
}

fn plan_metric(c: &TrackingConfigIn, rid: &str) -> Result<TrackedMetric, AppScalingError> {
    let (cluster, service) = split_service(rid).unwrap_or(("", ""));
    match (&c.predefined_metric_specification, &c.customized_metric_specification) {
        (Some(_), Some(_)) | (None, None) => Err(invalid(
            "Exactly one of PredefinedMetricSpecification and CustomizedMetricSpecification must be specified.",
        )),
        (Some(p), None) => {
            let ty = required(p.predefined_metric_type.as_deref(), "predefinedMetricType")?;
            let ecs = |metric: &str| {
                if p.resource_label.is_some() {
                    return Err(invalid(format!("ResourceLabel is only valid with ALBRequestCountPerTarget, not {ty}.")));
                }
                Ok(TrackedMetric {
                    namespace: "AWS/ECS".into(),
                    metric_name: metric.into(),
                    dimensions: vec![
                        ("ClusterName".into(), cluster.into()),
                        ("ServiceName".into(), service.into()),
                    ],
                    statistic: "Average".into(),
                    unit: None,
                })
            };
            match ty {
                "ECSServiceAverageCPUUtilization" => ecs("CPUUtilization"),
                "ECSServiceAverageMemoryUtilization" => ecs("MemoryUtilization"),
                "ALBRequestCountPerTarget" => {
                    let label = p.resource_label.as_deref().ok_or_else(|| {
                        invalid("ResourceLabel is required with ALBRequestCountPerTarget.")
                    })?;
                    let tg = alb_target_group(label).ok_or_else(|| {
                        invalid(format!("ResourceLabel {label} is not valid: use app/<load-balancer-name>/<load-balancer-id>/targetgroup/<target-group-name>/<target-group-id>."))
                    })?;
                    Ok(TrackedMetric {
                        namespace: "AWS/ApplicationELB".into(),
                        metric_name: "RequestCountPerTarget".into(),
                        dimensions: vec![("TargetGroup".into(), tg.into())],
                        statistic: "Sum".into(),
                        unit: None,
                    })
                }
                "ECSServiceAverageCPUUtilizationHighResolution"
                | "ECSServiceAverageMemoryUtilizationHighResolution" => Err(invalid(format!(
                    "{ty} needs 20-second ECS metrics, which this server does not publish; use {} instead.",
                    ty.trim_end_matches("HighResolution")
                ))),
                other => Err(invalid(format!(
                    "Unsupported metric type {other} for service namespace ecs."
                ))),
            }
        }
        (None, Some(m)) => {
            if m.metrics.is_some() {
                return Err(invalid("Metric math in CustomizedMetricSpecification (Metrics) is not supported by this server; give MetricName, Namespace and Statistic."));
            }
            let statistic = required(m.statistic.as_deref(), "statistic")?;
            if !matches!(statistic, "Average" | "Minimum" | "Maximum" | "SampleCount" | "Sum") {
                return Err(invalid(format!("Statistic {statistic} is not valid: use Average, Minimum, Maximum, SampleCount or Sum.")));
            }
            let mut dimensions = Vec::new();
            for d in m.dimensions.as_deref().unwrap_or_default() {
                dimensions.push((
                    required(d.name.as_deref(), "name")?.to_owned(),
                    required(d.value.as_deref(), "value")?.to_owned(),
                ));
            }
            Ok(TrackedMetric {
                namespace: required(m.namespace.as_deref(), "namespace")?.to_owned(),
                metric_name: required(m.metric_name.as_deref(), "metricName")?.to_owned(),
                dimensions,
                statistic: statistic.to_owned(),
                unit: m.unit.clone(),
            })
        }
    }
}

/// `targetgroup/<name>/<id>` of an ALB resource label
/// `app/<lb>/<lb id>/targetgroup/<tg>/<tg id>`.
fn alb_target_group(label: &str) -> Option<&str> {
    let parts: Vec<&str> = label.split('/').collect();
    let ok = parts.len() == 6
        && parts[0] == "app"
        && parts[3] == "targetgroup"
        && parts.iter().all(|p| !p.is_empty());
    let at = label.find("/targetgroup/")?;
    ok.then(|| &label[at + 1..])
}

/// The alarms of a target tracking policy (AlarmHigh, then AlarmLow unless scale-in is
/// disabled), each acting on the policy.
fn plan_alarms(
    rid: &str,
    policy_arn: &str,
    tracking: &TrackingPolicy,
    metric: &TrackedMetric,
) -> Vec<AlarmSpec> {
    let alarm = |kind: &str, comparison: &'static str, threshold: f64, periods: i64| AlarmSpec {
        name: format!("TargetTracking-{rid}-{kind}-{}", uuid::Uuid::new_v4()),
        description: format!(
            "DO NOT EDIT OR DELETE. For TargetTrackingScaling policy {policy_arn}."
        ),
        namespace: metric.namespace.clone(),
        metric_name: metric.metric_name.clone(),
        dimensions: metric.dimensions.clone(),
        statistic: metric.statistic.clone(),
        unit: metric.unit.clone(),
        period: 60,
        evaluation_periods: periods,
        datapoints_to_alarm: periods,
        threshold,
        comparison,
        alarm_actions: vec![format!("{policy_arn}:createdBy/{}", uuid::Uuid::new_v4())],
    };
    let mut out = vec![alarm(
        "AlarmHigh",
        "GreaterThanThreshold",
        tracking.target,
        3,
    )];
    if !tracking.disable_scale_in {
        out.push(alarm(
            "AlarmLow",
            "LessThanThreshold",
            tracking.target * 0.9,
            15,
        ));
    }
    out
}

impl AppScaling {
    fn alarm_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:cloudwatch:{}:{}:alarm:{name}",
            self.scope.region, self.scope.account_id
        )
    }

    pub(crate) async fn put_policy(&self, input: PutPolicyInput) -> Result<Value, AppScalingError> {
        let name = required(input.policy_name.as_deref(), "policyName")?.to_owned();
        if name.chars().count() > 256 {
            return Err(invalid("PolicyName must be at most 256 characters."));
        }
        let rid = check_target_names(
            input.service_namespace.as_deref(),
            input.resource_id.as_deref(),
            input.scalable_dimension.as_deref(),
        )?;
        let policy_type = input.policy_type.as_deref().unwrap_or("StepScaling");
        if self.target(&rid).await?.is_none() {
            return Err(no_target(&rid));
        }
        let key = policy_key(&rid, &name);
        let old = self
            .objects
            .get::<PolicyRecord>(&key)
            .await?
            .map(|(p, _)| p);
        if old.is_none() {
            let count = self
                .objects
                .keys(&format!("{POLICY_PREFIX}{rid}/"))
                .await?
                .len();
            if count >= MAX_POLICIES {
                return Err(AppScalingError::LimitExceeded(format!(
                    "A scalable target can have at most {MAX_POLICIES} scaling policies."
                )));
            }
        }
        let arn = old.as_ref().map_or_else(
            || {
                format!(
                    "arn:aws:autoscaling:{}:{}:scalingPolicy:{}:resource/{NAMESPACE}/{rid}:policyName/{name}",
                    self.scope.region,
                    self.scope.account_id,
                    uuid::Uuid::new_v4()
                )
            },
            |p| p.arn.clone(),
        );
        let mut record = PolicyRecord {
            name: name.clone(),
            arn: arn.clone(),
            resource_id: rid.clone(),
            policy_type: policy_type.to_owned(),
            config: Value::Null,
            step: None,
            tracking: None,
            alarms: Vec::new(),
            creation_ms: old.as_ref().map_or(self.now_ms(), |p| p.creation_ms),
        };
        let mut specs = Vec::new();
        match policy_type {
            "StepScaling" => {
                let c = input.step_scaling_policy_configuration.ok_or_else(|| {
                    invalid("StepScalingPolicyConfiguration is required for a StepScaling policy.")
                })?;
                if input.target_tracking_scaling_policy_configuration.is_some() {
                    return Err(invalid("TargetTrackingScalingPolicyConfiguration is not valid for a StepScaling policy."));
                }
                record.step = Some(plan_step(&c)?);
                record.config = c;
            }
            "TargetTrackingScaling" => {
                let c = input.target_tracking_scaling_policy_configuration.ok_or_else(|| {
                    invalid("TargetTrackingScalingPolicyConfiguration is required for a TargetTrackingScaling policy.")
                })?;
                if input.step_scaling_policy_configuration.is_some() {
                    return Err(invalid("StepScalingPolicyConfiguration is not valid for a TargetTrackingScaling policy."));
                }
                let t: TrackingConfigIn = config(&c, "TargetTrackingScalingPolicyConfiguration")?;
                let target = t.target_value.ok_or_else(|| {
                    invalid("1 validation error detected: Value null at 'targetTrackingScalingPolicyConfiguration.targetValue' failed to satisfy constraint: Member must not be null")
                })?;
                if !(target.is_finite() && target > 0.0) {
                    return Err(invalid(format!(
                        "TargetValue must be a positive number, not {target}."
                    )));
                }
                let metric = plan_metric(&t, &rid)?;
                let tracking = TrackingPolicy {
                    target,
                    scale_out_cooldown_secs: check_cooldown(
                        t.scale_out_cooldown,
                        "ScaleOutCooldown",
                    )?,
                    scale_in_cooldown_secs: check_cooldown(t.scale_in_cooldown, "ScaleInCooldown")?,
                    disable_scale_in: t.disable_scale_in.unwrap_or(false),
                };
                specs = plan_alarms(&rid, &arn, &tracking, &metric);
                record.tracking = Some(tracking);
                record.config = c;
            }
            "PredictiveScaling" => {
                let _ = input.predictive_scaling_policy_configuration;
                return Err(invalid("PredictiveScaling policies are not supported by this server; use TargetTrackingScaling or StepScaling."));
            }
            other => {
                return Err(invalid(format!(
                    "PolicyType {other} is not valid: use StepScaling or TargetTrackingScaling."
                )))
            }
        }
        for spec in &specs {
            if let Err(e) = self.alarms.put_alarm(spec).await {
                let made: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
                if let Err(error) = self.alarms.delete_alarms(&made).await {
                    tracing::warn!(%error, "Could not delete the alarms of a policy that failed.");
                }
                return Err(AppScalingError::FailedResourceAccess(format!(
                    "Could not create the CloudWatch alarm {}: {e}",
                    spec.name
                )));
            }
        }
        record.alarms = specs
            .iter()
            .map(|s| (s.name.clone(), self.alarm_arn(&s.name)))
            .collect();
        self.objects
            .commit(Txn::new().put(&key, store::objects::encode(&record)?))
            .await?;
        // The replaced configuration's alarms go once the new ones are in place.
        if let Some(old) = old {
            self.delete_owned_alarms(&old).await?;
        }
        let mut out = json!({ "PolicyARN": arn });
        if record.tracking.is_some() {
            out["Alarms"] = alarms_json(&record.alarms);
        }
        Ok(out)
    }

    /// Deletes the alarms `policy` owns.
    pub(crate) async fn delete_owned_alarms(
        &self,
        policy: &PolicyRecord,
    ) -> Result<(), AppScalingError> {
        if policy.alarms.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = policy.alarms.iter().map(|(n, _)| n.clone()).collect();
        self.alarms.delete_alarms(&names).await.map_err(|e| {
            AppScalingError::FailedResourceAccess(format!(
                "Could not delete the policy's CloudWatch alarms: {e}"
            ))
        })
    }

    pub(crate) async fn describe_policies(
        &self,
        input: DescribePoliciesInput,
    ) -> Result<Value, AppScalingError> {
        let names = input.policy_names.unwrap_or_default();
        let listing = Listing {
            namespace: input.service_namespace.as_deref(),
            dimension: input.scalable_dimension.as_deref(),
            resource_id: input.resource_id.as_deref(),
            names: &names,
            next_token: input.next_token.as_deref(),
            max_results: input.max_results,
        };
        self.describe_listed::<PolicyRecord>((POLICY_PREFIX, "ScalingPolicies"), listing)
            .await
    }

    pub(crate) async fn delete_policy(
        &self,
        input: DeletePolicyInput,
    ) -> Result<Value, AppScalingError> {
        let name = required(input.policy_name.as_deref(), "policyName")?;
        let rid = check_target_names(
            input.service_namespace.as_deref(),
            input.resource_id.as_deref(),
            input.scalable_dimension.as_deref(),
        )?;
        let key = policy_key(&rid, name);
        let policy = self
            .objects
            .retry(&key, || async {
                let Some((p, rev)) = self.objects.get::<PolicyRecord>(&key).await? else {
                    return Err(AppScalingError::ObjectNotFound(format!(
                        "No scaling policy found for service namespace: {NAMESPACE}, resource ID: {rid}, scalable dimension: {DIMENSION}, policy name: {name}"
                    )));
                };
                Ok(TxnStep::Commit(Txn::new().when(&key, rev).delete(&key), p))
            })
            .await?;
        self.delete_owned_alarms(&policy).await?;
        Ok(json!({}))
    }

    /// The policy an alarm action names: its ARN, possibly followed by
    /// `:createdBy/<uuid>` (target tracking's own alarms).
    pub(crate) async fn policy_by_action(
        &self,
        action: &str,
    ) -> Result<Option<PolicyRecord>, AppScalingError> {
        let arn = action.split(":createdBy/").next().unwrap_or(action);
        Ok(self
            .objects
            .list::<PolicyRecord>(POLICY_PREFIX)
            .await?
            .into_iter()
            .map(|(_, p, _)| p)
            .find(|p| p.arn == arn))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alb_resource_label_names_its_target_group() {
        assert_eq!(
            alb_target_group("app/web/50dc6c495c0c9188/targetgroup/tg/6d0ecf831eec9f09"),
            Some("targetgroup/tg/6d0ecf831eec9f09")
        );
        assert_eq!(alb_target_group("targetgroup/tg/6d0ecf831eec9f09"), None);
        assert_eq!(alb_target_group("app/web/x/targetgroup/tg"), None);
    }

    #[test]
    fn target_tracking_alarms_are_named_and_configured_as_aws_does() {
        let tracking = TrackingPolicy {
            target: 70.0,
            scale_out_cooldown_secs: 300,
            scale_in_cooldown_secs: 300,
            disable_scale_in: false,
        };
        let metric = TrackedMetric {
            namespace: "AWS/ECS".into(),
            metric_name: "CPUUtilization".into(),
            dimensions: vec![],
            statistic: "Average".into(),
            unit: None,
        };
        let alarms = plan_alarms("service/c/s", "arn:p", &tracking, &metric);
        let (high, low) = (&alarms[0], &alarms[1]);
        assert!(high
            .name
            .starts_with("TargetTracking-service/c/s-AlarmHigh-"));
        assert_eq!(
            (high.comparison, high.threshold),
            ("GreaterThanThreshold", 70.0)
        );
        assert_eq!(
            (
                high.period,
                high.evaluation_periods,
                high.datapoints_to_alarm
            ),
            (60, 3, 3)
        );
        assert!(low.name.starts_with("TargetTracking-service/c/s-AlarmLow-"));
        assert_eq!(low.comparison, "LessThanThreshold");
        assert!((low.threshold - 63.0).abs() < 1e-9);
        assert_eq!((low.evaluation_periods, low.datapoints_to_alarm), (15, 15));
        assert!(high.alarm_actions[0].starts_with("arn:p:createdBy/"));
        let no_in = TrackingPolicy {
            disable_scale_in: true,
            ..tracking
        };
        assert_eq!(
            plan_alarms("service/c/s", "arn:p", &no_in, &metric).len(),
            1
        );
    }
}
