"""The soak load (issue 15): tasks started and stopped at a steady rate on hollow instances
and log lines shipped with PutLogEvents, while the server's RSS, its state database and
data directory sizes, and the number of STOPPED tasks it still lists are sampled.

Used by tests/compat/test_soak.py (3 minutes, debug build) and bench/soak.sh (an hour,
release build). As a script it prints one JSON line per sample and a JSON summary:

    python soak_load.py --cluster C --server-pid PID --data-dir DIR --duration 3600

(endpoint and credentials from AWS_ENDPOINT_URL / AWS_SHARED_CREDENTIALS_FILE.)
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import threading
import time
from pathlib import Path

import boto3

# RunTask starts at most 10 tasks per call.
RUN_BATCH = 10
# PutLogEvents calls per second (the lines are spread over them).
LOG_CALLS_PER_S = 10


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def tree_bytes(root: Path, prefix: str = "") -> int:
    total = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            if name.startswith(prefix):
                try:
                    total += os.stat(os.path.join(dirpath, name)).st_size
                except FileNotFoundError:
                    pass  # removed between the walk and the stat (a WAL checkpoint)
    return total


def levels_off(series: list[float], tolerance: float = 0.10) -> tuple[bool, float, float]:
    """Whether the last third's mean is within `tolerance` of the middle third's (or below
    it); the two means."""
    n = len(series) // 3
    if n == 0:
        return False, 0.0, 0.0
    middle = series[n : 2 * n]
    last = series[2 * n :]
    m, l = sum(middle) / len(middle), sum(last) / len(last)
    return l <= m * (1 + tolerance), m, l


class Soak:
    def __init__(self, cluster: str, server_pid: int, data_dir: Path, tasks_per_min: int = 100,
                 log_lines_per_s: int = 1000, sample_every: float = 30.0, clients=None):
        # `clients(service)` makes a client; each thread gets its own.
        self.clients = clients or boto3.client
        self.cluster = cluster
        self.server_pid = server_pid
        self.data_dir = Path(data_dir)
        self.tasks_per_min = tasks_per_min
        self.log_lines_per_s = log_lines_per_s
        self.sample_every = sample_every
        self.ecs = self.clients("ecs")
        self.logs = self.clients("logs")
        self.stop_event = threading.Event()
        self.errors: collections.Counter = collections.Counter()
        self.started = 0
        self.stopped = 0
        self.lines = 0
        self.samples: list[dict] = []

    def setup(self) -> None:
        self.family = f"soak-{self.cluster}"
        self.ecs.register_task_definition(
            family=self.family,
            containerDefinitions=[{"name": "app", "image": "busybox", "cpu": 8, "memory": 16, "essential": True}],
        )
        self.group, self.stream = f"/soak/{self.cluster}", "app"
        try:
            self.logs.create_log_group(logGroupName=self.group)
        except self.logs.exceptions.ResourceAlreadyExistsException:
            pass
        try:
            self.logs.create_log_stream(logGroupName=self.group, logStreamName=self.stream)
        except self.logs.exceptions.ResourceAlreadyExistsException:
            pass

    def _tasks(self) -> None:
        # Every tick starts one RunTask batch and stops the batch of the tick before, so
        # `tasks_per_min` tasks start and as many stop each minute.
        tick = 60.0 / (self.tasks_per_min / RUN_BATCH)
        ecs = self.clients("ecs")
        previous: list[str] = []
        next_at = time.monotonic()
        while not self.stop_event.is_set():
            try:
                out = ecs.run_task(cluster=self.cluster, taskDefinition=self.family, count=RUN_BATCH)
                arns = [t["taskArn"] for t in out["tasks"]]
                self.started += len(arns)
                if out.get("failures"):
                    self.errors["run_task_failures"] += len(out["failures"])
            except Exception as exc:  # counted and reported; the soak goes on
                self.errors[f"run_task: {type(exc).__name__}"] += 1
                arns = []
            for arn in previous:
                try:
                    ecs.stop_task(cluster=self.cluster, task=arn, reason="soak")
                    self.stopped += 1
                except Exception as exc:
                    self.errors[f"stop_task: {type(exc).__name__}"] += 1
            previous = arns
            next_at += tick
            self.stop_event.wait(max(0.0, next_at - time.monotonic()))

    def _logs(self) -> None:
        logs = self.clients("logs")
        per_call = max(1, self.log_lines_per_s // LOG_CALLS_PER_S)
        next_at = time.monotonic()
        n = 0
        while not self.stop_event.is_set():
            now_ms = int(time.time() * 1000)
            events = [{"timestamp": now_ms, "message": f"soak line {n + i} " + "x" * 64} for i in range(per_call)]
            try:
                logs.put_log_events(logGroupName=self.group, logStreamName=self.stream, logEvents=events)
                self.lines += per_call
            except Exception as exc:
                self.errors[f"put_log_events: {type(exc).__name__}"] += 1
            n += per_call
            next_at += 1.0 / LOG_CALLS_PER_S
            self.stop_event.wait(max(0.0, next_at - time.monotonic()))

    def stopped_listed(self) -> int:
        count = 0
        for page in self.ecs.get_paginator("list_tasks").paginate(cluster=self.cluster, desiredStatus="STOPPED"):
            count += len(page["taskArns"])
        return count

    def sample(self, t0: float) -> dict:
        s = {
            "t_s": round(time.monotonic() - t0, 1),
            "rss_mib": round(rss_kib(self.server_pid) / 1024, 1),
            "state_db_mib": round(tree_bytes(self.data_dir, "state.db") / 2**20, 2),
            "data_dir_mib": round(tree_bytes(self.data_dir) / 2**20, 2),
            "stopped_listed": self.stopped_listed(),
            "started": self.started,
            "stopped": self.stopped,
            "log_lines": self.lines,
        }
        self.samples.append(s)
        return s

    def run(self, duration: float, on_sample=None) -> dict:
        self.setup()
        threads = [threading.Thread(target=self._tasks, daemon=True), threading.Thread(target=self._logs, daemon=True)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        try:
            while time.monotonic() - t0 < duration:
                time.sleep(min(self.sample_every, max(0.0, duration - (time.monotonic() - t0))))
                s = self.sample(t0)
                if on_sample:
                    on_sample(s)
        finally:
            self.stop_event.set()
            for t in threads:
                t.join(timeout=30)
        return self.summary()

    def summary(self) -> dict:
        out = {"samples": len(self.samples), "started": self.started, "stopped": self.stopped,
               "log_lines": self.lines, "errors": dict(self.errors)}
        for key in ("rss_mib", "state_db_mib", "stopped_listed", "data_dir_mib"):
            ok, middle, last = levels_off([s[key] for s in self.samples])
            out[key] = {"levels_off": ok, "middle_third_mean": round(middle, 2), "last_third_mean": round(last, 2),
                        "max": max((s[key] for s in self.samples), default=0)}
        return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cluster", required=True)
    p.add_argument("--server-pid", type=int, required=True)
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--duration", type=float, default=3600)
    p.add_argument("--tasks-per-min", type=int, default=100)
    p.add_argument("--log-lines-per-s", type=int, default=1000)
    p.add_argument("--sample-every", type=float, default=30)
    a = p.parse_args()
    soak = Soak(a.cluster, a.server_pid, a.data_dir, a.tasks_per_min, a.log_lines_per_s, a.sample_every)
    summary = soak.run(a.duration, on_sample=lambda s: print(json.dumps(s), flush=True))
    print(json.dumps({"summary": summary}), flush=True)
    sys.exit(0 if summary["rss_mib"]["levels_off"] and summary["stopped_listed"]["levels_off"] else 1)


if __name__ == "__main__":
    main()
