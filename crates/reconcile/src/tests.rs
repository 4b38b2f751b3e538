use super::*;
use proptest::prelude::*;

fn spec(desired: u32, min: u32, max: u32) -> Spec {
    Spec {
        scheduling: Scheduling::Replica,
        desired,
        min_healthy_percent: min,
        max_percent: max,
        circuit_breaker: None,
        health_grace_seconds: 0.0,
        disconnect_timeout_seconds: 300.0,
    }
}

fn instances(n: usize) -> Vec<Instance> {
    (0..n)
        .map(|i| Instance {
            id: format!("i{i}"),
            status: InstanceStatus::Active,
            disconnected_since: None,
            eligible: true,
        })
        .collect()
}

fn task(id: &str, dep: &str, inst: &str, phase: Phase) -> Task {
    Task {
        id: id.into(),
        deployment: dep.into(),
        instance: inst.into(),
        phase,
        health: Health::Unknown,
        has_health_check: false,
        started_at: (phase == Phase::Running).then_some(0.0),
        stopped_at: (phase == Phase::Stopped).then_some(0.0),
        failed: false,
        protected_until: None,
    }
}

/// What the scheduler sees with one ACTIVE instance, `i0`.
fn on_one_instance(deployment_ids: &[&str], tasks: Vec<Task>, now: f64) -> Observed {
    Observed {
        deployments: deployments(deployment_ids),
        tasks,
        instances: instances(1),
        now,
    }
}

fn deployments(ids: &[&str]) -> Vec<Deployment> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| Deployment {
            id: (*id).into(),
            rollout: if i + 1 == ids.len() {
                Rollout::InProgress
            } else {
                Rollout::Completed
            },
        })
        .collect()
}

#[test]
fn rounding_follows_ecs() {
    assert_eq!(floor(3, 50), 2);
    assert_eq!(ceiling(3, 150), 4);
    assert_eq!(floor(0, 100), 0);
    assert_eq!(breaker_threshold(1), 3);
    assert_eq!(breaker_threshold(10), 5);
    assert_eq!(breaker_threshold(1000), 200);
}

#[test]
fn a_new_service_starts_its_desired_count() {
    let o = Observed {
        deployments: deployments(&["d1"]),
        tasks: vec![],
        instances: instances(2),
        now: 10.0,
    };
    let a = compute(&spec(4, 100, 200), &o);
    assert_eq!(a.start.len(), 4);
    assert!(a.stop.is_empty() && !a.steady);
}

#[test]
fn steady_when_all_running_completes_the_deployment() {
    let o = Observed {
        deployments: deployments(&["d1"]),
        tasks: (0..2)
            .map(|i| task(&format!("t{i}"), "d1", "i0", Phase::Running))
            .collect(),
        instances: instances(1),
        now: 10.0,
    };
    let a = compute(&spec(2, 100, 200), &o);
    assert!(a.steady);
    assert_eq!(a.rollouts[0].rollout, Rollout::Completed);
}

#[test]
fn min_100_keeps_old_tasks_until_replacements_are_healthy() {
    let mut tasks: Vec<Task> = (0..2)
        .map(|i| task(&format!("o{i}"), "d1", "i0", Phase::Running))
        .collect();
    tasks.push(task("n0", "d2", "i0", Phase::Pending));
    tasks.push(task("n1", "d2", "i0", Phase::Pending));
    let o = on_one_instance(&["d1", "d2"], tasks, 10.0);
    let a = compute(&spec(2, 100, 200), &o);
    assert!(a.start.is_empty() && a.stop.is_empty(), "{a:?}");
}

#[test]
fn draining_instance_tasks_are_replaced_then_stopped() {
    let mut inst = instances(2);
    inst[0].status = InstanceStatus::Draining;
    let o = Observed {
        deployments: deployments(&["d1"]),
        tasks: vec![
            task("a", "d1", "i0", Phase::Running),
            task("b", "d1", "i0", Phase::Pending),
        ],
        instances: inst,
        now: 10.0,
    };
    let a = compute(&spec(2, 0, 200), &o);
    assert_eq!(a.start.len(), 2);
    // The pending one goes at once; with no floor the running one goes too.
    assert_eq!(a.stop.len(), 2);
    let a = compute(&spec(2, 100, 200), &o);
    assert_eq!(
        a.stop.iter().map(|s| s.task.as_str()).collect::<Vec<_>>(),
        ["b"]
    );
}

