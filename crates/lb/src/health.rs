//! Active health checks: the pure threshold state machine ([`Tracker`]) that turns probe
//! outcomes into AWS target health, the probes themselves (HTTP GET or TCP connect), and
//! the per-target checker task that runs them on the group's interval and publishes each
//! change (to routing through [`TargetState`], to the control side through a channel).

use std::sync::Arc;
use std::time::Duration;

use model::lb::{Health, HealthCheck, HealthReport, TargetKey, TargetProtocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::balance::{Routable, TargetState};

/// What one health check probe observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Connected (TCP) or answered with a matching code (HTTP).
    Success,
    /// No connection or no answer within the timeout.
    Timeout,
    /// Answered with a code the matcher does not accept.
    CodeMismatch(u16),
    /// Refused, reset, or an unreadable answer.
    Failed,
}

impl Probe {
    /// AWS's unhealthy verdict for a failed probe (`None` for success).
    fn verdict(&self) -> Option<Health> {
        let (reason, description) = match self {
            Probe::Success => return None,
            Probe::Timeout => ("Target.Timeout", "Request timed out".to_owned()),
            Probe::CodeMismatch(code) => (
                "Target.ResponseCodeMismatch",
                format!("Health checks failed with these codes: [{code}]"),
            ),
            Probe::Failed => (
                "Target.FailedHealthChecks",
                "Health checks failed".to_owned(),
            ),
        };
        Some(Health::Unhealthy {
            reason: reason.to_owned(),
            description,
        })
    }
}

/// The threshold state machine for one target: `healthy_threshold` consecutive successes
/// make it healthy, `unhealthy_threshold` consecutive failures unhealthy; an opposite
/// outcome resets the streak. Starts in [`Health::Initial`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tracker {
    health: Health,
    successes: u32,
    failures: u32,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker::resume(Health::Initial)
    }
}

impl Tracker {
    /// A tracker that continues from a known verdict with no streak (used when a target's
    /// checker restarts because its settings changed).
    pub fn resume(health: Health) -> Self {
        Tracker {
            health,
            successes: 0,
            failures: 0,
        }
    }

    /// The current verdict.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Feeds one probe outcome; returns the new verdict if it changed (including a new
    /// failure reason while already unhealthy, so the control side shows the latest).
    pub fn observe(
        &mut self,
        probe: &Probe,
        healthy_threshold: u32,
        unhealthy_threshold: u32,
    ) -> Option<&Health> {
        let next = match probe.verdict() {
            None => {
                self.failures = 0;
                self.successes = self.successes.saturating_add(1);
                (self.health != Health::Healthy && self.successes >= healthy_threshold.max(1))
                    .then_some(Health::Healthy)
            }
            Some(unhealthy) => {
                self.successes = 0;
                self.failures = self.failures.saturating_add(1);
                let already = matches!(self.health, Health::Unhealthy { .. });
                let crossed = self.failures >= unhealthy_threshold.max(1);
                ((already || crossed) && self.health != unhealthy).then_some(unhealthy)
            }
        };
        let next = next?;
        self.health = next;
        Some(&self.health)
    }
}

/// How routing should treat a verdict.
pub(crate) fn routable(health: &Health) -> Routable {
    match health {
        Health::Initial => Routable::Initial,
        Health::Healthy => Routable::Healthy,
        Health::Unhealthy { .. } => Routable::Unhealthy,
    }
}

/// Everything one target's checker needs; equal specs mean the checker can keep running.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CheckSpec {
    pub(crate) target_group_arn: String,
    pub(crate) target: TargetKey,
    pub(crate) host: String,
    pub(crate) check: HealthCheck,
}

