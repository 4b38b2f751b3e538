"""Tasks and placement through boto3 and the aws CLI, on hollow instances (`stevedore sim`)."""

from __future__ import annotations

import collections
import concurrent.futures

import botocore.exceptions
import pytest

from conftest import register, unique
from sim_fixtures import Sim, registered, resource, wait_tasks


def td(ecs, memory=256, cpu=128, **container):
    c = {"name": "app", "image": "busybox", "memory": memory, "cpu": cpu, "essential": True}
    c.update(container)
    return register(ecs, containerDefinitions=[c])


def by_instance(tasks):
    return collections.Counter(t["containerInstanceArn"] for t in tasks)


def test_run_task_places_tasks_that_reach_running_with_network_bindings(server, ecs):
    with Sim(server, ecs, instances=3) as sim:
        d = td(ecs, portMappings=[{"containerPort": 80, "hostPort": 0}])
        out = ecs.run_task(cluster=sim.cluster, taskDefinition=d["family"], count=5)
        assert out["failures"] == []
        assert len(out["tasks"]) == 5
        t0 = out["tasks"][0]
        assert t0["lastStatus"] == "PENDING" and t0["desiredStatus"] == "RUNNING"
        assert t0["launchType"] == "EC2" and t0["group"] == f"family:{d['family']}"
        assert t0["taskArn"].startswith(f"arn:aws:ecs:us-east-1:000000000000:task/{sim.cluster}/")
        tasks = wait_tasks(ecs, sim.cluster, [t["taskArn"] for t in out["tasks"]], "RUNNING")
        for t in tasks:
            nb = t["containers"][0]["networkBindings"]
            assert nb and nb[0]["containerPort"] == 80 and nb[0]["hostPort"] > 0
            assert "startedAt" in t
        used = sum(registered(ci, "MEMORY") - resource(ci, "MEMORY") for ci in sim.describe_instances())
        assert used == 5 * 256
        assert sum(ci["runningTasksCount"] for ci in sim.describe_instances()) == 5


def test_stop_task_ends_stopped_user_initiated_and_gives_resources_back(server, ecs):
    with Sim(server, ecs, instances=1) as sim:
        d = td(ecs)
        arn = ecs.run_task(cluster=sim.cluster, taskDefinition=d["taskDefinitionArn"])["tasks"][0]["taskArn"]
        wait_tasks(ecs, sim.cluster, [arn], "RUNNING")
        stopped = ecs.stop_task(cluster=sim.cluster, task=arn, reason="done here")["task"]
        assert stopped["desiredStatus"] == "STOPPED"
        t = wait_tasks(ecs, sim.cluster, [arn], "STOPPED")[0]
        assert t["stopCode"] == "UserInitiated"
        assert t["stoppedReason"] == "done here"
        assert "stoppedAt" in t and t["containers"][0]["lastStatus"] == "STOPPED"
        ci = sim.describe_instances()[0]
        assert resource(ci, "MEMORY") == registered(ci, "MEMORY")
        assert ci["runningTasksCount"] == 0 and ci["pendingTasksCount"] == 0
        # Stopping again is harmless.
        assert ecs.stop_task(cluster=sim.cluster, task=arn)["task"]["lastStatus"] == "STOPPED"


def test_binpack_memory_fills_one_instance_before_using_another(server, ecs):
    with Sim(server, ecs, instances=3, memory=8192) as sim:
        d = td(ecs, memory=1024)
        out = ecs.run_task(
            cluster=sim.cluster, taskDefinition=d["family"], count=6, placementStrategy=[{"type": "binpack", "field": "memory"}]
        )
        assert len(out["tasks"]) == 6
        assert len(by_instance(out["tasks"])) == 1


def test_spread_over_availability_zones_balances_tasks(server, ecs):
    with Sim(server, ecs, instances=6, zones="a,b,c") as sim:
        d = td(ecs)
        out = ecs.run_task(
            cluster=sim.cluster,
            taskDefinition=d["family"],
            count=9,
            placementStrategy=[{"type": "spread", "field": "attribute:ecs.availability-zone"}, {"type": "spread", "field": "instanceId"}],
        )
        assert len(out["tasks"]) == 9
        zones = collections.Counter(t["availabilityZone"] for t in out["tasks"])
        assert zones == {"us-east-1a": 3, "us-east-1b": 3, "us-east-1c": 3}
        assert max(by_instance(out["tasks"]).values()) == 2


