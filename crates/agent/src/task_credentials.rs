//! Task role and execution role credentials, in memory only: never written to the state
//! file, never logged. The server sends them inside payload tasks and refreshes them
//! with `IAMRoleCredentialsMessage`s; after an agent restart it sends them again when the
//! channel reconnects.
//!
//! Containers read their task role's credentials from the endpoint
//! (`GET /v2/credentials/<id>`, answered by [`compute_answer`]), and only from an address
//! of their own task when the task's addresses are known. One store serves every agent of
//! a process ([`TaskCredentials::global`]): the NAT rule of `169.254.170.2` reaches only
//! one of their listeners.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use model::acs::{RoleCredentials, RoleType};
use serde::Serialize;

/// The relative URI variable containers get (with `169.254.170.2` as the host).
pub const ENV_RELATIVE_URI: &str = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI";
/// The full URI variable, used when the NAT rule could not be installed.
pub const ENV_FULL_URI: &str = "AWS_CONTAINER_CREDENTIALS_FULL_URI";

/// The endpoint path of credentials `id`.
pub fn compute_path(id: &str) -> String {
    format!("/v2/credentials/{id}")
}

/// Which addresses may read a task's credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sources {
    /// Host network mode: the task shares the instance's addresses, so only the id
    /// protects its credentials (as on ECS).
    Any,
    /// The task's own addresses (bridge or awsvpc).
    Only(Vec<IpAddr>),
}

struct Entry {
    task_arn: String,
    role: RoleType,
    credentials: RoleCredentials,
    expires: Option<SystemTime>,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<String, Entry>,
    sources: HashMap<String, Sources>,
}

/// The credentials of every task's roles.
#[derive(Default)]
pub struct TaskCredentials {
    inner: RwLock<Inner>,
}

/// Why the endpoint refuses a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No id in the request.
    NoId,
    /// Unknown id, or one that belongs to another task (the two look the same, so a
    /// neighbour learns nothing).
    NotFound,
    /// The credentials expired and fresh ones have not arrived.
    Expired,
}

/// ECS's error body.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    /// ECS's error code.
    pub code: &'static str,
    /// What went wrong.
    pub message: &'static str,
}

impl Refusal {
    /// HTTP status and body, as the ECS agent answers.
    pub fn compute_response(self) -> (u16, ErrorBody) {
        match self {
            Self::NoId => (
                400,
                ErrorBody {
                    code: "NoIdInRequest",
                    message: "CredentialsV2Request: No Credential ID in the request",
                },
            ),
            Self::NotFound => (
                400,
                ErrorBody {
                    code: "InvalidIdInRequest",
                    message: "CredentialsV2Request: Credentials not found",
                },
            ),
            Self::Expired => (
                503,
                ErrorBody {
                    code: "CredentialsUninitialized",
                    message:
                        "CredentialsV2Request: Credentials expired; fresh ones are on their way",
                },
            ),
        }
    }
}

/// The 200 answer (field names as ECS's).
#[derive(Serialize)]
pub struct CredentialsBody {
    /// The role.
    #[serde(rename = "RoleArn")]
    pub role_arn: String,
    /// Access key id.
    #[serde(rename = "AccessKeyId")]
    pub access_key_id: String,
    /// Secret access key.
    #[serde(rename = "SecretAccessKey")]
    pub secret_access_key: String,
    /// Session token.
    #[serde(rename = "Token")]
    pub token: String,
    /// RFC 3339.
    #[serde(rename = "Expiration")]
    pub expiration: String,
}

// Never print credentials: only how many there are.
impl std::fmt::Debug for TaskCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("TaskCredentials")
            .field("held", &inner.by_id.len())
            .finish()
    }
}

impl TaskCredentials {
    /// The process's store.
    pub fn global() -> Arc<Self> {
        static GLOBAL: OnceLock<Arc<TaskCredentials>> = OnceLock::new();
        GLOBAL.get_or_init(Arc::default).clone()
    }

