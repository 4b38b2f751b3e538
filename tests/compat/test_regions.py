"""Regions as scopes: one server, boto3 clients signed for us-east-1 (the server's default)
and us-east-2. Resources of one region are invisible from the other and carry their
region in ARNs; a region's service survives a restart and keeps being reconciled; a
foreign-region ARN and a malformed region get AWS's errors; a region's log events live in
its own logs.db; an unknown key is refused before its body is read even for a region not
built yet."""

from __future__ import annotations

import base64
import dataclasses
import time

import botocore.exceptions
import pytest

from conftest import ACCOUNT_ID, REGION, StevedoreServer, container, make_client, unique
from test_edges import assert_unknown_key_refused_before_body
from agent_fixtures import wait_for
from registry_fixtures import V2
from sim_fixtures import Sim

OTHER = "us-east-2"


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    """A server of its own (its data dir is restarted below) and its two regions' configs."""
    srv = StevedoreServer(
        tmp_path_factory.mktemp("regions") / "data",
        extra_env={"STEVEDORE_AGENT_DISCONNECT_TIMEOUT": "2", "STEVEDORE_LOG": "info"},
    )
    cfg = srv.start()
    yield srv, cfg, dataclasses.replace(cfg, region=OTHER)
    srv.stop()


def clients(cfg, service):
    return make_client(cfg, service)


def test_clusters_and_task_definitions_are_per_region(two):
    _, east1, east2 = two
    ecs1, ecs2 = clients(east1, "ecs"), clients(east2, "ecs")
    name = unique("c")
    arn2 = ecs2.create_cluster(clusterName=name)["cluster"]["clusterArn"]
    assert arn2 == f"arn:aws:ecs:{OTHER}:{ACCOUNT_ID}:cluster/{name}"
    assert arn2 in ecs2.list_clusters()["clusterArns"]
    assert not any(a.endswith(f"/{name}") for a in ecs1.list_clusters()["clusterArns"])
    described = ecs1.describe_clusters(clusters=[name])
    assert described["clusters"] == []
    assert described["failures"][0]["reason"] == "MISSING"
    family = unique("f")
    td = ecs2.register_task_definition(family=family, containerDefinitions=[container()])
    assert td["taskDefinition"]["taskDefinitionArn"].startswith(f"arn:aws:ecs:{OTHER}:{ACCOUNT_ID}:task-definition/{family}:")
    with pytest.raises(botocore.exceptions.ClientError) as err:
        ecs1.describe_task_definition(taskDefinition=family)
    assert err.value.response["Error"]["Code"] == "ClientException"
    # The same name in the default region is another cluster.
    arn1 = ecs1.create_cluster(clusterName=name)["cluster"]["clusterArn"]
    assert arn1 == f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:cluster/{name}"


def test_log_groups_repositories_and_load_balancers_are_per_region(two):
    _, east1, east2 = two
    logs1, logs2 = clients(east1, "logs"), clients(east2, "logs")
    group = unique("/g")
    logs2.create_log_group(logGroupName=group)
    found = logs2.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert [g["arn"] for g in found] == [f"arn:aws:logs:{OTHER}:{ACCOUNT_ID}:log-group:{group}:*"]
    assert logs1.describe_log_groups(logGroupNamePrefix=group)["logGroups"] == []

    ecr1, ecr2 = clients(east1, "ecr"), clients(east2, "ecr")
    repo = unique("r")
    made = ecr2.create_repository(repositoryName=repo)["repository"]
    assert made["repositoryArn"] == f"arn:aws:ecr:{OTHER}:{ACCOUNT_ID}:repository/{repo}"
    host = east2.endpoint.removeprefix("http://")
    assert made["repositoryUri"] == f"{host}/{repo}"
    with pytest.raises(botocore.exceptions.ClientError) as err:
        ecr1.describe_repositories(repositoryNames=[repo])
    assert err.value.response["Error"]["Code"] == "RepositoryNotFoundException"

    elb1, elb2 = clients(east1, "elbv2"), clients(east2, "elbv2")
    name = unique("lb")
    lb = elb2.create_load_balancer(Name=name, Subnets=["subnet-a", "subnet-b"], Scheme="internal")["LoadBalancers"][0]
    assert lb["LoadBalancerArn"].startswith(f"arn:aws:elasticloadbalancing:{OTHER}:{ACCOUNT_ID}:loadbalancer/app/{name}/")
    with pytest.raises(botocore.exceptions.ClientError) as err:
        elb1.describe_load_balancers(Names=[name])
    assert err.value.response["Error"]["Code"] == "LoadBalancerNotFound"


def test_a_regions_log_events_live_in_its_own_logs_db(two):
    _, east1, east2 = two
    logs1, logs2 = clients(east1, "logs"), clients(east2, "logs")
    group, stream = unique("/ev"), "s"
    logs2.create_log_group(logGroupName=group)
    logs2.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    logs2.put_log_events(logGroupName=group, logStreamName=stream,
                         logEvents=[{"timestamp": now, "message": "east-2 says hi"}])
    got = logs2.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
    assert [e["message"] for e in got] == ["east-2 says hi"]
    assert (east2.data_dir / "regions" / OTHER / "logs.db").is_file()
    assert (east1.data_dir / "logs.db").is_file()
    with pytest.raises(botocore.exceptions.ClientError) as err:
        logs1.get_log_events(logGroupName=group, logStreamName=stream)
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_an_unknown_key_to_a_new_region_is_refused_before_its_body(two):
    _, east1, _ = two
    assert_unknown_key_refused_before_body(dataclasses.replace(east1, region="eu-west-3"))
    # Nothing was built for it.
    assert not (east1.data_dir / "regions" / "eu-west-3").exists()


