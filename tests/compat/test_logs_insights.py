"""CloudWatch Logs Insights through boto3 and the aws CLI: StartQuery, GetQueryResults,
StopQuery, DescribeQueries, query definitions and GetLogGroupFields over events put
with PutLogEvents.

What a user scripting Insights relies on: `stats count(*) by bin(1m)` counted per minute,
the statistics, rows as lists of {field, value} with @ptr, and MalformedQueryException
with the position of a syntax error.
"""

from __future__ import annotations

import json
import time

import pytest

from conftest import ACCOUNT_ID, make_client, unique


@pytest.fixture(scope="module")
def logs(server):
    return make_client(server, "logs")


def minute_start_ms() -> int:
    """The start of the current minute, minus ten minutes (so all events are in the past)."""
    now = int(time.time() * 1000)
    return now - now % 60_000 - 10 * 60_000


def new_group(logs, events: dict[str, list[tuple[int, str]]]) -> str:
    group = "/stevedore/insights/" + unique("g")
    logs.create_log_group(logGroupName=group)
    for stream, evs in events.items():
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        if not evs:
            continue
        logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": t, "message": m} for t, m in evs],
        )
    return group


def wait_results(logs, query_id: str) -> dict:
    deadline = time.time() + 30
    while time.time() < deadline:
        out = logs.get_query_results(queryId=query_id)
        if out["status"] not in ("Scheduled", "Running"):
            return out
        time.sleep(0.1)
    raise AssertionError(f"query {query_id} did not finish")


def rows(out: dict) -> list[dict]:
    return [{f["field"]: f["value"] for f in row} for row in out["results"]]


def fmt(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}"


def test_stats_count_by_bin_counts_events_per_minute(logs):
    t0 = minute_start_ms()
    group = new_group(
        logs,
        {
            "web/1": [(t0 + 1_000, "GET /a 200"), (t0 + 2_000, "GET /b 500"), (t0 + 61_000, "GET /c 200")],
            "web/2": [(t0 + 3_000, "POST /a 200"), (t0 + 125_000, "GET /d 404")],
        },
    )
    qid = logs.start_query(
        logGroupName=group,
        startTime=t0 // 1000,
        endTime=t0 // 1000 + 300,
        queryString="stats count(*) by bin(1m)",
    )["queryId"]
    out = wait_results(logs, qid)
    assert out["status"] == "Complete"
    assert rows(out) == [
        {"bin(1m)": fmt(t0), "count(*)": "3"},
        {"bin(1m)": fmt(t0 + 60_000), "count(*)": "1"},
        {"bin(1m)": fmt(t0 + 120_000), "count(*)": "1"},
    ]
    stats = out["statistics"]
    assert stats["recordsScanned"] == 5.0
    assert stats["recordsMatched"] == 5.0
    assert stats["bytesScanned"] == float(sum(len(m) for m in ["GET /a 200", "GET /b 500", "GET /c 200", "POST /a 200", "GET /d 404"]))

    listed = logs.describe_queries(logGroupName=group)["queries"]
    assert [q["queryId"] for q in listed] == [qid]
    assert listed[0]["status"] == "Complete"
    assert listed[0]["queryString"] == "stats count(*) by bin(1m)"


