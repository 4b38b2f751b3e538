"""ECS services on hollow instances (`stevedore sim`): desired count kept, spread over
zones, rolling deployments within min/max percent, replacement of stopped tasks, draining,
DAEMON services, the circuit breaker with rollback, deletion, and AWS's errors."""

from __future__ import annotations

import collections
import threading
import time

import botocore.exceptions
import pytest

from conftest import container, register, unique
from sim_fixtures import Sim


def describe(ecs, cluster: str, name: str) -> dict:
    out = ecs.describe_services(cluster=cluster, services=[name])
    assert out["failures"] == [], out["failures"]
    return out["services"][0]


def wait_service(ecs, cluster: str, name: str, pred, timeout: float = 60, what: str = "condition") -> dict:
    deadline = time.monotonic() + timeout
    s = {}
    while time.monotonic() < deadline:
        s = describe(ecs, cluster, name)
        if pred(s):
            return s
        time.sleep(0.2)
    raise AssertionError(f"service {name}: {what} not reached within {timeout} s: {summary(s)}")


def summary(s: dict) -> dict:
    return {
        "status": s.get("status"),
        "desired": s.get("desiredCount"),
        "running": s.get("runningCount"),
        "pending": s.get("pendingCount"),
        "deployments": [(d["id"], d["status"], d.get("rolloutState"), d["runningCount"], d["failedTasks"]) for d in s.get("deployments", [])],
        "events": [e["message"] for e in s.get("events", [])[:5]],
    }


def steady(s: dict) -> bool:
    return (
        len(s["deployments"]) == 1
        and s["runningCount"] == s["desiredCount"]
        and s["deployments"][0].get("rolloutState") == "COMPLETED"
    )


def service_tasks(ecs, cluster: str, name: str, status: str = "RUNNING") -> list[dict]:
    arns = []
    for page in ecs.get_paginator("list_tasks").paginate(cluster=cluster, serviceName=name, desiredStatus=status):
        arns.extend(page["taskArns"])
    out = []
    for i in range(0, len(arns), 100):
        out.extend(ecs.describe_tasks(cluster=cluster, tasks=arns[i : i + 100])["tasks"])
    return out


def zone_of(sim: Sim) -> dict:
    return {
        ci["containerInstanceArn"]: next(a["value"] for a in ci["attributes"] if a["name"] == "ecs.availability-zone")
        for ci in sim.describe_instances()
    }


