//! Application Auto Scaling's ports over this region's ECS and CloudWatch, and
//! CloudWatch's alarm actions port over Application Auto Scaling: the only place that
//! knows all three. ECS is driven through its own API (DescribeServices, UpdateService
//! as the account root), so a scaling change passes UpdateService's validation.

use appscaling::{
    AlarmSpec, AlarmTrigger, EcsServices, MetricAlarms, ServiceCounts, TriggerSender,
};
use cloudwatch::evaluate::State;
use cloudwatch::{AlarmActions, CloudWatch, StoredAlarm};
use serde_json::{json, Value};

/// [`EcsServices`] over one region's ECS.
pub struct EcsCapacity(pub ecs::Ecs);

impl EcsCapacity {
    async fn call(&self, op: &str, body: Value) -> Result<Value, String> {
        let caller = wire::Caller::root(&self.0.scope().account_id);
        let out = self
            .0
            .handle(op, body.to_string().as_bytes(), &caller)
            .await
            .map_err(|e| e.to_string())?;
        serde_json::from_slice(&out).map_err(|e| format!("ECS answered {op} with bad JSON: {e}"))
    }
}

/// The counts of the first service in a DescribeServices answer, if it is ACTIVE.
fn counts_of(answer: &Value) -> Option<ServiceCounts> {
    let s = answer.get("services")?.as_array()?.first()?;
    if s.get("status").and_then(Value::as_str) != Some("ACTIVE") {
        return None;
    }
    let int = |k: &str| s.get(k).and_then(Value::as_i64).unwrap_or(0);
    let deployments = s
        .get("deployments")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    // A deployment is in progress while an older one still has tasks, or the primary
    // one has not reached its steady state.
    let deploying = deployments.len() > 1
        || deployments
            .iter()
            .any(|d| d.get("rolloutState").and_then(Value::as_str) == Some("IN_PROGRESS"));
    Some(ServiceCounts {
        desired: int("desiredCount"),
        running: int("runningCount"),
        deploying,
    })
}

#[async_trait::async_trait]
impl EcsServices for EcsCapacity {
    async fn counts(&self, cluster: &str, service: &str) -> Result<Option<ServiceCounts>, String> {
        match self
            .call(
                "DescribeServices",
                json!({"cluster": cluster, "services": [service]}),
            )
            .await
        {
            Ok(answer) => Ok(counts_of(&answer)),
            // No such cluster: no such service.
            Err(e) if e.contains("Cluster not found") => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn set_desired_count(
        &self,
        cluster: &str,
        service: &str,
        count: i64,
    ) -> Result<(), String> {
        self.call(
            "UpdateService",
            json!({"cluster": cluster, "service": service, "desiredCount": count}),
        )
        .await
        .map(|_| ())
    }
}

/// [`MetricAlarms`] over one region's CloudWatch.
pub struct CloudWatchAlarms(pub CloudWatch);

#[async_trait::async_trait]
impl MetricAlarms for CloudWatchAlarms {
    async fn put_alarm(&self, a: &AlarmSpec) -> Result<(), String> {
        let mut request = json!({
            "AlarmName": a.name,
            "AlarmDescription": a.description,
            "Namespace": a.namespace,
            "MetricName": a.metric_name,
            "Dimensions": a.dimensions.iter().map(|(n, v)| json!({"Name": n, "Value": v})).collect::<Vec<_>>(),
            "Statistic": a.statistic,
            "Period": a.period,
            "EvaluationPeriods": a.evaluation_periods,
            "DatapointsToAlarm": a.datapoints_to_alarm,
            "Threshold": a.threshold,
            "ComparisonOperator": a.comparison,
            "AlarmActions": a.alarm_actions,
        });
        if let Some(unit) = &a.unit {
            request["Unit"] = json!(unit);
        }
        self.0.put_alarm(request).await.map_err(|e| e.to_string())
    }

    async fn delete_alarms(&self, names: &[String]) -> Result<(), String> {
        self.0
            .delete_alarms(names.to_vec())
            .await
            .map_err(|e| e.to_string())
    }
}

/// CloudWatch's [`AlarmActions`] port, handing scaling policy actions to Application
/// Auto Scaling's loop (it never blocks the alarm evaluator).
pub struct ScalingActions(pub TriggerSender);

impl AlarmActions for ScalingActions {
    fn invoke(&self, alarm: &StoredAlarm, action: &str, state: State) -> Result<(), String> {
        if !action.starts_with("arn:aws:autoscaling:") || !action.contains(":scalingPolicy:") {
            return Err(
                "This server executes only Application Auto Scaling policy actions.".into(),
            );
        }
        self.0.send(AlarmTrigger {
            alarm_name: alarm.name.clone(),
            action: action.to_owned(),
            state: state.as_str().to_owned(),
            threshold: alarm.threshold,
            comparison: alarm.comparison.as_str().to_owned(),
            reason_data: alarm.state_reason_data.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_deployment_or_a_rollout_in_progress_is_a_deployment() {
        let one = json!({"services": [{"status": "ACTIVE", "desiredCount": 3, "runningCount": 2,
            "deployments": [{"status": "PRIMARY", "rolloutState": "COMPLETED"}]}]});
        assert_eq!(
            counts_of(&one),
            Some(ServiceCounts {
                desired: 3,
                running: 2,
                deploying: false
            })
        );
        let two = json!({"services": [{"status": "ACTIVE", "desiredCount": 3, "runningCount": 2,
            "deployments": [{"status": "PRIMARY"}, {"status": "ACTIVE"}]}]});
        assert!(counts_of(&two).is_some_and(|c| c.deploying));
        let gone = json!({"services": [{"status": "INACTIVE"}], "failures": []});
        assert_eq!(counts_of(&gone), None);
        assert_eq!(
            counts_of(&json!({"services": [], "failures": [{"reason": "MISSING"}]})),
            None
        );
    }
}
