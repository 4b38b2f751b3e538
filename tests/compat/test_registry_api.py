"""The registry's /v2/ API (OCI distribution) and ECR API, with raw HTTP and boto3:
auth, chunked and resumed uploads, ranges, manifests, tags, referrers, ECR operations,
crash safety and garbage collection."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import os
import signal
import time

import botocore.exceptions
import pytest
import requests

from conftest import StevedoreServer, make_client
from registry_fixtures import V2, ecr, registry_password, repo, repo_name, sha256, v2  # noqa: F401

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


# --- auth ------------------------------------------------------------------------------


def test_base_check_challenges_then_accepts_basic_aws_token(server, registry_password):
    r = requests.get(server.endpoint + "/v2/", timeout=10)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert requests.get(server.endpoint + "/v2/", auth=("AWS", registry_password), timeout=10).status_code == 200
    bearer = {"Authorization": f"Bearer {registry_password}"}
    assert requests.get(server.endpoint + "/v2/", headers=bearer, timeout=10).status_code == 200


def test_forged_and_wrong_user_tokens_are_refused(server, registry_password):
    head, _, mac = registry_password.rpartition(".")
    forged = head + "." + ("0" if mac[0] != "0" else "1") + mac[1:]
    for auth in [("AWS", forged), ("bob", registry_password), ("AWS", "v1.99999999999.00.00")]:
        assert requests.get(server.endpoint + "/v2/", auth=auth, timeout=10).status_code == 401


def test_get_authorization_token_shape(ecr, server):
    data = ecr.get_authorization_token()["authorizationData"][0]
    assert data["proxyEndpoint"] == server.endpoint
    user, pw = base64.b64decode(data["authorizationToken"]).decode().split(":")
    assert user == "AWS" and ":" not in pw
    ttl = data["expiresAt"].timestamp() - time.time()
    assert 11.9 * 3600 < ttl <= 12 * 3600 + 5


# --- blobs and uploads -----------------------------------------------------------------


def test_chunked_upload_with_content_range_status_and_resume(v2, repo):
    data = os.urandom(300_000)
    r = v2.req("POST", f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202 and r.headers["Range"] == "0-0"
    loc = r.headers["Location"]
    r = v2.req("PATCH", loc, data=data[:100_000], headers={"Content-Range": "0-99999", "Content-Type": "application/octet-stream"})
    assert r.status_code == 202 and r.headers["Range"] == "0-99999"
    # Out of order: 416 with the current range, nothing lost.
    r = v2.req("PATCH", loc, data=data[200_000:], headers={"Content-Range": "200000-299999"})
    assert r.status_code == 416
    assert r.headers["Range"] == "0-99999"
    # The client asks where it stands, then resumes.
    r = v2.req("GET", loc)
    assert r.status_code == 204 and r.headers["Range"] == "0-99999"
    r = v2.req("PATCH", loc, data=data[100_000:200_000], headers={"Content-Range": "100000-199999"})
    assert r.status_code == 202
    r = v2.req("PUT", loc, params={"digest": sha256(data)}, data=data[200_000:], headers={"Content-Range": "200000-299999"})
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == sha256(data)
    r = v2.req("GET", f"/v2/{repo}/blobs/{sha256(data)}")
    assert r.status_code == 200 and r.content == data


def test_digest_mismatch_is_refused_and_nothing_is_served(v2, repo):
    data = b"the real content"
    wrong = sha256(b"something else")
    r = v2.req("POST", f"/v2/{repo}/blobs/uploads/")
    r = v2.req("PUT", r.headers["Location"], params={"digest": wrong}, data=data)
    assert r.status_code == 400
    assert r.json()["errors"][0]["code"] == "DIGEST_INVALID"
    for d in (wrong, sha256(data)):
        assert v2.req("HEAD", f"/v2/{repo}/blobs/{d}").status_code == 404


def test_blob_head_get_and_ranges(v2, repo):
    data = bytes(range(256)) * 40
    d = v2.push_blob(repo, data)
    h = v2.req("HEAD", f"/v2/{repo}/blobs/{d}")
    assert h.status_code == 200
    assert h.headers["Content-Length"] == str(len(data)) and h.headers["Docker-Content-Digest"] == d
    r = v2.req("GET", f"/v2/{repo}/blobs/{d}", headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    assert r.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    r = v2.req("GET", f"/v2/{repo}/blobs/{d}", headers={"Range": "bytes=-5"})
    assert r.content == data[-5:]
    assert v2.req("GET", f"/v2/{repo}/blobs/{d}", headers={"Range": f"bytes={len(data)}-"}).status_code == 416


def test_monolithic_post_mount_and_existing_blob_short_circuit(v2, repo, ecr):
    data = os.urandom(5000)
    d = sha256(data)
    r = v2.req("POST", f"/v2/{repo}/blobs/uploads/", params={"digest": d}, data=data)
    assert r.status_code == 201, r.text
    other = repo_name("mount")
    ecr.create_repository(repositoryName=other)
    try:
        assert v2.req("HEAD", f"/v2/{other}/blobs/{d}").status_code == 404
        r = v2.req("POST", f"/v2/{other}/blobs/uploads/", params={"mount": d, "from": repo})
        assert r.status_code == 201 and r.headers["Location"].endswith(d)
        assert v2.req("HEAD", f"/v2/{other}/blobs/{d}").status_code == 200
        # Mount from a repository without the blob falls back to a fresh upload session.
        r = v2.req("POST", f"/v2/{other}/blobs/uploads/", params={"mount": sha256(b"nope"), "from": repo})
        assert r.status_code == 202
    finally:
        ecr.delete_repository(repositoryName=other, force=True)


def test_cancelled_upload_is_gone(v2, repo):
    r = v2.req("POST", f"/v2/{repo}/blobs/uploads/")
    loc = r.headers["Location"]
    assert v2.req("DELETE", loc).status_code == 204
    assert v2.req("GET", loc).status_code == 404
    assert v2.req("GET", loc).json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"


def test_concurrent_pushes_of_the_same_blob(v2, repo):
    data = os.urandom(2 * 1024 * 1024)
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        digests = list(pool.map(lambda _: V2(v2.base, v2.password).push_blob(repo, data), range(6)))
    assert set(digests) == {sha256(data)}
    assert v2.req("GET", f"/v2/{repo}/blobs/{sha256(data)}").content == data


# --- manifests, tags, referrers --------------------------------------------------------


def test_manifest_round_trip_by_tag_and_digest_with_negotiation(v2, repo):
    digest, body = v2.push_image(repo, "v1", [b"layer-one"])
    for ref in ("v1", digest):
        r = v2.req("GET", f"/v2/{repo}/manifests/{ref}", headers={"Accept": OCI_MANIFEST})
        assert r.status_code == 200 and r.content == body
        assert r.headers["Content-Type"] == OCI_MANIFEST and r.headers["Docker-Content-Digest"] == digest
    h = v2.req("HEAD", f"/v2/{repo}/manifests/v1")
    assert h.status_code == 200 and h.headers["Content-Length"] == str(len(body))
    r = v2.req("GET", f"/v2/{repo}/manifests/v1", headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"


def test_manifest_referencing_a_missing_blob_is_refused(v2, repo):
    config = v2.push_blob(repo, b"{}")
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(b"never pushed"), "size": 12}],
    })
    r = v2.req("PUT", f"/v2/{repo}/manifests/v1", data=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"
    r = v2.req("PUT", f"/v2/{repo}/manifests/v1", data=b"not json", headers={"Content-Type": OCI_MANIFEST})
    assert r.json()["errors"][0]["code"] == "MANIFEST_INVALID"


def test_index_and_delete_by_tag_and_digest(v2, repo):
    d1, b1 = v2.push_image(repo, "amd64", [b"a"])
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": [{"mediaType": OCI_MANIFEST, "digest": d1, "size": len(b1), "platform": {"os": "linux", "architecture": "amd64"}}]})
    r = v2.req("PUT", f"/v2/{repo}/manifests/multi", data=index, headers={"Content-Type": "application/vnd.oci.image.index.v1+json"})
    assert r.status_code == 201
    missing_child = index.replace(d1, sha256(b"absent"))
    r = v2.req("PUT", f"/v2/{repo}/manifests/bad", data=missing_child, headers={"Content-Type": "application/vnd.oci.image.index.v1+json"})
    assert r.status_code == 400
    assert v2.req("DELETE", f"/v2/{repo}/manifests/multi").status_code == 202
    assert v2.req("GET", f"/v2/{repo}/manifests/multi").status_code == 404
    assert v2.req("DELETE", f"/v2/{repo}/manifests/{d1}").status_code == 202
    assert v2.req("GET", f"/v2/{repo}/manifests/amd64").status_code == 404


def test_tag_list_pagination_with_link_headers(v2, repo):
    d, body = v2.push_image(repo, "t0", [b"x"])
    for i in range(1, 5):
        assert v2.req("PUT", f"/v2/{repo}/manifests/t{i}", data=body, headers={"Content-Type": OCI_MANIFEST}).status_code == 201
    r = v2.req("GET", f"/v2/{repo}/tags/list", params={"n": 2})
    assert r.json() == {"name": repo, "tags": ["t0", "t1"]}
    assert 'rel="next"' in r.headers["Link"] and "last=t1" in r.headers["Link"]
    r = v2.req("GET", f"/v2/{repo}/tags/list", params={"n": 2, "last": "t3"})
    assert r.json()["tags"] == ["t4"] and "Link" not in r.headers
    assert v2.req("GET", f"/v2/{repo}/tags/list", params={"n": 0}).json()["tags"] == []


def test_referrers_api(v2, repo):
    subject, body = v2.push_image(repo, "base", [b"s"])
    empty = v2.push_blob(repo, b"{}")
    sig = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.sig",
                      "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2}, "layers": [],
                      "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": len(body)},
                      "annotations": {"org.example": "yes"}}).encode()
    r = v2.req("PUT", f"/v2/{repo}/manifests/{sha256(sig)}", data=sig, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 201 and r.headers["OCI-Subject"] == subject
    idx = v2.req("GET", f"/v2/{repo}/referrers/{subject}").json()
    assert [m["digest"] for m in idx["manifests"]] == [sha256(sig)]
    assert idx["manifests"][0]["artifactType"] == "application/vnd.example.sig"
    r = v2.req("GET", f"/v2/{repo}/referrers/{subject}", params={"artifactType": "other"})
    assert r.json()["manifests"] == [] and r.headers["OCI-Filters-Applied"] == "artifactType"


def test_unknown_repository_and_bad_names(v2):
    r = v2.req("GET", "/v2/does-not-exist/tags/list")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NAME_UNKNOWN"
    r = v2.req("GET", "/v2/UPPER/tags/list")
    assert r.json()["errors"][0]["code"] == "NAME_INVALID"


# --- ECR API ---------------------------------------------------------------------------


def test_repository_lifecycle_and_rules(ecr, server):
    name = repo_name("ecr")
    host = server.endpoint.removeprefix("http://")
    r = ecr.create_repository(repositoryName=name, imageTagMutability="IMMUTABLE",
                              imageScanningConfiguration={"scanOnPush": True},
                              encryptionConfiguration={"encryptionType": "KMS", "kmsKey": "k"}, tags=[{"Key": "team", "Value": "a"}])["repository"]
    assert r["repositoryUri"] == f"{host}/{name}" and r["imageTagMutability"] == "IMMUTABLE"
    assert r["encryptionConfiguration"]["encryptionType"] == "KMS"
    with pytest.raises(ecr.exceptions.RepositoryAlreadyExistsException):
        ecr.create_repository(repositoryName=name)
    with pytest.raises(ecr.exceptions.InvalidParameterException):
        ecr.create_repository(repositoryName="Bad_Name")
    got = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
    assert got["imageScanningConfiguration"] == {"scanOnPush": True}
    assert ecr.list_tags_for_resource(resourceArn=r["repositoryArn"])["tags"] == [{"Key": "team", "Value": "a"}]
    ecr.delete_repository(repositoryName=name)
    with pytest.raises(ecr.exceptions.RepositoryNotFoundException):
        ecr.describe_repositories(repositoryNames=[name])


def test_images_api_and_force_delete(ecr, v2, repo):
    d, body = v2.push_image(repo, "v1", [b"l1", b"l2"])
    v2.push_image(repo, "tmp", [b"l3"])
    ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageTag": "tmp"}])
    ids = ecr.list_images(repositoryName=repo)["imageIds"]
    assert ids == [{"imageDigest": d, "imageTag": "v1"}]
    det = ecr.describe_images(repositoryName=repo, imageIds=[{"imageTag": "v1"}])["imageDetails"][0]
    assert det["imageSizeInBytes"] == 4 and det["imageManifestMediaType"] == OCI_MANIFEST
    got = ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "v1"}, {"imageTag": "nope"}])
    assert got["images"][0]["imageManifest"] == body.decode()
    assert got["failures"][0]["failureCode"] == "ImageNotFound"
    # PutImage: a new tag for the same manifest, then the same again is refused.
    ecr.put_image(repositoryName=repo, imageManifest=body.decode(), imageTag="v2")
    with pytest.raises(ecr.exceptions.ImageAlreadyExistsException):
        ecr.put_image(repositoryName=repo, imageManifest=body.decode(), imageTag="v2")
    tagged = ecr.list_images(repositoryName=repo, filter={"tagStatus": "TAGGED"})["imageIds"]
    assert sorted(i["imageTag"] for i in tagged) == ["v1", "v2"]
    with pytest.raises(ecr.exceptions.RepositoryNotEmptyException):
        ecr.delete_repository(repositoryName=repo)
    ecr.delete_repository(repositoryName=repo, force=True)


def test_put_image_refuses_overwriting_an_immutable_tag(ecr, v2, repo):
    _, b1 = v2.push_image(repo, "a", [b"1"])
    _, b2 = v2.push_image(repo, "b", [b"2"])
    ecr.put_image_tag_mutability(repositoryName=repo, imageTagMutability="IMMUTABLE")
    with pytest.raises(ecr.exceptions.ImageTagAlreadyExistsException):
        ecr.put_image(repositoryName=repo, imageManifest=b2.decode(), imageTag="a")
    r = v2.req("PUT", f"/v2/{repo}/manifests/a", data=b2, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "TAG_INVALID"


def test_layer_upload_api(ecr, repo, v2):
    data = os.urandom(70_000)
    d = sha256(data)
    up = ecr.initiate_layer_upload(repositoryName=repo)["uploadId"]
    r = ecr.upload_layer_part(repositoryName=repo, uploadId=up, partFirstByte=0, partLastByte=49_999, layerPartBlob=data[:50_000])
    assert r["lastByteReceived"] == 49_999
    with pytest.raises(ecr.exceptions.InvalidLayerPartException) as e:
        ecr.upload_layer_part(repositoryName=repo, uploadId=up, partFirstByte=10, partLastByte=20, layerPartBlob=data[10:21])
    assert e.value.response["lastValidByteReceived"] == 49_999
    ecr.upload_layer_part(repositoryName=repo, uploadId=up, partFirstByte=50_000, partLastByte=69_999, layerPartBlob=data[50_000:])
    assert ecr.complete_layer_upload(repositoryName=repo, uploadId=up, layerDigests=[d])["layerDigest"] == d
    avail = ecr.batch_check_layer_availability(repositoryName=repo, layerDigests=[d, sha256(b"no")])
    assert avail["layers"][0]["layerAvailability"] == "AVAILABLE" and avail["layers"][0]["layerSize"] == 70_000
    assert avail["failures"][0]["failureCode"] == "MissingLayerDigest"
    url = ecr.get_download_url_for_layer(repositoryName=repo, layerDigest=d)["downloadUrl"]
    assert v2.req("GET", url).content == data
    up = ecr.initiate_layer_upload(repositoryName=repo)["uploadId"]
    ecr.upload_layer_part(repositoryName=repo, uploadId=up, partFirstByte=0, partLastByte=2, layerPartBlob=b"abc")
    with pytest.raises(ecr.exceptions.InvalidLayerException):
        ecr.complete_layer_upload(repositoryName=repo, uploadId=up, layerDigests=[sha256(b"xyz")])


def test_policies_and_lifecycle_preview(ecr, repo, v2):
    with pytest.raises(ecr.exceptions.RepositoryPolicyNotFoundException):
        ecr.get_repository_policy(repositoryName=repo)
    with pytest.raises(ecr.exceptions.InvalidParameterException):
        ecr.set_repository_policy(repositoryName=repo, policyText="{not json")
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{"Sid": "pull", "Effect": "Allow", "Principal": "*", "Action": ["ecr:BatchGetImage"]}]})
    ecr.set_repository_policy(repositoryName=repo, policyText=policy)
    assert ecr.get_repository_policy(repositoryName=repo)["policyText"] == policy
    ecr.delete_repository_policy(repositoryName=repo)
    for i in range(3):
        v2.push_image(repo, f"build-{i}", [f"layer{i}".encode()])
        time.sleep(0.01)
    lifecycle = json.dumps({"rules": [{"rulePriority": 1, "description": "keep two builds",
                                        "selection": {"tagStatus": "tagged", "tagPrefixList": ["build-"], "countType": "imageCountMoreThan", "countNumber": 2},
                                        "action": {"type": "expire"}}]})
    bad = lifecycle.replace('"tagPrefixList": ["build-"], ', "")
    with pytest.raises(ecr.exceptions.InvalidParameterException):
        ecr.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=bad)
    ecr.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=lifecycle)
    assert ecr.get_lifecycle_policy(repositoryName=repo)["lifecyclePolicyText"] == lifecycle
    ecr.start_lifecycle_policy_preview(repositoryName=repo)
    prev = ecr.get_lifecycle_policy_preview(repositoryName=repo)
    assert [r["imageTags"] for r in prev["previewResults"]] == [["build-0"]]
    ecr.delete_lifecycle_policy(repositoryName=repo)
    with pytest.raises(ecr.exceptions.LifecyclePolicyNotFoundException):
        ecr.get_lifecycle_policy(repositoryName=repo)
    assert ecr.describe_registry()["registryId"] == "000000000000"


# --- crash safety and garbage collection -----------------------------------------------


@pytest.fixture
def gc_server(tmp_path):
    srv = StevedoreServer(tmp_path / "data", extra_env={"STEVEDORE_REGISTRY_GC_INTERVAL_SECS": "1", "STEVEDORE_REGISTRY_GC_GRACE_SECS": "2"})
    yield srv
    srv.kill()


def connect(cfg):
    client = make_client(cfg, "ecr")
    pw = base64.b64decode(client.get_authorization_token()["authorizationData"][0]["authorizationToken"]).decode().split(":")[1]
    return client, V2(cfg.endpoint, pw)


def test_kill_9_during_push_then_restart_never_serves_a_corrupt_blob(tmp_path):
    srv = StevedoreServer(tmp_path / "data")
    cfg = srv.start()
    client, v = connect(cfg)
    name = repo_name("crash")
    client.create_repository(repositoryName=name)
    data = os.urandom(8 * 1024 * 1024)
    d = sha256(data)
    loc = v.req("POST", f"/v2/{name}/blobs/uploads/").headers["Location"]
    v.req("PATCH", loc, data=data[: 4 * 1024 * 1024])

    def slow_body():
        yield data[4 * 1024 * 1024 : 5 * 1024 * 1024]
        time.sleep(0.5)
        yield data[5 * 1024 * 1024 :]

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        fut = pool.submit(lambda: v.req("PUT", loc, params={"digest": d}, data=slow_body(), timeout=30))
        time.sleep(0.2)
        os.kill(srv.pid, signal.SIGKILL)
        with pytest.raises(requests.exceptions.RequestException):
            fut.result()
    srv.kill()
    srv = StevedoreServer(tmp_path / "data", port=srv.port)
    cfg = srv.start()
    try:
        client, v = connect(cfg)
        assert v.req("HEAD", f"/v2/{name}/blobs/{d}").status_code == 404
        # The staged prefix survived: the client resumes where the server says it stands.
        st = v.req("GET", loc)
        assert st.status_code == 204
        have = int(st.headers["Range"].split("-")[1]) + 1
        assert have >= 4 * 1024 * 1024
        r = v.req("PUT", loc, params={"digest": d}, data=data[have:], headers={"Content-Range": f"{have}-{len(data) - 1}"})
        assert r.status_code == 201, r.text
        assert v.req("GET", f"/v2/{name}/blobs/{d}").content == data
    finally:
        srv.kill()


def test_garbage_collection_keeps_everything_referenced(gc_server):
    cfg = gc_server.start()
    client, v = connect(cfg)
    name = repo_name("gc")
    client.create_repository(repositoryName=name)
    kept, body = v.push_image(name, "keep", [b"kept-layer"])
    kept_layer = sha256(b"kept-layer")
    gone, _ = v.push_image(name, "drop", [b"dropped-layer"])
    dropped_layer = sha256(b"dropped-layer")
    orphan = v.push_blob(name, b"orphan blob")
    client.batch_delete_image(repositoryName=name, imageIds=[{"imageTag": "drop"}])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if v.req("HEAD", f"/v2/{name}/blobs/{dropped_layer}").status_code == 404 and v.req("HEAD", f"/v2/{name}/blobs/{orphan}").status_code == 404:
            break
        time.sleep(0.5)
    assert v.req("HEAD", f"/v2/{name}/blobs/{dropped_layer}").status_code == 404
    assert v.req("HEAD", f"/v2/{name}/blobs/{orphan}").status_code == 404
    assert v.req("GET", f"/v2/{name}/blobs/{kept_layer}").content == b"kept-layer"
    assert v.req("GET", f"/v2/{name}/manifests/keep").content == body
    blobs_dir = cfg.data_dir / "blobs" / "sha256"
    on_disk = {p.name for p in blobs_dir.rglob("*") if p.is_file()}
    assert kept_layer.split(":")[1] in on_disk and dropped_layer.split(":")[1] not in on_disk


def test_layer_parts_larger_than_the_generic_api_body_limit(ecr, repo):
    data = os.urandom(3 * 1024 * 1024)
    up = ecr.initiate_layer_upload(repositoryName=repo)["uploadId"]
    r = ecr.upload_layer_part(repositoryName=repo, uploadId=up, partFirstByte=0, partLastByte=len(data) - 1, layerPartBlob=data)
    assert r["lastByteReceived"] == len(data) - 1
    assert ecr.complete_layer_upload(repositoryName=repo, uploadId=up, layerDigests=[sha256(data)])["layerDigest"] == sha256(data)


def test_interrupted_patch_keeps_received_bytes_and_resumes(v2, repo):
    data = os.urandom(3 * 1024 * 1024)
    loc = v2.req("POST", f"/v2/{repo}/blobs/uploads/").headers["Location"]

    def cut_body():
        yield data[: 2 * 1024 * 1024]
        raise RuntimeError("client gives up mid-upload")

    with pytest.raises(Exception):
        v2.req("PATCH", loc, data=cut_body(), headers={"Content-Type": "application/octet-stream"})
    # The server may still be draining the cut connection: a resume that races it gets
    # 416 with the current Range, and the client retries from there (bounded).
    deadline = time.monotonic() + 10
    have, r = 0, None
    while time.monotonic() < deadline:
        st = v2.req("GET", loc)
        assert st.status_code == 204
        have = int(st.headers["Range"].split("-")[1]) + 1
        r = v2.req("PATCH", loc, data=data[have:], headers={"Content-Range": f"{have}-{len(data) - 1}"})
        if r.status_code == 202:
            break
        assert r.status_code in (400, 416), r.text
        time.sleep(0.1)
    assert r is not None and r.status_code == 202
    assert 0 < have <= 2 * 1024 * 1024
    r = v2.req("PUT", loc, params={"digest": sha256(data)})
    assert r.status_code == 201, r.text
    assert v2.req("GET", f"/v2/{repo}/blobs/{sha256(data)}").content == data


def test_tag_mutability_exclusion_filters(ecr, v2, repo):
    _, b1 = v2.push_image(repo, "release-1", [b"r1"])
    _, b2 = v2.push_image(repo, "latest", [b"r2"])
    ecr.put_image_tag_mutability(repositoryName=repo, imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
                                 imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "latest*"}])
    # "latest" is excluded from immutability and may move; "release-1" may not.
    assert v2.req("PUT", f"/v2/{repo}/manifests/latest", data=b1, headers={"Content-Type": OCI_MANIFEST}).status_code == 201
    with pytest.raises(ecr.exceptions.ImageTagAlreadyExistsException):
        ecr.put_image(repositoryName=repo, imageManifest=b2.decode(), imageTag="release-1")


def test_batch_delete_refuses_images_an_index_references(ecr, v2, repo):
    d1, b1 = v2.push_image(repo, "child", [b"c"])
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": [{"mediaType": OCI_MANIFEST, "digest": d1, "size": len(b1)}]})
    assert v2.req("PUT", f"/v2/{repo}/manifests/list", data=index, headers={"Content-Type": "application/vnd.oci.image.index.v1+json"}).status_code == 201
    r = ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageDigest": d1}])
    assert r["failures"][0]["failureCode"] == "ImageReferencedByManifestList"
    r = ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageTag": "list"}])
    assert r["failures"] == []
    r = ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageDigest": d1}])
    assert r["failures"] == [] and r["imageIds"][0]["imageDigest"] == d1


def test_lifecycle_policy_is_enforced_on_a_schedule(gc_server):
    cfg = gc_server.start()
    client, v = connect(cfg)
    name = repo_name("lc")
    client.create_repository(repositoryName=name)
    digests = []
    for i in range(3):
        d, _ = v.push_image(name, f"build-{i}", [f"lc-layer-{i}".encode()])
        digests.append(d)
        time.sleep(0.05)
    policy = json.dumps({"rules": [{"rulePriority": 1, "description": "keep the newest build",
                                    "selection": {"tagStatus": "tagged", "tagPatternList": ["build-*"], "countType": "imageCountMoreThan", "countNumber": 1},
                                    "action": {"type": "expire"}}]})
    client.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=policy)
    deadline = time.monotonic() + 20
    tags = []
    while time.monotonic() < deadline:
        tags = sorted(i["imageTag"] for i in client.list_images(repositoryName=name)["imageIds"])
        if tags == ["build-2"]:
            break
        time.sleep(0.5)
    assert tags == ["build-2"]
    # The expired images' layers are collected too; the kept one's stay.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and v.req("HEAD", f"/v2/{name}/blobs/{sha256(b'lc-layer-0')}").status_code != 404:
        time.sleep(0.5)
    assert v.req("HEAD", f"/v2/{name}/blobs/{sha256(b'lc-layer-0')}").status_code == 404
    assert v.req("HEAD", f"/v2/{name}/blobs/{sha256(b'lc-layer-2')}").status_code == 200


def vm_rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_server_memory_does_not_grow_with_blob_size(tmp_path):
    srv = StevedoreServer(tmp_path / "data")
    cfg = srv.start()
    try:
        client, v = connect(cfg)
        name = repo_name("rss")
        client.create_repository(repositoryName=name)
        v.push_blob(name, b"warm up")
        before = vm_rss_kib(srv.pid)
        peak = before
        chunk = os.urandom(1024 * 1024)
        total = 256

        def body():
            nonlocal peak
            for i in range(total):
                if i % 16 == 0:
                    peak = max(peak, vm_rss_kib(srv.pid))
                yield chunk

        loc = v.req("POST", f"/v2/{name}/blobs/uploads/").headers["Location"]
        r = v.req("PATCH", loc, data=body(), headers={"Content-Type": "application/octet-stream"}, timeout=300)
        assert r.status_code == 202
        import hashlib
        h = hashlib.sha256()
        for _ in range(total):
            h.update(chunk)
        r = v.req("PUT", loc, params={"digest": "sha256:" + h.hexdigest()})
        assert r.status_code == 201, r.text
        peak = max(peak, vm_rss_kib(srv.pid))
        assert (peak - before) < 32 * 1024, f"RSS grew by {(peak - before) // 1024} MiB during a {total} MiB push"
    finally:
        srv.kill()


def test_ecr_repository_names_follow_aws_rules(ecr, server):
    raw = make_client(server, "ecr", parameter_validation=False)
    for bad in ["a", "Upper/case", "double__underscore", "double--dash", "trailing-", "a//b", "x" * 257]:
        with pytest.raises(raw.exceptions.InvalidParameterException):
            raw.create_repository(repositoryName=bad)
    ok = repo_name("ok") + "/deeper.name_with-seps"
    ecr.create_repository(repositoryName=ok)
    ecr.delete_repository(repositoryName=ok)
