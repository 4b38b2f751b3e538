//! Test support shared by every service crate (feature `testing`): the checks each
//! service's operation table must pass, written once instead of once per service.

use crate::service::{Call, Caller, Input, Service, ServiceError};

/// How every operation of a service answered [`every_operation_answers`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Answered {
    /// Operations that ran a handler (answered a body or one of their errors).
    pub served: usize,
    /// Operations answered as not implemented.
    pub not_implemented: usize,
}

/// Runs every operation in `S`'s table with the same `input` (typically an empty JSON
/// object or a query form naming no members) and checks that each one either runs its
/// handler — answering a body, an error botocore models for it, or one of
/// `decoding_codes` (the codes a body that does not fit the shape gets) — or is answered
/// as not implemented. Also checks that every operation's name round-trips through the
/// table. Panics (it is a test helper) naming the first operation that does neither.
pub async fn every_operation_answers<S: Service>(
    service: &S,
    input: Input<'_>,
    caller: &Caller,
    decoding_codes: &[&str],
) -> Answered {
    let table = S::OPERATIONS;
    let mut answered = Answered::default();
    for &op in table.all {
        let name = (table.name)(op);
        assert!(
            (table.from_name)(name).is_some(),
            "{name} does not round-trip through the operation table"
        );
        let call = Call {
            input,
            caller,
            request_id: "conformance",
        };
        match service.handle(op, call).await {
            Err(ServiceError::NotImplemented) => answered.not_implemented += 1,
            Ok(_) => answered.served += 1,
            Err(ServiceError::Aws(e)) => {
                answered.served += 1;
                assert!(
                    decoding_codes.contains(&e.code.as_str())
                        || (table.errors)(op).contains(&e.code.as_str()),
                    "{name} answered {}, which botocore does not model for it: {}",
                    e.code,
                    e.message
                );
            }
        }
    }
    answered
}

/// Asks `S` what every operation in its table needs with the same `input` (as
/// [`every_operation_answers`] sends it) and checks that each maps to at least one
/// [`crate::Access`], every one of them an action of `prefix` (or `iam:PassRole`, which
/// services check on roles they are handed), naming an action and a resource. Nothing is
/// silently allowed. Returns how many accesses were mapped; panics naming the first
/// operation that maps to none.
pub async fn every_operation_needs_access<S: Service>(
    service: &S,
    input: Input<'_>,
    caller: &Caller,
    prefix: &str,
) -> usize {
    let table = S::OPERATIONS;
    let mut mapped = 0;
    for &op in table.all {
        let name = (table.name)(op);
        let call = Call {
            input,
            caller,
            request_id: "conformance",
        };
        let needs = match service.authorize(op, call).await {
            Ok(needs) => needs,
            Err(ServiceError::NotImplemented) => panic!("{name} has no authorization mapping"),
            Err(ServiceError::Aws(e)) => {
                panic!(
                    "{name} failed to map to an access: {} {}",
                    e.code, e.message
                )
            }
        };
        assert!(!needs.is_empty(), "{name} maps to no IAM action");
        for need in &needs {
            let passes_role = need.action() == "iam:PassRole";
            assert!(
                need.prefix() == prefix || passes_role,
                "{name} maps to {}, not a {prefix}: action",
                need.action()
            );
            assert!(
                !need.action_name().is_empty() && !need.resource().is_empty(),
                "{name} maps to an empty action or resource"
            );
        }
        mapped += needs.len();
    }
    mapped
}
