//! Auto Scaling errors and their one mapping to AWS's wire codes.
//!
//! The query protocol puts the modelled `error.code` on the wire (`AlreadyExists`,
//! `ResourceInUse`), and bad parameters are `ValidationError`, as AWS sends them.

use store::ObjectsError;
use wire::AwsError;

/// Everything an Auto Scaling (or launch template) operation can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum AutoScalingError {
    /// A parameter is missing, malformed or out of range, or names nothing.
    #[error("{0}")]
    Validation(String),
    /// A group of that name exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// The group still has instances (DeleteAutoScalingGroup without ForceDelete).
    #[error("{0}")]
    ResourceInUse(String),
    /// A quota is reached (lifecycle hooks per group).
    #[error("{0}")]
    LimitExceeded(String),
    /// An operation of the model Stevedore does not serve (yet).
    #[error("Operation {0} of Auto Scaling is not implemented by Stevedore yet.")]
    NotImplemented(&'static str),
    /// EC2's own error codes (launch templates): the code, then the message.
    #[error("{1}")]
    Ec2(&'static str, String),
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] ObjectsError),
}

impl AutoScalingError {
    /// The AWS error to send.
    pub fn to_aws(&self) -> AwsError {
        let message = self.to_string();
        match self {
            Self::Validation(_) => AwsError::client("ValidationError", message),
            Self::AlreadyExists(_) => AwsError::client("AlreadyExists", message),
            Self::ResourceInUse(_) => AwsError::client("ResourceInUse", message),
            Self::LimitExceeded(_) => AwsError::client("LimitExceeded", message),
            Self::NotImplemented(_) => AwsError::client("InvalidAction", message),
            Self::Ec2(code, _) => AwsError::client(*code, message),
            // AWS's common 503 for a temporary failure (the state store is unreachable);
            // the store logs the outage once, not per request.
            Self::Store(ObjectsError::Store(store::StoreError::Unavailable(_))) => {
                AwsError::server(
                    "ServiceUnavailable",
                    "The service is unavailable: its state store cannot be reached. Retry the request.",
                )
                .with_status(503)
            }
            Self::Store(error) => {
                tracing::error!(%error, "Auto Scaling could not reach its state.");
                AwsError::server("InternalFailure", "The state store failed; retry.")
            }
        }
    }
}

/// A `ValidationError` with `message`.
pub(crate) fn invalid<T>(message: impl Into<String>) -> Result<T, AutoScalingError> {
    Err(AutoScalingError::Validation(message.into()))
}
