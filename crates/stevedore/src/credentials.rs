//! The admin access key: taken from the environment, or generated once and kept in the
//! data directory, plus an AWS shared-credentials file so the `aws` CLI can use it.

use anyhow::Context;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// An access key pair.
#[derive(Clone, Serialize, Deserialize)]
pub struct AccessKey {
    /// The public id (`AKIA…`).
    pub access_key_id: String,
    /// The secret.
    pub secret_access_key: String,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Where the admin key came from.
pub enum KeySource {
    /// `STEVEDORE_ADMIN_ACCESS_KEY_ID` / `STEVEDORE_ADMIN_SECRET_ACCESS_KEY`.
    Environment,
    /// Generated now or earlier; the credentials file is at this path.
    DataDir(PathBuf),
}

const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A new random access key pair, shaped as AWS's long-term keys are.
pub fn generate() -> AccessKey {
    let mut rng = rand::thread_rng();
    let mut pick = |alphabet: &[u8], n: usize| -> String {
        (0..n)
            .map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())]))
            .collect()
    };
    AccessKey {
        access_key_id: format!("AKIA{}", pick(ID_ALPHABET, 16)),
        secret_access_key: pick(SECRET_ALPHABET, 40),
    }
}

/// Writes `contents` to `path` atomically with mode 0600: a crash leaves the old file or
/// the new one, never a torn one.
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(contents)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.sync_all()
        .with_context(|| format!("syncing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} into place", path.display()))?;
    Ok(())
}

/// The admin key, from the environment when both variables are set, else from (or newly
/// generated into) `data_dir`.
pub fn load_admin_key(
    data_dir: &Path,
    env_id: Option<String>,
    env_secret: Option<String>,
) -> anyhow::Result<(AccessKey, KeySource)> {
    match (env_id, env_secret) {
        (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => {
            return Ok((
                AccessKey {
                    access_key_id: id,
                    secret_access_key: secret,
                },
                KeySource::Environment,
            ));
        }
        (Some(_), None) | (None, Some(_)) => {
            anyhow::bail!("set both STEVEDORE_ADMIN_ACCESS_KEY_ID and STEVEDORE_ADMIN_SECRET_ACCESS_KEY, or neither");
        }
        _ => {}
    }
    let key_path = data_dir.join("admin-key.json");
    let key = match std::fs::read(&key_path) {
        Ok(bytes) => serde_json::from_slice::<AccessKey>(&bytes).with_context(|| {
            format!(
                "{} is not a valid admin key file; remove it to generate a new key",
                key_path.display()
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = generate();
            write_private(&key_path, &serde_json::to_vec_pretty(&key)?)?;
            tracing::info!(path = %key_path.display(), "Admin access key generated.");
            key
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", key_path.display())),
    };
    let creds_path = data_dir.join("credentials");
    let ini = format!(
        "# Written by Stevedore: the admin key of the server whose data directory this is.\n[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        key.access_key_id, key.secret_access_key
    );
    write_private(&creds_path, ini.as_bytes())?;
    Ok((key, KeySource::DataDir(creds_path)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generated_key_is_kept_across_restarts_with_private_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, _) = load_admin_key(dir.path(), None, None).expect("first");
        let (b, _) = load_admin_key(dir.path(), None, None).expect("second");
        assert_eq!(a.access_key_id, b.access_key_id);
        assert_eq!(a.access_key_id.len(), 20);
        assert_eq!(a.secret_access_key.len(), 40);
        for f in ["admin-key.json", "credentials"] {
            let mode = std::fs::metadata(dir.path().join(f))
                .expect("exists")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        let ini = std::fs::read_to_string(dir.path().join("credentials")).expect("ini");
        assert!(ini.contains(&format!("aws_access_key_id = {}", a.access_key_id)));
    }

    #[test]
    fn environment_key_wins_and_half_a_key_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (k, _) =
            load_admin_key(dir.path(), Some("AKIDX".into()), Some("s".into())).expect("env");
        assert_eq!(k.access_key_id, "AKIDX");
        assert!(load_admin_key(dir.path(), Some("AKIDX".into()), None).is_err());
    }
}
