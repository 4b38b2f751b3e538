"""Several `stevedore server` replicas on one etcd (issue 20), driven with boto3.

Each test starts its own etcd (Debian `etcd-server`) on free loopback ports with a temp
data dir, and two replicas that share it (`--store etcd://...`). Both replicas serve
every call with the same answers; the controllers run on the replica holding the leader
lease, and when that replica is killed with SIGKILL the other takes the lease within the
lease TTL and its controller acts. etcd going away turns calls into fast 503
`ServiceUnavailableException`s that clear by themselves when it is back.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import botocore.exceptions
import pytest

from conftest import StevedoreServer, container, free_port, make_client, missing, register, unique
from sim_fixtures import Sim

LEASE_TTL_S = 3
KEYS = {
    "STEVEDORE_ADMIN_ACCESS_KEY_ID": "AKIASTEVEDOREETCD001",
    "STEVEDORE_ADMIN_SECRET_ACCESS_KEY": "etcd-replicas-secret-key-for-the-tests-0001",
}


class Etcd:
    """One etcd member on loopback; `stop()` kills it, `start()` brings it back on the
    same ports and data."""

    def __init__(self, root: Path):
        binary = shutil.which("etcd")
        if binary is None:
            missing("etcd is not installed (Debian package etcd-server)")
        self.binary = binary
        self.root = root
        self.client_port, self.peer_port = free_port(), free_port()
        self.url = f"etcd://127.0.0.1:{self.client_port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Etcd":
        client = f"http://127.0.0.1:{self.client_port}"
        peer = f"http://127.0.0.1:{self.peer_port}"
        self.root.mkdir(parents=True, exist_ok=True)
        log = open(self.root / "etcd.log", "ab")
        self.proc = subprocess.Popen(
            [
                self.binary, "--name", "t", "--data-dir", str(self.root / "data"),
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"t={peer}",
                "--max-txn-ops", "10000", "--max-request-bytes", "10485760",
            ],
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"etcd exited: {(self.root / 'etcd.log').read_text()[-2000:]}"
            try:
                with urllib.request.urlopen(f"{client}/health", timeout=1) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("etcd did not become healthy within 20 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def etcd(tmp_path):
    e = Etcd(tmp_path / "etcd").start()
    yield e
    e.stop()


def replica(tmp_path: Path, name: str, etcd: Etcd) -> StevedoreServer:
    env = dict(KEYS)
    env.update(
        STEVEDORE_STORE=etcd.url,
        STEVEDORE_NO_LB="true",
        STEVEDORE_LEADER_LEASE_TTL=str(LEASE_TTL_S),
        STEVEDORE_LOG=os.environ.get("STEVEDORE_LOG", "info"),
    )
    return StevedoreServer(tmp_path / name, extra_env=env)


def leads(srv: StevedoreServer) -> bool:
    """Whether the replica's log says it is the leader now (the last word counts)."""
    log = srv.log_path.read_text(errors="replace")
    won, lost = log.rfind("This replica is now the leader."), log.rfind("This replica is no longer the leader.")
    return won > lost


def wait_for(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def pair(tmp_path, etcd):
    a, b = replica(tmp_path, "a", etcd), replica(tmp_path, "b", etcd)
    cfg_a = a.start()
    wait_for(lambda: leads(a), 15, "the first replica to lead")
    cfg_b = b.start()
    yield (a, cfg_a), (b, cfg_b)
    for srv in (a, b):
        srv.kill()


def test_both_replicas_serve_the_same_state(pair):
    (_, cfg_a), (_, cfg_b) = pair
    ecs_a, ecs_b = make_client(cfg_a), make_client(cfg_b)
    cluster, fam = unique("rep"), unique("rep")
    ecs_a.create_cluster(clusterName=cluster)
    td = register(ecs_a, family=fam)
    seen = ecs_b.describe_clusters(clusters=[cluster])["clusters"]
    assert [c["clusterName"] for c in seen] == [cluster]
    got = ecs_b.describe_task_definition(taskDefinition=td["taskDefinitionArn"])["taskDefinition"]
    assert got == ecs_a.describe_task_definition(taskDefinition=td["taskDefinitionArn"])["taskDefinition"]
    # Both replicas register revisions of one family at once: compare-and-swap in etcd
    # gives each call its own revision, none lost or doubled.
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(register, (ecs_a if i % 2 else ecs_b), fam) for i in range(16)]
        revisions = sorted(f.result()["revision"] for f in futures)
    assert revisions == list(range(2, 18))
    for client in (ecs_a, ecs_b):
        arns = client.list_task_definitions(familyPrefix=fam)["taskDefinitionArns"]
        assert len(arns) == 17
    # Deletes through one replica are seen by the other.
    ecs_b.delete_cluster(cluster=cluster)
    assert ecs_a.describe_clusters(clusters=[cluster])["clusters"][0]["status"] == "INACTIVE"


