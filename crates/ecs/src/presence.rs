//! Whether an instance's agent is connected, from shared state only.
//!
//! With several replicas an agent's channel lives on one of them and moves when that
//! one fails. `agentConnected` must read the same on every replica and follow the
//! agent, so it is not kept in any replica's memory:
//!
//! - Opening a session records in the instance (`StoredInstance::agent_session`) which
//!   replica holds it and a session id; closing it clears the flag only if the record
//!   still names *that* session. A replica that notices late that an agent left it (the
//!   agent already reconnected elsewhere) therefore cannot mark it disconnected.
//! - A replica holding sessions bumps its presence key (`ecs/replica/<id>`) every
//!   [`HEARTBEAT`]. The leader ([`Ecs::run_presence_sweep`]) ends the sessions of a
//!   replica whose key has not changed for [`GONE_AFTER`] (a replica killed, or cut
//!   off from the store, with its agents): it judges by the key's revision and its own
//!   monotonic clock, so clocks need not agree. The clearing write is a
//!   compare-and-swap on the instance, fenced by the leader's term.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use store::{Step, Txn};
use tokio::time::Instant;

use crate::error::EcsError;
use crate::objects::{encode, StoredInstance};
use crate::Ecs;

/// How often a replica holding agent sessions shows it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// A replica whose presence key has not changed for this long is gone with its sessions.
pub const GONE_AFTER: Duration = Duration::from_secs(8);

/// This process's identity among the replicas; fresh at each start, so the sessions of
/// a previous run of the same server end too.
static REPLICA: LazyLock<String> = LazyLock::new(|| uuid::Uuid::new_v4().simple().to_string());

const PRESENCE_PREFIX: &str = "ecs/replica/";

fn presence_key(replica: &str) -> String {
    format!("{PRESENCE_PREFIX}{replica}")
}

/// Which replica holds an instance's agent session, and which session it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSession {
    /// The holding replica's id (its presence key's name).
    pub replica: String,
    /// Unique to this session, so an older session of the same agent is told apart.
    pub session: String,
}

impl AgentSession {
    /// A new session on this replica.
    pub(crate) fn open_here() -> Self {
        Self {
            replica: REPLICA.clone(),
            session: uuid::Uuid::new_v4().simple().to_string(),
        }
    }
}

/// What a heartbeat says (for people reading the store; only its revision matters).
#[derive(Serialize)]
struct Presence<'a> {
    replica: &'a str,
    pid: u32,
}

/// The sessions this replica holds (instance key → session), and whether it ever held
/// one (from then on it heartbeats).
#[derive(Default)]
pub(crate) struct PresenceState {
    holds_sessions: AtomicBool,
    held: Mutex<HashMap<String, AgentSession>>,
}

impl PresenceState {
    pub(crate) fn opened(&self, key: &str, session: &AgentSession) {
        self.holds_sessions.store(true, Ordering::Relaxed);
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.to_owned(), session.clone());
    }

    pub(crate) fn closed(&self, key: &str, session: &AgentSession) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if held.get(key) == Some(session) {
            held.remove(key);
        }
    }

    fn held(&self) -> Vec<(String, AgentSession)> {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect()
    }
}

/// The presence key's put, for the transaction that opens a session: the sweeper sees
/// the replica change at once, before its first heartbeat.
pub(crate) fn mark_present(txn: Txn) -> Result<Txn, EcsError> {
    let value = encode(&Presence {
        replica: &REPLICA,
        pid: std::process::id(),
    })?;
    Ok(txn.put(presence_key(&REPLICA), value))
}

/// The leader's view of the replicas: each presence key's last revision and when
/// (on this process's monotonic clock) it was last seen to change.
#[derive(Default)]
pub(crate) struct Sightings {
    seen: HashMap<String, (Option<u64>, Instant)>,
}

impl Sightings {
    /// Records what the store shows now; `present` maps replica id to key revision.
    fn observe(&mut self, present: &HashMap<String, u64>, referenced: &[String], now: Instant) {
        for replica in referenced.iter().chain(present.keys()) {
            let rev = present.get(replica).copied();
            let entry = self.seen.entry(replica.clone()).or_insert((rev, now));
            if entry.0 != rev {
                *entry = (rev, now);
            }
        }
        // Forget replicas nothing refers to any more.
        self.seen
            .retain(|r, _| present.contains_key(r) || referenced.contains(r));
    }

    /// Whether `replica` has shown no sign of life for [`GONE_AFTER`].
    fn gone(&self, replica: &str, now: Instant) -> bool {
        self.seen
            .get(replica)
            .is_some_and(|(_, since)| now.duration_since(*since) >= GONE_AFTER)
    }
}

