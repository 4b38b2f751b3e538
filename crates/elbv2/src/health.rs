//! Target health as DescribeTargetHealth reports it: the pure merge of registration
//! state (registered, draining), whether the target group is in use, whether health
//! checks are enabled, and the data plane's last report; plus the draining expiry rule.

use crate::state::{State, StoredTarget, StoredTargetGroup};
use model::lb::{Health, TargetHealthState};

/// `TargetHealth`: a state with its reason code and description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetHealthView {
    /// `TargetHealthStateEnum`.
    pub state: TargetHealthState,
    /// `TargetHealthReasonEnum`; absent when healthy.
    pub reason: Option<String>,
    /// A sentence; absent when healthy.
    pub description: Option<String>,
}

impl TargetHealthView {
    fn new(state: TargetHealthState, reason: &str, description: &str) -> Self {
        Self {
            state,
            reason: Some(reason.to_owned()),
            description: Some(description.to_owned()),
        }
    }
}

/// What a target's registration looks like at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registration {
    /// Not registered in the group (never, or its draining ended).
    None,
    /// Registered and receiving traffic.
    Active,
    /// Deregistered, its delay not yet over.
    Draining,
}

/// Merges everything known about one target into the state AWS would show. The order
/// matters and follows AWS: registration first, then use, then health checking.
pub fn compute_health(
    registration: Registration,
    in_use: bool,
    health_check_enabled: bool,
    report: Option<&Health>,
) -> TargetHealthView {
    match registration {
        Registration::None => {
            return TargetHealthView::new(
                TargetHealthState::Unused,
                "Target.NotRegistered",
                "Target is not registered to the target group",
            )
        }
        Registration::Draining => {
            return TargetHealthView::new(
                TargetHealthState::Draining,
                "Target.DeregistrationInProgress",
                "Target deregistration is in progress",
            )
        }
        Registration::Active => {}
    }
    if !in_use {
        return TargetHealthView::new(
            TargetHealthState::Unused,
            "Target.NotInUse",
            "Target group is not configured to receive traffic from the load balancer",
        );
    }
    if !health_check_enabled {
        return TargetHealthView::new(
            TargetHealthState::Unavailable,
            "Target.HealthCheckDisabled",
            "Health checks are disabled",
        );
    }
    match report {
        None => TargetHealthView::new(
            TargetHealthState::Initial,
            "Elb.RegistrationInProgress",
            "Target registration is in progress",
        ),
        Some(Health::Initial) => TargetHealthView::new(
            TargetHealthState::Initial,
            "Elb.InitialHealthChecking",
            "Initial health checks in progress",
        ),
        Some(Health::Healthy) => TargetHealthView {
            state: TargetHealthState::Healthy,
            reason: None,
            description: None,
        },
        Some(Health::Unhealthy {
            reason,
            description,
        }) => TargetHealthView::new(TargetHealthState::Unhealthy, reason, description),
    }
}

/// The registration state of a stored target at `now` under `delay_ms`.
pub fn registration(t: &StoredTarget, delay_ms: i64, now: i64) -> Registration {
    match t.deregistered_ms {
        None => Registration::Active,
        Some(at) if now < at.saturating_add(delay_ms) => Registration::Draining,
        Some(_) => Registration::None,
    }
}

/// The group's targets still registered or draining at `now`, each with its state.
pub fn live_targets(
    tg: &StoredTargetGroup,
    now: i64,
) -> impl Iterator<Item = (&StoredTarget, Registration)> {
    let delay = crate::target_groups::deregistration_delay_ms(tg);
    tg.targets
        .iter()
        .filter_map(move |t| match registration(t, delay, now) {
            Registration::None => None,
            r => Some((t, r)),
        })
}

/// Removes every target whose draining is over at `now`; returns how many.
pub fn sweep_expired(w: &mut State, now: i64) -> usize {
    let mut removed = 0;
    for tg in w.tgs.values_mut() {
        let delay = crate::target_groups::deregistration_delay_ms(tg);
        let before = tg.targets.len();
        tg.targets
            .retain(|t| registration(t, delay, now) != Registration::None);
        removed += before - tg.targets.len();
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(deregistered_ms: Option<i64>) -> StoredTarget {
        StoredTarget {
            id: "10.0.0.1".into(),
            port: 80,
            az: None,
            registered_ms: 0,
            deregistered_ms,
            address: None,
        }
    }

    #[test]
    fn draining_lasts_exactly_the_deregistration_delay() {
        let t = target(Some(1_000));
        assert_eq!(registration(&t, 300_000, 1_000), Registration::Draining);
        assert_eq!(registration(&t, 300_000, 300_999), Registration::Draining);
        assert_eq!(registration(&t, 300_000, 301_000), Registration::None);
        assert_eq!(registration(&t, 0, 1_000), Registration::None);
        assert_eq!(
            registration(&target(None), 0, i64::MAX),
            Registration::Active
        );
    }

    #[test]
    fn health_follows_registration_then_use_then_checks() {
        let h = |r, u, e, rep| compute_health(r, u, e, rep).state.as_str();
        assert_eq!(
            h(Registration::None, true, true, Some(&Health::Healthy)),
            "unused"
        );
        assert_eq!(
            h(Registration::Draining, true, true, Some(&Health::Healthy)),
            "draining"
        );
        assert_eq!(
            h(Registration::Active, false, true, Some(&Health::Healthy)),
            "unused"
        );
        assert_eq!(
            h(Registration::Active, true, false, Some(&Health::Healthy)),
            "unavailable"
        );
        assert_eq!(h(Registration::Active, true, true, None), "initial");
        assert_eq!(
            h(Registration::Active, true, true, Some(&Health::Initial)),
            "initial"
        );
        assert_eq!(
            h(Registration::Active, true, true, Some(&Health::Healthy)),
            "healthy"
        );
        let bad = Health::Unhealthy {
            reason: "Target.Timeout".into(),
            description: "Request timed out".into(),
        };
        let v = compute_health(Registration::Active, true, true, Some(&bad));
        assert_eq!(
            (v.state.as_str(), v.reason.as_deref()),
            ("unhealthy", Some("Target.Timeout"))
        );
        let unused = compute_health(Registration::Active, false, true, None);
        assert_eq!(unused.reason.as_deref(), Some("Target.NotInUse"));
        let initial = compute_health(Registration::Active, true, true, None);
        assert_eq!(
            initial.reason.as_deref(),
            Some("Elb.RegistrationInProgress")
        );
    }
}
