"""A service behind an application load balancer, with real containers: 3 tasks on
dynamic host ports register as targets, the listener answers from all 3, a rolling update
under a request loop fails no request, a killed task leaves the rotation, and a revision
whose tasks fail the balancer's checks is replaced task by task until the circuit breaker
rolls it back, while the old tasks keep serving. The server's own data plane serves the
listener; `stevedore agent` runs the containers."""
from __future__ import annotations

import collections
import contextlib
import json
import subprocess
import threading
import time
import urllib.error
import urllib.request

from agent_fixtures import agent_env, build_image, wait_for
from conftest import default_subnet_id, free_port, make_client, unique

IMAGE = "stevedore-lb-test:busybox"
INTERVAL, HEALTHY, UNHEALTHY = 5, 2, 2


def build_lb_image(tmp) -> None:
    # Each task answers with its own hostname (the container id), so responses show which
    # task served them.
    build_image(tmp, IMAGE, "lbimage",
                'CMD ["/bin/busybox","sh","-c","/bin/busybox mkdir -p /www && /bin/busybox hostname > /www/index.html '
                '&& exec /bin/busybox httpd -f -p 80 -h /www"]\n')


env = agent_env("lbsvc", "lbsvc", image=build_lb_image,
                extra=lambda cfg: {"ecs": make_client(cfg), "elbv2": make_client(cfg, "elbv2")})


def get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode().strip()
    except urllib.error.HTTPError as e:
        return e.code, ""
    except (urllib.error.URLError, OSError) as e:
        return 0, str(e)


@contextlib.contextmanager
def request_loop(url: str, pause: float):
    """GETs `url` over and over on a thread while the block runs; yields the (status,
    body) list it fills."""
    results: list[tuple[int, str]] = []
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            results.append(get(url, timeout=5))
            time.sleep(pause)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield results
    finally:
        stop.set()
        t.join(timeout=10)


def register(ecs, family: str, version: str) -> str:
    return ecs.register_task_definition(family=family, containerDefinitions=[{
        "name": "web", "image": IMAGE, "memory": 32, "essential": True, "stopTimeout": 2,
        "environment": [{"name": "V", "value": version}],
        "portMappings": [{"containerPort": 80, "hostPort": 0}],
    }])["taskDefinition"]["taskDefinitionArn"]


def steady(s: dict) -> bool:
    d = s["deployments"]
    return len(d) == 1 and d[0].get("rolloutState") == "COMPLETED" and s["runningCount"] == s["desiredCount"]


def describe(env, name):
    return env["ecs"].describe_services(cluster=env["cluster"], services=[name])["services"][0]


def health(env, tg: str) -> list[tuple[str, int, str]]:
    out = env["elbv2"].describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
    return sorted((h["Target"]["Id"], h["Target"]["Port"], h["TargetHealth"]["State"]) for h in out)


def service_tasks(env, name) -> list[dict]:
    arns = env["ecs"].list_tasks(cluster=env["cluster"], serviceName=name)["taskArns"]
    return env["ecs"].describe_tasks(cluster=env["cluster"], tasks=arns)["tasks"] if arns else []


def alb(env, prefix: str, drain_seconds: int) -> tuple[str, str]:
    """An application load balancer whose HTTP listener forwards to a new instance target
    group (checks on `/` every INTERVAL s); the group's ARN and the listener's URL."""
    elbv2 = env["elbv2"]
    tg = elbv2.create_target_group(
        Name=unique(f"{prefix}tg"), Protocol="HTTP", Port=80, VpcId="vpc-local", TargetType="instance",
        HealthCheckPath="/", HealthCheckIntervalSeconds=INTERVAL, HealthCheckTimeoutSeconds=2,
        HealthyThresholdCount=HEALTHY, UnhealthyThresholdCount=UNHEALTHY,
    )["TargetGroups"][0]["TargetGroupArn"]
    elbv2.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": str(drain_seconds)}])
    lb = elbv2.create_load_balancer(Name=unique(f"{prefix}alb"), Type="application",
                                    Subnets=["subnet-a", "subnet-b"])["LoadBalancers"][0]
    port = free_port()
    elbv2.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    return tg, f"http://{lb['DNSName']}:{port}/"