def test_a_replica_service_spreads_over_zones_and_reaches_steady_state(server, ecs):
    td = register(ecs, containerDefinitions=[container(memory=256)])
    with Sim(server, ecs, instances=4, zones="a,b") as sim:
        name = unique("web")
        created = ecs.create_service(cluster=sim.cluster, serviceName=name, taskDefinition=td["taskDefinitionArn"], desiredCount=4)["service"]
        assert created["status"] == "ACTIVE"
        assert created["schedulingStrategy"] == "REPLICA"
        assert created["launchType"] == "EC2"
        assert created["deploymentConfiguration"]["maximumPercent"] == 200
        assert created["deploymentConfiguration"]["minimumHealthyPercent"] == 100
        assert created["deploymentController"] == {"type": "ECS"}
        dep = created["deployments"][0]
        assert dep["status"] == "PRIMARY" and dep["rolloutState"] == "IN_PROGRESS" and dep["id"].startswith("ecs-svc/")
        s = wait_service(ecs, sim.cluster, name, steady, what="steady state")
        assert s["runningCount"] == 4 and s["pendingCount"] == 0
        messages = [e["message"] for e in s["events"]]
        assert f"(service {name}) has reached a steady state." in messages
        assert any(m.startswith(f"(service {name}) has started 4 tasks:") for m in messages), messages
        assert any("deployment completed." in m for m in messages), messages
        tasks = service_tasks(ecs, sim.cluster, name)
        assert len(tasks) == 4
        assert {t["group"] for t in tasks} == {f"service:{name}"}
        assert {t["startedBy"] for t in tasks} == {dep["id"]}
        zones = zone_of(sim)
        assert collections.Counter(zones[t["containerInstanceArn"]] for t in tasks) == {"us-east-1a": 2, "us-east-1b": 2}
        assert len({t["containerInstanceArn"] for t in tasks}) == 4
        # The CLI's own waiter agrees (one deployment, running == desired).
        ecs.get_waiter("services_stable").wait(cluster=sim.cluster, services=[name], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        # ListServices and the cluster's count see it.
        assert created["serviceArn"] in ecs.list_services(cluster=sim.cluster)["serviceArns"]
        assert ecs.describe_clusters(clusters=[sim.cluster])["clusters"][0]["activeServicesCount"] == 1


def test_scaling_out_and_in_and_replacing_a_stopped_task(server, ecs):
    td = register(ecs, containerDefinitions=[container(memory=128)])
    with Sim(server, ecs, instances=3) as sim:
        name = unique("svc")
        ecs.create_service(cluster=sim.cluster, serviceName=name, taskDefinition=td["taskDefinitionArn"], desiredCount=2)
        wait_service(ecs, sim.cluster, name, steady)
        ecs.update_service(cluster=sim.cluster, service=name, desiredCount=5)
        wait_service(ecs, sim.cluster, name, lambda s: steady(s) and s["runningCount"] == 5)
        ecs.update_service(cluster=sim.cluster, service=name, desiredCount=1)
        wait_service(ecs, sim.cluster, name, lambda s: steady(s) and s["runningCount"] == 1)
        assert len(service_tasks(ecs, sim.cluster, name)) == 1
        victim = service_tasks(ecs, sim.cluster, name)[0]
        ecs.stop_task(cluster=sim.cluster, task=victim["taskArn"], reason="chaos")
        def replaced(s):
            running = service_tasks(ecs, sim.cluster, name)
            return steady(s) and len(running) == 1 and running[0]["taskArn"] != victim["taskArn"]
        wait_service(ecs, sim.cluster, name, replaced, what="replacement")


def test_a_rolling_update_keeps_min_healthy_and_max_percent(server, ecs):
    fam = unique("roll")
    td1 = register(ecs, family=fam, containerDefinitions=[container(memory=128)])
    td2 = register(ecs, family=fam, containerDefinitions=[container(memory=128, environment=[{"name": "V", "value": "2"}])])
    with Sim(server, ecs, instances=4) as sim:
        name = unique("roll")
        ecs.create_service(
            cluster=sim.cluster,
            serviceName=name,
            taskDefinition=td1["taskDefinitionArn"],
            desiredCount=6,
            deploymentConfiguration={"minimumHealthyPercent": 50, "maximumPercent": 150},
        )
        wait_service(ecs, sim.cluster, name, steady)
        ecs.update_service(cluster=sim.cluster, service=name, taskDefinition=td2["taskDefinitionArn"])
        s = describe(ecs, sim.cluster, name)
        assert [d["status"] for d in s["deployments"]] == ["PRIMARY", "ACTIVE"]
        assert s["deployments"][0]["taskDefinition"] == td2["taskDefinitionArn"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            running = service_tasks(ecs, sim.cluster, name)
            # Never fewer than 3 (50% of 6) running, never more than 9 (150%) meant to run.
            assert len(running) >= 3, len(running)
            assert len(running) <= 9, len(running)
            s = describe(ecs, sim.cluster, name)
            if steady(s) and s["taskDefinition"] == td2["taskDefinitionArn"]:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"rolling update did not finish: {summary(s)}")
        tasks = service_tasks(ecs, sim.cluster, name)
        assert len(tasks) == 6 and {t["taskDefinitionArn"] for t in tasks} == {td2["taskDefinitionArn"]}


def test_draining_an_instance_moves_service_tasks_and_leaves_standalone_ones(server, ecs):
    td = register(ecs, containerDefinitions=[container(memory=128)])
    with Sim(server, ecs, instances=3) as sim:
        name = unique("drain")
        ecs.create_service(cluster=sim.cluster, serviceName=name, taskDefinition=td["taskDefinitionArn"], desiredCount=3)
        wait_service(ecs, sim.cluster, name, steady)
        tasks = service_tasks(ecs, sim.cluster, name)
        target = tasks[0]["containerInstanceArn"]
        standalone = ecs.start_task(cluster=sim.cluster, taskDefinition=td["taskDefinitionArn"], containerInstances=[target])["tasks"][0]
        ecs.update_container_instances_state(cluster=sim.cluster, containerInstances=[target], status="DRAINING")
        def moved(s):
            running = service_tasks(ecs, sim.cluster, name)
            return steady(s) and len(running) == 3 and all(t["containerInstanceArn"] != target for t in running)
        wait_service(ecs, sim.cluster, name, moved, what="tasks moved off the draining instance")
        left = ecs.describe_tasks(cluster=sim.cluster, tasks=[standalone["taskArn"]])["tasks"][0]
        assert left["desiredStatus"] == "RUNNING", "standalone tasks are left alone"
        ecs.update_container_instances_state(cluster=sim.cluster, containerInstances=[target], status="ACTIVE")


def test_a_daemon_service_runs_one_task_per_instance(server, ecs):
    td = register(ecs, containerDefinitions=[container(memory=64)])
    with Sim(server, ecs, instances=3) as sim:
        name = unique("daemon")
        s = ecs.create_service(cluster=sim.cluster, serviceName=name, taskDefinition=td["taskDefinitionArn"], schedulingStrategy="DAEMON")["service"]
        assert s["schedulingStrategy"] == "DAEMON"
        assert s["deploymentConfiguration"]["maximumPercent"] == 100
        assert s["deploymentConfiguration"]["minimumHealthyPercent"] == 0
        s = wait_service(ecs, sim.cluster, name, lambda s: steady(s) and s["desiredCount"] == 3)
        tasks = service_tasks(ecs, sim.cluster, name)
        assert len({t["containerInstanceArn"] for t in tasks}) == 3 == len(tasks)
        one = tasks[0]["containerInstanceArn"]
        ecs.update_container_instances_state(cluster=sim.cluster, containerInstances=[one], status="DRAINING")
        wait_service(ecs, sim.cluster, name, lambda s: steady(s) and s["desiredCount"] == 2 and s["runningCount"] == 2)
        assert one not in {t["containerInstanceArn"] for t in service_tasks(ecs, sim.cluster, name)}
        ecs.update_container_instances_state(cluster=sim.cluster, containerInstances=[one], status="ACTIVE")
        wait_service(ecs, sim.cluster, name, lambda s: steady(s) and s["desiredCount"] == 3 and s["runningCount"] == 3)
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ecs.update_service(cluster=sim.cluster, service=name, desiredCount=5)
        assert e.value.response["Error"]["Code"] == "InvalidParameterException"


class Crasher:
    """Plays a broken image: reports every task of one deployment STOPPED as soon as it
    exists, as an agent would when its essential container exits at once."""

    def __init__(self, ecs, cluster: str, service: str, deployment: str):
        self.ecs, self.cluster, self.service, self.deployment = ecs, cluster, service, deployment
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            for t in service_tasks(self.ecs, self.cluster, self.service):
                if t.get("startedBy") == self.deployment:
                    self.ecs.submit_task_state_change(
                        cluster=self.cluster, task=t["taskArn"], status="STOPPED", reason="Essential container in task exited"
                    )
            time.sleep(0.1)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=10)


