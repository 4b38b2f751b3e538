//! Wildcard patterns of `Action`, `Resource` and condition values, tokenised once when a
//! policy is parsed so a request only walks tokens (no regex, no re-parsing).
//!
//! `*` matches any run of characters (`/` and `:` included) and `?` exactly one; policy
//! variables (`${aws:username}`, `${aws:PrincipalTag/team, 'none'}`) are resolved from the
//! request and always match literally; `${*}`, `${?}` and `${$}` stand for the characters
//! themselves. ARNs are matched per colon-separated segment, as IAM does.

use std::borrow::Cow;
use std::collections::HashSet;

use crate::context::Request;

/// One token of a pattern.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(Box<str>),
    Star,
    Quest,
    Var {
        key: Box<str>,
        default: Option<Box<str>>,
    },
}

/// A string pattern: literal text, wildcards, and (in 2012-10-17 policies) variables.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pattern {
    toks: Vec<Tok>,
    shape: Shape,
    /// Compare case-insensitively (pattern and input are lower-cased).
    fold: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Shape {
    /// `*` alone: matches everything.
    Any,
    /// No wildcard and no variable: string equality.
    Exact(Box<str>),
    /// Anything else: token walk.
    Glob { has_vars: bool },
}

/// How to read a pattern's text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Syntax {
    /// `*` and `?` are wildcards (else literal characters).
    pub wildcards: bool,
    /// `${...}` is a policy variable (else literal text).
    pub variables: bool,
    /// Match case-insensitively.
    pub fold: bool,
}

impl Pattern {
    pub(crate) fn new(text: &str, syntax: Syntax) -> Self {
        let text: Cow<str> = if syntax.fold {
            Cow::Owned(text.to_lowercase())
        } else {
            Cow::Borrowed(text)
        };
        let toks = tokenize(&text, syntax);
        let has_vars = toks.iter().any(|t| matches!(t, Tok::Var { .. }));
        let shape = match toks.as_slice() {
            [Tok::Star] => Shape::Any,
            [] => Shape::Exact("".into()),
            [Tok::Lit(l)] => Shape::Exact(l.clone()),
            _ => Shape::Glob { has_vars },
        };
        Self {
            toks,
            shape,
            fold: syntax.fold,
        }
    }

    /// Whether `input` matches; `input` must already be lower-cased for folding patterns.
    pub(crate) fn matches(&self, input: &str, req: &Request) -> bool {
        match &self.shape {
            Shape::Any => true,
            Shape::Exact(s) => **s == *input,
            Shape::Glob { has_vars: false } => glob(&self.toks, input),
            Shape::Glob { has_vars: true } => match self.resolve(req) {
                Some(toks) => glob(&toks, input),
                None => false,
            },
        }
    }

    /// Whether this pattern folds case (its input must be lower-cased first).
    pub(crate) fn folds(&self) -> bool {
        self.fold
    }

    /// The literal this pattern equals, when it has no wildcard and no variable.
    /// The context keys this pattern's policy variables read.
    pub(crate) fn variable_keys(&self) -> impl Iterator<Item = &str> {
        self.toks.iter().filter_map(|t| match t {
            Tok::Var { key, .. } => Some(&**key),
            _ => None,
        })
    }

    fn exact(&self) -> Option<&str> {
        match &self.shape {
            Shape::Exact(s) => Some(s),
            _ => None,
        }
    }

    /// Replaces variables by the request's values; `None` when one has no value and no
    /// default (such a pattern matches nothing).
    fn resolve(&self, req: &Request) -> Option<Vec<Tok>> {
        let mut out = Vec::with_capacity(self.toks.len());
        for t in &self.toks {
            match t {
                Tok::Var { key, default } => {
                    let value = match req.variable(key) {
                        Some(v) => v,
                        None => Cow::Borrowed(&**default.as_ref()?),
                    };
                    let value = if self.fold {
                        value.to_lowercase()
                    } else {
                        value.into_owned()
                    };
                    out.push(Tok::Lit(value.into()));
                }
                other => out.push(other.clone()),
            }
        }
        Some(out)
    }
}

