"""ECS capacity providers over Auto Scaling groups of real `local` instances (one
`stevedore agent` process each): the provider API and its AWS errors, then managed
scaling with managed termination protection and draining shrinking a group to what its
tasks need, publishing CapacityProviderReservation. The server runs 60× faster
(`--time-scale 60`: managed scaling evaluates every second). Needs Docker."""
from __future__ import annotations

import base64

import botocore.exceptions
import pytest

from agent_fixtures import IMAGE, agent_env, describe_task, register_family, wait_for
from conftest import make_client, unique

env = agent_env("capacity", "cap", agents=(), server_env={"STEVEDORE_TIME_SCALE": "60"})


def clients(env):
    cfg = env["cfg"]
    return make_client(cfg, "ecs"), make_client(cfg, "autoscaling"), make_client(cfg, "ec2")


def group(env, desired: int, protect: bool) -> tuple[str, str]:
    ecs, asg, ec2 = clients(env)
    user_data = f"#!/bin/bash\necho ECS_CLUSTER={env['cluster']} >> /etc/ecs/ecs.config\n"
    lt = unique("lt")
    ec2.create_launch_template(LaunchTemplateName=lt, LaunchTemplateData={
        "InstanceType": "t3.small", "UserData": base64.b64encode(user_data.encode()).decode()})
    name = unique("asg")
    asg.create_auto_scaling_group(AutoScalingGroupName=name, MinSize=0, MaxSize=3,
                                  DesiredCapacity=desired, LaunchTemplate={"LaunchTemplateName": lt},
                                  AvailabilityZones=["us-east-1a"],
                                  NewInstancesProtectedFromScaleIn=protect)
    arn = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0][
        "AutoScalingGroupARN"]
    return name, arn


def code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def test_provider_api_and_its_errors(env):
    ecs, asg, _ = clients(env)
    name, arn = group(env, 0, protect=False)
    cluster = unique("cpapi")
    ecs.create_cluster(clusterName=cluster)
    for bad in ("ecs-x", "AWSthing", "fargate2"):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ecs.create_capacity_provider(name=bad, autoScalingGroupProvider={"autoScalingGroupArn": arn})
        assert code(e) == "ClientException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.create_capacity_provider(name=unique("cp"), autoScalingGroupProvider={
            "autoScalingGroupArn": arn + "x"})
    assert code(e) == "ClientException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.create_capacity_provider(name=unique("cp"), autoScalingGroupProvider={
            "autoScalingGroupArn": arn, "managedTerminationProtection": "ENABLED",
            "managedScaling": {"status": "ENABLED"}})
    assert code(e) == "ClientException"
    assert "managed termination protection" in str(e.value)
    cp = unique("cp")
    made = ecs.create_capacity_provider(name=cp, autoScalingGroupProvider={"autoScalingGroupArn": arn})[
        "capacityProvider"]
    assert made["status"] == "ACTIVE" and made["type"] == "EC2_AUTOSCALING"
    assert made["capacityProviderArn"].endswith(f":capacity-provider/{cp}")
    provider = made["autoScalingGroupProvider"]
    assert provider["managedScaling"] == {"status": "DISABLED", "targetCapacity": 100,
                                          "minimumScalingStepSize": 1,
                                          "maximumScalingStepSize": 10000,
                                          "instanceWarmupPeriod": 300}
    assert provider["managedTerminationProtection"] == "DISABLED"
    assert provider["managedDraining"] == "ENABLED"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.create_capacity_provider(name=unique("cp"), autoScalingGroupProvider={"autoScalingGroupArn": arn})
    assert code(e) == "ClientException"
    listed = ecs.describe_capacity_providers()["capacityProviders"]
    names = [p["name"] for p in listed]
    assert names[:2] == ["FARGATE", "FARGATE_SPOT"] and cp in names
    missing = ecs.describe_capacity_providers(capacityProviders=["nope"])
    assert missing["capacityProviders"] == [] and missing["failures"][0]["reason"] == "MISSING"
    ecs.put_cluster_capacity_providers(cluster=cluster, capacityProviders=[cp, "FARGATE"],
                                       defaultCapacityProviderStrategy=[{"capacityProvider": cp, "weight": 1}])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.put_cluster_capacity_providers(
            cluster=cluster, capacityProviders=[cp, "FARGATE"],
            defaultCapacityProviderStrategy=[{"capacityProvider": cp, "weight": 1},
                                             {"capacityProvider": "FARGATE", "weight": 1}])
    assert "mix of capacity providers" in str(e.value)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.delete_capacity_provider(capacityProvider=cp)
    assert code(e) == "ClientException"
    updated = ecs.update_capacity_provider(name=cp, autoScalingGroupProvider={
        "managedScaling": {"status": "ENABLED", "targetCapacity": 80}})["capacityProvider"]
    assert updated["autoScalingGroupProvider"]["managedScaling"]["targetCapacity"] == 80
    assert updated["updateStatus"] == "UPDATE_COMPLETE"
    ecs.put_cluster_capacity_providers(cluster=cluster, capacityProviders=[],
                                       defaultCapacityProviderStrategy=[])
    gone = ecs.delete_capacity_provider(capacityProvider=cp)["capacityProvider"]
    assert gone["status"] == "INACTIVE"
    asg.delete_auto_scaling_group(AutoScalingGroupName=name)


