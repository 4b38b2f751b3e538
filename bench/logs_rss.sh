#!/usr/bin/env bash
# Does the server's memory grow with log events? Starts a release server, records its
# RSS (VmRSS), writes EVENTS log events with PutLogEvents in batches of BATCH (boto3,
# CONCURRENCY streams in parallel), records RSS again and prints both, their ratio and
# the PutLogEvents throughput in events/s.
#
#   bench/logs_rss.sh                      # build release binaries, run
#   SKIP_BUILD=1 EVENTS=1000000 BATCH=10000 CONCURRENCY=4 MESSAGE_BYTES=64 bench/logs_rss.sh
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
# 10,000 events of 64 bytes (+26 each) fit AWS's 1 MiB batch limit.
MESSAGE_BYTES=${MESSAGE_BYTES:-64}
BENCH_SETTINGS="EVENTS BATCH CONCURRENCY MESSAGE_BYTES"

bench_header "$@"
bench_python
bench_build -p stevedore
bench_workdir logs-rss
start_server --no-lb

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status"; }

# Warm-up: CONCURRENCY batches at once, each on its own stream, so "before" counts what
# serving PutLogEvents at this concurrency needs at all (request bodies in flight, the
# allocator's per-thread arenas, the event store's page cache), not the events.
"$PY" - "$BATCH" "$MESSAGE_BYTES" "$CONCURRENCY" <<'PY'
import sys, threading, time, boto3
batch, size, workers = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
boto3.client("logs").create_log_group(logGroupName="/bench/warmup")
def work(n):
    logs = boto3.client("logs")
    logs.create_log_stream(logGroupName="/bench/warmup", logStreamName=f"w{n}")
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName="/bench/warmup", logStreamName=f"w{n}",
                        logEvents=[{"timestamp": now, "message": "w" * size} for _ in range(batch)])
threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
for t in threads:
    t.start()
for t in threads:
    t.join()
PY
sleep 1
BEFORE=$(rss_kib)

cat > "$WORK/put.py" <<'PY'
import json, sys, threading, time, boto3, botocore.config
events, batch, workers, size = (int(a) for a in sys.argv[1:5])
half = sys.argv[5]
cfg = botocore.config.Config(read_timeout=120, retries={"max_attempts": 1})
group = "/bench/logs"
if half == "1":
    boto3.client("logs", config=cfg).create_log_group(logGroupName=group)
batches = events // batch
errors = []

def work(n):
    logs = boto3.client("logs", config=cfg)
    stream = f"s{n}-{half}"
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
    logGroupName=group, logStreamName=f"s0-{half}", limit=5)["events"]
if len(got) != 5:
    sys.exit(f"read back {len(got)} events, wanted 5")
print(json.dumps({"events": batches * batch, "seconds": elapsed,
                  "events_per_s": batches * batch / elapsed}))
PY
# Two halves of EVENTS/2, each on fresh streams; RSS is sampled between them, so a
# flat memory shows as mid ≈ after.
"$PY" "$WORK/put.py" $((EVENTS / 2)) "$BATCH" "$CONCURRENCY" "$MESSAGE_BYTES" 1 > "$WORK/put1.json"
sleep 2
MID=$(rss_kib)
"$PY" "$WORK/put.py" $((EVENTS / 2)) "$BATCH" "$CONCURRENCY" "$MESSAGE_BYTES" 2 > "$WORK/put2.json"
# Let the allocator and the retention sweep settle before sampling.
sleep 5
AFTER=$(rss_kib)
DB_BYTES=$(du -cb "$DATA"/logs.db* | tail -1 | cut -f1)

"$PY" - "$BEFORE" "$MID" "$AFTER" "$DB_BYTES" "$WORK/put1.json" "$WORK/put2.json" <<'PY'
import json, sys
before, mid, after, db = (int(a) for a in sys.argv[1:5])
puts = [json.load(open(p)) for p in sys.argv[5:7]]
events = sum(p["events"] for p in puts)
seconds = sum(p["seconds"] for p in puts)
print("| figure | value |")
print("|---|---|")
print(f"| RSS before (VmRSS, after warm-up) | {before / 1024:.1f} MiB |")
print(f"| RSS after {puts[0]['events']:,} events | {mid / 1024:.1f} MiB |")
print(f"| RSS after {events:,} events | {after / 1024:.1f} MiB |")
print(f"| ratio after/before (target <= 1.5) | {after / before:.2f} |")
print(f"| PutLogEvents throughput | {events / seconds:,.0f} events/s ({seconds:.1f} s) |")
print(f"| logs.db (+ -wal) on disk | {db / 1048576:.1f} MiB |")
PY
bench_footer
