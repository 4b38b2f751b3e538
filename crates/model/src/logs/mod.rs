//! Amazon CloudWatch Logs: wire shapes generated from botocore's model, name and ARN
//! rules, and the service's constants.

pub mod names;
pub mod operations;
pub mod shapes;

/// The `X-Amz-Target` prefix of CloudWatch Logs (AWS JSON 1.1).
pub const TARGET_PREFIX: &str = "Logs_20140328";
/// The SigV4 signing name of CloudWatch Logs.
pub const SIGNING_NAME: &str = "logs";
