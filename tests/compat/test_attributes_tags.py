"""Custom attributes on container instances, and resource tags."""

import pytest
from conftest import ARN_PREFIX, register, register_instance, unique
from sim_fixtures import Sim, wait_tasks


@pytest.fixture
def instance(ecs):
    cluster = unique("attr")
    ecs.create_cluster(clusterName=cluster)
    inst = register_instance(ecs, cluster)
    return cluster, inst["containerInstanceArn"]


def attr(target, name, value=None):
    a = {"name": name, "targetType": "container-instance", "targetId": target}
    if value is not None:
        a["value"] = value
    return a


def list_custom(ecs, cluster, name):
    resp = ecs.list_attributes(cluster=cluster, targetType="container-instance", attributeName=name)
    return resp["attributes"]


def test_put_list_delete_attribute(ecs, instance):
    cluster, arn = instance
    put = ecs.put_attributes(cluster=cluster, attributes=[attr(arn, "stack", "prod")])
    assert put["attributes"][0]["name"] == "stack"
    found = list_custom(ecs, cluster, "stack")
    assert found == [{"name": "stack", "value": "prod", "targetType": "container-instance", "targetId": arn}]
    desc = ecs.describe_container_instances(cluster=cluster, containerInstances=[arn])["containerInstances"][0]
    assert {"name": "stack", "value": "prod"} in [{k: a.get(k) for k in ("name", "value")} for a in desc["attributes"]]
    ecs.delete_attributes(cluster=cluster, attributes=[attr(arn, "stack")])
    assert list_custom(ecs, cluster, "stack") == []


def test_put_attribute_by_instance_id_overwrites_value(ecs, instance):
    cluster, arn = instance
    short = arn.rsplit("/", 1)[1]
    ecs.put_attributes(cluster=cluster, attributes=[attr(short, "color", "red")])
    ecs.put_attributes(cluster=cluster, attributes=[attr(short, "color", "blue")])
    found = list_custom(ecs, cluster, "color")
    assert [a["value"] for a in found] == ["blue"]
    assert found[0]["targetId"] == arn


def test_list_attributes_filters_by_value(ecs, instance):
    cluster, arn = instance
    ecs.put_attributes(cluster=cluster, attributes=[attr(arn, "zone", "a")])
    resp = ecs.list_attributes(cluster=cluster, targetType="container-instance", attributeName="zone", attributeValue="a")
    assert len(resp["attributes"]) == 1
    resp = ecs.list_attributes(cluster=cluster, targetType="container-instance", attributeName="zone", attributeValue="b")
    assert resp["attributes"] == []


def test_put_attributes_unknown_target_is_target_not_found(ecs, instance):
    cluster, _ = instance
    with pytest.raises(ecs.exceptions.TargetNotFoundException):
        ecs.put_attributes(cluster=cluster, attributes=[attr("0" * 32, "k", "v")])


def test_delete_attributes_unknown_target_is_target_not_found(ecs, instance):
    cluster, _ = instance
    with pytest.raises(ecs.exceptions.TargetNotFoundException):
        ecs.delete_attributes(cluster=cluster, attributes=[attr("0" * 32, "k")])


def test_more_than_ten_custom_attributes_is_limit_exceeded(ecs, instance):
    cluster, arn = instance
    ecs.put_attributes(cluster=cluster, attributes=[attr(arn, f"a{i}", "v") for i in range(10)])
    with pytest.raises(ecs.exceptions.AttributeLimitExceededException):
        ecs.put_attributes(cluster=cluster, attributes=[attr(arn, "eleventh", "v")])


def test_more_than_ten_attributes_in_one_call_is_limit_exceeded(ecs, instance):
    cluster, arn = instance
    with pytest.raises(ecs.exceptions.AttributeLimitExceededException):
        ecs.put_attributes(cluster=cluster, attributes=[attr(arn, f"b{i}", "v") for i in range(11)])


def test_list_attributes_requires_target_type(ecs_unvalidated, instance):
    cluster, _ = instance
    with pytest.raises(ecs_unvalidated.exceptions.InvalidParameterException):
        ecs_unvalidated.list_attributes(cluster=cluster)


@pytest.mark.parametrize("name", ["has space", "x" * 129, ""])
def test_put_attributes_rejects_invalid_name(ecs_unvalidated, instance, name):
    cluster, arn = instance
    with pytest.raises(ecs_unvalidated.exceptions.InvalidParameterException):
        ecs_unvalidated.put_attributes(cluster=cluster, attributes=[attr(arn, name, "v")])


# --- tags ---------------------------------------------------------------------------


def tags_of(ecs, arn):
    return sorted((t["key"], t["value"]) for t in ecs.list_tags_for_resource(resourceArn=arn)["tags"])


def test_tag_and_untag_cluster(ecs):
    name = unique("tag")
    arn = ecs.create_cluster(clusterName=name, tags=[{"key": "a", "value": "1"}])["cluster"]["clusterArn"]
    assert tags_of(ecs, arn) == [("a", "1")]
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "b", "value": "2"}, {"key": "a", "value": "9"}])
    assert tags_of(ecs, arn) == [("a", "9"), ("b", "2")]
    ecs.untag_resource(resourceArn=arn, tagKeys=["a", "missing"])
    assert tags_of(ecs, arn) == [("b", "2")]
    desc = ecs.describe_clusters(clusters=[name], include=["TAGS"])["clusters"][0]
    assert desc["tags"] == [{"key": "b", "value": "2"}]


