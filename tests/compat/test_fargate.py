"""Fargate, end to end: the aws CLI against a `stevedore server` whose Fargate provisioner
runs hidden capacity (an in-process agent) against the local Docker. A Fargate task gets
its own address, its size as hard limits and gVisor's runsc as its sandbox (runc, with
`--fargate-sandbox runc`, on a host whose Docker lacks runsc), with no container instance
for the user to see. Needs
Docker (fails under CI=true when it is missing, skips otherwise)."""
from __future__ import annotations

import json
import subprocess

import botocore.auth
import requests
from botocore.awsrequest import AWSRequest

from agent_fixtures import (SH_IMAGE as IMAGE, agent_env, build_sh_image, docker_offers_runsc,
                            http_body, remove_cluster_containers, wait_for)
from conftest import ACCOUNT_ID, awsvpc_network, unique


# No agent: the server's Fargate provisioner runs the tasks, in gVisor where Docker offers
# runsc; elsewhere the server must be told to use runc (without the flag it refuses Fargate
# launches: test_fargate_isolation.py).
SANDBOX = "runsc" if docker_offers_runsc() else "runc"
env = agent_env("fargate", "fargate", image=build_sh_image, agents=(),
                cluster_args=("--capacity-providers", "FARGATE", "FARGATE_SPOT"),
                server_env={} if SANDBOX == "runsc" else {"STEVEDORE_FARGATE_SANDBOX": "runc"})


def register(aws, family: str, command: str, cpu: str = "256", memory: str = "512") -> None:
    aws.run("ecs", "register-task-definition", "--family", family, "--network-mode", "awsvpc",
            "--requires-compatibilities", "FARGATE", "--cpu", cpu, "--memory", memory,
            "--container-definitions", json.dumps([
                {"name": "app", "image": IMAGE, "essential": True, "stopTimeout": 2,
                 "command": ["/bin/sh", "-c", command]}]))


def describe(aws, cluster: str, arn: str) -> dict:
    return aws.run("ecs", "describe-tasks", "--cluster", cluster, "--tasks", arn)["tasks"][0]


def eni_ip(task: dict) -> str:
    att = [a for a in task["attachments"] if a["type"] == "ElasticNetworkInterface"][0]
    return {d["name"]: d["value"] for d in att["details"]}["privateIPv4Address"]


