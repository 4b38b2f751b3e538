//! What this service keeps in the region's state store, the keys it keeps them under,
//! and the checks every operation shares (namespace, resource id, dimension, paging).
//!
//! - `appscaling/target/<resource id>` → [`TargetRecord`]
//! - `appscaling/policy/<resource id>/<policy name>` → [`PolicyRecord`]
//! - `appscaling/scheduled/<resource id>/<action name>` → [`ScheduledRecord`]
//! - `appscaling/activity/<resource id>/<epoch ms, 16 digits>-<id>` → [`ActivityRecord`]
//! - `appscaling/cooldown/<resource id>` → [`CooldownRecord`]
//!
//! A resource id is `service/<cluster>/<service>`, whose names hold no `/`, so a trailing
//! `/` after it never matches another service's keys.

use crate::error::AppScalingError;
use crate::math::{AdjustmentType, Step};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The only namespace served.
pub const NAMESPACE: &str = "ecs";
/// The only dimension served.
pub const DIMENSION: &str = "ecs:service:DesiredCount";
/// Activities are kept this long (AWS: six weeks).
pub const ACTIVITY_RETENTION_MS: i64 = 42 * 86_400 * 1000;

pub const TARGET_PREFIX: &str = "appscaling/target/";
pub const POLICY_PREFIX: &str = "appscaling/policy/";
pub const SCHEDULED_PREFIX: &str = "appscaling/scheduled/";
pub const ACTIVITY_PREFIX: &str = "appscaling/activity/";
pub const COOLDOWN_PREFIX: &str = "appscaling/cooldown/";

pub fn target_key(rid: &str) -> String {
    format!("{TARGET_PREFIX}{rid}")
}
pub fn policy_key(rid: &str, name: &str) -> String {
    format!("{POLICY_PREFIX}{rid}/{name}")
}
pub fn scheduled_key(rid: &str, name: &str) -> String {
    format!("{SCHEDULED_PREFIX}{rid}/{name}")
}
pub fn cooldown_key(rid: &str) -> String {
    format!("{COOLDOWN_PREFIX}{rid}")
}

/// Epoch ms as the JSON protocols' timestamp (epoch seconds).
#[allow(clippy::cast_precision_loss)]
pub fn time(ms: i64) -> Value {
    json!(ms as f64 / 1000.0)
}

/// `SuspendedState`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suspended {
    /// `DynamicScalingInSuspended`.
    pub dynamic_in: bool,
    /// `DynamicScalingOutSuspended`.
    pub dynamic_out: bool,
    /// `ScheduledScalingSuspended`.
    pub scheduled: bool,
}

/// A scalable target as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TargetRecord {
    pub resource_id: String,
    pub min: i64,
    pub max: i64,
    pub role_arn: String,
    pub arn: String,
    pub creation_ms: i64,
    pub suspended: Suspended,
    pub tags: BTreeMap<String, String>,
}

impl TargetRecord {
    pub fn to_json(&self) -> Value {
        json!({
            "ServiceNamespace": NAMESPACE,
            "ResourceId": self.resource_id,
            "ScalableDimension": DIMENSION,
            "MinCapacity": self.min,
            "MaxCapacity": self.max,
            "RoleARN": self.role_arn,
            "CreationTime": time(self.creation_ms),
            "SuspendedState": {
                "DynamicScalingInSuspended": self.suspended.dynamic_in,
                "DynamicScalingOutSuspended": self.suspended.dynamic_out,
                "ScheduledScalingSuspended": self.suspended.scheduled,
            },
            "ScalableTargetARN": self.arn,
        })
    }

    /// The (cluster, service) the resource id names.
    pub fn service(&self) -> (&str, &str) {
        split_service(&self.resource_id).unwrap_or(("", ""))
    }
}

/// A step scaling configuration as executed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepPolicy {
    pub adjustment_type: AdjustmentType,
    pub steps: Vec<Step>,
    pub min_adjustment_magnitude: Option<i64>,
    pub cooldown_secs: i64,
    pub aggregation: Option<String>,
}

/// A target tracking configuration as executed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrackingPolicy {
    pub target: f64,
    pub scale_out_cooldown_secs: i64,
    pub scale_in_cooldown_secs: i64,
    pub disable_scale_in: bool,
}

/// A scaling policy as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PolicyRecord {
    pub name: String,
    pub arn: String,
    pub resource_id: String,
    pub policy_type: String,
    /// The configuration as given (echoed by DescribeScalingPolicies, defaults filled).
    pub config: Value,
    pub step: Option<StepPolicy>,
    pub tracking: Option<TrackingPolicy>,
    /// (AlarmName, AlarmARN) of the alarms the policy owns (target tracking).
    pub alarms: Vec<(String, String)>,
    pub creation_ms: i64,
}