def group_instances(asg, name: str) -> list[dict]:
    return asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0][
        "Instances"]


def test_managed_scaling_shrinks_the_group_to_its_tasks_without_killing_one(env):
    ecs, asg, _ = clients(env)
    cw = make_client(env["cfg"], "cloudwatch")
    aws, cluster = env["aws"], env["cluster"]
    name, arn = group(env, 2, protect=True)
    cp = unique("cp")
    ecs.create_capacity_provider(name=cp, autoScalingGroupProvider={
        "autoScalingGroupArn": arn, "managedTerminationProtection": "ENABLED",
        "managedScaling": {"status": "ENABLED", "targetCapacity": 100, "instanceWarmupPeriod": 0}})
    try:
        # Two instances join before the provider manages the cluster's capacity.
        wait_for(lambda: sum(1 for i in group_instances(asg, name) if i["LifecycleState"] == "InService") == 2,
                 60, "two InService instances")
        wait_for(lambda: len(ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]) == 2,
                 60, "two container instances")
        family = unique("sleep")
        register_family(aws, family, [{"name": "app", "image": IMAGE, "memory": 32, "essential": True}])
        ecs.put_cluster_capacity_providers(cluster=cluster, capacityProviders=[cp],
                                           defaultCapacityProviderStrategy=[{"capacityProvider": cp, "weight": 1}])
        run = ecs.run_task(cluster=cluster, taskDefinition=family,
                           capacityProviderStrategy=[{"capacityProvider": cp, "weight": 1}])
        assert run["failures"] == []
        task_arn = run["tasks"][0]["taskArn"]
        wait_for(lambda: describe_task(aws, cluster, task_arn)["lastStatus"] == "RUNNING", 60, "task RUNNING")
        busy = ecs.describe_container_instances(
            cluster=cluster, containerInstances=[run["tasks"][0]["containerInstanceArn"]]
        )["containerInstances"][0]["ec2InstanceId"]
        # One instance is enough: the idle one goes, the busy one stays protected.
        left = wait_for(lambda: len(v := group_instances(asg, name)) == 1 and v, 60, "the group to shrink to 1")
        assert left[0]["InstanceId"] == busy and left[0]["ProtectedFromScaleIn"] is True
        assert describe_task(aws, cluster, task_arn)["lastStatus"] == "RUNNING"
        metrics = cw.list_metrics(Namespace="AWS/ECS/ManagedScaling")["Metrics"]
        assert any(m["MetricName"] == "CapacityProviderReservation"
                   and {"Name": "CapacityProviderName", "Value": cp} in m["Dimensions"] for m in metrics)
        # With its task stopped, the last instance is released and goes too.
        ecs.stop_task(cluster=cluster, task=task_arn)
        wait_for(lambda: describe_task(aws, cluster, task_arn)["lastStatus"] == "STOPPED", 60, "task STOPPED")
        wait_for(lambda: group_instances(asg, name) == [], 60, "the group to shrink to 0")
        wait_for(lambda: ecs.list_container_instances(cluster=cluster)["containerInstanceArns"] == [], 30,
                 "the container instances to be deregistered")
    finally:
        ecs.put_cluster_capacity_providers(cluster=cluster, capacityProviders=[],
                                           defaultCapacityProviderStrategy=[])
        asg.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
        wait_for(lambda: asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"] == [],
                 60, "the group to be deleted")
