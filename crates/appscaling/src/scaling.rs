//! Scaling itself: executing a policy when one of its alarms fires, firing scheduled
//! actions, holding the capacity within min and max, and the scaling activities that
//! record each of these (DescribeScalingActivities). [`AppScaling::run`] is the loop.
//!
//! A policy's decision is [`crate::math`]'s; here are the rules around it, as AWS
//! documents them:
//! - target tracking: `ceil(running × metric ÷ target)`; AlarmHigh only scales out,
//!   AlarmLow only scales in (never when scale-in is disabled);
//! - step scaling: the step the breach selects, applied to the desired count; during a
//!   scale-out cooldown to the capacity the cooldown started from, so alarms repeated
//!   every period do not stack adjustments;
//! - no scale-in within a scale-in cooldown or a scale-out cooldown, nor while the
//!   service has a deployment in progress; scale-out is never held by a scale-in;
//! - the result is clamped to `[MinCapacity, MaxCapacity]`; suspended directions do
//!   nothing.

use crate::error::AppScalingError;
use crate::math::{aggregate, clamp, compute_adjusted, compute_tracking, select_step};
use crate::records::{
    cooldown_key, page, paged, ActivityRecord, CooldownRecord, PolicyRecord, ScheduledRecord,
    TargetRecord, ACTIVITY_PREFIX, ACTIVITY_RETENTION_MS, SCHEDULED_PREFIX,
};
use crate::schedule::{parse_schedule, parse_timezone};
use crate::{AppScaling, ServiceCounts};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use store::{Step, Txn};
use tokio::sync::mpsc;

/// One alarm action naming a scaling policy, as the alarm evaluator hands it over.
#[derive(Clone, Debug, PartialEq)]
pub struct AlarmTrigger {
    /// The alarm's name.
    pub alarm_name: String,
    /// The action ARN (the policy's, maybe with `:createdBy/<uuid>`).
    pub action: String,
    /// The alarm's state now (`ALARM`, `OK`, `INSUFFICIENT_DATA`).
    pub state: String,
    /// The alarm's threshold.
    pub threshold: f64,
    /// The alarm's comparison operator.
    pub comparison: String,
    /// The alarm's `StateReasonData` (its `recentDatapoints` are the breach).
    pub reason_data: Option<String>,
}

/// Where alarm triggers are sent; never blocks.
#[derive(Clone, Debug)]
pub struct TriggerSender(mpsc::UnboundedSender<AlarmTrigger>);

/// Where [`AppScaling::run`] receives alarm triggers.
#[derive(Debug)]
pub struct TriggerReceiver(mpsc::UnboundedReceiver<AlarmTrigger>);

/// A connected sender and receiver of alarm triggers.
pub fn trigger_channel() -> (TriggerSender, TriggerReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    (TriggerSender(tx), TriggerReceiver(rx))
}

impl TriggerSender {
    /// Queues `trigger`; an error when the scaling loop has stopped.
    pub fn send(&self, trigger: AlarmTrigger) -> Result<(), String> {
        self.0
            .send(trigger)
            .map_err(|_| "Application Auto Scaling is not running.".to_owned())
    }
}

/// How often scheduled actions are looked at.
const SCHEDULE_EVERY_MS: i64 = 1000;
/// How often old activities are swept.
const SWEEP_EVERY_MS: i64 = 3_600_000;

/// `DescribeScalingActivitiesRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeActivitiesInput {
    service_namespace: Option<String>,
    resource_id: Option<String>,
    scalable_dimension: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
    include_not_scaled_activities: Option<bool>,
}

/// Which way a decision moves the capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Out,
    In,
}

