"""ECR lifecycle policies, their previews, ECR's error codes and the registry policy, with
boto3 against a real server and images pushed over /v2/.

A lifecycle run is made to happen quickly with STEVEDORE_REGISTRY_GC_INTERVAL_SECS (the
registry's maintenance interval: lifecycle policies, then garbage collection)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid

import botocore.exceptions
import pytest

from conftest import StevedoreServer, make_client, unique
from registry_fixtures import V2, ecr, registry_password, repo, repo_name, sha256, v2  # noqa: F401

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def lifecycle(*rules: dict) -> str:
    return json.dumps({"rules": [
        {"rulePriority": p, "description": f"rule {p}", "selection": s, "action": {"type": "expire"}}
        for p, s in rules
    ]})


def keep(n: int, status: str = "tagged", **lists) -> dict:
    return {"tagStatus": status, **lists, "countType": "imageCountMoreThan", "countNumber": n}


def push(v: V2, name: str, tag: str) -> str:
    """Pushes a one-layer image of its own under `tag`; returns its digest."""
    digest, _ = v.push_image(name, tag, [f"{name}:{tag}:{uuid.uuid4()}".encode()])
    # pushedAt has millisecond precision: keep pushes apart so their order is certain.
    time.sleep(0.02)
    return digest


def retag(v: V2, name: str, digest: str, tag: str) -> None:
    """Points `tag` at the image `digest` too."""
    body = v.req("GET", f"/v2/{name}/manifests/{digest}", headers={"Accept": OCI_MANIFEST}).content
    r = v.req("PUT", f"/v2/{name}/manifests/{tag}", data=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 201, r.text


def image_tags(client, name: str) -> dict[str, list[str]]:
    """Digest → sorted tags of every image in the repository."""
    out = {}
    for d in client.describe_images(repositoryName=name)["imageDetails"]:
        out[d["imageDigest"]] = sorted(d.get("imageTags", []))
    return out


# --- a real run -------------------------------------------------------------------------


@pytest.fixture
def busy_server(tmp_path):
    """A server of its own whose maintenance (lifecycle, then GC) runs every second."""
    srv = StevedoreServer(tmp_path / "data", extra_env={"STEVEDORE_REGISTRY_GC_INTERVAL_SECS": "1"})
    cfg = srv.start()
    client = make_client(cfg, "ecr")
    data = client.get_authorization_token()["authorizationData"][0]
    password = base64.b64decode(data["authorizationToken"]).decode().split(":")[1]
    yield client, V2(cfg.endpoint, password)
    srv.kill()


def test_a_multi_prefix_rule_expires_only_images_matching_every_prefix(busy_server):
    client, v = busy_server
    name = repo_name("lc")
    client.create_repository(repositoryName=name)
    only_prod = push(v, name, "prod-1")
    only_beta = push(v, name, "beta-1")
    both_old = push(v, name, "prod-2")
    retag(v, name, both_old, "beta-2")
    newest = push(v, name, "prod-3")
    retag(v, name, newest, "beta-3")
    before = image_tags(client, name)
    assert before == {only_prod: ["prod-1"], only_beta: ["beta-1"], both_old: ["beta-2", "prod-2"], newest: ["beta-3", "prod-3"]}

    policy = lifecycle((1, keep(1, tagPrefixList=["prod", "beta"])))
    # The preview of the text names exactly the image carrying both prefixes that is not
    # the newest such image, and deletes nothing.
    client.start_lifecycle_policy_preview(repositoryName=name, lifecyclePolicyText=policy)
    prev = client.get_lifecycle_policy_preview(repositoryName=name)
    assert [(r["imageDigest"], r["appliedRulePriority"]) for r in prev["previewResults"]] == [(both_old, 1)]
    assert image_tags(client, name) == before

    client.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=policy)
    put_at = time.time()
    deadline = time.monotonic() + 20
    evaluated = None
    while time.monotonic() < deadline:
        got = client.get_lifecycle_policy(repositoryName=name)
        evaluated = got.get("lastEvaluatedAt")
        if evaluated is not None and evaluated.timestamp() >= put_at - 1:
            break
        time.sleep(0.3)
    assert evaluated is not None, "the lifecycle policy never ran"
    after = image_tags(client, name)
    # Images with only one of the prefixes stay: ANY-matching would have expired them.
    assert after == {only_prod: ["prod-1"], only_beta: ["beta-1"], newest: ["beta-3", "prod-3"]}
    # Its run time is reported and moves forward with later runs.
    time.sleep(1.5)
    later = client.get_lifecycle_policy(repositoryName=name)["lastEvaluatedAt"]
    assert later > evaluated


# --- previews ---------------------------------------------------------------------------


def test_preview_shapes_filters_pagination_and_it_deletes_nothing(ecr, v2, repo):
    with pytest.raises(ecr.exceptions.LifecyclePolicyNotFoundException):
        ecr.start_lifecycle_policy_preview(repositoryName=repo)
    with pytest.raises(ecr.exceptions.LifecyclePolicyPreviewNotFoundException):
        ecr.get_lifecycle_policy_preview(repositoryName=repo)
    first_latest = push(v2, repo, "latest")
    second_latest = push(v2, repo, "latest")
    builds = [push(v2, repo, f"build-{i}") for i in range(3)]
    push(v2, repo, "latest")
    before = image_tags(ecr, repo)
    policy = lifecycle(
        (1, keep(1, status="untagged")),
        (2, keep(1, tagPrefixList=["build-"])),
    )
    ecr.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=policy)
    started = ecr.start_lifecycle_policy_preview(repositoryName=repo)
    assert started["status"] == "IN_PROGRESS"
    assert started["lifecyclePolicyText"] == policy and started["repositoryName"] == repo
    ecr.get_waiter("lifecycle_policy_preview_complete").wait(repositoryName=repo, WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    prev = ecr.get_lifecycle_policy_preview(repositoryName=repo)
    assert prev["status"] == "COMPLETE" and prev["registryId"] == "000000000000"
    assert prev["summary"]["expiringImageTotalCount"] == 3
    got = {r["imageDigest"]: r for r in prev["previewResults"]}
    assert set(got) == {first_latest, builds[0], builds[1]}
    assert second_latest not in got  # the newest untagged image is kept
    assert got[first_latest]["imageTags"] == [] and got[first_latest]["appliedRulePriority"] == 1
    assert got[builds[0]]["imageTags"] == ["build-0"] and got[builds[0]]["appliedRulePriority"] == 2
    for r in prev["previewResults"]:
        assert r["action"] == {"type": "EXPIRE"}
        assert r["imagePushedAt"].timestamp() > time.time() - 600
    # Oldest push first, the order expiry goes in.
    pushed = [r["imagePushedAt"] for r in prev["previewResults"]]
    assert pushed == sorted(pushed)

    tagged = ecr.get_lifecycle_policy_preview(repositoryName=repo, filter={"tagStatus": "TAGGED"})["previewResults"]
    assert sorted(r["imageDigest"] for r in tagged) == sorted(builds[:2])
    untagged = ecr.get_lifecycle_policy_preview(repositoryName=repo, filter={"tagStatus": "UNTAGGED"})["previewResults"]
    assert [r["imageDigest"] for r in untagged] == [first_latest]
    named = ecr.get_lifecycle_policy_preview(repositoryName=repo, imageIds=[{"imageTag": "build-1"}])["previewResults"]
    assert [r["imageDigest"] for r in named] == [builds[1]]

    page1 = ecr.get_lifecycle_policy_preview(repositoryName=repo, maxResults=2)
    assert len(page1["previewResults"]) == 2 and page1["nextToken"]
    page2 = ecr.get_lifecycle_policy_preview(repositoryName=repo, maxResults=2, nextToken=page1["nextToken"])
    assert len(page2["previewResults"]) == 1 and "nextToken" not in page2
    assert {r["imageDigest"] for r in page1["previewResults"] + page2["previewResults"]} == set(got)
    with pytest.raises(ecr.exceptions.InvalidParameterException):
        ecr.get_lifecycle_policy_preview(repositoryName=repo, maxResults=101)
    # The paginator walks the same pages.
    walked = [r["imageDigest"] for p in ecr.get_paginator("get_lifecycle_policy_preview").paginate(
        repositoryName=repo, PaginationConfig={"PageSize": 1}) for r in p["previewResults"]]
    assert sorted(walked) == sorted(got)
    # A preview never deletes anything.
    assert image_tags(ecr, repo) == before


def test_lifecycle_policy_text_is_validated_as_ecr_does(ecr, repo):
    tagged_without_list = lifecycle((1, keep(1)))
    any_not_last = lifecycle((1, keep(1, status="any")), (2, keep(1, tagPrefixList=["a"])))
    five_wildcards = lifecycle((1, keep(1, tagPatternList=["a*b*c*d*e*"])))
    both_lists = lifecycle((1, keep(1, tagPrefixList=["a"], tagPatternList=["b*"])))
    for text in [tagged_without_list, any_not_last, five_wildcards, both_lists]:
        with pytest.raises(ecr.exceptions.InvalidParameterException) as e:
            ecr.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=text)
        assert e.value.response["Error"]["Message"].startswith(
            "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: ")
        with pytest.raises(ecr.exceptions.InvalidParameterException):
            ecr.start_lifecycle_policy_preview(repositoryName=repo, lifecyclePolicyText=text)
    with pytest.raises(ecr.exceptions.LifecyclePolicyNotFoundException):
        ecr.get_lifecycle_policy(repositoryName=repo)


# --- ECR's error codes ------------------------------------------------------------------


def test_missing_repositories_digest_mismatches_and_missing_children(ecr, v2, repo):
    missing = repo_name("gone")
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(b"{}"), "size": 2},
                           "layers": []})
    for call in [
        lambda: ecr.put_image(repositoryName=missing, imageManifest=manifest, imageTag="v1"),
        lambda: ecr.put_image(repositoryName=missing, imageManifest="{}", imageTag="v1"),
        lambda: ecr.start_lifecycle_policy_preview(repositoryName=missing, lifecyclePolicyText=lifecycle((1, keep(1, status="untagged")))),
        lambda: ecr.get_lifecycle_policy_preview(repositoryName=missing),
        lambda: ecr.get_lifecycle_policy(repositoryName=missing),
        lambda: ecr.put_lifecycle_policy(repositoryName=missing, lifecyclePolicyText=lifecycle((1, keep(1, status="untagged")))),
    ]:
        with pytest.raises(ecr.exceptions.RepositoryNotFoundException):
            call()

    digest, body = v2.push_image(repo, "v1", [b"digest-check"])
    wrong = "sha256:" + hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(ecr.exceptions.ImageDigestDoesNotMatchException):
        ecr.put_image(repositoryName=repo, imageManifest=body.decode(), imageTag="v2", imageDigest=wrong)
    with pytest.raises(ecr.exceptions.ImageDigestDoesNotMatchException):
        ecr.put_image(repositoryName=repo, imageManifest=body.decode(), imageDigest=wrong)
    assert ecr.put_image(repositoryName=repo, imageManifest=body.decode(), imageTag="v2", imageDigest=digest)["image"]["imageId"] == {"imageDigest": digest, "imageTag": "v2"}

    absent = sha256(b"no such manifest")
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": absent, "size": 10, "platform": {"architecture": "amd64", "os": "linux"}}]})
    with pytest.raises(ecr.exceptions.ReferencedImagesNotFoundException):
        ecr.put_image(repositoryName=repo, imageManifest=index, imageTag="multi", imageManifestMediaType=OCI_INDEX)


# --- registry policy --------------------------------------------------------------------


def registry_policy(effect: str, principal: str, actions: list[str]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "rp", "Effect": effect, "Principal": {"AWS": principal}, "Action": actions,
        "Resource": "arn:aws:ecr:us-east-1:000000000000:repository/*"}]})


@pytest.fixture
def no_registry_policy(ecr):
    """The session server's registry policy is shared: each test leaves none behind."""
    yield
    try:
        ecr.delete_registry_policy()
    except ecr.exceptions.RegistryPolicyNotFoundException:
        pass


