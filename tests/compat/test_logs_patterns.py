"""CloudWatch Logs filter patterns and metric filters through boto3 and the aws CLI:
FilterLogEvents with each pattern kind (terms, JSON, space-delimited), PutMetricFilter /
DescribeMetricFilters / DeleteMetricFilter / TestMetricFilter, metric filters turning a
real busybox task's awslogs output into a metric that GetMetricStatistics reads,
ListLogGroups and resource policies, and AWS's errors for each.

The busybox test needs Docker (fails under CI=true when it is missing, skips otherwise);
the others use the shared server.
"""

from __future__ import annotations

import datetime
import json
import time

import pytest

from agent_fixtures import IMAGE, agent_env, describe_task, register_family, run_task, wait_for
from conftest import ACCOUNT_ID, REGION, make_client, unique

env = agent_env("logpatterns", "logpat")


@pytest.fixture(scope="module")
def logs(server):
    return make_client(server, "logs")


@pytest.fixture(scope="module")
def cw(server):
    return make_client(server, "cloudwatch")


def code_of(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def message_of(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Message"]


def now_ms() -> int:
    return int(time.time() * 1000)


APACHE = [
    '10.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 200 2326',
    '10.0.0.2 - - [10/Oct/2000:13:25:16 -0700] "GET /missing.gif HTTP/1.0" 404 512',
    '10.0.0.3 - ann [10/Oct/2000:13:25:17 -0700] "POST /api HTTP/1.1" 503 90',
]
JSON = [
    '{"level": "INFO", "latency": 12, "user": {"id": 7, "name": "ann"}, "tags": ["web", "eu"], "ok": true}',
    '{"level": "ERROR", "latency": 950.5, "user": {"id": 8, "name": "bob"}, "tags": ["api"], "ok": false, "err": null}',
]
TEXT = ["ERROR db timeout", "WARN slow disk", "INFO GET /health 200", "ERROR healthcheck failed"]


@pytest.fixture(scope="module")
def group(logs):
    """One group with text, JSON and Apache-style lines in one stream."""
    name = "/stevedore/patterns/" + unique("g")
    logs.create_log_group(logGroupName=name)
    logs.create_log_stream(logGroupName=name, logStreamName="s")
    t0 = now_ms() - 60_000
    lines = TEXT + JSON + APACHE
    logs.put_log_events(
        logGroupName=name,
        logStreamName="s",
        logEvents=[{"timestamp": t0 + i, "message": m} for i, m in enumerate(lines)],
    )
    return name


def matched(logs, group: str, pattern: str) -> list[str]:
    out = logs.filter_log_events(logGroupName=group, filterPattern=pattern)
    return [e["message"] for e in out["events"]]


@pytest.mark.parametrize(
    "pattern, expected",
    [
        # Terms: all must occur, ?any, -exclusion, quoted phrases, regular expressions.
        ("ERROR", [TEXT[0], TEXT[3], JSON[1]]),
        ("ERROR -healthcheck -latency", [TEXT[0]]),
        ("?WARN ?timeout", [TEXT[0], TEXT[1]]),
        ('"slow disk"', [TEXT[1]]),
        ("%^(WARN|INFO) %", [TEXT[1], TEXT[2]]),
        # JSON: strings, numbers, nesting, arrays, booleans, null, absence, && and ||.
        ('{ $.level = "ERROR" }', [JSON[1]]),
        ("{ $.latency > 100 }", [JSON[1]]),
        ("{ $.latency <= 12 }", [JSON[0]]),
        ("{ $.user.name = a* }", [JSON[0]]),
        ('{ $.tags[0] = "api" }', [JSON[1]]),
        ("{ $.ok IS TRUE }", [JSON[0]]),
        ("{ $.err IS NULL }", [JSON[1]]),
        ("{ $.err NOT EXISTS }", [JSON[0]]),
        ("{ $.level = INFO && $.user.id = 7 }", [JSON[0]]),
        ("{ ($.level = WARN || $.user.id = 8) && $.latency > 900 }", [JSON[1]]),
        ("{ $.level != INFO }", [JSON[1]]),
        # Space-delimited: named fields, wildcards, numbers, `...`, && and ||.
        ("[ip, id, user, timestamp, request, status = 4*, bytes]", [APACHE[1]]),
        ("[ip, id, user, timestamp, request = *POST*, status, bytes]", [APACHE[2]]),
        ("[..., status = 200 || status = 503, bytes]", [APACHE[0], APACHE[2]]),
        ("[ip = 10.0.0.1, ..., bytes > 1000]", [APACHE[0]]),
        ("[ip, ..., status >= 500 && bytes < 100, bytes]", [APACHE[2]]),
    ],
)
def test_filter_log_events_with_each_pattern_kind(logs, group, pattern, expected):
    assert matched(logs, group, pattern) == expected


@pytest.mark.parametrize(
    "pattern",
    ['{ $.level = "x"', "{ level = x }", "{ $.n > abc }", "[a, b", "[a, a]", '"open', "%(%",
     "{ $.a IS MAYBE }"],
)
def test_bad_patterns_are_invalid_parameters(logs, group, pattern):
    with pytest.raises(logs.exceptions.InvalidParameterException) as exc:
        logs.filter_log_events(logGroupName=group, filterPattern=pattern)
    assert message_of(exc).startswith("Invalid filter pattern"), message_of(exc)


def test_test_metric_filter_matches_and_extracts(logs):
    out = logs.test_metric_filter(
        filterPattern="[ip, id, user, timestamp, request, status = 5*, bytes]",
        logEventMessages=APACHE,
    )
    assert out["matches"] == [{
        "eventNumber": 3,
        "eventMessage": APACHE[2],
        "extractedValues": {
            "$ip": "10.0.0.3", "$id": "-", "$user": "ann",
            "$timestamp": "10/Oct/2000:13:25:17 -0700", "$request": "POST /api HTTP/1.1",
            "$status": "503", "$bytes": "90",
        },
    }]
    out = logs.test_metric_filter(filterPattern="{ $.latency > 100 }", logEventMessages=JSON)
    assert [m["eventNumber"] for m in out["matches"]] == [2]
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.test_metric_filter(filterPattern="{ $.a =", logEventMessages=["x"])


def transformation(value: str = "1", **extra) -> dict:
    return {"metricName": "Errors", "metricNamespace": "Stevedore/Test", "metricValue": value, **extra}


def test_metric_filter_lifecycle_and_errors(logs, group):
    logs.put_metric_filter(logGroupName=group, filterName="errors", filterPattern="ERROR",
                           metricTransformations=[transformation()])
    logs.put_metric_filter(logGroupName=group, filterName="bytes", filterPattern="[ip, ..., bytes]",
                           metricTransformations=[transformation("$bytes", unit="Bytes")])
    got = logs.describe_metric_filters(logGroupName=group)["metricFilters"]
    assert [f["filterName"] for f in got] == ["bytes", "errors"]
    assert got[0]["metricTransformations"] == [transformation("$bytes", unit="Bytes")]
    assert got[0]["logGroupName"] == group and isinstance(got[0]["creationTime"], int)
    pages = list(logs.get_paginator("describe_metric_filters").paginate(
        logGroupName=group, PaginationConfig={"PageSize": 1}))
    assert [f["filterName"] for p in pages for f in p["metricFilters"]] == ["bytes", "errors"]
    described = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]
    assert described["metricFilterCount"] == 2

    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.put_metric_filter(logGroupName=group + "-nope", filterName="x", filterPattern="",
                               metricTransformations=[transformation()])
    with pytest.raises(logs.exceptions.InvalidParameterException) as exc:
        logs.put_metric_filter(logGroupName=group, filterName="x", filterPattern="{ $.a = ",
                               metricTransformations=[transformation()])
    assert message_of(exc).startswith("Invalid filter pattern")
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.put_metric_filter(logGroupName=group, filterName="x", filterPattern="ERROR",
                               metricTransformations=[transformation("$bytes")])
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.put_metric_filter(logGroupName=group, filterName="x", filterPattern="[a, b]",
                               metricTransformations=[transformation(defaultValue=0,
                                                                     dimensions={"A": "$a"})])
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.describe_metric_filters(filterNamePrefix="e")

    logs.delete_metric_filter(logGroupName=group, filterName="bytes")
    logs.delete_metric_filter(logGroupName=group, filterName="errors")
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.delete_metric_filter(logGroupName=group, filterName="errors")


def test_a_hundred_metric_filters_per_group(logs):
    group = "/stevedore/patterns/" + unique("limit")
    logs.create_log_group(logGroupName=group)
    for i in range(100):
        logs.put_metric_filter(logGroupName=group, filterName=f"f{i:03}", filterPattern="x",
                               metricTransformations=[transformation()])
    with pytest.raises(logs.exceptions.LimitExceededException):
        logs.put_metric_filter(logGroupName=group, filterName="f100", filterPattern="x",
                               metricTransformations=[transformation()])
    logs.delete_log_group(logGroupName=group)


def minute_floor(ms: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ms // 60_000 * 60, tz=datetime.timezone.utc)


def test_put_log_events_feeds_metrics_that_cloudwatch_reads(logs, cw):
    group = "/stevedore/patterns/" + unique("metrics")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    ns = "Stevedore/" + unique("ns")
    logs.put_metric_filter(
        logGroupName=group, filterName="latency", filterPattern="{ $.status >= 500 }",
        metricTransformations=[{"metricName": "Latency", "metricNamespace": ns, "metricValue": "$.ms",
                                "unit": "Milliseconds", "dimensions": {"Path": "$.path"}}])
    t0 = now_ms() - 120_000
    lines = ['{"status": 503, "ms": 100, "path": "/a"}', '{"status": 200, "ms": 5, "path": "/a"}',
             '{"status": 500, "ms": 300, "path": "/a"}', '{"status": 502, "ms": 7, "path": "/b"}']
    logs.put_log_events(logGroupName=group, logStreamName="s",
                        logEvents=[{"timestamp": t0 + i, "message": m} for i, m in enumerate(lines)])

    def stats():
        out = cw.get_metric_statistics(
            Namespace=ns, MetricName="Latency", Dimensions=[{"Name": "Path", "Value": "/a"}],
            StartTime=minute_floor(t0 - 60_000), EndTime=minute_floor(now_ms() + 120_000),
            Period=60, Statistics=["Sum", "SampleCount", "Maximum"], Unit="Milliseconds")
        return out["Datapoints"] or None

    points = wait_for(stats, 20, "the metric filter's datapoints in CloudWatch")
    assert sum(p["Sum"] for p in points) == 400
    assert sum(p["SampleCount"] for p in points) == 2
    assert max(p["Maximum"] for p in points) == 300
    assert points[0]["Unit"] == "Milliseconds"


def test_list_log_groups(logs):
    base = "/stevedore/list/" + unique("l")
    for suffix, tags in (("web", {"team": "a"}), ("worker", {"team": "b"})):
        logs.create_log_group(logGroupName=f"{base}/{suffix}", tags=tags)
    got = logs.list_log_groups(logGroupNamePattern=base.split("/")[-1])["logGroups"]
    assert got == [
        {"logGroupName": f"{base}/web", "logGroupArn":
            f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{base}/web", "logGroupClass": "STANDARD"},
        {"logGroupName": f"{base}/worker", "logGroupArn":
            f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{base}/worker", "logGroupClass": "STANDARD"},
    ]
    got = logs.list_log_groups(logGroupNamePattern=base.split("/")[-1],
                               logGroupTags=[{"key": "team", "values": ["b"]}])["logGroups"]
    assert [g["logGroupName"] for g in got] == [f"{base}/worker"]
    raw = make_client_unvalidated(logs)
    with pytest.raises(raw.exceptions.InvalidParameterException):
        raw.list_log_groups(logGroupNamePattern="a*")


def make_client_unvalidated(logs):
    """The same endpoint without botocore's parameter validation (to reach the server's)."""
    import boto3
    import botocore.config

    creds = logs._request_signer._credentials
    return boto3.session.Session().client(
        "logs", endpoint_url=logs.meta.endpoint_url, region_name=logs.meta.region_name,
        aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key,
        config=botocore.config.Config(parameter_validation=False, retries={"max_attempts": 1}))


def test_resource_policies(logs):
    doc = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "route53.amazonaws.com"},
        "Action": "logs:PutLogEvents", "Resource": "*"}]})
    name = unique("policy")
    out = logs.put_resource_policy(policyName=name, policyDocument=doc)["resourcePolicy"]
    assert out["policyName"] == name and out["policyScope"] == "ACCOUNT"
    listed = logs.describe_resource_policies()["resourcePolicies"]
    assert any(p["policyName"] == name and p["policyDocument"] == doc for p in listed)
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.put_resource_policy(policyName=unique("bad"), policyDocument="{not json")
    logs.delete_resource_policy(policyName=name)
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.delete_resource_policy(policyName=name)

    group = "/stevedore/policy/" + unique("g")
    logs.create_log_group(logGroupName=group)
    arn = f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{group}"
    out = logs.put_resource_policy(resourceArn=arn, policyDocument=doc)
    assert out["resourcePolicy"]["policyScope"] == "RESOURCE"
    with pytest.raises(logs.exceptions.OperationAbortedException):
        logs.put_resource_policy(resourceArn=arn, policyDocument=doc, expectedRevisionId="stale")
    logs.delete_resource_policy(resourceArn=arn, expectedRevisionId=out["revisionId"])