def test_distinct_instance_never_places_two_tasks_of_a_group_on_one_instance(server, ecs):
    with Sim(server, ecs, instances=3) as sim:
        d = td(ecs)
        out = ecs.run_task(cluster=sim.cluster, taskDefinition=d["family"], count=5, placementConstraints=[{"type": "distinctInstance"}])
        assert len(out["tasks"]) == 3
        assert set(by_instance(out["tasks"]).values()) == {1}
        assert out["failures"] and all(f["reason"] == "DistinctInstance placement constraint unsatisfied." for f in out["failures"])


def test_member_of_keeps_tasks_on_matching_instances(server, ecs):
    with Sim(server, ecs, instances=6) as sim:
        d = td(ecs)
        out = ecs.run_task(
            cluster=sim.cluster,
            taskDefinition=d["family"],
            count=4,
            placementConstraints=[{"type": "memberOf", "expression": "attribute:ecs.availability-zone == us-east-1b"}],
        )
        assert len(out["tasks"]) == 4
        assert {t["availabilityZone"] for t in out["tasks"]} == {"us-east-1b"}


def test_unsatisfiable_member_of_reports_the_constraint(server, ecs):
    with Sim(server, ecs, instances=2) as sim:
        d = td(ecs)
        out = ecs.run_task(
            cluster=sim.cluster,
            taskDefinition=d["family"],
            placementConstraints=[{"type": "memberOf", "expression": "attribute:ecs.instance-type =~ x9.*"}],
        )
        assert out["tasks"] == []
        assert {f["reason"] for f in out["failures"]} == {"MemberOf placement constraint unsatisfied."}


def test_memory_shortage_reports_resource_memory(server, ecs):
    with Sim(server, ecs, instances=2, memory=2048) as sim:
        d = td(ecs, memory=4096)
        out = ecs.run_task(cluster=sim.cluster, taskDefinition=d["family"])
        assert out["tasks"] == []
        assert {f["reason"] for f in out["failures"]} == {"RESOURCE:MEMORY"}
        assert all(f["arn"].startswith("arn:aws:ecs:us-east-1:000000000000:container-instance/") for f in out["failures"])


def test_static_host_port_is_used_once_per_instance(server, ecs):
    with Sim(server, ecs, instances=2) as sim:
        d = td(ecs, portMappings=[{"containerPort": 80, "hostPort": 8080}])
        out = ecs.run_task(cluster=sim.cluster, taskDefinition=d["family"], count=3)
        assert len(out["tasks"]) == 2
        assert set(by_instance(out["tasks"]).values()) == {1}
        assert {f["reason"] for f in out["failures"]} == {"RESOURCE:PORTS"}
        ci = sim.describe_instances()[0]
        assert "8080" in next(r for r in ci["remainingResources"] if r["name"] == "PORTS")["stringSetValue"]


def test_reserved_instance_ports_are_never_handed_out(server, ecs):
    with Sim(server, ecs, instances=1) as sim:
        d = td(ecs, portMappings=[{"containerPort": 22, "hostPort": 22}])
        out = ecs.run_task(cluster=sim.cluster, taskDefinition=d["family"])
        assert out["tasks"] == [] and out["failures"][0]["reason"] == "RESOURCE:PORTS"


def test_bad_expression_is_invalid_parameter_that_points_at_the_problem(server, ecs):
    with Sim(server, ecs, instances=1) as sim:
        d = td(ecs)
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ecs.run_task(
                cluster=sim.cluster,
                taskDefinition=d["family"],
                placementConstraints=[{"type": "memberOf", "expression": "attribute:stack =="}],
            )
        assert e.value.response["Error"]["Code"] == "InvalidParameterException"
        assert "character" in e.value.response["Error"]["Message"]


