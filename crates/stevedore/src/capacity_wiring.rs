//! ECS capacity providers over Auto Scaling: ECS reads groups (and sets their desired
//! capacity) through [`ecs::capacity_providers::AutoScalingGroups`], implemented here
//! over the region's [`autoscaling::AutoScaling`]; neither service depends on the other.

use autoscaling::{AutoScaling, Lifecycle};
use ecs::capacity_providers::{AutoScalingGroups, GroupFacts};

/// The region's Auto Scaling groups, as ECS sees them.
pub struct EcsGroups(pub AutoScaling);

#[async_trait::async_trait]
impl AutoScalingGroups for EcsGroups {
    async fn group(&self, arn: &str) -> Option<GroupFacts> {
        let g = match self.0.group(arn).await {
            Ok(g) => g?,
            Err(error) => {
                tracing::warn!(%error, group = arn, "Auto Scaling group not readable.");
                return None;
            }
        };
        // A name finds the group too; an ARN must be this group's own (a deleted and
        // recreated group has a new ARN).
        if arn.starts_with("arn:") && arn != g.arn {
            return None;
        }
        Some(GroupFacts {
            instances: g
                .instances
                .iter()
                .filter(|i| matches!(i.lifecycle, Lifecycle::Pending | Lifecycle::InService))
                .map(|i| i.id.clone())
                .collect(),
            name: g.name,
            arn: g.arn,
            desired: g.desired,
            min: g.min,
            max: g.max,
            new_instances_protected: g.new_instances_protected,
        })
    }

    async fn set_desired_capacity(&self, arn: &str, desired: i32, cause: &str) -> Result<(), String> {
        self.0
            .set_desired_capacity(arn, desired, cause)
            .await
            .map(|_| self.0.wake())
            .map_err(|e| e.to_string())
    }
}
