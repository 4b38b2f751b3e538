"""CloudWatch metrics through boto3, the aws CLI and raw query-protocol and RPC v2 CBOR
requests: PutMetricData, GetMetricStatistics, GetMetricData (with metric math) and
ListMetrics, AWS's validation errors, and durability across kill -9.

botocore 1.44 speaks AWS JSON 1.0 with `x-amzn-query-mode: true` to CloudWatch; the query
and CBOR tests build their requests by hand (cbor2 is not in the venv, so a minimal CBOR
encoder/decoder lives here) and sign them with botocore's SigV4Auth for `monitoring`.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import stat
import struct
import time
import urllib.parse
import xml.etree.ElementTree as ET

import botocore.auth
import pytest
import requests
from botocore.awsrequest import AWSRequest

from conftest import REGION, StevedoreServer, make_client, unique

NS = "{http://monitoring.amazonaws.com/doc/2010-08-01/}"
UTC = datetime.timezone.utc


@pytest.fixture(scope="module")
def cw(server):
    return make_client(server, "cloudwatch")


@pytest.fixture(scope="module")
def cw_raw(server):
    """A client with botocore's own parameter validation off, to send what AWS refuses."""
    return make_client(server, "cloudwatch", parameter_validation=False)


def minute(offset: int = 0) -> datetime.datetime:
    """The start of the current minute, plus `offset` minutes."""
    now = datetime.datetime.now(UTC).replace(second=0, microsecond=0)
    return now + datetime.timedelta(minutes=offset)


def code_of(exc) -> str:
    return exc.value.response["Error"]["Code"]


def test_put_then_statistics_over_values_counts_and_statistic_sets(cw):
    ns = unique("App")
    t = minute(-5)
    dims = [{"Name": "Service", "Value": "web"}, {"Name": "Cluster", "Value": "c1"}]
    cw.put_metric_data(
        Namespace=ns,
        MetricData=[
            {"MetricName": "Latency", "Dimensions": dims, "Timestamp": t, "Values": [10, 20, 30], "Counts": [1, 2, 1], "Unit": "Milliseconds"},
            # Same metric, dimensions in the other order: the same series.
            {"MetricName": "Latency", "Dimensions": dims[::-1], "Timestamp": t + datetime.timedelta(seconds=20), "Value": 40, "Unit": "Milliseconds"},
            {"MetricName": "Latency", "Dimensions": dims, "Timestamp": t + datetime.timedelta(minutes=1), "StatisticValues": {"SampleCount": 4, "Sum": 8, "Minimum": 1, "Maximum": 3}, "Unit": "Milliseconds"},
        ],
    )
    out = cw.get_metric_statistics(
        Namespace=ns, MetricName="Latency", Dimensions=dims,
        StartTime=t, EndTime=t + datetime.timedelta(minutes=2), Period=60,
        Statistics=["SampleCount", "Average", "Sum", "Minimum", "Maximum"],
    )
    assert out["Label"] == "Latency"
    points = sorted(out["Datapoints"], key=lambda d: d["Timestamp"])
    assert [p["Timestamp"] for p in points] == [t, t + datetime.timedelta(minutes=1)]
    first, second = points
    assert first["SampleCount"] == 5 and first["Sum"] == 120 and first["Average"] == 24
    assert first["Minimum"] == 10 and first["Maximum"] == 40 and first["Unit"] == "Milliseconds"
    assert second["SampleCount"] == 4 and second["Sum"] == 8 and second["Minimum"] == 1 and second["Maximum"] == 3
    # A 120 s period rolls both minutes up into one datapoint.
    out = cw.get_metric_statistics(
        Namespace=ns, MetricName="Latency", Dimensions=dims,
        StartTime=t, EndTime=t + datetime.timedelta(minutes=2), Period=120, Statistics=["SampleCount", "Maximum"],
    )
    assert [(p["SampleCount"], p["Maximum"]) for p in out["Datapoints"]] == [(9, 40)]
    # Another unit than the data's: no datapoints, as AWS answers.
    out = cw.get_metric_statistics(
        Namespace=ns, MetricName="Latency", Dimensions=dims, Unit="Seconds",
        StartTime=t, EndTime=t + datetime.timedelta(minutes=2), Period=60, Statistics=["Sum"],
    )
    assert out["Datapoints"] == []


