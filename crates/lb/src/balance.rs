//! Choosing a target: the runtime form of target groups (targets with their live health
//! and outstanding-request counts) and of forward actions (weighted over groups), with
//! round robin and least outstanding requests. Lock-free: a pick reads atomics only.
//!
//! Eligibility follows ALB: a draining target never gets new requests; among the others
//! only healthy ones are used, unless none is healthy, in which case the group "fails
//! open" and uses all of them.

use std::sync::atomic::{AtomicU32, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use model::lb::{Algorithm, TargetKey};

use crate::alb_metrics::GroupMeter;
use crate::pool::{Pools, Sender, Upstream};

/// Routing health of a target, as the health checker last concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Routable {
    /// Not yet concluded (or checks are not running yet).
    Initial = 0,
    /// Passing (or checks disabled).
    Healthy = 1,
    /// Failing.
    Unhealthy = 2,
}

/// A target's state that outlives config snapshots: the health checker writes `health`,
/// requests in flight count themselves in `outstanding`.
#[derive(Debug)]
pub(crate) struct TargetState {
    health: AtomicU8,
    outstanding: AtomicUsize,
    /// Idle upstream connections driven by hyper, per HTTP worker.
    pub(crate) pools: Pools<Sender>,
    /// Idle upstream connections of the fast path, per HTTP worker.
    pub(crate) raw: Pools<Upstream>,
}

impl TargetState {
    pub(crate) fn new(health: Routable, workers: usize) -> Self {
        TargetState {
            health: AtomicU8::new(health as u8),
            outstanding: AtomicUsize::new(0),
            pools: Pools::new(workers),
            raw: Pools::new(workers),
        }
    }

    pub(crate) fn health(&self) -> Routable {
        match self.health.load(Ordering::Relaxed) {
            1 => Routable::Healthy,
            2 => Routable::Unhealthy,
            _ => Routable::Initial,
        }
    }

    pub(crate) fn set_health(&self, health: Routable) {
        self.health.store(health as u8, Ordering::Relaxed);
    }

    pub(crate) fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Relaxed)
    }
}

/// One target as a snapshot sees it.
#[derive(Debug)]
pub(crate) struct Backend {
    /// Id and port, for logs.
    pub(crate) key: TargetKey,
    /// `host:port`, for connecting (TCP) and as the upstream URI's authority (HTTP).
    pub(crate) authority: http::uri::Authority,
    /// Deregistered: no new requests.
    pub(crate) draining: bool,
    /// The socket mark of its target group's connections ([`model::lb::socket_mark`]).
    pub(crate) mark: u32,
    /// How stickiness cookies name this target (see [`crate::sticky`]).
    pub(crate) cookie_id: u64,
    /// Health and load, shared with the checker and with later snapshots.
    pub(crate) state: Arc<TargetState>,
    /// Its target group's request counters, resolved when the configuration loaded.
    pub(crate) requests: Arc<telemetry::LbRequests>,
    /// Its target group's AWS/ApplicationELB counters (kept across snapshots).
    pub(crate) meter: Arc<GroupMeter>,
}

impl Backend {
    /// Counts one request forwarded to this target, answered with `status`: by the
    /// target after `response_time`, or by the load balancer (`None`) when the target
    /// could not be reached in time.
    pub(crate) fn record(&self, worker: usize, status: u16, response_time: Option<Duration>) {
        self.requests.record(status);
        self.meter.record(worker, status, response_time);
    }

    /// May take new requests while at least one target of its group is healthy.
    fn healthy(&self) -> bool {
        !self.draining && self.state.health() == Routable::Healthy
    }

    /// May take new requests when its group fails open.
    fn open(&self) -> bool {
        !self.draining
    }
}

/// A request (or TCP flow) in flight to a backend; counts itself out when dropped.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Backend>);

impl InFlight {
    pub(crate) fn start(backend: Arc<Backend>) -> Self {
        backend.state.outstanding.fetch_add(1, Ordering::Relaxed);
        InFlight(backend)
    }

    pub(crate) fn backend(&self) -> &Backend {
        &self.0
    }

    /// Where the target's idle connections live.
    pub(crate) fn pools(&self) -> &Pools<Sender> {
        &self.0.state.pools
    }

