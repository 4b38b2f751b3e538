//! `lifecycle` owns the state machines an agent drives its tasks through: the
//! agent-internal container and task statuses (which only move forward), the pure
//! [`next_step`] that says what to do next for one container given what is known,
//! what is desired and what its dependencies have reached, and the mapping of internal
//! statuses to the `lastStatus` ECS reports.
//!
//! It must stay pure: no I/O, no clock, no runtime. The agent's task actor calls it and
//! performs the effects.

/// Where a container is, as the agent knows it. Ordered: a status never moves backwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ContainerStatus {
    /// Nothing done yet.
    None,
    /// Its image is present locally.
    Pulled,
    /// The Docker container exists.
    Created,
    /// Started.
    Running,
    /// Exited, or was never started and never will be.
    Stopped,
}

/// What the control plane wants of a task (and so of each of its containers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DesiredStatus {
    /// Run it.
    Running,
    /// Stop it.
    Stopped,
}

impl DesiredStatus {
    /// A desired status only moves forward: RUNNING can become STOPPED, never the reverse.
    #[must_use]
    pub fn advance(self, to: DesiredStatus) -> DesiredStatus {
        self.max(to)
    }
}

/// Health as Docker reports it for containers with a health check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Health {
    /// No verdict yet, or no health check.
    Unknown,
    /// Passing.
    Healthy,
    /// Failing.
    Unhealthy,
}

/// A `dependsOn` condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Condition {
    /// The dependency has started.
    Start,
    /// The dependency has exited (any code).
    Complete,
    /// The dependency has exited with code 0.
    Success,
    /// The dependency's health check passes.
    Healthy,
}

impl Condition {
    /// Parses ECS's spelling (`START`, `COMPLETE`, `SUCCESS`, `HEALTHY`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "START" => Some(Self::Start),
            "COMPLETE" => Some(Self::Complete),
            "SUCCESS" => Some(Self::Success),
            "HEALTHY" => Some(Self::Healthy),
            _ => None,
        }
    }
}

/// What is known of one container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Known {
    /// Its status.
    pub status: ContainerStatus,
    /// Its exit code once stopped.
    pub exit_code: Option<i64>,
    /// Its health.
    pub health: Health,
}

impl Known {
    /// A container nothing has happened to yet.
    pub fn new() -> Self {
        Self {
            status: ContainerStatus::None,
            exit_code: None,
            health: Health::Unknown,
        }
    }
}

impl Default for Known {
    fn default() -> Self {
        Self::new()
    }
}

/// One dependency of a container and the state it has reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency<'a> {
    /// The dependency's name.
    pub name: &'a str,
    /// The condition to wait for.
    pub condition: Condition,
    /// What is known of it.
    pub known: &'a Known,
}

/// What to do next for a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing can happen until the named containers change.
    Wait(Vec<String>),
    /// Perform the effect that takes the container to this status.
    Act(ContainerStatus),
    /// The container can never reach what is wanted: record it as this status without
    /// acting (e.g. STOPPED for a container whose dependency can no longer be met).
    Mark(ContainerStatus),
    /// It is where it should be.
    Done,
}

/// Whether `dep` satisfies its condition; `None` when it never will.
fn satisfied(dep: &Dependency<'_>) -> Option<bool> {
    let k = dep.known;
    let stopped = k.status == ContainerStatus::Stopped;
    match dep.condition {
        Condition::Start => {
            if k.status >= ContainerStatus::Running {
                // A dependency that stopped without ever running fails START; the agent
                // cannot tell from the status alone, so an exit code is taken as "it ran".
                Some(!stopped || k.exit_code.is_some())
            } else {
                Some(false)
            }
        }
        Condition::Complete => Some(stopped),
        Condition::Success => match (stopped, k.exit_code) {
            (true, Some(0)) => Some(true),
            (true, _) => None,
            (false, _) => Some(false),
        },
        Condition::Healthy => match (k.health, stopped) {
            (Health::Healthy, _) => Some(true),
            (Health::Unhealthy, _) | (_, true) => None,
            _ => Some(false),
        },
    }
}