#[test]
fn lost_instances_and_unhealthy_tasks_are_replaced() {
    let mut inst = instances(2);
    inst[1].disconnected_since = Some(0.0);
    let mut sick = task("s", "d1", "i0", Phase::Running);
    sick.health = Health::Unhealthy;
    sick.has_health_check = true;
    let o = Observed {
        deployments: deployments(&["d1"]),
        tasks: vec![task("l", "d1", "i1", Phase::Running), sick],
        instances: inst,
        now: 1000.0,
    };
    let a = compute(&spec(2, 100, 200), &o);
    let reasons: Vec<_> = a.stop.iter().map(|s| s.reason).collect();
    assert!(
        reasons.contains(&StopReason::InstanceLost) && reasons.contains(&StopReason::Unhealthy)
    );
    assert_eq!(a.start.len(), 2);
}

#[test]
fn unhealthy_tasks_still_stopping_hold_room_under_the_ceiling() {
    // A load balancer drains unhealthy tasks before they stop, so they stay RUNNING for
    // rounds: their replacements are started once, not again every round.
    let sick = |id: &str| {
        let mut t = task(id, "d1", "i0", Phase::Running);
        t.health = Health::Unhealthy;
        t.has_health_check = true;
        t
    };
    let o = |n: usize| {
        on_one_instance(
            &["d1"],
            (0..n).map(|i| sick(&format!("s{i}"))).collect(),
            1000.0,
        )
    };
    let a = compute(&spec(3, 100, 200), &o(3));
    assert_eq!((a.stop.len(), a.start.len()), (3, 3));
    let a = compute(&spec(3, 100, 200), &o(6));
    assert_eq!(
        (a.stop.len(), a.start.len()),
        (6, 0),
        "six still running fill the ceiling of 6"
    );
}

#[test]
fn circuit_breaker_trips_and_rolls_back() {
    let mut s = spec(2, 100, 200);
    s.circuit_breaker = Some(CircuitBreaker { rollback: true });
    let mut tasks: Vec<Task> = (0..2)
        .map(|i| task(&format!("o{i}"), "d1", "i0", Phase::Running))
        .collect();
    for i in 0..3 {
        let mut t = task(&format!("f{i}"), "d2", "i0", Phase::Stopped);
        t.failed = true;
        tasks.push(t);
    }
    let o = on_one_instance(&["d1", "d2"], tasks, 10.0);
    let a = compute(&s, &o);
    assert_eq!(a.rollouts[0].rollout, Rollout::Failed);
    assert_eq!(a.rollback_to.as_deref(), Some("d1"));
    assert!(a.start.is_empty());
}

#[test]
fn repeated_failures_back_off_without_a_breaker() {
    let mut tasks = Vec::new();
    for i in 0..4 {
        let mut t = task(&format!("f{i}"), "d1", "i0", Phase::Stopped);
        t.failed = true;
        t.stopped_at = Some(100.0);
        tasks.push(t);
    }
    let o = on_one_instance(&["d1"], tasks, 101.0);
    let a = compute(&spec(1, 100, 200), &o);
    assert!(a.start.is_empty());
    assert_eq!(a.backoff_until, Some(120.0));
}

#[test]
fn daemon_runs_one_task_per_eligible_instance() {
    let mut s = spec(0, 0, 100);
    s.scheduling = Scheduling::Daemon;
    let mut inst = instances(3);
    inst[2].eligible = false;
    let o = Observed {
        deployments: deployments(&["d1"]),
        tasks: vec![
            task("a", "d1", "i0", Phase::Running),
            task("b", "d1", "i0", Phase::Running),
            task("c", "d1", "i2", Phase::Running),
        ],
        instances: inst,
        now: 1.0,
    };
    let a = compute(&s, &o);
    assert_eq!(a.desired, 2);
    assert_eq!(
        a.start,
        vec![Start {
            deployment: "d1".into(),
            instance: Some("i1".into())
        }]
    );
    assert_eq!(a.stop.len(), 2, "{a:?}");
}

/// A small world to run the scheduler in: tasks progress at random, the scheduler acts.
#[derive(Debug)]
struct World {
    tasks: Vec<Task>,
    next: u32,
}

impl World {
    fn apply(&mut self, a: &Actions, instances: usize) {
        for s in &a.stop {
            if let Some(t) = self.tasks.iter_mut().find(|t| t.id == s.task) {
                t.phase = Phase::Stopped;
            }
        }
        for s in &a.start {
            self.next += 1;
            let inst = s
                .instance
                .clone()
                .unwrap_or_else(|| format!("i{}", self.next as usize % instances));
            self.tasks.push(task(
                &format!("n{}", self.next),
                &s.deployment,
                &inst,
                Phase::Pending,
            ));
        }
    }
}

