//! The in-memory directory of IAM: every user, role, managed policy and instance profile,
//! kept current from the store's commits (the [`Directory::apply`] hook), so a signed
//! request's key is looked up in O(1) without touching the store: access key → secret,
//! user and the user's compiled policies; session token → role session and the role's
//! compiled policies (looked up by role, never frozen in the token).

use crate::records::{
    self, PolicyRecord, ProfileRecord, RoleRecord, UserRecord, POLICY, PROFILE, ROLE, USER,
};
use crate::token::{Subject, TokenError, TokenKey};
use policy::{Policy, PolicyKind, Principal};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use wire::{Caller, Identity, KeyError};

/// Unix seconds, from the wall clock or a test's.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// A role with its compiled trust policy.
#[derive(Debug)]
pub struct RoleEntry {
    /// The stored role.
    pub record: RoleRecord,
    /// The trust policy, compiled (`None` if it no longer parses).
    pub trust: Option<Arc<Policy>>,
    /// Whether the trust policy lets the account (its root) assume the role.
    pub trusts_account: bool,
}

#[derive(Default)]
struct State {
    users: HashMap<String, Arc<UserRecord>>,
    roles: HashMap<String, Arc<RoleEntry>>,
    policies: HashMap<String, Arc<PolicyRecord>>,
    profiles: HashMap<String, Arc<ProfileRecord>>,
    /// Access key id → lower-cased user name.
    keys: HashMap<String, String>,
}

/// Every IAM entity, in memory.
pub struct Directory {
    account: String,
    token_key: TokenKey,
    clock: Clock,
    state: RwLock<State>,
    /// Compiled identity policies by `u:<user>` / `r:<role>`; emptied on every change.
    compiled: Mutex<HashMap<String, Arc<[Policy]>>>,
    /// Identities already looked up, by access key id; emptied on every change. A
    /// request then costs a map lookup and a few reference counts, not a principal and
    /// policy set built anew (and, for sessions, a token opened anew).
    identities: Mutex<IdentityCache>,
}

/// The most identities remembered; past it the cache starts over.
const IDENTITY_CACHE_LIMIT: usize = 10_000;

#[derive(Default)]
struct IdentityCache {
    /// Bumped by every change, so a lookup that began before a change never stores
    /// what it found after it.
    generation: u64,
    entries: HashMap<String, CachedIdentity>,
}

