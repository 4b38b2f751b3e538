"""Hollow instances for task and placement tests: a `stevedore sim` child process that
registers N instances in a cluster and acknowledges/reports their tasks at once."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time

from conftest import ServerConfig, stevedore_binary, unique


class Sim:
    def __init__(self, cfg: ServerConfig, ecs, instances: int, zones: str = "a,b,c", cpu: int = 4096, memory: int = 8192, cluster: str | None = None):
        self.cfg = cfg
        self.ecs = ecs
        self.cluster = cluster or unique("sim")
        self.instances = instances
        self.args = ["--instances", str(instances), "--zones", zones, "--cpu", str(cpu), "--memory", str(memory)]
        self.proc: subprocess.Popen | None = None
        self.log = None

    def __enter__(self) -> "Sim":
        self.ecs.create_cluster(clusterName=self.cluster)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_SHARED_CREDENTIALS_FILE=str(self.cfg.credentials_file),
            AWS_DEFAULT_REGION=self.cfg.region,
            STEVEDORE_LOG=os.environ.get("STEVEDORE_LOG", "warn"),
        )
        self.log = open(self.cfg.data_dir.parent / f"{self.cluster}-sim.log", "w")
        self.proc = subprocess.Popen(
            [str(stevedore_binary()), "sim", "--cluster", self.cluster, "--endpoint", self.cfg.endpoint, *self.args],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"stevedore sim exited early ({self.proc.returncode}); see {self.log.name}"
            arns = self.instance_arns()
            if len(arns) == self.instances and self.all_connected(arns):
                return self
            time.sleep(0.2)
        raise AssertionError(f"{self.instances} hollow instances did not register and connect within 60 s")

    def instance_arns(self) -> list[str]:
        out = []
        for page in self.ecs.get_paginator("list_container_instances").paginate(cluster=self.cluster):
            out.extend(page["containerInstanceArns"])
        return out

    def all_connected(self, arns: list[str]) -> bool:
        for i in range(0, len(arns), 100):
            batch = self.ecs.describe_container_instances(cluster=self.cluster, containerInstances=arns[i : i + 100])
            if not all(ci["agentConnected"] for ci in batch["containerInstances"]):
                return False
        return True

    def describe_instances(self) -> list[dict]:
        arns = self.instance_arns()
        out = []
        for i in range(0, len(arns), 100):
            out.extend(self.ecs.describe_container_instances(cluster=self.cluster, containerInstances=arns[i : i + 100])["containerInstances"])
        return out

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.log:
            self.log.close()


def wait_tasks(ecs, cluster: str, arns: list[str], status: str, timeout: float = 30) -> list[dict]:
    """Polls DescribeTasks until every task has lastStatus `status`; returns them."""
    deadline = time.monotonic() + timeout
    tasks: list[dict] = []
    while time.monotonic() < deadline:
        tasks = []
        for i in range(0, len(arns), 100):
            tasks.extend(ecs.describe_tasks(cluster=cluster, tasks=arns[i : i + 100])["tasks"])
        if len(tasks) == len(arns) and all(t["lastStatus"] == status for t in tasks):
            return tasks
        time.sleep(0.2)
    seen = sorted({t["lastStatus"] for t in tasks})
    raise AssertionError(f"tasks did not all reach {status} within {timeout} s (seen: {seen})")


def resource(ci: dict, name: str, field: str = "integerValue"):
    for r in ci["remainingResources"]:
        if r["name"] == name:
            return r.get(field)
    return None


def registered(ci: dict, name: str, field: str = "integerValue"):
    for r in ci["registeredResources"]:
        if r["name"] == name:
            return r.get(field)
    return None
