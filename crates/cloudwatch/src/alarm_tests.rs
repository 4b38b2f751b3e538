//! Unit tests of the alarm operations and the evaluation round over a real state store
//! and metric store, with a clock the test moves.
#![allow(clippy::unwrap_used)]

use crate::alarms::{AlarmActions, StoredAlarm};
use crate::evaluate::State;
use crate::{CloudWatch, MetricStore, Operation};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

const T0: i64 = 1_800_000_000;

/// Records every action call (the port's consumer arrives later).
#[derive(Default)]
struct Recorded(Mutex<Vec<Call>>);

/// One action call: alarm, action, state and the reason data it carried.
type Call = (String, String, State, Option<String>);

impl AlarmActions for Recorded {
    fn invoke(&self, alarm: &StoredAlarm, action: &str, state: State) -> Result<(), String> {
        self.0.lock().unwrap().push((
            alarm.name.clone(),
            action.to_owned(),
            state,
            alarm.state_reason_data.clone(),
        ));
        Ok(())
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    cw: CloudWatch,
    now: Arc<AtomicI64>,
    calls: Arc<Recorded>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let state =
        store::SqliteStore::open(store::SqliteConfig::new(dir.path().join("state.db"))).unwrap();
    let metrics = MetricStore::open(dir.path().join("metrics.db")).unwrap();
    let scope = model::ecs::arn::ArnScope {
        region: "us-east-1".into(),
        account_id: "000000000000".into(),
    };
    let now = Arc::new(AtomicI64::new(T0));
    let clock_now = now.clone();
    let calls = Arc::new(Recorded::default());
    #[allow(clippy::cast_precision_loss)]
    let cw = CloudWatch::new(Arc::new(metrics), scope)
        .with_clock(Arc::new(move || clock_now.load(Ordering::SeqCst) as f64))
        .with_alarms(Arc::new(state))
        .with_actions(calls.clone());
    Fixture {
        _dir: dir,
        cw,
        now,
        calls,
    }
}

async fn call(cw: &CloudWatch, op: Operation, body: Value) -> Result<Value, wire::ServiceError> {
    cw.execute(op, body)
        .await
        .map(|o| o.map_or(json!({}), |o| o.to_json()))
}

fn error_code(e: wire::ServiceError) -> String {
    match e {
        wire::ServiceError::Aws(a) => a.code,
        other => format!("{other:?}"),
    }
}

async fn put_point(cw: &CloudWatch, t: i64, v: f64) {
    let mut sketch = crate::Sketch::default();
    sketch.add(v, 1.0);
    cw.put(vec![crate::Sample {
        key: crate::SeriesKey::new("App", "Load", vec![]),
        unit: "None".into(),
        timestamp: t,
        set: crate::StatisticSet::of(v, 1.0),
        sketch,
        high_resolution: false,
    }])
    .await
    .unwrap();
}

async fn round(f: &Fixture, done: &Mutex<HashMap<String, i64>>) {
    let alarms = f.cw.alarms.clone().unwrap();
    let swept = AtomicI64::new(0);
    f.cw.alarm_round(&alarms, done, &swept).await.unwrap();
}

async fn state_of(cw: &CloudWatch, name: &str) -> Value {
    let out = call(cw, Operation::DescribeAlarms, json!({"AlarmNames": [name]}))
        .await
        .unwrap();
    out["MetricAlarms"][0].clone()
}

fn alarm(name: &str) -> Value {
    json!({
        "AlarmName": name, "Namespace": "App", "MetricName": "Load", "Statistic": "Average",
        "Period": 60, "EvaluationPeriods": 2, "Threshold": 50.0,
        "ComparisonOperator": "GreaterThanThreshold",
        "AlarmActions": ["arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:x:resource/ecs/service/c/s:policyName/p"],
        "OKActions": ["arn:aws:sns:us-east-1:000000000000:ops"],
    })
}

#[tokio::test]
async fn alarm_transitions_repeat_scaling_actions_and_record_history() {
    let f = fixture();
    call(&f.cw, Operation::PutMetricAlarm, alarm("a"))
        .await
        .unwrap();
    let a = state_of(&f.cw, "a").await;
    assert_eq!(a["StateValue"], "INSUFFICIENT_DATA");
    assert_eq!(a["StateReason"], "Unchecked: Initial alarm creation");
    let done = Mutex::new(HashMap::new());
    // Two breaching minutes, then the round after the second closes.
    put_point(&f.cw, T0 - 120, 80.0).await;
    put_point(&f.cw, T0 - 60, 90.0).await;
    round(&f, &done).await;
    let a = state_of(&f.cw, "a").await;
    assert_eq!(a["StateValue"], "ALARM", "{a}");
    assert_eq!(f.calls.0.lock().unwrap().len(), 1);
    // Same period: not evaluated again.
    f.now.store(T0 + 30, Ordering::SeqCst);
    round(&f, &done).await;
    assert_eq!(f.calls.0.lock().unwrap().len(), 1);
    // Next period, still breaching: the scaling policy is invoked again.
    put_point(&f.cw, T0, 95.0).await;
    f.now.store(T0 + 60, Ordering::SeqCst);
    round(&f, &done).await;
    assert_eq!(f.calls.0.lock().unwrap().len(), 2);
    // With this period's datapoints, not those of the transition.
    let data = f.calls.0.lock().unwrap()[1].3.clone().unwrap_or_default();
    let data: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(data["recentDatapoints"][0], 95.0, "{data}");
    // Recovery: OK; SNS is recorded as a failed action, the policy not called.
    put_point(&f.cw, T0 + 60, 10.0).await;
    put_point(&f.cw, T0 + 120, 10.0).await;
    f.now.store(T0 + 180, Ordering::SeqCst);
    round(&f, &done).await;
    assert_eq!(state_of(&f.cw, "a").await["StateValue"], "OK");
    assert_eq!(f.calls.0.lock().unwrap().len(), 2);
    let h = call(
        &f.cw,
        Operation::DescribeAlarmHistory,
        json!({"AlarmName": "a", "ScanBy": "TimestampAscending"}),
    )
    .await
    .unwrap();
    let summaries: Vec<&str> = h["AlarmHistoryItems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["HistorySummary"].as_str().unwrap())
        .collect();
    assert_eq!(summaries[0], "Alarm \"a\" created");
    assert!(summaries.contains(&"Alarm updated from INSUFFICIENT_DATA to ALARM"));
    assert!(summaries.contains(&"Alarm updated from ALARM to OK"));
    assert!(summaries
        .iter()
        .any(|s| s.starts_with("Failed to execute action arn:aws:sns:")));
}

#[tokio::test]
async fn update_keeps_state_and_history_expires_after_two_weeks() {
    let f = fixture();
    call(&f.cw, Operation::PutMetricAlarm, alarm("b"))
        .await
        .unwrap();
    call(
        &f.cw,
        Operation::SetAlarmState,
        json!({"AlarmName": "b", "StateValue": "ALARM", "StateReason": "manual"}),
    )
    .await
    .unwrap();
    let mut updated = alarm("b");
    updated["Threshold"] = json!(70.0);
    call(&f.cw, Operation::PutMetricAlarm, updated)
        .await
        .unwrap();
    let a = state_of(&f.cw, "b").await;
    assert_eq!(a["StateValue"], "ALARM");
    assert_eq!(a["Threshold"], 70.0);
    let alarms = f.cw.alarms.clone().unwrap();
    assert_eq!(alarms.sweep_history(T0 + 86_400).await.unwrap(), 0);
    assert!(alarms.sweep_history(T0 + 15 * 86_400).await.unwrap() >= 3);
    let h = call(&f.cw, Operation::DescribeAlarmHistory, json!({}))
        .await
        .unwrap();
    assert_eq!(h["AlarmHistoryItems"], json!([]));
}

#[tokio::test]
async fn describe_alarms_pages_and_filters() {
    let f = fixture();
    for i in 0..5 {
        call(&f.cw, Operation::PutMetricAlarm, alarm(&format!("p{i}")))
            .await
            .unwrap();
    }
    let page = call(&f.cw, Operation::DescribeAlarms, json!({"MaxRecords": 2}))
        .await
        .unwrap();
    assert_eq!(page["MetricAlarms"].as_array().unwrap().len(), 2);
    let token = page["NextToken"].as_str().unwrap().to_owned();
    let next = call(
        &f.cw,
        Operation::DescribeAlarms,
        json!({"MaxRecords": 2, "NextToken": token}),
    )
    .await
    .unwrap();
    assert_eq!(next["MetricAlarms"][0]["AlarmName"], "p2");
    let none = call(
        &f.cw,
        Operation::DescribeAlarms,
        json!({"AlarmTypes": ["CompositeAlarm"]}),
    )
    .await
    .unwrap();
    assert_eq!(none["MetricAlarms"], json!([]));
    let by_state = call(
        &f.cw,
        Operation::DescribeAlarms,
        json!({"StateValue": "OK"}),
    )
    .await
    .unwrap();
    assert_eq!(by_state["MetricAlarms"], json!([]));
    let e = call(
        &f.cw,
        Operation::DescribeAlarms,
        json!({"NextToken": "zzz"}),
    )
    .await
    .unwrap_err();
    assert_eq!(error_code(e), "InvalidNextToken");
}

#[tokio::test]
async fn put_metric_alarm_refuses_what_aws_refuses() {
    let f = fixture();
    let cases = [
        (json!({"Period": 45}), "InvalidParameterValueException"),
        (json!({"Period": 0}), "InvalidParameterValueException"),
        (
            json!({"Period": 3600, "EvaluationPeriods": 169}),
            "InvalidParameterValueException",
        ),
        (
            json!({"Period": 60, "EvaluationPeriods": 1441}),
            "InvalidParameterValueException",
        ),
        (json!({"DatapointsToAlarm": 3}), "ValidationException"),
        (
            json!({"ComparisonOperator": "LessThanLowerThreshold"}),
            "InvalidParameterCombinationException",
        ),
        (
            json!({"ExtendedStatistic": "p99"}),
            "InvalidParameterCombinationException",
        ),
        (
            json!({"Metrics": [{"Id": "m1"}]}),
            "InvalidParameterCombinationException",
        ),
        (
            json!({"TreatMissingData": "x"}),
            "InvalidParameterValueException",
        ),
        (
            json!({"Threshold": null}),
            "MissingRequiredParameterException",
        ),
    ];
    for (over, code) in cases {
        let mut body = alarm("bad");
        for (k, v) in over.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        let e = call(&f.cw, Operation::PutMetricAlarm, body.clone())
            .await
            .unwrap_err();
        assert_eq!(error_code(e), code, "{body}");
    }
    // A one-week window at hourly periods is the limit, and accepted.
    let mut ok = alarm("week");
    ok["Period"] = json!(3600);
    ok["EvaluationPeriods"] = json!(168);
    call(&f.cw, Operation::PutMetricAlarm, ok).await.unwrap();
}

#[tokio::test]
async fn every_alarm_operation_is_served_with_a_state_store() {
    let f = fixture();
    let caller = wire::Caller::root("000000000000");
    let answered = wire::conformance::every_operation_answers(
        &f.cw,
        wire::Input::Json(b"{}"),
        &caller,
        &[
            "MissingRequiredParameterException",
            "InvalidParameterValueException",
        ],
    )
    .await;
    assert_eq!(answered.served, 12);
}