def test_registry_policy_round_trip_and_validation(ecr, no_registry_policy):
    with pytest.raises(ecr.exceptions.RegistryPolicyNotFoundException):
        ecr.get_registry_policy()
    with pytest.raises(ecr.exceptions.RegistryPolicyNotFoundException):
        ecr.delete_registry_policy()
    for bad in [
        "{not json",
        registry_policy("Allow", "arn:aws:iam::111122223333:root", ["ecr:BatchGetImage"]),
        registry_policy("Allow", "arn:aws:iam::111122223333:root", ["s3:GetObject"]),
    ]:
        with pytest.raises(ecr.exceptions.InvalidParameterException) as e:
            ecr.put_registry_policy(policyText=bad)
        assert "Invalid registry policy provided" in e.value.response["Error"]["Message"]
    text = registry_policy("Allow", "arn:aws:iam::111122223333:root", ["ecr:CreateRepository", "ecr:ReplicateImage"])
    put = ecr.put_registry_policy(policyText=text)
    assert put["registryId"] == "000000000000" and put["policyText"] == text
    got = ecr.get_registry_policy()
    assert got["registryId"] == "000000000000" and got["policyText"] == text
    deleted = ecr.delete_registry_policy()
    assert deleted["policyText"] == text and deleted["registryId"] == "000000000000"
    with pytest.raises(ecr.exceptions.RegistryPolicyNotFoundException):
        ecr.get_registry_policy()


