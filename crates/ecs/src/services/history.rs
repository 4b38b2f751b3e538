//! A service's deployment history: the service revisions (the configuration each
//! deployment rolls out) and the service deployments (one per UpdateService that starts a
//! rollout, and the service's first), as ListServiceDeployments,
//! DescribeServiceDeployments and DescribeServiceRevisions show them, and the
//! `currentServiceDeployment` / `currentServiceRevisions` of DescribeServices.
//!
//! The history lives inside the service's record ([`super::StoredService`]), so it is
//! written in the same compare-and-swap as the rollout it describes and leaves the store
//! with the service (the retention sweep deletes INACTIVE service records whole). AWS
//! keeps 90 days of deployments; a record here keeps the newest [`MAX_DEPLOYMENTS`]
//! service deployments (finished ones are dropped first) and the revisions they or the
//! running rolling deployments still name, so a busy service's record stays bounded.
//!
//! Each service deployment is carried out by the service's rolling deployments
//! (`deployments[]`, ids `ecs-svc/…`): the one that rolls forward, and, when it is rolled
//! back (by the circuit breaker or StopServiceDeployment), the one that rolls back.

use super::plan::is_primary;
use model::ecs::arn::ArnScope;
use model::ecs::shapes::{
    Deployment, Rollback, Service, ServiceCurrentRevisionSummary, ServiceDeployment,
    ServiceDeploymentAlarms, ServiceDeploymentCircuitBreaker,
    ServiceDeploymentRollbackMonitorsStatus, ServiceDeploymentStatus, ServiceRevision,
    ServiceRevisionSummary,
};
use serde::{Deserialize, Serialize};

/// The most service deployments a service keeps (AWS keeps 90 days of them).
pub(crate) const MAX_DEPLOYMENTS: usize = 50;

/// One service deployment and the rolling deployments acting for it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Record {
    /// As DescribeServiceDeployments shows it.
    pub deployment: ServiceDeployment,
    /// The rolling deployment (`ecs-svc/…`) that rolls forward to the target revision.
    pub forward: String,
    /// The rolling deployment rolling back, once one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<String>,
}

/// A service revision and the rolling deployments that run it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct RevisionRecord {
    /// As DescribeServiceRevisions shows it.
    pub revision: ServiceRevision,
    /// Rolling deployment ids (`ecs-svc/…`) running this revision (a rollback reuses the
    /// revision it returns to).
    pub deployments: Vec<String>,
}

/// A service's history, oldest first.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct History {
    #[serde(default)]
    pub deployments: Vec<Record>,
    #[serde(default)]
    pub revisions: Vec<RevisionRecord>,
}

/// Why a service deployment cannot be stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StopRefused {
    /// It already finished.
    #[error("The service deployment {0} cannot be stopped because it is in the {1} state.")]
    Finished(String, &'static str),
    /// No earlier revision completed, so there is nothing to roll back to.
    #[error("The service deployment {0} cannot be rolled back because the service has no previous service revision.")]
    NoPrevious(String),
}

/// A service deployment id, shaped like ECS's (22 URL-safe characters).
fn deployment_record_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut n = uuid::Uuid::new_v4().as_u128();
    (0..22)
        .map(|_| {
            let c = ALPHABET[(n % 64) as usize];
            n /= 64;
            char::from(c)
        })
        .collect()
}

/// A service revision id, shaped like ECS's (19 digits).
fn revision_id() -> String {
    let n = uuid::Uuid::new_v4().as_u128() % 10_000_000_000_000_000_000;
    format!("{n:019}")
}

/// Whether a service deployment has finished (no further state change).
pub(crate) fn is_finished(s: Option<ServiceDeploymentStatus>) -> bool {
    use ServiceDeploymentStatus as S;
    matches!(
        s,
        Some(S::Successful | S::Stopped | S::RollbackSuccessful | S::RollbackFailed)
    )
}

fn status_name(s: Option<ServiceDeploymentStatus>) -> &'static str {
    s.map_or("UNKNOWN", ServiceDeploymentStatus::as_str)
}

/// The circuit breaker's failure threshold as ECS computes it: half the desired count,
/// at least 3 and at most 200 (the default when no threshold is configured).
fn breaker_threshold(desired: i32) -> i32 {
    ((desired + 1) / 2).clamp(3, 200)
}

impl History {
    /// The revision a rolling deployment runs.
    pub fn revision_of(&self, rolling: &str) -> Option<&str> {
        self.revisions
            .iter()
            .find(|r| r.deployments.iter().any(|d| d == rolling))
            .and_then(|r| r.revision.service_revision_arn.as_deref())
    }

