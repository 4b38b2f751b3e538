#!/usr/bin/env bash
# Security groups as nftables: 1,000 awsvpc task interfaces x 10 rules, applied through
# the real `nft` (one `nft -f` transaction, as the server's filter loop does it) into a
# throwaway table `inet stevedore_bench` that the run removes; Stevedore's own table and
# the host's other tables are never touched. Figures: the whole rule set (compile +
# apply) and one change (diff + apply) of two kinds, medians of 7 runs.
#
#   bench/vpc.sh              # build the example (release) and run it; needs root and nft
#   SKIP_BUILD=1 bench/vpc.sh
#
# Targets (issue 18): rule set applied <= 200 ms, one change <= 20 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
source "$ROOT/bench/lib/common.sh"
BENCH_SETTINGS=""
bench_header "$@"
if [ -z "${SKIP_BUILD:-}" ]; then
  echo "building (cargo build --release -p netfilter --example vpc_bench)" >&2
  cargo build --release -p netfilter --example vpc_bench >&2
fi
"${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/vpc_bench"
bench_footer
