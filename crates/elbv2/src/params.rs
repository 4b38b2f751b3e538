//! Reading typed members out of a query request: required strings, bounded integers,
//! booleans, enums, tag lists and the `Marker`/`PageSize` pagination, each refusing bad
//! input with AWS's `ValidationError` wording ("1 validation error detected: ...").

use crate::error::{invalid, Elbv2Error};
use wire::query::QueryView;

/// The most tags a resource may carry.
pub const MAX_TAGS: usize = 50;

/// AWS names members in validation messages with a lowercase first letter.
fn member(name: &str) -> String {
    let mut c = name.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A required scalar member.
pub fn required<'a>(q: &QueryView<'a>, name: &str) -> Result<&'a str, Elbv2Error> {
    match q.get(name) {
        Some(v) => Ok(v),
        None => invalid(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            member(name)
        )),
    }
}

/// An optional integer member within `lo..=hi`.
pub fn int(q: &QueryView<'_>, name: &str, lo: i64, hi: i64) -> Result<Option<i64>, Elbv2Error> {
    let Some(text) = q.get(name) else {
        return Ok(None);
    };
    let Ok(n) = text.trim().parse::<i64>() else {
        return invalid(format!(
            "Value '{text}' at '{}' is not a valid integer",
            member(name)
        ));
    };
    if n < lo {
        return invalid(format!("1 validation error detected: Value '{n}' at '{}' failed to satisfy constraint: Member must have value greater than or equal to {lo}", member(name)));
    }
    if n > hi {
        return invalid(format!("1 validation error detected: Value '{n}' at '{}' failed to satisfy constraint: Member must have value less than or equal to {hi}", member(name)));
    }
    Ok(Some(n))
}

/// An optional `u32` member within `lo..=hi`.
pub fn uint(q: &QueryView<'_>, name: &str, lo: u32, hi: u32) -> Result<Option<u32>, Elbv2Error> {
    Ok(int(q, name, i64::from(lo), i64::from(hi))?.and_then(|n| u32::try_from(n).ok()))
}

/// An optional port member (1..=65535).
pub fn port(q: &QueryView<'_>, name: &str) -> Result<Option<u16>, Elbv2Error> {
    Ok(int(q, name, 1, 65535)?.and_then(|n| u16::try_from(n).ok()))
}

/// An optional boolean member (`true`/`false`, as botocore sends them).
pub fn boolean(q: &QueryView<'_>, name: &str) -> Result<Option<bool>, Elbv2Error> {
    match q.get(name) {
        None => Ok(None),
        Some(v) => parse_bool(v).map(Some).ok_or_else(|| {
            Elbv2Error::Validation(format!(
                "Value '{v}' at '{}' is not a valid boolean; use true or false",
                member(name)
            ))
        }),
    }
}

/// `true`/`false`, case-insensitively.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// An optional enum member whose value must be one of `allowed`.
pub fn one_of<'a>(
    q: &QueryView<'a>,
    name: &str,
    allowed: &[&str],
) -> Result<Option<&'a str>, Elbv2Error> {
    match q.get(name) {
        None => Ok(None),
        Some(v) if allowed.contains(&v) => Ok(Some(v)),
        Some(v) => invalid(format!(
            "1 validation error detected: Value '{v}' at '{}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
            member(name),
            allowed.join(", ")
        )),
    }
}

/// Whether a tag key or value uses only the characters AWS allows.
fn tag_text_ok(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
}

/// The tag list `name.member.N.Key/Value`; refuses duplicate keys and malformed text.
pub fn tags(q: &QueryView<'_>, name: &str) -> Result<Vec<(String, String)>, Elbv2Error> {
    let mut out: Vec<(String, String)> = Vec::new();
    for t in q.members(name) {
        let key = required(&t, "Key")?;
        let value = t.get("Value").unwrap_or("");
        if key.is_empty() || key.chars().count() > 128 || !tag_text_ok(key) {
            return invalid(format!(
                "Tag key '{key}' is not valid: use 1 to 128 letters, digits, spaces and _.:/=+-@"
            ));
        }
        if key.starts_with("aws:") {
            return invalid(format!(
                "Tag key '{key}' is not valid: the 'aws:' prefix is reserved"
            ));
        }
        if value.chars().count() > 256 || !tag_text_ok(value) {
            return invalid(format!("The value of tag '{key}' is not valid: use up to 256 letters, digits, spaces and _.:/=+-@"));
        }
        if out.iter().any(|(k, _)| k == key) {
            return Err(Elbv2Error::DuplicateTagKeys(format!(
                "Tag key '{key}' appears more than once; each key may be given only once"
            )));
        }
        out.push((key.to_owned(), value.to_owned()));
    }
    Ok(out)
}