    /// Stores (or replaces) credentials of a task's role.
    pub fn put(&self, task_arn: &str, role: RoleType, credentials: RoleCredentials) {
        if credentials.credentials_id.is_empty() {
            return;
        }
        let expires = parse_expiration(&credentials.expiration);
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        // A refresh may come with a new id: the old one goes.
        inner
            .by_id
            .retain(|_, e| !(e.task_arn == task_arn && e.role == role));
        inner.by_id.insert(
            credentials.credentials_id.clone(),
            Entry {
                task_arn: task_arn.to_owned(),
                role,
                credentials,
                expires,
            },
        );
    }

    /// The current credentials of a task's role.
    pub fn get(&self, task_arn: &str, role: RoleType) -> Option<RoleCredentials> {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        inner
            .by_id
            .values()
            .find(|e| e.task_arn == task_arn && e.role == role)
            .map(|e| e.credentials.clone())
    }

    /// Records which addresses may read a task's credentials.
    pub fn set_sources(&self, task_arn: &str, sources: Sources) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        inner.sources.insert(task_arn.to_owned(), sources);
    }

    /// Forgets a task (after cleanup).
    pub fn remove_task(&self, task_arn: &str) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        inner.by_id.retain(|_, e| e.task_arn != task_arn);
        inner.sources.remove(task_arn);
    }

    /// The endpoint's answer for `id` asked from `peer` at `now`. Only task role
    /// credentials are served; execution role ones stay with the agent.
    pub fn compute_answer(
        &self,
        id: Option<&str>,
        peer: IpAddr,
        now: SystemTime,
    ) -> Result<CredentialsBody, Refusal> {
        let id = id.filter(|i| !i.is_empty()).ok_or(Refusal::NoId)?;
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let entry = inner.by_id.get(id).ok_or(Refusal::NotFound)?;
        if entry.role != RoleType::TaskApplication {
            return Err(Refusal::NotFound);
        }
        if !is_allowed(inner.sources.get(&entry.task_arn), peer) {
            tracing::warn!(task = %entry.task_arn, peer = %peer, "Credentials asked for from an address outside their task; refused.");
            return Err(Refusal::NotFound);
        }
        if entry.expires.is_some_and(|e| now >= e) {
            return Err(Refusal::Expired);
        }
        let c = &entry.credentials;
        Ok(CredentialsBody {
            role_arn: c.role_arn.clone(),
            access_key_id: c.access_key_id.clone(),
            secret_access_key: c.secret_access_key.clone(),
            token: c.session_token.clone(),
            expiration: c.expiration.clone(),
        })
    }
}

/// Role credentials as the agent's signing credentials.
pub fn to_signing(c: &RoleCredentials) -> crate::Credentials {
    crate::Credentials::new(
        &c.access_key_id,
        &c.secret_access_key,
        Some(c.session_token.as_str()).filter(|t| !t.is_empty()),
    )
}

/// Whether `peer` may read credentials of a task with `sources` (unknown: the id alone
/// decides, as before the task's addresses are known).
fn is_allowed(sources: Option<&Sources>, peer: IpAddr) -> bool {
    match sources {
        None | Some(Sources::Any) => true,
        Some(Sources::Only(list)) => list.is_empty() || list.contains(&peer),
    }
}

