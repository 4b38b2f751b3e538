//! Turns a request body into a typed request, with AWS-shaped errors that name the
//! offending member.

use crate::error::EcsError;
use serde::de::DeserializeOwned;

/// Decodes an AWS JSON body (see [`wire::json::parse_request`]) into this service's errors.
pub fn parse_request<T: DeserializeOwned>(body: &[u8]) -> Result<T, EcsError> {
    wire::json::parse_request(body).map_err(|e| match e {
        wire::json::DecodeError::Serialization(m) => EcsError::Serialization(m),
        wire::json::DecodeError::InvalidParameter(m) => EcsError::InvalidParameter(m),
    })
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
