"""ELBv2 (control side) through boto3 and the aws CLI: load balancers, target groups,
listeners, rules, targets, tags, attributes, paginators and waiters.

The query protocol answers in XML that botocore must parse: every call here goes through
botocore's QueryParser, and every error through its modeled exception classes (the wire
code is the shape's `error.code`, e.g. `TargetGroupNotFound`). The server's data plane
checks the (unreachable) targets here, so health is only asserted up to `initial`,
`unused` and `draining`; test_lb_services.py covers healthy and unhealthy targets.
"""

from __future__ import annotations

import botocore.exceptions
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from conftest import ACCOUNT_ID, REGION, free_port, make_client, unique

ARN_PREFIX = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT_ID}:"
FAST = {"Delay": 1, "MaxAttempts": 5}


@pytest.fixture(scope="module")
def elbv2(server):
    return make_client(server, "elbv2")


@pytest.fixture(scope="module")
def elbv2_unvalidated(server):
    return make_client(server, "elbv2", parameter_validation=False)


def code_of(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def new_lb(elbv2, kind: str = "application", **kw) -> dict:
    return elbv2.create_load_balancer(Name=unique("lb"), Type=kind, **kw)["LoadBalancers"][0]


def new_tg(elbv2, protocol: str = "HTTP", target_type: str = "ip", **kw) -> dict:
    return elbv2.create_target_group(
        Name=unique("tg"), Protocol=protocol, Port=8080, VpcId="vpc-1", TargetType=target_type, **kw
    )["TargetGroups"][0]


def forward(tg_arn: str) -> list:
    return [{"Type": "forward", "TargetGroupArn": tg_arn}]


def new_listener(elbv2, lb: dict, tg: dict, protocol: str = "HTTP") -> dict:
    return elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol=protocol, Port=free_port(), DefaultActions=forward(tg["TargetGroupArn"])
    )["Listeners"][0]


def test_load_balancer_lifecycle_with_waiters(server, elbv2):
    name = unique("lb")
    ec2 = make_client(server, "ec2")
    sg = ec2.create_security_group(GroupName=unique("lbsg"), Description="lb")["GroupId"]
    # A group that does not exist is refused, never stored (it could not act).
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        elbv2.create_load_balancer(Name=name, SecurityGroups=["sg-0123456789abcdef0"])
    assert code_of(exc) == "InvalidSecurityGroup"
    lb = elbv2.create_load_balancer(
        Name=name,
        Subnets=["subnet-a", "subnet-b"],
        SecurityGroups=[sg],
        Scheme="internal",
        Tags=[{"Key": "team", "Value": "core"}],
    )["LoadBalancers"][0]
    assert lb["LoadBalancerArn"].startswith(f"{ARN_PREFIX}loadbalancer/app/{name}/")
    assert len(lb["LoadBalancerArn"].rsplit("/", 1)[1]) == 16
    assert lb["DNSName"] == "127.0.0.1"
    assert lb["State"] == {"Code": "active"}
    assert lb["Type"] == "application" and lb["Scheme"] == "internal"
    assert [z["SubnetId"] for z in lb["AvailabilityZones"]] == ["subnet-a", "subnet-b"]
    assert lb["AvailabilityZones"][0]["ZoneName"] == f"{REGION}a"
    assert lb["SecurityGroups"] == [sg]
    assert lb["CanonicalHostedZoneId"] and lb["VpcId"]
    assert lb["CreatedTime"].year >= 2024
    # Same name and settings: the same load balancer back.
    again = elbv2.create_load_balancer(Name=name, Subnets=["subnet-a", "subnet-b"], SecurityGroups=[sg], Scheme="internal")
    assert again["LoadBalancers"][0]["LoadBalancerArn"] == lb["LoadBalancerArn"]
    elbv2.get_waiter("load_balancer_exists").wait(Names=[name], WaiterConfig=FAST)
    elbv2.get_waiter("load_balancer_available").wait(LoadBalancerArns=[lb["LoadBalancerArn"]], WaiterConfig=FAST)
    by_name = elbv2.describe_load_balancers(Names=[name])["LoadBalancers"]
    assert [b["LoadBalancerArn"] for b in by_name] == [lb["LoadBalancerArn"]]
    attrs = {a["Key"]: a["Value"] for a in elbv2.describe_load_balancer_attributes(LoadBalancerArn=lb["LoadBalancerArn"])["Attributes"]}
    assert attrs["deletion_protection.enabled"] == "false"
    assert attrs["idle_timeout.timeout_seconds"] == "60"
    out = elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=lb["LoadBalancerArn"], Attributes=[{"Key": "deletion_protection.enabled", "Value": "true"}]
    )
    assert {"Key": "deletion_protection.enabled", "Value": "true"} in out["Attributes"]
    with pytest.raises(elbv2.exceptions.OperationNotPermittedException):
        elbv2.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=lb["LoadBalancerArn"], Attributes=[{"Key": "deletion_protection.enabled", "Value": "false"}]
    )
    elbv2.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    elbv2.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])  # already gone: still succeeds
    elbv2.get_waiter("load_balancers_deleted").wait(LoadBalancerArns=[lb["LoadBalancerArn"]], WaiterConfig=FAST)
    with pytest.raises(elbv2.exceptions.LoadBalancerNotFoundException):
        elbv2.describe_load_balancers(Names=[name])


