"""Auto Scaling group capacity providers and their instances, with real `local`
instances (one `stevedore agent` process each) and real containers: a strategy's tasks
run only on instances its providers' groups launched (never on an instance registered by
hand, nor on another provider's); a forced group delete while a standalone task runs
completes (the task stops as on a terminated host, its containers go) and the cluster
can then be deleted; before that, DeleteCluster answers AWS's error at once. The server
runs 60x faster (`--time-scale 60`). Needs Docker."""
from __future__ import annotations

import base64
import time

import botocore.exceptions
import pytest

from agent_fixtures import (IMAGE, agent_env, connected_instances, containers, describe_task,
                            register_family, wait_for)
from conftest import make_client, unique

TASK_ARN_LABEL = "com.amazonaws.ecs.task-arn"

# One agent registered by hand in the module's cluster: never eligible for a strategy.
env = agent_env("capgroups", "capg", server_env={"STEVEDORE_TIME_SCALE": "60"})


def clients(env):
    cfg = env["cfg"]
    return make_client(cfg, "ecs"), make_client(cfg, "autoscaling"), make_client(cfg, "ec2")


def make_group(env, cluster: str, desired: int) -> tuple[str, str]:
    _, asg, ec2 = clients(env)
    user_data = f"#!/bin/bash\necho ECS_CLUSTER={cluster} >> /etc/ecs/ecs.config\n"
    lt = unique("lt")
    ec2.create_launch_template(LaunchTemplateName=lt, LaunchTemplateData={
        "InstanceType": "t3.small", "UserData": base64.b64encode(user_data.encode()).decode()})
    name = unique("asg")
    asg.create_auto_scaling_group(AutoScalingGroupName=name, MinSize=0, MaxSize=2,
                                  DesiredCapacity=desired, LaunchTemplate={"LaunchTemplateName": lt},
                                  AvailabilityZones=["us-east-1a"])
    arn = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0][
        "AutoScalingGroupARN"]
    return name, arn


def group_instances(asg, name: str) -> list[dict]:
    groups = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    return groups[0]["Instances"] if groups else []


def registered_ec2_ids(ecs, cluster: str) -> set[str]:
    arns = ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
    if not arns:
        return set()
    described = ecs.describe_container_instances(cluster=cluster, containerInstances=arns)
    return {i.get("ec2InstanceId", "") for i in described["containerInstances"]}


def force_delete(asg, name: str) -> None:
    asg.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
    wait_for(lambda: asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"] == [],
             60, f"group {name} to be deleted")


