//! The one-time move of log events that a server before `logs.db` kept in the keyspace
//! (`logs/event/<group>:<stream>:<incarnation>/<timestamp>/<seq>` → `{"m","i"}`) into the
//! event store, run at start-up before the API answers.
//!
//! Each page of old keys is imported first (idempotent: events already there are
//! skipped) and deleted from the keyspace second, so a crash in between only repeats an
//! import; no event is lost and none shows twice. Events keep their places, so a stream's
//! order and its later sequence numbers are as they were.

use crate::event_store::{Event, StreamId};
use crate::{Logs, LogsError};
use std::collections::BTreeMap;
use store::Txn;

/// Where the old layout kept events.
const LEGACY_PREFIX: &str = "logs/event/";
/// Old keys moved per import and delete transaction.
const PAGE: usize = 5_000;

/// `<group>:<stream>:<incarnation>/<timestamp>/<seq>` (the key after [`LEGACY_PREFIX`]);
/// neither a group nor a stream name may hold `:`.
fn parse(rest: &str) -> Option<(StreamId, i64, u64)> {
    // Names may hold `/`, so the place is read from the right.
    let (rest, seq) = rest.rsplit_once('/')?;
    let (stream, ts) = rest.rsplit_once('/')?;
    let mut parts = stream.splitn(3, ':');
    let (group, name, incarnation) = (parts.next()?, parts.next()?, parts.next()?);
    Some((
        StreamId::new(group, name, incarnation.parse().ok()?),
        ts.parse().ok()?,
        seq.parse().ok()?,
    ))
}

/// The old layout's value.
#[derive(serde::Deserialize)]
struct LegacyEvent {
    #[serde(rename = "m")]
    message: String,
    #[serde(rename = "i")]
    ingestion_time: i64,
}

impl Logs {
    /// Moves events an older server kept in the keyspace into the event store; returns
    /// how many it moved (0 once done). Keys that do not parse are left in place and
    /// logged: they are not events this code wrote.
    pub async fn migrate_keyspace_events(&self) -> Result<u64, LogsError> {
        let mut moved = 0u64;
        let mut start_after: Option<String> = None;
        loop {
            let page = self
                .objects
                .store()
                .range(LEGACY_PREFIX, start_after.as_deref(), PAGE)
                .await?;
            let Some(last) = page.items.last() else {
                break;
            };
            start_after = Some(last.key.clone());
            let mut streams: BTreeMap<StreamId, Vec<Event>> = BTreeMap::new();
            let mut done = Txn::new();
            for kv in &page.items {
                let parsed = kv.key.strip_prefix(LEGACY_PREFIX).and_then(parse);
                let Some((stream, timestamp, seq)) = parsed else {
                    tracing::warn!(key = %kv.key, "A key under logs/event/ is not an event; left as is.");
                    continue;
                };
                let old: LegacyEvent = store::objects::decode(&kv.key, &kv.value)?;
                streams.entry(stream).or_default().push(Event {
                    timestamp,
                    seq,
                    ingestion_time: old.ingestion_time,
                    message: old.message,
                });
                done = done.delete(kv.key.clone());
                moved += 1;
            }
            self.events(move |store| {
                streams
                    .iter()
                    .try_for_each(|(stream, events)| store.import(stream, events))
            })
            .await?;
            self.objects.commit(done).await?;
            if !page.more {
                break;
            }
        }
        if moved > 0 {
            tracing::info!(
                events = moved,
                "Moved log events from the state store to logs.db."
            );
        }
        Ok(moved)
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn old_event_keys_parse_into_their_stream_and_place() {
        let (id, ts, seq) =
            parse("/ecs/app:web/1:00000000000000000003/0001700000000000/0000000042")
                .expect("parses");
        assert_eq!(id, super::StreamId::new("/ecs/app", "web/1", 3));
        assert_eq!((ts, seq), (1_700_000_000_000, 42));
        assert!(parse("g:s/1/2").is_none());
        assert!(parse("g:s:x/1/2").is_none());
    }
}
