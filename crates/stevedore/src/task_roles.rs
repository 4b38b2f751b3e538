//! The binary's side of task roles: ECS's [`RoleSessions`] port implemented with IAM.
//! Credentials are minted for `ecs-tasks.amazonaws.com` (the role's trust policy must
//! let it assume the role); their ids are an HMAC of the task and role under a key
//! derived from the server's admin secret, so they stay the same across refreshes,
//! agent reconnects and server restarts, and nobody without the key can guess them.

use std::time::Duration;

use ecs::channel::{
    cannot_assume_message, MintedCredentials, RoleSessionError, RoleSessions, TASKS_SERVICE,
};
use hmac::{Hmac, Mac};
use model::acs::RoleType;
use sha2::Sha256;

/// Task role credentials from IAM.
pub struct IamRoleSessions {
    iam: iam::Iam,
    id_key: Vec<u8>,
}

impl IamRoleSessions {
    /// Mints with `iam`; ids are keyed by `secret` (the admin secret access key).
    pub fn new(iam: iam::Iam, secret: &str) -> Self {
        Self {
            iam,
            id_key: format!("stevedore task credentials id\0{secret}").into_bytes(),
        }
    }
}

/// The id of one task's role credentials: a UUID-shaped HMAC-SHA256 of the two.
pub fn compute_credentials_id(key: &[u8], task_arn: &str, role: RoleType) -> String {
    let role = match role {
        RoleType::TaskApplication => "TaskApplication",
        RoleType::TaskExecution => "TaskExecution",
    };
    let digest = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(task_arn.as_bytes());
            mac.update(b"\0");
            mac.update(role.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        // HMAC takes keys of any length; this arm is never taken.
        Err(_) => uuid::Uuid::new_v4().as_bytes().to_vec(),
    };
    let h = hex::encode(&digest[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Whether IAM's refusal means the role cannot be assumed (not worth retrying).
fn is_final(error: &iam::IamError) -> bool {
    matches!(
        error,
        iam::IamError::NoSuchEntity(_)
            | iam::IamError::AccessDenied(_)
            | iam::IamError::Validation(_)
            | iam::IamError::InvalidInput(_)
    )
}

#[async_trait::async_trait]
impl RoleSessions for IamRoleSessions {
    async fn issue(
        &self,
        role_arn: &str,
        session_name: &str,
        duration: Duration,
    ) -> Result<MintedCredentials, RoleSessionError> {
        match self
            .iam
            .issue_role_session(role_arn, session_name, TASKS_SERVICE, duration)
            .await
        {
            Ok(c) => Ok(MintedCredentials {
                access_key_id: c.access_key_id,
                secret_access_key: c.secret_access_key,
                session_token: c.session_token,
                expiration: c.expiration,
            }),
            Err(error) if is_final(&error) => {
                tracing::info!(role = %role_arn, %error, "A task role cannot be assumed by ecs-tasks.amazonaws.com.");
                Err(RoleSessionError::CannotAssume {
                    role_arn: role_arn.to_owned(),
                    message: cannot_assume_message(role_arn),
                })
            }
            Err(error) => Err(RoleSessionError::Unavailable {
                role_arn: role_arn.to_owned(),
                message: error.to_string(),
            }),
        }
    }

    fn credentials_id(&self, task_arn: &str, role: RoleType) -> String {
        compute_credentials_id(&self.id_key, task_arn, role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_per_task_and_role_and_differ_otherwise() {
        let k = b"key";
        let a = compute_credentials_id(k, "arn:t1", RoleType::TaskApplication);
        assert_eq!(
            a,
            compute_credentials_id(k, "arn:t1", RoleType::TaskApplication)
        );
        assert_ne!(
            a,
            compute_credentials_id(k, "arn:t1", RoleType::TaskExecution)
        );
        assert_ne!(
            a,
            compute_credentials_id(k, "arn:t2", RoleType::TaskApplication)
        );
        assert_ne!(
            a,
            compute_credentials_id(b"other", "arn:t1", RoleType::TaskApplication)
        );
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
    }
}
