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
