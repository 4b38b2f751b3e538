"""Acknowledged writes survive `kill -9`; the generated admin key survives restarts."""

import os
import signal
import threading
import time

import botocore.exceptions
import pytest
from conftest import StevedoreServer, make_client, read_credentials, unique

WRITERS = 8
KILL_AFTER_S = 2.0
# At least this many acknowledged writes before the kill, waited for up to KILL_DEADLINE_S.
MIN_WRITES = 20
KILL_DEADLINE_S = 30.0


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "durable"


def test_acknowledged_writes_survive_sigkill(data_dir):
    srv = StevedoreServer(data_dir)
    cfg = srv.start()
    acked_families: list[tuple[str, int]] = []
    acked_clusters: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    run_id = unique("dur")

    def writer(n: int):
        client = make_client(cfg, connect_timeout=2, read_timeout=5)
        i = 0
        while not stop.is_set():
            i += 1
            try:
                if i % 4 == 0:
                    name = f"{run_id}-c{n}-{i}"
                    client.create_cluster(clusterName=name)
                    with lock:
                        acked_clusters.append(name)
                else:
                    family = f"{run_id}-f{n}-{i % 3}"
                    rev = client.register_task_definition(
                        family=family,
                        containerDefinitions=[{"name": "app", "image": "busybox", "memory": 32}],
                    )["taskDefinition"]["revision"]
                    with lock:
                        acked_families.append((family, rev))
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
                # Once the server is killed writes fail; unacknowledged writes don't count.
                if stop.is_set() or srv.proc.poll() is not None:
                    return
                time.sleep(0.01)

    threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(WRITERS)]
    for t in threads:
        t.start()
    # Kill once enough writes were acknowledged to be meaningful (not after a fixed time:
    # on a loaded machine two seconds may hold only a handful), while writers are busy.
    deadline = time.monotonic() + KILL_DEADLINE_S
    time.sleep(KILL_AFTER_S)
    while time.monotonic() < deadline:
        with lock:
            if len(acked_families) + len(acked_clusters) > MIN_WRITES:
                break
        time.sleep(0.05)
    os.kill(srv.pid, signal.SIGKILL)
    srv.proc.wait(timeout=10)
    stop.set()
    for t in threads:
        t.join(timeout=15)
    srv.kill()
    # The last in-flight requests may have been acked just before the kill; all are recorded.
    print(f"acknowledged before SIGKILL: {len(acked_families)} task definitions, "
          f"{len(acked_clusters)} clusters")
    assert len(acked_families) + len(acked_clusters) > MIN_WRITES, "too few writes to be meaningful"

    srv2 = StevedoreServer(data_dir, port=None)
    cfg2 = srv2.start()
    try:
        client = make_client(cfg2)
        missing_tds = []
        for family, rev in acked_families:
            try:
                td = client.describe_task_definition(taskDefinition=f"{family}:{rev}")["taskDefinition"]
                assert td["revision"] == rev
            except client.exceptions.ClientException:
                missing_tds.append(f"{family}:{rev}")
        assert not missing_tds, f"{len(missing_tds)} acknowledged task definitions lost: {missing_tds[:10]}"
        names = list(acked_clusters)
        found = set()
        for i in range(0, len(names), 100):
            resp = client.describe_clusters(clusters=names[i:i + 100])
            found.update(c["clusterName"] for c in resp["clusters"] if c["status"] == "ACTIVE")
        lost = [n for n in names if n not in found]
        assert not lost, f"{len(lost)} acknowledged clusters lost: {lost[:10]}"
        # Revisions continue after the highest acknowledged one (no reuse after restart).
        by_family: dict[str, int] = {}
        for family, rev in acked_families:
            by_family[family] = max(rev, by_family.get(family, 0))
        family, top = next(iter(by_family.items()))
        new_rev = client.register_task_definition(
            family=family, containerDefinitions=[{"name": "app", "image": "busybox", "memory": 32}]
        )["taskDefinition"]["revision"]
        assert new_rev > top
    finally:
        srv2.stop()


