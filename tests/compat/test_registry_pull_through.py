"""ECR pull-through cache against a real upstream: a second stevedore server on
127.0.0.1 (its registry challenging with the bearer-token flow) holds the images; the
cache server's rule points to it over plain HTTP, which Stevedore allows for loopback
upstreams only. The credentials come from a local secret file (STEVEDORE_PULL_THROUGH_
SECRETS_DIR), Stevedore's stand-in for the Secrets Manager secret ECR reads.

Covered: the rule API and AWS's errors; a first pull through /v2/ and through
BatchGetImage creates the repository `<prefix>/<upstream path>` and imports the image;
later pulls are served with the upstream stopped; a retagged upstream image is picked up
only once the refresh interval has passed; an unreachable upstream leaves the cache as it
is; docker pull through the cache."""
from __future__ import annotations

import base64
import json
import time

import botocore.exceptions
import pytest

from conftest import ACCOUNT_ID, REGION, StevedoreServer, make_client, unique
from registry_fixtures import V2, docker, sha256  # noqa: F401

REFRESH_S = 4
MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


def secret_arn(name: str) -> str:
    return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:ecr-pullthroughcache/{name}"


def password(ecr) -> str:
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    return base64.b64decode(token).decode().split(":")[1]


class Upstream:
    """The upstream stevedore; can be stopped and started again on the same port."""

    def __init__(self, tmp):
        self.data = tmp / "upstream"
        self.srv = StevedoreServer(self.data, extra_env={"STEVEDORE_REGISTRY_CHALLENGE": "bearer"})
        self.port = self.srv.port
        self.cfg = self.srv.start()
        self.ecr = make_client(self.cfg, "ecr")
        self.v2 = V2(self.cfg.endpoint, password(self.ecr))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.srv.stop()

    def start(self):
        self.srv = StevedoreServer(self.data, port=self.port, extra_env={"STEVEDORE_REGISTRY_CHALLENGE": "bearer"})
        self.srv.start()

    def push(self, repo: str, tag: str, payload: bytes) -> str:
        try:
            self.ecr.create_repository(repositoryName=repo)
        except self.ecr.exceptions.RepositoryAlreadyExistsException:
            pass
        digest, _ = self.v2.push_image(repo, tag, [payload])
        return digest


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pullthrough")
    up = Upstream(tmp)
    secrets = tmp / "secrets"
    secrets.mkdir()
    (secrets / "upstream.json").write_text(json.dumps({"username": "AWS", "accessToken": up.v2.password}))
    (secrets / "wrong.json").write_text(json.dumps({"username": "AWS", "accessToken": "not-a-token"}))
    (secrets / "garbled.json").write_text("not json")
    cache = StevedoreServer(tmp / "cache", extra_env={
        "STEVEDORE_PULL_THROUGH_SECRETS_DIR": str(secrets),
        "STEVEDORE_PULL_THROUGH_REFRESH_SECS": str(REFRESH_S),
    })
    cfg = cache.start()
    ecr = make_client(cfg, "ecr")
    yield up, cfg, ecr
    cache.stop()
    up.stop()


def rule(ecr, up, prefix: str, **kw):
    return ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix=prefix, upstreamRegistryUrl=up.url, credentialArn=secret_arn("upstream"), **kw
    )


def code(err) -> str:
    return err.value.response["Error"]["Code"]


def get_manifest(v2: V2, name: str, ref: str):
    return v2.req("GET", f"/v2/{name}/manifests/{ref}", headers={"Accept": MANIFEST_TYPES})


