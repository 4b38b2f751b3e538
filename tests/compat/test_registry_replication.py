"""ECR private image replication on one server: a rule replicates pushes of repositories
matching its prefix to another region of the same account and to another account, whose
registry policy must allow it (ecr:ReplicateImage, ecr:CreateRepository), as AWS requires.
Statuses go IN_PROGRESS → COMPLETE or FAILED with a reason; replicated images are pulled
over /v2/ in their destination with that destination's token; AWS's validation errors."""
from __future__ import annotations

import base64
import dataclasses
import json
import time

import botocore.exceptions
import pytest

from conftest import ACCOUNT_ID, StevedoreServer, make_client, unique
from registry_fixtures import V2
from test_accounts import account_config, create_account

B_ID = "333344445555"
WEST = "eu-west-1"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("replication")
    srv = StevedoreServer(tmp / "data", extra_env={"STEVEDORE_LOG": "info"})
    first = srv.start()
    out = create_account(first, B_ID)
    assert out.returncode == 0, out.stderr
    b = account_config(first, json.loads(out.stdout), tmp)
    yield first, b
    srv.stop()


def password(ecr) -> str:
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    return base64.b64decode(token).decode().split(":")[1]


def statuses(ecr, repo: str, tag: str) -> dict:
    got = ecr.describe_image_replication_status(repositoryName=repo, imageId={"imageTag": tag})
    return {(s["region"], s["registryId"]): s for s in got["replicationStatuses"]}


def settle(ecr, repo: str, tag: str, want: int, within: float = 30) -> dict:
    """The statuses once `want` destinations have left IN_PROGRESS."""
    deadline = time.monotonic() + within
    while True:
        found = statuses(ecr, repo, tag)
        done = [s for s in found.values() if s["status"] != "IN_PROGRESS"]
        if len(done) >= want or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_bad_configurations_get_awss_errors(setup):
    first, _ = setup
    ecr = make_client(first, "ecr")
    with pytest.raises(botocore.exceptions.ClientError) as err:
        ecr.put_replication_configuration(replicationConfiguration={"rules": [
            {"destinations": [{"region": first.region, "registryId": ACCOUNT_ID}]}]})
    assert err.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as err:
        ecr.put_replication_configuration(replicationConfiguration={"rules": [
            {"destinations": [{"region": WEST, "registryId": ACCOUNT_ID}],
             "deleteReplication": {"enabled": True}}]})
    assert err.value.response["Error"]["Code"] == "InvalidParameterException"
    with pytest.raises(botocore.exceptions.ClientError) as err:
        ecr.put_replication_configuration(replicationConfiguration={"rules": [
            {"destinations": [{"region": WEST, "registryId": ACCOUNT_ID}]}] * 11})
    assert err.value.response["Error"]["Code"] == "ValidationException"