def test_percentiles_are_within_one_percent(cw):
    ns = unique("Pct")
    t = minute(-3)
    values = list(range(1, 151))
    cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "Lat", "Timestamp": t, "Values": values}])
    out = cw.get_metric_statistics(
        Namespace=ns, MetricName="Lat", StartTime=t, EndTime=t + datetime.timedelta(minutes=1),
        Period=60, ExtendedStatistics=["p50", "p99", "p100", "p0"],
    )
    [point] = out["Datapoints"]
    ext = point["ExtendedStatistics"]
    assert abs(ext["p50"] - 75) <= 0.75 + 1e-9
    assert abs(ext["p99"] - 149) <= 1.49 + 1e-9
    assert ext["p100"] == 150 and ext["p0"] == 1


def test_high_resolution_data_answers_sub_minute_periods(cw):
    ns = unique("Hi")
    t = minute(-2)
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Q", "Timestamp": t + datetime.timedelta(seconds=s), "Value": s, "StorageResolution": 1}
        for s in (0, 1, 11, 12)
    ])
    out = cw.get_metric_statistics(
        Namespace=ns, MetricName="Q", StartTime=t, EndTime=t + datetime.timedelta(seconds=20),
        Period=10, Statistics=["Sum"],
    )
    assert sorted(p["Sum"] for p in out["Datapoints"]) == [1, 23]


def test_get_metric_data_with_math_scan_order_and_paging(cw):
    ns = unique("Math")
    t = minute(-10)
    data = []
    for i in range(5):
        ts = t + datetime.timedelta(minutes=i)
        data.append({"MetricName": "A", "Timestamp": ts, "Value": i + 1})
        if i != 2:  # B has a gap at minute 2
            data.append({"MetricName": "B", "Timestamp": ts, "Value": 10})
    cw.put_metric_data(Namespace=ns, MetricData=data)
    stat = lambda name: {"Metric": {"Namespace": ns, "MetricName": name}, "Period": 60, "Stat": "Sum"}
    queries = [
        {"Id": "a", "MetricStat": stat("A"), "ReturnData": False},
        {"Id": "b", "MetricStat": stat("B"), "ReturnData": False},
        {"Id": "e1", "Expression": "a + b * 2", "Label": "sum"},
        {"Id": "e2", "Expression": "SUM(METRICS())"},
        {"Id": "e3", "Expression": "FILL(b, 0)"},
        {"Id": "e4", "Expression": "a / AVG(a)"},
    ]
    out = cw.get_metric_data(
        MetricDataQueries=queries, StartTime=t, EndTime=t + datetime.timedelta(minutes=5), ScanBy="TimestampAscending",
    )
    results = {r["Id"]: r for r in out["MetricDataResults"]}
    assert set(results) == {"e1", "e2", "e3", "e4"}
    assert results["e1"]["Label"] == "sum"
    assert results["e1"]["Values"] == [21, 22, 24, 25]  # no point where b is missing
    assert results["e2"]["Values"] == [11, 12, 3, 14, 15]
    assert results["e3"]["Values"] == [10, 10, 0, 10, 10]
    assert results["e4"]["Values"] == [1 / 3, 2 / 3, 1, 4 / 3, 5 / 3]
    assert all(r["StatusCode"] == "Complete" for r in results.values())
    assert results["e3"]["Timestamps"][0] == t
    # Default scan order is newest first.
    out = cw.get_metric_data(MetricDataQueries=[{"Id": "a", "MetricStat": stat("A")}], StartTime=t, EndTime=t + datetime.timedelta(minutes=5))
    assert out["MetricDataResults"][0]["Values"] == [5, 4, 3, 2, 1]
    # MaxDatapoints pages with NextToken and PartialData.
    page = cw.get_metric_data(MetricDataQueries=[{"Id": "a", "MetricStat": stat("A")}], StartTime=t, EndTime=t + datetime.timedelta(minutes=5), MaxDatapoints=3)
    assert page["MetricDataResults"][0]["StatusCode"] == "PartialData"
    assert page["MetricDataResults"][0]["Values"] == [5, 4, 3]
    rest = cw.get_metric_data(MetricDataQueries=[{"Id": "a", "MetricStat": stat("A")}], StartTime=t, EndTime=t + datetime.timedelta(minutes=5), MaxDatapoints=3, NextToken=page["NextToken"])
    assert rest["MetricDataResults"][0]["Values"] == [2, 1]
    assert "NextToken" not in rest


