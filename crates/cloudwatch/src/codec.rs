//! The three ways a CloudWatch request and answer are encoded, behind one interface: any
//! request body becomes a JSON value that the operation's input type deserializes
//! leniently (numbers and booleans may be strings, timestamps epoch seconds or ISO 8601,
//! as the query protocol sends them), and every answer is built once as an [`Out`] tree
//! then written as AWS JSON 1.0, the query protocol's XML or Smithy RPC v2 CBOR.

use crate::error::CloudWatchError;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use wire::Input;

/// A request body as a JSON object, whatever protocol carried it.
pub fn decode(input: Input<'_>) -> Result<Value, CloudWatchError> {
    match input {
        Input::Json(body) if body.iter().all(u8::is_ascii_whitespace) => {
            Ok(Value::Object(Map::new()))
        }
        Input::Json(body) => serde_json::from_slice(body).map_err(|e| {
            CloudWatchError::Serialization(format!("The request body is not valid JSON: {e}"))
        }),
        Input::Cbor([]) => Ok(Value::Object(Map::new())),
        Input::Cbor(body) => {
            let value: ciborium::Value = ciborium::from_reader(body).map_err(|e| {
                CloudWatchError::Serialization(format!("The request body is not valid CBOR: {e}"))
            })?;
            cbor_to_json(value)
        }
        Input::Query(params) => query_to_json(
            params
                .iter()
                .filter(|(k, _)| *k != "Action" && *k != "Version"),
        ),
    }
}

/// A CBOR value as JSON: timestamps (tag 1) become epoch seconds, other tags their
/// content; byte strings and non-text keys are refused (no CloudWatch input has them).
pub fn cbor_to_json(value: ciborium::Value) -> Result<Value, CloudWatchError> {
    use ciborium::Value as C;
    let refuse = |what: &str| {
        CloudWatchError::Serialization(format!("Unexpected CBOR {what} in the request."))
    };
    Ok(match value {
        C::Null => Value::Null,
        C::Bool(b) => Value::Bool(b),
        C::Integer(i) => {
            let i = i128::from(i);
            match i64::try_from(i) {
                Ok(n) => Value::from(n),
                // Beyond i64: only meaningful as a double.
                #[allow(clippy::cast_precision_loss)]
                Err(_) => json_f64(i as f64).ok_or_else(|| refuse("integer"))?,
            }
        }
        C::Float(f) => json_f64(f).ok_or_else(|| {
            CloudWatchError::InvalidParameterValue(
                "The value NaN or Infinity is not valid: values must be finite numbers.".into(),
            )
        })?,
        C::Text(s) => Value::String(s),
        C::Tag(_, inner) => cbor_to_json(*inner)?,
        C::Array(items) => Value::Array(
            items
                .into_iter()
                .map(cbor_to_json)
                .collect::<Result<_, _>>()?,
        ),
        C::Map(entries) => {
            let mut m = Map::new();
            for (k, v) in entries {
                let C::Text(k) = k else {
                    return Err(refuse("map key"));
                };
                let v = cbor_to_json(v)?;
                // Smithy RPC v2: a null member is an absent one.
                if !v.is_null() {
                    m.insert(k, v);
                }
            }
            Value::Object(m)
        }
        C::Bytes(_) => return Err(refuse("byte string")),
        _ => return Err(refuse("item")),
    })
}

fn json_f64(f: f64) -> Option<Value> {
    serde_json::Number::from_f64(f).map(Value::Number)
}

enum Node {
    Leaf(String),
    Obj(BTreeMap<String, Node>),
    List(BTreeMap<u32, Node>),
}

/// Query parameters (`A.member.1.B=x`) as the JSON object they flatten.
fn query_to_json<'a>(
    params: impl Iterator<Item = (&'a str, &'a str)>,
) -> Result<Value, CloudWatchError> {
    let mut root = Node::Obj(BTreeMap::new());
    for (key, value) in params {
        let segments: Vec<&str> = key.split('.').collect();
        // No CloudWatch input nests deeper; the bound keeps the recursion shallow.
        if segments.len() > MAX_QUERY_DEPTH {
            return Err(CloudWatchError::Serialization(format!(
                "The parameter name {key} nests deeper than any CloudWatch input."
            )));
        }
        insert(&mut root, &segments, value);
    }
    Ok(node_to_json(root))
}

