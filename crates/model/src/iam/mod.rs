//! AWS Identity and Access Management: the operation table generated from botocore's
//! model. The query protocol's shapes are decoded by hand in the `iam` crate.

pub mod operations;
