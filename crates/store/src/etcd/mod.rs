//! The etcd v3 backend: the [`Store`] trait over an etcd cluster, so that several
//! `stevedore server` replicas share one state.
//!
//! The mapping is direct because the trait was shaped after etcd: revisions are etcd's
//! mod revisions, a [`Txn`] is one etcd Txn (compares on `mod_revision`, puts and
//! deletes), ranges are etcd ranges with a limit, the change feed is an etcd watch, and
//! compaction is etcd's. Where etcd differs, this module adapts:
//!
//! - etcd refuses two ops on one key in a txn, so only the last op on each key is sent
//!   (the state it leaves is the same; a delete-then-put of an *existing* key keeps its
//!   `create_revision`, where SQLite starts a new one);
//! - etcd reports a txn's events in op order, so ops are sent in key order, which is the
//!   order the trait promises;
//! - etcd does not say which compare failed, so a failing txn reads every compared key
//!   in its else branch (atomically with the compares) and the first mismatch is named.
//!
//! Every call has a deadline; a transport failure is [`StoreError::Unavailable`], which
//! the services answer with a 503 and which clears by itself when etcd is back.

mod election;
mod watch;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Certificate, Client, Compare as EtcdCompare, CompareOp, ConnectOptions, GetOptions, Identity,
    TlsOptions, Txn as EtcdTxn, TxnOp, TxnOpResponse,
};

use crate::{
    Compare, KeyValue, Op, RangePage, Revision, Store, StoreError, Txn, TxnOutcome, Watcher,
};
pub use election::{campaign, ElectionConfig};

/// How to reach an etcd cluster.
#[derive(Clone, Debug, Default)]
pub struct EtcdConfig {
    /// `host:port` (or `http://`/`https://` URLs) of the cluster's members.
    pub endpoints: Vec<String>,
    /// PEM CA that signed the members' certificates (turns TLS on).
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate and key, for members that verify clients.
    pub identity_pem: Option<(Vec<u8>, Vec<u8>)>,
    /// etcd user name and password (etcd's own authentication).
    pub user: Option<(String, String)>,
    /// Deadline of every call (default 5 s): past it the call fails as unavailable.
    pub timeout: Option<Duration>,
}

/// Default deadline of one etcd call.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

impl EtcdConfig {
    /// Parses `etcd://h1:2379,h2:2379` (as `--store` takes it) into endpoints.
    ///
    /// # Errors
    ///
    /// When the text does not start with `etcd://` or names no endpoint.
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        let rest = url
            .strip_prefix("etcd://")
            .ok_or_else(|| StoreError::Backend(format!("'{url}' is not an etcd:// address")))?;
        let endpoints: Vec<String> = rest
            .trim_end_matches('/')
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .collect();
        if endpoints.is_empty() {
            return Err(StoreError::Backend(format!(
                "'{url}' names no etcd endpoint (etcd://host:2379[,host:2379...])"
            )));
        }
        Ok(Self {
            endpoints,
            ..Self::default()
        })
    }

    fn deadline(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_TIMEOUT)
    }

    /// The endpoints with the scheme TLS calls for.
    fn urls(&self) -> Vec<String> {
        let scheme = if self.ca_pem.is_some() || self.identity_pem.is_some() {
            "https"
        } else {
            "http"
        };
        self.endpoints
            .iter()
            .map(|e| {
                if e.contains("://") {
                    e.clone()
                } else {
                    format!("{scheme}://{e}")
                }
            })
            .collect()
    }

    /// Connects a client (the members are dialled lazily and balanced).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when no member answers within the deadline.
    pub async fn connect(&self) -> Result<Client, StoreError> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(self.deadline())
            .with_timeout(self.deadline())
            .with_keep_alive(Duration::from_secs(5), self.deadline());
        if self.ca_pem.is_some() || self.identity_pem.is_some() {
            let mut tls = TlsOptions::new();
            if let Some(ca) = &self.ca_pem {
                tls = tls.ca_certificate(Certificate::from_pem(ca));
            }
            if let Some((cert, key)) = &self.identity_pem {
                tls = tls.identity(Identity::from_pem(cert, key));
            }
            options = options.with_tls(tls);
        }
        if let Some((user, password)) = &self.user {
            options = options.with_user(user.clone(), password.clone());
        }
        let urls = self.urls();
        bounded(self.deadline(), Client::connect(urls, Some(options))).await
    }
}

