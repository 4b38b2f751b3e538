"""The task metadata endpoint v4 end to end: a container started by a real `stevedore
agent` reads `$ECS_CONTAINER_METADATA_URI_V4/task` and `$ECS_CONTAINER_METADATA_URI_V4`
with busybox wget and prints them; the test reads them from `docker logs`. Needs Docker
(fails under CI=true when it is missing)."""
from __future__ import annotations

import json
import subprocess

import pytest

from agent_fixtures import IMAGE, agent_env, describe_task, run_task, wait_for
from conftest import unique

env = agent_env("agent-metadata", "agentmeta")


def marked_json(logs: str, marker: str) -> dict | None:
    for line in logs.splitlines():
        if line.startswith(marker):
            try:
                return json.loads(line[len(marker):])
            except json.JSONDecodeError:
                return None
    return None


def docker_logs(container_id: str) -> str:
    p = subprocess.run(["docker", "logs", container_id], capture_output=True, text=True, timeout=30)
    return p.stdout + p.stderr


@pytest.mark.parametrize("network_mode", ["bridge", "host"])
def test_container_reads_its_task_metadata_v4(env, network_mode):
    aws, cluster, agent = env["aws"], env["cluster"], env["agent"]
    family = unique("meta")
    script = ('echo "URI=$ECS_CONTAINER_METADATA_URI_V4"; '
              'echo "TASK=$(/bin/busybox wget -qO- $ECS_CONTAINER_METADATA_URI_V4/task)"; '
              'echo "SELF=$(/bin/busybox wget -qO- $ECS_CONTAINER_METADATA_URI_V4)"; '
              'echo "STATS=$(/bin/busybox wget -qO- $ECS_CONTAINER_METADATA_URI_V4/stats)"; '
              'exec /bin/busybox sleep 3600')
    aws.run("ecs", "register-task-definition", "--family", family, "--network-mode", network_mode,
            "--container-definitions", json.dumps([{
                "name": "app", "image": IMAGE, "memory": 32, "essential": True, "stopTimeout": 2,
                "command": ["/bin/busybox", "sh", "-c", script],
            }]))
    arn = run_task(aws, cluster, family)
    task = wait_for(lambda: (t := describe_task(aws, cluster, arn))["lastStatus"] in ("RUNNING", "STOPPED") and t,
                    60, "RUNNING", agent.log_tail)
    assert task["lastStatus"] == "RUNNING", task
    cid = task["containers"][0]["runtimeId"]
    logs = wait_for(lambda: (l := docker_logs(cid)) and "STATS=" in l and l, 30, "the container's output",
                    agent.log_tail)
    assert "/v4/" in logs, logs
    meta = marked_json(logs, "TASK=")
    assert meta is not None, logs
    assert meta["TaskARN"] == arn
    assert meta["Cluster"] == env["cluster_arn"]
    assert meta["Family"] == family and meta["Revision"] == "1"
    assert meta["DesiredStatus"] == "RUNNING"
    assert meta["LaunchType"] == "EC2"
    assert meta["AvailabilityZone"].startswith("us-east-1")
    assert [c["Name"] for c in meta["Containers"]] == ["app"]
    me = marked_json(logs, "SELF=")
    assert me is not None, logs
    assert me["DockerId"] == cid and me["Name"] == "app" and me["Type"] == "NORMAL"
    assert me["Labels"]["com.amazonaws.ecs.task-arn"] == arn
    assert me["Limits"]["Memory"] == 32
    assert me["Networks"][0]["NetworkMode"] == network_mode
    stats = marked_json(logs, "STATS=")
    assert stats is not None and "memory_stats" in stats, logs

    aws.run("ecs", "stop-task", "--cluster", cluster, "--task", arn)
    wait_for(lambda: describe_task(aws, cluster, arn)["lastStatus"] == "STOPPED", 60, "STOPPED",
             agent.log_tail)