impl Ecs {
    /// Keeps this replica's presence key fresh while it holds agent sessions; runs on
    /// every replica until `shutdown`.
    pub async fn run_presence(&self, shutdown: telemetry::CancellationToken) {
        let mut last_beat = Instant::now();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(HEARTBEAT) => {}
            }
            if !self.presence.holds_sessions.load(Ordering::Relaxed) {
                last_beat = Instant::now();
                continue;
            }
            let beat = match mark_present(Txn::new()) {
                Ok(txn) => self.objects.commit(txn).await.map(|_| ()),
                Err(e) => Err(e),
            };
            if let Err(error) = beat {
                tracing::warn!(%error, "Could not refresh this replica's presence; its agents may be shown disconnected.");
                continue;
            }
            // Silent for long enough that the leader may have ended our sessions (this
            // process was paused, or cut off from the store): the agents still on
            // their channels here are connected, so say so again.
            if last_beat.elapsed() + HEARTBEAT >= GONE_AFTER {
                match self.reassert_sessions().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(
                        sessions = n,
                        "Agent sessions recorded again after this replica was silent."
                    ),
                    Err(error) => {
                        tracing::warn!(%error, "Could not record this replica's agent sessions again.")
                    }
                }
            }
            last_beat = Instant::now();
        }
    }

    /// Marks connected again the instances whose session here the leader ended while
    /// this replica was silent; not those whose agent opened a newer session elsewhere.
    async fn reassert_sessions(&self) -> Result<usize, EcsError> {
        let mut again = 0;
        for (key, session) in self.presence.held() {
            let restored = self
                .objects
                .retry(&key, || async {
                    let Some((mut si, rev)) = self.objects.get::<StoredInstance>(&key).await?
                    else {
                        return Ok(Step::Done(false));
                    };
                    let ended = si.agent_session.is_none()
                        && si.instance.agent_connected != Some(true)
                        && si.instance.status
                            != Some(model::ecs::status::ContainerInstanceStatus::Inactive);
                    if !ended {
                        return Ok(Step::Done(false));
                    }
                    si.agent_session = Some(session.clone());
                    si.instance.agent_connected = Some(true);
                    si.instance.version = Some(si.instance.version.unwrap_or(0) + 1);
                    Ok(Step::Commit(
                        Txn::new()
                            .when(key.clone(), rev)
                            .put(key.clone(), encode(&si)?),
                        true,
                    ))
                })
                .await?;
            if restored {
                again += 1;
            }
        }
        Ok(again)
    }

    /// On the leader: every [`HEARTBEAT`], ends the agent sessions of replicas gone for
    /// [`GONE_AFTER`] (their instances show `agentConnected: false`, and the service
    /// controller's disconnect timeout starts).
    pub async fn run_presence_sweep(&self, shutdown: telemetry::CancellationToken) {
        let mut sightings = Sightings::default();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(HEARTBEAT) => {}
            }
            match self.sweep_sessions(&mut sightings).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    sessions = n,
                    "Agent sessions of a replica that is gone were ended."
                ),
                Err(error) => tracing::warn!(%error, "Agent presence sweep failed; retrying."),
            }
        }
    }

    /// One sweep; how many sessions it ended.
    pub(crate) async fn sweep_sessions(
        &self,
        sightings: &mut Sightings,
    ) -> Result<usize, EcsError> {
        let present: HashMap<String, u64> = self
            .objects
            .keys(PRESENCE_PREFIX)
            .await?
            .into_iter()
            .map(|(k, rev)| (k[PRESENCE_PREFIX.len()..].to_owned(), rev))
            .collect();
        let instances = self
            .objects
            .list::<StoredInstance>(crate::objects::ALL_INSTANCES)
            .await?;
        let connected: Vec<(String, AgentSession)> = instances
            .into_iter()
            .filter(|(_, si, _)| si.instance.agent_connected == Some(true))
            .filter_map(|(key, si, _)| si.agent_session.map(|s| (key, s)))
            .collect();
        let referenced: Vec<String> = connected.iter().map(|(_, s)| s.replica.clone()).collect();
        let now = Instant::now();
        sightings.observe(&present, &referenced, now);
        let mut ended = 0;
        for (key, session) in connected {
            if !sightings.gone(&session.replica, now) {
                continue;
            }
            if self.end_session(&key, &session).await? {
                tracing::info!(instance = %key, replica = %session.replica, "Agent session ended: its replica is gone.");
                ended += 1;
            }
        }
        let gone: Vec<String> = present
            .keys()
            .filter(|r| sightings.gone(r, now) && **r != *REPLICA)
            .cloned()
            .collect();
        for replica in gone {
            // A gone replica's key is dropped once its sessions are ended, so the
            // keyspace does not keep one per process that ever ran.
            if !referenced.contains(&replica) {
                self.objects
                    .commit(Txn::new().delete(presence_key(&replica)))
                    .await?;
            }
        }
        Ok(ended)
    }

    /// Marks the instance at `key` disconnected if its record still names `session`.
    pub(crate) async fn end_session(
        &self,
        key: &str,
        session: &AgentSession,
    ) -> Result<bool, EcsError> {
        self.objects
            .retry(key, || async {
                let Some((mut si, rev)) = self.objects.get::<StoredInstance>(key).await? else {
                    return Ok(Step::Done(false));
                };
                if si.agent_session.as_ref() != Some(session) {
                    return Ok(Step::Done(false));
                }
                si.agent_session = None;
                si.instance.agent_connected = Some(false);
                si.instance.version = Some(si.instance.version.unwrap_or(0) + 1);
                Ok(Step::Commit(
                    Txn::new()
                        .when(key.to_owned(), rev)
                        .put(key.to_owned(), encode(&si)?),
                    true,
                ))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_is_gone_only_after_its_key_stood_still_long_enough() {
        let t0 = Instant::now();
        let mut s = Sightings::default();
        let refs = vec!["a".to_owned(), "b".to_owned()];
        let present = HashMap::from([("a".to_owned(), 5)]);
        s.observe(&present, &refs, t0);
        // b has no key yet: not gone before GONE_AFTER either (it may be starting).
        assert!(!s.gone("a", t0 + HEARTBEAT) && !s.gone("b", t0 + HEARTBEAT));
        // a heartbeats, b never shows up.
        let later = t0 + GONE_AFTER - HEARTBEAT;
        s.observe(&HashMap::from([("a".to_owned(), 9)]), &refs, later);
        assert!(!s.gone("a", t0 + GONE_AFTER));
        assert!(s.gone("b", t0 + GONE_AFTER));
        assert!(
            s.gone("a", later + GONE_AFTER),
            "a stood still from then on"
        );
        // Unknown replicas are not judged.
        assert!(!s.gone("c", t0 + GONE_AFTER * 10));
    }
}
