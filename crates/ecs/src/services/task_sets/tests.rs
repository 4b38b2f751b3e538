use super::api::{apply_primary, apply_task_set_service_update};
use super::rounds::{apply_task_set_outcomes, compute_task_set_view, TaskSetOutcome};
use super::*;
use crate::error::EcsError;
use crate::services::StoredService;
use model::ecs::shapes::{DeploymentController, UpdateServiceRequest};

fn task_set(id: &str, status: &str, percent: f64) -> TaskSet {
    TaskSet {
        id: Some(id.into()),
        status: Some(status.into()),
        task_definition: Some(format!(
            "arn:aws:ecs:us-east-1:000000000000:task-definition/{id}:1"
        )),
        scale: Some(Scale {
            value: Some(percent),
            unit: Some(ScaleUnit::Percent),
        }),
        ..Default::default()
    }
}

fn external(desired: i32, sets: Vec<TaskSet>) -> StoredService {
    StoredService {
        service: Service {
            service_name: Some("web".into()),
            status: Some("ACTIVE".parse().expect("an AWS status")),
            desired_count: Some(desired),
            deployment_controller: Some(DeploymentController {
                type_: DeploymentControllerType::External,
            }),
            task_sets: Some(sets),
            ..Default::default()
        },
        request_hash: String::new(),
        completed: Vec::new(),
        steady: false,
        inactive_at: None,
        history: Default::default(),
        task_set_tokens: Vec::new(),
        created_launch_type: None,
    }
}

fn outcome(id: &str, running: i32, pending: i32, steady: bool) -> TaskSetOutcome {
    TaskSetOutcome {
        id: id.into(),
        running,
        pending,
        steady,
        live: running + pending > 0,
        events: Vec::new(),
    }
}

#[test]
fn computed_count_rounds_up_as_aws_does() {
    let cases = [
        (4, 50.0, 2),
        (3, 50.0, 2),
        (3, 33.3, 1),
        (3, 100.0 / 3.0, 1),
        (10, 0.0, 0),
        (10, 100.0, 10),
        (1, 0.1, 1),
        (7, 100.0, 7),
        (0, 100.0, 0),
    ];
    for (desired, percent, want) in cases {
        let ts = task_set("ecs-svc/1", ACTIVE, percent);
        assert_eq!(
            compute_desired_count(desired, &ts),
            want,
            "{desired} × {percent} %"
        );
    }
}

#[test]
fn draining_task_set_wants_nothing() {
    let ts = task_set("ecs-svc/1", DRAINING, 100.0);
    assert_eq!(compute_desired_count(5, &ts), 0);
}

#[test]
fn scale_outside_zero_to_hundred_is_refused_and_missing_scale_is_zero() {
    for bad in [-1.0, 100.5, f64::NAN, f64::INFINITY] {
        let s = Scale {
            value: Some(bad),
            unit: None,
        };
        assert!(
            matches!(parse_scale(Some(&s)), Err(EcsError::InvalidParameter(_))),
            "{bad}"
        );
    }
    let none = parse_scale(None).expect("a default");
    assert_eq!(none.value, Some(0.0));
    assert_eq!(none.unit, Some(ScaleUnit::Percent));
    let half = parse_scale(Some(&Scale {
        value: Some(50.0),
        unit: None,
    }))
    .expect("valid");
    assert_eq!(half.unit, Some(ScaleUnit::Percent));
}

#[test]
fn primary_switch_demotes_the_old_primary_and_the_service_follows() {
    let mut st = external(
        2,
        vec![
            task_set("ecs-svc/1", PRIMARY, 100.0),
            task_set("ecs-svc/2", ACTIVE, 100.0),
        ],
    );
    apply_primary(&mut st.service, 1, 10.0);
    let sets = st.service.task_sets.clone().expect("task sets");
    assert_eq!(sets[0].status.as_deref(), Some(ACTIVE));
    assert_eq!(sets[1].status.as_deref(), Some(PRIMARY));
    assert_eq!(st.service.task_definition, sets[1].task_definition);
    assert_eq!(position_of(&st.service, "ecs-svc/2"), Some(1));
    assert_eq!(position_of(&st.service, "ecs-svc/9"), None);
}

