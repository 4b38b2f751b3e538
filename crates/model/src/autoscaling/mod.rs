//! EC2 Auto Scaling: the operation table generated from botocore's model. The query
//! protocol's shapes are decoded by hand in the `autoscaling` crate.

pub mod operations;
