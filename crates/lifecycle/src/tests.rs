use super::*;
use proptest::prelude::*;

fn k(status: ContainerStatus) -> Known {
    Known {
        status,
        exit_code: None,
        health: Health::Unknown,
    }
}

#[test]
fn a_new_container_is_pulled_then_created_then_started() {
    assert_eq!(
        next_step(&k(ContainerStatus::None), DesiredStatus::Running, &[], &[]),
        Step::Act(ContainerStatus::Pulled)
    );
    assert_eq!(
        next_step(
            &k(ContainerStatus::Pulled),
            DesiredStatus::Running,
            &[],
            &[]
        ),
        Step::Act(ContainerStatus::Created)
    );
    assert_eq!(
        next_step(
            &k(ContainerStatus::Created),
            DesiredStatus::Running,
            &[],
            &[]
        ),
        Step::Act(ContainerStatus::Running)
    );
    assert_eq!(
        next_step(
            &k(ContainerStatus::Running),
            DesiredStatus::Running,
            &[],
            &[]
        ),
        Step::Done
    );
}

#[test]
fn start_waits_for_a_dependency_to_run() {
    let db = k(ContainerStatus::Created);
    let deps = [Dependency {
        name: "db",
        condition: Condition::Start,
        known: &db,
    }];
    assert_eq!(
        next_step(
            &k(ContainerStatus::Created),
            DesiredStatus::Running,
            &deps,
            &[]
        ),
        Step::Wait(vec!["db".into()])
    );
    let db = k(ContainerStatus::Running);
    let deps = [Dependency {
        name: "db",
        condition: Condition::Start,
        known: &db,
    }];
    assert_eq!(
        next_step(
            &k(ContainerStatus::Created),
            DesiredStatus::Running,
            &deps,
            &[]
        ),
        Step::Act(ContainerStatus::Running)
    );
}

#[test]
fn success_dependency_that_failed_marks_the_container_stopped() {
    let init = Known {
        status: ContainerStatus::Stopped,
        exit_code: Some(1),
        health: Health::Unknown,
    };
    let deps = [Dependency {
        name: "init",
        condition: Condition::Success,
        known: &init,
    }];
    assert_eq!(
        next_step(
            &k(ContainerStatus::Created),
            DesiredStatus::Running,
            &deps,
            &[]
        ),
        Step::Mark(ContainerStatus::Stopped)
    );
    let ok = Known {
        exit_code: Some(0),
        ..init
    };
    let deps = [Dependency {
        name: "init",
        condition: Condition::Success,
        known: &ok,
    }];
    assert_eq!(
        next_step(
            &k(ContainerStatus::Created),
            DesiredStatus::Running,
            &deps,
            &[]
        ),
        Step::Act(ContainerStatus::Running)
    );
}

#[test]
fn healthy_dependency_waits_for_the_health_check() {
    let mut db = k(ContainerStatus::Running);
    let deps = [Dependency {
        name: "db",
        condition: Condition::Healthy,
        known: &db,
    }];
    assert!(matches!(
        next_step(
            &k(ContainerStatus::Created),
            DesiredStatus::Running,
            &deps,
            &[]
        ),
        Step::Wait(_)
    ));
    db.health = Health::Healthy;
    let deps = [Dependency {
        name: "db",
        condition: Condition::Healthy,
        known: &db,
    }];
    assert_eq!(
        next_step(
            &k(ContainerStatus::Created),
            DesiredStatus::Running,
            &deps,
            &[]
        ),
        Step::Act(ContainerStatus::Running)
    );
}

#[test]
fn shutdown_waits_for_dependents_to_stop_first() {
    let app = k(ContainerStatus::Running);
    assert_eq!(
        next_step(
            &k(ContainerStatus::Running),
            DesiredStatus::Stopped,
            &[],
            &[("app", &app)]
        ),
        Step::Wait(vec!["app".into()])
    );
    let app = k(ContainerStatus::Stopped);
    assert_eq!(
        next_step(
            &k(ContainerStatus::Running),
            DesiredStatus::Stopped,
            &[],
            &[("app", &app)]
        ),
        Step::Act(ContainerStatus::Stopped)
    );
}

#[test]
fn a_never_started_container_is_marked_stopped_when_stopping() {
    assert_eq!(
        next_step(
            &k(ContainerStatus::Pulled),
            DesiredStatus::Stopped,
            &[],
            &[]
        ),
        Step::Mark(ContainerStatus::Stopped)
    );
}

#[test]
fn desired_status_never_goes_back_to_running() {
    assert_eq!(
        DesiredStatus::Stopped.advance(DesiredStatus::Running),
        DesiredStatus::Stopped
    );
    assert_eq!(
        DesiredStatus::Running.advance(DesiredStatus::Stopped),
        DesiredStatus::Stopped
    );
}

#[test]
fn task_runs_once_essentials_run_and_stops_when_all_stop() {
    let a = k(ContainerStatus::Running);
    let b = k(ContainerStatus::Stopped);
    let members = [
        Member {
            essential: true,
            known: &a,
        },
        Member {
            essential: false,
            known: &b,
        },
    ];
    assert_eq!(task_status(&members), ContainerStatus::Running);
    assert!(!essential_exited(&members));
    let members = [
        Member {
            essential: true,
            known: &b,
        },
        Member {
            essential: false,
            known: &a,
        },
    ];
    assert!(essential_exited(&members));
    let members = [Member {
        essential: true,
        known: &b,
    }];
    assert_eq!(task_status(&members), ContainerStatus::Stopped);
}

#[test]
fn ecs_sees_pending_running_stopped_only() {
    assert_eq!(ecs_status(ContainerStatus::Created), "PENDING");
    assert_eq!(ecs_status(ContainerStatus::Running), "RUNNING");
    assert_eq!(ecs_status(ContainerStatus::Stopped), "STOPPED");
}

fn status() -> impl Strategy<Value = ContainerStatus> {
    prop_oneof![
        Just(ContainerStatus::None),
        Just(ContainerStatus::Pulled),
        Just(ContainerStatus::Created),
        Just(ContainerStatus::Running),
        Just(ContainerStatus::Stopped),
    ]
}

proptest! {
    #[test]
    fn observed_statuses_never_move_backwards(seq in proptest::collection::vec(status(), 0..20)) {
        let mut known = Known::new();
        let mut high = ContainerStatus::None;
        for s in seq {
            observe(&mut known, s);
            high = high.max(s);
            prop_assert_eq!(known.status, high);
        }
    }

    #[test]
    fn next_step_only_ever_acts_forward(s in status(), running in any::<bool>()) {
        let desired = if running { DesiredStatus::Running } else { DesiredStatus::Stopped };
        match next_step(&k(s), desired, &[], &[]) {
            Step::Act(t) | Step::Mark(t) => prop_assert!(t > s),
            Step::Wait(_) | Step::Done => {}
        }
    }

    #[test]
    fn driving_a_lone_container_to_running_terminates(start in status()) {
        let mut known = k(start);
        for _ in 0..10 {
            match next_step(&known, DesiredStatus::Running, &[], &[]) {
                Step::Act(t) | Step::Mark(t) => { observe(&mut known, t); }
                Step::Done => break,
                Step::Wait(_) => prop_assert!(false, "nothing to wait for"),
            }
        }
        prop_assert!(known.status >= ContainerStatus::Running);
    }
}
