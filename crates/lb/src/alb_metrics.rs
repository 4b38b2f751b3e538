//! The load balancer's CloudWatch metrics (namespace `AWS/ApplicationELB`): what the
//! target groups of application load balancers served each period, handed to a
//! [`MetricsSink`] (the binary stores them in the region's CloudWatch).
//!
//! Per target group the hot path counts, in a shard per HTTP worker (so the lock taken
//! per request is never contended but once a period by the collector):
//! - every request forwarded to it, whether its target answered or the load balancer
//!   answered 502/504 for it (AWS counts each request for which a target was chosen);
//! - the 5XX responses its targets sent (not the load balancer's own);
//! - each target response time (request sent → response head), to the microsecond below
//!   a millisecond and to three significant digits above (see [`coarse_us`]), with how
//!   often each value occurred, so the store can answer Average and percentiles.
//!
//! Health checks go through [`crate::health`], never through here, so they are not
//! counted, as on AWS. Network load balancers (TCP listeners) publish nothing here: their
//! metrics are another namespace.
//!
//! Each period [`Meters::collect`] drains the windows and [`compute_points`] (pure) turns
//! them into AWS's metrics and dimensions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use model::lb::{Action, Config, LoadBalancerKind};

use crate::balance::{Group, Routable};

/// The namespace of every point.
pub const NAMESPACE: &str = "AWS/ApplicationELB";

/// A point's value.
#[derive(Clone, Debug, PartialEq)]
pub enum PointValue {
    /// One value, unit `Count`.
    Count(f64),
    /// Values in seconds, each distinct value with how many times it occurred.
    Seconds(Vec<(f64, u64)>),
}

/// One AWS/ApplicationELB datapoint.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricPoint {
    /// `RequestCount`, `RequestCountPerTarget`, `TargetResponseTime`,
    /// `HTTPCode_Target_5XX_Count`, `HealthyHostCount` or `UnHealthyHostCount`.
    pub metric: &'static str,
    /// The `LoadBalancer` dimension (`app/<name>/<id>`), if the point has it.
    pub load_balancer: Option<String>,
    /// The `TargetGroup` dimension (`targetgroup/<name>/<id>`), if the point has it.
    pub target_group: Option<String>,
    /// The value(s).
    pub value: PointValue,
    /// Epoch seconds: the start of the period the point covers.
    pub timestamp: i64,
}

/// Where AWS/ApplicationELB datapoints go (the binary's CloudWatch store).
pub trait MetricsSink: Send + Sync {
    /// Stores the points (in the background: the data plane never waits on it).
    fn publish(&self, points: Vec<MetricPoint>);
}

/// What one target group served during a period.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Window {
    /// Requests forwarded (a target was chosen).
    pub(crate) requests: u64,
    /// 5XX responses sent by targets.
    pub(crate) target_5xx: u64,
    /// Target response times in microseconds (see [`coarse_us`]) → how many.
    pub(crate) response_us: HashMap<u64, u64>,
}

impl Window {
    /// Counts one request answered with `status`; `response_time` is `Some` when a
    /// target answered, `None` when the load balancer did (it could not reach one).
    pub(crate) fn record(&mut self, status: u16, response_time: Option<Duration>) {
        self.requests += 1;
        if let Some(elapsed) = response_time {
            if (500..600).contains(&status) {
                self.target_5xx += 1;
            }
            let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
            *self.response_us.entry(coarse_us(us)).or_insert(0) += 1;
        }
    }

    fn merge(&mut self, other: &Window) {
        self.requests += other.requests;
        self.target_5xx += other.target_5xx;
        for (us, n) in &other.response_us {
            *self.response_us.entry(*us).or_insert(0) += n;
        }
    }

    fn response_seconds(&self) -> Vec<(f64, u64)> {
        let mut out: Vec<(f64, u64)> = self
            .response_us
            .iter()
            .map(|(us, n)| (*us as f64 / 1e6, *n))
            .collect();
        out.sort_by(|a, b| a.0.total_cmp(&b.0));
        out
    }
}

/// A response time as kept: exact below a millisecond, else rounded to three significant
/// digits (within 0.5 %, finer than the store's 1 % percentile bins). This bounds a
/// period's distinct values to a few thousand whatever the traffic, where exact
/// microseconds could grow by one entry per request.
pub(crate) fn coarse_us(us: u64) -> u64 {
    if us < 1_000 {
        return us;
    }
    // The power of ten that leaves three digits, and rounding to the nearest multiple.
    let mut step = 1u64;
    while us / step >= 1_000 {
        step *= 10;
    }
    let down = us / step * step;
    if us - down >= step / 2 {
        down.saturating_add(step)
    } else {
        down
    }
}

