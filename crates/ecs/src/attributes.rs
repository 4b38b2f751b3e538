//! Attributes on container instances: custom name/value pairs placement constraints
//! match against, beside the ones the agent reports.

use crate::container_instances::{is_builtin_attribute, modify_instance, MAX_CUSTOM_ATTRIBUTES};
use crate::error::{invalid, EcsError};
use crate::objects::instance_prefix;
use crate::pagination::{page_size, paginate};
use crate::{Caller, Ecs};
use model::ecs::names::{check_attribute_name, check_attribute_value};
use model::ecs::shapes::{
    Attribute, DeleteAttributesRequest, DeleteAttributesResponse, ListAttributesRequest,
    ListAttributesResponse, PutAttributesRequest, PutAttributesResponse, TargetType,
};
use std::collections::BTreeMap;

/// Groups attributes by target, checking each names one.
fn by_target(attrs: &[Attribute]) -> Result<BTreeMap<String, Vec<Attribute>>, EcsError> {
    if attrs.is_empty() {
        return invalid("attributes must contain at least one attribute.");
    }
    if attrs.len() > MAX_CUSTOM_ATTRIBUTES {
        return Err(EcsError::AttributeLimitExceeded(format!(
            "At most {MAX_CUSTOM_ATTRIBUTES} attributes can be given in one call."
        )));
    }
    let mut out: BTreeMap<String, Vec<Attribute>> = BTreeMap::new();
    for a in attrs {
        let Some(target) = a.target_id.clone().filter(|t| !t.is_empty()) else {
            return invalid(format!(
                "Attribute '{}' needs a targetId: the ARN or id of a container instance.",
                a.name
            ));
        };
        out.entry(target).or_default().push(a.clone());
    }
    Ok(out)
}

pub(crate) async fn put_attributes(
    ecs: &Ecs,
    req: PutAttributesRequest,
    _: &Caller,
) -> Result<PutAttributesResponse, EcsError> {
    let (cluster, _, _) = ecs.active_cluster(req.cluster.as_deref()).await?;
    for a in &req.attributes {
        check_attribute_name(&a.name).map_err(EcsError::InvalidParameter)?;
        if let Some(v) = &a.value {
            check_attribute_value(v).map_err(EcsError::InvalidParameter)?;
        }
    }
    for (target, attrs) in by_target(&req.attributes)? {
        let changed = modify_instance(ecs, &cluster, &target, |i| {
            let list = i.attributes.get_or_insert_with(Vec::new);
            for a in &attrs {
                let stored = Attribute { name: a.name.clone(), value: a.value.clone(), target_type: None, target_id: None };
                match list.iter_mut().find(|e| e.name == a.name) {
                    Some(e) => *e = stored,
                    None => list.push(stored),
                }
            }
            if list.iter().filter(|a| !is_builtin_attribute(&a.name)).count() > MAX_CUSTOM_ATTRIBUTES {
                return Err(EcsError::AttributeLimitExceeded(format!(
                    "The container instance '{target}' would have more than {MAX_CUSTOM_ATTRIBUTES} custom attributes."
                )));
            }
            Ok(())
        })
        .await?;
        if changed.is_none() {
            return Err(EcsError::TargetNotFound(format!(
                "Could not find the target '{target}' in cluster '{cluster}'."
            )));
        }
    }
    Ok(PutAttributesResponse {
        attributes: Some(req.attributes),
    })
}

pub(crate) async fn delete_attributes(
    ecs: &Ecs,
    req: DeleteAttributesRequest,
    _: &Caller,
) -> Result<DeleteAttributesResponse, EcsError> {
    let (cluster, _, _) = ecs.active_cluster(req.cluster.as_deref()).await?;
    for (target, attrs) in by_target(&req.attributes)? {
        let changed = modify_instance(ecs, &cluster, &target, |i| {
            let list = i.attributes.get_or_insert_with(Vec::new);
            list.retain(|e| {
                !attrs
                    .iter()
                    .any(|a| a.name == e.name && (a.value.is_none() || a.value == e.value))
            });
            Ok(())
        })
        .await?;
        if changed.is_none() {
            return Err(EcsError::TargetNotFound(format!(
                "Could not find the target '{target}' in cluster '{cluster}'."
            )));
        }
    }
    Ok(DeleteAttributesResponse {
        attributes: Some(req.attributes),
    })
}

pub(crate) async fn list_attributes(
    ecs: &Ecs,
    req: ListAttributesRequest,
    _: &Caller,
) -> Result<ListAttributesResponse, EcsError> {
    let (cluster, _, _) = ecs.active_cluster(req.cluster.as_deref()).await?;
    let size = page_size(req.max_results, 100)?;
    if req.attribute_value.is_some() && req.attribute_name.is_none() {
        return invalid("attributeValue can only be used together with attributeName.");
    }
    let mut items = Vec::new();
    for (_, si, _) in ecs
        .objects
        .list::<crate::objects::StoredInstance>(&instance_prefix(&cluster))
        .await?
    {
        let i = si.instance;
        if si.fargate || i.status == Some(model::ecs::status::ContainerInstanceStatus::Inactive) {
            continue;
        }
        let arn = i.container_instance_arn.clone().unwrap_or_default();
        for a in i.attributes.unwrap_or_default() {
            if req.attribute_name.as_ref().is_some_and(|n| *n != a.name) {
                continue;
            }
            if req.attribute_value.is_some() && req.attribute_value != a.value {
                continue;
            }
            let key = format!("{arn}\u{0}{}", a.name);
            items.push((
                key,
                Attribute {
                    target_type: Some(TargetType::ContainerInstance),
                    target_id: Some(arn.clone()),
                    ..a
                },
            ));
        }
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let page = paginate(items, req.next_token.as_deref(), size, false)?;
    Ok(ListAttributesResponse {
        attributes: Some(page.items),
        next_token: page.next_token,
    })
}
