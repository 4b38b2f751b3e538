//! Every series the server exports, by name. Names follow Vector's instrumentation
//! style: `stevedore_<subsystem>_<name>_<unit>`, counters ending in `_total`.

/// How a metric aggregates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Goes up and down; the current value.
    Gauge,
    /// Observations counted into buckets.
    Histogram,
}

/// One exported metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// API requests by `service`, `operation` and `error_code` (empty on success).
    ApiRequestsTotal,
    /// API request latency by `service` and `operation`.
    ApiRequestDurationSeconds,
    /// Time to make one group-commit batch durable (one SQLite transaction).
    StoreCommitDurationSeconds,
    /// Transactions per group-commit batch.
    StoreCommitBatchTransactions,
    /// Transactions refused because a compare-and-swap found a newer revision.
    StoreCasConflictsTotal,
    /// Tasks placed by RunTask/StartTask or the service controller.
    EcsPlacementsTotal,
    /// Placement failures by `reason` (each names an instance and why it was refused).
    EcsPlacementFailuresTotal,
    /// Service controller actions by `action` (`start_task`, `stop_task`).
    EcsControllerActionsTotal,
    /// Tasks by `status` (last status), counted from the store at scrape time.
    EcsTasks,
    /// Agent channel sessions open now.
    EcsAgentSessionsOpen,
    /// Agent channel sessions opened since the server started.
    EcsAgentSessionsOpenedTotal,
    /// Registry bytes received (pushed blobs and manifests).
    RegistryReceivedBytesTotal,
    /// Registry bytes sent (pulled blobs and manifests).
    RegistrySentBytesTotal,
    /// Load balancer requests by `target_group` and `status_class` (`2xx` .. `5xx`).
    LbRequestsTotal,
    /// Rounds of a background loop by `loop`.
    LoopRoundsTotal,
    /// Duration of one round of a background loop by `loop` (the service controller's
    /// round is `loop="ecs_service_controller"`).
    LoopRoundDurationSeconds,
    /// Rounds of a background loop that panicked, by `loop`.
    LoopPanicsTotal,
}

impl Metric {
    /// Every metric, for describing them all at start-up.
    pub const ALL: [Metric; 17] = [
        Metric::ApiRequestsTotal,
        Metric::ApiRequestDurationSeconds,
        Metric::StoreCommitDurationSeconds,
        Metric::StoreCommitBatchTransactions,
        Metric::StoreCasConflictsTotal,
        Metric::EcsPlacementsTotal,
        Metric::EcsPlacementFailuresTotal,
        Metric::EcsControllerActionsTotal,
        Metric::EcsTasks,
        Metric::EcsAgentSessionsOpen,
        Metric::EcsAgentSessionsOpenedTotal,
        Metric::RegistryReceivedBytesTotal,
        Metric::RegistrySentBytesTotal,
        Metric::LbRequestsTotal,
        Metric::LoopRoundsTotal,
        Metric::LoopRoundDurationSeconds,
        Metric::LoopPanicsTotal,
    ];

    /// The series name.
    pub const fn name(self) -> &'static str {
        match self {
            Metric::ApiRequestsTotal => "stevedore_api_requests_total",
            Metric::ApiRequestDurationSeconds => "stevedore_api_request_duration_seconds",
            Metric::StoreCommitDurationSeconds => "stevedore_store_commit_duration_seconds",
            Metric::StoreCommitBatchTransactions => "stevedore_store_commit_batch_transactions",
            Metric::StoreCasConflictsTotal => "stevedore_store_cas_conflicts_total",
            Metric::EcsPlacementsTotal => "stevedore_ecs_placements_total",
            Metric::EcsPlacementFailuresTotal => "stevedore_ecs_placement_failures_total",
            Metric::EcsControllerActionsTotal => "stevedore_ecs_controller_actions_total",
            Metric::EcsTasks => "stevedore_ecs_tasks",
            Metric::EcsAgentSessionsOpen => "stevedore_ecs_agent_sessions_open",
            Metric::EcsAgentSessionsOpenedTotal => "stevedore_ecs_agent_sessions_opened_total",
            Metric::RegistryReceivedBytesTotal => "stevedore_registry_received_bytes_total",
            Metric::RegistrySentBytesTotal => "stevedore_registry_sent_bytes_total",
            Metric::LbRequestsTotal => "stevedore_lb_requests_total",
            Metric::LoopRoundsTotal => "stevedore_loop_rounds_total",
            Metric::LoopRoundDurationSeconds => "stevedore_loop_round_duration_seconds",
            Metric::LoopPanicsTotal => "stevedore_loop_panics_total",
        }
    }

    /// How it aggregates.
    pub const fn kind(self) -> Kind {
        match self {
            Metric::ApiRequestDurationSeconds
            | Metric::StoreCommitDurationSeconds
            | Metric::StoreCommitBatchTransactions
            | Metric::LoopRoundDurationSeconds => Kind::Histogram,
            Metric::EcsTasks | Metric::EcsAgentSessionsOpen => Kind::Gauge,
            _ => Kind::Counter,
        }
    }

    /// The `# HELP` text.
    pub const fn help(self) -> &'static str {
        match self {
            Metric::ApiRequestsTotal => {
                "API requests by service, operation and error code (empty on success)."
            }
            Metric::ApiRequestDurationSeconds => "API request latency by service and operation.",
            Metric::StoreCommitDurationSeconds => {
                "Time to make one group-commit batch of the state store durable."
            }
            Metric::StoreCommitBatchTransactions => {
                "Transactions per group-commit batch of the state store."
            }
            Metric::StoreCasConflictsTotal => {
                "State store transactions refused by a compare-and-swap."
            }
            Metric::EcsPlacementsTotal => "Tasks placed on container instances.",
            Metric::EcsPlacementFailuresTotal => "Placement failures by reason.",
            Metric::EcsControllerActionsTotal => {
                "Service controller actions (tasks started and stopped)."
            }
            Metric::EcsTasks => {
                "Tasks by last status, counted from the state store at scrape time."
            }
            Metric::EcsAgentSessionsOpen => "Agent channel sessions open now.",
            Metric::EcsAgentSessionsOpenedTotal => "Agent channel sessions opened.",
            Metric::RegistryReceivedBytesTotal => {
                "Registry bytes received (blob and manifest pushes)."
            }
            Metric::RegistrySentBytesTotal => "Registry bytes sent (blob and manifest pulls).",
            Metric::LbRequestsTotal => {
                "Load balancer requests forwarded by target group and status class."
            }
            Metric::LoopRoundsTotal => "Rounds run by each background loop.",
            Metric::LoopRoundDurationSeconds => "Duration of one round of each background loop.",
            Metric::LoopPanicsTotal => {
                "Rounds of a background loop that panicked (the loop goes on)."
            }
        }
    }
}

