"""Security groups enforced on real traffic, end to end: boto3 and the aws CLI against a
`stevedore server` whose Fargate provisioner runs busybox tasks in the default VPC's
subnet. Two tasks in the default group (A) and one in a new group B: A reaches A by the
default rule; B cannot reach A until A admits B's group on the port, and cannot again
within a second of the revoke; a CIDR rule; egress restricted to one port. Only
addresses of tasks this test made are contacted. Stevedore's nftables table is its
own: the host's other tables are the same before and after. Also the EC2 API's answers
for what botocore reads (default VPC, errors). Needs Docker and nft (fails under
CI=true when they are missing, skips otherwise)."""
from __future__ import annotations

import json
import shutil
import subprocess
import time

import botocore.exceptions
import pytest
import requests

from agent_fixtures import (SH_IMAGE as IMAGE, agent_env, build_sh_image, docker_offers_runsc,
                            http_body, wait_for)
from conftest import free_port, make_client, missing, unique

SANDBOX = "runsc" if docker_offers_runsc() else "runc"
env = agent_env("sg", "sg", image=build_sh_image, agents=(),
                cluster_args=("--capacity-providers", "FARGATE"),
                server_env={} if SANDBOX == "runsc" else {"STEVEDORE_FARGATE_SANDBOX": "runc"})

PORT = 8080


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


@pytest.fixture(scope="module")
def ec2(env):
    return make_client(env["cfg"], "ec2")


def group_of(ec2, name: str) -> str:
    return ec2.describe_security_groups(GroupNames=[name])["SecurityGroups"][0]["GroupId"]


def run(env, family: str, subnet: str, groups: list[str]) -> dict:
    aws, cluster = env["aws"], env["cluster"]
    net = json.dumps({"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": groups}})
    out = aws.run("ecs", "run-task", "--cluster", cluster, "--task-definition", family,
                  "--launch-type", "FARGATE", "--network-configuration", net)
    assert not out["failures"], out
    arn = out["tasks"][0]["taskArn"]
    task = wait_for(lambda: (t := aws.run("ecs", "describe-tasks", "--cluster", cluster,
                                          "--tasks", arn)["tasks"][0])["lastStatus"] == "RUNNING"
                    and t, 90, "a task to run", env["srv"].log_tail)
    att = [a for a in task["attachments"] if a["type"] == "ElasticNetworkInterface"][0]
    details = {d["name"]: d["value"] for d in att["details"]}
    cid = subprocess.run(["docker", "ps", "-q", "--no-trunc", "--filter",
                          f"label=com.amazonaws.ecs.task-arn={arn}", "--filter",
                          "label=com.amazonaws.ecs.container-name=app"],
                         capture_output=True, text=True, timeout=30).stdout.split()[0]
    return {"arn": arn, "ip": details["privateIPv4Address"], "eni": details["networkInterfaceId"],
            "subnet": details["subnetId"], "cid": cid}


def reaches(src: dict, dst: dict, port: int = PORT) -> bool:
    """Whether `src`'s container gets an answer from `dst`'s httpd (busybox nc, 2 s
    timeout; busybox wget crashes under `docker exec` in this image)."""
    script = (f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | "
              f"/bin/busybox nc -w 2 {dst['ip']} {port}")
    out = subprocess.run(["docker", "exec", src["cid"], "/bin/sh", "-c", script],
                         capture_output=True, text=True, timeout=20)
    return "sg-ok" in out.stdout