/// A [`Store`] on an etcd v3 cluster.
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    deadline: Duration,
    /// Whether the last call reached etcd, so that an outage is logged once when it
    /// starts and once when it ends, not once per failing request.
    reachable: Arc<AtomicBool>,
}

impl EtcdStore {
    /// Connects to the cluster `config` names and checks that it answers.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when it does not answer in time.
    pub async fn connect(config: &EtcdConfig) -> Result<Self, StoreError> {
        let client = config.connect().await?;
        let store = Self {
            client,
            deadline: config.deadline(),
            reachable: Arc::new(AtomicBool::new(true)),
        };
        store.revision().await?;
        Ok(store)
    }

    /// The client, for the leader election on the same cluster.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    async fn get_raw(
        &self,
        key: Vec<u8>,
        options: GetOptions,
    ) -> Result<etcd_client::GetResponse, StoreError> {
        let kv = self.client.kv_client();
        self.observe(
            bounded_retry(self.deadline, || {
                let (mut kv, key, options) = (kv.clone(), key.clone(), options.clone());
                async move { kv.get(key, Some(options)).await }
            })
            .await,
        )
    }

    /// Logs when etcd stops answering and when it answers again.
    fn observe<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        match &result {
            Err(StoreError::Unavailable(error)) => {
                if self.reachable.swap(false, Ordering::Relaxed) {
                    tracing::error!(
                        %error,
                        "etcd cannot be reached: API calls answer 503 ServiceUnavailable and controllers pause until it answers again."
                    );
                }
            }
            Ok(_) => {
                if !self.reachable.swap(true, Ordering::Relaxed) {
                    tracing::info!("etcd answers again; requests are served.");
                }
            }
            Err(_) => {}
        }
        result
    }
}

/// Runs one etcd call under `deadline`, mapping its failure to a [`StoreError`].
pub(crate) async fn bounded<T>(
    deadline: Duration,
    call: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(deadline, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(classify(e)),
        Err(_) => Err(StoreError::Unavailable(format!(
            "etcd did not answer within {} ms",
            deadline.as_millis()
        ))),
    }
}

