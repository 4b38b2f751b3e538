//! Parses arbitrary bytes as an identity, resource and trust policy: must never panic;
//! refusals render and map to an AWS code; whatever parses evaluates without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use policy::{evaluate, Policy, PolicyKind, PolicySet, Principal, Request};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = policy::size::policy_size(text);
    let requests = [
        Request::new(
            Principal::user("arn:aws:iam::123456789012:user/alice").with_tag("team", "web"),
            "ecs:RunTask",
            "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1",
        )
        .source_ip("10.0.0.1".parse().expect("literal address"))
        .secure_transport(true)
        .at_epoch_millis(1_700_000_000_000)
        .request_tags([("env", "prod")]),
        Request::new(Principal::service("ecs-tasks.amazonaws.com"), "sts:AssumeRole", "*"),
    ];
    for kind in [PolicyKind::Identity, PolicyKind::Resource, PolicyKind::Trust] {
        match Policy::parse(text, kind) {
            Ok(p) => {
                for req in &requests {
                    let set = match kind {
                        PolicyKind::Identity => PolicySet { identity: &[&p], ..PolicySet::default() },
                        _ => PolicySet { resource: &[&p], ..PolicySet::default() },
                    };
                    let d = evaluate(req, set);
                    if let Some(m) = policy::AccessDenied::for_decision(req, &d) {
                        assert!(!m.to_string().is_empty());
                    }
                }
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
                assert!(matches!(e.code(), "MalformedPolicyDocument" | "LimitExceeded"));
            }
        }
    }
});
