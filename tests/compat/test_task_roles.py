"""Task roles end to end: a real `stevedore agent` runs a busybox task whose task
definition has a `taskRoleArn`; from inside the container, busybox wget reads
`http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` (the agent's own NAT rule
leads it to the agent); boto3 with those credentials acts as the assumed role. A role
that does not trust ecs-tasks.amazonaws.com stops its task with AWS's reason; the
endpoint refuses unknown ids and other addresses; an agent restart keeps a running
container's credentials working. Needs Docker and root (for iptables); fails under
CI=true when Docker is missing."""
from __future__ import annotations

import json
import signal
import subprocess
import urllib.error
import urllib.request

import boto3
import botocore.config
import botocore.exceptions
import pytest

from agent_fixtures import IMAGE, agent_connected, agent_env, describe_task, wait_for
from conftest import ACCOUNT_ID, make_client, unique

env = agent_env("task-roles", "taskroles")

MARKER = "CREDS="


def trust(service: str) -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service},
                       "Action": "sts:AssumeRole"}],
    })


LIST_CLUSTERS_ONLY = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "ecs:ListClusters", "Resource": "*"}],
})


@pytest.fixture(scope="module", autouse=True)
def clean_agent_exit(env):
    """Stops the agent with SIGTERM after the module, so it removes its NAT rules."""
    yield
    for a in env["agents"]:
        a.kill(signal.SIGTERM)


def docker_logs(container_id: str) -> str:
    p = subprocess.run(["docker", "logs", container_id], capture_output=True, text=True, timeout=30)
    return p.stdout + p.stderr


def marked(logs: str, marker: str) -> str | None:
    for line in logs.splitlines():
        if line.startswith(marker):
            return line[len(marker):]
    return None


def role(env, trusted_service: str) -> tuple[str, str]:
    """A new role trusting `trusted_service`, allowed ecs:ListClusters: (name, ARN)."""
    iam = make_client(env["cfg"], "iam")
    name = unique("taskrole")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust(trusted_service))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="list", PolicyDocument=LIST_CLUSTERS_ONLY)
    return name, arn


def run_with_role(env, role_arn: str, script: str) -> str:
    aws, cluster = env["aws"], env["cluster"]
    family = unique("roles")
    aws.run("ecs", "register-task-definition", "--family", family, "--network-mode", "bridge",
            "--task-role-arn", role_arn,
            "--container-definitions", json.dumps([{
                "name": "app", "image": IMAGE, "memory": 32, "essential": True, "stopTimeout": 2,
                "command": ["/bin/busybox", "sh", "-c", script],
            }]))
    out = aws.run("ecs", "run-task", "--cluster", cluster, "--task-definition", family)
    assert out["tasks"], out  # RunTask succeeds whatever the role, as on AWS
    return out["tasks"][0]["taskArn"]


