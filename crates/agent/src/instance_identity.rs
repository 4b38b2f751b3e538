//! Instance identity on the agent's side: an agent host joins without the admin key. A
//! one-time join token is redeemed for an instance id and secret, kept in the state
//! directory as `instance-identity.json` (mode 0600), and exchanged for the instance
//! role's session credentials, which are refreshed well before they expire and swapped
//! into the shared [`Credentials`] source every signer holds. The wire forms of
//! Stevedore's three routes (minting, redemption, credentials) are `model`'s, shared with
//! the server.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::watch;

use crate::api::{ApiClient, ApiError};
use crate::credentials::Credentials;
use crate::task_credentials::parse_expiration;

pub use model::instance_identity::{
    ImdsCredentials, InstanceCredentialsRequest, InstanceIdentity, JoinTokenRequest,
    JoinTokenResponse, RedeemRequest, CREDENTIALS_PATH, IDENTITY_PATH, JOIN_TOKENS_PATH,
};

/// The identity file's name in the state directory.
pub const IDENTITY_FILE: &str = "instance-identity.json";

/// Why the agent could not join or keep its credentials.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The identity file could not be read or written.
    #[error("{path}: {error}")]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        error: String,
    },
    /// The server could not be reached.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The server refused (its message says what to do).
    #[error("{what} refused (HTTP {status}): {message}")]
    Refused {
        /// The call.
        what: &'static str,
        /// The HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The server's answer did not decode.
    #[error("{what}: unreadable answer: {error}")]
    Decode {
        /// The call.
        what: &'static str,
        /// The decoder's error.
        error: String,
    },
}

impl JoinError {
    /// Whether trying again later may work (the server was unreachable or failing).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Api(e) => e.is_transient(),
            Self::Refused { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// The identity file of `state_dir`.
pub fn identity_path(state_dir: &Path) -> PathBuf {
    state_dir.join(IDENTITY_FILE)
}

/// Reads the identity file; `None` when there is none.
pub fn read_identity(state_dir: &Path) -> Result<Option<InstanceIdentity>, JoinError> {
    let path = identity_path(state_dir);
    let file_error = |error: String| JoinError::File {
        path: path.clone(),
        error,
    };
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            file_error(format!(
                "not an instance identity ({e}); remove it and join with a new token"
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(file_error(e.to_string())),
    }
}

/// Writes the identity file with mode 0600 (a temporary file renamed into place, so a
/// crash leaves the old file or the new one).
pub fn write_identity(state_dir: &Path, identity: &InstanceIdentity) -> Result<(), JoinError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = identity_path(state_dir);
    let tmp = path.with_extension("json.tmp");
    let fail = |error: std::io::Error| JoinError::File {
        path: path.clone(),
        error: error.to_string(),
    };
    std::fs::create_dir_all(state_dir).map_err(fail)?;
    let bytes = serde_json::to_vec_pretty(identity).map_err(|e| JoinError::File {
        path: path.clone(),
        error: e.to_string(),
    })?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(fail)?;
    f.write_all(&bytes).map_err(fail)?;
    f.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, &path).map_err(fail)?;
    Ok(())
}

/// Decodes a route's answer: the body on 200, else the server's message as a refusal.
fn decode<T: serde::de::DeserializeOwned>(
    what: &'static str,
    status: u16,
    body: &[u8],
) -> Result<T, JoinError> {
    if status != 200 {
        let message = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .or_else(|| v.get("Message"))
                    .and_then(|m| m.as_str().map(str::to_owned))
            })
            .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
        return Err(JoinError::Refused {
            what,
            status,
            message,
        });
    }
    serde_json::from_slice(body).map_err(|e| JoinError::Decode {
        what,
        error: e.to_string(),
    })
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Plain strings only: encoding cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// Redeems `join_token` at the server.
pub async fn redeem(api: &ApiClient, join_token: &str) -> Result<InstanceIdentity, JoinError> {
    let body = encode(&RedeemRequest {
        join_token: join_token.to_owned(),
    });
    let (status, answer) = api
        .post_json_anonymous(IDENTITY_PATH, "RedeemJoinToken", body)
        .await?;
    decode("RedeemJoinToken", status, &answer)
}

/// The instance's current credentials and when they expire.
pub async fn fetch_credentials(
    api: &ApiClient,
    identity: &InstanceIdentity,
) -> Result<(Credentials, SystemTime), JoinError> {
    let body = encode(&InstanceCredentialsRequest {
        instance_id: identity.instance_id.clone(),
        instance_secret: identity.instance_secret.clone(),
    });
    let (status, answer) = api
        .post_json_anonymous(CREDENTIALS_PATH, "GetInstanceCredentials", body)
        .await?;
    let c: ImdsCredentials = decode("GetInstanceCredentials", status, &answer)?;
    let expires = parse_expiration(&c.expiration).ok_or_else(|| JoinError::Decode {
        what: "GetInstanceCredentials",
        error: format!("Expiration {:?} is not an ISO 8601 time", c.expiration),
    })?;
    Ok((
        Credentials::new(&c.access_key_id, &c.secret_access_key, Some(&c.token)),
        expires,
    ))
}

