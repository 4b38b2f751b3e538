//! What each ECS operation needs permission for, as the Service Authorization Reference
//! lists it ("Actions, resources, and condition keys for Amazon Elastic Container
//! Service"): the `ecs:` action, the resource ARN (cluster, task definition, task,
//! service, container instance, or `*`), the `ecs:cluster` / `ecs:task-definition` /
//! `ecs:container-instances` condition keys, request tags, and `iam:PassRole` on the roles
//! a launch hands to ECS (the task definition's `taskRoleArn` and `executionRoleArn`, a
//! service's `role`), as ECS checks it.
//!
//! The mapping reads only the fields it needs; a body that does not decode maps to what
//! can be read and leaves the error to the handler.

use crate::error::EcsError;
use crate::{Ecs, Operation};
use model::ecs::arn::ArnScope;
use model::ecs::shapes::Tag;
use policy::ContextValue;
use serde::Deserialize;
use wire::Access;

const ECS: &str = "ecs";
/// The service principal task and execution roles are passed to.
const TASKS_PRINCIPAL: &str = "ecs-tasks.amazonaws.com";
/// The service principal a service's load-balancer role is passed to.
const ECS_PRINCIPAL: &str = "ecs.amazonaws.com";

/// The request members authorization looks at (other members are skipped unread).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Fields {
    cluster: Option<String>,
    cluster_name: Option<String>,
    clusters: Option<Vec<String>>,
    task_definition: Option<String>,
    task_definitions: Option<Vec<String>>,
    task: Option<String>,
    tasks: Option<Vec<String>>,
    service: Option<String>,
    service_name: Option<String>,
    services: Option<Vec<String>>,
    container_instance: Option<String>,
    container_instances: Option<Vec<String>>,
    resource_arn: Option<String>,
    tags: Option<Vec<Tag>>,
    tag_keys: Option<Vec<String>>,
    role: Option<String>,
    attributes: Option<Vec<Target>>,
    service_deployment_arn: Option<String>,
    service_deployment_arns: Option<Vec<String>>,
    service_revision_arns: Option<Vec<String>>,
}

/// An attribute's target (PutAttributes, DeleteAttributes).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Target {
    target_id: Option<String>,
}

/// The task definition a launch names, resolved: its ARN and the roles it passes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LaunchedDefinition {
    /// The task definition's ARN (revision resolved).
    pub arn: String,
    /// Its `taskRoleArn`.
    pub task_role: Option<String>,
    /// Its `executionRoleArn`.
    pub execution_role: Option<String>,
}

impl Ecs {
    /// What `op` with JSON `body` needs: decodes the fields, resolves the task definition
    /// a launch names (for its ARN and roles), then maps.
    pub(crate) async fn accesses(
        &self,
        op: Operation,
        body: &[u8],
    ) -> Result<Vec<Access>, EcsError> {
        // The hottest reads map to `*` whatever they ask: their body is not decoded twice.
        let fields: Fields = if reads_no_fields(op) {
            Fields::default()
        } else {
            serde_json::from_slice(body).unwrap_or_default()
        };
        let launched = match (op, fields.task_definition.as_deref()) {
            (
                Operation::RunTask
                | Operation::StartTask
                | Operation::CreateService
                | Operation::UpdateService
                | Operation::CreateTaskSet,
                Some(r),
            ) => self.launched_definition(r).await?,
            _ => None,
        };
        Ok(map(&self.scope, op, &fields, launched.as_ref()))
    }

    async fn launched_definition(&self, r: &str) -> Result<Option<LaunchedDefinition>, EcsError> {
        let Ok(parsed) = self.parse_task_def_ref(r) else {
            return Ok(None);
        };
        Ok(self
            .load_task_definition(&parsed)
            .await?
            .map(|(stored, _)| {
                let td = stored.task_definition;
                LaunchedDefinition {
                    arn: td.task_definition_arn.unwrap_or_default(),
                    task_role: td.task_role_arn,
                    execution_role: td.execution_role_arn,
                }
            }))
    }
}

/// Operations whose access is `ecs:<Op>` on `*` whatever the request says (no resource
/// type, no condition key): [`map`] reads none of their fields (a test holds it to that).
fn reads_no_fields(op: Operation) -> bool {
    use Operation as Op;
    matches!(
        op,
        Op::DescribeTaskDefinition
            | Op::ListClusters
            | Op::ListTaskDefinitions
            | Op::ListTaskDefinitionFamilies
    )
}

