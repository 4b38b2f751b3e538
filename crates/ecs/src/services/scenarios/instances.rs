//! Instances that drain, lose their agent, or cannot take a task.

use super::Sim;
use reconcile::{InstanceStatus, Phase};

fn drain(sim: &mut Sim, id: &str) {
    let (i, e) = sim.instance_mut(id);
    i.status = InstanceStatus::Draining;
    e.active = false;
}

fn live_on(sim: &Sim, id: &str) -> usize {
    sim.tasks
        .iter()
        .filter(|(t, _)| t.instance == id && matches!(t.phase, Phase::Pending | Phase::Running))
        .count()
}

#[test]
fn tasks_on_a_draining_instance_move_elsewhere_never_below_desired_at_min_100() {
    let mut sim = Sim::steady(4, 100, 200, 4);
    let before = live_on(&sim, "a");
    assert!(before > 0, "instance a runs some task");
    drain(&mut sim, "a");
    sim.converge(20);
    assert_eq!(live_on(&sim, "a"), 0);
    assert_eq!(sim.tally().live, 4);
    assert!(sim.min_healthy() >= 4, "{:?}", sim.tallies);
    // Replacements started before the drained tasks stopped.
    let first_start = sim.log.iter().position(|l| l.starts_with("start"));
    let first_stop = sim.log.iter().position(|l| l.starts_with("stop"));
    assert!(first_start < first_stop, "{:?}", sim.log);
    assert!(sim.events().iter().all(|e| !e.contains("unable to place")));
}

#[test]
fn draining_two_of_four_instances_at_min_50_keeps_half_healthy() {
    let mut sim = Sim::steady(4, 50, 100, 4);
    drain(&mut sim, "a");
    drain(&mut sim, "b");
    sim.converge(20);
    assert_eq!(live_on(&sim, "a") + live_on(&sim, "b"), 0);
    assert!(sim.min_healthy() >= 2, "{:?}", sim.tallies);
    assert!(sim.max_live() <= 4, "{:?}", sim.tallies);
    assert_eq!(sim.tally().healthy, 4);
}

#[test]
fn a_lost_agent_is_waited_for_until_the_timeout_then_its_tasks_are_replaced() {
    let mut sim = Sim::steady(2, 100, 200, 2);
    let on_a: Vec<String> = sim
        .tasks
        .iter()
        .filter(|(t, _)| t.instance == "a")
        .map(|(t, _)| t.id.clone())
        .collect();
    assert!(!on_a.is_empty());
    let since = sim.clock.now();
    {
        let (i, e) = sim.instance_mut("a");
        i.disconnected_since = Some(since);
        e.agent_connected = false;
    }
    // Within the timeout: nothing moves.
    sim.clock.advance(299.0);
    let act = sim.round().expect("acts");
    assert!(act.stop.is_empty() && act.start.is_none());
    // Past it: the tasks count as lost and are replaced elsewhere.
    sim.clock.advance(2.0);
    let act = sim.round().expect("acts");
    let stopped: Vec<String> = act.stop.iter().map(|p| p.stop.task.clone()).collect();
    assert_eq!(stopped, on_a);
    assert!(act
        .stop
        .iter()
        .all(|p| p.message == "Container instance is unavailable"));
    assert_eq!(act.start.map(|s| s.count), Some(on_a.len()));
    sim.settle();
    sim.converge(10);
    assert_eq!(live_on(&sim, "b"), 2, "both run on the connected instance");
}

#[test]
fn a_task_that_fits_nowhere_is_an_event_not_repeated_within_five_minutes() {
    let mut sim = Sim::new(1, 100, 200, 1);
    sim.instance_mut("a").1.memory = 128;
    sim.round();
    let wanted = "(service web) was unable to place a task because no container instance met all of its requirements. Reason: The closest matching container-instance lacks: RESOURCE:MEMORY.";
    assert_eq!(sim.events(), [wanted]);
    sim.settle();
    sim.round();
    assert_eq!(sim.events().len(), 1, "not repeated within five minutes");
    sim.clock.advance(301.0);
    sim.round();
    assert_eq!(sim.events().len(), 2);
}

#[test]
fn a_cluster_without_instances_says_so() {
    let mut sim = Sim::new(2, 100, 200, 0);
    sim.round();
    assert!(sim.has_event("No Container Instances were found in your cluster."));
    // Once an instance joins, the tasks are placed.
    sim.join_instance();
    sim.converge(10);
    assert_eq!(sim.tally().healthy, 2);
}

#[test]
fn a_launch_that_cannot_be_resolved_is_an_event() {
    let mut sim = Sim::new(1, 100, 200, 1);
    sim.launch = Err("TaskDefinition is inactive".into());
    let act = sim.round().expect("acts");
    assert!(act.start.is_none());
    assert!(sim.has_event("(service web) failed to launch a task: TaskDefinition is inactive"));
}