def test_load_balancer_errors_use_modeled_codes(elbv2, elbv2_unvalidated):
    lb = new_lb(elbv2)
    with pytest.raises(elbv2.exceptions.DuplicateLoadBalancerNameException):
        elbv2.create_load_balancer(Name=lb["LoadBalancerName"], Type="network")
    for bad in ["-x", "internal-x", "a_b", "x" * 33]:
        with pytest.raises(botocore.exceptions.ClientError) as exc:
            elbv2.create_load_balancer(Name=bad)
        assert code_of(exc) == "ValidationError", bad
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert exc.value.response["ResponseMetadata"]["RequestId"]
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        elbv2_unvalidated.describe_load_balancers(PageSize=0)
    assert code_of(exc) == "ValidationError"
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        elbv2.describe_load_balancers(LoadBalancerArns=["not-an-arn"])
    assert code_of(exc) in ("ValidationError", "LoadBalancerNotFound")


def test_network_load_balancer_tcp_listener(elbv2):
    lb = new_lb(elbv2, "network")
    assert ":loadbalancer/net/" in lb["LoadBalancerArn"] and lb["Type"] == "network"
    tg = new_tg(elbv2, "TCP")
    assert tg["HealthCheckProtocol"] == "TCP" and "Matcher" not in tg
    listener = new_listener(elbv2, lb, tg, "TCP")
    assert listener["Protocol"] == "TCP" and ":listener/net/" in listener["ListenerArn"]
    with pytest.raises(elbv2.exceptions.IncompatibleProtocolsException):
        elbv2.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=free_port(), DefaultActions=forward(tg["TargetGroupArn"]))
    with pytest.raises(elbv2.exceptions.InvalidLoadBalancerActionException):
        elbv2.create_listener(
            LoadBalancerArn=lb["LoadBalancerArn"],
            Protocol="TCP",
            Port=free_port(),
            DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200"}}],
        )


