//! Credentials for pulling task images from Stevedore's own registry, as the ECS agent
//! does for ECR: an image whose registry host (`host:port`) is the agent's endpoint is
//! pulled with `AWS:<token>`, the token coming from ECR `GetAuthorizationToken` (signed,
//! service `ecr`) and cached until shortly before its `expiresAt`. Images on any other
//! registry get no credentials ([`EcrAuth::auth_for`] answers `None`).

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use model::ecr::shapes::{GetAuthorizationTokenRequest, GetAuthorizationTokenResponse};

use crate::api::{ApiClient, ApiError, ECR_SERVICE};
use crate::runtime::RegistryAuth;

/// How long before `expiresAt` a cached token is replaced (at most half its lifetime).
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// Why no registry token could be had.
#[derive(Debug, thiserror::Error)]
pub enum RegistryAuthError {
    /// `GetAuthorizationToken` failed.
    #[error("GetAuthorizationToken failed: {0}")]
    Api(#[from] ApiError),
    /// The answer carried no usable token.
    #[error("GetAuthorizationToken returned an unusable token: {0}")]
    BadToken(&'static str),
}

impl RegistryAuthError {
    /// Whether asking again may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Api(e) => e.is_transient(),
            Self::BadToken(_) => false,
        }
    }
}

/// The registry host of a Docker image reference, when it names one: the part before
/// the first `/` if it contains `.` or `:` or is `localhost` (Docker's rule).
pub fn parse_registry_host(image: &str) -> Option<&str> {
    let (first, _) = image.split_once('/')?;
    (first.contains('.') || first.contains(':') || first == "localhost").then_some(first)
}

/// A token and when it stops being used.
#[derive(Clone, Debug, PartialEq)]
struct Cached {
    password: String,
    refresh_at: SystemTime,
}

/// The decision for a cached token at `now`: `Some(password)` while it is fresh.
fn compute_fresh(cached: Option<&Cached>, now: SystemTime) -> Option<String> {
    cached
        .filter(|c| now < c.refresh_at)
        .map(|c| c.password.clone())
}

/// When a token fetched at `now` and expiring at `expires_at` (epoch seconds) should be
/// replaced: [`REFRESH_MARGIN`] before expiry, or halfway for short-lived tokens.
fn compute_refresh_at(now: SystemTime, expires_at: Option<f64>) -> SystemTime {
    let now_secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let lifetime = expires_at.map_or(0.0, |e| (e - now_secs).max(0.0));
    let margin = REFRESH_MARGIN.as_secs_f64().min(lifetime / 2.0);
    now + Duration::from_secs_f64((lifetime - margin).max(0.0))
}

/// The password of `authorizationToken` (base64 of `AWS:<password>`).
fn parse_token(response: &GetAuthorizationTokenResponse) -> Result<String, RegistryAuthError> {
    let data = response
        .authorization_data
        .as_ref()
        .and_then(|d| d.first())
        .ok_or(RegistryAuthError::BadToken("no authorizationData"))?;
    let raw = data
        .authorization_token
        .as_deref()
        .ok_or(RegistryAuthError::BadToken("no authorizationToken"))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .map_err(|_| RegistryAuthError::BadToken("not base64"))?;
    let text = String::from_utf8(decoded).map_err(|_| RegistryAuthError::BadToken("not UTF-8"))?;
    match text.split_once(':') {
        Some(("AWS", password)) if !password.is_empty() => Ok(password.to_owned()),
        _ => Err(RegistryAuthError::BadToken("not AWS:<token>")),
    }
}

/// Registry credentials for images on this Stevedore endpoint, with a token cache.
#[derive(Debug)]
pub struct EcrAuth {
    api: ApiClient,
    cached: Mutex<Option<Cached>>,
}

impl EcrAuth {
    /// Tokens from `api`'s endpoint, for images on that endpoint's `host:port`.
    pub fn new(api: ApiClient) -> Self {
        Self {
            api,
            cached: Mutex::new(None),
        }
    }

    /// A provider that signs `GetAuthorizationToken` with `credentials` (a task's
    /// execution role) instead, with a cache of its own.
    pub fn with_credentials(&self, credentials: crate::Credentials) -> Self {
        Self::new(self.api.with_credentials(credentials))
    }