/// The accesses of `op` given its decoded `fields` and the task definition it launches.
pub(crate) fn map(
    scope: &ArnScope,
    op: Operation,
    f: &Fields,
    launched: Option<&LaunchedDefinition>,
) -> Vec<Access> {
    use Operation as Op;
    let action = op.name();
    let cluster_name = short(f.cluster.as_deref().unwrap_or("default"));
    // Built only by the operations that name a cluster (most calls, the hottest reads
    // included, do not).
    let cluster = std::cell::LazyCell::new(|| {
        arn_or(f.cluster.as_deref().unwrap_or("default"), |n| {
            scope.cluster(n)
        })
    });
    let on = |resource: String| Access::new(ECS, action, resource);
    let in_cluster = |resource: String| on(resource).with_key("ecs:cluster", cluster.as_str());
    let each = |names: Option<&Vec<String>>, arn: &dyn Fn(&str) -> String| -> Vec<Access> {
        names
            .filter(|n| !n.is_empty())
            .map(|n| n.iter().map(|x| in_cluster(arn_or(x, arn))).collect())
            .unwrap_or_else(|| vec![in_cluster(any())])
    };
    let task_def = || match launched {
        Some(l) => l.arn.clone(),
        None => f
            .task_definition
            .as_deref()
            .map_or_else(any, |r| unresolved_task_definition(scope, r)),
    };
    let tags = || tag_pairs(f.tags.as_deref());
    let mut out = match op {
        Op::CreateCluster => vec![
            on(scope.cluster(f.cluster_name.as_deref().unwrap_or("default")))
                .with_request_tags(tags()),
        ],
        Op::DescribeClusters => match f.clusters.as_ref().filter(|c| !c.is_empty()) {
            Some(cs) => cs
                .iter()
                .map(|c| on(arn_or(c, |n| scope.cluster(n))))
                .collect(),
            None => vec![on(scope.cluster("default"))],
        },
        Op::UpdateCluster
        | Op::UpdateClusterSettings
        | Op::DeleteCluster
        | Op::PutClusterCapacityProviders
        | Op::RegisterContainerInstance
        | Op::DeregisterContainerInstance
        | Op::ListContainerInstances
        | Op::SubmitTaskStateChange
        | Op::SubmitContainerStateChange
        | Op::SubmitAttachmentStateChanges
        | Op::ListAttributes => vec![on((*cluster).clone()).with_request_tags(tags())],
        Op::DescribeContainerInstances | Op::UpdateContainerInstancesState => {
            each(f.container_instances.as_ref(), &|id| {
                scope.container_instance(cluster_name, id)
            })
        }
        Op::PutAttributes | Op::DeleteAttributes => {
            let targets: Vec<String> = f
                .attributes
                .iter()
                .flatten()
                .filter_map(|a| a.target_id.clone())
                .collect();
            each(Some(&targets), &|id| {
                scope.container_instance(cluster_name, id)
            })
        }
        Op::DiscoverPollEndpoint => {
            vec![on(f.container_instance.as_deref().map_or_else(any, |c| {
                arn_or(c, |id| scope.container_instance(cluster_name, id))
            }))]
        }
        Op::TagResource | Op::UntagResource | Op::ListTagsForResource => {
            let mut a = on(f.resource_arn.clone().unwrap_or_else(any)).with_request_tags(tags());
            if let Some(keys) = &f.tag_keys {
                a = a.with_key("aws:TagKeys", ContextValue::strings(keys.iter().cloned()));
            }
            vec![a]
        }
        Op::RunTask => vec![in_cluster(task_def()).with_request_tags(tags())],
        Op::StartTask => {
            let instances: Vec<String> = f
                .container_instances
                .iter()
                .flatten()
                .map(|c| arn_or(c, |id| scope.container_instance(cluster_name, id)))
                .collect();
            vec![in_cluster(task_def())
                .with_key("ecs:container-instances", ContextValue::strings(instances))
                .with_request_tags(tags())]
        }
        Op::StopTask => {
            vec![in_cluster(f.task.as_deref().map_or_else(any, |t| {
                arn_or(t, |id| scope.task(cluster_name, id))
            }))]
        }
        Op::DescribeTasks | Op::UpdateTaskProtection | Op::GetTaskProtection => {
            each(f.tasks.as_ref(), &|id| scope.task(cluster_name, id))
        }
        Op::ListTasks => vec![in_cluster(
            f.container_instance.as_deref().map_or_else(any, |c| {
                arn_or(c, |id| scope.container_instance(cluster_name, id))
            }),
        )],
        Op::CreateService | Op::UpdateService | Op::DeleteService | Op::CreateTaskSet => {
            let name = f
                .service_name
                .as_deref()
                .or(f.service.as_deref())
                .unwrap_or("");
            let mut a = in_cluster(arn_or(name, |n| scope.service(cluster_name, n)))
                .with_request_tags(tags());
            if f.task_definition.is_some() {
                a = a.with_key("ecs:task-definition", task_def());
            }
            vec![a]
        }
        // Listing deployments, DescribeTaskSets and UpdateServicePrimaryTaskSet name the
        // service; the others name their deployment or revision ARN.
        Op::ListServiceDeployments | Op::DescribeTaskSets | Op::UpdateServicePrimaryTaskSet => {
            let name = f.service.as_deref().unwrap_or("");
            vec![in_cluster(arn_or(name, |n| scope.service(cluster_name, n)))]
        }
        Op::StopServiceDeployment => {
            vec![on(f.service_deployment_arn.clone().unwrap_or_else(any))]
        }
        Op::DescribeServiceDeployments | Op::DescribeServiceRevisions => {
            let arns = match op {
                Op::DescribeServiceDeployments => f.service_deployment_arns.as_ref(),
                _ => f.service_revision_arns.as_ref(),
            };
            match arns.filter(|a| !a.is_empty()) {
                Some(a) => a.iter().map(|x| on(x.clone())).collect(),
                None => vec![on(any())],
            }
        }
        Op::DescribeServices => each(f.services.as_ref(), &|n| scope.service(cluster_name, n)),
        Op::ListServices | Op::ListServicesByNamespace => vec![in_cluster(any())],
        Op::DeleteTaskDefinitions => match f.task_definitions.as_ref().filter(|t| !t.is_empty()) {
            Some(ts) => ts
                .iter()
                .map(|t| on(unresolved_task_definition(scope, t)))
                .collect(),
            None => vec![on(any())],
        },
        Op::RegisterTaskDefinition => vec![on(any()).with_request_tags(tags())],
        // Actions without a resource type (ListClusters, DescribeTaskDefinition, the task
        // definition and account-setting operations), and operations Stevedore does not
        // serve, which are authorized as AWS would before being answered.
        _ => vec![on(any())],
    };
    out.extend(pass_roles(scope, op, f, launched));
    out
}