fn tokenize(text: &str, syntax: Syntax) -> Vec<Tok> {
    let mut toks = Vec::new();
    let mut lit = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if syntax.variables && rest.starts_with("${") {
            if let Some(end) = rest.find('}') {
                let inner = &rest[2..end];
                rest = &rest[end + 1..];
                match inner {
                    "*" | "?" | "$" => lit.push_str(inner),
                    _ => {
                        flush(&mut lit, &mut toks);
                        toks.push(variable(inner));
                    }
                }
                continue;
            }
        }
        rest = &rest[c.len_utf8()..];
        match c {
            '*' if syntax.wildcards => {
                flush(&mut lit, &mut toks);
                if toks.last() != Some(&Tok::Star) {
                    toks.push(Tok::Star);
                }
            }
            '?' if syntax.wildcards => {
                flush(&mut lit, &mut toks);
                toks.push(Tok::Quest);
            }
            _ => lit.push(c),
        }
    }
    flush(&mut lit, &mut toks);
    toks
}

fn flush(lit: &mut String, toks: &mut Vec<Tok>) {
    if !lit.is_empty() {
        toks.push(Tok::Lit(std::mem::take(lit).into()));
    }
}

/// `aws:username` or `aws:username, 'default'` (keys compare case-insensitively).
fn variable(inner: &str) -> Tok {
    let (key, default) = match inner.split_once(',') {
        Some((k, d)) => {
            let d = d.trim();
            let d = d
                .strip_prefix('\'')
                .and_then(|d| d.strip_suffix('\''))
                .unwrap_or(d);
            (k, Some(d.into()))
        }
        None => (inner, None),
    };
    Tok::Var {
        key: key.trim().to_lowercase().into(),
        default,
    }
}

/// Wildcard match over tokens, with single-star backtracking (linear in practice).
fn glob(toks: &[Tok], input: &str) -> bool {
    let s = input.as_bytes();
    let (mut ti, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if let Some(t) = toks.get(ti) {
            let advanced = match t {
                Tok::Star => {
                    star = Some((ti, si));
                    ti += 1;
                    continue;
                }
                Tok::Quest if si < s.len() => {
                    si += char_len(s[si]);
                    true
                }
                Tok::Lit(l) if s[si..].starts_with(l.as_bytes()) => {
                    si += l.len();
                    true
                }
                _ => false,
            };
            if advanced {
                ti += 1;
                continue;
            }
        } else if si == s.len() {
            return true;
        }
        match star {
            Some((st, ss)) if ss < s.len() => {
                let next = ss + char_len(s[ss]);
                star = Some((st, next));
                ti = st + 1;
                si = next;
            }
            _ => return false,
        }
    }
}