/// The server's supervised background loops (the `loop` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoopName {
    /// The ECS service controller.
    EcsServiceController,
    /// Registry lifecycle policies and garbage collection.
    RegistryMaintenance,
    /// CloudWatch Logs retention sweep.
    LogsRetention,
    /// ECS retention sweep (stopped tasks, client tokens, INACTIVE services).
    EcsRetention,
    /// CloudWatch metrics retention sweep (datapoints past their resolution's retention).
    MetricsRetention,
    /// CloudWatch alarm evaluation.
    AlarmEvaluation,
    /// ELBv2 deregistration-delay sweeper.
    ElbDrainSweeper,
    /// The load balancer data plane following its configuration.
    LbDataPlane,
    /// One target's health checks in the load balancer data plane.
    LbHealthCheck,
    /// The load balancer configuration source following the ELBv2 state.
    LbConfigFollower,
    /// The load balancer data plane publishing its AWS/ApplicationELB metrics.
    LbMetrics,
    /// Re-attaching Fargate capacity after a restart.
    FargateResume,
    /// The metrics exporter's housekeeping (drains histogram samples between scrapes).
    MetricsUpkeep,
    /// The agent `stevedore up` runs in the server's process.
    LocalAgent,
    /// `stevedore lb` reading its configuration from the server's ELBv2 API.
    LbConfigPoller,
    /// `stevedore lb` sending its health verdicts to the server.
    LbHealthReporter,
    /// Application Auto Scaling: alarm-triggered policies and scheduled actions.
    AppScaling,
    /// The packet filter following security groups and task interfaces.
    PacketFilter,
    /// A loop started by a test.
    Test,
}

impl LoopName {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            LoopName::EcsServiceController => "ecs_service_controller",
            LoopName::RegistryMaintenance => "registry_maintenance",
            LoopName::LogsRetention => "logs_retention",
            LoopName::EcsRetention => "ecs_retention",
            LoopName::MetricsRetention => "metrics_retention",
            LoopName::AlarmEvaluation => "alarm_evaluation",
            LoopName::ElbDrainSweeper => "elb_drain_sweeper",
            LoopName::LbDataPlane => "lb_data_plane",
            LoopName::LbHealthCheck => "lb_health_check",
            LoopName::LbConfigFollower => "lb_config_follower",
            LoopName::LbMetrics => "lb_metrics",
            LoopName::FargateResume => "fargate_resume",
            LoopName::MetricsUpkeep => "metrics_upkeep",
            LoopName::LocalAgent => "local_agent",
            LoopName::LbConfigPoller => "lb_config_poller",
            LoopName::LbHealthReporter => "lb_health_reporter",
            LoopName::AppScaling => "app_scaling",
            LoopName::PacketFilter => "packet_filter",
            LoopName::Test => "test",
        }
    }
}

impl std::fmt::Display for LoopName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_follows_the_naming_rules() {
        for m in Metric::ALL {
            let name = m.name();
            assert!(name.starts_with("stevedore_"), "{name}");
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
            assert_eq!(
                name.ends_with("_total"),
                m.kind() == Kind::Counter,
                "{name}: counters and only counters end in _total"
            );
        }
        let mut names: Vec<_> = Metric::ALL.iter().map(|m| m.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Metric::ALL.len(), "names are unique");
    }
}
