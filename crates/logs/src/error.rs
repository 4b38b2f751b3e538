//! CloudWatch Logs errors and their one mapping to AWS's wire codes.

use crate::{Logs, Operation};
use store::StoreError;
use wire::{AwsError, Service};

/// Everything a Logs operation can refuse or fail with. Each variant is one modeled
/// exception of botocore's Logs model (or a protocol-level error), carrying the message.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    /// The target names an operation the Logs model does not have.
    #[error("Operation {0} is not supported by this CloudWatch Logs endpoint.")]
    UnknownOperation(String),
    /// An operation of the Logs model that Stevedore does not serve (yet).
    #[error("Operation {} of CloudWatch Logs is not implemented by Stevedore yet.", .0.name())]
    NotImplemented(Operation),
    /// The body is not JSON, or a member has the wrong JSON type.
    #[error("{0}")]
    Serialization(String),
    /// A parameter is missing, out of range or malformed, or a batch breaks a rule.
    #[error("{0}")]
    InvalidParameter(String),
    /// The named log group does not exist.
    #[error("The specified log group does not exist.")]
    LogGroupNotFound,
    /// The named log stream does not exist.
    #[error("The specified log stream does not exist.")]
    LogStreamNotFound,
    /// The named resource (by ARN) does not exist.
    #[error("{0}")]
    ResourceNotFound(String),
    /// CreateLogGroup on an existing group.
    #[error("The specified log group already exists")]
    LogGroupAlreadyExists,
    /// CreateLogStream on an existing stream.
    #[error("The specified log stream already exists")]
    LogStreamAlreadyExists,
    /// A resource would carry more than 50 tags.
    #[error("{0}")]
    TooManyTags(String),
    /// A Logs Insights query that does not compile.
    #[error("{0}")]
    MalformedQuery(crate::insights::QueryError),
    /// A quota is reached (e.g. concurrent queries).
    #[error("{0}")]
    LimitExceeded(String),
    /// A concurrent change won (a resource policy's expected revision is not current).
    #[error("{0}")]
    OperationAborted(String),
    /// The state store failed.
    #[error("The state store failed: {0}")]
    Store(#[from] StoreError),
    /// Compare-and-swap kept losing to concurrent writers.
    #[error("Too many concurrent updates to {0}; retry the request.")]
    Contention(String),
}

impl LogsError {
    /// The AWS error this is reported as.
    pub fn to_aws(&self) -> AwsError {
        let msg = self.to_string();
        let code = match self {
            Self::UnknownOperation(name) => {
                return wire::dispatch::unknown_operation(&Logs::SPEC, name)
            }
            Self::NotImplemented(op) => {
                return wire::dispatch::not_implemented(&Logs::SPEC, op.name())
            }
            Self::Serialization(_) => "SerializationException",
            Self::InvalidParameter(_) => "InvalidParameterException",
            Self::LogGroupNotFound | Self::LogStreamNotFound | Self::ResourceNotFound(_) => {
                "ResourceNotFoundException"
            }
            Self::LogGroupAlreadyExists | Self::LogStreamAlreadyExists => {
                "ResourceAlreadyExistsException"
            }
            Self::TooManyTags(_) => "TooManyTagsException",
            Self::LimitExceeded(_) => "LimitExceededException",
            Self::OperationAborted(_) => "OperationAbortedException",
            Self::MalformedQuery(e) => {
                let mut err = AwsError::client("MalformedQueryException", msg.clone());
                err.extra.insert(
                    "queryCompileError".into(),
                    serde_json::json!({
                        "location": {"startCharOffset": e.start, "endCharOffset": e.end},
                        "message": e.message,
                    }),
                );
                return err;
            }
            // ServiceUnavailableException is the Logs model's only server fault; botocore
            // retries it, which is right for contention and store hiccups.
            Self::Store(_) | Self::Contention(_) => {
                return AwsError::server("ServiceUnavailableException", msg).with_status(503)
            }
        };
        AwsError::client(code, msg)
    }
}

impl From<store::ObjectsError> for LogsError {
    /// Contention stays contention; an object that does not encode or decode is
    /// reported as the state store failing, naming its key.
    fn from(e: store::ObjectsError) -> Self {
        match e {
            store::ObjectsError::Store(e) => Self::Store(e),
            store::ObjectsError::Contention { what } => Self::Contention(what),
            other => Self::Store(StoreError::Backend(other.to_string())),
        }
    }
}

/// Shorthand for the common refusal.
pub(crate) fn invalid<T>(msg: impl Into<String>) -> Result<T, LogsError> {
    Err(LogsError::InvalidParameter(msg.into()))
}

impl From<crate::pattern::PatternError> for LogsError {
    /// A filter pattern that does not parse is an invalid parameter, as AWS reports it.
    fn from(e: crate::pattern::PatternError) -> Self {
        Self::InvalidParameter(e.to_string())
    }
}
