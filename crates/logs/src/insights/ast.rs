//! The parsed form of a Logs Insights query: commands in pipeline order, with the
//! expressions they evaluate. Field names are resolved once here (built-in or named), so
//! evaluation never compares field names of the built-ins.

use regex::Regex;
use std::sync::Arc;

/// A parsed query: its commands in the order the pipeline runs them.
#[derive(Clone, Debug)]
pub struct Query {
    /// The commands, `|`-separated in the source.
    pub commands: Vec<Command>,
}

/// One command of the pipeline.
#[derive(Clone, Debug)]
pub enum Command {
    /// `fields a, b as c`: computes fields and names the columns of the result.
    Fields(Vec<Projection>),
    /// `display a, b`: names the columns of the result (the last one wins).
    Display(Vec<Projection>),
    /// `filter expr`: keeps the rows where `expr` is true.
    Filter(Expr),
    /// `parse source "glob*" as a` or `parse source /(?<a>…)/`: extracts fields.
    Parse {
        /// What is parsed (`@message` when the query leaves it out).
        source: Expr,
        /// The compiled pattern (a glob becomes a regex with one group per `*`).
        pattern: Regex,
        /// The field each capture group fills, in group order.
        names: Vec<Arc<str>>,
    },
    /// `stats agg(…) [as n], … [by expr [as n], …]`.
    Stats {
        /// The aggregations.
        aggs: Vec<Aggregation>,
        /// The grouping expressions.
        by: Vec<Projection>,
    },
    /// `sort expr [asc|desc], …`.
    Sort(Vec<SortKey>),
    /// `limit n`.
    Limit(usize),
    /// `dedup a, b`: keeps the first row of each combination of values.
    Dedup(Vec<Field>),
}

/// An expression with the name its column gets (its alias, or its source text).
#[derive(Clone, Debug)]
pub struct Projection {
    /// The value.
    pub expr: Expr,
    /// The column name.
    pub name: Arc<str>,
}

/// One sort key.
#[derive(Clone, Debug)]
pub struct SortKey {
    /// What is compared.
    pub expr: Expr,
    /// Descending when true.
    pub desc: bool,
}

/// An aggregation of `stats`.
#[derive(Clone, Debug)]
pub struct Aggregation {
    /// Which function.
    pub func: AggFunc,
    /// Its argument (`None` for `count(*)`).
    pub arg: Option<Expr>,
    /// The column name.
    pub name: Arc<str>,
}

/// The aggregation functions served.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AggFunc {
    /// `count(*)` or `count(f)` (rows where `f` is present).
    Count,
    /// `count_distinct(f)` (exact here).
    CountDistinct,
    /// `sum(f)`.
    Sum,
    /// `avg(f)`.
    Avg,
    /// `min(f)`.
    Min,
    /// `max(f)`.
    Max,
    /// `pct(f, n)`: the n-th percentile, nearest rank.
    Pct(f64),
}

/// A field reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// One of the fields every event has.
    Builtin(Builtin),
    /// A field found in the event's JSON, made by `parse`, or named by `fields … as`.
    Named(Arc<str>),
}

impl Field {
    /// The field named `name`.
    pub fn from_name(name: &str) -> Self {
        match name {
            "@timestamp" => Self::Builtin(Builtin::Timestamp),
            "@message" => Self::Builtin(Builtin::Message),
            "@logStream" => Self::Builtin(Builtin::LogStream),
            "@log" => Self::Builtin(Builtin::Log),
            "@ingestionTime" => Self::Builtin(Builtin::IngestionTime),
            other => Self::Named(Arc::from(other)),
        }
    }

    /// The field's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Builtin(b) => b.name(),
            Self::Named(n) => n,
        }
    }
}

/// The fields Logs gives every event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Builtin {
    /// `@timestamp`: the event's timestamp.
    Timestamp,
    /// `@message`: the raw message.
    Message,
    /// `@logStream`: the stream's name.
    LogStream,
    /// `@log`: `account-id:log-group-name`.
    Log,
    /// `@ingestionTime`: when Logs received it.
    IngestionTime,
}

