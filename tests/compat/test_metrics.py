"""GET /metrics: the Prometheus text exposition, scraped after real boto3 calls, and a
clean stop of the server and its background loops on SIGTERM."""

from __future__ import annotations

import re
import signal
import time

import requests

from conftest import StevedoreServer, make_client, tmpdir, unique


def scrape(endpoint: str) -> tuple[str, str]:
    resp = requests.get(endpoint + "/metrics", timeout=10)
    assert resp.status_code == 200
    return resp.headers["content-type"], resp.text


def value(text: str, series: str) -> float:
    """The sample of one exact series (name and labels), 0 when absent."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_boto3_calls_by_service_operation_and_error_code(server, ecs):
    name = unique("metrics")
    _, before = scrape(server.endpoint)
    ok = 'stevedore_api_requests_total{service="ecs",operation="CreateCluster",error_code=""}'
    failed = (
        'stevedore_api_requests_total{service="ecs",operation="DescribeTaskDefinition",'
        'error_code="ClientException"}'
    )
    ecs.create_cluster(clusterName=name)
    try:
        ecs.describe_task_definition(taskDefinition=unique("missing") + ":1")
    except ecs.exceptions.ClientException:
        pass
    content_type, text = scrape(server.endpoint)
    assert content_type.startswith("text/plain; version=0.0.4")
    assert value(text, ok) == value(before, ok) + 1
    assert value(text, failed) == value(before, failed) + 1
    assert re.search(
        r'^stevedore_api_request_duration_seconds_bucket\{service="ecs",'
        r'operation="CreateCluster",le="[^"]+"\} \d+',
        text,
        re.M,
    )
    # The writes reached the store's group commit, and every loop reports its rounds.
    assert value(text, "stevedore_store_commit_duration_seconds_count") > 0
    assert value(text, "stevedore_store_commit_batch_transactions_count") > 0
    # A server started for this test may not have finished its first controller round.
    deadline = time.monotonic() + 10
    while 'stevedore_loop_rounds_total{loop="ecs_service_controller"}' not in text:
        assert time.monotonic() < deadline, "the service controller reported no round in 10 s"
        time.sleep(0.2)
        _, text = scrape(server.endpoint)
    assert 'stevedore_ecs_tasks{status="RUNNING"}' in text
    assert "# TYPE stevedore_api_requests_total counter" in text


def test_query_protocol_actions_are_counted_by_name(server):
    """ELBv2 names its action in the form body: the dispatch resolves it, so the series
    carries the action, not "unknown"."""
    elbv2 = make_client(server, "elbv2")
    series = (
        'stevedore_api_requests_total{service="elbv2",'
        'operation="DescribeLoadBalancers",error_code=""}'
    )
    _, before = scrape(server.endpoint)
    elbv2.describe_load_balancers()
    _, text = scrape(server.endpoint)
    assert value(text, series) == value(before, series) + 1


def test_metrics_needs_no_signature(server):
    resp = requests.get(server.endpoint + "/metrics", timeout=10)
    assert resp.status_code == 200
    assert "stevedore_" in resp.text


def test_sigterm_stops_the_server_and_every_loop():
    srv = StevedoreServer(tmpdir() / "data")
    cfg = srv.start()
    try:
        make_client(cfg).list_clusters()
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(timeout=20) == 0
        log = srv.log_tail(20000)
        assert "Background loop stopped." in log and "ecs_service_controller" in log
        assert "Stevedore server stopped." in log
    finally:
        srv.kill()
