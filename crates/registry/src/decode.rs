//! Turns a request body into a typed request, with AWS-shaped errors that name the
//! offending member.

use crate::error::RegistryError;
use serde::de::DeserializeOwned;

/// Decodes an AWS JSON body (see [`wire::json::parse_request`]) into this service's errors.
pub fn parse_request<T: DeserializeOwned>(body: &[u8]) -> Result<T, RegistryError> {
    wire::json::parse_request(body).map_err(|e| match e {
        wire::json::DecodeError::Serialization(m) => RegistryError::Serialization(m),
        wire::json::DecodeError::InvalidParameter(m) => RegistryError::InvalidParameter(m),
    })
}
