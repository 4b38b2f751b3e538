//! The `sim` instance provider: each Auto Scaling instance is a hollow instance (as
//! `stevedore sim` runs them) inside this server process: it registers from the launch
//! template's user data (`ECS_CLUSTER=`) with an instance identity document naming its
//! instance id, type and zone (so ECS registers the type's declared resources and links
//! it to its group), holds a channel and reports its tasks RUNNING and STOPPED without
//! running a container. Thousands fit in one process; for scale tests and benches.
//!
//! Terminating closes its channel; ECS stops whatever tasks it still had (see
//! `EcsDraining::terminated`).
//!
//! [`ByLaunchTemplate`] picks `sim` or the server's default provider per instance: user
//! data with a `STEVEDORE_INSTANCE_PROVIDER=sim` line launches hollow instances.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::agent::hollow::{
    compute_registration, run_registered, Counters, FleetConfig, InstanceSpec as HollowSpec,
};
use autoscaling::{InstanceProvider, InstanceSpec, MachineState, ProviderError};
use tokio::sync::watch;

/// The user data setting that picks a provider for a launch template's instances.
pub const PROVIDER_SETTING: &str = "STEVEDORE_INSTANCE_PROVIDER";

/// One running hollow instance.
struct Machine {
    stop: watch::Sender<bool>,
    handle: tokio::task::JoinHandle<bool>,
}

/// Hollow instances of this server.
pub struct SimInstances {
    api: ::agent::ApiClient,
    region: String,
    counters: Arc<Counters>,
    machines: Mutex<HashMap<String, Machine>>,
}

impl SimInstances {
    /// Hollow instances calling `endpoint` signed for `region` with `key`.
    pub fn new(
        endpoint: &str,
        region: &str,
        key: &crate::credentials::AccessKey,
    ) -> anyhow::Result<Self> {
        let credentials =
            ::agent::Credentials::new(&key.access_key_id, &key.secret_access_key, None);
        let mut config = ::agent::ApiConfig::new(endpoint, region, credentials);
        // Registrations of a large scale-out share one pool.
        config.max_idle_connections = 256;
        Ok(Self {
            api: ::agent::ApiClient::new(config)?,
            region: region.to_owned(),
            counters: Arc::default(),
            machines: Mutex::default(),
        })
    }

    fn machines(&self) -> std::sync::MutexGuard<'_, HashMap<String, Machine>> {
        self.machines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The registration of hollow instance `spec`: the declared type's resources come from
/// the server's instance type table (CPU and MEMORY are left out, as the `local` agent
/// leaves them out), the identity document names the group instance.
pub fn compute_sim_registration(
    spec: &InstanceSpec,
    region: &str,
) -> model::ecs::shapes::RegisterContainerInstanceRequest {
    let cluster = spec
        .agent_settings()
        .remove("ECS_CLUSTER")
        .unwrap_or_else(|| "default".to_owned());
    let mut req = compute_registration(&HollowSpec {
        cluster,
        cpu: 0,
        memory: 0,
        instance_type: spec.instance_type.clone(),
        availability_zone: spec.availability_zone.clone(),
    });
    if let Some(resources) = req.total_resources.as_mut() {
        resources.retain(|r| !matches!(r.name.as_deref(), Some("CPU" | "MEMORY")));
    }
    req.instance_identity_document = Some(
        serde_json::json!({
            "instanceId": spec.instance_id,
            "instanceType": spec.instance_type,
            "availabilityZone": spec.availability_zone,
            "region": region,
        })
        .to_string(),
    );
    if !spec.security_groups.is_empty() {
        // As the `local` provider does: the launch template's groups, which
        // DeleteSecurityGroup's dependency check reads (a hollow instance publishes no ports).
        req.attributes
            .get_or_insert_with(Vec::new)
            .push(model::ecs::shapes::Attribute {
                name: ecs::SECURITY_GROUPS_ATTRIBUTE.to_owned(),
                value: Some(spec.security_groups.join(",")),
                ..Default::default()
            });
    }
    req
}

#[async_trait::async_trait]
impl InstanceProvider for SimInstances {
    fn name(&self) -> &'static str {
        "sim"
    }

    async fn start(&self, spec: &InstanceSpec) -> Result<(), ProviderError> {
        if self.state(&spec.instance_id).await != MachineState::Gone {
            return Ok(());
        }
        let request = compute_sim_registration(spec, &self.region);
        let config = Arc::new(FleetConfig {
            api: self.api.clone(),
            spread: Vec::new(),
            cluster: request.cluster.clone().unwrap_or_default(),
            instances: 1,
            zones: Vec::new(),
            cpu: 0,
            memory: 0,
            instance_type: spec.instance_type.clone(),
            registration_concurrency: 1,
            max_attempts: 8,
            idle_timeout: Duration::from_secs(90),
        });
        let (stop, shutdown) = watch::channel(false);
        let handle = tokio::spawn(run_registered(
            config,
            request,
            self.counters.clone(),
            shutdown,
        ));
        self.machines()
            .insert(spec.instance_id.clone(), Machine { stop, handle });
        Ok(())
    }

