//! DescribeTasks and ListTasks.

use crate::error::{invalid, EcsError};
use crate::objects::{task_prefix, StoredTask};
use crate::pagination::{page_size, paginate};
use crate::{cluster_name, Caller, Ecs};
use model::ecs::shapes::{
    DescribeTasksRequest, DescribeTasksResponse, DesiredStatus, Failure, ListTasksRequest,
    ListTasksResponse, TaskField,
};
use model::ecs::status::TaskStatus;

pub(crate) async fn describe_tasks(
    ecs: &Ecs,
    req: DescribeTasksRequest,
    _: &Caller,
) -> Result<DescribeTasksResponse, EcsError> {
    let (cluster, _, _) = ecs.active_cluster(req.cluster.as_deref()).await?;
    if req.tasks.is_empty() || req.tasks.len() > 100 {
        return invalid("tasks must name between 1 and 100 tasks.");
    }
    let with_tags = req.include.unwrap_or_default().contains(&TaskField::Tags);
    let mut tasks = Vec::new();
    let mut failures = Vec::new();
    for r in &req.tasks {
        match ecs.find_task(&cluster, r).await? {
            Some(mut st) => {
                if !with_tags {
                    st.task.tags = None;
                }
                tasks.push(st.task);
            }
            None => failures.push(Failure {
                arn: Some(ecs.task_arn_of(&cluster, r)),
                reason: Some("MISSING".into()),
                detail: None,
            }),
        }
    }
    Ok(DescribeTasksResponse {
        tasks: Some(tasks),
        failures: Some(failures),
    })
}

pub(crate) async fn list_tasks(
    ecs: &Ecs,
    req: ListTasksRequest,
    _: &Caller,
) -> Result<ListTasksResponse, EcsError> {
    let cluster = cluster_name(req.cluster.as_deref()).to_owned();
    ecs.active_cluster(Some(&cluster)).await?;
    let size = page_size(req.max_results, 100)?;
    if req.service_name.is_some() && req.started_by.is_some() {
        return invalid("serviceName and startedBy cannot both be given.");
    }
    let instance_arn = match &req.container_instance {
        Some(r) => match ecs.instance_id(&cluster, r) {
            Some(id) => Some(ecs.scope.container_instance(&cluster, &id)),
            None => {
                return invalid(format!(
                    "containerInstance '{r}' is not a container instance of cluster '{cluster}'."
                ))
            }
        },
        None => None,
    };
    if req.daemon_name.is_some() {
        return invalid("daemonName is not supported by Stevedore: it has no ECS daemons. List a DAEMON-strategy service's tasks with serviceName.");
    }
    // As on AWS, a filter on a service that does not exist is an error, not an empty
    // list: a script with a typo learns it.
    if let Some(s) = &req.service_name {
        if ecs.load_service(&cluster, s).await?.is_none() {
            return Err(EcsError::ServiceNotFound);
        }
    }
    // AWS accepts desiredStatus PENDING but never sets a task's desired status to it
    // (only lastStatus is ever PENDING), so the filter matches nothing.
    let desired = req.desired_status.unwrap_or(DesiredStatus::Running);
    let family_arn_prefix = req.family.as_ref().map(|f| {
        format!(
            "{}:",
            ecs.scope.task_definition(f, 1).trim_end_matches(":1")
        )
    });
    let service_group = req
        .service_name
        .as_ref()
        .map(|s| format!("service:{}", model::ecs::arn::short_name(s)));
    let items = ecs
        .objects
        .list::<StoredTask>(&task_prefix(&cluster))
        .await?
        .into_iter()
        .map(|(k, st, _)| (k, st.task))
        .filter(|(_, t)| match desired {
            DesiredStatus::Running => t.desired_status == Some(TaskStatus::Running),
            DesiredStatus::Stopped => t.desired_status == Some(TaskStatus::Stopped),
            DesiredStatus::Pending => false,
        })
        .filter(|(_, t)| {
            instance_arn
                .as_ref()
                .is_none_or(|a| t.container_instance_arn.as_ref() == Some(a))
        })
        .filter(|(_, t)| {
            family_arn_prefix.as_ref().is_none_or(|p| {
                t.task_definition_arn
                    .as_deref()
                    .is_some_and(|a| a.starts_with(p.as_str()))
            })
        })
        .filter(|(_, t)| {
            req.started_by
                .as_ref()
                .is_none_or(|s| t.started_by.as_ref() == Some(s))
        })
        .filter(|(_, t)| {
            service_group
                .as_ref()
                .is_none_or(|g| t.group.as_ref() == Some(g))
        })
        .filter(|(_, t)| req.launch_type.is_none_or(|lt| t.launch_type == Some(lt)))
        .map(|(k, t)| (k, t.task_arn.unwrap_or_default()))
        .collect();
    let page = paginate(items, req.next_token.as_deref(), size, false)?;
    Ok(ListTasksResponse {
        task_arns: Some(page.items),
        next_token: page.next_token,
    })
}
