//! The filter patterns FilterLogEvents understands: CloudWatch Logs' unstructured term
//! syntax. JSON (`{ $.x = … }`), space-delimited (`[a, b]`) and regular-expression
//! (`%…%`) patterns are refused with InvalidParameterException rather than matched wrongly.
//!
//! Supported, matching case-sensitively against the whole message:
//! - an empty (or all-blank) pattern matches every event;
//! - `ERROR timeout`: every plain term must occur;
//! - `"connection reset"`: a quoted phrase occurs as written, spaces included (`\"` is a
//!   quote inside it);
//! - `?ERROR ?WARN`: at least one of the `?` terms must occur (together with any plain
//!   terms);
//! - `ERROR -healthcheck`: no `-` term may occur.
//!
//! Terms match as substrings, so `ERROR` matches `[ERROR]` and `ERRORS`.

use crate::error::{invalid, LogsError};

/// The longest pattern AWS accepts.
pub const MAX_PATTERN_LEN: usize = 1024;

/// A parsed filter pattern.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilterPattern {
    all: Vec<String>,
    any: Vec<String>,
    none: Vec<String>,
}

impl FilterPattern {
    /// Parses `text`; refuses the structured forms this server does not implement.
    pub fn parse(text: &str) -> Result<Self, LogsError> {
        if text.chars().count() > MAX_PATTERN_LEN {
            return invalid(format!(
                "1 validation error detected: Value at 'filterPattern' failed to satisfy constraint: Member must have length less than or equal to {MAX_PATTERN_LEN}"
            ));
        }
        let trimmed = text.trim();
        match trimmed.chars().next() {
            Some('{') => return invalid("Invalid filter pattern: JSON filter patterns ({ $.field = value }) are not supported by this server; use terms and quoted phrases."),
            Some('[') => return invalid("Invalid filter pattern: space-delimited filter patterns ([a, b]) are not supported by this server; use terms and quoted phrases."),
            Some('%') => return invalid("Invalid filter pattern: regular-expression filter patterns (%regex%) are not supported by this server; use terms and quoted phrases."),
            _ => {}
        }
        let mut out = Self::default();
        let mut chars = trimmed.chars().peekable();
        loop {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let Some(&first) = chars.peek() else { break };
            let list = match first {
                '?' => {
                    chars.next();
                    &mut out.any
                }
                '-' => {
                    chars.next();
                    &mut out.none
                }
                _ => &mut out.all,
            };
            let mut term = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                term.push(n);
                            }
                        }
                        '"' => {
                            closed = true;
                            break;
                        }
                        c => term.push(c),
                    }
                }
                if !closed {
                    return invalid(
                        "Invalid filter pattern: a quoted phrase is missing its closing quote.",
                    );
                }
            } else {
                while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                    term.push(c);
                }
            }
            if term.is_empty() {
                return invalid(format!(
                    "Invalid filter pattern: '{first}' must be followed by a term."
                ));
            }
            list.push(term);
        }
        Ok(out)
    }

    /// True when `message` matches.
    pub fn matches(&self, message: &str) -> bool {
        self.all.iter().all(|t| message.contains(t.as_str()))
            && (self.any.is_empty() || self.any.iter().any(|t| message.contains(t.as_str())))
            && !self.none.iter().any(|t| message.contains(t.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, msg: &str) -> bool {
        FilterPattern::parse(p)
            .expect("pattern parses")
            .matches(msg)
    }

    #[test]
    fn empty_pattern_matches_everything() {
        assert!(m("", "anything"));
        assert!(m("   ", ""));
    }

    #[test]
    fn plain_terms_must_all_occur_case_sensitively() {
        assert!(m("ERROR timeout", "[ERROR] request timeout"));
        assert!(!m("ERROR timeout", "[ERROR] refused"));
        assert!(!m("error", "ERROR"));
    }

    #[test]
    fn quoted_phrases_keep_their_spaces_and_escapes() {
        assert!(m("\"connection reset\"", "x connection reset by peer"));
        assert!(!m("\"connection reset\"", "connection was reset"));
        assert!(m(r#""say \"hi\"""#, r#"they say "hi" twice"#));
    }

    #[test]
    fn question_terms_need_any_one() {
        assert!(m("?ERROR ?WARN", "WARN disk"));
        assert!(!m("?ERROR ?WARN", "INFO ok"));
        assert!(m("disk ?ERROR ?WARN", "WARN disk"));
        assert!(!m("disk ?ERROR ?WARN", "WARN cpu"));
    }

    #[test]
    fn minus_terms_exclude() {
        assert!(m("ERROR -healthcheck", "ERROR db"));
        assert!(!m("ERROR -healthcheck", "ERROR healthcheck failed"));
        assert!(!m("-\"GET /health\"", "GET /health 200"));
    }

    #[test]
    fn structured_and_broken_patterns_are_refused() {
        for p in [
            "{ $.level = \"ERROR\" }",
            "[ip, user]",
            "%ERR.*%",
            "\"open",
            "?",
            "ok -",
        ] {
            let e = FilterPattern::parse(p).expect_err(p);
            assert_eq!(e.to_aws().code, "InvalidParameterException", "{p}");
        }
        assert!(FilterPattern::parse(&"a".repeat(1025)).is_err());
    }
}
