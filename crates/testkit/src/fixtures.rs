//! Builders for what placement and the scheduler take: a container instance as placement
//! sees it ([`instance`]), a task definition ([`task_def`]), and the scheduler's view of
//! an instance ([`node`]) and of a task ([`task`]). Each starts from a plausible default
//! and changes one thing per call.

use model::ecs::shapes::{ContainerDefinition, PortMapping, TaskDefinition};
use reconcile::{Health, InstanceStatus, Phase};

/// A placement instance: ACTIVE, agent connected, 4 vCPU and 8 GiB, in `us-east-1a`.
pub fn instance(id: &str) -> InstanceBuilder {
    let mut i = placement::Instance {
        id: id.to_owned(),
        arn: format!("arn:aws:ecs:us-east-1:000000000000:container-instance/default/{id}"),
        ec2_instance_id: format!("i-{id}"),
        active: true,
        agent_connected: true,
        agent_version: Some("1.80.0".into()),
        cpu: 4096,
        memory: 8192,
        ..Default::default()
    };
    i.attributes
        .insert("ecs.availability-zone".into(), Some("us-east-1a".into()));
    i.attributes
        .insert("ecs.cpu-architecture".into(), Some("x86_64".into()));
    InstanceBuilder(i)
}

/// Builds a [`placement::Instance`].
#[derive(Clone, Debug)]
pub struct InstanceBuilder(placement::Instance);

impl InstanceBuilder {
    /// Registered CPU units and memory MiB.
    pub fn resources(mut self, cpu: i64, memory: i64) -> Self {
        self.0.cpu = cpu;
        self.0.memory = memory;
        self
    }

    /// CPU units and memory MiB already taken by tasks.
    pub fn used(mut self, cpu: i64, memory: i64) -> Self {
        self.0.used_cpu = cpu;
        self.0.used_memory = memory;
        self
    }

    /// Its availability zone.
    pub fn zone(self, zone: &str) -> Self {
        self.attribute("ecs.availability-zone", Some(zone))
    }

    /// Sets an attribute (a capability when `value` is `None`).
    pub fn attribute(mut self, name: &str, value: Option<&str>) -> Self {
        self.0
            .attributes
            .insert(name.to_owned(), value.map(str::to_owned));
        self
    }

    /// Whether its agent is connected.
    pub fn connected(mut self, connected: bool) -> Self {
        self.0.agent_connected = connected;
        self
    }

    /// DRAINING (or any status but ACTIVE): never a placement candidate.
    pub fn inactive(mut self) -> Self {
        self.0.active = false;
        self
    }

    /// The instance.
    pub fn build(self) -> placement::Instance {
        self.0
    }
}

/// The scheduler's view of an instance: ACTIVE, connected, eligible.
pub fn node(id: &str) -> reconcile::Instance {
    reconcile::Instance {
        id: id.to_owned(),
        status: InstanceStatus::Active,
        disconnected_since: None,
        eligible: true,
    }
}

/// A bridge-mode task definition `family:1` with one essential container `app` of
/// 128 CPU units and 256 MiB, ACTIVE.
pub fn task_def(family: &str) -> TaskDefinition {
    TaskDefinition {
        family: Some(family.to_owned()),
        revision: Some(1),
        task_definition_arn: Some(format!(
            "arn:aws:ecs:us-east-1:000000000000:task-definition/{family}:1"
        )),
        status: Some(model::ecs::shapes::TaskDefinitionStatus::Active),
        container_definitions: Some(vec![ContainerDefinition {
            name: Some("app".into()),
            image: Some("busybox".into()),
            cpu: Some(128),
            memory: Some(256),
            essential: Some(true),
            port_mappings: Some(vec![PortMapping {
                container_port: Some(80),
                ..Default::default()
            }]),
            ..Default::default()
        }]),
        ..Default::default()
    }
}

/// A task of deployment `deployment` on `instance`: RUNNING since t=0, no health check.
pub fn task(id: &str, deployment: &str, instance: &str) -> TaskBuilder {
    TaskBuilder(reconcile::Task {
        id: id.to_owned(),
        deployment: deployment.to_owned(),
        instance: instance.to_owned(),
        phase: Phase::Running,
        health: Health::Unknown,
        has_health_check: false,
        started_at: Some(0.0),
        stopped_at: None,
        failed: false,
        protected_until: None,
    })
}

/// Builds a [`reconcile::Task`].
#[derive(Clone, Debug)]
pub struct TaskBuilder(reconcile::Task);

impl TaskBuilder {
    /// Placed, not yet RUNNING.
    pub fn pending(mut self) -> Self {
        self.0.phase = Phase::Pending;
        self.0.started_at = None;
        self
    }

    /// In `phase`.
    pub fn phase(mut self, phase: Phase) -> Self {
        self.0.phase = phase;
        self
    }

    /// With a container health check reporting `health`.
    pub fn health(mut self, health: Health) -> Self {
        self.0.has_health_check = true;
        self.0.health = health;
        self
    }

    /// RUNNING since `at`.
    pub fn started_at(mut self, at: f64) -> Self {
        self.0.started_at = Some(at);
        self
    }

    /// STOPPED at `at`, as a failure (it exited on its own) or not.
    pub fn stopped(mut self, at: f64, failed: bool) -> Self {
        self.0.phase = Phase::Stopped;
        self.0.stopped_at = Some(at);
        self.0.failed = failed;
        self
    }

    /// Under scale-in protection until `until`.
    pub fn protected_until(mut self, until: f64) -> Self {
        self.0.protected_until = Some(until);
        self
    }

    /// The task.
    pub fn build(self) -> reconcile::Task {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_default_instance_takes_a_default_task() {
        let i = instance("a").build();
        let td = task_def("web");
        let c = &td.container_definitions.as_ref().expect("containers")[0];
        let req = placement::TaskRequest {
            cpu: i64::from(c.cpu.unwrap_or(0)),
            memory: i64::from(c.memory.unwrap_or(0)),
            group: "family:web".into(),
            ..Default::default()
        };
        let plan = placement::place(&[i], &req, 1, &[], &[], 0);
        assert_eq!(plan.placements, vec![0]);
    }

    #[test]
    fn a_stopped_failure_is_no_longer_running() {
        let t = task("t", "d", "a").stopped(5.0, true).build();
        assert_eq!(t.phase, Phase::Stopped);
        assert!(t.failed);
    }
}
