"""Instance identity end to end: an agent host joins with a one-time join token for an
instance profile (role `ecsInstanceRole` trusting ec2.amazonaws.com, with
AmazonEC2ContainerServiceforEC2Role), with no admin key in its environment. It pulls a
task image from the server's ECR as the instance role and runs it. Another instance's
credentials cannot report state for that task nor open its channel; a redeemed token
cannot be reused; the restarted agent (no token) comes back as the same container
instance and adopts its task. Needs Docker (fails under CI=true when it is missing)."""
from __future__ import annotations

import base64
import json
import os
import re
import signal
import stat
import subprocess
import urllib.parse

import boto3
import botocore.config
import botocore.exceptions
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from agent_fixtures import AgentProcess, agent_env, connected_instances, describe_task, register_family, run_task, wait_for
from conftest import ServerConfig, make_client, stevedore_binary, unique
from registry_fixtures import aws_env, aws_exe, docker, repo_name  # noqa: F401

# No agent from the fixture: this module starts its own, joined with a token.
env = agent_env("instance-identity", "instid", image=None, agents=())

PROFILE = "ecsInstanceProfile"
ROLE = "ecsInstanceRole"
EC2_TRUST = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
})


class JoinedAgent(AgentProcess):
    """`stevedore agent` with no AWS keys at all: only a join token (first start)."""

    def __init__(self, *args, join_token: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.join_token = join_token

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AWS_") and not k.startswith("STEVEDORE_")}
        home = self.state_dir.parent / "agent-home"
        home.mkdir(exist_ok=True)
        # No shared credentials file either: HOME has no ~/.aws.
        env.update(HOME=str(home), AWS_DEFAULT_REGION=self.cfg.region, STEVEDORE_LOG="info")
        extra = ("--join-token", self.join_token) if self.join_token else ()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(stevedore_binary()), "agent", "--cluster", self.cluster, "--endpoint",
             self.cfg.endpoint, "--state-dir", str(self.state_dir), "--config", "/dev/null",
             "--container-cleanup-wait", self.cleanup_wait, *extra],
            stdout=log, stderr=log, env=env)
        log.close()


@pytest.fixture(scope="module")
def profile(env):
    iam = make_client(env["cfg"], "iam")
    iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=EC2_TRUST)
    iam.attach_role_policy(RoleName=ROLE,
                           PolicyArn="arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role")
    iam.create_instance_profile(InstanceProfileName=PROFILE)
    iam.add_role_to_instance_profile(InstanceProfileName=PROFILE, RoleName=ROLE)
    return PROFILE


def mint(cfg: ServerConfig, profile: str) -> str:
    """`stevedore join-token` with the admin key (from the shared credentials file)."""
    p = subprocess.run(
        [str(stevedore_binary()), "join-token", "--instance-profile", profile,
         "--endpoint", cfg.endpoint, "--ttl", "10m"],
        env=aws_env(cfg), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    token = p.stdout.strip()
    assert token.startswith("stvjoin-"), p.stdout
    assert "stevedore agent" in p.stderr and "--join-token" in p.stderr, p.stderr
    return token


def post(cfg: ServerConfig, path: str, body: dict) -> requests.Response:
    return requests.post(cfg.endpoint + path, json=body, timeout=30)


def instance_credentials(cfg: ServerConfig, token: str) -> tuple[dict, dict]:
    """Redeems `token` as a second machine would: (identity, IMDS-shaped credentials)."""
    r = post(cfg, "/stevedore/instance-identity", {"joinToken": token})
    assert r.status_code == 200, r.text
    identity = r.json()
    r = post(cfg, "/stevedore/instance-credentials",
             {"instanceId": identity["instanceId"], "instanceSecret": identity["instanceSecret"]})
    assert r.status_code == 200, r.text
    creds = r.json()
    assert creds["Code"] == "Success" and creds["Type"] == "AWS-HMAC", creds
    return identity, creds


def client_as(cfg: ServerConfig, service: str, creds: dict):
    return boto3.session.Session().client(
        service, endpoint_url=cfg.endpoint, region_name=cfg.region,
        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["Token"],
        config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}))


