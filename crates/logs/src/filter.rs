//! FilterLogEvents: the events of a group's streams (all, named, or by name prefix) in a
//! time range, interleaved in timestamp order, matched against a filter pattern
//! (see [`crate::pattern`]: terms, JSON and space-delimited). `aws logs tail` is built on it.
//!
//! Pages are ordered by (timestamp, stream name, ingestion sequence); `nextToken` carries
//! the last position examined. A page stops at `limit` matches, at 1 MB, or after
//! examining [`MAX_SCAN`] events, so a selective pattern over a large group returns
//! partial (even empty) pages with a token, as AWS does. Only ascending order
//! (`startFromHead` true, the default) is served.

use crate::error::{invalid, LogsError};
use crate::event_store::StreamId;
use crate::events::{
    position, read_forward, ReadEvent, EVENT_OVERHEAD, MAX_BATCH_BYTES, MAX_EVENTS,
};
use crate::groups::resolve_group;
use crate::objects::{stream_prefix, StoredStream};
use crate::pagination::{decode_token, encode_token, page_size};
use crate::pattern::FilterPattern;
use crate::{retention_floor, Logs};
use model::logs::names::{check_log_stream_name, check_log_stream_name_member};
use model::logs::shapes::{FilterLogEventsRequest, FilterLogEventsResponse, FilteredLogEvent};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// The most events one FilterLogEvents call examines before returning a partial page.
pub const MAX_SCAN: usize = 100_000;
/// The most stream names one request may list.
const MAX_STREAM_NAMES: usize = 100;
/// Events read per stream at a time while merging.
const CHUNK: usize = 256;

/// Where a page ended: the last event examined.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Mark {
    timestamp: i64,
    stream: String,
    seq: u64,
}

impl Mark {
    fn token(&self) -> String {
        encode_token(
            "filter",
            &format!("{}|{}|{}", self.timestamp, self.seq, self.stream),
        )
    }

    fn parse(token: &str) -> Result<Self, LogsError> {
        let raw = decode_token("filter", token)?;
        let mut parts = raw.splitn(3, '|');
        let parsed = (|| {
            Some(Self {
                timestamp: parts.next()?.parse().ok()?,
                seq: parts.next()?.parse().ok()?,
                stream: parts.next()?.to_owned(),
            })
        })();
        parsed.ok_or_else(|| {
            LogsError::InvalidParameter("The specified nextToken is invalid.".into())
        })
    }

    /// The position in `stream` after which that stream's next events lie.
    fn after_in(&self, stream: &str) -> u128 {
        match stream.cmp(self.stream.as_str()) {
            std::cmp::Ordering::Less => {
                position(self.timestamp.saturating_add(1), 0).saturating_sub(1)
            }
            std::cmp::Ordering::Equal => position(self.timestamp, self.seq),
            std::cmp::Ordering::Greater => position(self.timestamp, 0).saturating_sub(1),
        }
    }
}

/// One stream being merged.
struct Cursor {
    name: String,
    id: StreamId,
    after: u128,
    buf: VecDeque<ReadEvent>,
    done: bool,
}

impl Cursor {
    /// The next event, reading another chunk when the buffer is empty.
    async fn peek(&mut self, logs: &Logs, ceiling: u128) -> Result<Option<&ReadEvent>, LogsError> {
        if self.buf.is_empty() && !self.done {
            let (events, more) = read_forward(logs, &self.id, self.after, ceiling, CHUNK).await?;
            if let Some(last) = events.last() {
                self.after = position(last.timestamp, last.seq);
            }
            self.done = !more || events.is_empty();
            self.buf.extend(events);
        }
        Ok(self.buf.front())
    }
}

