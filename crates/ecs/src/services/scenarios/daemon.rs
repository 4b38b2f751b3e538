//! DAEMON services: one task on every eligible instance, as instances come and go.

use super::Sim;
use model::ecs::shapes::SchedulingStrategy;
use reconcile::Phase;

/// A DAEMON service (min 0, max 100, ECS's defaults for DAEMON) over `instances`.
fn daemon(instances: usize) -> Sim {
    let mut sim = Sim::new(0, 0, 100, instances);
    sim.st.service.scheduling_strategy = Some(SchedulingStrategy::Daemon);
    sim.converge(10);
    sim.log.clear();
    sim
}

fn tasks_per_instance(sim: &Sim) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for (t, _) in &sim.tasks {
        if matches!(t.phase, Phase::Pending | Phase::Running) {
            *out.entry(t.instance.clone()).or_insert(0) += 1;
        }
    }
    out
}

#[test]
fn daemon_runs_exactly_one_task_on_each_instance() {
    let sim = daemon(3);
    let per = tasks_per_instance(&sim);
    assert_eq!(per.len(), 3);
    assert!(per.values().all(|n| *n == 1));
    assert_eq!(sim.st.service.desired_count, Some(3));
    assert!(sim.st.steady);
}

#[test]
fn daemon_starts_a_task_on_an_instance_that_joins() {
    let mut sim = daemon(2);
    let joined = sim.join_instance();
    let act = sim.round().expect("acts");
    let start = act.start.expect("a start");
    assert_eq!(start.on_instances, vec![joined.clone()]);
    sim.settle();
    sim.converge(5);
    assert_eq!(tasks_per_instance(&sim).get(&joined), Some(&1));
    assert_eq!(sim.st.service.desired_count, Some(3));
}

#[test]
fn daemon_task_of_an_instance_that_leaves_is_stopped_and_not_replaced() {
    let mut sim = daemon(3);
    let gone = sim.instances.remove(1).0.id;
    let act = sim.round().expect("acts");
    assert_eq!(act.stop.len(), 1);
    assert_eq!(act.stop[0].message, "Container instance is unavailable");
    assert!(act.start.is_none());
    sim.settle();
    sim.converge(5);
    assert!(!tasks_per_instance(&sim).contains_key(&gone));
    assert_eq!(sim.st.service.desired_count, Some(2));
}

#[test]
fn daemon_skips_instances_its_constraints_exclude() {
    let mut sim = Sim::new(0, 0, 100, 0);
    sim.st.service.scheduling_strategy = Some(SchedulingStrategy::Daemon);
    for role in ["web", "db", "web"] {
        let id = sim.join_instance();
        let (_, e) = sim.instance_mut(&id);
        e.attributes.insert("role".into(), Some(role.into()));
    }
    if let Ok(l) = sim.launch.as_mut() {
        l.constraints =
            vec![
                placement::parse_constraint("memberOf", Some("attribute:role == web"))
                    .expect("constraint"),
            ];
    }
    sim.converge(10);
    let per = tasks_per_instance(&sim);
    assert_eq!(per.keys().cloned().collect::<Vec<_>>(), ["a", "c"]);
    assert_eq!(sim.st.service.desired_count, Some(2));
}

#[test]
fn daemon_task_on_a_draining_instance_is_stopped() {
    let mut sim = daemon(2);
    {
        let (i, e) = sim.instance_mut("b");
        i.status = reconcile::InstanceStatus::Draining;
        e.active = false;
    }
    let act = sim.round().expect("acts");
    assert_eq!(act.stop.len(), 1);
    assert_eq!(act.stop[0].message, "Container instance is draining");
    assert_eq!(sim.task(&act.stop[0].stop.task).instance, "b");
}