def test_a_strategys_tasks_run_only_on_its_providers_group_instances(env):
    ecs, asg, _ = clients(env)
    aws, cluster = env["aws"], env["cluster"]
    by_hand = connected_instances(aws, cluster)
    assert len(by_hand) == 1
    hand_arn = by_hand[0]["containerInstanceArn"]
    groups = {k: make_group(env, cluster, d) for k, d in (("a", 1), ("b", 1), ("empty", 0))}
    providers = {k: unique(f"cp{k}") for k in groups}
    for k, (_, arn) in groups.items():
        ecs.create_capacity_provider(name=providers[k], autoScalingGroupProvider={"autoScalingGroupArn": arn})
    arns: list[str] = []
    services: list[str] = []
    try:
        ecs.put_cluster_capacity_providers(cluster=cluster, capacityProviders=list(providers.values()),
                                           defaultCapacityProviderStrategy=[])
        members = {}
        for k in ("a", "b"):
            name = groups[k][0]
            ids = wait_for(lambda: [i["InstanceId"] for i in group_instances(asg, name)
                                    if i["LifecycleState"] == "InService"], 60, f"group {k} InService")
            members[k] = set(ids)
        wait_for(lambda: members["a"] | members["b"] <= registered_ec2_ids(ecs, cluster), 60,
                 "both group instances registered")
        family = unique("small")
        register_family(aws, family, [{"name": "app", "image": IMAGE, "memory": 32, "essential": True}])

        def placed_on(task: dict) -> str:
            ci = ecs.describe_container_instances(cluster=cluster,
                                                  containerInstances=[task["containerInstanceArn"]])
            return ci["containerInstances"][0].get("ec2InstanceId", "")

        for k in ("a", "b"):
            # Four small tasks fit anywhere, the hand-registered instance included; all
            # go to the instance of the named provider's group.
            run = ecs.run_task(cluster=cluster, taskDefinition=family, count=4,
                               capacityProviderStrategy=[{"capacityProvider": providers[k], "weight": 1}])
            assert run["failures"] == [] and len(run["tasks"]) == 4
            arns += [t["taskArn"] for t in run["tasks"]]
            for t in run["tasks"]:
                assert t["capacityProviderName"] == providers[k]
                assert t["containerInstanceArn"] != hand_arn
                assert placed_on(t) in members[k]
        # Weights over two providers: each provider's share lands on its own group.
        run = ecs.run_task(cluster=cluster, taskDefinition=family, count=4,
                           capacityProviderStrategy=[{"capacityProvider": providers["a"], "weight": 1, "base": 1},
                                                     {"capacityProvider": providers["b"], "weight": 1}])
        assert run["failures"] == [] and len(run["tasks"]) == 4
        arns += [t["taskArn"] for t in run["tasks"]]
        shares = {k: 0 for k in ("a", "b")}
        for t in run["tasks"]:
            k = "a" if t["capacityProviderName"] == providers["a"] else "b"
            shares[k] += 1
            assert placed_on(t) in members[k]
        assert shares["a"] >= 2 and shares["b"] >= 1
        wait_for(lambda: all(describe_task(aws, cluster, a)["lastStatus"] == "RUNNING" for a in arns),
                 90, "every placed task RUNNING")
        # A service scaled out one task at a time still follows its weights: the split
        # counts the tasks each provider already runs for it.
        svc = unique("split")
        services.append(svc)
        ecs.create_service(cluster=cluster, serviceName=svc, taskDefinition=family, desiredCount=1,
                           capacityProviderStrategy=[{"capacityProvider": providers["a"], "weight": 1},
                                                     {"capacityProvider": providers["b"], "weight": 1}])

        def service_providers() -> list[str]:
            listed = ecs.list_tasks(cluster=cluster, serviceName=svc)["taskArns"]
            tasks = ecs.describe_tasks(cluster=cluster, tasks=listed)["tasks"] if listed else []
            return sorted(t["capacityProviderName"] for t in tasks if t.get("containerInstanceArn"))

        wait_for(lambda: len(service_providers()) == 1, 60, "the service's first task placed")
        ecs.update_service(cluster=cluster, service=svc, desiredCount=2)
        wait_for(lambda: len(service_providers()) == 2, 60, "the service's second task placed")
        assert service_providers() == sorted([providers["a"], providers["b"]])
        # A provider whose group has no instance: its task waits, though the instance
        # registered by hand (and the other groups' instances) have room.
        run = ecs.run_task(cluster=cluster, taskDefinition=family,
                           capacityProviderStrategy=[{"capacityProvider": providers["empty"], "weight": 1}])
        assert run["failures"] == []
        waiting = run["tasks"][0]
        arns.append(waiting["taskArn"])
        assert waiting["lastStatus"] == "PROVISIONING" and "containerInstanceArn" not in waiting
        # The placement pass (every second) does not move it onto another instance.
        time.sleep(3)
        still = describe_task(aws, cluster, waiting["taskArn"])
        assert still["lastStatus"] == "PROVISIONING" and "containerInstanceArn" not in still
        # The hand-registered instance ran none of them.
        assert ecs.list_tasks(cluster=cluster, containerInstance=hand_arn)["taskArns"] == []
    finally:
        for svc in services:
            ecs.delete_service(cluster=cluster, service=svc, force=True)
        for a in arns:
            ecs.stop_task(cluster=cluster, task=a)
        ecs.put_cluster_capacity_providers(cluster=cluster, capacityProviders=[],
                                           defaultCapacityProviderStrategy=[])
        for name, _ in groups.values():
            force_delete(asg, name)
        for p in providers.values():
            ecs.delete_capacity_provider(capacityProvider=p)


def test_force_deleting_a_group_with_a_standalone_task_running_completes(env):
    ecs, asg, _ = clients(env)
    aws = env["aws"]
    cluster = unique("capdel")
    ecs.create_cluster(clusterName=cluster)
    name, arn = make_group(env, cluster, 1)
    cp = unique("cp")
    # Managed draining is on (the default): a forced delete still does not wait for it.
    made = ecs.create_capacity_provider(name=cp, autoScalingGroupProvider={"autoScalingGroupArn": arn})
    assert made["capacityProvider"]["autoScalingGroupProvider"]["managedDraining"] == "ENABLED"
    ecs.put_cluster_capacity_providers(cluster=cluster, capacityProviders=[cp],
                                       defaultCapacityProviderStrategy=[{"capacityProvider": cp, "weight": 1}])
    instance = wait_for(lambda: [i["InstanceId"] for i in group_instances(asg, name)
                                 if i["LifecycleState"] == "InService"], 60, "an InService instance")[0]
    wait_for(lambda: instance in registered_ec2_ids(ecs, cluster), 60, "the instance registered")
    family = unique("standalone")
    register_family(aws, family, [{"name": "app", "image": IMAGE, "memory": 32, "essential": True}])
    task = ecs.run_task(cluster=cluster, taskDefinition=family)["tasks"][0]["taskArn"]
    wait_for(lambda: describe_task(aws, cluster, task)["lastStatus"] == "RUNNING", 60, "the task RUNNING")
    assert len(containers(f"{TASK_ARN_LABEL}={task}")) == 1
    # DeleteCluster answers at once while the instance is registered.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.delete_cluster(cluster=cluster)
    assert e.value.response["Error"]["Code"] == "ClusterContainsContainerInstancesException"
    # Without ForceDelete the group refuses; with it, it goes without waiting for the
    # task: the instance is terminated, and its task with it.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        asg.delete_auto_scaling_group(AutoScalingGroupName=name)
    assert e.value.response["Error"]["Code"] == "ResourceInUse"
    force_delete(asg, name)
    stopped = wait_for(lambda: (t := describe_task(aws, cluster, task))["lastStatus"] == "STOPPED" and t,
                       30, "the task STOPPED")
    assert stopped["stoppedReason"] == f"Host EC2 (instance {instance}) stopped/terminated."
    assert containers(f"{TASK_ARN_LABEL}={task}") == []
    assert ecs.list_container_instances(cluster=cluster)["containerInstanceArns"] == []
    assert ecs.list_tasks(cluster=cluster)["taskArns"] == []
    gone = ecs.delete_cluster(cluster=cluster)["cluster"]
    assert gone["status"] == "INACTIVE"
    assert ecs.delete_capacity_provider(capacityProvider=cp)["capacityProvider"]["status"] == "INACTIVE"


