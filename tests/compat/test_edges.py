"""The edges before authentication, over raw sockets against a real `stevedore server`
with short timeouts (set by its flags' environment variables so the tests are fast):
a client dribbling its headers is cut after the header-read timeout, an idle keep-alive
connection is closed, an unknown key with a huge declared body is refused without the
body being sent, an unsigned X-Amz-Target is refused, path tricks are refused before
routing, requests past the in-flight cap get 503 ThrottlingException and connections
past the connection cap wait in the backlog."""
from __future__ import annotations

import json
import socket
import time

import botocore.auth
import pytest
import requests
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import TARGET_PREFIX, StevedoreServer, error_code, signed_headers

HEADER_READ_S = 1.0
IDLE_S = 1.5


def start(tmp_path_factory, name: str, **env: str):
    srv = StevedoreServer(tmp_path_factory.mktemp(name) / "data", extra_env=env)
    try:
        return srv, srv.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def edgy(tmp_path_factory):
    """A server with a 1 s header-read timeout and a 1.5 s idle timeout."""
    srv, cfg = start(tmp_path_factory, "edges",
                     STEVEDORE_HEADER_READ_TIMEOUT=str(HEADER_READ_S),
                     STEVEDORE_IDLE_TIMEOUT=str(IDLE_S))
    yield cfg
    srv.stop()


def connect(cfg) -> socket.socket:
    host, port = cfg.endpoint.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=10)
    return s


def read_head(s: socket.socket) -> bytes:
    """One response head, read a byte at a time so nothing after it is consumed."""
    data = b""
    while not data.endswith(b"\r\n\r\n"):
        chunk = s.recv(1)
        assert chunk, f"connection closed mid-head: {data!r}"
        data += chunk
    return data


def read_response(s: socket.socket) -> bytes:
    """One whole response (headers plus Content-Length body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, f"connection closed mid-response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = s.recv(65536)
        assert chunk, "connection closed mid-body"
        body += chunk
    return head + b"\r\n\r\n" + body


def closed_within(s: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed `s` (EOF or reset), or None if it stayed open."""
    started = time.monotonic()
    s.settimeout(seconds)
    try:
        while True:
            if not s.recv(65536):
                return time.monotonic() - started
    except (ConnectionResetError, BrokenPipeError):
        return time.monotonic() - started
    except socket.timeout:
        return None


