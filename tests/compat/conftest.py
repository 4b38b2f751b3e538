"""Shared fixtures for the AWS-compatibility suite.

The suite drives a real `stevedore server` process with real AWS clients (boto3, the
`aws` CLI) and with raw signed HTTP requests. One server is started per test session;
tests use unique names (uuid) so they do not interfere. `test_durability.py` starts its
own servers with `StevedoreServer`.

Environment:
  STEVEDORE_BIN   path to the stevedore binary (default: target/debug/stevedore, built
                  with `cargo build -p stevedore` when missing)
  CI=true         a missing component (binary, aws CLI) fails instead of skipping
"""

from __future__ import annotations

import configparser
import contextlib
import dataclasses
import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import boto3
import botocore.auth
import botocore.config
import pytest
import requests
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT_ID = "000000000000"
TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113"
ARN_PREFIX = f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}"
HEALTH_TIMEOUT_S = 30.0
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(reason: str):
    """Skip locally, fail under CI: CI must never silently skip a component."""
    if IN_CI:
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_BINARY: Path | None = None


def stevedore_binary() -> Path:
    """Locate (or build) the stevedore binary once per session."""
    global _BINARY
    if _BINARY is not None:
        return _BINARY
    env_bin = os.environ.get("STEVEDORE_BIN")
    if env_bin:
        path = Path(env_bin)
        if not path.is_absolute():
            path = REPO_ROOT / path
        if not path.exists():
            missing(f"STEVEDORE_BIN={env_bin} does not exist")
    else:
        path = REPO_ROOT / "target" / "debug" / "stevedore"
        if not path.exists():
            if shutil.which("cargo") is None:
                missing("stevedore binary missing and cargo not found")
            proc = subprocess.run(
                ["cargo", "build", "-p", "stevedore"],
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                timeout=1800,
            )
            if proc.returncode != 0 or not path.exists():
                missing(f"cargo build -p stevedore failed:\n{proc.stderr[-4000:]}")
    _BINARY = path
    return path


@dataclasses.dataclass
class ServerConfig:
    endpoint: str
    region: str
    access_key: str
    secret_key: str
    credentials_file: Path
    data_dir: Path

    def credentials(self) -> Credentials:
        return Credentials(self.access_key, self.secret_key)


class StevedoreServer:
    """A `stevedore server` child process on a free port with its own data dir."""

    def __init__(self, data_dir: Path, port: int | None = None, extra_env: dict | None = None,
                 account_id: str = ACCOUNT_ID):
        self.account_id = account_id
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen | None = None
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-stderr.log"
        self._log = None

    def start(self) -> ServerConfig:
        binary = stevedore_binary()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("STEVEDORE_") and not k.startswith("AWS_")
        }
        env.update(self.extra_env)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [
                str(binary),
                "server",
                "--listen",
                f"127.0.0.1:{self.port}",
                "--data-dir",
                str(self.data_dir),
                "--region",
                REGION,
                "--account-id",
                self.account_id,
            ],
            stdout=self._log,
            stderr=self._log,
            env=env,
        )
        self.wait_healthy()
        return self.config()

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        last = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"stevedore exited with {self.proc.returncode} before becoming healthy:\n"
                    + self.log_tail()
                )
            try:
                with urllib.request.urlopen(self.endpoint + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError) as exc:
                last = exc
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(
            f"stevedore not healthy within {HEALTH_TIMEOUT_S}s (last error {last}):\n"
            + self.log_tail()
        )

    def config(self) -> ServerConfig:
        cred_file = self.data_dir / "credentials"
        access, secret = self.extra_env.get("STEVEDORE_ADMIN_ACCESS_KEY_ID"), self.extra_env.get(
            "STEVEDORE_ADMIN_SECRET_ACCESS_KEY"
        )
        if not access:
            access, secret = read_credentials(cred_file)
        return ServerConfig(
            endpoint=self.endpoint,
            region=REGION,
            access_key=access,
            secret_key=secret,
            credentials_file=cred_file,
            data_dir=self.data_dir,
        )

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode("utf-8", "replace")
        except OSError:
            return "<no log>"

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