def test_tag_task_definition(ecs):
    td = register(ecs, tags=[{"key": "x", "value": "y"}])
    arn = td["taskDefinitionArn"]
    assert tags_of(ecs, arn) == [("x", "y")]
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "z", "value": "w"}])
    assert tags_of(ecs, arn) == [("x", "y"), ("z", "w")]
    tagged = ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
    assert sorted((t["key"], t["value"]) for t in tagged["tags"]) == [("x", "y"), ("z", "w")]


def test_tag_container_instance(ecs, instance):
    _, arn = instance
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "rack", "value": "r1"}])
    assert tags_of(ecs, arn) == [("rack", "r1")]
    ecs.untag_resource(resourceArn=arn, tagKeys=["rack"])
    assert tags_of(ecs, arn) == []


def test_tag_and_untag_service(ecs, instance):
    cluster, _ = instance
    td = register(ecs)["taskDefinitionArn"]
    svc = ecs.create_service(cluster=cluster, serviceName=unique("svc"), taskDefinition=td, desiredCount=0,
                             tags=[{"key": "team", "value": "blue"}])["service"]
    arn = svc["serviceArn"]
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "env", "value": "prod"}, {"key": "team", "value": "red"}])
    assert tags_of(ecs, arn) == [("env", "prod"), ("team", "red")]
    ecs.untag_resource(resourceArn=arn, tagKeys=["env"])
    assert tags_of(ecs, arn) == [("team", "red")]
    desc = ecs.describe_services(cluster=cluster, services=[arn], include=["TAGS"])["services"][0]
    assert desc["tags"] == [{"key": "team", "value": "red"}]


def test_tag_and_untag_task_kept_through_its_state_changes(server, ecs):
    with Sim(server, ecs, instances=1) as sim:
        td = register(ecs, containerDefinitions=[
            {"name": "app", "image": "busybox", "memory": 64, "essential": True}])["taskDefinitionArn"]
        task = ecs.run_task(cluster=sim.cluster, taskDefinition=td,
                            tags=[{"key": "owner", "value": "ci"}])["tasks"][0]["taskArn"]
        # Tagged while PENDING: the agent's state changes that follow keep the tags.
        ecs.tag_resource(resourceArn=task, tags=[{"key": "batch", "value": "7"}])
        wait_tasks(ecs, sim.cluster, [task], "RUNNING")
        assert tags_of(ecs, task) == [("batch", "7"), ("owner", "ci")]
        got = ecs.describe_tasks(cluster=sim.cluster, tasks=[task], include=["TAGS"])["tasks"][0]
        assert sorted((t["key"], t["value"]) for t in got["tags"]) == [("batch", "7"), ("owner", "ci")]
        ecs.untag_resource(resourceArn=task, tagKeys=["owner"])
        assert tags_of(ecs, task) == [("batch", "7")]
        ecs.stop_task(cluster=sim.cluster, task=task)
        wait_tasks(ecs, sim.cluster, [task], "STOPPED")
        assert tags_of(ecs, task) == [("batch", "7")]
        gone = task.rsplit("/", 1)[0] + "/0123456789abcdef0123456789abcdef"
        with pytest.raises(ecs.exceptions.ResourceNotFoundException):
            ecs.tag_resource(resourceArn=gone, tags=[{"key": "a", "value": "b"}])


def test_register_container_instance_with_tags(ecs):
    cluster = unique("tagci")
    ecs.create_cluster(clusterName=cluster)
    inst = register_instance(ecs, cluster, tags=[{"key": "k", "value": "v"}])
    assert tags_of(ecs, inst["containerInstanceArn"]) == [("k", "v")]


def test_tagging_unknown_cluster_is_not_found(ecs):
    arn = f"{ARN_PREFIX}:cluster/{unique('nope')}"
    with pytest.raises((ecs.exceptions.ClusterNotFoundException, ecs.exceptions.ResourceNotFoundException)):
        ecs.tag_resource(resourceArn=arn, tags=[{"key": "a", "value": "b"}])
    with pytest.raises((ecs.exceptions.ClusterNotFoundException, ecs.exceptions.ResourceNotFoundException)):
        ecs.list_tags_for_resource(resourceArn=arn)


def test_tagging_malformed_arn_is_invalid_parameter(ecs):
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.tag_resource(resourceArn="not-an-arn", tags=[{"key": "a", "value": "b"}])
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.list_tags_for_resource(resourceArn="arn:aws:ecs:us-east-1:000000000000:bogus/x")


def test_more_than_fifty_tags_is_rejected(ecs):
    arn = ecs.create_cluster(clusterName=unique("tags"))["cluster"]["clusterArn"]
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.tag_resource(resourceArn=arn, tags=[{"key": f"k{i}", "value": "v"} for i in range(51)])


def test_aws_prefixed_tag_keys_are_reserved(ecs):
    arn = ecs.create_cluster(clusterName=unique("tags"))["cluster"]["clusterArn"]
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.tag_resource(resourceArn=arn, tags=[{"key": "aws:owner", "value": "me"}])
