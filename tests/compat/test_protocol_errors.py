"""Wire-protocol behaviour with raw HTTP: auth failures, malformed input, error shapes."""

import datetime
import json
import select
import socket
import time
import urllib.parse

import botocore.exceptions
import pytest
import requests
from botocore.credentials import Credentials
from conftest import (
    TARGET_PREFIX, error_code, error_message, make_client, raw_call, signed_headers, signing_clock, unique,
)


def assert_error(resp, code, status=400):
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert error_code(resp) == code, resp.text
    assert resp.headers.get("x-amzn-ErrorType", "").split(":")[0] == code
    assert resp.headers.get("x-amzn-RequestId")
    assert resp.headers.get("Content-Type", "").startswith("application/x-amz-json-1.1")


def test_health_answers_without_auth(server):
    resp = requests.get(server.endpoint + "/health", timeout=5)
    assert resp.status_code == 200


def test_signed_request_succeeds_and_carries_request_id(server):
    resp = raw_call(server, "ListClusters", {})
    assert resp.status_code == 200, resp.text
    assert "clusterArns" in resp.json()
    assert resp.headers.get("x-amzn-RequestId")
    assert resp.headers.get("Content-Type", "").startswith("application/x-amz-json-1.1")


def test_empty_body_is_accepted_as_empty_input(server):
    resp = raw_call(server, "ListClusters", b"")
    assert resp.status_code in (200, 400), resp.text
    if resp.status_code == 400:
        assert error_code(resp) == "SerializationException"


def test_unsigned_request_is_missing_authentication_token(server):
    resp = raw_call(server, "ListClusters", {}, sign=False)
    assert resp.status_code in (400, 403), resp.text
    assert error_code(resp) == "MissingAuthenticationTokenException"


def test_unknown_access_key_is_unrecognized_client(server):
    resp = raw_call(server, "ListClusters", {}, credentials=Credentials("AKIDUNKNOWN0000000000", "x" * 40))
    assert resp.status_code in (400, 403), resp.text
    assert error_code(resp) == "UnrecognizedClientException"


def test_wrong_secret_is_invalid_signature(server):
    resp = raw_call(server, "ListClusters", {}, credentials=Credentials(server.access_key, server.secret_key + "x"))
    assert resp.status_code in (400, 403), resp.text
    assert error_code(resp) == "InvalidSignatureException"


@pytest.mark.parametrize("service,call", [
    ("sts", lambda c: c.get_caller_identity()),
    ("iam", lambda c: c.list_users()),
    ("elbv2", lambda c: c.describe_load_balancers()),
])
def test_wrong_secret_on_a_query_service_is_signature_does_not_match(server, service, call):
    # Query services name a signature that does not match SignatureDoesNotMatch, with 403.
    client = make_client(server, service, secret_key=server.secret_key + "x")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(client)
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_tampered_body_is_invalid_signature(server):
    body = json.dumps({"clusterName": unique("sig")}).encode()
    hdrs = signed_headers(server, "CreateCluster", body)
    resp = requests.post(server.endpoint + "/", data=body.replace(b"sig-", b"SIG-"), headers=hdrs, timeout=10)
    assert resp.status_code in (400, 403), resp.text
    assert error_code(resp) == "InvalidSignatureException"


@pytest.mark.parametrize(
    "minutes,wording", [(-20, "Signature expired"), (20, "Signature not yet current")]
)
def test_clock_skew_over_fifteen_minutes_is_rejected_with_aws_wording(server, minutes, wording):
    # AWS: past -> "Signature expired: <t> is now earlier than <now - 15 min>";
    # future -> "Signature not yet current: <t> is still later than <now + 15 min>".
    with signing_clock(datetime.timedelta(minutes=minutes)):
        resp = raw_call(server, "ListClusters", {})
    assert resp.status_code in (400, 403), resp.text
    assert error_code(resp) == "InvalidSignatureException"
    assert wording in error_message(resp)


def test_small_clock_skew_is_tolerated(server):
    with signing_clock(datetime.timedelta(minutes=-5)):
        resp = raw_call(server, "ListClusters", {})
    assert resp.status_code == 200, resp.text


def test_signature_for_wrong_service_is_rejected(server):
    body = b"{}"
    hdrs = signed_headers(server, "ListClusters", body, service="s3")
    resp = requests.post(server.endpoint + "/", data=body, headers=hdrs, timeout=10)
    assert resp.status_code in (400, 403), resp.text
    assert error_code(resp) in ("InvalidSignatureException", "IncompleteSignatureException")


def test_unknown_operation_is_unknown_operation_exception(server):
    resp = raw_call(server, "DefinitelyNotAnOperation", {})
    assert_error(resp, "UnknownOperationException")


def test_malformed_json_is_serialization_exception(server):
    resp = raw_call(server, "CreateCluster", b'{"clusterName": ')
    assert_error(resp, "SerializationException")


def test_non_object_json_is_serialization_exception(server):
    resp = raw_call(server, "CreateCluster", b'["clusterName"]')
    assert_error(resp, "SerializationException")


