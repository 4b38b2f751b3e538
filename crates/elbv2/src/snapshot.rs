//! The data plane's configuration: [`compute_config`] turns the stored state into a
//! [`model::lb::Config`] (pure, given `now`), and [`Elbv2::lb_config`] reads the store,
//! first committing the removal of targets whose draining is over so that a snapshot is
//! always a function of the store revision it carries.

use crate::actions::ActionSpec;
use crate::error::Elbv2Error;
use crate::health::{live_targets, sweep_expired, Registration};
use crate::state::{LbType, State, StoredTargetGroup};
use crate::target_groups::{attribute, deregistration_delay_ms};
use crate::Elbv2;
use model::lb;
use std::net::IpAddr;

/// How often [`Elbv2::run_sweeper`] looks for targets whose draining is over.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl Elbv2 {
    /// A snapshot of everything the data plane serves, at the store revision it was read.
    pub async fn lb_config(&self) -> Result<lb::Config, Elbv2Error> {
        self.sweep_once().await?;
        let (world, _, revision) = self.objects.load().await?;
        let resolve = |id: &str| self.resolver.as_ref().and_then(|r| r(id));
        Ok(compute_config(
            &world,
            revision,
            self.now_ms(),
            self.bind_address,
            &resolve,
        ))
    }

    /// Removes targets whose draining is over (a committed write, so subscribers hear of
    /// it); returns how many.
    pub async fn sweep_once(&self) -> Result<usize, Elbv2Error> {
        let now = self.now_ms();
        self.objects
            .write("target group", |w| Ok(sweep_expired(w, now)))
            .await
    }

    /// Ends draining on time until `shutdown` fires: once a second, removes the
    /// targets whose deregistration delay has passed, which notifies subscribers. A
    /// panic costs one sweep (loop `elb_drain_sweeper`).
    pub async fn run_sweeper(&self, shutdown: telemetry::CancellationToken) {
        let wait = || tokio::time::sleep(SWEEP_EVERY);
        let round = || async {
            match self.sweep_once().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(targets = n, "Draining targets removed."),
                Err(error) => tracing::warn!(%error, "Draining sweep failed; retrying."),
            }
        };
        telemetry::supervise(telemetry::LoopName::ElbDrainSweeper, shutdown, wait, round).await;
    }
}

/// The data plane's configuration for `world` at `now`: listeners with their rules in
/// ascending priority, every target group with its active targets and the draining ones
/// whose delay has not passed. `resolve` gives instance targets' addresses.
pub fn compute_config(
    world: &State,
    revision: u64,
    now: i64,
    bind_address: IpAddr,
    resolve: &dyn Fn(&str) -> Option<String>,
) -> lb::Config {
    let actions = |a: &[ActionSpec]| a.iter().map(ActionSpec::to_model).collect::<Vec<_>>();
    let load_balancers = world
        .lbs
        .values()
        .map(|b| lb::LoadBalancer {
            arn: b.arn.clone(),
            name: b.name.clone(),
            kind: match b.kind {
                LbType::Application => lb::LoadBalancerKind::Application,
                LbType::Network => lb::LoadBalancerKind::Network,
            },
            bind_address,
            idle_timeout: b
                .attributes
                .get("idle_timeout.timeout_seconds")
                .and_then(|v| v.parse().ok())
                .map_or(lb::DEFAULT_IDLE_TIMEOUT, std::time::Duration::from_secs),
            listeners: b
                .listeners
                .iter()
                .map(|l| {
                    let mut rules: Vec<lb::Rule> = l
                        .rules
                        .iter()
                        .map(|r| lb::Rule {
                            arn: r.arn.clone(),
                            priority: r.priority,
                            conditions: r.conditions.iter().map(|c| c.to_model()).collect(),
                            actions: actions(&r.actions),
                        })
                        .collect();
                    rules.sort_by_key(|r| r.priority);
                    lb::Listener {
                        arn: l.arn.clone(),
                        port: l.port,
                        protocol: if l.protocol == "TCP" {
                            lb::ListenerProtocol::Tcp
                        } else {
                            lb::ListenerProtocol::Http
                        },
                        rules,
                        default_actions: actions(&l.default_actions),
                    }
                })
                .collect(),
        })
        .collect();
    let target_groups = world
        .tgs
        .values()
        .map(|tg| target_group(tg, now, resolve))
        .collect();
    lb::Config {
        revision,
        load_balancers,
        target_groups,
    }
}

fn protocol(p: &str) -> lb::TargetProtocol {
    if p == "TCP" {
        lb::TargetProtocol::Tcp
    } else {
        lb::TargetProtocol::Http
    }
}

fn target_group(
    tg: &StoredTargetGroup,
    now: i64,
    resolve: &dyn Fn(&str) -> Option<String>,
) -> lb::TargetGroup {
    let hc = &tg.health_check;
    let targets = live_targets(tg, now)
        .map(|(t, reg)| {
            let host = if tg.target_type == "ip" {
                t.id.clone()
            } else {
                t.address
                    .clone()
                    .or_else(|| resolve(&t.id))
                    .unwrap_or_else(|| "127.0.0.1".to_owned())
            };
            lb::Target {
                key: lb::TargetKey {
                    id: t.id.clone(),
                    port: t.port,
                },
                host,
                draining: reg == Registration::Draining,
            }
        })
        .collect();
    lb::TargetGroup {
        arn: tg.arn.clone(),
        name: tg.name.clone(),
        protocol: protocol(&tg.protocol),
        health_check: lb::HealthCheck {
            enabled: hc.enabled,
            protocol: protocol(&hc.protocol),
            port: hc.port.parse().ok(),
            path: hc.path.clone().unwrap_or_else(|| "/".to_owned()),
            interval_seconds: hc.interval_seconds,
            timeout_seconds: hc.timeout_seconds,
            healthy_threshold: hc.healthy,
            unhealthy_threshold: hc.unhealthy,
            matcher: hc
                .matcher
                .as_deref()
                .and_then(lb::Matcher::parse)
                .unwrap_or_else(|| lb::Matcher(vec![200..=399])),
        },
        algorithm: match attribute(tg, "load_balancing.algorithm.type").as_str() {
            "least_outstanding_requests" => lb::Algorithm::LeastOutstandingRequests,
            _ => lb::Algorithm::RoundRobin,
        },
        deregistration_delay_seconds: u32::try_from(deregistration_delay_ms(tg) / 1000)
            .unwrap_or(300),
        stickiness: lb::compute_stickiness(
            &attribute(tg, "stickiness.enabled"),
            &attribute(tg, "stickiness.type"),
            &attribute(tg, "stickiness.lb_cookie.duration_seconds"),
        ),
        targets,
    }
}
