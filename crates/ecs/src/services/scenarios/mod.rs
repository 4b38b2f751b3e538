//! Scenario tests of the service controller.
//!
//! Most run the pure planner ([`plan_round`]) and the pure record update
//! ([`apply_outcome`]) against a simulated world ([`Sim`]): agents that start, fail or
//! stop tasks, and balancers that judge and drain targets, all on a fake clock. The rest
//! (`stored.rs`) run observe → plan → execute through `Ecs` against a real SQLite store.

mod balancers;
mod daemon;
mod deployments;
mod history;
mod instances;
mod stored;

use super::plan::{plan_round, Act, Groups, LaunchInputs, Observed, RoundPlan};
use super::record::{apply_outcome, placement_message, RoundReport};
use super::targets::{TargetGroupView, TargetState, TaskAddress};
use super::StoredService;
use model::ecs::shapes::{
    Deployment, DeploymentCircuitBreaker, DeploymentConfiguration, DeploymentRolloutState,
    LoadBalancer, SchedulingStrategy, Service,
};
use reconcile::{Health, Phase};
use std::collections::BTreeMap;
use testkit::FakeClock;

/// The task group every simulated service uses.
const NAME: &str = "web";
/// The simulated target group.
const TG: &str = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/1";

/// What the simulated agents do with a new task of a deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// It starts and passes its checks.
    Healthy,
    /// It exits before it runs.
    FailsToStart,
    /// It runs and fails its checks.
    Unhealthy,
}

/// Counts seen after one round's actions: what the rules bound.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Tally {
    /// Tasks PENDING, RUNNING or DEACTIVATING: they hold room under the ceiling.
    live: usize,
    /// RUNNING tasks that count as healthy and are not leaving.
    healthy: usize,
}

/// A service and the world it runs in.
struct Sim {
    st: StoredService,
    tasks: Vec<(reconcile::Task, TaskAddress)>,
    instances: Vec<(reconcile::Instance, placement::Instance)>,
    /// The balancer's groups (None: the service has no load balancer).
    groups: Option<BTreeMap<String, TargetGroupView>>,
    launch: Result<LaunchInputs, String>,
    clock: FakeClock,
    /// What becomes of new tasks, per deployment id (default: healthy).
    fates: BTreeMap<String, Fate>,
    /// Whether tasks have container health checks.
    checks: bool,
    /// Rounds a deregistered target drains before it leaves its group.
    drain_rounds: u32,
    draining_for: BTreeMap<(String, u16), u32>,
    next_task: usize,
    next_port: u16,
    next_deployment: usize,
    /// What each round did, in order: "deactivate t3", "deregister t3", "stop t3", …
    log: Vec<String>,
    /// One tally per round, after its actions.
    tallies: Vec<Tally>,
    disconnect_timeout: f64,
}

fn deployment(id: &str, td: &str) -> Deployment {
    Deployment {
        id: Some(id.into()),
        status: Some("PRIMARY".parse().expect("an AWS status")),
        task_definition: Some(td.into()),
        rollout_state: Some(DeploymentRolloutState::InProgress),
        ..Default::default()
    }
}

/// The ARN scope of the simulated service.
fn scope() -> model::ecs::arn::ArnScope {
    model::ecs::arn::ArnScope {
        region: "us-east-1".into(),
        account_id: "000000000000".into(),
    }
}

fn service(desired: i32, min: i32, max: i32) -> StoredService {
    StoredService {
        service: Service {
            service_name: Some(NAME.into()),
            service_arn: Some(format!(
                "arn:aws:ecs:us-east-1:000000000000:service/default/{NAME}"
            )),
            cluster_arn: Some("arn:aws:ecs:us-east-1:000000000000:cluster/default".into()),
            status: Some("ACTIVE".parse().expect("an AWS status")),
            desired_count: Some(desired),
            scheduling_strategy: Some(SchedulingStrategy::Replica),
            task_definition: Some("web:1".into()),
            deployment_configuration: Some(DeploymentConfiguration {
                minimum_healthy_percent: Some(min),
                maximum_percent: Some(max),
                ..Default::default()
            }),
            deployments: Some(vec![deployment("ecs-svc/1", "web:1")]),
            ..Default::default()
        },
        request_hash: String::new(),
        completed: Vec::new(),
        steady: false,
        inactive_at: None,
        history: Default::default(),
        task_set_tokens: Vec::new(),
        created_launch_type: None,
    }
}

