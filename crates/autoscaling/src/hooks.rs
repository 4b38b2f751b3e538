//! Lifecycle hooks for termination: PutLifecycleHook, DescribeLifecycleHooks,
//! DeleteLifecycleHook, CompleteLifecycleAction and RecordLifecycleActionHeartbeat. An
//! instance chosen for termination waits in `Terminating:Wait` until every termination
//! hook of its group is completed or times out (its default result), then goes
//! `Terminating:Proceed` and its machine is stopped (see [`crate::controller`]).
//!
//! Not yet: launch hooks (`autoscaling:EC2_INSTANCE_LAUNCHING`) and notification
//! targets (there is no SNS or SQS here): both are refused.

use crate::controller::TERMINATING;
use crate::error::{invalid, AutoScalingError};
use crate::state::{Lifecycle, LifecycleHook};
use crate::AutoScaling;
use wire::query::QueryView;
use wire::xml::Xml;

/// The most lifecycle hooks a group may have (AWS's quota).
const MAX_HOOKS: usize = 50;

fn required<'a>(q: &QueryView<'a>, name: &str, member: &str) -> Result<&'a str, AutoScalingError> {
    match q.get(name) {
        Some(v) if !v.is_empty() && v.len() <= 255 => Ok(v),
        Some(_) => invalid(format!("1 validation error detected: Value at '{member}' failed to satisfy constraint: Member must have length between 1 and 255")),
        None => invalid(format!("1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null")),
    }
}

fn check_result(v: &str) -> Result<(), AutoScalingError> {
    if v == "CONTINUE" || v == "ABANDON" {
        Ok(())
    } else {
        invalid(format!(
            "Valid values for DefaultResult and LifecycleActionResult are CONTINUE and ABANDON, not {v}."
        ))
    }
}

impl AutoScaling {
    pub(crate) async fn put_lifecycle_hook(
        &self,
        q: &QueryView<'_>,
    ) -> Result<String, AutoScalingError> {
        let hook = required(q, "LifecycleHookName", "lifecycleHookName")?.to_owned();
        let group = required(q, "AutoScalingGroupName", "autoScalingGroupName")?.to_owned();
        if q.has("NotificationTargetARN") || q.has("RoleARN") {
            return invalid("NotificationTargetARN and RoleARN are not supported by Stevedore: it has no SNS or SQS to notify. Complete lifecycle actions by polling DescribeAutoScalingGroups for Terminating:Wait instances.");
        }
        let transition = q.get("LifecycleTransition");
        match transition {
            None | Some(TERMINATING) => {}
            Some("autoscaling:EC2_INSTANCE_LAUNCHING") => {
                return invalid("Lifecycle hooks for autoscaling:EC2_INSTANCE_LAUNCHING are not supported by Stevedore yet; only autoscaling:EC2_INSTANCE_TERMINATING.")
            }
            Some(other) => {
                return invalid(format!("Invalid Lifecycle Transition: {other}. Valid values are autoscaling:EC2_INSTANCE_LAUNCHING and autoscaling:EC2_INSTANCE_TERMINATING."))
            }
        }
        let heartbeat = match q.get("HeartbeatTimeout") {
            Some(v) => Some(
                v.parse::<i32>()
                    .ok()
                    .filter(|t| (30..=7200).contains(t))
                    .ok_or_else(|| {
                        AutoScalingError::Validation(format!(
                            "Heartbeat timeout must be between 30 and 7200 seconds; got {v}."
                        ))
                    })?,
            ),
            None => None,
        };
        let default_result = q.get("DefaultResult");
        if let Some(r) = default_result {
            check_result(r)?;
        }
        let metadata = q.get("NotificationMetadata");
        if metadata.is_some_and(|m| m.len() > 1023) {
            return invalid("NotificationMetadata can be at most 1023 characters.");
        }
        self.update_group(&group, |g| {
            match g.hooks.iter_mut().find(|h| h.name == hook) {
                // PutLifecycleHook updates an existing hook with what is given.
                Some(h) => {
                    if let Some(t) = heartbeat {
                        h.heartbeat_timeout = t;
                    }
                    if let Some(r) = default_result {
                        r.clone_into(&mut h.default_result);
                    }
                    if let Some(m) = metadata {
                        h.metadata = Some(m.to_owned());
                    }
                }
                None => {
                    if transition.is_none() {
                        return invalid("LifecycleTransition must be specified when creating a lifecycle hook.");
                    }
                    if g.hooks.len() >= MAX_HOOKS {
                        return Err(AutoScalingError::LimitExceeded(format!(
                            "Auto Scaling group {} already has the maximum of {MAX_HOOKS} lifecycle hooks.",
                            g.name
                        )));
                    }
                    g.hooks.push(LifecycleHook {
                        name: hook.clone(),
                        transition: TERMINATING.to_owned(),
                        heartbeat_timeout: heartbeat.unwrap_or(3600),
                        default_result: default_result.unwrap_or("ABANDON").to_owned(),
                        metadata: metadata.map(str::to_owned),
                    });
                }
            }
            Ok(())
        })
        .await?;
        self.wake();
        Ok(String::new())
    }

