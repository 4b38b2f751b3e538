"""ECR access by IAM and repository policies with real docker: a registry token acts as
the principal whose key asked for it (aws ecr get-login-password), pulls and pushes are
authorized per repository against the user's identity policies and the repository
policy, and the account root is unrestricted as before."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from conftest import make_client, unique
from registry_fixtures import aws_env, aws_exe, docker, ecr, repo  # noqa: F401

PULL = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]


@pytest.fixture(scope="module")
def iam(server):
    return make_client(server, "iam")


def user_credentials(iam, tmp_path: Path, policy: dict | None = None) -> tuple[str, Path]:
    """A new user allowed to log in (ecr:GetAuthorizationToken), with `policy` inline if
    any, and an AWS credentials file with its key."""
    name = unique("ecr-user")
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    # Logging in needs ecr:GetAuthorizationToken (a registry-wide action); what the token
    # may then pull or push is the repository's business.
    login_only = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}]}
    iam.put_user_policy(UserName=name, PolicyName="login", PolicyDocument=json.dumps(login_only))
    if policy is not None:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    path = tmp_path / f"{name}.credentials"
    path.write_text(
        f"[default]\naws_access_key_id = {key['AccessKeyId']}\n"
        f"aws_secret_access_key = {key['SecretAccessKey']}\n"
    )
    return arn, path


def login(docker, server, credentials: Path | None = None) -> None:
    """aws ecr get-login-password (as the key in `credentials`, else root) | docker login."""
    host = server.endpoint.removeprefix("http://")
    env = aws_env(server)
    if credentials is not None:
        env["AWS_SHARED_CREDENTIALS_FILE"] = str(credentials)
    deadline = time.monotonic() + 10
    while True:
        p = subprocess.run(
            [aws_exe(), "ecr", "get-login-password", "--region", server.region],
            env=env, capture_output=True, text=True, timeout=60,
        )
        # A key just created may take a moment to reach every reader of the directory.
        if p.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert p.returncode == 0, p.stderr
    out = docker.run("login", "--username", "AWS", "--password-stdin", host, input=p.stdout)
    assert "Login Succeeded" in out.stdout


def push_as_root(docker, server, repo: str, tmp_path: Path) -> str:
    host = server.endpoint.removeprefix("http://")
    remote = f"{host}/{repo}:v1"
    login(docker, server)
    docker.build(remote, tmp_path, payload=b"iam" * 1000)
    docker.run("push", remote)
    docker.run("rmi", remote)
    return remote


def test_pull_needs_rights_on_the_repository_and_a_repository_policy_grants_them(
    server, docker, repo, ecr, iam, tmp_path
):
    remote = push_as_root(docker, server, repo, tmp_path)
    arn, creds = user_credentials(iam, tmp_path)
    login(docker, server, creds)
    p = docker.run("pull", remote, check=False)
    assert p.returncode != 0, p.stdout
    out = (p.stdout + p.stderr).lower()
    assert "denied" in out and "ecr:batchgetimage" in out, out

    ecr.set_repository_policy(
        repositoryName=repo,
        policyText=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Sid": "pull", "Effect": "Allow", "Principal": {"AWS": arn}, "Action": PULL}],
        }),
    )
    # The same login (token) now pulls: the repository policy is read on each request.
    docker.run("pull", remote)
    out = docker.run("run", "--rm", "--label", "stevedore.test=registry", remote).stdout
    assert "hello from stevedore" in out


def test_push_needs_push_rights_and_root_is_unrestricted(server, docker, repo, iam, tmp_path):
    host = server.endpoint.removeprefix("http://")
    repo_arn_pull_only = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": PULL, "Resource": "*"}],
    }
    _, creds = user_credentials(iam, tmp_path, repo_arn_pull_only)
    remote = f"{host}/{repo}:pushed"
    docker.build(remote, tmp_path, payload=b"push")
    login(docker, server, creds)
    p = docker.run("push", remote, check=False)
    assert p.returncode != 0, p.stdout
    assert "denied" in (p.stdout + p.stderr).lower(), p.stderr
    login(docker, server)
    assert "digest: sha256:" in docker.run("push", remote).stdout


def test_repository_policies_are_validated(ecr, repo):
    bad = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecr:BatchGetImage"}]}
    with pytest.raises(ecr.exceptions.InvalidParameterException):
        ecr.set_repository_policy(repositoryName=repo, policyText=json.dumps(bad))
    not_ecr = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}],
    }
    with pytest.raises(ecr.exceptions.InvalidParameterException):
        ecr.set_repository_policy(repositoryName=repo, policyText=json.dumps(not_ecr))