struct CachedIdentity {
    /// The session token the identity was opened from (`None` for long-term keys).
    token: Option<String>,
    /// Unix seconds when a session's token expires.
    expires: Option<i64>,
    identity: Identity,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl Directory {
    /// An empty directory for `account`.
    pub fn new(account: &str, token_key: TokenKey, clock: Clock) -> Self {
        Self {
            account: account.to_owned(),
            token_key,
            clock,
            state: RwLock::new(State::default()),
            compiled: Mutex::new(HashMap::new()),
            identities: Mutex::new(IdentityCache::default()),
        }
    }

    /// The account id.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The token key.
    pub fn token_key(&self) -> &TokenKey {
        &self.token_key
    }

    /// Unix seconds now.
    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    /// Applies one stored change: `value` is the new JSON, `None` a deletion. Keys outside
    /// IAM's entities are ignored; a value that does not decode is logged and skipped.
    pub fn apply(&self, key: &str, value: Option<&[u8]>) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let result = if let Some(name) = key.strip_prefix(USER) {
            apply_user(&mut state, name, value)
        } else if let Some(name) = key.strip_prefix(ROLE) {
            apply_role(&mut state, &self.account, name, value)
        } else if let Some(name) = key.strip_prefix(POLICY) {
            apply_plain(&mut state.policies, name, value)
        } else if let Some(name) = key.strip_prefix(PROFILE) {
            apply_plain(&mut state.profiles, name, value)
        } else {
            return;
        };
        drop(state);
        if let Err(e) = result {
            tracing::warn!(key, error = %e, "Unreadable IAM record skipped.");
        }
        self.compiled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        let mut identities = self
            .identities
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        identities.generation += 1;
        identities.entries.clear();
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The user named `name` (any case).
    pub fn user(&self, name: &str) -> Option<Arc<UserRecord>> {
        self.read().users.get(&name.to_ascii_lowercase()).cloned()
    }

    /// The role named `name` (any case).
    pub fn role(&self, name: &str) -> Option<Arc<RoleEntry>> {
        self.read().roles.get(&name.to_ascii_lowercase()).cloned()
    }

    /// The customer managed policy named `name` (any case).
    pub fn policy(&self, name: &str) -> Option<Arc<PolicyRecord>> {
        self.read()
            .policies
            .get(&name.to_ascii_lowercase())
            .cloned()
    }

    /// The instance profile named `name` (any case).
    pub fn profile(&self, name: &str) -> Option<Arc<ProfileRecord>> {
        self.read()
            .profiles
            .get(&name.to_ascii_lowercase())
            .cloned()
    }

    /// The user holding access key `id`.
    pub fn user_by_key(&self, id: &str) -> Option<Arc<UserRecord>> {
        let state = self.read();
        state
            .keys
            .get(id)
            .and_then(|name| state.users.get(name))
            .cloned()
    }

    /// Every user, by name.
    pub fn users(&self) -> Vec<Arc<UserRecord>> {
        sorted(self.read().users.values().cloned(), |u| u.name.clone())
    }

    /// Every role, by name.
    pub fn roles(&self) -> Vec<Arc<RoleEntry>> {
        sorted(self.read().roles.values().cloned(), |r| {
            r.record.name.clone()
        })
    }

    /// Every customer managed policy, by name.
    pub fn policies(&self) -> Vec<Arc<PolicyRecord>> {
        sorted(self.read().policies.values().cloned(), |p| p.name.clone())
    }

    /// Every instance profile, by name.
    pub fn profiles(&self) -> Vec<Arc<ProfileRecord>> {
        sorted(self.read().profiles.values().cloned(), |p| p.name.clone())
    }

    /// How many users and roles have the managed policy `arn` attached.
    pub fn attachment_count(&self, arn: &str) -> usize {
        let state = self.read();
        let users = state
            .users
            .values()
            .filter(|u| u.attached.iter().any(|a| a == arn));
        let roles = state
            .roles
            .values()
            .filter(|r| r.record.attached.iter().any(|a| a == arn));
        users.count() + roles.count()
    }

    /// The document of a managed policy's default version: AWS's or the account's.
    pub fn managed_document(&self, arn: &str) -> Option<String> {
        if let Some(aws) = policy::managed::by_arn(arn) {
            return Some(aws.document.to_owned());
        }
        let name = arn.rsplit('/').next()?;
        let p = self.policy(name)?;
        (p.arn == arn)
            .then(|| p.default_document().map(str::to_owned))
            .flatten()
    }

    /// The compiled identity policies (inline, then attached) of a user or role.
    fn compiled(
        &self,
        cache_key: String,
        inline: &std::collections::BTreeMap<String, String>,
        attached: &[String],
    ) -> Arc<[Policy]> {
        let mut cache = self.compiled.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(p) = cache.get(&cache_key) {
            return p.clone();
        }
        let mut out = Vec::with_capacity(inline.len() + attached.len());
        for (name, doc) in inline {
            match Policy::parse(doc, PolicyKind::Identity) {
                Ok(p) => out.push(p.with_label(name)),
                Err(e) => {
                    tracing::warn!(policy = name, error = %e, "Stored inline policy no longer parses.")
                }
            }
        }
        for arn in attached {
            let Some(doc) = self.managed_document(arn) else {
                continue;
            };
            match Policy::parse(&doc, PolicyKind::Identity) {
                Ok(p) => out.push(p.with_label(arn)),
                Err(e) => {
                    tracing::warn!(policy = arn, error = %e, "Stored managed policy no longer parses.")
                }
            }
        }
        let compiled: Arc<[Policy]> = out.into();
        cache.insert(cache_key, compiled.clone());
        compiled
    }

    /// The compiled identity policies of `user`.
    pub fn user_policies(&self, user: &UserRecord) -> Arc<[Policy]> {
        self.compiled(
            format!("u:{}", user.name.to_ascii_lowercase()),
            &user.inline,
            &user.attached,
        )
    }

    /// The compiled identity policies of `role`.
    pub fn role_policies(&self, role: &RoleRecord) -> Arc<[Policy]> {
        self.compiled(
            format!("r:{}", role.name.to_ascii_lowercase()),
            &role.inline,
            &role.attached,
        )
    }

    /// The caller a user's requests act as.
    pub fn user_caller(&self, user: &UserRecord) -> Caller {
        let principal = user.tags.iter().fold(Principal::user(&user.arn), |p, t| {
            p.with_tag(&t.key, &t.value)
        });
        Caller::new(principal, &user.id, self.user_policies(user))
    }

    /// The caller a role session's requests act as.
    pub fn session_caller(
        &self,
        role: &RoleRecord,
        session: &str,
        tags: &[(String, String)],
    ) -> Caller {
        let arn = session_arn(&self.account, &role.name, session);
        let principal = tags
            .iter()
            .fold(Principal::assumed_role(&arn, &role.arn), |p, (k, v)| {
                p.with_tag(k, v)
            });
        let principal = role
            .tags
            .iter()
            .filter(|t| !tags.iter().any(|(k, _)| k.eq_ignore_ascii_case(&t.key)))
            .fold(principal, |p, t| p.with_tag(&t.key, &t.value));
        Caller::new(
            principal,
            &format!("{}:{session}", role.id),
            self.role_policies(role),
        )
    }

    /// Looks up the credentials of a signed request (not the admin key's).
    pub fn lookup(&self, access_key_id: &str, token: Option<&str>) -> Result<Identity, KeyError> {
        let generation = {
            let cache = self
                .identities
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(hit) = cache.entries.get(access_key_id) {
                let fresh = hit.expires.is_none_or(|x| self.now() < x);
                if fresh && hit.token.as_deref() == token {
                    return Ok(hit.identity.clone());
                }
            }
            cache.generation
        };
        let (identity, expires) = if access_key_id.starts_with("ASIA") {
            self.lookup_session(access_key_id, token)?
        } else {
            (self.lookup_user(access_key_id)?, None)
        };
        let mut cache = self
            .identities
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if cache.generation == generation {
            if cache.entries.len() >= IDENTITY_CACHE_LIMIT {
                cache.entries.clear();
            }
            cache.entries.insert(
                access_key_id.to_owned(),
                CachedIdentity {
                    token: token.map(str::to_owned),
                    expires,
                    identity: identity.clone(),
                },
            );
        }
        Ok(identity)
    }

    fn lookup_user(&self, access_key_id: &str) -> Result<Identity, KeyError> {
        let user = self.user_by_key(access_key_id).ok_or(KeyError::Unknown)?;
        let key = user
            .keys
            .iter()
            .find(|k| k.id == access_key_id && k.active)
            .ok_or(KeyError::Unknown)?;
        Ok(Identity {
            secret_access_key: key.secret.clone(),
            caller: self.user_caller(&user),
        })
    }

    /// A session's identity and when its token expires.
    fn lookup_session(
        &self,
        access_key_id: &str,
        token: Option<&str>,
    ) -> Result<(Identity, Option<i64>), KeyError> {
        let token = token.ok_or(KeyError::InvalidToken)?;
        let claims = self
            .token_key
            .open(token, access_key_id, self.now())
            .map_err(|e| match e {
                TokenError::Invalid => KeyError::InvalidToken,
                TokenError::Expired => KeyError::ExpiredToken,
            })?;
        let caller = match &claims.subject {
            Subject::Role { name, id, session } => {
                let role = self.role(name).ok_or(KeyError::InvalidToken)?;
                if role.record.id != *id {
                    return Err(KeyError::InvalidToken);
                }
                self.session_caller(&role.record, session, &claims.tags)
            }
            Subject::User { name, id } => {
                let user = self.user(name).ok_or(KeyError::InvalidToken)?;
                if user.id != *id {
                    return Err(KeyError::InvalidToken);
                }
                self.user_caller(&user)
            }
            Subject::Root => Caller::root(&self.account),
        };
        let caller = match &claims.instance {
            Some(id) => caller.with_instance_id(id),
            None => caller,
        }
        .with_session_expiry(claims.expires);
        Ok((
            Identity {
                secret_access_key: self.token_key.secret_for(access_key_id),
                caller,
            },
            Some(claims.expires),
        ))
    }
}

/// `arn:aws:sts::<account>:assumed-role/<role>/<session>` (no role path, as AWS writes it).
pub fn session_arn(account: &str, role: &str, session: &str) -> String {
    format!("arn:aws:sts::{account}:assumed-role/{role}/{session}")
}

fn sorted<T>(items: impl Iterator<Item = T>, by: impl Fn(&T) -> String) -> Vec<T> {
    let mut v: Vec<T> = items.collect();
    v.sort_by_cached_key(by);
    v
}

fn apply_user(state: &mut State, name: &str, value: Option<&[u8]>) -> Result<(), String> {
    if let Some(old) = state.users.remove(name) {
        for k in &old.keys {
            state.keys.remove(&k.id);
        }
    }
    let Some(bytes) = value else { return Ok(()) };
    let user: UserRecord = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    for k in &user.keys {
        state.keys.insert(k.id.clone(), name.to_owned());
    }
    state.users.insert(name.to_owned(), Arc::new(user));
    Ok(())
}

fn apply_role(
    state: &mut State,
    account: &str,
    name: &str,
    value: Option<&[u8]>,
) -> Result<(), String> {
    state.roles.remove(name);
    let Some(bytes) = value else { return Ok(()) };
    let record: RoleRecord = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let trust = Policy::parse(&record.trust, PolicyKind::Trust)
        .ok()
        .map(|p| Arc::new(p.with_label(&record.arn)));
    let trusts_account = crate::sts::trust_names_account(&record.trust, account);
    let entry = RoleEntry {
        record,
        trust,
        trusts_account,
    };
    state.roles.insert(name.to_owned(), Arc::new(entry));
    Ok(())
}

fn apply_plain<T: serde::de::DeserializeOwned>(
    map: &mut HashMap<String, Arc<T>>,
    name: &str,
    value: Option<&[u8]>,
) -> Result<(), String> {
    map.remove(name);
    let Some(bytes) = value else { return Ok(()) };
    let record: T = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    map.insert(name.to_owned(), Arc::new(record));
    Ok(())
}

/// Whether `key` is one the directory keeps.
pub fn is_entity_key(key: &str) -> bool {
    key.starts_with(records::PREFIX) && key != records::SERVER_KEY
}
