//! Clusters: create, describe (with statistics, tags, settings), list, update, delete.
//!
//! A deleted cluster stays readable as INACTIVE, as on AWS; creating it again makes it
//! ACTIVE with a fresh record.

use crate::error::{invalid, EcsError};
use crate::objects::{cluster_key, encode, instance_prefix, Step};
use crate::pagination::{page_size, paginate};
use crate::{cluster_name, Caller, Ecs};
use model::ecs::names::check_cluster_name;
use model::ecs::shapes::{
    Cluster, ClusterField, CreateClusterRequest, CreateClusterResponse, DeleteClusterRequest,
    DeleteClusterResponse, DescribeClustersRequest, DescribeClustersResponse, Failure,
    KeyValuePair, ListClustersRequest, ListClustersResponse, UpdateClusterRequest,
    UpdateClusterResponse, UpdateClusterSettingsRequest, UpdateClusterSettingsResponse,
};
use model::ecs::status::ContainerInstanceStatus;
use store::Txn;

pub(crate) const ACTIVE: &str = "ACTIVE";
const INACTIVE: &str = "INACTIVE";

impl Ecs {
    /// Loads an ACTIVE cluster by name or ARN, or fails with ClusterNotFoundException.
    pub(crate) async fn active_cluster(
        &self,
        reference: Option<&str>,
    ) -> Result<(String, Cluster, u64), EcsError> {
        let name = cluster_name(reference).to_owned();
        match self.objects.get::<Cluster>(&cluster_key(&name)).await? {
            Some((c, rev)) if c.status.as_deref() == Some(ACTIVE) => Ok((name, c, rev)),
            _ => Err(EcsError::ClusterNotFound),
        }
    }

    /// Counts and, when asked, statistics, as DescribeClusters shows them.
    async fn present_cluster(
        &self,
        mut c: Cluster,
        include: &[ClusterField],
    ) -> Result<Cluster, EcsError> {
        let name = c.cluster_name.clone().unwrap_or_default();
        let instances = self
            .objects
            .list::<crate::objects::StoredInstance>(&instance_prefix(&name))
            .await?;
        let registered = instances
            .iter()
            .filter(|(_, si, _)| {
                !si.fargate
                    && matches!(
                        si.instance.status,
                        Some(ContainerInstanceStatus::Active | ContainerInstanceStatus::Draining)
                    )
            })
            .count();
        // Fargate tasks run on hidden capacity: the instance's marker says which count
        // each task belongs to.
        let mut tasks = TaskCensus::default();
        for (_, si, _) in &instances {
            let (running, pending) = if si.fargate {
                (&mut tasks.running_fargate, &mut tasks.pending_fargate)
            } else {
                (&mut tasks.running_ec2, &mut tasks.pending_ec2)
            };
            *running += u64::from(si.usage.running);
            *pending += u64::from(si.usage.pending);
        }
        let count = |n: u64| i32::try_from(n).unwrap_or(i32::MAX);
        c.registered_container_instances_count =
            Some(i32::try_from(registered).unwrap_or(i32::MAX));
        c.running_tasks_count = Some(count(tasks.running_ec2 + tasks.running_fargate));
        c.pending_tasks_count = Some(count(tasks.pending_ec2 + tasks.pending_fargate));
        let services = self.service_census(&name).await?;
        c.active_services_count = Some(i32::try_from(services.active()).unwrap_or(i32::MAX));
        c.statistics = Some(if include.contains(&ClusterField::Statistics) {
            compute_statistics(&tasks, &services)
        } else {
            Vec::new()
        });
        if !include.contains(&ClusterField::Tags) {
            c.tags = Some(Vec::new());
        }
        if !include.contains(&ClusterField::Settings) {
            c.settings = None;
        }
        if !include.contains(&ClusterField::Configurations) {
            c.configuration = None;
        }
        if !include.contains(&ClusterField::Attachments) {
            c.attachments = None;
        }
        Ok(c)
    }
}

/// A cluster's RUNNING and PENDING tasks, by launch type.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct TaskCensus {
    running_ec2: u64,
    running_fargate: u64,
    pending_ec2: u64,
    pending_fargate: u64,
}

