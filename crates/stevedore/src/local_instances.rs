//! The `local` instance provider: each Auto Scaling instance is a `stevedore agent`
//! process this server starts on this host, against the local Docker, with its own state
//! directory `<data dir>/instances/<instance id>/` and config file there (`agent.conf`,
//! in `ecs.config`'s style): the `ECS_*` settings of the launch template's user data
//! (so `ECS_CLUSTER=` picks the cluster), the instance's id, type and zone (so ECS
//! registers the type's declared resources, not the host's), and the endpoint. Agents
//! sign with the account's root key, passed in their environment as the Fargate
//! provisioner's in-process agents sign with it.
//!
//! Terminating stops the agent with SIGTERM, then removes the containers of every task
//! its state file records (the machine is gone, and what it ran with it: ECS's managed
//! draining is what moves service tasks off an instance first; a forced group delete
//! does not wait for that), then its state directory.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use autoscaling::{InstanceProvider, InstanceSpec, MachineState, ProviderError};

/// Agents of this server, one process per instance.
pub struct LocalInstances {
    exe: PathBuf,
    endpoint: String,
    region: String,
    key: crate::credentials::AccessKey,
    root: PathBuf,
    children: Mutex<HashMap<String, Child>>,
}

impl LocalInstances {
    /// Agents of the binary running now, calling `endpoint` signed for `region` with
    /// `key`, their state under `root`.
    pub fn new(
        endpoint: String,
        region: String,
        key: crate::credentials::AccessKey,
        root: PathBuf,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            exe: std::env::current_exe()?,
            endpoint,
            region,
            key,
            root,
            children: Mutex::default(),
        })
    }

    fn children(&self) -> std::sync::MutexGuard<'_, HashMap<String, Child>> {
        self.children
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The agent config file of `spec`.
    fn compute_config(&self, spec: &InstanceSpec) -> String {
        let mut settings = spec.agent_settings();
        settings.insert("STEVEDORE_ENDPOINT".into(), self.endpoint.clone());
        settings.insert("STEVEDORE_INSTANCE_ID".into(), spec.instance_id.clone());
        settings.insert("STEVEDORE_INSTANCE_TYPE".into(), spec.instance_type.clone());
        settings.insert(
            "ECS_AVAILABILITY_ZONE".into(),
            spec.availability_zone.clone(),
        );
        let dir = self.root.join(&spec.instance_id);
        settings.insert(
            "STEVEDORE_STATE_DIR".into(),
            dir.join("state").display().to_string(),
        );
        // Every agent on one host needs its own metadata port; an ephemeral one is used
        // when the preferred port is taken, so ask for one that is.
        settings
            .entry("STEVEDORE_METADATA_PORT".into())
            .or_insert_with(|| "51679".into());
        settings.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
    }
}

