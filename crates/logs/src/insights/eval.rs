//! Running a parsed query over events, one event at a time.
//!
//! The commands before the first `stats` or `sort` run on each event as it is pushed and
//! borrow from it (a `filter @message like /x/` allocates nothing). `stats` and `sort`
//! hold rows until [`Execution::finish`], which then runs the rest of the pipeline over
//! what they produced. Memory is bounded by the groups of `stats`, the rows of a `sort`
//! (only its top rows when nothing after it drops rows), `dedup`'s keys and the result
//! rows, never by the events scanned.

use super::ast::{
    AggFunc, Aggregation, ArithOp, Builtin, CmpOp, Command, Expr, Field, Func, Pattern, Query,
};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// The most fields taken from one JSON message (bounds the work of a huge document).
const MAX_JSON_FIELDS: usize = 1000;

/// One event as the query sees it.
#[derive(Clone, Copy, Debug)]
pub struct EventRef<'a> {
    /// `@timestamp`, epoch milliseconds.
    pub timestamp: i64,
    /// `@ingestionTime`, epoch milliseconds.
    pub ingestion_time: i64,
    /// `@message`.
    pub message: &'a str,
    /// `@logStream`.
    pub log_stream: &'a str,
    /// `@log` (`account-id:log-group-name`).
    pub log: &'a str,
    /// The event's ingestion sequence number (makes `@ptr` unique).
    pub seq: u64,
}

/// A value: absent, a number, a time (epoch milliseconds) or a string.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    /// The field is not there.
    Null,
    /// A number.
    Num(f64),
    /// A time; shown as `YYYY-MM-DD hh:mm:ss.mmm` (UTC), compared as a number.
    Time(i64),
    /// A string.
    Str(Cow<'a, str>),
}

impl Value<'_> {
    fn into_owned(self) -> Value<'static> {
        match self {
            Value::Null => Value::Null,
            Value::Num(n) => Value::Num(n),
            Value::Time(t) => Value::Time(t),
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
        }
    }

    fn borrowed(&self) -> Value<'_> {
        match self {
            Value::Str(s) => Value::Str(Cow::Borrowed(s.as_ref())),
            Value::Null => Value::Null,
            Value::Num(n) => Value::Num(*n),
            Value::Time(t) => Value::Time(*t),
        }
    }

    /// The value as a number, if it is one (strings that spell a number are).
    fn as_num(&self) -> Option<f64> {
        match self {
            Value::Null => None,
            Value::Num(n) => Some(*n),
            #[allow(clippy::cast_precision_loss)]
            Value::Time(t) => Some(*t as f64),
            Value::Str(s) => s.trim().parse().ok().filter(|n: &f64| n.is_finite()),
        }
    }

    fn is_true(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Num(n) => *n != 0.0,
            Value::Time(_) => true,
            Value::Str(s) => !s.is_empty(),
        }
    }

    /// The value as a string, as results show it (`None` when absent).
    pub fn render(&self) -> Option<Cow<'_, str>> {
        match self {
            Value::Null => None,
            Value::Num(n) => Some(Cow::Owned(render_num(*n))),
            Value::Time(t) => Some(Cow::Owned(render_time(*t))),
            Value::Str(s) => Some(Cow::Borrowed(s.as_ref())),
        }
    }
}

fn bool_value(b: bool) -> Value<'static> {
    Value::Num(if b { 1.0 } else { 0.0 })
}

/// A number as results show it: whole numbers without a fraction.
fn render_num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        #[allow(clippy::cast_possible_truncation)]
        let whole = n as i64;
        whole.to_string()
    } else {
        n.to_string()
    }
}

/// Epoch milliseconds as `2024-11-26 10:05:00.000` (UTC), as Logs Insights shows times.
pub fn render_time(ms: i64) -> String {
    wire::xml::iso8601(ms)
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_owned()
}

/// One row: the event it came from (absent after `stats`) and the fields added to it.
#[derive(Clone, Debug)]
struct Row<'a> {
    event: Option<EventRef<'a>>,
    fields: Vec<(Arc<str>, Value<'a>)>,
}