def session_client(env, service: str, creds: dict):
    cfg = env["cfg"]
    return boto3.session.Session().client(
        service, endpoint_url=cfg.endpoint, region_name=cfg.region,
        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["Token"],
        config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}))


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def container_fetch(cid: str, uri: str) -> dict | None:
    p = subprocess.run(["docker", "exec", cid, "/bin/busybox", "wget", "-qO-",
                        f"http://169.254.170.2{uri}"], capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        return None
    try:
        return json.loads(p.stdout)
    except json.JSONDecodeError:
        return None


def test_a_container_reads_its_task_role_credentials_at_169_254_170_2(env):
    aws, cluster, agent = env["aws"], env["cluster"], env["agent"]
    name, role_arn = role(env, "ecs-tasks.amazonaws.com")
    script = ('echo "URI=$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"; '
              'echo "FULL=$AWS_CONTAINER_CREDENTIALS_FULL_URI"; '
              f'echo "{MARKER}$(/bin/busybox wget -qO- http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)"; '
              'exec /bin/busybox sleep 3600')
    arn = run_with_role(env, role_arn, script)
    task = wait_for(lambda: (t := describe_task(aws, cluster, arn))["lastStatus"] in ("RUNNING", "STOPPED") and t,
                    60, "RUNNING", agent.log_tail)
    assert task["lastStatus"] == "RUNNING", task
    cid = task["containers"][0]["runtimeId"]
    logs = wait_for(lambda: (l := docker_logs(cid)) and MARKER in l and l, 30, "the container's output",
                    agent.log_tail)
    uri = marked(logs, "URI=")
    assert uri and uri.startswith("/v2/credentials/"), logs + agent.log_tail()
    raw = marked(logs, MARKER)
    assert raw, logs + agent.log_tail()
    creds = json.loads(raw)
    assert set(creds) >= {"AccessKeyId", "SecretAccessKey", "Token", "Expiration", "RoleArn"}
    assert creds["RoleArn"] == role_arn
    assert creds["AccessKeyId"].startswith("ASIA")
    assert creds["Expiration"].endswith("Z")
    # Credentials stay in memory: never in the agent's state file or its log.
    state = "".join(p.read_text() for p in agent.state_dir.rglob("*") if p.is_file())
    assert creds["SecretAccessKey"] not in state and creds["Token"] not in state
    assert creds["SecretAccessKey"] not in agent.log_tail(1_000_000)

    task_id = arn.rsplit("/", 1)[1]
    me = session_client(env, "sts", creds).get_caller_identity()
    assert me["Arn"] == f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{name}/{task_id}"
    assert me["Account"] == ACCOUNT_ID
    ecs = session_client(env, "ecs", creds)
    assert "clusterArns" in ecs.list_clusters()
    # Every call is authorized as its principal: the role's policy allows ecs:ListClusters
    # only, so RunTask is denied with AWS's code and message.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.run_task(cluster=cluster, taskDefinition=task["taskDefinitionArn"])
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "is not authorized to perform: ecs:RunTask" in e.value.response["Error"]["Message"]

    # The same id from outside the task (the host) and unknown or missing ids are refused
    # as ECS refuses them.
    status, body = get(f"http://169.254.170.2{uri}")
    assert (status, body.get("code")) == (400, "InvalidIdInRequest"), body
    status, body = get("http://169.254.170.2/v2/credentials/not-an-id")
    assert (status, body.get("code")) == (400, "InvalidIdInRequest"), body
    status, body = get("http://169.254.170.2/v2/credentials/")
    assert (status, body.get("code")) == (400, "NoIdInRequest"), body

    # An agent restart (killed, no clean exit) keeps the container's credentials working:
    # the server sends them again when the channel reconnects.
    agent.kill(signal.SIGKILL)
    wait_for(lambda: not agent_connected(aws, cluster), 90, "the agent to count as disconnected")
    agent.start()
    wait_for(lambda: agent_connected(aws, cluster), 60, "the agent to reconnect", agent.log_tail)
    again = wait_for(lambda: container_fetch(cid, uri), 60, "credentials after the restart",
                     agent.log_tail)
    assert again["RoleArn"] == role_arn
    assert session_client(env, "sts", again).get_caller_identity()["Arn"] == me["Arn"]

    aws.run("ecs", "stop-task", "--cluster", cluster, "--task", arn)
    wait_for(lambda: describe_task(aws, cluster, arn)["lastStatus"] == "STOPPED", 60, "STOPPED",
             agent.log_tail)


def test_a_role_that_does_not_trust_ecs_tasks_stops_the_task_with_a_clear_reason(env):
    aws, cluster, agent = env["aws"], env["cluster"], env["agent"]
    _, role_arn = role(env, "lambda.amazonaws.com")
    arn = run_with_role(env, role_arn, "exec /bin/busybox sleep 3600")
    task = wait_for(lambda: (t := describe_task(aws, cluster, arn))["lastStatus"] == "STOPPED" and t,
                    60, "STOPPED", agent.log_tail)
    assert task["stopCode"] == "TaskFailedToStart", task
    assert f"ECS was unable to assume the role '{role_arn}'" in task["stoppedReason"], task
