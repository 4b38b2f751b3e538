//! Leader election on etcd: the leader is the replica whose lease holds the election
//! key. A candidate creates the key (compare `create_revision == 0`) bound to its own
//! lease; the leader keeps its lease alive; when the leader dies the lease expires, etcd
//! deletes the key, and the next candidate's create succeeds.
//!
//! Safety does not trust clocks to agree: a replica counts its lease from the moment it
//! *sent* the keep-alive that etcd answered, on its own monotonic clock, and gives up
//! leadership a margin before that lease could have run out on etcd. etcd counts the
//! same lease from when it *received* that request, later, so the old leader always
//! stops before etcd frees the key for another (given clock rates that agree within the
//! margin; wall-clock skew does not matter).

use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{bounded, bounded_retry, from_etcd};
use crate::leader::{Leadership, Term};
use crate::StoreError;

/// How a replica campaigns.
#[derive(Clone, Debug)]
pub struct ElectionConfig {
    /// The election key (under the replicas' shared prefix).
    pub key: String,
    /// This replica's name, stored as the key's value (for operators).
    pub identity: String,
    /// Lease TTL: a dead leader is replaced within about this long.
    pub ttl: Duration,
}

/// Starts campaigning on `client` and returns the leadership it follows. The campaign
/// runs until `stop` is cancelled, then gives the lease back so another replica takes
/// over at once.
pub fn campaign(
    client: Client,
    config: ElectionConfig,
    stop: telemetry::CancellationToken,
) -> Leadership {
    let (tx, leadership) = Leadership::channel();
    tokio::spawn(run(client, config, tx, stop));
    leadership
}

struct Lease {
    id: i64,
    /// Until when this replica may act on it (its own clock, with the margin taken off).
    valid_until: Instant,
}

struct Campaign {
    client: Client,
    config: ElectionConfig,
    /// One step's deadline: a third of the TTL, so a hung etcd is noticed in time.
    step: Duration,
    margin: Duration,
    lease: Option<Lease>,
    term: Option<Term>,
}

async fn run(
    client: Client,
    config: ElectionConfig,
    tx: watch::Sender<Option<Term>>,
    stop: telemetry::CancellationToken,
) {
    let step = (config.ttl / 3).max(Duration::from_millis(100));
    let mut c = Campaign {
        client,
        margin: step,
        step,
        config,
        lease: None,
        term: None,
    };
    let mut tick = tokio::time::interval(step.min(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        if let Err(error) = c.round().await {
            tracing::warn!(%error, key = %c.config.key, "Leader election round failed.");
        }
        // Whatever the round did, no lease past its validity makes a leader.
        if c.lease
            .as_ref()
            .is_none_or(|l| Instant::now() >= l.valid_until)
        {
            c.lease = None;
            c.term = None;
        }
        let was = *tx.borrow();
        if was != c.term {
            match c.term {
                Some(term) => {
                    tracing::info!(key = %c.config.key, identity = %c.config.identity, term, "This replica is now the leader.")
                }
                None => {
                    tracing::warn!(key = %c.config.key, identity = %c.config.identity, "This replica is no longer the leader.")
                }
            }
            tx.send_replace(c.term);
        }
    }
    tx.send_replace(None);
    if let Some(lease) = c.lease.take() {
        let mut leases = c.client.lease_client();
        // Best effort: a lease not revoked expires after its TTL anyway.
        let _revoked = bounded(c.step, leases.revoke(lease.id)).await;
    }
}

impl Campaign {
    /// Renews (or takes) the lease, then tries for the key if not already leader.
    async fn round(&mut self) -> Result<(), StoreError> {
        self.renew().await?;
        let Some(lease) = self.lease.as_ref().map(|l| l.id) else {
            return Ok(());
        };
        let key = self.config.key.clone();
        let create = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key.clone(),
                self.config.identity.clone(),
                Some(PutOptions::new().with_lease(lease)),
            )])
            .or_else([TxnOp::get(key, Some(GetOptions::new()))]);
        let kv = self.client.kv_client();
        let resp = bounded_retry(self.step, || {
            let (mut kv, create) = (kv.clone(), create.clone());
            async move { kv.txn(create).await }
        })
        .await?;
        if resp.succeeded() {
            self.term = resp.header().map(|h| from_etcd(h.revision()));
            return Ok(());
        }
        // Someone holds the key: us (a term that goes on) or another replica.
        let holder = resp.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Get(get) => get
                .kvs()
                .first()
                .map(|kv| (kv.lease(), kv.create_revision())),
            _ => None,
        });
        self.term = match holder {
            Some((holder_lease, created)) if holder_lease == lease => Some(from_etcd(created)),
            _ => None,
        };
        Ok(())
    }

    /// Keeps the lease alive, or grants a new one when there is none or it ran out.
    async fn renew(&mut self) -> Result<(), StoreError> {
        let ttl = i64::try_from(self.config.ttl.as_secs().max(1)).unwrap_or(10);
        let leases = self.client.lease_client();
        let sent = Instant::now();
        let granted_ttl = match &self.lease {
            Some(lease) => {
                let id = lease.id;
                // A renewal is idempotent: retried when the member picked was dead.
                let renewed = bounded_retry(self.step, || {
                    let mut leases = leases.clone();
                    async move {
                        let (mut keeper, mut answers) = leases.keep_alive(id).await?;
                        keeper.keep_alive().await?;
                        answers.message().await
                    }
                })
                .await?;
                match renewed {
                    Some(answer) if answer.ttl() > 0 => answer.ttl(),
                    // The lease is gone on etcd: this replica's term (if any) is over.
                    _ => {
                        self.lease = None;
                        self.term = None;
                        return Ok(());
                    }
                }
            }
            None => {
                let granted = bounded_retry(self.step, || {
                    let mut leases = leases.clone();
                    async move { leases.grant(ttl, None).await }
                })
                .await?;
                self.lease = Some(Lease {
                    id: granted.id(),
                    valid_until: sent,
                });
                granted.ttl()
            }
        };
        let lasts = Duration::from_secs(u64::try_from(granted_ttl).unwrap_or(0));
        if let Some(lease) = self.lease.as_mut() {
            lease.valid_until = sent + lasts.saturating_sub(self.margin);
        }
        Ok(())
    }
}
