"""Task definitions: register (+ validation), describe, list, families, deregister, delete."""

import pytest
from conftest import ARN_PREFIX, container, paginate_all, register, unique


def client_error(ecs, **kw):
    with pytest.raises(ecs.exceptions.ClientException) as info:
        ecs.register_task_definition(**kw)
    return info.value.response["Error"]["Message"]


def test_register_returns_revision_one_with_arn_and_defaults(ecs):
    family = unique("fam")
    td = register(ecs, family)
    assert td["family"] == family
    assert td["revision"] == 1
    assert td["taskDefinitionArn"] == f"{ARN_PREFIX}:task-definition/{family}:1"
    assert td["status"] == "ACTIVE"
    # The model documents bridge as the default when omitted; AWS may omit the member.
    assert td.get("networkMode", "bridge") == "bridge"
    assert "EC2" in td["compatibilities"]
    c = td["containerDefinitions"][0]
    assert c["name"] == "app" and c["image"] == "nginx:latest" and c["memory"] == 128
    assert c["essential"] is True
    assert td["registeredAt"].year >= 2024


def test_register_increments_revision_per_family(ecs):
    family = unique("fam")
    revs = [register(ecs, family)["revision"] for _ in range(3)]
    assert revs == [1, 2, 3]
    other = register(ecs, unique("fam"))
    assert other["revision"] == 1


def test_revision_numbers_are_never_reused_after_deregistration(ecs):
    family = unique("fam")
    register(ecs, family)
    register(ecs, family)
    ecs.deregister_task_definition(taskDefinition=f"{family}:2")
    assert register(ecs, family)["revision"] == 3


def test_register_round_trips_container_fields(ecs):
    family = unique("fam")
    cdef = container(
        "web",
        "public.ecr.aws/nginx/nginx:1.27",
        cpu=256,
        memory=512,
        memoryReservation=256,
        portMappings=[{"containerPort": 80, "hostPort": 0, "protocol": "tcp"}],
        environment=[{"name": "A", "value": "1"}],
        command=["nginx", "-g", "daemon off;"],
        healthCheck={"command": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"], "interval": 30, "timeout": 5, "retries": 3},
        logConfiguration={"logDriver": "json-file", "options": {"max-size": "10m"}},
        dockerLabels={"x": "y"},
        ulimits=[{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}],
    )
    td = register(ecs, family, containerDefinitions=[cdef], cpu="512", memory="1024",
                  volumes=[{"name": "data", "host": {"sourcePath": "/srv/data"}}])
    got = td["containerDefinitions"][0]
    for key in ("name", "image", "cpu", "memory", "memoryReservation", "environment", "command",
                "logConfiguration", "dockerLabels", "ulimits"):
        assert got[key] == cdef[key], key
    assert got["portMappings"][0]["containerPort"] == 80
    assert got["healthCheck"]["command"] == cdef["healthCheck"]["command"]
    assert td["cpu"] == "512" and td["memory"] == "1024"
    assert td["volumes"][0]["host"]["sourcePath"] == "/srv/data"


def test_register_normalises_task_size_units(ecs):
    td = register(ecs, cpu="1 vCPU", memory="2 GB",
                  containerDefinitions=[{"name": "a", "image": "busybox"}])
    assert td["cpu"] == "1024"
    assert td["memory"] == "2048"


def test_register_fargate_definition_with_valid_size(ecs):
    td = register(ecs, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256",
                  memory="512", containerDefinitions=[{"name": "a", "image": "busybox",
                                                        "portMappings": [{"containerPort": 8080}]}])
    assert td["requiresCompatibilities"] == ["FARGATE"]
    assert "FARGATE" in td["compatibilities"]
    assert td["networkMode"] == "awsvpc"


def test_register_requires_container_definitions(ecs_unvalidated):
    ecs = ecs_unvalidated
    with pytest.raises((ecs.exceptions.ClientException, ecs.exceptions.InvalidParameterException)) as info:
        ecs.register_task_definition(family=unique("fam"), containerDefinitions=[])
    assert "container" in info.value.response["Error"]["Message"].lower()


def test_register_requires_container_name_and_image(ecs_unvalidated):
    ecs = ecs_unvalidated
    msg = client_error(ecs, family=unique("fam"), containerDefinitions=[{"image": "busybox", "memory": 64}])
    assert "name" in msg.lower()
    msg = client_error(ecs, family=unique("fam"), containerDefinitions=[{"name": "a", "memory": 64}])
    assert "image" in msg.lower()


def test_register_ec2_requires_container_memory_without_task_memory(ecs):
    msg = client_error(ecs, family=unique("fam"), containerDefinitions=[{"name": "a", "image": "busybox"}])
    assert "memory" in msg.lower()


def test_register_accepts_memory_reservation_alone(ecs):
    td = register(ecs, containerDefinitions=[{"name": "a", "image": "busybox", "memoryReservation": 64}])
    assert td["containerDefinitions"][0]["memoryReservation"] == 64


def test_register_rejects_reservation_not_below_hard_limit(ecs):
    msg = client_error(ecs, family=unique("fam"), containerDefinitions=[
        {"name": "a", "image": "busybox", "memory": 128, "memoryReservation": 256}])
    assert "memory" in msg.lower()


def test_register_rejects_duplicate_container_names(ecs):
    msg = client_error(ecs, family=unique("fam"), containerDefinitions=[container("a"), container("a")])
    assert "a" in msg


@pytest.mark.parametrize("mode", ["awsvpc", "host"])
def test_register_requires_host_port_equal_container_port(ecs, mode):
    msg = client_error(ecs, family=unique("fam"), networkMode=mode, containerDefinitions=[
        container(portMappings=[{"containerPort": 80, "hostPort": 8080}])])
    assert "port" in msg.lower()


@pytest.mark.parametrize("family", ["has space", "semi;colon", "slash/name", "x" * 256])
def test_register_rejects_invalid_family_name(ecs, family):
    client_error(ecs, family=family, containerDefinitions=[container()])


def test_register_fargate_requires_awsvpc(ecs):
    client_error(ecs, family=unique("fam"), requiresCompatibilities=["FARGATE"], networkMode="bridge",
                 cpu="256", memory="512", containerDefinitions=[{"name": "a", "image": "busybox"}])


@pytest.mark.parametrize("cpu,memory", [("256", "4096"), ("1024", "1024"), ("300", "512"), (None, None)])
def test_register_fargate_rejects_invalid_task_size(ecs, cpu, memory):
    kw = {}
    if cpu:
        kw["cpu"], kw["memory"] = cpu, memory
    client_error(ecs, family=unique("fam"), requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
                 containerDefinitions=[{"name": "a", "image": "busybox"}], **kw)


def test_register_rejects_unknown_network_mode(ecs_unvalidated):
    ecs = ecs_unvalidated
    with pytest.raises((ecs.exceptions.InvalidParameterException, ecs.exceptions.ClientException)):
        ecs.register_task_definition(family=unique("fam"), networkMode="mesh",
                                     containerDefinitions=[container()])


def test_describe_by_family_returns_latest_active_revision(ecs):
    family = unique("fam")
    for _ in range(3):
        register(ecs, family)
    assert ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]["revision"] == 3
    ecs.deregister_task_definition(taskDefinition=f"{family}:3")
    assert ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]["revision"] == 2


