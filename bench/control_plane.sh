#!/usr/bin/env bash
# Control-plane benchmark: stevedore vs moto on the same signed ECS calls.
#
#   bench/control_plane.sh            # build release binaries, run everything
#   DURATION=5 CONCURRENCY=8 bench/control_plane.sh
#   SKIP_BUILD=1 bench/control_plane.sh
#   MOTO_SERVER=/path/to/moto_server bench/control_plane.sh   (NO_MOTO=1 to skip moto)
#
# moto runs in both server modes its documentation describes (docs.getmoto.org, "Server
# mode"), and the faster one is the one compared: `moto_server -H 127.0.0.1` (Werkzeug's
# threaded server, reloader off, which are its defaults) and `ThreadedMotoServer` (the
# same threaded Werkzeug server started from Python), the latter with Werkzeug's
# per-request log line turned off (logging level ERROR), which is pure overhead here.
#
# Measures, with target/release/loadgen (fresh SigV4 signature per request, keep-alive):
#   DescribeTaskDefinition and RegisterTaskDefinition throughput/latency on both servers,
#   stevedore's RSS (VmRSS) idle after start and after 10,000 RegisterTaskDefinition calls.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
source "$ROOT/bench/lib/common.sh"

DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-16}
REGISTRATIONS=${REGISTRATIONS:-10000}
BENCH_SETTINGS="DURATION CONCURRENCY REGISTRATIONS NO_MOTO"
bench_header "$@"
PY=${PYTHON:-python3}
bench_build -p stevedore -p loadgen

WORK=$(mktemp -d /tmp/stevedore-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && wait "$p" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_http() { # url, seconds
  local url=$1 deadline=$((SECONDS + $2))
  while [ $SECONDS -lt $deadline ]; do
    # Any HTTP answer (even 4xx) means the server is up.
    if "$PY" -c "
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=1)
except urllib.error.HTTPError:
    pass
" "$url" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "timed out waiting for $url" >&2
  return 1
}

rss_mib() { # pid
  awk '/^VmRSS:/ {printf "%.1f", $2/1024}' "/proc/$1/status"
}

field() { # json-line, key
  "$PY" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"
}

run_load() { # endpoint key secret op [extra args...]
  local endpoint=$1 key=$2 secret=$3 op=$4
  shift 4
  "$LOADGEN" --endpoint "$endpoint" --access-key "$key" --secret-key "$secret" \
    --region us-east-1 --op "$op" --concurrency "$CONCURRENCY" --duration-secs "$DURATION" "$@" \
    | tail -n 1
}

# --- stevedore -----------------------------------------------------------------------
S_PORT=$(free_port)
S_DIR="$WORK/stevedore-data"
env -u STEVEDORE_ADMIN_ACCESS_KEY_ID -u STEVEDORE_ADMIN_SECRET_ACCESS_KEY \
  "$STEVEDORE" server --listen "127.0.0.1:$S_PORT" --data-dir "$S_DIR" \
  --region us-east-1 --account-id 000000000000 >"$WORK/stevedore.log" 2>&1 &
S_PID=$!
PIDS+=("$S_PID")
wait_http "http://127.0.0.1:$S_PORT/health" 30
sleep 1
S_KEY=$(awk -F' *= *' '/aws_access_key_id/ {print $2}' "$S_DIR/credentials")
S_SECRET=$(awk -F' *= *' '/aws_secret_access_key/ {print $2}' "$S_DIR/credentials")
S_EP="http://127.0.0.1:$S_PORT"
RSS_IDLE=$(rss_mib "$S_PID")

echo "stevedore pid $S_PID on $S_EP; idle RSS ${RSS_IDLE} MiB" >&2
echo "registering $REGISTRATIONS task definitions for the RSS measurement..." >&2
FILL=$("$LOADGEN" --endpoint "$S_EP" --access-key "$S_KEY" --secret-key "$S_SECRET" \
  --op register-task-definition --concurrency "$CONCURRENCY" --duration-secs 600 \
  --max-requests "$REGISTRATIONS" | tail -n 1)
echo "  $FILL" >&2
RSS_FULL=$(rss_mib "$S_PID")

S_DESC=$(run_load "$S_EP" "$S_KEY" "$S_SECRET" describe-task-definition --prepare)
echo "  stevedore describe: $S_DESC" >&2
S_REG=$(run_load "$S_EP" "$S_KEY" "$S_SECRET" register-task-definition)
echo "  stevedore register: $S_REG" >&2
RSS_END=$(rss_mib "$S_PID")

