#!/usr/bin/env bash
# A/B control-plane regression check: two stevedore builds, same machine, one run.
#
#   BEFORE=/path/to/old/stevedore bench/control_plane_ab.sh   # AFTER: a fresh release build
#   SKIP_BUILD=1 BEFORE=... AFTER=... ROUNDS=3 DURATION=10 CONCURRENCY=16 bench/control_plane_ab.sh
#
# Each round starts each build in turn (order alternates between rounds so neither always
# runs on a warmer machine) on a fresh data dir, and drives DescribeTaskDefinition (one
# prepared family) then RegisterTaskDefinition (a new family per request) with
# target/release/loadgen for DURATION seconds each. It prints the median rps of each build
# per operation and the after/before ratio: issue 13 asks for "within 5 %" (ratio ≥ 0.95).
# Both binaries must accept `server --listen --data-dir --region --account-id`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/bench/lib/common.sh"
BEFORE=${BEFORE:?set BEFORE to the baseline stevedore binary}
AFTER=${AFTER:-$STEVEDORE}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-16}
BENCH_SETTINGS="BEFORE AFTER ROUNDS DURATION CONCURRENCY"
bench_header "$@"
bench_python
bench_build -p stevedore -p loadgen
bench_workdir ab
PID=""

measure() { # binary label round
  local bin=$1 label=$2 round=$3 port dir key secret
  port=$(free_port)
  dir="$WORK/$label-$round"
  env -u STEVEDORE_ADMIN_ACCESS_KEY_ID -u STEVEDORE_ADMIN_SECRET_ACCESS_KEY \
    "$bin" server --listen "127.0.0.1:$port" --data-dir "$dir" \
    --region us-east-1 --account-id 000000000000 >"$WORK/$label-$round.log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    sleep 0.1
  done
  key=$(awk -F' *= *' '/aws_access_key_id/ {print $2}' "$dir/credentials")
  secret=$(awk -F' *= *' '/aws_secret_access_key/ {print $2}' "$dir/credentials")
  for op in describe-task-definition register-task-definition; do
    local extra=()
    [ "$op" = describe-task-definition ] && extra=(--prepare)
    printf '%s %s %s ' "$label" "$round" "$op"
    "$LOADGEN" --endpoint "http://127.0.0.1:$port" --access-key "$key" --secret-key "$secret" \
      --region us-east-1 --op "$op" --concurrency "$CONCURRENCY" --duration-secs "$DURATION" \
      "${extra[@]}" | tail -n 1
  done
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  PID=""
}

for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then
    measure "$BEFORE" before "$round" >>"$WORK/results"
    measure "$AFTER" after "$round" >>"$WORK/results"
  else
    measure "$AFTER" after "$round" >>"$WORK/results"
    measure "$BEFORE" before "$round" >>"$WORK/results"
  fi
done

"$PY" - "$WORK/results" <<'PYEOF'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    label, _round, op, js = line.split(" ", 3)
    r = json.loads(js)
    runs.setdefault((op, label), []).append(r)
print("\n| op | before rps (median) | after rps (median) | after/before | p99 ms before / after | errors |")
print("|---|---:|---:|---:|---|---:|")
for op in ("describe-task-definition", "register-task-definition"):
    b, a = runs[(op, "before")], runs[(op, "after")]
    mb = statistics.median(r["rps"] for r in b)
    ma = statistics.median(r["rps"] for r in a)
    pb = statistics.median(r["p99_ms"] for r in b)
    pa = statistics.median(r["p99_ms"] for r in a)
    errs = sum(r["errors"] for r in a + b)
    print(f"| {op} | {mb:.0f} | {ma:.0f} | **{ma / mb:.3f}** | {pb} / {pa} | {errs} |")
PYEOF
bench_footer
