//! CloudWatch's errors and the one place they become AWS errors: each carries its JSON/CBOR
//! `__type` (the error shape's name) and its query-protocol code (the model's
//! `awsQueryError`, sent in `x-amzn-query-error`, which is what botocore reports).

use wire::AwsError;

/// Why a CloudWatch operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CloudWatchError {
    /// A parameter's value is not valid (`InvalidParameterValue`).
    #[error("{0}")]
    InvalidParameterValue(String),
    /// A required parameter is absent (`MissingParameter`).
    #[error("{0}")]
    MissingParameter(String),
    /// Parameters that cannot go together (`InvalidParameterCombination`).
    #[error("{0}")]
    InvalidParameterCombination(String),
    /// A GetMetricData request that is not valid (`ValidationError`).
    #[error("{0}")]
    Validation(String),
    /// A NextToken this service did not hand out (`InvalidNextToken`).
    #[error("{0}")]
    InvalidNextToken(String),
    /// No alarm of that name (`ResourceNotFound`).
    #[error("{0}")]
    ResourceNotFound(String),
    /// A value in a format the operation does not take (`InvalidFormat`).
    #[error("{0}")]
    InvalidFormat(String),
    /// The body does not decode.
    #[error("{0}")]
    Serialization(String),
    /// The store failed (`InternalServiceError`).
    #[error("{0}")]
    Internal(String),
}

impl From<crate::store::MetricStoreError> for CloudWatchError {
    fn from(e: crate::store::MetricStoreError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<::store::ObjectsError> for CloudWatchError {
    fn from(e: ::store::ObjectsError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl CloudWatchError {
    /// The AWS error: `__type`, query code, status and message.
    pub fn to_aws(&self) -> AwsError {
        let (shape, query_code) = match self {
            Self::InvalidParameterValue(_) => {
                ("InvalidParameterValueException", "InvalidParameterValue")
            }
            Self::MissingParameter(_) => ("MissingRequiredParameterException", "MissingParameter"),
            Self::InvalidParameterCombination(_) => (
                "InvalidParameterCombinationException",
                "InvalidParameterCombination",
            ),
            Self::Validation(_) => ("ValidationException", "ValidationError"),
            Self::InvalidNextToken(_) => ("InvalidNextToken", "InvalidNextToken"),
            Self::InvalidFormat(_) => ("InvalidFormatFault", "InvalidFormat"),
            Self::ResourceNotFound(m) => {
                let mut e = AwsError::client("ResourceNotFound", m.clone())
                    .with_query_code("ResourceNotFound");
                e.status = 404;
                return e;
            }
            // Not a modelled shape: the protocols' own decoding error.
            Self::Serialization(m) => {
                return AwsError::client("SerializationException", m.clone());
            }
            Self::Internal(_) => ("InternalServiceFault", "InternalServiceError"),
        };
        // The bare shape name: botocore and the Smithy clients keep what follows a `#`
        // anyway, and it is the code the operation table models.
        let ty = shape;
        let message = self.to_string();
        if let Self::Internal(_) = self {
            tracing::error!(error = %message, "CloudWatch operation failed.");
            // InternalServiceFault's member is `Message`.
            let mut e = AwsError::server(ty, message.clone()).with_query_code(query_code);
            e.extra
                .insert("Message".into(), serde_json::Value::String(message));
            return e;
        }
        AwsError::client(ty, message).with_query_code(query_code)
    }
}
