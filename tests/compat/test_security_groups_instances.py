"""Security groups of container instances, on real traffic: an instance carries groups
(its `stevedore.security-groups` attribute, set here with PutAttributes), and the host
ports its bridge tasks publish admit only what those groups allow. The seed's case: a
dynamic host port reachable through the load balancer (whose group the instance's group
admits) and not straight from a client. Traffic only to 127.0.0.1 and to containers this
test made; the host's other nftables tables are the same before and after. Needs Docker
and nft (fails under CI=true when they are missing)."""
from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request

import botocore.exceptions
import pytest

from agent_fixtures import agent_env, build_image, wait_for
from conftest import free_port, make_client, missing, unique

IMAGE = "stevedore-sg-instance-test:busybox"


def build_web_image(tmp) -> None:
    build_image(tmp, IMAGE, "sginstance",
                'CMD ["/bin/busybox","sh","-c","/bin/busybox mkdir -p /www && echo inst-ok > /www/index.html '
                '&& exec /bin/busybox httpd -f -p 80 -h /www"]\n')


env = agent_env("sginst", "sginst", image=build_web_image,
                extra=lambda cfg: {"ecs": make_client(cfg), "elbv2": make_client(cfg, "elbv2"),
                                   "ec2": make_client(cfg, "ec2")})


def nft_tables() -> list[str]:
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    return sorted(out.stdout.splitlines())


@pytest.fixture(scope="module")
def tables_before():
    if shutil.which("nft") is None or subprocess.run(["nft", "list", "tables"],
                                                       capture_output=True).returncode != 0:
        missing("nft is not usable on this host")
    return [t for t in nft_tables() if t != "table inet stevedore"]


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
            return r.read().decode().strip() == "inst-ok"
    except OSError:
        return False


def within(seconds: float, check) -> None:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < seconds, f"not within {seconds} s"
        time.sleep(0.1)


def test_dynamic_host_ports_are_reachable_only_from_the_load_balancer(env, tables_before):
    ecs, elbv2, ec2, cluster = env["ecs"], env["elbv2"], env["ec2"], env["cluster"]
    port = free_port()
    lb_group = ec2.create_security_group(GroupName=unique("alb"), Description="alb")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=lb_group, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": port, "ToPort": port,
        "IpRanges": [{"CidrIp": "127.0.0.1/32"}]}])
    hosts = ec2.create_security_group(GroupName=unique("inst"), Description="instances")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=hosts, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 1024, "ToPort": 65535,
        "UserIdGroupPairs": [{"GroupId": lb_group}]}])
    instance = ecs.list_container_instances(cluster=cluster)["containerInstanceArns"][0]
    ecs.put_attributes(cluster=cluster, attributes=[{
        "name": "stevedore.security-groups", "value": hosts, "targetType": "container-instance",
        "targetId": instance}])
    # A group an instance holds cannot be deleted (AWS's code and message).
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.delete_security_group(GroupId=hosts)
    assert e.value.response["Error"]["Code"] == "DependencyViolation"
    assert e.value.response["Error"]["Message"] == f"resource {hosts} has a dependent object"
    family = unique("web")
    td = ecs.register_task_definition(family=family, containerDefinitions=[{
        "name": "web", "image": IMAGE, "memory": 32, "essential": True, "stopTimeout": 2,
        "portMappings": [{"containerPort": 80, "hostPort": 0}]}])["taskDefinition"]["taskDefinitionArn"]
    arn = ecs.run_task(cluster=cluster, taskDefinition=td)["tasks"][0]["taskArn"]
    lb_arn = tg = None
    try:
        task = wait_for(lambda: (t := ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0])[
            "lastStatus"] == "RUNNING" and t, 90, "the task to run", env["agent"].log_tail)
        host_port = task["containers"][0]["networkBindings"][0]["hostPort"]
        ec2_id = ecs.describe_container_instances(cluster=cluster, containerInstances=[instance])[
            "containerInstances"][0]["ec2InstanceId"]
        # The instance's group admits only the load balancer's group: a client on the
        # host's loopback is refused on the published port.
        table = lambda: subprocess.run(["nft", "list", "table", "inet", "stevedore"],
                                       capture_output=True, text=True, timeout=10).stdout
        wait_for(lambda: f"tcp dport {host_port} jump host_" in table()
                 or f"tcp dport {{ {host_port} }}" in table(), 5,
                 "the instance's published port to be guarded",
                 lambda: table() + json.dumps(task["containers"][0]) + env["srv"].log_tail())
        assert not answers(host_port)
        lb_arn = elbv2.create_load_balancer(Name=unique("alb"), SecurityGroups=[lb_group])[
            "LoadBalancers"][0]["LoadBalancerArn"]
        tg = elbv2.create_target_group(
            Name=unique("tg"), Protocol="HTTP", Port=80, VpcId="vpc-local", TargetType="instance",
            HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2,
            UnhealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
        elbv2.register_targets(TargetGroupArn=tg, Targets=[{"Id": ec2_id, "Port": host_port}])
        elbv2.create_listener(LoadBalancerArn=lb_arn, Protocol="HTTP", Port=port,
                              DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
        # Through the listener: the load balancer's marked connections are admitted.
        wait_for(lambda: elbv2.describe_target_health(TargetGroupArn=tg)[
            "TargetHealthDescriptions"][0]["TargetHealth"]["State"] == "healthy", 60,
            "the target to pass the load balancer's checks", env["srv"].log_tail)
        within(3, lambda: answers(port))
        # Straight to the dynamic port: still refused.
        assert not answers(host_port)
    finally:
        if lb_arn:
            elbv2.delete_load_balancer(LoadBalancerArn=lb_arn)
        ecs.stop_task(cluster=cluster, task=arn)
        ecs.delete_attributes(cluster=cluster, attributes=[{
            "name": "stevedore.security-groups", "targetType": "container-instance",
            "targetId": instance}])
    wait_for(lambda: "table inet stevedore" not in nft_tables(), 60,
             "Stevedore's nftables table to be removed", env["srv"].log_tail)
    if tg:
        elbv2.delete_target_group(TargetGroupArn=tg)
    assert nft_tables() == tables_before
    # Its attribute gone, the instance no longer holds the group.
    ec2.delete_security_group(GroupId=hosts)
