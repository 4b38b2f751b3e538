//! Services behind load balancers: registration, drain before stop, verdicts as health.

use super::{Sim, TG};
use crate::services::plan::{Groups, Observed, RoundPlan};
use reconcile::Phase;

fn port_of(sim: &Sim, task: &str) -> u16 {
    sim.tasks
        .iter()
        .find(|(t, _)| t.id == task)
        .and_then(|(_, r)| r.bindings.first())
        .map(|b| b.2)
        .expect("task has a binding")
}

fn position(sim: &Sim, line: &str) -> usize {
    sim.log
        .iter()
        .position(|l| l == line)
        .unwrap_or_else(|| panic!("{line} not in {:?}", sim.log))
}

fn target_state(sim: &Sim, port: u16) -> Option<String> {
    sim.groups.as_ref()?[TG]
        .targets
        .iter()
        .find(|t| t.port == port)
        .map(|t| t.state.as_str().to_owned())
}

#[test]
fn running_tasks_are_registered_once() {
    let mut sim = Sim::new(2, 100, 200, 2).behind_balancer();
    sim.converge(10);
    let registered = sim.log.iter().filter(|l| l.starts_with("register")).count();
    assert_eq!(registered, 2);
    assert!(sim.has_event(&format!("registered 2 targets in (target-group {TG})")));
    sim.log.clear();
    sim.round();
    assert!(sim.log.is_empty(), "{:?}", sim.log);
}

#[test]
fn an_old_task_is_deactivated_then_deregistered_then_stopped_after_its_drain() {
    let mut sim = Sim::steady(2, 100, 200, 2).behind_balancer();
    sim.converge(10);
    let old: Vec<String> = sim
        .in_phase(Phase::Running)
        .iter()
        .map(|t| t.id.clone())
        .collect();
    let ports: Vec<u16> = old.iter().map(|t| port_of(&sim, t)).collect();
    sim.drain_rounds = 2;
    sim.deploy();
    sim.converge(40);
    for (t, port) in old.iter().zip(ports) {
        let deactivated = position(&sim, &format!("deactivate {t}"));
        let deregistered = position(&sim, &format!("deregister {port}"));
        let stopped = position(&sim, &format!("stop {t}"));
        assert!(
            deactivated < deregistered && deregistered < stopped,
            "{:?}",
            sim.log
        );
        assert_eq!(target_state(&sim, port), None, "the target has left");
    }
    assert!(sim.has_event("has begun draining connections on"));
    assert_eq!(sim.st.service.deployments.as_ref().map(Vec::len), Some(1));
}

#[test]
fn deactivating_tasks_hold_room_under_the_ceiling_while_they_drain() {
    let mut sim = Sim::steady(2, 0, 100, 2).behind_balancer();
    sim.converge(10);
    sim.drain_rounds = 3;
    sim.deploy();
    sim.converge(40);
    assert!(sim.max_live() <= 2, "{:?}", sim.tallies);
    // While the old tasks drained nothing new started.
    let first_start = sim.log.iter().position(|l| l.starts_with("start"));
    let first_stop = sim.log.iter().position(|l| l.starts_with("stop"));
    assert!(first_stop < first_start, "{:?}", sim.log);
}

#[test]
fn a_new_deployment_retires_nothing_until_its_targets_are_healthy() {
    let mut sim = Sim::steady(1, 100, 200, 2).behind_balancer();
    sim.converge(10);
    sim.deploy();
    let act = sim.round().expect("starts");
    assert_eq!(act.start.map(|s| s.count), Some(1));
    sim.settle();
    // The new task runs, its target is registered now and not yet judged.
    let act = sim.round().expect("registers");
    assert_eq!(act.register.get(TG).map(Vec::len), Some(1));
    assert!(act.deactivate.is_empty() && act.stop.is_empty());
    // Judged healthy: the old task may go.
    sim.settle();
    let act = sim.round().expect("retires");
    assert_eq!(act.deactivate.len(), 1);
}

