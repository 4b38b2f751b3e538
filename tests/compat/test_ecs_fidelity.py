"""ECS fidelity (issue 21, items 5 and 6): request members are acted on or refused, never
ignored (managed tags, propagated tags, members that need AWS services Stevedore lacks),
and answers that used to diverge from AWS's (cluster statistics, DeleteCluster with
tasks, ListTasks filters, RegisterContainerInstance without totalResources, a deployment's
launch type). boto3 and the aws CLI against a live server; services on hollow instances
(`stevedore sim`)."""

from __future__ import annotations

import json

import pytest

from agent_fixtures import wait_for
from conftest import container, register, unique
from sim_fixtures import Sim


def tags_of(resource: dict) -> dict:
    return {t["key"]: t["value"] for t in resource.get("tags", [])}


def idle_service(ecs) -> tuple[str, str]:
    """A new cluster with one EC2 service scaled to 0: (cluster, service)."""
    cluster = unique("idle")
    ecs.create_cluster(clusterName=cluster)
    td = register(ecs)
    name = unique("svc")
    ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=td["taskDefinitionArn"], desiredCount=0)
    return cluster, name


def stats_of(cluster: dict) -> dict:
    return {s["name"]: int(s["value"]) for s in cluster["statistics"]}


# --- item 5: managed and propagated tags ------------------------------------------------


def test_run_task_with_managed_tags_and_task_definition_tags(server, ecs):
    td = register(ecs, tags=[{"key": "team", "value": "blue"}])
    with Sim(server, ecs, instances=1) as sim:
        cluster = sim.cluster
        out = ecs.run_task(cluster=cluster, taskDefinition=td["taskDefinitionArn"], enableECSManagedTags=True,
                           propagateTags="TASK_DEFINITION", tags=[{"key": "own", "value": "1"}])
        assert out["failures"] == [], out["failures"]
        arn = out["tasks"][0]["taskArn"]
        described = ecs.describe_tasks(cluster=cluster, tasks=[arn], include=["TAGS"])["tasks"][0]
        assert tags_of(described) == {"own": "1", "team": "blue", "aws:ecs:clusterName": cluster}
        # Without the flags nothing is added.
        plain = ecs.run_task(cluster=cluster, taskDefinition=td["taskDefinitionArn"])["tasks"][0]
        described = ecs.describe_tasks(cluster=cluster, tasks=[plain["taskArn"]], include=["TAGS"])["tasks"][0]
        assert tags_of(described) == {}
        # The aws: prefix stays reserved for ECS.
        with pytest.raises(ecs.exceptions.InvalidParameterException):
            ecs.run_task(cluster=cluster, taskDefinition=td["taskDefinitionArn"],
                         tags=[{"key": "aws:ecs:clusterName", "value": "x"}])


def test_service_tasks_carry_managed_and_service_tags(server, ecs, aws):
    td = register(ecs, containerDefinitions=[container(memory=128)], tags=[{"key": "from", "value": "td"}])
    with Sim(server, ecs, instances=1) as sim:
        name = unique("tagged")
        aws.run("ecs", "create-service", "--cluster", sim.cluster, "--service-name", name,
                "--task-definition", td["taskDefinitionArn"], "--desired-count", "1",
                "--enable-ecs-managed-tags", "--propagate-tags", "SERVICE",
                "--tags", "key=owner,value=ops")
        arns = wait_for(lambda: ecs.list_tasks(cluster=sim.cluster, serviceName=name)["taskArns"], 60, "a service task")
        task = ecs.describe_tasks(cluster=sim.cluster, tasks=arns, include=["TAGS"])["tasks"][0]
        assert tags_of(task) == {"owner": "ops", "aws:ecs:clusterName": sim.cluster, "aws:ecs:serviceName": name}
        # UpdateService switches both without a deployment; a forced one starts tasks with them.
        out = ecs.update_service(cluster=sim.cluster, service=name, enableECSManagedTags=False,
                                 propagateTags="TASK_DEFINITION")["service"]
        assert out["enableECSManagedTags"] is False and out["propagateTags"] == "TASK_DEFINITION"
        assert len(out["deployments"]) == 1
        ecs.update_service(cluster=sim.cluster, service=name, forceNewDeployment=True)

        def new_task():
            arns2 = ecs.list_tasks(cluster=sim.cluster, serviceName=name)["taskArns"]
            fresh = [a for a in arns2 if a not in arns]
            return fresh and ecs.describe_tasks(cluster=sim.cluster, tasks=fresh, include=["TAGS"])["tasks"][0]

        assert tags_of(wait_for(new_task, 60, "a redeployed task")) == {"from": "td"}
        ecs.delete_service(cluster=sim.cluster, service=name, force=True)


