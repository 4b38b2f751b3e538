"""ECR replication to another Stevedore server (an external destination): two real
servers, A (account 000000000000) and B (account 444455556666). A's rule names B's
registry id; A finds B's endpoint and keys in its destinations directory
(STEVEDORE_REPLICATION_DESTINATIONS_DIR/<registryId>.json, mode 0600). A push to A is
copied to B in both regions the rule names (repository created there, blobs, manifest,
tags) and docker pulls it from B; statuses go COMPLETE, or FAILED with the reason for an
unreachable server, refused keys and a file others may read. As on AWS, images pushed
before the rule are not replicated and deleting an image is not replicated, and
replication is one hop: a third server C is B's destination, and an image A copies to B
is not sent on to C by B's rule, while an image pushed to B is. The copy marks its
manifests as replicas, which B honours only for a principal allowed ecr:ReplicateImage."""
from __future__ import annotations

import base64
import dataclasses
import json
import os
import time

import pytest

from conftest import ACCOUNT_ID, StevedoreServer, free_port, make_client, unique
from registry_fixtures import V2, docker  # noqa: F401

B_ID = "444455556666"
C_ID = "222233334444"
# B again, through the keys of a user there who may push but not ecr:ReplicateImage.
NO_REPLICATE_ID = "888899990000"
UNREACHABLE_ID = "555566667777"
OPEN_FILE_ID = "666677778888"
BAD_KEYS_ID = "777788889999"
WEST = "eu-west-1"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def write_destination(folder, registry_id: str, body: dict, mode: int = 0o600) -> None:
    path = folder / f"{registry_id}.json"
    path.write_text(json.dumps(body))
    os.chmod(path, mode)


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("replication-external")
    c_srv = StevedoreServer(tmp / "c", account_id=C_ID)
    c = c_srv.start()
    b_folder = tmp / "b-destinations"
    b_folder.mkdir()
    write_destination(b_folder, C_ID, {"endpoint": c.endpoint, "accessKeyId": c.access_key,
                                       "secretAccessKey": c.secret_key})
    b_srv = StevedoreServer(tmp / "b", account_id=B_ID, extra_env={
        "STEVEDORE_LOG": "info", "STEVEDORE_REPLICATION_DESTINATIONS_DIR": str(b_folder)})
    b = b_srv.start()
    folder = tmp / "destinations"
    folder.mkdir()
    keys = {"accessKeyId": b.access_key, "secretAccessKey": b.secret_key}
    write_destination(folder, B_ID, {"endpoint": b.endpoint, **keys})
    # Nothing listens on this port (it was free a moment ago, and is never bound).
    write_destination(folder, UNREACHABLE_ID, {"endpoint": f"http://127.0.0.1:{free_port()}", **keys})
    write_destination(folder, OPEN_FILE_ID, {"endpoint": b.endpoint, **keys}, mode=0o644)
    write_destination(folder, BAD_KEYS_ID, {"endpoint": b.endpoint, "accessKeyId": b.access_key,
                                            "secretAccessKey": "not-the-secret"})
    a_srv = StevedoreServer(tmp / "a", extra_env={
        "STEVEDORE_LOG": "info", "STEVEDORE_REPLICATION_DESTINATIONS_DIR": str(folder)})
    a = a_srv.start()
    yield a, b, c, folder
    a_srv.stop()
    b_srv.stop()
    c_srv.stop()


def password(ecr) -> str:
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    return base64.b64decode(token).decode().split(":")[1]


def statuses(ecr, repo: str, tag: str) -> dict:
    got = ecr.describe_image_replication_status(repositoryName=repo, imageId={"imageTag": tag})
    return {(s["region"], s["registryId"]): s for s in got["replicationStatuses"]}


def settle(ecr, repo: str, tag: str, want: int, within: float = 60) -> dict:
    """The statuses once `want` destinations have left IN_PROGRESS."""
    deadline = time.monotonic() + within
    while True:
        found = statuses(ecr, repo, tag)
        done = [s for s in found.values() if s["status"] != "IN_PROGRESS"]
        if len(done) >= want or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def rule(*destinations: tuple[str, str], prefix: str) -> dict:
    return {"rules": [{
        "destinations": [{"region": r, "registryId": i} for r, i in destinations],
        "repositoryFilters": [{"filter": prefix, "filterType": "PREFIX_MATCH"}]}]}


