"""Task sets of a service with the EXTERNAL deployment controller, as an external deployer
drives them: blue at 100 % behind an application load balancer, green created and scaled
up, the primary switched, blue scaled to 0 and deleted — with real busybox tasks and a
request loop through the listener that must see no failed request. Then the errors AWS
answers (scale out of range, unknown task sets, task sets on an ECS-controlled service,
UpdateService members that belong to task sets), the aws CLI's view, and CODE_DEPLOY's
initial PRIMARY task set."""
from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError

from agent_fixtures import agent_env, wait_for
from conftest import make_client, unique
from test_lb_services import IMAGE, alb, build_lb_image, get, health, request_loop

env = agent_env("tasksets", "tasksets", image=build_lb_image,
                extra=lambda cfg: {"ecs": make_client(cfg), "elbv2": make_client(cfg, "elbv2")})


def register(ecs, family: str, version: str) -> str:
    # Each task answers with its version and hostname, so responses show which set served.
    return ecs.register_task_definition(family=family, containerDefinitions=[{
        "name": "web", "image": IMAGE, "memory": 32, "essential": True, "stopTimeout": 2,
        "command": ["/bin/busybox", "sh", "-c",
                    f"/bin/busybox mkdir -p /www && echo {version} > /www/index.html "
                    "&& exec /bin/busybox httpd -f -p 80 -h /www"],
        "portMappings": [{"containerPort": 80, "hostPort": 0}],
    }])["taskDefinition"]["taskDefinitionArn"]


def external_service(env, name: str, desired: int) -> dict:
    return env["ecs"].create_service(cluster=env["cluster"], serviceName=name, desiredCount=desired,
                                     deploymentController={"type": "EXTERNAL"})["service"]


def task_sets(env, name: str) -> dict[str, dict]:
    out = env["ecs"].describe_task_sets(cluster=env["cluster"], service=name)["taskSets"]
    return {t["id"]: t for t in out}


def steady_set(env, name: str, ts_id: str, count: int) -> bool:
    ts = task_sets(env, name).get(ts_id)
    return (ts is not None and ts["computedDesiredCount"] == count and ts["runningCount"] == count
            and ts["pendingCount"] == 0 and ts["stabilityStatus"] == "STEADY_STATE")


def error_of(fn, **kw) -> tuple[str, str]:
    with pytest.raises(ClientError) as e:
        fn(**kw)
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


