"""ECS capacity providers over Auto Scaling groups of real `local` instances (one
`stevedore agent` process each): the provider API and its AWS errors, then managed
scaling with managed termination protection and draining shrinking a group to what its
tasks need, publishing CapacityProviderReservation; tasks that fit nowhere waiting in
PROVISIONING while the group grows from zero for them, and stopping with ECS's reason
after ECS's timeout (30 minutes, 30 s here). The server runs 60× faster
(`--time-scale 60`: managed scaling evaluates every second). Needs Docker."""
from __future__ import annotations

import base64
import time

import botocore.exceptions
import pytest

from agent_fixtures import IMAGE, agent_env, describe_task, register_family, wait_for
from conftest import make_client, unique

env = agent_env("capacity", "cap", agents=(), server_env={"STEVEDORE_TIME_SCALE": "60"})


def clients(env):
    cfg = env["cfg"]
    return make_client(cfg, "ecs"), make_client(cfg, "autoscaling"), make_client(cfg, "ec2")


def group(env, desired: int, protect: bool, max_size: int = 3) -> tuple[str, str]:
    ecs, asg, ec2 = clients(env)
    user_data = f"#!/bin/bash\necho ECS_CLUSTER={env['cluster']} >> /etc/ecs/ecs.config\n"
    lt = unique("lt")
    ec2.create_launch_template(LaunchTemplateName=lt, LaunchTemplateData={
        "InstanceType": "t3.small", "UserData": base64.b64encode(user_data.encode()).decode()})
    name = unique("asg")
    asg.create_auto_scaling_group(AutoScalingGroupName=name, MinSize=0, MaxSize=max_size,
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


def test_tasks_wait_in_provisioning_while_the_group_grows_from_zero(env):
    ecs, asg, _ = clients(env)
    cw = make_client(env["cfg"], "cloudwatch")
    aws, cluster = env["aws"], env["cluster"]
    name, arn = group(env, 0, protect=True)
    cp = unique("cp")
    ecs.create_capacity_provider(name=cp, autoScalingGroupProvider={
        "autoScalingGroupArn": arn, "managedTerminationProtection": "ENABLED",
        "managedScaling": {"status": "ENABLED", "targetCapacity": 100, "instanceWarmupPeriod": 0}})
    arns: list[str] = []
    try:
        ecs.put_cluster_capacity_providers(cluster=cluster, capacityProviders=[cp],
                                           defaultCapacityProviderStrategy=[{"capacityProvider": cp, "weight": 1}])
        family = unique("big")
        # 1,500 MiB each: a t3.small (2,048 MiB) holds one, so two tasks need two instances.
        register_family(aws, family, [{"name": "app", "image": IMAGE, "memoryReservation": 1500,
                                       "essential": True}])
        started = time.time()
        run = ecs.run_task(cluster=cluster, taskDefinition=family, count=2,
                           capacityProviderStrategy=[{"capacityProvider": cp, "weight": 1}])
        assert run["failures"] == []
        arns[:] = [t["taskArn"] for t in run["tasks"]]
        assert len(arns) == 2
        for t in run["tasks"]:
            assert t["lastStatus"] == "PROVISIONING" and t["desiredStatus"] == "RUNNING"
            assert "containerInstanceArn" not in t and t["capacityProviderName"] == cp
        assert group_instances(asg, name) == []
        # Managed scaling sees M=2, N=0 (200%) and grows the group; the agents register
        # from the user data and the waiting tasks are placed, one per instance.
        wait_for(lambda: all(describe_task(aws, cluster, a)["lastStatus"] == "RUNNING" for a in arns),
                 120, "both tasks RUNNING")
        tasks = [describe_task(aws, cluster, a) for a in arns]
        assert len({t["containerInstanceArn"] for t in tasks}) == 2
        assert all(t["capacityProviderName"] == cp for t in tasks)
        assert len(group_instances(asg, name)) == 2
        stats = cw.get_metric_statistics(
            Namespace="AWS/ECS/ManagedScaling", MetricName="CapacityProviderReservation",
            Dimensions=[{"Name": "CapacityProviderName", "Value": cp}, {"Name": "ClusterName", "Value": cluster}],
            StartTime=started - 120, EndTime=time.time() + 60,
            Period=60, Statistics=["Maximum"])["Datapoints"]
        assert max(d["Maximum"] for d in stats) == 200.0
        for a in arns:
            ecs.stop_task(cluster=cluster, task=a)
        wait_for(lambda: group_instances(asg, name) == [], 90, "the group to shrink to 0")
    finally:
        # Draining moves no standalone task: stop them before the group goes.
        for a in arns:
            ecs.stop_task(cluster=cluster, task=a)
        ecs.put_cluster_capacity_providers(cluster=cluster, capacityProviders=[],
                                           defaultCapacityProviderStrategy=[])
        asg.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
        wait_for(lambda: asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"] == [],
                 60, "the group to be deleted")


def test_a_task_that_never_finds_capacity_stops_after_the_timeout(env):
    ecs, asg, _ = clients(env)
    aws = env["aws"]
    cluster = unique("cpwait")
    ecs.create_cluster(clusterName=cluster)
    name, arn = group(env, 0, protect=False, max_size=0)
    cp = unique("cp")
    ecs.create_capacity_provider(name=cp, autoScalingGroupProvider={
        "autoScalingGroupArn": arn, "managedScaling": {"status": "ENABLED", "targetCapacity": 100}})
    try:
        ecs.put_cluster_capacity_providers(cluster=cluster, capacityProviders=[cp],
                                           defaultCapacityProviderStrategy=[{"capacityProvider": cp, "weight": 1}])
        family = unique("wait")
        register_family(aws, family, [{"name": "app", "image": IMAGE, "memory": 32, "essential": True}])
        # The cluster's default strategy applies when RunTask names neither.
        run = ecs.run_task(cluster=cluster, taskDefinition=family)
        assert run["failures"] == [] and run["tasks"][0]["lastStatus"] == "PROVISIONING"
        task = run["tasks"][0]["taskArn"]
        assert ecs.list_tasks(cluster=cluster)["taskArns"] == [task]
        # A group that cannot grow: after ECS's 30 minutes (30 s at 60x) the task stops.
        stopped = wait_for(lambda: (t := describe_task(aws, cluster, task))["lastStatus"] == "STOPPED" and t,
                           75, "the waiting task to stop")
        assert stopped["stopCode"] == "TaskFailedToStart"
        assert stopped["stoppedReason"] == "TaskFailedToStart: EMPTY CAPACITY PROVIDER"
        assert ecs.list_tasks(cluster=cluster)["taskArns"] == []
        # StopTask ends a wait at once.
        again = ecs.run_task(cluster=cluster, taskDefinition=family)["tasks"][0]["taskArn"]
        ecs.stop_task(cluster=cluster, task=again, reason="no longer needed")
        gone = describe_task(aws, cluster, again)
        assert gone["lastStatus"] == "STOPPED" and gone["stoppedReason"] == "no longer needed"
    finally:
        ecs.put_cluster_capacity_providers(cluster=cluster, capacityProviders=[],
                                           defaultCapacityProviderStrategy=[])
        asg.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)


