//! Accounts as real scopes: one server holds several AWS accounts, each with its own IAM
//! (users, roles, policies, keys, session tokens) and its own regions of ECS, Logs,
//! ELBv2 and ECR (see [`crate::regions`]). A request is served by the account its access
//! key belongs to, so two accounts never see each other's resources; the account's own
//! dispatch only knows the account's own keys, so a request that reached the wrong
//! account would be refused as an unknown key, never served.
//!
//! The first account (`--account-id`) keeps its state unprefixed and its files directly
//! in the data dir, as before accounts existed; its root key is the admin key. Every
//! other account is created by that root (`POST /stevedore/accounts`, `stevedore account
//! create`), lives under `accounts/<id>/` in the same store ([`store::Prefixed`]) and
//! `<data dir>/accounts/<id>/` on disk, and is recorded (with its root key) under
//! `stevedore/accounts/<id>`; at start-up every recorded account is built again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::Context;
use model::ecs::arn::ArnScope;
use serde::{Deserialize, Serialize};
use store::Store;
use telemetry::CancellationToken;

use crate::credentials::AccessKey;
use crate::regions::{Kit, Regional, Regions, RegistryKit};

/// Where the records of the accounts other than the first live.
pub const MARKER_PREFIX: &str = "stevedore/accounts/";
/// Where another account's keys live in the store.
const STORE_PREFIX: &str = "accounts/";

/// The record of an account other than the first: its id and root key.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccountRecord {
    account_id: String,
    access_key_id: String,
    secret_access_key: String,
    created_at: i64,
}

/// One account: its IAM and its regions.
pub struct Account {
    /// The 12-digit account id.
    pub id: String,
    /// The account's IAM (and STS).
    pub iam: iam::Iam,
    /// The account's regions.
    pub regions: Regions,
    /// When it was created, in Unix seconds (`None` for the first account).
    pub created_at: Option<i64>,
    root_key_id: String,
}

impl Account {
    /// Whether `access_key_id` (with its session token) is one of this account's keys.
    fn owns(&self, access_key_id: &str, token: Option<&str>) -> bool {
        access_key_id == self.root_key_id
            || self.iam.directory().lookup(access_key_id, token).is_ok()
    }
}

/// What every account's regions are started with (absent in tests).
pub struct Template {
    /// `host:port` and scheme of the registry (one port for every account).
    pub registry: Option<(String, String)>,
    /// The first account's hidden Fargate capacity; other accounts get theirs from it.
    pub fargate: Option<Arc<crate::fargate::Provisioner>>,
    /// `--agent-disconnect-timeout`, in seconds.
    pub disconnect_timeout: f64,
    /// `--time-scale`: how many times faster than AWS alarm periods run.
    pub time_scale: f64,
    /// `--stopped-task-retention` and the other ECS windows.
    pub retention: ecs::Retention,
    /// Whether this process serves the ELBv2 listeners.
    pub serve_lb: bool,
    /// `--lb-metrics-interval`: the period of the AWS/ApplicationELB metrics.
    pub lb_metrics_interval: std::time::Duration,
    /// Stops every account's background loops.
    pub shutdown: CancellationToken,
    /// The endpoint Auto Scaling's `local` instances (agent processes) call; `None`:
    /// group instances are records only.
    pub instances_endpoint: Option<String>,
    /// Whether this replica runs the controllers now (always with SQLite).
    pub leadership: store::Leadership,
}

