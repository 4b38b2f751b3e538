//! Container usage from the agents (`PublishMetricsRequest` on the channel) turned into
//! the AWS/ECS metrics AWS defines, handed to a [`UsageSink`] (the binary's CloudWatch):
//!
//! - per service (ClusterName + ServiceName), one value per running task:
//!   `CPUUtilization` = CPU units its containers used ÷ CPU units it reserved × 100, and
//!   `MemoryUtilization` likewise in MiB; the sink's per-minute statistic set then gives
//!   the service's Average, Minimum (least loaded task), Maximum and SampleCount.
//! - per cluster (ClusterName), one value per EC2 instance report: `CPUUtilization` and
//!   `MemoryUtilization` = used by its tasks ÷ registered × 100, `CPUReservation` and
//!   `MemoryReservation` = reserved ÷ registered × 100. Fargate capacity never feeds the
//!   cluster's metrics, as on AWS.
//!
//! A task that reserves no CPU (or no memory) has no utilization of it: nothing to divide
//! by. Values above 100 are kept: a container without a hard limit can use more than it
//! reserved, and AWS reports that too.

use std::sync::Arc;

use model::acs::{PublishMetricsRequest, TaskMetric};

use crate::error::EcsError;
use crate::objects::{instance_key, task_key, StoredInstance, StoredTask};
use crate::Ecs;

/// The namespace of every point.
pub const NAMESPACE: &str = "AWS/ECS";

/// One AWS/ECS datapoint, in percent.
#[derive(Clone, Debug, PartialEq)]
pub struct UsagePoint {
    /// `CPUUtilization`, `MemoryUtilization`, `CPUReservation` or `MemoryReservation`.
    pub metric: &'static str,
    /// The cluster's name.
    pub cluster: String,
    /// The service's name (per-service points); `None` for the cluster's.
    pub service: Option<String>,
    /// Percent.
    pub value: f64,
    /// Epoch seconds.
    pub timestamp: i64,
}

/// Where AWS/ECS datapoints go (the binary's CloudWatch store).
pub trait UsageSink: Send + Sync {
    /// Stores the points (in the background: an agent's report never waits on it).
    fn publish(&self, points: Vec<UsagePoint>);
}

/// What a task reserved and which service it belongs to.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TaskShare {
    pub service: Option<String>,
    pub cpu_reserved: f64,
    pub memory_reserved: f64,
    pub fargate: bool,
}

/// What an instance registered and reserved.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct InstanceShare {
    pub cpu_registered: f64,
    pub memory_registered: f64,
    pub cpu_reserved: f64,
    pub memory_reserved: f64,
}

fn percent(used: f64, of: f64) -> Option<f64> {
    (of > 0.0 && used.is_finite()).then(|| used / of * 100.0)
}

/// A task's CPU units and memory MiB used (the average of each container's set).
fn used(metric: &TaskMetric) -> (Option<f64>, Option<f64>) {
    let mut cpu = None;
    let mut memory = None;
    for c in &metric.container_metrics {
        if let Some(s) = &c.cpu_stats_set {
            *cpu.get_or_insert(0.0) += s.average();
        }
        if let Some(s) = &c.memory_stats_set {
            *memory.get_or_insert(0.0) += s.average();
        }
    }
    (cpu, memory)
}