/// The datapoints and threshold an alarm's `StateReasonData` carries.
fn breach(trigger: &AlarmTrigger) -> (Vec<f64>, f64) {
    let data: Option<Value> = trigger
        .reason_data
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok());
    let points = data
        .as_ref()
        .and_then(|d| d.get("recentDatapoints"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    let threshold = data
        .as_ref()
        .and_then(|d| d.get("threshold"))
        .and_then(Value::as_f64)
        .unwrap_or(trigger.threshold);
    (points, threshold)
}

impl AppScaling {
    /// Executes alarm triggers as they arrive and scheduled actions when due, until
    /// `shutdown` fires (loop `app_scaling`). Only the first call runs; others return.
    pub async fn run(&self, shutdown: telemetry::CancellationToken) {
        let rx = Arc::clone(&self.triggers);
        let last_schedule = std::sync::atomic::AtomicI64::new(0);
        let last_sweep = std::sync::atomic::AtomicI64::new(0);
        let wait = || tokio::time::sleep(std::time::Duration::from_millis(250));
        let round = || async {
            use std::sync::atomic::Ordering::Relaxed;
            let mut pending = Vec::new();
            {
                let mut rx = rx.lock().await;
                while let Ok(t) = rx.0.try_recv() {
                    pending.push(t);
                }
            }
            for trigger in pending {
                if let Err(error) = self.execute_trigger(&trigger).await {
                    tracing::warn!(%error, alarm = %trigger.alarm_name, "Scaling policy execution failed.");
                }
            }
            let now = self.now_ms();
            if now - last_schedule.load(Relaxed) >= SCHEDULE_EVERY_MS {
                last_schedule.store(now, Relaxed);
                if let Err(error) = self.fire_scheduled(now).await {
                    tracing::warn!(%error, "Scheduled scaling round failed; retrying next round.");
                }
            }
            if now - last_sweep.load(Relaxed) >= SWEEP_EVERY_MS {
                last_sweep.store(now, Relaxed);
                if let Err(error) = self.sweep_activities(now).await {
                    tracing::warn!(%error, "Scaling activity sweep failed; retrying later.");
                }
            }
        };
        telemetry::supervise(telemetry::LoopName::AppScaling, shutdown, wait, round).await;
    }

    /// Executes the policy `trigger` names.
    pub async fn execute_trigger(&self, trigger: &AlarmTrigger) -> Result<(), AppScalingError> {
        if trigger.state != "ALARM" {
            return Ok(());
        }
        let Some(policy) = self.policy_by_action(&trigger.action).await? else {
            tracing::warn!(action = %trigger.action, alarm = %trigger.alarm_name, "An alarm action names no scaling policy.");
            return Ok(());
        };
        let Some(target) = self.target(&policy.resource_id).await? else {
            return Ok(());
        };
        let (cluster, service) = target.service();
        let Some(counts) = self
            .ecs
            .counts(cluster, service)
            .await
            .map_err(AppScalingError::FailedResourceAccess)?
        else {
            tracing::warn!(resource = %target.resource_id, "A scaling policy's service no longer exists.");
            return Ok(());
        };
        let cooldown = self
            .objects
            .get::<CooldownRecord>(&cooldown_key(&target.resource_id))
            .await?
            .map(|(c, _)| c)
            .unwrap_or_default();
        let now = self.now_ms();
        let Some((direction, wanted, base)) = self.decide(&policy, trigger, counts, &cooldown, now)
        else {
            return Ok(());
        };
        if (direction == Direction::Out && target.suspended.dynamic_out)
            || (direction == Direction::In && target.suspended.dynamic_in)
        {
            return Ok(());
        }
        if direction == Direction::In && counts.deploying {
            tracing::info!(resource = %target.resource_id, "Scale-in waits for the service's deployment to finish.");
            return Ok(());
        }
        let new = clamp(wanted, target.min, target.max);
        if new == counts.desired {
            return Ok(());
        }
        let cause = format!(
            "monitor alarm {} in state ALARM triggered policy {}",
            trigger.alarm_name, policy.name
        );
        self.apply_capacity(&target, counts.desired, new, cause)
            .await?;
        self.note_cooldown(&target.resource_id, direction, base, now)
            .await
    }

    /// A policy's decision: direction, wanted capacity, and the capacity a scale-out
    /// cooldown starts from; `None` when the policy does not act now.
    fn decide(
        &self,
        policy: &PolicyRecord,
        trigger: &AlarmTrigger,
        counts: ServiceCounts,
        cooldown: &CooldownRecord,
        now: i64,
    ) -> Option<(Direction, i64, i64)> {
        let (points, threshold) = breach(trigger);
        let within =
            |since: Option<i64>, secs: i64| since.is_some_and(|t| now - t < self.scaled_ms(secs));
        let last_out_ms = cooldown.last_out.map(|(t, _)| t);
        if let Some(t) = &policy.tracking {
            // The alarm lists its datapoints newest first, as AWS does: track the newest.
            let metric = points.first().copied().unwrap_or(threshold);
            let wanted = compute_tracking(counts.running, metric, t.target)?;
            let out = trigger.comparison.starts_with("Greater");
            if out {
                return (wanted > counts.desired).then_some((
                    Direction::Out,
                    wanted,
                    counts.desired,
                ));
            }
            let blocked = t.disable_scale_in
                || within(cooldown.last_in_ms, t.scale_in_cooldown_secs)
                || within(last_out_ms, t.scale_out_cooldown_secs);
            return (!blocked && wanted < counts.desired).then_some((
                Direction::In,
                wanted,
                counts.desired,
            ));
        }
        let s = policy.step.as_ref()?;
        let value = aggregate(&points, s.aggregation.as_deref()).unwrap_or(threshold);
        let step = select_step(&s.steps, value - threshold)?;
        // Within a scale-out cooldown, the adjustment counts from where it started.
        let out_base = match cooldown.last_out {
            Some((t, base)) if now - t < self.scaled_ms(s.cooldown_secs) => base,
            _ => counts.desired,
        };
        let wanted = compute_adjusted(
            out_base,
            s.adjustment_type,
            step.adjustment,
            s.min_adjustment_magnitude,
        );
        if wanted > counts.desired {
            return Some((Direction::Out, wanted, out_base));
        }
        let wanted = compute_adjusted(
            counts.desired,
            s.adjustment_type,
            step.adjustment,
            s.min_adjustment_magnitude,
        );
        let blocked =
            within(cooldown.last_in_ms, s.cooldown_secs) || within(last_out_ms, s.cooldown_secs);
        (!blocked && wanted < counts.desired).then_some((Direction::In, wanted, counts.desired))
    }

    async fn note_cooldown(
        &self,
        rid: &str,
        direction: Direction,
        base: i64,
        now: i64,
    ) -> Result<(), AppScalingError> {
        let key = cooldown_key(rid);
        self.objects
            .retry(&key, || async {
                let (mut c, rev) = self
                    .objects
                    .get::<CooldownRecord>(&key)
                    .await?
                    .unwrap_or_default();
                match direction {
                    Direction::Out => c.last_out = Some((now, base)),
                    // A scale-out ends a scale-in cooldown; a scale-in ends nothing.
                    Direction::In => c.last_in_ms = Some(now),
                }
                if direction == Direction::Out {
                    c.last_in_ms = None;
                }
                let txn = Txn::new()
                    .when(&key, rev)
                    .put(&key, store::objects::encode(&c)?);
                Ok(Step::Commit(txn, ()))
            })
            .await
    }

    /// Sets the desired count of `target`'s service to `new` (from `old`) and records the
    /// activity, successful or not.
    async fn apply_capacity(
        &self,
        target: &TargetRecord,
        old: i64,
        new: i64,
        cause: String,
    ) -> Result<(), AppScalingError> {
        let (cluster, service) = target.service();
        let start = self.now_ms();
        let result = self.ecs.set_desired_count(cluster, service, new).await;
        let (status, message) = match &result {
            Ok(()) => (
                "Successful",
                format!("Successfully set desired count to {new}. Change successfully fulfilled by ecs."),
            ),
            Err(e) => ("Failed", format!("Failed to set desired count to {new}. Reason: {e}")),
        };
        tracing::info!(resource = %target.resource_id, from = old, to = new, status, %cause, "Scaling activity.");
        self.record_activity(ActivityRecord {
            id: uuid::Uuid::new_v4().to_string(),
            resource_id: target.resource_id.clone(),
            description: format!("Setting desired count to {new}."),
            cause,
            start_ms: start,
            end_ms: Some(self.now_ms()),
            status: status.into(),
            status_message: Some(message),
            not_scaled: Vec::new(),
        })
        .await
    }

    async fn record_activity(&self, a: ActivityRecord) -> Result<(), AppScalingError> {
        self.objects
            .commit(Txn::new().put(a.key(), store::objects::encode(&a)?))
            .await
            .map(|_| ())
    }

    /// Brings `target`'s desired count within its bounds (after they changed).
    pub(crate) async fn enforce_bounds(&self, target: &TargetRecord) {
        let (cluster, service) = target.service();
        let counts = match self.ecs.counts(cluster, service).await {
            Ok(Some(c)) => c,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%error, resource = %target.resource_id, "Could not read a service to hold its capacity bounds.");
                return;
            }
        };
        let cause = if counts.desired < target.min {
            format!("minimum capacity was set to {}", target.min)
        } else if counts.desired > target.max {
            format!("maximum capacity was set to {}", target.max)
        } else {
            return;
        };
        let new = clamp(counts.desired, target.min, target.max);
        if let Err(error) = self
            .apply_capacity(target, counts.desired, new, cause)
            .await
        {
            tracing::warn!(%error, resource = %target.resource_id, "Could not record a scaling activity.");
        }
    }

    /// Fires every scheduled action due at `now`.
    pub(crate) async fn fire_scheduled(&self, now: i64) -> Result<(), AppScalingError> {
        for (key, action, _) in self
            .objects
            .list::<ScheduledRecord>(SCHEDULED_PREFIX)
            .await?
        {
            let Some(due) = self.due(&action, now) else {
                continue;
            };
            // Mark it fired first (compare-and-swap): two servers or a retried round
            // fire it once.
            let fired = self
                .objects
                .retry(&key, || async {
                    let Some((mut a, rev)) = self.objects.get::<ScheduledRecord>(&key).await?
                    else {
                        return Ok(Step::Done(false));
                    };
                    if a.last_fired_ms.is_some_and(|l| l >= due) {
                        return Ok(Step::Done(false));
                    }
                    a.last_fired_ms = Some(now);
                    let txn = Txn::new()
                        .when(&key, rev)
                        .put(&key, store::objects::encode(&a)?);
                    Ok(Step::Commit(txn, true))
                })
                .await?;
            if fired {
                self.apply_scheduled(&action).await?;
            }
        }
        Ok(())
    }

    /// When `action` is due at `now` (the fire time), if it is.
    fn due(&self, action: &ScheduledRecord, now: i64) -> Option<i64> {
        let schedule = parse_schedule(&action.schedule).ok()?;
        let tz = parse_timezone(action.timezone.as_deref())?;
        let after = action.last_fired_ms.unwrap_or(action.creation_ms);
        let start = action.start_ms.unwrap_or(action.creation_ms);
        let next = schedule.next_after(after, start, &tz, self.time_scale)?;
        let in_window =
            action.start_ms.is_none_or(|s| next >= s) && action.end_ms.is_none_or(|e| next <= e);
        (next <= now && in_window).then_some(next)
    }

    async fn apply_scheduled(&self, action: &ScheduledRecord) -> Result<(), AppScalingError> {
        let key = crate::records::target_key(&action.resource_id);
        let target = self
            .objects
            .retry(&key, || async {
                let Some((mut t, rev)) = self.objects.get::<TargetRecord>(&key).await? else {
                    return Ok(Step::Done(None));
                };
                if t.suspended.scheduled {
                    return Ok(Step::Done(None));
                }
                if let Some(m) = action.min {
                    t.min = m;
                }
                if let Some(m) = action.max {
                    t.max = m;
                }
                // A one-sided change that crosses the other bound moves it too.
                if action.min.is_some() && t.min > t.max {
                    t.max = t.min;
                } else if t.min > t.max {
                    t.min = t.max;
                }
                let txn = Txn::new()
                    .when(&key, rev)
                    .put(&key, store::objects::encode(&t)?);
                Ok(Step::Commit(txn, Some(t)))
            })
            .await?;
        let Some(target) = target else {
            return Ok(());
        };
        let description = match (action.min, action.max) {
            (Some(lo), Some(hi)) => {
                format!("Setting min capacity to {lo} and max capacity to {hi}")
            }
            (Some(lo), None) => format!("Setting min capacity to {lo}"),
            (None, Some(hi)) => format!("Setting max capacity to {hi}"),
            (None, None) => "Setting no capacity bounds".to_owned(),
        };
        let now = self.now_ms();
        self.record_activity(ActivityRecord {
            id: uuid::Uuid::new_v4().to_string(),
            resource_id: target.resource_id.clone(),
            description,
            cause: format!("scheduled action name {} was triggered", action.name),
            start_ms: now,
            end_ms: Some(now),
            status: "Successful".into(),
            status_message: None,
            not_scaled: Vec::new(),
        })
        .await?;
        self.enforce_bounds(&target).await;
        Ok(())
    }

    async fn sweep_activities(&self, now: i64) -> Result<(), AppScalingError> {
        let cutoff = now - ACTIVITY_RETENTION_MS;
        let old: Vec<String> = self
            .objects
            .list::<ActivityRecord>(ACTIVITY_PREFIX)
            .await?
            .into_iter()
            .filter(|(_, a, _)| a.start_ms < cutoff)
            .map(|(k, _, _)| k)
            .collect();
        for chunk in old.chunks(128) {
            let txn = chunk.iter().fold(Txn::new(), |t, k| t.delete(k.clone()));
            self.objects.commit(txn).await?;
        }
        Ok(())
    }

    pub(crate) async fn describe_activities(
        &self,
        input: DescribeActivitiesInput,
    ) -> Result<Value, AppScalingError> {
        crate::records::check_namespace(input.service_namespace.as_deref())?;
        if let Some(d) = &input.scalable_dimension {
            crate::records::check_dimension(d)?;
        }
        let _ = input.include_not_scaled_activities;
        let prefix = match &input.resource_id {
            Some(rid) => format!("{ACTIVITY_PREFIX}{rid}/"),
            None => ACTIVITY_PREFIX.to_owned(),
        };
        let mut all: Vec<ActivityRecord> = self
            .objects
            .list::<ActivityRecord>(&prefix)
            .await?
            .into_iter()
            .map(|(_, a, _)| a)
            .collect();
        // Newest first, as AWS lists them.
        all.sort_by(|a, b| b.start_ms.cmp(&a.start_ms).then_with(|| b.id.cmp(&a.id)));
        let all: Vec<Value> = all.iter().map(ActivityRecord::to_json).collect();
        let (items, next) = page(all, input.next_token.as_deref(), input.max_results)?;
        Ok(paged("ScalingActivities", items, next))
    }
}
