//! Log groups: create, delete (with their streams and events), describe, and the
//! retention policy.

use crate::error::{invalid, LogsError};
use crate::event_store::StreamId;
use crate::objects::{
    encode, group_key, purge_key, stream_prefix, Step, StoredGroup, StoredStream, GROUP_PREFIX,
};
use crate::pagination::{page_size, paginate};
use crate::{Empty, Logs};
use model::logs::names::{
    check_log_group_name, check_log_group_name_member, check_retention_days, check_tags,
    log_group_arn, log_group_arn_star, log_group_from_identifier, MAX_TAGS,
};
use model::logs::shapes::{
    CreateLogGroupRequest, DeleteLogGroupRequest, DeleteRetentionPolicyRequest,
    DescribeLogGroupsRequest, DescribeLogGroupsResponse, LogGroup, LogGroupClass,
    PutRetentionPolicyRequest,
};
use store::{Revision, Txn};

/// Events deleted per event-store call when purging a deleted stream.
const PURGE_BATCH: usize = 1000;
/// The most log groups one DescribeLogGroups page holds.
const MAX_DESCRIBE_GROUPS: usize = 50;

/// The log group a request names with exactly one of `logGroupName` and
/// `logGroupIdentifier` (a name or an ARN).
pub(crate) fn resolve_group(
    name: Option<&str>,
    identifier: Option<&str>,
) -> Result<String, LogsError> {
    let name = match (name, identifier) {
        (Some(n), None) => n,
        (None, Some(id)) => match log_group_from_identifier(id) {
            Some(n) => n,
            None => {
                return invalid(format!(
                    "logGroupIdentifier '{id}' is not a log group name or log group ARN."
                ))
            }
        },
        (Some(_), Some(_)) => {
            return invalid(
                "LogGroupName and LogGroupIdentifier are mutually exclusive: specify only one.",
            )
        }
        (None, None) => return invalid("Either LogGroupName or LogGroupIdentifier is required."),
    };
    check_log_group_name(name).map_err(LogsError::InvalidParameter)?;
    Ok(name.to_owned())
}

impl Logs {
    /// Loads a log group, or fails with ResourceNotFoundException.
    pub(crate) async fn load_group(
        &self,
        group: &str,
    ) -> Result<(StoredGroup, Revision), LogsError> {
        self.objects
            .get::<StoredGroup>(&group_key(group))
            .await?
            .ok_or(LogsError::LogGroupNotFound)
    }

    /// Applies `change` to a group with compare-and-swap; fails if it does not exist.
    pub(crate) async fn update_group(
        &self,
        group: &str,
        change: impl Fn(&mut StoredGroup) -> Result<(), LogsError>,
    ) -> Result<(), LogsError> {
        let key = group_key(group);
        self.objects
            .retry(&key, || async {
                let (mut g, rev) = self.load_group(group).await?;
                change(&mut g)?;
                Ok(Step::Commit(
                    Txn::new()
                        .when(key.as_str(), rev)
                        .put(key.as_str(), encode(&g)?),
                    (),
                ))
            })
            .await
    }

    /// Deletes the events of a deleted stream incarnation from the event store in
    /// bounded batches, forgets the incarnation there, then drops its purge marker. Safe
    /// to repeat (the sweeper finishes purges a crash interrupted).
    pub(crate) async fn purge_events(
        &self,
        group: &str,
        stream: &str,
        incarnation: u64,
    ) -> Result<u64, LogsError> {
        let id = StreamId::new(group, stream, incarnation);
        let mut deleted = 0u64;
        loop {
            let target = id.clone();
            let removed = self
                .events(move |store| store.remove(&target, None, PURGE_BATCH))
                .await?;
            deleted += removed.events;
            if !removed.more {
                break;
            }
        }
        let target = id.clone();
        self.events(move |store| store.forget(&target)).await?;
        self.objects
            .commit(Txn::new().delete(purge_key(group, stream, incarnation)))
            .await?;
        Ok(deleted)
    }

    fn present_group(&self, name: &str, g: &StoredGroup, stored_bytes: i64) -> LogGroup {
        LogGroup {
            log_group_name: Some(name.to_owned()),
            creation_time: Some(g.creation_time),
            retention_in_days: g.retention_in_days,
            metric_filter_count: Some(0),
            arn: Some(log_group_arn_star(
                &self.scope.region,
                &self.scope.account_id,
                name,
            )),
            stored_bytes: Some(stored_bytes),
            kms_key_id: g.kms_key_id.clone(),
            log_group_class: Some(g.log_group_class.unwrap_or(LogGroupClass::Standard)),
            log_group_arn: Some(log_group_arn(
                &self.scope.region,
                &self.scope.account_id,
                name,
            )),
            deletion_protection_enabled: Some(false),
            ..LogGroup::default()
        }
    }
}

