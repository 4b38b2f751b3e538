//! The operations and the scaling rules over a real (SQLite) store, with ECS and
//! CloudWatch replaced by small fakes that record what they were asked.

use super::*;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

#[derive(Default)]
struct FakeEcs {
    services: Mutex<std::collections::HashMap<String, ServiceCounts>>,
}

#[async_trait::async_trait]
impl EcsServices for FakeEcs {
    async fn counts(&self, cluster: &str, service: &str) -> Result<Option<ServiceCounts>, String> {
        let map = self.services.lock().expect("lock");
        Ok(map.get(&format!("{cluster}/{service}")).copied())
    }
    async fn set_desired_count(
        &self,
        cluster: &str,
        service: &str,
        count: i64,
    ) -> Result<(), String> {
        let mut map = self.services.lock().expect("lock");
        let s = map
            .get_mut(&format!("{cluster}/{service}"))
            .ok_or("no such service")?;
        s.desired = count;
        Ok(())
    }
}

#[derive(Default)]
struct FakeAlarms {
    alarms: Mutex<Vec<AlarmSpec>>,
}

#[async_trait::async_trait]
impl MetricAlarms for FakeAlarms {
    async fn put_alarm(&self, alarm: &AlarmSpec) -> Result<(), String> {
        self.alarms.lock().expect("lock").push(alarm.clone());
        Ok(())
    }
    async fn delete_alarms(&self, names: &[String]) -> Result<(), String> {
        self.alarms
            .lock()
            .expect("lock")
            .retain(|a| !names.contains(&a.name));
        Ok(())
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    app: AppScaling,
    ecs: Arc<FakeEcs>,
    alarms: Arc<FakeAlarms>,
    clock: Arc<AtomicI64>,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn store::Store> = Arc::new(
        store::SqliteStore::open(store::SqliteConfig::new(dir.path().join("s.db"))).expect("open"),
    );
    let ecs = Arc::new(FakeEcs::default());
    ecs.services.lock().expect("lock").insert(
        "c/web".into(),
        ServiceCounts {
            desired: 1,
            running: 1,
            deploying: false,
        },
    );
    let alarms = Arc::new(FakeAlarms::default());
    let clock = Arc::new(AtomicI64::new(1_800_000_000_000));
    let c = clock.clone();
    let (_, rx) = trigger_channel();
    let app = AppScaling::new(
        store,
        ArnScope {
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
        },
        (ecs.clone(), alarms.clone()),
        rx,
    )
    .with_clock(Arc::new(move || c.load(Ordering::SeqCst)));
    Harness {
        _dir: dir,
        app,
        ecs,
        alarms,
        clock,
    }
}

impl Harness {
    async fn call(&self, op: Operation, body: Value) -> Result<Value, wire::AwsError> {
        self.app
            .execute(op, body.to_string().as_bytes())
            .await
            .map_err(|e| match e {
                ServiceError::Aws(e) => e,
                ServiceError::NotImplemented => wire::AwsError::client("NotImplemented", ""),
            })
    }

    async fn register(&self, min: i64, max: i64) {
        self.call(
            Operation::RegisterScalableTarget,
            json!({"ServiceNamespace": "ecs", "ResourceId": "service/c/web",
                "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": min, "MaxCapacity": max}),
        )
        .await
        .expect("registered");
    }

    fn set(&self, desired: i64, running: i64, deploying: bool) {
        self.ecs.services.lock().expect("lock").insert(
            "c/web".into(),
            ServiceCounts {
                desired,
                running,
                deploying,
            },
        );
    }

    fn desired(&self) -> i64 {
        self.ecs.services.lock().expect("lock")["c/web"].desired
    }

    fn advance(&self, secs: i64) {
        self.clock.fetch_add(secs * 1000, Ordering::SeqCst);
    }

