#!/usr/bin/env bash
# Does the server's memory grow with log events? Starts a release server, records its
# RSS (VmRSS), writes EVENTS log events with PutLogEvents in batches of BATCH (boto3,
# CONCURRENCY streams in parallel), records RSS again and prints both, their ratio and
# the PutLogEvents throughput in events/s.
#
#   bench/logs_rss.sh                      # build release binaries, run
#   SKIP_BUILD=1 EVENTS=1000000 BATCH=10000 CONCURRENCY=4 MESSAGE_BYTES=100 bench/logs_rss.sh
#
# Target (issue 15, item 6): RSS after 1,000,000 events is within 1.5x of RSS before.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=lib/common.sh
source "$ROOT/bench/lib/common.sh"

EVENTS=${EVENTS:-1000000}
BATCH=${BATCH:-10000}
CONCURRENCY=${CONCURRENCY:-4}
MESSAGE_BYTES=${MESSAGE_BYTES:-100}
BENCH_SETTINGS="EVENTS BATCH CONCURRENCY MESSAGE_BYTES"

bench_header "$@"
bench_python
bench_build -p stevedore
bench_workdir logs-rss
start_server --no-lb

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status"; }

# One warm-up batch on its own stream, so "before" counts what serving PutLogEvents
# needs at all (connection, parsers, the event store's page cache), not the events.
"$PY" - "$BATCH" "$MESSAGE_BYTES" <<'PY'
import sys, time, boto3
batch, size = int(sys.argv[1]), int(sys.argv[2])
logs = boto3.client("logs")
logs.create_log_group(logGroupName="/bench/warmup")
logs.create_log_stream(logGroupName="/bench/warmup", logStreamName="w")
now = int(time.time() * 1000)
logs.put_log_events(logGroupName="/bench/warmup", logStreamName="w",
                    logEvents=[{"timestamp": now, "message": "w" * size} for _ in range(batch)])
PY
sleep 1
BEFORE=$(rss_kib)

"$PY" - "$EVENTS" "$BATCH" "$CONCURRENCY" "$MESSAGE_BYTES" > "$WORK/put.json" <<'PY'
import json, sys, threading, time, boto3, botocore.config
events, batch, workers, size = (int(a) for a in sys.argv[1:5])
cfg = botocore.config.Config(read_timeout=120, retries={"max_attempts": 1})
group = "/bench/logs"
boto3.client("logs", config=cfg).create_log_group(logGroupName=group)
batches = events // batch
errors = []

def work(n):
    logs = boto3.client("logs", config=cfg)
    stream = f"s{n}"
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    for b in range(n, batches, workers):
        now = int(time.time() * 1000)
        body = [{"timestamp": now, "message": f"{b:08d} {i:06d} ".ljust(size, "x")}
                for i in range(batch)]
        out = logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=body)
        if out.get("rejectedLogEventsInfo"):
            errors.append(out["rejectedLogEventsInfo"])

start = time.monotonic()
threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.monotonic() - start
if errors:
    sys.exit(f"rejected events: {errors[:3]}")
# Spot check: the newest events of one stream read back.
got = boto3.client("logs", config=cfg).get_log_events(
    logGroupName=group, logStreamName="s0", limit=5)["events"]
if len(got) != 5:
    sys.exit(f"read back {len(got)} events, wanted 5")
print(json.dumps({"events": batches * batch, "seconds": elapsed,
                  "events_per_s": batches * batch / elapsed}))
PY
# Let the allocator and the retention sweep settle before sampling.
sleep 5
AFTER=$(rss_kib)
DB_BYTES=$(du -cb "$DATA"/logs.db* | tail -1 | cut -f1)

"$PY" - "$BEFORE" "$AFTER" "$DB_BYTES" "$WORK/put.json" <<'PY'
import json, sys
before, after, db = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
put = json.load(open(sys.argv[4]))
print("| figure | value |")
print("|---|---|")
print(f"| RSS before (VmRSS) | {before / 1024:.1f} MiB |")
print(f"| RSS after {put['events']:,} events | {after / 1024:.1f} MiB |")
print(f"| ratio after/before (target <= 1.5) | {after / before:.2f} |")
print(f"| PutLogEvents throughput | {put['events_per_s']:,.0f} events/s ({put['seconds']:.1f} s) |")
print(f"| logs.db (+ -wal) on disk | {db / 1048576:.1f} MiB |")
PY
bench_footer
