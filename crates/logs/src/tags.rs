//! Tags on log groups, through both the ARN-based operations (TagResource, UntagResource,
//! ListTagsForResource) and the deprecated name-based ones (TagLogGroup, UntagLogGroup,
//! ListTagsLogGroup). A log group is named by its ARN with or without the trailing `:*`.

use crate::error::{invalid, LogsError};
use crate::{Empty, Logs};
use model::logs::names::{check_log_group_name, check_tags, log_group_from_identifier, MAX_TAGS};
use model::logs::shapes::{
    ListTagsForResourceRequest, ListTagsForResourceResponse, ListTagsLogGroupRequest,
    ListTagsLogGroupResponse, TagLogGroupRequest, TagResourceRequest, UntagLogGroupRequest,
    UntagResourceRequest,
};
use std::collections::BTreeMap;

/// The log group a `resourceArn` names.
fn group_of_arn(arn: &str) -> Result<String, LogsError> {
    if !arn.starts_with("arn:") {
        return invalid(format!("Invalid resourceArn '{arn}': expected an ARN such as arn:aws:logs:<region>:<account>:log-group:<name>."));
    }
    match log_group_from_identifier(arn) {
        Some(name) if check_log_group_name(name).is_ok() => Ok(name.to_owned()),
        _ => invalid(format!(
            "Invalid resourceArn '{arn}': only log group ARNs can be tagged on this server."
        )),
    }
}

async fn add_tags(
    logs: &Logs,
    group: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), LogsError> {
    check_tags(tags).map_err(LogsError::InvalidParameter)?;
    logs.update_group(group, |g| {
        let mut merged = g.tags.clone();
        merged.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        if merged.len() > MAX_TAGS {
            return Err(LogsError::TooManyTags(format!(
                "A log group can have at most {MAX_TAGS} tags; this request would leave {}.",
                merged.len()
            )));
        }
        g.tags = merged;
        Ok(())
    })
    .await
}

async fn remove_tags(logs: &Logs, group: &str, keys: &[String]) -> Result<(), LogsError> {
    logs.update_group(group, |g| {
        for k in keys {
            g.tags.remove(k);
        }
        Ok(())
    })
    .await
}

/// A log group's tags, for `aws:ResourceTag/KEY` (log streams carry none, as the
/// Service Authorization Reference lists them): nothing for another scope's group or one
/// that does not exist.
pub(crate) async fn resource_tags(logs: &Logs, arn: &str) -> Vec<(String, String)> {
    let mut parts = arn.splitn(6, ':');
    let (region, account) = (parts.nth(3), parts.next());
    if region != Some(logs.scope.region.as_str()) || account != Some(logs.scope.account_id.as_str())
    {
        return Vec::new();
    }
    match group_of_arn(arn) {
        Ok(group) => tags_of(logs, &group)
            .await
            .map(|t| t.into_iter().collect())
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

async fn tags_of(logs: &Logs, group: &str) -> Result<BTreeMap<String, String>, LogsError> {
    Ok(logs.load_group(group).await?.0.tags)
}

/// ResourceNotFoundException for an ARN, as TagResource reports a missing group.
fn arn_not_found(err: LogsError, arn: &str) -> LogsError {
    match err {
        LogsError::LogGroupNotFound => {
            LogsError::ResourceNotFound(format!("The specified resource does not exist: {arn}"))
        }
        other => other,
    }
}

pub(crate) async fn tag_resource(logs: &Logs, req: TagResourceRequest) -> Result<Empty, LogsError> {
    let group = group_of_arn(&req.resource_arn)?;
    add_tags(logs, &group, &req.tags)
        .await
        .map_err(|e| arn_not_found(e, &req.resource_arn))?;
    Ok(Empty {})
}

pub(crate) async fn untag_resource(
    logs: &Logs,
    req: UntagResourceRequest,
) -> Result<Empty, LogsError> {
    let group = group_of_arn(&req.resource_arn)?;
    remove_tags(logs, &group, &req.tag_keys)
        .await
        .map_err(|e| arn_not_found(e, &req.resource_arn))?;
    Ok(Empty {})
}

pub(crate) async fn list_tags_for_resource(
    logs: &Logs,
    req: ListTagsForResourceRequest,
) -> Result<ListTagsForResourceResponse, LogsError> {
    let group = group_of_arn(&req.resource_arn)?;
    let tags = tags_of(logs, &group)
        .await
        .map_err(|e| arn_not_found(e, &req.resource_arn))?;
    Ok(ListTagsForResourceResponse { tags: Some(tags) })
}

pub(crate) async fn tag_log_group(
    logs: &Logs,
    req: TagLogGroupRequest,
) -> Result<Empty, LogsError> {
    check_log_group_name(&req.log_group_name).map_err(LogsError::InvalidParameter)?;
    add_tags(logs, &req.log_group_name, &req.tags).await?;
    Ok(Empty {})
}

pub(crate) async fn untag_log_group(
    logs: &Logs,
    req: UntagLogGroupRequest,
) -> Result<Empty, LogsError> {
    check_log_group_name(&req.log_group_name).map_err(LogsError::InvalidParameter)?;
    remove_tags(logs, &req.log_group_name, &req.tags).await?;
    Ok(Empty {})
}

pub(crate) async fn list_tags_log_group(
    logs: &Logs,
    req: ListTagsLogGroupRequest,
) -> Result<ListTagsLogGroupResponse, LogsError> {
    check_log_group_name(&req.log_group_name).map_err(LogsError::InvalidParameter)?;
    Ok(ListTagsLogGroupResponse {
        tags: Some(tags_of(logs, &req.log_group_name).await?),
    })
}