def test_start_task_runs_on_the_named_instance(server, ecs):
    with Sim(server, ecs, instances=3) as sim:
        d = td(ecs)
        target = sim.instance_arns()[1]
        out = ecs.start_task(cluster=sim.cluster, taskDefinition=d["family"], containerInstances=[target])
        assert [t["containerInstanceArn"] for t in out["tasks"]] == [target]
        wait_tasks(ecs, sim.cluster, [out["tasks"][0]["taskArn"]], "RUNNING")
        out = ecs.start_task(cluster=sim.cluster, taskDefinition=d["family"], containerInstances=["0" * 32])
        assert out["tasks"] == [] and out["failures"][0]["reason"] == "MISSING"


def test_list_tasks_filters_and_paginates(server, ecs):
    with Sim(server, ecs, instances=2) as sim:
        d = td(ecs)
        other = td(ecs)
        started = ecs.run_task(cluster=sim.cluster, taskDefinition=d["family"], count=7, startedBy="batch-1")["tasks"]
        ecs.run_task(cluster=sim.cluster, taskDefinition=other["family"], count=2)
        arns = {t["taskArn"] for t in started}
        listed = []
        for page in ecs.get_paginator("list_tasks").paginate(cluster=sim.cluster, startedBy="batch-1", PaginationConfig={"PageSize": 3}):
            assert len(page["taskArns"]) <= 3
            listed.extend(page["taskArns"])
        assert set(listed) == arns and len(listed) == 7
        fam = ecs.list_tasks(cluster=sim.cluster, family=other["family"])["taskArns"]
        assert len(fam) == 2
        inst = started[0]["containerInstanceArn"]
        on_inst = ecs.list_tasks(cluster=sim.cluster, containerInstance=inst)["taskArns"]
        assert started[0]["taskArn"] in on_inst
        ecs.stop_task(cluster=sim.cluster, task=started[0]["taskArn"])
        wait_tasks(ecs, sim.cluster, [started[0]["taskArn"]], "STOPPED")
        assert started[0]["taskArn"] in ecs.list_tasks(cluster=sim.cluster, desiredStatus="STOPPED")["taskArns"]
        assert started[0]["taskArn"] not in ecs.list_tasks(cluster=sim.cluster, startedBy="batch-1")["taskArns"]


def test_client_token_makes_run_task_idempotent(server, ecs):
    with Sim(server, ecs, instances=2) as sim:
        d = td(ecs)
        token = unique("tok")
        a = ecs.run_task(cluster=sim.cluster, taskDefinition=d["family"], count=2, clientToken=token)["tasks"]
        b = ecs.run_task(cluster=sim.cluster, taskDefinition=d["family"], count=2, clientToken=token)["tasks"]
        assert sorted(t["taskArn"] for t in a) == sorted(t["taskArn"] for t in b)
        assert len(ecs.list_tasks(cluster=sim.cluster)["taskArns"]) == 2
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ecs.run_task(cluster=sim.cluster, taskDefinition=d["family"], count=1, clientToken=token)
        assert e.value.response["Error"]["Code"] == "ConflictException"


def test_list_container_instances_filter_uses_the_cluster_query_language(server, ecs):
    with Sim(server, ecs, instances=6) as sim:
        a = ecs.list_container_instances(cluster=sim.cluster, filter="attribute:ecs.availability-zone == us-east-1a")["containerInstanceArns"]
        assert len(a) == 2
        ab = ecs.list_container_instances(
            cluster=sim.cluster, filter="attribute:ecs.availability-zone in [us-east-1a, us-east-1b] and agentConnected == true"
        )["containerInstanceArns"]
        assert len(ab) == 4
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ecs.list_container_instances(cluster=sim.cluster, filter="attribute:ecs.availability-zone in")
        assert e.value.response["Error"]["Code"] == "InvalidParameterException"


def test_concurrent_run_tasks_never_overcommit_a_tight_cluster(server, ecs):
    # 4 instances x 2048 MiB, 512 MiB tasks: room for exactly 16.
    with Sim(server, ecs, instances=4, cpu=4096, memory=2048) as sim:
        d = td(ecs, memory=512)

        def one(_):
            return ecs.run_task(cluster=sim.cluster, taskDefinition=d["family"], count=2)

        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(one, range(16)))
        placed = [t for r in results for t in r["tasks"]]
        assert len(placed) == 16
        assert all(f["reason"] == "RESOURCE:MEMORY" for r in results for f in r["failures"])
        for ci in sim.describe_instances():
            assert resource(ci, "MEMORY") == 0
            assert ci["pendingTasksCount"] + ci["runningTasksCount"] == 4
        assert max(by_instance(placed).values()) == 4