# --- item 5: members Stevedore cannot honour are refused -----------------------------


@pytest.mark.parametrize("member,value,needle", [
    ("serviceRegistries", [{"registryArn": "arn:aws:servicediscovery:us-east-1:000000000000:service/srv-1"}], "Cloud Map"),
    ("serviceConnectConfiguration", {"enabled": True, "namespace": "ns"}, "Service Connect"),
    ("volumeConfigurations", [{"name": "data", "managedEBSVolume": {"roleArn": "arn:aws:iam::000000000000:role/ebs"}}], "EBS"),
    ("vpcLatticeConfigurations", [{"roleArn": "arn:aws:iam::000000000000:role/l", "targetGroupArn": "arn:aws:vpc-lattice:us-east-1:000000000000:targetgroup/tg-1", "portName": "web"}], "VPC Lattice"),
    ("availabilityZoneRebalancing", "ENABLED", "Availability Zone"),
    ("deploymentController", {"type": "EXTERNAL"}, "EXTERNAL"),
])
def test_create_and_update_service_refuse_what_they_cannot_honour(ecs, member, value, needle):
    cluster = unique("ref")
    ecs.create_cluster(clusterName=cluster)
    td = register(ecs)
    name = unique("svc")
    with pytest.raises(ecs.exceptions.InvalidParameterException) as e:
        ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=td["taskDefinitionArn"],
                           desiredCount=0, **{member: value})
    assert needle in e.value.response["Error"]["Message"]
    assert ecs.describe_services(cluster=cluster, services=[name])["failures"][0]["reason"] == "MISSING"
    ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=td["taskDefinitionArn"], desiredCount=0)
    with pytest.raises(ecs.exceptions.InvalidParameterException) as e:
        ecs.update_service(cluster=cluster, service=name, **{member: value})
    assert needle in e.value.response["Error"]["Message"]


def test_disabled_or_empty_members_ask_for_nothing_and_are_shown(ecs):
    cluster = unique("ok")
    ecs.create_cluster(clusterName=cluster)
    td = register(ecs)
    svc = ecs.create_service(cluster=cluster, serviceName=unique("svc"), taskDefinition=td["taskDefinitionArn"],
                             desiredCount=0, serviceRegistries=[], availabilityZoneRebalancing="DISABLED",
                             serviceConnectConfiguration={"enabled": False})["service"]
    assert svc["availabilityZoneRebalancing"] == "DISABLED"


def test_run_task_refuses_volume_configurations(aws, ecs):
    cluster = unique("vol")
    ecs.create_cluster(clusterName=cluster)
    td = register(ecs)
    proc = aws.run("ecs", "run-task", "--cluster", cluster, "--task-definition", td["taskDefinitionArn"],
                   "--volume-configurations", json.dumps([{"name": "d", "managedEBSVolume": {"roleArn": "arn:aws:iam::000000000000:role/e"}}]),
                   check=False)
    assert proc.returncode != 0
    assert "InvalidParameterException" in proc.stderr and "EBS" in proc.stderr


def test_service_role_is_shown_as_an_arn_and_needs_load_balancers(ecs):
    cluster = unique("role")
    ecs.create_cluster(clusterName=cluster)
    td = register(ecs)
    with pytest.raises(ecs.exceptions.InvalidParameterException) as e:
        ecs.create_service(cluster=cluster, serviceName=unique("svc"), taskDefinition=td["taskDefinitionArn"],
                           desiredCount=0, role="ecsServiceRole")
    assert "load balancers" in e.value.response["Error"]["Message"]


def test_update_service_platform_version_is_refused_for_ec2(ecs):
    cluster, name = idle_service(ecs)
    with pytest.raises(ecs.exceptions.InvalidParameterException) as e:
        ecs.update_service(cluster=cluster, service=name, platformVersion="1.4.0")
    assert "EC2 launch type" in e.value.response["Error"]["Message"]


# --- item 6: divergences ----------------------------------------------------------------