/// One target group's counters, shared by its backends across config snapshots.
#[derive(Debug)]
pub(crate) struct GroupMeter {
    shards: Box<[Mutex<Window>]>,
}

impl GroupMeter {
    /// A meter with one shard per HTTP worker.
    pub(crate) fn new(workers: usize) -> Self {
        GroupMeter {
            shards: (0..workers.max(1))
                .map(|_| Mutex::new(Window::default()))
                .collect(),
        }
    }

    /// Counts one request on `worker`'s shard (see [`Window::record`]).
    pub(crate) fn record(&self, worker: usize, status: u16, response_time: Option<Duration>) {
        let shard = &self.shards[worker % self.shards.len()];
        // A panic while holding the lock cannot leave a window half-counted in a way that
        // matters: every field is a plain count.
        shard
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(status, response_time);
    }

    /// Takes what every shard counted since the last drain.
    fn drain(&self) -> Window {
        let mut total = Window::default();
        for shard in self.shards.iter() {
            let taken = std::mem::take(&mut *shard.lock().unwrap_or_else(PoisonError::into_inner));
            total.merge(&taken);
        }
        total
    }
}

/// The `LoadBalancer` dimension of a load balancer ARN (`app/<name>/<id>`).
pub(crate) fn load_balancer_dimension(arn: &str) -> &str {
    arn.find("loadbalancer/")
        .map_or(arn, |i| &arn[i + "loadbalancer/".len()..])
}

/// The `TargetGroup` dimension of a target group ARN (`targetgroup/<name>/<id>`).
pub(crate) fn target_group_dimension(arn: &str) -> &str {
    arn.find("targetgroup/").map_or(arn, |i| &arn[i..])
}

/// A target group as the collector sees it.
#[derive(Debug)]
struct Metered {
    meter: Arc<GroupMeter>,
    /// The application load balancer forwarding to it (a target group serves one).
    load_balancer: Option<String>,
    /// Its targets (not draining) in the snapshot served.
    targets: Vec<Arc<crate::balance::TargetState>>,
    /// Gone from the configuration: dropped once its last window is collected.
    retired: bool,
}

/// Every target group's meter, across snapshots; shared by the supervisor (which keeps
/// it in line with the configuration) and the publishing loop.
#[derive(Debug)]
pub(crate) struct Meters {
    workers: usize,
    groups: Mutex<HashMap<String, Metered>>,
}

/// One target group's period, ready for [`compute_points`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct GroupPeriod {
    /// `app/<name>/<id>`.
    pub(crate) load_balancer: String,
    /// `targetgroup/<name>/<id>`.
    pub(crate) target_group: String,
    pub(crate) window: Window,
    /// Targets (not draining) passing health checks now.
    pub(crate) healthy: u64,
    /// Targets (not draining) failing them now.
    pub(crate) unhealthy: u64,
    /// Targets not draining.
    pub(crate) registered: u64,
}

