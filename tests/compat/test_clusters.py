"""Clusters: CreateCluster, DescribeClusters, ListClusters, UpdateCluster(Settings), DeleteCluster."""

import datetime

import pytest
from conftest import ARN_PREFIX, register_instance, unique


def test_create_cluster_returns_active_cluster_with_aws_arn(ecs):
    name = unique("cl")
    cluster = ecs.create_cluster(clusterName=name)["cluster"]
    assert cluster["clusterName"] == name
    assert cluster["clusterArn"] == f"{ARN_PREFIX}:cluster/{name}"
    assert cluster["status"] == "ACTIVE"
    assert cluster["registeredContainerInstancesCount"] == 0
    assert cluster["runningTasksCount"] == 0
    assert cluster["pendingTasksCount"] == 0
    assert cluster["activeServicesCount"] == 0


def test_create_cluster_is_idempotent_for_same_name(ecs):
    name = unique("cl")
    first = ecs.create_cluster(clusterName=name)["cluster"]
    second = ecs.create_cluster(clusterName=name)["cluster"]
    assert first["clusterArn"] == second["clusterArn"]
    arns = ecs.describe_clusters(clusters=[name])["clusters"]
    assert len(arns) == 1


def test_create_cluster_without_name_creates_default_cluster(ecs):
    cluster = ecs.create_cluster()["cluster"]
    assert cluster["clusterName"] == "default"
    assert cluster["clusterArn"] == f"{ARN_PREFIX}:cluster/default"


def test_create_cluster_rejects_invalid_name(ecs):
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.create_cluster(clusterName="bad name with spaces!")
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.create_cluster(clusterName="x" * 256)


def test_create_cluster_stores_tags_and_settings(ecs):
    name = unique("cl")
    ecs.create_cluster(
        clusterName=name,
        tags=[{"key": "team", "value": "blue"}],
        settings=[{"name": "containerInsights", "value": "enabled"}],
    )
    cluster = ecs.describe_clusters(clusters=[name], include=["TAGS", "SETTINGS"])["clusters"][0]
    assert cluster["tags"] == [{"key": "team", "value": "blue"}]
    assert {"name": "containerInsights", "value": "enabled"} in cluster["settings"]


def test_describe_clusters_by_name_and_arn(ecs):
    name = unique("cl")
    arn = ecs.create_cluster(clusterName=name)["cluster"]["clusterArn"]
    by_name = ecs.describe_clusters(clusters=[name])
    by_arn = ecs.describe_clusters(clusters=[arn])
    assert by_name["clusters"][0]["clusterArn"] == arn
    assert by_arn["clusters"][0]["clusterName"] == name
    assert by_name["failures"] == []


def test_describe_clusters_reports_missing_cluster_as_failure(ecs):
    name = unique("missing")
    resp = ecs.describe_clusters(clusters=[name])
    assert resp["clusters"] == []
    assert resp["failures"] == [
        {"arn": f"{ARN_PREFIX}:cluster/{name}", "reason": "MISSING"}
    ]


def test_describe_clusters_statistics_and_counts_follow_instances(ecs):
    name = unique("cl")
    ecs.create_cluster(clusterName=name)
    register_instance(ecs, name)
    register_instance(ecs, name)
    cluster = ecs.describe_clusters(clusters=[name], include=["STATISTICS"])["clusters"][0]
    assert cluster["registeredContainerInstancesCount"] == 2
    assert cluster["runningTasksCount"] == 0
    assert cluster["pendingTasksCount"] == 0
    assert cluster["activeServicesCount"] == 0
    assert isinstance(cluster.get("statistics"), list)


def test_describe_clusters_without_include_omits_tags(ecs):
    name = unique("cl")
    ecs.create_cluster(clusterName=name, tags=[{"key": "a", "value": "b"}])
    cluster = ecs.describe_clusters(clusters=[name])["clusters"][0]
    assert not cluster.get("tags")


def test_describe_clusters_rejects_unknown_include_value(ecs_unvalidated):
    with pytest.raises(ecs_unvalidated.exceptions.InvalidParameterException):
        ecs_unvalidated.describe_clusters(clusters=["default"], include=["NOPE"])


def test_list_clusters_paginates_with_opaque_token(ecs):
    names = [unique("pg") for _ in range(5)]
    for n in names:
        ecs.create_cluster(clusterName=n)
    seen = []
    token = None
    pages = 0
    while True:
        kw = {"maxResults": 2}
        if token:
            kw["nextToken"] = token
        resp = ecs.list_clusters(**kw)
        assert len(resp["clusterArns"]) <= 2
        seen.extend(resp["clusterArns"])
        pages += 1
        token = resp.get("nextToken")
        if not token:
            break
        assert pages < 1000
    assert len(seen) == len(set(seen))
    for n in names:
        assert f"{ARN_PREFIX}:cluster/{n}" in seen


