//! RegisterScalableTarget, DescribeScalableTargets, DeregisterScalableTarget and the tag
//! operations (tags belong to scalable targets).

use crate::error::AppScalingError;
use crate::records::{
    check_namespace, check_target_names, cooldown_key, no_target, page, paged, policy_key,
    required, scheduled_key, target_key, Suspended, TargetRecord, POLICY_PREFIX, SCHEDULED_PREFIX,
    TARGET_PREFIX,
};
use crate::AppScaling;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use store::{Step, Txn};

/// AWS's limit of tags on one resource.
const MAX_TAGS: usize = 50;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterInput {
    service_namespace: Option<String>,
    resource_id: Option<String>,
    scalable_dimension: Option<String>,
    min_capacity: Option<i64>,
    max_capacity: Option<i64>,
    #[serde(rename = "RoleARN")]
    role_arn: Option<String>,
    suspended_state: Option<SuspendedIn>,
    tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SuspendedIn {
    dynamic_scaling_in_suspended: Option<bool>,
    dynamic_scaling_out_suspended: Option<bool>,
    scheduled_scaling_suspended: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeInput {
    service_namespace: Option<String>,
    resource_ids: Option<Vec<String>>,
    scalable_dimension: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// The input of the operations that name one target.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetInput {
    service_namespace: Option<String>,
    resource_id: Option<String>,
    scalable_dimension: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct TagInput {
    #[serde(rename = "ResourceARN")]
    resource_arn: Option<String>,
    #[serde(rename = "Tags")]
    tags: Option<BTreeMap<String, String>>,
    #[serde(rename = "TagKeys")]
    tag_keys: Option<Vec<String>>,
}

fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), AppScalingError> {
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 || k.starts_with("aws:") {
            return Err(AppScalingError::Validation(format!(
                "Tag key {k} is not valid: keys are 1 to 128 characters and may not start with aws:."
            )));
        }
        if v.chars().count() > 256 {
            return Err(AppScalingError::Validation(format!(
                "The value of tag {k} is longer than 256 characters."
            )));
        }
    }
    Ok(())
}

impl AppScaling {
    pub(crate) async fn register_target(
        &self,
        input: RegisterInput,
    ) -> Result<Value, AppScalingError> {
        let rid = check_target_names(
            input.service_namespace.as_deref(),
            input.resource_id.as_deref(),
            input.scalable_dimension.as_deref(),
        )?;
        for (v, member) in [
            (input.min_capacity, "minCapacity"),
            (input.max_capacity, "maxCapacity"),
        ] {
            if v.is_some_and(|v| v < 0) {
                return Err(AppScalingError::Validation(format!(
                    "1 validation error detected: Value at '{member}' failed to satisfy constraint: Member must have value greater than or equal to 0"
                )));
            }
        }
        let tags = input.tags.clone().unwrap_or_default();
        check_tags(&tags)?;
        if tags.len() > MAX_TAGS {
            return Err(AppScalingError::TooManyTags {
                message: format!("A scalable target can have at most {MAX_TAGS} tags."),
                resource: rid.clone(),
            });
        }
        let (cluster, service) = crate::records::split_service(&rid).unwrap_or(("", ""));
        let exists = self
            .ecs
            .counts(cluster, service)
            .await
            .map_err(AppScalingError::FailedResourceAccess)?;
        if exists.is_none() {
            return Err(AppScalingError::Validation(format!(
                "ECS service doesn't exist: {rid}"
            )));
        }
        let key = target_key(&rid);
        let now = self.now_ms();
        let default_role = format!(
            "arn:aws:iam::{}:role/aws-service-role/ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService",
            self.scope.account_id
        );
        let target = self
            .objects
            .retry(&key, || async {
                let old = self.objects.get::<TargetRecord>(&key).await?;
                let (mut t, rev) = match old {
                    Some((t, rev)) => (t, rev),
                    None => {
                        let (Some(min), Some(max)) = (input.min_capacity, input.max_capacity) else {
                            return Err(AppScalingError::Validation(
                                "MinCapacity and MaxCapacity are required when registering a new scalable target.".into(),
                            ));
                        };
                        let t = TargetRecord {
                            resource_id: rid.clone(),
                            min,
                            max,
                            role_arn: default_role.clone(),
                            arn: format!(
                                "arn:aws:application-autoscaling:{}:{}:scalable-target/{}",
                                self.scope.region,
                                self.scope.account_id,
                                uuid::Uuid::new_v4().simple()
                            ),
                            creation_ms: now,
                            suspended: Suspended::default(),
                            tags: BTreeMap::new(),
                        };
                        (t, 0)
                    }
                };
                if let Some(m) = input.min_capacity {
                    t.min = m;
                }
                if let Some(m) = input.max_capacity {
                    t.max = m;
                }
                if t.min > t.max {
                    return Err(AppScalingError::Validation(format!(
                        "Minimum capacity cannot be greater than maximum capacity ({} > {}).",
                        t.min, t.max
                    )));
                }
                if let Some(r) = &input.role_arn {
                    t.role_arn.clone_from(r);
                }
                if let Some(s) = &input.suspended_state {
                    let keep = t.suspended;
                    t.suspended = Suspended {
                        dynamic_in: s.dynamic_scaling_in_suspended.unwrap_or(keep.dynamic_in),
                        dynamic_out: s.dynamic_scaling_out_suspended.unwrap_or(keep.dynamic_out),
                        scheduled: s.scheduled_scaling_suspended.unwrap_or(keep.scheduled),
                    };
                }
                t.tags.extend(tags.clone());
                if t.tags.len() > MAX_TAGS {
                    return Err(AppScalingError::TooManyTags {
                        message: format!("A scalable target can have at most {MAX_TAGS} tags."),
                        resource: t.arn.clone(),
                    });
                }
                let txn = Txn::new().when(&key, rev).put(&key, store::objects::encode(&t)?);
                Ok(Step::Commit(txn, t))
            })
            .await?;
        // A capacity outside the new bounds is brought inside them now.
        self.enforce_bounds(&target).await;
        Ok(json!({ "ScalableTargetARN": target.arn }))
    }

    pub(crate) async fn describe_targets(
        &self,
        input: DescribeInput,
    ) -> Result<Value, AppScalingError> {
        check_namespace(input.service_namespace.as_deref())?;
        if let Some(d) = &input.scalable_dimension {
            crate::records::check_dimension(d)?;
        }
        let wanted = input.resource_ids.unwrap_or_default();
        let all: Vec<Value> = self
            .objects
            .list::<TargetRecord>(TARGET_PREFIX)
            .await?
            .into_iter()
            .filter(|(_, t, _)| wanted.is_empty() || wanted.contains(&t.resource_id))
            .map(|(_, t, _)| t.to_json())
            .collect();
        let (items, next) = page(all, input.next_token.as_deref(), input.max_results)?;
        Ok(paged("ScalableTargets", items, next))
    }

    pub(crate) async fn target(&self, rid: &str) -> Result<Option<TargetRecord>, AppScalingError> {
        Ok(self
            .objects
            .get::<TargetRecord>(&target_key(rid))
            .await?
            .map(|(t, _)| t))
    }

    pub(crate) async fn deregister_target(
        &self,
        input: TargetInput,
    ) -> Result<Value, AppScalingError> {
        let rid = check_target_names(
            input.service_namespace.as_deref(),
            input.resource_id.as_deref(),
            input.scalable_dimension.as_deref(),
        )?;
        if self.target(&rid).await?.is_none() {
            return Err(no_target(&rid));
        }
        // Policies go with their target, and with them the alarms they own.
        let policies = self
            .objects
            .list::<crate::records::PolicyRecord>(&format!("{POLICY_PREFIX}{rid}/"))
            .await?;
        for (_, p, _) in &policies {
            self.delete_owned_alarms(p).await?;
        }
        let scheduled = self
            .objects
            .keys(&format!("{SCHEDULED_PREFIX}{rid}/"))
            .await?;
        let mut txn = Txn::new()
            .delete(target_key(&rid))
            .delete(cooldown_key(&rid));
        for (_, p, _) in &policies {
            txn = txn.delete(policy_key(&rid, &p.name));
        }
        for (k, _) in scheduled {
            debug_assert!(k.starts_with(&scheduled_key(&rid, "")));
            txn = txn.delete(k);
        }
        self.objects.commit(txn).await?;
        Ok(json!({}))
    }

    /// The target whose ARN is `arn`, with its key.
    async fn target_by_arn(
        &self,
        arn: Option<&str>,
    ) -> Result<(String, TargetRecord), AppScalingError> {
        let arn = required(arn, "resourceARN")?;
        self.objects
            .list::<TargetRecord>(TARGET_PREFIX)
            .await?
            .into_iter()
            .find(|(_, t, _)| t.arn == arn)
            .map(|(k, t, _)| (k, t))
            .ok_or_else(|| AppScalingError::ResourceNotFound {
                message: format!("No scalable target found for ARN {arn}"),
                resource: arn.to_owned(),
            })
    }

    async fn change_tags(
        &self,
        arn: Option<&str>,
        change: impl Fn(&mut BTreeMap<String, String>) + Sync,
    ) -> Result<Value, AppScalingError> {
        let (key, _) = self.target_by_arn(arn).await?;
        self.objects
            .retry(&key, || async {
                let Some((mut t, rev)) = self.objects.get::<TargetRecord>(&key).await? else {
                    return Ok(Step::Done(()));
                };
                change(&mut t.tags);
                if t.tags.len() > MAX_TAGS {
                    return Err(AppScalingError::TooManyTags {
                        message: format!("A scalable target can have at most {MAX_TAGS} tags."),
                        resource: t.arn.clone(),
                    });
                }
                let txn = Txn::new()
                    .when(&key, rev)
                    .put(&key, store::objects::encode(&t)?);
                Ok(Step::Commit(txn, ()))
            })
            .await?;
        Ok(json!({}))
    }

    pub(crate) async fn tag(&self, input: TagInput) -> Result<Value, AppScalingError> {
        let tags = input.tags.ok_or_else(|| {
            AppScalingError::Validation(
                "1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null".into(),
            )
        })?;
        check_tags(&tags)?;
        self.change_tags(input.resource_arn.as_deref(), |t| t.extend(tags.clone()))
            .await
    }

    pub(crate) async fn untag(&self, input: TagInput) -> Result<Value, AppScalingError> {
        let keys = input.tag_keys.ok_or_else(|| {
            AppScalingError::Validation(
                "1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: Member must not be null".into(),
            )
        })?;
        self.change_tags(input.resource_arn.as_deref(), |t| {
            for k in &keys {
                t.remove(k);
            }
        })
        .await
    }

    pub(crate) async fn list_tags(&self, input: TagInput) -> Result<Value, AppScalingError> {
        let (_, t) = self.target_by_arn(input.resource_arn.as_deref()).await?;
        Ok(json!({ "Tags": t.tags }))
    }
}
