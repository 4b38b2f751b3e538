//! Typed events: each `emit()` writes the log line and the metric together. Handles are
//! resolved once (per label set) so the hot paths only touch atomics.

use crate::exporter::install;
use crate::names::Metric;
use metrics::{Counter, Gauge, Histogram};
use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};
use std::time::Duration;

/// Distinct (service, operation, error code) series kept before new ones are folded into
/// `operation="other"`: operation names come from the request, so a caller must not be
/// able to grow the exposition without bound.
const MAX_API_SERIES: usize = 2048;

/// One API request answered (by the top-level dispatch).
#[derive(Debug, Clone, Copy)]
pub struct ApiRequest<'a> {
    /// The API as the dispatch names it (`ecs`, `ecr`, `logs`, `elbv2`).
    pub service: &'a str,
    /// The operation (`DescribeTaskDefinition`).
    pub operation: &'a str,
    /// The AWS error code, `None` on success.
    pub error_code: Option<&'a str>,
    /// Time from the request's arrival to its answer.
    pub elapsed: Duration,
}

struct OpHandles {
    duration: Histogram,
    by_code: HashMap<Box<str>, Counter>,
}

#[derive(Default)]
struct ApiSeries {
    ops: HashMap<Box<str>, HashMap<Box<str>, OpHandles>>,
    count: usize,
}

fn api_series() -> &'static RwLock<ApiSeries> {
    static SERIES: OnceLock<RwLock<ApiSeries>> = OnceLock::new();
    SERIES.get_or_init(|| {
        install();
        RwLock::default()
    })
}

impl ApiRequest<'_> {
    /// Counts the request, records its latency and logs it at debug level.
    pub fn emit(&self) {
        let code = self.error_code.unwrap_or("");
        let seconds = self.elapsed.as_secs_f64();
        let series = api_series();
        let hit = {
            let s = series
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match s.ops.get(self.service).and_then(|o| o.get(self.operation)) {
                Some(h) => match h.by_code.get(code) {
                    Some(c) => {
                        c.increment(1);
                        h.duration.record(seconds);
                        true
                    }
                    None => false,
                },
                None => false,
            }
        };
        if !hit {
            self.register_and_count(code, seconds);
        }
        tracing::debug!(
            service = self.service,
            operation = self.operation,
            error_code = code,
            elapsed_ms = self.elapsed.as_millis(),
            "API request answered."
        );
    }

    /// The slow path: the first request of its series (or one past the cap).
    fn register_and_count(&self, code: &str, seconds: f64) {
        let mut s = api_series()
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let full = s.count >= MAX_API_SERIES;
        let (service, operation) = if full {
            ("other", "other")
        } else {
            (self.service, self.operation)
        };
        let mut added = 0;
        let op = s
            .ops
            .entry(service.into())
            .or_default()
            .entry(operation.into())
            .or_insert_with(|| OpHandles {
                duration: metrics::histogram!(
                    Metric::ApiRequestDurationSeconds.name(),
                    "service" => service.to_owned(),
                    "operation" => operation.to_owned()
                ),
                by_code: HashMap::new(),
            });
        let code = if full { "other" } else { code };
        let counter = op.by_code.entry(code.into()).or_insert_with(|| {
            added = 1;
            metrics::counter!(
                Metric::ApiRequestsTotal.name(),
                "service" => service.to_owned(),
                "operation" => operation.to_owned(),
                "error_code" => code.to_owned()
            )
        });
        counter.increment(1);
        op.duration.record(seconds);
        s.count += added;
    }
}

/// The state store's handles, resolved when its writer starts.
pub struct StoreMetrics {
    commit: Histogram,
    batch: Histogram,
    conflicts: Counter,
}

impl StoreMetrics {
    /// Resolves the handles (installing the recorder if need be).
    pub fn new() -> Self {
        install();
        Self {
            commit: metrics::histogram!(Metric::StoreCommitDurationSeconds.name()),
            batch: metrics::histogram!(Metric::StoreCommitBatchTransactions.name()),
            conflicts: metrics::counter!(Metric::StoreCasConflictsTotal.name()),
        }
    }
}