/// Runs one target's health checks until `stop`, publishing each verdict change.
pub(crate) async fn run_checker(
    spec: CheckSpec,
    state: Arc<TargetState>,
    reports: mpsc::UnboundedSender<HealthReport>,
    stop: CancellationToken,
) {
    let resumed = match state.health() {
        Routable::Initial => Health::Initial,
        Routable::Healthy => Health::Healthy,
        // The reason is not kept in the routing state; the next failure restates it.
        Routable::Unhealthy => Health::Unhealthy {
            reason: "Target.FailedHealthChecks".into(),
            description: "Health checks failed".into(),
        },
    };
    let mut tracker = Tracker::resume(resumed);
    let publish = |health: Health| {
        // The receiver lives as long as the data plane; after that nobody listens.
        let _ = reports.send(HealthReport {
            target_group_arn: spec.target_group_arn.clone(),
            target: spec.target.clone(),
            health,
        });
    };
    if tracker.health() == &Health::Initial {
        publish(Health::Initial);
    }
    let interval = Duration::from_secs(u64::from(spec.check.interval_seconds.max(1)));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let outcome = tokio::select! {
            _ = stop.cancelled() => return,
            outcome = async {
                ticker.tick().await;
                // A probe that panics counts as a failed check, and the next one runs.
                telemetry::supervise_round(telemetry::LoopName::LbHealthCheck, probe(&spec))
                    .await
                    .unwrap_or(Probe::Failed)
            } => outcome,
        };
        let changed = tracker
            .observe(
                &outcome,
                spec.check.healthy_threshold,
                spec.check.unhealthy_threshold,
            )
            .cloned();
        if let Some(health) = changed {
            tracing::info!(
                target_group = %spec.target_group_arn,
                target = %spec.target.id,
                port = spec.target.port,
                health = ?health,
                "Target health changed."
            );
            state.set_health(routable(&health));
            publish(health);
        }
    }
}

