//! The service deployment operations: ListServiceDeployments,
//! DescribeServiceDeployments, DescribeServiceRevisions and StopServiceDeployment, over
//! the history each service record keeps ([`super::history`]).

use super::api::{save, ACTIVE};
use super::history::StopRefused;
use super::record::roll_back;
use super::{service_key, StoredService};
use crate::error::{invalid, EcsError};
use crate::objects::Step;
use crate::pagination::{page_size, paginate};
use crate::{now, Caller, Ecs};
use model::ecs::arn::EcsResource;
use model::ecs::shapes::{
    DescribeServiceDeploymentsRequest, DescribeServiceDeploymentsResponse,
    DescribeServiceRevisionsRequest, DescribeServiceRevisionsResponse, Failure,
    ListServiceDeploymentsRequest, ListServiceDeploymentsResponse, ServiceDeploymentBrief,
    StopServiceDeploymentRequest, StopServiceDeploymentResponse, StopServiceDeploymentStopType,
};

/// Most ARNs one Describe call takes (AWS's limit for both operations).
const MAX_DESCRIBE: usize = 20;
/// ListServiceDeployments' page size when `maxResults` is not given.
const DEFAULT_PAGE: i32 = 20;

/// (cluster, service) of a service deployment or revision ARN of this account and region.
fn parse_history_arn(ecs: &Ecs, arn: &str, revision: bool) -> Result<(String, String), EcsError> {
    match (ecs.scope.parse(arn), revision) {
        (
            Ok(EcsResource::ServiceDeployment {
                cluster, service, ..
            }),
            false,
        )
        | (
            Ok(EcsResource::ServiceRevision {
                cluster, service, ..
            }),
            true,
        ) => Ok((cluster, service)),
        _ => {
            let what = if revision {
                "service revision"
            } else {
                "service deployment"
            };
            invalid(format!("Invalid {what} ARN: '{arn}'."))
        }
    }
}

