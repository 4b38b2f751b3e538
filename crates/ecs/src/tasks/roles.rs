//! Task roles and execution roles: the port through which the channel mints short-lived
//! credentials for a task's `taskRoleArn` / `executionRoleArn` ([`RoleSessions`],
//! implemented by the binary with IAM, so this crate does not depend on it), and the pure
//! rules of when credentials are refreshed and how they look on the wire.
//!
//! Credentials go to the agent inside the task of a `PayloadMessage` and, before they
//! expire, again as `IAMRoleCredentialsMessage`s; a new channel session (agent restart,
//! reconnect) sends every running task with fresh credentials.

use model::acs::{RoleCredentials, RoleType};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The service a task's roles must trust.
pub const TASKS_SERVICE: &str = "ecs-tasks.amazonaws.com";

/// How long minted task credentials last (STS's default session).
pub const SESSION_DURATION: Duration = Duration::from_secs(3600);

/// Fresh credentials of one role session.
#[derive(Clone, PartialEq, Eq)]
pub struct MintedCredentials {
    /// `ASIA...`.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token.
    pub session_token: String,
    /// When they stop working.
    pub expiration: SystemTime,
}

/// Why a role session could not be minted.
#[derive(Debug, thiserror::Error)]
pub enum RoleSessionError {
    /// The role does not exist or does not trust `ecs-tasks.amazonaws.com`: the task
    /// cannot run (retrying does not help).
    #[error("{message}")]
    CannotAssume {
        /// The role.
        role_arn: String,
        /// What to tell the user (becomes the task's stoppedReason).
        message: String,
    },
    /// Something transient; the next attempt may succeed.
    #[error("could not mint credentials for {role_arn}: {message}")]
    Unavailable {
        /// The role.
        role_arn: String,
        /// Why.
        message: String,
    },
}

/// Mints credentials of a task's roles (the binary implements it with IAM/STS).
#[async_trait::async_trait]
pub trait RoleSessions: Send + Sync {
    /// Credentials of `role_arn` for the session `session_name`, as assumed by
    /// `ecs-tasks.amazonaws.com`, valid for `duration`.
    async fn issue(
        &self,
        role_arn: &str,
        session_name: &str,
        duration: Duration,
    ) -> Result<MintedCredentials, RoleSessionError>;

    /// The credentials id of one task's role: unguessable, and the same every time it is
    /// asked for the same task and role (containers keep the URI they were started with
    /// across refreshes, reconnects and server restarts).
    fn credentials_id(&self, task_arn: &str, role: RoleType) -> String;
}

/// The message AWS gives when ECS cannot assume a task's role (used as stoppedReason).
pub fn cannot_assume_message(role_arn: &str) -> String {
    format!(
        "ECS was unable to assume the role '{role_arn}' that was provided for this task. Please verify that the role being passed has the proper trust relationship and permissions and that your IAM user has permissions to pass this role."
    )
}

/// When credentials issued at `issued` and expiring at `expiration` should be replaced:
/// half-way through their life, and never later than 15 minutes before they expire
/// (when the SDKs start refreshing on their own).
pub fn compute_refresh_at(issued: SystemTime, expiration: SystemTime) -> SystemTime {
    let life = expiration.duration_since(issued).unwrap_or_default();
    let half = issued + life / 2;
    let margin = expiration
        .checked_sub(Duration::from_secs(15 * 60))
        .unwrap_or(issued);
    half.min(margin).max(issued)
}

/// Whether credentials due at `refresh_at` must be replaced at `now`.
pub fn is_refresh_due(now: SystemTime, refresh_at: SystemTime) -> bool {
    now >= refresh_at
}

/// `time` as RFC 3339 UTC to the second (`2026-12-07T03:04:05Z`), ECS's `Expiration`.
pub fn format_expiration(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 1000))
        .unwrap_or(0);
    let full = wire::xml::iso8601(secs * 1000);
    match full.strip_suffix(".000Z") {
        Some(base) => format!("{base}Z"),
        None => full,
    }
}

/// The session name of a task's role session (the task id, as ECS uses).
pub fn compute_session_name(task_arn: &str) -> String {
    let id = task_arn.rsplit('/').next().unwrap_or(task_arn);
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(*c))
        .take(64)
        .collect()
}

/// Minted credentials in ACS's form.
pub fn compute_role_credentials(
    id: String,
    role_arn: &str,
    minted: MintedCredentials,
) -> RoleCredentials {
    RoleCredentials {
        credentials_id: id,
        access_key_id: minted.access_key_id,
        secret_access_key: minted.secret_access_key,
        session_token: minted.session_token,
        expiration: format_expiration(minted.expiration),
        role_arn: role_arn.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn an_hour_session_is_refreshed_half_way() {
        let issued = at(1_000_000);
        let refresh = compute_refresh_at(issued, issued + SESSION_DURATION);
        assert_eq!(refresh, issued + Duration::from_secs(1800));
        assert!(!is_refresh_due(issued + Duration::from_secs(1799), refresh));
        assert!(is_refresh_due(issued + Duration::from_secs(1800), refresh));
    }

    #[test]
    fn long_sessions_are_refreshed_before_the_sdks_start_to_worry() {
        let issued = at(1_000_000);
        // Six hours: half-way (3 h) is long before expiry - 15 min.
        let refresh = compute_refresh_at(issued, issued + Duration::from_secs(6 * 3600));
        assert_eq!(refresh, issued + Duration::from_secs(3 * 3600));
        // Twenty minutes: half-way (10 min) is later than expiry - 15 min (5 min).
        let refresh = compute_refresh_at(issued, issued + Duration::from_secs(20 * 60));
        assert_eq!(refresh, issued + Duration::from_secs(5 * 60));
    }

    #[test]
    fn credentials_already_expired_are_due_at_once() {
        let issued = at(1_000_000);
        let refresh = compute_refresh_at(issued, at(999_000));
        assert_eq!(refresh, issued);
        assert!(is_refresh_due(issued, refresh));
    }

    #[test]
    fn expiration_is_rfc3339_to_the_second() {
        assert_eq!(format_expiration(at(1_456_380_211)), "2016-02-25T06:03:31Z");
    }

    #[test]
    fn session_names_are_the_task_id() {
        assert_eq!(
            compute_session_name("arn:aws:ecs:us-east-1:1:task/c/0123abcd"),
            "0123abcd"
        );
    }
}