fn launch_inputs() -> LaunchInputs {
    let td = testkit::task_def(NAME);
    let c = &td.container_definitions.as_ref().expect("containers")[0];
    LaunchInputs {
        request: placement::TaskRequest {
            cpu: i64::from(c.cpu.unwrap_or(0)),
            memory: i64::from(c.memory.unwrap_or(0)),
            group: format!("service:{NAME}"),
            ..Default::default()
        },
        constraints: Vec::new(),
        strategies: Vec::new(),
        given: Default::default(),
    }
}

impl Sim {
    /// A REPLICA service of `desired` tasks with min/max percent over `instances` fresh
    /// instances (a, b, c, … in two zones), nothing running yet.
    fn new(desired: i32, min: i32, max: i32, instances: usize) -> Sim {
        let mut sim = Sim {
            st: service(desired, min, max),
            tasks: Vec::new(),
            instances: Vec::new(),
            groups: None,
            launch: Ok(launch_inputs()),
            clock: FakeClock::default(),
            fates: BTreeMap::new(),
            checks: false,
            drain_rounds: 1,
            draining_for: BTreeMap::new(),
            next_task: 1,
            next_port: 32768,
            next_deployment: 2,
            log: Vec::new(),
            tallies: Vec::new(),
            disconnect_timeout: 300.0,
        };
        for _ in 0..instances {
            sim.join_instance();
        }
        // The first deployment is the service's first service deployment.
        let first = sim.st.service.deployments.iter().flatten().next().cloned();
        if let Some(d) = first {
            let at = sim.clock.now();
            sim.st.history.started(&scope(), &sim.st.service, &d, at);
            sim.st.history.refresh(&mut sim.st.service);
        }
        sim
    }

    /// The same, already steady: `desired` healthy tasks of the first deployment.
    fn steady(desired: i32, min: i32, max: i32, instances: usize) -> Sim {
        let mut sim = Sim::new(desired, min, max, instances);
        sim.converge(30);
        assert!(sim.st.steady, "the service settles first");
        sim.log.clear();
        sim.tallies.clear();
        sim
    }

    /// Puts the service behind a load balancer (an instance target group).
    fn behind_balancer(mut self) -> Sim {
        self.st.service.load_balancers = Some(vec![LoadBalancer {
            target_group_arn: Some(TG.into()),
            container_name: Some("app".into()),
            container_port: Some(80),
            ..Default::default()
        }]);
        let view = TargetGroupView {
            target_type: "instance".into(),
            targets: Vec::new(),
        };
        self.groups = Some(BTreeMap::from([(TG.to_owned(), view)]));
        self
    }

    /// Turns on the circuit breaker.
    fn with_breaker(mut self, rollback: bool) -> Sim {
        if let Some(c) = self.st.service.deployment_configuration.as_mut() {
            c.deployment_circuit_breaker = Some(DeploymentCircuitBreaker {
                enable: true,
                rollback,
                ..Default::default()
            });
        }
        self
    }

    /// Adds an ACTIVE, connected instance; its id.
    fn join_instance(&mut self) -> String {
        let n = self.instances.len();
        let id = format!("{}", (b'a' + u8::try_from(n % 26).expect("small")) as char);
        let id = if n >= 26 { format!("{id}{n}") } else { id };
        let zone = ["us-east-1a", "us-east-1b"][n % 2];
        self.instances.push((
            testkit::node(&id),
            testkit::instance(&id).zone(zone).build(),
        ));
        id
    }

    fn instance_mut(&mut self, id: &str) -> &mut (reconcile::Instance, placement::Instance) {
        self.instances
            .iter_mut()
            .find(|(i, _)| i.id == id)
            .expect("instance exists")
    }

