//! One round's view of a service's target groups, and the decisions that follow from it
//! without I/O: how the balancer's verdicts fold into task health, which stops wait for
//! a drain, which targets leave and which join.

use super::plan::{PlannedStop, Target};
use super::record::RoundReport;
use super::targets::{verdict, LbVerdict, Registration, TargetGroupView, TargetState, TaskAddress};
use model::ecs::shapes::LoadBalancer;
use model::lb::TargetHealthState;
use reconcile::{Health, Phase, StopReason};
use std::collections::{BTreeMap, HashMap};

/// Task id → (target group ARN, target) for each group the task is reachable for.
type TaskTargets = HashMap<String, Vec<(String, Target)>>;

/// The balancer has stopped sending new requests to the target and waits for its
/// connections to end.
fn is_draining(st: &TargetState) -> bool {
    st.state == TargetHealthState::Draining
}

/// The balancer's health checks fail the target.
fn is_unhealthy(st: &TargetState) -> bool {
    st.state == TargetHealthState::Unhealthy
}

/// Which stops wait for a drain, and which targets leave their groups now.
pub(crate) struct DrainPlan {
    /// Stops that may go ahead now.
    pub now: Vec<PlannedStop>,
    /// Stops waiting for their targets to drain.
    pub waiting: Vec<PlannedStop>,
    /// Target group → targets to deregister.
    pub leave: BTreeMap<String, Vec<Target>>,
    /// Tasks whose targets begin draining now.
    pub draining: usize,
}

/// EC2 instance id → the address its agent registered
/// ([`model::ecs::names::HOST_ADDRESS_ATTRIBUTE`]), for the instances that have one.
fn instance_addresses<'a>(
    instances: impl Iterator<Item = &'a placement::Instance>,
) -> HashMap<String, String> {
    instances
        .filter_map(|e| {
            let address = e
                .attributes
                .get(model::ecs::names::HOST_ADDRESS_ATTRIBUTE)?
                .clone()?;
            Some((e.ec2_instance_id.clone(), address))
        })
        .collect()
}

/// One round's view of the service's target groups.
pub(crate) struct Balanced {
    /// How many `loadBalancers` entries have an existing group.
    entries: usize,
    /// Each task's targets: task id → (group ARN, target), for every entry it is reachable for.
    targets: TaskTargets,
    /// Task phases by id.
    phases: HashMap<String, Phase>,
    /// Each group's registered targets by (id, port): looked up per task and target.
    states: HashMap<String, HashMap<Target, TargetState>>,
    /// EC2 instance id → the address its agent registered, for instance targets.
    addresses: HashMap<String, String>,
}

impl Balanced {
    /// Joins the groups' views (each existing `loadBalancers` entry with its group) with
    /// the tasks and the instances they run on.
    pub fn new(
        groups: &[(LoadBalancer, TargetGroupView)],
        tasks: &[(reconcile::Task, TaskAddress)],
        instances: &[(reconcile::Instance, placement::Instance)],
    ) -> Balanced {
        let ec2: HashMap<&str, &str> = instances
            .iter()
            .map(|(_, e)| (e.id.as_str(), e.ec2_instance_id.as_str()))
            .collect();
        let addresses = instance_addresses(instances.iter().map(|(_, e)| e));
        let mut targets: TaskTargets = HashMap::new();
        let mut phases = HashMap::new();
        for (t, reach) in tasks {
            phases.insert(t.id.clone(), t.phase);
            let id = ec2.get(t.instance.as_str()).copied().unwrap_or_default();
            for (lb, view) in groups {
                if let Some(target) = reach.target(lb, &view.target_type, id) {
                    let arn = lb.target_group_arn.clone().unwrap_or_default();
                    targets.entry(t.id.clone()).or_default().push((arn, target));
                }
            }
        }
        let states = groups
            .iter()
            .map(|(lb, view)| {
                let by_target = view
                    .targets
                    .iter()
                    .map(|t| ((t.id.clone(), t.port), t.clone()))
                    .collect();
                (lb.target_group_arn.clone().unwrap_or_default(), by_target)
            })
            .collect();
        Balanced {
            entries: groups.len(),
            targets,
            phases,
            states,
            addresses,
        }
    }

    fn state(&self, tg: &str, target: &Target) -> Option<&TargetState> {
        self.states
            .get(tg)
            .and_then(|by_target| by_target.get(target))
    }

