"""AWS/ApplicationELB metrics from the server's own data plane: an application load
balancer forwards to a local HTTP server (an ip target on 127.0.0.1); the requests sent
through its listener come back from CloudWatch (boto3 GetMetricStatistics, ListMetrics)
with AWS's names, units and dimensions: RequestCount per LoadBalancer and per
TargetGroup+LoadBalancer, RequestCountPerTarget per TargetGroup, TargetResponseTime
(Average and percentiles), HTTPCode_Target_5XX_Count and HealthyHostCount. Health checks
also reach the target but are not counted. The server publishes every 2 s
(STEVEDORE_LB_METRICS_INTERVAL) instead of AWS's minute."""
from __future__ import annotations

import datetime
import http.server
import threading
import time
import urllib.error
import urllib.request

import pytest

from agent_fixtures import wait_for
from conftest import StevedoreServer, free_port, make_client, unique

NAMESPACE = "AWS/ApplicationELB"
DELAY_S = 0.05
OK, FAILED = 7, 3


class Backend(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    health_checks = 0

    def do_GET(self):  # noqa: N802 (the stdlib's naming)
        if self.path == "/health":
            type(self).health_checks += 1
            status = 200
        else:
            # A measurable target response time.
            time.sleep(DELAY_S)
            status = 500 if self.path.startswith("/fail") else 200
        body = b"ok"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def get_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


@pytest.fixture()
def env(tmp_path):
    srv = StevedoreServer(tmp_path / "server", extra_env={"STEVEDORE_LB_METRICS_INTERVAL": "2s"})
    cfg = srv.start()
    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    try:
        yield cfg, backend.server_address[1], srv
    finally:
        backend.shutdown()
        srv.stop()


def test_requests_through_an_alb_become_cloudwatch_metrics(env):
    cfg, backend_port, srv = env
    elbv2, cw = make_client(cfg, "elbv2"), make_client(cfg, "cloudwatch")
    lb = elbv2.create_load_balancer(Name=unique("m"), Type="application")["LoadBalancers"][0]
    tg = elbv2.create_target_group(
        Name=unique("m"), Protocol="HTTP", Port=backend_port, VpcId="vpc-1", TargetType="ip",
        HealthCheckPath="/health", HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
        HealthyThresholdCount=2,
    )["TargetGroups"][0]
    tg_arn = tg["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=tg_arn, Targets=[{"Id": "127.0.0.1", "Port": backend_port}])
    port = free_port()
    elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}],
    )
    states = lambda: [d["TargetHealth"]["State"] for d in  # noqa: E731
                      elbv2.describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]]
    wait_for(lambda: states() == ["healthy"], 30, "the target to pass its checks", srv.log_tail)

    started = datetime.datetime.now(datetime.timezone.utc)
    statuses = [get_status(f"http://127.0.0.1:{port}/ok/{i}") for i in range(OK)]
    statuses += [get_status(f"http://127.0.0.1:{port}/fail/{i}") for i in range(FAILED)]
    assert statuses == [200] * OK + [500] * FAILED

    lb_dim = {"Name": "LoadBalancer", "Value": lb["LoadBalancerArn"].split(":loadbalancer/")[1]}
    tg_dim = {"Name": "TargetGroup", "Value": "targetgroup/" + tg_arn.split(":targetgroup/")[1]}
    assert lb_dim["Value"].startswith("app/")
    window = dict(StartTime=started - datetime.timedelta(minutes=5),
                  EndTime=started + datetime.timedelta(minutes=5), Period=60)

    def points(metric: str, dims: list, **kw) -> list:
        return cw.get_metric_statistics(Namespace=NAMESPACE, MetricName=metric, Dimensions=dims,
                                        **window, **kw)["Datapoints"]

    def total(metric: str, dims: list) -> float:
        return sum(p["Sum"] for p in points(metric, dims, Statistics=["Sum"]))

    n = OK + FAILED
    wait_for(lambda: total("RequestCount", [lb_dim]) == n, 20, f"RequestCount {n}",
             lambda: str(points("RequestCount", [lb_dim], Statistics=["Sum"])))
    # Later periods add nothing: health checks kept reaching the target but are not requests.
    checks_before = Backend.health_checks
    wait_for(lambda: Backend.health_checks > checks_before, 15, "another health check")
    time.sleep(4.5)
    assert total("RequestCount", [lb_dim]) == n
    assert total("RequestCount", [tg_dim, lb_dim]) == n
    # One healthy target: the per-target count is the group's.
    assert total("RequestCountPerTarget", [tg_dim]) == n
    assert total("HTTPCode_Target_5XX_Count", [tg_dim, lb_dim]) == FAILED
    assert total("HTTPCode_Target_5XX_Count", [lb_dim]) == FAILED
    counted = points("RequestCount", [lb_dim], Statistics=["Sum"])
    assert {p["Unit"] for p in counted} == {"Count"}

    times = points("TargetResponseTime", [tg_dim, lb_dim], Statistics=["Average", "SampleCount", "Maximum"])
    assert sum(p["SampleCount"] for p in times) == n
    for p in times:
        assert p["Unit"] == "Seconds"
        assert DELAY_S <= p["Average"] < 2.0, p
    # GetMetricStatistics takes Statistics or ExtendedStatistics, never both.
    slowest = max(p["Maximum"] for p in times)
    for p in points("TargetResponseTime", [tg_dim, lb_dim], ExtendedStatistics=["p50", "p99"]):
        assert DELAY_S * 0.98 <= p["ExtendedStatistics"]["p50"] <= p["ExtendedStatistics"]["p99"] <= slowest, p
    assert sum(p["SampleCount"] for p in points("TargetResponseTime", [lb_dim], Statistics=["SampleCount"])) == n

    healthy = points("HealthyHostCount", [tg_dim, lb_dim], Statistics=["Maximum", "Minimum"])
    assert healthy and max(p["Maximum"] for p in healthy) == 1.0
    unhealthy = points("UnHealthyHostCount", [tg_dim, lb_dim], Statistics=["Maximum"])
    assert unhealthy and max(p["Maximum"] for p in unhealthy) == 0.0

    listed = cw.list_metrics(Namespace=NAMESPACE)["Metrics"]
    shapes = {(m["MetricName"], tuple(sorted(d["Name"] for d in m["Dimensions"]))) for m in listed}
    assert shapes >= {
        ("RequestCount", ("LoadBalancer",)),
        ("RequestCount", ("LoadBalancer", "TargetGroup")),
        ("RequestCountPerTarget", ("TargetGroup",)),
        ("TargetResponseTime", ("LoadBalancer",)),
        ("TargetResponseTime", ("LoadBalancer", "TargetGroup")),
        ("HTTPCode_Target_5XX_Count", ("LoadBalancer", "TargetGroup")),
        ("HealthyHostCount", ("LoadBalancer", "TargetGroup")),
    }, shapes