def test_the_circuit_breaker_fails_a_broken_deployment_and_rolls_back(server, ecs):
    fam = unique("cb")
    good = register(ecs, family=fam, containerDefinitions=[container(memory=64)])
    # A health check hollow instances never pass: the broken deployment can never complete
    # before its tasks crash, as with a real image that exits at once.
    check = {"command": ["CMD-SHELL", "exit 1"], "interval": 5, "timeout": 2, "retries": 1}
    bad = register(ecs, family=fam, containerDefinitions=[container(memory=64, image="broken:latest", healthCheck=check)])
    with Sim(server, ecs, instances=2) as sim:
        name = unique("cb")
        ecs.create_service(
            cluster=sim.cluster,
            serviceName=name,
            taskDefinition=good["taskDefinitionArn"],
            desiredCount=2,
            deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True}},
        )
        first = wait_service(ecs, sim.cluster, name, steady)["deployments"][0]["id"]
        broken = ecs.update_service(cluster=sim.cluster, service=name, taskDefinition=bad["taskDefinitionArn"])["service"]["deployments"][0]["id"]
        with Crasher(ecs, sim.cluster, name, broken):
            def rolled_back(s):
                return any(d["id"] == broken and d.get("rolloutState") == "FAILED" for d in s["deployments"]) or (
                    steady(s) and s["deployments"][0]["id"] != broken and s["taskDefinition"] == good["taskDefinitionArn"]
                )
            s = wait_service(ecs, sim.cluster, name, rolled_back, what="circuit breaker")
        s = wait_service(ecs, sim.cluster, name, lambda s: steady(s) and s["taskDefinition"] == good["taskDefinitionArn"], what="rollback")
        messages = [e["message"] for e in s["events"]]
        assert f"(service {name}) (deployment {broken}) deployment failed: tasks failed to start." in messages, messages
        assert any(f"rolling back to deployment {first}." in m for m in messages), messages
        primary = s["deployments"][0]
        assert primary["taskDefinition"] == good["taskDefinitionArn"]
        assert primary["id"] not in (first, broken), "a rollback is a new deployment of the old revision"
        # The old tasks kept serving throughout (minimumHealthyPercent 100).
        assert {t["taskDefinitionArn"] for t in service_tasks(ecs, sim.cluster, name)} == {good["taskDefinitionArn"]}


