//! The model's constraints on names, paths and the like, refused with IAM's
//! `ValidationError` wording.

use crate::error::IamError;

/// `[\w+=,.@-]` (`\w` being ASCII letters, digits and `_`).
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

/// A user, role, policy or profile name of at most `max` characters.
pub fn name<'a>(value: Option<&'a str>, member: &str, max: usize) -> Result<&'a str, IamError> {
    let v = value.ok_or_else(|| IamError::missing(member))?;
    if v.is_empty() || v.chars().count() > max {
        return Err(IamError::validation(
            v,
            member,
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    if !v.chars().all(name_char) {
        return Err(IamError::validation(
            v,
            member,
            "Member must satisfy regular expression pattern: [\\w+=,.@-]+",
        ));
    }
    Ok(v)
}

/// A path: `/` or `/…/` of printable ASCII, at most 512 characters; `/` when absent.
pub fn path<'a>(value: Option<&'a str>, member: &str) -> Result<&'a str, IamError> {
    let Some(v) = value else { return Ok("/") };
    let ok = v.len() <= 512
        && v.starts_with('/')
        && v.ends_with('/')
        && v.chars().all(|c| ('\u{21}'..='\u{7e}').contains(&c));
    if ok {
        Ok(v)
    } else {
        Err(IamError::validation(
            v,
            member,
            "Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)",
        ))
    }
}

/// A role session name: 2 to 64 characters of `[\w+=,.@-]`.
pub fn session_name(value: Option<&str>) -> Result<&str, IamError> {
    let v = value.ok_or_else(|| IamError::missing("roleSessionName"))?;
    if v.len() < 2 || v.len() > 64 {
        return Err(IamError::validation(
            v,
            "roleSessionName",
            "Member must have length greater than or equal to 2",
        ));
    }
    if !v.chars().all(name_char) {
        return Err(IamError::validation(
            v,
            "roleSessionName",
            "Member must satisfy regular expression pattern: [\\w+=,.@-]*",
        ));
    }
    Ok(v)
}

/// An optional whole number within `min..=max`.
pub fn number(
    value: Option<&str>,
    member: &str,
    min: i64,
    max: i64,
) -> Result<Option<i64>, IamError> {
    let Some(v) = value else { return Ok(None) };
    let n: i64 = v
        .parse()
        .map_err(|_| IamError::validation(v, member, "Member must be a whole number"))?;
    if n < min {
        return Err(IamError::validation(
            v,
            member,
            &format!("Member must have value greater than or equal to {min}"),
        ));
    }
    if n > max {
        return Err(IamError::validation(
            v,
            member,
            &format!("Member must have value less than or equal to {max}"),
        ));
    }
    Ok(Some(n))
}

/// A policy document parameter: present, at most 131,072 characters.
pub fn document<'a>(value: Option<&'a str>, member: &str) -> Result<&'a str, IamError> {
    let v = value.ok_or_else(|| IamError::missing(member))?;
    if v.is_empty() || v.chars().count() > policy::size::DOCUMENT_MAX_CHARS {
        return Err(IamError::validation(
            "…",
            member,
            "Member must have length less than or equal to 131072",
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_model_pattern_and_length() {
        assert!(name(Some("alice+ops@x.y"), "userName", 64).is_ok());
        assert!(name(Some("bad name"), "userName", 64).is_err());
        assert!(name(Some(&"a".repeat(65)), "userName", 64).is_err());
        assert!(name(None, "userName", 64).is_err());
    }

    #[test]
    fn paths_start_and_end_with_a_slash() {
        assert_eq!(path(None, "path").ok(), Some("/"));
        assert!(path(Some("/a/b/"), "path").is_ok());
        assert!(path(Some("/a"), "path").is_err());
    }

    #[test]
    fn session_names_are_two_to_sixty_four_characters() {
        assert!(session_name(Some("s")).is_err());
        assert!(session_name(Some("ok")).is_ok());
        assert!(session_name(Some("no spaces")).is_err());
    }
}
