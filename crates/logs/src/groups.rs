//! Log groups: create, delete (with their streams, events and metric filters), describe
//! (DescribeLogGroups and the newer ListLogGroups), and the retention policy.

use crate::error::{invalid, LogsError};
use crate::event_store::StreamId;
use crate::objects::{
    encode, group_key, metric_filter_prefix, purge_key, stream_prefix, Step, StoredGroup,
    StoredStream, GROUP_PREFIX,
};
use crate::pagination::{page_size, paginate};
use crate::{Empty, Logs};
use model::logs::names::{
    check_log_group_name, check_log_group_name_member, check_retention_days, check_tags,
    log_group_arn, log_group_arn_star, log_group_from_identifier, MAX_TAGS,
};
use model::logs::shapes::{
    CreateLogGroupRequest, DeleteLogGroupRequest, DeleteRetentionPolicyRequest,
    DescribeLogGroupsRequest, DescribeLogGroupsResponse, ListLogGroupsRequest,
    ListLogGroupsResponse, LogGroup, LogGroupClass, LogGroupSummary, PutRetentionPolicyRequest,
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

    fn present_group(
        &self,
        name: &str,
        g: &StoredGroup,
        stored_bytes: i64,
        metric_filters: i32,
    ) -> LogGroup {
        LogGroup {
            log_group_name: Some(name.to_owned()),
            creation_time: Some(g.creation_time),
            retention_in_days: g.retention_in_days,
            metric_filter_count: Some(metric_filters),
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
            // Its metric filters go with it (PutMetricFilter rewrites the group, so one
            // added meanwhile makes this commit retry).
            for (fkey, _, _) in logs
                .objects
                .list::<crate::metric_filters::StoredMetricFilter>(&metric_filter_prefix(&name))
                .await?
            {
                txn = txn.delete(fkey);
            }
            txn = txn.delete(crate::resource_policies::group_policy_key(logs, &name));
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
        let filters = logs.metric_filter_count(&name).await?;
        out.push(logs.present_group(&name, &g, stored, filters));
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

/// The most log groups one ListLogGroups page holds.
const MAX_LIST_GROUPS: usize = 1000;
/// ListLogGroups' page size when the request sets no `limit`.
const DEFAULT_LIST_GROUPS: usize = 50;

/// ListLogGroups' `logGroupNamePattern`: up to five `|`-separated alternatives, each 3–24
/// characters of `[.-_/#A-Za-z0-9]`, anchored at the start when it begins with `^`,
/// otherwise matched as a substring (case-sensitively).
fn name_pattern(pattern: &str) -> Result<Vec<(bool, &str)>, LogsError> {
    let refuse = || {
        invalid(format!("1 validation error detected: Value '{pattern}' at 'logGroupNamePattern' failed to satisfy constraint: Member must satisfy regular expression pattern: (\\^?[\\.\\-_\\/#A-Za-z0-9]{{3,24}})(\\|\\^?[\\.\\-_\\/#A-Za-z0-9]{{3,24}}){{0,4}}"))
    };
    let alternatives: Vec<&str> = pattern.split('|').collect();
    if alternatives.len() > 5 {
        return refuse();
    }
    let mut out = Vec::with_capacity(alternatives.len());
    for alt in alternatives {
        let (anchored, text) = alt.strip_prefix('^').map_or((false, alt), |t| (true, t));
        let ok_chars = text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | '#'));
        if !(3..=24).contains(&text.len()) || !ok_chars {
            return refuse();
        }
        out.push((anchored, text));
    }
    Ok(out)
}

pub(crate) async fn list_log_groups(
    logs: &Logs,
    req: ListLogGroupsRequest,
) -> Result<ListLogGroupsResponse, LogsError> {
    let size = match req.limit {
        None => DEFAULT_LIST_GROUPS,
        limit => page_size(limit, MAX_LIST_GROUPS)?,
    };
    let pattern = req
        .log_group_name_pattern
        .as_deref()
        .map(name_pattern)
        .transpose()?;
    if let Some(ids) = &req.account_identifiers {
        if ids.len() > 20 {
            return invalid("1 validation error detected: Value at 'accountIdentifiers' failed to satisfy constraint: Member must have length less than or equal to 20");
        }
    }
    let tag_filters = req.log_group_tags.clone().unwrap_or_default();
    if req.log_group_tags.is_some() && !(1..=5).contains(&tag_filters.len()) {
        return invalid("1 validation error detected: Value at 'logGroupTags' failed to satisfy constraint: Member must have length between 1 and 5");
    }
    // No log group here has a data source or a field index (this server makes neither),
    // so filtering on them selects nothing rather than being ignored.
    let none_can_match = req.data_sources.as_ref().is_some_and(|d| !d.is_empty())
        || req
            .field_index_names
            .as_ref()
            .is_some_and(|f| !f.is_empty());
    // Linked source accounts do not exist here: only this account's groups are listed,
    // and only if the account identifiers (when given) include it.
    let own_account_excluded = req.include_linked_accounts == Some(true)
        && req
            .account_identifiers
            .as_ref()
            .is_some_and(|ids| !ids.is_empty() && !ids.contains(&logs.scope.account_id));
    let all = if none_can_match || own_account_excluded {
        Vec::new()
    } else {
        logs.objects.list::<StoredGroup>(GROUP_PREFIX).await?
    };
    let items: Vec<(String, LogGroupSummary)> = all
        .into_iter()
        .map(|(k, g, _)| (k[GROUP_PREFIX.len()..].to_owned(), g))
        .filter(|(name, _)| {
            pattern.as_ref().is_none_or(|alts| {
                alts.iter().any(|(anchored, text)| {
                    if *anchored {
                        name.starts_with(text)
                    } else {
                        name.contains(text)
                    }
                })
            })
        })
        .filter(|(_, g)| {
            req.log_group_class
                .is_none_or(|c| g.log_group_class.unwrap_or(LogGroupClass::Standard) == c)
        })
        .filter(|(_, g)| {
            tag_filters.iter().all(|f| {
                g.tags.get(&f.key).is_some_and(|v| {
                    f.values
                        .as_ref()
                        .is_none_or(|vs| vs.is_empty() || vs.contains(v))
                })
            })
        })
        .map(|(name, g)| {
            let summary = LogGroupSummary {
                log_group_arn: Some(log_group_arn(
                    &logs.scope.region,
                    &logs.scope.account_id,
                    &name,
                )),
                log_group_class: Some(g.log_group_class.unwrap_or(LogGroupClass::Standard)),
                log_group_name: Some(name.clone()),
            };
            (name, summary)
        })
        .collect();
    let page = paginate("listgroups", items, req.next_token.as_deref(), size, false)?;
    Ok(ListLogGroupsResponse {
        log_groups: Some(page.items),
        next_token: page.next_token,
    })
}