def test_target_groups_defaults_attributes_and_paginator(elbv2, elbv2_unvalidated):
    tg = elbv2.create_target_group(
        Name=unique("tg"),
        Protocol="HTTP",
        Port=80,
        VpcId="vpc-1",
        HealthCheckPath="/healthz",
        HealthCheckIntervalSeconds=10,
        Matcher={"HttpCode": "200-299"},
        Tags=[{"Key": "a", "Value": "b"}],
    )["TargetGroups"][0]
    assert tg["TargetGroupArn"].startswith(f"{ARN_PREFIX}targetgroup/{tg['TargetGroupName']}/")
    assert tg["HealthCheckPath"] == "/healthz" and tg["HealthCheckIntervalSeconds"] == 10
    assert tg["HealthCheckTimeoutSeconds"] == 5 and tg["HealthyThresholdCount"] == 5 and tg["UnhealthyThresholdCount"] == 2
    assert tg["Matcher"] == {"HttpCode": "200-299"} and tg["HealthCheckPort"] == "traffic-port"
    assert tg["HealthCheckEnabled"] is True and tg["TargetType"] == "instance" and tg["LoadBalancerArns"] == []
    with pytest.raises(elbv2.exceptions.DuplicateTargetGroupNameException):
        elbv2.create_target_group(Name=tg["TargetGroupName"], Protocol="HTTP", Port=81, VpcId="vpc-1")
    for kw in (
        {"HealthCheckIntervalSeconds": 5, "HealthCheckTimeoutSeconds": 5},
        {"Matcher": {"HttpCode": "abc"}},
    ):
        with pytest.raises(botocore.exceptions.ClientError) as exc:
            elbv2.create_target_group(Name=unique("tg"), Protocol="HTTP", Port=80, VpcId="vpc-1", **kw)
        assert code_of(exc) == "ValidationError", kw
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        elbv2_unvalidated.create_target_group(Name=unique("tg"), Protocol="HTTP", Port=0, VpcId="vpc-1")
    assert code_of(exc) == "ValidationError"
    with pytest.raises(elbv2.exceptions.UnsupportedProtocolException):
        elbv2.create_target_group(Name=unique("tg"), Protocol="HTTPS", Port=443, VpcId="vpc-1")
    modified = elbv2.modify_target_group(TargetGroupArn=tg["TargetGroupArn"], HealthCheckPath="/ready", UnhealthyThresholdCount=3)
    assert modified["TargetGroups"][0]["HealthCheckPath"] == "/ready"
    assert modified["TargetGroups"][0]["UnhealthyThresholdCount"] == 3
    attrs = {a["Key"]: a["Value"] for a in elbv2.describe_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"])["Attributes"]}
    assert attrs["deregistration_delay.timeout_seconds"] == "300"
    assert attrs["load_balancing.algorithm.type"] == "round_robin"
    assert attrs["stickiness.enabled"] == "false" and attrs["stickiness.type"] == "lb_cookie"
    out = elbv2.modify_target_group_attributes(
        TargetGroupArn=tg["TargetGroupArn"],
        Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": "30"},
            {"Key": "load_balancing.algorithm.type", "Value": "least_outstanding_requests"},
            {"Key": "stickiness.enabled", "Value": "true"},
            {"Key": "stickiness.lb_cookie.duration_seconds", "Value": "600"},
        ],
    )
    got = {a["Key"]: a["Value"] for a in out["Attributes"]}
    assert got["deregistration_delay.timeout_seconds"] == "30"
    assert got["load_balancing.algorithm.type"] == "least_outstanding_requests"
    assert got["stickiness.lb_cookie.duration_seconds"] == "600"
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        elbv2.modify_target_group_attributes(
            TargetGroupArn=tg["TargetGroupArn"], Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "9999"}]
        )
    assert code_of(exc) == "ValidationError"
    names = [new_tg(elbv2)["TargetGroupName"] for _ in range(5)]
    pages = list(elbv2.get_paginator("describe_target_groups").paginate(PaginationConfig={"PageSize": 2}))
    assert len(pages) >= 3 and all(len(p["TargetGroups"]) <= 2 for p in pages)
    seen = [t["TargetGroupName"] for p in pages for t in p["TargetGroups"]]
    assert len(seen) == len(set(seen)) and set(names) <= set(seen)
    by_name = elbv2.describe_target_groups(Names=names[:2])["TargetGroups"]
    assert sorted(t["TargetGroupName"] for t in by_name) == sorted(names[:2])
    with pytest.raises(elbv2.exceptions.TargetGroupNotFoundException):
        elbv2.describe_target_groups(Names=[unique("missing")])
    elbv2.delete_target_group(TargetGroupArn=tg["TargetGroupArn"])
    with pytest.raises(elbv2.exceptions.TargetGroupNotFoundException):
        elbv2.describe_target_groups(TargetGroupArns=[tg["TargetGroupArn"]])


