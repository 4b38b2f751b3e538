//! The AWS error envelope. Services map their own error enums to [`AwsError`] at the
//! edge; this module turns it into the bytes botocore and the Go SDK both parse.

use serde_json::{Map, Value};

/// An error as AWS reports it: a code (the modeled exception's name), an HTTP status and
/// a message a person can act on, plus any modeled extra members.
#[derive(Clone, Debug, PartialEq)]
pub struct AwsError {
    /// HTTP status: 4xx for the caller's mistakes, 5xx only for server faults.
    pub status: u16,
    /// The `__type`, e.g. `ClusterNotFoundException`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Modeled extra members (e.g. `resourceIds` on ECS `ConflictException`).
    pub extra: Map<String, Value>,
    /// For services modelled `awsQueryCompatible` (CloudWatch): the error's query-protocol
    /// code (`InvalidParameterValue` for `InvalidParameterValueException`). Query answers
    /// carry it as their `Code`; JSON and CBOR answers in `x-amzn-query-error`, from
    /// which botocore takes the code it reports.
    pub query_code: Option<String>,
}

impl AwsError {
    /// A 400 error with `code`.
    pub fn client(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status: 400,
            code: code.into(),
            message: message.into(),
            extra: Map::new(),
            query_code: None,
        }
    }
    /// A 500 error with `code`: only for faults that are not the caller's.
    pub fn server(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status: 500,
            code: code.into(),
            message: message.into(),
            extra: Map::new(),
            query_code: None,
        }
    }
    /// Replaces the HTTP status.
    #[must_use]
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
    /// Sets the query-protocol code of an `awsQueryCompatible` service's error.
    #[must_use]
    pub fn with_query_code(mut self, code: impl Into<String>) -> Self {
        self.query_code = Some(code.into());
        self
    }
    /// The AWS JSON 1.0/1.1 body: `{"__type": code, "message": text, ...extra}`.
    pub fn json_body(&self) -> Vec<u8> {
        let mut m = self.extra.clone();
        m.insert("__type".into(), Value::String(self.code.clone()));
        m.insert("message".into(), Value::String(self.message.clone()));
        // Serializing a map of strings cannot fail.
        serde_json::to_vec(&Value::Object(m)).unwrap_or_default()
    }
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_body_carries_type_message_and_extras() {
        let mut e = AwsError::client("ConflictException", "busy");
        e.extra
            .insert("resourceIds".into(), serde_json::json!(["a"]));
        let v: Value = serde_json::from_slice(&e.json_body()).expect("json");
        assert_eq!(v["__type"], "ConflictException");
        assert_eq!(v["message"], "busy");
        assert_eq!(v["resourceIds"][0], "a");
    }
}