#[async_trait::async_trait]
impl InstanceProvider for LocalInstances {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn start(&self, spec: &InstanceSpec) -> Result<(), ProviderError> {
        if self.state(&spec.instance_id).await != MachineState::Gone {
            return Ok(());
        }
        let dir = self.root.join(&spec.instance_id);
        ::agent::modes::private_dir(&dir)
            .map_err(|e| ProviderError(format!("creating {}: {e}", dir.display())))?;
        let config = dir.join("agent.conf");
        ::agent::modes::write_private(&config, self.compute_config(spec).as_bytes())
            .map_err(|e| ProviderError(format!("writing {}: {e}", config.display())))?;
        let log = std::fs::File::create(dir.join("agent.log"))
            .map_err(|e| ProviderError(format!("creating the agent log: {e}")))?;
        let err = log
            .try_clone()
            .map_err(|e| ProviderError(format!("creating the agent log: {e}")))?;
        let mut command = Command::new(&self.exe);
        command
            .arg("agent")
            .arg("--config")
            .arg(&config)
            .arg("--region")
            .arg(&self.region);
        if !spec.security_groups.is_empty() {
            // The launch template's groups: ECS reads them from this attribute, and the
            // packet filter guards the instance's published host ports with them.
            command.arg("--attribute").arg(format!(
                "{}={}",
                ecs::SECURITY_GROUPS_ATTRIBUTE,
                spec.security_groups.join(",")
            ));
        }
        let child = command
            .env("AWS_ACCESS_KEY_ID", &self.key.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &self.key.secret_access_key)
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            // Flags' environment twins would override the instance's own config file.
            .env_remove("STEVEDORE_AGENT_CLUSTER")
            .env_remove("STEVEDORE_AGENT_ENDPOINT")
            .env_remove("STEVEDORE_AGENT_STATE_DIR")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| ProviderError(format!("starting the agent: {e}")))?;
        tracing::info!(instance = %spec.instance_id, pid = child.id(), "Local instance started.");
        self.children().insert(spec.instance_id.clone(), child);
        Ok(())
    }

    async fn state(&self, instance_id: &str) -> MachineState {
        let mut children = self.children();
        let Some(child) = children.get_mut(instance_id) else {
            return MachineState::Gone;
        };
        match child.try_wait() {
            Ok(None) => MachineState::Running,
            Ok(Some(status)) => {
                tracing::warn!(instance = instance_id, %status, "Local instance's agent exited.");
                children.remove(instance_id);
                MachineState::Gone
            }
            Err(error) => {
                tracing::warn!(instance = instance_id, %error, "Local instance's agent cannot be checked.");
                MachineState::Running
            }
        }
    }

    async fn terminate(&self, instance_id: &str) -> Result<(), ProviderError> {
        let child = self.children().remove(instance_id);
        if let Some(mut child) = child {
            let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap_or(0));
            if let Some(pid) = pid {
                // SIGTERM: the agent stops cleanly (its own signal handling).
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if tokio::time::Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        let dir = self.root.join(instance_id);
        remove_task_containers(&dir.join("state"), instance_id).await?;
        if let Err(error) = std::fs::remove_dir_all(&dir) {
            if error.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(instance = instance_id, %error, "Local instance's directory not removed.");
            }
        }
        tracing::info!(instance = instance_id, "Local instance terminated.");
        Ok(())
    }
}

/// Removes (forcibly) every container of the tasks the agent state in `state_dir`
/// records, found by their task ARN label (so pause containers go too). An error leaves
/// the instance for the next round to finish.
async fn remove_task_containers(
    state_dir: &std::path::Path,
    instance_id: &str,
) -> Result<(), ProviderError> {
    use ::agent::runtime::Runtime;
    let bytes = match std::fs::read(state_dir.join("state.json")) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(ProviderError(format!("reading the agent state: {e}"))),
    };
    let doc: ::agent::state::StateDoc = serde_json::from_slice(&bytes)
        .map_err(|e| ProviderError(format!("the agent state is corrupt: {e}")))?;
    if doc.tasks.is_empty() {
        return Ok(());
    }
    let docker = ::agent::runtime::DockerRuntime::connect()
        .await
        .map_err(|e| ProviderError(format!("Docker: {e}")))?;
    for arn in doc.tasks.keys() {
        let found = docker
            .list_by_label(::agent::engine::spec::LABEL_TASK_ARN, arn)
            .await
            .map_err(|e| ProviderError(format!("listing the containers of {arn}: {e}")))?;
        for c in found {
            docker
                .remove(&c.id)
                .await
                .map_err(|e| ProviderError(format!("removing container {}: {e}", c.id)))?;
            tracing::info!(instance = instance_id, task = %arn, container = %c.name, "A terminated instance's container was removed.");
        }
    }
    Ok(())
}

impl Drop for LocalInstances {
    /// Instances are this server's children: they stop with it (a restarted server
    /// sees them gone and its groups replace them, as EC2 health checks would).
    fn drop(&mut self) {
        for (_, mut child) in self.children().drain() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