def test_pushes_replicate_to_another_region_and_to_an_account_that_allows_it(setup):
    first, b = setup
    ecr = make_client(first, "ecr")
    config = {"rules": [{
        "destinations": [{"region": WEST, "registryId": ACCOUNT_ID},
                         {"region": first.region, "registryId": B_ID}],
        "repositoryFilters": [{"filter": "prod", "filterType": "PREFIX_MATCH"}]}]}
    assert ecr.put_replication_configuration(replicationConfiguration=config)[
        "replicationConfiguration"] == config
    assert ecr.describe_registry()["replicationConfiguration"] == config

    repo = f"prod/{unique('app')}"
    ecr.create_repository(repositoryName=repo)
    v2 = V2(first.endpoint, password(ecr))
    digest, manifest = v2.push_image(repo, "v1", [b"layer one", b"layer two"])
    found = settle(ecr, repo, "v1", 2)
    assert found[(WEST, ACCOUNT_ID)]["status"] == "COMPLETE", found
    # B's registry policy does not allow it yet: FAILED, saying why.
    failed = found[(first.region, B_ID)]
    assert failed["status"] == "FAILED" and "ecr:ReplicateImage" in failed["failureCode"], found

    # The image is in eu-west-1, under its tag, pulled with eu-west-1's token.
    west = dataclasses.replace(first, region=WEST)
    ecr_west = make_client(west, "ecr")
    assert [i["imageDigest"] for i in ecr_west.list_images(repositoryName=repo)["imageIds"]] == [digest]
    v2_west = V2(first.endpoint, password(ecr_west))
    r = v2_west.req("GET", f"/v2/{repo}/manifests/v1",
                    headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert r.status_code == 200 and r.content == manifest
    layer = json.loads(manifest)["layers"][1]["digest"]
    assert v2_west.req("GET", f"/v2/{repo}/blobs/{layer}").content == b"layer two"

    # B allows the first account to replicate (and create the repository): the next push
    # reaches B too.
    make_client(b, "ecr").put_registry_policy(policyText=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "ReplicationFromA", "Effect": "Allow",
                       "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"},
                       "Action": ["ecr:ReplicateImage", "ecr:CreateRepository"],
                       "Resource": f"arn:aws:ecr:{b.region}:{B_ID}:repository/*"}]}))
    digest2, manifest2 = v2.push_image(repo, "v2", [b"layer three"])
    found = settle(ecr, repo, "v2", 2)
    assert {k: s["status"] for k, s in found.items()} == {
        (WEST, ACCOUNT_ID): "COMPLETE", (first.region, B_ID): "COMPLETE"}, found
    ecr_b = make_client(b, "ecr")
    assert ecr_b.describe_repositories(repositoryNames=[repo])["repositories"][0]["registryId"] == B_ID
    r = V2(first.endpoint, password(ecr_b)).req(
        "GET", f"/v2/{repo}/manifests/v2", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert r.status_code == 200 and r.content == manifest2


def test_repositories_outside_the_filters_are_not_replicated(setup):
    first, _ = setup
    ecr = make_client(first, "ecr")
    repo = unique("dev")
    ecr.create_repository(repositoryName=repo)
    V2(first.endpoint, password(ecr)).push_image(repo, "v1", [b"not for export"])
    time.sleep(1)
    assert statuses(ecr, repo, "v1") == {}
    with pytest.raises(botocore.exceptions.ClientError) as err:
        ecr.describe_image_replication_status(repositoryName=repo, imageId={"imageTag": "nope"})
    assert err.value.response["Error"]["Code"] == "ImageNotFoundException"


def test_images_pushed_before_the_rule_replicate_only_through_a_backfill(setup):
    first, _ = setup
    ecr = make_client(first, "ecr")
    repo = f"legacy/{unique('app')}"
    ecr.create_repository(repositoryName=repo)
    v2 = V2(first.endpoint, password(ecr))
    # "v1" moves to a second image: the first stays, untagged.
    untagged, _ = v2.push_image(repo, "v1", [b"an image that loses its tag"])
    tagged, _ = v2.push_image(repo, "v1", [b"pushed before any rule"])
    assert {(i["imageDigest"], i.get("imageTag")) for i in ecr.list_images(repositoryName=repo)["imageIds"]} == {
        (tagged, "v1"), (untagged, None)}

    ecr.put_replication_configuration(replicationConfiguration={"rules": [{
        "destinations": [{"region": WEST, "registryId": ACCOUNT_ID}],
        "repositoryFilters": [{"filter": "legacy", "filterType": "PREFIX_MATCH"}]}]})
    # As on AWS, the rule alone does not send what was there before it.
    time.sleep(1)
    assert statuses(ecr, repo, "v1") == {}

    with pytest.raises(botocore.exceptions.ClientError) as err:
        ecr.start_replication_backfill(destination={"region": "ap-south-1", "registryId": ACCOUNT_ID})
    assert err.value.response["Error"]["Code"] == "ValidationException"
    started = ecr.start_replication_backfill(destination={"region": WEST, "registryId": ACCOUNT_ID})
    assert started["status"] == "PREPARING" and started["registryId"] == ACCOUNT_ID
    bid = started["replicationBackfillId"]

    deadline = time.monotonic() + 60
    while True:
        found = [b for b in ecr.list_replication_backfills()["backfills"] if b["replicationBackfillId"] == bid]
        assert len(found) == 1
        if found[0]["status"] not in ("PREPARING", "IN_PROGRESS") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    summary = found[0]
    assert summary["status"] == "COMPLETE", summary
    assert summary["progress"] == {"totalReplicationCount": 2, "completedReplicationCount": 2,
                                   "failedReplicationCount": 0, "failureCodes": []}
    assert "endedAt" in summary

    results = ecr.describe_replication_backfill_results(replicationBackfillId=bid)
    assert results["destination"] == {"region": WEST, "registryId": ACCOUNT_ID}
    assert sorted((r["imageId"]["imageDigest"], r["imageId"].get("imageTag"), r["status"])
                  for r in results["results"]) == sorted(
        [(tagged, "v1", "COMPLETE"), (untagged, None, "COMPLETE")])
    assert ecr.describe_replication_backfill_results(
        replicationBackfillId=bid, resultStatusFilter="FAILED")["results"] == []
    page = ecr.describe_replication_backfill_results(replicationBackfillId=bid, maxResults=1)
    assert len(page["results"]) == 1 and "nextToken" in page

    assert statuses(ecr, repo, "v1")[(WEST, ACCOUNT_ID)]["status"] == "COMPLETE"
    west = dataclasses.replace(first, region=WEST)
    assert sorted(i["imageDigest"] for i in make_client(west, "ecr").list_images(
        repositoryName=repo)["imageIds"]) == sorted([tagged, untagged])

    for call, kwargs, code in [
        (ecr.stop_replication_backfill, {"replicationBackfillId": bid},
         "ReplicationBackfillInvalidStatusException"),
        (ecr.stop_replication_backfill, {"replicationBackfillId": "0b5a8f8e-0000-4000-8000-000000000000"},
         "ReplicationBackfillNotFoundException"),
        (ecr.describe_replication_backfill_results, {"replicationBackfillId": "not-a-uuid"},
         "InvalidParameterException"),
    ]:
        with pytest.raises(botocore.exceptions.ClientError) as err:
            call(**kwargs)
        assert err.value.response["Error"]["Code"] == code, kwargs