def open_channel(cfg: ServerConfig, creds: dict, cluster_arn: str, instance_arn: str) -> requests.Response:
    """A SigV4-signed WebSocket upgrade of /ws for that instance, as an agent sends it."""
    query = urllib.parse.urlencode({"clusterArn": cluster_arn, "containerInstanceArn": instance_arn},
                                   quote_via=urllib.parse.quote)
    url = f"{cfg.endpoint}/ws?{query}"
    req = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["Token"]),
              "ecs", cfg.region).add_auth(req)
    headers = dict(req.headers.items())
    headers.update({"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                    "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()})
    return requests.get(url, headers=headers, timeout=30)


def push_image(env, docker, tmp_path) -> str:
    cfg = env["cfg"]
    host = cfg.endpoint.removeprefix("http://")
    repo = repo_name("instpull")
    env["aws"].run("ecr", "create-repository", "--repository-name", repo)
    pw = subprocess.run([aws_exe(), "ecr", "get-login-password", "--region", cfg.region],
                        env=aws_env(cfg), capture_output=True, text=True, timeout=60, check=True).stdout
    docker.run("login", "--username", "AWS", "--password-stdin", host, input=pw)
    local = f"stevedore-test-{repo.split('/')[0]}:latest"
    docker.build(local, tmp_path)
    remote = f"{host}/{repo}:v1"
    docker.run("tag", local, remote)
    docker.created.add(remote)
    docker.run("push", remote)
    # Gone locally, so the agent must pull it with the instance role's token.
    docker.run("rmi", remote, local)
    return remote