impl<'a> Row<'a> {
    fn get(&self, field: &Field) -> Value<'_> {
        if let (Field::Builtin(b), Some(ev)) = (field, &self.event) {
            return match b {
                Builtin::Timestamp => Value::Time(ev.timestamp),
                Builtin::IngestionTime => Value::Time(ev.ingestion_time),
                Builtin::Message => Value::Str(Cow::Borrowed(ev.message)),
                Builtin::LogStream => Value::Str(Cow::Borrowed(ev.log_stream)),
                Builtin::Log => Value::Str(Cow::Borrowed(ev.log)),
            };
        }
        let name = field.name();
        self.fields
            .iter()
            .rev()
            .find(|(n, _)| n.as_ref() == name)
            .map_or(Value::Null, |(_, v)| v.borrowed())
    }

    fn set(&mut self, name: &Arc<str>, value: Value<'a>) {
        match self.fields.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((Arc::clone(name), value)),
        }
    }

    /// The row detached from its event: the built-ins (and `@ptr`) become fields.
    fn into_owned(self) -> Row<'static> {
        let mut fields: Vec<(Arc<str>, Value<'static>)> = Vec::new();
        if let Some(ev) = &self.event {
            for b in Builtin::ALL {
                let v = self.get(&Field::Builtin(b)).into_owned();
                fields.push((Arc::from(b.name()), v));
            }
            fields.push((Arc::from("@ptr"), Value::Str(Cow::Owned(ptr(ev)))));
        }
        fields.extend(self.fields.into_iter().map(|(n, v)| (n, v.into_owned())));
        Row {
            event: None,
            fields,
        }
    }

    fn ptr(&self) -> Option<String> {
        match &self.event {
            Some(ev) => Some(ptr(ev)),
            None => self
                .get(&Field::Named(Arc::from("@ptr")))
                .render()
                .map(Cow::into_owned),
        }
    }
}

/// An opaque pointer to the event (AWS's `@ptr`; GetLogRecord is not served).
fn ptr(ev: &EventRef<'_>) -> String {
    crate::pagination::encode_token(
        "ptr",
        &format!("{}|{}|{}|{}", ev.log, ev.log_stream, ev.timestamp, ev.seq),
    )
}

/// A value made hashable, for `stats … by`, `dedup` and `count_distinct`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Null,
    Num(u64),
    Time(i64),
    Str(Box<str>),
}

impl Key {
    fn of(v: &Value<'_>) -> Self {
        match v {
            Value::Null => Self::Null,
            // 0.0 and -0.0 are one group.
            Value::Num(n) => Self::Num(if *n == 0.0 { 0 } else { n.to_bits() }),
            Value::Time(t) => Self::Time(*t),
            Value::Str(s) => Self::Str(Box::from(s.as_ref())),
        }
    }

    fn value(&self) -> Value<'static> {
        match self {
            Self::Null => Value::Null,
            Self::Num(bits) => Value::Num(f64::from_bits(*bits)),
            Self::Time(t) => Value::Time(*t),
            Self::Str(s) => Value::Str(Cow::Owned(s.to_string())),
        }
    }
}

/// Whether the pipeline wants more input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Keep pushing events.
    More,
    /// Nothing more can change the result: stop scanning.
    Stop,
}

/// One result row: (field, value) pairs in column order.
pub type ResultRow = Vec<(String, String)>;

/// What a query plans once, before the events.
#[derive(Debug)]
struct Plan {
    query: Query,
    /// The columns of the result, or `None` for every field of each row.
    columns: Option<Vec<Arc<str>>>,
    /// Whether a query reads fields a JSON message may hold.
    needs_json: bool,
    /// Whether rows are aggregates (no `@ptr`).
    aggregated: bool,
    /// For each `sort`, how many of its top rows can reach the result (`None`: all).
    sort_caps: Vec<Option<usize>>,
}

