"""CloudWatch Logs through boto3 and the aws CLI: groups, streams, events, retention, tags.

What the awslogs driver, `aws logs get-log-events` and `aws logs tail` rely on: exact
error codes and messages, chronological batches, both GetLogEvents directions with tokens
that repeat at the end, FilterLogEvents interleaving and patterns, and pagination.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import requests

from conftest import ACCOUNT_ID, REGION, StevedoreServer, make_client, signed_headers, unique

DAY_MS = 24 * 3600 * 1000


@pytest.fixture(scope="module")
def logs(server):
    return make_client(server, "logs")


def now_ms() -> int:
    return int(time.time() * 1000)


def new_stream(logs, group: str | None = None, stream: str = "app/web/0001") -> tuple[str, str]:
    group = group or "/stevedore/" + unique("g")
    try:
        logs.create_log_group(logGroupName=group)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    return group, stream


def put(logs, group, stream, events):
    return logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": t, "message": m} for t, m in events],
    )


def code_of(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def message_of(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Message"]


def test_create_describe_and_errors_use_aws_codes(logs):
    group = "/stevedore/" + unique("g")
    logs.create_log_group(logGroupName=group, tags={"team": "core"})
    with pytest.raises(logs.exceptions.ResourceAlreadyExistsException) as exc:
        logs.create_log_group(logGroupName=group)
    assert message_of(exc) == "The specified log group already exists"
    with pytest.raises(logs.exceptions.ResourceNotFoundException) as exc:
        logs.create_log_stream(logGroupName=group + "-missing", logStreamName="s")
    assert message_of(exc) == "The specified log group does not exist."
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    with pytest.raises(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_stream(logGroupName=group, logStreamName="s")
    with pytest.raises(logs.exceptions.ResourceNotFoundException) as exc:
        logs.get_log_events(logGroupName=group, logStreamName="nope")
    assert message_of(exc) == "The specified log stream does not exist."
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.create_log_group(logGroupName="bad name with spaces")

    g = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert [x["logGroupName"] for x in g] == [group]
    assert g[0]["arn"] == f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{group}:*"
    assert g[0]["logGroupArn"] == f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{group}"
    assert abs(g[0]["creationTime"] - now_ms()) < 60_000
    assert g[0]["storedBytes"] == 0
    assert "retentionInDays" not in g[0]


def test_put_events_order_batch_rules_and_rejections(logs):
    group, stream = new_stream(logs)
    t = now_ms()
    with pytest.raises(logs.exceptions.InvalidParameterException) as exc:
        put(logs, group, stream, [(t, "b"), (t - 1, "a")])
    assert message_of(exc) == "Log events in a single PutLogEvents request must be in chronological order."
    with pytest.raises(logs.exceptions.InvalidParameterException):
        put(logs, group, stream, [(t - DAY_MS - 1, "a"), (t, "b")])
    with pytest.raises(logs.exceptions.InvalidParameterException):
        put(logs, group, stream, [(t, "x" * 600_000), (t, "y" * 600_000)])

    old = t - 15 * DAY_MS
    r = put(logs, group, stream, [(old, "too old"), (old + 3_600_000, "still too old")])
    assert r["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 2}
    r = put(logs, group, stream, [(t, "now"), (t + 3 * 3_600_000, "future")])
    assert r["rejectedLogEventsInfo"] == {"tooNewLogEventStartIndex": 1}
    # Sequence tokens are ignored, as AWS now does, but still returned.
    r2 = logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        sequenceToken="not-a-real-token",
        logEvents=[{"timestamp": t + 1, "message": "next"}],
    )
    assert r2["nextSequenceToken"] != r["nextSequenceToken"]
    events = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
    assert [e["message"] for e in events] == ["now", "next"]
    assert all(abs(e["ingestionTime"] - now_ms()) < 60_000 for e in events)


def test_get_log_events_pages_both_ways_until_the_token_repeats(logs):
    group, stream = new_stream(logs)
    t = now_ms() - 60_000
    msgs = [f"line {i:03}" for i in range(45)]
    put(logs, group, stream, [(t + i // 4, m) for i, m in enumerate(msgs)])

    seen, token = [], None
    for _ in range(50):
        kw = {"nextToken": token} if token else {"startFromHead": True}
        page = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=10, **kw)
        seen += [e["message"] for e in page["events"]]
        assert page["nextBackwardToken"]
        if page["nextForwardToken"] == token:
            break
        token = page["nextForwardToken"]
    assert seen == msgs

    pages, token = [], None
    for _ in range(50):
        kw = {"nextToken": token} if token else {}
        page = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=20, **kw)
        pages.append([e["message"] for e in page["events"]])
        if page["nextBackwardToken"] == token:
            break
        token = page["nextBackwardToken"]
    assert pages[0] == msgs[25:]
    assert sum(pages[::-1], []) == msgs

    window = logs.get_log_events(
        logGroupName=group, logStreamName=stream, startTime=t + 2, endTime=t + 4, startFromHead=True
    )["events"]
    assert [e["message"] for e in window] == msgs[8:16]

    # Following the forward token of the newest page shows events that arrive later.
    head = logs.get_log_events(logGroupName=group, logStreamName=stream)
    put(logs, group, stream, [(now_ms(), "late arrival")])
    more = logs.get_log_events(logGroupName=group, logStreamName=stream, nextToken=head["nextForwardToken"])
    assert [e["message"] for e in more["events"]] == ["late arrival"]

    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.get_log_events(logGroupName=group, logStreamName=stream, nextToken="garbage")


def test_filter_log_events_interleaves_and_matches_patterns(logs):
    group, _ = new_stream(logs, stream="web/1")
    new_stream(logs, group, "web/2")
    new_stream(logs, group, "worker/1")
    t = now_ms() - 10_000
    put(logs, group, "web/1", [(t, "GET /health 200"), (t + 2, "ERROR db timeout")])
    put(logs, group, "web/2", [(t + 1, "WARN slow request"), (t + 3, "GET /api 200")])
    put(logs, group, "worker/1", [(t + 1, "ERROR queue full")])

    def fle(**kw):
        pages = logs.get_paginator("filter_log_events").paginate(logGroupName=group, **kw)
        return [e for p in pages for e in p["events"]]

    everything = fle()
    assert [e["message"] for e in everything] == [
        "GET /health 200", "WARN slow request", "ERROR queue full", "ERROR db timeout", "GET /api 200",
    ]
    assert {e["logStreamName"] for e in everything} == {"web/1", "web/2", "worker/1"}
    assert len({e["eventId"] for e in everything}) == 5
    assert [e["message"] for e in fle(filterPattern="ERROR")] == ["ERROR queue full", "ERROR db timeout"]
    assert [e["message"] for e in fle(filterPattern="?WARN ?queue")] == ["WARN slow request", "ERROR queue full"]
    assert [e["message"] for e in fle(filterPattern="GET -health")] == ["GET /api 200"]
    assert [e["message"] for e in fle(filterPattern='"db timeout"')] == ["ERROR db timeout"]
    assert [e["message"] for e in fle(logStreamNamePrefix="web/", startTime=t + 1, endTime=t + 2)] == [
        "WARN slow request", "ERROR db timeout",
    ]
    assert [e["message"] for e in fle(logStreamNames=["worker/1"])] == ["ERROR queue full"]
    # Small pages still cover every event exactly once.
    assert [e["message"] for e in fle(PaginationConfig={"PageSize": 2})] == [e["message"] for e in everything]
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.filter_log_events(logGroupName=group, logStreamNames=["a"], logStreamNamePrefix="a")
    # JSON patterns match JSON messages only (test_logs_patterns.py has every kind); a
    # pattern that does not parse is refused.
    assert fle(filterPattern='{ $.level = "ERROR" }') == []
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.filter_log_events(logGroupName=group, filterPattern='{ $.level = ')


def test_tail_call_sequence_prints_recent_events_once(logs):
    """What `aws logs tail` (CLI v2) does: filter_log_events pages with interleaved=True
    from `--since` (10 minutes by default); with --follow it polls again from the newest
    timestamp and drops events whose eventId it has already printed."""
    group, _ = new_stream(logs, stream="ecs/app/task1")
    t = now_ms()
    put(logs, group, "ecs/app/task1", [(t - 1000, "starting"), (t, "ready")])
    kwargs = {"logGroupName": group, "interleaved": True, "startTime": now_ms() - 600_000}
    printed = []
    for page in logs.get_paginator("filter_log_events").paginate(**kwargs):
        printed += page["events"]
    assert [e["message"] for e in printed] == ["starting", "ready"]
    seen = {(e["timestamp"], e["eventId"]) for e in printed}
    put(logs, group, "ecs/app/task1", [(now_ms(), "later")])
    kwargs["startTime"] = max(e["timestamp"] for e in printed)
    again = logs.filter_log_events(**kwargs)
    fresh = [e for e in again["events"] if (e["timestamp"], e["eventId"]) not in seen]
    assert [e["message"] for e in fresh] == ["later"]


def test_describe_streams_prefix_order_and_pagination(logs):
    group = "/stevedore/" + unique("g")
    logs.create_log_group(logGroupName=group)
    t = now_ms()
    for i, name in enumerate(["c", "a", "b", "x/1", "x/2"]):
        logs.create_log_stream(logGroupName=group, logStreamName=name)
        put(logs, group, name, [(t - 10_000 + i, f"m{i}")])
    pages = list(logs.get_paginator("describe_log_streams").paginate(
        logGroupName=group, PaginationConfig={"PageSize": 2}))
    assert len(pages) == 3
    names = [s["logStreamName"] for p in pages for s in p["logStreams"]]
    assert names == ["a", "b", "c", "x/1", "x/2"]
    s = pages[0]["logStreams"][0]
    assert s["arn"] == f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{group}:log-stream:a"
    assert s["firstEventTimestamp"] == s["lastEventTimestamp"] == t - 10_000 + 1
    assert "lastIngestionTime" in s and "uploadSequenceToken" in s
    by_time = logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime", descending=True)
    assert [x["logStreamName"] for x in by_time["logStreams"]] == ["x/2", "x/1", "b", "a", "c"]
    prefixed = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix="x/")
    assert [x["logStreamName"] for x in prefixed["logStreams"]] == ["x/1", "x/2"]
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.describe_log_streams(logGroupName=group, logStreamNamePrefix="x", orderBy="LastEventTime")
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.describe_log_streams(logGroupName=group + "-missing")


def test_describe_groups_prefix_pagination(logs):
    base = "/stevedore/" + unique("many") + "/"
    for i in range(5):
        logs.create_log_group(logGroupName=f"{base}{i}")
    pages = list(logs.get_paginator("describe_log_groups").paginate(
        logGroupNamePrefix=base, PaginationConfig={"PageSize": 2}))
    assert [len(p["logGroups"]) for p in pages] == [2, 2, 1]
    assert [g["logGroupName"] for p in pages for g in p["logGroups"]] == [f"{base}{i}" for i in range(5)]
    assert "nextToken" not in pages[-1]


def test_retention_policy_is_validated_and_enforced(logs):
    group, stream = new_stream(logs)
    t = now_ms()
    put(logs, group, stream, [(t - 3 * DAY_MS, "three days old")])
    put(logs, group, stream, [(t, "fresh")])
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.put_retention_policy(logGroupName=group, retentionInDays=2)
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.put_retention_policy(logGroupName=group + "-missing", retentionInDays=1)
    logs.put_retention_policy(logGroupName=group, retentionInDays=1)
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["retentionInDays"] == 1
    events = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
    assert [e["message"] for e in events] == ["fresh"]
    assert [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]] == ["fresh"]
    r = put(logs, group, stream, [(t - DAY_MS - 60_000, "expired")])
    assert r["rejectedLogEventsInfo"] == {"expiredLogEventEndIndex": 1}
    logs.delete_retention_policy(logGroupName=group)
    assert "retentionInDays" not in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]


def test_tags_by_arn_and_by_name(logs):
    group = "/stevedore/" + unique("g")
    logs.create_log_group(logGroupName=group, tags={"team": "core"})
    arn = f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{group}"
    logs.tag_resource(resourceArn=arn, tags={"env": "dev"})
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "core", "env": "dev"}
    logs.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert logs.list_tags_log_group(logGroupName=group)["tags"] == {"env": "dev"}
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.list_tags_for_resource(resourceArn=arn + "-missing")


def test_deletes_remove_streams_groups_and_events(logs):
    group, stream = new_stream(logs)
    put(logs, group, stream, [(now_ms(), "gone soon")])
    logs.delete_log_stream(logGroupName=group, logStreamName=stream)
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.delete_log_stream(logGroupName=group, logStreamName=stream)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    assert logs.get_log_events(logGroupName=group, logStreamName=stream)["events"] == []
    logs.delete_log_group(logGroupName=group)
    with pytest.raises(logs.exceptions.ResourceNotFoundException) as exc:
        logs.delete_log_group(logGroupName=group)
    assert message_of(exc) == "The specified log group does not exist."
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"] == []


def test_requests_signed_for_another_service_are_refused(server):
    body = json.dumps({"logGroupNamePrefix": "/"}).encode()
    hdrs = signed_headers(server, "DescribeLogGroups", body, target_prefix="Logs_20140328", service="ecs")
    resp = requests.post(server.endpoint + "/", data=body, headers=hdrs, timeout=15)
    assert resp.status_code == 400
    assert resp.json()["__type"] == "InvalidSignatureException"
    assert "'logs'" in resp.json()["message"]


def test_large_batch_from_the_awslogs_driver_is_accepted(logs):
    """Docker's awslogs driver sends up to 1 MiB of messages (plus 26 bytes each) per
    call; the JSON body is larger than that."""
    group, stream = new_stream(logs)
    t = now_ms()
    n = 10_000
    size = 1_048_576 // n - 26
    events = [(t, f"{i:08}" + "x" * (size - 8)) for i in range(n)]
    assert sum(len(m) + 26 for _, m in events) <= 1_048_576
    put(logs, group, stream, events)
    got = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
    assert len(got) == n
    assert got[-1]["message"].startswith(f"{n - 1:08}")


def test_acknowledged_events_survive_sigkill(tmp_path):
    srv = StevedoreServer(tmp_path / "logs-durable")
    cfg = srv.start()
    try:
        client = make_client(cfg, "logs")
        group, stream = new_stream(client)
        t = now_ms()
        for i in range(20):
            put(client, group, stream, [(t + i, f"acked {i}")])
        srv.kill()
        cfg = srv.start()
        client = make_client(cfg, "logs")
        events = client.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
        assert [e["message"] for e in events] == [f"acked {i}" for i in range(20)]
    finally:
        srv.kill()


# --- the aws CLI ----------------------------------------------------------------------


def test_cli_get_log_events_and_filter_show_a_tasks_output(aws, logs):
    group, stream = new_stream(logs, stream="ecs/web/abc123")
    t = now_ms()
    put(logs, group, stream, [(t - 2, "hello from the task"), (t - 1, "second line")])
    out = aws.run("logs", "get-log-events", "--log-group-name", group, "--log-stream-name", stream)
    assert [e["message"] for e in out["events"]] == ["hello from the task", "second line"]
    assert out["nextForwardToken"].startswith("f/") and out["nextBackwardToken"].startswith("b/")
    out = aws.run("logs", "filter-log-events", "--log-group-name", group, "--filter-pattern", "second")
    assert [e["message"] for e in out["events"]] == ["second line"]
    out = aws.run("logs", "describe-log-streams", "--log-group-name", group)
    assert [s["logStreamName"] for s in out["logStreams"]] == [stream]
    proc = aws.run("logs", "describe-log-groups", "--log-group-name-prefix", group + "-none", check=False)
    assert proc.returncode == 0


def test_cli_errors_name_the_aws_exception(aws):
    proc = aws.run("logs", "get-log-events", "--log-group-name", "/nope/" + unique("g"),
                   "--log-stream-name", "s", check=False)
    assert proc.returncode != 0
    assert "ResourceNotFoundException" in proc.stderr
    assert "The specified log group does not exist." in proc.stderr
