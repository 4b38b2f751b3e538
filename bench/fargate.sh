#!/usr/bin/env bash
# Fargate RunTask -> RUNNING (cached image) against a raw `docker run -d` with the same
# runtime and a comparable network setup (its own bridge network, a fixed IP), the same
# machine, one run; once per sandbox Docker offers (runsc when registered, and runc), so
# the sandbox's own overhead shows separately. Target: Fargate median <= 1.5x docker's.
#
#   bench/fargate.sh                 # release build first
#   SKIP_BUILD=1 ROUNDS=10 bench/fargate.sh
# Needs: a running dockerd, /bin/busybox (busybox-static), python3 with boto3.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/bench/lib/common.sh"
ROUNDS=${ROUNDS:-15}
BENCH_SETTINGS="ROUNDS"
bench_header "$@"
bench_python
bench_build -p stevedore

WORK=$(mktemp -d /tmp/stevedore-fargate-bench.XXXXXX)
LABEL=stevedore.bench=fargate
NET=sd-fargate-bench
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  docker ps -aq --filter "label=$LABEL" | xargs -r docker rm -f >/dev/null 2>&1 || true
  docker ps -aq --filter "label=com.amazonaws.ecs.cluster=arn:aws:ecs:us-east-1:000000000000:cluster/fargatebench" | xargs -r docker rm -f >/dev/null 2>&1 || true
  docker network rm "$NET" >/dev/null 2>&1 || true
  leave_networks
  rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/img" && cp /bin/busybox "$WORK/img/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox","httpd","-f","-p","80"]\n' > "$WORK/img/Dockerfile"
docker build -q -t stevedore-bench:1 "$WORK/img" >/dev/null
note_networks stevedore-awsvpc  # the server's Fargate tasks' bridge
docker network create --subnet 10.251.0.0/24 "$NET" >/dev/null

SANDBOXES=runc
docker info --format '{{json .Runtimes}}' | grep -q '"runsc"' && SANDBOXES="runsc runc"
RESULTS=()
for SB in $SANDBOXES; do
  PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  EP="http://127.0.0.1:$PORT"
  STEVEDORE_LOG=warn STEVEDORE_FARGATE_SANDBOX=$SB "$STEVEDORE" server --listen "127.0.0.1:$PORT" \
    --data-dir "$WORK/data-$SB" >"$WORK/server-$SB.log" 2>&1 &
  SERVER=$!
  PIDS+=("$SERVER")
  for _ in $(seq 1 100); do [ -s "$WORK/data-$SB/credentials" ] && curl -sf "$EP/health" >/dev/null && break; sleep 0.1; done
  RESULTS+=("$(AWS_SHARED_CREDENTIALS_FILE="$WORK/data-$SB/credentials" AWS_DEFAULT_REGION=us-east-1 \
    AWS_ENDPOINT_URL="$EP" AWS_ACCESS_KEY_ID= AWS_SECRET_ACCESS_KEY= \
    "$PY" - "$ROUNDS" "$SB" "$LABEL" "$NET" <<'PYEOF'
import json, os, statistics, subprocess, sys, time
import boto3
for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
    os.environ.pop(k, None)
rounds, sandbox, label, net = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ecs = boto3.client("ecs")
ecs.create_cluster(clusterName="fargatebench")
ecs.register_task_definition(family="bench", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
    cpu="256", memory="512", containerDefinitions=[{"name": "web", "image": "stevedore-bench:1",
    "essential": True, "stopTimeout": 2}])
net_cfg = {"awsvpcConfiguration": {"subnets": ["subnet-bench"]}}

def wait(arn, status, timeout=120, poll=0.01):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        t = ecs.describe_tasks(cluster="fargatebench", tasks=[arn])["tasks"][0]
        if t["lastStatus"] == status:
            return t
        if t["lastStatus"] == "STOPPED":
            sys.exit(f"the task stopped: {t.get('stoppedReason')}")
        time.sleep(poll)
    sys.exit(f"task not {status} in {timeout}s")

def run(first=False):
    # Right after the server starts, its Fargate side may still be probing Docker and
    # answers the first RunTask with failure reason AGENT: the first launch retries.
    end = time.monotonic() + 60
    while True:
        out = ecs.run_task(cluster="fargatebench", taskDefinition="bench", launchType="FARGATE",
                           networkConfiguration=net_cfg)
        if not out["failures"]:
            return out["tasks"][0]["taskArn"]
        if first and out["failures"][0].get("reason") == "AGENT" and time.monotonic() < end:
            time.sleep(0.2)
            continue
        sys.exit(f"failures: {out['failures']}")

# The first launch starts the cluster's hidden capacity: reported apart.
t0 = time.monotonic()
arn = run(first=True)
t = wait(arn, "RUNNING")
first = time.monotonic() - t0
attrs = {a["name"]: a.get("value") for a in t["attributes"]}
ecs.stop_task(cluster="fargatebench", task=arn)
wait(arn, "STOPPED", poll=0.05)
ours, docker = [], []
for i in range(rounds):
    t0 = time.monotonic()
    arn = run()
    wait(arn, "RUNNING")
    ours.append(time.monotonic() - t0)
    ecs.stop_task(cluster="fargatebench", task=arn)
    wait(arn, "STOPPED", poll=0.05)
    t0 = time.monotonic()
    cid = subprocess.run(["docker", "run", "-d", "-l", label, "--runtime", sandbox, "--network", net,
                          "--ip", f"10.251.0.{10 + i}", "--cpus", "0.25", "-m", "512m",
                          "stevedore-bench:1"], check=True, capture_output=True, text=True).stdout.strip()
    docker.append(time.monotonic() - t0)
    subprocess.run(["docker", "rm", "-f", cid], check=True, capture_output=True)
mo, md = statistics.median(ours), statistics.median(docker)
print(json.dumps({"sandbox": sandbox, "task_sandbox_attribute": attrs.get("stevedore.sandbox"),
    "first_launch_with_capacity_start_s": round(first, 3),
    "fargate_run_task_to_running_median_s": round(mo, 3), "docker_run_median_s": round(md, 3),
    "ratio": round(mo / md, 2), "target": "<= 1.5"}))
PYEOF
)")
  kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true
  docker ps -aq --filter "label=com.amazonaws.ecs.cluster=arn:aws:ecs:us-east-1:000000000000:cluster/fargatebench" | xargs -r docker rm -f >/dev/null 2>&1 || true
done
printf '%s\n' "${RESULTS[@]}"
"$PY" - "${RESULTS[@]}" <<'PYEOF'
import json, sys
rows = {json.loads(r)["sandbox"]: json.loads(r) for r in sys.argv[1:]}
if "runsc" in rows and "runc" in rows:
    print(json.dumps({"sandbox_overhead_fargate_runsc_over_runc": round(
        rows["runsc"]["fargate_run_task_to_running_median_s"] / rows["runc"]["fargate_run_task_to_running_median_s"], 2),
        "sandbox_overhead_docker_runsc_over_runc": round(
        rows["runsc"]["docker_run_median_s"] / rows["runc"]["docker_run_median_s"], 2)}))
PYEOF
bench_footer