def test_wrong_member_type_is_serialization_exception_naming_member(server):
    resp = raw_call(server, "CreateCluster", {"clusterName": 5})
    assert_error(resp, "SerializationException")
    assert "clusterName" in error_message(resp)


def test_wrong_nested_member_type_is_serialization_exception(server):
    resp = raw_call(server, "RegisterTaskDefinition", {
        "family": unique("ser"),
        "containerDefinitions": [{"name": "a", "image": "busybox", "memory": "lots"}],
    })
    assert_error(resp, "SerializationException")
    assert "memory" in error_message(resp)


def test_missing_required_member_is_invalid_parameter_naming_it(server):
    resp = raw_call(server, "RegisterTaskDefinition", {"containerDefinitions": [{"name": "a", "image": "b", "memory": 64}]})
    assert resp.status_code == 400, resp.text
    assert error_code(resp) in ("InvalidParameterException", "ClientException")
    assert "family" in error_message(resp)


def test_unknown_enum_value_is_invalid_parameter(server):
    resp = raw_call(server, "ListTaskDefinitions", {"status": "SOMETIMES"})
    assert_error(resp, "InvalidParameterException")


def test_unknown_members_are_ignored(server):
    resp = raw_call(server, "ListClusters", {"someFutureMember": True})
    assert resp.status_code == 200, resp.text


def test_wrong_target_prefix_is_rejected_as_client_error(server):
    body = b"{}"
    hdrs = signed_headers(server, "ListClusters", body, target_prefix="AmazonSomethingElse")
    resp = requests.post(server.endpoint + "/", data=body, headers=hdrs, timeout=10)
    assert 400 <= resp.status_code < 500, resp.text


def test_not_found_error_shape_is_parsed_by_botocore(ecs):
    with pytest.raises(ecs.exceptions.ClusterNotFoundException) as info:
        ecs.delete_cluster(cluster=unique("nope"))
    err = info.value.response["Error"]
    assert err["Code"] == "ClusterNotFoundException"
    assert err["Message"]
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def _send_oversize(endpoint: str, headers: dict, size: int, deadline_s: float = 20.0) -> bytes:
    """Stream `size` bytes; return whatever response the server sends (possibly early)."""
    url = urllib.parse.urlparse(endpoint)
    sock = socket.create_connection((url.hostname, url.port), timeout=5)
    start = time.monotonic()
    head = "POST / HTTP/1.1\r\n" + f"Host: {url.hostname}:{url.port}\r\n"
    for k, v in headers.items():
        if k.lower() not in ("content-length", "host"):
            head += f"{k}: {v}\r\n"
    head += f"Content-Length: {size}\r\nConnection: close\r\n\r\n"
    response = b""
    try:
        sock.sendall(head.encode())
        chunk = b" " * 65536
        sent = 0
        while sent < size and time.monotonic() - start < deadline_s:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            n = min(len(chunk), size - sent)
            sock.sendall(chunk[:n])
            sent += n
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        pass
    sock.settimeout(max(1.0, deadline_s - (time.monotonic() - start)))
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            response += data
            if b"\r\n\r\n" in response and len(response) > 4096:
                break
    except (ConnectionResetError, socket.timeout):
        pass
    finally:
        sock.close()
    assert time.monotonic() - start < deadline_s + 5, "server hung on an oversize body"
    return response


def test_ten_mib_body_is_rejected_not_hung(server):
    size = 10 * 1024 * 1024
    hdrs = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"{TARGET_PREFIX}.CreateCluster",
            "Authorization": "AWS4-HMAC-SHA256 Credential=x/20240101/us-east-1/ecs/aws4_request, SignedHeaders=host, Signature=0"}
    response = _send_oversize(server.endpoint, hdrs, size)
    assert response.startswith(b"HTTP/1.1 4"), response[:200]
    status = int(response.split(b" ", 2)[1])
    assert status == 413 or 400 <= status < 500
    # The server keeps serving afterwards.
    assert raw_call(server, "ListClusters", {}).status_code == 200


def test_get_on_root_is_not_a_server_error(server):
    resp = requests.get(server.endpoint + "/", timeout=5)
    assert resp.status_code < 500


def test_many_concurrent_connections_are_served(server):
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(lambda _: raw_call(server, "ListClusters", {}).status_code, range(64)))
    assert codes == [200] * 64


def _walk(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)
    yield value


def test_timestamps_are_epoch_numbers_and_absent_members_are_omitted(server):
    body = {
        "family": unique("wire"),
        "containerDefinitions": [{"name": "a", "image": "busybox", "memory": 64}],
    }
    resp = raw_call(server, "RegisterTaskDefinition", body)
    assert resp.status_code == 200, resp.text
    td = resp.json()["taskDefinition"]
    assert isinstance(td["registeredAt"], (int, float)) and not isinstance(td["registeredAt"], bool)
    assert td["registeredAt"] > 1_600_000_000
    assert all(v is not None for v in _walk(resp.json())), "null members should be omitted"
    cluster = raw_call(server, "CreateCluster", {"clusterName": unique("wire")}).json()
    assert all(v is not None for v in _walk(cluster)), "null members should be omitted"
