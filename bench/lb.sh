#!/usr/bin/env bash
# The load balancer data plane against nginx as a reverse proxy, same machine, same run:
#   3 backends (crates/lb/examples/backend.rs, one process, 3 ports, fixed 13-byte body);
#   Stevedore's data plane (crates/lb/examples/serve.rs: one listener, round robin over
#   the 3) and nginx (upstream of the same 3 with keepalive, the same X-Forwarded-*
#   headers) in front of them; wrk --latency against each, and against one backend
#   directly for the baseline. Rounds are interleaved (order rotated each round) because
#   the machine is shared; medians over rounds are reported.
#
#   bench/lb.sh                                  # release build first
#   SKIP_BUILD=1 ROUNDS=5 DURATION=10 CONNS=64 THREADS=2 bench/lb.sh
#   LAT_CONNS=0 bench/lb.sh                      # skip the low-concurrency latency pass
#   LB_BEFORE=/path/to/old/serve bench/lb.sh     # also an older build ("lb-before"), same rounds
# Needs: wrk and nginx (apt-get install -y wrk nginx), python3.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
LAT_CONNS=${LAT_CONNS:-4}
NGINX_WORKERS=${NGINX_WORKERS:-auto}
PY=${PYTHON:-python3}
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples
for tool in wrk nginx "$PY"; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y wrk nginx)" >&2; exit 1; }
done
[ -z "${SKIP_BUILD:-}" ] && (cd "$ROOT" && cargo build --release -p lb --examples >&2)

WORK=$(mktemp -d /tmp/stevedore-lb-bench.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
wait_http() { # url
  for _ in $(seq 1 100); do
    "$PY" -c 'import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "timed out waiting for $1" >&2
  return 1
}

B1=$(free_port); B2=$(free_port); B3=$(free_port); LB=$(free_port); NG=$(free_port)
"$BIN/backend" "127.0.0.1:$B1" "127.0.0.1:$B2" "127.0.0.1:$B3" >"$WORK/backend.log" 2>&1 &
PIDS+=($!)
BACKEND_PID=$!
STEVEDORE_LOG=warn "$BIN/serve" --listen "127.0.0.1:$LB" \
  --target "127.0.0.1:$B1" --target "127.0.0.1:$B2" --target "127.0.0.1:$B3" >"$WORK/serve.log" 2>&1 &
PIDS+=($!)
SERVE_PID=$!
if [ -n "${LB_BEFORE:-}" ]; then
  LB0=$(free_port)
  STEVEDORE_LOG=warn "$LB_BEFORE" --listen "127.0.0.1:$LB0" \
    --target "127.0.0.1:$B1" --target "127.0.0.1:$B2" --target "127.0.0.1:$B3" >"$WORK/serve-before.log" 2>&1 &
  PIDS+=($!)
  BEFORE_PID=$!
fi
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx.conf" <<EOF
worker_processes $NGINX_WORKERS;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  upstream backends {
    server 127.0.0.1:$B1;
    server 127.0.0.1:$B2;
    server 127.0.0.1:$B3;
    keepalive 256;
  }
  server {
    listen 127.0.0.1:$NG;
    location / {
      proxy_pass http://backends;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Port \$server_port;
    }
  }
}
EOF
nginx -c "$WORK/nginx.conf" -p "$WORK" -g 'daemon off;' >"$WORK/nginx.out" 2>&1 &
PIDS+=($!)
NGINX_PID=$!
for p in $B1 $LB $NG ${LB0:-}; do wait_http "http://127.0.0.1:$p/"; done

# CPU time (clock ticks, user + system) of a process and its children (nginx's workers).
cpu_ticks() { # pid
  local t=0 q
  for q in $1 $(pgrep -P "$1"); do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$q/stat" 2>/dev/null || echo 0)))
  done
  echo $t
}

# One wrk run; prints "rps p99_ms errors cpu_us_per_request" (the CPU of the process
# under test: the backend for direct, else the proxy) — CPU per request is the figure
# least disturbed by other work on a shared machine.
run_wrk() { # port conns threads pid
  local out c0 c1
  c0=$(cpu_ticks "$4")
  out=$(wrk -t"$3" -c"$2" -d"${DURATION}s" --latency "http://127.0.0.1:$1/")
  c1=$(cpu_ticks "$4")
  echo "$out" >>"$WORK/wrk.log"
  "$PY" - "$out" "$((c1 - c0))" "$(getconf CLK_TCK)" <<'PYEOF'
import re, sys
out, ticks, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
errors = sum(int(x) for x in re.findall(r"(?:Non-2xx or 3xx responses|connect|read|write|timeout)[: ]+(\d+)", out))
requests = int(re.search(r"(\d+) requests in", out).group(1))
print(f"{rps:.0f} {p99:.3f} {errors} {ticks * 1e6 / hz / max(requests, 1):.2f}")
PYEOF
}

