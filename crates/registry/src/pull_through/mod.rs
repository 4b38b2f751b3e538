//! The pull-through cache: rules (Create/Describe/Update/Delete/ValidatePullThroughCache
//! Rule) that map a repository prefix of this registry to an upstream OCI distribution
//! registry, and the import that, on the first pull of `<prefix>/<upstream path>`,
//! creates that repository (as ECR does) and stores the upstream manifest and blobs in
//! it, then serves them locally and re-checks a pulled tag upstream once per refresh
//! interval (ECR: 24 hours).
//!
//! Stored objects (beside `objects.rs`'s):
//! - `ecr/ptc-rule/<ecrRepositoryPrefix>` → the rule, as the API shows it
//! - `ecr/ptc-repo/<name>` → [`CacheRepo`]: `name` was created by a rule
//! - `ecr/ptc-check/<name>#<tag>` → when `tag` was last compared with upstream
//!
//! Credentials: ECR takes a Secrets Manager ARN; with no Secrets Manager here, the
//! secret named in `credentialArn` (`…:secret:ecr-pullthroughcache/<name>`) is read from
//! `<STEVEDORE_PULL_THROUGH_SECRETS_DIR>/<name>.json`, holding the JSON ECR's secrets
//! hold (`{"username": …, "accessToken": …}`); see `secrets.rs`.
//!
//! Upstreams are `host[:port]` (HTTPS) or `https://host[:port]`; `http://` only for a
//! loopback host, so plain HTTP never leaves the machine.

mod client;
mod fetch;
mod rules;
mod secrets;
#[cfg(test)]
mod tests;
mod validate;

// The replication client to other Stevedore servers shares the upstream client's TLS
// roots and loopback rule.
pub(crate) use client::tls_config;
pub(crate) use fetch::{before_pull, forget_repository};
pub(crate) use rules::{
    create_pull_through_cache_rule, delete_pull_through_cache_rule,
    describe_pull_through_cache_rules, update_pull_through_cache_rule,
    validate_pull_through_cache_rule,
};
pub(crate) use validate::is_loopback;

use model::ecr::shapes::PullThroughCacheRule;

/// Prefix of the stored rules.
const RULE_PREFIX: &str = "ecr/ptc-rule/";

fn rule_key(prefix: &str) -> String {
    format!("{RULE_PREFIX}{prefix}")
}

fn cache_repo_key(name: &str) -> String {
    format!("ecr/ptc-repo/{name}")
}

fn check_key(name: &str, tag: &str) -> String {
    format!("ecr/ptc-check/{name}#{tag}")
}

fn check_prefix(name: &str) -> String {
    format!("ecr/ptc-check/{name}#")
}

/// A repository a rule created: which rule and which upstream repository it mirrors.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct CacheRepo {
    /// The rule's `ecrRepositoryPrefix`.
    rule: String,
    /// The upstream repository name.
    upstream_repository: String,
}

/// When a tag was last compared with upstream (epoch seconds).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Checked {
    at: i64,
}

/// Where an upstream registry is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Upstream {
    /// `https`, or `http` for a loopback host.
    pub scheme: &'static str,
    /// `host[:port]`.
    pub host: String,
}

/// Credentials for an upstream (from a rule's secret).
#[derive(Clone, serde::Deserialize)]
pub(crate) struct Credentials {
    /// User name.
    pub username: String,
    /// Password or access token.
    #[serde(rename = "accessToken")]
    pub access_token: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The rule's `ecrRepositoryPrefix` that matches every repository.
const ROOT: &str = "ROOT";

/// The rule of `rules` that repository `name` falls under, with the upstream repository
/// it maps to: the longest matching prefix, else a `ROOT` rule.
fn compute_match<'r>(
    rules: &'r [PullThroughCacheRule],
    name: &str,
) -> Option<(&'r PullThroughCacheRule, String)> {
    let mut best: Option<(&PullThroughCacheRule, usize, String)> = None;
    for rule in rules {
        let Some(prefix) = rule.ecr_repository_prefix.as_deref() else {
            continue;
        };
        let upstream_prefix = rule
            .upstream_repository_prefix
            .as_deref()
            .filter(|p| *p != ROOT)
            .map(|p| p.trim_end_matches('/'));
        let (rest, len) = if prefix == ROOT {
            (name, 0)
        } else {
            // ECR treats every prefix as ending in `/`.
            let p = prefix.trim_end_matches('/');
            match name.strip_prefix(p).and_then(|r| r.strip_prefix('/')) {
                Some(rest) if !rest.is_empty() => (rest, p.len() + 1),
                _ => continue,
            }
        };
        let upstream = match upstream_prefix {
            Some(up) => format!("{up}/{rest}"),
            None => rest.to_owned(),
        };
        if best.as_ref().is_none_or(|(_, l, _)| len > *l) {
            best = Some((rule, len, upstream));
        }
    }
    best.map(|(r, _, u)| (r, u))
}