def test_metric_filter_on_a_busybox_tasks_awslogs_output(env):
    """A real task's awslogs lines, through a metric filter, into GetMetricStatistics."""
    aws, cluster, agent = env["aws"], env["cluster"], env["agent"]
    family, group = unique("logmetric"), unique("/ecs/logpatterns")
    ns = "Stevedore/" + unique("awslogs")
    aws.run("logs", "create-log-group", "--log-group-name", group)
    aws.run("logs", "put-metric-filter", "--log-group-name", group, "--filter-name", "slow",
            "--filter-pattern", "[level = ERROR, ..., ms > 100]",
            "--metric-transformations", json.dumps([{
                "metricName": "SlowErrors", "metricNamespace": ns, "metricValue": "$ms",
                "unit": "Milliseconds"}]))
    script = ("echo INFO fast 5; echo ERROR slow 250; echo ERROR fast 20; "
              "echo ERROR slow 400; sleep 3600")
    register_family(aws, family, [{
        "name": "app", "image": IMAGE, "memory": 32, "essential": True, "stopTimeout": 1,
        "command": ["/bin/busybox", "sh", "-c", script],
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": group, "awslogs-region": "us-east-1",
            "awslogs-stream-prefix": "p", "awslogs-create-group": "true"}},
    }])
    start = now_ms()
    arn = run_task(aws, cluster, family)

    def stats():
        out = aws.run(
            "cloudwatch", "get-metric-statistics", "--namespace", ns, "--metric-name", "SlowErrors",
            "--start-time", minute_floor(start - 120_000).isoformat(),
            "--end-time", minute_floor(now_ms() + 120_000).isoformat(),
            "--period", "60", "--statistics", "Sum", "SampleCount")
        points = out["Datapoints"]
        return points if sum(p["SampleCount"] for p in points) >= 2 else None

    points = wait_for(stats, 90, "the task's slow errors as a metric", agent.log_tail)
    assert sum(p["Sum"] for p in points) == 650
    assert sum(p["SampleCount"] for p in points) == 2
    events = aws.run("logs", "filter-log-events", "--log-group-name", group,
                     "--filter-pattern", "[level = ERROR, ..., ms > 100]")["events"]
    assert [e["message"] for e in events] == ["ERROR slow 250", "ERROR slow 400"]
    aws.run("ecs", "stop-task", "--cluster", cluster, "--task", arn)
    wait_for(lambda: describe_task(aws, cluster, arn)["lastStatus"] == "STOPPED", 60, "STOPPED",
             agent.log_tail)


