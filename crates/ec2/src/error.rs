//! EC2's errors, each with the code and message AWS answers (botocore reads the code
//! from the `<Errors>` document); mapped to [`wire::AwsError`] in one place.

/// Why an EC2 request failed.
#[derive(Debug, thiserror::Error)]
pub enum Ec2Error {
    /// A parameter's value is not acceptable.
    #[error("{0}")]
    InvalidParameterValue(String),
    /// A parameter combination is not acceptable.
    #[error("{0}")]
    InvalidParameterCombination(String),
    /// A required parameter is absent.
    #[error("The request must contain the parameter {0}")]
    MissingParameter(String),
    /// No such VPC.
    #[error("The vpc ID '{0}' does not exist")]
    VpcNotFound(String),
    /// A VPC CIDR outside what VPCs accept (/16 to /28).
    #[error("The CIDR '{0}' is invalid.")]
    VpcRange(String),
    /// No such subnet.
    #[error("The subnet ID '{0}' does not exist")]
    SubnetNotFound(String),
    /// A subnet CIDR outside its VPC or of a bad size.
    #[error("The CIDR '{0}' is invalid.")]
    SubnetRange(String),
    /// A subnet CIDR overlapping another subnet of the VPC.
    #[error("The CIDR '{0}' conflicts with another subnet")]
    SubnetConflict(String),
    /// No such security group (the message names how it was looked up).
    #[error("{0}")]
    GroupNotFound(String),
    /// A group id that is not `sg-` and hex.
    #[error("Invalid id: \"{0}\" (expecting \"sg-...\")")]
    GroupIdMalformed(String),
    /// A group name already taken in the VPC.
    #[error("The security group '{name}' already exists for VPC '{vpc}'")]
    GroupDuplicate {
        /// The name.
        name: String,
        /// The VPC.
        vpc: String,
    },
    /// The rule exists already.
    #[error("the specified rule \"{0}\" already exists")]
    PermissionDuplicate(String),
    /// Revoking a rule the group does not have.
    #[error("The specified rule does not exist in this security group.")]
    PermissionNotFound,
    /// A rule that cannot be (bad protocol, ports).
    #[error("{0}")]
    PermissionMalformed(String),
    /// A group is over AWS's rules-per-group quota.
    #[error("The maximum number of rules per security group has been reached.")]
    RulesLimit,
    /// Deleting something others depend on.
    #[error("{0}")]
    DependencyViolation(String),
    /// The default group cannot be deleted.
    #[error("the specified group: \"{id}\" name: \"default\" cannot be deleted by a user")]
    CannotDelete {
        /// The group id.
        id: String,
    },
    /// No such network interface.
    #[error("The networkInterface ID '{0}' does not exist")]
    InterfaceNotFound(String),
    /// A resource id CreateTags/DeleteTags does not know.
    #[error("The ID '{0}' is not valid")]
    InvalidId(String),
    /// DryRun set on a request that would have succeeded.
    #[error("Request would have succeeded, but DryRun flag is set.")]
    DryRun,
    /// The state store failed.
    #[error("The state store failed: {0}")]
    Store(#[from] store::StoreError),
    /// A fault of Stevedore's own.
    #[error("{0}")]
    Internal(String),
}

impl Ec2Error {
    /// The EC2 error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidParameterValue(_) => "InvalidParameterValue",
            Self::InvalidParameterCombination(_) => "InvalidParameterCombination",
            Self::MissingParameter(_) => "MissingParameter",
            Self::VpcNotFound(_) => "InvalidVpcID.NotFound",
            Self::VpcRange(_) => "InvalidVpc.Range",
            Self::SubnetNotFound(_) => "InvalidSubnetID.NotFound",
            Self::SubnetRange(_) => "InvalidSubnet.Range",
            Self::SubnetConflict(_) => "InvalidSubnet.Conflict",
            Self::GroupNotFound(_) => "InvalidGroup.NotFound",
            Self::GroupIdMalformed(_) => "InvalidGroupId.Malformed",
            Self::GroupDuplicate { .. } => "InvalidGroup.Duplicate",
            Self::PermissionDuplicate(_) => "InvalidPermission.Duplicate",
            Self::PermissionNotFound => "InvalidPermission.NotFound",
            Self::PermissionMalformed(_) => "InvalidPermission.Malformed",
            Self::RulesLimit => "RulesPerSecurityGroupLimitExceeded",
            Self::DependencyViolation(_) => "DependencyViolation",
            Self::CannotDelete { .. } => "CannotDelete",
            Self::InterfaceNotFound(_) => "InvalidNetworkInterfaceID.NotFound",
            Self::InvalidId(_) => "InvalidID",
            Self::DryRun => "DryRunOperation",
            // EC2's documented 503 for a temporary failure of the server (etcd down).
            Self::Store(store::StoreError::Unavailable(_)) => "ServiceUnavailable",
            Self::Store(_) | Self::Internal(_) => "InternalError",
        }
    }

    /// `InvalidGroup.NotFound` for a group id.
    pub fn group_not_found(id: &str) -> Self {
        Self::GroupNotFound(format!("The security group '{id}' does not exist"))
    }
}

impl From<Ec2Error> for wire::AwsError {
    fn from(e: Ec2Error) -> Self {
        let status = match &e {
            Ec2Error::DryRun => 412,
            Ec2Error::Store(store::StoreError::Unavailable(_)) => 503,
            Ec2Error::Store(_) | Ec2Error::Internal(_) => 500,
            _ => 400,
        };
        if status >= 500 {
            tracing::error!(error = %e, "EC2 request failed.");
        }
        wire::AwsError::client(e.code(), e.to_string()).with_status(status)
    }
}

impl From<Ec2Error> for wire::ServiceError {
    fn from(e: Ec2Error) -> Self {
        Self::Aws(e.into())
    }
}
