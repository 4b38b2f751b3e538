"""Container instances: register, describe, list, drain, deregister."""

import re

import pytest
from conftest import ARN_PREFIX, paginate_all, register_instance, unique


@pytest.fixture
def cluster(ecs):
    name = unique("ci")
    ecs.create_cluster(clusterName=name)
    return name


def resource(inst, key, name):
    return next(r for r in inst[key] if r["name"] == name)


def test_register_returns_active_instance_with_long_arn(ecs, cluster):
    inst = register_instance(ecs, cluster, attributes=[{"name": "ecs.os-type", "value": "linux"}])
    assert re.fullmatch(rf"{re.escape(ARN_PREFIX)}:container-instance/{cluster}/[0-9a-f]{{32}}",
                        inst["containerInstanceArn"])
    assert inst["status"] == "ACTIVE"
    assert inst["agentConnected"] in (True, False)
    assert inst["runningTasksCount"] == 0 and inst["pendingTasksCount"] == 0
    assert resource(inst, "registeredResources", "CPU")["integerValue"] == 2048
    assert resource(inst, "registeredResources", "MEMORY")["integerValue"] == 3768
    assert sorted(resource(inst, "registeredResources", "PORTS")["stringSetValue"]) == sorted(
        ["22", "2375", "2376", "51678", "51679"])
    assert resource(inst, "remainingResources", "CPU")["integerValue"] == 2048
    assert inst["versionInfo"]["agentVersion"] == "1.80.0"
    names = {a["name"]: a.get("value") for a in inst["attributes"]}
    assert names.get("ecs.os-type") == "linux"
    assert inst["registeredAt"].year >= 2024


def test_register_in_unknown_cluster_is_cluster_not_found(ecs):
    with pytest.raises(ecs.exceptions.ClusterNotFoundException):
        register_instance(ecs, unique("nocluster"))


def test_register_with_instance_identity_document_sets_ec2_instance_id(ecs, cluster):
    doc = ('{"instanceId": "i-0123456789abcdef0", "region": "us-east-1", "availabilityZone": "us-east-1a",'
           ' "instanceType": "m5.large", "accountId": "000000000000"}')
    inst = register_instance(ecs, cluster, instanceIdentityDocument=doc)
    assert inst["ec2InstanceId"] == "i-0123456789abcdef0"


def test_describe_by_arn_and_by_id(ecs, cluster):
    inst = register_instance(ecs, cluster)
    arn = inst["containerInstanceArn"]
    short_id = arn.rsplit("/", 1)[1]
    by_arn = ecs.describe_container_instances(cluster=cluster, containerInstances=[arn])
    by_id = ecs.describe_container_instances(cluster=cluster, containerInstances=[short_id])
    assert by_arn["containerInstances"][0]["containerInstanceArn"] == arn
    assert by_id["containerInstances"][0]["containerInstanceArn"] == arn
    assert by_arn["failures"] == []


def test_describe_unknown_instance_reports_missing(ecs, cluster):
    resp = ecs.describe_container_instances(cluster=cluster, containerInstances=["0" * 32])
    assert resp["containerInstances"] == []
    assert resp["failures"][0]["reason"] == "MISSING"


def test_describe_in_unknown_cluster_is_cluster_not_found(ecs):
    with pytest.raises(ecs.exceptions.ClusterNotFoundException):
        ecs.describe_container_instances(cluster=unique("nocluster"), containerInstances=["0" * 32])


def test_list_container_instances_and_status_filter(ecs, cluster):
    a = register_instance(ecs, cluster)["containerInstanceArn"]
    b = register_instance(ecs, cluster)["containerInstanceArn"]
    assert sorted(paginate_all(ecs, "list_container_instances", "containerInstanceArns", cluster=cluster)) == sorted([a, b])
    ecs.update_container_instances_state(cluster=cluster, containerInstances=[b], status="DRAINING")
    assert paginate_all(ecs, "list_container_instances", "containerInstanceArns", cluster=cluster, status="DRAINING") == [b]
    assert paginate_all(ecs, "list_container_instances", "containerInstanceArns", cluster=cluster, status="ACTIVE") == [a]


def test_list_container_instances_paginates(ecs, cluster):
    arns = {register_instance(ecs, cluster)["containerInstanceArn"] for _ in range(5)}
    seen, token, pages = [], None, 0
    while True:
        kw = {"cluster": cluster, "maxResults": 2}
        if token:
            kw["nextToken"] = token
        resp = ecs.list_container_instances(**kw)
        seen += resp["containerInstanceArns"]
        pages += 1
        token = resp.get("nextToken")
        if not token:
            break
        assert pages < 10
    assert pages == 3
    assert set(seen) == arns and len(seen) == 5


def test_update_state_draining_and_back_to_active(ecs, cluster):
    arn = register_instance(ecs, cluster)["containerInstanceArn"]
    resp = ecs.update_container_instances_state(cluster=cluster, containerInstances=[arn], status="DRAINING")
    assert resp["containerInstances"][0]["status"] == "DRAINING"
    assert resp["failures"] == []
    resp = ecs.update_container_instances_state(cluster=cluster, containerInstances=[arn], status="ACTIVE")
    assert resp["containerInstances"][0]["status"] == "ACTIVE"


def test_update_state_rejects_non_settable_status(ecs_unvalidated, cluster):
    ecs = ecs_unvalidated
    arn = register_instance(ecs, cluster)["containerInstanceArn"]
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.update_container_instances_state(cluster=cluster, containerInstances=[arn], status="REGISTERING")


def test_update_state_unknown_instance_is_failure(ecs, cluster):
    resp = ecs.update_container_instances_state(cluster=cluster, containerInstances=["f" * 32], status="DRAINING")
    assert resp["containerInstances"] == []
    assert resp["failures"] and resp["failures"][0]["reason"] == "MISSING"


def test_deregister_makes_instance_inactive_and_unlisted(ecs, cluster):
    arn = register_instance(ecs, cluster)["containerInstanceArn"]
    inst = ecs.deregister_container_instance(cluster=cluster, containerInstance=arn, force=True)["containerInstance"]
    assert inst["status"] == "INACTIVE"
    assert arn not in paginate_all(ecs, "list_container_instances", "containerInstanceArns", cluster=cluster)
    count = ecs.describe_clusters(clusters=[cluster])["clusters"][0]["registeredContainerInstancesCount"]
    assert count == 0


def test_deregister_unknown_instance_is_invalid_parameter(ecs, cluster):
    with pytest.raises((ecs.exceptions.InvalidParameterException, ecs.exceptions.ClientException)):
        ecs.deregister_container_instance(cluster=cluster, containerInstance="a" * 32)


def test_cluster_counts_track_registration(ecs, cluster):
    arn = register_instance(ecs, cluster)["containerInstanceArn"]
    assert ecs.describe_clusters(clusters=[cluster])["clusters"][0]["registeredContainerInstancesCount"] == 1
    ecs.deregister_container_instance(cluster=cluster, containerInstance=arn)
    assert ecs.describe_clusters(clusters=[cluster])["clusters"][0]["registeredContainerInstancesCount"] == 0
