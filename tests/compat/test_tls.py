"""TLS end to end: a `stevedore server --tls` on 127.0.0.1 with its own generated CA;
boto3 and the aws CLI with AWS_CA_BUNDLE; agents with the right CA, a wrong CA and in
front of a server whose certificate another CA signed (a man in the middle); docker
push/pull with the CA installed for Docker; and the file modes of the data dir and the
agent state dir."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import ssl
import stat
import subprocess
import time
import urllib.request
from pathlib import Path

import boto3
import botocore.config
import botocore.exceptions
import pytest
import requests

from sim_fixtures import Sim
from agent_fixtures import (
    IMAGE,
    AgentProcess,
    build_image,
    describe_task,
    register_family,
    remove_cluster_containers,
    require_docker,
    run_task,
    wait_for,
)
from conftest import (
    ACCOUNT_ID,
    REGION,
    AwsCli,
    ServerConfig,
    aws_cli_path,
    free_port,
    missing,
    read_credentials,
    stevedore_binary,
    unique,
)
from registry_fixtures import aws_env, docker  # noqa: F401


class TlsServer:
    """`stevedore server --tls` on a free loopback port with its own data dir."""

    def __init__(self, data_dir: Path):
        self.data_dir, self.port = data_dir, free_port()
        self.endpoint = f"https://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"{data_dir.name}-stderr.log"
        self.proc: subprocess.Popen | None = None

    @property
    def ca(self) -> Path:
        return self.data_dir / "ca.crt"

    def start(self) -> ServerConfig:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("STEVEDORE_") and not k.startswith("AWS_")}
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(stevedore_binary()), "server", "--tls", "--listen", f"127.0.0.1:{self.port}",
             "--data-dir", str(self.data_dir), "--region", REGION, "--account-id", ACCOUNT_ID,
             "--no-lb"],
            stdout=log, stderr=log, env=env)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}:\n{self.log()}")
            if self.ca.exists():
                try:
                    ctx = ssl.create_default_context(cafile=str(self.ca))
                    with urllib.request.urlopen(self.endpoint + "/health", timeout=2,
                                                context=ctx) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
            time.sleep(0.1)
        else:
            raise RuntimeError(f"server not healthy:\n{self.log()}")
        access, secret = read_credentials(self.data_dir / "credentials")
        return ServerConfig(self.endpoint, REGION, access, secret,
                            self.data_dir / "credentials", self.data_dir)

    def log(self) -> str:
        return self.log_path.read_bytes()[-4000:].decode("utf-8", "replace")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


class CaAwsCli(AwsCli):
    """The aws CLI trusting `ca` (AWS_CA_BUNDLE), or nothing extra when `ca` is None."""

    def __init__(self, cfg: ServerConfig, exe: str, ca: Path | None):
        super().__init__(cfg, exe)
        self.ca = ca

    def env(self) -> dict:
        env = super().env()
        if self.ca is not None:
            env["AWS_CA_BUNDLE"] = str(self.ca)
        return env


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    srv = TlsServer(tmp_path_factory.mktemp("tls") / "data")
    try:
        cfg = srv.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield srv, cfg
    srv.stop()


@pytest.fixture(scope="module")
def other(tmp_path_factory):
    """A second TLS server: its own, different CA."""
    srv = TlsServer(tmp_path_factory.mktemp("tls-other") / "data")
    try:
        cfg = srv.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield srv, cfg
    srv.stop()


def ecs_client(cfg: ServerConfig, verify):
    return boto3.session.Session().client(
        "ecs", endpoint_url=cfg.endpoint, region_name=cfg.region,
        aws_access_key_id=cfg.access_key, aws_secret_access_key=cfg.secret_key, verify=verify,
        config=botocore.config.Config(retries={"max_attempts": 1}, connect_timeout=5))


def aws_exe() -> str:
    exe = aws_cli_path()
    if exe is None:
        missing("aws CLI not found")
    return exe


def test_boto3_verifies_with_the_generated_ca_and_fails_without_it(tls):
    srv, cfg = tls
    assert "clusterArns" in ecs_client(cfg, str(srv.ca)).list_clusters()
    with pytest.raises(botocore.exceptions.SSLError):
        ecs_client(cfg, True).list_clusters()


def test_aws_cli_works_with_aws_ca_bundle_and_fails_verification_without(tls):
    srv, cfg = tls
    name = unique("tls")
    out = CaAwsCli(cfg, aws_exe(), srv.ca).run("ecs", "create-cluster", "--cluster-name", name)
    assert out["cluster"]["clusterName"] == name
    p = CaAwsCli(cfg, aws_exe(), None).run("ecs", "list-clusters", check=False)
    assert p.returncode != 0
    assert "SSL" in p.stderr or "certificate" in p.stderr.lower(), p.stderr


def test_a_plain_http_client_on_the_tls_port_is_told_to_use_https(tls):
    srv, _ = tls
    r = requests.get(f"http://127.0.0.1:{srv.port}/health", timeout=5)
    assert r.status_code == 400
    assert "https://" in r.text


def modes_under(root: Path) -> dict[str, int]:
    out = {".": stat.S_IMODE(root.stat().st_mode)}
    for p in root.rglob("*"):
        if not p.is_symlink():
            out[str(p.relative_to(root))] = stat.S_IMODE(p.stat().st_mode)
    return out


def test_everything_in_the_data_dir_is_owner_only(tls):
    srv, _ = tls
    modes = modes_under(srv.data_dir)
    for name in ["ca.key", "ca.crt", "server.key", "server.crt", "state.db", "credentials"]:
        assert name in modes, sorted(modes)
    wide = {p: oct(m) for p, m in modes.items() if m & 0o077}
    assert not wide, wide
    assert modes["."] == 0o700


def agent(cfg: ServerConfig, tmp: Path, name: str, ca: Path) -> AgentProcess:
    return AgentProcess(cfg, unique("tls"), tmp / f"{name}-state", tmp / f"{name}.log",
                        extra_args=("--ca-file", str(ca)))


def test_an_agent_with_the_right_ca_joins_and_runs_a_task_with_owner_only_state(
        tls, tmp_path):
    require_docker()
    srv, cfg = tls
    build_image(tmp_path)
    aws = CaAwsCli(cfg, aws_exe(), srv.ca)
    a = agent(cfg, tmp_path, "good", srv.ca)
    aws.run("ecs", "create-cluster", "--cluster-name", a.cluster)
    a.start()
    try:
        wait_for(lambda: aws.run("ecs", "list-container-instances", "--cluster",
                                 a.cluster)["containerInstanceArns"], 60, "the agent to join",
                 a.log_tail)
        family = unique("tls")
        register_family(aws, family, [{"name": "c", "image": IMAGE, "memory": 32,
                                       "essential": True}])
        arn = run_task(aws, a.cluster, family)
        wait_for(lambda: describe_task(aws, a.cluster, arn)["lastStatus"] == "RUNNING", 90,
                 "the task to run", a.log_tail)
        wide = {p: oct(m) for p, m in modes_under(a.state_dir).items() if m & 0o077}
        assert not wide, wide
    finally:
        a.kill(signal.SIGTERM)
        cluster_arn = f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:cluster/{a.cluster}"
        remove_cluster_containers(cluster_arn)


def wait_exit(a: AgentProcess, timeout: float = 30) -> int:
    assert a.proc is not None
    try:
        return a.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        a.kill()
        raise AssertionError(f"the agent kept running:\n{a.log_tail()}")


def test_an_agent_with_a_wrong_ca_refuses_to_join(tls, other, tmp_path):
    srv, cfg = tls
    other_srv, _ = other
    a = agent(cfg, tmp_path, "wrong", other_srv.ca)
    ecs = ecs_client(cfg, str(srv.ca))
    ecs.create_cluster(clusterName=a.cluster)
    a.start()
    assert wait_exit(a) != 0
    log = a.log_tail()
    assert "does not trust" in log and cfg.endpoint in log, log
    # Nothing registered: the server never saw the agent.
    assert ecs.list_container_instances(cluster=a.cluster)["containerInstanceArns"] == []


def test_a_server_certificate_from_another_ca_is_rejected_by_the_agent(tls, other, tmp_path):
    srv, _ = tls
    _, other_cfg = other
    # The agent trusts the real server's CA but reaches a server with another CA's
    # certificate for the same names: what a man in the middle would present.
    mitm = ServerConfig(other_cfg.endpoint, REGION, other_cfg.access_key, other_cfg.secret_key,
                        other_cfg.credentials_file, other_cfg.data_dir)
    a = agent(mitm, tmp_path, "mitm", srv.ca)
    a.start()
    assert wait_exit(a) != 0
    assert "does not trust" in a.log_tail(), a.log_tail()


def test_docker_push_and_pull_through_the_tls_registry_with_the_ca_installed(
        tls, docker, tmp_path):  # noqa: F811
    srv, cfg = tls
    host = f"127.0.0.1:{srv.port}"
    certs = Path("/etc/docker/certs.d") / host
    try:
        certs.mkdir(parents=True, exist_ok=True)
        shutil.copy(srv.ca, certs / "ca.crt")
    except PermissionError:
        missing("installing a CA for Docker needs write access to /etc/docker/certs.d")
    try:
        env = {**aws_env(cfg), "AWS_CA_BUNDLE": str(srv.ca)}
        repo = unique("tls")
        subprocess.run([aws_exe(), "ecr", "create-repository", "--repository-name", repo],
                       env=env, capture_output=True, text=True, timeout=60, check=True)
        pw = subprocess.run([aws_exe(), "ecr", "get-login-password", "--region", cfg.region],
                            env=env, capture_output=True, text=True, timeout=60,
                            check=True).stdout
        out = docker.run("login", "--username", "AWS", "--password-stdin", host, input=pw)
        assert "Login Succeeded" in out.stdout
        remote = f"{host}/{repo}:v1"
        docker.build(remote, tmp_path, payload=b"t" * 50_000)
        assert "digest: sha256:" in docker.run("push", remote).stdout
        docker.run("rmi", remote)
        docker.run("pull", remote)
        assert "hello from stevedore" in docker.run("run", "--rm", remote).stdout
    finally:
        shutil.rmtree(certs, ignore_errors=True)


def test_hollow_instances_join_over_tls_with_the_ca_file(tls):
    srv, cfg = tls
    ecs = ecs_client(cfg, str(srv.ca))
    sim = Sim(cfg, ecs, 2)
    sim.args += ["--ca-file", str(srv.ca)]
    with sim:
        instances = sim.describe_instances()
        assert len(instances) == 2 and all(ci["agentConnected"] for ci in instances), instances


def join_token_for_a_new_profile(srv: TlsServer, cfg: ServerConfig) -> subprocess.CompletedProcess:
    """An instance profile whose role agents may use, and `stevedore join-token` for it."""
    iam = boto3.session.Session().client(
        "iam", endpoint_url=cfg.endpoint, region_name=cfg.region, verify=str(srv.ca),
        aws_access_key_id=cfg.access_key, aws_secret_access_key=cfg.secret_key)
    role, profile = unique("role"), unique("profile")
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
            "Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    iam.attach_role_policy(RoleName=role, PolicyArn=(
        "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"))
    iam.create_instance_profile(InstanceProfileName=profile)
    iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=role)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=cfg.access_key, AWS_SECRET_ACCESS_KEY=cfg.secret_key,
               AWS_DEFAULT_REGION=cfg.region, AWS_CA_BUNDLE=str(srv.ca), STEVEDORE_LOG="warn")
    out = subprocess.run([str(stevedore_binary()), "join-token", "--instance-profile", profile,
                          "--endpoint", cfg.endpoint, "--ttl", "10m"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out


def keyless(cfg: ServerConfig, tmp: Path) -> ServerConfig:
    """`cfg` with no AWS keys for child processes: a joining agent has only its token."""
    return ServerConfig(cfg.endpoint, cfg.region, "", "", tmp / "no-credentials", cfg.data_dir)


def test_an_agent_given_the_join_tokens_ca_hash_trusts_the_server_and_joins(tls, tmp_path):
    require_docker()
    srv, cfg = tls
    minted = join_token_for_a_new_profile(srv, cfg)
    token = minted.stdout.strip()
    found = re.search(r"--ca-cert-hash (sha256:[0-9a-f]{64})", minted.stderr)
    assert found, minted.stderr
    # The printed hash is the server's CA's, so no ca.crt has to be copied.
    ca_der = ssl.PEM_cert_to_DER_cert(srv.ca.read_text())
    assert found.group(1) == "sha256:" + hashlib.sha256(ca_der).hexdigest()
    a = AgentProcess(keyless(cfg, tmp_path), unique("pin"), tmp_path / "pin-state",
                     tmp_path / "pin.log", extra_args=("--join-token", token,
                                                       "--ca-cert-hash", found.group(1)))
    ecs = ecs_client(cfg, str(srv.ca))
    ecs.create_cluster(clusterName=a.cluster)
    a.start()
    try:
        wait_for(lambda: ecs.list_container_instances(cluster=a.cluster)["containerInstanceArns"],
                 60, "the agent to join", a.log_tail)
        kept = a.state_dir / "ca.crt"
        assert ssl.PEM_cert_to_DER_cert(kept.read_text()) == ca_der
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    finally:
        a.kill(signal.SIGTERM)
        remove_cluster_containers(f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:cluster/{a.cluster}")


def test_an_agent_with_a_wrong_ca_hash_refuses_to_join(tls, other, tmp_path):
    srv, cfg = tls
    other_srv, _ = other
    token = join_token_for_a_new_profile(srv, cfg).stdout.strip()
    # The hash of another CA: what a host told the wrong hash, or a man in the middle, sees.
    wrong = "sha256:" + hashlib.sha256(ssl.PEM_cert_to_DER_cert(other_srv.ca.read_text())).hexdigest()
    a = AgentProcess(keyless(cfg, tmp_path), unique("pin"), tmp_path / "wrong-state",
                     tmp_path / "wrong.log", extra_args=("--join-token", token,
                                                         "--ca-cert-hash", wrong))
    a.start()
    assert wait_exit(a) != 0
    log = a.log_tail()
    assert "presented no CA certificate with hash" in log and wrong in log, log
    assert not (a.state_dir / "ca.crt").exists()
    # Nothing was redeemed: the token never reached a server this host does not trust.
    assert not (a.state_dir / "instance-identity.json").exists()
