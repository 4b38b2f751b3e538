//! `wire` owns the AWS protocols Stevedore speaks: SigV4 request verification, the
//! [`Service`] contract every API implements, the one [`Dispatch`] that picks a service
//! and operation from `X-Amz-Target` / `Action`+`Version` / the RPC v2 CBOR path, the
//! error envelopes of every protocol ([`envelope`]), and the JSON and query (form)
//! decoding. It knows nothing of ECS or of storage; services hand it their errors as
//! [`AwsError`] at the edge.

mod allowed;
#[cfg(feature = "testing")]
pub mod conformance;
pub mod dispatch;
pub mod ec2;
pub mod envelope;
pub mod error;
pub mod json;
pub mod pagination;
pub mod query;
pub mod service;
pub mod sigv4;
pub mod xml;

pub use dispatch::{Dispatch, Identity, JsonVersion, KeyError, Keys, Observer, PeerAddr, Target};
pub use error::AwsError;
pub use service::{
    Access, Call, Caller, Input, OperationTable, Protocol, Service, ServiceError, ServiceSpec,
};
