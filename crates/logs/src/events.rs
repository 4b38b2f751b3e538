//! PutLogEvents (AWS's batch rules; events to the event store, then the stream's counters
//! to the keyspace, then the group's metric filters) and GetLogEvents
//! (time ranges, both directions, `f/`/`b/` tokens).
//!
//! A GetLogEvents token is a boundary between events: `f/<pos>` reads the events after
//! position `pos`, `b/<pos>` the events before it, where an event's position is
//! `timestamp × 10¹⁰ + ingestion sequence`. Both tokens always come back; at the end of
//! the stream the token sent comes back unchanged, which is how SDK paginators stop.

use crate::error::{invalid, LogsError};
use crate::event_store::{Event, Place, StreamId};
use crate::groups::resolve_group;
use crate::objects::{encode, sequence_token, stream_key, Step, StoredStream};
use crate::{retention_floor, Logs, DAY_MS};
use model::logs::names::{check_log_group_name, check_log_stream_name};
use model::logs::shapes::{
    GetLogEventsRequest, GetLogEventsResponse, OutputLogEvent, PutLogEventsRequest,
    PutLogEventsResponse, RejectedLogEventsInfo,
};
use store::Txn;

/// The most events in one PutLogEvents batch, and in one GetLogEvents/FilterLogEvents page.
pub(crate) const MAX_EVENTS: usize = 10_000;
/// The largest PutLogEvents batch, and the most one read page returns, in bytes.
pub(crate) const MAX_BATCH_BYTES: usize = 1_048_576;
/// What AWS adds to each event's message bytes when sizing a batch.
pub(crate) const EVENT_OVERHEAD: usize = 26;
/// Events older than this (ms) are rejected as too old.
const TOO_OLD_MS: i64 = 14 * DAY_MS;
/// Events further in the future than this (ms) are rejected as too new.
const TOO_NEW_MS: i64 = 2 * 60 * 60 * 1000;
/// The longest time span one batch may cover (ms).
const MAX_SPAN_MS: i64 = DAY_MS;

/// Sequence numbers per millisecond in a position.
const SEQ_SPAN: u128 = 10_000_000_000;
/// The position after every event.
const POS_END: u128 = 100_000_000_000_000_000_000_000_000 - 1;

/// An event's position (see the module docs).
pub(crate) fn position(timestamp: i64, seq: u64) -> u128 {
    u128::try_from(timestamp.max(0)).unwrap_or(0) * SEQ_SPAN + u128::from(seq)
}

/// The first position at or after `timestamp`.
fn position_at(timestamp: i64) -> u128 {
    position(timestamp, 0)
}

/// The (timestamp, sequence) place of a position, for the event store's bounds.
fn place(pos: u128) -> Place {
    let ts = i64::try_from(pos / SEQ_SPAN).unwrap_or(i64::MAX);
    let seq = u64::try_from(pos % SEQ_SPAN).unwrap_or(0);
    (ts, seq)
}

/// One event read back from a stream.
pub(crate) type ReadEvent = Event;

fn pos_of(e: &ReadEvent) -> u128 {
    position(e.timestamp, e.seq)
}

/// Reads the events of one stream incarnation with positions in `(after, before)`,
/// ascending, at most `limit` of them; says whether the limit cut the read short.
pub(crate) async fn read_forward(
    logs: &Logs,
    stream: &StreamId,
    after: u128,
    before: u128,
    limit: usize,
) -> Result<(Vec<ReadEvent>, bool), LogsError> {
    let stream = stream.clone();
    let (after, before) = (place(after), place(before));
    let out = logs
        .events(move |store| store.read(&stream, Some(after), Some(before), false, limit))
        .await?;
    let more = out.len() == limit;
    Ok((out, more))
}

/// The last `limit` events with positions in `[floor, before)`, ascending.
async fn read_backward(
    logs: &Logs,
    stream: &StreamId,
    floor: u128,
    before: u128,
    limit: usize,
) -> Result<Vec<ReadEvent>, LogsError> {
    let stream = stream.clone();
    let after = floor.checked_sub(1).map(place);
    let before = place(before);
    logs.events(move |store| store.read(&stream, after, Some(before), true, limit))
        .await
}

