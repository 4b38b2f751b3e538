//! Log streams: create, delete (with their events) and describe.

use crate::error::{invalid, LogsError};
use crate::groups::resolve_group;
use crate::objects::{encode, group_key, purge_key, stream_key, stream_prefix, Step, StoredStream};
use crate::pagination::{page_size, paginate};
use crate::{Empty, Logs};
use model::logs::names::{
    check_log_group_name, check_log_stream_name, check_log_stream_name_member, log_stream_arn,
};
use model::logs::shapes::{
    CreateLogStreamRequest, DeleteLogStreamRequest, DescribeLogStreamsRequest,
    DescribeLogStreamsResponse, LogStream, OrderBy,
};
use store::{Revision, Txn};

/// The most log streams one DescribeLogStreams page holds.
const MAX_DESCRIBE_STREAMS: usize = 50;

impl Logs {
    /// Loads a log stream of an existing group, or fails with ResourceNotFoundException
    /// naming whichever is missing.
    pub(crate) async fn load_stream(
        &self,
        group: &str,
        stream: &str,
    ) -> Result<(StoredStream, Revision), LogsError> {
        match self
            .objects
            .get::<StoredStream>(&stream_key(group, stream))
            .await?
        {
            Some(found) => Ok(found),
            None => {
                self.load_group(group).await?;
                Err(LogsError::LogStreamNotFound)
            }
        }
    }

    fn present_stream(&self, group: &str, name: &str, s: &StoredStream) -> LogStream {
        LogStream {
            log_stream_name: Some(name.to_owned()),
            creation_time: Some(s.creation_time),
            first_event_timestamp: s.first_event_timestamp,
            last_event_timestamp: s.last_event_timestamp,
            last_ingestion_time: s.last_ingestion_time,
            upload_sequence_token: Some(s.sequence_token()),
            arn: Some(log_stream_arn(
                &self.scope.region,
                &self.scope.account_id,
                group,
                name,
            )),
            stored_bytes: Some(s.stored_bytes),
        }
    }
}

pub(crate) async fn create_log_stream(
    logs: &Logs,
    req: CreateLogStreamRequest,
) -> Result<Empty, LogsError> {
    let (group, stream) = (req.log_group_name, req.log_stream_name);
    check_log_group_name(&group).map_err(LogsError::InvalidParameter)?;
    check_log_stream_name(&stream).map_err(LogsError::InvalidParameter)?;
    let gkey = group_key(&group);
    let skey = stream_key(&group, &stream);
    logs.objects
        .retry(&skey, || async {
            let (mut g, grev) = logs.load_group(&group).await?;
            if logs.objects.get::<StoredStream>(&skey).await?.is_some() {
                return Err(LogsError::LogStreamAlreadyExists);
            }
            g.stream_count += 1;
            let s = StoredStream {
                creation_time: logs.now_ms(),
                // Only needs to differ from earlier streams of the same name.
                incarnation: rand::random::<u64>(),
                ..StoredStream::default()
            };
            let txn = Txn::new()
                .when(gkey.as_str(), grev)
                .when(skey.as_str(), 0)
                .put(gkey.as_str(), encode(&g)?)
                .put(skey.as_str(), encode(&s)?);
            Ok(Step::Commit(txn, ()))
        })
        .await?;
    tracing::debug!(log_group = %group, log_stream = %stream, "Log stream created.");
    Ok(Empty {})
}

pub(crate) async fn delete_log_stream(
    logs: &Logs,
    req: DeleteLogStreamRequest,
) -> Result<Empty, LogsError> {
    let (group, stream) = (req.log_group_name, req.log_stream_name);
    check_log_group_name(&group).map_err(LogsError::InvalidParameter)?;
    check_log_stream_name(&stream).map_err(LogsError::InvalidParameter)?;
    let gkey = group_key(&group);
    let skey = stream_key(&group, &stream);
    let incarnation = logs
        .objects
        .retry(&skey, || async {
            let (mut g, grev) = logs.load_group(&group).await?;
            let (s, srev) = logs.load_stream(&group, &stream).await?;
            g.stream_count = g.stream_count.saturating_sub(1);
            let txn = Txn::new()
                .when(gkey.as_str(), grev)
                .when(skey.as_str(), srev)
                .put(gkey.as_str(), encode(&g)?)
                .delete(skey.as_str())
                .put(purge_key(&group, &stream, s.incarnation), Vec::new());
            Ok(Step::Commit(txn, s.incarnation))
        })
        .await?;
    logs.purge_events(&group, &stream, incarnation).await?;
    tracing::debug!(log_group = %group, log_stream = %stream, "Log stream deleted.");
    Ok(Empty {})
}

pub(crate) async fn describe_log_streams(
    logs: &Logs,
    req: DescribeLogStreamsRequest,
) -> Result<DescribeLogStreamsResponse, LogsError> {
    let group = resolve_group(
        req.log_group_name.as_deref(),
        req.log_group_identifier.as_deref(),
    )?;
    let size = page_size(req.limit, MAX_DESCRIBE_STREAMS)?;
    let order = req.order_by.unwrap_or(OrderBy::LogStreamName);
    let prefix = req.log_stream_name_prefix.as_deref().unwrap_or("");
    if !prefix.is_empty() {
        if order == OrderBy::LastEventTime {
            return invalid("Cannot order by LastEventTime with a logStreamNamePrefix.");
        }
        check_log_stream_name_member(prefix, "logStreamNamePrefix")
            .map_err(LogsError::InvalidParameter)?;
    }
    logs.load_group(&group).await?;
    let base = stream_prefix(&group);
    let all = logs
        .objects
        .list::<StoredStream>(&format!("{base}{prefix}"))
        .await?;
    let mut items: Vec<(String, LogStream)> = all
        .into_iter()
        .map(|(k, s, _)| {
            let name = &k[base.len()..];
            let sort = match order {
                OrderBy::LogStreamName => name.to_owned(),
                OrderBy::LastEventTime => {
                    format!("{:016}:{name}", s.last_event_timestamp.unwrap_or(0).max(0))
                }
            };
            (sort, logs.present_stream(&group, name, &s))
        })
        .collect();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let descending = req.descending.unwrap_or(false);
    if descending {
        items.reverse();
    }
    let page = paginate(
        "streams",
        items,
        req.next_token.as_deref(),
        size,
        descending,
    )?;
    Ok(DescribeLogStreamsResponse {
        log_streams: Some(page.items),
        next_token: page.next_token,
    })
}