/// The points of one report: `tasks` pairs each reported task with what it reserved
/// (tasks not found are left out by the caller); `instance` is the reporting EC2
/// instance (`None` for hidden Fargate capacity).
pub(crate) fn compute_points(
    cluster: &str,
    tasks: &[(&TaskMetric, TaskShare)],
    instance: Option<InstanceShare>,
    timestamp: i64,
) -> Vec<UsagePoint> {
    let point = |metric, service: Option<&String>, value| UsagePoint {
        metric,
        cluster: cluster.to_owned(),
        service: service.cloned(),
        value,
        timestamp,
    };
    let mut out = Vec::new();
    let (mut cpu_used, mut memory_used) = (0.0, 0.0);
    for (metric, share) in tasks {
        let (cpu, memory) = used(metric);
        if !share.fargate {
            cpu_used += cpu.unwrap_or(0.0);
            memory_used += memory.unwrap_or(0.0);
        }
        let Some(service) = share.service.as_ref() else {
            continue;
        };
        if let Some(v) = cpu.and_then(|c| percent(c, share.cpu_reserved)) {
            out.push(point("CPUUtilization", Some(service), v));
        }
        if let Some(v) = memory.and_then(|m| percent(m, share.memory_reserved)) {
            out.push(point("MemoryUtilization", Some(service), v));
        }
    }
    if let Some(i) = instance {
        for (metric, value) in [
            ("CPUUtilization", percent(cpu_used, i.cpu_registered)),
            (
                "MemoryUtilization",
                percent(memory_used, i.memory_registered),
            ),
            ("CPUReservation", percent(i.cpu_reserved, i.cpu_registered)),
            (
                "MemoryReservation",
                percent(i.memory_reserved, i.memory_registered),
            ),
        ] {
            if let Some(v) = value {
                out.push(point(metric, None, v));
            }
        }
    }
    out
}

fn share_of(st: &StoredTask) -> TaskShare {
    TaskShare {
        service: st
            .task
            .group
            .as_deref()
            .and_then(|g| g.strip_prefix("service:"))
            .map(str::to_owned),
        cpu_reserved: st.reservation.cpu as f64,
        memory_reserved: st.reservation.memory as f64,
        fargate: st.task.launch_type == Some(model::ecs::shapes::LaunchType::Fargate),
    }
}

fn integer(r: &[model::ecs::shapes::Resource], name: &str) -> f64 {
    r.iter()
        .find(|x| x.name.as_deref() == Some(name))
        .and_then(|x| x.integer_value.map(i64::from).or(x.long_value))
        .unwrap_or(0) as f64
}

impl Ecs {
    /// Sets where AWS/ECS metrics from the agents' usage reports go.
    pub fn set_usage_sink(&self, sink: Arc<dyn UsageSink>) {
        self.channels.set_usage_sink(sink);
    }

