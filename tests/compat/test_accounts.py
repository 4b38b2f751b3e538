"""Accounts as scopes: one server, its first account (the admin key's) and accounts created
with `stevedore account create`. Each account has its own IAM and resources, invisible to
the others; only the first account's root creates accounts; a role shared by its trust
policy is assumed across accounts (and only by the account it names); agents signing with
an account's key join that account's clusters; accounts survive kill -9."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import signal
import subprocess

import boto3
import botocore.exceptions
import pytest

from conftest import ACCOUNT_ID, StevedoreServer, make_client, stevedore_binary, unique
from registry_fixtures import V2
from sim_fixtures import Sim

B_ID = "222233334444"
C_ID = "555566667777"


def create_account(cfg, account_id: str | None = None, *, as_cfg=None) -> subprocess.CompletedProcess:
    """`stevedore account create`, signed with `as_cfg`'s key (default: the admin key)."""
    signer = as_cfg or cfg
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=signer.access_key, AWS_SECRET_ACCESS_KEY=signer.secret_key,
               AWS_DEFAULT_REGION=cfg.region, STEVEDORE_LOG="warn")
    args = [str(stevedore_binary()), "account", "create", "--endpoint", cfg.endpoint]
    if account_id:
        args += ["--account-id", account_id]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)


def account_config(cfg, created: dict, tmp_path):
    """A ServerConfig that signs with a created account's root key (and a credentials
    file holding it, for child processes)."""
    creds = tmp_path / f"credentials-{created['accountId']}"
    creds.write_text(
        f"[default]\naws_access_key_id = {created['accessKeyId']}\n"
        f"aws_secret_access_key = {created['secretAccessKey']}\n"
    )
    return dataclasses.replace(cfg, access_key=created["accessKeyId"],
                               secret_key=created["secretAccessKey"], credentials_file=creds)


@pytest.fixture(scope="module")
def accounts(tmp_path_factory):
    """A server of its own (restarted below), its first account's config and B's and C's."""
    tmp = tmp_path_factory.mktemp("accounts")
    srv = StevedoreServer(tmp / "data", extra_env={"STEVEDORE_LOG": "info"})
    first = srv.start()
    made = {}
    for account_id in (B_ID, C_ID):
        out = create_account(first, account_id)
        assert out.returncode == 0, out.stderr
        made[account_id] = json.loads(out.stdout)
        assert made[account_id]["accountId"] == account_id
        assert made[account_id]["arn"] == f"arn:aws:iam::{account_id}:root"
    yield srv, first, account_config(first, made[B_ID], tmp), account_config(first, made[C_ID], tmp)
    srv.stop()


def test_each_account_is_its_own_caller_identity(accounts):
    _, first, b, _ = accounts
    assert make_client(first, "sts").get_caller_identity()["Account"] == ACCOUNT_ID
    me = make_client(b, "sts").get_caller_identity()
    assert me["Account"] == B_ID
    assert me["Arn"] == f"arn:aws:iam::{B_ID}:root"