    pub(crate) async fn describe_lifecycle_hooks(
        &self,
        q: &QueryView<'_>,
    ) -> Result<String, AutoScalingError> {
        let name = required(q, "AutoScalingGroupName", "autoScalingGroupName")?;
        let names = q.list("LifecycleHookNames");
        let g = self
            .group(name)
            .await?
            .ok_or_else(|| crate::groups::not_found(name))?;
        let mut x = Xml::new();
        x.list(
            "LifecycleHooks",
            g.hooks
                .iter()
                .filter(|h| names.is_empty() || names.contains(&h.name.as_str())),
            |x, h| {
                x.leaf("LifecycleHookName", &h.name)
                    .leaf("AutoScalingGroupName", &g.name)
                    .leaf("LifecycleTransition", &h.transition)
                    .opt("NotificationMetadata", h.metadata.as_deref())
                    .leaf("HeartbeatTimeout", &h.heartbeat_timeout.to_string())
                    .leaf("GlobalTimeout", &h.global_timeout().to_string())
                    .leaf("DefaultResult", &h.default_result);
            },
        );
        Ok(x.finish())
    }

    pub(crate) async fn delete_lifecycle_hook(
        &self,
        q: &QueryView<'_>,
    ) -> Result<String, AutoScalingError> {
        let hook = required(q, "LifecycleHookName", "lifecycleHookName")?.to_owned();
        let group = required(q, "AutoScalingGroupName", "autoScalingGroupName")?.to_owned();
        self.update_group(&group, |g| {
            if !g.hooks.iter().any(|h| h.name == hook) {
                return invalid(format!(
                    "No Lifecycle Hook found with name {hook} for group {}",
                    g.name
                ));
            }
            g.remove_hook(&hook);
            Ok(())
        })
        .await?;
        self.wake();
        Ok(String::new())
    }

    /// CompleteLifecycleAction (`result` Some) and RecordLifecycleActionHeartbeat (None).
    pub(crate) async fn lifecycle_action(
        &self,
        q: &QueryView<'_>,
        complete: bool,
    ) -> Result<String, AutoScalingError> {
        let hook = required(q, "LifecycleHookName", "lifecycleHookName")?.to_owned();
        let group = required(q, "AutoScalingGroupName", "autoScalingGroupName")?.to_owned();
        let result = if complete {
            let r = required(q, "LifecycleActionResult", "lifecycleActionResult")?;
            check_result(r)?;
            Some(r.to_owned())
        } else {
            None
        };
        let token = q.get("LifecycleActionToken").map(str::to_owned);
        let instance = q.get("InstanceId").map(str::to_owned);
        if token.is_none() && instance.is_none() {
            return invalid("Either LifecycleActionToken or InstanceId must be specified.");
        }
        self.apply_lifecycle_action(&group, &hook, token, instance, result)
            .await?;
        Ok(String::new())
    }