/// Per-command state.
#[derive(Debug)]
enum Stage {
    None,
    Limit(usize),
    Dedup(HashSet<Vec<Key>>),
    Stats(Stats),
    Sort(Vec<(Vec<Value<'static>>, Row<'static>)>),
}

#[derive(Debug, Default)]
struct Stats {
    groups: HashMap<Vec<Key>, Vec<Acc>>,
    key: Vec<Key>,
}

/// The running state of one aggregation in one group.
#[derive(Debug)]
enum Acc {
    Count(u64),
    Distinct(HashSet<Key>),
    Sum(f64),
    Avg(f64, u64),
    /// The extreme so far, and whether the values were times.
    Extreme(Option<f64>, bool),
    Pct(Vec<f64>),
}

impl Acc {
    fn new(func: AggFunc) -> Self {
        match func {
            AggFunc::Count => Self::Count(0),
            AggFunc::CountDistinct => Self::Distinct(HashSet::new()),
            AggFunc::Sum => Self::Sum(0.0),
            AggFunc::Avg => Self::Avg(0.0, 0),
            AggFunc::Min | AggFunc::Max => Self::Extreme(None, false),
            AggFunc::Pct(_) => Self::Pct(Vec::new()),
        }
    }

    fn add(&mut self, func: AggFunc, v: Option<Value<'_>>) {
        match (self, v) {
            (Self::Count(n), None) => *n += 1,
            (Self::Count(n), Some(v)) => *n += u64::from(v != Value::Null),
            (Self::Distinct(set), Some(v)) if v != Value::Null => {
                set.insert(Key::of(&v));
            }
            (Self::Sum(s), Some(v)) => *s += v.as_num().unwrap_or(0.0),
            (Self::Avg(s, n), Some(v)) => {
                if let Some(x) = v.as_num() {
                    *s += x;
                    *n += 1;
                }
            }
            (Self::Extreme(best, time), Some(v)) => {
                if let Some(x) = v.as_num() {
                    *time |= matches!(v, Value::Time(_));
                    let better = match best {
                        None => true,
                        Some(b) if func == AggFunc::Min => x < *b,
                        Some(b) => x > *b,
                    };
                    if better {
                        *best = Some(x);
                    }
                }
            }
            (Self::Pct(values), Some(v)) => values.extend(v.as_num()),
            _ => {}
        }
    }

    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    fn result(self, func: AggFunc) -> Value<'static> {
        match self {
            Self::Count(n) => Value::Num(n as f64),
            Self::Distinct(set) => Value::Num(set.len() as f64),
            Self::Sum(s) => Value::Num(s),
            Self::Avg(_, 0) | Self::Extreme(None, _) => Value::Null,
            Self::Avg(s, n) => Value::Num(s / n as f64),
            Self::Extreme(Some(x), true) => Value::Time(x as i64),
            Self::Extreme(Some(x), false) => Value::Num(x),
            Self::Pct(mut values) => {
                let AggFunc::Pct(p) = func else {
                    return Value::Null;
                };
                if values.is_empty() {
                    return Value::Null;
                }
                values.sort_by(f64::total_cmp);
                // Nearest rank: the smallest value with at least p% of values at or below it.
                let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
                let i = rank.clamp(1, values.len()) - 1;
                values.get(i).map_or(Value::Null, |x| Value::Num(*x))
            }
        }
    }
}

/// A query running over a stream of events.
#[derive(Debug)]
pub struct Execution {
    plan: Arc<Plan>,
    stages: Vec<Stage>,
    out: Vec<ResultRow>,
    limit: usize,
    /// Events that got through the per-event commands (to `stats`, `sort` or the result).
    matched: u64,
    reached: bool,
}

impl Execution {
    /// An execution of `query` whose result has at most `limit` rows.
    pub fn new(query: Query, limit: usize) -> Self {
        let plan = plan(query, limit);
        let stages = plan
            .query
            .commands
            .iter()
            .map(|c| match c {
                Command::Limit(_) => Stage::Limit(0),
                Command::Dedup(_) => Stage::Dedup(HashSet::new()),
                Command::Stats { .. } => Stage::Stats(Stats::default()),
                Command::Sort(_) => Stage::Sort(Vec::new()),
                _ => Stage::None,
            })
            .collect();
        Self {
            plan: Arc::new(plan),
            stages,
            out: Vec::new(),
            limit,
            matched: 0,
            reached: false,
        }
    }

