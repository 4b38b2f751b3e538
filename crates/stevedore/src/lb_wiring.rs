//! Wires the load balancer pieces together, the one place allowed to know all of them:
//! the ELBv2 API's stored state feeds the `lb` data plane ([`ElbSource`]), the data
//! plane's health verdicts flow back into DescribeTargetHealth, and ECS services register
//! their tasks through the ELBv2 API ([`EcsTargets`]).

use lb::ConfigSource;
use model::lb::{Config, HealthReport, TargetKey};
use std::sync::Arc;
use tokio::sync::watch;

/// The data plane's configuration, rebuilt from the ELBv2 state on every change.
pub struct ElbSource {
    elb: elbv2::Elbv2,
    config: watch::Sender<Arc<Config>>,
}

/// How often the snapshot is rebuilt even without a change notice (catches drains that
/// expire and writes by another server replica).
const REFRESH: std::time::Duration = std::time::Duration::from_secs(2);

impl ElbSource {
    /// A source over `elb`, starting empty until [`ElbSource::follow`] runs.
    pub fn new(elb: elbv2::Elbv2) -> Arc<Self> {
        Arc::new(ElbSource {
            elb,
            config: watch::Sender::new(Arc::new(Config::default())),
        })
    }

    /// Rebuilds the snapshot after each ELBv2 write, forever.
    pub async fn follow(self: Arc<Self>) {
        let mut changes = self.elb.subscribe();
        loop {
            match self.elb.lb_config().await {
                Ok(c) => {
                    if c != **self.config.borrow() {
                        self.config.send_replace(Arc::new(c));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Reading the load balancer configuration failed.")
                }
            }
            tokio::select! {
                r = changes.changed() => if r.is_err() { return },
                () = tokio::time::sleep(REFRESH) => {}
            }
        }
    }
}

impl ConfigSource for ElbSource {
    fn config(&self) -> watch::Receiver<Arc<Config>> {
        self.config.subscribe()
    }

    fn report_health(&self, reports: Vec<HealthReport>) {
        self.elb.report_health(reports);
    }
}

/// ECS services' view of target groups, through the ELBv2 API.
pub struct EcsTargets(pub elbv2::Elbv2);

fn keys(targets: &[(String, u16)]) -> Vec<TargetKey> {
    targets
        .iter()
        .map(|(id, port)| TargetKey {
            id: id.clone(),
            port: *port,
        })
        .collect()
}

#[async_trait::async_trait]
impl ecs::TargetGroups for EcsTargets {
    async fn describe(&self, arn: &str) -> Result<Option<ecs::TargetGroupView>, String> {
        let Some((target_type, targets)) = self
            .0
            .target_group_health(arn)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        Ok(Some(ecs::TargetGroupView {
            target_type,
            targets: targets
                .into_iter()
                .map(|(k, state, reason)| ecs::TargetState {
                    id: k.id,
                    port: k.port,
                    state,
                    reason,
                })
                .collect(),
        }))
    }

    async fn register(&self, arn: &str, targets: &[ecs::Registration]) -> Result<(), String> {
        let targets: Vec<(TargetKey, Option<String>)> = targets
            .iter()
            .map(|t| {
                let key = TargetKey {
                    id: t.id.clone(),
                    port: t.port,
                };
                (key, t.address.clone())
            })
            .collect();
        self.0
            .register_targets_at(arn, &targets)
            .await
            .map_err(|e| e.to_string())
    }

    async fn deregister(&self, arn: &str, targets: &[(String, u16)]) -> Result<(), String> {
        self.0
            .deregister_targets(arn, &keys(targets))
            .await
            .map_err(|e| e.to_string())
    }
}