def test_list_tasks_unknown_service_and_desired_pending(server, ecs, aws):
    td = register(ecs)
    with Sim(server, ecs, instances=1) as sim:
        cluster = sim.cluster
        assert ecs.run_task(cluster=cluster, taskDefinition=td["taskDefinitionArn"])["failures"] == []
        with pytest.raises(ecs.exceptions.ServiceNotFoundException):
            ecs.list_tasks(cluster=cluster, serviceName="no-such-service")
        # A task's desired status is RUNNING or STOPPED, never PENDING: the filter matches
        # nothing, whatever the task's last status.
        assert ecs.list_tasks(cluster=cluster, desiredStatus="PENDING")["taskArns"] == []
        assert len(ecs.list_tasks(cluster=cluster)["taskArns"]) == 1
        out = aws.run("ecs", "list-tasks", "--cluster", cluster, "--desired-status", "PENDING")
        assert out["taskArns"] == []


def test_delete_cluster_with_services_is_refused_until_they_are_gone(ecs):
    cluster, name = idle_service(ecs)
    with pytest.raises(ecs.exceptions.ClusterContainsServicesException) as e:
        ecs.delete_cluster(cluster=cluster)
    assert e.value.response["Error"]["Message"] == "The Cluster cannot be deleted while Services are active."
    ecs.delete_service(cluster=cluster, service=name)
    wait_for(lambda: ecs.describe_services(cluster=cluster, services=[name])["services"][0]["status"] == "INACTIVE",
             60, "service INACTIVE")
    assert ecs.delete_cluster(cluster=cluster)["cluster"]["status"] == "INACTIVE"


def test_cluster_statistics_count_tasks_and_services(server, ecs):
    td = register(ecs, containerDefinitions=[container(memory=128)])
    with Sim(server, ecs, instances=1) as sim:
        name = unique("stat")
        ecs.create_service(cluster=sim.cluster, serviceName=name, taskDefinition=td["taskDefinitionArn"], desiredCount=2)

        def running():
            c = ecs.describe_clusters(clusters=[sim.cluster], include=["STATISTICS"])["clusters"][0]
            return c if stats_of(c)["runningEC2TasksCount"] == 2 else None

        c = wait_for(running, 60, "two running tasks")
        s = stats_of(c)
        assert s["activeEC2ServiceCount"] == 1 and s["activeFargateServiceCount"] == 0
        assert s["runningFargateTasksCount"] == 0 and s["pendingFargateTasksCount"] == 0
        assert c["runningTasksCount"] == 2 and c["activeServicesCount"] == 1
        ecs.delete_service(cluster=sim.cluster, service=name, force=True)


def test_deployment_of_a_capacity_provider_service_has_no_launch_type(ecs):
    cluster = unique("cp")
    ecs.create_cluster(clusterName=cluster, capacityProviders=["FARGATE"])
    td = register(ecs, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
                  containerDefinitions=[{"name": "app", "image": "nginx", "essential": True}])
    try:
        svc = ecs.create_service(cluster=cluster, serviceName=unique("svc"), taskDefinition=td["taskDefinitionArn"],
                                 desiredCount=0, capacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}],
                                 networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-1"]}})["service"]
    except ecs.exceptions.InvalidParameterException as e:  # a server without Fargate says so
        pytest.skip(f"no Fargate here: {e}")
    assert "launchType" not in svc
    dep = svc["deployments"][0]
    assert "launchType" not in dep
    assert [i["capacityProvider"] for i in dep["capacityProviderStrategy"]] == ["FARGATE"]


def test_register_container_instance_derives_resources_from_the_instance_type(ecs, aws):
    cluster = unique("it")
    ecs.create_cluster(clusterName=cluster)
    doc = json.dumps({"instanceId": "i-0123456789abcdef0", "instanceType": "m5.xlarge", "availabilityZone": "us-east-1a"})
    ci = aws.run("ecs", "register-container-instance", "--cluster", cluster, "--instance-identity-document", doc)["containerInstance"]
    res = {r["name"]: r for r in ci["registeredResources"]}
    assert res["CPU"]["integerValue"] == 4096
    assert res["MEMORY"]["integerValue"] == 16384
    assert set(res["PORTS"]["stringSetValue"]) == {"22", "2375", "2376", "51678", "51679"}
    # An unknown type, or no type at all, asks for totalResources.
    with pytest.raises(ecs.exceptions.InvalidParameterException) as e:
        ecs.register_container_instance(cluster=cluster, instanceIdentityDocument=json.dumps({"instanceType": "x9.huge"}))
    assert "totalResources" in e.value.response["Error"]["Message"]
