//! Why a policy document was refused, worded as IAM words it.
//!
//! `Display` is the exact message AWS puts in the error body; [`PolicyError::code`] is the
//! AWS error code the edge should answer with (`MalformedPolicyDocument` for a document
//! that does not parse or validate, `LimitExceeded` for one that is too large).

/// A policy document IAM would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not JSON, or JSON of the wrong shape (`detail` is for logs, never for the caller).
    #[error("Syntax errors in policy.")]
    Syntax {
        /// What exactly was wrong, for logs and tests.
        detail: String,
    },
    /// A `Version` other than `2012-10-17` or `2008-10-17`.
    #[error("The policy failed legacy parsing")]
    LegacyParsing,
    /// A top-level or statement field the grammar does not have.
    #[error("Unknown field {0}")]
    UnknownField(String),
    /// `Principal`/`NotPrincipal` in an identity policy.
    #[error("Policy document should not specify a principal.")]
    PrincipalNotAllowed,
    /// A resource or trust policy statement without `Principal`/`NotPrincipal`.
    #[error("Missing required field Principal")]
    MissingPrincipal,
    /// A statement without `Effect`.
    #[error("Missing required field Effect")]
    MissingEffect,
    /// An `Effect` other than `Allow` or `Deny`.
    #[error("Invalid effect: {0}")]
    InvalidEffect(String),
    /// A statement without `Action`/`NotAction`.
    #[error("Policy statement must contain actions.")]
    MissingAction,
    /// An identity policy statement without `Resource`/`NotResource`.
    #[error("Policy statement must contain resources.")]
    MissingResource,
    /// A trust policy statement with `Resource`/`NotResource`.
    #[error("Has prohibited field Resource")]
    ResourceNotAllowed,
    /// A trust policy statement allowing something other than `sts:AssumeRole*`.
    #[error("AssumeRole policy may only specify STS AssumeRole actions.")]
    TrustActionNotAllowed,
    /// A resource that is neither `*` nor an ARN.
    #[error("Resource {0} must be in ARN format or \"*\".")]
    ResourceNotArn(String),
    /// An action or condition key without a `vendor:` prefix.
    #[error("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.")]
    MissingVendor,
    /// An action or condition key with more than one colon.
    #[error("Actions/Condition can contain only one colon.")]
    TooManyColons,
    /// A principal IAM does not accept; the field is rendered as IAM does (`"AWS":"x"`).
    #[error("Invalid principal in policy: {0}")]
    InvalidPrincipal(String),
    /// A `Sid` outside `[0-9A-Za-z]*` in an IAM policy.
    #[error("Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*")]
    InvalidSid,
    /// A managed policy (or policy version) above its quota.
    #[error("Cannot exceed quota for PolicySize: {limit}")]
    PolicySizeQuota {
        /// The quota, in non-whitespace characters.
        limit: usize,
    },
    /// A role trust policy above its quota.
    #[error("Cannot exceed quota for ACLSizePerRole: {limit}")]
    TrustPolicySizeQuota {
        /// The quota, in non-whitespace characters.
        limit: usize,
    },
    /// The inline policies of a user, role or group together above their quota.
    #[error("Maximum policy size of {limit} bytes exceeded for {owner} {name}")]
    InlineSizeQuota {
        /// `user`, `role` or `group`.
        owner: &'static str,
        /// The user's, role's or group's name.
        name: String,
        /// The quota, in non-whitespace characters.
        limit: usize,
    },
}

impl PolicyError {
    /// The AWS error code this answers with (IAM's query protocol).
    pub fn code(&self) -> &'static str {
        match self {
            Self::PolicySizeQuota { .. }
            | Self::TrustPolicySizeQuota { .. }
            | Self::InlineSizeQuota { .. } => "LimitExceeded",
            _ => "MalformedPolicyDocument",
        }
    }

    pub(crate) fn syntax(detail: impl Into<String>) -> Self {
        Self::Syntax {
            detail: detail.into(),
        }
    }
}