pub(crate) async fn create_log_group(
    logs: &Logs,
    req: CreateLogGroupRequest,
) -> Result<Empty, LogsError> {
    let name = req.log_group_name;
    check_log_group_name(&name).map_err(LogsError::InvalidParameter)?;
    let tags = req.tags.unwrap_or_default();
    if tags.len() > MAX_TAGS {
        return Err(LogsError::TooManyTags(format!(
            "A log group can have at most {MAX_TAGS} tags; {} were given.",
            tags.len()
        )));
    }
    check_tags(&tags).map_err(LogsError::InvalidParameter)?;
    let key = group_key(&name);
    let group = StoredGroup {
        creation_time: logs.now_ms(),
        retention_in_days: None,
        tags,
        log_group_class: req.log_group_class,
        kms_key_id: req.kms_key_id,
        stream_count: 0,
    };
    let value = encode(&group)?;
    if !logs
        .objects
        .commit(Txn::new().when(key.as_str(), 0).put(key.as_str(), value))
        .await?
    {
        return Err(LogsError::LogGroupAlreadyExists);
    }
    tracing::info!(log_group = %name, "Log group created.");
    Ok(Empty {})
}

pub(crate) async fn delete_log_group(
    logs: &Logs,
    req: DeleteLogGroupRequest,
) -> Result<Empty, LogsError> {
    let name = req.log_group_name;
    check_log_group_name(&name).map_err(LogsError::InvalidParameter)?;
    let key = group_key(&name);
    let streams = logs
        .objects
        .retry(&key, || async {
            let (_, rev) = logs.load_group(&name).await?;
            let streams = logs
                .objects
                .list::<StoredStream>(&stream_prefix(&name))
                .await?;
            let mut txn = Txn::new().when(key.as_str(), rev).delete(key.as_str());
            let mut doomed = Vec::with_capacity(streams.len());
            let group_prefix = stream_prefix(&name);
            for (skey, s, _) in streams {
                let stream = skey[group_prefix.len()..].to_owned();
                txn = txn
                    .delete(skey.as_str())
                    .put(purge_key(&name, &stream, s.incarnation), Vec::new());
                doomed.push((stream, s.incarnation));
            }
            Ok(Step::Commit(txn, doomed))
        })
        .await?;
    for (stream, incarnation) in &streams {
        logs.purge_events(&name, stream, *incarnation).await?;
    }
    tracing::info!(log_group = %name, streams = streams.len(), "Log group deleted.");
    Ok(Empty {})
}

pub(crate) async fn describe_log_groups(
    logs: &Logs,
    req: DescribeLogGroupsRequest,
) -> Result<DescribeLogGroupsResponse, LogsError> {
    let size = page_size(req.limit, MAX_DESCRIBE_GROUPS)?;
    if req.log_group_name_prefix.is_some() && req.log_group_name_pattern.is_some() {
        return invalid(
            "LogGroupNamePrefix and LogGroupNamePattern are mutually exclusive: specify only one.",
        );
    }
    let prefix = req.log_group_name_prefix.as_deref().unwrap_or("");
    if !prefix.is_empty() {
        check_log_group_name_member(prefix, "logGroupNamePrefix")
            .map_err(LogsError::InvalidParameter)?;
    }
    let wanted: Option<Vec<String>> = req
        .log_group_identifiers
        .as_ref()
        .map(|ids| {
            ids.iter()
                .map(|id| resolve_group(None, Some(id)))
                .collect::<Result<_, _>>()
        })
        .transpose()?;
    let key_prefix = format!("{GROUP_PREFIX}{prefix}");
    let all = logs.objects.list::<StoredGroup>(&key_prefix).await?;
    let items: Vec<(String, (String, StoredGroup))> = all
        .into_iter()
        .map(|(k, g, _)| (k[GROUP_PREFIX.len()..].to_owned(), g))
        .filter(|(name, _)| {
            req.log_group_name_pattern
                .as_deref()
                .is_none_or(|p| name.contains(p))
        })
        .filter(|(name, _)| wanted.as_ref().is_none_or(|w| w.contains(name)))
        .filter(|(_, g)| {
            req.log_group_class
                .is_none_or(|c| g.log_group_class.unwrap_or(LogGroupClass::Standard) == c)
        })
        .map(|(name, g)| (name.clone(), (name, g)))
        .collect();
    let page = paginate("groups", items, req.next_token.as_deref(), size, false)?;
    let mut out = Vec::with_capacity(page.items.len());
    for (name, g) in page.items {
        let stored: i64 = logs
            .objects
            .list::<StoredStream>(&stream_prefix(&name))
            .await?
            .iter()
            .map(|(_, s, _)| s.stored_bytes)
            .sum();
        out.push(logs.present_group(&name, &g, stored));
    }
    Ok(DescribeLogGroupsResponse {
        log_groups: Some(out),
        next_token: page.next_token,
    })
}

pub(crate) async fn put_retention_policy(
    logs: &Logs,
    req: PutRetentionPolicyRequest,
) -> Result<Empty, LogsError> {
    check_log_group_name(&req.log_group_name).map_err(LogsError::InvalidParameter)?;
    check_retention_days(req.retention_in_days).map_err(LogsError::InvalidParameter)?;
    let days = req.retention_in_days;
    logs.update_group(&req.log_group_name, |g| {
        g.retention_in_days = Some(days);
        Ok(())
    })
    .await?;
    tracing::info!(log_group = %req.log_group_name, retention_in_days = days, "Retention policy set.");
    Ok(Empty {})
}

pub(crate) async fn delete_retention_policy(
    logs: &Logs,
    req: DeleteRetentionPolicyRequest,
) -> Result<Empty, LogsError> {
    check_log_group_name(&req.log_group_name).map_err(LogsError::InvalidParameter)?;
    logs.update_group(&req.log_group_name, |g| {
        g.retention_in_days = None;
        Ok(())
    })
    .await?;
    Ok(Empty {})
}
