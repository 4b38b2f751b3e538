"""AWS/ECS metrics from real containers: an agent sampling every second reports its
running containers' CPU and memory; the server publishes CPUUtilization and
MemoryUtilization per service (used ÷ reserved) and per cluster, and CPUReservation /
MemoryReservation per cluster, readable with CloudWatch's API (boto3 and the aws CLI).
A container burning a core while it reserved half of one shows well over 100 % CPU, as
AWS reports it. Needs Docker (fails under CI=true when it is missing)."""
from __future__ import annotations

import datetime
import json

from agent_fixtures import IMAGE, agent_env, wait_for
from conftest import make_client, unique

env = agent_env("ecs-metrics", "metrics", agents=(("--metrics-interval", "1s"),))

BURN = ["/bin/busybox", "sh", "-c", "while :; do :; done"]


def stats(cw, metric: str, dims: dict, statistics=("Average", "Maximum", "SampleCount")) -> list:
    now = datetime.datetime.now(datetime.timezone.utc)
    got = cw.get_metric_statistics(
        Namespace="AWS/ECS", MetricName=metric,
        Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()],
        StartTime=now - datetime.timedelta(minutes=10), EndTime=now + datetime.timedelta(minutes=1),
        Period=60, Statistics=list(statistics))
    return got["Datapoints"]


def test_a_busy_services_cpu_and_memory_and_the_clusters_reservation(env):
    cfg, aws, cluster = env["cfg"], env["aws"], env["cluster"]
    ecs, cw = make_client(cfg, "ecs"), make_client(cfg, "cloudwatch")
    family, service = unique("burn"), unique("svc")
    ecs.register_task_definition(family=family, networkMode="bridge", containerDefinitions=[{
        "name": "burn", "image": IMAGE, "cpu": 512, "memory": 64, "essential": True,
        "command": BURN}])
    ecs.create_service(cluster=cluster, serviceName=service, taskDefinition=family, desiredCount=1)
    try:
        wait_for(lambda: ecs.describe_services(cluster=cluster, services=[service])
                 ["services"][0]["runningCount"] == 1, 90, "the task to run")
        dims = {"ClusterName": cluster, "ServiceName": service}

        def busy():
            points = stats(cw, "CPUUtilization", dims)
            return points if any(p["Maximum"] > 50 for p in points) else None

        points = wait_for(busy, 60, "the service's CPUUtilization")
        assert all(p["Unit"] == "Percent" for p in points)
        memory = wait_for(lambda: stats(cw, "MemoryUtilization", dims), 30,
                          "the service's MemoryUtilization")
        assert all(0 <= p["Average"] < 100 for p in memory), memory

        # The cluster's reservation: 512 of what the instance registered.
        instances = ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
        registered = ecs.describe_container_instances(cluster=cluster, containerInstances=instances)[
            "containerInstances"][0]["registeredResources"]
        cpu = next(r["integerValue"] for r in registered if r["name"] == "CPU")
        reservation = wait_for(lambda: stats(cw, "CPUReservation", {"ClusterName": cluster}), 30,
                               "the cluster's CPUReservation")
        assert any(abs(p["Maximum"] - 512 / cpu * 100) < 0.01 for p in reservation), (reservation, cpu)
        assert stats(cw, "CPUUtilization", {"ClusterName": cluster})

        # The aws CLI reads the same series, and ListMetrics names them.
        listed = aws.run("cloudwatch", "list-metrics", "--namespace", "AWS/ECS",
                         "--dimensions", f"Name=ServiceName,Value={service}")["Metrics"]
        assert {m["MetricName"] for m in listed} == {"CPUUtilization", "MemoryUtilization"}
    finally:
        ecs.update_service(cluster=cluster, service=service, desiredCount=0)
        ecs.delete_service(cluster=cluster, service=service, force=True)