def test_rules_are_created_described_updated_and_deleted_with_awss_errors(env):
    up, _, ecr = env
    prefix = unique("crud")
    out = rule(ecr, up, prefix)
    assert out["ecrRepositoryPrefix"] == prefix and out["upstreamRegistryUrl"] == up.url
    assert out["credentialArn"] == secret_arn("upstream") and out["registryId"] == ACCOUNT_ID
    assert "createdAt" in out
    got = ecr.describe_pull_through_cache_rules(ecrRepositoryPrefixes=[prefix])["pullThroughCacheRules"]
    assert [r["ecrRepositoryPrefix"] for r in got] == [prefix]
    assert prefix in [r["ecrRepositoryPrefix"] for r in ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"]]
    with pytest.raises(botocore.exceptions.ClientError) as err:
        rule(ecr, up, prefix)
    assert code(err) == "PullThroughCacheRuleAlreadyExistsException"

    upd = ecr.update_pull_through_cache_rule(ecrRepositoryPrefix=prefix, credentialArn=secret_arn("wrong"))
    assert upd["credentialArn"] == secret_arn("wrong") and "updatedAt" in upd
    bad = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix=prefix)
    assert bad["isValid"] is False and "credentials" in bad["failure"]
    ecr.update_pull_through_cache_rule(ecrRepositoryPrefix=prefix, credentialArn=secret_arn("upstream"))
    good = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix=prefix)
    assert good["isValid"] is True and "failure" not in good

    gone = ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix=prefix)
    assert gone["ecrRepositoryPrefix"] == prefix and gone["upstreamRegistryUrl"] == up.url
    for call in (
        lambda: ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix=prefix),
        lambda: ecr.describe_pull_through_cache_rules(ecrRepositoryPrefixes=[prefix]),
        lambda: ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix=prefix),
        lambda: ecr.update_pull_through_cache_rule(ecrRepositoryPrefix=prefix, credentialArn=secret_arn("upstream")),
    ):
        with pytest.raises(botocore.exceptions.ClientError) as err:
            call()
        assert code(err) == "PullThroughCacheRuleNotFoundException"


@pytest.mark.parametrize("kw, expected", [
    ({"ecrRepositoryPrefix": "Bad_Prefix"}, "InvalidParameterException"),
    ({"ecrRepositoryPrefix": "x" * 31}, "InvalidParameterException"),
    ({"upstreamRegistryUrl": "http://registry.example.com"}, "UnsupportedUpstreamRegistryException"),
    ({"upstreamRegistryUrl": "ftp://127.0.0.1:1"}, "UnsupportedUpstreamRegistryException"),
    ({"upstreamRegistryUrl": "registry.example.com/some/path"}, "InvalidParameterException"),
    ({"upstreamRegistry": "ecr"}, "UnsupportedUpstreamRegistryException"),
    ({"credentialArn": secret_arn("absent")}, "SecretNotFoundException"),
    ({"credentialArn": secret_arn("garbled")}, "UnableToDecryptSecretValueException"),
    ({"credentialArn": "arn:aws:secretsmanager:us-east-1:000000000000:secret:other/name-abcdef"}, "InvalidParameterException"),
    ({"ecrRepositoryPrefix": "ROOT", "upstreamRepositoryPrefix": "lib"}, "InvalidParameterException"),
])
def test_bad_rules_get_awss_errors(env, kw, expected):
    up, _, ecr = env
    args = {"ecrRepositoryPrefix": unique("bad"), "upstreamRegistryUrl": up.url, **kw}
    with pytest.raises(botocore.exceptions.ClientError) as err:
        ecr.create_pull_through_cache_rule(**args)
    assert code(err) == expected, err.value.response["Error"]["Message"]