#[test]
fn a_target_failing_elb_checks_is_replaced_with_the_elb_reason() {
    let mut sim = Sim::new(1, 100, 200, 2).behind_balancer();
    sim.converge(10);
    let t = sim.in_phase(Phase::Running)[0].id.clone();
    let port = port_of(&sim, &t);
    if let Some(g) = sim.groups.as_mut().and_then(|g| g.get_mut(TG)) {
        for target in &mut g.targets {
            target.state =
                model::lb::TargetHealthState::parse("unhealthy").expect("a target state");
            target.reason = Some("Target.ResponseCodeMismatch".into());
        }
    }
    let act = sim.round().expect("acts");
    let wanted = format!("Task failed ELB health checks in (target-group {TG})");
    assert_eq!(act.deactivate.len(), 1);
    assert_eq!(act.deactivate[0].message, wanted);
    assert_eq!(act.deregister.get(TG).map(Vec::len), Some(1));
    assert_eq!(act.start.map(|s| s.count), Some(1));
    assert!(sim.has_event(&format!(
        "(task {t}) failed ELB health checks in (target-group {TG})."
    )));
    assert_eq!(target_state(&sim, port).as_deref(), Some("draining"));
}

#[test]
fn a_task_that_stopped_on_its_own_leaves_its_target_group() {
    let mut sim = Sim::new(1, 100, 200, 1).behind_balancer();
    sim.converge(10);
    let t = sim.in_phase(Phase::Running)[0].id.clone();
    let port = port_of(&sim, &t);
    let now = sim.clock.now();
    {
        let task = sim.task_mut(&t);
        task.phase = Phase::Stopped;
        task.stopped_at = Some(now);
        task.failed = true;
    }
    let act = sim.round().expect("acts");
    assert_eq!(
        act.deregister.get(TG).cloned(),
        Some(vec![("i-a".to_owned(), port)])
    );
    assert_eq!(act.start.map(|s| s.count), Some(1));
}

#[test]
fn a_target_group_that_cannot_be_read_leaves_the_round_idle() {
    let sim = Sim::steady(2, 100, 200, 2);
    let observed = Observed {
        service: &sim.st,
        tasks: &sim.tasks,
        instances: &sim.instances,
        groups: Groups::Unreadable("database is locked".into()),
        launch: Some(sim.launch.clone()),
        disconnect_timeout_seconds: 300.0,
    };
    let plan = crate::services::plan::plan_round(&observed, sim.clock.now(), 1);
    assert!(matches!(plan, RoundPlan::Wait(e) if e == "database is locked"));
}

#[test]
fn a_target_not_yet_judged_keeps_its_task_from_counting_as_healthy() {
    let mut sim = Sim::new(1, 100, 200, 1).behind_balancer();
    sim.round();
    sim.settle();
    // Registered now: "initial" until the balancer's next check.
    sim.round();
    let t = sim.in_phase(Phase::Running)[0].id.clone();
    let port = port_of(&sim, &t);
    assert_eq!(target_state(&sim, port).as_deref(), Some("initial"));
    assert!(!sim.st.steady);
    assert_eq!(
        sim.rollout("ecs-svc/1"),
        Some(model::ecs::shapes::DeploymentRolloutState::InProgress)
    );
    sim.settle();
    sim.round();
    assert!(sim.st.steady);
}

#[test]
fn a_deleted_service_behind_a_balancer_stays_draining_until_its_targets_drain() {
    let mut sim = Sim::new(2, 100, 200, 2).behind_balancer();
    sim.converge(10);
    sim.drain_rounds = 3;
    sim.set_desired(0);
    sim.st.service.status = Some("DRAINING".parse().expect("an AWS status"));
    let act = sim.round().expect("acts");
    assert_eq!(act.deactivate.len(), 2);
    assert!(act.stop.is_empty());
    assert_eq!(sim.st.service.status.map(|s| s.as_str()), Some("DRAINING"));
    sim.settle();
    sim.round();
    assert_eq!(sim.st.service.status.map(|s| s.as_str()), Some("DRAINING"));
    for _ in 0..6 {
        sim.settle();
        sim.round();
    }
    assert_eq!(sim.st.service.status.map(|s| s.as_str()), Some("INACTIVE"));
    assert_eq!(sim.tally().live, 0);
}
