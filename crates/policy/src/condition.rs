//! The `Condition` element: operators parsed and their values pre-parsed once, evaluated
//! against a request's context as IAM does.
//!
//! Every operator and every key in a block must hold (AND); the values listed for one key
//! are alternatives (OR), and a negated operator holds when none of them matches. An absent
//! key makes positive operators false and negated ones true; `...IfExists` makes it true;
//! `Null` tests presence. `ForAllValues:` holds when every request value matches (so on an
//! absent or empty set), `ForAnyValue:` when at least one does.

use std::net::IpAddr;

use serde_json::Value;

use crate::context::{Request, Scalar};
use crate::pattern::{ArnPattern, Pattern, Syntax};
use crate::PolicyError;

/// One operator applied to one key, e.g. `StringLike` on `aws:PrincipalArn`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Condition {
    set: SetOp,
    if_exists: bool,
    negated: bool,
    key: Box<str>,
    values: Values,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum SetOp {
    Plain,
    AnyValue,
    AllValues,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn holds<T: PartialOrd>(self, request: T, policy: T) -> bool {
        match self {
            Self::Eq => request == policy,
            Self::Lt => request < policy,
            Self::Le => request <= policy,
            Self::Gt => request > policy,
            Self::Ge => request >= policy,
        }
    }
}

/// The policy's values, parsed for the operator's type (`None`: unparseable, never matches).
#[derive(Debug, Clone, PartialEq)]
enum Values {
    Str(Vec<Pattern>),
    Num(Cmp, Vec<Option<f64>>),
    Date(Cmp, Vec<Option<i64>>),
    Bool(Vec<Option<bool>>),
    Binary(Vec<String>),
    Ip(Vec<Option<Cidr>>),
    Arn(Vec<ArnPattern>),
    Null(bool),
}

