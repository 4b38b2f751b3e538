"""Services with real containers: two `stevedore agent`s on this machine (separate state
dirs and availability zones, one dockerd) under one `stevedore server`. A 4-task service
spreads 2+2 over the zones, a `docker kill`ed container is replaced, a rolling update shows
in the events, a revision that cannot start is rolled back by the circuit breaker, and a
drained instance's tasks move to the other."""
from __future__ import annotations

import collections
import json
import subprocess
import time

from agent_fixtures import IMAGE, agent_env, connected_instances, containers, wait_for
from conftest import unique

# Two agents, one per availability zone.
env = agent_env("svc-agents", "svc",
                agents=[("--availability-zone", "a"), ("--availability-zone", "b")])


def register(aws, family: str, **kw) -> str:
    c = {"name": "app", "image": IMAGE, "memory": 32, "essential": True,
         "command": ["/bin/busybox", "sh", "-c", "sleep 3600"], "stopTimeout": 2}
    c.update(kw)
    out = aws.run("ecs", "register-task-definition", "--family", family, "--network-mode", "bridge",
                  "--container-definitions", json.dumps([c]))
    return out["taskDefinition"]["taskDefinitionArn"]


def describe(aws, cluster: str, name: str) -> dict:
    return aws.run("ecs", "describe-services", "--cluster", cluster, "--services", name)["services"][0]


def steady(s: dict) -> bool:
    d = s["deployments"]
    return len(d) == 1 and d[0].get("rolloutState") == "COMPLETED" and s["runningCount"] == s["desiredCount"]


def running_tasks(aws, cluster: str, name: str) -> list[dict]:
    arns = aws.run("ecs", "list-tasks", "--cluster", cluster, "--service-name", name)["taskArns"]
    if not arns:
        return []
    return aws.run("ecs", "describe-tasks", "--cluster", cluster, "--tasks", *arns)["tasks"]


def zones(aws, cluster: str) -> dict:
    return {ci["containerInstanceArn"]: next(a["value"] for a in ci["attributes"] if a["name"] == "ecs.availability-zone")
            for ci in connected_instances(aws, cluster)}


def wait_steady(env, name: str, extra=lambda s: True, timeout: float = 120) -> dict:
    aws, cluster = env["aws"], env["cluster"]
    return wait_for(lambda: (lambda s: s if steady(s) and extra(s) else None)(describe(aws, cluster, name)),
                    timeout, f"service {name} steady",
                    lambda: json.dumps(describe(aws, cluster, name)["events"][:6], indent=1))


def test_a_service_on_two_agents(env):
    aws, cluster = env["aws"], env["cluster"]
    fam = unique("web")
    td1 = register(aws, fam)
    name = unique("web")
    aws.run("ecs", "create-service", "--cluster", cluster, "--service-name", name,
            "--task-definition", td1, "--desired-count", "4",
            "--deployment-configuration",
            "maximumPercent=200,minimumHealthyPercent=50,deploymentCircuitBreaker={enable=true,rollback=true}")
    wait_steady(env, name)
    tasks = running_tasks(aws, cluster, name)
    z = zones(aws, cluster)
    assert collections.Counter(z[t["containerInstanceArn"]] for t in tasks) == {"us-east-1a": 2, "us-east-1b": 2}
    # Each task is a real container.
    for t in tasks:
        assert t["containers"][0].get("runtimeId"), t

    # A container killed behind the agent's back is replaced.
    victim = tasks[0]
    subprocess.run(["docker", "kill", victim["containers"][0]["runtimeId"]], check=True, capture_output=True, timeout=30)
    def replaced(s):
        arns = {t["taskArn"] for t in running_tasks(aws, cluster, name)}
        return steady(s) and len(arns) == 4 and victim["taskArn"] not in arns
    wait_steady(env, name, replaced)
    stopped = aws.run("ecs", "describe-tasks", "--cluster", cluster, "--tasks", victim["taskArn"])["tasks"][0]
    assert stopped["lastStatus"] == "STOPPED" and stopped["stopCode"] == "EssentialContainerExited"

    # A rolling update to a new revision.
    td2 = register(aws, fam, environment=[{"name": "V", "value": "2"}])
    aws.run("ecs", "update-service", "--cluster", cluster, "--service", name, "--task-definition", td2)
    s = wait_steady(env, name, lambda s: s["taskDefinition"] == td2)
    assert {t["taskDefinitionArn"] for t in running_tasks(aws, cluster, name)} == {td2}
    messages = [e["message"] for e in s["events"]]
    assert any("deployment completed." in m for m in messages), messages
    assert any(m.startswith(f"(service {name}) has stopped") for m in messages), messages
    good_deployment = s["deployments"][0]["id"]

    # A revision that cannot start (its image does not exist) is rolled back.
    bad = register(aws, fam, image="stevedore-no-such-image:never")
    out = aws.run("ecs", "update-service", "--cluster", cluster, "--service", name, "--task-definition", bad)
    broken = out["service"]["deployments"][0]["id"]
    s = wait_steady(env, name, lambda s: s["taskDefinition"] == td2 and s["deployments"][0]["id"] not in (broken, good_deployment), timeout=180)
    messages = [e["message"] for e in s["events"]]
    assert f"(service {name}) (deployment {broken}) deployment failed: tasks failed to start." in messages, messages
    assert any(f"rolling back to deployment {good_deployment}." in m for m in messages), messages
    assert {t["taskDefinitionArn"] for t in running_tasks(aws, cluster, name)} == {td2}

    # Draining one instance moves its tasks to the other.
    drained = next(iter(z))
    aws.run("ecs", "update-container-instances-state", "--cluster", cluster,
            "--container-instances", drained, "--status", "DRAINING")
    def moved(s):
        ts = running_tasks(aws, cluster, name)
        return len(ts) == 4 and all(t["containerInstanceArn"] != drained for t in ts)
    wait_steady(env, name, moved)
    aws.run("ecs", "update-container-instances-state", "--cluster", cluster,
            "--container-instances", drained, "--status", "ACTIVE")

    # Deleting the service stops its containers.
    aws.run("ecs", "delete-service", "--cluster", cluster, "--service", name, "--force")
    wait_for(lambda: describe(aws, cluster, name)["status"] == "INACTIVE", 120, "service INACTIVE")
    wait_for(lambda: not containers(f"com.amazonaws.ecs.cluster={env['cluster_arn']}", all_=False), 120,
             "service containers stopped")