def test_resources_of_one_account_are_invisible_to_another(accounts):
    _, first, b, _ = accounts
    ecs_a, ecs_b = make_client(first, "ecs"), make_client(b, "ecs")
    name = unique("c")
    arn = ecs_b.create_cluster(clusterName=name)["cluster"]["clusterArn"]
    assert arn == f"arn:aws:ecs:{b.region}:{B_ID}:cluster/{name}"
    assert arn in ecs_b.list_clusters()["clusterArns"]
    assert not any(a.endswith(f"/{name}") for a in ecs_a.list_clusters()["clusterArns"])
    assert ecs_a.describe_clusters(clusters=[name])["failures"][0]["reason"] == "MISSING"
    # The same name in the first account is another cluster.
    assert ecs_a.create_cluster(clusterName=name)["cluster"]["clusterArn"] == \
        f"arn:aws:ecs:{first.region}:{ACCOUNT_ID}:cluster/{name}"

    ecr_a, ecr_b = make_client(first, "ecr"), make_client(b, "ecr")
    repo = unique("r")
    made = ecr_b.create_repository(repositoryName=repo)["repository"]
    assert made["repositoryArn"] == f"arn:aws:ecr:{b.region}:{B_ID}:repository/{repo}"
    assert made["registryId"] == B_ID
    with pytest.raises(botocore.exceptions.ClientError) as err:
        ecr_a.describe_repositories(repositoryNames=[repo])
    assert err.value.response["Error"]["Code"] == "RepositoryNotFoundException"

    logs_a, logs_b = make_client(first, "logs"), make_client(b, "logs")
    group = unique("/g")
    logs_b.create_log_group(logGroupName=group)
    assert logs_a.describe_log_groups(logGroupNamePrefix=group)["logGroups"] == []

    # Another region of B is B's too, and still not the first account's.
    b_west = dataclasses.replace(b, region="eu-west-1")
    west = make_client(b_west, "ecs").create_cluster(clusterName=name)["cluster"]["clusterArn"]
    assert west == f"arn:aws:ecs:eu-west-1:{B_ID}:cluster/{name}"
    assert make_client(dataclasses.replace(first, region="eu-west-1"), "ecs").list_clusters()["clusterArns"] == []


def test_iam_is_per_account(accounts):
    _, first, b, _ = accounts
    iam_a, iam_b = make_client(first, "iam"), make_client(b, "iam")
    user = unique("u")
    assert iam_b.create_user(UserName=user)["User"]["Arn"] == f"arn:aws:iam::{B_ID}:user/{user}"
    assert user not in [u["UserName"] for u in iam_a.list_users()["Users"]]
    with pytest.raises(botocore.exceptions.ClientError) as err:
        iam_a.get_user(UserName=user)
    assert err.value.response["Error"]["Code"] == "NoSuchEntity"
    # B's user signs as B's user, with B's policies (none: denied).
    key = iam_b.create_access_key(UserName=user)["AccessKey"]
    as_user = dataclasses.replace(b, access_key=key["AccessKeyId"], secret_key=key["SecretAccessKey"])
    assert make_client(as_user, "sts").get_caller_identity()["Arn"] == f"arn:aws:iam::{B_ID}:user/{user}"
    with pytest.raises(botocore.exceptions.ClientError) as err:
        make_client(as_user, "ecs").list_clusters()
    assert err.value.response["Error"]["Code"] == "AccessDeniedException"


def list_accounts(cfg, *, as_cfg=None) -> subprocess.CompletedProcess:
    signer = as_cfg or cfg
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=signer.access_key, AWS_SECRET_ACCESS_KEY=signer.secret_key,
               AWS_DEFAULT_REGION=cfg.region, STEVEDORE_LOG="warn")
    return subprocess.run([str(stevedore_binary()), "account", "list", "--endpoint", cfg.endpoint],
                          env=env, capture_output=True, text=True, timeout=60)


def test_the_first_accounts_root_lists_the_accounts(accounts):
    _, first, b, _ = accounts
    listed = list_accounts(first)
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)["accounts"]
    assert found[0] == {"accountId": ACCOUNT_ID, "arn": f"arn:aws:iam::{ACCOUNT_ID}:root"}
    ids = [a["accountId"] for a in found]
    assert B_ID in ids and C_ID in ids
    assert all(isinstance(a["createdAt"], int) for a in found[1:])
    refused = list_accounts(first, as_cfg=b)
    assert refused.returncode != 0 and "HTTP 403" in refused.stderr