    /// A service deployment by its ARN.
    pub fn find(&self, arn: &str) -> Option<&Record> {
        self.deployments
            .iter()
            .find(|r| r.deployment.service_deployment_arn.as_deref() == Some(arn))
    }

    /// A service revision by its ARN.
    pub fn revision(&self, arn: &str) -> Option<&ServiceRevision> {
        self.revisions
            .iter()
            .map(|r| &r.revision)
            .find(|r| r.service_revision_arn.as_deref() == Some(arn))
    }

    fn record_mut(&mut self, rolling: &str) -> Option<&mut Record> {
        self.deployments
            .iter_mut()
            .rev()
            .find(|r| r.forward == rolling || r.rollback.as_deref() == Some(rolling))
    }

    /// Records a new service deployment: `d` (just made PRIMARY of `svc`) rolls out a new
    /// revision; what the service ran before are its source revisions, and a deployment
    /// still under way is superseded (STOPPED).
    pub fn started(&mut self, scope: &ArnScope, svc: &Service, d: &Deployment, at: f64) {
        let cluster = model::ecs::arn::short_name(svc.cluster_arn.as_deref().unwrap_or_default());
        let name = svc.service_name.as_deref().unwrap_or_default();
        let rolling = d.id.clone().unwrap_or_default();
        let revision_arn = scope.service_revision(cluster, name, &revision_id());
        let revision = ServiceRevision {
            service_revision_arn: Some(revision_arn.clone()),
            service_arn: svc.service_arn.clone(),
            cluster_arn: svc.cluster_arn.clone(),
            task_definition: d.task_definition.clone(),
            capacity_provider_strategy: d.capacity_provider_strategy.clone(),
            launch_type: d.launch_type,
            platform_version: d.platform_version.clone(),
            platform_family: d.platform_family.clone(),
            load_balancers: svc.load_balancers.clone(),
            service_registries: svc.service_registries.clone(),
            network_configuration: d.network_configuration.clone(),
            guard_duty_enabled: Some(false),
            created_at: Some(at),
            ..Default::default()
        };
        let sources: Vec<ServiceRevisionSummary> = self
            .current(svc)
            .into_iter()
            .map(|c| ServiceRevisionSummary {
                arn: c.arn,
                requested_task_count: c.requested_task_count,
                running_task_count: c.running_task_count,
                pending_task_count: c.pending_task_count,
                ..Default::default()
            })
            .collect();
        for r in &mut self.deployments {
            if !is_finished(r.deployment.status) {
                r.deployment.status = Some(ServiceDeploymentStatus::Stopped);
                r.deployment.status_reason =
                    Some("Stopped: a newer service deployment replaced it.".into());
                r.deployment.stopped_at = Some(at);
                r.deployment.finished_at = Some(at);
                r.deployment.updated_at = Some(at);
            }
        }
        let config = svc.deployment_configuration.clone();
        let breaker = config
            .as_ref()
            .and_then(|c| c.deployment_circuit_breaker.as_ref())
            .filter(|b| b.enable);
        let alarms = config
            .as_ref()
            .and_then(|c| c.alarms.as_ref())
            .filter(|a| a.enable);
        let monitoring = |on: bool| {
            Some(if on {
                ServiceDeploymentRollbackMonitorsStatus::Monitoring
            } else {
                ServiceDeploymentRollbackMonitorsStatus::Disabled
            })
        };
        let deployment = ServiceDeployment {
            service_deployment_arn: Some(scope.service_deployment(
                cluster,
                name,
                &deployment_record_id(),
            )),
            service_arn: svc.service_arn.clone(),
            cluster_arn: svc.cluster_arn.clone(),
            created_at: Some(at),
            started_at: Some(at),
            updated_at: Some(at),
            source_service_revisions: Some(sources),
            target_service_revision: Some(ServiceRevisionSummary {
                arn: Some(revision_arn),
                requested_task_count: d.desired_count,
                running_task_count: Some(0),
                pending_task_count: Some(0),
                ..Default::default()
            }),
            status: Some(ServiceDeploymentStatus::InProgress),
            deployment_configuration: config.clone(),
            deployment_circuit_breaker: Some(ServiceDeploymentCircuitBreaker {
                status: monitoring(breaker.is_some()),
                failure_count: Some(0),
                threshold: breaker.map(|_| breaker_threshold(svc.desired_count.unwrap_or(0))),
            }),
            alarms: Some(ServiceDeploymentAlarms {
                status: monitoring(alarms.is_some()),
                alarm_names: alarms.map(|a| a.alarm_names.clone()),
                triggered_alarm_names: alarms.map(|_| Vec::new()),
            }),
            ..Default::default()
        };
        self.revisions.push(RevisionRecord {
            revision,
            deployments: vec![rolling.clone()],
        });
        self.deployments.push(Record {
            deployment,
            forward: rolling,
            rollback: None,
        });
        self.bound(svc);
    }

