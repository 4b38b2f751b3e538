"""Chaos at small scale (issue 20): three etcd members, two `stevedore server` replicas,
two real `stevedore agent`s (real Docker) configured with both replicas' endpoints.

A service of 4 is in a rolling update (one task at a time) and RunTask and
RegisterTaskDefinition calls stream in when the leader replica, which the agents are
connected to, is `kill -9`'d; once the other replica leads, the etcd member that leads
the etcd cluster is `kill -9`'d too, the rollout and the stream still going. The test
proves each fault hit while the deployment was IN_PROGRESS (read from the surviving
replica right after the kill), then checks: the surviving replica takes the lease, the
agents fail over to it, the deployment completes on two etcd members, every
acknowledged write is there, and no task runs twice (containers counted by their
task-ARN label).
"""
from __future__ import annotations

import collections
import dataclasses
import json
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import botocore.exceptions
import pytest

from agent_fixtures import IMAGE, AgentProcess, build_image, containers, remove_cluster_containers, require_docker
from conftest import ARN_PREFIX, StevedoreServer, free_port, make_client, missing, unique

LEASE_TTL_S = 3
KEYS = {
    "STEVEDORE_ADMIN_ACCESS_KEY_ID": "AKIASTEVEDORECHAOS01",
    "STEVEDORE_ADMIN_SECRET_ACCESS_KEY": "etcd-chaos-secret-key-for-the-tests-00001",
}
TASK_LABEL = "com.amazonaws.ecs.task-arn"


class EtcdCluster:
    """`n` etcd members on loopback, each with its own ports and data dir."""

    def __init__(self, root: Path, n: int = 3):
        binary = shutil.which("etcd")
        if binary is None:
            missing("etcd is not installed (Debian package etcd-server)")
        self.binary, self.root = binary, root
        self.members = [(f"m{i}", free_port(), free_port()) for i in range(n)]
        self.procs: list[subprocess.Popen] = []

    @property
    def url(self) -> str:
        return "etcd://" + ",".join(f"127.0.0.1:{c}" for _, c, _ in self.members)

    def start(self) -> "EtcdCluster":
        cluster = ",".join(f"{name}=http://127.0.0.1:{peer}" for name, _, peer in self.members)
        for name, client, peer in self.members:
            d = self.root / name
            d.mkdir(parents=True, exist_ok=True)
            log = open(d / "etcd.log", "ab")
            self.procs.append(subprocess.Popen(
                [self.binary, "--name", name, "--data-dir", str(d / "data"),
                 "--listen-client-urls", f"http://127.0.0.1:{client}",
                 "--advertise-client-urls", f"http://127.0.0.1:{client}",
                 "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                 "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                 "--initial-cluster", cluster, "--initial-cluster-state", "new",
                 "--max-txn-ops", "10000", "--max-request-bytes", "10485760"],
                stdout=log, stderr=log))
            log.close()
        deadline = time.monotonic() + 30
        for _, client, _ in self.members:
            while True:
                assert time.monotonic() < deadline, "the etcd cluster did not become healthy in 30 s"
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{client}/health", timeout=1) as r:
                        if r.status == 200 and b'"true"' in r.read():
                            break
                except OSError:
                    pass
                time.sleep(0.2)
        return self

    def leader(self) -> int:
        """Index of the member that leads the etcd cluster (asked through the gateway)."""
        for i, (_, client, _) in enumerate(self.members):
            if self.procs[i].poll() is not None:
                continue
            req = urllib.request.Request(f"http://127.0.0.1:{client}/v3/maintenance/status", data=b"{}",
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=2) as r:
                status = json.load(r)
            if status["header"]["member_id"] == status["leader"]:
                return i
        raise AssertionError("no etcd member says it leads")

    def kill(self, i: int) -> None:
        self.procs[i].kill()
        self.procs[i].wait(timeout=10)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)


def leads(srv: StevedoreServer) -> bool:
    log = srv.log_path.read_text(errors="replace")
    return log.rfind("This replica is now the leader.") > log.rfind("This replica is no longer the leader.")


def wait_for(pred, timeout: float, what: str, log=lambda: ""):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last={last!r}\n{log()}")


def register(ecs, family: str, version: str) -> str:
    c = {"name": "app", "image": IMAGE, "memory": 32, "essential": True,
         "command": ["/bin/busybox", "sh", "-c", "sleep 3600"], "stopTimeout": 2,
         "environment": [{"name": "V", "value": version}]}
    return ecs.register_task_definition(family=family, networkMode="bridge",
                                        containerDefinitions=[c])["taskDefinition"]["taskDefinitionArn"]


def service(ecs, cluster: str, name: str) -> dict:
    return ecs.describe_services(cluster=cluster, services=[name])["services"][0]


