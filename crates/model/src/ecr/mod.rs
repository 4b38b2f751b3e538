//! Amazon ECR: wire shapes generated from botocore's model, and the service's constants.

pub mod operations;
pub mod shapes;

/// The `X-Amz-Target` prefix of ECR (AWS JSON 1.1).
pub const TARGET_PREFIX: &str = "AmazonEC2ContainerRegistry_V20150921";
/// The SigV4 signing name of ECR.
pub const SIGNING_NAME: &str = "ecr";