    async fn state(&self, instance_id: &str) -> MachineState {
        let mut machines = self.machines();
        match machines.get(instance_id) {
            None => MachineState::Gone,
            Some(m) if m.handle.is_finished() => {
                // It gave up registering (or its task ended): the group replaces it.
                machines.remove(instance_id);
                MachineState::Gone
            }
            Some(_) => MachineState::Running,
        }
    }

    async fn terminate(&self, instance_id: &str) -> Result<(), ProviderError> {
        let machine = self.machines().remove(instance_id);
        if let Some(m) = machine {
            let _ = m.stop.send(true);
            if tokio::time::timeout(Duration::from_secs(10), m.handle)
                .await
                .is_err()
            {
                tracing::warn!(
                    instance = instance_id,
                    "A hollow instance did not close its channel in time."
                );
            }
        }
        Ok(())
    }
}

impl Drop for SimInstances {
    fn drop(&mut self) {
        for (_, m) in self.machines().drain() {
            let _ = m.stop.send(true);
            m.handle.abort();
        }
    }
}

/// Picks, per instance, `sim` when the launch template's user data says
/// `STEVEDORE_INSTANCE_PROVIDER=sim`, else the server's default provider.
pub struct ByLaunchTemplate {
    /// The server's default (`local`).
    pub default: Arc<dyn InstanceProvider>,
    /// Hollow instances.
    pub sim: Arc<SimInstances>,
}

/// Whether user data asks for hollow instances.
pub fn wants_sim(user_data: &str) -> bool {
    user_data
        .split(|c: char| c.is_whitespace() || c == '\'' || c == '"')
        .any(|w| w == format!("{PROVIDER_SETTING}=sim"))
}

#[async_trait::async_trait]
impl InstanceProvider for ByLaunchTemplate {
    fn name(&self) -> &'static str {
        self.default.name()
    }

    async fn start(&self, spec: &InstanceSpec) -> Result<(), ProviderError> {
        if wants_sim(&spec.user_data) {
            self.sim.start(spec).await
        } else {
            self.default.start(spec).await
        }
    }

    async fn state(&self, instance_id: &str) -> MachineState {
        match self.sim.state(instance_id).await {
            MachineState::Gone => self.default.state(instance_id).await,
            s => s,
        }
    }

    async fn terminate(&self, instance_id: &str) -> Result<(), ProviderError> {
        if self.sim.state(instance_id).await != MachineState::Gone {
            return self.sim.terminate(instance_id).await;
        }
        self.default.terminate(instance_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(user_data: &str) -> InstanceSpec {
        InstanceSpec {
            instance_id: "i-0123456789abcdef0".into(),
            group_name: "g".into(),
            instance_type: "t3.medium".into(),
            availability_zone: "us-east-1b".into(),
            user_data: user_data.into(),
            tags: Default::default(),
            security_groups: Vec::new(),
        }
    }

    #[test]
    fn user_data_picks_the_sim_provider() {
        assert!(wants_sim(
            "echo ECS_CLUSTER=c >> /etc/ecs/ecs.config\nSTEVEDORE_INSTANCE_PROVIDER=sim\n"
        ));
        assert!(!wants_sim(
            "ECS_CLUSTER=c\nSTEVEDORE_INSTANCE_PROVIDER=local\n"
        ));
        assert!(!wants_sim(""));
    }

    #[test]
    fn a_hollow_instance_registers_as_its_group_instance() {
        let req = compute_sim_registration(
            &spec("echo ECS_CLUSTER=prod >> /etc/ecs/ecs.config"),
            "us-east-1",
        );
        assert_eq!(req.cluster.as_deref(), Some("prod"));
        let doc: serde_json::Value =
            serde_json::from_str(req.instance_identity_document.as_deref().unwrap_or("{}"))
                .unwrap_or_default();
        assert_eq!(doc["instanceId"], "i-0123456789abcdef0");
        assert_eq!(doc["instanceType"], "t3.medium");
        assert_eq!(doc["availabilityZone"], "us-east-1b");
        let names: Vec<_> = req
            .total_resources
            .iter()
            .flatten()
            .filter_map(|r| r.name.as_deref())
            .collect();
        assert!(!names.contains(&"CPU") && !names.contains(&"MEMORY"));
        assert!(names.contains(&"PORTS"));
    }
}