def connected(ecs, cluster: str) -> int:
    """How many of the cluster's instances have their agent connected."""
    arns = ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
    if not arns:
        return 0
    cis = ecs.describe_container_instances(cluster=cluster, containerInstances=arns)["containerInstances"]
    return sum(1 for ci in cis if ci.get("agentConnected"))


def primary(s: dict) -> dict:
    return next(d for d in s["deployments"] if d["status"] == "PRIMARY")


@pytest.fixture
def world(tmp_path):
    require_docker()
    build_image(tmp_path)
    etcd = EtcdCluster(tmp_path / "etcd").start()
    env = dict(KEYS, STEVEDORE_STORE=etcd.url, STEVEDORE_NO_LB="true",
               STEVEDORE_LEADER_LEASE_TTL=str(LEASE_TTL_S), STEVEDORE_LOG="info")
    a, b = StevedoreServer(tmp_path / "a", extra_env=env), StevedoreServer(tmp_path / "b", extra_env=env)
    agents: list[AgentProcess] = []
    cluster = unique("chaos")
    cluster_arn = f"{ARN_PREFIX}:cluster/{cluster}"
    try:
        cfg_a = a.start()
        wait_for(lambda: leads(a), 20, "the first replica to lead", a.log_tail)
        cfg_b = b.start()
        # The agents sign with the shared admin key (a server given its key in the
        # environment writes no credentials file) and know both replicas, a first.
        cfg_a.credentials_file.write_text(
            "[default]\naws_access_key_id = {STEVEDORE_ADMIN_ACCESS_KEY_ID}\n"
            "aws_secret_access_key = {STEVEDORE_ADMIN_SECRET_ACCESS_KEY}\n".format(**KEYS))
        both = dataclasses.replace(cfg_a, endpoint=f"{cfg_a.endpoint},{cfg_b.endpoint}")
        ecs_a, ecs_b = make_client(cfg_a), make_client(cfg_b)
        ecs_a.create_cluster(clusterName=cluster)
        for i, zone in enumerate("ab"):
            agent = AgentProcess(both, cluster, tmp_path / f"agent-state-{i}", tmp_path / f"agent-{i}.log",
                                 ("--availability-zone", zone))
            agent.start()
            agents.append(agent)
        wait_for(lambda: connected(ecs_b, cluster) == 2, 60, "both agents to connect",
                 lambda: "".join(x.log_tail() for x in agents))
        yield {"a": a, "b": b, "ecs_a": ecs_a, "ecs_b": ecs_b, "cluster": cluster, "etcd": etcd,
               "cluster_arn": cluster_arn, "agents": agents}
    finally:
        try:
            for x in agents:
                x.kill()
            a.kill()
            b.kill()
            etcd.stop()
        finally:
            remove_cluster_containers(cluster_arn)