def within(seconds: float, check) -> float:
    """How long until `check()` holds, failing after `seconds`."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < seconds, f"not within {seconds} s"
        time.sleep(0.1)
    return time.monotonic() - start


def test_default_vpc_subnets_and_groups_as_aws_creates_them(ec2):
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    assert len(vpcs) == 1 and vpcs[0]["CidrBlock"] == "172.31.0.0/16", vpcs
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpcs[0]["VpcId"]]}])[
        "Subnets"]
    assert len(subnets) == 3 and all(s["DefaultForAz"] for s in subnets), subnets
    assert sorted(s["CidrBlock"] for s in subnets) == ["172.31.0.0/20", "172.31.16.0/20",
                                                       "172.31.32.0/20"]
    default = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]
    assert default["IpPermissions"][0]["UserIdGroupPairs"][0]["GroupId"] == default["GroupId"]
    assert default["IpPermissionsEgress"][0]["IpProtocol"] == "-1"
    assert "FromPort" not in default["IpPermissionsEgress"][0]
    zones = ec2.describe_availability_zones()["AvailabilityZones"]
    assert [z["ZoneName"] for z in zones] == ["us-east-1a", "us-east-1b", "us-east-1c"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_security_groups(GroupIds=["sg-0123456789abcdef0"])
    assert e.value.response["Error"]["Code"] == "InvalidGroup.NotFound"
    assert e.value.response["Error"]["Message"] == \
        "The security group 'sg-0123456789abcdef0' does not exist"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_subnet(VpcId=vpcs[0]["VpcId"], CidrBlock="10.9.0.0/24")
    assert e.value.response["Error"]["Code"] == "InvalidSubnet.Range"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.delete_security_group(GroupId=default["GroupId"])
    assert e.value.response["Error"]["Code"] == "CannotDelete"


def test_unknown_subnets_and_groups_are_refused_by_run_task(env, ec2):
    aws, cluster = env["aws"], env["cluster"]
    family = unique("sgbad")
    register(aws, family)
    for net, needle in [({"subnets": ["subnet-0000000000000000a"]}, "InvalidSubnetID.NotFound"),
                        ({"subnets": [default_subnet(ec2)], "securityGroups": ["sg-00000000000000000"]},
                         "InvalidGroup.NotFound")]:
        out = aws.run("ecs", "run-task", "--cluster", cluster, "--task-definition", family,
                      "--launch-type", "FARGATE", "--network-configuration",
                      json.dumps({"awsvpcConfiguration": net}), check=False)
        assert "InvalidParameterException" in str(out) and needle in str(out), out


def default_subnet(ec2) -> str:
    return ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]},
                                         {"Name": "availability-zone",
                                          "Values": ["us-east-1a"]}])["Subnets"][0]["SubnetId"]


def register(aws, family: str) -> None:
    aws.run("ecs", "register-task-definition", "--family", family, "--network-mode", "awsvpc",
            "--requires-compatibilities", "FARGATE", "--cpu", "256", "--memory", "512",
            "--container-definitions", json.dumps([
                {"name": "app", "image": IMAGE, "essential": True, "stopTimeout": 2,
                 "command": ["/bin/sh", "-c",
                             "mkdir -p /www && echo sg-ok > /www/index.html && "
                             f"exec /bin/busybox httpd -f -p {PORT} -h /www"]}]))


def test_groups_filter_real_traffic_and_changes_apply_within_a_second(env, ec2, tables_before):
    aws, cluster = env["aws"], env["cluster"]
    subnet = default_subnet(ec2)
    a = group_of(ec2, "default")
    b = ec2.create_security_group(GroupName=unique("b"), Description="group B")["GroupId"]
    family = unique("sg")
    register(aws, family)
    a1, a2 = run(env, family, subnet, [a]), run(env, family, subnet, [a])
    b1 = run(env, family, subnet, [b])
    try:
        assert all(t["ip"].startswith("172.31.") for t in (a1, a2, b1)), (a1, a2, b1)
        assert "table inet stevedore" in nft_tables()
        # The task ENIs are EC2's network interfaces, with their groups.
        enis = ec2.describe_network_interfaces(
            Filters=[{"Name": "group-id", "Values": [b]}])["NetworkInterfaces"]
        assert [(i["NetworkInterfaceId"], i["PrivateIpAddress"], i["SubnetId"]) for i in enis] == \
            [(b1["eni"], b1["ip"], subnet)]
        # A -> A by the default group's self rule; B -> A refused: A admits nobody else.
        for t in (a1, a2, b1):  # the host is not filtered: it sees each httpd up
            wait_for(lambda t=t: http_body(f"http://{t['ip']}:{PORT}/"), 30, f"httpd on {t['ip']}")
        within(10, lambda: reaches(a1, a2))
        assert not reaches(b1, a1)
        # Admit B's members on the port (the aws CLI's --source-group form).
        aws.run("ec2", "authorize-security-group-ingress", "--group-id", a, "--protocol", "tcp",
                "--port", str(PORT), "--source-group", b)
        within(1.5, lambda: reaches(b1, a1))
        # Revoked: refused again within a second.
        aws.run("ec2", "revoke-security-group-ingress", "--group-id", a, "--protocol", "tcp",
                "--port", str(PORT), "--source-group", b)
        time.sleep(1.0)
        assert not reaches(b1, a1)
        # A CIDR rule: B's address alone.
        ec2.authorize_security_group_ingress(GroupId=a, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": PORT, "ToPort": PORT,
            "IpRanges": [{"CidrIp": f"{b1['ip']}/32"}]}])
        within(1.5, lambda: reaches(b1, a1))
        ec2.revoke_security_group_ingress(GroupId=a, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": PORT, "ToPort": PORT,
            "IpRanges": [{"CidrIp": f"{b1['ip']}/32"}]}])
        # Egress restricted to one port: A's members may only send to port 9 now, so A
        # no longer reaches A on PORT; restoring the rule restores the traffic.
        everything = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
        ec2.revoke_security_group_egress(GroupId=a, IpPermissions=everything)
        ec2.authorize_security_group_egress(GroupId=a, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 9, "ToPort": 9, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        time.sleep(1.0)
        assert not reaches(a1, a2)
        ec2.authorize_security_group_egress(GroupId=a, IpPermissions=everything)
        within(1.5, lambda: reaches(a1, a2))
        # A group in use cannot be deleted.
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ec2.delete_security_group(GroupId=b)
        assert e.value.response["Error"]["Code"] == "DependencyViolation"
    finally:
        for t in (a1, a2, b1):
            aws.run("ecs", "stop-task", "--cluster", cluster, "--task", t["arn"])
    # Once no task needs it, Stevedore's table goes; nothing else was touched.
    wait_for(lambda: "table inet stevedore" not in nft_tables(), 90,
             "Stevedore's nftables table to be removed", env["srv"].log_tail)
    assert nft_tables() == tables_before


def listener_answers(port: int) -> bool:
    """Whether the listener on 127.0.0.1:`port` answers (a dropped SYN times out)."""
    try:
        return requests.get(f"http://127.0.0.1:{port}/", timeout=1).text == "lb-ok"
    except requests.RequestException:
        return False


def test_load_balancer_groups_guard_its_listeners_on_loopback(env, ec2, tables_before):
    elbv2 = make_client(env["cfg"], "elbv2")
    closed = ec2.create_security_group(GroupName=unique("lbc"), Description="no ingress")["GroupId"]
    opened = ec2.create_security_group(GroupName=unique("lbo"), Description="loopback")["GroupId"]
    port = free_port()
    ec2.authorize_security_group_ingress(GroupId=opened, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": port, "ToPort": port,
        "IpRanges": [{"CidrIp": "127.0.0.1/32"}]}])
    # A group that does not exist is refused, not stored.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        elbv2.create_load_balancer(Name=unique("lb"), SecurityGroups=["sg-0123456789abcdef0"])
    assert e.value.response["Error"]["Code"] == "InvalidSecurityGroup"
    lb = elbv2.create_load_balancer(Name=unique("lb"), SecurityGroups=[closed])["LoadBalancers"][0]
    arn = lb["LoadBalancerArn"]
    assert lb["SecurityGroups"] == [closed]
    try:
        # A group a load balancer holds cannot be deleted (AWS's code and message).
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ec2.delete_security_group(GroupId=closed)
        assert e.value.response["Error"]["Code"] == "DependencyViolation"
        assert e.value.response["Error"]["Message"] == f"resource {closed} has a dependent object"
        elbv2.create_listener(LoadBalancerArn=arn, Protocol="HTTP", Port=port, DefaultActions=[{
            "Type": "fixed-response", "FixedResponseConfig": {
                "StatusCode": "200", "ContentType": "text/plain", "MessageBody": "lb-ok"}}])
        # The group admits nothing: the listener's port is guarded in Stevedore's table.
        within(5, lambda: subprocess.run(
            ["nft", "list", "chain", "inet", "stevedore", f"lb_{port}"],
            capture_output=True, timeout=10).returncode == 0)
        assert not listener_answers(port)
        # Ingress on the listener's port from the loopback address: admitted.
        ec2.authorize_security_group_ingress(GroupId=closed, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": port, "ToPort": port,
            "IpRanges": [{"CidrIp": "127.0.0.0/8"}]}])
        within(1.5, lambda: listener_answers(port))
        ec2.revoke_security_group_ingress(GroupId=closed, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": port, "ToPort": port,
            "IpRanges": [{"CidrIp": "127.0.0.0/8"}]}])
        within(1.5, lambda: not listener_answers(port))
        # SetSecurityGroups replaces the groups: the other group's rule now decides.
        out = elbv2.set_security_groups(LoadBalancerArn=arn, SecurityGroups=[opened])
        assert out["SecurityGroupIds"] == [opened]
        within(1.5, lambda: listener_answers(port))
        assert elbv2.describe_load_balancers(LoadBalancerArns=[arn])[
            "LoadBalancers"][0]["SecurityGroups"] == [opened]
        elbv2.set_security_groups(LoadBalancerArn=arn, SecurityGroups=[closed])
        within(1.5, lambda: not listener_answers(port))
        with pytest.raises(botocore.exceptions.ClientError) as e:
            elbv2.set_security_groups(LoadBalancerArn=arn, SecurityGroups=["sg-0123456789abcdef0"])
        assert e.value.response["Error"]["Code"] == "InvalidSecurityGroup"
        # A network load balancer created without groups cannot get them (as in AWS).
        nlb = elbv2.create_load_balancer(Name=unique("nlb"), Type="network")["LoadBalancers"][0]
        with pytest.raises(botocore.exceptions.ClientError) as e:
            elbv2.set_security_groups(LoadBalancerArn=nlb["LoadBalancerArn"], SecurityGroups=[opened])
        assert e.value.response["Error"]["Code"] == "InvalidConfigurationRequest"
        elbv2.delete_load_balancer(LoadBalancerArn=nlb["LoadBalancerArn"])
    finally:
        elbv2.delete_load_balancer(LoadBalancerArn=arn)
    # The guard goes with the load balancer; nothing else on the host was touched.
    wait_for(lambda: "table inet stevedore" not in nft_tables(), 30,
             "Stevedore's nftables table to be removed", env["srv"].log_tail)
    assert nft_tables() == tables_before
    # With the load balancer gone, its groups can go.
    for group in (closed, opened):
        ec2.delete_security_group(GroupId=group)


def through(port: int) -> str | None:
    try:
        return requests.get(f"http://127.0.0.1:{port}/", timeout=2).text.strip()
    except requests.RequestException:
        return None


def test_targets_admit_the_load_balancers_group_and_nobody_else(env, ec2, tables_before):
    """An ALB in group L; targets in group T admit L on their port, one target in group O
    admits nobody. The ALB's health checks and requests (marked by the data plane) reach
    T's task, not O's; a task outside L cannot reach T's task straight; revoking L on T
    cuts the load balancer off too."""
    aws, cluster = env["aws"], env["cluster"]
    elbv2 = make_client(env["cfg"], "elbv2")
    subnet, port = default_subnet(ec2), free_port()
    lb_group = ec2.create_security_group(GroupName=unique("l"), Description="alb")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=lb_group, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": port, "ToPort": port,
        "IpRanges": [{"CidrIp": "127.0.0.1/32"}]}])
    targets = ec2.create_security_group(GroupName=unique("t"), Description="targets")["GroupId"]
    from_lb = [{"IpProtocol": "tcp", "FromPort": PORT, "ToPort": PORT,
                "UserIdGroupPairs": [{"GroupId": lb_group}]}]
    ec2.authorize_security_group_ingress(GroupId=targets, IpPermissions=from_lb)
    others = ec2.create_security_group(GroupName=unique("o"), Description="others")["GroupId"]
    family = unique("sgt")
    register(aws, family)
    admitted, shut = run(env, family, subnet, [targets]), run(env, family, subnet, [others])
    lb_arn = elbv2.create_load_balancer(Name=unique("lb"), SecurityGroups=[lb_group])[
        "LoadBalancers"][0]["LoadBalancerArn"]
    tg_arn = elbv2.create_target_group(
        Name=unique("tg"), Protocol="HTTP", Port=PORT, VpcId="vpc-1", TargetType="ip",
        HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2,
        UnhealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]

    def health() -> dict:
        out = elbv2.describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]
        return {d["Target"]["Id"]: d["TargetHealth"]["State"] for d in out}

    try:
        elbv2.register_targets(TargetGroupArn=tg_arn, Targets=[
            {"Id": admitted["ip"], "Port": PORT}, {"Id": shut["ip"], "Port": PORT}])
        elbv2.create_listener(LoadBalancerArn=lb_arn, Protocol="HTTP", Port=port,
                              DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}])
        # Health checks come from the load balancer: only the target admitting its group
        # passes them.
        wait_for(lambda: health() == {admitted["ip"]: "healthy", shut["ip"]: "unhealthy"}, 90,
                 "health checks to pass on T's target only", env["srv"].log_tail)
        assert [through(port) for _ in range(4)] == ["sg-ok"] * 4
        # Straight to the target from a task outside the load balancer's group: refused.
        assert not reaches(shut, admitted)
        # Revoked: the load balancer's own traffic is refused too.
        ec2.revoke_security_group_ingress(GroupId=targets, IpPermissions=from_lb)
        wait_for(lambda: health()[admitted["ip"]] == "unhealthy", 60,
                 "the target to fail the load balancer's checks", env["srv"].log_tail)
    finally:
        elbv2.delete_load_balancer(LoadBalancerArn=lb_arn)
        for t in (admitted, shut):
            aws.run("ecs", "stop-task", "--cluster", cluster, "--task", t["arn"])
    wait_for(lambda: "table inet stevedore" not in nft_tables(), 90,
             "Stevedore's nftables table to be removed", env["srv"].log_tail)
    elbv2.delete_target_group(TargetGroupArn=tg_arn)
    assert nft_tables() == tables_before


def stevedore_table() -> str:
    """Stevedore's table as listed, its blocks (sets, maps, chains) sorted: nft lists them
    in creation order, which a change batch does not keep and which means nothing."""
    out = subprocess.run(["nft", "list", "table", "inet", "stevedore"], capture_output=True,
                         text=True, timeout=10)
    if out.returncode != 0:
        return ""
    body = out.stdout.strip().removeprefix("table inet stevedore {").removesuffix("}")
    return "\n\n".join(sorted(b.strip() for b in body.split("\n\n")))


def test_restart_after_kill_rebuilds_exactly_the_stated_rules(env, ec2, tables_before):
    """kill -9 the server, inject a stale chain and rule into Stevedore's table, restart:
    the table is exactly what the state describes again, other tables untouched."""
    elbv2 = make_client(env["cfg"], "elbv2")
    port = free_port()
    group = ec2.create_security_group(GroupName=unique("rs"), Description="restart")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": port, "ToPort": port,
        "IpRanges": [{"CidrIp": "127.0.0.1/32"}]}])
    arn = elbv2.create_load_balancer(Name=unique("lb"), SecurityGroups=[group])[
        "LoadBalancers"][0]["LoadBalancerArn"]
    try:
        elbv2.create_listener(LoadBalancerArn=arn, Protocol="HTTP", Port=port, DefaultActions=[{
            "Type": "fixed-response", "FixedResponseConfig": {
                "StatusCode": "200", "ContentType": "text/plain", "MessageBody": "lb-ok"}}])
        within(10, lambda: f"chain lb_{port}" in stevedore_table() and listener_answers(port))
        expected = stevedore_table()
        srv = env["srv"]
        srv.kill()  # SIGKILL: nothing is cleaned up on the way out
        for stale in (["add", "chain", "inet", "stevedore", "stale"],
                      ["insert", "rule", "inet", "stevedore", "input", "tcp", "dport", str(port),
                       "drop"]):
            subprocess.run(["nft", *stale], check=True, capture_output=True, timeout=10)
        assert stevedore_table() != expected
        srv.start()
        wait_for(lambda: stevedore_table() == expected, 30,
                 "the table to equal the state's rules again", srv.log_tail)
        assert listener_answers(port)
        assert [t for t in nft_tables() if t != "table inet stevedore"] == tables_before
    finally:
        elbv2.delete_load_balancer(LoadBalancerArn=arn)
    wait_for(lambda: "table inet stevedore" not in nft_tables(), 30,
             "Stevedore's nftables table to be removed", env["srv"].log_tail)
    assert nft_tables() == tables_before
