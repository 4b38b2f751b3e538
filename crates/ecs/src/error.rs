//! ECS errors and their one mapping to AWS's wire codes.

use crate::{Ecs, Operation};
use store::StoreError;
use wire::{AwsError, Service};

/// Everything an ECS operation can refuse or fail with. Each variant is one modeled
/// exception of botocore's ECS model (or a protocol-level error), carrying the message.
#[derive(Debug, thiserror::Error)]
pub enum EcsError {
    /// The target names an operation ECS's model does not have.
    #[error("Operation {0} is not supported by this Amazon ECS endpoint.")]
    UnknownOperation(String),
    /// An operation of ECS's model that Stevedore does not serve (yet).
    #[error("Operation {} of Amazon ECS is not implemented by Stevedore yet.", .0.name())]
    NotImplemented(Operation),
    /// The body is not JSON, or a member has the wrong JSON type.
    #[error("{0}")]
    Serialization(String),
    /// A parameter is missing, out of range or malformed.
    #[error("{0}")]
    InvalidParameter(String),
    /// The request is refused for a reason of the caller's (AWS's catch-all).
    #[error("{0}")]
    Client(String),
    /// The named cluster does not exist.
    #[error("Cluster not found.")]
    ClusterNotFound,
    /// DeleteCluster while container instances are registered.
    #[error("The Cluster cannot be deleted while Container Instances are active or draining.")]
    ClusterContainsContainerInstances,
    /// DeleteCluster while services are active.
    #[error("The Cluster cannot be deleted while Services are active.")]
    ClusterContainsServices,
    /// DeleteCluster while tasks are active.
    #[error("The Cluster cannot be deleted while Tasks are active.")]
    ClusterContainsTasks,
    /// PutAttributes/DeleteAttributes on an unknown target.
    #[error("{0}")]
    TargetNotFound(String),
    /// The named service does not exist in the cluster.
    #[error("Service not found.")]
    ServiceNotFound,
    /// The service deployment ARN names no deployment this service keeps.
    #[error("Service deployment not found.")]
    ServiceDeploymentNotFound,
    /// The named task set does not exist in the service.
    #[error("The specified task set does not exist.")]
    TaskSetNotFound,
    /// The service exists but is DRAINING or INACTIVE.
    #[error("Service was not ACTIVE.")]
    ServiceNotActive,
    /// Too many custom attributes.
    #[error("{0}")]
    AttributeLimitExceeded(String),
    /// A tagged resource does not exist.
    #[error("{0}")]
    ResourceNotFound(String),
    /// A request conflicts with an earlier one (e.g. a reused RunTask clientToken).
    #[error("{message}")]
    Conflict {
        /// What conflicts.
        message: String,
        /// The resources of the earlier request.
        resource_ids: Vec<String>,
    },
    /// The caller is not the one allowed to act on this resource (e.g. not the owner
    /// of the container instance), whatever its policies allow.
    #[error("{0}")]
    AccessDenied(String),
    /// The state store failed.
    #[error("The state store failed: {0}")]
    Store(#[from] StoreError),
    /// Compare-and-swap kept losing to concurrent writers.
    #[error("Too many concurrent updates to {0}; retry the request.")]
    Contention(String),
}

impl EcsError {
    /// The AWS error this is reported as.
    pub fn to_aws(&self) -> AwsError {
        let msg = self.to_string();
        let code = match self {
            Self::UnknownOperation(name) => {
                return wire::dispatch::unknown_operation(&Ecs::SPEC, name)
            }
            Self::NotImplemented(op) => {
                return wire::dispatch::not_implemented(&Ecs::SPEC, op.name())
            }
            Self::Serialization(_) => "SerializationException",
            Self::InvalidParameter(_) => "InvalidParameterException",
            Self::Client(_) => "ClientException",
            Self::ClusterNotFound => "ClusterNotFoundException",
            Self::ClusterContainsContainerInstances => "ClusterContainsContainerInstancesException",
            Self::ClusterContainsServices => "ClusterContainsServicesException",
            Self::ClusterContainsTasks => "ClusterContainsTasksException",
            Self::TargetNotFound(_) => "TargetNotFoundException",
            Self::ServiceNotFound => "ServiceNotFoundException",
            Self::ServiceNotActive => "ServiceNotActiveException",
            Self::TaskSetNotFound => "TaskSetNotFoundException",
            Self::ServiceDeploymentNotFound => "ServiceDeploymentNotFoundException",
            Self::AttributeLimitExceeded(_) => "AttributeLimitExceededException",
            Self::ResourceNotFound(_) => "ResourceNotFoundException",
            Self::AccessDenied(_) => "AccessDeniedException",
            Self::Conflict { resource_ids, .. } => {
                let mut e = AwsError::client("ConflictException", msg);
                e.extra
                    .insert("resourceIds".into(), serde_json::json!(resource_ids));
                return e;
            }
            // A store that cannot be reached now (etcd down or partitioned away): 503,
            // which SDKs retry, rather than a 500 the caller would take as a bug.
            Self::Store(StoreError::Unavailable(_)) => return AwsError::server(
                "ServiceUnavailableException",
                "The service is unavailable: its state store cannot be reached. Retry the request.",
            )
            .with_status(503),
            Self::Store(_) | Self::Contention(_) => {
                return AwsError::server("ServerException", msg)
            }
        };
        AwsError::client(code, msg)
    }
}

impl From<store::ObjectsError> for EcsError {
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
pub(crate) fn invalid<T>(msg: impl Into<String>) -> Result<T, EcsError> {
    Err(EcsError::InvalidParameter(msg.into()))
}
