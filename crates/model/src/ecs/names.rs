//! AWS's rules for names, attributes and tags on ECS resources.

use super::shapes::Tag;

/// The container instance attribute holding the address the machine is reached at: a
/// load balancer sends an instance target's traffic there (ALB uses the EC2 instance's
/// private IP; a Stevedore instance has no EC2 record to take it from). The agent
/// registers it; ECS hands it to ELBv2 with the target.
pub const HOST_ADDRESS_ATTRIBUTE: &str = "stevedore.host-address";

/// Up to `max` ASCII letters, digits, hyphens and underscores: the rule ECS applies to
/// cluster names, task definition families and container names.
pub fn is_simple_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks a cluster name (1–255 letters, digits, hyphens, underscores).
pub fn check_cluster_name(name: &str) -> Result<(), String> {
    if is_simple_name(name, 255) {
        Ok(())
    } else {
        Err(format!(
            "Cluster name '{name}' is invalid. Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed."
        ))
    }
}

/// Checks a custom attribute name: 1–128 letters, digits, `-`, `_`, `/`, `\` or `.`.
pub fn check_attribute_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_/\\.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!("Attribute name '{name}' is invalid. Up to 128 letters (uppercase and lowercase), numbers, hyphens, underscores, forward slashes, back slashes, or periods are allowed."))
    }
}

/// Checks a custom attribute value: 1–128 letters, digits, `-_.@/\:` or spaces, with no
/// leading or trailing whitespace.
pub fn check_attribute_value(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value.trim() == value
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@/\\: ".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!("Attribute value '{value}' is invalid. Up to 128 letters (uppercase and lowercase), numbers, hyphens, underscores, periods, at signs (@), forward slashes, back slashes, colons, or spaces are allowed, with no leading or trailing spaces."))
    }
}

/// The most tags one resource may carry.
pub const MAX_TAGS: usize = 50;

/// Checks tags as ECS does: at most 50, keys 1–128 characters, values ≤ 256, no `aws:`
/// prefix, no duplicate keys.
pub fn check_tags(tags: &[Tag]) -> Result<(), String> {
    if tags.len() > MAX_TAGS {
        return Err(format!(
            "Too many tags: {} given, a resource can have at most {MAX_TAGS}.",
            tags.len()
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for t in tags {
        let key = t.key.as_deref().unwrap_or("");
        if key.is_empty() || key.chars().count() > 128 {
            return Err(format!(
                "Tag key '{key}' is invalid: keys must be 1 to 128 characters long."
            ));
        }
        let value = t.value.as_deref().unwrap_or("");
        if value.chars().count() > 256 {
            return Err(format!(
                "Tag value for key '{key}' is too long: values can be at most 256 characters."
            ));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(format!(
                "Tag key '{key}' is invalid: the 'aws:' prefix is reserved for AWS use."
            ));
        }
        if !seen.insert(key) {
            return Err(format!("Tag key '{key}' appears more than once."));
        }
    }
    Ok(())
}

/// Merges `new` tags into `existing`, replacing values of keys already present.
pub fn merge_tags(existing: &mut Vec<Tag>, new: &[Tag]) {
    for t in new {
        match existing.iter_mut().find(|e| e.key == t.key) {
            Some(e) => e.value = t.value.clone(),
            None => existing.push(t.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            key: Some(k.into()),
            value: Some(v.into()),
        }
    }

    #[test]
    fn simple_names_allow_letters_digits_hyphen_underscore_only() {
        assert!(is_simple_name("web-1_A", 255));
        assert!(!is_simple_name("", 255));
        assert!(!is_simple_name("a b", 255));
        assert!(!is_simple_name("a/b", 255));
        assert!(!is_simple_name(&"a".repeat(256), 255));
    }

    #[test]
    fn tags_with_reserved_prefix_or_duplicates_are_refused() {
        assert!(check_tags(&[tag("env", "prod")]).is_ok());
        assert!(check_tags(&[tag("aws:x", "1")]).is_err());
        assert!(check_tags(&[tag("a", "1"), tag("a", "2")]).is_err());
        let many: Vec<Tag> = (0..51).map(|i| tag(&format!("k{i}"), "v")).collect();
        assert!(check_tags(&many).is_err());
    }

    #[test]
    fn attribute_values_may_not_have_outer_spaces() {
        assert!(check_attribute_value("us-east-1a").is_ok());
        assert!(check_attribute_value(" x").is_err());
        assert!(check_attribute_name("stack").is_ok());
        assert!(check_attribute_name("a b").is_err());
    }

    #[test]
    fn merge_replaces_existing_keys_and_appends_new_ones() {
        let mut tags = vec![tag("a", "1")];
        merge_tags(&mut tags, &[tag("a", "2"), tag("b", "3")]);
        assert_eq!(tags, vec![tag("a", "2"), tag("b", "3")]);
    }
}
