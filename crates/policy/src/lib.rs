//! IAM policies as a pure library: parsing and validation of policy documents with IAM's
//! error messages and size quotas, a compiled form evaluated cheaply on every request
//! (AWS's single-account evaluation logic, conditions and policy variables), the wording
//! of `AccessDenied`, and the AWS managed policies ECS users attach.
//!
//! ```
//! use policy::{evaluate, Policy, PolicyKind, PolicySet, Principal, Request};
//!
//! let allow = Policy::parse(
//!     r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:Describe*","Resource":"*"}}"#,
//!     PolicyKind::Identity,
//! )?;
//! let alice = Principal::user("arn:aws:iam::123456789012:user/alice");
//! let req = Request::new(alice, "ecs:DescribeClusters", "*");
//! let set = PolicySet { identity: &[&allow], ..PolicySet::default() };
//! assert!(evaluate(&req, set).is_allowed());
//! # Ok::<(), policy::PolicyError>(())
//! ```

mod condition;
mod context;
mod document;
mod error;
mod eval;
pub mod managed;
mod message;
mod pattern;
pub mod size;
mod time;

pub use context::{ContextValue, Principal, PrincipalKind, Request, Scalar};
pub use document::{Effect, Policy, PolicyKind, Statement, Version};
pub use error::PolicyError;
pub use eval::{
    evaluate, evaluate_for, AllowedBy, Decision, Missing, PolicySet, PolicySource, StatementRef,
};
pub use message::{AccessDenied, DenyReason};
