"""Fixtures for the tests that run real containers (test_agent*.py, test_fargate.py,
test_lb_services.py): a dedicated `stevedore server`, a cluster, a local busybox image
built FROM scratch, and `stevedore agent` child processes that can be killed with SIGKILL
and restarted on the same state directory. `agent_env` makes a module's `env` fixture
out of them; every container made for its cluster is removed by its cluster label at
teardown, even on failure."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Sequence

import pytest

from conftest import (
    ARN_PREFIX,
    AwsCli,
    ServerConfig,
    StevedoreServer,
    aws_cli_path,
    missing,
    stevedore_binary,
    unique,
)

IMAGE = "stevedore-agent-test:busybox"
# busybox with /bin/sh, so CMD-SHELL health checks and `sh -c` work.
SH_IMAGE = "stevedore-agent-test:busybox-sh"
CLUSTER_LABEL = "com.amazonaws.ecs.cluster"
BUSYBOX_DOCKERFILE = "FROM scratch\nCOPY busybox /bin/busybox\n"
SLEEP_CMD = 'CMD ["/bin/busybox","sh","-c","sleep 3600"]\n'


def require_docker() -> None:
    if shutil.which("docker") is None:
        missing("docker CLI not found")
    try:
        ok = subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        ok = False
    if not ok:
        missing("Docker is not running (`docker info` fails)")


def docker_offers_runsc() -> bool:
    """Whether the local Docker lists gVisor's runsc among its runtimes."""
    if shutil.which("docker") is None:
        return False
    try:
        out = subprocess.run(["docker", "info", "--format", "{{json .Runtimes}}"],
                             capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return False
    return out.returncode == 0 and "runsc" in json.loads(out.stdout or "{}")


def build_image(tmp: Path, tag: str = IMAGE, ctx_name: str = "image",
                dockerfile_tail: str = SLEEP_CMD, build_args: Sequence[str] = ()) -> None:
    """Build `tag` FROM scratch with the host's static busybox, then `dockerfile_tail`."""
    ctx = tmp / ctx_name
    ctx.mkdir(parents=True, exist_ok=True)
    shutil.copy("/bin/busybox", ctx / "busybox")
    (ctx / "Dockerfile").write_text(BUSYBOX_DOCKERFILE + dockerfile_tail)
    subprocess.run(["docker", "build", "-q", *build_args, "-t", tag, str(ctx)], check=True,
                   capture_output=True, timeout=180)


def build_sh_image(tmp: Path) -> None:
    """SH_IMAGE: busybox with a /bin/sh link (built without network access)."""
    build_image(tmp, SH_IMAGE, "image-sh",
                'RUN ["/bin/busybox", "ln", "-s", "busybox", "/bin/sh"]\n' + SLEEP_CMD,
                ("--network", "none"))


def containers(label: str, all_: bool = True) -> list[str]:
    args = ["docker", "ps", "-q", "--no-trunc", "--filter", f"label={label}"]
    if all_:
        args.insert(2, "-a")
    out = subprocess.run(args, capture_output=True, text=True, timeout=30).stdout
    return out.split()


def remove_cluster_containers(cluster_arn: str) -> None:
    ids = containers(f"{CLUSTER_LABEL}={cluster_arn}")
    if ids:
        subprocess.run(["docker", "rm", "-f", "-v", *ids], capture_output=True, timeout=60)


class AgentProcess:
    """`stevedore agent` as a child process."""

    def __init__(self, cfg: ServerConfig, cluster: str, state_dir: Path, log: Path,
                 extra_args: Sequence[str] = (), cleanup_wait: str = "1h"):
        self.cfg, self.cluster, self.state_dir, self.log_path = cfg, cluster, state_dir, log
        self.extra_args, self.cleanup_wait = tuple(extra_args), cleanup_wait
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AWS_") and not k.startswith("STEVEDORE_")}
        env.update(AWS_SHARED_CREDENTIALS_FILE=str(self.cfg.credentials_file),
                   AWS_DEFAULT_REGION=self.cfg.region, STEVEDORE_LOG="info")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(stevedore_binary()), "agent", "--cluster", self.cluster, "--endpoint",
             self.cfg.endpoint, "--state-dir", str(self.state_dir),
             "--config", "/dev/null", "--container-cleanup-wait", self.cleanup_wait,
             *self.extra_args],
            stdout=log, stderr=log, env=env)
        log.close()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode("utf-8", "replace")
        except OSError:
            return "<no log>"