    /// How many events got through the per-event commands so far (`recordsMatched`).
    pub fn matched(&self) -> u64 {
        self.matched
    }

    /// Whether the result is the same whatever order the events come in: a `stats` comes
    /// before anything that keeps or drops rows by arrival (`limit`, `dedup`) or lists
    /// them (`sort` ties, plain rows). A scan may then read streams one after another
    /// instead of merging them by time.
    pub fn order_free(&self) -> bool {
        self.plan
            .query
            .commands
            .iter()
            .find_map(|c| match c {
                Command::Stats { .. } => Some(true),
                Command::Sort(_) | Command::Limit(_) | Command::Dedup(_) => Some(false),
                _ => None,
            })
            .unwrap_or(false)
    }

    /// Runs the per-event commands on one event.
    pub fn push(&mut self, event: EventRef<'_>) -> Flow {
        let plan = Arc::clone(&self.plan);
        let mut row = Row {
            event: Some(event),
            fields: Vec::new(),
        };
        if plan.needs_json {
            discover_json(event.message, &mut row.fields);
        }
        self.reached = false;
        let flow = self.run_from(&plan, 0, row);
        self.matched += u64::from(self.reached);
        flow
    }

    /// Runs what `stats` and `sort` held through the rest of the pipeline; the result.
    pub fn finish(mut self) -> Vec<ResultRow> {
        let plan = Arc::clone(&self.plan);
        for i in 0..self.stages.len() {
            let Some(slot) = self.stages.get_mut(i) else {
                break;
            };
            let rows = match std::mem::replace(slot, Stage::None) {
                Stage::Stats(stats) => match plan.query.commands.get(i) {
                    Some(Command::Stats { aggs, by }) => stats_rows(stats, aggs, by),
                    _ => Vec::new(),
                },
                Stage::Sort(mut buffered) => {
                    if let Some(Command::Sort(keys)) = plan.query.commands.get(i) {
                        sort_rows(&mut buffered, keys);
                    }
                    buffered.into_iter().map(|(_, r)| r).collect()
                }
                other => {
                    *slot = other;
                    continue;
                }
            };
            for row in rows {
                if self.run_from(&plan, i + 1, row) == Flow::Stop {
                    break;
                }
            }
        }
        self.out
    }

