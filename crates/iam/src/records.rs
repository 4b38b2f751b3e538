//! What IAM keeps in the store, one JSON record per entity under `iam/`, keyed by the
//! lower-cased name (IAM names are unique regardless of case):
//!
//! | key | value |
//! | --- | --- |
//! | `iam/user/<name>` | [`UserRecord`] with its access keys, inline and attached policies |
//! | `iam/role/<name>` | [`RoleRecord`] with its trust policy, inline and attached policies |
//! | `iam/policy/<name>` | [`PolicyRecord`]: a customer managed policy and its versions |
//! | `iam/profile/<name>` | [`ProfileRecord`]: an instance profile and its role |
//! | `iam/server-key` | [`ServerKey`]: the key session tokens are signed with |

use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The prefix of every IAM key.
pub const PREFIX: &str = "iam/";
/// Users.
pub const USER: &str = "iam/user/";
/// Roles.
pub const ROLE: &str = "iam/role/";
/// Customer managed policies.
pub const POLICY: &str = "iam/policy/";
/// Instance profiles.
pub const PROFILE: &str = "iam/profile/";
/// The session-token signing key.
pub const SERVER_KEY: &str = "iam/server-key";

/// The store key of the entity named `name` under `prefix`.
pub fn key(prefix: &str, name: &str) -> String {
    format!("{prefix}{}", name.to_ascii_lowercase())
}

/// A tag.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tag {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
}

/// A long-term access key of a user.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccessKeyRecord {
    /// `AKIA…`.
    pub id: String,
    /// The 40-character secret.
    pub secret: String,
    /// `Active` or `Inactive`.
    pub active: bool,
    /// Unix seconds.
    pub created: i64,
}

/// An IAM user.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserRecord {
    /// The name as given.
    pub name: String,
    /// `AIDA…`.
    pub id: String,
    /// `/` or `/a/b/`.
    pub path: String,
    /// `arn:aws:iam::<account>:user<path><name>`.
    pub arn: String,
    /// Unix seconds.
    pub created: i64,
    /// Inline policies by name.
    #[serde(default)]
    pub inline: BTreeMap<String, String>,
    /// Attached managed policy ARNs.
    #[serde(default)]
    pub attached: Vec<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Access keys (at most two).
    #[serde(default)]
    pub keys: Vec<AccessKeyRecord>,
}

/// An IAM role.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RoleRecord {
    /// The name as given.
    pub name: String,
    /// `AROA…`.
    pub id: String,
    /// `/` or `/a/b/`.
    pub path: String,
    /// `arn:aws:iam::<account>:role<path><name>`.
    pub arn: String,
    /// Unix seconds.
    pub created: i64,
    /// The trust policy document as given.
    pub trust: String,
    /// The description.
    #[serde(default)]
    pub description: Option<String>,
    /// Longest session, seconds (3600..=43200).
    pub max_session: u32,
    /// Inline policies by name.
    #[serde(default)]
    pub inline: BTreeMap<String, String>,
    /// Attached managed policy ARNs.
    #[serde(default)]
    pub attached: Vec<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// One version of a customer managed policy.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PolicyVersionRecord {
    /// `v1`, `v2`, …
    pub id: String,
    /// The document as given.
    pub document: String,
    /// Unix seconds.
    pub created: i64,
}

/// A customer managed policy.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PolicyRecord {
    /// The name.
    pub name: String,
    /// `ANPA…`.
    pub id: String,
    /// The path.
    pub path: String,
    /// `arn:aws:iam::<account>:policy<path><name>`.
    pub arn: String,
    /// The description.
    #[serde(default)]
    pub description: Option<String>,
    /// Unix seconds.
    pub created: i64,
    /// Unix seconds of the last version change.
    pub updated: i64,
    /// The default version's id.
    pub default_version: String,
    /// Versions, oldest first (at most five).
    pub versions: Vec<PolicyVersionRecord>,
    /// The number the next version gets.
    pub next_version: u32,
}

impl PolicyRecord {
    /// The default version's document.
    pub fn default_document(&self) -> Option<&str> {
        self.versions
            .iter()
            .find(|v| v.id == self.default_version)
            .map(|v| v.document.as_str())
    }
}

/// An instance profile.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProfileRecord {
    /// The name.
    pub name: String,
    /// `AIPA…`.
    pub id: String,
    /// The path.
    pub path: String,
    /// `arn:aws:iam::<account>:instance-profile<path><name>`.
    pub arn: String,
    /// Unix seconds.
    pub created: i64,
    /// Role names (at most one).
    #[serde(default)]
    pub roles: Vec<String>,
}

/// The key session tokens and their secrets are derived under.
#[derive(Clone, Serialize, Deserialize)]
pub struct ServerKey {
    /// 32 random bytes, hex.
    pub key: String,
}

const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn random(alphabet: &[u8], n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())]))
        .collect()
}

/// A unique id as IAM makes them: a four-letter prefix (`AIDA`, `AROA`, `ANPA`, `AIPA`)
/// and 17 base-32 characters.
pub fn unique_id(prefix: &str) -> String {
    format!("{prefix}{}", random(ID_ALPHABET, 17))
}

/// An access key id: `AKIA` (long-term) or `ASIA` (temporary) and 16 base-32 characters.
pub fn access_key_id(prefix: &str) -> String {
    format!("{prefix}{}", random(ID_ALPHABET, 16))
}

/// A 40-character secret access key.
pub fn secret() -> String {
    random(SECRET_ALPHABET, 40)
}