def test_describe_by_family_revision_and_arn(ecs):
    family = unique("fam")
    td = register(ecs, family)
    register(ecs, family)
    by_rev = ecs.describe_task_definition(taskDefinition=f"{family}:1")["taskDefinition"]
    by_arn = ecs.describe_task_definition(taskDefinition=td["taskDefinitionArn"])["taskDefinition"]
    assert by_rev["revision"] == 1 and by_arn["revision"] == 1
    assert by_rev == by_arn


def test_describe_unknown_task_definition_is_client_exception(ecs):
    for ref in (unique("nofam"), f"{unique('nofam')}:1"):
        with pytest.raises(ecs.exceptions.ClientException) as info:
            ecs.describe_task_definition(taskDefinition=ref)
        assert info.value.response["Error"]["Message"] == "Unable to describe task definition."


def test_describe_with_tags_include_returns_top_level_tags(ecs):
    family = unique("fam")
    register(ecs, family, tags=[{"key": "env", "value": "test"}])
    plain = ecs.describe_task_definition(taskDefinition=family)
    assert not plain.get("tags")
    tagged = ecs.describe_task_definition(taskDefinition=family, include=["TAGS"])
    assert tagged["tags"] == [{"key": "env", "value": "test"}]
    assert "tags" not in tagged["taskDefinition"]


def test_deregister_makes_revision_inactive_but_describable(ecs):
    family = unique("fam")
    register(ecs, family)
    td = ecs.deregister_task_definition(taskDefinition=f"{family}:1")["taskDefinition"]
    assert td["status"] == "INACTIVE"
    assert td["deregisteredAt"]
    again = ecs.describe_task_definition(taskDefinition=f"{family}:1")["taskDefinition"]
    assert again["status"] == "INACTIVE"


def test_deregister_requires_revision(ecs):
    family = unique("fam")
    register(ecs, family)
    with pytest.raises((ecs.exceptions.ClientException, ecs.exceptions.InvalidParameterException)):
        ecs.deregister_task_definition(taskDefinition=family)


