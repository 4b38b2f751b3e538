//! How Auto Scaling state sits in the store (values are JSON):
//! - `autoscaling/group/<name>` → [`StoredGroup`], with its instances and its recent
//!   scaling activities inside, so that capacity, instances and the activity that
//!   explains a change commit in one compare-and-swap;
//! - `autoscaling/launch-template/<id>` → [`crate::launch_templates::StoredTemplate`].

use serde::{Deserialize, Serialize};

/// Prefix of groups.
pub(crate) const GROUP_PREFIX: &str = "autoscaling/group/";
/// Prefix of launch templates.
pub(crate) const TEMPLATE_PREFIX: &str = "autoscaling/launch-template/";
/// How many activities a group keeps (AWS keeps six weeks; a bound keeps the record small).
pub(crate) const MAX_ACTIVITIES: usize = 100;

/// The key of group `name`.
pub(crate) fn group_key(name: &str) -> String {
    format!("{GROUP_PREFIX}{name}")
}

/// The launch template a group launches from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateRef {
    /// `lt-…`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `$Default`, `$Latest` or a number, as given.
    pub version: String,
}

/// A group tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupTag {
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
    /// Copied to instances at launch.
    pub propagate_at_launch: bool,
}

/// An instance's `LifecycleState`, as AWS spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lifecycle {
    /// Launched, its machine not running yet.
    Pending,
    /// Running and counted.
    InService,
    /// Chosen for termination; its machine is being stopped.
    Terminating,
    /// Chosen for termination and held by the group's termination lifecycle hooks until
    /// each is completed or times out.
    TerminatingWait,
    /// Released by its lifecycle hooks; its machine is being stopped.
    TerminatingProceed,
    /// Gone (kept only until the next write leaves it out).
    Terminated,
}

impl Lifecycle {
    /// The AWS string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::InService => "InService",
            Self::Terminating => "Terminating",
            Self::TerminatingWait => "Terminating:Wait",
            Self::TerminatingProceed => "Terminating:Proceed",
            Self::Terminated => "Terminated",
        }
    }
}

/// One instance of a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInstance {
    /// `i-…`.
    pub id: String,
    /// Instance type from the launch template.
    pub instance_type: String,
    /// Availability zone.
    pub zone: String,
    /// Lifecycle state.
    pub lifecycle: Lifecycle,
    /// `Healthy` or `Unhealthy`.
    pub healthy: bool,
    /// Protected from scale in.
    pub protected: bool,
    /// The template it was launched from.
    pub template: Option<TemplateRef>,
    /// Launch time, epoch milliseconds.
    pub launched_ms: i64,
    /// The activity that launched or is terminating it (ended when the step is done).
    pub activity: Option<String>,
    /// Its lifecycle action while in `Terminating:Wait`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<LifecycleAction>,
}

/// A lifecycle hook of a group (PutLifecycleHook).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleHook {
    /// Its name.
    pub name: String,
    /// `autoscaling:EC2_INSTANCE_TERMINATING`.
    pub transition: String,
    /// Seconds an action waits without a heartbeat before its default result applies.
    pub heartbeat_timeout: i32,
    /// `CONTINUE` or `ABANDON`.
    pub default_result: String,
    /// Given back in DescribeLifecycleHooks.
    pub metadata: Option<String>,
}

impl LifecycleHook {
    /// AWS's bound on one action: 100 heartbeat timeouts or 48 hours, whichever is less.
    pub fn global_timeout(&self) -> i32 {
        (self.heartbeat_timeout.saturating_mul(100)).min(172_800)
    }
}

/// An instance's lifecycle action: the hooks that still hold it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleAction {
    /// `LifecycleActionToken` (a UUID).
    pub token: String,
    /// The hooks not completed yet, each with its deadlines (epoch ms): the heartbeat
    /// one (moved by RecordLifecycleActionHeartbeat) and the global one.
    pub pending: Vec<PendingHook>,
}

/// One hook holding an instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingHook {
    /// The hook's name.
    pub hook: String,
    /// When its default result applies unless a heartbeat comes.
    pub deadline_ms: i64,
    /// When its default result applies regardless.
    pub global_deadline_ms: i64,
}

/// A scaling activity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    /// Its id (a UUID).
    pub id: String,
    /// What it does.
    pub description: String,
    /// Why.
    pub cause: String,
    /// Start, epoch milliseconds.
    pub start_ms: i64,
    /// End, once done.
    pub end_ms: Option<i64>,
    /// `InProgress`, `Successful`, `Failed`, ...
    pub status: String,
    /// Why it failed.
    pub status_message: Option<String>,
    /// 0–100.
    pub progress: u8,
    /// JSON details (`{"Subnet ID":…,"Availability Zone":…}`).
    pub details: String,
}

/// A stored Auto Scaling group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredGroup {
    /// Its name.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// Bounds and desired capacity.
    pub min: i32,
    /// Maximum size.
    pub max: i32,
    /// Desired capacity.
    pub desired: i32,
    /// What it launches.
    pub template: TemplateRef,
    /// Availability zones, in the order given (derived from subnets when given those).
    pub zones: Vec<String>,
    /// `VPCZoneIdentifier` as given.
    pub vpc_zone_identifier: Option<String>,
    /// Whether new instances are protected from scale in.
    pub new_instances_protected: bool,
    /// Seconds.
    pub default_cooldown: i32,
    /// `EC2` or `ELB`.
    pub health_check_type: String,
    /// Seconds.
    pub health_check_grace_period: i32,
    /// Termination policies as given (`Default`).
    pub termination_policies: Vec<String>,
    /// Target groups (recorded).
    pub target_group_arns: Vec<String>,
    /// Tags.
    pub tags: Vec<GroupTag>,
    /// Created, epoch milliseconds.
    pub created_ms: i64,
    /// `Delete in progress` while a forced delete terminates its instances.
    pub deleting: bool,
    /// Instances, oldest first.
    pub instances: Vec<GroupInstance>,
    /// Activities, newest first.
    pub activities: Vec<Activity>,
    /// Why the desired capacity last changed (the cause of the activities it starts),
    /// until the controller has acted on it.
    #[serde(default)]
    pub pending_cause: Option<String>,
    /// Lifecycle hooks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<LifecycleHook>,
}

impl StoredGroup {
    /// Removes the hook `hook` and lets go of the instances it held: they go on once no
    /// other hook holds them (the controller moves them).
    pub fn remove_hook(&mut self, hook: &str) {
        self.hooks.retain(|h| h.name != hook);
        for i in &mut self.instances {
            if let Some(a) = &mut i.action {
                a.pending.retain(|p| p.hook != hook);
            }
        }
    }

    /// Instances counted toward capacity (not leaving).
    pub fn live(&self) -> impl Iterator<Item = &GroupInstance> {
        self.instances
            .iter()
            .filter(|i| matches!(i.lifecycle, Lifecycle::Pending | Lifecycle::InService))
    }

    /// Records `activity` first, keeping the newest [`MAX_ACTIVITIES`].
    pub fn record(&mut self, activity: Activity) {
        self.activities.insert(0, activity);
        self.activities.truncate(MAX_ACTIVITIES);
    }

    /// Ends activity `id` with `status`.
    pub fn finish(&mut self, id: &str, status: &str, message: Option<String>, now_ms: i64) {
        if let Some(a) = self.activities.iter_mut().find(|a| a.id == id) {
            a.status = status.to_owned();
            a.status_message = message;
            a.progress = 100;
            a.end_ms = Some(now_ms);
        }
    }
}
