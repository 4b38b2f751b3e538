//! Instance identity for agents: how a machine joins without the admin key.
//!
//! - A **join token** is minted for an instance profile by a caller who may pass the
//!   profile's role (`iam:PassRole`, as EC2 requires to launch with a profile). It is
//!   random; only its SHA-256 is stored, with the profile and expiry, under
//!   `iam/join-token/<sha256>`. It is redeemed once: the redemption flips it to used with
//!   compare-and-swap in the same transaction that creates the instance.
//! - An **instance identity** (`iam/instance/<i-…>`) is an id and a secret (stored hashed)
//!   bound to the profile. With them the agent fetches **instance credentials**: a 1 h
//!   session of the profile's current role, as `ec2.amazonaws.com` assumes it, whose
//!   sealed token names the instance ([`crate::token::Claims::instance`]), so requests
//!   signed with it carry [`wire::Caller::instance_id`].

use crate::records::ProfileRecord;
use crate::{Iam, IamError, SessionCredentials};
pub use model::instance_identity::InstanceIdentity;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;
use store::{Objects, ObjectsError, Step, Txn};
use wire::Caller;

/// The prefix of join token records (keyed by the token's SHA-256, hex).
pub const JOIN_TOKEN: &str = "iam/join-token/";
/// The prefix of instance identity records (keyed by instance id).
pub const INSTANCE: &str = "iam/instance/";
/// What every join token starts with, so a person (and a secret scanner) knows one.
pub const JOIN_TOKEN_PREFIX: &str = "stvjoin-";
/// The service an instance profile's role must trust.
pub const EC2_SERVICE: &str = "ec2.amazonaws.com";
/// How long instance credentials live, as EC2's instance metadata serves them.
pub const INSTANCE_CREDENTIALS_LIFETIME: Duration = Duration::from_secs(3600);
/// The longest a join token may live.
pub const MAX_JOIN_TOKEN_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Why a join token, an instance identity or instance credentials were refused.
#[derive(Debug, thiserror::Error)]
pub enum InstanceIdentityError {
    /// The instance profile does not exist.
    #[error("Instance Profile {0} cannot be found.")]
    NoProfile(String),
    /// The profile holds no role, or its role was deleted.
    #[error(
        "Instance Profile {0} holds no role; add one with `aws iam add-role-to-instance-profile`."
    )]
    NoRole(String),
    /// The profile's role does not let EC2 assume it.
    #[error("The role {0} of the instance profile does not trust ec2.amazonaws.com: its trust policy must allow the Service principal ec2.amazonaws.com to perform sts:AssumeRole.")]
    Untrusted(String),
    /// The caller may not pass the profile's role.
    #[error("{0}")]
    AccessDenied(String),
    /// No join token has this value.
    #[error("The join token is not known to this server; mint one with `stevedore join-token`.")]
    UnknownToken,
    /// The join token was redeemed before.
    #[error("The join token was already used; mint a new one with `stevedore join-token`.")]
    UsedToken,
    /// The join token is past its expiry.
    #[error("The join token expired; mint a new one with `stevedore join-token`.")]
    ExpiredToken,
    /// The instance id or secret is wrong, or the instance was removed.
    #[error("The instance id or secret is not valid; join the agent again with a new join token.")]
    BadInstance,
    /// A parameter is out of range.
    #[error("{0}")]
    Invalid(String),
    /// Minting the session failed.
    #[error("{0}")]
    Iam(#[from] IamError),
    /// The state store failed.
    #[error("The state store failed: {0}")]
    Store(#[from] ObjectsError),
}

impl InstanceIdentityError {
    /// The AWS-style error code and HTTP status this is answered with.
    pub fn code(&self) -> (&'static str, u16) {
        match self {
            Self::NoProfile(_) => ("NoSuchEntity", 404),
            Self::NoRole(_) | Self::Untrusted(_) | Self::Invalid(_) => ("InvalidInput", 400),
            Self::AccessDenied(_) => ("AccessDenied", 403),
            Self::UnknownToken | Self::UsedToken | Self::ExpiredToken | Self::BadInstance => {
                ("AccessDenied", 403)
            }
            Self::Iam(e) => match e {
                IamError::NoSuchEntity(_) => ("NoSuchEntity", 404),
                IamError::AccessDenied(_) => ("AccessDenied", 403),
                IamError::Store(_) | IamError::Internal(_) => ("ServiceFailure", 500),
                _ => ("InvalidInput", 400),
            },
            Self::Store(_) => ("ServiceFailure", 500),
        }
    }
}

/// A stored join token (the token itself is never stored).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JoinTokenRecord {
    /// The instance profile it joins as.
    pub profile: String,
    /// Unix seconds it was minted.
    pub created: i64,
    /// Unix seconds after which it is refused.
    pub expires: i64,
    /// The instance it was redeemed for, once it was.
    #[serde(default)]
    pub redeemed_by: Option<String>,
}