impl Meters {
    pub(crate) fn new(workers: usize) -> Self {
        Meters {
            workers,
            groups: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Metered>> {
        self.groups.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The meter of target group `arn` (made on first sight).
    pub(crate) fn meter(&self, arn: &str) -> Arc<GroupMeter> {
        let mut groups = self.lock();
        let entry = groups.entry(arn.to_owned()).or_insert_with(|| Metered {
            meter: Arc::new(GroupMeter::new(self.workers)),
            load_balancer: None,
            targets: Vec::new(),
            retired: false,
        });
        entry.retired = false;
        entry.meter.clone()
    }

    /// Follows a snapshot: which application load balancer forwards to each group, its
    /// targets, and which groups are gone.
    pub(crate) fn apply_config(&self, config: &Config, groups: &HashMap<String, Arc<Group>>) {
        let mut owner: HashMap<&str, &str> = HashMap::new();
        for lb in config
            .load_balancers
            .iter()
            .filter(|lb| lb.kind == LoadBalancerKind::Application)
        {
            for listener in &lb.listeners {
                let actions = listener
                    .rules
                    .iter()
                    .flat_map(|r| r.actions.iter())
                    .chain(listener.default_actions.iter());
                for action in actions {
                    if let Action::Forward(targets) = action {
                        for t in targets {
                            owner.insert(t.target_group_arn.as_str(), lb.arn.as_str());
                        }
                    }
                }
            }
        }
        let mut metered = self.lock();
        for (arn, entry) in metered.iter_mut() {
            match groups.get(arn) {
                Some(group) => {
                    entry.retired = false;
                    if let Some(lb) = owner.get(arn.as_str()) {
                        entry.load_balancer = Some(load_balancer_dimension(lb).to_owned());
                    }
                    entry.targets = group.live_targets();
                }
                None => entry.retired = true,
            }
        }
    }

    /// Drains every group's window (dropping groups that left the configuration once
    /// drained); groups no application load balancer forwards to are left out.
    pub(crate) fn collect(&self) -> Vec<GroupPeriod> {
        let mut metered = self.lock();
        let mut out = Vec::new();
        for (arn, entry) in metered.iter() {
            let window = entry.meter.drain();
            let Some(load_balancer) = &entry.load_balancer else {
                continue;
            };
            let count =
                |want: Routable| entry.targets.iter().filter(|t| t.health() == want).count() as u64;
            out.push(GroupPeriod {
                load_balancer: load_balancer.clone(),
                target_group: target_group_dimension(arn).to_owned(),
                window,
                healthy: count(Routable::Healthy),
                unhealthy: count(Routable::Unhealthy),
                registered: entry.targets.len() as u64,
            });
        }
        metered.retain(|_, entry| !entry.retired);
        out.sort_by(|a, b| a.target_group.cmp(&b.target_group));
        out
    }
}

/// AWS/ApplicationELB points of one period starting at `timestamp`:
/// - per TargetGroup+LoadBalancer: `RequestCount`, `TargetResponseTime`,
///   `HTTPCode_Target_5XX_Count` (each only when non-zero, as AWS reports only with
///   traffic), `HealthyHostCount` and `UnHealthyHostCount` (always);
/// - per TargetGroup and per TargetGroup+LoadBalancer: `RequestCountPerTarget` = requests
///   ÷ healthy targets (all targets when none is healthy; none without targets);
/// - per LoadBalancer: `RequestCount`, `TargetResponseTime`, `HTTPCode_Target_5XX_Count`
///   over its target groups.
pub(crate) fn compute_points(groups: &[GroupPeriod], timestamp: i64) -> Vec<MetricPoint> {
    let mut out = Vec::new();
    let mut per_lb: Vec<(&str, Window)> = Vec::new();
    for g in groups {
        let point = |metric, load_balancer: bool, value| MetricPoint {
            metric,
            load_balancer: load_balancer.then(|| g.load_balancer.clone()),
            target_group: Some(g.target_group.clone()),
            value,
            timestamp,
        };
        push_traffic(&mut out, &g.window, &point);
        let per_target = if g.healthy > 0 {
            g.healthy
        } else {
            g.registered
        };
        if g.window.requests > 0 && per_target > 0 {
            let value = g.window.requests as f64 / per_target as f64;
            out.push(point(
                "RequestCountPerTarget",
                false,
                PointValue::Count(value),
            ));
            out.push(point(
                "RequestCountPerTarget",
                true,
                PointValue::Count(value),
            ));
        }
        out.push(point(
            "HealthyHostCount",
            true,
            PointValue::Count(g.healthy as f64),
        ));
        out.push(point(
            "UnHealthyHostCount",
            true,
            PointValue::Count(g.unhealthy as f64),
        ));
        match per_lb.iter_mut().find(|(lb, _)| *lb == g.load_balancer) {
            Some((_, w)) => w.merge(&g.window),
            None => per_lb.push((&g.load_balancer, g.window.clone())),
        }
    }
    for (lb, window) in &per_lb {
        let point = |metric, _: bool, value| MetricPoint {
            metric,
            load_balancer: Some((*lb).to_owned()),
            target_group: None,
            value,
            timestamp,
        };
        push_traffic(&mut out, window, &point);
    }
    out
}

/// The traffic metrics of a window, each only when non-zero.
fn push_traffic(
    out: &mut Vec<MetricPoint>,
    window: &Window,
    point: &dyn Fn(&'static str, bool, PointValue) -> MetricPoint,
) {
    if window.requests > 0 {
        out.push(point(
            "RequestCount",
            true,
            PointValue::Count(window.requests as f64),
        ));
    }
    if !window.response_us.is_empty() {
        out.push(point(
            "TargetResponseTime",
            true,
            PointValue::Seconds(window.response_seconds()),
        ));
    }
    if window.target_5xx > 0 {
        out.push(point(
            "HTTPCode_Target_5XX_Count",
            true,
            PointValue::Count(window.target_5xx as f64),
        ));
    }
}

/// The start of the period that ended at or before `now` (epoch seconds), for periods of
/// `every` aligned to the epoch (so 60 s periods are calendar minutes, as AWS's).
pub(crate) fn period_start(now: Duration, every: Duration) -> i64 {
    let every_ms = every.as_millis().max(1);
    let end = now.as_millis() / every_ms * every_ms;
    let start = end.saturating_sub(every_ms);
    i64::try_from(start / 1000).unwrap_or(i64::MAX)
}

/// How long until the next period boundary after `now`.
pub(crate) fn until_boundary(now: Duration, every: Duration) -> Duration {
    let every_ms = every.as_millis().max(1);
    let into = now.as_millis() % every_ms;
    Duration::from_millis(u64::try_from(every_ms - into).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests;
