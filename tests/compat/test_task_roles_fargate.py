"""Task roles on Fargate: the server's hidden capacity (its in-process agent) serves a
Fargate task's role credentials at 169.254.170.2 as on EC2 instances; busybox wget reads
them from inside the awsvpc task and boto3 acts as the assumed role with them. Needs
Docker and root (fails under CI=true when Docker is missing).

The server runs Fargate tasks with runc here: under gVisor (runsc) on this test machine,
busybox wget itself crashes or stalls on its first connections to any host address (the
metadata endpoint's too), which says nothing about task roles."""
from __future__ import annotations

import json
import signal
import subprocess

import boto3
import botocore.config

import pytest

from agent_fixtures import (SH_IMAGE as IMAGE, build_sh_image, make_cli,
                            remove_cluster_containers, require_docker, wait_for)
from conftest import ACCOUNT_ID, ARN_PREFIX, StevedoreServer, awsvpc_network, make_client, unique

MARKER = "CREDS="



@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A server whose Fargate tasks run with runc, and a Fargate cluster."""
    require_docker()
    tmp = tmp_path_factory.mktemp("task-roles-fargate")
    build_sh_image(tmp)
    srv = StevedoreServer(tmp / "server", extra_env={"STEVEDORE_FARGATE_SANDBOX": "runc"})
    cfg = srv.start()
    cluster = unique("rolesfargate")
    aws = make_cli(cfg)
    try:
        aws.run("ecs", "create-cluster", "--cluster-name", cluster,
                "--capacity-providers", "FARGATE")
        yield {"aws": aws, "cfg": cfg, "srv": srv, "cluster": cluster}
    finally:
        try:
            # A clean exit: the in-process agent removes its NAT rules.
            srv.kill(signal.SIGTERM)
        finally:
            remove_cluster_containers(f"{ARN_PREFIX}:cluster/{cluster}")


def test_a_fargate_task_reads_its_role_credentials(env):
    aws, cluster, cfg = env["aws"], env["cluster"], env["cfg"]
    iam = make_client(cfg, "iam")
    name = unique("fgrole")
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
        "Action": "sts:AssumeRole"}]}
    role_arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    family = unique("fg")
    script = (f'echo "{MARKER}$(/bin/busybox wget -qO- '
              'http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)"; sleep 3600')
    aws.run("ecs", "register-task-definition", "--family", family, "--network-mode", "awsvpc",
            "--requires-compatibilities", "FARGATE", "--cpu", "256", "--memory", "512",
            "--task-role-arn", role_arn,
            "--container-definitions", json.dumps([
                {"name": "app", "image": IMAGE, "essential": True, "stopTimeout": 2,
                 "command": ["/bin/sh", "-c", script]}]))
    # The hidden capacity starts on the cluster's first Fargate launch (AGENT until then).
    out = wait_for(lambda: not (o := aws.run("ecs", "run-task", "--cluster", cluster,
                                             "--task-definition", family, "--launch-type",
                                             "FARGATE", "--network-configuration",
                                             awsvpc_network(aws)))["failures"] and o,
                   60, "a Fargate launch", env["srv"].log_tail)
    arn = out["tasks"][0]["taskArn"]
    task = wait_for(lambda: (t := aws.run("ecs", "describe-tasks", "--cluster", cluster,
                                          "--tasks", arn)["tasks"][0])["lastStatus"] == "RUNNING" and t,
                    90, "the Fargate task to run", env["srv"].log_tail)
    cid = task["containers"][0]["runtimeId"]

    def output():
        p = subprocess.run(["docker", "logs", cid], capture_output=True, text=True, timeout=30)
        lines = [l for l in (p.stdout + p.stderr).splitlines() if l.startswith(MARKER)]
        return lines and lines[0][len(MARKER):]

    raw = wait_for(output, 60, "the container's output", env["srv"].log_tail)
    creds = json.loads(raw)
    assert creds["RoleArn"] == role_arn
    sts = boto3.session.Session().client(
        "sts", endpoint_url=cfg.endpoint, region_name=cfg.region,
        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["Token"],
        config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}))
    task_id = arn.rsplit("/", 1)[1]
    assert sts.get_caller_identity()["Arn"] == f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{name}/{task_id}"
    aws.run("ecs", "stop-task", "--cluster", cluster, "--task", arn)
