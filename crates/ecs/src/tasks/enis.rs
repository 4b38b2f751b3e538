//! The awsvpc interfaces in use in this region: every address key names the task that
//! holds it, whose record carries the interface. EC2's DescribeNetworkInterfaces and the
//! packet filter read them here.

use super::awsvpc::{self, TaskEni};
use crate::error::EcsError;
use crate::objects::{task_key, StoredTask};
use crate::Ecs;

/// One interface in use, with the task holding it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceInUse {
    /// The task's ARN.
    pub task_arn: String,
    /// Its interface.
    pub eni: TaskEni,
}

impl Ecs {
    /// Every awsvpc interface held by a task not yet STOPPED.
    pub async fn network_interfaces(&self) -> Result<Vec<InterfaceInUse>, EcsError> {
        let store = self.objects.store();
        let page = store
            .range(awsvpc::ADDRESS_PREFIX, None, usize::MAX)
            .await?;
        let mut out = Vec::with_capacity(page.items.len());
        for kv in page.items {
            let arn = String::from_utf8_lossy(&kv.value).into_owned();
            // `arn:aws:ecs:<region>:<account>:task/<cluster>/<id>`
            let mut parts = arn.rsplit('/');
            let (Some(id), Some(cluster)) = (parts.next(), parts.next()) else {
                continue;
            };
            let Some(task) = store.get(&task_key(cluster, id)).await? else {
                continue;
            };
            let stored: StoredTask = match serde_json::from_slice(&task.value) {
                Ok(t) => t,
                Err(error) => {
                    tracing::warn!(task = %arn, %error, "Stored task does not decode; its interface is left out.");
                    continue;
                }
            };
            if let Some(eni) = stored.eni {
                out.push(InterfaceInUse { task_arn: arn, eni });
            }
        }
        Ok(out)
    }
}

/// The container instance attribute that gives an instance its security groups: their
/// ids, comma-separated (`--attribute stevedore.security-groups=sg-a,sg-b` on the agent,
/// `ECS_INSTANCE_ATTRIBUTES`, or PutAttributes later). The packet filter guards the
/// host ports its bridge and host tasks publish with those groups' ingress rules.
pub const SECURITY_GROUPS_ATTRIBUTE: &str = "stevedore.security-groups";

/// An instance with security groups, and the host ports its tasks publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuardedInstance {
    /// Its container instance ARN.
    pub container_instance_arn: String,
    /// The groups of its attribute, in order.
    pub security_groups: Vec<String>,
    /// Published host ports of its tasks not yet STOPPED: (`tcp`|`udp`, port).
    pub ports: Vec<(String, u16)>,
}

impl Ecs {
    /// Every container instance that carries [`SECURITY_GROUPS_ATTRIBUTE`], with the host
    /// ports its tasks publish (their network bindings as the agent reported them).
    pub async fn guarded_instances(&self) -> Result<Vec<GuardedInstance>, EcsError> {
        let store = self.objects.store();
        let instances = store.range("ecs/instance/", None, usize::MAX).await?;
        let mut out = Vec::new();
        for kv in instances.items {
            let Ok(si) = serde_json::from_slice::<crate::objects::StoredInstance>(&kv.value) else {
                continue;
            };
            let groups: Vec<String> = si
                .instance
                .attributes
                .iter()
                .flatten()
                .filter(|a| a.name == SECURITY_GROUPS_ATTRIBUTE)
                .filter_map(|a| a.value.as_deref())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(str::to_owned)
                .collect();
            if groups.is_empty() {
                continue;
            }
            // `ecs/instance/<cluster>/<id>`
            let Some((cluster, id)) = kv
                .key
                .strip_prefix("ecs/instance/")
                .and_then(|rest| rest.split_once('/'))
            else {
                continue;
            };
            let mut ports = Vec::new();
            let on_it = store
                .range(
                    &crate::objects::instance_task_prefix(cluster, id),
                    None,
                    usize::MAX,
                )
                .await?;
            for entry in on_it.items {
                let Some(task_id) = entry.key.rsplit('/').next() else {
                    continue;
                };
                let Some(task) = store.get(&task_key(cluster, task_id)).await? else {
                    continue;
                };
                let Ok(stored) = serde_json::from_slice::<StoredTask>(&task.value) else {
                    continue;
                };
                compute_published_ports(&stored, &mut ports);
            }
            ports.sort();
            ports.dedup();
            out.push(GuardedInstance {
                container_instance_arn: si
                    .instance
                    .container_instance_arn
                    .clone()
                    .unwrap_or_default(),
                security_groups: groups,
                ports,
            });
        }
        Ok(out)
    }
}

/// The host ports a task's containers publish, as reported (awsvpc tasks publish none:
/// their interface is filtered instead).
fn compute_published_ports(task: &StoredTask, ports: &mut Vec<(String, u16)>) {
    if task.eni.is_some() || task.task.last_status == Some(model::ecs::status::TaskStatus::Stopped)
    {
        return;
    }
    for c in task.task.containers.iter().flatten() {
        for b in c.network_bindings.iter().flatten() {
            let Some(port) = b.host_port.and_then(|p| u16::try_from(p).ok()) else {
                continue;
            };
            let proto = b.protocol.map_or("tcp", |p| p.as_str());
            ports.push((proto.to_owned(), port));
        }
    }
}