def test_get_metric_data_refuses_unsupported_functions(cw):
    t = minute(-5)
    with pytest.raises(cw.exceptions.ClientError) as exc:
        cw.get_metric_data(
            MetricDataQueries=[
                {"Id": "a", "MetricStat": {"Metric": {"Namespace": "X", "MetricName": "Y"}, "Period": 60, "Stat": "Sum"}, "ReturnData": False},
                {"Id": "e", "Expression": "ANOMALY_DETECTION_BAND(a)"},
            ],
            StartTime=t, EndTime=minute(),
        )
    assert code_of(exc) == "ValidationError"
    assert "Unsupported function ANOMALY_DETECTION_BAND" in exc.value.response["Error"]["Message"]


def test_list_metrics_filters_and_recently_active(cw):
    ns = unique("List")
    t = minute(-1)
    old = datetime.datetime.now(UTC) - datetime.timedelta(days=3)
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "CPU", "Dimensions": [{"Name": "Svc", "Value": "a"}], "Timestamp": t, "Value": 1},
        {"MetricName": "CPU", "Dimensions": [{"Name": "Svc", "Value": "b"}], "Timestamp": t, "Value": 1},
        {"MetricName": "Mem", "Dimensions": [{"Name": "Svc", "Value": "a"}, {"Name": "Az", "Value": "z"}], "Timestamp": old, "Value": 1},
    ])
    names = lambda out: sorted((m["MetricName"], tuple((d["Name"], d["Value"]) for d in m["Dimensions"])) for m in out["Metrics"])
    assert names(cw.list_metrics(Namespace=ns)) == [
        ("CPU", (("Svc", "a"),)), ("CPU", (("Svc", "b"),)), ("Mem", (("Az", "z"), ("Svc", "a"))),
    ]
    assert names(cw.list_metrics(Namespace=ns, MetricName="CPU", Dimensions=[{"Name": "Svc", "Value": "b"}])) == [("CPU", (("Svc", "b"),))]
    assert len(cw.list_metrics(Namespace=ns, Dimensions=[{"Name": "Svc"}])["Metrics"]) == 3
    assert len(cw.list_metrics(Namespace=ns, Dimensions=[{"Name": "Az"}])["Metrics"]) == 1
    recent = cw.list_metrics(Namespace=ns, RecentlyActive="PT3H")
    assert {m["MetricName"] for m in recent["Metrics"]} == {"CPU"}
    with pytest.raises(cw.exceptions.ClientError) as exc:
        cw.list_metrics(Namespace=ns, RecentlyActive="PT1H")
    assert code_of(exc) == "InvalidParameterValue"


def test_list_metrics_pages_by_500(cw):
    ns = unique("Page")
    t = minute(-1)
    for chunk in range(2):
        cw.put_metric_data(Namespace=ns, MetricData=[
            {"MetricName": f"M{chunk * 300 + i:04}", "Timestamp": t, "Value": 1} for i in range(300)
        ])
    first = cw.list_metrics(Namespace=ns)
    assert len(first["Metrics"]) == 500 and "NextToken" in first
    second = cw.list_metrics(Namespace=ns, NextToken=first["NextToken"])
    assert len(second["Metrics"]) == 100 and "NextToken" not in second


