#!/usr/bin/env bash
# The load balancer data plane against nginx as a reverse proxy, same machine, same run:
#   3 backends (crates/lb/examples/backend.rs, one process, 3 ports, fixed 13-byte body),
#   and in front of them:
#   - `server`: the product path. `stevedore server` with its embedded data plane,
#     configured only through the ELBv2 API (boto3): an `ip` target group with health
#     checks on (HTTP GET /, every 5 s, 2 to healthy), the 3 backends registered as
#     targets, an application load balancer and an HTTP listener forwarding to the group.
#     Traffic starts once DescribeTargetHealth shows all 3 healthy.
#   - `example`: crates/lb/examples/serve.rs, the same data plane crate alone with a
#     static configuration (one listener, round robin over the 3, no health checks).
#   - `nginx`: a reverse proxy to the same 3, with the tuning nginx's documentation and
#     its own reverse-proxy benchmarking guidance give: `worker_processes auto`,
#     `listen … reuseport`, `access_log off`, HTTP/1.1 keep-alive to the upstreams
#     (`keepalive 256`, `proxy_http_version 1.1`, `Connection ""`), and
#     `keepalive_requests` raised on both sides (its default of 1,000 would close every
#     client and upstream connection after 1,000 requests, which Stevedore does not do);
#     the same X-Forwarded-* headers the data plane adds.
# wrk --latency against each, and against one backend directly for the baseline. Rounds
# are interleaved (order rotated each round) because the machine is shared; medians over
# rounds are reported, and the CPU time per request of the process under test.
#
#   bench/lb.sh                                  # release build first
#   SKIP_BUILD=1 ROUNDS=5 DURATION=10 CONNS=64 THREADS=2 bench/lb.sh
#   LAT_CONNS=0 bench/lb.sh                      # skip the low-concurrency latency pass
#   NO_EXAMPLE=1 bench/lb.sh                     # skip the examples/serve.rs target
#   LB_BEFORE=/path/to/old/serve bench/lb.sh     # also an older serve build ("lb-before")
# Needs: wrk and nginx (apt-get install -y wrk nginx-light), python3 + boto3.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/bench/lib/common.sh"
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
LAT_CONNS=${LAT_CONNS:-4}
NGINX_WORKERS=${NGINX_WORKERS:-auto}
BENCH_SETTINGS="ROUNDS DURATION CONNS THREADS LAT_CONNS NGINX_WORKERS NO_EXAMPLE LB_BEFORE"
bench_header "$@"
for tool in wrk nginx; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y wrk nginx-light)" >&2; exit 1; }
done
bench_python
bench_build -p stevedore -p lb --bins --examples
EXAMPLES=$RELEASE_DIR/examples
bench_workdir lb-bench
chmod 755 "$WORK"

wait_http() { # url
  for _ in $(seq 1 100); do
    "$PY" -c 'import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "timed out waiting for $1" >&2
  return 1
}

B1=$(free_port); B2=$(free_port); B3=$(free_port); LB=$(free_port); NG=$(free_port); SV=$(free_port)
"$EXAMPLES/backend" "127.0.0.1:$B1" "127.0.0.1:$B2" "127.0.0.1:$B3" >"$WORK/backend.log" 2>&1 &
PIDS+=($!)
BACKEND_PID=$!

# The product path: the server's own data plane, configured through the ELBv2 API.
start_server
"$PY" - "$SV" "$B1" "$B2" "$B3" <<'PYEOF'
import sys, time
import boto3
port, backends = int(sys.argv[1]), [int(p) for p in sys.argv[2:]]
elbv2 = boto3.client("elbv2")
tg = elbv2.create_target_group(Name="bench", Protocol="HTTP", Port=80, VpcId="vpc-local", TargetType="ip",
                               HealthCheckEnabled=True, HealthCheckProtocol="HTTP", HealthCheckPath="/",
                               HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                               HealthyThresholdCount=2, UnhealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
elbv2.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": p} for p in backends])
lb = elbv2.create_load_balancer(Name="bench", Type="application", Subnets=["subnet-a"])["LoadBalancers"][0]
elbv2.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                      DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
end = time.monotonic() + 60
while True:
    states = [d["TargetHealth"]["State"] for d in elbv2.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]]
    if states.count("healthy") == len(backends):
        break
    if time.monotonic() > end:
        sys.exit(f"targets not healthy after 60 s: {states}")
    time.sleep(0.2)
