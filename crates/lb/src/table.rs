//! The routing table: turns a config snapshot into what the hot path reads (per listener,
//! compiled rules whose actions point at runtime target groups) and keeps each target's
//! live state and health checker across snapshots, so a new snapshot neither resets
//! health nor loses count of requests in flight.

use std::collections::{HashMap, HashSet};
use std::net::Ipv6Addr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use model::lb::{Action, Config, HealthReport, Listener, TargetKey};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::alb_metrics::Meters;
use crate::balance::{Backend, Forward, Group, Routable, TargetState};
use crate::error::LbError;
use crate::health::{run_checker, CheckSpec};
use crate::matching::CompiledRules;
use crate::sticky::compute_cookie_id;

/// What an HTTP listener does with a request once a rule (or the default) is chosen.
#[derive(Debug)]
pub(crate) enum RouteAction {
    Forward(Forward),
    Fixed {
        status: StatusCode,
        content_type: Option<HeaderValue>,
        body: Bytes,
    },
    Redirect {
        protocol: String,
        host: String,
        port: String,
        path: String,
        query: String,
        status: StatusCode,
    },
    /// No usable action (the API should not let this happen): 503.
    Unavailable,
}

/// One HTTP listener's routing, swapped whole on each snapshot.
#[derive(Debug)]
pub(crate) struct HttpRoutes {
    pub(crate) rules: CompiledRules<RouteAction>,
    pub(crate) port: u16,
    /// `X-Forwarded-Port`, prepared once.
    pub(crate) port_header: HeaderValue,
    /// The load balancer's idle timeout, for connections accepted from now on.
    pub(crate) idle: Duration,
}

/// One TCP listener's routing: its default forward action.
#[derive(Debug)]
pub(crate) struct TcpRoutes {
    pub(crate) forward: Option<Forward>,
}