    fn run_from<'a>(&mut self, plan: &Plan, start: usize, mut row: Row<'a>) -> Flow {
        for (i, command) in plan.query.commands.iter().enumerate().skip(start) {
            let Some(stage) = self.stages.get_mut(i) else {
                break;
            };
            match (command, stage) {
                (Command::Filter(e), _) if !eval(e, &row).is_true() => return Flow::More,
                (Command::Fields(ps), _) => {
                    for p in ps {
                        if matches!(&p.expr, Expr::Field(f) if f.name() == p.name.as_ref()) {
                            continue;
                        }
                        let v = eval(&p.expr, &row).into_owned();
                        row.set(&p.name, v);
                    }
                }
                (
                    Command::Parse {
                        source,
                        pattern,
                        names,
                    },
                    _,
                ) => {
                    let captured: Vec<(usize, String)> = {
                        let v = eval(source, &row);
                        let Some(text) = v.render() else { continue };
                        match pattern.captures(&text) {
                            Some(caps) => caps
                                .iter()
                                .skip(1)
                                .enumerate()
                                .filter_map(|(k, m)| Some((k, m?.as_str().to_owned())))
                                .collect(),
                            None => continue,
                        }
                    };
                    for (k, text) in captured {
                        if let Some(name) = names.get(k) {
                            row.set(name, Value::Str(Cow::Owned(text)));
                        }
                    }
                }
                (Command::Dedup(fields), Stage::Dedup(seen)) => {
                    let key: Vec<Key> = fields.iter().map(|f| Key::of(&row.get(f))).collect();
                    if !seen.insert(key) {
                        return Flow::More;
                    }
                }
                (Command::Limit(n), Stage::Limit(count)) => {
                    if *count >= *n {
                        return Flow::Stop;
                    }
                    *count += 1;
                }
                (Command::Stats { aggs, by }, Stage::Stats(stats)) => {
                    self.reached = true;
                    stats.key.clear();
                    for p in by {
                        stats.key.push(Key::of(&eval(&p.expr, &row)));
                    }
                    let accs = match stats.groups.get_mut(stats.key.as_slice()) {
                        Some(accs) => accs,
                        None => stats
                            .groups
                            .entry(stats.key.clone())
                            .or_insert_with(|| aggs.iter().map(|a| Acc::new(a.func)).collect()),
                    };
                    for (acc, a) in accs.iter_mut().zip(aggs) {
                        acc.add(a.func, a.arg.as_ref().map(|e| eval(e, &row)));
                    }
                    return Flow::More;
                }
                (Command::Sort(keys), Stage::Sort(buffered)) => {
                    self.reached = true;
                    let sort_key = keys
                        .iter()
                        .map(|k| eval(&k.expr, &row).into_owned())
                        .collect();
                    buffered.push((sort_key, row.into_owned()));
                    if let Some(Some(cap)) = plan.sort_caps.get(i) {
                        // Keep only the rows that can still reach the result.
                        if buffered.len() >= cap.saturating_mul(2).max(1024) {
                            sort_rows(buffered, keys);
                            buffered.truncate(*cap);
                        }
                    }
                    return Flow::More;
                }
                _ => {}
            }
        }
        self.reached = true;
        if self.out.len() >= self.limit {
            return Flow::Stop;
        }
        self.out.push(render_row(plan, &row));
        if self.out.len() >= self.limit {
            Flow::Stop
        } else {
            Flow::More
        }
    }
}

fn render_row(plan: &Plan, row: &Row<'_>) -> ResultRow {
    let mut out: ResultRow = Vec::new();
    let mut put = |name: &str, v: Value<'_>| {
        if let Some(text) = v.render() {
            out.push((name.to_owned(), text.into_owned()));
        }
    };
    match &plan.columns {
        Some(columns) => {
            for c in columns {
                put(c, row.get(&Field::from_name(c)));
            }
        }
        None => {
            if row.event.is_some() {
                for b in [
                    Builtin::Timestamp,
                    Builtin::Message,
                    Builtin::LogStream,
                    Builtin::Log,
                ] {
                    put(b.name(), row.get(&Field::Builtin(b)));
                }
            }
            for (i, (name, v)) in row.fields.iter().enumerate() {
                let later = row.fields.iter().skip(i + 1).any(|(n, _)| n == name);
                if !later && name.as_ref() != "@ptr" {
                    put(name, v.borrowed());
                }
            }
        }
    }
    if !plan.aggregated {
        if let Some(p) = row.ptr() {
            out.push(("@ptr".to_owned(), p));
        }
    }
    out
}

fn stats_rows(
    stats: Stats,
    aggs: &[Aggregation],
    by: &[super::ast::Projection],
) -> Vec<Row<'static>> {
    let mut groups: Vec<(Vec<Key>, Vec<Acc>)> = stats.groups.into_iter().collect();
    groups.sort_by(|(a, _), (b, _)| {
        a.iter()
            .zip(b)
            .map(|(x, y)| compare(&x.value(), &y.value()))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    });
    groups
        .into_iter()
        .map(|(key, accs)| {
            let mut fields: Vec<(Arc<str>, Value<'static>)> = by
                .iter()
                .zip(&key)
                .map(|(p, k)| (Arc::clone(&p.name), k.value()))
                .collect();
            for (acc, a) in accs.into_iter().zip(aggs) {
                fields.push((Arc::clone(&a.name), acc.result(a.func)));
            }
            Row {
                event: None,
                fields,
            }
        })
        .collect()
}