def test_update_service_switches_between_launch_type_and_strategies(env):
    ecs, asg, _ = clients(env)
    aws = env["aws"]
    cluster = unique("cpsvc")
    ecs.create_cluster(clusterName=cluster)
    name, arn = group(env, 0, protect=False, max_size=0)
    cp = unique("cp")
    ecs.create_capacity_provider(name=cp, autoScalingGroupProvider={
        "autoScalingGroupArn": arn, "managedScaling": {"status": "ENABLED", "targetCapacity": 100}})
    strategy = [{"capacityProvider": cp, "weight": 1, "base": 0}]
    try:
        ecs.put_cluster_capacity_providers(cluster=cluster, capacityProviders=[cp, "FARGATE"],
                                           defaultCapacityProviderStrategy=[])
        family = unique("svc")
        register_family(aws, family, [{"name": "app", "image": IMAGE, "memory": 32, "essential": True}])
        svc = unique("web")
        made = ecs.create_service(cluster=cluster, serviceName=svc, taskDefinition=family,
                                  desiredCount=1, launchType="EC2")["service"]
        assert made["launchType"] == "EC2"
        # No instance: an EC2 launch type service cannot place its task.
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ecs.update_service(cluster=cluster, service=svc, capacityProviderStrategy=strategy)
        assert code(e) == "InvalidParameterException" and "must force a new deployment" in str(e.value)
        moved = ecs.update_service(cluster=cluster, service=svc, capacityProviderStrategy=strategy,
                                   forceNewDeployment=True)["service"]
        assert "launchType" not in moved and moved["capacityProviderStrategy"] == strategy
        primary = [d for d in moved["deployments"] if d["status"] == "PRIMARY"]
        assert primary[0]["capacityProviderStrategy"] == strategy and "launchType" not in primary[0]
        # The new deployment's task waits for the group, PROVISIONING, counted as pending;
        # the service does not start another while it waits.
        task = wait_for(lambda: ecs.list_tasks(cluster=cluster, serviceName=svc)["taskArns"], 30,
                        "the service's task")[0]
        described = describe_task(aws, cluster, task)
        assert described["lastStatus"] == "PROVISIONING" and described["capacityProviderName"] == cp
        wait_for(lambda: ecs.describe_services(cluster=cluster, services=[svc])["services"][0]["pendingCount"] == 1,
                 30, "pendingCount 1")
        assert ecs.list_tasks(cluster=cluster, serviceName=svc)["taskArns"] == [task]
        # A Fargate strategy needs an awsvpc definition, as AWS checks.
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ecs.update_service(cluster=cluster, service=svc, forceNewDeployment=True,
                               capacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}])
        assert code(e) in ("InvalidParameterException", "ClientException")
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ecs.update_service(cluster=cluster, service=svc, forceNewDeployment=True,
                               capacityProviderStrategy=[{"capacityProvider": cp, "weight": 1},
                                                         {"capacityProvider": "FARGATE", "weight": 1}])
        assert "mix of capacity providers" in str(e.value)
        # An empty strategy returns the service to the launch type it was created with.
        back = ecs.update_service(cluster=cluster, service=svc, capacityProviderStrategy=[],
                                  forceNewDeployment=True)["service"]
        assert back["launchType"] == "EC2" and "capacityProviderStrategy" not in back
        # A service created with a strategy has no launch type to return to.
        other = unique("web")
        ecs.create_service(cluster=cluster, serviceName=other, taskDefinition=family, desiredCount=0,
                           capacityProviderStrategy=strategy)
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ecs.update_service(cluster=cluster, service=other, capacityProviderStrategy=[],
                               forceNewDeployment=True)
        assert "No launch type to fall back to" in str(e.value)
        for s in (svc, other):
            ecs.delete_service(cluster=cluster, service=s, force=True)
    finally:
        ecs.put_cluster_capacity_providers(cluster=cluster, capacityProviders=[],
                                           defaultCapacityProviderStrategy=[])
        asg.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