impl Template {
    fn kit(
        &self,
        iam: &iam::Iam,
        key: &AccessKey,
        region: &str,
        dir: &Path,
        first: bool,
        shared: &Shared,
    ) -> Kit {
        Kit {
            registry: self.registry.as_ref().map(|(host, scheme)| RegistryKit {
                host: host.clone(),
                scheme: scheme.clone(),
                // Registry tokens act as their principal (of this account or another),
                // with its policies as IAM holds them now.
                identity: Arc::new(
                    crate::registry_identity::RegistryIdentity::new(iam.directory().clone())
                        .with_peers(shared.directory_finder()),
                ),
                book: shared.registries.clone(),
                replicas: Some(shared.replicas()),
            }),
            fargate: self.fargate.as_ref().map(|base| {
                if first {
                    base.clone()
                } else {
                    base.for_account(region, dir.join("fargate"), key)
                }
            }),
            role_sessions: Some(Arc::new(crate::task_roles::IamRoleSessions::new(
                iam.clone(),
                &key.secret_access_key,
            ))),
            disconnect_timeout: self.disconnect_timeout,
            time_scale: self.time_scale,
            retention: self.retention,
            serve_lb: self.serve_lb,
            lb_metrics_interval: self.lb_metrics_interval,
            shutdown: self.shutdown.clone(),
            instances: self.instances_endpoint.as_ref().and_then(|endpoint| {
                // `local` agents, or hollow instances when the launch template says so.
                let local = crate::local_instances::LocalInstances::new(
                    endpoint.clone(),
                    region.to_owned(),
                    key.clone(),
                    dir.join("instances"),
                );
                let sim = crate::sim_instances::SimInstances::new(endpoint, region, key);
                local
                    .and_then(|local| Ok((local, sim?)))
                    .map(|(local, sim)| {
                        Arc::new(crate::sim_instances::ByLaunchTemplate {
                            default: Arc::new(local),
                            sim: Arc::new(sim),
                        }) as Arc<dyn autoscaling::InstanceProvider>
                    })
                .map_err(
                    |error| tracing::warn!(%error, "Auto Scaling instances will be records only."),
                )
                .ok()
            }),
            leadership: self.leadership.clone(),
        }
    }
}

/// Why an account could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The id is not 12 digits.
    #[error("The account id must be 12 digits, got '{0}'.")]
    InvalidId(String),
    /// The id is taken.
    #[error("The account {0} already exists.")]
    Exists(String),
    /// The store or the account's files failed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Every account this server holds.
pub struct Accounts {
    first: Arc<Account>,
    others: RwLock<HashMap<String, Arc<Account>>>,
    builder: Builder,
    /// One account is created at a time, so two calls never make one id twice.
    creating: tokio::sync::Mutex<()>,
}

/// What every account is built from.
struct Builder {
    root: Arc<dyn Store>,
    data_dir: PathBuf,
    region: String,
    endpoint: String,
    template: Option<Template>,
    shared: Shared,
}

/// What the accounts find each other by.
#[derive(Default)]
struct Shared {
    /// Every account's IAM directory, by id: how one account's STS reaches another's
    /// roles, and a registry another account's principals.
    directories: Arc<RwLock<HashMap<String, Arc<iam::Directory>>>>,
    /// Every account's registries, by account and region.
    registries: crate::regions::RegistryBook,
    /// The accounts themselves, once they are shared ([`Accounts::bind`]): replication
    /// builds a destination region on first use.
    accounts: Arc<std::sync::OnceLock<std::sync::Weak<Accounts>>>,
}

impl Shared {
    /// Finds the registry of an account and region of this server, building the region
    /// when it is not served yet (replication destinations).
    fn replicas(&self) -> registry::Replicas {
        let accounts = self.accounts.clone();
        Arc::new(move |account: String, region: String| {
            let accounts = accounts.clone();
            Box::pin(async move {
                let accounts = accounts.get()?.upgrade()?;
                let account = accounts.get(&account)?;
                match account.regions.get_or_build(&region).await {
                    Ok(regional) => regional.registry.clone(),
                    Err(error) => {
                        tracing::warn!(account = %account.id, %region, %error, "Could not bring a replication destination's region into service.");
                        None
                    }
                }
            })
        })
    }

    fn directory_finder(&self) -> iam::Peers {
        let directories = self.directories.clone();
        Arc::new(move |id: &str| {
            directories
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(id)
                .cloned()
        })
    }
}

impl Accounts {
    /// The accounts of `root` (files under `data_dir`): the first one (`scope`'s account,
    /// whose root key is `admin`) is built now; [`Accounts::resume`] brings the others.
    pub async fn open(
        (root, data_dir): (Arc<dyn Store>, PathBuf),
        scope: &ArnScope,
        endpoint: String,
        admin: &AccessKey,
        template: Option<Template>,
    ) -> anyhow::Result<Self> {
        let builder = Builder {
            root: root.clone(),
            data_dir: data_dir.clone(),
            region: scope.region.clone(),
            endpoint,
            template,
            shared: Shared::default(),
        };
        let first = builder
            .build(&scope.account_id, admin, root, data_dir, None)
            .await?;
        let accounts = Self {
            first,
            others: RwLock::default(),
            builder,
            creating: tokio::sync::Mutex::new(()),
        };
        accounts.join(&accounts.first);
        Ok(accounts)
    }

