//! Application Auto Scaling: the operation table generated from botocore's model and the
//! service's wire constants.

pub mod operations;

/// The `X-Amz-Target` prefix of Application Auto Scaling (AWS JSON 1.1).
pub const TARGET_PREFIX: &str = "AnyScaleFrontendService";
/// The SigV4 signing name of Application Auto Scaling.
pub const SIGNING_NAME: &str = "application-autoscaling";