    /// The PRIMARY deployment's id.
    fn primary(&self) -> String {
        self.st
            .service
            .deployments
            .iter()
            .flatten()
            .next()
            .and_then(|d| d.id.clone())
            .unwrap_or_default()
    }

    /// UpdateService with a new task definition: a new PRIMARY deployment; its id.
    fn deploy(&mut self) -> String {
        let id = format!("ecs-svc/{}", self.next_deployment);
        let td = format!("web:{}", self.next_deployment);
        self.next_deployment += 1;
        let at = self.clock.now();
        self.st.deploy(&scope(), deployment(&id, &td), at);
        self.st.service.task_definition = Some(td);
        id
    }

    fn set_desired(&mut self, n: i32) {
        self.st.service.desired_count = Some(n);
        if let Some(d) = self.st.service.deployments.iter_mut().flatten().next() {
            d.desired_count = Some(n);
        }
    }

    /// The service's tasks in `phase`.
    fn in_phase(&self, phase: Phase) -> Vec<&reconcile::Task> {
        self.tasks
            .iter()
            .map(|(t, _)| t)
            .filter(|t| t.phase == phase)
            .collect()
    }

    fn task(&self, id: &str) -> &reconcile::Task {
        &self
            .tasks
            .iter()
            .find(|(t, _)| t.id == id)
            .expect("task exists")
            .0
    }

    /// The service's events, oldest first.
    fn events(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .st
            .service
            .events
            .iter()
            .flatten()
            .filter_map(|e| e.message.clone())
            .collect();
        out.reverse();
        out
    }

    fn has_event(&self, part: &str) -> bool {
        self.events().iter().any(|e| e.contains(part))
    }

    fn tally(&self) -> Tally {
        let healthy = |t: &reconcile::Task| {
            t.phase == Phase::Running
                && match t.health {
                    Health::Healthy => true,
                    Health::Unhealthy => false,
                    Health::Unknown => !t.has_health_check,
                }
        };
        Tally {
            live: self
                .tasks
                .iter()
                .filter(|(t, _)| {
                    matches!(
                        t.phase,
                        Phase::Pending | Phase::Running | Phase::Deactivating
                    )
                })
                .count(),
            healthy: self.tasks.iter().filter(|(t, _)| healthy(t)).count(),
        }
    }

    /// Plans one round from the world as it stands.
    fn plan(&self) -> RoundPlan {
        let groups = match &self.groups {
            None => Groups::None,
            Some(g) => Groups::Read(
                self.st
                    .service
                    .load_balancers
                    .iter()
                    .flatten()
                    .filter_map(|lb| {
                        let view = g.get(lb.target_group_arn.as_deref()?)?;
                        Some((lb.clone(), view.clone()))
                    })
                    .collect(),
            ),
        };
        let observed = Observed {
            service: &self.st,
            tasks: &self.tasks,
            instances: &self.instances,
            groups,
            launch: Some(self.launch.clone()),
            disconnect_timeout_seconds: self.disconnect_timeout,
        };
        plan_round(&observed, self.clock.now(), 7)
    }

