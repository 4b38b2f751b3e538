#!/usr/bin/env bash
# ECS services against Docker Swarm, same image, same machine, one run (issue #6):
#   1. A 100-task service from CreateService to steady state, vs `docker service create
#      --replicas 100` until all 100 tasks are running.
#   2. A rolling update of 50 tasks (maximumPercent 200, minimumHealthyPercent 100), vs the
#      same rolling update of 50 Swarm replicas.
# Both sides are timed by polling their own API (boto3 DescribeServices every 50 ms; the
# Docker Engine API's /tasks over its unix socket every 50 ms), not by a CLI's wait.
#
# Swarm gets its best documented configuration for this job (docs.docker.com,
# `docker service create` / `docker service update` reference):
#   - the image by its local id (`sha256:…`) and `--no-resolve-image`: with a tag, the
#     CLI asks a registry for the digest and every task's worker tries a pull before it
#     falls back to the local copy (Stevedore's agent uses a local image without pulling);
#     a tag here measured 35–37 s for step 1 where the id gives ~17 s;
#   - `--detach`, so no CLI progress display or 5 s stability wait sits in the timing;
#   - `--update-order start-first --update-parallelism 0 --update-delay 0s` (start all new
#     tasks at once, then stop the old ones): the same bounds as ECS's maximumPercent 200 /
#     minimumHealthyPercent 100 (the earlier script used parallelism 10, stop-first);
#   - `--stop-grace-period 2s` on both sides (the image's shell exits on SIGTERM anyway);
#   - `--publish mode=host,target=80` (a dynamic host port, no routing mesh), as
#     Stevedore's bridge networking with hostPort 0; `--limit-memory 16m` as memory 16.
# Swarm's own "update completed" (after its default 5 s `--update-monitor`) is printed
# beside the polled figure.
#
#   bench/services_docker.sh                # release build first
#   SKIP_BUILD=1 bench/services_docker.sh
# Needs: a running dockerd (Swarm mode is entered and left), /bin/busybox, python3 + boto3.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/bench/lib/common.sh"
REPLICAS=${REPLICAS:-100}
ROLLING=${ROLLING:-50}
BENCH_SETTINGS="REPLICAS ROLLING"
bench_header "$@"
bench_python
bench_build -p stevedore
bench_workdir services-docker
CLUSTER=svcbench
note_networks docker_gwbridge
EXTRA_CLEANUP='docker service rm sd-svc-100 sd-svc-roll >/dev/null 2>&1; docker swarm leave --force >/dev/null 2>&1; leave_networks'

build_busybox_image stevedore-svc-bench:1 '["/bin/busybox","sh","-c","trap \"exit 0\" TERM; /bin/busybox httpd -f -p 80 & wait"]'
IMAGE_ID=$(docker image inspect -f '{{.Id}}' stevedore-svc-bench:1)

start_server
create_cluster "$CLUSTER"
start_agent "$CLUSTER"

PYTHONPATH="$ROOT/bench/lib" "$PY" - "$CLUSTER" "$REPLICAS" "$ROLLING" "$IMAGE_ID" <<'PYEOF'
import subprocess, sys, time
import boto3
from docker_engine import Engine
cluster, replicas, rolling, image_id = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
ecs = boto3.client("ecs")
engine = Engine()

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
            break
        time.sleep(0.2)
    else:
        sys.exit(f"{name} did not drain")
    # Swarm starts from a daemon with none of Stevedore's containers running.
    engine.wait_no_running_containers(f"com.amazonaws.ecs.cluster=arn:aws:ecs:us-east-1:000000000000:cluster/{cluster}")

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

def docker(*a):
    return subprocess.run(["docker", *a], check=True, capture_output=True, text=True).stdout

def swarm_gone(service):
    docker("service", "rm", service)
    engine.wait_no_running_containers(f"com.docker.swarm.service.name={service}")

docker("swarm", "init", "--advertise-addr", "127.0.0.1")
common = ["--detach", "--quiet", "--no-resolve-image", "--publish", "mode=host,target=80", "--limit-memory", "16m",
          "--stop-grace-period", "2s", "--update-order", "start-first", "--update-parallelism", "0",
          "--update-delay", "0s"]
t0 = time.monotonic()
docker("service", "create", "--name", "sd-svc-100", "--replicas", str(replicas), *common, "--env", "V=1", image_id)
while engine.running_tasks("sd-svc-100") < replicas:
    time.sleep(0.05)
swarm_create = time.monotonic() - t0
log(f"swarm: {replicas} replicas all running (polled) in {swarm_create:.2f} s")
swarm_gone("sd-svc-100")
docker("service", "create", "--name", "sd-svc-roll", "--replicas", str(rolling), *common, "--env", "V=1", image_id)
while engine.running_tasks("sd-svc-roll") < rolling:
    time.sleep(0.05)
t0 = time.monotonic()
docker("service", "update", "--detach", "--quiet", "--env-add", "V=2", "sd-svc-roll")
while engine.running_tasks("sd-svc-roll", "V=2") < rolling or engine.running_without("sd-svc-roll", "V=2"):
    time.sleep(0.05)
swarm_roll = time.monotonic() - t0
while (st := engine.update_state("sd-svc-roll")) != "completed":
    if st in ("paused", "rollback_completed", "rollback_paused"):
        sys.exit(f"swarm update ended {st}")
    time.sleep(0.05)
swarm_roll_status = time.monotonic() - t0
log(f"swarm: rolling update of {rolling} replicas in {swarm_roll:.2f} s (polled), "
    f"UpdateStatus completed at {swarm_roll_status:.2f} s")
swarm_gone("sd-svc-roll")
print(f"| measure | Stevedore | Swarm | ratio | target |")
print(f"|---|---:|---:|---:|---|")
r1, r2 = ours_create / swarm_create, ours_roll / swarm_roll
print(f"| {replicas}-task service → steady | {ours_create:.1f} s | {swarm_create:.1f} s (all running, polled) | "
      f"{r1:.2f} | ≤ 1.0: {'met' if r1 <= 1.0 else 'not met'} |")
print(f"| rolling update of {rolling} (max 200 %, min 100 %) | {ours_roll:.1f} s | {swarm_roll:.1f} s "
      f"(start-first, parallelism 0; UpdateStatus completed {swarm_roll_status:.1f} s) | "
      f"{r2:.2f} | ≤ 1.0: {'met' if r2 <= 1.0 else 'not met'} |")
PYEOF
bench_footer
