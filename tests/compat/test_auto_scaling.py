"""EC2 Auto Scaling with real instances: launch templates and groups through boto3 and the
aws CLI; the server's `local` instance provider starts one `stevedore agent` process per
group instance, which joins the cluster its user data names with the resources of its
instance type. Needs Docker (fails under CI=true when it is missing, skips otherwise)."""
from __future__ import annotations

import base64
import time

import botocore.exceptions
import pytest

from agent_fixtures import IMAGE, agent_env, describe_task, register_family, run_task, wait_for
from conftest import make_client, unique

env = agent_env("autoscaling", "asg", agents=())


def clients(env):
    cfg = env["cfg"]
    return make_client(cfg, "autoscaling"), make_client(cfg, "ec2")


def launch_template(ec2, cluster: str, instance_type: str = "t3.medium",
                    groups: list[str] | None = None) -> str:
    user_data = f"#!/bin/bash\necho ECS_CLUSTER={cluster} >> /etc/ecs/ecs.config\n"
    name = unique("lt")
    data = {
        "InstanceType": instance_type,
        "ImageId": "ami-ecs-optimized",
        "UserData": base64.b64encode(user_data.encode()).decode(),
    }
    if groups:
        data["SecurityGroupIds"] = groups
    out = ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData=data)
    assert out["LaunchTemplate"]["LaunchTemplateName"] == name
    assert out["LaunchTemplate"]["LaunchTemplateId"].startswith("lt-")
    return name


def code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def test_group_validation_is_aws_shaped(env):
    asg, ec2 = clients(env)
    lt = launch_template(ec2, env["cluster"])
    described = ec2.describe_launch_templates(LaunchTemplateNames=[lt])["LaunchTemplates"]
    assert [t["LaunchTemplateName"] for t in described] == [lt]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_launch_template(LaunchTemplateName=lt, LaunchTemplateData={"InstanceType": "t3.micro"})
    assert code(e) == "InvalidLaunchTemplateName.AlreadyExistsException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_launch_template(LaunchTemplateName=unique("lt"),
                                   LaunchTemplateData={"SecurityGroups": ["default"]})
    assert code(e) == "InvalidParameterValue"
    assert "SecurityGroupIds" in str(e.value)
    # A member no instance here acts on is refused, not stored and ignored.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_launch_template(LaunchTemplateName=unique("lt"),
                                   LaunchTemplateData={"InstanceType": "t3.micro", "KeyName": "mine"})
    assert code(e) == "InvalidParameterValue"
    assert "LaunchTemplateData.KeyName is not supported" in str(e.value)
    zones = ["us-east-1a"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        asg.create_auto_scaling_group(AutoScalingGroupName=unique("g"), MinSize=2, MaxSize=1,
                                      LaunchTemplate={"LaunchTemplateName": lt}, AvailabilityZones=zones)
    assert code(e) == "ValidationError"
    assert "Max bound, 1, must be greater than or equal to min bound, 2" in str(e.value)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        asg.create_auto_scaling_group(AutoScalingGroupName=unique("g"), MinSize=0, MaxSize=1,
                                      LaunchTemplate={"LaunchTemplateName": "nope-nope"},
                                      AvailabilityZones=zones)
    assert code(e) == "ValidationError"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        asg.create_auto_scaling_group(AutoScalingGroupName=unique("g"), MinSize=0, MaxSize=1,
                                      AvailabilityZones=zones)
    assert code(e) == "ValidationError"
    name = unique("g")
    asg.create_auto_scaling_group(AutoScalingGroupName=name, MinSize=0, MaxSize=2,
                                  LaunchTemplate={"LaunchTemplateName": lt}, AvailabilityZones=zones)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        asg.create_auto_scaling_group(AutoScalingGroupName=name, MinSize=0, MaxSize=2,
                                      LaunchTemplate={"LaunchTemplateName": lt}, AvailabilityZones=zones)
    assert code(e) == "AlreadyExists"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=3)
    assert code(e) == "ValidationError"
    assert "above max value 2" in str(e.value)
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (0, 2, 0)
    assert group["AutoScalingGroupARN"].endswith(f":autoScalingGroupName/{name}")
    assert group["Instances"] == []
    asg.delete_auto_scaling_group(AutoScalingGroupName=name)
    assert asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"] == []


def in_service(asg, name: str) -> list[dict]:
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    return [i for i in group["Instances"] if i["LifecycleState"] == "InService"]


