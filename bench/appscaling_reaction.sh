#!/usr/bin/env bash
# Service auto scaling's reaction time (issue 16, Numbers): from the first breaching
# AWS/ECS CPUUtilization datapoint to the new task RUNNING, at a shortened time scale,
# printed beside the bound it is compared against: 1.2 × the AlarmHigh evaluation window
# (3 one-minute periods ÷ the time scale) + one task launch (the first task's, measured in
# the same run). The scenario is tests/compat/test_appscaling.py's target tracking test
# (real agent, busybox tasks burning a quarter core each, target 50 %, min 1, max 4,
# --time-scale 20), run once per round; it needs Docker, the aws CLI and boto3.
#
#   bench/appscaling_reaction.sh                 # build the release binary, 1 round
#   SKIP_BUILD=1 ROUNDS=3 bench/appscaling_reaction.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ROUNDS=${ROUNDS:-1}
BENCH_SETTINGS="ROUNDS"
source "$ROOT/bench/lib/common.sh"
bench_header "$@"
bench_build -p stevedore
PYTEST=${PYTEST:-/work/venv/bin/pytest}
[ -x "$PYTEST" ] || PYTEST=pytest
for i in $(seq "$ROUNDS"); do
  log=$(mktemp /tmp/stevedore-appscaling-bench.XXXXXX)
  if ! (cd tests/compat && CI=true STEVEDORE_BIN="$STEVEDORE" "$PYTEST" -q -s \
        test_appscaling.py -k target_tracking >"$log" 2>&1); then
    tail -40 "$log" >&2
    rm -f "$log"
    exit 1
  fi
  echo "round $i: $(grep -o 'REACTION.*' "$log")"
  rm -f "$log"
done
bench_footer
