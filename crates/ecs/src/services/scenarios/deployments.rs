//! Rolling updates within min/max percent, scaling, the circuit breaker and deletion.

use super::{Fate, Sim};
use model::ecs::shapes::DeploymentRolloutState;
use reconcile::Phase;

/// Rolls a steady service of `desired` to a new deployment and checks the bounds held
/// at every round: healthy never below `min`% (rounded up), live never above `max`%
/// (rounded down), and the new deployment completes alone.
fn roll(desired: i32, min: i32, max: i32, instances: usize) -> Sim {
    let mut sim = Sim::steady(desired, min, max, instances);
    let new = sim.deploy();
    let rounds = sim.converge(60);
    assert!(rounds < 60, "the rollout converges");
    let d = u32::try_from(desired).expect("desired");
    let floor = reconcile::floor(d, u32::try_from(min).expect("min")) as usize;
    let ceiling = reconcile::ceiling(d, u32::try_from(max).expect("max")) as usize;
    assert!(
        sim.max_live() <= ceiling,
        "live {} above ceiling {ceiling}",
        sim.max_live()
    );
    assert!(
        sim.min_healthy() >= floor,
        "healthy {} below floor {floor}",
        sim.min_healthy()
    );
    assert_eq!(sim.rollout(&new), Some(DeploymentRolloutState::Completed));
    assert_eq!(sim.live_of(&new), desired as usize);
    assert_eq!(
        sim.st.service.deployments.as_ref().map(Vec::len),
        Some(1),
        "the old deployment is retired"
    );
    sim
}

#[test]
fn stop_never_precedes_replacement_when_min_healthy_is_100() {
    let sim = roll(4, 100, 200, 4);
    // Every old task's stop comes after some new task was started.
    let first_start = sim.log.iter().position(|l| l.starts_with("start"));
    let first_stop = sim.log.iter().position(|l| l.starts_with("stop"));
    assert!(first_start < first_stop, "{:?}", sim.log);
    assert!(sim.min_healthy() >= 4);
}

#[test]
fn rolling_update_with_0_100_stops_first_and_never_exceeds_desired() {
    let sim = roll(4, 0, 100, 4);
    assert!(sim.max_live() <= 4);
    assert!(sim.log[0].starts_with("stop"), "{:?}", sim.log);
}

#[test]
fn rolling_update_with_50_200_keeps_half_of_ten_healthy() {
    let sim = roll(10, 50, 200, 5);
    assert!(sim.min_healthy() >= 5);
}

#[test]
fn rolling_update_with_100_200_of_ten_never_drops_below_ten_healthy() {
    let sim = roll(10, 100, 200, 5);
    assert!(sim.min_healthy() >= 10);
    assert!(sim.max_live() <= 20);
}

#[test]
fn rolling_update_with_100_150_of_ten_starts_at_most_five_extra() {
    let sim = roll(10, 100, 150, 5);
    assert!(sim.max_live() <= 15);
    assert!(sim.min_healthy() >= 10);
}

#[test]
fn rolling_update_of_one_task_with_100_200_replaces_before_stopping() {
    let sim = roll(1, 100, 200, 2);
    assert_eq!(sim.min_healthy(), 1);
    assert!(sim.log[0].starts_with("start"), "{:?}", sim.log);
}

#[test]
fn rolling_update_of_one_task_with_0_100_stops_then_starts() {
    let sim = roll(1, 0, 100, 2);
    assert_eq!(sim.max_live(), 1);
    assert!(sim.log[0].starts_with("stop"), "{:?}", sim.log);
}

#[test]
fn a_completed_rollout_says_so_once_and_reaches_steady_state() {
    let sim = roll(2, 100, 200, 2);
    let events = sim.events();
    let completed = events
        .iter()
        .filter(|e| e.contains("(deployment ecs-svc/2) deployment completed"))
        .count();
    assert_eq!(completed, 1, "{events:?}");
    assert!(events.last().is_some_and(|e| e.contains("steady state")));
}

#[test]
fn scale_up_starts_only_the_difference() {
    let mut sim = Sim::steady(2, 100, 200, 2);
    sim.set_desired(5);
    let act = sim.round().expect("acts");
    assert_eq!(act.start.map(|s| s.count), Some(3));
    assert!(act.stop.is_empty());
    sim.settle();
    sim.converge(10);
    assert_eq!(sim.in_phase(Phase::Running).len(), 5);
}

#[test]
fn scale_down_stops_the_newest_tasks_first() {
    let mut sim = Sim::steady(3, 100, 200, 3);
    sim.set_desired(5);
    sim.round();
    sim.settle();
    // The two newest tasks are t4 and t5.
    sim.set_desired(3);
    let act = sim.round().expect("acts");
    let mut stopped: Vec<&str> = act.stop.iter().map(|p| p.stop.task.as_str()).collect();
    stopped.sort_unstable();
    assert_eq!(stopped, ["t4", "t5"]);
}

#[test]
fn scaling_to_zero_stops_everything_and_is_steady() {
    let mut sim = Sim::steady(3, 100, 200, 2);
    sim.set_desired(0);
    sim.converge(10);
    assert_eq!(sim.tally().live, 0);
    assert!(sim.st.steady);
    assert_eq!(sim.st.service.running_count, Some(0));
}