    /// Turns an instance's usage report into AWS/ECS datapoints for the sink; tasks of
    /// other instances, unknown tasks and stopped ones are skipped. Returns how many
    /// points went to the sink.
    pub(crate) async fn apply_usage_report(
        &self,
        cluster: &str,
        instance_id: &str,
        report: &PublishMetricsRequest,
    ) -> Result<usize, EcsError> {
        let Some(sink) = self.channels.usage_sink() else {
            return Ok(0);
        };
        let mut tasks = Vec::new();
        for metric in &report.task_metrics {
            let Some(id) = self.task_id(cluster, &metric.task_arn) else {
                continue;
            };
            let Some((st, _)) = self
                .objects
                .get::<StoredTask>(&task_key(cluster, &id))
                .await?
            else {
                continue;
            };
            if st.instance_id != instance_id
                || st.released
                || st.task.last_status != Some(model::ecs::status::TaskStatus::Running)
            {
                continue;
            }
            tasks.push((metric, share_of(&st)));
        }
        let instance = self
            .objects
            .get::<StoredInstance>(&instance_key(cluster, instance_id))
            .await?
            .filter(|(si, _)| !si.fargate)
            .map(|(si, _)| {
                let registered = si.instance.registered_resources.unwrap_or_default();
                InstanceShare {
                    cpu_registered: integer(&registered, "CPU"),
                    memory_registered: integer(&registered, "MEMORY"),
                    cpu_reserved: si.usage.cpu as f64,
                    memory_reserved: si.usage.memory as f64,
                }
            });
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        // The agent's clock, unless it is off by more than a minute (then the server's).
        let timestamp = report
            .timestamp
            .filter(|t| t.is_finite() && (*t - now as f64).abs() < 60.0)
            .map_or(now, |t| t as i64);
        let points = compute_points(cluster, &tasks, instance, timestamp);
        let n = points.len();
        if n > 0 {
            sink.publish(points);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::acs::{ContainerMetric, StatsSet};

    fn metric(cpu: &[f64], mem: &[f64]) -> TaskMetric {
        TaskMetric {
            task_arn: "arn".into(),
            container_metrics: cpu
                .iter()
                .zip(mem)
                .enumerate()
                .map(|(i, (c, m))| ContainerMetric {
                    container_name: format!("c{i}"),
                    cpu_stats_set: Some(StatsSet::of(*c)),
                    memory_stats_set: Some(StatsSet::of(*m)),
                })
                .collect(),
            ..TaskMetric::default()
        }
    }

    fn share(service: Option<&str>, cpu: f64, memory: f64) -> TaskShare {
        TaskShare {
            service: service.map(str::to_owned),
            cpu_reserved: cpu,
            memory_reserved: memory,
            fargate: false,
        }
    }

    fn values(points: &[UsagePoint], metric: &str, service: Option<&str>) -> Vec<f64> {
        points
            .iter()
            .filter(|p| p.metric == metric && p.service.as_deref() == service)
            .map(|p| p.value)
            .collect()
    }

    #[test]
    fn service_utilization_is_each_tasks_use_over_its_reservation() {
        // Two containers using 256 + 256 of 1,024 units and 64 + 64 of 512 MiB.
        let busy = metric(&[256.0, 256.0], &[64.0, 64.0]);
        let idle = metric(&[0.0], &[32.0]);
        let tasks = [
            (&busy, share(Some("web"), 1024.0, 512.0)),
            (&idle, share(Some("web"), 1024.0, 512.0)),
        ];
        let points = compute_points("c", &tasks, None, 60);
        assert_eq!(
            values(&points, "CPUUtilization", Some("web")),
            vec![50.0, 0.0]
        );
        assert_eq!(
            values(&points, "MemoryUtilization", Some("web")),
            vec![25.0, 6.25]
        );
        assert!(points.iter().all(|p| p.cluster == "c" && p.timestamp == 60));
        // No instance: no cluster points.
        assert!(values(&points, "CPUReservation", None).is_empty());
    }

    #[test]
    fn cluster_metrics_come_from_ec2_instances_and_can_exceed_100() {
        let hog = metric(&[3072.0], &[100.0]);
        let standalone = [(&hog, share(None, 1024.0, 0.0))];
        let instance = InstanceShare {
            cpu_registered: 4096.0,
            memory_registered: 1000.0,
            cpu_reserved: 1024.0,
            memory_reserved: 250.0,
        };
        let points = compute_points("c", &standalone, Some(instance), 0);
        // A standalone task has no service metric; memory reserved nothing: no task point.
        assert!(points.iter().all(|p| p.service.is_none()));
        assert_eq!(values(&points, "CPUUtilization", None), vec![75.0]);
        assert_eq!(values(&points, "MemoryUtilization", None), vec![10.0]);
        assert_eq!(values(&points, "CPUReservation", None), vec![25.0]);
        assert_eq!(values(&points, "MemoryReservation", None), vec![25.0]);
        let over = [(&hog, share(Some("s"), 1024.0, 50.0))];
        let points = compute_points("c", &over, None, 0);
        assert_eq!(values(&points, "CPUUtilization", Some("s")), vec![300.0]);
        assert_eq!(values(&points, "MemoryUtilization", Some("s")), vec![200.0]);
    }

    #[test]
    fn fargate_tasks_feed_their_service_but_never_the_cluster() {
        let t = metric(&[512.0], &[256.0]);
        let mut fargate = share(Some("f"), 1024.0, 2048.0);
        fargate.fargate = true;
        let points = compute_points("c", &[(&t, fargate)], None, 0);
        assert_eq!(values(&points, "CPUUtilization", Some("f")), vec![50.0]);
        assert!(values(&points, "CPUUtilization", None).is_empty());
    }
}