pub(crate) async fn filter_log_events(
    logs: &Logs,
    req: FilterLogEventsRequest,
) -> Result<FilterLogEventsResponse, LogsError> {
    let group = resolve_group(
        req.log_group_name.as_deref(),
        req.log_group_identifier.as_deref(),
    )?;
    let limit = page_size(req.limit, MAX_EVENTS)?;
    let pattern = FilterPattern::parse(req.filter_pattern.as_deref().unwrap_or(""))?;
    if req.start_from_head == Some(false) && req.next_token.is_none() {
        return invalid("startFromHead=false (newest events first) is not supported by this server; omit it to read in ascending order.");
    }
    let streams = select_streams(logs, &group, &req).await?;
    let (g, _) = logs.load_group(&group).await?;
    let now = logs.now_ms();
    let lower_ts = req
        .start_time
        .unwrap_or(0)
        .max(retention_floor(g.retention_in_days, now).unwrap_or(0))
        .max(0);
    // endTime is inclusive here (GetLogEvents' is exclusive), as AWS documents.
    let ceiling = req
        .end_time
        .map_or(u128::MAX, |t| position(t.saturating_add(1).max(0), 0));
    let mark = req
        .next_token
        .as_deref()
        .filter(|t| !t.is_empty())
        .map(Mark::parse)
        .transpose()?;
    let floor_after = position(lower_ts, 0).saturating_sub(1);
    // Every selected stream is read, whatever its counters say: they may miss a batch
    // whose PutLogEvents was cut short by a crash (see `crate::event_store`).
    let mut cursors: Vec<Cursor> = streams
        .into_iter()
        .map(|(name, s)| {
            let after = mark
                .as_ref()
                .map_or(floor_after, |m| m.after_in(&name).max(floor_after));
            Cursor {
                id: StreamId::new(&group, &name, s.incarnation),
                name,
                after,
                buf: VecDeque::new(),
                done: false,
            }
        })
        .collect();
    let mut heap = BinaryHeap::new();
    for (i, c) in cursors.iter_mut().enumerate() {
        if let Some(e) = c.peek(logs, ceiling).await? {
            heap.push(Reverse((e.timestamp, i, e.seq)));
        }
    }
    let mut out = Vec::new();
    let (mut bytes, mut scanned) = (0usize, 0usize);
    let mut last: Option<Mark> = None;
    while let Some(Reverse((_, i, _))) = heap.pop() {
        let Some(c) = cursors.get_mut(i) else { break };
        let Some(e) = c.buf.pop_front() else { continue };
        scanned += 1;
        let here = Mark {
            timestamp: e.timestamp,
            stream: c.name.clone(),
            seq: e.seq,
        };
        if pattern.matches(&e.message) {
            let size = e.message.len() + EVENT_OVERHEAD;
            if !out.is_empty() && bytes + size > MAX_BATCH_BYTES {
                // Not returned: the page ends before it, so the next starts with it.
                heap.push(Reverse((e.timestamp, i, e.seq)));
                c.buf.push_front(e);
                break;
            }
            bytes += size;
            out.push(FilteredLogEvent {
                log_stream_name: Some(c.name.clone()),
                timestamp: Some(e.timestamp),
                message: Some(e.message),
                ingestion_time: Some(e.ingestion_time),
                event_id: Some(format!(
                    "{:016}{:020}{:010}",
                    e.timestamp.max(0),
                    c.id.incarnation,
                    e.seq
                )),
            });
        }
        last = Some(here);
        if let Some(next) = c.peek(logs, ceiling).await? {
            heap.push(Reverse((next.timestamp, i, next.seq)));
        }
        if out.len() == limit || scanned == MAX_SCAN {
            break;
        }
    }
    let next_token = if heap.is_empty() {
        None
    } else {
        last.or(mark).map(|m| m.token())
    };
    Ok(FilterLogEventsResponse {
        events: Some(out),
        searched_log_streams: Some(Vec::new()),
        next_token,
    })
}

/// The streams a request covers, in name order.
async fn select_streams(
    logs: &Logs,
    group: &str,
    req: &FilterLogEventsRequest,
) -> Result<Vec<(String, StoredStream)>, LogsError> {
    let base = stream_prefix(group);
    match (&req.log_stream_names, &req.log_stream_name_prefix) {
        (Some(_), Some(_)) => invalid(
            "logStreamNames and logStreamNamePrefix are mutually exclusive: specify only one.",
        ),
        (Some(names), None) => {
            if names.is_empty() || names.len() > MAX_STREAM_NAMES {
                return invalid(format!("1 validation error detected: Value at 'logStreamNames' failed to satisfy constraint: Member must have length between 1 and {MAX_STREAM_NAMES}"));
            }
            let mut names = names.clone();
            names.sort();
            names.dedup();
            let mut out = Vec::new();
            for name in names {
                check_log_stream_name_member(&name, "logStreamNames")
                    .map_err(LogsError::InvalidParameter)?;
                if let Some((s, _)) = logs
                    .objects
                    .get::<StoredStream>(&format!("{base}{name}"))
                    .await?
                {
                    out.push((name, s));
                }
            }
            Ok(out)
        }
        (None, prefix) => {
            let prefix = prefix.as_deref().unwrap_or("");
            if !prefix.is_empty() {
                check_log_stream_name(prefix).map_err(LogsError::InvalidParameter)?;
            }
            Ok(logs
                .objects
                .list::<StoredStream>(&format!("{base}{prefix}"))
                .await?
                .into_iter()
                .map(|(k, s, _)| (k[base.len()..].to_owned(), s))
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_round_trip_through_tokens() {
        let m = Mark {
            timestamp: 1_700_000_000_123,
            stream: "ecs/app/a|b".into(),
            seq: 42,
        };
        assert_eq!(Mark::parse(&m.token()).expect("parses"), m);
        assert!(Mark::parse("nope").is_err());
    }

    #[test]
    fn streams_resume_after_the_mark_in_merge_order() {
        let m = Mark {
            timestamp: 10,
            stream: "b".into(),
            seq: 5,
        };
        // Earlier streams already gave their events at timestamp 10.
        assert_eq!(m.after_in("a"), position(11, 0) - 1);
        assert_eq!(m.after_in("b"), position(10, 5));
        // Later streams have not given theirs yet.
        assert_eq!(m.after_in("c"), position(10, 0) - 1);
    }
}
