//! Unit tests of the service deployment history's pieces.

use super::*;

#[test]
fn ids_are_shaped_like_ecs_ones() {
    let d = deployment_record_id();
    assert_eq!(d.len(), 22);
    assert!(d
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    let r = revision_id();
    assert_eq!(r.len(), 19);
    assert!(r.bytes().all(|b| b.is_ascii_digit()));
}

#[test]
fn breaker_threshold_is_half_the_desired_count_within_3_and_200() {
    assert_eq!(breaker_threshold(0), 3);
    assert_eq!(breaker_threshold(4), 3);
    assert_eq!(breaker_threshold(9), 5);
    assert_eq!(breaker_threshold(1000), 200);
}

#[test]
fn finished_states_are_the_terminal_ones() {
    use ServiceDeploymentStatus as S;
    for s in [
        S::Successful,
        S::Stopped,
        S::RollbackSuccessful,
        S::RollbackFailed,
    ] {
        assert!(is_finished(Some(s)), "{s:?}");
    }
    for s in [
        S::Pending,
        S::InProgress,
        S::StopRequested,
        S::RollbackRequested,
        S::RollbackInProgress,
    ] {
        assert!(!is_finished(Some(s)), "{s:?}");
    }
}

#[test]
fn an_unknown_rolling_deployment_changes_nothing() {
    let mut h = History::default();
    h.completed("ecs-svc/9", 1.0);
    h.failed("ecs-svc/9", 3, 1.0);
    h.rolling_back("ecs-svc/9", "ecs-svc/10", "ecs-svc/8", "why", 1.0);
    assert!(h.deployments.is_empty());
    assert!(h.revisions.is_empty());
    assert_eq!(h.check_stop("arn:x", true), Ok(None));
}