/// Parses `2026-12-07T03:04:05Z` (fractional seconds allowed).
pub fn parse_expiration(s: &str) -> Option<SystemTime> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.split('.').next()?;
    let mut t = time.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    // Days since the epoch (H. Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(id: &str, expiration: &str) -> RoleCredentials {
        RoleCredentials {
            credentials_id: id.into(),
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: "secret".into(),
            session_token: "token".into(),
            expiration: expiration.into(),
            role_arn: "arn:aws:iam::123456789012:role/app".into(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn before_expiry() -> SystemTime {
        parse_expiration("2026-12-07T02:00:00Z").expect("time")
    }

    #[test]
    fn expiration_parses_as_utc_seconds() {
        let t = parse_expiration("2016-02-25T06:03:31Z").expect("parses");
        assert_eq!(
            t.duration_since(UNIX_EPOCH).expect("after").as_secs(),
            1_456_380_211
        );
        assert!(parse_expiration("2016-02-25 06:03:31").is_none());
    }

    #[test]
    fn known_id_from_its_task_answers_ecs_fields() {
        let store = TaskCredentials::default();
        store.put(
            "t1",
            RoleType::TaskApplication,
            creds("id1", "2026-12-07T03:00:00Z"),
        );
        store.set_sources("t1", Sources::Only(vec![ip("172.17.0.5")]));
        let body = store
            .compute_answer(Some("id1"), ip("172.17.0.5"), before_expiry())
            .expect("served");
        let v = serde_json::to_value(&body).expect("json");
        assert_eq!(v["AccessKeyId"], "ASIAEXAMPLE");
        assert_eq!(v["Token"], "token");
        assert_eq!(v["Expiration"], "2026-12-07T03:00:00Z");
        assert_eq!(v["RoleArn"], "arn:aws:iam::123456789012:role/app");
        assert_eq!(v["SecretAccessKey"], "secret");
    }

    #[test]
    fn unknown_and_missing_ids_are_refused_like_ecs() {
        let store = TaskCredentials::default();
        let now = before_expiry();
        let missing = store.compute_answer(None, ip("172.17.0.5"), now);
        assert_eq!(missing.err(), Some(Refusal::NoId));
        let unknown = store.compute_answer(Some("nope"), ip("172.17.0.5"), now);
        assert_eq!(unknown.err(), Some(Refusal::NotFound));
        let (status, body) = Refusal::NotFound.compute_response();
        assert_eq!((status, body.code), (400, "InvalidIdInRequest"));
        assert_eq!(Refusal::NoId.compute_response().1.code, "NoIdInRequest");
    }

    #[test]
    fn another_tasks_address_cannot_read_the_credentials() {
        let store = TaskCredentials::default();
        store.put(
            "t1",
            RoleType::TaskApplication,
            creds("id1", "2026-12-07T03:00:00Z"),
        );
        store.set_sources("t1", Sources::Only(vec![ip("172.17.0.5")]));
        let other = store.compute_answer(Some("id1"), ip("172.17.0.6"), before_expiry());
        assert_eq!(other.err(), Some(Refusal::NotFound));
        // Host mode shares the instance's addresses: the id decides.
        store.set_sources("t1", Sources::Any);
        assert!(store
            .compute_answer(Some("id1"), ip("10.0.0.1"), before_expiry())
            .is_ok());
    }

    #[test]
    fn expired_credentials_are_not_served() {
        let store = TaskCredentials::default();
        store.put(
            "t1",
            RoleType::TaskApplication,
            creds("id1", "2026-12-07T01:00:00Z"),
        );
        let late = store.compute_answer(Some("id1"), ip("172.17.0.5"), before_expiry());
        assert_eq!(late.err(), Some(Refusal::Expired));
        assert_eq!(Refusal::Expired.compute_response().0, 503);
    }

    #[test]
    fn execution_role_credentials_are_never_served_to_containers() {
        let store = TaskCredentials::default();
        store.put(
            "t1",
            RoleType::TaskExecution,
            creds("ex1", "2026-12-07T03:00:00Z"),
        );
        let asked = store.compute_answer(Some("ex1"), ip("172.17.0.5"), before_expiry());
        assert_eq!(asked.err(), Some(Refusal::NotFound));
        assert!(store.get("t1", RoleType::TaskExecution).is_some());
    }

    #[test]
    fn a_refresh_replaces_the_old_credentials_and_cleanup_forgets_them() {
        let store = TaskCredentials::default();
        store.put(
            "t1",
            RoleType::TaskApplication,
            creds("id1", "2026-12-07T01:00:00Z"),
        );
        store.put(
            "t1",
            RoleType::TaskApplication,
            creds("id1", "2026-12-07T03:00:00Z"),
        );
        assert!(store
            .compute_answer(Some("id1"), ip("172.17.0.5"), before_expiry())
            .is_ok());
        store.remove_task("t1");
        assert!(store.get("t1", RoleType::TaskApplication).is_none());
    }
}