def test_deregister_unknown_is_client_exception(ecs):
    with pytest.raises(ecs.exceptions.ClientException):
        ecs.deregister_task_definition(taskDefinition=f"{unique('nofam')}:1")


def test_list_task_definitions_family_prefix_is_an_exact_family_and_status_filters(ecs):
    # botocore doc: familyPrefix is "the full family name" for ListTaskDefinitions
    # (unlike ListTaskDefinitionFamilies, where it is a prefix).
    prefix = unique("lst")
    for _ in range(3):
        register(ecs, prefix)
    register(ecs, prefix + "-other")
    ecs.deregister_task_definition(taskDefinition=f"{prefix}:2")
    active = paginate_all(ecs, "list_task_definitions", "taskDefinitionArns", familyPrefix=prefix)
    assert active == [f"{ARN_PREFIX}:task-definition/{prefix}:1", f"{ARN_PREFIX}:task-definition/{prefix}:3"]
    inactive = paginate_all(ecs, "list_task_definitions", "taskDefinitionArns", familyPrefix=prefix, status="INACTIVE")
    assert inactive == [f"{ARN_PREFIX}:task-definition/{prefix}:2"]


def test_list_task_definitions_sort_desc(ecs):
    fam = unique("srt")
    for _ in range(3):
        register(ecs, fam)
    desc = ecs.list_task_definitions(familyPrefix=fam, sort="DESC")["taskDefinitionArns"]
    assert [a.rsplit(":", 1)[1] for a in desc] == ["3", "2", "1"]
    asc = ecs.list_task_definitions(familyPrefix=fam, sort="ASC")["taskDefinitionArns"]
    assert asc == list(reversed(desc))


def test_list_task_definitions_paginates_without_duplicates(ecs):
    fam = unique("pg")
    for _ in range(7):
        register(ecs, fam)
    seen, token, pages = [], None, 0
    while True:
        kw = {"familyPrefix": fam, "maxResults": 3}
        if token:
            kw["nextToken"] = token
        resp = ecs.list_task_definitions(**kw)
        seen += resp["taskDefinitionArns"]
        pages += 1
        token = resp.get("nextToken")
        if not token:
            break
        assert pages < 10
    assert pages == 3
    assert [int(a.rsplit(":", 1)[1]) for a in seen] == list(range(1, 8))


@pytest.mark.parametrize("bad", [0, 101])
def test_list_task_definitions_rejects_bad_max_results(ecs_unvalidated, bad):
    with pytest.raises(ecs_unvalidated.exceptions.InvalidParameterException):
        ecs_unvalidated.list_task_definitions(maxResults=bad)


def test_list_task_definitions_rejects_unknown_status(ecs_unvalidated):
    with pytest.raises(ecs_unvalidated.exceptions.InvalidParameterException):
        ecs_unvalidated.list_task_definitions(status="BOGUS")


def test_list_task_definition_families_by_prefix_and_status(ecs):
    prefix = unique("famlist")
    register(ecs, prefix + "-a")
    register(ecs, prefix + "-b")
    ecs.deregister_task_definition(taskDefinition=f"{prefix}-b:1")
    all_fams = paginate_all(ecs, "list_task_definition_families", "families", familyPrefix=prefix, status="ALL")
    assert all_fams == [prefix + "-a", prefix + "-b"]
    active = paginate_all(ecs, "list_task_definition_families", "families", familyPrefix=prefix, status="ACTIVE")
    assert active == [prefix + "-a"]
    inactive = paginate_all(ecs, "list_task_definition_families", "families", familyPrefix=prefix, status="INACTIVE")
    assert inactive == [prefix + "-b"]


def test_delete_task_definitions_only_inactive_ones(ecs):
    fam = unique("del")
    register(ecs, fam)
    register(ecs, fam)
    ecs.deregister_task_definition(taskDefinition=f"{fam}:1")
    resp = ecs.delete_task_definitions(taskDefinitions=[f"{fam}:1", f"{fam}:2"])
    assert [t["revision"] for t in resp["taskDefinitions"]] == [1]
    assert resp["taskDefinitions"][0]["status"] == "DELETE_IN_PROGRESS"
    assert len(resp["failures"]) == 1
    assert resp["failures"][0]["arn"] == f"{ARN_PREFIX}:task-definition/{fam}:2"
    assert resp["failures"][0]["reason"]
    assert ecs.describe_task_definition(taskDefinition=f"{fam}:2")["taskDefinition"]["status"] == "ACTIVE"


def test_delete_task_definitions_unknown_reports_failure(ecs):
    ref = f"{unique('nofam')}:1"
    resp = ecs.delete_task_definitions(taskDefinitions=[ref])
    assert resp["taskDefinitions"] == []
    assert len(resp["failures"]) == 1