fn sort_rows(rows: &mut [(Vec<Value<'static>>, Row<'static>)], keys: &[super::ast::SortKey]) {
    rows.sort_by(|(a, _), (b, _)| {
        for ((x, y), k) in a.iter().zip(b).zip(keys) {
            let o = compare(x, y);
            if o.is_ne() {
                return if k.desc { o.reverse() } else { o };
            }
        }
        Ordering::Equal
    });
}

/// The order `sort` puts values in (ascending): absent values first, then strings in a
/// natural order (runs of digits compared as numbers), then numbers — AWS documents
/// that non-number values come before number values.
fn compare(a: &Value<'_>, b: &Value<'_>) -> Ordering {
    let rank = |v: &Value<'_>| match v {
        Value::Null => 0,
        v if v.as_num().is_some() => 2,
        _ => 1,
    };
    match rank(a).cmp(&rank(b)) {
        Ordering::Equal => {}
        o => return o,
    }
    match (a.as_num(), b.as_num()) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        _ => match (a.render(), b.render()) {
            (Some(x), Some(y)) => natural(&x, &y),
            _ => Ordering::Equal,
        },
    }
}

/// Compares strings chunk by chunk: runs of digits by length then value, other
/// characters by their Unicode value.
fn natural(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a, b);
    loop {
        let (cx, cy) = match (x.chars().next(), y.chars().next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(cx), Some(cy)) => (cx, cy),
        };
        if cx.is_ascii_digit() && cy.is_ascii_digit() {
            let dx = x.find(|c: char| !c.is_ascii_digit()).unwrap_or(x.len());
            let dy = y.find(|c: char| !c.is_ascii_digit()).unwrap_or(y.len());
            let (nx, ny) = (&x[..dx], &y[..dy]);
            let o = nx.len().cmp(&ny.len()).then_with(|| nx.cmp(ny));
            if o.is_ne() {
                return o;
            }
            x = &x[dx..];
            y = &y[dy..];
        } else {
            let o = cx.cmp(&cy);
            if o.is_ne() {
                return o;
            }
            x = &x[cx.len_utf8()..];
            y = &y[cy.len_utf8()..];
        }
    }
}

fn eval<'r>(e: &Expr, row: &'r Row<'_>) -> Value<'r> {
    match e {
        Expr::Field(f) => row.get(f),
        Expr::Num(n) => Value::Num(*n),
        Expr::Str(s) => Value::Str(Cow::Owned(s.to_string())),
        Expr::Neg(e) => eval(e, row)
            .as_num()
            .map_or(Value::Null, |n| Value::Num(-n)),
        Expr::Not(e) => bool_value(!eval(e, row).is_true()),
        Expr::And(a, b) => bool_value(eval(a, row).is_true() && eval(b, row).is_true()),
        Expr::Or(a, b) => bool_value(eval(a, row).is_true() || eval(b, row).is_true()),
        Expr::Cmp(op, a, b) => {
            let (x, y) = (eval(a, row), eval(b, row));
            bool_value(compare_op(*op, &x, &y))
        }
        Expr::Arith(op, a, b) => match (eval(a, row).as_num(), eval(b, row).as_num()) {
            (Some(x), Some(y)) => {
                let v = match op {
                    ArithOp::Add => x + y,
                    ArithOp::Sub => x - y,
                    ArithOp::Mul => x * y,
                    ArithOp::Div => x / y,
                    ArithOp::Rem => x % y,
                    ArithOp::Pow => x.powf(y),
                };
                if v.is_finite() {
                    Value::Num(v)
                } else {
                    Value::Null
                }
            }
            _ => Value::Null,
        },
        Expr::Like {
            expr,
            pattern,
            negated,
        } => {
            let v = eval(expr, row);
            let Some(text) = v.render() else {
                return bool_value(false);
            };
            let hit = match pattern {
                Pattern::Regex(re) => re.is_match(&text),
                Pattern::Substring(s) => text.contains(s.as_str()),
            };
            bool_value(hit != *negated)
        }
        Expr::In {
            expr,
            list,
            negated,
        } => {
            let v = eval(expr, row);
            if v == Value::Null {
                return bool_value(false);
            }
            let hit = list
                .iter()
                .any(|item| compare_op(CmpOp::Eq, &v, &eval(item, row)));
            bool_value(hit != *negated)
        }
        Expr::Call(func, args) => call(*func, args, row),
    }
}

