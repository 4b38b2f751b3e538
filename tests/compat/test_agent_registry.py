"""The agent pulls task images from Stevedore's own registry with fresh ECR tokens, as the
ECS agent does with ECR: an image pushed with `docker push` (after `aws ecr
get-login-password | docker login`), removed locally, then run as a task by a real
`stevedore agent`, whose Docker daemon holds no login of its own. Needs Docker (fails
under CI=true when it is missing)."""
from __future__ import annotations

import re
import subprocess

from agent_fixtures import agent_env, describe_task, register_family, run_task, wait_for
from conftest import unique
from registry_fixtures import aws_env, aws_exe, docker, repo_name  # noqa: F401

# No local image: the tests push theirs to the server's registry.
env = agent_env("agent-registry", "agentreg", image=None)


def login(docker, cfg) -> None:
    host = cfg.endpoint.removeprefix("http://")
    pw = subprocess.run(
        [aws_exe(), "ecr", "get-login-password", "--region", cfg.region],
        env=aws_env(cfg), capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    out = docker.run("login", "--username", "AWS", "--password-stdin", host, input=pw)
    assert "Login Succeeded" in out.stdout


def test_agent_pulls_a_pushed_image_from_stevedores_registry_with_a_token(env, docker, tmp_path):
    aws, cfg, cluster, agent = env["aws"], env["cfg"], env["cluster"], env["agent"]
    host = cfg.endpoint.removeprefix("http://")
    repo = repo_name("agentpull")
    aws.run("ecr", "create-repository", "--repository-name", repo)
    login(docker, cfg)
    local = f"stevedore-test-{repo.split('/')[0]}:latest"
    docker.build(local, tmp_path)
    remote = f"{host}/{repo}:v1"
    docker.run("tag", local, remote)
    docker.created.add(remote)
    assert "digest: sha256:" in docker.run("push", remote).stdout
    # Gone locally: the agent must pull it, and its daemon has no login of its own.
    docker.run("rmi", remote, local)
    assert docker.run("image", "inspect", remote, check=False).returncode != 0

    family = unique("pulled")
    register_family(aws, family, [{
        "name": "app", "image": remote, "memory": 32, "essential": True, "stopTimeout": 2,
        "command": ["/bin/busybox", "sleep", "3600"],
    }])
    arn = run_task(aws, cluster, family)
    task = wait_for(lambda: (t := describe_task(aws, cluster, arn))["lastStatus"] in ("RUNNING", "STOPPED") and t,
                    90, "RUNNING", agent.log_tail)
    assert task["lastStatus"] == "RUNNING", (task, agent.log_tail())
    assert task["containers"][0]["image"] == remote
    assert docker.run("image", "inspect", remote, check=False).returncode == 0
    log = re.sub(r"\x1b\[[0-9;]*m", "", agent.log_tail(50000))
    assert "Image pulled." in log and "authenticated=true" in log, log

    aws.run("ecs", "stop-task", "--cluster", cluster, "--task", arn)
    task = wait_for(lambda: (t := describe_task(aws, cluster, arn))["lastStatus"] == "STOPPED" and t,
                    60, "STOPPED", agent.log_tail)
    assert task["stopCode"] == "UserInitiated"
    aws.run("ecr", "delete-repository", "--repository-name", repo, "--force")


def test_missing_image_on_stevedores_registry_stops_the_task_with_cannot_pull(env):
    aws, cfg, cluster, agent = env["aws"], env["cfg"], env["cluster"], env["agent"]
    host = cfg.endpoint.removeprefix("http://")
    repo = repo_name("agentmiss")
    aws.run("ecr", "create-repository", "--repository-name", repo)
    family = unique("missing")
    register_family(aws, family, [{
        "name": "app", "image": f"{host}/{repo}:absent", "memory": 32, "essential": True,
    }])
    arn = run_task(aws, cluster, family)
    task = wait_for(lambda: (t := describe_task(aws, cluster, arn))["lastStatus"] == "STOPPED" and t,
                    90, "STOPPED", agent.log_tail)
    reason = task["containers"][0].get("reason", "")
    assert reason.startswith("CannotPullContainerError"), task
    aws.run("ecr", "delete-repository", "--repository-name", repo, "--force")