def test_group_instances_are_agents_that_join_the_cluster_from_user_data(env):
    aws, cluster = env["aws"], env["cluster"]
    asg, ec2 = clients(env)
    # The template's security groups reach its instances (the attribute ECS reads).
    group = ec2.create_security_group(GroupName=unique("inst"), Description="instances")["GroupId"]
    lt = launch_template(ec2, cluster, groups=[group])
    version = ec2.describe_launch_template_versions(LaunchTemplateName=lt)["LaunchTemplateVersions"][0]
    assert version["LaunchTemplateData"]["SecurityGroupIds"] == [group]
    name = unique("g")
    aws.run("autoscaling", "create-auto-scaling-group", "--auto-scaling-group-name", name,
            "--launch-template", f"LaunchTemplateName={lt}", "--min-size", "0", "--max-size", "3",
            "--desired-capacity", "2", "--availability-zones", "us-east-1a", "us-east-1b")
    try:
        instances = wait_for(lambda: len(v := in_service(asg, name)) == 2 and v, 60,
                             "two InService instances")
        ids = {i["InstanceId"] for i in instances}
        assert {i["AvailabilityZone"] for i in instances} == {"us-east-1a", "us-east-1b"}
        assert all(i["InstanceType"] == "t3.medium" for i in instances)

        def registered():
            arns = aws.run("ecs", "list-container-instances", "--cluster", cluster)["containerInstanceArns"]
            if len(arns) < 2:
                return None
            cis = aws.run("ecs", "describe-container-instances", "--cluster", cluster,
                          "--container-instances", *arns)["containerInstances"]
            return [c for c in cis if c.get("agentConnected")] if len(cis) == 2 else None

        cis = wait_for(lambda: (v := registered()) and len(v) == 2 and v, 60, "agents to register")
        assert {c["ec2InstanceId"] for c in cis} == ids
        for c in cis:
            attrs = {a["name"]: a.get("value") for a in c["attributes"]}
            assert attrs["ecs.instance-type"] == "t3.medium"
            assert attrs["stevedore.security-groups"] == group
            res = {r["name"]: r.get("integerValue") for r in c["registeredResources"]}
            assert (res["CPU"], res["MEMORY"]) == (2048, 4096)
        # Instances hold the group: it cannot be deleted under them.
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ec2.delete_security_group(GroupId=group)
        assert code(e) == "DependencyViolation"

        family = unique("sleep")
        register_family(aws, family, [{"name": "app", "image": IMAGE, "memory": 32, "essential": True}])
        arn = run_task(aws, cluster, family)
        wait_for(lambda: describe_task(aws, cluster, arn)["lastStatus"] == "RUNNING", 60, "task RUNNING")
        aws.run("ecs", "stop-task", "--cluster", cluster, "--task", arn)
        wait_for(lambda: describe_task(aws, cluster, arn)["lastStatus"] == "STOPPED", 60, "task STOPPED")

        asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=0)
        wait_for(lambda: asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])
                 ["AutoScalingGroups"][0]["Instances"] == [], 60, "the group to shrink to 0")
        activities = asg.describe_scaling_activities(AutoScalingGroupName=name)["Activities"]
        launched = [a for a in activities if a["Description"].startswith("Launching a new EC2 instance")]
        terminated = [a for a in activities if a["Description"].startswith("Terminating EC2 instance")]
        assert len(launched) == 2 and len(terminated) == 2
        assert all(a["StatusCode"] == "Successful" for a in launched + terminated)
        assert "changing the desired capacity from 2 to 0" in terminated[0]["Cause"]
    finally:
        asg.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
        wait_for(lambda: asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])
                 ["AutoScalingGroups"] == [], 60, "the group to be deleted")


def lifecycle_states(asg, name: str) -> dict[str, str]:
    groups = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    return {i["InstanceId"]: i["LifecycleState"] for g in groups for i in g["Instances"]}


def test_termination_lifecycle_hooks_hold_instances_until_completed(env):
    asg, ec2 = clients(env)
    lt = launch_template(ec2, env["cluster"], "t3.micro")
    name = unique("hooked")
    asg.create_auto_scaling_group(AutoScalingGroupName=name, MinSize=0, MaxSize=2, DesiredCapacity=1,
                                  LaunchTemplate={"LaunchTemplateName": lt}, AvailabilityZones=["us-east-1a"])
    try:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            asg.put_lifecycle_hook(LifecycleHookName="h", AutoScalingGroupName=name,
                                   LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
                                   HeartbeatTimeout=10)
        assert code(e) == "ValidationError"
        with pytest.raises(botocore.exceptions.ClientError) as e:
            asg.put_lifecycle_hook(LifecycleHookName="h", AutoScalingGroupName=name,
                                   LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
                                   DefaultResult="MAYBE")
        assert code(e) == "ValidationError"
        asg.put_lifecycle_hook(LifecycleHookName="drain", AutoScalingGroupName=name,
                               LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
                               HeartbeatTimeout=300, DefaultResult="CONTINUE", NotificationMetadata="m")
        hooks = asg.describe_lifecycle_hooks(AutoScalingGroupName=name)["LifecycleHooks"]
        assert hooks == [{"LifecycleHookName": "drain", "AutoScalingGroupName": name,
                          "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
                          "NotificationMetadata": "m", "HeartbeatTimeout": 300, "GlobalTimeout": 30000,
                          "DefaultResult": "CONTINUE"}]
        instance = wait_for(lambda: in_service(asg, name), 60, "one InService instance")[0]["InstanceId"]
        with pytest.raises(botocore.exceptions.ClientError) as e:
            asg.complete_lifecycle_action(LifecycleHookName="drain", AutoScalingGroupName=name,
                                          LifecycleActionResult="CONTINUE", InstanceId=instance)
        assert "No active Lifecycle Action found with instance ID" in str(e.value)
        asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=0)
        wait_for(lambda: lifecycle_states(asg, name).get(instance) == "Terminating:Wait", 30,
                 "the instance held in Terminating:Wait")
        asg.record_lifecycle_action_heartbeat(LifecycleHookName="drain", AutoScalingGroupName=name,
                                              InstanceId=instance)
        # Held: its agent still runs and the instance stays in the group.
        time.sleep(2)
        assert lifecycle_states(asg, name) == {instance: "Terminating:Wait"}
        asg.complete_lifecycle_action(LifecycleHookName="drain", AutoScalingGroupName=name,
                                      LifecycleActionResult="CONTINUE", InstanceId=instance)
        wait_for(lambda: lifecycle_states(asg, name) == {}, 60, "the instance to be terminated")
        asg.delete_lifecycle_hook(LifecycleHookName="drain", AutoScalingGroupName=name)
        assert asg.describe_lifecycle_hooks(AutoScalingGroupName=name)["LifecycleHooks"] == []
        with pytest.raises(botocore.exceptions.ClientError) as e:
            asg.delete_lifecycle_hook(LifecycleHookName="drain", AutoScalingGroupName=name)
        assert code(e) == "ValidationError"
    finally:
        asg.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
        wait_for(lambda: asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"] == [],
                 60, "the group to be deleted")