# --- moto ----------------------------------------------------------------------------
MOTO=${MOTO_SERVER:-}
if [ -z "$MOTO" ]; then
  for c in "$ROOT/.venv/bin/moto_server" /tmp/venv/bin/moto_server "$(command -v moto_server || true)"; do
    if [ -n "$c" ] && [ -x "$c" ]; then MOTO=$c; break; fi
  done
fi
M_ROWS=()
if [ -z "${NO_MOTO:-}" ] && [ -n "$MOTO" ]; then
  MOTO_PY=$(dirname "$MOTO")/python
  [ -x "$MOTO_PY" ] || MOTO_PY=python3
  echo "moto $("$MOTO_PY" -c 'import moto; print(moto.__version__)')" >&2
  for mode in moto_server ThreadedMotoServer; do
    M_PORT=$(free_port)
    if [ $mode = moto_server ]; then
      "$MOTO" -H 127.0.0.1 -p "$M_PORT" >"$WORK/moto-$mode.log" 2>&1 &
    else
      "$MOTO_PY" -c 'import logging, signal, sys
logging.getLogger("werkzeug").setLevel(logging.ERROR)
from moto.server import ThreadedMotoServer
ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False).start()
signal.pause()' "$M_PORT" >"$WORK/moto-$mode.log" 2>&1 &
    fi
    M_PID=$!
    PIDS+=("$M_PID")
    wait_http "http://127.0.0.1:$M_PORT/" 30
    M_EP="http://127.0.0.1:$M_PORT"
    M_DESC=$(run_load "$M_EP" test test describe-task-definition --prepare)
    echo "  $mode describe: $M_DESC" >&2
    M_REG=$(run_load "$M_EP" test test register-task-definition)
    echo "  $mode register: $M_REG" >&2
    M_ROWS+=("$mode" "$M_DESC" "$M_REG")
    kill "$M_PID" 2>/dev/null || true
    wait "$M_PID" 2>/dev/null || true
  done
else
  echo "moto_server not found (or NO_MOTO set): skipping the moto comparison" >&2
fi

# --- report --------------------------------------------------------------------------
"$PY" - "$S_DESC" "$S_REG" "$RSS_IDLE" "$RSS_FULL" "$RSS_END" \
  "$REGISTRATIONS" "$CONCURRENCY" "$DURATION" "$FILL" "${M_ROWS[@]}" <<'PYEOF'
import json, sys
s_desc, s_reg = (json.loads(a) for a in sys.argv[1:3])
rss_idle, rss_full, rss_end = (float(x) for x in sys.argv[3:6])
n, conc, dur = sys.argv[6:9]
fill = json.loads(sys.argv[9])
rest = sys.argv[10:]
motos = [(rest[i], json.loads(rest[i + 1]), json.loads(rest[i + 2])) for i in range(0, len(rest), 3)]
targets = {
    "describe-task-definition": (5000, 10.0),
    "register-task-definition": (1000, 25.0),
}
print(f"\nconcurrency {conc}, {dur} s per run, fresh SigV4 signature per request\n")
print(f"| op | server | requests | errors | rps | p50 ms | p99 ms | target | ok |")
print(f"|---|---|---:|---:|---:|---:|---:|---|---|")
for k, s in enumerate((s_desc, s_reg)):
    rps_t, p99_t = targets[s["op"]]
    ok = s["rps"] >= rps_t and s["p99_ms"] <= p99_t and s["errors"] == 0
    print(f"| {s['op']} | stevedore | {s['requests']:,} | {s['errors']} | {s['rps']:,.0f} | {s['p50_ms']} | {s['p99_ms']} "
          f"| >= {rps_t} rps, p99 <= {p99_t} ms | {'yes' if ok else 'NO'} |")
    runs = [(mode, (desc, reg)[k]) for mode, desc, reg in motos]
    best = max((m["rps"] for _, m in runs), default=0)
    for mode, m in runs:
        ratio = s["rps"] / m["rps"] if m["rps"] else float("inf")
        note = " (moto's best)" if m["rps"] == best and len(runs) > 1 else ""
        print(f"| {m['op']} | moto, {mode} | {m['requests']:,} | {m['errors']} | {m['rps']:,.0f} | {m['p50_ms']} | {m['p99_ms']} "
              f"| stevedore/moto = {ratio:.1f}x{note} | |")
print()
print(f"| stevedore RSS | MiB | target | ok |")
print(f"|---|---:|---|---|")
print(f"| idle after start | {rss_idle:.1f} | <= 30 | {'yes' if rss_idle <= 30 else 'NO'} |")
print(f"| after {n} RegisterTaskDefinition ({fill['errors']} errors) | {rss_full:.1f} | <= 100 | {'yes' if rss_full <= 100 else 'NO'} |")
print(f"| at the end of all runs | {rss_end:.1f} | | |")
PYEOF
bench_footer
