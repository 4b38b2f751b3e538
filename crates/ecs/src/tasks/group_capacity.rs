//! Which instances the tasks of an Auto Scaling group capacity provider may run on: as
//! ECS does, only the container instances its group launched (an instance registered by
//! hand, or one of another provider's group, is not eligible). A strategy's tasks are
//! split over its providers first; each provider's share is then placed over its own
//! group's instances, and what does not fit there waits for that provider.

use crate::capacity_providers::stored;
use crate::error::EcsError;
use crate::objects::StoredInstance;
use crate::view::ClusterView;
use crate::Ecs;
use std::collections::{BTreeMap, HashSet};

/// The EC2 instance ids of each named provider's group (empty when the provider or its
/// group is gone: nothing is eligible then, and its tasks wait).
pub(crate) type Members = BTreeMap<String, HashSet<String>>;

impl Ecs {
    /// The group instances of each provider in `names`.
    pub(crate) async fn provider_members<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<Members, EcsError> {
        let names: Vec<&str> = names.into_iter().collect();
        let mut out: Members = names
            .iter()
            .map(|n| ((*n).to_owned(), HashSet::new()))
            .collect();
        let Some(groups) = self.groups.clone() else {
            return Ok(out);
        };
        for p in stored(self).await? {
            let (Some(name), Some(asg)) = (p.name.as_deref(), &p.auto_scaling_group_provider)
            else {
                continue;
            };
            let Some(slot) = out.get_mut(name) else {
                continue;
            };
            if let Some(g) = groups.group(&asg.auto_scaling_group_arn).await {
                slot.extend(g.instances);
            }
        }
        Ok(out)
    }
}

/// Whether a container instance runs on one of a group's machines (`members`, by EC2
/// instance id); hidden Fargate capacity never does.
pub(crate) fn is_member(s: &StoredInstance, members: &HashSet<String>) -> bool {
    !s.fargate
        && s.instance
            .ec2_instance_id
            .as_ref()
            .is_some_and(|id| members.contains(id))
}

/// The part of `view` whose container instances are in `members` (never hidden Fargate
/// capacity), with each kept instance's index in `view`.
pub(crate) fn restrict_to_members(
    view: &ClusterView,
    members: &HashSet<String>,
) -> (ClusterView, Vec<usize>) {
    let mut sub = ClusterView::default();
    let mut map = Vec::new();
    for (k, s) in view.stored.iter().enumerate() {
        if is_member(s, members) {
            sub.instances.push(view.instances[k].clone());
            map.push(k);
        }
    }
    (sub, map)
}

/// How many of `providers` (one entry per task, in the strategy's split order) each
/// provider gets, in first-seen order.
pub(crate) fn compute_shares(providers: &[Option<String>]) -> Vec<(Option<String>, usize)> {
    let mut out: Vec<(Option<String>, usize)> = Vec::new();
    for p in providers {
        match out.iter_mut().find(|(q, _)| q == p) {
            Some((_, n)) => *n += 1,
            None => out.push((p.clone(), 1)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::StoredInstance;

    fn instance(ec2: Option<&str>, fargate: bool) -> StoredInstance {
        StoredInstance {
            instance: model::ecs::shapes::ContainerInstance {
                ec2_instance_id: ec2.map(str::to_owned),
                ..Default::default()
            },
            usage: Default::default(),
            fargate,
            owner: None,
            agent_session: None,
        }
    }

    #[test]
    fn only_the_groups_own_instances_are_eligible() {
        let mut view = ClusterView::default();
        for si in [
            instance(Some("i-a"), false),
            instance(None, false),
            instance(Some("i-b"), false),
            instance(Some("i-a"), true),
        ] {
            view.stored.push(si);
            view.instances.push(placement::Instance::default());
        }
        let members: HashSet<String> = ["i-a".to_owned()].into();
        let (sub, map) = restrict_to_members(&view, &members);
        assert_eq!(map, vec![0]);
        assert_eq!(sub.instances.len(), 1);
        let (none, map) = restrict_to_members(&view, &HashSet::new());
        assert!(none.instances.is_empty() && map.is_empty());
    }

    #[test]
    fn shares_count_each_providers_tasks_in_split_order() {
        let a = Some("a".to_owned());
        let b = Some("b".to_owned());
        let split = vec![a.clone(), b.clone(), a.clone(), a.clone()];
        assert_eq!(compute_shares(&split), vec![(a, 3), (b, 1)]);
        assert!(compute_shares(&[]).is_empty());
    }
}
