//! Metric math for GetMetricData: arithmetic (`+ - * /`, unary minus, parentheses) on
//! query ids, numbers and functions `SUM`, `AVG`, `MIN`, `MAX`, `ABS`, `FILL` (with a
//! number or `REPEAT`) and `METRICS()` / `METRICS("filter")`, with AWS's semantics:
//! series combine point by point on shared timestamps, a scalar applies to every point,
//! `SUM(m1)` of one series is a scalar while `SUM(METRICS())` is a series, and `FILL`
//! completes the series on the request's grid. Any other function is refused by name.

use std::collections::BTreeMap;

/// A time series: timestamp (epoch seconds) → value.
pub type Series = BTreeMap<i64, f64>;

/// What an expression evaluates to.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A number.
    Scalar(f64),
    /// One time series.
    Series(Series),
    /// Several (from `METRICS()`).
    Array(Vec<Series>),
}

/// What the evaluator needs from the request.
pub trait Context {
    /// The series of query `id` (a metric or another expression); `Err` with a message
    /// when there is no such id or it cannot be evaluated.
    fn series(&mut self, id: &str) -> Result<Series, String>;
    /// The series of every MetricStat query whose id contains `filter` (all when empty).
    fn metrics(&mut self, filter: &str) -> Result<Vec<Series>, String>;
    /// Every timestamp of the request's grid (for `FILL`).
    fn grid(&self) -> &[i64];
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Num(f64),
    Str(String),
    Ident(String),
    Op(char),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let s: String = chars[start..i].iter().collect();
            out.push(Token::Num(
                s.parse().map_err(|_| format!("Invalid number {s}"))?,
            ));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
        } else if c == '"' || c == '\'' {
            let end = chars[i + 1..]
                .iter()
                .position(|&d| d == c)
                .ok_or("Unterminated string")?;
            out.push(Token::Str(chars[i + 1..i + 1 + end].iter().collect()));
            i += end + 2;
        } else if "+-*/(),".contains(c) {
            out.push(Token::Op(c));
            i += 1;
        } else {
            return Err(format!("Unexpected character '{c}'"));
        }
    }
    Ok(out)
}

/// A parsed expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A number.
    Num(f64),
    /// A string (only as `METRICS`' argument).
    Str(String),
    /// A query id, or the `REPEAT` keyword of `FILL`.
    Id(String),
    /// `-x`.
    Neg(Box<Expr>),
    /// `a op b`.
    Bin(char, Box<Expr>, Box<Expr>),
    /// `NAME(args)`.
    Call(String, Vec<Expr>),
}

/// The functions served.
const FUNCTIONS: &[&str] = &["SUM", "AVG", "MIN", "MAX", "ABS", "FILL", "METRICS"];

