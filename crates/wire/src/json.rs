//! Decoding AWS JSON 1.0/1.1 request bodies into typed requests, with errors that say
//! which member is wrong. Every JSON service decodes through here and maps
//! [`DecodeError`] to its own modeled exceptions.

use serde::de::DeserializeOwned;

/// Why a body did not decode; each service reports these as its own exceptions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, not an object, or a member of the wrong JSON type
    /// (`SerializationException`).
    #[error("{0}")]
    Serialization(String),
    /// A required member is missing or an enum value is unknown
    /// (`InvalidParameterException`).
    #[error("{0}")]
    InvalidParameter(String),
}

/// Decodes an AWS JSON body. An empty body is `{}` (botocore sends `{}`, other clients
/// sometimes nothing).
pub fn parse_request<T: DeserializeOwned>(body: &[u8]) -> Result<T, DecodeError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    // serde accepts a JSON array for a struct; AWS wants an object.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(DecodeError::Serialization(
            "The request body must be a JSON object.".into(),
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
        let path = e.path().to_string();
        classify(&path, &e.into_inner())
    })
}

fn classify(path: &str, e: &serde_json::Error) -> DecodeError {
    use serde_json::error::Category;
    let text = e.to_string();
    let detail = text.split(" at line ").next().unwrap_or(&text);
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            DecodeError::Serialization(format!("The request body is not valid JSON: {text}."))
        }
        Category::Data => {
            if let Some(field) = detail.strip_prefix("missing field ") {
                let field = field.trim_matches('`');
                let full = if path == "." || path.is_empty() {
                    field.to_owned()
                } else {
                    format!("{path}.{field}")
                };
                DecodeError::InvalidParameter(format!("Missing required parameter: '{full}'."))
            } else if detail.starts_with("unknown variant") {
                DecodeError::InvalidParameter(format!("Invalid value for '{path}': {detail}."))
            } else if path == "." {
                DecodeError::Serialization(format!(
                    "The request body must be a JSON object: {detail}."
                ))
            } else {
                DecodeError::Serialization(format!("Invalid type for member '{path}': {detail}."))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Req {
        name: String,
        #[serde(default)]
        count: Option<i32>,
    }

    #[test]
    fn arrays_and_garbage_are_serialization_errors() {
        assert!(matches!(
            parse_request::<Req>(b"[\"name\"]"),
            Err(DecodeError::Serialization(_))
        ));
        assert!(matches!(
            parse_request::<Req>(b"{\"name\": "),
            Err(DecodeError::Serialization(_))
        ));
    }

    #[test]
    fn missing_member_and_wrong_type_name_the_member() {
        let Err(DecodeError::InvalidParameter(m)) = parse_request::<Req>(b"{}") else {
            panic!("expected InvalidParameter")
        };
        assert!(m.contains("'name'"), "{m}");
        let Err(DecodeError::Serialization(m)) =
            parse_request::<Req>(br#"{"name": "a", "count": "x"}"#)
        else {
            panic!("expected Serialization")
        };
        assert!(m.contains("count"), "{m}");
    }
}