def test_deleting_a_service_drains_it_to_inactive(server, ecs):
    td = register(ecs, containerDefinitions=[container(memory=64)])
    with Sim(server, ecs, instances=2) as sim:
        name = unique("del")
        arn = ecs.create_service(cluster=sim.cluster, serviceName=name, taskDefinition=td["taskDefinitionArn"], desiredCount=2)["service"]["serviceArn"]
        wait_service(ecs, sim.cluster, name, steady)
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ecs.delete_cluster(cluster=sim.cluster)
        assert e.value.response["Error"]["Code"] in ("ClusterContainsServicesException", "ClusterContainsContainerInstancesException")
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ecs.delete_service(cluster=sim.cluster, service=name)
        assert e.value.response["Error"]["Code"] == "InvalidParameterException"
        assert "scaled above 0" in e.value.response["Error"]["Message"]
        d = ecs.delete_service(cluster=sim.cluster, service=arn, force=True)["service"]
        assert d["status"] == "DRAINING"
        wait_service(ecs, sim.cluster, name, lambda s: s["status"] == "INACTIVE", what="INACTIVE")
        assert service_tasks(ecs, sim.cluster, name) == []
        assert arn not in ecs.list_services(cluster=sim.cluster)["serviceArns"]
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ecs.update_service(cluster=sim.cluster, service=name, desiredCount=1)
        assert e.value.response["Error"]["Code"] == "ServiceNotActiveException"
        # The name is free again.
        ecs.create_service(cluster=sim.cluster, serviceName=name, taskDefinition=td["taskDefinitionArn"], desiredCount=0)


def test_service_errors_are_aws_shaped(server, ecs):
    td = register(ecs)
    cluster = unique("errs")
    ecs.create_cluster(clusterName=cluster)

    def code(fn, **kw):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            fn(**kw)
        return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]

    base = dict(cluster=cluster, taskDefinition=td["taskDefinitionArn"])
    assert code(ecs.create_service, serviceName="bad name!", desiredCount=1, **base)[0] == "InvalidParameterException"
    c, m = code(ecs.create_service, serviceName="nodesired", **base)
    assert c == "InvalidParameterException" and "desiredCount" in m
    c, m = code(ecs.create_service, serviceName="d", schedulingStrategy="DAEMON", desiredCount=2, **base)
    assert c == "InvalidParameterException"
    c, m = code(ecs.create_service, serviceName="pct", desiredCount=1, deploymentConfiguration={"maximumPercent": 50}, **base)
    assert c == "InvalidParameterException" and "maximumPercent" in m
    c, _ = code(ecs.create_service, serviceName="td", desiredCount=1, cluster=cluster, taskDefinition="nope:99")
    assert c == "ClientException"
    c, _ = code(ecs.create_service, serviceName="cl", desiredCount=1, cluster=unique("missing"), taskDefinition=td["taskDefinitionArn"])
    assert c == "ClusterNotFoundException"
    c, m = code(ecs.create_service, serviceName="expr", desiredCount=1, placementConstraints=[{"type": "memberOf", "expression": "attribute:ecs.x =="}], **base)
    assert c == "InvalidParameterException"
    ecs.create_service(serviceName="twice", desiredCount=0, clientToken="tok-1", **base)
    again = ecs.create_service(serviceName="twice", desiredCount=0, clientToken="tok-1", **base)["service"]
    assert again["serviceName"] == "twice"
    c, m = code(ecs.create_service, serviceName="twice", desiredCount=3, **base)
    assert c == "InvalidParameterException" and m == "Creation of service was not idempotent."
    missing_tg = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/nope/0123456789abcdef"
    c, m = code(ecs.create_service, serviceName="lbless", desiredCount=1,
                loadBalancers=[{"targetGroupArn": missing_tg, "containerName": "app", "containerPort": 80}], **base)
    assert c == "InvalidParameterException" and missing_tg in m
    c, m = code(ecs.create_service, serviceName="lbhalf", desiredCount=1,
                loadBalancers=[{"targetGroupArn": missing_tg, "containerName": "app"}], **base)
    assert c == "InvalidParameterException" and "containerPort" in m
    assert code(ecs.update_service, cluster=cluster, service="ghost", desiredCount=1)[0] == "ServiceNotFoundException"
    assert code(ecs.delete_service, cluster=cluster, service="ghost")[0] == "ServiceNotFoundException"
    out = ecs.describe_services(cluster=cluster, services=["ghost", "twice"])
    assert [s["serviceName"] for s in out["services"]] == ["twice"]
    assert out["failures"][0]["reason"] == "MISSING" and out["failures"][0]["arn"].endswith(":service/" + cluster + "/ghost")
    assert code(ecs.describe_services, cluster=cluster, services=[])[0] == "InvalidParameterException"