RESULTS="$WORK/results.txt"
: >"$RESULTS"
NAMES=(direct lb nginx)
PORTS=($B1 $LB $NG)
CPU_PIDS=($BACKEND_PID $SERVE_PID $NGINX_PID)
if [ -n "${LB_BEFORE:-}" ]; then NAMES+=(lb-before); PORTS+=($LB0); CPU_PIDS+=($BEFORE_PID); fi
N=${#NAMES[@]}
passes=("$CONNS $THREADS")
[ "$LAT_CONNS" != 0 ] && passes+=("$LAT_CONNS 1")
for round in $(seq 1 "$ROUNDS"); do
  for pass in "${passes[@]}"; do
    read -r conns threads <<<"$pass"
    for k in $(seq 0 $((N - 1))); do
      i=$(( (k + round) % N ))
      read -r rps p99 errors cpu < <(run_wrk "${PORTS[$i]}" "$conns" "$threads" "${CPU_PIDS[$i]}")
      echo "$conns ${NAMES[$i]} $round $rps $p99 $errors $cpu" | tee -a "$RESULTS" >&2
    done
  done
done

"$PY" - "$RESULTS" "$ROUNDS" "$DURATION" "$THREADS" "$(nproc)" "$(cut -d' ' -f1 /proc/loadavg)" <<'PYEOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
rounds, duration, threads, cores, load = sys.argv[2:]
by = {}
for conns, name, _round, rps, p99, errors, cpu in rows:
    by.setdefault((int(conns), name), []).append((float(rps), float(p99), int(errors), float(cpu)))
print(f"\n{rounds} interleaved rounds of {duration} s per target, wrk -t{threads} (-t1 for the low-concurrency pass), "
      f"{cores} cores shared with the benchmark's own processes (load at end {load}); medians over rounds.\n")
print("| connections | target | rps (median) | rps per round | p99 ms (median) | p99 per round | CPU µs/request (median) | errors |")
print("|---:|---|---:|---|---:|---|---:|---:|")
summary = []
before = []
for conns in sorted({c for c, _ in by}, reverse=True):
    med = {}
    for name in ("direct", "lb", "nginx", "lb-before"):
        runs = by.get((conns, name), [])
        if not runs:
            continue
        rps = statistics.median(r[0] for r in runs)
        p99 = statistics.median(r[1] for r in runs)
        cpu = statistics.median(r[3] for r in runs)
        med[name] = (rps, p99, cpu)
        print(f"| {conns} | {name} | {rps:,.0f} | {' / '.join(f'{r[0]:,.0f}' for r in runs)} | {p99:.2f} | "
              f"{' / '.join(f'{r[1]:.2f}' for r in runs)} | {cpu:.1f} | {sum(r[2] for r in runs)} |")
    if {"lb", "nginx", "direct"} <= med.keys():
        ratio = med["lb"][0] / med["nginx"][0]
        added = med["lb"][1] - med["direct"][1]
        added_ng = med["nginx"][1] - med["direct"][1]
        cpu_ratio = med["lb"][2] / med["nginx"][2]
        if "lb-before" in med:
            before.append(f"| {conns} | {med['lb-before'][2]:.1f} → {med['lb'][2]:.1f} µs "
                          f"({med['lb'][2] / med['lb-before'][2] - 1:+.0%}) | "
                          f"{med['lb-before'][0] / med['nginx'][0]:.2f}× → {ratio:.2f}× |")
        summary.append(f"| {conns} | {ratio:.2f}× (target ≥ 1.0: {'met' if ratio >= 1.0 else 'not met'}) | "
                       f"{cpu_ratio:.2f}× | "
                       f"{added:+.2f} ms (target ≤ 1 ms: {'met' if added <= 1.0 else 'not met'}) | {added_ng:+.2f} ms |")
print("\n| connections | rps lb/nginx | CPU per request lb/nginx | p99 added by lb vs direct | p99 added by nginx vs direct |")
print("|---:|---|---|---|---|")
print("\n".join(summary))
if before:
    print("\n| connections | lb CPU µs/request, before → after | rps lb/nginx, before → after |")
    print("|---:|---|---|")
    print("\n".join(before))
PYEOF
