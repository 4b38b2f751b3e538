"""`stevedore lb`: the data plane as its own process, reading its configuration from a
server's public ELBv2 API. The server runs with `--no-lb` (env STEVEDORE_NO_LB) so that
only the standalone process binds the listener ports. A local Python HTTP server is the
target; the test checks forwarding with X-Forwarded-* headers, a rule added later (live
reconfiguration by polling), the role's health verdicts reaching DescribeTargetHealth
(through the server's signed /stevedore/elb/target-health route), deregistration and a
clean stop on SIGTERM."""
from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import botocore.auth
import pytest
import requests
from botocore.awsrequest import AWSRequest

from conftest import REGION, StevedoreServer, free_port, make_client, stevedore_binary, unique


class Backend(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 (the stdlib's naming)
        body = (
            f"backend path={self.path} xff={self.headers.get('X-Forwarded-For')} "
            f"proto={self.headers.get('X-Forwarded-Proto')} port={self.headers.get('X-Forwarded-Port')}"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def wait_until(check, timeout: float, what: str, log=lambda: ""):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            last = exc
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what} (last: {last!r})\n{log()}")


def port_is_closed(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture()
def env(tmp_path):
    srv = StevedoreServer(tmp_path / "server", extra_env={"STEVEDORE_NO_LB": "1"})
    cfg = srv.start()
    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    try:
        yield cfg, backend.server_address[1], tmp_path
    finally:
        backend.shutdown()
        srv.stop()


def start_role(cfg, log_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STEVEDORE_"))}
    env.update(
        AWS_ACCESS_KEY_ID=cfg.access_key,
        AWS_SECRET_ACCESS_KEY=cfg.secret_key,
        AWS_REGION=REGION,
        STEVEDORE_LOG="info",
    )
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [str(stevedore_binary()), "lb", "--endpoint", cfg.endpoint, "--poll-interval", "200ms"],
        stdout=log,
        stderr=log,
        env=env,
    )
    return proc, log


def test_standalone_data_plane_serves_what_the_api_describes(env):
    cfg, backend_port, tmp = env
    elbv2 = make_client(cfg, "elbv2")
    lb = elbv2.create_load_balancer(Name=unique("role"), Type="application")["LoadBalancers"][0]
    tg = elbv2.create_target_group(
        Name=unique("role"), Protocol="HTTP", Port=backend_port, VpcId="vpc-1", TargetType="instance",
        HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2,
    )["TargetGroups"][0]
    tg_arn = tg["TargetGroupArn"]
    elbv2.modify_target_group_attributes(
        TargetGroupArn=tg_arn, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "0"}]
    )
    # An instance target registered by hand: the role reaches it on 127.0.0.1, as the
    # server's plane does. And one on a container instance whose agent registered its
    # address: the role finds it through the ECS API (the address is loopback here, as
    # tests bind nothing else).
    elbv2.register_targets(TargetGroupArn=tg_arn, Targets=[{"Id": "i-0123456789abcdef0", "Port": backend_port}])
    ecs = make_client(cfg)
    cluster = ecs.create_cluster(clusterName=unique("role"))["cluster"]["clusterArn"]
    ci = ecs.register_container_instance(
        cluster=cluster, attributes=[{"name": "stevedore.host-address", "value": "127.0.0.1"}],
        totalResources=[{"name": "CPU", "type": "INTEGER", "integerValue": 1024},
                        {"name": "MEMORY", "type": "INTEGER", "integerValue": 1024}],
    )["containerInstance"]
    agent_target = {"Id": ci["ec2InstanceId"], "Port": backend_port}
    elbv2.register_targets(TargetGroupArn=tg_arn, Targets=[agent_target])
    port = free_port()
    listener = elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}],
    )["Listeners"][0]
    time.sleep(0.5)
    assert port_is_closed(port), "the server must not bind listeners with --no-lb"

    log_path = tmp / "lb.log"
    proc, log = start_role(cfg, log_path)
    role_log = lambda: log_path.read_text(errors="replace")[-4000:]  # noqa: E731
    try:
        status, body = wait_until(lambda: (r := get(f"http://127.0.0.1:{port}/hello?x=1")) and r[0] == 200 and r,
                                  20, "the listener to forward", role_log)
        assert body == f"backend path=/hello?x=1 xff=127.0.0.1 proto=http port={port}"

        # A rule added later is served after the next poll.
        elbv2.create_rule(
            ListenerArn=listener["ListenerArn"], Priority=10,
            Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/teapot*"]}}],
            Actions=[{"Type": "fixed-response", "FixedResponseConfig": {
                "StatusCode": "418", "ContentType": "text/plain", "MessageBody": "short and stout"}}],
        )
        wait_until(lambda: get(f"http://127.0.0.1:{port}/teapot") == (418, "short and stout"), 10, "the new rule", role_log)
        assert get(f"http://127.0.0.1:{port}/other")[0] == 200

        # The role's health checks reach the server: DescribeTargetHealth tells the truth
        # although the server itself checks nothing (--no-lb).
        def target_states():
            descs = elbv2.describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]
            return sorted((d["Target"]["Id"], d["TargetHealth"]["State"]) for d in descs)

        wait_until(lambda: target_states() == sorted([("i-0123456789abcdef0", "healthy"), (ci["ec2InstanceId"], "healthy")]),
                   25, "the role's verdicts in DescribeTargetHealth", role_log)
        assert "Target health changed." in role_log()
        assert "configuration failed" not in role_log(), "reading ECS container instances works"
        elbv2.deregister_targets(TargetGroupArn=tg_arn, Targets=[agent_target])

        # Deregistered with no delay: gone from the group, so the default action has no target.
        elbv2.deregister_targets(TargetGroupArn=tg_arn, Targets=[{"Id": "i-0123456789abcdef0", "Port": backend_port}])
        wait_until(lambda: get(f"http://127.0.0.1:{port}/")[0] == 503, 10, "the target to leave", role_log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()
    assert code == 0, role_log()
    wait_until(lambda: port_is_closed(port), 5, "the listener to close")


def test_role_reports_bad_credentials_and_keeps_running(env):
    cfg, _, tmp = env
    log_path = tmp / "lb-badkey.log"
    bad = type(cfg)(cfg.endpoint, cfg.region, cfg.access_key, "wrong-secret", cfg.credentials_file, cfg.data_dir)
    proc, log = start_role(bad, log_path)
    try:
        wait_until(lambda: "Reading the load balancer configuration failed" in log_path.read_text(errors="replace"),
                   10, "the failure to be logged", lambda: log_path.read_text(errors="replace"))
        assert proc.poll() is None, "a failing server read must not stop the data plane"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        log.close()


def post_reports(cfg, body: bytes, sign: bool = True) -> requests.Response:
    url = cfg.endpoint + "/stevedore/elb/target-health"
    headers = {"Content-Type": "application/json"}
    if sign:
        req = AWSRequest(method="POST", url=url, data=body, headers=headers)
        botocore.auth.SigV4Auth(cfg.credentials(), "elasticloadbalancing", cfg.region).add_auth(req)
        headers = dict(req.headers.items())
    return requests.post(url, data=body, headers=headers, timeout=10)


def test_health_report_route_checks_signature_shape_and_registration(env):
    cfg, backend_port, _ = env
    elbv2 = make_client(cfg, "elbv2")
    tg_arn = elbv2.create_target_group(Name=unique("rep"), Protocol="HTTP", Port=backend_port, VpcId="vpc-1",
                                       TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=tg_arn, Targets=[{"Id": "10.0.0.7", "Port": 8080}])
    # In use by a listener (nothing binds it: the server runs with --no-lb), so
    # DescribeTargetHealth reports health rather than `unused`.
    lb_arn = elbv2.create_load_balancer(Name=unique("rep"), Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
    elbv2.create_listener(LoadBalancerArn=lb_arn, Protocol="HTTP", Port=free_port(),
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}])
    report = lambda **kw: json.dumps({"reports": [{  # noqa: E731
        "targetGroupArn": tg_arn, "id": "10.0.0.7", "port": 8080, **kw}]}).encode()

    assert post_reports(cfg, report(state="healthy"), sign=False).status_code in (400, 403)
    bad = post_reports(cfg, report(state="sick"))
    assert bad.status_code == 400 and bad.json()["__type"].endswith("InvalidParameterException"), bad.text
    assert "initial, healthy or unhealthy" in bad.json()["message"]
    bad = post_reports(cfg, report(state="unhealthy", reason="Made.Up"))
    assert bad.status_code == 400 and "TargetHealthReasonEnum" in bad.json()["message"], bad.text
    assert post_reports(cfg, b"{not json").status_code == 400

    ok = post_reports(cfg, report(state="unhealthy", reason="Target.Timeout", description="Request timed out"))
    assert ok.status_code == 200 and ok.json() == {"accepted": 1}, ok.text
    health = elbv2.describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"][0]["TargetHealth"]
    assert health == {"State": "unhealthy", "Reason": "Target.Timeout", "Description": "Request timed out"}
    # A target that is not registered is not recorded.
    stray = json.dumps({"reports": [{"targetGroupArn": tg_arn, "id": "10.0.0.8", "port": 8080,
                                     "state": "healthy"}]}).encode()
    assert post_reports(cfg, stray).json() == {"accepted": 0}
