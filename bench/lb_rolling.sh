#!/usr/bin/env bash
# Zero failed requests through a rolling update (issue #7): a 3-task service behind an
# application load balancer (the server's own data plane), real containers on dynamic host
# ports, RATE requests/s through the listener from keep-alive clients while UpdateService
# rolls all 3 tasks (max 200 %, min 100 %). Prints requests sent, failures, achieved rate.
#
#   bench/lb_rolling.sh                    # release build first; RATE=500
#   SKIP_BUILD=1 RATE=800 bench/lb_rolling.sh
# Needs: a running dockerd, /bin/busybox, python3 + boto3.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RATE=${RATE:-500}
source "$ROOT/bench/lib/common.sh"
BENCH_SETTINGS="RATE"
bench_header "$@"
bench_python
bench_build -p stevedore
bench_workdir lb-rolling
CLUSTER=lbroll

build_busybox_image stevedore-lb-bench:1 '["/bin/busybox","sh","-c","/bin/busybox mkdir -p /www && /bin/busybox hostname > /www/index.html && exec /bin/busybox httpd -f -p 80 -h /www"]'

start_server
create_cluster "$CLUSTER"
start_agent "$CLUSTER"
LB_PORT=$(free_port)

"$PY" - "$CLUSTER" "$RATE" "$LB_PORT" <<'PYEOF'
import http.client, json, sys, threading, time
import boto3
cluster, rate, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ecs, elbv2 = boto3.client("ecs"), boto3.client("elbv2")
tg = elbv2.create_target_group(Name="roll", Protocol="HTTP", Port=80, VpcId="vpc-local", TargetType="instance",
                               HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2,
                               UnhealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
elbv2.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "5"}])
lb = elbv2.create_load_balancer(Name="roll", Type="application", Subnets=["subnet-a"])["LoadBalancers"][0]
elbv2.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                      DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])

def td(v):
    return ecs.register_task_definition(family="roll", containerDefinitions=[{
        "name": "web", "image": "stevedore-lb-bench:1", "memory": 32, "essential": True, "stopTimeout": 2,
        "environment": [{"name": "V", "value": v}], "portMappings": [{"containerPort": 80, "hostPort": 0}]}])["taskDefinition"]["taskDefinitionArn"]

def steady(want):
    s = ecs.describe_services(cluster=cluster, services=["web"])["services"][0]
    d = s["deployments"]
    return len(d) == 1 and d[0].get("rolloutState") == "COMPLETED" and s["runningCount"] == 3 and s["taskDefinition"] == want

v1 = td("1")
ecs.create_service(cluster=cluster, serviceName="web", taskDefinition=v1, desiredCount=3,
                   loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 80}])
end = time.monotonic() + 120
while not steady(v1):
    if time.monotonic() > end:
        sys.exit("service not steady")
    time.sleep(0.2)

sent = failed = 0
errors = []
lock = threading.Lock()
stop = threading.Event()
WORKERS = 10

def client():
    global sent, failed
    conn = http.client.HTTPConnection(lb["DNSName"], port, timeout=5)
    interval = WORKERS / rate
    nxt = time.monotonic()
    while not stop.is_set():
        ok = False
        try:
            conn.request("GET", "/")
            r = conn.getresponse()
            r.read()
            ok = r.status == 200
            err = r.status
        except Exception as e:  # any failure counts, and the connection is renewed
            err = repr(e)
            conn.close()
            conn = http.client.HTTPConnection(lb["DNSName"], port, timeout=5)
        with lock:
            sent += 1
            if not ok:
                failed += 1
                errors.append(err)
        nxt += interval
        time.sleep(max(0.0, nxt - time.monotonic()))

threads = [threading.Thread(target=client, daemon=True) for _ in range(WORKERS)]
for t in threads:
    t.start()
time.sleep(2)
t0 = time.monotonic()
v2 = td("2")
ecs.update_service(cluster=cluster, service="web", taskDefinition=v2)
end = time.monotonic() + 300
while not steady(v2):
    if time.monotonic() > end:
        sys.exit("rolling update did not finish")
    time.sleep(0.2)
roll_s = time.monotonic() - t0
time.sleep(2)
stop.set()
for t in threads:
    t.join(timeout=10)
total_s = roll_s + 4
print(json.dumps({"rate_target": rate, "requests": sent, "failed": failed, "achieved_rps": round(sent / total_s),
                  "rolling_update_s": round(roll_s, 2), "errors": errors[:5], "target": "0 failed"}))
PYEOF
bench_footer
