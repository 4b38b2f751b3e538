#!/usr/bin/env bash
# What TLS costs: DescribeTaskDefinition throughput at CONCURRENCY keep-alive clients over
# http and over https on the same binary (two servers, one plain, one `--tls` with its
# generated CA), run one after the other on this machine; prints the https/http ratio
# (issue 15 asks for a cost of at most 15 %); and registry blob pull MB/s (one PULL_MIB
# random blob, best of 3 curl GETs) over http and https (at most 10 %; PULL_MIB=0 skips,
# as does a missing aws CLI, which fetches the registry password).
#
#   bench/tls.sh                          # builds release stevedore and loadgen
#   SKIP_BUILD=1 DURATION=2 bench/tls.sh  # a quick check that it works
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/bench/lib/common.sh"
DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-16}
PULL_MIB=${PULL_MIB:-256}
AWS=${AWS:-$(command -v aws || echo "$ROOT/.venv/bin/aws")}
BENCH_SETTINGS="DURATION CONCURRENCY PULL_MIB"
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

# Pushes $WORK/blob to the registry at $1 (data dir $2) and prints the best of 3 pull
# speeds in MB/s.
pull_mbps() {
  local ep=$1 dir=$2 pw loc digest best=0 speed auth
  local -a awsenv=(AWS_ENDPOINT_URL="$ep" AWS_SHARED_CREDENTIALS_FILE="$dir/credentials"
    AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null)
  [ -n "${CA:-}" ] && awsenv+=(AWS_CA_BUNDLE="$CA")
  env "${awsenv[@]}" "$AWS" ecr create-repository --repository-name bench-tls >/dev/null
  pw=$(env "${awsenv[@]}" "$AWS" ecr get-login-password)
  auth="AWS:$pw"
  digest="sha256:$(sha256sum "$WORK/blob" | cut -d' ' -f1)"
  loc=$(curl -sf ${CA:+--cacert "$CA"} -u "$auth" -X POST -D - -o /dev/null "$ep/v2/bench-tls/blobs/uploads/" \
    | awk 'tolower($1)=="location:" {print $2}' | tr -d '\r')
  case $loc in http*) ;; *) loc="$ep$loc" ;; esac
  case $loc in *\?*) loc="$loc&digest=$digest" ;; *) loc="$loc?digest=$digest" ;; esac
  curl -sf ${CA:+--cacert "$CA"} -u "$auth" -X PUT -H 'Content-Type: application/octet-stream' \
    --data-binary @"$WORK/blob" -o /dev/null "$loc"
  for _ in 1 2 3; do
    speed=$(curl -sf ${CA:+--cacert "$CA"} -u "$auth" -o /dev/null -w '%{speed_download}' -L \
      "$ep/v2/bench-tls/blobs/$digest")
    best=$("$PY" -c "print(max(float('$best'), float('$speed') / 1e6))")
  done
  printf '%.1f\n' "$best"
}

rps() { "$PY" -c 'import json,sys; print(json.loads(sys.stdin.read())["rps"])'; }

PULL=0
if [ "$PULL_MIB" -gt 0 ] && [ -x "$AWS" ]; then
  PULL=1
  head -c "$((PULL_MIB * 1048576))" /dev/urandom >"$WORK/blob"
fi
SCHEME=http CA="" serve plain
PLAIN=$(SCHEME=http CA="" load "http://127.0.0.1:$PORT" "$WORK/plain")
[ "$PULL" = 1 ] && PLAIN_PULL=$(CA="" pull_mbps "http://127.0.0.1:$PORT" "$WORK/plain")
SCHEME=https CA="$WORK/tls/ca.crt" serve tls --tls
TLS=$(SCHEME=https CA="$WORK/tls/ca.crt" load "https://127.0.0.1:$PORT" "$WORK/tls")
[ "$PULL" = 1 ] && TLS_PULL=$(CA="$WORK/tls/ca.crt" pull_mbps "https://127.0.0.1:$PORT" "$WORK/tls")

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
if [ "$PULL" = 1 ]; then
  "$PY" - "$PLAIN_PULL" "$TLS_PULL" "$PULL_MIB" <<'PY'
import sys
plain, tls, mib = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
ratio = tls / plain if plain else 0.0
cost = (1 - ratio) * 100
verdict = "within" if cost <= 10 else "over"
print(f"registry pull of one {mib} MiB blob: http {plain:.1f} MB/s, https {tls:.1f} MB/s; "
      f"ratio {ratio:.3f} (TLS costs {cost:.1f} %, {verdict} the 10 % budget)")
PY
else
  echo "registry pull: skipped (PULL_MIB=0 or no aws CLI at $AWS)"
fi