def test_filter_parse_sort_and_fields_over_json_and_text(logs):
    t0 = minute_start_ms()
    group = new_group(
        logs,
        {
            "app": [
                (t0 + 1_000, json.dumps({"level": "ERROR", "latency": 120, "req": {"path": "/a"}})),
                (t0 + 2_000, json.dumps({"level": "INFO", "latency": 5, "req": {"path": "/b"}})),
                (t0 + 3_000, "user=carol took=30ms"),
                (t0 + 4_000, "user=dave took=7ms"),
            ]
        },
    )
    qid = logs.start_query(
        logGroupIdentifiers=[f"arn:aws:logs:us-east-1:{ACCOUNT_ID}:log-group:{group}"],
        startTime=t0 // 1000,
        endTime=t0 // 1000 + 60,
        queryString="filter level = 'ERROR' or latency < 10 | fields req.path, latency | sort latency desc",
    )["queryId"]
    out = wait_results(logs, qid)
    got = rows(out)
    assert [(r["req.path"], r["latency"]) for r in got] == [("/a", "120"), ("/b", "5")]
    assert all(r["@ptr"] for r in got), "every row carries @ptr"

    qid = logs.start_query(
        logGroupNames=[group],
        startTime=t0 // 1000,
        endTime=t0 // 1000 + 60,
        queryString="parse @message 'user=* took=*ms' as user, ms | filter ispresent(user) "
        "| stats sum(ms) as total, max(ms) as worst",
    )["queryId"]
    assert rows(wait_results(logs, qid)) == [{"total": "37", "worst": "30"}]

    fields = logs.get_log_group_fields(logGroupName=group, time=t0 // 1000)["logGroupFields"]
    percent = {f["name"]: f["percent"] for f in fields}
    assert percent["@message"] == 100
    assert percent["req.path"] == 50


def test_syntax_errors_are_malformed_query_exceptions_with_the_position(logs):
    group = new_group(logs, {"s": []})
    with pytest.raises(logs.exceptions.MalformedQueryException) as exc:
        logs.start_query(
            logGroupName=group, startTime=0, endTime=10, queryString="fields @message | filtr x = 1"
        )
    err = exc.value.response
    assert err["Error"]["Message"] == "unexpected symbol found filtr at line 1 and position 19"
    assert err["queryCompileError"]["location"] == {"startCharOffset": 18, "endCharOffset": 22}
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.start_query(
            logGroupName=group, logGroupNames=[group], startTime=0, endTime=10, queryString="fields @message"
        )
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.start_query(
            logGroupName=group + "-missing", startTime=0, endTime=10, queryString="fields @message"
        )


def test_stop_query_and_query_definitions(logs):
    group = new_group(logs, {"s": [(minute_start_ms(), "x")]})
    qid = logs.start_query(logGroupName=group, startTime=0, endTime=10, queryString="fields @message")["queryId"]
    out = wait_results(logs, qid)
    assert out["status"] == "Complete" and out["results"] == []
    assert logs.stop_query(queryId=qid)["success"] is False

    name = unique("defs/") + "/errors"
    did = logs.put_query_definition(
        name=name, queryString="filter @message like /ERROR/", logGroupNames=[group]
    )["queryDefinitionId"]
    defs = logs.describe_query_definitions(queryDefinitionNamePrefix=name)["queryDefinitions"]
    assert [(d["queryDefinitionId"], d["name"], d["logGroupNames"]) for d in defs] == [(did, name, [group])]
    logs.put_query_definition(queryDefinitionId=did, name=name, queryString="fields @message")
    defs = logs.describe_query_definitions(queryDefinitionNamePrefix=name)["queryDefinitions"]
    assert defs[0]["queryString"] == "fields @message"
    assert logs.delete_query_definition(queryDefinitionId=did)["success"] is True
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.delete_query_definition(queryDefinitionId=did)


def test_cli_start_query_then_get_query_results(aws, logs):
    t0 = minute_start_ms()
    group = new_group(
        logs, {"task/app/1": [(t0 + 1_000, "hello"), (t0 + 2_000, "ERROR one"), (t0 + 70_000, "ERROR two")]}
    )
    started = aws.run(
        "logs", "start-query",
        "--log-group-name", group,
        "--start-time", str(t0 // 1000),
        "--end-time", str(t0 // 1000 + 600),
        "--query-string", "filter @message like /ERROR/ | stats count(*) by bin(1m)",
    )
    qid = started["queryId"]
    deadline = time.time() + 30
    while True:
        out = aws.run("logs", "get-query-results", "--query-id", qid)
        if out["status"] not in ("Scheduled", "Running") or time.time() > deadline:
            break
        time.sleep(0.2)
    assert out["status"] == "Complete"
    assert rows(out) == [
        {"bin(1m)": fmt(t0), "count(*)": "1"},
        {"bin(1m)": fmt(t0 + 60_000), "count(*)": "1"},
    ]
    assert out["statistics"]["recordsMatched"] == 2.0
    proc = aws.run(
        "logs", "start-query", "--log-group-name", group, "--start-time", "0", "--end-time", "1",
        "--query-string", "stats count(*) by", check=False,
    )
    assert proc.returncode != 0
    assert "MalformedQueryException" in proc.stderr