impl Default for StoreMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// One group-commit batch decided by the store's writer.
#[derive(Debug, Clone, Copy)]
pub struct StoreCommit {
    /// Transactions in the batch.
    pub transactions: usize,
    /// Of which refused by a compare-and-swap.
    pub conflicts: usize,
    /// The revision the batch committed at.
    pub revision: u64,
    /// Time to make it durable; `None` when nothing needed writing.
    pub commit: Option<Duration>,
}

impl StoreCommit {
    /// Records the batch and logs it at trace level.
    pub fn emit(&self, m: &StoreMetrics) {
        m.batch.record(self.transactions as f64);
        if self.conflicts > 0 {
            m.conflicts.increment(self.conflicts as u64);
        }
        if let Some(d) = self.commit {
            m.commit.record(d.as_secs_f64());
        }
        tracing::trace!(
            size = self.transactions,
            conflicts = self.conflicts,
            revision = self.revision,
            "State batch committed."
        );
    }
}

/// One placement decided (RunTask, StartTask or a service's launch).
#[derive(Debug, Clone)]
pub struct PlacementDecided<'a, I> {
    /// The cluster.
    pub cluster: &'a str,
    /// Tasks placed.
    pub placed: usize,
    /// Why each refused instance was refused (placement's reason names).
    pub failure_reasons: I,
}

impl<I: Iterator<Item = &'static str>> PlacementDecided<'_, I> {
    /// Counts the placed tasks and each failure by reason; logs at debug level.
    pub fn emit(self) {
        install();
        metrics::counter!(Metric::EcsPlacementsTotal.name()).increment(self.placed as u64);
        let mut failures = 0usize;
        for reason in self.failure_reasons {
            failures += 1;
            metrics::counter!(Metric::EcsPlacementFailuresTotal.name(), "reason" => reason)
                .increment(1);
        }
        tracing::debug!(
            cluster = self.cluster,
            placed = self.placed,
            failures,
            "Placement decided."
        );
    }
}

/// Something the service controller did to converge a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControllerAction {
    /// Started service tasks.
    StartTask,
    /// Asked service tasks to stop.
    StopTask,
}

impl ControllerAction {
    /// The `action` label.
    pub const fn as_str(self) -> &'static str {
        match self {
            ControllerAction::StartTask => "start_task",
            ControllerAction::StopTask => "stop_task",
        }
    }

    /// Counts `n` actions; logs at debug level.
    pub fn emit(self, n: usize) {
        install();
        metrics::counter!(Metric::EcsControllerActionsTotal.name(), "action" => self.as_str())
            .increment(n as u64);
        tracing::debug!(
            action = self.as_str(),
            count = n,
            "Service controller acted."
        );
    }
}

struct SessionHandles {
    open: Gauge,
    opened: Counter,
}

fn session_handles() -> &'static SessionHandles {
    static H: OnceLock<SessionHandles> = OnceLock::new();
    H.get_or_init(|| {
        install();
        SessionHandles {
            open: metrics::gauge!(Metric::EcsAgentSessionsOpen.name()),
            opened: metrics::counter!(Metric::EcsAgentSessionsOpenedTotal.name()),
        }
    })
}

/// An open agent channel session: counted while it lives.
#[derive(Debug)]
pub struct AgentSession(());

impl AgentSession {
    /// Counts a session opened (the gauge goes down when the value is dropped).
    pub fn open(instance_arn: &str) -> Self {
        let h = session_handles();
        h.open.increment(1.0);
        h.opened.increment(1);
        tracing::debug!(instance = instance_arn, "Agent channel session opened.");
        AgentSession(())
    }
}

impl Drop for AgentSession {
    fn drop(&mut self) {
        session_handles().open.decrement(1.0);
    }
}

/// Bytes through the registry's distribution API (per body chunk; not logged, the
/// request's own log line says what moved).
#[derive(Debug, Clone, Copy)]
pub enum RegistryBytes {
    /// Pushed to the registry.
    Received(usize),
    /// Pulled from the registry.
    Sent(usize),
}