impl Builtin {
    /// Every built-in, in the order a row without `fields` shows them.
    pub const ALL: [Self; 5] = [
        Self::Timestamp,
        Self::Message,
        Self::LogStream,
        Self::Log,
        Self::IngestionTime,
    ];

    /// The field's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Timestamp => "@timestamp",
            Self::Message => "@message",
            Self::LogStream => "@logStream",
            Self::Log => "@log",
            Self::IngestionTime => "@ingestionTime",
        }
    }
}

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// `=` or `==`.
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
}

/// Arithmetic operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithOp {
    /// `+`.
    Add,
    /// `-`.
    Sub,
    /// `*`.
    Mul,
    /// `/`.
    Div,
    /// `%`.
    Rem,
    /// `^`.
    Pow,
}

/// What `like` matches against.
#[derive(Clone, Debug)]
pub enum Pattern {
    /// `/regex/`: matches anywhere in the value.
    Regex(Regex),
    /// `"text"`: the value contains it.
    Substring(String),
}

/// Scalar functions served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    /// `bin(period)`: `@timestamp` rounded down to the period.
    Bin(i64),
    /// `ispresent(f)`.
    IsPresent,
    /// `isempty(f)`: absent or the empty string.
    IsEmpty,
    /// `isblank(f)`: absent, empty or only white space.
    IsBlank,
    /// `strlen(s)`.
    Strlen,
    /// `tolower(s)`.
    ToLower,
    /// `toupper(s)`.
    ToUpper,
    /// `trim(s)`.
    Trim,
    /// `concat(a, b, …)`.
    Concat,
    /// `abs(n)`.
    Abs,
    /// `ceil(n)`.
    Ceil,
    /// `floor(n)`.
    Floor,
    /// `coalesce(a, b, …)`: the first present value.
    Coalesce,
}

/// An expression.
#[derive(Clone, Debug)]
pub enum Expr {
    /// A field's value.
    Field(Field),
    /// A number literal.
    Num(f64),
    /// A string literal.
    Str(Arc<str>),
    /// `-e`.
    Neg(Box<Expr>),
    /// `not e`.
    Not(Box<Expr>),
    /// `a and b`.
    And(Box<Expr>, Box<Expr>),
    /// `a or b`.
    Or(Box<Expr>, Box<Expr>),
    /// `a op b`.
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    /// `a op b`.
    Arith(ArithOp, Box<Expr>, Box<Expr>),
    /// `e [not] like pattern` (also `e =~ /regex/`).
    Like {
        /// The value matched.
        expr: Box<Expr>,
        /// The pattern.
        pattern: Pattern,
        /// `not like`.
        negated: bool,
    },
    /// `e [not] in [a, b, …]`.
    In {
        /// The value looked up.
        expr: Box<Expr>,
        /// The list.
        list: Vec<Expr>,
        /// `not in`.
        negated: bool,
    },
    /// A scalar function call.
    Call(Func, Vec<Expr>),
}

impl Expr {
    /// Calls `visit` on every field this expression reads.
    pub fn for_each_field(&self, visit: &mut impl FnMut(&Field)) {
        match self {
            Self::Field(f) => visit(f),
            Self::Num(_) | Self::Str(_) => {}
            Self::Neg(e) | Self::Not(e) => e.for_each_field(visit),
            Self::And(a, b) | Self::Or(a, b) | Self::Cmp(_, a, b) | Self::Arith(_, a, b) => {
                a.for_each_field(visit);
                b.for_each_field(visit);
            }
            Self::Like { expr, .. } => expr.for_each_field(visit),
            Self::In { expr, list, .. } => {
                expr.for_each_field(visit);
                list.iter().for_each(|e| e.for_each_field(visit));
            }
            Self::Call(Func::Bin(_), _) => visit(&Field::Builtin(Builtin::Timestamp)),
            Self::Call(_, args) => args.iter().for_each(|e| e.for_each_field(visit)),
        }
    }
}