def test_blue_green_switch_through_task_sets_behind_an_alb_fails_no_request(env):
    ecs = env["ecs"]
    cluster = env["cluster"]
    tg, url = alb(env, "ts", 2)
    lbs = [{"targetGroupArn": tg, "containerName": "web", "containerPort": 80}]
    fam = unique("bg")
    blue_td, green_td = register(ecs, fam, "blue"), register(ecs, fam, "green")
    name = unique("bg")
    svc = external_service(env, name, 2)
    assert svc["deploymentController"] == {"type": "EXTERNAL"}
    assert svc.get("taskSets", []) == [] and svc.get("deployments", []) == []

    blue = ecs.create_task_set(cluster=cluster, service=name, taskDefinition=blue_td, loadBalancers=lbs,
                               scale={"value": 100, "unit": "PERCENT"}, externalId="blue")["taskSet"]
    assert blue["id"].startswith("ecs-svc/") and blue["status"] == "ACTIVE"
    assert blue["taskSetArn"].endswith(f":task-set/{cluster}/{name}/{blue['id']}")
    assert blue["computedDesiredCount"] == 2 and blue["scale"] == {"value": 100.0, "unit": "PERCENT"}
    assert blue["stabilityStatus"] == "STABILIZING" and blue["externalId"] == "blue"
    ecs.update_service_primary_task_set(cluster=cluster, service=name, primaryTaskSet=blue["taskSetArn"])
    wait_for(lambda: steady_set(env, name, blue["id"], 2) and len(health(env, tg)) == 2
             and {s for _, _, s in health(env, tg)} == {"healthy"}, 120, "blue steady with 2 healthy targets",
             lambda: json.dumps(task_sets(env, name), default=str) + str(health(env, tg)))
    assert {get(url)[1] for _ in range(20)} == {"blue"}
    s = ecs.describe_services(cluster=cluster, services=[name])["services"][0]
    assert s["runningCount"] == 2 and s["taskDefinition"] == blue_td
    assert [t["status"] for t in s["taskSets"]] == ["PRIMARY"]
    tasks = ecs.describe_tasks(cluster=cluster, tasks=ecs.list_tasks(cluster=cluster, serviceName=name)["taskArns"])
    assert {t["startedBy"] for t in tasks["tasks"]} == {blue["id"]}
    assert {t["group"] for t in tasks["tasks"]} == {f"service:{name}"}

    with request_loop(url, 0.01) as results:
        # Green joins the same target group at 50 % of the desired count (1 task).
        green = ecs.create_task_set(cluster=cluster, service=name, taskDefinition=green_td, loadBalancers=lbs,
                                    scale={"value": 50, "unit": "PERCENT"})["taskSet"]
        assert green["computedDesiredCount"] == 1
        wait_for(lambda: steady_set(env, name, green["id"], 1), 120, "green steady",
                 lambda: json.dumps(task_sets(env, name), default=str))
        wait_for(lambda: len(health(env, tg)) == 3 and {s for _, _, s in health(env, tg)} == {"healthy"},
                 60, "green's target healthy", lambda: str(health(env, tg)))
        ecs.update_task_set(cluster=cluster, service=name, taskSet=green["id"], scale={"value": 100, "unit": "PERCENT"})
        wait_for(lambda: steady_set(env, name, green["id"], 2), 120, "green at 100 %")
        switched = ecs.update_service_primary_task_set(cluster=cluster, service=name,
                                                       primaryTaskSet=green["id"])["taskSet"]
        assert switched["status"] == "PRIMARY" and switched["id"] == green["id"]
        sets = task_sets(env, name)
        assert sets[blue["id"]]["status"] == "ACTIVE" and sets[green["id"]]["status"] == "PRIMARY"
        # Blue leaves: scaled to 0, its targets drain, then it is deleted.
        ecs.update_task_set(cluster=cluster, service=name, taskSet=blue["taskSetArn"], scale={"value": 0, "unit": "PERCENT"})
        wait_for(lambda: steady_set(env, name, blue["id"], 0), 120, "blue at 0",
                 lambda: json.dumps(task_sets(env, name), default=str) + str(health(env, tg)))
        deleted = ecs.delete_task_set(cluster=cluster, service=name, taskSet=blue["id"])["taskSet"]
        assert deleted["status"] == "DRAINING"
        wait_for(lambda: blue["id"] not in task_sets(env, name), 60, "blue gone")
        time.sleep(1)
    failed = [r for r in results if r[0] != 200]
    assert len(results) > 100 and not failed, (len(results), failed[:5])
    assert {get(url)[1] for _ in range(20)} == {"green"}
    s = ecs.describe_services(cluster=cluster, services=[name])["services"][0]
    assert [t["id"] for t in s["taskSets"]] == [green["id"]]
    assert s["taskDefinition"] == green_td and s["runningCount"] == 2
    messages = [e["message"] for e in s["events"]]
    assert any("has started 1 tasks" in m for m in messages), messages[:10]

    # Scaling the service rescales the task set (rounded up).
    ecs.update_service(cluster=cluster, service=name, desiredCount=3)
    assert task_sets(env, name)[green["id"]]["computedDesiredCount"] == 3
    wait_for(lambda: steady_set(env, name, green["id"], 3), 120, "green at 3")

    # Deleting the service stops everything and the service ends INACTIVE.
    ecs.update_service(cluster=cluster, service=name, desiredCount=0)
    ecs.delete_service(cluster=cluster, service=name)
    wait_for(lambda: ecs.describe_services(cluster=cluster, services=[name])["services"][0]["status"] == "INACTIVE",
             120, "the service inactive")