def test_a_service_behind_an_application_load_balancer(env):
    ecs = env["ecs"]
    tg, url = alb(env, "", 3)
    fam = unique("web")
    td1 = register(ecs, fam, "1")
    name = unique("web")
    ecs.create_service(cluster=env["cluster"], serviceName=name, taskDefinition=td1, desiredCount=3,
                       loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 80}],
                       healthCheckGracePeriodSeconds=30)
    wait_for(lambda: steady(describe(env, name)), 120, "steady with 3 healthy targets",
             lambda: json.dumps(describe(env, name)["events"][:5]) + str(health(env, tg)))
    tasks = service_tasks(env, name)
    ports = sorted(t["containers"][0]["networkBindings"][0]["hostPort"] for t in tasks)
    targets = health(env, tg)
    assert [p for _, p, _ in targets] == ports, "each task's dynamic host port is a target"
    assert {s for _, _, s in targets} == {"healthy"}
    assert all(i.startswith("i-") for i, _, _ in targets)
    # Instance targets are reached at the address the agent registered (found from its
    # route to the server: loopback here).
    cis = ecs.describe_container_instances(cluster=env["cluster"], containerInstances=ecs.list_container_instances(
        cluster=env["cluster"])["containerInstanceArns"])["containerInstances"]
    assert [{a["name"]: a.get("value") for a in ci["attributes"]}.get("stevedore.host-address") for ci in cis] \
        == ["127.0.0.1"] * len(cis)
    events = [e["message"] for e in describe(env, name)["events"]]
    assert any(f"registered 3 targets in (target-group {tg})" in m or "registered 1 targets" in m for m in events), events
    # All three answer through the listener.
    seen = collections.Counter(get(url)[1] for _ in range(30))
    assert len(seen) == 3 and all(v >= 5 for v in seen.values()), seen

    # A rolling update under a steady request loop fails no request.
    with request_loop(url, 0.01) as results:
        td2 = register(ecs, fam, "2")
        ecs.update_service(cluster=env["cluster"], service=name, taskDefinition=td2)
        wait_for(lambda: (lambda s: steady(s) and s["taskDefinition"] == td2)(describe(env, name)), 180,
                 "the rolling update", lambda: json.dumps(describe(env, name)["events"][:6]) + str(health(env, tg)))
        time.sleep(1)
    failed = [r for r in results if r[0] != 200]
    assert len(results) > 100 and not failed, (len(results), failed[:5])
    new_hosts = {t["containers"][0]["runtimeId"][:12] for t in service_tasks(env, name)}
    assert {get(url)[1] for _ in range(30)} == new_hosts, "only the new tasks answer now"
    assert {s for _, _, s in health(env, tg)} == {"healthy"} and len(health(env, tg)) == 3

    # A killed task leaves the rotation within interval x unhealthy threshold.
    victim = service_tasks(env, name)[0]
    subprocess.run(["docker", "kill", victim["containers"][0]["runtimeId"]], check=True, capture_output=True, timeout=30)
    killed_at = time.monotonic()

    def clean_streak():
        return all(get(url)[0] == 200 for _ in range(20))

    wait_for(clean_streak, INTERVAL * UNHEALTHY + 10, "the killed task to leave the rotation")
    assert time.monotonic() - killed_at <= INTERVAL * UNHEALTHY + 10
    victim_port = victim["containers"][0]["networkBindings"][0]["hostPort"]
    assert all(s != "healthy" for _, p, s in health(env, tg) if p == victim_port)
    # And the service replaces it, healthy behind the balancer again.
    wait_for(lambda: steady(describe(env, name)) and [s for _, _, s in health(env, tg)] == ["healthy"] * 3, 120,
             "the replacement healthy", lambda: str(health(env, tg)))