def password(ecr) -> str:
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    return base64.b64decode(token).decode().split(":")[1]


def test_a_registry_token_reaches_its_own_regions_repositories(two):
    _, east1, east2 = two
    ecr1, ecr2 = clients(east1, "ecr"), clients(east2, "ecr")
    repo = unique("img")
    ecr2.create_repository(repositoryName=repo)
    ecr1.create_repository(repositoryName=repo)
    # Pushed with us-east-2's token: us-east-2's repository gets the image, us-east-1's not.
    v2_east2 = V2(east2.endpoint, password(ecr2))
    digest, _ = v2_east2.push_image(repo, "v1", [b"layer of us-east-2"])
    assert [i["imageDigest"] for i in ecr2.list_images(repositoryName=repo)["imageIds"]] == [digest]
    assert ecr1.list_images(repositoryName=repo)["imageIds"] == []
    v2_east1 = V2(east1.endpoint, password(ecr1))
    assert v2_east1.req("HEAD", f"/v2/{repo}/manifests/v1").status_code == 404
    assert v2_east2.req("HEAD", f"/v2/{repo}/manifests/v1").status_code == 200
    # A token no region issued is refused.
    assert V2(east1.endpoint, "v2.1.x.root.forged").req("GET", "/v2/").status_code == 401


def test_a_foreign_region_arn_is_refused_as_ecs_refuses_it(two):
    _, east1, east2 = two
    ecs1, ecs2 = clients(east1, "ecs"), clients(east2, "ecs")
    name = unique("c")
    arn1 = ecs1.create_cluster(clusterName=name)["cluster"]["clusterArn"]
    ecs2.create_cluster(clusterName=name)
    with pytest.raises(botocore.exceptions.ClientError) as err:
        ecs2.describe_clusters(clusters=[arn1])
    assert err.value.response["Error"]["Code"] == "InvalidParameterException"
    assert err.value.response["Error"]["Message"] == "Invalid Region in ARN"
    with pytest.raises(botocore.exceptions.ClientError) as err:
        ecs2.list_services(cluster=arn1)
    assert err.value.response["Error"]["Code"] == "InvalidParameterException"


@pytest.mark.parametrize("region", ["useast2", "US-EAST-2", "us-east-x", "eu-1"])
def test_a_malformed_region_is_refused(two, region):
    _, east1, _ = two
    ecs = clients(dataclasses.replace(east1, region=region), "ecs")
    with pytest.raises(botocore.exceptions.ClientError) as err:
        ecs.list_clusters()
    assert err.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert err.value.response["Error"]["Message"] == "Credential should be scoped to a valid region."
    # Nothing was built for it: its data directory does not exist.
    assert not (east1.data_dir / "regions" / region).exists()


def running(ecs, cluster, service):
    svc = ecs.describe_services(cluster=cluster, services=[service])["services"][0]
    return svc["runningCount"], [d["rolloutState"] for d in svc["deployments"]]


def test_a_regions_service_survives_a_restart_and_keeps_being_reconciled(two):
    srv, _, east2 = two
    ecs2 = clients(east2, "ecs")
    family = unique("f")
    ecs2.register_task_definition(family=family, containerDefinitions=[container(memory=64)])
    with Sim(east2, ecs2, instances=1) as sim:
        cluster = sim.cluster
        ecs2.create_service(cluster=cluster, serviceName="web", taskDefinition=family, desiredCount=1)
        wait_for(lambda: running(ecs2, cluster, "web")[0] == 1, 60, "the service's task running")
        first_instance = sim.instance_arns()
    built_before = srv.log_tail(1_000_000).count("Region in service.")
    srv.stop()
    srv.start()
    # Before any signed request, us-east-2 is back: its marker brought it into service.
    assert srv.log_tail(1_000_000).count("Region in service.") == built_before + 1
    # Its old instance left with its agent (deregistered here so that the new hollow
    # instance is the cluster's only one); the controller, running for us-east-2 since
    # start-up, replaces the service's task on the new instance.
    ecs2.deregister_container_instance(cluster=cluster, containerInstance=first_instance[0], force=True)
    with Sim(east2, ecs2, instances=1, cluster=cluster) as sim:
        new = sim.instance_arns()

        def replaced():
            arns = ecs2.list_tasks(cluster=cluster, serviceName="web", desiredStatus="RUNNING")["taskArns"]
            tasks = ecs2.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []
            return any(t["containerInstanceArn"] in new and t["lastStatus"] == "RUNNING" for t in tasks)

        wait_for(replaced, 90, "the task replaced on the new instance", srv.log_tail)
    ecs1 = clients(dataclasses.replace(east2, region=REGION), "ecs")
    assert not any(a.endswith(f"/{cluster}") for a in ecs1.list_clusters()["clusterArns"])