/// The next step for one container.
///
/// - Desired RUNNING: pull, then create, then start once every dependency's condition
///   holds; a dependency whose condition can no longer hold marks the container STOPPED.
/// - Desired STOPPED: stop a running container once every container that depends on it
///   (`dependents`) has stopped (shutdown runs in reverse dependency order); a container
///   that never started is marked STOPPED.
pub fn next_step(
    known: &Known,
    desired: DesiredStatus,
    dependencies: &[Dependency<'_>],
    dependents: &[(&str, &Known)],
) -> Step {
    match desired {
        DesiredStatus::Running => match known.status {
            ContainerStatus::None => Step::Act(ContainerStatus::Pulled),
            ContainerStatus::Pulled => Step::Act(ContainerStatus::Created),
            ContainerStatus::Created => {
                let mut waiting = Vec::new();
                for d in dependencies {
                    match satisfied(d) {
                        Some(true) => {}
                        Some(false) => waiting.push(d.name.to_owned()),
                        None => return Step::Mark(ContainerStatus::Stopped),
                    }
                }
                if waiting.is_empty() {
                    Step::Act(ContainerStatus::Running)
                } else {
                    Step::Wait(waiting)
                }
            }
            ContainerStatus::Running | ContainerStatus::Stopped => Step::Done,
        },
        DesiredStatus::Stopped => match known.status {
            ContainerStatus::Stopped => Step::Done,
            ContainerStatus::Running => {
                let running: Vec<String> = dependents
                    .iter()
                    .filter(|(_, k)| k.status == ContainerStatus::Running)
                    .map(|(n, _)| (*n).to_owned())
                    .collect();
                if running.is_empty() {
                    Step::Act(ContainerStatus::Stopped)
                } else {
                    Step::Wait(running)
                }
            }
            ContainerStatus::None | ContainerStatus::Pulled | ContainerStatus::Created => {
                Step::Mark(ContainerStatus::Stopped)
            }
        },
    }
}

/// Applies an observed status, refusing to move backwards. Returns whether it changed.
pub fn observe(known: &mut Known, status: ContainerStatus) -> bool {
    if status > known.status {
        known.status = status;
        true
    } else {
        false
    }
}

/// The `lastStatus` ECS shows for an internal container or task status.
pub fn ecs_status(status: ContainerStatus) -> &'static str {
    match status {
        ContainerStatus::None | ContainerStatus::Pulled | ContainerStatus::Created => "PENDING",
        ContainerStatus::Running => "RUNNING",
        ContainerStatus::Stopped => "STOPPED",
    }
}

/// A container of a task, for task-level decisions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member<'a> {
    /// Whether its exit stops the task.
    pub essential: bool,
    /// What is known of it.
    pub known: &'a Known,
}

/// The task's own status from its containers': RUNNING once every essential container
/// runs (non-essential ones may have come and gone), STOPPED once all have stopped, else
/// the lowest status reached.
pub fn task_status(members: &[Member<'_>]) -> ContainerStatus {
    if members.is_empty() {
        return ContainerStatus::None;
    }
    if members
        .iter()
        .all(|m| m.known.status == ContainerStatus::Stopped)
    {
        return ContainerStatus::Stopped;
    }
    let essentials_running = members
        .iter()
        .filter(|m| m.essential)
        .all(|m| m.known.status >= ContainerStatus::Running);
    if essentials_running
        && members
            .iter()
            .all(|m| m.known.status >= ContainerStatus::Created)
    {
        return ContainerStatus::Running;
    }
    members
        .iter()
        .map(|m| m.known.status)
        .min()
        .unwrap_or(ContainerStatus::None)
}

/// Whether the task must stop on its own: an essential container has stopped.
pub fn essential_exited(members: &[Member<'_>]) -> bool {
    members
        .iter()
        .any(|m| m.essential && m.known.status == ContainerStatus::Stopped)
}

#[cfg(test)]
mod tests;
