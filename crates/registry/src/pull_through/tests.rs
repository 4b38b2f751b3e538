//! Rule matching and rule validation.

use super::validate::{check_credential_arn, check_prefix, check_upstream_kind, parse_upstream};
use super::*;
use crate::error::RegistryError;
use model::ecr::shapes::UpstreamRegistry;

fn rule(prefix: &str, upstream_prefix: Option<&str>) -> PullThroughCacheRule {
    PullThroughCacheRule {
        ecr_repository_prefix: Some(prefix.into()),
        upstream_registry_url: Some("registry.example".into()),
        upstream_repository_prefix: upstream_prefix.map(Into::into),
        ..PullThroughCacheRule::default()
    }
}

fn matched(rules: &[PullThroughCacheRule], name: &str) -> Option<(String, String)> {
    compute_match(rules, name)
        .map(|(r, u)| (r.ecr_repository_prefix.clone().unwrap_or_default(), u))
}

#[test]
fn names_map_to_upstream_as_ecrs_prefix_table_shows() {
    let rules = [
        rule("ecr-public", None),
        rule("team-a", Some("team-a")),
        rule("my-app", Some("upstream-app")),
    ];
    let m = |n: &str| matched(&rules, n);
    assert_eq!(
        m("ecr-public/my-app/image1"),
        Some(("ecr-public".into(), "my-app/image1".into()))
    );
    assert_eq!(
        m("team-a/myapp/image1"),
        Some(("team-a".into(), "team-a/myapp/image1".into()))
    );
    assert_eq!(
        m("my-app/image1"),
        Some(("my-app".into(), "upstream-app/image1".into()))
    );
    // The prefix is a whole path component, and names under it need a remainder.
    assert_eq!(m("ecr-publicity/x"), None);
    assert_eq!(m("ecr-public"), None);
    assert_eq!(m("other/x"), None);
}

#[test]
fn the_longest_prefix_wins_and_root_catches_the_rest() {
    let rules = [
        rule("ROOT", None),
        rule("hub", None),
        rule("hub/library", Some("mirror")),
    ];
    assert_eq!(
        matched(&rules, "hub/library/alpine"),
        Some(("hub/library".into(), "mirror/alpine".into()))
    );
    assert_eq!(
        matched(&rules, "hub/nginx"),
        Some(("hub".into(), "nginx".into()))
    );
    assert_eq!(
        matched(&rules, "anything/else"),
        Some(("ROOT".into(), "anything/else".into()))
    );
}

#[test]
fn a_trailing_slash_on_a_prefix_is_the_assumed_one() {
    let rules = [rule("quay/", None)];
    assert_eq!(
        matched(&rules, "quay/coreos/etcd"),
        Some(("quay/".into(), "coreos/etcd".into()))
    );
}

#[test]
fn prefixes_follow_the_model_pattern_and_length() {
    for ok in [
        "ab",
        "ecr-public",
        "a/b",
        "team__x/y",
        "a---b",
        "quay/",
        "ROOT",
        "a.b_c",
    ] {
        assert!(check_prefix("ecrRepositoryPrefix", ok).is_ok(), "{ok}");
    }
    for bad in [
        "a",
        "Upper",
        "-ab",
        "ab-",
        "a//b",
        "/ab",
        "a___b",
        "Root",
        "a.-b",
        &"x".repeat(31),
    ] {
        assert!(check_prefix("ecrRepositoryPrefix", bad).is_err(), "{bad}");
    }
}

#[test]
fn upstream_urls_are_hosts_and_plain_http_stays_on_loopback() {
    let up = |u: &str| parse_upstream(u).map(|x| (x.scheme, x.host));
    assert_eq!(up("quay.io").ok(), Some(("https", "quay.io".into())));
    assert_eq!(
        up("https://r.example:8443/").ok(),
        Some(("https", "r.example:8443".into()))
    );
    assert_eq!(
        up("http://127.0.0.1:5000").ok(),
        Some(("http", "127.0.0.1:5000".into()))
    );
    assert_eq!(
        up("http://localhost:5000").ok(),
        Some(("http", "localhost:5000".into()))
    );
    assert_eq!(
        up("http://[::1]:5000").ok(),
        Some(("http", "[::1]:5000".into()))
    );
    assert!(matches!(
        parse_upstream("http://r.example"),
        Err(RegistryError::UnsupportedUpstreamRegistry(_))
    ));
    assert!(matches!(
        parse_upstream("ftp://r.example"),
        Err(RegistryError::UnsupportedUpstreamRegistry(_))
    ));
    for bad in ["", "https://", "r.example/path", "user@r.example", "a b"] {
        assert!(
            matches!(parse_upstream(bad), Err(RegistryError::InvalidParameter(_))),
            "{bad}"
        );
    }
}

#[test]
fn credential_arns_name_pull_through_secrets() {
    let arn =
        "arn:aws:secretsmanager:us-east-1:000000000000:secret:ecr-pullthroughcache/hub-AbCdEf";
    assert_eq!(check_credential_arn(arn).ok(), Some("hub-AbCdEf"));
    let other = "arn:aws:secretsmanager:us-east-1:000000000000:secret:other/hub-credentials";
    assert!(check_credential_arn(other).is_err());
    assert!(check_credential_arn(
        "arn:awsx:secretsmanager:us-east-1:000000000000:secret:ecr-pullthroughcache/a"
    )
    .is_err());
}

#[test]
fn ecr_upstreams_and_unauthenticated_hub_rules_are_refused() {
    assert!(matches!(
        check_upstream_kind(Some(UpstreamRegistry::Ecr), None, None),
        Err(RegistryError::UnsupportedUpstreamRegistry(_))
    ));
    assert!(matches!(
        check_upstream_kind(None, None, Some("arn:aws:iam::1:role/x")),
        Err(RegistryError::UnsupportedUpstreamRegistry(_))
    ));
    assert!(matches!(
        check_upstream_kind(Some(UpstreamRegistry::DockerHub), None, None),
        Err(RegistryError::InvalidParameter(_))
    ));
    assert!(check_upstream_kind(Some(UpstreamRegistry::Quay), None, None).is_ok());
    assert!(check_upstream_kind(Some(UpstreamRegistry::DockerHub), Some("arn"), None).is_ok());
}