impl PolicyRecord {
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "PolicyARN": self.arn,
            "PolicyName": self.name,
            "ServiceNamespace": NAMESPACE,
            "ResourceId": self.resource_id,
            "ScalableDimension": DIMENSION,
            "PolicyType": self.policy_type,
            "Alarms": alarms_json(&self.alarms),
            "CreationTime": time(self.creation_ms),
        });
        let member = if self.policy_type == "StepScaling" {
            "StepScalingPolicyConfiguration"
        } else {
            "TargetTrackingScalingPolicyConfiguration"
        };
        v[member] = self.config.clone();
        v
    }
}

pub fn alarms_json(alarms: &[(String, String)]) -> Value {
    Value::Array(
        alarms
            .iter()
            .map(|(n, a)| json!({"AlarmName": n, "AlarmARN": a}))
            .collect(),
    )
}

/// A scheduled action as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScheduledRecord {
    pub name: String,
    pub arn: String,
    pub resource_id: String,
    pub schedule: String,
    pub timezone: Option<String>,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub creation_ms: i64,
    /// When it last fired (epoch ms), so a restart neither repeats nor skips it.
    pub last_fired_ms: Option<i64>,
}

impl ScheduledRecord {
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "ScheduledActionName": self.name,
            "ScheduledActionARN": self.arn,
            "ServiceNamespace": NAMESPACE,
            "Schedule": self.schedule,
            "ResourceId": self.resource_id,
            "ScalableDimension": DIMENSION,
            "CreationTime": time(self.creation_ms),
        });
        if let Some(tz) = &self.timezone {
            v["Timezone"] = json!(tz);
        }
        if let Some(t) = self.start_ms {
            v["StartTime"] = time(t);
        }
        if let Some(t) = self.end_ms {
            v["EndTime"] = time(t);
        }
        let mut action = serde_json::Map::new();
        if let Some(m) = self.min {
            action.insert("MinCapacity".into(), json!(m));
        }
        if let Some(m) = self.max {
            action.insert("MaxCapacity".into(), json!(m));
        }
        v["ScalableTargetAction"] = Value::Object(action);
        v
    }
}

/// A scaling activity as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ActivityRecord {
    pub id: String,
    pub resource_id: String,
    pub description: String,
    pub cause: String,
    pub start_ms: i64,
    pub end_ms: Option<i64>,
    pub status: String,
    pub status_message: Option<String>,
    /// `NotScaledReasons` (Code, CurrentCapacity, MinCapacity, MaxCapacity).
    pub not_scaled: Vec<(String, i64, i64, i64)>,
}

impl ActivityRecord {
    pub fn key(&self) -> String {
        format!(
            "{ACTIVITY_PREFIX}{}/{:016}-{}",
            self.resource_id, self.start_ms, self.id
        )
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "ActivityId": self.id,
            "ServiceNamespace": NAMESPACE,
            "ResourceId": self.resource_id,
            "ScalableDimension": DIMENSION,
            "Description": self.description,
            "Cause": self.cause,
            "StartTime": time(self.start_ms),
            "StatusCode": self.status,
        });
        if let Some(t) = self.end_ms {
            v["EndTime"] = time(t);
        }
        if let Some(m) = &self.status_message {
            v["StatusMessage"] = json!(m);
        }
        if !self.not_scaled.is_empty() {
            v["NotScaledReasons"] = self
                .not_scaled
                .iter()
                .map(|(code, cur, min, max)| {
                    json!({"Code": code, "CurrentCapacity": cur, "MinCapacity": min, "MaxCapacity": max})
                })
                .collect();
        }
        v
    }
}

/// When a target last scaled each way, for cooldowns.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CooldownRecord {
    /// Epoch ms of the last scale-out, and the capacity it started from.
    pub last_out: Option<(i64, i64)>,
    /// Epoch ms of the last scale-in.
    pub last_in_ms: Option<i64>,
}

/// (cluster, service) of `service/<cluster>/<service>`.
pub fn split_service(rid: &str) -> Option<(&str, &str)> {
    let rest = rid.strip_prefix("service/")?;
    let (cluster, service) = rest.split_once('/')?;
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.len() <= 255
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    (name_ok(cluster) && name_ok(service)).then_some((cluster, service))
}

/// Checks namespace, resource id and dimension as every operation naming a target does.
pub fn check_target_names(
    namespace: Option<&str>,
    rid: Option<&str>,
    dimension: Option<&str>,
) -> Result<String, AppScalingError> {
    check_namespace(namespace)?;
    let rid = required(rid, "resourceId")?;
    let dimension = required(dimension, "scalableDimension")?;
    check_dimension(dimension)?;
    if split_service(rid).is_none() {
        return Err(AppScalingError::Validation(format!(
            "Unsupported resource ID {rid}: an ECS service's resource ID is service/<cluster-name>/<service-name>."
        )));
    }
    Ok(rid.to_owned())
}