    /// One controller round: plan, then carry the plan out on the world as the executor
    /// would, then write the record. Returns the plan's actions.
    fn round(&mut self) -> Option<Act> {
        let RoundPlan::Act(act) = self.plan() else {
            return None;
        };
        let mut notes = act.notes.clone();
        for p in &act.deactivate {
            self.log.push(format!("deactivate {}", p.stop.task));
            self.task_mut(&p.stop.task).phase = Phase::Deactivating;
        }
        for (tg, targets) in &act.deregister {
            let mut group = self.groups.as_mut().and_then(|g| g.get_mut(tg));
            for target in targets {
                self.log.push(format!("deregister {}", target.1));
                for t in group.iter_mut().flat_map(|g| g.targets.iter_mut()) {
                    if (t.id.as_str(), t.port) == (target.0.as_str(), target.1) {
                        t.state = model::lb::TargetHealthState::parse("draining")
                            .expect("a target state");
                    }
                }
            }
            notes.deregistered.push((tg.clone(), targets.len()));
        }
        for (tg, regs) in &act.register {
            if let Some(g) = self.groups.as_mut().and_then(|g| g.get_mut(tg)) {
                for r in regs {
                    self.log.push(format!("register {}", r.port));
                    g.targets.push(TargetState {
                        id: r.id.clone(),
                        port: r.port,
                        state: model::lb::TargetHealthState::parse("initial")
                            .expect("a target state"),
                        reason: None,
                    });
                }
            }
            notes.registered.push((tg.clone(), regs.len()));
        }
        for p in &act.stop {
            self.log.push(format!("stop {}", p.stop.task));
            let now = self.clock.now();
            let instances: Vec<String> = self.instances.iter().map(|(i, _)| i.id.clone()).collect();
            let t = self.task_mut(&p.stop.task);
            if !instances.contains(&t.instance) {
                // No agent will ever stop it: the stop is recorded at once.
                t.phase = Phase::Stopped;
                t.stopped_at = Some(now);
            } else if t.phase != Phase::Stopped {
                t.phase = Phase::Stopping;
            }
            // Stopped for failing its checks counts against the deployment.
            t.failed = p.stop.reason == reconcile::StopReason::Unhealthy;
            notes.stopped.push(p.stop.task.clone());
        }
        if let Some(s) = &act.start {
            self.start(s, &mut notes);
        }
        let now = self.clock.now();
        apply_outcome(&mut self.st, &act.actions, &notes, now);
        self.tallies.push(self.tally());
        Some(*act)
    }

    fn task_mut(&mut self, id: &str) -> &mut reconcile::Task {
        &mut self
            .tasks
            .iter_mut()
            .find(|(t, _)| t.id == id)
            .expect("task exists")
            .0
    }

    /// Places the starts as the executor does (placement's own engine), booking each.
    fn start(&mut self, s: &super::plan::Starts, notes: &mut RoundReport) {
        let Ok(l) = self.launch.clone() else {
            return;
        };
        let engines: Vec<placement::Instance> =
            self.instances.iter().map(|(_, e)| e.clone()).collect();
        let plan = if s.on_instances.is_empty() {
            placement::place(
                &engines,
                &l.request,
                s.count,
                &l.constraints,
                &s.strategies,
                s.seed,
            )
        } else {
            let mut plan = placement::Plan::default();
            for want in &s.on_instances {
                if let Some(idx) = engines.iter().position(|e| &e.id == want) {
                    let p = placement::place(&engines[idx..=idx], &l.request, 1, &[], &[], 0);
                    if p.placements.is_empty() {
                        plan.failures.extend(p.failures);
                    } else {
                        plan.placements.push(idx);
                    }
                }
            }
            plan
        };
        let deployment = self.primary();
        for idx in &plan.placements {
            let id = format!("t{}", self.next_task);
            self.next_task += 1;
            let (_, e) = &mut self.instances[*idx];
            e.used_cpu += l.request.cpu;
            e.used_memory += l.request.memory;
            *e.groups.entry(l.request.group.clone()).or_default() += 1;
            let inst = e.id.clone();
            let mut t = testkit::task(&id, &deployment, &inst).pending().build();
            t.has_health_check = self.checks;
            self.log.push(format!("start {id} on {inst}"));
            self.tasks.push((t, TaskAddress::default()));
            notes.started.push(id);
        }
        if plan.placements.len() < s.count {
            let failures: Vec<model::ecs::shapes::Failure> = plan
                .failures
                .iter()
                .map(|f| model::ecs::shapes::Failure {
                    arn: f.arn.clone(),
                    reason: Some(f.reason.as_str().to_owned()),
                    detail: f.detail.clone(),
                })
                .collect();
            notes.placement_failure = Some(placement_message(&failures));
        }
    }

