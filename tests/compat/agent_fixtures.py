"""Fixtures for test_agent.py: a dedicated `stevedore server`, a cluster, a local busybox
image built FROM scratch, and a `stevedore agent` child process that can be killed with
SIGKILL and restarted on the same state directory. Every container the agent creates is
removed by its cluster label at teardown, even on failure."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from conftest import AwsCli, ServerConfig, aws_cli_path, missing, stevedore_binary

IMAGE = "stevedore-agent-test:busybox"
CLUSTER_LABEL = "com.amazonaws.ecs.cluster"


def require_docker() -> None:
    if shutil.which("docker") is None:
        missing("docker CLI not found")
    try:
        ok = subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        ok = False
    if not ok:
        missing("Docker is not running (`docker info` fails)")


def build_image(tmp: Path) -> None:
    ctx = tmp / "image"
    ctx.mkdir(parents=True, exist_ok=True)
    shutil.copy("/bin/busybox", ctx / "busybox")
    (ctx / "Dockerfile").write_text(
        'FROM scratch\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox","sh","-c","sleep 3600"]\n'
    )
    subprocess.run(["docker", "build", "-q", "-t", IMAGE, str(ctx)], check=True,
                   capture_output=True, timeout=180)


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
                 extra_args: tuple[str, ...] = ()):
        self.cfg, self.cluster, self.state_dir, self.log_path = cfg, cluster, state_dir, log
        self.extra_args = extra_args
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
             "--config", "/dev/null", "--container-cleanup-wait", "1h", *self.extra_args],
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


def make_cli(cfg: ServerConfig) -> AwsCli:
    exe = aws_cli_path()
    if exe is None:
        missing("aws CLI not found (install awscli into the venv)")
    return AwsCli(cfg, exe)