def read_credentials(path: Path) -> tuple[str, str]:
    deadline = time.monotonic() + 5
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    parser = configparser.ConfigParser()
    parser.read(path)
    section = parser["default"]
    return section["aws_access_key_id"], section["aws_secret_access_key"]


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The shared server for the session; yields a ServerConfig.

    STEVEDORE_TEST_ENDPOINT=http://host:port points the suite at an already running
    server instead (credentials from STEVEDORE_TEST_CREDENTIALS, an AWS credentials file,
    else test/test) -- handy for checking the tests themselves against moto.
    """
    external = os.environ.get("STEVEDORE_TEST_ENDPOINT")
    if external:
        cred_file = Path(os.environ.get("STEVEDORE_TEST_CREDENTIALS", "/nonexistent"))
        access, secret = read_credentials(cred_file) if cred_file.exists() else ("test", "test")
        yield ServerConfig(external.rstrip("/"), REGION, access, secret, cred_file, cred_file.parent)
        return
    data_dir = tmp_path_factory.mktemp("stevedore") / "data"
    srv = StevedoreServer(data_dir)
    try:
        cfg = srv.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield cfg
    srv.stop()


@pytest.fixture(scope="session")
def server_config(server) -> ServerConfig:
    return server


def make_client(cfg: ServerConfig, service: str = "ecs", **kwargs):
    return boto3.session.Session().client(
        service,
        endpoint_url=cfg.endpoint,
        region_name=cfg.region,
        aws_access_key_id=kwargs.pop("access_key", cfg.access_key),
        aws_secret_access_key=kwargs.pop("secret_key", cfg.secret_key),
        config=botocore.config.Config(
            **{
                "retries": {"max_attempts": 1, "mode": "standard"},
                "connect_timeout": 5,
                "read_timeout": 30,
                **kwargs,
            }
        ),
    )


@pytest.fixture(scope="session")
def ecs(server):
    """A boto3 ECS client against the shared server."""
    return make_client(server)


@pytest.fixture(scope="session")
def ecs_unvalidated(server):
    """A boto3 ECS client with client-side parameter validation off (to send bad input)."""
    return make_client(server, parameter_validation=False)


# --- raw signed HTTP -----------------------------------------------------------------


@contextlib.contextmanager
def signing_clock(offset: datetime.timedelta):
    """Make botocore's SigV4 signer believe the current time is now + offset."""
    original = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda: original() + offset
    try:
        yield
    finally:
        botocore.auth.get_current_datetime = original


def signed_headers(
    cfg: ServerConfig,
    operation: str,
    body: bytes,
    *,
    credentials: Credentials | None = None,
    target_prefix: str = TARGET_PREFIX,
    service: str = "ecs",
    extra_headers: dict | None = None,
) -> dict:
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": f"{target_prefix}.{operation}",
    }
    headers.update(extra_headers or {})
    req = AWSRequest(method="POST", url=cfg.endpoint + "/", data=body, headers=headers)
    botocore.auth.SigV4Auth(credentials or cfg.credentials(), service, cfg.region).add_auth(req)
    return dict(req.headers.items())


def raw_call(
    cfg: ServerConfig,
    operation: str,
    body: bytes | str | dict = b"{}",
    *,
    sign: bool = True,
    credentials: Credentials | None = None,
    headers: dict | None = None,
    timeout: float = 15,
) -> requests.Response:
    """POST one AWS JSON 1.1 request, signed (by default) with botocore's SigV4Auth."""
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    if sign:
        hdrs = signed_headers(cfg, operation, body, credentials=credentials)
    else:
        hdrs = {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"{TARGET_PREFIX}.{operation}",
        }
    hdrs.update(headers or {})
    return requests.post(cfg.endpoint + "/", data=body, headers=hdrs, timeout=timeout)


def error_code(resp: requests.Response) -> str:
    """The error code the way botocore derives it from an AWS JSON 1.1 error body."""
    body = resp.json()
    code = body.get("__type", str(resp.status_code))
    code = code.split(":")[0]
    return code.rsplit("#", 1)[-1]


