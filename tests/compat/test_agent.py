"""The real agent end to end: the aws CLI against a `stevedore server`, a `stevedore agent`
process running real containers through Docker. Needs Docker (fails under CI=true when
it is missing, skips otherwise)."""
from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request

from agent_fixtures import (
    IMAGE,
    agent_env,
    containers,
    describe_task,
    register_family,
    run_task,
    wait_for,
)
from conftest import unique

env = agent_env("agent", "agent")


def http_status(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=3) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def test_task_runs_with_network_bindings_and_stops_user_initiated(env):
    aws, cluster, agent = env["aws"], env["cluster"], env["agent"]
    family = unique("web")
    register_family(aws, family, [{
        "name": "web", "image": IMAGE, "memory": 64, "essential": True, "stopTimeout": 2,
        "command": ["/bin/busybox", "httpd", "-f", "-p", "80"],
        "portMappings": [{"containerPort": 80, "hostPort": 0}],
    }])
    arn = run_task(aws, cluster, family)
    task = wait_for(lambda: (t := describe_task(aws, cluster, arn))["lastStatus"] == "RUNNING" and t,
                    60, "RUNNING", agent.log_tail)
    c = task["containers"][0]
    assert c["runtimeId"]
    binding = c["networkBindings"][0]
    assert binding["containerPort"] == 80 and binding["hostPort"] > 0
    wait_for(lambda: http_status(binding["hostPort"]) is not None, 20, "httpd to answer")

    aws.run("ecs", "stop-task", "--cluster", cluster, "--task", arn)
    task = wait_for(lambda: (t := describe_task(aws, cluster, arn))["lastStatus"] == "STOPPED" and t,
                    60, "STOPPED", agent.log_tail)
    assert task["stopCode"] == "UserInitiated"
    assert task["containers"][0]["exitCode"] is not None


def test_essential_container_exit_stops_the_task(env):
    aws, cluster, agent = env["aws"], env["cluster"], env["agent"]
    family = unique("exit")
    register_family(aws, family, [{
        "name": "app", "image": IMAGE, "memory": 32, "essential": True,
        "command": ["/bin/busybox", "sh", "-c", "sleep 4; exit 7"],
    }])
    arn = run_task(aws, cluster, family)
    wait_for(lambda: describe_task(aws, cluster, arn)["lastStatus"] == "RUNNING", 60, "RUNNING",
             agent.log_tail)
    task = wait_for(lambda: (t := describe_task(aws, cluster, arn))["lastStatus"] == "STOPPED" and t,
                    60, "STOPPED", agent.log_tail)
    assert task["stopCode"] == "EssentialContainerExited"
    assert task["containers"][0]["exitCode"] == 7


def test_agent_killed_and_restarted_adopts_its_containers(env):
    aws, cluster, agent = env["aws"], env["cluster"], env["agent"]
    family = unique("sleep")
    register_family(aws, family, [{
        "name": "app", "image": IMAGE, "memory": 32, "essential": True, "stopTimeout": 2,
    }])
    keep, gone = run_task(aws, cluster, family), run_task(aws, cluster, family)
    ids = {}
    for arn in (keep, gone):
        t = wait_for(lambda: (t := describe_task(aws, cluster, arn))["lastStatus"] == "RUNNING" and t,
                     60, "RUNNING", agent.log_tail)
        ids[arn] = t["containers"][0]["runtimeId"]
    instances = aws.run("ecs", "list-container-instances", "--cluster", cluster)["containerInstanceArns"]

    agent.kill()  # SIGKILL: containers keep running
    assert containers(f"com.amazonaws.ecs.task-arn={keep}", all_=False) == [ids[keep]]
    subprocess.run(["docker", "kill", ids[gone]], check=True, capture_output=True, timeout=30)
    agent.start()

    task = wait_for(lambda: (t := describe_task(aws, cluster, gone))["lastStatus"] == "STOPPED" and t,
                    60, "the exited task to be reported STOPPED", agent.log_tail)
    assert task["containers"][0]["exitCode"] == 137
    assert task["containers"][0]["runtimeId"] == ids[gone]
    t = describe_task(aws, cluster, keep)
    assert t["lastStatus"] == "RUNNING"
    assert containers(f"com.amazonaws.ecs.task-arn={keep}") == [ids[keep]]
    assert aws.run("ecs", "list-container-instances", "--cluster", cluster)["containerInstanceArns"] == instances

    aws.run("ecs", "stop-task", "--cluster", cluster, "--task", keep)
    wait_for(lambda: describe_task(aws, cluster, keep)["lastStatus"] == "STOPPED", 60, "STOPPED",
             agent.log_tail)


def test_awslogs_containers_ship_their_output_to_the_logs_api(env):
    aws, cluster, agent = env["aws"], env["cluster"], env["agent"]
    family, group = unique("logs"), unique("/ecs/agent-test")
    register_family(aws, family, [{
        "name": "app", "image": IMAGE, "memory": 32, "essential": True, "stopTimeout": 1,
        "command": ["/bin/busybox", "sh", "-c", "echo line-one; echo line-two >&2; sleep 3600"],
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": group, "awslogs-region": "us-east-1",
            "awslogs-stream-prefix": "p", "awslogs-create-group": "true"}},
    }])
    arn = run_task(aws, cluster, family)
    stream = f"p/app/{arn.rsplit('/', 1)[1]}"

    def messages():
        out = aws.run("logs", "get-log-events", "--log-group-name", group, "--log-stream-name",
                      stream, "--start-from-head", check=False)
        if out.returncode != 0:
            return None
        got = [e["message"] for e in json.loads(out.stdout)["events"]]
        return got if {"line-one", "line-two"} <= set(got) else None

    got = wait_for(messages, 60, "the container's lines in the Logs API", agent.log_tail)
    assert got.count("line-one") == 1
    aws.run("ecs", "stop-task", "--cluster", cluster, "--task", arn)
    wait_for(lambda: describe_task(aws, cluster, arn)["lastStatus"] == "STOPPED", 60, "STOPPED",
             agent.log_tail)
