//! Tasks by last status, for the `stevedore_ecs_tasks` gauge: counted from the store when
//! `/metrics` is scraped, decoding only the tasks whose record changed since the last
//! scrape, so the count is never out of step with the store and costs one range read.

use crate::error::EcsError;
use crate::Ecs;
use std::collections::HashMap;

/// Prefix of every cluster's tasks (`ecs/task/<cluster>/<id>`).
const ALL_TASKS: &str = "ecs/task/";

/// Task key → (its revision when last decoded, its last status).
pub(crate) type StatusCache = tokio::sync::Mutex<HashMap<String, (u64, Box<str>)>>;

/// Just the last status of a stored task; the rest of the record is skipped.
#[derive(serde::Deserialize)]
struct StatusOnly {
    task: LastStatus,
}

#[derive(serde::Deserialize)]
struct LastStatus {
    #[serde(rename = "lastStatus", default)]
    last_status: Option<String>,
}

impl Ecs {
    /// Every task of every cluster, counted by last status.
    pub async fn task_counts(&self) -> Result<HashMap<String, u64>, EcsError> {
        let items = self.objects.range_all(ALL_TASKS).await?;
        let mut cache = self.task_statuses.lock().await;
        let mut seen = std::collections::HashSet::with_capacity(items.len());
        let mut counts: HashMap<String, u64> = HashMap::new();
        for kv in items {
            let fresh = cache
                .get(&kv.key)
                .is_some_and(|(rev, _)| *rev == kv.mod_revision);
            if !fresh {
                let status = serde_json::from_slice::<StatusOnly>(&kv.value)
                    .ok()
                    .and_then(|s| s.task.last_status)
                    .unwrap_or_default();
                cache.insert(kv.key.clone(), (kv.mod_revision, status.into()));
            }
            if let Some((_, status)) = cache.get(&kv.key) {
                match counts.get_mut(&**status) {
                    Some(n) => *n += 1,
                    None => {
                        counts.insert(status.to_string(), 1);
                    }
                }
            }
            seen.insert(kv.key);
        }
        cache.retain(|k, _| seen.contains(k));
        Ok(counts)
    }
}