/// The deepest parameter name a CloudWatch input has (GetMetricData's
/// `MetricDataQueries.member.N.MetricStat.Metric.Dimensions.member.N.Name` is 9).
const MAX_QUERY_DEPTH: usize = 16;

fn insert(node: &mut Node, path: &[&str], value: &str) {
    let Some((first, rest)) = path.split_first() else {
        *node = Node::Leaf(value.to_owned());
        return;
    };
    if *first == "member" {
        if let Some((index, rest)) = rest.split_first() {
            if let Ok(i) = index.parse::<u32>() {
                if !matches!(node, Node::List(_)) {
                    *node = Node::List(BTreeMap::new());
                }
                if let Node::List(items) = node {
                    let child = items.entry(i).or_insert_with(|| Node::Obj(BTreeMap::new()));
                    insert(child, rest, value);
                }
                return;
            }
        }
    }
    if !matches!(node, Node::Obj(_)) {
        *node = Node::Obj(BTreeMap::new());
    }
    if let Node::Obj(fields) = node {
        let child = fields
            .entry((*first).to_owned())
            .or_insert_with(|| Node::Obj(BTreeMap::new()));
        insert(child, rest, value);
    }
}

fn node_to_json(node: Node) -> Value {
    match node {
        // The query protocol sends an empty list as `Name=`: absent, as in JSON.
        Node::Leaf(s) if s.is_empty() => Value::Null,
        Node::Leaf(s) => Value::String(s),
        Node::Obj(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k, node_to_json(v)))
                .filter(|(_, v)| !v.is_null())
                .collect(),
        ),
        Node::List(items) => Value::Array(items.into_values().map(node_to_json).collect()),
    }
}

/// A number sent as a number or as text (the query protocol).
pub fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    use serde::de::Error;
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| D::Error::custom("not a number")),
        Some(Value::String(s)) => match s.as_str() {
            // The query protocol's spelling of values JSON cannot carry; refused later.
            "NaN" => Ok(Some(f64::NAN)),
            "Infinity" => Ok(Some(f64::INFINITY)),
            "-Infinity" => Ok(Some(f64::NEG_INFINITY)),
            _ => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| D::Error::custom(format!("'{s}' is not a number"))),
        },
        Some(other) => Err(D::Error::custom(format!("{other} is not a number"))),
    }
}

/// A list of numbers, each sent as a number or as text.
pub fn lenient_f64_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<f64>>, D::Error> {
    #[derive(Deserialize)]
    struct N(#[serde(deserialize_with = "lenient_f64")] Option<f64>);
    let list = Option::<Vec<N>>::deserialize(d)?;
    Ok(list.map(|l| l.into_iter().map(|n| n.0.unwrap_or(f64::NAN)).collect()))
}

/// An integer sent as a number or as text.
pub fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde::de::Error;
    match lenient_f64(d)? {
        None => Ok(None),
        #[allow(clippy::cast_possible_truncation)]
        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
        Some(f) => Err(D::Error::custom(format!("{f} is not an integer"))),
    }
}

/// A boolean sent as a boolean or as `true`/`false`.
pub fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    use serde::de::Error;
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(Value::String(s)) if s == "true" => Ok(Some(true)),
        Some(Value::String(s)) if s == "false" => Ok(Some(false)),
        Some(other) => Err(D::Error::custom(format!("{other} is not a boolean"))),
    }
}

/// A timestamp: epoch seconds (JSON, CBOR) or ISO 8601 text (the query protocol).
pub fn lenient_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    use serde::de::Error;
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| D::Error::custom("not a timestamp")),
        Some(Value::String(s)) => wire::xml::parse_iso8601(&s)
            .or_else(|| s.parse::<f64>().ok().filter(|t| t.is_finite()))
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("'{s}' is not a timestamp"))),
        Some(other) => Err(D::Error::custom(format!("{other} is not a timestamp"))),
    }
}

