#!/usr/bin/env bash
# Issue 15's number: the server's RSS after 100,000 stopped tasks have expired is within
# 1.5x its RSS before them. A release server with a short stopped-task retention and
# hollow instances (`stevedore sim`); a service is scaled to BATCH tasks and back to 0,
# CYCLES times (the controller starts and stops them: no client round trip per task),
# then the run waits until no STOPPED task is listed (all expired) and settles.
#
#   bench/stopped_rss.sh                              # 20 x 5,000 = 100,000 tasks
#   SKIP_BUILD=1 CYCLES=2 BATCH=1000 bench/stopped_rss.sh
#
# "Before" is measured after a warm-up cycle of BATCH tasks has come and gone, so both
# figures include the allocator's and the caches' steady footprint; the cold RSS at start
# is printed too.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CYCLES=${CYCLES:-20}
BATCH=${BATCH:-5000}
RETENTION=${RETENTION:-30s}
INSTANCES=${INSTANCES:-20}
source "$ROOT/bench/lib/common.sh"
BENCH_SETTINGS="CYCLES BATCH RETENTION INSTANCES"
bench_header "$@"
bench_python
bench_build -p stevedore
bench_workdir stopped-rss
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
start_server --stopped-task-retention "$RETENTION"
CLUSTER=bench
create_cluster "$CLUSTER"
start_sim "$CLUSTER" "$INSTANCES"
"$PY" - "$CLUSTER" "$SERVER_PID" "$CYCLES" "$BATCH" <<'PYEOF'
import json, sys, time
import boto3

cluster, pid, cycles, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ecs = boto3.client("ecs")

def rss_mib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise SystemExit("no VmRSS")

def log(m):
    print(m, file=sys.stderr, flush=True)

def stopped_listed():
    n = 0
    for page in ecs.get_paginator("list_tasks").paginate(cluster=cluster, desiredStatus="STOPPED"):
        n += len(page["taskArns"])
    return n

def wait(pred, what, timeout=900):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {what}")

def counts():
    s = ecs.describe_services(cluster=cluster, services=["churn"])["services"][0]
    return s["runningCount"], s["pendingCount"]

def cycle(n):
    ecs.update_service(cluster=cluster, service="churn", desiredCount=n)
    wait(lambda: counts() == (n, 0), f"{n} running")
    ecs.update_service(cluster=cluster, service="churn", desiredCount=0)
    wait(lambda: counts() == (0, 0), "0 running")

def settle():
    wait(lambda: stopped_listed() == 0, "every stopped task to expire")
    time.sleep(10)

cold = rss_mib()
td = ecs.register_task_definition(family="churn", containerDefinitions=[
    {"name": "app", "image": "busybox", "cpu": 4, "memory": 8, "essential": True}])["taskDefinition"]["taskDefinitionArn"]
ecs.create_service(cluster=cluster, serviceName="churn", taskDefinition=td, desiredCount=0)
log(f"warm-up: {batch} tasks")
cycle(batch)
settle()
before = rss_mib()
peak = before
t0 = time.monotonic()
for i in range(cycles):
    cycle(batch)
    peak = max(peak, rss_mib())
    log(f"  cycle {i + 1}/{cycles}: {(i + 1) * batch} tasks stopped, RSS {rss_mib():.1f} MiB, {stopped_listed()} still listed")
churn_s = time.monotonic() - t0
settle()
after = rss_mib()
print(json.dumps({"stopped_tasks": cycles * batch, "cold_rss_mib": round(cold, 1), "before_rss_mib": round(before, 1),
                  "peak_rss_mib": round(peak, 1), "after_rss_mib": round(after, 1),
                  "after_over_before": round(after / before, 3), "target": 1.5, "met": after <= 1.5 * before,
                  "churn_s": round(churn_s, 1)}))
PYEOF
bench_footer
