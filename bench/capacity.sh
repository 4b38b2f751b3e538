#!/usr/bin/env bash
# Cluster auto scaling through a capacity provider, at a shortened time scale
# (--time-scale 60: managed scaling evaluates every second, ECS's timeouts shrink 60x).
#  1. `sim` provider: a service of DESIRED tasks on an empty Auto Scaling group of hollow
#     instances (launch template user data STEVEDORE_INSTANCE_PROVIDER=sim, t3.medium,
#     700 MiB per task: 5 a machine); timed from CreateService until every task is
#     RUNNING and the group holds INSTANCES instances; then CapacityProviderReservation
#     over the next SETTLE seconds (target 100).
#  2. `local` provider: one RunTask that needs a new instance (a real `stevedore agent`
#     and a real container); timed from RunTask (PROVISIONING) to RUNNING.
# Targets (issue 17): 0 -> 1,000 instances for 5,000 tasks all RUNNING in <= 60 s;
# reservation at target +-5 after; PROVISIONING -> RUNNING <= agent start + one task
# launch + one evaluation period.
#
#   bench/capacity.sh                                     # release build first
#   SKIP_BUILD=1 STEVEDORE=target/debug/stevedore DESIRED=500 INSTANCES=100 bench/capacity.sh
# Needs: python3 with boto3; for part 2 a running dockerd and /bin/busybox.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
INSTANCES=${INSTANCES:-1000}
DESIRED=${DESIRED:-5000}
SETTLE=${SETTLE:-15}
TIME_SCALE=${TIME_SCALE:-60}
source "$ROOT/bench/lib/common.sh"
BENCH_SETTINGS="INSTANCES DESIRED SETTLE TIME_SCALE STEVEDORE"
bench_header "$@"
bench_python
bench_build -p stevedore
bench_workdir capacity
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
AGENT_CLUSTERS=(caplocal)
start_server --time-scale "$TIME_SCALE"
# The server's `local` instances are agent processes of their own: stop them with it
# (matched by this run's own data directory).
EXTRA_CLEANUP='for p in $(pgrep -f -- "$WORK/data/instances/"); do kill "$p"; done'

mkdir -p "$WORK/img" && cp /bin/busybox "$WORK/img/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox","sh","-c","sleep 3600"]\n' > "$WORK/img/Dockerfile"
docker build -q -t stevedore-bench-capacity:1 "$WORK/img" >/dev/null 2>&1

"$PY" - "$INSTANCES" "$DESIRED" "$SETTLE" <<'PYEOF'
import base64, statistics, sys, time
import boto3

instances, desired, settle = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
ecs, asg, ec2, cw = (boto3.client(s) for s in ("ecs", "autoscaling", "ec2", "cloudwatch"))


def provider(cluster, lt_name, user_data, itype, max_size, warmup=0):
    ecs.create_cluster(clusterName=cluster)
    ec2.create_launch_template(LaunchTemplateName=lt_name, LaunchTemplateData={
        "InstanceType": itype, "UserData": base64.b64encode(user_data.encode()).decode()})
    asg.create_auto_scaling_group(AutoScalingGroupName=lt_name, MinSize=0, MaxSize=max_size,
                                  DesiredCapacity=0, LaunchTemplate={"LaunchTemplateName": lt_name},
                                  AvailabilityZones=["us-east-1a", "us-east-1b", "us-east-1c"])
    arn = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[lt_name])["AutoScalingGroups"][0][
        "AutoScalingGroupARN"]
    cp = f"cp-{cluster}"
    ecs.create_capacity_provider(name=cp, autoScalingGroupProvider={
        "autoScalingGroupArn": arn,
        "managedScaling": {"status": "ENABLED", "targetCapacity": 100, "maximumScalingStepSize": 10000,
                           "instanceWarmupPeriod": warmup}})
    ecs.put_cluster_capacity_providers(cluster=cluster, capacityProviders=[cp],
                                       defaultCapacityProviderStrategy=[{"capacityProvider": cp, "weight": 1}])
    return cp


def group_size(name):
    g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    return sum(1 for i in g["Instances"] if i["LifecycleState"] == "InService"), len(g["Instances"])


# 1. sim provider, a large service from zero instances.
cluster = "capsim"
cp = provider(cluster, "capsim", "#!/bin/bash\necho ECS_CLUSTER=capsim >> /etc/ecs/ecs.config\n"
              "STEVEDORE_INSTANCE_PROVIDER=sim\n", "t3.medium", instances)
