//! Tests of the group API over an in-memory store, and of the controller's pure step.

use crate::controller::{plan_group, Observed};
use crate::provider::MachineState;
use crate::{AutoScaling, AutoScalingError, Lifecycle, Operation, StoredGroup};
use model::ecs::arn::ArnScope;
use std::sync::Arc;
use wire::query::parse_form;

fn service() -> (tempfile::TempDir, AutoScaling) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn store::Store> = Arc::new(
        store::SqliteStore::open(store::SqliteConfig::new(dir.path().join("s.db"))).expect("open"),
    );
    let scope = ArnScope {
        region: "us-east-1".into(),
        account_id: "000000000000".into(),
    };
    (
        dir,
        AutoScaling::new(store, scope).with_clock(Arc::new(|| 1_700_000_000_000)),
    )
}

async fn call(a: &AutoScaling, form: &str) -> Result<String, AutoScalingError> {
    let params = parse_form(form.as_bytes()).expect("form");
    let op = Operation::from_name(params.action().expect("action")).expect("op");
    a.run(op, &params, "req").await
}

/// Calls the EC2 launch template action a form `body` names, as the account's root.
async fn ec2(a: &AutoScaling, body: &[u8]) -> Result<String, AutoScalingError> {
    let params = parse_form(body).expect("form");
    let action = params.action().expect("an Action").to_owned();
    a.serve_ec2_action(&action, &params, "arn:aws:iam::000000000000:root", "r")
        .await
        .expect("a launch template action")
}

async fn template(a: &AutoScaling) {
    let out = ec2(
        a,
        b"Action=CreateLaunchTemplate&Version=2016-11-15&LaunchTemplateName=lt1&LaunchTemplateData.InstanceType=t3.micro&LaunchTemplateData.UserData=ZWNobyBFQ1NfQ0xVU1RFUj1wcm9k",
    )
    .await
    .expect("created");
    assert!(
        out.contains("<launchTemplateName>lt1</launchTemplateName>"),
        "{out}"
    );
}

const CREATE: &str = "Action=CreateAutoScalingGroup&Version=2011-01-01&AutoScalingGroupName=g&LaunchTemplate.LaunchTemplateName=lt1&AvailabilityZones.member.1=us-east-1a&AvailabilityZones.member.2=us-east-1b";

#[tokio::test]
async fn create_refuses_what_aws_refuses() {
    let (_d, a) = service();
    template(&a).await;
    let err = call(&a, &format!("{CREATE}&MinSize=2&MaxSize=1"))
        .await
        .expect_err("refused");
    assert_eq!(
        err.to_string(),
        "Max bound, 1, must be greater than or equal to min bound, 2"
    );
    let err = call(
        &a,
        &format!("{CREATE}&MinSize=0&MaxSize=1&DesiredCapacity=3"),
    )
    .await
    .expect_err("refused");
    assert!(
        err.to_string()
            .starts_with("Desired capacity:3 must be between"),
        "{err}"
    );
    let no_lt = "Action=CreateAutoScalingGroup&Version=2011-01-01&AutoScalingGroupName=g&MinSize=0&MaxSize=1&AvailabilityZones.member.1=us-east-1a";
    assert!(matches!(
        call(&a, no_lt).await,
        Err(AutoScalingError::Validation(_))
    ));
    let unknown = CREATE.replace("lt1", "nope");
    let err = call(&a, &format!("{unknown}&MinSize=0&MaxSize=1"))
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("launch template"), "{err}");
    let no_zone = "Action=CreateAutoScalingGroup&Version=2011-01-01&AutoScalingGroupName=g&LaunchTemplate.LaunchTemplateName=lt1&MinSize=0&MaxSize=1";
    let err = call(&a, no_zone).await.expect_err("refused");
    assert_eq!(
        err.to_string(),
        "At least one Availability Zone or VPC Subnet is required."
    );
    call(&a, &format!("{CREATE}&MinSize=0&MaxSize=2"))
        .await
        .expect("created");
    assert!(matches!(
        call(&a, &format!("{CREATE}&MinSize=0&MaxSize=2")).await,
        Err(AutoScalingError::AlreadyExists(_))
    ));
    let above =
        "Action=SetDesiredCapacity&Version=2011-01-01&AutoScalingGroupName=g&DesiredCapacity=3";
    let err = call(&a, above).await.expect_err("refused");
    assert_eq!(
        err.to_string(),
        "New SetDesiredCapacity value 3 is above max value 2 for the AutoScalingGroup."
    );
}