def test_only_the_first_accounts_root_creates_accounts(accounts):
    _, first, b, _ = accounts
    refused = create_account(first, as_cfg=b)
    assert refused.returncode != 0
    assert "HTTP 403" in refused.stderr and "only the root user of account" in refused.stderr
    # An IAM user of the first account, even an administrator, is not its root.
    iam = make_client(first, "iam")
    admin = unique("admin")
    iam.create_user(UserName=admin)
    iam.attach_user_policy(UserName=admin, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    key = iam.create_access_key(UserName=admin)["AccessKey"]
    as_admin = dataclasses.replace(first, access_key=key["AccessKeyId"], secret_key=key["SecretAccessKey"])
    refused = create_account(first, as_cfg=as_admin)
    assert refused.returncode != 0 and "HTTP 403" in refused.stderr
    duplicate = create_account(first, B_ID)
    assert duplicate.returncode != 0
    assert f"The account {B_ID} already exists." in duplicate.stderr
    bad = create_account(first, "12345")
    assert bad.returncode != 0
    assert "The account id must be 12 digits, got '12345'." in bad.stderr
    # Without an id, a random one.
    random = create_account(first)
    assert random.returncode == 0, random.stderr
    made = json.loads(random.stdout)["accountId"]
    assert len(made) == 12 and made.isdigit() and made not in (ACCOUNT_ID, B_ID, C_ID)


def trust(principal: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}]})


def test_a_role_is_assumed_across_accounts_only_where_its_trust_policy_names_the_caller(accounts):
    _, first, b, c = accounts
    iam_a = make_client(first, "iam")
    role = unique("shared")
    arn = iam_a.create_role(RoleName=role, AssumeRolePolicyDocument=trust(f"arn:aws:iam::{B_ID}:root"))["Role"]["Arn"]
    iam_a.put_role_policy(RoleName=role, PolicyName="list", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "ecs:ListClusters", "Resource": "*"}]}))
    cluster = unique("a-only")
    make_client(first, "ecs").create_cluster(clusterName=cluster)

    creds = make_client(b, "sts").assume_role(RoleArn=arn, RoleSessionName="from-b")["Credentials"]
    session = dict(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                   aws_session_token=creds["SessionToken"])
    sts = boto3.client("sts", endpoint_url=first.endpoint, region_name=first.region, **session)
    assert sts.get_caller_identity()["Arn"] == f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role}/from-b"
    # The session acts in the role's account, with the role's permissions.
    ecs = boto3.client("ecs", endpoint_url=first.endpoint, region_name=first.region, **session)
    assert any(a.endswith(f"/{cluster}") for a in ecs.list_clusters()["clusterArns"])
    with pytest.raises(botocore.exceptions.ClientError) as err:
        ecs.create_cluster(clusterName=unique("no"))
    assert err.value.response["Error"]["Code"] == "AccessDeniedException"

    # C is not named: refused, as is B for a role that trusts only its own account.
    with pytest.raises(botocore.exceptions.ClientError) as err:
        make_client(c, "sts").assume_role(RoleArn=arn, RoleSessionName="from-c")
    assert err.value.response["Error"]["Code"] == "AccessDenied"
    own = iam_a.create_role(RoleName=unique("own"), AssumeRolePolicyDocument=trust(ACCOUNT_ID))["Role"]["Arn"]
    with pytest.raises(botocore.exceptions.ClientError) as err:
        make_client(b, "sts").assume_role(RoleArn=own, RoleSessionName="from-b")
    assert err.value.response["Error"]["Code"] == "AccessDenied"
    # A role in an account this server does not hold is refused the same way.
    with pytest.raises(botocore.exceptions.ClientError) as err:
        make_client(b, "sts").assume_role(RoleArn="arn:aws:iam::999999999999:role/x", RoleSessionName="sess")
    assert err.value.response["Error"]["Code"] == "AccessDenied"


def test_agents_signing_with_an_accounts_key_join_its_clusters(accounts):
    _, first, b, _ = accounts
    ecs_a, ecs_b = make_client(first, "ecs"), make_client(b, "ecs")
    with Sim(b, ecs_b, instances=2) as sim:
        arns = sim.instance_arns()
        assert len(arns) == 2
        assert all(f":{B_ID}:container-instance/{sim.cluster}/" in a for a in arns)
        assert not any(a.endswith(f"/{sim.cluster}") for a in ecs_a.list_clusters()["clusterArns"])


def password_for(ecr, registry_id: str | None = None) -> str:
    kw = {"registryIds": [registry_id]} if registry_id else {}
    token = ecr.get_authorization_token(**kw)["authorizationData"][0]["authorizationToken"]
    return base64.b64decode(token).decode().split(":")[1]