def test_killing_the_leader_hands_the_controllers_to_the_other_replica(pair):
    (a, cfg_a), (b, cfg_b) = pair
    assert leads(a) and not leads(b)
    ecs_a, ecs_b = make_client(cfg_a), make_client(cfg_b)
    fam = unique("fo")
    # The hollow instances talk to the replica that survives (with the shared admin key,
    # which a server given its key in the environment does not write to a file).
    cfg_b.credentials_file.write_text(
        "[default]\naws_access_key_id = {STEVEDORE_ADMIN_ACCESS_KEY_ID}\n"
        "aws_secret_access_key = {STEVEDORE_ADMIN_SECRET_ACCESS_KEY}\n".format(**KEYS))
    with Sim(cfg_b, ecs_b, instances=3) as sim:
        td = register(ecs_a, family=fam, containerDefinitions=[container(memory=32)])["taskDefinitionArn"]
        name = unique("fo")
        ecs_a.create_service(cluster=sim.cluster, serviceName=name, taskDefinition=td, desiredCount=2)
        # The leader (a) places; b's agent sessions deliver.
        wait_for(
            lambda: ecs_b.describe_services(cluster=sim.cluster, services=[name])["services"][0]["runningCount"] == 2,
            60, "2 running tasks")
        acked = [register(ecs_a, family=fam)["taskDefinitionArn"] for _ in range(5)]
        killed_at = time.monotonic()
        a.kill()
        wait_for(lambda: leads(b), LEASE_TTL_S + 10, "the surviving replica to take the lease")
        took = time.monotonic() - killed_at
        assert took <= LEASE_TTL_S + 5, f"failover took {took:.1f} s"
        # Every write a acknowledged is there.
        for arn in acked:
            assert ecs_b.describe_task_definition(taskDefinition=arn)["taskDefinition"]["taskDefinitionArn"] == arn
        # b's controller acts on a change made after the failover.
        ecs_b.update_service(cluster=sim.cluster, service=name, desiredCount=4)
        svc = wait_for(
            lambda: (lambda s: s if s["runningCount"] == 4 and s["pendingCount"] == 0 else None)(
                ecs_b.describe_services(cluster=sim.cluster, services=[name])["services"][0]),
            60, "the new leader to reconcile desiredCount 4")
        tasks = ecs_b.list_tasks(cluster=sim.cluster, serviceName=name, desiredStatus="RUNNING")["taskArns"]
        assert len(tasks) == 4, "no task lost or run twice"
        assert svc["desiredCount"] == 4


def test_etcd_down_gives_fast_503s_that_clear_by_themselves(tmp_path, etcd):
    srv = replica(tmp_path, "solo", etcd)
    cfg = srv.start()
    try:
        ecs = make_client(cfg)
        ecs.create_cluster(clusterName="before")
        etcd.stop()
        started = time.monotonic()
        with pytest.raises(botocore.exceptions.ClientError) as err:
            ecs.describe_clusters(clusters=["before"])
        assert time.monotonic() - started < 10
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert err.value.response["Error"]["Code"] == "ServiceUnavailableException"
        etcd.start()
        got = wait_for(
            lambda: _try(lambda: ecs.describe_clusters(clusters=["before"])["clusters"]),
            30, "calls to work again once etcd is back")
        assert got[0]["clusterName"] == "before"
    finally:
        srv.kill()