def inspect(task_arn: str) -> dict:
    ids = subprocess.run(["docker", "ps", "-aq", "--no-trunc", "--filter",
                          f"label=com.amazonaws.ecs.task-arn={task_arn}", "--filter",
                          "label=com.amazonaws.ecs.container-name=app"],
                         capture_output=True, text=True, timeout=30).stdout.split()
    assert len(ids) == 1, ids
    out = subprocess.run(["docker", "inspect", ids[0]], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    return json.loads(out)[0]


def admin(cfg, method: str, path: str, body: dict | None = None) -> requests.Response:
    """A request to Stevedore's admin routes, SigV4-signed with the admin key."""
    data = json.dumps(body).encode() if body is not None else b""
    req = AWSRequest(method=method, url=cfg.endpoint + path, data=data,
                     headers={"Content-Type": "application/json"})
    botocore.auth.SigV4Auth(cfg.credentials(), "ecs", cfg.region).add_auth(req)
    return requests.request(method, cfg.endpoint + path, data=data,
                            headers=dict(req.headers.items()), timeout=15)


def test_fargate_task_is_reachable_limited_and_on_no_visible_instance(env):
    aws, cluster = env["aws"], env["cluster"]
    family = unique("web")
    register(aws, family, "mkdir -p /www && echo hello-fargate > /www/index.html && "
                          "exec /bin/busybox httpd -f -p 8080 -h /www")
    out = aws.run("ecs", "run-task", "--cluster", cluster, "--task-definition", family,
                  "--launch-type", "FARGATE", "--platform-version", "LATEST",
                  "--network-configuration", awsvpc_network(env["aws"]))
    assert not out["failures"], out
    task = out["tasks"][0]
    arn = task["taskArn"]
    assert task["launchType"] == "FARGATE"
    assert task["platformVersion"] == "1.4.0"
    assert "containerInstanceArn" not in task
    running = wait_for(lambda: (t := describe(aws, cluster, arn))["lastStatus"] == "RUNNING" and t,
                       60, "the Fargate task to run", env["srv"].log_tail)
    ip = eni_ip(running)
    assert wait_for(lambda: http_body(f"http://{ip}:8080/"), 20,
                    f"httpd on {ip}:8080") == "hello-fargate\n"
    sandbox = {a["name"]: a.get("value") for a in running["attributes"]}["stevedore.sandbox"]
    assert sandbox == SANDBOX
    # The size is a hard limit, in the sandbox the server reported.
    host = inspect(arn)["HostConfig"]
    assert host["NanoCpus"] == 250_000_000
    assert host["Memory"] == 512 * 1024 * 1024
    assert (host.get("Runtime") or "runc") == sandbox
    # The capacity is hidden.
    assert aws.run("ecs", "list-container-instances", "--cluster", cluster)[
        "containerInstanceArns"] == []
    c = aws.run("ecs", "describe-clusters", "--clusters", cluster)["clusters"][0]
    assert c["registeredContainerInstancesCount"] == 0
    assert c["runningTasksCount"] >= 1
    aws.run("ecs", "stop-task", "--cluster", cluster, "--task", arn)
    wait_for(lambda: describe(aws, cluster, arn)["lastStatus"] == "STOPPED", 60,
             "the task to stop")
    usage = admin(env["cfg"], "GET", f"/stevedore/fargate/usage?cluster={cluster}")
    assert usage.status_code == 200, usage.text
    mine = [t for t in usage.json()["tasks"] if t["taskArn"] == arn]
    assert mine and mine[0]["vcpu"] == 0.25 and mine[0]["vcpuSeconds"] > 0


def test_a_task_beyond_its_memory_is_oom_killed(env):
    aws, cluster = env["aws"], env["cluster"]
    family = unique("oom")
    # Doubles a shell string to 1 GiB: more than the task's 512 MiB.
    register(aws, family, "x=aaaaaaaaaaaaaaaa; i=0; while [ $i -lt 26 ]; do x=\"$x$x\"; "
                          "i=$((i+1)); done; echo survived; sleep 60")
    out = aws.run("ecs", "run-task", "--cluster", cluster, "--task-definition", family,
                  "--launch-type", "FARGATE", "--network-configuration", awsvpc_network(env["aws"]))
    arn = out["tasks"][0]["taskArn"]
    t = wait_for(lambda: (t := describe(aws, cluster, arn))["lastStatus"] == "STOPPED" and t,
                 120, "the task to be OOM-killed", env["srv"].log_tail)
    c = t["containers"][0]
    assert c.get("exitCode") == 137, t
    assert t["stopCode"] == "EssentialContainerExited"
    if c.get("reason"):
        assert "OutOfMemory" in c["reason"]


def test_invalid_sizes_and_missing_network_are_refused_with_aws_messages(env):
    aws, cluster = env["aws"], env["cluster"]
    proc = aws.run("ecs", "register-task-definition", "--family", unique("bad"),
                   "--network-mode", "awsvpc", "--requires-compatibilities", "FARGATE",
                   "--cpu", "256", "--memory", "4096", "--container-definitions",
                   json.dumps([{"name": "a", "image": IMAGE}]), check=False)
    assert proc.returncode != 0
    assert "No Fargate configuration exists for given values: 256 CPU, 4096 memory" in proc.stderr
    family = unique("nonet")
    register(aws, family, "sleep 5")
    proc = aws.run("ecs", "run-task", "--cluster", cluster, "--task-definition", family,
                   "--launch-type", "FARGATE", check=False)
    assert "Network Configuration must be provided when networkMode 'awsvpc' is specified." \
        in proc.stderr
    proc = aws.run("ecs", "run-task", "--cluster", cluster, "--task-definition", family,
                   "--launch-type", "FARGATE", "--network-configuration", awsvpc_network(env["aws"]),
                   "--overrides", json.dumps({"cpu": "256", "memory": "4096"}), check=False)
    assert "No Fargate configuration exists for given values: 256 CPU, 4096 memory" in proc.stderr


def test_a_fargate_spot_service_reaches_steady_state_and_replaces_an_interruption(env):
    aws, cluster = env["aws"], env["cluster"]
    family = unique("svc")
    register(aws, family, "exec /bin/busybox httpd -f -p 8080 -h /")
    name = unique("spot")
    svc = aws.run("ecs", "create-service", "--cluster", cluster, "--service-name", name,
                  "--task-definition", family, "--desired-count", "2",
                  "--capacity-provider-strategy", "capacityProvider=FARGATE_SPOT,weight=1",
                  "--network-configuration", awsvpc_network(env["aws"]))["service"]
    assert svc["platformVersion"] == "1.4.0"

    def running_tasks():
        arns = aws.run("ecs", "list-tasks", "--cluster", cluster, "--service-name", name,
                       "--desired-status", "RUNNING")["taskArns"]
        if not arns:
            return []
        ts = aws.run("ecs", "describe-tasks", "--cluster", cluster, "--tasks", *arns)["tasks"]
        return [t for t in ts if t["lastStatus"] == "RUNNING"]

    first = wait_for(lambda: len(r := running_tasks()) == 2 and r, 90,
                     "two service tasks to run", env["srv"].log_tail)
    assert all(t["capacityProviderName"] == "FARGATE_SPOT" for t in first)
    wait_for(lambda: any("has reached a steady state" in e["message"] for e in aws.run(
        "ecs", "describe-services", "--cluster", cluster, "--services", name)["services"][0][
        "events"]), 90, "the service to reach a steady state")
    victim = first[0]["taskArn"]
    r = admin(env["cfg"], "POST", "/stevedore/fargate/spot-interruptions",
              {"cluster": cluster, "tasks": [victim]})
    assert r.status_code == 200, r.text
    assert r.json()["interrupted"] == [victim]
    stopped = wait_for(lambda: (t := describe(aws, cluster, victim))["lastStatus"] == "STOPPED"
                       and t, 60, "the interrupted task to stop")
    assert stopped["stopCode"] == "SpotInterruption"
    assert stopped["stoppedReason"] == "Your Spot Task was interrupted."
    wait_for(lambda: len(r := running_tasks()) == 2 and victim not in {t["taskArn"] for t in r},
             90, "the service to replace the interrupted task", env["srv"].log_tail)
    aws.run("ecs", "delete-service", "--cluster", cluster, "--service", name, "--force")


def test_fargate_runs_in_another_region_on_that_regions_hidden_capacity(env):
    """`aws --region us-east-2`: the task, its cluster and its hidden agent are us-east-2's."""
    aws, srv = env["aws"], env["srv"]
    east2 = lambda *args: aws.run("--region", "us-east-2", *args)  # noqa: E731
    cluster = unique("east2")
    east2("ecs", "create-cluster", "--cluster-name", cluster, "--capacity-providers", "FARGATE")
    family = unique("f2")
    east2("ecs", "register-task-definition", "--family", family, "--network-mode", "awsvpc",
          "--requires-compatibilities", "FARGATE", "--cpu", "256", "--memory", "512",
          "--container-definitions", json.dumps([
              {"name": "app", "image": IMAGE, "essential": True, "stopTimeout": 2,
               "command": ["/bin/sh", "-c", "exec sleep 600"]}]))
    try:
        out = east2("ecs", "run-task", "--cluster", cluster, "--task-definition", family,
                    "--launch-type", "FARGATE", "--network-configuration",
                    awsvpc_network(aws, "us-east-2"))
        assert not out["failures"], out
        arn = out["tasks"][0]["taskArn"]
        assert arn.startswith("arn:aws:ecs:us-east-2:")
        wait_for(lambda: east2("ecs", "describe-tasks", "--cluster", cluster, "--tasks", arn)[
            "tasks"][0]["lastStatus"] == "RUNNING", 60, "the us-east-2 Fargate task to run", srv.log_tail)
        # Its hidden agent keeps its state with the region's, and us-east-1 sees none of it.
        assert (env["cfg"].data_dir / "regions" / "us-east-2" / "fargate").is_dir()
        assert not any(c.endswith(f"/{cluster}") for c in aws.run("ecs", "list-clusters")["clusterArns"])
        east2("ecs", "stop-task", "--cluster", cluster, "--task", arn)
        # Stopped by its agent before its containers are removed below.
        wait_for(lambda: east2("ecs", "describe-tasks", "--cluster", cluster, "--tasks", arn)[
            "tasks"][0]["lastStatus"] == "STOPPED", 60, "the us-east-2 Fargate task to stop", srv.log_tail)
    finally:
        remove_cluster_containers(f"arn:aws:ecs:us-east-2:{ACCOUNT_ID}:cluster/{cluster}")


def test_cluster_statistics_count_fargate_tasks_and_delete_cluster_refuses_while_they_run(env):
    aws = env["aws"]
    cluster = unique("fgstats")
    aws.run("ecs", "create-cluster", "--cluster-name", cluster, "--capacity-providers", "FARGATE")
    family = unique("sleep")
    register(aws, family, "exec sleep 600")
    out = aws.run("ecs", "run-task", "--cluster", cluster, "--task-definition", family,
                  "--launch-type", "FARGATE", "--network-configuration", awsvpc_network(env["aws"]))
    assert not out["failures"], out
    arn = out["tasks"][0]["taskArn"]
    wait_for(lambda: describe(aws, cluster, arn)["lastStatus"] == "RUNNING", 60,
             "the Fargate task to run", env["srv"].log_tail)
    c = aws.run("ecs", "describe-clusters", "--clusters", cluster, "--include", "STATISTICS")["clusters"][0]
    stats = {s["name"]: int(s["value"]) for s in c["statistics"]}
    assert stats["runningFargateTasksCount"] == 1 and stats["runningEC2TasksCount"] == 0
    assert c["runningTasksCount"] == 1
    proc = aws.run("ecs", "delete-cluster", "--cluster", cluster, check=False)
    assert proc.returncode != 0 and "ClusterContainsTasksException" in proc.stderr, proc.stderr
    aws.run("ecs", "stop-task", "--cluster", cluster, "--task", arn)
    wait_for(lambda: describe(aws, cluster, arn)["lastStatus"] == "STOPPED", 60, "the task to stop")
    assert aws.run("ecs", "delete-cluster", "--cluster", cluster)["cluster"]["status"] == "INACTIVE"