#[test]
fn circuit_breaker_trips_after_the_threshold_and_rolls_back() {
    let mut sim = Sim::steady(2, 100, 200, 2).with_breaker(true);
    sim.st.completed.push(("ecs-svc/1".into(), "web:1".into()));
    let bad = sim.deploy();
    sim.fates.insert(bad.clone(), Fate::FailsToStart);
    sim.converge(40);
    assert!(sim.has_event(&format!(
        "(deployment {bad}) deployment failed: tasks failed to start"
    )));
    assert!(sim.has_event("rolling back to deployment ecs-svc/1"));
    // The rollback deployment runs the old definition and completes; the failed one,
    // with no task left, is retired.
    assert_eq!(sim.st.service.task_definition.as_deref(), Some("web:1"));
    let primary = sim.primary();
    assert_ne!(primary, bad);
    assert_eq!(
        sim.rollout(&primary),
        Some(DeploymentRolloutState::Completed)
    );
    assert_eq!(sim.rollout(&bad), None);
    assert_eq!(sim.live_of(&primary), 2);
    // The breaker tripped at its threshold (3), within one batch of starts.
    let failed = sim
        .tasks
        .iter()
        .filter(|(t, _)| t.deployment == bad && t.failed)
        .count();
    assert!((3..=4).contains(&failed), "{failed} failed");
    // The old tasks kept serving throughout.
    assert!(sim.min_healthy() >= 2);
}

#[test]
fn circuit_breaker_without_rollback_fails_the_deployment_and_launches_no_more() {
    let mut sim = Sim::steady(2, 100, 200, 2).with_breaker(false);
    let bad = sim.deploy();
    sim.fates.insert(bad.clone(), Fate::FailsToStart);
    let launched = |sim: &Sim| {
        sim.tasks
            .iter()
            .filter(|(t, _)| t.deployment == bad)
            .count()
    };
    for _ in 0..20 {
        sim.round();
        sim.settle();
        if sim.rollout(&bad) == Some(DeploymentRolloutState::Failed) {
            break;
        }
    }
    assert_eq!(sim.rollout(&bad), Some(DeploymentRolloutState::Failed));
    let at_trip = launched(&sim);
    for _ in 0..10 {
        sim.round();
        sim.settle();
    }
    assert_eq!(sim.primary(), bad, "no rollback deployment");
    assert!(!sim.has_event("rolling back"));
    assert_eq!(launched(&sim), at_trip, "nothing launched after the trip");
    assert_eq!(sim.live_of("ecs-svc/1"), 2, "the old tasks stay");
}

#[test]
fn tasks_failing_without_a_breaker_back_off_with_an_event() {
    let mut sim = Sim::new(1, 100, 200, 1);
    sim.fates.insert("ecs-svc/1".into(), Fate::FailsToStart);
    for _ in 0..8 {
        sim.round();
        sim.settle();
    }
    assert!(sim.has_event("is unable to consistently start tasks successfully"));
    let launched = sim.tasks.len();
    for _ in 0..3 {
        sim.round();
        sim.settle();
    }
    assert_eq!(sim.tasks.len(), launched, "launches wait out the backoff");
}

#[test]
fn a_task_failing_its_health_checks_is_replaced_with_an_event() {
    let mut sim = Sim::new(1, 100, 200, 2);
    sim.checks = true;
    sim.converge(10);
    let first = sim.in_phase(Phase::Running)[0].id.clone();
    sim.task_mut(&first).health = reconcile::Health::Unhealthy;
    let act = sim.round().expect("acts");
    assert_eq!(act.stop.len(), 1);
    assert_eq!(act.stop[0].message, "Task failed container health checks");
    assert_eq!(act.start.map(|s| s.count), Some(1));
    assert!(sim.has_event(&format!("(task {first}) failed container health checks.")));
}

#[test]
fn a_deleted_service_drains_its_tasks_then_becomes_inactive() {
    let mut sim = Sim::steady(3, 100, 200, 2);
    // DeleteService: desired 0, status DRAINING.
    sim.set_desired(0);
    sim.st.service.status = Some("DRAINING".parse().expect("an AWS status"));
    sim.converge(10);
    assert_eq!(sim.tally().live, 0);
    assert_eq!(sim.st.service.status.map(|s| s.as_str()), Some("INACTIVE"));
    assert!(matches!(sim.plan(), super::RoundPlan::Idle));
}

#[test]
fn a_deployment_whose_tasks_fail_their_checks_trips_the_breaker() {
    let mut sim = Sim::steady(2, 100, 200, 2).with_breaker(false);
    sim.checks = true;
    let bad = sim.deploy();
    sim.fates.insert(bad.clone(), Fate::Unhealthy);
    for _ in 0..20 {
        sim.round();
        sim.settle();
    }
    assert_eq!(sim.rollout(&bad), Some(DeploymentRolloutState::Failed));
    assert!(sim.has_event("failed container health checks."));
    assert_eq!(sim.live_of("ecs-svc/1"), 2, "the old tasks never stopped");
    assert!(sim.min_healthy() >= 2);
}
