//! Amazon ECS: wire shapes, ARNs and validation.

pub mod arn;
pub mod names;
pub mod operations;
pub mod shapes;
pub mod status;
pub mod task_definition;

/// The `X-Amz-Target` prefix of ECS (AWS JSON 1.1).
pub const TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113";
/// The SigV4 signing name of ECS.
pub const SIGNING_NAME: &str = "ecs";