/// `iam:PassRole` for each role a launch hands to ECS.
fn pass_roles(
    scope: &ArnScope,
    op: Operation,
    f: &Fields,
    launched: Option<&LaunchedDefinition>,
) -> Vec<Access> {
    use Operation as Op;
    if !matches!(
        op,
        Op::RunTask | Op::StartTask | Op::CreateService | Op::UpdateService | Op::CreateTaskSet
    ) {
        return Vec::new();
    }
    let pass = |role: &str, to: &'static str| {
        Access::new("iam", "PassRole", role_arn(scope, role)).with_key("iam:PassedToService", to)
    };
    let mut out = Vec::new();
    if let Some(l) = launched {
        for role in [&l.task_role, &l.execution_role].into_iter().flatten() {
            out.push(pass(role, TASKS_PRINCIPAL));
        }
    }
    if let (Op::CreateService, Some(role)) = (op, f.role.as_deref()) {
        out.push(pass(role, ECS_PRINCIPAL));
    }
    out
}

fn any() -> String {
    "*".to_owned()
}

/// `s` when it is an ARN, else the ARN `arn` builds from it (a name or id).
fn arn_or(s: &str, arn: impl Fn(&str) -> String) -> String {
    if s.starts_with("arn:") {
        s.to_owned()
    } else {
        arn(s)
    }
}

/// A cluster's name, from its name or ARN.
fn short(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// A role's ARN, from its ARN or name.
fn role_arn(scope: &ArnScope, role: &str) -> String {
    arn_or(role, |n| {
        format!("arn:aws:iam::{}:role/{n}", scope.account_id)
    })
}

/// A task definition reference that did not resolve, as an ARN (a bare family: any of
/// its revisions).
fn unresolved_task_definition(scope: &ArnScope, r: &str) -> String {
    arn_or(r, |fr| {
        let revision = if fr.contains(':') { "" } else { ":*" };
        format!(
            "arn:aws:ecs:{}:{}:task-definition/{fr}{revision}",
            scope.region, scope.account_id
        )
    })
}

/// ECS tags as (key, value) pairs for condition keys (request or resource tags); a tag
/// without a key has none to set.
pub(crate) fn tag_pairs(tags: Option<&[Tag]>) -> Vec<(String, String)> {
    tags.unwrap_or_default()
        .iter()
        .filter_map(|t| Some((t.key.clone()?, t.value.clone().unwrap_or_default())))
        .collect()
}

#[cfg(test)]
#[path = "authz_tests.rs"]
mod tests;