/// Stores the accepted events in the event store first and then the stream's counters
/// in the keyspace, answering only after both (see [`crate::event_store`] for why this
/// order).
pub(crate) async fn put_log_events(
    logs: &Logs,
    req: PutLogEventsRequest,
) -> Result<PutLogEventsResponse, LogsError> {
    let (group, stream) = (req.log_group_name, req.log_stream_name);
    check_log_group_name(&group).map_err(LogsError::InvalidParameter)?;
    check_log_stream_name(&stream).map_err(LogsError::InvalidParameter)?;
    let events = req.log_events;
    check_batch(&events)?;
    let now = logs.now_ms();
    let (g, _) = logs.load_group(&group).await?;
    let (s, _) = logs.load_stream(&group, &stream).await?;
    let (rejected, range) = classify(&events, now, retention_floor(g.retention_in_days, now));
    let mut response = PutLogEventsResponse {
        rejected_log_events_info: rejected,
        ..PutLogEventsResponse::default()
    };
    let accepted: Vec<(i64, String)> = events
        .into_iter()
        .skip(range.start)
        .take(range.len())
        .map(|e| (e.timestamp, e.message))
        .collect();
    let (Some(&(first, _)), Some(&(last, _))) = (accepted.first(), accepted.last()) else {
        response.next_sequence_token = Some(s.sequence_token());
        return Ok(response);
    };
    let count = accepted.len();
    let bytes: i64 = accepted
        .iter()
        .map(|(_, m)| i64::try_from(m.len()).unwrap_or(0))
        .sum();
    let id = StreamId::new(&group, &stream, s.incarnation);
    // Metric filters see the batch only once it is stored; they keep a copy of it.
    let filters = logs.live_filters(&group).await?;
    let for_filters = if filters.is_empty() {
        Vec::new()
    } else {
        accepted.clone()
    };
    let appended = {
        let (id, floor) = (id.clone(), s.next_seq);
        logs.events(move |store| store.append(&id, floor, now, &accepted))
            .await?
    };
    let skey = stream_key(&group, &stream);
    let alive = logs
        .objects
        .retry(&skey, || async {
            let Some((mut s, rev)) = logs.objects.get::<StoredStream>(&skey).await? else {
                return Ok(Step::Done(false));
            };
            if s.incarnation != id.incarnation {
                return Ok(Step::Done(false));
            }
            s.first_event_timestamp = Some(s.first_event_timestamp.map_or(first, |t| t.min(first)));
            s.last_event_timestamp = Some(s.last_event_timestamp.map_or(last, |t| t.max(last)));
            s.last_ingestion_time = Some(now);
            s.stored_bytes += bytes;
            s.next_seq = s.next_seq.max(appended.next_seq);
            let txn = Txn::new()
                .when(skey.as_str(), rev)
                .put(skey.as_str(), encode::<StoredStream>(&s)?);
            Ok(Step::Commit(txn, true))
        })
        .await?;
    if !alive {
        // The stream was deleted while the batch was being stored: its purge may have
        // run already, so these events would be left behind.
        logs.purge_events(&group, &stream, id.incarnation).await?;
        logs.load_group(&group).await?;
        return Err(LogsError::LogStreamNotFound);
    }
    logs.publish_metrics(&filters, &for_filters);
    response.next_sequence_token = Some(sequence_token(appended.next_seq));
    tracing::debug!(log_group = %group, log_stream = %stream, accepted = count, "Log events stored.");
    Ok(response)
}

/// AWS's batch rules: they refuse the whole batch.
fn check_batch(events: &[model::logs::shapes::InputLogEvent]) -> Result<(), LogsError> {
    if events.is_empty() {
        return invalid("1 validation error detected: Value '[]' at 'logEvents' failed to satisfy constraint: Member must have length greater than or equal to 1");
    }
    if events.len() > MAX_EVENTS {
        return invalid(format!(
            "1 validation error detected: Value at 'logEvents' failed to satisfy constraint: Member must have length less than or equal to {MAX_EVENTS}"
        ));
    }
    if events.iter().any(|e| e.message.is_empty()) {
        return invalid("1 validation error detected: Value at 'logEvents.message' failed to satisfy constraint: Member must have length greater than or equal to 1");
    }
    let bytes: usize = events
        .iter()
        .map(|e| e.message.len() + EVENT_OVERHEAD)
        .sum();
    if bytes > MAX_BATCH_BYTES {
        return invalid(format!(
            "Log event batch of {bytes} bytes (message bytes plus {EVENT_OVERHEAD} per event) exceeds the maximum of {MAX_BATCH_BYTES} bytes."
        ));
    }
    if events.windows(2).any(|w| w[1].timestamp < w[0].timestamp) {
        return invalid(
            "Log events in a single PutLogEvents request must be in chronological order.",
        );
    }
    if let (Some(first), Some(last)) = (events.first(), events.last()) {
        if last.timestamp - first.timestamp > MAX_SPAN_MS {
            return invalid("The batch of log events in a single PutLogEvents request cannot span more than 24 hours.");
        }
    }
    Ok(())
}

