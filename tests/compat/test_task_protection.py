"""Task scale-in protection through boto3: UpdateTaskProtection / GetTaskProtection round
trips and AWS's validation, a service on hollow instances (`stevedore sim`) scaled in that
keeps its protected tasks, and protection that expires by itself."""

from __future__ import annotations

import datetime
import time

import botocore.exceptions
import pytest

from conftest import container, register, unique
from sim_fixtures import Sim
from test_services import describe, service_tasks, steady, wait_service


def protection_service(ecs, sim: Sim, desired: int) -> tuple[str, list[dict]]:
    """A service of `desired` tasks on `sim`, steady; its name and tasks."""
    td = register(ecs, containerDefinitions=[container(memory=128)])
    name = unique("protect")
    ecs.create_service(cluster=sim.cluster, serviceName=name, taskDefinition=td["taskDefinitionArn"], desiredCount=desired)
    wait_service(ecs, sim.cluster, name, steady, what="steady state")
    return name, service_tasks(ecs, sim.cluster, name)


def test_update_and_get_task_protection_round_trip(server, ecs):
    with Sim(server, ecs, instances=2) as sim:
        _, tasks = protection_service(ecs, sim, 2)
        arns = [t["taskArn"] for t in tasks]
        before = datetime.datetime.now(datetime.timezone.utc)
        out = ecs.update_task_protection(cluster=sim.cluster, tasks=[arns[0]], protectionEnabled=True, expiresInMinutes=60)
        assert out["failures"] == []
        [p] = out["protectedTasks"]
        assert p["taskArn"] == arns[0] and p["protectionEnabled"] is True
        # botocore parses expirationDate as a timestamp: an hour from now.
        left = (p["expirationDate"] - before).total_seconds()
        assert 3590 <= left <= 3610, left

        # Default: two hours. Task ids work as well as ARNs.
        out = ecs.update_task_protection(cluster=sim.cluster, tasks=[arns[1].rsplit("/", 1)[1]], protectionEnabled=True)
        left = (out["protectedTasks"][0]["expirationDate"] - before).total_seconds()
        assert 7190 <= left <= 7210, left

        got = ecs.get_task_protection(cluster=sim.cluster, tasks=arns)
        assert got["failures"] == []
        assert {t["taskArn"]: t["protectionEnabled"] for t in got["protectedTasks"]} == {arns[0]: True, arns[1]: True}

        out = ecs.update_task_protection(cluster=sim.cluster, tasks=[arns[0]], protectionEnabled=False)
        assert out["protectedTasks"][0]["protectionEnabled"] is False
        assert "expirationDate" not in out["protectedTasks"][0]
        got = ecs.get_task_protection(cluster=sim.cluster, tasks=[arns[0]])["protectedTasks"][0]
        assert got["protectionEnabled"] is False and "expirationDate" not in got


def test_task_protection_validation_and_failures(server, ecs):
    with Sim(server, ecs, instances=1) as sim:
        _, tasks = protection_service(ecs, sim, 1)
        arn = tasks[0]["taskArn"]
        for minutes in (0, 2881):
            with pytest.raises(botocore.exceptions.ClientError) as e:
                ecs.update_task_protection(cluster=sim.cluster, tasks=[arn], protectionEnabled=True, expiresInMinutes=minutes)
            assert e.value.response["Error"]["Code"] == "InvalidParameterException"
            assert "2880" in e.value.response["Error"]["Message"]
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ecs.update_task_protection(cluster=sim.cluster, tasks=[arn] * 11, protectionEnabled=True)
        assert e.value.response["Error"]["Code"] == "InvalidParameterException"
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ecs.update_task_protection(cluster=unique("nocluster"), tasks=[arn], protectionEnabled=True)
        assert e.value.response["Error"]["Code"] == "ClusterNotFoundException"

        # A standalone task cannot be protected; an unknown one is missing.
        td = register(ecs, containerDefinitions=[container(memory=64)])
        standalone = ecs.run_task(cluster=sim.cluster, taskDefinition=td["taskDefinitionArn"])["tasks"][0]["taskArn"]
        out = ecs.update_task_protection(cluster=sim.cluster, tasks=[standalone, "0123456789abcdef0123456789abcdef"], protectionEnabled=True)
        assert out["protectedTasks"] == []
        reasons = {f["arn"].rsplit("/", 1)[1]: f["reason"] for f in out["failures"]}
        assert reasons == {standalone.rsplit("/", 1)[1]: "TASK_NOT_VALID", "0123456789abcdef0123456789abcdef": "MISSING"}
        got = ecs.get_task_protection(cluster=sim.cluster, tasks=[standalone])
        assert [f["reason"] for f in got["failures"]] == ["TASK_NOT_VALID"]

        # A service never holds more protected tasks than its desired count.
        assert ecs.update_task_protection(cluster=sim.cluster, tasks=[arn], protectionEnabled=True)["failures"] == []
        ecs.update_service(cluster=sim.cluster, service=tasks[0]["group"].split(":", 1)[1], desiredCount=0)
        out = ecs.update_task_protection(cluster=sim.cluster, tasks=[arn], protectionEnabled=True)
        assert [f["reason"] for f in out["failures"]] == ["DEPLOYMENT_BLOCKED"]


