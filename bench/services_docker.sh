#!/usr/bin/env bash
# ECS services against Docker Swarm, same image, same machine, one run (issue #6):
#   1. A 100-task service from CreateService to steady state, vs `docker service create
#      --replicas 100` converging (the CLI's own wait, which includes Swarm's 5 s stability
#      check) and vs the moment Swarm first has all 100 tasks running (polled).
#   2. A rolling update of 50 tasks (maximumPercent 200, minimumHealthyPercent 100), vs
#      `docker service update --update-parallelism 10` of the same 50 replicas.
# The image's shell exits on SIGTERM, and both sides get a 2 s stop grace, so neither waits
# on a process that ignores signals.
#
#   bench/services_docker.sh                # release build first
#   SKIP_BUILD=1 bench/services_docker.sh
# Needs: a running dockerd (Swarm mode is entered and left), /bin/busybox, python3 + boto3.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STEVEDORE=${STEVEDORE:-$ROOT/target/release/stevedore}
REPLICAS=${REPLICAS:-100}
ROLLING=${ROLLING:-50}
source "$ROOT/bench/lib/common.sh"
bench_python
bench_build -p stevedore
bench_workdir services-docker
CLUSTER=svcbench
EXTRA_CLEANUP='docker service rm sd-svc-100 sd-svc-roll >/dev/null 2>&1; docker swarm leave --force >/dev/null 2>&1'

build_busybox_image stevedore-svc-bench:1 '["/bin/busybox","sh","-c","trap \"exit 0\" TERM; /bin/busybox httpd -f -p 80 & wait"]'

start_server
create_cluster "$CLUSTER"
start_agent "$CLUSTER"

"$PY" - "$CLUSTER" "$REPLICAS" "$ROLLING" <<'PYEOF'
import json, subprocess, sys, time
import boto3
cluster, replicas, rolling = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ecs = boto3.client("ecs")

def td(v):
    return ecs.register_task_definition(family="svcbench", containerDefinitions=[{
        "name": "web", "image": "stevedore-svc-bench:1", "memory": 16, "essential": True, "stopTimeout": 2,
        "environment": [{"name": "V", "value": str(v)}],
        "portMappings": [{"containerPort": 80, "hostPort": 0}]}])["taskDefinition"]["taskDefinitionArn"]

def log(m):
    print(m, file=sys.stderr, flush=True)

def wait_steady(name, want_td, want, timeout=600):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        s = ecs.describe_services(cluster=cluster, services=[name])["services"][0]
        d = s["deployments"]
        if len(d) == 1 and d[0].get("rolloutState") == "COMPLETED" and s["runningCount"] == want and s["taskDefinition"] == want_td:
            return
        time.sleep(0.05)
    sys.exit(f"{name} not steady in {timeout}s: {s['runningCount']} running, {len(s['deployments'])} deployments")

def wait_gone(name):
    ecs.delete_service(cluster=cluster, service=name, force=True)
    end = time.monotonic() + 300
    while time.monotonic() < end:
        if ecs.describe_services(cluster=cluster, services=[name])["services"][0]["status"] == "INACTIVE":
            return
        time.sleep(0.2)
    sys.exit(f"{name} did not drain")

v1, v2 = td(1), td(2)
t0 = time.monotonic()
ecs.create_service(cluster=cluster, serviceName="s100", taskDefinition=v1, desiredCount=replicas)
wait_steady("s100", v1, replicas)
ours_create = time.monotonic() - t0
log(f"stevedore: {replicas}-task service steady in {ours_create:.2f} s")
wait_gone("s100")
ecs.create_service(cluster=cluster, serviceName="roll", taskDefinition=v1, desiredCount=rolling,
                   deploymentConfiguration={"maximumPercent": 200, "minimumHealthyPercent": 100})
wait_steady("roll", v1, rolling)
t0 = time.monotonic()
ecs.update_service(cluster=cluster, service="roll", taskDefinition=v2)
wait_steady("roll", v2, rolling)
ours_roll = time.monotonic() - t0
log(f"stevedore: rolling update of {rolling} tasks in {ours_roll:.2f} s")
wait_gone("roll")

def docker(*a, **kw):
    return subprocess.run(["docker", *a], check=True, capture_output=True, text=True, **kw).stdout

docker("swarm", "init", "--advertise-addr", "127.0.0.1")
common = ["--publish", "mode=host,target=80", "--limit-memory", "16m", "--stop-grace-period", "2s"]
t0 = time.monotonic()
docker("service", "create", "--detach=false", "--quiet", "--name", "sd-svc-100", "--replicas", str(replicas), *common,
       "--env", "V=1", "stevedore-svc-bench:1")
swarm_create = time.monotonic() - t0
docker("service", "rm", "sd-svc-100")
time.sleep(5)
t0 = time.monotonic()
docker("service", "create", "--detach=true", "--quiet", "--name", "sd-svc-100", "--replicas", str(replicas), *common,
       "--env", "V=1", "stevedore-svc-bench:1")
while True:
    states = docker("service", "ps", "sd-svc-100", "--filter", "desired-state=running", "--format", "{{.CurrentState}}").split("\n")
    if sum(1 for s in states if s.startswith("Running")) >= replicas:
        break
    time.sleep(0.1)
swarm_running = time.monotonic() - t0
log(f"swarm: {replicas} replicas converged (CLI) in {swarm_create:.2f} s, all running (polled) in {swarm_running:.2f} s")
docker("service", "rm", "sd-svc-100")
time.sleep(5)
docker("service", "create", "--detach=false", "--quiet", "--name", "sd-svc-roll", "--replicas", str(rolling), *common,
       "--env", "V=1", "stevedore-svc-bench:1")
t0 = time.monotonic()
docker("service", "update", "--detach=false", "--quiet", "--update-parallelism", "10", "--env-add", "V=2", "sd-svc-roll")
swarm_roll = time.monotonic() - t0
log(f"swarm: rolling update of {rolling} replicas (parallelism 10) in {swarm_roll:.2f} s")
print(json.dumps({
    "replicas": replicas, "stevedore_create_to_steady_s": round(ours_create, 2),
    "swarm_create_converged_s": round(swarm_create, 2), "swarm_create_all_running_s": round(swarm_running, 2),
    "create_ratio_vs_converged": round(ours_create / swarm_create, 2),
    "create_ratio_vs_all_running": round(ours_create / swarm_running, 2), "create_target": "<= 1.0",
    "rolling": rolling, "stevedore_rolling_update_s": round(ours_roll, 2), "swarm_rolling_update_s": round(swarm_roll, 2),
    "rolling_ratio": round(ours_roll / swarm_roll, 2), "rolling_target": "<= 1.0",
}))
PYEOF