/// Turns an action list into the runtime action: the first action decides (the contract
/// has only terminal actions).
fn compute_action(actions: &[Action], groups: &HashMap<String, Arc<Group>>) -> RouteAction {
    match actions.first() {
        Some(Action::Forward(targets)) => RouteAction::Forward(compute_forward(targets, groups)),
        Some(Action::FixedResponse {
            status_code,
            content_type,
            message_body,
        }) => RouteAction::Fixed {
            status: StatusCode::from_u16(*status_code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            content_type: content_type
                .as_deref()
                .and_then(|c| HeaderValue::from_str(c).ok()),
            body: Bytes::from(message_body.clone().unwrap_or_default()),
        },
        Some(Action::Redirect {
            protocol,
            host,
            port,
            path,
            query,
            status_code,
        }) => RouteAction::Redirect {
            protocol: protocol.clone(),
            host: host.clone(),
            port: port.clone(),
            path: path.clone(),
            query: query.clone(),
            status: if *status_code == 301 {
                StatusCode::MOVED_PERMANENTLY
            } else {
                StatusCode::FOUND
            },
        },
        None => RouteAction::Unavailable,
    }
}

fn compute_forward(
    targets: &[model::lb::WeightedTargetGroup],
    groups: &HashMap<String, Arc<Group>>,
) -> Forward {
    Forward::new(targets.iter().filter_map(|t| {
        let group = groups.get(&t.target_group_arn);
        if group.is_none() {
            tracing::warn!(
                target_group = %t.target_group_arn,
                "Forward action names an unknown target group; it gets no traffic."
            );
        }
        group.map(|g| (g.clone(), t.weight))
    }))
}

/// The routes for an HTTP listener bound on `port` (the real one, should the config say 0).
pub(crate) fn compute_http_routes(
    listener: &Listener,
    port: u16,
    idle: Duration,
    groups: &HashMap<String, Arc<Group>>,
) -> HttpRoutes {
    HttpRoutes {
        rules: CompiledRules::compile(listener, |actions| compute_action(actions, groups)),
        port,
        port_header: HeaderValue::from(port),
        idle,
    }
}

/// The routes for a TCP listener.
pub(crate) fn compute_tcp_routes(
    listener: &Listener,
    groups: &HashMap<String, Arc<Group>>,
) -> TcpRoutes {
    let forward = listener.default_actions.iter().find_map(|a| match a {
        Action::Forward(targets) => Some(compute_forward(targets, groups)),
        _ => None,
    });
    TcpRoutes { forward }
}

/// `host:port` as a URI authority (IPv6 literals bracketed).
pub(crate) fn compute_authority(host: &str, port: u16) -> Result<http::uri::Authority, LbError> {
    let text = if host.parse::<Ipv6Addr>().is_ok() {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    http::uri::Authority::try_from(text).map_err(|source| LbError::TargetAddress {
        host: host.to_owned(),
        port,
        source,
    })
}

#[derive(Debug)]
struct TargetEntry {
    state: Arc<TargetState>,
    checker: Option<(CheckSpec, CancellationToken)>,
}

/// Every registered target's live state and health checker, across snapshots.
#[derive(Debug)]
pub(crate) struct Targets {
    entries: HashMap<(String, TargetKey), TargetEntry>,
    /// HTTP worker count, for each target's per-worker connection pools.
    workers: usize,
    /// Each target group's AWS/ApplicationELB counters.
    meters: Arc<Meters>,
}

impl Targets {
    pub(crate) fn new(workers: usize, meters: Arc<Meters>) -> Self {
        Targets {
            entries: HashMap::new(),
            workers,
            meters,
        }
    }

    /// Brings targets and checkers in line with `config` (starting, restarting and
    /// stopping checkers) and returns the snapshot's runtime groups by ARN.
    pub(crate) fn apply_config(
        &mut self,
        config: &Config,
        reports: &mpsc::UnboundedSender<HealthReport>,
        stop: &CancellationToken,
    ) -> HashMap<String, Arc<Group>> {
        let mut seen = HashSet::new();
        let mut groups = HashMap::new();
        for tg in &config.target_groups {
            let requests = Arc::new(telemetry::LbRequests::for_target_group(&tg.arn));
            let meter = self.meters.meter(&tg.arn);
            let mut backends = Vec::with_capacity(tg.targets.len());
            for target in &tg.targets {
                let authority = match compute_authority(&target.host, target.key.port) {
                    Ok(a) => a,
                    Err(error) => {
                        tracing::warn!(target_group = %tg.arn, %error, "Skipping target.");
                        continue;
                    }
                };
                let id = (tg.arn.clone(), target.key.clone());
                seen.insert(id.clone());
                let workers = self.workers;
                let entry = self.entries.entry(id).or_insert_with(|| TargetEntry {
                    state: Arc::new(TargetState::new(Routable::Initial, workers)),
                    checker: None,
                });
                let spec = tg.health_check.enabled.then(|| CheckSpec {
                    target_group_arn: tg.arn.clone(),
                    target: target.key.clone(),
                    host: target.host.clone(),
                    check: tg.health_check.clone(),
                });
                apply_checker(entry, spec, reports, stop);
                backends.push(Arc::new(Backend {
                    key: target.key.clone(),
                    authority,
                    draining: target.draining,
                    mark: model::lb::socket_mark(&tg.arn),
                    cookie_id: compute_cookie_id(&tg.arn, &target.key),
                    state: entry.state.clone(),
                    requests: requests.clone(),
                    meter: meter.clone(),
                }));
            }
            let group =
                Group::new(tg.arn.clone(), tg.algorithm, backends).with_stickiness(tg.stickiness);
            groups.insert(tg.arn.clone(), Arc::new(group));
        }
        self.meters.apply_config(config, &groups);
        self.entries.retain(|id, entry| {
            let keep = seen.contains(id);
            if !keep {
                if let Some((_, token)) = entry.checker.take() {
                    token.cancel();
                }
            }
            keep
        });
        groups
    }

    /// Stops every checker.
    pub(crate) fn stop_all(&mut self) {
        for entry in self.entries.values_mut() {
            if let Some((_, token)) = entry.checker.take() {
                token.cancel();
            }
        }
    }
}

/// Keeps, restarts, starts or stops one target's checker to match `spec`.
fn apply_checker(
    entry: &mut TargetEntry,
    spec: Option<CheckSpec>,
    reports: &mpsc::UnboundedSender<HealthReport>,
    stop: &CancellationToken,
) {
    if entry.checker.as_ref().map(|(s, _)| s) == spec.as_ref() {
        return;
    }
    if let Some((_, token)) = entry.checker.take() {
        token.cancel();
    }
    match spec {
        None => {
            // Checks disabled: every target counts as healthy.
            entry.state.set_health(Routable::Healthy);
        }
        Some(spec) => {
            let token = stop.child_token();
            tokio::spawn(run_checker(
                spec.clone(),
                entry.state.clone(),
                reports.clone(),
                token.clone(),
            ));
            entry.checker = Some((spec, token));
        }
    }
}