def test_task_set_errors_as_aws_answers_them(env):
    ecs = env["ecs"]
    cluster = env["cluster"]
    fam = unique("err")
    td = register(ecs, fam, "x")
    name = unique("ext")
    external_service(env, name, 1)
    code, msg = error_of(ecs.create_task_set, cluster=cluster, service=name, taskDefinition=td,
                         scale={"value": 101, "unit": "PERCENT"})
    assert code == "InvalidParameterException" and "between 0 and 100" in msg
    code, _ = error_of(ecs.create_task_set, cluster=cluster, service=name, taskDefinition=td,
                       scale={"value": -1, "unit": "PERCENT"})
    assert code == "InvalidParameterException"
    ts = ecs.create_task_set(cluster=cluster, service=name, taskDefinition=td, clientToken="tok-1")["taskSet"]
    # No scale: 0 %, nothing runs.
    assert ts["scale"] == {"value": 0.0, "unit": "PERCENT"} and ts["computedDesiredCount"] == 0
    again = ecs.create_task_set(cluster=cluster, service=name, taskDefinition=td, clientToken="tok-1")["taskSet"]
    assert again["id"] == ts["id"], "a retried clientToken answers with the same task set"
    code, msg = error_of(ecs.update_task_set, cluster=cluster, service=name, taskSet=ts["id"],
                         scale={"value": 150, "unit": "PERCENT"})
    assert code == "InvalidParameterException"
    for fn, kw in [(ecs.update_task_set, {"taskSet": "ecs-svc/0000000000000000000", "scale": {"value": 1}}),
                   (ecs.delete_task_set, {"taskSet": "ecs-svc/0000000000000000000"}),
                   (ecs.update_service_primary_task_set, {"primaryTaskSet": "ecs-svc/0000000000000000000"})]:
        code, msg = error_of(fn, cluster=cluster, service=name, **kw)
        assert code == "TaskSetNotFoundException", (fn, code, msg)
    d = ecs.describe_task_sets(cluster=cluster, service=name, taskSets=[ts["id"], "ecs-svc/0000000000000000000"])
    assert [t["id"] for t in d["taskSets"]] == [ts["id"]]
    assert d["failures"] == [{"arn": "ecs-svc/0000000000000000000", "reason": "MISSING"}]
    assert "tags" not in d["taskSets"][0]
    # A task set above 0 % is deleted only with force.
    ecs.update_task_set(cluster=cluster, service=name, taskSet=ts["id"], scale={"value": 100, "unit": "PERCENT"})
    code, msg = error_of(ecs.delete_task_set, cluster=cluster, service=name, taskSet=ts["id"])
    assert code == "InvalidParameterException" and "force" in msg
    assert ecs.delete_task_set(cluster=cluster, service=name, taskSet=ts["id"], force=True)["taskSet"]["status"] == "DRAINING"
    # What belongs to task sets is refused on the service.
    code, msg = error_of(ecs.update_service, cluster=cluster, service=name, taskDefinition=td)
    assert code == "InvalidParameterException" and "EXTERNAL" in msg
    code, msg = error_of(ecs.create_service, cluster=cluster, serviceName=unique("ext"), desiredCount=1,
                         taskDefinition=td, deploymentController={"type": "EXTERNAL"})
    assert code == "InvalidParameterException" and "taskDefinition" in msg
    code, _ = error_of(ecs.describe_task_sets, cluster=cluster, service="no-such-service")
    assert code == "ServiceNotFoundException"
    # An ECS-controlled service has no task sets to manage.
    plain = unique("plain")
    ecs.create_service(cluster=cluster, serviceName=plain, taskDefinition=td, desiredCount=0)
    code, msg = error_of(ecs.create_task_set, cluster=cluster, service=plain, taskDefinition=td)
    assert code == "InvalidParameterException"
    assert msg == "Amazon ECS only supports task set management on services configured to use external deployment controllers."
    # At most 5 task sets.
    many = unique("many")
    external_service(env, many, 0)
    for _ in range(5):
        ecs.create_task_set(cluster=cluster, service=many, taskDefinition=td)
    code, msg = error_of(ecs.create_task_set, cluster=cluster, service=many, taskDefinition=td)
    assert code == "InvalidParameterException" and "exceeds the maximum limit" in msg


def test_code_deploy_service_starts_with_a_primary_task_set_and_refuses_task_set_writes(env):
    ecs = env["ecs"]
    cluster = env["cluster"]
    td = register(ecs, unique("cd"), "cd")
    name = unique("cd")
    svc = ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=td, desiredCount=1,
                             deploymentController={"type": "CODE_DEPLOY"})["service"]
    assert [t["status"] for t in svc["taskSets"]] == ["PRIMARY"]
    ts = svc["taskSets"][0]
    assert ts["scale"] == {"value": 100.0, "unit": "PERCENT"} and ts["computedDesiredCount"] == 1
    wait_for(lambda: steady_set(env, name, ts["id"], 1), 120, "the CODE_DEPLOY task set running")
    code, msg = error_of(ecs.create_task_set, cluster=cluster, service=name, taskDefinition=td)
    assert code == "InvalidParameterException" and "external deployment controllers" in msg
    code, msg = error_of(ecs.update_service, cluster=cluster, service=name, taskDefinition=td)
    assert code == "InvalidParameterException" and "CODE_DEPLOY" in msg
    ecs.update_service(cluster=cluster, service=name, desiredCount=0)
    wait_for(lambda: steady_set(env, name, ts["id"], 0), 120, "the CODE_DEPLOY task set at 0")


def test_the_aws_cli_drives_task_sets(env):
    aws, cluster = env["aws"], env["cluster"]
    td = register(env["ecs"], unique("cli"), "cli")
    name = unique("cli")
    external_service(env, name, 0)
    created = aws.run("ecs", "create-task-set", "--cluster", cluster, "--service", name,
                       "--task-definition", td, "--scale", "value=50,unit=PERCENT")["taskSet"]
    assert created["scale"] == {"value": 50.0, "unit": "PERCENT"}
    listed = aws.run("ecs", "describe-task-sets", "--cluster", cluster, "--service", name)["taskSets"]
    assert [t["id"] for t in listed] == [created["id"]]
    primary = aws.run("ecs", "update-service-primary-task-set", "--cluster", cluster, "--service", name,
                       "--primary-task-set", created["id"])["taskSet"]
    assert primary["status"] == "PRIMARY"
    scaled = aws.run("ecs", "update-task-set", "--cluster", cluster, "--service", name,
                      "--task-set", created["id"], "--scale", "value=0,unit=PERCENT")["taskSet"]
    assert scaled["scale"]["value"] == 0.0
    gone = aws.run("ecs", "delete-task-set", "--cluster", cluster, "--service", name,
                    "--task-set", created["id"])["taskSet"]
    assert gone["status"] == "DRAINING"