    /// A rolling deployment completed: its service deployment succeeded (or its rollback
    /// did).
    pub fn completed(&mut self, rolling: &str, at: f64) {
        let Some(r) = self.record_mut(rolling) else {
            return;
        };
        let d = &mut r.deployment;
        if r.rollback.as_deref() == Some(rolling) {
            d.status = Some(ServiceDeploymentStatus::RollbackSuccessful);
            d.status_reason = Some("Service deployment rolled back successfully.".into());
        } else if r.forward == rolling && !is_finished(d.status) {
            d.status = Some(ServiceDeploymentStatus::Successful);
            d.status_reason = Some("Service deployment completed successfully.".into());
        } else {
            return;
        }
        d.finished_at = Some(at);
        d.updated_at = Some(at);
        finish_monitors(d);
    }

    /// A rolling deployment failed (the circuit breaker tripped): its service deployment
    /// stops, unless a rollback follows ([`History::rolling_back`]).
    pub fn failed(&mut self, rolling: &str, failed_tasks: i32, at: f64) {
        let Some(r) = self.record_mut(rolling) else {
            return;
        };
        let d = &mut r.deployment;
        if let Some(b) = d.deployment_circuit_breaker.as_mut() {
            if b.status != Some(ServiceDeploymentRollbackMonitorsStatus::Disabled) {
                b.status = Some(ServiceDeploymentRollbackMonitorsStatus::Triggered);
            }
            b.failure_count = Some(failed_tasks);
        }
        if r.rollback.as_deref() == Some(rolling) {
            d.status = Some(ServiceDeploymentStatus::RollbackFailed);
            d.status_reason =
                Some("Service deployment rollback failed: tasks failed to start.".into());
        } else {
            d.status = Some(ServiceDeploymentStatus::Stopped);
            d.status_reason = Some(
                "Service deployment stopped: the deployment circuit breaker detected tasks failing to start."
                    .into(),
            );
            d.stopped_at = Some(at);
        }
        d.finished_at = Some(at);
        d.updated_at = Some(at);
    }

    /// The service deployment of `failed` (a rolling deployment) is rolled back by the
    /// rolling deployment `rolling`, which runs the revision of `to` (the rolling
    /// deployment that last completed).
    pub fn rolling_back(&mut self, failed: &str, rolling: &str, to: &str, reason: &str, at: f64) {
        let target = self.revision_of(to).map(str::to_owned);
        if let Some(rev) = self
            .revisions
            .iter_mut()
            .find(|r| r.deployments.iter().any(|d| d == to))
        {
            rev.deployments.push(rolling.to_owned());
        }
        let Some(r) = self.record_mut(failed) else {
            return;
        };
        r.rollback = Some(rolling.to_owned());
        let d = &mut r.deployment;
        d.status = Some(ServiceDeploymentStatus::RollbackInProgress);
        d.status_reason = Some(reason.to_owned());
        d.finished_at = None;
        d.stopped_at = None;
        d.updated_at = Some(at);
        d.rollback = Some(Rollback {
            reason: Some(reason.to_owned()),
            started_at: Some(at),
            service_revision_arn: target,
        });
    }

    /// Whether StopServiceDeployment may roll `arn` back now: `Ok(None)` when a stop or
    /// rollback is already under way (it continues), `Ok(Some(rolling))` with the rolling
    /// deployment to roll back.
    pub fn check_stop(&self, arn: &str, has_previous: bool) -> Result<Option<String>, StopRefused> {
        use ServiceDeploymentStatus as S;
        let Some(r) = self.find(arn) else {
            return Ok(None);
        };
        match r.deployment.status {
            Some(S::StopRequested | S::RollbackRequested | S::RollbackInProgress) => Ok(None),
            Some(S::Pending | S::InProgress) if has_previous => Ok(Some(r.forward.clone())),
            Some(S::Pending | S::InProgress) => Err(StopRefused::NoPrevious(arn.to_owned())),
            s => Err(StopRefused::Finished(arn.to_owned(), status_name(s))),
        }
    }

