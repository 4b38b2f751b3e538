//! Which service and operation a request is for, and the one dispatch that serves it.
//! AWS JSON protocols name them in `X-Amz-Target: <prefix>.<Operation>`; query protocols
//! in the `Action` and `Version` form parameters; Smithy RPC v2 CBOR in the path
//! `/service/<service>/operation/<Operation>`. (The registry's `/v2/` routes sit beside
//! the dispatch: they use registry tokens, not SigV4.)

mod authorize;
pub mod front;
pub mod route;
mod serve;

pub use authorize::{access_denied, authorize, authorize_foreign, PeerAddr};
pub use serve::{
    not_implemented, unknown_operation, wrong_service, Dispatch, Identity, KeyError, Keys, Observer,
};

/// The AWS JSON protocol version a service speaks; it decides the content type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonVersion {
    /// `application/x-amz-json-1.0`
    V1_0,
    /// `application/x-amz-json-1.1`
    V1_1,
}

impl JsonVersion {
    /// The `Content-Type` of requests and responses.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::V1_0 => "application/x-amz-json-1.0",
            Self::V1_1 => "application/x-amz-json-1.1",
        }
    }
}

/// A parsed `X-Amz-Target`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target<'a> {
    /// Service prefix, e.g. `AmazonEC2ContainerServiceV20141113`.
    pub prefix: &'a str,
    /// Operation name, e.g. `ListClusters`.
    pub operation: &'a str,
}

impl<'a> Target<'a> {
    /// Splits `prefix.Operation` on the last dot; `None` when either side is empty.
    pub fn parse(value: &'a str) -> Option<Self> {
        let (prefix, operation) = value.rsplit_once('.')?;
        (!prefix.is_empty() && !operation.is_empty()).then_some(Self { prefix, operation })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_splits_on_the_last_dot() {
        let t = Target::parse("AmazonEC2ContainerServiceV20141113.ListClusters").expect("valid");
        assert_eq!(t.prefix, "AmazonEC2ContainerServiceV20141113");
        assert_eq!(t.operation, "ListClusters");
        assert_eq!(Target::parse("a.b.C").map(|t| t.prefix), Some("a.b"));
        assert!(Target::parse("NoDot").is_none());
        assert!(Target::parse(".X").is_none());
        assert!(Target::parse("X.").is_none());
    }
}