    /// The world moves on by one second: agents start or fail new tasks and stop the
    /// tasks asked to stop (unless disconnected); balancers judge new targets and finish
    /// drains.
    fn settle(&mut self) {
        let now = self.clock.advance(1.0);
        let connected: BTreeMap<String, bool> = self
            .instances
            .iter()
            .map(|(i, e)| {
                (
                    i.id.clone(),
                    e.agent_connected && i.disconnected_since.is_none(),
                )
            })
            .collect();
        for (t, reach) in &mut self.tasks {
            if !connected.get(&t.instance).copied().unwrap_or(false) {
                continue;
            }
            let fate = self
                .fates
                .get(&t.deployment)
                .copied()
                .unwrap_or(Fate::Healthy);
            match t.phase {
                Phase::Pending => match fate {
                    Fate::FailsToStart => {
                        t.phase = Phase::Stopped;
                        t.stopped_at = Some(now);
                        t.failed = true;
                    }
                    Fate::Healthy | Fate::Unhealthy => {
                        t.phase = Phase::Running;
                        t.started_at = Some(now);
                        if t.has_health_check {
                            t.health = if fate == Fate::Healthy {
                                Health::Healthy
                            } else {
                                Health::Unhealthy
                            };
                        }
                        reach.bindings = vec![("app".into(), 80, self.next_port)];
                        self.next_port += 1;
                    }
                },
                Phase::Stopping => {
                    t.phase = Phase::Stopped;
                    t.stopped_at = Some(now);
                }
                _ => {}
            }
        }
        // Balancers: new targets are judged, drains end after `drain_rounds`.
        let fate_of_port: BTreeMap<u16, Fate> = self
            .tasks
            .iter()
            .flat_map(|(t, r)| {
                let fate = self
                    .fates
                    .get(&t.deployment)
                    .copied()
                    .unwrap_or(Fate::Healthy);
                r.bindings.iter().map(move |b| (b.2, fate))
            })
            .collect();
        let drain_rounds = self.drain_rounds;
        let draining_for = &mut self.draining_for;
        for g in self.groups.iter_mut().flat_map(|g| g.values_mut()) {
            for t in &mut g.targets {
                if t.state == model::lb::TargetHealthState::Initial {
                    t.state = match fate_of_port.get(&t.port) {
                        Some(Fate::Unhealthy) => model::lb::TargetHealthState::Unhealthy,
                        _ => model::lb::TargetHealthState::Healthy,
                    };
                }
            }
            g.targets.retain(|t| {
                if t.state != model::lb::TargetHealthState::Draining {
                    return true;
                }
                let n = draining_for.entry((t.id.clone(), t.port)).or_insert(0);
                *n += 1;
                *n <= drain_rounds
            });
        }
    }

    /// Rounds until the service is steady (or `max` rounds).
    fn converge(&mut self, max: usize) -> usize {
        for n in 1..=max {
            self.round();
            self.settle();
            if self.st.steady && self.round_is_quiet() {
                return n;
            }
        }
        max
    }

    /// The next plan would change nothing.
    fn round_is_quiet(&self) -> bool {
        match self.plan() {
            RoundPlan::Act(a) => {
                a.start.is_none()
                    && a.stop.is_empty()
                    && a.deactivate.is_empty()
                    && a.deregister.is_empty()
                    && a.register.is_empty()
            }
            _ => true,
        }
    }

    /// The deployment's rollout state.
    fn rollout(&self, id: &str) -> Option<DeploymentRolloutState> {
        self.st
            .service
            .deployments
            .iter()
            .flatten()
            .find(|d| d.id.as_deref() == Some(id))
            .and_then(|d| d.rollout_state)
    }

    /// Live tasks of a deployment.
    fn live_of(&self, deployment: &str) -> usize {
        self.tasks
            .iter()
            .filter(|(t, _)| {
                t.deployment == deployment && matches!(t.phase, Phase::Pending | Phase::Running)
            })
            .count()
    }

    fn max_live(&self) -> usize {
        self.tallies.iter().map(|t| t.live).max().unwrap_or(0)
    }

    fn min_healthy(&self) -> usize {
        self.tallies.iter().map(|t| t.healthy).min().unwrap_or(0)
    }
}

#[test]
fn the_same_observation_time_and_seed_give_the_same_plan() {
    let mut sim = Sim::steady(4, 100, 200, 3);
    sim.deploy();
    let a = format!("{:?}", sim.plan());
    let b = format!("{:?}", sim.plan());
    assert_eq!(a, b);
    assert!(a.contains("count: 4"), "a new deployment starts 4: {a}");
}