    /// Makes `account`'s IAM reachable from every account's STS, and theirs from its.
    fn join(&self, account: &Account) {
        let shared = &self.builder.shared;
        shared
            .directories
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(account.id.clone(), account.iam.directory().clone());
        account.iam.set_peers(shared.directory_finder());
    }

    /// Lets what needs the accounts later (replication) reach them once they are shared.
    pub fn bind(self: &Arc<Self>) {
        let _ = self.builder.shared.accounts.set(Arc::downgrade(self));
    }

    /// The first account (`--account-id`, the admin key's).
    pub fn first(&self) -> &Arc<Account> {
        &self.first
    }

    /// Every account, the first one first.
    pub fn all(&self) -> Vec<Arc<Account>> {
        let mut all = vec![self.first.clone()];
        all.extend(self.read_others().values().cloned());
        all
    }

    fn read_others(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Account>>> {
        self.others
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The account `access_key_id` (with its session token) belongs to; the first
    /// account for keys no account knows (its dispatch then words the refusal). With
    /// one account this is a pointer copy.
    pub fn owner(&self, access_key_id: &str, token: Option<&str>) -> Arc<Account> {
        let others = self.read_others();
        if others.is_empty() || self.first.owns(access_key_id, token) {
            return self.first.clone();
        }
        others
            .values()
            .find(|a| a.owns(access_key_id, token))
            .cloned()
            .unwrap_or_else(|| self.first.clone())
    }

    /// The account whose id is `id`, if this server holds it.
    pub fn get(&self, id: &str) -> Option<Arc<Account>> {
        if id == self.first.id {
            return Some(self.first.clone());
        }
        self.read_others().get(id).cloned()
    }

    /// Creates an account (`id`, or a new random one) and returns it with its root key.
    /// The record is committed before the account serves, so an acknowledged account
    /// survives a crash.
    pub async fn create(&self, id: Option<&str>) -> Result<(Arc<Account>, AccessKey), CreateError> {
        let _creating = self.creating.lock().await;
        let id = match id {
            Some(id) => {
                if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(CreateError::InvalidId(id.to_owned()));
                }
                id.to_owned()
            }
            None => loop {
                let candidate = random_account_id();
                if self.get(&candidate).is_none() {
                    break candidate;
                }
            },
        };
        let marker = format!("{MARKER_PREFIX}{id}");
        if self.get(&id).is_some()
            || self
                .builder
                .root
                .get(&marker)
                .await
                .map_err(anyhow::Error::from)?
                .is_some()
        {
            return Err(CreateError::Exists(id));
        }
        let key = crate::credentials::generate();
        let record = AccountRecord {
            account_id: id.clone(),
            access_key_id: key.access_key_id.clone(),
            secret_access_key: key.secret_access_key.clone(),
            created_at: chrono_now(),
        };
        let value = serde_json::to_vec(&record).context("encoding the account record")?;
        // Create-only: a concurrent replica creating the same id loses cleanly.
        let outcome = self
            .builder
            .root
            .txn(
                store::Txn::new()
                    .when(marker.clone(), 0)
                    .put(marker, bytes::Bytes::from(value)),
            )
            .await
            .context("recording the account")?;
        if let store::TxnOutcome::Conflict { .. } = outcome {
            return Err(CreateError::Exists(id));
        }
        let account = self.bring(&record).await?;
        tracing::info!(account = %id, "Account created.");
        Ok((account, key))
    }

    /// Builds the account of `record` and adds it to the served set.
    async fn bring(&self, record: &AccountRecord) -> anyhow::Result<Arc<Account>> {
        let id = &record.account_id;
        let view: Arc<dyn Store> = Arc::new(store::Prefixed::new(
            self.builder.root.clone(),
            format!("{STORE_PREFIX}{id}/"),
        ));
        let dir = self.builder.data_dir.join("accounts").join(id);
        let private = dir.clone();
        tokio::task::spawn_blocking(move || agent::modes::private_dir(&private))
            .await
            .context("creating the account's directory")??;
        let key = AccessKey {
            access_key_id: record.access_key_id.clone(),
            secret_access_key: record.secret_access_key.clone(),
        };
        let account = self
            .builder
            .build(id, &key, view, dir, Some(record.created_at))
            .await?;
        account
            .regions
            .resume()
            .await
            .with_context(|| format!("bringing back the regions of account {id}"))?;
        self.join(&account);
        self.others
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.clone(), account.clone());
        Ok(account)
    }

