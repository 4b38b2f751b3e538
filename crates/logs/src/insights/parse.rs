//! Lexing and parsing of Logs Insights queries, keeping source positions so that a syntax
//! error names where it is, as AWS's MalformedQueryException does (`queryCompileError`
//! with character offsets, and a message naming the line and position).
//!
//! `/` is both division and the start of a regex literal; the parser decides: where it
//! expects a value (or a `like`/`parse` pattern) a `/` starts a regex, elsewhere it
//! divides. The lexer therefore lexes a regex only when the parser asks for one.

use super::ast::{
    AggFunc, Aggregation, ArithOp, CmpOp, Command, Expr, Field, Func, Pattern, Projection, Query,
    SortKey,
};
use regex::Regex;
use std::sync::Arc;

/// The longest query AWS accepts (botocore's `QueryString` max).
pub const MAX_QUERY_CHARS: usize = 10_000;
/// The largest `limit` a query may ask for (StartQuery's `limit` maximum).
pub const MAX_LIMIT: usize = 100_000;

/// How deeply expressions may nest (parentheses, `not`, unary minus): parsing and
/// evaluating recurse, and a 10,000-character query must not exhaust a thread's stack.
pub const MAX_DEPTH: usize = 64;

/// A query that does not compile: where, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    /// Offset of the first character at fault (characters, not bytes).
    pub start: usize,
    /// Offset of the last character at fault.
    pub end: usize,
    /// The message, naming the line and position (1-based) as AWS does.
    pub message: String,
}

impl QueryError {
    /// An error about the source bytes `start..end` of `src`.
    fn at(src: &str, start: usize, end: usize, what: &str) -> Self {
        let start = start.min(src.len());
        let end = end.clamp(start, src.len());
        let before = src.get(..start).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        let start_char = before.chars().count();
        let end_char = src
            .get(..end)
            .map_or(start_char, |s| s.chars().count())
            .saturating_sub(1)
            .max(start_char);
        Self {
            start: start_char,
            end: end_char,
            message: format!("{what} at line {line} and position {column}"),
        }
    }
}

/// A token.
#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Num(f64),
    /// A time period such as `5m`, in milliseconds.
    Period(i64),
    Str(String),
    Pipe,
    Comma,
    LParen,
    RParen,
    LBrack,
    RBrack,
    Op(&'static str),
    Eof,
}

/// A token and the bytes it spans.
#[derive(Clone, Debug)]
struct Spanned {
    tok: Tok,
    start: usize,
    end: usize,
}

const OPS: [&str; 14] = [
    "==", "!=", "<=", ">=", "=~", "=", "<", ">", "+", "-", "*", "/", "%", "^",
];

struct Lexer<'s> {
    src: &'s str,
    pos: usize,
}