    /// The registry this endpoint serves (`host:port`).
    pub fn registry_host(&self) -> &str {
        self.api.host()
    }

    /// Credentials to pull `image` with: `None` for images on other registries.
    pub async fn auth_for(&self, image: &str) -> Result<Option<RegistryAuth>, RegistryAuthError> {
        let host = self.registry_host();
        if parse_registry_host(image) != Some(host) {
            return Ok(None);
        }
        let password = self.token().await?;
        Ok(Some(RegistryAuth {
            username: "AWS".to_owned(),
            password,
            server_address: host.to_owned(),
        }))
    }

    async fn token(&self) -> Result<String, RegistryAuthError> {
        let fresh = {
            let guard = self.cached.lock().unwrap_or_else(|p| p.into_inner());
            compute_fresh(guard.as_ref(), SystemTime::now())
        };
        if let Some(password) = fresh {
            return Ok(password);
        }
        let response: GetAuthorizationTokenResponse = self
            .api
            .call_service(
                &ECR_SERVICE,
                "GetAuthorizationToken",
                &GetAuthorizationTokenRequest::default(),
            )
            .await?;
        let password = parse_token(&response)?;
        let expires_at = response
            .authorization_data
            .as_ref()
            .and_then(|d| d.first())
            .and_then(|d| d.expires_at);
        let now = SystemTime::now();
        let cached = Cached {
            password: password.clone(),
            refresh_at: compute_refresh_at(now, expires_at),
        };
        *self.cached.lock().unwrap_or_else(|p| p.into_inner()) = Some(cached);
        tracing::debug!(registry = %self.registry_host(), "Registry token fetched.");
        Ok(password)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::ecr::shapes::AuthorizationData;

    #[test]
    fn registry_host_is_the_first_component_only_when_it_looks_like_a_host() {
        assert_eq!(
            parse_registry_host("127.0.0.1:4747/team/app:v1"),
            Some("127.0.0.1:4747")
        );
        assert_eq!(parse_registry_host("localhost/app"), Some("localhost"));
        assert_eq!(
            parse_registry_host("registry.example.com/a/b@sha256:00"),
            Some("registry.example.com")
        );
        assert_eq!(parse_registry_host("team/app:v1"), None);
        assert_eq!(parse_registry_host("busybox"), None);
        assert_eq!(parse_registry_host("busybox:1.36"), None);
    }

    #[test]
    fn a_cached_token_is_used_until_shortly_before_it_expires() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let expires = 1_000_000.0 + 12.0 * 3600.0;
        let refresh_at = compute_refresh_at(t0, Some(expires));
        assert_eq!(
            refresh_at,
            t0 + Duration::from_secs(12 * 3600) - REFRESH_MARGIN
        );
        let cached = Cached {
            password: "p".into(),
            refresh_at,
        };
        assert_eq!(
            compute_fresh(Some(&cached), t0 + Duration::from_secs(3600)),
            Some("p".into())
        );
        assert_eq!(compute_fresh(Some(&cached), refresh_at), None);
        assert_eq!(compute_fresh(None, t0), None);
    }

    #[test]
    fn short_lived_and_expired_tokens_are_refreshed_early() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(
            compute_refresh_at(t0, Some(1_060.0)),
            t0 + Duration::from_secs(30)
        );
        assert_eq!(compute_refresh_at(t0, Some(10.0)), t0);
        assert_eq!(compute_refresh_at(t0, None), t0);
    }

    #[test]
    fn the_password_is_the_part_after_aws_colon() {
        let response = |token: &str| GetAuthorizationTokenResponse {
            authorization_data: Some(vec![AuthorizationData {
                authorization_token: Some(token.to_owned()),
                ..AuthorizationData::default()
            }]),
        };
        let ok = base64::engine::general_purpose::STANDARD.encode("AWS:v1.123.abc");
        assert_eq!(parse_token(&response(&ok)).ok(), Some("v1.123.abc".into()));
        let bad_user = base64::engine::general_purpose::STANDARD.encode("root:x");
        assert!(parse_token(&response(&bad_user)).is_err());
        assert!(parse_token(&response("%%%")).is_err());
        assert!(parse_token(&GetAuthorizationTokenResponse::default()).is_err());
    }
}