def test_a_repository_shared_by_its_policy_is_pulled_by_the_named_account_and_nobody_else(accounts):
    _, first, b, c = accounts
    ecr_a, ecr_b, ecr_c = make_client(first, "ecr"), make_client(b, "ecr"), make_client(c, "ecr")
    repo = unique("shared")
    ecr_a.create_repository(repositoryName=repo)
    digest, manifest = V2(first.endpoint, password_for(ecr_a)).push_image(repo, "v1", [b"shared layer"])
    layer = json.loads(manifest)["layers"][0]["digest"]

    def get(ecr):
        return ecr.batch_get_image(registryId=ACCOUNT_ID, repositoryName=repo, imageIds=[{"imageTag": "v1"}])

    # Not shared yet: even B's root is refused, as AWS words it.
    with pytest.raises(botocore.exceptions.ClientError) as err:
        get(ecr_b)
    assert err.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "because no resource-based policy allows the ecr:BatchGetImage action" in err.value.response["Error"]["Message"]
    ecr_a.set_repository_policy(repositoryName=repo, policyText=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "PullFromB", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{B_ID}:root"},
                       "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                                  "ecr:BatchCheckLayerAvailability"]}]}))
    got = get(ecr_b)["images"]
    assert [i["imageId"]["imageDigest"] for i in got] == [digest]
    assert got[0]["registryId"] == ACCOUNT_ID
    # Only what the policy grants: B cannot list, push or delete.
    for call in (lambda: ecr_b.describe_images(registryId=ACCOUNT_ID, repositoryName=repo),
                 lambda: ecr_b.batch_delete_image(registryId=ACCOUNT_ID, repositoryName=repo,
                                                  imageIds=[{"imageTag": "v1"}]),
                 lambda: ecr_b.describe_repositories(registryId=ACCOUNT_ID)):
        with pytest.raises(botocore.exceptions.ClientError) as err:
            call()
        assert err.value.response["Error"]["Code"] == "AccessDeniedException"
    with pytest.raises(botocore.exceptions.ClientError) as err:
        get(ecr_c)
    assert err.value.response["Error"]["Code"] == "AccessDeniedException"

    # Pulls over /v2/ with a token for the first account's registry.
    v2_b = V2(first.endpoint, password_for(ecr_b, ACCOUNT_ID))
    r = v2_b.req("GET", f"/v2/{repo}/manifests/v1",
                 headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert r.status_code == 200, r.text
    assert r.content == manifest
    r = v2_b.req("GET", f"/v2/{repo}/blobs/{layer}")
    assert r.status_code == 200 and r.content == b"shared layer"
    assert v2_b.req("POST", f"/v2/{repo}/blobs/uploads/").status_code in (401, 403)
    # C's token for the same registry reaches nothing; B's own registry has no such image.
    v2_c = V2(first.endpoint, password_for(ecr_c, ACCOUNT_ID))
    assert v2_c.req("GET", f"/v2/{repo}/manifests/v1").status_code in (401, 403)
    assert V2(first.endpoint, password_for(ecr_b)).req("GET", f"/v2/{repo}/manifests/v1").status_code in (401, 403, 404)


def test_accounts_survive_a_kill_9(accounts):
    srv, first, b, _ = accounts
    name = unique("kept")
    make_client(b, "ecs").create_cluster(clusterName=name)
    srv.kill(signal.SIGKILL)
    srv.start()
    assert make_client(b, "sts").get_caller_identity()["Account"] == B_ID
    kept = make_client(b, "ecs").describe_clusters(clusters=[name])["clusters"]
    assert [c["clusterArn"] for c in kept] == [f"arn:aws:ecs:{b.region}:{B_ID}:cluster/{name}"]
    assert make_client(first, "ecs").describe_clusters(clusters=[name])["clusters"] == []
    # B's files are its own and private.
    b_dir = first.data_dir / "accounts" / B_ID
    assert b_dir.is_dir() and (b_dir / "logs.db").is_file()
    assert oct(b_dir.stat().st_mode & 0o777) == "0o700"
