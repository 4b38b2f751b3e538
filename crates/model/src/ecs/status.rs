//! The server-side statuses of ECS objects as ordered enums.
//!
//! botocore models these members as plain strings (`Task.lastStatus`, `Service.status`,
//! ...), but the control plane reasons about them: a task's status only moves forward, a
//! deployment goes PRIMARY → ACTIVE → INACTIVE and never back. Declaring each as an enum
//! whose variant order *is* the lifecycle order makes "move forward" a `max`, makes an
//! unknown string a decode error at the edge instead of a value that silently ranks
//! lowest, and makes a new status that no `match` handles fail to compile. The
//! generated shapes (`tools/gen_shapes.py`, its `TYPED_MEMBERS` table) use these types
//! for the members they describe; serde gives AWS's strings on the wire and in the store.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A string that names none of a status enum's values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("'{value}' is not a valid {kind}; valid values: {valid}")]
pub struct UnknownStatusError {
    /// Which status was being parsed (`task status`, ...).
    pub kind: &'static str,
    /// The string given.
    pub value: String,
    /// The accepted values, comma-separated.
    pub valid: String,
}

/// Declares a status enum; where the status is a lifecycle, the variants' declaration
/// order is their rank.
macro_rules! status_enum {
    ($(#[$doc:meta])* $name:ident, $kind:literal { $($(#[$vdoc:meta])* $variant:ident => $aws:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $aws)] $variant,)+
        }

        impl $name {
            /// Every value, in lifecycle order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            /// The AWS string for this value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $aws,)+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownStatusError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($aws => Ok(Self::$variant),)+
                    _ => Err(UnknownStatusError {
                        kind: $kind,
                        value: s.to_owned(),
                        valid: [$($aws),+].join(", "),
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

status_enum! {
    /// A task's `lastStatus` and `desiredStatus`, in ECS's lifecycle order
    /// (PROVISIONING → PENDING → ACTIVATING → RUNNING → DEACTIVATING → STOPPING →
    /// DEPROVISIONING → STOPPED → DELETED).
    TaskStatus, "task status" {
        /// Resources (an awsvpc interface, Fargate capacity) are being set up.
        Provisioning => "PROVISIONING",
        /// Placed; the agent has not started it yet.
        Pending => "PENDING",
        /// Started; load balancer registration and the like are under way.
        Activating => "ACTIVATING",
        /// Running.
        Running => "RUNNING",
        /// Leaving its load balancers before it stops.
        Deactivating => "DEACTIVATING",
        /// Its containers are being stopped.
        Stopping => "STOPPING",
        /// Its resources are being released.
        Deprovisioning => "DEPROVISIONING",
        /// Stopped.
        Stopped => "STOPPED",
        /// Gone (ECS shows this only for tasks it has forgotten).
        Deleted => "DELETED",
    }
}

status_enum! {
    /// A container's `lastStatus`, as the ECS agent reports it.
    ContainerStatus, "container status" {
        /// Not started yet.
        Pending => "PENDING",
        /// Running.
        Running => "RUNNING",
        /// Exited or never started.
        Stopped => "STOPPED",
    }
}

status_enum! {
    /// A service's `status`: ACTIVE until deleted, DRAINING while its tasks stop, then
    /// INACTIVE.
    ServiceStatus, "service status" {
        /// Serving.
        Active => "ACTIVE",
        /// Deleted; its tasks are stopping.
        Draining => "DRAINING",
        /// Deleted and empty.
        Inactive => "INACTIVE",
    }
}

status_enum! {
    /// A deployment's `status`: the PRIMARY is the newest; a replaced one is ACTIVE
    /// while it still has tasks, then INACTIVE.
    DeploymentStatus, "deployment status" {
        /// The deployment the service is moving to.
        Primary => "PRIMARY",
        /// Replaced, still running tasks.
        Active => "ACTIVE",
        /// Replaced and empty.
        Inactive => "INACTIVE",
    }
}

status_enum! {
    /// A container instance's `status`. Unlike the others this is not a one-way
    /// lifecycle (an instance goes ACTIVE → DRAINING → ACTIVE at its owner's word), so
    /// its order means nothing and nothing should `advance` it.
    ContainerInstanceStatus, "container instance status" {
        /// Registration under way.
        Registering => "REGISTERING",
        /// Registration failed.
        RegistrationFailed => "REGISTRATION_FAILED",
        /// Accepting tasks.
        Active => "ACTIVE",
        /// Accepting no new tasks; its service tasks are being replaced.
        Draining => "DRAINING",
        /// Deregistration under way.
        Deregistering => "DEREGISTERING",
        /// Deregistered.
        Inactive => "INACTIVE",
    }
}

impl TaskStatus {
    /// Whether a task with this `lastStatus` has reached RUNNING (it may have moved past).
    pub fn has_run(self) -> bool {
        self >= Self::Running
    }
}

/// Moves an optional status forward to `to`; true when it changed.
pub fn advance<S: Ord + Copy>(status: &mut Option<S>, to: S) -> bool {
    match status {
        Some(cur) if *cur >= to => false,
        _ => {
            *status = Some(to);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_statuses_rank_in_ecs_lifecycle_order() {
        let order: Vec<&str> = TaskStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            order,
            [
                "PROVISIONING",
                "PENDING",
                "ACTIVATING",
                "RUNNING",
                "DEACTIVATING",
                "STOPPING",
                "DEPROVISIONING",
                "STOPPED",
                "DELETED"
            ]
        );
        assert!(TaskStatus::ALL.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_status_never_moves_back() {
        let mut s = Some(TaskStatus::Running);
        assert!(!advance(&mut s, TaskStatus::Pending));
        assert_eq!(s, Some(TaskStatus::Running));
        assert!(advance(&mut s, TaskStatus::Stopped));
        assert_eq!(s, Some(TaskStatus::Stopped));
        let mut none: Option<TaskStatus> = None;
        assert!(advance(&mut none, TaskStatus::Provisioning));
    }

    #[test]
    fn unknown_strings_are_refused_with_the_valid_values() {
        let e = "RUNNNING".parse::<TaskStatus>().expect_err("typo");
        assert_eq!(e.kind, "task status");
        assert!(e.to_string().contains("RUNNING, DEACTIVATING"), "{e}");
        assert_eq!(
            "DRAINING".parse::<ServiceStatus>(),
            Ok(ServiceStatus::Draining)
        );
        assert!(
            "running".parse::<ContainerStatus>().is_err(),
            "AWS strings are upper case"
        );
    }

    #[test]
    fn statuses_serialize_as_aws_strings_and_round_trip() {
        for s in TaskStatus::ALL {
            let json = serde_json::to_string(s).expect("serializes");
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<TaskStatus>(&json).ok(), Some(*s));
            assert_eq!(s.as_str().parse::<TaskStatus>().ok(), Some(*s));
        }
        assert_eq!(
            serde_json::to_string(&DeploymentStatus::Primary).expect("serializes"),
            "\"PRIMARY\""
        );
    }
}
