//! Turns a request body into a typed request, with AWS-shaped errors that name the
//! offending member.

use crate::error::RegistryError;
use serde::de::DeserializeOwned;

/// Decodes an AWS JSON body. An empty body is `{}` (botocore sends `{}`, other clients
/// sometimes nothing).
pub fn parse_request<T: DeserializeOwned>(body: &[u8]) -> Result<T, RegistryError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
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

fn classify(path: &str, e: &serde_json::Error) -> RegistryError {
    use serde_json::error::Category;
    let text = e.to_string();
    let detail = text.split(" at line ").next().unwrap_or(&text);
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            RegistryError::Serialization(format!("The request body is not valid JSON: {text}."))
        }
        Category::Data => {
            if let Some(field) = detail.strip_prefix("missing field ") {
                let field = field.trim_matches('`');
                let full = if path == "." || path.is_empty() {
                    field.to_owned()
                } else {
                    format!("{path}.{field}")
                };
                RegistryError::InvalidParameter(format!("Missing required parameter: '{full}'."))
            } else if detail.starts_with("unknown variant") {
                RegistryError::InvalidParameter(format!("Invalid value for '{path}': {detail}."))
            } else if path == "." {
                RegistryError::Serialization(format!(
                    "The request body must be a JSON object: {detail}."
                ))
            } else {
                RegistryError::Serialization(format!("Invalid type for member '{path}': {detail}."))
            }
        }
    }
}
