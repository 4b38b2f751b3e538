"""`stevedore sim` itself: hollow instances register like the real agent (resources,
zones, capabilities), report dynamic host ports, and leave cleanly on SIGTERM."""

from __future__ import annotations

import collections
import time

from conftest import register
from sim_fixtures import Sim, registered, wait_tasks


def attrs(ci: dict) -> dict:
    return {a["name"]: a.get("value") for a in ci["attributes"]}


def test_hollow_instances_register_zones_round_robin_with_agent_capabilities(server, ecs):
    with Sim(server, ecs, instances=4, zones="a,b", cpu=2048, memory=4096) as sim:
        cis = sim.describe_instances()
        zones = collections.Counter(attrs(ci)["ecs.availability-zone"] for ci in cis)
        assert zones == {"us-east-1a": 2, "us-east-1b": 2}
        ci = cis[0]
        a = attrs(ci)
        assert a["ecs.instance-type"] == "m5.xlarge"
        assert a["ecs.os-type"] == "linux"
        assert a["ecs.cpu-architecture"] == "x86_64"
        for cap in (
            "com.amazonaws.ecs.capability.docker-remote-api.1.17",
            "com.amazonaws.ecs.capability.docker-remote-api.1.44",
            "com.amazonaws.ecs.capability.logging-driver.awslogs",
            "com.amazonaws.ecs.capability.task-iam-role",
            "ecs.capability.task-eni",
            "ecs.capability.container-health-check",
            "ecs.capability.container-ordering",
        ):
            assert cap in a, cap
        assert registered(ci, "CPU") == 2048
        assert registered(ci, "MEMORY") == 4096
        assert sorted(registered(ci, "PORTS", "stringSetValue")) == sorted(["22", "2375", "2376", "51678", "51679"])
        assert ci["versionInfo"]["agentVersion"] == "1.0.0-stevedore-sim"
        assert ci["agentConnected"] is True


def test_dynamic_host_ports_are_reported_from_the_ephemeral_range(server, ecs):
    d = register(
        ecs,
        containerDefinitions=[
            {
                "name": "web",
                "image": "nginx",
                "memory": 128,
                "essential": True,
                "portMappings": [{"containerPort": 80, "hostPort": 0}, {"containerPort": 443, "hostPort": 8443}],
            }
        ],
    )
    with Sim(server, ecs, instances=1) as sim:
        arn = ecs.run_task(cluster=sim.cluster, taskDefinition=d["taskDefinitionArn"])["tasks"][0]["taskArn"]
        t = wait_tasks(ecs, sim.cluster, [arn], "RUNNING")[0]
        bindings = {b["containerPort"]: b["hostPort"] for b in t["containers"][0]["networkBindings"]}
        assert bindings[443] == 8443
        assert bindings[80] >= 49153


def test_sigterm_stops_the_sim_and_the_instances_show_disconnected(server, ecs):
    sim = Sim(server, ecs, instances=2)
    with sim:
        proc = sim.proc
        proc.terminate()
        assert proc.wait(timeout=15) == 0
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if not any(ci["agentConnected"] for ci in sim.describe_instances()):
                break
            time.sleep(0.2)
        assert not any(ci["agentConnected"] for ci in sim.describe_instances())