def test_disconnected_agent_gets_no_tasks(server, ecs):
    with Sim(server, ecs, instances=1) as sim:
        pass
    # The sim exited: its instance is registered but its agent is gone.
    ci = ecs.describe_container_instances(cluster=sim.cluster, containerInstances=sim.instance_arns())["containerInstances"][0]
    assert ci["agentConnected"] is False
    d = td(ecs)
    out = ecs.run_task(cluster=sim.cluster, taskDefinition=d["family"])
    assert out["tasks"] == [] and out["failures"][0]["reason"] == "AGENT"


def test_draining_instance_gets_no_new_tasks(server, ecs):
    with Sim(server, ecs, instances=2) as sim:
        first, second = sim.instance_arns()
        ecs.update_container_instances_state(cluster=sim.cluster, containerInstances=[first], status="DRAINING")
        d = td(ecs)
        out = ecs.run_task(cluster=sim.cluster, taskDefinition=d["family"], count=4)
        assert {t["containerInstanceArn"] for t in out["tasks"]} == {second}


def test_run_task_refuses_bad_input_with_aws_errors(server, ecs):
    with Sim(server, ecs, instances=1) as sim:
        d = td(ecs)
        for kw, code in [
            ({"count": 11}, "InvalidParameterException"),
            ({"launchType": "FARGATE"}, "InvalidParameterException"),
            ({"taskDefinition": unique("nope")}, "ClientException"),
            ({"startedBy": "bad start*ed"}, "InvalidParameterException"),
            ({"overrides": {"containerOverrides": [{"name": "ghost"}]}}, "InvalidParameterException"),
            ({"placementStrategy": [{"type": "binpack", "field": "disk"}]}, "InvalidParameterException"),
        ]:
            args = {"cluster": sim.cluster, "taskDefinition": d["family"], **kw}
            with pytest.raises(botocore.exceptions.ClientError) as e:
                ecs.run_task(**args)
            assert e.value.response["Error"]["Code"] == code, kw
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ecs.run_task(cluster=unique("nocluster"), taskDefinition=d["family"])
        assert e.value.response["Error"]["Code"] == "ClusterNotFoundException"


def test_overrides_reach_the_task(server, ecs):
    with Sim(server, ecs, instances=1) as sim:
        d = td(ecs)
        out = ecs.run_task(
            cluster=sim.cluster,
            taskDefinition=d["family"],
            overrides={"containerOverrides": [{"name": "app", "command": ["echo", "hi"], "memory": 300, "environment": [{"name": "A", "value": "1"}]}]},
            tags=[{"key": "team", "value": "blue"}],
        )
        t = out["tasks"][0]
        assert t["overrides"]["containerOverrides"][0]["command"] == ["echo", "hi"]
        assert t["containers"][0]["memory"] == "300"
        described = ecs.describe_tasks(cluster=sim.cluster, tasks=[t["taskArn"]], include=["TAGS"])["tasks"][0]
        assert described["tags"] == [{"key": "team", "value": "blue"}]
        missing = ecs.describe_tasks(cluster=sim.cluster, tasks=["0" * 32])
        assert missing["failures"][0]["reason"] == "MISSING"


def test_aws_cli_runs_a_task_and_waits_for_it(server, ecs, aws):
    with Sim(server, ecs, instances=2) as sim:
        d = td(ecs)
        out = aws.run("ecs", "run-task", "--cluster", sim.cluster, "--task-definition", d["family"], "--count", "2")
        arns = [t["taskArn"] for t in out["tasks"]]
        aws.run("ecs", "wait", "tasks-running", "--cluster", sim.cluster, "--tasks", *arns, timeout=120)
        desc = aws.run("ecs", "describe-tasks", "--cluster", sim.cluster, "--tasks", *arns)
        assert {t["lastStatus"] for t in desc["tasks"]} == {"RUNNING"}
        aws.run("ecs", "stop-task", "--cluster", sim.cluster, "--task", arns[0])
        aws.run("ecs", "wait", "tasks-stopped", "--cluster", sim.cluster, "--tasks", arns[0], timeout=120)
