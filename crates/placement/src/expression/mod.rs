//! The ECS cluster query language, used by `memberOf` placement constraints and by
//! `ListContainerInstances --filter`.
//!
//! ```text
//! expression := and_expr ( ("||" | "or") and_expr )*
//! and_expr   := unary ( ("&&" | "and") unary )*
//! unary      := ("!" | "not") unary | "(" expression ")" | subject operator [argument]
//! ```
//!
//! Precedence is `not` > `and` > `or`. Typed subjects are checked at parse time, so a
//! misuse (`agentConnected > 3`, `runningTasksCount == many`) is a parse error pointing at
//! the offending character rather than a silent mismatch at placement time. Regular
//! expressions are compiled once, at parse time, and always match the whole value
//! (`t2.*` matches `t2.micro`, not `xt2.micro`), as Java's `Pattern.matches` does; the
//! syntax is the `regex` crate's, which covers the Java subset people use in practice
//! (no back-references or look-around).
//!
//! Semantics where ECS documents none:
//! - A negated operator (`!=`, `not_in`, `!~`, `not_exists`) is the negation of its
//!   positive twin, so an instance lacking an attribute satisfies `attribute:stack != prod`.
//!   An attribute registered without a value exists but equals nothing.
//! - `attribute:<name>` with `>`, `>=`, `<`, `<=` compares numerically when both sides are
//!   numbers, otherwise as strings.
//! - `task:group == X` holds when the instance hosts at least one non-stopped task of group
//!   `X`; every other operator holds when at least one group present on the instance
//!   satisfies it; `exists` holds when any group is present, `not_exists` when none is.

mod columns;
mod parser;
pub(crate) mod value;

use std::cmp::Ordering;
use std::fmt;

use regex::Regex;

pub(crate) use columns::Columns;
pub use parser::parse_expression;

use crate::types::Instance;
use value::Version;

/// A parsed cluster query expression, ready to match instances.
#[derive(Clone)]
pub struct Expression {
    source: String,
    root: Node,
}

impl Expression {
    /// The text the expression was parsed from.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the instance satisfies the expression, as the instance stands.
    pub fn matches(&self, instance: &Instance) -> bool {
        self.root.eval(instance, &PlanDelta::NONE)
    }

    /// Whether the instance satisfies the expression once the plan's earlier placements on
    /// it are counted.
    pub(crate) fn matches_with(&self, instance: &Instance, delta: &PlanDelta<'_>) -> bool {
        self.root.eval(instance, delta)
    }

    /// The attribute names the expression reads.
    pub(crate) fn attribute_names<'e>(&'e self, out: &mut Vec<&'e str>) {
        self.root.attribute_names(out);
    }

    /// Whether the result can change while a plan is built: only `runningTasksCount` and
    /// `task:group` read state that placements change.
    pub fn depends_on_plan(&self) -> bool {
        self.root.depends_on_plan()
    }
}

impl fmt::Debug for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Expression").field(&self.source).finish()
    }
}

impl fmt::Display for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Two expressions are equal when they were parsed from the same text (compiled regexes
/// have no equality of their own).
impl PartialEq for Expression {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// Placements the plan has already made on one instance, which the instance's own fields
/// do not show yet.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PlanDelta<'a> {
    /// Tasks added to `runningTasksCount`.
    pub(crate) tasks: u32,
    /// The group those tasks belong to.
    pub(crate) group: &'a str,
}

impl PlanDelta<'_> {
    const NONE: PlanDelta<'static> = PlanDelta {
        tasks: 0,
        group: "",
    };
}

#[derive(Clone, Debug)]
enum Node {
    Or(Vec<Node>),
    And(Vec<Node>),
    Not(Box<Node>),
    Cmp(Comparison),
}

#[derive(Clone, Debug, PartialEq)]
enum Subject {
    AgentConnected,
    AgentVersion,
    Ec2InstanceId,
    RegisteredAt,
    RunningTasksCount,
    TaskGroup,
    Attribute(String),
}