    /// Where the target's idle fast-path connections live.
    pub(crate) fn raw_pools(&self) -> &Pools<Upstream> {
        &self.0.state.raw
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.state.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A target group within one snapshot.
#[derive(Debug)]
pub(crate) struct Group {
    pub(crate) arn: String,
    algorithm: Algorithm,
    /// `lb_cookie` stickiness: how long a cookie binds a client to a target.
    stickiness: Option<Duration>,
    backends: Box<[Arc<Backend>]>,
    next: AtomicUsize,
}

impl Group {
    pub(crate) fn new(arn: String, algorithm: Algorithm, backends: Vec<Arc<Backend>>) -> Self {
        Group {
            arn,
            algorithm,
            stickiness: None,
            backends: backends.into(),
            next: AtomicUsize::new(0),
        }
    }

    /// The group with `lb_cookie` stickiness of this duration (`None`: off).
    pub(crate) fn with_stickiness(self, stickiness: Option<Duration>) -> Self {
        Group { stickiness, ..self }
    }

    pub(crate) fn stickiness(&self) -> Option<Duration> {
        self.stickiness
    }

    /// The live state of each target that is not draining (what AWS counts in
    /// HealthyHostCount and UnHealthyHostCount).
    pub(crate) fn live_targets(&self) -> Vec<Arc<TargetState>> {
        self.backends
            .iter()
            .filter(|b| !b.draining)
            .map(|b| b.state.clone())
            .collect()
    }

    /// The target for the next request; `None` when the group has no target that may take
    /// new requests (empty, or all draining).
    pub(crate) fn pick(&self) -> Option<&Arc<Backend>> {
        let n = self.backends.len();
        if n == 0 {
            return None;
        }
        // Rotating the scan start spreads round robin and breaks least-outstanding ties.
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        match self.algorithm {
            Algorithm::RoundRobin => self
                .scan_first(start, Backend::healthy)
                .or_else(|| self.scan_first(start, Backend::open)),
            Algorithm::LeastOutstandingRequests => self
                .scan_least(start, Backend::healthy)
                .or_else(|| self.scan_least(start, Backend::open)),
        }
    }

    /// The target a stickiness cookie names, if it is in this group and may take the
    /// request under the same rules as [`Group::pick`]: not draining, and healthy unless
    /// no target is (the group then fails open).
    pub(crate) fn sticky_target(&self, cookie_id: u64) -> Option<&Arc<Backend>> {
        let named = self.backends.iter().find(|b| b.cookie_id == cookie_id)?;
        let eligible =
            named.healthy() || (named.open() && !self.backends.iter().any(|b| b.healthy()));
        eligible.then_some(named)
    }

    /// The targets starting at `start`, wrapping around.
    fn rotated(&self, start: usize) -> impl Iterator<Item = &Arc<Backend>> {
        let n = self.backends.len();
        (0..n).map(move |i| &self.backends[(start + i) % n])
    }

    /// The `start`-th eligible target (modulo their number): an even rotation over the
    /// eligible ones, however many others sit between them.
    fn scan_first(&self, start: usize, ok: impl Fn(&Backend) -> bool) -> Option<&Arc<Backend>> {
        let eligible = self.backends.iter().filter(|b| ok(b)).count();
        if eligible == 0 {
            return None;
        }
        self.backends.iter().filter(|b| ok(b)).nth(start % eligible)
    }

    fn scan_least(&self, start: usize, ok: impl Fn(&Backend) -> bool) -> Option<&Arc<Backend>> {
        self.rotated(start)
            .filter(|b| ok(b))
            .min_by_key(|b| b.state.outstanding())
    }
}

/// A forward action: one or more groups by weight.
#[derive(Debug)]
pub(crate) struct Forward {
    /// Each group with the running total of weights up to and including it.
    groups: Box<[(Arc<Group>, u32)]>,
    total: u32,
    next: AtomicU32,
}

impl Forward {
    /// Groups with weight 0 are left out: they receive nothing.
    pub(crate) fn new(weighted: impl IntoIterator<Item = (Arc<Group>, u32)>) -> Self {
        let mut total = 0u32;
        let groups: Vec<(Arc<Group>, u32)> = weighted
            .into_iter()
            .filter(|(_, w)| *w > 0)
            .map(|(g, w)| {
                total = total.saturating_add(w);
                (g, total)
            })
            .collect();
        Forward {
            groups: groups.into(),
            total,
            next: AtomicU32::new(0),
        }
    }

    /// The group for the next request: a deterministic weighted rotation (a counter over
    /// the weight total), which spreads exactly by weight without a random source.
    pub(crate) fn pick_group(&self) -> Option<&Group> {
        match &*self.groups {
            [] => None,
            [(only, _)] => Some(only),
            many => {
                let slot = self.next.fetch_add(1, Ordering::Relaxed) % self.total.max(1);
                many.iter()
                    .find(|(_, upto)| slot < *upto)
                    .map(|(g, _)| &**g)
            }
        }
    }

    /// The target for the next request, through the weighted group.
    pub(crate) fn pick(&self) -> Option<&Arc<Backend>> {
        self.pick_group()?.pick()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(id: &str, health: Routable, draining: bool) -> Arc<Backend> {
        Arc::new(Backend {
            key: TargetKey {
                id: id.into(),
                port: 80,
            },
            authority: http::uri::Authority::from_static("127.0.0.1:80"),
            draining,
            mark: 0,
            cookie_id: crate::sticky::compute_cookie_id(
                "tg",
                &TargetKey {
                    id: id.into(),
                    port: 80,
                },
            ),
            state: Arc::new(TargetState::new(health, 1)),
            requests: Arc::new(telemetry::LbRequests::for_target_group("tg")),
            meter: Arc::new(GroupMeter::new(1)),
        })
    }

    fn ids(group: &Group, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| group.pick().map_or("-".into(), |b| b.key.id.clone()))
            .collect()
    }

    #[test]
    fn round_robin_cycles_over_healthy_targets() {
        let g = Group::new(
            "tg".into(),
            Algorithm::RoundRobin,
            vec![
                backend("a", Routable::Healthy, false),
                backend("b", Routable::Healthy, false),
                backend("c", Routable::Healthy, false),
            ],
        );
        assert_eq!(ids(&g, 6), ["a", "b", "c", "a", "b", "c"]);
    }

    #[test]
    fn unhealthy_and_draining_targets_get_nothing_while_one_is_healthy() {
        let g = Group::new(
            "tg".into(),
            Algorithm::RoundRobin,
            vec![
                backend("a", Routable::Unhealthy, false),
                backend("b", Routable::Healthy, true),
                backend("c", Routable::Healthy, false),
            ],
        );
        assert!(ids(&g, 9).iter().all(|id| id == "c"));
    }

    #[test]
    fn no_healthy_target_fails_open_to_non_draining_ones() {
        let g = Group::new(
            "tg".into(),
            Algorithm::RoundRobin,
            vec![
                backend("a", Routable::Unhealthy, false),
                backend("b", Routable::Unhealthy, true),
                backend("c", Routable::Initial, false),
            ],
        );
        let picked = ids(&g, 6);
        assert!(picked.contains(&"a".to_string()) && picked.contains(&"c".to_string()));
        assert!(!picked.contains(&"b".to_string()));
    }

    #[test]
    fn empty_or_all_draining_group_has_no_target() {
        let g = Group::new("tg".into(), Algorithm::RoundRobin, vec![]);
        assert!(g.pick().is_none());
        let g = Group::new(
            "tg".into(),
            Algorithm::RoundRobin,
            vec![backend("a", Routable::Healthy, true)],
        );
        assert!(g.pick().is_none());
    }

    #[test]
    fn a_cookie_keeps_its_target_only_while_pick_could_choose_it() {
        let named = |g: &Group, id: &str| {
            let key = TargetKey {
                id: id.into(),
                port: 80,
            };
            g.sticky_target(crate::sticky::compute_cookie_id("tg", &key))
                .map(|b| b.key.id.clone())
        };
        let g = Group::new(
            "tg".into(),
            Algorithm::RoundRobin,
            vec![
                backend("a", Routable::Healthy, false),
                backend("b", Routable::Unhealthy, false),
                backend("c", Routable::Healthy, true),
            ],
        );
        assert_eq!(named(&g, "a").as_deref(), Some("a"));
        assert_eq!(named(&g, "b"), None, "unhealthy while another is healthy");
        assert_eq!(named(&g, "c"), None, "draining");
        assert_eq!(named(&g, "zzz"), None, "not in the group");
        let failing_open = Group::new(
            "tg".into(),
            Algorithm::RoundRobin,
            vec![
                backend("a", Routable::Unhealthy, false),
                backend("b", Routable::Initial, false),
                backend("c", Routable::Unhealthy, true),
            ],
        );
        assert_eq!(named(&failing_open, "a").as_deref(), Some("a"));
        assert_eq!(named(&failing_open, "b").as_deref(), Some("b"));
        assert_eq!(named(&failing_open, "c"), None, "draining");
    }

    #[test]
    fn least_outstanding_prefers_the_idlest_target() {
        let (a, b, c) = (
            backend("a", Routable::Healthy, false),
            backend("b", Routable::Healthy, false),
            backend("c", Routable::Healthy, false),
        );
        let g = Group::new(
            "tg".into(),
            Algorithm::LeastOutstandingRequests,
            vec![a.clone(), b.clone(), c.clone()],
        );
        let _busy = [
            InFlight::start(a.clone()),
            InFlight::start(a),
            InFlight::start(c),
        ];
        assert!(ids(&g, 5).iter().all(|id| id == "b"));
        let held: Vec<InFlight> = (0..4).map(|_| InFlight::start(b.clone())).collect();
        assert_eq!(b.state.outstanding(), 4);
        assert_eq!(ids(&g, 1), ["c"]);
        drop(held);
        assert_eq!(b.state.outstanding(), 0);
    }

    #[test]
    fn forward_spreads_by_weight_and_skips_zero() {
        let one = |id: &str| {
            Arc::new(Group::new(
                id.into(),
                Algorithm::RoundRobin,
                vec![backend(id, Routable::Healthy, false)],
            ))
        };
        let f = Forward::new([(one("x"), 3), (one("y"), 1), (one("z"), 0)]);
        let mut counts = std::collections::HashMap::new();
        for _ in 0..400 {
            let id = f.pick().map(|b| b.key.id.clone()).unwrap_or_default();
            *counts.entry(id).or_insert(0) += 1;
        }
        assert_eq!(counts.get("x"), Some(&300));
        assert_eq!(counts.get("y"), Some(&100));
        assert_eq!(counts.get("z"), None);
        assert!(Forward::new([(one("z"), 0)]).pick().is_none());
    }
}