def test_tasks_failing_the_balancers_checks_are_replaced_until_the_breaker_rolls_back(env):
    ecs = env["ecs"]
    tg, url = alb(env, "sick", 2)
    fam = unique("sick")
    td1 = register(ecs, fam, "1")
    name = unique("sick")
    ecs.create_service(cluster=env["cluster"], serviceName=name, taskDefinition=td1, desiredCount=2,
                       loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 80}],
                       deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True},
                                                "maximumPercent": 200, "minimumHealthyPercent": 100})
    wait_for(lambda: steady(describe(env, name)), 120, "steady with 2 healthy targets",
             lambda: json.dumps(describe(env, name)["events"][:5]) + str(health(env, tg)))
    old_hosts = {t["containers"][0]["runtimeId"][:12] for t in service_tasks(env, name)}
    # Revision 2 runs, but serves from a directory without an index: 404 at the check path.
    td2 = ecs.register_task_definition(family=fam, containerDefinitions=[{
        "name": "web", "image": IMAGE, "memory": 32, "essential": True, "stopTimeout": 2,
        "command": ["/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/bin"],
        "portMappings": [{"containerPort": 80, "hostPort": 0}],
    }])["taskDefinition"]["taskDefinitionArn"]
    with request_loop(url, 0.02) as results:
        broken = ecs.update_service(cluster=env["cluster"], service=name, taskDefinition=td2)["service"]["deployments"][0]["id"]

        deactivating: list[dict] = []

        def rolled_back():
            # While its targets drain, a task chosen to stop shows as ECS shows it.
            arns = ecs.list_tasks(cluster=env["cluster"], serviceName=name, desiredStatus="STOPPED")["taskArns"]
            if arns:
                deactivating.extend(t for t in ecs.describe_tasks(cluster=env["cluster"], tasks=arns)["tasks"]
                                    if t["lastStatus"] == "DEACTIVATING")
            s = describe(env, name)
            return steady(s) and s["taskDefinition"] == td1 and s["deployments"][0]["id"] != broken

        wait_for(rolled_back, 240, "the breaker to roll revision 2 back",
                 lambda: json.dumps(describe(env, name)["events"][:8]) + str(health(env, tg)))
    # Revision 1 served throughout: no old task was retired for a revision that never
    # passed its checks (the rollback is a new deployment of revision 1, whose tasks then
    # take over as any rolling update's would).
    failed = [r for r in results if r[0] != 200]
    assert len(results) > 100 and not failed, (len(results), failed[:5])
    new_hosts = {t["containers"][0]["runtimeId"][:12] for t in service_tasks(env, name)}
    assert old_hosts <= {r[1] for r in results} <= old_hosts | new_hosts
    assert deactivating, "a draining task shows lastStatus DEACTIVATING"
    assert all(t["desiredStatus"] == "STOPPED" and t["stopCode"] == "ServiceSchedulerInitiated"
               and t["containers"][0]["lastStatus"] == "RUNNING" for t in deactivating), deactivating[0]
    # Each revision-2 task was drained, stopped for the balancer's verdict, and counted.
    arns = ecs.list_tasks(cluster=env["cluster"], serviceName=name, desiredStatus="STOPPED")["taskArns"]
    stopped = [t for t in ecs.describe_tasks(cluster=env["cluster"], tasks=arns)["tasks"] if t["taskDefinitionArn"] == td2]
    sick = [t for t in stopped if t["stoppedReason"] == f"Task failed ELB health checks in (target-group {tg})"]
    assert len(sick) >= 3, [t.get("stoppedReason") for t in stopped]
    # Those still starting when the breaker tripped were retired with their deployment.
    assert {t["stoppedReason"] for t in stopped if t not in sick} <= {"Scaling activity initiated by (deployment)"}
    assert all(t["stopCode"] == "ServiceSchedulerInitiated" for t in stopped)
    events = [e["message"] for e in describe(env, name)["events"]]
    assert any(f"failed ELB health checks in (target-group {tg})." in m for m in events), events[:10]
    assert any("has begun draining connections" in m for m in events), events[:10]
    assert any("rolling back to deployment" in m for m in events), events[:10]
    # And the balancer knows only the old tasks, healthy.
    ports = sorted(t["containers"][0]["networkBindings"][0]["hostPort"] for t in service_tasks(env, name))
    assert [(p, s) for _, p, s in health(env, tg)] == [(p, "healthy") for p in ports]


def test_awsvpc_tasks_register_as_ip_targets(env):
    ecs, elbv2 = env["ecs"], env["elbv2"]
    tg = elbv2.create_target_group(
        Name=unique("iptg"), Protocol="HTTP", Port=80, VpcId="vpc-local", TargetType="ip",
        HealthCheckIntervalSeconds=INTERVAL, HealthyThresholdCount=HEALTHY, HealthCheckTimeoutSeconds=2,
    )["TargetGroups"][0]["TargetGroupArn"]
    # Stopping tasks wait for their targets to drain (AWS's default is 300 s).
    elbv2.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "2"}])
    lb = elbv2.create_load_balancer(Name=unique("ipalb"), Type="application", Subnets=["subnet-a"])["LoadBalancers"][0]
    port = free_port()
    elbv2.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    td = ecs.register_task_definition(family=unique("vpc"), networkMode="awsvpc", containerDefinitions=[{
        "name": "web", "image": IMAGE, "memory": 32, "essential": True, "stopTimeout": 2,
        "portMappings": [{"containerPort": 80}],
    }])["taskDefinition"]["taskDefinitionArn"]
    name = unique("vpc")
    ecs.create_service(cluster=env["cluster"], serviceName=name, taskDefinition=td, desiredCount=2,
                       networkConfiguration={"awsvpcConfiguration": {"subnets": [default_subnet_id(env["cfg"])]}},
                       loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 80}])
    wait_for(lambda: steady(describe(env, name)), 120, "steady with 2 healthy ip targets",
             lambda: json.dumps(describe(env, name)["events"][:5]) + str(health(env, tg)))
    ips = sorted(
        d["value"] for t in service_tasks(env, name) for a in t["attachments"] for d in a["details"] if d["name"] == "privateIPv4Address"
    )
    assert [(i, p, s) for i, p, s in health(env, tg)] == [(ip, 80, "healthy") for ip in ips]
    assert len({get(f"http://{lb['DNSName']}:{port}/")[1] for _ in range(20)}) == 2
    arns = [t["taskArn"] for t in service_tasks(env, name)]
    ecs.delete_service(cluster=env["cluster"], service=name, force=True)
    wait_for(lambda: describe(env, name)["status"] == "INACTIVE", 120, "service INACTIVE")
    # Its tasks drained first and were stopped, not left behind by the INACTIVE service.
    wait_for(lambda: {t["lastStatus"] for t in ecs.describe_tasks(cluster=env["cluster"], tasks=arns)["tasks"]} == {"STOPPED"},
             60, "the deleted service's tasks STOPPED")
    assert health(env, tg) == []