def test_scale_in_keeps_protected_tasks_until_protection_expires(server, ecs):
    with Sim(server, ecs, instances=3) as sim:
        name, tasks = protection_service(ecs, sim, 3)
        arns = [t["taskArn"] for t in tasks]
        long_kept, short_kept, free = arns
        assert ecs.update_task_protection(cluster=sim.cluster, tasks=[long_kept], protectionEnabled=True, expiresInMinutes=120)["failures"] == []
        assert ecs.update_task_protection(cluster=sim.cluster, tasks=[short_kept], protectionEnabled=True, expiresInMinutes=1)["failures"] == []
        protected_at = time.monotonic()

        ecs.update_service(cluster=sim.cluster, service=name, desiredCount=1)
        # The unprotected task goes; both protected ones stay, so the service stays above
        # its desired count and says why.
        s = wait_service(
            ecs, sim.cluster, name,
            lambda s: {t["taskArn"] for t in service_tasks(ecs, sim.cluster, name)} == {long_kept, short_kept},
            what="scale-in of the unprotected task",
        )
        s = wait_service(ecs, sim.cluster, name, lambda s: any("under protection" in e["message"] for e in s["events"]), what="protection event")
        assert s["desiredCount"] == 1 and s["runningCount"] == 2
        event = next(e["message"] for e in s["events"] if "under protection" in e["message"])
        assert short_kept.rsplit("/", 1)[1] in event and long_kept.rsplit("/", 1)[1] in event
        stopped = ecs.describe_tasks(cluster=sim.cluster, tasks=[free])["tasks"][0]
        assert stopped["desiredStatus"] == "STOPPED"
        # Still protected a few seconds later: nothing else was stopped.
        time.sleep(3)
        assert {t["taskArn"] for t in service_tasks(ecs, sim.cluster, name)} == {long_kept, short_kept}

        # The one-minute protection lapses by itself: that task is no longer protected and
        # the scale-in finishes with the long-protected task kept.
        s = wait_service(
            ecs, sim.cluster, name,
            lambda s: steady(s) and {t["taskArn"] for t in service_tasks(ecs, sim.cluster, name)} == {long_kept},
            timeout=120, what="scale-in after the protection expired",
        )
        assert time.monotonic() - protected_at >= 55
        got = ecs.get_task_protection(cluster=sim.cluster, tasks=[short_kept, long_kept])["protectedTasks"]
        state = {t["taskArn"]: t["protectionEnabled"] for t in got}
        assert state == {short_kept: False, long_kept: True}
        assert describe(ecs, sim.cluster, name)["runningCount"] == 1


def test_protected_tasks_of_an_old_deployment_hold_it_until_released(server, ecs):
    with Sim(server, ecs, instances=3) as sim:
        name, tasks = protection_service(ecs, sim, 2)
        kept = tasks[0]["taskArn"]
        assert ecs.update_task_protection(cluster=sim.cluster, tasks=[kept], protectionEnabled=True)["failures"] == []
        td2 = register(ecs, containerDefinitions=[container(memory=96)])
        ecs.update_service(cluster=sim.cluster, service=name, taskDefinition=td2["taskDefinitionArn"])
        # New tasks start and the unprotected old one goes; the protected one keeps the
        # old deployment alive.
        s = wait_service(
            ecs, sim.cluster, name,
            lambda s: len(s["deployments"]) == 2 and s["deployments"][0]["runningCount"] == 2 and s["deployments"][1]["runningCount"] == 1,
            what="rollout held by the protected task",
        )
        time.sleep(3)
        s = describe(ecs, sim.cluster, name)
        assert len(s["deployments"]) == 2 and s["deployments"][1]["runningCount"] == 1
        assert kept in {t["taskArn"] for t in service_tasks(ecs, sim.cluster, name)}
        # Released, the old task goes and the deployment completes.
        ecs.update_task_protection(cluster=sim.cluster, tasks=[kept], protectionEnabled=False)
        wait_service(ecs, sim.cluster, name, steady, what="steady after release")
        assert kept not in {t["taskArn"] for t in service_tasks(ecs, sim.cluster, name)}