def ecr_as_new_user(server, iam, policy: dict | None) -> tuple[str, object]:
    """A new IAM user with `policy` inline (if any) and an ECR client using its key."""
    name = unique("rp-user")
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    if policy is not None:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    client = make_client(server, "ecr", access_key=key["AccessKeyId"], secret_key=key["SecretAccessKey"])
    return arn, client


def create_as(client, name: str):
    """CreateRepository, retried for a moment while a key just made is not yet known."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return client.create_repository(repositoryName=name)
        except botocore.exceptions.ClientError as e:
            if e.response["Error"]["Code"] in ("UnrecognizedClientException", "InvalidClientTokenId") and time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            raise


def test_registry_policy_governs_create_repository(server, ecr, no_registry_policy):
    iam = make_client(server, "iam")
    everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}]}
    admin_arn, admin = ecr_as_new_user(server, iam, everything)
    plain_arn, plain = ecr_as_new_user(server, iam, None)
    allowed = repo_name("rp-ok")
    create_as(admin, allowed)
    # Without any grant the plain user may not create repositories.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        create_as(plain, repo_name("rp-plain"))
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    # A registry policy denying the admin wins over its identity policy; one allowing the
    # plain user grants it.
    ecr.put_registry_policy(policyText=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": {"AWS": admin_arn}, "Action": "ecr:CreateRepository",
         "Resource": "arn:aws:ecr:us-east-1:000000000000:repository/*"},
        {"Effect": "Allow", "Principal": {"AWS": plain_arn}, "Action": "ecr:CreateRepository",
         "Resource": "arn:aws:ecr:us-east-1:000000000000:repository/*"},
    ]}))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        create_as(admin, repo_name("rp-denied"))
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    granted = repo_name("rp-granted")
    create_as(plain, granted)
    # It governs the registry-level actions only: the admin still reads repositories.
    assert admin.describe_repositories(repositoryNames=[allowed])["repositories"][0]["repositoryName"] == allowed
    ecr.delete_registry_policy()
    create_as(admin, repo_name("rp-after"))
    for n in (allowed, granted):
        ecr.delete_repository(repositoryName=n, force=True)