impl<'s> Lexer<'s> {
    fn rest(&self) -> &'s str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn skip_blank(&mut self) {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            if trimmed.starts_with('#') {
                // A comment runs to the end of the line.
                self.pos += trimmed.find('\n').unwrap_or(trimmed.len());
            } else {
                return;
            }
        }
    }

    fn error(&self, start: usize, end: usize, what: &str) -> QueryError {
        QueryError::at(self.src, start, end, what)
    }

    fn next(&mut self) -> Result<Spanned, QueryError> {
        self.skip_blank();
        let start = self.pos;
        let rest = self.rest();
        let Some(c) = rest.chars().next() else {
            return Ok(Spanned {
                tok: Tok::Eof,
                start,
                end: start,
            });
        };
        let single = |tok| (tok, c.len_utf8());
        let (tok, len) = match c {
            '|' => single(Tok::Pipe),
            ',' => single(Tok::Comma),
            '(' => single(Tok::LParen),
            ')' => single(Tok::RParen),
            '[' => single(Tok::LBrack),
            ']' => single(Tok::RBrack),
            '"' | '\'' => self.string(c)?,
            '`' => {
                let body = rest.get(1..).unwrap_or("");
                let Some(close) = body.find('`') else {
                    return Err(self.error(
                        start,
                        self.src.len(),
                        "unterminated quoted field name",
                    ));
                };
                (
                    Tok::Ident(body.get(..close).unwrap_or("").to_owned()),
                    close + 2,
                )
            }
            c if c.is_ascii_digit() => self.number()?,
            c if c.is_alphabetic() || c == '_' || c == '@' || c == '$' => {
                let len = rest
                    .find(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '@' | '$' | '.')))
                    .unwrap_or(rest.len());
                (Tok::Ident(rest.get(..len).unwrap_or("").to_owned()), len)
            }
            _ => match OPS.iter().find(|op| rest.starts_with(**op)) {
                Some(op) => (Tok::Op(op), op.len()),
                None => {
                    return Err(self.error(
                        start,
                        start + c.len_utf8(),
                        &format!("unexpected symbol found {c}"),
                    ))
                }
            },
        };
        self.pos += len;
        Ok(Spanned {
            tok,
            start,
            end: self.pos,
        })
    }

    /// A quoted string opened by `quote`; `\` escapes the next character.
    fn string(&self, quote: char) -> Result<(Tok, usize), QueryError> {
        let rest = self.rest();
        let mut out = String::new();
        let mut chars = rest.char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, e)) => out.push(e),
                    None => break,
                },
                c if c == quote => return Ok((Tok::Str(out), i + 1)),
                c => out.push(c),
            }
        }
        Err(self.error(self.pos, self.src.len(), "unterminated string"))
    }

    /// A number, or a time period when a unit follows the digits (`5m`, `30s`).
    fn number(&self) -> Result<(Tok, usize), QueryError> {
        let rest = self.rest();
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let text = rest.get(..digits).unwrap_or("");
        let unit_len = rest
            .get(digits..)
            .unwrap_or("")
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len() - digits);
        let bad = |what: &str| Err(self.error(self.pos, self.pos + digits + unit_len, what));
        let Ok(value) = text.parse::<f64>() else {
            return bad(&format!("unexpected symbol found {text}"));
        };
        if unit_len == 0 {
            return Ok((Tok::Num(value), digits));
        }
        let unit = rest.get(digits..digits + unit_len).unwrap_or("");
        let ms = match unit {
            "ms" => 1.0,
            "s" | "sec" | "second" | "seconds" => 1000.0,
            "m" | "min" | "minute" | "minutes" => 60_000.0,
            "h" | "hr" | "hour" | "hours" => 3_600_000.0,
            "d" | "day" | "days" => 86_400_000.0,
            "w" | "week" | "weeks" => 604_800_000.0,
            _ => return bad(&format!("unexpected symbol found {text}{unit}")),
        };
        // Whole milliseconds; a period below one is refused where it is used.
        #[allow(clippy::cast_possible_truncation)]
        let period = (value * ms) as i64;
        Ok((Tok::Period(period), digits + unit_len))
    }

    /// A `/regex/` starting at the current position (on the `/`); `\/` is a slash.
    fn regex(&mut self) -> Result<(Regex, usize, usize), QueryError> {
        let start = self.pos;
        let rest = self.rest();
        let mut source = String::new();
        let mut chars = rest.char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, '/')) => source.push('/'),
                    Some((_, e)) => {
                        source.push('\\');
                        source.push(e);
                    }
                    None => break,
                },
                '/' => {
                    self.pos += i + 1;
                    let re = Regex::new(&source).map_err(|e| {
                        self.error(
                            start,
                            self.pos,
                            &format!("invalid regular expression ({e})"),
                        )
                    })?;
                    return Ok((re, start, self.pos));
                }
                c => source.push(c),
            }
        }
        Err(self.error(start, self.src.len(), "unterminated regular expression"))
    }
}

/// Parses a Logs Insights query.
pub fn parse_query(src: &str) -> Result<Query, QueryError> {
    if src.chars().count() > MAX_QUERY_CHARS {
        return Err(QueryError::at(
            src,
            0,
            src.len(),
            &format!("query is longer than {MAX_QUERY_CHARS} characters"),
        ));
    }
    let mut p = Parser {
        src,
        lexer: Lexer { src, pos: 0 },
        peeked: None,
        depth: 0,
    };
    let mut commands = vec![p.command()?];
    loop {
        let t = p.bump()?;
        match t.tok {
            Tok::Eof => break,
            Tok::Pipe => commands.push(p.command()?),
            _ => return Err(p.unexpected(&t)),
        }
    }
    Ok(Query { commands })
}