@pytest.mark.parametrize(
    "datum, code, words",
    [
        ({"MetricName": "m", "Value": float("nan")}, "InvalidParameterValue", "MetricData.member.1.Value"),
        ({"MetricName": "m", "Value": float("inf")}, "InvalidParameterValue", "MetricData.member.1.Value"),
        ({"MetricName": "m", "Value": 1, "Timestamp": datetime.datetime.now(UTC) - datetime.timedelta(days=15)}, "InvalidParameterValue", "within the past two weeks"),
        ({"MetricName": "m", "Value": 1, "Timestamp": datetime.datetime.now(UTC) + datetime.timedelta(hours=3)}, "InvalidParameterValue", "two hours in the future"),
        ({"MetricName": "m", "Value": 1, "StorageResolution": 30}, "InvalidParameterValue", "StorageResolution"),
        ({"MetricName": "m", "Value": 1, "Unit": "Furlongs"}, "InvalidParameterValue", "Unit"),
        ({"MetricName": "m", "Value": 1, "Values": [1]}, "InvalidParameterCombination", "mutually exclusive"),
        ({"MetricName": "m", "Values": list(range(151))}, "InvalidParameterValue", "greater than 150"),
        ({"MetricName": "m", "Values": [1, 2], "Counts": [1]}, "InvalidParameterValue", "same size"),
        ({"MetricName": "m", "Value": 1, "Dimensions": [{"Name": f"d{i}", "Value": "v"} for i in range(31)]}, "InvalidParameterValue", "greater than 30"),
        ({"MetricName": "m"}, "InvalidParameterCombination", "At least one"),
        ({"Value": 1}, "MissingParameter", "MetricName"),
    ],
)
def test_put_metric_data_validation(cw_raw, datum, code, words):
    with pytest.raises(cw_raw.exceptions.ClientError) as exc:
        cw_raw.put_metric_data(Namespace="Validation", MetricData=[datum])
    assert code_of(exc) == code, exc.value.response
    assert words in exc.value.response["Error"]["Message"]
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_put_limits_and_statistics_rules(cw_raw):
    with pytest.raises(cw_raw.exceptions.ClientError) as exc:
        cw_raw.put_metric_data(Namespace="V", MetricData=[{"MetricName": "m", "Value": 1}] * 1001)
    assert code_of(exc) == "InvalidParameterValue"
    assert "greater than 1000" in exc.value.response["Error"]["Message"]
    with pytest.raises(cw_raw.exceptions.ClientError) as exc:
        cw_raw.put_metric_data(MetricData=[{"MetricName": "m", "Value": 1}])
    assert code_of(exc) == "MissingParameter"
    t = minute()
    base = dict(Namespace="V", MetricName="m", StartTime=t - datetime.timedelta(days=2), EndTime=t)
    with pytest.raises(cw_raw.exceptions.ClientError) as exc:
        cw_raw.get_metric_statistics(Period=60, Statistics=["Sum"], **base)
    assert code_of(exc) == "InvalidParameterCombination"
    assert "exceeds the limit of 1440" in exc.value.response["Error"]["Message"]
    with pytest.raises(cw_raw.exceptions.ClientError) as exc:
        cw_raw.get_metric_statistics(Period=45, Statistics=["Sum"], **base)
    assert code_of(exc) == "InvalidParameterValue"
    with pytest.raises(cw_raw.exceptions.ClientError) as exc:
        cw_raw.get_metric_statistics(Period=3600, Statistics=["Sum"], ExtendedStatistics=["p99"], **base)
    assert code_of(exc) == "InvalidParameterCombination"
    with pytest.raises(cw_raw.exceptions.ClientError) as exc:
        cw_raw.get_metric_statistics(Period=3600, Statistics=["Median"], **base)
    assert code_of(exc) == "InvalidParameterValue"


