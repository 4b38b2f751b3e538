//! Turns a request body into a typed request, with AWS-shaped errors that name the
//! offending member.

use crate::error::EcsError;
use serde::de::DeserializeOwned;

/// Decodes an AWS JSON body. An empty body is `{}` (botocore sends `{}`, other clients
/// sometimes nothing).
pub fn parse_request<T: DeserializeOwned>(body: &[u8]) -> Result<T, EcsError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    // serde accepts a JSON array for a struct; AWS wants an object.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(EcsError::Serialization(
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

fn classify(path: &str, e: &serde_json::Error) -> EcsError {
    use serde_json::error::Category;
    let text = e.to_string();
    let detail = text.split(" at line ").next().unwrap_or(&text);
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            EcsError::Serialization(format!("The request body is not valid JSON: {text}."))
        }
        Category::Data => {
            if let Some(field) = detail.strip_prefix("missing field ") {
                let field = field.trim_matches('`');
                let full = if path == "." || path.is_empty() {
                    field.to_owned()
                } else {
                    format!("{path}.{field}")
                };
                EcsError::InvalidParameter(format!("Missing required parameter: '{full}'."))
            } else if detail.starts_with("unknown variant") {
                EcsError::InvalidParameter(format!("Invalid value for '{path}': {detail}."))
            } else if path == "." {
                EcsError::Serialization(format!(
                    "The request body must be a JSON object: {detail}."
                ))
            } else {
                EcsError::Serialization(format!("Invalid type for member '{path}': {detail}."))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::ecs::shapes::{CreateClusterRequest, RegisterTaskDefinitionRequest};

    fn code(e: EcsError) -> String {
        e.to_aws().code
    }

    #[test]
    fn empty_body_is_an_empty_request() {
        let r: CreateClusterRequest = parse_request(b"").expect("empty is {}");
        assert!(r.cluster_name.is_none());
    }

    #[test]
    fn malformed_json_is_a_serialization_error() {
        let e = parse_request::<CreateClusterRequest>(b"{\"clusterName\": ").expect_err("bad");
        assert_eq!(code(e), "SerializationException");
    }

    #[test]
    fn wrong_member_type_names_the_member() {
        let e = parse_request::<CreateClusterRequest>(br#"{"clusterName": 5}"#).expect_err("bad");
        let aws = e.to_aws();
        assert_eq!(aws.code, "SerializationException");
        assert!(aws.message.contains("clusterName"), "{}", aws.message);
    }

    #[test]
    fn missing_required_member_is_invalid_parameter_naming_it() {
        let e =
            parse_request::<RegisterTaskDefinitionRequest>(br#"{"family": "f"}"#).expect_err("bad");
        let aws = e.to_aws();
        assert_eq!(aws.code, "InvalidParameterException");
        assert!(
            aws.message.contains("containerDefinitions"),
            "{}",
            aws.message
        );
    }

    #[test]
    fn unknown_enum_value_is_invalid_parameter() {
        let e = parse_request::<RegisterTaskDefinitionRequest>(
            br#"{"family": "f", "networkMode": "mesh", "containerDefinitions": []}"#,
        )
        .expect_err("bad");
        let aws = e.to_aws();
        assert_eq!(aws.code, "InvalidParameterException");
        assert!(aws.message.contains("networkMode"), "{}", aws.message);
    }
}
