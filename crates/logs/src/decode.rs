//! Turns a request body into a typed request, with AWS-shaped errors that name the
//! offending member.

use crate::error::LogsError;
use serde::de::DeserializeOwned;

/// Decodes an AWS JSON body. An empty body is `{}` (botocore sends `{}`, other clients
/// sometimes nothing).
pub fn parse_request<T: DeserializeOwned>(body: &[u8]) -> Result<T, LogsError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    // serde accepts a JSON array for a struct; AWS wants an object.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(LogsError::Serialization(
            "The request body must be a JSON object.".into(),
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => Ok(v),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            Err(classify(&path, &inner))
        }
    }
}

fn classify(path: &str, e: &serde_json::Error) -> LogsError {
    use serde_json::error::Category;
    let text = e.to_string();
    let detail = text.split(" at line ").next().unwrap_or(&text);
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            LogsError::Serialization(format!("The request body is not valid JSON: {text}."))
        }
        Category::Data => {
            if let Some(field) = detail.strip_prefix("missing field ") {
                let field = field.trim_matches('`');
                let full = if path == "." || path.is_empty() {
                    field.to_owned()
                } else {
                    format!("{path}.{field}")
                };
                LogsError::InvalidParameter(format!("Missing required parameter: '{full}'."))
            } else if detail.starts_with("unknown variant") {
                LogsError::InvalidParameter(format!("Invalid value for '{path}': {detail}."))
            } else if path == "." {
                LogsError::Serialization(format!(
                    "The request body must be a JSON object: {detail}."
                ))
            } else {
                LogsError::Serialization(format!("Invalid type for member '{path}': {detail}."))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::logs::shapes::{CreateLogGroupRequest, PutLogEventsRequest};

    #[test]
    fn missing_required_member_is_invalid_parameter_naming_it() {
        let e = parse_request::<CreateLogGroupRequest>(b"{}").expect_err("bad");
        let aws = e.to_aws();
        assert_eq!(aws.code, "InvalidParameterException");
        assert!(aws.message.contains("logGroupName"), "{}", aws.message);
    }

    #[test]
    fn wrong_member_type_is_a_serialization_error() {
        let e = parse_request::<PutLogEventsRequest>(
            br#"{"logGroupName": "g", "logStreamName": "s", "logEvents": [{"timestamp": "x", "message": "m"}]}"#,
        )
        .expect_err("bad");
        assert_eq!(e.to_aws().code, "SerializationException");
    }
}
