//! Elastic Load Balancing v2: the operation table generated from botocore's model. The
//! query protocol's shapes are decoded by hand in `elbv2`; the data plane's contract is
//! [`crate::lb`].

pub mod operations;
