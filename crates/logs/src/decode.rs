//! Turns a request body into a typed request, with AWS-shaped errors that name the
//! offending member.

use crate::error::LogsError;
use serde::de::DeserializeOwned;

/// Decodes an AWS JSON body (see [`wire::json::parse_request`]) into this service's errors.
pub fn parse_request<T: DeserializeOwned>(body: &[u8]) -> Result<T, LogsError> {
    wire::json::parse_request(body).map_err(|e| match e {
        wire::json::DecodeError::Serialization(m) => LogsError::Serialization(m),
        wire::json::DecodeError::InvalidParameter(m) => LogsError::InvalidParameter(m),
    })
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