/// The operator's base name without qualifiers: its value type and whether it is negated.
fn base_operator(name: &str) -> Option<(Kind, bool)> {
    use Kind::*;
    Some(match name {
        "StringEquals" => (
            Str {
                fold: false,
                like: false,
            },
            false,
        ),
        "StringNotEquals" => (
            Str {
                fold: false,
                like: false,
            },
            true,
        ),
        "StringEqualsIgnoreCase" => (
            Str {
                fold: true,
                like: false,
            },
            false,
        ),
        "StringNotEqualsIgnoreCase" => (
            Str {
                fold: true,
                like: false,
            },
            true,
        ),
        "StringLike" => (
            Str {
                fold: false,
                like: true,
            },
            false,
        ),
        "StringNotLike" => (
            Str {
                fold: false,
                like: true,
            },
            true,
        ),
        "NumericEquals" => (Num(Cmp::Eq), false),
        "NumericNotEquals" => (Num(Cmp::Eq), true),
        "NumericLessThan" => (Num(Cmp::Lt), false),
        "NumericLessThanEquals" => (Num(Cmp::Le), false),
        "NumericGreaterThan" => (Num(Cmp::Gt), false),
        "NumericGreaterThanEquals" => (Num(Cmp::Ge), false),
        "DateEquals" => (Date(Cmp::Eq), false),
        "DateNotEquals" => (Date(Cmp::Eq), true),
        "DateLessThan" => (Date(Cmp::Lt), false),
        "DateLessThanEquals" => (Date(Cmp::Le), false),
        "DateGreaterThan" => (Date(Cmp::Gt), false),
        "DateGreaterThanEquals" => (Date(Cmp::Ge), false),
        "Bool" => (Bool, false),
        "BinaryEquals" => (Binary, false),
        "IpAddress" => (Ip, false),
        "NotIpAddress" => (Ip, true),
        "ArnEquals" | "ArnLike" => (Arn, false),
        "ArnNotEquals" | "ArnNotLike" => (Arn, true),
        "Null" => (Null, false),
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Str { fold: bool, like: bool },
    Num(Cmp),
    Date(Cmp),
    Bool,
    Binary,
    Ip,
    Arn,
    Null,
}

/// Parses a `Condition` block into its (operator, key) pairs.
pub(crate) fn parse_block(block: &Value, variables: bool) -> Result<Vec<Condition>, PolicyError> {
    let ops = block
        .as_object()
        .ok_or_else(|| PolicyError::syntax("Condition is not an object"))?;
    let mut out = Vec::new();
    for (op, keys) in ops {
        let (set, rest) = if let Some(r) = op.strip_prefix("ForAnyValue:") {
            (SetOp::AnyValue, r)
        } else if let Some(r) = op.strip_prefix("ForAllValues:") {
            (SetOp::AllValues, r)
        } else {
            (SetOp::Plain, op.as_str())
        };
        let (if_exists, base) = match rest.strip_suffix("IfExists") {
            Some(b) if b != "Null" => (true, b),
            _ => (false, rest),
        };
        let (kind, negated) = base_operator(base)
            .ok_or_else(|| PolicyError::syntax(format!("unknown condition operator {op}")))?;
        let keys = keys
            .as_object()
            .ok_or_else(|| PolicyError::syntax(format!("{op} is not an object")))?;
        for (key, raw) in keys {
            if !key.contains(':') {
                return Err(PolicyError::MissingVendor);
            }
            let texts = value_texts(raw)?;
            out.push(Condition {
                set,
                if_exists,
                negated,
                key: key.to_ascii_lowercase().into(),
                values: parse_values(kind, &texts, variables)?,
            });
        }
    }
    Ok(out)
}

/// A condition value: a string, number or boolean, or an array of them, as text.
fn value_texts(raw: &Value) -> Result<Vec<String>, PolicyError> {
    let one = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(PolicyError::syntax("condition value is not a scalar")),
    };
    match raw {
        Value::Array(items) => items.iter().map(one).collect(),
        v => Ok(vec![one(v)?]),
    }
}

fn parse_values(kind: Kind, texts: &[String], variables: bool) -> Result<Values, PolicyError> {
    Ok(match kind {
        Kind::Str { fold, like } => {
            let syntax = Syntax {
                wildcards: like,
                variables,
                fold,
            };
            Values::Str(texts.iter().map(|t| Pattern::new(t, syntax)).collect())
        }
        Kind::Num(c) => Values::Num(c, texts.iter().map(|t| t.trim().parse().ok()).collect()),
        Kind::Date(c) => Values::Date(
            c,
            texts
                .iter()
                .map(|t| crate::time::parse_date_millis(t))
                .collect(),
        ),
        Kind::Bool => Values::Bool(
            texts
                .iter()
                .map(|t| match t.to_ascii_lowercase().as_str() {
                    "true" => Some(true),
                    "false" => Some(false),
                    _ => None,
                })
                .collect(),
        ),
        Kind::Binary => Values::Binary(texts.to_vec()),
        Kind::Ip => Values::Ip(texts.iter().map(|t| Cidr::parse(t)).collect()),
        Kind::Arn => Values::Arn(
            texts
                .iter()
                .map(|t| ArnPattern::new(t, variables))
                .collect(),
        ),
        Kind::Null => match texts {
            [t] if t.eq_ignore_ascii_case("true") => Values::Null(true),
            [t] if t.eq_ignore_ascii_case("false") => Values::Null(false),
            _ => return Err(PolicyError::syntax("Null takes true or false")),
        },
    })
}

impl Condition {
    /// Every context key this condition reads: its key and its values' policy variables.
    pub(crate) fn reads(&self) -> impl Iterator<Item = &str> {
        let (strs, arns): (&[Pattern], &[ArnPattern]) = match &self.values {
            Values::Str(p) => (p, &[]),
            Values::Arn(p) => (&[], p),
            _ => (&[], &[]),
        };
        std::iter::once(&*self.key)
            .chain(strs.iter().flat_map(Pattern::variable_keys))
            .chain(arns.iter().flat_map(ArnPattern::variable_keys))
    }

    /// Whether this (operator, key) pair holds for `req`.
    pub(crate) fn holds(&self, req: &Request) -> bool {
        let value = req.get_lower(&self.key);
        if let Values::Null(absent) = self.values {
            return value.is_none() == absent;
        }
        let Some(value) = value else {
            return match self.set {
                _ if self.if_exists => true,
                SetOp::AllValues => true,
                SetOp::AnyValue => false,
                SetOp::Plain => self.negated,
            };
        };
        let items = value.items();
        match self.set {
            SetOp::AnyValue => items.iter().any(|v| self.one(v, req)),
            SetOp::AllValues => items.iter().all(|v| self.one(v, req)),
            SetOp::Plain if self.negated => !items.iter().any(|v| self.positive(v, req)),
            SetOp::Plain => items.iter().any(|v| self.positive(v, req)),
        }
    }

    /// The operator on one request value, negation applied.
    fn one(&self, v: &Scalar, req: &Request) -> bool {
        self.positive(v, req) != self.negated
    }

    /// Whether request value `v` matches any of the policy's values (negation ignored).
    fn positive(&self, v: &Scalar, req: &Request) -> bool {
        match &self.values {
            Values::Str(patterns) => {
                let text = v.text();
                let folded;
                let text: &str = match patterns.first() {
                    Some(p) if p.folds() => {
                        folded = text.to_lowercase();
                        &folded
                    }
                    _ => &text,
                };
                patterns.iter().any(|p| p.matches(text, req))
            }
            Values::Num(cmp, policy) => v
                .number()
                .is_some_and(|n| policy.iter().flatten().any(|p| cmp.holds(n, *p))),
            Values::Date(cmp, policy) => v
                .date_millis()
                .is_some_and(|d| policy.iter().flatten().any(|p| cmp.holds(d, *p))),
            Values::Bool(policy) => v.bool().is_some_and(|b| policy.contains(&Some(b))),
            Values::Binary(policy) => {
                let text = v.text();
                policy.iter().any(|p| *p == *text)
            }
            Values::Ip(policy) => v
                .ip()
                .is_some_and(|ip| policy.iter().flatten().any(|c| c.contains(ip))),
            Values::Arn(policy) => {
                let text = v.text();
                policy.iter().any(|p| p.matches(&text, req))
            }
            Values::Null(_) => false,
        }
    }
}

/// An IPv4 or IPv6 network (`203.0.113.0/24`, `2001:db8::/32`; a bare address is a host).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().ok()?)),
            None => (text, None),
        };
        let net: IpAddr = addr.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { net, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => masked(
                u128::from(u32::from(n)),
                u128::from(u32::from(a)),
                self.prefix,
                32,
            ),
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                masked(u128::from(n), u128::from(a), self.prefix, 128)
            }
            _ => false,
        }
    }
}

fn masked(net: u128, addr: u128, prefix: u8, bits: u32) -> bool {
    let host_bits = bits - u32::from(prefix);
    if host_bits >= 128 {
        return true;
    }
    (net >> host_bits) == (addr >> host_bits)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn cidrs_contain_their_addresses() {
        let c = Cidr::parse("203.0.113.0/24").unwrap();
        assert!(c.contains("203.0.113.9".parse().unwrap()));
        assert!(!c.contains("203.0.114.9".parse().unwrap()));
        assert!(!c.contains("::1".parse().unwrap()));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!v6.contains("2001:db9::5".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.1")
            .unwrap()
            .contains("10.0.0.1".parse().unwrap()));
        assert_eq!(Cidr::parse("10.0.0.0/33"), None);
    }

    #[test]
    fn unknown_operators_are_refused() {
        let block = serde_json::json!({"StringEqualz": {"aws:username": "x"}});
        assert!(matches!(
            parse_block(&block, true),
            Err(PolicyError::Syntax { .. })
        ));
        let null_if_exists = serde_json::json!({"NullIfExists": {"aws:username": "true"}});
        assert!(parse_block(&null_if_exists, true).is_err());
    }
}