def test_first_pull_imports_then_serves_with_upstream_stopped_and_refreshes_after_the_interval(env):
    up, cfg, ecr = env
    prefix = unique("pt")
    rule(ecr, up, prefix)
    d1 = up.push("lib/app", "v1", b"layer one")
    cache = V2(cfg.endpoint, password(ecr))
    name = f"{prefix}/lib/app"

    r = get_manifest(cache, name, "v1")
    assert r.status_code == 200, r.text
    assert r.headers["Docker-Content-Digest"] == d1 == sha256(r.content)
    layer = json.loads(r.content)["layers"][0]["digest"]
    b = cache.req("GET", f"/v2/{name}/blobs/{layer}")
    assert b.status_code == 200 and b.content == b"layer one"
    repo = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
    assert repo["repositoryUri"].endswith("/" + name)
    assert [i["imageTags"] for i in ecr.describe_images(repositoryName=name)["imageDetails"]] == [["v1"]]

    # Retagged upstream: served from the cache until the tag is due for a check.
    d2 = up.push("lib/app", "v1", b"layer two")
    assert d2 != d1
    assert get_manifest(cache, name, "v1").headers["Docker-Content-Digest"] == d1
    time.sleep(REFRESH_S + 0.5)
    r = get_manifest(cache, name, "v1")
    assert r.headers["Docker-Content-Digest"] == d2, r.text
    layer2 = json.loads(r.content)["layers"][0]["digest"]

    # Upstream gone: the cache serves what it has (a refresh that fails keeps it), and
    # an image it never fetched is AWS's upstream error.
    up.stop()
    try:
        time.sleep(REFRESH_S + 0.5)
        r = get_manifest(cache, name, "v1")
        assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == d2
        assert cache.req("GET", f"/v2/{name}/blobs/{layer2}").content == b"layer two"
        assert get_manifest(cache, name, d1).status_code == 200
        miss = get_manifest(cache, name, "never-pushed")
        assert miss.status_code == 404 and miss.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
        assert "upstream" in miss.json()["errors"][0]["message"]
        with pytest.raises(botocore.exceptions.ClientError) as err:
            ecr.batch_get_image(repositoryName=f"{prefix}/lib/other", imageIds=[{"imageTag": "v1"}])
        assert code(err) == "UnableToGetUpstreamImageException"
        assert get_manifest(cache, name, "v1").status_code == 200
    finally:
        up.start()


def test_batch_get_image_imports_through_the_api_and_upstream_misses_are_errors(env):
    up, _, ecr = env
    prefix = unique("api")
    rule(ecr, up, prefix, upstreamRepositoryPrefix="team")
    digest = up.push("team/svc", "1.0", b"api layer")
    name = f"{prefix}/svc"
    out = ecr.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "1.0"}])
    assert out["failures"] == []
    assert out["images"][0]["imageId"]["imageDigest"] == digest
    assert sha256(out["images"][0]["imageManifest"].encode()) == digest
    assert ecr.describe_repositories(repositoryNames=[name])["repositories"][0]["repositoryName"] == name
    with pytest.raises(botocore.exceptions.ClientError) as err:
        ecr.batch_get_image(repositoryName=f"{prefix}/missing", imageIds=[{"imageTag": "1.0"}])
    assert code(err) == "UnableToGetUpstreamImageException"
    # A repository no rule covers is still just missing.
    with pytest.raises(botocore.exceptions.ClientError) as err:
        ecr.batch_get_image(repositoryName=unique("norule") + "/x", imageIds=[{"imageTag": "1.0"}])
    assert code(err) == "RepositoryNotFoundException"
    # Deleting the rule keeps the cache.
    ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix=prefix)
    again = ecr.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "1.0"}])
    assert again["images"][0]["imageId"]["imageDigest"] == digest


def test_docker_pull_through_the_cache(env, docker, tmp_path):
    up, cfg, ecr = env
    prefix = unique("dk")
    rule(ecr, up, prefix)
    up_host = up.url.removeprefix("http://")
    cache_host = cfg.endpoint.removeprefix("http://")
    docker.run("login", "--username", "AWS", "--password-stdin", up_host, input=up.v2.password)
    docker.run("login", "--username", "AWS", "--password-stdin", cache_host, input=password(ecr))
    up.push("box/hello", "seed", b"x")  # creates the upstream repository
    src = f"{up_host}/box/hello:v1"
    docker.build(src, tmp_path, payload=b"through the cache")
    docker.run("push", src)
    docker.run("rmi", src)
    pulled = f"{cache_host}/{prefix}/box/hello:v1"
    docker.created.add(pulled)
    docker.run("pull", pulled)
    out = docker.run("run", "--rm", pulled)
    assert "hello from stevedore" in out.stdout
    docker.run("rmi", pulled)
    up.stop()
    try:
        docker.run("pull", pulled)
    finally:
        up.start()