fn healthy(tasks: &[Task]) -> usize {
    tasks.iter().filter(|t| counts_healthy(t)).count()
}
fn live_count(tasks: &[Task]) -> usize {
    tasks.iter().filter(|t| live(t)).count()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A rolling deployment never goes below the healthy floor nor above the ceiling, and
    /// always converges to the desired count on the new deployment.
    #[test]
    fn rolling_deployment_is_safe_and_converges(
        desired in 0u32..12,
        min in prop::sample::select(vec![0u32, 25, 50, 75, 100]),
        max in prop::sample::select(vec![100u32, 125, 150, 200]),
        progress in prop::collection::vec(any::<bool>(), 200),
    ) {
        // With no room above the floor (e.g. one task, max 100%, any min > 0) a rolling
        // update cannot move at all, in ECS as here.
        prop_assume!(ceiling(desired, max) > floor(desired, min) || desired == 0);
        let s = spec(desired, min, max);
        let mut w = World { tasks: (0..desired).map(|i| task(&format!("o{i}"), "d1", "i0", Phase::Running)).collect(), next: 0 };
        let deps = deployments(&["d1", "d2"]);
        let bottom = floor(desired, min) as usize;
        let top = ceiling(desired, max) as usize;
        let mut converged = false;
        for (step, p) in progress.iter().enumerate() {
            let o = Observed { deployments: deps.clone(), tasks: w.tasks.clone(), instances: instances(3), now: step as f64 };
            let a = compute(&s, &o);
            let healthy_before = healthy(&w.tasks);
            w.apply(&a, 3);
            prop_assert!(healthy(&w.tasks) >= bottom.min(healthy_before), "below floor at step {}", step);
            prop_assert!(live_count(&w.tasks) <= top.max(desired as usize), "above ceiling at step {}", step);
            if a.steady { converged = true; break; }
            // The world moves: some pending tasks start.
            for t in w.tasks.iter_mut().filter(|t| t.phase == Phase::Pending) {
                if *p || t.id.len() % 2 == 0 { t.phase = Phase::Running; t.started_at = Some(step as f64); }
            }
        }
        prop_assert!(converged, "did not converge: {:?}", w.tasks);
        let new_running = w.tasks.iter().filter(|t| t.deployment == "d2" && t.phase == Phase::Running).count();
        prop_assert_eq!(new_running, desired as usize);
        prop_assert_eq!(live_count(&w.tasks), desired as usize);
    }

    /// Whatever exists, a computation never both starts beyond the ceiling and never stops
    /// a task twice.
    #[test]
    fn actions_are_well_formed(
        desired in 0u32..20,
        phases in prop::collection::vec((0u8..4, 0u8..3, 0usize..4, any::<bool>()), 0..30),
    ) {
        let tasks: Vec<Task> = phases.iter().enumerate().map(|(i, (ph, h, inst, old))| {
            let mut t = task(&format!("t{i}"), if *old { "d1" } else { "d2" }, &format!("i{inst}"), match ph { 0 => Phase::Pending, 1 => Phase::Running, 2 => Phase::Stopping, _ => Phase::Stopped });
            t.has_health_check = true;
            t.health = match h { 0 => Health::Healthy, 1 => Health::Unhealthy, _ => Health::Unknown };
            t
        }).collect();
        let o = Observed { deployments: deployments(&["d1", "d2"]), tasks, instances: instances(3), now: 100.0 };
        let a = compute(&spec(desired, 100, 200), &o);
        let mut seen = std::collections::HashSet::new();
        for s in &a.stop { prop_assert!(seen.insert(s.task.clone())); }
        let live_after = o.tasks.iter().filter(|t| live(t) && !seen.contains(&t.id)).count() + a.start.len();
        prop_assert!(live_after <= (ceiling(desired, 200) as usize).max(o.tasks.iter().filter(|t| live(t)).count()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// DAEMON: whatever the instances (eligible or not, ACTIVE or DRAINING) and whatever
    /// ran before, the service converges to exactly one PRIMARY task on each eligible ACTIVE
    /// instance and none elsewhere, never running more than the ceiling meanwhile.
    #[test]
    fn daemon_converges_to_one_task_per_eligible_instance(
        shape in prop::collection::vec((any::<bool>(), any::<bool>(), 0usize..3, 0usize..2), 1..8),
        max in prop::sample::select(vec![100u32, 150, 200]),
        min in prop::sample::select(vec![0u32, 50, 100]),
    ) {
        let mut s = spec(0, min, max);
        s.scheduling = Scheduling::Daemon;
        let inst: Vec<Instance> = shape.iter().enumerate().map(|(i, (eligible, draining, _, _))| Instance {
            id: format!("i{i}"),
            status: if *draining { InstanceStatus::Draining } else { InstanceStatus::Active },
            disconnected_since: None,
            eligible: *eligible,
        }).collect();
        let mut tasks = Vec::new();
        for (i, (_, _, old, cur)) in shape.iter().enumerate() {
            for k in 0..*old { tasks.push(task(&format!("o{i}-{k}"), "d1", &format!("i{i}"), Phase::Running)); }
            for k in 0..*cur { tasks.push(task(&format!("c{i}-{k}"), "d2", &format!("i{i}"), Phase::Running)); }
        }
        let want: usize = inst.iter().filter(|i| i.eligible && i.status == InstanceStatus::Active).count();
        prop_assume!(ceiling(want as u32, max) > floor(want as u32, min) || want == 0);
        let mut w = World { tasks, next: 0 };
        let deps = deployments(&["d1", "d2"]);
        let mut converged = false;
        for step in 0..60 {
            let o = Observed { deployments: deps.clone(), tasks: w.tasks.clone(), instances: inst.clone(), now: step as f64 };
            let a = compute(&s, &o);
            let on_eligible = |ts: &[Task]| ts.iter().filter(|t| live(t)).filter(|t| inst.iter().any(|i| i.id == t.instance && i.eligible && i.status == InstanceStatus::Active)).count();
            let before = on_eligible(&w.tasks);
            w.apply(&a, inst.len());
            let top = ceiling(want as u32, max) as usize;
            prop_assert!(on_eligible(&w.tasks) <= top.max(before), "above the ceiling at step {}", step);
            if a.steady { converged = true; break; }
            for t in w.tasks.iter_mut().filter(|t| t.phase == Phase::Pending) { t.phase = Phase::Running; t.started_at = Some(step as f64); }
        }
        prop_assert!(converged, "did not converge: {:?}", w.tasks);
        for i in &inst {
            let n = w.tasks.iter().filter(|t| live(t) && t.instance == i.id).count();
            let should = usize::from(i.eligible && i.status == InstanceStatus::Active);
            prop_assert_eq!(n, should, "instance {}", i.id);
        }
        prop_assert!(w.tasks.iter().filter(|t| live(t)).all(|t| t.deployment == "d2"));
    }
}

/// Min 100 %: the old deployment's tasks stay while the new ones run but are not yet
/// judged healthy (a load balancer's checks pending).
#[test]
fn old_tasks_stay_while_new_ones_are_not_yet_healthy() {
    let mut tasks: Vec<Task> = (0..3)
        .map(|i| task(&format!("o{i}"), "d1", "i0", Phase::Running))
        .collect();
    for i in 0..3 {
        let mut t = task(&format!("n{i}"), "d2", "i0", Phase::Running);
        t.has_health_check = true;
        tasks.push(t);
    }
    let o = on_one_instance(&["d1", "d2"], tasks, 1000.0);
    let a = compute(&spec(3, 100, 200), &o);
    assert!(a.stop.is_empty(), "{:?}", a.stop);
}

#[test]
fn deactivating_tasks_are_not_stopped_again_and_hold_room() {
    // Two tasks failed their checks and drain; their replacements run. The drained ones
    // are the controller's to stop: no stop again, no more starts, and their deployment
    // stays until they are gone.
    let mut tasks: Vec<Task> = (0..2)
        .map(|i| task(&format!("x{i}"), "d1", "i0", Phase::Deactivating))
        .collect();
    tasks.extend((0..3).map(|i| task(&format!("n{i}"), "d2", "i0", Phase::Running)));
    let o = on_one_instance(&["d1", "d2"], tasks, 1000.0);
    let a = compute(&spec(3, 100, 200), &o);
    assert!(a.stop.is_empty(), "{:?}", a.stop);
    assert!(a.start.is_empty(), "{:?}", a.start);
    assert!(a.retire.is_empty(), "d1 still has tasks on their way out");
    assert_eq!(a.counts_of("d1").running, 0);
    // With the ceiling full of deactivating tasks, nothing starts yet.
    let o = Observed {
        deployments: deployments(&["d1"]),
        tasks: (0..6)
            .map(|i| task(&format!("x{i}"), "d1", "i0", Phase::Deactivating))
            .collect(),
        instances: instances(1),
        now: 1000.0,
    };
    let a = compute(&spec(3, 100, 200), &o);
    assert!(a.start.is_empty(), "{:?}", a.start);
    let o = Observed {
        tasks: (0..2)
            .map(|i| task(&format!("x{i}"), "d1", "i0", Phase::Deactivating))
            .collect(),
        ..o
    };
    assert_eq!(compute(&spec(3, 100, 200), &o).start.len(), 3);
}

/// Three running tasks of one deployment, `protect` of them protected until t=1000.
fn three_with_protected(protect: &[&str]) -> Vec<Task> {
    ["a", "b", "c"]
        .iter()
        .map(|id| {
            let mut t = task(id, "d1", "i0", Phase::Running);
            if protect.contains(id) {
                t.protected_until = Some(1000.0);
            }
            t
        })
        .collect()
}

#[test]
fn scale_in_stops_only_unprotected_tasks() {
    let o = on_one_instance(&["d1"], three_with_protected(&["a", "c"]), 10.0);
    let a = compute(&spec(1, 100, 200), &o);
    let stopped: Vec<&str> = a.stop.iter().map(|s| s.task.as_str()).collect();
    assert_eq!(stopped, ["b"]);
    // One protected task more than wanted stays: no steady state, and it is reported.
    assert_eq!(a.protected_kept, ["a", "c"]);
    assert!(!a.steady);
    assert!(a.start.is_empty());
}

#[test]
fn scale_in_waits_when_every_task_is_protected() {
    let o = on_one_instance(&["d1"], three_with_protected(&["a", "b", "c"]), 10.0);
    let a = compute(&spec(1, 100, 200), &o);
    assert!(a.stop.is_empty());
    assert_eq!(a.protected_kept, ["a", "b", "c"]);
    assert!(!a.steady);
}

#[test]
fn expired_protection_no_longer_holds_a_task() {
    // At t=1000 the protection has expired: scale-in proceeds as if it never was.
    let o = on_one_instance(&["d1"], three_with_protected(&["a", "b", "c"]), 1000.0);
    let a = compute(&spec(1, 100, 200), &o);
    assert_eq!(a.stop.len(), 2);
    assert!(a.protected_kept.is_empty());
}

#[test]
fn protected_old_tasks_block_the_deployment_until_released() {
    let mut tasks = three_with_protected(&["b"]);
    tasks.extend(["n1", "n2", "n3"].map(|id| task(id, "d2", "i0", Phase::Running)));
    let o = on_one_instance(&["d1", "d2"], tasks.clone(), 10.0);
    let a = compute(&spec(3, 100, 200), &o);
    let stopped: Vec<&str> = a.stop.iter().map(|s| s.task.as_str()).collect();
    assert_eq!(stopped, ["a", "c"]);
    assert_eq!(a.protected_kept, ["b"]);
    assert!(
        a.retire.is_empty(),
        "the old deployment still runs its protected task"
    );
    assert!(!a.steady);
    // Once protection expires the old task goes and the deployment can finish.
    let later = on_one_instance(&["d1", "d2"], tasks, 1000.0);
    let a = compute(&spec(3, 100, 200), &later);
    assert!(a.stop.iter().any(|s| s.task == "b"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the desired count and deployments, no scale-in or deployment stop ever
    /// names a task whose protection is still running.
    #[test]
    fn protected_tasks_are_never_scaled_in_or_replaced(
        desired in 0u32..8,
        shape in prop::collection::vec((any::<bool>(), any::<bool>(), any::<bool>()), 0..12),
        now in 0.0f64..200.0,
    ) {
        let tasks: Vec<Task> = shape.iter().enumerate().map(|(i, (old, protect, pending))| {
            let mut t = task(&format!("t{i}"), if *old { "d1" } else { "d2" }, "i0",
                if *pending { Phase::Pending } else { Phase::Running });
            if *protect { t.protected_until = Some(100.0); }
            t
        }).collect();
        let o = on_one_instance(&["d1", "d2"], tasks, now);
        let a = compute(&spec(desired, 50, 200), &o);
        for s in &a.stop {
            let t = o.tasks.iter().find(|t| t.id == s.task).expect("stops a known task");
            prop_assert!(!(matches!(s.reason, StopReason::ScaleIn | StopReason::Deployment) && t.is_protected(now)),
                "stopped protected task {} at {}", t.id, now);
        }
    }
}

#[test]
fn a_task_waiting_for_capacity_is_pending_not_lost() {
    let o = Observed {
        deployments: deployments(&["d1"]),
        tasks: vec![
            task("t0", "d1", "i0", Phase::Running),
            task("t1", "d1", "", Phase::Pending),
        ],
        instances: instances(1),
        now: 10.0,
    };
    let a = compute(&spec(2, 100, 200), &o);
    assert!(a.stop.is_empty() && a.start.is_empty());
    assert!(!a.steady);
}