/// A typed operand, converted at parse time for the subject it is compared with.
#[derive(Clone, Debug)]
enum Value {
    Text(String),
    Version(Version),
    Time(f64),
    Count(i64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OrderOp {
    Gt,
    Ge,
    Lt,
    Le,
}

impl OrderOp {
    fn holds(self, o: Ordering) -> bool {
        match self {
            OrderOp::Gt => o == Ordering::Greater,
            OrderOp::Ge => o != Ordering::Less,
            OrderOp::Lt => o == Ordering::Less,
            OrderOp::Le => o != Ordering::Greater,
        }
    }
}

#[derive(Clone, Debug)]
enum Test {
    Exists,
    Equals(Value),
    Order(OrderOp, Value),
    In(Vec<Value>),
    Matches(Regex),
}

#[derive(Clone, Debug)]
struct Comparison {
    subject: Subject,
    test: Test,
    /// `!=`, `not_in`, `!~`, `not_exists`.
    negated: bool,
}

impl Node {
    fn eval(&self, inst: &Instance, delta: &PlanDelta<'_>) -> bool {
        match self {
            Node::Or(items) => items.iter().any(|n| n.eval(inst, delta)),
            Node::And(items) => items.iter().all(|n| n.eval(inst, delta)),
            Node::Not(n) => !n.eval(inst, delta),
            Node::Cmp(c) => c.eval(inst, delta),
        }
    }

    fn attribute_names<'e>(&'e self, out: &mut Vec<&'e str>) {
        match self {
            Node::Or(items) | Node::And(items) => items.iter().for_each(|n| n.attribute_names(out)),
            Node::Not(n) => n.attribute_names(out),
            Node::Cmp(Comparison {
                subject: Subject::Attribute(name),
                ..
            }) => out.push(name),
            Node::Cmp(_) => {}
        }
    }

    fn depends_on_plan(&self) -> bool {
        match self {
            Node::Or(items) | Node::And(items) => items.iter().any(Node::depends_on_plan),
            Node::Not(n) => n.depends_on_plan(),
            Node::Cmp(c) => matches!(c.subject, Subject::RunningTasksCount | Subject::TaskGroup),
        }
    }
}

/// The subject's value on one instance.
enum Actual<'a> {
    Text(Option<&'a str>),
    Version(Option<Version>),
    Time(f64),
    Count(i64),
}

impl Comparison {
    fn eval(&self, inst: &Instance, delta: &PlanDelta<'_>) -> bool {
        if self.subject == Subject::TaskGroup {
            return self.eval_groups(inst, delta);
        }
        let actual = match &self.subject {
            Subject::AgentConnected => Actual::Text(Some(if inst.agent_connected {
                "true"
            } else {
                "false"
            })),
            Subject::AgentVersion => {
                Actual::Version(inst.agent_version.as_deref().and_then(Version::parse))
            }
            Subject::Ec2InstanceId => Actual::Text(Some(&inst.ec2_instance_id)),
            Subject::RegisteredAt => Actual::Time(inst.registered_at),
            Subject::RunningTasksCount => {
                Actual::Count(i64::from(inst.running_tasks_count) + i64::from(delta.tasks))
            }
            Subject::Attribute(name) => {
                return self.eval_attribute(inst.attributes.get(name).map(|v| v.as_deref()))
            }
            Subject::TaskGroup => return false,
        };
        self.negated ^ self.test.holds(&actual)
    }

    /// An attribute comparison given the attribute: `None` when the instance lacks it,
    /// `Some(None)` when it has it without a value.
    fn eval_attribute(&self, value: Option<Option<&str>>) -> bool {
        match value {
            None => self.negated,
            Some(_) if matches!(self.test, Test::Exists) => !self.negated,
            Some(v) => self.negated ^ self.test.holds(&Actual::Text(v)),
        }
    }

    fn eval_groups(&self, inst: &Instance, delta: &PlanDelta<'_>) -> bool {
        let planned = (delta.tasks > 0).then_some(delta.group);
        let mut present = inst
            .groups
            .iter()
            .filter(|(g, n)| **n > 0 && Some(g.as_str()) != planned)
            .map(|(g, _)| g.as_str())
            .chain(planned);
        match &self.test {
            Test::Exists => self.negated ^ present.next().is_some(),
            _ => present.any(|g| self.negated ^ self.test.holds(&Actual::Text(Some(g)))),
        }
    }
}

impl Test {
    fn holds(&self, actual: &Actual<'_>) -> bool {
        match self {
            Test::Exists => true,
            Test::Equals(v) => equal(actual, v),
            Test::Order(op, v) => compare(actual, v).is_some_and(|o| op.holds(o)),
            Test::In(vs) => vs.iter().any(|v| equal(actual, v)),
            Test::Matches(re) => match actual {
                Actual::Text(Some(s)) => re.is_match(s),
                _ => false,
            },
        }
    }
}

/// Equality is exact for text (`1.0` is not `1`) and by value for typed subjects.
fn equal(actual: &Actual<'_>, expected: &Value) -> bool {
    match (actual, expected) {
        (Actual::Text(Some(a)), Value::Text(b)) => a == b,
        _ => compare(actual, expected) == Some(Ordering::Equal),
    }
}

/// Orders the instance's value against an operand; `None` when there is nothing to compare
/// (a missing value, or mismatched types, which the parser prevents).
fn compare(actual: &Actual<'_>, expected: &Value) -> Option<Ordering> {
    match (actual, expected) {
        (Actual::Text(Some(a)), Value::Text(b)) => Some(compare_text(a, b)),
        (Actual::Version(Some(a)), Value::Version(b)) => Some(a.compare(b)),
        (Actual::Time(a), Value::Time(b)) => a.partial_cmp(b),
        (Actual::Count(a), Value::Count(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

/// Attribute values are strings, but `attribute:cores > 4` should mean what it says:
/// numbers compare as numbers.
fn compare_text(a: &str, b: &str) -> Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) if x.is_finite() && y.is_finite() => {
            x.partial_cmp(&y).unwrap_or_else(|| a.cmp(b))
        }
        _ => a.cmp(b),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests;