def error_message(resp: requests.Response) -> str:
    body = resp.json()
    return body.get("message", body.get("Message", ""))


# --- aws CLI -------------------------------------------------------------------------


def aws_cli_path() -> str | None:
    candidate = Path(sys.executable).parent / "aws"
    if candidate.exists():
        return str(candidate)
    candidate = Path("/tmp/venv/bin/aws")
    if candidate.exists():
        return str(candidate)
    return shutil.which("aws")


class AwsCli:
    def __init__(self, cfg: ServerConfig, exe: str):
        self.cfg = cfg
        self.exe = exe

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ENDPOINT_URL=self.cfg.endpoint,
            AWS_SHARED_CREDENTIALS_FILE=str(self.cfg.credentials_file),
            AWS_DEFAULT_REGION=self.cfg.region,
            AWS_CONFIG_FILE="/dev/null",
            AWS_MAX_ATTEMPTS="1",
            AWS_PAGER="",
        )
        return env

    def run(self, *args: str, check: bool = True, timeout: float = 120):
        """Run `aws <args> --output json`; return parsed JSON (None for empty output)."""
        proc = subprocess.run(
            [self.exe, *args, "--output", "json"],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"aws {' '.join(args)} exited {proc.returncode}\nstdout: {proc.stdout}\n"
                f"stderr: {proc.stderr}"
            )
        if not check:
            return proc
        return json.loads(proc.stdout) if proc.stdout.strip() else None


@pytest.fixture(scope="session")
def aws(server):
    exe = aws_cli_path()
    if exe is None:
        missing("aws CLI not found (install awscli into the venv)")
    return AwsCli(server, exe)


# --- builders ------------------------------------------------------------------------


def container(name: str = "app", image: str = "nginx:latest", **kw) -> dict:
    c = {"name": name, "image": image, "memory": 128, "essential": True}
    c.update(kw)
    return c


def register(ecs_client, family: str | None = None, **kw):
    family = family or unique("fam")
    kw.setdefault("containerDefinitions", [container()])
    return ecs_client.register_task_definition(family=family, **kw)["taskDefinition"]


def register_instance(ecs_client, cluster: str, **kw):
    kw.setdefault(
        "totalResources",
        [
            {"name": "CPU", "type": "INTEGER", "integerValue": 2048},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": 3768},
            {"name": "PORTS", "type": "STRINGSET", "stringSetValue": ["22", "2375", "2376", "51678", "51679"]},
            {"name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": []},
        ],
    )
    kw.setdefault(
        "versionInfo",
        {"agentVersion": "1.80.0", "agentHash": "abcdef0", "dockerVersion": "DockerVersion: 25.0.3"},
    )
    return ecs_client.register_container_instance(cluster=cluster, **kw)["containerInstance"]


def paginate_all(ecs_client, operation: str, key: str, **kw) -> list:
    out = []
    for page in ecs_client.get_paginator(operation).paginate(**kw):
        out.extend(page[key])
    return out


def tmpdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="stevedore-compat-"))


def default_subnet(aws, region: str = REGION) -> str:
    """The default VPC's subnet in `region`'s first zone (EC2 creates it on first use),
    through the aws CLI `aws` (an AwsCli)."""
    out = aws.run("--region", region, "ec2", "describe-subnets", "--filters",
                  "Name=default-for-az,Values=true", f"Name=availability-zone,Values={region}a")
    return out["Subnets"][0]["SubnetId"]


def awsvpc_network(aws, region: str = REGION) -> str:
    """An awsvpcConfiguration in the CLI's shorthand: the default subnet, the VPC's
    default security group."""
    return (f"awsvpcConfiguration={{subnets=[{default_subnet(aws, region)}],"
            "assignPublicIp=DISABLED}")


def default_subnet_id(cfg: ServerConfig) -> str:
    """The default VPC's subnet in the first zone, through boto3."""
    ec2 = make_client(cfg, "ec2")
    return ec2.describe_subnets(Filters=[
        {"Name": "default-for-az", "Values": ["true"]},
        {"Name": "availability-zone", "Values": [f"{cfg.region}a"]}])["Subnets"][0]["SubnetId"]