def test_a_joined_agent_pulls_runs_and_is_the_only_one_acting_for_its_instance(env, profile, docker, tmp_path):
    aws, cfg, cluster, cluster_arn = env["aws"], env["cfg"], env["cluster"], env["cluster_arn"]
    state = tmp_path / "agent-a-state"
    agent = JoinedAgent(cfg, cluster, state, tmp_path / "agent-a.log", join_token=mint(cfg, profile))
    env["agents"].append(agent)  # killed by the fixture at teardown
    try:
        agent.start()
        instances = wait_for(lambda: connected_instances(aws, cluster), 90, "the joined agent to connect",
                             agent.log_tail)
        assert len(instances) == 1
        ci = instances[0]
        identity_file = state / "instance-identity.json"
        identity = json.loads(identity_file.read_text())
        assert stat.S_IMODE(identity_file.stat().st_mode) == 0o600
        assert ci["ec2InstanceId"] == identity["instanceId"]
        assert identity["roleArn"].endswith(f":role/{ROLE}")

        image = push_image(env, docker, tmp_path)
        family = unique("joined")
        register_family(aws, family, [{"name": "app", "image": image, "memory": 32, "essential": True,
                                       "stopTimeout": 2, "command": ["/bin/busybox", "sleep", "3600"]}])
        task_arn = run_task(aws, cluster, family)
        task = wait_for(lambda: (t := describe_task(aws, cluster, task_arn))["lastStatus"] in ("RUNNING", "STOPPED") and t,
                        120, "RUNNING", agent.log_tail)
        assert task["lastStatus"] == "RUNNING", (task, agent.log_tail())
        log = re.sub(r"\x1b\[[0-9;]*m", "", agent.log_tail(100000))
        assert "Image pulled." in log and "authenticated=true" in log, log
        assert "Signing as the instance profile's role." in log, log

        # Instance B: another machine's credentials, from its own token.
        token_b = mint(cfg, profile)
        identity_b, creds_b = instance_credentials(cfg, token_b)
        assert identity_b["instanceId"] != identity["instanceId"]
        sts = client_as(cfg, "sts", creds_b)
        arn_b = sts.get_caller_identity()["Arn"]
        assert arn_b.endswith(f"assumed-role/{ROLE}/{identity_b['instanceId']}"), arn_b

        ecs_b = client_as(cfg, "ecs", creds_b)
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ecs_b.submit_task_state_change(cluster=cluster, task=task_arn, status="STOPPED",
                                           reason="forged by instance B")
        err = e.value.response["Error"]
        assert err["Code"] == "AccessDeniedException", err
        assert arn_b in err["Message"] and "ecs:SubmitTaskStateChange" in err["Message"], err
        assert "not placed on the caller's container instance" in err["Message"], err
        assert describe_task(aws, cluster, task_arn)["lastStatus"] == "RUNNING"

        r = open_channel(cfg, creds_b, cluster_arn, ci["containerInstanceArn"])
        assert r.status_code == 403, (r.status_code, r.text)
        assert "AccessDenied" in r.text and arn_b in r.text, r.text
        # Holding a channel is ecs:Poll: a user whose policies do not grant it is refused
        # before ownership is even looked at.
        iam = make_client(cfg, "iam")
        iam.create_user(UserName="reader")
        iam.put_user_policy(UserName="reader", PolicyName="read", PolicyDocument=json.dumps(
            {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": ["ecs:Describe*", "ecs:List*"], "Resource": "*"}]}))
        key = iam.create_access_key(UserName="reader")["AccessKey"]
        reader = {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"], "Token": None}
        r = open_channel(cfg, reader, cluster_arn, ci["containerInstanceArn"])
        assert r.status_code == 403, (r.status_code, r.text)
        assert "ecs:Poll" in r.text and "user/reader" in r.text, r.text
        assert connected_instances(aws, cluster), "agent A keeps its channel"

        # The redeemed token cannot be used again.
        r = post(cfg, "/stevedore/instance-identity", {"joinToken": token_b})
        assert r.status_code == 403, r.text
        assert "already used" in r.json()["message"], r.text

        # Restarted without the token, agent A is the same instance and adopts its task.
        agent.kill(signal.SIGKILL)
        agent.join_token = None
        agent.start()
        wait_for(lambda: any(c["containerInstanceArn"] == ci["containerInstanceArn"]
                             for c in connected_instances(aws, cluster)),
                 90, "agent A to reconnect as the same instance", agent.log_tail)
        arns = aws.run("ecs", "list-container-instances", "--cluster", cluster)["containerInstanceArns"]
        assert arns == [ci["containerInstanceArn"]], arns
        log = agent.log_tail(100000)
        assert "Saved tasks resumed" in log, log
        assert describe_task(aws, cluster, task_arn)["lastStatus"] == "RUNNING"
        aws.run("ecs", "stop-task", "--cluster", cluster, "--task", task_arn)
        wait_for(lambda: describe_task(aws, cluster, task_arn)["lastStatus"] == "STOPPED", 60,
                 "the restarted agent to stop the adopted task", agent.log_tail)
    finally:
        agent.kill(signal.SIGTERM)


def test_join_tokens_are_refused_for_untrusting_roles_and_unknown_tokens(env):
    cfg = env["cfg"]
    iam = make_client(cfg, "iam")
    role, profile = unique("notec2"), unique("notec2")
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=EC2_TRUST.replace("ec2.amazonaws.com",
                                                                                "ecs-tasks.amazonaws.com"))
    iam.create_instance_profile(InstanceProfileName=profile)
    iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=role)
    p = subprocess.run([str(stevedore_binary()), "join-token", "--instance-profile", profile,
                        "--endpoint", cfg.endpoint], env=aws_env(cfg), capture_output=True, text=True,
                       timeout=60)
    assert p.returncode != 0
    assert "does not trust ec2.amazonaws.com" in p.stderr, p.stderr
    r = post(cfg, "/stevedore/instance-identity", {"joinToken": "stvjoin-" + "0" * 64})
    assert r.status_code == 403 and "stevedore join-token" in r.json()["message"], r.text
    r = post(cfg, "/stevedore/instance-credentials",
             {"instanceId": "i-0123456789abcdef0", "instanceSecret": "guess"})
    assert r.status_code == 403, r.text