    /// Brings back every account (and every region of each) that holds state.
    pub async fn resume(&self) -> anyhow::Result<()> {
        self.first
            .regions
            .resume()
            .await
            .context("bringing the regions back")?;
        let recorded = self
            .builder
            .root
            .range(MARKER_PREFIX, None, usize::MAX)
            .await?;
        for kv in recorded.items {
            let record: AccountRecord = match serde_json::from_slice(&kv.value) {
                Ok(r) => r,
                Err(error) => {
                    tracing::warn!(key = %kv.key, %error, "Skipped an unreadable account record.");
                    continue;
                }
            };
            if let Err(error) = self.bring(&record).await {
                tracing::warn!(account = %record.account_id, %error, "Could not bring an account back.");
            }
        }
        Ok(())
    }

    /// The region whose registry issued the token of a `/v2/` request's `Authorization`
    /// header, in whichever account; the first account's default region for anonymous
    /// requests and tokens no registry issued (its registry then words the refusal). One
    /// `docker login` holds one registry's token, so it reaches that registry's
    /// repositories.
    pub async fn registry_for(&self, authorization: Option<&str>) -> Arc<Regional> {
        if authorization.is_some() {
            for region in self.regions() {
                if let Some(registry) = &region.registry {
                    if registry.issued(authorization).await {
                        return region;
                    }
                }
            }
        }
        self.first.regions.default_region().clone()
    }

    /// Every region of every account.
    pub fn regions(&self) -> Vec<Arc<Regional>> {
        self.all().iter().flat_map(|a| a.regions.all()).collect()
    }

    /// Stops every account's regions; how many loops were still running after `within`.
    pub async fn stop(&self, within: std::time::Duration) -> usize {
        let mut left = 0;
        for account in self.all() {
            left += account.regions.stop(within).await;
        }
        left
    }
}

impl Builder {
    async fn build(
        &self,
        id: &str,
        key: &AccessKey,
        store: Arc<dyn Store>,
        dir: PathBuf,
        created_at: Option<i64>,
    ) -> anyhow::Result<Arc<Account>> {
        // Only the first account has no creation record.
        let first = created_at.is_none();
        let iam = iam::Iam::open(store.clone(), id)
            .await
            .with_context(|| format!("opening IAM of account {id}"))?;
        let keys = iam.keys(key.access_key_id.clone(), key.secret_access_key.clone());
        let kit = self
            .template
            .as_ref()
            .map(|t| t.kit(&iam, key, &self.region, &dir, first, &self.shared));
        let scope = ArnScope {
            region: self.region.clone(),
            account_id: id.to_owned(),
        };
        let regions = Regions::new(
            (store, dir),
            &scope,
            self.endpoint.clone(),
            (keys, Some(iam.clone())),
            kit,
        )
        .await
        .with_context(|| format!("opening the regions of account {id}"))?;
        Ok(Arc::new(Account {
            id: id.to_owned(),
            iam,
            regions,
            created_at,
            root_key_id: key.access_key_id.clone(),
        }))
    }
}

fn random_account_id() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    // AWS account ids do not start with 0 in practice; neither do ours, so they read well.
    let first: u8 = rng.gen_range(1..=9);
    let rest: String = (0..11)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect();
    format!("{first}{rest}")
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The path of Stevedore's own account-creation route.
pub const ACCOUNTS_PATH: &str = "/stevedore/accounts";

/// The body of `POST /stevedore/accounts`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateAccountRequest {
    /// The new account's id; a random one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

/// The answer of `POST /stevedore/accounts`: the account and its root key (shown once).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateAccountResponse {
    /// The new account's id.
    pub account_id: String,
    /// Its root user's ARN.
    pub arn: String,
    /// The root user's access key id.
    pub access_key_id: String,
    /// The root user's secret access key.
    pub secret_access_key: String,
}

