#!/usr/bin/env bash
# Stevedore on etcd (issue 20): failover time and API throughput over two replicas,
# beside SQLite's figures from the same run.
#
#   bench/etcd.sh                      # build release binaries, run everything
#   DURATION=5 CONCURRENCY=16 SKIP_BUILD=1 bench/etcd.sh
#
# Starts three etcd members (Debian etcd-server) and two `stevedore server` replicas on
# them, as docs/etcd.md describes, then measures with target/release/loadgen (fresh SigV4
# signature per request, keep-alive):
#   - DescribeTaskDefinition and RegisterTaskDefinition at CONCURRENCY clients split
#     evenly over the two replicas (two loadgens at once; their rps added), and the same
#     calls at CONCURRENCY clients against one `stevedore server` on SQLite;
#   - failover: the leader replica is killed with SIGKILL, and the time until the other
#     logs `This replica is now the leader.` (the moment it starts the controllers, whose
#     first round follows at once) with the default lease TTL (10 s); meanwhile a loadgen
#     of DescribeTaskDefinition runs against the surviving replica and its errors are
#     reported (API calls must not be interrupted).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
source "$ROOT/bench/lib/common.sh"

DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-16}
LEASE_TTL=${LEASE_TTL:-10}
BENCH_SETTINGS="DURATION CONCURRENCY LEASE_TTL"
bench_header "$@"
PY=${PYTHON:-python3}
command -v etcd >/dev/null || { echo "etcd is needed (apt-get install etcd-server)" >&2; exit 1; }
bench_build -p stevedore -p loadgen
bench_workdir etcd

KEY=AKIASTEVEDOREBENCH01
SECRET=stevedore-etcd-bench-secret-key-000000001
HALF=$((CONCURRENCY / 2))

load() { # endpoint op concurrency duration [extra...]
  local ep=$1 op=$2 conc=$3 dur=$4
  shift 4
  "$LOADGEN" --endpoint "$ep" --access-key "$KEY" --secret-key "$SECRET" --region us-east-1 \
    --op "$op" --concurrency "$conc" --duration-secs "$dur" "$@" | tail -n 1
}

wait_log() { # file text seconds
  local deadline=$((SECONDS + $3))
  until grep -q "$2" "$1" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { echo "timed out waiting for '$2' in $1" >&2; tail -20 "$1" >&2; exit 1; }
    sleep 0.05
  done
}

wait_health() { # endpoint
  for _ in $(seq 1 300); do
    "$PY" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1] + '/health', timeout=1)" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$1 did not become healthy" >&2
  exit 1
}

# --- etcd: three members --------------------------------------------------------------
CLIENTS=() PEERS=()
for i in 0 1 2; do CLIENTS+=("$(free_port)"); PEERS+=("$(free_port)"); done
CLUSTER=""
for i in 0 1 2; do CLUSTER="$CLUSTER${CLUSTER:+,}m$i=http://127.0.0.1:${PEERS[$i]}"; done
for i in 0 1 2; do
  etcd --name "m$i" --data-dir "$WORK/etcd-m$i" \
    --listen-client-urls "http://127.0.0.1:${CLIENTS[$i]}" --advertise-client-urls "http://127.0.0.1:${CLIENTS[$i]}" \
    --listen-peer-urls "http://127.0.0.1:${PEERS[$i]}" --initial-advertise-peer-urls "http://127.0.0.1:${PEERS[$i]}" \
    --initial-cluster "$CLUSTER" --initial-cluster-state new \
    --max-txn-ops 10000 --max-request-bytes 10485760 >"$WORK/etcd-m$i.log" 2>&1 &
  PIDS+=("$!")
done
STORE="etcd://127.0.0.1:${CLIENTS[0]},127.0.0.1:${CLIENTS[1]},127.0.0.1:${CLIENTS[2]}"
for i in 0 1 2; do
  for _ in $(seq 1 300); do
    "$PY" -c "import urllib.request,sys; assert b'\"true\"' in urllib.request.urlopen(sys.argv[1], timeout=1).read()" \
      "http://127.0.0.1:${CLIENTS[$i]}/health" 2>/dev/null && break
    sleep 0.1
  done
done

# --- two replicas ---------------------------------------------------------------------
replica() { # name -> sets R_PID, R_EP
  local port
  port=$(free_port)
  STEVEDORE_ADMIN_ACCESS_KEY_ID=$KEY STEVEDORE_ADMIN_SECRET_ACCESS_KEY=$SECRET STEVEDORE_LOG=info \
    "$STEVEDORE" server --store "$STORE" --listen "127.0.0.1:$port" --data-dir "$WORK/$1" --no-lb \
    --leader-lease-ttl "$LEASE_TTL" --region us-east-1 --account-id 000000000000 >"$WORK/$1.log" 2>&1 &
  R_PID=$!
  PIDS+=("$R_PID")
  R_EP="http://127.0.0.1:$port"
  wait_health "$R_EP"
}
replica a; A_PID=$R_PID; A_EP=$R_EP
wait_log "$WORK/a.log" "This replica is now the leader." 30
replica b; B_PID=$R_PID; B_EP=$R_EP
echo "replicas: a $A_EP (leader), b $B_EP on $STORE" >&2