impl Ecs {
    /// The service named by a history ARN, if its cluster and service exist.
    async fn service_of(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Option<StoredService>, EcsError> {
        Ok(self.load_service(cluster, service).await?.map(|(st, _)| st))
    }
}

fn check_count(n: usize, member: &str) -> Result<(), EcsError> {
    if n == 0 || n > MAX_DESCRIBE {
        return invalid(format!(
            "{member} must name between 1 and {MAX_DESCRIBE} ARNs; got {n}."
        ));
    }
    Ok(())
}

fn missing(arn: &str) -> Failure {
    Failure {
        arn: Some(arn.to_owned()),
        reason: Some("MISSING".into()),
        detail: None,
    }
}

pub(crate) async fn list_service_deployments(
    ecs: &Ecs,
    req: ListServiceDeploymentsRequest,
    _: &Caller,
) -> Result<ListServiceDeploymentsResponse, EcsError> {
    let (cluster, _, _) = ecs.active_cluster(req.cluster.as_deref()).await?;
    let size = page_size(Some(req.max_results.unwrap_or(DEFAULT_PAGE)), 100)?;
    let Some(st) = ecs.service_of(&cluster, &req.service).await? else {
        return Err(EcsError::ServiceNotFound);
    };
    let wanted = |d: &model::ecs::shapes::ServiceDeployment| {
        let at = d.created_at.unwrap_or(0.0);
        let status_ok = req
            .status
            .as_ref()
            .filter(|s| !s.is_empty())
            .is_none_or(|s| d.status.is_some_and(|x| s.contains(&x)));
        let created = req.created_at.as_ref();
        status_ok
            && created
                .and_then(|c| c.after)
                .is_none_or(|after| at >= after)
            && created
                .and_then(|c| c.before)
                .is_none_or(|before| at <= before)
    };
    // Newest first, as AWS lists them; the key orders by creation time.
    let mut items: Vec<(String, ServiceDeploymentBrief)> = st
        .history
        .deployments
        .iter()
        .map(|r| &r.deployment)
        .filter(|d| wanted(d))
        .map(|d| {
            let micros = (d.created_at.unwrap_or(0.0).max(0.0) * 1e6) as u64;
            let arn = d.service_deployment_arn.clone().unwrap_or_default();
            (
                format!("{micros:020}/{arn}"),
                ServiceDeploymentBrief {
                    service_deployment_arn: Some(arn),
                    service_arn: d.service_arn.clone(),
                    cluster_arn: d.cluster_arn.clone(),
                    started_at: d.started_at,
                    created_at: d.created_at,
                    finished_at: d.finished_at,
                    target_service_revision_arn: d
                        .target_service_revision
                        .as_ref()
                        .and_then(|t| t.arn.clone()),
                    status: d.status,
                    status_reason: d.status_reason.clone(),
                },
            )
        })
        .collect();
    items.sort_by(|a, b| b.0.cmp(&a.0));
    let page = paginate(items, req.next_token.as_deref(), size, true)?;
    Ok(ListServiceDeploymentsResponse {
        service_deployments: Some(page.items),
        next_token: page.next_token,
    })
}

/// Looks each history ARN up: what `pick` finds in its service's history, or a `MISSING`
/// failure. A malformed ARN (or one of the other kind) refuses the whole request.
async fn describe_each<T>(
    ecs: &Ecs,
    arns: &[String],
    member: &str,
    revision: bool,
    pick: impl Fn(&super::history::History, &str) -> Option<T>,
) -> Result<(Vec<T>, Vec<Failure>), EcsError> {
    check_count(arns.len(), member)?;
    let mut found = Vec::new();
    let mut failures = Vec::new();
    for arn in arns {
        let (cluster, service) = parse_history_arn(ecs, arn, revision)?;
        let st = ecs.service_of(&cluster, &service).await?;
        match st.and_then(|st| pick(&st.history, arn)) {
            Some(x) => found.push(x),
            None => failures.push(missing(arn)),
        }
    }
    Ok((found, failures))
}

pub(crate) async fn describe_service_deployments(
    ecs: &Ecs,
    req: DescribeServiceDeploymentsRequest,
    _: &Caller,
) -> Result<DescribeServiceDeploymentsResponse, EcsError> {
    let (found, failures) = describe_each(
        ecs,
        &req.service_deployment_arns,
        "serviceDeploymentArns",
        false,
        |h, arn| h.find(arn).map(|r| r.deployment.clone()),
    )
    .await?;
    Ok(DescribeServiceDeploymentsResponse {
        service_deployments: Some(found),
        failures: Some(failures),
    })
}

pub(crate) async fn describe_service_revisions(
    ecs: &Ecs,
    req: DescribeServiceRevisionsRequest,
    _: &Caller,
) -> Result<DescribeServiceRevisionsResponse, EcsError> {
    let (found, failures) = describe_each(
        ecs,
        &req.service_revision_arns,
        "serviceRevisionArns",
        true,
        |h, arn| h.revision(arn).cloned(),
    )
    .await?;
    Ok(DescribeServiceRevisionsResponse {
        service_revisions: Some(found),
        failures: Some(failures),
    })
}

pub(crate) async fn stop_service_deployment(
    ecs: &Ecs,
    req: StopServiceDeploymentRequest,
    _: &Caller,
) -> Result<StopServiceDeploymentResponse, EcsError> {
    let arn = req.service_deployment_arn.clone();
    let (cluster, service) = parse_history_arn(ecs, &arn, false)?;
    match req.stop_type {
        None | Some(StopServiceDeploymentStopType::Rollback) => {}
        // ABORT (stop without rolling back) is for deployment strategies Stevedore does
        // not run; refused rather than treated as a rollback.
        Some(StopServiceDeploymentStopType::Abort) => {
            return invalid(
                "The ABORT stop type is not supported for rolling deployments; use ROLLBACK.",
            )
        }
    }
    let key = service_key(&cluster, &service);
    ecs.objects
        .retry(&key, || async {
            let Some((mut st, rev)) = ecs.load_service(&cluster, &service).await? else {
                return Err(EcsError::ServiceDeploymentNotFound);
            };
            if st.history.find(&arn).is_none() {
                return Err(EcsError::ServiceDeploymentNotFound);
            }
            let conflict = |message: String| EcsError::Conflict {
                message,
                resource_ids: vec![arn.clone()],
            };
            if st.service.status != Some(ACTIVE) {
                return Err(conflict(format!(
                    "The service deployment {arn} cannot be stopped because its service is not ACTIVE."
                )));
            }
            let previous = st.completed.last().cloned();
            let rolling = st
                .history
                .check_stop(&arn, previous.is_some())
                .map_err(|e: StopRefused| conflict(e.to_string()))?;
            let (Some(rolling), Some((old_id, td))) = (rolling, previous) else {
                // A stop or rollback already under way continues.
                return Ok(Step::Done(st.service));
            };
            let at = now();
            let mut events = Vec::new();
            let reason = format!(
                "Service deployment rolled back because of a stop request: rolling back to deploymentId {old_id}."
            );
            roll_back(&mut st, &rolling, &old_id, td, &reason, at, &mut events);
            for e in events {
                st.event(e, at);
            }
            save(&key, rev, &st)
        })
        .await?;
    ecs.wake_services();
    tracing::info!(cluster = %cluster, service = %service, deployment = %arn, "Service deployment rolling back (stop requested).");
    Ok(StopServiceDeploymentResponse {
        service_deployment_arn: Some(arn),
    })
}