/// DescribeClusters' `statistics` (with `include: STATISTICS`), in AWS's order.
fn compute_statistics(
    tasks: &TaskCensus,
    services: &crate::services::api::ServiceCensus,
) -> Vec<KeyValuePair> {
    [
        ("runningEC2TasksCount", tasks.running_ec2),
        ("runningFargateTasksCount", tasks.running_fargate),
        ("pendingEC2TasksCount", tasks.pending_ec2),
        ("pendingFargateTasksCount", tasks.pending_fargate),
        ("activeEC2ServiceCount", services.active_ec2),
        ("activeFargateServiceCount", services.active_fargate),
        ("drainingEC2ServiceCount", services.draining_ec2),
        ("drainingFargateServiceCount", services.draining_fargate),
    ]
    .into_iter()
    .map(|(n, v)| KeyValuePair {
        name: Some(n.to_owned()),
        value: Some(v.to_string()),
    })
    .collect()
}

pub(crate) async fn create_cluster(
    ecs: &Ecs,
    req: CreateClusterRequest,
    _: &Caller,
) -> Result<CreateClusterResponse, EcsError> {
    let name = req
        .cluster_name
        .clone()
        .unwrap_or_else(|| "default".to_owned());
    check_cluster_name(&name).map_err(EcsError::InvalidParameter)?;
    if let Some(tags) = &req.tags {
        model::ecs::names::check_tags(tags).map_err(EcsError::InvalidParameter)?;
    }
    let providers = req.capacity_providers.clone().unwrap_or_default();
    let default_strategy = req
        .default_capacity_provider_strategy
        .clone()
        .unwrap_or_default();
    let groups = crate::capacity_providers::stored_names(ecs).await?;
    crate::tasks::fargate::check_cluster_providers(&providers, &default_strategy, &groups)?;
    let key = cluster_key(&name);
    let cluster = ecs
        .objects
        .retry(&key, || async {
            let existing = ecs.objects.get::<Cluster>(&key).await?;
            match existing {
                // CreateCluster is idempotent on an active cluster: AWS returns it as is.
                Some((c, _)) if c.status.as_deref() == Some(ACTIVE) => Ok(Step::Done(c)),
                other => {
                    let c = Cluster {
                        cluster_arn: Some(ecs.scope.cluster(&name)),
                        cluster_name: Some(name.clone()),
                        configuration: req.configuration.clone(),
                        status: Some(ACTIVE.into()),
                        tags: Some(req.tags.clone().unwrap_or_default()),
                        settings: Some(req.settings.clone().unwrap_or_else(default_settings)),
                        capacity_providers: Some(providers.clone()),
                        default_capacity_provider_strategy: Some(default_strategy.clone()),
                        ..Cluster::default()
                    };
                    let rev = other.map_or(0, |(_, r)| r);
                    Ok(Step::Commit(
                        Txn::new()
                            .when(key.clone(), rev)
                            .put(key.clone(), encode(&c)?),
                        c,
                    ))
                }
            }
        })
        .await?;
    tracing::info!(cluster = %name, "Cluster created.");
    let all = [
        ClusterField::Tags,
        ClusterField::Settings,
        ClusterField::Configurations,
    ];
    Ok(CreateClusterResponse {
        cluster: Some(ecs.present_cluster(cluster, &all).await?),
    })
}

fn default_settings() -> Vec<model::ecs::shapes::ClusterSetting> {
    vec![model::ecs::shapes::ClusterSetting {
        name: Some(model::ecs::shapes::ClusterSettingName::ContainerInsights),
        value: Some("disabled".into()),
    }]
}

pub(crate) async fn describe_clusters(
    ecs: &Ecs,
    req: DescribeClustersRequest,
    _: &Caller,
) -> Result<DescribeClustersResponse, EcsError> {
    let refs = req
        .clusters
        .clone()
        .unwrap_or_else(|| vec!["default".to_owned()]);
    if refs.len() > 100 {
        return invalid("At most 100 clusters can be described in one call.");
    }
    let include = req.include.clone().unwrap_or_default();
    let mut clusters = Vec::new();
    let mut failures = Vec::new();
    for r in refs {
        let name = cluster_name(Some(&r)).to_owned();
        match ecs.objects.get::<Cluster>(&cluster_key(&name)).await? {
            Some((c, _)) => clusters.push(ecs.present_cluster(c, &include).await?),
            None => failures.push(Failure {
                arn: Some(if r.starts_with("arn:") {
                    r.clone()
                } else {
                    ecs.scope.cluster(&name)
                }),
                reason: Some("MISSING".into()),
                detail: None,
            }),
        }
    }
    Ok(DescribeClustersResponse {
        clusters: Some(clusters),
        failures: Some(failures),
    })
}