def test_restart_keeps_generated_admin_key(data_dir):
    srv = StevedoreServer(data_dir)
    cfg = srv.start()
    assert cfg.credentials_file.exists()
    assert oct(cfg.credentials_file.stat().st_mode & 0o777) == "0o600"
    name = unique("keep")
    make_client(cfg).create_cluster(clusterName=name)
    srv.stop()

    srv2 = StevedoreServer(data_dir)
    cfg2 = srv2.start()
    try:
        assert (cfg2.access_key, cfg2.secret_key) == (cfg.access_key, cfg.secret_key)
        assert read_credentials(cfg2.credentials_file) == (cfg.access_key, cfg.secret_key)
        # The old key still works against the restarted server, and the data is there.
        old_key = make_client(cfg2, access_key=cfg.access_key, secret_key=cfg.secret_key)
        clusters = old_key.describe_clusters(clusters=[name])["clusters"]
        assert clusters[0]["status"] == "ACTIVE"
    finally:
        srv2.stop()


def test_admin_key_from_environment_is_used(data_dir):
    env = {
        "STEVEDORE_ADMIN_ACCESS_KEY_ID": "AKIASTEVEDORETEST001",
        "STEVEDORE_ADMIN_SECRET_ACCESS_KEY": "s3cr3t/Test+Key0000000000000000000000000",
    }
    srv = StevedoreServer(data_dir, extra_env=env)
    cfg = srv.start()
    try:
        assert cfg.access_key == env["STEVEDORE_ADMIN_ACCESS_KEY_ID"]
        assert make_client(cfg).list_clusters()["ResponseMetadata"]["HTTPStatusCode"] == 200
        bad = make_client(cfg, access_key="AKIANOTTHEKEY0000000")
        with pytest.raises(botocore.exceptions.ClientError) as info:
            bad.list_clusters()
        assert info.value.response["Error"]["Code"] == "UnrecognizedClientException"
    finally:
        srv.stop()


def test_acknowledged_log_events_survive_sigkill(data_dir):
    """Log events live in logs.db, not the keyspace: acknowledged batches outlive kill -9,
    and reads after the restart page through them in order."""
    srv = StevedoreServer(data_dir)
    cfg = srv.start()
    group, stream = "/durable/" + unique("g"), "app/0"
    logs = make_client(cfg, "logs")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    base = int(time.time() * 1000)
    sent = []
    for b in range(5):
        batch = [{"timestamp": base + b, "message": f"b{b}-e{i}"} for i in range(200)]
        resp = logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
        assert "rejectedLogEventsInfo" not in resp
        sent.extend(e["message"] for e in batch)
    os.kill(srv.pid, signal.SIGKILL)
    srv.proc.wait(timeout=10)
    srv.kill()
    db = data_dir / "logs.db"
    assert oct(db.stat().st_mode & 0o777) == "0o600"
    assert oct(data_dir.stat().st_mode & 0o777) == "0o700"

    srv2 = StevedoreServer(data_dir, port=None)
    cfg2 = srv2.start()
    try:
        logs = make_client(cfg2, "logs")
        got, token = [], None
        while True:
            kw = {"nextToken": token} if token else {"startFromHead": True}
            page = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=300, **kw)
            if page["nextForwardToken"] == token:
                break
            got.extend(e["message"] for e in page["events"])
            token = page["nextForwardToken"]
        assert got == sent
        desc = logs.describe_log_streams(logGroupName=group)["logStreams"][0]
        assert desc["storedBytes"] == sum(len(m) for m in sent)
        assert desc["lastEventTimestamp"] == base + 4
        filtered = logs.filter_log_events(logGroupName=group, filterPattern="b3")["events"]
        assert [e["message"] for e in filtered] == [m for m in sent if m.startswith("b3")]
    finally:
        srv2.stop()
