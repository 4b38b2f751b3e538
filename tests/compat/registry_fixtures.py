"""Fixtures for the registry tests: an ECR client, a `/v2/` HTTP client holding a token
from GetAuthorizationToken, and docker/skopeo helpers that isolate their configuration
(DOCKER_CONFIG in a temp dir) and clean up the images they create.

Docker-using tests fail instead of skipping under CI=true when docker or skopeo is
missing (conftest.missing)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

from conftest import IN_CI, aws_cli_path, make_client, missing

TEST_LABEL = "stevedore.test=registry"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def repo_name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}/app"


class V2:
    """A raw OCI distribution client against the server's /v2/."""

    def __init__(self, endpoint: str, password: str):
        self.base = endpoint.rstrip("/")
        self.password = password
        self.s = requests.Session()
        self.s.auth = ("AWS", password)

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base + path

    def req(self, method: str, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", 60)
        return self.s.request(method, self.url(path), **kw)

    def push_blob(self, name: str, data: bytes) -> str:
        d = sha256(data)
        r = self.req("POST", f"/v2/{name}/blobs/uploads/")
        assert r.status_code == 202, r.text
        loc = r.headers["Location"]
        r = self.req("PUT", loc, params={"digest": d}, data=data)
        assert r.status_code == 201, r.text
        return d

    def push_image(self, name: str, tag: str, layers: list[bytes], media_type="application/vnd.oci.image.manifest.v1+json") -> tuple[str, bytes]:
        config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
        cd = self.push_blob(name, config)
        descs = [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": self.push_blob(name, l), "size": len(l)} for l in layers]
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(config)},
            "layers": descs,
        }).encode()
        r = self.req("PUT", f"/v2/{name}/manifests/{tag}", data=manifest, headers={"Content-Type": media_type})
        assert r.status_code == 201, r.text
        assert r.headers["Docker-Content-Digest"] == sha256(manifest)
        return sha256(manifest), manifest


@pytest.fixture(scope="session")
def ecr(server):
    return make_client(server, "ecr")


@pytest.fixture(scope="session")
def registry_password(ecr) -> str:
    data = ecr.get_authorization_token()["authorizationData"][0]
    user, password = base64.b64decode(data["authorizationToken"]).decode().split(":")
    assert user == "AWS"
    return password


@pytest.fixture(scope="session")
def v2(server, registry_password) -> V2:
    return V2(server.endpoint, registry_password)


@pytest.fixture
def repo(ecr):
    name = repo_name()
    ecr.create_repository(repositoryName=name)
    yield name
    try:
        ecr.delete_repository(repositoryName=name, force=True)
    except Exception:  # noqa: BLE001 - the test may have deleted it already
        pass


# --- real clients ----------------------------------------------------------------------


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        missing(f"{tool} is not installed")
    return path


def ensure_dockerd() -> None:
    need("docker")
    if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0:
        return
    need("dockerd")
    log = open("/tmp/stevedore-test-dockerd.log", "ab")
    subprocess.Popen(["dockerd"], stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0:
            return
        time.sleep(1)
    missing("dockerd did not start within 60 s")


class Docker:
    """The docker CLI with its own DOCKER_CONFIG, so logins do not touch ~/.docker."""

    def __init__(self, tmp: Path):
        self.env = {**os.environ, "DOCKER_CONFIG": str(tmp / "docker-config")}
        (tmp / "docker-config").mkdir(exist_ok=True)
        self.created: set[str] = set()

    def run(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        p = subprocess.run(["docker", *args], env=self.env, input=input, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p

    def build(self, tag: str, tmp: Path, payload: bytes = b"") -> None:
        ctx = tmp / f"ctx-{uuid.uuid4().hex[:8]}"
        ctx.mkdir()
        shutil.copy("/bin/busybox", ctx / "busybox")
        (ctx / "payload").write_bytes(payload)
        (ctx / "Dockerfile").write_text(
            "FROM scratch\nCOPY busybox /bin/busybox\nCOPY payload /payload\n"
            f"LABEL {TEST_LABEL}\nCMD [\"/bin/busybox\", \"echo\", \"hello from stevedore\"]\n"
        )
        self.run("build", "-q", "-t", tag, str(ctx))
        self.created.add(tag)

    def cleanup(self) -> None:
        for tag in self.created:
            self.run("rmi", "-f", tag, check=False)
        ids = self.run("images", "-q", "--filter", f"label={TEST_LABEL}", check=False).stdout.split()
        for i in set(ids):
            self.run("rmi", "-f", i, check=False)


@pytest.fixture
def docker(tmp_path):
    if not Path("/bin/busybox").exists():
        missing("/bin/busybox (busybox-static) is needed to build test images")
    ensure_dockerd()
    d = Docker(tmp_path)
    yield d
    d.cleanup()


def aws_env(cfg) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=cfg.endpoint,
        AWS_SHARED_CREDENTIALS_FILE=str(cfg.credentials_file),
        AWS_DEFAULT_REGION=cfg.region,
        AWS_CONFIG_FILE="/dev/null",
        AWS_MAX_ATTEMPTS="1",
        AWS_PAGER="",
    )
    return env


def aws_exe() -> str:
    exe = aws_cli_path()
    if exe is None:
        missing("aws CLI not found")
    return exe