#[test]
fn task_set_is_steady_only_at_its_computed_count() {
    let mut st = external(4, vec![task_set("ecs-svc/1", PRIMARY, 50.0)]);
    apply_task_set_outcomes(&mut st, &[outcome("ecs-svc/1", 1, 1, false)], 1.0);
    let ts = &st.service.task_sets.as_ref().expect("sets")[0];
    assert_eq!(ts.computed_desired_count, Some(2));
    assert_eq!(ts.stability_status, Some(StabilityStatus::Stabilizing));
    assert!(!st.steady);
    apply_task_set_outcomes(&mut st, &[outcome("ecs-svc/1", 2, 0, true)], 2.0);
    let ts = &st.service.task_sets.as_ref().expect("sets")[0];
    assert_eq!(ts.stability_status, Some(StabilityStatus::SteadyState));
    assert_eq!(ts.stability_status_at, Some(2.0));
    assert_eq!(st.service.running_count, Some(2));
    assert!(st.steady);
    let said = st
        .service
        .events
        .iter()
        .flatten()
        .filter(|e| e.message.as_deref() == Some("(service web) has reached a steady state."))
        .count();
    assert_eq!(said, 1);
    // A steady round again changes nothing, not even the time.
    apply_task_set_outcomes(&mut st, &[outcome("ecs-svc/1", 2, 0, true)], 3.0);
    let ts = &st.service.task_sets.as_ref().expect("sets")[0];
    assert_eq!(ts.stability_status_at, Some(2.0));
}

#[test]
fn draining_task_set_leaves_once_its_tasks_are_gone() {
    let mut st = external(
        2,
        vec![
            task_set("ecs-svc/1", DRAINING, 0.0),
            task_set("ecs-svc/2", PRIMARY, 100.0),
        ],
    );
    st.task_set_tokens = vec![
        ("t1".into(), "ecs-svc/1".into()),
        ("t2".into(), "ecs-svc/2".into()),
    ];
    apply_task_set_outcomes(
        &mut st,
        &[
            outcome("ecs-svc/1", 1, 0, false),
            outcome("ecs-svc/2", 2, 0, true),
        ],
        1.0,
    );
    assert_eq!(st.service.task_sets.as_ref().map(Vec::len), Some(2));
    apply_task_set_outcomes(
        &mut st,
        &[
            outcome("ecs-svc/1", 0, 0, true),
            outcome("ecs-svc/2", 2, 0, true),
        ],
        2.0,
    );
    let sets = st.service.task_sets.clone().expect("sets");
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0].id.as_deref(), Some("ecs-svc/2"));
    assert_eq!(
        st.task_set_tokens,
        vec![("t2".to_owned(), "ecs-svc/2".to_owned())]
    );
}

#[test]
fn deleted_service_becomes_inactive_when_no_task_remains() {
    let mut st = external(0, vec![task_set("ecs-svc/1", ACTIVE, 100.0)]);
    st.service.status = Some("DRAINING".parse().expect("an AWS status"));
    apply_task_set_outcomes(&mut st, &[outcome("ecs-svc/1", 1, 0, false)], 1.0);
    assert_eq!(st.service.status.map(|s| s.as_str()), Some("DRAINING"));
    apply_task_set_outcomes(&mut st, &[outcome("ecs-svc/1", 0, 0, true)], 2.0);
    assert_eq!(st.service.status.map(|s| s.as_str()), Some("INACTIVE"));
    assert_eq!(st.inactive_at, Some(2.0));
}

#[test]
fn task_set_view_is_a_one_deployment_service_of_the_task_set() {
    let mut ts = task_set("ecs-svc/7", ACTIVE, 50.0);
    ts.load_balancers = Some(vec![model::ecs::shapes::LoadBalancer {
        target_group_arn: Some("tg".into()),
        container_name: Some("web".into()),
        container_port: Some(80),
        ..Default::default()
    }]);
    let st = external(3, vec![ts.clone()]);
    let view = compute_task_set_view(&st, &ts);
    assert_eq!(view.service.desired_count, Some(2));
    assert_eq!(view.service.load_balancers, ts.load_balancers);
    let deps = view.service.deployments.expect("one deployment");
    assert_eq!(deps.len(), 1);
    assert_eq!(deps[0].id.as_deref(), Some("ecs-svc/7"));
    assert_eq!(deps[0].task_definition, ts.task_definition);
}

#[test]
fn update_service_refuses_what_belongs_to_task_sets() {
    let mut st = external(2, vec![task_set("ecs-svc/1", PRIMARY, 50.0)]);
    let req = UpdateServiceRequest {
        service: "web".into(),
        task_definition: Some("web:2".into()),
        ..Default::default()
    };
    match apply_task_set_service_update(&mut st.service, &req) {
        Err(EcsError::InvalidParameter(m)) => {
            assert!(m.contains("EXTERNAL deployment controller"), "{m}")
        }
        other => panic!("expected InvalidParameter, got {other:?}"),
    }
    let req = UpdateServiceRequest {
        service: "web".into(),
        desired_count: Some(6),
        ..Default::default()
    };
    apply_task_set_service_update(&mut st.service, &req).expect("desired count changes");
    let ts = &st.service.task_sets.as_ref().expect("sets")[0];
    assert_eq!(ts.computed_desired_count, Some(3));
}