def test_the_aws_cli_creates_waits_for_and_lists_services(server, ecs, aws):
    td = register(ecs, containerDefinitions=[container(memory=64)])
    with Sim(server, ecs, instances=2) as sim:
        name = unique("cli")
        out = aws.run("ecs", "create-service", "--cluster", sim.cluster, "--service-name", name, "--task-definition", td["taskDefinitionArn"], "--desired-count", "2")
        assert out["service"]["serviceName"] == name
        wait_service(ecs, sim.cluster, name, steady)
        aws.run("ecs", "wait", "services-stable", "--cluster", sim.cluster, "--services", name, check=True)
        listed = aws.run("ecs", "list-services", "--cluster", sim.cluster)
        assert out["service"]["serviceArn"] in listed["serviceArns"]
        desc = aws.run("ecs", "describe-services", "--cluster", sim.cluster, "--services", name)
        assert desc["services"][0]["runningCount"] == 2


def test_a_deployment_survives_kill_9_of_the_server(tmp_path):
    """The controller is level-triggered: killing the server mid-deployment and starting it
    again on the same data dir neither loses nor duplicates tasks, and the deployment ends."""
    from conftest import StevedoreServer, make_client

    srv = StevedoreServer(tmp_path / "data")
    cfg = srv.start()
    ecs = make_client(cfg)
    fam = unique("k9")
    td1 = register(ecs, family=fam, containerDefinitions=[container(memory=32)])["taskDefinitionArn"]
    td2 = register(ecs, family=fam, containerDefinitions=[container(memory=32, environment=[{"name": "V", "value": "2"}])])["taskDefinitionArn"]
    try:
        with Sim(cfg, ecs, instances=5) as sim:
            name = unique("k9")
            ecs.create_service(cluster=sim.cluster, serviceName=name, taskDefinition=td1, desiredCount=20)
            wait_service(ecs, sim.cluster, name, steady)
            ecs.update_service(cluster=sim.cluster, service=name, taskDefinition=td2)
            time.sleep(0.3)
            srv.kill()
            srv.start()
            ecs = make_client(cfg)
            sim.ecs = ecs
            s = wait_service(ecs, sim.cluster, name, lambda s: steady(s) and s["taskDefinition"] == td2, timeout=120, what="deployment end after restart")
            assert s["runningCount"] == 20
            running = service_tasks(ecs, sim.cluster, name)
            assert len(running) == 20, "no task lost or duplicated"
            assert {t["taskDefinitionArn"] for t in running} == {td2}
            # The instances' books agree: nothing else holds resources in the cluster.
            c = ecs.describe_clusters(clusters=[sim.cluster])["clusters"][0]
            assert c["runningTasksCount"] + c["pendingTasksCount"] == 20, c
    finally:
        srv.kill()
