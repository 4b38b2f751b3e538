//! What the agent's running containers use, going upstream as `PublishMetricsRequest`
//! (ECS's telemetry shape) so the server can publish AWS/ECS CPUUtilization and
//! MemoryUtilization. A sampler reads each running container's Docker stats every
//! interval: CPU as CPU units (1,024 per core) from the growth of the container's
//! cumulative CPU time between two samples (a one-shot stats read carries no previous
//! sample), memory as MiB in use without the page cache it could drop (what ECS counts).
//! The latest report waits on the [`UsageBoard`] until the channel sends it; a report
//! not sent before the next one is replaced, since only the latest matters.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use model::acs::{ContainerMetric, StatsSet, TaskMetric};
use tokio::sync::watch;

use crate::metadata::MetadataIndex;
use crate::runtime::Runtime;

/// How often containers are sampled and reported by default: ECS's agent publishes
/// every 20 s.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(20);

/// The latest usage report, waiting for the channel.
#[derive(Debug)]
pub struct UsageBoard {
    latest: Mutex<Option<Vec<TaskMetric>>>,
    changed: watch::Sender<u64>,
}

impl Default for UsageBoard {
    fn default() -> Self {
        Self {
            latest: Mutex::new(None),
            changed: watch::Sender::new(0),
        }
    }
}

