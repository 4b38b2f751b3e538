#!/usr/bin/env bash
# What scraping /metrics costs: DescribeTaskDefinition throughput with and without a
# concurrent scraper at 1 scrape/s, in interleaved rounds on one server.
#
#   bench/metrics.sh                       # build release binaries, run
#   SKIP_BUILD=1 ROUNDS=5 DURATION=10 CONCURRENCY=16 bench/metrics.sh
#
# Target (issue 13): scraping costs < 1 % of DescribeTaskDefinition throughput.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-16}
ROUNDS=${ROUNDS:-3}
TASK_DEFINITIONS=${TASK_DEFINITIONS:-1000}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
STEVEDORE=${STEVEDORE:-$TARGET_DIR/release/stevedore}
LOADGEN=${LOADGEN:-$TARGET_DIR/release/loadgen}
PY=${PYTHON:-python3}

if [ -z "${SKIP_BUILD:-}" ]; then
  echo "building release binaries (cargo build --release -p stevedore -p loadgen)" >&2
  cargo build --release -p stevedore -p loadgen >&2
fi

WORK=$(mktemp -d /tmp/stevedore-metrics-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
EP="http://127.0.0.1:$PORT"
env -u STEVEDORE_ADMIN_ACCESS_KEY_ID -u STEVEDORE_ADMIN_SECRET_ACCESS_KEY \
  "$STEVEDORE" server --no-lb --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" \
  >"$WORK/stevedore.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 300); do
  curl -fsS "$EP/health" >/dev/null 2>&1 && break
  sleep 0.1
done
KEY=$(awk -F' *= *' '/aws_access_key_id/ {print $2}' "$WORK/data/credentials")
SECRET=$(awk -F' *= *' '/aws_secret_access_key/ {print $2}' "$WORK/data/credentials")
load() { # op [args...]
  local op=$1
  shift
  "$LOADGEN" --endpoint "$EP" --access-key "$KEY" --secret-key "$SECRET" --region us-east-1 \
    --op "$op" --concurrency "$CONCURRENCY" "$@" | tail -n 1
}
rps() { "$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["rps"])' "$1"; }

# Some state, so the exposition has real series (API operations, store histograms).
load register-task-definition --duration-secs 600 --max-requests "$TASK_DEFINITIONS" >/dev/null
load describe-task-definition --duration-secs 2 --prepare >/dev/null # warm-up
BYTES=$(curl -fsS "$EP/metrics" | wc -c)
echo "exposition: $BYTES bytes" >&2

scraper() { # scrapes once a second until killed; counts scrapes in $WORK/scrapes
  while true; do
    curl -fsS -o /dev/null "$EP/metrics" && echo >>"$WORK/scrapes"
    sleep 1
  done
}

WITHOUT=() WITH=()
for r in $(seq "$ROUNDS"); do
  a=$(rps "$(load describe-task-definition --duration-secs "$DURATION")")
  scraper &
  SCRAPER=$!
  b=$(rps "$(load describe-task-definition --duration-secs "$DURATION")")
  kill "$SCRAPER" 2>/dev/null || true
  wait "$SCRAPER" 2>/dev/null || true
  echo "round $r: without scraper $a rps, with scraper $b rps" >&2
  WITHOUT+=("$a") WITH+=("$b")
done
SCRAPES=$(wc -l <"$WORK/scrapes" 2>/dev/null || echo 0)

"$PY" - "$SCRAPES" "$BYTES" "${WITHOUT[*]}" "${WITH[*]}" <<'PY'
import statistics, sys
scrapes, size = int(sys.argv[1]), int(sys.argv[2])
without = [float(x) for x in sys.argv[3].split()]
with_ = [float(x) for x in sys.argv[4].split()]
a, b = statistics.median(without), statistics.median(with_)
cost = (1 - b / a) * 100
print("| DescribeTaskDefinition | median rps | rounds |")
print("|---|---|---|")
print(f"| without scraper | {a:,.0f} | {', '.join(f'{x:,.0f}' for x in without)} |")
print(f"| with 1 scrape/s | {b:,.0f} | {', '.join(f'{x:,.0f}' for x in with_)} |")
print()
print(f"ratio with/without: {b / a:.4f} (scraping costs {cost:.2f} % of throughput; "
      f"target < 1 %: {'met' if cost < 1 else 'NOT met'}); {scrapes} scrapes of {size:,} bytes")
PY