/// A comparison; anything compared with an absent value is false.
fn compare_op(op: CmpOp, x: &Value<'_>, y: &Value<'_>) -> bool {
    if *x == Value::Null || *y == Value::Null {
        return false;
    }
    let o = match (x.as_num(), y.as_num()) {
        (Some(a), Some(b)) => a.partial_cmp(&b),
        _ => match (x.render(), y.render()) {
            (Some(a), Some(b)) => Some(a.as_ref().cmp(b.as_ref())),
            _ => None,
        },
    };
    let Some(o) = o else { return false };
    match op {
        CmpOp::Eq => o.is_eq(),
        CmpOp::Ne => o.is_ne(),
        CmpOp::Lt => o.is_lt(),
        CmpOp::Le => o.is_le(),
        CmpOp::Gt => o.is_gt(),
        CmpOp::Ge => o.is_ge(),
    }
}

fn call<'r>(func: Func, args: &[Expr], row: &'r Row<'_>) -> Value<'r> {
    let arg = |i: usize| args.get(i).map_or(Value::Null, |e| eval(e, row));
    let text = |f: fn(&str) -> String| {
        arg(0)
            .render()
            .map_or(Value::Null, |s| Value::Str(Cow::Owned(f(&s))))
    };
    let num = |f: fn(f64) -> f64| arg(0).as_num().map_or(Value::Null, |n| Value::Num(f(n)));
    match func {
        Func::Bin(period) => match row.get(&Field::Builtin(Builtin::Timestamp)) {
            Value::Time(t) => Value::Time(t.div_euclid(period) * period),
            #[allow(clippy::cast_possible_truncation)]
            v => v.as_num().map_or(Value::Null, |n| {
                let t = n as i64;
                Value::Time(t.div_euclid(period) * period)
            }),
        },
        Func::IsPresent => bool_value(arg(0) != Value::Null),
        Func::IsEmpty => bool_value(arg(0).render().is_none_or(|s| s.is_empty())),
        Func::IsBlank => bool_value(arg(0).render().is_none_or(|s| s.trim().is_empty())),
        #[allow(clippy::cast_precision_loss)]
        Func::Strlen => arg(0)
            .render()
            .map_or(Value::Null, |s| Value::Num(s.chars().count() as f64)),
        Func::ToLower => text(str::to_lowercase),
        Func::ToUpper => text(str::to_uppercase),
        Func::Trim => text(|s| s.trim().to_owned()),
        Func::Abs => num(f64::abs),
        Func::Ceil => num(f64::ceil),
        Func::Floor => num(f64::floor),
        Func::Concat => {
            let mut out = String::new();
            for e in args {
                if let Some(s) = eval(e, row).render() {
                    out.push_str(&s);
                }
            }
            Value::Str(Cow::Owned(out))
        }
        Func::Coalesce => args
            .iter()
            .map(|e| eval(e, row))
            .find(|v| *v != Value::Null)
            .unwrap_or(Value::Null),
    }
}

