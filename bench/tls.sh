#!/usr/bin/env bash
# What TLS costs: DescribeTaskDefinition throughput at CONCURRENCY keep-alive clients over
# http and over https on the same binary (two servers, one plain, one `--tls` with its
# generated CA), run one after the other on this machine; prints the https/http ratio
# (issue 15 asks for a cost of at most 15 %).
#
#   bench/tls.sh                          # builds release stevedore and loadgen
#   SKIP_BUILD=1 DURATION=2 bench/tls.sh  # a quick check that it works
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/bench/lib/common.sh"
DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-16}
BENCH_SETTINGS="DURATION CONCURRENCY"
bench_header "$@"
bench_python
bench_build -p stevedore -p loadgen
bench_workdir tls

# Starts a server in $WORK/$1 with the remaining arguments; sets PORT.
serve() {
  local dir=$WORK/$1
  shift
  PORT=$(free_port)
  STEVEDORE_LOG=warn "$STEVEDORE" server --listen "127.0.0.1:$PORT" --data-dir "$dir" --no-lb "$@" \
    >"$dir.log" 2>&1 &
  PIDS+=("$!")
  for _ in $(seq 1 300); do
    if [ -s "$dir/credentials" ] && curl -s -o /dev/null ${CA:+--cacert "$CA"} "$SCHEME://127.0.0.1:$PORT/health"; then
      return 0
    fi
    sleep 0.1
  done
  echo "server in $dir did not start:" >&2
  tail -20 "$dir.log" >&2
  exit 1
}

# Runs loadgen against $1 (an endpoint) with the data dir $2's credentials; prints its JSON.
load() {
  local key secret
  key=$(awk -F' *= *' '/aws_access_key_id/ {print $2}' "$2/credentials")
  secret=$(awk -F' *= *' '/aws_secret_access_key/ {print $2}' "$2/credentials")
  AWS_ACCESS_KEY_ID=$key AWS_SECRET_ACCESS_KEY=$secret "$LOADGEN" --endpoint "$1" \
    --op describe-task-definition --concurrency "$CONCURRENCY" --duration-secs "$DURATION" \
    ${CA:+--ca-file "$CA"}
}

rps() { "$PY" -c 'import json,sys; print(json.loads(sys.stdin.read())["rps"])'; }

SCHEME=http CA="" serve plain
PLAIN=$(SCHEME=http CA="" load "http://127.0.0.1:$PORT" "$WORK/plain")
SCHEME=https CA="$WORK/tls/ca.crt" serve tls --tls
TLS=$(SCHEME=https CA="$WORK/tls/ca.crt" load "https://127.0.0.1:$PORT" "$WORK/tls")

echo "| transport | DescribeTaskDefinition (loadgen JSON) |"
echo "|---|---|"
echo "| http  | \`$PLAIN\` |"
echo "| https | \`$TLS\` |"
echo
"$PY" - "$(echo "$PLAIN" | rps)" "$(echo "$TLS" | rps)" <<'PY'
import sys
plain, tls = float(sys.argv[1]), float(sys.argv[2])
ratio = tls / plain if plain else 0.0
cost = (1 - ratio) * 100
verdict = "within" if cost <= 15 else "over"
print(f"https/http throughput ratio: {ratio:.3f} (TLS costs {cost:.1f} %, {verdict} the 15 % budget)")
PY