/// The identity to run as: the identity file's when there is one (a restarted agent
/// needs no new token), else `join_token` redeemed now and saved, else `None` (the
/// agent signs with its configured keys, as before).
pub async fn establish(
    api: &ApiClient,
    state_dir: &Path,
    join_token: Option<&str>,
) -> Result<Option<InstanceIdentity>, JoinError> {
    if let Some(identity) = read_identity(state_dir)? {
        if join_token.is_some() {
            tracing::info!(instance = %identity.instance_id, "An instance identity is saved; the join token is not used.");
        }
        return Ok(Some(identity));
    }
    let Some(token) = join_token else {
        return Ok(None);
    };
    let identity = redeem(api, token).await?;
    write_identity(state_dir, &identity)?;
    tracing::info!(instance = %identity.instance_id, profile = %identity.instance_profile_arn, "Join token redeemed; instance identity saved.");
    Ok(Some(identity))
}

/// When to refresh credentials fetched at `now` that expire at `expires`: after 80 % of
/// their remaining lifetime (at once when they are already expired).
pub fn compute_refresh_at(now: SystemTime, expires: SystemTime) -> SystemTime {
    let left = expires.duration_since(now).unwrap_or_default();
    now + left.mul_f64(0.8)
}

/// How long to wait before retry `attempt` (0-based) of a failed refresh: 1 s doubling
/// to at most a minute.
pub fn compute_backoff(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.min(6)).min(Duration::from_secs(60))
}

/// Keeps `credentials` (the source every signer holds) fresh until `shutdown` turns
/// true: refreshes at [`compute_refresh_at`], retrying failures with backoff.
pub async fn keep_fresh(
    api: ApiClient,
    identity: InstanceIdentity,
    credentials: Credentials,
    mut expires: SystemTime,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut attempt = 0u32;
    let mut wake = compute_refresh_at(SystemTime::now(), expires);
    loop {
        let wait = wake.duration_since(SystemTime::now()).unwrap_or_default();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        match fetch_credentials(&api, &identity).await {
            Ok((fresh, until)) => {
                credentials.replace(&fresh);
                expires = until;
                attempt = 0;
                wake = compute_refresh_at(SystemTime::now(), expires);
                tracing::info!(instance = %identity.instance_id, access_key_id = %fresh.access_key_id(), "Instance credentials refreshed.");
            }
            Err(error) => {
                let backoff = compute_backoff(attempt);
                attempt = attempt.saturating_add(1);
                wake = SystemTime::now() + backoff;
                tracing::warn!(instance = %identity.instance_id, %error, retry_in_s = backoff.as_secs(), "Could not refresh the instance credentials.");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> InstanceIdentity {
        InstanceIdentity {
            instance_id: "i-0123456789abcdef0".into(),
            instance_secret: "topsecret".into(),
            instance_profile_arn: "arn:aws:iam::123456789012:instance-profile/agents".into(),
            role_arn: "arn:aws:iam::123456789012:role/ecsInstanceRole".into(),
        }
    }

    #[test]
    fn the_identity_file_round_trips_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(read_identity(dir.path()).expect("reads").is_none());
        write_identity(dir.path(), &identity()).expect("writes");
        assert_eq!(read_identity(dir.path()).expect("reads"), Some(identity()));
        let mode = std::fs::metadata(identity_path(dir.path()))
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!format!("{:?}", identity()).contains("topsecret"));
    }

    #[test]
    fn a_corrupt_identity_file_says_what_to_do() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(identity_path(dir.path()), "nope").expect("write");
        let err = read_identity(dir.path()).expect_err("refused");
        assert!(err.to_string().contains("join with a new token"), "{err}");
    }

    #[test]
    fn refreshes_come_at_eighty_percent_of_the_lifetime_and_retries_back_off() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(
            compute_refresh_at(now, now + Duration::from_secs(3600)),
            now + Duration::from_secs(2880)
        );
        assert_eq!(compute_refresh_at(now, now - Duration::from_secs(5)), now);
        assert_eq!(compute_backoff(0), Duration::from_secs(1));
        assert_eq!(compute_backoff(3), Duration::from_secs(8));
        assert_eq!(compute_backoff(40), Duration::from_secs(60));
    }

    #[test]
    fn imds_credentials_use_ec2s_field_names() {
        let c = ImdsCredentials {
            code: "Success".into(),
            access_key_id: "ASIA".into(),
            secret_access_key: "s".into(),
            token: "t".into(),
            expiration: "2026-12-07T05:00:00Z".into(),
            last_updated: "2026-12-07T04:00:00Z".into(),
            kind: "AWS-HMAC".into(),
        };
        let v = serde_json::to_value(&c).expect("json");
        for k in [
            "Code",
            "AccessKeyId",
            "SecretAccessKey",
            "Token",
            "Expiration",
            "LastUpdated",
            "Type",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
    }

    #[test]
    fn refusals_carry_the_servers_message() {
        let err = decode::<InstanceIdentity>(
            "RedeemJoinToken",
            403,
            br#"{"__type":"AccessDenied","message":"The join token was already used; mint a new one with `stevedore join-token`."}"#,
        )
        .expect_err("refused");
        assert!(err.to_string().contains("already used"), "{err}");
        assert!(!err.is_transient());
    }
}