def wait_for(fn, timeout: float, what: str, log=lambda: ""):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last={last!r}\n{log()}")


def describe_task(aws: AwsCli, cluster: str, arn: str) -> dict:
    return aws.run("ecs", "describe-tasks", "--cluster", cluster, "--tasks", arn)["tasks"][0]


def register_family(aws: AwsCli, family: str, containers_: list[dict]) -> None:
    aws.run("ecs", "register-task-definition", "--family", family, "--network-mode", "bridge",
            "--container-definitions", json.dumps(containers_))


def run_task(aws: AwsCli, cluster: str, family: str) -> str:
    out = aws.run("ecs", "run-task", "--cluster", cluster, "--task-definition", family)
    assert out["tasks"], out
    return out["tasks"][0]["taskArn"]


def http_body(url: str) -> str | None:
    """The body at `url`, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return r.read().decode()
    except (urllib.error.URLError, OSError):
        return None


def make_cli(cfg: ServerConfig) -> AwsCli:
    exe = aws_cli_path()
    if exe is None:
        missing("aws CLI not found (install awscli into the venv)")
    return AwsCli(cfg, exe)


def connected_instances(aws: AwsCli, cluster: str) -> list[dict]:
    """The cluster's container instances whose agent is connected."""
    arns = aws.run("ecs", "list-container-instances", "--cluster", cluster)["containerInstanceArns"]
    if not arns:
        return []
    out = aws.run("ecs", "describe-container-instances", "--cluster", cluster,
                  "--container-instances", *arns)
    return [ci for ci in out["containerInstances"] if ci.get("agentConnected")]


def agent_connected(aws: AwsCli, cluster: str) -> bool:
    return bool(connected_instances(aws, cluster))


def agent_env(tmp_name: str, cluster_prefix: str, *,
              image: Callable[[Path], None] | None = build_image,
              agents: Sequence[Sequence[str]] = ((),),
              cleanup_wait: str = "1h",
              cluster_args: Sequence[str] = (),
              extra: Callable[[ServerConfig], dict] | None = None,
              server_env: dict | None = None):
    """A module-scoped `env` fixture: Docker required, `image(tmp)` built, a dedicated
    `stevedore server`, a cluster `cluster_prefix-<uuid>` (created with `cluster_args`),
    and one `stevedore agent` per entry of `agents` (its extra flags), all connected
    before the tests run. Yields a dict: aws, cfg, srv, cluster, cluster_arn, agents,
    agent (the first, or None), plus `extra(cfg)`. `server_env` is added to the server's
    environment (e.g. STEVEDORE_FARGATE_SANDBOX). At teardown the agents and the server
    are killed and every container with the cluster's label is removed."""

    @pytest.fixture(scope="module", name="env")
    def env(tmp_path_factory):
        """This module's server, cluster and agents (made by agent_fixtures.agent_env)."""
        require_docker()
        tmp = tmp_path_factory.mktemp(tmp_name)
        if image is not None:
            image(tmp)
        srv = StevedoreServer(tmp / "server", extra_env=server_env)
        cfg = srv.start()
        cluster = unique(cluster_prefix)
        cluster_arn = f"{ARN_PREFIX}:cluster/{cluster}"
        aws = make_cli(cfg)
        suffix = (lambda i: "") if len(agents) == 1 else (lambda i: f"-{i}")
        procs = [AgentProcess(cfg, cluster, tmp / f"agent-state{suffix(i)}",
                              tmp / f"agent{suffix(i)}.log", args, cleanup_wait)
                 for i, args in enumerate(agents)]
        try:
            aws.run("ecs", "create-cluster", "--cluster-name", cluster, *cluster_args)
            for a in procs:
                a.start()
            if procs:
                wait_for(lambda: len(connected_instances(aws, cluster)) >= len(procs), 60,
                         f"{len(procs)} agent(s) to register and connect",
                         lambda: "".join(a.log_tail() for a in procs))
            yield {"aws": aws, "cfg": cfg, "srv": srv, "cluster": cluster,
                   "cluster_arn": cluster_arn, "agents": procs,
                   "agent": procs[0] if procs else None, **(extra(cfg) if extra else {})}
        finally:
            try:
                for a in procs:
                    a.kill()
                srv.kill()
            finally:
                remove_cluster_containers(cluster_arn)

    return env