    /// The revisions the service runs, with their task counts (DescribeServices'
    /// `currentServiceRevisions`), PRIMARY first.
    pub fn current(&self, svc: &Service) -> Vec<ServiceCurrentRevisionSummary> {
        let mut out: Vec<ServiceCurrentRevisionSummary> = Vec::new();
        let mut deps: Vec<&Deployment> = svc.deployments.iter().flatten().collect();
        deps.sort_by_key(|d| !is_primary(d));
        for d in deps {
            let Some(arn) = d.id.as_deref().and_then(|id| self.revision_of(id)) else {
                continue;
            };
            let add = |a: Option<i32>, b: Option<i32>| Some(a.unwrap_or(0) + b.unwrap_or(0));
            match out.iter_mut().find(|c| c.arn.as_deref() == Some(arn)) {
                Some(c) => {
                    c.requested_task_count = add(c.requested_task_count, d.desired_count);
                    c.running_task_count = add(c.running_task_count, d.running_count);
                    c.pending_task_count = add(c.pending_task_count, d.pending_count);
                }
                None => out.push(ServiceCurrentRevisionSummary {
                    arn: Some(arn.to_owned()),
                    requested_task_count: Some(d.desired_count.unwrap_or(0)),
                    running_task_count: Some(d.running_count.unwrap_or(0)),
                    pending_task_count: Some(d.pending_count.unwrap_or(0)),
                }),
            }
        }
        out
    }

    /// Brings the service's `currentServiceDeployment` / `currentServiceRevisions` and
    /// the unfinished deployments' target counts up to date with its rolling deployments.
    pub fn refresh(&mut self, svc: &mut Service) {
        svc.current_service_deployment = self
            .deployments
            .last()
            .and_then(|r| r.deployment.service_deployment_arn.clone());
        let current = self.current(svc);
        for r in &mut self.deployments {
            if is_finished(r.deployment.status) {
                continue;
            }
            let Some(t) = r.deployment.target_service_revision.as_mut() else {
                continue;
            };
            if let Some(c) = current.iter().find(|c| c.arn == t.arn) {
                t.requested_task_count = c.requested_task_count;
                t.running_task_count = c.running_task_count;
                t.pending_task_count = c.pending_task_count;
            }
        }
        svc.current_service_revisions = (!current.is_empty()).then_some(current);
    }

    /// Keeps the newest [`MAX_DEPLOYMENTS`] service deployments (dropping finished ones
    /// first) and the revisions still named by a kept deployment or run by `svc`.
    fn bound(&mut self, svc: &Service) {
        while self.deployments.len() > MAX_DEPLOYMENTS {
            let at = self
                .deployments
                .iter()
                .position(|r| is_finished(r.deployment.status))
                .unwrap_or(0);
            self.deployments.remove(at);
        }
        let running: Vec<&str> = svc
            .deployments
            .iter()
            .flatten()
            .filter_map(|d| d.id.as_deref())
            .collect();
        let named = |arn: Option<&str>| {
            self.deployments.iter().any(|r| {
                let d = &r.deployment;
                d.target_service_revision
                    .as_ref()
                    .and_then(|t| t.arn.as_deref())
                    == arn
                    || d.source_service_revisions
                        .iter()
                        .flatten()
                        .any(|s| s.arn.as_deref() == arn)
                    || d.rollback
                        .as_ref()
                        .and_then(|b| b.service_revision_arn.as_deref())
                        == arn
            })
        };
        let keep: Vec<bool> = self
            .revisions
            .iter()
            .map(|r| {
                named(r.revision.service_revision_arn.as_deref())
                    || r.deployments.iter().any(|d| running.contains(&d.as_str()))
            })
            .collect();
        let mut keep = keep.into_iter();
        self.revisions.retain(|_| keep.next().unwrap_or(true));
    }
}

/// A finished deployment's monitors stop watching (unless they tripped).
fn finish_monitors(d: &mut ServiceDeployment) {
    let done = |s: &mut Option<ServiceDeploymentRollbackMonitorsStatus>| {
        if *s == Some(ServiceDeploymentRollbackMonitorsStatus::Monitoring) {
            *s = Some(ServiceDeploymentRollbackMonitorsStatus::MonitoringComplete);
        }
    };
    if let Some(b) = d.deployment_circuit_breaker.as_mut() {
        done(&mut b.status);
    }
    if let Some(a) = d.alarms.as_mut() {
        done(&mut a.status);
    }
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
