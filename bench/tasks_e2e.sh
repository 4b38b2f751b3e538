#!/usr/bin/env bash
# Task lifecycle end to end on hollow instances: RunTask → placement → channel payload →
# SubmitTaskStateChange → RUNNING, then StopTask → STOPPED, against a real
# `stevedore server` and `stevedore sim` (no containers run).
#
#   bench/tasks_e2e.sh                          # release build, 1,000 instances, 1,000 tasks
#   INSTANCES=10000 TASKS=5000 bench/tasks_e2e.sh
#   SKIP_BUILD=1 STEVEDORE=target/debug/stevedore INSTANCES=100 TASKS=100 bench/tasks_e2e.sh
#
# Measures: time for INSTANCES hollow instances to register and connect; the sim's RSS per
# instance; RunTask throughput (count=10 per call, CONCURRENCY callers) and the time until
# every task is RUNNING; StopTask throughput and the time until every task is STOPPED;
# the server's RSS at the end. Prints one JSON line on stdout, progress on stderr.
# Requirements: python3 with boto3 (or PYTHON=/path/to/python).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

INSTANCES=${INSTANCES:-1000}
TASKS=${TASKS:-1000}
CONCURRENCY=${CONCURRENCY:-8}
# RunTask calls come from the Rust load generator (boto3's own overhead would cap the
# rate below the server's); STOP=0 skips the stop phase (for very large TASKS).
STOP=${STOP:-1}
source "$ROOT/bench/lib/common.sh"
BENCH_SETTINGS="INSTANCES TASKS CONCURRENCY STOP"
bench_header "$@"
bench_python
bench_build -p stevedore -p loadgen
bench_workdir tasks-e2e

# Each hollow instance holds one socket, and so does the server for it.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
start_server
CLUSTER=bench
create_cluster "$CLUSTER"

echo "starting $INSTANCES hollow instances..." >&2
START=$(date +%s.%N)
start_sim "$CLUSTER" "$INSTANCES"
CONNECTED_S=$("$PY" -c "import time; print(round(time.time() - $START, 2))")
sleep 2
SIM_RSS_KIB=$(awk '/^VmRSS:/ {print $2}' "/proc/$SIM_PID/status")
echo "  all connected after ${CONNECTED_S}s; sim RSS ${SIM_RSS_KIB} KiB" >&2

export LOADGEN STOP EP
"$PY" - "$CLUSTER" "$TASKS" "$CONCURRENCY" "$INSTANCES" "$CONNECTED_S" "$SIM_RSS_KIB" "$SERVER_PID" <<'PYEOF'
import concurrent.futures as cf
import configparser, json, os, subprocess, sys, time
import boto3, botocore.config

cluster, tasks, conc, instances = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
connected_s, sim_rss_kib, server_pid = float(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
ecs = boto3.client("ecs", config=botocore.config.Config(max_pool_connections=conc * 2, retries={"max_attempts": 10, "mode": "standard"}))
family = ecs.register_task_definition(
    family="bench-web",
    containerDefinitions=[{"name": "web", "image": "nginx", "cpu": 16, "memory": 32, "essential": True,
                           "portMappings": [{"containerPort": 80, "hostPort": 0}]}],
)["taskDefinition"]["family"]

def log(msg):
    print(msg, file=sys.stderr, flush=True)

def wait_all(arns, status, timeout=600):
    deadline = time.monotonic() + timeout
    pending = list(arns)
    while pending and time.monotonic() < deadline:
        still = []
        for i in range(0, len(pending), 100):
            out = ecs.describe_tasks(cluster=cluster, tasks=pending[i:i + 100])
            still += [t["taskArn"] for t in out["tasks"] if t["lastStatus"] != status]
        pending = still
        if pending:
            time.sleep(0.2)
    if pending:
        raise SystemExit(f"{len(pending)} tasks not {status} after {timeout}s")

def run_batch(n):
    out = ecs.run_task(cluster=cluster, taskDefinition=family, count=n)
    return [t["taskArn"] for t in out["tasks"]], len(out["failures"])

batches = [10] * (tasks // 10) + ([tasks % 10] if tasks % 10 else [])
loadgen = os.environ.get("LOADGEN", "")
t0 = time.monotonic()
arns, failures = [], 0
if loadgen and os.path.exists(loadgen) and tasks % 10 == 0:
    creds = configparser.ConfigParser()
    creds.read(os.environ["AWS_SHARED_CREDENTIALS_FILE"])
    c = creds["default"]
    out = subprocess.run([loadgen, "--endpoint", os.environ["EP"], "--access-key", c["aws_access_key_id"],
                          "--secret-key", c["aws_secret_access_key"], "--op", "run-task", "--cluster", cluster,
                          "--family", family, "--count", "10", "--concurrency", str(conc),
                          "--duration-secs", "3600", "--max-requests", str(tasks // 10)],
                         check=True, capture_output=True, text=True).stdout
    lg = json.loads(out.strip().splitlines()[-1])
    placed, failures = lg["placed"], lg["errors"]
else:
    with cf.ThreadPoolExecutor(conc) as pool:
        for a, f in pool.map(run_batch, batches):
            arns += a
            failures += f
    placed = len(arns)
placed_s = time.monotonic() - t0
log(f"  placed {placed} tasks ({failures} failures) in {placed_s:.2f}s")
# Every task RUNNING, as the hollow instances reported it (the cluster's count).
deadline = time.monotonic() + 900
while time.monotonic() < deadline:
    cl = ecs.describe_clusters(clusters=[cluster])["clusters"][0]
    if cl["runningTasksCount"] >= placed:
        break
    time.sleep(0.1)
else:
    raise SystemExit(f"only {cl['runningTasksCount']} of {placed} tasks RUNNING")
running_s = time.monotonic() - t0
log(f"  all RUNNING after {running_s:.2f}s")
with open(f"/proc/{server_pid}/status") as f:
    server_rss_running_mib = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024
if os.environ.get("STOP", "1") == "1" and not arns:
    for page in ecs.get_paginator("list_tasks").paginate(cluster=cluster):
        arns += page["taskArns"]

stop_calls_s = stopped_s = float("nan")
if os.environ.get("STOP", "1") == "1":
    t1 = time.monotonic()
    with cf.ThreadPoolExecutor(conc) as pool:
        list(pool.map(lambda a: ecs.stop_task(cluster=cluster, task=a, reason="bench"), arns))
    stop_calls_s = time.monotonic() - t1
    wait_all(arns, "STOPPED")
    stopped_s = time.monotonic() - t1
    log(f"  all STOPPED after {stopped_s:.2f}s")

with open(f"/proc/{server_pid}/status") as f:
    server_rss_mib = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024
print(json.dumps({
    "instances": instances,
    "tasks": placed,
    "placement_failures": failures,
    "connect_all_s": connected_s,
    "sim_rss_kib_per_instance": round(sim_rss_kib / instances, 1),
    "run_task_calls_per_s": round(len(batches) / placed_s, 1),
    "tasks_placed_per_s": round(placed / placed_s, 1),
    "run_to_all_running_s": round(running_s, 2),
    "tasks_running_per_s": round(placed / running_s, 1),
    "server_rss_all_running_mib": round(server_rss_running_mib, 1),
    "stop_task_calls_per_s": round(len(arns) / stop_calls_s, 1) if stop_calls_s == stop_calls_s else None,
    "stop_to_all_stopped_s": round(stopped_s, 2) if stopped_s == stopped_s else None,
    "server_rss_mib": round(server_rss_mib, 1),
}))
PYEOF
bench_footer
