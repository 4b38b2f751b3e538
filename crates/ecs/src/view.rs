//! The placement view of a cluster: every container instance decoded into the engine's
//! input form, kept between calls and refreshed from the store by revision, so a RunTask
//! on a 10,000-instance cluster decodes only the instances that changed since the last.
//!
//! The view is only a cache: commits still compare-and-swap on each chosen instance's
//! revision, so a stale view can cost a retry but never an overcommit.

use crate::error::EcsError;
use crate::objects::StoredInstance;
use placement::Instance;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use store::KeyValue;

/// One cluster's instances as placement sees them.
#[derive(Default)]
pub(crate) struct ClusterView {
    /// Store keys, in key order.
    pub keys: Vec<String>,
    /// `mod_revision` of each key when decoded.
    pub revisions: Vec<u64>,
    /// Decoded records.
    pub stored: Vec<StoredInstance>,
    /// The engine's input, index-aligned with `keys`.
    pub instances: Vec<Instance>,
    /// When the view last read every instance (None: never).
    pub full_at: Option<std::time::Instant>,
}

/// How long a view trusts the changed-keys hint before reading every instance again
/// (catches writers other than this process).
pub(crate) const FULL_REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

impl ClusterView {
    /// Brings the view up to date with `kvs` (every instance key of the cluster, in key
    /// order), decoding only what changed.
    pub fn refresh(&mut self, kvs: Vec<KeyValue>) -> Result<(), EcsError> {
        // The common case: the same instances as last time, a few of them changed.
        if kvs.len() == self.keys.len() && kvs.iter().zip(&self.keys).all(|(kv, k)| kv.key == *k) {
            for (i, kv) in kvs.into_iter().enumerate() {
                if self.revisions[i] != kv.mod_revision {
                    let si = decode(&kv)?;
                    self.instances[i] = to_engine(&si);
                    self.stored[i] = si;
                    self.revisions[i] = kv.mod_revision;
                }
            }
            return Ok(());
        }
        self.rebuild(kvs)
    }

    /// Whether the next refresh must read every instance.
    pub fn needs_full(&self) -> bool {
        self.full_at
            .is_none_or(|t| t.elapsed() > FULL_REFRESH_EVERY)
    }

    /// Applies the current values of keys known to have changed; `false` when one of them
    /// is new to the view (then a full refresh is needed).
    pub fn apply_changed(
        &mut self,
        kvs: Vec<(String, Option<KeyValue>)>,
    ) -> Result<bool, EcsError> {
        for (key, kv) in kvs {
            let Ok(i) = self.keys.binary_search(&key) else {
                return Ok(false);
            };
            let Some(kv) = kv else { return Ok(false) };
            if self.revisions[i] != kv.mod_revision {
                let si = decode(&kv)?;
                self.instances[i] = to_engine(&si);
                self.stored[i] = si;
                self.revisions[i] = kv.mod_revision;
            }
        }
        Ok(true)
    }

    /// Rebuilds the view when instances were added or removed.
    fn rebuild(&mut self, kvs: Vec<KeyValue>) -> Result<(), EcsError> {
        let mut old: HashMap<String, (u64, StoredInstance, Instance)> =
            HashMap::with_capacity(self.keys.len());
        let keys = std::mem::take(&mut self.keys);
        let revs = std::mem::take(&mut self.revisions);
        let stored = std::mem::take(&mut self.stored);
        let insts = std::mem::take(&mut self.instances);
        for (((k, r), s), i) in keys.into_iter().zip(revs).zip(stored).zip(insts) {
            old.insert(k, (r, s, i));
        }
        for kv in kvs {
            let (si, inst) = match old.remove(&kv.key) {
                Some((rev, si, inst)) if rev == kv.mod_revision => (si, inst),
                _ => {
                    let si = decode(&kv)?;
                    let inst = to_engine(&si);
                    (si, inst)
                }
            };
            self.keys.push(kv.key);
            self.revisions.push(kv.mod_revision);
            self.stored.push(si);
            self.instances.push(inst);
        }
        Ok(())
    }
}

fn decode(kv: &KeyValue) -> Result<StoredInstance, EcsError> {
    serde_json::from_slice(&kv.value).map_err(|e| {
        EcsError::Store(store::StoreError::Backend(format!(
            "stored instance {} is unreadable: {e}",
            kv.key
        )))
    })
}

fn ports(r: &[model::ecs::shapes::Resource], name: &str) -> BTreeSet<u16> {
    r.iter()
        .filter(|x| x.name.as_deref() == Some(name))
        .flat_map(|x| x.string_set_value.iter().flatten())
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn integer(r: &[model::ecs::shapes::Resource], name: &str) -> i64 {
    r.iter()
        .find(|x| x.name.as_deref() == Some(name))
        .and_then(|x| x.integer_value.map(i64::from).or(x.long_value))
        .unwrap_or(0)
}

/// Converts a stored instance into the engine's input.
pub(crate) fn to_engine(si: &StoredInstance) -> Instance {
    let i = &si.instance;
    let reg = i.registered_resources.clone().unwrap_or_default();
    let arn = i.container_instance_arn.clone().unwrap_or_default();
    let attributes: BTreeMap<String, Option<String>> = i
        .attributes
        .iter()
        .flatten()
        .map(|a| (a.name.clone(), a.value.clone()))
        .collect();
    Instance {
        id: arn.rsplit('/').next().unwrap_or_default().to_owned(),
        arn,
        ec2_instance_id: i.ec2_instance_id.clone().unwrap_or_default(),
        active: i.status == Some(model::ecs::status::ContainerInstanceStatus::Active),
        agent_connected: i.agent_connected.unwrap_or(false),
        agent_version: i
            .version_info
            .as_ref()
            .and_then(|v| v.agent_version.clone()),
        registered_at: i.registered_at.unwrap_or(0.0),
        attributes,
        cpu: integer(&reg, "CPU"),
        memory: integer(&reg, "MEMORY"),
        reserved_tcp_ports: ports(&reg, "PORTS"),
        reserved_udp_ports: ports(&reg, "PORTS_UDP"),
        gpus: reg
            .iter()
            .filter(|x| x.name.as_deref() == Some("GPU"))
            .flat_map(|x| x.string_set_value.clone().unwrap_or_default())
            .collect(),
        used_cpu: si.usage.cpu,
        used_memory: si.usage.memory,
        used_tcp_ports: si.usage.tcp_ports.clone(),
        used_udp_ports: si.usage.udp_ports.clone(),
        used_gpus: si.usage.gpus.clone(),
        running_tasks_count: si.usage.running,
        groups: si.usage.groups.clone(),
    }
}