/// An answer, built once and written in the caller's protocol.
#[derive(Clone, Debug, PartialEq)]
pub enum Out {
    /// Text.
    Str(String),
    /// A double (always finite).
    F64(f64),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A timestamp, epoch seconds.
    Time(i64),
    /// A list (`<member>` items in XML).
    List(Vec<Out>),
    /// A structure, members in the model's order.
    Obj(Vec<(&'static str, Out)>),
    /// A map (`<entry><key>…</key><value>…</value></entry>` in XML).
    Map(Vec<(String, Out)>),
}

impl Out {
    /// AWS JSON 1.0.
    pub fn to_json(&self) -> Value {
        match self {
            Out::Str(s) => Value::String(s.clone()),
            Out::F64(f) => json_f64(*f).unwrap_or(Value::Null),
            Out::Int(i) | Out::Time(i) => Value::from(*i),
            Out::Bool(b) => Value::Bool(*b),
            Out::List(items) => Value::Array(items.iter().map(Out::to_json).collect()),
            Out::Obj(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.to_json()))
                    .collect(),
            ),
            Out::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// Smithy RPC v2 CBOR: timestamps as tag 1 around epoch seconds.
    pub fn to_cbor(&self) -> ciborium::Value {
        use ciborium::Value as C;
        match self {
            Out::Str(s) => C::Text(s.clone()),
            Out::F64(f) => C::Float(*f),
            Out::Int(i) => C::Integer((*i).into()),
            Out::Bool(b) => C::Bool(*b),
            Out::Time(t) => C::Tag(1, Box::new(C::Integer((*t).into()))),
            Out::List(items) => C::Array(items.iter().map(Out::to_cbor).collect()),
            Out::Obj(fields) => C::Map(
                fields
                    .iter()
                    .map(|(k, v)| (C::Text((*k).to_owned()), v.to_cbor()))
                    .collect(),
            ),
            Out::Map(entries) => C::Map(
                entries
                    .iter()
                    .map(|(k, v)| (C::Text(k.clone()), v.to_cbor()))
                    .collect(),
            ),
        }
    }

    /// The query protocol's XML for the members of a result.
    pub fn write_xml(&self, x: &mut wire::xml::Xml) {
        match self {
            Out::Str(s) => {
                x.text(s);
            }
            Out::F64(f) => {
                x.text(&f.to_string());
            }
            Out::Int(i) => {
                x.text(&i.to_string());
            }
            Out::Bool(b) => {
                x.text(if *b { "true" } else { "false" });
            }
            Out::Time(t) => {
                x.text(&wire::xml::iso8601_secs(*t));
            }
            Out::List(items) => {
                for item in items {
                    x.el("member", |m| item.write_xml(m));
                }
            }
            Out::Obj(fields) => {
                for (k, v) in fields {
                    x.el(k, |m| v.write_xml(m));
                }
            }
            Out::Map(entries) => {
                for (k, v) in entries {
                    x.el("entry", |e| {
                        e.leaf("key", k);
                        e.el("value", |m| v.write_xml(m));
                    });
                }
            }
        }
    }
}

/// Which encoding an answer goes out in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// AWS JSON 1.0.
    Json,
    /// The query protocol (XML), for the named operation.
    Query,
    /// Smithy RPC v2 CBOR.
    Cbor,
}

impl Encoding {
    /// The encoding answers to `input` use.
    pub fn of(input: Input<'_>) -> Self {
        match input {
            Input::Json(_) => Self::Json,
            Input::Query(_) => Self::Query,
            Input::Cbor(_) => Self::Cbor,
        }
    }

    /// `out` (`None`: a Unit output) as the body of `operation`'s answer.
    pub fn encode(self, operation: &str, out: Option<&Out>, request_id: &str) -> Vec<u8> {
        match (self, out) {
            (Self::Json, None) => b"{}".to_vec(),
            (Self::Json, Some(o)) => serde_json::to_vec(&o.to_json()).unwrap_or_default(),
            // RPC v2 CBOR: a Unit output has no body.
            (Self::Cbor, None) => Vec::new(),
            (Self::Cbor, Some(o)) => {
                let mut buf = Vec::new();
                // Writing to a Vec cannot fail.
                let _ = ciborium::into_writer(&o.to_cbor(), &mut buf);
                buf
            }
            (Self::Query, out) => {
                let result = out.map(|o| {
                    let mut x = wire::xml::Xml::new();
                    o.write_xml(&mut x);
                    x.finish()
                });
                wire::xml::envelope(
                    model::cloudwatch::XML_NAMESPACE,
                    operation,
                    request_id,
                    result.as_deref(),
                )
                .into_bytes()
            }
        }
    }
}
