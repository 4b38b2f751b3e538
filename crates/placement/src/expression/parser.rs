//! A hand-written recursive-descent parser over characters. The language is small and
//! context-sensitive (a bare regex like `m5.*` or `(c5|m5)\..*` must be read as one value),
//! so there is no separate tokenizer: each rule reads exactly what it expects at its
//! position, which is also what makes the error messages precise.

use regex::RegexBuilder;

use super::value::{parse_timestamp, Version};
use super::{Comparison, Expression, Node, OrderOp, Subject, Test, Value};
use crate::error::PlacementError;

/// The longest expression ECS accepts.
pub const MAX_EXPRESSION_CHARS: usize = 2000;

/// Compiled regexes are bounded so a short hostile pattern (`a{1000}{1000}`) fails fast
/// instead of eating memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Deepest nesting of `not` and parentheses: far beyond any real expression, and keeps
/// recursion (and so the stack) bounded on hostile input.
const MAX_DEPTH: usize = 64;

/// Parses a cluster query expression.
///
/// Errors name the 1-based character position and what was expected there, e.g.
/// `Invalid expression at character 16: expected an operator after 'attribute:stack'`.
pub fn parse_expression(s: &str) -> Result<Expression, PlacementError> {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() > MAX_EXPRESSION_CHARS {
        return Err(PlacementError::ExpressionTooLong {
            len: chars.len(),
            max: MAX_EXPRESSION_CHARS,
        });
    }
    let mut p = Parser {
        s: &chars,
        pos: 0,
        depth: 0,
    };
    let root = p.or_expr()?;
    p.skip_ws();
    if let Some(c) = p.peek() {
        return Err(p.error(format!(
            "expected 'and', 'or' or the end of the expression but found '{c}'"
        )));
    }
    Ok(Expression {
        source: s.to_owned(),
        root,
    })
}

/// Operators, as parsed, before the subject decides what they may compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Order(OrderOp),
    Exists,
    NotExists,
    In,
    NotIn,
    Matches,
    NotMatches,
}