#[tokio::test]
async fn the_controller_launches_to_desired_and_delete_needs_force() {
    let (_d, a) = service();
    template(&a).await;
    call(
        &a,
        &format!("{CREATE}&MinSize=0&MaxSize=3&DesiredCapacity=2"),
    )
    .await
    .expect("created");
    // Record-only machines: one round launches, the next sees them running.
    a.round().await.expect("round");
    a.round().await.expect("round");
    let g = a.group("g").await.expect("read").expect("group");
    assert_eq!(g.instances.len(), 2);
    assert!(g
        .instances
        .iter()
        .all(|i| i.lifecycle == Lifecycle::InService));
    assert!(g.instances.iter().all(|i| i.instance_type == "t3.micro"));
    let zones: Vec<&str> = g.instances.iter().map(|i| i.zone.as_str()).collect();
    assert_eq!(zones, ["us-east-1a", "us-east-1b"]);
    assert!(g.activities.iter().all(|x| x.status == "Successful"));
    let delete = "Action=DeleteAutoScalingGroup&Version=2011-01-01&AutoScalingGroupName=g";
    assert!(matches!(
        call(&a, delete).await,
        Err(AutoScalingError::ResourceInUse(_))
    ));
    call(&a, &format!("{delete}&ForceDelete=true"))
        .await
        .expect("deleting");
    a.round().await.expect("round");
    a.round().await.expect("round");
    a.round().await.expect("round");
    assert!(a.group("g").await.expect("read").is_none());
}

fn group_with(instances: &[(&str, &str, bool)]) -> StoredGroup {
    StoredGroup {
        name: "g".into(),
        arn: "arn".into(),
        min: 0,
        max: 5,
        desired: instances.len() as i32,
        template: crate::TemplateRef {
            id: "lt".into(),
            name: "lt".into(),
            version: "$Default".into(),
        },
        zones: vec!["z-a".into(), "z-b".into()],
        vpc_zone_identifier: None,
        new_instances_protected: false,
        default_cooldown: 300,
        health_check_type: "EC2".into(),
        health_check_grace_period: 0,
        termination_policies: vec!["Default".into()],
        target_group_arns: Vec::new(),
        tags: Vec::new(),
        created_ms: 0,
        deleting: false,
        instances: instances
            .iter()
            .enumerate()
            .map(|(n, (id, zone, protected))| crate::GroupInstance {
                id: (*id).into(),
                instance_type: "t3.micro".into(),
                zone: (*zone).into(),
                lifecycle: Lifecycle::InService,
                healthy: true,
                protected: *protected,
                template: None,
                launched_ms: n as i64,
                activity: None,
                action: None,
            })
            .collect(),
        activities: Vec::new(),
        pending_cause: None,
        hooks: Vec::new(),
    }
}

fn ids() -> impl FnMut(&str) -> String {
    let mut n = 0;
    move |kind| {
        n += 1;
        format!("{kind}-{n}")
    }
}

#[test]
fn scale_in_never_takes_a_protected_instance_and_balances_zones() {
    let mut g = group_with(&[
        ("i-1", "z-a", false),
        ("i-2", "z-a", false),
        ("i-3", "z-b", true),
    ]);
    g.desired = 1;
    plan_group(&mut g, &Observed::default(), 10, &mut ids());
    let leaving: Vec<&str> = g
        .instances
        .iter()
        .filter(|i| i.lifecycle == Lifecycle::Terminating)
        .map(|i| i.id.as_str())
        .collect();
    assert_eq!(leaving, ["i-1", "i-2"]);
    let mut g = group_with(&[("i-1", "z-a", true)]);
    g.desired = 0;
    plan_group(&mut g, &Observed::default(), 10, &mut ids());
    assert_eq!(g.instances[0].lifecycle, Lifecycle::InService);
}

#[test]
fn a_gone_machine_is_replaced_and_a_terminated_one_leaves() {
    let mut g = group_with(&[("i-1", "z-a", false)]);
    let mut seen = Observed::default();
    seen.states.insert("i-1".into(), MachineState::Gone);
    let launched = plan_group(&mut g, &seen, 10, &mut ids());
    assert_eq!(launched.len(), 1);
    assert_eq!(g.instances[0].lifecycle, Lifecycle::Terminating);
    assert!(!g.instances[0].healthy);
    let mut seen = Observed::default();
    seen.terminated.insert("i-1".into());
    plan_group(&mut g, &seen, 20, &mut ids());
    assert_eq!(g.instances.len(), 1);
    assert_eq!(g.instances[0].lifecycle, Lifecycle::Pending);
}