    /// Completes (`result` CONTINUE or ABANDON) or, with no result, heartbeats the
    /// lifecycle action of `hook` on `instance_id`: what ECS managed draining does with
    /// the hook it owns.
    pub async fn lifecycle_action_for(
        &self,
        group: &str,
        hook: &str,
        instance_id: &str,
        result: Option<&str>,
    ) -> Result<(), AutoScalingError> {
        if let Some(r) = result {
            check_result(r)?;
        }
        self.apply_lifecycle_action(
            group,
            hook,
            None,
            Some(instance_id.to_owned()),
            result.map(str::to_owned),
        )
        .await
    }

    /// Adds (`present`) or removes the termination hook `hook` of `group`, as a service
    /// that owns it does (ECS managed draining); nothing when it is already so.
    pub async fn ensure_termination_hook(
        &self,
        group: &str,
        hook: &str,
        heartbeat_timeout: i32,
        default_result: &str,
        present: bool,
    ) -> Result<(), AutoScalingError> {
        let has = self
            .group(group)
            .await?
            .ok_or_else(|| crate::groups::not_found(group))?
            .hooks
            .iter()
            .any(|h| h.name == hook);
        if has == present {
            return Ok(());
        }
        self.update_group(group, |g| {
            if present {
                g.hooks.retain(|h| h.name != hook);
                g.hooks.push(LifecycleHook {
                    name: hook.to_owned(),
                    transition: TERMINATING.to_owned(),
                    heartbeat_timeout,
                    default_result: default_result.to_owned(),
                    metadata: None,
                });
            } else {
                g.remove_hook(hook);
            }
            Ok(())
        })
        .await?;
        self.wake();
        Ok(())
    }

    async fn apply_lifecycle_action(
        &self,
        group: &str,
        hook: &str,
        token: Option<String>,
        instance: Option<String>,
        result: Option<String>,
    ) -> Result<(), AutoScalingError> {
        let complete = result.is_some();
        let now = self.now_ms();
        self.update_group(group, |g| {
            let Some(h) = g.hooks.iter().find(|h| h.name == hook).cloned() else {
                return invalid(format!(
                    "No Lifecycle Hook found with name {hook} for group {}",
                    g.name
                ));
            };
            let found = g.instances.iter_mut().find(|i| {
                i.lifecycle == Lifecycle::TerminatingWait
                    && i.action.as_ref().is_some_and(|a| {
                        token.as_ref().is_none_or(|t| *t == a.token)
                            && instance.as_ref().is_none_or(|id| *id == i.id)
                            && a.pending.iter().any(|p| p.hook == hook)
                    })
            });
            let Some(i) = found else {
                return invalid(match (&instance, &token) {
                    (Some(id), _) => {
                        format!("No active Lifecycle Action found with instance ID {id}")
                    }
                    (None, Some(t)) => format!("No active Lifecycle Action found with token {t}"),
                    (None, None) => "No active Lifecycle Action found".to_owned(),
                });
            };
            let Some(action) = i.action.as_mut() else {
                return Ok(());
            };
            match result.as_deref() {
                // ABANDON ends every hook's hold (the instance is terminated either way).
                Some("ABANDON") => action.pending.clear(),
                Some(_) => action.pending.retain(|p| p.hook != hook),
                None => {
                    for p in action.pending.iter_mut().filter(|p| p.hook == hook) {
                        p.deadline_ms =
                            (now + i64::from(h.heartbeat_timeout) * 1000).min(p.global_deadline_ms);
                    }
                }
            }
            Ok(())
        })
        .await?;
        if complete {
            self.wake();
        }
        Ok(())
    }
}
