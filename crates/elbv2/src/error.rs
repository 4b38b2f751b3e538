//! ELBv2 errors and their one mapping to AWS's wire codes.
//!
//! The query protocol puts the shape's `error.code` on the wire (`TargetGroupNotFound`,
//! not `TargetGroupNotFoundException`), and botocore maps it back to the modeled class;
//! bad parameters are the unmodeled `ValidationError`, as AWS sends them.

use crate::{Elbv2, Operation};
use store::StoreError;
use wire::{AwsError, Service};

/// Everything an ELBv2 operation can refuse or fail with. Each variant is one modeled
/// exception of botocore's `elbv2` model (or a protocol-level error) with its message.
#[derive(Debug, thiserror::Error)]
pub enum Elbv2Error {
    /// `Action` names no operation of the ELBv2 model.
    #[error("The action '{0}' is not valid for this web service (Elastic Load Balancing 2015-12-01 as served by Stevedore).")]
    InvalidAction(String),
    /// An operation of the ELBv2 model that Stevedore does not serve (yet).
    #[error("Operation {} of Elastic Load Balancing is not implemented by Stevedore yet.", .0.name())]
    NotImplemented(Operation),
    /// A parameter is missing, malformed or out of range.
    #[error("{0}")]
    Validation(String),
    /// A load balancer named by ARN or name does not exist.
    #[error("{0}")]
    LoadBalancerNotFound(String),
    /// A target group named by ARN or name does not exist.
    #[error("{0}")]
    TargetGroupNotFound(String),
    /// A listener does not exist.
    #[error("{0}")]
    ListenerNotFound(String),
    /// A rule does not exist.
    #[error("{0}")]
    RuleNotFound(String),
    /// CreateLoadBalancer with a taken name and different settings.
    #[error("{0}")]
    DuplicateLoadBalancerName(String),
    /// CreateTargetGroup with a taken name and different settings.
    #[error("{0}")]
    DuplicateTargetGroupName(String),
    /// A listener already uses the port.
    #[error("{0}")]
    DuplicateListener(String),
    /// A tag key appears twice in one request.
    #[error("{0}")]
    DuplicateTagKeys(String),
    /// A rule already has the priority.
    #[error("{0}")]
    PriorityInUse(String),
    /// The target group is still used by a listener or rule.
    #[error("{0}")]
    ResourceInUse(String),
    /// A target id is malformed, or not registered where it must be.
    #[error("{0}")]
    InvalidTarget(String),
    /// Listener, load balancer and target group protocols do not fit together.
    #[error("{0}")]
    IncompatibleProtocols(String),
    /// A protocol AWS has but Stevedore does not serve (HTTPS, TLS, UDP, ...).
    #[error("{0}")]
    UnsupportedProtocol(String),
    /// An action is malformed or not allowed here.
    #[error("{0}")]
    InvalidLoadBalancerAction(String),
    /// The request is well-formed but the configuration it asks for is not allowed.
    #[error("{0}")]
    InvalidConfigurationRequest(String),
    /// The operation is not allowed on this resource (the default rule, deletion protection).
    #[error("{0}")]
    OperationNotPermitted(String),
    /// A target group would be used by a second load balancer.
    #[error("{0}")]
    TargetGroupAssociationLimit(String),
    /// More than one terminal action, or too many actions.
    #[error("{0}")]
    TooManyActions(String),
    /// A resource would carry more than the tag limit.
    #[error("{0}")]
    TooManyTags(String),
    /// A load balancer would have more listeners than its limit.
    #[error("{0}")]
    TooManyListeners(String),
    /// A load balancer would have more rules than its limit.
    #[error("{0}")]
    TooManyRules(String),
    /// A target group would have more targets than its limit.
    #[error("{0}")]
    TooManyTargets(String),
    /// An action forwards to more target groups than allowed.
    #[error("{0}")]
    TooManyTargetGroups(String),
    /// A security group does not exist (or cannot be enforced here).
    #[error("{0}")]
    InvalidSecurityGroup(String),
    /// The state store failed.
    #[error("The state store failed: {0}")]
    Store(#[from] StoreError),
    /// Compare-and-swap kept losing to concurrent writers.
    #[error("Too many concurrent updates to {0}; retry the request.")]
    Contention(String),
}

impl From<store::ObjectsError> for Elbv2Error {
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

impl Elbv2Error {
    /// The query-protocol error code (`<Code>`): the modeled shape's `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidAction(_) | Self::NotImplemented(_) => "InvalidAction",
            Self::Validation(_) => "ValidationError",
            Self::LoadBalancerNotFound(_) => "LoadBalancerNotFound",
            Self::TargetGroupNotFound(_) => "TargetGroupNotFound",
            Self::ListenerNotFound(_) => "ListenerNotFound",
            Self::RuleNotFound(_) => "RuleNotFound",
            Self::DuplicateLoadBalancerName(_) => "DuplicateLoadBalancerName",
            Self::DuplicateTargetGroupName(_) => "DuplicateTargetGroupName",
            Self::DuplicateListener(_) => "DuplicateListener",
            Self::DuplicateTagKeys(_) => "DuplicateTagKeys",
            Self::PriorityInUse(_) => "PriorityInUse",
            Self::ResourceInUse(_) => "ResourceInUse",
            Self::InvalidTarget(_) => "InvalidTarget",
            Self::IncompatibleProtocols(_) => "IncompatibleProtocols",
            Self::UnsupportedProtocol(_) => "UnsupportedProtocol",
            Self::InvalidLoadBalancerAction(_) => "InvalidLoadBalancerAction",
            Self::InvalidConfigurationRequest(_) => "InvalidConfigurationRequest",
            Self::OperationNotPermitted(_) => "OperationNotPermitted",
            Self::TargetGroupAssociationLimit(_) => "TargetGroupAssociationLimit",
            Self::TooManyActions(_) => "TooManyActions",
            Self::TooManyTags(_) => "TooManyTags",
            Self::TooManyListeners(_) => "TooManyListeners",
            Self::TooManyRules(_) => "TooManyRules",
            Self::TooManyTargets(_) => "TooManyTargets",
            Self::TooManyTargetGroups(_) => "TooManyTargetGroups",
            Self::InvalidSecurityGroup(_) => "InvalidSecurityGroup",
            // Unmodeled server faults; botocore retries `ServiceUnavailable`.
            Self::Store(_) | Self::Contention(_) => "ServiceUnavailable",
        }
    }

    /// The AWS error this is reported as (HTTP 400 for every modeled client error, 503
    /// for store failures and contention so clients retry).
    pub fn to_aws(&self) -> AwsError {
        match self {
            Self::InvalidAction(name) => wire::dispatch::unknown_operation(&Elbv2::SPEC, name),
            Self::NotImplemented(op) => wire::dispatch::not_implemented(&Elbv2::SPEC, op.name()),
            Self::Store(_) | Self::Contention(_) => {
                AwsError::server(self.code(), self.to_string()).with_status(503)
            }
            _ => AwsError::client(self.code(), self.to_string()),
        }
    }
}

/// Shorthand for the most common refusal.
pub(crate) fn invalid<T>(msg: impl Into<String>) -> Result<T, Elbv2Error> {
    Err(Elbv2Error::Validation(msg.into()))
}