def test_killing_the_leader_mid_deployment_loses_nothing_and_runs_nothing_twice(world):
    a, b, ecs_a, ecs_b = world["a"], world["b"], world["ecs_a"], world["ecs_b"]
    cluster, agents = world["cluster"], world["agents"]
    logs = lambda: b.log_tail() + "".join(x.log_tail() for x in agents)  # noqa: E731
    fam = unique("chaos")
    td1 = register(ecs_a, fam, "1")
    name = unique("chaos")
    # One replacement at a time: the rollout takes several controller rounds.
    ecs_a.create_service(cluster=cluster, serviceName=name, taskDefinition=td1, desiredCount=4,
                         deploymentConfiguration={"maximumPercent": 125, "minimumHealthyPercent": 100})
    wait_for(lambda: (lambda s: s["runningCount"] == 4 and primary(s)["rolloutState"] == "COMPLETED")(
        service(ecs_b, cluster, name)), 90, "the service to run 4 tasks", logs)

    # Writes acknowledged around the kill, through both replicas; the kill makes a's fail.
    acked_tasks: list[str] = []
    acked_defs: list[str] = []
    stop = threading.Event()

    def stream():
        i = 0
        # Bounded: every acknowledged task must run on the two agents afterwards.
        while not stop.is_set() and i < 36:
            client = ecs_a if i % 2 else ecs_b
            i += 1
            try:
                out = client.run_task(cluster=cluster, taskDefinition=td1)
                acked_tasks.extend(t["taskArn"] for t in out["tasks"])
                acked_defs.append(register(client, fam, f"s{i}"))
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
                pass  # not acknowledged: not checked
            time.sleep(0.3)

    td2 = register(ecs_a, fam, "2")
    streamer = threading.Thread(target=stream, daemon=True)
    streamer.start()
    ecs_a.update_service(cluster=cluster, service=name, taskDefinition=td2)
    # Let the rollout start (a task of the new revision exists), then kill the leader.
    wait_for(lambda: ecs_b.list_tasks(cluster=cluster, serviceName=name, desiredStatus="RUNNING")["taskArns"]
             and any(t["taskDefinitionArn"] == td2 for t in ecs_b.describe_tasks(
                 cluster=cluster, tasks=ecs_b.list_tasks(cluster=cluster, serviceName=name)["taskArns"])["tasks"]),
             30, "the rollout to start", logs)
    a.kill()
    killed_at = time.monotonic()
    at_kill = primary(service(ecs_b, cluster, name))
    assert at_kill["taskDefinition"] == td2
    assert at_kill["rolloutState"] == "IN_PROGRESS", f"the kill must hit mid-deployment: {at_kill}"

    wait_for(lambda: leads(b), LEASE_TTL_S + 10, "the surviving replica to lead", logs)
    assert time.monotonic() - killed_at <= LEASE_TTL_S + 8
    # Then one etcd member of three, the one leading etcd, as soon as the new leader took
    # over, the rollout (one task at a time) and the stream still going: the two members
    # left must carry everything.
    etcd = world["etcd"]
    member = etcd.leader()
    at_etcd_kill = primary(service(ecs_b, cluster, name))
    etcd.kill(member)
    assert at_etcd_kill["rolloutState"] == "IN_PROGRESS", \
        f"the etcd member must die mid-deployment: {at_etcd_kill}"
    # The survivor keeps serving (its etcd client moves to another member).
    wait_for(lambda: ecs_b.describe_services(cluster=cluster, services=[name])["services"], 30,
             "the surviving replica to serve on two etcd members", logs)
    # The agents fail over to b, and the new leader finishes the rollout.
    # (a's sessions stay recorded until the agents open theirs on b, or until the
    # presence sweep ends them; the agents' own logs tell the failover.)
    wait_for(lambda: all("Channel fails over to another replica." in x.log_path.read_text(errors="replace")
                         for x in agents), 60, "both agents to fail over to the surviving replica", logs)
    wait_for(lambda: connected(ecs_b, cluster) == 2, 60, "both agents connected", logs)

    done = wait_for(lambda: (lambda s: s if len(s["deployments"]) == 1 and primary(s)["rolloutState"] == "COMPLETED"
                             and s["runningCount"] == 4 else None)(service(ecs_b, cluster, name)),
                    90, "the deployment to complete on the new leader", logs)
    stop.set()
    streamer.join(timeout=30)
    assert primary(done)["taskDefinition"] == td2

    # Every acknowledged write is there.
    assert acked_tasks and acked_defs, "the stream acknowledged nothing"
    for arn in acked_defs:
        assert ecs_b.describe_task_definition(taskDefinition=arn)["taskDefinition"]["taskDefinitionArn"] == arn
    for i in range(0, len(acked_tasks), 100):
        got = ecs_b.describe_tasks(cluster=cluster, tasks=acked_tasks[i:i + 100])
        assert not got["failures"], got["failures"]
    # Every RunTask task gets to run (once).
    wait_for(lambda: all(t["lastStatus"] == "RUNNING" for t in ecs_b.describe_tasks(
        cluster=cluster, tasks=acked_tasks[:100])["tasks"]), 90, "the acknowledged tasks to run", logs)

    # No task runs twice: one container per task ARN, among all containers ever made.
    per_task = collections.Counter()
    ids = containers(f"com.amazonaws.ecs.cluster={world['cluster_arn']}")
    if ids:
        out = subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True, timeout=60, check=True)
        for c in json.loads(out.stdout):
            per_task[c["Config"]["Labels"].get(TASK_LABEL)] += 1
    # The agents are still (or again) connected once etcd lost a member.
    wait_for(lambda: connected(ecs_b, cluster) == 2, 60, "both agents connected after the etcd kill", logs)
    print(f"replica kill at rollout {at_kill['rolloutState']} ({at_kill['runningCount']} of td2 running); "
          f"etcd member m{member} (the etcd leader) killed at {at_etcd_kill['rolloutState']} "
          f"({at_etcd_kill['runningCount']} running); "
          f"{len(acked_tasks)} RunTask and {len(acked_defs)} RegisterTaskDefinition acknowledged; "
          f"{sum(per_task.values())} containers for {len(per_task)} tasks")
    twice = {arn: n for arn, n in per_task.items() if n > 1}
    assert not twice, f"tasks with more than one container: {twice}"
    running = ecs_b.list_tasks(cluster=cluster, serviceName=name, desiredStatus="RUNNING")["taskArns"]
    assert len(running) == 4
    for arn in running + acked_tasks:
        assert per_task.get(arn) == 1, f"{arn} has {per_task.get(arn, 0)} containers"
