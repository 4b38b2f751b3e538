#!/usr/bin/env bash
# The agent against Docker itself, same image, same machine, one run:
#   1. RunTask -> RUNNING for a one-container bridge task (cached image), vs `docker run -d`
#      of the same image with the same port publishing: median and p95 of each, and ratio.
#   2. 100 tasks (10 RunTask calls of 10) all RUNNING, vs Docker Swarm running all 100
#      replicas of `docker service create --replicas 100` of the same image. Swarm gets
#      its best documented configuration: the image by its local id with
#      `--no-resolve-image` (with a tag the CLI asks a registry for the digest and each
#      task's worker tries a pull first; Stevedore's agent uses a local image as is), and
#      `--detach`; both sides are timed by polling their API (DescribeTasks / the Docker
#      Engine API's /tasks), not by a CLI's wait.
#   3. The agent's RSS with 20 running tasks.
#
#   bench/agent.sh                 # release build first
#   SKIP_BUILD=1 ROUNDS=10 bench/agent.sh
# Needs: a running dockerd, /bin/busybox (busybox-static), python3 with boto3.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/bench/lib/common.sh"
ROUNDS=${ROUNDS:-20}
BENCH_SETTINGS="ROUNDS"
bench_header "$@"
bench_python
bench_build -p stevedore
bench_workdir agent-bench
LABEL=stevedore.bench=agent
CLUSTER=agentbench
note_networks docker_gwbridge
EXTRA_CLEANUP='docker service rm sd-bench-swarm >/dev/null 2>&1; docker swarm leave --force >/dev/null 2>&1; docker ps -aq --filter "label=$LABEL" | xargs -r docker rm -f >/dev/null 2>&1; leave_networks'

build_busybox_image stevedore-bench:1 '["/bin/busybox","httpd","-f","-p","80"]'
IMAGE_ID=$(docker image inspect -f '{{.Id}}' stevedore-bench:1)
start_server
create_cluster "$CLUSTER"
start_agent "$CLUSTER"
AGENT_PID=${PIDS[-1]}

PYTHONPATH="$ROOT/bench/lib" "$PY" - "$ROUNDS" "$AGENT_PID" "$LABEL" "$IMAGE_ID" <<'PYEOF'
import json, statistics, subprocess, sys, time
import boto3
from docker_engine import Engine
rounds, agent_pid, label, image_id = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ecs = boto3.client("ecs")
engine = Engine()
ecs.register_task_definition(family="bench", containerDefinitions=[{
    "name": "web", "image": "stevedore-bench:1", "memory": 32, "essential": True,
    "portMappings": [{"containerPort": 80, "hostPort": 0}]}])

def wait(arns, status, timeout=300, poll=0.01):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        ts = []
        for i in range(0, len(arns), 100):
            ts += ecs.describe_tasks(cluster="agentbench", tasks=arns[i:i+100])["tasks"]
        if all(t["lastStatus"] == status for t in ts):
            return
        if any(t["lastStatus"] == "STOPPED" for t in ts) and status != "STOPPED":
            sys.exit(f"a task stopped: {[t.get('stoppedReason') for t in ts if t['lastStatus']=='STOPPED']}")
        time.sleep(poll)
    sys.exit(f"tasks not {status} in {timeout}s")

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

# 1. single task latency
ours, docker = [], []
for _ in range(rounds):
    t0 = time.monotonic()
    arn = ecs.run_task(cluster="agentbench", taskDefinition="bench")["tasks"][0]["taskArn"]
    wait([arn], "RUNNING")
    ours.append(time.monotonic() - t0)
    ecs.stop_task(cluster="agentbench", task=arn)
    wait([arn], "STOPPED", poll=0.05)
    t0 = time.monotonic()
    cid = subprocess.run(["docker", "run", "-d", "-l", label, "-p", "0:80", "-m", "32m", "stevedore-bench:1"],
                         check=True, capture_output=True, text=True).stdout.strip()
    docker.append(time.monotonic() - t0)
    subprocess.run(["docker", "rm", "-f", cid], check=True, capture_output=True)

# 2. 100 tasks
t0 = time.monotonic()
arns = []
for _ in range(10):
    out = ecs.run_task(cluster="agentbench", taskDefinition="bench", count=10)
    if out["failures"]:
        sys.exit(f"placement failures: {out['failures'][:3]}")
    arns += [t["taskArn"] for t in out["tasks"]]
wait(arns, "RUNNING", poll=0.05)
ours_100 = time.monotonic() - t0
# 3. RSS with 20 running tasks: stop 80 of them first
for a in arns[20:]:
    ecs.stop_task(cluster="agentbench", task=a)
wait(arns[20:], "STOPPED", poll=0.1)
time.sleep(2)
with open(f"/proc/{agent_pid}/status") as f:
    agent_rss_mib = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024
for a in arns[:20]:
    ecs.stop_task(cluster="agentbench", task=a)
wait(arns[:20], "STOPPED", poll=0.1)

# Swarm with its best documented configuration for this: the image by id and
# --no-resolve-image (no registry lookup by the CLI, no pull attempt per task), --detach,
# and the same polling of its API as the Stevedore side gets.
engine.wait_no_running_containers("com.amazonaws.ecs.cluster=arn:aws:ecs:us-east-1:000000000000:cluster/agentbench")
subprocess.run(["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"], check=True, capture_output=True)
t0 = time.monotonic()
subprocess.run(["docker", "service", "create", "--detach", "--quiet", "--no-resolve-image", "--name", "sd-bench-swarm",
                "--replicas", "100", "--publish", "mode=host,target=80", "--limit-memory", "32m",
                "--container-label", label, image_id], check=True, capture_output=True)
while engine.running_tasks("sd-bench-swarm") < 100:
    time.sleep(0.05)
swarm_100 = time.monotonic() - t0

med_o, med_d = statistics.median(ours), statistics.median(docker)
print(json.dumps({
    "run_task_to_running_median_s": round(med_o, 3), "run_task_to_running_p95_s": round(pct(ours, 95), 3),
    "docker_run_median_s": round(med_d, 3), "docker_run_p95_s": round(pct(docker, 95), 3),
    "single_ratio_median": round(med_o / med_d, 2), "single_target": "<= 1.3",
    "tasks_100_running_s": round(ours_100, 2), "swarm_100_all_running_polled_s": round(swarm_100, 2),
    "hundred_ratio": round(ours_100 / swarm_100, 2), "hundred_target": "<= 1.2",
    "agent_rss_20_tasks_mib": round(agent_rss_mib, 1), "agent_rss_target_mib": 30,
}))
PYEOF
bench_footer
