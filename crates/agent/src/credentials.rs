//! Where the agent's AWS credentials and region come from: the standard environment
//! variables first, then the shared credentials file, as the AWS SDKs look for them.
//! This module owns that lookup and a tiny reader for the file's INI format; it never
//! logs a secret.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use aws_smithy_runtime_api::client::identity::Identity;

/// The region used when neither `AWS_REGION` nor `AWS_DEFAULT_REGION` is set.
pub const DEFAULT_REGION: &str = "us-east-1";

/// An access key pair (and optional session token): a shared, swappable source. Clones
/// share the current value, and [`Credentials::replace`] swaps it for every holder at
/// once, so refreshed instance credentials reach every signer (API client, channel,
/// registry auth, logs) without rebuilding them.
#[derive(Clone)]
pub struct Credentials {
    current: Arc<RwLock<Snapshot>>,
}

/// One value of a [`Credentials`] source.
#[derive(Clone)]
struct Snapshot {
    access_key_id: Arc<str>,
    identity: Identity,
}

impl Credentials {
    /// Credentials from their parts (a new source, shared by its clones only).
    pub fn new(access_key_id: &str, secret_access_key: &str, session_token: Option<&str>) -> Self {
        let creds = aws_credential_types::Credentials::new(
            access_key_id,
            secret_access_key,
            session_token.map(str::to_owned),
            None,
            "stevedore-agent",
        );
        Self {
            current: Arc::new(RwLock::new(Snapshot {
                access_key_id: Arc::from(access_key_id),
                identity: creds.into(),
            })),
        }
    }

    fn snapshot(&self) -> Snapshot {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Makes every clone of this source sign with `other`'s current value from now on.
    pub fn replace(&self, other: &Credentials) {
        let next = other.snapshot();
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = next;
    }

    /// Looks in the process environment, then the shared credentials file.
    pub fn from_environment() -> Result<Self, CredentialsError> {
        Self::from_lookup(&|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Like [`Credentials::from_environment`], with the environment given as a lookup
    /// function (so tests need not touch the process environment).
    pub fn from_lookup(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, CredentialsError> {
        if let (Some(akid), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
        {
            return Ok(Self::new(
                &akid,
                &secret,
                env("AWS_SESSION_TOKEN").as_deref(),
            ));
        }
        let path = match env("AWS_SHARED_CREDENTIALS_FILE") {
            Some(p) => PathBuf::from(p),
            None => match env("HOME") {
                Some(home) => Path::new(&home).join(".aws").join("credentials"),
                None => return Err(CredentialsError::NotFound),
            },
        };
        let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".to_owned());
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CredentialsError::NotFound)
            }
            Err(e) => return Err(CredentialsError::Read { path, error: e }),
        };
        Self::from_shared_file(&text, &profile).map_err(|e| match e {
            CredentialsError::ProfileIncomplete { profile, .. } => {
                CredentialsError::ProfileIncomplete {
                    profile,
                    path: path.clone(),
                }
            }
            other => other,
        })
    }

    /// Reads one profile from the text of a shared credentials file.
    pub fn from_shared_file(text: &str, profile: &str) -> Result<Self, CredentialsError> {
        let sections = parse_ini(text);
        let section = sections.get(profile);
        let get = |key: &str| section.and_then(|s| s.get(key)).filter(|v| !v.is_empty());
        match (get("aws_access_key_id"), get("aws_secret_access_key")) {
            (Some(akid), Some(secret)) => Ok(Self::new(
                akid,
                secret,
                get("aws_session_token").map(String::as_str),
            )),
            _ => Err(CredentialsError::ProfileIncomplete {
                profile: profile.to_owned(),
                path: PathBuf::new(),
            }),
        }
    }

    /// The current access key id (not secret; fine to log).
    pub fn access_key_id(&self) -> String {
        self.snapshot().access_key_id.to_string()
    }

    /// The current signing identity for `aws-sigv4`.
    pub(crate) fn identity(&self) -> Identity {
        self.snapshot().identity
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id())
            .field("secret_access_key", &"** redacted **")
            .finish()
    }
}

/// The region from `AWS_REGION`, else `AWS_DEFAULT_REGION`, else [`DEFAULT_REGION`].
pub fn region_from_environment() -> String {
    region_from_lookup(&|name| std::env::var(name).ok())
}

/// [`region_from_environment`] with the environment given as a lookup function.
pub fn region_from_lookup(env: &dyn Fn(&str) -> Option<String>) -> String {
    env("AWS_REGION")
        .filter(|r| !r.is_empty())
        .or_else(|| env("AWS_DEFAULT_REGION").filter(|r| !r.is_empty()))
        .unwrap_or_else(|| DEFAULT_REGION.to_owned())
}

/// Why no credentials could be found.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// Neither the environment nor a shared credentials file holds credentials.
    #[error("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_SHARED_CREDENTIALS_FILE")]
    NotFound,
    /// The shared credentials file exists but could not be read.
    #[error("could not read {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The profile is missing or lacks a key.
    #[error("profile {profile:?} in {path:?} has no aws_access_key_id and aws_secret_access_key")]
    ProfileIncomplete {
        /// The profile looked for.
        profile: String,
        /// The file.
        path: PathBuf,
    },
}