    /// A RUNNING task counts as healthy only once every target of it is healthy. Returns
    /// the tasks some target group found unhealthy: task id → that group.
    pub fn fold_health(&self, tasks: &mut [reconcile::Task]) -> HashMap<String, String> {
        let mut failed = HashMap::new();
        for t in tasks.iter_mut().filter(|t| t.phase == Phase::Running) {
            let mine = self
                .targets
                .get(&t.id)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let mut states: Vec<Option<&TargetState>> = mine
                .iter()
                .map(|(tg, target)| self.state(tg, target))
                .collect();
            // A group the task is not reachable for yet (no binding reported) is pending.
            for _ in mine.len()..self.entries {
                states.push(None);
            }
            match verdict(&states) {
                LbVerdict::Healthy => {}
                LbVerdict::Pending => {
                    if t.health != Health::Unhealthy {
                        t.health = Health::Unknown;
                    }
                    t.has_health_check = true;
                }
                LbVerdict::Unhealthy => {
                    t.health = Health::Unhealthy;
                    t.has_health_check = true;
                    if let Some((tg, _)) = mine
                        .iter()
                        .find(|(tg, target)| self.state(tg, target).is_some_and(is_unhealthy))
                    {
                        failed.insert(t.id.clone(), tg.clone());
                    }
                }
            }
        }
        failed
    }

    /// Splits the stops into those that may go ahead now (their targets are gone, or
    /// their instance is lost and draining is moot) and those that wait for their targets
    /// to drain, and lists the targets to deregister: those of tasks to stop, and of tasks
    /// that stopped on their own.
    pub fn plan_drain(&self, stops: &[PlannedStop]) -> DrainPlan {
        let mut plan = DrainPlan {
            now: Vec::new(),
            waiting: Vec::new(),
            leave: BTreeMap::new(),
            draining: 0,
        };
        for p in stops {
            let mine = self
                .targets
                .get(&p.stop.task)
                .map(Vec::as_slice)
                .unwrap_or_default();
            // Registered: some target is still in a group (draining or not); live: some
            // target still takes new requests and starts draining now.
            let (mut registered, mut live) = (false, false);
            for (tg, target) in mine {
                match self.state(tg, target) {
                    None => {}
                    Some(st) if is_draining(st) => registered = true,
                    Some(_) => {
                        plan.leave
                            .entry(tg.clone())
                            .or_default()
                            .push(target.clone());
                        registered = true;
                        live = true;
                    }
                }
            }
            if registered && p.stop.reason != StopReason::InstanceLost {
                if live {
                    plan.draining += 1;
                }
                plan.waiting.push(p.clone());
            } else {
                plan.now.push(p.clone());
            }
        }
        // Sorted, so a plan is the same from one run to the next.
        let mut stopped: Vec<(&String, &Vec<(String, Target)>)> = self
            .targets
            .iter()
            .filter(|(task, _)| {
                matches!(
                    self.phases.get(*task),
                    Some(Phase::Stopped | Phase::Stopping)
                )
            })
            .collect();
        stopped.sort_by_key(|(task, _)| *task);
        for (_, mine) in stopped {
            for (tg, target) in mine {
                if self.state(tg, target).is_some_and(|st| !is_draining(st)) {
                    plan.leave
                        .entry(tg.clone())
                        .or_default()
                        .push(target.clone());
                }
            }
        }
        plan
    }

    /// The targets of RUNNING tasks not being stopped that are in no group yet; notes
    /// those the balancer reports unhealthy.
    pub fn plan_registrations(
        &self,
        stops: &[PlannedStop],
        notes: &mut RoundReport,
    ) -> BTreeMap<String, Vec<Registration>> {
        let mut join: BTreeMap<String, Vec<Registration>> = BTreeMap::new();
        let mut running: Vec<(&String, &Vec<(String, Target)>)> = self
            .targets
            .iter()
            .filter(|(task, _)| {
                self.phases.get(*task) == Some(&Phase::Running)
                    && !stops.iter().any(|p| &p.stop.task == *task)
            })
            .collect();
        running.sort_by_key(|(task, _)| *task);
        for (task, mine) in running {
            for (tg, target) in mine {
                match self.state(tg, target) {
                    None => join.entry(tg.clone()).or_default().push(Registration {
                        id: target.0.clone(),
                        port: target.1,
                        address: self.addresses.get(&target.0).cloned(),
                    }),
                    Some(st) if is_unhealthy(st) => notes.unhealthy_targets.push((
                        task.clone(),
                        target.0.clone(),
                        target.1,
                        tg.clone(),
                        st.reason
                            .clone()
                            .unwrap_or_else(|| "Target.FailedHealthChecks".into()),
                    )),
                    Some(_) => {}
                }
            }
        }
        join
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_targets_take_the_address_their_agent_registered() {
        let instance = |ec2: &str, address: Option<&str>| {
            let mut i = placement::Instance {
                ec2_instance_id: ec2.into(),
                ..Default::default()
            };
            if let Some(a) = address {
                i.attributes.insert(
                    model::ecs::names::HOST_ADDRESS_ATTRIBUTE.into(),
                    Some(a.into()),
                );
            }
            i.attributes
                .insert("ecs.availability-zone".into(), Some("us-east-1a".into()));
            i
        };
        let all = [
            instance("i-1", Some("10.0.0.5")),
            instance("i-2", None),
            instance("i-3", Some("192.0.2.9")),
        ];
        let addresses = instance_addresses(all.iter());
        assert_eq!(addresses.len(), 2);
        assert_eq!(addresses["i-1"], "10.0.0.5");
        assert_eq!(addresses["i-3"], "192.0.2.9");
    }
}