def test_pushes_reach_the_other_server_in_each_region_and_docker_pulls_them(servers, docker, tmp_path):
    a, b, _, _ = servers
    ecr = make_client(a, "ecr")
    repo = f"ext/{unique('app')}"
    ecr.create_repository(repositoryName=repo)
    v2 = V2(a.endpoint, password(ecr))
    # Pushed before any rule selects the repository: stays on A (AWS does not backfill).
    old_digest, _ = v2.push_image(repo, "old", [b"before the rule"])

    config = rule((a.region, B_ID), (WEST, B_ID), prefix="ext/")
    assert ecr.put_replication_configuration(replicationConfiguration=config)[
        "replicationConfiguration"] == config

    big = os.urandom(3 * 1024 * 1024)
    digest, manifest = v2.push_image(repo, "v1", [b"small layer", big])
    found = settle(ecr, repo, "v1", 2)
    assert {k: s["status"] for k, s in found.items()} == {
        (a.region, B_ID): "COMPLETE", (WEST, B_ID): "COMPLETE"}, found

    for region in (a.region, WEST):
        ecr_b = make_client(dataclasses.replace(b, region=region), "ecr")
        got = ecr_b.describe_repositories(repositoryNames=[repo])["repositories"][0]
        assert got["registryId"] == B_ID
        ids = ecr_b.list_images(repositoryName=repo)["imageIds"]
        # Only the image pushed under the rule, with its tag.
        assert ids == [{"imageDigest": digest, "imageTag": "v1"}], ids
        v2_b = V2(b.endpoint, password(ecr_b))
        r = v2_b.req("GET", f"/v2/{repo}/manifests/v1", headers={"Accept": MANIFEST})
        assert r.status_code == 200 and r.content == manifest
        layer = json.loads(manifest)["layers"][1]["digest"]
        assert v2_b.req("GET", f"/v2/{repo}/blobs/{layer}").content == big
    assert statuses(ecr, repo, "old") == {}

    # Deleting the image on A is not replicated: B keeps it.
    ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageTag": "v1"}])
    ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageDigest": old_digest}])
    ecr_b = make_client(b, "ecr")
    assert [i["imageDigest"] for i in ecr_b.list_images(repositoryName=repo)["imageIds"]] == [digest]

    # A docker push to A is pulled and run from B.
    host_a, host_b = a.endpoint.removeprefix("http://"), b.endpoint.removeprefix("http://")
    docker.run("login", "--username", "AWS", "--password-stdin", host_a, input=password(ecr))
    docker.run("login", "--username", "AWS", "--password-stdin", host_b, input=password(ecr_b))
    pushed = f"{host_a}/{repo}:docker"
    docker.build(pushed, tmp_path, payload=b"across servers")
    docker.run("push", pushed)
    found = settle(ecr, repo, "docker", 2)
    assert {s["status"] for s in found.values()} == {"COMPLETE"}, found
    pulled = f"{host_b}/{repo}:docker"
    docker.created.add(pulled)
    docker.run("pull", pulled)
    assert "hello from stevedore" in docker.run("run", "--rm", pulled).stdout


def test_failures_say_why(servers):
    a, *_ = servers
    ecr = make_client(a, "ecr")
    config = rule((a.region, UNREACHABLE_ID), (a.region, OPEN_FILE_ID), (a.region, BAD_KEYS_ID),
                  prefix="broken/")
    ecr.put_replication_configuration(replicationConfiguration=config)
    repo = f"broken/{unique('app')}"
    ecr.create_repository(repositoryName=repo)
    V2(a.endpoint, password(ecr)).push_image(repo, "v1", [b"going nowhere"])
    found = settle(ecr, repo, "v1", 3)
    assert {s["status"] for s in found.values()} == {"FAILED"}, found
    assert "could not be reached" in found[(a.region, UNREACHABLE_ID)]["failureCode"], found
    assert "chmod 600" in found[(a.region, OPEN_FILE_ID)]["failureCode"], found
    refused = found[(a.region, BAD_KEYS_ID)]["failureCode"]
    assert "refused" in refused and "Signature" in refused, found


