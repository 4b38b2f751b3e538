//! Why an IAM or STS request failed, mapped to AWS's query-protocol error codes at the
//! edge ([`IamError::to_aws`]).

use wire::AwsError;

/// An IAM or STS failure.
#[derive(Debug, thiserror::Error)]
pub enum IamError {
    /// The named user, role, policy, key or profile does not exist (`NoSuchEntity`, 404).
    #[error("{0}")]
    NoSuchEntity(String),
    /// An entity with that name exists (`EntityAlreadyExists`, 409).
    #[error("{0}")]
    EntityAlreadyExists(String),
    /// The entity still has things attached (`DeleteConflict`, 409).
    #[error("{0}")]
    DeleteConflict(String),
    /// A count quota (`LimitExceeded`, 409).
    #[error("{0}")]
    LimitExceeded(String),
    /// A policy document IAM refuses (`MalformedPolicyDocument`, or `LimitExceeded` for size).
    #[error(transparent)]
    Policy(#[from] policy::PolicyError),
    /// A parameter outside the model's constraints (`ValidationError`, 400).
    #[error("{0}")]
    Validation(String),
    /// A parameter IAM refuses for another reason (`InvalidInput`, 400).
    #[error("{0}")]
    InvalidInput(String),
    /// The caller may not do this (`AccessDenied`, 403).
    #[error("{0}")]
    AccessDenied(String),
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] store::ObjectsError),
    /// Something that should not happen did (`ServiceFailure`, 500).
    #[error("{0}")]
    Internal(String),
}

impl IamError {
    /// The AWS error to answer with.
    pub fn to_aws(&self) -> AwsError {
        let (code, status) = match self {
            Self::NoSuchEntity(_) => ("NoSuchEntity", 404),
            Self::EntityAlreadyExists(_) => ("EntityAlreadyExists", 409),
            Self::DeleteConflict(_) => ("DeleteConflict", 409),
            Self::LimitExceeded(_) => ("LimitExceeded", 409),
            Self::Policy(e) if e.code() == "LimitExceeded" => ("LimitExceeded", 409),
            Self::Policy(_) => ("MalformedPolicyDocument", 400),
            Self::Validation(_) => ("ValidationError", 400),
            Self::InvalidInput(_) => ("InvalidInput", 400),
            Self::AccessDenied(_) => ("AccessDenied", 403),
            // The state store cannot be reached now (etcd down): AWS's common 503,
            // which SDKs retry, rather than a failure of the request itself.
            Self::Store(store::ObjectsError::Store(store::StoreError::Unavailable(_))) => {
                ("ServiceUnavailable", 503)
            }
            Self::Store(_) | Self::Internal(_) => ("ServiceFailure", 500),
        };
        let message = match self {
            Self::Store(store::ObjectsError::Store(store::StoreError::Unavailable(_))) => {
                "The service is unavailable: its state store cannot be reached. Retry the request."
                    .to_owned()
            }
            Self::Store(_) => "The service failed to store the request; retry it.".to_owned(),
            other => other.to_string(),
        };
        AwsError::client(code, message).with_status(status)
    }

    pub(crate) fn validation(value: &str, member: &str, constraint: &str) -> Self {
        Self::Validation(format!(
            "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
        ))
    }

    pub(crate) fn missing(member: &str) -> Self {
        Self::Validation(format!(
            "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
        ))
    }
}
