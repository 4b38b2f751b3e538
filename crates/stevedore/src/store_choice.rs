//! Which state store `stevedore server` runs on, and who leads its controllers.
//!
//! `--store sqlite` (the default): the embedded database under the data dir; this one
//! process is always the leader. `--store etcd://h1:2379,h2:2379`: an etcd v3 cluster
//! shared by every replica; all replicas serve the APIs, and the controllers run only on
//! the replica that holds the etcd leader lease.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use store::etcd::{campaign, ElectionConfig, EtcdConfig, EtcdStore};
use store::{Leadership, Store};
use telemetry::CancellationToken;

/// Store options of `stevedore server`.
#[derive(clap::Args, Debug, Clone)]
pub struct StoreArgs {
    /// State store: `sqlite` (embedded, under `--data-dir`) or `etcd://host:2379[,host:2379...]`
    /// (an etcd v3 cluster shared by several replicas).
    #[arg(long = "store", env = "STEVEDORE_STORE", default_value = "sqlite")]
    store: String,
    /// PEM CA of the etcd members' certificates (turns TLS to etcd on).
    #[arg(long, env = "STEVEDORE_ETCD_CACERT")]
    etcd_cacert: Option<PathBuf>,
    /// PEM client certificate for etcd (with `--etcd-key`).
    #[arg(long, env = "STEVEDORE_ETCD_CERT", requires = "etcd_key")]
    etcd_cert: Option<PathBuf>,
    /// PEM private key of `--etcd-cert`.
    #[arg(long, env = "STEVEDORE_ETCD_KEY", requires = "etcd_cert")]
    etcd_key: Option<PathBuf>,
    /// etcd user (etcd's own authentication; with `--etcd-password`).
    #[arg(long, env = "STEVEDORE_ETCD_USER", requires = "etcd_password")]
    etcd_user: Option<String>,
    /// Password of `--etcd-user` (prefer the environment variable).
    #[arg(
        long,
        env = "STEVEDORE_ETCD_PASSWORD",
        requires = "etcd_user",
        hide_env_values = true
    )]
    etcd_password: Option<String>,
    /// Key prefix of Stevedore's state in etcd, so one etcd can hold several
    /// installations (every replica of one installation must use the same).
    #[arg(long, env = "STEVEDORE_ETCD_PREFIX", default_value = "stevedore/")]
    etcd_prefix: String,
    /// Seconds of the leader lease: a dead leader's controllers resume on another
    /// replica within about this long.
    #[arg(long, env = "STEVEDORE_LEADER_LEASE_TTL", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(2..=60))]
    leader_lease_ttl: u64,
}

/// The opened store and the leadership its controllers follow.
pub struct Opened {
    pub store: Arc<dyn Store>,
    pub leadership: Leadership,
    /// For the banner and logs: `sqlite <path>` or `etcd <endpoints>`.
    pub describe: String,
}

fn read_pem(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading the etcd {what} {}", path.display()))
}

impl StoreArgs {
    /// Opens the chosen store; with etcd also starts this replica's campaign for the
    /// leader lease, which ends with `shutdown`.
    pub async fn open(
        &self,
        data_dir: &Path,
        listen: &str,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Opened> {
        if self.store == "sqlite" {
            let db = data_dir.join("state.db");
            let describe = format!("sqlite {}", db.display());
            let opened = tokio::task::spawn_blocking(move || {
                store::SqliteStore::open(store::SqliteConfig::new(db))
            })
            .await
            .context("opening the state store")?
            .context("opening the state store")?;
            return Ok(Opened {
                store: Arc::new(opened),
                leadership: Leadership::always(),
                describe,
            });
        }
        if !self.store.starts_with("etcd://") {
            anyhow::bail!(
                "--store must be `sqlite` or `etcd://host:2379[,host:2379...]`, got '{}'",
                self.store
            );
        }
        let mut config = EtcdConfig::from_url(&self.store)?;
        config.ca_pem = self
            .etcd_cacert
            .as_deref()
            .map(|p| read_pem(p, "CA"))
            .transpose()?;
        config.identity_pem = match (&self.etcd_cert, &self.etcd_key) {
            (Some(cert), Some(key)) => {
                Some((read_pem(cert, "certificate")?, read_pem(key, "key")?))
            }
            _ => None,
        };
        config.user = self.etcd_user.clone().zip(self.etcd_password.clone());
        let prefix = if self.etcd_prefix.ends_with('/') {
            self.etcd_prefix.clone()
        } else {
            format!("{}/", self.etcd_prefix)
        };
        let etcd = EtcdStore::connect(&config)
            .await
            .with_context(|| format!("connecting to etcd at {}", config.endpoints.join(",")))?;
        let identity = format!("{}@{listen} pid {}", hostname(), std::process::id());
        // Outside the state prefix's keyspace that services lay out.
        let election_key = format!("{prefix}_leader");
        let leadership = campaign(
            etcd.client(),
            ElectionConfig {
                key: election_key.clone(),
                identity,
                ttl: Duration::from_secs(self.leader_lease_ttl),
            },
            shutdown.clone(),
        );
        let describe = format!("etcd {} (prefix {prefix})", config.endpoints.join(","));
        // Controller writes carry their term and etcd refuses those of an ended one
        // (store::fence), so a deposed leader that has not yet noticed commits nothing.
        let fenced = store::Fenced::new(Arc::new(etcd) as Arc<dyn Store>, election_key);
        let state: Arc<dyn Store> = Arc::new(store::Prefixed::new(
            Arc::new(fenced) as Arc<dyn Store>,
            format!("{prefix}state/"),
        ));
        Ok(Opened {
            store: state,
            leadership,
            describe,
        })
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown-host".to_owned())
}