    async fn activities(&self) -> Vec<Value> {
        let out = self
            .call(
                Operation::DescribeScalingActivities,
                json!({"ServiceNamespace": "ecs"}),
            )
            .await
            .expect("activities");
        out["ScalingActivities"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    async fn fire(
        &self,
        alarm: &str,
        action: &str,
        comparison: &str,
        points: &[f64],
        threshold: f64,
    ) {
        let trigger = AlarmTrigger {
            alarm_name: alarm.into(),
            action: action.into(),
            state: "ALARM".into(),
            threshold,
            comparison: comparison.into(),
            reason_data: Some(
                json!({"recentDatapoints": points, "threshold": threshold}).to_string(),
            ),
        };
        self.app.execute_trigger(&trigger).await.expect("executed");
    }

    async fn tracking_policy(&self, target: f64, disable_in: bool) -> Value {
        self.call(
            Operation::PutScalingPolicy,
            json!({"PolicyName": "cpu", "ServiceNamespace": "ecs", "ResourceId": "service/c/web",
                "ScalableDimension": "ecs:service:DesiredCount", "PolicyType": "TargetTrackingScaling",
                "TargetTrackingScalingPolicyConfiguration": {"TargetValue": target,
                    "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"},
                    "ScaleInCooldown": 60, "ScaleOutCooldown": 60, "DisableScaleIn": disable_in}}),
        )
        .await
        .expect("policy")
    }
}

#[tokio::test]
async fn registering_validates_namespace_resource_id_and_the_service() {
    let h = harness();
    let other = h
        .call(Operation::RegisterScalableTarget, json!({"ServiceNamespace": "dynamodb", "ResourceId": "table/t",
            "ScalableDimension": "dynamodb:table:ReadCapacityUnits", "MinCapacity": 1, "MaxCapacity": 2}))
        .await
        .expect_err("refused");
    assert_eq!(other.code, "ValidationException");
    let bad = h
        .call(
            Operation::RegisterScalableTarget,
            json!({"ServiceNamespace": "ecs", "ResourceId": "c/web",
            "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": 1, "MaxCapacity": 2}),
        )
        .await
        .expect_err("refused");
    assert_eq!(bad.code, "ValidationException");
    let missing = h
        .call(
            Operation::RegisterScalableTarget,
            json!({"ServiceNamespace": "ecs", "ResourceId": "service/c/nope",
            "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": 1, "MaxCapacity": 2}),
        )
        .await
        .expect_err("refused");
    assert_eq!(missing.message, "ECS service doesn't exist: service/c/nope");
    let inverted = h
        .call(
            Operation::RegisterScalableTarget,
            json!({"ServiceNamespace": "ecs", "ResourceId": "service/c/web",
            "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": 5, "MaxCapacity": 2}),
        )
        .await
        .expect_err("refused");
    assert_eq!(inverted.code, "ValidationException");
}

#[tokio::test]
async fn a_registered_target_is_described_updated_and_raises_capacity_to_its_min() {
    let h = harness();
    h.register(1, 4).await;
    h.call(
        Operation::RegisterScalableTarget,
        json!({"ServiceNamespace": "ecs", "ResourceId": "service/c/web",
        "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": 2}),
    )
    .await
    .expect("updated");
    let out = h
        .call(
            Operation::DescribeScalableTargets,
            json!({"ServiceNamespace": "ecs"}),
        )
        .await
        .expect("described");
    let t = &out["ScalableTargets"][0];
    assert_eq!(
        (t["MinCapacity"].as_i64(), t["MaxCapacity"].as_i64()),
        (Some(2), Some(4))
    );
    assert!(t["ScalableTargetARN"].as_str().is_some_and(|a| a
        .starts_with("arn:aws:application-autoscaling:us-east-1:000000000000:scalable-target/")));
    assert_eq!(h.desired(), 2);
    let acts = h.activities().await;
    assert_eq!(acts[0]["Description"], "Setting desired count to 2.");
    assert_eq!(acts[0]["Cause"], "minimum capacity was set to 2");
}

#[tokio::test]
async fn a_policy_on_an_unregistered_target_is_object_not_found() {
    let h = harness();
    let e = h
        .call(Operation::PutScalingPolicy, json!({"PolicyName": "p", "ServiceNamespace": "ecs",
            "ResourceId": "service/c/web", "ScalableDimension": "ecs:service:DesiredCount",
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 50.0,
                "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}}}))
        .await
        .expect_err("refused");
    assert_eq!(e.code, "ObjectNotFoundException");
    assert_eq!(e.message, "No scalable target registered for service namespace: ecs, resource ID: service/c/web, scalable dimension: ecs:service:DesiredCount");
}

#[tokio::test]
async fn target_tracking_owns_its_alarms_until_deleted() {
    let h = harness();
    h.register(1, 4).await;
    let out = h.tracking_policy(50.0, false).await;
    let alarms = out["Alarms"].as_array().cloned().unwrap_or_default();
    assert_eq!(alarms.len(), 2);
    assert_eq!(h.alarms.alarms.lock().expect("lock").len(), 2);
    let described = h
        .call(
            Operation::DescribeScalingPolicies,
            json!({"ServiceNamespace": "ecs", "ResourceId": "service/c/web"}),
        )
        .await
        .expect("described");
    assert_eq!(described["ScalingPolicies"][0]["Alarms"], json!(alarms));
    // Replacing the policy replaces its alarms.
    h.tracking_policy(60.0, true).await;
    let now: Vec<AlarmSpec> = h.alarms.alarms.lock().expect("lock").clone();
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].threshold, 60.0);
    h.call(
        Operation::DeleteScalingPolicy,
        json!({"PolicyName": "cpu", "ServiceNamespace": "ecs",
        "ResourceId": "service/c/web", "ScalableDimension": "ecs:service:DesiredCount"}),
    )
    .await
    .expect("deleted");
    assert!(h.alarms.alarms.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn target_tracking_follows_the_newest_datapoint() {
    let h = harness();
    h.register(1, 10).await;
    let out = h.tracking_policy(50.0, false).await;
    let arn = out["PolicyARN"].as_str().expect("arn").to_owned();
    let action = format!("{arn}:createdBy/x");
    // Newest first, as CloudWatch's evaluator lists them: 150 now, 60 and 55 before.
    h.fire(
        "High",
        &action,
        "GreaterThanThreshold",
        &[150.0, 60.0, 55.0],
        50.0,
    )
    .await;
    assert_eq!(h.desired(), 3, "1 task at 150 % of a 50 target wants 3");
}

#[tokio::test]
async fn target_tracking_scales_out_proportionally_within_max_and_in_after_cooldown() {
    let h = harness();
    h.register(1, 4).await;
    let out = h.tracking_policy(50.0, false).await;
    let arn = out["PolicyARN"].as_str().expect("arn").to_owned();
    let action = format!("{arn}:createdBy/x");
    h.fire(
        "High",
        &action,
        "GreaterThanThreshold",
        &[100.0, 100.0, 100.0],
        50.0,
    )
    .await;
    assert_eq!(h.desired(), 2);
    let acts = h.activities().await;
    assert_eq!(acts[0]["Description"], "Setting desired count to 2.");
    assert_eq!(
        acts[0]["Cause"],
        "monitor alarm High in state ALARM triggered policy cpu"
    );
    assert_eq!(acts[0]["StatusCode"], "Successful");
    // Repeated while the new task starts: the base is the running count, so nothing stacks.
    h.fire("High", &action, "GreaterThanThreshold", &[100.0], 50.0)
        .await;
    assert_eq!(h.desired(), 2);
    h.set(2, 2, false);
    h.fire("High", &action, "GreaterThanThreshold", &[300.0], 50.0)
        .await;
    assert_eq!(h.desired(), 4, "12 clamped to max 4");
    // Scale-in waits out the scale-out cooldown, and any deployment.
    h.set(4, 4, false);
    h.fire("Low", &action, "LessThanThreshold", &[10.0], 45.0)
        .await;
    assert_eq!(h.desired(), 4);
    h.advance(61);
    h.set(4, 4, true);
    h.fire("Low", &action, "LessThanThreshold", &[10.0], 45.0)
        .await;
    assert_eq!(h.desired(), 4, "no scale-in during a deployment");
    h.set(4, 4, false);
    h.fire("Low", &action, "LessThanThreshold", &[10.0], 45.0)
        .await;
    assert_eq!(h.desired(), 1);
}

#[tokio::test]
async fn disabled_scale_in_never_scales_in() {
    let h = harness();
    h.register(1, 4).await;
    let out = h.tracking_policy(50.0, true).await;
    let arn = out["PolicyARN"].as_str().expect("arn").to_owned();
    h.set(3, 3, false);
    h.fire("Low", &arn, "LessThanThreshold", &[1.0], 45.0).await;
    assert_eq!(h.desired(), 3);
}

#[tokio::test]
async fn step_scaling_picks_the_step_and_does_not_stack_within_its_cooldown() {
    let h = harness();
    h.register(1, 10).await;
    let out = h
        .call(Operation::PutScalingPolicy, json!({"PolicyName": "steps", "ServiceNamespace": "ecs",
            "ResourceId": "service/c/web", "ScalableDimension": "ecs:service:DesiredCount",
            "StepScalingPolicyConfiguration": {"AdjustmentType": "ChangeInCapacity", "Cooldown": 120,
                "StepAdjustments": [
                    {"MetricIntervalLowerBound": 0.0, "MetricIntervalUpperBound": 20.0, "ScalingAdjustment": 1},
                    {"MetricIntervalLowerBound": 20.0, "ScalingAdjustment": 3}]}}))
        .await
        .expect("policy");
    assert!(out.get("Alarms").is_none());
    let arn = out["PolicyARN"].as_str().expect("arn").to_owned();
    assert!(arn.starts_with("arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:"));
    assert!(arn.ends_with(":resource/ecs/service/c/web:policyName/steps"));
    h.fire("Busy", &arn, "GreaterThanThreshold", &[75.0], 50.0)
        .await;
    assert_eq!(h.desired(), 4, "offset 25 selects +3");
    // The alarm repeats next period: within the cooldown it counts from 1 again.
    h.fire("Busy", &arn, "GreaterThanThreshold", &[75.0], 50.0)
        .await;
    assert_eq!(h.desired(), 4);
    h.advance(121);
    h.fire("Busy", &arn, "GreaterThanThreshold", &[55.0], 50.0)
        .await;
    assert_eq!(h.desired(), 5, "offset 5 selects +1");
    let bad = h
        .call(Operation::PutScalingPolicy, json!({"PolicyName": "bad", "ServiceNamespace": "ecs",
            "ResourceId": "service/c/web", "ScalableDimension": "ecs:service:DesiredCount",
            "StepScalingPolicyConfiguration": {"AdjustmentType": "ChangeInCapacity", "MinAdjustmentMagnitude": 2,
                "StepAdjustments": [{"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 1}]}}))
        .await
        .expect_err("refused");
    assert_eq!(bad.code, "ValidationException");
}

#[tokio::test]
async fn a_scheduled_action_sets_min_and_max_and_the_capacity_follows() {
    let h = harness();
    h.register(1, 4).await;
    h.call(Operation::PutScheduledAction, json!({"ServiceNamespace": "ecs", "ScheduledActionName": "morning",
        "ResourceId": "service/c/web", "ScalableDimension": "ecs:service:DesiredCount",
        "Schedule": "rate(5 minutes)", "ScalableTargetAction": {"MinCapacity": 3, "MaxCapacity": 6}}))
        .await
        .expect("scheduled");
    let bad = h
        .call(
            Operation::PutScheduledAction,
            json!({"ServiceNamespace": "ecs", "ScheduledActionName": "x",
            "ResourceId": "service/c/web", "ScalableDimension": "ecs:service:DesiredCount",
            "Schedule": "cron(0 9 * * * *)"}),
        )
        .await
        .expect_err("refused");
    assert_eq!(bad.code, "ValidationException");
    h.app.fire_scheduled(h.app.now_ms()).await.expect("round");
    assert_eq!(h.desired(), 1, "not due yet");
    h.advance(301);
    h.app.fire_scheduled(h.app.now_ms()).await.expect("round");
    assert_eq!(h.desired(), 3);
    let acts = h.activities().await;
    let texts: Vec<(String, String)> = acts
        .iter()
        .map(|a| {
            (
                a["Description"].as_str().unwrap_or_default().to_owned(),
                a["Cause"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert!(texts.contains(&(
        "Setting min capacity to 3 and max capacity to 6".into(),
        "scheduled action name morning was triggered".into()
    )));
    assert!(texts.contains(&(
        "Setting desired count to 3.".into(),
        "minimum capacity was set to 3".into()
    )));
    // Fired once per period.
    let before = acts.len();
    h.app.fire_scheduled(h.app.now_ms()).await.expect("round");
    assert_eq!(h.activities().await.len(), before);
}

#[tokio::test]
async fn deregistering_removes_policies_alarms_and_scheduled_actions() {
    let h = harness();
    h.register(1, 4).await;
    h.tracking_policy(50.0, false).await;
    h.call(
        Operation::DeregisterScalableTarget,
        json!({"ServiceNamespace": "ecs",
        "ResourceId": "service/c/web", "ScalableDimension": "ecs:service:DesiredCount"}),
    )
    .await
    .expect("deregistered");
    assert!(h.alarms.alarms.lock().expect("lock").is_empty());
    let policies = h
        .call(
            Operation::DescribeScalingPolicies,
            json!({"ServiceNamespace": "ecs"}),
        )
        .await
        .expect("described");
    assert_eq!(policies["ScalingPolicies"], json!([]));
    let again = h
        .call(
            Operation::DeregisterScalableTarget,
            json!({"ServiceNamespace": "ecs",
            "ResourceId": "service/c/web", "ScalableDimension": "ecs:service:DesiredCount"}),
        )
        .await
        .expect_err("gone");
    assert_eq!(again.code, "ObjectNotFoundException");
}

#[tokio::test]
async fn tags_live_on_the_scalable_target() {
    let h = harness();
    h.register(1, 4).await;
    let out = h
        .call(
            Operation::DescribeScalableTargets,
            json!({"ServiceNamespace": "ecs"}),
        )
        .await
        .expect("described");
    let arn = out["ScalableTargets"][0]["ScalableTargetARN"].clone();
    h.call(
        Operation::TagResource,
        json!({"ResourceARN": arn, "Tags": {"team": "web", "env": "dev"}}),
    )
    .await
    .expect("tagged");
    h.call(
        Operation::UntagResource,
        json!({"ResourceARN": arn, "TagKeys": ["env"]}),
    )
    .await
    .expect("untagged");
    let tags = h
        .call(Operation::ListTagsForResource, json!({"ResourceARN": arn}))
        .await
        .expect("listed");
    assert_eq!(tags, json!({"Tags": {"team": "web"}}));
    let missing = h
        .call(Operation::ListTagsForResource, json!({"ResourceARN": "arn:aws:application-autoscaling:us-east-1:000000000000:scalable-target/nope"}))
        .await
        .expect_err("missing");
    assert_eq!(missing.code, "ResourceNotFoundException");
}
