"""awsvpc tasks and container health, end to end: the aws CLI against a `stevedore
server`, a `stevedore agent` process running real containers through Docker. An awsvpc
task gets its own address (an ENI attachment in DescribeTasks) held by the agent's
built-in pause container; health-check verdicts reach DescribeTasks. Needs Docker (fails
under CI=true when it is missing, skips otherwise)."""
from __future__ import annotations

import ipaddress
import json
import subprocess

from agent_fixtures import (
    SH_IMAGE as IMAGE,
    agent_connected,
    agent_env,
    build_sh_image,
    containers,
    describe_task,
    http_body,
    wait_for,
)
from conftest import awsvpc_network, default_subnet, unique

PAUSE = "~internal~ecs~pause"

# A short cleanup wait, so a stopped task's containers go quickly.
env = agent_env("awsvpc", "awsvpc", image=build_sh_image, cleanup_wait="3s")


def docker_exec(cid: str, *cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "exec", cid, *cmd], capture_output=True, text=True,
                          timeout=30)


def pause_ids(arn: str, all_: bool = True) -> list[str]:
    args = ["docker", "ps", "-q", "--no-trunc", "--filter", f"label=com.amazonaws.ecs.task-arn={arn}",
            "--filter", f"label=com.amazonaws.ecs.container-name={PAUSE}"]
    if all_:
        args.insert(2, "-a")
    return subprocess.run(args, capture_output=True, text=True, timeout=30).stdout.split()


def details(task: dict) -> dict:
    att = [a for a in task.get("attachments", []) if a["type"] == "ElasticNetworkInterface"]
    assert len(att) == 1, task.get("attachments")
    return {d["name"]: d["value"] for d in att[0]["details"]} | {"status": att[0]["status"],
                                                                  "id": att[0]["id"]}


def run_awsvpc(aws, cluster: str, family: str) -> dict:
    out = aws.run("ecs", "run-task", "--cluster", cluster, "--task-definition", family,
                  "--network-configuration",
                  awsvpc_network(aws).replace(",assignPublicIp=DISABLED", ""))
    assert out["tasks"], out
    return out["tasks"][0]


def test_awsvpc_task_has_its_own_address_survives_an_agent_restart_and_cleans_up(env):
    aws, cluster, agent = env["aws"], env["cluster"], env["agent"]
    family = unique("vpc")
    aws.run("ecs", "register-task-definition", "--family", family, "--network-mode", "awsvpc",
            "--container-definitions", json.dumps([
                {"name": "web", "image": IMAGE, "memory": 32, "essential": True, "stopTimeout": 2,
                 "command": ["/bin/sh", "-c",
                             "mkdir -p /www && echo hello-awsvpc > /www/index.html && "
                             "exec /bin/busybox httpd -f -p 8080 -h /www"],
                 "portMappings": [{"containerPort": 8080}]},
                {"name": "probe", "image": IMAGE, "memory": 32, "essential": True,
                 "stopTimeout": 2},
            ]))
    placed = run_awsvpc(aws, cluster, family)
    arn = placed["taskArn"]
    d0 = details(placed)
    assert d0["subnetId"] == default_subnet(aws)
    assert d0["networkInterfaceId"].startswith("eni-") and len(d0["networkInterfaceId"]) == 21

    task = wait_for(lambda: (t := describe_task(aws, cluster, arn))["lastStatus"] == "RUNNING" and t,
                    90, "RUNNING", agent.log_tail)
    d = details(task)
    ip, mac = d["privateIPv4Address"], d["macAddress"]
    assert d["status"] == "ATTACHED"
    # The address comes from the task's subnet (the default VPC's first-zone subnet).
    [subnet] = aws.run("ec2", "describe-subnets", "--subnet-ids", d0["subnetId"])["Subnets"]
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(subnet["CidrBlock"])
    assert d["privateDNSName"] == f"ip-{ip.replace('.', '-')}.ec2.internal"
    for c in task["containers"]:
        assert c["networkInterfaces"] == [{"attachmentId": d["id"], "privateIpv4Address": ip}]
        assert not c.get("networkBindings")

    # The pause container holds the address and MAC; the task's containers join it.
    [pause] = pause_ids(arn, all_=False)
    info = json.loads(subprocess.run(["docker", "inspect", pause], capture_output=True, text=True,
                                     check=True).stdout)[0]
    [(name, net)] = info["NetworkSettings"]["Networks"].items()
    assert name.startswith("stevedore-awsvpc-"), name
    assert net["IPAddress"] == ip and net["MacAddress"] == mac
    ids = {c["name"]: c["runtimeId"] for c in task["containers"]}
    for cid in ids.values():
        mode = subprocess.run(["docker", "inspect", "-f", "{{.HostConfig.NetworkMode}}", cid],
                              capture_output=True, text=True, check=True).stdout.strip()
        assert mode == f"container:{pause}"

    # Reachable at the task's address from the host; the containers share localhost.
    assert wait_for(lambda: http_body(f"http://{ip}:8080/"), 20, "httpd at the task IP",
                    agent.log_tail).strip() == "hello-awsvpc"
    local = docker_exec(ids["probe"], "/bin/busybox", "wget", "-q", "-O", "-",
                        "http://127.0.0.1:8080/")
    assert local.stdout.strip() == "hello-awsvpc", local.stderr

    # A second awsvpc task never gets the same address.
    other = run_awsvpc(aws, cluster, family)
    assert details(other)["privateIPv4Address"] != ip
    aws.run("ecs", "stop-task", "--cluster", cluster, "--task", other["taskArn"])

    # SIGKILL the agent and restart it: everything is adopted, nothing duplicated.
    everything = sorted(containers(f"com.amazonaws.ecs.task-arn={arn}"))
    assert len(everything) == 3
    agent.kill()
    agent.start()
    wait_for(lambda: agent_connected(aws, cluster), 60, "the agent to reconnect", agent.log_tail)
    wait_for(lambda: describe_task(aws, cluster, other["taskArn"])["lastStatus"] == "STOPPED", 60,
             "the second task to stop", agent.log_tail)
    assert sorted(containers(f"com.amazonaws.ecs.task-arn={arn}")) == everything
    assert pause_ids(arn, all_=False) == [pause]
    assert describe_task(aws, cluster, arn)["lastStatus"] == "RUNNING"
    assert http_body(f"http://{ip}:8080/").strip() == "hello-awsvpc"

    # Stop: the attachment is DELETED, and after the cleanup wait no container is left.
    aws.run("ecs", "stop-task", "--cluster", cluster, "--task", arn)
    task = wait_for(lambda: (t := describe_task(aws, cluster, arn))["lastStatus"] == "STOPPED" and t,
                    60, "STOPPED", agent.log_tail)
    assert details(task)["status"] == "DELETED"
    wait_for(lambda: not containers(f"com.amazonaws.ecs.task-arn={arn}"), 60,
             "the task's containers and its pause container to be removed", agent.log_tail)
    assert http_body(f"http://{ip}:8080/") is None