impl RegistryBytes {
    /// Adds the bytes to their counter.
    pub fn emit(self) {
        static H: OnceLock<(Counter, Counter)> = OnceLock::new();
        let (received, sent) = H.get_or_init(|| {
            install();
            (
                metrics::counter!(Metric::RegistryReceivedBytesTotal.name()),
                metrics::counter!(Metric::RegistrySentBytesTotal.name()),
            )
        });
        match self {
            RegistryBytes::Received(n) => received.increment(n as u64),
            RegistryBytes::Sent(n) => sent.increment(n as u64),
        }
    }
}

/// One target group's request counters, resolved when the load balancer's
/// configuration loads, so a forwarded request costs one atomic add.
#[derive(Debug, Clone)]
pub struct LbRequests {
    by_class: [Counter; 6],
}

const STATUS_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

impl LbRequests {
    /// The counters of the target group `arn` (labelled `targetgroup/<name>/<id>`, as
    /// CloudWatch names the dimension).
    pub fn for_target_group(arn: &str) -> Self {
        install();
        let label = arn
            .find("targetgroup/")
            .map_or(arn, |i| &arn[i..])
            .to_owned();
        Self {
            by_class: STATUS_CLASSES.map(|class| {
                metrics::counter!(
                    Metric::LbRequestsTotal.name(),
                    "target_group" => label.clone(),
                    "status_class" => class
                )
            }),
        }
    }

    /// Counts one request answered with `status` (not logged: the data plane's hot path).
    pub fn record(&self, status: u16) {
        let class = match status / 100 {
            c @ 1..=5 => usize::from(c) - 1,
            _ => 5,
        };
        self.by_class[class].increment(1);
    }
}

/// The task statuses ECS reports, in lifecycle order.
pub const TASK_STATUSES: [&str; 8] = [
    "PROVISIONING",
    "PENDING",
    "ACTIVATING",
    "RUNNING",
    "DEACTIVATING",
    "STOPPING",
    "DEPROVISIONING",
    "STOPPED",
];

/// Tasks by last status, counted at scrape time. Every known status is set (zero when
/// none), so a status that empties does not keep its last count.
#[derive(Debug, Clone, Copy)]
pub struct TaskCounts<'a>(pub &'a HashMap<String, u64>);

impl TaskCounts<'_> {
    /// Sets the gauges.
    pub fn emit(&self) {
        install();
        for status in TASK_STATUSES {
            let n = self.0.get(status).copied().unwrap_or(0);
            metrics::gauge!(Metric::EcsTasks.name(), "status" => status).set(n as f64);
        }
        let other: u64 = self
            .0
            .iter()
            .filter(|(s, _)| !TASK_STATUSES.contains(&s.as_str()))
            .map(|(_, n)| n)
            .sum();
        metrics::gauge!(Metric::EcsTasks.name(), "status" => "OTHER").set(other as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_render_with_their_labels() {
        ApiRequest {
            service: "ecs",
            operation: "ListClusters",
            error_code: None,
            elapsed: Duration::from_millis(3),
        }
        .emit();
        ApiRequest {
            service: "ecs",
            operation: "ListClusters",
            error_code: Some("ClusterNotFoundException"),
            elapsed: Duration::from_millis(1),
        }
        .emit();
        LbRequests::for_target_group(
            "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/0123",
        )
        .record(503);
        let text = crate::render();
        for want in [
            r#"stevedore_api_requests_total{service="ecs",operation="ListClusters",error_code=""}"#,
            r#"error_code="ClusterNotFoundException""#,
            r#"stevedore_api_request_duration_seconds_bucket{service="ecs",operation="ListClusters",le="0.005"}"#,
            r#"stevedore_lb_requests_total{target_group="targetgroup/web/0123",status_class="5xx"} 1"#,
            "# HELP stevedore_api_requests_total",
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
    }

    #[test]
    fn agent_sessions_count_while_open() {
        let open = || {
            crate::render()
                .lines()
                .find_map(|l| l.strip_prefix("stevedore_ecs_agent_sessions_open "))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let session = AgentSession::open("i-1");
        let during = open();
        drop(session);
        assert_eq!(during - open(), 1.0);
    }
}
