#!/usr/bin/env bash
# The soak (issue 15): a release server with a short stopped-task retention, hollow
# instances (`stevedore sim`), 100 tasks started and stopped per minute and 1,000 log
# lines/s (PutLogEvents) for DURATION seconds. Every 30 s it samples the server's RSS, its
# state database and data directory sizes and the STOPPED tasks still listed, prints each
# sample, then whether each series levels off (last third's mean within 10 % of the
# middle third's). The load itself is tests/compat/soak_load.py (the CI test runs three
# minutes of it).
#
#   bench/soak.sh                                        # an hour, retention 2 min
#   SKIP_BUILD=1 DURATION=600 RETENTION=1m bench/soak.sh
#
# Exit status 0 when RSS and the listed STOPPED tasks level off. The data directory also
# holds the shipped log lines, which CloudWatch keeps for days: it grows with them.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-3600}
RETENTION=${RETENTION:-2m}
INSTANCES=${INSTANCES:-4}
TASKS_PER_MIN=${TASKS_PER_MIN:-100}
LOG_LINES_PER_S=${LOG_LINES_PER_S:-1000}
SAMPLE_EVERY=${SAMPLE_EVERY:-30}
source "$ROOT/bench/lib/common.sh"
BENCH_SETTINGS="DURATION RETENTION INSTANCES TASKS_PER_MIN LOG_LINES_PER_S SAMPLE_EVERY"
bench_header "$@"
bench_python
bench_build -p stevedore
bench_workdir soak
start_server --stopped-task-retention "$RETENTION"
CLUSTER=soak
create_cluster "$CLUSTER"
start_sim "$CLUSTER" "$INSTANCES"
echo "soaking for $DURATION s (retention $RETENTION)..." >&2
status=0
"$PY" "$ROOT/tests/compat/soak_load.py" --cluster "$CLUSTER" --server-pid "$SERVER_PID" \
  --data-dir "$DATA" --duration "$DURATION" --tasks-per-min "$TASKS_PER_MIN" \
  --log-lines-per-s "$LOG_LINES_PER_S" --sample-every "$SAMPLE_EVERY" || status=$?
bench_footer
exit "$status"
