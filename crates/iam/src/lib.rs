//! `iam` serves AWS's IAM API (query protocol, `2010-05-08`) and STS
//! (`2011-06-15`) over the state store, and answers who a signed request acts as.
//!
//! - [`Iam`] and [`Sts`] are the two [`wire::Service`]s the binary registers.
//! - Every entity is one JSON record under `iam/` ([`records`]); writes are
//!   compare-and-swap through `store::Objects`, whose commit hook keeps the in-memory
//!   [`Directory`] current, so [`Iam::keys`] answers every request's key lookup from memory.
//! - Temporary credentials ([`token`]) are self-contained HMAC-authenticated records under
//!   a server key kept in the store: AssumeRole writes nothing.

mod authz;
mod directory;
mod error;
mod iam_api;
pub mod instances;
mod managed;
mod profiles;
pub mod records;
mod roles;
mod sts;
pub mod token;
mod users;
mod validate;
mod xml;

pub use directory::{Clock, Directory, RoleEntry};
pub use error::IamError;
pub use model::iam::operations::Operation as IamOperation;
pub use model::sts::operations::Operation as StsOperation;
pub use sts::SessionCredentials;

use rand::RngCore;
use records::ServerKey;
use std::sync::Arc;
use store::{Objects, Step, Store, Txn};
use token::TokenKey;
use wire::{Caller, Identity, KeyError, Keys};

/// Finds the directory of another account this server holds, by account id: what a
/// cross-account AssumeRole reads the role (and mints the session) from.
pub type Peers = Arc<dyn Fn(&str) -> Option<Arc<Directory>> + Send + Sync>;

/// What both services share: the store, the directory and the other accounts'.
struct Core {
    objects: Objects<IamError>,
    directory: Arc<Directory>,
    peers: std::sync::OnceLock<Peers>,
}

/// The IAM API.
#[derive(Clone)]
pub struct Iam {
    core: Arc<Core>,
}

/// The STS API, sharing [`Iam`]'s directory.
#[derive(Clone)]
pub struct Sts {
    core: Arc<Core>,
}

impl Iam {
    /// Opens IAM for `account` over `store`: the token key is read (or created once, with
    /// compare-and-swap, so replicas share it) and every entity loaded into the directory.
    pub async fn open(store: Arc<dyn Store>, account: &str) -> Result<Self, IamError> {
        Self::open_with_clock(store, account, Arc::new(wall_clock_secs)).await
    }

    /// [`Iam::open`] with another clock (tests).
    pub async fn open_with_clock(
        store: Arc<dyn Store>,
        account: &str,
        clock: Clock,
    ) -> Result<Self, IamError> {
        let plain: Objects<IamError> = Objects::new(store.clone());
        let key = server_key(&plain).await?;
        let directory = Arc::new(Directory::new(account, key, clock));
        let hooked = directory.clone();
        let objects = Objects::new(store).with_hook(Arc::new(move |ops: &[store::Op], _| {
            for op in ops {
                match op {
                    store::Op::Put { key, value } if directory::is_entity_key(key) => {
                        hooked.apply(key, Some(value))
                    }
                    store::Op::Delete { key } if directory::is_entity_key(key) => {
                        hooked.apply(key, None)
                    }
                    _ => {}
                }
            }
        }));
        for kv in objects.range_all(records::PREFIX).await? {
            if directory::is_entity_key(&kv.key) {
                directory.apply(&kv.key, Some(&kv.value));
            }
        }
        Ok(Self {
            core: Arc::new(Core {
                objects,
                directory,
                peers: std::sync::OnceLock::new(),
            }),
        })
    }

    /// The STS service over the same directory.
    pub fn sts(&self) -> Sts {
        Sts {
            core: self.core.clone(),
        }
    }

    /// Lets STS reach the other accounts of this server (set once; later calls are
    /// ignored): a role of another account can then be assumed where its trust policy
    /// allows the caller, as on AWS.
    pub fn set_peers(&self, peers: Peers) {
        let _ = self.core.peers.set(peers);
    }

    /// The directory.
    pub fn directory(&self) -> &Arc<Directory> {
        &self.core.directory
    }

    /// The key lookup of every signed request: the admin key is the account root; other
    /// keys and session tokens are answered by the directory.
    pub fn keys(&self, admin_access_key_id: String, admin_secret_access_key: String) -> Keys {
        let directory = self.core.directory.clone();
        let root = Caller::root(directory.account());
        Arc::new(move |id: &str, token: Option<&str>| {
            if id == admin_access_key_id {
                return Ok(Identity {
                    secret_access_key: admin_secret_access_key.clone(),
                    caller: root.clone(),
                });
            }
            directory.lookup(id, token)
        })
    }

    /// Mints credentials of the role `role_arn` for an AWS service (`trusted_service`,
    /// e.g. `ecs-tasks.amazonaws.com`) the role's trust policy lets assume it: task and
    /// execution role credentials. No caller is involved and nothing is written.
    pub async fn issue_role_session(
        &self,
        role_arn: &str,
        session_name: &str,
        trusted_service: &str,
        duration: std::time::Duration,
    ) -> Result<SessionCredentials, IamError> {
        sts::issue_for_service(
            &self.core.directory,
            role_arn,
            session_name,
            trusted_service,
            duration,
        )
    }
}

/// Keys with no IAM behind them: only the admin key, as the account root (tests and
/// tools that serve no IAM).
pub fn admin_only_keys(account: &str, admin_access_key_id: String, secret: String) -> Keys {
    let root = Caller::root(account);
    Arc::new(move |id: &str, _: Option<&str>| {
        if id == admin_access_key_id {
            Ok(Identity {
                secret_access_key: secret.clone(),
                caller: root.clone(),
            })
        } else {
            Err(KeyError::Unknown)
        }
    })
}

/// Reads the token key, creating it if no replica has yet.
async fn server_key(objects: &Objects<IamError>) -> Result<TokenKey, IamError> {
    let stored: ServerKey = objects
        .retry("iam server key", || async {
            if let Some((k, _)) = objects.get::<ServerKey>(records::SERVER_KEY).await? {
                return Ok(Step::Done(k));
            }
            let mut bytes = [0u8; 32];
            rand::thread_rng().fill_bytes(&mut bytes);
            let k = ServerKey {
                key: hex_encode(&bytes),
            };
            let txn = Txn::new()
                .when(records::SERVER_KEY, 0)
                .put(records::SERVER_KEY, store::objects::encode(&k)?);
            Ok(Step::Commit(txn, k))
        })
        .await?;
    let mut key = [0u8; 32];
    if stored.key.len() != 64 {
        return Err(IamError::Internal(
            "the stored IAM server key is malformed".into(),
        ));
    }
    for (i, chunk) in stored.key.as_bytes().chunks(2).enumerate() {
        let text = std::str::from_utf8(chunk).unwrap_or("");
        key[i] = u8::from_str_radix(text, 16)
            .map_err(|_| IamError::Internal("the stored IAM server key is malformed".into()))?;
    }
    Ok(TokenKey::new(key))
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn wall_clock_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod instances_tests;
#[cfg(test)]
mod tests;