/// Length of the UTF-8 sequence starting with `b` (input is valid UTF-8).
fn char_len(b: u8) -> usize {
    match b {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// Patterns of one element (`Action`), split so that the literal ones (most of a long
/// managed policy's action list) cost one hash lookup between them.
#[derive(Debug, Clone)]
pub(crate) struct PatternSet {
    exact: HashSet<Box<str>>,
    other: Vec<Pattern>,
}

impl PatternSet {
    /// The context keys the set's policy variables read (literal patterns have none).
    pub(crate) fn variable_keys(&self) -> impl Iterator<Item = &str> {
        self.other.iter().flat_map(Pattern::variable_keys)
    }

    pub(crate) fn new(patterns: Vec<Pattern>) -> Self {
        let (mut exact, mut other) = (HashSet::new(), Vec::new());
        for p in patterns {
            match p.exact() {
                Some(lit) => {
                    exact.insert(lit.into());
                }
                None => other.push(p),
            }
        }
        Self { exact, other }
    }

    /// Whether any pattern matches `input` (already lower-cased for folding patterns).
    pub(crate) fn matches(&self, input: &str, req: &Request) -> bool {
        self.exact.contains(input) || self.other.iter().any(|p| p.matches(input, req))
    }
}

/// An ARN pattern: up to six colon-separated segments, each a [`Pattern`]; the last one
/// takes the rest of the ARN, colons included (so `arn:aws:s3:::b/*` and `arn:aws:*` work).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ArnPattern {
    segments: Vec<Pattern>,
}

impl ArnPattern {
    /// The context keys the pattern's policy variables read.
    pub(crate) fn variable_keys(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().flat_map(Pattern::variable_keys)
    }

    pub(crate) fn new(text: &str, variables: bool) -> Self {
        let syntax = Syntax {
            wildcards: true,
            variables,
            fold: false,
        };
        let segments = split_segments(text, variables)
            .into_iter()
            .map(|s| Pattern::new(s, syntax))
            .collect();
        Self { segments }
    }

    pub(crate) fn matches(&self, arn: &str, req: &Request) -> bool {
        let last = self.segments.len().saturating_sub(1);
        let mut rest = arn;
        for (i, seg) in self.segments.iter().enumerate() {
            let part = if i == last {
                rest
            } else {
                match rest.split_once(':') {
                    Some((part, tail)) => {
                        rest = tail;
                        part
                    }
                    None => return false,
                }
            };
            if !seg.matches(part, req) {
                return false;
            }
        }
        true
    }
}

/// Splits at the first five colons that are not inside `${...}`.
fn split_segments(text: &str, variables: bool) -> Vec<&str> {
    let mut out = Vec::with_capacity(6);
    let bytes = text.as_bytes();
    let (mut start, mut depth) = (0usize, false);
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'$' if variables && bytes.get(i + 1) == Some(&b'{') => depth = true,
            b'}' if depth => depth = false,
            b':' if !depth && out.len() < 5 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::context::Principal;

    fn req() -> Request {
        Request::new(
            Principal::user("arn:aws:iam::123456789012:user/team/alice"),
            "s3:GetObject",
            "*",
        )
    }

    fn glob_str(p: &str, s: &str) -> bool {
        let syntax = Syntax {
            wildcards: true,
            variables: true,
            fold: false,
        };
        Pattern::new(p, syntax).matches(s, &req())
    }

    #[test]
    fn star_matches_any_run_and_question_mark_one_character() {
        assert!(glob_str("ecs:Describe*", "ecs:DescribeTasks"));
        assert!(glob_str("ecs:*Task*", "ecs:RunTask"));
        assert!(glob_str("a?c", "abc"));
        assert!(!glob_str("a?c", "ac"));
        assert!(glob_str("a?c", "aéc"));
        assert!(glob_str("*a*b*c", "xxaxxbxxbc"));
        assert!(!glob_str("*a*b*c", "xxaxxbxxb"));
        assert!(glob_str("", ""));
        assert!(!glob_str("", "x"));
    }

    #[test]
    fn variables_resolve_from_the_request_and_match_literally() {
        assert!(glob_str("home/${aws:username}/*", "home/alice/x"));
        assert!(!glob_str("home/${aws:username}/*", "home/bob/x"));
        assert!(glob_str("${aws:nosuchkey, 'dflt'}", "dflt"));
        assert!(!glob_str("${aws:nosuchkey}", ""));
        assert!(glob_str("a${*}b", "a*b"));
        assert!(!glob_str("a${*}b", "axb"));
        assert!(glob_str("${?}${$}", "?$"));
    }

    #[test]
    fn arn_wildcards_stay_inside_their_segment_except_the_last() {
        let r = req();
        let p = ArnPattern::new("arn:aws:ecs:*:123456789012:cluster/*", true);
        assert!(p.matches("arn:aws:ecs:us-east-1:123456789012:cluster/a", &r));
        assert!(!p.matches("arn:aws:ecs:us-east-1:999999999999:cluster/a", &r));
        assert!(!p.matches("*", &r));
        let short = ArnPattern::new("arn:aws:*", true);
        assert!(short.matches("arn:aws:ecs:us-east-1:1:cluster/a", &r));
        let mid = ArnPattern::new("arn:aws:ecs:*:cluster/a", true);
        assert!(!mid.matches("arn:aws:ecs:us-east-1:1:cluster/a", &r));
        let logs = ArnPattern::new("arn:aws:logs:*:*:log-group:/ecs/*", true);
        assert!(logs.matches(
            "arn:aws:logs:eu-west-1:1:log-group:/ecs/app:log-stream:x",
            &r
        ));
    }

    #[test]
    fn variable_colons_do_not_split_segments() {
        assert_eq!(
            split_segments("arn:aws:s3:::b/${aws:username}/*", true),
            vec!["arn", "aws", "s3", "", "", "b/${aws:username}/*"]
        );
    }
}