def test_listeners_actions_and_their_errors(elbv2):
    lb, other = new_lb(elbv2), new_lb(elbv2)
    tg, tg2, tcp = new_tg(elbv2), new_tg(elbv2), new_tg(elbv2, "TCP")
    port = free_port()
    listener = elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=port,
        DefaultActions=[
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": tg["TargetGroupArn"], "Weight": 80},
                        {"TargetGroupArn": tg2["TargetGroupArn"], "Weight": 20},
                    ],
                    "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 60},
                },
            }
        ],
    )["Listeners"][0]
    assert listener["Port"] == port and listener["Protocol"] == "HTTP"
    assert listener["ListenerArn"].startswith(lb["LoadBalancerArn"].replace(":loadbalancer/", ":listener/") + "/")
    fc = listener["DefaultActions"][0]["ForwardConfig"]
    assert [(g["TargetGroupArn"], g["Weight"]) for g in fc["TargetGroups"]] == [(tg["TargetGroupArn"], 80), (tg2["TargetGroupArn"], 20)]
    assert fc["TargetGroupStickinessConfig"] == {"Enabled": True, "DurationSeconds": 60}
    described = elbv2.describe_target_groups(LoadBalancerArn=lb["LoadBalancerArn"])["TargetGroups"]
    assert sorted(t["TargetGroupArn"] for t in described) == sorted([tg["TargetGroupArn"], tg2["TargetGroupArn"]])
    assert described[0]["LoadBalancerArns"] == [lb["LoadBalancerArn"]]
    with pytest.raises(elbv2.exceptions.DuplicateListenerException):
        elbv2.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port, DefaultActions=forward(tg["TargetGroupArn"]))
    with pytest.raises(elbv2.exceptions.DuplicateListenerException):
        elbv2.create_listener(LoadBalancerArn=other["LoadBalancerArn"], Protocol="HTTP", Port=port, DefaultActions=forward(new_tg(elbv2)["TargetGroupArn"]))
    with pytest.raises(elbv2.exceptions.IncompatibleProtocolsException):
        elbv2.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=free_port(), DefaultActions=forward(tcp["TargetGroupArn"]))
    with pytest.raises(elbv2.exceptions.TargetGroupAssociationLimitException):
        elbv2.create_listener(LoadBalancerArn=other["LoadBalancerArn"], Protocol="HTTP", Port=free_port(), DefaultActions=forward(tg["TargetGroupArn"]))
    with pytest.raises(elbv2.exceptions.TargetGroupNotFoundException):
        elbv2.create_listener(
            LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=free_port(), DefaultActions=forward(tg["TargetGroupArn"] + "0")
        )
    with pytest.raises(elbv2.exceptions.LoadBalancerNotFoundException):
        elbv2.create_listener(
            LoadBalancerArn=lb["LoadBalancerArn"].replace(lb["LoadBalancerName"], "nope"), Protocol="HTTP", Port=free_port(), DefaultActions=forward(tg["TargetGroupArn"])
        )
    with pytest.raises(elbv2.exceptions.ResourceInUseException):
        elbv2.delete_target_group(TargetGroupArn=tg["TargetGroupArn"])
    with pytest.raises(elbv2.exceptions.InvalidLoadBalancerActionException):
        elbv2.modify_listener(
            ListenerArn=listener["ListenerArn"], DefaultActions=[{"Type": "redirect", "RedirectConfig": {"StatusCode": "HTTP_301"}}]
        )
    redirected = elbv2.modify_listener(
        ListenerArn=listener["ListenerArn"],
        DefaultActions=[{"Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}}],
    )["Listeners"][0]
    rc = redirected["DefaultActions"][0]["RedirectConfig"]
    assert rc == {"Protocol": "HTTPS", "Port": "443", "Host": "#{host}", "Path": "/#{path}", "Query": "#{query}", "StatusCode": "HTTP_301"}
    fixed = elbv2.modify_listener(
        ListenerArn=listener["ListenerArn"],
        DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503", "ContentType": "application/json", "MessageBody": '{"a": "<b>"}'}}],
    )["Listeners"][0]
    assert fixed["DefaultActions"][0]["FixedResponseConfig"]["MessageBody"] == '{"a": "<b>"}'
    elbv2.delete_target_group(TargetGroupArn=tg["TargetGroupArn"])  # no longer forwarded to
    ports = []
    for _ in range(3):
        ports.append(new_listener(elbv2, other, new_tg(elbv2))["Port"])
    pages = list(elbv2.get_paginator("describe_listeners").paginate(LoadBalancerArn=other["LoadBalancerArn"], PaginationConfig={"PageSize": 2}))
    assert len(pages) == 2
    assert sorted(l["Port"] for p in pages for l in p["Listeners"]) == sorted(ports)
    elbv2.delete_listener(ListenerArn=listener["ListenerArn"])
    with pytest.raises(elbv2.exceptions.ListenerNotFoundException):
        elbv2.describe_listeners(ListenerArns=[listener["ListenerArn"]])
    with pytest.raises(elbv2.exceptions.ListenerNotFoundException):
        elbv2.delete_listener(ListenerArn=listener["ListenerArn"])
    elbv2.delete_load_balancer(LoadBalancerArn=other["LoadBalancerArn"])
    with pytest.raises(elbv2.exceptions.LoadBalancerNotFoundException):
        elbv2.describe_listeners(LoadBalancerArn=other["LoadBalancerArn"])


def test_rules_conditions_priorities_and_default_rule(elbv2):
    lb, tg = new_lb(elbv2), new_tg(elbv2)
    listener = new_listener(elbv2, lb, tg)
    la = listener["ListenerArn"]
    r1 = elbv2.create_rule(
        ListenerArn=la,
        Priority=10,
        Conditions=[{"Field": "path-pattern", "Values": ["/api/*"]}, {"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["GET"]}}],
        Actions=forward(tg["TargetGroupArn"]),
    )["Rules"][0]
    assert r1["Priority"] == "10" and r1["IsDefault"] is False
    assert r1["RuleArn"].startswith(la.replace(":listener/", ":listener-rule/") + "/")
    path = next(c for c in r1["Conditions"] if c["Field"] == "path-pattern")
    assert path["Values"] == ["/api/*"] and path["PathPatternConfig"] == {"Values": ["/api/*"]}
    r2 = elbv2.create_rule(
        ListenerArn=la,
        Priority=5,
        Conditions=[
            {"Field": "host-header", "HostHeaderConfig": {"Values": ["*.example.com"]}},
            {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Env", "Values": ["blue"]}},
            {"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": "v", "Value": "2"}, {"Value": "beta"}]}},
        ],
        Actions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200", "ContentType": "text/plain", "MessageBody": "hi"}}],
    )["Rules"][0]
    qs = next(c for c in r2["Conditions"] if c["Field"] == "query-string")
    assert qs["QueryStringConfig"]["Values"] == [{"Key": "v", "Value": "2"}, {"Value": "beta"}]
    r3 = elbv2.create_rule(
        ListenerArn=la,
        Priority=20,
        Conditions=[{"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/8"]}}],
        Actions=forward(tg["TargetGroupArn"]),
    )["Rules"][0]
    with pytest.raises(elbv2.exceptions.PriorityInUseException):
        elbv2.create_rule(ListenerArn=la, Priority=10, Conditions=[{"Field": "path-pattern", "Values": ["/x"]}], Actions=forward(tg["TargetGroupArn"]))
    for bad in (
        [{"Field": "source-ip", "SourceIpConfig": {"Values": ["not-a-cidr"]}}],
        [{"Field": "path-pattern", "Values": ["/a"]}, {"Field": "path-pattern", "Values": ["/b"]}],
        [{"Field": "colour", "Values": ["red"]}],
    ):
        with pytest.raises(botocore.exceptions.ClientError) as exc:
            elbv2.create_rule(ListenerArn=la, Priority=30, Conditions=bad, Actions=forward(tg["TargetGroupArn"]))
        assert code_of(exc) == "ValidationError", bad
    rules = elbv2.describe_rules(ListenerArn=la)["Rules"]
    assert [r["Priority"] for r in rules] == ["5", "10", "20", "default"]
    default = rules[-1]
    assert default["IsDefault"] is True and default["Conditions"] == [] and default["Actions"][0]["TargetGroupArn"] == tg["TargetGroupArn"]
    pages = list(elbv2.get_paginator("describe_rules").paginate(ListenerArn=la, PaginationConfig={"PageSize": 3}))
    assert [len(p["Rules"]) for p in pages] == [3, 1]
    swapped = elbv2.set_rule_priorities(RulePriorities=[{"RuleArn": r1["RuleArn"], "Priority": 5}, {"RuleArn": r2["RuleArn"], "Priority": 10}])
    assert sorted(r["Priority"] for r in swapped["Rules"]) == ["10", "5"]
    with pytest.raises(elbv2.exceptions.PriorityInUseException):
        elbv2.set_rule_priorities(RulePriorities=[{"RuleArn": r1["RuleArn"], "Priority": 20}])
    with pytest.raises(elbv2.exceptions.OperationNotPermittedException):
        elbv2.set_rule_priorities(RulePriorities=[{"RuleArn": default["RuleArn"], "Priority": 1}])
    modified = elbv2.modify_rule(RuleArn=r3["RuleArn"], Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/v2/*"]}}])["Rules"][0]
    assert modified["Conditions"][0]["PathPatternConfig"]["Values"] == ["/v2/*"]
    assert [r["RuleArn"] for r in elbv2.describe_rules(RuleArns=[r3["RuleArn"], default["RuleArn"]])["Rules"]] == [r3["RuleArn"], default["RuleArn"]]
    with pytest.raises(elbv2.exceptions.OperationNotPermittedException):
        elbv2.delete_rule(RuleArn=default["RuleArn"])
    elbv2.delete_rule(RuleArn=r3["RuleArn"])
    with pytest.raises(elbv2.exceptions.RuleNotFoundException):
        elbv2.delete_rule(RuleArn=r3["RuleArn"])
    with pytest.raises(elbv2.exceptions.RuleNotFoundException):
        elbv2.describe_rules(RuleArns=[r3["RuleArn"]])


def test_targets_health_and_waiters(elbv2):
    tg = new_tg(elbv2, target_type="instance")
    arn = tg["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": "i-0123456789abcdef0"}, {"Id": "i-0fedcba9876543210", "Port": 9000}])
    health = elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    assert sorted((h["Target"]["Id"], h["Target"]["Port"]) for h in health) == [("i-0123456789abcdef0", 8080), ("i-0fedcba9876543210", 9000)]
    assert {h["TargetHealth"]["State"] for h in health} == {"unused"}
    assert {h["TargetHealth"]["Reason"] for h in health} == {"Target.NotInUse"}
    assert {h["HealthCheckPort"] for h in health} == {"8080", "9000"}
    with pytest.raises(elbv2.exceptions.InvalidTargetException):
        elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": "10.0.0.1"}])
    with pytest.raises(elbv2.exceptions.InvalidTargetException):
        elbv2.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": "i-000000000000000aa"}])
    with pytest.raises(elbv2.exceptions.TargetGroupNotFoundException):
        elbv2.describe_target_health(TargetGroupArn=arn.replace(tg["TargetGroupName"], "nope"))
    # Not in use: deregistration is immediate, and the waiter sees `unused`.
    elbv2.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": "i-0fedcba9876543210", "Port": 9000}])
    elbv2.get_waiter("target_deregistered").wait(TargetGroupArn=arn, Targets=[{"Id": "i-0fedcba9876543210", "Port": 9000}], WaiterConfig=FAST)
    gone = elbv2.describe_target_health(TargetGroupArn=arn, Targets=[{"Id": "i-0fedcba9876543210", "Port": 9000}])
    assert gone["TargetHealthDescriptions"][0]["TargetHealth"]["Reason"] == "Target.NotRegistered"
    # In use: initial (registration, then first checks) until the checks conclude; then draining.
    lb = new_lb(elbv2)
    new_listener(elbv2, lb, tg)
    state = elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"][0]["TargetHealth"]
    assert state in (
        {"State": "initial", "Reason": "Elb.RegistrationInProgress", "Description": "Target registration is in progress"},
        {"State": "initial", "Reason": "Elb.InitialHealthChecking", "Description": "Initial health checks in progress"},
    )
    with pytest.raises(botocore.exceptions.WaiterError):
        elbv2.get_waiter("target_in_service").wait(TargetGroupArn=arn, WaiterConfig={"Delay": 1, "MaxAttempts": 1})
    elbv2.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": "i-0123456789abcdef0"}])
    state = elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"][0]["TargetHealth"]
    assert (state["State"], state["Reason"]) == ("draining", "Target.DeregistrationInProgress")
    # With no delay, deregistration of a used group's target is immediate too.
    elbv2.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "0"}])
    elbv2.get_waiter("target_deregistered").wait(TargetGroupArn=arn, Targets=[{"Id": "i-0123456789abcdef0"}], WaiterConfig=FAST)
    elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": "i-0123456789abcdef0"}])
    elbv2.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": "i-0123456789abcdef0"}])
    assert elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"] == []


def test_tags_on_every_resource_kind(elbv2):
    lb, tg = new_lb(elbv2), new_tg(elbv2)
    listener = new_listener(elbv2, lb, tg)
    rule = elbv2.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"][0]
    arns = [lb["LoadBalancerArn"], tg["TargetGroupArn"], listener["ListenerArn"], rule["RuleArn"]]
    elbv2.add_tags(ResourceArns=arns, Tags=[{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "core"}])
    described = elbv2.describe_tags(ResourceArns=arns)["TagDescriptions"]
    assert [d["ResourceArn"] for d in described] == arns
    assert all(sorted((t["Key"], t["Value"]) for t in d["Tags"]) == [("env", "prod"), ("team", "core")] for d in described)
    elbv2.remove_tags(ResourceArns=arns[:1], TagKeys=["env"])
    assert elbv2.describe_tags(ResourceArns=arns[:1])["TagDescriptions"][0]["Tags"] == [{"Key": "team", "Value": "core"}]
    with pytest.raises(elbv2.exceptions.DuplicateTagKeysException):
        elbv2.add_tags(ResourceArns=arns[:1], Tags=[{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}])
    with pytest.raises(elbv2.exceptions.TooManyTagsException):
        elbv2.add_tags(ResourceArns=arns[:1], Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    with pytest.raises(elbv2.exceptions.TargetGroupNotFoundException):
        elbv2.describe_tags(ResourceArns=[tg["TargetGroupArn"].replace(tg["TargetGroupName"], "nope")])


def test_account_limits_paginate(elbv2):
    limits = [l for p in elbv2.get_paginator("describe_account_limits").paginate(PaginationConfig={"PageSize": 4}) for l in p["Limits"]]
    names = {l["Name"]: l["Max"] for l in limits}
    assert names["application-load-balancers"] == "50"
    assert len(names) == len(limits)


def test_query_protocol_edges(server, elbv2):
    def post(body: str, service: str = "elasticloadbalancing") -> requests.Response:
        req = AWSRequest(
            method="POST",
            url=server.endpoint + "/",
            data=body.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        )
        SigV4Auth(server.credentials(), service, server.region).add_auth(req)
        return requests.post(server.endpoint + "/", data=body.encode(), headers=dict(req.headers.items()), timeout=10)

    resp = post("Action=Frobnicate&Version=2015-12-01")
    assert resp.status_code == 400 and resp.headers["Content-Type"].startswith("text/xml")
    assert "<Code>InvalidAction</Code>" in resp.text and "<RequestId>" in resp.text
    resp = post("Action=DescribeLoadBalancers&Version=2015-12-01")
    assert resp.status_code == 200 and "<DescribeLoadBalancersResponse" in resp.text
    assert resp.headers["x-amzn-RequestId"] in resp.text
    resp = post("Action=DescribeLoadBalancers&Version=2015-12-01", service="ecs")
    assert resp.status_code == 400 and "InvalidSignatureException" in resp.text
    resp = post("Action=DescribeLoadBalancers&Version=2015-12-01&PageSize=abc")
    assert resp.status_code == 400 and "<Code>ValidationError</Code>" in resp.text
    resp = post("Action=DescribeLoadBalancers&Version=2015-12-01&a=%zz")
    assert resp.status_code == 400 and "MalformedQueryString" in resp.text


def test_aws_cli_drives_a_full_setup(aws):
    name, tg_name = unique("cli"), unique("cli")
    lb = aws.run("elbv2", "create-load-balancer", "--name", name, "--subnets", "subnet-1", "subnet-2")["LoadBalancers"][0]
    tg = aws.run(
        "elbv2", "create-target-group", "--name", tg_name, "--protocol", "HTTP", "--port", "80", "--vpc-id", "vpc-1", "--target-type", "ip",
        "--health-check-path", "/health",
    )["TargetGroups"][0]
    port = str(free_port())
    listener = aws.run(
        "elbv2", "create-listener", "--load-balancer-arn", lb["LoadBalancerArn"], "--protocol", "HTTP", "--port", port,
        "--default-actions", f"Type=forward,TargetGroupArn={tg['TargetGroupArn']}",
    )["Listeners"][0]
    assert listener["Port"] == int(port)
    rule = aws.run(
        "elbv2", "create-rule", "--listener-arn", listener["ListenerArn"], "--priority", "7",
        "--conditions", "Field=path-pattern,Values=/api/*",
        "--actions", f"Type=forward,TargetGroupArn={tg['TargetGroupArn']}",
    )["Rules"][0]
    assert rule["Priority"] == "7"
    aws.run("elbv2", "register-targets", "--target-group-arn", tg["TargetGroupArn"], "--targets", "Id=10.0.0.5,Port=8080")
    health = aws.run("elbv2", "describe-target-health", "--target-group-arn", tg["TargetGroupArn"])["TargetHealthDescriptions"]
    assert health[0]["TargetHealth"]["State"] == "initial"
    aws.run("elbv2", "modify-target-group-attributes", "--target-group-arn", tg["TargetGroupArn"], "--attributes", "Key=deregistration_delay.timeout_seconds,Value=0")
    aws.run("elbv2", "deregister-targets", "--target-group-arn", tg["TargetGroupArn"], "--targets", "Id=10.0.0.5,Port=8080")
    aws.run("elbv2", "wait", "target-deregistered", "--target-group-arn", tg["TargetGroupArn"], "--targets", "Id=10.0.0.5,Port=8080")
    described = aws.run("elbv2", "describe-load-balancers", "--names", name)["LoadBalancers"]
    assert described[0]["DNSName"] == "127.0.0.1"
    tgs = aws.run("elbv2", "describe-target-groups", "--load-balancer-arn", lb["LoadBalancerArn"])["TargetGroups"]
    assert [t["TargetGroupName"] for t in tgs] == [tg_name]
    aws.run("elbv2", "add-tags", "--resource-arns", lb["LoadBalancerArn"], "--tags", "Key=env,Value=dev")
    tags = aws.run("elbv2", "describe-tags", "--resource-arns", lb["LoadBalancerArn"])["TagDescriptions"][0]["Tags"]
    assert tags == [{"Key": "env", "Value": "dev"}]
    proc = aws.run("elbv2", "delete-target-group", "--target-group-arn", tg["TargetGroupArn"], check=False)
    assert proc.returncode != 0 and "(ResourceInUse)" in proc.stderr
    aws.run("elbv2", "delete-load-balancer", "--load-balancer-arn", lb["LoadBalancerArn"])
    aws.run("elbv2", "delete-target-group", "--target-group-arn", tg["TargetGroupArn"])
    proc = aws.run("elbv2", "describe-load-balancers", "--names", name, check=False)
    assert proc.returncode != 0 and "(LoadBalancerNotFound)" in proc.stderr