impl Op {
    const SYMBOLS: [(&'static str, Op); 10] = [
        ("!exists", Op::NotExists),
        ("!in", Op::NotIn),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        (">=", Op::Order(OrderOp::Ge)),
        ("<=", Op::Order(OrderOp::Le)),
        ("=~", Op::Matches),
        ("!~", Op::NotMatches),
        (">", Op::Order(OrderOp::Gt)),
        ("<", Op::Order(OrderOp::Lt)),
    ];

    fn from_word(w: &str) -> Option<Op> {
        Some(match w {
            "equals" => Op::Eq,
            "not_equals" => Op::Ne,
            "greater_than" => Op::Order(OrderOp::Gt),
            "greater_than_equal" => Op::Order(OrderOp::Ge),
            "less_than" => Op::Order(OrderOp::Lt),
            "less_than_equal" => Op::Order(OrderOp::Le),
            "exists" => Op::Exists,
            "not_exists" => Op::NotExists,
            "in" => Op::In,
            "not_in" => Op::NotIn,
            "matches" => Op::Matches,
            "not_matches" => Op::NotMatches,
            _ => return None,
        })
    }

    /// Which operators each subject accepts (reference §5.1).
    fn valid_for(self, subject: &Subject) -> bool {
        match subject {
            Subject::AgentConnected | Subject::Ec2InstanceId => matches!(
                self,
                Op::Eq | Op::Ne | Op::In | Op::NotIn | Op::Matches | Op::NotMatches
            ),
            Subject::AgentVersion | Subject::RegisteredAt | Subject::RunningTasksCount => {
                matches!(self, Op::Eq | Op::Ne | Op::Order(_))
            }
            Subject::TaskGroup | Subject::Attribute(_) => true,
        }
    }
}

fn subject_name(s: &Subject) -> String {
    match s {
        Subject::AgentConnected => "agentConnected".into(),
        Subject::AgentVersion => "agentVersion".into(),
        Subject::Ec2InstanceId => "ec2InstanceId".into(),
        Subject::RegisteredAt => "registeredAt".into(),
        Subject::RunningTasksCount => "runningTasksCount".into(),
        Subject::TaskGroup => "task:group".into(),
        Subject::Attribute(n) => format!("attribute:{n}"),
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn is_attribute_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | '\\')
}

struct Parser<'a> {
    s: &'a [char],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.s.get(self.pos).copied()
    }

    fn at(&self, i: usize) -> Option<char> {
        self.s.get(i).copied()
    }

    fn error(&self, message: String) -> PlacementError {
        self.error_at(self.pos, message)
    }

    fn error_at(&self, pos: usize, message: String) -> PlacementError {
        PlacementError::InvalidExpression {
            position: pos + 1,
            message,
        }
    }

    fn found(&self) -> String {
        match self.peek() {
            Some(c) => format!("found '{c}'"),
            None => "the expression ended".into(),
        }
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn starts_with(&self, lit: &str) -> bool {
        lit.chars()
            .enumerate()
            .all(|(i, c)| self.at(self.pos + i) == Some(c))
    }

    /// The run of word characters at the cursor, without consuming it.
    fn word(&self) -> String {
        self.s[self.pos..]
            .iter()
            .take_while(|c| is_word_char(**c))
            .collect()
    }

    /// Consumes a keyword (`and`, `or`, `not`) only when it is a whole word.
    fn eat_keyword(&mut self, kw: &str) -> bool {
        if self.word() == kw {
            self.pos += kw.chars().count();
            true
        } else {
            false
        }
    }

    fn eat_symbol(&mut self, sym: &str) -> bool {
        if self.starts_with(sym) {
            self.pos += sym.chars().count();
            true
        } else {
            false
        }
    }

    fn or_expr(&mut self) -> Result<Node, PlacementError> {
        let mut items = vec![self.and_expr()?];
        loop {
            self.skip_ws();
            if self.eat_symbol("||") || self.eat_keyword("or") {
                items.push(self.and_expr()?);
            } else {
                break;
            }
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Node::Or(items)
        })
    }

    fn and_expr(&mut self) -> Result<Node, PlacementError> {
        let mut items = vec![self.unary()?];
        loop {
            self.skip_ws();
            if self.eat_symbol("&&") || self.eat_keyword("and") {
                items.push(self.unary()?);
            } else {
                break;
            }
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Node::And(items)
        })
    }

    fn unary(&mut self) -> Result<Node, PlacementError> {
        self.skip_ws();
        if self.depth >= MAX_DEPTH {
            return Err(self.error(format!("expressions can nest at most {MAX_DEPTH} deep")));
        }
        if self.eat_symbol("!") || self.eat_keyword("not") {
            self.depth += 1;
            let inner = self.unary();
            self.depth -= 1;
            return Ok(Node::Not(Box::new(inner?)));
        }
        if self.eat_symbol("(") {
            self.depth += 1;
            let inner = self.or_expr();
            self.depth -= 1;
            let inner = inner?;
            self.skip_ws();
            if !self.eat_symbol(")") {
                return Err(self.error(format!("expected ')' or 'and'/'or' but {}", self.found())));
            }
            return Ok(inner);
        }
        self.comparison().map(Node::Cmp)
    }

    fn subject(&mut self) -> Result<Subject, PlacementError> {
        let start = self.pos;
        let token: String = self.s[self.pos..]
            .iter()
            .take_while(|c| is_attribute_char(**c) || **c == ':')
            .collect();
        let subject = match token.as_str() {
            "agentConnected" => Subject::AgentConnected,
            "agentVersion" => Subject::AgentVersion,
            "ec2InstanceId" => Subject::Ec2InstanceId,
            "registeredAt" => Subject::RegisteredAt,
            "runningTasksCount" => Subject::RunningTasksCount,
            "task:group" => Subject::TaskGroup,
            t => match t.strip_prefix("attribute:") {
                Some(name) if !name.is_empty() && name.chars().all(is_attribute_char) => {
                    Subject::Attribute(name.to_owned())
                }
                Some(_) => {
                    return Err(self.error_at(
                        start + "attribute:".len(),
                        format!("expected an attribute name after 'attribute:' but {}", {
                            let mut q = Parser {
                                s: self.s,
                                pos: start + "attribute:".len(),
                                depth: 0,
                            };
                            q.skip_ws();
                            q.found()
                        }),
                    ))
                }
                None => {
                    let what = if t.is_empty() {
                        self.found()
                    } else {
                        format!("found '{t}'")
                    };
                    return Err(self.error(format!(
                        "expected a subject (agentConnected, agentVersion, ec2InstanceId, registeredAt, runningTasksCount, task:group or attribute:<name>) but {what}"
                    )));
                }
            },
        };
        self.pos += token.chars().count();
        Ok(subject)
    }

    fn operator(&mut self, subject: &Subject) -> Result<Op, PlacementError> {
        self.skip_ws();
        let start = self.pos;
        let expected = || format!("expected an operator after '{}'", subject_name(subject));
        let op = if let Some((sym, op)) = Op::SYMBOLS.iter().find(|(sym, _)| self.starts_with(sym))
        {
            // `!in` and `!exists` are words: `!inx` is not an operator.
            let len = sym.chars().count();
            if sym.ends_with(is_word_char) && self.at(self.pos + len).is_some_and(is_word_char) {
                return Err(self.error(expected()));
            }
            self.pos += len;
            *op
        } else {
            let w = self.word();
            match Op::from_word(&w) {
                Some(op) => {
                    self.pos += w.chars().count();
                    op
                }
                None => return Err(self.error(expected())),
            }
        };
        if !op.valid_for(subject) {
            let text: String = self.s[start..self.pos].iter().collect();
            return Err(self.error_at(
                start,
                format!(
                    "operator '{text}' cannot be used with {}",
                    subject_name(subject)
                ),
            ));
        }
        Ok(op)
    }

    fn comparison(&mut self) -> Result<Comparison, PlacementError> {
        let subject = self.subject()?;
        let op_start = {
            let mut q = Parser {
                s: self.s,
                pos: self.pos,
                depth: 0,
            };
            q.skip_ws();
            q.pos
        };
        let op = self.operator(&subject)?;
        let op_text: String = self.s[op_start..self.pos].iter().collect();
        let (test, negated) = match op {
            Op::Exists => (Test::Exists, false),
            Op::NotExists => (Test::Exists, true),
            Op::In | Op::NotIn => {
                let list = self.list(&op_text)?;
                let values = list
                    .into_iter()
                    .map(|(at, v)| self.typed(&subject, at, v))
                    .collect::<Result<_, _>>()?;
                (Test::In(values), op == Op::NotIn)
            }
            Op::Matches | Op::NotMatches => {
                let (at, v) = self.value(&op_text, false)?;
                let re = RegexBuilder::new(&format!("^(?:{v})$"))
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| {
                        let why = e.to_string();
                        let why = why.lines().last().unwrap_or("").trim().to_owned();
                        self.error_at(at, format!("invalid regular expression '{v}': {why}"))
                    })?;
                (Test::Matches(re), op == Op::NotMatches)
            }
            Op::Eq | Op::Ne => {
                let (at, v) = self.value(&op_text, false)?;
                (Test::Equals(self.typed(&subject, at, v)?), op == Op::Ne)
            }
            Op::Order(o) => {
                let (at, v) = self.value(&op_text, false)?;
                (Test::Order(o, self.typed(&subject, at, v)?), false)
            }
        };
        Ok(Comparison {
            subject,
            test,
            negated,
        })
    }

    /// Converts an operand to the subject's type, or says what it should look like.
    fn typed(&self, subject: &Subject, at: usize, v: String) -> Result<Value, PlacementError> {
        let bad = |what: &str| {
            self.error_at(
                at,
                format!(
                    "expected {what} for {} but found '{v}'",
                    subject_name(subject)
                ),
            )
        };
        Ok(match subject {
            Subject::AgentConnected => match v.as_str() {
                "true" | "false" => Value::Text(v),
                _ => return Err(bad("true or false")),
            },
            Subject::AgentVersion => {
                Value::Version(Version::parse(&v).ok_or_else(|| bad("a version such as 1.14.5"))?)
            }
            Subject::RegisteredAt => Value::Time(
                parse_timestamp(&v)
                    .ok_or_else(|| bad("a date such as 2018-06-18 or 2018-06-18T22:28:28Z"))?,
            ),
            Subject::RunningTasksCount => {
                Value::Count(v.parse().map_err(|_| bad("a whole number"))?)
            }
            Subject::Ec2InstanceId | Subject::TaskGroup | Subject::Attribute(_) => Value::Text(v),
        })
    }

    /// `[a, b, 'c']` after `in` / `not_in`.
    fn list(&mut self, op_text: &str) -> Result<Vec<(usize, String)>, PlacementError> {
        self.skip_ws();
        if !self.eat_symbol("[") {
            return Err(self.error(format!(
                "expected a list such as [a, b] after '{op_text}' but {}",
                self.found()
            )));
        }
        let mut values = Vec::new();
        loop {
            values.push(self.value(if values.is_empty() { "[" } else { "," }, true)?);
            self.skip_ws();
            if self.eat_symbol(",") {
                continue;
            }
            if self.eat_symbol("]") {
                return Ok(values);
            }
            return Err(self.error(format!("expected ',' or ']' but {}", self.found())));
        }
    }

    /// One operand: quoted (no escapes, so regex backslashes survive), or a bare word. A
    /// bare word ends at whitespace, at `&&`/`||`, at a `)` that closes a group the word
    /// did not open, and inside lists at `,` or `]`.
    fn value(&mut self, after: &str, in_list: bool) -> Result<(usize, String), PlacementError> {
        self.skip_ws();
        let start = self.pos;
        if let Some(q @ ('\'' | '"')) = self.peek() {
            let body: String = self.s[self.pos + 1..]
                .iter()
                .take_while(|c| **c != q)
                .collect();
            let end = self.pos + 1 + body.chars().count();
            if self.at(end) != Some(q) {
                return Err(self.error_at(
                    start,
                    format!("unterminated quoted value starting with {q}"),
                ));
            }
            self.pos = end + 1;
            return Ok((start, body));
        }
        let (mut parens, mut brackets) = (0usize, 0usize);
        while let Some(c) = self.peek() {
            let stop = c.is_whitespace()
                || self.starts_with("&&")
                || self.starts_with("||")
                || (c == ')' && parens == 0)
                || (in_list && brackets == 0 && (c == ',' || c == ']'));
            if stop {
                break;
            }
            match c {
                '(' => parens += 1,
                ')' => parens -= 1,
                '[' => brackets += 1,
                ']' => brackets = brackets.saturating_sub(1),
                _ => {}
            }
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.error(format!(
                "expected a value after '{after}' but {}",
                self.found()
            )));
        }
        Ok((start, self.s[start..self.pos].iter().collect()))
    }
}
