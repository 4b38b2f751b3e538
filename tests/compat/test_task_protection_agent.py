"""Task scale-in protection from inside a real container: a service task run by a real
`stevedore agent` with a task role allowed ecs:UpdateTaskProtection and
ecs:GetTaskProtection finds `$ECS_AGENT_URI`, PUTs `{"ProtectionEnabled": true,
"ExpiresInMinutes": 30}` to `$ECS_AGENT_URI/task-protection/v1/state` (busybox nc) and
GETs it back (busybox wget); the agent makes the calls with the task role's credentials,
so GetTaskProtection through boto3 sees the protection. Needs Docker; fails under CI=true
when Docker is missing."""
from __future__ import annotations

import json
import signal
import subprocess

import pytest

from agent_fixtures import IMAGE, agent_env, describe_task, wait_for
from conftest import make_client, unique

env = agent_env("task-protection", "protect")

ALLOW_PROTECTION = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow",
                   "Action": ["ecs:UpdateTaskProtection", "ecs:GetTaskProtection"],
                   "Resource": "*"}],
})
TRUST_TASKS = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
})
# PUT with busybox nc (its wget cannot PUT). Its input stays open a moment: this nc stops
# reading the answer once its input ends.
PUT_SCRIPT = r"""
u=${ECS_AGENT_URI#http://}; hp=${u%%/*}; path=/${u#*/}/task-protection/v1/state
b='{"ProtectionEnabled":true,"ExpiresInMinutes":30}'
{ printf 'PUT %s HTTP/1.0\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %s\r\n\r\n%s' \
  "$path" "$hp" "${#b}" "$b"; sleep 3; } | /bin/busybox nc "${hp%:*}" "${hp##*:}"
"""


@pytest.fixture(scope="module", autouse=True)
def clean_agent_exit(env):
    """Stops the agent with SIGTERM after the module, so it removes its NAT rules."""
    yield
    for a in env["agents"]:
        a.kill(signal.SIGTERM)


def in_container(cid: str, script: str) -> str:
    p = subprocess.run(["docker", "exec", cid, "/bin/busybox", "sh", "-c", script],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def body_of(http_response: str) -> dict:
    return json.loads(http_response.replace("\r\n", "\n").split("\n\n", 1)[1])


def test_a_container_protects_itself_through_the_agent_endpoint(env):
    aws, cfg, cluster = env["aws"], env["cfg"], env["cluster"]
    iam = make_client(cfg, "iam")
    role_name = unique("protectrole")
    role_arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=TRUST_TASKS)["Role"]["Arn"]
    iam.put_role_policy(RoleName=role_name, PolicyName="protect", PolicyDocument=ALLOW_PROTECTION)
    family = unique("protect")
    aws.run("ecs", "register-task-definition", "--family", family, "--network-mode", "bridge",
            "--task-role-arn", role_arn,
            "--container-definitions", json.dumps([{
                "name": "app", "image": IMAGE, "memory": 32, "essential": True, "stopTimeout": 2,
                "command": ["/bin/busybox", "sleep", "3600"],
            }]))
    service = unique("svc")
    aws.run("ecs", "create-service", "--cluster", cluster, "--service-name", service,
            "--task-definition", family, "--desired-count", "1")

    def running_task():
        arns = aws.run("ecs", "list-tasks", "--cluster", cluster, "--service-name", service)["taskArns"]
        if not arns:
            return None
        t = describe_task(aws, cluster, arns[0])
        return t if t["lastStatus"] == "RUNNING" else None

    agent = env["agent"]
    task = wait_for(running_task, 60, "the service task to run", agent.log_tail)
    cid = task["containers"][0]["runtimeId"]
    agent_uri = in_container(cid, 'echo "$ECS_AGENT_URI"').strip()
    assert agent_uri.startswith("http://") and "/api/" in agent_uri, agent_uri

    put = body_of(in_container(cid, PUT_SCRIPT))
    assert "error" not in put and "failure" not in put, put
    assert put["protection"]["ProtectionEnabled"] is True
    assert put["protection"]["TaskArn"] == task["taskArn"]
    assert put["protection"]["ExpirationDate"].endswith("Z")

    got = json.loads(in_container(cid, '/bin/busybox wget -qO- "$ECS_AGENT_URI/task-protection/v1/state"'))
    assert got["protection"]["ProtectionEnabled"] is True, got

    # The server holds it: boto3 (as the admin) sees the same protection, ~30 minutes.
    ecs = make_client(cfg)
    [p] = ecs.get_task_protection(cluster=cluster, tasks=[task["taskArn"]])["protectedTasks"]
    assert p["protectionEnabled"] is True

    # A bad body is the endpoint's own 400, before any call.
    bad = in_container(cid, PUT_SCRIPT.replace('"ProtectionEnabled":true,', ""))
    assert " 400 " in bad.splitlines()[0], bad
    assert body_of(bad)["error"]["Code"] == "InvalidParameterException"

    aws.run("ecs", "update-service", "--cluster", cluster, "--service", service, "--desired-count", "0")
    # Protected, the task survives its service scaling to zero.
    subprocess.run(["sleep", "3"], check=True)
    assert describe_task(aws, cluster, task["taskArn"])["desiredStatus"] == "RUNNING"
