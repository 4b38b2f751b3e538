//! PutScheduledAction, DescribeScheduledActions and DeleteScheduledAction (the loop that
//! fires them is in [`crate::scaling`]).

use crate::error::AppScalingError;
use crate::records::{
    check_target_names, no_target, required, scheduled_key, Listing, ScheduledRecord, DIMENSION,
    NAMESPACE, SCHEDULED_PREFIX,
};
use crate::schedule::{parse_schedule, parse_timezone};
use crate::AppScaling;
use serde::Deserialize;
use serde_json::{json, Value};
use store::{Step, Txn};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutScheduledInput {
    service_namespace: Option<String>,
    schedule: Option<String>,
    timezone: Option<String>,
    scheduled_action_name: Option<String>,
    resource_id: Option<String>,
    scalable_dimension: Option<String>,
    start_time: Option<f64>,
    end_time: Option<f64>,
    scalable_target_action: Option<TargetActionIn>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TargetActionIn {
    min_capacity: Option<i64>,
    max_capacity: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeScheduledInput {
    scheduled_action_names: Option<Vec<String>>,
    service_namespace: Option<String>,
    resource_id: Option<String>,
    scalable_dimension: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteScheduledInput {
    service_namespace: Option<String>,
    scheduled_action_name: Option<String>,
    resource_id: Option<String>,
    scalable_dimension: Option<String>,
}

fn invalid(message: impl Into<String>) -> AppScalingError {
    AppScalingError::Validation(message.into())
}

#[allow(clippy::cast_possible_truncation)]
fn ms(secs: Option<f64>, member: &str) -> Result<Option<i64>, AppScalingError> {
    match secs {
        None => Ok(None),
        Some(s) if s.is_finite() && s >= 0.0 => Ok(Some((s * 1000.0).round() as i64)),
        Some(s) => Err(invalid(format!("{member} {s} is not a valid time."))),
    }
}

impl AppScaling {
    pub(crate) async fn put_scheduled(
        &self,
        input: PutScheduledInput,
    ) -> Result<Value, AppScalingError> {
        let name = required(
            input.scheduled_action_name.as_deref(),
            "scheduledActionName",
        )?
        .to_owned();
        if name.chars().count() > 256
            || name.starts_with(' ')
            || name.ends_with(' ')
            || name
                .chars()
                .any(|c| c.is_control() || matches!(c, ':' | '/' | '|'))
        {
            return Err(invalid(format!(
                "1 validation error detected: Value '{name}' at 'scheduledActionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (?!((^[ ]+.*)|(.*([\\u0000-\\u001f]|[\\u007f-\\u009f]|[:/|])+.*)|(.*[ ]+$))).+"
            )));
        }
        let rid = check_target_names(
            input.service_namespace.as_deref(),
            input.resource_id.as_deref(),
            input.scalable_dimension.as_deref(),
        )?;
        if let Some(s) = &input.schedule {
            parse_schedule(s).map_err(invalid)?;
        }
        if parse_timezone(input.timezone.as_deref()).is_none() {
            return Err(invalid(format!(
                "Timezone {} is not a valid IANA time zone name.",
                input.timezone.as_deref().unwrap_or_default()
            )));
        }
        let (start_ms, end_ms) = (
            ms(input.start_time, "StartTime")?,
            ms(input.end_time, "EndTime")?,
        );
        if let (Some(s), Some(e)) = (start_ms, end_ms) {
            if s >= e {
                return Err(invalid("StartTime must be earlier than EndTime."));
            }
        }
        let (min, max) = input
            .scalable_target_action
            .as_ref()
            .map_or((None, None), |a| (a.min_capacity, a.max_capacity));
        if min.is_some_and(|m| m < 0) || max.is_some_and(|m| m < 0) {
            return Err(invalid(
                "MinCapacity and MaxCapacity must be greater than or equal to 0.",
            ));
        }
        if let (Some(lo), Some(hi)) = (min, max) {
            if lo > hi {
                return Err(invalid(format!(
                    "Minimum capacity cannot be greater than maximum capacity ({lo} > {hi})."
                )));
            }
        }
        if self.target(&rid).await?.is_none() {
            return Err(no_target(&rid));
        }
        let key = scheduled_key(&rid, &name);
        let now = self.now_ms();
        self.objects
            .retry(&key, || async {
                let old = self.objects.get::<ScheduledRecord>(&key).await?;
                let rev = old.as_ref().map_or(0, |(_, r)| *r);
                let schedule = match (&input.schedule, &old) {
                    (Some(s), _) => s.clone(),
                    (None, Some((o, _))) => o.schedule.clone(),
                    (None, None) => {
                        return Err(invalid("Schedule is required when creating a scheduled action."))
                    }
                };
                let record = ScheduledRecord {
                    arn: old.as_ref().map_or_else(
                        || {
                            format!(
                                "arn:aws:autoscaling:{}:{}:scheduledAction:{}:resource/{NAMESPACE}/{rid}:scheduledActionName/{name}",
                                self.scope.region,
                                self.scope.account_id,
                                uuid::Uuid::new_v4()
                            )
                        },
                        |(o, _)| o.arn.clone(),
                    ),
                    name: name.clone(),
                    resource_id: rid.clone(),
                    schedule,
                    timezone: input.timezone.clone(),
                    start_ms,
                    end_ms,
                    min,
                    max,
                    creation_ms: old.as_ref().map_or(now, |(o, _)| o.creation_ms),
                    // A changed schedule counts from now: what fired before stays fired.
                    last_fired_ms: old.as_ref().and_then(|(o, _)| o.last_fired_ms).or(Some(now)),
                };
                let txn = Txn::new().when(&key, rev).put(&key, store::objects::encode(&record)?);
                Ok(Step::Commit(txn, ()))
            })
            .await?;
        Ok(json!({}))
    }

    pub(crate) async fn describe_scheduled(
        &self,
        input: DescribeScheduledInput,
    ) -> Result<Value, AppScalingError> {
        let names = input.scheduled_action_names.unwrap_or_default();
        let listing = Listing {
            namespace: input.service_namespace.as_deref(),
            dimension: input.scalable_dimension.as_deref(),
            resource_id: input.resource_id.as_deref(),
            names: &names,
            next_token: input.next_token.as_deref(),
            max_results: input.max_results,
        };
        self.describe_listed::<ScheduledRecord>((SCHEDULED_PREFIX, "ScheduledActions"), listing)
            .await
    }

    pub(crate) async fn delete_scheduled(
        &self,
        input: DeleteScheduledInput,
    ) -> Result<Value, AppScalingError> {
        let name = required(
            input.scheduled_action_name.as_deref(),
            "scheduledActionName",
        )?;
        let rid = check_target_names(
            input.service_namespace.as_deref(),
            input.resource_id.as_deref(),
            input.scalable_dimension.as_deref(),
        )?;
        let key = scheduled_key(&rid, name);
        self.objects
            .retry(&key, || async {
                let Some((_, rev)) = self.objects.get::<ScheduledRecord>(&key).await? else {
                    return Err(AppScalingError::ObjectNotFound(format!(
                        "No scheduled action found for service namespace: {NAMESPACE}, resource ID: {rid}, scalable dimension: {DIMENSION}, scheduled action name: {name}"
                    )));
                };
                Ok(Step::Commit(Txn::new().when(&key, rev).delete(&key), ()))
            })
            .await?;
        Ok(json!({}))
    }
}