/// Splits a chronological batch into the rejected ends and the accepted middle.
fn classify(
    events: &[model::logs::shapes::InputLogEvent],
    now: i64,
    retention_floor: Option<i64>,
) -> (Option<RejectedLogEventsInfo>, std::ops::Range<usize>) {
    let too_old = events
        .iter()
        .take_while(|e| e.timestamp < now - TOO_OLD_MS)
        .count();
    let expired = retention_floor.map_or(0, |floor| {
        events.iter().take_while(|e| e.timestamp < floor).count()
    });
    let too_new_start = events
        .iter()
        .position(|e| e.timestamp > now + TOO_NEW_MS)
        .unwrap_or(events.len());
    let start = too_old.max(expired).min(too_new_start);
    let index = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let info = RejectedLogEventsInfo {
        too_old_log_event_end_index: (too_old > 0).then(|| index(too_old)),
        expired_log_event_end_index: (expired > 0).then(|| index(expired)),
        too_new_log_event_start_index: (too_new_start < events.len()).then(|| index(too_new_start)),
    };
    let any = info.too_old_log_event_end_index.is_some()
        || info.expired_log_event_end_index.is_some()
        || info.too_new_log_event_start_index.is_some();
    (any.then_some(info), start..too_new_start.max(start))
}

/// A parsed GetLogEvents token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cursor {
    /// Events after this position.
    Forward(u128),
    /// Events before this position.
    Backward(u128),
}

impl Cursor {
    fn parse(token: &str) -> Result<Self, LogsError> {
        let bad = || {
            LogsError::InvalidParameter(format!(
                "The specified nextToken '{token}' is invalid: it was not returned by GetLogEvents."
            ))
        };
        let (kind, pos) = token.split_once('/').ok_or_else(bad)?;
        if pos.is_empty() || !pos.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let pos: u128 = pos.parse().map_err(|_| bad())?;
        match kind {
            "f" => Ok(Self::Forward(pos.min(POS_END))),
            "b" => Ok(Self::Backward(pos.min(POS_END))),
            _ => Err(bad()),
        }
    }

    fn token(self) -> String {
        match self {
            Self::Forward(p) => format!("f/{p:026}"),
            Self::Backward(p) => format!("b/{p:026}"),
        }
    }
}

