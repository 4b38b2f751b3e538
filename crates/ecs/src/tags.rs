//! Tags on any taggable ECS resource, addressed by ARN.

use crate::container_instances::modify_instance;
use crate::error::{invalid, EcsError};
use crate::objects::{
    cluster_key, encode, task_key, taskdef_key, Step, StoredTask, StoredTaskDefinition,
};
use crate::services::{service_key, StoredService};
use crate::{Caller, Ecs};
use model::ecs::arn::EcsResource;
use model::ecs::names::{check_tags, merge_tags};
use model::ecs::shapes::{
    Cluster, ListTagsForResourceRequest, ListTagsForResourceResponse, Tag, TagResourceRequest,
    TagResourceResponse, UntagResourceRequest, UntagResourceResponse,
};
use store::Txn;

/// A change to one resource's tag list.
enum Change<'a> {
    Add(&'a [Tag]),
    Remove(&'a [String]),
}

impl Change<'_> {
    fn apply(&self, tags: &mut Vec<Tag>) -> Result<(), EcsError> {
        match self {
            Self::Add(new) => {
                merge_tags(tags, new);
                check_tags(tags).map_err(EcsError::InvalidParameter)
            }
            Self::Remove(keys) => {
                tags.retain(|t| !keys.iter().any(|k| Some(k) == t.key.as_ref()));
                Ok(())
            }
        }
    }
}

fn not_found(arn: &str) -> EcsError {
    EcsError::ResourceNotFound(format!("The specified resource '{arn}' was not found."))
}

/// Reads (with `None`) or changes the tags of the resource `arn` names.
async fn with_tags(ecs: &Ecs, arn: &str, change: Option<Change<'_>>) -> Result<Vec<Tag>, EcsError> {
    let resource = ecs
        .scope
        .parse(arn)
        .map_err(|e| EcsError::InvalidParameter(e.to_string()))?;
    match resource {
        EcsResource::Cluster { name } => {
            let key = cluster_key(&name);
            ecs.objects
                .retry(&key, || async {
                    let (_, mut c, rev) = ecs.active_cluster(Some(&name)).await?;
                    let mut tags = c.tags.clone().unwrap_or_default();
                    let Some(change) = &change else {
                        return Ok(Step::Done(tags));
                    };
                    change.apply(&mut tags)?;
                    c.tags = Some(tags.clone());
                    Ok(Step::Commit(
                        Txn::new()
                            .when(key.clone(), rev)
                            .put(key.clone(), encode::<Cluster>(&c)?),
                        tags,
                    ))
                })
                .await
        }
        EcsResource::TaskDefinition { family, revision } => {
            let key = taskdef_key(&family, revision);
            ecs.objects
                .retry(&key, || async {
                    let Some((mut s, rev)) = ecs.objects.get::<StoredTaskDefinition>(&key).await?
                    else {
                        return Err(not_found(arn));
                    };
                    let Some(change) = &change else {
                        return Ok(Step::Done(s.tags));
                    };
                    change.apply(&mut s.tags)?;
                    Ok(Step::Commit(
                        Txn::new()
                            .when(key.clone(), rev)
                            .put(key.clone(), encode(&s)?),
                        s.tags,
                    ))
                })
                .await
        }
        EcsResource::ContainerInstance { cluster, id } => {
            let out = modify_instance(ecs, &cluster, &id, |i| {
                let mut tags = i.tags.clone().unwrap_or_default();
                if let Some(change) = &change {
                    change.apply(&mut tags)?;
                }
                i.tags = Some(tags);
                Ok(())
            });
            if change.is_none() {
                return match ecs.load_instance(&cluster, &id).await? {
                    Some((si, _, _)) => Ok(si.instance.tags.unwrap_or_default()),
                    None => Err(not_found(arn)),
                };
            }
            out.await?
                .map(|i| i.tags.unwrap_or_default())
                .ok_or_else(|| not_found(arn))
        }
        EcsResource::Service { cluster, name } => {
            record_tags(
                ecs,
                &service_key(&cluster, &name),
                arn,
                change,
                |s: &mut StoredService| &mut s.service.tags,
            )
            .await
        }
        EcsResource::Task { cluster, id } => {
            record_tags(
                ecs,
                &task_key(&cluster, &id),
                arn,
                change,
                |t: &mut StoredTask| &mut t.task.tags,
            )
            .await
        }
        EcsResource::ServiceDeployment { .. } | EcsResource::ServiceRevision { .. } => {
            Err(not_found(arn))
        }
    }
}

/// Reads or changes the tags of the record at `key` (a service or a task), which
/// `tags_of` finds in it; a compare-and-swap against the controllers and agents that
/// write the same record.
async fn record_tags<T>(
    ecs: &Ecs,
    key: &str,
    arn: &str,
    change: Option<Change<'_>>,
    tags_of: fn(&mut T) -> &mut Option<Vec<Tag>>,
) -> Result<Vec<Tag>, EcsError>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    ecs.objects
        .retry(key, || async {
            let Some((mut record, rev)) = ecs.objects.get::<T>(key).await? else {
                return Err(not_found(arn));
            };
            let slot = tags_of(&mut record);
            let mut tags = slot.clone().unwrap_or_default();
            let Some(change) = &change else {
                return Ok(Step::Done(tags));
            };
            change.apply(&mut tags)?;
            *slot = Some(tags.clone());
            Ok(Step::Commit(
                Txn::new()
                    .when(key.to_owned(), rev)
                    .put(key.to_owned(), encode(&record)?),
                tags,
            ))
        })
        .await
}

/// The tags of the resource `arn` names, for `aws:ResourceTag/KEY`. Anything unknown or
/// unreadable: no tags (the handler then answers the request's own error).
pub(crate) async fn resource_tags(ecs: &Ecs, arn: &str) -> Vec<(String, String)> {
    let tags = with_tags(ecs, arn, None).await.ok();
    crate::authz::tag_pairs(tags.as_deref())
}

pub(crate) async fn tag_resource(
    ecs: &Ecs,
    req: TagResourceRequest,
    _: &Caller,
) -> Result<TagResourceResponse, EcsError> {
    if req.tags.is_empty() {
        return invalid("tags must contain at least one tag.");
    }
    check_tags(&req.tags).map_err(EcsError::InvalidParameter)?;
    with_tags(ecs, &req.resource_arn, Some(Change::Add(&req.tags))).await?;
    Ok(TagResourceResponse {})
}

pub(crate) async fn untag_resource(
    ecs: &Ecs,
    req: UntagResourceRequest,
    _: &Caller,
) -> Result<UntagResourceResponse, EcsError> {
    with_tags(ecs, &req.resource_arn, Some(Change::Remove(&req.tag_keys))).await?;
    Ok(UntagResourceResponse {})
}

pub(crate) async fn list_tags_for_resource(
    ecs: &Ecs,
    req: ListTagsForResourceRequest,
    _: &Caller,
) -> Result<ListTagsForResourceResponse, EcsError> {
    let tags = with_tags(ecs, &req.resource_arn, None).await?;
    Ok(ListTagsForResourceResponse { tags: Some(tags) })
}
