//! Where the data plane gets its configuration and where its health verdicts go: the
//! [`ConfigSource`] capability the `stevedore` binary implements over the store, and
//! [`WatchSource`], an in-memory implementation for tests, examples and embedding.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use model::lb::{Config, Health, HealthReport, TargetKey};
use tokio::sync::watch;

/// How the data plane learns its configuration and reports target health.
pub trait ConfigSource: Send + Sync + 'static {
    /// The configuration, as a watch: the current snapshot now, each replacement later.
    /// The data plane ignores snapshots whose revision is lower than the one it serves.
    fn config(&self) -> watch::Receiver<Arc<Config>>;

    /// Health verdicts that changed since the last call (batched; at-least-once per
    /// change). Called from the data plane's reporter task, so it may block briefly but
    /// should not do slow I/O inline.
    fn report_health(&self, reports: Vec<HealthReport>);
}

/// An in-memory [`ConfigSource`]: `set` publishes a snapshot, and the latest health per
/// target is kept for inspection.
#[derive(Debug)]
pub struct WatchSource {
    config: watch::Sender<Arc<Config>>,
    health: Mutex<HashMap<(String, TargetKey), Health>>,
    /// Bumped on every report batch, so a caller can wait for news.
    reported: watch::Sender<u64>,
}

impl WatchSource {
    /// A source serving `config`.
    pub fn new(config: Config) -> Self {
        WatchSource {
            config: watch::Sender::new(Arc::new(config)),
            health: Mutex::new(HashMap::new()),
            reported: watch::Sender::new(0),
        }
    }

    /// Replaces the served snapshot.
    pub fn set(&self, config: Config) {
        self.config.send_replace(Arc::new(config));
    }

    /// The snapshot being served.
    pub fn current(&self) -> Arc<Config> {
        self.config.borrow().clone()
    }

    /// The latest verdict reported for a target.
    pub fn health(&self, target_group_arn: &str, target: &TargetKey) -> Option<Health> {
        let map = self.health.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&(target_group_arn.to_owned(), target.clone()))
            .cloned()
    }

    /// Every latest verdict.
    pub fn all_health(&self) -> Vec<HealthReport> {
        let map = self.health.lock().unwrap_or_else(|e| e.into_inner());
        map.iter()
            .map(|((tg, target), health)| HealthReport {
                target_group_arn: tg.clone(),
                target: target.clone(),
                health: health.clone(),
            })
            .collect()
    }

    /// Notified after each report batch.
    pub fn subscribe_reports(&self) -> watch::Receiver<u64> {
        self.reported.subscribe()
    }
}

impl ConfigSource for WatchSource {
    fn config(&self) -> watch::Receiver<Arc<Config>> {
        self.config.subscribe()
    }

    fn report_health(&self, reports: Vec<HealthReport>) {
        {
            let mut map = self.health.lock().unwrap_or_else(|e| e.into_inner());
            for r in reports {
                map.insert((r.target_group_arn, r.target), r.health);
            }
        }
        self.reported.send_modify(|n| *n += 1);
    }
}
