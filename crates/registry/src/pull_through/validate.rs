//! Checks of a rule's members, by ECR's rules (model constraints first, then the
//! service's own), and the parsing of its upstream URL.

use super::{Upstream, ROOT};
use crate::error::RegistryError;
use model::ecr::shapes::UpstreamRegistry;

/// ECR's limit on rules per registry.
pub(super) const MAX_RULES: usize = 50;

fn invalid_at(member: &str, why: &str, value: &str) -> RegistryError {
    RegistryError::InvalidParameter(format!(
        "Invalid parameter at '{member}' failed to satisfy constraint: '{why}' ('{}')",
        value.chars().take(300).collect::<String>()
    ))
}

/// Whether `s` is a path of name components as the model's pattern allows:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` joined by `/`, optionally ending in `/`.
fn is_prefix_path(s: &str) -> bool {
    let body = s.strip_suffix('/').unwrap_or(s);
    !body.is_empty() && body.split('/').all(is_component)
}

fn is_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: `.`, `_`, `__` or one or more `-`, between alphanumerics.
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `ecrRepositoryPrefix` (and `upstreamRepositoryPrefix`): 2-30 characters of the
/// model's pattern, or `ROOT`.
pub(super) fn check_prefix(member: &str, prefix: &str) -> Result<(), RegistryError> {
    let len = prefix.chars().count();
    if prefix == ROOT || ((2..=30).contains(&len) && is_prefix_path(prefix)) {
        return Ok(());
    }
    Err(invalid_at(
        member,
        "must satisfy regular expression '^([a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(\\/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*\\/?|ROOT)$' and length 2-30",
        prefix,
    ))
}

/// `credentialArn`: the model's length and pattern; returns the secret's name (after
/// `ecr-pullthroughcache/`).
pub(super) fn check_credential_arn(arn: &str) -> Result<&str, RegistryError> {
    let bad = || {
        invalid_at(
            "credentialArn",
            "must satisfy regular expression '^arn:aws(-\\w+)*:secretsmanager:[a-zA-Z0-9-:]+:secret:ecr\\-pullthroughcache\\/[a-zA-Z0-9\\/_+=.@-]+$' and length 50-612",
            arn,
        )
    };
    let len = arn.chars().count();
    if !(50..=612).contains(&len) {
        return Err(bad());
    }
    let (head, name) = arn
        .split_once(":secret:ecr-pullthroughcache/")
        .ok_or_else(bad)?;
    let partition_ok = head
        .strip_prefix("arn:aws")
        .and_then(|r| {
            let (partition, rest) = r.split_once(":secretsmanager:")?;
            let p_ok = partition.is_empty()
                || partition.split('-').skip(1).all(|w| {
                    !w.is_empty() && w.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                }) && partition.starts_with('-');
            let rest_ok = !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b':');
            Some(p_ok && rest_ok)
        })
        .unwrap_or(false);
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_+=.@-".contains(&b));
    if partition_ok && name_ok {
        Ok(name)
    } else {
        Err(bad())
    }
}

fn unsupported(message: String) -> RegistryError {
    RegistryError::UnsupportedUpstreamRegistry(message)
}

/// Parses `upstreamRegistryUrl`: `host[:port]` or `https://host[:port]` (HTTPS), or
/// `http://host[:port]` for a loopback host only.
pub(super) fn parse_upstream(url: &str) -> Result<Upstream, RegistryError> {
    let (scheme, rest) = match url.split_once("://") {
        Some(("https", rest)) => ("https", rest),
        Some(("http", rest)) => ("http", rest),
        Some((other, _)) => {
            return Err(unsupported(format!(
                "The upstream registry URL scheme '{other}' is not supported; use https (or http for a loopback address)."
            )))
        }
        None => ("https", url),
    };
    let host = rest.trim_end_matches('/');
    let parsed: Option<http::uri::Authority> = host.parse().ok();
    let valid = !host.is_empty() && !host.contains('/') && !host.contains('@') && parsed.is_some();
    if !valid {
        return Err(RegistryError::InvalidParameter(format!(
            "Invalid parameter at 'upstreamRegistryUrl' failed to satisfy constraint: 'must be a registry host name, optionally with a port' ('{url}')"
        )));
    }
    if scheme == "http" && !is_loopback(parsed.as_ref().map_or("", |a| a.host())) {
        return Err(unsupported(format!(
            "The upstream registry {host} would be reached over plain HTTP; only loopback upstreams may use http://."
        )));
    }
    Ok(Upstream {
        scheme,
        host: host.to_owned(),
    })
}

pub(crate) fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The service's own checks of a rule's upstream: ECR-to-ECR rules need an IAM role
/// Stevedore cannot assume, and the registries ECR documents as authenticated need a
/// credential.
pub(super) fn check_upstream_kind(
    kind: Option<UpstreamRegistry>,
    credential: Option<&str>,
    custom_role: Option<&str>,
) -> Result<(), RegistryError> {
    if kind == Some(UpstreamRegistry::Ecr) || custom_role.is_some() {
        return Err(unsupported(
            "Amazon ECR upstreams (customRoleArn) are not supported by Stevedore: it cannot assume an IAM role in another registry. Use the upstream's URL with a credentialArn instead.".into(),
        ));
    }
    let needs_secret = matches!(
        kind,
        Some(
            UpstreamRegistry::DockerHub
                | UpstreamRegistry::GithubContainerRegistry
                | UpstreamRegistry::AzureContainerRegistry
                | UpstreamRegistry::GitlabContainerRegistry
                | UpstreamRegistry::Chainguard
        )
    );
    if needs_secret && credential.is_none() {
        return Err(RegistryError::InvalidParameter(format!(
            "The upstream registry {} requires authentication: give a credentialArn.",
            kind.map_or("", |k| k.as_str())
        )));
    }
    Ok(())
}