#[test]
fn termination_hooks_hold_an_instance_until_completed_or_timed_out() {
    let hook = |name: &str, result: &str| crate::LifecycleHook {
        name: name.into(),
        transition: "autoscaling:EC2_INSTANCE_TERMINATING".into(),
        heartbeat_timeout: 30,
        default_result: result.into(),
        metadata: None,
    };
    let mut g = group_with(&[("i-1", "z-a", false)]);
    g.hooks = vec![hook("drain", "CONTINUE"), hook("audit", "CONTINUE")];
    g.desired = 0;
    plan_group(&mut g, &Observed::default(), 1_000, &mut ids());
    assert_eq!(g.instances[0].lifecycle, Lifecycle::Terminating);
    // The next round holds it for both hooks.
    plan_group(&mut g, &Observed::default(), 2_000, &mut ids());
    assert_eq!(g.instances[0].lifecycle, Lifecycle::TerminatingWait);
    let action = g.instances[0].action.clone().expect("a lifecycle action");
    assert_eq!(action.pending.len(), 2);
    assert_eq!(action.pending[0].deadline_ms, 32_000);
    assert_eq!(action.pending[0].global_deadline_ms, 2_000 + 3_000_000);
    // One completed: still held by the other until its heartbeat timeout passes.
    if let Some(a) = g.instances[0].action.as_mut() {
        a.pending.retain(|p| p.hook != "drain");
    }
    plan_group(&mut g, &Observed::default(), 31_000, &mut ids());
    assert_eq!(g.instances[0].lifecycle, Lifecycle::TerminatingWait);
    plan_group(&mut g, &Observed::default(), 32_000, &mut ids());
    assert_eq!(g.instances[0].lifecycle, Lifecycle::TerminatingProceed);
    assert_eq!(g.instances[0].action, None);
    let mut seen = Observed::default();
    seen.terminated.insert("i-1".into());
    plan_group(&mut g, &seen, 33_000, &mut ids());
    assert!(g.instances.is_empty());
    // ABANDON on timeout releases the instance from every hook at once.
    let mut g = group_with(&[("i-2", "z-a", false)]);
    g.hooks = vec![hook("a", "ABANDON"), {
        let mut h = hook("b", "CONTINUE");
        h.heartbeat_timeout = 7200;
        h
    }];
    g.desired = 0;
    plan_group(&mut g, &Observed::default(), 0, &mut ids());
    plan_group(&mut g, &Observed::default(), 0, &mut ids());
    plan_group(&mut g, &Observed::default(), 30_000, &mut ids());
    assert_eq!(g.instances[0].lifecycle, Lifecycle::TerminatingProceed);
}

#[tokio::test]
async fn template_members_no_instance_acts_on_are_refused() {
    let (_d, a) = service();
    for (body, member) in [
        (&b"Action=CreateLaunchTemplate&Version=2016-11-15&LaunchTemplateName=ltk&LaunchTemplateData.InstanceType=t3.micro&LaunchTemplateData.KeyName=mine"[..], "KeyName"),
        (&b"Action=CreateLaunchTemplate&Version=2016-11-15&LaunchTemplateName=ltb&LaunchTemplateData.BlockDeviceMapping.1.DeviceName=%2Fdev%2Fxvda"[..], "BlockDeviceMapping"),
    ] {
        let err = ec2(&a, body).await.expect_err("refused");
        assert!(
            matches!(&err, AutoScalingError::Ec2("InvalidParameterValue", m) if m.contains(&format!("LaunchTemplateData.{member} is not supported"))),
            "{err:?}"
        );
    }
    let listed = a.templates().await.expect("templates");
    assert!(listed.is_empty(), "nothing stored: {listed:?}");
}

#[tokio::test]
async fn a_templates_security_group_ids_are_kept_and_described() {
    let (_d, a) = service();
    ec2(
        &a,
        b"Action=CreateLaunchTemplate&Version=2016-11-15&LaunchTemplateName=ltsg&LaunchTemplateData.InstanceType=t3.micro&LaunchTemplateData.SecurityGroupId.1=sg-0a&LaunchTemplateData.SecurityGroupId.2=sg-0b",
    )
    .await
    .expect("created");
    let out = ec2(
        &a,
        b"Action=DescribeLaunchTemplateVersions&Version=2016-11-15&LaunchTemplateName=ltsg",
    )
    .await
    .expect("described");
    assert!(
        out.contains(
            "<securityGroupIdSet><item>sg-0a</item><item>sg-0b</item></securityGroupIdSet>"
        ),
        "{out}"
    );
}
