#!/usr/bin/env bash
# The agent against Docker itself, same image, same machine, one run:
#   1. RunTask -> RUNNING for a one-container bridge task (cached image), vs `docker run -d`
#      of the same image with the same port publishing: median and p95 of each, and ratio.
#   2. 100 tasks (10 RunTask calls of 10) all RUNNING, vs Docker Swarm converging
#      `docker service create --replicas 100` of the same image.
#   3. The agent's RSS with 20 running tasks.
#
#   bench/agent.sh                 # release build first
#   SKIP_BUILD=1 ROUNDS=10 bench/agent.sh
# Needs: a running dockerd, /bin/busybox (busybox-static), python3 with boto3.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-20}
STEVEDORE=${STEVEDORE:-$ROOT/target/release/stevedore}
PY=${PYTHON:-python3}
"$PY" -c 'import boto3' 2>/dev/null || PY=/tmp/venv/bin/python
[ -z "${SKIP_BUILD:-}" ] && (cd "$ROOT" && cargo build --release -p stevedore >&2)

WORK=$(mktemp -d /tmp/stevedore-agent-bench.XXXXXX)
LABEL=stevedore.bench=agent
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  docker service rm sd-bench-swarm >/dev/null 2>&1 || true
  docker swarm leave --force >/dev/null 2>&1 || true
  docker ps -aq --filter "label=$LABEL" | xargs -r docker rm -f >/dev/null 2>&1 || true
  docker ps -aq --filter "label=com.amazonaws.ecs.cluster=arn:aws:ecs:us-east-1:000000000000:cluster/agentbench" | xargs -r docker rm -f >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/img" && cp /bin/busybox "$WORK/img/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox","httpd","-f","-p","80"]\n' > "$WORK/img/Dockerfile"
docker build -q -t stevedore-bench:1 "$WORK/img" >/dev/null

PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
EP="http://127.0.0.1:$PORT"
STEVEDORE_LOG=warn "$STEVEDORE" server --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" >"$WORK/server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do [ -s "$WORK/data/credentials" ] && curl -sf "$EP/health" >/dev/null && break; sleep 0.1; done
export AWS_SHARED_CREDENTIALS_FILE="$WORK/data/credentials" AWS_DEFAULT_REGION=us-east-1 AWS_ENDPOINT_URL="$EP"
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE
"$PY" -c "import boto3; boto3.client('ecs').create_cluster(clusterName='agentbench')"
STEVEDORE_LOG=warn "$STEVEDORE" agent --cluster agentbench --endpoint "$EP" --state-dir "$WORK/agent" >"$WORK/agent.log" 2>&1 &
AGENT_PID=$!
PIDS+=("$AGENT_PID")

"$PY" - "$ROUNDS" "$AGENT_PID" "$LABEL" <<'PYEOF'
import json, statistics, subprocess, sys, time
import boto3
rounds, agent_pid, label = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ecs = boto3.client("ecs")
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    arns = ecs.list_container_instances(cluster="agentbench")["containerInstanceArns"]
    if arns and ecs.describe_container_instances(cluster="agentbench", containerInstances=arns)["containerInstances"][0]["agentConnected"]:
        break
    time.sleep(0.1)
else:
    sys.exit("the agent did not connect")
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

subprocess.run(["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"], check=True, capture_output=True)
t0 = time.monotonic()
subprocess.run(["docker", "service", "create", "--detach=false", "--quiet", "--name", "sd-bench-swarm",
                "--replicas", "100", "--publish", "mode=host,target=80", "--limit-memory", "32m",
                "--container-label", label, "stevedore-bench:1"], check=True, capture_output=True)
swarm_100 = time.monotonic() - t0

med_o, med_d = statistics.median(ours), statistics.median(docker)
print(json.dumps({
    "run_task_to_running_median_s": round(med_o, 3), "run_task_to_running_p95_s": round(pct(ours, 95), 3),
    "docker_run_median_s": round(med_d, 3), "docker_run_p95_s": round(pct(docker, 95), 3),
    "single_ratio_median": round(med_o / med_d, 2), "single_target": "<= 1.3",
    "tasks_100_running_s": round(ours_100, 2), "swarm_100_converged_s": round(swarm_100, 2),
    "hundred_ratio": round(ours_100 / swarm_100, 2), "hundred_target": "<= 1.2",
    "agent_rss_20_tasks_mib": round(agent_rss_mib, 1), "agent_rss_target_mib": 30,
}))
PYEOF