# Both replicas at once: CONCURRENCY clients split over the two.
pair() { # op [extra...]
  local op=$1
  shift
  load "$A_EP" "$op" "$HALF" "$DURATION" "$@" >"$WORK/pair-a.json" &
  local la=$!
  load "$B_EP" "$op" "$((CONCURRENCY - HALF))" "$DURATION" "$@" >"$WORK/pair-b.json"
  wait "$la"
  "$PY" -c 'import json,sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
print(json.dumps({"op": a["op"], "requests": a["requests"] + b["requests"], "errors": a["errors"] + b["errors"],
  "rps": a["rps"] + b["rps"], "p50_ms": max(a["p50_ms"], b["p50_ms"]), "p99_ms": max(a["p99_ms"], b["p99_ms"])}))' \
    "$WORK/pair-a.json" "$WORK/pair-b.json"
}
# The family that describe targets, registered once through a.
load "$A_EP" describe-task-definition 1 1 --family lg --prepare >/dev/null
E_DESC=$(pair describe-task-definition --family lg)
echo "  etcd describe: $E_DESC" >&2
E_REG=$(pair register-task-definition)
echo "  etcd register: $E_REG" >&2

# --- failover ---------------------------------------------------------------------------
load "$B_EP" describe-task-definition 4 $((LEASE_TTL + 8)) --family lg >"$WORK/during.json" &
DURING=$!
sleep 2
KILLED=$("$PY" -c 'import time; print(time.monotonic())')
kill -9 "$A_PID"
wait_log "$WORK/b.log" "This replica is now the leader." $((LEASE_TTL + 30))
LED=$("$PY" -c 'import time; print(time.monotonic())')
wait "$DURING"
FAILOVER=$("$PY" -c "print(f'{$LED - $KILLED:.2f}')")
echo "  failover: ${FAILOVER} s; survivor's API during it: $(cat "$WORK/during.json")" >&2

# --- SQLite, same run -------------------------------------------------------------------
kill "$B_PID" 2>/dev/null || true
start_server --region us-east-1 --account-id 000000000000 --no-lb
S_KEY=$(awk -F' *= *' '/aws_access_key_id/ {print $2}' "$DATA/credentials")
S_SECRET=$(awk -F' *= *' '/aws_secret_access_key/ {print $2}' "$DATA/credentials")
KEY=$S_KEY SECRET=$S_SECRET
S_DESC=$(load "$EP" describe-task-definition "$CONCURRENCY" "$DURATION" --prepare)
echo "  sqlite describe: $S_DESC" >&2
S_REG=$(load "$EP" register-task-definition "$CONCURRENCY" "$DURATION")
echo "  sqlite register: $S_REG" >&2

# --- report -----------------------------------------------------------------------------
"$PY" - "$E_DESC" "$E_REG" "$S_DESC" "$S_REG" "$FAILOVER" "$(cat "$WORK/during.json")" \
  "$CONCURRENCY" "$DURATION" "$LEASE_TTL" <<'PYEOF'
import json, sys
e_desc, e_reg, s_desc, s_reg = (json.loads(a) for a in sys.argv[1:5])
failover, during = float(sys.argv[5]), json.loads(sys.argv[6])
conc, dur, ttl = sys.argv[7:10]
targets = {"describe-task-definition": 10000, "register-task-definition": 1500}
print(f"\n{conc} clients, {dur} s per run, fresh SigV4 signature per request\n")
print("| op | store | requests | errors | rps | p50 ms | p99 ms | etcd/SQLite | target (etcd) | ok |")
print("|---|---|---:|---:|---:|---:|---:|---:|---|---|")
for e, s in ((e_desc, s_desc), (e_reg, s_reg)):
    t = targets[e["op"]]
    ok = e["rps"] >= t and e["errors"] == 0
    print(f"| {e['op']} | etcd, 3 members, 2 replicas | {e['requests']:,} | {e['errors']} | {e['rps']:,.0f} | {e['p50_ms']} | {e['p99_ms']} "
          f"| {e['rps'] / s['rps']:.2f} | >= {t:,} rps | {'yes' if ok else 'NO'} |")
    print(f"| {s['op']} | SQLite, 1 server | {s['requests']:,} | {s['errors']} | {s['rps']:,.0f} | {s['p50_ms']} | {s['p99_ms']} | | | |")
print()
print(f"| failover (lease TTL {ttl} s) | figure | target | ok |")
print("|---|---:|---|---|")
print(f"| leader killed (SIGKILL) -> the other leads and starts the controllers | {failover:.2f} s | <= 12 s | {'yes' if failover <= 12 else 'NO'} |")
print(f"| DescribeTaskDefinition on the survivor meanwhile | {during['requests']:,} requests, {during['errors']} errors | 0 errors | {'yes' if during['errors'] == 0 else 'NO'} |")
PYEOF
bench_footer
