//! Services behind load balancers: registering each RUNNING task as a target of the
//! service's target groups, deregistering (and letting it drain) before the task is
//! stopped, and folding the balancer's health verdicts into the task health the scheduler
//! sees, so a deployment waits for healthy targets and a target failing its checks is
//! replaced.
//!
//! The ELBv2 service lives in another crate; the binary hands ECS a [`TargetGroups`]
//! implementation, so neither service depends on the other.

use model::ecs::shapes::LoadBalancer;
use model::lb::TargetHealthState;
/// A registered target and what the balancer says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetState {
    /// Target id (instance id or IP address).
    pub id: String,
    /// Port.
    pub port: u16,
    /// `TargetHealth.State`.
    pub state: TargetHealthState,
    /// `TargetHealth.Reason`, when any.
    pub reason: Option<String>,
}

/// A target to register.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// Target id (instance id or IP address).
    pub id: String,
    /// Port.
    pub port: u16,
    /// Where an instance target is reached: its container instance's
    /// [`model::ecs::names::HOST_ADDRESS_ATTRIBUTE`], when it has one.
    pub address: Option<String>,
}

/// A target group as the service controller needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetGroupView {
    /// `instance` or `ip`.
    pub target_type: String,
    /// Registered targets (including draining ones).
    pub targets: Vec<TargetState>,
}

/// What ECS needs from the load balancer service.
#[async_trait::async_trait]
pub trait TargetGroups: Send + Sync {
    /// The group's type and targets; `None` when it does not exist.
    async fn describe(&self, target_group_arn: &str) -> Result<Option<TargetGroupView>, String>;
    /// Registers targets (idempotent).
    async fn register(
        &self,
        target_group_arn: &str,
        targets: &[Registration],
    ) -> Result<(), String>;
    /// Deregisters targets: they drain for the group's deregistration delay, then vanish.
    async fn deregister(
        &self,
        target_group_arn: &str,
        targets: &[(String, u16)],
    ) -> Result<(), String>;
}

/// Where a task is reached, as its containers' reports say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TaskAddress {
    /// (container name, container port) → host port, from networkBindings.
    pub bindings: Vec<(String, u16, u16)>,
    /// The task's own address (awsvpc), from its ENI attachment.
    pub private_ip: Option<String>,
}

impl TaskAddress {
    /// Reads a task's bindings and address.
    pub fn of(task: &model::ecs::shapes::Task) -> TaskAddress {
        let mut bindings = Vec::new();
        for c in task.containers.iter().flatten() {
            for b in c.network_bindings.iter().flatten() {
                let (Some(cp), Some(hp)) = (b.container_port, b.host_port) else {
                    continue;
                };
                if let (Ok(cp), Ok(hp)) = (u16::try_from(cp), u16::try_from(hp)) {
                    bindings.push((c.name.clone().unwrap_or_default(), cp, hp));
                }
            }
        }
        let private_ip = task
            .attachments
            .iter()
            .flatten()
            .flat_map(|a| a.details.iter().flatten())
            .find(|d| d.name.as_deref() == Some("privateIPv4Address"))
            .and_then(|d| d.value.clone());
        TaskAddress {
            bindings,
            private_ip,
        }
    }

    /// The target this task is for `lb` in a group of `target_type`, if it is reachable.
    pub fn target(
        &self,
        lb: &LoadBalancer,
        target_type: &str,
        ec2_id: &str,
    ) -> Option<(String, u16)> {
        let name = lb.container_name.as_deref()?;
        let port = u16::try_from(lb.container_port?).ok()?;
        if target_type == "ip" {
            return self.private_ip.clone().map(|ip| (ip, port));
        }
        self.bindings
            .iter()
            .find(|(c, cp, _)| c == name && *cp == port)
            .map(|(_, _, hp)| (ec2_id.to_owned(), *hp))
    }
}

/// The balancer's verdict on one task across all of its targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LbVerdict {
    /// Every target healthy (or checks disabled).
    Healthy,
    /// Some target not yet judged, or not yet registered.
    Pending,
    /// Some target unhealthy.
    Unhealthy,
}

/// Folds the targets' states for one task. A draining target counts as unhealthy: the
/// controller deregistered it because it chose to stop the task, which waits for the
/// drain; judged merely pending, the task would look as good as its replacement, and
/// scale-in would stop the replacement instead, leaving the drained task running.
pub(crate) fn verdict(states: &[Option<&TargetState>]) -> LbVerdict {
    let mut out = LbVerdict::Healthy;
    for s in states {
        match s.map(|s| s.state) {
            Some(TargetHealthState::Healthy | TargetHealthState::Unavailable) => {}
            Some(TargetHealthState::Unhealthy | TargetHealthState::Draining) => {
                return LbVerdict::Unhealthy
            }
            Some(TargetHealthState::Initial | TargetHealthState::Unused) | None => {
                out = LbVerdict::Pending
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(state: &str) -> TargetState {
        TargetState {
            id: "i-1".into(),
            port: 1,
            state: TargetHealthState::parse(state).expect("an AWS target state"),
            reason: None,
        }
    }

    #[test]
    fn verdicts_fold_like_ecs() {
        let (h, u, i) = (st("healthy"), st("unhealthy"), st("initial"));
        assert_eq!(verdict(&[Some(&h)]), LbVerdict::Healthy);
        assert_eq!(verdict(&[Some(&h), Some(&i)]), LbVerdict::Pending);
        assert_eq!(verdict(&[Some(&h), None]), LbVerdict::Pending);
        assert_eq!(verdict(&[Some(&i), Some(&u)]), LbVerdict::Unhealthy);
        assert_eq!(verdict(&[]), LbVerdict::Healthy);
        let d = st("draining");
        assert_eq!(verdict(&[Some(&h), Some(&d)]), LbVerdict::Unhealthy);
    }
}
