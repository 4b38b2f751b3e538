"""STS through boto3 and the aws CLI: who a request acts as (root, a user, an assumed
role), AssumeRole checked against the role's trust policy and the caller's identity
policies, temporary credentials accepted until they expire, and the errors a forged,
tampered or expired session token gets.

IAM and STS calls of a non-root caller are not authorized yet (another change adds
authorization); only sts:AssumeRole is checked, as part of AssumeRole itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import sqlite3
import tempfile
import subprocess
import time
from pathlib import Path

import botocore.exceptions
import pytest

from conftest import ACCOUNT_ID, make_client, unique

ASSUME_ANY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
}


def trust(principal: dict) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}],
        }
    )


@pytest.fixture(scope="module")
def iam(server):
    return make_client(server, "iam")


@pytest.fixture(scope="module")
def user(server, iam):
    """A user allowed to assume roles, with an access key: (name, arn, key id, secret)."""
    name = unique("stsuser")
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    iam.put_user_policy(UserName=name, PolicyName="assume", PolicyDocument=json.dumps(ASSUME_ANY))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return name, arn, key["AccessKeyId"], key["SecretAccessKey"]


def _client(server, service: str, key_id: str, secret: str, token: str | None = None):
    import boto3
    import botocore.config

    return boto3.session.Session().client(
        service,
        endpoint_url=server.endpoint,
        region_name=server.region,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def cli(aws, *args, key_id: str, secret: str, token: str | None = None):
    env = aws.env()
    env.pop("AWS_SHARED_CREDENTIALS_FILE", None)
    env.update(AWS_ACCESS_KEY_ID=key_id, AWS_SECRET_ACCESS_KEY=secret, AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    if token:
        env["AWS_SESSION_TOKEN"] = token
    proc = subprocess.run([aws.exe, *args, "--output", "json"], env=env, capture_output=True, text=True, timeout=60)
    return proc


def test_the_admin_key_is_the_account_root(server):
    ident = make_client(server, "sts").get_caller_identity()
    assert ident["Account"] == ACCOUNT_ID
    assert ident["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:root"
    assert ident["UserId"] == ACCOUNT_ID


def test_a_users_key_acts_as_the_user_with_the_aws_cli(aws, user):
    name, arn, key_id, secret = user
    proc = cli(aws, "sts", "get-caller-identity", key_id=key_id, secret=secret)
    assert proc.returncode == 0, proc.stderr
    ident = json.loads(proc.stdout)
    assert ident["Arn"] == arn == f"arn:aws:iam::{ACCOUNT_ID}:user/{name}"
    assert ident["UserId"].startswith("AIDA")


def test_assume_role_named_in_the_trust_policy_gives_working_session_credentials(server, iam, aws, user):
    _, arn, key_id, secret = user
    role = unique("assumable")
    role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust({"AWS": arn}))["Role"]["Arn"]
    out = _client(server, "sts", key_id, secret).assume_role(RoleArn=role_arn, RoleSessionName="s1", DurationSeconds=900)
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role}/s1"
    assert out["AssumedRoleUser"]["AssumedRoleId"].startswith("AROA")
    assert out["AssumedRoleUser"]["AssumedRoleId"].endswith(":s1")
    proc = cli(aws, "sts", "get-caller-identity", key_id=creds["AccessKeyId"], secret=creds["SecretAccessKey"], token=creds["SessionToken"])
    assert proc.returncode == 0, proc.stderr
    ident = json.loads(proc.stdout)
    assert ident["Arn"] == f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role}/s1"
    assert ident["UserId"] == out["AssumedRoleUser"]["AssumedRoleId"]
    # The session acts as the role in other services too: with no policy it may do nothing,
    # and once the role is allowed ecs:ListClusters, the live session may list.
    ecs = _client(server, "ecs", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    with pytest.raises(botocore.exceptions.ClientError) as info:
        ecs.list_clusters()
    assert info.value.response["Error"]["Code"] == "AccessDeniedException"
    iam.put_role_policy(RoleName=role, PolicyName="list", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecs:ListClusters", "Resource": "*"}]}))
    assert "clusterArns" in ecs.list_clusters()


def test_the_account_root_in_a_trust_policy_lets_the_root_assume_the_role(server, iam):
    role = unique("rootrole")
    role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust({"AWS": ACCOUNT_ID}))["Role"]["Arn"]
    out = make_client(server, "sts").assume_role(RoleArn=role_arn, RoleSessionName="admin")
    assert out["AssumedRoleUser"]["Arn"].endswith(f"assumed-role/{role}/admin")


def test_a_role_whose_trust_policy_does_not_name_the_caller_is_access_denied(server, iam, user):
    _, _, key_id, secret = user
    other = iam.create_user(UserName=unique("other"))["User"]["Arn"]
    role_arn = iam.create_role(RoleName=unique("notyours"), AssumeRolePolicyDocument=trust({"AWS": other}))["Role"]["Arn"]
    with pytest.raises(botocore.exceptions.ClientError) as info:
        _client(server, "sts", key_id, secret).assume_role(RoleArn=role_arn, RoleSessionName="ss")
    err = info.value.response["Error"]
    assert err["Code"] == "AccessDenied"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "is not authorized to perform: sts:AssumeRole on resource: " + role_arn in err["Message"]
    # Root is not named either: a service-only trust policy is not the account's.
    svc_arn = iam.create_role(RoleName=unique("svc"), AssumeRolePolicyDocument=trust({"Service": "ecs-tasks.amazonaws.com"}))["Role"]["Arn"]
    with pytest.raises(botocore.exceptions.ClientError) as info:
        make_client(server, "sts").assume_role(RoleArn=svc_arn, RoleSessionName="ss")
    assert info.value.response["Error"]["Code"] == "AccessDenied"


def test_a_user_without_an_identity_policy_cannot_assume_even_a_role_naming_it(server, iam):
    name = unique("noperm")
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    key = iam.create_access_key(UserName=name)["AccessKey"]
    role_arn = iam.create_role(RoleName=unique("named"), AssumeRolePolicyDocument=trust({"AWS": arn}))["Role"]["Arn"]
    with pytest.raises(botocore.exceptions.ClientError) as info:
        _client(server, "sts", key["AccessKeyId"], key["SecretAccessKey"]).assume_role(RoleArn=role_arn, RoleSessionName="ss")
    assert info.value.response["Error"]["Code"] == "AccessDenied"


def test_duration_and_session_name_limits(server, iam):
    role_arn = iam.create_role(RoleName=unique("limits"), AssumeRolePolicyDocument=trust({"AWS": ACCOUNT_ID}))["Role"]["Arn"]
    sts = make_client(server, "sts")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        sts.assume_role(RoleArn=role_arn, RoleSessionName="ss", DurationSeconds=7200)
    assert info.value.response["Error"]["Code"] == "ValidationError"
    assert "MaxSessionDuration" in info.value.response["Error"]["Message"]
    with pytest.raises(botocore.exceptions.ClientError) as info:
        sts.assume_role(RoleArn=role_arn, RoleSessionName="bad name")
    assert info.value.response["Error"]["Code"] == "ValidationError"


def test_session_tokens_that_are_tampered_or_forged_are_invalid_client_token_id(server, iam):
    role_arn = iam.create_role(RoleName=unique("tamper"), AssumeRolePolicyDocument=trust({"AWS": ACCOUNT_ID}))["Role"]["Arn"]
    creds = make_client(server, "sts").assume_role(RoleArn=role_arn, RoleSessionName="ss")["Credentials"]
    token = creds["SessionToken"]
    head, body, tag = token.split(".")
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    for bad in [f"{head}.{flipped}.{tag}", "forged-token", None]:
        sts = _client(server, "sts", creds["AccessKeyId"], creds["SecretAccessKey"], bad)
        with pytest.raises(botocore.exceptions.ClientError) as info:
            sts.get_caller_identity()
        assert info.value.response["Error"]["Code"] == "InvalidClientTokenId", bad
        assert info.value.response["Error"]["Message"] == "The security token included in the request is invalid."
    # JSON services say the same of a forged token.
    ecs = _client(server, "ecs", creds["AccessKeyId"], creds["SecretAccessKey"], "forged-token")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        ecs.list_clusters()
    assert info.value.response["Error"]["Code"] == "InvalidClientTokenId"


def test_a_deleted_role_ends_its_sessions_at_once(server, iam):
    role = unique("gone")
    role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust({"AWS": ACCOUNT_ID}))["Role"]["Arn"]
    creds = make_client(server, "sts").assume_role(RoleArn=role_arn, RoleSessionName="ss")["Credentials"]
    sts = _client(server, "sts", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    assert sts.get_caller_identity()["Arn"].endswith(f"assumed-role/{role}/ss")
    iam.delete_role(RoleName=role)
    with pytest.raises(botocore.exceptions.ClientError) as info:
        sts.get_caller_identity()
    assert info.value.response["Error"]["Code"] == "InvalidClientTokenId"


def test_get_session_token_for_a_user_acts_as_the_user(server, user):
    _, arn, key_id, secret = user
    creds = _client(server, "sts", key_id, secret).get_session_token(DurationSeconds=900)["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    sts = _client(server, "sts", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    assert sts.get_caller_identity()["Arn"] == arn


def server_key(server) -> bytes:
    """The token key, read from the server's store (as a replica would share it)."""
    # The server holds the database exclusively: read a copy (with its write-ahead log).
    copy = Path(tempfile.mkdtemp())
    for suffix in ("", "-wal"):
        src = server.data_dir / f"state.db{suffix}"
        if src.exists():
            shutil.copy(src, copy / f"state.db{suffix}")
    db = sqlite3.connect(str(copy / "state.db"))
    try:
        (value,) = db.execute("SELECT value FROM kv WHERE key = 'iam/server-key'").fetchone()
    finally:
        db.close()
    return bytes.fromhex(json.loads(value)["key"])


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_an_expired_session_token_is_expired_token(server, iam):
    """A token the server key signed whose expiry has passed: ExpiredToken (query) and
    ExpiredTokenException (JSON), with AWS's message."""
    role = unique("expired")
    role_id = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust({"AWS": ACCOUNT_ID}))["Role"]["RoleId"]
    key = server_key(server)
    key_id = "ASIA" + "EXPIREDTEST00000"
    claims = {"k": key_id, "s": {"Role": {"name": role, "id": role_id, "session": "old"}}, "x": int(time.time()) - 60, "t": []}
    body = b64url(json.dumps(claims).encode())
    tag = b64url(hmac.new(key, b"token\0" + body.encode(), hashlib.sha256).digest())
    token = f"STV1.{body}.{tag}"
    secret = base64.b64encode(hmac.new(key, b"secret\0" + key_id.encode(), hashlib.sha256).digest()).decode()[:40]
    sts = _client(server, "sts", key_id, secret, token)
    with pytest.raises(botocore.exceptions.ClientError) as info:
        sts.get_caller_identity()
    assert info.value.response["Error"]["Code"] == "ExpiredToken"
    assert info.value.response["Error"]["Message"] == "The security token included in the request is expired"
    ecs = _client(server, "ecs", key_id, secret, token)
    with pytest.raises(botocore.exceptions.ClientError) as info:
        ecs.list_clusters()
    assert info.value.response["Error"]["Code"] == "ExpiredTokenException"
    # The same claims, unexpired, are accepted: the token format is what the server checks.
    claims["x"] = int(time.time()) + 600
    body = b64url(json.dumps(claims).encode())
    tag = b64url(hmac.new(key, b"token\0" + body.encode(), hashlib.sha256).digest())
    ok = _client(server, "sts", key_id, secret, f"STV1.{body}.{tag}")
    assert ok.get_caller_identity()["Arn"].endswith(f"assumed-role/{role}/old")
