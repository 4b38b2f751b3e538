//! The local stand-in for Secrets Manager: a rule's `credentialArn` names the secret
//! `ecr-pullthroughcache/<name>`, read from `<secrets dir>/<name>.json` (the directory is
//! `STEVEDORE_PULL_THROUGH_SECRETS_DIR`). The file holds what ECR's secret holds:
//! `{"username": "...", "accessToken": "..."}`. It is read on every upstream call, so a
//! rotated token needs no rule update.

use super::validate::check_credential_arn;
use super::Credentials;
use crate::error::RegistryError;
use std::path::{Path, PathBuf};

/// Largest secret file read.
const MAX_SECRET_BYTES: u64 = 64 * 1024;

fn not_found(arn: &str) -> RegistryError {
    RegistryError::SecretNotFound(format!(
        "The secret '{arn}' was not found: put its value in the pull through cache secrets directory (STEVEDORE_PULL_THROUGH_SECRETS_DIR) as <secret name>.json."
    ))
}

/// The file that holds secret `name`, if `name` stays inside `dir`.
fn secret_path(dir: &Path, name: &str) -> Option<PathBuf> {
    let safe = name
        .split('/')
        .all(|c| !c.is_empty() && c != "." && c != "..");
    safe.then(|| dir.join(format!("{name}.json")))
}

/// Reads the credentials `arn` names.
pub(super) async fn load(dir: Option<&Path>, arn: &str) -> Result<Credentials, RegistryError> {
    let name = check_credential_arn(arn)?;
    let path = dir
        .and_then(|d| secret_path(d, name))
        .ok_or_else(|| not_found(arn))?;
    let meta = match tokio::fs::metadata(&path).await {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found(arn)),
        Err(e) => {
            return Err(RegistryError::UnableToAccessSecret(format!(
                "The secret '{arn}' could not be read: {e}"
            )))
        }
    };
    if meta.len() > MAX_SECRET_BYTES {
        return Err(RegistryError::UnableToDecryptSecret(format!(
            "The secret '{arn}' is larger than {MAX_SECRET_BYTES} bytes."
        )));
    }
    let bytes = tokio::fs::read(&path).await.map_err(|e| {
        RegistryError::UnableToAccessSecret(format!("The secret '{arn}' could not be read: {e}"))
    })?;
    serde_json::from_slice::<Credentials>(&bytes).map_err(|e| {
        RegistryError::UnableToDecryptSecret(format!(
            "The secret '{arn}' is not JSON with 'username' and 'accessToken' strings: {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_cannot_leave_the_directory() {
        let dir = Path::new("/s");
        assert_eq!(
            secret_path(dir, "team/hub"),
            Some(PathBuf::from("/s/team/hub.json"))
        );
        assert_eq!(secret_path(dir, "../etc/passwd"), None);
        assert_eq!(secret_path(dir, "a//b"), None);
    }
}