/// Parses an expression (at most 2048 characters, checked by the caller).
pub fn parse(text: &str) -> Result<Expr, String> {
    let tokens = tokenize(text)?;
    let mut p = Parser {
        tokens,
        at: 0,
        depth: 0,
    };
    let e = p.expr()?;
    if p.at != p.tokens.len() {
        return Err("Unexpected input after the end of the expression".into());
    }
    Ok(e)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }
    fn eat(&mut self, op: char) -> bool {
        if self.peek() == Some(&Token::Op(op)) {
            self.at += 1;
            true
        } else {
            false
        }
    }
    fn expr(&mut self) -> Result<Expr, String> {
        // Outside input: nesting is bounded so no expression can exhaust the stack.
        self.depth += 1;
        if self.depth > 64 {
            return Err("The expression is nested too deeply".into());
        }
        let mut left = self.term()?;
        while let Some(Token::Op(op @ ('+' | '-'))) = self.peek() {
            let op = *op;
            self.at += 1;
            left = Expr::Bin(op, Box::new(left), Box::new(self.term()?));
        }
        self.depth -= 1;
        Ok(left)
    }
    fn term(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while let Some(Token::Op(op @ ('*' | '/'))) = self.peek() {
            let op = *op;
            self.at += 1;
            left = Expr::Bin(op, Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }
    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat('-') {
            self.depth += 1;
            if self.depth > 64 {
                return Err("The expression is nested too deeply".into());
            }
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Neg(Box::new(inner)));
        }
        self.primary()
    }
    fn primary(&mut self) -> Result<Expr, String> {
        let token = self
            .peek()
            .cloned()
            .ok_or("Unexpected end of the expression")?;
        self.at += 1;
        match token {
            Token::Num(n) => Ok(Expr::Num(n)),
            Token::Str(s) => Ok(Expr::Str(s)),
            Token::Op('(') => {
                let e = self.expr()?;
                if !self.eat(')') {
                    return Err("Missing ')'".into());
                }
                Ok(e)
            }
            Token::Ident(name) if self.eat('(') => {
                let upper = name.to_ascii_uppercase();
                if !FUNCTIONS.contains(&upper.as_str()) {
                    return Err(format!("Unsupported function {name}"));
                }
                let mut args = Vec::new();
                if !self.eat(')') {
                    loop {
                        args.push(self.expr()?);
                        if self.eat(')') {
                            break;
                        }
                        if !self.eat(',') {
                            return Err(format!("Expected ',' or ')' in the arguments of {name}"));
                        }
                    }
                }
                Ok(Expr::Call(upper, args))
            }
            Token::Ident(name) => Ok(Expr::Id(name)),
            Token::Op(c) => Err(format!("Unexpected '{c}'")),
        }
    }
}

/// The ids an expression refers to (for dependency checks).
pub fn references(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::Id(id) if id != "REPEAT" => out.push(id.clone()),
        Expr::Neg(x) => references(x, out),
        Expr::Bin(_, a, b) => {
            references(a, out);
            references(b, out);
        }
        Expr::Call(_, args) => args.iter().for_each(|a| references(a, out)),
        _ => {}
    }
}

/// Evaluates `e`.
pub fn eval(e: &Expr, cx: &mut dyn Context) -> Result<Value, String> {
    match e {
        Expr::Num(n) => Ok(Value::Scalar(*n)),
        Expr::Str(_) => Err("A string is only allowed as the argument of METRICS".into()),
        Expr::Id(id) => cx.series(id).map(Value::Series),
        Expr::Neg(x) => binary('*', eval(x, cx)?, Value::Scalar(-1.0)),
        Expr::Bin(op, a, b) => {
            let a = eval(a, cx)?;
            binary(*op, a, eval(b, cx)?)
        }
        Expr::Call(name, args) => call(name, args, cx),
    }
}

fn apply(op: char, a: f64, b: f64) -> Option<f64> {
    let r = match op {
        '+' => a + b,
        '-' => a - b,
        '*' => a * b,
        _ => a / b,
    };
    // Division by zero leaves no point, as AWS drops it.
    r.is_finite().then_some(r)
}

fn binary(op: char, a: Value, b: Value) -> Result<Value, String> {
    use Value::{Array, Scalar, Series as S};
    let series_scalar = |s: Series, k: f64, flip: bool| -> Series {
        s.into_iter()
            .filter_map(|(t, v)| {
                let r = if flip {
                    apply(op, k, v)
                } else {
                    apply(op, v, k)
                };
                r.map(|r| (t, r))
            })
            .collect()
    };
    let series_series = |x: &Series, y: &Series| -> Series {
        x.iter()
            .filter_map(|(t, v)| y.get(t).and_then(|w| apply(op, *v, *w)).map(|r| (*t, r)))
            .collect()
    };
    Ok(match (a, b) {
        (Scalar(x), Scalar(y)) => Scalar(apply(op, x, y).unwrap_or(f64::NAN)),
        (S(s), Scalar(k)) => S(series_scalar(s, k, false)),
        (Scalar(k), S(s)) => S(series_scalar(s, k, true)),
        (S(x), S(y)) => S(series_series(&x, &y)),
        (Array(xs), Scalar(k)) => {
            Array(xs.into_iter().map(|s| series_scalar(s, k, false)).collect())
        }
        (Scalar(k), Array(xs)) => {
            Array(xs.into_iter().map(|s| series_scalar(s, k, true)).collect())
        }
        (Array(xs), S(y)) => Array(xs.iter().map(|x| series_series(x, &y)).collect()),
        (S(x), Array(ys)) => Array(ys.iter().map(|y| series_series(&x, y)).collect()),
        (Array(_), Array(_)) => {
            return Err("Arithmetic between two arrays of time series is not supported".into())
        }
    })
}