/// Adds `new` tags to `tags` (replacing values of existing keys), keeping the limit.
pub fn merge_tags(
    tags: &mut crate::state::Tags,
    new: &[(String, String)],
    resource: &str,
) -> Result<(), Elbv2Error> {
    let mut merged = tags.clone();
    for (k, v) in new {
        merged.insert(k.clone(), v.clone());
    }
    if merged.len() > MAX_TAGS {
        return Err(Elbv2Error::TooManyTags(format!(
            "Resource '{resource}' would have {} tags; the limit is {MAX_TAGS}",
            merged.len()
        )));
    }
    *tags = merged;
    Ok(())
}

/// `Marker` and `PageSize` (1..=400): the position after which to start, and the size.
pub fn page(q: &QueryView<'_>, kind: &str) -> Result<(Option<String>, usize), Elbv2Error> {
    let size = int(q, "PageSize", 1, 400)?.unwrap_or(400);
    let marker = match q.get("Marker").filter(|m| !m.is_empty()) {
        None => None,
        Some(m) => Some(decode_marker(kind, m)?),
    };
    Ok((marker, usize::try_from(size).unwrap_or(400)))
}

/// The position inside a marker of `kind` (which keeps one operation's markers from
/// being accepted by another).
fn decode_marker(kind: &str, marker: &str) -> Result<String, Elbv2Error> {
    wire::pagination::decode_token(kind, marker).map_err(|_| {
        Elbv2Error::Validation(format!(
            "Marker '{marker}' is not valid: pass the NextMarker of a previous call of this operation"
        ))
    })
}

/// One page of `items` (sorted by their key): those after `after`, at most `size`, and
/// the marker of the next page (absent on the last, so paginators stop).
pub fn paginate<T>(
    kind: &str,
    items: Vec<(String, T)>,
    after: Option<&str>,
    size: usize,
) -> (Vec<T>, Option<String>) {
    let page = wire::pagination::paginate(kind, items, after, size, false);
    (page.items, page.next_token)
}

/// Refuses `value` for the attribute `key` of a `what` ("Load balancer", "Target group")
/// unless it is the key's default in `defaults`: for attributes the data plane does not
/// act on, whose default describes what it does, so that no setting is stored and
/// silently ignored.
pub fn default_only(
    what: &str,
    defaults: &[(&str, &str)],
    key: &str,
    value: &str,
) -> Result<(), Elbv2Error> {
    let default = defaults
        .iter()
        .find(|(k, _)| *k == key)
        .map_or("", |(_, v)| *v);
    if value == default {
        return Ok(());
    }
    invalid(format!(
        "{what} attribute '{key}' cannot be set to '{value}' on Stevedore: its load balancer does not act on it, so only the default '{default}' is accepted"
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use wire::query::parse_form;

    #[test]
    fn integers_booleans_and_enums_are_checked() {
        let q = parse_form(b"Port=0&Big=70000&Ok=80&B=TRUE&Bad=yes&E=ip&N=x").unwrap();
        let v = q.view();
        assert!(int(&v, "Port", 1, 65535)
            .unwrap_err()
            .to_string()
            .contains("'port'"));
        assert!(port(&v, "Big").is_err());
        assert_eq!(port(&v, "Ok").unwrap(), Some(80));
        assert_eq!(port(&v, "Absent").unwrap(), None);
        assert_eq!(boolean(&v, "B").unwrap(), Some(true));
        assert!(boolean(&v, "Bad").is_err());
        assert_eq!(one_of(&v, "E", &["instance", "ip"]).unwrap(), Some("ip"));
        assert!(one_of(&v, "N", &["instance", "ip"]).is_err());
        assert!(int(&v, "N", 0, 1).is_err());
        assert!(required(&v, "Name")
            .unwrap_err()
            .to_string()
            .contains("'name'"));
    }

    #[test]
    fn tags_refuse_duplicates_and_reserved_prefix() {
        let q =
            parse_form(b"Tags.member.1.Key=a&Tags.member.1.Value=1&Tags.member.2.Key=a").unwrap();
        assert!(matches!(
            tags(&q.view(), "Tags"),
            Err(Elbv2Error::DuplicateTagKeys(_))
        ));
        let q = parse_form(b"Tags.member.1.Key=aws:x").unwrap();
        assert!(tags(&q.view(), "Tags").is_err());
        let q = parse_form(b"Tags.member.1.Key=env&Tags.member.1.Value=prod").unwrap();
        assert_eq!(
            tags(&q.view(), "Tags").unwrap(),
            [("env".into(), "prod".into())]
        );
    }

    #[test]
    fn pages_cover_every_item_once_and_the_last_has_no_marker() {
        let items = || (0..7).map(|i| (format!("k{i}"), i)).collect::<Vec<_>>();
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let (page, next) = paginate("x", items(), after.as_deref(), 3);
            seen.extend(page);
            match next {
                Some(m) => after = Some(decode_marker("x", &m).unwrap()),
                None => break,
            }
        }
        assert_eq!(seen, (0..7).collect::<Vec<_>>());
        assert!(decode_marker("y", &wire::pagination::encode_token("x", "k")).is_err());
        assert!(decode_marker("x", "!!").is_err());
    }
}