def test_aws_cli_metric_filter_and_statistics(aws):
    """The CLI calls the busybox test makes, on the shared server with put-log-events."""
    group, ns = unique("/stevedore/cli"), "Stevedore/" + unique("cli")
    aws.run("logs", "create-log-group", "--log-group-name", group)
    aws.run("logs", "create-log-stream", "--log-group-name", group, "--log-stream-name", "s")
    aws.run("logs", "put-metric-filter", "--log-group-name", group, "--filter-name", "slow",
            "--filter-pattern", "[level = ERROR, ..., ms > 100]",
            "--metric-transformations", json.dumps([{
                "metricName": "SlowErrors", "metricNamespace": ns, "metricValue": "$ms",
                "unit": "Milliseconds"}]))
    start = now_ms() - 60_000
    lines = ["INFO fast 5", "ERROR slow 250", "ERROR fast 20", "ERROR slow 400"]
    aws.run("logs", "put-log-events", "--log-group-name", group, "--log-stream-name", "s",
            "--log-events", json.dumps([{"timestamp": start + i, "message": m}
                                        for i, m in enumerate(lines)]))
    tested = aws.run("logs", "test-metric-filter", "--filter-pattern", "[level = ERROR, ..., ms > 100]",
                     "--log-event-messages", *lines)
    assert [m["eventNumber"] for m in tested["matches"]] == [2, 4]

    def stats():
        out = aws.run(
            "cloudwatch", "get-metric-statistics", "--namespace", ns, "--metric-name", "SlowErrors",
            "--start-time", minute_floor(start - 120_000).isoformat(),
            "--end-time", minute_floor(now_ms() + 120_000).isoformat(),
            "--period", "60", "--statistics", "Sum", "SampleCount")
        points = out["Datapoints"]
        return points if sum(p["SampleCount"] for p in points) >= 2 else None

    points = wait_for(stats, 20, "the slow errors as a metric")
    assert sum(p["Sum"] for p in points) == 650
    described = aws.run("logs", "describe-metric-filters", "--log-group-name", group)
    assert described["metricFilters"][0]["filterPattern"] == "[level = ERROR, ..., ms > 100]"