impl UsageBoard {
    /// An empty board.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the waiting report.
    pub fn put(&self, tasks: Vec<TaskMetric>) {
        *self
            .latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(tasks);
        self.changed.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// The waiting report, if any (it leaves the board).
    pub fn take(&self) -> Option<Vec<TaskMetric>> {
        self.latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// Wakes when a report is put.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

/// One container's cumulative CPU time when last sampled.
#[derive(Clone, Copy, Debug)]
struct CpuMark {
    total_ns: u64,
    at: Instant,
}

/// CPU units used between `before` and `now` (cumulative nanoseconds at both).
fn cpu_units(before: CpuMark, total_ns: u64, now: Instant) -> Option<f64> {
    let wall = now.checked_duration_since(before.at)?.as_nanos() as f64;
    let used = total_ns.checked_sub(before.total_ns)? as f64;
    (wall > 0.0).then(|| used / wall * 1024.0)
}

/// The cumulative CPU time in a Docker stats document.
fn cpu_total_ns(stats: &serde_json::Value) -> Option<u64> {
    stats
        .pointer("/cpu_stats/cpu_usage/total_usage")
        .and_then(serde_json::Value::as_u64)
}

/// Memory in use, MiB: usage less the inactive page cache (cgroup v2 `inactive_file`,
/// v1 `total_inactive_file`), as `docker stats` and ECS count it.
fn memory_mib(stats: &serde_json::Value) -> Option<f64> {
    let usage = stats
        .pointer("/memory_stats/usage")
        .and_then(serde_json::Value::as_u64)?;
    let cache = [
        "/memory_stats/stats/inactive_file",
        "/memory_stats/stats/total_inactive_file",
    ]
    .iter()
    .find_map(|p| stats.pointer(p).and_then(serde_json::Value::as_u64))
    .unwrap_or(0);
    Some(usage.saturating_sub(cache) as f64 / (1024.0 * 1024.0))
}

/// Samples every `every` until `shutdown`, putting each report on `board`.
///
/// Rounds start at a fixed rate (a slow round delays the next one, it does not add to
/// it) and every running container is read at once: Docker (20.10 at least) answers a
/// one-shot stats read only at its collector's next tick, about a second away, so reading
/// the containers one after the other made a round last about a second per container
/// and an agent with four tasks asked for `1s` reported every ~4 s, leaving scaled
/// one-period-of-3-s alarms without datapoints.
pub async fn run_sampler<R: Runtime + ?Sized>(
    runtime: Arc<R>,
    index: Arc<MetadataIndex>,
    board: Arc<UsageBoard>,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut marks: HashMap<String, CpuMark> = HashMap::new();
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        let tasks = index.running();
        // (task, container name, Docker id) of every running container.
        let targets: Vec<(usize, &str, &str)> = tasks
            .iter()
            .enumerate()
            .flat_map(|(i, task)| {
                task.containers.iter().filter_map(move |c| {
                    let id = c
                        .docker_id
                        .as_deref()
                        .filter(|_| c.known_status == "RUNNING")?;
                    Some((i, c.name.as_str(), id))
                })
            })
            .collect();
        let reads = futures_util::future::join_all(targets.iter().map(|&(_, _, id)| {
            let runtime = Arc::clone(&runtime);
            async move {
                let stats = runtime.stats(id).await;
                (stats, Instant::now())
            }
        }))
        .await;
        let mut seen = Vec::new();
        let mut per_task: Vec<Vec<ContainerMetric>> = vec![Vec::new(); tasks.len()];
        for (&(task, name, id), (stats, now)) in targets.iter().zip(reads) {
            let stats = match stats {
                Ok(s) => s,
                Err(error) => {
                    tracing::debug!(container = id, %error, "No stats for a running container.");
                    continue;
                }
            };
            seen.push(id.to_owned());
            let cpu = cpu_total_ns(&stats).and_then(|total| {
                let before = marks.insert(
                    id.to_owned(),
                    CpuMark {
                        total_ns: total,
                        at: now,
                    },
                );
                before.and_then(|b| cpu_units(b, total, now))
            });
            per_task[task].push(ContainerMetric {
                container_name: name.to_owned(),
                cpu_stats_set: cpu.map(StatsSet::of),
                memory_stats_set: memory_mib(&stats).map(StatsSet::of),
            });
        }
        let report: Vec<TaskMetric> = tasks
            .iter()
            .zip(per_task)
            .filter(|(_, containers)| !containers.is_empty())
            .map(|(task, containers)| TaskMetric {
                task_arn: task.arn.clone(),
                task_definition_family: Some(task.family.clone()),
                task_definition_version: Some(task.revision.clone()),
                container_metrics: containers,
            })
            .collect();
        // Containers gone since: their marks go too.
        marks.retain(|id, _| seen.contains(id));
        if !report.is_empty() {
            board.put(report);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{ContainerView, TaskView};
    use crate::runtime::{ContainerInfo, LogLine, NetworkSpec, RegistryAuth, RuntimeError};
    use serde_json::json;

    #[test]
    fn cpu_units_are_cpu_time_over_wall_time_times_1024() {
        let t0 = Instant::now();
        let before = CpuMark {
            total_ns: 1_000_000_000,
            at: t0,
        };
        // Half a core for two seconds: one second of CPU time.
        let units = cpu_units(before, 2_000_000_000, t0 + Duration::from_secs(2));
        assert_eq!(units, Some(512.0));
        // A counter that went backwards (a restarted container) gives nothing.
        assert_eq!(cpu_units(before, 10, t0 + Duration::from_secs(1)), None);
    }

    #[test]
    fn memory_excludes_the_inactive_page_cache_in_both_cgroup_versions() {
        let v2 = json!({"memory_stats": {"usage": 100 * 1024 * 1024, "stats": {"inactive_file": 36 * 1024 * 1024}}});
        assert_eq!(memory_mib(&v2), Some(64.0));
        let v1 = json!({"memory_stats": {"usage": 10 * 1024 * 1024, "stats": {"total_inactive_file": 2 * 1024 * 1024}}});
        assert_eq!(memory_mib(&v1), Some(8.0));
        assert_eq!(memory_mib(&json!({})), None);
        assert_eq!(
            cpu_total_ns(&json!({"cpu_stats": {"cpu_usage": {"total_usage": 42}}})),
            Some(42)
        );
    }

    /// A runtime whose stats reads all wait for one another (a barrier of `n`), as
    /// Docker's one-shot reads all wait for its next collection; anything else is absent.
    struct GatedStats(tokio::sync::Barrier);

    #[async_trait::async_trait]
    impl Runtime for GatedStats {
        async fn version(&self) -> Result<String, RuntimeError> {
            Ok("test".into())
        }
        async fn ensure_image(
            &self,
            image: &str,
            _: Option<&RegistryAuth>,
        ) -> Result<(), RuntimeError> {
            Err(RuntimeError::NotFound(image.into()))
        }
        async fn create(&self, name: &str, _: serde_json::Value) -> Result<String, RuntimeError> {
            Err(RuntimeError::NotFound(name.into()))
        }
        async fn start(&self, id: &str) -> Result<(), RuntimeError> {
            Err(RuntimeError::NotFound(id.into()))
        }
        async fn stop(&self, id: &str, _: Duration) -> Result<(), RuntimeError> {
            Err(RuntimeError::NotFound(id.into()))
        }
        async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
            Err(RuntimeError::NotFound(id.into()))
        }
        async fn inspect(&self, id: &str) -> Result<ContainerInfo, RuntimeError> {
            Err(RuntimeError::NotFound(id.into()))
        }
        async fn stats(&self, _: &str) -> Result<serde_json::Value, RuntimeError> {
            self.0.wait().await;
            Ok(json!({"cpu_stats": {"cpu_usage": {"total_usage": 1}},
                      "memory_stats": {"usage": 1024 * 1024}}))
        }
        async fn bridge_gateway(&self) -> Result<Option<String>, RuntimeError> {
            Ok(None)
        }
        async fn ensure_network(&self, spec: &NetworkSpec) -> Result<(), RuntimeError> {
            Err(RuntimeError::NotFound(spec.name.clone()))
        }
        async fn has_image(&self, _: &str) -> Result<bool, RuntimeError> {
            Ok(false)
        }
        async fn import_image(
            &self,
            reference: &str,
            _: Vec<u8>,
            _: &[&str],
        ) -> Result<(), RuntimeError> {
            Err(RuntimeError::NotFound(reference.into()))
        }
        async fn list_by_label(
            &self,
            _: &str,
            _: &str,
        ) -> Result<Vec<ContainerInfo>, RuntimeError> {
            Ok(Vec::new())
        }
        fn follow_logs(
            &self,
            _: &str,
            _: i64,
        ) -> tokio::sync::mpsc::Receiver<Result<LogLine, RuntimeError>> {
            tokio::sync::mpsc::channel(1).1
        }
    }

    #[tokio::test]
    async fn a_round_reads_every_running_container_at_once() {
        // Two tasks of two running containers (and one stopped, never read).
        let index = Arc::new(MetadataIndex::default());
        for t in 0..2 {
            let container = |name: &str, status: &str| ContainerView {
                name: name.into(),
                docker_id: Some(format!("{t}-{name}")),
                known_status: status.into(),
                ..ContainerView::default()
            };
            index.publish(TaskView {
                arn: format!("task-{t}"),
                known_status: "RUNNING".into(),
                containers: vec![
                    container("a", "RUNNING"),
                    container("b", "RUNNING"),
                    container("c", "STOPPED"),
                ],
                ..TaskView::default()
            });
        }
        // Read one after the other, the first read would wait forever for the others.
        let runtime = Arc::new(GatedStats(tokio::sync::Barrier::new(4)));
        let board = Arc::new(UsageBoard::new());
        let mut changed = board.subscribe();
        let (stop, shutdown) = watch::channel(false);
        let sampler = tokio::spawn(run_sampler(
            runtime,
            index,
            Arc::clone(&board),
            Duration::from_millis(10),
            shutdown,
        ));
        let round = tokio::time::timeout(Duration::from_secs(10), changed.changed()).await;
        assert!(
            matches!(round, Ok(Ok(()))),
            "no report: the reads were not concurrent"
        );
        let mut report = board.take().unwrap_or_default();
        report.sort_by(|a, b| a.task_arn.cmp(&b.task_arn));
        let names: Vec<(String, Vec<String>)> = report
            .iter()
            .map(|t| {
                let c = t.container_metrics.iter().map(|c| c.container_name.clone());
                (t.task_arn.clone(), c.collect())
            })
            .collect();
        assert_eq!(
            names,
            [
                ("task-0".to_owned(), vec!["a".to_owned(), "b".to_owned()]),
                ("task-1".to_owned(), vec!["a".to_owned(), "b".to_owned()]),
            ]
        );
        let _ = stop.send(true);
        assert!(sampler.await.is_ok());
    }

    #[test]
    fn the_board_keeps_only_the_latest_report() {
        let board = UsageBoard::new();
        let mut rx = board.subscribe();
        board.put(vec![TaskMetric {
            task_arn: "a".into(),
            ..TaskMetric::default()
        }]);
        board.put(vec![TaskMetric {
            task_arn: "b".into(),
            ..TaskMetric::default()
        }]);
        assert!(rx.has_changed().unwrap_or(false));
        rx.mark_unchanged();
        let taken = board.take().unwrap_or_default();
        assert_eq!(taken[0].task_arn, "b");
        assert!(board.take().is_none());
    }
}
