//! The instance provider contract: what turns an Auto Scaling group's instance record
//! into a machine that runs `stevedore agent`, and back.
//!
//! A provider must, for an instance id the group controller chose (`i-` + 17 hex):
//! * **start** a machine that runs `stevedore agent` joined to the cluster its user data
//!   names (`ECS_CLUSTER=` lines, as EC2 instances read `/etc/ecs/ecs.config`), which
//!   registers with an instance identity naming this instance id, its instance type and
//!   its availability zone (so ECS derives the declared resources from the type and
//!   links the container instance to the group);
//! * **identify** it: answer whether the machine is still starting, running, or gone
//!   (a gone machine of an InService instance makes the group replace it, as an EC2
//!   health check does);
//! * **terminate** it: stop the agent and whatever it ran, and forget the machine.
//!   Returning `Ok` means the machine is gone for good.
//!
//! Calls may repeat (the controller is level-triggered): starting an instance that runs
//! and terminating one that is gone must both succeed. A VM or cloud provider plugs in
//! by implementing [`InstanceProvider`] and passing it to
//! [`crate::AutoScaling::with_provider`].

use std::collections::BTreeMap;

/// What a provider starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceSpec {
    /// The EC2-style id the group gave the instance (`i-…`).
    pub instance_id: String,
    /// The group it belongs to.
    pub group_name: String,
    /// `ecs.instance-type`, e.g. `t3.medium`: the resources ECS registers come from it.
    pub instance_type: String,
    /// Its availability zone (`us-east-1a`).
    pub availability_zone: String,
    /// The launch template's user data, decoded from base64 (empty if none).
    pub user_data: String,
    /// The group's tags that propagate at launch.
    pub tags: BTreeMap<String, String>,
    /// The launch template's `SecurityGroupIds`: the provider registers the instance
    /// with them (the `stevedore.security-groups` attribute), so its tasks' published
    /// host ports are filtered by them.
    pub security_groups: Vec<String>,
}

impl InstanceSpec {
    /// The agent settings the user data carries: every `KEY=VALUE` whose key starts with
    /// `ECS_` (`ECS_CLUSTER=prod`, also inside `echo ECS_CLUSTER=prod >> /etc/ecs/ecs.config`).
    pub fn agent_settings(&self) -> BTreeMap<String, String> {
        compute_agent_settings(&self.user_data)
    }
}

/// The `ECS_*=value` settings of a user data script (see [`InstanceSpec::agent_settings`]).
pub fn compute_agent_settings(user_data: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for word in user_data.split(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
        if let Some((k, v)) = word.split_once('=') {
            let valid = k.starts_with("ECS_")
                && k.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            if valid && !v.is_empty() {
                out.insert(k.to_owned(), v.to_owned());
            }
        }
    }
    out
}

/// Where a provider's machine stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MachineState {
    /// Started, not known to run yet.
    Starting,
    /// Running its agent.
    Running,
    /// Not there (never started here, exited, or terminated).
    Gone,
}

/// Why a provider call failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProviderError(pub String);

/// Starts, identifies and terminates the machines of group instances (see the module docs).
#[async_trait::async_trait]
pub trait InstanceProvider: Send + Sync + 'static {
    /// The provider's name (`local`, `sim`), as logs and activity details show it.
    fn name(&self) -> &'static str;
    /// Starts the machine of `spec` (nothing if it runs already).
    async fn start(&self, spec: &InstanceSpec) -> Result<(), ProviderError>;
    /// Where the machine of `instance_id` stands.
    async fn state(&self, instance_id: &str) -> MachineState;
    /// Terminates the machine of `instance_id` (nothing if it is gone).
    async fn terminate(&self, instance_id: &str) -> Result<(), ProviderError>;
}

/// Instances that exist only as records: every machine runs at once and terminates at
/// once. For tests of the API alone, and servers started without machines.
#[derive(Debug, Default)]
pub struct RecordOnly;

#[async_trait::async_trait]
impl InstanceProvider for RecordOnly {
    fn name(&self) -> &'static str {
        "record"
    }
    async fn start(&self, _spec: &InstanceSpec) -> Result<(), ProviderError> {
        Ok(())
    }
    async fn state(&self, _instance_id: &str) -> MachineState {
        MachineState::Running
    }
    async fn terminate(&self, _instance_id: &str) -> Result<(), ProviderError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_settings_come_from_ecs_config_lines_of_the_user_data() {
        let script = "#!/bin/bash\necho ECS_CLUSTER=prod >> /etc/ecs/ecs.config\necho 'ECS_ENABLE_TASK_IAM_ROLE=true' >> /etc/ecs/ecs.config\nPATH=/bin\n";
        let s = compute_agent_settings(script);
        assert_eq!(s.get("ECS_CLUSTER").map(String::as_str), Some("prod"));
        assert_eq!(
            s.get("ECS_ENABLE_TASK_IAM_ROLE").map(String::as_str),
            Some("true")
        );
        assert!(!s.contains_key("PATH"));
    }
}