def test_list_clusters_paginator_sees_all_clusters(ecs):
    names = [unique("pgn") for _ in range(3)]
    for n in names:
        ecs.create_cluster(clusterName=n)
    arns = []
    for page in ecs.get_paginator("list_clusters").paginate(PaginationConfig={"PageSize": 1}):
        arns.extend(page["clusterArns"])
    for n in names:
        assert f"{ARN_PREFIX}:cluster/{n}" in arns


@pytest.mark.parametrize("bad", [0, 101, -1])
def test_list_clusters_rejects_max_results_out_of_range(ecs_unvalidated, bad):
    with pytest.raises(ecs_unvalidated.exceptions.InvalidParameterException):
        ecs_unvalidated.list_clusters(maxResults=bad)


def test_list_clusters_rejects_garbage_next_token(ecs):
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.list_clusters(nextToken="this-is-not-a-token")


def test_update_cluster_settings_changes_container_insights(ecs):
    name = unique("cl")
    ecs.create_cluster(clusterName=name)
    resp = ecs.update_cluster_settings(
        cluster=name, settings=[{"name": "containerInsights", "value": "enabled"}]
    )
    assert {"name": "containerInsights", "value": "enabled"} in resp["cluster"]["settings"]
    cluster = ecs.describe_clusters(clusters=[name], include=["SETTINGS"])["clusters"][0]
    assert {"name": "containerInsights", "value": "enabled"} in cluster["settings"]


def test_update_cluster_settings_unknown_cluster_is_not_found(ecs):
    with pytest.raises(ecs.exceptions.ClusterNotFoundException):
        ecs.update_cluster_settings(
            cluster=unique("nope"), settings=[{"name": "containerInsights", "value": "enabled"}]
        )


def test_update_cluster_sets_execute_command_configuration(ecs):
    name = unique("cl")
    ecs.create_cluster(clusterName=name)
    conf = {"executeCommandConfiguration": {"logging": "DEFAULT"}}
    resp = ecs.update_cluster(cluster=name, configuration=conf)
    assert resp["cluster"]["configuration"]["executeCommandConfiguration"]["logging"] == "DEFAULT"
    cluster = ecs.describe_clusters(clusters=[name], include=["CONFIGURATIONS"])["clusters"][0]
    assert cluster["configuration"]["executeCommandConfiguration"]["logging"] == "DEFAULT"


def test_update_cluster_unknown_cluster_is_not_found(ecs):
    with pytest.raises(ecs.exceptions.ClusterNotFoundException):
        ecs.update_cluster(
            cluster=unique("nope"), settings=[{"name": "containerInsights", "value": "enabled"}]
        )


def test_delete_cluster_marks_it_inactive(ecs):
    name = unique("cl")
    arn = ecs.create_cluster(clusterName=name)["cluster"]["clusterArn"]
    deleted = ecs.delete_cluster(cluster=name)["cluster"]
    assert deleted["clusterArn"] == arn
    assert deleted["status"] == "INACTIVE"
    described = ecs.describe_clusters(clusters=[name])["clusters"]
    assert described and described[0]["status"] == "INACTIVE"
    listed = []
    for page in ecs.get_paginator("list_clusters").paginate():
        listed.extend(page["clusterArns"])
    assert arn not in listed


def test_delete_cluster_unknown_is_cluster_not_found(ecs):
    with pytest.raises(ecs.exceptions.ClusterNotFoundException):
        ecs.delete_cluster(cluster=unique("nope"))


def test_delete_cluster_with_registered_instances_is_refused(ecs):
    name = unique("cl")
    ecs.create_cluster(clusterName=name)
    inst = register_instance(ecs, name)
    with pytest.raises(ecs.exceptions.ClusterContainsContainerInstancesException):
        ecs.delete_cluster(cluster=name)
    ecs.deregister_container_instance(
        cluster=name, containerInstance=inst["containerInstanceArn"], force=True
    )
    assert ecs.delete_cluster(cluster=name)["cluster"]["status"] == "INACTIVE"


def test_deleted_cluster_can_be_recreated(ecs):
    name = unique("cl")
    ecs.create_cluster(clusterName=name)
    ecs.delete_cluster(cluster=name)
    cluster = ecs.create_cluster(clusterName=name)["cluster"]
    assert cluster["status"] == "ACTIVE"


def test_response_carries_request_id(ecs):
    resp = ecs.list_clusters()
    assert resp["ResponseMetadata"]["RequestId"]
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_cluster_timestamps_are_not_required_but_parse(ecs):
    # botocore parses any epoch timestamps; make sure a describe round-trips cleanly.
    name = unique("cl")
    ecs.create_cluster(clusterName=name)
    cluster = ecs.describe_clusters(clusters=[name], include=["STATISTICS", "TAGS", "SETTINGS", "CONFIGURATIONS"])["clusters"][0]
    for value in cluster.values():
        if isinstance(value, datetime.datetime):
            assert value.tzinfo is not None
