//! Application Auto Scaling's errors and the one place they become AWS errors (the
//! `__type` is the error shape's name in botocore's model; its member is `Message`).

use wire::AwsError;

/// Why an Application Auto Scaling operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AppScalingError {
    /// A request that is not valid (`ValidationException`).
    #[error("{0}")]
    Validation(String),
    /// The scalable target, policy or scheduled action does not exist
    /// (`ObjectNotFoundException`).
    #[error("{0}")]
    ObjectNotFound(String),
    /// A quota was reached (`LimitExceededException`).
    #[error("{0}")]
    LimitExceeded(String),
    /// The ARN of a tag operation names nothing (`ResourceNotFoundException`).
    #[error("{message}")]
    ResourceNotFound {
        /// The message.
        message: String,
        /// The ARN named.
        resource: String,
    },
    /// Too many tags on one resource (`TooManyTagsException`).
    #[error("{message}")]
    TooManyTags {
        /// The message.
        message: String,
        /// The ARN named.
        resource: String,
    },
    /// A NextToken this service did not hand out (`InvalidNextTokenException`).
    #[error("{0}")]
    InvalidNextToken(String),
    /// The target service could not be read or changed (`FailedResourceAccessException`).
    #[error("{0}")]
    FailedResourceAccess(String),
    /// The body is not the operation's input shape.
    #[error("{0}")]
    Serialization(String),
    /// The store failed (`InternalServiceException`).
    #[error("{0}")]
    Internal(String),
}

impl From<store::ObjectsError> for AppScalingError {
    fn from(e: store::ObjectsError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl AppScalingError {
    /// The AWS error: `__type`, status and message.
    pub fn to_aws(&self) -> AwsError {
        let message = self.to_string();
        let ty = match self {
            Self::Validation(_) => "ValidationException",
            Self::ObjectNotFound(_) => "ObjectNotFoundException",
            Self::LimitExceeded(_) => "LimitExceededException",
            Self::ResourceNotFound { resource, .. } | Self::TooManyTags { resource, .. } => {
                let ty = match self {
                    Self::ResourceNotFound { .. } => "ResourceNotFoundException",
                    _ => "TooManyTagsException",
                };
                let mut e = AwsError::client(ty, message);
                e.extra.insert(
                    "ResourceName".into(),
                    serde_json::Value::String(resource.clone()),
                );
                return e;
            }
            Self::InvalidNextToken(_) => "InvalidNextTokenException",
            Self::FailedResourceAccess(_) => "FailedResourceAccessException",
            Self::Serialization(_) => "SerializationException",
            Self::Internal(_) => {
                tracing::error!(error = %message, "Application Auto Scaling operation failed.");
                return AwsError::server("InternalServiceException", message);
            }
        };
        AwsError::client(ty, message)
    }
}