pub(crate) async fn get_log_events(
    logs: &Logs,
    req: GetLogEventsRequest,
) -> Result<GetLogEventsResponse, LogsError> {
    let group = resolve_group(
        req.log_group_name.as_deref(),
        req.log_group_identifier.as_deref(),
    )?;
    check_log_stream_name(&req.log_stream_name).map_err(LogsError::InvalidParameter)?;
    let limit = crate::pagination::page_size(req.limit, MAX_EVENTS)?;
    let sent = req.next_token.as_deref().filter(|t| !t.is_empty());
    let cursor = match sent {
        Some(t) => Cursor::parse(t)?,
        None if req.start_from_head.unwrap_or(false) => Cursor::Forward(0),
        None => Cursor::Backward(POS_END),
    };
    let (g, _) = logs.load_group(&group).await?;
    let (s, _) = logs.load_stream(&group, &req.log_stream_name).await?;
    let now = logs.now_ms();
    let lower_ts = req
        .start_time
        .unwrap_or(0)
        .max(retention_floor(g.retention_in_days, now).unwrap_or(0))
        .max(0);
    let floor = position_at(lower_ts);
    let ceiling = req.end_time.map_or(POS_END, |t| position_at(t.max(0)));
    let id = StreamId::new(&group, &req.log_stream_name, s.incarnation);
    let mut events = match cursor {
        Cursor::Forward(after) => {
            let after = after.max(floor.saturating_sub(1));
            read_forward(logs, &id, after, ceiling, limit).await?.0
        }
        Cursor::Backward(before) => {
            read_backward(logs, &id, floor, before.min(ceiling), limit).await?
        }
    };
    cap_bytes(&mut events, matches!(cursor, Cursor::Forward(_)));
    let (forward, backward) = match (events.first(), events.last()) {
        (Some(first), Some(last)) => (
            Cursor::Forward(pos_of(last)).token(),
            Cursor::Backward(pos_of(first)).token(),
        ),
        _ => match cursor {
            Cursor::Forward(p) => (
                sent.map_or_else(|| cursor.token(), str::to_owned),
                Cursor::Backward(p.saturating_add(1).min(POS_END)).token(),
            ),
            Cursor::Backward(p) => (
                match sent {
                    Some(_) => Cursor::Forward(p.saturating_sub(1)).token(),
                    None => Cursor::Forward(0).token(),
                },
                sent.map_or_else(|| cursor.token(), str::to_owned),
            ),
        },
    };
    Ok(GetLogEventsResponse {
        events: Some(
            events
                .into_iter()
                .map(|e| OutputLogEvent {
                    timestamp: Some(e.timestamp),
                    message: Some(e.message),
                    ingestion_time: Some(e.ingestion_time),
                })
                .collect(),
        ),
        next_forward_token: Some(forward),
        next_backward_token: Some(backward),
    })
}

/// Keeps a page within 1 MB (message bytes + 26 per event), always keeping one event:
/// dropping from the end when reading forward, from the start when reading backward.
fn cap_bytes(events: &mut Vec<ReadEvent>, forward: bool) {
    let mut total = 0usize;
    let mut keep = 0usize;
    let sizes: Vec<usize> = events
        .iter()
        .map(|e| e.message.len() + EVENT_OVERHEAD)
        .collect();
    let order: Box<dyn Iterator<Item = &usize>> = if forward {
        Box::new(sizes.iter())
    } else {
        Box::new(sizes.iter().rev())
    };
    for size in order {
        if keep > 0 && total + size > MAX_BATCH_BYTES {
            break;
        }
        total += size;
        keep += 1;
    }
    if forward {
        events.truncate(keep);
    } else {
        events.drain(..events.len() - keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::logs::shapes::InputLogEvent;

    fn ev(timestamp: i64) -> InputLogEvent {
        InputLogEvent {
            timestamp,
            message: "m".into(),
        }
    }

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        for c in [
            Cursor::Forward(0),
            Cursor::Backward(POS_END),
            Cursor::Forward(position(1_700_000_000_000, 7)),
        ] {
            assert_eq!(Cursor::parse(&c.token()).expect("parses"), c);
        }
        for bad in ["", "f/", "x/12", "f/12a", "f12"] {
            assert!(Cursor::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rejected_ends_are_reported_and_the_middle_accepted() {
        let now = 100 * DAY_MS;
        let batch = [
            ev(now - 15 * DAY_MS),
            ev(now - 2 * DAY_MS),
            ev(now),
            ev(now + 3 * 3_600_000),
        ];
        let (info, range) = classify(&batch, now, Some(now - DAY_MS));
        let info = info.expect("some rejected");
        assert_eq!(info.too_old_log_event_end_index, Some(1));
        assert_eq!(info.expired_log_event_end_index, Some(2));
        assert_eq!(info.too_new_log_event_start_index, Some(3));
        assert_eq!(range, 2..3);
        let (info, range) = classify(&batch[1..3], now, None);
        assert!(info.is_none());
        assert_eq!(range, 0..2);
    }

    #[test]
    fn byte_cap_keeps_the_end_nearest_the_cursor() {
        let big = "x".repeat(600_000);
        let mk = |i: u64| ReadEvent {
            timestamp: 1,
            seq: i,
            message: big.clone(),
            ingestion_time: 1,
        };
        let mut fwd = vec![mk(0), mk(1), mk(2)];
        cap_bytes(&mut fwd, true);
        assert_eq!(fwd.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![0]);
        let mut back = vec![mk(0), mk(1), mk(2)];
        cap_bytes(&mut back, false);
        assert_eq!(back.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2]);
    }
}