ecs.register_task_definition(family="capsim", containerDefinitions=[
    {"name": "app", "image": "busybox", "memory": 700, "essential": True}])
t0 = time.monotonic()
ecs.create_service(cluster=cluster, serviceName="big", taskDefinition="capsim", desiredCount=desired,
                   capacityProviderStrategy=[{"capacityProvider": cp, "weight": 1}])
last = None
deadline = t0 + 600
while time.monotonic() < deadline:
    s = ecs.describe_services(cluster=cluster, services=["big"])["services"][0]
    inservice, total = group_size("capsim")
    now = (s["runningCount"], s["pendingCount"], inservice, total)
    if now != last:
        print(f"  {time.monotonic() - t0:6.1f}s running {now[0]} pending {now[1]} instances "
              f"{now[2]} in service / {now[3]}", file=sys.stderr)
        last = now
    if s["runningCount"] == desired and inservice == instances:
        break
    time.sleep(0.5)
else:
    raise SystemExit(f"not steady after 600 s: {last}")
elapsed = time.monotonic() - t0
# CapacityProviderReservation once steady (one datapoint a second at this time scale),
# from the first evaluation after it (the one in flight may have seen tasks waiting).
steady_at = time.time() + 2
time.sleep(settle + 2)
points = cw.get_metric_statistics(
    Namespace="AWS/ECS/ManagedScaling", MetricName="CapacityProviderReservation",
    Dimensions=[{"Name": "CapacityProviderName", "Value": cp}, {"Name": "ClusterName", "Value": cluster}],
    StartTime=steady_at, EndTime=time.time() + 1, Period=1, Statistics=["Minimum", "Maximum"])["Datapoints"]
lo = min(p["Minimum"] for p in points) if points else float("nan")
hi = max(p["Maximum"] for p in points) if points else float("nan")
inservice, total = group_size("capsim")
print(f"sim provider: 0 -> {inservice} instances, {desired} tasks all RUNNING in {elapsed:.1f} s "
      f"(target <= 60 s: {'met' if elapsed <= 60 else 'NOT met'})")
print(f"CapacityProviderReservation over the next {settle:.0f} s: min {lo:.1f}, max {hi:.1f} "
      f"({len(points)} datapoints; target 100 +-5: {'met' if points and lo >= 95 and hi <= 105 else 'NOT met'}); "
      f"group then {total} instances")
ecs.update_service(cluster=cluster, service="big", desiredCount=0)
ecs.delete_service(cluster=cluster, service="big", force=True)

# 2. local provider: one task that needs one new instance (a real agent, a real container).
cluster = "caplocal"
cp = provider(cluster, "caplocal", "#!/bin/bash\necho ECS_CLUSTER=caplocal >> /etc/ecs/ecs.config\n",
              "t3.small", 1)
ecs.register_task_definition(family="caplocal", networkMode="bridge", containerDefinitions=[
    {"name": "app", "image": "stevedore-bench-capacity:1", "memory": 64, "essential": True,
     "stopTimeout": 2}])
t0 = time.monotonic()
task = ecs.run_task(cluster=cluster, taskDefinition="caplocal",
                    capacityProviderStrategy=[{"capacityProvider": cp, "weight": 1}])["tasks"][0]
assert task["lastStatus"] == "PROVISIONING", task["lastStatus"]
marks = {}
while time.monotonic() < t0 + 300:
    t = ecs.describe_tasks(cluster=cluster, tasks=[task["taskArn"]])["tasks"][0]
    inservice, total = group_size("caplocal")
    if total and "launched" not in marks:
        marks["launched"] = time.monotonic() - t0
    if t.get("containerInstanceArn") and "placed" not in marks:
        marks["placed"] = time.monotonic() - t0
    if t["lastStatus"] == "RUNNING":
        marks["running"] = time.monotonic() - t0
        break
    time.sleep(0.1)
else:
    raise SystemExit(f"the task did not run: {t['lastStatus']}")
print(f"local provider: PROVISIONING -> RUNNING in {marks['running']:.1f} s (group grew at "
      f"{marks.get('launched', float('nan')):.1f} s, an evaluation period is 1 s here; agent registered "
      f"and task placed at {marks.get('placed', float('nan')):.1f} s; container started by "
      f"{marks['running']:.1f} s)")
ecs.stop_task(cluster=cluster, task=task["taskArn"])
PYEOF
bench_footer