def running_containers(label: str) -> int:
    return len(containers(label, all_=False))


def test_managed_draining_moves_service_tasks_before_the_instance_terminates(env):
    ecs, asg, _ = clients(env)
    aws = env["aws"]
    cluster = unique("capdrain")
    ecs.create_cluster(clusterName=cluster)
    name, arn = make_group(env, cluster, 2)
    cp = unique("cp")
    ecs.create_capacity_provider(name=cp, autoScalingGroupProvider={"autoScalingGroupArn": arn})
    svc = unique("web")
    try:
        # ECS owns a termination hook on the group of a provider with managed draining.
        hooks = asg.describe_lifecycle_hooks(AutoScalingGroupName=name)["LifecycleHooks"]
        assert [(h["LifecycleHookName"], h["LifecycleTransition"], h["DefaultResult"]) for h in hooks] == [
            ("ecs-managed-draining-termination-hook", "autoscaling:EC2_INSTANCE_TERMINATING", "CONTINUE")]
        ecs.put_cluster_capacity_providers(cluster=cluster, capacityProviders=[cp],
                                           defaultCapacityProviderStrategy=[{"capacityProvider": cp, "weight": 1}])
        ids = wait_for(lambda: len(v := [i["InstanceId"] for i in group_instances(asg, name)
                                         if i["LifecycleState"] == "InService"]) == 2 and v,
                       60, "two InService instances")
        wait_for(lambda: set(ids) <= registered_ec2_ids(ecs, cluster), 60, "both instances registered")
        family = unique("svc")
        register_family(aws, family, [{"name": "app", "image": IMAGE, "memory": 32, "essential": True,
                                       "stopTimeout": 2}])
        family_label = f"com.amazonaws.ecs.task-definition-family={family}"
        ecs.create_service(cluster=cluster, serviceName=svc, taskDefinition=family, desiredCount=2,
                           capacityProviderStrategy=[{"capacityProvider": cp, "weight": 1}],
                           placementStrategy=[{"type": "spread", "field": "instanceId"}])
        wait_for(lambda: running_containers(family_label) == 2
                 and ecs.describe_services(cluster=cluster, services=[svc])["services"][0]["runningCount"] == 2,
                 90, "the service's two tasks running")
        first = ecs.list_tasks(cluster=cluster, serviceName=svc)["taskArns"]
        # Scale in by one: the instance leaving is held by ECS's hook, set DRAINING; the
        # service starts its task elsewhere before stopping the old one; then the hook
        # is completed and the instance terminates.
        asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=1)
        seen_wait, seen_draining, fewest = False, False, 2
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            instances = group_instances(asg, name)
            seen_wait |= any(i["LifecycleState"] == "Terminating:Wait" for i in instances)
            arns = ecs.list_container_instances(cluster=cluster, status="DRAINING")["containerInstanceArns"]
            seen_draining |= bool(arns)
            fewest = min(fewest, running_containers(family_label))
            if len(instances) == 1 and instances[0]["LifecycleState"] == "InService":
                break
            time.sleep(0.3)
        else:
            raise AssertionError(f"the group did not shrink to 1: {group_instances(asg, name)}")
        assert seen_wait and seen_draining
        # No service task was killed: two containers ran throughout, the moved task
        # stopped through the scheduler (not with its host), and two run now.
        assert fewest >= 2
        stopped = ecs.describe_tasks(cluster=cluster, tasks=first)["tasks"]
        for t in stopped:
            if t["lastStatus"] == "STOPPED":
                assert t["stopCode"] == "ServiceSchedulerInitiated", t
                assert "terminated" not in t["stoppedReason"], t
        assert any(t["lastStatus"] == "STOPPED" for t in stopped)
        wait_for(lambda: ecs.describe_services(cluster=cluster, services=[svc])["services"][0]["runningCount"] == 2,
                 60, "the service back at two running tasks")
        assert running_containers(family_label) == 2
        left = group_instances(asg, name)[0]["InstanceId"]
        assert registered_ec2_ids(ecs, cluster) == {left}
    finally:
        ecs.delete_service(cluster=cluster, service=svc, force=True)
        force_delete(asg, name)
        ecs.put_cluster_capacity_providers(cluster=cluster, capacityProviders=[],
                                           defaultCapacityProviderStrategy=[])
        ecs.delete_capacity_provider(capacityProvider=cp)