def test_container_and_task_health_reach_describe_tasks(env):
    aws, cluster, agent = env["aws"], env["cluster"], env["agent"]
    family = unique("health")
    aws.run("ecs", "register-task-definition", "--family", family, "--network-mode", "bridge",
            "--container-definitions", json.dumps([
                {"name": "app", "image": IMAGE, "memory": 32, "essential": True, "stopTimeout": 2,
                 "command": ["/bin/sh", "-c", "touch /healthy; exec sleep 3600"],
                 "healthCheck": {"command": ["CMD-SHELL", "test -f /healthy"],
                                 "interval": 5, "timeout": 2, "retries": 1}},
                {"name": "sidecar", "image": IMAGE, "memory": 32, "essential": True,
                 "stopTimeout": 2},
            ]))
    out = aws.run("ecs", "run-task", "--cluster", cluster, "--task-definition", family)
    arn = out["tasks"][0]["taskArn"]
    assert out["tasks"][0]["healthStatus"] == "UNKNOWN"

    def health(want: str):
        t = describe_task(aws, cluster, arn)
        app = next(c for c in t["containers"] if c["name"] == "app")
        return t if (t["healthStatus"] == want and app["healthStatus"] == want) else None

    task = wait_for(lambda: health("HEALTHY"), 90, "HEALTHY", agent.log_tail)
    assert task["lastStatus"] == "RUNNING"
    side = next(c for c in task["containers"] if c["name"] == "sidecar")
    assert side["healthStatus"] == "UNKNOWN"  # no health check: it does not count

    app_id = next(c["runtimeId"] for c in task["containers"] if c["name"] == "app")
    assert docker_exec(app_id, "/bin/busybox", "rm", "/healthy").returncode == 0
    task = wait_for(lambda: health("UNHEALTHY"), 60, "UNHEALTHY", agent.log_tail)
    # A standalone task is not stopped for being unhealthy.
    assert task["lastStatus"] == "RUNNING" and task["desiredStatus"] == "RUNNING"

    # Reported again after a reconnect: the verdict survives an agent restart, and a
    # recovery made while the agent was down is seen.
    agent.kill()
    assert docker_exec(app_id, "/bin/busybox", "touch", "/healthy").returncode == 0
    agent.start()
    wait_for(lambda: health("HEALTHY"), 90, "HEALTHY again after the restart", agent.log_tail)
    aws.run("ecs", "stop-task", "--cluster", cluster, "--task", arn)
    wait_for(lambda: describe_task(aws, cluster, arn)["lastStatus"] == "STOPPED", 60, "STOPPED",
             agent.log_tail)