/// Sections of an INI file: `[name]` headers, `key = value` lines, `#`/`;` comments.
/// Keys are lower-cased; the first occurrence of a section wins for each key it sets.
fn parse_ini(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut out: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            // The config file's form `[profile x]` is accepted too.
            let name = name.strip_prefix("profile ").map_or(name, str::trim);
            current = Some(name.to_owned());
            continue;
        }
        let (Some(section), Some((key, value))) = (&current, line.split_once('=')) else {
            continue;
        };
        out.entry(section.clone())
            .or_default()
            .entry(key.trim().to_ascii_lowercase())
            .or_insert_with(|| value.trim().to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn environment_keys_win_over_the_shared_file() {
        let c = Credentials::from_lookup(&env_of(&[
            ("AWS_ACCESS_KEY_ID", "AKIDENV"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
        ]))
        .expect("env credentials");
        assert_eq!(c.access_key_id(), "AKIDENV");
    }

    #[test]
    fn shared_file_profile_is_read_with_comments_and_spacing() {
        let text = "# top\n[default]\naws_access_key_id=AKIDDEF\naws_secret_access_key = x\n\n[ops]\n; c\nAWS_ACCESS_KEY_ID = AKIDOPS \naws_secret_access_key=y=z\naws_session_token=t\n";
        assert_eq!(
            Credentials::from_shared_file(text, "default")
                .expect("default")
                .access_key_id(),
            "AKIDDEF"
        );
        assert_eq!(
            Credentials::from_shared_file(text, "ops")
                .expect("ops")
                .access_key_id(),
            "AKIDOPS"
        );
        assert!(matches!(
            Credentials::from_shared_file(text, "missing"),
            Err(CredentialsError::ProfileIncomplete { .. })
        ));
    }

    #[test]
    fn shared_file_is_found_through_the_environment_and_profile() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("credentials");
        std::fs::write(
            &path,
            "[p]\naws_access_key_id=AKIDP\naws_secret_access_key=s\n",
        )
        .expect("write");
        let path_s = path.to_string_lossy().into_owned();
        let env = move |name: &str| match name {
            "AWS_SHARED_CREDENTIALS_FILE" => Some(path_s.clone()),
            "AWS_PROFILE" => Some("p".to_owned()),
            _ => None,
        };
        assert_eq!(
            Credentials::from_lookup(&env)
                .expect("file")
                .access_key_id(),
            "AKIDP"
        );
        let none = |_: &str| None;
        assert!(matches!(
            Credentials::from_lookup(&none),
            Err(CredentialsError::NotFound)
        ));
    }

    #[test]
    fn region_prefers_aws_region_then_default_region_then_us_east_1() {
        assert_eq!(
            region_from_lookup(&env_of(&[
                ("AWS_REGION", "eu-west-1"),
                ("AWS_DEFAULT_REGION", "x")
            ])),
            "eu-west-1"
        );
        assert_eq!(
            region_from_lookup(&env_of(&[("AWS_DEFAULT_REGION", "ap-south-1")])),
            "ap-south-1"
        );
        assert_eq!(region_from_lookup(&env_of(&[])), "us-east-1");
    }

    #[test]
    fn a_replaced_source_signs_with_the_new_key_in_every_clone() {
        let c = Credentials::new("ASIAOLD", "s1", Some("t1"));
        let held_by_a_signer = c.clone();
        c.replace(&Credentials::new("ASIANEW", "s2", Some("t2")));
        assert_eq!(held_by_a_signer.access_key_id(), "ASIANEW");
        // A separate source (a task's role) is not affected.
        let other = Credentials::new("ASIATASK", "s3", None);
        c.replace(&Credentials::new("ASIATHIRD", "s4", None));
        assert_eq!(other.access_key_id(), "ASIATASK");
        assert_eq!(held_by_a_signer.access_key_id(), "ASIATHIRD");
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let c = Credentials::new("AKID", "topsecret", None);
        assert!(!format!("{c:?}").contains("topsecret"));
    }
}