struct Parser<'s> {
    src: &'s str,
    lexer: Lexer<'s>,
    peeked: Option<Spanned>,
    depth: usize,
}

impl<'s> Parser<'s> {
    fn peek(&mut self) -> Result<&Spanned, QueryError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lexer.next()?);
        }
        // Just filled when it was empty.
        self.peeked
            .as_ref()
            .ok_or_else(|| QueryError::at(self.src, 0, 0, "internal parser error"))
    }

    fn bump(&mut self) -> Result<Spanned, QueryError> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lexer.next(),
        }
    }

    fn unexpected(&self, t: &Spanned) -> QueryError {
        if t.tok == Tok::Eof {
            return QueryError::at(self.src, t.start, t.end, "unexpected end of query");
        }
        let text = self.src.get(t.start..t.end).unwrap_or("");
        QueryError::at(
            self.src,
            t.start,
            t.end,
            &format!("unexpected symbol found {text}"),
        )
    }

    fn error(&self, start: usize, end: usize, what: &str) -> QueryError {
        QueryError::at(self.src, start, end, what)
    }

    /// Whether the next token is the keyword `kw` (case-insensitive); consumes it if so.
    fn keyword(&mut self, kw: &str) -> Result<bool, QueryError> {
        let is = matches!(&self.peek()?.tok, Tok::Ident(w) if w.eq_ignore_ascii_case(kw));
        if is {
            self.bump()?;
        }
        Ok(is)
    }

    fn expect(&mut self, tok: &Tok) -> Result<Spanned, QueryError> {
        let t = self.bump()?;
        if &t.tok == tok {
            Ok(t)
        } else {
            Err(self.unexpected(&t))
        }
    }

    /// The regex starting at the peeked `/`.
    fn regex(&mut self) -> Result<Regex, QueryError> {
        if let Some(t) = self.peeked.take() {
            self.lexer.pos = t.start;
        }
        Ok(self.lexer.regex()?.0)
    }

    fn peek_is_slash(&mut self) -> Result<bool, QueryError> {
        Ok(self.peek()?.tok == Tok::Op("/"))
    }

    fn command(&mut self) -> Result<Command, QueryError> {
        let t = self.bump()?;
        let Tok::Ident(word) = &t.tok else {
            return Err(self.unexpected(&t));
        };
        match word.to_ascii_lowercase().as_str() {
            "fields" => Ok(Command::Fields(self.projections()?)),
            "display" => Ok(Command::Display(self.projections()?)),
            "filter" => Ok(Command::Filter(self.expr()?)),
            "parse" => self.parse_command(),
            "stats" => self.stats(),
            "sort" => {
                let mut keys = Vec::new();
                loop {
                    let expr = self.expr()?;
                    let desc = if self.keyword("desc")? {
                        true
                    } else {
                        // Ascending unless told otherwise.
                        self.keyword("asc")?;
                        false
                    };
                    keys.push(SortKey { expr, desc });
                    if !self.comma()? {
                        return Ok(Command::Sort(keys));
                    }
                }
            }
            "limit" => {
                let t = self.bump()?;
                match t.tok {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    Tok::Num(n) if n.fract() == 0.0 && n >= 1.0 && n <= MAX_LIMIT as f64 => {
                        Ok(Command::Limit(n as usize))
                    }
                    Tok::Num(_) => Err(self.error(
                        t.start,
                        t.end,
                        &format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
                    )),
                    _ => Err(self.unexpected(&t)),
                }
            }
            "dedup" => {
                let mut fields = Vec::new();
                loop {
                    let t = self.bump()?;
                    match t.tok {
                        Tok::Ident(name) => fields.push(Field::from_name(&name)),
                        _ => return Err(self.unexpected(&t)),
                    }
                    if !self.comma()? {
                        return Ok(Command::Dedup(fields));
                    }
                }
            }
            _ => Err(self.unexpected(&t)),
        }
    }

    fn comma(&mut self) -> Result<bool, QueryError> {
        let is = self.peek()?.tok == Tok::Comma;
        if is {
            self.bump()?;
        }
        Ok(is)
    }

    /// `expr [as name], …`; a column without alias is named by its source text.
    fn projections(&mut self) -> Result<Vec<Projection>, QueryError> {
        let mut out = Vec::new();
        loop {
            let start = self.peek()?.start;
            let expr = self.expr()?;
            let end = self.lexer_end();
            let name = self.alias(start, end)?;
            out.push(Projection { expr, name });
            if !self.comma()? {
                return Ok(out);
            }
        }
    }

    /// Where the last consumed token ended: the start of the peeked one, less blanks.
    fn lexer_end(&mut self) -> usize {
        let upto = self.peeked.as_ref().map_or(self.lexer.pos, |t| t.start);
        let text = self.src.get(..upto).unwrap_or("");
        text.trim_end().len()
    }

    fn alias(&mut self, start: usize, end: usize) -> Result<Arc<str>, QueryError> {
        if self.keyword("as")? {
            let t = self.bump()?;
            return match t.tok {
                Tok::Ident(name) => Ok(Arc::from(name)),
                _ => Err(self.unexpected(&t)),
            };
        }
        let text = self.src.get(start..end).unwrap_or("").trim();
        // A plain field keeps its name without the backquotes that may spell it.
        Ok(Arc::from(text.trim_matches('`')))
    }

    fn parse_command(&mut self) -> Result<Command, QueryError> {
        let source = match self.peek()?.tok {
            Tok::Str(_) => Expr::Field(Field::from_name("@message")),
            Tok::Op("/") => Expr::Field(Field::from_name("@message")),
            _ => self.primary()?,
        };
        if self.peek_is_slash()? {
            let start = self.peek()?.start;
            let pattern = self.regex()?;
            let names: Vec<Arc<str>> = pattern.capture_names().flatten().map(Arc::from).collect();
            if names.is_empty() || names.len() + 1 != pattern.captures_len() {
                return Err(self.error(
                    start,
                    self.lexer.pos,
                    "every group of a parse regular expression must be named, as in (?<name>…), and there must be at least one",
                ));
            }
            return Ok(Command::Parse {
                source,
                pattern,
                names,
            });
        }
        let t = self.bump()?;
        let Tok::Str(glob) = &t.tok else {
            return Err(self.unexpected(&t));
        };
        let stars = glob.matches('*').count();
        if stars == 0 {
            return Err(self.error(t.start, t.end, "a parse pattern needs at least one *"));
        }
        let as_at = self.peek()?.clone();
        if !self.keyword("as")? {
            return Err(self.unexpected(&as_at));
        }
        let mut names = Vec::new();
        loop {
            let n = self.bump()?;
            match n.tok {
                Tok::Ident(name) => names.push(Arc::from(name)),
                _ => return Err(self.unexpected(&n)),
            }
            if !self.comma()? {
                break;
            }
        }
        if names.len() != stars {
            let end = self.lexer_end();
            return Err(self.error(
                t.start,
                end,
                &format!(
                    "the parse pattern has {stars} * but {} field names follow as",
                    names.len()
                ),
            ));
        }
        Ok(Command::Parse {
            source,
            pattern: glob_regex(glob).map_err(|e| self.error(t.start, t.end, &e))?,
            names,
        })
    }

    fn stats(&mut self) -> Result<Command, QueryError> {
        let mut aggs = Vec::new();
        loop {
            let t = self.bump()?;
            let Tok::Ident(name) = &t.tok else {
                return Err(self.unexpected(&t));
            };
            self.expect(&Tok::LParen)?;
            let mut arg = None;
            let mut pct = None;
            let func = match name.to_ascii_lowercase().as_str() {
                "count" => {
                    if self.peek()?.tok == Tok::Op("*") {
                        self.bump()?;
                    } else {
                        arg = Some(self.expr()?);
                    }
                    AggFunc::Count
                }
                "count_distinct" => AggFunc::CountDistinct,
                "sum" => AggFunc::Sum,
                "avg" => AggFunc::Avg,
                "min" => AggFunc::Min,
                "max" => AggFunc::Max,
                "pct" | "percentile" => {
                    arg = Some(self.expr()?);
                    self.expect(&Tok::Comma)?;
                    let n = self.bump()?;
                    match n.tok {
                        Tok::Num(v) if (0.0..=100.0).contains(&v) => pct = Some(v),
                        _ => {
                            return Err(self.error(
                                n.start,
                                n.end,
                                "the percentile of pct must be a number from 0 to 100",
                            ))
                        }
                    }
                    AggFunc::Pct(0.0)
                }
                _ => {
                    return Err(self.error(
                        t.start,
                        t.end,
                        &format!("{name} is not an aggregation function"),
                    ))
                }
            };
            let func = match (func, pct) {
                (AggFunc::Pct(_), Some(p)) => AggFunc::Pct(p),
                (f, _) => {
                    if arg.is_none() && f != AggFunc::Count {
                        arg = Some(self.expr()?);
                    }
                    f
                }
            };
            self.expect(&Tok::RParen)?;
            let end = self.lexer_end();
            let name = self.alias(t.start, end)?;
            aggs.push(Aggregation { func, arg, name });
            if !self.comma()? {
                break;
            }
        }
        let by = if self.keyword("by")? {
            self.projections()?
        } else {
            Vec::new()
        };
        Ok(Command::Stats { aggs, by })
    }

    /// Runs `parse` one nesting level deeper, refusing past [`MAX_DEPTH`].
    fn nested<T>(
        &mut self,
        parse: impl FnOnce(&mut Self) -> Result<T, QueryError>,
    ) -> Result<T, QueryError> {
        if self.depth >= MAX_DEPTH {
            let t = self.peek()?.clone();
            return Err(self.error(
                t.start,
                t.end,
                &format!("expressions nest more than {MAX_DEPTH} deep"),
            ));
        }
        self.depth += 1;
        let out = parse(self);
        self.depth -= 1;
        out
    }

    fn expr(&mut self) -> Result<Expr, QueryError> {
        self.nested(Self::or)
    }

    fn or(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.and()?;
        while self.keyword("or")? {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.not()?;
        while self.keyword("and")? {
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, QueryError> {
        if self.keyword("not")? {
            return Ok(Expr::Not(Box::new(self.nested(Self::not)?)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, QueryError> {
        let left = self.additive()?;
        let negated = self.keyword("not")?;
        if self.keyword("like")? {
            let pattern = self.pattern()?;
            return Ok(Expr::Like {
                expr: Box::new(left),
                pattern,
                negated,
            });
        }
        if self.keyword("in")? {
            self.expect(&Tok::LBrack)?;
            let mut list = Vec::new();
            if self.peek()?.tok != Tok::RBrack {
                loop {
                    list.push(self.additive()?);
                    if !self.comma()? {
                        break;
                    }
                }
            }
            self.expect(&Tok::RBrack)?;
            return Ok(Expr::In {
                expr: Box::new(left),
                list,
                negated,
            });
        }
        if negated {
            let t = self.bump()?;
            return Err(self.unexpected(&t));
        }
        let op = match self.peek()?.tok {
            Tok::Op("=" | "==") => CmpOp::Eq,
            Tok::Op("!=") => CmpOp::Ne,
            Tok::Op("<") => CmpOp::Lt,
            Tok::Op("<=") => CmpOp::Le,
            Tok::Op(">") => CmpOp::Gt,
            Tok::Op(">=") => CmpOp::Ge,
            Tok::Op("=~") => {
                self.bump()?;
                if !self.peek_is_slash()? {
                    let t = self.bump()?;
                    return Err(self.unexpected(&t));
                }
                return Ok(Expr::Like {
                    expr: Box::new(left),
                    pattern: Pattern::Regex(self.regex()?),
                    negated: false,
                });
            }
            _ => return Ok(left),
        };
        self.bump()?;
        Ok(Expr::Cmp(op, Box::new(left), Box::new(self.additive()?)))
    }

    fn pattern(&mut self) -> Result<Pattern, QueryError> {
        if self.peek_is_slash()? {
            return Ok(Pattern::Regex(self.regex()?));
        }
        let t = self.bump()?;
        match t.tok {
            Tok::Str(s) => Ok(Pattern::Substring(s)),
            _ => Err(self.unexpected(&t)),
        }
    }

    fn additive(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.multiplicative()?;
        loop {
            let op = match self.peek()?.tok {
                Tok::Op("+") => ArithOp::Add,
                Tok::Op("-") => ArithOp::Sub,
                _ => return Ok(left),
            };
            self.bump()?;
            left = Expr::Arith(op, Box::new(left), Box::new(self.multiplicative()?));
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek()?.tok {
                Tok::Op("*") => ArithOp::Mul,
                Tok::Op("/") => ArithOp::Div,
                Tok::Op("%") => ArithOp::Rem,
                Tok::Op("^") => ArithOp::Pow,
                _ => return Ok(left),
            };
            self.bump()?;
            left = Expr::Arith(op, Box::new(left), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        if self.peek()?.tok == Tok::Op("-") {
            self.bump()?;
            return Ok(Expr::Neg(Box::new(self.nested(Self::unary)?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, QueryError> {
        let t = self.bump()?;
        match t.tok {
            Tok::Num(n) => Ok(Expr::Num(n)),
            Tok::Str(s) => Ok(Expr::Str(Arc::from(s))),
            Tok::LParen => {
                let e = self.expr()?;
                self.expect(&Tok::RParen)?;
                Ok(e)
            }
            Tok::Ident(name) => {
                if self.peek()?.tok != Tok::LParen {
                    return Ok(Expr::Field(Field::from_name(&name)));
                }
                self.bump()?;
                self.call(&name, t.start, t.end)
            }
            _ => Err(self.unexpected(&t)),
        }
    }

    fn call(&mut self, name: &str, start: usize, end: usize) -> Result<Expr, QueryError> {
        let lower = name.to_ascii_lowercase();
        if lower == "bin" {
            let p = self.bump()?;
            let Tok::Period(ms) = p.tok else {
                return Err(self.error(
                    p.start,
                    p.end,
                    "bin needs a time period such as 5m, 1h or 30s",
                ));
            };
            if ms < 1 {
                return Err(self.error(p.start, p.end, "the period of bin must be at least 1ms"));
            }
            self.expect(&Tok::RParen)?;
            return Ok(Expr::Call(Func::Bin(ms), Vec::new()));
        }
        let (func, arity) = match lower.as_str() {
            "ispresent" => (Func::IsPresent, Some(1)),
            "isempty" => (Func::IsEmpty, Some(1)),
            "isblank" => (Func::IsBlank, Some(1)),
            "strlen" => (Func::Strlen, Some(1)),
            "tolower" => (Func::ToLower, Some(1)),
            "toupper" => (Func::ToUpper, Some(1)),
            "trim" => (Func::Trim, Some(1)),
            "abs" => (Func::Abs, Some(1)),
            "ceil" => (Func::Ceil, Some(1)),
            "floor" => (Func::Floor, Some(1)),
            "concat" => (Func::Concat, None),
            "coalesce" => (Func::Coalesce, None),
            _ => {
                return Err(self.error(
                    start,
                    end,
                    &format!("{name} is not a function Stevedore's Logs Insights knows"),
                ))
            }
        };
        let mut args = Vec::new();
        if self.peek()?.tok != Tok::RParen {
            loop {
                args.push(self.expr()?);
                if !self.comma()? {
                    break;
                }
            }
        }
        let close = self.expect(&Tok::RParen)?;
        if arity.is_some_and(|n| n != args.len()) || args.is_empty() {
            return Err(self.error(
                start,
                close.end,
                &format!("wrong number of arguments to {name}"),
            ));
        }
        Ok(Expr::Call(func, args))
    }
}

/// The regex of a `parse` glob: literal text, each `*` a capture group. Groups are lazy
/// so each stops at the literal text after it; a trailing `*` takes the rest.
fn glob_regex(glob: &str) -> Result<Regex, String> {
    let parts: Vec<&str> = glob.split('*').collect();
    let mut source = String::new();
    for (i, part) in parts.iter().enumerate() {
        source.push_str(&regex::escape(part));
        if i + 1 < parts.len() {
            let last = i + 2 == parts.len() && parts.last().is_some_and(|p| p.is_empty());
            source.push_str(if last { "(.*)" } else { "(.*?)" });
        }
    }
    Regex::new(&source).map_err(|e| format!("invalid parse pattern ({e})"))
}