/// Runs an etcd call under `deadline` like [`bounded`], and again (up to
/// [`UNSENT_ATTEMPTS`] times, within the deadline) when it failed before reaching a
/// member that could act on it: the connection to the
/// member the client picked was refused (a dead member stays in the client's balance,
/// so every few calls would fail while two of three members serve), or that member has
/// no etcd leader (it applied nothing). Nothing else is retried: a failure after the
/// request reached the cluster may have committed, and a txn sent twice could apply
/// twice.
pub(crate) async fn bounded_retry<T, F, Fut>(
    deadline: Duration,
    mut call: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
{
    let until = tokio::time::Instant::now() + deadline;
    let mut attempt = 1;
    loop {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        let outcome = bounded(left, call()).await;
        match &outcome {
            Err(StoreError::Unavailable(msg))
                if unsent(msg)
                    && attempt < UNSENT_ATTEMPTS
                    && tokio::time::Instant::now() + RETRY_PAUSE < until =>
            {
                attempt += 1;
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            _ => return outcome,
        }
    }
}

/// Between two attempts of [`bounded_retry`].
const RETRY_PAUSE: Duration = Duration::from_millis(20);
/// Attempts of [`bounded_retry`]: enough that a live member is almost surely picked
/// when one of three is dead, few enough (under 200 ms) that calls still fail fast
/// when etcd is down as a whole.
const UNSENT_ATTEMPTS: u32 = 8;

/// Whether an unavailable call certainly applied nothing (see [`bounded_retry`]).
fn unsent(msg: &str) -> bool {
    let msg = msg.to_ascii_lowercase();
    msg.contains("connect error") || msg.contains("connection refused") || msg.contains("no leader")
}

/// Transport failures and etcd's "no leader"/timeouts are transient (unavailable);
/// everything else is a backend failure.
pub(crate) fn classify(e: etcd_client::Error) -> StoreError {
    use etcd_client::Error as E;
    match e {
        E::TransportError(_) | E::IoError(_) => StoreError::Unavailable(e.to_string()),
        E::GRpcStatus(ref status) => match status.code() {
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
                StoreError::Unavailable(status.message().to_owned())
            }
            _ => StoreError::Backend(format!("etcd: {}", status.message())),
        },
        other => StoreError::Backend(format!("etcd: {other}")),
    }
}

/// A revision as etcd's signed form.
pub(crate) fn to_etcd(rev: Revision) -> Result<i64, StoreError> {
    i64::try_from(rev).map_err(|_| StoreError::Backend(format!("revision {rev} is out of range")))
}

/// An etcd revision as ours (etcd never sends negative ones).
pub(crate) fn from_etcd(rev: i64) -> Revision {
    u64::try_from(rev).unwrap_or(0)
}

/// The first key after every key that starts with `prefix`; `\0` (etcd's "to the end")
/// when there is none (empty prefix, or all `0xff`).
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// etcd's smallest key: ranges over "every key" start here.
pub(crate) fn range_start(prefix: &str) -> Vec<u8> {
    if prefix.is_empty() {
        vec![0]
    } else {
        prefix.as_bytes().to_vec()
    }
}

pub(crate) fn convert(kv: &etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
    let key = std::str::from_utf8(kv.key())
        .map_err(|_| StoreError::Backend("etcd holds a key that is not UTF-8".to_owned()))?;
    Ok(KeyValue {
        key: key.to_owned(),
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: from_etcd(kv.create_revision()),
        mod_revision: from_etcd(kv.mod_revision()),
    })
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Revision {
    header.map_or(0, |h| from_etcd(h.revision()))
}

/// The last op on each key, in key order (see the module docs).
fn collapse(ops: Vec<Op>) -> Vec<Op> {
    let mut last: std::collections::BTreeMap<String, Op> = std::collections::BTreeMap::new();
    for op in ops {
        let key = match &op {
            Op::Put { key, .. } | Op::Delete { key } => key.clone(),
        };
        last.insert(key, op);
    }
    last.into_values().collect()
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let resp = self
            .get_raw(key.as_bytes().to_vec(), GetOptions::new())
            .await?;
        resp.kvs().first().map(convert).transpose()
    }

    async fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<RangePage, StoreError> {
        let end = prefix_end(prefix.as_bytes());
        let mut start = range_start(prefix);
        if let Some(after) = start_after {
            // The first key strictly after `after`.
            let mut next = after.as_bytes().to_vec();
            next.push(0);
            if next > start {
                start = next;
            }
        }
        let past_the_end = end != [0] && start >= end;
        if past_the_end {
            return Ok(RangePage {
                items: Vec::new(),
                more: false,
                revision: self.revision().await?,
            });
        }
        if limit == 0 {
            let resp = self
                .get_raw(start, GetOptions::new().with_range(end).with_count_only())
                .await?;
            return Ok(RangePage {
                items: Vec::new(),
                more: resp.count() > 0,
                revision: header_revision(resp.header()),
            });
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let resp = self
            .get_raw(start, GetOptions::new().with_range(end).with_limit(limit))
            .await?;
        Ok(RangePage {
            items: resp.kvs().iter().map(convert).collect::<Result<_, _>>()?,
            more: resp.more(),
            revision: header_revision(resp.header()),
        })
    }

    async fn count(&self, prefix: &str) -> Result<usize, StoreError> {
        let resp = self
            .get_raw(
                range_start(prefix),
                GetOptions::new()
                    .with_range(prefix_end(prefix.as_bytes()))
                    .with_count_only(),
            )
            .await?;
        Ok(usize::try_from(resp.count()).unwrap_or(0))
    }

    async fn txn(&self, txn: Txn) -> Result<TxnOutcome, StoreError> {
        let mut compares = Vec::with_capacity(txn.compares.len());
        let mut reads = Vec::with_capacity(txn.compares.len());
        let mut expected = Vec::with_capacity(txn.compares.len());
        for Compare::ModRevision { key, revision } in &txn.compares {
            compares.push(EtcdCompare::mod_revision(
                key.as_bytes(),
                CompareOp::Equal,
                to_etcd(*revision)?,
            ));
            reads.push(TxnOp::get(
                key.as_bytes(),
                Some(GetOptions::new().with_keys_only()),
            ));
            expected.push((key.clone(), *revision));
        }
        let ops: Vec<TxnOp> = collapse(txn.ops)
            .into_iter()
            .map(|op| match op {
                Op::Put { key, value } => TxnOp::put(key, value.to_vec(), None),
                Op::Delete { key } => TxnOp::delete(key, None),
            })
            .collect();
        let request = EtcdTxn::new().when(compares).and_then(ops).or_else(reads);
        let kv = self.client.kv_client();
        let resp = self.observe(
            bounded_retry(self.deadline, || {
                let (mut kv, request) = (kv.clone(), request.clone());
                async move { kv.txn(request).await }
            })
            .await,
        )?;
        let revision = header_revision(resp.header());
        if resp.succeeded() {
            return Ok(TxnOutcome::Committed { revision });
        }
        // The else branch read each compared key, in compare order.
        for (read, (key, want)) in resp.op_responses().iter().zip(&expected) {
            let have = match read {
                TxnOpResponse::Get(get) => get
                    .kvs()
                    .first()
                    .map_or(0, |kv| from_etcd(kv.mod_revision())),
                _ => continue,
            };
            if have != *want {
                return Ok(TxnOutcome::Conflict { key: key.clone() });
            }
        }
        Err(StoreError::Backend(
            "etcd refused a txn whose compares all held".to_owned(),
        ))
    }

    async fn revision(&self) -> Result<Revision, StoreError> {
        let resp = self
            .get_raw(vec![0], GetOptions::new().with_count_only().with_limit(1))
            .await?;
        Ok(header_revision(resp.header()))
    }

    async fn watch(&self, prefix: &str, from: Revision) -> Result<Box<dyn Watcher>, StoreError> {
        let watcher = watch::EtcdWatcher::open(self.clone(), prefix, from).await?;
        Ok(Box::new(watcher))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        let current = self.revision().await?;
        if revision > current {
            return Err(StoreError::FutureRevision {
                requested: revision,
                current,
            });
        }
        let mut kv = self.client.kv_client();
        match bounded(self.deadline, kv.compact(to_etcd(revision)?, None)).await {
            Ok(_) => Ok(()),
            // Already compacted at or past it: nothing left to forget.
            Err(StoreError::Backend(msg)) if msg.contains("compacted") => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte_below_0xff() {
        assert_eq!(prefix_end(b"a/"), b"a0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b""), [0]);
        assert_eq!(prefix_end(b"\xff\xff"), [0]);
    }

    #[test]
    fn collapse_keeps_the_last_op_per_key_in_key_order() {
        let ops = Txn::new()
            .put("b", "1")
            .put("a", "1")
            .delete("b")
            .put("a", "2")
            .ops;
        assert_eq!(collapse(ops), Txn::new().put("a", "2").delete("b").ops,);
    }

    #[test]
    fn store_urls_name_endpoints() {
        let c = match EtcdConfig::from_url("etcd://h1:2379, h2:2379/") {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(c.urls(), ["http://h1:2379", "http://h2:2379"]);
        assert!(EtcdConfig::from_url("etcd://").is_err());
        assert!(EtcdConfig::from_url("sqlite").is_err());
    }
}