fn call(name: &str, args: &[Expr], cx: &mut dyn Context) -> Result<Value, String> {
    match (name, args) {
        ("METRICS", []) => cx.metrics("").map(Value::Array),
        ("METRICS", [Expr::Str(f)]) => cx.metrics(f).map(Value::Array),
        ("SUM" | "AVG" | "MIN" | "MAX", [arg]) => Ok(aggregate(name, eval(arg, cx)?)),
        ("ABS", [arg]) => Ok(map_values(eval(arg, cx)?, f64::abs)),
        ("FILL", [arg, Expr::Id(k)]) if k.eq_ignore_ascii_case("REPEAT") => {
            let v = eval(arg, cx)?;
            fill(v, cx.grid(), None)
        }
        ("FILL", [arg, with]) => {
            let v = eval(arg, cx)?;
            match eval(with, cx)? {
                Value::Scalar(k) => fill(v, cx.grid(), Some(k)),
                _ => Err("The second argument of FILL must be a number or REPEAT".into()),
            }
        }
        _ => Err(format!("Wrong number or type of arguments for {name}")),
    }
}

fn reduce(name: &str, values: impl Iterator<Item = f64>) -> Option<f64> {
    let (mut n, mut sum, mut min, mut max) = (0.0, 0.0, f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        n += 1.0;
        sum += v;
        min = min.min(v);
        max = max.max(v);
    }
    (n > 0.0).then(|| match name {
        "SUM" => sum,
        "AVG" => sum / n,
        "MIN" => min,
        _ => max,
    })
}

fn aggregate(name: &str, v: Value) -> Value {
    match v {
        Value::Scalar(k) => Value::Scalar(k),
        Value::Series(s) => Value::Scalar(reduce(name, s.into_values()).unwrap_or(f64::NAN)),
        Value::Array(xs) => {
            let mut by_time: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
            for s in &xs {
                for (t, v) in s {
                    by_time.entry(*t).or_default().push(*v);
                }
            }
            Value::Series(
                by_time
                    .into_iter()
                    .filter_map(|(t, vs)| reduce(name, vs.into_iter()).map(|r| (t, r)))
                    .collect(),
            )
        }
    }
}

fn map_values(v: Value, f: fn(f64) -> f64) -> Value {
    let map = |s: Series| s.into_iter().map(|(t, v)| (t, f(v))).collect();
    match v {
        Value::Scalar(k) => Value::Scalar(f(k)),
        Value::Series(s) => Value::Series(map(s)),
        Value::Array(xs) => Value::Array(xs.into_iter().map(map).collect()),
    }
}

/// Completes `v` on `grid` with `with`, or with the previous value (`None`: REPEAT; the
/// first value fills any leading gap).
fn fill(v: Value, grid: &[i64], with: Option<f64>) -> Result<Value, String> {
    let one = |s: Series| -> Series {
        let mut last = s.values().next().copied();
        grid.iter()
            .filter_map(|t| match s.get(t) {
                Some(v) => {
                    last = Some(*v);
                    Some((*t, *v))
                }
                None => with.or(last).map(|v| (*t, v)),
            })
            .collect()
    };
    match v {
        Value::Series(s) => Ok(Value::Series(one(s))),
        Value::Array(xs) => Ok(Value::Array(xs.into_iter().map(one).collect())),
        Value::Scalar(_) => Err("The first argument of FILL must be a time series".into()),
    }
}