/// A stored instance identity.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InstanceRecord {
    /// `i-` and 17 hex characters.
    pub instance_id: String,
    /// The instance profile.
    pub profile: String,
    /// SHA-256 of the secret, hex.
    pub secret_hash: String,
    /// Unix seconds.
    pub created: i64,
}

/// A freshly minted join token (`Debug` leaves the token out).
#[derive(Clone)]
pub struct JoinToken {
    /// The token to hand to the agent host (shown once).
    pub token: String,
    /// The profile it joins as.
    pub profile: String,
    /// Unix seconds after which it is refused.
    pub expires: i64,
}

impl std::fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinToken")
            .field("profile", &self.profile)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// Lower-case hex of `bytes`.
fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of `text`, hex.
pub fn compute_digest(text: &str) -> String {
    to_hex(&Sha256::digest(text.as_bytes()))
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    to_hex(&buf)
}

/// A new instance id: `i-` and 17 hex characters, as EC2's.
pub fn new_instance_id() -> String {
    let mut id = random_hex(9);
    id.truncate(17);
    format!("i-{id}")
}

/// Whether `id` looks like an instance id this module makes.
fn is_instance_id(id: &str) -> bool {
    id.strip_prefix("i-")
        .is_some_and(|h| h.len() == 17 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl Iam {
    fn instance_objects(&self) -> Objects<InstanceIdentityError> {
        Objects::new(self.core.objects.shared_store())
    }

    /// The profile named `name` and its role's ARN, checked to trust EC2.
    fn profile_role(
        &self,
        name: &str,
    ) -> Result<(std::sync::Arc<ProfileRecord>, String), InstanceIdentityError> {
        let dir = &self.core.directory;
        let profile = dir
            .profile(name)
            .ok_or_else(|| InstanceIdentityError::NoProfile(name.to_owned()))?;
        let role = profile
            .roles
            .first()
            .and_then(|r| dir.role(r))
            .ok_or_else(|| InstanceIdentityError::NoRole(profile.name.clone()))?;
        let arn = role.record.arn.clone();
        if !crate::sts::trusts_service(&role, EC2_SERVICE) {
            return Err(InstanceIdentityError::Untrusted(arn));
        }
        Ok((profile, arn))
    }

    /// Mints a join token for the instance profile `profile`, valid `ttl`, if `caller`
    /// may pass its role (`iam:PassRole`; the account root always may).
    pub async fn mint_join_token(
        &self,
        caller: &Caller,
        profile: &str,
        ttl: Duration,
    ) -> Result<JoinToken, InstanceIdentityError> {
        if ttl < Duration::from_secs(60) || ttl > MAX_JOIN_TOKEN_TTL {
            return Err(InstanceIdentityError::Invalid(format!(
                "ttlSeconds must be between 60 and {}.",
                MAX_JOIN_TOKEN_TTL.as_secs()
            )));
        }
        let (profile, role_arn) = self.profile_role(profile)?;
        if let Some(denied) = compute_pass_role_denial(caller, &role_arn) {
            return Err(InstanceIdentityError::AccessDenied(denied));
        }
        let token = format!("{JOIN_TOKEN_PREFIX}{}", random_hex(32));
        let now = self.core.directory.now();
        let expires = now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
        let record = JoinTokenRecord {
            profile: profile.name.clone(),
            created: now,
            expires,
            redeemed_by: None,
        };
        let key = format!("{JOIN_TOKEN}{}", compute_digest(&token));
        let txn = Txn::new()
            .when(key.as_str(), 0)
            .put(key.as_str(), store::objects::encode(&record)?);
        // 32 random bytes never collide; a failed condition would be a store fault.
        if !self.instance_objects().commit(txn).await? {
            return Err(InstanceIdentityError::Store(ObjectsError::Contention {
                what: "join token".into(),
            }));
        }
        tracing::info!(profile = %profile.name, expires, "Join token minted.");
        Ok(JoinToken {
            token,
            profile: profile.name.clone(),
            expires,
        })
    }

    /// Redeems `token` once: creates an instance identity of the token's profile. Two
    /// concurrent redemptions cannot both win (compare-and-swap on the token's record).
    pub async fn redeem_join_token(
        &self,
        token: &str,
    ) -> Result<InstanceIdentity, InstanceIdentityError> {
        if !token.starts_with(JOIN_TOKEN_PREFIX) {
            return Err(InstanceIdentityError::UnknownToken);
        }
        let key = format!("{JOIN_TOKEN}{}", compute_digest(token));
        let now = self.core.directory.now();
        let objects = self.instance_objects();
        let (record, instance, secret) = objects
            .retry("join token", || async {
                let (mut record, rev) = objects
                    .get::<JoinTokenRecord>(&key)
                    .await?
                    .ok_or(InstanceIdentityError::UnknownToken)?;
                if record.redeemed_by.is_some() {
                    return Err(InstanceIdentityError::UsedToken);
                }
                if now >= record.expires {
                    return Err(InstanceIdentityError::ExpiredToken);
                }
                let secret = random_hex(32);
                let instance = InstanceRecord {
                    instance_id: new_instance_id(),
                    profile: record.profile.clone(),
                    secret_hash: compute_digest(&secret),
                    created: now,
                };
                record.redeemed_by = Some(instance.instance_id.clone());
                let ikey = format!("{INSTANCE}{}", instance.instance_id);
                let txn = Txn::new()
                    .when(key.as_str(), rev)
                    .when(ikey.as_str(), 0)
                    .put(key.as_str(), store::objects::encode(&record)?)
                    .put(ikey.as_str(), store::objects::encode(&instance)?);
                Ok(Step::Commit(txn, (record.clone(), instance, secret)))
            })
            .await?;
        let profile = self.core.directory.profile(&record.profile);
        let role_arn = profile
            .as_ref()
            .and_then(|p| p.roles.first())
            .and_then(|r| self.core.directory.role(r))
            .map(|r| r.record.arn.clone())
            .unwrap_or_default();
        tracing::info!(instance = %instance.instance_id, profile = %record.profile, "Join token redeemed.");
        Ok(InstanceIdentity {
            instance_id: instance.instance_id,
            instance_secret: secret,
            instance_profile_arn: profile.map(|p| p.arn.clone()).unwrap_or_default(),
            role_arn,
        })
    }

    /// Session credentials of the instance's profile's current role, for an agent that
    /// proves it is `instance_id` with its secret.
    pub async fn instance_credentials(
        &self,
        instance_id: &str,
        secret: &str,
    ) -> Result<SessionCredentials, InstanceIdentityError> {
        if !is_instance_id(instance_id) {
            return Err(InstanceIdentityError::BadInstance);
        }
        let (record, _) = self
            .instance_objects()
            .get::<InstanceRecord>(&format!("{INSTANCE}{instance_id}"))
            .await?
            .ok_or(InstanceIdentityError::BadInstance)?;
        if record.secret_hash != compute_digest(secret) {
            return Err(InstanceIdentityError::BadInstance);
        }
        let (_, role_arn) = self.profile_role(&record.profile)?;
        Ok(crate::sts::issue_for_service_as(
            &self.core.directory,
            &role_arn,
            instance_id,
            EC2_SERVICE,
            INSTANCE_CREDENTIALS_LIFETIME,
            Some(instance_id.to_owned()),
        )?)
    }
}

/// AWS's denial when `caller` may not `iam:PassRole` the role `role_arn`; `None` when it
/// may (the account root always may).
pub fn compute_pass_role_denial(caller: &Caller, role_arn: &str) -> Option<String> {
    if caller.is_root() {
        return None;
    }
    let req = policy::Request::new(caller.shared_principal(), "iam:PassRole", role_arn);
    let identity: Vec<&policy::Policy> = caller.policies().iter().collect();
    let set = policy::PolicySet {
        identity: &identity,
        ..policy::PolicySet::default()
    };
    let decision = policy::evaluate(&req, set);
    policy::AccessDenied::for_decision(&req, &decision).map(|d| d.to_string())
}