pub(crate) async fn list_clusters(
    ecs: &Ecs,
    req: ListClustersRequest,
    _: &Caller,
) -> Result<ListClustersResponse, EcsError> {
    let size = page_size(req.max_results, 100)?;
    let all = ecs.objects.list::<Cluster>("ecs/cluster/").await?;
    let items = all
        .into_iter()
        .filter(|(_, c, _)| c.status.as_deref() == Some(ACTIVE))
        .map(|(k, c, _)| (k, c.cluster_arn.unwrap_or_default()))
        .collect();
    let page = paginate(items, req.next_token.as_deref(), size, false)?;
    Ok(ListClustersResponse {
        cluster_arns: Some(page.items),
        next_token: page.next_token,
    })
}

/// Applies `change` to an active cluster with compare-and-swap.
async fn modify_cluster(
    ecs: &Ecs,
    reference: &str,
    change: impl Fn(&mut Cluster),
) -> Result<Cluster, EcsError> {
    let name = cluster_name(Some(reference)).to_owned();
    let key = cluster_key(&name);
    ecs.objects
        .retry(&key, || async {
            let (_, mut c, rev) = ecs.active_cluster(Some(&name)).await?;
            change(&mut c);
            Ok(Step::Commit(
                Txn::new()
                    .when(key.clone(), rev)
                    .put(key.clone(), encode(&c)?),
                c,
            ))
        })
        .await
}

pub(crate) async fn update_cluster(
    ecs: &Ecs,
    req: UpdateClusterRequest,
    _: &Caller,
) -> Result<UpdateClusterResponse, EcsError> {
    let c = modify_cluster(ecs, &req.cluster, |c| {
        if let Some(s) = &req.settings {
            merge_settings(c, s);
        }
        if let Some(conf) = &req.configuration {
            c.configuration = Some(conf.clone());
        }
        if let Some(d) = &req.service_connect_defaults {
            c.service_connect_defaults = Some(model::ecs::shapes::ClusterServiceConnectDefaults {
                namespace: Some(d.namespace.clone()),
            });
        }
    })
    .await?;
    let all = [
        ClusterField::Tags,
        ClusterField::Settings,
        ClusterField::Configurations,
    ];
    Ok(UpdateClusterResponse {
        cluster: Some(ecs.present_cluster(c, &all).await?),
    })
}

/// Sets the cluster's capacity providers (Stevedore's are FARGATE and FARGATE_SPOT) and
/// its default strategy, used by RunTask and CreateService when they name neither a
/// launchType nor a strategy.
pub(crate) async fn put_cluster_capacity_providers(
    ecs: &Ecs,
    req: model::ecs::shapes::PutClusterCapacityProvidersRequest,
    _: &Caller,
) -> Result<model::ecs::shapes::PutClusterCapacityProvidersResponse, EcsError> {
    let groups = crate::capacity_providers::stored_names(ecs).await?;
    crate::tasks::fargate::check_cluster_providers(
        &req.capacity_providers,
        &req.default_capacity_provider_strategy,
        &groups,
    )?;
    let c = modify_cluster(ecs, &req.cluster, |c| {
        c.capacity_providers = Some(req.capacity_providers.clone());
        c.default_capacity_provider_strategy = Some(req.default_capacity_provider_strategy.clone());
    })
    .await?;
    Ok(model::ecs::shapes::PutClusterCapacityProvidersResponse {
        cluster: Some(ecs.present_cluster(c, &[]).await?),
    })
}

fn merge_settings(c: &mut Cluster, new: &[model::ecs::shapes::ClusterSetting]) {
    let settings = c.settings.get_or_insert_with(Vec::new);
    for s in new {
        match settings.iter_mut().find(|e| e.name == s.name) {
            Some(e) => e.value = s.value.clone(),
            None => settings.push(s.clone()),
        }
    }
}