def raw_request(method: str, path: str, headers: dict, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def test_a_client_dribbling_its_headers_is_cut_after_the_header_read_timeout(edgy):
    s = connect(edgy)
    s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    cut = None
    # One header byte every 0.2 s: never a whole head, always some traffic.
    for i in range(40):
        try:
            s.sendall(b"X-Slow-%d: a\r\n" % i)
        except (BrokenPipeError, ConnectionResetError):
            cut = time.monotonic() - started
            break
        gone = closed_within(s, 0.2)
        if gone is not None:
            cut = time.monotonic() - started
            break
    s.close()
    assert cut is not None, "the slow client was never disconnected"
    assert HEADER_READ_S * 0.8 <= cut <= HEADER_READ_S + 2.0, cut


def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(edgy):
    s = connect(edgy)
    request = raw_request("GET", "/health", {"Host": "x"})
    s.sendall(request)
    assert read_response(s).startswith(b"HTTP/1.1 200")
    # Within the idle timeout the connection serves another request.
    time.sleep(IDLE_S / 3)
    s.sendall(request)
    assert read_response(s).startswith(b"HTTP/1.1 200")
    gone = closed_within(s, IDLE_S + 3.0)
    s.close()
    assert gone is not None, "the idle connection stayed open"
    assert IDLE_S * 0.8 <= gone <= IDLE_S + 2.0, gone


def assert_unknown_key_refused_before_body(cfg) -> None:
    """A request signed (for `cfg.region`) with an unknown key, declaring a terabyte of
    body that never follows, is answered UnrecognizedClientException at once."""
    unknown = Credentials("AKIAUNKNOWNKEY000000", "secret")
    headers = signed_headers(cfg, "ListClusters", b"{}", credentials=unknown)
    headers["Host"] = cfg.endpoint.removeprefix("http://")
    headers["Content-Length"] = str(10**12)
    s = connect(cfg)
    started = time.monotonic()
    s.sendall(raw_request("POST", "/", headers))  # the terabyte never follows
    response = read_response(s)
    elapsed = time.monotonic() - started
    s.close()
    assert elapsed < 2.0, elapsed
    assert response.startswith(b"HTTP/1.1 400"), response
    body = json.loads(response.partition(b"\r\n\r\n")[2])
    assert body["__type"].endswith("UnrecognizedClientException"), body


def test_an_unknown_key_with_a_huge_body_is_refused_without_reading_it(edgy):
    assert_unknown_key_refused_before_body(edgy)


def test_an_unsigned_target_is_refused(edgy):
    body = b"{}"
    # Signed with the content type only; the target is added afterwards.
    req = AWSRequest(method="POST", url=edgy.endpoint + "/", data=body,
                     headers={"Content-Type": "application/x-amz-json-1.1"})
    botocore.auth.SigV4Auth(edgy.credentials(), "ecs", edgy.region).add_auth(req)
    headers = dict(req.headers.items())
    headers["X-Amz-Target"] = f"{TARGET_PREFIX}.ListClusters"
    r = requests.post(edgy.endpoint + "/", data=body, headers=headers, timeout=10)
    assert r.status_code == 400
    assert error_code(r) == "InvalidSignatureException"
    assert "'X-Amz-Target' must be a 'SignedHeader'" in r.json()["message"]
    # Signed properly, the same call works.
    ok = requests.post(edgy.endpoint + "/", data=body,
                       headers=signed_headers(edgy, "ListClusters", body), timeout=10)
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("path", ["/a/../", "//", "/./", "/%2e%2e/", "/%2F"])
def test_a_signed_request_on_a_path_trick_is_refused_before_routing(edgy, path):
    # botocore signs the normalised path ("/"); the request line carries the trick.
    headers = signed_headers(edgy, "ListClusters", b"{}")
    headers["Host"] = edgy.endpoint.removeprefix("http://")
    headers["Content-Length"] = "2"
    headers["Connection"] = "close"
    s = connect(edgy)
    s.sendall(raw_request("POST", path, headers, b"{}"))
    response = read_response(s)
    s.close()
    assert response.startswith(b"HTTP/1.1 400"), response
    body = json.loads(response.partition(b"\r\n\r\n")[2])
    assert body["__type"].endswith("InvalidURI"), body


@pytest.mark.parametrize("path", ["/v2/../ws", "/v2/a/%2e%2e/b/tags/list", "/v2//a/tags/list"])
def test_registry_path_tricks_are_refused_in_the_registry_shape(edgy, path):
    s = connect(edgy)
    s.sendall(raw_request("GET", path, {"Host": "x", "Connection": "close"}))
    response = read_response(s)
    s.close()
    assert response.startswith(b"HTTP/1.1 400"), response
    body = json.loads(response.partition(b"\r\n\r\n")[2])
    assert body["errors"][0]["code"] == "NAME_INVALID", body


def test_requests_past_the_in_flight_cap_get_throttling_503(tmp_path_factory):
    # Its own server, with a long idle timeout: on a busy machine the held requests must
    # not be cut (by the idle timeout) before the cap is probed.
    srv, cfg = start(tmp_path_factory, "edges-in-flight", STEVEDORE_MAX_IN_FLIGHT="2",
                     STEVEDORE_IDLE_TIMEOUT="30")
    try:
        held_requests_get_throttled(cfg)
    finally:
        srv.stop()


def held_requests_get_throttled(edgy) -> None:
    # Two requests held in flight: signed, declared 100 bytes long, the body never sent.
    # Each asks for "100 Continue", which the server sends only once a handler (holding
    # its place in the cap) reads the body: so both are counted before the cap is probed,
    # and the probe cannot overtake the second one.
    held = []
    for _ in range(2):
        headers = signed_headers(edgy, "ListClusters", b"{}")
        headers["Host"] = edgy.endpoint.removeprefix("http://")
        headers["Content-Length"] = "100"
        headers["Expect"] = "100-continue"
        s = connect(edgy)
        s.sendall(raw_request("POST", "/", headers))
        assert read_head(s).startswith(b"HTTP/1.1 100 Continue")
        s.sendall(b"{")
        held.append(s)
    try:
        r = list_clusters_until(edgy, 503)
        assert r.status_code == 503, r.text
        assert error_code(r) == "ThrottlingException"
    finally:
        for s in held:
            s.close()
    # Once they are gone, requests are served again.
    r = list_clusters_until(edgy, 200)
    assert r.status_code == 200, r.text


def list_clusters_until(cfg, status: int, within: float = 5.0) -> requests.Response:
    """Signed ListClusters calls until one answers `status` (or time runs out): the last."""
    deadline = time.monotonic() + within
    while True:
        r = requests.post(cfg.endpoint + "/", data=b"{}",
                          headers=signed_headers(cfg, "ListClusters", b"{}"), timeout=10)
        if r.status_code == status or time.monotonic() > deadline:
            return r
        time.sleep(0.05)


def test_connections_past_the_cap_wait_in_the_backlog(tmp_path_factory):
    srv, cfg = start(tmp_path_factory, "edges-conns", STEVEDORE_MAX_CONNECTIONS="2",
                     STEVEDORE_IDLE_TIMEOUT="30")
    try:
        first, second = connect(cfg), connect(cfg)
        for s in (first, second):
            s.sendall(raw_request("GET", "/health", {"Host": "x"}))
            assert read_response(s).startswith(b"HTTP/1.1 200")
        third = connect(cfg)  # the kernel accepts it; the server does not serve it yet
        third.sendall(raw_request("GET", "/health", {"Host": "x"}))
        third.settimeout(1.0)
        with pytest.raises(socket.timeout):
            third.recv(1)
        first.close()
        third.settimeout(5.0)
        assert read_response(third).startswith(b"HTTP/1.1 200")
        second.close()
        third.close()
    finally:
        srv.stop()