def _try(call):
    try:
        return call()
    except botocore.exceptions.ClientError:
        return None


def _connected_by_arn(ecs, cluster: str) -> dict[str, bool]:
    arns = ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
    if not arns:
        return {}
    got = ecs.describe_container_instances(cluster=cluster, containerInstances=arns)["containerInstances"]
    return {ci["containerInstanceArn"]: ci["agentConnected"] for ci in got}


def _all(ecs, cluster: str, connected: bool, n: int) -> bool:
    seen = _try(lambda: _connected_by_arn(ecs, cluster))
    return bool(seen) and len(seen) == n and all(v is connected for v in seen.values())


# The presence sweep ends a gone replica's sessions after GONE_AFTER (8 s) of silence,
# judged every 2 s: allow that plus the lease TTL (the sweep runs on the leader).
GONE_WITHIN_S = 8 + 2 + LEASE_TTL_S + 10


def test_agent_connected_is_shared_state_that_follows_the_agent(pair, monkeypatch):
    """`agentConnected` reads the same on every replica and follows the agent: hollow
    instances given both replicas (`stevedore sim --endpoint b,a`) spread over them;
    when one replica is killed its agents reconnect to the other and every replica,
    the restarted one too, shows them connected; when the agents are gone for good
    with their replica, the leader ends their sessions and every replica shows them
    disconnected."""
    (a, cfg_a), (b, cfg_b) = pair
    monkeypatch.setenv("STEVEDORE_LOG", "info")  # the sim logs its failovers
    ecs_a, ecs_b = make_client(cfg_a), make_client(cfg_b)
    for cfg in (cfg_a, cfg_b):
        cfg.credentials_file.write_text(
            "[default]\naws_access_key_id = {STEVEDORE_ADMIN_ACCESS_KEY_ID}\n"
            "aws_secret_access_key = {STEVEDORE_ADMIN_SECRET_ACCESS_KEY}\n".format(**KEYS))
    both = dataclasses.replace(cfg_b, endpoint=f"{cfg_b.endpoint},{cfg_a.endpoint}")
    with Sim(both, ecs_b, instances=4) as sim:
        for ecs in (ecs_a, ecs_b):
            wait_for(lambda ecs=ecs: _all(ecs, sim.cluster, True, 4), 30, "all 4 connected on both replicas")
        # b (not the leader) holds some of the sessions; kill it: its agents move to a.
        b.kill()
        wait_for(lambda: "Channel fails over to another replica." in Path(sim.log.name).read_text(errors="replace"),
                 60, "hollow instances to fail over to a")
        # Whatever b recorded, the records now name a's sessions: connected, and no
        # replica's memory is asked. A restarted b reads the same.
        cfg_b = b.start()
        ecs_b = make_client(cfg_b)
        for ecs in (ecs_a, ecs_b):
            wait_for(lambda ecs=ecs: _all(ecs, sim.cluster, True, 4), 60,
                     "all 4 connected on both replicas after the failover")
        time.sleep(12)  # longer than GONE_AFTER: the leader must not end live sessions
        for ecs in (ecs_a, ecs_b):
            assert _all(ecs, sim.cluster, True, 4), _connected_by_arn(ecs, sim.cluster)
        cluster = sim.cluster
    # The sim stopped: its sessions closed on a; both replicas show them disconnected.
    for ecs in (ecs_a, ecs_b):
        wait_for(lambda ecs=ecs: _all(ecs, cluster, False, 4), 30, "all 4 disconnected on both replicas")

    # Agents that go away with their replica (no close is ever written): the leader (a)
    # ends their sessions once b is silent, and both replicas say so.
    with Sim(cfg_b, ecs_b, instances=2) as gone:
        wait_for(lambda: _all(ecs_a, gone.cluster, True, 2), 30, "b's 2 agents connected, seen from a")
        b.kill()
        gone.proc.kill()
        gone.proc.wait(timeout=10)
        wait_for(lambda: _all(ecs_a, gone.cluster, False, 2), GONE_WITHIN_S,
                 "the leader to end the sessions of the killed replica")
        cfg_b = b.start()
        assert _all(make_client(cfg_b), gone.cluster, False, 2)