/// One account in the answer of `GET /stevedore/accounts`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountSummary {
    /// The account's id.
    pub account_id: String,
    /// Its root user's ARN.
    pub arn: String,
    /// When it was created (Unix seconds); absent for the first account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
}

/// The answer of `GET /stevedore/accounts`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListAccountsResponse {
    /// Every account, the first one first, then by id.
    pub accounts: Vec<AccountSummary>,
}

/// The caller, when it is the first account's root (the only one that manages accounts);
/// else the response refusing it.
fn first_root(
    app: &crate::http::App,
    method: &http::Method,
    uri: &http::Uri,
    headers: &http::HeaderMap,
    body: &[u8],
    what: &str,
) -> Result<wire::Caller, Box<axum::response::Response>> {
    use crate::http::aws_error;
    let (caller, account) = crate::http::authenticate_global(app, method, uri, headers, body)
        .map_err(|e| Box::new(aws_error(&e)))?;
    let first = app.accounts().first();
    if account.id != first.id || !caller.is_root() {
        return Err(Box::new(aws_error(
            &wire::AwsError::client(
                "AccessDeniedException",
                format!(
                    "{} is not authorized to {what}: only the root user of account {} (this server's first account) can.",
                    caller.principal_arn(),
                    first.id
                ),
            )
            .with_status(403),
        )));
    }
    Ok(caller)
}

fn json_response<T: Serialize>(value: &T) -> axum::response::Response {
    use axum::response::IntoResponse;
    match serde_json::to_vec(value) {
        Ok(body) => ([(http::header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => crate::http::aws_error(&wire::AwsError::server("InternalFailure", e.to_string())),
    }
}

/// `GET /stevedore/accounts`: the first account's root lists every account.
pub async fn list_route(
    axum::extract::State(app): axum::extract::State<Arc<crate::http::App>>,
    method: http::Method,
    uri: http::Uri,
    headers: http::HeaderMap,
) -> axum::response::Response {
    if let Err(refused) = first_root(&app, &method, &uri, &headers, &[], "list accounts") {
        return *refused;
    }
    let mut all = app.accounts().all();
    all[1..].sort_by(|a, b| a.id.cmp(&b.id));
    json_response(&ListAccountsResponse {
        accounts: all
            .iter()
            .map(|a| AccountSummary {
                account_id: a.id.clone(),
                arn: format!("arn:aws:iam::{}:root", a.id),
                created_at: a.created_at,
            })
            .collect(),
    })
}

/// `POST /stevedore/accounts`: only the first account's root (the server's administrator,
/// as an organization's management account is on AWS) creates accounts.
pub async fn create_route(
    axum::extract::State(app): axum::extract::State<Arc<crate::http::App>>,
    method: http::Method,
    uri: http::Uri,
    headers: http::HeaderMap,
    bytes: bytes::Bytes,
) -> axum::response::Response {
    use crate::http::{aws_error, client_error};
    if let Err(refused) = first_root(&app, &method, &uri, &headers, &bytes, "create accounts") {
        return *refused;
    }
    let req: CreateAccountRequest = if bytes.is_empty() {
        CreateAccountRequest::default()
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(r) => r,
            Err(e) => {
                return client_error(
                    "InvalidParameterException",
                    &format!("The body must be {{\"accountId\"?: \"<12 digits>\"}}: {e}"),
                )
            }
        }
    };
    match app.accounts().create(req.account_id.as_deref()).await {
        Ok((created, key)) => {
            let answer = CreateAccountResponse {
                arn: format!("arn:aws:iam::{}:root", created.id),
                account_id: created.id.clone(),
                access_key_id: key.access_key_id,
                secret_access_key: key.secret_access_key,
            };
            json_response(&answer)
        }
        Err(e @ CreateError::InvalidId(_)) => {
            client_error("InvalidParameterException", &e.to_string())
        }
        Err(e @ CreateError::Exists(_)) => {
            client_error("DuplicateAccountException", &e.to_string())
        }
        Err(CreateError::Internal(error)) => {
            tracing::error!(error = %format!("{error:#}"), "Could not create an account.");
            aws_error(&wire::AwsError::server(
                "InternalFailure",
                "The account could not be created.",
            ))
        }
    }
}
