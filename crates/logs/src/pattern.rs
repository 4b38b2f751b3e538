//! The filter pattern language of CloudWatch Logs, shared by FilterLogEvents and metric
//! filters: parsing (pure, no I/O) and matching one message, with the values a match
//! extracts for a metric filter's `metricValue` and dimensions.
//!
//! Three kinds, told apart by the first character, as AWS's "Filter pattern syntax"
//! documents them:
//! - **terms** (unstructured): `ERROR timeout` needs every term; `"connection reset"` is a
//!   phrase (`\"` is a quote inside it); `?ERROR ?WARN` needs at least one `?` term;
//!   `ERROR -healthcheck` needs no `-` term; `%ERR(OR)?%` is a regular expression. Terms
//!   match case-sensitively as substrings of the whole message. An empty (or all-blank)
//!   pattern matches every event.
//! - **JSON** `{ $.a.b = "x" && ($.n > 5 || $.arr[0] != *skip*) }`: selectors `$.field`,
//!   `$.a.b`, `$.a[0]`; `=` and `!=` against strings (with `*` wildcards), numbers or
//!   `%regex%`; `<`, `<=`, `>`, `>=` against numbers; `IS TRUE`, `IS FALSE`, `IS NULL`,
//!   `NOT EXISTS`; `&&` binds tighter than `||`; parentheses group. A message that is not
//!   a JSON object matches no JSON pattern.
//! - **space-delimited** `[ip, user, ..., status = 5* || status = 4*, bytes > 100]`: the
//!   message splits on spaces (text in `"…"` or `[…]` is one field, without its quotes or
//!   brackets); each named field binds one field in order; `...` binds any number of
//!   fields; a condition may follow a name and refer to any named field. Without `...` the
//!   field counts must agree.
//!
//! Values written as numbers compare numerically (against JSON numbers, or against
//! delimited fields that read as numbers); everything else compares as text.

use regex::Regex;
use std::collections::BTreeMap;

/// The longest pattern AWS accepts.
pub const MAX_PATTERN_LEN: usize = 1024;
/// The most nested parentheses or selector steps a pattern may have: keeps the
/// recursive parser and matcher shallow on hostile input.
const MAX_DEPTH: usize = 32;
/// The most fields a space-delimited pattern may name.
const MAX_FIELDS: usize = 64;
/// The most regular expressions AWS allows in one pattern.
const MAX_REGEXES: usize = 2;
/// The largest compiled regular expression (bytes), so a pattern cannot exhaust memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Why a pattern does not parse. Reported as InvalidParameterException with AWS's
/// "Invalid filter pattern" wording.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// Longer than [`MAX_PATTERN_LEN`] characters.
    #[error("1 validation error detected: Value at 'filterPattern' failed to satisfy constraint: Member must have length less than or equal to {MAX_PATTERN_LEN}")]
    TooLong,
    /// Anything else, with what is wrong.
    #[error("Invalid filter pattern: {0}")]
    Invalid(String),
}

fn bad<T>(msg: impl Into<String>) -> Result<T, PatternError> {
    Err(PatternError::Invalid(msg.into()))
}

/// A parsed filter pattern.
#[derive(Clone, Debug)]
pub struct FilterPattern {
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    Terms(Terms),
    Json(Expr<Selector>),
    Delimited(Delimited),
}

/// What a match extracted: the message as JSON (for `$.x` references) or the delimited
/// pattern's named fields (for `$name` references).
#[derive(Clone, Debug, PartialEq)]
pub enum Extracted {
    /// A terms pattern extracts nothing.
    Nothing,
    /// The message, parsed.
    Json(serde_json::Value),
    /// Each named field's text, by name, in pattern order.
    Fields(Vec<(String, String)>),
}

impl Extracted {
    /// The value a metric filter reference (`$.a.b` or `$name`) names, as text; `None`
    /// when the match has no such value (or it is an object, array or null).
    pub fn lookup(&self, reference: &str) -> Option<String> {
        match self {
            Self::Nothing => None,
            Self::Json(v) => {
                let sel = parse_selector_text(reference).ok()?;
                scalar_text(sel.get(v)?)
            }
            Self::Fields(fields) => {
                let name = reference.strip_prefix('$')?;
                fields
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
            }
        }
    }