pub fn check_namespace(namespace: Option<&str>) -> Result<(), AppScalingError> {
    match required(namespace, "serviceNamespace")? {
        NAMESPACE => Ok(()),
        other => Err(AppScalingError::Validation(format!(
            "Unsupported service namespace, resource type or scalable dimension: this server scales ECS services only (namespace ecs), not {other}."
        ))),
    }
}

pub fn check_dimension(dimension: &str) -> Result<(), AppScalingError> {
    if dimension == DIMENSION {
        Ok(())
    } else {
        Err(AppScalingError::Validation(format!(
            "Unsupported service namespace, resource type or scalable dimension: {dimension} is not ecs:service:DesiredCount."
        )))
    }
}

/// A required member, or the ValidationException AWS answers for its absence.
pub fn required<'a>(v: Option<&'a str>, member: &str) -> Result<&'a str, AppScalingError> {
    match v {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(AppScalingError::Validation(format!(
            "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
        ))),
    }
}

/// The ObjectNotFoundException for an unregistered target.
pub fn no_target(rid: &str) -> AppScalingError {
    AppScalingError::ObjectNotFound(format!(
        "No scalable target registered for service namespace: {NAMESPACE}, resource ID: {rid}, scalable dimension: {DIMENSION}"
    ))
}

/// One page of `items` from `token` (an offset this service handed out).
pub fn page<T>(
    items: Vec<T>,
    token: Option<&str>,
    max: Option<i64>,
) -> Result<(Vec<T>, Option<String>), AppScalingError> {
    let max = match max {
        None => 50,
        Some(m) if (1..=50).contains(&m) => usize::try_from(m).unwrap_or(50),
        Some(m) => {
            return Err(AppScalingError::Validation(format!(
                "1 validation error detected: Value '{m}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 50"
            )))
        }
    };
    let start = match token {
        None => 0,
        Some(t) => t
            .strip_prefix("page-")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= items.len())
            .ok_or_else(|| AppScalingError::InvalidNextToken("Invalid token".into()))?,
    };
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(max).collect();
    let next = (start + page.len() < total).then(|| format!("page-{}", start + page.len()));
    Ok((page, next))
}

/// `{member: [...], "NextToken": ...}`.
/// What a Describe call over policies or scheduled actions filters by.
pub struct Listing<'a> {
    pub namespace: Option<&'a str>,
    pub dimension: Option<&'a str>,
    pub resource_id: Option<&'a str>,
    /// Only these names (all when empty).
    pub names: &'a [String],
    pub next_token: Option<&'a str>,
    pub max_results: Option<i64>,
}

/// A record kept per (resource id, name) and listed by Describe calls.
pub trait Listed: serde::de::DeserializeOwned {
    /// Its name within its resource.
    fn listed_name(&self) -> &str;
    /// Its Describe shape.
    fn listed_json(&self) -> Value;
}

impl Listed for PolicyRecord {
    fn listed_name(&self) -> &str {
        &self.name
    }
    fn listed_json(&self) -> Value {
        self.to_json()
    }
}

impl Listed for ScheduledRecord {
    fn listed_name(&self) -> &str {
        &self.name
    }
    fn listed_json(&self) -> Value {
        self.to_json()
    }
}

impl crate::AppScaling {
    /// The records of kind `R` kept under `prefix` that `q` selects, one page of them,
    /// as the Describe call's `member` list (DescribeScalingPolicies,
    /// DescribeScheduledActions).
    pub(crate) async fn describe_listed<R: Listed>(
        &self,
        (prefix, member): (&str, &str),
        q: Listing<'_>,
    ) -> Result<Value, AppScalingError> {
        check_namespace(q.namespace)?;
        if let Some(d) = q.dimension {
            check_dimension(d)?;
        }
        let prefix = match q.resource_id {
            Some(rid) => format!("{prefix}{rid}/"),
            None => prefix.to_owned(),
        };
        let all: Vec<Value> = self
            .objects
            .list::<R>(&prefix)
            .await?
            .into_iter()
            .filter(|(_, r, _)| q.names.is_empty() || q.names.iter().any(|n| n == r.listed_name()))
            .map(|(_, r, _)| r.listed_json())
            .collect();
        let (items, next) = page(all, q.next_token, q.max_results)?;
        Ok(paged(member, items, next))
    }
}

pub fn paged(member: &str, items: Vec<Value>, next: Option<String>) -> Value {
    let mut v = json!({ member: items });
    if let Some(n) = next {
        v["NextToken"] = json!(n);
    }
    v
}
