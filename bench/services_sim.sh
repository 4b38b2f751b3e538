#!/usr/bin/env bash
# A large service on hollow instances: CreateService with DESIRED tasks on INSTANCES
# `stevedore sim` instances, timed until the service is steady (one COMPLETED deployment,
# runningCount == desiredCount), then a rolling update of the whole service timed the same
# way. Real server, real store, real channel; no containers run.
#
#   bench/services_sim.sh                                  # 10,000 instances, 5,000 tasks
#   SKIP_BUILD=1 INSTANCES=100 DESIRED=200 bench/services_sim.sh
#
# Target (issue #6): 5,000 tasks steady in <= 10 s on 10,000 hollow instances.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
INSTANCES=${INSTANCES:-10000}
DESIRED=${DESIRED:-5000}
source "$ROOT/bench/lib/common.sh"
BENCH_SETTINGS="INSTANCES DESIRED"
bench_header "$@"
bench_python
bench_build -p stevedore
bench_workdir services-sim
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
start_server
CLUSTER=bench
create_cluster "$CLUSTER"
echo "starting $INSTANCES hollow instances..." >&2
start_sim "$CLUSTER" "$INSTANCES"
echo "  connected" >&2

"$PY" - "$CLUSTER" "$DESIRED" "$SERVER_PID" "$INSTANCES" <<'PYEOF'
import json, sys, time
import boto3

cluster, desired, server_pid, instances = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
ecs = boto3.client("ecs")
fam = "bench-svc"
td = [ecs.register_task_definition(
    family=fam,
    containerDefinitions=[{"name": "web", "image": "nginx", "cpu": 16, "memory": 32, "essential": True,
                           "environment": [{"name": "V", "value": str(v)}],
                           "portMappings": [{"containerPort": 80, "hostPort": 0}]}],
)["taskDefinition"]["taskDefinitionArn"] for v in (1, 2)]

def log(m):
    print(m, file=sys.stderr, flush=True)

def wait_steady(want_td, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = ecs.describe_services(cluster=cluster, services=["big"])["services"][0]
        d = s["deployments"]
        if len(d) == 1 and d[0].get("rolloutState") == "COMPLETED" and s["runningCount"] == desired and s["taskDefinition"] == want_td:
            return
        time.sleep(0.05)
    raise SystemExit(f"not steady within {timeout}s: running {s['runningCount']} pending {s['pendingCount']}")

t0 = time.monotonic()
ecs.create_service(cluster=cluster, serviceName="big", taskDefinition=td[0], desiredCount=desired)
wait_steady(td[0])
create_s = time.monotonic() - t0
log(f"  CreateService -> steady with {desired} tasks: {create_s:.2f} s")
t0 = time.monotonic()
ecs.update_service(cluster=cluster, service="big", taskDefinition=td[1])
wait_steady(td[1])
update_s = time.monotonic() - t0
log(f"  rolling update (min 100%, max 200%) of {desired} tasks -> steady: {update_s:.2f} s")
rss = 0
with open(f"/proc/{server_pid}/status") as f:
    for line in f:
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
print(json.dumps({"instances": instances, "desired": desired, "create_to_steady_s": round(create_s, 2),
                  "rolling_update_s": round(update_s, 2), "target_s": 10.0,
                  "ratio_to_target": round(create_s / 10.0, 3), "server_rss_mib": round(rss / 1024, 1)}))
PYEOF
bench_footer
