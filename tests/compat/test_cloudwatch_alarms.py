"""CloudWatch metric alarms through boto3 and the aws CLI on a server started with
--time-scale 10 (STEVEDORE_TIME_SCALE): a 10 s alarm period is evaluated every second
over high-resolution data, so an alarm goes ALARM and back to OK within seconds.
Covers PutMetricAlarm validation, DescribeAlarms(ForMetric), SetAlarmState, history.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import time

import pytest
from botocore.exceptions import ClientError

from conftest import StevedoreServer, make_client, unique

UTC = datetime.timezone.utc


@pytest.fixture(scope="module")
def scaled(tmp_path_factory):
    srv = StevedoreServer(
        tmp_path_factory.mktemp("cw-alarms") / "data", extra_env={"STEVEDORE_TIME_SCALE": "10"}
    )
    try:
        cfg = srv.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield cfg
    srv.stop()


@pytest.fixture(scope="module")
def cw(scaled):
    return make_client(scaled, "cloudwatch")


def alarm_args(name, ns, **over):
    args = dict(
        AlarmName=name,
        Namespace=ns,
        MetricName="Load",
        Dimensions=[{"Name": "Service", "Value": "web"}],
        Statistic="Average",
        Period=10,
        EvaluationPeriods=2,
        DatapointsToAlarm=2,
        Threshold=50.0,
        ComparisonOperator="GreaterThanThreshold",
        AlarmActions=["arn:aws:sns:us-east-1:000000000000:ops"],
    )
    args.update(over)
    return args


def put_now(cw, ns, value):
    cw.put_metric_data(
        Namespace=ns,
        MetricData=[
            {
                "MetricName": "Load",
                "Dimensions": [{"Name": "Service", "Value": "web"}],
                "Timestamp": datetime.datetime.now(UTC),
                "Value": value,
                "StorageResolution": 1,
            }
        ],
    )


def wait_state(cw, ns, name, value, want, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        put_now(cw, ns, value)
        alarm = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
        if alarm["StateValue"] == want:
            return alarm
        time.sleep(0.3)
    pytest.fail(f"alarm {name} never reached {want}: {alarm}")


def test_alarm_goes_alarm_then_ok_with_history(cw):
    ns, name = unique("AlarmNs"), unique("high-load")
    cw.put_metric_alarm(**alarm_args(name, ns))
    alarm = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
    assert alarm["StateValue"] == "INSUFFICIENT_DATA"
    assert alarm["StateReason"] == "Unchecked: Initial alarm creation"
    assert alarm["AlarmArn"].endswith(f":alarm:{name}")
    assert alarm["ActionsEnabled"] is True

    alarm = wait_state(cw, ns, name, 90.0, "ALARM")
    assert alarm["StateReason"].startswith("Threshold Crossed: 2 out of the last 2 datapoints [90.0 (")
    assert "were greater than the threshold (50.0) (minimum 2 datapoints for" in alarm["StateReason"]
    data = json.loads(alarm["StateReasonData"])
    assert data["threshold"] == 50.0 and data["recentDatapoints"] == [90.0, 90.0]

    alarm = wait_state(cw, ns, name, 10.0, "OK")
    assert "not greater than the threshold (50.0)" in alarm["StateReason"]

    history = cw.describe_alarm_history(AlarmName=name)["AlarmHistoryItems"]
    summaries = [h["HistorySummary"] for h in history]
    assert "Alarm updated from ALARM to OK" in summaries
    assert f'Alarm "{name}" created' in summaries
    state_items = cw.describe_alarm_history(AlarmName=name, HistoryItemType="StateUpdate")[
        "AlarmHistoryItems"
    ]
    assert all(h["HistoryItemType"] == "StateUpdate" for h in state_items)
    to_alarm = next(h for h in state_items if h["HistorySummary"].endswith("to ALARM"))
    hd = json.loads(to_alarm["HistoryData"])
    assert hd["newState"]["stateValue"] == "ALARM" and "oldState" in hd
    # SNS is not served: the notification is recorded as a failed action.
    actions = cw.describe_alarm_history(AlarmName=name, HistoryItemType="Action")[
        "AlarmHistoryItems"
    ]
    assert any(h["HistorySummary"].startswith("Failed to execute action arn:aws:sns:") for h in actions)

    cw.delete_alarms(AlarmNames=[name])
    assert cw.describe_alarms(AlarmNames=[name])["MetricAlarms"] == []
    # History outlives the alarm.
    assert cw.describe_alarm_history(AlarmName=name)["AlarmHistoryItems"]


def test_set_alarm_state_describe_for_metric_and_actions(cw):
    ns, name = unique("AlarmNs"), unique("manual")
    cw.put_metric_alarm(**alarm_args(name, ns, Period=3600, AlarmActions=[]))
    cw.set_alarm_state(
        AlarmName=name,
        StateValue="ALARM",
        StateReason="testing",
        StateReasonData=json.dumps({"version": "1.0", "threshold": 50.0, "recentDatapoints": [99.0]}),
    )
    alarm = cw.describe_alarms(AlarmNames=[name], StateValue="ALARM")["MetricAlarms"][0]
    assert alarm["StateReason"] == "testing"
    assert json.loads(alarm["StateReasonData"])["recentDatapoints"] == [99.0]
    found = cw.describe_alarms_for_metric(
        Namespace=ns, MetricName="Load", Dimensions=[{"Name": "Service", "Value": "web"}]
    )["MetricAlarms"]
    assert [a["AlarmName"] for a in found] == [name]
    assert cw.describe_alarms_for_metric(Namespace=ns, MetricName="Other")["MetricAlarms"] == []
    cw.disable_alarm_actions(AlarmNames=[name])
    assert cw.describe_alarms(AlarmNamePrefix=name)["MetricAlarms"][0]["ActionsEnabled"] is False
    cw.enable_alarm_actions(AlarmNames=[name])
    assert cw.describe_alarms(AlarmNamePrefix=name)["MetricAlarms"][0]["ActionsEnabled"] is True
    with pytest.raises(ClientError) as e:
        cw.set_alarm_state(AlarmName=unique("nope"), StateValue="OK", StateReason="x")
    assert e.value.response["Error"]["Code"] == "ResourceNotFound"
    with pytest.raises(ClientError) as e:
        cw.delete_alarms(AlarmNames=[name, unique("nope")])
    assert e.value.response["Error"]["Code"] == "ResourceNotFound"


@pytest.mark.parametrize(
    "over,code",
    [
        ({"Period": 45}, "InvalidParameterValue"),
        ({"Period": 60, "EvaluationPeriods": 1441}, "InvalidParameterValue"),
        ({"DatapointsToAlarm": 3}, "ValidationError"),
        ({"ComparisonOperator": "Bigger"}, "InvalidParameterValue"),
        ({"TreatMissingData": "sometimes"}, "InvalidParameterValue"),
        ({"ExtendedStatistic": "p90"}, "InvalidParameterCombination"),
        ({"AlarmActions": [f"arn:aws:sns:us-east-1:0:t{i}" for i in range(6)]}, "InvalidParameterValue"),
    ],
)
def test_put_metric_alarm_validation(cw, over, code):
    with pytest.raises(ClientError) as e:
        cw.put_metric_alarm(**alarm_args(unique("bad"), "Ns", **over))
    assert e.value.response["Error"]["Code"] == code


def test_aws_cli_describe_alarms(cw, scaled):
    name = unique("cli")
    cw.put_metric_alarm(**alarm_args(name, unique("AlarmNs"), TreatMissingData="notBreaching"))
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID=scaled.access_key,
        AWS_SECRET_ACCESS_KEY=scaled.secret_key,
        AWS_DEFAULT_REGION=scaled.region,
    )
    out = subprocess.run(
        ["/work/venv/bin/aws", "--endpoint-url", scaled.endpoint, "cloudwatch", "describe-alarms",
         "--alarm-names", name, "--output", "json"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )
    alarm = json.loads(out.stdout)["MetricAlarms"][0]
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["EvaluationPeriods"] == 2


def test_query_protocol_and_cbor_alarms(scaled):
    # The raw-protocol helpers live with the metrics tests.
    import urllib.parse
    import xml.etree.ElementTree as ET

    from test_cloudwatch import NS, cbor_call, cbor_decode, signed

    name, ns = unique("query"), unique("AlarmNs")
    form = {
        "Action": "PutMetricAlarm", "Version": "2010-08-01", "AlarmName": name, "Namespace": ns,
        "MetricName": "Load", "Statistic": "Maximum", "Period": "60", "EvaluationPeriods": "3",
        "DatapointsToAlarm": "2", "Threshold": "75", "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "ActionsEnabled": "false", "OKActions.member.1": "arn:aws:sns:us-east-1:000000000000:ops",
        "Dimensions.member.1.Name": "Service", "Dimensions.member.1.Value": "web",
    }
    ct = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    resp = signed(scaled, urllib.parse.urlencode(form).encode(), ct)
    assert resp.status_code == 200, resp.text
    form = {"Action": "DescribeAlarms", "Version": "2010-08-01", "AlarmNames.member.1": name}
    resp = signed(scaled, urllib.parse.urlencode(form).encode(), ct)
    assert resp.status_code == 200, resp.text
    [alarm] = ET.fromstring(resp.text).findall(f"{NS}DescribeAlarmsResult/{NS}MetricAlarms/{NS}member")
    assert alarm.find(f"{NS}ActionsEnabled").text == "false"
    assert alarm.find(f"{NS}DatapointsToAlarm").text == "2"
    assert alarm.find(f"{NS}OKActions/{NS}member").text.endswith(":ops")
    assert alarm.find(f"{NS}Dimensions/{NS}member/{NS}Name").text == "Service"
    # The same alarm over RPC v2 CBOR; a missing alarm is ResourceNotFound (404).
    resp = cbor_call(scaled, "DescribeAlarms", {"AlarmNames": [name]})
    assert resp.status_code == 200, resp.content
    [out] = cbor_decode(resp.content)["MetricAlarms"]
    assert out["ActionsEnabled"] is False and out["Threshold"] == 75.0
    assert out["StateUpdatedTimestamp"][:2] == ("tag", 1)
    resp = cbor_call(scaled, "SetAlarmState", {"AlarmName": unique("none"), "StateValue": "OK", "StateReason": "x"})
    assert resp.status_code == 404
    assert resp.headers["x-amzn-query-error"] == "ResourceNotFound;Sender"