    /// TestMetricFilter's `extractedValues`: `$name` → text for delimited patterns
    /// (empty for the others).
    pub fn values(&self) -> BTreeMap<String, String> {
        match self {
            Self::Fields(fields) => fields
                .iter()
                .map(|(n, v)| (format!("${n}"), v.clone()))
                .collect(),
            _ => BTreeMap::new(),
        }
    }
}

impl FilterPattern {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        if text.chars().count() > MAX_PATTERN_LEN {
            return Err(PatternError::TooLong);
        }
        let trimmed = text.trim();
        let mut p = Parser::new(trimmed);
        let kind = match trimmed.chars().next() {
            Some('{') => {
                p.expect('{')?;
                let expr = p.expr(0, &mut |p| p.selector())?;
                p.expect('}')?;
                Kind::Json(expr)
            }
            Some('[') => Kind::Delimited(p.delimited()?),
            _ => Kind::Terms(p.terms()?),
        };
        p.skip_ws();
        if !p.at_end() {
            return bad(format!(
                "unexpected '{}' at position {}",
                p.rest().chars().next().unwrap_or(' '),
                p.pos
            ));
        }
        Ok(Self { kind })
    }

    /// True when `message` matches.
    pub fn matches(&self, message: &str) -> bool {
        self.extract(message).is_some()
    }

    /// What `message` yields when it matches (`None` when it does not).
    pub fn extract(&self, message: &str) -> Option<Extracted> {
        match &self.kind {
            Kind::Terms(t) => t.matches(message).then_some(Extracted::Nothing),
            Kind::Json(expr) => {
                let value: serde_json::Value = serde_json::from_str(message.trim()).ok()?;
                if !value.is_object() {
                    return None;
                }
                expr.eval(&mut |sel: &Selector, cond| json_holds(sel.get(&value), cond))
                    .then_some(Extracted::Json(value))
            }
            Kind::Delimited(d) => d.extract(message).map(Extracted::Fields),
        }
    }

    /// The `$name` fields a delimited pattern names (empty for the other kinds): what a
    /// metric filter may reference besides `$.` selectors.
    pub fn field_names(&self) -> Vec<&str> {
        match &self.kind {
            Kind::Delimited(d) => d
                .slots
                .iter()
                .filter_map(|s| match s {
                    Slot::Named(n) => Some(n.as_str()),
                    Slot::Ellipsis => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Whether this is a JSON pattern (its matches can be referenced with `$.x`).
    pub fn is_json(&self) -> bool {
        matches!(self.kind, Kind::Json(_))
    }
}

// ---------------------------------------------------------------------------------------
// Terms

#[derive(Clone, Debug, Default)]
struct Terms {
    all: Vec<Term>,
    any: Vec<Term>,
    none: Vec<Term>,
}

#[derive(Clone, Debug)]
enum Term {
    Text(String),
    Regex(Regex),
}

impl Term {
    fn found_in(&self, message: &str) -> bool {
        match self {
            Self::Text(t) => message.contains(t.as_str()),
            Self::Regex(r) => r.is_match(message),
        }
    }
}

impl Terms {
    fn matches(&self, message: &str) -> bool {
        self.all.iter().all(|t| t.found_in(message))
            && (self.any.is_empty() || self.any.iter().any(|t| t.found_in(message)))
            && !self.none.iter().any(|t| t.found_in(message))
    }
}

// ---------------------------------------------------------------------------------------
// Conditions (JSON and delimited share them)

/// A boolean tree of conditions on things of type `T` (JSON selectors, field names).
#[derive(Clone, Debug)]
enum Expr<T> {
    Cond(T, Cond),
    And(Vec<Expr<T>>),
    Or(Vec<Expr<T>>),
}

impl<T> Expr<T> {
    fn eval(&self, holds: &mut dyn FnMut(&T, &Cond) -> bool) -> bool {
        match self {
            Self::Cond(t, c) => holds(t, c),
            Self::And(xs) => xs.iter().all(|x| x.eval(holds)),
            Self::Or(xs) => xs.iter().any(|x| x.eval(holds)),
        }
    }

    fn visit<'a>(&'a self, f: &mut dyn FnMut(&'a T)) {
        match self {
            Self::Cond(t, _) => f(t),
            Self::And(xs) | Self::Or(xs) => xs.iter().for_each(|x| x.visit(f)),
        }
    }
}

#[derive(Clone, Debug)]
enum Cond {
    Compare(Op, Value),
    IsTrue,
    IsFalse,
    IsNull,
    NotExists,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Debug)]
enum Value {
    /// Written as a number: compares numerically.
    Number(f64),
    /// Text, where `*` matches any run of characters.
    Glob(String),
    /// `%regex%`: matches when found anywhere in the value.
    Regex(Regex),
}

impl Value {
    /// Whether text `s` equals this value (numbers: when `s` reads as the same number).
    fn text_eq(&self, s: &str) -> bool {
        match self {
            Self::Number(n) => s.trim().parse::<f64>().is_ok_and(|x| x == *n),
            Self::Glob(g) => glob(g, s),
            Self::Regex(r) => r.is_match(s),
        }
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

fn compare(op: Op, x: f64, n: f64) -> bool {
    match op {
        Op::Eq => x == n,
        Op::Ne => x != n,
        Op::Lt => x < n,
        Op::Le => x <= n,
        Op::Gt => x > n,
        Op::Ge => x >= n,
    }
}

/// Whether a JSON value found by a selector (`None`: absent) satisfies `cond`.
fn json_holds(found: Option<&serde_json::Value>, cond: &Cond) -> bool {
    use serde_json::Value as J;
    match (cond, found) {
        (Cond::NotExists, found) => found.is_none(),
        (_, None) => false,
        (Cond::IsTrue, Some(v)) => v == &J::Bool(true),
        (Cond::IsFalse, Some(v)) => v == &J::Bool(false),
        (Cond::IsNull, Some(v)) => v.is_null(),
        (Cond::Compare(op, value), Some(v)) => match (op, value, v) {
            (op, Value::Number(n), J::Number(x)) => x.as_f64().is_some_and(|x| compare(*op, x, *n)),
            (Op::Eq, value, v) => scalar_text(v).is_some_and(|s| value.text_eq(&s)),
            (Op::Ne, value, v) => !scalar_text(v).is_some_and(|s| value.text_eq(&s)),
            _ => false,
        },
    }
}

/// A JSON scalar as text (strings unquoted); `None` for null, objects and arrays.
fn scalar_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Whether a delimited field's text satisfies `cond`.
fn text_holds(text: &str, cond: &Cond) -> bool {
    match cond {
        Cond::Compare(Op::Eq, v) => v.text_eq(text),
        Cond::Compare(Op::Ne, v) => !v.text_eq(text),
        Cond::Compare(op, Value::Number(n)) => text
            .trim()
            .parse::<f64>()
            .is_ok_and(|x| compare(*op, x, *n)),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------
// JSON selectors

#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// `$.a.b[0]`: the path from the message's root.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Selector(Vec<Step>);

impl Selector {
    fn get<'a>(&self, root: &'a serde_json::Value) -> Option<&'a serde_json::Value> {
        self.0.iter().try_fold(root, |v, step| match step {
            Step::Key(k) => v.get(k.as_str()),
            Step::Index(i) => v.get(*i),
        })
    }
}

/// Parses a whole selector (a metric filter's `$.x` reference).
fn parse_selector_text(text: &str) -> Result<Selector, PatternError> {
    let mut p = Parser::new(text);
    let sel = p.selector()?;
    if !p.at_end() {
        return bad(format!("'{text}' is not a JSON selector"));
    }
    Ok(sel)
}

/// Whether `text` is a selector or field reference a metric filter may use.
pub fn is_reference(text: &str) -> bool {
    if text.starts_with("$.") {
        return parse_selector_text(text).is_ok();
    }
    text.strip_prefix('$')
        .is_some_and(|n| !n.is_empty() && n.chars().all(is_name_char))
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

// ---------------------------------------------------------------------------------------
// Space-delimited

#[derive(Clone, Debug)]
enum Slot {
    Named(String),
    Ellipsis,
}

#[derive(Clone, Debug)]
struct Delimited {
    slots: Vec<Slot>,
    /// The conditions written after fields, all of which must hold.
    conds: Vec<Expr<String>>,
}

impl Delimited {
    fn extract(&self, message: &str) -> Option<Vec<(String, String)>> {
        let fields = split_fields(message);
        let mut bound = Vec::new();
        self.bind(0, &fields, &mut bound)
    }

    /// Binds slots from `slot` on to `fields`, backtracking over what each `...` takes,
    /// until every condition holds.
    fn bind(
        &self,
        slot: usize,
        fields: &[String],
        bound: &mut Vec<(String, String)>,
    ) -> Option<Vec<(String, String)>> {
        let Some(s) = self.slots.get(slot) else {
            if !fields.is_empty() {
                return None;
            }
            let lookup = |name: &String| bound.iter().find(|(n, _)| n == name).map(|(_, v)| v);
            let ok = self.conds.iter().all(|c| {
                c.eval(&mut |name, cond| lookup(name).is_some_and(|v| text_holds(v, cond)))
            });
            return ok.then(|| bound.clone());
        };
        match s {
            Slot::Named(name) => {
                let (first, rest) = fields.split_first()?;
                bound.push((name.clone(), first.clone()));
                let out = self.bind(slot + 1, rest, bound);
                bound.pop();
                out
            }
            Slot::Ellipsis => {
                // The fields the later named slots need at least.
                let needed = self.slots[slot + 1..]
                    .iter()
                    .filter(|s| matches!(s, Slot::Named(_)))
                    .count();
                let spare = fields.len().checked_sub(needed)?;
                (0..=spare).find_map(|take| self.bind(slot + 1, &fields[take..], bound))
            }
        }
    }
}

/// Splits a message into space-delimited fields: runs of non-blank characters, where
/// `"…"` and `[…]` make one field (their delimiters dropped).
fn split_fields(message: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = message.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(c) = chars.next() else { break };
        let mut field = String::new();
        match c {
            '"' => {
                for c in chars.by_ref() {
                    if c == '"' {
                        break;
                    }
                    field.push(c);
                }
            }
            '[' => {
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                    field.push(c);
                }
            }
            c => {
                field.push(c);
                while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                    field.push(c);
                }
            }
        }
        out.push(field);
    }
    out
}

// ---------------------------------------------------------------------------------------
// The parser

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    regexes: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            pos: 0,
            regexes: 0,
        }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn eat(&mut self, s: &str) -> bool {
        self.skip_ws();
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    /// Eats a keyword (`IS`, `NOT`, …) only when a word boundary follows it.
    fn eat_word(&mut self, w: &str) -> bool {
        self.skip_ws();
        let rest = self.rest();
        if rest.starts_with(w) && !rest[w.len()..].starts_with(is_name_char) {
            self.pos += w.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), PatternError> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.bump();
            Ok(())
        } else {
            self.unexpected(&format!("'{c}'"))
        }
    }

    fn unexpected<T>(&self, wanted: &str) -> Result<T, PatternError> {
        match self.peek() {
            Some(c) => bad(format!(
                "expected {wanted} at position {} but found '{c}'",
                self.pos
            )),
            None => bad(format!("expected {wanted} but the pattern ended")),
        }
    }

    // --- terms

    fn terms(&mut self) -> Result<Terms, PatternError> {
        let mut out = Terms::default();
        loop {
            self.skip_ws();
            let Some(first) = self.peek() else { break };
            let list = match first {
                '?' => {
                    self.bump();
                    &mut out.any
                }
                '-' => {
                    self.bump();
                    &mut out.none
                }
                _ => &mut out.all,
            };
            let term = match self.peek() {
                Some('"') => Term::Text(self.quoted()?),
                Some('%') => Term::Regex(self.regex()?),
                _ => {
                    let start = self.pos;
                    while self.peek().is_some_and(|c| !c.is_whitespace()) {
                        self.bump();
                    }
                    Term::Text(self.text[start..self.pos].to_owned())
                }
            };
            if matches!(&term, Term::Text(t) if t.is_empty()) {
                return bad(format!("'{first}' must be followed by a term"));
            }
            list.push(term);
        }
        Ok(out)
    }

    /// A `"…"` string (the opening quote next), with `\` escaping the next character.
    fn quoted(&mut self) -> Result<String, PatternError> {
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                Some('\\') => {
                    if let Some(c) = self.bump() {
                        out.push(c);
                    }
                }
                Some('"') => return Ok(out),
                Some(c) => out.push(c),
                None => return bad("a quoted phrase is missing its closing quote"),
            }
        }
    }

    /// A `%…%` regular expression (the opening `%` next).
    fn regex(&mut self) -> Result<Regex, PatternError> {
        self.bump();
        let start = self.pos;
        loop {
            match self.bump() {
                Some('\\') => {
                    self.bump();
                }
                Some('%') => break,
                Some(_) => {}
                None => return bad("a regular expression is missing its closing '%'"),
            }
        }
        let body = &self.text[start..self.pos - 1];
        if body.is_empty() {
            return bad("a regular expression between '%' signs is empty");
        }
        self.regexes += 1;
        if self.regexes > MAX_REGEXES {
            return bad(format!(
                "a pattern may use at most {MAX_REGEXES} regular expressions"
            ));
        }
        regex::RegexBuilder::new(body)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .or_else(|e| bad(format!("the regular expression %{body}% is invalid: {e}")))
    }

    // --- conditions

    /// `a || b`, `a && b`, `( … )` over conditions whose subject `subject` parses.
    fn expr<T>(
        &mut self,
        depth: usize,
        subject: &mut dyn FnMut(&mut Self) -> Result<T, PatternError>,
    ) -> Result<Expr<T>, PatternError> {
        if depth > MAX_DEPTH {
            return bad("the pattern nests too deeply");
        }
        let mut ors = vec![self.and(depth, subject)?];
        while self.eat("||") {
            ors.push(self.and(depth, subject)?);
        }
        Ok(if ors.len() == 1 {
            ors.remove(0)
        } else {
            Expr::Or(ors)
        })
    }

    fn and<T>(
        &mut self,
        depth: usize,
        subject: &mut dyn FnMut(&mut Self) -> Result<T, PatternError>,
    ) -> Result<Expr<T>, PatternError> {
        let mut ands = vec![self.unary(depth, subject)?];
        while self.eat("&&") {
            ands.push(self.unary(depth, subject)?);
        }
        Ok(if ands.len() == 1 {
            ands.remove(0)
        } else {
            Expr::And(ands)
        })
    }

    fn unary<T>(
        &mut self,
        depth: usize,
        subject: &mut dyn FnMut(&mut Self) -> Result<T, PatternError>,
    ) -> Result<Expr<T>, PatternError> {
        if self.eat("(") {
            let e = self.expr(depth + 1, subject)?;
            self.expect(')')?;
            return Ok(e);
        }
        self.skip_ws();
        let t = subject(self)?;
        Ok(Expr::Cond(t, self.cond()?))
    }

    fn cond(&mut self) -> Result<Cond, PatternError> {
        if self.eat_word("IS") {
            return if self.eat_word("TRUE") {
                Ok(Cond::IsTrue)
            } else if self.eat_word("FALSE") {
                Ok(Cond::IsFalse)
            } else if self.eat_word("NULL") {
                Ok(Cond::IsNull)
            } else {
                self.unexpected("TRUE, FALSE or NULL after IS")
            };
        }
        if self.eat_word("NOT") {
            return if self.eat_word("EXISTS") {
                Ok(Cond::NotExists)
            } else {
                self.unexpected("EXISTS after NOT")
            };
        }
        let op = if self.eat("!=") {
            Op::Ne
        } else if self.eat("<=") {
            Op::Le
        } else if self.eat(">=") {
            Op::Ge
        } else if self.eat("=") {
            Op::Eq
        } else if self.eat("<") {
            Op::Lt
        } else if self.eat(">") {
            Op::Gt
        } else {
            return self.unexpected("a comparison (=, !=, <, <=, >, >=, IS, NOT EXISTS)");
        };
        let value = self.value()?;
        if !matches!(op, Op::Eq | Op::Ne) && !matches!(value, Value::Number(_)) {
            return bad(format!(
                "a number must follow '<', '<=', '>' or '>=' (before position {})",
                self.pos
            ));
        }
        Ok(Cond::Compare(op, value))
    }

    fn value(&mut self) -> Result<Value, PatternError> {
        self.skip_ws();
        match self.peek() {
            Some('"') => Ok(Value::Glob(self.quoted()?)),
            Some('%') => Ok(Value::Regex(self.regex()?)),
            _ => {
                let start = self.pos;
                while self.peek().is_some_and(|c| {
                    !c.is_whitespace() && !matches!(c, ')' | '}' | ',' | ']' | '&' | '|')
                }) {
                    self.bump();
                }
                let raw = &self.text[start..self.pos];
                if raw.is_empty() {
                    return self.unexpected("a value");
                }
                Ok(match raw.parse::<f64>() {
                    Ok(n) if n.is_finite() => Value::Number(n),
                    _ => Value::Glob(raw.to_owned()),
                })
            }
        }
    }

    /// `$.a.b[0]`.
    fn selector(&mut self) -> Result<Selector, PatternError> {
        self.skip_ws();
        if !self.rest().starts_with('$') {
            return self.unexpected("a selector such as $.field");
        }
        self.bump();
        let mut steps = Vec::new();
        loop {
            match self.peek() {
                Some('.') => {
                    self.bump();
                    let start = self.pos;
                    while self.peek().is_some_and(is_name_char) {
                        self.bump();
                    }
                    if start == self.pos {
                        return self.unexpected("a field name after '.'");
                    }
                    steps.push(Step::Key(self.text[start..self.pos].to_owned()));
                }
                Some('[') => {
                    self.bump();
                    let start = self.pos;
                    while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                        self.bump();
                    }
                    let index = self.text[start..self.pos].parse::<usize>();
                    let Ok(index) = index else {
                        return self.unexpected("an array index");
                    };
                    if self.peek() != Some(']') {
                        return self.unexpected("']'");
                    }
                    self.bump();
                    steps.push(Step::Index(index));
                }
                _ => break,
            }
            if steps.len() > MAX_DEPTH {
                return bad("a selector has too many steps");
            }
        }
        if steps.is_empty() {
            return self.unexpected("'.' after '$'");
        }
        Ok(Selector(steps))
    }

    // --- space-delimited

    fn delimited(&mut self) -> Result<Delimited, PatternError> {
        self.expect('[')?;
        let mut out = Delimited {
            slots: Vec::new(),
            conds: Vec::new(),
        };
        if self.eat("]") {
            return bad("a space-delimited pattern names no fields");
        }
        loop {
            if self.eat("...") {
                out.slots.push(Slot::Ellipsis);
            } else {
                let name = self.field_name()?;
                self.skip_ws();
                if !matches!(self.peek(), Some(',' | ']')) {
                    // A condition on this field: `status = 4*`, possibly joined by
                    // `&&`/`||` to conditions on other fields.
                    let first = self.cond()?;
                    let mut head = Some(Expr::Cond(name.clone(), first));
                    let expr = self.delimited_tail(&mut head)?;
                    out.conds.push(expr);
                }
                if out
                    .slots
                    .iter()
                    .any(|s| matches!(s, Slot::Named(n) if *n == name))
                {
                    return bad(format!("the field name '{name}' is used twice"));
                }
                out.slots.push(Slot::Named(name));
            }
            if out.slots.len() > MAX_FIELDS {
                return bad(format!("a pattern may name at most {MAX_FIELDS} fields"));
            }
            if self.eat(",") {
                continue;
            }
            self.expect(']')?;
            break;
        }
        // Conditions may refer only to fields the pattern names.
        let names = out.slots.clone();
        for c in &out.conds {
            let mut unknown = None;
            c.visit(&mut |n: &String| {
                if !names.iter().any(|s| matches!(s, Slot::Named(m) if m == n)) {
                    unknown.get_or_insert_with(|| n.clone());
                }
            });
            if let Some(n) = unknown {
                return bad(format!(
                    "the condition names '{n}', which is not a field of the pattern"
                ));
            }
        }
        Ok(out)
    }

    /// After a field's first condition: `&& other = x || …`, with `&&` binding tighter.
    fn delimited_tail(
        &mut self,
        head: &mut Option<Expr<String>>,
    ) -> Result<Expr<String>, PatternError> {
        let mut subject = |p: &mut Self| p.field_name();
        let mut and = vec![head
            .take()
            .ok_or_else(|| PatternError::Invalid("a field condition is missing".into()))?];
        while self.eat("&&") {
            and.push(self.unary(1, &mut subject)?);
        }
        let first = if and.len() == 1 {
            and.remove(0)
        } else {
            Expr::And(and)
        };
        if !self.rest().trim_start().starts_with("||") {
            return Ok(first);
        }
        let mut ors = vec![first];
        while self.eat("||") {
            ors.push(self.and(1, &mut subject)?);
        }
        Ok(Expr::Or(ors))
    }

    fn field_name(&mut self) -> Result<String, PatternError> {
        self.skip_ws();
        let start = self.pos;
        while self.peek().is_some_and(is_name_char) {
            self.bump();
        }
        if start == self.pos {
            return self.unexpected("a field name or '...'");
        }
        Ok(self.text[start..self.pos].to_owned())
    }
}

#[cfg(test)]
mod tests;
