"""Stopped tasks leave after the server's retention (AWS: visible for at least an hour).
Until then DescribeTasks and ListTasks show them; after, DescribeTasks answers exactly as
for an unknown task (failures[].reason MISSING) and ListTasks no longer lists them."""

from __future__ import annotations

import time

import pytest

from conftest import StevedoreServer, make_client, register, unique
from sim_fixtures import Sim, wait_tasks

RETENTION_S = 12


@pytest.fixture(scope="module")
def short_retention(tmp_path_factory):
    data = tmp_path_factory.mktemp("retention") / "data"
    srv = StevedoreServer(data, extra_env={"STEVEDORE_STOPPED_TASK_RETENTION": f"{RETENTION_S}s"})
    cfg = srv.start()
    yield cfg
    srv.stop()


def test_a_stopped_task_is_visible_until_the_retention_then_missing(short_retention):
    cfg = short_retention
    ecs = make_client(cfg, "ecs")
    with Sim(cfg, ecs, instances=1, cluster=unique("ret")) as sim:
        family = register(ecs)["family"]
        arn = ecs.run_task(cluster=sim.cluster, taskDefinition=family)["tasks"][0]["taskArn"]
        keep = ecs.run_task(cluster=sim.cluster, taskDefinition=family)["tasks"][0]["taskArn"]
        wait_tasks(ecs, sim.cluster, [arn, keep], "RUNNING")
        ecs.stop_task(cluster=sim.cluster, task=arn)
        [stopped] = wait_tasks(ecs, sim.cluster, [arn], "STOPPED")
        stopped_at = stopped["stoppedAt"].timestamp()

        # Well inside the retention: described and listed.
        time.sleep(max(0.0, stopped_at + RETENTION_S / 2 - time.time()))
        d = ecs.describe_tasks(cluster=sim.cluster, tasks=[arn])
        assert [t["lastStatus"] for t in d["tasks"]] == ["STOPPED"]
        assert arn in ecs.list_tasks(cluster=sim.cluster, desiredStatus="STOPPED")["taskArns"]

        # After it (plus a sweep period, a quarter of the retention): gone.
        deadline = stopped_at + RETENTION_S * 1.25 + 10
        while time.time() < deadline:
            d = ecs.describe_tasks(cluster=sim.cluster, tasks=[arn])
            if d["failures"]:
                break
            time.sleep(0.5)
        assert time.time() >= stopped_at + RETENTION_S, "swept before its retention"
        assert d["tasks"] == []
        assert d["failures"] == [{"arn": arn, "reason": "MISSING"}]
        assert arn not in ecs.list_tasks(cluster=sim.cluster, desiredStatus="STOPPED")["taskArns"]
        # The running task is untouched.
        d = ecs.describe_tasks(cluster=sim.cluster, tasks=[keep])
        assert [t["lastStatus"] for t in d["tasks"]] == ["RUNNING"]