/// One probe, bounded by the check's timeout.
async fn probe(spec: &CheckSpec) -> Probe {
    let port = spec.check.port.unwrap_or(spec.target.port);
    let timeout = Duration::from_secs(u64::from(spec.check.timeout_seconds.max(1)));
    let attempt = async {
        // Marked like proxied traffic: health checks come from the load balancer, so a
        // target admitting the load balancer's group admits them too.
        let mark = model::lb::socket_mark(&spec.target_group_arn);
        let mut stream = match crate::pool::open_marked(&spec.host, port, mark).await {
            Ok(s) => s,
            Err(_) => return Probe::Failed,
        };
        match spec.check.protocol {
            TargetProtocol::Tcp => Probe::Success,
            TargetProtocol::Http => http_probe(&mut stream, spec, port).await,
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or(Probe::Timeout)
}

/// A one-shot `GET` on its own connection, as ALB's checker does; only the status line
/// matters, so it is read by hand instead of through a full HTTP client.
async fn http_probe(stream: &mut TcpStream, spec: &CheckSpec, port: u16) -> Probe {
    let path = if spec.check.path.starts_with('/') {
        spec.check.path.as_str()
    } else {
        "/"
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}:{port}\r\nUser-Agent: ELB-HealthChecker/2.0\r\n\
         Accept: */*\r\nConnection: close\r\n\r\n",
        spec.host
    );
    if stream.write_all(request.as_bytes()).await.is_err() {
        return Probe::Failed;
    }
    let mut buf = [0u8; 64];
    let mut filled = 0;
    // "HTTP/1.1 200" is 12 bytes; read until the status code is in hand.
    while filled < 12 {
        match stream.read(&mut buf[filled..]).await {
            Ok(0) | Err(_) => return Probe::Failed,
            Ok(n) => filled += n,
        }
    }
    match parse_status(&buf[..filled]) {
        Some(code) if spec.check.matcher.accepts(code) => Probe::Success,
        Some(code) => Probe::CodeMismatch(code),
        None => Probe::Failed,
    }
}

/// The status code from the start of an HTTP/1.x response.
fn parse_status(head: &[u8]) -> Option<u16> {
    let rest = head.strip_prefix(b"HTTP/1.")?;
    let code = rest.get(2..5)?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_becomes_healthy_after_healthy_threshold_successes() {
        let mut t = Tracker::default();
        assert_eq!(t.observe(&Probe::Success, 3, 2), None);
        assert_eq!(t.observe(&Probe::Success, 3, 2), None);
        assert_eq!(t.observe(&Probe::Success, 3, 2), Some(&Health::Healthy));
        assert_eq!(t.observe(&Probe::Success, 3, 2), None, "no repeat report");
    }

    #[test]
    fn healthy_becomes_unhealthy_after_unhealthy_threshold_failures_with_reason() {
        let mut t = Tracker::resume(Health::Healthy);
        assert_eq!(t.observe(&Probe::Timeout, 2, 3), None);
        assert_eq!(t.observe(&Probe::Timeout, 2, 3), None);
        match t.observe(&Probe::Timeout, 2, 3) {
            Some(Health::Unhealthy { reason, .. }) => assert_eq!(reason, "Target.Timeout"),
            other => panic!("expected unhealthy, got {other:?}"),
        }
    }

    #[test]
    fn a_success_resets_the_failure_streak() {
        let mut t = Tracker::resume(Health::Healthy);
        assert_eq!(t.observe(&Probe::Failed, 2, 2), None);
        assert_eq!(t.observe(&Probe::Success, 2, 2), None);
        assert_eq!(t.observe(&Probe::Failed, 2, 2), None);
        assert!(matches!(
            t.observe(&Probe::Failed, 2, 2),
            Some(Health::Unhealthy { reason, .. }) if reason == "Target.FailedHealthChecks"
        ));
    }

    #[test]
    fn unhealthy_reports_a_changed_reason_and_recovers_after_threshold() {
        let mut t = Tracker::default();
        t.observe(&Probe::CodeMismatch(500), 2, 2);
        match t.observe(&Probe::CodeMismatch(500), 2, 2) {
            Some(Health::Unhealthy {
                reason,
                description,
            }) => {
                assert_eq!(reason, "Target.ResponseCodeMismatch");
                assert_eq!(description, "Health checks failed with these codes: [500]");
            }
            other => panic!("expected unhealthy, got {other:?}"),
        }
        assert_eq!(
            t.observe(&Probe::CodeMismatch(500), 2, 2),
            None,
            "same verdict"
        );
        assert!(
            t.observe(&Probe::Timeout, 2, 2).is_some(),
            "new reason is reported"
        );
        assert_eq!(t.observe(&Probe::Success, 2, 2), None);
        assert_eq!(t.observe(&Probe::Success, 2, 2), Some(&Health::Healthy));
    }

    #[test]
    fn status_line_parses() {
        assert_eq!(parse_status(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(parse_status(b"HTTP/1.0 404 x"), Some(404));
        assert_eq!(parse_status(b"SSH-2.0-OpenSSH"), None);
        assert_eq!(parse_status(b"HTTP/1.1 2x0"), None);
    }

    proptest::proptest! {
        #[test]
        fn verdict_only_flips_after_a_full_streak(
            outcomes in proptest::collection::vec(proptest::bool::ANY, 0..60),
            healthy in 2u32..=10,
            unhealthy_t in 2u32..=10,
        ) {
            let mut t = Tracker::default();
            let mut streak_ok = 0u32;
            let mut streak_bad = 0u32;
            for ok in outcomes {
                let probe = if ok { Probe::Success } else { Probe::Failed };
                if ok { streak_ok += 1; streak_bad = 0; } else { streak_bad += 1; streak_ok = 0; }
                let before = t.health().clone();
                let changed = t.observe(&probe, healthy, unhealthy_t).cloned();
                if let Some(now) = changed {
                    proptest::prop_assert_ne!(&now, &before);
                    match now {
                        Health::Healthy => proptest::prop_assert!(streak_ok >= healthy),
                        Health::Unhealthy { .. } => proptest::prop_assert!(streak_bad >= unhealthy_t),
                        Health::Initial => proptest::prop_assert!(false, "never back to initial"),
                    }
                }
            }
        }
    }
}
