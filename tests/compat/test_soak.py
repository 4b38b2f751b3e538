"""The CI-sized soak (issue 15): three minutes of the bench's load -- 100 tasks started and
stopped per minute on hollow instances, 1,000 log lines/s -- against a server whose
stopped-task retention is 30 s. The STOPPED tasks it still lists must level off (they
expire as fast as they are made) and its RSS must not keep growing. bench/soak.sh runs the
same load for an hour on a release build."""

from __future__ import annotations

import json

import pytest

from conftest import StevedoreServer, make_client, unique
from sim_fixtures import Sim
from soak_load import Soak

DURATION_S = 180
SAMPLE_EVERY_S = 10
RETENTION_S = 30
TASKS_PER_MIN = 100
# Stopped tasks still listed: those stopped within the retention, plus one sweep period
# (a quarter of the retention) and one RunTask batch of slack.
STOPPED_BOUND = int(TASKS_PER_MIN * (RETENTION_S * 1.25) / 60) + 10 + 10
# The server's RSS in the last minute may exceed the middle minute's by at most this much
# (allocator noise on a short run; a leak of one task record per task grows far faster).
RSS_GROWTH_BOUND = 0.25


@pytest.fixture(scope="module")
def soak_server(tmp_path_factory):
    data = tmp_path_factory.mktemp("soak") / "data"
    srv = StevedoreServer(data, extra_env={"STEVEDORE_STOPPED_TASK_RETENTION": f"{RETENTION_S}s", "STEVEDORE_LOG": "warn"})
    cfg = srv.start()
    yield srv, cfg
    srv.stop()


def test_stopped_tasks_and_rss_level_off_under_three_minutes_of_soak(soak_server):
    srv, cfg = soak_server
    ecs = make_client(cfg, "ecs")
    with Sim(cfg, ecs, instances=2, cluster=unique("soak")) as sim:
        soak = Soak(sim.cluster, srv.pid, cfg.data_dir, tasks_per_min=TASKS_PER_MIN, log_lines_per_s=1000,
                    sample_every=SAMPLE_EVERY_S, clients=lambda service: make_client(cfg, service))
        summary = soak.run(DURATION_S, on_sample=lambda s: print(json.dumps(s), flush=True))
    print(json.dumps(summary))
    assert summary["started"] >= TASKS_PER_MIN * 2, summary
    assert summary["stopped"] >= TASKS_PER_MIN * 2, summary
    assert not [k for k in summary["errors"] if not k.startswith("put_log_events")], summary["errors"]
    # Tasks expire as fast as they stop: the listed count is bounded and flat.
    assert summary["stopped_listed"]["max"] <= STOPPED_BOUND, summary
    assert summary["stopped_listed"]["levels_off"], summary
    # More tasks stopped than are still listed: the expired ones really left.
    assert soak.samples[-1]["stopped_listed"] < summary["stopped"] / 2, summary
    rss = summary["rss_mib"]
    assert rss["last_third_mean"] <= rss["middle_third_mean"] * (1 + RSS_GROWTH_BOUND), summary