def test_the_source_registry_is_still_refused_as_a_destination(servers):
    a, *_ = servers
    ecr = make_client(a, "ecr")
    with pytest.raises(Exception) as err:
        ecr.put_replication_configuration(replicationConfiguration=rule((a.region, ACCOUNT_ID), prefix="x/"))
    assert err.value.response["Error"]["Code"] == "ValidationException"


def test_replication_is_one_hop_a_copy_is_not_sent_on_by_the_destination(servers):
    a, b, c, _ = servers
    ecr, ecr_b, ecr_c = make_client(a, "ecr"), make_client(b, "ecr"), make_client(c, "ecr")
    # A -> B and B -> C, each selecting the same repository.
    ecr.put_replication_configuration(replicationConfiguration=rule((a.region, B_ID), prefix="chain/"))
    ecr_b.put_replication_configuration(replicationConfiguration=rule((b.region, C_ID), prefix="chain/"))
    repo = f"chain/{unique('app')}"
    ecr.create_repository(repositoryName=repo)

    from_a, _ = V2(a.endpoint, password(ecr)).push_image(repo, "from-a", [b"pushed to A"])
    found = settle(ecr, repo, "from-a", 1)
    assert found[(a.region, B_ID)]["status"] == "COMPLETE", found
    assert [i["imageDigest"] for i in ecr_b.list_images(repositoryName=repo)["imageIds"]] == [from_a]

    # Pushed to B itself: B's rule sends it to C. Its replication starts after the copy
    # from A was stored, so once it is COMPLETE a copy sent on would have shown too.
    from_b, _ = V2(b.endpoint, password(ecr_b)).push_image(repo, "from-b", [b"pushed to B"])
    found = settle(ecr_b, repo, "from-b", 1)
    assert found[(b.region, C_ID)]["status"] == "COMPLETE", found
    assert statuses(ecr_b, repo, "from-a") == {}
    ids = ecr_c.list_images(repositoryName=repo)["imageIds"]
    assert ids == [{"imageDigest": from_b, "imageTag": "from-b"}], ids


def test_only_a_principal_allowed_to_replicate_may_mark_a_push_as_a_replica(servers):
    a, b, _, folder = servers
    iam_b = make_client(b, "iam")
    user = unique("replicator")
    iam_b.create_user(UserName=user)
    # Everything in ECR but ecr:ReplicateImage.
    iam_b.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "ecr:ReplicateImage", "Resource": "*"}]}))
    key = iam_b.create_access_key(UserName=user)["AccessKey"]
    # The destination file is read on every attempt: no restart needed.
    write_destination(folder, NO_REPLICATE_ID, {"endpoint": b.endpoint, "accessKeyId": key["AccessKeyId"],
                                                "secretAccessKey": key["SecretAccessKey"]})
    ecr = make_client(a, "ecr")
    ecr.put_replication_configuration(replicationConfiguration=rule((a.region, NO_REPLICATE_ID), prefix="gate/"))
    repo = f"gate/{unique('app')}"
    ecr.create_repository(repositoryName=repo)
    V2(a.endpoint, password(ecr)).push_image(repo, "v1", [b"needs ReplicateImage"])
    found = settle(ecr, repo, "v1", 1)
    st = found[(a.region, NO_REPLICATE_ID)]
    assert st["status"] == "FAILED" and "ecr:ReplicateImage" in st["failureCode"], found

    # The same user's own push (no replica mark) is an ordinary push.
    ecr_user = make_client(b, "ecr", access_key=key["AccessKeyId"], secret_key=key["SecretAccessKey"])
    digest, _ = V2(b.endpoint, password(ecr_user)).push_image(repo, "own", [b"an ordinary push"])
    assert ecr_user.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "own"}])[
        "images"][0]["imageId"]["imageDigest"] == digest