def test_aws_cli_put_get_math_and_list(aws):
    ns = unique("Cli")
    t = minute(-4)
    iso = lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")
    aws.run("cloudwatch", "put-metric-data", "--namespace", ns, "--metric-name", "Req", "--value", "7",
            "--dimensions", "Svc=web", "--timestamp", iso(t), "--unit", "Count")
    aws.run("cloudwatch", "put-metric-data", "--namespace", ns, "--metric-data",
            json.dumps([{"MetricName": "Req", "Dimensions": [{"Name": "Svc", "Value": "web"}], "Timestamp": iso(t), "Value": 3, "Unit": "Count"}]))
    out = aws.run("cloudwatch", "get-metric-statistics", "--namespace", ns, "--metric-name", "Req",
                  "--dimensions", "Name=Svc,Value=web", "--start-time", iso(t), "--end-time", iso(t + datetime.timedelta(minutes=1)),
                  "--period", "60", "--statistics", "Sum", "SampleCount")
    assert [(p["Sum"], p["SampleCount"], p["Unit"]) for p in out["Datapoints"]] == [(10.0, 2.0, "Count")]
    queries = [
        {"Id": "r", "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "Req", "Dimensions": [{"Name": "Svc", "Value": "web"}]}, "Period": 60, "Stat": "Sum"}, "ReturnData": False},
        {"Id": "rate", "Expression": "r / 60", "Label": "per second"},
    ]
    out = aws.run("cloudwatch", "get-metric-data", "--metric-data-queries", json.dumps(queries),
                  "--start-time", iso(t), "--end-time", iso(t + datetime.timedelta(minutes=1)))
    [result] = out["MetricDataResults"]
    assert result["Id"] == "rate" and result["Label"] == "per second"
    assert result["Values"] == [pytest.approx(10 / 60)]
    listed = aws.run("cloudwatch", "list-metrics", "--namespace", ns)
    assert [m["MetricName"] for m in listed["Metrics"]] == ["Req"]
    bad = aws.run("cloudwatch", "put-metric-data", "--namespace", ns, "--metric-name", "Req", "--value", "1",
                  "--storage-resolution", "5", check=False)
    assert bad.returncode != 0 and "InvalidParameterValue" in bad.stderr


def signed(cfg, body: bytes, headers: dict, path: str = "/"):
    req = AWSRequest(method="POST", url=cfg.endpoint + path, data=body, headers=headers)
    botocore.auth.SigV4Auth(cfg.credentials(), "monitoring", REGION).add_auth(req)
    return requests.post(cfg.endpoint + path, data=body, headers=dict(req.headers.items()), timeout=15)


def test_query_protocol_put_and_get(server):
    ns = unique("Query")
    t = minute(-2)
    iso = t.strftime("%Y-%m-%dT%H:%M:%SZ")
    form = {
        "Action": "PutMetricData", "Version": "2010-08-01", "Namespace": ns,
        "MetricData.member.1.MetricName": "Q", "MetricData.member.1.Value": "2.5",
        "MetricData.member.1.Timestamp": iso,
        "MetricData.member.1.Dimensions.member.1.Name": "K", "MetricData.member.1.Dimensions.member.1.Value": "v",
    }
    ct = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    resp = signed(server, urllib.parse.urlencode(form).encode(), ct)
    assert resp.status_code == 200, resp.text
    root = ET.fromstring(resp.text)
    assert root.tag == f"{NS}PutMetricDataResponse"
    assert root.find(f"{NS}ResponseMetadata/{NS}RequestId").text
    form = {
        "Action": "GetMetricStatistics", "Version": "2010-08-01", "Namespace": ns, "MetricName": "Q",
        "Dimensions.member.1.Name": "K", "Dimensions.member.1.Value": "v",
        "StartTime": iso, "EndTime": (t + datetime.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Period": "60", "Statistics.member.1": "Maximum", "ExtendedStatistics.member.1": "p50",
    }
    form.pop("ExtendedStatistics.member.1")
    resp = signed(server, urllib.parse.urlencode(form).encode(), ct)
    assert resp.status_code == 200, resp.text
    root = ET.fromstring(resp.text)
    result = root.find(f"{NS}GetMetricStatisticsResult")
    assert result.find(f"{NS}Label").text == "Q"
    [point] = result.findall(f"{NS}Datapoints/{NS}member")
    assert float(point.find(f"{NS}Maximum").text) == 2.5
    assert point.find(f"{NS}Timestamp").text == iso
    # Errors use the query code (InvalidParameterValue), as the query protocol does.
    form = {"Action": "ListMetrics", "Version": "2010-08-01", "RecentlyActive": "PT9H"}
    resp = signed(server, urllib.parse.urlencode(form).encode(), ct)
    assert resp.status_code == 400
    err = ET.fromstring(resp.text)
    assert err.find("Error/Code").text == "InvalidParameterValue", resp.text
    assert err.find("Error/Type").text == "Sender"


# --- a minimal CBOR codec (RFC 8949), enough for these requests and answers -------------


def cbor_head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    for extra, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if n < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | extra]) + struct.pack(fmt, n)
    raise ValueError(n)


class Timestamp(float):
    pass


def cbor_encode(v) -> bytes:
    if isinstance(v, Timestamp):
        return bytes([0xC1]) + cbor_encode(float(v))
    if v is True:
        return b"\xf5"
    if v is False:
        return b"\xf4"
    if isinstance(v, int):
        return cbor_head(0, v) if v >= 0 else cbor_head(1, -1 - v)
    if isinstance(v, float):
        return b"\xfb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        return cbor_head(3, len(b)) + b
    if isinstance(v, list):
        return cbor_head(4, len(v)) + b"".join(cbor_encode(x) for x in v)
    if isinstance(v, dict):
        return cbor_head(5, len(v)) + b"".join(cbor_encode(k) + cbor_encode(x) for k, x in v.items())
    raise TypeError(v)


