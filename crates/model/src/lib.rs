//! `model` owns the shapes Stevedore speaks and stores: the AWS request/response types
//! (generated from botocore's models, so member names and types are AWS's), ARNs and
//! identifiers, and the pure validation rules AWS applies to them.
//!
//! It must stay pure: no I/O, no async runtime, no clock. Time and randomness come in as
//! arguments.

pub mod acs;
pub mod appscaling;
pub mod autoscaling;
pub mod cloudwatch;
pub mod ecr;
pub mod ecs;
pub mod elbv2;
pub mod iam;
pub mod instance_identity;
pub mod lb;
pub mod logs;
pub mod region;
pub mod sts;
