//! Service deployment history through real rounds: deployments succeed, are superseded,
//! and are rolled back by the circuit breaker or a stop request.

use super::*;
use crate::services::history::StopRefused;
use crate::services::record::roll_back;
use model::ecs::shapes::{ServiceDeploymentRollbackMonitorsStatus, ServiceDeploymentStatus};

fn statuses(sim: &Sim) -> Vec<Option<ServiceDeploymentStatus>> {
    sim.st
        .history
        .deployments
        .iter()
        .map(|r| r.deployment.status)
        .collect()
}

fn arn_of(sim: &Sim, i: usize) -> String {
    sim.st.history.deployments[i]
        .deployment
        .service_deployment_arn
        .clone()
        .expect("an ARN")
}

#[test]
fn a_completed_deployment_is_successful_and_names_its_revisions() {
    let mut sim = Sim::new(2, 100, 200, 2);
    sim.converge(40);
    let next = sim.deploy();
    sim.converge(60);
    assert_eq!(
        statuses(&sim),
        [
            Some(ServiceDeploymentStatus::Successful),
            Some(ServiceDeploymentStatus::Successful)
        ]
    );
    let h = &sim.st.history;
    let second = &h.deployments[1].deployment;
    assert!(second.service_deployment_arn.as_deref().is_some_and(
        |a| a.starts_with("arn:aws:ecs:us-east-1:000000000000:service-deployment/default/")
    ));
    // Its source is the first deployment's revision, its target the new one's.
    let first_rev = h
        .revision_of("ecs-svc/1")
        .expect("first revision")
        .to_owned();
    let next_rev = h.revision_of(&next).expect("second revision").to_owned();
    let sources = second.source_service_revisions.clone().unwrap_or_default();
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0].arn.as_deref(), Some(first_rev.as_str()));
    assert_eq!(sources[0].running_task_count, Some(2));
    let target = second.target_service_revision.clone().expect("a target");
    assert_eq!(target.arn.as_deref(), Some(next_rev.as_str()));
    assert_eq!(
        h.revision(&next_rev)
            .and_then(|r| r.task_definition.as_deref()),
        Some("web:2")
    );
    assert!(second.finished_at.is_some());
    // DescribeServices shows the newest service deployment and the revision running.
    let svc = &sim.st.service;
    assert_eq!(
        svc.current_service_deployment.as_deref(),
        second.service_deployment_arn.as_deref()
    );
    let current = svc.current_service_revisions.clone().unwrap_or_default();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0].arn.as_deref(), Some(next_rev.as_str()));
    assert_eq!(current[0].running_task_count, Some(2));
    assert_eq!(current[0].requested_task_count, Some(2));
}

#[test]
fn a_newer_deployment_stops_the_one_under_way() {
    let mut sim = Sim::new(2, 100, 200, 2);
    sim.deploy();
    assert_eq!(
        statuses(&sim),
        [
            Some(ServiceDeploymentStatus::Stopped),
            Some(ServiceDeploymentStatus::InProgress)
        ]
    );
    assert!(sim.st.history.deployments[0]
        .deployment
        .stopped_at
        .is_some());
}

#[test]
fn the_circuit_breaker_rolls_the_service_deployment_back() {
    let mut sim = Sim::steady(2, 100, 200, 2).with_breaker(true);
    let bad = sim.deploy();
    sim.fates.insert(bad.clone(), Fate::FailsToStart);
    sim.converge(40);
    let h = &sim.st.history;
    let r = h.deployments.last().expect("a record");
    assert_eq!(r.forward, bad);
    assert_eq!(
        r.deployment.status,
        Some(ServiceDeploymentStatus::RollbackSuccessful)
    );
    let rollback = r.deployment.rollback.clone().expect("rollback details");
    assert_eq!(
        rollback.service_revision_arn.as_deref(),
        h.revision_of("ecs-svc/1")
    );
    let breaker = r
        .deployment
        .deployment_circuit_breaker
        .clone()
        .expect("breaker");
    assert_eq!(
        breaker.status,
        Some(ServiceDeploymentRollbackMonitorsStatus::Triggered)
    );
    assert!(breaker.failure_count.unwrap_or(0) >= 3);
    assert_eq!(breaker.threshold, Some(3));
}

#[test]
fn a_stop_request_rolls_back_to_the_last_completed_revision() {
    let mut sim = Sim::steady(2, 100, 200, 2);
    let next = sim.deploy();
    let arn = arn_of(&sim, 1);
    let has_previous = !sim.st.completed.is_empty();
    assert!(has_previous);
    let rolling = sim
        .st
        .history
        .check_stop(&arn, has_previous)
        .expect("stoppable")
        .expect("a rollback to start");
    assert_eq!(rolling, next);
    let (old, td) = sim.st.completed.last().cloned().expect("completed");
    let mut events = Vec::new();
    let at = sim.clock.now();
    roll_back(
        &mut sim.st,
        &rolling,
        &old,
        td,
        "stop requested",
        at,
        &mut events,
    );
    assert_eq!(
        statuses(&sim)[1],
        Some(ServiceDeploymentStatus::RollbackInProgress)
    );
    // A second stop while rolling back continues it.
    assert_eq!(sim.st.history.check_stop(&arn, true), Ok(None));
    sim.converge(60);
    assert_eq!(
        statuses(&sim)[1],
        Some(ServiceDeploymentStatus::RollbackSuccessful)
    );
    assert_eq!(sim.st.service.task_definition.as_deref(), Some("web:1"));
    // Finished: nothing left to stop.
    assert!(matches!(
        sim.st.history.check_stop(&arn, true),
        Err(StopRefused::Finished(_, "ROLLBACK_SUCCESSFUL"))
    ));
}

#[test]
fn the_first_deployment_has_nothing_to_roll_back_to() {
    let sim = Sim::new(1, 100, 200, 1);
    let arn = arn_of(&sim, 0);
    assert!(matches!(
        sim.st.history.check_stop(&arn, false),
        Err(StopRefused::NoPrevious(_))
    ));
}

#[test]
fn history_is_bounded_and_keeps_the_revisions_it_names() {
    let mut sim = Sim::steady(1, 100, 200, 1);
    for _ in 0..(crate::services::history::MAX_DEPLOYMENTS + 5) {
        sim.deploy();
        // The replaced deployment drained and was retired (rounds would do it).
        if let Some(d) = sim.st.service.deployments.as_mut() {
            d.truncate(1);
        }
    }
    let h = &sim.st.history;
    assert_eq!(
        h.deployments.len(),
        crate::services::history::MAX_DEPLOYMENTS
    );
    // Every revision a kept deployment names is still there to describe.
    for r in &h.deployments {
        let target = r.deployment.target_service_revision.as_ref();
        let arn = target.and_then(|t| t.arn.as_deref()).expect("a target");
        assert!(h.revision(arn).is_some(), "{arn} dropped");
    }
    assert!(h.revisions.len() <= crate::services::history::MAX_DEPLOYMENTS + 2);
}