def cbor_decode(data: bytes):
    def item(i):
        b = data[i]
        major, info = b >> 5, b & 31
        i += 1
        if major == 7:
            if info == 20:
                return False, i
            if info == 21:
                return True, i
            if info == 22:
                return None, i
            size = {25: 2, 26: 4, 27: 8}[info]
            fmt = {2: ">e", 4: ">f", 8: ">d"}[size]
            return struct.unpack(fmt, data[i:i + size])[0], i + size
        if info < 24:
            n = info
        else:
            size = {24: 1, 25: 2, 26: 4, 27: 8}[info]
            n = int.from_bytes(data[i:i + size], "big")
            i += size
        if major == 0:
            return n, i
        if major == 1:
            return -1 - n, i
        if major == 3:
            return data[i:i + n].decode(), i + n
        if major == 4:
            out = []
            for _ in range(n):
                x, i = item(i)
                out.append(x)
            return out, i
        if major == 5:
            out = {}
            for _ in range(n):
                k, i = item(i)
                out[k], i = item(i)
            return out, i
        if major == 6:
            x, i = item(i)
            return ("tag", n, x), i
        raise ValueError(major)

    value, end = item(0)
    assert end == len(data)
    return value


def cbor_call(cfg, op: str, body: dict) -> requests.Response:
    headers = {"Content-Type": "application/cbor", "Accept": "application/cbor", "Smithy-Protocol": "rpc-v2-cbor"}
    return signed(cfg, cbor_encode(body), headers, f"/service/GraniteServiceVersion20100801/operation/{op}")


def test_rpc_v2_cbor_put_get_and_errors(server):
    ns = unique("Cbor")
    t = minute(-2).timestamp()
    resp = cbor_call(server, "PutMetricData", {"Namespace": ns, "MetricData": [{"MetricName": "C", "Value": 4.0, "Timestamp": Timestamp(t)}]})
    assert resp.status_code == 200, resp.content
    assert resp.headers["Smithy-Protocol"] == "rpc-v2-cbor"
    assert resp.content == b"" and "Content-Type" not in resp.headers
    resp = cbor_call(server, "GetMetricData", {
        "MetricDataQueries": [{"Id": "c", "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "C"}, "Period": 60, "Stat": "Average"}}],
        "StartTime": Timestamp(t), "EndTime": Timestamp(t + 60),
    })
    assert resp.status_code == 200, resp.content
    assert resp.headers["Content-Type"] == "application/cbor"
    assert resp.headers["Smithy-Protocol"] == "rpc-v2-cbor"
    out = cbor_decode(resp.content)
    [result] = out["MetricDataResults"]
    assert result["Values"] == [4.0]
    # Timestamps are tag 1 around epoch seconds.
    assert result["Timestamps"] == [("tag", 1, int(t))]
    resp = cbor_call(server, "PutMetricData", {"Namespace": ns, "MetricData": [{"MetricName": "C", "Value": float("nan")}]})
    assert resp.status_code == 400
    assert resp.headers["x-amzn-query-error"] == "InvalidParameterValue;Sender"
    err = cbor_decode(resp.content)
    assert err["__type"].split("#")[-1] == "InvalidParameterValueException"
    assert "message" in err
    # The protocol header is required.
    bad = signed(server, cbor_encode({}), {"Content-Type": "application/cbor"},
                 "/service/GraniteServiceVersion20100801/operation/ListMetrics")
    assert bad.status_code == 400


def test_acknowledged_metrics_survive_sigkill(tmp_path):
    srv = StevedoreServer(tmp_path / "cw-durable")
    cfg = srv.start()
    try:
        cw = make_client(cfg, "cloudwatch")
        t = minute(-3)
        for i in range(10):
            cw.put_metric_data(Namespace="Durable", MetricData=[{"MetricName": "D", "Timestamp": t, "Value": i}])
        srv.kill()
        db = tmp_path / "cw-durable" / "metrics.db"
        assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
        cfg = srv.start()
        cw = make_client(cfg, "cloudwatch")
        out = cw.get_metric_statistics(
            Namespace="Durable", MetricName="D", StartTime=t, EndTime=t + datetime.timedelta(minutes=1),
            Period=60, Statistics=["Sum", "SampleCount"],
        )
        assert [(p["Sum"], p["SampleCount"]) for p in out["Datapoints"]] == [(45.0, 10.0)]
        assert [m["MetricName"] for m in cw.list_metrics(Namespace="Durable")["Metrics"]] == ["D"]
    finally:
        srv.stop()
