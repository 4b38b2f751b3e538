//! The agent's config file (`agent.conf`: `KEY=VALUE` lines in the style of ECS's
//! `ecs.config`) and the durations its settings use (`3h`, `10m`, `30s`, `1h30m` or plain
//! seconds). Outside input: both parsers refuse with a line or a reason, never panic (the
//! `credentials_file` fuzz target feeds them).

use std::collections::BTreeMap;
use std::time::Duration;

/// Why a config file or a duration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigFileError {
    /// A line that is neither blank, a `#` comment nor `KEY=VALUE`.
    #[error("line {0}: expected KEY=VALUE")]
    NotKeyValue(usize),
    /// A duration that does not read as one.
    #[error("bad duration '{0}': {1}")]
    Duration(String, &'static str),
}

/// Parses a `KEY=VALUE` file: blank lines and `#` comments are skipped, keys and values
/// are trimmed, values may be quoted.
pub fn parse_config_file(text: &str) -> Result<BTreeMap<String, String>, ConfigFileError> {
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or(ConfigFileError::NotKeyValue(n + 1))?;
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .unwrap_or(v);
        out.insert(k.trim().to_owned(), v.to_owned());
    }
    Ok(out)
}

/// `3h`, `10m`, `30s`, `1h30m` or plain seconds. A duration too long to count in seconds
/// is refused, not wrapped.
pub fn parse_duration(s: &str) -> Result<Duration, ConfigFileError> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let bad = |why: &'static str| ConfigFileError::Duration(s.to_owned(), why);
    let mut total = 0u64;
    let mut num = String::new();
    for ch in s.chars() {
        if ch.is_ascii_digit() {
            num.push(ch);
            continue;
        }
        let n: u64 = num
            .parse()
            .map_err(|_| bad("expected a number before each unit"))?;
        num.clear();
        let unit = match ch {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad("unit must be h, m or s")),
        };
        total = n
            .checked_mul(unit)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(|| bad("too long"))?;
    }
    if !num.is_empty() {
        return Err(bad("a unit (h, m, s) is missing"));
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_the_agent_documents_them() {
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("1h5").is_err());
        assert!(parse_duration("h").is_err());
    }

    #[test]
    fn a_duration_too_long_for_seconds_is_refused_not_wrapped() {
        // 10^16 hours overflows u64 seconds: the parser this replaced multiplied
        // unchecked (a panic in debug builds, a wrapped duration in release).
        assert!(parse_duration("10000000000000000h").is_err());
        assert!(parse_duration("5124095576030431h5124095576030431h").is_err());
    }

    #[test]
    fn config_lines_are_trimmed_and_unquoted_and_bad_lines_named() {
        let m = parse_config_file("# c\n\n ECS_CLUSTER = \"prod\" \nX=a=b\n").expect("parses");
        assert_eq!(m.get("ECS_CLUSTER").map(String::as_str), Some("prod"));
        assert_eq!(m.get("X").map(String::as_str), Some("a=b"));
        assert_eq!(
            parse_config_file("ok=1\nnope\n"),
            Err(ConfigFileError::NotKeyValue(2))
        );
    }
}