/// Adds the fields of a JSON object message, nested keys joined with `.` and array
/// elements numbered (`a.b`, `list.0`), as Logs Insights discovers them.
fn discover_json(message: &str, fields: &mut Vec<(Arc<str>, Value<'_>)>) {
    if !message.trim_start().starts_with('{') {
        return;
    }
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(message)
    else {
        return;
    };
    let mut stack: Vec<(String, serde_json::Value)> = map.into_iter().rev().collect();
    while let Some((name, v)) = stack.pop() {
        if fields.len() >= MAX_JSON_FIELDS {
            return;
        }
        let value = match v {
            serde_json::Value::Null => continue,
            serde_json::Value::Bool(b) => Value::Str(Cow::Owned(b.to_string())),
            serde_json::Value::Number(n) => n.as_f64().map_or(Value::Null, Value::Num),
            serde_json::Value::String(s) => Value::Str(Cow::Owned(s)),
            serde_json::Value::Array(items) => {
                for (i, item) in items.into_iter().enumerate().rev() {
                    stack.push((format!("{name}.{i}"), item));
                }
                continue;
            }
            serde_json::Value::Object(map) => {
                for (k, item) in map.into_iter().rev() {
                    stack.push((format!("{name}.{k}"), item));
                }
                continue;
            }
        };
        fields.push((Arc::from(name), value));
    }
}

/// The fields of one message a query would see (for GetLogGroupFields).
pub fn message_fields(message: &str) -> Vec<String> {
    let mut fields = Vec::new();
    discover_json(message, &mut fields);
    fields.into_iter().map(|(n, _)| n.to_string()).collect()
}

fn plan(query: Query, limit: usize) -> Plan {
    let mut columns: Option<Vec<Arc<str>>> = None;
    let mut displayed = false;
    let mut aggregated = false;
    let mut produced: HashSet<Arc<str>> = HashSet::new();
    let mut read: Vec<Field> = Vec::new();
    let mut note = |f: &Field| read.push(f.clone());
    for c in &query.commands {
        match c {
            Command::Fields(ps) => {
                for p in ps {
                    p.expr.for_each_field(&mut note);
                    if !matches!(&p.expr, Expr::Field(_)) {
                        produced.insert(Arc::clone(&p.name));
                    }
                }
                if !displayed {
                    let cols = columns.get_or_insert_with(Vec::new);
                    for p in ps {
                        if !cols.contains(&p.name) {
                            cols.push(Arc::clone(&p.name));
                        }
                    }
                }
            }
            Command::Display(ps) => {
                ps.iter().for_each(|p| p.expr.for_each_field(&mut note));
                displayed = true;
                columns = Some(ps.iter().map(|p| Arc::clone(&p.name)).collect());
            }
            Command::Filter(e) => e.for_each_field(&mut note),
            Command::Parse { source, names, .. } => {
                source.for_each_field(&mut note);
                produced.extend(names.iter().cloned());
            }
            Command::Stats { aggs, by } => {
                aggregated = true;
                displayed = false;
                for a in aggs {
                    if let Some(e) = &a.arg {
                        e.for_each_field(&mut note);
                    }
                    produced.insert(Arc::clone(&a.name));
                }
                for p in by {
                    p.expr.for_each_field(&mut note);
                    produced.insert(Arc::clone(&p.name));
                }
                columns = Some(
                    by.iter()
                        .map(|p| Arc::clone(&p.name))
                        .chain(aggs.iter().map(|a| Arc::clone(&a.name)))
                        .collect(),
                );
            }
            Command::Sort(keys) => keys.iter().for_each(|k| k.expr.for_each_field(&mut note)),
            Command::Dedup(fs) => fs.iter().for_each(&mut note),
            Command::Limit(_) => {}
        }
    }
    let needs_json = columns.is_none()
        || read
            .iter()
            .chain(
                columns
                    .iter()
                    .flatten()
                    .map(|c| Field::from_name(c))
                    .collect::<Vec<_>>()
                    .iter(),
            )
            .any(|f| matches!(f, Field::Named(n) if !produced.contains(n) && n.as_ref() != "@ptr"));
    // A sort feeds at most the smallest later `limit` (or the result's limit) rows to the
    // result when nothing after it drops or merges rows.
    let sort_caps = query
        .commands
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if !matches!(c, Command::Sort(_)) {
                return None;
            }
            let mut cap = limit;
            for later in query.commands.iter().skip(i + 1) {
                match later {
                    Command::Limit(n) => cap = cap.min(*n),
                    Command::Fields(_) | Command::Display(_) | Command::Sort(_) => {}
                    _ => return None,
                }
            }
            Some(cap)
        })
        .collect();
    Plan {
        query,
        columns,
        needs_json,
        aggregated,
        sort_caps,
    }
}
