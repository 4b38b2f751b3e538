//! `wire` owns the AWS protocols Stevedore speaks: SigV4 request verification, the
//! `X-Amz-Target` / `Action=` dispatch, the AWS JSON 1.0/1.1 error envelope and the query
//! (form) decoding. It knows nothing of ECS or of storage; services hand it their errors
//! as [`AwsError`] at the edge.

pub mod dispatch;
pub mod error;
pub mod json;
pub mod pagination;
pub mod query;
pub mod sigv4;

pub use dispatch::{JsonVersion, Target};
pub use error::AwsError;