print(f"server data plane: {lb['DNSName']}:{port}, {len(backends)} targets healthy", file=sys.stderr)
PYEOF

if [ -z "${NO_EXAMPLE:-}" ]; then
  STEVEDORE_LOG=warn "$EXAMPLES/serve" --listen "127.0.0.1:$LB" \
    --target "127.0.0.1:$B1" --target "127.0.0.1:$B2" --target "127.0.0.1:$B3" >"$WORK/serve.log" 2>&1 &
  PIDS+=($!)
  SERVE_PID=$!
fi
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
worker_rlimit_nofile 65536;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
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
    keepalive_requests 1000000;
    keepalive_timeout 60s;
  }
  server {
    listen 127.0.0.1:$NG reuseport;
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
for p in $B1 $SV $NG ${SERVE_PID:+$LB} ${LB0:-}; do wait_http "http://127.0.0.1:$p/"; done

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
NAMES=(direct server nginx)
PORTS=($B1 $SV $NG)
CPU_PIDS=($BACKEND_PID $SERVER_PID $NGINX_PID)
if [ -n "${SERVE_PID:-}" ]; then NAMES+=(example); PORTS+=($LB); CPU_PIDS+=($SERVE_PID); fi
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

"$PY" - "$RESULTS" "$ROUNDS" "$DURATION" "$THREADS" <<'PYEOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
rounds, duration, threads = sys.argv[2:]
by = {}
for conns, name, _round, rps, p99, errors, cpu in rows:
    by.setdefault((int(conns), name), []).append((float(rps), float(p99), int(errors), float(cpu)))
print(f"{rounds} interleaved rounds of {duration} s per target, wrk -t{threads} (-t1 for the low-concurrency pass), "
      f"on the same cores as the processes under test; medians over rounds. `server` = stevedore server's data plane "
      f"configured through ELBv2 (health checks on), `example` = crates/lb/examples/serve.rs.\n")
print("| connections | target | rps (median) | rps per round | p99 ms (median) | p99 per round | CPU µs/request (median) | errors |")
print("|---:|---|---:|---|---:|---|---:|---:|")
summary = []
before = []
ORDER = ("direct", "server", "example", "nginx", "lb-before")
for conns in sorted({c for c, _ in by}, reverse=True):
    med = {}
    for name in ORDER:
        runs = by.get((conns, name), [])
        if not runs:
            continue
        rps = statistics.median(r[0] for r in runs)
        p99 = statistics.median(r[1] for r in runs)
        cpu = statistics.median(r[3] for r in runs)
        med[name] = (rps, p99, cpu)
        print(f"| {conns} | {name} | {rps:,.0f} | {' / '.join(f'{r[0]:,.0f}' for r in runs)} | {p99:.2f} | "
              f"{' / '.join(f'{r[1]:.2f}' for r in runs)} | {cpu:.1f} | {sum(r[2] for r in runs)} |")
    for name in ("server", "example"):
        if {name, "nginx", "direct"} <= med.keys():
            ratio = med[name][0] / med["nginx"][0]
            added = med[name][1] - med["direct"][1]
            added_ng = med["nginx"][1] - med["direct"][1]
            cpu_ratio = med[name][2] / med["nginx"][2]
            summary.append(f"| {conns} | {name} | {ratio:.2f}× (target ≥ 1.0: {'met' if ratio >= 1.0 else 'not met'}) | "
                           f"{cpu_ratio:.2f}× | "
                           f"{added:+.2f} ms (target ≤ 1 ms: {'met' if added <= 1.0 else 'not met'}) | {added_ng:+.2f} ms |")
    if {"lb-before", "example", "nginx"} <= med.keys():
        before.append(f"| {conns} | {med['lb-before'][2]:.1f} → {med['example'][2]:.1f} µs "
                      f"({med['example'][2] / med['lb-before'][2] - 1:+.0%}) | "
                      f"{med['lb-before'][0] / med['nginx'][0]:.2f}× → {med['example'][0] / med['nginx'][0]:.2f}× |")
print("\n| connections | data plane | rps ÷ nginx | CPU per request ÷ nginx | p99 added vs direct | nginx's p99 added vs direct |")
print("|---:|---|---|---|---|---|")
print("\n".join(summary))
if before:
    print("\n| connections | example CPU µs/request, before → after | rps example/nginx, before → after |")
    print("|---:|---|---|")
    print("\n".join(before))
PYEOF
bench_footer
