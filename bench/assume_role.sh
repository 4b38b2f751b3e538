#!/usr/bin/env bash
# STS AssumeRole throughput: how many temporary credentials the server mints per second.
#
#   bench/assume_role.sh                       # build release binaries, run
#   DURATION=5 CONCURRENCY=8 bench/assume_role.sh
#   SKIP_BUILD=1 bench/assume_role.sh
#
# One role whose trust policy names the account is created with the admin key (the
# account root); target/release/loadgen then calls AssumeRole on it from CONCURRENCY
# closed-loop workers for DURATION seconds, each request freshly SigV4-signed for `sts`.
# Each call is verified, the trust policy evaluated and a session token sealed: nothing
# is written to the store. The target is >= 2,000 AssumeRole/s at 16 clients.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
source "$ROOT/bench/lib/common.sh"

DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-16}
BENCH_SETTINGS="DURATION CONCURRENCY"
bench_header "$@"
bench_python
bench_build -p stevedore -p loadgen
bench_workdir assume-role
start_server

role_arn=$("$PY" - <<'PY'
import boto3, json, os
iam = boto3.client("iam", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "000000000000"}, "Action": "sts:AssumeRole"}]}
print(iam.create_role(RoleName="bench-assume", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])
PY
)
read -r key secret < <("$PY" -c "
import configparser, sys
c = configparser.ConfigParser(); c.read('$DATA/credentials')
print(c['default']['aws_access_key_id'], c['default']['aws_secret_access_key'])")

# A short warm-up so connections and caches are in place, then the measured run.
"$LOADGEN" --endpoint "$EP" --access-key "$key" --secret-key "$secret" --op assume-role \
  --role-arn "$role_arn" --concurrency "$CONCURRENCY" --duration-secs 2 >/dev/null
result=$("$LOADGEN" --endpoint "$EP" --access-key "$key" --secret-key "$secret" --op assume-role \
  --role-arn "$role_arn" --concurrency "$CONCURRENCY" --duration-secs "$DURATION")
echo "| op | clients | requests | errors | req/s | p50 ms | p99 ms |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
"$PY" -c "
import json, sys
r = json.loads(sys.argv[1])
print(f\"| AssumeRole | $CONCURRENCY | {r['requests']} | {r['errors']} | {r['rps']:.0f} | {r['p50_ms']} | {r['p99_ms']} |\")
" "$result"
bench_footer