pub(crate) async fn update_cluster_settings(
    ecs: &Ecs,
    req: UpdateClusterSettingsRequest,
    _: &Caller,
) -> Result<UpdateClusterSettingsResponse, EcsError> {
    for s in &req.settings {
        let v = s.value.as_deref().unwrap_or("");
        if !matches!(v, "enabled" | "disabled" | "enhanced") {
            return invalid(format!("Invalid value '{v}' for cluster setting containerInsights: use enabled, enhanced or disabled."));
        }
    }
    let c = modify_cluster(ecs, &req.cluster, |c| merge_settings(c, &req.settings)).await?;
    let all = [
        ClusterField::Tags,
        ClusterField::Settings,
        ClusterField::Configurations,
    ];
    Ok(UpdateClusterSettingsResponse {
        cluster: Some(ecs.present_cluster(c, &all).await?),
    })
}

pub(crate) async fn delete_cluster(
    ecs: &Ecs,
    req: DeleteClusterRequest,
    _: &Caller,
) -> Result<DeleteClusterResponse, EcsError> {
    let name = cluster_name(Some(&req.cluster)).to_owned();
    let key = cluster_key(&name);
    let c = ecs
        .objects
        .retry(&key, || async {
            let (_, mut c, rev) = ecs.active_cluster(Some(&name)).await?;
            let instances = ecs
                .objects
                .list::<crate::objects::StoredInstance>(&instance_prefix(&name))
                .await?;
            if instances.iter().any(|(_, si, _)| {
                !si.fargate
                    && matches!(
                        si.instance.status,
                        Some(ContainerInstanceStatus::Active | ContainerInstanceStatus::Draining)
                    )
            }) {
                return Err(EcsError::ClusterContainsContainerInstances);
            }
            if ecs.service_census(&name).await?.any() {
                return Err(EcsError::ClusterContainsServices);
            }
            // Only Fargate's hidden capacity can hold tasks once no instance of the
            // user's is left.
            if instances
                .iter()
                .any(|(_, si, _)| si.usage.running + si.usage.pending > 0)
            {
                return Err(EcsError::ClusterContainsTasks);
            }
            c.status = Some(INACTIVE.into());
            Ok(Step::Commit(
                Txn::new()
                    .when(key.clone(), rev)
                    .put(key.clone(), encode(&c)?),
                c,
            ))
        })
        .await?;
    tracing::info!(cluster = %name, "Cluster deleted.");
    let mut c = ecs
        .present_cluster(c, &[ClusterField::Tags, ClusterField::Settings])
        .await?;
    c.registered_container_instances_count = Some(0);
    Ok(DeleteClusterResponse { cluster: Some(c) })
}

pub(crate) async fn discover_poll_endpoint(
    ecs: &Ecs,
    req: model::ecs::shapes::DiscoverPollEndpointRequest,
    _: &Caller,
) -> Result<model::ecs::shapes::DiscoverPollEndpointResponse, EcsError> {
    if let Some(c) = &req.cluster {
        ecs.active_cluster(Some(c)).await?;
    }
    let endpoint = ecs.poll_endpoint().to_owned();
    Ok(model::ecs::shapes::DiscoverPollEndpointResponse {
        endpoint: Some(endpoint.clone()),
        telemetry_endpoint: Some(endpoint.clone()),
        service_connect_endpoint: Some(endpoint),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::api::ServiceCensus;

    #[test]
    fn statistics_keep_ec2_and_fargate_apart_in_aws_order() {
        let tasks = TaskCensus {
            running_ec2: 3,
            running_fargate: 2,
            pending_ec2: 0,
            pending_fargate: 1,
        };
        let services = ServiceCensus {
            active_ec2: 1,
            active_fargate: 4,
            draining_ec2: 0,
            draining_fargate: 2,
        };
        let got: Vec<(String, String)> = compute_statistics(&tasks, &services)
            .into_iter()
            .map(|kv| (kv.name.unwrap_or_default(), kv.value.unwrap_or_default()))
            .collect();
        let want = [
            ("runningEC2TasksCount", "3"),
            ("runningFargateTasksCount", "2"),
            ("pendingEC2TasksCount", "0"),
            ("pendingFargateTasksCount", "1"),
            ("activeEC2ServiceCount", "1"),
            ("activeFargateServiceCount", "4"),
            ("drainingEC2ServiceCount", "0"),
            ("drainingFargateServiceCount", "2"),
        ];
        assert_eq!(
            got,
            want.iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>()
        );
    }
}
