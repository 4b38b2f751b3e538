//! AWS's rules for CloudWatch Logs names, retention periods, tags and ARNs.
//!
//! Messages follow AWS's validation wording ("1 validation error detected: …") so a
//! person reading the CLI's error sees what AWS would have said.

use std::collections::BTreeMap;

/// The longest log group or log stream name.
pub const MAX_NAME_LEN: usize = 512;

/// The retention periods (days) PutRetentionPolicy accepts, from botocore's `Days` shape.
pub const RETENTION_DAYS: &[i32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// The most tags one log group may carry.
pub const MAX_TAGS: usize = 50;

fn constraint(value: &str, member: &str, rule: &str) -> String {
    format!("1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {rule}")
}

/// Checks a log group name: 1–512 of `[.\-_/#A-Za-z0-9]`.
pub fn check_log_group_name(name: &str) -> Result<(), String> {
    check_log_group_name_member(name, "logGroupName")
}

/// Checks a log group name carried in `member` (e.g. `logGroupNamePrefix`).
pub fn check_log_group_name_member(name: &str, member: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(constraint(
            name,
            member,
            "Member must have length between 1 and 512",
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-/#".contains(&b))
    {
        return Err(constraint(
            name,
            member,
            "Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+",
        ));
    }
    Ok(())
}

/// Checks a log stream name: 1–512 characters, none of them `:` or `*`.
pub fn check_log_stream_name(name: &str) -> Result<(), String> {
    check_log_stream_name_member(name, "logStreamName")
}

/// Checks a log stream name carried in `member` (e.g. `logStreamNamePrefix`).
pub fn check_log_stream_name_member(name: &str, member: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(constraint(
            name,
            member,
            "Member must have length between 1 and 512",
        ));
    }
    if name.contains([':', '*']) {
        return Err(constraint(
            name,
            member,
            "Member must satisfy regular expression pattern: [^:*]*",
        ));
    }
    Ok(())
}

/// Checks a retention period against the values AWS allows.
pub fn check_retention_days(days: i32) -> Result<(), String> {
    if RETENTION_DAYS.contains(&days) {
        Ok(())
    } else {
        Err(constraint(
            &days.to_string(),
            "retentionInDays",
            "Member must satisfy enum value set: [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]",
        ))
    }
}

/// Checks tags as CloudWatch Logs does: keys 1–128 characters without an `aws:` prefix,
/// values up to 256 characters, at most [`MAX_TAGS`] in all.
pub fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), String> {
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 {
            return Err(constraint(
                k,
                "tags",
                "Member must have length between 1 and 128",
            ));
        }
        if k.to_ascii_lowercase().starts_with("aws:") {
            return Err(format!(
                "Tag key '{k}' is invalid: the aws: prefix is reserved."
            ));
        }
        if v.chars().count() > 256 {
            return Err(constraint(
                v,
                "tags",
                "Member must have length less than or equal to 256",
            ));
        }
    }
    Ok(())
}

/// A log group's ARN as DescribeLogGroups' `arn` shows it (with the trailing `:*`).
pub fn log_group_arn_star(region: &str, account: &str, group: &str) -> String {
    format!("arn:aws:logs:{region}:{account}:log-group:{group}:*")
}

/// A log group's ARN without the trailing `:*` (`logGroupArn`, and what TagResource takes).
pub fn log_group_arn(region: &str, account: &str, group: &str) -> String {
    format!("arn:aws:logs:{region}:{account}:log-group:{group}")
}

/// A log stream's ARN.
pub fn log_stream_arn(region: &str, account: &str, group: &str, stream: &str) -> String {
    format!("arn:aws:logs:{region}:{account}:log-group:{group}:log-stream:{stream}")
}

/// The log group a `logGroupIdentifier` or `resourceArn` names: a bare name, or a log
/// group ARN with or without the trailing `:*`. `None` when it is an ARN of something
/// else.
pub fn log_group_from_identifier(identifier: &str) -> Option<&str> {
    let Some(rest) = identifier.strip_prefix("arn:") else {
        return Some(identifier);
    };
    // partition:service:region:account:resource
    let mut parts = rest.splitn(5, ':');
    let (_partition, service, _region, _account) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let resource = parts.next()?;
    if service != "logs" {
        return None;
    }
    let name = resource.strip_prefix("log-group:")?;
    let name = name.strip_suffix(":*").unwrap_or(name);
    (!name.is_empty() && !name.contains(':')).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_allow_aws_charset_only() {
        assert!(check_log_group_name("/ecs/web-app_1.#x").is_ok());
        assert!(check_log_group_name("").is_err());
        assert!(check_log_group_name("has space").is_err());
        assert!(check_log_group_name("colon:").is_err());
        assert!(check_log_group_name(&"a".repeat(512)).is_ok());
        assert!(check_log_group_name(&"a".repeat(513)).is_err());
    }

    #[test]
    fn stream_names_refuse_colon_and_star() {
        assert!(check_log_stream_name("ecs/app/0123abcd").is_ok());
        assert!(check_log_stream_name("with space é").is_ok());
        assert!(check_log_stream_name("a:b").is_err());
        assert!(check_log_stream_name("a*").is_err());
        assert!(check_log_stream_name("").is_err());
    }

    #[test]
    fn retention_accepts_only_listed_days() {
        assert!(check_retention_days(1).is_ok());
        assert!(check_retention_days(3653).is_ok());
        assert!(check_retention_days(2).is_err());
        assert!(check_retention_days(0).is_err());
    }

    #[test]
    fn identifiers_resolve_names_and_both_arn_forms() {
        assert_eq!(log_group_from_identifier("/a/b"), Some("/a/b"));
        assert_eq!(
            log_group_from_identifier("arn:aws:logs:us-east-1:000000000000:log-group:/a/b:*"),
            Some("/a/b")
        );
        assert_eq!(
            log_group_from_identifier("arn:aws:logs:us-east-1:000000000000:log-group:g"),
            Some("g")
        );
        assert_eq!(
            log_group_from_identifier("arn:aws:logs:us-east-1:000000000000:destination:d"),
            None
        );
        assert_eq!(
            log_group_from_identifier("arn:aws:ecs:us-east-1:000000000000:log-group:g"),
            None
        );
    }
}
