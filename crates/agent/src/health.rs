//! What the agent knows of its containers' health checks, waiting to go upstream. Task
//! actors write verdicts into the [`HealthBoard`]; the channel sends every entry that
//! changed since it last looked as a `PublishHealthRequest`, and everything again on each
//! new session (the server applies a report twice without effect). So a change made while
//! disconnected is delivered on reconnect, and a report lost with a dying connection is
//! delivered again.

use std::collections::BTreeMap;
use std::sync::Mutex;

use model::acs::{ContainerHealth, TaskHealth};
use tokio::sync::watch;

/// One task's identity on the board.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskKey<'a> {
    /// Task ARN.
    pub arn: &'a str,
    /// Cluster ARN.
    pub cluster: &'a str,
    /// Task definition family.
    pub family: &'a str,
    /// Task definition revision.
    pub version: &'a str,
}

#[derive(Debug)]
struct Entry {
    generation: u64,
    health: TaskHealth,
}

#[derive(Debug, Default)]
struct Inner {
    generation: u64,
    tasks: BTreeMap<String, Entry>,
}

/// Health verdicts by task, each stamped with the board generation that last changed it.
#[derive(Debug)]
pub struct HealthBoard {
    inner: Mutex<Inner>,
    changed: watch::Sender<u64>,
}

impl Default for HealthBoard {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            changed: watch::Sender::new(0),
        }
    }
}

impl HealthBoard {
    /// An empty board.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the verdicts (`(container name, HEALTHY|UNHEALTHY|UNKNOWN)`) of `task`'s
    /// containers that have a health check; `now` (epoch seconds) becomes the
    /// `statusSince` of each one that changed. Returns whether anything changed.
    pub fn record(&self, task: &TaskKey<'_>, verdicts: &[(&str, &str)], now: f64) -> bool {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let next = inner.generation + 1;
        let entry = inner
            .tasks
            .entry(task.arn.to_owned())
            .or_insert_with(|| Entry {
                generation: next,
                health: TaskHealth {
                    task_arn: task.arn.to_owned(),
                    cluster_arn: Some(task.cluster.to_owned()),
                    task_definition_family: Some(task.family.to_owned()),
                    task_definition_version: Some(task.version.to_owned()),
                    containers: Vec::new(),
                },
            });
        let mut changed = false;
        for (name, status) in verdicts {
            match entry
                .health
                .containers
                .iter_mut()
                .find(|c| c.container_name == *name)
            {
                Some(c) if c.health_status == *status => {}
                Some(c) => {
                    c.health_status = (*status).to_owned();
                    c.status_since = Some(now);
                    changed = true;
                }
                None => {
                    entry.health.containers.push(ContainerHealth {
                        container_name: (*name).to_owned(),
                        health_status: (*status).to_owned(),
                        status_since: Some(now),
                        status_message: None,
                    });
                    changed = true;
                }
            }
        }
        if changed {
            entry.generation = next;
            inner.generation = next;
            self.changed.send_replace(next);
        }
        changed
    }

    /// Forgets a task (cleaned up).
    pub fn remove(&self, arn: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.tasks.remove(arn);
    }

    /// The tasks changed after generation `since` (0: all), and the board's generation.
    pub fn changed_since(&self, since: u64) -> (Vec<TaskHealth>, u64) {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let tasks = inner
            .tasks
            .values()
            .filter(|e| e.generation > since && !e.health.containers.is_empty())
            .map(|e| e.health.clone())
            .collect();
        (tasks, inner.generation)
    }

    /// Watches the board's generation (it moves on every change).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(arn: &str) -> TaskKey<'_> {
        TaskKey {
            arn,
            cluster: "c",
            family: "f",
            version: "1",
        }
    }

    #[test]
    fn only_changes_move_the_board_and_a_new_session_sees_everything() {
        let b = HealthBoard::new();
        assert!(b.record(&key("t1"), &[("web", "UNKNOWN")], 1.0));
        assert!(!b.record(&key("t1"), &[("web", "UNKNOWN")], 2.0));
        assert!(b.record(&key("t2"), &[("db", "HEALTHY")], 3.0));
        let (all, g) = b.changed_since(0);
        assert_eq!(all.len(), 2);
        assert!(b.changed_since(g).0.is_empty());
        assert!(b.record(&key("t1"), &[("web", "HEALTHY")], 4.0));
        let (changed, _) = b.changed_since(g);
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].containers[0].health_status, "HEALTHY");
        assert_eq!(changed[0].containers[0].status_since, Some(4.0));
        b.remove("t1");
        assert_eq!(b.changed_since(0).0.len(), 1);
    }

    #[test]
    fn tasks_without_checked_containers_are_not_sent() {
        let b = HealthBoard::new();
        b.record(&key("t"), &[], 1.0);
        assert!(b.changed_since(0).0.is_empty());
    }
}
