//! Amazon CloudWatch (metrics): the operation table generated from botocore's model and
//! the service's wire constants.

pub mod operations;

/// The `X-Amz-Target` prefix of CloudWatch (AWS JSON 1.0) and its Smithy service name
/// in RPC v2 CBOR paths.
pub const TARGET_PREFIX: &str = "GraniteServiceVersion20100801";
/// The SigV4 signing name of CloudWatch.
pub const SIGNING_NAME: &str = "monitoring";
/// The query protocol's API version.
pub const API_VERSION: &str = "2010-08-01";
/// The query protocol's XML namespace.
pub const XML_NAMESPACE: &str = "http://monitoring.amazonaws.com/doc/2010-08-01/";
