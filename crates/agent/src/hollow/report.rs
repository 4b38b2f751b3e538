//! From payload tasks to `SubmitTaskStateChange` requests, once per task and status.
//!
//! A hollow instance moves a task straight from PENDING to RUNNING when told to run it,
//! and straight to STOPPED (exit code 0) when told to stop it. Statuses only move
//! forward: a RUNNING desire for a task already reported STOPPED is ignored, and a status
//! already reported is not reported again, which makes re-delivered payloads harmless.

use std::collections::{HashMap, VecDeque};

use model::acs;
use model::ecs::shapes::{
    ContainerStateChange, NetworkBinding, SubmitTaskStateChangeRequest, TransportProtocol,
};

/// First port handed out for dynamic host ports (Docker's ephemeral range starts here).
pub const FIRST_DYNAMIC_PORT: u16 = 49153;

/// How many stopped tasks an instance remembers, to drop their duplicates.
const REMEMBERED_STOPPED: usize = 64;

/// The statuses a hollow instance reports, in the only order they may be reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reported {
    /// Reported RUNNING.
    Running,
    /// Reported STOPPED.
    Stopped,
}

/// A state change to submit for one task.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskReport {
    /// Task ARN.
    pub arn: String,
    /// The status being reported.
    pub status: Reported,
    /// The request to send.
    pub request: SubmitTaskStateChangeRequest,
}

/// One instance's memory of what it has reported.
#[derive(Debug)]
pub struct Reporter {
    cluster: String,
    reported: HashMap<String, Reported>,
    stopped_order: VecDeque<String>,
    next_port: u16,
}

impl Reporter {
    /// A reporter for an instance of `cluster` (name or ARN, sent as `cluster`).
    pub fn new(cluster: impl Into<String>) -> Self {
        Self {
            cluster: cluster.into(),
            reported: HashMap::new(),
            stopped_order: VecDeque::new(),
            next_port: FIRST_DYNAMIC_PORT,
        }
    }

    /// Tasks currently reported RUNNING and not yet STOPPED.
    pub fn running(&self) -> usize {
        self.reported
            .values()
            .filter(|r| **r == Reported::Running)
            .count()
    }

    /// The report `task` calls for now, if any. `now` is epoch seconds.
    pub fn plan(&mut self, task: &acs::Task, now: f64) -> Option<TaskReport> {
        let wanted = match task.desired_status.as_str() {
            "RUNNING" => Reported::Running,
            "STOPPED" => Reported::Stopped,
            _ => return None,
        };
        if self
            .reported
            .get(&task.arn)
            .is_some_and(|done| *done >= wanted)
        {
            return None;
        }
        let request = match wanted {
            Reported::Running => self.running_request(task, now),
            Reported::Stopped => self.stopped_request(task, now),
        };
        Some(TaskReport {
            arn: task.arn.clone(),
            status: wanted,
            request,
        })
    }

    /// Records a report the server accepted (or refused for good).
    pub fn record(&mut self, arn: &str, status: Reported) {
        let previous = self.reported.insert(arn.to_owned(), status);
        if previous.is_some_and(|p| p > status) {
            // Never move backwards.
            self.reported.insert(arn.to_owned(), Reported::Stopped);
            return;
        }
        if status == Reported::Stopped && previous != Some(Reported::Stopped) {
            self.stopped_order.push_back(arn.to_owned());
            while self.stopped_order.len() > REMEMBERED_STOPPED {
                if let Some(old) = self.stopped_order.pop_front() {
                    self.reported.remove(&old);
                }
            }
        }
    }

    fn running_request(&mut self, task: &acs::Task, now: f64) -> SubmitTaskStateChangeRequest {
        let host_mode = matches!(task.network_mode.as_deref(), Some("host" | "awsvpc"));
        let containers = task
            .containers
            .iter()
            .map(|c| ContainerStateChange {
                container_name: Some(c.name.clone()),
                runtime_id: Some(format!("sim-{}", runtime_suffix(&task.arn, &c.name))),
                status: Some("RUNNING".to_owned()),
                network_bindings: Some(
                    c.port_mappings
                        .iter()
                        .filter_map(|pm| self.binding(pm, host_mode))
                        .collect(),
                ),
                ..ContainerStateChange::default()
            })
            .collect();
        SubmitTaskStateChangeRequest {
            cluster: Some(self.cluster.clone()),
            task: Some(task.arn.clone()),
            status: Some("RUNNING".to_owned()),
            containers: Some(containers),
            pull_started_at: Some(now),
            pull_stopped_at: Some(now),
            ..SubmitTaskStateChangeRequest::default()
        }
    }

    fn stopped_request(&self, task: &acs::Task, now: f64) -> SubmitTaskStateChangeRequest {
        let containers = task
            .containers
            .iter()
            .map(|c| ContainerStateChange {
                container_name: Some(c.name.clone()),
                runtime_id: Some(format!("sim-{}", runtime_suffix(&task.arn, &c.name))),
                status: Some("STOPPED".to_owned()),
                exit_code: Some(0),
                ..ContainerStateChange::default()
            })
            .collect();
        SubmitTaskStateChangeRequest {
            cluster: Some(self.cluster.clone()),
            task: Some(task.arn.clone()),
            status: Some("STOPPED".to_owned()),
            containers: Some(containers),
            execution_stopped_at: Some(now),
            ..SubmitTaskStateChangeRequest::default()
        }
    }

    /// The binding a port mapping gets: its static host port, the container port in host
    /// and awsvpc modes, or the next fake dynamic port.
    fn binding(&mut self, pm: &acs::PortMapping, host_mode: bool) -> Option<NetworkBinding> {
        let container_port = pm.container_port?;
        let host_port = match pm.host_port {
            Some(p) if p > 0 => p,
            _ if host_mode => container_port,
            _ => {
                let p = self.next_port;
                self.next_port = if p == u16::MAX {
                    FIRST_DYNAMIC_PORT
                } else {
                    p + 1
                };
                i32::from(p)
            }
        };
        let protocol = match pm.protocol.as_deref() {
            Some("udp") => TransportProtocol::Udp,
            _ => TransportProtocol::Tcp,
        };
        Some(NetworkBinding {
            bind_ip: Some("0.0.0.0".to_owned()),
            container_port: Some(container_port),
            host_port: Some(host_port),
            protocol: Some(protocol),
            ..NetworkBinding::default()
        })
    }
}

/// A stable, short id for a container of a task: the task id plus the container name.
fn runtime_suffix(task_arn: &str, container: &str) -> String {
    let task_id = task_arn.rsplit('/').next().unwrap_or(task_arn);
    format!("{task_id}-{container}")
}
